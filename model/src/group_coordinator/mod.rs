//! The group coordinator: committed offsets (Kafka's offset store, `GroupMetadataManager.scala`
//! / `OffsetMetadataManager.java` in group-coordinator) and classic consumer groups with the
//! JoinGroup/SyncGroup/Heartbeat protocol (`classic_group.rs`, `group_manager.rs`), hosted by
//! the broker through the [`coordinator_runtime`].
//!
//! # What Kafka does (GROUPS-AND-TRANSACTIONS.md, A1)
//! * **Finding the coordinator.** A group's state lives in one partition of the internal,
//!   compacted topic `__consumer_offsets`: partition `Utils.abs(groupId.hashCode()) %
//!   offsets.topic.num.partitions` (GroupCoordinatorService.java:312, GroupMetadataManager.scala:193),
//!   with Java's `String.hashCode` over UTF-16 code units. The leader of that partition is the
//!   group's coordinator; any broker answers FindCoordinator with it. A broker that finds the
//!   topic missing asks for it to be created (not while fewer brokers than
//!   `offsets.topic.replication.factor` are registered) and answers COORDINATOR_NOT_AVAILABLE
//!   meanwhile.
//! * **OffsetCommit.** The commit becomes one record per partition, keyed (group, topic,
//!   partition), appended with `acks=all` and answered once the high watermark passes it
//!   (`offsets.commit.timeout.ms`, 5 s, else REQUEST_TIMED_OUT). A simple consumer
//!   (`KafkaConsumer.assign()`) commits with generation -1, which an Empty group accepts
//!   (ClassicGroup.java:823-864); groups with members come in a later issue. Append errors are
//!   remapped for the client (GroupMetadataManager.scala's `storeOffsets`): NOT_ENOUGH_REPLICAS
//!   → COORDINATOR_NOT_AVAILABLE, NOT_LEADER_OR_FOLLOWER → NOT_COORDINATOR.
//! * **OffsetFetch** reads the committed state: what is below the high watermark. With
//!   `require_stable` (a read_committed consumer, KIP-447) it answers UNSTABLE_OFFSET_COMMIT
//!   while a transaction holds a pending offset of the group for an asked partition
//!   (OffsetMetadataManager.java:764); the consumer retries.
//! * **TxnOffsetCommit** (KIP-98, KIP-447) stores the offsets as transactional records of the
//!   producer, fenced by generation and member id like OffsetCommit (unless
//!   `sim.txn.offset-commit-fencing = false`) and by producer epoch; they stay pending until
//!   the producer's marker in this partition commits (applied) or aborts (dropped). See
//!   `offsets.rs`.
//! * **Failover.** A new leader replays the partition's log (the last record per key wins, a
//!   null value deletes); the old leader answers its waiting commits NOT_COORDINATOR.
//!
//! [`coordinator_runtime`]: crate::coordinator_runtime

pub mod classic_group;
pub mod group_manager;
pub mod offsets;

use crate::config::TopicConfig;
use crate::coordinator_runtime::CoordinatorRuntime;
use crate::log::CleanupPolicy;
use crate::protocol::ErrorCode;
use crate::types::{CorrelationId, NodeId, TopicPartition};
pub use classic_group::{ClassicGroup, GroupMetadataRecord, GroupState};
pub use group_manager::{GroupConfig, GroupManager, GroupOut, GroupTimer, JoinRequest};
pub use offsets::{CoordinatorRecord, OffsetRecord, OffsetsShard};

/// The internal topic holding group state and committed offsets.
pub const CONSUMER_OFFSETS_TOPIC: &str = "__consumer_offsets";

/// `offsets.commit.timeout.ms` (Kafka's default, 5000): how long a commit waits for its
/// records to commit before it is answered REQUEST_TIMED_OUT (GroupMetadataManager.scala:325).
pub const OFFSETS_COMMIT_TIMEOUT_MS: u64 = 5_000;

/// Java's `String.hashCode`: `h = 31*h + c` over the UTF-16 code units of `s`, wrapping in
/// `i32` (`java.lang.String`). `""` → 0, `"a"` → 97.
pub fn java_string_hash_code(s: &str) -> i32 {
    s.encode_utf16()
        .fold(0i32, |h, c| h.wrapping_mul(31).wrapping_add(c as i32))
}

/// Kafka's `Utils.abs` (Utils.java:188): the absolute value, except that `i32::MIN` maps to 0
/// (where `Math.abs` would stay negative).
pub fn kafka_abs(n: i32) -> i32 {
    if n == i32::MIN {
        0
    } else {
        n.abs()
    }
}

/// The `__consumer_offsets` partition holding `group_id`'s state:
/// `Utils.abs(groupId.hashCode()) % num_partitions` (GroupCoordinatorService.java:312).
/// Panics if `num_partitions < 1` (the config refuses it).
pub fn partition_for(group_id: &str, num_partitions: i32) -> TopicPartition {
    assert!(
        num_partitions >= 1,
        "offsets.topic.num.partitions {num_partitions}"
    );
    TopicPartition::new(
        CONSUMER_OFFSETS_TOPIC,
        kafka_abs(java_string_hash_code(group_id)) % num_partitions,
    )
}

/// Whether `topic` is an internal topic whose partitions a coordinator runtime loads.
pub fn is_internal_topic(topic: &str) -> bool {
    topic == CONSUMER_OFFSETS_TOPIC
}

/// The topic config Kafka creates `__consumer_offsets` with (`GroupCoordinator.groupMetadataTopicConfigs`):
/// `cleanup.policy=compact`; the rest inherits the broker's.
pub fn internal_topic_config() -> TopicConfig {
    TopicConfig {
        cleanup_policy: Some(CleanupPolicy {
            delete: false,
            compact: true,
        }),
        ..TopicConfig::default()
    }
}

/// A commit waiting for its records to commit: whom to answer, and the partitions of the
/// request in its order (the runtime's write token).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingCommit {
    /// The client that sent the OffsetCommit.
    pub from: NodeId,
    /// Its correlation id, echoed in the answer.
    pub corr: CorrelationId,
    /// The request's partitions, each answered with the same error.
    pub partitions: Vec<TopicPartition>,
    /// For the write of a leader's SyncGroup assignment: (group id, generation), whose
    /// outcome goes to [`GroupManager::on_assignment_stored`] instead of an OffsetCommit
    /// answer.
    pub assignment_of: Option<(String, i32)>,
    /// A TxnOffsetCommit: answered with a TxnOffsetCommitResponse.
    pub transactional: bool,
}

/// The offsets store's runtime: one [`OffsetsShard`] per `__consumer_offsets` partition this
/// broker leads.
pub type OffsetsRuntime = CoordinatorRuntime<OffsetsShard, PendingCommit>;

/// The error an OffsetCommit is answered with when the leader refused its append with
/// `error` (GroupMetadataManager.scala `storeOffsets`): lack of replicas or an unknown
/// partition → COORDINATOR_NOT_AVAILABLE; not the leader → NOT_COORDINATOR; anything else
/// as it is.
pub fn commit_error_for_append_error(error: ErrorCode) -> ErrorCode {
    match error {
        ErrorCode::NotEnoughReplicas
        | ErrorCode::NotEnoughReplicasAfterAppend
        | ErrorCode::UnknownTopicOrPartition => ErrorCode::CoordinatorNotAvailable,
        ErrorCode::NotLeaderOrFollower | ErrorCode::KafkaStorageError => ErrorCode::NotCoordinator,
        e => e,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hash_is_javas_string_hash_code() {
        assert_eq!(java_string_hash_code(""), 0);
        assert_eq!(java_string_hash_code("a"), 97);
        assert_eq!(java_string_hash_code("ab"), 97 * 31 + 98);
        assert_eq!(java_string_hash_code("group"), 98629247);
        // "polygenelubricants".hashCode() == Integer.MIN_VALUE (a well-known Java example).
        assert_eq!(java_string_hash_code("polygenelubricants"), i32::MIN);
        // Overflowing strings wrap as Java's int does: "hello world" is 1794106052 in Java.
        assert_eq!(java_string_hash_code("hello world"), 1794106052);
        // Negative hashes (values computed by the formula, as Java prints them).
        assert_eq!(java_string_hash_code("my-group"), -1906497762);
        assert_eq!(java_string_hash_code("orders"), -1008770331);
        // UTF-16 units, not bytes and not code points: U+1F600 is two surrogates.
        assert_eq!(
            java_string_hash_code("\u{1F600}"),
            0xD83Di32.wrapping_mul(31).wrapping_add(0xDE00)
        );
    }

    #[test]
    fn utils_abs_maps_min_value_to_zero() {
        assert_eq!(kafka_abs(-5), 5);
        assert_eq!(kafka_abs(7), 7);
        assert_eq!(kafka_abs(i32::MIN), 0);
        assert_eq!(
            partition_for("polygenelubricants", 50),
            TopicPartition::new(CONSUMER_OFFSETS_TOPIC, 0)
        );
    }

    #[test]
    fn a_group_maps_to_its_offsets_partition() {
        assert_eq!(partition_for("group", 50).partition, 98629247 % 50);
        assert_eq!(partition_for("", 50).partition, 0);
        // abs of a negative hash: |-1906497762| % 50 = 12, |-1008770331| % 50 = 31.
        assert_eq!(partition_for("my-group", 50).partition, 12);
        assert_eq!(partition_for("orders", 50).partition, 31);
        assert_eq!(partition_for("a", 1).partition, 0);
    }
}
