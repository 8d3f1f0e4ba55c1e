//! The follower's fetcher (Kafka's `ReplicaFetcherThread`, `AbstractFetcherThread`): one
//! fetch in flight per followed partition, appending what the leader returns, learning its
//! high watermark and log start offset, and truncating: on a diverging epoch (KIP-279 /
//! KIP-595), on OFFSET_OUT_OF_RANGE, or, in the legacy modes `kip-101` and `kip-279`, after an
//! OffsetsForLeaderEpoch round before fetching.

use super::partition::Role;
use super::{Broker, BrokerTimer};
use crate::config::TruncationMode;
use crate::effects::Effects;
use crate::event::Event;
use crate::protocol::*;
use crate::record::read_header;
use crate::types::*;

impl Broker {
    pub(super) fn send_follower_fetch(
        &mut self,
        _now: Instant,
        tp: &TopicPartition,
        out: &mut Effects<BrokerTimer>,
    ) {
        let corr = self.fresh_corr();
        let me = self.id;
        let broker_epoch = self.broker_epoch;
        let wait = self.config.replica_fetch_wait_max_ms;
        let max_bytes = self.config.replica_fetch_max_bytes;
        let socket_timeout = self.config.controller_socket_timeout_ms;
        let mode = self.config.replication_truncation;
        // Before KIP-320 (high-watermark, kip-101, kip-279) fetches carried no epochs: no
        // divergence check, no fencing. KIP-320's first try added the last fetched epoch
        // (divergence check) but not the current leader epoch (fencing).
        let send_last_fetched_epoch = matches!(
            mode,
            TruncationMode::Fenced | TruncationMode::Kip320FirstTry
        );
        let send_current_leader_epoch = mode == TruncationMode::Fenced;
        let Some(p) = self.partitions.get_mut(tp) else {
            return;
        };
        let Role::Follower(f) = &mut p.role else {
            return;
        };
        let Some(leader) = f.leader else { return };
        if f.in_flight.is_some() {
            return;
        }
        f.in_flight = Some(corr);
        if let Some(epoch) = f.epoch_lookup {
            // The truncation phase of KIP-101 / KIP-279: ask where `epoch` ends on the leader.
            // Unfenced, as before KIP-320: the current leader epoch is not sent.
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
                BrokerTimer::FollowerFetchTimeout {
                    tp: tp.clone(),
                    corr,
                },
            );
            return;
        }
        let msg = Message::Fetch {
            corr,
            replica_id: Some(me),
            broker_epoch,
            tp: tp.clone(),
            fetch_offset: p.log.log_end_offset(),
            last_fetched_epoch: if send_last_fetched_epoch {
                p.log.epoch_of_last_batch()
            } else {
                LeaderEpoch::UNKNOWN
            },
            current_leader_epoch: if send_current_leader_epoch {
                f.leader_epoch
            } else {
                LeaderEpoch::UNKNOWN
            },
            max_bytes,
            min_bytes: 1,
            max_wait_ms: wait,
            isolation_level: IsolationLevel::ReadUncommitted,
        };
        self.fetch_targets.insert(corr, (tp.clone(), leader));
        out.send(NodeId::Broker(leader), msg);
        out.timer(
            wait + socket_timeout,
            BrokerTimer::FollowerFetchTimeout {
                tp: tp.clone(),
                corr,
            },
        );
    }

    pub(super) fn schedule_follower_fetch(
        &mut self,
        tp: &TopicPartition,
        after_ms: u64,
        out: &mut Effects<BrokerTimer>,
    ) {
        let Some(p) = self.partitions.get_mut(tp) else {
            return;
        };
        let Role::Follower(f) = &mut p.role else {
            return;
        };
        f.in_flight = None;
        out.timer(
            after_ms,
            BrokerTimer::FollowerFetch {
                tp: tp.clone(),
                generation: f.generation,
            },
        );
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn on_fetch_response(
        &mut self,
        _now: Instant,
        corr: CorrelationId,
        tp: TopicPartition,
        error: ErrorCode,
        (high_watermark, leader_log_start_offset): (Offset, Offset),
        diverging: Option<EpochEndOffset>,
        batches: Vec<Vec<u8>>,
        out: &mut Effects<BrokerTimer>,
    ) {
        self.fetch_targets.remove(&corr);
        let me = self.id;
        let backoff = self.config.replica_fetch_backoff_ms;
        let flush_interval = self.flush_interval_messages(&tp.topic);
        let Some(p) = self.partitions.get_mut(&tp) else {
            return;
        };
        let Role::Follower(f) = &mut p.role else {
            return;
        };
        if f.in_flight != Some(corr) {
            return;
        }
        f.in_flight = None;
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
                self.schedule_follower_fetch(&tp, 0, out);
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
                self.schedule_follower_fetch(&tp, 0, out);
            } else {
                self.schedule_follower_fetch(&tp, backoff, out);
            }
            return;
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
            self.schedule_follower_fetch(&tp, 0, out);
            return;
        }
        let segments_before = p.log.segments().len();
        let mut append_error = None;
        for b in &batches {
            match p.log.append_as_follower(b, &mut ops) {
                Ok((base, _last)) => {
                    if let Ok(h) = read_header(b) {
                        if h.producer_id != ProducerId::NONE {
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
        self.schedule_follower_fetch(&tp, 0, out);
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
        _now: Instant,
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
            self.schedule_follower_fetch(&tp, backoff, out);
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
                self.schedule_follower_fetch(&tp, 0, out);
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
        self.schedule_follower_fetch(&tp, 0, out);
    }

    pub(super) fn rebuild_producers(&mut self, tp: &TopicPartition) {
        if let Some(p) = self.partitions.get_mut(tp) {
            p.rebuild_producer_state();
        }
    }

    /// The fetch backoff of `tp` elapsed: fetch again if the role did not change meanwhile.
    pub(super) fn on_follower_fetch_due(
        &mut self,
        now: Instant,
        tp: TopicPartition,
        generation: u64,
        out: &mut Effects<BrokerTimer>,
    ) {
        let current = self.partitions.get(&tp).map(|p| p.generation);
        if current == Some(generation) {
            self.send_follower_fetch(now, &tp, out);
        }
    }

    /// A follower fetch got no answer in time: forget it and fetch again.
    pub(super) fn on_follower_fetch_timeout(
        &mut self,
        tp: TopicPartition,
        corr: CorrelationId,
        out: &mut Effects<BrokerTimer>,
    ) {
        let stuck = matches!(
            self.partitions.get(&tp).map(|p| &p.role),
            Some(Role::Follower(f)) if f.in_flight == Some(corr)
        );
        if stuck {
            self.fetch_targets.remove(&corr);
            self.schedule_follower_fetch(&tp, 0, out);
        }
    }

    /// The connection to broker `b` broke.
    pub(super) fn fetches_to_broker_lost(&mut self, b: BrokerId, out: &mut Effects<BrokerTimer>) {
        // Follower fetches in flight to that broker will not be answered.
        let lost: Vec<(CorrelationId, TopicPartition)> = self
            .fetch_targets
            .iter()
            .filter(|(_, (_, l))| *l == b)
            .map(|(c, (tp, _))| (*c, tp.clone()))
            .collect();
        let backoff = self.config.replica_fetch_backoff_ms;
        for (corr, tp) in lost {
            self.fetch_targets.remove(&corr);
            let stuck = matches!(
                self.partitions.get(&tp).map(|p| &p.role),
                Some(Role::Follower(f)) if f.in_flight == Some(corr)
            );
            if stuck {
                self.schedule_follower_fetch(&tp, backoff, out);
            }
        }
    }

    /// A follower's Fetch or OffsetsForLeaderEpoch could not be sent: try again after the
    /// backoff.
    pub(super) fn follower_fetch_send_failed(
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
            self.schedule_follower_fetch(&tp, backoff, out);
        }
    }
}
