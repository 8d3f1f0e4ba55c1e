use super::partitioner::partition_for_key;
use super::*;
use crate::config::{InterceptorClass, SerdeClass};
use crate::effects::Effect;
use crate::event::{Event, OpType, OpValue};
use crate::record::{Compression, RecordBatch};

fn metadata(corr: CorrelationId) -> Message {
    metadata_n(corr, 2)
}

/// A metadata answer for topic `t` with `n` partitions, all led by broker-0.
fn metadata_n(corr: CorrelationId, n: i32) -> Message {
    let pm = |p: i32| PartitionMetadata {
        tp: TopicPartition::new("t", p),
        error: ErrorCode::None,
        leader: Some(BrokerId(0)),
        leader_epoch: LeaderEpoch(0),
        replicas: vec![BrokerId(0)],
        isr: vec![BrokerId(0)],
    };
    Message::MetadataResponse {
        corr,
        brokers: vec![BrokerId(0)],
        controller: Some(BrokerId(0)),
        partitions: (0..n).map(pm).collect(),
    }
}

fn corr_of(m: &Message) -> CorrelationId {
    match m {
        Message::Metadata { corr, .. }
        | Message::InitProducerId { corr, .. }
        | Message::Produce { corr, .. } => *corr,
        other => panic!("unexpected {other:?}"),
    }
}

/// Regression (found by `default` seed 934): after a producer-id reset, a batch whose
/// earlier attempt may have been written must not be sent again under the new id.
#[test]
fn possibly_written_batch_is_not_resent_under_a_new_producer_id() {
    let workload = ProducerWorkload {
        topics: vec!["t".into()],
        rate_per_sec: 1000,
        keys: 0,
        stop_at_ms: 1_000_000,
        send_style: SendStyle::Async,
    };
    let config = ProducerConfig {
        linger_ms: 0,
        ..ProducerConfig::default()
    };
    let mut p = ProducerClient::new(0, config, workload, vec![BrokerId(0)]);
    // Null keys: the sticky partitioner moves to the other partition after each batch.
    let broker = NodeId::Broker(BrokerId(0));
    let mut out = Effects::new();
    p.on_start(Instant(0), &mut out);
    let md = corr_of(&out.sent()[0]);
    let mut out = Effects::new();
    // Partition p led by broker-p: A's request timeout closes only its own broker's
    // connection (NetworkClient.handleTimedOutRequests), so B stays in flight.
    let mut split = metadata(md);
    if let Message::MetadataResponse {
        brokers,
        partitions,
        ..
    } = &mut split
    {
        *brokers = vec![BrokerId(0), BrokerId(1)];
        for pm in partitions.iter_mut() {
            pm.leader = Some(BrokerId(pm.tp.partition));
            pm.replicas = vec![BrokerId(pm.tp.partition)];
            pm.isr = vec![BrokerId(pm.tp.partition)];
        }
    }
    p.on_message(Instant(1), broker, split, &mut out);
    let init = corr_of(&out.sent()[0]);
    let mut out = Effects::new();
    let pid_reply = |corr, pid| Message::InitProducerIdResponse {
        corr,
        error: ErrorCode::None,
        producer_id: ProducerId(pid),
        producer_epoch: ProducerEpoch(0),
    };
    p.on_message(Instant(2), broker, pid_reply(init, 7), &mut out);
    // Records land on both partitions; each partition has one batch in flight.
    let mut produces = Vec::new();
    let partition_of = |m: &Message| match m {
        Message::Produce { partitions, .. } => partitions[0].0.partition,
        _ => unreachable!(),
    };
    for t in 3..20 {
        let mut out = Effects::new();
        p.on_timeout(Instant(t), ProducerTimer::Tick, &mut out);
        produces.extend(
            out.sent()
                .into_iter()
                .filter(|m| matches!(m, Message::Produce { .. })),
        );
        if produces
            .iter()
            .map(partition_of)
            .collect::<std::collections::BTreeSet<_>>()
            .len()
            == 2
        {
            break;
        }
    }
    assert_eq!(
        produces.len(),
        2,
        "one batch in flight per partition: {produces:?}"
    );
    // Batch A times out (it may have been written); batch B is rejected with
    // OUT_OF_ORDER_SEQUENCE_NUMBER, which resets the producer id.
    let (a, b) = (&produces[0], &produces[1]);
    assert_ne!(partition_of(a), partition_of(b));
    let mut out = Effects::new();
    p.on_timeout(
        Instant(31_000),
        ProducerTimer::RequestTimeout { corr: corr_of(a) },
        &mut out,
    );
    let mut out = Effects::new();
    let reject = Message::ProduceResponse {
        corr: corr_of(b),
        partitions: vec![PartitionProduceResponse {
            tp: TopicPartition::new("t", partition_of(b)),
            error: ErrorCode::OutOfOrderSequenceNumber,
            base_offset: Offset(-1),
            log_start_offset: Offset(0),
        }],
    };
    p.on_message(Instant(31_001), broker, reject, &mut out);
    let reinit = out
        .sent()
        .into_iter()
        .find(|m| matches!(m, Message::InitProducerId { .. }))
        .expect("re-init");
    // The new producer id arrives: B (never written) is resent under it, A is failed as
    // indeterminate instead of being appended a second time.
    let mut out = Effects::new();
    p.on_message(
        Instant(31_002),
        broker,
        pid_reply(corr_of(&reinit), 8),
        &mut out,
    );
    // A's partition has no known leader since its timeout; A is failed at once anyway.
    let completed: Vec<OpType> = out.ops().iter().map(|o| o.op_type).collect();
    assert_eq!(completed, vec![OpType::Info], "{:?}", out.ops());
    // After retry.backoff.ms B is due again.
    let mut out = Effects::new();
    p.on_timeout(
        Instant(31_200),
        ProducerTimer::Wake { at_ms: 31_200 },
        &mut out,
    );
    let resent: Vec<i32> = out
        .sent()
        .iter()
        .filter(|m| matches!(m, Message::Produce { .. }))
        .map(partition_of)
        .collect();
    assert_eq!(resent, vec![partition_of(b)]);
    assert!(out.ops().is_empty(), "{:?}", out.ops());
}

fn workload(style: SendStyle) -> ProducerWorkload {
    ProducerWorkload {
        topics: vec!["t".into()],
        rate_per_sec: 1000,
        keys: 0,
        stop_at_ms: 1_000_000,
        send_style: style,
    }
}

/// A producer that has metadata (2 partitions led by broker 0) and, when idempotent, a
/// producer id.
fn started(config: ProducerConfig, style: SendStyle) -> ProducerClient {
    started_n(config, style, 2)
}

/// A producer past metadata (topic `t` with `partitions` partitions) and InitProducerId.
fn started_n(config: ProducerConfig, style: SendStyle, partitions: i32) -> ProducerClient {
    started_with(config, workload(style), partitions)
}

/// A producer running `w`, past metadata (topic `t` with `partitions` partitions) and
/// InitProducerId.
fn started_with(config: ProducerConfig, w: ProducerWorkload, partitions: i32) -> ProducerClient {
    past_init(
        ProducerClient::new(0, config, w, vec![BrokerId(0)]),
        partitions,
    )
}

/// `p` started, past metadata (topic `t` with `partitions` partitions) and InitProducerId.
fn past_init(mut p: ProducerClient, partitions: i32) -> ProducerClient {
    let idempotent = p.config.enable_idempotence;
    let broker = NodeId::Broker(BrokerId(0));
    let mut out = Effects::new();
    p.on_start(Instant(0), &mut out);
    let md = corr_of(&out.sent()[0]);
    let mut out = Effects::new();
    p.on_message(Instant(1), broker, metadata_n(md, partitions), &mut out);
    if idempotent {
        let init = corr_of(&out.sent()[0]);
        let mut out = Effects::new();
        let reply = Message::InitProducerIdResponse {
            corr: init,
            error: ErrorCode::None,
            producer_id: ProducerId(7),
            producer_epoch: ProducerEpoch(0),
        };
        p.on_message(Instant(2), broker, reply, &mut out);
    }
    p
}

fn tick(p: &mut ProducerClient, t: u64) -> Effects<ProducerTimer> {
    let mut out = Effects::new();
    p.on_timeout(Instant(t), ProducerTimer::Tick, &mut out);
    out
}

fn produce_requests(out: &Effects<ProducerTimer>) -> Vec<(CorrelationId, Vec<(i32, RecordBatch)>)> {
    out.sent()
        .into_iter()
        .filter_map(|m| match m {
            Message::Produce {
                corr, partitions, ..
            } => Some((
                corr,
                partitions
                    .into_iter()
                    .map(|(tp, bytes)| (tp.partition, RecordBatch::decode(&bytes).unwrap().0))
                    .collect(),
            )),
            _ => None,
        })
        .collect()
}

fn ok_response(corr: CorrelationId, parts: &[(i32, i64)]) -> Message {
    Message::ProduceResponse {
        corr,
        partitions: parts
            .iter()
            .map(|&(p, base)| PartitionProduceResponse {
                tp: TopicPartition::new("t", p),
                error: ErrorCode::None,
                base_offset: Offset(base),
                log_start_offset: Offset(0),
            })
            .collect(),
    }
}

struct Panicky;
impl ProducerInterceptor for Panicky {
    fn name(&self) -> String {
        "panicky".into()
    }
    fn on_send(&mut self, _record: ProducerRecord) -> Result<ProducerRecord, String> {
        panic!("on_send exploded")
    }
    fn on_acknowledgement(&mut self, _m: &RecordMetadata, _e: Option<&str>) -> Result<(), String> {
        panic!("on_acknowledgement exploded")
    }
}

/// Counts acknowledgements and stamps a header on every record.
struct Stamp(std::sync::Arc<std::sync::Mutex<Vec<Option<Offset>>>>);
impl ProducerInterceptor for Stamp {
    fn on_send(&mut self, mut record: ProducerRecord) -> Result<ProducerRecord, String> {
        record.headers.push(("stamp".into(), Some(b"1".to_vec())));
        Ok(record)
    }
    fn on_acknowledgement(&mut self, m: &RecordMetadata, _e: Option<&str>) -> Result<(), String> {
        self.0.lock().unwrap().push(m.offset);
        Ok(())
    }
}

/// A panicking interceptor is caught and reported as an event; the record still goes out
/// (with the previous interceptor's version) and is acknowledged; later interceptors run.
#[test]
fn panicking_interceptor_is_caught_and_logged() {
    let config = ProducerConfig {
        linger_ms: 0,
        ..ProducerConfig::default()
    };
    let mut p = started(config, SendStyle::Async);
    let acks = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    p.add_interceptor(Box::new(Panicky));
    p.add_interceptor(Box::new(Stamp(acks.clone())));
    let out = tick(&mut p, 3);
    let failures: Vec<(String, String, String)> = out
        .list
        .iter()
        .filter_map(|e| match e {
            Effect::Event(Event::InterceptorFailed {
                interceptor,
                method,
                error,
                ..
            }) => Some((interceptor.clone(), method.clone(), error.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(
        failures,
        vec![("panicky".into(), "onSend".into(), "on_send exploded".into())]
    );
    let reqs = produce_requests(&out);
    assert_eq!(reqs.len(), 1);
    let (corr, parts) = &reqs[0];
    let batch = &parts[0].1;
    assert_eq!(
        batch.records[0].headers,
        vec![("stamp".to_string(), Some(b"1".to_vec()))]
    );
    // The value went through LongSerializer: 8 bytes big-endian.
    assert_eq!(
        batch.records[0].value.as_deref(),
        Some(&((1u64 << 32) | 1).to_be_bytes()[..])
    );
    let mut out = Effects::new();
    p.on_message(
        Instant(4),
        NodeId::Broker(BrokerId(0)),
        ok_response(*corr, &[(parts[0].0, 41)]),
        &mut out,
    );
    let completed: Vec<(OpType, Option<Offset>)> = out
        .ops()
        .iter()
        .map(|o| match &o.value {
            OpValue::Send { offset, .. } => (o.op_type, *offset),
            _ => unreachable!(),
        })
        .collect();
    assert_eq!(completed, vec![(OpType::Ok, Some(Offset(41)))]);
    assert!(out.list.iter().any(|e| matches!(
        e,
        Effect::Event(Event::InterceptorFailed { method, .. }) if method == "onAcknowledgement"
    )));
    assert_eq!(*acks.lock().unwrap(), vec![Some(Offset(41))]);
}

/// `interceptor.classes` builds ksim's interceptors: TracingHeader stamps every record,
/// FailingOnSend's exception is logged (1st, 10th, 100th failure, with the count) and the
/// record still goes out, as Kafka's `ProducerInterceptors` does.
#[test]
fn configured_interceptors_stamp_and_fail_without_failing_sends() {
    let config = ProducerConfig {
        linger_ms: 0,
        interceptor_classes: vec![
            InterceptorClass::FailingOnSend,
            InterceptorClass::TracingHeader,
            InterceptorClass::FailingOnAcknowledgement,
        ],
        ..ProducerConfig::default()
    };
    let mut p = started(config, SendStyle::Async);
    let mut logged = Vec::new();
    let mut first = None;
    for t in 3..3 + 120 {
        let out = tick(&mut p, t);
        for e in out.events() {
            if let Event::InterceptorFailed {
                interceptor,
                method,
                failures,
                ..
            } = e
            {
                logged.push((interceptor, method, failures));
            }
        }
        if first.is_none() {
            first = produce_requests(&out).into_iter().next();
        }
    }
    let on_send = |n| {
        (
            "ksim.interceptors.FailingOnSend".to_string(),
            "onSend".to_string(),
            n,
        )
    };
    assert_eq!(logged, vec![on_send(1), on_send(10), on_send(100)]);
    let (corr, parts) = first.expect("a produce request");
    assert_eq!(
        parts[0].1.records[0].headers,
        vec![("ksim-trace".to_string(), Some(b"producer-0/1".to_vec()))]
    );
    let mut out = Effects::new();
    p.on_message(
        Instant(200),
        NodeId::Broker(BrokerId(0)),
        ok_response(corr, &[(parts[0].0, 0)]),
        &mut out,
    );
    assert_eq!(out.ops()[0].op_type, OpType::Ok, "the send still succeeds");
    assert!(out.events().iter().any(|e| matches!(
        e,
        Event::InterceptorFailed { interceptor, method, failures: 1, .. }
            if interceptor == "ksim.interceptors.FailingOnAcknowledgement"
                && method == "onAcknowledgement"
    )));
}

/// `key.serializer` decides the bytes murmur2 hashes: `StringSerializer` writes `k{n}`,
/// `IntegerSerializer` and `LongSerializer` the number `n` in 4 or 8 bytes; and
/// `value.serializer = StringSerializer` writes the value's decimal digits.
#[test]
fn serializers_decide_key_bytes_partition_and_value_bytes() {
    let expected = |class: SerdeClass, n: u64| -> Vec<u8> {
        match class {
            SerdeClass::String => format!("k{n}").into_bytes(),
            SerdeClass::Integer => (n as i32).to_be_bytes().to_vec(),
            SerdeClass::Long => (n as i64).to_be_bytes().to_vec(),
        }
    };
    for class in [SerdeClass::String, SerdeClass::Integer, SerdeClass::Long] {
        let config = ProducerConfig {
            linger_ms: 0,
            key_serializer: class,
            value_serializer: SerdeClass::String,
            ..ProducerConfig::default()
        };
        let keyed = ProducerWorkload {
            keys: 8,
            ..workload(SendStyle::Async)
        };
        let mut p = started_with(config, keyed, 8);
        let out = tick(&mut p, 3);
        let (_, parts) = produce_requests(&out).pop().expect("a produce request");
        let (partition, batch) = &parts[0];
        // The first record is value 1, key number 1.
        let key = expected(class, 1);
        assert_eq!(batch.records[0].key.as_deref(), Some(&key[..]), "{class:?}");
        assert_eq!(*partition, partition_for_key(&key, 8), "{class:?}");
        assert_eq!(
            batch.records[0].value.as_deref(),
            Some(((1u64 << 32) | 1).to_string().as_bytes()),
            "{class:?}"
        );
    }
    // The three serializers put key number 1 on different partitions of 8.
    let parts: BTreeSet<i32> = [SerdeClass::String, SerdeClass::Integer, SerdeClass::Long]
        .into_iter()
        .map(|c| partition_for_key(&expected(c, 1), 8))
        .collect();
    assert!(parts.len() > 1, "{parts:?}");
}

/// A key a numeric serializer cannot take fails the send with Kafka's
/// SerializationException text; nothing is appended.
#[test]
fn unserializable_key_fails_the_send() {
    struct RenameKey;
    impl ProducerInterceptor for RenameKey {
        fn on_send(&mut self, mut r: ProducerRecord) -> Result<ProducerRecord, String> {
            r.key = Some("not-a-number".into());
            Ok(r)
        }
        fn on_acknowledgement(
            &mut self,
            _m: &RecordMetadata,
            _e: Option<&str>,
        ) -> Result<(), String> {
            Ok(())
        }
    }
    let config = ProducerConfig {
        linger_ms: 0,
        key_serializer: SerdeClass::Long,
        ..ProducerConfig::default()
    };
    let mut p = ProducerClient::new(
        0,
        config.clone(),
        ProducerWorkload {
            keys: 8,
            ..workload(SendStyle::Async)
        },
        vec![BrokerId(0)],
    );
    p.add_interceptor(Box::new(RenameKey));
    let broker = NodeId::Broker(BrokerId(0));
    let mut out = Effects::new();
    p.on_start(Instant(0), &mut out);
    let md = corr_of(&out.sent()[0]);
    let mut out = Effects::new();
    p.on_message(Instant(1), broker, metadata_n(md, 2), &mut out);
    let out = tick(&mut p, 3);
    let ops = out.ops();
    assert_eq!(ops.len(), 2);
    assert_eq!(ops[1].op_type, OpType::Fail);
    assert_eq!(
        ops[1].error.as_deref(),
        Some(
            "SerializationException: Can't convert key of class java.lang.String to class \
             org.apache.kafka.common.serialization.LongSerializer specified in key.serializer"
        )
    );
    assert!(produce_requests(&out).is_empty());
}

/// Ready batches of several partitions led by one broker travel in one Produce request;
/// batches wait for linger.ms; records gather in the partition's last batch.
#[test]
fn sender_groups_ready_batches_per_broker_after_linger() {
    let config = ProducerConfig {
        linger_ms: 10,
        ..ProducerConfig::default()
    };
    let mut p = ProducerClient::new(
        0,
        config,
        ProducerWorkload {
            keys: 8,
            ..workload(SendStyle::Async)
        },
        vec![BrokerId(0)],
    );
    let broker = NodeId::Broker(BrokerId(0));
    let mut out = Effects::new();
    p.on_start(Instant(0), &mut out);
    let md = corr_of(&out.sent()[0]);
    let mut out = Effects::new();
    p.on_message(Instant(1), broker, metadata(md), &mut out);
    let init = corr_of(&out.sent()[0]);
    let mut out = Effects::new();
    let reply = Message::InitProducerIdResponse {
        corr: init,
        error: ErrorCode::None,
        producer_id: ProducerId(7),
        producer_epoch: ProducerEpoch(0),
    };
    p.on_message(Instant(2), broker, reply, &mut out);
    let mut sent = Vec::new();
    let mut offered = std::collections::BTreeSet::new();
    for t in 3..=8 {
        let out = tick(&mut p, t);
        for o in out.ops() {
            if let OpValue::Send { tp, .. } = o.value {
                offered.insert(tp.partition);
            }
        }
        sent.extend(produce_requests(&out));
    }
    assert!(sent.is_empty(), "nothing before linger.ms: {sent:?}");
    // Wake at 13 (first batch created at 3 + linger 10).
    let mut out = Effects::new();
    p.on_timeout(Instant(13), ProducerTimer::Wake { at_ms: 13 }, &mut out);
    let reqs = produce_requests(&out);
    assert_eq!(reqs.len(), 1, "one request for the broker: {reqs:?}");
    let parts: Vec<i32> = reqs[0].1.iter().map(|(p, _)| *p).collect();
    assert_eq!(parts, offered.into_iter().collect::<Vec<_>>());
    assert_eq!(parts.len(), 2, "keys k1..k6 land on both partitions");
    let records: usize = reqs[0].1.iter().map(|(_, b)| b.records.len()).sum();
    assert_eq!(records, 6);
    // Sequences start at 0 on each partition.
    for (_, b) in &reqs[0].1 {
        assert_eq!(b.base_sequence, Sequence(0));
        assert_eq!(b.producer_id, ProducerId(7));
    }
}

/// With idempotence up to 5 batches of one partition are in flight; a batch sent back for
/// a retry waits until it is the lowest unresolved sequence; an OUT_OF_ORDER_SEQUENCE_NUMBER
/// caused by an earlier failed batch is retried without resetting the producer id.
#[test]
fn idempotent_pipeline_keeps_sequence_order_on_retries() {
    let config = ProducerConfig {
        linger_ms: 0,
        partitioner_ignore_keys: true,
        ..ProducerConfig::default()
    };
    // One partition: every null-key record goes to partition 0.
    let mut p = started_n(config, SendStyle::Async, 1);
    let mut reqs = Vec::new();
    for t in 3..=12 {
        reqs.extend(produce_requests(&tick(&mut p, t)));
    }
    assert_eq!(reqs.len(), 5, "five in flight on partition 0: {reqs:?}");
    let seqs: Vec<i32> = reqs.iter().map(|(_, b)| b[0].1.base_sequence.0).collect();
    assert_eq!(seqs, vec![0, 1, 2, 3, 4]);
    let broker = NodeId::Broker(BrokerId(0));
    // Batch 0 fails with NOT_LEADER (not written); batch 1 then gets OUT_OF_ORDER.
    let reject = |corr, error| Message::ProduceResponse {
        corr,
        partitions: vec![PartitionProduceResponse {
            tp: TopicPartition::new("t", 0),
            error,
            base_offset: Offset(-1),
            log_start_offset: Offset(0),
        }],
    };
    let mut out = Effects::new();
    p.on_message(
        Instant(13),
        broker,
        reject(reqs[0].0, ErrorCode::NotEnoughReplicas),
        &mut out,
    );
    let mut out = Effects::new();
    p.on_message(
        Instant(14),
        broker,
        reject(reqs[1].0, ErrorCode::OutOfOrderSequenceNumber),
        &mut out,
    );
    assert!(
        !p.reset_pending,
        "a consequence of batch 0, not a lost producer state"
    );
    assert!(!out
        .sent()
        .iter()
        .any(|m| matches!(m, Message::InitProducerId { .. })),);
    // After the backoff only batch 0 (the lowest unresolved) goes again, not batch 1.
    let mut out = Effects::new();
    p.on_timeout(Instant(200), ProducerTimer::Wake { at_ms: 200 }, &mut out);
    let again: Vec<i32> = produce_requests(&out)
        .iter()
        .map(|(_, b)| b[0].1.base_sequence.0)
        .collect();
    assert_eq!(again, vec![0]);
}

/// buffer.memory full: send blocks (the workload offers nothing) and fails after
/// max.block.ms with Kafka's text; memory returns when a batch completes.
#[test]
fn exhausted_buffer_blocks_send_then_times_out() {
    let config = ProducerConfig {
        linger_ms: 0,
        batch_size: 1024,
        buffer_memory: 2048,
        max_block_ms: 100,
        ..ProducerConfig::default()
    };
    let mut p = started(config, SendStyle::Async);
    let r1 = produce_requests(&tick(&mut p, 3));
    let r2 = produce_requests(&tick(&mut p, 4));
    assert_eq!((r1.len(), r2.len()), (1, 1));
    assert_eq!(p.buffer_available_bytes(), 0);
    // The third send blocks: no invoke completes, the next ticks offer nothing.
    let out = tick(&mut p, 5);
    assert!(produce_requests(&out).is_empty());
    let invokes = |out: &Effects<ProducerTimer>| {
        out.ops()
            .iter()
            .filter(|o| o.op_type == OpType::Invoke)
            .count()
    };
    assert_eq!(invokes(&out), 1);
    assert_eq!(
        invokes(&tick(&mut p, 6)),
        0,
        "the workload thread is blocked"
    );
    let mut out = Effects::new();
    p.on_timeout(Instant(105), ProducerTimer::MaxBlock { op_id: 3 }, &mut out);
    let failed = out.ops();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].op_type, OpType::Fail);
    assert_eq!(
        failed[0].error.as_deref(),
        Some("Failed to allocate memory within the configured max blocking time 100 ms.")
    );
    // A completed batch gives its memory back; sends go on.
    let mut out = Effects::new();
    p.on_message(
        Instant(106),
        NodeId::Broker(BrokerId(0)),
        ok_response(r1[0].0, &[(r1[0].1[0].0, 0)]),
        &mut out,
    );
    assert_eq!(p.buffer_available_bytes(), 1024);
    assert_eq!(invokes(&tick(&mut p, 107)), 1);
}

/// Sync waits for each outcome before the next send; fire-and-forget records `info` at
/// once and nothing when the ack comes.
#[test]
fn send_styles() {
    let config = ProducerConfig {
        linger_ms: 0,
        ..ProducerConfig::default()
    };
    let mut p = started(config.clone(), SendStyle::Sync);
    let out = tick(&mut p, 3);
    let r = produce_requests(&out);
    assert_eq!(r.len(), 1);
    assert!(
        tick(&mut p, 4).ops().is_empty(),
        "sync: blocked on the first get()"
    );
    let mut out = Effects::new();
    p.on_message(
        Instant(5),
        NodeId::Broker(BrokerId(0)),
        ok_response(r[0].0, &[(r[0].1[0].0, 0)]),
        &mut out,
    );
    assert_eq!(out.ops()[0].op_type, OpType::Ok);
    assert_eq!(tick(&mut p, 6).ops()[0].op_type, OpType::Invoke);

    let mut p = started(config, SendStyle::FireAndForget);
    let out = tick(&mut p, 3);
    let types: Vec<OpType> = out.ops().iter().map(|o| o.op_type).collect();
    assert_eq!(types, vec![OpType::Invoke, OpType::Info]);
    let r = produce_requests(&out);
    let mut out = Effects::new();
    p.on_message(
        Instant(5),
        NodeId::Broker(BrokerId(0)),
        ok_response(r[0].0, &[(r[0].1[0].0, 0)]),
        &mut out,
    );
    assert!(out.ops().is_empty(), "nobody looks at the outcome");
    assert_eq!(tick(&mut p, 6).ops()[0].op_type, OpType::Invoke);
}

/// compression.type: batches go out compressed in the attribute bits and decode back.
#[test]
fn batches_are_compressed_with_the_configured_codec() {
    for codec in Compression::ALL {
        let config = ProducerConfig {
            linger_ms: 0,
            compression_type: codec,
            ..ProducerConfig::default()
        };
        let mut p = started(config, SendStyle::Async);
        let out = tick(&mut p, 3);
        let Message::Produce { partitions, .. } = &out.sent()[0] else {
            panic!("a produce")
        };
        let h = crate::record::read_header(&partitions[0].1).unwrap();
        assert_eq!(h.compression(), codec.id());
        let (b, _) = RecordBatch::decode(&partitions[0].1).unwrap();
        assert_eq!(b.records.len(), 1);
    }
}

/// KIP-480: null-key records stick to one partition while they fill its open batch, and
/// move, at random among the partitions with a leader, only when a record would open a
/// new batch there; the choice is the same on every replay of the partitioner seed.
#[test]
fn sticky_partitioner_switches_only_when_a_new_batch_is_opened() {
    let run = |seed: u64| {
        let config = ProducerConfig {
            linger_ms: 1_000,
            batch_size: 200,
            enable_idempotence: false,
            ..ProducerConfig::default()
        };
        let mut p = ProducerClient::new(0, config, workload(SendStyle::Async), vec![BrokerId(0)])
            .with_partitioner_seed(seed);
        let broker = NodeId::Broker(BrokerId(0));
        let mut out = Effects::new();
        p.on_start(Instant(0), &mut out);
        let md = corr_of(&out.sent()[0]);
        let mut out = Effects::new();
        p.on_message(Instant(1), broker, metadata_n(md, 6), &mut out);
        let mut sends = Vec::new();
        for t in 3..=40 {
            for op in tick(&mut p, t).ops() {
                if let (OpType::Invoke, OpValue::Send { tp, .. }) = (op.op_type, &op.value) {
                    sends.push(tp.partition);
                }
            }
        }
        sends
    };
    let a = run(1);
    assert!(a.len() > 20, "{a:?}");
    // Runs of one partition, each the size of one batch (batch.size 200 holds several
    // records), and consecutive runs on different partitions.
    let mut runs: Vec<(i32, usize)> = Vec::new();
    for p in &a {
        match runs.last_mut() {
            Some((q, n)) if q == p => *n += 1,
            _ => runs.push((*p, 1)),
        }
    }
    assert!(runs.len() >= 3, "{runs:?}");
    assert!(
        runs.iter().all(|(_, n)| *n > 1),
        "a batch holds several records: {runs:?}"
    );
    assert!(runs.windows(2).all(|w| w[0].0 != w[1].0), "{runs:?}");
    let distinct: BTreeSet<i32> = a.iter().copied().collect();
    assert!(
        distinct.len() >= 3,
        "random choice spreads over partitions: {runs:?}"
    );
    assert_eq!(a, run(1), "same seed, same choices");
    assert_ne!(a, run(2), "another seed chooses differently");
}

/// Regression (found by `consumer-group-under-faults` seed 70029): a producer process that
/// restarted after a crash must not take the answer to its predecessor's request for the
/// answer to its own. The predecessor's produce (written at offset 247) waited in purgatory
/// past the restart; its answer came back to the new process, which had a request in flight
/// under the same correlation id, and reported its own record (written at 250) at 247.
#[test]
fn a_restarted_producer_ignores_answers_to_its_previous_process() {
    let config = ProducerConfig {
        linger_ms: 0,
        ..ProducerConfig::default()
    };
    let process = |incarnation| {
        let p = ProducerClient::new(
            0,
            config.clone(),
            workload(SendStyle::Async),
            vec![BrokerId(0)],
        )
        .with_incarnation(incarnation);
        past_init(p, 1)
    };
    let mut old = process(0);
    let old_request = produce_requests(&tick(&mut old, 3));
    assert_eq!(old_request.len(), 1, "{old_request:?}");
    // The first process crashes with its request unanswered; the next one sends its own.
    let mut new = process(1);
    let new_request = produce_requests(&tick(&mut new, 3));
    assert_eq!(new_request.len(), 1, "{new_request:?}");
    let broker = NodeId::Broker(BrokerId(0));
    let mut out = Effects::new();
    new.on_message(
        Instant(10),
        broker,
        ok_response(old_request[0].0, &[(0, 247)]),
        &mut out,
    );
    assert!(
        out.ops().is_empty(),
        "not this process's answer: {:?}",
        out.ops()
    );
    let mut out = Effects::new();
    new.on_message(
        Instant(11),
        broker,
        ok_response(new_request[0].0, &[(0, 250)]),
        &mut out,
    );
    let offsets: Vec<Option<Offset>> = out
        .ops()
        .iter()
        .filter(|o| o.op_type == OpType::Ok)
        .map(|o| match &o.value {
            OpValue::Send { offset, .. } => *offset,
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    assert_eq!(offsets, vec![Some(Offset(250))]);
}

/// Offers over `ms` simulated ms at `rate` per second, ticking as the producer schedules.
fn offered_by_pacing(rate: u32, ms: u64) -> (u64, BTreeSet<u64>) {
    let workload = ProducerWorkload {
        topics: vec!["t".into()],
        rate_per_sec: rate,
        keys: 0,
        stop_at_ms: ms,
        send_style: SendStyle::Async,
    };
    let mut p = ProducerClient::new(0, ProducerConfig::default(), workload, vec![BrokerId(0)]);
    let mut out = Effects::new();
    let (mut now, mut offered, mut intervals) = (0, 0, BTreeSet::new());
    p.schedule_tick(&mut out);
    loop {
        now += p.tick_scheduled_ms;
        if now > ms {
            return (offered, intervals);
        }
        intervals.insert(p.tick_scheduled_ms);
        offered += p.records_due();
        p.schedule_tick(&mut out);
    }
}

/// Regression (session 10's finding): a rate that does not divide 1000 was rounded to a
/// whole tick (300 per second gave 333, 1500 gave 1000). The workload now offers exactly
/// `rate_per_sec`, and the rates every scenario uses keep their fixed tick.
#[test]
fn the_workload_offers_exactly_its_rate() {
    for rate in [1, 3, 100, 200, 300, 400, 700, 999, 1000, 1500, 2500, 10_000] {
        let (offered, _) = offered_by_pacing(rate, 10_000);
        assert_eq!(offered, u64::from(rate) * 10, "rate {rate}");
    }
    assert_eq!(offered_by_pacing(100, 1000).1, BTreeSet::from([10]));
    assert_eq!(offered_by_pacing(400, 1000).1, BTreeSet::from([3, 2]));
    assert_eq!(offered_by_pacing(2000, 1000), (2000, BTreeSet::from([1])));
}

/// A workload of two topics (`[[producers]] topics`): record n of the client goes to topic
/// n % 2, each keyed record to the partition murmur2 gives it among its own topic's
/// partitions, and the produce requests name partitions of both topics.
#[test]
fn a_two_topic_workload_alternates_topics_and_partitions_within_each() {
    let workload = ProducerWorkload {
        topics: vec!["t".into(), "u".into()],
        keys: 8,
        ..workload(SendStyle::Async)
    };
    let config = ProducerConfig {
        linger_ms: 0,
        ..ProducerConfig::default()
    };
    let mut p = ProducerClient::new(0, config, workload, vec![BrokerId(0)]);
    let broker = NodeId::Broker(BrokerId(0));
    let mut out = Effects::new();
    p.on_start(Instant(0), &mut out);
    let Message::Metadata { corr, topics } = &out.sent()[0] else {
        panic!("a metadata request first");
    };
    assert_eq!(topics, &["t".to_string(), "u".to_string()]);
    let pm = |topic: &str, p: i32| PartitionMetadata {
        tp: TopicPartition::new(topic, p),
        error: ErrorCode::None,
        leader: Some(BrokerId(0)),
        leader_epoch: LeaderEpoch(0),
        replicas: vec![BrokerId(0)],
        isr: vec![BrokerId(0)],
    };
    let answer = Message::MetadataResponse {
        corr: *corr,
        brokers: vec![BrokerId(0)],
        controller: Some(BrokerId(0)),
        partitions: vec![pm("t", 0), pm("t", 1), pm("u", 0), pm("u", 1), pm("u", 2)],
    };
    let mut out = Effects::new();
    p.on_message(Instant(1), broker, answer, &mut out);
    let init = corr_of(&out.sent()[0]);
    let reply = Message::InitProducerIdResponse {
        corr: init,
        error: ErrorCode::None,
        producer_id: ProducerId(7),
        producer_epoch: ProducerEpoch(0),
    };
    p.on_message(Instant(2), broker, reply, &mut out);
    let mut sends = Vec::new();
    let mut requested = std::collections::BTreeSet::new();
    for t in 3..30 {
        let out = tick(&mut p, t);
        for op in out.ops() {
            if let (OpType::Invoke, OpValue::Send { tp, key, .. }) = (op.op_type, &op.value) {
                sends.push((tp.clone(), key.clone().expect("keyed")));
            }
        }
        for m in out.sent() {
            if let Message::Produce { partitions, .. } = m {
                requested.extend(partitions.into_iter().map(|(tp, _)| tp.topic));
            }
        }
    }
    assert!(sends.len() >= 10, "{sends:?}");
    for (n, (tp, key)) in sends.iter().enumerate() {
        let (topic, partitions) = if n % 2 == 0 { ("t", 2) } else { ("u", 3) };
        assert_eq!(tp.topic, topic, "record {n}");
        let bytes = key_serializer(SerdeClass::String)
            .serialize(topic, key)
            .unwrap();
        assert_eq!(
            tp.partition,
            partition_for_key(&bytes, partitions),
            "record {n}"
        );
    }
    assert_eq!(requested.len(), 2, "{requested:?}");
}
