//! A producer client with the pipeline of Kafka's `KafkaProducer`, driven by a workload that
//! offers unique values at a fixed rate.
//!
//! * **Partitioner**: murmur2 of the key modulo the partition count (Kafka's
//!   `BuiltInPartitioner`), or the sticky partitioner for null keys (KIP-480).
//! * **Accumulator**: records gather into one open batch per partition until it reaches
//!   `batch.size` bytes or has waited `linger.ms`.
//! * **Sender**: ready batches go to the partition's leader. Without idempotence up to
//!   `max.in.flight.requests.per.connection` requests may be in flight per broker, so a retry
//!   can overtake a later batch (reordering). With idempotence each batch carries the producer
//!   id, epoch and base sequence (KIP-98); this producer keeps one batch in flight per
//!   partition, which preserves order as Kafka's five-in-flight pipeline does.
//! * **Retries**: retriable errors are retried after `retry.backoff.ms` while `retries` and
//!   `delivery.timeout.ms` allow; a request without an answer after `request.timeout.ms`
//!   counts as failed but *indeterminate*: it may have been written.
//!
//! Every record is one Jepsen operation: `invoke` when offered, then `ok` with its offset,
//! `fail` when it certainly was not written, or `info` when it may have been.

use crate::config::ProducerConfig;
use crate::effects::{Actor, Effects};
use crate::event::{ClientOp, OpType, OpValue};
use crate::partitioner::partition_for_key;
use crate::protocol::*;
use crate::record::RecordBatch;
use crate::types::*;
use std::collections::{BTreeMap, VecDeque};

/// Timers of a producer.
#[derive(Debug, Clone, PartialEq)]
pub enum ProducerTimer {
    /// Offer the next record.
    Tick,
    /// The open batch of a partition has lingered long enough.
    Linger {
        partition: i32,
        batch_id: u64,
    },
    RequestTimeout {
        corr: CorrelationId,
    },
    /// Try sending again (after a backoff).
    Drain,
    /// Periodic refresh (`metadata.max.age.ms`); re-arms itself.
    MetadataRefresh,
    /// One-shot retry of a failed metadata request.
    MetadataRetry,
}

/// What the workload asks of this producer.
#[derive(Debug, Clone, PartialEq)]
pub struct ProducerWorkload {
    pub topic: String,
    /// Records offered per simulated second.
    pub rate_per_sec: u32,
    /// Distinct keys (`0`: null keys).
    pub keys: u32,
    /// Stop offering new records at this time (ms); outstanding ones keep retrying.
    pub stop_at_ms: u64,
}

#[derive(Debug, Clone)]
struct PendingRecord {
    op_id: u64,
    key: Option<String>,
    value: u64,
}

#[derive(Debug, Clone)]
struct Batch {
    id: u64,
    partition: i32,
    records: Vec<PendingRecord>,
    size_bytes: u32,
    created: Instant,
    /// Assigned on first send when idempotent.
    base_sequence: Option<i32>,
    producer: Option<(ProducerId, ProducerEpoch)>,
    attempts: u32,
    /// Some attempt may have been written.
    indeterminate: bool,
    last_error: Option<String>,
    retry_at: Instant,
}

#[derive(Debug, Clone)]
struct InFlight {
    batch: Batch,
    broker: BrokerId,
}

/// A producer client process.
#[derive(Debug)]
pub struct ProducerClient {
    pub index: u32,
    config: ProducerConfig,
    workload: ProducerWorkload,
    bootstrap: Vec<BrokerId>,
    next_bootstrap: usize,
    leaders: BTreeMap<i32, Option<BrokerId>>,
    metadata_in_flight: Option<CorrelationId>,
    init_pid_in_flight: Option<CorrelationId>,
    producer: Option<(ProducerId, ProducerEpoch)>,
    next_sequence: BTreeMap<i32, i32>,
    open: BTreeMap<i32, Batch>,
    ready: BTreeMap<i32, VecDeque<Batch>>,
    in_flight: BTreeMap<CorrelationId, InFlight>,
    /// acks=0 batches handed to the network, not yet known to be written.
    unconfirmed: BTreeMap<CorrelationId, InFlight>,
    next_value: u64,
    next_op: u64,
    next_corr: u64,
    next_batch: u64,
    sticky_partition: Option<i32>,
    sticky_counter: u64,
}

/// Approximate bytes a record adds to a batch (record overhead + key + 8-byte value).
fn record_size(key: &Option<String>) -> u32 {
    10 + key.as_ref().map(|k| k.len() as u32).unwrap_or(0) + 8
}

impl ProducerClient {
    pub fn new(
        index: u32,
        config: ProducerConfig,
        workload: ProducerWorkload,
        bootstrap: Vec<BrokerId>,
    ) -> Self {
        ProducerClient {
            index,
            config,
            workload,
            bootstrap,
            next_bootstrap: index as usize,
            leaders: BTreeMap::new(),
            metadata_in_flight: None,
            init_pid_in_flight: None,
            producer: None,
            next_sequence: BTreeMap::new(),
            open: BTreeMap::new(),
            ready: BTreeMap::new(),
            in_flight: BTreeMap::new(),
            unconfirmed: BTreeMap::new(),
            next_value: 0,
            next_op: 0,
            next_corr: 0,
            next_batch: 0,
            sticky_partition: None,
            sticky_counter: 0,
        }
    }

    fn corr(&mut self) -> CorrelationId {
        self.next_corr += 1;
        CorrelationId(self.next_corr)
    }

    fn tp(&self, partition: i32) -> TopicPartition {
        TopicPartition::new(self.workload.topic.clone(), partition)
    }

    fn tick_interval_ms(&self) -> u64 {
        (1000 / self.workload.rate_per_sec.max(1) as u64).max(1)
    }

    fn request_metadata(&mut self, out: &mut Effects<ProducerTimer>) {
        if self.metadata_in_flight.is_some() || self.bootstrap.is_empty() {
            return;
        }
        let corr = self.corr();
        let b = self.bootstrap[self.next_bootstrap % self.bootstrap.len()];
        self.next_bootstrap += 1;
        self.metadata_in_flight = Some(corr);
        out.send(
            NodeId::Broker(b),
            Message::Metadata {
                corr,
                topics: vec![self.workload.topic.clone()],
            },
        );
        out.timer(
            self.config.request_timeout_ms,
            ProducerTimer::RequestTimeout { corr },
        );
    }

    fn init_producer_id(&mut self, out: &mut Effects<ProducerTimer>) {
        if self.init_pid_in_flight.is_some() || self.bootstrap.is_empty() {
            return;
        }
        let corr = self.corr();
        let b = self.bootstrap[self.next_bootstrap % self.bootstrap.len()];
        self.next_bootstrap += 1;
        self.init_pid_in_flight = Some(corr);
        out.send(
            NodeId::Broker(b),
            Message::InitProducerId {
                corr,
                transactional_id: None,
            },
        );
        out.timer(
            self.config.request_timeout_ms,
            ProducerTimer::RequestTimeout { corr },
        );
    }

    fn choose_partition(&mut self, key: &Option<String>, partitions: i32) -> i32 {
        match key {
            Some(k) if !self.config.partitioner_ignore_keys => {
                partition_for_key(k.as_bytes(), partitions)
            }
            _ => {
                // Sticky partitioner (KIP-480): stay on one partition until its batch closes.
                match self.sticky_partition {
                    Some(p) if p < partitions => p,
                    _ => {
                        self.sticky_counter += 1;
                        let p = (self.sticky_counter % partitions as u64) as i32;
                        self.sticky_partition = Some(p);
                        p
                    }
                }
            }
        }
    }

    fn offer_record(&mut self, now: Instant, out: &mut Effects<ProducerTimer>) {
        let partitions = self.leaders.len() as i32;
        if partitions == 0 {
            return; // Kafka's send() would block on metadata; the workload waits instead.
        }
        self.next_value += 1;
        let value = ((self.index as u64 + 1) << 32) | self.next_value;
        let key = if self.workload.keys == 0 {
            None
        } else {
            Some(format!("k{}", self.next_value % self.workload.keys as u64))
        };
        let partition = self.choose_partition(&key, partitions);
        self.next_op += 1;
        let op_id = self.next_op;
        out.op(ClientOp {
            op_type: OpType::Invoke,
            op_id,
            value: OpValue::Send {
                tp: self.tp(partition),
                key: key.clone(),
                value,
                offset: None,
            },
            error: None,
        });
        let size = record_size(&key);
        let batch_size = self.config.batch_size.max(1);
        let linger = self.config.linger_ms;
        // Like Kafka's RecordAccumulator: a record joins the last batch of its partition as
        // long as that batch has not been sent and has room, even if it is already ready.
        // While a partition cannot send (no leader, or its in-flight slot is taken), records
        // therefore gather into full batches instead of a long queue of tiny ones.
        if !self.open.contains_key(&partition) {
            if let Some(last) = self.ready.get_mut(&partition).and_then(|q| q.back_mut()) {
                if last.attempts == 0 && last.size_bytes + size <= batch_size {
                    last.records.push(PendingRecord { op_id, key, value });
                    last.size_bytes += size;
                    self.drain(now, out);
                    return;
                }
            }
        }
        if !self.open.contains_key(&partition) {
            self.next_batch += 1;
            let id = self.next_batch;
            self.open.insert(
                partition,
                Batch {
                    id,
                    partition,
                    records: vec![],
                    size_bytes: 61,
                    created: now,
                    base_sequence: None,
                    producer: None,
                    attempts: 0,
                    indeterminate: false,
                    last_error: None,
                    retry_at: now,
                },
            );
            out.timer(
                linger,
                ProducerTimer::Linger {
                    partition,
                    batch_id: id,
                },
            );
        }
        let batch = self.open.get_mut(&partition).expect("open batch");
        batch.records.push(PendingRecord { op_id, key, value });
        batch.size_bytes += size;
        if batch.size_bytes >= batch_size || linger == 0 {
            self.close_batch(partition);
        }
        self.drain(now, out);
    }

    fn close_batch(&mut self, partition: i32) {
        if let Some(b) = self.open.remove(&partition) {
            self.ready.entry(partition).or_default().push_back(b);
            if self.sticky_partition == Some(partition) {
                self.sticky_partition = None;
            }
        }
    }

    fn in_flight_to(&self, broker: BrokerId) -> usize {
        self.in_flight
            .values()
            .filter(|f| f.broker == broker)
            .count()
    }

    fn partition_in_flight(&self, partition: i32) -> bool {
        self.in_flight
            .values()
            .any(|f| f.batch.partition == partition)
    }

    /// Send every ready batch that may go now.
    fn drain(&mut self, now: Instant, out: &mut Effects<ProducerTimer>) {
        let idempotent = self.config.enable_idempotence;
        if idempotent && self.producer.is_none() {
            self.init_producer_id(out);
            return;
        }
        let partitions: Vec<i32> = self.ready.keys().copied().collect();
        let mut need_metadata = false;
        let mut earliest_retry: Option<Instant> = None;
        for partition in partitions {
            loop {
                let Some(front) = self.ready.get(&partition).and_then(|q| q.front()) else {
                    break;
                };
                if front.retry_at > now {
                    earliest_retry =
                        Some(earliest_retry.map_or(front.retry_at, |e| e.min(front.retry_at)));
                    break;
                }
                if idempotent
                    && front.indeterminate
                    && front.producer.is_some()
                    && front.producer != self.producer
                {
                    // Sequenced under a producer id that is gone, and an earlier attempt may
                    // have been written: sending it again under the new id could append it
                    // twice (the broker dedupes per producer id only). Kafka fails such
                    // unresolved batches instead of resending them (KIP-360).
                    let batch = self
                        .ready
                        .get_mut(&partition)
                        .and_then(|q| q.pop_front())
                        .expect("front");
                    self.complete_failed(
                        batch,
                        "producer id reset; an earlier attempt may have been written",
                        out,
                    );
                    continue;
                }
                let Some(Some(leader)) = self.leaders.get(&partition).copied() else {
                    need_metadata = true;
                    break;
                };
                // One batch per partition in flight when order is guaranteed: with idempotence,
                // and with max.in.flight.requests.per.connection=1 (Kafka's
                // `guaranteeMessageOrder`: the sender mutes a partition until its batch is done,
                // even across a leader change that sends the next batch to another broker).
                let guarantee_order =
                    idempotent || self.config.max_in_flight_requests_per_connection == 1;
                if guarantee_order && self.partition_in_flight(partition) {
                    break;
                }
                if self.in_flight_to(leader)
                    >= self.config.max_in_flight_requests_per_connection as usize
                {
                    break;
                }
                let mut batch = self
                    .ready
                    .get_mut(&partition)
                    .and_then(|q| q.pop_front())
                    .expect("front");
                // Delivery timeout (KIP-91): give up on a batch that has waited too long.
                if now.since(batch.created) >= self.config.delivery_timeout_ms {
                    self.complete_failed(batch, "delivery.timeout.ms expired", out);
                    continue;
                }
                if idempotent {
                    let (pid, epoch) = self.producer.expect("pid");
                    if batch.producer != Some((pid, epoch)) {
                        let seq = self.next_sequence.entry(partition).or_insert(0);
                        batch.base_sequence = Some(*seq);
                        batch.producer = Some((pid, epoch));
                        *seq = seq.wrapping_add(batch.records.len() as i32);
                    }
                }
                self.send_batch(now, leader, batch, out);
            }
        }
        if need_metadata {
            self.request_metadata(out);
        }
        if let Some(at) = earliest_retry {
            out.timer(at.since(now).max(1), ProducerTimer::Drain);
        }
    }

    fn send_batch(
        &mut self,
        _now: Instant,
        leader: BrokerId,
        mut batch: Batch,
        out: &mut Effects<ProducerTimer>,
    ) {
        let corr = self.corr();
        batch.attempts += 1;
        let records: Vec<(Option<Vec<u8>>, Option<Vec<u8>>)> = batch
            .records
            .iter()
            .map(|r| {
                (
                    r.key.as_ref().map(|k| k.as_bytes().to_vec()),
                    Some(r.value.to_be_bytes().to_vec()),
                )
            })
            .collect();
        let mut rb = RecordBatch::new(records, batch.created.as_ms() as i64)
            .with_compression(self.config.compression_type);
        if let (Some((pid, epoch)), Some(seq)) = (batch.producer, batch.base_sequence) {
            rb.producer_id = pid;
            rb.producer_epoch = epoch;
            rb.base_sequence = Sequence(seq);
        }
        let bytes = rb.encode();
        let tp = self.tp(batch.partition);
        let acks = self.config.acks;
        let msg = Message::Produce {
            corr,
            tp,
            acks,
            timeout_ms: self.config.request_timeout_ms,
            batch: bytes,
        };
        if acks == Acks::None {
            // Fire and forget: the batch is done once its bytes are written to the connection
            // (`on_sent`), with no offset; a batch that could not be written at all (connection
            // refused) goes back to the accumulator, as Kafka's sender only drains batches to a
            // ready connection.
            out.send_tracked(NodeId::Broker(leader), msg);
            self.unconfirmed.insert(
                corr,
                InFlight {
                    batch,
                    broker: leader,
                },
            );
            return;
        }
        out.send(NodeId::Broker(leader), msg);
        out.timer(
            self.config.request_timeout_ms,
            ProducerTimer::RequestTimeout { corr },
        );
        self.in_flight.insert(
            corr,
            InFlight {
                batch,
                broker: leader,
            },
        );
    }

    fn complete_ok(&mut self, batch: Batch, base: Offset, out: &mut Effects<ProducerTimer>) {
        for (i, r) in batch.records.iter().enumerate() {
            out.op(ClientOp {
                op_type: OpType::Ok,
                op_id: r.op_id,
                value: OpValue::Send {
                    tp: self.tp(batch.partition),
                    key: r.key.clone(),
                    value: r.value,
                    offset: Some(Offset(base.0 + i as i64)),
                },
                error: None,
            });
        }
    }

    fn complete_failed(&mut self, batch: Batch, reason: &str, out: &mut Effects<ProducerTimer>) {
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
            out.op(ClientOp {
                op_type,
                op_id: r.op_id,
                value: OpValue::Send {
                    tp: self.tp(batch.partition),
                    key: r.key.clone(),
                    value: r.value,
                    offset: None,
                },
                error: Some(error.clone()),
            });
        }
    }

    /// A failed attempt: retry if allowed, else complete the records.
    fn retry_or_fail(
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
                "delivery.timeout.ms expired"
            } else {
                "retries exhausted"
            };
            self.complete_failed(batch, reason, out);
            return;
        }
        batch.retry_at = now.plus_ms(self.config.retry_backoff_ms);
        // Retries go to the front of the partition's queue, ahead of newer batches.
        self.ready
            .entry(batch.partition)
            .or_default()
            .push_front(batch);
        out.timer(self.config.retry_backoff_ms.max(1), ProducerTimer::Drain);
    }

    fn on_produce_response(
        &mut self,
        now: Instant,
        corr: CorrelationId,
        error: ErrorCode,
        base_offset: Offset,
        out: &mut Effects<ProducerTimer>,
    ) {
        let Some(f) = self.in_flight.remove(&corr) else {
            return;
        };
        let batch = f.batch;
        match error {
            ErrorCode::None => self.complete_ok(batch, base_offset, out),
            ErrorCode::OutOfOrderSequenceNumber
            | ErrorCode::InvalidProducerEpoch
            | ErrorCode::UnknownProducerId => {
                // KIP-360: the broker lost our producer state; start a new producer id and
                // send this batch again with fresh sequence numbers. This attempt was rejected.
                // Batches that were never written keep their place and are sequenced again
                // under the new id when they are sent; batches that may have been written are
                // failed as indeterminate by `drain` (see there).
                self.producer = None;
                self.next_sequence.clear();
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
                self.complete_failed(batch, "non-retriable error", out);
            }
        }
        self.drain(now, out);
    }
}

impl Actor for ProducerClient {
    type Timer = ProducerTimer;

    fn on_start(&mut self, _now: Instant, out: &mut Effects<ProducerTimer>) {
        self.request_metadata(out);
        out.timer(self.tick_interval_ms(), ProducerTimer::Tick);
        out.timer(
            self.config.metadata_max_age_ms,
            ProducerTimer::MetadataRefresh,
        );
    }

    fn on_message(
        &mut self,
        now: Instant,
        _from: NodeId,
        msg: Message,
        out: &mut Effects<ProducerTimer>,
    ) {
        match msg {
            Message::MetadataResponse {
                corr, partitions, ..
            } => {
                if self.metadata_in_flight != Some(corr) {
                    return;
                }
                self.metadata_in_flight = None;
                for pm in partitions {
                    if pm.tp.topic == self.workload.topic {
                        self.leaders.insert(pm.tp.partition, pm.leader);
                    }
                }
                let missing = self.leaders.is_empty() || self.leaders.values().any(|l| l.is_none());
                if missing {
                    out.timer(
                        self.config.retry_backoff_ms.max(1),
                        ProducerTimer::MetadataRetry,
                    );
                }
                self.drain(now, out);
            }
            Message::InitProducerIdResponse {
                corr,
                error,
                producer_id,
                producer_epoch,
            } => {
                if self.init_pid_in_flight != Some(corr) {
                    return;
                }
                self.init_pid_in_flight = None;
                if error == ErrorCode::None {
                    self.producer = Some((producer_id, producer_epoch));
                    self.drain(now, out);
                } else {
                    out.timer(self.config.retry_backoff_ms.max(1), ProducerTimer::Drain);
                }
            }
            Message::ProduceResponse {
                corr,
                error,
                base_offset,
                ..
            } => self.on_produce_response(now, corr, error, base_offset, out),
            _ => {}
        }
    }

    fn on_timeout(&mut self, now: Instant, timer: ProducerTimer, out: &mut Effects<ProducerTimer>) {
        match timer {
            ProducerTimer::Tick => {
                if now.as_ms() < self.workload.stop_at_ms {
                    self.offer_record(now, out);
                    out.timer(self.tick_interval_ms(), ProducerTimer::Tick);
                }
            }
            ProducerTimer::Linger {
                partition,
                batch_id,
            } => {
                if self.open.get(&partition).is_some_and(|b| b.id == batch_id) {
                    self.close_batch(partition);
                    self.drain(now, out);
                }
            }
            ProducerTimer::RequestTimeout { corr } => {
                if self.metadata_in_flight == Some(corr) {
                    self.metadata_in_flight = None;
                    self.request_metadata(out);
                } else if self.init_pid_in_flight == Some(corr) {
                    self.init_pid_in_flight = None;
                    self.drain(now, out);
                } else if let Some(f) = self.in_flight.remove(&corr) {
                    self.leaders.insert(f.batch.partition, None);
                    self.request_metadata(out);
                    self.retry_or_fail(
                        now,
                        f.batch,
                        "request.timeout.ms expired".into(),
                        true,
                        out,
                    );
                    self.drain(now, out);
                }
            }
            ProducerTimer::Drain => self.drain(now, out),
            ProducerTimer::MetadataRetry => self.request_metadata(out),
            ProducerTimer::MetadataRefresh => {
                self.request_metadata(out);
                out.timer(
                    self.config.metadata_max_age_ms,
                    ProducerTimer::MetadataRefresh,
                );
            }
        }
    }

    fn on_disconnect(&mut self, now: Instant, peer: NodeId, out: &mut Effects<ProducerTimer>) {
        let NodeId::Broker(b) = peer else { return };
        // NetworkClient fails every request in flight on a broken connection; whether the
        // broker processed them is unknown.
        let lost: Vec<CorrelationId> = self
            .in_flight
            .iter()
            .filter(|(_, f)| f.broker == b)
            .map(|(c, _)| *c)
            .collect();
        for corr in lost {
            let f = self.in_flight.remove(&corr).expect("present");
            self.leaders.insert(f.batch.partition, None);
            self.retry_or_fail(
                now,
                f.batch,
                "NETWORK_EXCEPTION (disconnected)".into(),
                true,
                out,
            );
        }
        if self.metadata_in_flight.is_some() {
            self.metadata_in_flight = None;
        }
        if self.init_pid_in_flight.is_some() {
            self.init_pid_in_flight = None;
        }
        self.request_metadata(out);
        self.drain(now, out);
    }

    fn on_sent(
        &mut self,
        _now: Instant,
        _to: NodeId,
        msg: Message,
        out: &mut Effects<ProducerTimer>,
    ) {
        let Message::Produce { corr, .. } = msg else {
            return;
        };
        let Some(f) = self.unconfirmed.remove(&corr) else {
            return;
        };
        for r in &f.batch.records {
            out.op(ClientOp {
                op_type: OpType::Ok,
                op_id: r.op_id,
                value: OpValue::Send {
                    tp: self.tp(f.batch.partition),
                    key: r.key.clone(),
                    value: r.value,
                    offset: None,
                },
                error: None,
            });
        }
    }

    fn on_send_failed(
        &mut self,
        now: Instant,
        _to: NodeId,
        msg: Message,
        out: &mut Effects<ProducerTimer>,
    ) {
        match msg {
            Message::Produce { corr, .. } if self.unconfirmed.contains_key(&corr) => {
                // Never written: back to the front of its partition's queue, sent again once
                // metadata names a reachable leader.
                let f = self.unconfirmed.remove(&corr).expect("present");
                self.leaders.insert(f.batch.partition, None);
                let mut batch = f.batch;
                batch.retry_at = now.plus_ms(self.config.retry_backoff_ms);
                self.ready
                    .entry(batch.partition)
                    .or_default()
                    .push_front(batch);
                self.request_metadata(out);
                out.timer(self.config.retry_backoff_ms.max(1), ProducerTimer::Drain);
            }
            Message::Produce { corr, .. } => {
                if let Some(f) = self.in_flight.remove(&corr) {
                    self.leaders.insert(f.batch.partition, None);
                    // Never reached the broker: a definite failure of this attempt.
                    self.retry_or_fail(
                        now,
                        f.batch,
                        "NETWORK_EXCEPTION (connection refused)".into(),
                        false,
                        out,
                    );
                }
                self.request_metadata(out);
            }
            Message::Metadata { corr, .. } if self.metadata_in_flight == Some(corr) => {
                self.metadata_in_flight = None;
                out.timer(
                    self.config.retry_backoff_ms.max(1),
                    ProducerTimer::MetadataRetry,
                );
            }
            Message::InitProducerId { corr, .. } if self.init_pid_in_flight == Some(corr) => {
                self.init_pid_in_flight = None;
                out.timer(self.config.retry_backoff_ms.max(1), ProducerTimer::Drain);
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::effects::Effect;

    fn sends(out: &Effects<ProducerTimer>) -> Vec<Message> {
        out.list
            .iter()
            .filter_map(|e| match e {
                Effect::Send { msg, .. } => Some(msg.clone()),
                _ => None,
            })
            .collect()
    }

    fn ops(out: &Effects<ProducerTimer>) -> Vec<ClientOp> {
        out.list
            .iter()
            .filter_map(|e| match e {
                Effect::Op(op) => Some(op.clone()),
                _ => None,
            })
            .collect()
    }

    fn metadata(corr: CorrelationId) -> Message {
        let pm = |p: i32| PartitionMetadata {
            tp: TopicPartition::new("t", p),
            error: ErrorCode::None,
            leader: Some(BrokerId(0)),
            leader_epoch: LeaderEpoch(0),
            replicas: vec![BrokerId(0)],
            isr: vec![BrokerId(0)],
        };
        Message::MetadataResponse {
            corr,
            brokers: vec![BrokerId(0)],
            controller: Some(BrokerId(0)),
            partitions: vec![pm(0), pm(1)],
        }
    }

    fn corr_of(m: &Message) -> CorrelationId {
        match m {
            Message::Metadata { corr, .. }
            | Message::InitProducerId { corr, .. }
            | Message::Produce { corr, .. } => *corr,
            other => panic!("unexpected {other:?}"),
        }
    }

    /// Regression (found by `default` seed 934): after a producer-id reset, a batch whose
    /// earlier attempt may have been written must not be sent again under the new id.
    #[test]
    fn possibly_written_batch_is_not_resent_under_a_new_producer_id() {
        let workload = ProducerWorkload {
            topic: "t".into(),
            rate_per_sec: 1000,
            keys: 0,
            stop_at_ms: 1_000_000,
        };
        let config = ProducerConfig {
            linger_ms: 0,
            ..ProducerConfig::default()
        };
        let mut p = ProducerClient::new(0, config, workload, vec![BrokerId(0)]);
        // Null keys: the sticky partitioner moves to the other partition after each batch.
        let broker = NodeId::Broker(BrokerId(0));
        let mut out = Effects::new();
        p.on_start(Instant(0), &mut out);
        let md = corr_of(&sends(&out)[0]);
        let mut out = Effects::new();
        p.on_message(Instant(1), broker, metadata(md), &mut out);
        let init = corr_of(&sends(&out)[0]);
        let mut out = Effects::new();
        let pid_reply = |corr, pid| Message::InitProducerIdResponse {
            corr,
            error: ErrorCode::None,
            producer_id: ProducerId(pid),
            producer_epoch: ProducerEpoch(0),
        };
        p.on_message(Instant(2), broker, pid_reply(init, 7), &mut out);
        // Records land on both partitions; each partition has one batch in flight.
        let mut produces = Vec::new();
        let partition_of = |m: &Message| match m {
            Message::Produce { tp, .. } => tp.partition,
            _ => unreachable!(),
        };
        for t in 3..20 {
            let mut out = Effects::new();
            p.on_timeout(Instant(t), ProducerTimer::Tick, &mut out);
            produces.extend(
                sends(&out)
                    .into_iter()
                    .filter(|m| matches!(m, Message::Produce { .. })),
            );
            if produces
                .iter()
                .map(partition_of)
                .collect::<std::collections::BTreeSet<_>>()
                .len()
                == 2
            {
                break;
            }
        }
        assert_eq!(
            produces.len(),
            2,
            "one batch in flight per partition: {produces:?}"
        );
        // Batch A times out (it may have been written); batch B is rejected with
        // OUT_OF_ORDER_SEQUENCE_NUMBER, which resets the producer id.
        let (a, b) = (&produces[0], &produces[1]);
        assert_ne!(partition_of(a), partition_of(b));
        let mut out = Effects::new();
        p.on_timeout(
            Instant(31_000),
            ProducerTimer::RequestTimeout { corr: corr_of(a) },
            &mut out,
        );
        let mut out = Effects::new();
        let reject = Message::ProduceResponse {
            corr: corr_of(b),
            tp: TopicPartition::new("t", partition_of(b)),
            error: ErrorCode::OutOfOrderSequenceNumber,
            base_offset: Offset(-1),
            log_start_offset: Offset(0),
        };
        p.on_message(Instant(31_001), broker, reject, &mut out);
        let reinit = sends(&out)
            .into_iter()
            .find(|m| matches!(m, Message::InitProducerId { .. }))
            .expect("re-init");
        // The new producer id arrives: B (never written) is resent under it, A is failed as
        // indeterminate instead of being appended a second time.
        let mut out = Effects::new();
        p.on_message(
            Instant(31_002),
            broker,
            pid_reply(corr_of(&reinit), 8),
            &mut out,
        );
        // After retry.backoff.ms both batches are due again.
        let mut out = Effects::new();
        p.on_timeout(Instant(31_200), ProducerTimer::Drain, &mut out);
        let resent: Vec<i32> = sends(&out)
            .iter()
            .filter(|m| matches!(m, Message::Produce { .. }))
            .map(partition_of)
            .collect();
        assert_eq!(resent, vec![partition_of(b)]);
        let completed: Vec<OpType> = ops(&out).iter().map(|o| o.op_type).collect();
        assert_eq!(completed, vec![OpType::Info], "{:?}", ops(&out));
    }
}
