//! The observer: what the world has seen so far, as the simulator (not any node) knows it,
//! kept from the events nodes emit; the nemesis resolves role selectors (`leader:t-0`) against it.

use ksim_model::event::Event;
use ksim_model::types::{BrokerId, ControllerEpoch, LeaderEpoch, TopicPartition};
use std::collections::BTreeMap;

/// What the world has seen so far, as the simulator (not any node) knows it. Updated from the
/// events nodes emit; the nemesis resolves role selectors (`leader:t-0`) against it.
#[derive(Debug, Default, Clone)]
pub struct Observer {
    /// Highest-epoch `BecameLeader` per partition.
    pub leaders: BTreeMap<TopicPartition, (LeaderEpoch, BrokerId)>,
    /// ISR and replicas from the controller's latest decision per partition.
    pub isr: BTreeMap<TopicPartition, Vec<BrokerId>>,
    pub replicas: BTreeMap<TopicPartition, Vec<BrokerId>>,
    /// When the controller last wrote each partition's ISR (simulated ms).
    pub isr_written_ms: BTreeMap<TopicPartition, u64>,
    /// When each replica last joined each partition's ISR (simulated ms): the leader added it
    /// (it caught up), or the partition was created or recovered with it in the ISR. A member
    /// the controller merely kept from the previous ISR did not join then.
    pub isr_joined_ms: BTreeMap<(TopicPartition, BrokerId), u64>,
    /// Per partition, the controller's last-known ELR (KIP-966) as its latest state write
    /// carried it (`controller::update_last_known_elr`): replicas outside the ISR that may hold
    /// the only copy of committed records.
    pub elr: BTreeMap<TopicPartition, std::collections::BTreeSet<BrokerId>>,
    /// The latest controller.
    pub controller: Option<(ControllerEpoch, BrokerId)>,
}

impl Observer {
    pub(crate) fn observe(&mut self, time_ms: u64, event: &Event) {
        match event {
            Event::BecameLeader {
                tp,
                broker,
                leader_epoch,
                ..
            } => {
                let e = self
                    .leaders
                    .entry(tp.clone())
                    .or_insert((*leader_epoch, *broker));
                if *leader_epoch >= e.0 {
                    *e = (*leader_epoch, *broker);
                }
            }
            Event::PartitionStateChanged {
                tp,
                isr,
                reason,
                last_known_elr,
                ..
            } => {
                let fresh = matches!(
                    reason.as_str(),
                    "new-partition" | "last-isr-recovery" | "unclean-election"
                );
                for m in isr {
                    let before = self.isr.get(tp).is_some_and(|old| old.contains(m));
                    if fresh || !before {
                        self.isr_joined_ms.insert((tp.clone(), *m), time_ms);
                    }
                }
                self.elr
                    .insert(tp.clone(), last_known_elr.iter().copied().collect());
                self.isr.insert(tp.clone(), isr.clone());
                self.isr_written_ms.insert(tp.clone(), time_ms);
            }
            Event::ControllerElected {
                broker,
                controller_epoch,
            } if self.controller.is_none_or(|(e, _)| *controller_epoch >= e) => {
                self.controller = Some((*controller_epoch, *broker));
            }
            _ => {}
        }
    }
}
