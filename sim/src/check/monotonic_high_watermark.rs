//! `monotonic-high-watermark`: a leader's high watermark never goes back, and epochs never go
//! back.
//!
//! **Definition.** The high watermark (HW) is the offset below which a partition's records are
//! committed: consumers read only below it, and a producer with acks=all is answered once its
//! records are below it. If the leader's HW decreased, records it had declared committed (and
//! possibly served and acknowledged) would be declared uncommitted again. Epochs are fencing
//! tokens; one that goes back lets a stale leader or controller act again. The check reads the
//! event log in order and reports:
//!
//! * for each (partition, broker, leader epoch), a `high-watermark-changed` (or the HW a
//!   `became-leader` starts with) lower than the previous one for the same key;
//! * for each partition, a `partition-state-changed` written by the controller whose leader
//!   epoch is lower than the one in the previous write;
//! * for each (partition, broker), a `became-leader` in a lower leader epoch than that broker's
//!   previous `became-leader` for the partition;
//! * a `controller-epoch-incremented` (the coordination node storing `/controller_epoch` for an
//!   election) lower than an earlier one. The epochs are judged in the order the coordination
//!   node stored them, not in the order brokers learned they won (`controller-elected`): a
//!   broker whose answer was delayed (for example across a partition, its session expiring
//!   meanwhile) learns it won epoch 2 after another broker won epoch 3, which is not an epoch
//!   going back; brokers then refuse its requests (`controller-epoch-fencing`).
//!
//! **Source.** The Raft invariants that `RaftEventSimulationTest` (apache/kafka) checks,
//! `MonotonicHighWatermark` (the high watermark of a leader never decreases) and
//! `MonotonicEpoch` (a persisted epoch never decreases); KafkaReplication.tla's leader epochs
//! are bumped by the controller on every change and only ever increase.
//!
//! **What is allowed.** The HW is tracked per leadership, that is per (partition, broker,
//! leader epoch). A *new* leader may start with a lower HW than the old leader had reached:
//! Kafka propagates the HW to followers only in fetch responses, so a follower elected leader
//! knows an HW that lags the old leader's, and it only raises it once followers have fetched
//! from it. No committed record is lost by this (the new leader came from the ISR, so it holds
//! every record below the old HW); consumers meanwhile may see the HW briefly lag. Followers'
//! HWs are not judged. Equal values (a repeated event) are allowed everywhere.
//!
//! The HW is a leader *process's* in-memory state, so it is tracked per incarnation of the
//! broker (a `broker-started` event begins a new one). A restarted broker rebuilds its HW from
//! `replication-offset-checkpoint`, written every
//! `replica.high.watermark.checkpoint.interval.ms`, so it may come back lower; normally the
//! controller notices the bounce (KIP-380) and elects in a new epoch, but if no controller saw
//! it (for example the controller was cut off from the coordination node at the time), the
//! restarted broker can be confirmed as leader in the same epoch, exactly as in Kafka. That is
//! not a violation: every record it had acknowledged is still in its log.

use super::lesson::{self, Lesson, Prevention};
use super::{at, event_json, violation, CheckInput, Checker, Violation};
use crate::history::EventRecord;
use ksim_model::event::Event;
use ksim_model::types::{BrokerId, Offset, TopicPartition};
use serde_json::json;
use std::collections::BTreeMap;

/// See the module documentation.
pub struct MonotonicHighWatermark;

impl Checker for MonotonicHighWatermark {
    fn name(&self) -> &'static str {
        "monotonic-high-watermark"
    }

    fn statement(&self) -> &'static str {
        "a leader's high watermark never goes back, and leader/controller epochs never decrease"
    }

    fn lesson(&self) -> Lesson {
        Lesson {
            intro: lesson::INTERNAL_INVARIANT,
            prevention: Prevention::ProtocolInvariant,
        }
    }

    fn check(&self, input: &CheckInput) -> Vec<Violation> {
        // The latest value seen per key, with the event that set it.
        let mut high_watermarks: BTreeMap<(TopicPartition, BrokerId, i32), (Offset, &EventRecord)> =
            BTreeMap::new();
        let mut partition_epochs: BTreeMap<TopicPartition, (i32, BrokerId, &EventRecord)> =
            BTreeMap::new();
        let mut leader_epochs: BTreeMap<(TopicPartition, BrokerId), (i32, &EventRecord)> =
            BTreeMap::new();
        let mut controller_epoch: Option<(i32, BrokerId, &EventRecord)> = None;
        let mut anomalies = Vec::new();

        for record in input.events {
            if let Event::BrokerStarted { broker } = &record.event {
                // A new incarnation: its HW starts again from the checkpoint.
                high_watermarks.retain(|(_, b, _), _| b != broker);
            }
            match &record.event {
                Event::HighWatermarkChanged {
                    tp,
                    broker,
                    leader_epoch,
                    high_watermark,
                }
                | Event::BecameLeader {
                    tp,
                    broker,
                    leader_epoch,
                    high_watermark,
                    ..
                } => {
                    let key = (tp.clone(), *broker, leader_epoch.0);
                    if let Some((previous, previous_record)) = high_watermarks.get(&key) {
                        if high_watermark < previous {
                            let sentence = format!(
                                "leader broker-{broker} of {tp} in leader epoch {leader_epoch} lowered its high watermark \
                                 from {previous} to {high_watermark} ({}; it was {previous} since t={} ms)",
                                at(record),
                                previous_record.time_ms
                            );
                            let data = json!({
                                "kind": "high-watermark",
                                "tp": tp.to_string(),
                                "broker": broker.0,
                                "leader_epoch": leader_epoch.0,
                                "previous": previous.0,
                                "previous_at": event_json(previous_record),
                                "high_watermark": high_watermark.0,
                                "at": event_json(record),
                            });
                            anomalies.push((sentence, data));
                        }
                    }
                    // Keep the latest value so that one drop is reported once, not at every
                    // later step that stays below the old peak.
                    high_watermarks.insert(key, (*high_watermark, record));

                    if matches!(record.event, Event::BecameLeader { .. }) {
                        let key = (tp.clone(), *broker);
                        if let Some((previous, previous_record)) = leader_epochs.get(&key) {
                            if leader_epoch.0 < *previous {
                                let sentence = format!(
                                    "broker-{broker} became leader of {tp} in leader epoch {leader_epoch} ({}) after it had \
                                     become leader in leader epoch {previous} (t={} ms)",
                                    at(record),
                                    previous_record.time_ms
                                );
                                let data = json!({
                                    "kind": "became-leader-epoch",
                                    "tp": tp.to_string(),
                                    "broker": broker.0,
                                    "previous_leader_epoch": previous,
                                    "previous_at": event_json(previous_record),
                                    "leader_epoch": leader_epoch.0,
                                    "at": event_json(record),
                                });
                                anomalies.push((sentence, data));
                            }
                        }
                        leader_epochs.insert(key, (leader_epoch.0, record));
                    }
                }
                Event::PartitionStateChanged {
                    tp,
                    leader,
                    leader_epoch,
                    controller_epoch: by,
                    ..
                } => {
                    if let Some((previous, previous_leader, previous_record)) =
                        partition_epochs.get(tp)
                    {
                        if leader_epoch.0 < *previous {
                            let leader_text = match leader {
                                Some(l) => format!("leader broker-{l}"),
                                None => "no leader".to_string(),
                            };
                            let sentence = format!(
                                "the controller (controller epoch {by}, {}) wrote {tp} with {leader_text} in leader epoch \
                                 {leader_epoch} after leader epoch {previous} (leader broker-{previous_leader}, written by {})",
                                at(record),
                                at(previous_record)
                            );
                            let data = json!({
                                "kind": "partition-leader-epoch",
                                "tp": tp.to_string(),
                                "previous_leader_epoch": previous,
                                "previous_at": event_json(previous_record),
                                "leader_epoch": leader_epoch.0,
                                "leader": leader.map(|l| l.0),
                                "controller_epoch": by.0,
                                "at": event_json(record),
                            });
                            anomalies.push((sentence, data));
                        }
                    }
                    // A leaderless state is remembered with the leader it replaced, if any.
                    let leader = leader
                        .or_else(|| partition_epochs.get(tp).map(|(_, l, _)| *l))
                        .unwrap_or(BrokerId(-1));
                    partition_epochs.insert(tp.clone(), (leader_epoch.0, leader, record));
                }
                Event::ControllerEpochIncremented {
                    broker,
                    controller_epoch: epoch,
                } => {
                    if let Some((previous, previous_broker, previous_record)) = controller_epoch {
                        if epoch.0 < previous {
                            let sentence = format!(
                                "the coordination node stored controller epoch {epoch} for broker-{broker}'s election ({}) after \
                                 storing controller epoch {previous} for broker-{}'s ({})",
                                at(record),
                                previous_broker,
                                at(previous_record)
                            );
                            let data = json!({
                                "kind": "controller-epoch",
                                "broker": broker.0,
                                "controller_epoch": epoch.0,
                                "previous_controller_epoch": previous,
                                "previous_broker": previous_broker.0,
                                "previous_at": event_json(previous_record),
                                "at": event_json(record),
                            });
                            anomalies.push((sentence, data));
                        }
                    }
                    // Track the highest epoch: a stale election is judged against it.
                    if controller_epoch.is_none_or(|(previous, _, _)| epoch.0 >= previous) {
                        controller_epoch = Some((epoch.0, *broker, record));
                    }
                }
                _ => {}
            }
        }
        violation(self.name(), None, anomalies, serde_json::Map::new())
    }
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use super::*;
    use ksim_model::types::{ControllerEpoch, LeaderEpoch, NodeId, ZkVersion};

    fn hw(broker: i32, epoch: i32, high_watermark: i64) -> (NodeId, Event) {
        (
            NodeId::Broker(BrokerId(broker)),
            Event::HighWatermarkChanged {
                tp: tp(0),
                broker: BrokerId(broker),
                leader_epoch: LeaderEpoch(epoch),
                high_watermark: Offset(high_watermark),
            },
        )
    }

    fn became_leader(broker: i32, epoch: i32, high_watermark: i64) -> (NodeId, Event) {
        (
            NodeId::Broker(BrokerId(broker)),
            Event::BecameLeader {
                tp: tp(0),
                broker: BrokerId(broker),
                leader_epoch: LeaderEpoch(epoch),
                isr: vec![BrokerId(0), BrokerId(1)],
                log_end_offset: Offset(50),
                high_watermark: Offset(high_watermark),
            },
        )
    }

    fn state(leader: Option<i32>, epoch: i32) -> (NodeId, Event) {
        (
            NodeId::Broker(BrokerId(2)),
            Event::PartitionStateChanged {
                tp: tp(0),
                leader: leader.map(BrokerId),
                leader_epoch: LeaderEpoch(epoch),
                isr: vec![BrokerId(0), BrokerId(1)],
                controller_epoch: ControllerEpoch(1),
                partition_epoch: ZkVersion(epoch),
                reason: "leader-failed".into(),
                last_known_elr: vec![],
            },
        )
    }

    fn elected(broker: i32, epoch: i32) -> (NodeId, Event) {
        (
            NodeId::Zk,
            Event::ControllerEpochIncremented {
                broker: BrokerId(broker),
                controller_epoch: ControllerEpoch(epoch),
            },
        )
    }

    #[test]
    fn a_leader_lowering_its_high_watermark_or_an_epoch_going_back_is_a_violation() {
        let events = [
            elected(2, 3),
            state(Some(1), 4),
            became_leader(1, 4, 30),
            hw(1, 4, 40),
            hw(1, 4, 35), // the drop
            hw(1, 4, 36), // still below the old peak: reported once, not again
            state(Some(0), 2),
            became_leader(1, 3, 30),
            elected(0, 2),
        ];
        let v = check_events(&MonotonicHighWatermark, &events);
        assert_eq!(v.len(), 1, "{v:?}");
        assert_eq!(v[0].check, "monotonic-high-watermark");
        assert_eq!(v[0].details["count"], 4);
        assert_eq!(
            v[0].message,
            "leader broker-1 of events-0 in leader epoch 4 lowered its high watermark from 40 to 35 \
             (broker-1 at t=400 ms; it was 40 since t=300 ms) (3 more like this in details)"
        );
        let kinds: Vec<&str> = (0..4)
            .map(|i| v[0].details["anomalies"][i]["kind"].as_str().unwrap())
            .collect();
        assert_eq!(
            kinds,
            [
                "high-watermark",
                "partition-leader-epoch",
                "became-leader-epoch",
                "controller-epoch"
            ]
        );
        assert_eq!(
            v[0].details["anomalies"][1]["message"],
            "the controller (controller epoch 1, broker-2 at t=600 ms) wrote events-0 with leader broker-0 in \
             leader epoch 2 after leader epoch 4 (leader broker-1, written by broker-2 at t=100 ms)"
        );
    }

    /// A broker that learns late that it won an older controller epoch (its answer delayed
    /// across a partition) is not an epoch going back: the coordination node stored epoch 2
    /// before epoch 3 (jepsen-2013-isr-shrink with min.insync.replicas=2, seed 56).
    #[test]
    fn a_controller_learning_late_that_it_won_an_older_epoch_is_not_a_violation() {
        let learned = |broker: i32, epoch: i32| {
            (
                NodeId::Broker(BrokerId(broker)),
                Event::ControllerElected {
                    broker: BrokerId(broker),
                    controller_epoch: ControllerEpoch(epoch),
                },
            )
        };
        let events = [elected(1, 2), elected(0, 3), learned(0, 3), learned(1, 2)];
        assert!(check_events(&MonotonicHighWatermark, &events).is_empty());
        let stored_backwards = [elected(0, 3), elected(1, 2)];
        assert_eq!(
            check_events(&MonotonicHighWatermark, &stored_backwards).len(),
            1
        );
    }

    #[test]
    fn a_new_leader_may_start_below_the_old_leaders_high_watermark() {
        let events = [
            elected(2, 1),
            state(Some(0), 1),
            became_leader(0, 1, 0),
            hw(0, 1, 10),
            hw(0, 1, 40),
            hw(0, 1, 40),
            state(None, 2),
            elected(1, 2),
            state(Some(1), 3),
            // The new leader learned HW 30 from its last fetch; the old leader had reached 40.
            became_leader(1, 3, 30),
            hw(1, 3, 35),
            hw(1, 3, 41),
            // The old leader, fenced, still reports within its own epoch.
            hw(0, 1, 40),
        ];
        assert!(check_events(&MonotonicHighWatermark, &events).is_empty());
    }

    #[test]
    fn a_restarted_broker_rebuilds_its_high_watermark_from_the_checkpoint() {
        let started = (
            NodeId::Broker(BrokerId(1)),
            Event::BrokerStarted {
                broker: BrokerId(1),
            },
        );
        let events = [
            elected(2, 1),
            state(Some(1), 1),
            became_leader(1, 1, 0),
            hw(1, 1, 40),
            // broker-1 crashes and restarts; no controller saw the bounce, so it is confirmed
            // as leader in the same epoch, starting from its older checkpointed HW.
            started.clone(),
            became_leader(1, 1, 30),
            hw(1, 1, 41),
        ];
        assert!(check_events(&MonotonicHighWatermark, &events).is_empty());
        // Without the restart the same drop is a violation.
        let events = [
            elected(2, 1),
            state(Some(1), 1),
            became_leader(1, 1, 0),
            hw(1, 1, 40),
            became_leader(1, 1, 30),
        ];
        assert_eq!(check_events(&MonotonicHighWatermark, &events).len(), 1);
    }
}
