//! Sending transaction markers (Kafka's `TransactionMarkerChannelManager.scala` and
//! `TransactionMarkerRequestCompletionHandler.scala`).
//!
//! Once a transaction's PrepareCommit / PrepareAbort is committed in `__transaction_state`, the
//! coordinator must get a COMMIT / ABORT marker into every partition of the transaction. For
//! each such transaction a **job** lists the partitions still to mark. On each pass the channel
//! looks up every such partition's current leader in the broker's metadata cache and sends one
//! WriteTxnMarkers per leader broker, carrying one marker per transaction (producer id, epoch,
//! result, the coordinator epoch = the leader epoch of the `__transaction_state` partition when
//! it was loaded, and the partitions). A partition answered NONE is done; a retriable error
//! (NOT_LEADER_OR_FOLLOWER, UNKNOWN_TOPIC_OR_PARTITION, NOT_ENOUGH_REPLICAS, REQUEST_TIMED_OUT,
//! ...), a lost connection or an unanswered request puts it back for the next pass, which looks
//! the leader up again. When a job has no partition left, the coordinator writes
//! CompleteCommit / CompleteAbort.
//!
//! TRANSACTION_COORDINATOR_FENCED or INVALID_PRODUCER_EPOCH mean a newer coordinator or a newer
//! producer epoch owns the transaction: the job is dropped without completing it (Kafka's
//! `abortSending`); the newer coordinator finishes the transaction.
//!
//! A partition with no known leader waits for the next pass (Kafka drops a partition whose
//! topic was deleted; the model has no topic deletion during transactions, so it waits).

use crate::protocol::{ErrorCode, Message, TransactionResult, WritableTxnMarker};
use crate::types::{BrokerId, CorrelationId, ProducerEpoch, ProducerId, TopicPartition};
use std::collections::{BTreeMap, BTreeSet};

/// How long a WriteTxnMarkers may stay unanswered before its partitions are sent again
/// (Kafka's inter-broker `request.timeout.ms`, 30000).
pub const MARKER_REQUEST_TIMEOUT_MS: u64 = 30_000;

/// The markers one transaction still needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MarkerJob {
    /// The `__transaction_state` partition whose coordinator owns the transaction.
    pub txn_tp: TopicPartition,
    /// The transaction's `transactional.id`.
    pub transactional_id: String,
    /// The producer id and epoch of the Prepare* state (the markers carry them).
    pub producer_id: ProducerId,
    pub producer_epoch: ProducerEpoch,
    /// COMMIT for PrepareCommit, ABORT for PrepareAbort.
    pub result: TransactionResult,
    /// The leader epoch of `txn_tp` the coordinator loaded it in.
    pub coordinator_epoch: i32,
    /// Partitions without their marker yet (sent or not).
    pub remaining: BTreeSet<TopicPartition>,
    /// Those of `remaining` in an unanswered request.
    pub in_flight: BTreeSet<TopicPartition>,
    /// Set by [`MarkerChannel::add`]: tells this job's answers from an earlier job's of the
    /// same transactional id.
    pub seq: u64,
}

/// One unanswered WriteTxnMarkers.
#[derive(Debug, Clone, PartialEq, Eq)]
struct InFlight {
    to: BrokerId,
    sent_ms: u64,
    /// (transactional id, job seq, partitions) per marker of the request.
    entries: Vec<(String, u64, Vec<TopicPartition>)>,
}

/// What a WriteTxnMarkersResponse changed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct MarkerOutcome {
    /// Transactions whose every partition has its marker: write Complete*.
    pub completed: Vec<String>,
    /// Transactions abandoned because a newer coordinator or epoch fenced their markers.
    pub fenced: Vec<(String, ErrorCode)>,
}

/// The marker jobs of one coordinator broker and its unanswered requests.
#[derive(Debug, Default)]
pub struct MarkerChannel {
    jobs: BTreeMap<String, MarkerJob>,
    in_flight: BTreeMap<CorrelationId, InFlight>,
    next_seq: u64,
}

impl MarkerChannel {
    /// Starts (or restarts, replacing an older one) the job of a transaction.
    pub fn add(&mut self, mut job: MarkerJob) {
        assert!(
            !job.remaining.is_empty(),
            "{}: a marker job with no partition",
            job.transactional_id
        );
        assert!(job.in_flight.is_empty());
        self.next_seq += 1;
        job.seq = self.next_seq;
        self.jobs.insert(job.transactional_id.clone(), job);
    }

    /// The job of `transactional_id`, if any.
    pub fn job(&self, transactional_id: &str) -> Option<&MarkerJob> {
        self.jobs.get(transactional_id)
    }

    /// Every job, by transactional id.
    pub fn jobs(&self) -> impl Iterator<Item = &MarkerJob> {
        self.jobs.values()
    }

    /// Drops the jobs of `txn_tp` (the coordinator resigned it); their late answers are
    /// ignored.
    pub fn remove_partition(&mut self, txn_tp: &TopicPartition) {
        self.jobs.retain(|_, j| &j.txn_tp != txn_tp);
    }

    /// One WriteTxnMarkers per leader broker for every partition not marked and not in flight
    /// whose leader `leader_of` knows, in broker order; `fresh_corr` numbers them.
    pub fn drain(
        &mut self,
        now_ms: u64,
        leader_of: impl Fn(&TopicPartition) -> Option<BrokerId>,
        mut fresh_corr: impl FnMut() -> CorrelationId,
    ) -> Vec<(BrokerId, Message)> {
        let mut per_broker: BTreeMap<BrokerId, Vec<(String, u64, WritableTxnMarker)>> =
            BTreeMap::new();
        for job in self.jobs.values_mut() {
            let mut by_leader: BTreeMap<BrokerId, Vec<TopicPartition>> = BTreeMap::new();
            for tp in job.remaining.difference(&job.in_flight) {
                if let Some(leader) = leader_of(tp) {
                    by_leader.entry(leader).or_default().push(tp.clone());
                }
            }
            for (leader, partitions) in by_leader {
                job.in_flight.extend(partitions.iter().cloned());
                per_broker.entry(leader).or_default().push((
                    job.transactional_id.clone(),
                    job.seq,
                    WritableTxnMarker {
                        producer_id: job.producer_id,
                        producer_epoch: job.producer_epoch,
                        result: job.result,
                        partitions,
                        coordinator_epoch: job.coordinator_epoch,
                    },
                ));
            }
        }
        let mut sends = Vec::new();
        for (to, markers) in per_broker {
            let corr = fresh_corr();
            let entries = markers
                .iter()
                .map(|(id, seq, m)| (id.clone(), *seq, m.partitions.clone()))
                .collect();
            self.in_flight.insert(
                corr,
                InFlight {
                    to,
                    sent_ms: now_ms,
                    entries,
                },
            );
            let markers = markers.into_iter().map(|(_, _, m)| m).collect();
            sends.push((to, Message::WriteTxnMarkers { corr, markers }));
        }
        sends
    }

    /// Whether `corr` is an unanswered WriteTxnMarkers of this channel.
    pub fn is_in_flight(&self, corr: CorrelationId) -> bool {
        self.in_flight.contains_key(&corr)
    }

    /// The answer to WriteTxnMarkers `corr`: `results` holds one entry per marker of the
    /// request, in its order (a producer id and one error per partition). NONE marks the
    /// partition done; TRANSACTION_COORDINATOR_FENCED / INVALID_PRODUCER_EPOCH drop the job;
    /// any other error sends the partition again on the next pass. An unknown `corr` (already
    /// timed out, or the job's partition resigned) is ignored.
    pub fn on_response(
        &mut self,
        corr: CorrelationId,
        results: &[crate::protocol::WritableTxnMarkerResult],
    ) -> MarkerOutcome {
        let mut outcome = MarkerOutcome::default();
        let Some(sent) = self.in_flight.remove(&corr) else {
            return outcome;
        };
        for (i, (id, seq, partitions)) in sent.entries.into_iter().enumerate() {
            let key = id.clone();
            let Some(job) = self.jobs.get_mut(&key) else {
                continue;
            };
            if job.seq != seq {
                continue; // an earlier job's answer
            }
            let answered: BTreeMap<&TopicPartition, ErrorCode> = results
                .get(i)
                .filter(|r| r.producer_id == job.producer_id)
                .map(|r| r.partitions.iter().map(|(tp, e)| (tp, *e)).collect())
                .unwrap_or_default();
            let mut fenced = None;
            for tp in &partitions {
                job.in_flight.remove(tp);
                match answered.get(tp).copied() {
                    Some(ErrorCode::None) => {
                        job.remaining.remove(tp);
                    }
                    Some(
                        e @ (ErrorCode::TransactionCoordinatorFenced
                        | ErrorCode::InvalidProducerEpoch),
                    ) => fenced = Some(e),
                    // Retriable, or missing from the answer: sent again on the next pass.
                    _ => {}
                }
            }
            if let Some(e) = fenced {
                self.jobs.remove(&key);
                outcome.fenced.push((id, e));
            } else if job.remaining.is_empty() {
                self.jobs.remove(&key);
                outcome.completed.push(id);
            }
        }
        outcome
    }

    /// Requests to `broker` are lost (a send failed or its connection dropped): their
    /// partitions go out again on the next pass.
    pub fn broker_lost(&mut self, broker: BrokerId) {
        let lost: Vec<CorrelationId> = self
            .in_flight
            .iter()
            .filter(|(_, f)| f.to == broker)
            .map(|(c, _)| *c)
            .collect();
        for corr in lost {
            self.forget(corr);
        }
    }

    /// Request `corr` could not be sent: its partitions go out again on the next pass.
    pub fn send_failed(&mut self, corr: CorrelationId) {
        self.forget(corr);
    }

    /// Requests unanswered for [`MARKER_REQUEST_TIMEOUT_MS`] are forgotten (their partitions
    /// go out again).
    pub fn expire(&mut self, now_ms: u64) {
        let late: Vec<CorrelationId> = self
            .in_flight
            .iter()
            .filter(|(_, f)| f.sent_ms + MARKER_REQUEST_TIMEOUT_MS <= now_ms)
            .map(|(c, _)| *c)
            .collect();
        for corr in late {
            self.forget(corr);
        }
    }

    fn forget(&mut self, corr: CorrelationId) {
        let Some(sent) = self.in_flight.remove(&corr) else {
            return;
        };
        for (id, seq, partitions) in sent.entries {
            if let Some(job) = self.jobs.get_mut(&id) {
                if job.seq == seq {
                    for tp in &partitions {
                        job.in_flight.remove(tp);
                    }
                }
            }
        }
    }

    /// The channel's invariants: every job has partitions left, and what is in flight is a
    /// subset of what remains.
    pub fn invariants(&self) {
        for job in self.jobs.values() {
            assert!(
                !job.remaining.is_empty(),
                "{}: empty job",
                job.transactional_id
            );
            assert!(
                job.in_flight.is_subset(&job.remaining),
                "{}: in flight {:?} not in remaining {:?}",
                job.transactional_id,
                job.in_flight,
                job.remaining
            );
        }
    }
}
