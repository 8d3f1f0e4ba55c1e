//! `committed-record-lost`: a record Kafka promised to keep is gone from every replica.
//!
//! **Definition.** A leader answers a produce with `acks=all` only once its high watermark has
//! passed the batch, that is once every ISR member has it, and only if the ISR then had at least
//! `min.insync.replicas` members (otherwise it answers NOT_ENOUGH_REPLICAS_AFTER_APPEND). The
//! broker records such an answer as a `produce-acked` event; the producer's `ok` tells which
//! value sits at each offset. The record is *committed*. At the end of the run, no replica's log
//! may lack it: if no broker holds that value at that offset, the committed record was lost.
//!
//! **Source.** Kafka's replication design (a committed message is not lost as long as one
//! in-sync replica is alive); KafkaReplication.tla and KIP-101's data-loss scenarios; Jepsen's
//! 2013 Kafka analysis; KIP-966 for the limits of the promise. KAFKA-SEMANTICS.md states it as:
//! never lost while one ISR member holding it survives without losing power or disk.
//!
//! **What is allowed.** Kafka relies on replication, not on fsync: if every member of the ISR
//! the record was committed with (the acknowledging leader's ISR when its high watermark passed
//! the record, which every member then held) lost power or its disk after the record was
//! appended (a
//! `fault` event `power-fail` or `disk-loss` on each of them, or silent corruption by
//! `disk-fault`), Kafka made no promise and the record is not judged. The ISR the record was
//! appended with is not the one that matters: a member that never fetched the record may be
//! removed before the high watermark passes it, and one that catches up may join. Records acknowledged with `acks=1` or `acks=0` are not committed
//! when answered and are `lost-write`'s business. A replica that still holds the value at the
//! offset (even one out of the ISR) counts as keeping it: this check only flags records that are
//! gone everywhere. Records the log removed on purpose, by retention below the log start offset
//! or by the cleaner because a later record has the same key, are not lost
//! ([`super::Removed`]).

use super::lesson::{self, Lesson, Prevention};
use super::{violation, CheckInput, Checker, OffsetMap, Removed, Violation};
use ksim_model::event::{Event, OpType, OpValue};
use ksim_model::types::{BrokerId, NodeId, Offset, TopicPartition};
use serde_json::json;
use std::collections::BTreeMap;

/// See the module documentation.
pub struct CommittedRecordLost;

impl Checker for CommittedRecordLost {
    fn name(&self) -> &'static str {
        "committed-record-lost"
    }

    fn statement(&self) -> &'static str {
        "a record acknowledged with acks=all while the ISR met min.insync.replicas is never lost"
    }

    fn lesson(&self) -> Lesson {
        Lesson {
            intro: lesson::RECORD_DISAPPEARED,
            prevention: Prevention::Loss,
        }
    }

    fn notes(&self, input: &CheckInput) -> Vec<String> {
        let mut notes = super::Removed::from_events(input.events).notes(input.history);
        notes.extend(super::deleted_topics_notes(
            input.events,
            "committed records",
        ));
        notes
    }

    fn skip_reason(&self, input: &CheckInput) -> Option<String> {
        let scenario = input.scenario?;
        (!scenario
            .producers
            .iter()
            .any(|p| p.config.acks == ksim_model::protocol::Acks::All))
        .then(|| {
            "no producer sends with acks=all, so no acknowledgement promises that a record was \
             committed to the in-sync replicas"
                .to_string()
        })
    }

    fn check(&self, input: &CheckInput) -> Vec<Violation> {
        let deleted = super::deleted_topics(input.events);
        // The ISR each leader appended with, by (tp, base offset, leader epoch): the fallback
        // when the acknowledging leader's ISR is not known.
        let mut appended_isr: BTreeMap<(TopicPartition, Offset, i32), Vec<BrokerId>> =
            BTreeMap::new();
        // When each batch was appended, by (tp, base offset, leader epoch).
        let mut appended_at: BTreeMap<(TopicPartition, Offset, i32), u64> = BTreeMap::new();
        // Each leader's current ISR of each partition, as it last said (became leader, ISR
        // changed).
        let mut leader_isr: BTreeMap<(BrokerId, TopicPartition), Vec<BrokerId>> = BTreeMap::new();
        // Committed offset ranges: (tp, base, last, time, broker, epoch, ISR at commit).
        let mut committed = Vec::new();
        // Brokers whose power or disk was lost, with the times it happened.
        let mut data_lost: BTreeMap<BrokerId, Vec<u64>> = BTreeMap::new();
        for r in input.events {
            match &r.event {
                Event::ProduceAppended {
                    tp,
                    base_offset,
                    leader_epoch,
                    isr,
                    ..
                } => {
                    appended_isr.insert((tp.clone(), *base_offset, leader_epoch.0), isr.clone());
                    appended_at
                        .entry((tp.clone(), *base_offset, leader_epoch.0))
                        .or_insert(r.time_ms);
                }
                Event::BecameLeader {
                    tp, broker, isr, ..
                }
                | Event::IsrChanged {
                    tp, broker, isr, ..
                } => {
                    leader_isr.insert((*broker, tp.clone()), isr.clone());
                }
                Event::ProduceAcked {
                    tp,
                    broker,
                    leader_epoch,
                    base_offset,
                    last_offset,
                    error,
                    ..
                } if *error == ksim_model::protocol::ErrorCode::None
                    && !deleted.contains_key(tp.topic.as_str()) =>
                {
                    let isr = leader_isr
                        .get(&(*broker, tp.clone()))
                        .or_else(|| appended_isr.get(&(tp.clone(), *base_offset, leader_epoch.0)))
                        .cloned()
                        .unwrap_or_else(|| vec![*broker]);
                    committed.push((
                        tp.clone(),
                        *base_offset,
                        *last_offset,
                        r.time_ms,
                        *broker,
                        leader_epoch.0,
                        isr,
                    ));
                }
                Event::Fault { action, nodes, .. }
                    if action == "power-fail"
                        || action == "disk-loss"
                        || action == "disk-fault" =>
                {
                    for n in nodes {
                        if let Some(NodeId::Broker(b)) = NodeId::parse(n) {
                            data_lost.entry(b).or_default().push(r.time_ms);
                        }
                    }
                }
                _ => {}
            }
        }
        if committed.is_empty() {
            return Vec::new();
        }
        // Which value the producers were told sits at each (tp, offset), and when.
        // Per partition, then per offset: lookups compare the topic name once per committed
        // range, not once per record.
        // Each partition's (offset, time, value, producer) in offset order, history order at
        // one offset.
        let mut acked_values: BTreeMap<&TopicPartition, Vec<(Offset, u64, u64, NodeId)>> =
            BTreeMap::new();
        for e in input.history {
            if let (
                OpType::Ok,
                OpValue::Send {
                    tp,
                    value,
                    offset: Some(o),
                    ..
                },
            ) = (e.op.op_type, &e.op.value)
            {
                acked_values
                    .entry(tp)
                    .or_default()
                    .push((*o, e.time_ms, *value, e.process));
            }
        }
        for acks in acked_values.values_mut() {
            acks.sort_by_key(|(o, ..)| *o);
        }
        // What every replica holds at the end.
        // (A sorted vector per partition: a set quick to build and to ask.)
        let mut held: BTreeMap<&TopicPartition, Vec<(Offset, u64)>> = BTreeMap::new();
        for ((_, tp), records) in input.final_logs {
            held.entry(tp).or_default().extend(records.iter().copied());
        }
        for pairs in held.values_mut() {
            // A few sorted logs end to end: the stable sort merges them.
            pairs.sort();
            pairs.dedup();
        }
        let no_acks = Vec::new();
        let nothing_held = Vec::new();
        let removed = Removed::from_events(input.events);
        let mut anomalies = Vec::new();
        let mut judged: BTreeMap<TopicPartition, OffsetMap<()>> = BTreeMap::new();
        for (tp, base, last, acked_ms, broker, epoch, isr) in committed {
            // Kafka's promise holds only while one member of the ISR at commit keeps its power
            // and disk. A member's copy can be lost from the moment the leader appended the
            // record (a follower that fetched it and then lost power may still be counted by a
            // leader that learns of the loss later); a loss before the append took no copy.
            let since = appended_at
                .get(&(tp.clone(), base, epoch))
                .copied()
                .unwrap_or(acked_ms);
            let all_lost = isr.iter().all(|m| {
                data_lost
                    .get(m)
                    .is_some_and(|ts| ts.iter().any(|t| *t >= since))
            });
            if all_lost {
                continue;
            }
            let judged = judged.entry(tp.clone()).or_default();
            let acked_here = acked_values.get(&tp).unwrap_or(&no_acks);
            let held_here = held.get(&tp).unwrap_or(&nothing_held);
            for o in base.0..=last.0 {
                if !judged.insert_new(Offset(o), ()) {
                    continue;
                }
                // Deleted by retention or removed by the cleaner: gone on purpose.
                if removed.excuses(&tp, Offset(o)).is_some() {
                    continue;
                }
                // The value the producer was told about for this acknowledgement: the first ok
                // at this offset answered at or after the leader's acknowledgement.
                let from = acked_here.partition_point(|(x, ..)| x.0 < o);
                let Some((ok_ms, value, producer)) = acked_here[from..]
                    .iter()
                    .take_while(|(x, ..)| x.0 == o)
                    .map(|(_, t, v, p)| (*t, *v, *p))
                    .filter(|(t, _, _)| *t >= acked_ms)
                    .min()
                else {
                    continue;
                };
                if held_here.binary_search(&(Offset(o), value)).is_ok() {
                    continue;
                }
                let now_there: Vec<String> = input
                    .final_logs
                    .iter()
                    .filter(|((_, t), _)| *t == tp)
                    .filter_map(|((n, _), recs)| {
                        recs.iter()
                            .find(|(x, _)| x.0 == o)
                            .map(|(_, v)| format!("{n} holds {v}"))
                    })
                    .collect();
                let there = if now_there.is_empty() {
                    "no replica holds that offset".to_string()
                } else {
                    now_there.join(", ")
                };
                let isr_names: Vec<String> =
                    isr.iter().map(|b| format!("broker-{}", b.0)).collect();
                let sentence = format!(
                    "value {value} at {tp} offset {o}, appended by leader broker-{} in epoch {epoch} and committed with ISR [{}] at t={acked_ms} ms (acknowledged to {producer} at t={ok_ms} ms), is on no replica at the end: {there}",
                    broker.0,
                    isr_names.join(", ")
                );
                anomalies.push((
                    sentence,
                    json!({ "tp": tp.to_string(), "offset": o, "value": value, "leader": broker.0, "leader_epoch": epoch, "isr": isr.iter().map(|b| b.0).collect::<Vec<_>>(), "acked_ms": acked_ms }),
                ));
            }
        }
        violation(self.name(), None, anomalies, serde_json::Map::new())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{EventRecord, HistoryEntry};
    use ksim_model::event::ClientOp;
    use ksim_model::protocol::ErrorCode;
    use ksim_model::types::{LeaderEpoch, ProducerId, Sequence};

    fn tp() -> TopicPartition {
        TopicPartition::new("t", 0)
    }

    fn ev(time_ms: u64, event: Event) -> EventRecord {
        EventRecord {
            time_ms,
            node: NodeId::Broker(BrokerId(0)),
            event,
        }
    }

    fn appended_and_acked(isr: Vec<BrokerId>) -> Vec<EventRecord> {
        vec![
            ev(
                10,
                Event::ProduceAppended {
                    tp: tp(),
                    broker: BrokerId(0),
                    leader_epoch: LeaderEpoch(0),
                    base_offset: Offset(5),
                    last_offset: Offset(5),
                    producer_id: ProducerId(1),
                    base_sequence: Sequence(0),
                    isr,
                },
            ),
            ev(
                20,
                Event::ProduceAcked {
                    tp: tp(),
                    broker: BrokerId(0),
                    leader_epoch: LeaderEpoch(0),
                    base_offset: Offset(5),
                    last_offset: Offset(5),
                    acks: "all".into(),
                    error: ErrorCode::None,
                },
            ),
        ]
    }

    fn ok(value: u64) -> Vec<HistoryEntry> {
        vec![HistoryEntry {
            index: 0,
            time_ms: 25,
            process: NodeId::Producer(0),
            op: ClientOp {
                op_type: OpType::Ok,
                op_id: 1,
                value: OpValue::Send {
                    tp: tp(),
                    key: None,
                    value,
                    offset: Some(Offset(5)),
                },
                error: None,
            },
        }]
    }

    fn logs(entries: &[(i32, i64, u64)]) -> BTreeMap<(NodeId, TopicPartition), Vec<(Offset, u64)>> {
        let mut m: BTreeMap<(NodeId, TopicPartition), Vec<(Offset, u64)>> = BTreeMap::new();
        for (b, o, v) in entries {
            m.entry((NodeId::Broker(BrokerId(*b)), tp()))
                .or_default()
                .push((Offset(*o), *v));
        }
        m
    }

    fn check(
        history: &[HistoryEntry],
        events: &[EventRecord],
        final_logs: &BTreeMap<(NodeId, TopicPartition), Vec<(Offset, u64)>>,
    ) -> Vec<Violation> {
        CommittedRecordLost.check(&CheckInput {
            history,
            events,
            final_logs,
            scenario: None,
            snapshots: &[],
        })
    }

    #[test]
    fn a_committed_record_missing_from_every_replica_is_a_violation() {
        let events = appended_and_acked(vec![BrokerId(0), BrokerId(1)]);
        // Both replicas now hold another value at offset 5.
        let v = check(&ok(42), &events, &logs(&[(0, 5, 99), (1, 5, 99)]));
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].check, "committed-record-lost");
        assert!(
            v[0].message.contains("value 42 at t-0 offset 5"),
            "{}",
            v[0].message
        );
        assert!(
            v[0].message.contains("broker-0 holds 99"),
            "{}",
            v[0].message
        );
    }

    #[test]
    fn kept_records_and_records_beyond_the_promise_pass() {
        let events = appended_and_acked(vec![BrokerId(0), BrokerId(1)]);
        // One replica still holds it.
        assert!(check(&ok(42), &events, &logs(&[(0, 5, 99), (1, 5, 42)])).is_empty());
        // Every ISR member lost power afterwards: Kafka promised nothing.
        let mut beyond = events.clone();
        for b in ["broker-0", "broker-1"] {
            beyond.push(ev(
                30,
                Event::Fault {
                    action: "power-fail".into(),
                    nodes: vec![b.into()],
                    source: "random".into(),
                },
            ));
        }
        assert!(check(&ok(42), &beyond, &logs(&[(0, 5, 99)])).is_empty());
        // Only one of them lost power: still promised.
        let mut one = events.clone();
        one.push(ev(
            30,
            Event::Fault {
                action: "power-fail".into(),
                nodes: vec!["broker-0".into()],
                source: "random".into(),
            },
        ));
        assert_eq!(check(&ok(42), &one, &logs(&[(0, 5, 99)])).len(), 1);
    }

    fn power_fail(time_ms: u64, broker: &str) -> EventRecord {
        ev(
            time_ms,
            Event::Fault {
                action: "power-fail".into(),
                nodes: vec![broker.into()],
                source: "random".into(),
            },
        )
    }

    /// The leader's ISR when the high watermark passed the record decides whose survival Kafka
    /// promised, not the ISR at append (last-replica-standing seed 23: appended with ISR
    /// [2, 1] while broker-1 was down, committed after broker-1 was removed, with ISR [2, 0];
    /// both then lost power, so Kafka promised nothing).
    #[test]
    fn the_isr_at_commit_decides_not_the_isr_at_append() {
        let isr_changed = |isr: Vec<BrokerId>| {
            ev(
                15,
                Event::IsrChanged {
                    tp: tp(),
                    broker: BrokerId(0),
                    leader_epoch: LeaderEpoch(0),
                    isr,
                    partition_epoch: ksim_model::types::ZkVersion(1),
                },
            )
        };
        // Appended with ISR [0, 1], committed with ISR [0, 2]; 0 and 2 lose power later.
        let mut events = appended_and_acked(vec![BrokerId(0), BrokerId(1)]);
        events.insert(1, isr_changed(vec![BrokerId(0), BrokerId(2)]));
        events.push(power_fail(30, "broker-0"));
        events.push(power_fail(31, "broker-2"));
        assert!(check(&ok(42), &events, &logs(&[(1, 5, 99)])).is_empty());
        // Appended with ISR [0], committed with ISR [0, 2]; only broker-0 loses power: broker-2
        // held it at commit and kept its power, so the loss is judged.
        let mut events = appended_and_acked(vec![BrokerId(0)]);
        events.insert(1, isr_changed(vec![BrokerId(0), BrokerId(2)]));
        events.push(power_fail(30, "broker-0"));
        assert_eq!(check(&ok(42), &events, &logs(&[(2, 5, 99)])).len(), 1);
        // A power failure before the append took no copy of the record.
        let mut events = appended_and_acked(vec![BrokerId(0), BrokerId(1)]);
        events.insert(0, power_fail(1, "broker-0"));
        events.insert(1, power_fail(2, "broker-1"));
        assert_eq!(check(&ok(42), &events, &logs(&[(0, 5, 99)])).len(), 1);
        // One between the append (t=10) and the acknowledgement (t=20) did: the follower had
        // fetched the record and lost it; the leader counted it before it learned of the loss
        // (correlated-power-loss seed 2).
        let mut events = appended_and_acked(vec![BrokerId(0), BrokerId(1)]);
        events.insert(1, power_fail(12, "broker-1"));
        events.push(power_fail(30, "broker-0"));
        assert!(check(&ok(42), &events, &logs(&[(0, 5, 99)])).is_empty());
    }
}
