//! `KafkaProducer.send()` as the workload calls it (`KafkaProducer.doSend`): the record goes
//! through the interceptors, the serializers and the partitioner into the accumulator
//! (steps 1 to 4 of the pipeline in [`super`]), and its outcome comes back through the
//! callback (`ProducerBatch.done` calling the interceptors' `onAcknowledgement` and the
//! workload's callback), in the [`SendStyle`] the workload uses.

use super::accumulator::PendingRecord;
use super::partitioner::partition_for_key;
use super::serializers::workload_key;
use super::{ProducerClient, ProducerRecord, ProducerTimer, RecordMetadata};
use crate::effects::Effects;
use crate::event::{ClientOp, OpType, OpValue};
use crate::types::*;
use rand::RngCore;

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
    /// The topics written, at least one (SCENARIOS.md `[[producers]] topic` or `topics`).
    /// Record `n` of the client (counting from 0, per process) goes to topic `n % len`, and
    /// within it to the partition Kafka's partitioner chooses; so consecutive records, and a
    /// transaction of at least `len` records, spread over every topic. An application
    /// ([`ProducerClient::send_record`]) writes to the first.
    pub topics: Vec<String>,
    /// Records offered per simulated second.
    pub rate_per_sec: u32,
    /// Distinct keys (`0`: null keys).
    pub keys: u32,
    /// Stop offering new records at this time (ms); outstanding ones keep retrying.
    pub stop_at_ms: u64,
    /// How `send` is called.
    pub send_style: SendStyle,
}

impl ProducerClient {
    pub(super) fn workload_blocked(&self) -> bool {
        self.blocked.is_some()
            || (self.workload.send_style == SendStyle::Sync && self.awaiting.is_some())
    }

    /// The workload calls `send` once.
    pub(super) fn offer_record(&mut self, now: Instant, out: &mut Effects<ProducerTimer>) {
        let topic_index = (self.next_value % self.workload.topics.len() as u64) as usize;
        if self.partitions_of(topic_index) == 0 {
            return; // Kafka's send() would block on metadata; the workload waits instead.
        }
        self.next_value += 1;
        // Unique across the producer's processes: a restarted process (`incarnation` > 0) never
        // offers a value an earlier one did.
        let value = (self.incarnation << 48) | ((self.index as u64 + 1) << 32) | self.next_value;
        let key = if self.workload.keys == 0 {
            None
        } else {
            Some(workload_key(
                self.next_value % self.workload.keys as u64,
                self.config.key_serializer,
            ))
        };
        self.offer(now, topic_index, key, value, out);
    }

    /// Whether the application may call [`Self::send_record`] now: the output topic's
    /// partitions are known (Kafka's `send` would block on metadata otherwise) and `send` is not
    /// blocked on `buffer.memory`.
    pub fn can_send(&self) -> bool {
        self.metadata_known() && !self.workload_blocked()
    }

    /// The application (a processor, [`crate::processor`]) calls `send(record, callback)` with
    /// its own key and value; returns the send's op id (its outcome is the `send` operation's
    /// completion, or inside a transaction the micro-operation's offset). Panics unless
    /// [`Self::can_send`].
    pub fn send_record(
        &mut self,
        now: Instant,
        key: Option<String>,
        value: u64,
        out: &mut Effects<ProducerTimer>,
    ) -> u64 {
        assert!(
            self.can_send(),
            "producer-{}: send without metadata",
            self.index
        );
        self.offer(now, 0, key, value, out);
        self.next_op
    }

    /// `send` of one record to the workload's topic number `topic_index`.
    fn offer(
        &mut self,
        now: Instant,
        topic_index: usize,
        key: Option<String>,
        value: u64,
        out: &mut Effects<ProducerTimer>,
    ) {
        let partitions = self.partitions_of(topic_index);
        let record = ProducerRecord {
            topic: self.workload.topics[topic_index].clone(),
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
                self.serialization_failed(record, topic_index, partitions, message, out);
                return;
            }
        };
        let record_bytes = PendingRecord::encoded_size(&key_bytes, &value_bytes, &record.headers);
        let partition = match record.partition {
            Some(p) if (0..partitions).contains(&p) => p,
            _ => self.choose_partition(topic_index, &key_bytes, record_bytes, partitions),
        };
        let partition = self.slot(topic_index, partition);
        self.next_op += 1;
        let op_id = self.next_op;
        let tp = self.tp(partition);
        if let Some(t) = self.txn.as_mut() {
            // Inside a transaction the send is a micro-operation of the `txn` op.
            t.record_offered(op_id, tp, record.key.clone(), record.value);
        } else {
            out.op(ClientOp {
                op_type: OpType::Invoke,
                op_id,
                value: OpValue::Send {
                    tp,
                    key: record.key.clone(),
                    value: record.value,
                    offset: None,
                },
                error: None,
            });
        }
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
        topic_index: usize,
        partitions: i32,
        message: String,
        out: &mut Effects<ProducerTimer>,
    ) {
        let partition = record
            .partition
            .filter(|p| (0..partitions).contains(p))
            .unwrap_or(0);
        let partition = self.slot(topic_index, partition);
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

    /// The partition of a record without an explicit one: murmur2 of the key, else (null key,
    /// or `partitioner.ignore.keys`) KIP-480's sticky partition. As in Kafka's
    /// `KafkaProducer.doSend`, when the record would open a new batch on the sticky partition
    /// (`RecordAccumulator.append` with `abortOnNewBatch`), the partitioner is told
    /// (`onNewBatch`) and picks another partition at random, preferring partitions with a
    /// known leader; the record goes there.
    /// Returns the partition within the topic (not the slot); each topic has its own sticky
    /// partition (Kafka keeps one `BuiltInPartitioner` per topic).
    fn choose_partition(
        &mut self,
        topic_index: usize,
        key: &Option<Vec<u8>>,
        record_bytes: u32,
        partitions: i32,
    ) -> i32 {
        match key {
            Some(k) if !self.config.partitioner_ignore_keys => partition_for_key(k, partitions),
            _ => {
                let random = self.partitioner_rng.next_u64();
                let p = self.sticky[topic_index].next_partition(partitions, random);
                if !self.opens_new_batch(self.slot(topic_index, p), record_bytes) {
                    return p;
                }
                let n = self.workload.topics.len() as i32;
                let available: Vec<i32> = self
                    .leaders
                    .iter()
                    .filter(|(s, l)| l.is_some() && **s % n == topic_index as i32)
                    .map(|(s, _)| *s / n)
                    .filter(|q| *q < partitions)
                    .collect();
                let random = self.partitioner_rng.next_u64();
                self.sticky[topic_index].on_new_batch_among(p, partitions, &available, random)
            }
        }
    }

    /// Fire-and-forget: `send` returned and nobody will look at the outcome, so the history
    /// can only say `info` (it may or may not be written).
    pub(super) fn send_returned_unobserved(
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
    pub(super) fn workload_resumed(&mut self, now: Instant, out: &mut Effects<ProducerTimer>) {
        self.wake_at(now, now, out);
    }

    /// The callback side of a completed record: interceptors, the workload's history.
    pub(super) fn record_done(
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
        if let Some(t) = self.txn.as_mut() {
            let result = match op_type {
                OpType::Ok => Ok(offset),
                _ => Err(error.unwrap_or_else(|| "send failed".into())),
            };
            t.record_done(r.op_id, result);
            return;
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
}
