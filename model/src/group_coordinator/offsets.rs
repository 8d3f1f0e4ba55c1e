//! The offsets shard: committed offsets by (group, topic, partition), as stored in one
//! `__consumer_offsets` partition.
//!
//! # Record format (Kafka's `GroupMetadataManager.offsetCommitKey` / `offsetCommitValue`,
//! `OffsetCommitKey.json`, `OffsetCommitValue.json`)
//! * **Key**: `version: i16 = 1`, then `group: string`, `topic: string`, `partition: i32`
//!   (a string is an `i16` length and UTF-8 bytes; integers big-endian). Key versions 0 and 1
//!   are offset commits; version 2 is a group's metadata (members, assignment; see
//!   `classic_group.rs`), which the shard keeps as the last record per group.
//! * **Value**: `version: i16 = 3`, then `offset: i64`, `leader_epoch: i32` (-1: unknown),
//!   `metadata: string`, `commit_timestamp: i64` (ms). A null value is a **tombstone**: the
//!   committed offset is deleted (Kafka writes one when a group's offsets expire or the group
//!   is deleted), and compaction later drops the key altogether.
//!
//! Replay is last-writer-wins per key, in offset order, which is exactly what compaction
//! preserves.
//!
//! # Transactional offsets (KIP-98, KIP-447; Kafka's `OffsetMetadataManager`,
//! `GroupMetadataManager.scala:939` before it)
//! A TxnOffsetCommit is stored as the same records in a *transactional* batch of the
//! producer. Until the producer's marker reaches this partition they are **pending**: kept per
//! producer id, not visible as committed offsets, and reported by [`OffsetsShard::has_pending`]
//! (OffsetFetch with `require_stable` answers UNSTABLE_OFFSET_COMMIT for them). A COMMIT marker
//! materialises the producer's pending offsets (unless a later non-transactional commit of the
//! same key, at a higher record offset, already replaced them: Kafka compares record offsets
//! the same way); an ABORT marker drops them. Because the records and the markers are in the
//! log, a new leader's load rebuilds the pending offsets of transactions still open.

use super::classic_group::{
    decode_group_value, encode_group_key, encode_group_value, GroupMetadataRecord,
};
use crate::coordinator_runtime::CoordinatorShard;
use crate::protocol::TransactionResult;
use crate::record::{KeyValue, Record};
use crate::types::{Offset, ProducerId, TopicPartition};
use std::collections::BTreeMap;

/// Key version of an offset commit (`OffsetCommitKey` v1).
const OFFSET_COMMIT_KEY_VERSION: i16 = 1;
/// Key version of a group's metadata record (`GroupMetadataKey`), skipped here.
const GROUP_METADATA_KEY_VERSION: i16 = 2;
/// Value version written (`OffsetCommitValue` v3, without the expire timestamp).
const OFFSET_COMMIT_VALUE_VERSION: i16 = 3;

/// One state change of the offsets store: `group_id` committed `committed_offset` for `tp`
/// at `commit_timestamp_ms`, or (`None`) the commit was deleted (a tombstone).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetRecord {
    /// The consumer group (`group.id`).
    pub group_id: String,
    /// The consumed partition the offset is for (not the `__consumer_offsets` partition).
    pub tp: TopicPartition,
    /// The position of the next record to consume; `None`: a tombstone.
    pub committed_offset: Option<Offset>,
    /// When the coordinator took the commit, ms of simulated time (-1 for a tombstone).
    pub commit_timestamp_ms: i64,
}

/// A committed offset as the shard holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommittedOffset {
    /// The committed position in the consumed partition.
    pub offset: Offset,
    /// When it was committed, ms of simulated time.
    pub commit_timestamp_ms: i64,
    /// Where the record holding it sits in the `__consumer_offsets` partition.
    pub record_offset: Offset,
}

/// One record of a `__consumer_offsets` partition: a committed offset or a group's metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CoordinatorRecord {
    Offset(OffsetRecord),
    Group(GroupMetadataRecord),
}

/// The committed offsets of every group whose state lives in one `__consumer_offsets`
/// partition, by (group, topic-partition), and each group's last stored metadata.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct OffsetsShard {
    offsets: BTreeMap<(String, TopicPartition), CommittedOffset>,
    groups: BTreeMap<String, GroupMetadataRecord>,
    /// Transactional offsets waiting for their producer's marker, by producer id, then
    /// (group, topic-partition); the last pending commit per key wins.
    pending: BTreeMap<ProducerId, BTreeMap<(String, TopicPartition), CommittedOffset>>,
}

impl OffsetsShard {
    /// `group_id`'s committed offset for `tp`, if any.
    pub fn committed(&self, group_id: &str, tp: &TopicPartition) -> Option<CommittedOffset> {
        self.offsets
            .get(&(group_id.to_string(), tp.clone()))
            .copied()
    }

    /// How many (group, partition) pairs have a committed offset.
    pub fn len(&self) -> usize {
        self.offsets.len()
    }

    /// Whether no offset is committed.
    pub fn is_empty(&self) -> bool {
        self.offsets.is_empty()
    }

    /// Every group's last stored metadata, by group id.
    pub fn groups(&self) -> &BTreeMap<String, GroupMetadataRecord> {
        &self.groups
    }

    /// Whether some producer's open transaction holds a pending offset of `group_id` for `tp`
    /// (Kafka's `OffsetMetadataManager.hasPendingTransactionalOffsets`).
    pub fn has_pending(&self, group_id: &str, tp: &TopicPartition) -> bool {
        let key = (group_id.to_string(), tp.clone());
        self.pending.values().any(|m| m.contains_key(&key))
    }

    /// `producer_id`'s pending offset of `group_id` for `tp`, if any.
    pub fn pending(
        &self,
        producer_id: ProducerId,
        group_id: &str,
        tp: &TopicPartition,
    ) -> Option<CommittedOffset> {
        self.pending
            .get(&producer_id)?
            .get(&(group_id.to_string(), tp.clone()))
            .copied()
    }
}

fn put_string(buf: &mut Vec<u8>, s: &str) {
    let len = i16::try_from(s.len()).expect("a string longer than i16::MAX bytes");
    buf.extend_from_slice(&len.to_be_bytes());
    buf.extend_from_slice(s.as_bytes());
}

/// A cursor over a key or value's bytes; every read fails cleanly on short input.
struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        if self.buf.len() < n {
            return Err(format!("{} bytes left, {n} needed", self.buf.len()));
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }
    fn i16(&mut self) -> Result<i16, String> {
        Ok(i16::from_be_bytes(self.take(2)?.try_into().expect("2")))
    }
    fn i32(&mut self) -> Result<i32, String> {
        Ok(i32::from_be_bytes(self.take(4)?.try_into().expect("4")))
    }
    fn i64(&mut self) -> Result<i64, String> {
        Ok(i64::from_be_bytes(self.take(8)?.try_into().expect("8")))
    }
    fn string(&mut self) -> Result<String, String> {
        let len = self.i16()?;
        if len < 0 {
            return Err(format!("string length {len}"));
        }
        String::from_utf8(self.take(len as usize)?.to_vec()).map_err(|e| e.to_string())
    }
}

impl CoordinatorShard for OffsetsShard {
    type Record = CoordinatorRecord;

    fn encode(r: &CoordinatorRecord) -> KeyValue {
        match r {
            CoordinatorRecord::Offset(o) => encode_offset(o),
            CoordinatorRecord::Group(g) => (
                Some(encode_group_key(&g.group_id)),
                Some(encode_group_value(g)),
            ),
        }
    }

    fn decode(record: &Record) -> Result<Option<CoordinatorRecord>, String> {
        let key = record.key.as_ref().ok_or("a record without a key")?;
        let mut k = Reader { buf: key };
        if k.i16()? == GROUP_METADATA_KEY_VERSION {
            let group_id = k.string()?;
            return match &record.value {
                Some(v) => {
                    decode_group_value(group_id, v).map(|g| Some(CoordinatorRecord::Group(g)))
                }
                None => Ok(None),
            };
        }
        decode_offset(record).map(|o| o.map(CoordinatorRecord::Offset))
    }

    fn replay(&mut self, offset: Offset, r: &CoordinatorRecord) {
        match r {
            CoordinatorRecord::Offset(o) => self.replay_offset(offset, o),
            CoordinatorRecord::Group(g) => {
                self.groups.insert(g.group_id.clone(), g.clone());
            }
        }
    }

    fn replay_transactional(
        &mut self,
        offset: Offset,
        producer_id: ProducerId,
        r: &CoordinatorRecord,
    ) {
        let CoordinatorRecord::Offset(o) = r else {
            return self.replay(offset, r);
        };
        let key = (o.group_id.clone(), o.tp.clone());
        let list = self.pending.entry(producer_id).or_default();
        match o.committed_offset {
            Some(committed) => {
                list.insert(
                    key,
                    CommittedOffset {
                        offset: committed,
                        commit_timestamp_ms: o.commit_timestamp_ms,
                        record_offset: offset,
                    },
                );
            }
            None => {
                list.remove(&key);
            }
        }
    }

    fn replay_end_transaction(
        &mut self,
        offset: Offset,
        producer_id: ProducerId,
        result: TransactionResult,
    ) {
        let Some(list) = self.pending.get_mut(&producer_id) else {
            return;
        };
        // Only what the transaction wrote before its marker ends with it.
        let ended: Vec<(String, TopicPartition)> = list
            .iter()
            .filter(|(_, c)| c.record_offset < offset)
            .map(|(k, _)| k.clone())
            .collect();
        for key in ended {
            let pending = list.remove(&key).expect("listed");
            if result == TransactionResult::Commit {
                let newer = self
                    .offsets
                    .get(&key)
                    .is_some_and(|c| c.record_offset > pending.record_offset);
                if !newer {
                    self.offsets.insert(key, pending);
                }
            }
        }
        if list.is_empty() {
            self.pending.remove(&producer_id);
        }
    }
}

fn encode_offset(r: &OffsetRecord) -> KeyValue {
    let mut key = Vec::new();
    key.extend_from_slice(&OFFSET_COMMIT_KEY_VERSION.to_be_bytes());
    put_string(&mut key, &r.group_id);
    put_string(&mut key, &r.tp.topic);
    key.extend_from_slice(&r.tp.partition.to_be_bytes());
    let value = r.committed_offset.map(|offset| {
        let mut v = Vec::new();
        v.extend_from_slice(&OFFSET_COMMIT_VALUE_VERSION.to_be_bytes());
        v.extend_from_slice(&offset.0.to_be_bytes());
        v.extend_from_slice(&(-1i32).to_be_bytes());
        put_string(&mut v, "");
        v.extend_from_slice(&r.commit_timestamp_ms.to_be_bytes());
        v
    });
    (Some(key), value)
}

fn decode_offset(record: &Record) -> Result<Option<OffsetRecord>, String> {
    let key = record.key.as_ref().ok_or("a record without a key")?;
    let mut k = Reader { buf: key };
    match k.i16()? {
        0 | OFFSET_COMMIT_KEY_VERSION => {}
        GROUP_METADATA_KEY_VERSION => return Ok(None),
        v => return Err(format!("unknown key version {v}")),
    }
    let group_id = k.string()?;
    let topic = k.string()?;
    let partition = k.i32()?;
    let tp = TopicPartition::new(topic, partition);
    let Some(value) = &record.value else {
        return Ok(Some(OffsetRecord {
            group_id,
            tp,
            committed_offset: None,
            commit_timestamp_ms: -1,
        }));
    };
    let mut v = Reader { buf: value };
    let version = v.i16()?;
    if !(0..=OFFSET_COMMIT_VALUE_VERSION).contains(&version) {
        return Err(format!("unknown value version {version}"));
    }
    let offset = v.i64()?;
    if version >= 3 {
        v.i32()?; // leader epoch
    }
    v.string()?; // metadata
    let commit_timestamp_ms = v.i64()?;
    Ok(Some(OffsetRecord {
        group_id,
        tp,
        committed_offset: Some(Offset(offset)),
        commit_timestamp_ms,
    }))
}

impl OffsetsShard {
    fn replay_offset(&mut self, offset: Offset, r: &OffsetRecord) {
        let key = (r.group_id.clone(), r.tp.clone());
        match r.committed_offset {
            Some(committed) => {
                self.offsets.insert(
                    key,
                    CommittedOffset {
                        offset: committed,
                        commit_timestamp_ms: r.commit_timestamp_ms,
                        record_offset: offset,
                    },
                );
            }
            None => {
                self.offsets.remove(&key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::coordinator_runtime::CoordinatorRuntime;
    use crate::record::RecordBatch;
    use crate::types::LeaderEpoch;

    fn commit(group: &str, partition: i32, offset: Option<i64>) -> OffsetRecord {
        OffsetRecord {
            group_id: group.into(),
            tp: TopicPartition::new("t", partition),
            committed_offset: offset.map(Offset),
            commit_timestamp_ms: if offset.is_some() { 42 } else { -1 },
        }
    }

    fn as_record(kv: KeyValue) -> Record {
        Record {
            offset_delta: 0,
            timestamp_delta: 0,
            key: kv.0,
            value: kv.1,
            headers: vec![],
        }
    }

    #[test]
    fn a_commit_and_a_tombstone_survive_encode_and_decode() {
        for r in [commit("g", 3, Some(17)), commit("g", 3, None)] {
            let kv = encode_offset(&r);
            assert_eq!(kv.1.is_none(), r.committed_offset.is_none());
            assert_eq!(
                OffsetsShard::decode(&as_record(kv)),
                Ok(Some(CoordinatorRecord::Offset(r)))
            );
        }
    }

    #[test]
    fn the_key_is_kafkas_offset_commit_key_v1() {
        let (key, value) = encode_offset(&commit("g", 3, Some(17)));
        let mut expected = vec![0, 1, 0, 1, b'g', 0, 1, b't'];
        expected.extend_from_slice(&3i32.to_be_bytes());
        assert_eq!(key.unwrap(), expected);
        let value = value.unwrap();
        assert_eq!(&value[..2], &[0, 3]);
        assert_eq!(&value[2..10], &17i64.to_be_bytes());
        assert_eq!(value.len(), 2 + 8 + 4 + 2 + 8);
    }

    #[test]
    fn group_metadata_is_read_and_garbage_is_an_error() {
        let mut r = as_record((Some(vec![0, 2, 0, 1, b'g']), Some(vec![1])));
        assert!(OffsetsShard::decode(&r).is_err(), "a truncated group value");
        r.value = None;
        assert_eq!(
            OffsetsShard::decode(&r),
            Ok(None),
            "a group tombstone is skipped"
        );
        r.key = Some(vec![0, 9]);
        assert!(OffsetsShard::decode(&r)
            .unwrap_err()
            .contains("key version 9"));
        r.key = Some(vec![0, 1, 0, 5, b'g']);
        assert!(OffsetsShard::decode(&r).is_err());
        r.key = None;
        assert!(OffsetsShard::decode(&r).is_err());
    }

    #[test]
    fn replay_keeps_the_last_commit_per_key_and_a_tombstone_deletes_it() {
        let mut s = OffsetsShard::default();
        s.replay_offset(Offset(0), &commit("g", 0, Some(5)));
        s.replay_offset(Offset(1), &commit("g", 1, Some(9)));
        s.replay_offset(Offset(2), &commit("g", 0, Some(7)));
        s.replay_offset(Offset(3), &commit("h", 0, Some(1)));
        let c = s.committed("g", &TopicPartition::new("t", 0)).unwrap();
        assert_eq!((c.offset, c.record_offset), (Offset(7), Offset(2)));
        assert_eq!(s.len(), 3);
        s.replay_offset(Offset(4), &commit("g", 0, None));
        assert_eq!(s.committed("g", &TopicPartition::new("t", 0)), None);
        assert_eq!(
            s.committed("h", &TopicPartition::new("t", 0))
                .unwrap()
                .offset,
            Offset(1)
        );
        assert_eq!(s.len(), 2);
    }

    #[test]
    fn a_new_leader_replays_commits_and_tombstones_from_the_log() {
        let records = [
            commit("g", 0, Some(5)),
            commit("g", 1, Some(6)),
            commit("g", 0, None),
        ];
        let kvs = records.iter().map(encode_offset).collect();
        let batch = RecordBatch::new(kvs, 0).encode();
        let mut rt: CoordinatorRuntime<OffsetsShard, ()> = CoordinatorRuntime::new();
        let tp = TopicPartition::new("__consumer_offsets", 0);
        let summary = rt.on_become_leader(tp.clone(), LeaderEpoch(0), &[batch], Offset(3));
        assert_eq!(summary.records, 3);
        assert!(summary.skipped.is_empty());
        let s = rt.committed(&tp).unwrap();
        assert_eq!(s.committed("g", &TopicPartition::new("t", 0)), None);
        assert_eq!(
            s.committed("g", &TopicPartition::new("t", 1))
                .unwrap()
                .offset,
            Offset(6)
        );
    }

    #[test]
    fn transactional_offsets_are_pending_until_their_marker() {
        let tp = TopicPartition::new("t", 0);
        let mut s = OffsetsShard::default();
        s.replay_offset(Offset(0), &commit("g", 0, Some(5)));
        let o = CoordinatorRecord::Offset(commit("g", 0, Some(9)));
        s.replay_transactional(Offset(1), ProducerId(7), &o);
        assert!(s.has_pending("g", &tp));
        assert_eq!(s.committed("g", &tp).unwrap().offset, Offset(5));
        assert_eq!(
            s.pending(ProducerId(7), "g", &tp).unwrap().offset,
            Offset(9)
        );
        // Another producer's marker ends nothing of producer 7.
        s.replay_end_transaction(Offset(2), ProducerId(8), TransactionResult::Commit);
        assert!(s.has_pending("g", &tp));
        s.replay_end_transaction(Offset(3), ProducerId(7), TransactionResult::Commit);
        assert!(!s.has_pending("g", &tp));
        assert_eq!(s.committed("g", &tp).unwrap().offset, Offset(9));
        // ABORT drops.
        let o = CoordinatorRecord::Offset(commit("g", 0, Some(12)));
        s.replay_transactional(Offset(4), ProducerId(7), &o);
        s.replay_end_transaction(Offset(5), ProducerId(7), TransactionResult::Abort);
        assert!(!s.has_pending("g", &tp));
        assert_eq!(s.committed("g", &tp).unwrap().offset, Offset(9));
        // A plain commit written after the transactional one wins over it at COMMIT.
        let o = CoordinatorRecord::Offset(commit("g", 0, Some(15)));
        s.replay_transactional(Offset(6), ProducerId(7), &o);
        s.replay_offset(Offset(7), &commit("g", 0, Some(16)));
        s.replay_end_transaction(Offset(8), ProducerId(7), TransactionResult::Commit);
        assert_eq!(s.committed("g", &tp).unwrap().offset, Offset(16));
    }

    #[test]
    fn a_load_rebuilds_the_pending_offsets_of_open_transactions() {
        let t0 = TopicPartition::new("t", 0);
        let enc = |o: i64| encode_offset(&commit("g", 0, Some(o)));
        let txn = |o: i64, pid: i64| {
            RecordBatch::new(vec![enc(o)], 0)
                .with_producer(
                    ProducerId(pid),
                    crate::types::ProducerEpoch(0),
                    crate::record::NO_SEQUENCE,
                )
                .with_transactional(true)
        };
        let mut batches = vec![];
        let mut b = txn(3, 7);
        b.base_offset = Offset(0);
        batches.push(b.encode());
        let mut m = RecordBatch::end_txn_marker(
            ProducerId(7),
            crate::types::ProducerEpoch(0),
            TransactionResult::Commit,
            0,
            0,
        );
        m.base_offset = Offset(1);
        batches.push(m.encode());
        let mut b = txn(8, 9);
        b.base_offset = Offset(2);
        batches.push(b.encode());
        let mut rt: CoordinatorRuntime<OffsetsShard, ()> = CoordinatorRuntime::new();
        let tp = TopicPartition::new("__consumer_offsets", 0);
        rt.on_become_leader(tp.clone(), LeaderEpoch(0), &batches, Offset(3));
        let s = rt.committed(&tp).unwrap();
        assert_eq!(s.committed("g", &t0).unwrap().offset, Offset(3));
        assert_eq!(
            s.pending(ProducerId(9), "g", &t0).unwrap().offset,
            Offset(8)
        );
        // The open transaction commits later; its marker (offset 3) is applied by the runtime.
        rt.on_txn_marker(&tp, Offset(3), ProducerId(9), TransactionResult::Commit);
        for s in [rt.committed(&tp).unwrap(), rt.latest(&tp).unwrap()] {
            assert_eq!(s.committed("g", &t0).unwrap().offset, Offset(8));
            assert!(!s.has_pending("g", &t0));
        }
    }
}
