//! Log compaction (Kafka's `LogCleaner`), one pass over one partition's log.
//!
//! **What compaction promises.** For a topic with `cleanup.policy=compact`, the log keeps at
//! least the last record for every key: any consumer reading from the start sees the final
//! value of every key. Records superseded by a later record with the same key may be removed;
//! offsets never change, so a compacted log has gaps. A record with a null value is a
//! *tombstone*: it deletes its key, and is itself removed once it has survived
//! `delete.retention.ms` after the cleaner first passed over its segment (so that a consumer
//! that is reading the log has time to see the delete).
//!
//! **What may be cleaned.** Only segments that are not active and lie wholly below the high
//! watermark (Kafka's `firstUncleanableOffset`: min of the active segment's base and the HW).
//! The key -> latest-offset map is built over that cleanable range, as Kafka's `OffsetMap` is
//! built over the dirty section; records in the active segment do not supersede anything yet.
//!
//! **How.** Each cleanable segment is rewritten in place (Kafka writes a `.cleaned` file and
//! swaps it in; here one atomic write of the segment file): batches keep their base offset,
//! `lastOffsetDelta`, leader epoch, producer fields and timestamps, only their records are
//! filtered (Kafka's `MemoryRecords.filterTo`), a batch left with no records is dropped, and the
//! segment's indexes are rebuilt. Control batches are kept. Segments are cleaned one by one
//! rather than grouped. Each replica cleans its own log, as in Kafka.
//!
//! Sources: Kafka's `LogCleaner`, `Cleaner.cleanSegments`, `MemoryRecords.filterTo`; KIP-534
//! (tombstone delete horizon).

use super::segment::Segment;
use super::{log_batch, PartitionLog};
use crate::effects::DiskOp;
use crate::record::{self, RecordBatch};
use crate::types::Offset;
use std::collections::BTreeMap;

/// What one [`PartitionLog::clean`] pass did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CleanReport {
    /// Base offsets of the segments that were rewritten.
    pub cleaned_segments: Vec<Offset>,
    /// Offsets of the records removed because a later record had the same key.
    pub superseded: Vec<Offset>,
    /// Offsets of the tombstones removed because they outlived `delete.retention.ms`.
    pub expired_tombstones: Vec<Offset>,
    /// The end of the cleanable range (exclusive).
    pub cleanable_end: Offset,
}

impl PartitionLog {
    /// One cleaning pass at `now_ms` (see the module docs). Does nothing without the `compact`
    /// policy. Returns `None` if no record was removed.
    pub fn clean(
        &mut self,
        now_ms: i64,
        high_watermark: Offset,
        out: &mut Vec<DiskOp>,
    ) -> Option<CleanReport> {
        if !self.config.cleanup_policy.compact {
            return None;
        }
        // Non-active segments whose upper bound (the next segment's base) is within the HW.
        let n = self.segments.len();
        let cleanable = (0..n.saturating_sub(1))
            .take_while(|&i| self.segments[i + 1].base_offset <= high_watermark)
            .count();
        if cleanable == 0 {
            return None;
        }
        let cleanable_end = self.segments[cleanable].base_offset;
        let start = self.log_start_offset;
        // Key -> highest offset in the cleanable range.
        let mut latest: BTreeMap<Vec<u8>, Offset> = BTreeMap::new();
        for seg in &self.segments[..cleanable] {
            for b in seg.batches.iter().filter(|b| !b.is_control) {
                let (batch, _) = RecordBatch::decode(&b.bytes).expect("validated");
                for r in &batch.records {
                    if let Some(k) = &r.key {
                        latest.insert(k.clone(), Offset(b.base_offset.0 + r.offset_delta as i64));
                    }
                }
            }
        }
        let mut report = CleanReport {
            cleanable_end,
            ..CleanReport::default()
        };
        let interval = self.config.index_interval_bytes;
        let delete_retention_ms = self.config.delete_retention_ms;
        for i in 0..cleanable {
            let seg = &self.segments[i];
            let tombstones_expire = seg
                .cleaned_at_ms
                .is_some_and(|t| now_ms.saturating_sub(t) > delete_retention_ms);
            let mut changed = false;
            let mut kept: Vec<super::LogBatch> = Vec::with_capacity(seg.batches.len());
            for b in &seg.batches {
                if b.is_control {
                    kept.push(b.clone());
                    continue;
                }
                let (mut batch, _) = RecordBatch::decode(&b.bytes).expect("validated");
                let before = batch.records.len();
                batch.records.retain(|r| {
                    let offset = Offset(b.base_offset.0 + r.offset_delta as i64);
                    let Some(key) = &r.key else {
                        return true;
                    };
                    if offset < start {
                        return true; // below the log start: retention's business
                    }
                    if latest.get(key).is_some_and(|&l| l > offset) {
                        report.superseded.push(offset);
                        return false;
                    }
                    if r.value.is_none() && tombstones_expire {
                        report.expired_tombstones.push(offset);
                        return false;
                    }
                    true
                });
                if batch.records.len() == before {
                    kept.push(b.clone());
                    continue;
                }
                changed = true;
                if batch.records.is_empty() {
                    continue;
                }
                let bytes = batch.encode();
                let h = record::read_header(&bytes).expect("just encoded");
                kept.push(log_batch(&h, 0, bytes));
            }
            let seg = &mut self.segments[i];
            if seg.cleaned_at_ms.is_none() {
                seg.cleaned_at_ms = Some(now_ms);
            }
            if !changed {
                continue;
            }
            let mut pos = 0;
            let batches: Vec<_> = kept
                .into_iter()
                .map(|mut b| {
                    b.position = pos;
                    pos += b.bytes.len() as u64;
                    b
                })
                .collect();
            let old_index = (
                super::segment::encode_offset_entries(&seg.offset_index),
                super::segment::encode_time_entries(&seg.time_index),
            );
            let mut rebuilt = Segment::rebuilt(seg.base_offset, batches, interval, true);
            rebuilt.exists = true;
            rebuilt.cleaned_at_ms = seg.cleaned_at_ms;
            // Markers are kept, so the segment's aborted transactions stay as they were.
            rebuilt.txn_index = std::mem::take(&mut seg.txn_index);
            let data: Vec<u8> = rebuilt
                .batches
                .iter()
                .flat_map(|b| b.bytes.iter().copied())
                .collect();
            out.push(DiskOp::WriteAtomic {
                file: rebuilt.log_file(&self.dir),
                data,
            });
            let (o, t) = (old_index.0.as_slice(), old_index.1.as_slice());
            rebuilt.sync_index_files(
                &self.dir,
                ((!o.is_empty()).then_some(o), (!t.is_empty()).then_some(t)),
                out,
            );
            report.cleaned_segments.push(rebuilt.base_offset);
            *seg = rebuilt;
        }
        self.check_invariants();
        (!report.superseded.is_empty() || !report.expired_tombstones.is_empty()).then_some(report)
    }
}
