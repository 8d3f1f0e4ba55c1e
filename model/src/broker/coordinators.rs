//! Hosting the coordinators (Kafka's `CoordinatorRuntime` glue in the broker,
//! `KafkaApis.handleFindCoordinatorRequest` / `handleOffsetCommitRequest` /
//! `handleOffsetFetchRequest`): the replica manager's hooks that load a partition of an
//! internal topic on becoming its leader, unload it on losing it, and pass it every high
//! watermark advance; and the group APIs, whose writes go through the leader's append path
//! ([`Broker::append_to_leader`], `acks=all`) and are answered once committed.
//!
//! Two coordinators are hosted: the group coordinator ([`crate::group_coordinator`]) on
//! `__consumer_offsets` and the transaction coordinator ([`crate::transaction_coordinator`],
//! its APIs in `txn_coordinator.rs`) on `__transaction_state`. The runtimes never touch a log:
//! the broker reads the log for them, appends their batches, and answers what they hand back.

use super::partition::Role;
use super::{Broker, BrokerTimer};
use crate::config::BrokerConfig;
use crate::controller::AdminOp;
use crate::effects::Effects;
use crate::event::Event;
use crate::group_coordinator::{
    commit_error_for_append_error, internal_topic_config, is_internal_topic, partition_for,
    CoordinatorRecord, GroupConfig, GroupManager, GroupOut, GroupTimer, JoinRequest, OffsetRecord,
    OffsetsRuntime, PendingCommit, CONSUMER_OFFSETS_TOPIC, OFFSETS_COMMIT_TIMEOUT_MS,
};
use crate::protocol::*;
use crate::record::read_header;
use crate::transaction_coordinator::{TransactionCoordinator, TxnConfig, TRANSACTION_STATE_TOPIC};
use crate::types::*;
use std::collections::BTreeSet;

/// The topic config of internal topic `topic` (Kafka creates `__consumer_offsets` compacted,
/// `__transaction_state` compacted with `min.insync.replicas = transaction.state.log.min.isr`),
/// `None` for another topic.
pub(super) fn internal_topic_config_of(
    topic: &str,
    config: &BrokerConfig,
) -> Option<crate::config::TopicConfig> {
    if is_internal_topic(topic) {
        Some(internal_topic_config())
    } else if topic == TRANSACTION_STATE_TOPIC {
        Some(crate::transaction_coordinator::internal_topic_config(
            config,
        ))
    } else {
        None
    }
}

/// The coordinator runtimes a broker hosts, and what it remembers about coordinator
/// availability.
pub struct Coordinators {
    /// Committed offsets and group metadata, one shard per `__consumer_offsets` partition
    /// this broker leads.
    pub(super) offsets: OffsetsRuntime,
    /// The live classic groups of those partitions (members, sessions, join and sync phases).
    pub(super) groups: GroupManager,
    /// Reasons already reported in a `coordinator-unavailable` event (each once).
    pub(super) unavailable_reasons: BTreeSet<String>,
    /// The transaction coordinator: one shard per `__transaction_state` partition this broker
    /// leads, and the markers it is writing.
    pub(super) txn: TransactionCoordinator,
}

impl Coordinators {
    /// The coordinators of broker `id`, hosting nothing yet.
    pub fn new(id: BrokerId, config: &BrokerConfig) -> Self {
        Coordinators {
            offsets: OffsetsRuntime::new(),
            groups: GroupManager::new(
                id,
                GroupConfig {
                    initial_rebalance_delay_ms: config.group_initial_rebalance_delay_ms,
                    min_session_timeout_ms: config.group_min_session_timeout_ms,
                    max_session_timeout_ms: config.group_max_session_timeout_ms,
                    offset_commit_fencing: config.group_offset_commit_fencing,
                    txn_offset_commit_fencing: config.txn_offset_commit_fencing,
                },
            ),
            unavailable_reasons: BTreeSet::new(),
            txn: TransactionCoordinator::new(TxnConfig::from_broker(config)),
        }
    }
}

impl Coordinators {
    /// A transaction marker of `producer_id` was committed on `tp`, a `__consumer_offsets`
    /// partition this broker leads (Kafka's `GroupCoordinator.onTransactionCompleted`,
    /// `GroupMetadataManager.scala:939`): the producer's pending TxnOffsetCommit offsets of the
    /// groups on that partition are applied (COMMIT) or dropped (ABORT) here.
    ///
    /// `offset` is where the marker sits: the producer's pending records below it end with it.
    /// Nothing when this broker no longer hosts `tp`.
    pub(super) fn on_txn_marker(
        &mut self,
        tp: &TopicPartition,
        offset: Offset,
        producer_id: ProducerId,
        result: TransactionResult,
    ) {
        self.offsets.on_txn_marker(tp, offset, producer_id, result);
    }
}

impl std::fmt::Debug for Coordinators {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Coordinators")
            .field("offsets", &self.offsets.hosted().collect::<Vec<_>>())
            .field("txn", &self.txn.runtime.hosted().collect::<Vec<_>>())
            .finish()
    }
}

impl Broker {
    /// The topic config of an internal topic this broker now hosts a partition of, if it had
    /// none: Kafka creates `__consumer_offsets` compacted. Arms the log cleaner if no topic
    /// compacted before (it is armed at start only when one does).
    pub(super) fn ensure_internal_topic_config(
        &mut self,
        topic: &str,
        out: &mut Effects<BrokerTimer>,
    ) {
        if self.topic_configs.contains_key(topic) {
            return;
        }
        let Some(config) = internal_topic_config_of(topic, &self.config) else {
            return;
        };
        let cleaner_armed = self.any_compacted_topic();
        self.topic_configs.insert(topic.to_string(), config);
        if !cleaner_armed {
            out.timer(
                self.config.log_cleaner_backoff_ms.max(1),
                BrokerTimer::LogCleanerTick,
            );
        }
    }

    /// make_leader hook: a partition of an internal topic is loaded by replaying its log from
    /// its start (any shard still loaded from an earlier epoch is unloaded first).
    pub(super) fn coordinator_become_leader(
        &mut self,
        now: Instant,
        tp: &TopicPartition,
        out: &mut Effects<BrokerTimer>,
    ) {
        if tp.topic == TRANSACTION_STATE_TOPIC {
            self.txn_become_leader(now, tp, out);
            return;
        }
        if tp.topic != CONSUMER_OFFSETS_TOPIC {
            return;
        }
        self.coordinator_resign(tp, out);
        let p = &self.partitions[tp];
        let batches: Vec<Vec<u8>> = p.log.batches().map(|b| b.bytes.clone()).collect();
        let leader_epoch = p.leader_epoch;
        let summary = self.coordinators.offsets.on_become_leader(
            tp.clone(),
            leader_epoch,
            &batches,
            p.high_watermark,
        );
        assert!(
            summary.loaded_to <= p.log.log_end_offset(),
            "{tp}: loaded to {:?} past the log end {:?}",
            summary.loaded_to,
            p.log.log_end_offset()
        );
        out.event(Event::CoordinatorLoaded {
            tp: tp.clone(),
            broker: self.id,
            leader_epoch,
            records: summary.records,
            loaded_to: summary.loaded_to,
        });
        let stored = self
            .coordinators
            .offsets
            .latest(tp)
            .expect("loaded")
            .groups()
            .clone();
        let mut g = GroupOut::default();
        self.coordinators.groups.load(tp, &stored, now, &mut g);
        self.apply_group_out(now, g, out);
    }

    /// make_follower / StopReplica hook: the shard of `tp` is dropped and the commits still
    /// waiting for the high watermark are answered NOT_COORDINATOR. Nothing when `tp` is not
    /// loaded.
    pub(super) fn coordinator_resign(
        &mut self,
        tp: &TopicPartition,
        out: &mut Effects<BrokerTimer>,
    ) {
        self.txn_resign(tp, out);
        if !self.coordinators.offsets.hosts(tp) {
            return;
        }
        let mut g = GroupOut::default();
        self.coordinators.groups.unload(tp, &mut g);
        for (to, msg) in g.sends {
            out.send(to, msg);
        }
        for e in g.events {
            out.event(e);
        }
        let waiting = self.coordinators.offsets.on_resign(tp);
        out.event(Event::CoordinatorUnloaded {
            tp: tp.clone(),
            broker: self.id,
            pending_writes: waiting.len() as u64,
        });
        for w in waiting {
            answer_commit(w, ErrorCode::NotCoordinator, out);
        }
        assert!(!self.coordinators.offsets.hosts(tp));
    }

    /// maybe_advance_hw hook: the leader's high watermark of `tp` is now `high_watermark`;
    /// the commits it passes are answered NONE.
    pub(super) fn coordinator_high_watermark(
        &mut self,
        now: Instant,
        tp: &TopicPartition,
        high_watermark: Offset,
        out: &mut Effects<BrokerTimer>,
    ) {
        if tp.topic == TRANSACTION_STATE_TOPIC {
            self.txn_high_watermark(now, tp, high_watermark, out);
            return;
        }
        for w in self
            .coordinators
            .offsets
            .on_high_watermark(tp, high_watermark)
        {
            self.answer_write(now, w, ErrorCode::None, out);
        }
    }

    /// Answers a finished write: an OffsetCommit's client, or for a SyncGroup assignment the
    /// group manager (which answers the members and may store again).
    fn answer_write(
        &mut self,
        now: Instant,
        w: PendingCommit,
        error: ErrorCode,
        out: &mut Effects<BrokerTimer>,
    ) {
        match w.assignment_of {
            Some((group, generation)) => {
                let mut g = GroupOut::default();
                self.coordinators
                    .groups
                    .on_assignment_stored(now, &group, generation, error, &mut g);
                self.apply_group_out(now, g, out);
            }
            None => answer_commit(w, error, out),
        }
    }

    /// The periodic check (on the coordination-node tick, every 200 ms): commits whose
    /// `offsets.commit.timeout.ms` has passed are answered REQUEST_TIMED_OUT.
    pub(super) fn coordinator_expire(&mut self, now: Instant, out: &mut Effects<BrokerTimer>) {
        for w in self.coordinators.offsets.expire(now.0) {
            self.answer_write(now, w, ErrorCode::RequestTimedOut, out);
        }
    }

    /// FindCoordinator for `key` of `key_type`: the leader of the key's partition of
    /// `__consumer_offsets` (a group) or `__transaction_state` (a `transactional.id`) as the
    /// metadata cache has it. If the topic does not exist yet, ask the controller to create it
    /// (every live broker is told, see [`Message::CreateTopics`]) and answer
    /// COORDINATOR_NOT_AVAILABLE; while fewer brokers are registered than the topic's
    /// replication factor, do not ask, and say why once (Kafka's
    /// `KafkaApis.createInternalTopic` in ZooKeeper mode).
    pub(super) fn on_find_coordinator(
        &mut self,
        now: Instant,
        from: NodeId,
        corr: CorrelationId,
        key: String,
        key_type: CoordinatorType,
        out: &mut Effects<BrokerTimer>,
    ) {
        let (topic, tp) = match key_type {
            CoordinatorType::Group => (
                CONSUMER_OFFSETS_TOPIC,
                partition_for(&key, self.config.offsets_topic_num_partitions),
            ),
            CoordinatorType::Transaction => (
                TRANSACTION_STATE_TOPIC,
                crate::transaction_coordinator::partition_for(
                    &key,
                    self.config.transaction_state_log_num_partitions,
                ),
            ),
        };
        let exists = self.metadata.keys().any(|t| t.topic == topic);
        let (error, coordinator) = if exists {
            match self.metadata.get(&tp).and_then(|s| s.leader) {
                Some(leader) => (ErrorCode::None, Some(leader)),
                None => (ErrorCode::CoordinatorNotAvailable, None),
            }
        } else {
            self.create_internal_topic(now, key_type, out);
            (ErrorCode::CoordinatorNotAvailable, None)
        };
        out.send(
            from,
            Message::FindCoordinatorResponse {
                corr,
                error,
                coordinator,
            },
        );
    }

    /// Asks for the internal topic of `key_type` to be created, unless too few brokers are
    /// registered.
    fn create_internal_topic(
        &mut self,
        now: Instant,
        key_type: CoordinatorType,
        out: &mut Effects<BrokerTimer>,
    ) {
        let (topic, partitions, replication_factor, what, key) = match key_type {
            CoordinatorType::Group => (
                CONSUMER_OFFSETS_TOPIC,
                self.config.offsets_topic_num_partitions,
                self.config.offsets_topic_replication_factor,
                "the offsets topic",
                "offsets.topic.replication.factor",
            ),
            CoordinatorType::Transaction => (
                TRANSACTION_STATE_TOPIC,
                self.config.transaction_state_log_num_partitions,
                self.config.transaction_state_log_replication_factor,
                "the transactions state topic",
                "transaction.state.log.replication.factor",
            ),
        };
        let alive = self.live_brokers.len();
        if (alive as i32) < replication_factor {
            // Kafka's text (KafkaApis.scala, `createInternalTopic`).
            let reason = format!(
                "Number of alive brokers '{alive}' does not meet the required replication factor '{replication_factor}' for {what} (configured via '{key}'). This error can be ignored if the cluster is starting up and not all brokers are up yet."
            );
            if self.coordinators.unavailable_reasons.insert(reason.clone()) {
                out.event(Event::CoordinatorUnavailable {
                    broker: self.id,
                    reason,
                });
            }
            return;
        }
        for b in self.live_brokers.clone() {
            if b != self.id {
                out.send(
                    NodeId::Broker(b),
                    Message::CreateTopics {
                        topic: topic.into(),
                        partitions,
                        replication_factor,
                    },
                );
            }
        }
        let op = AdminOp::CreateTopic {
            name: topic.into(),
            partitions,
            replication_factor,
        };
        self.on_admin(now, op, out);
    }

    /// OffsetCommit from a simple consumer: one record per partition, appended to the group's
    /// `__consumer_offsets` partition with `acks=all`, answered once the high watermark passes
    /// them (or NOT_COORDINATOR if leadership moves first, REQUEST_TIMED_OUT after
    /// `offsets.commit.timeout.ms`). Refused at once: NOT_COORDINATOR when this broker does
    /// not lead that partition; UNKNOWN_MEMBER_ID for a generation other than -1 (no group
    /// has members yet); the remapped append error when the leader refuses the append.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn on_offset_commit(
        &mut self,
        now: Instant,
        from: NodeId,
        corr: CorrelationId,
        group_id: String,
        (generation_id, member_id): (i32, String),
        offsets: Vec<OffsetCommitPartition>,
        out: &mut Effects<BrokerTimer>,
    ) {
        let tp = partition_for(&group_id, self.config.offsets_topic_num_partitions);
        let token = PendingCommit {
            from,
            corr,
            partitions: offsets.iter().map(|o| o.tp.clone()).collect(),
            assignment_of: None,
            transactional: false,
        };
        if !self.coordinators.offsets.hosts(&tp) {
            answer_commit(token, ErrorCode::NotCoordinator, out);
            return;
        }
        let error = self.coordinators.groups.validate_offset_commit(
            &group_id,
            generation_id,
            &member_id,
            None,
        );
        if error != ErrorCode::None {
            answer_commit(token, error, out);
            return;
        }
        if offsets.is_empty() {
            answer_commit(token, ErrorCode::None, out);
            return;
        }
        let records: Vec<CoordinatorRecord> = offsets
            .into_iter()
            .map(|o| {
                CoordinatorRecord::Offset(OffsetRecord {
                    group_id: group_id.clone(),
                    tp: o.tp,
                    committed_offset: Some(o.committed_offset),
                    commit_timestamp_ms: now.0 as i64,
                })
            })
            .collect();
        let batch = self
            .coordinators
            .offsets
            .batch_for(&tp, &records, now.0)
            .expect("hosted");
        let header = read_header(&batch).expect("the runtime's own batch");
        let appended = match self.append_to_leader(&tp, batch, &header, Acks::All, out) {
            Ok(a) => a,
            Err(error) => {
                answer_commit(token, commit_error_for_append_error(error), out);
                return;
            }
        };
        assert_eq!(
            appended.last_offset.0 - appended.base_offset.0 + 1,
            records.len() as i64,
            "one offset per record"
        );
        let done = self.coordinators.offsets.appended(
            &tp,
            appended.base_offset,
            records,
            token,
            now.0 + OFFSETS_COMMIT_TIMEOUT_MS,
        );
        for w in done {
            answer_commit(w, ErrorCode::None, out);
        }
        // A single-member ISR commits at once; followers waiting in a fetch wake up.
        self.maybe_advance_hw(now, &tp, out);
        self.complete_delayed_fetches(now, &tp, out);
    }

    /// OffsetFetch: the committed offsets (below the high watermark) of `partitions` for
    /// `group_id`, -1 where none; NOT_COORDINATOR when this broker does not lead the group's
    /// partition. With `require_stable`, UNSTABLE_OFFSET_COMMIT (group-level here; Kafka puts
    /// it on each such partition and the client fails the whole fetch with it) while a
    /// transaction holds a pending offset for one of `partitions`, appended or committed.
    pub(super) fn on_offset_fetch(
        &mut self,
        from: NodeId,
        corr: CorrelationId,
        group_id: String,
        partitions: Vec<TopicPartition>,
        require_stable: bool,
        out: &mut Effects<BrokerTimer>,
    ) {
        let tp = partition_for(&group_id, self.config.offsets_topic_num_partitions);
        let leads = matches!(
            self.partitions.get(&tp).map(|p| &p.role),
            Some(Role::Leader(_))
        );
        let unstable = require_stable
            && partitions.iter().any(|p| {
                let latest = self.coordinators.offsets.latest(&tp);
                let committed = self.coordinators.offsets.committed(&tp);
                latest.is_ok_and(|s| s.has_pending(&group_id, p))
                    || committed.is_ok_and(|s| s.has_pending(&group_id, p))
            });
        let msg = match self.coordinators.offsets.committed(&tp) {
            Ok(_) if leads && unstable => Message::OffsetFetchResponse {
                corr,
                error: ErrorCode::UnstableOffsetCommit,
                partitions: vec![],
            },
            Ok(shard) if leads => Message::OffsetFetchResponse {
                corr,
                error: ErrorCode::None,
                partitions: partitions
                    .into_iter()
                    .map(|p| OffsetFetchPartition {
                        committed_offset: shard
                            .committed(&group_id, &p)
                            .map_or(Offset(-1), |c| c.offset),
                        tp: p,
                    })
                    .collect(),
            },
            _ => Message::OffsetFetchResponse {
                corr,
                error: ErrorCode::NotCoordinator,
                partitions: vec![],
            },
        };
        out.send(from, msg);
    }
}

impl Broker {
    /// TxnOffsetCommit (KIP-98, KIP-447; Kafka's `handleTxnOffsetCommitRequest` and
    /// `OffsetMetadataManager.commitTransactionalOffset`): the offsets become one record per
    /// partition in a transactional batch of the producer, appended to the group's
    /// `__consumer_offsets` partition with `acks=all` and answered once committed; they stay
    /// pending until the producer's marker reaches that partition. Refused at once:
    /// NOT_COORDINATOR when this broker does not lead the partition; the group check of
    /// [`GroupManager::validate_txn_offset_commit`] (ILLEGAL_GENERATION, UNKNOWN_MEMBER_ID,
    /// FENCED_INSTANCE_ID: a zombie member is fenced); INVALID_PRODUCER_EPOCH when the
    /// partition already saw a newer epoch of the producer (Kafka's
    /// `ProducerAppendInfo.checkProducerEpoch` on the coordinator's append; not with
    /// `sim.txn.producer-fencing = false`); the remapped append error.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn on_txn_offset_commit(
        &mut self,
        now: Instant,
        from: NodeId,
        corr: CorrelationId,
        group_id: String,
        (producer_id, producer_epoch): (ProducerId, ProducerEpoch),
        (generation_id, member_id, group_instance_id): (i32, String, Option<String>),
        offsets: Vec<OffsetCommitPartition>,
        out: &mut Effects<BrokerTimer>,
    ) {
        let tp = partition_for(&group_id, self.config.offsets_topic_num_partitions);
        let token = PendingCommit {
            from,
            corr,
            partitions: offsets.iter().map(|o| o.tp.clone()).collect(),
            assignment_of: None,
            transactional: true,
        };
        if !self.coordinators.offsets.hosts(&tp) {
            answer_commit(token, ErrorCode::NotCoordinator, out);
            return;
        }
        let error = self.coordinators.groups.validate_txn_offset_commit(
            &group_id,
            generation_id,
            &member_id,
            group_instance_id.as_ref(),
        );
        if error != ErrorCode::None {
            answer_commit(token, error, out);
            return;
        }
        let newer_epoch = self
            .partitions
            .get(&tp)
            .and_then(|p| p.producers.get(&producer_id))
            .is_some_and(|e| e.epoch() > producer_epoch);
        if newer_epoch && self.config.txn_producer_fencing {
            answer_commit(token, ErrorCode::InvalidProducerEpoch, out);
            return;
        }
        if offsets.is_empty() {
            answer_commit(token, ErrorCode::None, out);
            return;
        }
        let records: Vec<CoordinatorRecord> = offsets
            .into_iter()
            .map(|o| {
                CoordinatorRecord::Offset(OffsetRecord {
                    group_id: group_id.clone(),
                    tp: o.tp,
                    committed_offset: Some(o.committed_offset),
                    commit_timestamp_ms: now.0 as i64,
                })
            })
            .collect();
        let batch = self
            .coordinators
            .offsets
            .transactional_batch_for(&tp, &records, now.0, (producer_id, producer_epoch))
            .expect("hosted");
        let header = read_header(&batch).expect("the runtime's own batch");
        let appended = match self.append_to_leader(&tp, batch, &header, Acks::All, out) {
            Ok(a) => a,
            Err(error) => {
                answer_commit(token, commit_error_for_append_error(error), out);
                return;
            }
        };
        let done = self.coordinators.offsets.appended_transactional(
            &tp,
            appended.base_offset,
            records,
            producer_id,
            token,
            now.0 + OFFSETS_COMMIT_TIMEOUT_MS,
        );
        for w in done {
            answer_commit(w, ErrorCode::None, out);
        }
        self.maybe_advance_hw(now, &tp, out);
        self.complete_delayed_fetches(now, &tp, out);
    }

    /// JoinGroup, SyncGroup, Heartbeat and LeaveGroup: NOT_COORDINATOR unless this broker
    /// leads (and has loaded) the group's `__consumer_offsets` partition; otherwise the group
    /// manager decides.
    pub(super) fn on_group_request(
        &mut self,
        now: Instant,
        from: NodeId,
        msg: Message,
        out: &mut Effects<BrokerTimer>,
    ) {
        let (corr, group_id) = match &msg {
            Message::JoinGroup { corr, group_id, .. }
            | Message::SyncGroup { corr, group_id, .. }
            | Message::Heartbeat { corr, group_id, .. }
            | Message::LeaveGroup { corr, group_id, .. } => (*corr, group_id.clone()),
            _ => unreachable!("a group request"),
        };
        let tp = partition_for(&group_id, self.config.offsets_topic_num_partitions);
        let leads = matches!(
            self.partitions.get(&tp).map(|p| &p.role),
            Some(Role::Leader(_))
        );
        let mut g = GroupOut::default();
        if !leads || !self.coordinators.offsets.hosts(&tp) {
            let e = ErrorCode::NotCoordinator;
            let answer = match msg {
                Message::JoinGroup { member_id, .. } => Message::JoinGroupResponse {
                    corr,
                    error: e,
                    generation_id: -1,
                    protocol_name: None,
                    leader: String::new(),
                    member_id,
                    members: vec![],
                },
                Message::SyncGroup { .. } => Message::SyncGroupResponse {
                    corr,
                    error: e,
                    protocol_name: None,
                    partitions: vec![],
                },
                Message::Heartbeat { .. } => Message::HeartbeatResponse { corr, error: e },
                _ => Message::LeaveGroupResponse { corr, error: e },
            };
            out.send(from, answer);
            return;
        }
        let groups = &mut self.coordinators.groups;
        match msg {
            Message::JoinGroup {
                member_id,
                group_instance_id,
                session_timeout_ms,
                rebalance_timeout_ms,
                protocols,
                subscription,
                ..
            } => groups.join(
                now,
                &tp,
                JoinRequest {
                    from,
                    corr,
                    group_id,
                    member_id,
                    group_instance_id,
                    session_timeout_ms,
                    rebalance_timeout_ms,
                    protocols,
                    subscription,
                },
                &mut g,
            ),
            Message::SyncGroup {
                generation_id,
                member_id,
                group_instance_id,
                assignments,
                ..
            } => groups.sync(
                now,
                from,
                corr,
                &group_id,
                generation_id,
                &member_id,
                group_instance_id,
                assignments,
                &mut g,
            ),
            Message::Heartbeat {
                generation_id,
                member_id,
                group_instance_id,
                ..
            } => groups.heartbeat(
                now,
                from,
                corr,
                &group_id,
                generation_id,
                &member_id,
                group_instance_id,
                &mut g,
            ),
            Message::LeaveGroup {
                member_id,
                group_instance_id,
                ..
            } => groups.leave(
                now,
                from,
                corr,
                &group_id,
                &member_id,
                group_instance_id,
                &mut g,
            ),
            _ => unreachable!("a group request"),
        }
        self.apply_group_out(now, g, out);
    }

    /// A group coordinator timer fired.
    pub(super) fn on_group_timer(
        &mut self,
        now: Instant,
        timer: GroupTimer,
        out: &mut Effects<BrokerTimer>,
    ) {
        let mut g = GroupOut::default();
        self.coordinators.groups.on_timer(now, timer, &mut g);
        self.apply_group_out(now, g, out);
    }

    /// Carries out what the group manager asked: answers, events, timers, and group metadata
    /// appended to the group's `__consumer_offsets` partition (`acks=all`, not waited for; an
    /// append the leader refuses is reported in a `coordinator-unavailable` event).
    fn apply_group_out(&mut self, now: Instant, g: GroupOut, out: &mut Effects<BrokerTimer>) {
        for (to, msg) in g.sends {
            out.send(to, msg);
        }
        for e in g.events {
            out.event(e);
        }
        for (after_ms, t) in g.timers {
            out.timer(after_ms, BrokerTimer::Group(t));
        }
        let stores = g.store.into_iter().map(|r| (r, false));
        let assignments = g.store_assignment.into_iter().map(|r| (r, true));
        for (record, is_assignment) in stores.chain(assignments).collect::<Vec<_>>() {
            let tp = partition_for(&record.group_id, self.config.offsets_topic_num_partitions);
            let assignment_of = is_assignment.then(|| (record.group_id.clone(), record.generation));
            if !self.coordinators.offsets.hosts(&tp) {
                if let Some((group, generation)) = assignment_of {
                    let mut again = GroupOut::default();
                    self.coordinators.groups.on_assignment_stored(
                        now,
                        &group,
                        generation,
                        ErrorCode::NotCoordinator,
                        &mut again,
                    );
                    self.apply_group_out(now, again, out);
                }
                continue;
            }
            let records = vec![CoordinatorRecord::Group(record)];
            let batch = self
                .coordinators
                .offsets
                .batch_for(&tp, &records, now.0)
                .expect("hosted");
            let header = read_header(&batch).expect("the runtime's own batch");
            match self.append_to_leader(&tp, batch, &header, Acks::All, out) {
                Ok(appended) => {
                    let done = self.coordinators.offsets.appended(
                        &tp,
                        appended.base_offset,
                        records,
                        PendingCommit {
                            from: NodeId::Broker(self.id),
                            corr: CorrelationId(0),
                            partitions: vec![],
                            assignment_of: assignment_of.clone(),
                            transactional: false,
                        },
                        now.0 + OFFSETS_COMMIT_TIMEOUT_MS,
                    );
                    for w in done {
                        self.answer_write(now, w, ErrorCode::None, out);
                    }
                    self.maybe_advance_hw(now, &tp, out);
                    self.complete_delayed_fetches(now, &tp, out);
                }
                Err(error) => {
                    let reason = format!(
                        "storing group metadata in {tp} failed with {}",
                        error.kafka_name()
                    );
                    out.event(Event::CoordinatorUnavailable {
                        broker: self.id,
                        reason,
                    });
                    if let Some((group, generation)) = assignment_of {
                        let mut again = GroupOut::default();
                        self.coordinators
                            .groups
                            .on_assignment_stored(now, &group, generation, error, &mut again);
                        self.apply_group_out(now, again, out);
                    }
                }
            }
        }
    }
}

/// Answers a commit with `error` for every partition of its request.
fn answer_commit(w: PendingCommit, error: ErrorCode, out: &mut Effects<BrokerTimer>) {
    if w.partitions.is_empty() && matches!(w.from, NodeId::Broker(_)) {
        return; // a group metadata write: nobody waits for it
    }
    let partitions = w
        .partitions
        .into_iter()
        .map(|tp| OffsetCommitPartitionResponse { tp, error })
        .collect();
    let corr = w.corr;
    let msg = if w.transactional {
        Message::TxnOffsetCommitResponse { corr, partitions }
    } else {
        Message::OffsetCommitResponse { corr, partitions }
    };
    out.send(w.from, msg);
}
