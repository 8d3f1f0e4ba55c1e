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
//! change. A consumer in assign mode has a fixed assignment, so it always applies; a consumer
//! in subscribe mode forgets its last read of a partition when its own events say the
//! partition was assigned, revoked or lost (see `poll_skip::successive_polls`). Re-reading a record is at-least-once delivery and
//! is allowed *across* processes and restarts from a committed offset; within one process's
//! uninterrupted assignment it is not.
//!
//! A process that moves back on purpose is not nonmonotonic: after an application
//! `seek(tp, offset)` (an op `seek` in the history) the next poll of `tp` must start at
//! `offset`, and after a reset by `auto.offset.reset` following OFFSET_OUT_OF_RANGE at the
//! reset's target (see `poll_skip::successive_polls`); a poll that then starts below that is
//! still nonmonotonic. A note counts the seeks and resets so taken. A reset back to the first
//! offset known to diverge after a KIP-320 log truncation is not excused: the records the
//! consumer had read are gone from the log, which is the anomaly this check exists to show.

use super::lesson::{self, Lesson, Prevention};
use super::poll_skip::successive_polls;
use super::{violation, CheckInput, Checker, Violation};
use serde_json::json;

/// See the module documentation.
pub struct NonmonotonicPoll;

impl Checker for NonmonotonicPoll {
    fn name(&self) -> &'static str {
        "nonmonotonic-poll"
    }

    fn statement(&self) -> &'static str {
        "a consumer's successive polls do not go back"
    }

    fn lesson(&self) -> Lesson {
        Lesson {
            intro: lesson::READS_JUMPED,
            prevention: Prevention::ReadJump,
        }
    }

    fn notes(&self, input: &CheckInput) -> Vec<String> {
        super::poll_skip::position_change_notes(input)
    }

    fn skip_reason(&self, input: &CheckInput) -> Option<String> {
        super::without_consumers(input, "there are no successive polls to compare")
    }

    fn check(&self, input: &CheckInput) -> Vec<Violation> {
        let mut anomalies = Vec::new();
        successive_polls(
            input.history,
            input.events,
            |tp, expected, (o2, v2, after)| {
                if o2 >= expected.next_offset {
                    return;
                }
                let last = expected.next_offset.0 - 1;
                let how = if o2.0 == last { "again at" } else { "back at" };
                let sentence = format!(
                "{}, then its next poll of {tp} started {how} offset {o2} (value {v2}, t={} ms)",
                expected.describe(after.process, tp),
                after.time_ms,
            );
                let data = json!({
                    "process": after.process.to_string(),
                    "tp": tp.to_string(),
                    "delta": o2.0 - last,
                    "previous": expected.to_json(),
                    "next": { "offset": o2.0, "value": v2, "index": after.index, "time_ms": after.time_ms },
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

    /// Subscribe mode: a partition revoked and assigned again restarts at the group's
    /// committed offset, which may be behind what the consumer had read (Jepsen allows
    /// nonmonotonic-poll under subscribe); without the rebalance the same polls go back.
    #[test]
    fn a_consumer_whose_assignment_changed_may_read_again() {
        use super::super::group_view::testkit::Events;
        let mut h = HistoryBuilder::default();
        h.poll(0, &tp(0), &[(0, 10), (1, 11), (2, 12)]); // t=0, 10
        h.poll(0, &tp(0), &[(1, 11), (2, 12), (3, 13)]); // t=20, 30
        assert_eq!(check_history(&NonmonotonicPoll, &h.entries).len(), 1);
        let mut e = Events::default();
        e.lost(12, 0, 1, &[0]).assigned(15, 0, 2, &[0]);
        assert!(check_history_events(&NonmonotonicPoll, &h.entries, &e.0).is_empty());
    }

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

    #[test]
    fn a_seek_back_then_polls_from_there_is_monotonic_but_a_jump_back_without_one_is_not() {
        let mut h = HistoryBuilder::default();
        h.poll(0, &tp(0), &[(5, 15), (6, 16), (7, 17)]);
        // The application seeks back to 2 on purpose and reads from there.
        h.seek(0, &tp(0), 2);
        h.poll(0, &tp(0), &[(2, 12), (3, 13)]);
        h.poll(0, &tp(0), &[(4, 14)]);
        assert!(check_history(&NonmonotonicPoll, &h.entries).is_empty());
        let input = CheckInput {
            history: &h.entries,
            events: &[],
            final_logs: &Default::default(),
            scenario: None,
            snapshots: &[],
        };
        assert_eq!(
            NonmonotonicPoll.notes(&input),
            vec![
                "1 `seek` call moved a consumer on purpose: the next poll of that partition is \
                  judged against the new position, not against the last record read"
                    .to_string()
            ]
        );

        // The same jump back with no seek is nonmonotonic; a seek to 6 does not excuse a poll
        // that then starts at 2, and the seek of another consumer or partition excuses nothing.
        let mut h = HistoryBuilder::default();
        h.poll(0, &tp(0), &[(5, 15), (6, 16), (7, 17)]);
        h.seek(1, &tp(0), 2);
        h.seek(0, &tp(1), 2);
        h.poll(0, &tp(0), &[(2, 12), (3, 13)]);
        h.seek(0, &tp(0), 6);
        h.poll(0, &tp(0), &[(2, 12)]);
        let v = check_history(&NonmonotonicPoll, &h.entries);
        assert_eq!(v.len(), 1, "{v:?}");
        assert_eq!(v[0].details["count"], 2);
        assert_eq!(
            v[0].message,
            "consumer-0 polled events-0 up to offset 7 (value 17, t=10 ms), then its next poll of \
             events-0 started back at offset 2 (value 12, t=70 ms) (1 more like this in details)"
        );
        let second = &v[0].details["anomalies"][1];
        assert_eq!(second["previous"]["seek"], 6);
        assert_eq!(second["delta"], -3);
    }

    #[test]
    fn a_reset_after_offset_out_of_range_moves_the_expected_position_only_from_where_it_was() {
        // consumer-0 read up to 7; its fetch at 8 got OFFSET_OUT_OF_RANGE and
        // auto.offset.reset=earliest moved it to 2 (the reset is logged before the poll that
        // still returns buffered records 6 and 7).
        let mut h = HistoryBuilder::default();
        h.poll(0, &tp(0), &[(5, 15)]);
        h.poll(0, &tp(0), &[(6, 16), (7, 17)]);
        h.poll(0, &tp(0), &[(2, 12), (3, 13)]);
        let events = [out_of_range_reset(0, 8, 2, 15)];
        assert!(check_history_events(&NonmonotonicPoll, &h.entries, &events).is_empty());

        // A reset from another position, of another consumer, or logged after the poll does
        // not explain the jump back.
        for reset in [
            out_of_range_reset(0, 9, 2, 15),
            out_of_range_reset(1, 8, 2, 15),
            out_of_range_reset(0, 8, 2, 1_000),
        ] {
            let v = check_history_events(&NonmonotonicPoll, &h.entries, &[reset]);
            assert_eq!(v.len(), 1, "{v:?}");
        }

        // A reset whose target is not where the next poll started: judged against the target.
        let events = [out_of_range_reset(0, 8, 4, 15)];
        let v = check_history_events(&NonmonotonicPoll, &h.entries, &events);
        assert_eq!(v.len(), 1, "{v:?}");
        assert_eq!(
            v[0].message,
            "consumer-0 had its position in events-0 reset from 8 to 4 (OFFSET_OUT_OF_RANGE, \
             auto.offset.reset=earliest, t=15 ms), then its next poll of events-0 started back \
             at offset 2 (value 12, t=50 ms)"
        );
    }
}
