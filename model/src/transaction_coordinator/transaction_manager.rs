//! The transaction coordinator's decisions (Kafka's `TransactionCoordinator.scala`): for each
//! request, given the id's current metadata and whether a write for it is still waiting for its
//! commit, either an answer now or a new state to write to `__transaction_state`, with the
//! answer to give once that state is committed. Plain functions of their arguments, so every
//! rule is tested without a broker; the hosting broker (`broker/txn_coordinator.rs`) carries the
//! writes out through the coordinator runtime.
//!
//! A write for an id that has not committed yet is Kafka's `pendingState`: every other request
//! for the id meanwhile gets CONCURRENT_TRANSACTIONS (TC:150, 420, 530).

use super::transaction_metadata::{is_epoch_exhausted, TransactionMetadata, TxnState};
use super::TxnConfig;
use crate::group_coordinator;
use crate::protocol::ErrorCode;
use crate::types::{ProducerEpoch, ProducerId, TopicPartition};

/// What a request leads to: an answer now, or a state to write and the answer to give once it
/// is committed (an append the leader refuses is answered with the append's error instead).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision<R> {
    /// Answer now; nothing changes.
    Reply(R),
    /// Write `metadata` (the id's new state); answer `on_commit` once it is committed.
    /// `reason` names the transition in the `txn-state-changed` event.
    Write {
        metadata: TransactionMetadata,
        reason: &'static str,
        on_commit: R,
    },
}

/// The answer of an InitProducerId or EndTxn: an error and the producer id and epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProducerReply {
    /// NONE or the request's error.
    pub error: ErrorCode,
    /// The producer id to use (-1 with an error of InitProducerId).
    pub producer_id: ProducerId,
    /// The producer epoch to use (-1 with an error of InitProducerId).
    pub producer_epoch: ProducerEpoch,
}

impl ProducerReply {
    /// `error` with no producer id (-1 / -1).
    pub fn error(error: ErrorCode) -> ProducerReply {
        ProducerReply {
            error,
            producer_id: ProducerId::NONE,
            producer_epoch: ProducerEpoch(-1),
        }
    }

    fn ok(m: &TransactionMetadata) -> ProducerReply {
        ProducerReply {
            error: ErrorCode::None,
            producer_id: m.producer_id,
            producer_epoch: m.producer_epoch,
        }
    }
}

/// The metadata with `m`'s epoch bumped, or with a new producer id (epoch 0) when the epoch is
/// exhausted (TransactionMetadata.scala `prepareIncrementProducerEpoch` /
/// `prepareProducerIdRotation`). Without producer fencing only a new id's epoch moves (-1 → 0).
fn bump_or_rotate(
    config: &TxnConfig,
    m: &TransactionMetadata,
    alloc: &mut dyn FnMut() -> ProducerId,
) -> TransactionMetadata {
    let mut n = m.clone();
    if m.producer_epoch.0 < 0 {
        n.producer_epoch = ProducerEpoch(0);
    } else if !config.producer_fencing {
        // The legacy switch: the epoch stays.
    } else if is_epoch_exhausted(m.producer_epoch) {
        n.last_producer_id = m.producer_id;
        n.last_producer_epoch = m.producer_epoch;
        n.producer_id = alloc();
        n.producer_epoch = ProducerEpoch(0);
        assert_ne!(
            n.producer_id, m.producer_id,
            "a rotation gives a new producer id"
        );
    } else {
        n = n.bumped();
    }
    n
}

/// InitProducerId with a `transactional.id` (TC:109-280, B1): a new id gets a new producer id
/// at epoch 0; Empty and Complete* get epoch+1 (a new producer id once the epoch is exhausted),
/// answered once written; Ongoing is fenced: PrepareAbort at epoch+1 is written and
/// CONCURRENT_TRANSACTIONS answered (the client retries and gets a further bump); Prepare* or a
/// pending write → CONCURRENT_TRANSACTIONS. `expected` are the caller's current producer id and
/// epoch (KIP-360; -1 / -1 for none): another id → PRODUCER_FENCED; its previous epoch (a retry,
/// or a producer whose transaction a timeout aborted) gets the current id and epoch unchanged;
/// any other epoch → PRODUCER_FENCED. A bump for a new instance (none expected) records no
/// previous epoch (-1), so the instance it fenced cannot retry its way back in. A timeout of 0 or above `transaction.max.timeout.ms` →
/// INVALID_TRANSACTION_TIMEOUT; an empty id → INVALID_REQUEST.
#[allow(clippy::too_many_arguments)]
pub fn init_producer_id(
    config: &TxnConfig,
    current: Option<&TransactionMetadata>,
    pending: bool,
    transactional_id: &str,
    transaction_timeout_ms: u64,
    expected: (ProducerId, ProducerEpoch),
    now_ms: u64,
    alloc: &mut dyn FnMut() -> ProducerId,
) -> Decision<ProducerReply> {
    if transactional_id.is_empty() {
        return Decision::Reply(ProducerReply::error(ErrorCode::InvalidRequest));
    }
    if transaction_timeout_ms == 0 || transaction_timeout_ms > config.max_timeout_ms {
        return Decision::Reply(ProducerReply::error(ErrorCode::InvalidTransactionTimeout));
    }
    let fresh;
    let m = match current {
        Some(m) => m,
        None => {
            fresh =
                TransactionMetadata::new(transactional_id, alloc(), transaction_timeout_ms, now_ms);
            &fresh
        }
    };
    if pending {
        return Decision::Reply(ProducerReply::error(ErrorCode::ConcurrentTransactions));
    }
    let (expected_id, expected_epoch) = expected;
    let has_expected = expected_id != ProducerId::NONE;
    if config.producer_fencing && has_expected {
        let known_id = m.producer_epoch.0 < 0
            || expected_id == m.producer_id
            || (m.last_producer_id != ProducerId::NONE && expected_id == m.last_producer_id);
        if !known_id {
            return Decision::Reply(ProducerReply::error(ErrorCode::ProducerFenced));
        }
    }
    match m.state {
        TxnState::PrepareCommit | TxnState::PrepareAbort => {
            Decision::Reply(ProducerReply::error(ErrorCode::ConcurrentTransactions))
        }
        TxnState::Empty | TxnState::CompleteCommit | TxnState::CompleteAbort => {
            if config.producer_fencing && has_expected && m.producer_epoch.0 >= 0 {
                let current_epoch =
                    expected_id == m.producer_id && expected_epoch == m.producer_epoch;
                let previous_epoch = expected_epoch == m.last_producer_epoch
                    && m.last_producer_epoch.0 >= 0
                    || (expected_id == m.last_producer_id
                        && m.last_producer_id != ProducerId::NONE);
                if expected_epoch.0 >= 0 && !current_epoch {
                    return if previous_epoch {
                        Decision::Reply(ProducerReply::ok(m))
                    } else {
                        Decision::Reply(ProducerReply::error(ErrorCode::ProducerFenced))
                    };
                }
            }
            let mut n = bump_or_rotate(config, m, alloc).transit(TxnState::Empty, now_ms);
            if !has_expected && config.producer_fencing {
                // A new instance (no expected id and epoch) leaves no previous epoch behind:
                // the instance it fences must not pass for a retry at that epoch, neither here
                // (KIP-360) nor in EndTxn under transaction.version 2
                // (TransactionMetadata.scala `prepareIncrementProducerEpoch`: "a new producer
                // calling InitProducerId would have caused the last epoch to be set to -1";
                // `prepareProducerIdRotation` likewise).
                n.last_producer_epoch = ProducerEpoch(-1);
            }
            n.transaction_timeout_ms = transaction_timeout_ms;
            n.partitions.clear();
            n.txn_start_timestamp_ms = -1;
            n.next_producer_id = ProducerId::NONE;
            let on_commit = ProducerReply::ok(&n);
            Decision::Write {
                metadata: n,
                reason: "init-producer-id",
                on_commit,
            }
        }
        TxnState::Ongoing => {
            // PrepareEpochFence: abort the previous epoch's transaction at epoch+1 (never
            // logged as such; the log gets the PrepareAbort).
            let fence = m.transit(TxnState::PrepareEpochFence, now_ms);
            let bumped = if config.producer_fencing && fence.producer_epoch.0 < i16::MAX {
                fence.bumped()
            } else {
                fence
            };
            let n = bumped.transit(TxnState::PrepareAbort, now_ms);
            Decision::Write {
                metadata: n,
                reason: "fence",
                on_commit: ProducerReply::error(ErrorCode::ConcurrentTransactions),
            }
        }
        TxnState::PrepareEpochFence | TxnState::Dead => {
            unreachable!("{transactional_id}: {} is never stored", m.state.name())
        }
    }
}

/// The checks AddPartitionsToTxn, AddOffsetsToTxn and their verification share (TC:394-420):
/// an unknown id or another producer id → INVALID_PRODUCER_ID_MAPPING; another epoch →
/// PRODUCER_FENCED (unless producer fencing is off); a pending write or Prepare* →
/// CONCURRENT_TRANSACTIONS.
fn check_producer<'m>(
    config: &TxnConfig,
    current: Option<&'m TransactionMetadata>,
    pending: bool,
    producer_id: ProducerId,
    producer_epoch: ProducerEpoch,
) -> Result<&'m TransactionMetadata, ErrorCode> {
    let m = current.ok_or(ErrorCode::InvalidProducerIdMapping)?;
    if producer_id != m.producer_id {
        return Err(ErrorCode::InvalidProducerIdMapping);
    }
    if config.producer_fencing && producer_epoch != m.producer_epoch {
        return Err(ErrorCode::ProducerFenced);
    }
    if pending || m.state.is_prepare() {
        return Err(ErrorCode::ConcurrentTransactions);
    }
    Ok(m)
}

/// AddPartitionsToTxn (TC:394-449) and AddOffsetsToTxn (the group's `__consumer_offsets`
/// partition, KafkaApis.scala:2624): after [`check_producer`], partitions already in an
/// Ongoing transaction → NONE at once; otherwise Ongoing with the partitions added is written
/// (from Empty or Complete* this opens a new transaction, started now) and NONE answered once
/// committed.
#[allow(clippy::too_many_arguments)]
pub fn add_partitions(
    config: &TxnConfig,
    current: Option<&TransactionMetadata>,
    pending: bool,
    producer_id: ProducerId,
    producer_epoch: ProducerEpoch,
    partitions: &[TopicPartition],
    reason: &'static str,
    now_ms: u64,
) -> Decision<ErrorCode> {
    let m = match check_producer(config, current, pending, producer_id, producer_epoch) {
        Ok(m) => m,
        Err(e) => return Decision::Reply(e),
    };
    let all_in = partitions.iter().all(|tp| m.partitions.contains(tp));
    if all_in && (m.state == TxnState::Ongoing || partitions.is_empty()) {
        return Decision::Reply(ErrorCode::None);
    }
    let mut n = m.transit(TxnState::Ongoing, now_ms);
    if m.state != TxnState::Ongoing {
        n.txn_start_timestamp_ms = now_ms as i64;
        n.partitions.clear();
    }
    n.partitions.extend(partitions.iter().cloned());
    Decision::Write {
        metadata: n,
        reason,
        on_commit: ErrorCode::None,
    }
}

/// AddOffsetsToTxn: [`add_partitions`] with the `__consumer_offsets` partition of `group_id`.
#[allow(clippy::too_many_arguments)]
pub fn add_offsets(
    config: &TxnConfig,
    current: Option<&TransactionMetadata>,
    pending: bool,
    producer_id: ProducerId,
    producer_epoch: ProducerEpoch,
    group_id: &str,
    now_ms: u64,
) -> Decision<ErrorCode> {
    let tp = group_coordinator::partition_for(group_id, config.offsets_num_partitions);
    add_partitions(
        config,
        current,
        pending,
        producer_id,
        producer_epoch,
        &[tp],
        "add-offsets",
        now_ms,
    )
}

/// AddPartitionsToTxn with `verify_only` (KIP-890 part 1, TC `handleVerifyPartitionsInTransaction`):
/// after [`check_producer`] (its error for every partition), NONE for each partition in the
/// Ongoing transaction and TRANSACTION_ABORTABLE for the others. Changes nothing.
pub fn verify_partitions(
    config: &TxnConfig,
    current: Option<&TransactionMetadata>,
    pending: bool,
    producer_id: ProducerId,
    producer_epoch: ProducerEpoch,
    partitions: &[TopicPartition],
) -> Vec<(TopicPartition, ErrorCode)> {
    match check_producer(config, current, pending, producer_id, producer_epoch) {
        Err(e) => partitions.iter().map(|tp| (tp.clone(), e)).collect(),
        Ok(m) => partitions
            .iter()
            .map(|tp| {
                let e = if m.state == TxnState::Ongoing && m.partitions.contains(tp) {
                    ErrorCode::None
                } else {
                    ErrorCode::TransactionAbortable
                };
                (tp.clone(), e)
            })
            .collect(),
    }
}

/// EndTxn (TC:489-735; KIP-890 part 2 with `transaction.version` 2).
///
/// * Unknown id or another producer id → INVALID_PRODUCER_ID_MAPPING.
/// * The epoch must be the current one; with version 2 a retry at the previous epoch (the one
///   before EndTxn bumped it) is accepted in Prepare* and Complete*; anything else →
///   PRODUCER_FENCED. A pending write → CONCURRENT_TRANSACTIONS.
/// * Ongoing → PrepareCommit / PrepareAbort written (version 2: at epoch+1, returned; a new
///   producer id follows at completion once the epoch is exhausted); NONE once committed, the
///   markers follow.
/// * Prepare* with the same result → CONCURRENT_TRANSACTIONS; the other result →
///   INVALID_TXN_STATE.
/// * Complete* with the same result: version 1 → NONE (a retry); version 2 → NONE for a retry,
///   else (a new, empty transaction) an abort bumps the epoch (written as Empty, see below) and
///   a commit is INVALID_TXN_STATE. The other result → INVALID_TXN_STATE, except that version
///   2 lets the current epoch abort (empty) after CompleteCommit.
/// * Empty: version 2 abort → the epoch is bumped; else INVALID_TXN_STATE.
///
/// Where this differs from Kafka: an empty abort of version 2 is written as Empty at epoch+1
/// instead of PrepareAbort → CompleteAbort with no partitions (the transition table has no
/// Empty → PrepareAbort); the effect for every producer is the same.
#[allow(clippy::too_many_arguments)]
pub fn end_txn(
    config: &TxnConfig,
    current: Option<&TransactionMetadata>,
    pending: bool,
    producer_id: ProducerId,
    producer_epoch: ProducerEpoch,
    committed: bool,
    now_ms: u64,
    alloc: &mut dyn FnMut() -> ProducerId,
) -> Decision<ProducerReply> {
    let echo = |error| ProducerReply {
        error,
        producer_id,
        producer_epoch,
    };
    let Some(m) = current else {
        return Decision::Reply(echo(ErrorCode::InvalidProducerIdMapping));
    };
    let tv2 = config.transaction_version >= 2 && config.producer_fencing;
    let retry_on_bump = tv2
        && producer_id == m.producer_id
        && m.last_producer_epoch.0 >= 0
        && producer_epoch == m.last_producer_epoch
        && producer_epoch != m.producer_epoch;
    let retry_on_overflow = tv2
        && m.last_producer_id != ProducerId::NONE
        && producer_id == m.last_producer_id
        && producer_epoch == m.last_producer_epoch;
    let is_retry = retry_on_bump || retry_on_overflow;
    // During Prepare* of an exhausted epoch, the client already holds the next producer id.
    let next_id = m.next_producer_id != ProducerId::NONE && producer_id == m.next_producer_id;
    if producer_id != m.producer_id && !retry_on_overflow && !next_id {
        return Decision::Reply(echo(ErrorCode::InvalidProducerIdMapping));
    }
    if config.producer_fencing && !next_id {
        let settled = m.state.is_prepare() || m.state.is_complete();
        let valid = producer_epoch == m.producer_epoch && !retry_on_overflow
            || (tv2 && is_retry && settled);
        if !valid {
            return Decision::Reply(echo(ErrorCode::ProducerFenced));
        }
    }
    if pending {
        return Decision::Reply(echo(ErrorCode::ConcurrentTransactions));
    }
    let current_reply = ProducerReply {
        error: ErrorCode::None,
        producer_id: if tv2 { m.producer_id } else { producer_id },
        producer_epoch: if tv2 {
            m.producer_epoch
        } else {
            producer_epoch
        },
    };
    let invalid = Decision::Reply(echo(ErrorCode::InvalidTxnState));
    // A version-2 abort with nothing open: the epoch moves on, nothing to mark.
    let empty_abort = |alloc: &mut dyn FnMut() -> ProducerId| {
        let mut n = bump_or_rotate(config, m, alloc).transit(TxnState::Empty, now_ms);
        n.partitions.clear();
        n.txn_start_timestamp_ms = -1;
        let on_commit = ProducerReply::ok(&n);
        Decision::Write {
            metadata: n,
            reason: "end-txn",
            on_commit,
        }
    };
    match (m.state, committed) {
        (TxnState::Ongoing, _) => {
            let to = if committed {
                TxnState::PrepareCommit
            } else {
                TxnState::PrepareAbort
            };
            let mut n = m.transit(to, now_ms);
            if tv2 {
                if is_epoch_exhausted(m.producer_epoch) {
                    n.next_producer_id = alloc();
                }
                n = n.bumped();
            }
            let on_commit = if !tv2 {
                current_reply
            } else if n.next_producer_id != ProducerId::NONE {
                ProducerReply {
                    error: ErrorCode::None,
                    producer_id: n.next_producer_id,
                    producer_epoch: ProducerEpoch(0),
                }
            } else {
                ProducerReply::ok(&n)
            };
            Decision::Write {
                metadata: n,
                reason: "end-txn",
                on_commit,
            }
        }
        (TxnState::PrepareCommit, true) | (TxnState::PrepareAbort, false) => {
            Decision::Reply(echo(ErrorCode::ConcurrentTransactions))
        }
        (TxnState::PrepareCommit, false) | (TxnState::PrepareAbort, true) => invalid,
        (TxnState::CompleteCommit, true) | (TxnState::CompleteAbort, false) => {
            if !tv2 || is_retry {
                Decision::Reply(current_reply)
            } else if !committed {
                empty_abort(alloc)
            } else {
                invalid
            }
        }
        (TxnState::CompleteCommit, false) if tv2 && !is_retry => empty_abort(alloc),
        (TxnState::Empty, false) if tv2 => empty_abort(alloc),
        (TxnState::CompleteCommit, false)
        | (TxnState::CompleteAbort, true)
        | (TxnState::Empty, _) => invalid,
        (TxnState::PrepareEpochFence | TxnState::Dead, _) => {
            unreachable!("{}: {} is never stored", m.transactional_id, m.state.name())
        }
    }
}

/// The abort of a transaction Ongoing for longer than its timeout (TC:759-795,
/// `abortTimedOutTransactions`): PrepareAbort at epoch+1 (KAFKA-6119, so the producer's next
/// request is fenced), or at the same epoch without producer fencing. `None` when `m` is not
/// Ongoing or not yet timed out (`txn_start + timeout < now`).
pub fn timed_out_abort(
    config: &TxnConfig,
    m: &TransactionMetadata,
    now_ms: u64,
) -> Option<TransactionMetadata> {
    if m.state != TxnState::Ongoing
        || m.txn_start_timestamp_ms + m.transaction_timeout_ms as i64 >= now_ms as i64
    {
        return None;
    }
    let fence = m.transit(TxnState::PrepareEpochFence, now_ms);
    let bumped = if config.producer_fencing && fence.producer_epoch.0 < i16::MAX {
        fence.bumped()
    } else {
        fence
    };
    Some(bumped.transit(TxnState::PrepareAbort, now_ms))
}

/// The state written once every partition has its marker: CompleteCommit / CompleteAbort with
/// no partitions, switching to the next producer id if the epoch was exhausted
/// (`TransactionMetadata.prepareComplete`).
pub fn complete(m: &TransactionMetadata, now_ms: u64) -> TransactionMetadata {
    let to = match m.state {
        TxnState::PrepareCommit => TxnState::CompleteCommit,
        TxnState::PrepareAbort => TxnState::CompleteAbort,
        s => panic!("{}: completing from {}", m.transactional_id, s.name()),
    };
    let mut n = m.transit(to, now_ms);
    n.partitions.clear();
    if n.next_producer_id != ProducerId::NONE {
        n.last_producer_id = n.producer_id;
        n.producer_id = n.next_producer_id;
        n.producer_epoch = ProducerEpoch(0);
        n.next_producer_id = ProducerId::NONE;
    }
    n
}
