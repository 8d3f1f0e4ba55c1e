//! `exclusive-assignment`: no partition of a consumer group has two owners at once.
//!
//! **Rule.** Two parts, both per group:
//! 1. *The coordinator's assignment*: within one generation no partition is assigned to two
//!    members. Every `group-assignment-completed` of a generation (the leader's SyncGroup
//!    assignment the coordinator stored) is read; a partition listed under two member ids of
//!    the same generation is a violation. Source: GROUPS-AND-TRANSACTIONS.md A4, invariant I1
//!    ("within one generation, the assignment covers every subscribed partition exactly
//!    once"); Kafka's system test `verifiable_consumer_test.py` `valid_assignment` ("each
//!    partition is assigned exactly once"); the assignors' contract
//!    (`ConsumerPartitionAssignor.assign`), and the cooperative leader's own validation that
//!    refuses to give a partition to a new owner while another member still owns it
//!    (ConsumerCoordinator.java `validateCooperativeAssignment`, KAFKA-12984 for partitions
//!    claimed twice in one generation).
//! 2. *The members' own accounts*: at no moment do two consumers both own a partition
//!    according to their own `partitions-assigned` / `partitions-revoked` / `partitions-lost`
//!    events while both are members of the group's current generation. A member owns a
//!    partition from its `onPartitionsAssigned` to its `onPartitionsRevoked` /
//!    `onPartitionsLost` or its process's crash; it counts as a member of the current
//!    generation while the coordinator has not removed it (`group-member-removed`) and the
//!    latest stored assignment lists it (or is of its own generation: a static member that
//!    replaced an older instance, KIP-345). The state is judged after every event, in log
//!    order. Kafka guarantees this: eager members revoke everything before rejoining
//!    (ConsumerCoordinator `onJoinPrepare`), cooperative ones keep only what the new
//!    assignment leaves them, and the leader withholds a moving partition until its old owner
//!    revoked it (KIP-429; GROUPS-AND-TRANSACTIONS.md A2).
//!
//! **What is allowed: zombies.** Kafka does not promise single ownership at every instant: a
//! member the coordinator removed (its session expired during a GC pause, or only its link to
//! the coordinator was cut) does not know it until its next heartbeat or commit answers
//! UNKNOWN_MEMBER_ID / ILLEGAL_GENERATION, and meanwhile `poll()` keeps fetching its old
//! partitions (ClassicKafkaConsumer's `poll` does not wait for the coordinator;
//! GROUPS-AND-TRANSACTIONS.md A4 story 2: "assert I1 and I2, not single ownership at every
//! instant"). Kafka fences such a zombie's commits, not its fetches: that is `commit-validity`'s
//! business. So an overlap in which one owner is no longer a member of the current generation
//! is not a violation; the check counts such overlaps in a note (who, which partition, from
//! when to when), because they are where duplicate processing comes from.

use super::group_view::{who, Change, GroupWalk};
use super::lesson::{Lesson, Prevention};
use super::{at, event_json, violation, CheckInput, Checker, Violation};
use ksim_model::event::Event;
use ksim_model::types::{NodeId, TopicPartition};
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};

/// See the module documentation.
pub struct ExclusiveAssignment;

/// An overlap with a zombie: (group, partition, zombie, owner) → (from ms, why the zombie is
/// not current).
type ZombieOverlaps = BTreeMap<(String, TopicPartition, NodeId, NodeId), (u64, String)>;

/// Per (group, generation, partition): the member ids it was given to, with the member's
/// client and the index of the first event that gave it.
type Given = BTreeMap<(String, i32, TopicPartition), BTreeMap<String, (String, usize)>>;

/// What the walk found: violations, and the finished zombie overlaps as sentences.
struct Findings {
    anomalies: Vec<(String, serde_json::Value)>,
    zombies: Vec<String>,
}

fn analyse(input: &CheckInput) -> Findings {
    let mut anomalies = Vec::new();
    // Part 1: per (group, generation, partition), the members it was given to.
    let mut given: Given = BTreeMap::new();
    for (i, r) in input.events.iter().enumerate() {
        if let Event::GroupAssignmentCompleted {
            group,
            generation,
            members,
            ..
        } = &r.event
        {
            for m in members {
                for tp in &m.partitions {
                    given
                        .entry((group.clone(), *generation, tp.clone()))
                        .or_default()
                        .entry(m.member_id.clone())
                        .or_insert((m.client.clone(), i));
                }
            }
        }
    }
    for ((group, generation, tp), members) in &given {
        if members.len() < 2 {
            continue;
        }
        let listed: Vec<String> = members
            .iter()
            .map(|(m, (client, _))| format!("{client} (member {m})"))
            .collect();
        let first = members.values().map(|(_, i)| *i).min().unwrap_or(0);
        let record = &input.events[first];
        let sentence = format!(
            "generation {generation} of group {group} assigned {tp} to {} members: {} \
             (assignment stored by {})",
            members.len(),
            listed.join(", "),
            at(record)
        );
        let data = json!({
            "kind": "assignment",
            "group": group,
            "generation": generation,
            "tp": tp.to_string(),
            "members": members.keys().collect::<Vec<_>>(),
            "event": event_json(record),
        });
        anomalies.push((sentence, data));
    }

    // Part 2: the members' own accounts, judged after every event.
    let mut walk = GroupWalk::default();
    let mut reported: BTreeSet<(String, TopicPartition, NodeId, NodeId)> = BTreeSet::new();
    let mut zombies_open: ZombieOverlaps = BTreeMap::new();
    let mut zombies = Vec::new();
    for r in input.events {
        if walk.apply(r) == Change::None {
            continue;
        }
        let groups: BTreeSet<String> = walk.members.values().map(|v| v.group.clone()).collect();
        let mut still: BTreeSet<(String, TopicPartition, NodeId, NodeId)> = BTreeSet::new();
        for group in &groups {
            for tp in walk.owned_partitions(group) {
                let owners: Vec<_> = walk.owners(group, &tp).collect();
                if owners.len() < 2 {
                    continue;
                }
                for (i, (a, va, oa)) in owners.iter().enumerate() {
                    for (b, vb, ob) in &owners[i + 1..] {
                        let (na, nb) = (walk.not_current(*a), walk.not_current(*b));
                        match (na, nb) {
                            (None, None) => {
                                let key = (group.clone(), tp.clone(), *a, *b);
                                if !reported.insert(key) {
                                    continue;
                                }
                                let sentence = format!(
                                    "{} and {} both owned {tp} of group {group} at t={} ms, both \
                                     members of the current generation (since t={} ms and \
                                     t={} ms by their own onPartitionsAssigned)",
                                    who(*a, &va.member_id, oa.generation),
                                    who(*b, &vb.member_id, ob.generation),
                                    r.time_ms,
                                    oa.since_ms,
                                    ob.since_ms
                                );
                                let data = json!({
                                    "kind": "ownership",
                                    "group": group,
                                    "tp": tp.to_string(),
                                    "time_ms": r.time_ms,
                                    "owners": [
                                        { "process": a.to_string(), "member_id": va.member_id,
                                          "generation": oa.generation, "since_ms": oa.since_ms },
                                        { "process": b.to_string(), "member_id": vb.member_id,
                                          "generation": ob.generation, "since_ms": ob.since_ms },
                                    ],
                                });
                                anomalies.push((sentence, data));
                            }
                            (Some(why), None) | (None, Some(why)) => {
                                let (zombie, owner) = if walk.not_current(*a).is_some() {
                                    (*a, *b)
                                } else {
                                    (*b, *a)
                                };
                                let key = (group.clone(), tp.clone(), zombie, owner);
                                zombies_open.entry(key.clone()).or_insert((r.time_ms, why));
                                still.insert(key);
                            }
                            (Some(_), Some(_)) => {}
                        }
                    }
                }
            }
        }
        let ended: Vec<_> = zombies_open
            .keys()
            .filter(|k| !still.contains(*k))
            .cloned()
            .collect();
        for key in ended {
            if let Some((from, why)) = zombies_open.remove(&key) {
                zombies.push(zombie_sentence(&key, from, Some(r.time_ms), &why));
            }
        }
    }
    for (key, (from, why)) in zombies_open {
        zombies.push(zombie_sentence(&key, from, None, &why));
    }
    Findings { anomalies, zombies }
}

fn zombie_sentence(
    (group, tp, zombie, owner): &(String, TopicPartition, NodeId, NodeId),
    from: u64,
    to: Option<u64>,
    why: &str,
) -> String {
    let until = match to {
        Some(t) => format!("until t={t} ms"),
        None => "until the end of the run".to_string(),
    };
    format!(
        "{zombie} still owned {tp} of group {group} by its own account from t={from} ms {until} \
         while {owner} owned it, but {why}"
    )
}

impl Checker for ExclusiveAssignment {
    fn name(&self) -> &'static str {
        "exclusive-assignment"
    }

    fn statement(&self) -> &'static str {
        "no generation assigns a partition to two members, and no two members of the current \
         generation own a partition at once"
    }

    fn lesson(&self) -> Lesson {
        Lesson {
            intro: "Two members of a consumer group owned one partition at once while both \
                    were members of the current generation (or one generation's assignment \
                    gave a partition twice), so both processed its records: the group \
                    protocol's promise of one owner per partition (eager revocation before \
                    rejoining, or KIP-429's withholding of a moving partition) did not hold.",
            prevention: Prevention::GroupProtocol,
        }
    }

    fn skip_reason(&self, input: &CheckInput) -> Option<String> {
        super::group_view::without_groups(input, "no partition is ever assigned by a group")
    }

    fn notes(&self, input: &CheckInput) -> Vec<String> {
        let zombies = analyse(input).zombies;
        let Some(first) = zombies.first() else {
            return Vec::new();
        };
        let more = match zombies.len() {
            1 => String::new(),
            n => format!(" ({} more such overlaps)", n - 1),
        };
        vec![format!(
            "not a violation: {first}{more}. Kafka fences a removed member's commits, not its \
             fetches (see `commit-validity`); its processing meanwhile is duplicate work"
        )]
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
    use super::super::group_view::testkit::Events;
    use super::super::testkit::check_history_events;
    use super::*;

    fn check(e: &Events) -> Vec<Violation> {
        check_history_events(&ExclusiveAssignment, &[], &e.0)
    }

    fn notes(e: &Events) -> Vec<String> {
        let logs = BTreeMap::new();
        ExclusiveAssignment.notes(&CheckInput {
            history: &[],
            events: &e.0,
            final_logs: &logs,
            scenario: None,
            snapshots: &[],
        })
    }

    #[test]
    fn a_generation_that_assigns_a_partition_twice_fails() {
        let mut e = Events::default();
        e.state(0, "CompletingRebalance", 3)
            .completed(100, 3, &[(0, &[0, 1]), (1, &[1, 2])]);
        let v = check(&e);
        assert_eq!(v.len(), 1, "{v:?}");
        assert_eq!(
            v[0].message,
            "generation 3 of group g assigned events-1 to 2 members: consumer-0 (member m0), \
             consumer-1 (member m1) (assignment stored by broker-0 at t=100 ms)"
        );
        assert_eq!(v[0].details["anomalies"][0]["kind"], "assignment");
    }

    #[test]
    fn two_current_members_owning_one_partition_fail() {
        // Generation 2 moves events-1 from consumer-0 to consumer-1, but consumer-0 never
        // revokes it (eager members revoke before rejoining; cooperative ones after the sync).
        let mut e = Events::default();
        e.state(0, "CompletingRebalance", 1)
            .completed(10, 1, &[(0, &[0, 1])])
            .assigned(20, 0, 1, &[0, 1])
            .state(100, "CompletingRebalance", 2)
            .completed(110, 2, &[(0, &[0]), (1, &[1])])
            .assigned(120, 1, 2, &[1]);
        let v = check(&e);
        assert_eq!(v.len(), 1, "{v:?}");
        assert_eq!(
            v[0].message,
            "consumer-0 (member m0, generation 1) and consumer-1 (member m1, generation 2) both \
             owned events-1 of group g at t=120 ms, both members of the current generation \
             (since t=20 ms and t=120 ms by their own onPartitionsAssigned)"
        );
        // The same run with the revocation first (cooperative: withheld one round) passes.
        let mut e = Events::default();
        e.state(0, "CompletingRebalance", 1)
            .completed(10, 1, &[(0, &[0, 1])])
            .assigned(20, 0, 1, &[0, 1])
            .state(100, "CompletingRebalance", 2)
            .completed(110, 2, &[(0, &[0]), (1, &[])])
            .revoked(115, 0, 2, &[1])
            .state(200, "CompletingRebalance", 3)
            .completed(210, 3, &[(0, &[0]), (1, &[1])])
            .assigned(220, 1, 3, &[1]);
        assert!(check(&e).is_empty(), "{:?}", check(&e));
        assert!(notes(&e).is_empty());
    }

    #[test]
    fn a_removed_zombie_that_still_believes_it_owns_a_partition_is_only_a_note() {
        let mut e = Events::default();
        e.state(0, "CompletingRebalance", 1)
            .completed(10, 1, &[(0, &[0, 1])])
            .assigned(20, 0, 1, &[0, 1])
            // consumer-0 pauses past its session: removed, the group rebalances without it.
            .removed(100, 0, "session-timeout", 1)
            .state(110, "CompletingRebalance", 2)
            .completed(120, 2, &[(1, &[0, 1])])
            .assigned(130, 1, 2, &[0, 1])
            // It wakes up, learns it was removed, and loses its partitions.
            .lost(300, 0, 1, &[0, 1]);
        assert!(check(&e).is_empty(), "{:?}", check(&e));
        let n = notes(&e);
        assert_eq!(n.len(), 1, "{n:?}");
        assert_eq!(
            n[0],
            "not a violation: consumer-0 still owned events-0 of group g by its own account from \
             t=130 ms until t=300 ms while consumer-1 owned it, but the coordinator removed \
             member m0 at t=100 ms (session-timeout) (1 more such overlaps). Kafka fences a \
             removed member's commits, not its fetches (see `commit-validity`); its processing \
             meanwhile is duplicate work"
        );
        // Without the removal, and with consumer-0 still a member of generation 2, the same
        // overlap is a violation, on both partitions.
        let mut e = Events::default();
        e.state(0, "CompletingRebalance", 1)
            .completed(10, 1, &[(0, &[0, 1]), (1, &[])])
            .assigned(20, 0, 1, &[0, 1])
            .state(110, "CompletingRebalance", 2)
            .completed(120, 2, &[(0, &[]), (1, &[0, 1])])
            .assigned(130, 1, 2, &[0, 1]);
        assert_eq!(check(&e)[0].details["count"], 2);
    }

    #[test]
    fn a_crashed_member_owns_nothing() {
        let mut e = Events::default();
        e.state(0, "CompletingRebalance", 1)
            .completed(10, 1, &[(0, &[0]), (1, &[1])])
            .assigned(20, 0, 1, &[0])
            .assigned(20, 1, 1, &[1])
            .killed(50, 0)
            .state(110, "CompletingRebalance", 2)
            .completed(120, 2, &[(0, &[]), (1, &[0, 1])])
            .assigned(130, 1, 2, &[0]);
        assert!(check(&e).is_empty(), "{:?}", check(&e));
    }
}
