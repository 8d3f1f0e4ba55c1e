//! Where consumers started reading each partition: the rule that keeps `unseen` and
//! `lost-write` from calling a record lost when no consumer was configured to read it.
//!
//! **The rule.** A consumer positions itself on a partition once, when it starts, by
//! `auto.offset.reset` (`earliest`: the log start offset, `latest`: the high watermark of that
//! moment); every such first position is an internal event
//! ([`Event::ConsumerPositionReset`] with reason `no-position`). Records below the lowest first
//! position of any consumer were never meant to be read by anyone: with
//! `auto.offset.reset=latest` and a consumer that starts after the producers, Kafka's consumer
//! begins at the end of the log and "misses" what came before, by design. Such a record is
//! excused (not judged) by `unseen` and `lost-write`, and each check says so in a note with the
//! count, the offsets and the configuration that explains it.
//!
//! An acknowledged record with no offset (`acks=0`) is excused when its acknowledgement came
//! no later than the moment every consumer that skipped records took its first position: only a
//! record appended after that moment is certainly at or above the high watermark they began
//! at. (An `acks=0` acknowledgement precedes the append, so a record acknowledged later was
//! appended later.)
//!
//! **What is not excused.** Records at or above the lowest first position; later resets
//! (OFFSET_OUT_OF_RANGE, a seek, a KIP-320 truncation) and the first position of a consumer
//! process restarted later in the run (only a process's first position counts); partitions no
//! consumer ever positioned on (then the cluster never served the partition: every record is
//! judged).
//!
//! **Source.** Kafka's `auto.offset.reset` ("what to do when there is no initial offset ...
//! latest: automatically reset the offset to the latest offset"); Jepsen's Kafka test avoids
//! the question by reading every key from the beginning in a final poll phase, which a
//! `latest` consumer deliberately does not do.

use super::{AckedSend, CheckInput};
use crate::history::EventRecord;
use ksim_model::event::Event;
use ksim_model::types::{NodeId, Offset, TopicPartition};
use std::collections::BTreeMap;

/// A consumer's first position on a partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FirstPosition {
    pub consumer: NodeId,
    pub offset: Offset,
    /// When the position was taken (simulated ms).
    pub time_ms: u64,
    /// `earliest` or `latest` (or `seek`, when the application seeked before any reset).
    pub strategy: String,
}

/// Per partition, the lowest first position of any consumer, and when each consumer that
/// skipped records took its position.
#[derive(Debug, Clone, Default)]
pub(crate) struct StartPositions {
    /// Every consumer's first position, per partition, in event order.
    firsts: BTreeMap<TopicPartition, Vec<FirstPosition>>,
}

impl StartPositions {
    /// Reads the consumers' first positions off the event log.
    pub fn from_events(events: &[EventRecord]) -> Self {
        let mut firsts: BTreeMap<TopicPartition, Vec<FirstPosition>> = BTreeMap::new();
        for r in events {
            let Event::ConsumerPositionReset {
                tp,
                to_offset,
                strategy,
                ..
            } = &r.event
            else {
                continue;
            };
            let list = firsts.entry(tp.clone()).or_default();
            if list.iter().any(|f| f.consumer == r.node) {
                continue;
            }
            list.push(FirstPosition {
                consumer: r.node,
                offset: *to_offset,
                time_ms: r.time_ms,
                strategy: strategy.clone(),
            });
        }
        StartPositions { firsts }
    }

    /// The first position with the lowest offset on `tp` (the earliest reader), if any
    /// consumer positioned on it.
    pub fn lowest(&self, tp: &TopicPartition) -> Option<&FirstPosition> {
        self.firsts
            .get(tp)?
            .iter()
            .min_by_key(|f| (f.offset, f.time_ms))
    }

    /// Whether no consumer was configured to read `send` (see the module documentation).
    pub fn excuses(&self, send: &AckedSend) -> bool {
        let Some(firsts) = self.firsts.get(&send.tp) else {
            return false;
        };
        match send.offset {
            Some(o) => firsts.iter().all(|f| o < f.offset),
            None => firsts
                .iter()
                .all(|f| f.offset.0 > 0 && send.source.time_ms <= f.time_ms),
        }
    }

    /// One plain sentence per partition about the excused records among `excused` (all of
    /// which [`StartPositions::excuses`]): how many, which offsets, and which consumer's
    /// configuration explains it.
    pub fn notes(&self, excused: &[AckedSend], input: &CheckInput) -> Vec<String> {
        let mut by_tp: BTreeMap<&TopicPartition, Vec<&AckedSend>> = BTreeMap::new();
        for s in excused {
            by_tp.entry(&s.tp).or_default().push(s);
        }
        let mut out = Vec::new();
        for (tp, sends) in by_tp {
            let Some(first) = self.lowest(tp) else {
                continue;
            };
            let n = sends.len();
            let offsets: Vec<i64> = sends.iter().filter_map(|s| s.offset.map(|o| o.0)).collect();
            let range = match (offsets.iter().min(), offsets.iter().max()) {
                (Some(a), Some(b)) if a == b => format!(" (offset {a})"),
                (Some(a), Some(b)) => format!(" (offsets {a}..{b})"),
                _ => String::new(),
            };
            let started = match (input.scenario, first.consumer) {
                (Some(sc), NodeId::Consumer(c)) => sc
                    .consumer_of_client(c)
                    .filter(|spec| spec.start_ms > 0)
                    .map(|spec| format!(" that started at t={} ms", spec.start_ms))
                    .unwrap_or_default(),
                _ => String::new(),
            };
            let config = match first.strategy.as_str() {
                "earliest" | "latest" => format!("auto.offset.reset={}", first.strategy),
                other => other.to_string(),
            };
            let all = if self.firsts.get(tp).is_some_and(|f| f.len() > 1) {
                "; no consumer began lower"
            } else {
                ""
            };
            out.push(format!(
                "{n} acknowledged record{} of {tp}{range} {} not read because of configuration, \
                 not loss: {config} with a consumer{started} ({} began reading {tp} at offset \
                 {} at t={} ms{all}), so {} produced before it began {} never meant to be read",
                if n == 1 { "" } else { "s" },
                if n == 1 { "was" } else { "were" },
                first.consumer,
                first.offset,
                first.time_ms,
                if n == 1 { "a record" } else { "records" },
                if n == 1 { "was" } else { "were" },
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use super::super::{acked_sends, CheckInput};
    use super::*;
    use ksim_model::event::OpType;

    fn reset(consumer: u32, tp: TopicPartition, to: i64, strategy: &str) -> (NodeId, Event) {
        (
            NodeId::Consumer(consumer),
            Event::ConsumerPositionReset {
                tp,
                from_offset: None,
                to_offset: Offset(to),
                strategy: strategy.into(),
                reason: "no-position".into(),
            },
        )
    }

    fn records(events: &[(NodeId, Event)]) -> Vec<EventRecord> {
        events
            .iter()
            .enumerate()
            .map(|(i, (node, event))| EventRecord {
                time_ms: 1_000 * (i as u64 + 1),
                node: *node,
                event: event.clone(),
            })
            .collect()
    }

    #[test]
    fn only_records_below_every_consumers_first_position_are_excused() {
        let events = records(&[
            reset(0, tp(0), 5, "latest"),
            reset(1, tp(0), 3, "latest"),
            reset(0, tp(1), 0, "earliest"),
            // A later reset of the same process does not move its first position.
            reset(1, tp(0), 9, "latest"),
        ]);
        let starts = StartPositions::from_events(&events);
        assert_eq!(starts.lowest(&tp(0)).unwrap().offset, Offset(3));
        let mut h = HistoryBuilder::default();
        h.send(0, OpType::Ok, &tp(0), 1, 2)
            .send(0, OpType::Ok, &tp(0), 2, 3)
            .send(0, OpType::Ok, &tp(1), 3, 0)
            .send(0, OpType::Ok, &tp(2), 4, 0);
        let sends = acked_sends(&h.entries);
        let excused: Vec<bool> = sends.iter().map(|s| starts.excuses(s)).collect();
        // Offset 2 < 3 on events-0: excused; offset 3: judged; events-1 read from 0: judged;
        // events-2 nobody positioned on: judged.
        assert_eq!(excused, [true, false, false, false]);
        let input = CheckInput {
            history: &h.entries,
            events: &events,
            final_logs: &BTreeMap::new(),
            scenario: None,
            snapshots: &[],
        };
        let notes = starts.notes(&sends[..1], &input);
        assert_eq!(
            notes,
            [
                "1 acknowledged record of events-0 (offset 2) was not read because of \
              configuration, not loss: auto.offset.reset=latest with a consumer (consumer-1 \
              began reading events-0 at offset 3 at t=2000 ms; no consumer began lower), so a \
              record produced before it began was never meant to be read"
            ]
        );
    }

    #[test]
    fn offsetless_sends_are_excused_only_if_acknowledged_before_the_position_was_taken() {
        // consumer-0 positioned on events-0 at t=1000 ms (latest, offset 4).
        let events = records(&[reset(0, tp(0), 4, "latest")]);
        let starts = StartPositions::from_events(&events);
        let mut h = HistoryBuilder::default();
        // HistoryBuilder stamps entries 10 ms apart: this ack is at t=10 ms.
        h.send(0, OpType::Ok, &tp(0), 1, 0);
        let mut sends = acked_sends(&h.entries);
        sends[0].offset = None;
        assert!(starts.excuses(&sends[0]));
        sends[0].source.time_ms = 1_500;
        assert!(!starts.excuses(&sends[0]));
        // An earliest consumer (offset 0) reads everything: nothing is excused.
        let events = records(&[reset(0, tp(0), 4, "latest"), reset(1, tp(0), 0, "earliest")]);
        sends[0].source.time_ms = 10;
        assert!(!StartPositions::from_events(&events).excuses(&sends[0]));
    }
}
