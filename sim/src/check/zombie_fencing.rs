//! `zombie-fencing`: once InitProducerId has given a `transactional.id` a new epoch, nothing of
//! an older epoch of it succeeds.
//!
//! **Rule.** Take every InitProducerId the transaction coordinator completed: a
//! `txn-state-changed` event with reason `init-producer-id`, giving `transactional.id` `T`
//! producer id `P` and epoch `E` at time `t`. Each of the following, for the same `T` and `P`
//! with an epoch `e < E`, is a zombie's success after `t`:
//! * **a transactional write appended**: a `send` micro-operation of a transaction that ran
//!   under (`P`, `e`), acknowledged at an offset that a `produce-appended` event of `P` (the
//!   leader's append) covers, logged after `t`;
//! * **a COMMIT marker** of (`P`, `e`) written after `t` (`txn-marker-written`, any partition,
//!   `__consumer_offsets` included: that is how a transaction's offset commit lands);
//! * **a transaction committed** (`ok`) under (`P`, `e`) whose commit the coordinator had not
//!   decided before `t`: no `txn-state-changed` to `PrepareCommit` of `T` and `P` with an epoch
//!   in `[e, E)` between the transaction's begin and `t` (a commit decided before the
//!   InitProducerId is the old producer's, legitimately, even if its answer arrives later;
//!   under `transaction.version = 2` PrepareCommit already carries the bumped epoch `e + 1`).
//!
//! **Source.** KIP-98 "zombie fencing": InitProducerId bumps the epoch and "fences out" every
//! producer instance with the same `transactional.id` and an older epoch; the coordinator
//! refuses their AddPartitionsToTxn, TxnOffsetCommit and EndTxn with PRODUCER_FENCED
//! (TransactionCoordinator `handleInitProducerId`, `handleEndTransaction`), and partitions
//! refuse their produce with INVALID_PRODUCER_EPOCH once a marker of the newer epoch reached
//! them (ProducerAppendInfo `checkProducerEpoch`). GROUPS-AND-TRANSACTIONS.md B4.1 ("no commit
//! below the latest InitProducerId epoch"); the knob `sim.txn.producer-fencing = false` breaks
//! it.
//!
//! **Instances, not only epochs.** The coordinator names the client each InitProducerId
//! answered (`client` of its `txn-state-changed`). A transaction run by process `X` belongs to
//! the instance that `X`'s latest InitProducerId before its begin created; an InitProducerId
//! for another client `Y` completed after that one fences it as well, whatever the epochs
//! say. With Kafka's fencing every InitProducerId bumps the epoch, so both rules agree; with
//! `sim.txn.producer-fencing = false` the coordinator gives the new instance the epoch the old
//! one has, and only the instance rule sees the zombie (the `zombie-producer` scenario). A
//! commit counts as decided before the fencing InitProducerId when a PrepareCommit that
//! answered `X`'s own EndTxn was written between the transaction's begin and it (for events
//! without a client, one of an epoch in `[e, E)`). COMMIT markers are compared by epoch only:
//! a marker does not say which instance's transaction it ends.
//!
//! **What is allowed.** The coordinator's own ABORT markers for the fenced transaction (written
//! at the bumped epoch, PrepareEpochFence) and anything of the old epoch before the
//! InitProducerId completed. A new producer id for the same `transactional.id` (epoch
//! exhaustion) is not compared with the old one.

use super::lesson::{Lesson, Prevention};
use super::txn::{self, txns, Txn};
use super::{violation, CheckInput, Checker, Violation};
use crate::history::EventRecord;
use ksim_model::event::{Event, OpType};
use ksim_model::types::{Offset, ProducerEpoch, ProducerId, TopicPartition};
use serde_json::json;
use std::collections::BTreeMap;

/// See the module documentation.
pub struct ZombieFencing;

/// One completed InitProducerId: (time, epoch, event).
type Init<'a> = (u64, ProducerEpoch, &'a EventRecord);

/// The client a coordinator transition answered (`client` of a `txn-state-changed`).
fn client_of(r: &EventRecord) -> Option<&str> {
    match &r.event {
        Event::TxnStateChanged { client, .. } => client.as_deref(),
        _ => None,
    }
}

/// The first InitProducerId of `list` that fences transaction `t` (epoch `epoch`) and
/// completed before `time_ms`: one of a newer epoch, or one for another client than the
/// transaction's process completed after that process's own latest InitProducerId before the
/// transaction began (see the module documentation).
fn fencing_txn<'l, 'a>(
    list: &'l [Init<'a>],
    t: &Txn,
    epoch: ProducerEpoch,
    time_ms: u64,
) -> Option<&'l Init<'a>> {
    let me = t.process().to_string();
    let begin = t.invoke.time_ms;
    let own = list
        .iter()
        .filter(|(at, _, r)| *at <= begin && client_of(r) == Some(me.as_str()))
        .map(|(at, _, _)| *at)
        .next_back();
    list.iter().find(|(at, e, r)| {
        *at < time_ms
            && (*e > epoch
                || own
                    .is_some_and(|own| *at > own && client_of(r).is_some_and(|c| c != me.as_str())))
    })
}

/// A leader's append of a producer's batch: (base offset, last offset, event).
type Append<'a> = (Offset, Offset, &'a EventRecord);

/// The completed InitProducerIds per (transactional id, producer id), in event order.
fn inits(events: &[EventRecord]) -> BTreeMap<(&str, ProducerId), Vec<Init<'_>>> {
    let mut out: BTreeMap<(&str, ProducerId), Vec<Init<'_>>> = BTreeMap::new();
    for r in events {
        if let Event::TxnStateChanged {
            transactional_id,
            producer_id,
            producer_epoch,
            reason,
            ..
        } = &r.event
        {
            if reason == "init-producer-id" {
                out.entry((transactional_id.as_str(), *producer_id))
                    .or_default()
                    .push((r.time_ms, *producer_epoch, r));
            }
        }
    }
    out
}

/// The first InitProducerId of `list` that fences `epoch` and completed before `time_ms`.
fn fencing<'l, 'a>(
    list: &'l [Init<'a>],
    epoch: ProducerEpoch,
    time_ms: u64,
) -> Option<&'l Init<'a>> {
    list.iter().find(|(t, e, _)| *e > epoch && *t < time_ms)
}

fn init_text(tid: &str, pid: ProducerId, init: &Init) -> String {
    format!(
        "InitProducerId gave {tid} producer id {} epoch {} at t={} ms ({})",
        pid.0, init.1 .0, init.0, init.2.node
    )
}

impl Checker for ZombieFencing {
    fn name(&self) -> &'static str {
        "zombie-fencing"
    }

    fn statement(&self) -> &'static str {
        "after InitProducerId bumps a transactional id's epoch, no older epoch writes or commits"
    }

    fn lesson(&self) -> Lesson {
        Lesson {
            intro: "A zombie producer (an older instance of a `transactional.id`, paused or cut \
                    off while a new instance called InitProducerId) still wrote or committed \
                    after it had been fenced: two instances of one transactional id both made \
                    progress.",
            prevention: Prevention::TxnFencing,
        }
    }

    fn skip_reason(&self, input: &CheckInput) -> Option<String> {
        txn::without_txns(input, "no transactional id can have a zombie")
    }

    fn check(&self, input: &CheckInput) -> Vec<Violation> {
        let inits = inits(input.events);
        // producer id -> transactional id, from the coordinator's events and the history.
        let mut tid_of: BTreeMap<ProducerId, &str> = BTreeMap::new();
        for (tid, pid) in inits.keys() {
            tid_of.entry(*pid).or_insert(tid);
        }
        let txns = txns(input.history);
        for t in &txns {
            if let Some(pid) = t.producer_id {
                tid_of.entry(pid).or_insert(t.transactional_id);
            }
        }
        // The leaders' appends per (partition, producer id): (base, last, event).
        let mut appends: BTreeMap<(&TopicPartition, ProducerId), Vec<Append>> = BTreeMap::new();
        for r in input.events {
            if let Event::ProduceAppended {
                tp,
                producer_id,
                base_offset,
                last_offset,
                ..
            } = &r.event
            {
                appends.entry((tp, *producer_id)).or_default().push((
                    *base_offset,
                    *last_offset,
                    r,
                ));
            }
        }
        let mut anomalies = Vec::new();
        // COMMIT markers of a fenced epoch.
        for r in input.events {
            let Event::TxnMarkerWritten {
                tp,
                producer_id,
                producer_epoch,
                result,
                offset,
                ..
            } = &r.event
            else {
                continue;
            };
            if !result.eq_ignore_ascii_case("commit") {
                continue;
            }
            let Some(tid) = tid_of.get(producer_id) else {
                continue;
            };
            let Some(init) = inits
                .get(&(*tid, *producer_id))
                .and_then(|l| fencing(l, *producer_epoch, r.time_ms))
            else {
                continue;
            };
            anomalies.push((
                format!(
                    "a COMMIT marker of producer id {} epoch {} was written at {tp} offset {offset} \
                     ({} at t={} ms) after {}",
                    producer_id.0,
                    producer_epoch.0,
                    r.node,
                    r.time_ms,
                    init_text(tid, *producer_id, init)
                ),
                json!({ "kind": "commit-marker", "tp": tp.to_string(), "offset": offset.0,
                        "producer_id": producer_id.0, "producer_epoch": producer_epoch.0,
                        "time_ms": r.time_ms, "init_ms": init.0, "init_epoch": init.1 .0 }),
            ));
        }
        for t in &txns {
            let (Some(pid), Some(epoch)) = (t.producer_id, t.producer_epoch) else {
                continue;
            };
            let Some(list) = inits.get(&(t.transactional_id, pid)) else {
                continue;
            };
            // Appends of its sends after the fencing InitProducerId.
            for (tp, value, offset) in &t.sends {
                let Some(o) = offset else { continue };
                let appended = appends
                    .get(&(*tp, pid))
                    .and_then(|l| l.iter().find(|(b, l, _)| b <= o && o <= l));
                let Some((_, _, r)) = appended else { continue };
                if let Some(init) = fencing_txn(list, t, epoch, r.time_ms) {
                    anomalies.push((
                        format!(
                            "value {value} of {} was appended at {tp} offset {o} ({} at t={} ms) \
                             after {}",
                            t.describe(),
                            r.node,
                            r.time_ms,
                            init_text(t.transactional_id, pid, init)
                        ),
                        json!({ "kind": "append", "txn": t.to_json(), "tp": tp.to_string(),
                                "offset": o.0, "value": value, "time_ms": r.time_ms,
                                "init_ms": init.0, "init_epoch": init.1 .0 }),
                    ));
                }
            }
            // A commit the coordinator decided only after the fencing InitProducerId.
            if t.outcome != OpType::Ok {
                continue;
            }
            let Some(init) = fencing_txn(list, t, epoch, t.end_ms()) else {
                continue;
            };
            let me = t.process().to_string();
            let decided_before = input.events.iter().any(|r| {
                matches!(&r.event, Event::TxnStateChanged { transactional_id, producer_id, producer_epoch, to, client, .. }
                    if transactional_id == t.transactional_id && *producer_id == pid
                        && to == "PrepareCommit"
                        && match client {
                            Some(c) => *c == me,
                            None => *producer_epoch >= epoch && *producer_epoch < init.1,
                        }
                        && r.time_ms >= t.invoke.time_ms
                        && r.time_ms < init.0)
            });
            if decided_before {
                continue;
            }
            anomalies.push((
                format!(
                    "{} was acknowledged as committed, although {} and the coordinator had not \
                     prepared its commit before that",
                    t.describe(),
                    init_text(t.transactional_id, pid, init)
                ),
                json!({ "kind": "txn-ok", "txn": t.to_json(), "init_ms": init.0,
                        "init_epoch": init.1 .0 }),
            ));
        }
        violation(self.name(), None, anomalies, serde_json::Map::new())
    }
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use super::super::txn::testkit::{at, marker, txn_state, txn_state_for};
    use super::*;
    use ksim_model::types::{BrokerId, LeaderEpoch, Sequence};

    fn appended(time_ms: u64, offset: i64) -> EventRecord {
        at(
            time_ms,
            Event::ProduceAppended {
                tp: tp(0),
                broker: BrokerId(0),
                leader_epoch: LeaderEpoch(0),
                base_offset: Offset(offset),
                last_offset: Offset(offset),
                producer_id: ProducerId(7),
                base_sequence: Sequence(0),
                isr: vec![BrokerId(0)],
            },
        )
    }

    /// producer-0 (epoch 0) runs a transaction from t=0 to t=10 ms; a new instance's
    /// InitProducerId gives epoch 1 at `init_ms`.
    fn zombie(init_ms: u64) -> (Vec<crate::history::HistoryEntry>, Vec<EventRecord>) {
        let mut h = HistoryBuilder::default();
        h.txn(0, OpType::Ok, (7, 0), vec![tsend(&tp(0), 1, 0)]);
        let events = vec![
            at(
                init_ms,
                txn_state("tx-0", (7, 1), "Ongoing", "Empty", "init-producer-id"),
            ),
            appended(4, 0),
            at(9, marker(&tp(0), (7, 0), true, 1)),
        ];
        (h.entries, events)
    }

    #[test]
    fn a_zombie_that_appends_and_commits_after_a_new_epoch_is_not_fenced() {
        let (h, events) = zombie(2);
        let v = check_history_events(&ZombieFencing, &h, &events);
        assert_eq!(v.len(), 1, "{v:?}");
        assert_eq!(v[0].details["count"], 3);
        assert_eq!(
            v[0].message,
            "a COMMIT marker of producer id 7 epoch 0 was written at events-0 offset 1 \
             (broker-0 at t=9 ms) after InitProducerId gave tx-0 producer id 7 epoch 1 at t=2 ms \
             (broker-0) (2 more like this in details)"
        );
        assert_eq!(v[0].details["anomalies"][1]["kind"], "append");
        assert_eq!(v[0].details["anomalies"][2]["kind"], "txn-ok");
    }

    /// `sim.txn.producer-fencing = false`: the replacement producer-1's InitProducerId leaves
    /// the epoch at 0, yet producer-0's transaction, begun under its own InitProducerId at
    /// t=1, is a zombie's once producer-1's completed at `init_ms`.
    fn unbumped_zombie(init_ms: u64) -> (Vec<crate::history::HistoryEntry>, Vec<EventRecord>) {
        let mut h = HistoryBuilder::default();
        h.txn(0, OpType::Ok, (7, 0), vec![tsend(&tp(0), 1, 0)]);
        let init = |t, c| {
            at(
                t,
                txn_state_for("tx-0", (7, 0), "Empty", "Empty", "init-producer-id", c),
            )
        };
        let mut events = vec![init(0, "producer-0"), appended(4, 0)];
        events.push(init(init_ms, "producer-1"));
        events.sort_by_key(|r| r.time_ms);
        (h.entries, events)
    }

    #[test]
    fn a_zombie_of_the_same_epoch_is_told_apart_by_its_client() {
        // producer-1 initialised at t=2: producer-0's append at t=4 and its commit at t=10
        // are a zombie's.
        let (h, events) = unbumped_zombie(2);
        let v = check_history_events(&ZombieFencing, &h, &events);
        assert_eq!(v.len(), 1, "{v:?}");
        assert_eq!(v[0].details["count"], 2);
        assert!(
            v[0].message
                .starts_with("value 1 of producer-0's transaction"),
            "{}",
            v[0].message
        );
        assert!(v[0]
            .message
            .contains("InitProducerId gave tx-0 producer id 7 epoch 0 at t=2 ms"));
        assert_eq!(v[0].details["anomalies"][1]["kind"], "txn-ok");
        // producer-1 initialised only after the transaction: nothing to see.
        let (h, events) = unbumped_zombie(20);
        assert!(check_history_events(&ZombieFencing, &h, &events).is_empty());
        // producer-0's own EndTxn was prepared (t=6) before producer-1's InitProducerId (t=8),
        // and producer-0's append (t=4) came before it too.
        let (h, mut events) = unbumped_zombie(8);
        events.push(at(
            6,
            txn_state_for(
                "tx-0",
                (7, 0),
                "Ongoing",
                "PrepareCommit",
                "end-txn",
                "producer-0",
            ),
        ));
        events.sort_by_key(|r| r.time_ms);
        assert!(check_history_events(&ZombieFencing, &h, &events).is_empty());
        // A PrepareCommit that answered another client's EndTxn does not excuse producer-0's
        // commit.
        let (h, mut events) = unbumped_zombie(5);
        events.push(at(
            4,
            txn_state_for(
                "tx-0",
                (7, 0),
                "Ongoing",
                "PrepareCommit",
                "end-txn",
                "producer-1",
            ),
        ));
        events.sort_by_key(|r| r.time_ms);
        let v = check_history_events(&ZombieFencing, &h, &events);
        assert_eq!(v.len(), 1, "{v:?}");
        assert_eq!(v[0].details["count"], 1);
        assert_eq!(v[0].details["anomalies"][0]["kind"], "txn-ok");
    }

    #[test]
    fn everything_before_the_new_epoch_or_prepared_before_it_is_fenced_correctly() {
        // The InitProducerId completes after the whole transaction.
        let (h, events) = zombie(20);
        assert!(check_history_events(&ZombieFencing, &h, &events).is_empty());
        // The commit was prepared at t=6, the InitProducerId at t=8 waited for it; only the
        // answer reached the client late (t=10). No append or marker after t=8 either.
        let mut events = vec![
            at(
                6,
                txn_state("tx-0", (7, 0), "Ongoing", "PrepareCommit", "end-txn"),
            ),
            at(7, marker(&tp(0), (7, 0), true, 1)),
            at(
                8,
                txn_state(
                    "tx-0",
                    (7, 1),
                    "CompleteCommit",
                    "Empty",
                    "init-producer-id",
                ),
            ),
            appended(4, 0),
        ];
        assert!(check_history_events(&ZombieFencing, &h, &events).is_empty());
        // Another transactional id's InitProducerId fences nothing here.
        events[2] = at(
            2,
            txn_state("tx-9", (8, 1), "Empty", "Empty", "init-producer-id"),
        );
        assert!(check_history_events(&ZombieFencing, &h, &events).is_empty());
    }
}
