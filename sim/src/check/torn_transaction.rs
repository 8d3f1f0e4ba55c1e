//! `torn-transaction`: read_committed readers saw part of a committed transaction and read past
//! the rest without ever seeing it.
//!
//! **Rule.** A transaction completed `ok` (committed). read_committed readers (see
//! `aborted-read`) read at least one of its records, and for another of its records, at offset
//! `o` of partition `p` (the offset its produce was acknowledged at), read_committed readers
//! read `p` past `o` (some read returned a record of `p` above `o`) and yet no read_committed
//! reader ever returned it. Reads are judged collectively, across readers and the whole run, as
//! `lost-write` judges them, so a group member that was handed `p` after `o` does not make a
//! transaction torn by itself.
//!
//! **Source.** KIP-98's atomicity: the records of a transaction, across partitions, become
//! visible to read_committed consumers all together or not at all (the COMMIT markers are
//! written to every partition of the transaction once PrepareCommit is durable, and an
//! ABORT in one partition never goes with a COMMIT in another). Jepsen's Bufstream analysis
//! found Kafka tearing transactions (KAFKA-17754): a stale ABORT marker of the previous
//! transaction, delivered late, ends the next transaction (same producer id and epoch under
//! `transaction.version = 1`) in one partition, while the client commits it in the others
//! (GROUPS-AND-TRANSACTIONS.md B4.3). KIP-890 part 2 fences it.
//!
//! **What is allowed.** A record removed on purpose (retention, compaction; see
//! [`super::Removed`]) is not missing. Records whose offset the producer never learned, and
//! partitions nobody read past the record, are not judged. A transaction whose outcome is
//! unknown (`info`) or aborted is not judged here (`aborted-read` judges aborted ones).

use super::lesson::{Lesson, Prevention};
use super::txn::{self, read_committed_reads, txns, Read};
use super::{violation, CheckInput, Checker, Removed, Violation};
use ksim_model::event::OpType;
use ksim_model::types::TopicPartition;
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};

/// See the module documentation.
pub struct TornTransaction;

impl Checker for TornTransaction {
    fn name(&self) -> &'static str {
        "torn-transaction"
    }

    fn statement(&self) -> &'static str {
        "read_committed readers see all of a committed transaction's records or none"
    }

    fn lesson(&self) -> Lesson {
        Lesson {
            intro: "A committed transaction was torn: read_committed consumers read some of its \
                    records and read past the others, which never became visible. A stale \
                    transaction marker (KAFKA-17754) or a produce that joined the wrong \
                    transaction ended part of it differently from the rest.",
            prevention: Prevention::TxnFencing,
        }
    }

    fn skip_reason(&self, input: &CheckInput) -> Option<String> {
        txn::without_txns(input, "no transaction can be torn")
            .or_else(|| txn::without_read_committed(input, "no read can show a transaction partly"))
    }

    fn check(&self, input: &CheckInput) -> Vec<Violation> {
        let (reads, _) = read_committed_reads(input);
        let read_values: BTreeSet<u64> = reads.iter().map(|r| r.value).collect();
        let mut max_read: BTreeMap<&TopicPartition, &Read> = BTreeMap::new();
        for r in &reads {
            let e = max_read.entry(r.tp).or_insert(r);
            if r.offset > e.offset {
                *e = r;
            }
        }
        let removed = Removed::from_events(input.events);
        let mut anomalies = Vec::new();
        for t in txns(input.history)
            .iter()
            .filter(|t| t.outcome == OpType::Ok)
        {
            let seen: Vec<_> = t
                .sends
                .iter()
                .filter(|(_, v, _)| read_values.contains(v))
                .collect();
            let missed: Vec<_> = t
                .sends
                .iter()
                .filter(|(_, v, _)| !read_values.contains(v))
                .filter_map(|(tp, v, o)| {
                    let o = (*o)?;
                    if removed.excuses(tp, o).is_some() {
                        return None;
                    }
                    let past = max_read.get(tp).filter(|r| r.offset > o)?;
                    Some((*tp, *v, o, *past))
                })
                .collect();
            let (Some((stp, sv, so)), Some((mtp, mv, mo, past))) = (seen.first(), missed.first())
            else {
                continue;
            };
            let at = |o: &Option<ksim_model::types::Offset>| {
                o.map_or("offset unknown".to_string(), |o| format!("offset {o}"))
            };
            let sentence = format!(
                "{} wrote {} records; read_committed readers saw {} of them (value {sv} at {stp} \
                 {}) but never value {mv} at {mtp} offset {mo}, although {} read {mtp} up to \
                 offset {} (t={} ms)",
                t.describe(),
                t.sends.len(),
                seen.len(),
                at(so),
                past.entry.process,
                past.offset,
                past.entry.time_ms
            );
            let data = json!({
                "txn": t.to_json(),
                "seen": seen.iter().map(|(tp, v, o)| json!({
                    "tp": tp.to_string(), "value": v, "offset": o.map(|o| o.0),
                })).collect::<Vec<_>>(),
                "missed": missed.iter().map(|(tp, v, o, past)| json!({
                    "tp": tp.to_string(), "value": v, "offset": o.0, "read_past": past.to_json(),
                })).collect::<Vec<_>>(),
            });
            anomalies.push((sentence, data));
        }
        violation(self.name(), None, anomalies, serde_json::Map::new())
    }
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use super::*;

    #[test]
    fn a_committed_transaction_seen_in_part_and_read_past_is_torn() {
        let mut h = HistoryBuilder::default();
        // KAFKA-17754: the transaction's record in events-1 was aborted by a stale marker.
        h.txn(
            0,
            OpType::Ok,
            (7, 0),
            vec![tsend(&tp(0), 1, 0), tsend(&tp(1), 2, 0)],
        );
        h.send(1, OpType::Ok, &tp(1), 3, 2);
        h.poll(0, &tp(0), &[(0, 1)]);
        h.poll(0, &tp(1), &[(2, 3)]);
        let v = check_history(&TornTransaction, &h.entries);
        assert_eq!(v.len(), 1, "{v:?}");
        assert_eq!(
            v[0].message,
            "producer-0's transaction 0 (tx-0, producer id 7, epoch 0, t=0..10 ms, committed) \
             wrote 2 records; read_committed readers saw 1 of them (value 1 at events-0 offset \
             0) but never value 2 at events-1 offset 0, although consumer-0 read events-1 up to \
             offset 2 (t=70 ms)"
        );
    }

    #[test]
    fn a_transaction_seen_whole_or_not_read_past_is_not_torn() {
        let mut h = HistoryBuilder::default();
        h.txn(
            0,
            OpType::Ok,
            (7, 0),
            vec![tsend(&tp(0), 1, 0), tsend(&tp(1), 2, 0)],
        );
        // An aborted transaction seen in part is aborted-read's business.
        h.txn(
            0,
            OpType::Fail,
            (7, 0),
            vec![tsend(&tp(0), 4, 2), tsend(&tp(1), 5, 2)],
        );
        h.poll(0, &tp(0), &[(0, 1), (2, 4)]);
        h.poll(0, &tp(1), &[(0, 2), (4, 6)]);
        assert!(check_history(&TornTransaction, &h.entries).is_empty());
        // events-1 not read past offset 0 yet: not judged.
        let mut h = HistoryBuilder::default();
        h.txn(
            0,
            OpType::Ok,
            (7, 0),
            vec![tsend(&tp(0), 1, 0), tsend(&tp(1), 2, 0)],
        );
        h.poll(0, &tp(0), &[(0, 1)]);
        assert!(check_history(&TornTransaction, &h.entries).is_empty());
    }
}
