//! `lost-write`: an acknowledged record below what consumers have read was never read.
//!
//! **Definition.** A send of value `v` completed `ok` with offset `o` in partition `p`, some
//! `ok` poll returned a record of `p` at an offset greater than `o`, and yet no poll, by any
//! consumer, ever returned `v`. Consumers read a partition in offset order, so once reads have
//! gone past `o` the record at `o` should have been delivered to someone: if `v` never showed
//! up, the log that consumers read no longer held it. This is the signature of a committed
//! record lost in a failover: an acks=1 leader that died before replication, an ISR shrunk to
//! the leader with `min.insync.replicas=1`, or a replica that truncated an acknowledged record
//! (KIP-101) and then led.
//!
//! **Source.** Jepsen's Kafka checker (`jepsen/src/jepsen/tests/kafka.clj`,
//! `lost-write-cases`): for each key (partition) take the highest offset any poll observed and
//! demand that every value acknowledged below it was observed by some poll. Jepsen works on a
//! dense "version order" index built from sends and polls to survive duplicates and conflicting
//! offsets; here offsets are exact and each value is unique, so the offset itself is the order
//! and "observed" means "returned by some poll, at any offset".
//!
//! **What is allowed.** Reads are judged collectively, across all consumers and the whole run
//! (Jepsen does the same), so a consumer that started late or a group member that was handed a
//! partition mid-log is not a violation by itself; this relies on the workload reading every
//! partition from the beginning at some point (`auto.offset.reset=earliest` or the final drain
//! phase). Values acknowledged above the highest offset read are not judged here: they are the
//! business of `unseen`. Sends that completed `info` (indeterminate) or `fail` are never lost
//! writes; nor is a value that was read at a different offset than acknowledged (that is a
//! `duplicate` or `inconsistent-offsets`). Records deleted by retention or compaction would be
//! reported, so scenarios that expect them must not run this check.

use super::{acked_sends, observations, violation, CheckInput, Checker, Seen, Source, Violation};
use ksim_model::types::{Offset, TopicPartition};
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};

/// See the module documentation.
pub struct LostWrite;

impl Checker for LostWrite {
    fn name(&self) -> &'static str {
        "lost-write"
    }

    fn check(&self, input: &CheckInput) -> Vec<Violation> {
        let mut read_values: BTreeSet<u64> = BTreeSet::new();
        // Per partition: the highest offset polled and the first poll (in history order) that
        // returned it, as the witness that reads went that far.
        let mut max_read: BTreeMap<TopicPartition, (Offset, u64, Source)> = BTreeMap::new();
        for obs in observations(input.history) {
            if obs.source.seen != Seen::Polled {
                continue;
            }
            read_values.insert(obs.value);
            let higher = max_read
                .get(&obs.tp)
                .is_none_or(|(o, _, _)| obs.offset > *o);
            if higher {
                max_read.insert(obs.tp.clone(), (obs.offset, obs.value, obs.source));
            }
        }

        let mut lost: Vec<_> = acked_sends(input.history)
            .into_iter()
            .filter(|send| !read_values.contains(&send.value))
            .filter_map(|send| {
                let offset = send.offset?;
                let (max_offset, max_value, reader) = max_read.get(&send.tp)?;
                (offset < *max_offset).then_some((send, offset, *max_offset, *max_value, *reader))
            })
            .collect();
        lost.sort_by(|a, b| {
            (&a.0.tp, a.1, a.0.source.index).cmp(&(&b.0.tp, b.1, b.0.source.index))
        });

        let anomalies = lost
            .into_iter()
            .map(|(send, offset, max_offset, max_value, reader)| {
                let sentence = format!(
                    "value {} acknowledged at {} offset {} ({}, t={} ms) was never read, although {} read {} up to offset {} (t={} ms)",
                    send.value,
                    send.tp,
                    offset,
                    send.source.process,
                    send.source.time_ms,
                    reader.process,
                    send.tp,
                    max_offset,
                    reader.time_ms
                );
                let mut data = send.to_json();
                data["max_read"] = json!({
                    "offset": max_offset.0,
                    "value": max_value,
                    "reader": reader.to_json(),
                });
                (sentence, data)
            })
            .collect();
        violation(self.name(), None, anomalies, serde_json::Map::new())
    }
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use super::*;
    use ksim_model::event::OpType;

    #[test]
    fn acked_write_below_a_read_offset_that_nobody_read_is_lost() {
        let mut h = HistoryBuilder::default();
        h.send(0, OpType::Ok, &tp(1), 100, 16)
            .send(0, OpType::Ok, &tp(1), 101, 17)
            .send(0, OpType::Ok, &tp(1), 102, 18);
        // After a failover offset 17 holds another value: 101 is gone, 103 is read past it.
        h.poll(0, &tp(1), &[(16, 100), (17, 103)]);
        h.poll(1, &tp(1), &[(40, 104)]);
        let v = check_history(&LostWrite, &h.entries);
        assert_eq!(v.len(), 1, "{v:?}");
        assert_eq!(v[0].check, "lost-write");
        assert_eq!(v[0].details["count"], 2);
        assert_eq!(
            v[0].message,
            "value 101 acknowledged at events-1 offset 17 (producer-0, t=30 ms) was never read, \
             although consumer-1 read events-1 up to offset 40 (t=90 ms) (1 more like this in details)"
        );
        assert_eq!(v[0].details["anomalies"][1]["value"], 102);
        assert_eq!(
            v[0].details["anomalies"][1]["max_read"]["reader"]["process"],
            "consumer-1"
        );
    }

    #[test]
    fn unread_writes_at_or_above_the_highest_read_and_indeterminate_sends_are_not_lost() {
        let mut h = HistoryBuilder::default();
        h.send(0, OpType::Ok, &tp(0), 1, 0)
            .send(0, OpType::Info, &tp(0), 2, 0)
            .send(0, OpType::Fail, &tp(0), 3, 0)
            .send(0, OpType::Ok, &tp(0), 4, 1)
            .send(0, OpType::Ok, &tp(0), 5, 2)
            .send(0, OpType::Ok, &tp(1), 6, 0);
        h.poll(0, &tp(0), &[(0, 1), (1, 4)]);
        // A value read at a different partition/offset than acknowledged is not lost.
        h.send(1, OpType::Ok, &tp(1), 7, 1);
        h.poll(1, &tp(1), &[(2, 7)]);
        h.poll(1, &tp(1), &[(0, 6)]);
        assert!(check_history(&LostWrite, &h.entries).is_empty());
    }
}
