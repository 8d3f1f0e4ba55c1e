//! Producer state for idempotent produce (KIP-98; Kafka's `ProducerStateManager.scala`,
//! `ProducerStateEntry`, `ProducerAppendInfo`): per partition, the epoch and the last
//! [`NUM_BATCHES_TO_RETAIN`] batches of every producer, and the leader's verdict on a new batch
//! (append, duplicate of a cached batch, or refused as out of order or fenced).
//!
//! # Transactions (KIP-98)
//! [`TxnStateManager`] is the transactional half of Kafka's `ProducerStateManager`, kept by the
//! log itself ([`super::PartitionLog::txn_state`]) so that the leader, every follower and a
//! restarted replica derive it the same way, from the batches of the log:
//! * the first transactional batch of a producer opens a transaction in the partition, which
//!   remembers its first offset (`currentTxnFirstOffset`);
//! * a control batch (a COMMIT or ABORT marker, [`crate::record::RecordBatch::end_txn_marker`])
//!   ends it; an ABORT goes to the aborted-transaction index (`.txnindex`) as
//!   `(producer id, first offset, marker offset, last stable offset)`;
//! * the earliest open transaction bounds the *last stable offset*: `LSO = min(first offset of
//!   the earliest open transaction, high watermark)` (`UnifiedLog.firstUnstableOffset`), below
//!   which read_committed consumers read.
//!
//! The leader also judges new writes against this state ([`TxnStateManager::check_data_batch`],
//! [`TxnStateManager::check_marker`], `ProducerAppendInfo.java:96-201`): a lower producer epoch
//! is INVALID_PRODUCER_EPOCH, a non-transactional batch while the producer's transaction is open
//! is INVALID_TXN_STATE, a marker from an older coordinator epoch is
//! TRANSACTION_COORDINATOR_FENCED. A replica copying the leader's batches does not judge them
//! (Kafka's `AppendOrigin.REPLICATION`).

use crate::protocol::{ErrorCode, TransactionResult};
use crate::types::*;
use std::collections::{BTreeMap, VecDeque};

/// How many batches of each producer the leader remembers for duplicate detection
/// (Kafka's `ProducerStateEntry.NUM_BATCHES_TO_RETAIN`).
pub const NUM_BATCHES_TO_RETAIN: usize = 5;

/// One cached batch of a producer (for duplicate detection).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct CachedBatch {
    first_seq: i32,
    last_seq: i32,
    first_offset: Offset,
}

/// Per-producer state of one partition (`ProducerStateEntry`).
#[derive(Debug, Clone, Default)]
pub(crate) struct ProducerEntry {
    epoch: ProducerEpoch,
    batches: VecDeque<CachedBatch>,
}

impl ProducerEntry {
    /// The producer's current epoch in this partition.
    pub(crate) fn epoch(&self) -> ProducerEpoch {
        self.epoch
    }

    fn last_seq(&self) -> Option<i32> {
        self.batches.back().map(|b| b.last_seq)
    }

    /// Records a batch appended for this producer: a newer epoch starts afresh, and only the
    /// last [`NUM_BATCHES_TO_RETAIN`] batches are kept.
    pub(crate) fn record_batch(
        &mut self,
        epoch: ProducerEpoch,
        first_seq: i32,
        last_seq: i32,
        first_offset: Offset,
    ) {
        if epoch < self.epoch {
            // A zombie's batch let in by `sim.txn.producer-fencing = false`: it must not
            // disturb the sequence numbers of the producer's current epoch.
            return;
        }
        if epoch > self.epoch {
            self.epoch = epoch;
            self.batches.clear();
        }
        self.batches.push_back(CachedBatch {
            first_seq,
            last_seq,
            first_offset,
        });
        while self.batches.len() > NUM_BATCHES_TO_RETAIN {
            self.batches.pop_front();
        }
    }
}

/// The leader's verdict on an idempotent batch (KIP-98; Kafka's `ProducerAppendInfo`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SequenceCheck {
    /// The next batch in sequence (or the first of a new epoch): append it.
    Append,
    /// One of the last [`NUM_BATCHES_TO_RETAIN`] batches again: answer with its offsets.
    Duplicate { base: Offset, last: Offset },
    /// Refuse it with this error.
    Reject(ErrorCode),
}

/// Judges a batch `[first_seq, last_seq]` of epoch `epoch` against the producer's state.
/// A stale epoch is fenced; within the epoch, a cached batch is a duplicate and anything but
/// the next sequence is out of order; a new epoch, or a producer the leader does not know,
/// must start at sequence 0 (an unknown producer with a later sequence lost its earlier
/// batches, e.g. to truncation).
pub(crate) fn check_sequence(
    entry: Option<&ProducerEntry>,
    epoch: ProducerEpoch,
    first_seq: i32,
    last_seq: i32,
) -> SequenceCheck {
    let Some(entry) = entry else {
        return if first_seq == 0 {
            SequenceCheck::Append
        } else {
            SequenceCheck::Reject(ErrorCode::OutOfOrderSequenceNumber)
        };
    };
    if epoch < entry.epoch {
        return SequenceCheck::Reject(ErrorCode::InvalidProducerEpoch);
    }
    if epoch > entry.epoch {
        return if first_seq == 0 {
            SequenceCheck::Append
        } else {
            SequenceCheck::Reject(ErrorCode::OutOfOrderSequenceNumber)
        };
    }
    if let Some(dup) = entry
        .batches
        .iter()
        .find(|b| b.first_seq == first_seq && b.last_seq == last_seq)
    {
        let last = Offset(dup.first_offset.0 + dup.last_seq.wrapping_sub(dup.first_seq) as i64);
        return SequenceCheck::Duplicate {
            base: dup.first_offset,
            last,
        };
    }
    let expected = entry.last_seq().map(|s| s.wrapping_add(1)).unwrap_or(0);
    if first_seq == expected {
        SequenceCheck::Append
    } else {
        SequenceCheck::Reject(ErrorCode::OutOfOrderSequenceNumber)
    }
}

/// One producer's transactional state in a partition (the transactional fields of Kafka's
/// `ProducerStateEntry`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxnProducerEntry {
    /// The highest producer epoch seen in this partition (data batches and markers).
    pub producer_epoch: ProducerEpoch,
    /// The coordinator epoch of the last marker for this producer (-1: none yet).
    pub coordinator_epoch: i32,
    /// First offset of the producer's open transaction in this partition, if one is open.
    pub current_txn_first_offset: Option<Offset>,
}

/// A transaction a marker ended in this partition (Kafka's `CompletedTxn`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompletedTxn {
    pub producer_id: ProducerId,
    /// The transaction's first offset in the partition (the marker's own offset when the
    /// producer had no open transaction here: Kafka still writes such a marker).
    pub first_offset: Offset,
    /// The marker's offset.
    pub last_offset: Offset,
    pub result: TransactionResult,
}

/// An entry of the aborted-transaction index (Kafka's `AbortedTxn` in a segment's
/// `.txnindex`): the aborted transaction of `producer_id` spans `first_offset ..= last_offset`
/// (the ABORT marker), and `last_stable_offset` was the log's LSO right after the marker (the
/// first offset of the earliest transaction still open then, or `last_offset + 1`), as Kafka's
/// `ProducerStateManager.lastStableOffset(completedTxn)` computes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct AbortedTxn {
    pub producer_id: ProducerId,
    pub first_offset: Offset,
    pub last_offset: Offset,
    pub last_stable_offset: Offset,
}

/// Bytes of one `.txnindex` entry: `version int16 = 0, producerId int64, firstOffset int64,
/// lastOffset int64, lastStableOffset int64`, big-endian (Kafka's `AbortedTxn.TOTAL_SIZE`).
pub const ABORTED_TXN_ENTRY_BYTES: usize = 34;

impl AbortedTxn {
    /// The entry as `.txnindex` stores it ([`ABORTED_TXN_ENTRY_BYTES`] bytes).
    pub fn encode(entries: &[AbortedTxn]) -> Vec<u8> {
        let mut buf = Vec::with_capacity(entries.len() * ABORTED_TXN_ENTRY_BYTES);
        for e in entries {
            buf.extend_from_slice(&0i16.to_be_bytes());
            buf.extend_from_slice(&e.producer_id.0.to_be_bytes());
            buf.extend_from_slice(&e.first_offset.0.to_be_bytes());
            buf.extend_from_slice(&e.last_offset.0.to_be_bytes());
            buf.extend_from_slice(&e.last_stable_offset.0.to_be_bytes());
        }
        buf
    }

    /// Parses a `.txnindex` file; `None` if its length is not a multiple of
    /// [`ABORTED_TXN_ENTRY_BYTES`] or an entry has another version than 0.
    pub fn decode(buf: &[u8]) -> Option<Vec<AbortedTxn>> {
        if buf.len() % ABORTED_TXN_ENTRY_BYTES != 0 {
            return None;
        }
        let i64_at = |c: &[u8], at: usize| i64::from_be_bytes(c[at..at + 8].try_into().expect("8"));
        buf.chunks_exact(ABORTED_TXN_ENTRY_BYTES)
            .map(|c| {
                (i16::from_be_bytes([c[0], c[1]]) == 0).then(|| AbortedTxn {
                    producer_id: ProducerId(i64_at(c, 2)),
                    first_offset: Offset(i64_at(c, 10)),
                    last_offset: Offset(i64_at(c, 18)),
                    last_stable_offset: Offset(i64_at(c, 26)),
                })
            })
            .collect()
    }
}

/// The transactional state of one partition replica: every producer's epochs and open
/// transaction, and the open transactions by first offset (Kafka's `ongoingTxns`), from which
/// the first unstable offset is read in `O(log n)`. See the module docs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TxnStateManager {
    producers: BTreeMap<ProducerId, TxnProducerEntry>,
    /// Open transactions: first offset -> producer.
    ongoing: BTreeMap<Offset, ProducerId>,
    /// Transactions whose marker is in the log but maybe not yet below the high watermark
    /// (Kafka's `unreplicatedTxns`): first offset -> (producer, marker offset). They stay
    /// unstable until the high watermark passes their marker, so that a read_committed reader
    /// never sees a transaction's records before its outcome is committed.
    unreplicated: BTreeMap<Offset, (ProducerId, Offset)>,
}

impl TxnStateManager {
    /// The producer's transactional state, if it has written to this partition.
    pub fn producer(&self, producer_id: ProducerId) -> Option<&TxnProducerEntry> {
        self.producers.get(&producer_id)
    }

    /// The earliest open transaction as `(producer, first offset)` (Kafka's
    /// `firstUndecidedOffset`), if any.
    pub fn first_undecided_offset(&self) -> Option<(ProducerId, Offset)> {
        self.ongoing.iter().next().map(|(o, p)| (*p, *o))
    }

    /// The earliest transaction that is open, or whose marker is not yet below
    /// `high_watermark`, as `(producer, first offset)` (Kafka's `firstUnstableOffset`): the
    /// last stable offset is `min(its first offset, high watermark)`. `O(log n)` plus the
    /// completed transactions not yet pruned by [`Self::on_high_watermark`].
    pub fn first_unstable_offset(&self, high_watermark: Offset) -> Option<(ProducerId, Offset)> {
        let unreplicated = self
            .unreplicated
            .iter()
            .find(|(_, (_, last))| *last >= high_watermark)
            .map(|(first, (p, _))| (*p, *first));
        match (self.first_undecided_offset(), unreplicated) {
            (Some(a), Some(b)) => Some(if a.1 <= b.1 { a } else { b }),
            (a, b) => a.or(b),
        }
    }

    /// The high watermark moved to `high_watermark`: completed transactions whose marker is
    /// below it are stable and forgotten (Kafka's `onHighWatermarkUpdated`).
    pub fn on_high_watermark(&mut self, high_watermark: Offset) {
        self.unreplicated
            .retain(|_, (_, last)| *last >= high_watermark);
    }

    /// Whether `producer_id` has a transaction open in this partition at `producer_epoch`
    /// (Kafka's `UnifiedLog.hasOngoingTransaction(producerId, producerEpoch)`): a
    /// transactional batch of such a producer needs no KIP-890 verification.
    pub fn has_ongoing_transaction(
        &self,
        producer_id: ProducerId,
        producer_epoch: ProducerEpoch,
    ) -> bool {
        self.producers.get(&producer_id).is_some_and(|e| {
            e.current_txn_first_offset.is_some() && e.producer_epoch == producer_epoch
        })
    }

    /// The open transactions, as `(first offset, producer)` in offset order.
    pub fn ongoing(&self) -> impl Iterator<Item = (Offset, ProducerId)> + '_ {
        self.ongoing.iter().map(|(o, p)| (*o, *p))
    }

    /// Judges a data batch of `producer_id` at `producer_epoch` before the leader appends it
    /// (`ProducerAppendInfo.java:96-187`): with `producer_fencing`, an epoch below the
    /// producer's current one is INVALID_PRODUCER_EPOCH (for a transactional batch only when
    /// fencing is on; the sequence check fences idempotent batches on its own); a
    /// non-transactional batch while the producer has a transaction open here is
    /// INVALID_TXN_STATE.
    pub fn check_data_batch(
        &self,
        producer_id: ProducerId,
        producer_epoch: ProducerEpoch,
        is_transactional: bool,
        producer_fencing: bool,
    ) -> Result<(), ErrorCode> {
        let Some(entry) = self.producers.get(&producer_id) else {
            return Ok(());
        };
        if producer_epoch < entry.producer_epoch && (producer_fencing || !is_transactional) {
            return Err(ErrorCode::InvalidProducerEpoch);
        }
        if !is_transactional && entry.current_txn_first_offset.is_some() {
            return Err(ErrorCode::InvalidTxnState);
        }
        Ok(())
    }

    /// Judges a transaction marker before the leader appends it (`ProducerAppendInfo.java:
    /// 96-110, 189-201`, `appendEndTxnMarker`): with `producer_fencing`, a producer epoch
    /// below the producer's current one is INVALID_PRODUCER_EPOCH; a coordinator epoch below
    /// the last one seen for the producer is TRANSACTION_COORDINATOR_FENCED (checked whatever
    /// `producer_fencing` says: it fences a deposed coordinator, not a zombie producer).
    pub fn check_marker(
        &self,
        producer_id: ProducerId,
        producer_epoch: ProducerEpoch,
        coordinator_epoch: i32,
        producer_fencing: bool,
    ) -> Result<(), ErrorCode> {
        let Some(entry) = self.producers.get(&producer_id) else {
            return Ok(());
        };
        if producer_fencing && producer_epoch < entry.producer_epoch {
            return Err(ErrorCode::InvalidProducerEpoch);
        }
        if coordinator_epoch < entry.coordinator_epoch {
            return Err(ErrorCode::TransactionCoordinatorFenced);
        }
        Ok(())
    }

    /// A data batch of the producer was appended at `first_offset`: a transactional one opens
    /// the producer's transaction here unless one is open already.
    pub fn on_data_batch(
        &mut self,
        producer_id: ProducerId,
        producer_epoch: ProducerEpoch,
        is_transactional: bool,
        first_offset: Offset,
    ) {
        let entry = self.entry(producer_id);
        entry.producer_epoch = entry.producer_epoch.max(producer_epoch);
        if is_transactional && entry.current_txn_first_offset.is_none() {
            entry.current_txn_first_offset = Some(first_offset);
            let prev = self.ongoing.insert(first_offset, producer_id);
            assert!(prev.is_none(), "two transactions open at {first_offset}");
        }
    }

    /// A marker of the producer was appended at `offset`: it ends the producer's open
    /// transaction (if any) and is returned as the completed transaction.
    pub fn on_marker(
        &mut self,
        producer_id: ProducerId,
        producer_epoch: ProducerEpoch,
        coordinator_epoch: i32,
        result: TransactionResult,
        offset: Offset,
    ) -> CompletedTxn {
        let entry = self.entry(producer_id);
        entry.producer_epoch = entry.producer_epoch.max(producer_epoch);
        entry.coordinator_epoch = entry.coordinator_epoch.max(coordinator_epoch);
        let first = entry.current_txn_first_offset.take();
        if let Some(first) = first {
            let removed = self.ongoing.remove(&first);
            assert_eq!(removed, Some(producer_id), "ongoing index out of step");
            self.unreplicated.insert(first, (producer_id, offset));
        }
        CompletedTxn {
            producer_id,
            first_offset: first.unwrap_or(offset),
            last_offset: offset,
            result,
        }
    }

    /// The LSO right after `completed` ended (Kafka's `lastStableOffset(completedTxn)`): the
    /// first offset of the earliest transaction still open, else the offset after the marker.
    pub fn last_stable_offset_after(&self, completed: &CompletedTxn) -> Offset {
        self.first_undecided_offset()
            .map_or(completed.last_offset.next(), |(_, o)| o)
    }

    fn entry(&mut self, producer_id: ProducerId) -> &mut TxnProducerEntry {
        self.producers
            .entry(producer_id)
            .or_insert(TxnProducerEntry {
                producer_epoch: ProducerEpoch(-1),
                coordinator_epoch: -1,
                current_txn_first_offset: None,
            })
    }

    /// Asserts that the open-transaction index matches the producers' open transactions.
    pub fn check_invariants(&self) {
        let open = self
            .producers
            .values()
            .filter(|e| e.current_txn_first_offset.is_some())
            .count();
        assert_eq!(open, self.ongoing.len(), "ongoing index out of step");
        for (o, p) in &self.ongoing {
            assert_eq!(
                self.producers[p].current_txn_first_offset,
                Some(*o),
                "producer {p} opens no transaction at {o}"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequence_rules_of_kip_98() {
        let mut entry = ProducerEntry {
            epoch: ProducerEpoch(1),
            batches: VecDeque::new(),
        };
        entry.batches.push_back(CachedBatch {
            first_seq: 0,
            last_seq: 4,
            first_offset: Offset(10),
        });
        let e = ProducerEpoch(1);
        assert_eq!(check_sequence(Some(&entry), e, 5, 7), SequenceCheck::Append);
        assert_eq!(
            check_sequence(Some(&entry), e, 0, 4),
            SequenceCheck::Duplicate {
                base: Offset(10),
                last: Offset(14)
            }
        );
        assert_eq!(
            check_sequence(Some(&entry), e, 6, 7),
            SequenceCheck::Reject(ErrorCode::OutOfOrderSequenceNumber)
        );
        assert_eq!(
            check_sequence(Some(&entry), ProducerEpoch(0), 5, 7),
            SequenceCheck::Reject(ErrorCode::InvalidProducerEpoch)
        );
        assert_eq!(
            check_sequence(Some(&entry), ProducerEpoch(2), 0, 3),
            SequenceCheck::Append
        );
        assert_eq!(
            check_sequence(Some(&entry), ProducerEpoch(2), 5, 7),
            SequenceCheck::Reject(ErrorCode::OutOfOrderSequenceNumber)
        );
        assert_eq!(check_sequence(None, e, 0, 1), SequenceCheck::Append);
        assert_eq!(
            check_sequence(None, e, 3, 4),
            SequenceCheck::Reject(ErrorCode::OutOfOrderSequenceNumber)
        );
    }

    #[test]
    fn a_transaction_opens_at_its_first_batch_and_a_marker_ends_it() {
        let (p1, p2) = (ProducerId(1), ProducerId(2));
        let e = ProducerEpoch(0);
        let mut t = TxnStateManager::default();
        t.on_data_batch(p1, e, true, Offset(5));
        t.on_data_batch(p1, e, true, Offset(7));
        t.on_data_batch(p2, e, true, Offset(9));
        assert_eq!(t.first_undecided_offset(), Some((p1, Offset(5))));
        t.check_invariants();
        let done = t.on_marker(p1, e, 3, TransactionResult::Abort, Offset(10));
        assert_eq!(done.first_offset, Offset(5));
        assert_eq!(t.last_stable_offset_after(&done), Offset(9));
        assert_eq!(t.first_undecided_offset(), Some((p2, Offset(9))));
        // Until the high watermark passes the marker at 10, p1's transaction stays unstable.
        assert_eq!(t.first_unstable_offset(Offset(10)), Some((p1, Offset(5))));
        assert_eq!(t.first_unstable_offset(Offset(11)), Some((p2, Offset(9))));
        let done = t.on_marker(p2, e, 3, TransactionResult::Commit, Offset(11));
        assert_eq!(t.last_stable_offset_after(&done), Offset(12));
        assert_eq!(t.first_undecided_offset(), None);
        assert_eq!(t.first_unstable_offset(Offset(10)), Some((p1, Offset(5))));
        assert_eq!(t.first_unstable_offset(Offset(11)), Some((p2, Offset(9))));
        t.on_high_watermark(Offset(11));
        assert_eq!(t.first_unstable_offset(Offset(11)), Some((p2, Offset(9))));
        t.on_high_watermark(Offset(12));
        assert_eq!(t.first_unstable_offset(Offset(12)), None);
        // A marker for a producer with no open transaction still completes (at itself).
        let done = t.on_marker(p2, e, 3, TransactionResult::Abort, Offset(12));
        assert_eq!(done.first_offset, Offset(12));
        t.check_invariants();
    }

    #[test]
    fn fencing_rules_of_producer_append_info() {
        let p = ProducerId(1);
        let mut t = TxnStateManager::default();
        t.on_data_batch(p, ProducerEpoch(2), true, Offset(0));
        // Non-transactional write while the transaction is open.
        assert_eq!(
            t.check_data_batch(p, ProducerEpoch(2), false, true),
            Err(ErrorCode::InvalidTxnState)
        );
        // A zombie's transactional batch: fenced, unless the legacy switch is off.
        assert_eq!(
            t.check_data_batch(p, ProducerEpoch(1), true, true),
            Err(ErrorCode::InvalidProducerEpoch)
        );
        assert_eq!(t.check_data_batch(p, ProducerEpoch(1), true, false), Ok(()));
        assert_eq!(t.check_data_batch(p, ProducerEpoch(2), true, true), Ok(()));
        // Markers: producer epoch, then coordinator epoch.
        assert_eq!(
            t.check_marker(p, ProducerEpoch(1), 0, true),
            Err(ErrorCode::InvalidProducerEpoch)
        );
        assert_eq!(t.check_marker(p, ProducerEpoch(1), 0, false), Ok(()));
        t.on_marker(p, ProducerEpoch(2), 4, TransactionResult::Commit, Offset(1));
        assert_eq!(
            t.check_marker(p, ProducerEpoch(2), 3, true),
            Err(ErrorCode::TransactionCoordinatorFenced)
        );
        assert_eq!(t.check_marker(p, ProducerEpoch(2), 4, true), Ok(()));
        assert_eq!(t.check_data_batch(p, ProducerEpoch(2), false, true), Ok(()));
        // Unknown producers pass.
        assert_eq!(
            t.check_marker(ProducerId(9), ProducerEpoch(0), 0, true),
            Ok(())
        );
    }

    #[test]
    fn txnindex_entries_round_trip() {
        let entries = vec![AbortedTxn {
            producer_id: ProducerId(7),
            first_offset: Offset(3),
            last_offset: Offset(9),
            last_stable_offset: Offset(10),
        }];
        let bytes = AbortedTxn::encode(&entries);
        assert_eq!(bytes.len(), ABORTED_TXN_ENTRY_BYTES);
        assert_eq!(AbortedTxn::decode(&bytes), Some(entries));
        assert_eq!(AbortedTxn::decode(&bytes[..5]), None);
    }
}
