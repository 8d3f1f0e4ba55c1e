//! The `reach` probes about what transactions read (see [`crate::reach`]; kept apart so that
//! file stays readable). They prove that a run built the dependencies the transaction checks
//! judge, Elle's **wr** edges (`check/txn_cycles.rs`: a transaction read another's write), so a
//! clean `G1c` verdict cannot pass because no transaction ever read another:
//!
//! * `txn-polled-after-send`: a `txn` operation whose micro-operations hold a `poll` after one of
//!   its own `send`s: a processor kept its transaction open across polls
//!   (`commit.interval.ms`), the shape Jepsen's Kafka workload gives its transactions
//!   (`[:send k v]` and `[:poll]` micro-operations in any order);
//! * `txn-read-txn-write`: a `txn` operation polled a record another `txn` operation sent: a
//!   wr edge between two transactions;
//! * `txn-read-uncommitted-write`: such a read happened before the writer's transaction
//!   committed in the partition read: no COMMIT marker of the writer's producer id ended the
//!   record by the time the reader completed (the ending marker was an ABORT, came later, or
//!   never came). Only read_uncommitted readers can do that (KIP-98: read_committed fetches stop
//!   at the last stable offset), and it is what lets a wr cycle close (Adya's G1c).
//!
//! Each probe counts the `txn` operations (completions) that did it, once each.

use crate::check::txn::{ending_marker, markers, txns, writers};
use crate::history::{EventRecord, HistoryEntry};
use crate::reach::Probe;
use ksim_model::event::{OpType, OpValue, TxnMop};

/// The probes of this file, as [`crate::reach::PROBES`] lists the others.
pub const TXN_READ_PROBES: &[Probe] = &[
    Probe {
        name: "txn-polled-after-send",
        meaning: "a `txn` operation polled after one of its own sends (a processor kept its transaction open across polls, `commit.interval.ms`)",
    },
    Probe {
        name: "txn-read-txn-write",
        meaning: "a `txn` operation polled a record that another `txn` operation sent (a wr dependency between two transactions)",
    },
    Probe {
        name: "txn-read-uncommitted-write",
        meaning: "a `txn` operation polled a record of another transaction that had not committed in that partition when the reader completed (no COMMIT marker of the writer ended the record by then): a read of uncommitted data, possible only under `isolation.level = read_uncommitted`",
    },
];

/// Counts the probes of [`TXN_READ_PROBES`] that `events` and `history` reached.
pub fn txn_read_probes(
    events: &[EventRecord],
    history: &[HistoryEntry],
    bump: &mut impl FnMut(&str),
) {
    for e in history {
        let OpValue::Txn { mops, .. } = &e.op.value else {
            continue;
        };
        if e.op.op_type == OpType::Invoke {
            continue;
        }
        let first_send = mops.iter().position(|m| matches!(m, TxnMop::Send { .. }));
        let poll_after = first_send.is_some_and(|s| {
            mops[s..]
                .iter()
                .any(|m| matches!(m, TxnMop::Poll { records } if !records.is_empty()))
        });
        if poll_after {
            bump("txn-polled-after-send");
        }
    }
    let txns = txns(history);
    let writers = writers(&txns);
    let markers = markers(events);
    for (reader, t) in txns.iter().enumerate() {
        // Reads happen before the completion; a transaction never completed is not counted.
        let Some(completion) = t.completion else {
            continue;
        };
        let mut read_txn_write = false;
        let mut read_uncommitted = false;
        for (tp, offset, value) in &t.polls {
            let Some(&(writer, wtp, _)) = writers.get(value) else {
                continue;
            };
            if writer == reader || wtp != *tp {
                continue;
            }
            read_txn_write = true;
            let committed_by_then = txns[writer]
                .producer_id
                .and_then(|pid| ending_marker(&markers, tp, pid, *offset))
                .is_some_and(|m| m.commit && m.record.time_ms <= completion.time_ms);
            if !committed_by_then {
                read_uncommitted = true;
            }
        }
        if read_txn_write {
            bump("txn-read-txn-write");
        }
        if read_uncommitted {
            bump("txn-read-uncommitted-write");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::txn::testkit::{at, marker};
    use ksim_model::event::{ClientOp, PolledRecord};
    use ksim_model::types::{NodeId, Offset, ProducerEpoch, ProducerId, TopicPartition};
    use std::collections::BTreeMap;

    fn tp(topic: &str) -> TopicPartition {
        TopicPartition::new(topic, 0)
    }

    fn send(topic: &str, value: u64, offset: i64) -> TxnMop {
        TxnMop::Send {
            tp: tp(topic),
            key: None,
            value,
            offset: Some(Offset(offset)),
        }
    }

    fn poll(topic: &str, records: &[(i64, u64)]) -> TxnMop {
        TxnMop::Poll {
            records: records
                .iter()
                .map(|&(o, value)| PolledRecord {
                    tp: tp(topic),
                    offset: Offset(o),
                    value,
                })
                .collect(),
        }
    }

    /// Processor `p`'s transaction (producer id `10 + p`), invoked at `begin_ms` and completed
    /// `op_type` at `end_ms`.
    fn txn(
        p: u32,
        op_id: u64,
        (begin_ms, end_ms): (u64, u64),
        op_type: OpType,
        mops: Vec<TxnMop>,
    ) -> Vec<HistoryEntry> {
        let value = |mops: Vec<TxnMop>| OpValue::Txn {
            transactional_id: format!("etl-{p}"),
            producer_id: Some(ProducerId(10 + p as i64)),
            producer_epoch: Some(ProducerEpoch(0)),
            mops,
            group: None,
            offsets: vec![],
        };
        let entry = |time_ms, op_type, value| HistoryEntry {
            index: 0,
            time_ms,
            process: NodeId::Processor(p),
            op: ClientOp {
                op_type,
                op_id,
                value,
                error: None,
            },
        };
        vec![
            entry(begin_ms, OpType::Invoke, value(Vec::new())),
            entry(end_ms, op_type, value(mops)),
        ]
    }

    fn reached(events: &[EventRecord], history: &[HistoryEntry]) -> BTreeMap<String, u64> {
        let mut history = history.to_vec();
        history.sort_by_key(|e| e.time_ms);
        for (i, e) in history.iter_mut().enumerate() {
            e.index = i as u64;
        }
        let mut counts = BTreeMap::new();
        txn_read_probes(events, &history, &mut |n: &str| {
            *counts.entry(n.to_string()).or_default() += 1
        });
        counts
    }

    #[test]
    fn a_poll_after_an_own_send_counts_and_a_poll_before_every_send_does_not() {
        let before = txn(
            0,
            1,
            (0, 10),
            OpType::Ok,
            vec![poll("x", &[(0, 1)]), send("y", 2, 0)],
        );
        assert_eq!(reached(&[], &before).get("txn-polled-after-send"), None);
        let after = txn(
            0,
            1,
            (0, 10),
            OpType::Ok,
            vec![
                poll("x", &[(0, 1)]),
                send("y", 2, 0),
                poll("x", &[(1, 3)]),
                send("y", 4, 1),
            ],
        );
        assert_eq!(reached(&[], &after).get("txn-polled-after-send"), Some(&1));
    }

    #[test]
    fn a_read_of_another_transactions_write_counts_and_a_producers_record_does_not() {
        // Processor 0's transaction wrote y@0 (value 2); processor 1's read it, and read x@0
        // (value 1), which no transaction wrote.
        let mut h = txn(0, 1, (0, 10), OpType::Ok, vec![send("y", 2, 0)]);
        h.extend(txn(
            1,
            1,
            (20, 30),
            OpType::Ok,
            vec![poll("y", &[(0, 2)]), send("x", 5, 0)],
        ));
        let commit = at(8, marker(&tp("y"), (10, 0), true, 1));
        let r = reached(std::slice::from_ref(&commit), &h);
        assert_eq!(r.get("txn-read-txn-write"), Some(&1));
        assert_eq!(
            r.get("txn-read-uncommitted-write"),
            None,
            "the COMMIT marker came before the reader completed"
        );
        let only_producer = txn(
            1,
            1,
            (20, 30),
            OpType::Ok,
            vec![poll("x", &[(0, 1)]), send("y", 5, 0)],
        );
        assert_eq!(reached(&[], &only_producer).get("txn-read-txn-write"), None);
    }

    #[test]
    fn a_read_before_the_writers_commit_marker_or_of_an_aborted_write_is_uncommitted() {
        // Processor 1 read processor 0's y@0 and completed at 30 ms; processor 0's COMMIT
        // marker came at 40 ms: the read preceded the commit.
        let mut h = txn(0, 1, (0, 45), OpType::Ok, vec![send("y", 2, 0)]);
        h.extend(txn(
            1,
            1,
            (20, 30),
            OpType::Ok,
            vec![poll("y", &[(0, 2)]), send("x", 5, 0)],
        ));
        let late_commit = at(40, marker(&tp("y"), (10, 0), true, 1));
        let r = reached(std::slice::from_ref(&late_commit), &h);
        assert_eq!(r.get("txn-read-txn-write"), Some(&1));
        assert_eq!(r.get("txn-read-uncommitted-write"), Some(&1));
        // An ABORT marker, or none at all: the write never committed.
        let abort = at(25, marker(&tp("y"), (10, 0), false, 1));
        let r = reached(std::slice::from_ref(&abort), &h);
        assert_eq!(r.get("txn-read-uncommitted-write"), Some(&1));
        assert_eq!(reached(&[], &h).get("txn-read-uncommitted-write"), Some(&1));
    }
}
