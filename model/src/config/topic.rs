//! A topic's configuration overrides (the topic-level keys of Kafka's `LogConfig`), their
//! broker-wide synonyms and their parsing.

use super::*;

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
    /// `segment.ms`.
    #[serde(default)]
    pub segment_ms: Option<i64>,
    /// `segment.index.bytes`.
    #[serde(default)]
    pub segment_index_bytes: Option<u32>,
    /// `retention.ms` (negative: unlimited).
    #[serde(default)]
    pub retention_ms: Option<i64>,
    /// `retention.bytes` (negative: unlimited).
    #[serde(default)]
    pub retention_bytes: Option<i64>,
    /// `cleanup.policy`.
    #[serde(default)]
    pub cleanup_policy: Option<CleanupPolicy>,
    /// `delete.retention.ms`.
    #[serde(default)]
    pub delete_retention_ms: Option<i64>,
    /// `compression.type` (inherits the broker's).
    pub compression_type: Option<BrokerCompression>,
}

impl TopicConfig {
    /// The settings a partition of this topic logs with: these overrides on top of the
    /// broker's `log.*` defaults (Kafka's `LogConfig`).
    pub fn log_config(&self, broker: &BrokerConfig) -> LogConfig {
        LogConfig {
            segment_bytes: self.segment_bytes.unwrap_or(broker.log_segment_bytes),
            segment_ms: self.segment_ms.unwrap_or(broker.log_roll_ms),
            index_interval_bytes: broker.log_index_interval_bytes,
            max_index_size_bytes: self
                .segment_index_bytes
                .unwrap_or(broker.log_index_size_max_bytes),
            retention_ms: self.retention_ms.unwrap_or(broker.log_retention_ms),
            retention_bytes: self.retention_bytes.unwrap_or(broker.log_retention_bytes),
            cleanup_policy: self.cleanup_policy.unwrap_or(broker.log_cleanup_policy),
            delete_retention_ms: self
                .delete_retention_ms
                .unwrap_or(broker.log_cleaner_delete_retention_ms),
        }
    }
}

pub(super) const TOPIC_KEYS: &[KeyDef] = &[
    k("min.insync.replicas", Ty::Int(1, I32)),
    k("unclean.leader.election.enable", Ty::Bool),
    k("flush.messages", Ty::Long(1, I64)),
    k("flush.ms", MS),
    k("segment.bytes", Ty::Int(14, I32)),
    k("cleanup.policy", Ty::ListOf(&["compact", "delete"])),
    k("retention.ms", Ty::Long(-1, I64)),
    k("retention.bytes", Ty::Long(-1, I64)),
    k("segment.ms", Ty::Long(1, I64)),
    k("segment.index.bytes", Ty::Int(4, I32)),
    k("delete.retention.ms", Ty::Long(0, I64)),
    k(
        "compression.type",
        Ty::OneOf(&["uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"]),
    ),
];

/// Broker-level names written in a topic's config: suggest the topic-level name.
pub(super) const TOPIC_SYNONYMS: &[(&str, &str)] = &[
    ("log.flush.interval.messages", "flush.messages"),
    ("log.flush.interval.ms", "flush.ms"),
    ("log.segment.bytes", "segment.bytes"),
    ("log.cleanup.policy", "cleanup.policy"),
    ("log.retention.ms", "retention.ms"),
    ("log.retention.bytes", "retention.bytes"),
    ("log.roll.ms", "segment.ms"),
    ("log.index.size.max.bytes", "segment.index.bytes"),
    ("log.cleaner.delete.retention.ms", "delete.retention.ms"),
];

impl TopicConfig {
    /// Parses topic-level overrides (`kafka-configs --entity-type topics` names).
    pub fn from_properties(props: &Properties) -> Result<Self, ConfigError> {
        let p = Parsed::new(ConfigKind::Topic, props)?;
        Ok(TopicConfig {
            min_insync_replicas: p.num("min.insync.replicas").map(|v| v as i32),
            unclean_leader_election_enable: p.bool("unclean.leader.election.enable"),
            flush_messages: p.num("flush.messages").map(|v| v as u64),
            flush_ms: p.num("flush.ms").map(|v| v as u64),
            segment_bytes: p.num("segment.bytes").map(|v| v as u64),
            segment_ms: p.num("segment.ms"),
            segment_index_bytes: p.num("segment.index.bytes").map(|v| v as u32),
            retention_ms: p.num("retention.ms"),
            retention_bytes: p.num("retention.bytes"),
            cleanup_policy: p.list("cleanup.policy").map(CleanupPolicy::from_list),
            delete_retention_ms: p.num("delete.retention.ms"),
            compression_type: p
                .str("compression.type")
                .map(|v| BrokerCompression::parse(v).expect("validated")),
        })
    }
}
