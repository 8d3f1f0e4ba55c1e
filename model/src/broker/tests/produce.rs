//! Produce on the leader: `acks=all` and duplicates, compression, `min.insync.replicas`,
//! compacted topics.

use super::*;

/// Regression (found by `default` seed 155): a retried idempotent batch that the leader
/// already holds but has not committed must not be acknowledged before the HW passes it.
#[test]
fn duplicate_batch_under_acks_all_waits_for_the_high_watermark() {
    let (mut b, _) = leader_of_t0(vec![BrokerId(0), BrokerId(1)]);
    let client = NodeId::Producer(0);
    let mut out = Effects::new();
    b.checked_message(
        Instant(1),
        client,
        produce(1, idempotent_batch(0)),
        &mut out,
    );
    assert!(
        produce_responses(&out).is_empty(),
        "acks=all must wait for the follower"
    );
    let mut out = Effects::new();
    b.checked_message(
        Instant(2),
        client,
        produce(2, idempotent_batch(0)),
        &mut out,
    );
    assert!(
        produce_responses(&out).is_empty(),
        "a duplicate must not be acknowledged before it is committed"
    );
    // The follower fetches past offset 0: the HW moves to 1 and both requests are answered
    // with the original offset.
    let mut out = Effects::new();
    b.checked_message(
        Instant(3),
        NodeId::Broker(BrokerId(1)),
        follower_fetch(1),
        &mut out,
    );
    let mut answered = produce_responses(&out);
    answered.sort();
    assert_eq!(
        answered,
        vec![
            (CorrelationId(1), ErrorCode::None, Offset(0)),
            (CorrelationId(2), ErrorCode::None, Offset(0))
        ]
    );
    assert_eq!(
        b.partitions[&tp()].log.log_end_offset(),
        Offset(1),
        "the duplicate was not appended again"
    );
}

/// The leader decompresses a producer's batch to validate it, keeps the producer's codec
/// under `compression.type=producer`, and recompresses into the topic's codec otherwise.
#[test]
fn compressed_batches_are_validated_and_recompressed_per_topic() {
    use crate::record::Compression;
    let (mut b, _) = leader_of_t0(vec![BrokerId(0)]);
    let gzip = RecordBatch::new(vec![(None, Some(vec![9; 100]))], 0)
        .with_compression(Compression::Gzip)
        .encode();
    let mut out = Effects::new();
    b.checked_message(
        Instant(1),
        NodeId::Producer(0),
        produce(1, gzip.clone()),
        &mut out,
    );
    assert_eq!(
        produce_responses(&out),
        vec![(CorrelationId(1), ErrorCode::None, Offset(0))]
    );
    b.topic_configs.insert(
        "t".into(),
        TopicConfig {
            compression_type: Some(BrokerCompression::Codec(Compression::Zstd)),
            ..Default::default()
        },
    );
    let mut out = Effects::new();
    b.checked_message(
        Instant(2),
        NodeId::Producer(0),
        produce(2, gzip.clone()),
        &mut out,
    );
    assert_eq!(
        produce_responses(&out),
        vec![(CorrelationId(2), ErrorCode::None, Offset(1))]
    );
    let log = &b.partitions[&tp()].log;
    let codecs: Vec<i16> = log
        .batches()
        .map(|lb| read_header(&lb.bytes).unwrap().compression())
        .collect();
    assert_eq!(codecs, vec![Compression::Gzip.id(), Compression::Zstd.id()]);
    let values: Vec<_> = log.records().into_iter().map(|(o, v, _)| (o, v)).collect();
    assert_eq!(
        values,
        vec![
            (Offset(0), Some(vec![9; 100])),
            (Offset(1), Some(vec![9; 100]))
        ]
    );
    // A gzip attribute over bytes that are not gzip: refused, nothing appended.
    let mut bad = gzip;
    let n = bad.len();
    bad[n - 3] ^= 0xff;
    let crc = crc32c::crc32c(&bad[21..]);
    bad[17..21].copy_from_slice(&crc.to_be_bytes());
    b.topic_configs.clear();
    let mut out = Effects::new();
    b.checked_message(Instant(3), NodeId::Producer(0), produce(3, bad), &mut out);
    assert_eq!(
        produce_responses(&out),
        vec![(CorrelationId(3), ErrorCode::CorruptMessage, Offset(-1))]
    );
    assert_eq!(b.partitions[&tp()].log.log_end_offset(), Offset(2));
}

#[test]
fn acks_all_below_min_insync_replicas_is_refused_before_append() {
    let (mut b, _) = leader_of_t0(vec![BrokerId(0)]);
    b.topic_configs.insert(
        "t".into(),
        TopicConfig {
            min_insync_replicas: Some(2),
            ..Default::default()
        },
    );
    let mut out = Effects::new();
    b.checked_message(
        Instant(1),
        NodeId::Producer(0),
        produce(1, idempotent_batch(0)),
        &mut out,
    );
    assert_eq!(
        produce_responses(&out),
        vec![(CorrelationId(1), ErrorCode::NotEnoughReplicas, Offset(-1))]
    );
    assert_eq!(b.partitions[&tp()].log.log_end_offset(), Offset(0));
    let rejected: Vec<String> = out
        .list
        .iter()
        .filter_map(|e| match e {
            Effect::Event(Event::ProduceRejected { error, message, .. }) => {
                assert_eq!(*error, ErrorCode::NotEnoughReplicas);
                Some(message.clone())
            }
            _ => None,
        })
        .collect();
    assert_eq!(
        rejected,
        vec!["The size of the current ISR Set(0) is insufficient to satisfy the min.isr requirement of 2 for partition t-0".to_string()]
    );
}

/// Kafka's LogValidator: a compacted topic refuses a record without a key, with
/// CORRUPT_MESSAGE and InvalidRecordException's text; nothing is appended.
#[test]
fn compacted_topic_refuses_records_without_a_key() {
    let (mut b, _) = leader_of_t0(vec![BrokerId(0)]);
    let compact = crate::log::LogConfig {
        cleanup_policy: crate::log::CleanupPolicy {
            delete: false,
            compact: true,
        },
        ..Default::default()
    };
    b.partitions.get_mut(&tp()).unwrap().log.set_config(compact);
    let mut out = Effects::new();
    b.checked_message(
        Instant(1),
        NodeId::Producer(0),
        produce(1, idempotent_batch(0)),
        &mut out,
    );
    assert_eq!(
        produce_responses(&out),
        vec![(CorrelationId(1), ErrorCode::CorruptMessage, Offset(-1))]
    );
    assert!(out.list.iter().any(|e| matches!(
        e,
        Effect::Event(Event::ProduceRejected { message, .. })
            if message == "Compacted topic cannot accept message without key in topic partition t-0."
    )));
    assert_eq!(b.partitions[&tp()].log.log_end_offset(), Offset(0));
    // With a key it is appended.
    let keyed = RecordBatch::new(vec![(Some(b"k".to_vec()), Some(vec![1]))], 0).encode();
    let mut out = Effects::new();
    b.checked_message(Instant(2), NodeId::Producer(0), produce(2, keyed), &mut out);
    assert_eq!(b.partitions[&tp()].log.log_end_offset(), Offset(1));
}
