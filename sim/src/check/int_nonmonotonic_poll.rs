//! `int-nonmonotonic-poll`: one poll's records of a partition go back.
//!
//! **Definition.** A single `ok` poll returned, for one partition, a record at offset `o1`
//! immediately followed (among that partition's records, in the order returned) by one at
//! `o2 <= o1`: the same record twice, or an earlier one after a later one. A fetch returns a
//! partition's log in offset order, and the consumer buffers it and returns it in that order,
//! advancing its position past each record, so within one poll a partition's offsets strictly
//! increase. Anything else means the consumer buffered the same range twice (two fetches in
//! flight for one partition, or a position reset while records were still buffered) or the
//! broker returned records out of order.
//!
//! **Source.** Jepsen's Kafka checker (`jepsen/src/jepsen/tests/kafka.clj`,
//! `int-poll-skip+nonmonotonic-cases`, the `:nonmonotonic` kind): for each pair of successive
//! reads of one key inside one operation, a distance of zero or less in the key's version
//! order "contradicts the log order, or repeats the same value".
//!
//! **What is allowed.** Jepsen does not report a key that was rebalanced during the operation.
//! One poll returns, per partition, the records of one fetch from the consumer's position, and
//! a subscribe-mode consumer drops what it buffered for a partition it no longer owns, so no
//! poll's records of a partition span an assignment change: the check always applies. Records of
//! different partitions may interleave in any order inside a poll; only each partition's own
//! order is judged.

use super::lesson::{self, Lesson, Prevention};
use super::poll_skip::ok_polls;
use super::{violation, CheckInput, Checker, Violation};
use serde_json::json;

/// See the module documentation.
pub struct IntNonmonotonicPoll;

impl Checker for IntNonmonotonicPoll {
    fn name(&self) -> &'static str {
        "int-nonmonotonic-poll"
    }

    fn statement(&self) -> &'static str {
        "the offsets within one poll increase"
    }

    fn lesson(&self) -> Lesson {
        Lesson {
            intro: lesson::READS_JUMPED,
            prevention: Prevention::ReadJump,
        }
    }

    fn skip_reason(&self, input: &CheckInput) -> Option<String> {
        super::without_consumers(input, "there are no polls to inspect")
    }

    fn check(&self, input: &CheckInput) -> Vec<Violation> {
        let mut anomalies = Vec::new();
        for poll in ok_polls(input.history) {
            let entry = poll.entry;
            for (tp, records) in &poll.by_partition {
                for pair in records.windows(2) {
                    let ((o1, v1), (o2, v2)) = (pair[0], pair[1]);
                    if o2 > o1 {
                        continue;
                    }
                    let sentence = if o2 == o1 {
                        format!(
                            "one poll by {} (t={} ms) returned {tp} offset {o1} twice in a row (values {v1} and {v2})",
                            entry.process, entry.time_ms,
                        )
                    } else {
                        format!(
                            "one poll by {} (t={} ms) returned {tp} offset {o2} (value {v2}) right after offset {o1} (value {v1})",
                            entry.process, entry.time_ms,
                        )
                    };
                    let data = json!({
                        "process": entry.process.to_string(),
                        "tp": tp.to_string(),
                        "index": entry.index,
                        "time_ms": entry.time_ms,
                        "delta": o2.0 - o1.0,
                        "records": [
                            { "offset": o1.0, "value": v1 },
                            { "offset": o2.0, "value": v2 },
                        ],
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
    use ksim_model::event::{OpValue, PolledRecord};
    use ksim_model::types::Offset;

    #[test]
    fn a_poll_that_goes_back_or_repeats_a_record_is_nonmonotonic() {
        let mut h = HistoryBuilder::default();
        h.poll(0, &tp(0), &[(1, 11), (2, 12), (1, 11)]);
        h.poll(1, &tp(1), &[(5, 15), (5, 15)]);
        let v = check_history(&IntNonmonotonicPoll, &h.entries);
        assert_eq!(v.len(), 1, "{v:?}");
        assert_eq!(v[0].check, "int-nonmonotonic-poll");
        assert_eq!(v[0].details["count"], 2);
        assert_eq!(
            v[0].message,
            "one poll by consumer-0 (t=10 ms) returned events-0 offset 1 (value 11) right after \
             offset 2 (value 12) (1 more like this in details)"
        );
        assert_eq!(
            v[0].details["anomalies"][1]["message"],
            "one poll by consumer-1 (t=30 ms) returned events-1 offset 5 twice in a row (values 15 and 15)"
        );
        assert_eq!(v[0].details["anomalies"][1]["delta"], 0);
    }

    #[test]
    fn increasing_offsets_per_partition_are_monotonic_even_when_partitions_interleave() {
        let mut h = HistoryBuilder::default();
        h.poll(0, &tp(0), &[(0, 10), (1, 11), (5, 15)]);
        // Successive polls going back are `nonmonotonic-poll`, not this check.
        h.poll(0, &tp(0), &[(0, 10)]);
        // Interleave events-1 records (in order among themselves) into the first poll.
        if let OpValue::Poll { records } = &mut h.entries[1].op.value {
            let other = |offset, value| PolledRecord {
                tp: tp(1),
                offset: Offset(offset),
                value,
            };
            records.insert(1, other(7, 27));
            records.insert(3, other(8, 28));
        }
        let v = check_history(&IntNonmonotonicPoll, &h.entries);
        assert!(v.is_empty(), "{v:?}");
    }
}
