//! `poll-skip`: a consumer's successive polls of a partition skip over records that exist.
//!
//! **Definition.** A consumer process polls a partition, and the last record that poll
//! returned for it is at offset `o1`; the process's next `ok` poll that returns records of the
//! same partition starts at offset `o2 > o1`, and some offset strictly between `o1` and `o2`
//! is known to hold a value: an `ok` send was acknowledged there, or some `ok` poll (by any
//! consumer) returned a record there. The consumer jumped over a record of the log it was
//! reading in order. In Kafka the consumer's position only advances past what `poll()`
//! returned, so between two polls, with no change of assignment and no seek, the next poll
//! starts exactly where the previous one ended. A skip means records were lost from the log
//! the consumer read (a failover to a replica that did not have them, then new records
//! appended at the same offsets and read past the hole), or the consumer's position was
//! reset forward (`auto.offset.reset=latest` after OFFSET_OUT_OF_RANGE).
//!
//! **Source.** Jepsen's Kafka checker (`jepsen/src/jepsen/tests/kafka.clj`,
//! `poll-skip+nonmonotonic-cases`, the `:skip` kind): per process, per key, compare the index
//! of the last value the previous poll of that key read with the index of the first value the
//! next poll read, in the key's version order; a difference above one is a skip. Jepsen's
//! version order is a dense index over the offsets any send or poll revealed, so holes in the
//! offsets that nothing revealed (transaction markers, in Jepsen's words) are not skips. Here
//! offsets are exact, so the same rule reads: some *known* offset lies strictly between.
//!
//! **What is allowed.** Jepsen allows `poll-skip` under `subscribe`: a group rebalance may
//! hand the partition to the consumer at the group's committed offset, which can be anywhere,
//! and Jepsen forgets a process's last read of a key whenever it subscribes or assigns anew.
//! The rule here is the same: the check applies to a process's successive polls of a
//! partition only while that process never saw its assignment change. ksim's consumers run in
//! assign mode with a fixed assignment (every partition of their topics) and there are no
//! consumer groups yet, so the history records no assignment change and the check always
//! applies; when groups arrive, a process's last read of a partition must be forgotten when
//! the partition is revoked. Offsets that no client ever saw are not judged (nothing proves a
//! record existed there). Offsets the log removed on purpose (retention, compaction; see
//! [`super::Removed`]) are not known records: a consumer rightly skips them.

use super::{observations, violation, CheckInput, Checker, Source, Violation};
use crate::history::HistoryEntry;
use ksim_model::event::{OpType, OpValue};
use ksim_model::types::{NodeId, Offset, TopicPartition};
use serde_json::json;
use std::collections::BTreeMap;

/// See the module documentation.
pub struct PollSkip;

/// Every (partition, offset) some `ok` send or `ok` poll revealed, with the first value seen
/// there and where it was seen (shared with `int-poll-skip`).
pub(super) fn known_offsets(
    history: &[HistoryEntry],
) -> BTreeMap<TopicPartition, BTreeMap<Offset, (u64, Source)>> {
    let mut known: BTreeMap<TopicPartition, BTreeMap<Offset, (u64, Source)>> = BTreeMap::new();
    for obs in observations(history) {
        known
            .entry(obs.tp)
            .or_default()
            .entry(obs.offset)
            .or_insert((obs.value, obs.source));
    }
    known
}

/// The known offsets strictly between `low` and `high`, in offset order.
pub(super) fn known_between(
    known: &BTreeMap<TopicPartition, BTreeMap<Offset, (u64, Source)>>,
    tp: &TopicPartition,
    low: Offset,
    high: Offset,
) -> Vec<(Offset, u64, Source)> {
    if high.0 - low.0 < 2 {
        return Vec::new();
    }
    known
        .get(tp)
        .map(|offsets| {
            offsets
                .range(low.next()..high)
                .map(|(o, (v, s))| (*o, *v, *s))
                .collect()
        })
        .unwrap_or_default()
}

/// How many skipped offsets an anomaly lists in its details (a position reset can jump over
/// thousands); `skipped_count` always says how many there were.
const SKIPPED_LISTED: usize = 20;

/// The skipped offsets as data: `skipped` (the first [`SKIPPED_LISTED`]) and `skipped_count`.
pub(super) fn skipped_json(skipped: &[(Offset, u64, Source)]) -> (serde_json::Value, usize) {
    let listed = skipped
        .iter()
        .take(SKIPPED_LISTED)
        .map(|(o, v, s)| json!({ "offset": o.0, "value": v, "seen": s.to_json() }))
        .collect::<Vec<_>>();
    (json!(listed), skipped.len())
}

/// `skipping offset 17 (value 101, acknowledged to producer-0 at t=30 ms) and 2 more known
/// offsets`; `None` when nothing known was skipped.
pub(super) fn skipping(skipped: &[(Offset, u64, Source)]) -> Option<String> {
    let (offset, value, source) = skipped.first()?;
    let more = match skipped.len() {
        1 => String::new(),
        2 => " and 1 more known offset".to_string(),
        n => format!(" and {} more known offsets", n - 1),
    };
    Some(format!(
        "skipping offset {offset} (value {value}, {}){more}",
        source.describe()
    ))
}

/// One `ok` poll: who, when, and its records grouped by partition as (offset, value), each
/// partition's records in the order the poll returned them.
pub(super) struct Poll<'a> {
    pub entry: &'a HistoryEntry,
    pub by_partition: BTreeMap<TopicPartition, Vec<(Offset, u64)>>,
}

/// Every `ok` poll that returned records, in history order. A process's polls are sequential,
/// so its completions are in the order it issued them.
pub(super) fn ok_polls(history: &[HistoryEntry]) -> Vec<Poll<'_>> {
    history
        .iter()
        .filter(|e| e.op.op_type == OpType::Ok)
        .filter_map(|entry| match &entry.op.value {
            OpValue::Poll { records } if !records.is_empty() => {
                let mut by_partition: BTreeMap<TopicPartition, Vec<(Offset, u64)>> =
                    BTreeMap::new();
                for r in records {
                    by_partition
                        .entry(r.tp.clone())
                        .or_default()
                        .push((r.offset, r.value));
                }
                Some(Poll {
                    entry,
                    by_partition,
                })
            }
            _ => None,
        })
        .collect()
}

/// A process's previous poll of a partition: its last record and the poll's entry.
type LastRead<'a> = BTreeMap<(NodeId, TopicPartition), (Offset, u64, &'a HistoryEntry)>;

/// Walks each process's successive polls of each partition and calls `judge` with the last
/// record of the previous poll, the first record of the next one, and both polls' entries.
/// The assignment never changes in assign mode (see the module documentation), so a process
/// remembers its last read of a partition for the whole run.
pub(super) fn successive_polls<'a>(
    history: &'a [HistoryEntry],
    mut judge: impl FnMut(
        &TopicPartition,
        (Offset, u64, &'a HistoryEntry),
        (Offset, u64, &'a HistoryEntry),
    ),
) {
    let mut last_read: LastRead<'a> = BTreeMap::new();
    for poll in ok_polls(history) {
        for (tp, records) in &poll.by_partition {
            let (Some(&(first_offset, first_value)), Some(&(last_offset, last_value))) =
                (records.first(), records.last())
            else {
                continue;
            };
            let key = (poll.entry.process, tp.clone());
            if let Some(previous) = last_read.get(&key) {
                judge(tp, *previous, (first_offset, first_value, poll.entry));
            }
            last_read.insert(key, (last_offset, last_value, poll.entry));
        }
    }
}

impl Checker for PollSkip {
    fn name(&self) -> &'static str {
        "poll-skip"
    }

    fn notes(&self, input: &CheckInput) -> Vec<String> {
        super::Removed::from_events(input.events).notes(input.history)
    }

    fn skip_reason(&self, input: &CheckInput) -> Option<String> {
        super::without_consumers(input, "there are no successive polls to compare")
    }

    fn check(&self, input: &CheckInput) -> Vec<Violation> {
        let mut known = known_offsets(input.history);
        super::Removed::from_events(input.events).forget(&mut known);
        let mut anomalies = Vec::new();
        successive_polls(input.history, |tp, (o1, v1, before), (o2, v2, after)| {
            if o2 <= o1 {
                return; // Going back is `nonmonotonic-poll`.
            }
            let skipped = known_between(&known, tp, o1, o2);
            let Some(skipping) = skipping(&skipped) else {
                return;
            };
            let sentence = format!(
                "{} polled {tp} up to offset {o1} (t={} ms), then its next poll of {tp} \
                 started at offset {o2} (t={} ms), {skipping}",
                after.process, before.time_ms, after.time_ms,
            );
            let (listed, count) = skipped_json(&skipped);
            let data = json!({
                "process": after.process.to_string(),
                "tp": tp.to_string(),
                "previous": {
                    "offset": o1.0, "value": v1, "index": before.index, "time_ms": before.time_ms,
                },
                "next": {
                    "offset": o2.0, "value": v2, "index": after.index, "time_ms": after.time_ms,
                },
                "skipped": listed,
                "skipped_count": count,
            });
            anomalies.push((sentence, data));
        });
        violation(self.name(), None, anomalies, serde_json::Map::new())
    }
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use super::*;

    #[test]
    fn a_consumer_whose_next_poll_jumps_over_a_known_record_skipped() {
        let mut h = HistoryBuilder::default();
        h.send(0, OpType::Ok, &tp(0), 100, 16)
            .send(0, OpType::Ok, &tp(0), 101, 17)
            .send(0, OpType::Ok, &tp(0), 102, 18);
        h.poll(0, &tp(0), &[(15, 99), (16, 100)]);
        // Offset 17 (value 101) exists, but the next poll starts at 18.
        h.poll(0, &tp(0), &[(18, 102), (19, 103)]);
        // Another consumer's skip over an offset only a poll revealed.
        h.poll(1, &tp(0), &[(14, 98)]);
        h.poll(1, &tp(0), &[(16, 100)]);
        let v = check_history(&PollSkip, &h.entries);
        assert_eq!(v.len(), 1, "{v:?}");
        assert_eq!(v[0].check, "poll-skip");
        assert_eq!(v[0].details["count"], 2);
        assert_eq!(
            v[0].message,
            "consumer-0 polled events-0 up to offset 16 (t=70 ms), then its next poll of events-0 \
             started at offset 18 (t=90 ms), skipping offset 17 (value 101, acknowledged to \
             producer-0 at t=30 ms) (1 more like this in details)"
        );
        assert_eq!(v[0].details["anomalies"][1]["process"], "consumer-1");
        assert_eq!(v[0].details["anomalies"][1]["skipped"][0]["offset"], 15);
        assert_eq!(v[0].details["anomalies"][0]["skipped_count"], 1);
    }

    #[test]
    fn contiguous_polls_unknown_holes_and_other_partitions_are_not_skips() {
        let mut h = HistoryBuilder::default();
        h.send(0, OpType::Ok, &tp(0), 1, 0)
            .send(0, OpType::Ok, &tp(1), 2, 3);
        h.poll(0, &tp(0), &[(0, 1), (1, 5)]);
        h.poll(0, &tp(0), &[(2, 6)]);
        // Offsets 3..=9 were never revealed by anyone: a hole, not a skip.
        h.poll(0, &tp(0), &[(10, 7)]);
        // Each consumer and each partition is tracked on its own.
        h.poll(0, &tp(1), &[(3, 2)]);
        h.poll(1, &tp(0), &[(2, 6)]);
        // Going back is `nonmonotonic-poll`, not a skip.
        h.poll(1, &tp(0), &[(0, 1)]);
        assert!(check_history(&PollSkip, &h.entries).is_empty());
    }
}
