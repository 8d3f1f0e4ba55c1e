//! Typed configuration with Kafka's own names and defaults.
//!
//! Scenario files write configuration as Kafka properties (`"min.insync.replicas" = 2`,
//! `acks = "all"`). [`Properties`] holds them as written; each `*Config::from_properties`
//! checks every key against the table of known keys, parses values the way Kafka's
//! `ConfigDef` does (a string or the natural type), applies Kafka's defaults and cross-field
//! rules, and returns a [`ConfigError`] naming the key for anything else.
//!
//! Defaults are those of Apache Kafka 3.x (`KafkaConfig`, `ProducerConfig`, `ConsumerConfig`).

use crate::protocol::{Acks, IsolationLevel};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// A property value as the user wrote it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum PropValue {
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    List(Vec<PropValue>),
}

impl fmt::Display for PropValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PropValue::Bool(b) => write!(f, "{b}"),
            PropValue::Int(i) => write!(f, "{i}"),
            PropValue::Float(x) => write!(f, "{x}"),
            PropValue::Str(s) => write!(f, "{s}"),
            PropValue::List(l) => {
                let parts: Vec<String> = l.iter().map(|v| v.to_string()).collect();
                write!(f, "{}", parts.join(","))
            }
        }
    }
}

/// Properties in the order the user wrote them does not matter; keys are sorted.
pub type Properties = BTreeMap<String, PropValue>;

/// A configuration error, worded like Kafka's `ConfigException` where Kafka has one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The offending key (`acks`, `min.insync.replicas`, ...).
    pub key: String,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.key, self.message)
    }
}

impl std::error::Error for ConfigError {}

/// `sim.replication.truncation`: how a follower decides where to truncate after a leader
/// change. Only `Fenced` is the modern, safe protocol; the others bring back historic bugs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TruncationMode {
    /// Before KIP-101: truncate to the local high watermark on becoming follower.
    HighWatermark,
    /// KIP-101: OffsetForLeaderEpoch with the follower's latest epoch.
    Kip101,
    /// KIP-279: the epoch lookup repeated until both sides agree on an epoch.
    Kip279,
    /// KIP-320's first attempt (no fencing of fetches by the current leader epoch).
    Kip320FirstTry,
    /// The default: fetches carry and are fenced by the current leader epoch, truncation uses
    /// the diverging-epoch check, HW counts only followers on the leader's epoch (Kip320.tla).
    Fenced,
}

/// `server.properties` of every broker, plus `sim.*` settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BrokerConfig {
    /// `min.insync.replicas` (1).
    pub min_insync_replicas: i32,
    /// `unclean.leader.election.enable` (false).
    pub unclean_leader_election_enable: bool,
    /// `replica.lag.time.max.ms` (30000).
    pub replica_lag_time_max_ms: u64,
    /// `replica.fetch.wait.max.ms` (500).
    pub replica_fetch_wait_max_ms: u64,
    /// `replica.fetch.max.bytes` (1048576).
    pub replica_fetch_max_bytes: u32,
    /// `replica.fetch.backoff.ms` (1000).
    pub replica_fetch_backoff_ms: u64,
    /// `log.segment.bytes` (1073741824).
    pub log_segment_bytes: u64,
    /// `log.flush.interval.messages` (Long.MAX_VALUE: never forced).
    pub log_flush_interval_messages: u64,
    /// `log.flush.interval.ms` (unset: never forced).
    pub log_flush_interval_ms: Option<u64>,
    /// `log.flush.offset.checkpoint.interval.ms` / `replica.high.watermark.checkpoint.interval.ms` (5000).
    pub replica_high_watermark_checkpoint_interval_ms: u64,
    /// `zookeeper.session.timeout.ms` (18000).
    pub zookeeper_session_timeout_ms: u64,
    /// `num.partitions` (1).
    pub num_partitions: i32,
    /// `default.replication.factor` (1).
    pub default_replication_factor: i32,
    /// `auto.create.topics.enable` (true).
    pub auto_create_topics_enable: bool,
    /// `controller.socket.timeout.ms` (30000).
    pub controller_socket_timeout_ms: u64,
    /// `sim.replication.truncation` ("fenced").
    pub replication_truncation: TruncationMode,
}

impl Default for BrokerConfig {
    fn default() -> Self {
        BrokerConfig {
            min_insync_replicas: 1,
            unclean_leader_election_enable: false,
            replica_lag_time_max_ms: 30_000,
            replica_fetch_wait_max_ms: 500,
            replica_fetch_max_bytes: 1_048_576,
            replica_fetch_backoff_ms: 1_000,
            log_segment_bytes: 1 << 30,
            log_flush_interval_messages: u64::MAX,
            log_flush_interval_ms: None,
            replica_high_watermark_checkpoint_interval_ms: 5_000,
            zookeeper_session_timeout_ms: 18_000,
            num_partitions: 1,
            default_replication_factor: 1,
            auto_create_topics_enable: true,
            controller_socket_timeout_ms: 30_000,
            replication_truncation: TruncationMode::Fenced,
        }
    }
}

/// Topic-level overrides (`kafka-configs --entity-type topics`); `None` inherits the broker's.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct TopicConfig {
    /// `min.insync.replicas`.
    pub min_insync_replicas: Option<i32>,
    /// `unclean.leader.election.enable`.
    pub unclean_leader_election_enable: Option<bool>,
    /// `flush.messages` (topic name of `log.flush.interval.messages`).
    pub flush_messages: Option<u64>,
    /// `flush.ms`.
    pub flush_ms: Option<u64>,
    /// `segment.bytes`.
    pub segment_bytes: Option<u64>,
}

/// `auto.offset.reset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AutoOffsetReset {
    Earliest,
    Latest,
    /// Throw `NoOffsetForPartitionException`.
    None,
}

/// Producer configuration (`ProducerConfig`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProducerConfig {
    /// `acks` ("all").
    pub acks: Acks,
    /// `retries` (2147483647).
    pub retries: i32,
    /// `enable.idempotence` (true; silently false when the user did not set it and set an
    /// incompatible `acks`/`retries`/`max.in.flight`, as Kafka 3.2+ does).
    pub enable_idempotence: bool,
    /// `max.in.flight.requests.per.connection` (5).
    pub max_in_flight_requests_per_connection: u32,
    /// `batch.size` in bytes (16384).
    pub batch_size: u32,
    /// `linger.ms` (5).
    pub linger_ms: u64,
    /// `buffer.memory` in bytes (33554432).
    pub buffer_memory: u64,
    /// `max.block.ms` (60000).
    pub max_block_ms: u64,
    /// `request.timeout.ms` (30000).
    pub request_timeout_ms: u64,
    /// `delivery.timeout.ms` (120000); must be >= `linger.ms + request.timeout.ms`.
    pub delivery_timeout_ms: u64,
    /// `retry.backoff.ms` (100).
    pub retry_backoff_ms: u64,
    /// `metadata.max.age.ms` (300000).
    pub metadata_max_age_ms: u64,
    /// `partitioner.ignore.keys` (false).
    pub partitioner_ignore_keys: bool,
}

impl Default for ProducerConfig {
    fn default() -> Self {
        ProducerConfig {
            acks: Acks::All,
            retries: i32::MAX,
            enable_idempotence: true,
            max_in_flight_requests_per_connection: 5,
            batch_size: 16_384,
            linger_ms: 5,
            buffer_memory: 33_554_432,
            max_block_ms: 60_000,
            request_timeout_ms: 30_000,
            delivery_timeout_ms: 120_000,
            retry_backoff_ms: 100,
            metadata_max_age_ms: 300_000,
            partitioner_ignore_keys: false,
        }
    }
}

/// Consumer configuration (`ConsumerConfig`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConsumerConfig {
    /// `group.id` (none).
    pub group_id: Option<String>,
    /// `enable.auto.commit` (true).
    pub enable_auto_commit: bool,
    /// `auto.commit.interval.ms` (5000).
    pub auto_commit_interval_ms: u64,
    /// `auto.offset.reset` ("latest").
    pub auto_offset_reset: AutoOffsetReset,
    /// `isolation.level` ("read_uncommitted").
    pub isolation_level: IsolationLevel,
    /// `fetch.min.bytes` (1).
    pub fetch_min_bytes: u32,
    /// `fetch.max.wait.ms` (500).
    pub fetch_max_wait_ms: u64,
    /// `max.poll.records` (500).
    pub max_poll_records: u32,
    /// `max.partition.fetch.bytes` (1048576).
    pub max_partition_fetch_bytes: u32,
    /// `request.timeout.ms` (30000).
    pub request_timeout_ms: u64,
    /// `retry.backoff.ms` (100).
    pub retry_backoff_ms: u64,
    /// `session.timeout.ms` (45000).
    pub session_timeout_ms: u64,
    /// `heartbeat.interval.ms` (3000).
    pub heartbeat_interval_ms: u64,
    /// `max.poll.interval.ms` (300000).
    pub max_poll_interval_ms: u64,
}

impl Default for ConsumerConfig {
    fn default() -> Self {
        ConsumerConfig {
            group_id: None,
            enable_auto_commit: true,
            auto_commit_interval_ms: 5_000,
            auto_offset_reset: AutoOffsetReset::Latest,
            isolation_level: IsolationLevel::ReadUncommitted,
            fetch_min_bytes: 1,
            fetch_max_wait_ms: 500,
            max_poll_records: 500,
            max_partition_fetch_bytes: 1_048_576,
            request_timeout_ms: 30_000,
            retry_backoff_ms: 100,
            session_timeout_ms: 45_000,
            heartbeat_interval_ms: 3_000,
            max_poll_interval_ms: 300_000,
        }
    }
}
