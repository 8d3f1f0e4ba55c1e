//! A broker: the replica manager of every partition it hosts, its coordination-node session,
//! and (when elected) the controller.
//!
//! This file holds the [`Broker`] struct, its recovery from disk, and the dispatch: the
//! [`Actor`] impl hands every message and timer to a handler in the file of its Kafka concept:
//!
//! * `replica_manager.rs` (`ReplicaManager.scala`): LeaderAndIsr, StopReplica, becoming leader
//!   or follower, the high-watermark checkpoint; and how replication works, as an essay.
//! * `partition.rs` (`Partition.scala`): a hosted partition's state, ISR shrink and expand
//!   through AlterPartition, advancing the high watermark.
//! * `produce.rs` (`ReplicaManager.appendRecords`, `LogValidator`): Produce requests.
//! * `purgatory.rs` (`DelayedOperationPurgatory`, `DelayedProduce`, `DelayedFetch`): produce and
//!   fetch requests waiting for the high watermark or for data.
//! * `fetch.rs` (`ReplicaManager.fetchMessages`): the leader's side of Fetch, ListOffsets and
//!   OffsetsForLeaderEpoch.
//! * `fetcher_thread.rs` (`AbstractFetcherManager`, `AbstractFetcherThread`): one fetch session
//!   per leader broker, carrying all the partitions followed from it.
//! * `follower.rs` (`ReplicaFetcherThread`): one partition's part of a fetch response, and
//!   truncation.
//! * `log_manager.rs` (`LogManager.scala`): flush, retention, cleaner, log checkpoints.
//! * `zk_session.rs` (`KafkaZkClient`): the coordination-node session, registration and the
//!   controller election.
//! * `controller_host.rs` (`KafkaController` glue): running the controller inside the broker.
//! * `metadata_cache.rs` (`MetadataCache`): UpdateMetadata and Metadata requests.
//! * `producer_id.rs` (`ProducerIdManager`): InitProducerId.
//! * `coordinators.rs` (`CoordinatorRuntime` glue, `KafkaApis` group handlers): the
//!   coordinators hosted on internal-topic partitions this broker leads, FindCoordinator,
//!   OffsetCommit, OffsetFetch.
//! * `txn_coordinator.rs` (`TransactionCoordinator` glue, `KafkaApis` transaction handlers):
//!   the transaction coordinator on the `__transaction_state` partitions this broker leads:
//!   InitProducerId with a `transactional.id`, AddPartitionsToTxn, AddOffsetsToTxn, EndTxn,
//!   and the WriteTxnMarkers it sends.
//! * `txn_markers.rs` (`KafkaApis.handleWriteTxnMarkersRequest`): WriteTxnMarkers, the
//!   transaction markers a transaction coordinator writes to the partitions this broker leads.
//! * `txn_verification.rs` (`AddPartitionsToTxnManager`, KIP-890 part 1): the leader holds a
//!   transactional batch of a producer with no transaction open in the partition until the
//!   transaction coordinator confirms the partition is in its ongoing transaction.
//!
//! Per-producer state for duplicate detection is in [`crate::log::producer_state`]
//! (`ProducerStateManager.scala`), with the transactional state (open transactions, the last
//! stable offset's source, the aborted-transaction index) that the log keeps itself.

mod controller_host;
mod coordinators;
mod fetch;
mod fetcher_thread;
mod follower;
mod log_manager;
mod metadata_cache;
mod partition;
mod produce;
mod producer_id;
mod purgatory;
mod replica_manager;
#[cfg(test)]
mod tests;
mod txn_coordinator;
mod txn_markers;
mod txn_verification;
mod zk_session;

pub use crate::log::producer_state::NUM_BATCHES_TO_RETAIN;
pub use controller_host::CONTROLLER_RESEND_BACKOFF_MS;
pub use coordinators::Coordinators;
pub use replica_manager::HW_CHECKPOINT_FILE;
pub use zk_session::ZkPurpose;

use crate::config::{BrokerCompression, BrokerConfig, TopicConfig, TruncationMode};
use crate::controller::{AdminOp, Controller, ControllerTimer, NewTopic};
use crate::effects::{Actor, Effects};
use crate::event::Event;
use crate::log::{LogConfig, PartitionLog};
use crate::protocol::*;
use crate::touched::TouchedMap;
use crate::types::*;
use crate::zk_client::{SessionState, ZkClient};
use fetcher_thread::ReplicaFetcher;
use log_manager::parse_dir;
use partition::{Partition, Role};
use purgatory::{PendingFetch, PendingProduce, ProduceRequestState, Purgatory};
use replica_manager::parse_hw_checkpoint;
use std::collections::{BTreeMap, BTreeSet};

/// Timers of a broker.
#[derive(Debug, Clone, PartialEq)]
pub enum BrokerTimer {
    ZkTick,
    ZkReconnect,
    RegisterRetry,
    ProduceTimeout {
        id: u64,
    },
    FetchWaitExpired {
        id: u64,
    },
    /// The backoff of follower partition `tp` ends, if its generation still matches.
    FollowerFetch {
        tp: TopicPartition,
        generation: u64,
    },
    /// The fetch session's Fetch `corr` to `leader` got no answer in time.
    FollowerFetchTimeout {
        leader: BrokerId,
        corr: CorrelationId,
    },
    /// A follower's OffsetsForLeaderEpoch (legacy truncation modes) got no answer in time.
    EpochLookupTimeout {
        tp: TopicPartition,
        corr: CorrelationId,
    },
    IsrCheck,
    HwCheckpoint,
    FlushCheck,
    AlterPartitionRetry {
        tp: TopicPartition,
        generation: u64,
        /// Which send of the pending request this retry follows (`LeaderState::isr_sends`):
        /// a retry armed by an earlier send is stale.
        send: u64,
    },
    /// A timer of the hosted controller.
    Controller(ControllerTimer),
    /// A timer of the hosted group coordinator.
    Group(crate::group_coordinator::GroupTimer),
    /// Retention runs (`log.retention.check.interval.ms`).
    LogRetentionCheck,
    /// The log cleaner's next pass (`log.cleaner.backoff.ms`); armed only when some topic
    /// compacts.
    LogCleanerTick,
    /// Checkpoint every log's recovery point (`log.flush.offset.checkpoint.interval.ms`).
    RecoveryPointCheckpoint,
    /// Checkpoint every log's start offset (`log.flush.start.offset.checkpoint.interval.ms`).
    LogStartOffsetCheckpoint,
    /// The KIP-890 verification `corr` (AddPartitionsToTxn with `verify_only`) got no answer in
    /// time (`txn_verification.rs`).
    TxnVerificationTimeout {
        corr: CorrelationId,
    },
}

/// A broker process.
#[derive(Debug)]
pub struct Broker {
    pub id: BrokerId,
    config: BrokerConfig,
    topic_configs: BTreeMap<String, TopicConfig>,
    /// Hosted partitions; the invariants check those a handler changed.
    partitions: TouchedMap<TopicPartition, Partition>,
    zk: ZkClient<ZkPurpose>,
    broker_epoch: BrokerEpoch,
    registered: bool,
    controller: Controller,
    /// Metadata cache from UpdateMetadata.
    metadata: BTreeMap<TopicPartition, PartitionState>,
    /// Whether this process has applied a full UpdateMetadata (the whole cluster); until then
    /// it applies no incremental one (see `on_update_metadata`).
    metadata_complete: bool,
    live_brokers: Vec<BrokerId>,
    controller_id: Option<BrokerId>,
    highest_controller_epoch: ControllerEpoch,
    next_id: u64,
    pending_produces: Purgatory<PendingProduce>,
    /// Multi-partition produce requests still collecting their partitions' answers.
    produce_requests: BTreeMap<u64, ProduceRequestState>,
    /// WriteTxnMarkers requests still collecting their markers' answers (`txn_markers.rs`).
    txn_marker_requests: BTreeMap<u64, txn_markers::TxnMarkersRequestState>,
    /// KIP-890 part 1: verification guards and the produces held for the coordinator's
    /// answer (`txn_verification.rs`).
    txn_verification: txn_verification::TxnVerification,
    pending_fetches: Purgatory<PendingFetch>,
    next_producer_id: i64,
    /// Follower OffsetsForLeaderEpoch requests waiting for a reply, to the leader they went to.
    fetch_targets: BTreeMap<CorrelationId, (TopicPartition, BrokerId)>,
    /// The replica fetcher sessions, one per leader broker (`fetcher_thread.rs`).
    fetchers: BTreeMap<BrokerId, ReplicaFetcher>,
    next_corr: u64,
    /// Brokers the controller will resend its state to (one timer each).
    controller_resends: BTreeSet<BrokerId>,
    /// When this broker last heard from the coordination node on its session.
    zk_last_heard: Instant,
    /// The coordinator runtimes hosted on the internal-topic partitions this broker leads
    /// (for now the offsets store of `__consumer_offsets`).
    coordinators: Coordinators,
}

impl Broker {
    /// A broker recovering from the files on its disk (`files`: every file of its data
    /// directory). `topics` are the scenario's topics: configs for every broker, and the
    /// creation requests the controller carries out if the topic does not exist yet.
    pub fn recover(
        id: BrokerId,
        config: BrokerConfig,
        topics: Vec<NewTopic>,
        files: &BTreeMap<String, Vec<u8>>,
        out: &mut Effects<BrokerTimer>,
    ) -> Broker {
        let mut topic_configs = BTreeMap::new();
        for t in &topics {
            topic_configs.insert(t.name.clone(), t.config.clone());
        }
        let checkpoint = parse_hw_checkpoint(files.get(HW_CHECKPOINT_FILE).map(|v| v.as_slice()));
        // Every partition directory present on disk is hosted.
        let mut dirs: BTreeSet<TopicPartition> = BTreeSet::new();
        for name in files.keys() {
            if let Some((dir, _)) = name.split_once('/') {
                if let Some(tp) = parse_dir(dir) {
                    dirs.insert(tp);
                }
            }
        }
        // An internal topic's partitions on disk follow its Kafka config (compacted).
        for tp in &dirs {
            if let Some(c) = coordinators::internal_topic_config_of(&tp.topic, &config) {
                topic_configs.entry(tp.topic.to_string()).or_insert(c);
            }
        }
        let mut partitions = BTreeMap::new();
        let mut disk_ops = Vec::new();
        for tp in dirs {
            let log_config = topic_configs
                .get(tp.topic.as_str())
                .cloned()
                .unwrap_or_default()
                .log_config(&config);
            let (log, report) =
                PartitionLog::recover_with_config(&tp, files, log_config, &mut disk_ops);
            if report.discarded_bytes > 0 {
                out.event(Event::LogRecovered {
                    tp: tp.clone(),
                    broker: id,
                    log_end_offset: log.log_end_offset(),
                    discarded_bytes: report.discarded_bytes,
                });
            }
            // Kafka: the HW is at least the log start offset.
            let hw = checkpoint
                .get(&tp)
                .copied()
                .unwrap_or(Offset(0))
                .min(log.log_end_offset())
                .max(log.log_start_offset());
            let mut p = Partition {
                log,
                high_watermark: hw,
                role: Role::None,
                leader_epoch: LeaderEpoch::UNKNOWN,
                producers: BTreeMap::new(),
                last_stable_offset: None,
                generation: 0,
            };
            p.rebuild_producer_state();
            p.log.on_high_watermark(hw);
            partitions.insert(tp, p);
        }
        for op in disk_ops {
            out.disk(op);
        }
        let zk_timeout = config.zookeeper_session_timeout_ms;
        let controller = Controller::new(id, config.clone(), topics);
        let coordinators = Coordinators::new(id, &config);
        Broker {
            id,
            config,
            topic_configs,
            partitions: partitions.into(),
            zk: ZkClient::new(zk_timeout),
            broker_epoch: BrokerEpoch(-1),
            registered: false,
            controller,
            metadata: BTreeMap::new(),
            metadata_complete: false,
            live_brokers: Vec::new(),
            controller_id: None,
            highest_controller_epoch: ControllerEpoch(0),
            next_id: 1,
            pending_produces: Purgatory::default(),
            produce_requests: BTreeMap::new(),
            txn_marker_requests: BTreeMap::new(),
            txn_verification: Default::default(),
            pending_fetches: Purgatory::default(),
            next_producer_id: 0,
            fetch_targets: BTreeMap::new(),
            fetchers: BTreeMap::new(),
            next_corr: 1,
            controller_resends: BTreeSet::new(),
            zk_last_heard: Instant(0),
            coordinators,
        }
    }

    fn fresh_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    fn fresh_corr(&mut self) -> CorrelationId {
        self.next_corr += 1;
        CorrelationId(self.next_corr)
    }

    fn min_isr(&self, topic: &str) -> i32 {
        self.topic_configs
            .get(topic)
            .and_then(|c| c.min_insync_replicas)
            .unwrap_or(self.config.min_insync_replicas)
    }

    /// The log settings of `topic`'s partitions: its overrides on top of the broker's.
    fn log_config(&self, topic: &str) -> LogConfig {
        self.topic_configs
            .get(topic)
            .cloned()
            .unwrap_or_default()
            .log_config(&self.config)
    }

    /// The topic's `compression.type`, else the broker's.
    fn compression_type(&self, topic: &str) -> BrokerCompression {
        self.topic_configs
            .get(topic)
            .and_then(|c| c.compression_type)
            .unwrap_or(self.config.compression_type)
    }

    fn flush_interval_messages(&self, topic: &str) -> u64 {
        self.topic_configs
            .get(topic)
            .and_then(|c| c.flush_messages)
            .unwrap_or(self.config.log_flush_interval_messages)
    }

    /// Whether this broker is the active controller.
    pub fn is_controller(&self) -> bool {
        self.controller.is_active()
    }

    /// Every hosted partition's log, for end-of-run inspection.
    pub fn logs(&self) -> impl Iterator<Item = (&TopicPartition, &PartitionLog, Offset)> {
        self.partitions
            .iter()
            .map(|(tp, p)| (tp, &p.log, p.high_watermark))
    }

    /// The partitions this broker currently leads, with their leader epochs.
    pub fn led_partitions(&self) -> Vec<(TopicPartition, LeaderEpoch)> {
        self.partitions
            .iter()
            .filter_map(|(tp, p)| match &p.role {
                Role::Leader(l) => Some((tp.clone(), l.leader_epoch)),
                _ => None,
            })
            .collect()
    }

    /// The broker's invariants, the hosted controller's included (the shell calls them after
    /// every handler through [`Actor::invariants`]): per hosted partition, HW at most LEO; a
    /// leader is in its own ISR and its leader epoch is the partition's.
    fn broker_invariants(&self) {
        self.controller.invariants();
        // Per partition: those this handler changed (all of them after a pass over every
        // partition, such as the ISR check or a checkpoint).
        self.partitions.check_touched(|tp, p| {
            assert!(
                p.high_watermark <= p.log.log_end_offset(),
                "{tp}: HW {} above LEO {} on broker {}",
                p.high_watermark,
                p.log.log_end_offset(),
                self.id
            );
            if let Role::Leader(l) = &p.role {
                assert!(
                    l.isr.contains(&self.id),
                    "{tp}: leader {} not in its own ISR {:?}",
                    self.id,
                    l.isr
                );
                assert_eq!(l.leader_epoch, p.leader_epoch);
            }
        });
        // A coordinator shard is loaded exactly while this broker leads its partition, in the
        // epoch it was loaded in (loaded on make_leader, unloaded on every other change).
        let txn_hosted = self.coordinators.txn.runtime.hosted();
        for tp in self.coordinators.offsets.hosted().chain(txn_hosted) {
            let leader_epoch = match self.partitions.get(tp).map(|p| &p.role) {
                Some(Role::Leader(l)) => Some(l.leader_epoch),
                _ => None,
            };
            let loaded_epoch =
                if tp.topic == crate::transaction_coordinator::TRANSACTION_STATE_TOPIC {
                    self.coordinators.txn.runtime.leader_epoch(tp)
                } else {
                    self.coordinators.offsets.leader_epoch(tp)
                };
            assert_eq!(
                leader_epoch, loaded_epoch,
                "{tp}: coordinator loaded on broker {} without leading it in that epoch",
                self.id
            );
        }
        // Markers are sent only for transactions of a loaded `__transaction_state` partition.
        self.coordinators.txn.markers.invariants();
        for job in self.coordinators.txn.markers.jobs() {
            assert!(
                self.coordinators.txn.runtime.hosts(&job.txn_tp),
                "{}: markers for {} of an unloaded partition on broker {}",
                job.txn_tp,
                job.transactional_id,
                self.id
            );
        }
    }
}

impl Actor for Broker {
    type Timer = BrokerTimer;

    fn invariants(&self) {
        self.broker_invariants();
    }

    fn replica_probe(&self, tp: &TopicPartition) -> Option<(Offset, Option<LeaderEpoch>)> {
        let p = self.partitions.get(tp)?;
        let leader_epoch = match &p.role {
            Role::Leader(l) => Some(l.leader_epoch),
            _ => None,
        };
        Some((p.high_watermark, leader_epoch))
    }

    fn on_start(&mut self, now: Instant, out: &mut Effects<BrokerTimer>) {
        out.event(Event::BrokerStarted { broker: self.id });
        self.zk_connect(now, out);
        out.timer(200, BrokerTimer::ZkTick);
        out.timer(
            (self.config.replica_lag_time_max_ms / 2).max(1),
            BrokerTimer::IsrCheck,
        );
        out.timer(
            self.config.replica_high_watermark_checkpoint_interval_ms,
            BrokerTimer::HwCheckpoint,
        );
        if let Some(ms) = self.config.log_flush_interval_ms {
            out.timer(ms.max(1), BrokerTimer::FlushCheck);
        }
        out.timer(
            self.config.log_retention_check_interval_ms.max(1),
            BrokerTimer::LogRetentionCheck,
        );
        out.timer(
            self.config.log_flush_offset_checkpoint_interval_ms.max(1),
            BrokerTimer::RecoveryPointCheckpoint,
        );
        out.timer(
            self.config
                .log_flush_start_offset_checkpoint_interval_ms
                .max(1),
            BrokerTimer::LogStartOffsetCheckpoint,
        );
        if self.any_compacted_topic() {
            out.timer(
                self.config.log_cleaner_backoff_ms.max(1),
                BrokerTimer::LogCleanerTick,
            );
        }
    }

    fn on_message(
        &mut self,
        now: Instant,
        from: NodeId,
        msg: Message,
        out: &mut Effects<BrokerTimer>,
    ) {
        match msg {
            Message::ZkResponse { corr, result } => self.on_zk_response(now, corr, result, out),
            Message::ZkWatch {
                session,
                path,
                kind,
                seq,
            } => self.on_zk_watch_notification(now, session, path, kind, seq, out),
            Message::ZkSessionExpired { session } => self.on_zk_session_expired(now, session, out),
            Message::Produce {
                corr,
                acks,
                timeout_ms,
                transactional_id,
                partitions,
            } => self.on_produce_request(
                now,
                from,
                corr,
                acks,
                timeout_ms,
                transactional_id,
                partitions,
                out,
            ),
            m @ Message::Fetch { .. } => self.on_fetch(now, from, m, true, out),
            Message::FetchResponse { corr, partitions } => {
                self.on_fetch_response(now, corr, partitions, out)
            }
            Message::Metadata { corr, topics } => self.on_metadata(from, corr, topics, out),
            Message::ListOffsets {
                corr,
                tp,
                timestamp,
                isolation_level,
                ..
            } => self.on_list_offsets(from, corr, tp, timestamp, isolation_level, out),
            Message::InitProducerId {
                corr,
                transactional_id: Some(transactional_id),
                transaction_timeout_ms,
                producer_id,
                producer_epoch,
            } => self.on_txn_init_producer_id(
                now,
                from,
                corr,
                transactional_id,
                transaction_timeout_ms,
                (producer_id, producer_epoch),
                out,
            ),
            Message::InitProducerId { corr, .. } => self.on_init_producer_id(from, corr, out),
            Message::OffsetForLeaderEpoch {
                corr,
                replica_id: None,
                tp,
                ..
            } if matches!(
                self.config.replication_truncation,
                TruncationMode::HighWatermark | TruncationMode::Kip101 | TruncationMode::Kip279
            ) =>
            {
                self.on_offset_for_leader_epoch_unsupported(from, corr, tp, out)
            }
            Message::OffsetForLeaderEpoch {
                corr,
                tp,
                current_leader_epoch,
                leader_epoch,
                ..
            } => self.on_offset_for_leader_epoch(
                from,
                corr,
                tp,
                current_leader_epoch,
                leader_epoch,
                out,
            ),
            Message::OffsetForLeaderEpochResponse {
                corr,
                tp,
                error,
                end,
            } => self.on_offset_for_leader_epoch_response(now, corr, tp, error, end, out),
            Message::LeaderAndIsr {
                controller,
                controller_epoch,
                broker_epoch,
                partitions,
            } => self.on_leader_and_isr(
                now,
                from,
                controller,
                controller_epoch,
                broker_epoch,
                partitions,
                out,
            ),
            Message::UpdateMetadata {
                controller,
                controller_epoch,
                live_brokers,
                partitions,
                deleted_partitions,
                full,
            } => self.on_update_metadata(
                now,
                controller,
                controller_epoch,
                live_brokers,
                partitions,
                deleted_partitions,
                full,
                out,
            ),
            m @ Message::AlterPartition { .. } => self.on_alter_partition(now, from, m, out),
            Message::AlterPartitionResponse {
                corr,
                tp,
                error,
                state,
            } => self.on_alter_partition_response(now, corr, tp, error, state, out),
            Message::StopReplica {
                controller,
                controller_epoch,
                broker_epoch,
                partitions,
                delete_partitions,
            } => self.on_stop_replica(
                from,
                controller,
                controller_epoch,
                broker_epoch,
                partitions,
                delete_partitions,
                out,
            ),
            Message::CreatePartitions { topic, assignment } => {
                self.on_admin(now, AdminOp::CreatePartitions { topic, assignment }, out)
            }
            Message::DeleteTopics { topic } => {
                self.on_admin(now, AdminOp::DeleteTopic { topic }, out)
            }
            Message::FindCoordinator {
                corr,
                key,
                key_type,
            } => self.on_find_coordinator(now, from, corr, key, key_type, out),
            Message::OffsetCommit {
                corr,
                group_id,
                generation_id,
                member_id,
                offsets,
            } => self.on_offset_commit(
                now,
                from,
                corr,
                group_id,
                (generation_id, member_id),
                offsets,
                out,
            ),
            Message::OffsetFetch {
                corr,
                group_id,
                partitions,
                require_stable,
            } => self.on_offset_fetch(from, corr, group_id, partitions, require_stable, out),
            m @ (Message::JoinGroup { .. }
            | Message::SyncGroup { .. }
            | Message::Heartbeat { .. }
            | Message::LeaveGroup { .. }) => self.on_group_request(now, from, m, out),
            Message::CreateTopics {
                topic,
                partitions,
                replication_factor,
            } => self.on_admin(
                now,
                AdminOp::CreateTopic {
                    name: topic,
                    partitions,
                    replication_factor,
                },
                out,
            ),
            Message::LeaderAndIsrResponse { .. } | Message::StopReplicaResponse { .. } => {}
            Message::AddPartitionsToTxn {
                corr,
                transactional_id,
                producer_id,
                producer_epoch,
                partitions,
                verify_only,
            } => self.on_add_partitions_to_txn(
                now,
                from,
                corr,
                transactional_id,
                (producer_id, producer_epoch),
                partitions,
                verify_only,
                out,
            ),
            Message::AddOffsetsToTxn {
                corr,
                transactional_id,
                producer_id,
                producer_epoch,
                group_id,
            } => self.on_add_offsets_to_txn(
                now,
                from,
                corr,
                transactional_id,
                (producer_id, producer_epoch),
                group_id,
                out,
            ),
            Message::EndTxn {
                corr,
                transactional_id,
                producer_id,
                producer_epoch,
                committed,
            } => self.on_end_txn(
                now,
                from,
                corr,
                transactional_id,
                (producer_id, producer_epoch),
                committed,
                out,
            ),
            Message::WriteTxnMarkersResponse { corr, markers } => {
                self.on_write_txn_markers_response(now, corr, markers, out)
            }
            Message::WriteTxnMarkers { corr, markers } => {
                self.on_write_txn_markers(now, from, corr, markers, out)
            }
            Message::TxnOffsetCommit {
                corr,
                group_id,
                producer_id,
                producer_epoch,
                generation_id,
                member_id,
                group_instance_id,
                offsets,
                ..
            } => self.on_txn_offset_commit(
                now,
                from,
                corr,
                group_id,
                (producer_id, producer_epoch),
                (generation_id, member_id, group_instance_id),
                offsets,
                out,
            ),
            // The coordinator's answer to this leader's KIP-890 verification.
            Message::AddPartitionsToTxnResponse { corr, results } => {
                self.on_txn_verification_response(now, corr, results, out)
            }
            // Not addressed to a broker.
            Message::FindCoordinatorResponse { .. }
            | Message::JoinGroupResponse { .. }
            | Message::SyncGroupResponse { .. }
            | Message::HeartbeatResponse { .. }
            | Message::LeaveGroupResponse { .. }
            | Message::OffsetCommitResponse { .. }
            | Message::OffsetFetchResponse { .. }
            | Message::Zk { .. }
            | Message::MetadataResponse { .. }
            | Message::ProduceResponse { .. }
            | Message::ListOffsetsResponse { .. }
            | Message::InitProducerIdResponse { .. }
            | Message::AddOffsetsToTxnResponse { .. }
            | Message::EndTxnResponse { .. }
            | Message::TxnOffsetCommitResponse { .. }
            // A client's own close; the loader refuses `close` on a broker.
            | Message::Close => {}
        }
    }

    fn on_timeout(&mut self, now: Instant, timer: BrokerTimer, out: &mut Effects<BrokerTimer>) {
        match timer {
            BrokerTimer::ZkTick => {
                self.on_zk_tick(now, out);
                self.coordinator_expire(now, out);
                self.txn_tick(now, out);
                out.timer(200, BrokerTimer::ZkTick);
            }
            BrokerTimer::ZkReconnect => self.on_zk_reconnect(now, out),
            BrokerTimer::RegisterRetry => self.on_register_retry(now, out),
            BrokerTimer::ProduceTimeout { id } => self.on_produce_timeout(id, out),
            BrokerTimer::FetchWaitExpired { id } => self.on_fetch_wait_expired(now, id, out),
            BrokerTimer::FollowerFetch { tp, generation } => {
                self.on_follower_fetch_due(now, tp, generation, out)
            }
            BrokerTimer::FollowerFetchTimeout { leader, corr } => {
                self.on_follower_fetch_timeout(now, leader, corr, out)
            }
            BrokerTimer::EpochLookupTimeout { tp, corr } => {
                self.on_epoch_lookup_timeout(now, tp, corr, out)
            }
            BrokerTimer::IsrCheck => {
                self.check_isr_shrink(now, out);
                out.timer(
                    (self.config.replica_lag_time_max_ms / 2).max(1),
                    BrokerTimer::IsrCheck,
                );
            }
            BrokerTimer::HwCheckpoint => {
                self.write_hw_checkpoint(out);
                out.timer(
                    self.config.replica_high_watermark_checkpoint_interval_ms,
                    BrokerTimer::HwCheckpoint,
                );
            }
            BrokerTimer::FlushCheck => {
                self.flush_logs(out);
                if let Some(ms) = self.config.log_flush_interval_ms {
                    out.timer(ms.max(1), BrokerTimer::FlushCheck);
                }
            }
            BrokerTimer::LogRetentionCheck => {
                self.on_log_retention_check(now, out);
                out.timer(
                    self.config.log_retention_check_interval_ms.max(1),
                    BrokerTimer::LogRetentionCheck,
                );
            }
            BrokerTimer::LogCleanerTick => {
                self.on_log_cleaner_tick(now, out);
                out.timer(
                    self.config.log_cleaner_backoff_ms.max(1),
                    BrokerTimer::LogCleanerTick,
                );
            }
            BrokerTimer::RecoveryPointCheckpoint => {
                self.write_recovery_point_checkpoint(out);
                out.timer(
                    self.config.log_flush_offset_checkpoint_interval_ms.max(1),
                    BrokerTimer::RecoveryPointCheckpoint,
                );
            }
            BrokerTimer::TxnVerificationTimeout { corr } => {
                self.txn_verification_lost(now, corr, out)
            }
            BrokerTimer::LogStartOffsetCheckpoint => {
                self.write_log_start_offset_checkpoint(out);
                out.timer(
                    self.config
                        .log_flush_start_offset_checkpoint_interval_ms
                        .max(1),
                    BrokerTimer::LogStartOffsetCheckpoint,
                );
            }
            BrokerTimer::Group(t) => self.on_group_timer(now, t, out),
            BrokerTimer::Controller(ControllerTimer::Resend { broker }) => {
                self.on_controller_resend(broker, out)
            }
            BrokerTimer::AlterPartitionRetry {
                tp,
                generation,
                send,
            } => self.on_alter_partition_retry(now, tp, generation, send, out),
        }
    }

    fn on_disconnect(&mut self, now: Instant, peer: NodeId, out: &mut Effects<BrokerTimer>) {
        match peer {
            NodeId::Zk
                // Requests to the coordination node were lost; the session may survive, and
                // the ZkTick sends its unanswered requests again (`retransmit_due`). A lost
                // Connect has no session to survive: try again shortly.
                if self.zk.state == SessionState::Connecting => self.zk_connect_lost(out),
            NodeId::Broker(b) => {
                self.fetches_to_broker_lost(b, out);
                self.alter_partitions_to_broker_lost(b, out);
                self.txn_markers_lost(None, b);
                self.txn_verifications_to_broker_lost(now, b, out);
            }
            _ => {}
        }
    }

    fn on_send_failed(
        &mut self,
        now: Instant,
        to: NodeId,
        msg: Message,
        out: &mut Effects<BrokerTimer>,
    ) {
        match msg {
            Message::Fetch { corr, .. } => self.fetch_request_failed(corr, out),
            Message::OffsetForLeaderEpoch { corr, tp, .. } => {
                self.epoch_lookup_failed(corr, tp, out)
            }
            Message::Zk { .. } if self.zk.state == SessionState::Connecting => {
                self.zk_connect_lost(out)
            }
            Message::AlterPartition { corr, tp, .. } => {
                self.alter_partition_send_failed(corr, tp, out)
            }
            Message::LeaderAndIsr { .. } | Message::UpdateMetadata { .. } => {
                self.controller_send_failed(to, out)
            }
            Message::WriteTxnMarkers { corr, .. } => {
                if let NodeId::Broker(b) = to {
                    self.txn_markers_lost(Some(corr), b)
                }
            }
            Message::AddPartitionsToTxn {
                corr,
                verify_only: true,
                ..
            } => self.txn_verification_lost(now, corr, out),
            _ => {}
        }
    }
}
