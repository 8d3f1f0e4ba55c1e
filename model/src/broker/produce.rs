//! Produce requests on the leader (Kafka's `ReplicaManager.appendRecords`,
//! `Partition.appendRecordsToLeader`, `LogValidator`): each partition's batch is checked
//! (leadership, CRC, keys on a compacted topic, idempotent sequence, `min.insync.replicas`),
//! recompressed to the topic's codec, appended, and answered at once (`acks=1`, errors),
//! never (`acks=0`), or once the high watermark passes it (`acks=all`, in `purgatory.rs`).

use super::partition::Role;
use super::purgatory::{PendingProduce, ProduceRequestKind, ProduceRequestState};
use super::txn_verification::{HeldProduce, Verification};
use super::{Broker, BrokerTimer};
use crate::config::BrokerCompression;
use crate::effects::Effects;
use crate::event::Event;
use crate::log::producer_state::{check_sequence, SequenceCheck};
use crate::protocol::*;
use crate::record::{read_header, verify_crc, BatchHeader, RecordBatch};
use crate::types::*;

impl Broker {
    /// A ProduceRequest: each partition's batch is handled on its own ([`Self::on_produce`]);
    /// the response goes out once every partition has its answer (at once for acks=1 and
    /// errors, after the HW passes the batch for acks=all). acks=0 gets no response.
    pub(super) fn on_produce_request(
        &mut self,
        now: Instant,
        from: NodeId,
        corr: CorrelationId,
        acks: Acks,
        timeout_ms: u64,
        transactional_id: Option<String>,
        partitions: Vec<(TopicPartition, Vec<u8>)>,
        out: &mut Effects<BrokerTimer>,
    ) {
        let req = self.fresh_id();
        if acks != Acks::None {
            self.produce_requests.insert(
                req,
                ProduceRequestState {
                    from,
                    corr,
                    waiting: partitions.len(),
                    responses: Vec::with_capacity(partitions.len()),
                    kind: ProduceRequestKind::Produce,
                },
            );
        }
        for (tp, batch) in partitions {
            let mut reply = None;
            self.on_produce(
                now,
                from,
                req,
                tp,
                acks,
                timeout_ms,
                batch,
                (&transactional_id, None),
                &mut reply,
                out,
            );
            if let Some(r) = reply {
                self.produce_partition_done(req, r, out);
            }
        }
        if self
            .produce_requests
            .get(&req)
            .is_some_and(|r| r.waiting == 0)
        {
            self.produce_partition_answered(req, out);
        }
    }

    /// One partition's batch of a produce request. An immediate answer goes to `reply`;
    /// an acks=all append waits in `pending_produces` under `req`; a transactional batch that
    /// needs KIP-890 verification waits in `txn_verification` (neither). `verification` is
    /// the request's `transactional.id` and, when a held produce runs again after the
    /// coordinator's NONE, its verification guard.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn on_produce(
        &mut self,
        now: Instant,
        from: NodeId,
        req: u64,
        tp: TopicPartition,
        acks: Acks,
        timeout_ms: u64,
        batch: Vec<u8>,
        verification: (&Option<String>, Option<u64>),
        reply: &mut Option<PartitionProduceResponse>,
        out: &mut Effects<BrokerTimer>,
    ) {
        let me = self.id;
        let mut respond =
            |out: &mut Effects<BrokerTimer>, error: ErrorCode, base: Offset, lso: Offset| {
                if acks == Acks::None {
                    // No answer is read with acks=0; on an error Kafka closes the connection
                    // so that the producer notices and refreshes its metadata.
                    if error != ErrorCode::None {
                        out.list
                            .push(crate::effects::Effect::CloseConnection { peer: from });
                    }
                } else {
                    *reply = Some(PartitionProduceResponse {
                        tp: tp.clone(),
                        error,
                        base_offset: base,
                        log_start_offset: lso,
                    });
                }
            };
        if !self.partitions.contains_key(&tp) && !self.metadata.contains_key(&tp) {
            // Kafka's `getPartitionOrError`: a partition missing from the metadata cache (for
            // example of a deleted topic) is unknown, not merely led elsewhere.
            respond(
                out,
                ErrorCode::UnknownTopicOrPartition,
                Offset(-1),
                Offset(-1),
            );
            return;
        }
        let Some(p) = self.partitions.get_mut(&tp) else {
            respond(out, ErrorCode::NotLeaderOrFollower, Offset(-1), Offset(-1));
            return;
        };
        let Role::Leader(leader) = &p.role else {
            respond(out, ErrorCode::NotLeaderOrFollower, Offset(-1), Offset(-1));
            return;
        };
        let leader_epoch = leader.leader_epoch;
        let header = match read_header(&batch).and_then(|h| verify_crc(&batch).map(|_| h)) {
            Ok(h) => h,
            Err(_) => {
                respond(
                    out,
                    ErrorCode::CorruptMessage,
                    Offset(-1),
                    p.log.log_start_offset(),
                );
                return;
            }
        };
        // Kafka's LogValidator: a compacted topic needs a key on every record.
        if p.log.config().cleanup_policy.compact && !header.is_control() {
            let keyless = RecordBatch::decode(&batch)
                .map(|(b, _)| b.records.iter().any(|r| r.key.is_none()))
                .unwrap_or(false);
            if keyless {
                out.event(Event::ProduceRejected {
                    tp: tp.clone(),
                    broker: me,
                    error: ErrorCode::CorruptMessage,
                    message: format!(
                        "Compacted topic cannot accept message without key in topic partition {tp}."
                    ),
                });
                respond(
                    out,
                    ErrorCode::CorruptMessage,
                    Offset(-1),
                    p.log.log_start_offset(),
                );
                return;
            }
        }
        // Only the transaction coordinator writes markers (WriteTxnMarkers, `txn_markers.rs`);
        // Kafka's LogValidator refuses a client's control batch.
        if header.is_control() {
            respond(
                out,
                ErrorCode::CorruptMessage,
                Offset(-1),
                p.log.log_start_offset(),
            );
            return;
        }
        // KIP-890 part 1 (`txn_verification.rs`): the first transactional batch of a producer
        // with no transaction open here waits until the transaction coordinator confirms that
        // the partition is in the producer's ongoing transaction.
        let pid = header.producer_id;
        if pid != ProducerId::NONE && header.is_transactional() {
            let log_start = p.log.log_start_offset();
            let (transactional_id, guard) = verification;
            let verdict = self.verify_transactional_batch(
                &tp,
                pid,
                header.producer_epoch,
                guard,
                transactional_id.as_deref(),
                |coordinator, guard| HeldProduce {
                    from,
                    req,
                    tp: tp.clone(),
                    acks,
                    timeout_ms,
                    batch: batch.clone(),
                    transactional_id: transactional_id.clone().unwrap_or_default(),
                    producer_id: pid,
                    coordinator,
                    guard,
                },
                out,
            );
            match verdict {
                Verification::Proceed => {}
                Verification::Held => return,
                Verification::Refuse(error, message) => {
                    if error != ErrorCode::NotEnoughReplicas {
                        out.event(Event::ProduceRejected {
                            tp: tp.clone(),
                            broker: me,
                            error,
                            message,
                        });
                    }
                    respond(out, error, Offset(-1), log_start);
                    return;
                }
            }
        }
        let p = self
            .partitions
            .get_mut(&tp)
            .expect("the partition was found above");
        // Transactions (KIP-98, `ProducerAppendInfo.java:96-187`): a lower producer epoch is
        // fenced (unless `sim.txn.producer-fencing = false` and the batch is transactional),
        // a non-transactional batch during the producer's open transaction is refused.
        let producer_fencing = self.config.txn_producer_fencing;
        let mut zombie = false;
        if pid != ProducerId::NONE {
            if let Err(error) = p.log.txn_state().check_data_batch(
                pid,
                header.producer_epoch,
                header.is_transactional(),
                producer_fencing,
            ) {
                out.event(Event::ProduceRejected {
                    tp: tp.clone(),
                    broker: me,
                    error,
                    message: txn_refusal_text(error, pid, header.producer_epoch, &tp),
                });
                respond(out, error, Offset(-1), p.log.log_start_offset());
                return;
            }
            // The legacy switch lets a zombie's transactional batch in: it is appended without
            // a sequence check (its sequence numbers belong to an older epoch).
            zombie = !producer_fencing
                && header.is_transactional()
                && p.producers
                    .get(&pid)
                    .is_some_and(|e| header.producer_epoch < e.epoch());
        }
        // Idempotence (KIP-98): dedupe, order, and fence by epoch.
        if pid != ProducerId::NONE && !zombie {
            let first_seq = header.base_sequence.0;
            let last_seq = first_seq.wrapping_add(header.last_offset_delta);
            match check_sequence(
                p.producers.get(&pid),
                header.producer_epoch,
                first_seq,
                last_seq,
            ) {
                SequenceCheck::Append => {}
                SequenceCheck::Reject(error) => {
                    if header.is_transactional() && error == ErrorCode::InvalidProducerEpoch {
                        out.event(Event::ProduceRejected {
                            tp: tp.clone(),
                            broker: me,
                            error,
                            message: txn_refusal_text(error, pid, header.producer_epoch, &tp),
                        });
                    }
                    respond(out, error, Offset(-1), p.log.log_start_offset());
                    return;
                }
                SequenceCheck::Duplicate { base, last } => {
                    // A retry of a batch we already have: answer with its original offsets,
                    // but under the same rule as a fresh append. With acks=all the answer waits
                    // until the HW passes the batch (Kafka's DelayedProduce does the same for a
                    // duplicate): a new leader may hold the batch uncommitted, and
                    // acknowledging it now would promise a record the next election can discard.
                    if acks == Acks::All && last >= p.high_watermark {
                        let id = self.fresh_id();
                        let pending = PendingProduce {
                            req,
                            tp: tp.clone(),
                            leader_epoch,
                            base_offset: base,
                            last_offset: last,
                            is_marker: false,
                        };
                        self.pending_produces.insert(id, tp.clone(), pending);
                        out.timer(timeout_ms, BrokerTimer::ProduceTimeout { id });
                        return;
                    }
                    respond(out, ErrorCode::None, base, p.log.log_start_offset());
                    return;
                }
            }
        }
        let appended = match self.append_to_leader(&tp, batch, &header, acks, out) {
            Ok(a) => a,
            Err(error) => {
                let lso = self.partitions[&tp].log.log_start_offset();
                respond(out, error, Offset(-1), lso);
                return;
            }
        };
        let (base, last, lso) = (
            appended.base_offset,
            appended.last_offset,
            appended.log_start_offset,
        );
        match acks {
            Acks::None => {}
            Acks::Leader => respond(out, ErrorCode::None, base, lso),
            Acks::All => {
                let id = self.fresh_id();
                self.pending_produces.insert(
                    id,
                    tp.clone(),
                    PendingProduce {
                        req,
                        tp: tp.clone(),
                        leader_epoch,
                        base_offset: base,
                        last_offset: last,
                        is_marker: false,
                    },
                );
                out.timer(timeout_ms, BrokerTimer::ProduceTimeout { id });
                // A single-member ISR commits immediately.
                self.maybe_advance_hw(now, &tp, out);
            }
        }
        self.complete_delayed_fetches(now, &tp, out);
    }

    /// The leader's append (Kafka's `Partition.appendRecordsToLeader` and the `LogValidator`
    /// steps after the producer checks), shared by produce requests and coordinator writes:
    /// recompresses `batch` to the topic's `compression.type`, refuses an `acks=all` append
    /// while the ISR is smaller than `min.insync.replicas` (NOT_ENOUGH_REPLICAS, with Kafka's
    /// text in a `produce-rejected` event), appends with this leader's epoch, records the
    /// producer's batch for idempotence, flushes per `flush.messages`, and emits
    /// `log-segment-rolled` and `produce-appended`.
    ///
    /// `header` is `batch`'s header as received (its CRC already checked by the caller). Errors:
    /// NOT_LEADER_OR_FOLLOWER when this broker does not lead `tp`, CORRUPT_MESSAGE when the
    /// batch cannot be recompressed or appended, NOT_ENOUGH_REPLICAS; nothing is appended then.
    /// The caller answers, waits for the high watermark, and wakes delayed fetches.
    pub(super) fn append_to_leader(
        &mut self,
        tp: &TopicPartition,
        mut batch: Vec<u8>,
        header: &BatchHeader,
        acks: Acks,
        out: &mut Effects<BrokerTimer>,
    ) -> Result<LeaderAppend, ErrorCode> {
        let me = self.id;
        let min_isr = self.min_isr(&tp.topic);
        let compression_type = self.compression_type(&tp.topic);
        let flush_interval = self.flush_interval_messages(&tp.topic);
        let pid = header.producer_id;
        let Some(p) = self.partitions.get_mut(tp) else {
            return Err(ErrorCode::NotLeaderOrFollower);
        };
        let Role::Leader(leader) = &p.role else {
            return Err(ErrorCode::NotLeaderOrFollower);
        };
        let leader_epoch = leader.leader_epoch;
        let isr_now = leader.isr.clone();
        // compression.type other than `producer`: the leader stores the batch in the topic's
        // codec, recompressing it (Kafka's LogValidator); the CRC is recomputed.
        if let BrokerCompression::Codec(codec) = compression_type {
            // A marker is written as the coordinator built it (Kafka does not recompress
            // control batches).
            if codec.id() != header.compression() && !header.is_control() {
                match RecordBatch::decode(&batch) {
                    Ok((rb, _)) => batch = rb.with_compression(codec).encode(),
                    Err(_) => return Err(ErrorCode::CorruptMessage),
                }
            }
        }
        if acks == Acks::All && (isr_now.len() as i32) < min_isr {
            // Kafka's `Partition.appendRecordsToLeader` refuses before appending, with this text.
            out.event(Event::ProduceRejected {
                tp: tp.clone(),
                broker: me,
                error: ErrorCode::NotEnoughReplicas,
                message: format!(
                    "The size of the current ISR {} is insufficient to satisfy the min.isr requirement of {min_isr} for partition {tp}",
                    isr_set_text(&isr_now)
                ),
            });
            return Err(ErrorCode::NotEnoughReplicas);
        }
        let mut ops = Vec::new();
        let active_before = p.log.segments().len();
        let Ok((base, last)) = p.log.append_as_leader(&batch, leader_epoch, &mut ops) else {
            return Err(ErrorCode::CorruptMessage);
        };
        // A transactional batch or a marker of the producer spends its verification guard
        // here (KIP-890, `UnifiedLog`'s `clearVerificationStateEntry`).
        if pid != ProducerId::NONE && (header.is_transactional() || header.is_control()) {
            self.txn_verification.clear(tp, pid);
        }
        if pid != ProducerId::NONE && !header.is_control() {
            let first_seq = header.base_sequence.0;
            p.record_producer_batch(
                pid,
                header.producer_epoch,
                first_seq,
                first_seq.wrapping_add(header.last_offset_delta),
                base,
            );
        }
        p.log.maybe_flush(flush_interval, &mut ops);
        for op in ops {
            out.disk(op);
        }
        if p.log.segments().len() > active_before {
            out.event(Event::LogSegmentRolled {
                tp: tp.clone(),
                broker: me,
                base_offset: base,
            });
        }
        // A marker is no producer's record: its event is `txn-marker-written`.
        if !header.is_control() {
            out.event(Event::ProduceAppended {
                tp: tp.clone(),
                broker: me,
                leader_epoch,
                base_offset: base,
                last_offset: last,
                producer_id: pid,
                base_sequence: header.base_sequence,
                isr: isr_now,
            });
        }
        let appended = LeaderAppend {
            leader_epoch,
            base_offset: base,
            last_offset: last,
            log_start_offset: p.log.log_start_offset(),
        };
        // A transaction may have opened (or, for a marker, ended) here.
        self.maybe_report_lso(tp, out);
        Ok(appended)
    }
}

/// Where [`Broker::append_to_leader`] put a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct LeaderAppend {
    /// The leader epoch the batch was stamped with.
    pub(super) leader_epoch: LeaderEpoch,
    /// Offsets of the batch's first and last records.
    pub(super) base_offset: Offset,
    pub(super) last_offset: Offset,
    /// The log start offset after the append (for the produce response).
    pub(super) log_start_offset: Offset,
}

/// An ISR as Kafka prints a Scala `Set` of broker ids in error messages: `Set(0, 2)`.
fn isr_set_text(isr: &[BrokerId]) -> String {
    let ids: Vec<String> = isr.iter().map(|b| b.0.to_string()).collect();
    format!("Set({})", ids.join(", "))
}

/// The refusal of a transactional (or fenced) batch, as a `produce-rejected` event's message:
/// what Kafka's `ProducerAppendInfo` says, in short.
fn txn_refusal_text(
    error: ErrorCode,
    pid: ProducerId,
    epoch: ProducerEpoch,
    tp: &TopicPartition,
) -> String {
    match error {
        ErrorCode::InvalidProducerEpoch => format!(
            "Producer {pid}'s batch for {tp} has epoch {epoch}, older than the producer's current epoch: fenced (a late write of a finished transaction, or a zombie)"
        ),
        ErrorCode::InvalidTxnState => format!(
            "Producer {pid} (epoch {epoch}) sent a non-transactional batch to {tp} while its transaction there is open"
        ),
        e => format!(
            "Producer {pid} (epoch {epoch}) refused for {tp}: {}",
            e.kafka_name()
        ),
    }
}
