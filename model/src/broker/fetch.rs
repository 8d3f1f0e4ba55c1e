//! The leader's side of reads (Kafka's `ReplicaManager.fetchMessages`, `Partition.fetchRecords`,
//! `KafkaApis.handleListOffsetRequest`, `handleOffsetForLeaderEpochRequest`): Fetch from
//! followers and consumers, fenced by leader epoch (KIP-320) and checked for a diverging epoch
//! (KIP-595 style); ListOffsets; OffsetsForLeaderEpoch, with KIP-101's original lookup kept for
//! the legacy truncation mode.

use super::partition::Role;
use super::purgatory::PendingFetch;
use super::{Broker, BrokerTimer};
use crate::config::TruncationMode;
use crate::effects::Effects;
use crate::log::PartitionLog;
use crate::protocol::*;
use crate::types::*;

impl Broker {
    /// A Fetch for one or more partitions (Kafka's `ReplicaManager.fetchMessages`): each
    /// partition is read, fenced and checked on its own, the response carrying at most the
    /// request's `max_bytes` over all partitions (the first partition with data gets its first
    /// batch whole, later ones only what fits, as Kafka's `readFromLocalLog` with
    /// `minOneMessage`). The request waits in purgatory (Kafka's DelayedFetch) unless a
    /// partition has an error or a diverging epoch, or `min_bytes` are readable in all.
    pub(super) fn on_fetch(
        &mut self,
        now: Instant,
        from: NodeId,
        msg: Message,
        may_park: bool,
        out: &mut Effects<BrokerTimer>,
    ) {
        let Message::Fetch {
            corr,
            replica_id,
            broker_epoch,
            max_bytes,
            min_bytes,
            max_wait_ms,
            isolation_level,
            ref partitions,
            ..
        } = msg
        else {
            unreachable!("on_fetch takes a Fetch")
        };
        let mut responses = Vec::with_capacity(partitions.len());
        let mut budget = max_bytes;
        let mut min_one = true;
        let mut readable = 0usize;
        let mut respond_now = partitions.is_empty();
        // Legacy (`sim.fetch.delayed-isolation = false`, KAFKA-5355): the completion of a
        // parked fetch (`may_park` false) reads as read_uncommitted.
        let isolation_lost = !may_park
            && !self.config.fetch_delayed_isolation
            && replica_id.is_none()
            && isolation_level == IsolationLevel::ReadCommitted;
        let read_isolation = if isolation_lost {
            IsolationLevel::ReadUncommitted
        } else {
            isolation_level
        };
        for fp in partitions {
            let r = self.fetch_partition(
                now,
                replica_id,
                broker_epoch,
                fp,
                read_isolation,
                (budget, min_one),
                out,
            );
            if isolation_lost {
                self.report_isolation_ignored(fp, &r, out);
            }
            let bytes: usize = r.batches.iter().map(Vec::len).sum();
            if bytes > 0 {
                min_one = false;
                budget = budget.saturating_sub(bytes.min(u32::MAX as usize) as u32);
            }
            readable += bytes;
            respond_now |= r.error != ErrorCode::None || r.diverging_epoch.is_some();
            responses.push(r);
        }
        // Long poll (`fetch.min.bytes`, `fetch.max.wait.ms`; Kafka's DelayedFetch): hold the
        // request until at least `min_bytes` are readable over its partitions, one of them
        // fails, or the wait elapses.
        if !respond_now && readable < (min_bytes as usize).max(1) && may_park && max_wait_ms > 0 {
            let id = self.fresh_id();
            let watched = partitions.iter().map(|fp| fp.tp.clone()).collect();
            self.pending_fetches
                .insert_watching(id, watched, PendingFetch { from, msg });
            out.timer(max_wait_ms, BrokerTimer::FetchWaitExpired { id });
            return;
        }
        out.send(
            from,
            Message::FetchResponse {
                corr,
                partitions: responses,
            },
        );
    }

    /// Legacy (KAFKA-5355): emits [`crate::event::Event::DelayedFetchIsolationIgnored`] when
    /// the read_uncommitted read `r` of a read_committed fetch `fp` returned records at or above
    /// the partition's last stable offset.
    fn report_isolation_ignored(
        &self,
        fp: &FetchPartition,
        r: &FetchPartitionResponse,
        out: &mut Effects<BrokerTimer>,
    ) {
        let Some(p) = self.partitions.get(&fp.tp) else {
            return;
        };
        let Some(end) = r
            .batches
            .last()
            .and_then(|b| crate::record::read_header(b).ok())
            .map(|h| h.last_offset().next())
        else {
            return;
        };
        let lso = p.last_stable_offset_now();
        if end > lso {
            out.event(crate::event::Event::DelayedFetchIsolationIgnored {
                tp: fp.tp.clone(),
                broker: self.id,
                fetch_offset: fp.fetch_offset,
                end_offset: end,
                last_stable_offset: lso,
                high_watermark: p.high_watermark,
            });
        }
    }

    /// One partition of a Fetch (Kafka's `Partition.fetchRecords`): at most
    /// `min(partition_max_bytes, budget)` bytes, or the first batch whole if `min_one`. A
    /// follower's fetch records its progress, which may expand the ISR and advance the HW.
    fn fetch_partition(
        &mut self,
        now: Instant,
        replica_id: Option<BrokerId>,
        fetch_broker_epoch: BrokerEpoch,
        fp: &FetchPartition,
        isolation_level: IsolationLevel,
        (budget, min_one): (u32, bool),
        out: &mut Effects<BrokerTimer>,
    ) -> FetchPartitionResponse {
        let tp = &fp.tp;
        let fetch_offset = fp.fetch_offset;
        let read_committed = isolation_level == IsolationLevel::ReadCommitted;
        let answer = |error: ErrorCode,
                      hw: Offset,
                      lso: Offset,
                      diverging: Option<EpochEndOffset>,
                      epoch: LeaderEpoch,
                      batches: Vec<Vec<u8>>| FetchPartitionResponse {
            tp: tp.clone(),
            error,
            high_watermark: hw,
            last_stable_offset: hw,
            log_start_offset: lso,
            diverging_epoch: diverging,
            leader_epoch: epoch,
            batches,
            aborted_transactions: vec![],
        };
        let Some(p) = self.partitions.get_mut(tp) else {
            return answer(
                ErrorCode::NotLeaderOrFollower,
                Offset(-1),
                Offset(-1),
                None,
                LeaderEpoch::UNKNOWN,
                vec![],
            );
        };
        let Role::Leader(leader) = &mut p.role else {
            return answer(
                ErrorCode::NotLeaderOrFollower,
                Offset(-1),
                Offset(-1),
                None,
                p.leader_epoch,
                vec![],
            );
        };
        let epoch = leader.leader_epoch;
        let lso = p.log.log_start_offset();
        let leo = p.log.log_end_offset();
        let hw = p.high_watermark;
        // KIP-320 fencing.
        if fp.current_leader_epoch != LeaderEpoch::UNKNOWN {
            if fp.current_leader_epoch < epoch {
                return answer(ErrorCode::FencedLeaderEpoch, hw, lso, None, epoch, vec![]);
            }
            if fp.current_leader_epoch > epoch {
                return answer(ErrorCode::UnknownLeaderEpoch, hw, lso, None, epoch, vec![]);
            }
        }
        // Divergence check (KIP-595 style): does the fetcher's log agree with ours?
        if fp.last_fetched_epoch != LeaderEpoch::UNKNOWN && fetch_offset.0 > 0 {
            let end = p.log.end_offset_for_epoch(fp.last_fetched_epoch);
            if end.leader_epoch == LeaderEpoch::UNKNOWN
                || end.end_offset < fetch_offset
                || end.leader_epoch < fp.last_fetched_epoch
            {
                return answer(ErrorCode::None, hw, lso, Some(end), epoch, vec![]);
            }
        }
        if fetch_offset < lso || fetch_offset > leo {
            return answer(ErrorCode::OffsetOutOfRange, hw, lso, None, epoch, vec![]);
        }
        let max_offset = match replica_id {
            Some(r) => {
                // Follower fetch: record its progress.
                if let Some(f) = leader.followers.get_mut(&r) {
                    f.log_end_offset = fetch_offset;
                    f.broker_epoch = fetch_broker_epoch;
                    if fetch_offset >= leo {
                        f.last_caught_up = now;
                    }
                }
                leo
            }
            // A read_committed consumer reads below the last stable offset (KIP-98).
            None if read_committed => p.last_stable_offset_now(),
            None => hw,
        };
        let limit = fp.partition_max_bytes.min(budget);
        let batches = if fetch_offset < max_offset && (min_one || limit > 0) {
            let mut batches = p
                .log
                .read(fetch_offset, max_offset, limit)
                .unwrap_or_default();
            // Past the first partition with data, a batch larger than what is left of the
            // response's budget is not returned (Kafka's `minOneMessage = false`).
            if !min_one && batches.first().is_some_and(|b| b.len() > limit as usize) {
                batches.clear();
            }
            batches
        } else {
            vec![]
        };
        if let Some(r) = replica_id {
            self.maybe_expand_isr(now, tp, r, fetch_offset, out);
            self.maybe_advance_hw(now, tp, out);
        }
        let p = self.partitions.get(tp).expect("hosted");
        let mut r = answer(
            ErrorCode::None,
            p.high_watermark,
            p.log.log_start_offset(),
            None,
            epoch,
            vec![],
        );
        if replica_id.is_none() && read_committed {
            // Kafka's `collectAbortedTransactions` over the returned range: from the fetch
            // offset to the end of the last batch returned.
            r.last_stable_offset = max_offset;
            if let Some(end) = batches
                .last()
                .and_then(|b| crate::record::read_header(b).ok())
                .map(|h| h.last_offset().next())
            {
                r.aborted_transactions = p
                    .log
                    .collect_aborted_txns(fetch_offset, end)
                    .into_iter()
                    .map(|a| AbortedTransaction {
                        producer_id: a.producer_id,
                        first_offset: a.first_offset,
                    })
                    .collect();
            }
        } else if replica_id.is_none() {
            r.last_stable_offset = p.last_stable_offset_now();
        }
        r.batches = batches;
        r
    }

    pub(super) fn on_list_offsets(
        &self,
        from: NodeId,
        corr: CorrelationId,
        tp: TopicPartition,
        timestamp: i64,
        isolation_level: IsolationLevel,
        out: &mut Effects<BrokerTimer>,
    ) {
        let (error, offset, epoch) = match self.partitions.get(&tp) {
            Some(p) => match &p.role {
                Role::Leader(l) => {
                    let off = match timestamp {
                        -2 => p.log.log_start_offset(),
                        // offsetsForTimes (KIP-79): the first committed offset whose record
                        // timestamp is >= the target, -1 if there is none.
                        t if t >= 0 => p
                            .log
                            .offset_for_timestamp(t)
                            .map(|(o, _)| o)
                            .filter(|&o| {
                                o < if isolation_level == IsolationLevel::ReadCommitted {
                                    p.last_stable_offset_now()
                                } else {
                                    p.high_watermark
                                }
                            })
                            .unwrap_or(Offset(-1)),
                        // Latest: the last stable offset for read_committed (KIP-98).
                        _ if isolation_level == IsolationLevel::ReadCommitted => {
                            p.last_stable_offset_now()
                        }
                        _ => p.high_watermark,
                    };
                    (ErrorCode::None, off, l.leader_epoch)
                }
                _ => (ErrorCode::NotLeaderOrFollower, Offset(-1), p.leader_epoch),
            },
            None => (
                ErrorCode::NotLeaderOrFollower,
                Offset(-1),
                LeaderEpoch::UNKNOWN,
            ),
        };
        out.send(
            from,
            Message::ListOffsetsResponse {
                corr,
                tp,
                error,
                offset,
                leader_epoch: epoch,
            },
        );
    }

    /// OffsetsForLeaderEpoch on the leader: where does `leader_epoch` end in my log? Fenced by
    /// `current_leader_epoch` as a fetch is (KIP-320) unless it is `UNKNOWN`, as the legacy
    /// modes send it. In mode `kip-101` the answer is KIP-101's original lookup
    /// ([`kip101_end_offset`], no epoch in the answer); otherwise KIP-279's
    /// ([`PartitionLog::end_offset_for_epoch`]: the largest epoch `<=` the requested one and
    /// where it ends).
    pub(super) fn on_offset_for_leader_epoch(
        &self,
        from: NodeId,
        corr: CorrelationId,
        tp: TopicPartition,
        current_leader_epoch: LeaderEpoch,
        leader_epoch: LeaderEpoch,
        out: &mut Effects<BrokerTimer>,
    ) {
        let undefined = EpochEndOffset {
            leader_epoch: LeaderEpoch::UNKNOWN,
            end_offset: crate::log::UNDEFINED_EPOCH_OFFSET,
        };
        let (error, end) = match self.partitions.get(&tp) {
            Some(p) => match &p.role {
                Role::Leader(l)
                    if current_leader_epoch != LeaderEpoch::UNKNOWN
                        && current_leader_epoch < l.leader_epoch =>
                {
                    (ErrorCode::FencedLeaderEpoch, undefined)
                }
                Role::Leader(l)
                    if current_leader_epoch != LeaderEpoch::UNKNOWN
                        && current_leader_epoch > l.leader_epoch =>
                {
                    (ErrorCode::UnknownLeaderEpoch, undefined)
                }
                Role::Leader(_) if self.config.replication_truncation == TruncationMode::Kip101 => {
                    (ErrorCode::None, kip101_end_offset(&p.log, leader_epoch))
                }
                Role::Leader(_) => (ErrorCode::None, p.log.end_offset_for_epoch(leader_epoch)),
                _ => (ErrorCode::NotLeaderOrFollower, undefined),
            },
            None => (ErrorCode::NotLeaderOrFollower, undefined),
        };
        out.send(
            from,
            Message::OffsetForLeaderEpochResponse {
                corr,
                tp,
                error,
                end,
            },
        );
    }

    /// OffsetsForLeaderEpoch from a consumer to a broker older than KIP-320 (the legacy
    /// truncation modes).
    pub(super) fn on_offset_for_leader_epoch_unsupported(
        &self,
        from: NodeId,
        corr: CorrelationId,
        tp: TopicPartition,
        out: &mut Effects<BrokerTimer>,
    ) {
        // Brokers before KIP-320 (Kafka 2.1) have no consumer version of the request:
        // the consumer skips validating its position, as Kafka's does.
        out.send(
            from,
            Message::OffsetForLeaderEpochResponse {
                corr,
                tp,
                error: ErrorCode::UnsupportedVersion,
                end: EpochEndOffset {
                    leader_epoch: LeaderEpoch::UNKNOWN,
                    end_offset: Offset(-1),
                },
            },
        );
    }
}

/// KIP-101's original OffsetsForLeaderEpoch lookup (Kafka 0.11's `LeaderEpochFileCache`,
/// `LookupOffsetForEpoch` in Kip101.tla): the LEO if `epoch` is the latest epoch in the cache;
/// otherwise the start offset of the first cached epoch larger than `epoch`; and
/// `UNDEFINED_EPOCH_OFFSET` if there is none or `epoch` is below the earliest cached epoch.
/// The answer carries no epoch: the follower cannot tell whether the leader ever had `epoch`,
/// which is the hole KIP-279 closed.
pub(super) fn kip101_end_offset(log: &PartitionLog, epoch: LeaderEpoch) -> EpochEndOffset {
    let undefined = EpochEndOffset {
        leader_epoch: LeaderEpoch::UNKNOWN,
        end_offset: crate::log::UNDEFINED_EPOCH_OFFSET,
    };
    let entries = log.epoch_entries();
    let Some(&(first, _)) = entries.first() else {
        return undefined;
    };
    if log.latest_epoch() == Some(epoch) {
        return EpochEndOffset {
            leader_epoch: LeaderEpoch::UNKNOWN,
            end_offset: log.log_end_offset(),
        };
    }
    if epoch < first {
        return undefined;
    }
    match entries.iter().find(|(e, _)| *e > epoch) {
        Some(&(_, start)) => EpochEndOffset {
            leader_epoch: LeaderEpoch::UNKNOWN,
            end_offset: start,
        },
        None => undefined,
    }
}
