//! `leader-in-isr`: a partition's leader is always a member of its ISR, and the ISR of a led
//! partition is never empty.
//!
//! **Definition.** The ISR (in-sync replicas) is the set of replicas that hold every committed
//! record; the leader decides what is committed, so it must itself be in the set, and a
//! partition with a leader has at least that one member. The check reads the event log and
//! asserts this wherever an ISR is written or adopted:
//!
//! * every `partition-state-changed` (the controller wrote the partition state) that names a
//!   leader has a non-empty ISR containing that leader;
//! * every `became-leader` lists the new leader itself in the ISR it starts with;
//! * every `isr-changed` (the leader adopted an ISR the controller committed, after a shrink or
//!   an expand) is non-empty and contains the leader that logged it.
//!
//! **Source.** `KafkaReplication.tla` (hachikuji/kafka-specification), invariant `LeaderInIsr`:
//! whenever the quorum state has a leader, that leader is in the quorum state's ISR. Kafka keeps
//! it by construction: the controller only elects a leader from the ISR (or, with
//! `unclean.leader.election.enable`, resets the ISR to the new leader alone), and a leader never
//! proposes an ISR without itself (`Partition.maybeShrinkIsr` only removes followers).
//!
//! **What is allowed.** A partition with no leader (`leader` absent, Kafka's `-1`) is not judged:
//! when the last ISR member fails, Kafka ZooKeeper mode keeps it in the ISR with no leader
//! (so that it can come back as leader), and KIP-966 keeps the last member as well. An unclean
//! election may shrink the ISR to the new leader alone; that is still a valid ISR here (the
//! data loss it causes is `committed-record-lost`'s business).

use super::lesson::{self, Lesson, Prevention};
use super::{at, event_json, violation, CheckInput, Checker, Violation};
use ksim_model::event::Event;
use ksim_model::types::BrokerId;
use serde_json::json;

/// See the module documentation.
pub struct LeaderInIsr;

fn isr_text(isr: &[BrokerId]) -> String {
    let ids: Vec<String> = isr.iter().map(|b| b.to_string()).collect();
    format!("[{}]", ids.join(", "))
}

fn problem(leader: BrokerId, isr: &[BrokerId]) -> Option<&'static str> {
    if isr.is_empty() {
        Some("an empty ISR")
    } else if !isr.contains(&leader) {
        Some("an ISR without the leader")
    } else {
        None
    }
}

impl Checker for LeaderInIsr {
    fn name(&self) -> &'static str {
        "leader-in-isr"
    }

    fn statement(&self) -> &'static str {
        "the leader is in the ISR, and the ISR is never empty"
    }

    fn lesson(&self) -> Lesson {
        Lesson {
            intro: lesson::INTERNAL_INVARIANT,
            prevention: Prevention::ProtocolInvariant,
        }
    }

    fn check(&self, input: &CheckInput) -> Vec<Violation> {
        let mut anomalies = Vec::new();
        for record in input.events {
            let found = match &record.event {
                Event::PartitionStateChanged { tp, leader: Some(leader), leader_epoch, isr, reason, .. } => {
                    problem(*leader, isr).map(|what| {
                        let sentence = format!(
                            "the controller ({}) wrote {tp} with leader broker-{leader} in leader epoch {leader_epoch} \
                             but {what} {} (reason: {reason})",
                            at(record),
                            isr_text(isr)
                        );
                        (sentence, "partition-state-changed", tp, *leader, *leader_epoch, isr)
                    })
                }
                Event::BecameLeader { tp, broker, leader_epoch, isr, .. } => problem(*broker, isr).map(|what| {
                    let sentence = format!(
                        "broker-{broker} became leader of {tp} in leader epoch {leader_epoch} with {what} {} ({})",
                        isr_text(isr),
                        at(record)
                    );
                    (sentence, "became-leader", tp, *broker, *leader_epoch, isr)
                }),
                Event::IsrChanged { tp, broker, leader_epoch, isr, .. } => problem(*broker, isr).map(|what| {
                    let sentence = format!(
                        "leader broker-{broker} of {tp} in leader epoch {leader_epoch} adopted {what} {} ({})",
                        isr_text(isr),
                        at(record)
                    );
                    (sentence, "isr-changed", tp, *broker, *leader_epoch, isr)
                }),
                _ => None,
            };
            if let Some((sentence, kind, tp, leader, leader_epoch, isr)) = found {
                let data = json!({
                    "event": kind,
                    "tp": tp.to_string(),
                    "leader": leader.0,
                    "leader_epoch": leader_epoch.0,
                    "isr": isr.iter().map(|b| b.0).collect::<Vec<_>>(),
                    "at": event_json(record),
                });
                anomalies.push((sentence, data));
            }
        }
        violation(self.name(), None, anomalies, serde_json::Map::new())
    }
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use super::*;
    use ksim_model::types::{ControllerEpoch, LeaderEpoch, NodeId, Offset, ZkVersion};

    fn state(leader: Option<i32>, epoch: i32, isr: &[i32]) -> (NodeId, Event) {
        (
            NodeId::Broker(BrokerId(0)),
            Event::PartitionStateChanged {
                tp: tp(0),
                leader: leader.map(BrokerId),
                leader_epoch: LeaderEpoch(epoch),
                isr: isr.iter().copied().map(BrokerId).collect(),
                controller_epoch: ControllerEpoch(1),
                partition_epoch: ZkVersion(epoch),
                reason: "leader-failed".into(),
                last_known_elr: vec![],
            },
        )
    }

    fn became_leader(broker: i32, epoch: i32, isr: &[i32]) -> (NodeId, Event) {
        (
            NodeId::Broker(BrokerId(broker)),
            Event::BecameLeader {
                tp: tp(0),
                broker: BrokerId(broker),
                leader_epoch: LeaderEpoch(epoch),
                isr: isr.iter().copied().map(BrokerId).collect(),
                log_end_offset: Offset(10),
                high_watermark: Offset(8),
            },
        )
    }

    fn isr_changed(broker: i32, epoch: i32, isr: &[i32]) -> (NodeId, Event) {
        (
            NodeId::Broker(BrokerId(broker)),
            Event::IsrChanged {
                tp: tp(0),
                broker: BrokerId(broker),
                leader_epoch: LeaderEpoch(epoch),
                isr: isr.iter().copied().map(BrokerId).collect(),
                partition_epoch: ZkVersion(epoch),
            },
        )
    }

    #[test]
    fn a_leader_outside_its_isr_or_an_empty_isr_is_a_violation() {
        let events = [
            state(Some(1), 2, &[0, 2]),
            became_leader(1, 2, &[1, 2]),
            isr_changed(1, 2, &[]),
            state(Some(2), 3, &[]),
        ];
        let v = check_events(&LeaderInIsr, &events);
        assert_eq!(v.len(), 1, "{v:?}");
        assert_eq!(v[0].check, "leader-in-isr");
        assert_eq!(v[0].details["count"], 3);
        assert_eq!(
            v[0].message,
            "the controller (broker-0 at t=0 ms) wrote events-0 with leader broker-1 in leader epoch 2 \
             but an ISR without the leader [0, 2] (reason: leader-failed) (2 more like this in details)"
        );
        assert_eq!(
            v[0].details["anomalies"][1]["message"],
            "leader broker-1 of events-0 in leader epoch 2 adopted an empty ISR [] (broker-1 at t=200 ms)"
        );
        assert_eq!(
            v[0].details["anomalies"][2]["event"],
            "partition-state-changed"
        );

        let v = check_events(&LeaderInIsr, &[became_leader(1, 2, &[0, 2])]);
        assert_eq!(v.len(), 1);
        assert!(v[0].message.starts_with(
            "broker-1 became leader of events-0 in leader epoch 2 with an ISR without"
        ));
    }

    #[test]
    fn leaders_in_their_isr_and_leaderless_partitions_pass() {
        let events = [
            state(Some(1), 2, &[1, 2]),
            became_leader(1, 2, &[1, 2]),
            isr_changed(1, 2, &[1]),
            // The last ISR member failed: no leader, the ISR keeps it (Kafka ZK mode).
            state(None, 3, &[1]),
            state(None, 4, &[]),
        ];
        assert!(check_events(&LeaderInIsr, &events).is_empty());
    }
}
