use super::*;

fn props(pairs: &[(&str, PropValue)]) -> Properties {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
}
fn s(v: &str) -> PropValue {
    PropValue::Str(v.into())
}
fn i(v: i64) -> PropValue {
    PropValue::Int(v)
}
fn b(v: bool) -> PropValue {
    PropValue::Bool(v)
}
fn producer(pairs: &[(&str, PropValue)]) -> Result<ProducerConfig, ConfigError> {
    ProducerConfig::from_properties(&props(pairs))
}
fn consumer(pairs: &[(&str, PropValue)]) -> Result<ConsumerConfig, ConfigError> {
    ConsumerConfig::from_properties(&props(pairs))
}
fn broker(pairs: &[(&str, PropValue)]) -> Result<BrokerConfig, ConfigError> {
    BrokerConfig::from_properties(&props(pairs))
}
fn topic(pairs: &[(&str, PropValue)]) -> Result<TopicConfig, ConfigError> {
    TopicConfig::from_properties(&props(pairs))
}
fn msg<T: fmt::Debug>(r: Result<T, ConfigError>) -> String {
    r.unwrap_err().message
}

#[test]
fn config_empty_gives_kafka_defaults() {
    assert_eq!(broker(&[]).unwrap(), BrokerConfig::default());
    assert_eq!(topic(&[]).unwrap(), TopicConfig::default());
    assert_eq!(producer(&[]).unwrap(), ProducerConfig::default());
    // Without a group id, auto commit is off (KafkaConsumer).
    let c = consumer(&[]).unwrap();
    assert!(!c.enable_auto_commit);
    assert_eq!(c.auto_offset_reset, AutoOffsetReset::Latest);
}

#[test]
fn config_acks_forms() {
    for (v, want) in [
        (s("all"), Acks::All),
        (i(-1), Acks::All),
        (s("-1"), Acks::All),
        (s("1"), Acks::Leader),
        (i(1), Acks::Leader),
        (i(0), Acks::None),
    ] {
        let c = producer(&[("acks", v), ("enable.idempotence", b(false))]).unwrap();
        assert_eq!(c.acks, want);
    }
    assert_eq!(
        msg(producer(&[("acks", i(2))])),
        "Invalid value 2 for configuration acks: String must be one of: all, -1, 0, 1"
    );
    assert_eq!(
        msg(producer(&[("acks", s("ALL"))])),
        "Invalid value ALL for configuration acks: String must be one of: all, -1, 0, 1"
    );
}

#[test]
fn config_bool_and_number_forms() {
    let c = producer(&[
        ("enable.idempotence", s("false")),
        ("batch.size", s("1000")),
        ("linger.ms", i(0)),
    ])
    .unwrap();
    assert!(!c.enable_idempotence);
    assert_eq!(c.batch_size, 1000);
    assert_eq!(c.linger_ms, 0);
    assert_eq!(
        msg(producer(&[("enable.idempotence", s("yes"))])),
        "Invalid value yes for configuration enable.idempotence: Expected value to be either true or false"
    );
    assert_eq!(
        msg(producer(&[("batch.size", s("big"))])),
        "Invalid value big for configuration batch.size: Not a number of type INT"
    );
    assert_eq!(
        msg(producer(&[("batch.size", i(1 << 40))])),
        "Invalid value 1099511627776 for configuration batch.size: Not a number of type INT"
    );
    assert_eq!(
        msg(producer(&[("batch.size", b(true))])),
        "Invalid value true for configuration batch.size: Expected value to be a 32-bit integer, but it was a boolean"
    );
}

#[test]
fn config_ranges() {
    assert_eq!(
        msg(broker(&[("min.insync.replicas", i(0))])),
        "Invalid value 0 for configuration min.insync.replicas: Value must be at least 1"
    );
    assert_eq!(
        msg(topic(&[("min.insync.replicas", s("0"))])),
        "Invalid value 0 for configuration min.insync.replicas: Value must be at least 1"
    );
    assert_eq!(
        msg(producer(&[("batch.size", i(-1))])),
        "Invalid value -1 for configuration batch.size: Value must be at least 0"
    );
    assert_eq!(
        msg(producer(&[("linger.ms", i(-5))])),
        "Invalid value -5 for configuration linger.ms: Value must be at least 0"
    );
    assert_eq!(
        msg(broker(&[("replica.lag.time.max.ms", i(-1))])),
        "Invalid value -1 for configuration replica.lag.time.max.ms: Value must be at least 0"
    );
    assert_eq!(
        msg(producer(&[("max.in.flight.requests.per.connection", i(0))])),
        "Invalid value 0 for configuration max.in.flight.requests.per.connection: Value must be at least 1"
    );
    assert_eq!(
        msg(consumer(&[("max.poll.records", i(0))])),
        "Invalid value 0 for configuration max.poll.records: Value must be at least 1"
    );
}

#[test]
fn config_broker_values() {
    let c = broker(&[
        ("min.insync.replicas", i(2)),
        ("unclean.leader.election.enable", s("true")),
        ("replica.lag.time.max.ms", i(10_000)),
        ("log.flush.interval.messages", i(1)),
        ("log.flush.interval.ms", i(100)),
        ("sim.replication.truncation", s("fenced")),
    ])
    .unwrap();
    assert_eq!(c.min_insync_replicas, 2);
    assert!(c.unclean_leader_election_enable);
    assert_eq!(c.replica_lag_time_max_ms, 10_000);
    assert_eq!(c.log_flush_interval_messages, 1);
    assert_eq!(c.log_flush_interval_ms, Some(100));
    assert_eq!(c.replication_truncation, TruncationMode::Fenced);
    assert!(msg(broker(&[("broker.id", i(1))])).contains("assigned by the testbed"));
    let t = topic(&[("min.insync.replicas", i(2)), ("flush.messages", i(1))]).unwrap();
    assert_eq!(t.min_insync_replicas, Some(2));
    assert_eq!(t.flush_messages, Some(1));
}

#[test]
fn config_unknown_key_suggests_closest() {
    let e = producer(&[("enable.idempotency", b(true))]).unwrap_err();
    assert_eq!(e.key, "enable.idempotency");
    assert_eq!(
        e.message,
        "unknown producer config \"enable.idempotency\"; did you mean \"enable.idempotence\"?"
    );
    assert_eq!(
        msg(broker(&[("min.insync.replica", i(2))])),
        "unknown broker config \"min.insync.replica\"; did you mean \"min.insync.replicas\"?"
    );
    assert_eq!(
        msg(consumer(&[("bootstrap.servers", s("x:9092"))])),
        "unknown consumer config \"bootstrap.servers\""
    );
    // A broker-level name in a topic's config points at the topic-level name.
    assert_eq!(
        msg(topic(&[("log.flush.interval.messages", i(1))])),
        "unknown topic config \"log.flush.interval.messages\"; did you mean \"flush.messages\"?"
    );
    assert_eq!(
        msg(broker(&[("sim.replication.truncaton", s("fenced"))])),
        "unknown broker config \"sim.replication.truncaton\"; did you mean \"sim.replication.truncation\"?"
    );
}

#[test]
fn config_not_supported_yet() {
    // Transactions are implemented: a transactional.id loads, and needs idempotence
    // (`ProducerConfig.postProcessAndValidateIdempotenceConfigs`).
    let c = producer(&[("transactional.id", s("tx-1"))]).unwrap();
    assert_eq!(c.transactional_id.as_deref(), Some("tx-1"));
    assert_eq!(c.transaction_timeout_ms, 60_000);
    let e = producer(&[("transactional.id", s("tx-1")), ("acks", s("1"))]).unwrap_err();
    assert_eq!(e.key, "acks");
    let e = producer(&[
        ("transactional.id", s("tx-1")),
        ("enable.idempotence", b(false)),
    ])
    .unwrap_err();
    assert_eq!(e.key, "transactional.id");
    assert_eq!(
        e.message,
        "Cannot set a transactional.id without also enabling idempotence."
    );
    // Retention, rolling and compaction are implemented.
    let c = broker(&[
        ("log.cleanup.policy", s("compact")),
        ("log.retention.hours", i(1)),
        ("log.roll.hours", i(2)),
        ("log.retention.bytes", i(5000)),
    ])
    .unwrap();
    assert_eq!(
        c.log_cleanup_policy,
        CleanupPolicy {
            delete: false,
            compact: true
        }
    );
    assert_eq!((c.log_retention_ms, c.log_roll_ms), (3_600_000, 7_200_000));
    assert_eq!(c.log_retention_bytes, 5000);
    let c = broker(&[("log.retention.ms", i(1000)), ("log.retention.hours", i(1))]).unwrap();
    assert_eq!(c.log_retention_ms, 1000, "ms wins over hours");
    assert_eq!(
        broker(&[("log.retention.minutes", i(-1))])
            .unwrap()
            .log_retention_ms,
        -1
    );
    let t = topic(&[
        ("cleanup.policy", s("compact,delete")),
        ("retention.ms", i(-1)),
        ("segment.ms", i(500)),
    ])
    .unwrap();
    let lc = t.log_config(&BrokerConfig::default());
    assert_eq!(
        lc.cleanup_policy,
        CleanupPolicy {
            delete: true,
            compact: true
        }
    );
    assert_eq!((lc.retention_ms, lc.segment_ms), (-1, 500));
    assert_eq!(lc.segment_bytes, 1 << 30);
    assert_eq!(
        msg(broker(&[("log.retention.ms", i(-5))])),
        "Invalid value -5 for configuration log.retention.ms: Value must be at least -1"
    );
    assert_eq!(
        msg(topic(&[("segment.bytes", i(13))])),
        "Invalid value 13 for configuration segment.bytes: Value must be at least 14"
    );
    assert_eq!(
        producer(&[("compression.type", s("lz4"))])
            .unwrap()
            .compression_type,
        Compression::Lz4
    );
    assert_eq!(producer(&[]).unwrap().compression_type, Compression::None);
    assert_eq!(
        broker(&[("compression.type", s("uncompressed"))])
            .unwrap()
            .compression_type,
        BrokerCompression::Codec(Compression::None)
    );
    assert_eq!(
        broker(&[]).unwrap().compression_type,
        BrokerCompression::Producer
    );
    assert_eq!(
        consumer(&[("isolation.level", s("read_committed"))])
            .unwrap()
            .isolation_level,
        IsolationLevel::ReadCommitted
    );
    assert!(consumer(&[("isolation.level", s("read_uncommitted"))]).is_ok());
    // Group ids and assignors are supported; an unknown assignor is refused.
    let grouped = consumer(&[("group.id", s("g1"))]).unwrap();
    assert_eq!(grouped.group_id.as_deref(), Some("g1"));
    let ranged = consumer(&[("partition.assignment.strategy", s("range"))]).unwrap();
    assert_eq!(ranged.partition_assignment_strategy, "range");
    assert!(
        msg(consumer(&[("partition.assignment.strategy", s("fancy"))]))
            .starts_with("fancy ClassNotFoundException exception occurred (ksim has: range, ")
    );
    // Values are still validated first.
    assert_eq!(
        msg(producer(&[("compression.type", s("brotli"))])),
        "Invalid value brotli for configuration compression.type: String must be one of: none, gzip, snappy, lz4, zstd"
    );
    assert_eq!(
        msg(broker(&[("log.cleanup.policy", s("compakt"))])),
        "Invalid value compakt for configuration log.cleanup.policy: String must be one of: compact, delete"
    );
}

#[test]
fn config_truncation_modes() {
    for mode in TruncationMode::NAMES {
        let c = broker(&[("sim.replication.truncation", s(mode))]).unwrap();
        assert_eq!(c.replication_truncation.name(), *mode);
        assert!(TruncationMode::parse(mode).is_some_and(|t| t.name() == *mode));
    }
    assert_eq!(
        msg(broker(&[("sim.replication.truncation", s("kip-102"))])),
        "Invalid value kip-102 for configuration sim.replication.truncation: String must be one of: \
         high-watermark, kip-101, kip-279, kip-320-first-try, fenced"
    );
}

#[test]
fn config_idempotence_explicit_conflicts_are_errors() {
    assert_eq!(
        msg(producer(&[("enable.idempotence", b(true)), ("acks", i(1))])),
        "Must set acks to all in order to use the idempotent producer. Otherwise we cannot guarantee idempotence."
    );
    assert_eq!(
        msg(producer(&[("enable.idempotence", s("true")), ("max.in.flight.requests.per.connection", i(6))])),
        "Must set max.in.flight.requests.per.connection to at most 5 to use the idempotent producer."
    );
    assert_eq!(
        msg(producer(&[
            ("enable.idempotence", b(true)),
            ("retries", i(0))
        ])),
        "Must set retries to non-zero when using the idempotent producer."
    );
    let c = producer(&[
        ("enable.idempotence", b(true)),
        ("acks", s("all")),
        ("max.in.flight.requests.per.connection", i(5)),
    ])
    .unwrap();
    assert!(c.enable_idempotence);
}

#[test]
fn config_idempotence_implicit_is_disabled_silently() {
    for pairs in [
        vec![("acks", i(1))],
        vec![("acks", s("0"))],
        vec![("retries", i(0))],
        vec![("max.in.flight.requests.per.connection", i(10))],
    ] {
        let c = producer(&pairs).unwrap();
        assert!(!c.enable_idempotence, "{pairs:?}");
    }
    // Explicitly false: no checks.
    let c = producer(&[
        ("enable.idempotence", b(false)),
        ("acks", i(1)),
        ("retries", i(0)),
    ])
    .unwrap();
    assert!(!c.enable_idempotence);
    assert_eq!(c.acks, Acks::Leader);
    assert_eq!(c.retries, 0);
    assert_eq!(
        msg(producer(&[("retries", i(-1))])),
        "Invalid value -1 for configuration retries: Value must be at least 0"
    );
}

#[test]
fn config_delivery_timeout() {
    assert_eq!(
        msg(producer(&[("delivery.timeout.ms", i(1000))])),
        "delivery.timeout.ms should be equal to or larger than linger.ms + request.timeout.ms"
    );
    assert!(producer(&[("delivery.timeout.ms", i(30_005))]).is_ok());
    // Not set explicitly: raised to the floor.
    let c = producer(&[("request.timeout.ms", i(200_000))]).unwrap();
    assert_eq!(c.delivery_timeout_ms, 200_005);
}

#[test]
fn config_consumer_rules() {
    for (v, want) in [
        ("earliest", AutoOffsetReset::Earliest),
        ("latest", AutoOffsetReset::Latest),
        ("none", AutoOffsetReset::None),
    ] {
        assert_eq!(
            consumer(&[("auto.offset.reset", s(v))])
                .unwrap()
                .auto_offset_reset,
            want
        );
    }
    assert_eq!(
        msg(consumer(&[("auto.offset.reset", s("smallest"))])),
        "Invalid value smallest for configuration auto.offset.reset: String must be one of: latest, earliest, none"
    );
    assert!(consumer(&[("enable.auto.commit", b(false))]).is_ok());
    // With a group id, auto commit is Kafka's default (true), every 5 s; commitSync waits up to
    // default.api.timeout.ms.
    let grouped = consumer(&[("group.id", s("g1"))]).unwrap();
    assert!(grouped.enable_auto_commit);
    assert_eq!(grouped.auto_commit_interval_ms, 5_000);
    assert_eq!(grouped.default_api_timeout_ms, 60_000);
    assert!(
        !consumer(&[("group.id", s("g1")), ("enable.auto.commit", b(false))])
            .unwrap()
            .enable_auto_commit
    );
    assert_eq!(
        consumer(&[("default.api.timeout.ms", i(1000))])
            .unwrap()
            .default_api_timeout_ms,
        1000
    );
    assert_eq!(
        msg(consumer(&[("enable.auto.commit", b(true))])),
        "enable.auto.commit cannot be set to true when default group id (null) is used."
    );
}

#[test]
fn config_closest_match() {
    assert_eq!(
        closest_match("replication_facter", ["name", "replication_factor"]),
        Some("replication_factor")
    );
    assert_eq!(closest_match("zzz", ["name", "replication_factor"]), None);
}

#[test]
fn config_offsets_topic_keys() {
    let c = broker(&[]).unwrap();
    assert_eq!(
        (
            c.offsets_topic_num_partitions,
            c.offsets_topic_replication_factor
        ),
        (50, 3),
        "Kafka's defaults"
    );
    let c = broker(&[
        ("offsets.topic.num.partitions", i(3)),
        ("offsets.topic.replication.factor", i(1)),
    ])
    .unwrap();
    assert_eq!(c.offsets_topic_num_partitions, 3);
    assert_eq!(c.offsets_topic_replication_factor, 1);
    assert!(broker(&[("offsets.topic.num.partitions", i(0))]).is_err());
    assert!(broker(&[("offsets.topic.replication.factor", i(40_000))]).is_err());
}

#[test]
fn config_transaction_keys() {
    let c = broker(&[]).unwrap();
    assert_eq!(
        c.transaction_state_log_num_partitions, 50,
        "Kafka's default"
    );
    assert_eq!(c.transaction_state_log_replication_factor, 3);
    assert_eq!(c.transaction_state_log_min_isr, 2);
    assert_eq!(c.transaction_max_timeout_ms, 900_000);
    assert_eq!(
        c.transaction_abort_timed_out_transaction_cleanup_interval_ms,
        10_000
    );
    assert!(c.transaction_partition_verification_enable);
    assert_eq!(c.transaction_version, 2);
    assert!(c.txn_producer_fencing);
    let c = broker(&[
        ("transaction.state.log.num.partitions", i(4)),
        ("transaction.state.log.replication.factor", i(1)),
        ("transaction.state.log.min.isr", i(1)),
        ("transaction.max.timeout.ms", i(60_000)),
        (
            "transaction.abort.timed.out.transaction.cleanup.interval.ms",
            i(1_000),
        ),
        ("transaction.partition.verification.enable", b(false)),
        ("transaction.version", i(1)),
        ("sim.txn.producer-fencing", b(false)),
        ("sim.txn.offset-commit-fencing", b(false)),
        ("sim.fetch.delayed-isolation", b(false)),
    ])
    .unwrap();
    assert!(!c.txn_offset_commit_fencing);
    assert!(BrokerConfig::default().txn_offset_commit_fencing);
    assert!(!c.fetch_delayed_isolation);
    assert!(BrokerConfig::default().fetch_delayed_isolation);
    assert_eq!(c.transaction_state_log_num_partitions, 4);
    assert_eq!(c.transaction_state_log_replication_factor, 1);
    assert_eq!(c.transaction_state_log_min_isr, 1);
    assert_eq!(c.transaction_max_timeout_ms, 60_000);
    assert_eq!(
        c.transaction_abort_timed_out_transaction_cleanup_interval_ms,
        1_000
    );
    assert!(!c.transaction_partition_verification_enable);
    assert_eq!(c.transaction_version, 1);
    assert!(!c.txn_producer_fencing);
    assert!(broker(&[("transaction.version", i(3))]).is_err());
    assert!(broker(&[("transaction.state.log.num.partitions", i(0))]).is_err());
}
