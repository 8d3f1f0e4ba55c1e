//! The leader's side of reads: retention and OFFSET_OUT_OF_RANGE, epoch fencing, long polls,
//! OffsetsForLeaderEpoch.

use super::*;

/// Retention on the leader: old segments below the HW go, the log start offset advances
/// (event, checkpoint), and a fetch below it gets OFFSET_OUT_OF_RANGE with the new log
/// start offset, which is what a lagging follower truncates fully to.
#[test]
fn retention_advances_the_log_start_offset_and_fetches_below_it_are_out_of_range() {
    let (mut b, _) = leader_of_t0(vec![BrokerId(0)]);
    let config = crate::log::LogConfig {
        segment_bytes: 200,
        retention_ms: 1_000,
        ..Default::default()
    };
    b.partitions.get_mut(&tp()).unwrap().log.set_config(config);
    for i in 0..10 {
        let batch = RecordBatch::new(vec![(None, Some(vec![i]))], 100).encode();
        let mut out = Effects::new();
        b.checked_message(
            Instant(1),
            NodeId::Producer(0),
            produce(i as u64, batch),
            &mut out,
        );
    }
    let p = &b.partitions[&tp()];
    assert_eq!(
        p.high_watermark,
        Offset(10),
        "a one-member ISR commits at once"
    );
    assert!(p.log.segments().len() > 2);
    let mut out = Effects::new();
    b.checked_timeout(Instant(5_000), BrokerTimer::LogRetentionCheck, &mut out);
    let lso = b.partitions[&tp()].log.log_start_offset();
    assert!(lso > Offset(0));
    assert!(out.list.iter().any(|e| matches!(
        e,
        Effect::Event(Event::LogStartOffsetAdvanced { log_start_offset, reason, .. })
            if *log_start_offset == lso && reason == "retention"
    )));
    assert!(out.list.iter().any(|e| matches!(
        e,
        Effect::Disk(DiskOp::WriteAtomic { file, .. }) if file == checkpoint::LOG_START_OFFSET_CHECKPOINT
    )));
    let mut out = Effects::new();
    b.checked_message(
        Instant(5_001),
        NodeId::Broker(BrokerId(1)),
        follower_fetch(0),
        &mut out,
    );
    let answered: Vec<(ErrorCode, Offset)> = out
        .list
        .iter()
        .filter_map(|e| match e {
            Effect::Send {
                msg: Message::FetchResponse { partitions, .. },
                ..
            } => Some((partitions[0].error, partitions[0].log_start_offset)),
            _ => None,
        })
        .collect();
    assert_eq!(answered, vec![(ErrorCode::OffsetOutOfRange, lso)]);
}

/// KIP-101's lookup answers an epoch the leader never had with the start of its next
/// epoch (the fast-leader-change hole), KIP-279's with the largest epoch below it.
#[test]
fn kip101_lookup_versus_kip279_lookup() {
    let mut log = PartitionLog::new(&tp());
    let mut ops = Vec::new();
    log.assign_epoch_start(LeaderEpoch(0), Offset(0), &mut ops);
    let batch = RecordBatch::new(vec![(None, Some(vec![1]))], 0).encode();
    log.append_as_leader(&batch, LeaderEpoch(0), &mut ops)
        .unwrap();
    log.append_as_leader(&batch, LeaderEpoch(0), &mut ops)
        .unwrap();
    log.assign_epoch_start(LeaderEpoch(2), Offset(2), &mut ops);
    log.append_as_leader(&batch, LeaderEpoch(2), &mut ops)
        .unwrap();
    let off = |e: i32| kip101_end_offset(&log, LeaderEpoch(e)).end_offset;
    assert_eq!(off(0), Offset(2));
    // Epoch 1 was never on this log: KIP-101 answers where epoch 2 starts ...
    assert_eq!(off(1), Offset(2));
    assert_eq!(off(2), Offset(3), "the latest epoch ends at the LEO");
    assert_eq!(off(3), crate::log::UNDEFINED_EPOCH_OFFSET);
    // ... while KIP-279's answer names the epoch it is about.
    assert_eq!(
        log.end_offset_for_epoch(LeaderEpoch(1)),
        EpochEndOffset {
            leader_epoch: LeaderEpoch(0),
            end_offset: Offset(2)
        }
    );
}

#[test]
fn fetch_from_a_stale_epoch_is_fenced() {
    let (mut b, _) = leader_of_t0(vec![BrokerId(0), BrokerId(1)]);
    let mut fetch = follower_fetch(0);
    if let Message::Fetch { partitions, .. } = &mut fetch {
        partitions[0].current_leader_epoch = LeaderEpoch(-2);
    }
    // -2 is older than 0: FENCED_LEADER_EPOCH (UNKNOWN = -1 skips the check).
    let mut out = Effects::new();
    b.checked_message(Instant(1), NodeId::Broker(BrokerId(1)), fetch, &mut out);
    let errors: Vec<ErrorCode> = out
        .list
        .iter()
        .filter_map(|e| match e {
            Effect::Send {
                msg: Message::FetchResponse { partitions, .. },
                ..
            } => Some(partitions[0].error),
            _ => None,
        })
        .collect();
    assert_eq!(errors, vec![ErrorCode::FencedLeaderEpoch]);
}

fn consumer_fetch(corr: u64, fetch_offset: i64, min_bytes: u32) -> Message {
    Message::Fetch {
        corr: CorrelationId(corr),
        replica_id: None,
        broker_epoch: BrokerEpoch(-1),
        max_bytes: 50 << 20,
        min_bytes,
        max_wait_ms: 500,
        isolation_level: IsolationLevel::ReadUncommitted,
        partitions: vec![FetchPartition {
            tp: tp(),
            fetch_offset: Offset(fetch_offset),
            last_fetched_epoch: LeaderEpoch::UNKNOWN,
            current_leader_epoch: LeaderEpoch(0),
            partition_max_bytes: 1 << 20,
        }],
    }
}

/// (corr, error, number of batches) of every fetch response sent.
fn fetch_responses(out: &Effects<BrokerTimer>) -> Vec<(u64, ErrorCode, usize)> {
    out.list
        .iter()
        .filter_map(|e| match e {
            Effect::Send {
                msg: Message::FetchResponse { corr, partitions },
                ..
            } => Some((corr.0, partitions[0].error, partitions[0].batches.len())),
            _ => None,
        })
        .collect()
}

/// `fetch.min.bytes` / `fetch.max.wait.ms`: a consumer fetch with nothing to read is held
/// (a long poll) and answered as soon as the high watermark makes `min_bytes` readable, or
/// with what there is when the wait expires.
#[test]
fn consumer_fetch_is_a_long_poll_until_min_bytes_or_max_wait() {
    let (mut b, _) = leader_of_t0(vec![BrokerId(0)]);
    let one_batch = RecordBatch::new(vec![(None, Some(vec![0; 8]))], 0).encode();
    let mut out = Effects::new();
    let from = NodeId::Consumer(0);
    b.checked_message(Instant(1), from, consumer_fetch(1, 0, 1), &mut out);
    b.checked_message(
        Instant(1),
        from,
        consumer_fetch(2, 0, 2 * one_batch.len() as u32),
        &mut out,
    );
    assert!(fetch_responses(&out).is_empty(), "both parked");
    let expiry = out
        .list
        .iter()
        .filter_map(|e| match e {
            Effect::SetTimer {
                after_ms: 500,
                timer: t @ BrokerTimer::FetchWaitExpired { .. },
            } => Some(t.clone()),
            _ => None,
        })
        .collect::<Vec<_>>();
    assert_eq!(expiry.len(), 2);
    // One record committed (ISR = {leader}): enough for min_bytes = 1 only.
    let mut out = Effects::new();
    b.checked_message(
        Instant(2),
        NodeId::Producer(0),
        produce(10, one_batch.clone()),
        &mut out,
    );
    assert_eq!(fetch_responses(&out), [(1, ErrorCode::None, 1)]);
    // A second record: now the min_bytes = 2 batches fetch has enough.
    let mut out = Effects::new();
    b.checked_message(
        Instant(3),
        NodeId::Producer(0),
        produce(11, one_batch),
        &mut out,
    );
    assert_eq!(fetch_responses(&out), [(2, ErrorCode::None, 2)]);
    // A fetch that never gets enough is answered with what there is when the wait expires.
    let mut out = Effects::new();
    b.checked_message(Instant(4), from, consumer_fetch(3, 1, 1 << 20), &mut out);
    assert!(fetch_responses(&out).is_empty());
    let timer = out
        .list
        .iter()
        .find_map(|e| match e {
            Effect::SetTimer { timer, .. } => Some(timer.clone()),
            _ => None,
        })
        .unwrap();
    let mut out = Effects::new();
    b.checked_timeout(Instant(504), timer, &mut out);
    assert_eq!(fetch_responses(&out), [(3, ErrorCode::None, 1)]);
}

/// KIP-320: OffsetForLeaderEpoch carries the requester's current leader epoch and is fenced
/// like a fetch; a current one gets the end offset of the requested epoch.
#[test]
fn offset_for_leader_epoch_is_fenced_by_the_current_leader_epoch() {
    let (mut b, _) = leader_of_t0(vec![BrokerId(0)]);
    let ask = |current: i32| Message::OffsetForLeaderEpoch {
        corr: CorrelationId(5),
        replica_id: None,
        tp: tp(),
        current_leader_epoch: LeaderEpoch(current),
        leader_epoch: LeaderEpoch(0),
    };
    let answer = |out: &Effects<BrokerTimer>| {
        out.list
            .iter()
            .find_map(|e| match e {
                Effect::Send {
                    msg: Message::OffsetForLeaderEpochResponse { error, end, .. },
                    ..
                } => Some((*error, *end)),
                _ => None,
            })
            .unwrap()
    };
    for (current, expected) in [
        (-2, ErrorCode::FencedLeaderEpoch),
        (1, ErrorCode::UnknownLeaderEpoch),
        (0, ErrorCode::None),
        (-1, ErrorCode::None),
    ] {
        let mut out = Effects::new();
        b.checked_message(Instant(1), NodeId::Consumer(0), ask(current), &mut out);
        let (error, end) = answer(&out);
        assert_eq!(error, expected, "current epoch {current}");
        if expected != ErrorCode::None {
            assert_eq!(end.end_offset, Offset(-1));
        }
    }
}
