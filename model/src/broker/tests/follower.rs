//! Three brokers replicating `t-0`, driven message by message: KIP-320's stale-epoch follower
//! traces and a follower refusing a batch that does not start at its log end.

use super::*;

/// A three-broker cluster driven message by message for the KIP-320 stale-epoch traces:
/// brokers 0, 1, 2 replicate `t-0`; `links` says which broker-to-broker links carry traffic.
struct Trio {
    brokers: BTreeMap<i32, Broker>,
    queue: VecDeque<(NodeId, NodeId, Message)>,
    /// Errors of the fetch answers delivered so far: (from, to, error).
    fetch_errors: Vec<(i32, i32, ErrorCode)>,
}

impl Trio {
    fn new(mode: TruncationMode) -> Trio {
        let brokers = (0..3)
            .map(|id| {
                let config = BrokerConfig {
                    replication_truncation: mode,
                    ..BrokerConfig::default()
                };
                let b = Broker::recover(
                    BrokerId(id),
                    config,
                    vec![],
                    &BTreeMap::new(),
                    &mut Effects::new(),
                );
                (id, b)
            })
            .collect();
        Trio {
            brokers,
            queue: VecDeque::new(),
            fetch_errors: Vec::new(),
        }
    }

    /// The controller (broker 3, outside the replica set) tells `to` a partition state.
    fn leader_and_isr(&mut self, to: i32, leader: i32, epoch: i32, isr: &[i32]) {
        let msg = Message::LeaderAndIsr {
            controller: BrokerId(3),
            controller_epoch: ControllerEpoch(1),
            broker_epoch: BrokerEpoch(-1),
            partitions: vec![PartitionState {
                tp: tp(),
                leader: Some(BrokerId(leader)),
                leader_epoch: LeaderEpoch(epoch),
                isr: isr.iter().map(|b| BrokerId(*b)).collect(),
                replicas: vec![BrokerId(0), BrokerId(1), BrokerId(2)],
                partition_epoch: ZkVersion(epoch),
                controller_epoch: ControllerEpoch(1),
            }],
        };
        self.deliver(NodeId::Broker(BrokerId(3)), to, msg);
    }

    fn deliver(&mut self, from: NodeId, to: i32, msg: Message) {
        let mut out = Effects::new();
        let b = self.brokers.get_mut(&to).expect("broker");
        b.checked_message(Instant(0), from, msg, &mut out);
        self.collect(to, out);
    }

    /// Queue what `id` sends to the other replicas; a follower's fetch backoff
    /// (`FollowerFetch`) elapses at once, other timers never fire.
    fn collect(&mut self, id: i32, out: Effects<BrokerTimer>) {
        for e in out.list {
            match e {
                Effect::Send {
                    to: to @ NodeId::Broker(BrokerId(0..=2)),
                    msg,
                } => self
                    .queue
                    .push_back((NodeId::Broker(BrokerId(id)), to, msg)),
                Effect::SetTimer {
                    timer: t @ BrokerTimer::FollowerFetch { .. },
                    ..
                } => {
                    let mut out = Effects::new();
                    let b = self.brokers.get_mut(&id).expect("broker");
                    b.checked_timeout(Instant(0), t, &mut out);
                    self.collect(id, out);
                }
                _ => {}
            }
        }
    }

    /// Deliver queued messages over the links `up` allows (others are dropped), at most
    /// `budget` of them (a fenced follower retries for ever).
    fn run(&mut self, up: impl Fn(i32, i32) -> bool, budget: usize) {
        for _ in 0..budget {
            let Some((from, to, msg)) = self.queue.pop_front() else {
                return;
            };
            let (NodeId::Broker(BrokerId(f)), NodeId::Broker(BrokerId(t))) = (from, to) else {
                continue;
            };
            if up(f, t) {
                if let Message::FetchResponse { partitions, .. } = &msg {
                    for r in partitions.iter().filter(|r| r.error != ErrorCode::None) {
                        self.fetch_errors.push((f, t, r.error));
                    }
                }
                self.deliver(from, t, msg);
            }
        }
    }

    /// `id`'s parked long polls time out (`replica.fetch.wait.max.ms`) and are answered.
    fn expire_long_polls(&mut self, id: i32) {
        let b = self.brokers.get_mut(&id).expect("broker");
        let ids: Vec<u64> = b.pending_fetches.ids();
        let mut out = Effects::new();
        for i in ids {
            b.checked_timeout(
                Instant(0),
                BrokerTimer::FetchWaitExpired { id: i },
                &mut out,
            );
        }
        self.collect(id, out);
    }

    fn produce(&mut self, to: i32, corr: u64) {
        let batch = RecordBatch::new(vec![(None, Some(vec![corr as u8]))], 0).encode();
        self.deliver(NodeId::Producer(0), to, produce(corr, batch));
    }

    fn hw(&self, id: i32) -> Offset {
        self.brokers[&id].partitions[&tp()].high_watermark
    }

    fn leo(&self, id: i32) -> Offset {
        self.brokers[&id].partitions[&tp()].log.log_end_offset()
    }
}

/// The trace Kip320FirstTry.tla's comment describes ("several fast leader elections and a
/// leader bumping the high watermark due to a follower on an older epoch"), played on the
/// real broker state machines. Replicas 0 (L), 1 (X), 2 (F); the controller's requests to F
/// are held (a clogged link) from epoch 2 on.
/// 1. Epoch 1: L leads, ISR {L, X, F}; record r0 is committed (HW 1) everywhere.
/// 2. Epoch 2: X leads (L's session expired); F does not hear of it and keeps fetching
///    from L on epoch 1.
/// 3. Epoch 3: L leads again, ISR {L, F}; X is a zombie that never hears of epoch 3.
///    r1 is produced to L with acks=all.
/// 4. F finally gets epoch 2's LeaderAndIsr (epoch 3's is still queued behind it: Kafka's
///    controller sends a broker one request at a time) and fetches from X.
///
/// (In a whole simulated cluster this controller sends its requests without waiting for
/// answers, so a held epoch-2 request reaches F in the same instant as the epoch-3 one, and F
/// drops X's answer, as Kafka's fetcher does for a removed partition, unless the controller
/// sent F nothing for epoch 3: scenario `kip-320-stale-epoch-follower` gets there by letting
/// F's ZooKeeper session expire while its process keeps fetching.)
///
/// Returns (L's HW after step 3, F's log end offset after step 4, L's HW after step 4, the
/// errors of L's fetch answers to F at epoch 3).
fn stale_epoch_follower_trace(mode: TruncationMode) -> (Offset, Offset, Offset, Vec<ErrorCode>) {
    let mut c = Trio::new(mode);
    let all = |_: i32, _: i32| true;
    for b in 0..3 {
        c.leader_and_isr(b, 0, 1, &[0, 1, 2]);
    }
    c.run(all, 100);
    c.produce(0, 1);
    c.run(all, 100);
    assert_eq!(c.hw(0), Offset(1), "r0 committed at epoch 1");
    assert_eq!((c.leo(1), c.leo(2)), (Offset(1), Offset(1)));
    // Epoch 2: X leads; L follows it (and catches up: nothing to fetch).
    c.leader_and_isr(1, 1, 2, &[1, 2]);
    c.leader_and_isr(0, 1, 2, &[1, 2, 0]);
    c.expire_long_polls(0);
    c.run(all, 100);
    // Epoch 3: L leads with ISR {L, F}; X is cut off from everyone (a zombie leader).
    c.leader_and_isr(0, 0, 3, &[0, 2]);
    c.fetch_errors.clear();
    let without_x = |a: i32, b: i32| a != 1 && b != 1;
    c.run(without_x, 100);
    c.produce(0, 2);
    c.run(without_x, 100);
    let hw_at_epoch_3 = c.hw(0);
    let mut fenced: Vec<ErrorCode> = c
        .fetch_errors
        .iter()
        // (NOT_LEADER_OR_FOLLOWER answers from epoch 2, when L followed X, may still be
        // on their way.)
        .filter(|(f, t, e)| (*f, *t) == (0, 2) && *e != ErrorCode::NotLeaderOrFollower)
        .map(|(_, _, e)| *e)
        .collect();
    fenced.dedup();
    // F learns of epoch 2 (leader X); X is reachable from F again, L is not.
    c.leader_and_isr(2, 1, 2, &[1, 2]);
    c.run(|a, b| (a == 2 || b == 2) && a != 0 && b != 0, 100);
    (hw_at_epoch_3, c.leo(2), c.hw(0), fenced)
}

/// Kip320FirstTry.tla: the fetch carries no current leader epoch, so L counts F while F is
/// still on epoch 1 and commits r1 (HW 2); F then truncates r1 on X's diverging answer while
/// it is in the ISR {L, F}: StrongIsr is violated (were L to fail now, F would be elected
/// without the committed r1).
#[test]
fn kip320_first_try_counts_a_stale_epoch_follower_that_later_truncates_committed_data() {
    let (hw3, f_leo, l_hw, errors) = stale_epoch_follower_trace(TruncationMode::Kip320FirstTry);
    assert_eq!(
        errors,
        vec![],
        "no fencing: the fetch carries no current leader epoch"
    );
    assert_eq!(hw3, Offset(2), "L counted F's epoch-1 fetch toward its HW");
    assert_eq!(
        f_leo,
        Offset(1),
        "F truncated r1 on the zombie's diverging answer"
    );
    assert!(
        f_leo < l_hw,
        "an ISR member lacks a record below the leader's HW"
    );
}

/// A follower handed a batch that does not start at its log end (diverged logs: the leader
/// rewrote offsets from 0 after losing its log, `kip-101-divergence` seed 10) appends
/// nothing, says so once per log end offset, and keeps fetching the same offset, as
/// Kafka's fetcher leaves such a partition failed.
#[test]
fn a_batch_that_does_not_start_at_the_log_end_is_refused_and_reported_once() {
    let mut t = Trio::new(TruncationMode::HighWatermark);
    for id in 0..3 {
        t.leader_and_isr(id, 0, 1, &[0, 1, 2]);
    }
    t.produce(0, 1);
    t.produce(0, 2);
    t.run(|_, _| true, 50);
    assert_eq!(t.leo(1), Offset(2));
    let stale = RecordBatch::new(vec![(None, Some(vec![9]))], 0).encode();
    let mut reported = Vec::new();
    for _ in 0..2 {
        let corr = t
            .brokers
            .get(&1)
            .and_then(|b| b.fetchers.get(&BrokerId(0)))
            .and_then(|s| s.in_flight_corr())
            .expect("broker 1 has a fetch in flight");
        let answer = Message::FetchResponse {
            corr,
            partitions: vec![FetchPartitionResponse {
                tp: tp(),
                error: ErrorCode::None,
                high_watermark: Offset(2),
                last_stable_offset: Offset(2),
                log_start_offset: Offset(0),
                diverging_epoch: None,
                leader_epoch: LeaderEpoch(1),
                batches: vec![stale.clone()],
                aborted_transactions: vec![],
            }],
        };
        let mut out = Effects::new();
        let b = t.brokers.get_mut(&1).expect("broker");
        b.checked_message(Instant(0), NodeId::Broker(BrokerId(0)), answer, &mut out);
        reported.extend(out.list.iter().filter_map(|e| match e {
            Effect::Event(Event::FollowerAppendFailed {
                log_end_offset,
                error,
                ..
            }) => Some((*log_end_offset, error.clone())),
            _ => None,
        }));
        t.collect(1, out);
    }
    assert_eq!(t.leo(1), Offset(2), "nothing appended");
    assert_eq!(
        reported,
        vec![(
            Offset(2),
            "batch base offset 0 does not follow the log end offset 2".to_string()
        )],
        "reported once for the same log end offset"
    );
}

/// Kip320.tla (the default, `fenced`): F's epoch-1 fetch is refused by L on epoch 3
/// (FENCED_LEADER_EPOCH), so r1 is not committed while F lags; what X makes F truncate
/// later was never below any HW.
#[test]
fn fenced_fetch_refuses_a_stale_epoch_follower_so_nothing_committed_is_truncated() {
    let (hw3, f_leo, l_hw, errors) = stale_epoch_follower_trace(TruncationMode::Fenced);
    assert_eq!(errors, vec![ErrorCode::FencedLeaderEpoch]);
    assert_eq!(hw3, Offset(1), "L did not count F's epoch-1 fetch");
    assert!(
        f_leo >= l_hw,
        "every ISR member holds the leader's committed records"
    );
}
