//! `read-committed-isolation`: a read_committed reader reads only below the last stable offset,
//! never a record of a transaction still open.
//!
//! **Rule.** A record returned to a read_committed reader (see `aborted-read`) at offset `o` of
//! partition `p` at time `t` (the poll's completion; for a processor's `poll` micro-operation,
//! its transaction's completion) breaks isolation when
//! * `o` is at or above `p`'s last stable offset at `t`: the highest LSO any broker reported
//!   for `p` (`last-stable-offset-changed`) at or before `t`, counting only reports that name
//!   an open transaction holding it (`first_unstable`): a report without one means the LSO
//!   follows the high watermark, which is not this check's business; or
//! * the record was written by a transaction (its value is one of a `txn` operation's sends)
//!   that was still open in `p` at `t`: the producer's first marker in `p` above `o` was written
//!   after `t`, or never.
//!
//! **Source.** KIP-98: the last stable offset is "the offset of the first message in the
//! partition belonging to an open transaction" (capped by the high watermark), and a
//! read_committed fetch returns records only below it (UnifiedLog `lastStableOffset`,
//! `fetchOffsetSnapshot`; GROUPS-AND-TRANSACTIONS.md B1 "LSO = min(first unstable offset,
//! HW)", B4.4 "read_committed also stalls at an open LSO").
//!
//! **What is allowed.** read_uncommitted consumers (the default) read up to the high watermark
//! and are exempt. Reads of partitions for which no broker reported an LSO are judged by the
//! second rule only. A leader change (`became-leader`) drops every earlier leader's report: until
//! the new leader reports, the partition is unbounded. Taking the highest LSO any broker reported up to the completion of the poll
//! is lenient on purpose: a fetch answered earlier, or by another leader, is never blamed on a
//! later or higher LSO than some broker had.

use super::lesson::{Lesson, Prevention};
use super::txn::{self, ending_marker, markers, read_committed_reads, txns, writers};
use super::{violation, CheckInput, Checker, Violation};
use ksim_model::event::Event;
use ksim_model::types::{BrokerId, Offset, TopicPartition};
use serde_json::json;
use std::collections::BTreeMap;

/// See the module documentation.
pub struct ReadCommittedIsolation;

/// Per partition, the LSO bound after each report, in event order: (time, bound), the bound
/// being the highest LSO of the brokers' latest reports when each of them names an open
/// transaction, `None` (unbounded) when one follows the high watermark.
type LsoBounds = BTreeMap<TopicPartition, Vec<(u64, Option<Offset>)>>;

fn lso_bounds(input: &CheckInput) -> LsoBounds {
    let mut latest: BTreeMap<&TopicPartition, BTreeMap<BrokerId, Option<Offset>>> = BTreeMap::new();
    let mut out: LsoBounds = BTreeMap::new();
    for r in input.events {
        // A new leader's LSO replaces every earlier leader's: a report from a leader that has
        // since died or stepped down bounds nothing any more (`transactions-under-faults`
        // seed 140005: the old leader's held LSO outlived it, and reads from the new leader,
        // whose LSO followed its high watermark unreported, were blamed on it).
        if let Event::BecameLeader { tp, broker, .. } = &r.event {
            if let Some(brokers) = latest.get_mut(tp) {
                brokers.retain(|b, _| b == broker);
                brokers.insert(*broker, None);
                out.entry(tp.clone()).or_default().push((r.time_ms, None));
            }
            continue;
        }
        if let Event::LastStableOffsetChanged {
            tp,
            broker,
            last_stable_offset,
            first_unstable,
        } = &r.event
        {
            let brokers = latest.entry(tp).or_default();
            brokers.insert(*broker, first_unstable.map(|_| *last_stable_offset));
            let mut bound: Option<Offset> = None;
            for lso in brokers.values() {
                match lso {
                    None => {
                        bound = None;
                        break;
                    }
                    Some(l) => bound = Some(bound.map_or(*l, |b| b.max(*l))),
                }
            }
            out.entry(tp.clone()).or_default().push((r.time_ms, bound));
        }
    }
    out
}

/// The LSO bound of `tp` at `time_ms` (see the module documentation): `None` when unbounded
/// or unknown.
fn bound_at(bounds: &LsoBounds, tp: &TopicPartition, time_ms: u64) -> Option<Offset> {
    let list = bounds.get(tp)?;
    let n = list.partition_point(|(t, _)| *t <= time_ms);
    list.get(n.checked_sub(1)?)?.1
}

impl Checker for ReadCommittedIsolation {
    fn name(&self) -> &'static str {
        "read-committed-isolation"
    }

    fn statement(&self) -> &'static str {
        "a read_committed reader reads only below the last stable offset, never an open transaction"
    }

    fn lesson(&self) -> Lesson {
        Lesson {
            intro: "A read_committed consumer returned a record at or above the partition's last \
                    stable offset, or a record of a transaction that was still open: it read \
                    data whose transaction could still abort. read_uncommitted consumers (the \
                    default) read up to the high watermark by design and are not judged.",
            prevention: Prevention::ReadCommitted,
        }
    }

    fn skip_reason(&self, input: &CheckInput) -> Option<String> {
        txn::without_txns(input, "no transaction can be open under a read").or_else(|| {
            txn::without_read_committed(input, "no read is bound by the last stable offset")
        })
    }

    fn check(&self, input: &CheckInput) -> Vec<Violation> {
        let reports = lso_bounds(input);
        let txns = txns(input.history);
        let writers = writers(&txns);
        let markers = markers(input.events);
        let (reads, _) = read_committed_reads(input);
        let mut anomalies = Vec::new();
        for read in reads {
            let t = read.entry.time_ms;
            if let Some(lso) = bound_at(&reports, read.tp, t).filter(|lso| read.offset >= *lso) {
                let sentence = format!(
                    "{} (read_committed), at or above {}'s last stable offset {lso} at that time",
                    read.describe(),
                    read.tp
                );
                anomalies.push((
                    sentence,
                    json!({ "read": read.to_json(), "last_stable_offset": lso.0 }),
                ));
                continue;
            }
            let Some(&(i, _, _)) = writers.get(&read.value) else {
                continue;
            };
            let writer = &txns[i];
            let Some(pid) = writer.producer_id else {
                continue;
            };
            let ended = ending_marker(&markers, read.tp, pid, read.offset);
            if ended.is_some_and(|m| m.record.time_ms <= t) {
                continue;
            }
            let when = match ended {
                Some(m) => format!(
                    "its marker was written only at t={} ms (offset {})",
                    m.record.time_ms, m.offset
                ),
                None => "no marker ever ended it there".to_string(),
            };
            let sentence = format!(
                "{} (read_committed), written by {}, still open in {} then: {when}",
                read.describe(),
                writer.describe(),
                read.tp
            );
            anomalies.push((
                sentence,
                json!({
                    "read": read.to_json(),
                    "writer": writer.to_json(),
                    "marker_ms": ended.map(|m| m.record.time_ms),
                }),
            ));
        }
        violation(self.name(), None, anomalies, serde_json::Map::new())
    }
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use super::super::txn::testkit::{at, lso, marker};
    use super::*;
    use ksim_model::event::OpType;

    #[test]
    fn a_read_above_the_lso_or_of_an_open_transaction_breaks_isolation() {
        let mut h = HistoryBuilder::default();
        // t=0..10: transaction writes value 1 at 0; t=20..30 a non-transactional 2 at 1.
        h.txn(0, OpType::Ok, (7, 0), vec![tsend(&tp(0), 1, 0)]);
        h.send(1, OpType::Ok, &tp(0), 2, 1);
        // t=50: the consumer reads both while the transaction holds the LSO at 0, and the
        // COMMIT marker comes only at t=60.
        h.poll(0, &tp(0), &[(0, 1), (1, 2)]);
        let events = [
            at(5, lso(&tp(0), 0, Some((7, 0)))),
            at(60, marker(&tp(0), (7, 0), true, 2)),
            at(60, lso(&tp(0), 3, None)),
        ];
        let v = check_history_events(&ReadCommittedIsolation, &h.entries, &events);
        assert_eq!(v.len(), 1, "{v:?}");
        assert_eq!(v[0].details["count"], 2);
        assert_eq!(
            v[0].message,
            "consumer-0 read value 1 at events-0 offset 0 at t=50 ms (read_committed), at or \
             above events-0's last stable offset 0 at that time (1 more like this in details)"
        );
        // Without LSO reports, the open transaction alone gives it away.
        let v = check_history_events(&ReadCommittedIsolation, &h.entries, &events[1..2]);
        assert_eq!(v[0].details["count"], 1);
        assert!(
            v[0].message
                .contains("still open in events-0 then: its marker was written only at t=60 ms"),
            "{}",
            v[0].message
        );
    }

    #[test]
    fn reads_below_the_lso_of_ended_transactions_pass() {
        let mut h = HistoryBuilder::default();
        h.txn(0, OpType::Ok, (7, 0), vec![tsend(&tp(0), 1, 0)]);
        h.txn(0, OpType::Ok, (7, 0), vec![tsend(&tp(0), 3, 2)]);
        h.poll(0, &tp(0), &[(0, 1)]);
        let events = [
            at(5, lso(&tp(0), 0, Some((7, 0)))),
            at(8, marker(&tp(0), (7, 0), true, 1)),
            at(8, lso(&tp(0), 2, None)),
            at(25, lso(&tp(0), 2, Some((7, 2)))),
            at(35, marker(&tp(0), (7, 0), true, 3)),
        ];
        assert!(check_history_events(&ReadCommittedIsolation, &h.entries, &events).is_empty());
    }

    /// `transactions-under-faults` seed 140005: the old leader reported an LSO held at 2 and
    /// died; the new leader's LSO followed its high watermark without a report. A read at 2
    /// from the new leader is not above any LSO; without the leader change it would be.
    #[test]
    fn a_new_leader_replaces_the_old_leaders_lso() {
        let mut h = HistoryBuilder::default();
        h.txn(0, OpType::Ok, (7, 0), vec![tsend(&tp(0), 3, 2)]);
        h.poll(0, &tp(0), &[(2, 3)]);
        let held = at(1, lso(&tp(0), 2, Some((7, 2))));
        let ended = at(2, marker(&tp(0), (7, 0), true, 3));
        let stale = [held.clone(), ended.clone()];
        assert_eq!(
            check_history_events(&ReadCommittedIsolation, &h.entries, &stale).len(),
            1
        );
        let new_leader = at(
            2,
            Event::BecameLeader {
                tp: tp(0),
                broker: BrokerId(1),
                leader_epoch: ksim_model::types::LeaderEpoch(1),
                isr: vec![BrokerId(1)],
                log_end_offset: Offset(4),
                high_watermark: Offset(4),
            },
        );
        let events = [held, ended, new_leader];
        assert!(check_history_events(&ReadCommittedIsolation, &h.entries, &events).is_empty());
    }
}
