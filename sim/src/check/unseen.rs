//! `unseen`: an acknowledged value that no consumer ever read.
//!
//! **Definition.** A send of value `v` completed `ok`, and by the end of the history no `ok`
//! poll, by any consumer, at any offset, returned `v`. Every run ends with a liveness phase in
//! which faults are healed and consumers drain every partition, so an acknowledged record that
//! is still unseen at the end is not merely late: the cluster no longer serves it. `unseen`
//! includes every `lost-write` and also the records acknowledged above the highest offset ever
//! read, which `lost-write` cannot judge (for example the tail of a log that a failover cut).
//!
//! **Source.** Jepsen's Kafka checker (`jepsen/src/jepsen/tests/kafka.clj`, `unseen`): at each
//! point of the history, the messages per key that have been successfully acknowledged but not
//! polled by any client; the final count must be zero, because Jepsen's workload ends with a
//! final poll phase that reads every key from the beginning.
//!
//! **What is allowed.** Sends that completed `info` (a timeout: maybe written) or `fail`
//! (certainly not written), and sends the run never completed, need not be read. A value read
//! at another offset than acknowledged counts as seen (that is a `duplicate` or
//! `inconsistent-offsets` question). Records the log removed on purpose (below a log start
//! offset retention set, or superseded by a later record with the same key and removed by the
//! cleaner, see [`super::Removed`]) need not be read. Records no consumer was configured to
//! read are excused and counted in a note: those below every consumer's first position, as when
//! a consumer with `auto.offset.reset=latest` starts after the producers (see
//! `start_positions`).
//!
//! **A consumer that fell behind.** A consumer slower than the producers (its poll loop returns
//! at most `max.poll.records` per poll) ends the run with acknowledged records it has not
//! reached. They stay `unseen`: Jepsen's final reads must read everything, and a run whose
//! consumer cannot keep up has not shown that it would. But they are not lost, and the message
//! says so: how many of the unseen records are still in the log at or above a consumer's final
//! position and below the high watermark, and each lagging consumer's records behind per
//! partition and most records read in one simulated second (see [`super::lag`]); `details`
//! carry `not_yet_read` and `lag`.

use super::lesson::{Lesson, Prevention};
use super::{acked_sends_iter, violation_of, CheckInput, Checker, ReadValues, Removed, Violation};
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// See the module documentation.
pub struct Unseen;

/// How many unseen values the one-sentence message names.
const NAMED_IN_MESSAGE: usize = 3;

impl Checker for Unseen {
    fn name(&self) -> &'static str {
        "unseen"
    }

    fn statement(&self) -> &'static str {
        "every acknowledged record is read by a consumer by the end of the run"
    }

    fn lesson(&self) -> Lesson {
        Lesson {
            intro: "Acknowledged records were never read by the end of the run. Either they were \
                     lost (the story above then shows them truncated away, with every replica's \
                     log ending before them or holding other values there), or the consumer \
                     could not reach them (for example a partition left without a working \
                     leader: see the end of the story), or the consumer fell behind and had not \
                     read them yet (the check's message and \"Consumer lag at the end of the \
                     run\" then say how far behind it ended).",
            prevention: Prevention::LossOrUnreadable,
        }
    }

    fn skip_reason(&self, input: &CheckInput) -> Option<String> {
        super::without_consumers(input, "no acknowledged record can be judged unread")
    }

    fn notes(&self, input: &CheckInput) -> Vec<String> {
        let mut notes = super::Removed::from_events(input.events).notes(input.history);
        notes.extend(super::deleted_topics_notes(
            input.events,
            "acknowledged records",
        ));
        let excused = super::excused_unread(input);
        notes.extend(
            super::start_positions::StartPositions::from_events(input.events)
                .notes(&excused, input),
        );
        notes
    }

    fn check(&self, input: &CheckInput) -> Vec<Violation> {
        let deleted = super::deleted_topics(input.events);
        let read_values = ReadValues::of(input.history);
        let removed = Removed::from_events(input.events);
        let starts = super::start_positions::StartPositions::from_events(input.events);
        let mut acked = 0usize;
        let mut unseen: Vec<_> = acked_sends_iter(input.history)
            .inspect(|_| acked += 1)
            .filter(|s| !deleted.contains_key(s.tp.topic.as_str()))
            .filter(|s| !read_values.contains(s.value) && !starts.excuses(s))
            .filter(|s| s.offset.is_none_or(|o| removed.excuses(&s.tp, o).is_none()))
            .collect();
        if unseen.is_empty() {
            return Vec::new();
        }
        // Partition order, then offset (unknown offsets last), then history order.
        unseen.sort_by(|a, b| {
            let key = |s: &super::AckedSend| (s.offset.is_none(), s.offset, s.source.index);
            a.tp.cmp(&b.tp).then_with(|| key(a).cmp(&key(b)))
        });

        let mut by_tp: BTreeMap<&ksim_model::types::TopicPartition, usize> = BTreeMap::new();
        for s in &unseen {
            *by_tp.entry(&s.tp).or_default() += 1;
        }
        let mut by_partition: BTreeMap<String, usize> = BTreeMap::new();
        for (tp, n) in by_tp {
            *by_partition.entry(tp.to_string()).or_default() += n;
        }
        let count = unseen.len();
        let lags = super::lag::consumer_lag(input);
        let not_yet_read = not_yet_read(input, &lags, &unseen);
        let named: Vec<String> = unseen
            .iter()
            .take(NAMED_IN_MESSAGE)
            .map(|s| {
                format!(
                    "value {} at {} ({}, t={} ms)",
                    s.value,
                    s.position(),
                    s.source.process,
                    s.source.time_ms
                )
            })
            .collect();
        let partitions: Vec<String> = by_partition
            .iter()
            .map(|(tp, n)| format!("{tp}: {n}"))
            .collect();
        // When a consumer ended behind with these records still in the log, say so right after
        // the count: a person reading one line must not take a slow consumer for loss.
        let behind = if not_yet_read == 0 {
            String::new()
        } else if not_yet_read == count {
            format!(
                "; all of them are still in the log, not lost but not yet read: {}",
                super::lag::behind_text(&lags)
            )
        } else {
            format!(
                "; {not_yet_read} of them are still in the log, not lost but not yet read: {}",
                super::lag::behind_text(&lags)
            )
        };
        let headline = format!(
            "{count} acknowledged value{} never read by any consumer by the end of the run \
             ({}){behind}; {}{}",
            if count == 1 { " was" } else { "s were" },
            partitions.join(", "),
            if count > NAMED_IN_MESSAGE {
                "first: "
            } else {
                ""
            },
            named.join(", ")
        );

        let anomalies = unseen.iter().map(|s| {
            let sentence = format!(
                "value {} acknowledged at {} ({}, t={} ms) was never read",
                s.value,
                s.position(),
                s.source.process,
                s.source.time_ms
            );
            (sentence, s.to_json())
        });
        let mut extra = serde_json::Map::new();
        extra.insert("by_partition".into(), json!(by_partition));
        extra.insert("acked".into(), Value::from(acked));
        if not_yet_read > 0 {
            extra.insert("not_yet_read".into(), Value::from(not_yet_read));
            let behind: Vec<&super::lag::ConsumerLag> =
                lags.iter().filter(|l| l.is_behind()).collect();
            extra.insert("lag".into(), json!(behind));
        }
        violation_of(self.name(), Some(headline), count, anomalies, extra)
    }
}

/// How many unseen records are not lost but not yet read: a consumer of the partition ended at
/// or below the record's offset, the record is below the partition's final high watermark, and
/// (when the run kept final logs of the partition) some replica's final log still holds the
/// value at that offset.
fn not_yet_read(
    input: &CheckInput,
    lags: &[super::lag::ConsumerLag],
    unseen: &[super::AckedSend],
) -> usize {
    let lowest = super::lag::lowest_positions(lags);
    let hws = super::lag::final_high_watermarks(input);
    // Per partition with a final log: the (offset, value) pairs some replica holds.
    // (Sorted vectors: sets quick to build and to ask.)
    let mut held: BTreeMap<&ksim_model::types::TopicPartition, Vec<(i64, u64)>> = BTreeMap::new();
    for ((_, tp), log) in input.final_logs {
        held.entry(tp)
            .or_default()
            .extend(log.iter().map(|(o, v)| (o.0, *v)));
    }
    for pairs in held.values_mut() {
        // A few sorted logs end to end: the stable sort merges them.
        pairs.sort();
        pairs.dedup();
    }
    unseen
        .iter()
        .filter(|s| {
            let Some(o) = s.offset else { return false };
            let behind = lowest.get(&s.tp).is_some_and(|p| *p <= o)
                && hws.get(&s.tp).is_some_and(|hw| o < *hw);
            let in_log = held
                .get(&s.tp)
                .is_none_or(|pairs| pairs.binary_search(&(o.0, s.value)).is_ok());
            behind && in_log
        })
        .count()
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use super::*;
    use ksim_model::event::OpType;

    #[test]
    fn an_acknowledged_value_nobody_read_is_unseen() {
        let mut h = HistoryBuilder::default();
        h.send(0, OpType::Ok, &tp(0), 1, 0)
            .send(0, OpType::Ok, &tp(0), 2, 1)
            .send(0, OpType::Ok, &tp(1), 3, 0)
            .send(1, OpType::Ok, &tp(0), 4, 2)
            .send(1, OpType::Ok, &tp(0), 5, 3);
        h.poll(0, &tp(0), &[(0, 1)]);
        let v = check_history(&Unseen, &h.entries);
        assert_eq!(v.len(), 1, "{v:?}");
        assert_eq!(v[0].check, "unseen");
        assert_eq!(
            v[0].message,
            "4 acknowledged values were never read by any consumer by the end of the run \
             (events-0: 3, events-1: 1); first: value 2 at events-0 offset 1 (producer-0, t=30 ms), \
             value 4 at events-0 offset 2 (producer-1, t=70 ms), value 5 at events-0 offset 3 (producer-1, t=90 ms)"
        );
        assert_eq!(v[0].details["count"], 4);
        assert_eq!(v[0].details["acked"], 5);
        assert_eq!(v[0].details["by_partition"]["events-1"], 1);
        assert_eq!(v[0].details["anomalies"][3]["value"], 3);
    }

    /// A consumer that stopped at offset 1 of a partition whose high watermark is 4: the three
    /// records above are unseen but still in the log, and the message says so with the lag;
    /// one whose final log holds another value at its offset is not counted as merely unread.
    #[test]
    fn records_above_a_lagging_consumers_position_are_unseen_but_not_lost() {
        use crate::history::EventRecord;
        use ksim_model::event::Event;
        use ksim_model::types::{BrokerId, LeaderEpoch, NodeId, Offset};
        let mut h = HistoryBuilder::default();
        for (value, offset) in [(1, 0), (2, 1), (3, 2), (4, 3)] {
            h.send(0, OpType::Ok, &tp(0), value, offset);
        }
        h.poll(0, &tp(0), &[(0, 1)]);
        let events = vec![EventRecord {
            time_ms: 5,
            node: NodeId::Broker(BrokerId(0)),
            event: Event::HighWatermarkChanged {
                tp: tp(0),
                broker: BrokerId(0),
                leader_epoch: LeaderEpoch(1),
                high_watermark: Offset(4),
            },
        }];
        type Logs = std::collections::BTreeMap<
            (NodeId, ksim_model::types::TopicPartition),
            Vec<(Offset, u64)>,
        >;
        let mut logs = Logs::new();
        let check = |logs: &Logs| {
            Unseen.check(&CheckInput {
                history: &h.entries,
                events: &events,
                final_logs: logs,
                scenario: None,
                snapshots: &[],
            })
        };
        let v = check(&logs);
        assert_eq!(v.len(), 1, "{v:?}");
        assert_eq!(v[0].details["count"], 3);
        assert_eq!(v[0].details["not_yet_read"], 3);
        assert_eq!(v[0].details["lag"][0]["records_behind"], 3);
        assert!(
            v[0].message.starts_with(
                "3 acknowledged values were never read by any consumer by the end of the run \
                 (events-0: 3); all of them are still in the log, not lost but not yet read: \
                 consumer-0 ended 3 records behind (events-0: 3), reading at most 1 record in \
                 one simulated second; value 2 at events-0 offset 1"
            ),
            "{}",
            v[0].message
        );
        // The final log holds another value at offset 3: that one is not merely unread.
        logs.insert(
            (NodeId::Broker(BrokerId(0)), tp(0)),
            vec![
                (Offset(0), 1),
                (Offset(1), 2),
                (Offset(2), 3),
                (Offset(3), 99),
            ],
        );
        let v = check(&logs);
        assert_eq!(v[0].details["not_yet_read"], 2);
        assert!(
            v[0].message.contains("; 2 of them are still in the log"),
            "{}",
            v[0].message
        );
    }

    #[test]
    fn indeterminate_failed_and_open_sends_need_not_be_read() {
        let mut h = HistoryBuilder::default();
        h.send(0, OpType::Ok, &tp(0), 1, 0)
            .send(0, OpType::Info, &tp(0), 2, 0)
            .send(0, OpType::Fail, &tp(0), 3, 0)
            .send_open(0, &tp(0), 4);
        // Read at another partition than acknowledged: seen (other checks judge where).
        h.poll(0, &tp(1), &[(9, 1)]);
        assert!(check_history(&Unseen, &h.entries).is_empty());
    }

    /// A consumer that began at offset 2 (`auto.offset.reset=latest`): the unread records
    /// below are excused and counted in a note; an unread record above still fails the check.
    #[test]
    fn records_below_every_consumers_first_position_are_excused_not_those_above() {
        use ksim_model::event::Event;
        use ksim_model::types::{NodeId, Offset};
        let mut h = HistoryBuilder::default();
        h.send(0, OpType::Ok, &tp(0), 1, 0)
            .send(0, OpType::Ok, &tp(0), 2, 1)
            .send(0, OpType::Ok, &tp(0), 3, 2)
            .send(0, OpType::Ok, &tp(0), 4, 3);
        h.poll(0, &tp(0), &[(2, 3)]);
        let events = vec![crate::history::EventRecord {
            time_ms: 5,
            node: NodeId::Consumer(0),
            event: Event::ConsumerPositionReset {
                tp: tp(0),
                from_offset: None,
                to_offset: Offset(2),
                strategy: "latest".into(),
                reason: "no-position".into(),
            },
        }];
        let logs = std::collections::BTreeMap::new();
        let input = CheckInput {
            history: &h.entries,
            events: &events,
            final_logs: &logs,
            scenario: None,
            snapshots: &[],
        };
        let v = Unseen.check(&input);
        assert_eq!(v.len(), 1, "{v:?}");
        assert_eq!(v[0].details["count"], 1);
        assert_eq!(v[0].details["anomalies"][0]["value"], 4);
        let notes = Unseen.notes(&input);
        assert_eq!(notes.len(), 1);
        assert!(
            notes[0].starts_with("2 acknowledged records of events-0 (offsets 0..1) were not read because of configuration, not loss: auto.offset.reset=latest"),
            "{}",
            notes[0]
        );
    }
}
