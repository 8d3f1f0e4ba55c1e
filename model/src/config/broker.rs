//! The broker's configuration (Kafka's `KafkaConfig`, with ksim's `sim.*` keys): its struct,
//! its defaults, its table of keys and its parsing.

use super::*;

/// `sim.replication.truncation`: how a follower decides where to truncate after a leader
/// change. Only `Fenced` is the modern, safe protocol; the others bring back historic bugs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TruncationMode {
    /// Before KIP-101 (Kafka < 0.11): truncate to the local high watermark on becoming
    /// follower; fetches carry no epochs (`KafkaTruncateToHighWatermark.tla`).
    HighWatermark,
    /// KIP-101 (Kafka 0.11): on every new leader epoch a follower sends OffsetsForLeaderEpoch
    /// for the epoch of its last record; the leader answers with the start offset of its first
    /// epoch larger than that (its LEO if the epoch is its latest), without an epoch, and the
    /// follower truncates there in one round (`Kip101.tla`). Fetches carry no epochs.
    Kip101,
    /// KIP-279 (Kafka 2.0): the answer carries the leader's largest epoch `<=` the requested
    /// one and the follower repeats the lookup until both agree on an epoch (`Kip279.tla`).
    /// As Kafka before KAFKA-7164, the truncation runs only when the follower learns of a new
    /// leader, not when the same leader starts a new epoch; fetches carry no epochs.
    Kip279,
    /// KIP-320's first attempt (`Kip320FirstTry.tla`): a follower does not truncate on becoming
    /// follower but on a diverging fetch (fetches carry the last fetched epoch); fetches do not
    /// carry the current leader epoch, so the leader counts a follower still on an old epoch
    /// toward its high watermark and ISR.
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
    /// `replica.fetch.min.bytes` (1): the bytes a follower's fetch waits for, summed over
    /// its partitions, before the leader answers it (or `replica.fetch.wait.max.ms` elapses).
    pub replica_fetch_min_bytes: u32,
    /// `replica.fetch.response.max.bytes` (10485760): the bytes one follower fetch response
    /// may carry over all its partitions (the first batch is returned even if larger).
    pub replica_fetch_response_max_bytes: u32,
    /// `log.segment.bytes` (1073741824).
    pub log_segment_bytes: u64,
    /// `log.flush.interval.messages` (Long.MAX_VALUE: never forced).
    pub log_flush_interval_messages: u64,
    /// `log.flush.interval.ms` (unset: never forced).
    pub log_flush_interval_ms: Option<u64>,
    /// `replica.high.watermark.checkpoint.interval.ms` (5000).
    pub replica_high_watermark_checkpoint_interval_ms: u64,
    /// `log.flush.offset.checkpoint.interval.ms` (60000): how often the recovery point is
    /// checkpointed.
    pub log_flush_offset_checkpoint_interval_ms: u64,
    /// `log.index.interval.bytes` (4096).
    pub log_index_interval_bytes: u32,
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
    /// `sim.controller.epoch-fencing` (true): brokers remember the highest controller epoch
    /// they accepted and refuse LeaderAndIsr / UpdateMetadata / StopReplica from an older one
    /// (STALE_CONTROLLER_EPOCH), and a controller that hears nothing from the coordination node
    /// for `zookeeper.session.timeout.ms` resigns (its session is gone by then: a new
    /// controller may be elected). `false` is the legacy, unfenced mode: brokers obey any
    /// controller, and a deposed controller keeps sending until the coordination node tells it
    /// its session expired (the zombie-controller split brain).
    pub controller_epoch_fencing: bool,
    /// `log.roll.ms` (604800000, or `log.roll.hours` 168): roll a segment whose first record
    /// is this much older than the next one.
    pub log_roll_ms: i64,
    /// `log.index.size.max.bytes` (10485760): a segment whose index is this full is rolled.
    pub log_index_size_max_bytes: u32,
    /// `log.retention.ms` (604800000, or `log.retention.minutes` / `log.retention.hours` 168);
    /// negative: unlimited.
    pub log_retention_ms: i64,
    /// `log.retention.bytes` (-1: unlimited), per partition.
    pub log_retention_bytes: i64,
    /// `log.retention.check.interval.ms` (300000): how often retention runs.
    pub log_retention_check_interval_ms: u64,
    /// `log.cleanup.policy` (`delete`).
    pub log_cleanup_policy: CleanupPolicy,
    /// `log.cleaner.delete.retention.ms` (86400000): how long tombstones survive cleaning.
    pub log_cleaner_delete_retention_ms: i64,
    /// `log.cleaner.backoff.ms` (15000): the cleaner's pause between passes.
    pub log_cleaner_backoff_ms: u64,
    /// `log.flush.start.offset.checkpoint.interval.ms` (60000).
    pub log_flush_start_offset_checkpoint_interval_ms: u64,
    /// `compression.type` ("producer"): the codec the leader stores batches in.
    pub compression_type: BrokerCompression,
    /// `offsets.topic.num.partitions` (50): partitions of `__consumer_offsets` when a broker
    /// creates it (`GroupCoordinatorConfig`); a group's coordinator is the leader of
    /// partition `abs(hash(group)) % this`.
    pub offsets_topic_num_partitions: i32,
    /// `offsets.topic.replication.factor` (3): replicas of each `__consumer_offsets`
    /// partition; the topic is not created while fewer brokers are registered.
    pub offsets_topic_replication_factor: i32,
    /// `group.initial.rebalance.delay.ms` (3000): how long an empty group waits for more
    /// members before its first join phase ends (extended while members arrive).
    pub group_initial_rebalance_delay_ms: u64,
    /// `group.min.session.timeout.ms` (6000): the smallest `session.timeout.ms` accepted.
    pub group_min_session_timeout_ms: u64,
    /// `group.max.session.timeout.ms` (1800000): the largest `session.timeout.ms` accepted.
    pub group_max_session_timeout_ms: u64,
    /// `offsets.retention.minutes` (10080). Accepted; offsets do not expire in the model yet.
    pub offsets_retention_minutes: i64,
    /// `sim.group.offset-commit-fencing` (true): OffsetCommit is fenced by member id and
    /// generation; false is the legacy switch under which a zombie's commit lands.
    pub group_offset_commit_fencing: bool,
    /// `transaction.state.log.num.partitions` (50): partitions of `__transaction_state`; a
    /// `transactional.id`'s coordinator leads partition `abs(hash(id)) % this`
    /// (`TransactionLogConfig`).
    pub transaction_state_log_num_partitions: i32,
    /// `transaction.state.log.replication.factor` (3): replicas of each `__transaction_state`
    /// partition; the topic is not created while fewer brokers are registered.
    pub transaction_state_log_replication_factor: i32,
    /// `transaction.state.log.min.isr` (2): `min.insync.replicas` of `__transaction_state`.
    pub transaction_state_log_min_isr: i32,
    /// `transaction.max.timeout.ms` (900000): the largest `transaction.timeout.ms` a producer
    /// may ask for (else INVALID_TRANSACTION_TIMEOUT).
    pub transaction_max_timeout_ms: u64,
    /// `transaction.abort.timed.out.transaction.cleanup.interval.ms` (10000): how often the
    /// coordinator aborts transactions older than their timeout (KAFKA-6119: with an epoch
    /// bump).
    pub transaction_abort_timed_out_transaction_cleanup_interval_ms: u64,
    /// `transaction.partition.verification.enable` (true): KIP-890 part 1, a partition leader
    /// verifies a producer's first transactional write with the coordinator.
    pub transaction_partition_verification_enable: bool,
    /// `transaction.version` (2): 1 = KIP-98 transactions; 2 = KIP-890 part 2, every EndTxn
    /// bumps the producer epoch.
    pub transaction_version: i16,
    /// `sim.txn.producer-fencing` (true): the coordinator bumps and checks producer epochs, and
    /// a partition refuses a transactional batch or a marker whose producer epoch is below the
    /// producer's current one (INVALID_PRODUCER_EPOCH, Kafka's
    /// `ProducerAppendInfo.checkProducerEpoch`); false is the legacy switch under which a
    /// zombie producer keeps writing and its transaction still commits
    /// (GROUPS-AND-TRANSACTIONS.md B4.1).
    pub txn_producer_fencing: bool,
    /// `sim.txn.offset-commit-fencing` (true): TxnOffsetCommit is fenced by the group's
    /// generation and member id (KIP-447); false is the legacy switch under which a zombie
    /// processor's transactional offset commit lands (GROUPS-AND-TRANSACTIONS.md B4.5).
    pub txn_offset_commit_fencing: bool,
    /// `sim.fetch.delayed-isolation` (true): a fetch that waited in purgatory (Kafka's
    /// DelayedFetch) is read, when it completes, with its own isolation level. false is the
    /// legacy switch bringing back KAFKA-5355 (fixed on 3 June 2017, before 0.11.0.0 shipped:
    /// apache/kafka#3221 "DelayedFetch should propagate isolation level to log read"): the
    /// completion reads a read_committed fetch as read_uncommitted, up to the high watermark
    /// and without the aborted-transaction list, so a read_committed consumer that waited for
    /// data gets the records of open (and aborted) transactions.
    pub fetch_delayed_isolation: bool,
}

/// The broker's and topic's `compression.type`: keep the producer's codec (`producer`, the
/// default), or recompress every batch into one codec (`uncompressed` = none), as Kafka's
/// `LogValidator` does on the leader.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum BrokerCompression {
    /// `producer`: store batches as the producer compressed them.
    #[default]
    Producer,
    /// Recompress batches that arrive in another codec into this one.
    Codec(Compression),
}

impl BrokerCompression {
    /// Parses a validated `compression.type` value (`producer`, `uncompressed`, a codec name).
    pub fn parse(v: &str) -> Option<BrokerCompression> {
        if v == "producer" {
            return Some(BrokerCompression::Producer);
        }
        Compression::from_name(v).map(BrokerCompression::Codec)
    }
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
            replica_fetch_min_bytes: 1,
            replica_fetch_response_max_bytes: 10_485_760,
            log_segment_bytes: 1 << 30,
            log_flush_interval_messages: u64::MAX,
            log_flush_interval_ms: None,
            replica_high_watermark_checkpoint_interval_ms: 5_000,
            log_flush_offset_checkpoint_interval_ms: 60_000,
            log_index_interval_bytes: 4_096,
            zookeeper_session_timeout_ms: 18_000,
            num_partitions: 1,
            default_replication_factor: 1,
            auto_create_topics_enable: true,
            controller_socket_timeout_ms: 30_000,
            replication_truncation: TruncationMode::Fenced,
            controller_epoch_fencing: true,
            log_roll_ms: 604_800_000,
            log_index_size_max_bytes: 10 * 1024 * 1024,
            log_retention_ms: 604_800_000,
            log_retention_bytes: -1,
            log_retention_check_interval_ms: 300_000,
            log_cleanup_policy: CleanupPolicy::DELETE,
            log_cleaner_delete_retention_ms: 86_400_000,
            log_cleaner_backoff_ms: 15_000,
            log_flush_start_offset_checkpoint_interval_ms: 60_000,
            compression_type: BrokerCompression::Producer,
            offsets_topic_num_partitions: 50,
            offsets_topic_replication_factor: 3,
            group_initial_rebalance_delay_ms: 3_000,
            group_min_session_timeout_ms: 6_000,
            group_max_session_timeout_ms: 1_800_000,
            offsets_retention_minutes: 10_080,
            group_offset_commit_fencing: true,
            transaction_state_log_num_partitions: 50,
            transaction_state_log_replication_factor: 3,
            transaction_state_log_min_isr: 2,
            transaction_max_timeout_ms: 900_000,
            transaction_abort_timed_out_transaction_cleanup_interval_ms: 10_000,
            transaction_partition_verification_enable: true,
            transaction_version: 2,
            txn_producer_fencing: true,
            txn_offset_commit_fencing: true,
            fetch_delayed_isolation: true,
        }
    }
}

pub(super) const TRUNCATION_MODES: &[&str] = &[
    "high-watermark",
    "kip-101",
    "kip-279",
    "kip-320-first-try",
    "fenced",
];

pub(super) const BROKER_KEYS: &[KeyDef] = &[
    k("broker.id", Ty::Int(-1, I32)),
    k("num.partitions", Ty::Int(1, I32)),
    k("default.replication.factor", Ty::Int(1, I32)),
    k("min.insync.replicas", Ty::Int(1, I32)),
    k("unclean.leader.election.enable", Ty::Bool),
    k("replica.lag.time.max.ms", MS),
    k("replica.fetch.wait.max.ms", MS32),
    k("replica.fetch.max.bytes", Ty::Int(0, I32)),
    k("replica.fetch.backoff.ms", MS32),
    k("replica.fetch.min.bytes", Ty::Int(1, I32)),
    k("replica.fetch.response.max.bytes", Ty::Int(0, I32)),
    k("replica.high.watermark.checkpoint.interval.ms", MS),
    k("log.segment.bytes", Ty::Int(14, I32)),
    k("log.index.interval.bytes", Ty::Int(0, I32)),
    k("log.flush.interval.messages", Ty::Long(1, I64)),
    k("log.flush.interval.ms", MS),
    k("log.flush.offset.checkpoint.interval.ms", MS32),
    k("zookeeper.session.timeout.ms", MS32),
    k("auto.create.topics.enable", Ty::Bool),
    k("controller.socket.timeout.ms", MS32),
    k("log.cleanup.policy", Ty::ListOf(&["compact", "delete"])),
    k("log.retention.ms", Ty::Long(-1, I64)),
    k("log.retention.minutes", Ty::Int(-1, I32)),
    k("log.retention.hours", Ty::Int(-1, I32)),
    k("log.retention.bytes", Ty::Long(-1, I64)),
    k("log.roll.ms", Ty::Long(1, I64)),
    k("log.roll.hours", Ty::Int(1, I32)),
    k("log.index.size.max.bytes", Ty::Int(4, I32)),
    k("log.retention.check.interval.ms", Ty::Long(1, I64)),
    k("log.cleaner.delete.retention.ms", Ty::Long(0, I64)),
    k("log.cleaner.backoff.ms", Ty::Long(0, I64)),
    k("log.flush.start.offset.checkpoint.interval.ms", MS32),
    k(
        "compression.type",
        Ty::OneOf(&["uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"]),
    ),
    // Kafka's defaults: 50 and 3 (`GroupCoordinatorConfig`: atLeast(1); the factor is a short).
    k("offsets.topic.num.partitions", Ty::Int(1, I32)),
    k(
        "offsets.topic.replication.factor",
        Ty::Int(1, i16::MAX as i64),
    ),
    k("group.initial.rebalance.delay.ms", Ty::Int(0, I32)),
    k("group.min.session.timeout.ms", Ty::Int(0, I32)),
    k("group.max.session.timeout.ms", Ty::Int(0, I32)),
    k("offsets.retention.minutes", Ty::Int(1, I32)),
    k("sim.group.offset-commit-fencing", Ty::Bool),
    // Kafka's defaults: 50, 3, 2 (`TransactionLogConfig`), 900000, 10000, true
    // (`TransactionStateManagerConfig`), and `transaction.version` 2 (a feature level in Kafka).
    k("transaction.state.log.num.partitions", Ty::Int(1, I32)),
    k(
        "transaction.state.log.replication.factor",
        Ty::Int(1, i16::MAX as i64),
    ),
    k("transaction.state.log.min.isr", Ty::Int(1, I32)),
    k("transaction.max.timeout.ms", Ty::Int(1, I32)),
    k(
        "transaction.abort.timed.out.transaction.cleanup.interval.ms",
        Ty::Int(1, I32),
    ),
    k("transaction.partition.verification.enable", Ty::Bool),
    k("transaction.version", Ty::Int(1, 2)),
    k("sim.txn.producer-fencing", Ty::Bool),
    k("sim.txn.offset-commit-fencing", Ty::Bool),
    k("sim.fetch.delayed-isolation", Ty::Bool),
    k("sim.replication.truncation", Ty::OneOf(TRUNCATION_MODES)),
    k("sim.controller.epoch-fencing", Ty::Bool),
];

impl BrokerConfig {
    /// Parses `server.properties`-style settings (plus `sim.*`) on top of Kafka's defaults.
    pub fn from_properties(props: &Properties) -> Result<Self, ConfigError> {
        let p = Parsed::new(ConfigKind::Broker, props)?;
        if p.has("broker.id") {
            return Err(ConfigError {
                key: "broker.id".into(),
                message: "broker.id is assigned by the testbed: brokers are numbered 0..brokers-1 (broker-0, broker-1, ...)"
                    .into(),
            });
        }
        let mut c = BrokerConfig::default();
        if let Some(v) = p.num("num.partitions") {
            c.num_partitions = v as i32;
        }
        if let Some(v) = p.num("default.replication.factor") {
            c.default_replication_factor = v as i32;
        }
        if let Some(v) = p.num("min.insync.replicas") {
            c.min_insync_replicas = v as i32;
        }
        if let Some(v) = p.bool("unclean.leader.election.enable") {
            c.unclean_leader_election_enable = v;
        }
        if let Some(v) = p.num("replica.lag.time.max.ms") {
            c.replica_lag_time_max_ms = v as u64;
        }
        if let Some(v) = p.num("replica.fetch.wait.max.ms") {
            c.replica_fetch_wait_max_ms = v as u64;
        }
        if let Some(v) = p.num("replica.fetch.max.bytes") {
            c.replica_fetch_max_bytes = v as u32;
        }
        if let Some(v) = p.num("replica.fetch.backoff.ms") {
            c.replica_fetch_backoff_ms = v as u64;
        }
        if let Some(v) = p.num("replica.fetch.min.bytes") {
            c.replica_fetch_min_bytes = v as u32;
        }
        if let Some(v) = p.num("replica.fetch.response.max.bytes") {
            c.replica_fetch_response_max_bytes = v as u32;
        }
        if let Some(v) = p.num("replica.high.watermark.checkpoint.interval.ms") {
            c.replica_high_watermark_checkpoint_interval_ms = v as u64;
        }
        if let Some(v) = p.num("log.segment.bytes") {
            c.log_segment_bytes = v as u64;
        }
        if let Some(v) = p.num("log.index.interval.bytes") {
            c.log_index_interval_bytes = v as u32;
        }
        if let Some(v) = p.num("log.flush.interval.messages") {
            c.log_flush_interval_messages = v as u64;
        }
        if let Some(v) = p.num("log.flush.interval.ms") {
            c.log_flush_interval_ms = Some(v as u64);
        }
        if let Some(v) = p.num("log.flush.offset.checkpoint.interval.ms") {
            c.log_flush_offset_checkpoint_interval_ms = v as u64;
        }
        if let Some(v) = p.num("zookeeper.session.timeout.ms") {
            c.zookeeper_session_timeout_ms = v as u64;
        }
        if let Some(v) = p.bool("auto.create.topics.enable") {
            c.auto_create_topics_enable = v;
        }
        if let Some(v) = p.num("controller.socket.timeout.ms") {
            c.controller_socket_timeout_ms = v as u64;
        }
        if let Some(v) = p.str("sim.replication.truncation") {
            c.replication_truncation = TruncationMode::parse(v).expect("validated");
        }
        if let Some(v) = p.bool("sim.controller.epoch-fencing") {
            c.controller_epoch_fencing = v;
        }
        if let Some(v) = p.str("compression.type") {
            c.compression_type = BrokerCompression::parse(v).expect("validated");
        }
        if let Some(v) = p.num("offsets.topic.num.partitions") {
            c.offsets_topic_num_partitions = v as i32;
        }
        if let Some(v) = p.num("offsets.topic.replication.factor") {
            c.offsets_topic_replication_factor = v as i32;
        }
        if let Some(v) = p.num("group.initial.rebalance.delay.ms") {
            c.group_initial_rebalance_delay_ms = v as u64;
        }
        if let Some(v) = p.num("group.min.session.timeout.ms") {
            c.group_min_session_timeout_ms = v as u64;
        }
        if let Some(v) = p.num("group.max.session.timeout.ms") {
            c.group_max_session_timeout_ms = v as u64;
        }
        if let Some(v) = p.num("offsets.retention.minutes") {
            c.offsets_retention_minutes = v;
        }
        if let Some(v) = p.bool("sim.group.offset-commit-fencing") {
            c.group_offset_commit_fencing = v;
        }
        if let Some(v) = p.num("transaction.state.log.num.partitions") {
            c.transaction_state_log_num_partitions = v as i32;
        }
        if let Some(v) = p.num("transaction.state.log.replication.factor") {
            c.transaction_state_log_replication_factor = v as i32;
        }
        if let Some(v) = p.num("transaction.state.log.min.isr") {
            c.transaction_state_log_min_isr = v as i32;
        }
        if let Some(v) = p.num("transaction.max.timeout.ms") {
            c.transaction_max_timeout_ms = v as u64;
        }
        if let Some(v) = p.num("transaction.abort.timed.out.transaction.cleanup.interval.ms") {
            c.transaction_abort_timed_out_transaction_cleanup_interval_ms = v as u64;
        }
        if let Some(v) = p.bool("transaction.partition.verification.enable") {
            c.transaction_partition_verification_enable = v;
        }
        if let Some(v) = p.num("transaction.version") {
            c.transaction_version = v as i16;
        }
        if let Some(v) = p.bool("sim.txn.producer-fencing") {
            c.txn_producer_fencing = v;
        }
        if let Some(v) = p.bool("sim.txn.offset-commit-fencing") {
            c.txn_offset_commit_fencing = v;
        }
        if let Some(v) = p.bool("sim.fetch.delayed-isolation") {
            c.fetch_delayed_isolation = v;
        }
        // Kafka's precedence: log.roll.ms over log.roll.hours; log.retention.ms over
        // log.retention.minutes over log.retention.hours.
        if let Some(v) = p.num("log.roll.ms") {
            c.log_roll_ms = v;
        } else if let Some(v) = p.num("log.roll.hours") {
            c.log_roll_ms = v * 3_600_000;
        }
        if let Some(v) = p.num("log.retention.ms") {
            c.log_retention_ms = v;
        } else if let Some(v) = p.num("log.retention.minutes") {
            c.log_retention_ms = if v < 0 { -1 } else { v * 60_000 };
        } else if let Some(v) = p.num("log.retention.hours") {
            c.log_retention_ms = if v < 0 { -1 } else { v * 3_600_000 };
        }
        if let Some(v) = p.num("log.retention.bytes") {
            c.log_retention_bytes = v;
        }
        if let Some(v) = p.num("log.index.size.max.bytes") {
            c.log_index_size_max_bytes = v as u32;
        }
        if let Some(v) = p.num("log.retention.check.interval.ms") {
            c.log_retention_check_interval_ms = v as u64;
        }
        if let Some(v) = p.list("log.cleanup.policy") {
            c.log_cleanup_policy = CleanupPolicy::from_list(v);
        }
        if let Some(v) = p.num("log.cleaner.delete.retention.ms") {
            c.log_cleaner_delete_retention_ms = v;
        }
        if let Some(v) = p.num("log.cleaner.backoff.ms") {
            c.log_cleaner_backoff_ms = v as u64;
        }
        if let Some(v) = p.num("log.flush.start.offset.checkpoint.interval.ms") {
            c.log_flush_start_offset_checkpoint_interval_ms = v as u64;
        }
        Ok(c)
    }
}

impl TruncationMode {
    /// The `sim.replication.truncation` values, in the order of the modes' history.
    pub const NAMES: &'static [&'static str] = TRUNCATION_MODES;

    /// Parses a `sim.replication.truncation` value.
    pub fn parse(s: &str) -> Option<TruncationMode> {
        Some(match s {
            "high-watermark" => TruncationMode::HighWatermark,
            "kip-101" => TruncationMode::Kip101,
            "kip-279" => TruncationMode::Kip279,
            "kip-320-first-try" => TruncationMode::Kip320FirstTry,
            "fenced" => TruncationMode::Fenced,
            _ => return None,
        })
    }

    /// The `sim.replication.truncation` value.
    pub fn name(self) -> &'static str {
        match self {
            TruncationMode::HighWatermark => "high-watermark",
            TruncationMode::Kip101 => "kip-101",
            TruncationMode::Kip279 => "kip-279",
            TruncationMode::Kip320FirstTry => "kip-320-first-try",
            TruncationMode::Fenced => "fenced",
        }
    }
}
