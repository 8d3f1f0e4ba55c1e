//! `hanging-transaction`: at the end of the run, no partition's last stable offset is stuck
//! below its high watermark behind a transaction the coordinator no longer has open.
//!
//! **Rule.** For each partition, take its last `last-stable-offset-changed` report of the run.
//! If it names an open transaction (`first_unstable` = producer id `P`, first offset `f`), its
//! LSO is below the partition's final high watermark (the leader's, as `lag` reads it), the
//! report is at least [`GRACE_MS`] older than the end of the run, and the transaction
//! coordinator's last state for `P` (over every `transactional.id`, `txn-state-changed`) is not
//! an open one (`Ongoing`, `PrepareCommit`, `PrepareAbort`, `PrepareEpochFence`), then the
//! partition hangs: nothing will ever write the marker that ends `P`'s transaction there, so
//! the LSO never reaches the high watermark, read_committed consumers stall at it and
//! compaction stops below it.
//!
//! **Source.** KIP-890 ("Transactions Server-Side Defense"), motivation: a produce delayed
//! past the transaction's abort (under `transaction.version = 1` the client's abort does not
//! bump the epoch, apache/kafka PR #12392) is appended after the markers and opens a
//! transaction the coordinator does not know: "the LSO is stuck" until an operator aborts it
//! (`kafka-transactions.sh --find-hanging`, KIP-664). GROUPS-AND-TRANSACTIONS.md B4.2:
//! "Invariant: when no transaction is Ongoing, LSO reaches HW". Prevented by
//! `transaction.partition.verification.enable = true` (KIP-890 part 1) and by
//! `transaction.version = 2`.
//!
//! **What is allowed.** A transaction the coordinator still has open (it will commit, abort,
//! or abort on `transaction.timeout.ms`), and an open transaction reported less than
//! [`GRACE_MS`] before the end (its markers may be on the way). A run that injected faults
//! and never healed them is not judged (as in `liveness`), nor a partition with no high
//! watermark report.

use super::lesson::{Lesson, Prevention};
use super::txn;
use super::{violation, CheckInput, Checker, Violation};
use ksim_model::event::Event;
use ksim_model::types::{Offset, ProducerId, TopicPartition};
use serde_json::json;
use std::collections::BTreeMap;

/// See the module documentation.
pub struct HangingTransaction;

/// How long before the end of the run a partition's last LSO report must be to be judged:
/// Kafka's `transaction.abort.timed.out.transaction.cleanup.interval.ms` default (10 s), the
/// longest a healthy coordinator takes to notice a transaction it must end.
pub const GRACE_MS: u64 = 10_000;

/// A partition's LSO report: (time, node, LSO, open transaction as (producer id, first offset)).
type LsoReport = (u64, String, Offset, Option<(ProducerId, Offset)>);

/// The coordinator states in which a transaction is still open.
const OPEN: [&str; 4] = [
    "Ongoing",
    "PrepareCommit",
    "PrepareAbort",
    "PrepareEpochFence",
];

impl Checker for HangingTransaction {
    fn name(&self) -> &'static str {
        "hanging-transaction"
    }

    fn statement(&self) -> &'static str {
        "no partition's last stable offset stays stuck behind a transaction the coordinator has closed"
    }

    fn lesson(&self) -> Lesson {
        Lesson {
            intro: "A partition's last stable offset stayed stuck below its high watermark \
                    behind a transaction its coordinator no longer had open (a hanging \
                    transaction): a produce delayed past the transaction's end opened a \
                    transaction nobody will ever end, so read_committed consumers stall there \
                    forever.",
            prevention: Prevention::TxnFencing,
        }
    }

    fn skip_reason(&self, input: &CheckInput) -> Option<String> {
        txn::without_txns(input, "no transaction can hang")
    }

    fn check(&self, input: &CheckInput) -> Vec<Violation> {
        let faults = input
            .events
            .iter()
            .any(|r| matches!(&r.event, Event::Fault { .. }));
        let healed = input
            .events
            .iter()
            .any(|r| matches!(&r.event, Event::Fault { source, .. } if source == "heal-phase"));
        if faults && !healed {
            return Vec::new();
        }
        let end_ms = input
            .events
            .iter()
            .map(|r| r.time_ms)
            .chain(input.history.iter().map(|e| e.time_ms))
            .max()
            .unwrap_or(0);
        let hws = super::lag::final_high_watermarks(input);
        // Per partition, its last LSO report: (time, node, LSO, open transaction).
        let mut last: BTreeMap<&TopicPartition, LsoReport> = BTreeMap::new();
        // Per producer id, the coordinator's last state: (state, transactional id, time).
        let mut state: BTreeMap<ProducerId, (&str, &str, u64)> = BTreeMap::new();
        for r in input.events {
            match &r.event {
                Event::LastStableOffsetChanged {
                    tp,
                    last_stable_offset,
                    first_unstable,
                    ..
                } => {
                    last.insert(
                        tp,
                        (
                            r.time_ms,
                            r.node.to_string(),
                            *last_stable_offset,
                            *first_unstable,
                        ),
                    );
                }
                Event::TxnStateChanged {
                    transactional_id,
                    producer_id,
                    to,
                    ..
                } => {
                    state.insert(*producer_id, (to, transactional_id, r.time_ms));
                }
                _ => {}
            }
        }
        let mut anomalies = Vec::new();
        for (tp, (t, node, lso, unstable)) in last {
            let Some((pid, first)) = unstable else {
                continue;
            };
            let Some(hw) = hws.get(tp) else { continue };
            if lso >= *hw || t + GRACE_MS > end_ms {
                continue;
            }
            let coordinator = match state.get(&pid) {
                Some((s, _, _)) if OPEN.contains(s) => continue,
                Some((s, tid, ts)) => {
                    format!("the coordinator's last state for it is {s} ({tid}, t={ts} ms)")
                }
                None => "no coordinator ever had a transaction of that producer id".to_string(),
            };
            anomalies.push((
                format!(
                    "{tp}'s last stable offset is stuck at {lso} below its high watermark {hw} \
                     since t={t} ms ({node}), behind the open transaction of producer id {} \
                     from offset {first}, although {coordinator}",
                    pid.0
                ),
                json!({ "tp": tp.to_string(), "last_stable_offset": lso.0,
                        "high_watermark": hw.0, "since_ms": t, "producer_id": pid.0,
                        "first_offset": first.0, "coordinator_state": state.get(&pid).map(|s| s.0),
                        "end_ms": end_ms }),
            ));
        }
        violation(self.name(), None, anomalies, serde_json::Map::new())
    }
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use super::super::txn::testkit::{at, lso, txn_state};
    use super::*;
    use ksim_model::event::OpType;
    use ksim_model::types::{BrokerId, LeaderEpoch};

    fn events(coordinator_to: &str) -> Vec<crate::history::EventRecord> {
        vec![
            at(
                100,
                txn_state("tx-0", (7, 0), "Ongoing", "PrepareAbort", "end-txn"),
            ),
            at(
                200,
                txn_state(
                    "tx-0",
                    (7, 0),
                    "PrepareAbort",
                    coordinator_to,
                    "markers-written",
                ),
            ),
            // A produce delayed past the abort opens a transaction at offset 5.
            at(300, lso(&tp(0), 5, Some((7, 5)))),
            at(
                300,
                Event::HighWatermarkChanged {
                    tp: tp(0),
                    broker: BrokerId(0),
                    leader_epoch: LeaderEpoch(0),
                    high_watermark: Offset(9),
                },
            ),
            at(
                20_000,
                Event::Fault {
                    action: "heal".into(),
                    nodes: vec![],
                    source: "heal-phase".into(),
                },
            ),
            at(40_000, lso(&tp(1), 0, None)),
        ]
    }

    #[test]
    fn an_lso_stuck_behind_a_transaction_the_coordinator_closed_hangs() {
        let mut h = HistoryBuilder::default();
        h.txn(0, OpType::Fail, (7, 0), vec![tsend(&tp(0), 1, -1)]);
        let v = check_history_events(&HangingTransaction, &h.entries, &events("CompleteAbort"));
        assert_eq!(v.len(), 1, "{v:?}");
        assert_eq!(
            v[0].message,
            "events-0's last stable offset is stuck at 5 below its high watermark 9 since t=300 \
             ms (broker-0), behind the open transaction of producer id 7 from offset 5, although \
             the coordinator's last state for it is CompleteAbort (tx-0, t=200 ms)"
        );
    }

    #[test]
    fn an_open_transaction_or_a_recent_one_does_not_hang() {
        let mut h = HistoryBuilder::default();
        h.txn(0, OpType::Fail, (7, 0), vec![tsend(&tp(0), 1, -1)]);
        // The coordinator still has it open.
        assert!(
            check_history_events(&HangingTransaction, &h.entries, &events("Ongoing")).is_empty()
        );
        // Reported open too close to the end of the run.
        let mut e = events("CompleteAbort");
        e.truncate(4);
        assert!(check_history_events(&HangingTransaction, &h.entries, &e).is_empty());
        // The LSO reached the high watermark.
        let mut e = events("CompleteAbort");
        e.push(at(30_000, lso(&tp(0), 9, None)));
        assert!(check_history_events(&HangingTransaction, &h.entries, &e).is_empty());
    }
}
