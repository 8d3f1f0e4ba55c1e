//! The processor workload: one client process per `members` of each `[[processors]]` entry,
//! each a `ksim_model::processor::ProcessorClient` (a consume-transform-produce application:
//! a subscribe-mode consumer of `input` and a producer of `output`, exactly-once with a
//! `transactional.id`, at-least-once without), in its own madsim node `processor-N`.

use crate::disk::SimDisk;
use crate::runtime::{run_actor, SharedRef};
use crate::scenario::{ProcessorSpec, Scenario};
use crate::world::{spawn_node, stream_rng, streams};
use ksim_model::consumer::{CommitMode, ConsumerClient, ConsumerWorkload};
use ksim_model::effects::Effects;
use ksim_model::processor::ProcessorClient;
use ksim_model::producer::{ProducerClient, ProducerWorkload, SendStyle};
use ksim_model::types::{BrokerId, NodeId};
use rand::RngCore;
use std::collections::BTreeMap;
use std::sync::Arc;

/// The processor processes, numbered from 0 in file order: `members` of each entry.
pub fn instances(scenario: &Scenario) -> Vec<(u32, ProcessorSpec)> {
    let mut out = Vec::new();
    for spec in &scenario.processors {
        for _ in 0..spec.members {
            out.push((out.len() as u32, spec.clone()));
        }
    }
    out
}

/// Creates the madsim node of every processor; each draws its workload seed (processing
/// times) from the seed's `PROCESSOR_WORKLOAD` stream, in processor order.
pub(crate) fn spawn(
    handle: &madsim::runtime::Handle,
    seed: u64,
    specs: &[(u32, ProcessorSpec)],
    brokers: &[BrokerId],
    shared: &SharedRef,
    disk: &Arc<SimDisk>,
    handles: &mut BTreeMap<NodeId, madsim::runtime::NodeHandle>,
) {
    let mut workload_rng = stream_rng(seed, streams::PROCESSOR_WORKLOAD);
    for (i, spec) in specs {
        let node = NodeId::Processor(*i);
        let (shared, disk) = (shared.clone(), disk.clone());
        let i = *i;
        let exactly_once = spec.exactly_once();
        let commit_interval_ms = spec.commit_interval_ms;
        let mut consumer_config = spec.consumer_config.clone();
        // As for consumer groups: `group.instance.id` gives member i `<value>-<i>` (KIP-345).
        if let Some(instance) = &consumer_config.group_instance_id {
            consumer_config.group_instance_id = Some(format!("{instance}-{i}"));
        }
        let mut producer_config = spec.producer_config.clone();
        // SCENARIOS.md: processor i uses "<transactional.id>-<i>", and a restarted processor
        // the same (its initTransactions() fences its predecessor).
        if let Some(id) = &producer_config.transactional_id {
            producer_config.transactional_id = Some(format!("{id}-{i}"));
        }
        let topics = vec![spec.input.clone()];
        let consumer_workload = ConsumerWorkload {
            start_ms: 0,
            seeks: Vec::new(),
            commit: if exactly_once {
                CommitMode::None
            } else {
                CommitMode::Sync
            },
            subscribe: true,
            processing_ms: spec.processing_ms,
            processing_changes: Vec::new(),
            seed: workload_rng.next_u64(),
        };
        let producer_workload = ProducerWorkload {
            topics: vec![spec.output.clone()],
            rate_per_sec: 0,
            keys: 0,
            stop_at_ms: u64::MAX,
            send_style: SendStyle::Async,
        };
        let partitioner_seed = workload_rng.next_u64();
        let bootstrap = brokers.to_vec();
        // `init` runs at the start and at every restart (client faults): each process is the
        // next incarnation.
        let incarnations = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let h = spawn_node(handle, node, move || {
            let incarnation = incarnations.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let consumer = ConsumerClient::new(
                i,
                consumer_config.clone(),
                topics.clone(),
                bootstrap.clone(),
            )
            .with_workload(consumer_workload.clone());
            let producer = ProducerClient::new(
                i,
                producer_config.clone(),
                producer_workload.clone(),
                bootstrap.clone(),
            )
            .with_transactions(Default::default())
            .with_partitioner_seed(partitioner_seed);
            let p = ProcessorClient::new(i, incarnation, consumer, producer, exactly_once)
                .with_commit_interval_ms(commit_interval_ms);
            run_actor(node, p, Effects::new(), shared.clone(), disk.clone())
        });
        handles.insert(node, h);
    }
}
