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
//! A send acknowledged without an offset (`acks=0`: fire and forget, the producer never learns
//! where the record went) is judged by the producer's own order instead: if a record the same
//! producer sent *later* to the same partition was read, reads went past it. Within one
//! connection a leader appends a producer's records in the order they were sent, and a record
//! left behind on a deposed leader is gone with that leader's divergent log, so an earlier
//! record that was never read was lost.
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
//! `duplicate` or `inconsistent-offsets`). A record the log removed on purpose is not lost: one
//! below a log start offset that retention set, or one the cleaner removed because a later
//! record had the same key (see [`super::Removed`]) is excused. So are records no consumer was
//! configured to read (below every consumer's first position, e.g. `auto.offset.reset=latest`
//! with a consumer that started late; see `start_positions`), as in `unseen`, which counts them
//! in its note. Nothing else is excused.

use super::lesson::{self, Lesson, Prevention};
use super::{
    acked_sends, acked_sends_iter, for_each_observation, violation, CheckInput, Checker, Removed,
    Seen, Source, Violation,
};
use ksim_model::types::{NodeId, Offset, TopicPartition};
use serde_json::json;
use std::collections::BTreeMap;

/// See the module documentation.
pub struct LostWrite;

impl Checker for LostWrite {
    fn name(&self) -> &'static str {
        "lost-write"
    }

    fn statement(&self) -> &'static str {
        "no acknowledged record is missing below an offset a consumer has read"
    }

    fn lesson(&self) -> Lesson {
        Lesson {
            intro: lesson::RECORD_DISAPPEARED,
            prevention: Prevention::Loss,
        }
    }

    fn skip_reason(&self, input: &CheckInput) -> Option<String> {
        super::without_consumers(input, "no read can reveal a lost write")
    }

    fn notes(&self, input: &CheckInput) -> Vec<String> {
        let mut notes = super::Removed::from_events(input.events).notes(input.history);
        notes.extend(super::deleted_topics_notes(
            input.events,
            "acknowledged records",
        ));
        let n = super::excused_unread(input).len();
        if n == 0 {
            return notes;
        }
        notes.push(format!(
            "the {n} unread record{} below every consumer's first position (see the `unseen` note) {} not judged as lost writes either",
            if n == 1 { "" } else { "s" },
            if n == 1 { "was" } else { "were" }
        ));
        notes
    }

    fn check(&self, input: &CheckInput) -> Vec<Violation> {
        let deleted = super::deleted_topics(input.events);
        let starts = super::start_positions::StartPositions::from_events(input.events);
        let mut readers: Vec<(u64, Source)> = Vec::new();
        // Per partition: the highest offset polled and the first poll (in history order) that
        // returned it, as the witness that reads went that far.
        let mut max_read: BTreeMap<TopicPartition, (Offset, u64, Source)> = BTreeMap::new();
        for_each_observation(input.history, |obs| {
            if obs.source.seen != Seen::Polled {
                return;
            }
            readers.push((obs.value, obs.source));
            match max_read.get_mut(&obs.tp) {
                Some(max) if obs.offset > max.0 => *max = (obs.offset, obs.value, obs.source),
                Some(_) => {}
                None => {
                    max_read.insert(obs.tp, (obs.offset, obs.value, obs.source));
                }
            }
        });
        let first_reader = FirstReaders::of(readers);
        let read_values = &first_reader;

        let removed = Removed::from_events(input.events);
        let mut lost: Vec<_> = acked_sends_iter(input.history)
            .filter(|send| !deleted.contains_key(send.tp.topic.as_str()))
            .filter(|send| !read_values.contains(send.value) && !starts.excuses(send))
            .filter(|send| {
                send.offset
                    .is_none_or(|o| removed.excuses(&send.tp, o).is_none())
            })
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
        let mut anomalies: Vec<(String, serde_json::Value)> = anomalies;
        anomalies.extend(offsetless_lost(input, &first_reader, &starts));
        violation(self.name(), None, anomalies, serde_json::Map::new())
    }
}

/// The values some poll returned, each with the first poll (in history order) that did.
struct FirstReaders(Vec<(u64, Source)>);

impl FirstReaders {
    /// From every (value, poll) in history order.
    fn of(mut readers: Vec<(u64, Source)>) -> FirstReaders {
        // Each value's polls in history order: the first is kept. (Polls of a value with the
        // same history index are the same poll, with the same source.)
        readers.sort_unstable_by_key(|(value, source)| (*value, source.index));
        readers.dedup_by_key(|(value, _)| *value);
        FirstReaders(readers)
    }

    /// The first poll that returned `value`.
    fn get(&self, value: u64) -> Option<&Source> {
        let i = self.0.binary_search_by_key(&value, |(v, _)| *v).ok()?;
        Some(&self.0[i].1)
    }

    /// Whether some poll returned `value`.
    fn contains(&self, value: u64) -> bool {
        self.get(value).is_some()
    }
}

/// Fire-and-forget sends (no offset) never read although a later send of the same producer to
/// the same partition was read.
fn offsetless_lost(
    input: &CheckInput,
    first_reader: &FirstReaders,
    starts: &super::start_positions::StartPositions,
) -> Vec<(String, serde_json::Value)> {
    let read_values = first_reader;
    if !acked_sends_iter(input.history).any(|s| s.offset.is_none()) {
        return Vec::new();
    }
    let sends = acked_sends(input.history);
    // The latest send (by history order) of each producer to each partition that was read.
    let mut latest_read: BTreeMap<(NodeId, TopicPartition), (u64, u64)> = BTreeMap::new();
    for s in sends.iter().filter(|s| read_values.contains(s.value)) {
        let key = (s.source.process, s.tp.clone());
        let e = latest_read.entry(key).or_insert((s.source.index, s.value));
        if s.source.index > e.0 {
            *e = (s.source.index, s.value);
        }
    }
    let mut out = Vec::new();
    for s in sends
        .iter()
        .filter(|s| s.offset.is_none() && !read_values.contains(s.value) && !starts.excuses(s))
    {
        let key = (s.source.process, s.tp.clone());
        let Some((index, later)) = latest_read.get(&key) else {
            continue;
        };
        if *index <= s.source.index {
            continue;
        }
        let reader = first_reader.get(*later).expect("a read value has a reader");
        let sentence = format!(
            "value {} sent fire-and-forget to {} ({}, t={} ms) was never read, although {}'s later value {} to {} was read by {} (t={} ms)",
            s.value, s.tp, s.source.process, s.source.time_ms, s.source.process, later, s.tp, reader.process, reader.time_ms
        );
        let mut data = s.to_json();
        data["later_read"] = json!({ "value": later, "reader": reader.to_json() });
        out.push((sentence, data));
    }
    out
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

    #[test]
    fn fire_and_forget_send_overtaken_by_a_read_later_send_is_lost() {
        let fire_and_forget = |h: &mut HistoryBuilder| {
            for e in h.entries.iter_mut() {
                if let ksim_model::event::OpValue::Send { offset, .. } = &mut e.op.value {
                    *offset = None;
                }
            }
        };
        // producer-0 sends 200 then 201 with acks=0; only 201 is ever read.
        let mut h = HistoryBuilder::default();
        h.send(0, OpType::Ok, &tp(1), 200, 0)
            .send(0, OpType::Ok, &tp(1), 201, 0);
        fire_and_forget(&mut h);
        h.poll(0, &tp(1), &[(0, 201)]);
        let v = check_history(&LostWrite, &h.entries);
        assert_eq!(v.len(), 1, "{v:?}");
        assert!(
            v[0].message
                .starts_with("value 200 sent fire-and-forget to events-1"),
            "{}",
            v[0].message
        );
        // If the last send is the unread one, nothing was read past it: not judged here.
        let mut h = HistoryBuilder::default();
        h.send(0, OpType::Ok, &tp(1), 200, 0)
            .send(0, OpType::Ok, &tp(1), 201, 0);
        fire_and_forget(&mut h);
        h.poll(0, &tp(1), &[(0, 200)]);
        assert!(check_history(&LostWrite, &h.entries).is_empty());
    }
}
