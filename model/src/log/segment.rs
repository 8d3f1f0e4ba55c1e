//! One log segment: a `.log` file of record batches written back to back, and its two sparse
//! indexes, `.index` (offset -> file position) and `.timeindex` (timestamp -> offset), and its
//! aborted-transaction index `.txnindex` (KIP-98, see [`super::producer_state`]).
//!
//! # The offset index
//! Every `log.index.interval.bytes` of appended batch bytes the segment adds an entry
//! `(relative offset: u32, position: u32)`, 8 bytes big-endian on disk, where the relative
//! offset is the *last* offset of the batch minus the segment's base offset and the position is
//! where the batch starts in the `.log` file (Kafka's `LogSegment.append`: the check is
//! `bytesSinceLastIndexEntry > indexIntervalBytes`, made before the batch is counted, so with
//! the default 4096 the first batch of a segment never gets an entry). A lookup of offset `o`
//! takes the last entry whose offset is `<= o` (binary search; none: position 0) and scans the
//! batches from that position to the first one whose last offset is `>= o`.
//!
//! # The time index
//! At the same moments the segment adds `(timestamp: i64, relative offset: u32)`, 12 bytes,
//! the largest batch timestamp so far and the offset of the batch that carried it, but only if
//! that timestamp grew since the last entry (Kafka's `TimeIndex.maybeAppend`). When the
//! segment is rolled it adds a final entry for its largest timestamp.
//!
//! # Full indexes
//! Kafka preallocates `log.index.size.max.bytes` (10 MiB; topic `segment.index.bytes`) for each
//! index; a segment whose offset or time index is full is rolled before the next append.
//!
//! Sources: Kafka's `LogSegment`, `OffsetIndex`, `TimeIndex`, `AbstractIndex`.

use super::producer_state::AbortedTxn;
use super::LogBatch;
use crate::effects::DiskOp;
use crate::types::Offset;

/// Bytes of one offset-index entry on disk.
pub const OFFSET_INDEX_ENTRY_BYTES: u32 = 8;
/// Bytes of one time-index entry on disk.
pub const TIME_INDEX_ENTRY_BYTES: u32 = 12;

/// One offset-index entry: `offset = base_offset + relative_offset` is the last offset of the
/// batch that starts at byte `position` of the segment file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OffsetIndexEntry {
    pub relative_offset: u32,
    pub position: u32,
}

/// One time-index entry: the largest timestamp (ms) of the segment up to the batch whose last
/// offset is `base_offset + relative_offset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeIndexEntry {
    pub timestamp: i64,
    pub relative_offset: u32,
}

/// The file name of the segment whose first offset is `base_offset`, with `suffix` (`log`,
/// `index` or `timeindex`): the offset zero-padded to 20 digits, as Kafka names segments.
pub fn file_name(base_offset: Offset, suffix: &str) -> String {
    path_in("", base_offset, suffix)
}

/// `dir/<base offset, 20 digits>.suffix` (no `dir/` when `dir` is empty), built without the
/// formatting machinery: a segment's file name is made on every append (a hot path).
fn path_in(dir: &str, base_offset: Offset, suffix: &str) -> String {
    let mut name = String::with_capacity(dir.len() + 22 + suffix.len());
    if !dir.is_empty() {
        name.push_str(dir);
        name.push('/');
    }
    let mut digits = [b'0'; 20];
    let mut n = base_offset.0.unsigned_abs();
    for d in digits.iter_mut().rev() {
        *d = b'0' + (n % 10) as u8;
        n /= 10;
    }
    name.push_str(std::str::from_utf8(&digits).expect("ASCII digits"));
    name.push('.');
    name.push_str(suffix);
    name
}

/// Parses a segment file name (`00000000000000000042.log`) into its base offset and suffix.
pub fn parse_file_name(name: &str) -> Option<(Offset, &str)> {
    let (digits, suffix) = name.split_once('.')?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((Offset(digits.parse().ok()?), suffix))
}

/// One segment: its batches (in memory: the page cache), its size and its indexes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    pub(crate) base_offset: Offset,
    pub(crate) batches: Vec<LogBatch>,
    pub(crate) size_bytes: u64,
    pub(crate) offset_index: Vec<OffsetIndexEntry>,
    pub(crate) time_index: Vec<TimeIndexEntry>,
    /// The aborted-transaction index (`.txnindex`): one entry per ABORT marker in this
    /// segment, in offset order (see [`super::producer_state::AbortedTxn`]).
    pub(crate) txn_index: Vec<AbortedTxn>,
    bytes_since_last_index_entry: u64,
    /// Largest batch timestamp in the segment (-1 when empty) and the last offset of its batch.
    max_timestamp: (i64, Offset),
    /// Whether the `.log` file exists (it is created by the first append).
    pub(crate) exists: bool,
    /// When the cleaner last rewrote this segment (ms), for `delete.retention.ms`. Not
    /// persisted: after a restart a segment counts as cleaned at the first cleaning pass.
    pub(crate) cleaned_at_ms: Option<i64>,
}

impl Segment {
    /// An empty segment starting at `base_offset`; its files do not exist yet.
    pub fn new(base_offset: Offset) -> Segment {
        assert!(base_offset.0 >= 0, "segment base offset {base_offset}");
        Segment {
            base_offset,
            batches: Vec::new(),
            size_bytes: 0,
            offset_index: Vec::new(),
            time_index: Vec::new(),
            txn_index: Vec::new(),
            bytes_since_last_index_entry: 0,
            max_timestamp: (-1, base_offset),
            exists: false,
            cleaned_at_ms: None,
        }
    }

    /// The first offset this segment may hold (its file name).
    pub fn base_offset(&self) -> Offset {
        self.base_offset
    }

    /// Bytes in the `.log` file.
    pub fn size_bytes(&self) -> u64 {
        self.size_bytes
    }

    /// The batches, in offset order.
    pub fn batches(&self) -> &[LogBatch] {
        &self.batches
    }

    /// The offset index entries.
    pub fn offset_index(&self) -> &[OffsetIndexEntry] {
        &self.offset_index
    }

    /// The time index entries.
    pub fn time_index(&self) -> &[TimeIndexEntry] {
        &self.time_index
    }

    /// Largest timestamp of any batch in the segment (ms), -1 if it is empty.
    pub fn max_timestamp(&self) -> i64 {
        self.max_timestamp.0
    }

    /// `dir/<base>.log`.
    pub fn log_file(&self, dir: &str) -> String {
        path_in(dir, self.base_offset, "log")
    }

    /// `dir/<base>.index`.
    pub fn index_file(&self, dir: &str) -> String {
        path_in(dir, self.base_offset, "index")
    }

    /// `dir/<base>.txnindex`.
    pub fn txn_index_file(&self, dir: &str) -> String {
        path_in(dir, self.base_offset, "txnindex")
    }

    /// The aborted-transaction index entries.
    pub fn txn_index(&self) -> &[AbortedTxn] {
        &self.txn_index
    }

    /// Disk operations that make the `.txnindex` file (`on_disk`: its current contents,
    /// `None` if missing) hold exactly this segment's aborted-transaction index: nothing if it
    /// already does, a delete when the index is empty, else an atomic rewrite.
    pub fn sync_txn_index_file(&self, dir: &str, on_disk: Option<&[u8]>, out: &mut Vec<DiskOp>) {
        let want = AbortedTxn::encode(&self.txn_index);
        let file = self.txn_index_file(dir);
        match on_disk {
            Some(h) if h == want.as_slice() => {}
            None if want.is_empty() => {}
            Some(_) if want.is_empty() => out.push(DiskOp::Delete { file }),
            _ => out.push(DiskOp::WriteAtomic { file, data: want }),
        }
    }

    /// `dir/<base>.timeindex`.
    pub fn time_index_file(&self, dir: &str) -> String {
        path_in(dir, self.base_offset, "timeindex")
    }

    /// Last offset of the last batch, if any.
    pub fn last_offset(&self) -> Option<Offset> {
        self.batches.last().map(|b| b.last_offset)
    }

    /// Whether `offset` can be stored relative to this segment's base (Kafka rolls when it
    /// cannot: `offset - baseOffset` must fit an int32).
    pub fn can_convert_to_relative_offset(&self, offset: Offset) -> bool {
        let rel = offset.0 - self.base_offset.0;
        (0..=i32::MAX as i64).contains(&rel)
    }

    /// Kafka's `LogSegment.shouldRoll` for a batch of `batch_bytes` whose largest timestamp is
    /// `batch_max_timestamp` and whose last offset is `batch_last_offset`. An empty segment is
    /// never rolled.
    pub fn should_roll(
        &self,
        config: &super::LogConfig,
        batch_bytes: u64,
        batch_max_timestamp: i64,
        batch_last_offset: Offset,
    ) -> bool {
        if self.batches.is_empty() {
            return false;
        }
        let first_timestamp = self.batches[0].max_timestamp;
        let reached_roll_ms = first_timestamp >= 0
            && batch_max_timestamp.saturating_sub(first_timestamp) > config.segment_ms;
        self.size_bytes + batch_bytes > config.segment_bytes
            || reached_roll_ms
            || self.offset_index_is_full(config)
            || self.time_index_is_full(config)
            || !self.can_convert_to_relative_offset(batch_last_offset)
    }

    fn offset_index_is_full(&self, config: &super::LogConfig) -> bool {
        self.offset_index.len() as u64
            >= (config.max_index_size_bytes / OFFSET_INDEX_ENTRY_BYTES).max(1) as u64
    }

    fn time_index_is_full(&self, config: &super::LogConfig) -> bool {
        self.time_index.len() as u64
            >= (config.max_index_size_bytes / TIME_INDEX_ENTRY_BYTES).max(1) as u64
    }

    /// Appends `batch` (whose `position` must be this segment's size) and returns the index
    /// entries it added, as (offset-index entry, time-index entry). Pure in-memory bookkeeping;
    /// [`Segment::append`] also writes.
    fn append_in_memory(
        &mut self,
        batch: LogBatch,
        index_interval_bytes: u32,
    ) -> (Option<OffsetIndexEntry>, Option<TimeIndexEntry>) {
        assert_eq!(batch.position, self.size_bytes, "batches are back to back");
        assert!(batch.base_offset >= self.base_offset);
        if let Some(last) = self.last_offset() {
            assert!(
                batch.base_offset > last,
                "offsets increase within a segment"
            );
        }
        if batch.max_timestamp > self.max_timestamp.0 {
            self.max_timestamp = (batch.max_timestamp, batch.last_offset);
        }
        let mut added = (None, None);
        if self.bytes_since_last_index_entry > index_interval_bytes as u64 {
            let entry = OffsetIndexEntry {
                relative_offset: self.relative(batch.last_offset),
                position: batch.position as u32,
            };
            self.offset_index.push(entry);
            added.0 = Some(entry);
            added.1 = self.maybe_append_time_entry();
            self.bytes_since_last_index_entry = 0;
        }
        let len = batch.bytes.len() as u64;
        self.bytes_since_last_index_entry += len;
        self.size_bytes += len;
        self.batches.push(batch);
        added
    }

    fn maybe_append_time_entry(&mut self) -> Option<TimeIndexEntry> {
        let (timestamp, offset) = self.max_timestamp;
        if timestamp < 0
            || self
                .time_index
                .last()
                .is_some_and(|e| e.timestamp >= timestamp)
        {
            return None;
        }
        let entry = TimeIndexEntry {
            timestamp,
            relative_offset: self.relative(offset),
        };
        self.time_index.push(entry);
        Some(entry)
    }

    fn relative(&self, offset: Offset) -> u32 {
        u32::try_from(offset.0 - self.base_offset.0).expect("relative offset fits u32")
    }

    /// Appends `batch` at the end of the segment: its bytes to the `.log` file and any new
    /// index entries to the index files.
    pub fn append(
        &mut self,
        dir: &str,
        batch: LogBatch,
        index_interval_bytes: u32,
        out: &mut Vec<DiskOp>,
    ) {
        out.push(DiskOp::Append {
            file: self.log_file(dir),
            data: batch.bytes.clone(),
        });
        self.exists = true;
        let (offset_entry, time_entry) = self.append_in_memory(batch, index_interval_bytes);
        if let Some(e) = offset_entry {
            out.push(DiskOp::Append {
                file: self.index_file(dir),
                data: encode_offset_entries(&[e]),
            });
        }
        if let Some(e) = time_entry {
            out.push(DiskOp::Append {
                file: self.time_index_file(dir),
                data: encode_time_entries(&[e]),
            });
        }
    }

    /// The segment stops being the active one (a newer segment was rolled): its time index
    /// gets a final entry for its largest timestamp, and the segment and its indexes are
    /// flushed (Kafka's `onBecomeInactiveSegment` and the flush `roll` schedules).
    pub fn on_become_inactive(&mut self, dir: &str, out: &mut Vec<DiskOp>) {
        if let Some(e) = self.maybe_append_time_entry() {
            out.push(DiskOp::Append {
                file: self.time_index_file(dir),
                data: encode_time_entries(&[e]),
            });
        }
        if self.exists {
            out.push(DiskOp::Sync {
                file: self.log_file(dir),
            });
            for (file, has) in [
                (self.index_file(dir), !self.offset_index.is_empty()),
                (self.time_index_file(dir), !self.time_index.is_empty()),
            ] {
                if has {
                    out.push(DiskOp::Sync { file });
                }
            }
        }
    }

    /// A segment holding `batches` (positions already set, back to back from 0), with indexes
    /// rebuilt by the same rule appends follow. `inactive`: add the roll-time final entry.
    pub fn rebuilt(
        base_offset: Offset,
        batches: Vec<LogBatch>,
        index_interval_bytes: u32,
        inactive: bool,
    ) -> Segment {
        let mut s = Segment::new(base_offset);
        for b in batches {
            s.append_in_memory(b, index_interval_bytes);
        }
        if inactive {
            s.maybe_append_time_entry();
        }
        s
    }

    /// Index of the first batch whose last offset is `>= offset`, found through the offset
    /// index (floor entry by binary search, then a forward scan from its position); `None` if
    /// every batch ends below `offset`.
    pub fn find_batch(&self, offset: Offset) -> Option<usize> {
        let position = self.lookup(offset);
        let mut i = self
            .batches
            .partition_point(|b| (b.position as u32) < position);
        while i < self.batches.len() && self.batches[i].last_offset < offset {
            i += 1;
        }
        (i < self.batches.len()).then_some(i)
    }

    /// The offset-index lookup: position of the last indexed batch ending at or below
    /// `offset`, 0 if none.
    pub fn lookup(&self, offset: Offset) -> u32 {
        if offset < self.base_offset {
            return 0;
        }
        let rel = (offset.0 - self.base_offset.0).min(u32::MAX as i64) as u32;
        let n = self
            .offset_index
            .partition_point(|e| e.relative_offset <= rel);
        if n == 0 {
            0
        } else {
            self.offset_index[n - 1].position
        }
    }

    /// The time-index lookup: the offset of the last entry whose timestamp is `< timestamp`
    /// (the segment's base offset if none), from which a scan for `timestamp` starts: every
    /// record up to that offset is older than `timestamp`. (Kafka takes the last entry `<=`,
    /// which can skip an earlier record with exactly that timestamp.)
    pub fn lookup_time(&self, timestamp: i64) -> Offset {
        let n = self.time_index.partition_point(|e| e.timestamp < timestamp);
        if n == 0 {
            self.base_offset
        } else {
            Offset(self.base_offset.0 + self.time_index[n - 1].relative_offset as i64)
        }
    }

    /// Keeps only batches ending below `new_end` (which must be a batch boundary or beyond the
    /// segment) and rebuilds the indexes. Returns the new size in bytes.
    pub fn truncate_to(&mut self, new_end: Offset, index_interval_bytes: u32) -> u64 {
        let keep = self.batches.partition_point(|b| b.last_offset < new_end);
        let batches: Vec<LogBatch> = self.batches.drain(..keep).collect();
        let rebuilt = Segment::rebuilt(self.base_offset, batches, index_interval_bytes, false);
        let exists = self.exists;
        let cleaned = self.cleaned_at_ms;
        let mut txn_index = std::mem::take(&mut self.txn_index);
        txn_index.retain(|e| e.last_offset < new_end);
        *self = Segment {
            exists,
            cleaned_at_ms: cleaned,
            txn_index,
            ..rebuilt
        };
        self.size_bytes
    }

    /// Disk operations that make the index files hold exactly this segment's indexes, given
    /// their current contents on disk (`None`: missing). Nothing if they already do.
    pub fn sync_index_files(
        &self,
        dir: &str,
        on_disk: (Option<&[u8]>, Option<&[u8]>),
        out: &mut Vec<DiskOp>,
    ) {
        let offset_bytes = encode_offset_entries(&self.offset_index);
        let time_bytes = encode_time_entries(&self.time_index);
        for (file, want, have) in [
            (self.index_file(dir), offset_bytes, on_disk.0),
            (self.time_index_file(dir), time_bytes, on_disk.1),
        ] {
            match have {
                Some(h) if h == want.as_slice() => {}
                None if want.is_empty() => {}
                Some(h) if want.is_empty() || !h.starts_with(&want) => {
                    if want.is_empty() {
                        out.push(DiskOp::Delete { file });
                    } else {
                        out.push(DiskOp::WriteAtomic { file, data: want });
                    }
                }
                Some(_) => out.push(DiskOp::Truncate {
                    file,
                    len: want.len() as u64,
                }),
                None => out.push(DiskOp::WriteAtomic { file, data: want }),
            }
        }
    }

    /// Whether the index files on disk are a sound index of this segment's batches: every
    /// offset entry names the last offset of the batch at its position, entries increase, and
    /// time entries increase in both fields and stay within the segment. (Kafka's
    /// `sanityCheck`, made stricter because the batches are at hand.)
    pub fn indexes_sound(&self, offset_bytes: &[u8], time_bytes: &[u8]) -> bool {
        let (Some(offsets), Some(times)) = (
            decode_offset_entries(offset_bytes),
            decode_time_entries(time_bytes),
        ) else {
            return false;
        };
        let last = self.last_offset().map_or(-1, |o| o.0 - self.base_offset.0);
        offsets
            .windows(2)
            .all(|w| w[0].relative_offset < w[1].relative_offset && w[0].position < w[1].position)
            && offsets.iter().all(|e| {
                let i = self
                    .batches
                    .partition_point(|b| (b.position as u32) < e.position);
                self.batches.get(i).is_some_and(|b| {
                    b.position == e.position as u64
                        && b.last_offset.0 - self.base_offset.0 == e.relative_offset as i64
                })
            })
            && times.windows(2).all(|w| {
                w[0].timestamp < w[1].timestamp && w[0].relative_offset <= w[1].relative_offset
            })
            && times
                .iter()
                .all(|e| (e.relative_offset as i64) <= last && e.timestamp <= self.max_timestamp.0)
    }

    /// Replaces the in-memory indexes by the ones read from disk (after
    /// [`Segment::indexes_sound`] accepted them).
    pub fn load_indexes(&mut self, offset_bytes: &[u8], time_bytes: &[u8]) {
        self.offset_index = decode_offset_entries(offset_bytes).expect("checked sound");
        self.time_index = decode_time_entries(time_bytes).expect("checked sound");
    }
}

/// Offset-index entries as they are stored: `relative_offset u32, position u32`, big-endian.
pub fn encode_offset_entries(entries: &[OffsetIndexEntry]) -> Vec<u8> {
    let mut buf = Vec::with_capacity(entries.len() * 8);
    for e in entries {
        buf.extend_from_slice(&e.relative_offset.to_be_bytes());
        buf.extend_from_slice(&e.position.to_be_bytes());
    }
    buf
}

/// Time-index entries as they are stored: `timestamp i64, relative_offset u32`, big-endian.
pub fn encode_time_entries(entries: &[TimeIndexEntry]) -> Vec<u8> {
    let mut buf = Vec::with_capacity(entries.len() * 12);
    for e in entries {
        buf.extend_from_slice(&e.timestamp.to_be_bytes());
        buf.extend_from_slice(&e.relative_offset.to_be_bytes());
    }
    buf
}

/// Parses an `.index` file; `None` if its length is not a multiple of 8.
pub fn decode_offset_entries(buf: &[u8]) -> Option<Vec<OffsetIndexEntry>> {
    if buf.len() % 8 != 0 {
        return None;
    }
    Some(
        buf.chunks_exact(8)
            .map(|c| OffsetIndexEntry {
                relative_offset: u32::from_be_bytes(c[0..4].try_into().expect("4")),
                position: u32::from_be_bytes(c[4..8].try_into().expect("4")),
            })
            .collect(),
    )
}

/// Parses a `.timeindex` file; `None` if its length is not a multiple of 12.
pub fn decode_time_entries(buf: &[u8]) -> Option<Vec<TimeIndexEntry>> {
    if buf.len() % 12 != 0 {
        return None;
    }
    Some(
        buf.chunks_exact(12)
            .map(|c| TimeIndexEntry {
                timestamp: i64::from_be_bytes(c[0..8].try_into().expect("8")),
                relative_offset: u32::from_be_bytes(c[8..12].try_into().expect("4")),
            })
            .collect(),
    )
}

#[cfg(test)]
mod file_name_tests {
    use super::*;

    #[test]
    fn file_names_are_kafkas_zero_padded_offsets() {
        for base in [0i64, 7, 42, 1_000_000, i64::MAX] {
            let expected = format!("{base:020}.log");
            assert_eq!(file_name(Offset(base), "log"), expected);
            assert_eq!(
                Segment::new(Offset(base)).log_file("events-0"),
                format!("events-0/{expected}")
            );
        }
        assert_eq!(
            Segment::new(Offset(5)).txn_index_file("t-1"),
            "t-1/00000000000000000005.txnindex"
        );
    }
}
