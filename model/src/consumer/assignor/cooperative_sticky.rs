//! The cooperative sticky assignor (Kafka's `CooperativeStickyAssignor`, protocol name
//! `cooperative-sticky`, KIP-429).
//!
//! It computes the sticky assignment (see `sticky.rs`) and then follows the cooperative
//! protocol's rule: a partition may be given to a new owner only after its previous owner has
//! revoked it. So every partition whose target member is not its previous owner, while some
//! member still lists it in `owned_partitions` (a valid claim or not), is left out of this round's assignment
//! (`CooperativeStickyAssignor.adjustAssignment`). The previous owner, told it no longer owns
//! it, revokes it and rejoins; the follow-up rebalance then finds it unowned and assigns it.
//! A partition claimed by several members of the same (highest) generation is withheld from
//! all of them likewise, as Kafka's `partitionsWithMultiplePreviousOwners`.

use super::sticky::sticky_assign;
use super::*;

/// `cooperative-sticky`: the sticky assignment minus the partitions still to be revoked by
/// their previous owner. Supports the cooperative protocol (preferred) and the eager one.
#[derive(Debug, Clone, Copy, Default)]
pub struct CooperativeStickyAssignor;

impl PartitionAssignor for CooperativeStickyAssignor {
    fn name(&self) -> &'static str {
        "cooperative-sticky"
    }

    fn supported_protocols(&self) -> Vec<RebalanceProtocol> {
        vec![RebalanceProtocol::Cooperative, RebalanceProtocol::Eager]
    }

    fn assign(
        &self,
        partitions_per_topic: &BTreeMap<String, i32>,
        subscriptions: &[Subscription],
    ) -> BTreeMap<String, Vec<TopicPartition>> {
        let outcome = sticky_assign(partitions_per_topic, subscriptions);
        // Every partition some member lists, valid claim or not: its lister still holds it.
        let listed: BTreeSet<&TopicPartition> = subscriptions
            .iter()
            .flat_map(|s| s.owned_partitions.iter())
            .collect();
        let mut assignment = outcome.assignment;
        for (member, list) in assignment.iter_mut() {
            list.retain(|tp| {
                !listed.contains(tp)
                    || outcome
                        .previous_owner
                        .get(tp)
                        .is_some_and(|owner| owner.as_deref() == Some(member.as_str()))
            });
        }
        assignment
    }
}
