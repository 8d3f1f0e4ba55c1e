//! `nonmonotonic-poll`: a consumer's next poll of a partition goes back.
//!
//! **Definition.** A consumer process polls a partition, and the last record that poll
//! returned for it is at offset `o1`; the process's next `ok` poll that returns records of the
//! same partition starts at offset `o2 <= o1`. The consumer read again (equal offset) or went
//! back to (lower offset) records it had already been past. In Kafka a consumer's position
//! moves forward by exactly what `poll()` returned; without a seek or a change of assignment
//! it never goes back. Going back means the position was reset (OFFSET_OUT_OF_RANGE followed
//! by `auto.offset.reset=earliest`, for example because a new leader's log was shorter than
//! the position, that is records below it were lost) or the consumer re-buffered records it
//! had already returned.
//!
//! **Source.** Jepsen's Kafka checker (`jepsen/src/jepsen/tests/kafka.clj`,
//! `poll-skip+nonmonotonic-cases`, the `:nonmonotonic` kind): per process, per key, the first
//! value of a poll must come strictly after the last value of the process's previous poll of
//! that key in the key's version order; a difference of zero or less is nonmonotonic.
//!
//! **What is allowed.** Jepsen allows `nonmonotonic-poll` under `subscribe` (a rebalance may
//! restart the consumer from the group's committed offset, behind what it had read) and
//! forgets a process's last read of a key whenever it subscribes or assigns anew. The rule here
//! is the same as for `poll-skip`: the check applies while a process never saw its assignment
//! change. ksim's consumers run in assign mode with a fixed assignment and there are no
//! consumer groups yet, so it always applies. Re-reading a record is at-least-once delivery and
//! is allowed *across* processes and restarts from a committed offset; within one process's
//! uninterrupted assignment it is not.

use super::poll_skip::successive_polls;
use super::{violation, CheckInput, Checker, Violation};
use serde_json::json;

/// See the module documentation.
pub struct NonmonotonicPoll;

impl Checker for NonmonotonicPoll {
    fn name(&self) -> &'static str {
        "nonmonotonic-poll"
    }

    fn skip_reason(&self, input: &CheckInput) -> Option<String> {
        super::without_consumers(input, "there are no successive polls to compare")
    }

    fn check(&self, input: &CheckInput) -> Vec<Violation> {
        let mut anomalies = Vec::new();
        successive_polls(input.history, |tp, (o1, v1, before), (o2, v2, after)| {
            if o2 > o1 {
                return;
            }
            let how = if o2 == o1 { "again at" } else { "back at" };
            let sentence = format!(
                "{} polled {tp} up to offset {o1} (value {v1}, t={} ms), then its next poll of \
                 {tp} started {how} offset {o2} (value {v2}, t={} ms)",
                after.process, before.time_ms, after.time_ms,
            );
            let data = json!({
                "process": after.process.to_string(),
                "tp": tp.to_string(),
                "delta": o2.0 - o1.0,
                "previous": { "offset": o1.0, "value": v1, "index": before.index, "time_ms": before.time_ms },
                "next": { "offset": o2.0, "value": v2, "index": after.index, "time_ms": after.time_ms },
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
    fn a_consumer_whose_next_poll_goes_back_or_repeats_is_nonmonotonic() {
        let mut h = HistoryBuilder::default();
        h.poll(0, &tp(0), &[(1, 11), (2, 12), (3, 13)]);
        h.poll(0, &tp(0), &[(2, 12), (3, 13), (4, 14)]);
        h.poll(0, &tp(0), &[(4, 14)]);
        let v = check_history(&NonmonotonicPoll, &h.entries);
        assert_eq!(v.len(), 1, "{v:?}");
        assert_eq!(v[0].check, "nonmonotonic-poll");
        assert_eq!(v[0].details["count"], 2);
        assert_eq!(
            v[0].message,
            "consumer-0 polled events-0 up to offset 3 (value 13, t=10 ms), then its next poll of \
             events-0 started back at offset 2 (value 12, t=30 ms) (1 more like this in details)"
        );
        assert_eq!(v[0].details["anomalies"][0]["delta"], -1);
        assert_eq!(v[0].details["anomalies"][1]["delta"], 0);
    }

    #[test]
    fn advancing_polls_and_rereads_by_another_consumer_are_monotonic() {
        let mut h = HistoryBuilder::default();
        h.poll(0, &tp(0), &[(0, 10), (1, 11)]);
        h.poll(0, &tp(1), &[(0, 20)]);
        h.poll(0, &tp(0), &[(2, 12)]);
        // A gap is `poll-skip`'s business.
        h.poll(0, &tp(0), &[(7, 17)]);
        // Another consumer reads the same records from the start.
        h.poll(1, &tp(0), &[(0, 10), (1, 11), (2, 12)]);
        h.poll(1, &tp(1), &[(0, 20)]);
        assert!(check_history(&NonmonotonicPoll, &h.entries).is_empty());
    }
}
