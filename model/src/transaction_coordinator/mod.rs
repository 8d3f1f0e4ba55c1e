//! The transaction coordinator (KIP-98, KIP-360, KIP-890; Kafka's `TransactionCoordinator.scala`,
//! `TransactionStateManager.scala`, `TransactionMetadata.scala`,
//! `TransactionMarkerChannelManager.scala`), hosted by the broker through the
//! [`coordinator_runtime`].
//!
//! # What Kafka does (GROUPS-AND-TRANSACTIONS.md, B1-B2)
//! * **Finding the coordinator.** A `transactional.id`'s state lives in one partition of the
//!   internal, compacted topic `__transaction_state`: partition
//!   `Utils.abs(transactionalId.hashCode()) % transaction.state.log.num.partitions`
//!   (TransactionStateManager.scala `partitionFor`). The leader of that partition is the id's
//!   coordinator; FindCoordinator with key type TRANSACTION names it, creating the topic on
//!   first use as for `__consumer_offsets`.
//! * **State.** Each id has a producer id and epoch, a timeout, a state (Empty, Ongoing,
//!   PrepareCommit, PrepareAbort, CompleteCommit, CompleteAbort; see
//!   [`transaction_metadata`]) and the set of partitions of its open transaction. Every state
//!   change is one record (key: the id) appended with `acks=all` to the id's partition, and the
//!   request that caused it is answered only once the record is committed (the runtime's
//!   write). While a record for an id waits for its commit, other requests for the id get
//!   CONCURRENT_TRANSACTIONS.
//! * **InitProducerId** gives the id's producer id and a bumped epoch, which fences every
//!   older instance of the producer; an open transaction of the previous epoch is aborted first
//!   (the client retries on CONCURRENT_TRANSACTIONS). **AddPartitionsToTxn** /
//!   **AddOffsetsToTxn** open the transaction or add to it; with `verify_only` (KIP-890 part 1)
//!   a partition leader asks whether a partition is in the ongoing transaction. **EndTxn**
//!   writes PrepareCommit / PrepareAbort and answers; with `transaction.version` 2 (KIP-890
//!   part 2) it also bumps the epoch, so a late EndTxn or produce of the finished transaction is
//!   fenced (KAFKA-17754). See [`transaction_manager`] for every rule and error.
//! * **Markers.** Once Prepare* is committed, the coordinator writes a COMMIT / ABORT marker
//!   into each partition of the transaction through its leader (WriteTxnMarkers, carrying the
//!   coordinator epoch), retrying until each partition has it, then writes Complete*
//!   ([`marker_channel`]).
//! * **Timeouts.** Every `transaction.abort.timed.out.transaction.cleanup.interval.ms`,
//!   transactions Ongoing for longer than their `transaction.timeout.ms` are aborted with an
//!   epoch bump (KAFKA-6119).
//! * **Failover.** A new leader of a `__transaction_state` partition replays its log; every
//!   transaction found in Prepare* gets its markers sent again and is completed
//!   (TransactionStateManager.scala 540-560); Ongoing ones go on, under the timeout. The old
//!   coordinator drops its state and answers NOT_COORDINATOR; its markers are fenced at the
//!   partitions by the coordinator epoch.
//!
//! # Where this differs from Kafka
//! * A state write waits for its commit without a time limit (Kafka's append times out after
//!   `request.timeout.ms` and answers COORDINATOR_NOT_AVAILABLE while the record may still
//!   commit); the client's own request timeout applies, and a resignation answers
//!   NOT_COORDINATOR.
//! * Ids never expire (`transactional.id.expiration.ms`), so `Dead` is not reached.
//! * A version-2 EndTxn(abort) with no open transaction writes Empty at epoch+1 rather than
//!   PrepareAbort / CompleteAbort with no partitions.
//!
//! [`coordinator_runtime`]: crate::coordinator_runtime

pub mod marker_channel;
pub mod transaction_manager;
pub mod transaction_metadata;

#[cfg(test)]
mod tests;

use crate::config::{BrokerConfig, TopicConfig};
use crate::coordinator_runtime::CoordinatorRuntime;
use crate::group_coordinator::{java_string_hash_code, kafka_abs};
use crate::log::CleanupPolicy;
use crate::protocol::{ErrorCode, Message};
use crate::types::{CorrelationId, NodeId, TopicPartition};
pub use marker_channel::{MarkerChannel, MarkerJob, MarkerOutcome};
use std::collections::BTreeSet;
pub use transaction_manager::{Decision, ProducerReply};
pub use transaction_metadata::{TransactionMetadata, TxnRecord, TxnShard, TxnState};

/// The internal topic holding transaction state.
pub const TRANSACTION_STATE_TOPIC: &str = "__transaction_state";

/// The `__transaction_state` partition holding `transactional_id`'s state:
/// `Utils.abs(transactionalId.hashCode()) % num_partitions` (TransactionStateManager.scala
/// `partitionFor`). Panics if `num_partitions < 1` (the config refuses it).
pub fn partition_for(transactional_id: &str, num_partitions: i32) -> TopicPartition {
    assert!(
        num_partitions >= 1,
        "transaction.state.log.num.partitions {num_partitions}"
    );
    TopicPartition::new(
        TRANSACTION_STATE_TOPIC,
        kafka_abs(java_string_hash_code(transactional_id)) % num_partitions,
    )
}

/// The topic config Kafka creates `__transaction_state` with
/// (`TransactionLog.transactionTopicConfigs`): compacted, with
/// `min.insync.replicas = transaction.state.log.min.isr`.
pub fn internal_topic_config(config: &BrokerConfig) -> TopicConfig {
    TopicConfig {
        cleanup_policy: Some(CleanupPolicy {
            delete: false,
            compact: true,
        }),
        min_insync_replicas: Some(config.transaction_state_log_min_isr),
        ..TopicConfig::default()
    }
}

/// The broker settings of the transaction coordinator (Kafka's `TransactionConfig`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnConfig {
    /// `transaction.state.log.num.partitions` (50).
    pub num_partitions: i32,
    /// `offsets.topic.num.partitions` (50): where AddOffsetsToTxn finds the group's partition.
    pub offsets_num_partitions: i32,
    /// `transaction.max.timeout.ms` (900000).
    pub max_timeout_ms: u64,
    /// `transaction.abort.timed.out.transaction.cleanup.interval.ms` (10000).
    pub abort_cleanup_interval_ms: u64,
    /// `transaction.version` (2): 2 bumps the epoch at every EndTxn (KIP-890 part 2).
    pub transaction_version: i16,
    /// `sim.txn.producer-fencing` (true): false neither bumps nor checks producer epochs.
    pub producer_fencing: bool,
}

impl TxnConfig {
    /// The settings from a broker's config.
    pub fn from_broker(c: &BrokerConfig) -> TxnConfig {
        TxnConfig {
            num_partitions: c.transaction_state_log_num_partitions,
            offsets_num_partitions: c.offsets_topic_num_partitions,
            max_timeout_ms: c.transaction_max_timeout_ms,
            abort_cleanup_interval_ms: c
                .transaction_abort_timed_out_transaction_cleanup_interval_ms,
            transaction_version: c.transaction_version,
            producer_fencing: c.txn_producer_fencing,
        }
    }
}

impl Default for TxnConfig {
    fn default() -> Self {
        TxnConfig::from_broker(&BrokerConfig::default())
    }
}

/// Whom a state write answers once it commits, and with what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxnReply {
    /// Nobody: the coordinator's own write (markers done, a timeout abort).
    None,
    /// An InitProducerIdResponse to `to`, with `reply` once committed.
    InitProducerId {
        to: NodeId,
        corr: CorrelationId,
        reply: ProducerReply,
    },
    /// An AddPartitionsToTxnResponse to `to`, one (equal) error per partition of the request.
    AddPartitionsToTxn {
        to: NodeId,
        corr: CorrelationId,
        partitions: Vec<TopicPartition>,
    },
    /// An AddOffsetsToTxnResponse to `to`.
    AddOffsetsToTxn { to: NodeId, corr: CorrelationId },
    /// An EndTxnResponse to `to`, with `reply` once committed (on an error, the reply's
    /// producer id and epoch with that error).
    EndTxn {
        to: NodeId,
        corr: CorrelationId,
        reply: ProducerReply,
    },
}

impl TxnReply {
    /// The correlation id of the request answered, if anyone waits.
    pub fn corr(&self) -> Option<CorrelationId> {
        match self {
            TxnReply::None => None,
            TxnReply::InitProducerId { corr, .. }
            | TxnReply::AddPartitionsToTxn { corr, .. }
            | TxnReply::AddOffsetsToTxn { corr, .. }
            | TxnReply::EndTxn { corr, .. } => Some(*corr),
        }
    }

    /// The client the answer goes to, if anyone waits.
    pub fn client(&self) -> Option<NodeId> {
        match self {
            TxnReply::None => None,
            TxnReply::InitProducerId { to, .. }
            | TxnReply::AddPartitionsToTxn { to, .. }
            | TxnReply::AddOffsetsToTxn { to, .. }
            | TxnReply::EndTxn { to, .. } => Some(*to),
        }
    }

    /// The answer to send once the write ends with `error` (NONE: committed; the reply decided
    /// at the request is then sent as it is), if anyone waits.
    pub fn message(&self, error: ErrorCode) -> Option<(NodeId, Message)> {
        let pick = |r: &ProducerReply| {
            if error == ErrorCode::None {
                *r
            } else {
                ProducerReply::error(error)
            }
        };
        Some(match self {
            TxnReply::None => return None,
            TxnReply::InitProducerId { to, corr, reply } => {
                let r = pick(reply);
                (
                    *to,
                    Message::InitProducerIdResponse {
                        corr: *corr,
                        error: r.error,
                        producer_id: r.producer_id,
                        producer_epoch: r.producer_epoch,
                    },
                )
            }
            TxnReply::AddPartitionsToTxn {
                to,
                corr,
                partitions,
            } => (
                *to,
                Message::AddPartitionsToTxnResponse {
                    corr: *corr,
                    results: partitions.iter().map(|tp| (tp.clone(), error)).collect(),
                },
            ),
            TxnReply::AddOffsetsToTxn { to, corr } => {
                (*to, Message::AddOffsetsToTxnResponse { corr: *corr, error })
            }
            TxnReply::EndTxn { to, corr, reply } => {
                let r = if error == ErrorCode::None {
                    *reply
                } else {
                    ProducerReply { error, ..*reply }
                };
                (
                    *to,
                    Message::EndTxnResponse {
                        corr: *corr,
                        error: r.error,
                        producer_id: r.producer_id,
                        producer_epoch: r.producer_epoch,
                    },
                )
            }
        })
    }
}

/// A state write waiting for its commit (the runtime's token): the new state, the state it
/// left, why, and whom to answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnWrite {
    /// The `__transaction_state` partition written.
    pub txn_tp: TopicPartition,
    /// The id's state before the write (for the `txn-state-changed` event).
    pub from: TxnState,
    /// The state written.
    pub metadata: TransactionMetadata,
    /// The event's reason (`init-producer-id`, `add-partitions`, `add-offsets`, `end-txn`,
    /// `fence`, `timeout`, `markers-written`).
    pub reason: &'static str,
    /// Whom to answer once the write commits (or fails).
    pub reply: TxnReply,
}

/// The transaction state runtime: one [`TxnShard`] per `__transaction_state` partition this
/// broker leads.
pub type TxnRuntime = CoordinatorRuntime<TxnShard, TxnWrite>;

/// The error a transaction request is answered with when the leader refused its state write
/// with `error` (TransactionStateManager.scala `appendTransactionToLog`): lack of replicas, an
/// unknown partition or a timeout → COORDINATOR_NOT_AVAILABLE; not the leader →
/// NOT_COORDINATOR; anything else as it is.
pub fn error_for_append_error(error: ErrorCode) -> ErrorCode {
    match error {
        ErrorCode::NotEnoughReplicas
        | ErrorCode::NotEnoughReplicasAfterAppend
        | ErrorCode::UnknownTopicOrPartition
        | ErrorCode::RequestTimedOut => ErrorCode::CoordinatorNotAvailable,
        ErrorCode::NotLeaderOrFollower | ErrorCode::KafkaStorageError => ErrorCode::NotCoordinator,
        e => e,
    }
}

/// The transaction coordinator of one broker: the state runtime, the marker channel, and what
/// waits for a retry.
#[derive(Default)]
pub struct TransactionCoordinator {
    /// The broker's transaction settings.
    pub config: TxnConfig,
    /// Transaction states, one shard per `__transaction_state` partition led.
    pub runtime: TxnRuntime,
    /// Markers being written.
    pub markers: MarkerChannel,
    /// Transactions whose markers are all written but whose Complete* write the leader
    /// refused: written again on the next tick, as (partition, transactional id).
    pub complete_retry: BTreeSet<(TopicPartition, String)>,
    /// When timed-out transactions were last looked for, ms.
    pub last_abort_check_ms: u64,
}

impl TransactionCoordinator {
    /// A coordinator with `config`, hosting nothing.
    pub fn new(config: TxnConfig) -> TransactionCoordinator {
        TransactionCoordinator {
            config,
            ..TransactionCoordinator::default()
        }
    }

    /// The partition of `transactional_id`.
    pub fn partition_for(&self, transactional_id: &str) -> TopicPartition {
        partition_for(transactional_id, self.config.num_partitions)
    }

    /// The id's latest state (committed or not) and whether a write for it waits for its
    /// commit (Kafka's `pendingState`), or NOT_COORDINATOR when its partition is not loaded.
    pub fn lookup(
        &self,
        transactional_id: &str,
    ) -> Result<(Option<&TransactionMetadata>, bool), ErrorCode> {
        let tp = self.partition_for(transactional_id);
        let latest = self
            .runtime
            .latest(&tp)
            .map_err(|_| ErrorCode::NotCoordinator)?;
        let committed = self
            .runtime
            .committed(&tp)
            .map_err(|_| ErrorCode::NotCoordinator)?;
        let m = latest.get(transactional_id);
        Ok((m, m != committed.get(transactional_id)))
    }

    /// The marker job for a committed Prepare* state `m` of `txn_tp`, if it has partitions.
    pub fn marker_job(
        &self,
        txn_tp: &TopicPartition,
        m: &TransactionMetadata,
    ) -> Option<MarkerJob> {
        assert!(m.state.is_prepare(), "markers for {}", m.state.name());
        if m.partitions.is_empty() {
            return None;
        }
        let coordinator_epoch = self.runtime.leader_epoch(txn_tp).expect("loaded").0;
        Some(MarkerJob {
            txn_tp: txn_tp.clone(),
            transactional_id: m.transactional_id.clone(),
            producer_id: m.producer_id,
            producer_epoch: m.producer_epoch,
            result: if m.state == TxnState::PrepareCommit {
                crate::protocol::TransactionResult::Commit
            } else {
                crate::protocol::TransactionResult::Abort
            },
            coordinator_epoch,
            remaining: m.partitions.clone(),
            in_flight: BTreeSet::new(),
            seq: 0,
        })
    }
}
