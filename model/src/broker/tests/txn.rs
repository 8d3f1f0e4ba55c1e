//! Transactions on the partition leader (KIP-98): transactional produce checks, WriteTxnMarkers,
//! the last stable offset, and read_committed fetches.

use super::*;

pub(super) const PID: ProducerId = ProducerId(7);

/// A leader of `t-0` without KIP-890 verification
/// (`transaction.partition.verification.enable = false`): these tests are about what the
/// partition does with transactional batches once they are appended; verification is
/// `txn_verification.rs`'s, tested in `tests/txn_verification.rs`.
fn unverified_leader_of_t0(isr: Vec<BrokerId>) -> (Broker, Effects<BrokerTimer>) {
    let (mut b, out) = leader_of_t0(isr);
    b.config.transaction_partition_verification_enable = false;
    (b, out)
}

pub(super) fn txn_batch(epoch: i16, seq: i32, n: usize) -> Vec<u8> {
    let records = (0..n).map(|i| (None, Some(vec![i as u8]))).collect();
    RecordBatch::new(records, 0)
        .with_producer(PID, ProducerEpoch(epoch), Sequence(seq))
        .with_transactional(true)
        .encode()
}

pub(super) fn write_markers(
    corr: u64,
    epoch: i16,
    result: TransactionResult,
    coordinator_epoch: i32,
) -> Message {
    Message::WriteTxnMarkers {
        corr: CorrelationId(corr),
        markers: vec![WritableTxnMarker {
            producer_id: PID,
            producer_epoch: ProducerEpoch(epoch),
            result,
            partitions: vec![tp()],
            coordinator_epoch,
        }],
    }
}

/// The partition errors of every WriteTxnMarkersResponse sent.
fn marker_answers(out: &Effects<BrokerTimer>) -> Vec<(CorrelationId, Vec<ErrorCode>)> {
    out.sent()
        .into_iter()
        .filter_map(|m| match m {
            Message::WriteTxnMarkersResponse { corr, markers } => Some((
                corr,
                markers
                    .iter()
                    .flat_map(|r| r.partitions.iter().map(|(_, e)| *e))
                    .collect(),
            )),
            _ => None,
        })
        .collect()
}

fn fetch(corr: u64, from: i64, isolation_level: IsolationLevel) -> Message {
    Message::Fetch {
        corr: CorrelationId(corr),
        replica_id: None,
        broker_epoch: BrokerEpoch(-1),
        max_bytes: 50 << 20,
        min_bytes: 1,
        max_wait_ms: 0,
        isolation_level,
        partitions: vec![FetchPartition {
            tp: tp(),
            fetch_offset: Offset(from),
            last_fetched_epoch: LeaderEpoch::UNKNOWN,
            current_leader_epoch: LeaderEpoch(0),
            partition_max_bytes: 1 << 20,
        }],
    }
}

/// The single partition answer of the fetch response sent.
fn fetched(out: &Effects<BrokerTimer>) -> FetchPartitionResponse {
    out.sent()
        .into_iter()
        .find_map(|m| match m {
            Message::FetchResponse { mut partitions, .. } => partitions.pop(),
            _ => None,
        })
        .expect("a fetch response")
}

fn lso_events(out: &Effects<BrokerTimer>) -> Vec<Offset> {
    out.events()
        .into_iter()
        .filter_map(|e| match e {
            Event::LastStableOffsetChanged {
                last_stable_offset, ..
            } => Some(last_stable_offset),
            _ => None,
        })
        .collect()
}

pub(super) fn send(b: &mut Broker, t: u64, from: NodeId, msg: Message) -> Effects<BrokerTimer> {
    let mut out = Effects::new();
    b.checked_message(Instant(t), from, msg, &mut out);
    out
}

fn list_latest(b: &mut Broker, isolation_level: IsolationLevel) -> Offset {
    let out = send(
        b,
        50,
        NodeId::Consumer(0),
        Message::ListOffsets {
            corr: CorrelationId(77),
            tp: tp(),
            timestamp: -1,
            current_leader_epoch: LeaderEpoch(0),
            isolation_level,
        },
    );
    match out.sent().pop() {
        Some(Message::ListOffsetsResponse { offset, .. }) => offset,
        other => panic!("expected ListOffsetsResponse, got {other:?}"),
    }
}

const PRODUCER: NodeId = NodeId::Producer(0);
const COORDINATOR: NodeId = NodeId::Broker(BrokerId(2));

/// An open transaction holds the LSO at its first offset: read_committed fetches and
/// ListOffsets stop there while read_uncommitted reads to the HW; the COMMIT marker
/// releases it, and each change is reported once.
#[test]
fn an_open_transaction_holds_the_lso_until_its_commit_marker() {
    let (mut b, _) = unverified_leader_of_t0(vec![BrokerId(0)]);
    let out = send(&mut b, 1, PRODUCER, produce(1, txn_batch(0, 0, 2)));
    assert_eq!(
        produce_responses(&out),
        vec![(CorrelationId(1), ErrorCode::None, Offset(0))]
    );
    assert_eq!(lso_events(&out), vec![Offset(0)], "HW 2, LSO held at 0");
    let out = send(
        &mut b,
        2,
        PRODUCER,
        produce(2, RecordBatch::new(vec![(None, None)], 0).encode()),
    );
    assert!(
        lso_events(&out).is_empty(),
        "the LSO did not move: no event"
    );
    let committed = fetched(&send(
        &mut b,
        3,
        NodeId::Consumer(0),
        fetch(3, 0, IsolationLevel::ReadCommitted),
    ));
    assert!(committed.batches.is_empty());
    assert_eq!(
        (committed.high_watermark, committed.last_stable_offset),
        (Offset(3), Offset(0))
    );
    let uncommitted = fetched(&send(
        &mut b,
        3,
        NodeId::Consumer(0),
        fetch(4, 0, IsolationLevel::ReadUncommitted),
    ));
    assert_eq!(uncommitted.batches.len(), 2);
    assert_eq!(
        list_latest(&mut b, IsolationLevel::ReadCommitted),
        Offset(0)
    );
    assert_eq!(
        list_latest(&mut b, IsolationLevel::ReadUncommitted),
        Offset(3)
    );

    let out = send(
        &mut b,
        4,
        COORDINATOR,
        write_markers(5, 0, TransactionResult::Commit, 0),
    );
    assert_eq!(
        marker_answers(&out),
        vec![(CorrelationId(5), vec![ErrorCode::None])]
    );
    assert!(out.events().iter().any(|e| matches!(e,
        Event::TxnMarkerWritten { offset, result, .. } if *offset == Offset(3) && result == "commit")));
    // The LSO moves once the marker is committed, not when it is appended.
    assert_eq!(lso_events(&out), vec![Offset(4)]);
    let committed = fetched(&send(
        &mut b,
        5,
        NodeId::Consumer(0),
        fetch(6, 0, IsolationLevel::ReadCommitted),
    ));
    assert_eq!(committed.batches.len(), 3, "data and the marker");
    assert!(committed.aborted_transactions.is_empty());
    assert_eq!(
        b.partitions[&tp()].log.records().len(),
        3,
        "the marker is no data record"
    );
}

/// An ABORT marker enters the aborted-transaction index, and a read_committed fetch of the
/// range returns it in `aborted_transactions` (a read_uncommitted one does not).
#[test]
fn an_abort_is_indexed_and_returned_to_read_committed_fetches() {
    let (mut b, _) = unverified_leader_of_t0(vec![BrokerId(0)]);
    send(&mut b, 1, PRODUCER, produce(1, txn_batch(0, 0, 2)));
    let out = send(
        &mut b,
        2,
        COORDINATOR,
        write_markers(2, 0, TransactionResult::Abort, 0),
    );
    assert_eq!(
        marker_answers(&out),
        vec![(CorrelationId(2), vec![ErrorCode::None])]
    );
    let log = &b.partitions[&tp()].log;
    assert_eq!(log.aborted_txns().len(), 1);
    assert_eq!(
        (
            log.aborted_txns()[0].first_offset,
            log.aborted_txns()[0].last_offset
        ),
        (Offset(0), Offset(2))
    );
    assert!(out.list.iter().any(|e| matches!(e,
        Effect::Disk(DiskOp::Append { file, .. }) if file.ends_with(".txnindex"))));
    let r = fetched(&send(
        &mut b,
        3,
        NodeId::Consumer(0),
        fetch(3, 0, IsolationLevel::ReadCommitted),
    ));
    assert_eq!(r.batches.len(), 2);
    assert_eq!(
        r.aborted_transactions,
        vec![AbortedTransaction {
            producer_id: PID,
            first_offset: Offset(0)
        }]
    );
    let r = fetched(&send(
        &mut b,
        3,
        NodeId::Consumer(0),
        fetch(4, 0, IsolationLevel::ReadUncommitted),
    ));
    assert!(r.aborted_transactions.is_empty());
    // A marker for a producer with no open transaction is still appended.
    let out = send(
        &mut b,
        4,
        COORDINATOR,
        write_markers(5, 0, TransactionResult::Commit, 0),
    );
    assert_eq!(
        marker_answers(&out),
        vec![(CorrelationId(5), vec![ErrorCode::None])]
    );
    assert_eq!(b.partitions[&tp()].log.log_end_offset(), Offset(4));
}

/// ProducerAppendInfo's rules: a non-transactional batch during the producer's open
/// transaction is INVALID_TXN_STATE; a lower epoch is INVALID_PRODUCER_EPOCH, for data and
/// markers, unless `sim.txn.producer-fencing = false` lets the zombie in.
#[test]
fn zombie_epochs_are_fenced_unless_the_legacy_switch_is_off() {
    for fencing in [true, false] {
        let (mut b, _) = unverified_leader_of_t0(vec![BrokerId(0)]);
        b.config.txn_producer_fencing = fencing;
        send(&mut b, 1, PRODUCER, produce(1, txn_batch(1, 0, 1)));
        let mut plain = RecordBatch::decode(&idempotent_batch(1)).unwrap().0;
        plain.producer_epoch = ProducerEpoch(1);
        let out = send(&mut b, 2, PRODUCER, produce(2, plain.encode()));
        assert_eq!(produce_responses(&out)[0].1, ErrorCode::InvalidTxnState);
        // The zombie at epoch 0.
        let out = send(&mut b, 3, PRODUCER, produce(3, txn_batch(0, 5, 1)));
        let expected = if fencing {
            ErrorCode::InvalidProducerEpoch
        } else {
            ErrorCode::None
        };
        assert_eq!(produce_responses(&out)[0].1, expected, "fencing {fencing}");
        // The current producer's sequence is undisturbed by the zombie's batch.
        let out = send(&mut b, 4, PRODUCER, produce(4, txn_batch(1, 1, 1)));
        assert_eq!(produce_responses(&out)[0].1, ErrorCode::None);
        let out = send(
            &mut b,
            5,
            COORDINATOR,
            write_markers(5, 0, TransactionResult::Commit, 0),
        );
        assert_eq!(
            marker_answers(&out),
            vec![(CorrelationId(5), vec![expected])]
        );
    }
}

/// A marker from an older coordinator epoch than the last one the partition saw for the
/// producer is TRANSACTION_COORDINATOR_FENCED; a client may not write a control batch.
#[test]
fn markers_of_a_deposed_coordinator_are_fenced() {
    let (mut b, _) = unverified_leader_of_t0(vec![BrokerId(0)]);
    send(&mut b, 1, PRODUCER, produce(1, txn_batch(0, 0, 1)));
    let out = send(
        &mut b,
        2,
        COORDINATOR,
        write_markers(2, 0, TransactionResult::Commit, 5),
    );
    assert_eq!(
        marker_answers(&out),
        vec![(CorrelationId(2), vec![ErrorCode::None])]
    );
    let out = send(
        &mut b,
        3,
        COORDINATOR,
        write_markers(3, 0, TransactionResult::Abort, 4),
    );
    assert_eq!(
        marker_answers(&out),
        vec![(
            CorrelationId(3),
            vec![ErrorCode::TransactionCoordinatorFenced]
        )]
    );
    let forged =
        RecordBatch::end_txn_marker(PID, ProducerEpoch(0), TransactionResult::Abort, 9, 0).encode();
    let out = send(&mut b, 4, PRODUCER, produce(4, forged));
    assert_eq!(produce_responses(&out)[0].1, ErrorCode::CorruptMessage);
    assert_eq!(b.partitions[&tp()].log.log_end_offset(), Offset(2));
}

/// WriteTxnMarkers is answered only once the HW passes every marker (acks=all), with
/// NOT_ENOUGH_REPLICAS below `min.insync.replicas`, and per-partition errors for partitions
/// not led here.
#[test]
fn write_txn_markers_waits_for_the_high_watermark() {
    let (mut b, _) = unverified_leader_of_t0(vec![BrokerId(0), BrokerId(1)]);
    send(&mut b, 1, PRODUCER, produce(1, txn_batch(0, 0, 1)));
    send(&mut b, 2, NodeId::Broker(BrokerId(1)), follower_fetch(1));
    let mut msg = write_markers(3, 0, TransactionResult::Commit, 0);
    if let Message::WriteTxnMarkers { markers, .. } = &mut msg {
        markers[0]
            .partitions
            .push(TopicPartition::new("missing", 0));
    }
    let out = send(&mut b, 3, COORDINATOR, msg);
    assert!(
        marker_answers(&out).is_empty(),
        "the marker at 1 is not committed yet"
    );
    assert_eq!(b.partitions[&tp()].last_stable_offset_now(), Offset(0));
    let out = send(&mut b, 4, NodeId::Broker(BrokerId(1)), follower_fetch(2));
    assert_eq!(
        marker_answers(&out),
        vec![(
            CorrelationId(3),
            vec![ErrorCode::None, ErrorCode::UnknownTopicOrPartition]
        )]
    );
    assert_eq!(lso_events(&out), vec![Offset(2)]);

    b.config.min_insync_replicas = 3;
    let out = send(
        &mut b,
        5,
        COORDINATOR,
        write_markers(6, 0, TransactionResult::Abort, 0),
    );
    assert_eq!(
        marker_answers(&out),
        vec![(CorrelationId(6), vec![ErrorCode::NotEnoughReplicas])]
    );
}

/// A restarted broker rebuilds open transactions, the LSO and the aborted index from the
/// files its disk holds (the leader's own disk operations, replayed).
#[test]
fn a_restart_rebuilds_transactions_from_the_log() {
    let mut disk = crate::disk::MemDisk::default();
    let mut keep = |out: &Effects<BrokerTimer>| {
        for e in &out.list {
            if let Effect::Disk(op) = e {
                crate::disk::Disk::apply(&mut disk, op).unwrap();
            }
        }
    };
    let (mut b, out) = unverified_leader_of_t0(vec![BrokerId(0)]);
    keep(&out);
    keep(&send(&mut b, 1, PRODUCER, produce(1, txn_batch(0, 0, 2))));
    keep(&send(
        &mut b,
        2,
        COORDINATOR,
        write_markers(2, 0, TransactionResult::Abort, 0),
    ));
    keep(&send(&mut b, 3, PRODUCER, produce(3, txn_batch(1, 0, 1))));
    let before = b.partitions[&tp()].log.clone();
    let mut out = Effects::new();
    let restarted = Broker::recover(
        BrokerId(0),
        BrokerConfig::default(),
        vec![],
        &disk.files,
        &mut out,
    );
    let p = &restarted.partitions[&tp()];
    let leo = p.log.log_end_offset();
    assert_eq!(p.log.first_unstable_offset(leo), Some((PID, Offset(3))));
    assert_eq!(p.log.aborted_txns(), before.aborted_txns());
    assert_eq!(p.log.aborted_txns().len(), 1);
    assert_eq!(
        p.log.txn_state().producer(PID),
        before.txn_state().producer(PID)
    );
}

/// Without transactions the LSO is the high watermark and is not reported on its own.
#[test]
fn no_lso_events_without_transactions() {
    let (mut b, _) = unverified_leader_of_t0(vec![BrokerId(0)]);
    let out = send(&mut b, 1, PRODUCER, produce(1, idempotent_batch(0)));
    assert_eq!(produce_responses(&out)[0].1, ErrorCode::None);
    assert!(lso_events(&out).is_empty());
    assert_eq!(b.partitions[&tp()].last_stable_offset_now(), Offset(1));
}

/// KAFKA-5355 (apache/kafka#3221): a read_committed fetch that waited in purgatory while a
/// transaction opened is answered, when its wait expires, below the last stable offset; with
/// the legacy switch `sim.fetch.delayed-isolation = false` the completion reads it as
/// read_uncommitted and returns the open transaction's records, reporting
/// `delayed-fetch-isolation-ignored`. A fetch answered at once keeps its isolation either way.
#[test]
fn a_delayed_read_committed_fetch_stays_below_the_lso_unless_the_legacy_switch_is_off() {
    for isolation in [true, false] {
        let (mut b, _) = unverified_leader_of_t0(vec![BrokerId(0)]);
        b.config.fetch_delayed_isolation = isolation;
        let mut parked = fetch(1, 0, IsolationLevel::ReadCommitted);
        if let Message::Fetch { max_wait_ms, .. } = &mut parked {
            *max_wait_ms = 500;
        }
        let out = send(&mut b, 1, NodeId::Consumer(0), parked);
        assert!(out.sent().is_empty(), "nothing to read: the fetch parks");
        let timer = out
            .list
            .iter()
            .find_map(|e| match e {
                Effect::SetTimer {
                    timer: t @ BrokerTimer::FetchWaitExpired { .. },
                    ..
                } => Some(t.clone()),
                _ => None,
            })
            .expect("a fetch wait timer");
        // A transaction opens: HW 2, LSO held at 0; the parked fetch has nothing below it.
        let out = send(&mut b, 2, PRODUCER, produce(2, txn_batch(0, 0, 2)));
        assert_eq!(lso_events(&out), vec![Offset(0)]);
        assert!(
            !out.sent()
                .iter()
                .any(|m| matches!(m, Message::FetchResponse { .. })),
            "still parked (isolation {isolation})"
        );
        let mut out = Effects::new();
        b.checked_timeout(Instant(501), timer, &mut out);
        let r = fetched(&out);
        let ignored: Vec<Event> = out
            .events()
            .into_iter()
            .filter(|e| matches!(e, Event::DelayedFetchIsolationIgnored { .. }))
            .collect();
        if isolation {
            assert!(r.batches.is_empty(), "read_committed stops at the LSO");
            assert!(ignored.is_empty());
        } else {
            assert_eq!(
                r.batches.len(),
                1,
                "the open transaction's batch is returned"
            );
            assert_eq!(
                ignored,
                vec![Event::DelayedFetchIsolationIgnored {
                    tp: tp(),
                    broker: BrokerId(0),
                    fetch_offset: Offset(0),
                    end_offset: Offset(2),
                    last_stable_offset: Offset(0),
                    high_watermark: Offset(2),
                }]
            );
        }
        // A fetch answered at once is read with its own isolation level.
        let now = fetched(&send(
            &mut b,
            502,
            NodeId::Consumer(0),
            fetch(3, 0, IsolationLevel::ReadCommitted),
        ));
        assert!(now.batches.is_empty(), "isolation {isolation}");
    }
}
