//! `committed-offset-regression`: a consumer read back a group's committed offset that was
//! older than an acknowledged commit (or read back none at all after one).
//!
//! **What it protects.** A consumer that commits its position and then crashes, or hands its
//! partitions over, relies on one promise: once the group coordinator has acknowledged the
//! commit, the next reader of the group's committed offset (a restarted consumer's OffsetFetch)
//! gets that offset, or a later one, never an older one. Kafka keeps the promise by storing the
//! commit as a record of the group's `__consumer_offsets` partition, appended with `acks=all`
//! and acknowledged only once the high watermark passes it (GroupMetadataManager.scala's
//! `storeOffsets`, coordinator-common's `CoordinatorRuntime`: a write is answered when
//! committed), and by having every new coordinator replay that partition's log when it takes
//! over (GROUPS-AND-TRANSACTIONS.md A1, "Offsets"). A coordinator failover must therefore never
//! forget an acknowledged commit. KAFKA-SEMANTICS.md states the check as "a group's committed
//! offset for a partition never moves backwards, except by an explicit seek/reset the history
//! records"; here the explicit moves are the commits themselves (an application may commit a
//! lower offset on purpose, and then that is the latest commit), and what is judged is what a
//! reader observes. Kafka's system tests assert the same from the client side
//! (`verifiable_consumer.py`: after a clean bounce the consumer resumes at its last commit).
//!
//! **Definition.** Per group `g` and partition `p`, the history's `commit` operations of `g`
//! that name `p` are writes of a register, with value the committed offset; each `ok`
//! `offset-fetch` of `g` that asked for `p` is a read, returning an offset or none. Order is the
//! history's (log) order. A commit *acknowledged before* a read completed `ok` before the read
//! was invoked (the fetch was first sent). A commit is *overwritten before* the read when it
//! completed (`ok`) before some commit acknowledged before the read was invoked: the later one
//! took effect after it. The read must return
//! * the value of a commit that was invoked before the read completed, did not `fail`, and is
//!   not overwritten before the read: the latest commits acknowledged before the read (several,
//!   when they overlapped in time and their order at the coordinator is unknown), or a commit
//!   concurrent with the read or with them; or
//! * no committed offset, only if no commit was acknowledged before the read.
//!
//! These are the conditions a linearizable register imposes on a single read (Jepsen's
//! Knossos model `register`, checked read by read rather than as a whole history).
//!
//! A processor's committed transaction (a `txn` operation with a `group` and `offsets`,
//! `sendOffsetsToTransaction`) is a commit of those offsets like an `ok` `commit` operation;
//! an aborted one (`fail`) stored nothing.
//!
//! **What is allowed.** A commit that completed `info`, or that the run never completed (its
//! process crashed), may take effect at any time after its invoke, even after later commits
//! (a request held in a partitioned link can reach the coordinator late): it is never
//! overwritten, and a read may return it. A `fail`ed commit was certainly not stored and never
//! explains a read. Reads and commits of other groups, and offsets of other partitions, are
//! judged on their own. Only reads are judged: a run in which no consumer read committed
//! offsets back (no restart, no late start) passes vacuously, and the check says so in a note.

use super::lesson::{Lesson, Prevention};
use super::{violation, CheckInput, Checker, Violation};
use crate::history::{pairs, HistoryEntry, OpPair};
use ksim_model::event::{OpType, OpValue};
use ksim_model::types::{Offset, TopicPartition};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};

/// See the module documentation.
pub struct CommittedOffsetRegression;

/// One commit of one partition.
#[derive(Debug, Clone, Copy)]
struct Write<'a> {
    invoke: &'a HistoryEntry,
    completion: Option<&'a HistoryEntry>,
    outcome: OpType,
    offset: Offset,
}

impl Write<'_> {
    /// The index after which the commit certainly took effect, if it did: its `ok`.
    fn acked_at(&self) -> Option<u64> {
        (self.outcome == OpType::Ok).then(|| self.completion.map(|c| c.index))?
    }

    /// `consumer-0's commit of offset 120`.
    fn describe(&self) -> String {
        format!("{}'s commit of offset {}", self.invoke.process, self.offset)
    }

    /// `acknowledged at t=5230 ms by broker-1`, for an acknowledged commit.
    fn acknowledged(&self) -> String {
        let Some(c) = self.completion else {
            return "never acknowledged".into();
        };
        let by = match &c.op.value {
            OpValue::Commit {
                coordinator: Some(b),
                ..
            } => format!(" by {b}", b = ksim_model::types::NodeId::Broker(*b)),
            _ => String::new(),
        };
        format!("acknowledged at t={} ms{by}", c.time_ms)
    }

    fn to_json(self) -> Value {
        json!({
            "process": self.invoke.process.to_string(),
            "offset": self.offset.0,
            "outcome": match self.outcome {
                OpType::Ok => "ok",
                OpType::Fail => "fail",
                _ => "info",
            },
            "invoked": { "index": self.invoke.index, "time_ms": self.invoke.time_ms },
            "completed": self.completion.map(|c| json!({ "index": c.index, "time_ms": c.time_ms })),
        })
    }
}

/// One read of one partition's committed offset.
#[derive(Debug, Clone, Copy)]
struct Read<'a> {
    invoke: &'a HistoryEntry,
    completion: &'a HistoryEntry,
    committed: Option<Offset>,
}

/// Per (group, partition): the commits and the reads, in invoke order.
type Registers<'a> = BTreeMap<(String, TopicPartition), (Vec<Write<'a>>, Vec<Read<'a>>)>;

fn registers<'a>(all: &[OpPair<'a>]) -> Registers<'a> {
    let mut out: Registers<'a> = BTreeMap::new();
    for pair in all {
        // A transaction's group and offsets are in its completion (its invoke may not have
        // them yet).
        let value = match (&pair.invoke.op.value, pair.completion) {
            (OpValue::Txn { .. }, Some(c)) => &c.op.value,
            (v, _) => v,
        };
        match value {
            OpValue::Commit { group, offsets, .. } => {
                for o in offsets {
                    out.entry((group.clone(), o.tp.clone()))
                        .or_default()
                        .0
                        .push(Write {
                            invoke: pair.invoke,
                            completion: pair.completion,
                            outcome: pair.outcome(),
                            offset: o.offset,
                        });
                }
            }
            // A processor's transaction commits its input offsets with its output
            // (`sendOffsetsToTransaction`, KIP-447): a write acknowledged when the transaction
            // commits (`ok`), never stored when it aborts (`fail`), maybe stored when `info`.
            OpValue::Txn {
                group: Some(group),
                offsets,
                ..
            } => {
                for o in offsets {
                    out.entry((group.clone(), o.tp.clone()))
                        .or_default()
                        .0
                        .push(Write {
                            invoke: pair.invoke,
                            completion: pair.completion,
                            outcome: pair.outcome(),
                            offset: o.offset,
                        });
                }
            }
            OpValue::OffsetFetch { group, .. } => {
                let Some(c) = pair.completion.filter(|c| c.op.op_type == OpType::Ok) else {
                    continue;
                };
                let OpValue::OffsetFetch { offsets, .. } = &c.op.value else {
                    continue;
                };
                for o in offsets {
                    out.entry((group.clone(), o.tp.clone()))
                        .or_default()
                        .1
                        .push(Read {
                            invoke: pair.invoke,
                            completion: c,
                            committed: o.committed,
                        });
                }
            }
            _ => {}
        }
    }
    out
}

/// The anomaly of `read`, if it returned what the commits before it do not allow.
fn judge(
    group: &str,
    tp: &TopicPartition,
    writes: &[Write<'_>],
    read: &Read<'_>,
) -> Option<(String, Value)> {
    let before = read.invoke.index;
    let acked_before: Vec<&Write<'_>> = writes
        .iter()
        .filter(|w| w.acked_at().is_some_and(|a| a < before))
        .collect();
    // The latest invoke among them: a commit that completed before it is overwritten.
    let latest_invoke = acked_before.iter().map(|w| w.invoke.index).max();
    let allowed: Vec<&Write<'_>> = writes
        .iter()
        .filter(|w| w.outcome != OpType::Fail && w.invoke.index < read.completion.index)
        .filter(|w| {
            let completed_ok = w.acked_at();
            !matches!((completed_ok, latest_invoke), (Some(done), Some(latest)) if done < latest)
        })
        .collect();
    let ok = match read.committed {
        None => acked_before.is_empty(),
        Some(v) => allowed.iter().any(|w| w.offset == v),
    };
    if ok {
        return None;
    }
    // The acknowledged commit the read should at least have seen: the latest acknowledged one.
    let latest = acked_before.iter().max_by_key(|w| w.acked_at()).copied();
    let by = match &read.completion.op.value {
        OpValue::OffsetFetch {
            coordinator: Some(b),
            ..
        } => format!(", answered by broker-{b}"),
        _ => String::new(),
    };
    let got = match read.committed {
        Some(v) => format!("committed offset {v}"),
        None => "no committed offset".to_string(),
    };
    let sentence = match latest {
        Some(w) => format!(
            "{} read back {got} for group {group} partition {tp} (offset fetch sent at t={} ms{by}), \
             but {} was {}, before that fetch was sent",
            read.invoke.process,
            read.invoke.time_ms,
            w.describe(),
            w.acknowledged()
        ),
        None => format!(
            "{} read back {got} for group {group} partition {tp} (offset fetch sent at t={} ms{by}), \
             a value no commit of the group could have stored",
            read.invoke.process, read.invoke.time_ms
        ),
    };
    let allowed_values: BTreeSet<i64> = allowed.iter().map(|w| w.offset.0).collect();
    let data = json!({
        "group": group,
        "tp": tp.to_string(),
        "read": {
            "process": read.invoke.process.to_string(),
            "committed": read.committed.map(|o| o.0),
            "invoked": { "index": read.invoke.index, "time_ms": read.invoke.time_ms },
            "completed": { "index": read.completion.index, "time_ms": read.completion.time_ms },
        },
        "latest_acknowledged": latest.map(|w| w.to_json()),
        "allowed": allowed_values,
    });
    Some((sentence, data))
}

impl Checker for CommittedOffsetRegression {
    fn name(&self) -> &'static str {
        "committed-offset-regression"
    }

    fn statement(&self) -> &'static str {
        "a group's committed offset read back is never older than a commit acknowledged before the read"
    }

    fn lesson(&self) -> Lesson {
        Lesson {
            intro: "A consumer group's committed offset went back: the group coordinator had \
                    acknowledged an offset commit, and a later read of the group's committed \
                    offsets did not return it, so the group resumed behind what it had already \
                    processed (or, finding no offset, wherever `auto.offset.reset` put it). The \
                    acknowledged commit was missing from the `__consumer_offsets` log the \
                    answering coordinator had loaded: lost like an acknowledged record, or \
                    answered before it was committed.",
            prevention: Prevention::ProtocolInvariant,
        }
    }

    fn skip_reason(&self, input: &CheckInput) -> Option<String> {
        let commits = input
            .history
            .iter()
            .any(|e| matches!(e.op.value, OpValue::Commit { .. }));
        (!commits).then(|| {
            "no consumer committed offsets (none has a `group.id` and a commit to make), so no \
             committed offset could go back"
                .to_string()
        })
    }

    fn notes(&self, input: &CheckInput) -> Vec<String> {
        let all = pairs(input.history);
        let regs = registers(&all);
        let reads: usize = regs.values().map(|(_, r)| r.len()).sum();
        if reads == 0 {
            return vec![
                "no consumer read committed offsets back (an offset fetch at a start or restart \
                 after commits), so nothing was compared"
                    .to_string(),
            ];
        }
        let judged = regs
            .values()
            .flat_map(|(w, r)| r.iter().map(move |r| (w, r)))
            .filter(|(w, r)| w.iter().any(|w| w.invoke.index < r.completion.index))
            .count();
        vec![format!(
            "{reads} committed offset{} read back by offset fetches, {judged} of them after \
             commits of their partition",
            if reads == 1 { "" } else { "s" }
        )]
    }

    fn check(&self, input: &CheckInput) -> Vec<Violation> {
        let all = pairs(input.history);
        let mut anomalies = Vec::new();
        for ((group, tp), (writes, reads)) in registers(&all) {
            for read in &reads {
                anomalies.extend(judge(&group, &tp, &writes, read));
            }
        }
        violation(self.name(), None, anomalies, serde_json::Map::new())
    }
}

#[cfg(test)]
mod tests {
    use super::super::testkit::tp;
    use super::*;
    use ksim_model::event::{ClientOp, CommitOffset, FetchedOffset};
    use ksim_model::types::{BrokerId, NodeId};

    /// A history written op by op; time is 10 ms per entry.
    #[derive(Default)]
    struct H {
        entries: Vec<HistoryEntry>,
        next_op_id: u64,
    }

    impl H {
        fn push(&mut self, consumer: u32, op_type: OpType, op_id: u64, value: OpValue) {
            let index = self.entries.len() as u64;
            self.entries.push(HistoryEntry {
                index,
                time_ms: index * 10,
                process: NodeId::Consumer(consumer),
                op: ClientOp {
                    op_type,
                    op_id,
                    value,
                    error: None,
                },
            });
        }

        fn commit_value(offset: i64, coordinator: Option<i32>) -> OpValue {
            OpValue::Commit {
                group: "g".into(),
                mode: "sync".into(),
                offsets: vec![CommitOffset {
                    tp: tp(0),
                    offset: Offset(offset),
                }],
                coordinator: coordinator.map(BrokerId),
                generation: None,
                member_id: None,
            }
        }

        /// Invokes a commit of `offset` for events-0; returns its op id.
        fn begin_commit(&mut self, consumer: u32, offset: i64) -> u64 {
            self.next_op_id += 1;
            let id = self.next_op_id;
            self.push(
                consumer,
                OpType::Invoke,
                id,
                Self::commit_value(offset, None),
            );
            id
        }

        fn end_commit(&mut self, consumer: u32, id: u64, outcome: OpType, offset: i64) {
            let coordinator = (outcome == OpType::Ok).then_some(1);
            self.push(
                consumer,
                outcome,
                id,
                Self::commit_value(offset, coordinator),
            );
        }

        fn commit(&mut self, consumer: u32, outcome: OpType, offset: i64) -> &mut Self {
            let id = self.begin_commit(consumer, offset);
            self.end_commit(consumer, id, outcome, offset);
            self
        }

        /// A processor's transaction committing `offset` for events-0 with its output.
        fn txn(&mut self, consumer: u32, outcome: OpType, offset: i64) -> &mut Self {
            self.next_op_id += 1;
            let id = self.next_op_id;
            let value = |group: Option<&str>| OpValue::Txn {
                transactional_id: "etl-0".into(),
                producer_id: None,
                producer_epoch: None,
                mops: vec![],
                group: group.map(str::to_string),
                offsets: vec![CommitOffset {
                    tp: tp(0),
                    offset: Offset(offset),
                }],
            };
            self.push(consumer, OpType::Invoke, id, value(None));
            self.push(consumer, outcome, id, value(Some("g")));
            self
        }

        fn fetch_value(committed: Option<i64>, coordinator: Option<i32>) -> OpValue {
            OpValue::OffsetFetch {
                group: "g".into(),
                offsets: vec![FetchedOffset {
                    tp: tp(0),
                    committed: committed.map(Offset),
                }],
                coordinator: coordinator.map(BrokerId),
            }
        }

        fn fetch(&mut self, consumer: u32, committed: Option<i64>) -> &mut Self {
            self.next_op_id += 1;
            let id = self.next_op_id;
            self.push(consumer, OpType::Invoke, id, Self::fetch_value(None, None));
            self.push(
                consumer,
                OpType::Ok,
                id,
                Self::fetch_value(committed, Some(2)),
            );
            self
        }
    }

    fn check(h: &H) -> Vec<Violation> {
        super::super::testkit::check_history(&CommittedOffsetRegression, &h.entries)
    }

    #[test]
    fn reading_back_an_older_offset_than_an_acknowledged_commit_is_a_regression() {
        let mut h = H::default();
        h.commit(0, OpType::Ok, 80).commit(0, OpType::Ok, 120);
        // The consumer restarts; the new coordinator lost the second commit.
        h.fetch(0, Some(80));
        let v = check(&h);
        assert_eq!(v.len(), 1, "{v:?}");
        assert_eq!(v[0].check, "committed-offset-regression");
        assert_eq!(
            v[0].message,
            "consumer-0 read back committed offset 80 for group g partition events-0 (offset fetch \
             sent at t=40 ms, answered by broker-2), but consumer-0's commit of offset 120 was \
             acknowledged at t=30 ms by broker-1, before that fetch was sent"
        );
        assert_eq!(v[0].details["anomalies"][0]["allowed"], json!([120]));
        assert_eq!(
            v[0].details["anomalies"][0]["latest_acknowledged"]["offset"],
            120
        );
    }

    #[test]
    fn reading_back_nothing_after_an_acknowledged_commit_is_a_regression() {
        let mut h = H::default();
        h.commit(0, OpType::Ok, 5).fetch(1, None);
        let v = check(&h);
        assert_eq!(v.len(), 1, "{v:?}");
        assert!(
            v[0].message.contains("read back no committed offset"),
            "{}",
            v[0].message
        );
        // A value nobody committed is wrong too, even before any acknowledgement.
        let mut h = H::default();
        h.fetch(0, Some(7));
        let v = check(&h);
        assert!(
            v[0].message
                .contains("a value no commit of the group could have stored"),
            "{v:?}"
        );
    }

    /// A committed transaction's offsets (`sendOffsetsToTransaction`) are a commit; an
    /// aborted one's are not.
    #[test]
    fn transactional_offset_commits_are_commits_and_aborted_ones_are_not() {
        let mut h = H::default();
        h.commit(0, OpType::Ok, 10)
            .txn(0, OpType::Ok, 20)
            .fetch(1, Some(20));
        assert!(check(&h).is_empty(), "{:?}", check(&h));
        let mut h = H::default();
        h.txn(0, OpType::Ok, 20)
            .txn(0, OpType::Fail, 30)
            .fetch(1, Some(30));
        let v = check(&h);
        assert_eq!(v.len(), 1, "{v:?}");
        assert!(
            v[0].message.contains("read back committed offset 30"),
            "{v:?}"
        );
    }

    #[test]
    fn the_latest_acknowledged_commit_or_a_concurrent_one_may_be_read() {
        let mut h = H::default();
        // Nothing committed yet: none is right.
        h.fetch(0, None);
        h.commit(0, OpType::Ok, 10);
        h.fetch(0, Some(10));
        // Two commits overlap: either order at the coordinator is possible.
        let a = h.begin_commit(0, 20);
        let b = h.begin_commit(1, 30);
        h.end_commit(1, b, OpType::Ok, 30);
        h.end_commit(0, a, OpType::Ok, 20);
        h.fetch(2, Some(20)).fetch(2, Some(30));
        // A commit in flight while the fetch runs may or may not be seen.
        let c = h.begin_commit(0, 40);
        h.fetch(2, Some(40)).fetch(2, Some(30));
        h.end_commit(0, c, OpType::Ok, 40);
        h.fetch(2, Some(40));
        assert!(check(&h).is_empty(), "{:?}", check(&h));
    }

    #[test]
    fn an_unknown_commit_may_land_late_and_a_failed_one_never_lands() {
        let mut h = H::default();
        h.commit(0, OpType::Ok, 10);
        // Timed out (info): it may reach the coordinator after later commits.
        h.commit(0, OpType::Info, 15);
        h.commit(0, OpType::Ok, 20);
        h.fetch(1, Some(15));
        // Never completed (its process crashed): the same.
        h.begin_commit(0, 25);
        h.fetch(1, Some(25));
        assert!(check(&h).is_empty(), "{:?}", check(&h));
        // A failed commit was not stored.
        let mut h = H::default();
        h.commit(0, OpType::Ok, 10)
            .commit(0, OpType::Fail, 15)
            .fetch(1, Some(15));
        assert_eq!(check(&h).len(), 1);
    }

    #[test]
    fn groups_and_partitions_are_separate_registers() {
        let mut h = H::default();
        h.commit(0, OpType::Ok, 10);
        h.fetch(0, Some(10));
        if let OpValue::OffsetFetch { group, .. } = &mut h.entries[2].op.value {
            *group = "other".into();
        }
        if let OpValue::OffsetFetch { group, offsets, .. } = &mut h.entries[3].op.value {
            *group = "other".into();
            offsets[0].committed = None;
        }
        assert!(check(&h).is_empty(), "{:?}", check(&h));
    }
}
