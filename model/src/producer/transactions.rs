//! The transactional half of Kafka's `TransactionManager` (KIP-98, KIP-360, KIP-890), for a
//! producer with a `transactional.id`, driven by the workload's `transaction` key.
//!
//! # The client's protocol, as `KafkaProducer` runs it
//! 1. **`initTransactions()`**: FindCoordinator (key type transaction) to any broker, then
//!    InitProducerId with the `transactional.id` and `transaction.timeout.ms` to the
//!    coordinator. The coordinator fences every earlier instance (epoch + 1) and aborts or
//!    completes the previous epoch's open transaction; CONCURRENT_TRANSACTIONS while it does,
//!    so the client retries after `retry.backoff.ms`.
//! 2. **`beginTransaction()`** is local. Every `send` to a partition not yet in the transaction
//!    first needs AddPartitionsToTxn (`TransactionManager.maybeAddPartition`): the batches of
//!    such a partition wait in the accumulator until the coordinator acknowledges it
//!    (`isSendToPartitionAllowed`). Batches carry the transactional attribute bit.
//! 3. **`commitTransaction()`** flushes (every batch is sent at once, linger or not), waits for
//!    every send's outcome, then sends EndTxn(commit). A send that failed puts the transaction
//!    in the *abortable* error state: commit is refused and the application aborts instead.
//!    **`abortTransaction()`** drops the batches never sent (they fail with
//!    `TransactionAbortedException`), waits for those in flight, then sends EndTxn(abort).
//!    EndTxn is retried on NOT_COORDINATOR, COORDINATOR_NOT_AVAILABLE,
//!    COORDINATOR_LOAD_IN_PROGRESS, CONCURRENT_TRANSACTIONS and timeouts. With
//!    `transaction.version = 2` (KIP-890 part 2) the answer carries the bumped epoch, under
//!    which the next transaction's sequences start again at 0.
//! 4. **Fatal errors** (PRODUCER_FENCED, INVALID_PRODUCER_EPOCH: a newer instance exists, or the
//!    coordinator aborted the transaction on `transaction.timeout.ms` with an epoch bump): the
//!    producer instance is unusable. The workload then does what an application does: it
//!    closes it and creates a new one with the same `transactional.id`, i.e. runs
//!    `initTransactions()` again (Jepsen's Kafka client reopens its producer the same way).
//!
//! # Driven by a processor (`sendOffsetsToTransaction`, KIP-447)
//! A producer [`ProducerClient::driven`] by a processor runs no transactions of its own: the
//! processor calls [`ProducerClient::begin_transaction`], sends its outputs with
//! [`ProducerClient::send_record`], then [`ProducerClient::send_offsets_to_transaction`] with
//! its input positions and the consumer's group metadata, and
//! [`ProducerClient::commit_transaction`] (or [`ProducerClient::abort_transaction`]). The
//! offsets go as Kafka's `TransactionManager` sends them: AddOffsetsToTxn to the transaction
//! coordinator (which adds the group's `__consumer_offsets` partition to the transaction),
//! FindCoordinator for the group, then TxnOffsetCommit to the group coordinator with the
//! member id, generation and instance id (fenced like an OffsetCommit: ILLEGAL_GENERATION,
//! UNKNOWN_MEMBER_ID and FENCED_INSTANCE_ID make the transaction abortable, as Kafka's
//! `CommitFailedException`; PRODUCER_FENCED / INVALID_PRODUCER_EPOCH are fatal), and only then
//! EndTxn.
//!
//! # The history
//! One Jepsen `txn` operation per transaction ([`OpValue::Txn`]): the invoke at
//! `beginTransaction`, the completion with every `send` micro-operation (its offset when the
//! produce was acknowledged): `ok` when EndTxn(commit) was acknowledged; `fail` when the
//! transaction was aborted (by the application, after an abortable error, or because the
//! instance was fenced before it sent a commit: the coordinator that fenced it aborted the
//! transaction); `info` when a commit was sent but its outcome is unknown (fenced or
//! refused after sending it). A transactional producer records no per-record `send`
//! operations.

use super::{ProducerClient, ProducerTimer};
use crate::effects::Effects;
use crate::event::{ClientOp, OpType, OpValue, TxnMop};
use crate::protocol::*;
use crate::types::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::{BTreeMap, BTreeSet};

/// The backoff before retrying a transaction's first AddPartitionsToTxn answered
/// CONCURRENT_TRANSACTIONS (the previous transaction is still completing), in ms: Kafka's
/// `TransactionManager.ADD_PARTITIONS_RETRY_BACKOFF_MS`, used instead of `retry.backoff.ms`
/// so a producer does not wait 100 ms between back-to-back transactions (KAFKA-5482).
pub const ADD_PARTITIONS_RETRY_BACKOFF_MS: u64 = 20;

/// The workload's `transaction` key (SCENARIOS.md): records per transaction, drawn uniformly
/// from `records_min..=records_max`, and the share of transactions the application aborts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TransactionSpec {
    pub records_min: u32,
    pub records_max: u32,
    /// 0..=100.
    pub abort_percent: u32,
}

impl Default for TransactionSpec {
    /// One to ten records per transaction, none aborted by the application.
    fn default() -> Self {
        TransactionSpec {
            records_min: 1,
            records_max: 10,
            abort_percent: 0,
        }
    }
}

/// Where the client's transaction state machine stands (`TransactionManager.State`; its
/// `FATAL_ERROR` is left at once for a new instance, see the module doc).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum TxnPhase {
    /// No producer id yet: `initTransactions()` is running.
    Uninitialized,
    /// Between transactions.
    Ready,
    InTransaction,
    /// `commitTransaction()` called: flushing, then EndTxn(commit).
    Committing,
    /// `abortTransaction()` called: waiting for in-flight sends, then EndTxn(abort).
    Aborting,
}

/// The one coordinator request a transactional producer has in flight at a time (Kafka's
/// `TransactionManager` sends its requests one by one, in order).
#[derive(Debug, Clone, PartialEq, Eq)]
enum CoordinatorRequest {
    FindCoordinator,
    InitProducerId,
    AddPartitions(Vec<i32>),
    AddOffsets,
    FindGroupCoordinator,
    TxnOffsetCommit,
    EndTxn { commit: bool },
}

/// Kafka's `ConsumerGroupMetadata` as `sendOffsetsToTransaction` takes it (KIP-447): the
/// group, and the member's generation, member id and `group.instance.id`, which the group
/// coordinator checks the TxnOffsetCommit against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerGroupMetadata {
    pub group_id: String,
    /// -1 when the member has no generation.
    pub generation_id: i32,
    /// Empty when the member has none.
    pub member_id: String,
    pub group_instance_id: Option<String>,
}

/// Where `sendOffsetsToTransaction` stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OffsetsStage {
    /// AddOffsetsToTxn to the transaction coordinator next.
    AddOffsets,
    /// TxnOffsetCommit to the group coordinator next.
    Commit,
    Done,
}

/// The offsets `sendOffsetsToTransaction` was called with.
#[derive(Debug, Clone)]
struct PendingOffsets {
    group: ConsumerGroupMetadata,
    offsets: Vec<OffsetCommitPartition>,
    stage: OffsetsStage,
}

/// The transaction the workload has open.
#[derive(Debug, Clone)]
struct OpenTxn {
    op_id: u64,
    /// Records this transaction sends.
    target: u32,
    offered: u32,
    /// The application decided to abort this one (`abort_percent`).
    abort: bool,
    mops: Vec<TxnMop>,
    /// A record's send op id → its index in `mops`.
    by_record: BTreeMap<u64, usize>,
    /// Sends whose outcome is not known yet.
    unresolved: u32,
    /// The abortable error that forces an abort, if any.
    abortable: Option<String>,
    /// EndTxn(commit) was sent at least once: from then on the outcome may be a commit.
    commit_sent: bool,
    /// `sendOffsetsToTransaction`, if called.
    offsets: Option<PendingOffsets>,
}

/// The transactional state of a producer with a `transactional.id`.
#[derive(Debug, Clone)]
pub(super) struct Transactional {
    pub(super) id: String,
    spec: TransactionSpec,
    timeout_ms: u64,
    pub(super) phase: TxnPhase,
    coordinator: Option<BrokerId>,
    in_flight: Option<(CorrelationId, BrokerId, CoordinatorRequest)>,
    /// The coordinator of the group of `sendOffsetsToTransaction`, once found.
    group_coordinator: Option<BrokerId>,
    /// No coordinator request before this time (`retry.backoff.ms` after an error).
    retry_at: Instant,
    /// Partitions (slots, see `ProducerClient::tp`) the coordinator has in the open
    /// transaction.
    added: BTreeSet<i32>,
    open: Option<OpenTxn>,
    /// Take a new epoch (KIP-360 InitProducerId with the current id) before the next
    /// transaction: a sequence error left the partitions' producer state unknown.
    bump_epoch: bool,
    rng: ChaCha8Rng,
}

impl Transactional {
    pub(super) fn new(id: String, spec: TransactionSpec, timeout_ms: u64, seed: u64) -> Self {
        Transactional {
            id,
            spec,
            timeout_ms,
            phase: TxnPhase::Uninitialized,
            coordinator: None,
            in_flight: None,
            group_coordinator: None,
            retry_at: Instant(0),
            added: BTreeSet::new(),
            open: None,
            bump_epoch: false,
            rng: ChaCha8Rng::seed_from_u64(seed ^ 0x7472_616e_7361_6374),
        }
    }

    /// Reseeds the draws of records per transaction and of aborts (one stream per producer,
    /// derived from the run's seed).
    pub(super) fn reseed(&mut self, seed: u64) {
        self.rng = ChaCha8Rng::seed_from_u64(seed ^ 0x7472_616e_7361_6374);
    }

    /// Whether a batch of `partition` may be sent now (`isSendToPartitionAllowed`).
    pub(super) fn may_send(&self, partition: i32) -> bool {
        self.added.contains(&partition)
    }

    /// Whether the open transaction is ending (commit or abort requested), every one of its
    /// sends is resolved and no coordinator request is in flight: EndTxn may go now.
    pub(super) fn ready_to_end(&self) -> bool {
        matches!(self.phase, TxnPhase::Committing | TxnPhase::Aborting)
            && self.in_flight.is_none()
            && self.open.as_ref().is_some_and(|o| o.unresolved == 0)
    }

    /// Whether the accumulator is being flushed (commit: every batch goes at once).
    pub(super) fn flushing(&self) -> bool {
        self.phase == TxnPhase::Committing
    }

    /// A send of the open transaction was handed to the accumulator.
    pub(super) fn record_offered(
        &mut self,
        op_id: u64,
        tp: TopicPartition,
        key: Option<String>,
        value: u64,
    ) {
        let t = self
            .open
            .as_mut()
            .expect("a send only inside a transaction");
        t.by_record.insert(op_id, t.mops.len());
        t.mops.push(TxnMop::Send {
            tp,
            key,
            value,
            offset: None,
        });
        t.unresolved += 1;
    }

    /// A send's outcome; `Err` makes the transaction abortable (`TransactionManager`'s
    /// `transitionToAbortableError` from the batch callback).
    pub(super) fn record_done(&mut self, op_id: u64, result: Result<Option<Offset>, String>) {
        let Some(t) = self.open.as_mut() else { return };
        let Some(&i) = t.by_record.get(&op_id) else {
            return;
        };
        t.by_record.remove(&op_id);
        t.unresolved -= 1;
        match result {
            Ok(offset) => {
                if let TxnMop::Send { offset: o, .. } = &mut t.mops[i] {
                    *o = offset;
                }
            }
            Err(e) => {
                t.abortable.get_or_insert(e);
            }
        }
    }
}

impl ProducerClient {
    /// Whether this producer runs transactions.
    pub(super) fn transactional(&self) -> bool {
        self.txn.is_some()
    }

    /// The workload's tick for a transactional producer: begin a transaction when ready,
    /// offer the next record of the open one, and end it once all its records are offered
    /// (or the workload stops).
    pub(super) fn txn_tick(&mut self, now: Instant, out: &mut Effects<ProducerTimer>) {
        let stopping = now.as_ms() >= self.workload.stop_at_ms;
        let metadata_known = self.metadata_known();
        let t = self.txn.as_mut().expect("transactional");
        match t.phase {
            TxnPhase::Ready if !stopping && metadata_known => {
                let spec = t.spec;
                let target = t
                    .rng
                    .gen_range(spec.records_min..=spec.records_max.max(spec.records_min));
                let abort = t.rng.gen_range(0..100) < spec.abort_percent;
                self.next_op += 1;
                let op_id = self.next_op;
                let t = self.txn.as_mut().expect("transactional");
                t.open = Some(OpenTxn {
                    op_id,
                    target,
                    offered: 0,
                    abort,
                    mops: Vec::new(),
                    by_record: BTreeMap::new(),
                    unresolved: 0,
                    abortable: None,
                    commit_sent: false,
                    offsets: None,
                });
                t.phase = TxnPhase::InTransaction;
                t.added.clear();
                let value = self.txn_op_value(Vec::new());
                out.op(ClientOp {
                    op_type: OpType::Invoke,
                    op_id,
                    value,
                    error: None,
                });
                self.txn_offer(now, out);
            }
            TxnPhase::InTransaction => {
                if stopping {
                    self.txn_end(now, out);
                } else {
                    self.txn_offer(now, out);
                }
            }
            _ => {}
        }
    }

    /// Offers one record of the open transaction; ends the transaction after its last.
    fn txn_offer(&mut self, now: Instant, out: &mut Effects<ProducerTimer>) {
        let t = self.txn.as_ref().expect("transactional");
        let open = t.open.as_ref().expect("open transaction");
        if open.offered < open.target && open.abortable.is_none() && !self.workload_blocked() {
            self.txn.as_mut().unwrap().open.as_mut().unwrap().offered += 1;
            self.offer_record(now, out);
        }
        let open = self.txn.as_ref().unwrap().open.as_ref().unwrap();
        if open.offered >= open.target || open.abortable.is_some() {
            self.txn_end(now, out);
        }
    }

    /// `commitTransaction()` or `abortTransaction()`, as the workload decided (an abortable
    /// error forces the abort).
    fn txn_end(&mut self, now: Instant, out: &mut Effects<ProducerTimer>) {
        let t = self.txn.as_mut().expect("transactional");
        let open = t.open.as_ref().expect("open transaction");
        if open.abort || open.abortable.is_some() {
            t.phase = TxnPhase::Aborting;
            self.drop_unsent_batches(now, out);
        } else {
            t.phase = TxnPhase::Committing;
        }
        self.drain(now, out);
    }

    /// `abortTransaction()`: batches never sent fail with `TransactionAbortedException`
    /// (`RecordAccumulator.abortUndrainedBatches`); those sent once wait for their answer.
    fn drop_unsent_batches(&mut self, now: Instant, out: &mut Effects<ProducerTimer>) {
        let partitions: Vec<i32> = self.batches.keys().copied().collect();
        for p in partitions {
            while self
                .batches
                .get(&p)
                .and_then(|q| q.back())
                .is_some_and(|b| b.attempts == 0)
            {
                let q = self.batches.get_mut(&p).expect("deque");
                let mut batch = q.pop_back().expect("back");
                if q.is_empty() {
                    self.batches.remove(&p);
                }
                batch.indeterminate = false;
                self.complete_failed(
                    now,
                    batch,
                    "TransactionAbortedException: failing batch since transaction was aborted",
                    out,
                );
            }
        }
    }

    /// The coordinator side of the state machine, run at the start of every `drain`:
    /// find the coordinator, take a producer id, add partitions, end the transaction; one
    /// request at a time. Returns whether the sender may go on to send batches.
    pub(super) fn txn_step(&mut self, now: Instant, out: &mut Effects<ProducerTimer>) -> bool {
        let t = self.txn.as_ref().expect("transactional");
        let initialised = t.phase != TxnPhase::Uninitialized;
        if t.in_flight.is_some() {
            return initialised;
        }
        if now < t.retry_at {
            let at = t.retry_at;
            self.wake_at(now, at, out);
            return initialised;
        }
        if t.coordinator.is_none() {
            if self.bootstrap.is_empty() {
                return false;
            }
            let b = self.bootstrap[self.next_bootstrap % self.bootstrap.len()];
            self.next_bootstrap += 1;
            let key = t.id.clone();
            self.txn_request(
                b,
                CoordinatorRequest::FindCoordinator,
                |corr| Message::FindCoordinator {
                    corr,
                    key,
                    key_type: CoordinatorType::Transaction,
                },
                out,
            );
            return self.txn.as_ref().unwrap().phase != TxnPhase::Uninitialized;
        }
        let coordinator = t.coordinator.expect("known");
        match t.phase {
            TxnPhase::Uninitialized => {
                let (producer_id, producer_epoch) = match (t.bump_epoch, self.producer) {
                    (true, Some(p)) => p,
                    _ => (ProducerId::NONE, ProducerEpoch(-1)),
                };
                let (id, timeout) = (t.id.clone(), t.timeout_ms);
                self.txn_request(
                    coordinator,
                    CoordinatorRequest::InitProducerId,
                    |corr| Message::InitProducerId {
                        corr,
                        transactional_id: Some(id),
                        transaction_timeout_ms: timeout,
                        producer_id,
                        producer_epoch,
                    },
                    out,
                );
                false
            }
            TxnPhase::Ready => true,
            TxnPhase::InTransaction | TxnPhase::Committing | TxnPhase::Aborting => {
                let missing: Vec<i32> = self
                    .batches
                    .keys()
                    .copied()
                    .filter(|p| !t.added.contains(p))
                    .collect();
                let aborting = t.phase == TxnPhase::Aborting;
                if !missing.is_empty() && !aborting {
                    let (id, (pid, epoch)) = (t.id.clone(), self.producer.expect("initialised"));
                    let partitions: Vec<TopicPartition> =
                        missing.iter().map(|&p| self.tp(p)).collect();
                    self.txn_request(
                        coordinator,
                        CoordinatorRequest::AddPartitions(missing),
                        |corr| Message::AddPartitionsToTxn {
                            corr,
                            transactional_id: id,
                            producer_id: pid,
                            producer_epoch: epoch,
                            partitions,
                            verify_only: false,
                        },
                        out,
                    );
                    return true;
                }
                let open = t.open.as_ref().expect("open transaction");
                let offsets_stage = open.offsets.as_ref().map(|o| o.stage);
                if !aborting && open.abortable.is_none() {
                    match offsets_stage {
                        Some(OffsetsStage::AddOffsets) => {
                            let o = open.offsets.as_ref().expect("offsets");
                            let group_id = o.group.group_id.clone();
                            let (id, (pid, epoch)) =
                                (t.id.clone(), self.producer.expect("initialised"));
                            self.txn_request(
                                coordinator,
                                CoordinatorRequest::AddOffsets,
                                |corr| Message::AddOffsetsToTxn {
                                    corr,
                                    transactional_id: id,
                                    producer_id: pid,
                                    producer_epoch: epoch,
                                    group_id,
                                },
                                out,
                            );
                            return true;
                        }
                        Some(OffsetsStage::Commit) => {
                            self.send_txn_offset_commit(out);
                            return true;
                        }
                        _ => {}
                    }
                }
                let offsets_added = offsets_stage.is_some_and(|s| s != OffsetsStage::AddOffsets);
                let ending = matches!(t.phase, TxnPhase::Committing | TxnPhase::Aborting);
                if ending && open.unresolved == 0 {
                    let commit = t.phase == TxnPhase::Committing && open.abortable.is_none();
                    let local = (open.offered == 0 || (t.added.is_empty() && !open.commit_sent))
                        && !offsets_added;
                    if t.phase == TxnPhase::Committing && !commit {
                        // A send failed after the commit was requested: abort instead.
                        self.txn.as_mut().unwrap().phase = TxnPhase::Aborting;
                    }
                    if local {
                        // Nothing reached the coordinator: the transaction ends locally.
                        self.txn_complete(
                            if commit { OpType::Ok } else { OpType::Fail },
                            None,
                            out,
                        );
                        return true;
                    }
                    let t = self.txn.as_mut().unwrap();
                    if commit {
                        t.open.as_mut().unwrap().commit_sent = true;
                    }
                    let (id, (pid, epoch)) = (t.id.clone(), self.producer.expect("initialised"));
                    self.txn_request(
                        coordinator,
                        CoordinatorRequest::EndTxn { commit },
                        |corr| Message::EndTxn {
                            corr,
                            transactional_id: id,
                            producer_id: pid,
                            producer_epoch: epoch,
                            committed: commit,
                        },
                        out,
                    );
                }
                true
            }
        }
    }

    /// TxnOffsetCommit to the group coordinator, after finding it (FindCoordinator with the
    /// group id, to any broker).
    fn send_txn_offset_commit(&mut self, out: &mut Effects<ProducerTimer>) {
        let t = self.txn.as_ref().expect("transactional");
        let o = t
            .open
            .as_ref()
            .and_then(|o| o.offsets.as_ref())
            .expect("offsets to commit")
            .clone();
        let Some(group_coordinator) = t.group_coordinator else {
            if self.bootstrap.is_empty() {
                return;
            }
            let b = self.bootstrap[self.next_bootstrap % self.bootstrap.len()];
            self.next_bootstrap += 1;
            let key = o.group.group_id.clone();
            self.txn_request(
                b,
                CoordinatorRequest::FindGroupCoordinator,
                |corr| Message::FindCoordinator {
                    corr,
                    key,
                    key_type: CoordinatorType::Group,
                },
                out,
            );
            return;
        };
        let (id, (pid, epoch)) = (t.id.clone(), self.producer.expect("initialised"));
        self.txn_request(
            group_coordinator,
            CoordinatorRequest::TxnOffsetCommit,
            |corr| Message::TxnOffsetCommit {
                corr,
                transactional_id: id,
                group_id: o.group.group_id,
                producer_id: pid,
                producer_epoch: epoch,
                generation_id: o.group.generation_id,
                member_id: o.group.member_id,
                group_instance_id: o.group.group_instance_id,
                offsets: o.offsets,
            },
            out,
        );
    }

    /// Moves `sendOffsetsToTransaction` to its next stage.
    fn offsets_stage(&mut self, stage: OffsetsStage) {
        if let Some(o) = self
            .txn
            .as_mut()
            .and_then(|t| t.open.as_mut())
            .and_then(|o| o.offsets.as_mut())
        {
            o.stage = stage;
        }
    }

    fn txn_request(
        &mut self,
        to: BrokerId,
        request: CoordinatorRequest,
        msg: impl FnOnce(CorrelationId) -> Message,
        out: &mut Effects<ProducerTimer>,
    ) {
        let corr = self.corr();
        out.send(NodeId::Broker(to), msg(corr));
        out.timer(
            self.config.request_timeout_ms,
            ProducerTimer::RequestTimeout { corr },
        );
        self.txn.as_mut().expect("transactional").in_flight = Some((corr, to, request));
    }

    /// Takes the in-flight coordinator request answered by `corr`, if it is ours.
    fn take_txn_request(&mut self, corr: CorrelationId) -> Option<CoordinatorRequest> {
        let t = self.txn.as_mut()?;
        match &t.in_flight {
            Some((c, _, _)) if *c == corr => t.in_flight.take().map(|(_, _, r)| r),
            _ => None,
        }
    }

    /// A retriable failure of the coordinator request: forget the coordinator when the error
    /// says it moved, and try again after `retry.backoff.ms`.
    fn txn_retry(&mut self, now: Instant, error: ErrorCode, out: &mut Effects<ProducerTimer>) {
        let backoff = self.config.retry_backoff_ms;
        self.txn_retry_after(now, error, backoff, out);
    }

    /// [`Self::txn_retry`] after `backoff_ms` (at least 1 ms).
    fn txn_retry_after(
        &mut self,
        now: Instant,
        error: ErrorCode,
        backoff_ms: u64,
        out: &mut Effects<ProducerTimer>,
    ) {
        let backoff = backoff_ms.max(1);
        let t = self.txn.as_mut().expect("transactional");
        if matches!(
            error,
            ErrorCode::NotCoordinator
                | ErrorCode::CoordinatorNotAvailable
                | ErrorCode::RequestTimedOut
        ) {
            t.coordinator = None;
        }
        t.retry_at = now.plus_ms(backoff);
        let at = t.retry_at;
        self.wake_at(now, at, out);
    }

    /// The group coordinator moved or did not answer: find it again after `retry.backoff.ms`.
    fn group_coordinator_retry(&mut self, now: Instant, out: &mut Effects<ProducerTimer>) {
        let backoff = self.config.retry_backoff_ms.max(1);
        let t = self.txn.as_mut().expect("transactional");
        t.group_coordinator = None;
        t.retry_at = now.plus_ms(backoff);
        let at = t.retry_at;
        self.wake_at(now, at, out);
    }

    /// Handles a coordinator answer; returns `false` if `msg` was not one.
    pub(super) fn on_txn_response(
        &mut self,
        now: Instant,
        msg: &Message,
        out: &mut Effects<ProducerTimer>,
    ) -> bool {
        let corr = match msg {
            Message::FindCoordinatorResponse { corr, .. }
            | Message::InitProducerIdResponse { corr, .. }
            | Message::AddPartitionsToTxnResponse { corr, .. }
            | Message::AddOffsetsToTxnResponse { corr, .. }
            | Message::TxnOffsetCommitResponse { corr, .. }
            | Message::EndTxnResponse { corr, .. } => *corr,
            _ => return false,
        };
        let Some(request) = self.take_txn_request(corr) else {
            // A stale answer (a retried or timed-out request) is dropped; an idempotent
            // producer's own InitProducerId answer goes to its usual handler.
            return self.transactional();
        };
        match (request, msg) {
            (
                CoordinatorRequest::FindCoordinator,
                Message::FindCoordinatorResponse {
                    error, coordinator, ..
                },
            ) => match (error, coordinator) {
                (ErrorCode::None, Some(b)) => {
                    self.txn.as_mut().unwrap().coordinator = Some(*b);
                }
                (e, _) => self.txn_retry(now, *e, out),
            },
            (
                CoordinatorRequest::InitProducerId,
                Message::InitProducerIdResponse {
                    error,
                    producer_id,
                    producer_epoch,
                    ..
                },
            ) => match error {
                ErrorCode::None => {
                    self.producer = Some((*producer_id, *producer_epoch));
                    self.next_sequence.clear();
                    let t = self.txn.as_mut().unwrap();
                    t.phase = TxnPhase::Ready;
                    t.bump_epoch = false;
                }
                e => self.txn_retry(now, *e, out),
            },
            (
                CoordinatorRequest::AddPartitions(partitions),
                Message::AddPartitionsToTxnResponse { results, .. },
            ) => {
                let error = results
                    .iter()
                    .map(|(_, e)| *e)
                    .find(|e| *e != ErrorCode::None)
                    .unwrap_or(ErrorCode::None);
                match error {
                    ErrorCode::None => {
                        self.txn.as_mut().unwrap().added.extend(partitions);
                    }
                    ErrorCode::ProducerFenced | ErrorCode::InvalidProducerEpoch => {
                        self.txn_fatal(now, error, out)
                    }
                    // The previous transaction's markers are still being written: Kafka's
                    // `AddPartitionsToTxnHandler` retries the transaction's first
                    // AddPartitionsToTxn after 20 ms instead of `retry.backoff.ms`
                    // (`ADD_PARTITIONS_RETRY_BACKOFF_MS`, TransactionManager.java; KAFKA-5482).
                    ErrorCode::ConcurrentTransactions
                        if self.txn.as_ref().is_some_and(|t| t.added.is_empty()) =>
                    {
                        self.txn_retry_after(now, error, ADD_PARTITIONS_RETRY_BACKOFF_MS, out)
                    }
                    e if e.is_retriable() => self.txn_retry(now, e, out),
                    e => self.txn_abortable(
                        now,
                        format!("AddPartitionsToTxn: {}", e.kafka_name()),
                        out,
                    ),
                }
            }
            (CoordinatorRequest::AddOffsets, Message::AddOffsetsToTxnResponse { error, .. }) => {
                match error {
                    ErrorCode::None => self.offsets_stage(OffsetsStage::Commit),
                    ErrorCode::ProducerFenced | ErrorCode::InvalidProducerEpoch => {
                        self.txn_fatal(now, *error, out)
                    }
                    e if e.is_retriable() => self.txn_retry(now, *e, out),
                    e => {
                        self.txn_abortable(now, format!("AddOffsetsToTxn: {}", e.kafka_name()), out)
                    }
                }
            }
            (
                CoordinatorRequest::FindGroupCoordinator,
                Message::FindCoordinatorResponse {
                    error, coordinator, ..
                },
            ) => match (error, coordinator) {
                (ErrorCode::None, Some(b)) => {
                    self.txn.as_mut().unwrap().group_coordinator = Some(*b);
                }
                _ => self.group_coordinator_retry(now, out),
            },
            (
                CoordinatorRequest::TxnOffsetCommit,
                Message::TxnOffsetCommitResponse { partitions, .. },
            ) => {
                let error = partitions
                    .iter()
                    .map(|p| p.error)
                    .find(|e| *e != ErrorCode::None)
                    .unwrap_or(ErrorCode::None);
                // Kafka's `TxnOffsetCommitHandler`.
                match error {
                    ErrorCode::None => self.offsets_stage(OffsetsStage::Done),
                    ErrorCode::ProducerFenced | ErrorCode::InvalidProducerEpoch => {
                        self.txn_fatal(now, error, out)
                    }
                    ErrorCode::NotCoordinator
                    | ErrorCode::CoordinatorNotAvailable
                    | ErrorCode::RequestTimedOut => self.group_coordinator_retry(now, out),
                    ErrorCode::CoordinatorLoadInProgress
                    | ErrorCode::UnknownTopicOrPartition
                    | ErrorCode::ConcurrentTransactions => self.txn_retry(now, error, out),
                    e => self.txn_abortable(
                        now,
                        format!(
                            "CommitFailedException: TxnOffsetCommit: {} (the group rebalanced; this member's generation is no longer current)",
                            e.kafka_name()
                        ),
                        out,
                    ),
                }
            }
            (
                CoordinatorRequest::EndTxn { commit },
                Message::EndTxnResponse {
                    error,
                    producer_id,
                    producer_epoch,
                    ..
                },
            ) => match error {
                ErrorCode::None => {
                    if self.producer != Some((*producer_id, *producer_epoch)) {
                        // KIP-890 part 2: a new epoch per transaction, sequences from 0.
                        self.producer = Some((*producer_id, *producer_epoch));
                        self.next_sequence.clear();
                    }
                    let op = if commit { OpType::Ok } else { OpType::Fail };
                    self.txn_complete(op, None, out);
                }
                ErrorCode::ProducerFenced | ErrorCode::InvalidProducerEpoch => {
                    self.txn_fatal(now, *error, out)
                }
                e if e.is_retriable() => self.txn_retry(now, *e, out),
                e => {
                    // INVALID_TXN_STATE and the like: the transaction's fate is unknown to
                    // the client (KAFKA-17754: a stale marker may have ended it either way).
                    let error = format!("EndTxn: {}", e.kafka_name());
                    self.txn_complete(OpType::Info, Some(error), out);
                    self.txn_new_instance(now, out);
                }
            },
            _ => {}
        }
        self.drain(now, out);
        true
    }

    /// The broker and API name (Kafka's, as `ApiKeys` spells it) of the coordinator request
    /// `corr`, if it is the one in flight.
    pub(super) fn txn_request_target(
        &self,
        corr: CorrelationId,
    ) -> Option<(BrokerId, &'static str)> {
        let t = self.txn.as_ref()?;
        match &t.in_flight {
            Some((c, to, request)) if *c == corr => Some((
                *to,
                match request {
                    CoordinatorRequest::FindCoordinator
                    | CoordinatorRequest::FindGroupCoordinator => "FindCoordinator",
                    CoordinatorRequest::InitProducerId => "InitProducerId",
                    CoordinatorRequest::AddPartitions(_) => "AddPartitionsToTxn",
                    CoordinatorRequest::AddOffsets => "AddOffsetsToTxn",
                    CoordinatorRequest::TxnOffsetCommit => "TxnOffsetCommit",
                    CoordinatorRequest::EndTxn { .. } => "EndTxn",
                },
            )),
            _ => None,
        }
    }

    /// The coordinator request `corr` got no answer in time or never left.
    pub(super) fn on_txn_request_failed(
        &mut self,
        now: Instant,
        corr: CorrelationId,
        out: &mut Effects<ProducerTimer>,
    ) -> bool {
        match self.take_txn_request(corr) {
            None => return false,
            Some(
                CoordinatorRequest::FindGroupCoordinator | CoordinatorRequest::TxnOffsetCommit,
            ) => self.group_coordinator_retry(now, out),
            Some(_) => self.txn_retry(now, ErrorCode::RequestTimedOut, out),
        }
        true
    }

    /// The connection to `broker` broke: a coordinator request to it is retried.
    pub(super) fn on_txn_disconnect(
        &mut self,
        now: Instant,
        broker: BrokerId,
        out: &mut Effects<ProducerTimer>,
    ) {
        let Some(t) = self.txn.as_mut() else { return };
        if let Some((_, to, request)) = &t.in_flight {
            if *to == broker {
                let group = matches!(
                    request,
                    CoordinatorRequest::FindGroupCoordinator | CoordinatorRequest::TxnOffsetCommit
                );
                t.in_flight = None;
                if group {
                    self.group_coordinator_retry(now, out);
                } else {
                    self.txn_retry(now, ErrorCode::RequestTimedOut, out);
                }
            }
        }
    }

    /// A produce answer's error for a transactional batch: fatal (fenced), abortable, or
    /// neither (`None`: the usual retry rules apply).
    pub(super) fn txn_batch_error(&self, error: ErrorCode) -> Option<bool> {
        if !self.transactional() {
            return None;
        }
        match error {
            ErrorCode::ProducerFenced | ErrorCode::InvalidProducerEpoch => Some(true),
            ErrorCode::TransactionAbortable
            | ErrorCode::InvalidTxnState
            | ErrorCode::OutOfOrderSequenceNumber
            | ErrorCode::UnknownProducerId => Some(false),
            _ => None,
        }
    }

    /// A produce answer fenced this instance: the batch fails, then the whole instance.
    pub(super) fn txn_fenced_by_produce(
        &mut self,
        now: Instant,
        error: ErrorCode,
        out: &mut Effects<ProducerTimer>,
    ) {
        self.txn_fatal(now, error, out);
    }

    /// An abortable error outside a send (the sends' own go through `record_done`).
    fn txn_abortable(&mut self, now: Instant, error: String, out: &mut Effects<ProducerTimer>) {
        let t = self.txn.as_mut().expect("transactional");
        if let Some(open) = t.open.as_mut() {
            open.abortable.get_or_insert(error);
            if t.phase != TxnPhase::Aborting {
                t.phase = TxnPhase::Aborting;
                self.drop_unsent_batches(now, out);
            }
        }
    }

    /// A sequence error: the transaction aborts, and the next one runs under a bumped epoch.
    pub(super) fn txn_sequence_error(&mut self) {
        if let Some(t) = self.txn.as_mut() {
            t.bump_epoch = true;
        }
    }

    /// PRODUCER_FENCED / INVALID_PRODUCER_EPOCH: this instance is done. The open transaction
    /// ends `fail` (the coordinator that fenced us aborted it) unless a commit was sent
    /// (`info`); then a new instance runs `initTransactions()`.
    fn txn_fatal(&mut self, now: Instant, error: ErrorCode, out: &mut Effects<ProducerTimer>) {
        let commit_sent = self
            .txn
            .as_ref()
            .and_then(|t| t.open.as_ref())
            .is_some_and(|o| o.commit_sent);
        let op = if commit_sent {
            OpType::Info
        } else {
            OpType::Fail
        };
        let message = format!(
            "ProducerFencedException: {} (a newer instance, or the coordinator's timeout abort, bumped the epoch)",
            error.kafka_name()
        );
        if self.txn.as_ref().is_some_and(|t| t.open.is_some()) {
            self.txn_complete(op, Some(message), out);
        }
        self.txn_new_instance(now, out);
    }

    /// The application closes the instance and creates a new one with the same
    /// `transactional.id`: its unsent batches fail, its producer id is forgotten.
    fn txn_new_instance(&mut self, now: Instant, out: &mut Effects<ProducerTimer>) {
        let partitions: Vec<i32> = self.batches.keys().copied().collect();
        for p in partitions {
            while self.batches.contains_key(&p) {
                let batch = self.pop_front(p);
                self.complete_failed(now, batch, "the producer instance was closed (fenced)", out);
            }
        }
        self.in_flight.clear();
        self.producer = None;
        self.next_sequence.clear();
        let backoff = self.config.retry_backoff_ms.max(1);
        let t = self.txn.as_mut().expect("transactional");
        t.phase = TxnPhase::Uninitialized;
        t.added.clear();
        t.bump_epoch = false;
        t.in_flight = None;
        t.retry_at = now.plus_ms(backoff);
    }

    /// Completes the open transaction's history operation.
    fn txn_complete(
        &mut self,
        op_type: OpType,
        error: Option<String>,
        out: &mut Effects<ProducerTimer>,
    ) {
        let t = self.txn.as_mut().expect("transactional");
        let Some(open) = t.open.take() else { return };
        t.added.clear();
        if t.phase != TxnPhase::Uninitialized {
            t.phase = if t.bump_epoch {
                TxnPhase::Uninitialized
            } else {
                TxnPhase::Ready
            };
        }
        let error = error.or_else(|| match op_type {
            OpType::Fail => Some(
                open.abortable
                    .clone()
                    .unwrap_or_else(|| "abortTransaction() by the application".into()),
            ),
            _ => None,
        });
        let value = self.txn_op_value(open.mops);
        out.op(ClientOp {
            op_type,
            op_id: open.op_id,
            value,
            error,
        });
    }

    /// Whether the application may call `beginTransaction()`: `initTransactions()` is done and
    /// no transaction is open.
    pub fn transaction_ready(&self) -> bool {
        self.txn
            .as_ref()
            .is_some_and(|t| t.phase == TxnPhase::Ready && t.open.is_none())
    }

    /// `beginTransaction()` by the application (a driven producer): the `txn` operation is
    /// invoked; returns its op id. Panics unless [`Self::transaction_ready`].
    pub fn begin_transaction(&mut self, out: &mut Effects<ProducerTimer>) -> u64 {
        assert!(
            self.transaction_ready(),
            "beginTransaction() while not ready"
        );
        self.next_op += 1;
        let op_id = self.next_op;
        let t = self.txn.as_mut().expect("transactional");
        t.open = Some(OpenTxn {
            op_id,
            target: u32::MAX,
            offered: 0,
            abort: false,
            mops: Vec::new(),
            by_record: BTreeMap::new(),
            unresolved: 0,
            abortable: None,
            commit_sent: false,
            offsets: None,
        });
        t.phase = TxnPhase::InTransaction;
        t.added.clear();
        let value = self.txn_op_value(Vec::new());
        out.op(ClientOp {
            op_type: OpType::Invoke,
            op_id,
            value,
            error: None,
        });
        op_id
    }

    /// `sendOffsetsToTransaction(offsets, groupMetadata)` (KIP-447): the input positions to
    /// commit with the transaction; sent before EndTxn (see the module documentation).
    pub fn send_offsets_to_transaction(
        &mut self,
        now: Instant,
        offsets: Vec<OffsetCommitPartition>,
        group: ConsumerGroupMetadata,
        out: &mut Effects<ProducerTimer>,
    ) {
        let t = self.txn.as_mut().expect("transactional");
        let open = t
            .open
            .as_mut()
            .expect("sendOffsetsToTransaction outside a transaction");
        open.offsets = Some(PendingOffsets {
            group,
            offsets,
            stage: OffsetsStage::AddOffsets,
        });
        self.drain(now, out);
    }

    /// `commitTransaction()` by the application: flush, then EndTxn(commit) (abort instead
    /// after an abortable error). The outcome is the `txn` operation's completion.
    pub fn commit_transaction(&mut self, now: Instant, out: &mut Effects<ProducerTimer>) {
        if self
            .txn
            .as_ref()
            .is_some_and(|t| t.phase == TxnPhase::InTransaction)
        {
            self.txn_end(now, out);
        }
    }

    /// `abortTransaction()` by the application.
    pub fn abort_transaction(&mut self, now: Instant, out: &mut Effects<ProducerTimer>) {
        let t = self.txn.as_mut().expect("transactional");
        if t.phase == TxnPhase::InTransaction {
            if let Some(open) = t.open.as_mut() {
                open.abort = true;
            }
            self.txn_end(now, out);
        }
    }

    fn txn_op_value(&self, mops: Vec<TxnMop>) -> OpValue {
        let t = self.txn.as_ref().expect("transactional");
        OpValue::Txn {
            transactional_id: t.id.clone(),
            producer_id: self.producer.map(|p| p.0),
            producer_epoch: self.producer.map(|p| p.1),
            mops,
            group: None,
            offsets: Vec::new(),
        }
    }
}
