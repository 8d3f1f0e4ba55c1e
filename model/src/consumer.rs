//! A consumer client in *assign* mode (no group): it owns every partition of its topics and
//! polls them continuously, as `KafkaConsumer.assign()` + `poll()` does.
//!
//! * Positions start from `auto.offset.reset` (`earliest`: the log start offset, `latest`: the
//!   high watermark, `none`: an error) via ListOffsets, and again when a fetch answers
//!   OFFSET_OUT_OF_RANGE.
//! * Fetches go to each partition's leader with `fetch.max.wait.ms` / `fetch.min.bytes`
//!   (a long poll held by the broker) and `max.partition.fetch.bytes`; with
//!   `read_uncommitted` the leader returns records below its high watermark only.
//! * Fetched records wait in a buffer; every poll returns at most `max.poll.records`.
//!
//! Each non-empty poll is one Jepsen operation (`invoke`, then `ok` with the records in the
//! order returned). Empty polls are not recorded.

use crate::config::{AutoOffsetReset, ConsumerConfig};
use crate::effects::{Actor, Effects};
use crate::event::{ClientOp, OpType, OpValue, PolledRecord};
use crate::protocol::*;
use crate::record::RecordBatch;
use crate::types::*;
use std::collections::{BTreeMap, VecDeque};

/// How often the application calls `poll()`, in simulated ms.
pub const POLL_INTERVAL_MS: u64 = 50;

/// Timers of a consumer.
#[derive(Debug, Clone, PartialEq)]
pub enum ConsumerTimer {
    Poll,
    RequestTimeout {
        corr: CorrelationId,
    },
    MetadataRefresh,
    MetadataRetry,
    /// Retry a partition's fetch after a backoff.
    Refetch {
        tp: TopicPartition,
    },
}

#[derive(Debug, Clone)]
enum Pending {
    Metadata,
    ListOffsets(TopicPartition),
    Fetch(TopicPartition),
}

#[derive(Debug, Clone)]
struct PartitionFetchState {
    leader: Option<BrokerId>,
    leader_epoch: LeaderEpoch,
    /// `None`: needs a reset by `auto.offset.reset`.
    position: Option<Offset>,
    in_flight: Option<CorrelationId>,
}

/// A consumer client process.
#[derive(Debug)]
pub struct ConsumerClient {
    pub index: u32,
    config: ConsumerConfig,
    topics: Vec<String>,
    bootstrap: Vec<BrokerId>,
    next_bootstrap: usize,
    partitions: BTreeMap<TopicPartition, PartitionFetchState>,
    pending: BTreeMap<CorrelationId, (Pending, NodeId)>,
    metadata_in_flight: bool,
    buffer: VecDeque<PolledRecord>,
    next_corr: u64,
    next_op: u64,
}

impl ConsumerClient {
    pub fn new(
        index: u32,
        config: ConsumerConfig,
        topics: Vec<String>,
        bootstrap: Vec<BrokerId>,
    ) -> Self {
        ConsumerClient {
            index,
            config,
            topics,
            bootstrap,
            next_bootstrap: index as usize,
            partitions: BTreeMap::new(),
            pending: BTreeMap::new(),
            metadata_in_flight: false,
            buffer: VecDeque::new(),
            next_corr: 0,
            next_op: 0,
        }
    }

    /// The next offset to fetch for each assigned partition (`None`: not yet reset).
    pub fn positions(&self) -> BTreeMap<TopicPartition, Option<Offset>> {
        self.partitions
            .iter()
            .map(|(tp, s)| (tp.clone(), s.position))
            .collect()
    }

    fn send(
        &mut self,
        to: BrokerId,
        msg_for: impl FnOnce(CorrelationId) -> Message,
        what: Pending,
        out: &mut Effects<ConsumerTimer>,
    ) -> CorrelationId {
        self.next_corr += 1;
        let corr = CorrelationId(self.next_corr);
        out.send(NodeId::Broker(to), msg_for(corr));
        self.pending.insert(corr, (what, NodeId::Broker(to)));
        out.timer(
            self.config.request_timeout_ms + self.config.fetch_max_wait_ms,
            ConsumerTimer::RequestTimeout { corr },
        );
        corr
    }

    fn request_metadata(&mut self, out: &mut Effects<ConsumerTimer>) {
        if self.metadata_in_flight || self.bootstrap.is_empty() {
            return;
        }
        let b = self.bootstrap[self.next_bootstrap % self.bootstrap.len()];
        self.next_bootstrap += 1;
        self.metadata_in_flight = true;
        let topics = self.topics.clone();
        self.send(
            b,
            |corr| Message::Metadata { corr, topics },
            Pending::Metadata,
            out,
        );
    }

    fn fetch_all(&mut self, out: &mut Effects<ConsumerTimer>) {
        let tps: Vec<TopicPartition> = self.partitions.keys().cloned().collect();
        for tp in tps {
            self.fetch_one(&tp, out);
        }
    }

    fn fetch_one(&mut self, tp: &TopicPartition, out: &mut Effects<ConsumerTimer>) {
        let Some(s) = self.partitions.get(tp).cloned() else {
            return;
        };
        if s.in_flight.is_some() {
            return;
        }
        let Some(leader) = s.leader else {
            self.request_metadata(out);
            return;
        };
        // Do not fetch more while the application has a backlog to poll.
        if self.buffer.len() >= 4 * self.config.max_poll_records as usize {
            return;
        }
        let tp2 = tp.clone();
        let corr = match s.position {
            None => {
                let timestamp = match self.config.auto_offset_reset {
                    AutoOffsetReset::Earliest => -2,
                    AutoOffsetReset::Latest => -1,
                    AutoOffsetReset::None => {
                        // NoOffsetForPartitionException: record the failed poll once.
                        self.next_op += 1;
                        let op_id = self.next_op;
                        out.op(ClientOp {
                            op_type: OpType::Invoke,
                            op_id,
                            value: OpValue::Poll { records: vec![] },
                            error: None,
                        });
                        out.op(ClientOp {
                            op_type: OpType::Fail,
                            op_id,
                            value: OpValue::Poll { records: vec![] },
                            error: Some(format!("NoOffsetForPartitionException: undefined offset with no reset policy for partition: {tp}")),
                        });
                        return;
                    }
                };
                let epoch = s.leader_epoch;
                let isolation = self.config.isolation_level;
                self.send(
                    leader,
                    |corr| Message::ListOffsets {
                        corr,
                        tp: tp2,
                        timestamp,
                        current_leader_epoch: epoch,
                        isolation_level: isolation,
                    },
                    Pending::ListOffsets(tp.clone()),
                    out,
                )
            }
            Some(position) => {
                let cfg = self.config.clone();
                let epoch = s.leader_epoch;
                self.send(
                    leader,
                    |corr| Message::Fetch {
                        corr,
                        replica_id: None,
                        broker_epoch: BrokerEpoch(-1),
                        tp: tp2,
                        fetch_offset: position,
                        last_fetched_epoch: LeaderEpoch::UNKNOWN,
                        current_leader_epoch: epoch,
                        max_bytes: cfg.max_partition_fetch_bytes,
                        min_bytes: cfg.fetch_min_bytes,
                        max_wait_ms: cfg.fetch_max_wait_ms,
                        isolation_level: cfg.isolation_level,
                    },
                    Pending::Fetch(tp.clone()),
                    out,
                )
            }
        };
        self.partitions.get_mut(tp).expect("assigned").in_flight = Some(corr);
    }

    fn refetch_later(&mut self, tp: &TopicPartition, out: &mut Effects<ConsumerTimer>) {
        if let Some(s) = self.partitions.get_mut(tp) {
            s.in_flight = None;
        }
        out.timer(
            self.config.retry_backoff_ms.max(1),
            ConsumerTimer::Refetch { tp: tp.clone() },
        );
    }

    fn poll(&mut self, out: &mut Effects<ConsumerTimer>) {
        if self.buffer.is_empty() {
            return;
        }
        let n = (self.config.max_poll_records as usize).min(self.buffer.len());
        let records: Vec<PolledRecord> = self.buffer.drain(..n).collect();
        self.next_op += 1;
        let op_id = self.next_op;
        out.op(ClientOp {
            op_type: OpType::Invoke,
            op_id,
            value: OpValue::Poll { records: vec![] },
            error: None,
        });
        out.op(ClientOp {
            op_type: OpType::Ok,
            op_id,
            value: OpValue::Poll { records },
            error: None,
        });
    }

    fn on_fetch_response(
        &mut self,
        tp: TopicPartition,
        error: ErrorCode,
        batches: Vec<Vec<u8>>,
        out: &mut Effects<ConsumerTimer>,
    ) {
        match error {
            ErrorCode::None => {}
            ErrorCode::OffsetOutOfRange => {
                if let Some(s) = self.partitions.get_mut(&tp) {
                    s.position = None;
                }
                self.refetch_later(&tp, out);
                return;
            }
            _ => {
                if let Some(s) = self.partitions.get_mut(&tp) {
                    s.leader = None;
                }
                self.request_metadata(out);
                self.refetch_later(&tp, out);
                return;
            }
        }
        let Some(s) = self.partitions.get_mut(&tp) else {
            return;
        };
        s.in_flight = None;
        let Some(mut position) = s.position else {
            return;
        };
        for bytes in batches {
            let Ok((batch, _)) = RecordBatch::decode(&bytes) else {
                break;
            };
            for r in &batch.records {
                let offset = Offset(batch.base_offset.0 + r.offset_delta as i64);
                if offset < position {
                    continue;
                }
                let value = r
                    .value
                    .as_ref()
                    .filter(|v| v.len() == 8)
                    .map(|v| u64::from_be_bytes(v.as_slice().try_into().expect("8 bytes")))
                    .unwrap_or(0);
                self.buffer.push_back(PolledRecord {
                    tp: tp.clone(),
                    offset,
                    value,
                });
                position = offset.next();
            }
        }
        s.position = Some(position);
        self.fetch_one(&tp, out);
    }
}

impl Actor for ConsumerClient {
    type Timer = ConsumerTimer;

    fn on_start(&mut self, _now: Instant, out: &mut Effects<ConsumerTimer>) {
        self.request_metadata(out);
        out.timer(POLL_INTERVAL_MS, ConsumerTimer::Poll);
        out.timer(5_000, ConsumerTimer::MetadataRefresh);
    }

    fn on_message(
        &mut self,
        _now: Instant,
        _from: NodeId,
        msg: Message,
        out: &mut Effects<ConsumerTimer>,
    ) {
        let corr = match &msg {
            Message::MetadataResponse { corr, .. }
            | Message::ListOffsetsResponse { corr, .. }
            | Message::FetchResponse { corr, .. } => *corr,
            _ => return,
        };
        let Some((pending, _)) = self.pending.remove(&corr) else {
            return;
        };
        match (pending, msg) {
            (Pending::Metadata, Message::MetadataResponse { partitions, .. }) => {
                self.metadata_in_flight = false;
                let mut missing = false;
                for pm in partitions {
                    if !self.topics.contains(&pm.tp.topic) {
                        continue;
                    }
                    missing |= pm.leader.is_none();
                    let s = self
                        .partitions
                        .entry(pm.tp.clone())
                        .or_insert(PartitionFetchState {
                            leader: None,
                            leader_epoch: LeaderEpoch::UNKNOWN,
                            position: None,
                            in_flight: None,
                        });
                    if pm.leader_epoch >= s.leader_epoch {
                        s.leader = pm.leader;
                        s.leader_epoch = pm.leader_epoch;
                    }
                }
                if missing || self.partitions.is_empty() {
                    out.timer(
                        self.config.retry_backoff_ms.max(1),
                        ConsumerTimer::MetadataRetry,
                    );
                }
                self.fetch_all(out);
            }
            (Pending::ListOffsets(tp), Message::ListOffsetsResponse { error, offset, .. }) => {
                if error == ErrorCode::None {
                    if let Some(s) = self.partitions.get_mut(&tp) {
                        s.position = Some(offset);
                        s.in_flight = None;
                    }
                    self.fetch_one(&tp, out);
                } else {
                    if let Some(s) = self.partitions.get_mut(&tp) {
                        s.leader = None;
                    }
                    self.request_metadata(out);
                    self.refetch_later(&tp, out);
                }
            }
            (Pending::Fetch(tp), Message::FetchResponse { error, batches, .. }) => {
                self.on_fetch_response(tp, error, batches, out)
            }
            _ => {}
        }
    }

    fn on_timeout(
        &mut self,
        _now: Instant,
        timer: ConsumerTimer,
        out: &mut Effects<ConsumerTimer>,
    ) {
        match timer {
            ConsumerTimer::Poll => {
                self.poll(out);
                self.fetch_all(out);
                out.timer(POLL_INTERVAL_MS, ConsumerTimer::Poll);
            }
            ConsumerTimer::RequestTimeout { corr } => {
                if let Some((pending, _)) = self.pending.remove(&corr) {
                    self.on_request_lost(pending, out);
                }
            }
            ConsumerTimer::MetadataRefresh => {
                self.request_metadata(out);
                out.timer(5_000, ConsumerTimer::MetadataRefresh);
            }
            ConsumerTimer::MetadataRetry => self.request_metadata(out),
            ConsumerTimer::Refetch { tp } => self.fetch_one(&tp, out),
        }
    }

    fn on_disconnect(&mut self, _now: Instant, peer: NodeId, out: &mut Effects<ConsumerTimer>) {
        let lost: Vec<CorrelationId> = self
            .pending
            .iter()
            .filter(|(_, (_, to))| *to == peer)
            .map(|(c, _)| *c)
            .collect();
        for corr in lost {
            let (pending, _) = self.pending.remove(&corr).expect("present");
            self.on_request_lost(pending, out);
        }
    }

    fn on_send_failed(
        &mut self,
        _now: Instant,
        _to: NodeId,
        msg: Message,
        out: &mut Effects<ConsumerTimer>,
    ) {
        let corr = match &msg {
            Message::Metadata { corr, .. }
            | Message::ListOffsets { corr, .. }
            | Message::Fetch { corr, .. } => *corr,
            _ => return,
        };
        if let Some((pending, _)) = self.pending.remove(&corr) {
            self.on_request_lost(pending, out);
        }
    }
}

impl ConsumerClient {
    fn on_request_lost(&mut self, pending: Pending, out: &mut Effects<ConsumerTimer>) {
        match pending {
            Pending::Metadata => {
                self.metadata_in_flight = false;
                out.timer(
                    self.config.retry_backoff_ms.max(1),
                    ConsumerTimer::MetadataRetry,
                );
            }
            Pending::ListOffsets(tp) | Pending::Fetch(tp) => {
                if let Some(s) = self.partitions.get_mut(&tp) {
                    s.leader = None;
                }
                self.request_metadata(out);
                self.refetch_later(&tp, out);
            }
        }
    }
}
