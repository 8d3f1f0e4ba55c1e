//! The coordinator runtime hosted by brokers, driven message by message: the leader of a
//! `__consumer_offsets` partition takes an OffsetCommit and answers it once the follower's
//! fetch moves the high watermark past it; a leader that loses the partition first answers
//! NOT_COORDINATOR and the new leader serves exactly what survived in its log; the
//! `min.insync.replicas` refusal and the commit timeout; FindCoordinator creating the topic.

use super::*;
use crate::group_coordinator::{partition_for, CONSUMER_OFFSETS_TOPIC};

const GROUP: &str = "my-group";
const CLIENT: NodeId = NodeId::Consumer(0);

/// The group's `__consumer_offsets` partition under the default 50 partitions (12 for
/// "my-group", whose Java hash is negative).
fn offsets_tp() -> TopicPartition {
    partition_for(GROUP, 50)
}

/// Brokers 0 and 1 replicating the group's offsets partition, with a client's inbox.
struct Pair {
    brokers: BTreeMap<i32, Broker>,
    queue: VecDeque<(NodeId, i32, Message)>,
    inbox: Vec<Message>,
    events: Vec<Event>,
    now: Instant,
}

impl Pair {
    fn new(config: BrokerConfig) -> Pair {
        let brokers = (0..2)
            .map(|id| {
                let b = Broker::recover(
                    BrokerId(id),
                    config.clone(),
                    vec![],
                    &BTreeMap::new(),
                    &mut Effects::new(),
                );
                (id, b)
            })
            .collect();
        Pair {
            brokers,
            queue: VecDeque::new(),
            inbox: Vec::new(),
            events: Vec::new(),
            now: Instant(0),
        }
    }

    /// The controller (broker 3) tells `to` the offsets partition's state.
    fn leader_and_isr(&mut self, to: i32, leader: i32, epoch: i32, isr: &[i32]) {
        let msg = Message::LeaderAndIsr {
            controller: BrokerId(3),
            controller_epoch: ControllerEpoch(1),
            broker_epoch: BrokerEpoch(-1),
            partitions: vec![PartitionState {
                tp: offsets_tp(),
                leader: Some(BrokerId(leader)),
                leader_epoch: LeaderEpoch(epoch),
                isr: isr.iter().map(|b| BrokerId(*b)).collect(),
                replicas: vec![BrokerId(0), BrokerId(1)],
                partition_epoch: ZkVersion(epoch),
                controller_epoch: ControllerEpoch(1),
            }],
        };
        self.deliver(NodeId::Broker(BrokerId(3)), to, msg);
    }

    fn deliver(&mut self, from: NodeId, to: i32, msg: Message) {
        let mut out = Effects::new();
        let now = self.now;
        let b = self.brokers.get_mut(&to).expect("broker");
        b.checked_message(now, from, msg, &mut out);
        self.collect(to, out);
    }

    fn timeout(&mut self, id: i32, timer: BrokerTimer) {
        let mut out = Effects::new();
        let now = self.now;
        self.brokers
            .get_mut(&id)
            .expect("broker")
            .checked_timeout(now, timer, &mut out);
        self.collect(id, out);
    }

    /// Queues what `id` sends to the other broker, keeps what it sends the client, and fires
    /// a follower's fetch backoff at once (other timers never fire by themselves).
    fn collect(&mut self, id: i32, out: Effects<BrokerTimer>) {
        self.events.extend(out.events());
        for e in out.list {
            match e {
                Effect::Send {
                    to: NodeId::Broker(BrokerId(to @ 0..=1)),
                    msg,
                } => self
                    .queue
                    .push_back((NodeId::Broker(BrokerId(id)), to, msg)),
                Effect::Send { to, msg } if to == CLIENT => self.inbox.push(msg),
                Effect::SetTimer {
                    timer: t @ BrokerTimer::FollowerFetch { .. },
                    ..
                } => self.timeout(id, t),
                _ => {}
            }
        }
    }

    /// Delivers at most `budget` queued broker-to-broker messages.
    fn run(&mut self, budget: usize) {
        for _ in 0..budget {
            let Some((from, to, msg)) = self.queue.pop_front() else {
                return;
            };
            self.deliver(from, to, msg);
        }
    }

    /// `id`'s parked fetches are answered (`replica.fetch.wait.max.ms` elapses).
    fn expire_long_polls(&mut self, id: i32) {
        let ids: Vec<u64> = self.brokers[&id].pending_fetches.ids();
        for i in ids {
            self.timeout(id, BrokerTimer::FetchWaitExpired { id: i });
        }
    }

    fn commit(&mut self, to: i32, corr: u64, offset: i64) {
        let msg = Message::OffsetCommit {
            corr: CorrelationId(corr),
            group_id: GROUP.into(),
            generation_id: -1,
            member_id: String::new(),
            offsets: vec![OffsetCommitPartition {
                tp: TopicPartition::new("t", 0),
                committed_offset: Offset(offset),
            }],
        };
        self.deliver(CLIENT, to, msg);
    }

    /// The commit answers received so far: (corr, error).
    fn commit_answers(&self) -> Vec<(u64, ErrorCode)> {
        self.inbox
            .iter()
            .filter_map(|m| match m {
                Message::OffsetCommitResponse { corr, partitions } => {
                    assert_eq!(partitions.len(), 1);
                    Some((corr.0, partitions[0].error))
                }
                _ => None,
            })
            .collect()
    }

    /// Asks `to` for the group's committed offset of `t-0`: (error, offset).
    fn fetch_offset(&mut self, to: i32) -> (ErrorCode, Option<Offset>) {
        let msg = Message::OffsetFetch {
            corr: CorrelationId(900),
            group_id: GROUP.into(),
            partitions: vec![TopicPartition::new("t", 0)],
            require_stable: false,
        };
        self.deliver(CLIENT, to, msg);
        match self.inbox.pop() {
            Some(Message::OffsetFetchResponse {
                error, partitions, ..
            }) => (error, partitions.first().map(|p| p.committed_offset)),
            other => panic!("no OffsetFetchResponse: {other:?}"),
        }
    }

    fn hw(&self, id: i32) -> Offset {
        self.brokers[&id].partitions[&offsets_tp()].high_watermark
    }

    fn leo(&self, id: i32) -> Offset {
        self.brokers[&id].partitions[&offsets_tp()]
            .log
            .log_end_offset()
    }

    fn loaded(&self) -> Vec<(BrokerId, LeaderEpoch, u64)> {
        self.events
            .iter()
            .filter_map(|e| match e {
                Event::CoordinatorLoaded {
                    broker,
                    leader_epoch,
                    records,
                    ..
                } => Some((*broker, *leader_epoch, *records)),
                _ => None,
            })
            .collect()
    }
}

/// Broker 0 leads, broker 1 follows, both in the ISR, and broker 1's first fetch is parked
/// at the leader.
fn replicated_pair() -> Pair {
    let mut pair = Pair::new(BrokerConfig::default());
    pair.leader_and_isr(0, 0, 0, &[0, 1]);
    pair.leader_and_isr(1, 0, 0, &[0, 1]);
    pair.run(10);
    assert_eq!(pair.loaded(), vec![(BrokerId(0), LeaderEpoch(0), 0)]);
    assert!(pair.brokers[&0].coordinators.offsets.hosts(&offsets_tp()));
    assert!(!pair.brokers[&1].coordinators.offsets.hosts(&offsets_tp()));
    assert_eq!(
        pair.brokers[&0].topic_configs[CONSUMER_OFFSETS_TOPIC]
            .cleanup_policy
            .map(|p| p.compact),
        Some(true),
        "the internal topic is compacted"
    );
    pair
}

#[test]
fn an_offset_commit_is_answered_once_the_followers_fetch_moves_the_high_watermark_past_it() {
    let mut pair = replicated_pair();
    pair.commit(0, 1, 42);
    assert_eq!(pair.leo(0), Offset(1));
    assert!(
        pair.commit_answers().is_empty(),
        "not answered before the HW passes it"
    );
    // The parked fetch carries the record to the follower; its next fetch moves the HW.
    pair.run(10);
    assert_eq!(pair.leo(1), Offset(1));
    assert_eq!(pair.hw(0), Offset(1));
    assert_eq!(pair.commit_answers(), vec![(1, ErrorCode::None)]);
    assert_eq!(pair.fetch_offset(0), (ErrorCode::None, Some(Offset(42))));
    // The follower is not the coordinator.
    assert_eq!(pair.fetch_offset(1), (ErrorCode::NotCoordinator, None));
    pair.commit(1, 2, 43);
    assert_eq!(pair.commit_answers()[1], (2, ErrorCode::NotCoordinator));
    // A group with no record reads -1.
    let msg = Message::OffsetFetch {
        corr: CorrelationId(7),
        group_id: GROUP.into(),
        partitions: vec![TopicPartition::new("t", 1)],
        require_stable: false,
    };
    pair.deliver(CLIENT, 0, msg);
    assert!(matches!(
        pair.inbox.last(),
        Some(Message::OffsetFetchResponse { partitions, .. })
            if partitions[0].committed_offset == Offset(-1)
    ));
}

#[test]
fn a_leader_that_loses_the_partition_before_the_commit_answers_not_coordinator_and_the_new_leader_serves_what_survived(
) {
    let mut pair = replicated_pair();
    pair.commit(0, 1, 10);
    pair.run(10);
    assert_eq!(pair.commit_answers(), vec![(1, ErrorCode::None)]);
    assert_eq!(pair.hw(0), Offset(1));
    // Commit 20 reaches the follower's log, but the follower's next fetch, which would move
    // the leader's HW past it, is lost.
    pair.commit(0, 2, 20);
    let (from, to, msg) = pair.queue.pop_front().expect("the parked fetch's answer");
    assert!(matches!(msg, Message::FetchResponse { .. }));
    pair.deliver(from, to, msg);
    assert_eq!(pair.leo(1), Offset(2));
    pair.queue.clear();
    // Commit 30 never leaves the leader.
    pair.commit(0, 3, 30);
    pair.queue.clear();
    assert_eq!(pair.leo(0), Offset(3));
    assert_eq!(pair.hw(0), Offset(1));
    assert!(pair.commit_answers().len() == 1, "2 and 3 wait for the HW");
    // The controller moves leadership to broker 1 (broker 0 out of the ISR).
    pair.leader_and_isr(1, 1, 1, &[1]);
    pair.leader_and_isr(0, 1, 1, &[1]);
    assert_eq!(
        pair.commit_answers(),
        vec![
            (1, ErrorCode::None),
            (2, ErrorCode::NotCoordinator),
            (3, ErrorCode::NotCoordinator)
        ]
    );
    assert!(pair.events.iter().any(|e| matches!(
        e,
        Event::CoordinatorUnloaded {
            broker: BrokerId(0),
            pending_writes: 2,
            ..
        }
    )));
    assert!(!pair.brokers[&0].coordinators.offsets.hosts(&offsets_tp()));
    // The new leader replayed the two records it has: commit 20 survived although its
    // client was told NOT_COORDINATOR; commit 30 did not.
    assert_eq!(pair.loaded()[1], (BrokerId(1), LeaderEpoch(1), 2));
    assert_eq!(pair.hw(1), Offset(2), "a sole-member ISR commits at once");
    assert_eq!(pair.fetch_offset(1), (ErrorCode::None, Some(Offset(20))));
    assert_eq!(pair.fetch_offset(0), (ErrorCode::NotCoordinator, None));
    // The old leader, now a follower, truncates commit 30 away.
    pair.run(20);
    pair.expire_long_polls(1);
    pair.run(20);
    assert_eq!(pair.leo(0), Offset(2));
}

#[test]
fn a_commit_refused_for_lack_of_in_sync_replicas_fails_at_once() {
    let mut pair = Pair::new(BrokerConfig {
        min_insync_replicas: 2,
        ..BrokerConfig::default()
    });
    pair.leader_and_isr(0, 0, 0, &[0]);
    pair.commit(0, 1, 5);
    // Kafka remaps the append's NOT_ENOUGH_REPLICAS for the committer.
    assert_eq!(
        pair.commit_answers(),
        vec![(1, ErrorCode::CoordinatorNotAvailable)]
    );
    assert_eq!(pair.leo(0), Offset(0), "nothing appended");
    assert!(pair.events.iter().any(|e| matches!(
        e,
        Event::ProduceRejected {
            error: ErrorCode::NotEnoughReplicas,
            ..
        }
    )));
    assert_eq!(pair.fetch_offset(0), (ErrorCode::None, Some(Offset(-1))));
}

#[test]
fn a_commit_not_committed_within_the_commit_timeout_is_answered_request_timed_out() {
    let mut pair = replicated_pair();
    pair.commit(0, 1, 5);
    pair.queue.clear(); // the follower never gets it
    pair.now = Instant(4_999);
    pair.timeout(0, BrokerTimer::ZkTick);
    assert!(pair.commit_answers().is_empty());
    pair.now = Instant(5_000);
    pair.timeout(0, BrokerTimer::ZkTick);
    assert_eq!(pair.commit_answers(), vec![(1, ErrorCode::RequestTimedOut)]);
}

#[test]
fn a_commit_with_a_generation_is_refused_while_groups_have_no_members() {
    let mut pair = replicated_pair();
    let msg = Message::OffsetCommit {
        corr: CorrelationId(4),
        group_id: GROUP.into(),
        generation_id: 3,
        member_id: "m".into(),
        offsets: vec![OffsetCommitPartition {
            tp: TopicPartition::new("t", 0),
            committed_offset: Offset(1),
        }],
    };
    pair.deliver(CLIENT, 0, msg);
    assert_eq!(pair.commit_answers(), vec![(4, ErrorCode::UnknownMemberId)]);
    assert_eq!(pair.leo(0), Offset(0));
}

/// UpdateMetadata from controller broker 5 listing `live` brokers and `partitions`.
fn update_metadata(live: &[i32], partitions: Vec<PartitionState>) -> Message {
    Message::UpdateMetadata {
        controller: BrokerId(5),
        controller_epoch: ControllerEpoch(1),
        live_brokers: live.iter().map(|b| BrokerId(*b)).collect(),
        partitions,
        deleted_partitions: vec![],
        full: true,
    }
}

fn find_coordinator(
    b: &mut Broker,
    out: &mut Effects<BrokerTimer>,
) -> (ErrorCode, Option<BrokerId>) {
    let msg = Message::FindCoordinator {
        corr: CorrelationId(1),
        key: GROUP.into(),
        key_type: CoordinatorType::Group,
    };
    b.checked_message(Instant(0), CLIENT, msg, out);
    out.list
        .iter()
        .rev()
        .find_map(|e| match e {
            Effect::Send {
                msg:
                    Message::FindCoordinatorResponse {
                        error, coordinator, ..
                    },
                ..
            } => Some((*error, *coordinator)),
            _ => None,
        })
        .expect("a FindCoordinatorResponse")
}

fn create_topics_sent(out: &Effects<BrokerTimer>) -> Vec<NodeId> {
    out.list
        .iter()
        .filter_map(|e| match e {
            Effect::Send {
                to,
                msg:
                    Message::CreateTopics {
                        topic,
                        partitions: 50,
                        replication_factor: 3,
                    },
            } if topic == CONSUMER_OFFSETS_TOPIC => Some(*to),
            _ => None,
        })
        .collect()
}

#[test]
fn find_coordinator_asks_for_the_offsets_topic_only_once_enough_brokers_are_registered() {
    let mut out = Effects::new();
    let mut b = Broker::recover(
        BrokerId(0),
        BrokerConfig::default(),
        vec![],
        &BTreeMap::new(),
        &mut out,
    );
    // Two registered brokers, replication factor 3: not created, and the reason said once.
    b.checked_message(
        Instant(0),
        NodeId::Broker(BrokerId(5)),
        update_metadata(&[0, 1], vec![]),
        &mut out,
    );
    let mut out = Effects::new();
    assert_eq!(
        find_coordinator(&mut b, &mut out),
        (ErrorCode::CoordinatorNotAvailable, None)
    );
    assert_eq!(
        find_coordinator(&mut b, &mut out).0,
        ErrorCode::CoordinatorNotAvailable
    );
    let reasons: Vec<String> = out
        .events()
        .into_iter()
        .filter_map(|e| match e {
            Event::CoordinatorUnavailable { reason, .. } => Some(reason),
            _ => None,
        })
        .collect();
    assert_eq!(reasons.len(), 1, "{reasons:?}");
    assert!(reasons[0].starts_with(
        "Number of alive brokers '2' does not meet the required replication factor '3'"
    ));
    assert!(create_topics_sent(&out).is_empty());
    // A third broker registers: the controller is asked (every other live broker is told).
    let mut out = Effects::new();
    b.checked_message(
        Instant(0),
        NodeId::Broker(BrokerId(5)),
        update_metadata(&[0, 1, 2], vec![]),
        &mut out,
    );
    assert_eq!(
        find_coordinator(&mut b, &mut out),
        (ErrorCode::CoordinatorNotAvailable, None)
    );
    assert_eq!(
        create_topics_sent(&out),
        vec![NodeId::Broker(BrokerId(1)), NodeId::Broker(BrokerId(2))]
    );
    // Once the topic is in the metadata, the answer is the group's partition's leader.
    let mut out = Effects::new();
    let state = PartitionState {
        tp: offsets_tp(),
        leader: Some(BrokerId(2)),
        leader_epoch: LeaderEpoch(0),
        isr: vec![BrokerId(2)],
        replicas: vec![BrokerId(2)],
        partition_epoch: ZkVersion(0),
        controller_epoch: ControllerEpoch(1),
    };
    b.checked_message(
        Instant(0),
        NodeId::Broker(BrokerId(5)),
        update_metadata(&[0, 1, 2], vec![state]),
        &mut out,
    );
    assert_eq!(
        find_coordinator(&mut b, &mut out),
        (ErrorCode::None, Some(BrokerId(2)))
    );
    assert!(create_topics_sent(&out).is_empty());
}

/// Sends a TxnOffsetCommit of producer 7 at `epoch` for `t-0` at `offset` (generation -1:
/// the group has no members in this harness).
fn txn_commit(pair: &mut Pair, corr: u64, epoch: i16, offset: i64) {
    let msg = Message::TxnOffsetCommit {
        corr: CorrelationId(corr),
        transactional_id: "tx".into(),
        group_id: GROUP.into(),
        producer_id: ProducerId(7),
        producer_epoch: ProducerEpoch(epoch),
        generation_id: -1,
        member_id: String::new(),
        group_instance_id: None,
        offsets: vec![OffsetCommitPartition {
            tp: TopicPartition::new("t", 0),
            committed_offset: Offset(offset),
        }],
    };
    pair.deliver(CLIENT, 0, msg);
}

fn txn_commit_answers(pair: &Pair) -> Vec<(u64, ErrorCode)> {
    pair.inbox
        .iter()
        .filter_map(|m| match m {
            Message::TxnOffsetCommitResponse { corr, partitions } => {
                Some((corr.0, partitions[0].error))
            }
            _ => None,
        })
        .collect()
}

fn stable_fetch(pair: &mut Pair) -> (ErrorCode, Option<Offset>) {
    pair.inbox.clear();
    let msg = Message::OffsetFetch {
        corr: CorrelationId(901),
        group_id: GROUP.into(),
        partitions: vec![TopicPartition::new("t", 0)],
        require_stable: true,
    };
    pair.deliver(CLIENT, 0, msg);
    match pair.inbox.pop() {
        Some(Message::OffsetFetchResponse {
            error, partitions, ..
        }) => (
            error,
            partitions
                .first()
                .map(|p| p.committed_offset)
                .filter(|o| o.0 >= 0),
        ),
        other => panic!("no OffsetFetchResponse: {other:?}"),
    }
}

fn marker(pair: &mut Pair, corr: u64, epoch: i16, result: TransactionResult) {
    let msg = Message::WriteTxnMarkers {
        corr: CorrelationId(corr),
        markers: vec![WritableTxnMarker {
            producer_id: ProducerId(7),
            producer_epoch: ProducerEpoch(epoch),
            result,
            partitions: vec![offsets_tp()],
            coordinator_epoch: 0,
        }],
    };
    pair.deliver(NodeId::Broker(BrokerId(2)), 0, msg);
}

/// KIP-447 on the coordinator: a TxnOffsetCommit is pending (OffsetFetch with require_stable
/// answers UNSTABLE_OFFSET_COMMIT, the plain one the old offset) until the COMMIT marker lands,
/// then it is the committed offset; an ABORT marker drops the next one; a new leader rebuilds
/// a still-open transaction's pending offset from the log; an older producer epoch is fenced.
#[test]
fn transactional_offsets_stay_pending_until_the_marker() {
    let mut pair = Pair::new(BrokerConfig::default());
    pair.leader_and_isr(0, 0, 0, &[0]);
    pair.leader_and_isr(1, 0, 0, &[0]);
    pair.commit(0, 1, 5);
    assert_eq!(pair.commit_answers(), vec![(1, ErrorCode::None)]);
    txn_commit(&mut pair, 2, 0, 10);
    assert_eq!(txn_commit_answers(&pair), vec![(2, ErrorCode::None)]);
    assert_eq!(pair.fetch_offset(0), (ErrorCode::None, Some(Offset(5))));
    assert_eq!(
        stable_fetch(&mut pair),
        (ErrorCode::UnstableOffsetCommit, None)
    );
    marker(&mut pair, 3, 0, TransactionResult::Commit);
    assert_eq!(stable_fetch(&mut pair), (ErrorCode::None, Some(Offset(10))));
    // The next transaction aborts: its offset is dropped.
    txn_commit(&mut pair, 4, 0, 20);
    assert_eq!(
        stable_fetch(&mut pair),
        (ErrorCode::UnstableOffsetCommit, None)
    );
    marker(&mut pair, 5, 0, TransactionResult::Abort);
    assert_eq!(stable_fetch(&mut pair), (ErrorCode::None, Some(Offset(10))));
    // An open transaction survives a failover: broker 1 replicates and takes over.
    txn_commit(&mut pair, 6, 1, 30);
    pair.leader_and_isr(0, 0, 1, &[0, 1]);
    pair.leader_and_isr(1, 0, 1, &[0, 1]);
    pair.run(20);
    pair.expire_long_polls(0);
    pair.run(20);
    assert_eq!(pair.leo(1), pair.leo(0));
    pair.leader_and_isr(1, 1, 2, &[1]);
    pair.leader_and_isr(0, 1, 2, &[1]);
    let shard = pair.brokers[&1]
        .coordinators
        .offsets
        .latest(&offsets_tp())
        .unwrap();
    assert!(shard.has_pending(GROUP, &TopicPartition::new("t", 0)));
    assert_eq!(
        shard
            .committed(GROUP, &TopicPartition::new("t", 0))
            .unwrap()
            .offset,
        Offset(10)
    );
    // Back on broker 0 as leader: a zombie epoch is fenced.
    pair.leader_and_isr(0, 0, 3, &[0]);
    pair.leader_and_isr(1, 0, 3, &[0]);
    pair.inbox.clear();
    txn_commit(&mut pair, 7, 0, 40);
    assert_eq!(
        txn_commit_answers(&pair),
        vec![(7, ErrorCode::InvalidProducerEpoch)]
    );
}
