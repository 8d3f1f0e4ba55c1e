//! Kafka's `RecordAccumulator` (with its `BufferPool` and `CompressionRatioEstimator`): a
//! deque of batches (`ProducerBatch`) per partition that records are appended to under
//! `batch.size`, memory taken from `buffer.memory` (a `send` blocks for up to `max.block.ms`
//! when there is none), `ready` (a partition's first batch is full, has lingered `linger.ms`,
//! or a retry's backoff passed) and the per-partition part of `drain` that takes a batch for
//! a request, sequencing it under idempotence (steps 4 and 5 of the pipeline in [`super`]).

use super::{ProducerClient, ProducerTimer, MAX_IN_FLIGHT_PER_PARTITION_IDEMPOTENT};
use crate::effects::Effects;
use crate::event::{ClientOp, OpType, OpValue};
use crate::record::{Compression, RecordBatch, HEADER_SIZE};
use crate::types::*;

/// Kafka's `BufferPool` timeout text (`max.block.ms` passed while waiting for memory).
pub fn buffer_exhausted_message(max_block_ms: u64) -> String {
    format!("Failed to allocate memory within the configured max blocking time {max_block_ms} ms.")
}

/// Kafka's `CompressionRatioEstimator` steps and its safety factor for batch-size estimates.
const COMPRESSION_RATIO_IMPROVING_STEP: f32 = 0.005;
const COMPRESSION_RATIO_DETERIORATE_STEP: f32 = 0.05;
const COMPRESSION_RATE_ESTIMATION_FACTOR: f32 = 1.05;

#[derive(Debug, Clone)]
pub(super) struct PendingRecord {
    pub(super) op_id: u64,
    pub(super) key: Option<String>,
    pub(super) value: u64,
    pub(super) key_bytes: Option<Vec<u8>>,
    pub(super) value_bytes: Vec<u8>,
    pub(super) headers: Vec<(String, Option<Vec<u8>>)>,
    /// Someone records this send's outcome (not fire-and-forget).
    pub(super) observed: bool,
}

impl PendingRecord {
    /// Bytes the record adds to a batch's records section (Kafka's `DefaultRecord` size, with
    /// one-byte varints: length, attributes, timestamp and offset deltas, key and value
    /// lengths, header count).
    fn size_bytes(&self) -> u32 {
        Self::encoded_size(&self.key_bytes, &self.value_bytes, &self.headers)
    }

    /// The size a record with these serialized parts takes in a batch's records section.
    pub(super) fn encoded_size(
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
pub(super) struct Batch {
    /// The partition's slot (`ProducerClient::tp` maps it to its topic-partition).
    pub(super) partition: i32,
    pub(super) records: Vec<PendingRecord>,
    /// Uncompressed size of the records section.
    pub(super) records_bytes: u32,
    /// Bytes taken from `buffer.memory` for this batch (returned when it completes).
    pub(super) allocated_bytes: u64,
    pub(super) created: Instant,
    /// Assigned on first send when idempotent.
    pub(super) base_sequence: Option<i32>,
    pub(super) producer: Option<(ProducerId, ProducerEpoch)>,
    pub(super) attempts: u32,
    /// Some attempt may have been written.
    pub(super) indeterminate: bool,
    pub(super) last_error: Option<String>,
    pub(super) retry_at: Instant,
    /// The encoded batch for the current producer fields (cleared when they change).
    pub(super) encoded: Option<Vec<u8>>,
}

/// A `send` waiting for `buffer.memory`.
#[derive(Debug, Clone)]
pub(super) struct BlockedSend {
    /// The partition's slot (see `Batch::partition`).
    pub(super) partition: i32,
    pub(super) record: PendingRecord,
}

impl ProducerClient {
    /// Whether appending `record_bytes` to `partition` would open a new batch: there is no
    /// unsent batch to append to, or the last one has no room (the same test as `append`).
    pub(super) fn opens_new_batch(&self, partition: i32, record_bytes: u32) -> bool {
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
    pub(super) fn append(
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
    pub(super) fn release(
        &mut self,
        batch: &Batch,
        now: Instant,
        out: &mut Effects<ProducerTimer>,
    ) {
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

    /// Kafka's `RecordAccumulator.ready` for one partition's first batch: `Ok(())` when it may
    /// be drained now, `Err(Some(t))` when it will be at `t`, `Err(None)` when only another
    /// event (a response) can make it so.
    pub(super) fn front_ready(&self, partition: i32, now: Instant) -> Result<(), Option<Instant>> {
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
        let flushing = self.txn.as_ref().is_some_and(|t| t.flushing());
        if full || linger_done || self.blocked.is_some() || flushing {
            Ok(())
        } else {
            Err(Some(front.created.plus_ms(self.config.linger_ms)))
        }
    }

    /// Takes the partition's first batch for a request if it may go now, sequencing it under
    /// idempotence. Fails (and completes) batches past `delivery.timeout.ms` on the way.
    pub(super) fn take_sendable(
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

    pub(super) fn pop_front(&mut self, partition: i32) -> Batch {
        let q = self.batches.get_mut(&partition).expect("deque");
        let b = q.pop_front().expect("front");
        if q.is_empty() {
            self.batches.remove(&partition);
        }
        b
    }

    /// Puts a batch back for a retry: in sequence order among sequenced batches (Kafka's
    /// `insertInSequenceOrder`), else at the front of its partition's deque.
    pub(super) fn reenqueue(&mut self, batch: Batch) {
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

    /// Encodes a batch for the wire (cached across retries while its producer fields stay).
    pub(super) fn encode(&mut self, batch: &mut Batch) -> Vec<u8> {
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
        rb = rb.with_transactional(self.transactional());
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

    /// `max.block.ms` passed for the `send` blocked on `buffer.memory` (`BufferPool.allocate`).
    pub(super) fn on_max_block_timeout(&mut self, op_id: u64, out: &mut Effects<ProducerTimer>) {
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
}
