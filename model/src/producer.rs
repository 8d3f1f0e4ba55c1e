//! A producer client with the pipeline of Kafka's `KafkaProducer`, driven by a workload that
//! offers unique values at a fixed rate.
//!
//! `send(record)` runs, in Kafka's order:
//!
//! 1. **Interceptors** ([`ProducerInterceptor::on_send`], from `interceptor.classes`: see
//!    [`builtin_interceptor`]) may rewrite the record. An interceptor that throws (returns
//!    `Err`) or panics is caught, reported as an [`Event::InterceptorFailed`], and the record
//!    of the previous interceptor is used (Kafka's `ProducerInterceptors` logs and swallows
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
//! # Size
//! Above the project's 1500-line guide (about 2600 lines with its tests): the split by
//! Kafka concept into a folder of its own is item 1 of the "house" issue (11), planned
//! before coordinators are added; until then the whole concept stays in this one file.

use crate::config::{InterceptorClass, ProducerConfig, SerdeClass};
use crate::effects::{Actor, Effects};
use crate::event::{ClientOp, Event, OpType, OpValue};
use crate::partitioner::{partition_for_key, StickyPartitioner};
use crate::protocol::*;
use crate::record::{Compression, RecordBatch, HEADER_SIZE};
use crate::types::*;
use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};

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

/// How the workload calls `send` (the three styles of Kafka's documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SendStyle {
    /// `send(record, callback)`: keep sending; the callback records each outcome.
    #[default]
    Async,
    /// `send(record).get()`: wait for the outcome before the next send.
    Sync,
    /// `send(record)` and never look at the result: the outcome is unknown (`info`).
    FireAndForget,
}

impl SendStyle {
    /// The scenario values of `send_style`.
    pub const NAMES: &'static [&'static str] = &["async", "sync", "fire-and-forget"];

    /// Parses a scenario `send_style` value.
    pub fn parse(s: &str) -> Option<SendStyle> {
        match s {
            "async" => Some(SendStyle::Async),
            "sync" => Some(SendStyle::Sync),
            "fire-and-forget" => Some(SendStyle::FireAndForget),
            _ => None,
        }
    }

    /// The scenario value.
    pub fn name(self) -> &'static str {
        match self {
            SendStyle::Async => "async",
            SendStyle::Sync => "sync",
            SendStyle::FireAndForget => "fire-and-forget",
        }
    }
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
    /// How `send` is called.
    pub send_style: SendStyle,
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

/// Kafka's `ProducerInterceptor`: sees every record before it is serialized and every outcome.
/// An error (Kafka: an exception) or a panic in either hook is caught and logged as
/// [`Event::InterceptorFailed`], never propagated.
pub trait ProducerInterceptor: Send {
    /// A name for reports.
    fn name(&self) -> String {
        "interceptor".into()
    }
    /// Called by `send` first; returns the record to send (possibly modified), or the message
    /// of the exception it throws (the record then goes on as the previous interceptor left
    /// it).
    fn on_send(&mut self, record: ProducerRecord) -> Result<ProducerRecord, String>;
    /// Called when the record is acknowledged (`error` is `None`) or fails; `Err` is the
    /// message of the exception it throws.
    fn on_acknowledgement(
        &mut self,
        metadata: &RecordMetadata,
        error: Option<&str>,
    ) -> Result<(), String>;
}

/// Kafka's `Serializer<T>`: turns a key or value into bytes for `topic`. `Err` is the message
/// of the `SerializationException` it throws; `send` then fails.
pub trait Serializer<T: ?Sized>: Send {
    fn serialize(&self, topic: &str, data: &T) -> Result<Vec<u8>, String>;
}

/// Kafka's `StringSerializer` (UTF-8). For a `u64` value: its decimal digits.
#[derive(Debug, Clone, Copy, Default)]
pub struct StringSerializer;
impl Serializer<str> for StringSerializer {
    fn serialize(&self, _topic: &str, data: &str) -> Result<Vec<u8>, String> {
        Ok(data.as_bytes().to_vec())
    }
}
impl Serializer<u64> for StringSerializer {
    fn serialize(&self, _topic: &str, data: &u64) -> Result<Vec<u8>, String> {
        Ok(data.to_string().into_bytes())
    }
}

/// Kafka's `LongSerializer`: 8 bytes, big-endian (a `u64` is written as its `i64` bits).
#[derive(Debug, Clone, Copy, Default)]
pub struct LongSerializer;
impl Serializer<i64> for LongSerializer {
    fn serialize(&self, _topic: &str, data: &i64) -> Result<Vec<u8>, String> {
        Ok(data.to_be_bytes().to_vec())
    }
}
impl Serializer<u64> for LongSerializer {
    fn serialize(&self, _topic: &str, data: &u64) -> Result<Vec<u8>, String> {
        Ok(data.to_be_bytes().to_vec())
    }
}

/// Kafka's `IntegerSerializer`: 4 bytes, big-endian.
#[derive(Debug, Clone, Copy, Default)]
pub struct IntegerSerializer;
impl Serializer<i32> for IntegerSerializer {
    fn serialize(&self, _topic: &str, data: &i32) -> Result<Vec<u8>, String> {
        Ok(data.to_be_bytes().to_vec())
    }
}

/// Kafka's `ByteArraySerializer`: the bytes as they are.
#[derive(Debug, Clone, Copy, Default)]
pub struct ByteArraySerializer;
impl Serializer<[u8]> for ByteArraySerializer {
    fn serialize(&self, _topic: &str, data: &[u8]) -> Result<Vec<u8>, String> {
        Ok(data.to_vec())
    }
}

/// A numeric key serializer (`IntegerSerializer`, `LongSerializer`) for the workload's keys,
/// which the producer holds as decimal text (`"3"`): parses the text, then serializes the
/// number. Text that is not such a number is what Kafka's `Can't convert key` error reports.
#[derive(Debug, Clone, Copy)]
pub struct NumericKeySerializer(pub SerdeClass);
impl Serializer<str> for NumericKeySerializer {
    fn serialize(&self, topic: &str, data: &str) -> Result<Vec<u8>, String> {
        let cant = || {
            format!(
                "Can't convert key of class java.lang.String to class {} specified in key.serializer",
                self.0.serializer()
            )
        };
        match self.0 {
            SerdeClass::Integer => {
                IntegerSerializer.serialize(topic, &data.parse().map_err(|_| cant())?)
            }
            SerdeClass::Long => {
                LongSerializer.serialize(topic, &data.parse::<i64>().map_err(|_| cant())?)
            }
            SerdeClass::String => StringSerializer.serialize(topic, data),
        }
    }
}

/// The key serializer of `key.serializer`.
pub fn key_serializer(class: SerdeClass) -> Box<dyn Serializer<str>> {
    match class {
        SerdeClass::String => Box::new(StringSerializer),
        numeric => Box::new(NumericKeySerializer(numeric)),
    }
}

/// The value serializer of `value.serializer` (`LongSerializer` or `StringSerializer`; the
/// configuration refuses others for the workload's 64-bit values).
pub fn value_serializer(class: SerdeClass) -> Box<dyn Serializer<u64>> {
    match class {
        SerdeClass::String => Box::new(StringSerializer),
        _ => Box::new(LongSerializer),
    }
}

/// The workload's key number `n` as the producer holds it for `key.serializer`: `k{n}` for
/// `StringSerializer`, the decimal `n` for a numeric serializer.
pub fn workload_key(n: u64, class: SerdeClass) -> String {
    match class {
        SerdeClass::String => format!("k{n}"),
        _ => n.to_string(),
    }
}

/// `ksim.interceptors.TracingHeader` ([`InterceptorClass::TracingHeader`]): stamps each record
/// with a header `ksim-trace` = `CLIENT/N`, the client and the record's sequence number.
#[derive(Debug, Clone)]
pub struct TracingHeaderInterceptor {
    client: String,
    sent: u64,
}
impl ProducerInterceptor for TracingHeaderInterceptor {
    fn name(&self) -> String {
        InterceptorClass::TracingHeader.class_name().into()
    }
    fn on_send(&mut self, mut record: ProducerRecord) -> Result<ProducerRecord, String> {
        self.sent += 1;
        let trace = format!("{}/{}", self.client, self.sent);
        record
            .headers
            .push(("ksim-trace".into(), Some(trace.into_bytes())));
        Ok(record)
    }
    fn on_acknowledgement(&mut self, _m: &RecordMetadata, _e: Option<&str>) -> Result<(), String> {
        Ok(())
    }
}

/// `ksim.interceptors.FailingOnSend` and `ksim.interceptors.FailingOnAcknowledgement`
/// ([`InterceptorClass`]): the named hook throws every time.
#[derive(Debug, Clone, Copy)]
pub struct FailingInterceptor(pub InterceptorClass);
impl ProducerInterceptor for FailingInterceptor {
    fn name(&self) -> String {
        self.0.class_name().into()
    }
    fn on_send(&mut self, record: ProducerRecord) -> Result<ProducerRecord, String> {
        if self.0 == InterceptorClass::FailingOnSend {
            return Err("java.lang.IllegalStateException: onSend always fails".into());
        }
        Ok(record)
    }
    fn on_acknowledgement(&mut self, _m: &RecordMetadata, _e: Option<&str>) -> Result<(), String> {
        if self.0 == InterceptorClass::FailingOnAcknowledgement {
            return Err("java.lang.IllegalStateException: onAcknowledgement always fails".into());
        }
        Ok(())
    }
}

/// The interceptor of an `interceptor.classes` entry, for the producer named `client`.
pub fn builtin_interceptor(class: InterceptorClass, client: &str) -> Box<dyn ProducerInterceptor> {
    match class {
        InterceptorClass::TracingHeader => Box::new(TracingHeaderInterceptor {
            client: client.to_string(),
            sent: 0,
        }),
        failing => Box::new(FailingInterceptor(failing)),
    }
}

/// Kafka's `BufferPool` timeout text (`max.block.ms` passed while waiting for memory).
pub fn buffer_exhausted_message(max_block_ms: u64) -> String {
    format!("Failed to allocate memory within the configured max blocking time {max_block_ms} ms.")
}

/// Batches at most this many per partition may be in flight with idempotence: the broker
/// caches the last 5 per producer (`ProducerStateEntry.NUM_BATCHES_TO_RETAIN`).
pub const MAX_IN_FLIGHT_PER_PARTITION_IDEMPOTENT: usize = 5;

/// Kafka's `CompressionRatioEstimator` steps and its safety factor for batch-size estimates.
const COMPRESSION_RATIO_IMPROVING_STEP: f32 = 0.005;
const COMPRESSION_RATIO_DETERIORATE_STEP: f32 = 0.05;
const COMPRESSION_RATE_ESTIMATION_FACTOR: f32 = 1.05;

#[derive(Debug, Clone)]
struct PendingRecord {
    op_id: u64,
    key: Option<String>,
    value: u64,
    key_bytes: Option<Vec<u8>>,
    value_bytes: Vec<u8>,
    headers: Vec<(String, Option<Vec<u8>>)>,
    /// Someone records this send's outcome (not fire-and-forget).
    observed: bool,
}

impl PendingRecord {
    /// Bytes the record adds to a batch's records section (Kafka's `DefaultRecord` size, with
    /// one-byte varints: length, attributes, timestamp and offset deltas, key and value
    /// lengths, header count).
    fn size_bytes(&self) -> u32 {
        Self::encoded_size(&self.key_bytes, &self.value_bytes, &self.headers)
    }

    /// The size a record with these serialized parts takes in a batch's records section.
    fn encoded_size(
        key_bytes: &Option<Vec<u8>>,
        value_bytes: &[u8],
        headers: &[(String, Option<Vec<u8>>)],
    ) -> u32 {
        let headers: usize = headers
            .iter()
            .map(|(k, v)| 2 + k.len() + v.as_ref().map_or(0, |v| v.len()))
            .sum();
        (7 + key_bytes.as_ref().map_or(0, |k| k.len()) + value_bytes.len() + headers) as u32
    }
}

#[derive(Debug, Clone)]
struct Batch {
    partition: i32,
    records: Vec<PendingRecord>,
    /// Uncompressed size of the records section.
    records_bytes: u32,
    /// Bytes taken from `buffer.memory` for this batch (returned when it completes).
    allocated_bytes: u64,
    created: Instant,
    /// Assigned on first send when idempotent.
    base_sequence: Option<i32>,
    producer: Option<(ProducerId, ProducerEpoch)>,
    attempts: u32,
    /// Some attempt may have been written.
    indeterminate: bool,
    last_error: Option<String>,
    retry_at: Instant,
    /// The encoded batch for the current producer fields (cleared when they change).
    encoded: Option<Vec<u8>>,
}

#[derive(Debug, Clone)]
struct InFlightRequest {
    broker: BrokerId,
    batches: Vec<Batch>,
}

/// A `send` waiting for `buffer.memory`.
#[derive(Debug, Clone)]
struct BlockedSend {
    partition: i32,
    record: PendingRecord,
}

/// A producer client process.
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
    /// The broker lost our producer state: take a new producer id once nothing is in flight.
    reset_pending: bool,
    next_sequence: BTreeMap<i32, i32>,
    /// The RecordAccumulator: a deque of batches per partition.
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
    next_op: u64,
    next_corr: u64,
    /// KIP-480's sticky partitioner for records without a key (or with
    /// `partitioner.ignore.keys`).
    sticky: StickyPartitioner,
    /// Its randomness (Kafka: `ThreadLocalRandom`), seeded by [`ProducerClient::with_partitioner_seed`].
    partitioner_rng: ChaCha8Rng,
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
            next_op: 0,
            next_corr: 0,
            sticky: StickyPartitioner::new(),
            partitioner_rng: ChaCha8Rng::seed_from_u64(index as u64),
        }
    }

    /// Seeds the sticky partitioner's random choices (the simulation derives `seed` from the
    /// run's seed, one stream per producer), so that null-key records spread the same way on
    /// every replay.
    pub fn with_partitioner_seed(mut self, seed: u64) -> Self {
        self.partitioner_rng = ChaCha8Rng::seed_from_u64(seed);
        self
    }

    /// The sticky partition null-key records currently go to (KIP-480), if one was chosen.
    pub fn sticky_partition(&self) -> Option<i32> {
        self.sticky.current()
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

    fn tp(&self, partition: i32) -> TopicPartition {
        TopicPartition::new(self.workload.topic.clone(), partition)
    }

    fn tick_interval_ms(&self) -> u64 {
        (1000 / self.workload.rate_per_sec.max(1) as u64).max(1)
    }

    /// Records offered per tick: one, or `rate / 1000` above 1000 per second (ticks are 1 ms).
    fn records_per_tick(&self) -> u32 {
        (self.workload.rate_per_sec / 1000).max(1)
    }

    fn idempotent(&self) -> bool {
        self.config.enable_idempotence
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

    /// Runs the sender at `at` (once per distinct time; an earlier wake-up re-plans anyway).
    fn wake_at(&mut self, now: Instant, at: Instant, out: &mut Effects<ProducerTimer>) {
        let at_ms = at.as_ms().max(now.as_ms() + 1);
        if self.wakeups.range(..=at_ms).next().is_some() {
            return;
        }
        self.wakeups.insert(at_ms);
        out.timer(at_ms - now.as_ms(), ProducerTimer::Wake { at_ms });
    }

    /// The partition of a record without an explicit one: murmur2 of the key, else (null key,
    /// or `partitioner.ignore.keys`) KIP-480's sticky partition. As in Kafka's
    /// `KafkaProducer.doSend`, when the record would open a new batch on the sticky partition
    /// (`RecordAccumulator.append` with `abortOnNewBatch`), the partitioner is told
    /// (`onNewBatch`) and picks another partition at random, preferring partitions with a
    /// known leader; the record goes there.
    fn choose_partition(
        &mut self,
        key: &Option<Vec<u8>>,
        record_bytes: u32,
        partitions: i32,
    ) -> i32 {
        match key {
            Some(k) if !self.config.partitioner_ignore_keys => partition_for_key(k, partitions),
            _ => {
                let random = self.partitioner_rng.next_u64();
                let p = self.sticky.next_partition(partitions, random);
                if !self.opens_new_batch(p, record_bytes) {
                    return p;
                }
                let available: Vec<i32> = self
                    .leaders
                    .iter()
                    .filter(|(q, l)| l.is_some() && **q < partitions)
                    .map(|(q, _)| *q)
                    .collect();
                let random = self.partitioner_rng.next_u64();
                self.sticky
                    .on_new_batch_among(p, partitions, &available, random)
            }
        }
    }

    /// Whether appending `record_bytes` to `partition` would open a new batch: there is no
    /// unsent batch to append to, or the last one has no room (the same test as `append`).
    fn opens_new_batch(&self, partition: i32, record_bytes: u32) -> bool {
        match self
            .batches
            .get(&partition)
            .and_then(|q| q.back())
            .filter(|last| last.attempts == 0 && last.base_sequence.is_none())
        {
            Some(last) => {
                self.estimated_batch_bytes(last.records_bytes + record_bytes)
                    > self.config.batch_size
            }
            None => true,
        }
    }

    /// Runs every interceptor's `on_send`, catching panics (the previous record is kept).
    fn intercept_send(
        &mut self,
        mut record: ProducerRecord,
        out: &mut Effects<ProducerTimer>,
    ) -> ProducerRecord {
        for i in 0..self.interceptors.len() {
            let before = record.clone();
            let interceptor = &mut self.interceptors[i];
            match catch_unwind(AssertUnwindSafe(|| interceptor.on_send(record))) {
                Ok(Ok(r)) => record = r,
                Ok(Err(error)) => {
                    self.interceptor_failed(i, "onSend", error, out);
                    record = before;
                }
                Err(panic) => {
                    self.interceptor_failed(i, "onSend", panic_text(&panic), out);
                    record = before;
                }
            }
        }
        record
    }

    fn intercept_ack(
        &mut self,
        metadata: &RecordMetadata,
        error: Option<&str>,
        out: &mut Effects<ProducerTimer>,
    ) {
        for i in 0..self.interceptors.len() {
            let interceptor = &mut self.interceptors[i];
            let failure = match catch_unwind(AssertUnwindSafe(|| {
                interceptor.on_acknowledgement(metadata, error)
            })) {
                Ok(Ok(())) => None,
                Ok(Err(e)) => Some(e),
                Err(panic) => Some(panic_text(&panic)),
            };
            if let Some(e) = failure {
                self.interceptor_failed(i, "onAcknowledgement", e, out);
            }
        }
    }

    /// Kafka's `ProducerInterceptors` logs an interceptor's exception and goes on. The event
    /// is recorded for the 1st, 10th, 100th, ... failure of each interceptor and hook, with
    /// the count so far, so that an interceptor failing on every record is visible without
    /// one event per record.
    fn interceptor_failed(
        &mut self,
        index: usize,
        method: &'static str,
        error: String,
        out: &mut Effects<ProducerTimer>,
    ) {
        let interceptor = self.interceptors[index].name();
        let failures = self
            .interceptor_failures
            .entry((interceptor.clone(), method))
            .or_insert(0);
        *failures += 1;
        let n = *failures;
        let mut power = 1;
        while power < n {
            power *= 10;
        }
        if power == n {
            out.event(Event::InterceptorFailed {
                interceptor,
                method: method.into(),
                error,
                failures: n,
            });
        }
    }

    fn workload_blocked(&self) -> bool {
        self.blocked.is_some()
            || (self.workload.send_style == SendStyle::Sync && self.awaiting.is_some())
    }

    /// The workload calls `send` once.
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
            Some(workload_key(
                self.next_value % self.workload.keys as u64,
                self.config.key_serializer,
            ))
        };
        let record = ProducerRecord {
            topic: self.workload.topic.clone(),
            partition: None,
            key,
            value,
            headers: Vec::new(),
        };
        let record = self.intercept_send(record, out);
        let topic = record.topic.clone();
        let serialized = record
            .key
            .as_ref()
            .map(|k| self.key_serializer.serialize(&topic, k))
            .transpose()
            .and_then(|k| Ok((k, self.value_serializer.serialize(&topic, &record.value)?)));
        let (key_bytes, value_bytes) = match serialized {
            Ok(bytes) => bytes,
            Err(message) => {
                self.serialization_failed(record, partitions, message, out);
                return;
            }
        };
        let record_bytes = PendingRecord::encoded_size(&key_bytes, &value_bytes, &record.headers);
        let partition = match record.partition {
            Some(p) if (0..partitions).contains(&p) => p,
            _ => self.choose_partition(&key_bytes, record_bytes, partitions),
        };
        self.next_op += 1;
        let op_id = self.next_op;
        out.op(ClientOp {
            op_type: OpType::Invoke,
            op_id,
            value: OpValue::Send {
                tp: self.tp(partition),
                key: record.key.clone(),
                value: record.value,
                offset: None,
            },
            error: None,
        });
        let style = self.workload.send_style;
        let pending = PendingRecord {
            op_id,
            key: record.key,
            value: record.value,
            key_bytes,
            value_bytes,
            headers: record.headers,
            observed: style != SendStyle::FireAndForget,
        };
        if style == SendStyle::Sync {
            self.awaiting = Some(op_id);
        }
        let returned = (!pending.observed).then(|| pending.clone());
        self.append(now, partition, pending, out);
        if let Some(r) = returned {
            if self.blocked.is_none() {
                self.send_returned_unobserved(partition, &r, out);
            }
        }
        self.drain(now, out);
    }

    /// `send` threw a `SerializationException` (`KafkaProducer.doSend`): the interceptors'
    /// `onSendError` hears of it (as an acknowledgement with an error) and the workload's call
    /// fails; nothing is appended.
    fn serialization_failed(
        &mut self,
        record: ProducerRecord,
        partitions: i32,
        message: String,
        out: &mut Effects<ProducerTimer>,
    ) {
        let partition = record
            .partition
            .filter(|p| (0..partitions).contains(p))
            .unwrap_or(0);
        self.next_op += 1;
        let op_id = self.next_op;
        let value = OpValue::Send {
            tp: self.tp(partition),
            key: record.key.clone(),
            value: record.value,
            offset: None,
        };
        out.op(ClientOp {
            op_type: OpType::Invoke,
            op_id,
            value: value.clone(),
            error: None,
        });
        let error = format!("SerializationException: {message}");
        let metadata = RecordMetadata {
            tp: self.tp(partition),
            offset: None,
        };
        self.intercept_ack(&metadata, Some(&error), out);
        out.op(ClientOp {
            op_type: OpType::Fail,
            op_id,
            value,
            error: Some(error),
        });
    }

    /// Estimated encoded size of a batch whose records section is `records_bytes` long.
    fn estimated_batch_bytes(&self, records_bytes: u32) -> u32 {
        if self.config.compression_type == Compression::None {
            HEADER_SIZE as u32 + records_bytes
        } else {
            HEADER_SIZE as u32
                + (records_bytes as f32
                    * self.compression_ratio
                    * COMPRESSION_RATE_ESTIMATION_FACTOR) as u32
        }
    }

    /// RecordAccumulator.append: into the last unsent batch of the partition if it has room,
    /// else into a new batch allocated from `buffer.memory` (blocking when there is none).
    fn append(
        &mut self,
        now: Instant,
        partition: i32,
        record: PendingRecord,
        out: &mut Effects<ProducerTimer>,
    ) {
        let size = record.size_bytes();
        let batch_size = self.config.batch_size;
        let estimate = self
            .batches
            .get(&partition)
            .and_then(|q| q.back())
            .filter(|last| last.attempts == 0 && last.base_sequence.is_none())
            .map(|last| self.estimated_batch_bytes(last.records_bytes + size));
        if let Some(estimate) = estimate {
            if estimate <= batch_size {
                let last = self
                    .batches
                    .get_mut(&partition)
                    .and_then(|q| q.back_mut())
                    .expect("last batch");
                last.records.push(record);
                last.records_bytes += size;
                return;
            }
        }
        let need = (batch_size as u64).max(HEADER_SIZE as u64 + size as u64);
        if need > self.buffer_available {
            // BufferPool.allocate blocks the caller for up to max.block.ms.
            let op_id = record.op_id;
            self.blocked = Some(BlockedSend { partition, record });
            out.timer(self.config.max_block_ms, ProducerTimer::MaxBlock { op_id });
            return;
        }
        self.buffer_available -= need;
        let batch = Batch {
            partition,
            records: vec![record],
            records_bytes: size,
            allocated_bytes: need,
            created: now,
            base_sequence: None,
            producer: None,
            attempts: 0,
            indeterminate: false,
            last_error: None,
            retry_at: now,
            encoded: None,
        };
        self.batches.entry(partition).or_default().push_back(batch);
    }

    /// Memory came back: a blocked `send` may proceed.
    fn release(&mut self, batch: &Batch, now: Instant, out: &mut Effects<ProducerTimer>) {
        self.buffer_available += batch.allocated_bytes;
        assert!(self.buffer_available <= self.config.buffer_memory);
        if let Some(b) = self.blocked.take() {
            let need = (self.config.batch_size as u64)
                .max(HEADER_SIZE as u64 + b.record.size_bytes() as u64);
            if need <= self.buffer_available {
                let returned = (!b.record.observed).then(|| b.record.clone());
                self.append(now, b.partition, b.record, out);
                if let Some(r) = returned {
                    self.send_returned_unobserved(b.partition, &r, out);
                }
                self.workload_resumed(now, out);
            } else {
                self.blocked = Some(b);
            }
        }
    }

    /// Fire-and-forget: `send` returned and nobody will look at the outcome, so the history
    /// can only say `info` (it may or may not be written).
    fn send_returned_unobserved(
        &self,
        partition: i32,
        r: &PendingRecord,
        out: &mut Effects<ProducerTimer>,
    ) {
        out.op(ClientOp {
            op_type: OpType::Info,
            op_id: r.op_id,
            value: OpValue::Send {
                tp: self.tp(partition),
                key: r.key.clone(),
                value: r.value,
                offset: None,
            },
            error: Some("fire-and-forget: the outcome of send() is never observed".into()),
        });
    }

    /// After a blocking call returns, the workload's next send is due at its next tick
    /// (ticks keep running; nothing to do here but keep the sender going).
    fn workload_resumed(&mut self, now: Instant, out: &mut Effects<ProducerTimer>) {
        self.wake_at(now, now, out);
    }

    /// Kafka's `RecordAccumulator.ready` for one partition's first batch: `Ok(())` when it may
    /// be drained now, `Err(Some(t))` when it will be at `t`, `Err(None)` when only another
    /// event (a response) can make it so.
    fn front_ready(&self, partition: i32, now: Instant) -> Result<(), Option<Instant>> {
        let q = &self.batches[&partition];
        let front = q.front().expect("non-empty deque");
        if front.attempts > 0 {
            return if now >= front.retry_at {
                Ok(())
            } else {
                Err(Some(front.retry_at))
            };
        }
        let full = q.len() > 1
            || self.estimated_batch_bytes(front.records_bytes) >= self.config.batch_size;
        let linger_done = now.since(front.created) >= self.config.linger_ms;
        if full || linger_done || self.blocked.is_some() {
            Ok(())
        } else {
            Err(Some(front.created.plus_ms(self.config.linger_ms)))
        }
    }

    /// In-flight batches of a partition: `(producer, base sequence)` each.
    fn in_flight_of(&self, partition: i32) -> Vec<(Option<(ProducerId, ProducerEpoch)>, i32)> {
        self.in_flight
            .values()
            .flat_map(|r| r.batches.iter())
            .filter(|b| b.partition == partition)
            .map(|b| (b.producer, b.base_sequence.unwrap_or(-1)))
            .collect()
    }

    fn requests_to(&self, broker: BrokerId) -> usize {
        self.in_flight
            .values()
            .chain(self.unconfirmed.values())
            .filter(|r| r.broker == broker)
            .count()
    }

    /// Takes the partition's first batch for a request if it may go now, sequencing it under
    /// idempotence. Fails (and completes) batches past `delivery.timeout.ms` on the way.
    fn take_sendable(
        &mut self,
        partition: i32,
        now: Instant,
        next_check: &mut Option<Instant>,
        out: &mut Effects<ProducerTimer>,
    ) -> Option<Batch> {
        loop {
            let front = self.batches.get(&partition)?.front()?;
            // Delivery timeout (KIP-91), counted from batch creation.
            let deadline = front.created.plus_ms(self.config.delivery_timeout_ms);
            if now >= deadline {
                let batch = self.pop_front(partition);
                let reason = format!(
                    "Expiring {} record(s) for {}:{} ms has passed since batch creation",
                    batch.records.len(),
                    self.tp(partition),
                    now.since(batch.created)
                );
                self.complete_failed(now, batch, &reason, out);
                continue;
            }
            let mut plan = |t: Instant| {
                *next_check = Some(next_check.map_or(t, |c: Instant| c.min(t)));
            };
            plan(deadline);
            // The node is ready (see `drain`); only a retry's backoff holds a batch back.
            let front = self.batches[&partition].front().expect("front");
            if front.attempts > 0 && now < front.retry_at {
                plan(front.retry_at);
                return None;
            }
            let in_flight = self.in_flight_of(partition);
            if !self.idempotent() {
                // guaranteeMessageOrder: max.in.flight=1 mutes the partition meanwhile.
                if self.config.max_in_flight_requests_per_connection == 1 && !in_flight.is_empty() {
                    return None;
                }
                return Some(self.pop_front(partition));
            }
            let current = self.producer;
            let front = self.batches[&partition].front().expect("front");
            if front.producer.is_some() && front.producer != current {
                // Sequenced under a producer id that is gone. Wait for that id's in-flight
                // batches to resolve; then a batch that may have been written is failed
                // (sending it under the new id could append it twice: the broker dedupes per
                // producer id only, KIP-360), and one that certainly was not is re-sequenced.
                if !in_flight.is_empty() {
                    return None;
                }
                if front.indeterminate {
                    let batch = self.pop_front(partition);
                    self.complete_failed(
                        now,
                        batch,
                        "producer id reset; an earlier attempt may have been written",
                        out,
                    );
                    continue;
                }
                let front = self
                    .batches
                    .get_mut(&partition)
                    .and_then(|q| q.front_mut())
                    .expect("front");
                front.producer = None;
                front.base_sequence = None;
                front.encoded = None;
            }
            if in_flight.len() >= MAX_IN_FLIGHT_PER_PARTITION_IDEMPOTENT {
                return None;
            }
            let front = self.batches[&partition].front().expect("front");
            match front.base_sequence {
                None => {
                    // No new batch while batches of an older producer id are in flight: a
                    // sequence 0 under the new id could land before them.
                    if in_flight.iter().any(|(p, _)| *p != current) {
                        return None;
                    }
                    let mut batch = self.pop_front(partition);
                    let seq = self.next_sequence.entry(partition).or_insert(0);
                    batch.base_sequence = Some(*seq);
                    batch.producer = current;
                    batch.encoded = None;
                    *seq = seq.wrapping_add(batch.records.len() as i32);
                    return Some(batch);
                }
                Some(seq) => {
                    // A retry goes only as the lowest unresolved sequence of its partition
                    // (Kafka: "we wait until the next immediate batch is ready and drain
                    // that"), which keeps the log in sequence order.
                    if in_flight.iter().any(|(p, s)| *p == current && *s < seq) {
                        return None;
                    }
                    return Some(self.pop_front(partition));
                }
            }
        }
    }

    fn pop_front(&mut self, partition: i32) -> Batch {
        let q = self.batches.get_mut(&partition).expect("deque");
        let b = q.pop_front().expect("front");
        if q.is_empty() {
            self.batches.remove(&partition);
        }
        b
    }

    /// The Sender: drains sendable batches into one request per leader, while the
    /// connection has room for another in-flight request.
    fn drain(&mut self, now: Instant, out: &mut Effects<ProducerTimer>) {
        if self.reset_pending {
            if !self.in_flight.is_empty() {
                return;
            }
            // KIP-360: every batch of the old producer id is resolved; start a new one.
            self.reset_pending = false;
            self.producer = None;
            self.next_sequence.clear();
        }
        if self.idempotent() && self.producer.is_none() {
            self.init_producer_id(out);
            return;
        }
        let mut need_metadata = false;
        let mut next_check: Option<Instant> = None;
        // Partitions with batches, by leader.
        let mut by_leader: BTreeMap<BrokerId, Vec<i32>> = BTreeMap::new();
        let partitions: Vec<i32> = self.batches.keys().copied().collect();
        for partition in partitions {
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
    }

    /// Encodes a batch for the wire (cached across retries while its producer fields stay).
    fn encode(&mut self, batch: &mut Batch) -> Vec<u8> {
        if let Some(bytes) = &batch.encoded {
            return bytes.clone();
        }
        let records: Vec<(Option<Vec<u8>>, Option<Vec<u8>>)> = batch
            .records
            .iter()
            .map(|r| (r.key_bytes.clone(), Some(r.value_bytes.clone())))
            .collect();
        let mut rb = RecordBatch::new(records, batch.created.as_ms() as i64)
            .with_compression(self.config.compression_type);
        for (rec, r) in rb.records.iter_mut().zip(&batch.records) {
            rec.headers = r.headers.clone();
        }
        if let (Some((pid, epoch)), Some(seq)) = (batch.producer, batch.base_sequence) {
            rb = rb.with_producer(pid, epoch, Sequence(seq));
        }
        let bytes = rb.encode();
        if self.config.compression_type != Compression::None && batch.attempts == 0 {
            // CompressionRatioEstimator.updateEstimation after a batch is closed.
            let observed = (bytes.len() - HEADER_SIZE) as f32 / batch.records_bytes.max(1) as f32;
            let current = self.compression_ratio;
            self.compression_ratio = if observed > current {
                (current + COMPRESSION_RATIO_DETERIORATE_STEP).max(observed)
            } else if observed < current {
                (current - COMPRESSION_RATIO_IMPROVING_STEP).max(observed)
            } else {
                current
            };
        }
        batch.encoded = Some(bytes.clone());
        bytes
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

    /// The callback side of a completed record: interceptors, the workload's history.
    fn record_done(
        &mut self,
        op_type: OpType,
        partition: i32,
        r: &PendingRecord,
        offset: Option<Offset>,
        error: Option<String>,
        out: &mut Effects<ProducerTimer>,
    ) {
        let tp = self.tp(partition);
        let metadata = RecordMetadata {
            tp: tp.clone(),
            offset,
        };
        if !self.interceptors.is_empty() {
            self.intercept_ack(&metadata, error.as_deref(), out);
        }
        if self.awaiting == Some(r.op_id) {
            self.awaiting = None;
        }
        if !r.observed {
            return;
        }
        out.op(ClientOp {
            op_type,
            op_id: r.op_id,
            value: OpValue::Send {
                tp,
                key: r.key.clone(),
                value: r.value,
                offset,
            },
            error,
        });
    }

    fn complete_ok(
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

    fn complete_failed(
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

    /// Puts a batch back for a retry: in sequence order among sequenced batches (Kafka's
    /// `insertInSequenceOrder`), else at the front of its partition's deque.
    fn reenqueue(&mut self, batch: Batch) {
        let q = self.batches.entry(batch.partition).or_default();
        match batch.base_sequence {
            Some(seq) => {
                let pos = q
                    .iter()
                    .position(|b| b.base_sequence.is_none_or(|s| s > seq))
                    .unwrap_or(q.len());
                q.insert(pos, batch);
            }
            None => q.push_front(batch),
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

    /// Whether a batch of `partition` under the current producer id with a lower sequence
    /// than `seq` is still unresolved (in flight or queued for a retry).
    fn earlier_unresolved(&self, partition: i32, seq: i32) -> bool {
        let current = self.producer;
        self.in_flight_of(partition)
            .iter()
            .any(|(p, s)| *p == current && *s < seq)
            || self.batches.get(&partition).is_some_and(|q| {
                q.iter()
                    .any(|b| b.producer == current && b.base_sequence.is_some_and(|s| s < seq))
            })
    }

    fn on_produce_response(
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
    fn fail_request(
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

/// The text of a caught panic payload.
fn panic_text(panic: &Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic".into()
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
                    let at = now.plus_ms(self.config.retry_backoff_ms.max(1));
                    self.wake_at(now, at, out);
                }
            }
            Message::ProduceResponse { corr, partitions } => {
                self.on_produce_response(now, corr, partitions, out)
            }
            _ => {}
        }
    }

    fn on_timeout(&mut self, now: Instant, timer: ProducerTimer, out: &mut Effects<ProducerTimer>) {
        match timer {
            ProducerTimer::Tick => {
                if now.as_ms() < self.workload.stop_at_ms {
                    for _ in 0..self.records_per_tick() {
                        if self.workload_blocked() {
                            break;
                        }
                        self.offer_record(now, out);
                    }
                    out.timer(self.tick_interval_ms(), ProducerTimer::Tick);
                }
            }
            ProducerTimer::Wake { at_ms } => {
                self.wakeups.remove(&at_ms);
                self.drain(now, out);
            }
            ProducerTimer::MaxBlock { op_id } => {
                if self
                    .blocked
                    .as_ref()
                    .is_some_and(|b| b.record.op_id == op_id)
                {
                    // send() throws TimeoutException: the record was never appended.
                    let b = self.blocked.take().expect("blocked");
                    let error = buffer_exhausted_message(self.config.max_block_ms);
                    self.record_done(OpType::Fail, b.partition, &b.record, None, Some(error), out);
                    if !b.record.observed {
                        // Even fire-and-forget sees an exception thrown by send() itself.
                        out.op(ClientOp {
                            op_type: OpType::Fail,
                            op_id: b.record.op_id,
                            value: OpValue::Send {
                                tp: self.tp(b.partition),
                                key: b.record.key.clone(),
                                value: b.record.value,
                                offset: None,
                            },
                            error: Some(buffer_exhausted_message(self.config.max_block_ms)),
                        });
                    }
                }
            }
            ProducerTimer::RequestTimeout { corr } => {
                if self.metadata_in_flight == Some(corr) {
                    self.metadata_in_flight = None;
                    self.request_metadata(out);
                } else if self.init_pid_in_flight == Some(corr) {
                    self.init_pid_in_flight = None;
                    self.drain(now, out);
                } else if let Some(r) = self.in_flight.remove(&corr) {
                    self.fail_request(now, r, "request.timeout.ms expired", true, out);
                    self.drain(now, out);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::effects::Effect;

    fn metadata(corr: CorrelationId) -> Message {
        metadata_n(corr, 2)
    }

    /// A metadata answer for topic `t` with `n` partitions, all led by broker-0.
    fn metadata_n(corr: CorrelationId, n: i32) -> Message {
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
            partitions: (0..n).map(pm).collect(),
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
            send_style: SendStyle::Async,
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
        let md = corr_of(&out.sent()[0]);
        let mut out = Effects::new();
        p.on_message(Instant(1), broker, metadata(md), &mut out);
        let init = corr_of(&out.sent()[0]);
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
            Message::Produce { partitions, .. } => partitions[0].0.partition,
            _ => unreachable!(),
        };
        for t in 3..20 {
            let mut out = Effects::new();
            p.on_timeout(Instant(t), ProducerTimer::Tick, &mut out);
            produces.extend(
                out.sent()
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
            partitions: vec![PartitionProduceResponse {
                tp: TopicPartition::new("t", partition_of(b)),
                error: ErrorCode::OutOfOrderSequenceNumber,
                base_offset: Offset(-1),
                log_start_offset: Offset(0),
            }],
        };
        p.on_message(Instant(31_001), broker, reject, &mut out);
        let reinit = out
            .sent()
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
        // A's partition has no known leader since its timeout; A is failed at once anyway.
        let completed: Vec<OpType> = out.ops().iter().map(|o| o.op_type).collect();
        assert_eq!(completed, vec![OpType::Info], "{:?}", out.ops());
        // After retry.backoff.ms B is due again.
        let mut out = Effects::new();
        p.on_timeout(
            Instant(31_200),
            ProducerTimer::Wake { at_ms: 31_200 },
            &mut out,
        );
        let resent: Vec<i32> = out
            .sent()
            .iter()
            .filter(|m| matches!(m, Message::Produce { .. }))
            .map(partition_of)
            .collect();
        assert_eq!(resent, vec![partition_of(b)]);
        assert!(out.ops().is_empty(), "{:?}", out.ops());
    }

    fn workload(style: SendStyle) -> ProducerWorkload {
        ProducerWorkload {
            topic: "t".into(),
            rate_per_sec: 1000,
            keys: 0,
            stop_at_ms: 1_000_000,
            send_style: style,
        }
    }

    /// A producer that has metadata (2 partitions led by broker 0) and, when idempotent, a
    /// producer id.
    fn started(config: ProducerConfig, style: SendStyle) -> ProducerClient {
        started_n(config, style, 2)
    }

    /// A producer past metadata (topic `t` with `partitions` partitions) and InitProducerId.
    fn started_n(config: ProducerConfig, style: SendStyle, partitions: i32) -> ProducerClient {
        started_with(config, workload(style), partitions)
    }

    /// A producer running `w`, past metadata (topic `t` with `partitions` partitions) and
    /// InitProducerId.
    fn started_with(
        config: ProducerConfig,
        w: ProducerWorkload,
        partitions: i32,
    ) -> ProducerClient {
        let idempotent = config.enable_idempotence;
        let mut p = ProducerClient::new(0, config, w, vec![BrokerId(0)]);
        let broker = NodeId::Broker(BrokerId(0));
        let mut out = Effects::new();
        p.on_start(Instant(0), &mut out);
        let md = corr_of(&out.sent()[0]);
        let mut out = Effects::new();
        p.on_message(Instant(1), broker, metadata_n(md, partitions), &mut out);
        if idempotent {
            let init = corr_of(&out.sent()[0]);
            let mut out = Effects::new();
            let reply = Message::InitProducerIdResponse {
                corr: init,
                error: ErrorCode::None,
                producer_id: ProducerId(7),
                producer_epoch: ProducerEpoch(0),
            };
            p.on_message(Instant(2), broker, reply, &mut out);
        }
        p
    }

    fn tick(p: &mut ProducerClient, t: u64) -> Effects<ProducerTimer> {
        let mut out = Effects::new();
        p.on_timeout(Instant(t), ProducerTimer::Tick, &mut out);
        out
    }

    fn produce_requests(
        out: &Effects<ProducerTimer>,
    ) -> Vec<(CorrelationId, Vec<(i32, RecordBatch)>)> {
        out.sent()
            .into_iter()
            .filter_map(|m| match m {
                Message::Produce {
                    corr, partitions, ..
                } => Some((
                    corr,
                    partitions
                        .into_iter()
                        .map(|(tp, bytes)| (tp.partition, RecordBatch::decode(&bytes).unwrap().0))
                        .collect(),
                )),
                _ => None,
            })
            .collect()
    }

    fn ok_response(corr: CorrelationId, parts: &[(i32, i64)]) -> Message {
        Message::ProduceResponse {
            corr,
            partitions: parts
                .iter()
                .map(|&(p, base)| PartitionProduceResponse {
                    tp: TopicPartition::new("t", p),
                    error: ErrorCode::None,
                    base_offset: Offset(base),
                    log_start_offset: Offset(0),
                })
                .collect(),
        }
    }

    struct Panicky;
    impl ProducerInterceptor for Panicky {
        fn name(&self) -> String {
            "panicky".into()
        }
        fn on_send(&mut self, _record: ProducerRecord) -> Result<ProducerRecord, String> {
            panic!("on_send exploded")
        }
        fn on_acknowledgement(
            &mut self,
            _m: &RecordMetadata,
            _e: Option<&str>,
        ) -> Result<(), String> {
            panic!("on_acknowledgement exploded")
        }
    }

    /// Counts acknowledgements and stamps a header on every record.
    struct Stamp(std::sync::Arc<std::sync::Mutex<Vec<Option<Offset>>>>);
    impl ProducerInterceptor for Stamp {
        fn on_send(&mut self, mut record: ProducerRecord) -> Result<ProducerRecord, String> {
            record.headers.push(("stamp".into(), Some(b"1".to_vec())));
            Ok(record)
        }
        fn on_acknowledgement(
            &mut self,
            m: &RecordMetadata,
            _e: Option<&str>,
        ) -> Result<(), String> {
            self.0.lock().unwrap().push(m.offset);
            Ok(())
        }
    }

    /// A panicking interceptor is caught and reported as an event; the record still goes out
    /// (with the previous interceptor's version) and is acknowledged; later interceptors run.
    #[test]
    fn panicking_interceptor_is_caught_and_logged() {
        let config = ProducerConfig {
            linger_ms: 0,
            ..ProducerConfig::default()
        };
        let mut p = started(config, SendStyle::Async);
        let acks = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        p.add_interceptor(Box::new(Panicky));
        p.add_interceptor(Box::new(Stamp(acks.clone())));
        let out = tick(&mut p, 3);
        let failures: Vec<(String, String, String)> = out
            .list
            .iter()
            .filter_map(|e| match e {
                Effect::Event(Event::InterceptorFailed {
                    interceptor,
                    method,
                    error,
                    ..
                }) => Some((interceptor.clone(), method.clone(), error.clone())),
                _ => None,
            })
            .collect();
        assert_eq!(
            failures,
            vec![("panicky".into(), "onSend".into(), "on_send exploded".into())]
        );
        let reqs = produce_requests(&out);
        assert_eq!(reqs.len(), 1);
        let (corr, parts) = &reqs[0];
        let batch = &parts[0].1;
        assert_eq!(
            batch.records[0].headers,
            vec![("stamp".to_string(), Some(b"1".to_vec()))]
        );
        // The value went through LongSerializer: 8 bytes big-endian.
        assert_eq!(
            batch.records[0].value.as_deref(),
            Some(&((1u64 << 32) | 1).to_be_bytes()[..])
        );
        let mut out = Effects::new();
        p.on_message(
            Instant(4),
            NodeId::Broker(BrokerId(0)),
            ok_response(*corr, &[(parts[0].0, 41)]),
            &mut out,
        );
        let completed: Vec<(OpType, Option<Offset>)> = out
            .ops()
            .iter()
            .map(|o| match &o.value {
                OpValue::Send { offset, .. } => (o.op_type, *offset),
                _ => unreachable!(),
            })
            .collect();
        assert_eq!(completed, vec![(OpType::Ok, Some(Offset(41)))]);
        assert!(out.list.iter().any(|e| matches!(
            e,
            Effect::Event(Event::InterceptorFailed { method, .. }) if method == "onAcknowledgement"
        )));
        assert_eq!(*acks.lock().unwrap(), vec![Some(Offset(41))]);
    }

    /// `interceptor.classes` builds ksim's interceptors: TracingHeader stamps every record,
    /// FailingOnSend's exception is logged (1st, 10th, 100th failure, with the count) and the
    /// record still goes out, as Kafka's `ProducerInterceptors` does.
    #[test]
    fn configured_interceptors_stamp_and_fail_without_failing_sends() {
        let config = ProducerConfig {
            linger_ms: 0,
            interceptor_classes: vec![
                InterceptorClass::FailingOnSend,
                InterceptorClass::TracingHeader,
                InterceptorClass::FailingOnAcknowledgement,
            ],
            ..ProducerConfig::default()
        };
        let mut p = started(config, SendStyle::Async);
        let mut logged = Vec::new();
        let mut first = None;
        for t in 3..3 + 120 {
            let out = tick(&mut p, t);
            for e in out.events() {
                if let Event::InterceptorFailed {
                    interceptor,
                    method,
                    failures,
                    ..
                } = e
                {
                    logged.push((interceptor, method, failures));
                }
            }
            if first.is_none() {
                first = produce_requests(&out).into_iter().next();
            }
        }
        let on_send = |n| {
            (
                "ksim.interceptors.FailingOnSend".to_string(),
                "onSend".to_string(),
                n,
            )
        };
        assert_eq!(logged, vec![on_send(1), on_send(10), on_send(100)]);
        let (corr, parts) = first.expect("a produce request");
        assert_eq!(
            parts[0].1.records[0].headers,
            vec![("ksim-trace".to_string(), Some(b"producer-0/1".to_vec()))]
        );
        let mut out = Effects::new();
        p.on_message(
            Instant(200),
            NodeId::Broker(BrokerId(0)),
            ok_response(corr, &[(parts[0].0, 0)]),
            &mut out,
        );
        assert_eq!(out.ops()[0].op_type, OpType::Ok, "the send still succeeds");
        assert!(out.events().iter().any(|e| matches!(
            e,
            Event::InterceptorFailed { interceptor, method, failures: 1, .. }
                if interceptor == "ksim.interceptors.FailingOnAcknowledgement"
                    && method == "onAcknowledgement"
        )));
    }

    /// `key.serializer` decides the bytes murmur2 hashes: `StringSerializer` writes `k{n}`,
    /// `IntegerSerializer` and `LongSerializer` the number `n` in 4 or 8 bytes; and
    /// `value.serializer = StringSerializer` writes the value's decimal digits.
    #[test]
    fn serializers_decide_key_bytes_partition_and_value_bytes() {
        let expected = |class: SerdeClass, n: u64| -> Vec<u8> {
            match class {
                SerdeClass::String => format!("k{n}").into_bytes(),
                SerdeClass::Integer => (n as i32).to_be_bytes().to_vec(),
                SerdeClass::Long => (n as i64).to_be_bytes().to_vec(),
            }
        };
        for class in [SerdeClass::String, SerdeClass::Integer, SerdeClass::Long] {
            let config = ProducerConfig {
                linger_ms: 0,
                key_serializer: class,
                value_serializer: SerdeClass::String,
                ..ProducerConfig::default()
            };
            let keyed = ProducerWorkload {
                keys: 8,
                ..workload(SendStyle::Async)
            };
            let mut p = started_with(config, keyed, 8);
            let out = tick(&mut p, 3);
            let (_, parts) = produce_requests(&out).pop().expect("a produce request");
            let (partition, batch) = &parts[0];
            // The first record is value 1, key number 1.
            let key = expected(class, 1);
            assert_eq!(batch.records[0].key.as_deref(), Some(&key[..]), "{class:?}");
            assert_eq!(*partition, partition_for_key(&key, 8), "{class:?}");
            assert_eq!(
                batch.records[0].value.as_deref(),
                Some(((1u64 << 32) | 1).to_string().as_bytes()),
                "{class:?}"
            );
        }
        // The three serializers put key number 1 on different partitions of 8.
        let parts: BTreeSet<i32> = [SerdeClass::String, SerdeClass::Integer, SerdeClass::Long]
            .into_iter()
            .map(|c| partition_for_key(&expected(c, 1), 8))
            .collect();
        assert!(parts.len() > 1, "{parts:?}");
    }

    /// A key a numeric serializer cannot take fails the send with Kafka's
    /// SerializationException text; nothing is appended.
    #[test]
    fn unserializable_key_fails_the_send() {
        struct RenameKey;
        impl ProducerInterceptor for RenameKey {
            fn on_send(&mut self, mut r: ProducerRecord) -> Result<ProducerRecord, String> {
                r.key = Some("not-a-number".into());
                Ok(r)
            }
            fn on_acknowledgement(
                &mut self,
                _m: &RecordMetadata,
                _e: Option<&str>,
            ) -> Result<(), String> {
                Ok(())
            }
        }
        let config = ProducerConfig {
            linger_ms: 0,
            key_serializer: SerdeClass::Long,
            ..ProducerConfig::default()
        };
        let mut p = ProducerClient::new(
            0,
            config.clone(),
            ProducerWorkload {
                keys: 8,
                ..workload(SendStyle::Async)
            },
            vec![BrokerId(0)],
        );
        p.add_interceptor(Box::new(RenameKey));
        let broker = NodeId::Broker(BrokerId(0));
        let mut out = Effects::new();
        p.on_start(Instant(0), &mut out);
        let md = corr_of(&out.sent()[0]);
        let mut out = Effects::new();
        p.on_message(Instant(1), broker, metadata_n(md, 2), &mut out);
        let out = tick(&mut p, 3);
        let ops = out.ops();
        assert_eq!(ops.len(), 2);
        assert_eq!(ops[1].op_type, OpType::Fail);
        assert_eq!(
            ops[1].error.as_deref(),
            Some(
                "SerializationException: Can't convert key of class java.lang.String to class \
                 org.apache.kafka.common.serialization.LongSerializer specified in key.serializer"
            )
        );
        assert!(produce_requests(&out).is_empty());
    }

    /// Ready batches of several partitions led by one broker travel in one Produce request;
    /// batches wait for linger.ms; records gather in the partition's last batch.
    #[test]
    fn sender_groups_ready_batches_per_broker_after_linger() {
        let config = ProducerConfig {
            linger_ms: 10,
            ..ProducerConfig::default()
        };
        let mut p = ProducerClient::new(
            0,
            config,
            ProducerWorkload {
                keys: 8,
                ..workload(SendStyle::Async)
            },
            vec![BrokerId(0)],
        );
        let broker = NodeId::Broker(BrokerId(0));
        let mut out = Effects::new();
        p.on_start(Instant(0), &mut out);
        let md = corr_of(&out.sent()[0]);
        let mut out = Effects::new();
        p.on_message(Instant(1), broker, metadata(md), &mut out);
        let init = corr_of(&out.sent()[0]);
        let mut out = Effects::new();
        let reply = Message::InitProducerIdResponse {
            corr: init,
            error: ErrorCode::None,
            producer_id: ProducerId(7),
            producer_epoch: ProducerEpoch(0),
        };
        p.on_message(Instant(2), broker, reply, &mut out);
        let mut sent = Vec::new();
        let mut offered = std::collections::BTreeSet::new();
        for t in 3..=8 {
            let out = tick(&mut p, t);
            for o in out.ops() {
                if let OpValue::Send { tp, .. } = o.value {
                    offered.insert(tp.partition);
                }
            }
            sent.extend(produce_requests(&out));
        }
        assert!(sent.is_empty(), "nothing before linger.ms: {sent:?}");
        // Wake at 13 (first batch created at 3 + linger 10).
        let mut out = Effects::new();
        p.on_timeout(Instant(13), ProducerTimer::Wake { at_ms: 13 }, &mut out);
        let reqs = produce_requests(&out);
        assert_eq!(reqs.len(), 1, "one request for the broker: {reqs:?}");
        let parts: Vec<i32> = reqs[0].1.iter().map(|(p, _)| *p).collect();
        assert_eq!(parts, offered.into_iter().collect::<Vec<_>>());
        assert_eq!(parts.len(), 2, "keys k1..k6 land on both partitions");
        let records: usize = reqs[0].1.iter().map(|(_, b)| b.records.len()).sum();
        assert_eq!(records, 6);
        // Sequences start at 0 on each partition.
        for (_, b) in &reqs[0].1 {
            assert_eq!(b.base_sequence, Sequence(0));
            assert_eq!(b.producer_id, ProducerId(7));
        }
    }

    /// With idempotence up to 5 batches of one partition are in flight; a batch sent back for
    /// a retry waits until it is the lowest unresolved sequence; an OUT_OF_ORDER_SEQUENCE_NUMBER
    /// caused by an earlier failed batch is retried without resetting the producer id.
    #[test]
    fn idempotent_pipeline_keeps_sequence_order_on_retries() {
        let config = ProducerConfig {
            linger_ms: 0,
            partitioner_ignore_keys: true,
            ..ProducerConfig::default()
        };
        // One partition: every null-key record goes to partition 0.
        let mut p = started_n(config, SendStyle::Async, 1);
        let mut reqs = Vec::new();
        for t in 3..=12 {
            reqs.extend(produce_requests(&tick(&mut p, t)));
        }
        assert_eq!(reqs.len(), 5, "five in flight on partition 0: {reqs:?}");
        let seqs: Vec<i32> = reqs.iter().map(|(_, b)| b[0].1.base_sequence.0).collect();
        assert_eq!(seqs, vec![0, 1, 2, 3, 4]);
        let broker = NodeId::Broker(BrokerId(0));
        // Batch 0 fails with NOT_LEADER (not written); batch 1 then gets OUT_OF_ORDER.
        let reject = |corr, error| Message::ProduceResponse {
            corr,
            partitions: vec![PartitionProduceResponse {
                tp: TopicPartition::new("t", 0),
                error,
                base_offset: Offset(-1),
                log_start_offset: Offset(0),
            }],
        };
        let mut out = Effects::new();
        p.on_message(
            Instant(13),
            broker,
            reject(reqs[0].0, ErrorCode::NotEnoughReplicas),
            &mut out,
        );
        let mut out = Effects::new();
        p.on_message(
            Instant(14),
            broker,
            reject(reqs[1].0, ErrorCode::OutOfOrderSequenceNumber),
            &mut out,
        );
        assert!(
            !p.reset_pending,
            "a consequence of batch 0, not a lost producer state"
        );
        assert!(!out
            .sent()
            .iter()
            .any(|m| matches!(m, Message::InitProducerId { .. })),);
        // After the backoff only batch 0 (the lowest unresolved) goes again, not batch 1.
        let mut out = Effects::new();
        p.on_timeout(Instant(200), ProducerTimer::Wake { at_ms: 200 }, &mut out);
        let again: Vec<i32> = produce_requests(&out)
            .iter()
            .map(|(_, b)| b[0].1.base_sequence.0)
            .collect();
        assert_eq!(again, vec![0]);
    }

    /// buffer.memory full: send blocks (the workload offers nothing) and fails after
    /// max.block.ms with Kafka's text; memory returns when a batch completes.
    #[test]
    fn exhausted_buffer_blocks_send_then_times_out() {
        let config = ProducerConfig {
            linger_ms: 0,
            batch_size: 1024,
            buffer_memory: 2048,
            max_block_ms: 100,
            ..ProducerConfig::default()
        };
        let mut p = started(config, SendStyle::Async);
        let r1 = produce_requests(&tick(&mut p, 3));
        let r2 = produce_requests(&tick(&mut p, 4));
        assert_eq!((r1.len(), r2.len()), (1, 1));
        assert_eq!(p.buffer_available_bytes(), 0);
        // The third send blocks: no invoke completes, the next ticks offer nothing.
        let out = tick(&mut p, 5);
        assert!(produce_requests(&out).is_empty());
        let invokes = |out: &Effects<ProducerTimer>| {
            out.ops()
                .iter()
                .filter(|o| o.op_type == OpType::Invoke)
                .count()
        };
        assert_eq!(invokes(&out), 1);
        assert_eq!(
            invokes(&tick(&mut p, 6)),
            0,
            "the workload thread is blocked"
        );
        let mut out = Effects::new();
        p.on_timeout(Instant(105), ProducerTimer::MaxBlock { op_id: 3 }, &mut out);
        let failed = out.ops();
        assert_eq!(failed.len(), 1);
        assert_eq!(failed[0].op_type, OpType::Fail);
        assert_eq!(
            failed[0].error.as_deref(),
            Some("Failed to allocate memory within the configured max blocking time 100 ms.")
        );
        // A completed batch gives its memory back; sends go on.
        let mut out = Effects::new();
        p.on_message(
            Instant(106),
            NodeId::Broker(BrokerId(0)),
            ok_response(r1[0].0, &[(r1[0].1[0].0, 0)]),
            &mut out,
        );
        assert_eq!(p.buffer_available_bytes(), 1024);
        assert_eq!(invokes(&tick(&mut p, 107)), 1);
    }

    /// Sync waits for each outcome before the next send; fire-and-forget records `info` at
    /// once and nothing when the ack comes.
    #[test]
    fn send_styles() {
        let config = ProducerConfig {
            linger_ms: 0,
            ..ProducerConfig::default()
        };
        let mut p = started(config.clone(), SendStyle::Sync);
        let out = tick(&mut p, 3);
        let r = produce_requests(&out);
        assert_eq!(r.len(), 1);
        assert!(
            tick(&mut p, 4).ops().is_empty(),
            "sync: blocked on the first get()"
        );
        let mut out = Effects::new();
        p.on_message(
            Instant(5),
            NodeId::Broker(BrokerId(0)),
            ok_response(r[0].0, &[(r[0].1[0].0, 0)]),
            &mut out,
        );
        assert_eq!(out.ops()[0].op_type, OpType::Ok);
        assert_eq!(tick(&mut p, 6).ops()[0].op_type, OpType::Invoke);

        let mut p = started(config, SendStyle::FireAndForget);
        let out = tick(&mut p, 3);
        let types: Vec<OpType> = out.ops().iter().map(|o| o.op_type).collect();
        assert_eq!(types, vec![OpType::Invoke, OpType::Info]);
        let r = produce_requests(&out);
        let mut out = Effects::new();
        p.on_message(
            Instant(5),
            NodeId::Broker(BrokerId(0)),
            ok_response(r[0].0, &[(r[0].1[0].0, 0)]),
            &mut out,
        );
        assert!(out.ops().is_empty(), "nobody looks at the outcome");
        assert_eq!(tick(&mut p, 6).ops()[0].op_type, OpType::Invoke);
    }

    /// compression.type: batches go out compressed in the attribute bits and decode back.
    #[test]
    fn batches_are_compressed_with_the_configured_codec() {
        for codec in Compression::ALL {
            let config = ProducerConfig {
                linger_ms: 0,
                compression_type: codec,
                ..ProducerConfig::default()
            };
            let mut p = started(config, SendStyle::Async);
            let out = tick(&mut p, 3);
            let Message::Produce { partitions, .. } = &out.sent()[0] else {
                panic!("a produce")
            };
            let h = crate::record::read_header(&partitions[0].1).unwrap();
            assert_eq!(h.compression(), codec.id());
            let (b, _) = RecordBatch::decode(&partitions[0].1).unwrap();
            assert_eq!(b.records.len(), 1);
        }
    }

    #[test]
    fn serializers_match_kafka() {
        assert_eq!(
            Serializer::<str>::serialize(&StringSerializer, "t", "k1"),
            Ok(b"k1".to_vec())
        );
        assert_eq!(
            Serializer::<u64>::serialize(&StringSerializer, "t", &258),
            Ok(b"258".to_vec())
        );
        assert_eq!(
            Serializer::<i64>::serialize(&LongSerializer, "t", &-2),
            Ok(vec![0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe])
        );
        assert_eq!(
            Serializer::<u64>::serialize(&LongSerializer, "t", &258),
            Ok(vec![0, 0, 0, 0, 0, 0, 1, 2])
        );
        assert_eq!(IntegerSerializer.serialize("t", &258), Ok(vec![0, 0, 1, 2]));
        assert_eq!(
            ByteArraySerializer.serialize("t", &[1, 2][..]),
            Ok(vec![1, 2])
        );
        assert_eq!(
            NumericKeySerializer(SerdeClass::Integer).serialize("t", "258"),
            Ok(vec![0, 0, 1, 2])
        );
        assert_eq!(SendStyle::parse("sync"), Some(SendStyle::Sync));
        assert_eq!(SendStyle::parse("blocking"), None);
        for n in SendStyle::NAMES {
            assert_eq!(SendStyle::parse(n).unwrap().name(), *n);
        }
    }

    /// KIP-480: null-key records stick to one partition while they fill its open batch, and
    /// move, at random among the partitions with a leader, only when a record would open a
    /// new batch there; the choice is the same on every replay of the partitioner seed.
    #[test]
    fn sticky_partitioner_switches_only_when_a_new_batch_is_opened() {
        let run = |seed: u64| {
            let config = ProducerConfig {
                linger_ms: 1_000,
                batch_size: 200,
                enable_idempotence: false,
                ..ProducerConfig::default()
            };
            let mut p =
                ProducerClient::new(0, config, workload(SendStyle::Async), vec![BrokerId(0)])
                    .with_partitioner_seed(seed);
            let broker = NodeId::Broker(BrokerId(0));
            let mut out = Effects::new();
            p.on_start(Instant(0), &mut out);
            let md = corr_of(&out.sent()[0]);
            let mut out = Effects::new();
            p.on_message(Instant(1), broker, metadata_n(md, 6), &mut out);
            let mut sends = Vec::new();
            for t in 3..=40 {
                for op in tick(&mut p, t).ops() {
                    if let (OpType::Invoke, OpValue::Send { tp, .. }) = (op.op_type, &op.value) {
                        sends.push(tp.partition);
                    }
                }
            }
            sends
        };
        let a = run(1);
        assert!(a.len() > 20, "{a:?}");
        // Runs of one partition, each the size of one batch (batch.size 200 holds several
        // records), and consecutive runs on different partitions.
        let mut runs: Vec<(i32, usize)> = Vec::new();
        for p in &a {
            match runs.last_mut() {
                Some((q, n)) if q == p => *n += 1,
                _ => runs.push((*p, 1)),
            }
        }
        assert!(runs.len() >= 3, "{runs:?}");
        assert!(
            runs.iter().all(|(_, n)| *n > 1),
            "a batch holds several records: {runs:?}"
        );
        assert!(runs.windows(2).all(|w| w[0].0 != w[1].0), "{runs:?}");
        let distinct: BTreeSet<i32> = a.iter().copied().collect();
        assert!(
            distinct.len() >= 3,
            "random choice spreads over partitions: {runs:?}"
        );
        assert_eq!(a, run(1), "same seed, same choices");
        assert_ne!(a, run(2), "another seed chooses differently");
    }
}
