use super::*;
use crate::config::AutoOffsetReset;
use crate::effects::Effect;
use crate::event::{Event, OpType, OpValue};
use crate::record::RecordBatch;

fn tp() -> TopicPartition {
    TopicPartition::new("events", 0)
}

fn consumer(reset: AutoOffsetReset) -> ConsumerClient {
    let config = ConsumerConfig {
        auto_offset_reset: reset,
        ..ConsumerConfig::default()
    };
    ConsumerClient::new(0, config, vec!["events".into()], vec![BrokerId(0)])
}

fn corr_of(m: &Message) -> CorrelationId {
    match m {
        Message::Metadata { corr, .. }
        | Message::ListOffsets { corr, .. }
        | Message::OffsetForLeaderEpoch { corr, .. }
        | Message::Fetch { corr, .. } => *corr,
        other => panic!("not a consumer request: {other:?}"),
    }
}

fn metadata(corr: CorrelationId, leader: i32, epoch: i32) -> Message {
    Message::MetadataResponse {
        corr,
        brokers: vec![BrokerId(0), BrokerId(1)],
        controller: Some(BrokerId(0)),
        partitions: vec![PartitionMetadata {
            tp: tp(),
            error: ErrorCode::None,
            leader: Some(BrokerId(leader)),
            leader_epoch: LeaderEpoch(epoch),
            replicas: vec![BrokerId(0), BrokerId(1)],
            isr: vec![BrokerId(0), BrokerId(1)],
        }],
    }
}

/// A batch of `n` 8-byte values `base..base+n` at offsets `base..`, written in `epoch`.
fn batch(base: i64, n: i64, epoch: i32) -> Vec<u8> {
    let records = (0..n)
        .map(|i| (None, Some(((base + i) as u64).to_be_bytes().to_vec())))
        .collect();
    let mut b = RecordBatch::new(records, 0);
    b.base_offset = Offset(base);
    b.partition_leader_epoch = LeaderEpoch(epoch);
    b.encode()
}

fn fetch_response(corr: CorrelationId, error: ErrorCode, batches: Vec<Vec<u8>>) -> Message {
    Message::FetchResponse {
        corr,
        partitions: vec![FetchPartitionResponse {
            tp: tp(),
            error,
            high_watermark: Offset(100),
            last_stable_offset: Offset(100),
            log_start_offset: Offset(0),
            diverging_epoch: None,
            leader_epoch: LeaderEpoch(0),
            batches,
            aborted_transactions: vec![],
        }],
    }
}

/// Delivers `msg` and returns what the consumer did.
fn deliver(c: &mut ConsumerClient, msg: Message) -> Effects<ConsumerTimer> {
    let mut out = Effects::new();
    c.on_message(Instant(0), NodeId::Broker(BrokerId(0)), msg, &mut out);
    out
}

fn fire(c: &mut ConsumerClient, timer: ConsumerTimer) -> Effects<ConsumerTimer> {
    let mut out = Effects::new();
    c.on_timeout(Instant(0), timer, &mut out);
    out
}

/// A started consumer that got metadata (leader broker-0, epoch `epoch`) and reset its
/// position with ListOffsets to `offset`; returns the fetch it then sent.
fn positioned(reset: AutoOffsetReset, epoch: i32, offset: i64) -> (ConsumerClient, Message) {
    let mut c = consumer(reset);
    let mut out = Effects::new();
    c.on_start(Instant(0), &mut out);
    let md = out.sent().remove(0);
    let out = deliver(&mut c, metadata(corr_of(&md), 0, epoch));
    let lo = out.sent().remove(0);
    let Message::ListOffsets { timestamp, .. } = lo else {
        panic!("expected ListOffsets, got {lo:?}");
    };
    assert_eq!(
        timestamp,
        if reset == AutoOffsetReset::Earliest {
            -2
        } else {
            -1
        }
    );
    let out = deliver(
        &mut c,
        Message::ListOffsetsResponse {
            corr: corr_of(&lo),
            tp: tp(),
            error: ErrorCode::None,
            offset: Offset(offset),
            leader_epoch: LeaderEpoch(epoch),
        },
    );
    assert!(out.events().contains(&Event::ConsumerPositionReset {
        tp: tp(),
        from_offset: None,
        to_offset: Offset(offset),
        strategy: if reset == AutoOffsetReset::Earliest {
            "earliest".into()
        } else {
            "latest".into()
        },
        reason: "no-position".into(),
    }));
    let fetch = out.sent().remove(0);
    assert!(matches!(fetch, Message::Fetch { .. }), "{fetch:?}");
    (c, fetch)
}

#[test]
fn fetch_carries_kafka_defaults_and_the_current_leader_epoch() {
    let (c, fetch) = positioned(AutoOffsetReset::Earliest, 3, 0);
    let Message::Fetch {
        partitions,
        max_bytes,
        min_bytes,
        max_wait_ms,
        replica_id,
        ..
    } = fetch
    else {
        unreachable!()
    };
    assert_eq!(partitions.len(), 1);
    assert_eq!(partitions[0].fetch_offset, Offset(0));
    assert_eq!(partitions[0].current_leader_epoch, LeaderEpoch(3));
    assert_eq!((min_bytes, max_wait_ms), (1, 500));
    assert_eq!(partitions[0].partition_max_bytes, 1_048_576);
    assert_eq!(max_bytes, 52_428_800);
    assert_eq!(replica_id, None);
    assert_eq!(c.position(&tp()), Some(Offset(0)));
}

#[test]
fn fetch_max_bytes_caps_the_whole_fetch() {
    let mut c = consumer(AutoOffsetReset::Earliest);
    c.config.fetch_max_bytes = 1000;
    let mut out = Effects::new();
    c.on_start(Instant(0), &mut out);
    let md = out.sent().remove(0);
    let out = deliver(&mut c, metadata(corr_of(&md), 0, 0));
    let lo = out.sent().remove(0);
    let out = deliver(
        &mut c,
        Message::ListOffsetsResponse {
            corr: corr_of(&lo),
            tp: tp(),
            error: ErrorCode::None,
            offset: Offset(0),
            leader_epoch: LeaderEpoch(0),
        },
    );
    assert!(
        matches!(
            out.sent()[0],
            Message::Fetch {
                max_bytes: 1000,
                ..
            }
        ),
        "{:?}",
        out.sent()
    );
}

#[test]
fn a_blocked_poll_returns_when_records_arrive_at_most_max_poll_records() {
    let (mut c, fetch) = positioned(AutoOffsetReset::Earliest, 0, 0);
    c.config.max_poll_records = 3;
    // The application polls: nothing buffered, so poll(timeout) blocks; nothing recorded.
    let out = fire(&mut c, ConsumerTimer::Poll);
    assert!(out.ops().is_empty());
    assert!(c.blocked_poll.is_some());
    // The long poll answers with 5 records: the blocked poll returns 3 of them at once.
    let out = deliver(
        &mut c,
        fetch_response(corr_of(&fetch), ErrorCode::None, vec![batch(0, 5, 0)]),
    );
    let o = out.ops();
    assert_eq!(o.len(), 2);
    assert_eq!(o[0].op_type, OpType::Invoke);
    assert_eq!(o[1].op_type, OpType::Ok);
    let OpValue::Poll { records } = &o[1].value else {
        unreachable!()
    };
    let offsets: Vec<i64> = records.iter().map(|r| r.offset.0).collect();
    assert_eq!(offsets, [0, 1, 2]);
    assert_eq!(records[2].value, 2);
    // position() is the next record poll() returns; the next fetch starts after the batch.
    assert_eq!(c.position(&tp()), Some(Offset(3)));
    assert!(matches!(
        out.sent()[0],
        Message::Fetch { ref partitions, .. }
            if partitions[0].fetch_offset == Offset(5)
    ));
    // A poll timeout of a poll that already returned is ignored.
    let out = fire(&mut c, ConsumerTimer::PollTimeout { generation: 1 });
    assert!(out.ops().is_empty());
}

/// A batch of values at offsets `base..` with each value's bytes as given.
fn raw_batch(base: i64, values: Vec<Vec<u8>>) -> Vec<u8> {
    let records = values.into_iter().map(|v| (None, Some(v))).collect();
    let mut b = RecordBatch::new(records, 0);
    b.base_offset = Offset(base);
    b.encode()
}

/// A value the deserializer cannot read is a poison pill (KIP-334): the records before it
/// are returned, then `poll()` throws RecordDeserializationException naming the partition
/// and offset, and the position stays on that record (no further fetch).
#[test]
fn a_value_long_deserializer_cannot_read_stops_the_partition_at_its_offset() {
    let (mut c, fetch) = positioned(AutoOffsetReset::Earliest, 0, 0);
    let values = vec![
        7u64.to_be_bytes().to_vec(),
        b"4294967304".to_vec(), // StringSerializer's bytes for a value
        9u64.to_be_bytes().to_vec(),
    ];
    let out = deliver(
        &mut c,
        fetch_response(corr_of(&fetch), ErrorCode::None, vec![raw_batch(0, values)]),
    );
    let text = "Error deserializing key/value for partition events-0 at offset 1. If needed, \
                please seek past the record to continue consumption. Caused by: \
                org.apache.kafka.common.errors.SerializationException: Size of data received \
                by LongDeserializer is not 8";
    assert!(out.events().contains(&Event::ConsumerError {
        tp: tp(),
        exception: "RecordDeserializationException".into(),
        message: text.into(),
    }));
    assert!(out.sent().is_empty(), "no fetch past the poison pill");
    let o = fire(&mut c, ConsumerTimer::Poll).ops();
    assert_eq!(o[1].op_type, OpType::Fail);
    assert_eq!(
        o[1].error.as_deref(),
        Some(format!("RecordDeserializationException: {text}").as_str())
    );
    let o = fire(&mut c, ConsumerTimer::Poll).ops();
    let OpValue::Poll { records } = &o[1].value else {
        unreachable!()
    };
    assert_eq!(records.iter().map(|r| r.value).collect::<Vec<_>>(), [7]);
    assert_eq!(c.position(&tp()), Some(Offset(1)));
}

#[test]
fn none_without_a_position_throws_no_offset_for_partition() {
    let mut c = consumer(AutoOffsetReset::None);
    let mut out = Effects::new();
    c.on_start(Instant(0), &mut out);
    let md = out.sent().remove(0);
    let out = deliver(&mut c, metadata(corr_of(&md), 0, 0));
    assert!(out.sent().is_empty(), "no ListOffsets under none");
    let text = "Undefined offset with no reset policy for partitions: [events-0]";
    assert!(out.events().contains(&Event::ConsumerError {
        tp: tp(),
        exception: "NoOffsetForPartitionException".into(),
        message: text.into(),
    }));
    let out = fire(&mut c, ConsumerTimer::Poll);
    let o = out.ops();
    assert_eq!(o[1].op_type, OpType::Fail);
    assert_eq!(
        o[1].error.as_deref(),
        Some(format!("NoOffsetForPartitionException: {text}").as_str())
    );
    // Thrown once; the partition waits for the application (a seek).
    let out = fire(&mut c, ConsumerTimer::Poll);
    assert!(out.ops().is_empty());
    assert_eq!(c.position(&tp()), None);
    let mut out = Effects::new();
    c.seek(&tp(), Offset(7), &mut out);
    assert_eq!(c.position(&tp()), Some(Offset(7)));
    assert!(matches!(
        out.sent()[0],
        Message::Fetch { ref partitions, .. }
            if partitions[0].fetch_offset == Offset(7)
    ));
}

#[test]
fn offset_out_of_range_resets_by_policy_and_says_so() {
    let (mut c, fetch) = positioned(AutoOffsetReset::Latest, 0, 40);
    let out = deliver(
        &mut c,
        fetch_response(corr_of(&fetch), ErrorCode::OffsetOutOfRange, vec![]),
    );
    let lo = out.sent().remove(0);
    assert!(matches!(lo, Message::ListOffsets { timestamp: -1, .. }));
    let out = deliver(
        &mut c,
        Message::ListOffsetsResponse {
            corr: corr_of(&lo),
            tp: tp(),
            error: ErrorCode::None,
            offset: Offset(90),
            leader_epoch: LeaderEpoch(0),
        },
    );
    assert_eq!(
        out.events(),
        [Event::ConsumerPositionReset {
            tp: tp(),
            from_offset: Some(Offset(40)),
            to_offset: Offset(90),
            strategy: "latest".into(),
            reason: "offset-out-of-range".into(),
        }]
    );
}

#[test]
fn offset_out_of_range_under_none_throws() {
    let mut c = consumer(AutoOffsetReset::None);
    let mut out = Effects::new();
    c.on_start(Instant(0), &mut out);
    let md = out.sent().remove(0);
    deliver(&mut c, metadata(corr_of(&md), 0, 2));
    let mut out = Effects::new();
    c.seek(&tp(), Offset(500), &mut out);
    let fetch = out.sent().remove(0);
    let out = deliver(
        &mut c,
        fetch_response(corr_of(&fetch), ErrorCode::OffsetOutOfRange, vec![]),
    );
    assert!(out.sent().is_empty());
    let Some(Event::ConsumerError {
        exception, message, ..
    }) = out.events().pop()
    else {
        panic!("{:?}", out.events())
    };
    assert_eq!(exception, "OffsetOutOfRangeException");
    assert_eq!(
        message,
        "Fetch position FetchPosition{offset=500, offsetEpoch=Optional.empty, \
         currentLeader=LeaderAndEpoch{leader=Optional[broker-0], epoch=2}} is out of range \
         for partition events-0"
    );
}

#[test]
fn fenced_or_unknown_leader_epoch_refreshes_metadata() {
    for error in [ErrorCode::FencedLeaderEpoch, ErrorCode::UnknownLeaderEpoch] {
        let (mut c, fetch) = positioned(AutoOffsetReset::Earliest, 0, 0);
        // Let the periodic metadata request complete first.
        c.metadata_in_flight = false;
        let out = deliver(&mut c, fetch_response(corr_of(&fetch), error, vec![]));
        assert!(
            matches!(out.sent()[0], Message::Metadata { .. }),
            "{error:?}: {:?}",
            out.sent()
        );
    }
}

/// A consumer that read offsets 0..10 written in epoch 1 from leader broker-0, then learns
/// from metadata that broker-1 leads in epoch 2; returns the validation request.
fn after_leader_change(reset: AutoOffsetReset) -> (ConsumerClient, Message) {
    let (mut c, fetch) = if reset == AutoOffsetReset::None {
        // No reset policy: the application seeks to 0 first.
        let mut c = consumer(reset);
        let mut out = Effects::new();
        c.on_start(Instant(0), &mut out);
        let md = out.sent().remove(0);
        deliver(&mut c, metadata(corr_of(&md), 0, 1));
        let mut out = Effects::new();
        c.seek(&tp(), Offset(0), &mut out);
        let fetch = out.sent().remove(0);
        (c, fetch)
    } else {
        positioned(reset, 1, 0)
    };
    let out = deliver(
        &mut c,
        fetch_response(corr_of(&fetch), ErrorCode::None, vec![batch(0, 10, 1)]),
    );
    let next_fetch = out.sent().remove(0);
    c.metadata_in_flight = false;
    let mut out = Effects::new();
    c.request_metadata(&mut out);
    let md = out.sent().remove(0);
    deliver(&mut c, metadata(corr_of(&md), 1, 2));
    // The fetch still in flight to the old leader comes back empty; then the consumer
    // validates its position with the new leader.
    let out = deliver(
        &mut c,
        fetch_response(corr_of(&next_fetch), ErrorCode::None, vec![]),
    );
    let v = out
        .sent()
        .into_iter()
        .find(|m| matches!(m, Message::OffsetForLeaderEpoch { .. }))
        .expect("validation after a leader change");
    let Message::OffsetForLeaderEpoch {
        current_leader_epoch,
        leader_epoch,
        replica_id,
        ..
    } = &v
    else {
        unreachable!()
    };
    assert_eq!(*current_leader_epoch, LeaderEpoch(2));
    assert_eq!(
        *leader_epoch,
        LeaderEpoch(1),
        "the epoch of the last record read"
    );
    assert_eq!(*replica_id, None);
    (c, v)
}

fn epoch_end(corr: CorrelationId, epoch: i32, end: i64) -> Message {
    Message::OffsetForLeaderEpochResponse {
        corr,
        tp: tp(),
        error: ErrorCode::None,
        end: EpochEndOffset {
            leader_epoch: LeaderEpoch(epoch),
            end_offset: Offset(end),
        },
    }
}

#[test]
fn a_validated_position_is_kept() {
    let (mut c, v) = after_leader_change(AutoOffsetReset::Earliest);
    let out = deliver(&mut c, epoch_end(corr_of(&v), 1, 10));
    assert!(out.events().is_empty());
    assert!(matches!(
        out.sent()[0],
        Message::Fetch { ref partitions, .. }
            if partitions[0].fetch_offset == Offset(10)
                && partitions[0].current_leader_epoch == LeaderEpoch(2)
    ));
}

#[test]
fn log_truncation_below_the_position_is_detected_and_reset_to_the_divergent_offset() {
    let (mut c, v) = after_leader_change(AutoOffsetReset::Earliest);
    // The new leader ends epoch 1 at offset 6: offsets 6..10 the consumer read are gone.
    let out = deliver(&mut c, epoch_end(corr_of(&v), 1, 6));
    assert_eq!(
        out.events(),
        [
            Event::ConsumerLogTruncation {
                tp: tp(),
                fetch_offset: Offset(10),
                offset_epoch: LeaderEpoch(1),
                divergent_offset: Offset(6),
                divergent_epoch: LeaderEpoch(1),
            },
            Event::ConsumerPositionReset {
                tp: tp(),
                from_offset: Some(Offset(10)),
                to_offset: Offset(6),
                strategy: "divergent-offset".into(),
                reason: "log-truncation".into(),
            }
        ]
    );
    // Buffered records from the lost part of the log are dropped.
    assert!(c.buffer.iter().all(|r| r.offset < Offset(6)));
    assert!(matches!(
        out.sent()[0],
        Message::Fetch { ref partitions, .. }
            if partitions[0].fetch_offset == Offset(6)
    ));
}

#[test]
fn log_truncation_under_none_throws_log_truncation_exception() {
    let (mut c, v) = after_leader_change(AutoOffsetReset::None);
    let out = deliver(&mut c, epoch_end(corr_of(&v), 1, 6));
    assert!(out.sent().is_empty(), "blocked until the application seeks");
    // Drain the records read before, then the next poll throws.
    let _ = fire(&mut c, ConsumerTimer::Poll);
    let out = fire(&mut c, ConsumerTimer::Poll);
    let o = out.ops();
    assert_eq!(o[1].op_type, OpType::Fail);
    let error = o[1].error.clone().unwrap();
    assert!(
        error.starts_with(
            "LogTruncationException: Detected truncated partitions: \
             [LogTruncation(topicPartition=events-0, fetchPosition=FetchPosition{offset=10, \
             offsetEpoch=Optional[1]"
        ),
        "{error}"
    );
    assert!(error.contains("divergentOffset=Optional[OffsetAndMetadata{offset=6, leaderEpoch=1"));
}

#[test]
fn a_broker_before_kip_320_skips_the_validation() {
    let (mut c, v) = after_leader_change(AutoOffsetReset::Earliest);
    let out = deliver(
        &mut c,
        Message::OffsetForLeaderEpochResponse {
            corr: corr_of(&v),
            tp: tp(),
            error: ErrorCode::UnsupportedVersion,
            end: EpochEndOffset {
                leader_epoch: LeaderEpoch::UNKNOWN,
                end_offset: Offset(-1),
            },
        },
    );
    assert!(out.events().is_empty());
    assert!(matches!(
        out.sent()[0],
        Message::Fetch { ref partitions, .. }
            if partitions[0].fetch_offset == Offset(10)
    ));
}

#[test]
fn an_undefined_epoch_resets_by_policy() {
    let (mut c, v) = after_leader_change(AutoOffsetReset::Latest);
    let out = deliver(&mut c, epoch_end(corr_of(&v), -1, -1));
    assert!(matches!(
        out.sent()[0],
        Message::ListOffsets { timestamp: -1, .. }
    ));
}

#[test]
fn a_late_start_waits_and_a_seek_moves_the_position() {
    let mut c = consumer(AutoOffsetReset::Latest).with_workload(ConsumerWorkload {
        start_ms: 8_000,
        seeks: vec![SeekAt {
            at_ms: 9_000,
            tp: tp(),
            offset: Offset(0),
        }],
        ..ConsumerWorkload::default()
    });
    let mut out = Effects::new();
    c.on_start(Instant(0), &mut out);
    assert!(out.sent().is_empty());
    assert_eq!(
        out.list,
        [Effect::SetTimer {
            after_ms: 8_000,
            timer: ConsumerTimer::Start
        }]
    );
    let mut out = Effects::new();
    c.on_timeout(Instant(8_000), ConsumerTimer::Start, &mut out);
    assert!(matches!(out.sent()[0], Message::Metadata { .. }));
    assert!(out.list.contains(&Effect::SetTimer {
        after_ms: 1_000,
        timer: ConsumerTimer::Seek {
            tp: tp(),
            offset: Offset(0)
        }
    }));
    // A process restarted after start_ms starts at once and does not repeat the seek.
    let mut c2 = consumer(AutoOffsetReset::Latest).with_workload(c.workload.clone());
    let mut out = Effects::new();
    c2.on_start(Instant(12_000), &mut out);
    assert!(matches!(out.sent()[0], Message::Metadata { .. }));
    assert!(!out.list.iter().any(|e| matches!(
        e,
        Effect::SetTimer {
            timer: ConsumerTimer::Seek { .. },
            ..
        }
    )));
}

#[test]
fn a_seek_drops_buffered_records_and_ignores_the_fetch_in_flight() {
    let (mut c, fetch) = positioned(AutoOffsetReset::Earliest, 0, 0);
    let out = deliver(
        &mut c,
        fetch_response(corr_of(&fetch), ErrorCode::None, vec![batch(0, 5, 0)]),
    );
    let stale = out.sent().remove(0);
    let mut out = Effects::new();
    c.seek(&tp(), Offset(2), &mut out);
    assert!(c.buffer.is_empty());
    assert_eq!(
        out.events(),
        [Event::ConsumerPositionReset {
            tp: tp(),
            from_offset: Some(Offset(0)),
            to_offset: Offset(2),
            strategy: "seek".into(),
            reason: "seek".into(),
        }]
    );
    // The call is a client op too, so the poll checkers know the position moved on purpose.
    let seek = OpValue::Seek {
        tp: tp(),
        offset: Offset(2),
    };
    let recorded: Vec<(OpType, OpValue)> = out
        .ops()
        .into_iter()
        .map(|o| (o.op_type, o.value))
        .collect();
    assert_eq!(
        recorded,
        [(OpType::Invoke, seek.clone()), (OpType::Ok, seek)]
    );
    // One fetch per broker at a time: the new position's fetch waits for the one in flight.
    assert!(out.sent().is_empty());
    let out = deliver(
        &mut c,
        fetch_response(corr_of(&stale), ErrorCode::None, vec![batch(5, 3, 0)]),
    );
    assert!(c.buffer.is_empty(), "the stale answer is ignored");
    let fresh = out.sent().remove(0);
    assert!(
        matches!(&fresh, Message::Fetch { partitions, .. } if partitions[0].fetch_offset == Offset(2)),
        "{fresh:?}"
    );
    deliver(
        &mut c,
        fetch_response(corr_of(&fresh), ErrorCode::None, vec![batch(0, 5, 0)]),
    );
    let offsets: Vec<i64> = c.buffer.iter().map(|r| r.offset.0).collect();
    assert_eq!(offsets, [2, 3, 4]);
}

/// A consumer with a `group.id` (assign mode, commits with generation -1).
mod group;
mod membership;

/// The invariants catch a fetch left in flight after its request stopped waiting, even when
/// the handler that dropped the request did not touch the partition (the incremental check
/// remembers the partitions of each fetch in flight).
#[test]
#[should_panic(expected = "in flight but no request waits for it")]
fn a_fetch_left_in_flight_without_its_request_breaks_the_invariants() {
    let (mut c, fetch) = positioned(AutoOffsetReset::Earliest, 0, 0);
    c.invariants();
    // A handler that forgets the request but not the partition's fetch.
    c.pending.remove(&corr_of(&fetch));
    c.invariants();
}

/// The same bug on a partition changed by the handler itself is caught too.
#[test]
#[should_panic(expected = "in flight but no request waits for it")]
fn a_fetch_set_in_flight_without_a_request_breaks_the_invariants() {
    let (mut c, _) = positioned(AutoOffsetReset::Earliest, 0, 0);
    c.invariants();
    c.partitions.get_mut(&tp()).expect("assigned").in_flight = Some(CorrelationId(999_999));
    c.invariants();
}

/// A fetch answered as the consumer does it (every partition's fetch cleared) keeps the
/// invariants, and nothing is remembered for it afterwards.
#[test]
fn an_answered_fetch_keeps_the_invariants_and_is_forgotten() {
    let (mut c, fetch) = positioned(AutoOffsetReset::Earliest, 0, 0);
    c.invariants();
    assert_eq!(c.in_flight_seen.borrow().by_fetch.len(), 1);
    deliver(
        &mut c,
        fetch_response(corr_of(&fetch), ErrorCode::None, vec![]),
    );
    c.invariants();
    assert!(!c
        .in_flight_seen
        .borrow()
        .by_fetch
        .contains_key(&corr_of(&fetch)));
}
