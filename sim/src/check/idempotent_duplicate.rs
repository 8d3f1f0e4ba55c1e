//! `idempotent-duplicate`: with idempotence, one producer batch was appended twice and both
//! copies survive.
//!
//! **Definition.** An idempotent producer stamps each batch with its producer id (PID),
//! producer epoch and the sequence number of its first record, per partition. The partition
//! leader keeps the last five batches of each producer (`ProducerStateEntry`,
//! `NUM_BATCHES_TO_RETAIN = 5`) and answers a retry of one of them with the offsets of the
//! original append instead of appending it again, so a (PID, epoch, sequence) is in a
//! partition's log at most once. The leader logs every append as a `produce-appended` event
//! with the partition, its broker and leader epoch, the offsets, the PID and the base
//! sequence. This check gathers, per (partition, PID, base sequence), the distinct offset
//! ranges it was appended at, and reports two appends at different offsets when some replica's
//! final log still holds, at the base offsets of both, the same value.
//!
//! **Why the final logs.** A second append of the same batch is not by itself a bug: if the
//! first copy was never replicated and was truncated away (the leader died and a follower
//! without it took over, or the old leader truncated on rejoining), the producer state that
//! would have caught the retry went with it, and the retry is rightly appended again, at the
//! same or another offset. Following every truncation and leader change through the event log
//! to prove the first copy was gone is easy to get wrong, so the check asks for the outcome
//! instead: a batch is a duplicate only if one replica's log, at the end of the run, holds both
//! copies. Each value the workload sends is unique and a retry carries the same records, so
//! the same value at both base offsets is that batch twice. This is sound (a copy that was
//! truncated is replaced by other records, or is absent) and also covers a producer epoch bump
//! (KIP-360), which restarts sequences at 0 with new records: the event carries no producer
//! epoch, but the values then differ. It misses a duplicate that a later failure erased from
//! every replica, which `duplicate` may still catch from the clients' side.
//!
//! **Source.** KIP-98 (idempotent producer); apache/kafka `ProducerStateEntry.java` and
//! `ProducerAppendInfo.java` (duplicate detection against the retained batch metadata); the
//! `idempotent-duplicate` row of `KAFKA-SEMANTICS.md`.
//!
//! **What is allowed.** Appends without a producer id (PID -1: `enable.idempotence=false`)
//! are not judged; duplicates there are expected and are `duplicate`'s business. Nor are
//! appends without a sequence (base sequence -1): a group coordinator's transactional offset
//! commits (TxnOffsetCommit, KIP-447) carry the producer's id but no sequence, as Kafka's
//! coordinator appends do (`RecordBatch.NO_SEQUENCE`, origin COORDINATOR), so each is a new
//! write, not a retry. The same
//! batch appended again at the *same* offsets (after its first copy was truncated) is not a
//! duplicate.

use super::lesson::{self, Lesson, Prevention};
use super::{at, event_json, violation, CheckInput, Checker, Violation};
use crate::history::EventRecord;
use ksim_model::event::Event;
use ksim_model::types::{BrokerId, Offset, ProducerId, Sequence, TopicPartition};
use serde_json::json;
use std::collections::BTreeMap;

/// See the module documentation.
pub struct IdempotentDuplicate;

/// One append of a batch: its offsets, and the leader and event that logged it first.
#[derive(Clone, Copy)]
struct Append<'a> {
    base_offset: Offset,
    last_offset: Offset,
    broker: BrokerId,
    leader_epoch: i32,
    record: &'a EventRecord,
}

impl Append<'_> {
    /// `offset 40` / `offsets 40..41`, `by broker-1 in leader epoch 2 (broker-1 at t=500 ms)`.
    fn describe(&self) -> String {
        let offsets = if self.last_offset == self.base_offset {
            format!("offset {}", self.base_offset)
        } else {
            format!("offsets {}..{}", self.base_offset, self.last_offset)
        };
        format!(
            "{offsets} by broker-{} in leader epoch {} (t={} ms)",
            self.broker, self.leader_epoch, self.record.time_ms
        )
    }

    fn to_json(self) -> serde_json::Value {
        json!({
            "base_offset": self.base_offset.0,
            "last_offset": self.last_offset.0,
            "broker": self.broker.0,
            "leader_epoch": self.leader_epoch,
            "at": event_json(self.record),
        })
    }
}

/// The value at `offset` in a final log, if present.
fn value_at(log: &[(Offset, u64)], offset: Offset) -> Option<u64> {
    match log.binary_search_by_key(&offset, |(o, _)| *o) {
        Ok(i) => Some(log[i].1),
        // Not sorted after all: fall back to a scan rather than miss it.
        Err(_) => log.iter().find(|(o, _)| *o == offset).map(|(_, v)| *v),
    }
}

impl Checker for IdempotentDuplicate {
    fn name(&self) -> &'static str {
        "idempotent-duplicate"
    }

    fn statement(&self) -> &'static str {
        "with idempotence, a (producer id, epoch, sequence) is appended once"
    }

    fn lesson(&self) -> Lesson {
        Lesson {
            intro: lesson::WRITTEN_TWICE,
            prevention: Prevention::Duplicate,
        }
    }

    fn skip_reason(&self, input: &CheckInput) -> Option<String> {
        let scenario = input.scenario?;
        (!scenario
            .producers
            .iter()
            .any(|p| p.config.enable_idempotence))
        .then(|| {
            "no producer sets enable.idempotence=true, so no batch carries a producer id and \
             sequence to judge"
                .to_string()
        })
    }

    fn check(&self, input: &CheckInput) -> Vec<Violation> {
        // (partition, PID, base sequence) -> distinct appends, in event order.
        let mut appends: BTreeMap<(TopicPartition, ProducerId, Sequence), Vec<Append<'_>>> =
            BTreeMap::new();
        for record in input.events {
            let Event::ProduceAppended {
                tp,
                broker,
                leader_epoch,
                base_offset,
                last_offset,
                producer_id,
                base_sequence,
                ..
            } = &record.event
            else {
                continue;
            };
            if *producer_id == ProducerId::NONE || base_sequence.0 < 0 {
                continue;
            }
            let list = appends
                .entry((tp.clone(), *producer_id, *base_sequence))
                .or_default();
            let seen = list
                .iter()
                .any(|a| a.base_offset == *base_offset && a.last_offset == *last_offset);
            if !seen {
                list.push(Append {
                    base_offset: *base_offset,
                    last_offset: *last_offset,
                    broker: *broker,
                    leader_epoch: leader_epoch.0,
                    record,
                });
            }
        }

        let mut anomalies = Vec::new();
        for ((tp, pid, sequence), list) in &appends {
            for (i, first) in list.iter().enumerate() {
                for second in &list[i + 1..] {
                    if first.base_offset == second.base_offset {
                        continue;
                    }
                    // A replica whose final log holds the same value at both base offsets.
                    let witness = input.final_logs.iter().find_map(|((node, log_tp), log)| {
                        if log_tp != tp {
                            return None;
                        }
                        let a = value_at(log, first.base_offset)?;
                        let b = value_at(log, second.base_offset)?;
                        (a == b).then_some((*node, a))
                    });
                    let Some((node, value)) = witness else {
                        continue;
                    };
                    let sentence = format!(
                        "producer id {pid} sequence {sequence} was appended to {tp} twice: at {} and at {}; {node}'s final log still holds value {value} at both offsets {} and {}",
                        first.describe(),
                        second.describe(),
                        first.base_offset,
                        second.base_offset,
                    );
                    let data = json!({
                        "tp": tp.to_string(),
                        "producer_id": pid.0,
                        "base_sequence": sequence.0,
                        "appends": [first.to_json(), second.to_json()],
                        "witness": { "replica": node.to_string(), "value": value },
                        "first_appended": at(first.record),
                    });
                    anomalies.push((sentence, data));
                }
            }
        }
        violation(self.name(), None, anomalies, serde_json::Map::new())
    }
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use super::*;
    use ksim_model::types::{LeaderEpoch, NodeId};

    fn appended(
        broker: i32,
        epoch: i32,
        base: i64,
        last: i64,
        pid: i64,
        seq: i32,
    ) -> (NodeId, Event) {
        (
            NodeId::Broker(BrokerId(broker)),
            Event::ProduceAppended {
                tp: tp(0),
                broker: BrokerId(broker),
                leader_epoch: LeaderEpoch(epoch),
                base_offset: Offset(base),
                last_offset: Offset(last),
                producer_id: ProducerId(pid),
                base_sequence: Sequence(seq),
                isr: vec![BrokerId(0), BrokerId(1)],
            },
        )
    }

    fn run(events: &[(NodeId, Event)], logs: &[(i32, &[(i64, u64)])]) -> Vec<Violation> {
        let records: Vec<EventRecord> = events
            .iter()
            .enumerate()
            .map(|(i, (node, event))| EventRecord {
                time_ms: i as u64 * 100,
                node: *node,
                event: event.clone(),
            })
            .collect();
        let final_logs: BTreeMap<(NodeId, TopicPartition), Vec<(Offset, u64)>> = logs
            .iter()
            .map(|(b, records)| {
                (
                    (NodeId::Broker(BrokerId(*b)), tp(0)),
                    records.iter().map(|&(o, v)| (Offset(o), v)).collect(),
                )
            })
            .collect();
        IdempotentDuplicate.check(&CheckInput {
            history: &[],
            events: &records,
            final_logs: &final_logs,
            scenario: None,
            snapshots: &[],
        })
    }

    #[test]
    fn a_batch_appended_twice_with_both_copies_surviving_is_a_duplicate() {
        let events = [
            appended(0, 1, 4, 5, 1000, 7),
            // The retry was not recognised: the same batch again at 6..7.
            appended(0, 1, 6, 7, 1000, 7),
        ];
        let log: &[(i64, u64)] = &[(4, 70), (5, 71), (6, 70), (7, 71)];
        let v = run(&events, &[(0, log), (1, log)]);
        assert_eq!(v.len(), 1, "{v:?}");
        assert_eq!(v[0].check, "idempotent-duplicate");
        assert_eq!(v[0].details["count"], 1);
        assert_eq!(
            v[0].message,
            "producer id 1000 sequence 7 was appended to events-0 twice: at offsets 4..5 by \
             broker-0 in leader epoch 1 (t=0 ms) and at offsets 6..7 by broker-0 in leader epoch 1 \
             (t=100 ms); broker-0's final log still holds value 70 at both offsets 4 and 6"
        );
        assert_eq!(v[0].details["anomalies"][0]["appends"][1]["base_offset"], 6);
        // Without the final logs there is no proof both copies survived.
        assert!(check_events(&IdempotentDuplicate, &events).is_empty());
    }

    #[test]
    fn a_reappend_after_truncation_an_epoch_bump_or_without_pid_or_sequence_is_not_a_duplicate() {
        let events = [
            // Appended at 4 by broker-0, truncated away; broker-1 appended the retry at 3.
            appended(0, 1, 4, 4, 1000, 7),
            appended(1, 2, 3, 3, 1000, 7),
            // Re-appended at the same offset after a truncation.
            appended(1, 2, 5, 5, 1000, 8),
            appended(2, 3, 5, 5, 1000, 8),
            // New producer epoch: sequences restart at 0 with new records.
            appended(2, 3, 0, 0, 1000, 0),
            appended(2, 3, 6, 6, 1000, 0),
            // No idempotence: PID -1.
            appended(2, 3, 1, 1, -1, -1),
            appended(2, 3, 2, 2, -1, -1),
            // A group coordinator's TxnOffsetCommit records: the producer's id, no sequence.
            appended(2, 3, 1, 1, 1000, -1),
            appended(2, 3, 2, 2, 1000, -1),
        ];
        let log: &[(i64, u64)] = &[
            (0, 60),
            (1, 61),
            (2, 61),
            (3, 70),
            (4, 90),
            (5, 80),
            (6, 62),
        ];
        assert!(run(&events, &[(0, log), (1, log), (2, log)]).is_empty());
    }
}
