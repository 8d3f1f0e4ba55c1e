//! The sticky assignor (Kafka's `StickyAssignor`, protocol name `sticky`, KIP-54) and the
//! assignment both sticky assignors share (Kafka's `AbstractStickyAssignor`).
//!
//! The rules, in priority order:
//! 1. **Balanced.** No partition could move from its member to another member subscribed to
//!    its topic that has at least two partitions fewer (Kafka's `isBalanced`). When all
//!    members subscribe to the same topics this means partition counts differ by at most 1.
//! 2. **Sticky.** Every member keeps as many of its previously owned partitions as balance
//!    allows; only the surplus of over-full members moves, and partitions nobody owned are
//!    placed first, on the least-loaded members.
//!
//! Previous ownership comes from each member's `owned_partitions` and `generation`
//! (`AbstractStickyAssignor.allSubscriptionsEqual`): a partition claimed by several members
//! belongs to the claimant with the highest generation; when the highest generation is shared
//! by several claimants, nobody keeps it (Kafka logs "Found multiple consumers ... claiming the
//! same TopicPartition ... in the same generation" and invalidates it). Claims on partitions of
//! topics without metadata, beyond the topic's partition count, or of topics the member no
//! longer subscribes to are dropped.
//!
//! Kafka takes two code paths (the "constrained" one when all subscriptions are equal, the
//! "general" one otherwise) whose exact choices depend on `HashMap` iteration order; here one
//! deterministic procedure meets the same guarantees for both: keep the valid owned
//! partitions, place the unowned partitions one by one (those with the fewest eligible members
//! first) on the eligible member with the fewest partitions, then move partitions from the
//! fullest members to eligible members with at least two fewer until none can move, choosing
//! first the partitions the member did not own before and then its last ones by partition number
//! and topic (Kafka's `ConstrainedAssignmentBuilder` keeps each member's owned partitions sorted
//! that way up to its quota, so that the kept partitions spread over the topics).

use super::*;

/// `sticky`: balanced and sticky (see the module docs). Eager protocol only: under it a member
/// revokes everything before joining, so `owned_partitions` must carry its previous assignment
/// (what Kafka's `StickyAssignor` encodes in its subscription user data).
#[derive(Debug, Clone, Copy, Default)]
pub struct StickyAssignor;

impl PartitionAssignor for StickyAssignor {
    fn name(&self) -> &'static str {
        "sticky"
    }

    fn supported_protocols(&self) -> Vec<RebalanceProtocol> {
        vec![RebalanceProtocol::Eager]
    }

    fn assign(
        &self,
        partitions_per_topic: &BTreeMap<String, i32>,
        subscriptions: &[Subscription],
    ) -> BTreeMap<String, Vec<TopicPartition>> {
        sticky_assign(partitions_per_topic, subscriptions).assignment
    }
}

/// The outcome of [`sticky_assign`]: the assignment and the previous ownership it started from.
pub(super) struct StickyOutcome {
    /// Member id → sorted partitions.
    pub assignment: BTreeMap<String, Vec<TopicPartition>>,
    /// Every partition some member claimed (valid claims only) → its previous owner after
    /// resolving conflicts by generation; `None` when the highest generation was shared.
    pub previous_owner: BTreeMap<TopicPartition, Option<String>>,
}

/// The shared sticky assignment (see the module docs).
pub(super) fn sticky_assign(
    partitions_per_topic: &BTreeMap<String, i32>,
    subscriptions: &[Subscription],
) -> StickyOutcome {
    // Each member's subscribed topics that have partitions.
    let topics_of: BTreeMap<&str, BTreeSet<&str>> = subscriptions
        .iter()
        .map(|s| {
            let topics = topic_set(s)
                .into_iter()
                .filter(|t| partitions_per_topic.get(*t).is_some_and(|&n| n > 0))
                .collect();
            (s.member_id.as_str(), topics)
        })
        .collect();

    // Valid claims per partition: (generation, member).
    let mut claims: BTreeMap<TopicPartition, Vec<(i32, &str)>> = BTreeMap::new();
    for s in subscriptions {
        let owned: BTreeSet<&TopicPartition> = s.owned_partitions.iter().collect();
        for tp in owned {
            let valid = topics_of[s.member_id.as_str()].contains(tp.topic.as_str())
                && tp.partition >= 0
                && tp.partition < partitions_per_topic[tp.topic.as_str()];
            if valid {
                claims
                    .entry(tp.clone())
                    .or_default()
                    .push((s.generation, s.member_id.as_str()));
            }
        }
    }
    let mut previous_owner: BTreeMap<TopicPartition, Option<String>> = BTreeMap::new();
    let mut current: BTreeMap<&str, BTreeSet<TopicPartition>> =
        topics_of.keys().map(|&m| (m, BTreeSet::new())).collect();
    for (tp, claimants) in &claims {
        let top = claimants.iter().map(|c| c.0).max().expect("non-empty");
        let winners: Vec<&str> = claimants
            .iter()
            .filter(|c| c.0 == top)
            .map(|c| c.1)
            .collect();
        let owner = (winners.len() == 1).then(|| winners[0]);
        if let Some(owner) = owner {
            current.get_mut(owner).expect("member").insert(tp.clone());
        }
        previous_owner.insert(tp.clone(), owner.map(str::to_string));
    }
    let owned_before = |member: &str, tp: &TopicPartition| {
        previous_owner
            .get(tp)
            .is_some_and(|o| o.as_deref() == Some(member))
    };

    // Place the partitions nobody keeps: fewest eligible members first, then by topic and
    // partition; each on the eligible member with the fewest partitions (then by member id).
    let mut eligible_of: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (&m, ts) in &topics_of {
        for &t in ts {
            eligible_of.entry(t).or_default().push(m);
        }
    }
    let no_member: Vec<&str> = Vec::new();
    let eligible = |topic: &str| -> &Vec<&str> { eligible_of.get(topic).unwrap_or(&no_member) };
    let mut unassigned: Vec<(usize, TopicPartition)> = Vec::new();
    for (topic, &count) in partitions_per_topic {
        let n = eligible(topic).len();
        if n == 0 {
            continue;
        }
        for p in 0..count.max(0) {
            let tp = TopicPartition::new(topic.clone(), p);
            let kept = previous_owner.get(&tp).is_some_and(Option::is_some);
            if !kept {
                unassigned.push((n, tp));
            }
        }
    }
    unassigned.sort();
    for (_, tp) in unassigned {
        let target = eligible(&tp.topic)
            .iter()
            .copied()
            .min_by_key(|m| (current[m].len(), *m))
            .expect("some member subscribes");
        current.get_mut(target).expect("member").insert(tp);
    }

    // Balance: move a partition from a fuller member to an eligible member with at least two
    // fewer, until no such move exists. Each move lowers the sum of squared counts, so this ends.
    loop {
        let mut by_load: Vec<&str> = current.keys().copied().collect();
        by_load.sort_by_key(|m| (std::cmp::Reverse(current[m].len()), *m));
        let mut chosen: Option<(&str, TopicPartition, &str)> = None;
        'search: for &from in &by_load {
            let load = current[from].len();
            let mut candidates: Vec<&TopicPartition> = current[from].iter().collect();
            // Partitions the member did not own before first, then the last by partition number
            // and topic (Kafka's constrained assignment keeps the first owned partitions in that
            // order, which spreads every topic evenly).
            candidates.sort_by_key(|tp| {
                (
                    owned_before(from, tp),
                    std::cmp::Reverse((tp.partition, tp.topic.as_str())),
                )
            });
            for tp in candidates {
                let to = eligible(&tp.topic)
                    .iter()
                    .copied()
                    .filter(|&m| m != from)
                    .min_by_key(|m| (current[m].len(), !owned_before(m, tp), *m));
                if let Some(to) = to {
                    if current[to].len() + 1 < load {
                        chosen = Some((from, tp.clone(), to));
                        break 'search;
                    }
                }
            }
        }
        let Some((from, tp, to)) = chosen else { break };
        current.get_mut(from).expect("member").remove(&tp);
        current.get_mut(to).expect("member").insert(tp);
    }

    let assignment = current
        .into_iter()
        .map(|(m, set)| (m.to_string(), set.into_iter().collect()))
        .collect();
    StickyOutcome {
        assignment,
        previous_owner,
    }
}
