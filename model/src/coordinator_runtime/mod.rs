//! The coordinator runtime: the seam through which a broker hosts coordinators whose state
//! lives in an internal topic (`__consumer_offsets` for the group coordinator,
//! `__transaction_state` for the transaction coordinator).
//!
//! # What Kafka does (coordinator-common `CoordinatorRuntime.java`, `CoordinatorShard.java`)
//! A coordinator's state is partitioned like its internal topic: one **shard** per partition,
//! hosted by the broker that **leads** that partition, and only by it.
//!
//! * **Load.** When a broker becomes leader of such a partition (LeaderAndIsr), the runtime
//!   builds an empty shard and **replays** the partition's log from its start: every record is a
//!   state change (a committed offset, a group's metadata, a transaction's state), so the last
//!   record per key is the state. Only then does the shard answer requests (before: Kafka's
//!   COORDINATOR_LOAD_IN_PROGRESS; here the log is in memory and the load is immediate).
//! * **Write.** A request that changes state becomes records; they are appended to the
//!   partition's log through the leader's normal append path (`acks=all`, so
//!   `min.insync.replicas` applies), applied to the shard at once (later requests see them), and
//!   the request is answered **only when the high watermark passes the last record** (Kafka's
//!   deferred event, completed by the HW listener). An append the leader refuses (for example
//!   NOT_ENOUGH_REPLICAS) is answered at once with that error and leaves the shard unchanged.
//!   A write not committed within its timeout (`offsets.commit.timeout.ms`, 5 s) is answered
//!   with REQUEST_TIMED_OUT; its records stay in the log and may still commit.
//! * **Resign.** When the broker stops leading the partition (it becomes a follower, the
//!   partition is deleted or the broker stops), the shard is dropped and every write still
//!   waiting for its commit is answered NOT_COORDINATOR: the records may or may not survive
//!   the new leader's election, and the client must find the new coordinator and retry. The
//!   new leader's load sees exactly the records that survived.
//!
//! The runtime is a plain state machine like every actor here: the broker calls it from its
//! handlers with the data it needs (log batches, offsets, the high watermark, the time) and
//! carries out what it returns. It never touches a log itself; the replica manager owns logs.
//! Each write carries an opaque `token` of the hosting coordinator's choosing (for example the
//! request to answer), which the runtime hands back when the write completes or fails.
//!
//! # Transactional writes (KIP-98, KIP-447)
//! A coordinator may write records *for a producer's transaction* (the group coordinator's
//! TxnOffsetCommit): a transactional batch carrying the producer id and epoch. Such records
//! are replayed with [`CoordinatorShard::replay_transactional`] (the shard keeps them pending),
//! and the transaction's marker in the same partition, a control batch the transaction
//! coordinator has the leader append, is replayed with
//! [`CoordinatorShard::replay_end_transaction`] (COMMIT makes them state, ABORT drops them), as
//! Kafka's `CoordinatorShard.replay(offset, producerId, producerEpoch, record)` and
//! `replayEndTransactionMarker` do. A load replays both from the log, so a new leader knows
//! the pending records of transactions still open.

use crate::protocol::TransactionResult;
use crate::record::{KeyValue, Record, RecordBatch, NO_SEQUENCE};
use crate::types::{LeaderEpoch, Offset, ProducerEpoch, ProducerId, TopicPartition};
use std::collections::{BTreeMap, VecDeque};

/// A coordinator's state for one partition of its internal topic (Kafka's `CoordinatorShard`):
/// built empty, then changed only by replaying records, in offset order, both while loading and
/// after its own writes are appended.
pub trait CoordinatorShard: Default {
    /// One state change as stored in the internal topic.
    type Record: Clone + std::fmt::Debug;

    /// The record's key and value bytes in the internal topic (a `None` value is a tombstone).
    fn encode(record: &Self::Record) -> KeyValue;

    /// The state change a stored record holds, `Ok(None)` for a record of a kind this shard
    /// does not keep (skipped), or an error for bytes it cannot read (the load reports it and
    /// skips the record, as Kafka's loader logs and skips an unknown record type).
    fn decode(record: &Record) -> Result<Option<Self::Record>, String>;

    /// Applies one record at `offset` to the state.
    fn replay(&mut self, offset: Offset, record: &Self::Record);

    /// Applies one record at `offset` written in `producer_id`'s transaction (a transactional
    /// batch). Default: as a plain record (a shard without transactional state).
    fn replay_transactional(
        &mut self,
        offset: Offset,
        producer_id: ProducerId,
        record: &Self::Record,
    ) {
        let _ = producer_id;
        self.replay(offset, record);
    }

    /// `producer_id`'s transaction marker at `offset` ended its transaction with `result`: its
    /// records below `offset` become state (COMMIT) or are dropped (ABORT). Default: nothing.
    fn replay_end_transaction(
        &mut self,
        offset: Offset,
        producer_id: ProducerId,
        result: TransactionResult,
    ) {
        let _ = (offset, producer_id, result);
    }
}

/// One state change waiting in the uncommitted queue: a record (with its producer id when it
/// was written in a transaction) or a transaction marker.
#[derive(Debug, Clone)]
enum Change<R> {
    Record(Option<ProducerId>, R),
    Marker(ProducerId, TransactionResult),
}

impl<R> Change<R> {
    fn apply<S: CoordinatorShard<Record = R>>(&self, shard: &mut S, offset: Offset) {
        match self {
            Change::Record(None, r) => shard.replay(offset, r),
            Change::Record(Some(pid), r) => shard.replay_transactional(offset, *pid, r),
            Change::Marker(pid, result) => shard.replay_end_transaction(offset, *pid, *result),
        }
    }
}

/// Why the runtime cannot serve a partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CoordinatorError {
    /// This broker does not lead the partition (or has not loaded it): Kafka's NOT_COORDINATOR.
    NotCoordinator,
}

/// What a load found, for the broker's `coordinator-loaded` event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadSummary {
    /// Records replayed.
    pub records: u64,
    /// Records skipped because they could not be decoded, each with the reason.
    pub skipped: Vec<(Offset, String)>,
    /// The log end offset the load stopped at (exclusive).
    pub loaded_to: Offset,
}

/// A write waiting for the high watermark to pass its last record.
#[derive(Debug, Clone)]
struct PendingWrite<T> {
    token: T,
    last_offset: Offset,
    deadline_ms: u64,
}

/// One loaded partition (Kafka's `CoordinatorContext`).
struct Context<S: CoordinatorShard, T> {
    leader_epoch: LeaderEpoch,
    /// Every appended record applied: what later requests see.
    latest: S,
    /// Only the records below the high watermark applied: what a reader of committed state
    /// sees (Kafka reads at the last committed offset).
    committed: S,
    /// Appended records (and markers) not yet below the high watermark, in offset order.
    uncommitted: VecDeque<(Offset, Change<S::Record>)>,
    /// The high watermark as last reported.
    high_watermark: Offset,
    /// Writes waiting for their commit, in offset order.
    pending: VecDeque<PendingWrite<T>>,
}

/// The runtime of one coordinator type on one broker: its loaded shards, by partition of the
/// internal topic. `T` is the token the hosting coordinator gives each write.
pub struct CoordinatorRuntime<S: CoordinatorShard, T> {
    contexts: BTreeMap<TopicPartition, Context<S, T>>,
}

impl<S: CoordinatorShard, T> Default for CoordinatorRuntime<S, T> {
    fn default() -> Self {
        CoordinatorRuntime {
            contexts: BTreeMap::new(),
        }
    }
}

impl<S: CoordinatorShard, T> CoordinatorRuntime<S, T> {
    /// An empty runtime hosting no partition.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether this broker has `tp` loaded (it leads the partition).
    pub fn hosts(&self, tp: &TopicPartition) -> bool {
        self.contexts.contains_key(tp)
    }

    /// The partitions loaded, in order.
    pub fn hosted(&self) -> impl Iterator<Item = &TopicPartition> {
        self.contexts.keys()
    }

    /// Loads `tp` on becoming its leader in `leader_epoch`: replays every record of `batches`
    /// (the partition's log from its start to its end, as the log reads it; control batches
    /// are skipped) into a fresh shard. Records below `high_watermark` also form the committed
    /// state. A shard already loaded for `tp` (a new leader epoch with the same leader) is
    /// replaced; its pending writes are answered by the caller through [`Self::on_resign`]
    /// first, which the broker calls on every leadership change.
    pub fn on_become_leader(
        &mut self,
        tp: TopicPartition,
        leader_epoch: LeaderEpoch,
        batches: &[Vec<u8>],
        high_watermark: Offset,
    ) -> LoadSummary {
        let mut ctx = Context {
            leader_epoch,
            latest: S::default(),
            committed: S::default(),
            uncommitted: VecDeque::new(),
            high_watermark,
            pending: VecDeque::new(),
        };
        let mut summary = LoadSummary {
            records: 0,
            skipped: Vec::new(),
            loaded_to: Offset(0),
        };
        for bytes in batches {
            let batch = match RecordBatch::decode(bytes) {
                Ok((b, _)) => b,
                Err(e) => {
                    summary
                        .skipped
                        .push((Offset(-1), format!("unreadable batch: {e}")));
                    continue;
                }
            };
            summary.loaded_to = batch.last_offset().next();
            let mut changes = Vec::new();
            if batch.is_control() {
                if let Some((result, _)) = batch.txn_marker() {
                    changes.push((batch.base_offset, Change::Marker(batch.producer_id, result)));
                }
            }
            let txn = (batch.is_transactional() && batch.producer_id != ProducerId::NONE)
                .then_some(batch.producer_id);
            for r in batch.records.iter().filter(|_| !batch.is_control()) {
                let offset = Offset(batch.base_offset.0 + r.offset_delta as i64);
                match S::decode(r) {
                    Ok(Some(record)) => {
                        summary.records += 1;
                        changes.push((offset, Change::Record(txn, record)));
                    }
                    Ok(None) => {}
                    Err(why) => summary.skipped.push((offset, why)),
                }
            }
            for (offset, change) in changes {
                change.apply(&mut ctx.latest, offset);
                if offset < high_watermark {
                    change.apply(&mut ctx.committed, offset);
                } else {
                    ctx.uncommitted.push_back((offset, change));
                }
            }
        }
        self.contexts.insert(tp, ctx);
        summary
    }

    /// Unloads `tp` on losing its leadership (or the partition): drops the shard and returns
    /// the tokens of the writes still waiting for their commit, in offset order, to be
    /// answered NOT_COORDINATOR. Nothing when `tp` was not loaded.
    pub fn on_resign(&mut self, tp: &TopicPartition) -> Vec<T> {
        self.contexts
            .remove(tp)
            .map(|ctx| ctx.pending.into_iter().map(|w| w.token).collect())
            .unwrap_or_default()
    }

    /// The state of `tp` with every appended record applied, committed or not.
    pub fn latest(&self, tp: &TopicPartition) -> Result<&S, CoordinatorError> {
        self.contexts
            .get(tp)
            .map(|c| &c.latest)
            .ok_or(CoordinatorError::NotCoordinator)
    }

    /// The state of `tp` with only the records below the high watermark applied.
    pub fn committed(&self, tp: &TopicPartition) -> Result<&S, CoordinatorError> {
        self.contexts
            .get(tp)
            .map(|c| &c.committed)
            .ok_or(CoordinatorError::NotCoordinator)
    }

    /// The leader epoch `tp` was loaded in.
    pub fn leader_epoch(&self, tp: &TopicPartition) -> Option<LeaderEpoch> {
        self.contexts.get(tp).map(|c| c.leader_epoch)
    }

    /// The batch to append for `records` (uncompressed, non-transactional, `now_ms` as its
    /// timestamp), or NOT_COORDINATOR when `tp` is not loaded. Panics on an empty `records`:
    /// a write with nothing to store is answered without the log.
    pub fn batch_for(
        &self,
        tp: &TopicPartition,
        records: &[S::Record],
        now_ms: u64,
    ) -> Result<Vec<u8>, CoordinatorError> {
        if !self.hosts(tp) {
            return Err(CoordinatorError::NotCoordinator);
        }
        let kvs: Vec<KeyValue> = records.iter().map(S::encode).collect();
        Ok(RecordBatch::new(kvs, now_ms as i64).encode())
    }

    /// Like [`Self::batch_for`], for records written in a producer's transaction: a
    /// transactional batch with `producer_id` and `producer_epoch` and no sequence (Kafka's
    /// `MemoryRecords.withTransactionalRecords` with `NO_SEQUENCE`, appended with origin
    /// COORDINATOR, which checks the epoch but not sequences).
    pub fn transactional_batch_for(
        &self,
        tp: &TopicPartition,
        records: &[S::Record],
        now_ms: u64,
        (producer_id, producer_epoch): (ProducerId, ProducerEpoch),
    ) -> Result<Vec<u8>, CoordinatorError> {
        if !self.hosts(tp) {
            return Err(CoordinatorError::NotCoordinator);
        }
        assert!(
            producer_id != ProducerId::NONE,
            "a transaction without a producer id"
        );
        let kvs: Vec<KeyValue> = records.iter().map(S::encode).collect();
        Ok(RecordBatch::new(kvs, now_ms as i64)
            .with_producer(producer_id, producer_epoch, NO_SEQUENCE)
            .with_transactional(true)
            .encode())
    }

    /// Records that the leader appended `records` to `tp` at `base_offset..` (the batch from
    /// [`Self::batch_for`]): applies them to the latest state and queues `token` until the high
    /// watermark passes the last of them or `deadline_ms` passes. The current high watermark
    /// may already cover them (a single-replica ISR): then the write is committed at once and
    /// its token returned.
    ///
    /// Panics if `tp` is not loaded (the caller checked with `batch_for` in the same handler)
    /// or if `base_offset` is below a record already applied (the log only grows under its
    /// leader).
    pub fn appended(
        &mut self,
        tp: &TopicPartition,
        base_offset: Offset,
        records: Vec<S::Record>,
        token: T,
        deadline_ms: u64,
    ) -> Vec<T> {
        self.appended_for(tp, base_offset, records, None, token, deadline_ms)
    }

    /// [`Self::appended`] for the batch of [`Self::transactional_batch_for`]: the records are
    /// replayed as `producer_id`'s transactional records.
    pub fn appended_transactional(
        &mut self,
        tp: &TopicPartition,
        base_offset: Offset,
        records: Vec<S::Record>,
        producer_id: ProducerId,
        token: T,
        deadline_ms: u64,
    ) -> Vec<T> {
        self.appended_for(
            tp,
            base_offset,
            records,
            Some(producer_id),
            token,
            deadline_ms,
        )
    }

    fn appended_for(
        &mut self,
        tp: &TopicPartition,
        base_offset: Offset,
        records: Vec<S::Record>,
        producer_id: Option<ProducerId>,
        token: T,
        deadline_ms: u64,
    ) -> Vec<T> {
        let ctx = self
            .contexts
            .get_mut(tp)
            .expect("appended to a partition the runtime does not host");
        if let Some((last, _)) = ctx.uncommitted.back() {
            assert!(
                base_offset > *last,
                "{tp}: append at {base_offset:?} below an applied record at {last:?}"
            );
        }
        assert!(!records.is_empty(), "an append with no record");
        let last_offset = Offset(base_offset.0 + records.len() as i64 - 1);
        for (i, record) in records.into_iter().enumerate() {
            let offset = Offset(base_offset.0 + i as i64);
            let change = Change::Record(producer_id, record);
            change.apply(&mut ctx.latest, offset);
            ctx.uncommitted.push_back((offset, change));
        }
        ctx.pending.push_back(PendingWrite {
            token,
            last_offset,
            deadline_ms,
        });
        let hw = ctx.high_watermark;
        self.on_high_watermark(tp, hw)
    }

    /// The leader's high watermark of `tp` is now `high_watermark`: applies the records below
    /// it to the committed state and returns the tokens of the writes it commits, in offset
    /// order. Nothing when `tp` is not loaded.
    pub fn on_high_watermark(&mut self, tp: &TopicPartition, high_watermark: Offset) -> Vec<T> {
        let Some(ctx) = self.contexts.get_mut(tp) else {
            return Vec::new();
        };
        ctx.high_watermark = ctx.high_watermark.max(high_watermark);
        let hw = ctx.high_watermark;
        while ctx.uncommitted.front().is_some_and(|(o, _)| *o < hw) {
            let (offset, change) = ctx.uncommitted.pop_front().expect("front");
            change.apply(&mut ctx.committed, offset);
        }
        let mut done = Vec::new();
        while ctx.pending.front().is_some_and(|w| w.last_offset < hw) {
            done.push(ctx.pending.pop_front().expect("front").token);
        }
        done
    }

    /// `producer_id`'s transaction marker with `result` was appended to `tp` at `offset` and is
    /// committed (the leader's WriteTxnMarkers path calls this once the high watermark passed
    /// it): the latest state replays it at once, the committed state in offset order with the
    /// records around it. Nothing when `tp` is not loaded.
    pub fn on_txn_marker(
        &mut self,
        tp: &TopicPartition,
        offset: Offset,
        producer_id: ProducerId,
        result: TransactionResult,
    ) {
        let Some(ctx) = self.contexts.get_mut(tp) else {
            return;
        };
        let change = Change::Marker(producer_id, result);
        change.apply(&mut ctx.latest, offset);
        let at = ctx.uncommitted.partition_point(|(o, _)| *o < offset);
        ctx.uncommitted.insert(at, (offset, change));
        let hw = ctx.high_watermark.max(offset.next());
        ctx.high_watermark = hw;
        while ctx.uncommitted.front().is_some_and(|(o, _)| *o < hw) {
            let (o, change) = ctx.uncommitted.pop_front().expect("front");
            change.apply(&mut ctx.committed, o);
        }
    }

    /// Writes whose deadline is at or before `now_ms`, removed and returned (to be answered
    /// REQUEST_TIMED_OUT), in partition and then offset order. Their records stay applied: they
    /// are in the log and may still commit.
    pub fn expire(&mut self, now_ms: u64) -> Vec<T> {
        let mut expired = Vec::new();
        for ctx in self.contexts.values_mut() {
            let (late, waiting): (VecDeque<_>, VecDeque<_>) = std::mem::take(&mut ctx.pending)
                .into_iter()
                .partition(|w| w.deadline_ms <= now_ms);
            ctx.pending = waiting;
            expired.extend(late.into_iter().map(|w| w.token));
        }
        expired
    }

    /// Writes waiting for their commit on `tp`.
    pub fn pending_writes(&self, tp: &TopicPartition) -> usize {
        self.contexts.get(tp).map_or(0, |c| c.pending.len())
    }
}

#[cfg(test)]
mod tests;
