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
//! # Recovery (Kafka's `LogLoader`)
//! The broker checkpoints, per partition, the *recovery point* (everything below it was
//! flushed: `recovery-point-offset-checkpoint`) and the *log start offset*
//! (`log-start-offset-checkpoint`), both in Kafka's offset-checkpoint text format
//! ([`checkpoint`]). On start, segments wholly below the recovery point are trusted: their
//! indexes are loaded if sound. The segment holding the recovery point and every later one are
//! re-validated batch by batch (length, magic, CRC, record structure, increasing offsets); at
//! the first bad or incomplete batch the file is truncated and every later segment deleted, and
//! the indexes of recovered segments are rebuilt (an index written through the page cache is
//! not trusted after an unclean shutdown). A trusted segment that fails validation (silent
//! corruption) is treated the same way rather than served.
//!
//! # Retention and the log start offset
//! With `cleanup.policy` containing `delete`, [`PartitionLog::delete_old_segments`] removes
//! whole non-active segments from the front of the log whose largest timestamp is older than
//! `retention.ms`, while the log is larger than `retention.bytes`, or that lie wholly below the
//! log start offset, never a segment holding an offset at or above the high watermark (Kafka's
//! `UnifiedLog.deleteOldSegments`). The log start offset then moves to the first remaining
//! segment. A follower also advances its log start offset to the leader's
//! ([`PartitionLog::maybe_increment_log_start_offset`]), possibly into the middle of a segment.
//! Reads below the log start offset are out of range.
//!
//! # Compaction
//! With `cleanup.policy` containing `compact`, [`PartitionLog::clean`] rewrites non-active
//! segments below the high watermark keeping, per key, only the record with the highest offset
//! ([`cleaner`]); offsets are preserved, so a compacted log has gaps.
//!
//! # The leader-epoch cache (KIP-101, KIP-279)
//! Every batch carries the epoch of the leader that appended it (`partitionLeaderEpoch`). The
//! log remembers, per epoch, the first offset written in it: `[(epoch, start_offset), ...]`,
//! strictly increasing in both, persisted in `leader-epoch-checkpoint` (Kafka's text format:
//! a version line `0`, a count line, then one `epoch start_offset` line per entry). A leader
//! adds its epoch at its LEO when it takes over ([`PartitionLog::assign_epoch_start`]); any
//! appended batch with an epoch newer than the cache's latest adds an entry too. When the log
//! start offset advances, entries before it are dropped and the last of them moves to the new
//! log start offset (Kafka's `LeaderEpochFileCache.truncateFromStart`).
//!
//! A follower that restarts or sees a leader change must not truncate to its HW (KIP-101:
//! that lost committed data). It asks the leader for the end offset of its own latest epoch
//! ([`PartitionLog::end_offset_for_epoch`]): the leader answers with the largest epoch it
//! knows that is `<=` the requested one and the start offset of the epoch after it (its LEO if
//! that epoch is its latest). KIP-279 added the epoch to the answer so the follower can repeat
//! the exchange when the leader never had the follower's epoch, rather than truncating to an
//! offset that belongs to an unrelated epoch. The follower truncates to the smaller of that
//! end offset and its own end offset for the returned epoch.
//!
//! Sources: Kafka's `UnifiedLog`, `LocalLog`, `LogSegment`, `LogLoader`, `LogCleaner`,
//! `LeaderEpochFileCache` and `LeaderEpochCheckpointFile`; KIP-101 ("Alter Replication Protocol
//! to use Leader Epoch rather than High Watermark for Truncation"); KIP-279 ("Fix log
//! divergence between leader and follower after fast leader fail over"); KIP-79 (time index
//! and `offsetsForTimes`); hachikuji/kafka-specification `Kip101.tla`, `Kip279.tla`.
//!
//! # Size
//! Above the project's 1500-line guide (about 2300 lines with its tests): the split by
//! Kafka concept into a folder of its own is item 1 of the "house" issue (11), planned
//! before coordinators are added; until then the whole concept stays in this one file.

pub mod checkpoint;
pub mod cleaner;
pub mod producer_state;
pub mod segment;

use crate::effects::DiskOp;
use crate::protocol::EpochEndOffset;
use crate::record::{self, BatchError, BatchHeader, RecordBatch};
use crate::types::{LeaderEpoch, Offset, ProducerEpoch, ProducerId, Sequence, TopicPartition};
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

/// `cleanup.policy`: a list of `delete` and `compact`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CleanupPolicy {
    pub delete: bool,
    pub compact: bool,
}

impl CleanupPolicy {
    /// Kafka's default, `delete`.
    pub const DELETE: CleanupPolicy = CleanupPolicy {
        delete: true,
        compact: false,
    };

    /// Parses the validated list (`["compact", "delete"]`); an empty list means neither.
    pub fn from_list<S: AsRef<str>>(items: &[S]) -> CleanupPolicy {
        CleanupPolicy {
            delete: items.iter().any(|s| s.as_ref() == "delete"),
            compact: items.iter().any(|s| s.as_ref() == "compact"),
        }
    }
}

impl Default for CleanupPolicy {
    fn default() -> Self {
        CleanupPolicy::DELETE
    }
}

impl fmt::Display for CleanupPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.compact, self.delete) {
            (true, true) => write!(f, "compact,delete"),
            (true, false) => write!(f, "compact"),
            (false, true) => write!(f, "delete"),
            (false, false) => write!(f, ""),
        }
    }
}

/// The settings one partition's log follows (Kafka's `LogConfig`: topic overrides on top of
/// the broker's `log.*` defaults).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogConfig {
    /// `segment.bytes` / `log.segment.bytes` (1 GiB).
    pub segment_bytes: u64,
    /// `segment.ms` / `log.roll.ms` (7 days).
    pub segment_ms: i64,
    /// `log.index.interval.bytes` (4096).
    pub index_interval_bytes: u32,
    /// `segment.index.bytes` / `log.index.size.max.bytes` (10 MiB).
    pub max_index_size_bytes: u32,
    /// `retention.ms` / `log.retention.ms` (7 days; negative: unlimited).
    pub retention_ms: i64,
    /// `retention.bytes` / `log.retention.bytes` (-1: unlimited).
    pub retention_bytes: i64,
    /// `cleanup.policy` / `log.cleanup.policy` (`delete`).
    pub cleanup_policy: CleanupPolicy,
    /// `delete.retention.ms` / `log.cleaner.delete.retention.ms` (1 day): how long a tombstone
    /// survives after its segment was cleaned.
    pub delete_retention_ms: i64,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            segment_bytes: 1 << 30,
            segment_ms: 604_800_000,
            index_interval_bytes: 4_096,
            max_index_size_bytes: 10 * 1024 * 1024,
            retention_ms: 604_800_000,
            retention_bytes: -1,
            cleanup_policy: CleanupPolicy::DELETE,
            delete_retention_ms: 86_400_000,
        }
    }
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

/// What [`PartitionLog::recover`] threw away.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RecoveryReport {
    /// Bytes cut off the log: a torn or corrupt tail and every segment after it.
    pub discarded_bytes: u64,
    /// Batches, complete or partial, that those bytes held (counted by walking the batch
    /// headers in the discarded regions as far as they parse; at least 1 per cut region).
    pub discarded_batches: usize,
    /// Segments whose batches were re-validated (at or after the recovery point).
    pub recovered_segments: usize,
}

/// What [`PartitionLog::delete_old_segments`] removed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RetentionReport {
    /// Base offsets of the deleted segments.
    pub deleted_segments: Vec<Offset>,
    /// Their total size.
    pub deleted_bytes: u64,
    /// The log start offset before and after.
    pub old_log_start_offset: Offset,
    pub new_log_start_offset: Offset,
    /// Which limit applied: `retention-ms`, `retention-bytes` or `log-start-offset`.
    pub reason: &'static str,
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

    /// Rebuilds the log of `tp` from a node's files (all of them; the log picks its own
    /// directory and the broker-wide checkpoints `recovery-point-offset-checkpoint` and
    /// `log-start-offset-checkpoint`), as described in the module docs ("Recovery"). Repairs
    /// (truncation, deletion of later segments, rebuilt indexes, a rewritten epoch checkpoint)
    /// are pushed to `out`. Orphan index files are deleted. The log gets the default
    /// [`LogConfig`] ([`PartitionLog::recover_with_config`] takes the real one).
    ///
    /// The leader-epoch checkpoint is loaded if present and parsable; entries starting at or
    /// beyond the recovered LEO are dropped, every batch's epoch is assigned again in order
    /// (Kafka rebuilds the cache from the batches it recovers, too), and entries before the log
    /// start offset are truncated away. The checkpoint is rewritten if that changed it.
    pub fn recover(
        tp: &TopicPartition,
        files: &BTreeMap<String, Vec<u8>>,
        out: &mut Vec<DiskOp>,
    ) -> (Self, RecoveryReport) {
        Self::recover_with_config(tp, files, LogConfig::default(), out)
    }

    /// [`PartitionLog::recover`] with the partition's settings (the index interval rebuilt
    /// indexes follow).
    pub fn recover_with_config(
        tp: &TopicPartition,
        files: &BTreeMap<String, Vec<u8>>,
        config: LogConfig,
        out: &mut Vec<DiskOp>,
    ) -> (Self, RecoveryReport) {
        let mut log = PartitionLog::new(tp);
        log.config = config;
        let mut report = RecoveryReport::default();
        let prefix = format!("{}/", log.dir);
        let checkpointed_rp = files
            .get(checkpoint::RECOVERY_POINT_CHECKPOINT)
            .and_then(|d| checkpoint::parse(d))
            .and_then(|m| m.get(tp).copied());
        let checkpointed_lso = files
            .get(checkpoint::LOG_START_OFFSET_CHECKPOINT)
            .and_then(|d| checkpoint::parse(d))
            .and_then(|m| m.get(tp).copied());
        let recovery_point = checkpointed_rp.unwrap_or(Offset(0));

        // Segment files present, by base offset: (log, index, timeindex).
        type SegmentFiles<'a> = (Option<&'a [u8]>, Option<&'a [u8]>, Option<&'a [u8]>);
        let mut found: BTreeMap<Offset, SegmentFiles> = BTreeMap::new();
        for (name, data) in files.range(prefix.clone()..) {
            let Some(rest) = name.strip_prefix(&prefix) else {
                break;
            };
            let Some((base, suffix)) = segment::parse_file_name(rest) else {
                continue;
            };
            let entry = found.entry(base).or_default();
            match suffix {
                "log" => entry.0 = Some(data),
                "index" => entry.1 = Some(data),
                "timeindex" => entry.2 = Some(data),
                _ => {}
            }
        }
        // Orphan indexes (their segment was deleted or never created).
        for (&base, (log_data, index, time)) in &found {
            if log_data.is_none() {
                for (data, suffix) in [(index, "index"), (time, "timeindex")] {
                    if data.is_some() {
                        out.push(DiskOp::Delete {
                            file: format!("{}/{}", log.dir, segment::file_name(base, suffix)),
                        });
                    }
                }
            }
        }
        let bases: Vec<Offset> = found
            .iter()
            .filter(|(_, f)| f.0.is_some())
            .map(|(b, _)| *b)
            .collect();

        let interval = log.config.index_interval_bytes;
        let mut segments: Vec<Segment> = Vec::new();
        let mut cut = false;
        for (i, &base) in bases.iter().enumerate() {
            let (Some(data), index_data, time_data) = found[&base] else {
                unreachable!("filtered on the log file")
            };
            let file = format!("{}/{}", log.dir, segment::file_name(base, "log"));
            if cut {
                // Everything after a cut is gone (Kafka deletes the segments after the one it
                // truncated).
                report.discarded_bytes += data.len() as u64;
                report.discarded_batches += count_batches(data).max(usize::from(!data.is_empty()));
                out.push(DiskOp::Delete { file });
                for (d, suffix) in [(index_data, "index"), (time_data, "timeindex")] {
                    if d.is_some() {
                        out.push(DiskOp::Delete {
                            file: format!("{}/{}", log.dir, segment::file_name(base, suffix)),
                        });
                    }
                }
                continue;
            }
            let prev_last = segments.last().and_then(|s: &Segment| s.last_offset());
            let trusted = bases.get(i + 1).is_some_and(|&next| next <= recovery_point);
            let mut batches = Vec::new();
            let mut pos = 0usize;
            let mut last = prev_last;
            while pos < data.len() {
                let Ok(h) = valid_batch_at(&data[pos..]) else {
                    break;
                };
                if h.base_offset < base || last.is_some_and(|l| h.base_offset <= l) {
                    break;
                }
                let size = h.size_bytes();
                batches.push(log_batch(&h, pos as u64, data[pos..pos + size].to_vec()));
                last = Some(h.last_offset());
                pos += size;
            }
            let is_last = i + 1 == bases.len();
            let mut seg = Segment::rebuilt(base, batches, interval, !is_last);
            seg.exists = true;
            if pos < data.len() {
                report.discarded_bytes += (data.len() - pos) as u64;
                report.discarded_batches += count_batches(&data[pos..]);
                out.push(DiskOp::Truncate {
                    file: file.clone(),
                    len: pos as u64,
                });
                out.push(DiskOp::Sync { file });
                cut = true;
            }
            if trusted && !cut {
                let (o, t) = (index_data.unwrap_or(&[]), time_data.unwrap_or(&[]));
                if seg.indexes_sound(o, t) {
                    seg.load_indexes(o, t);
                } else {
                    seg.sync_index_files(&log.dir, (index_data, time_data), out);
                }
            } else {
                report.recovered_segments += 1;
                seg.sync_index_files(&log.dir, (index_data, time_data), out);
            }
            segments.push(seg);
        }
        if !segments.is_empty() {
            log.segments = segments;
        }
        log.log_start_offset = log.segments[0].base_offset;
        let leo = log.log_end_offset();
        if let Some(lso) = checkpointed_lso {
            if lso > leo {
                // The checkpointed start is beyond what survived (an unflushed tail was lost
                // after the start moved): start afresh there, as Kafka's loader does.
                log.truncate_fully_and_start_at(lso, out);
            } else if lso > log.log_start_offset {
                log.log_start_offset = lso;
            }
        }
        let leo = log.log_end_offset();
        log.recovery_point = recovery_point.min(leo);

        let stored = files
            .get(&log.checkpoint_file())
            .map(|data| parse_checkpoint(data));
        let mut epochs = Vec::new();
        if let Some(Some(entries)) = &stored {
            log.highest_epoch_seen = entries.iter().map(|&(e, _)| e).max();
            epochs = entries
                .iter()
                .copied()
                .filter(|&(_, start)| start < leo)
                .collect();
        }
        log.epochs = epochs;
        let batch_epochs: Vec<(LeaderEpoch, Offset)> = log
            .batches()
            .map(|b| (b.leader_epoch, b.base_offset))
            .collect();
        for (epoch, base) in batch_epochs {
            if epoch.0 >= 0 {
                log.assign_epoch(epoch, base);
            }
        }
        log.truncate_epochs_from_start();
        let unchanged = match &stored {
            Some(Some(entries)) => *entries == log.epochs,
            Some(None) => false,
            None => log.epochs.is_empty(),
        };
        if !unchanged {
            log.write_checkpoint(out);
        }
        log.check_invariants();
        (log, report)
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

    /// Leader append of a producer's batch: validates it (one whole v2 batch, CRC, no
    /// compression, `recordsCount > 0`, offset deltas `0..count`), assigns offsets from the
    /// LEO and stamps `leader_epoch` in place (both outside the CRC), rolls a new segment if
    /// the active one is due, appends it ([`DiskOp::Append`]), and adds `leader_epoch` to the
    /// epoch cache if it is new (writing the checkpoint). Returns the batch's first and last
    /// offsets.
    ///
    /// Errors: [`LogError::Corrupt`] if the bytes are invalid; nothing is appended then.
    /// Panics if `leader_epoch` is negative.
    pub fn append_as_leader(
        &mut self,
        batch: &[u8],
        leader_epoch: LeaderEpoch,
        out: &mut Vec<DiskOp>,
    ) -> Result<(Offset, Offset), LogError> {
        assert!(
            leader_epoch.0 >= 0,
            "a leader appends with a real epoch, got {leader_epoch}"
        );
        let h = validate_batch(batch, true)?;
        let base_offset = self.log_end_offset();
        let mut bytes = batch.to_vec();
        record::set_base_offset(&mut bytes, base_offset);
        record::set_partition_leader_epoch(&mut bytes, leader_epoch);
        let h = BatchHeader {
            base_offset,
            partition_leader_epoch: leader_epoch,
            ..h
        };
        debug_assert_eq!(record::read_header(&bytes).as_ref(), Ok(&h));
        let last_offset = h.last_offset();
        self.push_batch(&h, bytes, out);
        self.check_invariants();
        Ok((base_offset, last_offset))
    }

    /// Follower append of a batch copied from the leader: keeps its offsets and epoch. The
    /// batch is validated as in [`PartitionLog::append_as_leader`], except that record offsets
    /// may have gaps (a compacted batch), and its base offset must be the LEO (or, on a
    /// compacted topic, whose leader may have cleaned the records at the LEO away, any later
    /// offset). Its epoch updates the
    /// epoch cache with Kafka's `LeaderEpochFileCache.assign` rule: a new epoch is added at the
    /// batch's base offset after removing any entry with an epoch or start offset not below it
    /// (so a stale entry this replica assigned as a short-lived leader, with no data behind it,
    /// gives way to the leader's history).
    ///
    /// Errors: [`LogError::Corrupt`], [`LogError::NonContiguous`]; nothing is appended then.
    pub fn append_as_follower(
        &mut self,
        batch: &[u8],
        out: &mut Vec<DiskOp>,
    ) -> Result<(Offset, Offset), LogError> {
        let h = validate_batch(batch, false)?;
        let expected = self.log_end_offset();
        let gap_allowed = self.config.cleanup_policy.compact;
        if h.base_offset < expected || (h.base_offset != expected && !gap_allowed) {
            return Err(LogError::NonContiguous {
                expected,
                got: h.base_offset,
            });
        }
        let last_offset = h.last_offset();
        self.push_batch(&h, batch.to_vec(), out);
        self.check_invariants();
        Ok((h.base_offset, last_offset))
    }

    /// Whole batches starting with the one that contains `from` (or the first after it, in a
    /// compacted log), in offset order, across segments. A batch is returned only if its
    /// `last_offset < max_offset` (pass the HW for consumers, the LEO for followers). The first
    /// batch is returned even if it alone exceeds `max_bytes` (KIP-74: a fetch always makes
    /// progress); later ones only while the total stays within it.
    ///
    /// Errors: `from` outside `[log_start_offset, log_end_offset]` ->
    /// [`LogError::OffsetOutOfRange`]. `from == log_end_offset` returns no batches.
    pub fn read(
        &self,
        from: Offset,
        max_offset: Offset,
        max_bytes: u32,
    ) -> Result<Vec<Vec<u8>>, LogError> {
        let (log_start, log_end) = (self.log_start_offset(), self.log_end_offset());
        if from < log_start || from > log_end {
            return Err(LogError::OffsetOutOfRange {
                offset: from,
                log_start,
                log_end,
            });
        }
        let mut result = Vec::new();
        let mut total_bytes = 0u64;
        let first_segment = self.segment_index_for(from);
        'segments: for seg in &self.segments[first_segment..] {
            let Some(first) = seg.find_batch(from) else {
                continue;
            };
            for b in &seg.batches[first..] {
                if b.last_offset >= max_offset {
                    break 'segments;
                }
                let len = b.bytes.len() as u64;
                if !result.is_empty() && total_bytes + len > max_bytes as u64 {
                    break 'segments;
                }
                total_bytes += len;
                result.push(b.bytes.clone());
            }
        }
        Ok(result)
    }

    /// Index of the segment that would hold `offset`: the last one whose base offset is `<=` it
    /// (the first segment for an offset below every base).
    pub fn segment_index_for(&self, offset: Offset) -> usize {
        self.segments
            .partition_point(|s| s.base_offset <= offset)
            .saturating_sub(1)
    }

    /// Kafka's `fetchOffsetByTimestamp` for a timestamp (ms): the first offset at or above the
    /// log start offset whose record timestamp is `>=` `timestamp`, with that record's
    /// timestamp; `None` if every record is older (ListOffsets then answers -1).
    pub fn offset_for_timestamp(&self, timestamp: i64) -> Option<(Offset, i64)> {
        let start = self.log_start_offset;
        let first_segment = self
            .segments
            .iter()
            .position(|s| s.max_timestamp() >= timestamp)?;
        for seg in &self.segments[first_segment..] {
            let from = seg.lookup_time(timestamp).max(start);
            let Some(i) = seg.find_batch(from) else {
                continue;
            };
            for b in &seg.batches[i..] {
                if b.max_timestamp < timestamp || b.last_offset < start {
                    continue;
                }
                let (batch, _) =
                    RecordBatch::decode(&b.bytes).expect("a batch in the log was validated");
                for r in &batch.records {
                    let offset = Offset(b.base_offset.0 + r.offset_delta as i64);
                    let ts = batch.base_timestamp + r.timestamp_delta;
                    if offset >= start && ts >= timestamp {
                        return Some((offset, ts));
                    }
                }
            }
        }
        None
    }

    /// Removes every record at or above `offset`. Batches are never split: the cut is made at
    /// the base offset of the batch containing `offset`, which becomes the new LEO (returned).
    /// Segments that start at or after the new LEO are deleted (except the first, which is
    /// emptied); the segment holding it is cut ([`DiskOp::Truncate`], volatile like any write)
    /// and becomes the active one, with its indexes rebuilt. Epoch-cache entries starting at
    /// or after the new LEO are removed and the checkpoint rewritten if that changed it.
    /// `offset >= LEO` changes nothing (as Kafka's `truncateTo`); the log start offset is a
    /// floor.
    pub fn truncate_to(&mut self, offset: Offset, out: &mut Vec<DiskOp>) -> Offset {
        let log_end = self.log_end_offset();
        let target = offset.max(self.log_start_offset());
        if target >= log_end {
            return log_end;
        }
        // The new end: the first batch ending at or after target starts there; a gap (from
        // compaction) before target ends the log at target itself.
        let new_end = self
            .batches()
            .find(|b| b.last_offset >= target)
            .map_or(target, |b| b.base_offset.min(target));
        if new_end < self.log_start_offset {
            // The batch holding the log start offset began before it: nothing readable is
            // left, so start afresh at the log start offset (never below it).
            let start = self.log_start_offset;
            self.truncate_fully_and_start_at(start, out);
            return start;
        }
        // Keep segments with data below new_end (and always the first one).
        let keep = self
            .segments
            .partition_point(|s| s.base_offset < new_end)
            .max(1);
        for seg in self.segments.drain(keep..) {
            delete_segment_files(&self.dir, &seg, out);
        }
        let interval = self.config.index_interval_bytes;
        let dir = self.dir.clone();
        let active = self.active_mut();
        let before = (
            segment::encode_offset_entries(&active.offset_index),
            segment::encode_time_entries(&active.time_index),
        );
        let new_size = active.truncate_to(new_end, interval);
        if active.exists {
            out.push(DiskOp::Truncate {
                file: active.log_file(&dir),
                len: new_size,
            });
        }
        let (o, t) = (before.0.as_slice(), before.1.as_slice());
        active.sync_index_files(
            &dir,
            ((!o.is_empty()).then_some(o), (!t.is_empty()).then_some(t)),
            out,
        );
        let new_end = self.log_end_offset();
        self.recovery_point = self.recovery_point.min(new_end);
        let before = self.epochs.len();
        self.epochs.retain(|&(_, start)| start < new_end);
        if self.epochs.len() != before {
            self.write_checkpoint(out);
        }
        self.check_invariants();
        assert!(new_end <= target && new_end < log_end);
        new_end
    }

    /// Kafka's `truncateFullyAndStartAt`: deletes every segment and starts an empty log at
    /// `offset` (log start = LEO = `offset`), clearing the epoch cache. What a follower does
    /// when its fetch offset is below the leader's log start offset.
    pub fn truncate_fully_and_start_at(&mut self, offset: Offset, out: &mut Vec<DiskOp>) {
        assert!(offset.0 >= 0);
        for seg in self.segments.drain(..) {
            delete_segment_files(&self.dir, &seg, out);
        }
        self.segments.push(Segment::new(offset));
        self.log_start_offset = offset;
        self.recovery_point = offset;
        self.unflushed_messages = 0;
        if !self.epochs.is_empty() {
            self.epochs.clear();
            self.write_checkpoint(out);
        }
        self.check_invariants();
    }

    /// Moves the log start offset up to `new_log_start_offset` if that is higher (a follower
    /// learning the leader's, Kafka's `maybeIncrementLogStartOffset`); the caller caps it at
    /// the high watermark. Drops epoch entries before it. Segments wholly below it are deleted
    /// by the next [`PartitionLog::delete_old_segments`]. Returns whether it moved.
    ///
    /// Panics if `new_log_start_offset` is beyond the LEO.
    pub fn maybe_increment_log_start_offset(
        &mut self,
        new_log_start_offset: Offset,
        out: &mut Vec<DiskOp>,
    ) -> bool {
        assert!(
            new_log_start_offset <= self.log_end_offset(),
            "log start offset {new_log_start_offset} beyond the LEO {}",
            self.log_end_offset()
        );
        if new_log_start_offset <= self.log_start_offset {
            return false;
        }
        self.log_start_offset = new_log_start_offset;
        if self.truncate_epochs_from_start() {
            self.write_checkpoint(out);
        }
        self.check_invariants();
        true
    }

    /// Kafka's `deleteOldSegments`: deletes whole non-active segments from the front of the
    /// log that breach `retention.ms` (their largest timestamp is older than `now_ms -
    /// retention.ms`), `retention.bytes` (while the log stays at least that large without them)
    /// or the log start offset (they end below it), never one holding an offset at or above
    /// `high_watermark`. Time and size retention apply only with the `delete` policy. Moves the
    /// log start offset to the first remaining segment. Returns what it deleted, `None` if
    /// nothing.
    pub fn delete_old_segments(
        &mut self,
        now_ms: i64,
        high_watermark: Offset,
        out: &mut Vec<DiskOp>,
    ) -> Option<RetentionReport> {
        let policy = self.config.cleanup_policy;
        let mut total = self.size_bytes() as i64;
        let mut count = 0;
        let mut reason = "";
        // Only non-active segments whose upper bound (the next segment's base) is <= HW.
        while count + 1 < self.segments.len() {
            let seg = &self.segments[count];
            let upper = self.segments[count + 1].base_offset;
            if upper > high_watermark {
                break;
            }
            let by_start = upper <= self.log_start_offset;
            let by_time = policy.delete
                && self.config.retention_ms >= 0
                && !seg.batches.is_empty()
                && now_ms - seg.max_timestamp() > self.config.retention_ms;
            let by_size = policy.delete
                && self.config.retention_bytes >= 0
                && total - seg.size_bytes as i64 >= self.config.retention_bytes;
            let why = if by_start {
                "log-start-offset"
            } else if by_time {
                "retention-ms"
            } else if by_size {
                "retention-bytes"
            } else {
                break;
            };
            if reason.is_empty() {
                reason = why;
            }
            total -= seg.size_bytes as i64;
            count += 1;
        }
        if count == 0 {
            return None;
        }
        let old = self.log_start_offset;
        let mut report = RetentionReport {
            old_log_start_offset: old,
            reason,
            ..RetentionReport::default()
        };
        for seg in self.segments.drain(..count) {
            report.deleted_segments.push(seg.base_offset);
            report.deleted_bytes += seg.size_bytes;
            delete_segment_files(&self.dir, &seg, out);
        }
        self.log_start_offset = self.log_start_offset.max(self.segments[0].base_offset);
        report.new_log_start_offset = self.log_start_offset;
        self.recovery_point = self.recovery_point.max(self.log_start_offset);
        if self.truncate_epochs_from_start() {
            self.write_checkpoint(out);
        }
        self.check_invariants();
        Some(report)
    }

    /// Makes every append so far durable: emits [`DiskOp::Sync`] for the active segment (if
    /// its file exists; rolled segments were flushed when they were rolled), moves the
    /// recovery point to the LEO and resets the unflushed-message counter.
    pub fn flush(&mut self, out: &mut Vec<DiskOp>) {
        if self.active().exists {
            out.push(DiskOp::Sync {
                file: self.segment_file(),
            });
        }
        self.recovery_point = self.log_end_offset();
        self.unflushed_messages = 0;
    }

    /// Kafka's `log.flush.interval.messages`: flushes (and returns `true`) when at least
    /// `interval_messages` records, and at least one, were appended since the last flush.
    pub fn maybe_flush(&mut self, interval_messages: u64, out: &mut Vec<DiskOp>) -> bool {
        if self.unflushed_messages > 0 && self.unflushed_messages >= interval_messages {
            self.flush(out);
            true
        } else {
            false
        }
    }

    /// Records appended since the last flush.
    pub fn unflushed_messages(&self) -> u64 {
        self.unflushed_messages
    }

    /// Records that a leader of `epoch` starts writing at `start_offset` (normally the LEO
    /// when this replica becomes leader), and writes the checkpoint. An epoch not larger than
    /// the latest cached one is ignored (a repeated or stale LeaderAndIsr). Panics if
    /// `epoch < 0` or `start_offset` is beyond the LEO.
    pub fn assign_epoch_start(
        &mut self,
        epoch: LeaderEpoch,
        start_offset: Offset,
        out: &mut Vec<DiskOp>,
    ) {
        assert!(epoch.0 >= 0, "cannot assign the undefined epoch");
        assert!(
            start_offset <= self.log_end_offset(),
            "epoch {epoch} cannot start at {start_offset}, beyond the LEO {}",
            self.log_end_offset()
        );
        if self.latest_epoch().is_some_and(|latest| epoch <= latest) {
            return;
        }
        if self.assign_epoch(epoch, start_offset) {
            self.write_checkpoint(out);
        }
        self.check_invariants();
    }

    /// The latest epoch in the cache, `None` if it is empty.
    pub fn latest_epoch(&self) -> Option<LeaderEpoch> {
        self.epochs.last().map(|&(e, _)| e)
    }

    /// The epoch of the last record in the log (KIP-966's `LastWrittenLeaderEpoch`): the
    /// latest cached epoch that starts below the log end offset. Unlike [`Self::latest_epoch`]
    /// it ignores an epoch a leader assigned at its log end without writing in it (which a
    /// restart drops, as Kafka's `truncateFromEnd(logEndOffset)` does), and unlike
    /// [`Self::epoch_of_last_batch`] it survives retention deleting every batch. `None` for a
    /// log with no record in a known epoch.
    pub fn last_written_epoch(&self) -> Option<LeaderEpoch> {
        let end = self.log_end_offset();
        self.epochs
            .iter()
            .rev()
            .find(|&&(_, start)| start < end)
            .map(|&(e, _)| e)
    }

    /// The highest leader epoch this replica's epoch cache has held, across restarts: evidence
    /// that a leader of that epoch took leadership (a leader writes its epoch into the
    /// `leader-epoch-checkpoint` when it takes over, a follower when it first appends a batch
    /// of that epoch). Unlike [`Self::latest_epoch`] it keeps an epoch a leader assigned at its
    /// log end that recovery then dropped (Kafka's `truncateFromEnd(logEndOffset)`: recovery
    /// reads the checkpoint before it drops entries), and, within one process, an epoch a
    /// truncation removed (a restart then knows only what the rewritten checkpoint holds). The broker reports it when it registers, and the
    /// controller's recovery among the last ISR uses it to know that an elected leader did
    /// lead (`controller::update_last_known_elr`). `None` if the cache never held an epoch.
    pub fn highest_epoch_seen(&self) -> Option<LeaderEpoch> {
        self.highest_epoch_seen
    }

    /// The epoch cache: `(epoch, start_offset)`, increasing in both.
    pub fn epoch_entries(&self) -> &[(LeaderEpoch, Offset)] {
        &self.epochs
    }

    /// The OffsetForLeaderEpoch lookup (KIP-101, with KIP-279's epoch in the answer): the
    /// largest cached epoch `<= epoch`, and the start offset of the next cached epoch after it,
    /// or the LEO if it is the latest (so asking for an epoch beyond the latest answers
    /// `(latest, LEO)`). If `epoch` is below the earliest cached epoch, or the cache is empty,
    /// the answer is `(UNKNOWN, UNDEFINED_EPOCH_OFFSET)`.
    ///
    /// (Current Kafka answers a request below the earliest epoch with `(epoch, start of the
    /// earliest entry)` and one above the latest with `(UNKNOWN, -1)`; for a leader, whose
    /// latest epoch is its current one, the second case does not arise.)
    pub fn end_offset_for_epoch(&self, epoch: LeaderEpoch) -> EpochEndOffset {
        let after = self.epochs.partition_point(|&(e, _)| e <= epoch);
        if after == 0 {
            return EpochEndOffset {
                leader_epoch: LeaderEpoch::UNKNOWN,
                end_offset: UNDEFINED_EPOCH_OFFSET,
            };
        }
        let (found, _) = self.epochs[after - 1];
        let end_offset = self
            .epochs
            .get(after)
            .map_or(self.log_end_offset(), |&(_, start)| start);
        EpochEndOffset {
            leader_epoch: found,
            end_offset,
        }
    }

    /// The epoch of the batch that holds offset LEO-1 (the `last_fetched_epoch` a follower
    /// sends, KIP-595), `UNKNOWN` if the log is empty.
    pub fn epoch_of_last_batch(&self) -> LeaderEpoch {
        self.segments
            .iter()
            .rev()
            .find_map(|s| s.batches.last())
            .map_or(LeaderEpoch::UNKNOWN, |b| b.leader_epoch)
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
        let start = self.log_start_offset;
        for b in self
            .batches()
            .filter(|b| !b.is_control && b.last_offset >= start)
        {
            let (batch, _) = RecordBatch::decode(&b.bytes)
                .expect("a batch in the log was validated when appended");
            for r in batch.records {
                let offset = Offset(b.base_offset.0 + r.offset_delta as i64);
                if offset >= start {
                    result.push((offset, r.key, r.value, b.leader_epoch));
                }
            }
        }
        result
    }

    // ---- internals ----

    fn push_batch(&mut self, h: &BatchHeader, bytes: Vec<u8>, out: &mut Vec<DiskOp>) {
        assert!(
            h.base_offset >= self.log_end_offset(),
            "appends go at the end"
        );
        assert_eq!(h.size_bytes(), bytes.len());
        let last_offset = h.last_offset();
        if self.active().should_roll(
            &self.config,
            bytes.len() as u64,
            h.max_timestamp,
            last_offset,
        ) {
            self.roll(out);
        }
        let interval = self.config.index_interval_bytes;
        let dir = self.dir.clone();
        let active = self.active_mut();
        let batch = log_batch(h, active.size_bytes, bytes);
        active.append(&dir, batch, interval, out);
        self.unflushed_messages += h.records_count as u64;
        if h.partition_leader_epoch.0 >= 0
            && self.assign_epoch(h.partition_leader_epoch, h.base_offset)
        {
            self.write_checkpoint(out);
        }
    }

    /// Starts a new active segment at the LEO, after flushing the old one (Kafka's `roll`).
    fn roll(&mut self, out: &mut Vec<DiskOp>) {
        let leo = self.log_end_offset();
        let dir = self.dir.clone();
        self.active_mut().on_become_inactive(&dir, out);
        assert!(
            leo > self.active().base_offset,
            "never roll an empty segment"
        );
        self.segments.push(Segment::new(leo));
        self.recovery_point = self.recovery_point.max(leo);
        self.rolled_segments += 1;
    }

    /// Kafka's `LeaderEpochFileCache.assign`: nothing to do if `epoch` is the latest and starts
    /// no earlier; otherwise drop every entry whose epoch or start is not below the new one and
    /// append it. Returns whether the cache changed.
    fn assign_epoch(&mut self, epoch: LeaderEpoch, start_offset: Offset) -> bool {
        assert!(
            epoch.0 >= 0 && start_offset.0 >= 0,
            "invalid epoch entry ({epoch}, {start_offset})"
        );
        if let Some(&(latest, latest_start)) = self.epochs.last() {
            if epoch == latest && start_offset >= latest_start {
                return false;
            }
        }
        self.epochs.retain(|&(e, s)| e < epoch && s < start_offset);
        self.epochs.push((epoch, start_offset));
        self.highest_epoch_seen = self.highest_epoch_seen.max(Some(epoch));
        true
    }

    /// Kafka's `truncateFromStart(logStartOffset)`: entries starting before the log start
    /// offset are removed, the last of them re-starting at the log start offset. Returns
    /// whether the cache changed.
    fn truncate_epochs_from_start(&mut self) -> bool {
        let start = self.log_start_offset;
        let before = self.epochs.partition_point(|&(_, s)| s < start);
        if before == 0 {
            return false;
        }
        let (epoch, _) = self.epochs[before - 1];
        let later_at_start = self.epochs.get(before).is_some_and(|&(_, s)| s == start);
        self.epochs.drain(..before);
        if !later_at_start {
            self.epochs.insert(0, (epoch, start));
        }
        true
    }

    fn write_checkpoint(&self, out: &mut Vec<DiskOp>) {
        let mut text = format!("0\n{}\n", self.epochs.len());
        for (epoch, start) in &self.epochs {
            text.push_str(&format!("{} {}\n", epoch.0, start.0));
        }
        out.push(DiskOp::WriteAtomic {
            file: self.checkpoint_file(),
            data: text.into_bytes(),
        });
    }

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

/// Deletes a segment's files (the indexes only if they have entries, so exist on disk).
fn delete_segment_files(dir: &str, seg: &Segment, out: &mut Vec<DiskOp>) {
    if seg.exists {
        out.push(DiskOp::Delete {
            file: seg.log_file(dir),
        });
    }
    if !seg.offset_index.is_empty() {
        out.push(DiskOp::Delete {
            file: seg.index_file(dir),
        });
    }
    if !seg.time_index.is_empty() {
        out.push(DiskOp::Delete {
            file: seg.time_index_file(dir),
        });
    }
}

fn log_batch(h: &BatchHeader, position: u64, bytes: Vec<u8>) -> LogBatch {
    LogBatch {
        base_offset: h.base_offset,
        last_offset: h.last_offset(),
        leader_epoch: h.partition_leader_epoch,
        producer_id: h.producer_id,
        producer_epoch: h.producer_epoch,
        base_sequence: h.base_sequence,
        is_transactional: h.is_transactional(),
        is_control: h.is_control(),
        max_timestamp: h.max_timestamp,
        position,
        bytes,
    }
}

/// Validates `buf` as exactly one batch: decodes it fully (magic, length, CRC, codec, record
/// structure), then applies Kafka's `LogValidator` checks for v2: at least one record and
/// increasing offset deltas within `0..=lastOffsetDelta`; with `dense` (a producer's batch)
/// the deltas must be exactly `0..count` and `lastOffsetDelta == count - 1`. A compacted batch
/// (copied by a follower or read back in recovery) may have gaps.
fn validate_batch(buf: &[u8], dense: bool) -> Result<BatchHeader, BatchError> {
    let (batch, used) = RecordBatch::decode(buf)?;
    if used != buf.len() {
        return Err(BatchError::Malformed(format!(
            "{} bytes after the batch",
            buf.len() - used
        )));
    }
    let count = batch.records.len();
    if count == 0 {
        return Err(BatchError::Malformed("batch has no records".into()));
    }
    if dense {
        if batch.last_offset_delta as i64 != count as i64 - 1 {
            return Err(BatchError::Malformed(format!(
                "lastOffsetDelta {} does not match {count} records",
                batch.last_offset_delta
            )));
        }
        if let Some((i, r)) = batch
            .records
            .iter()
            .enumerate()
            .find(|(i, r)| r.offset_delta as i64 != *i as i64)
        {
            return Err(BatchError::Malformed(format!(
                "record {i} has offset delta {}",
                r.offset_delta
            )));
        }
    } else {
        let mut prev = -1i64;
        for (i, r) in batch.records.iter().enumerate() {
            let d = r.offset_delta as i64;
            if d <= prev || d > batch.last_offset_delta as i64 {
                return Err(BatchError::Malformed(format!(
                    "record {i} has offset delta {d}"
                )));
            }
            prev = d;
        }
    }
    record::read_header(buf)
}

/// Validates the batch at the start of `buf` (which may continue with more batches), allowing
/// compaction gaps.
fn valid_batch_at(buf: &[u8]) -> Result<BatchHeader, BatchError> {
    let h = record::read_header(buf)?;
    let size = h.size_bytes();
    if buf.len() < size {
        return Err(BatchError::Truncated {
            needed: size,
            available: buf.len(),
        });
    }
    validate_batch(&buf[..size], false)
}

/// How many batch headers can be walked in a discarded tail (at least 1 if it is non-empty).
fn count_batches(tail: &[u8]) -> usize {
    let mut count = 0;
    let mut pos = 0;
    while pos < tail.len() {
        count += 1;
        match record::read_header(&tail[pos..]) {
            Ok(h) if h.size_bytes() <= tail.len() - pos => pos += h.size_bytes(),
            _ => break,
        }
    }
    count
}

/// Parses Kafka's checkpoint text (`0`, count, then `epoch offset` lines); `None` if malformed
/// or not monotonic.
fn parse_checkpoint(data: &[u8]) -> Option<Vec<(LeaderEpoch, Offset)>> {
    let text = std::str::from_utf8(data).ok()?;
    let mut lines = text.lines();
    if lines.next()?.trim() != "0" {
        return None;
    }
    let count: usize = lines.next()?.trim().parse().ok()?;
    let mut entries = Vec::with_capacity(count.min(1024));
    for _ in 0..count {
        let mut parts = lines.next()?.split_whitespace();
        let epoch: i32 = parts.next()?.parse().ok()?;
        let start: i64 = parts.next()?.parse().ok()?;
        if parts.next().is_some() || epoch < 0 || start < 0 {
            return None;
        }
        entries.push((LeaderEpoch(epoch), Offset(start)));
    }
    if lines.any(|l| !l.trim().is_empty()) {
        return None;
    }
    let monotonic = entries
        .windows(2)
        .all(|w| w[0].0 < w[1].0 && w[0].1 < w[1].1);
    monotonic.then_some(entries)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::disk::{Disk, MemDisk};

    fn tp() -> TopicPartition {
        TopicPartition::new("events", 0)
    }

    /// A producer batch with `n` records whose values are `"{tag}-{i}"`.
    fn batch(tag: &str, n: usize) -> Vec<u8> {
        let records = (0..n)
            .map(|i| (None, Some(format!("{tag}-{i}").into_bytes())))
            .collect();
        RecordBatch::new(records, 1_000).encode()
    }

    fn bl(log: &PartitionLog) -> Vec<LogBatch> {
        log.batches().cloned().collect()
    }

    fn apply(disk: &mut MemDisk, ops: &mut Vec<DiskOp>) {
        for op in ops.drain(..) {
            disk.apply(&op).unwrap();
        }
    }

    fn values(log: &PartitionLog) -> Vec<(i64, String)> {
        log.records()
            .into_iter()
            .map(|(o, v, _)| (o.0, String::from_utf8(v.unwrap()).unwrap()))
            .collect()
    }

    /// Three batches at epoch 0: offsets 0..=1, 2..=4, 5..=5.
    fn three_batches(disk: &mut MemDisk) -> PartitionLog {
        let mut log = PartitionLog::new(&tp());
        let mut ops = Vec::new();
        log.assign_epoch_start(LeaderEpoch(0), Offset(0), &mut ops);
        assert_eq!(
            log.append_as_leader(&batch("a", 2), LeaderEpoch(0), &mut ops)
                .unwrap(),
            (Offset(0), Offset(1))
        );
        assert_eq!(
            log.append_as_leader(&batch("b", 3), LeaderEpoch(0), &mut ops)
                .unwrap(),
            (Offset(2), Offset(4))
        );
        assert_eq!(
            log.append_as_leader(&batch("c", 1), LeaderEpoch(0), &mut ops)
                .unwrap(),
            (Offset(5), Offset(5))
        );
        apply(disk, &mut ops);
        log
    }

    #[test]
    fn append_and_read() {
        let mut disk = MemDisk::default();
        let log = three_batches(&mut disk);
        assert_eq!(log.dir(), "events-0");
        assert_eq!(log.log_start_offset(), Offset(0));
        assert_eq!(log.log_end_offset(), Offset(6));
        assert_eq!(log.unflushed_messages(), 6);
        let file = &disk.files["events-0/00000000000000000000.log"];
        assert_eq!(file.len() as u64, log.size_bytes());
        let concat: Vec<u8> = bl(&log).iter().flat_map(|b| b.bytes.clone()).collect();
        assert_eq!(&concat, file);
        // Offsets and epoch are stamped into the stored bytes, and the CRC still holds.
        let h = record::read_header(&bl(&log)[1].bytes).unwrap();
        assert_eq!(
            (h.base_offset, h.partition_leader_epoch),
            (Offset(2), LeaderEpoch(0))
        );
        record::verify_crc(&bl(&log)[1].bytes).unwrap();

        let all = log.read(Offset(0), Offset(6), u32::MAX).unwrap();
        assert_eq!(all.len(), 3);
        let from_middle = log.read(Offset(3), Offset(6), u32::MAX).unwrap();
        assert_eq!(
            from_middle.len(),
            2,
            "starts with the batch containing offset 3"
        );
        assert_eq!(from_middle[0], bl(&log)[1].bytes);
        assert!(log.read(Offset(6), Offset(6), u32::MAX).unwrap().is_empty());
        assert_eq!(
            log.read(Offset(7), Offset(7), 100),
            Err(LogError::OffsetOutOfRange {
                offset: Offset(7),
                log_start: Offset(0),
                log_end: Offset(6)
            })
        );
        assert!(matches!(
            log.read(Offset(-1), Offset(6), 100),
            Err(LogError::OffsetOutOfRange { .. })
        ));
        assert_eq!(values(&log)[2], (2, "b-0".to_string()));
        assert_eq!(values(&log).len(), 6);
        assert_eq!(log.epoch_of_last_batch(), LeaderEpoch(0));
    }

    #[test]
    fn read_respects_max_offset_and_max_bytes() {
        let mut disk = MemDisk::default();
        let log = three_batches(&mut disk);
        // max_offset (exclusive): a batch is returned only if it ends below it.
        assert_eq!(log.read(Offset(0), Offset(4), u32::MAX).unwrap().len(), 1);
        assert_eq!(log.read(Offset(0), Offset(5), u32::MAX).unwrap().len(), 2);
        assert!(log.read(Offset(0), Offset(1), u32::MAX).unwrap().is_empty());
        // max_bytes: at least one batch, then only while it fits.
        let sizes: Vec<u32> = bl(&log).iter().map(|b| b.bytes.len() as u32).collect();
        assert_eq!(log.read(Offset(0), Offset(6), 1).unwrap().len(), 1);
        assert_eq!(
            log.read(Offset(0), Offset(6), sizes[0] + sizes[1])
                .unwrap()
                .len(),
            2
        );
        assert_eq!(
            log.read(Offset(0), Offset(6), sizes[0] + sizes[1] - 1)
                .unwrap()
                .len(),
            1
        );
    }

    #[test]
    fn recover_round_trips_a_clean_log() {
        let mut disk = MemDisk::default();
        let log = three_batches(&mut disk);
        let mut ops = Vec::new();
        let (back, report) = PartitionLog::recover(&tp(), &disk.files, &mut ops);
        assert_eq!(
            report,
            RecoveryReport {
                recovered_segments: 1,
                ..RecoveryReport::default()
            }
        );
        assert!(ops.is_empty(), "nothing to repair: {ops:?}");
        assert_eq!(bl(&back), bl(&log));
        assert_eq!(back.epoch_entries(), log.epoch_entries());
        assert_eq!(back.unflushed_messages(), 0);
        // An unrelated partition's files are ignored; a missing log is empty.
        let (other, _) =
            PartitionLog::recover(&TopicPartition::new("events", 1), &disk.files, &mut ops);
        assert_eq!(other.log_end_offset(), Offset(0));
        assert!(ops.is_empty());
    }

    #[test]
    fn recover_discards_a_torn_tail() {
        let mut disk = MemDisk::default();
        let log = three_batches(&mut disk);
        let file = "events-0/00000000000000000000.log".to_string();
        let last_len = bl(&log)[2].bytes.len();
        let full = disk.files[&file].len();
        disk.files.get_mut(&file).unwrap().truncate(full - 5);
        let mut ops = Vec::new();
        let (back, report) = PartitionLog::recover(&tp(), &disk.files, &mut ops);
        assert_eq!(
            report,
            RecoveryReport {
                discarded_bytes: (last_len - 5) as u64,
                discarded_batches: 1,
                recovered_segments: 1,
            }
        );
        assert_eq!(back.log_end_offset(), Offset(5));
        assert_eq!(
            ops,
            vec![
                DiskOp::Truncate {
                    file: file.clone(),
                    len: (full - last_len) as u64
                },
                DiskOp::Sync { file: file.clone() }
            ]
        );
        apply(&mut disk, &mut ops);
        assert_eq!(disk.files[&file].len() as u64, back.size_bytes());
        // A torn header (fewer than 61 bytes) is discarded too.
        let keep = full - last_len + 20;
        let mut files = disk.files.clone();
        files.insert(
            file.clone(),
            [&disk.files[&file][..], &bl(&log)[2].bytes[..20]].concat(),
        );
        let (back2, report2) = PartitionLog::recover(&tp(), &files, &mut ops);
        assert_eq!(
            report2,
            RecoveryReport {
                discarded_bytes: 20,
                discarded_batches: 1,
                recovered_segments: 1,
            }
        );
        assert_eq!(back2.size_bytes() as usize, keep - 20);
    }

    #[test]
    fn recover_stops_at_a_flipped_crc_byte() {
        let mut disk = MemDisk::default();
        let log = three_batches(&mut disk);
        let file = "events-0/00000000000000000000.log".to_string();
        let second = &bl(&log)[1];
        let flip_at = second.position as usize + 40; // inside the CRC-covered header
        disk.files.get_mut(&file).unwrap()[flip_at] ^= 0x01;
        let mut ops = Vec::new();
        let (back, report) = PartitionLog::recover(&tp(), &disk.files, &mut ops);
        assert_eq!(back.log_end_offset(), Offset(2));
        assert_eq!(report.discarded_batches, 2);
        assert_eq!(
            report.discarded_bytes,
            (bl(&log)[1].bytes.len() + bl(&log)[2].bytes.len()) as u64
        );
        assert_eq!(
            ops[0],
            DiskOp::Truncate {
                file,
                len: second.position
            }
        );
    }

    #[test]
    fn truncate_to_mid_batch_rounds_down() {
        let mut disk = MemDisk::default();
        let mut log = three_batches(&mut disk);
        let mut ops = Vec::new();
        log.assign_epoch_start(LeaderEpoch(1), Offset(6), &mut ops);
        log.append_as_leader(&batch("d", 2), LeaderEpoch(1), &mut ops)
            .unwrap(); // 6..=7
        apply(&mut disk, &mut ops);
        assert_eq!(
            log.epoch_entries(),
            &[(LeaderEpoch(0), Offset(0)), (LeaderEpoch(1), Offset(6))]
        );

        assert_eq!(
            log.truncate_to(Offset(8), &mut ops),
            Offset(8),
            "at the LEO: no-op"
        );
        assert!(ops.is_empty());
        assert_eq!(
            log.truncate_to(Offset(3), &mut ops),
            Offset(2),
            "3 is inside 2..=4"
        );
        assert_eq!(log.log_end_offset(), Offset(2));
        assert_eq!(log.epoch_entries(), &[(LeaderEpoch(0), Offset(0))]);
        let pos = log.size_bytes();
        assert_eq!(
            ops[0],
            DiskOp::Truncate {
                file: log.segment_file(),
                len: pos
            }
        );
        assert!(matches!(&ops[1], DiskOp::WriteAtomic { data, .. } if data == b"0\n1\n0 0\n"));
        apply(&mut disk, &mut ops);
        let (back, report) = PartitionLog::recover(&tp(), &disk.files, &mut ops);
        assert_eq!(report.discarded_bytes, 0);
        assert_eq!(back, log.clone_without_flush_state());
        // Appending continues at the new LEO.
        assert_eq!(
            log.append_as_leader(&batch("e", 1), LeaderEpoch(2), &mut ops)
                .unwrap(),
            (Offset(2), Offset(2))
        );
        assert_eq!(log.truncate_to(Offset(0), &mut ops), Offset(0));
        assert!(bl(&log).is_empty());
        assert!(log.epoch_entries().is_empty());
    }

    impl PartitionLog {
        fn clone_without_flush_state(&self) -> PartitionLog {
            PartitionLog {
                unflushed_messages: 0,
                // Recovery knows the epochs the checkpoint holds, not those a truncation
                // removed earlier in this process.
                highest_epoch_seen: self.epochs.iter().map(|&(e, _)| e).max(),
                ..self.clone()
            }
        }
    }

    /// Cache [(0,0),(2,5)], LEO 9 (KIP-101 / KIP-279 lookups).
    #[test]
    fn epoch_lookups() {
        let mut log = PartitionLog::new(&tp());
        let mut ops = Vec::new();
        assert_eq!(
            log.end_offset_for_epoch(LeaderEpoch(0)),
            EpochEndOffset {
                leader_epoch: LeaderEpoch::UNKNOWN,
                end_offset: UNDEFINED_EPOCH_OFFSET
            }
        );
        assert_eq!(log.epoch_of_last_batch(), LeaderEpoch::UNKNOWN);
        log.assign_epoch_start(LeaderEpoch(0), Offset(0), &mut ops);
        log.append_as_leader(&batch("a", 5), LeaderEpoch(0), &mut ops)
            .unwrap();
        log.assign_epoch_start(LeaderEpoch(2), Offset(5), &mut ops);
        log.append_as_leader(&batch("b", 2), LeaderEpoch(2), &mut ops)
            .unwrap();
        log.append_as_leader(&batch("c", 2), LeaderEpoch(2), &mut ops)
            .unwrap();
        assert_eq!(log.log_end_offset(), Offset(9));
        assert_eq!(
            log.epoch_entries(),
            &[(LeaderEpoch(0), Offset(0)), (LeaderEpoch(2), Offset(5))]
        );
        let eo = |e: i32| {
            let r = log.end_offset_for_epoch(LeaderEpoch(e));
            (r.leader_epoch.0, r.end_offset.0)
        };
        assert_eq!(eo(0), (0, 5));
        assert_eq!(
            eo(1),
            (0, 5),
            "KIP-279: epoch 1 never existed here; answer epoch 0's end"
        );
        assert_eq!(eo(2), (2, 9));
        assert_eq!(eo(3), (2, 9));
        assert_eq!(eo(-1), (-1, -1));
        assert_eq!(log.latest_epoch(), Some(LeaderEpoch(2)));
        assert_eq!(log.epoch_of_last_batch(), LeaderEpoch(2));
        assert_eq!(log.last_written_epoch(), Some(LeaderEpoch(2)));
        // Stale or repeated epochs are ignored.
        ops.clear();
        log.assign_epoch_start(LeaderEpoch(1), Offset(9), &mut ops);
        log.assign_epoch_start(LeaderEpoch(2), Offset(9), &mut ops);
        assert!(ops.is_empty());
        // A leader of epoch 4 that has written nothing yet: the cache names epoch 4, the last
        // written record is still of epoch 2.
        log.assign_epoch_start(LeaderEpoch(4), Offset(9), &mut ops);
        assert_eq!(log.latest_epoch(), Some(LeaderEpoch(4)));
        assert_eq!(log.last_written_epoch(), Some(LeaderEpoch(2)));
        // A request below the earliest cached epoch has no answer.
        let mut late = PartitionLog::new(&tp());
        late.assign_epoch_start(LeaderEpoch(3), Offset(0), &mut ops);
        assert_eq!(
            late.end_offset_for_epoch(LeaderEpoch(2)).end_offset,
            UNDEFINED_EPOCH_OFFSET
        );
        assert_eq!(
            late.end_offset_for_epoch(LeaderEpoch(3)).end_offset,
            Offset(0)
        );
    }

    #[test]
    fn checkpoint_format_and_recovery_of_the_epoch_cache() {
        let mut disk = MemDisk::default();
        let mut log = PartitionLog::new(&tp());
        let mut ops = Vec::new();
        log.assign_epoch_start(LeaderEpoch(0), Offset(0), &mut ops);
        log.append_as_leader(&batch("a", 5), LeaderEpoch(0), &mut ops)
            .unwrap();
        log.assign_epoch_start(LeaderEpoch(2), Offset(5), &mut ops);
        log.append_as_leader(&batch("b", 4), LeaderEpoch(2), &mut ops)
            .unwrap();
        log.assign_epoch_start(LeaderEpoch(3), Offset(9), &mut ops); // leader again, nothing written
        apply(&mut disk, &mut ops);
        assert_eq!(
            disk.files["events-0/leader-epoch-checkpoint"],
            b"0\n3\n0 0\n2 5\n3 9\n".to_vec()
        );
        // On restart the entry at the LEO is dropped (the broker re-assigns when it leads).
        let (back, _) = PartitionLog::recover(&tp(), &disk.files, &mut ops);
        assert_eq!(
            back.epoch_entries(),
            &[(LeaderEpoch(0), Offset(0)), (LeaderEpoch(2), Offset(5))]
        );
        assert!(
            matches!(&ops[..], [DiskOp::WriteAtomic { data, .. }] if data == b"0\n2\n0 0\n2 5\n")
        );
        // A lost or garbled checkpoint is rebuilt from the batches.
        for junk in [None, Some(b"garbage".to_vec())] {
            let mut files = disk.files.clone();
            match junk {
                None => files.remove("events-0/leader-epoch-checkpoint"),
                Some(j) => files.insert("events-0/leader-epoch-checkpoint".into(), j),
            };
            let (back, _) = PartitionLog::recover(&tp(), &files, &mut ops);
            assert_eq!(
                back.epoch_entries(),
                &[(LeaderEpoch(0), Offset(0)), (LeaderEpoch(2), Offset(5))]
            );
        }
    }

    #[test]
    fn follower_append_keeps_offsets_and_replaces_stale_epochs() {
        let mut leader = PartitionLog::new(&tp());
        let mut ops = Vec::new();
        leader
            .append_as_leader(&batch("a", 3), LeaderEpoch(4), &mut ops)
            .unwrap();
        leader
            .append_as_leader(&batch("b", 2), LeaderEpoch(4), &mut ops)
            .unwrap();

        let mut follower = PartitionLog::new(&tp());
        // This replica briefly led epoch 5 with no data; the real history says epoch 4.
        follower.assign_epoch_start(LeaderEpoch(5), Offset(0), &mut ops);
        let fetched = leader.read(Offset(0), Offset(5), u32::MAX).unwrap();
        assert_eq!(
            follower.append_as_follower(&fetched[1], &mut ops),
            Err(LogError::NonContiguous {
                expected: Offset(0),
                got: Offset(3)
            })
        );
        for b in &fetched {
            follower.append_as_follower(b, &mut ops).unwrap();
        }
        assert_eq!(bl(&follower), bl(&leader));
        assert_eq!(follower.epoch_entries(), &[(LeaderEpoch(4), Offset(0))]);
        assert_eq!(follower.records(), leader.records());
    }

    #[test]
    fn corrupt_batches_are_rejected_without_side_effects() {
        let mut log = PartitionLog::new(&tp());
        let mut ops = Vec::new();
        let mut bad = batch("a", 2);
        let n = bad.len();
        bad[n - 1] ^= 0xff;
        assert!(matches!(
            log.append_as_leader(&bad, LeaderEpoch(0), &mut ops),
            Err(LogError::Corrupt(BatchError::BadCrc { .. }))
        ));
        let two = [batch("a", 1), batch("b", 1)].concat();
        assert!(matches!(
            log.append_as_leader(&two, LeaderEpoch(0), &mut ops),
            Err(LogError::Corrupt(BatchError::Malformed(_)))
        ));
        let mut gap = RecordBatch::new(vec![(None, None), (None, None)], 0);
        gap.records[1].offset_delta = 5;
        gap.last_offset_delta = 5;
        assert!(log
            .append_as_leader(&gap.encode(), LeaderEpoch(0), &mut ops)
            .is_err());
        assert!(log.append_as_follower(&[], &mut ops).is_err());
        assert!(ops.is_empty());
        assert_eq!(log.log_end_offset(), Offset(0));
        let err = LogError::Corrupt(BatchError::BadMagic(1));
        assert!(err.to_string().contains("magic"));
    }

    #[test]
    fn flush_policy() {
        let mut log = PartitionLog::new(&tp());
        let mut ops = Vec::new();
        log.flush(&mut ops);
        assert!(ops.is_empty(), "no segment yet, nothing to sync");
        log.append_as_leader(&batch("a", 3), LeaderEpoch(0), &mut ops)
            .unwrap();
        ops.clear();
        assert!(!log.maybe_flush(4, &mut ops));
        assert!(log.maybe_flush(3, &mut ops));
        assert_eq!(
            ops,
            vec![DiskOp::Sync {
                file: log.segment_file()
            }]
        );
        assert_eq!(log.unflushed_messages(), 0);
        assert!(!log.maybe_flush(0, &mut ops), "nothing unflushed");
    }

    // ---- segments, indexes, recovery point, retention, compaction ----

    /// A batch of `n` keyed records `key = keys[i]`, value `"{tag}-{i}"` (`None` for a
    /// tombstone when the tag is empty), at timestamp `ts`.
    fn keyed_batch(tag: &str, keys: &[&str], ts: i64) -> Vec<u8> {
        let records = keys
            .iter()
            .enumerate()
            .map(|(i, k)| {
                let value = (!tag.is_empty()).then(|| format!("{tag}-{i}").into_bytes());
                (Some(k.as_bytes().to_vec()), value)
            })
            .collect();
        RecordBatch::new(records, ts).encode()
    }

    fn small_config() -> LogConfig {
        LogConfig {
            segment_bytes: 300,
            index_interval_bytes: 0,
            ..LogConfig::default()
        }
    }

    /// `n` one-record batches at timestamps 1000, 1010, ...; segments of 300 bytes.
    fn many_segments(disk: &mut MemDisk, n: usize, config: LogConfig) -> PartitionLog {
        let mut log = PartitionLog::new(&tp());
        log.set_config(config);
        let mut ops = Vec::new();
        log.assign_epoch_start(LeaderEpoch(0), Offset(0), &mut ops);
        for i in 0..n {
            let b = RecordBatch::new(
                vec![(None, Some(format!("v-{i}").into_bytes()))],
                1_000 + 10 * i as i64,
            )
            .encode();
            log.append_as_leader(&b, LeaderEpoch(0), &mut ops).unwrap();
        }
        apply(disk, &mut ops);
        log
    }

    #[test]
    fn segments_roll_by_size_and_are_named_by_base_offset() {
        let mut disk = MemDisk::default();
        let log = many_segments(&mut disk, 40, small_config());
        assert!(
            log.segments().len() > 5,
            "{} segments",
            log.segments().len()
        );
        assert_eq!(log.rolled_segments() as usize, log.segments().len() - 1);
        let mut expected_base = Offset(0);
        for seg in log.segments() {
            assert_eq!(seg.base_offset(), expected_base);
            assert!(seg.size_bytes() <= 300);
            let file = seg.log_file("events-0");
            assert_eq!(file, format!("events-0/{:020}.log", seg.base_offset().0));
            let data = &disk.files[&file];
            assert_eq!(data.len() as u64, seg.size_bytes());
            // On-disk indexes equal the in-memory ones.
            let index = disk.files.get(&seg.index_file("events-0")).cloned();
            assert_eq!(
                index.unwrap_or_default(),
                segment::encode_offset_entries(seg.offset_index())
            );
            expected_base = seg.last_offset().unwrap().next();
        }
        assert_eq!(log.log_end_offset(), Offset(40));
        // A roll flushed the old segment and moved the recovery point.
        assert_eq!(
            log.recovery_point(),
            log.segments().last().unwrap().base_offset()
        );
        assert_eq!(log.records().len(), 40);
    }

    #[test]
    fn segments_roll_by_time_and_when_the_index_is_full() {
        let mut disk = MemDisk::default();
        let by_time = many_segments(
            &mut disk,
            10,
            LogConfig {
                segment_ms: 25,
                ..LogConfig::default()
            },
        );
        // Timestamps 1000..1090: a segment holds records within 25 ms of its first one.
        let bases: Vec<i64> = by_time
            .segments()
            .iter()
            .map(|s| s.base_offset().0)
            .collect();
        assert_eq!(bases, vec![0, 3, 6, 9]);
        let mut disk = MemDisk::default();
        let by_index = many_segments(
            &mut disk,
            10,
            LogConfig {
                index_interval_bytes: 0,
                max_index_size_bytes: 16, // two offset entries, one time entry
                ..LogConfig::default()
            },
        );
        for seg in by_index.segments() {
            assert!(seg.offset_index().len() <= 2 && seg.time_index().len() <= 2);
        }
        assert!(by_index.segments().len() >= 4);
    }

    #[test]
    fn offset_lookup_uses_the_floor_segment_and_the_sparse_index() {
        let mut disk = MemDisk::default();
        let log = many_segments(&mut disk, 60, small_config());
        for o in 0..60 {
            let i = log.segment_index_for(Offset(o));
            let seg = &log.segments()[i];
            assert!(seg.base_offset().0 <= o);
            if let Some(next) = log.segments().get(i + 1) {
                assert!(next.base_offset().0 > o);
            }
            // The index gives a position at or before the batch, never after it.
            let pos = seg.lookup(Offset(o));
            let b = &seg.batches()[seg.find_batch(Offset(o)).unwrap()];
            assert!(pos as u64 <= b.position);
            assert!(b.base_offset.0 <= o && o <= b.last_offset.0);
            let read = log.read(Offset(o), Offset(60), 1).unwrap();
            assert_eq!(read[0], b.bytes);
        }
        // With index interval 0 every batch but the first of a segment is indexed.
        let seg = &log.segments()[0];
        assert_eq!(seg.offset_index().len(), seg.batches().len() - 1);
        assert_eq!(
            seg.offset_index()[0].position as u64,
            seg.batches()[1].position
        );
        // Reads cross segment boundaries.
        assert_eq!(log.read(Offset(0), Offset(60), u32::MAX).unwrap().len(), 60);
        let mut disk = MemDisk::default();
        let sparse = many_segments(
            &mut disk,
            30,
            LogConfig {
                index_interval_bytes: 4096,
                ..LogConfig::default()
            },
        );
        assert!(sparse.segments()[0].offset_index().is_empty());
        assert_eq!(sparse.segments()[0].lookup(Offset(29)), 0);
        assert_eq!(sparse.read(Offset(17), Offset(30), 1).unwrap().len(), 1);
    }

    #[test]
    fn timestamp_lookup_finds_the_first_offset_at_or_after() {
        let mut disk = MemDisk::default();
        let log = many_segments(&mut disk, 50, small_config());
        // Record i has timestamp 1000 + 10 i.
        assert_eq!(log.offset_for_timestamp(0), Some((Offset(0), 1000)));
        assert_eq!(log.offset_for_timestamp(1000), Some((Offset(0), 1000)));
        assert_eq!(log.offset_for_timestamp(1001), Some((Offset(1), 1010)));
        assert_eq!(log.offset_for_timestamp(1250), Some((Offset(25), 1250)));
        assert_eq!(log.offset_for_timestamp(1255), Some((Offset(26), 1260)));
        assert_eq!(log.offset_for_timestamp(1490), Some((Offset(49), 1490)));
        assert_eq!(log.offset_for_timestamp(1491), None);
        for t in (990..1500).step_by(7) {
            let expected = (0..50).find(|i| 1000 + 10 * i >= t);
            assert_eq!(
                log.offset_for_timestamp(t).map(|(o, _)| o.0),
                expected,
                "t={t}"
            );
        }
    }

    #[test]
    fn recovery_trusts_flushed_segments_and_rebuilds_the_rest() {
        let mut disk = MemDisk::default();
        let mut log = many_segments(&mut disk, 40, small_config());
        let rp = log.recovery_point();
        let mut m = BTreeMap::new();
        m.insert(tp(), rp);
        disk.files.insert(
            checkpoint::RECOVERY_POINT_CHECKPOINT.into(),
            checkpoint::encode(&m),
        );
        let mut ops = Vec::new();
        let (back, report) =
            PartitionLog::recover_with_config(&tp(), &disk.files, small_config(), &mut ops);
        assert_eq!(report.recovered_segments, 1, "only the active segment");
        assert_eq!(report.discarded_bytes, 0);
        assert!(ops.is_empty(), "{ops:?}");
        assert_eq!(bl(&back), bl(&log));
        assert_eq!(back.recovery_point(), rp);

        // A torn active segment: cut, its index rebuilt; earlier segments untouched.
        let active = log.segments().last().unwrap().clone();
        let file = active.log_file("events-0");
        let len = disk.files[&file].len();
        disk.files.get_mut(&file).unwrap().truncate(len - 3);
        // A garbage index for the active segment is not trusted.
        disk.files
            .insert(active.index_file("events-0"), vec![0xff; 16]);
        let (back, report) =
            PartitionLog::recover_with_config(&tp(), &disk.files, small_config(), &mut ops);
        assert_eq!(report.discarded_batches, 1);
        assert_eq!(back.log_end_offset(), Offset(39));
        assert!(ops
            .iter()
            .any(|op| matches!(op, DiskOp::Truncate { file: f, .. } if *f == file)));
        assert!(ops.iter().any(
            |op| matches!(op, DiskOp::WriteAtomic { file: f, .. } | DiskOp::Truncate { file: f, .. } if *f == active.index_file("events-0"))
        ));
        apply(&mut disk, &mut ops);
        let (again, report) =
            PartitionLog::recover_with_config(&tp(), &disk.files, small_config(), &mut ops);
        assert_eq!(report.discarded_bytes, 0);
        assert!(ops.is_empty(), "repairs are idempotent: {ops:?}");
        assert_eq!(bl(&again), bl(&back));
        // Appends continue, rolling as before.
        for i in 0..10 {
            log = again.clone();
            let b = RecordBatch::new(vec![(None, Some(vec![i]))], 2_000).encode();
            log.append_as_leader(&b, LeaderEpoch(0), &mut ops).unwrap();
        }
    }

    #[test]
    fn recovery_cuts_at_corruption_and_deletes_later_segments() {
        let mut disk = MemDisk::default();
        let log = many_segments(&mut disk, 40, small_config());
        assert!(log.segments().len() >= 4);
        // No recovery point: every segment is validated. Corrupt the second segment.
        let second = &log.segments()[1];
        let file = second.log_file("events-0");
        let at = second.batches()[1].position as usize + 30;
        disk.files.get_mut(&file).unwrap()[at] ^= 0x40;
        let mut ops = Vec::new();
        let (back, report) =
            PartitionLog::recover_with_config(&tp(), &disk.files, small_config(), &mut ops);
        assert_eq!(back.log_end_offset(), second.batches()[1].base_offset);
        assert_eq!(back.segments().len(), 2);
        let later: u64 = log.segments()[2..].iter().map(|s| s.size_bytes()).sum();
        assert_eq!(
            report.discarded_bytes,
            later + second.size_bytes() - second.batches()[1].position
        );
        for seg in &log.segments()[2..] {
            assert!(ops.contains(&DiskOp::Delete {
                file: seg.log_file("events-0")
            }));
        }
        apply(&mut disk, &mut ops);
        let (again, _) =
            PartitionLog::recover_with_config(&tp(), &disk.files, small_config(), &mut ops);
        assert_eq!(again.log_end_offset(), back.log_end_offset());
        // The same corruption below a recovery point is not served either.
        let mut disk = MemDisk::default();
        let log = many_segments(&mut disk, 40, small_config());
        let mut m = BTreeMap::new();
        m.insert(tp(), log.recovery_point());
        disk.files.insert(
            checkpoint::RECOVERY_POINT_CHECKPOINT.into(),
            checkpoint::encode(&m),
        );
        disk.files.get_mut(&file).unwrap()[at] ^= 0x40;
        let (back, _) =
            PartitionLog::recover_with_config(&tp(), &disk.files, small_config(), &mut ops);
        assert_eq!(back.log_end_offset(), second.batches()[1].base_offset);
    }

    #[test]
    fn truncation_across_segments() {
        let mut disk = MemDisk::default();
        let mut log = many_segments(&mut disk, 40, small_config());
        let bases: Vec<Offset> = log.segments().iter().map(|s| s.base_offset()).collect();
        let mut ops = Vec::new();
        let target = Offset(bases[2].0 + 1);
        assert_eq!(log.truncate_to(target, &mut ops), target);
        assert_eq!(log.segments().len(), 3);
        assert!(ops.contains(&DiskOp::Delete {
            file: format!("events-0/{:020}.log", bases[3].0)
        }));
        apply(&mut disk, &mut ops);
        let (back, _) =
            PartitionLog::recover_with_config(&tp(), &disk.files, small_config(), &mut ops);
        assert_eq!(bl(&back), bl(&log));
        // Truncating to a segment's base deletes that segment; the previous one is active.
        assert_eq!(log.truncate_to(bases[2], &mut ops), bases[2]);
        assert_eq!(log.segments().len(), 2);
        let b = RecordBatch::new(vec![(None, Some(b"x".to_vec()))], 5_000).encode();
        log.append_as_leader(&b, LeaderEpoch(1), &mut ops).unwrap();
        assert_eq!(log.log_end_offset(), bases[2].next());
        apply(&mut disk, &mut ops);
        let (back, _) =
            PartitionLog::recover_with_config(&tp(), &disk.files, small_config(), &mut ops);
        assert_eq!(back.log_end_offset(), log.log_end_offset());
        // Truncate fully and start over at a later offset.
        log.truncate_fully_and_start_at(Offset(100), &mut ops);
        assert_eq!(
            (log.log_start_offset(), log.log_end_offset()),
            (Offset(100), Offset(100))
        );
        assert!(log.epoch_entries().is_empty());
        log.append_as_leader(&b, LeaderEpoch(2), &mut ops).unwrap();
        apply(&mut disk, &mut ops);
        assert!(disk.files.contains_key("events-0/00000000000000000100.log"));
        let (back, _) = PartitionLog::recover(&tp(), &disk.files, &mut ops);
        assert_eq!(back.log_start_offset(), Offset(100));
        assert_eq!(back.records().len(), 1);
    }

    #[test]
    fn retention_deletes_whole_old_segments_below_the_high_watermark() {
        let mut disk = MemDisk::default();
        let config = LogConfig {
            retention_ms: 100,
            ..small_config()
        };
        let mut log = many_segments(&mut disk, 40, config);
        let bases: Vec<Offset> = log.segments().iter().map(|s| s.base_offset()).collect();
        let mut ops = Vec::new();
        // Nothing is old enough at t=1100 for the first segment (max ts 1000 + ...).
        let first_max = log.segments()[0].max_timestamp();
        assert_eq!(
            log.delete_old_segments(first_max + 100, Offset(40), &mut ops),
            None
        );
        // Old enough, but the HW caps it: only segments ending at or below the HW go.
        let r = log
            .delete_old_segments(10_000, bases[2], &mut ops)
            .expect("deleted");
        assert_eq!(r.deleted_segments, vec![bases[0], bases[1]]);
        assert_eq!(r.reason, "retention-ms");
        assert_eq!(
            (r.old_log_start_offset, r.new_log_start_offset),
            (Offset(0), bases[2])
        );
        assert_eq!(log.log_start_offset(), bases[2]);
        assert_eq!(log.epoch_entries(), &[(LeaderEpoch(0), bases[2])]);
        assert!(matches!(
            log.read(Offset(0), Offset(40), 100),
            Err(LogError::OffsetOutOfRange { .. })
        ));
        assert_eq!(log.records()[0].0, bases[2]);
        // Never the active segment, even when everything is old and committed.
        log.delete_old_segments(10_000, Offset(40), &mut ops)
            .unwrap();
        assert_eq!(log.segments().len(), 1);
        apply(&mut disk, &mut ops);
        assert!(!disk.files.contains_key("events-0/00000000000000000000.log"));
        let (back, _) = PartitionLog::recover(&tp(), &disk.files, &mut ops);
        assert_eq!(back.log_start_offset(), log.log_start_offset());
        assert_eq!(back.epoch_entries(), log.epoch_entries());
        // Unlimited retention deletes nothing.
        let mut disk = MemDisk::default();
        let mut log = many_segments(
            &mut disk,
            40,
            LogConfig {
                retention_ms: -1,
                ..small_config()
            },
        );
        assert_eq!(
            log.delete_old_segments(i64::MAX / 2, Offset(40), &mut ops),
            None
        );
    }

    #[test]
    fn retention_by_bytes_and_by_log_start_offset() {
        let mut disk = MemDisk::default();
        let mut log = many_segments(
            &mut disk,
            40,
            LogConfig {
                retention_bytes: 600,
                ..small_config()
            },
        );
        let total = log.size_bytes();
        let mut ops = Vec::new();
        let r = log.delete_old_segments(0, Offset(40), &mut ops).unwrap();
        assert_eq!(r.reason, "retention-bytes");
        assert!(log.size_bytes() >= 600, "{} of {total}", log.size_bytes());
        assert!(log.size_bytes() - log.segments()[0].size_bytes() < 600);
        // A follower learns a log start offset inside a segment: reads below it fail, and the
        // segments wholly below it go at the next pass, whatever the policy.
        let mut disk = MemDisk::default();
        let mut log = many_segments(
            &mut disk,
            40,
            LogConfig {
                retention_ms: -1,
                cleanup_policy: CleanupPolicy {
                    delete: false,
                    compact: false,
                },
                ..small_config()
            },
        );
        let bases: Vec<Offset> = log.segments().iter().map(|s| s.base_offset()).collect();
        let lso = bases[1].next();
        assert!(log.maybe_increment_log_start_offset(lso, &mut ops));
        assert!(!log.maybe_increment_log_start_offset(Offset(1), &mut ops));
        assert_eq!(log.log_start_offset(), lso);
        assert!(log.read(bases[1], Offset(40), 100).is_err());
        assert_eq!(log.read(lso, Offset(40), 1).unwrap().len(), 1);
        let r = log.delete_old_segments(0, Offset(40), &mut ops).unwrap();
        assert_eq!(r.deleted_segments, vec![bases[0]]);
        assert_eq!(r.reason, "log-start-offset");
        assert_eq!(
            log.log_start_offset(),
            lso,
            "inside the first remaining segment"
        );
        assert_eq!(log.records()[0].0, lso);
    }

    #[test]
    fn compaction_keeps_the_last_value_per_key_and_preserves_offsets() {
        let config = LogConfig {
            segment_bytes: 250,
            index_interval_bytes: 0,
            cleanup_policy: CleanupPolicy {
                delete: false,
                compact: true,
            },
            delete_retention_ms: 1_000,
            ..LogConfig::default()
        };
        let mut log = PartitionLog::new(&tp());
        log.set_config(config);
        let mut ops = Vec::new();
        let keys = ["a", "b", "c"];
        for i in 0..30 {
            let k = keys[i % 3];
            let b = keyed_batch(&format!("v{i}"), &[k], 1_000 + i as i64);
            log.append_as_leader(&b, LeaderEpoch(0), &mut ops).unwrap();
        }
        // A tombstone for "a", then more records so it leaves the active segment.
        log.append_as_leader(&keyed_batch("", &["a"], 2_000), LeaderEpoch(0), &mut ops)
            .unwrap();
        for i in 0..6 {
            let b = keyed_batch(&format!("w{i}"), &["b"], 2_001 + i);
            log.append_as_leader(&b, LeaderEpoch(0), &mut ops).unwrap();
        }
        let leo = log.log_end_offset();
        let mut disk = MemDisk::default();
        apply(&mut disk, &mut ops);
        // Nothing is cleaned above the HW.
        assert_eq!(log.clean(5_000, Offset(0), &mut ops), None);
        let r = log.clean(5_000, leo, &mut ops).expect("cleaned");
        assert!(!r.cleaned_segments.is_empty());
        let kept = log.keyed_records();
        let cleanable_end = r.cleanable_end;
        // In the cleaned range each key appears once, at its latest offset there.
        let mut seen = BTreeMap::new();
        for (o, k, _, _) in kept.iter().filter(|(o, ..)| *o < cleanable_end) {
            assert!(seen.insert(k.clone(), *o).is_none(), "key twice: {k:?}");
        }
        // Offsets are preserved and increase; the active segment is untouched.
        assert!(kept.windows(2).all(|w| w[0].0 < w[1].0));
        assert_eq!(log.log_end_offset(), leo);
        assert_eq!(
            kept.iter().filter(|(o, ..)| *o >= cleanable_end).count() as i64,
            leo.0 - cleanable_end.0
        );
        // The tombstone survives the first pass, and delete.retention.ms after it, goes.
        assert!(kept
            .iter()
            .any(|(_, k, v, _)| k.as_deref() == Some(&b"a"[..]) && v.is_none()));
        assert_eq!(log.clean(5_500, leo, &mut ops), None);
        let r2 = log.clean(7_000, leo, &mut ops).expect("tombstone expired");
        assert_eq!(r2.expired_tombstones.len(), 1);
        assert!(r2.superseded.is_empty());
        apply(&mut disk, &mut ops);
        // Reads skip the gaps; recovery accepts the gapped batches.
        assert!(log.read(Offset(0), leo, u32::MAX).unwrap().len() < 37);
        let (back, report) =
            PartitionLog::recover_with_config(&tp(), &disk.files, config, &mut ops);
        assert_eq!(report.discarded_bytes, 0);
        assert_eq!(back.keyed_records(), log.keyed_records());
        // A follower copies the compacted batches, gaps and all.
        let mut follower = PartitionLog::new(&tp());
        follower.set_config(config);
        for b in log.read(Offset(0), leo, u32::MAX).unwrap() {
            follower.append_as_follower(&b, &mut ops).unwrap();
        }
        assert_eq!(follower.keyed_records(), log.keyed_records());
        // A delete-only log is never compacted.
        let mut plain = many_segments(&mut MemDisk::default(), 20, small_config());
        assert_eq!(plain.clean(0, Offset(20), &mut ops), None);
    }
}
