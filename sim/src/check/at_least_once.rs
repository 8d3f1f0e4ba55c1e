//! `at-least-once`: every acknowledged record below a group's final committed offset was
//! processed by a member of the group.
//!
//! **Rule.** For each consumer group in subscribe mode and each partition the group committed
//! (an `ok` `commit` operation), take the group's *final committed offset* `c`: the offset of
//! the last acknowledged commit (in completion order), or, when other commits may have landed
//! after it (they overlapped it, or timed out, or never completed), the lowest of those
//! (a register's possible final values, as `committed-offset-regression` reads them). Every
//! record acknowledged to a producer (`send` `ok`) in that partition at an offset below `c` must
//! have been processed: some `ok` `process` operation of a member of the group lists it. A
//! record the group committed past but never processed is lost to the application: the next
//! owner of the partition resumes at the committed offset, after it.
//!
//! **Source.** The at-least-once pattern: commit only what was processed (Kafka's consumer
//! documentation, "Manual Offset Control"; ConsumerCoordinator's commit-on-revoke in
//! `onPartitionsRevoked`); GROUPS-AND-TRANSACTIONS.md A4 story 4 ("commitSync(positions)
//! before processing, then a crash → those records are lost") and invariant I3. The loss
//! comes from `commit = "before-processing"` (at-most-once) or from an application whose
//! commit passes records it has not finished; auto-commit commits, inside `poll()`, only what
//! earlier polls returned (ConsumerCoordinator `maybeAutoCommitOffsetsAsync`), so with
//! processing finished before the next poll it never passes an unprocessed record (Jepsen
//! retracted its auto-commit loss claim: Bufstream report, update of 2024-11-13).
//!
//! **What is allowed.** Processing a record more than once (a crash after processing and
//! before the commit, a rebalance, a zombie) is what at-least-once allows: counted in a note,
//! never a violation (`duplicate` is about values written twice, not processed twice). A
//! `process` operation left open (the member crashed while processing) processed nothing.
//! Records at or above the final committed offset are not judged (the group has not claimed
//! them; `unseen` judges whether they were read). Records removed by retention or compaction
//! (see [`super::Removed`]), records of deleted topics, and records below the first position
//! any member of the group took in the partition by `auto.offset.reset` (the group was
//! configured not to read them) are not judged, and a note says how many.

use super::lesson::{Lesson, Prevention};
use super::{acked_sends, violation, AckedSend, CheckInput, Checker, Violation};
use crate::history::{pairs, HistoryEntry, OpPair};
use ksim_model::event::{Event, OpType, OpValue};
use ksim_model::types::{NodeId, Offset, TopicPartition};
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};

/// See the module documentation.
pub struct AtLeastOnce;

/// How many unprocessed records a message names.
const NAMED_IN_MESSAGE: usize = 3;

/// One commit of one partition by a group.
#[derive(Debug, Clone, Copy)]
struct Write<'a> {
    invoke: &'a HistoryEntry,
    completion: Option<&'a HistoryEntry>,
    outcome: OpType,
    offset: Offset,
}

impl Write<'_> {
    /// The member id the commit was sent with (subscribe mode only).
    fn member_id(&self) -> Option<&str> {
        match &self.invoke.op.value {
            OpValue::Commit { member_id, .. } => member_id.as_deref(),
            _ => None,
        }
    }

    /// The generation the commit was sent with (subscribe mode only).
    fn generation(&self) -> Option<i32> {
        match &self.invoke.op.value {
            OpValue::Commit { generation, .. } => *generation,
            _ => None,
        }
    }

    fn acked_at(&self) -> Option<u64> {
        (self.outcome == OpType::Ok).then(|| self.completion.map(|c| c.index))?
    }

    /// `consumer-1 (member m1, generation 3)'s sync commit of offset 120, acknowledged at
    /// t=5230 ms`.
    fn describe(&self) -> String {
        let (who, mode) = match &self.invoke.op.value {
            OpValue::Commit {
                mode,
                member_id: Some(m),
                generation: Some(g),
                ..
            } => (
                format!("{} (member {m}, generation {g})", self.invoke.process),
                mode.as_str(),
            ),
            OpValue::Commit { mode, .. } => (self.invoke.process.to_string(), mode.as_str()),
            _ => (self.invoke.process.to_string(), "?"),
        };
        let when = match (self.outcome, self.completion) {
            (OpType::Ok, Some(c)) => format!("acknowledged at t={} ms", c.time_ms),
            _ => format!("sent at t={} ms", self.invoke.time_ms),
        };
        format!("{who}'s {mode} commit of offset {}, {when}", self.offset)
    }
}

/// The groups judged: with a scenario, those of its `[[consumers]]` entries with a `group`;
/// without one (unit tests), those named by a `process` operation or by a commit with a
/// generation.
fn subscribe_groups(input: &CheckInput) -> BTreeSet<String> {
    if let Some(s) = input.scenario {
        return s.consumers.iter().filter_map(|c| c.group.clone()).collect();
    }
    input
        .history
        .iter()
        .filter_map(|e| match &e.op.value {
            OpValue::Process { group: Some(g), .. } => Some(g.clone()),
            OpValue::Commit {
                group,
                generation: Some(_),
                ..
            } => Some(group.clone()),
            _ => None,
        })
        .collect()
}

/// Per (group, partition), the group's commits in invoke order.
fn commits<'a>(
    all: &[OpPair<'a>],
    groups: &BTreeSet<String>,
) -> BTreeMap<(String, TopicPartition), Vec<Write<'a>>> {
    let mut out: BTreeMap<(String, TopicPartition), Vec<Write<'a>>> = BTreeMap::new();
    for pair in all {
        if let OpValue::Commit { group, offsets, .. } = &pair.invoke.op.value {
            if !groups.contains(group) {
                continue;
            }
            for o in offsets {
                out.entry((group.clone(), o.tp.clone()))
                    .or_default()
                    .push(Write {
                        invoke: pair.invoke,
                        completion: pair.completion,
                        outcome: pair.outcome(),
                        offset: o.offset,
                    });
            }
        }
    }
    out
}

/// The final committed offset (see the module documentation), `None` without an
/// acknowledged commit.
fn final_committed<'a>(writes: &[Write<'a>]) -> Option<Write<'a>> {
    let last = writes
        .iter()
        .filter(|w| w.acked_at().is_some())
        .max_by_key(|w| w.acked_at())?;
    writes
        .iter()
        .filter(|w| w.outcome != OpType::Fail)
        .filter(|w| w.acked_at().is_none_or(|a| a >= last.invoke.index))
        .min_by_key(|w| w.offset)
        .copied()
}

/// How many distinct causes a note names.
const CAUSES_NAMED: usize = 4;

/// What in the run's events can make `group`'s members process records twice, in order of
/// first occurrence, each with how often it happened: a member killed (`kill`,
/// `client-kill`, `power-fail`), closed (`close`, `client-leave`, `shutdown`), leaving because
/// `max.poll.interval.ms` expired (its heartbeat thread's LeaveGroup), removed by the
/// coordinator (`group-member-removed`, with its reason), or losing its partitions
/// (`partitions-lost`, with the error). `members` are the group's client processes.
fn reprocessing_causes(
    input: &CheckInput,
    group: &str,
    members: &BTreeMap<String, BTreeSet<NodeId>>,
) -> Vec<String> {
    let nodes = members.get(group);
    let names: BTreeSet<String> = nodes.into_iter().flatten().map(|n| n.to_string()).collect();
    // Member ids of the group, by the process that held them.
    let mut holder: BTreeMap<&str, NodeId> = BTreeMap::new();
    for r in input.events {
        if let Event::PartitionsAssigned {
            group: g,
            member_id,
            ..
        } = &r.event
        {
            if g == group {
                holder.insert(member_id, r.node);
            }
        }
    }
    let who = |member_id: &str| {
        holder
            .get(member_id)
            .map_or_else(|| format!("member {member_id}"), |n| n.to_string())
    };
    let mut order: Vec<String> = Vec::new();
    let mut count: BTreeMap<String, usize> = BTreeMap::new();
    let mut note = |phrase: String| {
        if !count.contains_key(&phrase) {
            order.push(phrase.clone());
        }
        *count.entry(phrase).or_default() += 1;
    };
    for r in input.events {
        match &r.event {
            Event::Fault { action, nodes, .. } => {
                let verb = match action.as_str() {
                    "kill" | "client-kill" | "power-fail" | "disk-loss" => "was killed",
                    "close" | "client-leave" | "shutdown" => "was closed",
                    _ => continue,
                };
                for n in nodes.iter().filter(|n| names.contains(*n)) {
                    note(format!("{n} {verb} (`{action}`)"));
                }
            }
            Event::ConsumerError {
                exception, message, ..
            } if exception == "LeaveGroup"
                && message.contains("poll timeout")
                && nodes.is_some_and(|ns| ns.contains(&r.node)) =>
            {
                note(format!(
                    "{}'s heartbeat thread left the group because poll() was not called within \
                     max.poll.interval.ms",
                    r.node
                ));
            }
            Event::GroupMemberRemoved {
                group: g,
                member_id,
                reason,
                ..
            } if g == group => {
                note(format!(
                    "the coordinator removed {} ({reason})",
                    who(member_id)
                ));
            }
            Event::PartitionsLost {
                group: g, reason, ..
            } if g == group => {
                note(format!("{} lost its partitions ({reason})", r.node));
            }
            _ => {}
        }
    }
    let mut out: Vec<String> = order
        .iter()
        .take(CAUSES_NAMED)
        .map(|p| match count[p] {
            1 => p.clone(),
            n => format!("{p} {n} times"),
        })
        .collect();
    if order.len() > CAUSES_NAMED {
        out.push(format!("{} more", order.len() - CAUSES_NAMED));
    }
    out
}

/// What the check found, for `check` and `notes`.
struct Findings {
    anomalies: Vec<(String, serde_json::Value)>,
    /// Records of the group processed more than once, per group.
    reprocessed: BTreeMap<String, usize>,
    /// Records not judged because the group was configured not to read them, or the log
    /// removed them.
    excused: usize,
    /// Partitions judged.
    judged: usize,
    /// The client processes of each group (those that processed or committed).
    members: BTreeMap<String, BTreeSet<NodeId>>,
}

fn analyse(input: &CheckInput) -> Findings {
    let groups = subscribe_groups(input);
    let all = pairs(input.history);
    // Per group: processed values (with how many times), and the processes of the group.
    let mut processed: BTreeMap<String, BTreeMap<u64, usize>> = BTreeMap::new();
    let mut members: BTreeMap<String, BTreeSet<NodeId>> = BTreeMap::new();
    for pair in &all {
        match &pair.invoke.op.value {
            OpValue::Process {
                group: Some(g),
                records,
            } if groups.contains(g) => {
                members
                    .entry(g.clone())
                    .or_default()
                    .insert(pair.invoke.process);
                if pair.outcome() != OpType::Ok {
                    continue;
                }
                let mut values: BTreeSet<u64> = records.iter().map(|r| r.value).collect();
                if let Some(OpValue::Process { records, .. }) = pair.completion.map(|c| &c.op.value)
                {
                    values.extend(records.iter().map(|r| r.value));
                }
                let per = processed.entry(g.clone()).or_default();
                for v in values {
                    *per.entry(v).or_default() += 1;
                }
            }
            OpValue::Commit { group, .. } if groups.contains(group) => {
                members
                    .entry(group.clone())
                    .or_default()
                    .insert(pair.invoke.process);
            }
            _ => {}
        }
    }
    // Per (group, partition): the first position a member of the group took by
    // `auto.offset.reset` (earliest in time).
    let mut first_position: BTreeMap<(String, TopicPartition), Offset> = BTreeMap::new();
    for r in input.events {
        if let Event::ConsumerPositionReset {
            tp,
            to_offset,
            reason,
            ..
        } = &r.event
        {
            if reason != "no-position" {
                continue;
            }
            for (g, nodes) in &members {
                if nodes.contains(&r.node) {
                    first_position
                        .entry((g.clone(), tp.clone()))
                        .or_insert(*to_offset);
                }
            }
        }
    }
    let removed = super::Removed::from_events(input.events);
    let deleted = super::deleted_topics(input.events);
    let sends = acked_sends(input.history);
    let mut by_tp: BTreeMap<&TopicPartition, Vec<&AckedSend>> = BTreeMap::new();
    for s in &sends {
        by_tp.entry(&s.tp).or_default().push(s);
    }
    let empty = BTreeMap::new();
    let mut anomalies = Vec::new();
    let mut excused = 0;
    let mut judged = 0;
    for ((group, tp), writes) in commits(&all, &groups) {
        let Some(last) = final_committed(&writes) else {
            continue;
        };
        if deleted.contains_key(tp.topic.as_str()) {
            continue;
        }
        judged += 1;
        let done = processed.get(&group).unwrap_or(&empty);
        let start = first_position.get(&(group.clone(), tp.clone())).copied();
        let mut missing: Vec<&AckedSend> = Vec::new();
        for s in by_tp.get(&tp).map(Vec::as_slice).unwrap_or(&[]) {
            let Some(o) = s.offset.filter(|o| *o < last.offset) else {
                continue;
            };
            if removed.excuses(&tp, o).is_some() || start.is_some_and(|st| o < st) {
                excused += 1;
                continue;
            }
            if !done.contains_key(&s.value) {
                missing.push(s);
            }
        }
        missing.sort_by_key(|s| s.offset);
        let Some(first) = missing.first() else {
            continue;
        };
        let first_offset = first.offset.unwrap_or(Offset(0));
        // The first acknowledged commit (in completion order) that passed the first record.
        let passed = writes
            .iter()
            .filter(|w| w.acked_at().is_some() && w.offset > first_offset)
            .min_by_key(|w| w.acked_at())
            .copied()
            .unwrap_or(last);
        let named: Vec<String> = missing
            .iter()
            .take(NAMED_IN_MESSAGE)
            .map(|s| {
                format!(
                    "value {} (offset {})",
                    s.value,
                    s.offset.unwrap_or(Offset(0))
                )
            })
            .collect();
        let more = match missing.len().saturating_sub(NAMED_IN_MESSAGE) {
            0 => String::new(),
            n => format!(" and {n} more"),
        };
        let sentence = format!(
            "{} acknowledged record{} of {tp} below group {group}'s final committed offset {} \
             {} never processed by a member of the group: {}{more}; {}, passed {}",
            missing.len(),
            if missing.len() == 1 { "" } else { "s" },
            last.offset,
            if missing.len() == 1 { "was" } else { "were" },
            named.join(", "),
            passed.describe(),
            if missing.len() == 1 {
                "it"
            } else {
                "the first"
            },
        );
        let data = json!({
            "group": group,
            "tp": tp.to_string(),
            "final_committed": last.offset.0,
            "unprocessed_count": missing.len(),
            "unprocessed": missing.iter().take(super::MAX_DETAILS).map(|s| s.to_json()).collect::<Vec<_>>(),
            "passed_by": {
                "process": passed.invoke.process.to_string(),
                "member_id": passed.member_id(),
                "generation": passed.generation(),
                "offset": passed.offset.0,
                "sent": { "index": passed.invoke.index, "time_ms": passed.invoke.time_ms },
                "acknowledged": passed.completion.map(|c| json!({ "index": c.index, "time_ms": c.time_ms })),
            },
        });
        anomalies.push((sentence, data));
    }
    let reprocessed = processed
        .iter()
        .map(|(g, vs)| (g.clone(), vs.values().filter(|n| **n > 1).count()))
        .filter(|(_, n)| *n > 0)
        .collect();
    Findings {
        anomalies,
        reprocessed,
        excused,
        judged,
        members,
    }
}

impl Checker for AtLeastOnce {
    fn name(&self) -> &'static str {
        "at-least-once"
    }

    fn statement(&self) -> &'static str {
        "every acknowledged record below a group's final committed offset was processed by a \
         member of the group"
    }

    fn lesson(&self) -> Lesson {
        Lesson {
            intro: "A consumer group committed offsets past records it never processed: the \
                    member that committed them crashed (or moved on) before processing them, \
                    and the next owner of the partition resumed after them. Committing before \
                    processing is at-most-once delivery.",
            prevention: Prevention::CommitOrder,
        }
    }

    fn skip_reason(&self, input: &CheckInput) -> Option<String> {
        super::group_view::without_groups(input, "no record is processed by a group")
    }

    fn notes(&self, input: &CheckInput) -> Vec<String> {
        let f = analyse(input);
        let mut notes = Vec::new();
        if f.judged == 0 {
            notes.push(
                "no group acknowledged a commit, so no record was judged (a group that never \
                 commits claims nothing)"
                    .to_string(),
            );
        }
        if f.excused > 0 {
            notes.push(format!(
                "{} acknowledged record{} below a final committed offset not judged: below the \
                 group's first position by `auto.offset.reset`, or removed by retention or \
                 compaction",
                f.excused,
                if f.excused == 1 { "" } else { "s" }
            ));
        }
        for (group, n) in f.reprocessed {
            let causes = reprocessing_causes(input, &group, &f.members);
            let why = if causes.is_empty() {
                "a member stopped or lost its partitions after processing them and before its \
                 commit, so the next owner resumed from an older committed offset"
                    .to_string()
            } else {
                format!(
                    "in this run {}; a member that stops, or loses its partitions, after \
                     processing records and before committing them leaves them to the next \
                     owner, which resumes from an older committed offset",
                    causes.join("; ")
                )
            };
            notes.push(format!(
                "group {group} processed {n} record{} more than once ({why}): at-least-once \
                 allows it",
                if n == 1 { "" } else { "s" }
            ));
        }
        notes
    }

    fn check(&self, input: &CheckInput) -> Vec<Violation> {
        violation(
            self.name(),
            None,
            analyse(input).anomalies,
            serde_json::Map::new(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::super::testkit::{tp, HistoryBuilder};
    use super::*;
    use crate::history::EventRecord;
    use ksim_model::event::{ClientOp, CommitOffset, PolledRecord};
    use ksim_model::types::BrokerId;

    /// Appends a process op (invoke, then `ok` unless `open`) and commits to a history.
    fn process(h: &mut HistoryBuilder, c: u32, records: &[(i64, u64)], open: bool) {
        let records: Vec<PolledRecord> = records
            .iter()
            .map(|&(o, v)| PolledRecord {
                tp: tp(0),
                offset: Offset(o),
                value: v,
            })
            .collect();
        let id = 10_000 + h.entries.len() as u64;
        let v = OpValue::Process {
            group: Some("g".into()),
            records,
        };
        push(h, c, OpType::Invoke, id, v.clone());
        if !open {
            push(h, c, OpType::Ok, id, v);
        }
    }

    fn push(h: &mut HistoryBuilder, c: u32, op_type: OpType, op_id: u64, value: OpValue) {
        let index = h.entries.len() as u64;
        h.entries.push(HistoryEntry {
            index,
            time_ms: index * 10,
            process: NodeId::Consumer(c),
            op: ClientOp {
                op_type,
                op_id,
                value,
                error: None,
            },
        });
    }

    fn commit(h: &mut HistoryBuilder, c: u32, offset: i64, outcome: OpType) {
        let id = 20_000 + h.entries.len() as u64;
        let v = |coordinator| OpValue::Commit {
            group: "g".into(),
            mode: "sync".into(),
            offsets: vec![CommitOffset {
                tp: tp(0),
                offset: Offset(offset),
            }],
            coordinator,
            generation: Some(1),
            member_id: Some(format!("m{c}")),
        };
        push(h, c, OpType::Invoke, id, v(None));
        push(h, c, outcome, id, v(Some(BrokerId(0))));
    }

    fn produced() -> HistoryBuilder {
        let mut h = HistoryBuilder::default();
        for o in 0..6 {
            h.send(0, OpType::Ok, &tp(0), 100 + o as u64, o);
        }
        h
    }

    fn check(h: &HistoryBuilder, events: &[EventRecord]) -> Vec<Violation> {
        super::super::testkit::check_history_events(&AtLeastOnce, &h.entries, events)
    }

    #[test]
    fn commit_after_processing_passes_and_reprocessing_is_only_counted() {
        let mut h = produced();
        h.poll(0, &tp(0), &[(0, 100), (1, 101), (2, 102)]);
        process(&mut h, 0, &[(0, 100), (1, 101), (2, 102)], false);
        commit(&mut h, 0, 3, OpType::Ok);
        h.poll(0, &tp(0), &[(3, 103), (4, 104)]);
        process(&mut h, 0, &[(3, 103), (4, 104)], false);
        // consumer-0 crashes before committing 5; consumer-1 resumes at 3 and reprocesses.
        process(&mut h, 1, &[(3, 103), (4, 104)], false);
        commit(&mut h, 1, 5, OpType::Ok);
        assert!(check(&h, &[]).is_empty(), "{:?}", check(&h, &[]));
        let logs = BTreeMap::new();
        let notes = AtLeastOnce.notes(&CheckInput {
            history: &h.entries,
            events: &[],
            final_logs: &logs,
            scenario: None,
            snapshots: &[],
        });
        assert_eq!(notes.len(), 1, "{notes:?}");
        assert!(notes[0].starts_with("group g processed 2 records more than once"));
    }

    /// The note names what happened in the run, not always a crash.
    #[test]
    fn the_reprocessing_note_names_what_happened() {
        let mut h = produced();
        h.poll(0, &tp(0), &[(0, 100), (1, 101)]);
        process(&mut h, 0, &[(0, 100), (1, 101)], false);
        process(&mut h, 1, &[(0, 100), (1, 101)], false);
        commit(&mut h, 1, 2, OpType::Ok);
        let mut e = super::super::group_view::testkit::Events::default();
        e.assigned(10, 0, 1, &[0]);
        e.0.push(EventRecord {
            time_ms: 40,
            node: NodeId::Consumer(0),
            event: Event::ConsumerError {
                tp: tp(-1),
                exception: "LeaveGroup".into(),
                message: "Member sending LeaveGroup request to coordinator due to consumer \
                          poll timeout has expired"
                    .into(),
            },
        });
        e.removed(41, 0, "LeaveGroup", 1);
        e.lost(50, 0, 1, &[0]);
        let logs = BTreeMap::new();
        let input = CheckInput {
            history: &h.entries,
            events: &e.0,
            final_logs: &logs,
            scenario: None,
            snapshots: &[],
        };
        let notes = AtLeastOnce.notes(&input);
        assert_eq!(
            notes,
            vec![
                "group g processed 2 records more than once (in this run consumer-0's \
                  heartbeat thread left the group because poll() was not called within \
                  max.poll.interval.ms; the coordinator removed consumer-0 (LeaveGroup); \
                  consumer-0 lost its partitions (UNKNOWN_MEMBER_ID); a member that stops, or \
                  loses its partitions, after processing records and before committing them \
                  leaves them to the next owner, which resumes from an older committed \
                  offset): at-least-once allows it"
                    .to_string()
            ]
        );
        // A kill, twice, and a close.
        let mut e = super::super::group_view::testkit::Events::default();
        e.killed(10, 0).killed(20, 0);
        e.0.push(EventRecord {
            time_ms: 30,
            node: NodeId::Zk,
            event: Event::Fault {
                action: "close".into(),
                nodes: vec!["consumer-1".into()],
                source: "schedule".into(),
            },
        });
        let notes = AtLeastOnce.notes(&CheckInput {
            events: &e.0,
            ..input
        });
        assert!(
            notes[0].contains(
                "(in this run consumer-0 was killed (`client-kill`) 2 times; consumer-1 was \
                 closed (`close`); a member"
            ),
            "{notes:?}"
        );
    }

    #[test]
    fn committing_before_processing_then_crashing_loses_records() {
        let mut h = produced();
        h.poll(0, &tp(0), &[(0, 100), (1, 101), (2, 102)]);
        process(&mut h, 0, &[(0, 100), (1, 101), (2, 102)], false);
        h.poll(0, &tp(0), &[(3, 103), (4, 104)]);
        // before-processing: commit 5, then crash while processing (the op stays open).
        commit(&mut h, 0, 5, OpType::Ok);
        process(&mut h, 0, &[(3, 103), (4, 104)], true);
        let v = check(&h, &[]);
        assert_eq!(v.len(), 1, "{v:?}");
        assert_eq!(
            v[0].message,
            "2 acknowledged records of events-0 below group g's final committed offset 5 were \
             never processed by a member of the group: value 103 (offset 3), value 104 (offset \
             4); consumer-0 (member m0, generation 1)'s sync commit of offset 5, acknowledged at \
             t=190 ms, passed the first"
        );
        assert_eq!(v[0].details["anomalies"][0]["unprocessed_count"], 2);
        // The commit that passed them, with its member and generation (the report's group
        // section names them).
        let passed = &v[0].details["anomalies"][0]["passed_by"];
        assert_eq!(passed["member_id"], "m0");
        assert_eq!(passed["generation"], 1);
        assert_eq!(passed["offset"], 5);
    }

    #[test]
    fn the_final_commit_decides_and_failed_commits_do_not_count() {
        let mut h = produced();
        process(&mut h, 0, &[(0, 100), (1, 101)], false);
        commit(&mut h, 0, 2, OpType::Ok);
        // A fenced zombie commit of 6 was refused: nothing past 2 is claimed.
        commit(&mut h, 1, 6, OpType::Fail);
        assert!(check(&h, &[]).is_empty(), "{:?}", check(&h, &[]));
        // Records below the group's first position (auto.offset.reset=latest) are excused.
        let mut h = produced();
        process(&mut h, 0, &[(4, 104)], false);
        commit(&mut h, 0, 5, OpType::Ok);
        assert_eq!(check(&h, &[]).len(), 1);
        let start = EventRecord {
            time_ms: 0,
            node: NodeId::Consumer(0),
            event: Event::ConsumerPositionReset {
                tp: tp(0),
                from_offset: None,
                to_offset: Offset(4),
                strategy: "latest".into(),
                reason: "no-position".into(),
            },
        };
        assert!(check(&h, &[start]).is_empty());
    }
}
