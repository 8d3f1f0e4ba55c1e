//! `poll-skip`: a consumer's successive polls of a partition skip over records that exist.
//!
//! **Definition.** A consumer process polls a partition, and the last record that poll
//! returned for it is at offset `o1`; the process's next `ok` poll that returns records of the
//! same partition starts at offset `o2 > o1`, and some offset strictly between `o1` and `o2`
//! is known to hold a value: an `ok` send was acknowledged there, or some `ok` poll (by any
//! consumer) returned a record there. The consumer jumped over a record of the log it was
//! reading in order. In Kafka the consumer's position only advances past what `poll()`
//! returned, so between two polls, with no change of assignment and no seek, the next poll
//! starts exactly where the previous one ended (or, after a seek, at the seek's offset). A skip means records were lost from the log
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
//! partition only while that process never saw its assignment of the partition change. A
//! consumer in assign mode has a fixed assignment (every partition of its topics), so a
//! running process never sees it change; a process that crashed and started again assigns
//! anew, and its reads are judged afresh from where it started (the group's committed offset,
//! when it has a `group.id`; see `successive_polls`). A consumer in subscribe mode forgets its
//! last read of a partition whenever its own events say the partition was assigned to it,
//! revoked or lost (`partitions-assigned`, `partitions-revoked`, `partitions-lost`): a
//! partition reassigned to it starts at the group's committed offset, not where its previous
//! owner (or it, in an earlier generation) stopped; between two such events its polls are
//! judged as in assign mode. Offsets that no client ever saw are not judged (nothing proves a
//! record existed there). Offsets the log removed on purpose (retention, compaction; see
//! [`super::Removed`]) are not known records: a consumer rightly skips them.
//!
//! **Seeks and resets.** A consumer that moves its own position is not skipping: an
//! application `seek(tp, offset)` (an op `seek` in the history) makes `offset` where the next
//! poll of `tp` must start, as Jepsen's checker starts afresh when a process assigns anew; a
//! reset by `auto.offset.reset` after OFFSET_OUT_OF_RANGE (an internal event) does the same
//! from the position it replaced (see `successive_polls`). The next poll is then judged
//! against the new position: a poll that starts past a seek's offset still skips. A note
//! counts the seeks and resets so taken. Other resets (a KIP-320 log truncation) excuse nothing.

use super::lesson::{self, Lesson, Prevention};
use super::{for_each_observation, violation, CheckInput, Checker, Source, Violation};
use crate::history::{EventRecord, HistoryEntry};
use ksim_model::event::{Event, OpType, OpValue};
use ksim_model::types::{NodeId, Offset, TopicPartition};
use serde_json::json;
use std::collections::BTreeMap;

/// See the module documentation.
pub struct PollSkip;

/// Every (partition, offset) some `ok` send or `ok` poll revealed, with the first value seen
/// there and where it was seen (shared with `int-poll-skip`).
pub(super) fn known_offsets(history: &[HistoryEntry]) -> KnownOffsets {
    // Per partition met so far (a handful: looked up by a scan, starting with the last one),
    // the first value seen at each offset.
    let mut known: Vec<(TopicPartition, super::OffsetMap<(u64, Source)>)> = Vec::new();
    let mut last = 0;
    for_each_observation(history, |obs| {
        if known.get(last).is_none_or(|(tp, _)| *tp != obs.tp) {
            last = match known.iter().position(|(tp, _)| *tp == obs.tp) {
                Some(i) => i,
                None => {
                    known.push((obs.tp.clone(), super::OffsetMap::default()));
                    known.len() - 1
                }
            };
        }
        known[last]
            .1
            .insert_new(obs.offset, (obs.value, obs.source));
    });
    KnownOffsets(
        known
            .into_iter()
            .map(|(tp, offsets)| {
                let offsets = offsets
                    .into_sorted()
                    .into_iter()
                    .map(|(o, (v, s))| (o, v, s))
                    .collect();
                (tp, offsets)
            })
            .collect(),
    )
}

/// See [`known_offsets`]: per partition, (offset, first value seen there, where), in offset
/// order, one per offset.
pub(super) struct KnownOffsets(BTreeMap<TopicPartition, Vec<(Offset, u64, Source)>>);

impl KnownOffsets {
    /// Forgets the offsets the log removed on purpose (see [`super::Removed`]).
    pub(super) fn forget(&mut self, removed: &super::Removed) {
        if removed.is_empty() {
            return;
        }
        for (tp, offsets) in self.0.iter_mut() {
            offsets.retain(|(o, _, _)| removed.excuses(tp, *o).is_none());
        }
    }
}

/// The known offsets strictly between `low` and `high`, in offset order.
pub(super) fn known_between(
    known: &KnownOffsets,
    tp: &TopicPartition,
    low: Offset,
    high: Offset,
) -> Vec<(Offset, u64, Source)> {
    if high.0 - low.0 < 2 {
        return Vec::new();
    }
    let Some(offsets) = known.0.get(tp) else {
        return Vec::new();
    };
    let from = offsets.partition_point(|(o, _, _)| *o < low.next());
    let to = offsets.partition_point(|(o, _, _)| *o < high);
    offsets[from..to.max(from)].to_vec()
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

/// Every `ok` poll that returned records, in history order, and every `ok` (committed)
/// transaction whose `poll` micro-operations (a processor's input) returned records, as one
/// poll of its process. A process's polls are sequential,
/// so its completions are in the order it issued them.
pub(super) fn ok_polls(history: &[HistoryEntry]) -> Vec<Poll<'_>> {
    history
        .iter()
        .filter(|e| e.op.op_type == OpType::Ok)
        .filter_map(|entry| match &entry.op.value {
            OpValue::Poll { .. } | OpValue::Txn { .. } => {
                let records: Vec<&ksim_model::event::PolledRecord> = match &entry.op.value {
                    OpValue::Poll { records } => records.iter().collect(),
                    OpValue::Txn { mops, .. } => mops
                        .iter()
                        .flat_map(|m| match m {
                            ksim_model::event::TxnMop::Poll { records } => records.iter().collect(),
                            ksim_model::event::TxnMop::Send { .. } => Vec::new(),
                        })
                        .collect(),
                    _ => Vec::new(),
                };
                if records.is_empty() {
                    return None;
                }
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

/// What set the offset a process's next poll of a partition is expected to start at.
#[derive(Debug, Clone, Copy)]
pub(super) enum Cause<'a> {
    /// The previous poll's last record of the partition, at `offset` with `value`.
    Read {
        offset: Offset,
        value: u64,
        entry: &'a HistoryEntry,
    },
    /// The application's `seek` (an `ok` op `seek`).
    Seek { entry: &'a HistoryEntry },
    /// `auto.offset.reset` after OFFSET_OUT_OF_RANGE moved the position (an internal event
    /// [`Event::ConsumerPositionReset`] with reason `offset-out-of-range`).
    Reset {
        from: Offset,
        strategy: &'a str,
        time_ms: u64,
    },
    /// The process read its group's committed offset (an `ok` op `offset-fetch`) and starts
    /// there.
    Committed { entry: &'a HistoryEntry },
}

/// Where a process's next poll of a partition must start (`next_offset`), and why.
#[derive(Debug, Clone, Copy)]
pub(super) struct Expected<'a> {
    pub next_offset: Offset,
    pub cause: Cause<'a>,
}

impl Expected<'_> {
    /// `consumer-0 polled events-0 up to offset 3 (value 13, t=10 ms)`, or the seek or reset
    /// that set the expected position, as the start of an anomaly's sentence.
    pub fn describe(&self, process: NodeId, tp: &TopicPartition) -> String {
        match self.cause {
            Cause::Read {
                offset,
                value,
                entry,
            } => format!(
                "{process} polled {tp} up to offset {offset} (value {value}, t={} ms)",
                entry.time_ms
            ),
            Cause::Seek { entry } => format!(
                "{process} seeked {tp} to offset {} (t={} ms)",
                self.next_offset, entry.time_ms
            ),
            Cause::Reset {
                from,
                strategy,
                time_ms,
            } => format!(
                "{process} had its position in {tp} reset from {from} to {} \
                 (OFFSET_OUT_OF_RANGE, auto.offset.reset={strategy}, t={time_ms} ms)",
                self.next_offset
            ),
            Cause::Committed { entry } => format!(
                "{process} read its group's committed offset {} for {tp} (t={} ms)",
                self.next_offset, entry.time_ms
            ),
        }
    }

    /// The same as data: `offset` is the last record read (the expected next offset minus one,
    /// for a seek or a reset), `value` and `index` are set for a read only.
    pub fn to_json(&self) -> serde_json::Value {
        let last = self.next_offset.0 - 1;
        match self.cause {
            Cause::Read {
                offset,
                value,
                entry,
            } => json!({
                "offset": offset.0, "value": value, "index": entry.index, "time_ms": entry.time_ms,
            }),
            Cause::Seek { entry } => json!({
                "offset": last, "seek": self.next_offset.0, "index": entry.index,
                "time_ms": entry.time_ms,
            }),
            Cause::Reset {
                from,
                strategy,
                time_ms,
            } => json!({
                "offset": last, "reset": { "from": from.0, "to": self.next_offset.0,
                "strategy": strategy }, "time_ms": time_ms,
            }),
            Cause::Committed { entry } => json!({
                "offset": last, "committed": self.next_offset.0, "index": entry.index,
                "time_ms": entry.time_ms,
            }),
        }
    }
}

/// The resets by `auto.offset.reset` after OFFSET_OUT_OF_RANGE, per (consumer, partition), in
/// event order: (from, to, strategy, time).
type OutOfRangeResets<'a> = BTreeMap<(NodeId, TopicPartition), Vec<(Offset, Offset, &'a str, u64)>>;

fn out_of_range_resets(events: &[EventRecord]) -> OutOfRangeResets<'_> {
    let mut resets: OutOfRangeResets<'_> = BTreeMap::new();
    for r in events {
        if let Event::ConsumerPositionReset {
            tp,
            from_offset: Some(from),
            to_offset,
            strategy,
            reason,
        } = &r.event
        {
            if reason == "offset-out-of-range" {
                resets.entry((r.node, tp.clone())).or_default().push((
                    *from,
                    *to_offset,
                    strategy.as_str(),
                    r.time_ms,
                ));
            }
        }
    }
    resets
}

/// When each client process crashed or stopped (a `kill`, `power-fail`, `disk-loss` or
/// `shutdown` fault naming it), in event order.
fn process_crashes(events: &[EventRecord]) -> BTreeMap<NodeId, Vec<u64>> {
    let mut out: BTreeMap<NodeId, Vec<u64>> = BTreeMap::new();
    for r in events {
        if let Event::Fault { action, nodes, .. } = &r.event {
            if matches!(
                action.as_str(),
                "kill" | "power-fail" | "disk-loss" | "shutdown"
            ) {
                for n in nodes.iter().filter_map(|n| NodeId::parse(n)) {
                    if matches!(n, NodeId::Consumer(_)) {
                        out.entry(n).or_default().push(r.time_ms);
                    }
                }
            }
        }
    }
    out
}

/// The changes of a subscribe-mode consumer's assignment, in event order: (time, consumer,
/// partitions assigned, revoked or lost).
fn assignment_changes(events: &[EventRecord]) -> Vec<(u64, NodeId, &[TopicPartition])> {
    events
        .iter()
        .filter_map(|r| match &r.event {
            Event::PartitionsAssigned { partitions, .. }
            | Event::PartitionsRevoked { partitions, .. }
            | Event::PartitionsLost { partitions, .. } => {
                Some((r.time_ms, r.node, partitions.as_slice()))
            }
            _ => None,
        })
        .collect()
}

/// How many position changes the poll checks took as the consumer's new expected position:
/// (seeks, resets after OFFSET_OUT_OF_RANGE, assignment changes in subscribe mode).
pub(super) fn position_changes(
    history: &[HistoryEntry],
    events: &[EventRecord],
) -> (usize, usize, usize) {
    let seeks = history
        .iter()
        .filter(|e| e.op.op_type == OpType::Ok && matches!(e.op.value, OpValue::Seek { .. }))
        .count();
    let resets = out_of_range_resets(events).values().map(Vec::len).sum();
    let rebalances = assignment_changes(events)
        .iter()
        .filter(|(_, _, p)| !p.is_empty())
        .count();
    (seeks, resets, rebalances)
}

/// The note `poll-skip` and `nonmonotonic-poll` show when a seek or a reset moved a consumer.
pub(super) fn position_change_notes(input: &CheckInput) -> Vec<String> {
    let (seeks, resets, rebalances) = position_changes(input.history, input.events);
    let mut parts = Vec::new();
    if seeks > 0 {
        parts.push(format!(
            "{seeks} `seek` call{}",
            if seeks == 1 { "" } else { "s" }
        ));
    }
    if resets > 0 {
        parts.push(format!(
            "{resets} position reset{} by `auto.offset.reset` after OFFSET_OUT_OF_RANGE",
            if resets == 1 { "" } else { "s" }
        ));
    }
    let mut notes = Vec::new();
    if !parts.is_empty() {
        notes.push(format!(
            "{} moved a consumer on purpose: the next poll of that partition is judged against \
             the new position, not against the last record read",
            parts.join(" and ")
        ));
    }
    if rebalances > 0 {
        notes.push(format!(
            "{rebalances} change{} of a subscribe-mode consumer's assignment (partitions \
             assigned, revoked or lost in a rebalance) made it forget its last read of those \
             partitions: a partition assigned to it starts at the group's committed offset, \
             which may be behind or ahead of what it read before (Jepsen allows poll-skip and \
             nonmonotonic-poll across a rebalance)",
            if rebalances == 1 { "" } else { "s" }
        ));
    }
    notes
}

/// Walks each process's successive polls of each partition and calls `judge` with where the
/// next poll was expected to start ([`Expected`]: one past the previous poll's last record, or
/// where a seek or a reset put the position since) and the first record of the next poll with
/// its entry.
///
/// * A `seek` op (in history order) sets the expected position of its partition to the seek's
///   offset, as Jepsen's Kafka checker forgets a process's last read of a key when it assigns
///   anew; the first poll after a seek is judged against the seek's offset.
/// * A reset by `auto.offset.reset` after OFFSET_OUT_OF_RANGE is an internal event, stamped
///   with the time only, and records buffered before it may still be polled after it. So a
///   reset is matched by position instead: when the next poll does not start at the expected
///   offset, a reset of that process and partition from exactly that offset, not later than
///   the poll, moves the expected offset to the reset's target (several in a row chain).
///   Resets for any other reason (a KIP-320 log truncation, an undefined epoch) are not
///   excused: they mean the log the consumer read changed under it.
/// * A process that crashed (a `kill`, `power-fail`, `disk-loss` or `shutdown` fault naming
///   it) and started again is a new process that assigns its partitions anew: what its
///   previous incarnation read is forgotten, as Jepsen's checker forgets a process's reads
///   when it assigns anew. Its first poll of a partition is judged only against where it
///   started: the group's committed offset when it read one (an `ok` op `offset-fetch`),
///   otherwise not at all (`auto.offset.reset` put it there, as for any first poll).
///
/// * A subscribe-mode consumer's `partitions-assigned`, `partitions-revoked` or
///   `partitions-lost` event (at or before the entry's time) makes it forget its last read of
///   those partitions: its next poll of one of them is judged only against where it then
///   started (the group's committed offset it read, if the history shows the read).
///
/// The assignment never changes in assign mode (see the module documentation), so a process
/// remembers its position in a partition for as long as it runs.
pub(super) fn successive_polls<'a>(
    history: &'a [HistoryEntry],
    events: &'a [EventRecord],
    mut judge: impl FnMut(&TopicPartition, &Expected<'a>, (Offset, u64, &'a HistoryEntry)),
) {
    let resets = out_of_range_resets(events);
    let crashes = process_crashes(events);
    let rebalances = assignment_changes(events);
    let mut next_rebalance = 0;
    // How many of each (process, partition)'s resets were used or passed over.
    let mut resets_done: BTreeMap<(NodeId, TopicPartition), usize> = BTreeMap::new();
    let mut expected: BTreeMap<(NodeId, TopicPartition), Expected<'a>> = BTreeMap::new();
    // Per process, how many of its crashes had happened by its last entry.
    let mut incarnation: BTreeMap<NodeId, usize> = BTreeMap::new();
    for entry in history.iter().filter(|e| e.op.op_type == OpType::Ok) {
        let crashed = crashes.get(&entry.process).map_or(0, |times| {
            times.iter().filter(|t| **t <= entry.time_ms).count()
        });
        if incarnation.insert(entry.process, crashed).unwrap_or(0) != crashed {
            expected.retain(|(p, _), _| *p != entry.process);
        }
        // Subscribe mode: a partition assigned, revoked or lost is read afresh.
        while let Some((t, node, partitions)) = rebalances.get(next_rebalance) {
            if *t > entry.time_ms {
                break;
            }
            for tp in partitions.iter() {
                expected.remove(&(*node, tp.clone()));
            }
            next_rebalance += 1;
        }
        let poll = match &entry.op.value {
            OpValue::Seek { tp, offset } => {
                expected.insert(
                    (entry.process, tp.clone()),
                    Expected {
                        next_offset: *offset,
                        cause: Cause::Seek { entry },
                    },
                );
                continue;
            }
            OpValue::OffsetFetch { offsets, .. } => {
                for o in offsets {
                    let key = (entry.process, o.tp.clone());
                    match o.committed {
                        Some(next_offset) => {
                            expected.insert(
                                key,
                                Expected {
                                    next_offset,
                                    cause: Cause::Committed { entry },
                                },
                            );
                        }
                        None => {
                            expected.remove(&key);
                        }
                    }
                }
                continue;
            }
            // A committed transaction's poll micro-operations are the processor's polls (an
            // aborted or unknown one leaves the expected position where it was, as Jepsen's
            // checker updates a process's last reads on `ok` only).
            OpValue::Poll { .. } | OpValue::Txn { .. } => ok_polls(std::slice::from_ref(entry)),
            OpValue::Send { .. } | OpValue::Commit { .. } | OpValue::Process { .. } => continue,
        };
        for poll in poll {
            for (tp, records) in &poll.by_partition {
                let (Some(&(first_offset, first_value)), Some(&(last_offset, last_value))) =
                    (records.first(), records.last())
                else {
                    continue;
                };
                let key = (entry.process, tp.clone());
                if let Some(mut previous) = expected.get(&key).copied() {
                    if first_offset != previous.next_offset {
                        let list = resets.get(&key).map(Vec::as_slice).unwrap_or(&[]);
                        let done = resets_done.entry(key.clone()).or_default();
                        while let Some(i) = (*done..list.len()).find(|&i| {
                            list[i].0 == previous.next_offset && list[i].3 <= entry.time_ms
                        }) {
                            let (from, to, strategy, time_ms) = list[i];
                            *done = i + 1;
                            previous = Expected {
                                next_offset: to,
                                cause: Cause::Reset {
                                    from,
                                    strategy,
                                    time_ms,
                                },
                            };
                            if to == first_offset {
                                break;
                            }
                        }
                    }
                    judge(tp, &previous, (first_offset, first_value, entry));
                }
                expected.insert(
                    key,
                    Expected {
                        next_offset: last_offset.next(),
                        cause: Cause::Read {
                            offset: last_offset,
                            value: last_value,
                            entry,
                        },
                    },
                );
            }
        }
    }
}

impl Checker for PollSkip {
    fn name(&self) -> &'static str {
        "poll-skip"
    }

    fn statement(&self) -> &'static str {
        "a consumer's successive polls do not skip offsets"
    }

    fn lesson(&self) -> Lesson {
        Lesson {
            intro: lesson::READS_JUMPED,
            prevention: Prevention::ReadJump,
        }
    }

    fn notes(&self, input: &CheckInput) -> Vec<String> {
        let mut notes = super::Removed::from_events(input.events).notes(input.history);
        notes.extend(position_change_notes(input));
        notes
    }

    fn skip_reason(&self, input: &CheckInput) -> Option<String> {
        super::without_consumers(input, "there are no successive polls to compare")
    }

    fn check(&self, input: &CheckInput) -> Vec<Violation> {
        let mut known = known_offsets(input.history);
        known.forget(&super::Removed::from_events(input.events));
        let mut anomalies = Vec::new();
        successive_polls(
            input.history,
            input.events,
            |tp, expected, (o2, v2, after)| {
                if o2 <= expected.next_offset {
                    return; // Going back is `nonmonotonic-poll`.
                }
                let skipped = known_between(&known, tp, Offset(expected.next_offset.0 - 1), o2);
                let Some(skipping) = skipping(&skipped) else {
                    return;
                };
                let previous = match expected.cause {
                    Cause::Read { offset, entry, .. } => format!(
                        "{} polled {tp} up to offset {offset} (t={} ms)",
                        after.process, entry.time_ms
                    ),
                    _ => expected.describe(after.process, tp),
                };
                let sentence = format!(
                    "{previous}, then its next poll of {tp} started at offset {o2} (t={} ms), \
                 {skipping}",
                    after.time_ms,
                );
                let (listed, count) = skipped_json(&skipped);
                let data = json!({
                    "process": after.process.to_string(),
                    "tp": tp.to_string(),
                    "previous": expected.to_json(),
                    "next": {
                        "offset": o2.0, "value": v2, "index": after.index, "time_ms": after.time_ms,
                    },
                    "skipped": listed,
                    "skipped_count": count,
                });
                anomalies.push((sentence, data));
            },
        );
        violation(self.name(), None, anomalies, serde_json::Map::new())
    }
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use super::*;

    /// Subscribe mode (Jepsen allows poll-skip under subscribe): a partition revoked and
    /// assigned again starts wherever the group's committed offset is, so the poll after the
    /// rebalance is not compared with the one before; a rebalance of another partition, or of
    /// another consumer, excuses nothing.
    #[test]
    fn a_rebalance_of_the_partition_makes_the_consumer_read_it_afresh() {
        use super::super::group_view::testkit::Events;
        let mut h = HistoryBuilder::default();
        for o in 0..10 {
            h.send(0, OpType::Ok, &tp(0), 100 + o as u64, o);
        }
        h.poll(0, &tp(0), &[(0, 100), (1, 101), (2, 102)]); // t=200, 210
        h.poll(0, &tp(0), &[(7, 107), (8, 108)]); // t=220, 230: skips 3..6
        assert_eq!(check_history(&PollSkip, &h.entries).len(), 1);
        let mut moved = Events::default();
        moved.revoked(212, 0, 1, &[0]).assigned(215, 0, 2, &[0]);
        assert!(check_history_events(&PollSkip, &h.entries, &moved.0).is_empty());
        let mut elsewhere = Events::default();
        elsewhere.revoked(212, 0, 1, &[1]).assigned(215, 1, 2, &[0]);
        assert_eq!(
            check_history_events(&PollSkip, &h.entries, &elsewhere.0).len(),
            1
        );
        // A rebalance after the second poll excuses nothing either.
        let mut late = Events::default();
        late.revoked(240, 0, 1, &[0]);
        assert_eq!(
            check_history_events(&PollSkip, &h.entries, &late.0).len(),
            1
        );
        // The note counts the changes.
        let logs = BTreeMap::new();
        let notes = PollSkip.notes(&CheckInput {
            history: &h.entries,
            events: &moved.0,
            final_logs: &logs,
            scenario: None,
            snapshots: &[],
        });
        assert_eq!(notes.len(), 1, "{notes:?}");
        assert!(notes[0].starts_with("2 changes of a subscribe-mode consumer's assignment"));
    }

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

    #[test]
    fn a_seek_forward_is_not_a_skip_but_a_poll_that_skips_past_the_seek_offset_is() {
        let mut h = HistoryBuilder::default();
        for o in 0..12 {
            h.send(0, OpType::Ok, &tp(0), 100 + o as u64, o);
        }
        h.poll(0, &tp(0), &[(0, 100), (1, 101)]);
        h.seek(0, &tp(0), 8);
        h.poll(0, &tp(0), &[(8, 108), (9, 109)]);
        assert!(check_history(&PollSkip, &h.entries).is_empty());

        // Without the seek the same jump skips 2..=7; after a seek to 8 a poll starting at 10
        // skips 8 and 9.
        let mut h = HistoryBuilder::default();
        for o in 0..12 {
            h.send(0, OpType::Ok, &tp(0), 100 + o as u64, o);
        }
        h.poll(0, &tp(0), &[(0, 100), (1, 101)]);
        h.poll(0, &tp(0), &[(8, 108), (9, 109)]);
        h.seek(0, &tp(0), 4);
        h.poll(0, &tp(0), &[(6, 106)]);
        let v = check_history(&PollSkip, &h.entries);
        assert_eq!(v.len(), 1, "{v:?}");
        assert_eq!(v[0].details["count"], 2);
        assert_eq!(v[0].details["anomalies"][0]["skipped_count"], 6);
        let second = &v[0].details["anomalies"][1];
        assert_eq!(second["previous"]["seek"], 4);
        assert_eq!(second["skipped_count"], 2);
        assert_eq!(second["skipped"][0]["offset"], 4);
    }

    #[test]
    fn a_reset_forward_after_offset_out_of_range_is_not_a_skip() {
        let mut h = HistoryBuilder::default();
        for o in 0..12 {
            h.send(0, OpType::Ok, &tp(0), 100 + o as u64, o);
        }
        h.poll(0, &tp(0), &[(0, 100), (1, 101)]);
        h.poll(0, &tp(0), &[(9, 109)]);
        // auto.offset.reset=latest moved the position from 2 to 9: not a skip.
        let events = [out_of_range_reset(0, 2, 9, 150)];
        assert!(check_history_events(&PollSkip, &h.entries, &events).is_empty());
        // A reset from another offset does not explain it.
        let events = [out_of_range_reset(0, 3, 9, 150)];
        assert_eq!(
            check_history_events(&PollSkip, &h.entries, &events).len(),
            1
        );
    }
}
