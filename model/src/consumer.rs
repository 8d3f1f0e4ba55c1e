//! A consumer client in *assign* mode (no group): it owns every partition of its topics and
//! polls them, as `KafkaConsumer.assign()` + a `poll(timeout)` loop does.
//!
//! # Positions (`SubscriptionState` in Kafka's client)
//! Each assigned partition has a **fetch position**: the offset of the next record to fetch and
//! the leader epoch of the record before it (`offsetEpoch`, KIP-320), plus the current leader
//! and its epoch from metadata. A partition is in one of four states:
//!
//! * **awaiting reset**: no position. `auto.offset.reset` decides it with ListOffsets
//!   (`earliest`: the log start offset, `latest`: the high watermark); `none` raises
//!   `NoOffsetForPartitionException` from the next `poll()`. The same happens when a fetch
//!   answers OFFSET_OUT_OF_RANGE (the position is below the log start offset, e.g. after
//!   retention, or above the log end offset): `none` raises `OffsetOutOfRangeException`.
//! * **awaiting validation** (KIP-320): metadata showed a new leader epoch, so the log the
//!   position was read from may have been truncated by the leader change. The consumer asks
//!   the leader `OffsetForLeaderEpoch(current_leader_epoch, leader_epoch = offsetEpoch)`. If
//!   the end offset of that epoch on the leader is below the position, the log diverged below
//!   what the consumer had read (an unclean election): with a reset policy the consumer moves
//!   back to the first offset known to diverge (Kafka logs "Truncation detected ..."), with
//!   `none` it raises `LogTruncationException`. An undefined epoch or offset resets by policy;
//!   a broker older than KIP-320 (UNSUPPORTED_VERSION) leaves the position unvalidated.
//! * **fetching**: fetches go to the leader carrying `current_leader_epoch`; FENCED_LEADER_EPOCH
//!   and UNKNOWN_LEADER_EPOCH (and NOT_LEADER_OR_FOLLOWER) refresh metadata and retry.
//! * **blocked**: an exception was raised to the application for this partition (the policy
//!   is `none`); the consumer does not fetch it again until the application `seek`s.
//!
//! Every reset, seek and detected truncation is an internal event
//! ([`Event::ConsumerPositionReset`], [`Event::ConsumerLogTruncation`],
//! [`Event::ConsumerError`]), so the report can say why records were skipped or read again.
//!
//! # Fetching
//! One fetch per partition at a time, to its leader, with `fetch.min.bytes` and
//! `fetch.max.wait.ms` (the broker holds the request until enough bytes are readable or the
//! wait elapses: a long poll) and at most `min(max.partition.fetch.bytes, fetch.max.bytes)`
//! bytes (the broker still returns a first batch larger than that, as Kafka does, so the
//! consumer always makes progress). The consumer reads below the leader's high watermark only
//! (`read_uncommitted`). Kafka sends one fetch per broker covering all its partitions, which
//! `fetch.max.bytes` bounds as a whole; here each partition has its own request, so
//! `fetch.max.bytes` caps each one.
//!
//! # The application
//! The workload calls `poll(POLL_TIMEOUT_MS)` in a loop: a poll returns at once with up to
//! `max.poll.records` buffered records, or blocks until a fetch brings records or the timeout
//! elapses; after a poll that returned records the application spends [`POLL_INTERVAL_MS`]
//! processing them. It may start late (`start_ms`) and `seek` at given times
//! ([`ConsumerWorkload`]).
//!
//! Each non-empty poll is one Jepsen operation (`invoke`, then `ok` with the records in the
//! order returned), both stamped when the poll returns. A poll that throws is `invoke` then
//! `fail` with the exception's class and Kafka's message. Empty polls are not recorded.
//!
//! # Size
//! Above the project's 1500-line guide (about 1700 lines with its tests): the split by
//! Kafka concept into a folder of its own is item 1 of the "house" issue (11), planned
//! before coordinators are added; until then the whole concept stays in this one file.

use crate::config::{AutoOffsetReset, ConsumerConfig, SerdeClass};
use crate::effects::{Actor, Effects};
use crate::event::{ClientOp, Event, OpType, OpValue, PolledRecord};
use crate::protocol::*;
use crate::record::RecordBatch;
use crate::types::*;
use std::collections::{BTreeMap, VecDeque};

/// How long the application spends on the records of one poll before it polls again, in
/// simulated ms.
pub const POLL_INTERVAL_MS: u64 = 50;

/// The timeout of the application's `poll(timeout)` calls, in simulated ms.
pub const POLL_TIMEOUT_MS: u64 = 1_000;

/// How often metadata is refreshed without a reason, in simulated ms.
pub const METADATA_REFRESH_MS: u64 = 5_000;

/// Timers of a consumer.
#[derive(Debug, Clone, PartialEq)]
pub enum ConsumerTimer {
    /// The application calls `poll()`.
    Poll,
    /// A blocked `poll(timeout)` reached its timeout; ignored unless `generation` names the
    /// poll still blocked.
    PollTimeout {
        generation: u64,
    },
    RequestTimeout {
        corr: CorrelationId,
    },
    MetadataRefresh,
    MetadataRetry,
    /// Retry a partition's fetch (or reset, or validation) after a backoff.
    Refetch {
        tp: TopicPartition,
    },
    /// The application starts consuming ([`ConsumerWorkload::start_ms`]).
    Start,
    /// The application calls `seek(tp, offset)`.
    Seek {
        tp: TopicPartition,
        offset: Offset,
    },
}

/// What the application does besides polling.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConsumerWorkload {
    /// Simulated time (ms since the run started) at which the application creates the
    /// consumer and starts polling; 0 starts at once. A process restarted after this time
    /// starts at once.
    pub start_ms: u64,
    /// `seek(tp, offset)` calls at given times (ms since the run started), applied by the
    /// process that is running at that time (a process started later does not repeat them).
    pub seeks: Vec<SeekAt>,
}

/// One `seek(tp, offset)` of the application.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeekAt {
    pub at_ms: u64,
    pub tp: TopicPartition,
    pub offset: Offset,
}

/// Kafka's `FetchPosition`: the next offset to fetch and the leader epoch of the record
/// before it (`offsetEpoch`, KIP-320; `UNKNOWN` when not known, e.g. after a seek).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FetchPosition {
    pub offset: Offset,
    pub offset_epoch: LeaderEpoch,
}

/// Why a partition needs a reset by `auto.offset.reset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ResetReason {
    /// No position yet (a new assignment).
    NoPosition,
    /// A fetch answered OFFSET_OUT_OF_RANGE.
    OffsetOutOfRange,
    /// OffsetForLeaderEpoch answered an undefined epoch or offset.
    UndefinedEpoch,
}

impl ResetReason {
    fn name(self) -> &'static str {
        match self {
            ResetReason::NoPosition => "no-position",
            ResetReason::OffsetOutOfRange => "offset-out-of-range",
            ResetReason::UndefinedEpoch => "undefined-epoch",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FetchState {
    AwaitReset {
        reason: ResetReason,
        /// The position being replaced, if any.
        from: Option<FetchPosition>,
    },
    AwaitValidation(FetchPosition),
    Fetching(FetchPosition),
    /// An exception was raised for the partition; nothing happens until a seek.
    Blocked(Option<FetchPosition>),
}

#[derive(Debug, Clone)]
enum Pending {
    Metadata,
    ListOffsets(TopicPartition),
    Fetch(TopicPartition),
    OffsetForLeaderEpoch(TopicPartition),
}

#[derive(Debug, Clone)]
struct PartitionFetchState {
    leader: Option<BrokerId>,
    /// The current leader's epoch as metadata says (sent as `current_leader_epoch`).
    leader_epoch: LeaderEpoch,
    state: FetchState,
    in_flight: Option<CorrelationId>,
}

/// A consumer client process.
#[derive(Debug)]
pub struct ConsumerClient {
    pub index: u32,
    config: ConsumerConfig,
    workload: ConsumerWorkload,
    topics: Vec<String>,
    bootstrap: Vec<BrokerId>,
    next_bootstrap: usize,
    started: bool,
    partitions: BTreeMap<TopicPartition, PartitionFetchState>,
    pending: BTreeMap<CorrelationId, (Pending, NodeId)>,
    metadata_in_flight: bool,
    buffer: VecDeque<PolledRecord>,
    /// Exceptions to throw from the next polls: (exception class, Kafka's message).
    errors: VecDeque<(String, String)>,
    /// The generation of the `poll(timeout)` now blocked, if one is.
    blocked_poll: Option<u64>,
    poll_generation: u64,
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
            workload: ConsumerWorkload::default(),
            topics,
            bootstrap,
            next_bootstrap: index as usize,
            started: false,
            partitions: BTreeMap::new(),
            pending: BTreeMap::new(),
            metadata_in_flight: false,
            buffer: VecDeque::new(),
            errors: VecDeque::new(),
            blocked_poll: None,
            poll_generation: 0,
            next_corr: 0,
            next_op: 0,
        }
    }

    /// The same consumer driven by `workload` (late start, seeks).
    pub fn with_workload(mut self, workload: ConsumerWorkload) -> Self {
        self.workload = workload;
        self
    }

    /// `KafkaConsumer.position(tp)`: the offset of the next record `poll()` will return for
    /// `tp` (the first buffered record, else the fetch position); `None` while the partition
    /// has no position (not assigned yet, awaiting a reset, or blocked without one). Kafka's
    /// `position()` blocks to reset a missing position; the simulated application does not
    /// block, so it gets `None` instead.
    pub fn position(&self, tp: &TopicPartition) -> Option<Offset> {
        if let Some(r) = self.buffer.iter().find(|r| &r.tp == tp) {
            return Some(r.offset);
        }
        match self.partitions.get(tp)?.state {
            FetchState::AwaitValidation(p) | FetchState::Fetching(p) => Some(p.offset),
            FetchState::Blocked(p) => p.map(|p| p.offset),
            FetchState::AwaitReset { .. } => None,
        }
    }

    /// The position of every assigned partition, as [`ConsumerClient::position`].
    pub fn positions(&self) -> BTreeMap<TopicPartition, Option<Offset>> {
        self.partitions
            .keys()
            .map(|tp| (tp.clone(), self.position(tp)))
            .collect()
    }

    /// `KafkaConsumer.seek(tp, offset)`: the next poll returns records of `tp` from `offset`.
    /// Buffered records of `tp` are dropped, a fetch in flight is ignored, and the position
    /// has no epoch (it is not validated after a leader change; an offset outside the log
    /// gets OFFSET_OUT_OF_RANGE and resets by policy). Unblocks a partition blocked by an
    /// exception. A partition not (yet) assigned is assigned by the seek, as Kafka requires
    /// `assign` before `seek`; here assignment is implicit. Emits
    /// [`Event::ConsumerPositionReset`] with strategy `seek`, and records the call in the
    /// history as an operation `seek` (`invoke`, then `ok`), so the poll checkers know the
    /// consumer moved on purpose.
    pub fn seek(&mut self, tp: &TopicPartition, offset: Offset, out: &mut Effects<ConsumerTimer>) {
        self.next_op += 1;
        for op_type in [OpType::Invoke, OpType::Ok] {
            out.op(ClientOp {
                op_type,
                op_id: self.next_op,
                value: OpValue::Seek {
                    tp: tp.clone(),
                    offset,
                },
                error: None,
            });
        }
        let from = self.position(tp);
        self.buffer.retain(|r| &r.tp != tp);
        let s = self
            .partitions
            .entry(tp.clone())
            .or_insert_with(PartitionFetchState::new);
        s.in_flight = None;
        s.state = FetchState::Fetching(FetchPosition {
            offset,
            offset_epoch: LeaderEpoch::UNKNOWN,
        });
        out.event(Event::ConsumerPositionReset {
            tp: tp.clone(),
            from_offset: from,
            to_offset: offset,
            strategy: "seek".into(),
            reason: "seek".into(),
        });
        self.fetch_one(tp, out);
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

    /// Sends the next request `tp` needs (ListOffsets, OffsetForLeaderEpoch or Fetch), unless
    /// one is in flight, the leader is unknown, or the application has a backlog to poll.
    fn fetch_one(&mut self, tp: &TopicPartition, out: &mut Effects<ConsumerTimer>) {
        let Some(s) = self.partitions.get(tp).cloned() else {
            return;
        };
        if s.in_flight.is_some() || matches!(s.state, FetchState::Blocked(_)) {
            return;
        }
        if let FetchState::AwaitReset { reason, from } = s.state {
            if self.config.auto_offset_reset == AutoOffsetReset::None {
                self.raise_for_reset(tp, reason, from, out);
                return;
            }
        }
        let Some(leader) = s.leader else {
            self.request_metadata(out);
            return;
        };
        let tp2 = tp.clone();
        let epoch = s.leader_epoch;
        let corr = match s.state {
            FetchState::Blocked(_) => return,
            FetchState::AwaitReset { .. } => {
                let timestamp = match self.config.auto_offset_reset {
                    AutoOffsetReset::Earliest => -2,
                    _ => -1,
                };
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
            FetchState::AwaitValidation(position) => self.send(
                leader,
                |corr| Message::OffsetForLeaderEpoch {
                    corr,
                    replica_id: None,
                    tp: tp2,
                    current_leader_epoch: epoch,
                    leader_epoch: position.offset_epoch,
                },
                Pending::OffsetForLeaderEpoch(tp.clone()),
                out,
            ),
            FetchState::Fetching(position) => {
                // Do not fetch more while the application has a backlog to poll.
                if self.buffer.len() >= 4 * self.config.max_poll_records as usize {
                    return;
                }
                let cfg = &self.config;
                let max_bytes = cfg.max_partition_fetch_bytes.min(cfg.fetch_max_bytes);
                let (min_bytes, max_wait_ms, isolation_level) = (
                    cfg.fetch_min_bytes,
                    cfg.fetch_max_wait_ms,
                    cfg.isolation_level,
                );
                self.send(
                    leader,
                    |corr| Message::Fetch {
                        corr,
                        replica_id: None,
                        broker_epoch: BrokerEpoch(-1),
                        tp: tp2,
                        fetch_offset: position.offset,
                        last_fetched_epoch: LeaderEpoch::UNKNOWN,
                        current_leader_epoch: epoch,
                        max_bytes,
                        min_bytes,
                        max_wait_ms,
                        isolation_level,
                    },
                    Pending::Fetch(tp.clone()),
                    out,
                )
            }
        };
        self.partitions.get_mut(tp).expect("assigned").in_flight = Some(corr);
    }

    /// With `auto.offset.reset=none` a reset is an exception thrown from `poll()`.
    fn raise_for_reset(
        &mut self,
        tp: &TopicPartition,
        reason: ResetReason,
        from: Option<FetchPosition>,
        out: &mut Effects<ConsumerTimer>,
    ) {
        let (exception, message) = match (reason, from) {
            (ResetReason::OffsetOutOfRange, Some(p)) => (
                "OffsetOutOfRangeException",
                format!(
                    "Fetch position {} is out of range for partition {tp}",
                    self.describe_position(tp, p)
                ),
            ),
            _ => (
                "NoOffsetForPartitionException",
                format!("Undefined offset with no reset policy for partitions: [{tp}]"),
            ),
        };
        self.raise(tp, exception, message, out);
        if let Some(s) = self.partitions.get_mut(tp) {
            s.state = FetchState::Blocked(from);
        }
    }

    /// A record at `offset` that the application cannot read: `poll()` throws and the position
    /// stays on that record until the application seeks past it. Kafka's fetcher throws
    /// `RecordDeserializationException` (KIP-334) when `value.deserializer` fails; a value that
    /// `StringDeserializer` reads but that is not a decimal number fails in the application's
    /// own `Long.parseLong` (`NumberFormatException`). Either way the partition is stuck on a
    /// "poison pill": here the exception is raised once and the partition waits for a seek.
    fn poison_pill(
        &mut self,
        tp: &TopicPartition,
        position: FetchPosition,
        offset: Offset,
        exception: &'static str,
        message: String,
        out: &mut Effects<ConsumerTimer>,
    ) {
        let message = if exception == "RecordDeserializationException" {
            format!(
                "Error deserializing key/value for partition {tp} at offset {}. If needed, \
                 please seek past the record to continue consumption. Caused by: {message}",
                offset.0
            )
        } else {
            message
        };
        self.raise(tp, exception, message, out);
        if let Some(s) = self.partitions.get_mut(tp) {
            s.state = FetchState::Blocked(Some(FetchPosition {
                offset,
                offset_epoch: position.offset_epoch,
            }));
        }
    }

    /// Queues an exception for the next `poll()` and logs it as an internal event.
    fn raise(
        &mut self,
        tp: &TopicPartition,
        exception: &str,
        message: String,
        out: &mut Effects<ConsumerTimer>,
    ) {
        out.event(Event::ConsumerError {
            tp: tp.clone(),
            exception: exception.to_string(),
            message: message.clone(),
        });
        self.errors.push_back((exception.to_string(), message));
        if self.blocked_poll.is_some() {
            self.complete_poll(out);
        }
    }

    /// Kafka's `FetchPosition.toString()`.
    fn describe_position(&self, tp: &TopicPartition, p: FetchPosition) -> String {
        let s = self.partitions.get(tp);
        let leader = s
            .and_then(|s| s.leader)
            .map_or("Optional.empty".to_string(), |b| {
                format!("Optional[broker-{b}]")
            });
        let epoch = s.map_or(LeaderEpoch::UNKNOWN, |s| s.leader_epoch);
        let offset_epoch = if p.offset_epoch == LeaderEpoch::UNKNOWN {
            "Optional.empty".to_string()
        } else {
            format!("Optional[{}]", p.offset_epoch)
        };
        format!(
            "FetchPosition{{offset={}, offsetEpoch={offset_epoch}, currentLeader=LeaderAndEpoch{{leader={leader}, epoch={epoch}}}}}",
            p.offset
        )
    }

    fn retry_later(&mut self, tp: &TopicPartition, out: &mut Effects<ConsumerTimer>) {
        if let Some(s) = self.partitions.get_mut(tp) {
            s.in_flight = None;
        }
        out.timer(
            self.config.retry_backoff_ms.max(1),
            ConsumerTimer::Refetch { tp: tp.clone() },
        );
    }

    /// The leader is unknown or stale: refresh metadata, retry after a backoff.
    fn leader_lost(&mut self, tp: &TopicPartition, out: &mut Effects<ConsumerTimer>) {
        if let Some(s) = self.partitions.get_mut(tp) {
            s.leader = None;
        }
        self.request_metadata(out);
        self.retry_later(tp, out);
    }

    /// The application calls `poll(POLL_TIMEOUT_MS)`.
    fn app_poll(&mut self, out: &mut Effects<ConsumerTimer>) {
        self.fetch_all(out);
        if self.errors.is_empty() && self.buffer.is_empty() {
            self.poll_generation += 1;
            self.blocked_poll = Some(self.poll_generation);
            out.timer(
                POLL_TIMEOUT_MS,
                ConsumerTimer::PollTimeout {
                    generation: self.poll_generation,
                },
            );
            return;
        }
        self.complete_poll(out);
    }

    /// Returns from the current poll with an exception or buffered records; the application
    /// processes them and polls again after [`POLL_INTERVAL_MS`].
    fn complete_poll(&mut self, out: &mut Effects<ConsumerTimer>) {
        self.blocked_poll = None;
        self.next_op += 1;
        let op_id = self.next_op;
        out.op(ClientOp {
            op_type: OpType::Invoke,
            op_id,
            value: OpValue::Poll { records: vec![] },
            error: None,
        });
        if let Some((exception, message)) = self.errors.pop_front() {
            out.op(ClientOp {
                op_type: OpType::Fail,
                op_id,
                value: OpValue::Poll { records: vec![] },
                error: Some(format!("{exception}: {message}")),
            });
        } else {
            let n = (self.config.max_poll_records as usize).min(self.buffer.len());
            let records: Vec<PolledRecord> = self.buffer.drain(..n).collect();
            out.op(ClientOp {
                op_type: OpType::Ok,
                op_id,
                value: OpValue::Poll { records },
                error: None,
            });
        }
        out.timer(POLL_INTERVAL_MS, ConsumerTimer::Poll);
    }

    fn on_fetch_response(
        &mut self,
        tp: TopicPartition,
        corr: CorrelationId,
        error: ErrorCode,
        batches: Vec<Vec<u8>>,
        out: &mut Effects<ConsumerTimer>,
    ) {
        let Some(s) = self.partitions.get_mut(&tp) else {
            return;
        };
        if s.in_flight != Some(corr) {
            return; // superseded by a seek
        }
        s.in_flight = None;
        let FetchState::Fetching(mut position) = s.state else {
            // The position awaits validation (or a reset) since: the answer is stale.
            self.fetch_one(&tp, out);
            return;
        };
        match error {
            ErrorCode::None => {}
            ErrorCode::OffsetOutOfRange => {
                s.state = FetchState::AwaitReset {
                    reason: ResetReason::OffsetOutOfRange,
                    from: Some(position),
                };
                self.fetch_one(&tp, out);
                return;
            }
            _ => {
                // FENCED_LEADER_EPOCH, UNKNOWN_LEADER_EPOCH, NOT_LEADER_OR_FOLLOWER, ...
                self.leader_lost(&tp, out);
                return;
            }
        }
        let mut added = false;
        'batches: for bytes in batches {
            let Ok((batch, _)) = RecordBatch::decode(&bytes) else {
                break;
            };
            for r in &batch.records {
                let offset = Offset(batch.base_offset.0 + r.offset_delta as i64);
                if offset < position.offset {
                    continue;
                }
                let value = match r.value.as_deref() {
                    None => 0,
                    Some(bytes) => match deserialize_value(self.config.value_deserializer, bytes) {
                        Ok(v) => v,
                        Err((exception, message)) => {
                            self.poison_pill(&tp, position, offset, exception, message, out);
                            break 'batches;
                        }
                    },
                };
                self.buffer.push_back(PolledRecord {
                    tp: tp.clone(),
                    offset,
                    value,
                });
                added = true;
                position = FetchPosition {
                    offset: offset.next(),
                    offset_epoch: batch.partition_leader_epoch,
                };
            }
        }
        let Some(s) = self.partitions.get_mut(&tp) else {
            return;
        };
        if matches!(s.state, FetchState::Blocked(_)) {
            if added && self.blocked_poll.is_some() {
                self.complete_poll(out);
            }
            return;
        }
        s.state = FetchState::Fetching(position);
        if added && self.blocked_poll.is_some() {
            self.complete_poll(out);
        }
        self.fetch_one(&tp, out);
    }

    fn on_list_offsets_response(
        &mut self,
        tp: TopicPartition,
        corr: CorrelationId,
        error: ErrorCode,
        offset: Offset,
        leader_epoch: LeaderEpoch,
        out: &mut Effects<ConsumerTimer>,
    ) {
        let Some(s) = self.partitions.get_mut(&tp) else {
            return;
        };
        if s.in_flight != Some(corr) {
            return;
        }
        s.in_flight = None;
        let FetchState::AwaitReset { reason, from } = s.state else {
            return;
        };
        if error != ErrorCode::None {
            self.leader_lost(&tp, out);
            return;
        }
        s.state = FetchState::Fetching(FetchPosition {
            offset,
            offset_epoch: leader_epoch,
        });
        let strategy = match self.config.auto_offset_reset {
            AutoOffsetReset::Earliest => "earliest",
            _ => "latest",
        };
        out.event(Event::ConsumerPositionReset {
            tp: tp.clone(),
            from_offset: from.map(|p| p.offset),
            to_offset: offset,
            strategy: strategy.into(),
            reason: reason.name().into(),
        });
        self.fetch_one(&tp, out);
    }

    /// The answer to a KIP-320 position validation.
    fn on_offset_for_leader_epoch_response(
        &mut self,
        tp: TopicPartition,
        corr: CorrelationId,
        error: ErrorCode,
        end: EpochEndOffset,
        out: &mut Effects<ConsumerTimer>,
    ) {
        let Some(s) = self.partitions.get_mut(&tp) else {
            return;
        };
        if s.in_flight != Some(corr) {
            return;
        }
        s.in_flight = None;
        let FetchState::AwaitValidation(position) = s.state else {
            return;
        };
        if error == ErrorCode::UnsupportedVersion {
            // A broker older than KIP-320: Kafka's consumer skips the validation.
            s.state = FetchState::Fetching(position);
            self.fetch_one(&tp, out);
            return;
        }
        if error != ErrorCode::None {
            self.leader_lost(&tp, out);
            return;
        }
        if end.leader_epoch == LeaderEpoch::UNKNOWN || end.end_offset.0 < 0 {
            s.state = FetchState::AwaitReset {
                reason: ResetReason::UndefinedEpoch,
                from: Some(position),
            };
        } else if end.end_offset < position.offset {
            // The leader's log ends that epoch below what this consumer read: truncated.
            out.event(Event::ConsumerLogTruncation {
                tp: tp.clone(),
                fetch_offset: position.offset,
                offset_epoch: position.offset_epoch,
                divergent_offset: end.end_offset,
                divergent_epoch: end.leader_epoch,
            });
            let divergent = FetchPosition {
                offset: end.end_offset,
                offset_epoch: end.leader_epoch,
            };
            if self.config.auto_offset_reset == AutoOffsetReset::None {
                let message = format!(
                    "Detected truncated partitions: [LogTruncation(topicPartition={tp}, fetchPosition={}, divergentOffset=Optional[OffsetAndMetadata{{offset={}, leaderEpoch={}, metadata=''}}])]",
                    self.describe_position(&tp, position),
                    end.end_offset,
                    end.leader_epoch
                );
                self.raise(&tp, "LogTruncationException", message, out);
                if let Some(s) = self.partitions.get_mut(&tp) {
                    s.state = FetchState::Blocked(Some(position));
                }
                return;
            }
            // Kafka: "Truncation detected for partition {} at offset {}, resetting offset to
            // the first offset known to diverge {}". Records buffered from the lost part of
            // the log are dropped.
            s.state = FetchState::Fetching(divergent);
            self.buffer
                .retain(|r| r.tp != tp || r.offset < divergent.offset);
            out.event(Event::ConsumerPositionReset {
                tp: tp.clone(),
                from_offset: Some(position.offset),
                to_offset: divergent.offset,
                strategy: "divergent-offset".into(),
                reason: "log-truncation".into(),
            });
        } else {
            s.state = FetchState::Fetching(position);
        }
        self.fetch_one(&tp, out);
    }

    fn on_metadata_response(
        &mut self,
        partitions: Vec<PartitionMetadata>,
        out: &mut Effects<ConsumerTimer>,
    ) {
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
                .or_insert_with(PartitionFetchState::new);
            if pm.leader_epoch < s.leader_epoch {
                continue; // stale metadata
            }
            let new_epoch = pm.leader_epoch > s.leader_epoch && s.leader_epoch.0 >= 0;
            s.leader = pm.leader;
            s.leader_epoch = pm.leader_epoch;
            // KIP-320: after a leader change, validate a position that has an epoch.
            if new_epoch {
                if let FetchState::Fetching(p) = s.state {
                    if p.offset_epoch != LeaderEpoch::UNKNOWN {
                        s.state = FetchState::AwaitValidation(p);
                    }
                }
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

    fn start(&mut self, now: Instant, out: &mut Effects<ConsumerTimer>) {
        self.started = true;
        self.request_metadata(out);
        out.timer(POLL_INTERVAL_MS, ConsumerTimer::Poll);
        out.timer(METADATA_REFRESH_MS, ConsumerTimer::MetadataRefresh);
        for s in self.workload.seeks.clone() {
            if s.at_ms >= now.as_ms() {
                out.timer(
                    s.at_ms - now.as_ms(),
                    ConsumerTimer::Seek {
                        tp: s.tp,
                        offset: s.offset,
                    },
                );
            }
        }
    }
}

impl PartitionFetchState {
    fn new() -> Self {
        PartitionFetchState {
            leader: None,
            leader_epoch: LeaderEpoch::UNKNOWN,
            state: FetchState::AwaitReset {
                reason: ResetReason::NoPosition,
                from: None,
            },
            in_flight: None,
        }
    }
}

impl Actor for ConsumerClient {
    type Timer = ConsumerTimer;

    fn on_start(&mut self, now: Instant, out: &mut Effects<ConsumerTimer>) {
        if now.as_ms() < self.workload.start_ms {
            out.timer(self.workload.start_ms - now.as_ms(), ConsumerTimer::Start);
        } else {
            self.start(now, out);
        }
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
            | Message::OffsetForLeaderEpochResponse { corr, .. }
            | Message::FetchResponse { corr, .. } => *corr,
            _ => return,
        };
        let Some((pending, _)) = self.pending.remove(&corr) else {
            return;
        };
        match (pending, msg) {
            (Pending::Metadata, Message::MetadataResponse { partitions, .. }) => {
                self.on_metadata_response(partitions, out)
            }
            (
                Pending::ListOffsets(tp),
                Message::ListOffsetsResponse {
                    error,
                    offset,
                    leader_epoch,
                    ..
                },
            ) => self.on_list_offsets_response(tp, corr, error, offset, leader_epoch, out),
            (
                Pending::OffsetForLeaderEpoch(tp),
                Message::OffsetForLeaderEpochResponse { error, end, .. },
            ) => self.on_offset_for_leader_epoch_response(tp, corr, error, end, out),
            (Pending::Fetch(tp), Message::FetchResponse { error, batches, .. }) => {
                self.on_fetch_response(tp, corr, error, batches, out)
            }
            _ => {}
        }
    }

    fn on_timeout(&mut self, now: Instant, timer: ConsumerTimer, out: &mut Effects<ConsumerTimer>) {
        match timer {
            ConsumerTimer::Start => self.start(now, out),
            ConsumerTimer::Poll => self.app_poll(out),
            ConsumerTimer::PollTimeout { generation } => {
                if self.blocked_poll == Some(generation) {
                    // poll() returned nothing (not recorded); the application polls again.
                    self.blocked_poll = None;
                    self.app_poll(out);
                }
            }
            ConsumerTimer::RequestTimeout { corr } => {
                if let Some((pending, _)) = self.pending.remove(&corr) {
                    self.on_request_lost(pending, corr, out);
                }
            }
            ConsumerTimer::MetadataRefresh => {
                self.request_metadata(out);
                out.timer(METADATA_REFRESH_MS, ConsumerTimer::MetadataRefresh);
            }
            ConsumerTimer::MetadataRetry => self.request_metadata(out),
            ConsumerTimer::Refetch { tp } => self.fetch_one(&tp, out),
            ConsumerTimer::Seek { tp, offset } => self.seek(&tp, offset, out),
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
            self.on_request_lost(pending, corr, out);
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
            | Message::OffsetForLeaderEpoch { corr, .. }
            | Message::Fetch { corr, .. } => *corr,
            _ => return,
        };
        if let Some((pending, _)) = self.pending.remove(&corr) {
            self.on_request_lost(pending, corr, out);
        }
    }
}

impl ConsumerClient {
    fn on_request_lost(
        &mut self,
        pending: Pending,
        corr: CorrelationId,
        out: &mut Effects<ConsumerTimer>,
    ) {
        match pending {
            Pending::Metadata => {
                self.metadata_in_flight = false;
                out.timer(
                    self.config.retry_backoff_ms.max(1),
                    ConsumerTimer::MetadataRetry,
                );
            }
            Pending::ListOffsets(tp) | Pending::Fetch(tp) | Pending::OffsetForLeaderEpoch(tp) => {
                if self.partitions.get(&tp).and_then(|s| s.in_flight) == Some(corr) {
                    self.leader_lost(&tp, out);
                }
            }
        }
    }
}

/// The workload's value from a record's value bytes under `value.deserializer`, or the
/// exception (name, message) the application meets: `LongDeserializer` throws
/// `SerializationException` unless the value is 8 bytes (wrapped by the fetcher into
/// `RecordDeserializationException`); `StringDeserializer` reads any bytes, and the
/// application's `Long.parseLong` throws `NumberFormatException` unless they are decimal
/// digits. `IntegerDeserializer` is refused by the configuration for the 64-bit values.
pub fn deserialize_value(class: SerdeClass, bytes: &[u8]) -> Result<u64, (&'static str, String)> {
    match class {
        SerdeClass::String => {
            let text = String::from_utf8_lossy(bytes);
            text.parse::<u64>().map_err(|_| {
                (
                    "NumberFormatException",
                    format!("For input string: \"{}\"", text.escape_debug()),
                )
            })
        }
        SerdeClass::Integer | SerdeClass::Long => {
            let size = if class == SerdeClass::Long { 8 } else { 4 };
            if bytes.len() != size {
                return Err((
                    "RecordDeserializationException",
                    format!(
                        "org.apache.kafka.common.errors.SerializationException: Size of data \
                         received by {} is not {size}",
                        class.deserializer_simple_name()
                    ),
                ));
            }
            Ok(if size == 8 {
                u64::from_be_bytes(bytes.try_into().expect("8 bytes"))
            } else {
                u32::from_be_bytes(bytes.try_into().expect("4 bytes")) as u64
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::effects::Effect;

    fn tp() -> TopicPartition {
        TopicPartition::new("events", 0)
    }

    fn consumer(reset: AutoOffsetReset) -> ConsumerClient {
        let config = ConsumerConfig {
            auto_offset_reset: reset,
            ..ConsumerConfig::default()
        };
        ConsumerClient::new(0, config, vec!["events".into()], vec![BrokerId(0)])
    }

    fn corr_of(m: &Message) -> CorrelationId {
        match m {
            Message::Metadata { corr, .. }
            | Message::ListOffsets { corr, .. }
            | Message::OffsetForLeaderEpoch { corr, .. }
            | Message::Fetch { corr, .. } => *corr,
            other => panic!("not a consumer request: {other:?}"),
        }
    }

    fn metadata(corr: CorrelationId, leader: i32, epoch: i32) -> Message {
        Message::MetadataResponse {
            corr,
            brokers: vec![BrokerId(0), BrokerId(1)],
            controller: Some(BrokerId(0)),
            partitions: vec![PartitionMetadata {
                tp: tp(),
                error: ErrorCode::None,
                leader: Some(BrokerId(leader)),
                leader_epoch: LeaderEpoch(epoch),
                replicas: vec![BrokerId(0), BrokerId(1)],
                isr: vec![BrokerId(0), BrokerId(1)],
            }],
        }
    }

    /// A batch of `n` 8-byte values `base..base+n` at offsets `base..`, written in `epoch`.
    fn batch(base: i64, n: i64, epoch: i32) -> Vec<u8> {
        let records = (0..n)
            .map(|i| (None, Some(((base + i) as u64).to_be_bytes().to_vec())))
            .collect();
        let mut b = RecordBatch::new(records, 0);
        b.base_offset = Offset(base);
        b.partition_leader_epoch = LeaderEpoch(epoch);
        b.encode()
    }

    fn fetch_response(corr: CorrelationId, error: ErrorCode, batches: Vec<Vec<u8>>) -> Message {
        Message::FetchResponse {
            corr,
            tp: tp(),
            error,
            high_watermark: Offset(100),
            last_stable_offset: Offset(100),
            log_start_offset: Offset(0),
            diverging_epoch: None,
            leader_epoch: LeaderEpoch(0),
            batches,
        }
    }

    /// Delivers `msg` and returns what the consumer did.
    fn deliver(c: &mut ConsumerClient, msg: Message) -> Effects<ConsumerTimer> {
        let mut out = Effects::new();
        c.on_message(Instant(0), NodeId::Broker(BrokerId(0)), msg, &mut out);
        out
    }

    fn fire(c: &mut ConsumerClient, timer: ConsumerTimer) -> Effects<ConsumerTimer> {
        let mut out = Effects::new();
        c.on_timeout(Instant(0), timer, &mut out);
        out
    }

    /// A started consumer that got metadata (leader broker-0, epoch `epoch`) and reset its
    /// position with ListOffsets to `offset`; returns the fetch it then sent.
    fn positioned(reset: AutoOffsetReset, epoch: i32, offset: i64) -> (ConsumerClient, Message) {
        let mut c = consumer(reset);
        let mut out = Effects::new();
        c.on_start(Instant(0), &mut out);
        let md = out.sent().remove(0);
        let out = deliver(&mut c, metadata(corr_of(&md), 0, epoch));
        let lo = out.sent().remove(0);
        let Message::ListOffsets { timestamp, .. } = lo else {
            panic!("expected ListOffsets, got {lo:?}");
        };
        assert_eq!(
            timestamp,
            if reset == AutoOffsetReset::Earliest {
                -2
            } else {
                -1
            }
        );
        let out = deliver(
            &mut c,
            Message::ListOffsetsResponse {
                corr: corr_of(&lo),
                tp: tp(),
                error: ErrorCode::None,
                offset: Offset(offset),
                leader_epoch: LeaderEpoch(epoch),
            },
        );
        assert!(out.events().contains(&Event::ConsumerPositionReset {
            tp: tp(),
            from_offset: None,
            to_offset: Offset(offset),
            strategy: if reset == AutoOffsetReset::Earliest {
                "earliest".into()
            } else {
                "latest".into()
            },
            reason: "no-position".into(),
        }));
        let fetch = out.sent().remove(0);
        assert!(matches!(fetch, Message::Fetch { .. }), "{fetch:?}");
        (c, fetch)
    }

    #[test]
    fn fetch_carries_kafka_defaults_and_the_current_leader_epoch() {
        let (c, fetch) = positioned(AutoOffsetReset::Earliest, 3, 0);
        let Message::Fetch {
            fetch_offset,
            current_leader_epoch,
            max_bytes,
            min_bytes,
            max_wait_ms,
            replica_id,
            ..
        } = fetch
        else {
            unreachable!()
        };
        assert_eq!(fetch_offset, Offset(0));
        assert_eq!(current_leader_epoch, LeaderEpoch(3));
        assert_eq!((min_bytes, max_wait_ms), (1, 500));
        assert_eq!(max_bytes, 1_048_576);
        assert_eq!(replica_id, None);
        assert_eq!(c.position(&tp()), Some(Offset(0)));
    }

    #[test]
    fn fetch_max_bytes_caps_a_partition_fetch() {
        let mut c = consumer(AutoOffsetReset::Earliest);
        c.config.fetch_max_bytes = 1000;
        let mut out = Effects::new();
        c.on_start(Instant(0), &mut out);
        let md = out.sent().remove(0);
        let out = deliver(&mut c, metadata(corr_of(&md), 0, 0));
        let lo = out.sent().remove(0);
        let out = deliver(
            &mut c,
            Message::ListOffsetsResponse {
                corr: corr_of(&lo),
                tp: tp(),
                error: ErrorCode::None,
                offset: Offset(0),
                leader_epoch: LeaderEpoch(0),
            },
        );
        assert!(
            matches!(
                out.sent()[0],
                Message::Fetch {
                    max_bytes: 1000,
                    ..
                }
            ),
            "{:?}",
            out.sent()
        );
    }

    #[test]
    fn a_blocked_poll_returns_when_records_arrive_at_most_max_poll_records() {
        let (mut c, fetch) = positioned(AutoOffsetReset::Earliest, 0, 0);
        c.config.max_poll_records = 3;
        // The application polls: nothing buffered, so poll(timeout) blocks; nothing recorded.
        let out = fire(&mut c, ConsumerTimer::Poll);
        assert!(out.ops().is_empty());
        assert!(c.blocked_poll.is_some());
        // The long poll answers with 5 records: the blocked poll returns 3 of them at once.
        let out = deliver(
            &mut c,
            fetch_response(corr_of(&fetch), ErrorCode::None, vec![batch(0, 5, 0)]),
        );
        let o = out.ops();
        assert_eq!(o.len(), 2);
        assert_eq!(o[0].op_type, OpType::Invoke);
        assert_eq!(o[1].op_type, OpType::Ok);
        let OpValue::Poll { records } = &o[1].value else {
            unreachable!()
        };
        let offsets: Vec<i64> = records.iter().map(|r| r.offset.0).collect();
        assert_eq!(offsets, [0, 1, 2]);
        assert_eq!(records[2].value, 2);
        // position() is the next record poll() returns; the next fetch starts after the batch.
        assert_eq!(c.position(&tp()), Some(Offset(3)));
        assert!(matches!(
            out.sent()[0],
            Message::Fetch {
                fetch_offset: Offset(5),
                ..
            }
        ));
        // A poll timeout of a poll that already returned is ignored.
        let out = fire(&mut c, ConsumerTimer::PollTimeout { generation: 1 });
        assert!(out.ops().is_empty());
    }

    /// A batch of values at offsets `base..` with each value's bytes as given.
    fn raw_batch(base: i64, values: Vec<Vec<u8>>) -> Vec<u8> {
        let records = values.into_iter().map(|v| (None, Some(v))).collect();
        let mut b = RecordBatch::new(records, 0);
        b.base_offset = Offset(base);
        b.encode()
    }

    /// A value the deserializer cannot read is a poison pill (KIP-334): the records before it
    /// are returned, then `poll()` throws RecordDeserializationException naming the partition
    /// and offset, and the position stays on that record (no further fetch).
    #[test]
    fn a_value_long_deserializer_cannot_read_stops_the_partition_at_its_offset() {
        let (mut c, fetch) = positioned(AutoOffsetReset::Earliest, 0, 0);
        let values = vec![
            7u64.to_be_bytes().to_vec(),
            b"4294967304".to_vec(), // StringSerializer's bytes for a value
            9u64.to_be_bytes().to_vec(),
        ];
        let out = deliver(
            &mut c,
            fetch_response(corr_of(&fetch), ErrorCode::None, vec![raw_batch(0, values)]),
        );
        let text = "Error deserializing key/value for partition events-0 at offset 1. If needed, \
                    please seek past the record to continue consumption. Caused by: \
                    org.apache.kafka.common.errors.SerializationException: Size of data received \
                    by LongDeserializer is not 8";
        assert!(out.events().contains(&Event::ConsumerError {
            tp: tp(),
            exception: "RecordDeserializationException".into(),
            message: text.into(),
        }));
        assert!(out.sent().is_empty(), "no fetch past the poison pill");
        let o = fire(&mut c, ConsumerTimer::Poll).ops();
        assert_eq!(o[1].op_type, OpType::Fail);
        assert_eq!(
            o[1].error.as_deref(),
            Some(format!("RecordDeserializationException: {text}").as_str())
        );
        let o = fire(&mut c, ConsumerTimer::Poll).ops();
        let OpValue::Poll { records } = &o[1].value else {
            unreachable!()
        };
        assert_eq!(records.iter().map(|r| r.value).collect::<Vec<_>>(), [7]);
        assert_eq!(c.position(&tp()), Some(Offset(1)));
    }

    /// `StringDeserializer` reads any bytes; the application's `Long.parseLong` of the
    /// workload's value is what fails on LongSerializer's bytes. Decimal text reads back.
    #[test]
    fn string_deserializer_reads_decimal_values_and_fails_on_long_bytes() {
        assert_eq!(
            deserialize_value(SerdeClass::String, b"4294967304"),
            Ok(4294967304)
        );
        assert_eq!(
            deserialize_value(SerdeClass::Long, &4294967304u64.to_be_bytes()),
            Ok(4294967304)
        );
        let (exception, message) =
            deserialize_value(SerdeClass::String, &7u64.to_be_bytes()).unwrap_err();
        assert_eq!(exception, "NumberFormatException");
        assert!(message.starts_with("For input string: \""), "{message}");
    }

    #[test]
    fn none_without_a_position_throws_no_offset_for_partition() {
        let mut c = consumer(AutoOffsetReset::None);
        let mut out = Effects::new();
        c.on_start(Instant(0), &mut out);
        let md = out.sent().remove(0);
        let out = deliver(&mut c, metadata(corr_of(&md), 0, 0));
        assert!(out.sent().is_empty(), "no ListOffsets under none");
        let text = "Undefined offset with no reset policy for partitions: [events-0]";
        assert!(out.events().contains(&Event::ConsumerError {
            tp: tp(),
            exception: "NoOffsetForPartitionException".into(),
            message: text.into(),
        }));
        let out = fire(&mut c, ConsumerTimer::Poll);
        let o = out.ops();
        assert_eq!(o[1].op_type, OpType::Fail);
        assert_eq!(
            o[1].error.as_deref(),
            Some(format!("NoOffsetForPartitionException: {text}").as_str())
        );
        // Thrown once; the partition waits for the application (a seek).
        let out = fire(&mut c, ConsumerTimer::Poll);
        assert!(out.ops().is_empty());
        assert_eq!(c.position(&tp()), None);
        let mut out = Effects::new();
        c.seek(&tp(), Offset(7), &mut out);
        assert_eq!(c.position(&tp()), Some(Offset(7)));
        assert!(matches!(
            out.sent()[0],
            Message::Fetch {
                fetch_offset: Offset(7),
                ..
            }
        ));
    }

    #[test]
    fn offset_out_of_range_resets_by_policy_and_says_so() {
        let (mut c, fetch) = positioned(AutoOffsetReset::Latest, 0, 40);
        let out = deliver(
            &mut c,
            fetch_response(corr_of(&fetch), ErrorCode::OffsetOutOfRange, vec![]),
        );
        let lo = out.sent().remove(0);
        assert!(matches!(lo, Message::ListOffsets { timestamp: -1, .. }));
        let out = deliver(
            &mut c,
            Message::ListOffsetsResponse {
                corr: corr_of(&lo),
                tp: tp(),
                error: ErrorCode::None,
                offset: Offset(90),
                leader_epoch: LeaderEpoch(0),
            },
        );
        assert_eq!(
            out.events(),
            [Event::ConsumerPositionReset {
                tp: tp(),
                from_offset: Some(Offset(40)),
                to_offset: Offset(90),
                strategy: "latest".into(),
                reason: "offset-out-of-range".into(),
            }]
        );
    }

    #[test]
    fn offset_out_of_range_under_none_throws() {
        let mut c = consumer(AutoOffsetReset::None);
        let mut out = Effects::new();
        c.on_start(Instant(0), &mut out);
        let md = out.sent().remove(0);
        deliver(&mut c, metadata(corr_of(&md), 0, 2));
        let mut out = Effects::new();
        c.seek(&tp(), Offset(500), &mut out);
        let fetch = out.sent().remove(0);
        let out = deliver(
            &mut c,
            fetch_response(corr_of(&fetch), ErrorCode::OffsetOutOfRange, vec![]),
        );
        assert!(out.sent().is_empty());
        let Some(Event::ConsumerError {
            exception, message, ..
        }) = out.events().pop()
        else {
            panic!("{:?}", out.events())
        };
        assert_eq!(exception, "OffsetOutOfRangeException");
        assert_eq!(
            message,
            "Fetch position FetchPosition{offset=500, offsetEpoch=Optional.empty, \
             currentLeader=LeaderAndEpoch{leader=Optional[broker-0], epoch=2}} is out of range \
             for partition events-0"
        );
    }

    #[test]
    fn fenced_or_unknown_leader_epoch_refreshes_metadata() {
        for error in [ErrorCode::FencedLeaderEpoch, ErrorCode::UnknownLeaderEpoch] {
            let (mut c, fetch) = positioned(AutoOffsetReset::Earliest, 0, 0);
            // Let the periodic metadata request complete first.
            c.metadata_in_flight = false;
            let out = deliver(&mut c, fetch_response(corr_of(&fetch), error, vec![]));
            assert!(
                matches!(out.sent()[0], Message::Metadata { .. }),
                "{error:?}: {:?}",
                out.sent()
            );
        }
    }

    /// A consumer that read offsets 0..10 written in epoch 1 from leader broker-0, then learns
    /// from metadata that broker-1 leads in epoch 2; returns the validation request.
    fn after_leader_change(reset: AutoOffsetReset) -> (ConsumerClient, Message) {
        let (mut c, fetch) = if reset == AutoOffsetReset::None {
            // No reset policy: the application seeks to 0 first.
            let mut c = consumer(reset);
            let mut out = Effects::new();
            c.on_start(Instant(0), &mut out);
            let md = out.sent().remove(0);
            deliver(&mut c, metadata(corr_of(&md), 0, 1));
            let mut out = Effects::new();
            c.seek(&tp(), Offset(0), &mut out);
            let fetch = out.sent().remove(0);
            (c, fetch)
        } else {
            positioned(reset, 1, 0)
        };
        let out = deliver(
            &mut c,
            fetch_response(corr_of(&fetch), ErrorCode::None, vec![batch(0, 10, 1)]),
        );
        let next_fetch = out.sent().remove(0);
        c.metadata_in_flight = false;
        let mut out = Effects::new();
        c.request_metadata(&mut out);
        let md = out.sent().remove(0);
        deliver(&mut c, metadata(corr_of(&md), 1, 2));
        // The fetch still in flight to the old leader comes back empty; then the consumer
        // validates its position with the new leader.
        let out = deliver(
            &mut c,
            fetch_response(corr_of(&next_fetch), ErrorCode::None, vec![]),
        );
        let v = out
            .sent()
            .into_iter()
            .find(|m| matches!(m, Message::OffsetForLeaderEpoch { .. }))
            .expect("validation after a leader change");
        let Message::OffsetForLeaderEpoch {
            current_leader_epoch,
            leader_epoch,
            replica_id,
            ..
        } = &v
        else {
            unreachable!()
        };
        assert_eq!(*current_leader_epoch, LeaderEpoch(2));
        assert_eq!(
            *leader_epoch,
            LeaderEpoch(1),
            "the epoch of the last record read"
        );
        assert_eq!(*replica_id, None);
        (c, v)
    }

    fn epoch_end(corr: CorrelationId, epoch: i32, end: i64) -> Message {
        Message::OffsetForLeaderEpochResponse {
            corr,
            tp: tp(),
            error: ErrorCode::None,
            end: EpochEndOffset {
                leader_epoch: LeaderEpoch(epoch),
                end_offset: Offset(end),
            },
        }
    }

    #[test]
    fn a_validated_position_is_kept() {
        let (mut c, v) = after_leader_change(AutoOffsetReset::Earliest);
        let out = deliver(&mut c, epoch_end(corr_of(&v), 1, 10));
        assert!(out.events().is_empty());
        assert!(matches!(
            out.sent()[0],
            Message::Fetch {
                fetch_offset: Offset(10),
                current_leader_epoch: LeaderEpoch(2),
                ..
            }
        ));
    }

    #[test]
    fn log_truncation_below_the_position_is_detected_and_reset_to_the_divergent_offset() {
        let (mut c, v) = after_leader_change(AutoOffsetReset::Earliest);
        // The new leader ends epoch 1 at offset 6: offsets 6..10 the consumer read are gone.
        let out = deliver(&mut c, epoch_end(corr_of(&v), 1, 6));
        assert_eq!(
            out.events(),
            [
                Event::ConsumerLogTruncation {
                    tp: tp(),
                    fetch_offset: Offset(10),
                    offset_epoch: LeaderEpoch(1),
                    divergent_offset: Offset(6),
                    divergent_epoch: LeaderEpoch(1),
                },
                Event::ConsumerPositionReset {
                    tp: tp(),
                    from_offset: Some(Offset(10)),
                    to_offset: Offset(6),
                    strategy: "divergent-offset".into(),
                    reason: "log-truncation".into(),
                }
            ]
        );
        // Buffered records from the lost part of the log are dropped.
        assert!(c.buffer.iter().all(|r| r.offset < Offset(6)));
        assert!(matches!(
            out.sent()[0],
            Message::Fetch {
                fetch_offset: Offset(6),
                ..
            }
        ));
    }

    #[test]
    fn log_truncation_under_none_throws_log_truncation_exception() {
        let (mut c, v) = after_leader_change(AutoOffsetReset::None);
        let out = deliver(&mut c, epoch_end(corr_of(&v), 1, 6));
        assert!(out.sent().is_empty(), "blocked until the application seeks");
        // Drain the records read before, then the next poll throws.
        let _ = fire(&mut c, ConsumerTimer::Poll);
        let out = fire(&mut c, ConsumerTimer::Poll);
        let o = out.ops();
        assert_eq!(o[1].op_type, OpType::Fail);
        let error = o[1].error.clone().unwrap();
        assert!(
            error.starts_with(
                "LogTruncationException: Detected truncated partitions: \
                 [LogTruncation(topicPartition=events-0, fetchPosition=FetchPosition{offset=10, \
                 offsetEpoch=Optional[1]"
            ),
            "{error}"
        );
        assert!(
            error.contains("divergentOffset=Optional[OffsetAndMetadata{offset=6, leaderEpoch=1")
        );
    }

    #[test]
    fn a_broker_before_kip_320_skips_the_validation() {
        let (mut c, v) = after_leader_change(AutoOffsetReset::Earliest);
        let out = deliver(
            &mut c,
            Message::OffsetForLeaderEpochResponse {
                corr: corr_of(&v),
                tp: tp(),
                error: ErrorCode::UnsupportedVersion,
                end: EpochEndOffset {
                    leader_epoch: LeaderEpoch::UNKNOWN,
                    end_offset: Offset(-1),
                },
            },
        );
        assert!(out.events().is_empty());
        assert!(matches!(
            out.sent()[0],
            Message::Fetch {
                fetch_offset: Offset(10),
                ..
            }
        ));
    }

    #[test]
    fn an_undefined_epoch_resets_by_policy() {
        let (mut c, v) = after_leader_change(AutoOffsetReset::Latest);
        let out = deliver(&mut c, epoch_end(corr_of(&v), -1, -1));
        assert!(matches!(
            out.sent()[0],
            Message::ListOffsets { timestamp: -1, .. }
        ));
    }

    #[test]
    fn a_late_start_waits_and_a_seek_moves_the_position() {
        let mut c = consumer(AutoOffsetReset::Latest).with_workload(ConsumerWorkload {
            start_ms: 8_000,
            seeks: vec![SeekAt {
                at_ms: 9_000,
                tp: tp(),
                offset: Offset(0),
            }],
        });
        let mut out = Effects::new();
        c.on_start(Instant(0), &mut out);
        assert!(out.sent().is_empty());
        assert_eq!(
            out.list,
            [Effect::SetTimer {
                after_ms: 8_000,
                timer: ConsumerTimer::Start
            }]
        );
        let mut out = Effects::new();
        c.on_timeout(Instant(8_000), ConsumerTimer::Start, &mut out);
        assert!(matches!(out.sent()[0], Message::Metadata { .. }));
        assert!(out.list.contains(&Effect::SetTimer {
            after_ms: 1_000,
            timer: ConsumerTimer::Seek {
                tp: tp(),
                offset: Offset(0)
            }
        }));
        // A process restarted after start_ms starts at once and does not repeat the seek.
        let mut c2 = consumer(AutoOffsetReset::Latest).with_workload(c.workload.clone());
        let mut out = Effects::new();
        c2.on_start(Instant(12_000), &mut out);
        assert!(matches!(out.sent()[0], Message::Metadata { .. }));
        assert!(!out.list.iter().any(|e| matches!(
            e,
            Effect::SetTimer {
                timer: ConsumerTimer::Seek { .. },
                ..
            }
        )));
    }

    #[test]
    fn a_seek_drops_buffered_records_and_ignores_the_fetch_in_flight() {
        let (mut c, fetch) = positioned(AutoOffsetReset::Earliest, 0, 0);
        let out = deliver(
            &mut c,
            fetch_response(corr_of(&fetch), ErrorCode::None, vec![batch(0, 5, 0)]),
        );
        let stale = out.sent().remove(0);
        let mut out = Effects::new();
        c.seek(&tp(), Offset(2), &mut out);
        assert!(c.buffer.is_empty());
        assert_eq!(
            out.events(),
            [Event::ConsumerPositionReset {
                tp: tp(),
                from_offset: Some(Offset(0)),
                to_offset: Offset(2),
                strategy: "seek".into(),
                reason: "seek".into(),
            }]
        );
        // The call is a client op too, so the poll checkers know the position moved on purpose.
        let seek = OpValue::Seek {
            tp: tp(),
            offset: Offset(2),
        };
        let recorded: Vec<(OpType, OpValue)> = out
            .ops()
            .into_iter()
            .map(|o| (o.op_type, o.value))
            .collect();
        assert_eq!(
            recorded,
            [(OpType::Invoke, seek.clone()), (OpType::Ok, seek)]
        );
        let fresh = out.sent().remove(0);
        let out = deliver(
            &mut c,
            fetch_response(corr_of(&stale), ErrorCode::None, vec![batch(5, 3, 0)]),
        );
        assert!(out.is_empty(), "the stale answer is ignored");
        deliver(
            &mut c,
            fetch_response(corr_of(&fresh), ErrorCode::None, vec![batch(0, 5, 0)]),
        );
        let offsets: Vec<i64> = c.buffer.iter().map(|r| r.offset.0).collect();
        assert_eq!(offsets, [2, 3, 4]);
    }
}
