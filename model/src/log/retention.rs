//! Retention and the log start offset.
//!
//! With `cleanup.policy` containing `delete`, [`PartitionLog::delete_old_segments`] removes
//! whole non-active segments from the front of the log whose largest timestamp is older than
//! `retention.ms`, while the log is larger than `retention.bytes`, or that lie wholly below the
//! log start offset, never a segment holding an offset at or above the high watermark (Kafka's
//! `UnifiedLog.deleteOldSegments`). The log start offset then moves to the first remaining
//! segment. A follower also advances its log start offset to the leader's
//! ([`PartitionLog::maybe_increment_log_start_offset`]), possibly into the middle of a segment.
//! Reads below the log start offset are out of range.
//!
//! Mirrors Kafka's `UnifiedLog.deleteOldSegments` and `UnifiedLog.maybeIncrementLogStartOffset`.

use super::*;

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

impl PartitionLog {
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
}
