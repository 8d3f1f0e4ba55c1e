//! Kafka's `Sender` (`Sender.java`, over `NetworkClient`): the loop that drains the
//! accumulator's sendable batches into one Produce request per leader while the connection
//! has room for another in-flight request (`max.in.flight.requests.per.connection`), and
//! completes, retries or fails each batch from the response, the request timeout
//! (`request.timeout.ms`), a broken connection or `delivery.timeout.ms` (steps 5 and 7 of
//! the pipeline in [`super`]).

use super::accumulator::Batch;
use super::{ProducerClient, ProducerTimer};
use crate::effects::Effects;
use crate::event::OpType;
use crate::protocol::*;
use crate::types::*;
use std::collections::BTreeMap;

#[derive(Debug, Clone)]
pub(super) struct InFlightRequest {
    pub(super) broker: BrokerId,
    pub(super) batches: Vec<Batch>,
}

impl ProducerClient {
    /// Runs the sender at `at` (once per distinct time; an earlier wake-up re-plans anyway).
    pub(super) fn wake_at(&mut self, now: Instant, at: Instant, out: &mut Effects<ProducerTimer>) {
        let at_ms = at.as_ms().max(now.as_ms() + 1);
        if self.wakeups.range(..=at_ms).next().is_some() {
            return;
        }
        self.wakeups.insert(at_ms);
        out.timer(at_ms - now.as_ms(), ProducerTimer::Wake { at_ms });
    }

    /// In-flight batches of a partition: `(producer, base sequence)` each.
    pub(super) fn in_flight_of(
        &self,
        partition: i32,
    ) -> Vec<(Option<(ProducerId, ProducerEpoch)>, i32)> {
        self.in_flight
            .values()
            .flat_map(|r| r.batches.iter())
            .filter(|b| b.partition == partition)
            .map(|b| (b.producer, b.base_sequence.unwrap_or(-1)))
            .collect()
    }

    pub(super) fn requests_to(&self, broker: BrokerId) -> usize {
        self.in_flight
            .values()
            .chain(self.unconfirmed.values())
            .filter(|r| r.broker == broker)
            .count()
    }

    /// The Sender: drains sendable batches into one request per leader, while the
    /// connection has room for another in-flight request.
    pub(super) fn drain(&mut self, now: Instant, out: &mut Effects<ProducerTimer>) {
        if self.reset_pending {
            if !self.in_flight.is_empty() {
                return;
            }
            // KIP-360: every batch of the old producer id is resolved; start a new one.
            self.reset_pending = false;
            self.producer = None;
            self.next_sequence.clear();
        }
        if self.transactional() {
            if !self.txn_step(now, out) {
                return;
            }
        } else if self.idempotent() && self.producer.is_none() {
            self.init_producer_id(out);
            return;
        }
        let mut need_metadata = false;
        let mut next_check: Option<Instant> = None;
        // Partitions with batches, by leader.
        let mut by_leader: BTreeMap<BrokerId, Vec<i32>> = BTreeMap::new();
        let partitions: Vec<i32> = self.batches.keys().copied().collect();
        for partition in partitions {
            if self.txn.as_ref().is_some_and(|t| !t.may_send(partition)) {
                // Waits for AddPartitionsToTxn (`isSendToPartitionAllowed`).
                continue;
            }
            match self.leaders.get(&partition).copied().flatten() {
                Some(leader) => by_leader.entry(leader).or_default().push(partition),
                None => {
                    need_metadata = true;
                    // Still expire batches that cannot be sent (KIP-91), and fail those of a
                    // gone producer id that may have been written (see `take_sendable`).
                    while let Some(front) = self.batches.get(&partition).and_then(|q| q.front()) {
                        let deadline = front.created.plus_ms(self.config.delivery_timeout_ms);
                        let unresolvable = self.idempotent()
                            && front.indeterminate
                            && front.producer.is_some()
                            && front.producer != self.producer
                            && self.in_flight_of(partition).is_empty();
                        if unresolvable {
                            let batch = self.pop_front(partition);
                            self.complete_failed(
                                now,
                                batch,
                                "producer id reset; an earlier attempt may have been written",
                                out,
                            );
                            continue;
                        }
                        if now < deadline {
                            next_check = Some(next_check.map_or(deadline, |c| c.min(deadline)));
                            break;
                        }
                        let batch = self.pop_front(partition);
                        let reason = format!(
                            "Expiring {} record(s) for {}:{} ms has passed since batch creation",
                            batch.records.len(),
                            self.tp(partition),
                            now.since(batch.created)
                        );
                        self.complete_failed(now, batch, &reason, out);
                    }
                }
            }
        }
        let max_in_flight = self.config.max_in_flight_requests_per_connection as usize;
        for (leader, partitions) in by_leader {
            while self.requests_to(leader) < max_in_flight {
                // RecordAccumulator.ready: the node is ready when one of its partitions' first
                // batch is; drain then takes every partition's first batch that is not
                // backing off (linger is met per node, as in Kafka).
                let mut node_ready = false;
                for &partition in &partitions {
                    if !self.batches.contains_key(&partition) {
                        continue;
                    }
                    match self.front_ready(partition, now) {
                        Ok(()) => node_ready = true,
                        Err(Some(at)) => {
                            next_check = Some(next_check.map_or(at, |c| c.min(at)));
                        }
                        Err(None) => {}
                    }
                }
                if !node_ready {
                    break;
                }
                let mut request: Vec<Batch> = Vec::new();
                for &partition in &partitions {
                    if let Some(batch) = self.take_sendable(partition, now, &mut next_check, out) {
                        request.push(batch);
                    }
                }
                if request.is_empty() {
                    break;
                }
                self.send_request(now, leader, request, out);
            }
        }
        if need_metadata {
            self.request_metadata(out);
        }
        if let Some(at) = next_check {
            self.wake_at(now, at, out);
        }
        // A batch expired above (`delivery.timeout.ms`) may have been the ending transaction's
        // last unresolved send: EndTxn goes now, as Kafka's Sender sends the next
        // transactional request on its next loop. Without this the transaction waited for an
        // input that never came (hanging-transaction-tv2 seed 7600000: no timer armed, no
        // request in flight, the producer silent for the rest of the run).
        if self.txn.as_ref().is_some_and(|t| t.ready_to_end()) {
            self.txn_step(now, out);
        }
    }

    fn send_request(
        &mut self,
        now: Instant,
        leader: BrokerId,
        mut batches: Vec<Batch>,
        out: &mut Effects<ProducerTimer>,
    ) {
        let corr = self.corr();
        let mut partitions = Vec::with_capacity(batches.len());
        for batch in &mut batches {
            let bytes = self.encode(batch);
            batch.attempts += 1;
            partitions.push((self.tp(batch.partition), bytes));
        }
        let acks = self.config.acks;
        let msg = Message::Produce {
            corr,
            acks,
            timeout_ms: self.config.request_timeout_ms,
            transactional_id: self.txn.as_ref().map(|t| t.id.clone()),
            partitions,
        };
        let request = InFlightRequest {
            broker: leader,
            batches,
        };
        if acks == Acks::None {
            // Fire and forget at the protocol level: a batch is done once its bytes are
            // written to the connection (`on_sent`), with no offset; a request that could not
            // be written at all (connection refused) goes back to the accumulator, as Kafka's
            // sender only drains batches to a ready connection.
            out.send_tracked(NodeId::Broker(leader), msg);
            self.unconfirmed.insert(corr, request);
            return;
        }
        let _ = now;
        out.send(NodeId::Broker(leader), msg);
        out.timer(
            self.config.request_timeout_ms,
            ProducerTimer::RequestTimeout { corr },
        );
        self.in_flight.insert(corr, request);
    }

    pub(super) fn complete_ok(
        &mut self,
        now: Instant,
        batch: Batch,
        base: Option<Offset>,
        out: &mut Effects<ProducerTimer>,
    ) {
        for (i, r) in batch.records.iter().enumerate() {
            let offset = base.map(|b| Offset(b.0 + i as i64));
            self.record_done(OpType::Ok, batch.partition, r, offset, None, out);
        }
        self.release(&batch, now, out);
    }

    pub(super) fn complete_failed(
        &mut self,
        now: Instant,
        batch: Batch,
        reason: &str,
        out: &mut Effects<ProducerTimer>,
    ) {
        let op_type = if batch.indeterminate {
            OpType::Info
        } else {
            OpType::Fail
        };
        let error = match &batch.last_error {
            Some(e) => format!("{reason} (last error {e})"),
            None => reason.to_string(),
        };
        for r in &batch.records {
            self.record_done(op_type, batch.partition, r, None, Some(error.clone()), out);
        }
        self.release(&batch, now, out);
    }

    /// A failed attempt: retry if allowed, else complete the records.
    pub(super) fn retry_or_fail(
        &mut self,
        now: Instant,
        mut batch: Batch,
        error: String,
        may_be_written: bool,
        out: &mut Effects<ProducerTimer>,
    ) {
        batch.indeterminate |= may_be_written;
        batch.last_error = Some(error.clone());
        let exhausted = batch.attempts > self.config.retries as u32;
        let expired = now.since(batch.created) >= self.config.delivery_timeout_ms;
        if exhausted || expired {
            let reason = if expired {
                format!(
                    "Expiring {} record(s) for {}:{} ms has passed since batch creation",
                    batch.records.len(),
                    self.tp(batch.partition),
                    now.since(batch.created)
                )
            } else {
                "retries exhausted".to_string()
            };
            self.complete_failed(now, batch, &reason, out);
            return;
        }
        batch.retry_at = now.plus_ms(self.config.retry_backoff_ms);
        let retry_at = batch.retry_at;
        self.reenqueue(batch);
        self.wake_at(now, retry_at, out);
    }

    pub(super) fn on_produce_response(
        &mut self,
        now: Instant,
        corr: CorrelationId,
        responses: Vec<PartitionProduceResponse>,
        out: &mut Effects<ProducerTimer>,
    ) {
        let Some(request) = self.in_flight.remove(&corr) else {
            return;
        };
        for batch in request.batches {
            let tp = self.tp(batch.partition);
            let (error, base_offset) = responses
                .iter()
                .find(|r| r.tp == tp)
                // A partition missing from the response (never the case with our broker) is
                // treated as an unanswered attempt: it may have been written.
                .map_or((ErrorCode::RequestTimedOut, Offset(-1)), |r| {
                    (r.error, r.base_offset)
                });
            self.on_batch_response(now, batch, error, base_offset, out);
        }
        self.drain(now, out);
    }

    fn on_batch_response(
        &mut self,
        now: Instant,
        batch: Batch,
        error: ErrorCode,
        base_offset: Offset,
        out: &mut Effects<ProducerTimer>,
    ) {
        if let Some(fatal) = self.txn_batch_error(error) {
            let mut batch = batch;
            batch.last_error = Some(error.kafka_name().into());
            self.complete_failed(now, batch, "transactional produce refused", out);
            if fatal {
                self.txn_fenced_by_produce(now, error, out);
            } else if matches!(
                error,
                ErrorCode::OutOfOrderSequenceNumber | ErrorCode::UnknownProducerId
            ) {
                self.txn_sequence_error();
            }
            return;
        }
        match error {
            ErrorCode::None => self.complete_ok(now, batch, Some(base_offset), out),
            ErrorCode::OutOfOrderSequenceNumber | ErrorCode::UnknownProducerId => {
                // Rejected, not written. If an earlier batch of this partition is unresolved
                // this is its consequence: retry in order. Otherwise the broker lost our
                // state (KIP-360): reset the producer id once nothing is in flight.
                let seq = batch.base_sequence.unwrap_or(0);
                let consequence = batch.producer.is_some()
                    && batch.producer == self.producer
                    && self.earlier_unresolved(batch.partition, seq);
                if !consequence && batch.producer == self.producer {
                    self.reset_pending = true;
                }
                self.retry_or_fail(now, batch, error.kafka_name().into(), false, out);
            }
            ErrorCode::InvalidProducerEpoch => {
                if batch.producer == self.producer {
                    self.reset_pending = true;
                }
                self.retry_or_fail(now, batch, error.kafka_name().into(), false, out);
            }
            e if e.is_retriable() => {
                // NOT_ENOUGH_REPLICAS is checked before the append; every other retriable
                // error here can follow an append (a timeout, a leader change while waiting).
                let may_be_written =
                    e != ErrorCode::NotEnoughReplicas && e != ErrorCode::CorruptMessage;
                if matches!(
                    e,
                    ErrorCode::NotLeaderOrFollower
                        | ErrorCode::LeaderNotAvailable
                        | ErrorCode::UnknownTopicOrPartition
                        | ErrorCode::FencedLeaderEpoch
                ) {
                    self.leaders.insert(batch.partition, None);
                    self.request_metadata(out);
                }
                self.retry_or_fail(now, batch, e.kafka_name().into(), may_be_written, out);
            }
            e => {
                let mut batch = batch;
                batch.last_error = Some(e.kafka_name().into());
                self.complete_failed(now, batch, "non-retriable error", out);
            }
        }
    }

    /// Every batch of a request failed the same way (timeout, disconnect, refused).
    pub(super) fn fail_request(
        &mut self,
        now: Instant,
        request: InFlightRequest,
        error: &str,
        may_be_written: bool,
        out: &mut Effects<ProducerTimer>,
    ) {
        for batch in request.batches {
            self.leaders.insert(batch.partition, None);
            self.retry_or_fail(now, batch, error.into(), may_be_written, out);
        }
        self.request_metadata(out);
    }
}
