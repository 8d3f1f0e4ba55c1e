//! The consumer's client-side partition assignors (`partition.assignment.strategy`): the group
//! leader runs the assignor the coordinator chose and sends the result in its SyncGroup.
//!
//! Kafka's `ConsumerPartitionAssignor` and its four built-in implementations, by rule (no code
//! copied): [`RangeAssignor`] (`range`), [`RoundRobinAssignor`] (`roundrobin`),
//! [`StickyAssignor`] (`sticky`) and [`CooperativeStickyAssignor`] (`cooperative-sticky`,
//! KIP-429). Rack-aware assignment (KIP-881) is not modelled: ksim's consumers have no
//! `client.rack`, so Kafka takes the rack-less path, which is the one implemented here.
//!
//! Every function here is deterministic: inputs are read through sorted views (`BTreeMap`,
//! sorted vectors), and the result lists every member id of the subscriptions, each with its
//! partitions sorted by topic then partition number.

use crate::types::TopicPartition;
use std::collections::{BTreeMap, BTreeSet};

mod cooperative_sticky;
mod range;
mod round_robin;
mod sticky;
#[cfg(test)]
mod tests;

pub use cooperative_sticky::CooperativeStickyAssignor;
pub use range::RangeAssignor;
pub use round_robin::RoundRobinAssignor;
pub use sticky::StickyAssignor;

/// One member's JoinGroup metadata as the leader's assignor sees it (Kafka's
/// `ConsumerPartitionAssignor.Subscription` plus the member id and, for the sticky assignors,
/// the generation carried in their user data / `ConsumerProtocolSubscription` v2+).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    /// The member id the coordinator gave this member.
    pub member_id: String,
    /// `group.instance.id` of a static member (KIP-345); `None` for a dynamic member.
    pub group_instance_id: Option<String>,
    /// The topics the member subscribes to (any order; duplicates are ignored).
    pub topics: Vec<String>,
    /// The partitions the member owns now (KIP-429's `ownedPartitions`; the sticky assignors'
    /// memory of the previous assignment). Empty for a new member. Under the eager protocol a
    /// member has revoked everything before joining; for `sticky` this must then still hold its
    /// previous assignment, which Kafka's `StickyAssignor` carries in its subscription user data.
    /// Range and round robin ignore it.
    pub owned_partitions: Vec<TopicPartition>,
    /// The generation in which the member got `owned_partitions` (-1 when unknown); on a
    /// conflict the sticky assignors believe the highest generation.
    pub generation: i32,
}

impl Subscription {
    /// A dynamic member with no owned partitions (generation -1).
    pub fn new(member_id: impl Into<String>, topics: &[&str]) -> Self {
        Subscription {
            member_id: member_id.into(),
            group_instance_id: None,
            topics: topics.iter().map(|t| t.to_string()).collect(),
            owned_partitions: Vec::new(),
            generation: -1,
        }
    }
}

/// The rebalance protocols an assignor supports (Kafka's
/// `ConsumerPartitionAssignor.RebalanceProtocol`, KIP-429): `Eager` revokes every partition
/// before a rebalance; `Cooperative` keeps the owned partitions and revokes only those that
/// move, in a second rebalance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RebalanceProtocol {
    Eager,
    Cooperative,
}

/// A client-side partition assignor (Kafka's `ConsumerPartitionAssignor`).
pub trait PartitionAssignor {
    /// The protocol name in JoinGroup (`range`, `roundrobin`, `sticky`, `cooperative-sticky`).
    fn name(&self) -> &'static str;
    /// The rebalance protocols it supports, in Kafka's order (`supportedProtocols()`). The
    /// consumer uses the highest protocol (`Cooperative` > `Eager`) that all its configured
    /// assignors support (`ConsumerCoordinator`).
    fn supported_protocols(&self) -> Vec<RebalanceProtocol>;
    /// Assigns the partitions of `partitions_per_topic` (topic → partition count; topics absent
    /// from it have no metadata and are skipped) to the members of `subscriptions` (member ids
    /// are unique). Every member id appears in the result, possibly with an empty list; each
    /// list is sorted by topic then partition.
    fn assign(
        &self,
        partitions_per_topic: &BTreeMap<String, i32>,
        subscriptions: &[Subscription],
    ) -> BTreeMap<String, Vec<TopicPartition>>;
}

/// The default `partition.assignment.strategy` of Kafka 3.x clients (`ConsumerConfig`).
pub const DEFAULT_STRATEGY: &str = "[RangeAssignor, CooperativeStickyAssignor]";

const PACKAGE: &str = "org.apache.kafka.clients.consumer.";

/// The names [`assignor_by_name`] accepts, for error messages.
pub const ACCEPTED_NAMES: &str = "range, roundrobin, sticky, cooperative-sticky, RangeAssignor, \
     RoundRobinAssignor, StickyAssignor, CooperativeStickyAssignor (optionally prefixed by \
     org.apache.kafka.clients.consumer.)";

/// The message for an assignor name ksim does not know: Kafka's words when the consumer
/// cannot load a `partition.assignment.strategy` class (`ConsumerPartitionAssignor
/// .getAssignorInstances` / `ConsumerUtils`: `"<name> ClassNotFoundException exception
/// occurred"`, a `KafkaException` from the `KafkaConsumer` constructor), followed by the names
/// ksim has. `name` is shown trimmed, as written.
pub fn class_not_found(name: &str) -> String {
    format!(
        "{} ClassNotFoundException exception occurred (ksim has: {ACCEPTED_NAMES})",
        name.trim()
    )
}

/// Kafka's class name of a built-in assignor, by its protocol name (`range` →
/// `org.apache.kafka.clients.consumer.RangeAssignor`); `None` for any other name.
pub fn class_name(protocol_name: &str) -> Option<&'static str> {
    Some(match protocol_name {
        "range" => "org.apache.kafka.clients.consumer.RangeAssignor",
        "roundrobin" => "org.apache.kafka.clients.consumer.RoundRobinAssignor",
        "sticky" => "org.apache.kafka.clients.consumer.StickyAssignor",
        "cooperative-sticky" => "org.apache.kafka.clients.consumer.CooperativeStickyAssignor",
        _ => return None,
    })
}

/// The assignor named by a Kafka class name (`org.apache.kafka.clients.consumer.RangeAssignor`,
/// with or without the package) or a protocol name (`range`, `roundrobin`, `sticky`,
/// `cooperative-sticky`); `None` for anything else (see [`class_not_found`] for the message).
/// Surrounding whitespace is ignored.
pub fn assignor_by_name(name: &str) -> Option<Box<dyn PartitionAssignor>> {
    let name = name.trim();
    let short = name.strip_prefix(PACKAGE).unwrap_or(name);
    match short {
        "range" | "RangeAssignor" => Some(Box::new(RangeAssignor)),
        "roundrobin" | "RoundRobinAssignor" => Some(Box::new(RoundRobinAssignor)),
        "sticky" | "StickyAssignor" => Some(Box::new(StickyAssignor)),
        "cooperative-sticky" | "CooperativeStickyAssignor" => {
            Some(Box::new(CooperativeStickyAssignor))
        }
        _ => None,
    }
}

/// Parses a `partition.assignment.strategy` value: one name or a comma-separated list,
/// optionally in brackets (`range`, `range,cooperative-sticky`,
/// `[RangeAssignor, CooperativeStickyAssignor]`), in preference order.
///
/// # Errors
/// An unknown entry (Kafka's class-not-found words, [`class_not_found`], with the names ksim
/// has), an empty entry or list (Kafka's consumer requires at least one assignor), or two
/// entries with the same protocol name (Kafka's `getAssignorInstances`: "The assignor name:
/// '<name>' is used in more than one assignor: <class>, <class>").
pub fn parse_strategy_list(value: &str) -> Result<Vec<Box<dyn PartitionAssignor>>, String> {
    let trimmed = value.trim();
    let inner = match (trimmed.strip_prefix('['), trimmed.strip_suffix(']')) {
        (Some(_), Some(_)) => &trimmed[1..trimmed.len() - 1],
        (None, None) => trimmed,
        _ => {
            return Err(format!(
                "partition.assignment.strategy {value:?}: unbalanced brackets"
            ))
        }
    };
    if inner.trim().is_empty() {
        return Err(format!(
            "partition.assignment.strategy {value:?} is empty: give at least one of {ACCEPTED_NAMES}"
        ));
    }
    let mut assignors: Vec<Box<dyn PartitionAssignor>> = Vec::new();
    for entry in inner.split(',') {
        let assignor = assignor_by_name(entry).ok_or_else(|| class_not_found(entry))?;
        if assignors.iter().any(|a| a.name() == assignor.name()) {
            let class = class_name(assignor.name()).unwrap_or("?");
            return Err(format!(
                "The assignor name: '{}' is used in more than one assignor: {class}, {class}",
                assignor.name()
            ));
        }
        assignors.push(assignor);
    }
    Ok(assignors)
}

/// A member as the range and round-robin assignors order them (Kafka's
/// `AbstractPartitionAssignor.MemberInfo`): static members first, by `group.instance.id`, then
/// dynamic members by member id. Kafka leaves ties between equal instance ids to its sort's
/// input order; here the member id breaks them.
fn member_order_key(s: &Subscription) -> (bool, &str, &str) {
    match &s.group_instance_id {
        Some(id) => (false, id.as_str(), s.member_id.as_str()),
        None => (true, "", s.member_id.as_str()),
    }
}

/// The subscriptions sorted by [`member_order_key`].
fn members_sorted(subscriptions: &[Subscription]) -> Vec<&Subscription> {
    let mut members: Vec<&Subscription> = subscriptions.iter().collect();
    members.sort_by(|a, b| member_order_key(a).cmp(&member_order_key(b)));
    members
}

/// An empty assignment for every member.
fn empty_assignment(subscriptions: &[Subscription]) -> BTreeMap<String, Vec<TopicPartition>> {
    subscriptions
        .iter()
        .map(|s| (s.member_id.clone(), Vec::new()))
        .collect()
}

/// The topics of a subscription, deduplicated and sorted.
fn topic_set(s: &Subscription) -> BTreeSet<&str> {
    s.topics.iter().map(String::as_str).collect()
}

/// Sorts every member's list by topic then partition.
fn sort_lists(assignment: &mut BTreeMap<String, Vec<TopicPartition>>) {
    for list in assignment.values_mut() {
        list.sort();
    }
}
