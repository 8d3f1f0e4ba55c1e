//! The follower's side of replication, partition by partition (Kafka's
//! `ReplicaFetcherThread.processPartitionData`, `AbstractFetcherThread`'s truncation): appending
//! what the leader returns for one partition of a session's fetch (`fetcher_thread.rs`),
//! learning its high watermark and log start offset, and truncating: on a diverging epoch
//! (KIP-279 / KIP-595), on OFFSET_OUT_OF_RANGE, or, in the legacy modes `kip-101` and
//! `kip-279`, after an OffsetsForLeaderEpoch round before the partition is fetched.

use super::partition::Role;
use super::{Broker, BrokerTimer};
use crate::config::TruncationMode;
use crate::effects::Effects;
use crate::event::Event;
use crate::protocol::*;
use crate::record::read_header;
use crate::types::*;

impl Broker {
    /// The truncation phase of KIP-101 / KIP-279 for `tp`: ask its leader where the epoch
    /// `epoch_lookup` ends. Unfenced, as before KIP-320: the current leader epoch is not sent.
    /// One request per partition; the partition is not fetched until it is answered.
    pub(super) fn send_epoch_lookup(
        &mut self,
        tp: &TopicPartition,
        out: &mut Effects<BrokerTimer>,
    ) {
        let corr = self.fresh_corr();
        let me = self.id;
        let socket_timeout = self.config.controller_socket_timeout_ms;
        let Some(p) = self.partitions.get_mut(tp) else {
            return;
        };
        let Role::Follower(f) = &mut p.role else {
            return;
        };
        let (Some(leader), Some(epoch)) = (f.leader, f.epoch_lookup) else {
            return;
        };
        if f.in_flight.is_some() || f.delayed {
            return;
        }
        f.in_flight = Some(corr);
        let msg = Message::OffsetForLeaderEpoch {
            corr,
            replica_id: Some(me),
            tp: tp.clone(),
            current_leader_epoch: LeaderEpoch::UNKNOWN,
            leader_epoch: epoch,
        };
        self.fetch_targets.insert(corr, (tp.clone(), leader));
        out.send(NodeId::Broker(leader), msg);
        out.timer(
            socket_timeout,
            BrokerTimer::EpochLookupTimeout {
                tp: tp.clone(),
                corr,
            },
        );
    }

    /// One partition of a session's fetch response, for a partition still following with
    /// the generation the request was sent for. Returns `false` when the partition must back
    /// off (`replica.fetch.backoff.ms`: an error such as NOT_LEADER_OR_FOLLOWER or
    /// FENCED_LEADER_EPOCH), `true` when it may be fetched again at once (data appended, or
    /// truncated after a diverging epoch or OFFSET_OUT_OF_RANGE).
    pub(super) fn on_fetched_partition(
        &mut self,
        r: FetchPartitionResponse,
        out: &mut Effects<BrokerTimer>,
    ) -> bool {
        let FetchPartitionResponse {
            tp,
            error,
            high_watermark,
            log_start_offset: leader_log_start_offset,
            diverging_epoch: diverging,
            batches,
            ..
        } = r;
        let me = self.id;
        let flush_interval = self.flush_interval_messages(&tp.topic);
        let Some(p) = self.partitions.get_mut(&tp) else {
            return true;
        };
        if !matches!(p.role, Role::Follower(_)) {
            return true;
        }
        if error != ErrorCode::None {
            if error == ErrorCode::OffsetOutOfRange && p.log.log_end_offset() > high_watermark {
                // Our log is longer than the leader's: cut back to what is committed.
                let mut ops = Vec::new();
                let from = p.log.log_end_offset();
                let to = p.log.truncate_to(high_watermark, &mut ops);
                p.high_watermark = p.high_watermark.min(to);
                for op in ops {
                    out.disk(op);
                }
                out.event(Event::Truncated {
                    tp: tp.clone(),
                    broker: me,
                    from_offset: from,
                    to_offset: to,
                    reason: "offset-out-of-range".into(),
                });
                self.rebuild_producers(&tp);
                return true;
            } else if error == ErrorCode::OffsetOutOfRange
                && p.log.log_end_offset() < leader_log_start_offset
            {
                // Kafka's ReplicaFetcherThread: our fetch offset is below the leader's log
                // start offset (retention deleted what we still need), so nothing we have can
                // be continued: truncate fully and start at the leader's log start offset.
                let mut ops = Vec::new();
                let from = p.log.log_end_offset();
                p.log
                    .truncate_fully_and_start_at(leader_log_start_offset, &mut ops);
                p.high_watermark = leader_log_start_offset;
                for op in ops {
                    out.disk(op);
                }
                out.event(Event::Truncated {
                    tp: tp.clone(),
                    broker: me,
                    from_offset: from,
                    to_offset: leader_log_start_offset,
                    reason: "below-leader-log-start-offset".into(),
                });
                out.event(Event::LogStartOffsetAdvanced {
                    tp: tp.clone(),
                    broker: me,
                    log_start_offset: leader_log_start_offset,
                    reason: "offset-out-of-range".into(),
                });
                self.rebuild_producers(&tp);
                return true;
            }
            return false;
        }
        let mut ops = Vec::new();
        if let Some(end) = diverging {
            // Truncate to the end of the last epoch both logs share (KIP-279).
            let from = p.log.log_end_offset();
            let target = if end.leader_epoch == LeaderEpoch::UNKNOWN || end.end_offset.0 < 0 {
                p.log.log_start_offset()
            } else {
                let mine = p.log.end_offset_for_epoch(end.leader_epoch);
                if mine.leader_epoch == end.leader_epoch {
                    end.end_offset.min(mine.end_offset)
                } else {
                    end.end_offset
                        .min(mine.end_offset.max(p.log.log_start_offset()))
                }
            };
            let to = p.log.truncate_to(target.min(from), &mut ops);
            p.high_watermark = p.high_watermark.min(to);
            for op in ops {
                out.disk(op);
            }
            if to < from {
                out.event(Event::Truncated {
                    tp: tp.clone(),
                    broker: me,
                    from_offset: from,
                    to_offset: to,
                    reason: "diverging-epoch".into(),
                });
            }
            self.rebuild_producers(&tp);
            return true;
        }
        let segments_before = p.log.segments().len();
        let mut append_error = None;
        for b in &batches {
            match p.log.append_as_follower(b, &mut ops) {
                Ok((base, _last)) => {
                    if let Ok(h) = read_header(b) {
                        if h.producer_id != ProducerId::NONE && !h.is_control() {
                            let first = h.base_sequence.0;
                            p.record_producer_batch(
                                h.producer_id,
                                h.producer_epoch,
                                first,
                                first.wrapping_add(h.last_offset_delta),
                                base,
                            );
                        }
                    }
                }
                Err(e) => {
                    append_error = Some(e.to_string());
                    break;
                }
            }
        }
        if let Some(error) = append_error {
            // Kafka's follower raises UnexpectedAppendOffsetException (or a corrupt record
            // error) here and its fetcher marks the partition failed: this replica makes no
            // more progress. Only diverged logs (the legacy modes) get here: a batch the leader
            // wrote from an offset below our log end.
            let leo = p.log.log_end_offset();
            if let Role::Follower(f) = &mut p.role {
                if f.append_failed_at != Some(leo) {
                    f.append_failed_at = Some(leo);
                    out.event(Event::FollowerAppendFailed {
                        tp: tp.clone(),
                        broker: me,
                        leader: f.leader,
                        log_end_offset: leo,
                        error,
                    });
                }
            }
        }
        p.log.maybe_flush(flush_interval, &mut ops);
        let new_hw = high_watermark.min(p.log.log_end_offset());
        if new_hw > p.high_watermark {
            p.high_watermark = new_hw;
            p.log.on_high_watermark(new_hw);
        }
        // The follower learns the leader's log start offset (capped at its own HW, as Kafka's
        // maybeIncrementLogStartOffset requires).
        let new_log_start = leader_log_start_offset.min(p.high_watermark);
        let advanced = p
            .log
            .maybe_increment_log_start_offset(new_log_start, &mut ops);
        for op in ops {
            out.disk(op);
        }
        for seg in p.log.segments().iter().skip(segments_before) {
            out.event(Event::LogSegmentRolled {
                tp: tp.clone(),
                broker: me,
                base_offset: seg.base_offset(),
            });
        }
        if advanced {
            out.event(Event::LogStartOffsetAdvanced {
                tp: tp.clone(),
                broker: me,
                log_start_offset: new_log_start,
                reason: "leader-log-start-offset".into(),
            });
        }
        true
    }

    /// The follower's truncation phase in modes `kip-101` and `kip-279`.
    ///
    /// * `kip-101` (one round, Kip101.tla): truncate to the leader's answer, or to the high
    ///   watermark if the leader had no answer (`UNDEFINED_EPOCH_OFFSET`), as Kafka 0.11 did.
    ///   The answer says nothing about which epoch it belongs to, so a leader that never had
    ///   the follower's epoch answers with an offset past the point where the logs diverge
    ///   (KIP-279's fast leader change).
    /// * `kip-279` (Kip279.tla): the answer is `(E, end)`, the leader's largest epoch `<=` the
    ///   one asked. If the follower has `E` too it truncates to the smaller of the two ends of
    ///   `E`; if it has no epoch `<= E` it truncates to its log start; otherwise it asks again
    ///   for its own largest epoch below `E`, until both agree on an epoch.
    ///
    /// Then the follower starts fetching.
    pub(super) fn on_offset_for_leader_epoch_response(
        &mut self,
        now: Instant,
        corr: CorrelationId,
        tp: TopicPartition,
        error: ErrorCode,
        end: EpochEndOffset,
        out: &mut Effects<BrokerTimer>,
    ) {
        self.fetch_targets.remove(&corr);
        let me = self.id;
        let mode = self.config.replication_truncation;
        let backoff = self.config.replica_fetch_backoff_ms;
        let Some(p) = self.partitions.get_mut(&tp) else {
            return;
        };
        let Role::Follower(f) = &mut p.role else {
            return;
        };
        if f.in_flight != Some(corr) || f.epoch_lookup.is_none() {
            return;
        }
        f.in_flight = None;
        if error != ErrorCode::None {
            self.delay_follower_partition(&tp, backoff, out);
            return;
        }
        let leo = p.log.log_end_offset();
        let (target, reason) = if mode == TruncationMode::Kip101 {
            if end.end_offset == crate::log::UNDEFINED_EPOCH_OFFSET {
                (
                    p.high_watermark,
                    "offsets-for-leader-epoch (KIP-101, no answer: high watermark)",
                )
            } else {
                (end.end_offset, "offsets-for-leader-epoch (KIP-101)")
            }
        } else if end.leader_epoch == LeaderEpoch::UNKNOWN {
            // The leader has no epoch at or below the one asked: nothing is shared.
            (
                p.log.log_start_offset(),
                "offsets-for-leader-epoch (KIP-279)",
            )
        } else {
            let mine = p.log.end_offset_for_epoch(end.leader_epoch);
            if mine.leader_epoch == end.leader_epoch {
                (
                    end.end_offset.min(mine.end_offset),
                    "offsets-for-leader-epoch (KIP-279)",
                )
            } else if mine.leader_epoch == LeaderEpoch::UNKNOWN {
                (
                    p.log.log_start_offset(),
                    "offsets-for-leader-epoch (KIP-279)",
                )
            } else {
                // Ask again for my largest epoch below the leader's answer.
                assert!(mine.leader_epoch < end.leader_epoch);
                f.epoch_lookup = Some(mine.leader_epoch);
                self.follower_partition_ready(now, &tp, out);
                return;
            }
        };
        f.epoch_lookup = None;
        let mut ops = Vec::new();
        let to = p.log.truncate_to(target.min(leo), &mut ops);
        p.high_watermark = p.high_watermark.min(to);
        for op in ops {
            out.disk(op);
        }
        if to < leo {
            out.event(Event::Truncated {
                tp: tp.clone(),
                broker: me,
                from_offset: leo,
                to_offset: to,
                reason: reason.into(),
            });
            self.rebuild_producers(&tp);
        }
        self.follower_partition_ready(now, &tp, out);
    }

    pub(super) fn rebuild_producers(&mut self, tp: &TopicPartition) {
        if let Some(p) = self.partitions.get_mut(tp) {
            p.rebuild_producer_state();
        }
    }

    /// An OffsetsForLeaderEpoch got no answer in time: forget it and ask again.
    pub(super) fn on_epoch_lookup_timeout(
        &mut self,
        now: Instant,
        tp: TopicPartition,
        corr: CorrelationId,
        out: &mut Effects<BrokerTimer>,
    ) {
        let Some(p) = self.partitions.get_mut(&tp) else {
            return;
        };
        let Role::Follower(f) = &mut p.role else {
            return;
        };
        if f.in_flight == Some(corr) {
            f.in_flight = None;
            self.fetch_targets.remove(&corr);
            self.follower_partition_ready(now, &tp, out);
        }
    }

    /// A follower's OffsetsForLeaderEpoch was lost (not sent, or its connection closed): ask
    /// again after the backoff.
    pub(super) fn epoch_lookup_failed(
        &mut self,
        corr: CorrelationId,
        tp: TopicPartition,
        out: &mut Effects<BrokerTimer>,
    ) {
        self.fetch_targets.remove(&corr);
        let stuck = matches!(
            self.partitions.get(&tp).map(|p| &p.role),
            Some(Role::Follower(f)) if f.in_flight == Some(corr)
        );
        if stuck {
            let backoff = self.config.replica_fetch_backoff_ms;
            self.delay_follower_partition(&tp, backoff, out);
        }
    }
}
