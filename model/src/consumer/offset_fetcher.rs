//! Kafka's `OffsetFetcher` (`OffsetsRequestManager` in the new consumer): a position reset by
//! `auto.offset.reset` with ListOffsets, or thrown from `poll()` under `none`, and the KIP-320
//! validation of a position with OffsetForLeaderEpoch after a leader change, which detects a
//! log truncated below it (see the states in `subscription_state.rs`).

use super::subscription_state::{FetchPosition, FetchState, ResetReason};
use super::{ConsumerClient, ConsumerTimer};
use crate::config::AutoOffsetReset;
use crate::effects::Effects;
use crate::event::Event;
use crate::protocol::*;
use crate::types::*;

impl ConsumerClient {
    /// With `auto.offset.reset=none` a reset is an exception thrown from `poll()`.
    pub(super) fn raise_for_reset(
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

    pub(super) fn on_list_offsets_response(
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
    pub(super) fn on_offset_for_leader_epoch_response(
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
}
