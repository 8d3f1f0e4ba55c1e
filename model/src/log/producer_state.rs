//! Producer state for idempotent produce (KIP-98; Kafka's `ProducerStateManager.scala`,
//! `ProducerStateEntry`, `ProducerAppendInfo`): per partition, the epoch and the last
//! [`NUM_BATCHES_TO_RETAIN`] batches of every producer, and the leader's verdict on a new batch
//! (append, duplicate of a cached batch, or refused as out of order or fenced).

use crate::protocol::ErrorCode;
use crate::types::*;
use std::collections::VecDeque;

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
}
