//! The range assignor (Kafka's `RangeAssignor`, protocol name `range`).
//!
//! Per topic: the topic's subscribers in member order (static members by `group.instance.id`,
//! then dynamic members by member id: `AbstractPartitionAssignor.MemberInfo`), the partitions
//! in numeric order, each subscriber a contiguous range of `n / m` partitions, the first
//! `n % m` subscribers one more. Topics are independent, so with several topics the first
//! members get the extra partition of each (the assignor's known imbalance).

use super::*;

/// `range`: contiguous per-topic ranges (see the module docs). Supports the eager protocol only.
#[derive(Debug, Clone, Copy, Default)]
pub struct RangeAssignor;

impl PartitionAssignor for RangeAssignor {
    fn name(&self) -> &'static str {
        "range"
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
        for (topic, &count) in partitions_per_topic {
            if count <= 0 {
                continue;
            }
            let subscribers: Vec<&Subscription> = members
                .iter()
                .copied()
                .filter(|s| s.topics.iter().any(|t| t == topic))
                .collect();
            if subscribers.is_empty() {
                continue;
            }
            let m = subscribers.len() as i32;
            let per_member = count / m;
            let with_extra = count % m;
            let mut next = 0;
            for (i, member) in subscribers.iter().enumerate() {
                let length = per_member + i32::from((i as i32) < with_extra);
                let list = assignment
                    .get_mut(&member.member_id)
                    .expect("every member has a list");
                list.extend((next..next + length).map(|p| TopicPartition::new(topic.clone(), p)));
                next += length;
            }
        }
        sort_lists(&mut assignment);
        assignment
    }
}
