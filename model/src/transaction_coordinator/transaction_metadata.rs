//! A `transactional.id`'s state (Kafka's `TransactionMetadata.scala`, `TransactionState.java`)
//! and its record in `__transaction_state` (`TransactionLogKey.json`,
//! `TransactionLogValue.json`), with the shard the coordinator runtime replays.
//!
//! # States and transitions (TransactionMetadata.scala, GROUPS-AND-TRANSACTIONS.md B1)
//! ```text
//!   Empty             <- Empty, CompleteCommit, CompleteAbort
//!   Ongoing           <- Ongoing, Empty, CompleteCommit, CompleteAbort
//!   PrepareCommit     <- Ongoing
//!   PrepareAbort      <- Ongoing, PrepareEpochFence
//!   CompleteCommit    <- PrepareCommit
//!   CompleteAbort     <- PrepareAbort
//!   PrepareEpochFence <- Ongoing
//!   Dead              <- Empty, CompleteCommit, CompleteAbort
//! ```
//! `PrepareEpochFence` is a transient state in Kafka (an InitProducerId found the previous
//! epoch's transaction Ongoing and aborts it at epoch+1); it is never written to the log: what
//! the log gets is the `PrepareAbort` it leads to. `Dead` (a `transactional.id` expired after
//! `transactional.id.expiration.ms`) is not reached here: ids do not expire in the model.
//!
//! # Record format
//! * **Key**: `version: i16 = 0`, `transactional_id: string` (a string is an `i16` length and
//!   UTF-8 bytes; integers big-endian).
//! * **Value**: `version: i16 = 1`, `producer_id: i64`, `last_producer_id: i64`,
//!   `next_producer_id: i64`, `producer_epoch: i16`, `last_producer_epoch: i16`,
//!   `transaction_timeout_ms: i32`, `state: i8` (Kafka's ids: Empty 0, Ongoing 1,
//!   PrepareCommit 2, PrepareAbort 3, CompleteCommit 4, CompleteAbort 5, Dead 6,
//!   PrepareEpochFence 7), `partitions: i32 count` then per partition `topic: string`,
//!   `partition: i32`, `txn_last_update_timestamp_ms: i64`, `txn_start_timestamp_ms: i64`.
//!   A null value is a tombstone (the id is removed).
//!
//! Replay is last-writer-wins per key, in offset order.

use crate::coordinator_runtime::CoordinatorShard;
use crate::record::{KeyValue, Record};
use crate::types::{Offset, ProducerEpoch, ProducerId, TopicPartition};
use std::collections::{BTreeMap, BTreeSet};

/// Key version written.
const KEY_VERSION: i16 = 0;
/// Value version written.
const VALUE_VERSION: i16 = 1;

/// The largest usable producer epoch: an epoch at `Short.MAX_VALUE - 1` is exhausted and the
/// producer gets a new producer id instead of a bump (`TransactionMetadata.isEpochExhausted`).
pub const MAX_PRODUCER_EPOCH: i16 = i16::MAX - 1;

/// Whether `epoch` is exhausted: no further bump, a new producer id instead.
pub fn is_epoch_exhausted(epoch: ProducerEpoch) -> bool {
    epoch.0 >= MAX_PRODUCER_EPOCH
}

/// A transaction's state (`TransactionState.java`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TxnState {
    /// No transaction open (after InitProducerId).
    Empty,
    /// Partitions were added: a transaction is open.
    Ongoing,
    /// EndTxn(commit) is logged; markers are being written.
    PrepareCommit,
    /// EndTxn(abort), a timeout or a fence is logged; markers are being written.
    PrepareAbort,
    /// Every partition has its COMMIT marker.
    CompleteCommit,
    /// Every partition has its ABORT marker.
    CompleteAbort,
    /// Transient: an InitProducerId fences an Ongoing transaction (never logged).
    PrepareEpochFence,
    /// The id expired (not reached in the model).
    Dead,
}

impl TxnState {
    /// Kafka's name (`TransactionState.stateName`).
    pub fn name(self) -> &'static str {
        match self {
            TxnState::Empty => "Empty",
            TxnState::Ongoing => "Ongoing",
            TxnState::PrepareCommit => "PrepareCommit",
            TxnState::PrepareAbort => "PrepareAbort",
            TxnState::CompleteCommit => "CompleteCommit",
            TxnState::CompleteAbort => "CompleteAbort",
            TxnState::PrepareEpochFence => "PrepareEpochFence",
            TxnState::Dead => "Dead",
        }
    }

    /// The id stored in the log (`TransactionState.id`).
    pub fn id(self) -> i8 {
        match self {
            TxnState::Empty => 0,
            TxnState::Ongoing => 1,
            TxnState::PrepareCommit => 2,
            TxnState::PrepareAbort => 3,
            TxnState::CompleteCommit => 4,
            TxnState::CompleteAbort => 5,
            TxnState::Dead => 6,
            TxnState::PrepareEpochFence => 7,
        }
    }

    /// The state stored as `id`, if any.
    pub fn from_id(id: i8) -> Option<TxnState> {
        Some(match id {
            0 => TxnState::Empty,
            1 => TxnState::Ongoing,
            2 => TxnState::PrepareCommit,
            3 => TxnState::PrepareAbort,
            4 => TxnState::CompleteCommit,
            5 => TxnState::CompleteAbort,
            6 => TxnState::Dead,
            7 => TxnState::PrepareEpochFence,
            _ => return None,
        })
    }

    /// The states this one may be entered from (`TransactionState.validPreviousStates`).
    pub fn valid_previous_states(self) -> &'static [TxnState] {
        use TxnState::*;
        match self {
            Empty => &[Empty, CompleteCommit, CompleteAbort],
            Ongoing => &[Ongoing, Empty, CompleteCommit, CompleteAbort],
            PrepareCommit => &[Ongoing],
            PrepareAbort => &[Ongoing, PrepareEpochFence],
            CompleteCommit => &[PrepareCommit],
            CompleteAbort => &[PrepareAbort],
            PrepareEpochFence => &[Ongoing],
            Dead => &[Empty, CompleteCommit, CompleteAbort],
        }
    }

    /// Whether `self -> to` is a legal transition.
    pub fn can_transition_to(self, to: TxnState) -> bool {
        to.valid_previous_states().contains(&self)
    }

    /// PrepareCommit or PrepareAbort: markers are (to be) written.
    pub fn is_prepare(self) -> bool {
        matches!(self, TxnState::PrepareCommit | TxnState::PrepareAbort)
    }

    /// CompleteCommit or CompleteAbort.
    pub fn is_complete(self) -> bool {
        matches!(self, TxnState::CompleteCommit | TxnState::CompleteAbort)
    }
}

/// One `transactional.id`'s state, as stored in `__transaction_state` (the value of its
/// record) and held by the coordinator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransactionMetadata {
    /// The producer's `transactional.id` (the record's key).
    pub transactional_id: String,
    /// The producer id the transaction runs under (markers carry it).
    pub producer_id: ProducerId,
    /// The producer id before an epoch exhaustion gave a new one (`ProducerId::NONE` if
    /// none): a retry under it is recognised.
    pub last_producer_id: ProducerId,
    /// With transaction version 2, a new producer id to switch to when the transaction
    /// completes because the bumped epoch is exhausted (`ProducerId::NONE` if none).
    pub next_producer_id: ProducerId,
    /// The current epoch (-1 before the first InitProducerId completes).
    pub producer_epoch: ProducerEpoch,
    /// The epoch before the last bump (-1 if none): a retry at it is recognised (KIP-360,
    /// KIP-890).
    pub last_producer_epoch: ProducerEpoch,
    /// The producer's `transaction.timeout.ms`.
    pub transaction_timeout_ms: u64,
    /// The transaction's state.
    pub state: TxnState,
    /// The transaction's partitions (empty in Empty and Complete*).
    pub partitions: BTreeSet<TopicPartition>,
    /// When the transaction was opened (the first AddPartitionsToTxn), ms; -1 if none.
    pub txn_start_timestamp_ms: i64,
    /// When the state last changed, ms.
    pub txn_last_update_timestamp_ms: i64,
}

impl TransactionMetadata {
    /// A new id's metadata before its first InitProducerId completes (Kafka creates it
    /// Empty with epoch -1 and then bumps it).
    pub fn new(
        transactional_id: &str,
        producer_id: ProducerId,
        transaction_timeout_ms: u64,
        now_ms: u64,
    ) -> TransactionMetadata {
        TransactionMetadata {
            transactional_id: transactional_id.to_string(),
            producer_id,
            last_producer_id: ProducerId::NONE,
            next_producer_id: ProducerId::NONE,
            producer_epoch: ProducerEpoch(-1),
            last_producer_epoch: ProducerEpoch(-1),
            transaction_timeout_ms,
            state: TxnState::Empty,
            partitions: BTreeSet::new(),
            txn_start_timestamp_ms: -1,
            txn_last_update_timestamp_ms: now_ms as i64,
        }
    }

    /// This metadata moved to `to` at `now_ms` (other fields unchanged). Panics on an illegal
    /// transition: the coordinator's decisions never make one.
    pub fn transit(&self, to: TxnState, now_ms: u64) -> TransactionMetadata {
        assert!(
            self.state.can_transition_to(to),
            "{}: illegal transition {} -> {}",
            self.transactional_id,
            self.state.name(),
            to.name()
        );
        let mut m = self.clone();
        m.state = to;
        m.txn_last_update_timestamp_ms = now_ms as i64;
        m
    }

    /// This metadata with the epoch bumped (the old one kept as `last_producer_epoch`).
    pub fn bumped(mut self) -> TransactionMetadata {
        assert!(
            self.producer_epoch.0 < i16::MAX,
            "{}: no epoch above {}",
            self.transactional_id,
            self.producer_epoch.0
        );
        self.last_producer_epoch = self.producer_epoch;
        self.producer_epoch = ProducerEpoch(self.producer_epoch.0 + 1);
        self
    }
}

/// A record of `__transaction_state`: the id's metadata, or (`None`) a tombstone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnRecord {
    /// The key.
    pub transactional_id: String,
    /// The value; `None` is a tombstone.
    pub metadata: Option<TransactionMetadata>,
}

/// The transactions whose state lives in one `__transaction_state` partition, by
/// `transactional.id`, each with the offset of its last record.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct TxnShard {
    transactions: BTreeMap<String, (TransactionMetadata, Offset)>,
}

impl TxnShard {
    /// The metadata of `transactional_id`, if any.
    pub fn get(&self, transactional_id: &str) -> Option<&TransactionMetadata> {
        self.transactions.get(transactional_id).map(|(m, _)| m)
    }

    /// Every transaction, by id.
    pub fn iter(&self) -> impl Iterator<Item = &TransactionMetadata> {
        self.transactions.values().map(|(m, _)| m)
    }

    /// How many ids the shard holds.
    pub fn len(&self) -> usize {
        self.transactions.len()
    }

    /// Whether the shard holds no id.
    pub fn is_empty(&self) -> bool {
        self.transactions.is_empty()
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
    fn i8(&mut self) -> Result<i8, String> {
        Ok(self.take(1)?[0] as i8)
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

/// The key and value bytes of `r`.
pub fn encode_txn_record(r: &TxnRecord) -> KeyValue {
    let mut key = Vec::new();
    key.extend_from_slice(&KEY_VERSION.to_be_bytes());
    put_string(&mut key, &r.transactional_id);
    let value = r.metadata.as_ref().map(|m| {
        assert_eq!(
            m.transactional_id, r.transactional_id,
            "record key and value"
        );
        let mut v = Vec::new();
        v.extend_from_slice(&VALUE_VERSION.to_be_bytes());
        v.extend_from_slice(&m.producer_id.0.to_be_bytes());
        v.extend_from_slice(&m.last_producer_id.0.to_be_bytes());
        v.extend_from_slice(&m.next_producer_id.0.to_be_bytes());
        v.extend_from_slice(&m.producer_epoch.0.to_be_bytes());
        v.extend_from_slice(&m.last_producer_epoch.0.to_be_bytes());
        let timeout = i32::try_from(m.transaction_timeout_ms).expect("a timeout above i32");
        v.extend_from_slice(&timeout.to_be_bytes());
        v.push(m.state.id() as u8);
        v.extend_from_slice(&(m.partitions.len() as i32).to_be_bytes());
        for tp in &m.partitions {
            put_string(&mut v, &tp.topic);
            v.extend_from_slice(&tp.partition.to_be_bytes());
        }
        v.extend_from_slice(&m.txn_last_update_timestamp_ms.to_be_bytes());
        v.extend_from_slice(&m.txn_start_timestamp_ms.to_be_bytes());
        v
    });
    (Some(key), value)
}

/// The record `key` / `value` hold; `Ok(None)` for a key version this shard does not keep.
pub fn decode_txn_record(
    key: Option<&[u8]>,
    value: Option<&[u8]>,
) -> Result<Option<TxnRecord>, String> {
    let key = key.ok_or("a __transaction_state record without a key")?;
    let mut k = Reader { buf: key };
    let version = k.i16()?;
    if version != KEY_VERSION {
        return Ok(None);
    }
    let transactional_id = k.string()?;
    let Some(value) = value else {
        return Ok(Some(TxnRecord {
            transactional_id,
            metadata: None,
        }));
    };
    let mut v = Reader { buf: value };
    let version = v.i16()?;
    if version != VALUE_VERSION {
        return Err(format!("transaction value version {version}"));
    }
    let producer_id = ProducerId(v.i64()?);
    let last_producer_id = ProducerId(v.i64()?);
    let next_producer_id = ProducerId(v.i64()?);
    let producer_epoch = ProducerEpoch(v.i16()?);
    let last_producer_epoch = ProducerEpoch(v.i16()?);
    let timeout = v.i32()?;
    if timeout < 0 {
        return Err(format!("transaction timeout {timeout}"));
    }
    let state_id = v.i8()?;
    let state = TxnState::from_id(state_id).ok_or(format!("transaction state {state_id}"))?;
    let n = v.i32()?;
    if n < 0 {
        return Err(format!("partition count {n}"));
    }
    let mut partitions = BTreeSet::new();
    for _ in 0..n {
        let topic = v.string()?;
        let partition = v.i32()?;
        partitions.insert(TopicPartition::new(&topic, partition));
    }
    let txn_last_update_timestamp_ms = v.i64()?;
    let txn_start_timestamp_ms = v.i64()?;
    Ok(Some(TxnRecord {
        metadata: Some(TransactionMetadata {
            transactional_id: transactional_id.clone(),
            producer_id,
            last_producer_id,
            next_producer_id,
            producer_epoch,
            last_producer_epoch,
            transaction_timeout_ms: timeout as u64,
            state,
            partitions,
            txn_start_timestamp_ms,
            txn_last_update_timestamp_ms,
        }),
        transactional_id,
    }))
}

impl CoordinatorShard for TxnShard {
    type Record = TxnRecord;

    fn encode(record: &TxnRecord) -> KeyValue {
        encode_txn_record(record)
    }

    fn decode(record: &Record) -> Result<Option<TxnRecord>, String> {
        decode_txn_record(record.key.as_deref(), record.value.as_deref())
    }

    fn replay(&mut self, offset: Offset, record: &TxnRecord) {
        match &record.metadata {
            Some(m) => {
                if let Some((_, at)) = self.transactions.get(&record.transactional_id) {
                    assert!(*at < offset, "replayed {offset:?} after {at:?}");
                }
                self.transactions
                    .insert(record.transactional_id.clone(), (m.clone(), offset));
            }
            None => {
                self.transactions.remove(&record.transactional_id);
            }
        }
    }
}
