//! The transaction coordinator hosted by brokers, driven message by message: brokers 0 and 1
//! replicate the id's `__transaction_state` partition (0 leads), broker 2 leads the data
//! partitions `t-0` and `t-1` (its WriteTxnMarkers are collected, not delivered). A state
//! change is answered once the follower's fetch commits it; PrepareCommit is followed by
//! markers and CompleteCommit; a new coordinator re-sends the markers of a transaction it finds
//! in PrepareCommit; a timed-out transaction is aborted with an epoch bump; a late EndTxn is
//! fenced under transaction version 2; FindCoordinator creates `__transaction_state`.

use super::*;
use crate::transaction_coordinator::{partition_for, TRANSACTION_STATE_TOPIC};

const ID: &str = "my-txn";
const CLIENT: NodeId = NodeId::Producer(0);

fn txn_tp() -> TopicPartition {
    partition_for(ID, 50)
}

fn t(p: i32) -> TopicPartition {
    TopicPartition::new("t", p)
}

struct Cluster {
    brokers: BTreeMap<i32, Broker>,
    queue: VecDeque<(NodeId, i32, Message)>,
    inbox: Vec<Message>,
    /// WriteTxnMarkers sent to broker 2, with the sender.
    markers: Vec<(i32, Message)>,
    events: Vec<Event>,
    now: Instant,
}

impl Cluster {
    fn new(config: BrokerConfig) -> Cluster {
        let brokers = (0..2)
            .map(|id| {
                let mut b = Broker::recover(
                    BrokerId(id),
                    config.clone(),
                    vec![],
                    &BTreeMap::new(),
                    &mut Effects::new(),
                );
                b.broker_epoch = BrokerEpoch(10 + id as i64);
                (id, b)
            })
            .collect();
        let mut c = Cluster {
            brokers,
            queue: VecDeque::new(),
            inbox: Vec::new(),
            markers: Vec::new(),
            events: Vec::new(),
            now: Instant(0),
        };
        // Both brokers learn that broker 2 leads t-0 and t-1.
        for id in 0..2 {
            let partitions = (0..2)
                .map(|p| PartitionState {
                    tp: t(p),
                    leader: Some(BrokerId(2)),
                    leader_epoch: LeaderEpoch(0),
                    isr: vec![BrokerId(2)],
                    replicas: vec![BrokerId(2)],
                    partition_epoch: ZkVersion(0),
                    controller_epoch: ControllerEpoch(1),
                })
                .collect();
            let msg = Message::UpdateMetadata {
                controller: BrokerId(3),
                controller_epoch: ControllerEpoch(1),
                live_brokers: vec![BrokerId(0), BrokerId(1), BrokerId(2)],
                partitions,
                deleted_partitions: vec![],
                full: true,
            };
            c.deliver(NodeId::Broker(BrokerId(3)), id, msg);
        }
        c
    }

    /// Broker 0 leads the id's partition, broker 1 follows, both in the ISR.
    fn replicated(config: BrokerConfig) -> Cluster {
        let min_isr = config.transaction_state_log_min_isr;
        let mut c = Cluster::new(config);
        c.leader_and_isr(0, 0, 0, &[0, 1]);
        c.leader_and_isr(1, 0, 0, &[0, 1]);
        c.run(10);
        assert!(c.brokers[&0].coordinators.txn.runtime.hosts(&txn_tp()));
        assert!(!c.brokers[&1].coordinators.txn.runtime.hosts(&txn_tp()));
        let config = &c.brokers[&0].topic_configs[TRANSACTION_STATE_TOPIC];
        assert_eq!(config.cleanup_policy.map(|p| p.compact), Some(true));
        assert_eq!(config.min_insync_replicas, Some(min_isr));
        c
    }

    fn leader_and_isr(&mut self, to: i32, leader: i32, epoch: i32, isr: &[i32]) {
        let msg = Message::LeaderAndIsr {
            controller: BrokerId(3),
            controller_epoch: ControllerEpoch(1),
            broker_epoch: BrokerEpoch(10 + to as i64),
            partitions: vec![PartitionState {
                tp: txn_tp(),
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

    fn collect(&mut self, id: i32, out: Effects<BrokerTimer>) {
        self.events.extend(out.events());
        for e in out.list {
            match e {
                Effect::Send {
                    to: NodeId::Broker(BrokerId(2)),
                    msg: m @ Message::WriteTxnMarkers { .. },
                } => self.markers.push((id, m)),
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

    fn run(&mut self, budget: usize) {
        for _ in 0..budget {
            let Some((from, to, msg)) = self.queue.pop_front() else {
                return;
            };
            self.deliver(from, to, msg);
        }
    }

    fn send(&mut self, to: i32, msg: Message) {
        self.deliver(CLIENT, to, msg);
    }

    /// The last message the client got.
    fn answer(&mut self) -> Message {
        self.inbox.pop().expect("an answer")
    }

    fn init(&mut self, to: i32, corr: u64) {
        self.send(
            to,
            Message::InitProducerId {
                corr: CorrelationId(corr),
                transactional_id: Some(ID.into()),
                transaction_timeout_ms: 60_000,
                producer_id: ProducerId::NONE,
                producer_epoch: ProducerEpoch(-1),
            },
        );
    }

    fn add(&mut self, to: i32, pid: ProducerId, epoch: i16, partitions: Vec<TopicPartition>) {
        self.send(
            to,
            Message::AddPartitionsToTxn {
                corr: CorrelationId(20),
                transactional_id: ID.into(),
                producer_id: pid,
                producer_epoch: ProducerEpoch(epoch),
                partitions,
                verify_only: false,
            },
        );
    }

    fn end(&mut self, to: i32, pid: ProducerId, epoch: i16, committed: bool) {
        self.send(
            to,
            Message::EndTxn {
                corr: CorrelationId(30),
                transactional_id: ID.into(),
                producer_id: pid,
                producer_epoch: ProducerEpoch(epoch),
                committed,
            },
        );
    }

    /// Broker 2 answers the oldest unanswered WriteTxnMarkers with `error` per partition.
    fn answer_markers(&mut self, error: ErrorCode) {
        let (from, msg) = self.markers.remove(0);
        let Message::WriteTxnMarkers { corr, markers } = msg else {
            unreachable!()
        };
        let markers = markers
            .into_iter()
            .map(|m| WritableTxnMarkerResult {
                producer_id: m.producer_id,
                partitions: m.partitions.into_iter().map(|tp| (tp, error)).collect(),
            })
            .collect();
        self.deliver(
            NodeId::Broker(BrokerId(2)),
            from,
            Message::WriteTxnMarkersResponse { corr, markers },
        );
    }

    /// (from, to, reason, epoch) of every `txn-state-changed` so far.
    fn transitions(&self) -> Vec<(String, String, String, i16)> {
        self.events
            .iter()
            .filter_map(|e| match e {
                Event::TxnStateChanged {
                    from,
                    to,
                    reason,
                    producer_epoch,
                    ..
                } => Some((from.clone(), to.clone(), reason.clone(), producer_epoch.0)),
                _ => None,
            })
            .collect()
    }

    fn state(&self, id: i32) -> Option<(TxnState, i16)> {
        let (m, _) = self.brokers[&id].coordinators.txn.lookup(ID).ok()?;
        m.map(|m| (m.state, m.producer_epoch.0))
    }
}

use crate::transaction_coordinator::TxnState;

fn tr(from: &str, to: &str, reason: &str, epoch: i16) -> (String, String, String, i16) {
    (from.into(), to.into(), reason.into(), epoch)
}

/// InitProducerId on broker 0 answered once committed: (producer id, epoch).
fn initialised(c: &mut Cluster) -> ProducerId {
    c.init(0, 1);
    assert!(
        c.inbox.is_empty(),
        "not answered before the HW passes the record"
    );
    c.run(10);
    match c.answer() {
        Message::InitProducerIdResponse {
            error: ErrorCode::None,
            producer_id,
            producer_epoch: ProducerEpoch(0),
            ..
        } => {
            assert_eq!(producer_id, ProducerId(10_000_001), "from broker 0's epoch");
            producer_id
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_committed_transaction_is_answered_after_each_commit_and_completed_by_its_markers() {
    let mut c = Cluster::replicated(BrokerConfig::default());
    let pid = initialised(&mut c);
    // A non-coordinator answers NOT_COORDINATOR.
    c.init(1, 2);
    assert!(matches!(
        c.answer(),
        Message::InitProducerIdResponse {
            error: ErrorCode::NotCoordinator,
            ..
        }
    ));
    c.add(0, pid, 0, vec![t(0), t(1)]);
    assert!(c.inbox.is_empty());
    c.run(10);
    assert_eq!(
        c.answer(),
        Message::AddPartitionsToTxnResponse {
            corr: CorrelationId(20),
            results: vec![(t(0), ErrorCode::None), (t(1), ErrorCode::None)]
        }
    );
    // KIP-890 verification from the partition leader: t-0 is in, t-2 is not.
    c.send(
        0,
        Message::AddPartitionsToTxn {
            corr: CorrelationId(21),
            transactional_id: ID.into(),
            producer_id: pid,
            producer_epoch: ProducerEpoch(0),
            partitions: vec![t(0), t(2)],
            verify_only: true,
        },
    );
    assert_eq!(
        c.answer(),
        Message::AddPartitionsToTxnResponse {
            corr: CorrelationId(21),
            results: vec![
                (t(0), ErrorCode::None),
                (t(2), ErrorCode::TransactionAbortable)
            ]
        }
    );
    // AddOffsetsToTxn adds the group's __consumer_offsets partition.
    c.send(
        0,
        Message::AddOffsetsToTxn {
            corr: CorrelationId(22),
            transactional_id: ID.into(),
            producer_id: pid,
            producer_epoch: ProducerEpoch(0),
            group_id: "my-group".into(),
        },
    );
    c.run(10);
    assert_eq!(
        c.answer(),
        Message::AddOffsetsToTxnResponse {
            corr: CorrelationId(22),
            error: ErrorCode::None
        }
    );
    c.end(0, pid, 0, true);
    assert!(
        c.markers.is_empty(),
        "no marker before PrepareCommit is committed"
    );
    c.run(10);
    assert_eq!(
        c.answer(),
        Message::EndTxnResponse {
            corr: CorrelationId(30),
            error: ErrorCode::None,
            producer_id: pid,
            producer_epoch: ProducerEpoch(1),
        },
        "transaction version 2 returns the bumped epoch"
    );
    // One WriteTxnMarkers to broker 2 for t-0 and t-1 (the offsets partition's leader is not
    // known to the metadata cache: it waits).
    assert_eq!(c.markers.len(), 1);
    let Message::WriteTxnMarkers { markers, .. } = &c.markers[0].1 else {
        unreachable!()
    };
    assert_eq!(markers.len(), 1);
    assert_eq!(
        (
            markers[0].producer_id,
            markers[0].producer_epoch,
            markers[0].result,
            markers[0].coordinator_epoch
        ),
        (pid, ProducerEpoch(1), TransactionResult::Commit, 0)
    );
    assert_eq!(markers[0].partitions, vec![t(0), t(1)]);
    assert_eq!(c.state(0), Some((TxnState::PrepareCommit, 1)));
    // Without the offsets partition's marker the transaction cannot complete: learn its
    // leader (broker 2) and tick.
    let offsets_tp = crate::group_coordinator::partition_for("my-group", 50);
    let msg = Message::UpdateMetadata {
        controller: BrokerId(3),
        controller_epoch: ControllerEpoch(1),
        live_brokers: vec![BrokerId(0), BrokerId(1), BrokerId(2)],
        partitions: vec![PartitionState {
            tp: offsets_tp.clone(),
            leader: Some(BrokerId(2)),
            leader_epoch: LeaderEpoch(0),
            isr: vec![BrokerId(2)],
            replicas: vec![BrokerId(2)],
            partition_epoch: ZkVersion(0),
            controller_epoch: ControllerEpoch(1),
        }],
        deleted_partitions: vec![],
        full: true,
    };
    c.deliver(NodeId::Broker(BrokerId(3)), 0, msg);
    c.answer_markers(ErrorCode::None);
    assert_eq!(c.state(0), Some((TxnState::PrepareCommit, 1)));
    c.timeout(0, BrokerTimer::ZkTick);
    assert_eq!(c.markers.len(), 1);
    c.answer_markers(ErrorCode::None);
    c.run(10);
    assert_eq!(c.state(0), Some((TxnState::CompleteCommit, 1)));
    assert_eq!(
        c.transitions(),
        vec![
            tr("Empty", "Empty", "init-producer-id", 0),
            tr("Empty", "Ongoing", "add-partitions", 0),
            tr("Ongoing", "Ongoing", "add-offsets", 0),
            tr("Ongoing", "PrepareCommit", "end-txn", 1),
            tr("PrepareCommit", "CompleteCommit", "markers-written", 1),
        ]
    );
}

#[test]
fn markers_are_retried_until_every_partition_answered_none() {
    let mut c = Cluster::replicated(BrokerConfig::default());
    let pid = initialised(&mut c);
    c.add(0, pid, 0, vec![t(0)]);
    c.run(10);
    c.end(0, pid, 0, false);
    c.run(10);
    assert_eq!(c.markers.len(), 1);
    c.answer_markers(ErrorCode::NotLeaderOrFollower);
    assert!(
        c.markers.is_empty(),
        "retried on the next tick, not at once"
    );
    c.timeout(0, BrokerTimer::ZkTick);
    assert_eq!(c.markers.len(), 1);
    c.answer_markers(ErrorCode::None);
    c.run(10);
    assert_eq!(c.state(0), Some((TxnState::CompleteAbort, 1)));
}

/// B4.6: the coordinator fails after PrepareCommit is committed and before the markers are
/// answered. The new leader of `__transaction_state` replays PrepareCommit, sends the markers
/// again under its own coordinator epoch, and completes the transaction; the old coordinator
/// answers NOT_COORDINATOR and ignores the late answer to its markers.
#[test]
fn a_new_coordinator_resends_the_markers_of_a_transaction_in_prepare_commit() {
    let config = BrokerConfig {
        transaction_state_log_min_isr: 1,
        ..BrokerConfig::default()
    };
    let mut c = Cluster::replicated(config);
    let pid = initialised(&mut c);
    c.add(0, pid, 0, vec![t(0)]);
    c.run(10);
    c.end(0, pid, 0, true);
    c.run(10);
    assert!(matches!(
        c.answer(),
        Message::EndTxnResponse {
            error: ErrorCode::None,
            ..
        }
    ));
    assert_eq!(c.markers.len(), 1, "broker 0's markers, never answered");
    // Leadership moves to broker 1.
    c.leader_and_isr(1, 1, 1, &[1]);
    c.leader_and_isr(0, 1, 1, &[1]);
    assert!(!c.brokers[&0].coordinators.txn.runtime.hosts(&txn_tp()));
    assert!(c
        .transitions()
        .contains(&tr("Dead", "PrepareCommit", "loaded", 1)));
    assert_eq!(c.markers.len(), 2, "broker 1 sent the markers again");
    let Message::WriteTxnMarkers { markers, .. } = &c.markers[1].1 else {
        unreachable!()
    };
    assert_eq!(c.markers[1].0, 1);
    assert_eq!(
        (markers[0].producer_epoch, markers[0].coordinator_epoch),
        (ProducerEpoch(1), 1),
        "the new coordinator epoch"
    );
    // The old coordinator: its late answer is ignored; it refuses requests.
    c.answer_markers(ErrorCode::None);
    assert_eq!(c.state(0), None);
    c.end(0, pid, 1, true);
    assert!(matches!(
        c.answer(),
        Message::EndTxnResponse {
            error: ErrorCode::NotCoordinator,
            ..
        }
    ));
    // A retry of EndTxn at the new coordinator waits for the markers.
    c.end(1, pid, 0, true);
    assert!(matches!(
        c.answer(),
        Message::EndTxnResponse {
            error: ErrorCode::ConcurrentTransactions,
            ..
        }
    ));
    c.answer_markers(ErrorCode::None);
    assert_eq!(c.state(1), Some((TxnState::CompleteCommit, 1)));
    // Now the retry is answered as one (transaction version 2: the previous epoch).
    c.end(1, pid, 0, true);
    assert_eq!(
        c.answer(),
        Message::EndTxnResponse {
            corr: CorrelationId(30),
            error: ErrorCode::None,
            producer_id: pid,
            producer_epoch: ProducerEpoch(1)
        }
    );
}

#[test]
fn a_transaction_open_past_its_timeout_is_aborted_with_an_epoch_bump() {
    let mut c = Cluster::replicated(BrokerConfig::default());
    let pid = initialised(&mut c);
    c.add(0, pid, 0, vec![t(0)]);
    c.run(10);
    // 60 s timeout: at 30 s the check finds nothing.
    c.now = Instant(30_000);
    c.timeout(0, BrokerTimer::ZkTick);
    c.run(10);
    assert_eq!(c.state(0), Some((TxnState::Ongoing, 0)));
    c.now = Instant(60_200);
    c.timeout(0, BrokerTimer::ZkTick);
    c.run(10);
    assert_eq!(c.state(0), Some((TxnState::PrepareAbort, 1)));
    assert!(c
        .transitions()
        .contains(&tr("Ongoing", "PrepareAbort", "timeout", 1)));
    let Message::WriteTxnMarkers { markers, .. } = &c.markers[0].1 else {
        unreachable!()
    };
    assert_eq!(
        (markers[0].result, markers[0].producer_epoch),
        (TransactionResult::Abort, ProducerEpoch(1))
    );
    c.answer_markers(ErrorCode::None);
    c.run(10);
    assert_eq!(c.state(0), Some((TxnState::CompleteAbort, 1)));
    // The zombie's next request at epoch 0 is fenced.
    c.add(0, pid, 0, vec![t(1)]);
    assert!(matches!(
        c.answer(),
        Message::AddPartitionsToTxnResponse { results, .. }
            if results == vec![(t(1), ErrorCode::ProducerFenced)]
    ));
}

#[test]
fn init_producer_id_fences_an_ongoing_transaction_then_bumps_again() {
    let mut c = Cluster::replicated(BrokerConfig::default());
    let pid = initialised(&mut c);
    c.add(0, pid, 0, vec![t(0)]);
    c.run(10);
    // A second instance starts: the open transaction is aborted at epoch 1.
    c.init(0, 3);
    c.run(10);
    assert!(matches!(
        c.answer(),
        Message::InitProducerIdResponse {
            error: ErrorCode::ConcurrentTransactions,
            ..
        }
    ));
    assert_eq!(c.state(0), Some((TxnState::PrepareAbort, 1)));
    c.init(0, 4);
    assert!(matches!(
        c.answer(),
        Message::InitProducerIdResponse {
            error: ErrorCode::ConcurrentTransactions,
            ..
        }
    ));
    c.answer_markers(ErrorCode::None);
    c.run(10);
    c.init(0, 5);
    c.run(10);
    assert_eq!(
        c.answer(),
        Message::InitProducerIdResponse {
            corr: CorrelationId(5),
            error: ErrorCode::None,
            producer_id: pid,
            producer_epoch: ProducerEpoch(2)
        }
    );
    // The zombie (epoch 0) cannot end its transaction.
    c.end(0, pid, 0, true);
    assert!(matches!(
        c.answer(),
        Message::EndTxnResponse {
            error: ErrorCode::ProducerFenced,
            ..
        }
    ));
}

/// B4.3, KAFKA-17754 at the broker: T1's abort completes; T2 adds t-0 at the returned epoch;
/// T1's delayed ABORT (epoch 0) arrives. Version 2 fences it; version 1 aborts T2.
#[test]
fn a_late_end_txn_is_fenced_under_transaction_version_2_only() {
    for version in [2, 1] {
        let config = BrokerConfig {
            transaction_version: version,
            ..BrokerConfig::default()
        };
        let mut c = Cluster::replicated(config);
        let pid = initialised(&mut c);
        c.add(0, pid, 0, vec![t(0)]);
        c.run(10);
        c.end(0, pid, 0, false);
        c.run(10);
        let Message::EndTxnResponse { producer_epoch, .. } = c.answer() else {
            panic!()
        };
        c.answer_markers(ErrorCode::None);
        c.run(10);
        c.add(0, pid, producer_epoch.0, vec![t(0)]);
        c.run(10);
        c.inbox.clear();
        assert_eq!(c.state(0), Some((TxnState::Ongoing, producer_epoch.0)));
        c.end(0, pid, 0, false);
        c.run(10);
        let Message::EndTxnResponse { error, .. } = c.answer() else {
            panic!()
        };
        if version == 2 {
            assert_eq!(error, ErrorCode::ProducerFenced);
            assert_eq!(c.state(0), Some((TxnState::Ongoing, 1)), "T2 goes on");
        } else {
            assert_eq!(error, ErrorCode::None);
            assert_eq!(c.state(0), Some((TxnState::PrepareAbort, 0)), "T2 torn");
        }
    }
}

#[test]
fn find_coordinator_for_a_transactional_id_creates_the_transaction_state_topic() {
    let mut out = Effects::new();
    let mut b = Broker::recover(
        BrokerId(0),
        BrokerConfig::default(),
        vec![],
        &BTreeMap::new(),
        &mut out,
    );
    let find = |b: &mut Broker, out: &mut Effects<BrokerTimer>| {
        let msg = Message::FindCoordinator {
            corr: CorrelationId(1),
            key: ID.into(),
            key_type: CoordinatorType::Transaction,
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
            .expect("an answer")
    };
    let update = |live: &[i32], partitions: Vec<PartitionState>| Message::UpdateMetadata {
        controller: BrokerId(5),
        controller_epoch: ControllerEpoch(1),
        live_brokers: live.iter().map(|b| BrokerId(*b)).collect(),
        partitions,
        deleted_partitions: vec![],
        full: true,
    };
    b.checked_message(
        Instant(0),
        NodeId::Broker(BrokerId(5)),
        update(&[0, 1], vec![]),
        &mut out,
    );
    let mut out = Effects::new();
    assert_eq!(
        find(&mut b, &mut out),
        (ErrorCode::CoordinatorNotAvailable, None)
    );
    assert!(out.events().iter().any(|e| matches!(
        e,
        Event::CoordinatorUnavailable { reason, .. }
            if reason.contains("'transaction.state.log.replication.factor'")
    )));
    let mut out = Effects::new();
    b.checked_message(
        Instant(0),
        NodeId::Broker(BrokerId(5)),
        update(&[0, 1, 2], vec![]),
        &mut out,
    );
    assert_eq!(
        find(&mut b, &mut out),
        (ErrorCode::CoordinatorNotAvailable, None)
    );
    let asked: Vec<NodeId> = out
        .list
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
            } if topic == TRANSACTION_STATE_TOPIC => Some(*to),
            _ => None,
        })
        .collect();
    assert_eq!(
        asked,
        vec![NodeId::Broker(BrokerId(1)), NodeId::Broker(BrokerId(2))]
    );
    let state = PartitionState {
        tp: txn_tp(),
        leader: Some(BrokerId(2)),
        leader_epoch: LeaderEpoch(0),
        isr: vec![BrokerId(2)],
        replicas: vec![BrokerId(2)],
        partition_epoch: ZkVersion(0),
        controller_epoch: ControllerEpoch(1),
    };
    let mut out = Effects::new();
    b.checked_message(
        Instant(0),
        NodeId::Broker(BrokerId(5)),
        update(&[0, 1, 2], vec![state]),
        &mut out,
    );
    assert_eq!(find(&mut b, &mut out), (ErrorCode::None, Some(BrokerId(2))));
}

/// A state write the leader refuses (ISR below `transaction.state.log.min.isr`) is answered
/// COORDINATOR_NOT_AVAILABLE and changes nothing; a write still waiting for the high watermark
/// when leadership moves is answered NOT_COORDINATOR.
#[test]
fn refused_and_abandoned_state_writes_are_answered_with_the_mapped_errors() {
    let mut c = Cluster::new(BrokerConfig::default());
    c.leader_and_isr(0, 0, 0, &[0]);
    c.init(0, 1);
    assert!(matches!(
        c.answer(),
        Message::InitProducerIdResponse {
            error: ErrorCode::CoordinatorNotAvailable,
            ..
        }
    ));
    assert_eq!(c.state(0), None, "nothing written");
    // With both replicas in the ISR the write is appended but its commit needs the follower.
    let mut c = Cluster::replicated(BrokerConfig::default());
    c.init(0, 1);
    c.queue.clear(); // the follower's fetch is lost
    assert!(c.inbox.is_empty());
    assert_eq!(c.state(0), Some((TxnState::Empty, 0)));
    // Meanwhile other requests for the id wait for it (Kafka's pending state).
    c.init(0, 2);
    assert!(matches!(
        c.answer(),
        Message::InitProducerIdResponse {
            corr: CorrelationId(2),
            error: ErrorCode::ConcurrentTransactions,
            ..
        }
    ));
    c.leader_and_isr(0, 1, 1, &[1]);
    assert!(matches!(
        c.answer(),
        Message::InitProducerIdResponse {
            corr: CorrelationId(1),
            error: ErrorCode::NotCoordinator,
            ..
        }
    ));
    assert!(c.events.iter().any(|e| matches!(
        e,
        Event::CoordinatorUnloaded {
            broker: BrokerId(0),
            pending_writes: 1,
            ..
        }
    )));
}

/// Regression (`eos-pipeline-under-faults` seed 8200259): a new coordinator loads a
/// transaction in Prepare* whose record is above its high watermark (its ISR is below
/// `transaction.state.log.min.isr`, so the HW cannot pass it). The markers are written at once,
/// but Complete* must wait for that record: it is written on a later tick, once the ISR has
/// grown back and the HW passed the record. It used to be dropped, leaving the transaction in
/// Prepare* for good (every InitProducerId answered CONCURRENT_TRANSACTIONS).
#[test]
fn complete_waits_for_a_loaded_prepare_above_the_high_watermark_then_is_written() {
    let mut c = Cluster::replicated(BrokerConfig::default());
    let pid = initialised(&mut c);
    c.add(0, pid, 0, vec![t(0)]);
    c.run(10);
    c.end(0, pid, 0, false);
    // Broker 1 gets the PrepareAbort record but not yet the HW that covers it.
    c.run(1);
    let follower = &c.brokers[&1].partitions[&txn_tp()];
    assert!(
        follower.high_watermark < follower.log.log_end_offset(),
        "HW {} LEO {}",
        follower.high_watermark,
        follower.log.log_end_offset()
    );
    c.queue.clear();
    // Broker 1 leads alone: below min ISR 2 its HW stays where it is.
    c.leader_and_isr(1, 1, 1, &[1]);
    assert!(c
        .transitions()
        .contains(&tr("Dead", "PrepareAbort", "loaded", 1)));
    let resent = c.markers.iter().filter(|(from, _)| *from == 1).count();
    assert_eq!(resent, 1, "the new coordinator sends the markers");
    while c.markers.first().is_some_and(|(from, _)| *from != 1) {
        c.markers.remove(0);
    }
    c.answer_markers(ErrorCode::None);
    c.now = Instant(1_000);
    c.timeout(1, BrokerTimer::ZkTick);
    c.run(10);
    assert_eq!(c.state(1), Some((TxnState::PrepareAbort, 1)), "not yet");
    // Broker 0 rejoins as a follower and catches up; broker 1 asks to add it to the ISR and
    // the controller agrees (same leader epoch: nothing is loaded again, no marker resent).
    c.leader_and_isr(0, 1, 1, &[1]);
    c.run(20);
    let pending = match &c.brokers[&1].partitions[&txn_tp()].role {
        super::super::partition::Role::Leader(l) => l.pending_isr.clone(),
        _ => None,
    };
    let (corr, isr) = pending.expect("broker 1 asked to add broker 0");
    assert_eq!(isr, vec![BrokerId(1), BrokerId(0)]);
    let state = PartitionState {
        tp: txn_tp(),
        leader: Some(BrokerId(1)),
        leader_epoch: LeaderEpoch(1),
        isr,
        replicas: vec![BrokerId(0), BrokerId(1)],
        partition_epoch: ZkVersion(2),
        controller_epoch: ControllerEpoch(1),
    };
    c.deliver(
        NodeId::Broker(BrokerId(3)),
        1,
        Message::AlterPartitionResponse {
            corr,
            tp: txn_tp(),
            error: ErrorCode::None,
            state: Some(state),
        },
    );
    for tick in 0..10 {
        c.run(20);
        c.now = Instant(2_000 + 200 * tick);
        c.timeout(1, BrokerTimer::ZkTick);
    }
    c.run(20);
    assert!(
        c.markers.iter().all(|(from, _)| *from != 1),
        "no marker resent"
    );
    let leader = &c.brokers[&1].partitions[&txn_tp()];
    assert_eq!(
        leader.high_watermark,
        leader.log.log_end_offset(),
        "the HW passed the loaded record and the Complete* after it"
    );
    assert_eq!(c.state(1), Some((TxnState::CompleteAbort, 1)));
    assert!(c
        .transitions()
        .contains(&tr("PrepareAbort", "CompleteAbort", "markers-written", 1)));
}
