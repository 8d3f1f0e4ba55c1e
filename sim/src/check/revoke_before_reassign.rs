//! `revoke-before-reassign`: a partition reaches its new owner only after its old owner gave it
//! up.
//!
//! **Rule.** Per group, when a partition moves from member A (which took it in generation `g`)
//! to member B (generation `g' > g`):
//! 1. *At the new owner*: B's `partitions-assigned` of the partition (its
//!    `onPartitionsAssigned` ran) comes only after A's `partitions-revoked` of it
//!    (`onPartitionsRevoked` returned, the workload's commit-on-revoke done), A's
//!    `partitions-lost`, A's removal from the group by the coordinator (`group-member-removed`:
//!    then A is a zombie, see `exclusive-assignment`), or A's process crash.
//! 2. *At the coordinator*: a generation's stored assignment (`group-assignment-completed`)
//!    never gives the partition to B while A, also a member of that generation, still owns it
//!    by its own account. An eager member revokes everything before it rejoins
//!    (ConsumerCoordinator `onJoinPrepare`), so this holds trivially; with the cooperative
//!    protocol (KIP-429, `cooperative-sticky`) members rejoin *keeping* their partitions, so
//!    the leader must withhold a moving partition for one round: the first rebalance takes it
//!    from A (A revokes it after its SyncGroup and rejoins), the second gives it to B
//!    (ConsumerCoordinator `onJoinComplete` revokes owned − assigned and `requestRejoin`s;
//!    `validateCooperativeAssignment` refuses an assignment that moves a partition still owned
//!    elsewhere; KAFKA-14639: a partition revoked and assigned in the same round).
//!
//! **Source.** KIP-429 ("Incremental Cooperative Rebalancing"), GROUPS-AND-TRANSACTIONS.md A2
//! and A4 story 5; the eager protocol's revoke-before-join in ConsumerCoordinator.java.
//!
//! **What is allowed.** A removed member (session or rebalance timeout, LeaveGroup, a fenced
//! static instance) need not revoke: the coordinator already gave up on it, and Kafka fences its
//! commits (`commit-validity`), not its fetches. Likewise a member that takes a partition in a
//! generation *older* than the current owner's (a paused zombie handling a stale SyncGroup
//! answer) moves nothing under this rule. A crashed process owns nothing. A member that
//! keeps a partition across generations (cooperative, sticky) moves nothing.

use super::group_view::{who, Change, GroupWalk, CRASH_ACTIONS};
use super::lesson::{Lesson, Prevention};
use super::{violation, CheckInput, Checker, Violation};
use crate::history::EventRecord;
use ksim_model::event::Event;
use ksim_model::types::{NodeId, TopicPartition};
use serde_json::json;
use std::collections::BTreeSet;

/// See the module documentation.
pub struct RevokeBeforeReassign;

/// When and how `node` (member `member_id`) gave up `tp`, searching `events` from `from`:
/// `revoked it at t=.. ms`, `lost it ...`, `crashed ...`, `was removed ...`.
fn released(
    events: &[EventRecord],
    from: usize,
    node: NodeId,
    member_id: &str,
    tp: &TopicPartition,
) -> Option<(u64, &'static str)> {
    events.iter().skip(from).find_map(|r| match &r.event {
        Event::PartitionsRevoked { partitions, .. }
            if r.node == node && partitions.contains(tp) =>
        {
            Some((r.time_ms, "revoked it"))
        }
        Event::PartitionsLost { partitions, .. } if r.node == node && partitions.contains(tp) => {
            Some((r.time_ms, "lost it"))
        }
        Event::Fault { action, nodes, .. }
            if CRASH_ACTIONS.contains(&action.as_str())
                && nodes.iter().any(|n| NodeId::parse(n) == Some(node)) =>
        {
            Some((r.time_ms, "crashed"))
        }
        Event::GroupMemberRemoved { member_id: m, .. } if m == member_id => {
            Some((r.time_ms, "was removed from the group"))
        }
        _ => None,
    })
}

/// `, and consumer-0 revoked it only at t=350 ms` / `, and consumer-0 never gave it up`.
fn release_clause(found: Option<(u64, &str)>, node: NodeId) -> (String, serde_json::Value) {
    match found {
        Some((t, how)) => (
            format!("; {node} {how} only at t={t} ms"),
            json!({ "time_ms": t, "how": how }),
        ),
        None => (
            format!("; {node} still owned it at the end of the run"),
            serde_json::Value::Null,
        ),
    }
}

impl Checker for RevokeBeforeReassign {
    fn name(&self) -> &'static str {
        "revoke-before-reassign"
    }

    fn statement(&self) -> &'static str {
        "a partition is given to its new owner only after its old owner revoked it, lost it or \
         was removed from the group"
    }

    fn lesson(&self) -> Lesson {
        Lesson {
            intro: "A partition reached its new owner while its old owner, still a member of \
                    the group, had not revoked it: for a while both processed it. The eager \
                    protocol revokes everything before rejoining; the cooperative one (KIP-429) \
                    withholds a moving partition for one rebalance so that its old owner can \
                    commit and revoke it first.",
            prevention: Prevention::GroupProtocol,
        }
    }

    fn skip_reason(&self, input: &CheckInput) -> Option<String> {
        super::group_view::without_groups(input, "no partition ever moves between members")
    }

    fn check(&self, input: &CheckInput) -> Vec<Violation> {
        let mut walk = GroupWalk::default();
        let mut anomalies = Vec::new();
        // (group, partition, old owner, new owner's member id) already reported.
        let mut reported: BTreeSet<(String, TopicPartition, NodeId, String)> = BTreeSet::new();
        for (i, r) in input.events.iter().enumerate() {
            match walk.apply(r) {
                Change::Completed { group } => {
                    let Some(latest) = walk.groups.get(&group).and_then(|g| g.latest.clone())
                    else {
                        continue;
                    };
                    for b in &latest.members {
                        for tp in &b.partitions {
                            for (a, va, oa) in walk.owners(&group, tp) {
                                if va.member_id == b.member_id
                                    || !latest.has_member(&va.member_id)
                                    || walk.not_current(a).is_some()
                                {
                                    continue;
                                }
                                if !reported.insert((
                                    group.clone(),
                                    tp.clone(),
                                    a,
                                    b.member_id.clone(),
                                )) {
                                    continue;
                                }
                                let (clause, rel) = release_clause(
                                    released(input.events, i + 1, a, &va.member_id, tp),
                                    a,
                                );
                                let sentence = format!(
                                    "generation {} of group {group} gave {tp} to {} (member {}) \
                                     at t={} ms while {}, also a member of generation {}, still \
                                     owned it (since t={} ms): the assignment must withhold a \
                                     moving partition until its owner revokes it{clause}",
                                    latest.generation,
                                    b.client,
                                    b.member_id,
                                    r.time_ms,
                                    who(a, &va.member_id, oa.generation),
                                    latest.generation,
                                    oa.since_ms,
                                );
                                let data = json!({
                                    "kind": "assignment",
                                    "group": group,
                                    "tp": tp.to_string(),
                                    "generation": latest.generation,
                                    "time_ms": r.time_ms,
                                    "to": { "client": b.client, "member_id": b.member_id },
                                    "from": { "process": a.to_string(), "member_id": va.member_id,
                                              "generation": oa.generation, "since_ms": oa.since_ms },
                                    "released": rel,
                                });
                                anomalies.push((sentence, data));
                            }
                        }
                    }
                }
                Change::Assigned {
                    node: b,
                    group,
                    partitions,
                } => {
                    let Some(vb) = walk.members.get(&b) else {
                        continue;
                    };
                    for tp in &partitions {
                        for (a, va, oa) in walk.owners(&group, tp) {
                            if a == b {
                                continue;
                            }
                            let removed = walk
                                .groups
                                .get(&group)
                                .is_some_and(|g| g.removed.contains_key(&va.member_id));
                            // The rule is about moves into a newer generation. A member
                            // that applies an older generation's assignment is a zombie (a
                            // paused client handling its SyncGroup answer after the group
                            // moved on, `consumer-group-under-faults` seed 150040): Kafka does
                            // not fence it, and `exclusive-assignment` judges it.
                            if removed || vb.generation < oa.generation {
                                continue;
                            }
                            if !reported.insert((
                                group.clone(),
                                tp.clone(),
                                a,
                                vb.member_id.clone(),
                            )) {
                                continue;
                            }
                            let (clause, rel) = release_clause(
                                released(input.events, i + 1, a, &va.member_id, tp),
                                a,
                            );
                            let sentence = format!(
                                "{tp} of group {group} moved from {} to {}: {b}'s \
                                 onPartitionsAssigned ran at t={} ms while {a} still owned it \
                                 (since t={} ms) and had neither revoked nor lost it nor been \
                                 removed from the group{clause}",
                                who(a, &va.member_id, oa.generation),
                                who(b, &vb.member_id, vb.generation),
                                r.time_ms,
                                oa.since_ms,
                            );
                            let data = json!({
                                "kind": "assigned",
                                "group": group,
                                "tp": tp.to_string(),
                                "time_ms": r.time_ms,
                                "to": { "process": b.to_string(), "member_id": vb.member_id,
                                        "generation": vb.generation },
                                "from": { "process": a.to_string(), "member_id": va.member_id,
                                          "generation": oa.generation, "since_ms": oa.since_ms },
                                "released": rel,
                            });
                            anomalies.push((sentence, data));
                        }
                    }
                }
                Change::Other | Change::None => {}
            }
        }
        violation(self.name(), None, anomalies, serde_json::Map::new())
    }
}

#[cfg(test)]
mod tests {
    use super::super::group_view::testkit::Events;
    use super::super::testkit::check_history_events;
    use super::*;

    fn check(e: &Events) -> Vec<Violation> {
        check_history_events(&RevokeBeforeReassign, &[], &e.0)
    }

    /// Generation 1: consumer-0 owns events-0 and events-1, consumer-1 nothing.
    fn generation_one() -> Events {
        let mut e = Events::default();
        e.state(0, "CompletingRebalance", 1)
            .completed(10, 1, &[(0, &[0, 1]), (1, &[])])
            .assigned(20, 0, 1, &[0, 1]);
        e
    }

    #[test]
    fn cooperative_withholding_one_round_passes() {
        let mut e = generation_one();
        e.state(100, "CompletingRebalance", 2)
            .completed(110, 2, &[(0, &[0]), (1, &[])])
            .revoked(115, 0, 2, &[1])
            .state(200, "CompletingRebalance", 3)
            .completed(210, 3, &[(0, &[0]), (1, &[1])])
            .assigned(220, 1, 3, &[1]);
        assert!(check(&e).is_empty(), "{:?}", check(&e));
    }

    #[test]
    fn eager_revoke_before_rejoin_passes() {
        let mut e = generation_one();
        e.revoked(90, 0, 1, &[0, 1])
            .state(100, "CompletingRebalance", 2)
            .completed(110, 2, &[(0, &[0]), (1, &[1])])
            .assigned(120, 0, 2, &[0])
            .assigned(120, 1, 2, &[1]);
        assert!(check(&e).is_empty(), "{:?}", check(&e));
    }

    #[test]
    fn moving_a_partition_in_the_same_round_fails_at_the_coordinator() {
        // KAFKA-14639: generation 2 hands events-1 to consumer-1 while consumer-0, which rejoined
        // keeping it (cooperative), has not revoked it yet; it revokes it just after.
        let mut e = generation_one();
        e.state(100, "CompletingRebalance", 2)
            .completed(110, 2, &[(0, &[0]), (1, &[1])])
            .revoked(115, 0, 2, &[1])
            .assigned(120, 1, 2, &[1]);
        let v = check(&e);
        assert_eq!(v.len(), 1, "{v:?}");
        assert_eq!(v[0].details["count"], 1, "reported once: {v:?}");
        assert_eq!(
            v[0].message,
            "generation 2 of group g gave events-1 to consumer-1 (member m1) at t=110 ms while \
             consumer-0 (member m0, generation 1), also a member of generation 2, still owned it \
             (since t=20 ms): the assignment must withhold a moving partition until its owner \
             revokes it; consumer-0 revoked it only at t=115 ms"
        );
    }

    #[test]
    fn a_new_owner_assigned_before_the_old_one_revoked_fails() {
        // The old owner is not in generation 2 (so the coordinator check does not see it) and
        // was never removed: it still owns events-1 when consumer-1 takes it.
        let mut e = generation_one();
        e.state(100, "CompletingRebalance", 2)
            .completed(110, 2, &[(1, &[0, 1])])
            .assigned(120, 1, 2, &[1])
            .revoked(300, 0, 1, &[0, 1]);
        let v = check(&e);
        assert_eq!(v.len(), 1, "{v:?}");
        assert_eq!(
            v[0].message,
            "events-1 of group g moved from consumer-0 (member m0, generation 1) to consumer-1 \
             (member m1, generation 2): consumer-1's onPartitionsAssigned ran at t=120 ms while \
             consumer-0 still owned it (since t=20 ms) and had neither revoked nor lost it nor \
             been removed from the group; consumer-0 revoked it only at t=300 ms"
        );
        assert_eq!(v[0].details["anomalies"][0]["released"]["time_ms"], 300);
    }

    /// consumer-group-under-faults seed 150040: consumer-1, paused, handles generation 1's
    /// SyncGroup answer after consumer-0 took events-1 in generation 2. That stale take is a
    /// zombie's, not a move into a newer generation.
    #[test]
    fn a_zombie_taking_a_partition_in_an_older_generation_moves_nothing() {
        let mut e = Events::default();
        e.state(0, "CompletingRebalance", 2)
            .completed(10, 2, &[(0, &[0, 1])])
            .state(10, "Stable", 2)
            .assigned(20, 0, 2, &[0, 1])
            .assigned(120, 1, 1, &[1]);
        assert!(check(&e).is_empty(), "{:?}", check(&e));
    }

    #[test]
    fn a_removed_or_crashed_old_owner_need_not_revoke() {
        let mut e = generation_one();
        e.removed(90, 0, "session-timeout", 1)
            .state(100, "CompletingRebalance", 2)
            .completed(110, 2, &[(1, &[0, 1])])
            .assigned(120, 1, 2, &[0, 1]);
        assert!(check(&e).is_empty(), "{:?}", check(&e));
        let mut e = generation_one();
        e.killed(90, 0)
            .state(100, "CompletingRebalance", 2)
            .completed(110, 2, &[(1, &[0, 1])])
            .assigned(120, 1, 2, &[0, 1]);
        assert!(check(&e).is_empty(), "{:?}", check(&e));
    }
}
