//! The leader-epoch cache (KIP-101, KIP-279).
//!
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
//! Mirrors Kafka's `LeaderEpochFileCache` and `LeaderEpochCheckpointFile`.

use super::*;

impl PartitionLog {
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

    /// Kafka's `LeaderEpochFileCache.assign`: nothing to do if `epoch` is the latest and starts
    /// no earlier; otherwise drop every entry whose epoch or start is not below the new one and
    /// append it. Returns whether the cache changed.
    pub(super) fn assign_epoch(&mut self, epoch: LeaderEpoch, start_offset: Offset) -> bool {
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
    pub(super) fn truncate_epochs_from_start(&mut self) -> bool {
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

    pub(super) fn write_checkpoint(&self, out: &mut Vec<DiskOp>) {
        let mut text = format!("0\n{}\n", self.epochs.len());
        for (epoch, start) in &self.epochs {
            text.push_str(&format!("{} {}\n", epoch.0, start.0));
        }
        out.push(DiskOp::WriteAtomic {
            file: self.checkpoint_file(),
            data: text.into_bytes(),
        });
    }
}

/// Parses Kafka's checkpoint text (`0`, count, then `epoch offset` lines); `None` if malformed
/// or not monotonic.
pub(super) fn parse_checkpoint(data: &[u8]) -> Option<Vec<(LeaderEpoch, Offset)>> {
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
