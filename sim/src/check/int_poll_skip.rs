//! `int-poll-skip`: one poll's records of a partition skip over a record that exists.
//!
//! **Definition.** A single `ok` poll returned, for one partition, a record at offset `o1`
//! immediately followed (among that partition's records, in the order returned) by one at
//! `o2 > o1`, and some offset strictly between them is known to hold a value: an `ok` send was
//! acknowledged there, or some `ok` poll (by any consumer) returned a record there. A fetch
//! returns a contiguous run of a partition's log from the consumer's position, and the
//! consumer hands records to the application in that order, so one poll never jumps over a
//! record: a gap inside a poll means the log the consumer fetched from had lost records that
//! other clients saw (a replica that led without them, then appended new records past the
//! hole), or the fetch path dropped records.
//!
//! **Source.** Jepsen's Kafka checker (`jepsen/src/jepsen/tests/kafka.clj`,
//! `int-poll-skip+nonmonotonic-cases`, the `:skip` kind): for each pair of successive reads of
//! one key inside one operation, a distance above one in the key's version order (a dense
//! index over the offsets that sends and polls revealed) is a skip. Offsets are exact here, so
//! the rule is: some *known* offset lies strictly between the two.
//!
//! **What is allowed.** Jepsen does not report a key that was rebalanced during the operation.
//! One poll returns, per partition, the records of one fetch from the consumer's position, and
//! a subscribe-mode consumer drops what it buffered for a partition it no longer owns, so no
//! poll's records of a partition span an assignment change: the check always applies. Holes that no
//! client ever revealed are not judged; offsets the log removed on purpose (retention,
//! compaction; see [`super::Removed`]) are not judged either. Going back inside a poll is
//! `int-nonmonotonic-poll`.

use super::lesson::{self, Lesson, Prevention};
use super::poll_skip::{known_between, known_offsets, ok_polls, skipped_json, skipping};
use super::{violation, CheckInput, Checker, Violation};
use serde_json::json;

/// See the module documentation.
pub struct IntPollSkip;

impl Checker for IntPollSkip {
    fn name(&self) -> &'static str {
        "int-poll-skip"
    }

    fn statement(&self) -> &'static str {
        "the records of one poll follow one another without gaps"
    }

    fn lesson(&self) -> Lesson {
        Lesson {
            intro: lesson::READS_JUMPED,
            prevention: Prevention::ReadJump,
        }
    }

    fn notes(&self, input: &CheckInput) -> Vec<String> {
        super::Removed::from_events(input.events).notes(input.history)
    }

    fn skip_reason(&self, input: &CheckInput) -> Option<String> {
        super::without_consumers(input, "there are no polls to inspect")
    }

    fn check(&self, input: &CheckInput) -> Vec<Violation> {
        let mut known = known_offsets(input.history);
        known.forget(&super::Removed::from_events(input.events));
        let mut anomalies = Vec::new();
        for poll in ok_polls(input.history) {
            let entry = poll.entry;
            for (tp, records) in &poll.by_partition {
                for pair in records.windows(2) {
                    let ((o1, v1), (o2, v2)) = (pair[0], pair[1]);
                    if o2 <= o1 {
                        continue;
                    }
                    let skipped = known_between(&known, tp, o1, o2);
                    let Some(skipping) = skipping(&skipped) else {
                        continue;
                    };
                    let sentence = format!(
                        "one poll by {} (t={} ms) returned {tp} offset {o1} then offset {o2}, \
                         {skipping}",
                        entry.process, entry.time_ms,
                    );
                    let (listed, count) = skipped_json(&skipped);
                    let data = json!({
                        "process": entry.process.to_string(),
                        "tp": tp.to_string(),
                        "index": entry.index,
                        "time_ms": entry.time_ms,
                        "records": [
                            { "offset": o1.0, "value": v1 },
                            { "offset": o2.0, "value": v2 },
                        ],
                        "skipped": listed,
                        "skipped_count": count,
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
    use ksim_model::event::OpType;

    #[test]
    fn a_poll_that_jumps_over_a_known_record_skipped() {
        let mut h = HistoryBuilder::default();
        h.send(0, OpType::Ok, &tp(2), 100, 1)
            .send(0, OpType::Ok, &tp(2), 101, 2)
            .send(0, OpType::Ok, &tp(2), 102, 3);
        // Offset 2 (value 101) exists, but this poll goes from 1 to 3.
        h.poll(0, &tp(2), &[(1, 100), (3, 102)]);
        let v = check_history(&IntPollSkip, &h.entries);
        assert_eq!(v.len(), 1, "{v:?}");
        assert_eq!(v[0].check, "int-poll-skip");
        assert_eq!(v[0].details["count"], 1);
        assert_eq!(
            v[0].message,
            "one poll by consumer-0 (t=70 ms) returned events-2 offset 1 then offset 3, skipping \
             offset 2 (value 101, acknowledged to producer-0 at t=30 ms)"
        );
        assert_eq!(v[0].details["anomalies"][0]["skipped"][0]["value"], 101);
    }

    #[test]
    fn contiguous_records_and_unknown_holes_inside_a_poll_are_not_skips() {
        let mut h = HistoryBuilder::default();
        h.send(0, OpType::Ok, &tp(0), 1, 0)
            .send(0, OpType::Ok, &tp(1), 2, 1);
        h.poll(0, &tp(0), &[(0, 1), (1, 3), (2, 4)]);
        // Nobody revealed offsets 3..=5 of events-0: a hole, not a skip.
        h.poll(0, &tp(0), &[(2, 4), (6, 5)]);
        // Offset 1 of events-1 is known, but it is another partition.
        h.poll(1, &tp(0), &[(0, 1), (1, 3)]);
        // Going back inside a poll is `int-nonmonotonic-poll`.
        h.poll(1, &tp(0), &[(2, 4), (0, 1)]);
        assert!(check_history(&IntPollSkip, &h.entries).is_empty());
    }
}
