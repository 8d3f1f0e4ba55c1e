//! The consumer workload: one client process per `members` of each `[[consumers]]` entry, each a
//! `ksim_model::consumer::ConsumerClient` (Kafka's `KafkaConsumer` after `assign()`, in a
//! `poll` loop) that starts polling at `start_ms` and seeks where the scenario says, in its own
//! madsim node.

use crate::disk::SimDisk;
use crate::runtime::{run_actor, SharedRef};
use crate::scenario::{ConsumerSpec, Scenario};
use crate::world::{spawn_node, stream_rng, streams};
use ksim_model::consumer::{ConsumerClient, ConsumerWorkload, ProcessingChange, SeekAt};
use ksim_model::effects::Effects;
use ksim_model::types::{BrokerId, NodeId, Offset};
use rand::RngCore;
use std::collections::BTreeMap;
use std::sync::Arc;

/// The consumer processes, numbered from 0 in file order: `members` of each `[[consumers]]`.
pub fn instances(scenario: &Scenario) -> Vec<(u32, ConsumerSpec)> {
    let mut consumer_specs = Vec::new();
    for spec in &scenario.consumers {
        for k in 0..spec.members {
            let i = consumer_specs.len() as u32;
            let mut member = spec.clone();
            // `group.instance.id` on a group entry gives its members `<value>-<k>` (KIP-345).
            if spec.group.is_some() {
                if let Some(instance) = &spec.config.group_instance_id {
                    member.config.group_instance_id = Some(format!("{instance}-{k}"));
                }
            }
            consumer_specs.push((i, member));
        }
    }
    consumer_specs
}

/// Creates the madsim node of every consumer in `consumer_specs`.
pub(crate) fn spawn(
    handle: &madsim::runtime::Handle,
    seed: u64,
    consumer_specs: &[(u32, ConsumerSpec)],
    brokers: &[BrokerId],
    shared: &SharedRef,
    disk: &Arc<SimDisk>,
    handles: &mut BTreeMap<NodeId, madsim::runtime::NodeHandle>,
) {
    let mut workload_rng = stream_rng(seed, streams::CONSUMER_WORKLOAD);
    for (i, spec) in consumer_specs {
        let node = NodeId::Consumer(*i);
        let (shared, disk) = (shared.clone(), disk.clone());
        let config = spec.config.clone();
        let topics = spec.topics.clone();
        let bootstrap = brokers.to_vec();
        let i = *i;
        let workload = ConsumerWorkload {
            start_ms: spec.start_ms,
            seeks: spec
                .seek_to
                .iter()
                .map(|s| SeekAt {
                    at_ms: s.at_ms,
                    tp: s.tp.clone(),
                    offset: Offset(s.offset),
                })
                .collect(),
            commit: spec.commit,
            subscribe: spec.group.is_some(),
            processing_ms: spec.processing_ms,
            processing_changes: spec
                .processing_change
                .iter()
                .map(|c| ProcessingChange {
                    at_ms: c.at_ms,
                    processing_ms: c.processing_ms,
                })
                .collect(),
            seed: workload_rng.next_u64(),
        };
        // `init` runs at the start and at every restart (client faults): each process is the
        // next incarnation, with correlation ids of its own.
        let incarnations = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let h = spawn_node(handle, node, move || {
            let incarnation = incarnations.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let c = ConsumerClient::new(i, config.clone(), topics.clone(), bootstrap.clone())
                .with_workload(workload.clone())
                .with_incarnation(incarnation);
            run_actor(node, c, Effects::new(), shared.clone(), disk.clone())
        });
        handles.insert(node, h);
    }
}
