//! The log of one partition replica, as a state machine over the node's disk.
//!
//! # What the log is
//! A partition's log is an append-only sequence of record batches ([`crate::record`]) with
//! dense offsets `log_start_offset .. log_end_offset`. Kafka stores it in a directory
//! `TOPIC-PARTITION/` as *segments*, files named by the base offset of their first batch
//! zero-padded to 20 digits (`00000000000000000000.log`); batches are written back to back,
//! exactly as they travel on the wire. This model keeps one segment per partition for now
//! (the helpers are named per segment so that rolling can come later).
//!
//! [`PartitionLog`] keeps every batch in memory (the page cache) and never performs I/O: each
//! mutating method pushes [`DiskOp`]s that the node's shell executes in order. Appends are
//! volatile until a [`DiskOp::Sync`] ([`PartitionLog::flush`]); Kafka does not fsync on the
//! produce path (`log.flush.interval.messages` defaults to "never") and relies on replication
//! instead, which is exactly what power-failure scenarios exercise.
//!
//! # The log end offset
//! The *log end offset* (LEO) is the offset the next appended record will get. It is a
//! property of this replica's log alone and may run ahead of the partition's *high watermark*
//! (HW, the offset below which every ISR member has the data; the partition, not the log, owns
//! it). Records between HW and LEO are uncommitted: a replica may have to truncate them when
//! it follows a new leader, which is what [`PartitionLog::truncate_to`] is for.
//!
//! # The leader-epoch cache (KIP-101, KIP-279)
//! Every batch carries the epoch of the leader that appended it (`partitionLeaderEpoch`). The
//! log remembers, per epoch, the first offset written in it: `[(epoch, start_offset), ...]`,
//! strictly increasing in both, persisted in `leader-epoch-checkpoint` (Kafka's text format:
//! a version line `0`, a count line, then one `epoch start_offset` line per entry). A leader
//! adds its epoch at its LEO when it takes over ([`PartitionLog::assign_epoch_start`]); any
//! appended batch with an epoch newer than the cache's latest adds an entry too.
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
//! Sources: Kafka's `UnifiedLog`, `LogSegment`, `LeaderEpochFileCache` and
//! `LeaderEpochCheckpointFile`; KIP-101 ("Alter Replication Protocol to use Leader Epoch rather
//! than High Watermark for Truncation"); KIP-279 ("Fix log divergence between leader and
//! follower after fast leader fail over"); hachikuji/kafka-specification `Kip101.tla`,
//! `Kip279.tla`.

use crate::effects::DiskOp;
use crate::protocol::EpochEndOffset;
use crate::record::{self, BatchError, BatchHeader, RecordBatch};
use crate::types::{LeaderEpoch, Offset, ProducerEpoch, ProducerId, Sequence, TopicPartition};
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
    format!("{:020}.log", base_offset.0)
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

/// What [`PartitionLog::recover`] threw away at the end of the segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RecoveryReport {
    /// Bytes cut off the segment file (a torn or corrupt tail).
    pub discarded_bytes: u64,
    /// Batches, complete or partial, that those bytes held (counted by walking the batch
    /// headers in the discarded region as far as they parse; at least 1 if any byte was cut).
    pub discarded_batches: usize,
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

/// The log of one partition replica: batches in memory, disk changes emitted as [`DiskOp`]s.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionLog {
    tp: TopicPartition,
    dir: String,
    /// Base offset of the (single, active) segment; also the log start offset.
    segment_base_offset: Offset,
    /// Bytes in the segment file as this log has written it.
    segment_size_bytes: u64,
    /// Whether the segment file exists (so that `flush` has something to sync).
    segment_exists: bool,
    batches: Vec<LogBatch>,
    /// The leader-epoch cache: strictly increasing epochs and start offsets, starts <= LEO.
    epochs: Vec<(LeaderEpoch, Offset)>,
    unflushed_messages: u64,
}

impl PartitionLog {
    /// An empty log for `tp` in directory `"{topic}-{partition}"`: log start and end offset 0,
    /// empty epoch cache, no files yet (the segment is created by the first append).
    pub fn new(tp: &TopicPartition) -> Self {
        PartitionLog {
            tp: tp.clone(),
            dir: tp.to_string(),
            segment_base_offset: Offset(0),
            segment_size_bytes: 0,
            segment_exists: false,
            batches: Vec::new(),
            epochs: Vec::new(),
            unflushed_messages: 0,
        }
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
        format!(
            "{}/{}",
            self.dir,
            segment_file_name(self.segment_base_offset)
        )
    }

    /// Path of the leader-epoch checkpoint, e.g. `events-0/leader-epoch-checkpoint`.
    pub fn checkpoint_file(&self) -> String {
        format!("{}/{}", self.dir, LEADER_EPOCH_CHECKPOINT)
    }

    /// Rebuilds the log of `tp` from a node's files (all of them; the log picks its own
    /// directory). Scans the segment from the start and validates each batch (length, magic,
    /// CRC, record structure, offsets contiguous from the segment's base offset); at the first
    /// bad or incomplete batch it truncates the file there (emitting [`DiskOp::Truncate`] and
    /// [`DiskOp::Sync`], as Kafka's `LogSegment.recover` does) and reports what it discarded.
    ///
    /// The leader-epoch checkpoint is loaded if present and parsable; entries starting at or
    /// beyond the recovered LEO are dropped, and then every batch's epoch is assigned again in
    /// order (Kafka rebuilds the cache from the batches it recovers, too). Because this log
    /// still holds every batch since offset 0, the result is the cache the batches imply; the
    /// checkpoint is rewritten if it differs. Other `.log` files in the directory are ignored
    /// (one segment per partition for now).
    pub fn recover(
        tp: &TopicPartition,
        files: &BTreeMap<String, Vec<u8>>,
        out: &mut Vec<DiskOp>,
    ) -> (Self, RecoveryReport) {
        let mut log = PartitionLog::new(tp);
        let mut report = RecoveryReport::default();
        let segment = log.segment_file();
        if let Some(data) = files.get(&segment) {
            log.segment_exists = true;
            let mut pos = 0usize;
            while pos < data.len() {
                let Ok(h) = valid_batch_at(&data[pos..]) else {
                    break;
                };
                if h.base_offset != log.log_end_offset() {
                    break;
                }
                let size = h.size_bytes();
                log.batches
                    .push(log_batch(&h, pos as u64, data[pos..pos + size].to_vec()));
                pos += size;
            }
            log.segment_size_bytes = pos as u64;
            if pos < data.len() {
                report.discarded_bytes = (data.len() - pos) as u64;
                report.discarded_batches = count_batches(&data[pos..]);
                out.push(DiskOp::Truncate {
                    file: segment.clone(),
                    len: pos as u64,
                });
                out.push(DiskOp::Sync { file: segment });
            }
        }

        let leo = log.log_end_offset();
        let stored = files
            .get(&log.checkpoint_file())
            .map(|data| parse_checkpoint(data));
        if let Some(Some(entries)) = &stored {
            log.epochs = entries
                .iter()
                .copied()
                .filter(|&(_, start)| start < leo)
                .collect();
        }
        let batch_epochs: Vec<(LeaderEpoch, Offset)> = log
            .batches
            .iter()
            .map(|b| (b.leader_epoch, b.base_offset))
            .collect();
        for (epoch, base) in batch_epochs {
            if epoch.0 >= 0 {
                log.assign_epoch(epoch, base);
            }
        }
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

    /// The first offset in the log (0 until retention exists).
    pub fn log_start_offset(&self) -> Offset {
        self.segment_base_offset
    }

    /// The offset the next appended record will get (LEO).
    pub fn log_end_offset(&self) -> Offset {
        self.batches
            .last()
            .map_or(self.segment_base_offset, |b| b.last_offset.next())
    }

    /// Bytes in the log (the segment file's length).
    pub fn size_bytes(&self) -> u64 {
        self.segment_size_bytes
    }

    /// Leader append of a producer's batch: validates it (one whole v2 batch, CRC, no
    /// compression, `recordsCount > 0`, offset deltas `0..count`), assigns offsets from the
    /// LEO and stamps `leader_epoch` in place (both outside the CRC), appends it
    /// ([`DiskOp::Append`]), and adds `leader_epoch` to the epoch cache if it is new (writing
    /// the checkpoint). Returns the batch's first and last offsets.
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
        let h = validate_batch(batch)?;
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
    /// batch is validated as in [`PartitionLog::append_as_leader`] and its base offset must be
    /// the LEO. Its epoch updates the epoch cache with Kafka's `LeaderEpochFileCache.assign`
    /// rule: a new epoch is added at the batch's base offset after removing any entry with an
    /// epoch or start offset not below it (so a stale entry this replica assigned as a
    /// short-lived leader, with no data behind it, gives way to the leader's history).
    ///
    /// Errors: [`LogError::Corrupt`], [`LogError::NonContiguous`]; nothing is appended then.
    pub fn append_as_follower(
        &mut self,
        batch: &[u8],
        out: &mut Vec<DiskOp>,
    ) -> Result<(Offset, Offset), LogError> {
        let h = validate_batch(batch)?;
        let expected = self.log_end_offset();
        if h.base_offset != expected {
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

    /// Whole batches starting with the one that contains `from`, in offset order. A batch is
    /// returned only if its `last_offset < max_offset` (pass the HW for consumers, the LEO for
    /// followers). The first batch is returned even if it alone exceeds `max_bytes` (KIP-74:
    /// a fetch always makes progress); later ones only while the total stays within it.
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
        let first = self.batches.partition_point(|b| b.last_offset < from);
        let mut result = Vec::new();
        let mut total_bytes = 0u64;
        for b in &self.batches[first..] {
            if b.last_offset >= max_offset {
                break;
            }
            let len = b.bytes.len() as u64;
            if !result.is_empty() && total_bytes + len > max_bytes as u64 {
                break;
            }
            total_bytes += len;
            result.push(b.bytes.clone());
        }
        Ok(result)
    }

    /// Removes every record at or above `offset`. Batches are never split: the cut is made at
    /// the base offset of the batch containing `offset`, which becomes the new LEO (returned).
    /// Emits [`DiskOp::Truncate`] (volatile, like any write). Epoch-cache entries starting at or
    /// after the new LEO are removed and the checkpoint rewritten if that changed it.
    /// `offset >= LEO` changes nothing (as Kafka's `truncateTo`).
    pub fn truncate_to(&mut self, offset: Offset, out: &mut Vec<DiskOp>) -> Offset {
        let log_end = self.log_end_offset();
        let target = offset.max(self.log_start_offset());
        if target >= log_end {
            return log_end;
        }
        let keep = self.batches.partition_point(|b| b.last_offset < target);
        assert!(
            keep < self.batches.len(),
            "target {target} below LEO {log_end} must be in a batch"
        );
        let new_size = self.batches[keep].position;
        self.batches.truncate(keep);
        self.segment_size_bytes = new_size;
        out.push(DiskOp::Truncate {
            file: self.segment_file(),
            len: new_size,
        });
        let new_end = self.log_end_offset();
        let before = self.epochs.len();
        self.epochs.retain(|&(_, start)| start < new_end);
        if self.epochs.len() != before {
            self.write_checkpoint(out);
        }
        self.check_invariants();
        assert!(new_end <= target && new_end < log_end);
        new_end
    }

    /// Makes every append so far durable: emits [`DiskOp::Sync`] for the segment (if it
    /// exists) and resets the unflushed-message counter.
    pub fn flush(&mut self, out: &mut Vec<DiskOp>) {
        if self.segment_exists {
            out.push(DiskOp::Sync {
                file: self.segment_file(),
            });
        }
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
        self.batches
            .last()
            .map_or(LeaderEpoch::UNKNOWN, |b| b.leader_epoch)
    }

    /// Every batch, in offset order.
    pub fn batches(&self) -> &[LogBatch] {
        &self.batches
    }

    /// `(offset, value, leader epoch)` of every data record, for end-of-run inspection by the
    /// checkers. Control batches (transaction markers) are left out: their records are not
    /// application data, though they do occupy offsets.
    pub fn records(&self) -> Vec<(Offset, Option<Vec<u8>>, LeaderEpoch)> {
        let mut result = Vec::new();
        for b in self.batches.iter().filter(|b| !b.is_control) {
            let (batch, _) = RecordBatch::decode(&b.bytes)
                .expect("a batch in the log was validated when appended");
            for r in batch.records {
                result.push((
                    Offset(b.base_offset.0 + r.offset_delta as i64),
                    r.value,
                    b.leader_epoch,
                ));
            }
        }
        result
    }

    // ---- internals ----

    fn push_batch(&mut self, h: &BatchHeader, bytes: Vec<u8>, out: &mut Vec<DiskOp>) {
        assert_eq!(
            h.base_offset,
            self.log_end_offset(),
            "appends are contiguous"
        );
        assert_eq!(h.size_bytes(), bytes.len());
        let position = self.segment_size_bytes;
        out.push(DiskOp::Append {
            file: self.segment_file(),
            data: bytes.clone(),
        });
        self.segment_exists = true;
        self.segment_size_bytes += bytes.len() as u64;
        self.unflushed_messages += h.records_count as u64;
        self.batches.push(log_batch(h, position, bytes));
        if h.partition_leader_epoch.0 >= 0
            && self.assign_epoch(h.partition_leader_epoch, h.base_offset)
        {
            self.write_checkpoint(out);
        }
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
    /// Cheap checks always (the last two batches, the epoch cache); the full scan in tests.
    fn check_invariants(&self) {
        let leo = self.log_end_offset();
        if let Some(first) = self.batches.first() {
            assert_eq!(
                first.base_offset, self.segment_base_offset,
                "the first batch starts the segment"
            );
            assert_eq!(first.position, 0, "the first batch starts the file");
        }
        let n = self.batches.len();
        let tail_from = if cfg!(test) { 0 } else { n.saturating_sub(2) };
        for (i, b) in self.batches.iter().enumerate().skip(tail_from) {
            assert!(
                b.last_offset >= b.base_offset,
                "batch {b:?} has a negative offset range"
            );
            assert!(!b.bytes.is_empty());
            if i > 0 {
                let prev = &self.batches[i - 1];
                assert_eq!(
                    b.base_offset,
                    prev.last_offset.next(),
                    "offsets are contiguous"
                );
                assert_eq!(
                    b.position,
                    prev.position + prev.bytes.len() as u64,
                    "batches are back to back"
                );
            }
        }
        match self.batches.last() {
            Some(last) => assert_eq!(
                last.position + last.bytes.len() as u64,
                self.segment_size_bytes
            ),
            None => assert_eq!(self.segment_size_bytes, 0),
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
                epoch.0 >= 0 && start >= self.segment_base_offset && start <= leo,
                "bad epoch entry ({epoch}, {start}), LEO {leo}"
            );
        }
        if let (Some(last), Some(&(latest, _))) = (self.batches.last(), self.epochs.last()) {
            assert!(
                last.leader_epoch <= latest,
                "the last batch's epoch {} is newer than the cache's {latest}",
                last.leader_epoch
            );
        }
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

/// Validates `buf` as exactly one appendable batch: decodes it fully (magic, length, CRC,
/// codec, record structure), then applies Kafka's `LogValidator` checks for v2: at least one
/// record, `lastOffsetDelta == count - 1`, and offset deltas `0..count` in order.
fn validate_batch(buf: &[u8]) -> Result<BatchHeader, BatchError> {
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
    record::read_header(buf)
}

/// Validates the batch at the start of `buf` (which may continue with more batches).
fn valid_batch_at(buf: &[u8]) -> Result<BatchHeader, BatchError> {
    let h = record::read_header(buf)?;
    let size = h.size_bytes();
    if buf.len() < size {
        return Err(BatchError::Truncated {
            needed: size,
            available: buf.len(),
        });
    }
    validate_batch(&buf[..size])
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
        let concat: Vec<u8> = log.batches().iter().flat_map(|b| b.bytes.clone()).collect();
        assert_eq!(&concat, file);
        // Offsets and epoch are stamped into the stored bytes, and the CRC still holds.
        let h = record::read_header(&log.batches()[1].bytes).unwrap();
        assert_eq!(
            (h.base_offset, h.partition_leader_epoch),
            (Offset(2), LeaderEpoch(0))
        );
        record::verify_crc(&log.batches()[1].bytes).unwrap();

        let all = log.read(Offset(0), Offset(6), u32::MAX).unwrap();
        assert_eq!(all.len(), 3);
        let from_middle = log.read(Offset(3), Offset(6), u32::MAX).unwrap();
        assert_eq!(
            from_middle.len(),
            2,
            "starts with the batch containing offset 3"
        );
        assert_eq!(from_middle[0], log.batches()[1].bytes);
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
        let sizes: Vec<u32> = log.batches().iter().map(|b| b.bytes.len() as u32).collect();
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
        assert_eq!(report, RecoveryReport::default());
        assert!(ops.is_empty(), "nothing to repair: {ops:?}");
        assert_eq!(back.batches(), log.batches());
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
        let last_len = log.batches()[2].bytes.len();
        let full = disk.files[&file].len();
        disk.files.get_mut(&file).unwrap().truncate(full - 5);
        let mut ops = Vec::new();
        let (back, report) = PartitionLog::recover(&tp(), &disk.files, &mut ops);
        assert_eq!(
            report,
            RecoveryReport {
                discarded_bytes: (last_len - 5) as u64,
                discarded_batches: 1
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
            [&disk.files[&file][..], &log.batches()[2].bytes[..20]].concat(),
        );
        let (back2, report2) = PartitionLog::recover(&tp(), &files, &mut ops);
        assert_eq!(
            report2,
            RecoveryReport {
                discarded_bytes: 20,
                discarded_batches: 1
            }
        );
        assert_eq!(back2.size_bytes() as usize, keep - 20);
    }

    #[test]
    fn recover_stops_at_a_flipped_crc_byte() {
        let mut disk = MemDisk::default();
        let log = three_batches(&mut disk);
        let file = "events-0/00000000000000000000.log".to_string();
        let second = &log.batches()[1];
        let flip_at = second.position as usize + 40; // inside the CRC-covered header
        disk.files.get_mut(&file).unwrap()[flip_at] ^= 0x01;
        let mut ops = Vec::new();
        let (back, report) = PartitionLog::recover(&tp(), &disk.files, &mut ops);
        assert_eq!(back.log_end_offset(), Offset(2));
        assert_eq!(report.discarded_batches, 2);
        assert_eq!(
            report.discarded_bytes,
            (log.batches()[1].bytes.len() + log.batches()[2].bytes.len()) as u64
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
        assert!(log.batches().is_empty());
        assert!(log.epoch_entries().is_empty());
    }

    impl PartitionLog {
        fn clone_without_flush_state(&self) -> PartitionLog {
            PartitionLog {
                unflushed_messages: 0,
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
        // Stale or repeated epochs are ignored.
        ops.clear();
        log.assign_epoch_start(LeaderEpoch(1), Offset(9), &mut ops);
        log.assign_epoch_start(LeaderEpoch(2), Offset(9), &mut ops);
        assert!(ops.is_empty());
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
        assert_eq!(follower.batches(), leader.batches());
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
}
