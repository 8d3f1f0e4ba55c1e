//! `nonmonotonic-send`: one producer's acknowledged sends to a partition went back.
//!
//! **Definition.** Take one producer process and one partition, and the process's sends to
//! that partition that completed `ok` with an offset, in the order the process *invoked* them
//! (the order the application called `send()`). Each must have been acknowledged at a higher
//! offset than the one before it. A send acknowledged at an offset at or below its
//! predecessor's was written before it (or over it): the producer's records reached the log out
//! of the order the application produced them. This is the reordering that
//! `max.in.flight.requests.per.connection > 1` without idempotence allows: batch 1 fails with a
//! retriable error, batch 2 (already in flight) is appended, then the retry of batch 1 lands
//! after it. With `enable.idempotence=true` the broker rejects the out-of-order batch
//! (OUT_OF_ORDER_SEQUENCE_NUMBER) until its predecessor is in, so the order holds with up to
//! five requests in flight, and a violation there is a bug.
//!
//! **Source.** Jepsen's Kafka checker (`jepsen/src/jepsen/tests/kafka.clj`,
//! `nonmonotonic-send-cases`): per process, per key, the first value an operation sent must
//! come after the last value the process's previous send to that key wrote, in the key's
//! version order; a distance of zero or less is nonmonotonic. Offsets are exact here, so the
//! version order is the offset order.
//!
//! A committed (`ok`) transaction's `send` micro-operations count as the process's sends, in
//! the order the transaction lists them; an aborted or unknown one's are not judged.
//!
//! **What is allowed.** Only `ok` sends that carry an offset are judged: a send that completed
//! `info` or `fail`, or that the run never completed, has no known position and is skipped (the
//! next `ok` send is compared with the last `ok` one before it). Different processes, and one
//! process's sends to different partitions, are never ordered against each other. Sends that
//! are individually out of order but not adjacent (offsets 10, 5, 7) are reported once, at the
//! step that went back, as in Jepsen.

use super::lesson::{self, Lesson, Prevention};
use super::{violation, CheckInput, Checker, Violation};
use crate::history::{pairs, HistoryEntry};
use ksim_model::event::{OpType, OpValue};
use ksim_model::types::{NodeId, Offset, TopicPartition};
use serde_json::json;
use std::collections::BTreeMap;

/// See the module documentation.
pub struct NonmonotonicSend;

/// An acknowledged send: its invoke, completion, value and offset.
#[derive(Clone, Copy)]
struct Sent<'a> {
    invoke: &'a HistoryEntry,
    completion: &'a HistoryEntry,
    value: u64,
    offset: Offset,
}

impl Sent<'_> {
    fn to_json(self) -> serde_json::Value {
        json!({
            "value": self.value,
            "offset": self.offset.0,
            "invoked": { "index": self.invoke.index, "time_ms": self.invoke.time_ms },
            "acked": { "index": self.completion.index, "time_ms": self.completion.time_ms },
        })
    }
}

impl Checker for NonmonotonicSend {
    fn name(&self) -> &'static str {
        "nonmonotonic-send"
    }

    fn statement(&self) -> &'static str {
        "one producer's acknowledged offsets increase in send order"
    }

    fn lesson(&self) -> Lesson {
        Lesson {
            intro: lesson::WRITTEN_TWICE,
            prevention: Prevention::Duplicate,
        }
    }

    fn check(&self, input: &CheckInput) -> Vec<Violation> {
        let mut last_sent: BTreeMap<(NodeId, &TopicPartition), Sent<'_>> = BTreeMap::new();
        let mut anomalies = Vec::new();
        // `pairs` is in invoke order.
        for pair in pairs(input.history) {
            let Some(completion) = pair.completion else {
                continue;
            };
            if completion.op.op_type != OpType::Ok {
                continue;
            }
            // A committed transaction's sends count in the order it sent them (Jepsen's
            // checker compares `:txn` operations' writes too).
            let (single, mops): (Option<(&TopicPartition, &u64, &Offset)>, &[_]) =
                match &completion.op.value {
                    OpValue::Send {
                        tp,
                        value,
                        offset: Some(offset),
                        ..
                    } => (Some((tp, value, offset)), &[]),
                    OpValue::Txn { mops, .. } => (None, mops),
                    _ => continue,
                };
            let sends = single
                .into_iter()
                .chain(mops.iter().filter_map(|m| match m {
                    ksim_model::event::TxnMop::Send {
                        tp,
                        value,
                        offset: Some(offset),
                        ..
                    } => Some((tp, value, offset)),
                    _ => None,
                }));
            for (tp, value, offset) in sends {
                let sent = Sent {
                    invoke: pair.invoke,
                    completion,
                    value: *value,
                    offset: *offset,
                };
                let key = (pair.invoke.process, tp);
                if let Some(before) = last_sent.get(&key) {
                    if sent.offset <= before.offset {
                        let sentence = format!(
                        "{} sent value {} to {tp} (t={} ms) before value {} (t={} ms), but they were acknowledged at offsets {} and {}",
                        pair.invoke.process,
                        before.value,
                        before.invoke.time_ms,
                        sent.value,
                        sent.invoke.time_ms,
                        before.offset,
                        sent.offset,
                    );
                        let data = json!({
                            "process": pair.invoke.process.to_string(),
                            "tp": tp.to_string(),
                            "delta": sent.offset.0 - before.offset.0,
                            "sends": [before.to_json(), sent.to_json()],
                        });
                        anomalies.push((sentence, data));
                    }
                }
                last_sent.insert(key, sent);
            }
        }
        violation(self.name(), None, anomalies, serde_json::Map::new())
    }
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use super::*;

    #[test]
    fn a_later_send_acknowledged_below_an_earlier_one_is_nonmonotonic() {
        let mut h = HistoryBuilder::default();
        // The first batch was retried and landed after the second.
        h.send(0, OpType::Ok, &tp(0), 1, 11)
            .send(0, OpType::Ok, &tp(0), 2, 10)
            .send(0, OpType::Ok, &tp(0), 3, 12);
        // Two sends acknowledged at the same offset.
        h.send(1, OpType::Ok, &tp(1), 4, 3)
            .send(1, OpType::Ok, &tp(1), 5, 3);
        let v = check_history(&NonmonotonicSend, &h.entries);
        assert_eq!(v.len(), 1, "{v:?}");
        assert_eq!(v[0].check, "nonmonotonic-send");
        assert_eq!(v[0].details["count"], 2);
        assert_eq!(
            v[0].message,
            "producer-0 sent value 1 to events-0 (t=0 ms) before value 2 (t=20 ms), but they were \
             acknowledged at offsets 11 and 10 (1 more like this in details)"
        );
        assert_eq!(v[0].details["anomalies"][0]["delta"], -1);
        assert_eq!(v[0].details["anomalies"][1]["process"], "producer-1");
        assert_eq!(v[0].details["anomalies"][1]["delta"], 0);
    }

    #[test]
    fn increasing_acks_and_unacknowledged_sends_are_monotonic() {
        let mut h = HistoryBuilder::default();
        h.send(0, OpType::Ok, &tp(0), 1, 5)
            .send(0, OpType::Info, &tp(0), 2, 0)
            .send(0, OpType::Fail, &tp(0), 3, 0)
            .send_open(0, &tp(0), 4)
            .send(0, OpType::Ok, &tp(0), 5, 9)
            // Other partitions and other producers are ordered on their own.
            .send(0, OpType::Ok, &tp(1), 6, 0)
            .send(1, OpType::Ok, &tp(0), 7, 1)
            .send(0, OpType::Ok, &tp(0), 8, 10);
        assert!(check_history(&NonmonotonicSend, &h.entries).is_empty());
    }

    #[test]
    fn committed_transactions_sends_are_ordered_with_the_producers_other_sends() {
        let mut h = HistoryBuilder::default();
        h.txn(
            0,
            OpType::Ok,
            (7, 0),
            vec![tsend(&tp(0), 1, 4), tsend(&tp(0), 2, 5)],
        );
        // An aborted transaction's offsets are not judged.
        h.txn(0, OpType::Fail, (7, 0), vec![tsend(&tp(0), 3, 1)]);
        h.txn(0, OpType::Ok, (7, 0), vec![tsend(&tp(0), 4, 7)]);
        assert!(check_history(&NonmonotonicSend, &h.entries).is_empty());
        h.txn(0, OpType::Ok, (7, 0), vec![tsend(&tp(0), 5, 6)]);
        let v = check_history(&NonmonotonicSend, &h.entries);
        assert_eq!(v[0].details["count"], 1, "{v:?}");
        assert!(v[0]
            .message
            .starts_with("producer-0 sent value 4 to events-0"));
    }
}
