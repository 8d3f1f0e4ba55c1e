//! What the consumer-group checks read off a run: each member's own view of the partitions it
//! owns, and the coordinator's view of generations, assignments and members, replayed event by
//! event. Shared by `exclusive-assignment`, `revoke-before-reassign`, `commit-validity` and
//! `at-least-once`, and by the poll checks and the lag, which must know when a subscribe-mode
//! consumer's assignment changed.
//!
//! **A member's view** (the consumer's own events, node = the consumer): it owns a partition
//! from its `partitions-assigned` (`onPartitionsAssigned` ran) until its `partitions-revoked`
//! or `partitions-lost` of that partition, or until its process crashes (a `kill`,
//! `client-kill`, `restart`, `power-fail`, `disk-loss` or `shutdown` fault naming it: a dead
//! process owns nothing, and a restarted one joins anew). Its member id and generation are
//! those of its latest such event.
//!
//! **The coordinator's view** (the group coordinator's events): the generation of a group is
//! the one its latest `group-state-changed` names (Kafka increments it when the join phase ends,
//! ClassicGroup.java's `initNextGeneration`); a generation's assignment is what its
//! `group-assignment-completed` stored (the leader's SyncGroup); a member stops being one at its
//! `group-member-removed` (session timeout, rebalance timeout, LeaveGroup, fenced static
//! member): a member that comes back gets a new member id (KIP-394, KIP-345). **A removal can
//! be undone by a coordinator failover**: a removal is written to `__consumer_offsets` only with
//! the group's next record (the next generation's assignment, or the empty group), so a
//! coordinator that loads the group before that (the same broker re-elected leader of the
//! offsets partition, or another broker; Kafka's GroupMetadataManager loads the members of the
//! last stored GroupMetadata record) brings the removed member back under its old member id.
//! That member keeps heartbeating with that id, rejoins, and is listed in the next stored
//! assignment. `removed` forgets it from the load on (a `group-state-changed` from `Dead`
//! whose generation is that of the last stored assignment listing it), or at the latest from
//! the next stored assignment that lists it.

use super::CheckInput;
use crate::history::EventRecord;
use ksim_model::event::{Event, MemberAssignment};
use ksim_model::types::{NodeId, TopicPartition};
use std::collections::{BTreeMap, BTreeSet};

/// The fault actions that end a client process (it owns nothing afterwards).
pub(crate) const CRASH_ACTIONS: &[&str] = &[
    "kill",
    "client-kill",
    "restart",
    "power-fail",
    "disk-loss",
    "shutdown",
];

/// The skip reason of the checks that judge consumer groups: `Some` when the scenario has no
/// `[[consumers]]` entry with a `group` (every consumer runs in assign mode). `what` completes
/// the sentence. Without a scenario (unit tests) the checks apply.
pub(crate) fn without_groups(input: &CheckInput, what: &str) -> Option<String> {
    let scenario = input.scenario?;
    (!scenario.consumers.iter().any(|c| c.group.is_some())).then(|| {
        format!(
            "no consumer entry has a `group` (every consumer runs in assign mode, with no \
             rebalance), so {what}"
        )
    })
}

/// The broker setting `sim.group.offset-commit-fencing` (true, Kafka's behaviour, when absent
/// or without a scenario): false lets the coordinator accept an OffsetCommit whatever its
/// generation and member id.
pub(crate) fn offset_commit_fencing(input: &CheckInput) -> bool {
    use ksim_model::config::PropValue;
    let Some(scenario) = input.scenario else {
        return true;
    };
    match scenario
        .cluster
        .broker_properties
        .get("sim.group.offset-commit-fencing")
    {
        Some(PropValue::Bool(b)) => *b,
        Some(PropValue::Str(s)) => s != "false",
        _ => true,
    }
}

/// One member's view of itself (see the module documentation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MemberView {
    pub group: String,
    pub member_id: String,
    /// The generation of its latest assigned / revoked / lost event.
    pub generation: i32,
    /// The partitions it owns: since when (ms) and for which generation it took them.
    pub owned: BTreeMap<TopicPartition, Owned>,
}

/// A partition a member owns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Owned {
    /// When its `partitions-assigned` ran (simulated ms).
    pub since_ms: u64,
    /// The generation it was assigned in.
    pub generation: i32,
}

/// A generation's stored assignment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Assignment {
    pub generation: i32,
    pub members: Vec<MemberAssignment>,
    pub time_ms: u64,
    pub node: NodeId,
}

impl Assignment {
    pub fn has_member(&self, member_id: &str) -> bool {
        self.members.iter().any(|m| m.member_id == member_id)
    }
}

/// A member the coordinator removed: when and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Removal {
    pub time_ms: u64,
    pub reason: String,
    pub generation: i32,
}

/// The coordinator's view of one group (see the module documentation).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct GroupView {
    /// The generation the latest `group-state-changed` names (`None` before any).
    pub generation: Option<i32>,
    /// The latest stored assignment.
    pub latest: Option<Assignment>,
    /// Every member id removed so far and not readmitted since: a stored assignment that lists
    /// a removed member id readmits it (see the module documentation, coordinator failover).
    pub removed: BTreeMap<String, Removal>,
}

/// Members' and coordinators' views, replayed event by event ([`GroupWalk::apply`]).
#[derive(Debug, Clone, Default)]
pub(crate) struct GroupWalk {
    /// Per consumer process, its view; absent before its first assignment and after a crash.
    pub members: BTreeMap<NodeId, MemberView>,
    pub groups: BTreeMap<String, GroupView>,
}

/// What one event changed (for the checks that react to changes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Change {
    /// A consumer's `partitions-assigned`.
    Assigned {
        node: NodeId,
        group: String,
        partitions: Vec<TopicPartition>,
    },
    /// A stored assignment (`group-assignment-completed`), after the view has it.
    Completed { group: String },
    /// Anything else the views track (revocations, losses, crashes, removals, states).
    Other,
    /// An event the views ignore.
    None,
}

impl GroupWalk {
    /// Applies one event to the views.
    pub fn apply(&mut self, r: &EventRecord) -> Change {
        match &r.event {
            Event::PartitionsAssigned {
                group,
                member_id,
                generation,
                partitions,
            } => {
                let view = self.view(r.node, group, member_id, *generation);
                for tp in partitions {
                    view.owned.entry(tp.clone()).or_insert(Owned {
                        since_ms: r.time_ms,
                        generation: *generation,
                    });
                }
                Change::Assigned {
                    node: r.node,
                    group: group.clone(),
                    partitions: partitions.clone(),
                }
            }
            Event::PartitionsRevoked {
                group,
                member_id,
                generation,
                partitions,
            }
            | Event::PartitionsLost {
                group,
                member_id,
                generation,
                partitions,
                ..
            } => {
                let view = self.view(r.node, group, member_id, *generation);
                for tp in partitions {
                    view.owned.remove(tp);
                }
                Change::Other
            }
            Event::Fault { action, nodes, .. } if CRASH_ACTIONS.contains(&action.as_str()) => {
                let mut changed = false;
                for n in nodes.iter().filter_map(|n| NodeId::parse(n)) {
                    changed |= self.members.remove(&n).is_some();
                }
                if changed {
                    Change::Other
                } else {
                    Change::None
                }
            }
            Event::GroupStateChanged {
                group,
                generation,
                from,
                to,
                ..
            } => {
                let g = self.groups.entry(group.clone()).or_default();
                g.generation = Some(*generation);
                // A coordinator loading the group (from `Dead`) restores the members of the
                // last stored assignment of that generation: removals since were never
                // persisted (see the module documentation), so those members are members again
                // from here on, and Kafka accepts their commits with that generation.
                if from == "Dead" && to != "Empty" {
                    if let Some(latest) = g.latest.as_ref().filter(|a| a.generation == *generation)
                    {
                        for m in &latest.members {
                            g.removed.remove(&m.member_id);
                        }
                    }
                }
                Change::Other
            }
            Event::GroupAssignmentCompleted {
                group,
                generation,
                members,
                ..
            } => {
                let g = self.groups.entry(group.clone()).or_default();
                // A member id the coordinator stored again is a member again: its removal was
                // never persisted and a coordinator that reloaded the group brought it back.
                for m in members {
                    g.removed.remove(&m.member_id);
                }
                g.latest = Some(Assignment {
                    generation: *generation,
                    members: members.clone(),
                    time_ms: r.time_ms,
                    node: r.node,
                });
                g.generation = Some(g.generation.map_or(*generation, |x| x.max(*generation)));
                Change::Completed {
                    group: group.clone(),
                }
            }
            Event::GroupMemberRemoved {
                group,
                member_id,
                reason,
                generation,
                ..
            } => {
                self.groups
                    .entry(group.clone())
                    .or_default()
                    .removed
                    .entry(member_id.clone())
                    .or_insert(Removal {
                        time_ms: r.time_ms,
                        reason: reason.clone(),
                        generation: *generation,
                    });
                Change::Other
            }
            _ => Change::None,
        }
    }

    /// The view of `node`, updated to `member_id` and `generation` (a new member id starts a
    /// new view: a member that rejoined as a new member owns nothing it did not get anew).
    fn view(
        &mut self,
        node: NodeId,
        group: &str,
        member_id: &str,
        generation: i32,
    ) -> &mut MemberView {
        let view = self.members.entry(node).or_insert_with(|| MemberView {
            group: group.to_string(),
            member_id: member_id.to_string(),
            generation,
            owned: BTreeMap::new(),
        });
        if view.group != group || view.member_id != member_id {
            *view = MemberView {
                group: group.to_string(),
                member_id: member_id.to_string(),
                generation,
                owned: BTreeMap::new(),
            };
        }
        view.generation = view.generation.max(generation);
        view
    }

    /// Why the coordinator no longer counts `node`'s member as one of the group's current
    /// generation, or `None` when it does: the member was removed, or the latest stored
    /// assignment neither lists it nor is of the member's own generation (a static member that
    /// replaced an older instance without a rebalance keeps the generation, KIP-345).
    pub fn not_current(&self, node: NodeId) -> Option<String> {
        let view = self.members.get(&node)?;
        let group = self.groups.get(&view.group);
        if let Some(r) = group.and_then(|g| g.removed.get(&view.member_id)) {
            return Some(format!(
                "the coordinator removed member {} at t={} ms ({})",
                view.member_id, r.time_ms, r.reason
            ));
        }
        let latest = group.and_then(|g| g.latest.as_ref())?;
        if latest.has_member(&view.member_id) || latest.generation == view.generation {
            return None;
        }
        Some(format!(
            "member {} (generation {}) is not in generation {}, stored at t={} ms",
            view.member_id, view.generation, latest.generation, latest.time_ms
        ))
    }

    /// The consumers of `group` that own `tp` by their own account, in node order.
    pub fn owners<'a>(
        &'a self,
        group: &'a str,
        tp: &'a TopicPartition,
    ) -> impl Iterator<Item = (NodeId, &'a MemberView, Owned)> + 'a {
        self.members
            .iter()
            .filter(move |(_, v)| v.group == group)
            .filter_map(move |(n, v)| v.owned.get(tp).map(|o| (*n, v, *o)))
    }

    /// Every partition some member of `group` owns.
    pub fn owned_partitions(&self, group: &str) -> BTreeSet<TopicPartition> {
        self.members
            .values()
            .filter(|v| v.group == group)
            .flat_map(|v| v.owned.keys().cloned())
            .collect()
    }
}

/// `consumer-1 (member consumer-1-3f2a, generation 4)`.
pub(crate) fn who(node: NodeId, member_id: &str, generation: i32) -> String {
    format!("{node} (member {member_id}, generation {generation})")
}

/// Builders of group events for the checks' unit tests.
#[cfg(test)]
pub(crate) mod testkit {
    use super::*;
    use ksim_model::types::BrokerId;

    /// Events with explicit times, in the order pushed.
    #[derive(Default, Clone)]
    pub struct Events(pub Vec<EventRecord>);

    fn tps(parts: &[i32]) -> Vec<TopicPartition> {
        parts
            .iter()
            .map(|p| TopicPartition::new("events", *p))
            .collect()
    }

    /// `consumer-N`'s member id in the tests: `m<N>`.
    pub fn mid(consumer: u32) -> String {
        format!("m{consumer}")
    }

    impl Events {
        pub fn push(&mut self, time_ms: u64, node: NodeId, event: Event) -> &mut Self {
            self.0.push(EventRecord {
                time_ms,
                node,
                event,
            });
            self
        }

        /// The coordinator (broker-0) enters `to` in `generation`.
        pub fn state(&mut self, t: u64, to: &str, generation: i32) -> &mut Self {
            self.push(
                t,
                NodeId::Broker(BrokerId(0)),
                Event::GroupStateChanged {
                    group: "g".into(),
                    broker: BrokerId(0),
                    from: "?".into(),
                    to: to.into(),
                    generation,
                    reason: "test".into(),
                },
            )
        }

        /// A coordinator loads the group from `__consumer_offsets` (`Dead` to `to`).
        pub fn loaded(&mut self, t: u64, to: &str, generation: i32) -> &mut Self {
            self.push(
                t,
                NodeId::Broker(BrokerId(1)),
                Event::GroupStateChanged {
                    group: "g".into(),
                    broker: BrokerId(1),
                    from: "Dead".into(),
                    to: to.into(),
                    generation,
                    reason: "Loaded group metadata from __consumer_offsets-31".into(),
                },
            )
        }

        /// The coordinator stores `generation`'s assignment: (consumer, partitions of `events`).
        pub fn completed(
            &mut self,
            t: u64,
            generation: i32,
            members: &[(u32, &[i32])],
        ) -> &mut Self {
            let members = members
                .iter()
                .map(|(c, parts)| MemberAssignment {
                    member_id: mid(*c),
                    group_instance_id: None,
                    client: NodeId::Consumer(*c).to_string(),
                    partitions: tps(parts),
                })
                .collect();
            self.push(
                t,
                NodeId::Broker(BrokerId(0)),
                Event::GroupAssignmentCompleted {
                    group: "g".into(),
                    broker: BrokerId(0),
                    generation,
                    protocol: "cooperative-sticky".into(),
                    leader: mid(0),
                    members,
                },
            )
        }

        /// The coordinator removes consumer `c`'s member.
        pub fn removed(&mut self, t: u64, c: u32, reason: &str, generation: i32) -> &mut Self {
            self.push(
                t,
                NodeId::Broker(BrokerId(0)),
                Event::GroupMemberRemoved {
                    group: "g".into(),
                    broker: BrokerId(0),
                    member_id: mid(c),
                    reason: reason.into(),
                    generation,
                },
            )
        }

        pub fn assigned(&mut self, t: u64, c: u32, generation: i32, parts: &[i32]) -> &mut Self {
            self.push(
                t,
                NodeId::Consumer(c),
                Event::PartitionsAssigned {
                    group: "g".into(),
                    member_id: mid(c),
                    generation,
                    partitions: tps(parts),
                },
            )
        }

        pub fn revoked(&mut self, t: u64, c: u32, generation: i32, parts: &[i32]) -> &mut Self {
            self.push(
                t,
                NodeId::Consumer(c),
                Event::PartitionsRevoked {
                    group: "g".into(),
                    member_id: mid(c),
                    generation,
                    partitions: tps(parts),
                },
            )
        }

        pub fn lost(&mut self, t: u64, c: u32, generation: i32, parts: &[i32]) -> &mut Self {
            self.push(
                t,
                NodeId::Consumer(c),
                Event::PartitionsLost {
                    group: "g".into(),
                    member_id: mid(c),
                    generation,
                    partitions: tps(parts),
                    reason: "UNKNOWN_MEMBER_ID".into(),
                },
            )
        }

        /// A `kill` fault of consumer `c`.
        pub fn killed(&mut self, t: u64, c: u32) -> &mut Self {
            self.push(
                t,
                NodeId::Zk,
                Event::Fault {
                    action: "client-kill".into(),
                    nodes: vec![NodeId::Consumer(c).to_string()],
                    source: "test".into(),
                },
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::testkit::*;
    use super::*;

    fn walk(e: &Events) -> GroupWalk {
        let mut w = GroupWalk::default();
        for r in &e.0 {
            w.apply(r);
        }
        w
    }

    #[test]
    fn members_own_what_they_were_assigned_until_revoked_lost_or_crashed() {
        let mut e = Events::default();
        e.state(0, "CompletingRebalance", 1)
            .completed(10, 1, &[(0, &[0, 1]), (1, &[2])])
            .assigned(20, 0, 1, &[0, 1])
            .assigned(20, 1, 1, &[2]);
        let w = walk(&e);
        let tp1 = TopicPartition::new("events", 1);
        assert_eq!(
            w.owners("g", &tp1).map(|(n, _, _)| n).collect::<Vec<_>>(),
            [NodeId::Consumer(0)]
        );
        assert_eq!(w.not_current(NodeId::Consumer(0)), None);
        e.revoked(30, 0, 1, &[1]).killed(40, 1);
        let w = walk(&e);
        assert_eq!(w.owned_partitions("g").len(), 1);
        assert!(!w.members.contains_key(&NodeId::Consumer(1)));
        e.removed(50, 0, "session-timeout", 1);
        let w = walk(&e);
        assert!(w
            .not_current(NodeId::Consumer(0))
            .unwrap()
            .contains("session-timeout"));
    }

    #[test]
    fn a_removed_member_a_later_stored_assignment_lists_is_current_again() {
        // The coordinator removes m1 (session timeout), then loses the group before storing a
        // generation without it; the next coordinator loads generation 1 with m1 and stores
        // generation 2 listing m1 (seed 70022 of consumer-group-under-faults).
        let mut e = Events::default();
        e.state(0, "CompletingRebalance", 1)
            .completed(10, 1, &[(0, &[0]), (1, &[1])])
            .assigned(20, 0, 1, &[0])
            .assigned(20, 1, 1, &[1])
            .removed(100, 1, "session-timeout", 1);
        let w = walk(&e);
        assert!(w.not_current(NodeId::Consumer(1)).is_some());
        e.state(200, "Stable", 1)
            .state(300, "CompletingRebalance", 2)
            .completed(310, 2, &[(0, &[0]), (1, &[1])])
            .assigned(320, 1, 2, &[]);
        let w = walk(&e);
        assert_eq!(w.not_current(NodeId::Consumer(1)), None);
        assert!(!w.groups["g"].removed.contains_key(&mid(1)));
        // A later removal counts again.
        e.removed(400, 1, "session-timeout", 2);
        assert!(walk(&e).not_current(NodeId::Consumer(1)).is_some());
    }

    #[test]
    fn a_coordinator_load_readmits_the_members_of_the_stored_generation() {
        // consumer-group-under-faults seed 120099: broker-2 removes m0 (session timeout) while
        // the group is PreparingRebalance, then reloads generation 2 from its log: m0 is back
        // and its generation-2 commit is accepted, as Kafka's would be.
        let mut e = Events::default();
        e.state(0, "CompletingRebalance", 1)
            .completed(10, 1, &[(0, &[0]), (1, &[1])])
            .assigned(20, 0, 1, &[0])
            .assigned(20, 1, 1, &[1])
            .removed(100, 0, "session-timeout", 1);
        assert!(walk(&e).not_current(NodeId::Consumer(0)).is_some());
        // Loaded as Empty, or in another generation: the removal stands.
        let mut other = e.clone();
        other.loaded(200, "Empty", 1);
        assert!(walk(&other).not_current(NodeId::Consumer(0)).is_some());
        let mut other = e.clone();
        other.loaded(200, "Stable", 2);
        assert!(walk(&other).not_current(NodeId::Consumer(0)).is_some());
        e.loaded(200, "Stable", 1);
        assert_eq!(walk(&e).not_current(NodeId::Consumer(0)), None);
    }
}
