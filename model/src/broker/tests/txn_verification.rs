//! KIP-890 part 1 on the partition leader (`txn_verification.rs`): a transactional batch of a
//! producer with no transaction open in the partition waits for the coordinator's
//! AddPartitionsToTxn(verify_only) answer, and the verification guard refuses a batch whose
//! transaction ended while the question was in flight.

use super::txn::{send, txn_batch, write_markers, PID};
use super::*;

const PRODUCER: NodeId = NodeId::Producer(0);
const COORDINATOR: BrokerId = BrokerId(2);

/// A leader of `t-0` (verification on, Kafka's default) whose metadata cache names broker 2
/// as the leader of the `__transaction_state` partition of "tx".
fn verifying_leader() -> Broker {
    let (mut b, _) = leader_of_t0(vec![BrokerId(0)]);
    assert!(b.config.transaction_partition_verification_enable);
    let txn_tp = crate::transaction_coordinator::partition_for(
        "tx",
        b.config.transaction_state_log_num_partitions,
    );
    b.metadata.insert(
        txn_tp.clone(),
        PartitionState {
            tp: txn_tp,
            leader: Some(COORDINATOR),
            leader_epoch: LeaderEpoch(0),
            isr: vec![COORDINATOR],
            replicas: vec![COORDINATOR],
            partition_epoch: ZkVersion(0),
            controller_epoch: ControllerEpoch(1),
        },
    );
    b
}

fn txn_produce(corr: u64, batch: Vec<u8>) -> Message {
    Message::Produce {
        corr: CorrelationId(corr),
        acks: Acks::All,
        timeout_ms: 30_000,
        transactional_id: Some("tx".into()),
        partitions: vec![(tp(), batch)],
    }
}

/// The verification the leader sent to the coordinator, if any.
fn verification(out: &Effects<BrokerTimer>) -> Option<CorrelationId> {
    out.list.iter().find_map(|e| match e {
        crate::effects::Effect::Send {
            to,
            msg:
                Message::AddPartitionsToTxn {
                    corr,
                    transactional_id,
                    producer_id,
                    partitions,
                    verify_only: true,
                    ..
                },
        } => {
            assert_eq!(*to, NodeId::Broker(COORDINATOR));
            assert_eq!(
                (transactional_id.as_str(), *producer_id, partitions.clone()),
                ("tx", PID, vec![tp()])
            );
            Some(*corr)
        }
        _ => None,
    })
}

fn answer(b: &mut Broker, t: u64, corr: CorrelationId, error: ErrorCode) -> Effects<BrokerTimer> {
    send(
        b,
        t,
        NodeId::Broker(COORDINATOR),
        Message::AddPartitionsToTxnResponse {
            corr,
            results: vec![(tp(), error)],
        },
    )
}

/// The first batch waits for the coordinator; NONE appends it; the next batch of the open
/// transaction needs no verification; after the COMMIT marker a new batch is verified again,
/// and TRANSACTION_ABORTABLE (not in the ongoing transaction) refuses it, appending nothing.
#[test]
fn the_first_transactional_batch_waits_for_the_coordinator() {
    let mut b = verifying_leader();
    let out = send(&mut b, 1, PRODUCER, txn_produce(1, txn_batch(0, 0, 2)));
    assert!(produce_responses(&out).is_empty(), "held, not answered");
    let corr = verification(&out).expect("a verification to the coordinator");
    assert_eq!(b.txn_verification.held_count(), 1);
    assert_eq!(b.partitions[&tp()].log.log_end_offset(), Offset(0));
    let out = answer(&mut b, 2, corr, ErrorCode::None);
    assert_eq!(
        produce_responses(&out),
        vec![(CorrelationId(1), ErrorCode::None, Offset(0))]
    );
    assert_eq!(b.txn_verification.held_count(), 0);

    let out = send(&mut b, 3, PRODUCER, txn_produce(2, txn_batch(0, 2, 1)));
    assert!(verification(&out).is_none(), "the transaction is open here");
    assert_eq!(
        produce_responses(&out),
        vec![(CorrelationId(2), ErrorCode::None, Offset(2))]
    );

    send(
        &mut b,
        4,
        NodeId::Broker(COORDINATOR),
        write_markers(5, 0, TransactionResult::Commit, 0),
    );
    let out = send(&mut b, 5, PRODUCER, txn_produce(3, txn_batch(0, 3, 1)));
    let corr = verification(&out).expect("no transaction open after the marker");
    let out = answer(&mut b, 6, corr, ErrorCode::TransactionAbortable);
    assert_eq!(
        produce_responses(&out),
        vec![(
            CorrelationId(3),
            ErrorCode::TransactionAbortable,
            Offset(-1)
        )]
    );
    assert!(out.events().iter().any(|e| matches!(
        e,
        Event::ProduceRejected {
            error: ErrorCode::TransactionAbortable,
            ..
        }
    )));
    assert_eq!(
        b.partitions[&tp()].log.log_end_offset(),
        Offset(4),
        "2 + 1 records and the marker; the refused batch is not appended"
    );
}

/// The ABA race the guard closes (KAFKA-15449): a marker of the producer lands while the
/// verification is in flight, so a NONE that was true when the coordinator answered no longer
/// holds; the batch is refused with INVALID_TXN_STATE instead of opening a hanging
/// transaction. A coordinator that cannot answer (NOT_COORDINATOR, or no answer in time)
/// fails the produce with the retriable NOT_ENOUGH_REPLICAS.
#[test]
fn a_marker_during_verification_spends_the_guard() {
    let mut b = verifying_leader();
    let out = send(&mut b, 1, PRODUCER, txn_produce(1, txn_batch(0, 0, 1)));
    let corr = verification(&out).unwrap();
    send(
        &mut b,
        2,
        NodeId::Broker(COORDINATOR),
        write_markers(5, 0, TransactionResult::Abort, 0),
    );
    let out = answer(&mut b, 3, corr, ErrorCode::None);
    assert_eq!(
        produce_responses(&out),
        vec![(CorrelationId(1), ErrorCode::InvalidTxnState, Offset(-1))]
    );
    assert!(b.partitions[&tp()]
        .log
        .txn_state()
        .ongoing()
        .next()
        .is_none());

    let out = send(&mut b, 4, PRODUCER, txn_produce(2, txn_batch(0, 0, 1)));
    let corr = verification(&out).unwrap();
    let out = answer(&mut b, 5, corr, ErrorCode::NotCoordinator);
    assert_eq!(
        produce_responses(&out),
        vec![(CorrelationId(2), ErrorCode::NotEnoughReplicas, Offset(-1))]
    );
    let out = send(&mut b, 6, PRODUCER, txn_produce(3, txn_batch(0, 0, 1)));
    let corr = verification(&out).unwrap();
    let mut timed_out = Effects::new();
    b.checked_timeout(
        Instant(30_006),
        BrokerTimer::TxnVerificationTimeout { corr },
        &mut timed_out,
    );
    assert_eq!(
        produce_responses(&timed_out),
        vec![(CorrelationId(3), ErrorCode::NotEnoughReplicas, Offset(-1))]
    );
}

/// With `transaction.partition.verification.enable = false` the batch is appended at once,
/// as before KIP-890.
#[test]
fn without_verification_the_batch_is_appended_at_once() {
    let mut b = verifying_leader();
    b.config.transaction_partition_verification_enable = false;
    let out = send(&mut b, 1, PRODUCER, txn_produce(1, txn_batch(0, 0, 1)));
    assert!(verification(&out).is_none());
    assert_eq!(
        produce_responses(&out),
        vec![(CorrelationId(1), ErrorCode::None, Offset(0))]
    );
}
