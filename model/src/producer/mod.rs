//! A producer client with the pipeline of Kafka's `KafkaProducer`, driven by a workload that
//! offers unique values at a fixed rate.
//!
//! `send(record)` runs, in Kafka's order:
//!
//! 1. **Interceptors** ([`ProducerInterceptor::on_send`], from `interceptor.classes`: see
//!    [`builtin_interceptor`]) may rewrite the record. An interceptor that throws (returns
//!    `Err`) or panics is caught, reported as an
//!    [`Event::InterceptorFailed`](crate::event::Event::InterceptorFailed), and the record of
//!    the previous interceptor is used (Kafka's `ProducerInterceptors` logs and swallows
//!    interceptor exceptions the same way).
//! 2. **Serializers** turn key and value into bytes ([`Serializer`]; `key.serializer`
//!    `StringSerializer` by default, or `IntegerSerializer`/`LongSerializer` of the key
//!    number, and `value.serializer` `LongSerializer` by default, or `StringSerializer`). A
//!    serializer that cannot take a key fails the send (`SerializationException`).
//! 3. **Partitioner**: an explicit partition, else murmur2 of the key modulo the partition
//!    count (Kafka's `BuiltInPartitioner`), else the sticky partitioner for null keys (KIP-480).
//! 4. **RecordAccumulator**: a deque of batches per partition. A record joins the last batch
//!    of its partition while that batch has never been sent and has room for it under
//!    `batch.size` (for compressed batches the size is estimated with Kafka's per-codec
//!    compression-ratio estimate); otherwise a new batch is allocated from `buffer.memory`.
//!    When the buffer is exhausted `send` blocks (the workload offers nothing meanwhile) for
//!    up to `max.block.ms`, then fails with Kafka's `TimeoutException` text; memory comes back
//!    when batches complete.
//! 5. **Sender**: a partition's first batch is *sendable* when it is full (or not the last
//!    one), has lingered `linger.ms`, the buffer is exhausted, or, for a retry,
//!    `retry.backoff.ms` has passed. Sendable batches are grouped by leader: one Produce
//!    request per broker carries at most one batch per partition, and at most
//!    `max.in.flight.requests.per.connection` requests are in flight per broker.
//!    `max.in.flight.requests.per.connection=1` mutes a partition while its batch is in
//!    flight (Kafka's `guaranteeMessageOrder`).
//! 6. **Idempotence** (KIP-98): a batch gets the producer id, epoch and base sequence when it
//!    is first drained; up to 5 batches per partition may be in flight (the broker caches the
//!    last 5). A batch that comes back for a retry is re-queued in sequence order and sent
//!    again only when it is the lowest unresolved sequence of its partition, so a retry never
//!    overtakes an earlier batch (Kafka's `TransactionManager` / `Sender` rules). An
//!    OUT_OF_ORDER_SEQUENCE_NUMBER on a batch whose predecessor is still unresolved is a
//!    consequence of that predecessor and simply retried; on the lowest unresolved batch it
//!    means the broker lost our state: once nothing is in flight the producer takes a new
//!    producer id (KIP-360) and re-sequences the batches that were never written, failing
//!    (as indeterminate) those that may have been.
//! 7. **Completion**: retriable errors are retried while `retries` and `delivery.timeout.ms`
//!    (KIP-91) allow; a request without an answer after `request.timeout.ms` counts as failed
//!    but *indeterminate*: it may have been written. Completion calls the interceptors'
//!    [`ProducerInterceptor::on_acknowledgement`] and the workload's callback.
//!
//! The workload's [`SendStyle`] says how it calls `send`: asynchronously with a callback that
//! records the outcome (the default), synchronously (waiting for each outcome before the next
//! send), or fire-and-forget (the outcome is never observed). Every record is one Jepsen
//! operation: `invoke` when offered, then `ok` with its offset, `fail` when it certainly was
//! not written, or `info` when it may have been (or, fire-and-forget, when nobody looked).
//!
//! # Where each part lives
//! This file holds the client, its timers and its dispatch (the [`Actor`] impl). The
//! workload's `send` and its callback are in `send.rs`; the steps above in
//! `interceptors.rs` (1), `serializers.rs` (2), `partitioner.rs` (3), `accumulator.rs` (4 and
//! the per-partition half of 5), `sender.rs` (5 and 7) and `transaction_manager.rs` (6);
//! metadata (the leader of each partition) in `metadata.rs`.

use crate::config::ProducerConfig;
use crate::effects::{Actor, Effect, Effects};
use crate::event::Event;
use crate::protocol::*;
use crate::types::*;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt;

mod accumulator;
mod interceptors;
mod metadata;
pub mod partitioner;
mod send;
mod sender;
mod serializers;
#[cfg(test)]
mod tests;
mod transaction_manager;
mod transactions;
#[cfg(test)]
mod transactions_tests;

pub use accumulator::buffer_exhausted_message;
use accumulator::{Batch, BlockedSend};
pub use interceptors::{
    builtin_interceptor, FailingInterceptor, ProducerInterceptor, TracingHeaderInterceptor,
};
use partitioner::StickyPartitioner;
pub use send::{ProducerWorkload, SendStyle};
use sender::InFlightRequest;
pub use serializers::{
    key_serializer, value_serializer, workload_key, ByteArraySerializer, IntegerSerializer,
    LongSerializer, NumericKeySerializer, Serializer, StringSerializer,
};
pub use transaction_manager::MAX_IN_FLIGHT_PER_PARTITION_IDEMPOTENT;
use transactions::Transactional;
pub use transactions::{ConsumerGroupMetadata, TransactionSpec, ADD_PARTITIONS_RETRY_BACKOFF_MS};

/// Timers of a producer.
#[derive(Debug, Clone, PartialEq)]
pub enum ProducerTimer {
    /// Offer the next record.
    Tick,
    /// Run the sender at this time (a linger, retry backoff or delivery timeout is due).
    Wake {
        at_ms: u64,
    },
    RequestTimeout {
        corr: CorrelationId,
    },
    /// A `send` blocked on `buffer.memory` gives up after `max.block.ms`.
    MaxBlock {
        op_id: u64,
    },
    /// Periodic refresh (`metadata.max.age.ms`); re-arms itself.
    MetadataRefresh,
    /// One-shot retry of a failed metadata request.
    MetadataRetry,
}

/// Kafka's `ProducerRecord` as the interceptors see it: before serialization and partitioning.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProducerRecord {
    pub topic: String,
    /// An explicit partition, else the partitioner decides.
    pub partition: Option<i32>,
    pub key: Option<String>,
    /// The workload's unique value.
    pub value: u64,
    pub headers: Vec<(String, Option<Vec<u8>>)>,
}

/// Kafka's `RecordMetadata`, as passed to [`ProducerInterceptor::on_acknowledgement`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordMetadata {
    pub tp: TopicPartition,
    /// The record's offset; `None` on failure and with acks=0.
    pub offset: Option<Offset>,
}

/// A producer client process.
pub struct ProducerClient {
    pub index: u32,
    config: ProducerConfig,
    workload: ProducerWorkload,
    bootstrap: Vec<BrokerId>,
    next_bootstrap: usize,
    /// The leader of every partition known from metadata, by slot (see [`Self::tp`]).
    leaders: BTreeMap<i32, Option<BrokerId>>,
    metadata_in_flight: Option<CorrelationId>,
    init_pid_in_flight: Option<CorrelationId>,
    producer: Option<(ProducerId, ProducerEpoch)>,
    /// The broker lost our producer state: take a new producer id once nothing is in flight.
    reset_pending: bool,
    /// The next sequence number per partition slot.
    next_sequence: BTreeMap<i32, i32>,
    /// The RecordAccumulator: a deque of batches per partition slot.
    batches: BTreeMap<i32, VecDeque<Batch>>,
    /// `buffer.memory` not taken by batches.
    buffer_available: u64,
    blocked: Option<BlockedSend>,
    /// Kafka's `CompressionRatioEstimator` value for this producer's codec.
    compression_ratio: f32,
    in_flight: BTreeMap<CorrelationId, InFlightRequest>,
    /// acks=0 requests handed to the network, not yet known to be written.
    unconfirmed: BTreeMap<CorrelationId, InFlightRequest>,
    /// Sender wake-up times with a timer armed.
    wakeups: BTreeSet<u64>,
    /// Sync send style: the op the workload waits for.
    awaiting: Option<u64>,
    interceptors: Vec<Box<dyn ProducerInterceptor>>,
    /// Failures so far per interceptor and hook (for the event's count).
    interceptor_failures: BTreeMap<(String, &'static str), u64>,
    key_serializer: Box<dyn Serializer<str>>,
    value_serializer: Box<dyn Serializer<u64>>,
    next_value: u64,
    /// Which process of this producer client this is (0 for the first; a restart after a
    /// crash or a close is the next): it keeps the workload's values unique across restarts.
    incarnation: u64,
    next_op: u64,
    next_corr: u64,
    /// The workload's pacing: thousandths of a record earned but not yet offered, and the
    /// interval (ms) of the tick now scheduled (see [`ProducerClient::records_due`]).
    rate_credit_milli: u64,
    tick_scheduled_ms: u64,
    /// KIP-480's sticky partitioner for records without a key (or with
    /// `partitioner.ignore.keys`), one per topic of the workload, in its order.
    sticky: Vec<StickyPartitioner>,
    /// Its randomness (Kafka: `ThreadLocalRandom`), seeded by [`ProducerClient::with_partitioner_seed`].
    partitioner_rng: ChaCha8Rng,
    /// The transactional state, with a `transactional.id` (see `transactions.rs`).
    txn: Option<Transactional>,
    /// Driven by an application (a processor) instead of the rate workload: no ticks, no
    /// transactions of its own; see [`ProducerClient::driven`].
    driven: bool,
}

impl fmt::Debug for ProducerClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProducerClient")
            .field("index", &self.index)
            .field("producer", &self.producer)
            .field("batches", &self.batches)
            .field("in_flight", &self.in_flight)
            .field("buffer_available", &self.buffer_available)
            .field("interceptors", &self.interceptors.len())
            .finish_non_exhaustive()
    }
}

impl ProducerClient {
    /// The same producer as process number `incarnation` of its client (0 for the first;
    /// each restart counts one more): the values it offers carry it in their top 16 bits, so
    /// a restarted producer never repeats a value (the checks need every value unique).
    ///
    /// Its correlation ids start at `incarnation << 32`, so that no two processes of one client
    /// use the same id. In Kafka a response travels back on the connection its request came
    /// in on (`RequestChannel`), and a process's connections die with it, so a response to a
    /// previous process never reaches this one (and `NetworkClient.correlate` checks each
    /// response's id against its connection's oldest request). The simulated transport routes
    /// a reply to the peer's latest connection, so a request answered late (a produce waiting
    /// in purgatory for `acks=all`) can be answered after the restart; with ids of its own
    /// this process recognises such an answer as not its own and drops it, instead of taking
    /// it for its own request with the same id (found by `consumer-group-under-faults` seed
    /// 70029: a restarted producer took its predecessor's answer, offset 247, for its own
    /// record written at 250).
    pub fn with_incarnation(mut self, incarnation: u64) -> Self {
        self.incarnation = incarnation;
        self.next_corr = incarnation << 32;
        self
    }

    pub fn new(
        index: u32,
        config: ProducerConfig,
        workload: ProducerWorkload,
        bootstrap: Vec<BrokerId>,
    ) -> Self {
        let interceptors = config
            .interceptor_classes
            .iter()
            .map(|&c| builtin_interceptor(c, &format!("producer-{index}")))
            .collect();
        assert!(
            !workload.topics.is_empty(),
            "producer-{index}: a workload writes to at least one topic"
        );
        let sticky = workload
            .topics
            .iter()
            .map(|_| StickyPartitioner::new())
            .collect();
        ProducerClient {
            index,
            buffer_available: config.buffer_memory,
            interceptors,
            key_serializer: key_serializer(config.key_serializer),
            value_serializer: value_serializer(config.value_serializer),
            config,
            workload,
            bootstrap,
            next_bootstrap: index as usize,
            leaders: BTreeMap::new(),
            metadata_in_flight: None,
            init_pid_in_flight: None,
            producer: None,
            reset_pending: false,
            next_sequence: BTreeMap::new(),
            batches: BTreeMap::new(),
            blocked: None,
            compression_ratio: 1.0,
            in_flight: BTreeMap::new(),
            unconfirmed: BTreeMap::new(),
            wakeups: BTreeSet::new(),
            awaiting: None,
            interceptor_failures: BTreeMap::new(),
            next_value: 0,
            incarnation: 0,
            next_op: 0,
            next_corr: 0,
            rate_credit_milli: 0,
            tick_scheduled_ms: 0,
            sticky,
            partitioner_rng: ChaCha8Rng::seed_from_u64(index as u64),
            txn: None,
            driven: false,
        }
    }

    /// The same producer driven by an application (a processor, [`crate::processor`]): it
    /// offers nothing by itself; the application calls [`Self::send_record`] and, with a
    /// `transactional.id`, `beginTransaction` / `sendOffsetsToTransaction` /
    /// `commitTransaction` / `abortTransaction` (see `transactions.rs`).
    pub fn driven(mut self) -> Self {
        self.driven = true;
        self
    }

    /// Makes this producer transactional (`transactional.id` set in its config, which also
    /// requires idempotence): it runs `initTransactions()` first, then transactions of
    /// `spec`'s size, one Jepsen `txn` operation each (see `transactions.rs`). Without a
    /// `transactional.id` in the config this changes nothing.
    pub fn with_transactions(mut self, spec: TransactionSpec) -> Self {
        if let Some(id) = self.config.transactional_id.clone() {
            let timeout = self.config.transaction_timeout_ms;
            self.txn = Some(Transactional::new(id, spec, timeout, self.index as u64));
        }
        self
    }

    /// Seeds the sticky partitioner's random choices (the simulation derives `seed` from the
    /// run's seed, one stream per producer), so that null-key records spread the same way on
    /// every replay.
    pub fn with_partitioner_seed(mut self, seed: u64) -> Self {
        self.partitioner_rng = ChaCha8Rng::seed_from_u64(seed);
        if let Some(t) = self.txn.as_mut() {
            t.reseed(seed);
        }
        self
    }

    /// The sticky partition null-key records of the workload's first topic currently go to
    /// (KIP-480), if one was chosen.
    pub fn sticky_partition(&self) -> Option<i32> {
        self.sticky[0].current()
    }

    /// Installs an interceptor (`interceptor.classes`); they run in installation order.
    pub fn add_interceptor(&mut self, interceptor: Box<dyn ProducerInterceptor>) {
        self.interceptors.push(interceptor);
    }

    /// Replaces the key and value serializers (`key.serializer`, `value.serializer`).
    pub fn with_serializers(
        mut self,
        key: Box<dyn Serializer<str>>,
        value: Box<dyn Serializer<u64>>,
    ) -> Self {
        self.key_serializer = key;
        self.value_serializer = value;
        self
    }

    /// `buffer.memory` bytes not held by batches.
    pub fn buffer_available_bytes(&self) -> u64 {
        self.buffer_available
    }

    fn corr(&mut self) -> CorrelationId {
        self.next_corr += 1;
        CorrelationId(self.next_corr)
    }

    /// The topic-partition of a partition *slot*. The producer keys its per-partition state
    /// (leaders, sequences, batches, the partitions added to a transaction) by slot, one
    /// number for a partition of any of its topics: `partition * topics + topic index`, so that
    /// with one topic (every producer but a multi-topic one) the slot is the partition itself,
    /// and a topic growing partitions (`create-partitions`) moves no other slot.
    fn tp(&self, slot: i32) -> TopicPartition {
        let n = self.workload.topics.len() as i32;
        TopicPartition::new(self.workload.topics[(slot % n) as usize].clone(), slot / n)
    }

    /// The slot (see [`Self::tp`]) of `partition` of the workload's topic number
    /// `topic_index`.
    fn slot(&self, topic_index: usize, partition: i32) -> i32 {
        partition * self.workload.topics.len() as i32 + topic_index as i32
    }

    /// Partitions of the workload's topic number `topic_index` known from metadata (0 before
    /// the first answer).
    fn partitions_of(&self, topic_index: usize) -> i32 {
        let n = self.workload.topics.len() as i32;
        self.leaders
            .keys()
            .filter(|s| *s % n == topic_index as i32)
            .count() as i32
    }

    /// Whether metadata gave at least one partition of every topic of the workload (Kafka's
    /// `send` blocks on metadata until then).
    fn metadata_known(&self) -> bool {
        (0..self.workload.topics.len()).all(|t| self.partitions_of(t) > 0)
    }

    /// Schedules the next workload tick: when the credit reaches a whole record, at least
    /// 1 ms away (ticks are whole milliseconds).
    fn schedule_tick(&mut self, out: &mut Effects<ProducerTimer>) {
        let rate = u64::from(self.workload.rate_per_sec.max(1));
        let missing = 1000 - self.rate_credit_milli.min(999);
        let after_ms = missing.div_ceil(rate).max(1);
        self.tick_scheduled_ms = after_ms;
        out.timer(after_ms, ProducerTimer::Tick);
    }

    /// At a tick: how many records the workload offers now, so that over time it offers
    /// exactly `rate_per_sec` records per simulated second, whatever the rate (300 per second
    /// is 3 records every 10 ms, 1500 is 1 or 2 each millisecond). Each tick earns the records
    /// of the interval it was scheduled for, not of the time that really passed: a process
    /// that was paused does not burst to catch up, as a paused application thread would not.
    /// A rate that divides 1000, or a multiple of 1000, gives the same tick every time (100
    /// per second: one record each 10 ms).
    fn records_due(&mut self) -> u64 {
        let rate = u64::from(self.workload.rate_per_sec.max(1));
        self.rate_credit_milli += rate * self.tick_scheduled_ms;
        let due = self.rate_credit_milli / 1000;
        self.rate_credit_milli %= 1000;
        due
    }

    fn idempotent(&self) -> bool {
        self.config.enable_idempotence
    }
}

impl Actor for ProducerClient {
    type Timer = ProducerTimer;

    /// The buffer pool never holds more than `buffer.memory`, and no connection carries more
    /// requests than `max.in.flight.requests.per.connection` (Kafka's `BufferPool` and
    /// `NetworkClient.canSendMore`).
    fn invariants(&self) {
        assert!(
            self.buffer_available <= self.config.buffer_memory,
            "producer-{}: {} bytes available in a pool of buffer.memory {}",
            self.index,
            self.buffer_available,
            self.config.buffer_memory
        );
        let max = self.config.max_in_flight_requests_per_connection as usize;
        let brokers: BTreeSet<BrokerId> = self
            .in_flight
            .values()
            .chain(self.unconfirmed.values())
            .map(|r| r.broker)
            .collect();
        for b in brokers {
            assert!(
                self.requests_to(b) <= max,
                "producer-{}: {} requests in flight to broker {b}, more than max.in.flight.requests.per.connection {max}",
                self.index,
                self.requests_to(b)
            );
        }
    }

    fn on_start(&mut self, now: Instant, out: &mut Effects<ProducerTimer>) {
        self.request_metadata(out);
        if self.driven {
            // initTransactions() runs at once; sends come from the application.
            if self.transactional() {
                self.drain(now, out);
            }
        } else {
            self.schedule_tick(out);
        }
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
        if self.on_txn_response(now, &msg, out) {
            return;
        }
        match msg {
            Message::MetadataResponse {
                corr, partitions, ..
            } => self.on_metadata_response(now, corr, partitions, out),
            Message::InitProducerIdResponse {
                corr,
                error,
                producer_id,
                producer_epoch,
            } => self.on_init_producer_id_response(
                now,
                corr,
                error,
                producer_id,
                producer_epoch,
                out,
            ),
            Message::ProduceResponse { corr, partitions } => {
                self.on_produce_response(now, corr, partitions, out)
            }
            // `KafkaProducer.close()`: no new record is offered; what was already sent or
            // buffered is still delivered (close waits for it), then the process stays idle.
            Message::Close => {
                self.workload.stop_at_ms = self.workload.stop_at_ms.min(now.as_ms());
            }
            _ => {}
        }
    }

    fn on_timeout(&mut self, now: Instant, timer: ProducerTimer, out: &mut Effects<ProducerTimer>) {
        match timer {
            ProducerTimer::Tick if self.transactional() => {
                for _ in 0..self.records_due().max(1) {
                    self.txn_tick(now, out);
                }
                let open = self.txn.as_ref().is_some_and(|t| {
                    t.phase != transactions::TxnPhase::Ready
                        && t.phase != transactions::TxnPhase::Uninitialized
                });
                if now.as_ms() < self.workload.stop_at_ms || open {
                    self.schedule_tick(out);
                }
            }
            ProducerTimer::Tick => {
                if now.as_ms() < self.workload.stop_at_ms {
                    for _ in 0..self.records_due() {
                        if self.workload_blocked() {
                            break;
                        }
                        self.offer_record(now, out);
                    }
                    self.schedule_tick(out);
                }
            }
            ProducerTimer::Wake { at_ms } => {
                self.wakeups.remove(&at_ms);
                self.drain(now, out);
            }
            ProducerTimer::MaxBlock { op_id } => self.on_max_block_timeout(op_id, out),
            ProducerTimer::RequestTimeout { corr } => {
                // NetworkClient.handleTimedOutRequests: a request unanswered after
                // `request.timeout.ms` closes the connection to its broker, and every request in
                // flight on it fails as disconnected; the next request to the broker opens a
                // new connection. Bytes the old connection already sent may still arrive.
                let target = self
                    .txn_request_target(corr)
                    .or_else(|| self.in_flight.get(&corr).map(|r| (r.broker, "Produce")));
                if let Some((broker, api)) = target {
                    out.event(Event::RequestTimedOut {
                        broker,
                        api: api.into(),
                        corr,
                    });
                    out.list.push(Effect::CloseConnection {
                        peer: NodeId::Broker(broker),
                    });
                }
                if self.on_txn_request_failed(now, corr, out) {
                    self.drain(now, out);
                } else if self.metadata_in_flight == Some(corr) {
                    self.metadata_in_flight = None;
                    self.request_metadata(out);
                } else if self.init_pid_in_flight == Some(corr) {
                    self.init_pid_in_flight = None;
                    self.drain(now, out);
                } else if let Some(r) = self.in_flight.remove(&corr) {
                    self.fail_request(now, r, "request.timeout.ms expired", true, out);
                    self.drain(now, out);
                }
                if let Some((broker, _)) = target {
                    self.on_disconnect(now, NodeId::Broker(broker), out);
                }
            }
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
        self.on_txn_disconnect(now, b, out);
        // NetworkClient fails every request in flight on a broken connection; whether the
        // broker processed them is unknown.
        let lost: Vec<CorrelationId> = self
            .in_flight
            .iter()
            .filter(|(_, r)| r.broker == b)
            .map(|(c, _)| *c)
            .collect();
        for corr in lost {
            let r = self.in_flight.remove(&corr).expect("present");
            self.fail_request(now, r, "NETWORK_EXCEPTION (disconnected)", true, out);
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
        now: Instant,
        _to: NodeId,
        msg: Message,
        out: &mut Effects<ProducerTimer>,
    ) {
        let Message::Produce { corr, .. } = msg else {
            return;
        };
        let Some(r) = self.unconfirmed.remove(&corr) else {
            return;
        };
        for batch in r.batches {
            self.complete_ok(now, batch, None, out);
        }
        self.drain(now, out);
    }

    fn on_send_failed(
        &mut self,
        now: Instant,
        _to: NodeId,
        msg: Message,
        out: &mut Effects<ProducerTimer>,
    ) {
        match msg {
            Message::FindCoordinator { corr, .. }
            | Message::InitProducerId { corr, .. }
            | Message::AddPartitionsToTxn { corr, .. }
            | Message::AddOffsetsToTxn { corr, .. }
            | Message::TxnOffsetCommit { corr, .. }
            | Message::EndTxn { corr, .. }
                if self.on_txn_request_failed(now, corr, out) => {}
            Message::Produce { corr, .. } if self.unconfirmed.contains_key(&corr) => {
                // Never written: back to the front of their partitions' deques, sent again
                // once metadata names a reachable leader.
                let r = self.unconfirmed.remove(&corr).expect("present");
                let at = now.plus_ms(self.config.retry_backoff_ms);
                for mut batch in r.batches {
                    self.leaders.insert(batch.partition, None);
                    batch.retry_at = at;
                    self.reenqueue(batch);
                }
                self.request_metadata(out);
                self.wake_at(now, at, out);
            }
            Message::Produce { corr, .. } => {
                if let Some(r) = self.in_flight.remove(&corr) {
                    // Never reached the broker: a definite failure of this attempt.
                    self.fail_request(now, r, "NETWORK_EXCEPTION (connection refused)", false, out);
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
                let at = now.plus_ms(self.config.retry_backoff_ms.max(1));
                self.wake_at(now, at, out);
            }
            _ => {}
        }
    }
}
