//! The consumer's configuration (Kafka's `ConsumerConfig`): its struct, its defaults, its
//! table of keys and its parsing.

use super::*;

/// `auto.offset.reset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AutoOffsetReset {
    Earliest,
    Latest,
    /// Throw `NoOffsetForPartitionException`.
    None,
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
    /// `fetch.max.bytes` (52428800).
    pub fetch_max_bytes: u32,
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
    /// `partition.assignment.strategy` as written (Kafka's default
    /// `[RangeAssignor, CooperativeStickyAssignor]`); parsed by `consumer::assignor`.
    pub partition_assignment_strategy: String,
    /// `group.instance.id` (none): static membership, KIP-345.
    pub group_instance_id: Option<String>,
    /// `default.api.timeout.ms` (60000): how long a blocking call that has no timeout of its
    /// own waits, in ms; here `commitSync()` (Kafka's `ConsumerConfig`,
    /// `KafkaConsumer.commitSync()` uses it as its timer).
    pub default_api_timeout_ms: u64,
    /// `key.deserializer` (`StringDeserializer` here; Kafka has no default). The workload
    /// does not read keys, so it only has to be a known class.
    pub key_deserializer: SerdeClass,
    /// `value.deserializer` (`LongDeserializer` here; Kafka has no default). A record it
    /// cannot read stops the partition with a `RecordDeserializationException` (KIP-334).
    pub value_deserializer: SerdeClass,
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
            fetch_max_bytes: 52_428_800,
            request_timeout_ms: 30_000,
            retry_backoff_ms: 100,
            session_timeout_ms: 45_000,
            heartbeat_interval_ms: 3_000,
            max_poll_interval_ms: 300_000,
            partition_assignment_strategy: crate::consumer::assignor::DEFAULT_STRATEGY.to_string(),
            group_instance_id: None,
            default_api_timeout_ms: 60_000,
            key_deserializer: SerdeClass::String,
            value_deserializer: SerdeClass::Long,
        }
    }
}

pub(super) const CONSUMER_KEYS: &[KeyDef] = &[
    k("group.id", Ty::Str),
    k("enable.auto.commit", Ty::Bool),
    k("auto.commit.interval.ms", MS32),
    k(
        "auto.offset.reset",
        Ty::OneOf(&["latest", "earliest", "none"]),
    ),
    k(
        "isolation.level",
        Ty::OneOf(&["read_committed", "read_uncommitted"]),
    ),
    k("fetch.min.bytes", Ty::Int(0, I32)),
    k("fetch.max.wait.ms", MS32),
    k("max.poll.records", Ty::Int(1, I32)),
    k("max.partition.fetch.bytes", Ty::Int(0, I32)),
    k("fetch.max.bytes", Ty::Int(0, I32)),
    k("request.timeout.ms", MS32),
    k("retry.backoff.ms", MS),
    k("session.timeout.ms", MS32),
    k("heartbeat.interval.ms", MS32),
    k("max.poll.interval.ms", Ty::Int(1, I32)),
    k("default.api.timeout.ms", MS32),
    k("partition.assignment.strategy", Ty::List),
    k("group.instance.id", Ty::Str),
    k("key.deserializer", Ty::Class(KEY_DESERIALIZERS)),
    k("value.deserializer", Ty::Class(VALUE_DESERIALIZERS)),
];

impl ConsumerConfig {
    /// Parses consumer settings. As `KafkaConsumer` does, auto commit is off when there is no
    /// `group.id` unless set explicitly, and an explicit `enable.auto.commit = true` without a
    /// group id is an error.
    pub fn from_properties(props: &Properties) -> Result<Self, ConfigError> {
        let p = Parsed::new(ConfigKind::Consumer, props)?;
        let mut c = ConsumerConfig {
            group_id: p.str("group.id").map(str::to_string),
            ..ConsumerConfig::default()
        };
        if let Some(v) = p.bool("enable.auto.commit") {
            c.enable_auto_commit = v;
        }
        if c.group_id.is_none() {
            if !p.has("enable.auto.commit") {
                c.enable_auto_commit = false;
            } else if c.enable_auto_commit {
                return Err(ConfigError {
                    key: "enable.auto.commit".into(),
                    message: "enable.auto.commit cannot be set to true when default group id (null) is used.".into(),
                });
            }
        }
        if let Some(v) = p.num("auto.commit.interval.ms") {
            c.auto_commit_interval_ms = v as u64;
        }
        if let Some(v) = p.str("auto.offset.reset") {
            c.auto_offset_reset = match v {
                "earliest" => AutoOffsetReset::Earliest,
                "latest" => AutoOffsetReset::Latest,
                _ => AutoOffsetReset::None,
            };
        }
        if let Some(v) = p.str("isolation.level") {
            c.isolation_level = if v == "read_committed" {
                IsolationLevel::ReadCommitted
            } else {
                IsolationLevel::ReadUncommitted
            };
        }
        if let Some(v) = p.num("fetch.min.bytes") {
            c.fetch_min_bytes = v as u32;
        }
        if let Some(v) = p.num("fetch.max.wait.ms") {
            c.fetch_max_wait_ms = v as u64;
        }
        if let Some(v) = p.num("max.poll.records") {
            c.max_poll_records = v as u32;
        }
        if let Some(v) = p.num("max.partition.fetch.bytes") {
            c.max_partition_fetch_bytes = v as u32;
        }
        if let Some(v) = p.num("fetch.max.bytes") {
            c.fetch_max_bytes = v as u32;
        }
        if let Some(v) = p.num("request.timeout.ms") {
            c.request_timeout_ms = v as u64;
        }
        if let Some(v) = p.num("retry.backoff.ms") {
            c.retry_backoff_ms = v as u64;
        }
        if let Some(v) = p.num("session.timeout.ms") {
            c.session_timeout_ms = v as u64;
        }
        if let Some(v) = p.num("heartbeat.interval.ms") {
            c.heartbeat_interval_ms = v as u64;
        }
        if let Some(v) = p.num("max.poll.interval.ms") {
            c.max_poll_interval_ms = v as u64;
        }
        if let Some(v) = p.list("partition.assignment.strategy") {
            c.partition_assignment_strategy = v.join(",");
            if let Err(message) =
                crate::consumer::assignor::parse_strategy_list(&c.partition_assignment_strategy)
            {
                return Err(ConfigError {
                    key: "partition.assignment.strategy".into(),
                    message,
                });
            }
        }
        if let Some(v) = p.str("group.instance.id") {
            c.group_instance_id = Some(v.to_string());
        }
        if let Some(v) = p.num("default.api.timeout.ms") {
            c.default_api_timeout_ms = v as u64;
        }
        if let Some(v) = p.str("key.deserializer") {
            c.key_deserializer = SerdeClass::from_class_name(v).expect("validated");
        }
        if let Some(v) = p.str("value.deserializer") {
            c.value_deserializer = SerdeClass::from_class_name(v).expect("validated");
        }
        Ok(c)
    }
}
