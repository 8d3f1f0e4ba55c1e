//! Kafka's `SubscriptionState`: the partitions this consumer is assigned, the fetch position
//! and state of each, `position()` and `seek()`.
//!
//! # Positions (`SubscriptionState` in Kafka's client)
//! Each assigned partition has a **fetch position**: the offset of the next record to fetch and
//! the leader epoch of the record before it (`offsetEpoch`, KIP-320), plus the current leader
//! and its epoch from metadata. A partition is in one of five states:
//!
//! * **initializing** (a consumer with a `group.id` only): no position yet; the group's
//!   committed offset is read with OffsetFetch from the group coordinator (Kafka's
//!   `ConsumerCoordinator.refreshCommittedOffsetsIfNeeded`, see `coordinator.rs`). A committed
//!   offset becomes the position (fetching); a partition without one awaits a reset. A consumer
//!   without a group starts in *awaiting reset* directly (Kafka's consumer passes through
//!   initializing at once: it has no committed offsets to read).
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

use super::{ConsumerClient, ConsumerTimer};
use crate::effects::Effects;
use crate::event::{ClientOp, Event, OpType, OpValue};
use crate::types::*;
use std::collections::BTreeMap;

/// Kafka's `FetchPosition`: the next offset to fetch and the leader epoch of the record
/// before it (`offsetEpoch`, KIP-320; `UNKNOWN` when not known, e.g. after a seek).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FetchPosition {
    pub offset: Offset,
    pub offset_epoch: LeaderEpoch,
}

/// Why a partition needs a reset by `auto.offset.reset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ResetReason {
    /// No position yet (a new assignment).
    NoPosition,
    /// A fetch answered OFFSET_OUT_OF_RANGE.
    OffsetOutOfRange,
    /// OffsetForLeaderEpoch answered an undefined epoch or offset.
    UndefinedEpoch,
}

impl ResetReason {
    pub(super) fn name(self) -> &'static str {
        match self {
            ResetReason::NoPosition => "no-position",
            ResetReason::OffsetOutOfRange => "offset-out-of-range",
            ResetReason::UndefinedEpoch => "undefined-epoch",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum FetchState {
    /// Waiting for the group's committed offset (Kafka's `FetchStates.INITIALIZING`).
    Initializing,
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
pub(super) struct PartitionFetchState {
    pub(super) leader: Option<BrokerId>,
    /// The current leader's epoch as metadata says (sent as `current_leader_epoch`).
    pub(super) leader_epoch: LeaderEpoch,
    pub(super) state: FetchState,
    pub(super) in_flight: Option<CorrelationId>,
}

impl PartitionFetchState {
    /// A newly assigned partition: initializing when the consumer has a group (its committed
    /// offset is read first), else awaiting a reset by `auto.offset.reset`.
    pub(super) fn new(grouped: bool) -> Self {
        PartitionFetchState {
            leader: None,
            leader_epoch: LeaderEpoch::UNKNOWN,
            state: if grouped {
                FetchState::Initializing
            } else {
                FetchState::AwaitReset {
                    reason: ResetReason::NoPosition,
                    from: None,
                }
            },
            in_flight: None,
        }
    }
}

impl ConsumerClient {
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
            FetchState::AwaitReset { .. } | FetchState::Initializing => None,
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
            .or_insert_with(|| PartitionFetchState::new(false));
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

    /// Kafka's `FetchPosition.toString()`.
    pub(super) fn describe_position(&self, tp: &TopicPartition, p: FetchPosition) -> String {
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
}
