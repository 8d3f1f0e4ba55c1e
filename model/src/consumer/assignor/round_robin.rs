//! The round-robin assignor (Kafka's `RoundRobinAssignor`, protocol name `roundrobin`).
//!
//! All partitions of all subscribed topics (with metadata), sorted by topic then partition,
//! are dealt one by one to the members in a circle (member order: static members by
//! `group.instance.id`, then dynamic members by member id); a member not subscribed to the
//! partition's topic is skipped, and the circle goes on from after the member that got it.

use super::*;

/// `roundrobin`: partitions dealt in a circle (see the module docs). Eager protocol only.
#[derive(Debug, Clone, Copy, Default)]
pub struct RoundRobinAssignor;

impl PartitionAssignor for RoundRobinAssignor {
    fn name(&self) -> &'static str {
        "roundrobin"
    }

    fn supported_protocols(&self) -> Vec<RebalanceProtocol> {
        vec![RebalanceProtocol::Eager]
    }

    fn assign(
        &self,
        partitions_per_topic: &BTreeMap<String, i32>,
        subscriptions: &[Subscription],
    ) -> BTreeMap<String, Vec<TopicPartition>> {
        let mut assignment = empty_assignment(subscriptions);
        let members = members_sorted(subscriptions);
        let member_topics: Vec<BTreeSet<&str>> = members.iter().map(|s| topic_set(s)).collect();
        let topics: BTreeSet<&str> = member_topics.iter().flatten().copied().collect();
        let mut cursor = 0usize;
        for topic in topics {
            let Some(&count) = partitions_per_topic.get(topic) else {
                continue;
            };
            for p in 0..count.max(0) {
                // Some member subscribes to `topic`, so this stops within one turn.
                while !member_topics[cursor].contains(topic) {
                    cursor = (cursor + 1) % members.len();
                }
                assignment
                    .get_mut(&members[cursor].member_id)
                    .expect("every member has a list")
                    .push(TopicPartition::new(topic, p));
                cursor = (cursor + 1) % members.len();
            }
        }
        sort_lists(&mut assignment);
        assignment
    }
}
