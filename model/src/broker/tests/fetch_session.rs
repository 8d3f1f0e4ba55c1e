//! Multi-partition fetches: the follower's one session per leader broker
//! (`fetcher_thread.rs`) and the leader's answer to a Fetch of several partitions, with
//! per-partition errors, a response budget shared by the partitions, and a DelayedFetch that
//! waits on all of them.

use super::*;

fn tp1() -> TopicPartition {
    TopicPartition::new("t", 1)
}

fn state(tp: TopicPartition, leader: i32, epoch: i32) -> PartitionState {
    PartitionState {
        tp,
        leader: Some(BrokerId(leader)),
        leader_epoch: LeaderEpoch(epoch),
        isr: vec![BrokerId(0), BrokerId(1)],
        replicas: vec![BrokerId(0), BrokerId(1)],
        partition_epoch: ZkVersion(0),
        controller_epoch: ControllerEpoch(1),
    }
}

/// Broker `id` after a LeaderAndIsr for `t-0` and `t-1`, both led by broker `leader`.
fn broker_with_two_partitions(id: i32, leader: i32) -> (Broker, Effects<BrokerTimer>) {
    let mut out = Effects::new();
    let mut b = Broker::recover(
        BrokerId(id),
        BrokerConfig::default(),
        vec![],
        &BTreeMap::new(),
        &mut out,
    );
    let msg = Message::LeaderAndIsr {
        controller: BrokerId(0),
        controller_epoch: ControllerEpoch(1),
        broker_epoch: BrokerEpoch(-1),
        partitions: vec![state(tp(), leader, 0), state(tp1(), leader, 0)],
    };
    let mut out = Effects::new();
    b.checked_message(Instant(0), NodeId::Broker(BrokerId(0)), msg, &mut out);
    (b, out)
}

fn fetches(out: &Effects<BrokerTimer>) -> Vec<(CorrelationId, Vec<TopicPartition>)> {
    out.list
        .iter()
        .filter_map(|e| match e {
            Effect::Send {
                to: NodeId::Broker(BrokerId(0)),
                msg: Message::Fetch {
                    corr, partitions, ..
                },
            } => Some((*corr, partitions.iter().map(|p| p.tp.clone()).collect())),
            _ => None,
        })
        .collect()
}

fn partition_answer(
    tp: TopicPartition,
    error: ErrorCode,
    batches: Vec<Vec<u8>>,
) -> FetchPartitionResponse {
    FetchPartitionResponse {
        tp,
        error,
        high_watermark: Offset(0),
        last_stable_offset: Offset(0),
        log_start_offset: Offset(0),
        diverging_epoch: None,
        leader_epoch: LeaderEpoch(0),
        batches,
        aborted_transactions: vec![],
    }
}

fn leader_batch(n: u8) -> Vec<u8> {
    let mut b = RecordBatch::new(vec![(None, Some(vec![n; 10]))], 0);
    b.partition_leader_epoch = LeaderEpoch(0);
    b.encode()
}

/// Kafka's replica fetcher thread: one Fetch per leader broker carrying every partition
/// followed from it; an error on one partition backs off that partition only, the other's
/// records are appended and it is fetched again at once.
#[test]
fn a_follower_fetches_all_partitions_of_a_leader_in_one_request_and_errors_stay_per_partition() {
    let (mut b, out) = broker_with_two_partitions(1, 0);
    let sent = fetches(&out);
    assert_eq!(sent.len(), 1, "one fetch for both partitions: {sent:?}");
    assert_eq!(sent[0].1, vec![tp(), tp1()]);
    let answer = Message::FetchResponse {
        corr: sent[0].0,
        partitions: vec![
            partition_answer(tp(), ErrorCode::NotLeaderOrFollower, vec![]),
            partition_answer(tp1(), ErrorCode::None, vec![leader_batch(1)]),
        ],
    };
    let mut out = Effects::new();
    b.checked_message(Instant(10), NodeId::Broker(BrokerId(0)), answer, &mut out);
    assert_eq!(b.partitions[&tp1()].log.log_end_offset(), Offset(1));
    assert_eq!(b.partitions[&tp()].log.log_end_offset(), Offset(0));
    let sent = fetches(&out);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].1, vec![tp1()], "t-0 backs off, t-1 goes on");
    let backoff = out.list.iter().find_map(|e| match e {
        Effect::SetTimer {
            after_ms,
            timer: BrokerTimer::FollowerFetch { tp, .. },
        } => Some((*after_ms, tp.clone())),
        _ => None,
    });
    assert_eq!(backoff, Some((1_000, tp())));
    // The backoff ends while t-1's fetch is in flight: t-0 waits for it, then both go.
    let timer = out
        .list
        .iter()
        .find_map(|e| match e {
            Effect::SetTimer {
                timer: t @ BrokerTimer::FollowerFetch { .. },
                ..
            } => Some(t.clone()),
            _ => None,
        })
        .unwrap();
    let mut out = Effects::new();
    b.checked_timeout(Instant(1_010), timer, &mut out);
    assert!(
        fetches(&out).is_empty(),
        "a fetch is in flight to that leader"
    );
    let answer = Message::FetchResponse {
        corr: sent[0].0,
        partitions: vec![partition_answer(tp1(), ErrorCode::None, vec![])],
    };
    let mut out = Effects::new();
    b.checked_message(
        Instant(1_020),
        NodeId::Broker(BrokerId(0)),
        answer,
        &mut out,
    );
    let sent = fetches(&out);
    assert_eq!(sent.len(), 1);
    // t-1 received data before, so it moved behind t-0 (Kafka's `updateAndMoveToEnd`).
    assert_eq!(sent[0].1, vec![tp(), tp1()]);
}

/// The leader's side: a Fetch of several partitions answers each on its own (one fenced, one
/// served), waits in purgatory until any of its partitions has data, and shares the
/// response's `max_bytes` between them, the first batch being returned whole.
#[test]
fn a_leader_answers_a_multi_partition_fetch_per_partition_and_parks_it_on_all() {
    let (mut b, _) = broker_with_two_partitions(0, 0);
    let fetch = |corr: u64, epochs: [i32; 2], max_bytes: u32| Message::Fetch {
        corr: CorrelationId(corr),
        replica_id: Some(BrokerId(1)),
        broker_epoch: BrokerEpoch(-1),
        max_bytes,
        min_bytes: 1,
        max_wait_ms: 500,
        isolation_level: IsolationLevel::ReadUncommitted,
        partitions: [tp(), tp1()]
            .into_iter()
            .zip(epochs)
            .map(|(tp, e)| FetchPartition {
                tp,
                fetch_offset: Offset(0),
                last_fetched_epoch: LeaderEpoch::UNKNOWN,
                current_leader_epoch: LeaderEpoch(e),
                partition_max_bytes: 1 << 20,
            })
            .collect(),
    };
    let answers = |out: &Effects<BrokerTimer>| -> Vec<Vec<(ErrorCode, usize)>> {
        out.list
            .iter()
            .filter_map(|e| match e {
                Effect::Send {
                    msg: Message::FetchResponse { partitions, .. },
                    ..
                } => Some(
                    partitions
                        .iter()
                        .map(|r| (r.error, r.batches.len()))
                        .collect(),
                ),
                _ => None,
            })
            .collect()
    };
    let from = NodeId::Broker(BrokerId(1));
    // A stale epoch on t-0 answers at once, t-1 included.
    let mut out = Effects::new();
    b.checked_message(Instant(1), from, fetch(1, [-2, 0], 1 << 20), &mut out);
    assert_eq!(
        answers(&out),
        vec![vec![
            (ErrorCode::FencedLeaderEpoch, 0),
            (ErrorCode::None, 0)
        ]]
    );
    // Nothing to read: parked, watching both partitions; a record on t-1 completes it.
    let mut out = Effects::new();
    b.checked_message(Instant(2), from, fetch(2, [0, 0], 1 << 20), &mut out);
    assert!(answers(&out).is_empty());
    let produce_to = |tp: TopicPartition, corr: u64| Message::Produce {
        corr: CorrelationId(corr),
        acks: Acks::Leader,
        timeout_ms: 30_000,
        transactional_id: None,
        partitions: vec![(
            tp,
            RecordBatch::new(vec![(None, Some(vec![7; 10]))], 0).encode(),
        )],
    };
    let mut out = Effects::new();
    b.checked_message(
        Instant(3),
        NodeId::Producer(0),
        produce_to(tp1(), 10),
        &mut out,
    );
    assert_eq!(
        answers(&out),
        vec![vec![(ErrorCode::None, 0), (ErrorCode::None, 1)]]
    );
    assert!(b.pending_fetches.ids().is_empty());
    // Both partitions have a batch; a budget of one byte returns t-0's batch whole and
    // nothing of t-1.
    let mut out = Effects::new();
    b.checked_message(
        Instant(4),
        NodeId::Producer(0),
        produce_to(tp(), 11),
        &mut out,
    );
    let mut out = Effects::new();
    b.checked_message(Instant(5), from, fetch(3, [0, 0], 1), &mut out);
    assert_eq!(
        answers(&out),
        vec![vec![(ErrorCode::None, 1), (ErrorCode::None, 0)]]
    );
}
