//! Newtypes for the identifiers and positions that cross module boundaries.
//!
//! Kafka's wire protocol uses `int32` for broker ids, partitions and leader epochs, `int64` for
//! offsets and producer ids, `int16` for producer epochs and `int32` for sequences; the newtypes
//! keep those widths so that a value read from a record batch needs no conversion.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Simulated time in milliseconds since the start of the run.
///
/// State machines never read a clock: the shell passes `now` into every handler.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
pub struct Instant(pub u64);

impl Instant {
    /// Milliseconds since the start of the run.
    pub fn as_ms(self) -> u64 {
        self.0
    }
    /// `self + ms`, saturating.
    pub fn plus_ms(self, ms: u64) -> Instant {
        Instant(self.0.saturating_add(ms))
    }
    /// Milliseconds from `earlier` to `self`, 0 if `earlier` is later.
    pub fn since(self, earlier: Instant) -> u64 {
        self.0.saturating_sub(earlier.0)
    }
}

macro_rules! newtype {
    ($(#[$m:meta])* $name:ident($inner:ty)) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
        pub struct $name(pub $inner);
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}", self.0)
            }
        }
    };
}

newtype!(
    /// `broker.id`: 0 .. brokers-1 in a scenario.
    BrokerId(i32)
);
newtype!(
    /// A position in a partition's log (Kafka `int64` offset).
    Offset(i64)
);
newtype!(
    /// The epoch of a partition's leadership; bumped by the controller on every leader change
    /// (and, in ZooKeeper mode, on every controller-driven ISR change).
    LeaderEpoch(i32)
);
newtype!(
    /// The epoch of the active controller, stored in `/controller_epoch`; fences a deposed
    /// controller's requests.
    ControllerEpoch(i32)
);
newtype!(
    /// Producer id (PID) handed out by InitProducerId (KIP-98).
    ProducerId(i64)
);
newtype!(
    /// Producer epoch, bumped when a transactional id is re-initialised or after KIP-360 resets.
    ProducerEpoch(i16)
);
newtype!(
    /// Per-partition sequence number of the first record of a batch (KIP-98).
    Sequence(i32)
);
newtype!(
    /// Version of a znode's data, as ZooKeeper's `Stat.version`; used for conditional writes.
    ZkVersion(i32)
);
newtype!(
    /// A coordination-node session id.
    SessionId(i64)
);
newtype!(
    /// Matches a response to its request on one client.
    CorrelationId(u64)
);
newtype!(
    /// The registration epoch of a broker (KIP-380): the zkVersion/czxid of its `/brokers/ids`
    /// znode, so that a bounced broker can be told apart from its previous incarnation.
    BrokerEpoch(i64)
);

impl Offset {
    /// The offset after this one.
    pub fn next(self) -> Offset {
        Offset(self.0 + 1)
    }
}

impl LeaderEpoch {
    /// "No epoch known" (`-1` on the wire).
    pub const UNKNOWN: LeaderEpoch = LeaderEpoch(-1);
    /// The following epoch.
    pub fn next(self) -> LeaderEpoch {
        LeaderEpoch(self.0 + 1)
    }
}

impl ProducerId {
    /// "No producer id" (`-1`), used by non-idempotent producers.
    pub const NONE: ProducerId = ProducerId(-1);
}

/// A topic's name, interned: cloning is a reference-count increment and two names of the same
/// topic share one allocation, so the partition maps keyed by [`TopicPartition`] (looked up
/// for every partition of every fetch) compare equal names by pointer before comparing bytes.
///
/// Ordering, equality and hashing are those of the name's text, so a map's iteration order
/// (and with it every output of a run) does not depend on where a name was allocated. Names
/// are interned per thread (each simulation runs on a thread of its own); the interner keeps
/// one copy of each distinct name that thread has seen. Serialised as a plain string.
#[derive(Clone)]
pub struct TopicName(std::sync::Arc<str>);

/// The interned names of one thread: the first [`INTERNED_BY_SCAN`] in a list searched by
/// comparing bytes (a run has a few topics, and this beats hashing the name for every
/// partition of every message decoded), the others in a hash set.
#[derive(Default)]
struct TopicNames {
    few: Vec<std::sync::Arc<str>>,
    more: std::collections::HashSet<std::sync::Arc<str>>,
}

const INTERNED_BY_SCAN: usize = 16;

thread_local! {
    static TOPIC_NAMES: std::cell::RefCell<TopicNames> =
        std::cell::RefCell::new(TopicNames::default());
}

impl TopicName {
    /// The interned name `name`: the thread's existing copy if it has one.
    pub fn new(name: &str) -> TopicName {
        TOPIC_NAMES.with(|names| {
            let mut names = names.borrow_mut();
            if let Some(existing) = names.few.iter().find(|n| ***n == *name) {
                return TopicName(existing.clone());
            }
            if let Some(existing) = names.more.get(name) {
                return TopicName(existing.clone());
            }
            let fresh: std::sync::Arc<str> = std::sync::Arc::from(name);
            if names.few.len() < INTERNED_BY_SCAN {
                names.few.push(fresh.clone());
            } else {
                names.more.insert(fresh.clone());
            }
            TopicName(fresh)
        })
    }
    /// The name's text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::ops::Deref for TopicName {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for TopicName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl std::borrow::Borrow<str> for TopicName {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl PartialEq for TopicName {
    fn eq(&self, other: &Self) -> bool {
        std::sync::Arc::ptr_eq(&self.0, &other.0) || *self.0 == *other.0
    }
}

impl Eq for TopicName {}

impl PartialOrd for TopicName {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for TopicName {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        if std::sync::Arc::ptr_eq(&self.0, &other.0) {
            return std::cmp::Ordering::Equal;
        }
        self.0.cmp(&other.0)
    }
}

impl std::hash::Hash for TopicName {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.hash(state)
    }
}

impl PartialEq<str> for TopicName {
    fn eq(&self, other: &str) -> bool {
        &*self.0 == other
    }
}

impl PartialEq<&str> for TopicName {
    fn eq(&self, other: &&str) -> bool {
        &*self.0 == *other
    }
}

impl PartialEq<String> for TopicName {
    fn eq(&self, other: &String) -> bool {
        *self.0 == **other
    }
}

impl PartialEq<TopicName> for String {
    fn eq(&self, other: &TopicName) -> bool {
        **self == *other.0
    }
}

impl PartialEq<TopicName> for str {
    fn eq(&self, other: &TopicName) -> bool {
        *self == *other.0
    }
}

impl PartialEq<TopicName> for &str {
    fn eq(&self, other: &TopicName) -> bool {
        **self == *other.0
    }
}

impl From<&str> for TopicName {
    fn from(name: &str) -> Self {
        TopicName::new(name)
    }
}

impl From<&String> for TopicName {
    fn from(name: &String) -> Self {
        TopicName::new(name)
    }
}

impl From<String> for TopicName {
    fn from(name: String) -> Self {
        TopicName::new(&name)
    }
}

impl From<&TopicName> for TopicName {
    fn from(name: &TopicName) -> Self {
        name.clone()
    }
}

impl From<TopicName> for String {
    fn from(name: TopicName) -> Self {
        name.0.to_string()
    }
}

impl fmt::Debug for TopicName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl fmt::Display for TopicName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for TopicName {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for TopicName {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = TopicName;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a topic name")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<TopicName, E> {
                Ok(TopicName::new(v))
            }
        }
        d.deserialize_str(Visitor)
    }
}

/// A topic and partition, as `TOPIC-P` in Kafka's own log directory names.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct TopicPartition {
    pub topic: TopicName,
    pub partition: i32,
}

impl TopicPartition {
    pub fn new(topic: impl Into<TopicName>, partition: i32) -> Self {
        TopicPartition {
            topic: topic.into(),
            partition,
        }
    }
}

impl fmt::Display for TopicPartition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.topic, self.partition)
    }
}

/// Every process in the simulated world. The `Display` form is the node's name in scenarios,
/// reports and logs (`broker-0`, `zk`, `producer-1`, `consumer-0`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum NodeId {
    /// The ZooKeeper-style coordination node.
    Zk,
    Broker(BrokerId),
    /// Producer client number n (scenario order, counting every `count`).
    Producer(u32),
    /// Consumer client number n.
    Consumer(u32),
    /// Processor client number n (a consume-transform-produce application, SCENARIOS.md
    /// `[[processors]]`, numbered in file order counting every `members`).
    Processor(u32),
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NodeId::Zk => write!(f, "zk"),
            NodeId::Broker(b) => write!(f, "broker-{}", b.0),
            NodeId::Producer(n) => write!(f, "producer-{n}"),
            NodeId::Consumer(n) => write!(f, "consumer-{n}"),
            NodeId::Processor(n) => write!(f, "processor-{n}"),
        }
    }
}

impl NodeId {
    /// Parses the `Display` form back; `None` for anything else.
    pub fn parse(s: &str) -> Option<NodeId> {
        if s == "zk" {
            return Some(NodeId::Zk);
        }
        let (kind, n) = s.rsplit_once('-')?;
        match kind {
            "broker" => n.parse().ok().map(|n| NodeId::Broker(BrokerId(n))),
            "producer" => n.parse().ok().map(NodeId::Producer),
            "consumer" => n.parse().ok().map(NodeId::Consumer),
            "processor" => n.parse().ok().map(NodeId::Processor),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_names_round_trip() {
        for n in [
            NodeId::Zk,
            NodeId::Broker(BrokerId(2)),
            NodeId::Producer(0),
            NodeId::Consumer(7),
            NodeId::Processor(3),
        ] {
            assert_eq!(NodeId::parse(&n.to_string()), Some(n));
        }
        assert_eq!(NodeId::parse("broker-x"), None);
        assert_eq!(NodeId::parse("kafka-1"), None);
    }

    #[test]
    fn topic_names_are_interned_and_compared_as_text() {
        let a = TopicName::new("events");
        let b: TopicName = String::from("events").into();
        assert!(std::sync::Arc::ptr_eq(&a.0, &b.0), "one copy per thread");
        assert_eq!(a, b);
        assert_eq!(a, "events");
        // Past the scanned list, names go to the hash set and are still shared.
        let many: Vec<TopicName> = (0..40).map(|i| TopicName::new(&format!("t{i}"))).collect();
        let again = TopicName::new("t39");
        assert!(std::sync::Arc::ptr_eq(&many[39].0, &again.0));
        // Order and equality are the text's, whatever the allocation.
        let mut names = vec![
            TopicName::new("b"),
            TopicName::new("a"),
            TopicName::new("c"),
        ];
        names.sort();
        let texts: Vec<&str> = names.iter().map(|n| n.as_str()).collect();
        assert_eq!(texts, ["a", "b", "c"]);
        let tp = TopicPartition::new("events", 2);
        let json = serde_json::to_string(&tp).unwrap();
        assert_eq!(json, r#"{"topic":"events","partition":2}"#);
        assert_eq!(serde_json::from_str::<TopicPartition>(&json).unwrap(), tp);
    }
}
