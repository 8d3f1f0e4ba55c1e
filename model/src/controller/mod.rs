//! The controller: the one broker that decides leaders and ISRs (ZooKeeper mode).
//!
//! # How Kafka's ZooKeeper-mode controller works, and how this one does
//! * **Election.** Every broker tries to create the ephemeral `/controller` znode; the winner
//!   increments `/controller_epoch` with a conditional write and becomes the active
//!   controller. The znode vanishes with the winner's session, and the others, watching it,
//!   try again. (The broker side of this lives in `broker/partition.rs`.)
//! * **Fencing.** Every write the controller makes is a `multi` that first checks the version
//!   of `/controller_epoch` it wrote, so a deposed controller that has not noticed yet cannot
//!   change anything (KAFKA-6082). Brokers reject requests carrying an older controller epoch.
//! * **Context.** On election the controller reads the live brokers (`/brokers/ids`, with a
//!   child watch), each topic's replica assignment (`/brokers/topics/T`) and each partition's
//!   state znode (`/brokers/topics/T/partitions/P/state`: leader, leader epoch, ISR).
//! * **Events, one at a time.** Like Kafka's `ControllerEventManager`, events are processed
//!   strictly in order and an event's writes complete before the next event starts: startup,
//!   broker membership changes, and AlterPartition requests from leaders (KIP-497).
//! * **Leader election** (`OfflinePartitionLeaderElection`): the first replica in assignment
//!   order that is alive and in the ISR; if none and `unclean.leader.election.enable`, the first
//!   live replica (an *unclean* election that can lose committed data); otherwise the
//!   partition goes offline (no leader) and keeps its ISR. A leader change bumps the leader
//!   epoch; so does a controller-driven ISR shrink after a broker failure (ZooKeeper mode).
//! * **Propagation.** After its writes, an event sends LeaderAndIsr to the replicas of every
//!   partition it changed and UpdateMetadata to every live broker.
//! * **Broker bounce (KIP-380) and ISR incarnations (KIP-903).** A broker registers with a broker
//!   epoch that identifies its process incarnation. The ISR is stored with the epoch each member
//!   joined with; a member whose registered epoch differs (it restarted, and may have lost its
//!   unflushed tail or its disk) is dropped from the ISR and cannot be cleanly elected until the
//!   leader adds it back after it caught up. A leader vouches for a new member with the epoch it
//!   saw in that member's fetches, and the controller refuses a stale one (INELIGIBLE_REPLICA).
//! * **Recovery among the last ISR (KIP-966).** When no ISR member is the incarnation that
//!   joined, the partition stays offline until every member of the last ISR and of the
//!   last-known ELR has registered again; then the one whose log is most complete (by the epoch
//!   of its last record, then log end offset, as each reported when it registered) is elected.
//!
//! # The election rule, and what of Kafka's it mirrors
//! Kafka's controller (KRaft, 4.0+; the documentation's "Eligible Leader Replicas" page and
//! `PartitionChangeBuilder`) elects, in order: a member of the ISR; else a member of the ELR that
//! is not fenced; else the last known leader if it is unfenced. A broker that registers with a
//! broker epoch other than its previous session's had an unclean shutdown and leaves every ELR
//! (KAFKA-15586); KIP-966's unclean recovery then asks the replicas of the last-known ELR for
//! their logs (`GetReplicaLogInfo`) and elects the most complete. This ZooKeeper-era controller
//! keeps the parts that decide which records survive:
//! 1. *Unfenced in its current incarnation.* A replica counts as in sync only as the incarnation
//!    (broker epoch, KIP-380/KIP-903) that joined the ISR. Every restart in ksim is a crash, so,
//!    as KAFKA-15586 would, no restarted member is elected cleanly.
//! 2. *A log report from that incarnation.* The recovery weighs each candidate by the report its
//!    registered incarnation made (`LastWrittenLeaderEpoch` and log end offset, KIP-966), never
//!    by an older incarnation's, and waits until every candidate has registered (KIP-966's
//!    "balanced" recovery waits for all of the last-known ELR).
//! 3. *No candidate discarded before a leader has taken leadership.* A registration outlives
//!    its incarnation by up to `zookeeper.session.timeout.ms` (a KRaft broker likewise stays
//!    unfenced until `broker.session.timeout.ms`), so an election or a recovery may choose a
//!    dead incarnation that never leads. The replicas it left out stay candidates
//!    (*provisional* members of the last-known ELR) until some replica's log shows that a
//!    leader of that epoch took leadership: each registration reports the highest epoch its
//!    leader-epoch checkpoint has held (a leader writes its epoch there when it takes over).
//!    From then on they count only if KIP-966 makes them *firm* members: dropped while the
//!    ISR was below `min.insync.replicas`, when the leader's high watermark cannot move
//!    without them (KIP-966's "strict min ISR", which the broker applies)
//!    ([`update_last_known_elr`], [`LastKnownElr::candidates`], [`recovery_candidates`];
//!    `kip-101-divergence-fixed` seeds 6, 71, 5032, 5160, 5468; `clean-leader-election` seed
//!    10662). The nemesis's `spare_last_replica` judges "the last copy" from the members the
//!    controller wrote.
//!
//! An unclean election (`unclean.leader.election.enable`) clears the ELR: its operator chose
//! availability over the records.
//! * **Legacy modes.** With a legacy `sim.replication.truncation`, the controller behaves as
//!   before KIP-380/KIP-903: ISR membership alone makes a replica electable.
//!
//! The scenario's topics are created by the controller if absent (standing in for an admin
//! client's CreateTopics, which in ZooKeeper mode writes the assignment znode the same way).
//!
//! # Where each part lives
//! * `mod.rs`: the controller's state (Kafka's `ControllerContext`), its event queue
//!   (`ControllerEventManager`) and the dispatch of coordination-node replies and events;
//! * [`failover`]: loading the cluster's state on election (`onControllerFailover`);
//! * [`broker_change`]: the `/brokers/ids` watch and broker failure/startup (`BrokerChange`);
//! * [`election`]: leader election and ISR reconciliation (`PartitionStateMachine`,
//!   `PartitionLeaderElectionAlgorithms`);
//! * [`last_known_elr`]: KIP-966's last-known eligible leader replicas;
//! * [`partition_state`]: the partition state znode, its fenced writes, AlterPartition (KIP-497);
//! * [`propagation`]: LeaderAndIsr and UpdateMetadata to the brokers (`ControllerChannelManager`);
//! * [`topic_admin`]: topic creation, CreatePartitions and DeleteTopics (`TopicDeletionManager`);
//! * [`replica_assignment`]: Kafka's replica assignment (`AdminUtils.assignReplicasToBrokers`).

pub mod broker_change;
pub mod election;
pub mod failover;
pub mod last_known_elr;
pub mod partition_state;
pub mod propagation;
pub mod replica_assignment;
#[cfg(test)]
mod tests;
pub mod topic_admin;

pub use last_known_elr::{recovery_candidates, update_last_known_elr, LastKnownElr};
pub use partition_state::{observe_state_write, IsrEpochs};

use crate::broker::BrokerTimer;
use crate::config::{BrokerConfig, TopicConfig, TruncationMode};
use crate::effects::Effects;
use crate::event::Event;
use crate::protocol::*;
use crate::types::*;
use partition_state::*;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use topic_admin::*;

/// A topic the controller creates if it does not exist.
#[derive(Debug, Clone, PartialEq)]
pub struct NewTopic {
    pub name: String,
    /// Replica assignment: one list of broker ids per partition, preferred leader first.
    pub assignment: Vec<Vec<BrokerId>>,
    pub config: TopicConfig,
    /// The scenario deletes this topic later (`delete-topic`): before creating it because it
    /// is absent, the controller checks the `/admin/delete_topics/T` tombstone, so that it does
    /// not bring a deleted topic back. (Only then, so that runs without topic deletion send no
    /// extra request.)
    pub deletable: bool,
}

/// A topic-administration request, carried out by the active controller (Kafka's
/// CreatePartitions and DeleteTopics, which the ZooKeeper-mode controller executes through
/// `/brokers/topics/T` and `/admin/delete_topics/T`). Every broker remembers the requests it
/// was given, so that if no controller is active when one arrives, the next one carries it out;
/// both are idempotent (a count that is not an increase, or a topic that is gone, is a no-op).
#[derive(Debug, Clone, PartialEq)]
pub enum AdminOp {
    /// Raise the topic's partition count to `assignment.len()`; `assignment` lists every
    /// partition's replicas (the existing ones are kept as they are).
    CreatePartitions {
        topic: String,
        assignment: Vec<Vec<BrokerId>>,
    },
    /// Delete the topic and its logs.
    DeleteTopic { topic: String },
    /// Create the internal topic `name` (a broker needs it: `__consumer_offsets` on the first
    /// FindCoordinator) with `partitions` partitions of `replication_factor` replicas each,
    /// assigned over the registered brokers by [`replica_assignment::assign_replicas`]. A no-op
    /// when the topic exists or fewer brokers are registered than `replication_factor` (Kafka
    /// refuses to create it then). The topic's config is the internal one
    /// ([`crate::group_coordinator::internal_topic_config`]), which every broker applies itself.
    CreateTopic {
        name: String,
        partitions: i32,
        replication_factor: i32,
    },
}

/// The controller's own timers, carried by the hosting broker as
/// [`BrokerTimer::Controller`](crate::broker::BrokerTimer::Controller).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ControllerTimer {
    /// Send the controller's state again to `broker`, a LeaderAndIsr or UpdateMetadata to
    /// which could not be sent (Kafka's `ControllerChannelManager` keeps retrying a live
    /// broker), after `CONTROLLER_RESEND_BACKOFF_MS`.
    Resend { broker: BrokerId },
}

/// Why the controller sent a coordination-node request.
#[derive(Debug, Clone, PartialEq)]
pub enum ControllerZkOp {
    BrokerIds {
        scan: u64,
    },
    BrokerData {
        scan: u64,
        id: BrokerId,
    },
    TopicData {
        topic: String,
    },
    TopicCreate {
        topic: String,
    },
    /// The unfenced creation of an internal topic's assignment znode ([`AdminOp::CreateTopic`]).
    InternalTopicCreate {
        topic: String,
        assignment: Vec<Vec<BrokerId>>,
    },
    /// Reading an internal topic's assignment: on election for a topic some broker asked to
    /// create, or after its creation found the znode already there.
    InternalTopicData {
        topic: String,
    },
    EnsurePath,
    StateRead {
        tp: TopicPartition,
    },
    /// `/brokers/topics/T` is absent: was the topic deleted (`/admin/delete_topics/T`)?
    DeletedMarker {
        topic: String,
    },
    /// The fenced write of a topic's enlarged assignment (`create-partitions`).
    AssignmentWrite {
        topic: String,
        from_count: usize,
        assignment: Vec<Vec<BrokerId>>,
    },
    /// The fenced deletion of a topic's znodes.
    TopicDelete {
        topic: String,
    },
    StateWrite {
        tp: TopicPartition,
        state: PartitionState,
        /// Broker epoch of each ISR member (KIP-903).
        epochs: IsrEpochs,
        /// The last-known eligible leader replicas written with it (KIP-966).
        elr: LastKnownElr,
    },
}

#[derive(Debug, Clone)]
enum CtlEvent {
    Startup,
    BrokersChanged(BTreeMap<BrokerId, BrokerEpoch>),
    AlterPartition {
        from: NodeId,
        corr: CorrelationId,
        broker: BrokerId,
        broker_epoch: BrokerEpoch,
        tp: TopicPartition,
        leader_epoch: LeaderEpoch,
        new_isr: Vec<BrokerId>,
        new_isr_epochs: Vec<BrokerEpoch>,
        partition_epoch: ZkVersion,
    },
    Admin(AdminOp),
}

/// What to do once the current event's writes have completed.
#[derive(Debug, Default)]
struct Pending {
    writes: usize,
    changed: BTreeSet<TopicPartition>,
    /// Partitions of topics this event deleted.
    deleted: BTreeSet<TopicPartition>,
    full_to: BTreeSet<BrokerId>,
    alter_reply: Option<(NodeId, CorrelationId, TopicPartition)>,
}

#[derive(Debug)]
struct Active {
    epoch: ControllerEpoch,
    epoch_version: ZkVersion,
    live: BTreeMap<BrokerId, BrokerEpoch>,
    assignments: BTreeMap<TopicPartition, Vec<BrokerId>>,
    /// `None`: the partition's state znode does not exist yet.
    /// The invariants check the states written since they last ran.
    states: crate::touched::TouchedMap<TopicPartition, Option<PartitionState>>,
    /// The broker epoch each ISR member joined with (KIP-903), per partition.
    isr_epochs: BTreeMap<TopicPartition, IsrEpochs>,
    /// Per partition, KIP-966's last-known ELR ([`update_last_known_elr`]): replicas outside
    /// the ISR that a recovery among the last ISR weighs too.
    elr: BTreeMap<TopicPartition, LastKnownElr>,
    /// Each broker incarnation's logs as it registered them, by partition name: (epoch of the
    /// last record, log end offset, highest epoch its leader-epoch cache has held).
    reported_logs:
        BTreeMap<(BrokerId, BrokerEpoch), BTreeMap<String, (LeaderEpoch, Offset, LeaderEpoch)>>,
    /// Topics whose deletion a previous controller committed (`/admin/delete_topics/T`), with
    /// the assignment the marker records: at startup their replicas are told again to delete
    /// them, as Kafka's `TopicDeletionManager` resumes deletions after a failover.
    deleted: BTreeMap<String, Vec<Vec<BrokerId>>>,
    loading: usize,
    loaded: bool,
    scan: u64,
    scan_pending: usize,
    /// Loading still waits for a complete scan of `/brokers/ids`.
    awaiting_initial_scan: bool,
    scan_result: BTreeMap<BrokerId, BrokerEpoch>,
    queue: VecDeque<CtlEvent>,
    pending: Option<Pending>,
}

/// The controller role of one broker; inactive unless elected.
#[derive(Debug)]
pub struct Controller {
    broker: BrokerId,
    config: BrokerConfig,
    /// The scenario's topics, shared: `on_zk_reply` holds them while it changes the rest of
    /// the controller, and a copy of 3000 partitions' assignments per reply made creating them
    /// quadratic (a fifth of the 3000-partition run's time).
    topics: std::sync::Arc<[NewTopic]>,
    active: Option<Active>,
    /// Topic-administration requests this broker was given (see [`AdminOp`]).
    admin: Vec<AdminOp>,
}

type Reqs = Vec<(ZkRequest, ControllerZkOp)>;

impl Controller {
    pub fn new(broker: BrokerId, config: BrokerConfig, topics: Vec<NewTopic>) -> Self {
        Controller {
            broker,
            config,
            topics: topics.into(),
            active: None,
            admin: Vec::new(),
        }
    }

    /// A topic-administration request arrived: remember it, and carry it out if active.
    pub fn on_admin(&mut self, op: AdminOp, reqs: &mut Reqs, out: &mut Effects<BrokerTimer>) {
        if !self.admin.contains(&op) {
            self.admin.push(op.clone());
        }
        if let Some(a) = self.active.as_mut() {
            a.queue.push_back(CtlEvent::Admin(op));
            self.process_queue(reqs, out);
        }
    }

    pub fn is_active(&self) -> bool {
        self.active.is_some()
    }

    /// The controller epoch while active.
    pub fn epoch(&self) -> Option<ControllerEpoch> {
        self.active.as_ref().map(|a| a.epoch)
    }

    /// Stop acting as controller; `reason` as in [`Event::ControllerResigned`].
    ///
    /// AlterPartition requests still queued, and the one whose state write is in flight, are
    /// answered NOT_CONTROLLER, as Kafka's controller answers the events it finds queued once
    /// it is no longer active: the leader then looks for the controller again and retries
    /// (an unanswered request would wait for its request timeout, and a controller that
    /// resigns and wins again keeps its id, so the leader would see no controller change). The
    /// write in flight may still land; the leader's retry then gets INVALID_UPDATE_VERSION
    /// and waits for the LeaderAndIsr.
    pub fn resign(&mut self, reason: &str, out: &mut Effects<BrokerTimer>) {
        if let Some(a) = self.active.take() {
            let in_write = a.pending.as_ref().and_then(|p| p.alter_reply.clone());
            let queued = a.queue.iter().filter_map(|e| match e {
                CtlEvent::AlterPartition { from, corr, tp, .. } => Some((*from, *corr, tp.clone())),
                _ => None,
            });
            for (from, corr, tp) in in_write.into_iter().chain(queued) {
                answer_not_controller(from, corr, tp, out);
            }
            out.event(Event::ControllerResigned {
                broker: self.broker,
                controller_epoch: a.epoch,
                reason: reason.into(),
            });
        }
    }

    /// Won the election with `/controller_epoch` = `epoch` at zkVersion `version`: load the
    /// cluster's state.
    pub fn on_elected(
        &mut self,
        epoch: ControllerEpoch,
        version: ZkVersion,
        reqs: &mut Reqs,
        _out: &mut Effects<BrokerTimer>,
    ) {
        let mut a = Active {
            epoch,
            epoch_version: version,
            live: BTreeMap::new(),
            assignments: BTreeMap::new(),
            states: Default::default(),
            isr_epochs: BTreeMap::new(),
            elr: BTreeMap::new(),
            reported_logs: BTreeMap::new(),
            deleted: BTreeMap::new(),
            loading: 0,
            loaded: false,
            scan: 1,
            scan_pending: 0,
            awaiting_initial_scan: true,
            scan_result: BTreeMap::new(),
            queue: VecDeque::new(),
            pending: None,
        };
        a.loading += 1;
        reqs.push((
            ZkRequest::GetChildren {
                path: "/brokers/ids".into(),
                watch: true,
            },
            ControllerZkOp::BrokerIds { scan: 1 },
        ));
        for t in self.topics.iter() {
            a.loading += 1;
            reqs.push((
                ZkRequest::GetData {
                    path: format!("/brokers/topics/{}", t.name),
                    watch: false,
                },
                ControllerZkOp::TopicData {
                    topic: t.name.clone(),
                },
            ));
        }
        // Internal topics some broker asked for may exist already: load them like the rest
        // (the startup event then creates those that do not).
        for op in &self.admin {
            if let AdminOp::CreateTopic { name, .. } = op {
                a.loading += 1;
                reqs.push((
                    ZkRequest::GetData {
                        path: format!("/brokers/topics/{name}"),
                        watch: false,
                    },
                    ControllerZkOp::InternalTopicData {
                        topic: name.clone(),
                    },
                ));
            }
        }
        self.active = Some(a);
    }

    /// A reply to one of the controller's requests.
    pub fn on_zk_reply(
        &mut self,
        _now: Instant,
        op: ControllerZkOp,
        result: Result<ZkReply, ZkError>,
        reqs: &mut Reqs,
        out: &mut Effects<BrokerTimer>,
    ) {
        let topics = std::sync::Arc::clone(&self.topics);
        let Some(a) = self.active.as_mut() else {
            return;
        };
        match op {
            ControllerZkOp::EnsurePath => {}
            ControllerZkOp::BrokerIds { scan } => {
                if scan != a.scan {
                    return;
                }
                let children = match result {
                    Ok(ZkReply::Children { children }) => children,
                    _ => vec![],
                };
                a.scan_result.clear();
                a.scan_pending = 0;
                for c in children {
                    if let Ok(id) = c.parse::<i32>() {
                        a.scan_pending += 1;
                        reqs.push((
                            ZkRequest::GetData {
                                path: format!("/brokers/ids/{id}"),
                                watch: false,
                            },
                            ControllerZkOp::BrokerData {
                                scan,
                                id: BrokerId(id),
                            },
                        ));
                    }
                }
                if a.scan_pending == 0 {
                    Self::scan_done(a);
                }
            }
            ControllerZkOp::BrokerData { scan, id } => {
                if scan != a.scan {
                    return;
                }
                if let Ok(ZkReply::Data { data, .. }) = result {
                    let v = serde_json::from_slice::<serde_json::Value>(&data).ok();
                    let epoch = v
                        .as_ref()
                        .and_then(|v| v.get("broker_epoch").and_then(|e| e.as_i64()))
                        .unwrap_or(-1);
                    a.scan_result.insert(id, BrokerEpoch(epoch));
                    let logs: BTreeMap<String, (LeaderEpoch, Offset, LeaderEpoch)> = v
                        .as_ref()
                        .and_then(|v| v.get("logs"))
                        .and_then(|l| l.as_object())
                        .map(|m| {
                            m.iter()
                                .filter_map(|(tp, x)| {
                                    let a = x.as_array()?;
                                    Some((
                                        tp.clone(),
                                        (
                                            LeaderEpoch(a.first()?.as_i64()? as i32),
                                            Offset(a.get(1)?.as_i64()?),
                                            LeaderEpoch(
                                                a.get(2).and_then(|e| e.as_i64()).unwrap_or(-1)
                                                    as i32,
                                            ),
                                        ),
                                    ))
                                })
                                .collect()
                        })
                        .unwrap_or_default();
                    a.reported_logs.insert((id, BrokerEpoch(epoch)), logs);
                }
                a.scan_pending -= 1;
                if a.scan_pending == 0 {
                    Self::scan_done(a);
                }
            }
            ControllerZkOp::TopicData { topic } => match result {
                Ok(ZkReply::Data { data, .. }) => {
                    let assignment = decode_assignment(&data).unwrap_or_default();
                    Self::load_partitions(a, &topic, &assignment, reqs);
                    a.loading -= 1;
                }
                _ if topics.iter().any(|t| t.name == topic && t.deletable) => {
                    // Absent: create it, unless it was deleted (the testbed keeps
                    // `/admin/delete_topics/T` as a tombstone, so that its stand-in for
                    // CreateTopics does not bring a deleted topic back).
                    reqs.push((
                        ZkRequest::GetData {
                            path: format!("/admin/delete_topics/{topic}"),
                            watch: false,
                        },
                        ControllerZkOp::DeletedMarker { topic },
                    ));
                }
                _ => {
                    let t = topics
                        .iter()
                        .find(|t| t.name == topic)
                        .expect("configured topic");
                    reqs.push((
                        ZkRequest::Create {
                            path: format!("/brokers/topics/{topic}"),
                            data: encode_assignment(&t.assignment),
                            ephemeral: false,
                        },
                        ControllerZkOp::TopicCreate { topic },
                    ));
                }
            },
            ControllerZkOp::DeletedMarker { topic } => match result {
                Ok(ZkReply::Data { data, .. }) => {
                    // The marker holds the assignment the deleting controller knew.
                    a.deleted
                        .insert(topic, decode_assignment(&data).unwrap_or_default());
                    a.loading -= 1;
                }
                _ => {
                    let t = topics
                        .iter()
                        .find(|t| t.name == topic)
                        .expect("configured topic");
                    reqs.push((
                        ZkRequest::Create {
                            path: format!("/brokers/topics/{topic}"),
                            data: encode_assignment(&t.assignment),
                            ephemeral: false,
                        },
                        ControllerZkOp::TopicCreate { topic },
                    ));
                }
            },
            ControllerZkOp::AssignmentWrite {
                topic,
                from_count,
                assignment,
            } => {
                self.on_assignment_written(topic, from_count, assignment, result, reqs, out);
                return;
            }
            ControllerZkOp::TopicDelete { topic } => {
                self.on_topic_deleted(topic, result, reqs, out);
                return;
            }
            ControllerZkOp::InternalTopicCreate { topic, assignment } => {
                self.on_internal_topic_created(topic, assignment, result, reqs, out);
                return;
            }
            ControllerZkOp::InternalTopicData { topic } => {
                if let Ok(ZkReply::Data { data, .. }) = result {
                    if !a.assignments.keys().any(|tp| tp.topic == topic) {
                        let assignment = decode_assignment(&data).unwrap_or_default();
                        Self::load_partitions(a, &topic, &assignment, reqs);
                    }
                }
                a.loading -= 1;
            }
            ControllerZkOp::TopicCreate { topic } => {
                let t = topics
                    .iter()
                    .find(|t| t.name == topic)
                    .expect("configured topic");
                let assignment = t.assignment.clone();
                reqs.push((
                    ZkRequest::Create {
                        path: format!("/brokers/topics/{topic}/partitions"),
                        data: vec![],
                        ephemeral: false,
                    },
                    ControllerZkOp::EnsurePath,
                ));
                Self::load_partitions(a, &topic, &assignment, reqs);
                a.loading -= 1;
            }
            ControllerZkOp::StateRead { tp } => {
                let replicas = a.assignments.get(&tp).cloned().unwrap_or_default();
                let state = match result {
                    Ok(ZkReply::Data { data, version }) => {
                        a.isr_epochs.insert(tp.clone(), decode_epochs(&data));
                        a.elr.insert(tp.clone(), decode_elr(&data));
                        decode_state(&tp, &replicas, &data, version)
                    }
                    _ => None,
                };
                a.states.insert(tp, state);
                a.loading -= 1;
            }
            ControllerZkOp::StateWrite {
                tp,
                state,
                epochs,
                elr,
            } => {
                self.on_state_written(tp, state, epochs, elr, result, reqs, out);
                return;
            }
        }
        let Some(a) = self.active.as_mut() else {
            return;
        };
        if !a.loaded && a.loading == 0 {
            a.loaded = true;
            a.queue.push_front(CtlEvent::Startup);
        }
        self.process_queue(reqs, out);
    }

    /// A leader asks to change its ISR (KIP-497).
    #[allow(clippy::too_many_arguments)]
    pub fn on_alter_partition(
        &mut self,
        from: NodeId,
        corr: CorrelationId,
        broker: BrokerId,
        broker_epoch: BrokerEpoch,
        tp: TopicPartition,
        leader_epoch: LeaderEpoch,
        new_isr: Vec<BrokerId>,
        new_isr_epochs: Vec<BrokerEpoch>,
        partition_epoch: ZkVersion,
        reqs: &mut Reqs,
        out: &mut Effects<BrokerTimer>,
    ) {
        let Some(a) = self.active.as_mut() else {
            answer_not_controller(from, corr, tp, out);
            return;
        };
        a.queue.push_back(CtlEvent::AlterPartition {
            from,
            corr,
            broker,
            broker_epoch,
            tp,
            leader_epoch,
            new_isr,
            new_isr_epochs,
            partition_epoch,
        });
        self.process_queue(reqs, out);
    }

    fn process_queue(&mut self, reqs: &mut Reqs, out: &mut Effects<BrokerTimer>) {
        loop {
            let Some(a) = self.active.as_mut() else {
                return;
            };
            if !a.loaded || a.pending.is_some() {
                return;
            }
            let Some(event) = a.queue.pop_front() else {
                return;
            };
            a.pending = Some(Pending::default());
            self.handle_event(event, reqs, out);
            self.maybe_finish_event(reqs, out);
        }
    }

    fn handle_event(&mut self, event: CtlEvent, reqs: &mut Reqs, out: &mut Effects<BrokerTimer>) {
        match event {
            CtlEvent::Startup => self.on_startup(reqs, out),
            CtlEvent::Admin(op) => self.handle_admin(op, reqs),
            CtlEvent::BrokersChanged(new_live) => self.on_brokers_changed(new_live, reqs),
            CtlEvent::AlterPartition {
                from,
                corr,
                broker,
                broker_epoch,
                tp,
                leader_epoch,
                new_isr,
                new_isr_epochs,
                partition_epoch,
            } => {
                self.handle_alter_partition(
                    from,
                    corr,
                    broker,
                    broker_epoch,
                    tp,
                    leader_epoch,
                    new_isr,
                    new_isr_epochs,
                    partition_epoch,
                    reqs,
                    out,
                );
            }
        }
    }

    /// The active controller's invariants: every partition state it holds has a non-empty
    /// ISR that contains its leader (checked for the states written since the last check). Nothing for an inactive controller. The hosting broker
    /// runs them after every handler.
    pub(crate) fn invariants(&self) {
        let Some(a) = &self.active else { return };
        a.states.check_touched(|tp, s| {
            if let Some(s) = s {
                if let Some(l) = s.leader {
                    assert!(
                        s.isr.contains(&l),
                        "controller state for {tp}: leader {l} not in ISR {:?}",
                        s.isr
                    );
                }
                assert!(!s.isr.is_empty(), "controller state for {tp}: empty ISR");
            }
        });
    }
}
