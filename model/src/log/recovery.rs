//! Recovery of a partition's log after a restart (Kafka's `LogLoader`).
//!
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
//! The producers' transactional state (open transactions, epochs) and every segment's
//! aborted-transaction index (`.txnindex`) are rebuilt by replaying the recovered batches
//! (Kafka replays from its last producer snapshot; there are no snapshots here, so from the
//! first batch): a torn tail therefore also drops the transactions and ABORT entries it held,
//! and each `.txnindex` file is rewritten if it disagrees with the replay.
//!
//! Mirrors Kafka's `LogLoader.scala` and `LogSegment.recover`.

use super::*;

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

impl PartitionLog {
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
        let mut txn_files: BTreeMap<Offset, &[u8]> = BTreeMap::new();
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
                "txnindex" => {
                    txn_files.insert(base, data);
                }
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
        let (txn, indexes) = log.replay_txn_state();
        log.txn = txn;
        let dir = log.dir.clone();
        for (seg, index) in log.segments.iter_mut().zip(indexes) {
            seg.txn_index = index;
            seg.sync_txn_index_file(&dir, txn_files.remove(&seg.base_offset), out);
        }
        // `.txnindex` files of segments that are gone (cut, or orphans).
        for base in txn_files.into_keys() {
            out.push(DiskOp::Delete {
                file: format!("{dir}/{}", segment::file_name(base, "txnindex")),
            });
        }
        log.check_invariants();
        (log, report)
    }
}

/// Validates `buf` as exactly one batch: decodes it fully (magic, length, CRC, codec, record
/// structure), then applies Kafka's `LogValidator` checks for v2: at least one record and
/// increasing offset deltas within `0..=lastOffsetDelta`; with `dense` (a producer's batch)
/// the deltas must be exactly `0..count` and `lastOffsetDelta == count - 1`. A compacted batch
/// (copied by a follower or read back in recovery) may have gaps.
pub(super) fn validate_batch(buf: &[u8], dense: bool) -> Result<BatchHeader, BatchError> {
    // The records' offset deltas are all the rules below need: walk the batch without
    // copying its records (the same checks and errors as a full decode).
    let mut deltas: Vec<i32> = Vec::new();
    let (header, used) = RecordBatch::visit(buf, |r| deltas.push(r.offset_delta))?;
    if used != buf.len() {
        return Err(BatchError::Malformed(format!(
            "{} bytes after the batch",
            buf.len() - used
        )));
    }
    let count = deltas.len();
    if count == 0 {
        return Err(BatchError::Malformed("batch has no records".into()));
    }
    if dense {
        if header.last_offset_delta as i64 != count as i64 - 1 {
            return Err(BatchError::Malformed(format!(
                "lastOffsetDelta {} does not match {count} records",
                header.last_offset_delta
            )));
        }
        if let Some((i, d)) = deltas
            .iter()
            .enumerate()
            .find(|(i, d)| **d as i64 != *i as i64)
        {
            return Err(BatchError::Malformed(format!(
                "record {i} has offset delta {d}"
            )));
        }
    } else {
        let mut prev = -1i64;
        for (i, d) in deltas.iter().enumerate() {
            let d = *d as i64;
            if d <= prev || d > header.last_offset_delta as i64 {
                return Err(BatchError::Malformed(format!(
                    "record {i} has offset delta {d}"
                )));
            }
            prev = d;
        }
    }
    Ok(header)
}

/// Validates the batch at the start of `buf` (which may continue with more batches), allowing
/// compaction gaps.
pub(super) fn valid_batch_at(buf: &[u8]) -> Result<BatchHeader, BatchError> {
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
pub(super) fn count_batches(tail: &[u8]) -> usize {
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
