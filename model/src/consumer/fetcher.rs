//! Kafka's `Fetcher` (with `AbstractFetch` and `CompletedFetch`): the next request each
//! partition needs, the Fetch to its leader, and the records of a fetch response turned into
//! buffered records for `poll()`, stopping at a record the application cannot read.
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

use super::deserializers::deserialize_value;
use super::subscription_state::{FetchPosition, FetchState, ResetReason};
use super::{ConsumerClient, ConsumerTimer, Pending};
use crate::config::AutoOffsetReset;
use crate::effects::Effects;
use crate::event::PolledRecord;
use crate::protocol::*;
use crate::record::RecordBatch;
use crate::types::*;

impl ConsumerClient {
    pub(super) fn fetch_all(&mut self, out: &mut Effects<ConsumerTimer>) {
        let tps: Vec<TopicPartition> = self.partitions.keys().cloned().collect();
        for tp in tps {
            self.fetch_one(&tp, out);
        }
    }

    /// Sends the next request `tp` needs (ListOffsets, OffsetForLeaderEpoch or Fetch), unless
    /// one is in flight, the leader is unknown, or the application has a backlog to poll.
    pub(super) fn fetch_one(&mut self, tp: &TopicPartition, out: &mut Effects<ConsumerTimer>) {
        let Some(s) = self.partitions.get(tp).cloned() else {
            return;
        };
        if s.in_flight.is_some() || matches!(s.state, FetchState::Blocked(_)) {
            return;
        }
        if s.state == FetchState::Initializing {
            // The group coordinator has the position: one OffsetFetch for every such partition.
            self.refresh_committed_offsets(out);
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
            FetchState::Blocked(_) | FetchState::Initializing => return,
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
    pub(super) fn leader_lost(&mut self, tp: &TopicPartition, out: &mut Effects<ConsumerTimer>) {
        if let Some(s) = self.partitions.get_mut(tp) {
            s.leader = None;
        }
        self.request_metadata(out);
        self.retry_later(tp, out);
    }

    pub(super) fn on_fetch_response(
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
}
