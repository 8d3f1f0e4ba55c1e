//! The producer workload: one client process per `count` of each `[[producers]]` entry, each a
//! `ksim_model::producer::ProducerClient` (Kafka's `KafkaProducer` with its `Sender` and
//! `RecordAccumulator`) that offers `rate_per_sec` records to its topic (or round-robin to its topics) until the end of the
//! heal phase, in its own madsim node.

use crate::disk::SimDisk;
use crate::runtime::{run_actor, SharedRef};
use crate::scenario::{ProducerSpec, Scenario};
use crate::world::{spawn_node, stream_rng, streams};
use ksim_model::effects::Effects;
use ksim_model::producer::{ProducerClient, ProducerWorkload};
use ksim_model::types::{BrokerId, NodeId};
use rand::RngCore;
use std::collections::BTreeMap;
use std::sync::Arc;

/// How long before the end of the heal phase a transactional producer stops beginning
/// transactions (ms): time for its last one to end (flush, EndTxn, markers) before the drain.
pub const TXN_END_MARGIN_MS: u64 = 3_000;

/// The producer processes, numbered from 0 in file order: `count` of each `[[producers]]`,
/// then the replacements the schedule's `replace` entries start (numbered after them, in
/// schedule order; see `FaultAction::Replace`), each with the entry of the producer it
/// replaces. Each spec's `transactional.id` is already the client's own (SCENARIOS.md: client
/// i of a transactional entry uses "<transactional.id>-<i>", a restarted client the same, so it
/// fences its predecessor, and a replacement that of the producer it replaces).
pub fn instances(scenario: &Scenario) -> Vec<(u32, ProducerSpec)> {
    let mut producer_specs: Vec<(u32, ProducerSpec)> = Vec::new();
    for spec in &scenario.producers {
        for _ in 0..spec.count {
            let i = producer_specs.len() as u32;
            let mut spec = spec.clone();
            if let Some(id) = &spec.config.transactional_id {
                spec.config.transactional_id = Some(format!("{id}-{i}"));
            }
            producer_specs.push((i, spec));
        }
    }
    for r in &scenario.faults.replacements {
        let spec = producer_specs[r.replaces as usize].1.clone();
        producer_specs.push((r.node, spec));
    }
    producer_specs
}

/// Creates the madsim node of every producer in `producer_specs`; each draws its sticky
/// partitioner's seed from the seed's `PARTITIONER` stream, in producer order.
#[allow(clippy::too_many_arguments)]
pub(crate) fn spawn(
    handle: &madsim::runtime::Handle,
    scenario: &Scenario,
    seed: u64,
    producer_specs: &[(u32, ProducerSpec)],
    brokers: &[BrokerId],
    shared: &SharedRef,
    disk: &Arc<SimDisk>,
    handles: &mut BTreeMap<NodeId, madsim::runtime::NodeHandle>,
) {
    let mut partitioner_rng = stream_rng(seed, streams::PARTITIONER);
    for (i, spec) in producer_specs {
        let node = NodeId::Producer(*i);
        let partitioner_seed = partitioner_rng.next_u64();
        let (shared, disk) = (shared.clone(), disk.clone());
        let config = spec.config.clone();
        let transaction = spec.transaction.map(|t| t.spec());
        let id_per_start = spec.transaction.is_some_and(|t| t.id_per_start);
        let workload = ProducerWorkload {
            topics: spec.topics.clone(),
            rate_per_sec: spec.rate_per_sec.round().max(1.0) as u32,
            keys: spec.keys,
            // Producers keep offering through the heal phase, so that the `liveness` check can
            // see every partition take writes again.
            // A transactional producer begins no transaction in the last
            // `TXN_END_MARGIN_MS` of the heal phase, so that its last one is committed or
            // aborted, and its markers written, before the final drain stops it: a transaction
            // left open holds every read_committed consumer below it until
            // `transaction.timeout.ms` (`transactions-under-faults` seed 150006).
            stop_at_ms: (scenario.duration_ms + scenario.heal_ms).saturating_sub(
                if spec.config.transactional_id.is_some() {
                    TXN_END_MARGIN_MS.min(scenario.heal_ms / 2)
                } else {
                    0
                },
            ),
            send_style: spec.send_style,
        };
        let bootstrap = brokers.to_vec();
        let i = *i;
        // `init` runs at the start and at every restart (client faults): each process is the
        // next incarnation.
        let incarnations = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let h = spawn_node(handle, node, move || {
            let incarnation = incarnations.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let mut config = config.clone();
            if id_per_start && incarnation > 0 {
                // `transaction.id_per_start`: this start's own transactional.id.
                config.transactional_id = config
                    .transactional_id
                    .map(|id| format!("{id}.{incarnation}"));
            }
            let p = ProducerClient::new(i, config, workload.clone(), bootstrap.clone())
                .with_transactions(transaction.unwrap_or_default())
                .with_partitioner_seed(partitioner_seed)
                .with_incarnation(incarnation);
            run_actor(node, p, Effects::new(), shared.clone(), disk.clone())
        });
        handles.insert(node, h);
    }
}
