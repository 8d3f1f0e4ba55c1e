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
            broker_epoch: fetch_broker_epoch,
            ref tp,
            fetch_offset,
            last_fetched_epoch,
            current_leader_epoch,
            max_bytes,
            min_bytes,
            max_wait_ms,
            isolation_level: _,
        } = msg
        else {
            unreachable!("on_fetch takes a Fetch")
        };
        let tp = tp.clone();
        let reply = |out: &mut Effects<BrokerTimer>,
                     error: ErrorCode,
                     hw: Offset,
                     lso: Offset,
                     diverging: Option<EpochEndOffset>,
                     epoch: LeaderEpoch,
                     batches: Vec<Vec<u8>>| {
            out.send(
                from,
                Message::FetchResponse {
                    corr,
                    tp: tp.clone(),
                    error,
                    high_watermark: hw,
                    last_stable_offset: hw,
                    log_start_offset: lso,
                    diverging_epoch: diverging,
                    leader_epoch: epoch,
                    batches,
                },
            );
        };
        let Some(p) = self.partitions.get_mut(&tp) else {
            reply(
                out,
                ErrorCode::NotLeaderOrFollower,
                Offset(-1),
                Offset(-1),
                None,
                LeaderEpoch::UNKNOWN,
                vec![],
            );
            return;
        };
        let Role::Leader(leader) = &mut p.role else {
            reply(
                out,
                ErrorCode::NotLeaderOrFollower,
                Offset(-1),
                Offset(-1),
                None,
                p.leader_epoch,
                vec![],
            );
            return;
        };
        let epoch = leader.leader_epoch;
        let lso = p.log.log_start_offset();
        let leo = p.log.log_end_offset();
        // KIP-320 fencing.
        if current_leader_epoch != LeaderEpoch::UNKNOWN {
            if current_leader_epoch < epoch {
                reply(
                    out,
                    ErrorCode::FencedLeaderEpoch,
                    p.high_watermark,
                    lso,
                    None,
                    epoch,
                    vec![],
                );
                return;
            }
            if current_leader_epoch > epoch {
                reply(
                    out,
                    ErrorCode::UnknownLeaderEpoch,
                    p.high_watermark,
                    lso,
                    None,
                    epoch,
                    vec![],
                );
                return;
            }
        }
        // Divergence check (KIP-595 style): does the fetcher's log agree with ours?
        if last_fetched_epoch != LeaderEpoch::UNKNOWN && fetch_offset.0 > 0 {
            let end = p.log.end_offset_for_epoch(last_fetched_epoch);
            if end.leader_epoch == LeaderEpoch::UNKNOWN
                || end.end_offset < fetch_offset
                || end.leader_epoch < last_fetched_epoch
            {
                reply(
                    out,
                    ErrorCode::None,
                    p.high_watermark,
                    lso,
                    Some(end),
                    epoch,
                    vec![],
                );
                return;
            }
        }
        if fetch_offset < lso || fetch_offset > leo {
            reply(
                out,
                ErrorCode::OffsetOutOfRange,
                p.high_watermark,
                lso,
                None,
                epoch,
                vec![],
            );
            return;
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
            None => p.high_watermark,
        };
        let batches = if fetch_offset < max_offset {
            p.log
                .read(fetch_offset, max_offset, max_bytes)
                .unwrap_or_default()
        } else {
            vec![]
        };
        if let Some(r) = replica_id {
            self.maybe_expand_isr(now, &tp, r, fetch_offset, out);
            self.maybe_advance_hw(now, &tp, out);
        }
        let p = self.partitions.get(&tp).expect("hosted");
        // Long poll (`fetch.min.bytes`, `fetch.max.wait.ms`; Kafka's DelayedFetch): hold the
        // request until at least `min_bytes` are readable or the wait elapses.
        let readable: usize = batches.iter().map(Vec::len).sum();
        if readable < (min_bytes as usize).max(1) && may_park && max_wait_ms > 0 {
            let id = self.fresh_id();
            let tp = tp.clone();
            self.pending_fetches
                .insert(id, tp, PendingFetch { from, msg });
            out.timer(max_wait_ms, BrokerTimer::FetchWaitExpired { id });
            return;
        }
        reply(
            out,
            ErrorCode::None,
            p.high_watermark,
            p.log.log_start_offset(),
            None,
            epoch,
            batches,
        );
    }

    pub(super) fn on_list_offsets(
        &self,
        from: NodeId,
        corr: CorrelationId,
        tp: TopicPartition,
        timestamp: i64,
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
                            .filter(|&o| o < p.high_watermark)
                            .unwrap_or(Offset(-1)),
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
