//! The report's "Consumer groups" section: what a subscribe-mode group did during the run,
//! read off the event log and the history, for a person who knows Kafka but not this code.
//!
//! Per group:
//! - **ownership**: per partition, which member owned it from when to when (simulated ms), in
//!   which generation(s), and how its ownership ended (`onPartitionsRevoked`,
//!   `onPartitionsLost`, the process crashed, the member rejoined under a new member id, or the
//!   run ended); then, per partition, the total time no member owned it. Ownership is each
//!   member's own account (its `partitions-assigned` / `-revoked` / `-lost` events and the
//!   crash faults), replayed by [`crate::check::group_view::GroupWalk`], the view the group
//!   checks judge: a removed member that has not noticed still counts as an owner (Kafka fences
//!   its commits, not its fetches), so "without an owner" means nobody was processing it.
//!   Counted from the partition's first owner to the end of the run (the first join is not a
//!   gap);
//! - **rebalances**: each from the coordinator's `PreparingRebalance` to its next `Stable`
//!   (ClassicGroup's states), with the cause taken from the coordinator's reason (a member
//!   joined, a session timeout, a LeaveGroup, a LeaveGroup sent because
//!   `max.poll.interval.ms` expired, the rebalance timeout, a member rejoining, a coordinator
//!   failover before it), the generation it ended in, its duration and the members removed
//!   meanwhile; coordinator moves (a broker loading the group from `__consumer_offsets`) are
//!   listed with them;
//! - **committed offsets**: per partition, the acknowledged commits in acknowledgement order,
//!   consecutive ones of one member and generation merged into one row (first and last
//!   offset, how many), with the failed and unknown-outcome commits counted by error;
//! - **violations**: for each anomaly of `exclusive-assignment`, `revoke-before-reassign`,
//!   `commit-validity` and `at-least-once`, the partition, the member(s) with their
//!   generation and the commit involved (the check's own commit, or the last acknowledged
//!   commit of the partition before the anomaly).
//!
//! The section is left out when the run has no group event. Every table is capped (a
//! "... N more" line says how many rows were left out). Deterministic: event-log order and
//! `BTreeMap`s only.

use super::{cell, ANOMALIES_SHOWN_MAX};
use crate::check::group_view::{Change, GroupWalk};
use crate::check::Violation;
use crate::history::{pairs, EventRecord, HistoryEntry};
use crate::run::RunResult;
use ksim_model::event::{Event, OpType, OpValue};
use ksim_model::types::{BrokerId, NodeId, TopicPartition};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

/// At most this many rows in a group's ownership table.
pub const OWNERSHIP_ROWS_MAX: usize = 60;
/// At most this many rows in a group's rebalance table.
pub const REBALANCE_ROWS_MAX: usize = 40;
/// At most this many rows in a group's committed-offset table.
pub const COMMIT_ROWS_MAX: usize = 40;

/// The checks whose violations the section spells out.
pub const GROUP_CHECKS: [&str; 4] = [
    "exclusive-assignment",
    "revoke-before-reassign",
    "commit-validity",
    "at-least-once",
];

/// One member's ownership of one partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tenure {
    pub tp: TopicPartition,
    /// The consumer process.
    pub node: NodeId,
    pub member_id: String,
    /// The generation it was assigned in.
    pub generation: i32,
    /// The member's latest generation while it owned it (a cooperative member keeps a
    /// partition through later generations).
    pub last_generation: i32,
    /// From its `partitions-assigned` (simulated ms).
    pub from_ms: u64,
    /// Until (simulated ms); `None`: still owned at the end of the run.
    pub to_ms: Option<u64>,
    /// How it ended: `revoked`, `lost (UNKNOWN_MEMBER_ID)`, `process crashed (client-kill)`,
    /// `rejoined as a new member`, or `owned at the end of the run`.
    pub ended: String,
}

/// One rebalance: `PreparingRebalance` until the next `Stable`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rebalance {
    pub start_ms: u64,
    /// When the group became `Stable` again; `None`: not by the end of the run (or it ended
    /// `Empty`, see `outcome`).
    pub stable_ms: Option<u64>,
    /// The generation it ended in.
    pub generation: Option<i32>,
    /// The causes, in order (a rebalance restarted by another join or removal lists both).
    pub causes: Vec<String>,
    /// Members removed while it ran (rebalance timeout), as `consumer-1 (rebalance-timeout)`.
    pub removed: Vec<String>,
    /// The coordinator that started it.
    pub coordinator: BrokerId,
    /// `Stable`, `Empty (no members left)`, `cut short: the coordinator failed over ...` or
    /// `not Stable by the end of the run`.
    pub outcome: String,
}

impl Rebalance {
    /// Its duration in ms, when it ended.
    pub fn duration_ms(&self) -> Option<u64> {
        self.stable_ms.map(|s| s.saturating_sub(self.start_ms))
    }
}

/// Consecutive acknowledged commits of one partition by one member in one generation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitRun {
    pub tp: TopicPartition,
    pub node: NodeId,
    /// `None` for a commit sent without one (assign mode).
    pub member_id: Option<String>,
    pub generation: Option<i32>,
    /// Acknowledgement times of the first and last commit (simulated ms).
    pub first_ms: u64,
    pub last_ms: u64,
    /// Offsets committed by the first and the last.
    pub first_offset: i64,
    pub last_offset: i64,
    pub commits: usize,
}

/// What one group did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GroupSummary {
    pub group: String,
    /// Every tenure, by partition then start time.
    pub tenures: Vec<Tenure>,
    /// Per partition ever owned: (total ms without an owner, number of gaps, longest gap ms).
    pub unowned: BTreeMap<TopicPartition, (u64, usize, u64)>,
    pub rebalances: Vec<Rebalance>,
    /// Coordinator loads: (time ms, broker, generation, state it loaded the group in).
    pub loads: Vec<(u64, BrokerId, i32, String)>,
    /// Acknowledged commits, by partition then acknowledgement order, merged into runs.
    pub commits: Vec<CommitRun>,
    /// Every acknowledged commit of one partition, in acknowledgement order: (partition,
    /// acknowledged at ms, process, generation, offset).
    pub acked: Vec<(TopicPartition, u64, NodeId, Option<i32>, i64)>,
    /// Commits that failed or whose outcome is unknown: (`fail` or `info`, error) → count.
    pub unacknowledged: BTreeMap<(String, String), usize>,
    /// The group's last state and when it entered it.
    pub last_state: Option<(u64, String)>,
}

/// What the groups of a run did, in group order; empty when the run has no group event.
/// `end_ms` is the run's end (simulated ms), where still-open tenures stop.
pub fn summarize(
    history: &[HistoryEntry],
    events: &[EventRecord],
    end_ms: u64,
) -> Vec<GroupSummary> {
    let mut groups: BTreeMap<String, GroupSummary> = BTreeMap::new();
    ownership(events, end_ms, &mut groups);
    rebalances(events, &mut groups);
    commits(history, &mut groups);
    groups.into_values().collect()
}

/// An empty summary of `group`.
fn entry(group: &str) -> GroupSummary {
    GroupSummary {
        group: group.to_string(),
        ..GroupSummary::default()
    }
}

/// The key of an open tenure: (group, partition, process).
type OpenKey = (String, TopicPartition, NodeId);

fn ownership(events: &[EventRecord], end_ms: u64, groups: &mut BTreeMap<String, GroupSummary>) {
    let mut walk = GroupWalk::default();
    let mut open: BTreeMap<OpenKey, Tenure> = BTreeMap::new();
    let mut closed: Vec<(String, Tenure)> = Vec::new();
    for r in events {
        if walk.apply(r) == Change::None {
            continue;
        }
        // What each process owns now, by its own account.
        let mut now: BTreeMap<OpenKey, (String, i32, i32)> = BTreeMap::new();
        for (node, v) in &walk.members {
            for (tp, o) in &v.owned {
                now.insert(
                    (v.group.clone(), tp.clone(), *node),
                    (v.member_id.clone(), o.generation, v.generation),
                );
            }
        }
        let gone: Vec<OpenKey> = open
            .iter()
            .filter(|(k, t)| {
                now.get(*k)
                    .is_none_or(|(m, g, _)| *m != t.member_id || *g != t.generation)
            })
            .map(|(k, _)| k.clone())
            .collect();
        for k in gone {
            let mut t = open.remove(&k).expect("listed");
            t.to_ms = Some(r.time_ms);
            t.ended = ended_by(&r.event, &t);
            closed.push((k.0.clone(), t));
        }
        for (k, (member_id, generation, latest)) in now {
            let t = open.entry(k.clone()).or_insert_with(|| Tenure {
                tp: k.1.clone(),
                node: k.2,
                member_id,
                generation,
                last_generation: generation,
                from_ms: r.time_ms,
                to_ms: None,
                ended: "owned at the end of the run".into(),
            });
            t.last_generation = t.last_generation.max(latest);
        }
        if let Some(g) = group_of(&r.event) {
            groups.entry(g.to_string()).or_insert_with(|| entry(g));
        }
    }
    for (k, t) in open {
        closed.push((k.0, t));
    }
    for (g, t) in closed {
        groups
            .entry(g.clone())
            .or_insert_with(|| entry(&g))
            .tenures
            .push(t);
    }
    for s in groups.values_mut() {
        s.tenures
            .sort_by(|a, b| (&a.tp, a.from_ms, a.node).cmp(&(&b.tp, b.from_ms, b.node)));
        let mut by_tp: BTreeMap<&TopicPartition, Vec<(u64, u64)>> = BTreeMap::new();
        for t in &s.tenures {
            by_tp
                .entry(&t.tp)
                .or_default()
                .push((t.from_ms, t.to_ms.unwrap_or(end_ms).max(t.from_ms)));
        }
        s.unowned = by_tp
            .into_iter()
            .map(|(tp, spans)| (tp.clone(), gaps(&spans, end_ms)))
            .collect();
    }
}

/// (total, count, longest) of the gaps between `spans` (sorted by start) up to `end_ms`.
fn gaps(spans: &[(u64, u64)], end_ms: u64) -> (u64, usize, u64) {
    let (mut total, mut count, mut longest) = (0, 0, 0);
    let mut covered = spans.first().map_or(end_ms, |s| s.0);
    for &(from, to) in spans {
        if from > covered {
            let g = from - covered;
            total += g;
            count += 1;
            longest = longest.max(g);
        }
        covered = covered.max(to);
    }
    if end_ms > covered {
        let g = end_ms - covered;
        total += g;
        count += 1;
        longest = longest.max(g);
    }
    (total, count, longest)
}

/// How the event that closed `t` ended it.
fn ended_by(e: &Event, t: &Tenure) -> String {
    match e {
        Event::PartitionsRevoked { .. } => "revoked".into(),
        Event::PartitionsLost { reason, .. } => format!("lost ({reason})"),
        Event::Fault { action, .. } => format!("process crashed ({action})"),
        Event::PartitionsAssigned { member_id, .. } if *member_id != t.member_id => {
            "rejoined as a new member".into()
        }
        other => format!("ended by {}", other.kind()),
    }
}

/// Whether `events` hold any event of a subscribe-mode group (the section's condition).
pub fn has_groups(events: &[EventRecord]) -> bool {
    events.iter().any(|r| group_of(&r.event).is_some())
}

fn group_of(e: &Event) -> Option<&str> {
    match e {
        Event::GroupStateChanged { group, .. }
        | Event::GroupAssignmentCompleted { group, .. }
        | Event::GroupMemberRemoved { group, .. }
        | Event::PartitionsAssigned { group, .. }
        | Event::PartitionsRevoked { group, .. }
        | Event::PartitionsLost { group, .. } => Some(group),
        _ => None,
    }
}

fn rebalances(events: &[EventRecord], groups: &mut BTreeMap<String, GroupSummary>) {
    // Member id → its process, from every event that names both.
    let mut client: BTreeMap<String, NodeId> = BTreeMap::new();
    // Per process, whether its latest LeaveGroup was sent because the poll timer expired.
    let mut poll_timeout: BTreeMap<NodeId, bool> = BTreeMap::new();
    let mut open: BTreeMap<String, Rebalance> = BTreeMap::new();
    // A coordinator load since the group was last Stable: (time, broker).
    let mut failover: BTreeMap<String, (u64, BrokerId)> = BTreeMap::new();
    for r in events {
        match &r.event {
            Event::PartitionsAssigned { member_id, .. }
            | Event::PartitionsRevoked { member_id, .. }
            | Event::PartitionsLost { member_id, .. } => {
                client.insert(member_id.clone(), r.node);
            }
            Event::GroupAssignmentCompleted { members, .. } => {
                for m in members {
                    if let Some(n) = NodeId::parse(&m.client) {
                        client.insert(m.member_id.clone(), n);
                    }
                }
            }
            Event::ConsumerError {
                exception, message, ..
            } if exception == "LeaveGroup" => {
                poll_timeout.insert(r.node, message.contains("poll timeout"));
            }
            Event::GroupMemberRemoved {
                group,
                member_id,
                reason,
                ..
            } => {
                if let Some(rb) = open.get_mut(group) {
                    if reason == "rebalance-timeout" {
                        rb.removed
                            .push(format!("{} ({reason})", name(&client, member_id)));
                    }
                }
            }
            Event::GroupStateChanged {
                group,
                broker,
                from,
                to,
                generation,
                reason,
            } => {
                let s = groups.entry(group.clone()).or_insert_with(|| entry(group));
                s.last_state = Some((r.time_ms, to.clone()));
                if from == "Dead" {
                    s.loads.push((r.time_ms, *broker, *generation, to.clone()));
                    failover.insert(group.clone(), (r.time_ms, *broker));
                    // A rebalance the failed coordinator was running ends here: the new one
                    // loads the last stored generation; members that were rejoining rejoin
                    // there (a new rebalance).
                    if let Some(mut rb) = open.remove(group) {
                        rb.stable_ms = Some(r.time_ms);
                        rb.generation = Some(*generation);
                        rb.outcome = format!(
                            "cut short: the coordinator failed over and {} loaded generation \
                             {generation} as `{to}`",
                            NodeId::Broker(*broker)
                        );
                        s.rebalances.push(rb);
                    }
                }
                match to.as_str() {
                    "PreparingRebalance" => {
                        let mut cause = cause_of(reason, &client, &poll_timeout);
                        if let Some((t, b)) = failover.remove(group) {
                            cause = format!(
                                "{cause}, after the coordinator moved to {} at t={t} ms",
                                NodeId::Broker(b)
                            );
                        }
                        let rb = open.entry(group.clone()).or_insert_with(|| Rebalance {
                            start_ms: r.time_ms,
                            stable_ms: None,
                            generation: None,
                            causes: Vec::new(),
                            removed: Vec::new(),
                            coordinator: *broker,
                            outcome: "not Stable by the end of the run".into(),
                        });
                        if !rb.causes.contains(&cause) {
                            rb.causes.push(cause);
                        }
                    }
                    "Stable" | "Empty" if from != "Dead" => {
                        if to == "Stable" {
                            failover.remove(group);
                        }
                        if let Some(mut rb) = open.remove(group) {
                            rb.stable_ms = Some(r.time_ms);
                            rb.generation = Some(*generation);
                            rb.outcome = if to == "Stable" {
                                "Stable".into()
                            } else {
                                "Empty (no members left)".into()
                            };
                            s.rebalances.push(rb);
                        }
                    }
                    _ => {}
                }
            }
            _ => {}
        }
    }
    for (g, rb) in open {
        groups
            .entry(g.clone())
            .or_insert_with(|| entry(&g))
            .rebalances
            .push(rb);
    }
}

/// `consumer-1` for a known member id, else the member id.
fn name(client: &BTreeMap<String, NodeId>, member_id: &str) -> String {
    client
        .get(member_id)
        .map_or_else(|| member_id.to_string(), |n| n.to_string())
}

/// The cause of a rebalance in words, from the coordinator's reason (GroupManager's texts,
/// Kafka's where it has them).
fn cause_of(
    reason: &str,
    client: &BTreeMap<String, NodeId>,
    poll_timeout: &BTreeMap<NodeId, bool>,
) -> String {
    let member = |prefix: &str, suffix: &str| -> Option<String> {
        let rest = reason.strip_prefix(prefix)?;
        let id = rest.split(suffix).next()?.trim();
        Some(id.to_string())
    };
    if let Some(id) = member("Adding new member ", " with group instance id") {
        return format!("{} joined", joined_name(client, &id));
    }
    if let Some(id) = member("Removing member ", " on heartbeat expiration") {
        if reason.ends_with("on heartbeat expiration") {
            return format!(
                "{} removed: no heartbeat within session.timeout.ms",
                name(client, &id)
            );
        }
    }
    if let Some(id) = member("Removing member ", " on LeaveGroup") {
        if reason.ends_with("on LeaveGroup") {
            let who = name(client, &id);
            let polled_late = client
                .get(&id)
                .and_then(|n| poll_timeout.get(n))
                .copied()
                .unwrap_or(false);
            return if polled_late {
                format!("{who} left: max.poll.interval.ms expired (LeaveGroup)")
            } else {
                format!("{who} left (LeaveGroup)")
            };
        }
    }
    if reason.contains("after the rebalance timeout") {
        return "members that did not sync within the rebalance timeout (max.poll.interval.ms) \
                were removed"
            .into();
    }
    if let Some(id) = member("Leader ", " re-joining group during") {
        return format!("{} (the leader) rejoined", name(client, &id));
    }
    if let Some(id) = member("Updating metadata for member ", " during") {
        return format!("{} rejoined", name(client, &id));
    }
    if let Some(id) = member("Static member ", " with instance id") {
        return format!("static member {} rejoined", joined_name(client, &id));
    }
    reason.to_string()
}

/// A joining member's name: its process when a later event tied it to one, else the process
/// its member id starts with (`consumer-1-b0-...`), else the id.
fn joined_name(client: &BTreeMap<String, NodeId>, member_id: &str) -> String {
    if let Some(n) = client.get(member_id) {
        return n.to_string();
    }
    let mut parts = member_id.splitn(3, '-');
    match (parts.next(), parts.next()) {
        (Some(a), Some(b)) => match NodeId::parse(&format!("{a}-{b}")) {
            Some(n) => n.to_string(),
            None => member_id.to_string(),
        },
        _ => member_id.to_string(),
    }
}

fn commits(history: &[HistoryEntry], groups: &mut BTreeMap<String, GroupSummary>) {
    let mut acked: Vec<(u64, u64, &HistoryEntry)> = Vec::new();
    // Pair the operations only if there is a commit among them.
    let any_commit = history
        .iter()
        .any(|e| matches!(e.op.value, OpValue::Commit { .. }));
    let pairs = if any_commit {
        pairs(history)
    } else {
        Vec::new()
    };
    for p in pairs {
        let OpValue::Commit { group, .. } = &p.invoke.op.value else {
            continue;
        };
        if !groups.contains_key(group) {
            continue;
        }
        match (p.outcome(), p.completion) {
            (OpType::Ok, Some(c)) => acked.push((c.time_ms, c.index, p.invoke)),
            (outcome, c) => {
                let kind = if outcome == OpType::Fail {
                    "fail"
                } else {
                    "info"
                };
                let error = c
                    .and_then(|c| c.op.error.clone())
                    .unwrap_or_else(|| "no answer by the end of the run".into());
                *groups
                    .entry(group.clone())
                    .or_insert_with(|| entry(group))
                    .unacknowledged
                    .entry((kind.to_string(), error))
                    .or_default() += 1;
            }
        }
    }
    acked.sort_by_key(|(t, i, _)| (*t, *i));
    let mut runs: BTreeMap<(String, TopicPartition), Vec<CommitRun>> = BTreeMap::new();
    let mut acked_list: BTreeMap<String, Vec<(TopicPartition, u64, NodeId, Option<i32>, i64)>> =
        BTreeMap::new();
    for (t, _, inv) in acked {
        let OpValue::Commit {
            group,
            offsets,
            generation,
            member_id,
            ..
        } = &inv.op.value
        else {
            continue;
        };
        for o in offsets {
            acked_list.entry(group.clone()).or_default().push((
                o.tp.clone(),
                t,
                inv.process,
                *generation,
                o.offset.0,
            ));
            let list = runs.entry((group.clone(), o.tp.clone())).or_default();
            match list.last_mut() {
                Some(last)
                    if last.node == inv.process
                        && last.member_id == *member_id
                        && last.generation == *generation =>
                {
                    last.last_ms = t;
                    last.last_offset = o.offset.0;
                    last.commits += 1;
                }
                _ => list.push(CommitRun {
                    tp: o.tp.clone(),
                    node: inv.process,
                    member_id: member_id.clone(),
                    generation: *generation,
                    first_ms: t,
                    last_ms: t,
                    first_offset: o.offset.0,
                    last_offset: o.offset.0,
                    commits: 1,
                }),
            }
        }
    }
    for (g, list) in acked_list {
        groups.entry(g.clone()).or_insert_with(|| entry(&g)).acked = list;
    }
    for ((g, _), list) in runs {
        groups
            .entry(g.clone())
            .or_insert_with(|| entry(&g))
            .commits
            .extend(list);
    }
}

// ---------------------------------------------------------------------------------------------
// Markdown
// ---------------------------------------------------------------------------------------------

/// Writes the "Consumer groups" section; nothing when the run has no group.
pub(super) fn write_groups(out: &mut String, run: &RunResult) {
    if !has_groups(&run.output.events) {
        return;
    }
    let groups = summarize(
        &run.output.history,
        &run.output.events,
        run.output.simulated_ms,
    );
    out.push_str("## Consumer groups\n\n");
    out.push_str(
        "What each subscribe-mode group did: who owned which partition when, each rebalance \
         with its cause and duration, the committed offsets, and the members behind any \
         violation of a group check. Times are simulated milliseconds. Ownership is each \
         member's own account (from its `onPartitionsAssigned` to its `onPartitionsRevoked` or \
         `onPartitionsLost`, or its crash): a member the coordinator removed without it \
         noticing still owns (and processes) its partitions until it learns, which is why \
         Kafka fences its commits.\n\n",
    );
    for g in &groups {
        write_group(out, run, g);
    }
}

fn write_group(out: &mut String, run: &RunResult, g: &GroupSummary) {
    let _ = writeln!(out, "### Group `{}`\n", cell(&g.group));
    if let Some((t, state)) = &g.last_state {
        let _ = writeln!(
            out,
            "{} rebalance{}; the group was last `{state}` (since t={t} ms).\n",
            g.rebalances.len(),
            if g.rebalances.len() == 1 { "" } else { "s" }
        );
    }

    out.push_str("**Who owned each partition**\n\n");
    if g.tenures.is_empty() {
        out.push_str("No member ever owned a partition.\n\n");
    } else {
        out.push_str(
            "| partition | member | generation | from (ms) | to (ms) | how it ended |\n|---|---|---|---|---|---|\n",
        );
        for t in g.tenures.iter().take(OWNERSHIP_ROWS_MAX) {
            let generation = if t.last_generation > t.generation {
                format!("{}–{}", t.generation, t.last_generation)
            } else {
                t.generation.to_string()
            };
            let _ = writeln!(
                out,
                "| {} | {} (`{}`) | {generation} | {} | {} | {} |",
                t.tp,
                t.node,
                cell(&t.member_id),
                t.from_ms,
                t.to_ms.map_or("end".to_string(), |x| x.to_string()),
                cell(&t.ended)
            );
        }
        more(out, g.tenures.len(), OWNERSHIP_ROWS_MAX);
        out.push_str(
            "\nTime without an owner, per partition, from its first owner to the end of the \
             run:\n\n| partition | without an owner (ms) | gaps | longest gap (ms) |\n|---|---|---|---|\n",
        );
        for (tp, (total, count, longest)) in &g.unowned {
            let _ = writeln!(out, "| {tp} | {total} | {count} | {longest} |");
        }
        out.push('\n');
    }

    out.push_str("**Rebalances**\n\n");
    if g.rebalances.is_empty() && g.loads.is_empty() {
        out.push_str("None.\n\n");
    } else {
        out.push_str(
            "| from (ms) | to (ms) | duration (ms) | generation | coordinator | cause | outcome |\n|---|---|---|---|---|---|---|\n",
        );
        let mut rows: Vec<(u64, String)> = Vec::new();
        for rb in &g.rebalances {
            let mut cause = rb.causes.join("; then ");
            if !rb.removed.is_empty() {
                let _ = write!(cause, "; removed meanwhile: {}", rb.removed.join(", "));
            }
            rows.push((
                rb.start_ms,
                format!(
                    "| {} | {} | {} | {} | {} | {} | {} |",
                    rb.start_ms,
                    rb.stable_ms.map_or("—".to_string(), |t| t.to_string()),
                    rb.duration_ms().map_or("—".to_string(), |d| d.to_string()),
                    rb.generation.map_or("—".to_string(), |x| x.to_string()),
                    NodeId::Broker(rb.coordinator),
                    cell(&cause),
                    cell(&rb.outcome)
                ),
            ));
        }
        for (t, b, generation, state) in &g.loads {
            rows.push((
                *t,
                format!(
                    "| {t} | {t} | — | {generation} | {} | coordinator failover: {} loaded the \
                     group from `__consumer_offsets` | `{state}`, same generation |",
                    NodeId::Broker(*b),
                    NodeId::Broker(*b)
                ),
            ));
        }
        rows.sort_by_key(|(t, _)| *t);
        for (_, row) in rows.iter().take(REBALANCE_ROWS_MAX) {
            let _ = writeln!(out, "{row}");
        }
        more(out, rows.len(), REBALANCE_ROWS_MAX);
        out.push('\n');
    }

    out.push_str("**Committed offsets**\n\n");
    if g.commits.is_empty() {
        out.push_str("No commit was acknowledged.\n\n");
    } else {
        out.push_str(
            "Acknowledged commits per partition, in acknowledgement order; consecutive commits \
             of one member in one generation share a row.\n\n\
             | partition | acknowledged (ms) | member | generation | offset | commits |\n|---|---|---|---|---|---|\n",
        );
        for c in g.commits.iter().take(COMMIT_ROWS_MAX) {
            let when = if c.first_ms == c.last_ms {
                c.first_ms.to_string()
            } else {
                format!("{}–{}", c.first_ms, c.last_ms)
            };
            let offset = if c.first_offset == c.last_offset {
                c.first_offset.to_string()
            } else {
                format!("{} → {}", c.first_offset, c.last_offset)
            };
            let member = match &c.member_id {
                Some(m) => format!("{} (`{}`)", c.node, cell(m)),
                None => c.node.to_string(),
            };
            let _ = writeln!(
                out,
                "| {} | {when} | {member} | {} | {offset} | {} |",
                c.tp,
                c.generation.map_or("—".to_string(), |x| x.to_string()),
                c.commits
            );
        }
        more(out, g.commits.len(), COMMIT_ROWS_MAX);
        out.push('\n');
    }
    if !g.unacknowledged.is_empty() {
        let listed: Vec<String> = g
            .unacknowledged
            .iter()
            .map(|((kind, error), n)| format!("{n} `{kind}` ({})", cell(error)))
            .collect();
        let _ = writeln!(
            out,
            "Commits not acknowledged: {} (`fail`: certainly not stored, e.g. fenced with \
             ILLEGAL_GENERATION or UNKNOWN_MEMBER_ID; `info`: may or may not have been \
             stored).\n",
            listed.join(", ")
        );
    }
    write_violations(out, run, g);
}

fn more(out: &mut String, total: usize, shown: usize) {
    if total > shown {
        let _ = writeln!(out, "\n... {} more", total - shown);
    }
}

/// One row of the violations table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ViolationRow {
    pub check: String,
    pub tp: String,
    pub time_ms: Option<u64>,
    /// The member(s) involved with their generation.
    pub members: String,
    /// The commit involved.
    pub commit: String,
}

/// The rows of `g`'s violations: every anomaly of a group check (up to
/// [`ANOMALIES_SHOWN_MAX`] per check) that names this group.
pub fn violation_rows(violations: &[Violation], g: &GroupSummary) -> Vec<ViolationRow> {
    let mut rows = Vec::new();
    for v in violations
        .iter()
        .filter(|v| GROUP_CHECKS.contains(&v.check.as_str()))
    {
        let anomalies = v
            .details
            .get("anomalies")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        for a in anomalies
            .iter()
            .filter(|a| a.get("group").and_then(Value::as_str) == Some(g.group.as_str()))
            .take(ANOMALIES_SHOWN_MAX)
        {
            rows.push(row_of(&v.check, a, g));
        }
    }
    rows
}

fn s<'a>(v: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(v, |v, k| v.get(k))
}

fn text(v: &Value, path: &[&str]) -> String {
    match s(v, path) {
        Some(Value::String(x)) => x.clone(),
        Some(Value::Null) | None => "?".into(),
        Some(x) => x.to_string(),
    }
}

/// `consumer-1 (m1, generation 3)` from an object with `process`/`client`, `member_id` and
/// `generation`.
fn member_of(v: &Value, generation: Option<&Value>) -> String {
    let process = s(v, &["process"])
        .or_else(|| s(v, &["client"]))
        .and_then(Value::as_str)
        .unwrap_or("?");
    let member = s(v, &["member_id"]).and_then(Value::as_str);
    let generation = s(v, &["generation"]).or(generation).and_then(Value::as_i64);
    match (member, generation) {
        (Some(m), Some(g)) => format!("{process} (`{m}`, generation {g})"),
        (Some(m), None) => format!("{process} (`{m}`)"),
        (None, Some(g)) => format!("{process} (generation {g})"),
        (None, None) => process.to_string(),
    }
}

/// The last acknowledged commit of `tp` at or before `t`, in words.
fn last_commit_before(g: &GroupSummary, tp: &str, t: Option<u64>) -> String {
    let Some(t) = t else {
        return "—".into();
    };
    let last = g
        .acked
        .iter()
        .filter(|(p, at, ..)| p.to_string() == tp && *at <= t)
        .next_back();
    match last {
        None => format!("no commit of {tp} acknowledged before t={t} ms"),
        Some((_, at, node, generation, offset)) => format!(
            "last acknowledged commit before: offset {offset} by {node}{} at t={at} ms",
            generation.map_or(String::new(), |x| format!(" (generation {x})"))
        ),
    }
}

fn row_of(check: &str, a: &Value, g: &GroupSummary) -> ViolationRow {
    let time = |v: &Value| v.as_u64();
    match check {
        "commit-validity" => {
            let offsets: Vec<String> = s(a, &["offsets"])
                .and_then(Value::as_array)
                .map(|os| {
                    os.iter()
                        .map(|o| format!("{} offset {}", text(o, &["tp"]), text(o, &["offset"])))
                        .collect()
                })
                .unwrap_or_default();
            let tps: BTreeSet<String> = s(a, &["offsets"])
                .and_then(Value::as_array)
                .map(|os| os.iter().map(|o| text(o, &["tp"])).collect())
                .unwrap_or_default();
            ViolationRow {
                check: check.into(),
                tp: tps.into_iter().collect::<Vec<_>>().join(", "),
                time_ms: s(a, &["acknowledged", "time_ms"]).and_then(time),
                members: member_of(a, None),
                commit: format!(
                    "{} commit of {}, sent t={} ms, acknowledged t={} ms",
                    text(a, &["mode"]),
                    offsets.join(", "),
                    text(a, &["sent", "time_ms"]),
                    text(a, &["acknowledged", "time_ms"])
                ),
            }
        }
        "at-least-once" => {
            let tp = text(a, &["tp"]);
            let p = s(a, &["passed_by"]).cloned().unwrap_or(Value::Null);
            ViolationRow {
                check: check.into(),
                time_ms: s(&p, &["acknowledged", "time_ms"]).and_then(time),
                members: member_of(&p, None),
                commit: format!(
                    "commit of offset {} (sent t={} ms, acknowledged t={} ms) passed {} \
                     unprocessed record(s); final committed offset {}",
                    text(&p, &["offset"]),
                    text(&p, &["sent", "time_ms"]),
                    text(&p, &["acknowledged", "time_ms"]),
                    text(a, &["unprocessed_count"]),
                    text(a, &["final_committed"])
                ),
                tp,
            }
        }
        "revoke-before-reassign" => {
            let tp = text(a, &["tp"]);
            let t = s(a, &["time_ms"]).and_then(time);
            let to_generation = s(a, &["generation"]);
            let from = s(a, &["from"]).cloned().unwrap_or(Value::Null);
            let to = s(a, &["to"]).cloned().unwrap_or(Value::Null);
            ViolationRow {
                check: check.into(),
                commit: last_commit_before(g, &tp, t),
                members: format!(
                    "from {} to {}",
                    member_of(&from, None),
                    member_of(&to, to_generation)
                ),
                time_ms: t,
                tp,
            }
        }
        _ => {
            // exclusive-assignment: `assignment` (one generation, several members) or
            // `ownership` (two owners at once).
            let tp = text(a, &["tp"]);
            let (t, members) = match s(a, &["kind"]).and_then(Value::as_str) {
                Some("ownership") => (
                    s(a, &["time_ms"]).and_then(time),
                    s(a, &["owners"])
                        .and_then(Value::as_array)
                        .map(|os| {
                            os.iter()
                                .map(|o| member_of(o, None))
                                .collect::<Vec<_>>()
                                .join(" and ")
                        })
                        .unwrap_or_default(),
                ),
                _ => (
                    s(a, &["event", "time_ms"]).and_then(time),
                    format!(
                        "{} in generation {}",
                        s(a, &["members"])
                            .and_then(Value::as_array)
                            .map(|ms| {
                                ms.iter()
                                    .filter_map(Value::as_str)
                                    .map(|m| format!("`{m}`"))
                                    .collect::<Vec<_>>()
                                    .join(" and ")
                            })
                            .unwrap_or_default(),
                        text(a, &["generation"])
                    ),
                ),
            };
            ViolationRow {
                check: check.into(),
                commit: last_commit_before(g, &tp, t),
                members,
                time_ms: t,
                tp,
            }
        }
    }
}

fn write_violations(out: &mut String, run: &RunResult, g: &GroupSummary) {
    let rows = violation_rows(&run.checks.violations, g);
    if rows.is_empty() {
        return;
    }
    out.push_str(
        "**Violations of the group checks**\n\n| check | partition | t (ms) | member and generation | commit involved |\n|---|---|---|---|---|\n",
    );
    for r in &rows {
        let _ = writeln!(
            out,
            "| `{}` | {} | {} | {} | {} |",
            r.check,
            cell(&r.tp),
            r.time_ms.map_or("—".to_string(), |t| t.to_string()),
            cell(&r.members),
            cell(&r.commit)
        );
    }
    out.push('\n');
}

#[cfg(test)]
#[path = "groups_tests.rs"]
mod tests;
