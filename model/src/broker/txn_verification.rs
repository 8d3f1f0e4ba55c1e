//! KIP-890 part 1 on the partition leader: transaction verification
//! (`transaction.partition.verification.enable`, default true).
//!
//! Before KIP-890 a leader appended any transactional batch whose producer epoch was not
//! fenced. A produce delayed in the network past its transaction's end (the client timed it
//! out and aborted) then opened a transaction in the partition that the coordinator no
//! longer knew: a *hanging transaction*, holding the last stable offset, or, with
//! `transaction.version = 1`, a write that the producer's next transaction commits.
//!
//! With verification on, a leader that receives a transactional batch of a producer with no
//! transaction open in the partition (Kafka's `UnifiedLog.hasOngoingTransaction(producerId,
//! producerEpoch)`) does not append it yet:
//! 1. it records a fresh *verification guard* for (partition, producer id), or reuses the one
//!    already there (`ProducerStateManager.maybeCreateVerificationStateEntry`);
//! 2. it asks the transaction coordinator of the request's `transactional.id` (the leader of
//!    its `__transaction_state` partition, from the metadata cache) whether the partition is
//!    in the producer's ongoing transaction: AddPartitionsToTxn with `verify_only`
//!    (Kafka's `AddPartitionsToTxnManager`, answered by `TransactionCoordinator.
//!    handleVerifyPartitionsInTransaction`, [`crate::transaction_coordinator`]'s
//!    `verify_partitions`), and holds the produce until the answer;
//! 3. on NONE it runs the produce again with the guard; the append goes ahead only if the
//!    producer has a transaction open here by then, or the guard is still the partition's
//!    (`UnifiedLog.batchMissingRequiredVerification`). Any transactional batch or marker of
//!    the producer appended to the partition clears the guard (`UnifiedLog`'s
//!    `clearVerificationStateEntry`), so a marker that lands while the question is in flight
//!    makes the held batch fail with INVALID_TXN_STATE (the ABA race the guard exists for,
//!    KAFKA-15449);
//! 4. an error answer fails the produce, translated as `ReplicaManager.
//!    appendRecordsWithTransactionVerification` does: INVALID_TXN_STATE ("Partition was not
//!    added to the transaction") and TRANSACTION_ABORTABLE (the partition is not in the
//!    ongoing transaction; the client aborts) pass through, as do the fencing errors; the
//!    transient coordinator errors (NOT_COORDINATOR, COORDINATOR_LOAD_IN_PROGRESS,
//!    COORDINATOR_NOT_AVAILABLE, a lost or timed-out request, and with `transaction.version
//!    = 1` CONCURRENT_TRANSACTIONS) become NOT_ENOUGH_REPLICAS, which every client retries.
//!
//! What verification does not close: the coordinator says only whether the partition is in
//! the *current* transaction of that producer id and epoch. With `transaction.version = 1`
//! one epoch runs many transactions, so a batch of an aborted transaction that arrives once
//! the producer's next transaction has added the same partition is verified and joins that
//! transaction. KIP-890 part 2 (`transaction.version = 2`, an epoch bump per transaction)
//! fences it; see the scenario `hanging-transaction-tv1-verified`.
//!
//! Sources: KIP-890; KAFKA-14402 (verification), KAFKA-14561 (the guard), KAFKA-15449;
//! Kafka's `ReplicaManager.scala`, `AddPartitionsToTxnManager.scala`, `UnifiedLog.scala`.

use super::{Broker, BrokerTimer};
use crate::effects::Effects;
use crate::event::Event;
use crate::protocol::*;
use crate::types::*;
use std::collections::BTreeMap;

/// How long a held produce waits for the coordinator's answer before it fails with
/// NOT_ENOUGH_REPLICAS, in milliseconds: Kafka's inter-broker `request.timeout.ms` (30000),
/// after which `AddPartitionsToTxnManager` sees a disconnect (NETWORK_EXCEPTION).
pub(super) const VERIFICATION_TIMEOUT_MS: u64 = 30_000;

/// One partition of a produce request held until the coordinator answers its verification.
#[derive(Debug, Clone)]
pub(super) struct HeldProduce {
    pub(super) from: NodeId,
    /// The produce request's id in `Broker::produce_requests`.
    pub(super) req: u64,
    pub(super) tp: TopicPartition,
    pub(super) acks: Acks,
    pub(super) timeout_ms: u64,
    pub(super) batch: Vec<u8>,
    pub(super) transactional_id: String,
    pub(super) producer_id: ProducerId,
    /// The coordinator asked.
    pub(super) coordinator: BrokerId,
    /// The verification guard this produce was given.
    pub(super) guard: u64,
}

/// The leader's verification state (Kafka: the `VerificationStateEntry`s of each partition's
/// `ProducerStateManager`, and `AddPartitionsToTxnManager`'s requests in flight).
#[derive(Debug, Default)]
pub(super) struct TxnVerification {
    /// The current guard per (partition, producer id): set when a verification starts,
    /// removed when a transactional batch or marker of the producer is appended there.
    guards: BTreeMap<(TopicPartition, ProducerId), u64>,
    /// Held produces, by the correlation id of their AddPartitionsToTxn.
    held: BTreeMap<CorrelationId, HeldProduce>,
}

impl TxnVerification {
    /// A transactional batch or a marker of `producer_id` was appended to `tp`: its guard
    /// there is spent.
    pub(super) fn clear(&mut self, tp: &TopicPartition, producer_id: ProducerId) {
        self.guards.remove(&(tp.clone(), producer_id));
    }

    /// Whether `guard` is still the current guard of (`tp`, `producer_id`).
    pub(super) fn holds(&self, tp: &TopicPartition, producer_id: ProducerId, guard: u64) -> bool {
        self.guards.get(&(tp.clone(), producer_id)) == Some(&guard)
    }

    /// Held produces (tests).
    #[cfg(test)]
    pub(super) fn held_count(&self) -> usize {
        self.held.len()
    }
}

/// Where a transactional batch stands with respect to verification.
pub(super) enum Verification {
    /// Append it (verification off, not needed, or passed).
    Proceed,
    /// The produce was held; its answer comes later.
    Held,
    /// Refuse it with this error.
    Refuse(ErrorCode, String),
}

impl Broker {
    /// Decides whether the transactional batch of (`producer_id`, `producer_epoch`) for `tp`
    /// may be appended now (steps 1-3 of the module doc). `guard` is the one a held produce
    /// carries when it runs again after a NONE answer; `transactional_id` the request's;
    /// `held` builds what to keep, given the coordinator asked and the guard, if the produce
    /// must wait. Refusals: INVALID_TXN_STATE (a spent guard, or no `transactional.id`),
    /// NOT_ENOUGH_REPLICAS (no known coordinator).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn verify_transactional_batch(
        &mut self,
        tp: &TopicPartition,
        producer_id: ProducerId,
        producer_epoch: ProducerEpoch,
        guard: Option<u64>,
        transactional_id: Option<&str>,
        held: impl FnOnce(BrokerId, u64) -> HeldProduce,
        out: &mut Effects<BrokerTimer>,
    ) -> Verification {
        if !self.config.transaction_partition_verification_enable {
            return Verification::Proceed;
        }
        let ongoing = self.partitions.get(tp).is_some_and(|p| {
            p.log
                .txn_state()
                .has_ongoing_transaction(producer_id, producer_epoch)
        });
        if ongoing {
            return Verification::Proceed;
        }
        if let Some(g) = guard {
            return if self.txn_verification.holds(tp, producer_id, g) {
                Verification::Proceed
            } else {
                Verification::Refuse(
                    ErrorCode::InvalidTxnState,
                    format!(
                        "Producer {producer_id} (epoch {producer_epoch}): the batch for {tp} was verified, but a transaction marker or batch of the producer was appended meanwhile; it is not part of an ongoing transaction"
                    ),
                )
            };
        }
        let Some(transactional_id) = transactional_id else {
            return Verification::Refuse(
                ErrorCode::InvalidTxnState,
                format!("Producer {producer_id}: a transactional batch for {tp} came without a transactional.id, so it cannot be verified"),
            );
        };
        let coordinator_tp = crate::transaction_coordinator::partition_for(
            transactional_id,
            self.config.transaction_state_log_num_partitions,
        );
        let Some(coordinator) = self.metadata.get(&coordinator_tp).and_then(|s| s.leader) else {
            return Verification::Refuse(
                ErrorCode::NotEnoughReplicas,
                unable_to_verify("COORDINATOR_NOT_AVAILABLE"),
            );
        };
        // The guard: reuse a verification in progress, else a fresh one.
        let key = (tp.clone(), producer_id);
        let guard = match self.txn_verification.guards.get(&key) {
            Some(g) => *g,
            None => {
                let g = self.fresh_id();
                self.txn_verification.guards.insert(key, g);
                g
            }
        };
        let h = held(coordinator, guard);
        self.next_corr += 1;
        let corr = CorrelationId(self.next_corr);
        out.send(
            NodeId::Broker(coordinator),
            Message::AddPartitionsToTxn {
                corr,
                transactional_id: h.transactional_id.clone(),
                producer_id,
                producer_epoch,
                partitions: vec![tp.clone()],
                verify_only: true,
            },
        );
        out.timer(
            VERIFICATION_TIMEOUT_MS,
            BrokerTimer::TxnVerificationTimeout { corr },
        );
        self.txn_verification.held.insert(corr, h);
        Verification::Held
    }

    /// The coordinator's answer to a verification (step 3-4 of the module doc).
    pub(super) fn on_txn_verification_response(
        &mut self,
        now: Instant,
        corr: CorrelationId,
        results: Vec<(TopicPartition, ErrorCode)>,
        out: &mut Effects<BrokerTimer>,
    ) {
        let Some(h) = self.txn_verification.held.remove(&corr) else {
            return;
        };
        let answer = match results.iter().find(|(tp, _)| *tp == h.tp) {
            Some((_, ErrorCode::None)) => Ok(()),
            Some((_, e)) => Err(self.verification_error(*e)),
            None => Err((
                ErrorCode::NotEnoughReplicas,
                unable_to_verify("no answer for the partition"),
            )),
        };
        self.txn_verification_done(now, h, answer, out);
    }

    /// The verification `corr` got no answer in time, or its request was lost with its
    /// connection: the produce fails with NOT_ENOUGH_REPLICAS (NETWORK_EXCEPTION underneath).
    pub(super) fn txn_verification_lost(
        &mut self,
        now: Instant,
        corr: CorrelationId,
        out: &mut Effects<BrokerTimer>,
    ) {
        if let Some(h) = self.txn_verification.held.remove(&corr) {
            let lost = (
                ErrorCode::NotEnoughReplicas,
                unable_to_verify("NETWORK_EXCEPTION"),
            );
            self.txn_verification_done(now, h, Err(lost), out);
        }
    }

    /// The connection to broker `b` closed: every verification sent to it is lost.
    pub(super) fn txn_verifications_to_broker_lost(
        &mut self,
        now: Instant,
        b: BrokerId,
        out: &mut Effects<BrokerTimer>,
    ) {
        let lost: Vec<CorrelationId> = self
            .txn_verification
            .held
            .iter()
            .filter(|(_, h)| h.coordinator == b)
            .map(|(c, _)| *c)
            .collect();
        for corr in lost {
            self.txn_verification_lost(now, corr, out);
        }
    }

    fn txn_verification_done(
        &mut self,
        now: Instant,
        h: HeldProduce,
        answer: Result<(), (ErrorCode, String)>,
        out: &mut Effects<BrokerTimer>,
    ) {
        let mut reply = None;
        match answer {
            Ok(()) => {
                let tid = Some(h.transactional_id.clone());
                self.on_produce(
                    now,
                    h.from,
                    h.req,
                    h.tp,
                    h.acks,
                    h.timeout_ms,
                    h.batch,
                    (&tid, Some(h.guard)),
                    &mut reply,
                    out,
                );
            }
            Err((error, message)) => {
                // A refusal is an event; a transient failure (retried by the client) is not.
                if error != ErrorCode::NotEnoughReplicas {
                    out.event(Event::ProduceRejected {
                        tp: h.tp.clone(),
                        broker: self.id,
                        error,
                        message: format!("Producer {}: {message}", h.producer_id),
                    });
                }
                let log_start = self
                    .partitions
                    .get(&h.tp)
                    .map_or(Offset(-1), |p| p.log.log_start_offset());
                if h.acks != Acks::None {
                    reply = Some(PartitionProduceResponse {
                        tp: h.tp,
                        error,
                        base_offset: Offset(-1),
                        log_start_offset: log_start,
                    });
                }
            }
        }
        if let Some(r) = reply {
            self.produce_partition_done(h.req, r, out);
        }
    }

    /// A coordinator's error as the produce response carries it, with its message
    /// (`ReplicaManager.appendRecordsWithTransactionVerification`).
    fn verification_error(&self, error: ErrorCode) -> (ErrorCode, String) {
        match error {
            ErrorCode::InvalidTxnState => (
                error,
                "Partition was not added to the transaction".to_string(),
            ),
            ErrorCode::CoordinatorLoadInProgress
            | ErrorCode::CoordinatorNotAvailable
            | ErrorCode::NotCoordinator => (
                ErrorCode::NotEnoughReplicas,
                unable_to_verify(error.kafka_name()),
            ),
            ErrorCode::ConcurrentTransactions if self.config.transaction_version < 2 => (
                ErrorCode::NotEnoughReplicas,
                unable_to_verify(error.kafka_name()),
            ),
            ErrorCode::TransactionAbortable => (
                error,
                "the partition is not in the producer's ongoing transaction (verification failed): the transaction must abort".to_string(),
            ),
            e => (e, format!("verification failed: {}", e.kafka_name())),
        }
    }
}

/// Kafka's text for a verification that could not be carried out.
fn unable_to_verify(underlying: &str) -> String {
    format!(
        "Unable to verify the partition has been added to the transaction. Underlying error: {underlying}"
    )
}
