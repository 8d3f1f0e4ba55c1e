//! `commit-validity`: every offset commit the group coordinator accepted from a subscribe-mode
//! member came from a member of the current generation, for partitions it owned, and did not
//! pass what it had consumed.
//!
//! **Rule.** For every `ok` `commit` operation sent with a generation and a member id (a
//! consumer in subscribe mode; assign-mode commits carry neither and are not judged):
//! 1. *Generation*: the commit's generation was the group's current generation at the
//!    coordinator at some moment between the commit's invoke and its `ok` (the coordinator's
//!    `group-state-changed` events give the generation; Kafka increments it when a join phase
//!    ends, so during PreparingRebalance the old generation's commits are still accepted).
//! 2. *Member*: the member id was a member of that generation (listed in its stored
//!    assignment, or assigned partitions in it by its own `partitions-assigned`: a static
//!    member that replaced an older instance without a rebalance) and the coordinator had not
//!    removed it (`group-member-removed`) before the commit was sent, unless the coordinator
//!    listed it again after that removal and before the commit was acknowledged (the commit
//!    may be retried in between): a stored assignment (`group-assignment-completed`) naming
//!    it, or a coordinator loading the group (`group-state-changed` from `Dead`) in the
//!    generation of the last stored assignment naming it. A coordinator that takes the group
//!    over (another broker, or the same one re-elected leader of the offsets partition) loads
//!    its last stored metadata (Kafka's `GroupMetadataManager` loading
//!    `__consumer_offsets`), so a removal never stored is undone, and a member still
//!    heartbeating with that id is a member again.
//! 3. *Partitions*: every committed partition was assigned to that member in that generation,
//!    or (cooperative, KIP-429: commit-on-revoke after the SyncGroup that takes a partition
//!    away) the member still owned it by its own account when it sent the commit and the
//!    generation gave it to no other member.
//! 4. *Offsets*: no committed offset is beyond what the committing process had consumed of the
//!    partition when it sent the commit: one past the last record its polls returned, or a
//!    position it was given (its group's committed offset read by an `offset-fetch`, a seek, a
//!    reset by `auto.offset.reset`), or an offset its group had committed before.
//!
//! **Source.** GROUPS-AND-TRANSACTIONS.md A4, invariants I2 ("an offset commit is accepted only
//! from an owner of that partition in the current generation") and I3 ("the committed offset
//! never passes what the committer has processed"; consumed, here: passing what it processed is
//! `at-least-once`'s business); Kafka's ClassicGroup.java `validateOffsetCommit`
//! (ILLEGAL_GENERATION, UNKNOWN_MEMBER_ID, FENCED_INSTANCE_ID), and the client's
//! `CommitFailedException`. Kafka's system test `verifiable_consumer.py` asserts "committed
//! offset <= position".
//!
//! **A zombie.** A member paused past its session, or cut off from the coordinator only, does
//! not know it was removed; it may keep fetching and processing its old partitions (Kafka does
//! not fence fetches) and then commit them: the coordinator must refuse that commit. With the
//! broker switch `sim.group.offset-commit-fencing = false` it accepts it (the historic bug the
//! `zombie-consumer-commit` scenario shows): the check then still reports the zombie's commit,
//! and its message says that the configuration let it in.
//!
//! **What is allowed.** Commits that failed (fenced: ILLEGAL_GENERATION, UNKNOWN_MEMBER_ID,
//! REBALANCE_IN_PROGRESS) or whose outcome is unknown are not judged: only acknowledged commits
//! change the group's offsets. When the run logged no generation change for the group, rule 1
//! is not judged; when it stored no assignment for the generation, rules 2 and 3 are not.

use super::group_view::{offset_commit_fencing, GroupWalk, MemberView};
use super::lesson::{Lesson, Prevention};
use super::{violation, CheckInput, Checker, Violation};
use crate::history::pairs;
use ksim_model::event::{CommitOffset, Event, OpType, OpValue};
use ksim_model::types::{BrokerId, NodeId, Offset, TopicPartition};
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};

/// See the module documentation.
pub struct CommitValidity;

/// What the coordinator knew about one group, from the events.
#[derive(Default)]
struct Coordinator {
    /// (time, generation, coordinator broker), in event order. A stale coordinator (a broker
    /// that has not yet learnt it lost the offsets partition) may still move its own copy of
    /// the group while the new one runs another: a commit is judged against the generations of
    /// the broker that acknowledged it.
    generations: Vec<(u64, i32, BrokerId)>,
    /// Per generation, per member id: (client, partitions) from stored assignments and the
    /// members' own `partitions-assigned`.
    members: BTreeMap<i32, BTreeMap<String, (String, BTreeSet<TopicPartition>)>>,
    /// Per member id, its removals: (time, reason, coordinator broker), in time order. A stale
    /// coordinator's removal (a paused broker that expires its copy's sessions before it learns
    /// it lost the offsets partition) does not bind the real one: a commit is judged by the
    /// removals of the broker that acknowledged it (`consumer-group-under-faults` seed 150208).
    removed: BTreeMap<String, Vec<(u64, String, BrokerId)>>,
    /// Per member id, the times the coordinator listed it: stored assignments naming it, and
    /// loads of the group in the generation of the last stored assignment naming it.
    stored: BTreeMap<String, Vec<u64>>,
    /// The last stored assignment: (generation, member ids).
    last_stored: Option<(i32, Vec<String>)>,
}

fn coordinators(input: &CheckInput) -> BTreeMap<String, Coordinator> {
    let mut out: BTreeMap<String, Coordinator> = BTreeMap::new();
    for r in input.events {
        match &r.event {
            Event::GroupStateChanged {
                group,
                broker,
                generation,
                from,
                to,
                ..
            } => {
                let c = out.entry(group.clone()).or_default();
                c.generations.push((r.time_ms, *generation, *broker));
                if from == "Dead" && to != "Empty" {
                    if let Some((_, ids)) = c.last_stored.as_ref().filter(|(g, _)| g == generation)
                    {
                        for id in ids {
                            c.stored.entry(id.clone()).or_default().push(r.time_ms);
                        }
                    }
                }
            }
            Event::GroupAssignmentCompleted {
                group,
                generation,
                members,
                ..
            } => {
                let c = out.entry(group.clone()).or_default();
                for m in members {
                    c.stored
                        .entry(m.member_id.clone())
                        .or_default()
                        .push(r.time_ms);
                }
                c.last_stored = Some((
                    *generation,
                    members.iter().map(|m| m.member_id.clone()).collect(),
                ));
                let gen = c.members.entry(*generation).or_default();
                for m in members {
                    let e = gen
                        .entry(m.member_id.clone())
                        .or_insert_with(|| (m.client.clone(), BTreeSet::new()));
                    e.1.extend(m.partitions.iter().cloned());
                }
            }
            Event::PartitionsAssigned {
                group,
                member_id,
                generation,
                partitions,
            } => {
                let c = out.entry(group.clone()).or_default();
                let e = c
                    .members
                    .entry(*generation)
                    .or_default()
                    .entry(member_id.clone())
                    .or_insert_with(|| (r.node.to_string(), BTreeSet::new()));
                e.1.extend(partitions.iter().cloned());
            }
            Event::GroupMemberRemoved {
                group,
                broker,
                member_id,
                reason,
                ..
            } => {
                out.entry(group.clone())
                    .or_default()
                    .removed
                    .entry(member_id.clone())
                    .or_default()
                    .push((r.time_ms, reason.clone(), *broker));
            }
            _ => {}
        }
    }
    out
}

impl Coordinator {
    /// The latest removal of `member_id` before `sent`, unless the coordinator listed the
    /// member again after it and no later than `acknowledged` (see the module documentation).
    /// Only `by`'s removals when given (the broker that acknowledged the commit).
    fn removed_before(
        &self,
        member_id: &str,
        sent: u64,
        acknowledged: u64,
        by: Option<BrokerId>,
    ) -> Option<(u64, &str)> {
        let last = self
            .removed
            .get(member_id)?
            .iter()
            .rev()
            .filter(|(_, _, b)| by.is_none_or(|by| by == *b))
            .find(|(t, _, _)| *t < sent)?;
        let readmitted = self
            .stored
            .get(member_id)
            .is_some_and(|ts| ts.iter().any(|t| *t > last.0 && *t <= acknowledged));
        (!readmitted).then_some((last.0, last.1.as_str()))
    }

    /// The generations current at some moment of `[from, to]` (empty when none is known).
    /// Only `by`'s generations when given (the broker that acknowledged the commit).
    fn generations_during(&self, from: u64, to: u64, by: Option<BrokerId>) -> BTreeSet<i32> {
        let mut out = BTreeSet::new();
        let mut at_start = None;
        for &(t, g, b) in &self.generations {
            if by.is_some_and(|by| by != b) {
                continue;
            }
            if t <= from {
                at_start = Some(g);
            } else if t <= to {
                out.insert(g);
            }
        }
        out.extend(at_start);
        out
    }

    /// The generation current at `t` and since when.
    fn generation_at(&self, t: u64, by: Option<BrokerId>) -> Option<(i32, u64)> {
        let mut current = None;
        for &(at, g, b) in &self.generations {
            if at > t {
                break;
            }
            if by.is_some_and(|by| by != b) {
                continue;
            }
            if current.is_none_or(|(c, _)| c != g) {
                current = Some((g, at));
            }
        }
        current
    }
}

/// What the committing process knew when it sent a commit (its invoke).
struct AtInvoke {
    /// Per partition, the highest position the process could have had.
    bound: BTreeMap<TopicPartition, Offset>,
    /// The partitions it owned by its own account, if its member id was the commit's.
    owned: BTreeSet<TopicPartition>,
}

/// Walks the history and the events together and records, for every subscribe-mode commit
/// invoke (by history index), what its process knew.
fn at_invokes(input: &CheckInput) -> BTreeMap<u64, AtInvoke> {
    let mut out = BTreeMap::new();
    let mut walk = GroupWalk::default();
    let mut next_event = 0;
    let mut bound: BTreeMap<(NodeId, TopicPartition), Offset> = BTreeMap::new();
    let mut group_committed: BTreeMap<(String, TopicPartition), Offset> = BTreeMap::new();
    fn raise(
        map: &mut BTreeMap<(NodeId, TopicPartition), Offset>,
        key: (NodeId, TopicPartition),
        o: Offset,
    ) {
        let e = map.entry(key).or_insert(o);
        if o > *e {
            *e = o;
        }
    }
    // The partitions `p` owned as member `member_id` by its own account, in `members`.
    fn owned_by(
        members: &BTreeMap<NodeId, MemberView>,
        p: NodeId,
        member_id: &str,
    ) -> BTreeSet<TopicPartition> {
        members
            .get(&p)
            .filter(|v| v.member_id == member_id)
            .map(|v| v.owned.keys().cloned().collect())
            .unwrap_or_default()
    }
    // The members' views before the events of the current millisecond. Events of the same
    // millisecond as an entry may have come before or after it (the two logs share no finer
    // clock): a commit counts as sent while the member owned a partition if it owned it
    // before that millisecond's events or after them (a cooperative member's commit racing
    // its own `partitions-revoked`).
    let mut before_ms: Option<(u64, BTreeMap<NodeId, MemberView>)> = None;
    for entry in input.history {
        for same_ms in [false, true] {
            while let Some(r) = input.events.get(next_event) {
                if r.time_ms > entry.time_ms || (!same_ms && r.time_ms == entry.time_ms) {
                    break;
                }
                walk.apply(r);
                if let Event::ConsumerPositionReset { tp, to_offset, .. } = &r.event {
                    raise(&mut bound, (r.node, tp.clone()), *to_offset);
                }
                next_event += 1;
            }
            if !same_ms && before_ms.as_ref().is_none_or(|(t, _)| *t != entry.time_ms) {
                before_ms = Some((entry.time_ms, walk.members.clone()));
            }
        }
        let p = entry.process;
        match (&entry.op.value, entry.op.op_type) {
            (OpValue::Poll { records }, OpType::Ok) => {
                for rec in records {
                    raise(&mut bound, (p, rec.tp.clone()), rec.offset.next());
                }
            }
            (OpValue::Seek { tp, offset }, OpType::Ok) => {
                raise(&mut bound, (p, tp.clone()), *offset)
            }
            (OpValue::OffsetFetch { offsets, .. }, OpType::Ok) => {
                for o in offsets {
                    if let Some(c) = o.committed {
                        raise(&mut bound, (p, o.tp.clone()), c);
                    }
                }
            }
            (
                OpValue::Commit {
                    group,
                    offsets,
                    generation: Some(_),
                    member_id: Some(member_id),
                    ..
                },
                OpType::Invoke,
            ) => {
                let mut b = BTreeMap::new();
                for CommitOffset { tp, .. } in offsets {
                    let own = bound.get(&(p, tp.clone())).copied();
                    let grp = group_committed.get(&(group.clone(), tp.clone())).copied();
                    if let Some(o) = own.max(grp) {
                        b.insert(tp.clone(), o);
                    }
                }
                let mut owned = owned_by(&walk.members, p, member_id);
                if let Some((_, members)) = &before_ms {
                    owned.extend(owned_by(members, p, member_id));
                }
                out.insert(entry.index, AtInvoke { bound: b, owned });
            }
            (OpValue::Commit { group, offsets, .. }, OpType::Ok) => {
                for o in offsets {
                    let e = group_committed
                        .entry((group.clone(), o.tp.clone()))
                        .or_insert(o.offset);
                    if o.offset > *e {
                        *e = o.offset;
                    }
                }
            }
            _ => {}
        }
    }
    out
}

impl Checker for CommitValidity {
    fn name(&self) -> &'static str {
        "commit-validity"
    }

    fn statement(&self) -> &'static str {
        "every accepted commit came from a member of the current generation, for partitions it \
         was assigned, and not beyond what it had consumed"
    }

    fn lesson(&self) -> Lesson {
        Lesson {
            intro: "The group coordinator accepted an offset commit it should have refused: \
                    from a member of an older generation or one it had removed (a zombie that \
                    did not know it had lost its partitions), for a partition the member did \
                    not own, or past what the member had consumed. The group's committed \
                    offset then moved under the partition's real owner: records may be \
                    skipped by the next owner or processed twice.",
            prevention: Prevention::GroupCommitFencing,
        }
    }

    fn skip_reason(&self, input: &CheckInput) -> Option<String> {
        super::group_view::without_groups(input, "no commit carries a generation to judge")
    }

    fn notes(&self, input: &CheckInput) -> Vec<String> {
        if offset_commit_fencing(input) {
            return Vec::new();
        }
        vec![
            "the brokers run with `sim.group.offset-commit-fencing = false`: the coordinator \
             accepts a commit whatever its generation and member id, so a zombie member's \
             commits land and are expected to be reported here"
                .to_string(),
        ]
    }

    fn check(&self, input: &CheckInput) -> Vec<Violation> {
        let fencing = offset_commit_fencing(input);
        let coords = coordinators(input);
        let known = at_invokes(input);
        let empty = Coordinator::default();
        let mut anomalies = Vec::new();
        for pair in pairs(input.history) {
            let Some(done) = pair.completion.filter(|c| c.op.op_type == OpType::Ok) else {
                continue;
            };
            let OpValue::Commit {
                group,
                mode,
                offsets,
                generation: Some(generation),
                member_id: Some(member_id),
                ..
            } = &pair.invoke.op.value
            else {
                continue;
            };
            let acked_by = match &done.op.value {
                OpValue::Commit {
                    coordinator: Some(b),
                    ..
                } => Some(*b),
                _ => None,
            };
            let by = acked_by.map_or(String::new(), |b| format!(" by {}", NodeId::Broker(b)));
            let coord = coords.get(group).unwrap_or(&empty);
            let process = pair.invoke.process;
            let sent_at = pair.invoke.time_ms;
            let mut zombie = Vec::new();
            let current = coord.generations_during(sent_at, done.time_ms, acked_by);
            if !current.is_empty() && !current.contains(generation) {
                let now = match coord.generation_at(sent_at, acked_by) {
                    Some((g, since)) => format!("generation {g} (since t={since} ms)"),
                    None => "no generation yet".to_string(),
                };
                zombie.push(format!("the group was in {now}"));
            }
            if let Some((t, reason)) =
                coord.removed_before(member_id, sent_at, done.time_ms, acked_by)
            {
                zombie.push(format!(
                    "the coordinator had removed member {member_id} at t={t} ms ({reason})"
                ));
            }
            let members = coord.members.get(generation);
            if members.is_some_and(|m| !m.contains_key(member_id)) {
                zombie.push(format!(
                    "member {member_id} is not a member of generation {generation}"
                ));
            }
            let mut wrong = Vec::new();
            let at = known.get(&pair.invoke.index);
            for o in offsets {
                if let Some(members) = members {
                    let mine = members
                        .get(member_id)
                        .is_some_and(|(_, parts)| parts.contains(&o.tp));
                    let other = members
                        .iter()
                        .find(|(m, (_, parts))| *m != member_id && parts.contains(&o.tp));
                    let owned = at.is_some_and(|a| a.owned.contains(&o.tp));
                    if !(mine || owned && other.is_none()) {
                        wrong.push(match other {
                            Some((m, (client, _))) => format!(
                                "generation {generation} assigned {} to {client} (member {m}), \
                                 not to it",
                                o.tp
                            ),
                            None => {
                                format!("it was not assigned {} in generation {generation}", o.tp)
                            }
                        });
                    }
                }
                let bound = at.and_then(|a| a.bound.get(&o.tp)).copied();
                if bound.is_none_or(|b| o.offset > b) {
                    wrong.push(match bound {
                        Some(b) => format!(
                            "offset {} of {} is beyond what it had consumed (position at most {b})",
                            o.offset, o.tp
                        ),
                        None => format!(
                            "offset {} of {} is beyond what it had consumed (nothing of it)",
                            o.offset, o.tp
                        ),
                    });
                }
            }
            if zombie.is_empty() && wrong.is_empty() {
                continue;
            }
            let committed: Vec<String> = offsets
                .iter()
                .map(|o| format!("{} offset {}", o.tp, o.offset))
                .collect();
            let mut reasons = zombie.clone();
            reasons.extend(wrong.iter().cloned());
            let why = if zombie.is_empty() {
                String::new()
            } else if fencing {
                " (Kafka's coordinator refuses such a commit with ILLEGAL_GENERATION or \
                 UNKNOWN_MEMBER_ID: ClassicGroup.validateOffsetCommit)"
                    .to_string()
            } else {
                " (expected in this run: the brokers run with \
                 `sim.group.offset-commit-fencing = false`, which accepts a zombie's commit that \
                 Kafka refuses with ILLEGAL_GENERATION or UNKNOWN_MEMBER_ID)"
                    .to_string()
            };
            let sentence = format!(
                "{process} (member {member_id}, generation {generation}) committed {} of group \
                 {group} ({mode}, sent at t={sent_at} ms, acknowledged at t={} ms{by}), but {}{why}",
                committed.join(", "),
                done.time_ms,
                reasons.join("; ")
            );
            let data = json!({
                "group": group,
                "process": process.to_string(),
                "member_id": member_id,
                "generation": generation,
                "mode": mode,
                "offsets": offsets.iter().map(|o| json!({"tp": o.tp.to_string(), "offset": o.offset.0})).collect::<Vec<_>>(),
                "sent": { "index": pair.invoke.index, "time_ms": sent_at },
                "acknowledged": { "index": done.index, "time_ms": done.time_ms },
                "zombie": zombie,
                "invalid": wrong,
                "fencing": fencing,
            });
            anomalies.push((sentence, data));
        }
        violation(self.name(), None, anomalies, serde_json::Map::new())
    }
}

#[cfg(test)]
mod tests {
    use super::super::group_view::testkit::{mid, Events};
    use super::*;
    use crate::history::HistoryEntry;
    use ksim_model::event::{ClientOp, PolledRecord};
    use ksim_model::types::BrokerId;
    use std::collections::BTreeMap;

    fn tp(p: i32) -> TopicPartition {
        TopicPartition::new("events", p)
    }

    /// A history with explicit times.
    #[derive(Default)]
    struct H(Vec<HistoryEntry>);

    impl H {
        fn push(&mut self, t: u64, c: u32, op_type: OpType, op_id: u64, value: OpValue) {
            let index = self.0.len() as u64;
            self.0.push(HistoryEntry {
                index,
                time_ms: t,
                process: NodeId::Consumer(c),
                op: ClientOp {
                    op_type,
                    op_id,
                    value,
                    error: None,
                },
            });
        }

        fn poll(&mut self, t: u64, c: u32, p: i32, offsets: std::ops::Range<i64>) -> &mut Self {
            let id = self.0.len() as u64;
            self.push(t, c, OpType::Invoke, id, OpValue::Poll { records: vec![] });
            let records = offsets
                .map(|o| PolledRecord {
                    tp: tp(p),
                    offset: Offset(o),
                    value: 1000 + o as u64,
                })
                .collect();
            self.push(t, c, OpType::Ok, id, OpValue::Poll { records });
            self
        }

        /// A commit by consumer `c` sent at `t` and acknowledged at `t + 5` (or failed).
        fn commit(
            &mut self,
            t: u64,
            c: u32,
            generation: i32,
            offsets: &[(i32, i64)],
            outcome: OpType,
        ) -> &mut Self {
            let id = self.0.len() as u64;
            let v = |coordinator| OpValue::Commit {
                group: "g".into(),
                mode: "sync".into(),
                offsets: offsets
                    .iter()
                    .map(|&(p, o)| CommitOffset {
                        tp: tp(p),
                        offset: Offset(o),
                    })
                    .collect(),
                coordinator,
                generation: Some(generation),
                member_id: Some(mid(c)),
            };
            self.push(t, c, OpType::Invoke, id, v(None));
            let by = (outcome == OpType::Ok).then_some(BrokerId(0));
            self.push(t + 5, c, outcome, id, v(by));
            self
        }
    }

    fn check_with(h: &H, e: &Events, fencing: Option<bool>) -> Vec<Violation> {
        let logs = BTreeMap::new();
        let scenario = fencing.map(|f| {
            let mut s = crate::scenario::parse(
                r#"
                [scenario]
                name = "s"
                duration_ms = 1000
                seeds = [1]
                [cluster]
                brokers = 1
                [[topics]]
                name = "events"
                replication_factor = 1
                [[consumers]]
                topics = ["events"]
                "#,
                "s.toml",
            )
            .expect("valid scenario");
            s.consumers[0].group = Some("g".into());
            s.cluster.broker_properties.insert(
                "sim.group.offset-commit-fencing".into(),
                ksim_model::config::PropValue::Bool(f),
            );
            s
        });
        let input = CheckInput {
            history: &h.0,
            events: &e.0,
            final_logs: &logs,
            scenario: scenario.as_ref(),
            snapshots: &[],
        };
        assert_eq!(CommitValidity.skip_reason(&input), None);
        CommitValidity.check(&input)
    }

    fn check(h: &H, e: &Events) -> Vec<Violation> {
        check_with(h, e, None)
    }

    /// Generation 1: consumer-0 owns events-0 and events-1; the test then rebalances.
    fn generation_one() -> Events {
        let mut e = Events::default();
        e.state(0, "CompletingRebalance", 1)
            .completed(10, 1, &[(0, &[0, 1])])
            .state(10, "Stable", 1)
            .assigned(20, 0, 1, &[0, 1]);
        e
    }

    #[test]
    fn an_owner_committing_what_it_consumed_passes() {
        let e = generation_one();
        let mut h = H::default();
        h.poll(30, 0, 0, 0..10)
            .commit(40, 0, 1, &[(0, 10)], OpType::Ok)
            .poll(50, 0, 1, 0..3)
            .commit(60, 0, 1, &[(0, 10), (1, 3)], OpType::Ok);
        assert!(check(&h, &e).is_empty(), "{:?}", check(&h, &e));
    }

    /// A removal the coordinator never stored is undone by a coordinator that takes the group
    /// over (it loads the last stored generation): the member, still heartbeating with its id,
    /// is listed in the next stored assignment, and its commits in that generation are valid.
    /// Without that re-admission the same commit fails.
    #[test]
    fn a_member_readmitted_by_a_new_coordinator_may_commit_again() {
        let mut e = generation_one();
        e.removed(100, 0, "session-timeout", 1)
            .state(100, "PreparingRebalance", 1)
            // The coordinator fails before storing a generation 2; its successor loads
            // generation 1, with m0 in it.
            .state(300, "CompletingRebalance", 2)
            .completed(310, 2, &[(0, &[0, 1])])
            .state(310, "Stable", 2)
            .assigned(320, 0, 2, &[0, 1]);
        let mut h = H::default();
        h.poll(330, 0, 0, 0..10)
            .commit(340, 0, 2, &[(0, 10)], OpType::Ok);
        assert!(check(&h, &e).is_empty(), "{:?}", check(&h, &e));
        // Committed before the re-admission: the removal stands.
        let mut h = H::default();
        h.poll(30, 0, 0, 0..10)
            .commit(200, 0, 1, &[(0, 10)], OpType::Ok);
        let v = check(&h, &e);
        assert!(
            v.len() == 1 && v[0].message.contains("had removed member m0 at t=100 ms"),
            "{v:?}"
        );
    }

    /// consumer-group-under-faults seed 120099: the coordinator removes m0 during a rebalance,
    /// then reloads the group from its log (re-elected leader of the offsets partition) in the
    /// stored generation, which lists m0; m0's commit, sent before the load and retried after
    /// it, is accepted, as Kafka's would be. A commit acknowledged before the load still fails.
    #[test]
    fn a_member_restored_by_a_coordinator_load_may_commit() {
        let mut e = generation_one();
        e.removed(100, 0, "session-timeout", 1)
            .state(100, "PreparingRebalance", 1)
            .loaded(300, "Stable", 1);
        let mut h = H::default();
        h.poll(30, 0, 0, 0..10)
            .commit(200, 0, 1, &[(0, 10)], OpType::Ok);
        let v = check(&h, &e);
        assert!(
            v.len() == 1 && v[0].message.contains("had removed member m0 at t=100 ms"),
            "{v:?}"
        );
        // The same commit, acknowledged after the load (its retry reached the new coordinator).
        let mut late = H::default();
        late.poll(30, 0, 0, 0..10)
            .commit(200, 0, 1, &[(0, 10)], OpType::Info)
            .commit(350, 0, 1, &[(0, 10)], OpType::Ok);
        assert!(check(&late, &e).is_empty(), "{:?}", check(&late, &e));
        // Loaded in another generation: the removal stands.
        let mut moved = generation_one();
        moved
            .removed(100, 0, "session-timeout", 1)
            .loaded(300, "Stable", 2);
        let mut h = H::default();
        h.poll(30, 0, 0, 0..10)
            .commit(350, 0, 1, &[(0, 10)], OpType::Ok);
        assert!(!check(&h, &moved).is_empty());
    }

    /// consumer-group-under-faults seed 120081: two brokers each hold a copy of the group
    /// (one has not yet learnt it lost the offsets partition); a commit is judged against the
    /// generations of the broker that acknowledged it, not the other copy's.
    #[test]
    fn a_commit_is_judged_by_the_generations_of_the_coordinator_that_acknowledged_it() {
        let mut e = generation_one();
        // broker-1's copy of the group moves to generation 2; broker-0 stays in generation 1.
        e.loaded(200, "PreparingRebalance", 2);
        let mut h = H::default();
        h.poll(30, 0, 0, 0..10)
            .commit(300, 0, 1, &[(0, 10)], OpType::Ok);
        assert!(check(&h, &e).is_empty(), "{:?}", check(&h, &e));
        // broker-0 itself moving on still fails the same commit.
        e.state(250, "PreparingRebalance", 2);
        assert_eq!(check(&h, &e).len(), 1);
    }

    /// consumer-group-under-faults seed 150208: a paused broker that still held a stale copy of
    /// the group expired m0's session when it resumed; the real coordinator (broker-0) kept m0
    /// and acknowledged its commit. Only broker-0's own removal would make that commit a
    /// zombie's.
    #[test]
    fn a_stale_coordinators_removal_does_not_bind_the_coordinator_that_acknowledged() {
        let mut e = generation_one();
        e.push(
            100,
            NodeId::Broker(BrokerId(1)),
            Event::GroupMemberRemoved {
                group: "g".into(),
                broker: BrokerId(1),
                member_id: mid(0),
                reason: "session-timeout".into(),
                generation: 1,
            },
        );
        let mut h = H::default();
        h.poll(30, 0, 0, 0..10)
            .commit(200, 0, 1, &[(0, 10)], OpType::Ok);
        assert!(check(&h, &e).is_empty(), "{:?}", check(&h, &e));
        e.removed(150, 0, "session-timeout", 1);
        let v = check(&h, &e);
        assert!(
            v.len() == 1 && v[0].message.contains("had removed member m0 at t=150 ms"),
            "{v:?}"
        );
    }

    #[test]
    fn a_zombie_commit_accepted_after_the_generation_moved_on_fails() {
        let mut e = generation_one();
        e.removed(100, 0, "session-timeout", 1)
            .state(100, "PreparingRebalance", 1)
            .state(110, "CompletingRebalance", 2)
            .completed(120, 2, &[(1, &[0, 1])])
            .assigned(130, 1, 2, &[0, 1]);
        let mut h = H::default();
        h.poll(30, 0, 0, 0..10)
            // The zombie wakes up at t=200 and commits: refused (fail) is fine...
            .commit(200, 0, 1, &[(0, 10)], OpType::Fail);
        assert!(check(&h, &e).is_empty());
        // ... accepted is not.
        h.commit(210, 0, 1, &[(0, 10)], OpType::Ok);
        let v = check(&h, &e);
        assert_eq!(v.len(), 1, "{v:?}");
        assert_eq!(
            v[0].message,
            "consumer-0 (member m0, generation 1) committed events-0 offset 10 of group g (sync, \
             sent at t=210 ms, acknowledged at t=215 ms by broker-0), but the group was in \
             generation 2 (since t=110 ms); the coordinator had removed member m0 at t=100 ms \
             (session-timeout) (Kafka's coordinator refuses such a commit with \
             ILLEGAL_GENERATION or UNKNOWN_MEMBER_ID: ClassicGroup.validateOffsetCommit)"
        );
        // With fencing off, the message says the configuration let it in.
        let v = check_with(&h, &e, Some(false));
        assert!(
            v[0].message
                .contains("expected in this run: the brokers run with `sim.group.offset-commit-fencing = false`"),
            "{}",
            v[0].message
        );
    }

    #[test]
    fn an_old_generation_commit_during_preparing_rebalance_is_accepted() {
        let mut e = generation_one();
        e.state(100, "PreparingRebalance", 1)
            .state(150, "CompletingRebalance", 2);
        let mut h = H::default();
        h.poll(30, 0, 0, 0..10)
            .commit(120, 0, 1, &[(0, 10)], OpType::Ok)
            // Sent in generation 1, accepted while the join phase ended: unknown order, allowed.
            .commit(148, 0, 1, &[(0, 10)], OpType::Ok);
        assert!(check(&h, &e).is_empty(), "{:?}", check(&h, &e));
    }

    #[test]
    fn committing_a_partition_of_another_member_or_past_the_position_fails() {
        let mut e = Events::default();
        e.state(0, "CompletingRebalance", 1)
            .completed(10, 1, &[(0, &[0]), (1, &[1])])
            .state(10, "Stable", 1)
            .assigned(20, 0, 1, &[0])
            .assigned(20, 1, 1, &[1]);
        let mut h = H::default();
        h.poll(30, 0, 0, 0..10).poll(30, 1, 1, 0..4).commit(
            40,
            0,
            1,
            &[(0, 12), (1, 4)],
            OpType::Ok,
        );
        let v = check(&h, &e);
        assert_eq!(v.len(), 1, "{v:?}");
        assert_eq!(
            v[0].message,
            "consumer-0 (member m0, generation 1) committed events-0 offset 12, events-1 offset \
             4 of group g (sync, sent at t=40 ms, acknowledged at t=45 ms by broker-0), but \
             offset 12 of events-0 is beyond what it had consumed (position at most 10); \
             generation 1 assigned events-1 to consumer-1 (member m1), not to it; offset 4 of \
             events-1 is beyond what it had consumed (nothing of it)"
        );
    }

    #[test]
    fn commit_on_revoke_of_a_withheld_partition_passes() {
        // Cooperative: generation 2 takes events-1 from consumer-0 and gives it to nobody;
        // consumer-0 commits it in onPartitionsRevoked with generation 2.
        let mut e = generation_one();
        e.state(100, "CompletingRebalance", 2)
            .completed(110, 2, &[(0, &[0]), (1, &[])])
            .state(110, "Stable", 2)
            .assigned(115, 0, 2, &[]);
        let mut h = H::default();
        h.poll(30, 0, 1, 0..7)
            .commit(116, 0, 2, &[(1, 7)], OpType::Ok);
        let e2 = {
            let mut e2 = Events(e.0.clone());
            e2.revoked(125, 0, 2, &[1]);
            e2
        };
        assert!(check(&h, &e2).is_empty(), "{:?}", check(&h, &e2));
        // A commit sent in the very millisecond of the revocation may have gone first (the
        // history and the events share no finer clock; `partitioned-zombie-keeps-consuming`
        // seed 2: an async commit and the revoke both at t=33287 ms).
        let mut same_ms = H(h.0.clone());
        // (Another client's entry of that millisecond comes first in the history.)
        same_ms
            .poll(125, 1, 0, 0..1)
            .commit(125, 0, 2, &[(1, 7)], OpType::Ok);
        assert!(
            check(&same_ms, &e2).is_empty(),
            "{:?}",
            check(&same_ms, &e2)
        );
        // After the revocation the partition is no longer its own.
        h.commit(130, 0, 2, &[(1, 7)], OpType::Ok);
        let v = check(&h, &e2);
        assert_eq!(v.len(), 1, "{v:?}");
        assert!(
            v[0].message
                .contains("it was not assigned events-1 in generation 2"),
            "{}",
            v[0].message
        );
    }
}
