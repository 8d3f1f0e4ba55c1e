//! The consumer workload: one client process per `members` of each `[[consumers]]` entry, each a
//! `ksim_model::consumer::ConsumerClient` (Kafka's `KafkaConsumer` after `assign()`, in a
//! `poll` loop) that starts polling at `start_ms` and seeks where the scenario says, in its own
//! madsim node.

use crate::disk::SimDisk;
use crate::runtime::{run_actor, SharedRef};
use crate::scenario::{ConsumerSpec, Scenario};
use crate::world::spawn_node;
use ksim_model::consumer::{ConsumerClient, ConsumerWorkload, SeekAt};
use ksim_model::effects::Effects;
use ksim_model::types::{BrokerId, NodeId, Offset};
use std::collections::BTreeMap;
use std::sync::Arc;

/// The consumer processes, numbered from 0 in file order: `members` of each `[[consumers]]`.
pub fn instances(scenario: &Scenario) -> Vec<(u32, ConsumerSpec)> {
    let mut consumer_specs = Vec::new();
    for spec in &scenario.consumers {
        for _ in 0..spec.members {
            let i = consumer_specs.len() as u32;
            consumer_specs.push((i, spec.clone()));
        }
    }
    consumer_specs
}

/// Creates the madsim node of every consumer in `consumer_specs`.
pub(crate) fn spawn(
    handle: &madsim::runtime::Handle,
    consumer_specs: &[(u32, ConsumerSpec)],
    brokers: &[BrokerId],
    shared: &SharedRef,
    disk: &Arc<SimDisk>,
    handles: &mut BTreeMap<NodeId, madsim::runtime::NodeHandle>,
) {
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
        };
        let h = spawn_node(handle, node, move || {
            let c = ConsumerClient::new(i, config.clone(), topics.clone(), bootstrap.clone())
                .with_workload(workload.clone());
            run_actor(node, c, Effects::new(), shared.clone(), disk.clone())
        });
        handles.insert(node, h);
    }
}
