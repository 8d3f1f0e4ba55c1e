//! The replica fetcher threads (Kafka's `AbstractFetcherManager`, `AbstractFetcherThread`,
//! `ReplicaFetcherThread`, with `num.replica.fetchers = 1`): one fetch session per leader
//! broker, carrying every partition this broker follows from that leader that is ready to
//! fetch, with one Fetch in flight at a time.
//!
//! A partition joins its leader's session when it becomes a follower
//! (`addFetcherForPartitions`) and leaves it lazily, when the session next builds a request and
//! finds it led elsewhere or no longer followed (`removeFetcherForPartitions`). A partition is
//! left out of the request while it is in the truncation phase of the legacy modes (Kafka's
//! `Truncating` state: its OffsetsForLeaderEpoch is in flight, see `follower.rs`) or backing
//! off after an error (`replica.fetch.backoff.ms`, Kafka's `delayPartitions`). Errors in a
//! response are per partition: the others of the response are appended as usual. A partition
//! that received data moves to the end of the session's order (`updateAndMoveToEnd`), so that
//! `replica.fetch.response.max.bytes` is shared fairly. The whole request failing (no answer,
//! connection lost) backs off all its partitions, as `processFetchRequest` does.
//!
//! Kafka's fetcher thread loops: when a response has been processed the next request goes out
//! at once, and the leader holds it (`replica.fetch.wait.max.ms`, `replica.fetch.min.bytes`,
//! summed over the partitions) until there is data. So a partition added to the session, or
//! one whose backoff ends, waits for the fetch in flight to return: a quiet partition delays
//! the others by up to `replica.fetch.wait.max.ms`, as in Kafka.

use super::partition::Role;
use super::{Broker, BrokerTimer};
use crate::config::TruncationMode;
use crate::effects::Effects;
use crate::protocol::*;
use crate::types::*;
use std::collections::BTreeSet;

/// One fetch session: the partitions followed from one leader broker.
#[derive(Debug, Clone, Default)]
pub(super) struct ReplicaFetcher {
    /// The partitions of the session, in fetch order. May hold partitions no longer followed
    /// from this leader; they are dropped when the next request is built.
    partitions: Vec<TopicPartition>,
    /// The Fetch in flight: its correlation id, and each partition it carries with the
    /// partition's generation when sent (an answer for an older generation is stale).
    in_flight: Option<(CorrelationId, Vec<(TopicPartition, u64)>)>,
}

impl ReplicaFetcher {
    /// The correlation id of the Fetch in flight, if one is.
    #[cfg(test)]
    pub(super) fn in_flight_corr(&self) -> Option<CorrelationId> {
        self.in_flight.as_ref().map(|(c, _)| *c)
    }
}

impl Broker {
    /// `tp` became a follower: add it to its leader's session (or, in the legacy modes, ask
    /// where its epoch ends first). The session fetches once the whole LeaderAndIsr is
    /// applied ([`Broker::fetchers_do_work_all`]).
    pub(super) fn add_fetcher_partition(
        &mut self,
        tp: &TopicPartition,
        out: &mut Effects<BrokerTimer>,
    ) {
        let Some(p) = self.partitions.get(tp) else {
            return;
        };
        let Role::Follower(f) = &p.role else {
            return;
        };
        let Some(leader) = f.leader else { return };
        let session = self.fetchers.entry(leader).or_default();
        if !session.partitions.contains(tp) {
            session.partitions.push(tp.clone());
        }
        if f.epoch_lookup.is_some() {
            self.send_epoch_lookup(tp, out);
        }
    }

    /// Every session without a Fetch in flight fetches what is ready.
    pub(super) fn fetchers_do_work_all(&mut self, now: Instant, out: &mut Effects<BrokerTimer>) {
        let leaders: Vec<BrokerId> = self.fetchers.keys().copied().collect();
        for leader in leaders {
            self.fetcher_do_work(now, leader, out);
        }
    }

    /// `tp` may fetch again (its backoff ended, its truncation is done, ...): send its
    /// OffsetsForLeaderEpoch if it is still truncating, else let its session fetch.
    pub(super) fn follower_partition_ready(
        &mut self,
        now: Instant,
        tp: &TopicPartition,
        out: &mut Effects<BrokerTimer>,
    ) {
        let Some(p) = self.partitions.get(tp) else {
            return;
        };
        let Role::Follower(f) = &p.role else {
            return;
        };
        let Some(leader) = f.leader else { return };
        if f.epoch_lookup.is_some() {
            self.send_epoch_lookup(tp, out);
        } else {
            self.fetcher_do_work(now, leader, out);
        }
    }

    /// Back `tp` off for `after_ms` (Kafka's `delayPartitions`); the timer makes it ready.
    pub(super) fn delay_follower_partition(
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
        f.delayed = true;
        out.timer(
            after_ms,
            BrokerTimer::FollowerFetch {
                tp: tp.clone(),
                generation: f.generation,
            },
        );
    }

    /// The backoff of `tp` elapsed: fetch again if the role did not change meanwhile.
    pub(super) fn on_follower_fetch_due(
        &mut self,
        now: Instant,
        tp: TopicPartition,
        generation: u64,
        out: &mut Effects<BrokerTimer>,
    ) {
        let Some(p) = self.partitions.get_mut(&tp) else {
            return;
        };
        if p.generation != generation {
            return;
        }
        if let Role::Follower(f) = &mut p.role {
            f.delayed = false;
        }
        self.follower_partition_ready(now, &tp, out);
    }

    /// One turn of the fetcher thread of `leader` (Kafka's `doWork` / `maybeFetch`): unless a
    /// Fetch is in flight, send one for every partition of the session ready to fetch.
    pub(super) fn fetcher_do_work(
        &mut self,
        _now: Instant,
        leader: BrokerId,
        out: &mut Effects<BrokerTimer>,
    ) {
        let Some(session) = self.fetchers.get_mut(&leader) else {
            return;
        };
        if session.in_flight.is_some() {
            return;
        }
        let mode = self.config.replication_truncation;
        // Before KIP-320 (high-watermark, kip-101, kip-279) fetches carried no epochs: no
        // divergence check, no fencing. KIP-320's first try added the last fetched epoch
        // (divergence check) but not the current leader epoch (fencing).
        let send_last_fetched_epoch = matches!(
            mode,
            TruncationMode::Fenced | TruncationMode::Kip320FirstTry
        );
        let send_current_leader_epoch = mode == TruncationMode::Fenced;
        let partition_max_bytes = self.config.replica_fetch_max_bytes;
        let partitions = &self.partitions;
        session.partitions.retain(|tp| {
            matches!(
                partitions.get(tp).map(|p| &p.role),
                Some(Role::Follower(f)) if f.leader == Some(leader)
            )
        });
        let mut wanted = Vec::new();
        let mut sent = Vec::new();
        for tp in &session.partitions {
            let p = partitions.get(tp).expect("retained");
            let Role::Follower(f) = &p.role else {
                unreachable!("retained")
            };
            if f.delayed || f.epoch_lookup.is_some() {
                continue;
            }
            wanted.push(FetchPartition {
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
                partition_max_bytes,
            });
            sent.push((tp.clone(), f.generation));
        }
        if session.partitions.is_empty() {
            self.fetchers.remove(&leader);
            return;
        }
        if wanted.is_empty() {
            // Nothing to fetch now; a partition's backoff or truncation ending wakes us.
            return;
        }
        let corr = self.fresh_corr();
        let session = self.fetchers.get_mut(&leader).expect("present");
        session.in_flight = Some((corr, sent));
        let wait = self.config.replica_fetch_wait_max_ms;
        out.send(
            NodeId::Broker(leader),
            Message::Fetch {
                corr,
                replica_id: Some(self.id),
                broker_epoch: self.broker_epoch,
                max_bytes: self.config.replica_fetch_response_max_bytes,
                min_bytes: self.config.replica_fetch_min_bytes,
                max_wait_ms: wait,
                isolation_level: IsolationLevel::ReadUncommitted,
                partitions: wanted,
            },
        );
        out.timer(
            wait + self.config.controller_socket_timeout_ms,
            BrokerTimer::FollowerFetchTimeout { leader, corr },
        );
    }

    /// The leader answered a session's Fetch (Kafka's `processFetchRequest`): each partition's
    /// data, error or diverging epoch is handled on its own, then the session fetches again.
    pub(super) fn on_fetch_response(
        &mut self,
        now: Instant,
        corr: CorrelationId,
        responses: Vec<FetchPartitionResponse>,
        out: &mut Effects<BrokerTimer>,
    ) {
        let Some((leader, sent)) = self.take_in_flight_fetch(corr) else {
            return;
        };
        let backoff = self.config.replica_fetch_backoff_ms;
        let mut got_data = BTreeSet::new();
        for (i, r) in responses.into_iter().enumerate() {
            // The answers come in the request's order.
            let sent_as = match sent.get(i) {
                Some((tp, g)) if *tp == r.tp => Some(*g),
                _ => sent.iter().find(|(tp, _)| *tp == r.tp).map(|(_, g)| *g),
            };
            let Some(generation) = sent_as else {
                continue;
            };
            let current = matches!(
                self.partitions.get(&r.tp),
                Some(p) if p.generation == generation && matches!(p.role, Role::Follower(_))
            );
            if !current {
                continue; // the partition changed role since: the answer is stale
            }
            let tp = r.tp.clone();
            let had_data = !r.batches.is_empty() && r.error == ErrorCode::None;
            if !self.on_fetched_partition(r, out) {
                self.delay_follower_partition(&tp, backoff, out);
            } else if had_data {
                got_data.insert(tp);
            }
        }
        if let Some(session) = self.fetchers.get_mut(&leader) {
            // Kafka's `updateAndMoveToEnd`: partitions that got data go last next time, in the
            // order they were processed (the session's order).
            if !got_data.is_empty() {
                let (moved, kept): (Vec<_>, Vec<_>) = std::mem::take(&mut session.partitions)
                    .into_iter()
                    .partition(|tp| got_data.contains(tp));
                session.partitions = kept;
                session.partitions.extend(moved);
            }
        }
        self.fetcher_do_work(now, leader, out);
    }

    /// Takes the Fetch `corr` out of the session it belongs to: its leader and partitions.
    fn take_in_flight_fetch(
        &mut self,
        corr: CorrelationId,
    ) -> Option<(BrokerId, Vec<(TopicPartition, u64)>)> {
        let (&leader, session) = self
            .fetchers
            .iter_mut()
            .find(|(_, s)| matches!(&s.in_flight, Some((c, _)) if *c == corr))?;
        let (_, sent) = session.in_flight.take().expect("matched");
        Some((leader, sent))
    }

    /// A session's Fetch got no answer in time: forget it and fetch again.
    pub(super) fn on_follower_fetch_timeout(
        &mut self,
        now: Instant,
        leader: BrokerId,
        corr: CorrelationId,
        out: &mut Effects<BrokerTimer>,
    ) {
        if self.take_in_flight_fetch(corr).is_some() {
            self.fetcher_do_work(now, leader, out);
        }
    }

    /// A session's Fetch was lost (connection closed, or it could not be sent): back off
    /// every partition it carried (Kafka's `processFetchRequest` on a failed request).
    pub(super) fn fetch_request_failed(
        &mut self,
        corr: CorrelationId,
        out: &mut Effects<BrokerTimer>,
    ) {
        let Some((_, sent)) = self.take_in_flight_fetch(corr) else {
            return;
        };
        let backoff = self.config.replica_fetch_backoff_ms;
        for (tp, generation) in sent {
            if self.partitions.get(&tp).map(|p| p.generation) == Some(generation) {
                self.delay_follower_partition(&tp, backoff, out);
            }
        }
    }

    /// The connection to broker `b` broke: the requests in flight to it will not be answered.
    pub(super) fn fetches_to_broker_lost(&mut self, b: BrokerId, out: &mut Effects<BrokerTimer>) {
        let session_fetch = self
            .fetchers
            .get(&b)
            .and_then(|s| s.in_flight.as_ref())
            .map(|(c, _)| *c);
        if let Some(corr) = session_fetch {
            self.fetch_request_failed(corr, out);
        }
        let lost: Vec<(CorrelationId, TopicPartition)> = self
            .fetch_targets
            .iter()
            .filter(|(_, (_, l))| *l == b)
            .map(|(c, (tp, _))| (*c, tp.clone()))
            .collect();
        for (corr, tp) in lost {
            self.epoch_lookup_failed(corr, tp, out);
        }
    }
}
