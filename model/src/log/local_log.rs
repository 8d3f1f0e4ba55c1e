//! The segments of a partition's log: appends as leader and as follower, reads, offset and
//! timestamp lookups, rolling a new segment, truncation and flushing.
//!
//! Mirrors Kafka's `LocalLog` and the append/read/truncate paths of `UnifiedLog`.

use super::*;

impl PartitionLog {
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
        let txn_before = AbortedTxn::encode(&active.txn_index);
        let new_size = active.truncate_to(new_end, interval);
        active.sync_txn_index_file(
            &dir,
            (!txn_before.is_empty()).then_some(txn_before.as_slice()),
            out,
        );
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
        self.txn = self.replay_txn_state().0;
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
        self.txn = TxnStateManager::default();
        if !self.epochs.is_empty() {
            self.epochs.clear();
            self.write_checkpoint(out);
        }
        self.check_invariants();
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

    pub(super) fn push_batch(&mut self, h: &BatchHeader, bytes: Vec<u8>, out: &mut Vec<DiskOp>) {
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
        // Borrow the segment and the transactional state apart.
        let active = self
            .segments
            .last_mut()
            .expect("a log always has a segment");
        let batch = log_batch(h, active.size_bytes, bytes);
        active.append(&dir, batch, interval, out);
        let appended = active.batches.last().expect("just appended");
        if let Some(aborted) = apply_txn_batch(&mut self.txn, appended) {
            active.txn_index.push(aborted);
            out.push(DiskOp::Append {
                file: active.txn_index_file(&dir),
                data: AbortedTxn::encode(&[aborted]),
            });
        }
        self.unflushed_messages += h.records_count as u64;
        if h.partition_leader_epoch.0 >= 0
            && self.assign_epoch(h.partition_leader_epoch, h.base_offset)
        {
            self.write_checkpoint(out);
        }
    }

    /// Starts a new active segment at the LEO, after flushing the old one (Kafka's `roll`).
    pub(super) fn roll(&mut self, out: &mut Vec<DiskOp>) {
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
}

/// Deletes a segment's files (the indexes only if they have entries, so exist on disk).
pub(super) fn delete_segment_files(dir: &str, seg: &Segment, out: &mut Vec<DiskOp>) {
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
    if !seg.txn_index.is_empty() {
        out.push(DiskOp::Delete {
            file: seg.txn_index_file(dir),
        });
    }
}

/// Applies one batch of the log to the transactional state (a data batch may open its
/// producer's transaction, a marker ends it) and returns the aborted-transaction index entry
/// an ABORT marker makes. Batches without a producer id take no part in transactions.
pub(super) fn apply_txn_batch(txn: &mut TxnStateManager, b: &LogBatch) -> Option<AbortedTxn> {
    if b.producer_id == ProducerId::NONE {
        return None;
    }
    if !b.is_control {
        txn.on_data_batch(
            b.producer_id,
            b.producer_epoch,
            b.is_transactional,
            b.base_offset,
        );
        return None;
    }
    let (batch, _) = RecordBatch::decode(&b.bytes).expect("a batch in the log was validated");
    // A control record of another type than ABORT/COMMIT ends nothing (Kafka ignores it).
    let (result, coordinator_epoch) = batch.txn_marker()?;
    let done = txn.on_marker(
        b.producer_id,
        b.producer_epoch,
        coordinator_epoch,
        result,
        b.base_offset,
    );
    (result == TransactionResult::Abort).then(|| AbortedTxn {
        producer_id: done.producer_id,
        first_offset: done.first_offset,
        last_offset: done.last_offset,
        last_stable_offset: txn.last_stable_offset_after(&done),
    })
}

pub(super) fn log_batch(h: &BatchHeader, position: u64, bytes: Vec<u8>) -> LogBatch {
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
