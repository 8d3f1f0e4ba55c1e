//! The log of one partition replica, as a state machine over the node's disk.
//!
//! # What the log is
//! A partition's log is an append-only sequence of record batches ([`crate::record`]) with
//! increasing offsets `log_start_offset .. log_end_offset` (dense, except where compaction
//! removed records). Kafka stores it in a directory `TOPIC-PARTITION/` as *segments*: files
//! named by the base offset of their first batch zero-padded to 20 digits
//! (`00000000000000000000.log`), each with a sparse offset index (`.index`) and time index
//! (`.timeindex`) ([`segment`]). Batches are written back to back, exactly as they travel on
//! the wire. The last segment is the *active* one; appends go there, and a new one is *rolled*
//! at the log end offset when the active segment would exceed `segment.bytes`, when its first
//! batch is older than `segment.ms` (by record timestamps), when an index is full, or when an
//! offset no longer fits its relative 32-bit form (Kafka's `LogSegment.shouldRoll`). On a roll
//! the old segment is flushed and the recovery point moves to the new segment's base.
//!
//! [`PartitionLog`] keeps every batch in memory (the page cache) and never performs I/O: each
//! mutating method pushes [`DiskOp`]s that the node's shell executes in order. Appends are
//! volatile until a [`DiskOp::Sync`] ([`PartitionLog::flush`]); Kafka does not fsync on the
//! produce path (`log.flush.interval.messages` defaults to "never") and relies on replication
//! instead, which is exactly what power-failure scenarios exercise.
//!
//! # Lookups
//! Offset -> segment: the last segment whose base offset is `<=` the offset (floor). Then the
//! segment's offset index gives a file position to scan from ([`segment::Segment::find_batch`]).
//! Timestamp -> offset ([`PartitionLog::offset_for_timestamp`], the `ListOffsets` /
//! `offsetsForTimes` semantics): the first offset whose record timestamp is `>=` the target,
//! found from the first segment whose largest timestamp reaches it, its time index, then a scan.
//!
//! # The log end offset
//! The *log end offset* (LEO) is the offset the next appended record will get. It is a
//! property of this replica's log alone and may run ahead of the partition's *high watermark*
//! (HW, the offset below which every ISR member has the data; the partition, not the log, owns
//! it). Records between HW and LEO are uncommitted: a replica may have to truncate them when
//! it follows a new leader, which is what [`PartitionLog::truncate_to`] is for.
//!
//! # Compaction
//! With `cleanup.policy` containing `compact`, [`PartitionLog::clean`] rewrites non-active
//! segments below the high watermark keeping, per key, only the record with the highest offset
//! ([`cleaner`]); offsets are preserved, so a compacted log has gaps.
//!
//! Sources: Kafka's `UnifiedLog`, `LocalLog`, `LogSegment`, `LogLoader`, `LogCleaner`,
//! `LeaderEpochFileCache` and `LeaderEpochCheckpointFile`; KIP-101 ("Alter Replication Protocol
//! to use Leader Epoch rather than High Watermark for Truncation"); KIP-279 ("Fix log
//! divergence between leader and follower after fast leader fail over"); KIP-79 (time index
//! and `offsetsForTimes`); hachikuji/kafka-specification `Kip101.tla`, `Kip279.tla`.
//!
//! # Where each part lives
//! * `mod.rs`: [`PartitionLog`] (Kafka's `UnifiedLog`), its accessors and invariants;
//! * [`local_log`]: appends, reads, lookups, rolling, truncation, flushing (`LocalLog`);
//! * [`recovery`]: recovery after a restart (`LogLoader`);
//! * [`retention`]: retention and the log start offset;
//! * [`leader_epoch_cache`]: the leader-epoch cache (`LeaderEpochFileCache`);
//! * [`log_config`]: the log's settings (`LogConfig`);
//! * [`segment`], [`checkpoint`], [`cleaner`]: segments and their indexes, offset checkpoints,
//!   compaction.

pub mod checkpoint;
pub mod cleaner;
pub mod leader_epoch_cache;
pub mod local_log;
pub mod log_config;
pub mod producer_state;
pub mod recovery;
pub mod retention;
pub mod segment;
#[cfg(test)]
mod tests;

pub use log_config::{CleanupPolicy, LogConfig};
pub use recovery::RecoveryReport;
pub use retention::RetentionReport;

use leader_epoch_cache::*;
use local_log::*;
use recovery::*;

use crate::effects::DiskOp;
use crate::protocol::{EpochEndOffset, TransactionResult};
use crate::record::{self, BatchError, BatchHeader, RecordBatch};
use crate::types::{LeaderEpoch, Offset, ProducerEpoch, ProducerId, Sequence, TopicPartition};
use producer_state::{AbortedTxn, TxnStateManager};
use segment::Segment;
use std::collections::BTreeMap;
use std::fmt;

/// The end offset returned when an epoch lookup has no answer (Kafka's
/// `UNDEFINED_EPOCH_OFFSET`, `-1`).
pub const UNDEFINED_EPOCH_OFFSET: Offset = Offset(-1);

/// Name of the leader-epoch checkpoint file inside a partition directory.
pub const LEADER_EPOCH_CHECKPOINT: &str = "leader-epoch-checkpoint";

/// The file name of the segment whose first offset is `base_offset`: the offset zero-padded to
/// 20 digits plus `.log`, as Kafka names segments.
pub fn segment_file_name(base_offset: Offset) -> String {
    segment::file_name(base_offset, "log")
}

/// One batch in the log, with the header fields the broker needs without decoding records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogBatch {
    pub base_offset: Offset,
    /// Offset of the batch's last record (`base_offset + lastOffsetDelta`).
    pub last_offset: Offset,
    /// The `partitionLeaderEpoch` stamped by the leader that appended it.
    pub leader_epoch: LeaderEpoch,
    pub producer_id: ProducerId,
    pub producer_epoch: ProducerEpoch,
    pub base_sequence: Sequence,
    pub is_transactional: bool,
    /// A control batch (transaction marker, KIP-98).
    pub is_control: bool,
    /// Largest record timestamp in the batch, ms.
    pub max_timestamp: i64,
    /// Byte offset of the batch in its segment file.
    pub position: u64,
    /// The full encoded batch, with its final base offset and leader epoch.
    pub bytes: Vec<u8>,
}

/// An operating error of a log operation (a programmer error panics instead).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogError {
    /// `offset` is outside `[log_start, log_end]` (Kafka's OFFSET_OUT_OF_RANGE).
    OffsetOutOfRange {
        offset: Offset,
        log_start: Offset,
        log_end: Offset,
    },
    /// A follower append whose base offset is not the log end offset.
    NonContiguous { expected: Offset, got: Offset },
    /// The batch bytes are invalid (Kafka's CORRUPT_MESSAGE / InvalidRecordException).
    Corrupt(BatchError),
}

impl fmt::Display for LogError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LogError::OffsetOutOfRange {
                offset,
                log_start,
                log_end,
            } => {
                write!(
                    f,
                    "offset {offset} is out of range [{log_start}, {log_end}]"
                )
            }
            LogError::NonContiguous { expected, got } => {
                write!(
                    f,
                    "batch base offset {got} does not follow the log end offset {expected}"
                )
            }
            LogError::Corrupt(e) => write!(f, "corrupt batch: {e}"),
        }
    }
}

impl std::error::Error for LogError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            LogError::Corrupt(e) => Some(e),
            _ => None,
        }
    }
}

impl From<BatchError> for LogError {
    fn from(e: BatchError) -> Self {
        LogError::Corrupt(e)
    }
}

/// The log of one partition replica: segments in memory, disk changes emitted as [`DiskOp`]s.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionLog {
    tp: TopicPartition,
    dir: String,
    config: LogConfig,
    /// Strictly increasing base offsets; never empty; the last is the active segment.
    segments: Vec<Segment>,
    /// First offset a reader may ask for; `>=` the first segment's base offset.
    log_start_offset: Offset,
    /// Every offset below it is flushed (Kafka's `recoveryPoint`).
    recovery_point: Offset,
    /// The leader-epoch cache: strictly increasing epochs and start offsets, starts within
    /// `[log_start_offset, LEO]`.
    epochs: Vec<(LeaderEpoch, Offset)>,
    /// The highest epoch this log's cache has held: the durable checkpoint found at recovery
    /// (before recovery dropped entries at or beyond the log end) and every epoch assigned
    /// since. See [`Self::highest_epoch_seen`].
    highest_epoch_seen: Option<LeaderEpoch>,
    unflushed_messages: u64,
    /// Segments rolled so far by this process (for reports).
    rolled_segments: u64,
    /// Producers' transactions in this log (KIP-98), derived from its batches: updated by
    /// every append, replayed from the batches after a truncation and on recovery.
    txn: TxnStateManager,
}

impl PartitionLog {
    /// An empty log for `tp` in directory `"{topic}-{partition}"`: log start and end offset 0,
    /// empty epoch cache, default [`LogConfig`], no files yet (the first segment's file is
    /// created by the first append).
    pub fn new(tp: &TopicPartition) -> Self {
        PartitionLog {
            tp: tp.clone(),
            dir: tp.to_string(),
            config: LogConfig::default(),
            segments: vec![Segment::new(Offset(0))],
            log_start_offset: Offset(0),
            recovery_point: Offset(0),
            epochs: Vec::new(),
            highest_epoch_seen: None,
            unflushed_messages: 0,
            rolled_segments: 0,
            txn: TxnStateManager::default(),
        }
    }

    /// Replaces the log's settings (they apply from the next append, retention or cleaning).
    pub fn set_config(&mut self, config: LogConfig) {
        self.config = config;
    }

    /// The log's settings.
    pub fn config(&self) -> &LogConfig {
        &self.config
    }

    /// The partition this log belongs to.
    pub fn topic_partition(&self) -> &TopicPartition {
        &self.tp
    }

    /// The partition directory, `"{topic}-{partition}"`, relative to the node's data dir.
    pub fn dir(&self) -> &str {
        &self.dir
    }

    /// Path of the active segment file, e.g. `events-0/00000000000000000000.log`.
    pub fn segment_file(&self) -> String {
        self.active().log_file(&self.dir)
    }

    /// Path of the leader-epoch checkpoint, e.g. `events-0/leader-epoch-checkpoint`.
    pub fn checkpoint_file(&self) -> String {
        format!("{}/{}", self.dir, LEADER_EPOCH_CHECKPOINT)
    }

    /// The segments, oldest first; the last one is active.
    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }

    /// Segments rolled by this process since it started.
    pub fn rolled_segments(&self) -> u64 {
        self.rolled_segments
    }

    /// Every offset below it is flushed to disk (Kafka's recovery point).
    pub fn recovery_point(&self) -> Offset {
        self.recovery_point
    }

    fn active(&self) -> &Segment {
        self.segments.last().expect("a log always has a segment")
    }

    fn active_mut(&mut self) -> &mut Segment {
        self.segments
            .last_mut()
            .expect("a log always has a segment")
    }

    /// The first offset in the log: the first segment's base offset, or later once retention
    /// or the leader's log start offset moved it.
    pub fn log_start_offset(&self) -> Offset {
        self.log_start_offset
    }

    /// The offset the next appended record will get (LEO).
    pub fn log_end_offset(&self) -> Offset {
        let active = self.active();
        active
            .last_offset()
            .map_or(active.base_offset, |last| last.next())
    }

    /// Bytes in the log (the sum of the segment files' lengths).
    pub fn size_bytes(&self) -> u64 {
        self.segments.iter().map(|s| s.size_bytes).sum()
    }

    /// Every batch, in offset order, across segments (including batches that begin before the
    /// log start offset, in the first segment).
    pub fn batches(&self) -> impl Iterator<Item = &LogBatch> + '_ {
        self.segments.iter().flat_map(|s| s.batches.iter())
    }

    /// `(offset, value, leader epoch)` of every data record at or above the log start offset,
    /// for end-of-run inspection by the checkers. Control batches (transaction markers) are
    /// left out: their records are not application data, though they do occupy offsets.
    pub fn records(&self) -> Vec<(Offset, Option<Vec<u8>>, LeaderEpoch)> {
        self.keyed_records()
            .into_iter()
            .map(|(o, _, v, e)| (o, v, e))
            .collect()
    }

    /// Like [`PartitionLog::records`], with each record's key: `(offset, key, value, epoch)`.
    pub fn keyed_records(&self) -> Vec<(Offset, Option<Vec<u8>>, Option<Vec<u8>>, LeaderEpoch)> {
        let mut result = Vec::new();
        self.visit_records(|offset, key, value, epoch| {
            result.push((
                offset,
                key.map(<[u8]>::to_vec),
                value.map(<[u8]>::to_vec),
                epoch,
            ))
        });
        result
    }

    /// The records of [`PartitionLog::keyed_records`], in the same order, handed to `f` as
    /// `(offset, key, value, leader epoch of the batch)` borrowed from the log's batches:
    /// nothing is copied (the checks' snapshots read every replica's log this way).
    pub fn visit_records(
        &self,
        mut f: impl FnMut(Offset, Option<&[u8]>, Option<&[u8]>, LeaderEpoch),
    ) {
        let start = self.log_start_offset;
        for b in self
            .batches()
            .filter(|b| !b.is_control && b.last_offset >= start)
        {
            RecordBatch::visit(&b.bytes, |r| {
                let offset = Offset(b.base_offset.0 + r.offset_delta as i64);
                if offset >= start {
                    f(offset, r.key, r.value, b.leader_epoch);
                }
            })
            .expect("a batch in the log was validated when appended");
        }
    }

    /// The producers' transactional state of this log (open transactions, producer and
    /// coordinator epochs; see [`producer_state`]).
    pub fn txn_state(&self) -> &TxnStateManager {
        &self.txn
    }

    /// The earliest transaction that is open or whose marker is not below `high_watermark`,
    /// as `(producer, first offset)`, if any (Kafka's `firstUnstableOffset`); the partition's
    /// last stable offset is `min(this first offset, high watermark)`.
    pub fn first_unstable_offset(&self, high_watermark: Offset) -> Option<(ProducerId, Offset)> {
        self.txn.first_unstable_offset(high_watermark)
    }

    /// The partition's high watermark moved: forget the transactions whose markers are now
    /// committed (see [`TxnStateManager::on_high_watermark`]).
    pub fn on_high_watermark(&mut self, high_watermark: Offset) {
        self.txn.on_high_watermark(high_watermark);
    }

    /// The aborted transactions a read of `from .. upper` must know of (Kafka's
    /// `collectAbortedTransactions`): every `.txnindex` entry, from the segment holding `from`
    /// on, whose range overlaps it (`last_offset >= from` and `first_offset < upper`), in
    /// offset order of their markers.
    pub fn collect_aborted_txns(&self, from: Offset, upper: Offset) -> Vec<AbortedTxn> {
        let first = self.segment_index_for(from);
        self.segments[first..]
            .iter()
            .flat_map(|s| s.txn_index.iter())
            .filter(|e| e.last_offset >= from && e.first_offset < upper)
            .copied()
            .collect()
    }

    /// Every aborted-transaction index entry of the log, in offset order.
    pub fn aborted_txns(&self) -> Vec<AbortedTxn> {
        self.segments
            .iter()
            .flat_map(|s| s.txn_index.iter().copied())
            .collect()
    }

    /// Replays every batch of the log through a fresh transactional state: the state, and
    /// each segment's aborted-transaction index (Kafka's `LogLoader` rebuilds producer state
    /// and `.txnindex` the same way from the segments it recovers).
    pub(crate) fn replay_txn_state(&self) -> (TxnStateManager, Vec<Vec<AbortedTxn>>) {
        let mut txn = TxnStateManager::default();
        let indexes = self
            .segments
            .iter()
            .map(|s| {
                s.batches
                    .iter()
                    .filter_map(|b| apply_txn_batch(&mut txn, b))
                    .collect()
            })
            .collect();
        (txn, indexes)
    }

    // ---- internals ----

    /// The log's own invariants; a violation is a bug in this module or its caller.
    /// Cheap checks always (segment order, the last two batches, the epoch cache); the full
    /// scan in tests.
    fn check_invariants(&self) {
        let leo = self.log_end_offset();
        assert!(!self.segments.is_empty());
        assert!(
            self.log_start_offset >= self.segments[0].base_offset && self.log_start_offset <= leo,
            "log start offset {} outside [{}, {leo}]",
            self.log_start_offset,
            self.segments[0].base_offset
        );
        let full = cfg!(test);
        let pairs_from = if full {
            0
        } else {
            self.segments.len().saturating_sub(2)
        };
        for w in self.segments[pairs_from..].windows(2) {
            assert!(w[0].base_offset < w[1].base_offset, "segments are ordered");
            if let Some(last) = w[0].last_offset() {
                assert!(last < w[1].base_offset, "segments do not overlap");
            }
        }
        for (k, seg) in self.segments.iter().enumerate() {
            if !full && k + 1 < self.segments.len() {
                continue;
            }
            let n = seg.batches.len();
            let tail_from = if full { 0 } else { n.saturating_sub(2) };
            if let Some(first) = seg.batches.first() {
                assert!(first.base_offset >= seg.base_offset);
                assert_eq!(first.position, 0, "the first batch starts the file");
            }
            for (i, b) in seg.batches.iter().enumerate().skip(tail_from) {
                assert!(
                    b.last_offset >= b.base_offset,
                    "batch {b:?} has a negative offset range"
                );
                assert!(!b.bytes.is_empty());
                if i > 0 {
                    let prev = &seg.batches[i - 1];
                    assert!(b.base_offset > prev.last_offset, "offsets increase");
                    assert_eq!(
                        b.position,
                        prev.position + prev.bytes.len() as u64,
                        "batches are back to back"
                    );
                }
            }
            match seg.batches.last() {
                Some(last) => assert_eq!(last.position + last.bytes.len() as u64, seg.size_bytes),
                None => assert_eq!(seg.size_bytes, 0),
            }
        }
        for w in self.epochs.windows(2) {
            assert!(
                w[0].0 < w[1].0 && w[0].1 < w[1].1,
                "epoch cache not monotonic: {:?}",
                self.epochs
            );
        }
        for &(epoch, start) in &self.epochs {
            assert!(
                epoch.0 >= 0 && start >= self.log_start_offset && start <= leo,
                "bad epoch entry ({epoch}, {start}), log start {}, LEO {leo}",
                self.log_start_offset
            );
        }
        if full {
            self.txn.check_invariants();
            for s in &self.segments {
                for e in &s.txn_index {
                    assert!(
                        e.first_offset <= e.last_offset && e.last_offset >= s.base_offset,
                        "aborted transaction {e:?} outside segment {}",
                        s.base_offset
                    );
                }
            }
        }
        if let (Some(last), Some(&(latest, _))) = (
            self.segments.iter().rev().find_map(|s| s.batches.last()),
            self.epochs.last(),
        ) {
            assert!(
                last.leader_epoch <= latest,
                "the last batch's epoch {} is newer than the cache's {latest}",
                last.leader_epoch
            );
        }
    }
}
