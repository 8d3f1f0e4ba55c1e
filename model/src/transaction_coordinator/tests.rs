//! The transaction coordinator's rules without a broker: the state machine's transitions, the
//! `__transaction_state` record format, every answer of InitProducerId, AddPartitionsToTxn
//! (and its KIP-890 verification), AddOffsetsToTxn and EndTxn (transaction versions 1 and 2),
//! the timeout abort, completion, and the marker channel.

use super::marker_channel::MARKER_REQUEST_TIMEOUT_MS;
use super::transaction_manager::*;
use super::transaction_metadata::*;
use super::*;
use crate::coordinator_runtime::CoordinatorShard;
use crate::protocol::{TransactionResult, WritableTxnMarkerResult};
use crate::types::{BrokerId, Offset, ProducerEpoch, ProducerId};
use std::collections::BTreeMap;

const ID: &str = "txn-1";

fn tp(topic: &str, p: i32) -> TopicPartition {
    TopicPartition::new(topic, p)
}

fn cfg(version: i16) -> TxnConfig {
    TxnConfig {
        transaction_version: version,
        ..TxnConfig::default()
    }
}

fn legacy() -> TxnConfig {
    TxnConfig {
        producer_fencing: false,
        ..TxnConfig::default()
    }
}

/// A stored id with producer id 1000 at `epoch` in `state`, partitions `t-0` when the state
/// holds any.
fn meta(state: TxnState, epoch: i16) -> TransactionMetadata {
    let mut m = TransactionMetadata::new(ID, ProducerId(1000), 60_000, 0);
    m.producer_epoch = ProducerEpoch(epoch);
    m.last_producer_epoch = ProducerEpoch(epoch - 1);
    m.state = state;
    if matches!(
        state,
        TxnState::Ongoing | TxnState::PrepareCommit | TxnState::PrepareAbort
    ) {
        m.partitions.insert(tp("t", 0));
        m.txn_start_timestamp_ms = 100;
    }
    m
}

fn no_alloc() -> impl FnMut() -> ProducerId {
    || panic!("no producer id expected")
}

const NO_PRODUCER: (ProducerId, ProducerEpoch) = (ProducerId::NONE, ProducerEpoch(-1));

fn init(
    config: &TxnConfig,
    current: Option<&TransactionMetadata>,
    pending: bool,
    expected: (ProducerId, ProducerEpoch),
) -> Decision<ProducerReply> {
    let mut next = 5000;
    let mut alloc = || {
        next += 1;
        ProducerId(next)
    };
    init_producer_id(
        config, current, pending, ID, 60_000, expected, 1_000, &mut alloc,
    )
}

fn written<R: std::fmt::Debug>(d: Decision<R>) -> (TransactionMetadata, &'static str, R) {
    match d {
        Decision::Write {
            metadata,
            reason,
            on_commit,
        } => (metadata, reason, on_commit),
        d => panic!("expected a write, got {d:?}"),
    }
}

fn replied<R: std::fmt::Debug>(d: Decision<R>) -> R {
    match d {
        Decision::Reply(r) => r,
        d => panic!("expected a reply, got {d:?}"),
    }
}

// ---- the state machine ----

#[test]
fn transitions_follow_transaction_metadata_scala() {
    use TxnState::*;
    let all = [
        Empty,
        Ongoing,
        PrepareCommit,
        PrepareAbort,
        CompleteCommit,
        CompleteAbort,
        PrepareEpochFence,
        Dead,
    ];
    let legal: &[(TxnState, TxnState)] = &[
        (Empty, Empty),
        (CompleteCommit, Empty),
        (CompleteAbort, Empty),
        (Ongoing, Ongoing),
        (Empty, Ongoing),
        (CompleteCommit, Ongoing),
        (CompleteAbort, Ongoing),
        (Ongoing, PrepareCommit),
        (Ongoing, PrepareAbort),
        (PrepareEpochFence, PrepareAbort),
        (PrepareCommit, CompleteCommit),
        (PrepareAbort, CompleteAbort),
        (Empty, Dead),
        (CompleteCommit, Dead),
        (CompleteAbort, Dead),
        (Ongoing, PrepareEpochFence),
    ];
    for from in all {
        for to in all {
            assert_eq!(
                from.can_transition_to(to),
                legal.contains(&(from, to)),
                "{} -> {}",
                from.name(),
                to.name()
            );
        }
    }
    for s in all {
        assert_eq!(TxnState::from_id(s.id()), Some(s));
    }
    assert_eq!(TxnState::from_id(9), None);
}

#[test]
#[should_panic(expected = "illegal transition Empty -> PrepareCommit")]
fn an_illegal_transition_panics() {
    meta(TxnState::Empty, 0).transit(TxnState::PrepareCommit, 1);
}

// ---- the record format ----

#[test]
fn records_round_trip_and_replay_last_writer_wins() {
    let mut m = meta(TxnState::Ongoing, 3);
    m.partitions.insert(tp("__consumer_offsets", 12));
    m.last_producer_id = ProducerId(999);
    let r = TxnRecord {
        transactional_id: ID.into(),
        metadata: Some(m.clone()),
    };
    let (k, v) = encode_txn_record(&r);
    assert_eq!(
        decode_txn_record(k.as_deref(), v.as_deref()),
        Ok(Some(r.clone()))
    );
    // A tombstone.
    let t = TxnRecord {
        transactional_id: ID.into(),
        metadata: None,
    };
    let (tk, tv) = encode_txn_record(&t);
    assert_eq!(tv, None);
    assert_eq!(decode_txn_record(tk.as_deref(), None), Ok(Some(t.clone())));
    // Short or unknown bytes are errors; another key version is skipped.
    let short = &v.as_ref().unwrap()[..10];
    assert!(decode_txn_record(k.as_deref(), Some(short)).is_err());
    assert!(decode_txn_record(None, v.as_deref()).is_err());
    let mut other_key = k.clone().unwrap();
    other_key[1] = 5;
    assert_eq!(decode_txn_record(Some(&other_key), v.as_deref()), Ok(None));
    // Replay: the last record per key wins; a tombstone removes.
    let mut shard = TxnShard::default();
    shard.replay(Offset(0), &r);
    let mut later = m.clone();
    later.state = TxnState::PrepareCommit;
    shard.replay(
        Offset(1),
        &TxnRecord {
            transactional_id: ID.into(),
            metadata: Some(later.clone()),
        },
    );
    assert_eq!(shard.get(ID), Some(&later));
    shard.replay(Offset(2), &t);
    assert!(shard.is_empty());
}

#[test]
fn a_transactional_id_maps_to_its_transaction_state_partition() {
    // The same hash as the groups': |-1906497762| % 50 = 12.
    assert_eq!(
        partition_for("my-group", 50),
        tp(TRANSACTION_STATE_TOPIC, 12)
    );
    assert_eq!(partition_for("polygenelubricants", 50).partition, 0);
    assert_eq!(partition_for("", 7).partition, 0);
}

// ---- InitProducerId ----

#[test]
fn init_producer_id_for_a_new_id_gives_a_new_producer_id_at_epoch_0() {
    let (m, reason, reply) = written(init(&cfg(2), None, false, NO_PRODUCER));
    assert_eq!(reason, "init-producer-id");
    assert_eq!(
        (m.producer_id, m.producer_epoch),
        (ProducerId(5001), ProducerEpoch(0))
    );
    assert_eq!(m.state, TxnState::Empty);
    assert_eq!(m.transaction_timeout_ms, 60_000);
    assert_eq!(
        reply,
        ProducerReply {
            error: ErrorCode::None,
            producer_id: ProducerId(5001),
            producer_epoch: ProducerEpoch(0)
        }
    );
}

#[test]
fn init_producer_id_bumps_the_epoch_from_empty_and_complete() {
    for state in [
        TxnState::Empty,
        TxnState::CompleteCommit,
        TxnState::CompleteAbort,
    ] {
        let current = meta(state, 4);
        let (m, _, reply) = written(init(&cfg(2), Some(&current), false, NO_PRODUCER));
        assert_eq!(m.state, TxnState::Empty);
        assert_eq!(m.producer_id, ProducerId(1000));
        assert_eq!(m.producer_epoch, ProducerEpoch(5), "{}", state.name());
        // A new instance: no previous epoch is kept (Kafka's NO_PRODUCER_EPOCH).
        assert_eq!(m.last_producer_epoch, ProducerEpoch(-1));
        assert!(m.partitions.is_empty());
        assert_eq!(reply.producer_epoch, ProducerEpoch(5));
    }
}

/// A fenced instance's KIP-360 InitProducerId at its old epoch must not pass for a retry once a
/// new instance (no expected id and epoch) bumped the epoch: zombie-producer-fenced seed
/// 6100012, where the fenced replacement got the new instance's epoch and both wrote under it.
#[test]
fn a_new_instances_bump_leaves_no_previous_epoch_to_retry_at() {
    let current = meta(TxnState::CompleteAbort, 71);
    // The new instance (the resumed zombie's initTransactions) takes epoch 72.
    let (m, _, reply) = written(init(&cfg(2), Some(&current), false, NO_PRODUCER));
    assert_eq!(reply.producer_epoch, ProducerEpoch(72));
    // The instance it fenced, after an abortable error, asks with its own id and epoch 71.
    let r = replied(init(
        &cfg(2),
        Some(&m),
        false,
        (ProducerId(1000), ProducerEpoch(71)),
    ));
    assert_eq!(r.error, ErrorCode::ProducerFenced, "{r:?}");
    // The new instance's own bump (KIP-360, its current epoch) still works.
    let (again, _, _) = written(init(
        &cfg(2),
        Some(&m),
        false,
        (ProducerId(1000), ProducerEpoch(72)),
    ));
    assert_eq!(
        (again.producer_epoch, again.last_producer_epoch),
        (ProducerEpoch(73), ProducerEpoch(72))
    );
}

#[test]
fn init_producer_id_fences_an_ongoing_transaction_and_answers_concurrent_transactions() {
    let current = meta(TxnState::Ongoing, 4);
    let (m, reason, reply) = written(init(&cfg(2), Some(&current), false, NO_PRODUCER));
    assert_eq!(reason, "fence");
    assert_eq!(m.state, TxnState::PrepareAbort);
    assert_eq!(m.producer_epoch, ProducerEpoch(5), "aborted at epoch+1");
    assert_eq!(
        m.partitions, current.partitions,
        "the markers go to every partition"
    );
    assert_eq!(reply.error, ErrorCode::ConcurrentTransactions);
    // Once the abort completed, the client's retry bumps again: epoch 6.
    let done = complete(&m, 2_000);
    assert_eq!(done.state, TxnState::CompleteAbort);
    let (again, _, reply) = written(init(&cfg(2), Some(&done), false, NO_PRODUCER));
    assert_eq!(again.producer_epoch, ProducerEpoch(6));
    assert_eq!(reply.error, ErrorCode::None);
}

#[test]
fn init_producer_id_waits_while_a_transaction_completes() {
    for state in [TxnState::PrepareCommit, TxnState::PrepareAbort] {
        let current = meta(state, 4);
        let r = replied(init(&cfg(2), Some(&current), false, NO_PRODUCER));
        assert_eq!(r.error, ErrorCode::ConcurrentTransactions);
    }
    let current = meta(TxnState::Empty, 4);
    let r = replied(init(&cfg(2), Some(&current), true, NO_PRODUCER));
    assert_eq!(
        r.error,
        ErrorCode::ConcurrentTransactions,
        "a pending write"
    );
}

#[test]
fn init_producer_id_checks_the_expected_producer_id_and_epoch() {
    let current = meta(TxnState::CompleteCommit, 4);
    // Another producer id: fenced.
    let r = replied(init(
        &cfg(2),
        Some(&current),
        false,
        (ProducerId(77), ProducerEpoch(4)),
    ));
    assert_eq!(r.error, ErrorCode::ProducerFenced);
    // An epoch that is neither the current nor the previous one: fenced.
    let r = replied(init(
        &cfg(2),
        Some(&current),
        false,
        (ProducerId(1000), ProducerEpoch(1)),
    ));
    assert_eq!(r.error, ErrorCode::ProducerFenced);
    // The current epoch: bumped.
    let (m, _, _) = written(init(
        &cfg(2),
        Some(&current),
        false,
        (ProducerId(1000), ProducerEpoch(4)),
    ));
    assert_eq!(m.producer_epoch, ProducerEpoch(5));
    // The previous epoch (a retry, or a producer whose transaction timed out): the current
    // id and epoch, nothing written.
    let r = replied(init(
        &cfg(2),
        Some(&current),
        false,
        (ProducerId(1000), ProducerEpoch(3)),
    ));
    assert_eq!(
        (r.error, r.producer_id, r.producer_epoch),
        (ErrorCode::None, ProducerId(1000), ProducerEpoch(4))
    );
    // Without fencing nothing is checked and nothing bumped.
    let (m, _, _) = written(init(
        &legacy(),
        Some(&current),
        false,
        (ProducerId(77), ProducerEpoch(1)),
    ));
    assert_eq!(m.producer_epoch, ProducerEpoch(4));
}

#[test]
fn init_producer_id_refuses_a_timeout_above_the_maximum_and_an_empty_id() {
    let mut alloc = no_alloc();
    let d = init_producer_id(
        &cfg(2),
        None,
        false,
        ID,
        900_001,
        NO_PRODUCER,
        0,
        &mut alloc,
    );
    assert_eq!(replied(d).error, ErrorCode::InvalidTransactionTimeout);
    let d = init_producer_id(&cfg(2), None, false, ID, 0, NO_PRODUCER, 0, &mut alloc);
    assert_eq!(replied(d).error, ErrorCode::InvalidTransactionTimeout);
    let d = init_producer_id(&cfg(2), None, false, "", 1_000, NO_PRODUCER, 0, &mut alloc);
    assert_eq!(replied(d).error, ErrorCode::InvalidRequest);
}

#[test]
fn an_exhausted_epoch_gets_a_new_producer_id() {
    let current = meta(TxnState::CompleteCommit, MAX_PRODUCER_EPOCH);
    let (m, _, reply) = written(init(&cfg(2), Some(&current), false, NO_PRODUCER));
    assert_eq!(
        (m.producer_id, m.producer_epoch),
        (ProducerId(5001), ProducerEpoch(0))
    );
    assert_eq!(m.last_producer_id, ProducerId(1000));
    assert_eq!(reply.producer_id, ProducerId(5001));
    // One below: a plain bump to Short.MAX - 1.
    let current = meta(TxnState::CompleteCommit, MAX_PRODUCER_EPOCH - 1);
    let (m, _, _) = written(init(&cfg(2), Some(&current), false, NO_PRODUCER));
    assert_eq!(m.producer_epoch, ProducerEpoch(MAX_PRODUCER_EPOCH));
}

// ---- AddPartitionsToTxn, AddOffsetsToTxn, verification ----

fn add(
    config: &TxnConfig,
    current: Option<&TransactionMetadata>,
    pending: bool,
    epoch: i16,
    partitions: &[TopicPartition],
) -> Decision<ErrorCode> {
    add_partitions(
        config,
        current,
        pending,
        ProducerId(1000),
        ProducerEpoch(epoch),
        partitions,
        "add-partitions",
        5_000,
    )
}

#[test]
fn add_partitions_errors() {
    let p = [tp("t", 1)];
    assert_eq!(
        replied(add(&cfg(2), None, false, 0, &p)),
        ErrorCode::InvalidProducerIdMapping
    );
    let mut other = meta(TxnState::Empty, 0);
    other.producer_id = ProducerId(1);
    assert_eq!(
        replied(add(&cfg(2), Some(&other), false, 0, &p)),
        ErrorCode::InvalidProducerIdMapping
    );
    let m = meta(TxnState::Ongoing, 3);
    assert_eq!(
        replied(add(&cfg(2), Some(&m), false, 2, &p)),
        ErrorCode::ProducerFenced
    );
    assert_eq!(
        replied(add(&cfg(2), Some(&m), true, 3, &p)),
        ErrorCode::ConcurrentTransactions
    );
    for state in [TxnState::PrepareCommit, TxnState::PrepareAbort] {
        let m = meta(state, 3);
        assert_eq!(
            replied(add(&cfg(2), Some(&m), false, 3, &p)),
            ErrorCode::ConcurrentTransactions
        );
    }
    // Without producer fencing the epoch is not checked.
    let (n, _, _) = written(add(&legacy(), Some(&m), false, 1, &p));
    assert!(n.partitions.contains(&p[0]));
}

#[test]
fn add_partitions_opens_a_transaction_from_empty_and_complete_and_adds_to_an_ongoing_one() {
    for state in [
        TxnState::Empty,
        TxnState::CompleteCommit,
        TxnState::CompleteAbort,
    ] {
        let m = meta(state, 3);
        let (n, reason, reply) = written(add(&cfg(2), Some(&m), false, 3, &[tp("t", 1)]));
        assert_eq!(
            (n.state, reason, reply),
            (TxnState::Ongoing, "add-partitions", ErrorCode::None)
        );
        assert_eq!(
            n.partitions.iter().cloned().collect::<Vec<_>>(),
            vec![tp("t", 1)]
        );
        assert_eq!(
            n.txn_start_timestamp_ms, 5_000,
            "a new transaction starts now"
        );
        assert_eq!(n.producer_epoch, ProducerEpoch(3));
    }
    let m = meta(TxnState::Ongoing, 3);
    let (n, _, _) = written(add(&cfg(2), Some(&m), false, 3, &[tp("t", 1)]));
    assert_eq!(n.partitions.len(), 2);
    assert_eq!(
        n.txn_start_timestamp_ms, 100,
        "the transaction's start stays"
    );
    // Already in the transaction: answered at once.
    assert_eq!(
        replied(add(&cfg(2), Some(&m), false, 3, &[tp("t", 0)])),
        ErrorCode::None
    );
}

#[test]
fn add_offsets_adds_the_groups_consumer_offsets_partition() {
    let m = meta(TxnState::Ongoing, 3);
    let d = add_offsets(
        &cfg(2),
        Some(&m),
        false,
        ProducerId(1000),
        ProducerEpoch(3),
        "my-group",
        0,
    );
    let (n, reason, _) = written(d);
    assert_eq!(reason, "add-offsets");
    assert!(n.partitions.contains(&tp("__consumer_offsets", 12)));
    let d = add_offsets(
        &cfg(2),
        Some(&m),
        false,
        ProducerId(1000),
        ProducerEpoch(2),
        "my-group",
        0,
    );
    assert_eq!(replied(d), ErrorCode::ProducerFenced);
}

#[test]
fn verification_answers_none_only_for_partitions_of_the_ongoing_transaction() {
    let m = meta(TxnState::Ongoing, 3);
    let parts = [tp("t", 0), tp("t", 1)];
    let v = verify_partitions(
        &cfg(2),
        Some(&m),
        false,
        ProducerId(1000),
        ProducerEpoch(3),
        &parts,
    );
    assert_eq!(
        v,
        vec![
            (tp("t", 0), ErrorCode::None),
            (tp("t", 1), ErrorCode::TransactionAbortable)
        ]
    );
    // After the transaction completed, nothing is in it.
    let done = meta(TxnState::CompleteAbort, 3);
    let v = verify_partitions(
        &cfg(2),
        Some(&done),
        false,
        ProducerId(1000),
        ProducerEpoch(3),
        &parts[..1],
    );
    assert_eq!(v, vec![(tp("t", 0), ErrorCode::TransactionAbortable)]);
    // The producer checks come first.
    let v = verify_partitions(
        &cfg(2),
        Some(&m),
        false,
        ProducerId(1000),
        ProducerEpoch(2),
        &parts[..1],
    );
    assert_eq!(v, vec![(tp("t", 0), ErrorCode::ProducerFenced)]);
    let v = verify_partitions(
        &cfg(2),
        None,
        false,
        ProducerId(1000),
        ProducerEpoch(3),
        &parts[..1],
    );
    assert_eq!(v, vec![(tp("t", 0), ErrorCode::InvalidProducerIdMapping)]);
    let v = verify_partitions(
        &cfg(2),
        Some(&m),
        true,
        ProducerId(1000),
        ProducerEpoch(3),
        &parts[..1],
    );
    assert_eq!(v, vec![(tp("t", 0), ErrorCode::ConcurrentTransactions)]);
}

// ---- EndTxn ----

fn end(
    config: &TxnConfig,
    current: Option<&TransactionMetadata>,
    epoch: i16,
    committed: bool,
) -> Decision<ProducerReply> {
    let mut next = 7000;
    let mut alloc = || {
        next += 1;
        ProducerId(next)
    };
    end_txn(
        config,
        current,
        false,
        ProducerId(1000),
        ProducerEpoch(epoch),
        committed,
        9_000,
        &mut alloc,
    )
}

#[test]
fn end_txn_version_1() {
    let v1 = cfg(1);
    let m = meta(TxnState::Ongoing, 3);
    let (n, reason, reply) = written(end(&v1, Some(&m), 3, true));
    assert_eq!((n.state, reason), (TxnState::PrepareCommit, "end-txn"));
    assert_eq!(
        n.producer_epoch,
        ProducerEpoch(3),
        "version 1 keeps the epoch"
    );
    assert_eq!(
        (reply.error, reply.producer_epoch),
        (ErrorCode::None, ProducerEpoch(3))
    );
    let (n, _, _) = written(end(&v1, Some(&m), 3, false));
    assert_eq!(n.state, TxnState::PrepareAbort);
    // Errors.
    assert_eq!(
        replied(end(&v1, None, 3, true)).error,
        ErrorCode::InvalidProducerIdMapping
    );
    assert_eq!(
        replied(end(&v1, Some(&m), 2, true)).error,
        ErrorCode::ProducerFenced
    );
    let mut other = m.clone();
    other.producer_id = ProducerId(1);
    assert_eq!(
        replied(end(&v1, Some(&other), 3, true)).error,
        ErrorCode::InvalidProducerIdMapping
    );
    let mut alloc = no_alloc();
    let pending = end_txn(
        &v1,
        Some(&m),
        true,
        ProducerId(1000),
        ProducerEpoch(3),
        true,
        0,
        &mut alloc,
    );
    assert_eq!(replied(pending).error, ErrorCode::ConcurrentTransactions);
    // Prepare*: the same result waits, the other is invalid.
    let pc = meta(TxnState::PrepareCommit, 3);
    assert_eq!(
        replied(end(&v1, Some(&pc), 3, true)).error,
        ErrorCode::ConcurrentTransactions
    );
    assert_eq!(
        replied(end(&v1, Some(&pc), 3, false)).error,
        ErrorCode::InvalidTxnState
    );
    let pa = meta(TxnState::PrepareAbort, 3);
    assert_eq!(
        replied(end(&v1, Some(&pa), 3, false)).error,
        ErrorCode::ConcurrentTransactions
    );
    assert_eq!(
        replied(end(&v1, Some(&pa), 3, true)).error,
        ErrorCode::InvalidTxnState
    );
    // Complete*: the same result is a retry, the other is invalid.
    let cc = meta(TxnState::CompleteCommit, 3);
    assert_eq!(replied(end(&v1, Some(&cc), 3, true)).error, ErrorCode::None);
    assert_eq!(
        replied(end(&v1, Some(&cc), 3, false)).error,
        ErrorCode::InvalidTxnState
    );
    let ca = meta(TxnState::CompleteAbort, 3);
    assert_eq!(
        replied(end(&v1, Some(&ca), 3, false)).error,
        ErrorCode::None
    );
    assert_eq!(
        replied(end(&v1, Some(&ca), 3, true)).error,
        ErrorCode::InvalidTxnState
    );
    let empty = meta(TxnState::Empty, 3);
    assert_eq!(
        replied(end(&v1, Some(&empty), 3, true)).error,
        ErrorCode::InvalidTxnState
    );
}

#[test]
fn end_txn_version_2_bumps_the_epoch_and_returns_it() {
    let v2 = cfg(2);
    let m = meta(TxnState::Ongoing, 3);
    let (n, _, reply) = written(end(&v2, Some(&m), 3, true));
    assert_eq!(n.state, TxnState::PrepareCommit);
    assert_eq!(
        (n.producer_epoch, n.last_producer_epoch),
        (ProducerEpoch(4), ProducerEpoch(3))
    );
    assert_eq!(
        (reply.error, reply.producer_id, reply.producer_epoch),
        (ErrorCode::None, ProducerId(1000), ProducerEpoch(4))
    );
    // A retry at the old epoch while Prepare*: wait; once complete: NONE with the new epoch.
    assert_eq!(
        replied(end(&v2, Some(&n), 3, true)).error,
        ErrorCode::ConcurrentTransactions
    );
    let done = complete(&n, 10_000);
    let r = replied(end(&v2, Some(&done), 3, true));
    assert_eq!(
        (r.error, r.producer_epoch),
        (ErrorCode::None, ProducerEpoch(4))
    );
    // The other result at the old epoch: invalid.
    assert_eq!(
        replied(end(&v2, Some(&done), 3, false)).error,
        ErrorCode::InvalidTxnState
    );
    // A commit at the new epoch with nothing open: invalid; an abort: the epoch moves on.
    assert_eq!(
        replied(end(&v2, Some(&done), 4, true)).error,
        ErrorCode::InvalidTxnState
    );
    let (e, _, r) = written(end(&v2, Some(&done), 4, false));
    assert_eq!(
        (e.state, e.producer_epoch, r.producer_epoch),
        (TxnState::Empty, ProducerEpoch(5), ProducerEpoch(5))
    );
    // Any older epoch: fenced.
    assert_eq!(
        replied(end(&v2, Some(&done), 2, true)).error,
        ErrorCode::ProducerFenced
    );
}

/// GROUPS-AND-TRANSACTIONS.md B4.3 (KAFKA-17754): T1's first ABORT is delayed and its retry
/// completes T1; T2 under the same producer adds p1; the stale ABORT then arrives. Version 1
/// lets it abort T2 (the torn transaction); version 2 fences it.
#[test]
fn a_late_end_txn_is_fenced_by_version_2_and_tears_the_next_transaction_under_version_1() {
    let t1 = meta(TxnState::Ongoing, 0);
    for (version, late_outcome) in [(1, None), (2, Some(ErrorCode::ProducerFenced))] {
        let c = cfg(version);
        // T1 aborts (the retry of the delayed request), markers written, complete.
        let (prepared, _, reply) = written(end(&c, Some(&t1), 0, false));
        let epoch = reply.producer_epoch.0;
        let done = complete(&prepared, 1);
        // T2 adds p1 at the epoch the client now holds.
        let (t2, _, _) = written(add(&c, Some(&done), false, epoch, &[tp("t", 1)]));
        assert_eq!(t2.state, TxnState::Ongoing);
        // The stale ABORT of T1, at epoch 0.
        let late = end(&c, Some(&t2), 0, false);
        match late_outcome {
            None => {
                let (torn, _, r) = written(late);
                assert_eq!(r.error, ErrorCode::None);
                assert_eq!(torn.state, TxnState::PrepareAbort, "version 1 aborts T2");
            }
            Some(e) => assert_eq!(replied(late).error, e, "version 2 fences it"),
        }
    }
}

#[test]
fn end_txn_version_2_switches_producer_id_when_the_epoch_is_exhausted() {
    let m = meta(TxnState::Ongoing, MAX_PRODUCER_EPOCH);
    let (n, _, reply) = written(end(&cfg(2), Some(&m), MAX_PRODUCER_EPOCH, true));
    assert_eq!(
        n.producer_id,
        ProducerId(1000),
        "markers go out under the old id"
    );
    assert_eq!(n.next_producer_id, ProducerId(7001));
    assert_eq!(
        (reply.producer_id, reply.producer_epoch),
        (ProducerId(7001), ProducerEpoch(0))
    );
    let done = complete(&n, 1);
    assert_eq!(
        (done.producer_id, done.producer_epoch),
        (ProducerId(7001), ProducerEpoch(0))
    );
    assert_eq!(done.last_producer_id, ProducerId(1000));
}

#[test]
fn without_producer_fencing_end_txn_neither_bumps_nor_checks() {
    let m = meta(TxnState::Ongoing, 3);
    let (n, _, _) = written(end(&legacy(), Some(&m), 1, true));
    assert_eq!(
        (n.state, n.producer_epoch),
        (TxnState::PrepareCommit, ProducerEpoch(3))
    );
}

// ---- timeouts and completion ----

#[test]
fn a_timed_out_transaction_is_aborted_with_an_epoch_bump() {
    let m = meta(TxnState::Ongoing, 3); // started at 100, timeout 60 s
    assert_eq!(timed_out_abort(&cfg(2), &m, 60_100), None, "not yet");
    let n = timed_out_abort(&cfg(2), &m, 60_101).expect("timed out");
    assert_eq!(
        (n.state, n.producer_epoch),
        (TxnState::PrepareAbort, ProducerEpoch(4))
    );
    assert_eq!(n.partitions, m.partitions);
    let n = timed_out_abort(&legacy(), &m, 60_101).expect("timed out");
    assert_eq!(
        n.producer_epoch,
        ProducerEpoch(3),
        "no bump without fencing"
    );
    for state in [
        TxnState::Empty,
        TxnState::PrepareCommit,
        TxnState::CompleteAbort,
    ] {
        assert_eq!(timed_out_abort(&cfg(2), &meta(state, 3), 1_000_000), None);
    }
}

#[test]
fn completion_clears_the_partitions() {
    let n = complete(&meta(TxnState::PrepareCommit, 3), 7);
    assert_eq!(n.state, TxnState::CompleteCommit);
    assert!(n.partitions.is_empty());
    assert_eq!(n.txn_last_update_timestamp_ms, 7);
    assert_eq!(
        complete(&meta(TxnState::PrepareAbort, 3), 7).state,
        TxnState::CompleteAbort
    );
}

// ---- the marker channel ----

fn job(id: &str, partitions: &[TopicPartition]) -> MarkerJob {
    MarkerJob {
        txn_tp: tp(TRANSACTION_STATE_TOPIC, 0),
        transactional_id: id.into(),
        producer_id: ProducerId(1000),
        producer_epoch: ProducerEpoch(4),
        result: TransactionResult::Commit,
        coordinator_epoch: 7,
        remaining: partitions.iter().cloned().collect(),
        in_flight: Default::default(),
        seq: 0,
    }
}

fn drain(
    ch: &mut MarkerChannel,
    now_ms: u64,
    leaders: &BTreeMap<TopicPartition, i32>,
) -> Vec<(BrokerId, Message)> {
    let mut corr = 100;
    let out = ch.drain(
        now_ms,
        |tp| leaders.get(tp).map(|b| BrokerId(*b)),
        || {
            corr += 1;
            CorrelationId(corr + now_ms)
        },
    );
    ch.invariants();
    out
}

fn answer(
    msg: &Message,
    error: impl Fn(&TopicPartition) -> ErrorCode,
) -> (CorrelationId, Vec<WritableTxnMarkerResult>) {
    let Message::WriteTxnMarkers { corr, markers } = msg else {
        panic!("{msg:?}")
    };
    (
        *corr,
        markers
            .iter()
            .map(|m| WritableTxnMarkerResult {
                producer_id: m.producer_id,
                partitions: m
                    .partitions
                    .iter()
                    .map(|tp| (tp.clone(), error(tp)))
                    .collect(),
            })
            .collect(),
    )
}

#[test]
fn markers_go_to_each_leader_and_complete_once_every_partition_answered_none() {
    let mut ch = MarkerChannel::default();
    ch.add(job("a", &[tp("t", 0), tp("t", 1), tp("u", 0)]));
    ch.add(job("b", &[tp("t", 0)]));
    let leaders: BTreeMap<_, _> = [(tp("t", 0), 1), (tp("t", 1), 2), (tp("u", 0), 1)].into();
    let sends = drain(&mut ch, 0, &leaders);
    assert_eq!(sends.len(), 2, "one request per leader broker");
    assert_eq!(sends[0].0, BrokerId(1));
    let Message::WriteTxnMarkers { markers, .. } = &sends[0].1 else {
        panic!()
    };
    assert_eq!(markers.len(), 2, "one marker per transaction");
    assert_eq!(markers[0].partitions, vec![tp("t", 0), tp("u", 0)]);
    assert_eq!(markers[0].coordinator_epoch, 7);
    assert_eq!(markers[0].result, TransactionResult::Commit);
    // Nothing more while in flight.
    assert!(drain(&mut ch, 1, &leaders).is_empty());
    // Broker 1 answers NONE: "b" is complete, "a" waits for t-1.
    let (corr, results) = answer(&sends[0].1, |_| ErrorCode::None);
    let o = ch.on_response(corr, &results);
    assert_eq!(o.completed, vec!["b".to_string()]);
    // Broker 2 lost leadership: NOT_LEADER_OR_FOLLOWER, sent again to the new leader.
    let (corr, results) = answer(&sends[1].1, |_| ErrorCode::NotLeaderOrFollower);
    assert!(ch.on_response(corr, &results).completed.is_empty());
    let leaders: BTreeMap<_, _> = [(tp("t", 1), 3)].into();
    let again = drain(&mut ch, 2, &leaders);
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].0, BrokerId(3));
    let (corr, results) = answer(&again[0].1, |_| ErrorCode::None);
    assert_eq!(
        ch.on_response(corr, &results).completed,
        vec!["a".to_string()]
    );
    assert_eq!(ch.jobs().count(), 0);
    // A late duplicate answer is ignored.
    assert_eq!(ch.on_response(corr, &results), MarkerOutcome::default());
}

#[test]
fn lost_and_unanswered_marker_requests_are_sent_again() {
    let mut ch = MarkerChannel::default();
    ch.add(job("a", &[tp("t", 0)]));
    let leaders: BTreeMap<_, _> = [(tp("t", 0), 1)].into();
    assert_eq!(drain(&mut ch, 0, &leaders).len(), 1);
    ch.broker_lost(BrokerId(1));
    let sends = drain(&mut ch, 1, &leaders);
    assert_eq!(sends.len(), 1, "sent again after the connection dropped");
    let Message::WriteTxnMarkers { corr, .. } = &sends[0].1 else {
        panic!()
    };
    ch.send_failed(*corr);
    assert_eq!(
        drain(&mut ch, 2, &leaders).len(),
        1,
        "sent again after a failed send"
    );
    ch.expire(2 + MARKER_REQUEST_TIMEOUT_MS - 1);
    assert!(drain(&mut ch, 3, &leaders).is_empty(), "still in flight");
    ch.expire(2 + MARKER_REQUEST_TIMEOUT_MS);
    assert_eq!(
        drain(&mut ch, 4, &leaders).len(),
        1,
        "sent again after the timeout"
    );
    // No leader known: waits.
    assert!(drain(&mut ch, 5, &BTreeMap::new()).is_empty());
}

#[test]
fn a_fenced_marker_drops_the_job_and_a_resigned_partition_drops_its_jobs() {
    let mut ch = MarkerChannel::default();
    ch.add(job("a", &[tp("t", 0)]));
    let leaders: BTreeMap<_, _> = [(tp("t", 0), 1)].into();
    let sends = drain(&mut ch, 0, &leaders);
    let (corr, results) = answer(&sends[0].1, |_| ErrorCode::TransactionCoordinatorFenced);
    let o = ch.on_response(corr, &results);
    assert_eq!(
        o.fenced,
        vec![("a".to_string(), ErrorCode::TransactionCoordinatorFenced)]
    );
    assert!(o.completed.is_empty());
    assert!(ch.job("a").is_none());
    // A job restarted for the same id ignores the answers of the earlier one.
    ch.add(job("b", &[tp("t", 0)]));
    let first = drain(&mut ch, 1, &leaders);
    ch.add(job("b", &[tp("t", 0)]));
    let (corr, results) = answer(&first[0].1, |_| ErrorCode::None);
    assert!(ch.on_response(corr, &results).completed.is_empty());
    assert!(ch.job("b").is_some());
    ch.remove_partition(&tp(TRANSACTION_STATE_TOPIC, 0));
    assert_eq!(ch.jobs().count(), 0);
}
