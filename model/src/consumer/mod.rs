//! A consumer client in *assign* mode: it owns every partition of its topics and polls them,
//! as `KafkaConsumer.assign()` + a `poll(timeout)` loop does. With a `group.id` it also talks to
//! its group's coordinator, as Kafka allows a consumer that assigns itself its partitions to:
//! it reads the group's committed offsets to start from and commits its positions (generation
//! -1, no membership; see `coordinator.rs`).
//!
//! # Where each part lives
//! This file holds the client, its timers, its requests in flight and its dispatch (the
//! [`Actor`] impl). The assigned partitions and their fetch positions (Kafka's
//! `SubscriptionState`) are in `subscription_state.rs`; fetching (Kafka's `Fetcher`) in
//! `fetcher.rs`; resetting positions with ListOffsets and validating them with
//! OffsetForLeaderEpoch (Kafka's `OffsetFetcher`) in `offset_fetcher.rs`; the application's
//! `poll()` loop in `poll.rs`; metadata in `metadata.rs`; `value.deserializer` in
//! `deserializers.rs`; the group coordinator's client side (Kafka's `ConsumerCoordinator` and
//! `AbstractCoordinator`: FindCoordinator, OffsetFetch, OffsetCommit) in `coordinator.rs`.

use crate::config::ConsumerConfig;
use crate::effects::{Actor, Effects};
use crate::event::PolledRecord;
use crate::protocol::*;
use crate::touched::TouchedMap;
use crate::types::*;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::cell::RefCell;
use std::collections::{BTreeMap, VecDeque};

mod application;
pub mod assignor;
mod close;
mod coordinator;
mod deserializers;
mod fetcher;
mod group_membership;
mod metadata;
mod offset_fetcher;
mod poll;
mod subscription_state;
#[cfg(test)]
mod tests;

use close::CloseState;
use coordinator::ConsumerCoordinator;
pub use deserializers::deserialize_value;
use group_membership::GroupMembership;
pub use metadata::METADATA_REFRESH_MS;
use poll::AfterCommit;
pub use poll::{
    CommitMode, ConsumerWorkload, ProcessingChange, SeekAt, POLL_INTERVAL_MS, POLL_TIMEOUT_MS,
};
pub use subscription_state::FetchPosition;
use subscription_state::PartitionFetchState;

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
    /// Look for the group coordinator again after `retry.backoff.ms`.
    CoordinatorLookup,
    /// Send the OffsetFetch for initializing partitions again after `retry.backoff.ms`.
    OffsetFetchRetry,
    /// `commitSync()` tries commit `op_id` again after `retry.backoff.ms`.
    CommitRetry {
        op_id: u64,
    },
    /// `default.api.timeout.ms` after `commitSync()` started commit `op_id`: it gives up.
    CommitDeadline {
        op_id: u64,
    },
    /// The auto-commit deadline while `poll(timeout)` number `generation` is blocked.
    AutoCommitDue {
        generation: u64,
    },
    /// The heartbeat thread's tick (subscribe mode), every `heartbeat.interval.ms`.
    Heartbeat,
    /// JoinGroup again after `retry.backoff.ms`.
    JoinRetry,
}

#[derive(Debug, Clone)]
enum Pending {
    Metadata,
    ListOffsets(TopicPartition),
    /// A Fetch for these partitions, all led by the broker it went to.
    Fetch(Vec<TopicPartition>),
    OffsetForLeaderEpoch(TopicPartition),
    FindCoordinator,
    OffsetFetch,
    OffsetCommit {
        op_id: u64,
    },
    JoinGroup,
    SyncGroup,
    Heartbeat,
    LeaveGroup,
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
    /// Per-partition fetch state; the invariants check the entries changed since their last
    /// run (see [`TouchedMap`]).
    partitions: TouchedMap<TopicPartition, PartitionFetchState>,
    /// For the invariants: the partitions seen with each fetch in flight, by the fetch's
    /// correlation id, so that once a fetch leaves `pending` only its partitions are checked
    /// for a dangling `in_flight` (the rule the invariants once checked over every partition
    /// after every handler: 28 % of a 3000-partition run's time). Read and written only by
    /// `invariants`; never changes behaviour.
    in_flight_seen: RefCell<InFlightSeen>,
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
    /// The time of the handler running now (set on entry to every handler).
    now: Instant,
    /// The group coordinator's client side, with a `group.id`.
    coordinator: Option<ConsumerCoordinator>,
    /// The application processes a poll's records now and commits once done (`sync`, `async`).
    commit_after_processing: bool,
    /// The application waits in `commitSync()` for commit `.0`, then does `.1`.
    sync_commit: Option<(u64, AfterCommit)>,
    /// Group membership in subscribe mode.
    membership: Option<GroupMembership>,
    /// The `process` operation open while the application processes a poll's records
    /// (subscribe mode): its id and records.
    processing: Option<(u64, Vec<PolledRecord>)>,
    /// The workload's randomness (processing times), seeded by the simulation.
    rng: ChaCha8Rng,
    /// The application's `close()`, once asked for (see `close.rs`).
    close: Option<CloseState>,
    /// The application is inside `poll()` waiting for a revocation (its
    /// `onPartitionsRevoked` and commit on revoke) to finish.
    poll_after_revoke: bool,
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
            partitions: TouchedMap::new(),
            in_flight_seen: RefCell::new(InFlightSeen::default()),
            pending: BTreeMap::new(),
            metadata_in_flight: false,
            buffer: VecDeque::new(),
            errors: VecDeque::new(),
            blocked_poll: None,
            poll_generation: 0,
            next_corr: 0,
            next_op: 0,
            now: Instant(0),
            coordinator: None,
            commit_after_processing: false,
            sync_commit: None,
            membership: None,
            processing: None,
            rng: ChaCha8Rng::seed_from_u64(index as u64),
            close: None,
            poll_after_revoke: false,
        }
    }

    /// The same consumer as process number `incarnation` of its client (0 for the first;
    /// each restart counts one more). Its correlation ids start at `incarnation << 32`, as the
    /// producer's do (`ProducerClient::with_incarnation`): in Kafka a response travels back on
    /// the connection its request came in on, and a process's connections die with it, but
    /// the simulated transport routes a reply to the peer's latest connection. With ids of its
    /// own, a restarted consumer drops an answer meant for its predecessor (a JoinGroup held
    /// by the coordinator until the join phase ends, a Fetch waiting `fetch.max.wait.ms`)
    /// instead of taking it for its own request with the same id.
    pub fn with_incarnation(mut self, incarnation: u64) -> Self {
        self.next_corr = incarnation << 32;
        self
    }

    /// The same consumer driven by `workload` (late start, seeks).
    pub fn with_workload(mut self, workload: ConsumerWorkload) -> Self {
        self.rng = ChaCha8Rng::seed_from_u64(workload.seed);
        self.workload = workload;
        self
    }

    /// Sends a request to a partition's leader; it is lost after `request.timeout.ms` plus
    /// `fetch.max.wait.ms` without an answer (a fetch may wait that long on purpose).
    fn send(
        &mut self,
        to: BrokerId,
        msg_for: impl FnOnce(CorrelationId) -> Message,
        what: Pending,
        out: &mut Effects<ConsumerTimer>,
    ) -> CorrelationId {
        let timeout_ms = self.config.request_timeout_ms + self.config.fetch_max_wait_ms;
        self.send_with_timeout(to, msg_for, what, timeout_ms, out)
    }

    fn send_with_timeout(
        &mut self,
        to: BrokerId,
        msg_for: impl FnOnce(CorrelationId) -> Message,
        what: Pending,
        timeout_ms: u64,
        out: &mut Effects<ConsumerTimer>,
    ) -> CorrelationId {
        self.next_corr += 1;
        let corr = CorrelationId(self.next_corr);
        out.send(NodeId::Broker(to), msg_for(corr));
        self.pending.insert(corr, (what, NodeId::Broker(to)));
        out.timer(timeout_ms, ConsumerTimer::RequestTimeout { corr });
        corr
    }
}

/// What [`ConsumerClient`]'s invariants remember between runs (see `in_flight_seen`).
#[derive(Debug, Default)]
struct InFlightSeen {
    /// Fetch correlation id -> the partitions seen with it in flight (in the order checked).
    by_fetch: BTreeMap<CorrelationId, Vec<TopicPartition>>,
    /// Whether the consumer had a group coordinator client at the last run.
    had_coordinator: bool,
}

impl ConsumerClient {
    /// The rules one partition's fetch state must keep between handlers: a fetch in flight is
    /// one a request waits for, a position is never negative, and a partition waiting for its
    /// committed offset has a group and nothing in flight.
    fn partition_invariants(&self, tp: &TopicPartition, p: &PartitionFetchState) {
        if let Some(corr) = p.in_flight {
            assert!(
                self.pending.contains_key(&corr),
                "consumer-{}: {tp} has fetch {corr:?} in flight but no request waits for it",
                self.index
            );
        }
        if let subscription_state::FetchState::Fetching(pos)
        | subscription_state::FetchState::AwaitValidation(pos) = &p.state
        {
            assert!(
                pos.offset.0 >= 0,
                "consumer-{}: {tp} at negative position {}",
                self.index,
                pos.offset
            );
        }
        if p.state == subscription_state::FetchState::Initializing {
            assert!(
                self.coordinator.is_some(),
                "consumer-{}: {tp} waits for a committed offset without a group.id",
                self.index
            );
            assert!(
                p.in_flight.is_none(),
                "consumer-{}: {tp} has a request in flight while initializing",
                self.index
            );
        }
    }
}

impl Actor for ConsumerClient {
    type Timer = ConsumerTimer;

    /// A partition's fetch in flight is one the consumer still waits for, and a fetch
    /// position is a real offset (Kafka's `SubscriptionState`).
    fn invariants(&self) {
        let mut seen = self.in_flight_seen.borrow_mut();
        let seen = &mut *seen;
        // Entries changed since the last run get every per-partition rule; the partitions of
        // a fetch in flight are remembered under its correlation id.
        let mut check = |tp: &TopicPartition, p: &PartitionFetchState| {
            self.partition_invariants(tp, p);
            if let Some(corr) = p.in_flight {
                let tps = seen.by_fetch.entry(corr).or_default();
                if tps.last() != Some(tp) {
                    tps.push(tp.clone());
                }
            }
        };
        // The rule that needs a coordinator holds for unchanged entries as long as the
        // coordinator stays; losing it (never done today) rechecks every entry.
        let has_coordinator = self.coordinator.is_some();
        if seen.had_coordinator && !has_coordinator {
            self.partitions.iter().for_each(|(tp, p)| check(tp, p));
        }
        self.partitions.check_touched(&mut check);
        seen.had_coordinator = has_coordinator;
        // An unchanged entry's fetch was pending when it was checked; it can only dangle once
        // that fetch left `pending`, and then it is among the partitions remembered for it.
        let pending = &self.pending;
        let partitions = &self.partitions;
        let index = self.index;
        seen.by_fetch.retain(|corr, tps| {
            if pending.contains_key(corr) {
                return true;
            }
            for tp in tps.iter() {
                assert!(
                    partitions.get(tp).and_then(|p| p.in_flight) != Some(*corr),
                    "consumer-{index}: {tp} has fetch {corr:?} in flight but no request waits for it"
                );
            }
            false
        });
        self.coordinator_invariants();
        self.membership_invariants();
    }

    fn on_start(&mut self, now: Instant, out: &mut Effects<ConsumerTimer>) {
        self.now = now;
        if now.as_ms() < self.workload.start_ms {
            out.timer(self.workload.start_ms - now.as_ms(), ConsumerTimer::Start);
        } else {
            self.start(now, out);
        }
    }

    fn on_message(
        &mut self,
        now: Instant,
        _from: NodeId,
        msg: Message,
        out: &mut Effects<ConsumerTimer>,
    ) {
        self.now = now;
        if self.is_closed() {
            return;
        }
        if matches!(msg, Message::Close) {
            self.on_close_requested(out);
            return;
        }
        let corr = match &msg {
            Message::MetadataResponse { corr, .. }
            | Message::ListOffsetsResponse { corr, .. }
            | Message::OffsetForLeaderEpochResponse { corr, .. }
            | Message::FetchResponse { corr, .. }
            | Message::FindCoordinatorResponse { corr, .. }
            | Message::OffsetFetchResponse { corr, .. }
            | Message::OffsetCommitResponse { corr, .. }
            | Message::JoinGroupResponse { corr, .. }
            | Message::SyncGroupResponse { corr, .. }
            | Message::HeartbeatResponse { corr, .. }
            | Message::LeaveGroupResponse { corr, .. } => *corr,
            _ => return,
        };
        let Some((pending, to)) = self.pending.remove(&corr) else {
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
            (Pending::Fetch(tps), Message::FetchResponse { partitions, .. }) => {
                self.on_fetch_response(tps, corr, partitions, out)
            }
            (
                Pending::FindCoordinator,
                Message::FindCoordinatorResponse {
                    error, coordinator, ..
                },
            ) => self.on_find_coordinator_response(corr, error, coordinator, out),
            (
                Pending::OffsetFetch,
                Message::OffsetFetchResponse {
                    error, partitions, ..
                },
            ) => self.on_offset_fetch_response(corr, to, error, partitions, out),
            (Pending::OffsetCommit { op_id }, Message::OffsetCommitResponse { partitions, .. }) => {
                self.on_offset_commit_response(op_id, corr, to, partitions, out)
            }
            (
                Pending::JoinGroup,
                Message::JoinGroupResponse {
                    error,
                    generation_id,
                    protocol_name,
                    leader,
                    member_id,
                    members,
                    ..
                },
            ) => self.on_join_group_response(
                corr,
                to,
                error,
                generation_id,
                protocol_name,
                leader,
                member_id,
                members,
                out,
            ),
            (
                Pending::SyncGroup,
                Message::SyncGroupResponse {
                    error, partitions, ..
                },
            ) => self.on_sync_group_response(corr, to, error, partitions, out),
            (Pending::Heartbeat, Message::HeartbeatResponse { error, .. }) => {
                self.on_heartbeat_response(corr, to, error, out)
            }
            _ => {}
        }
    }

    fn on_timeout(&mut self, now: Instant, timer: ConsumerTimer, out: &mut Effects<ConsumerTimer>) {
        self.now = now;
        if self.is_closed() {
            return;
        }
        match timer {
            ConsumerTimer::Start => self.start(now, out),
            ConsumerTimer::Poll => self.app_processed(out),
            ConsumerTimer::PollTimeout { generation } => {
                if self.blocked_poll == Some(generation) {
                    // poll() returned nothing (not recorded); the application polls again.
                    self.blocked_poll = None;
                    self.app_poll(out);
                }
            }
            ConsumerTimer::RequestTimeout { corr } => {
                if let Some((pending, to)) = self.pending.remove(&corr) {
                    self.on_request_lost(pending, corr, to, RequestLost::TimedOut, out);
                }
            }
            ConsumerTimer::MetadataRefresh => {
                self.request_metadata(out);
                out.timer(METADATA_REFRESH_MS, ConsumerTimer::MetadataRefresh);
            }
            ConsumerTimer::MetadataRetry => self.request_metadata(out),
            ConsumerTimer::Refetch { tp } => self.fetch_one(&tp, out),
            ConsumerTimer::Seek { tp, offset } => self.seek(&tp, offset, out),
            ConsumerTimer::CoordinatorLookup => self.on_coordinator_lookup_timeout(out),
            ConsumerTimer::OffsetFetchRetry => self.on_offset_fetch_retry_timeout(out),
            ConsumerTimer::CommitRetry { op_id } => self.on_commit_retry_timeout(op_id, out),
            ConsumerTimer::CommitDeadline { op_id } => self.on_commit_deadline_timeout(op_id, out),
            ConsumerTimer::AutoCommitDue { generation } => {
                if self.blocked_poll == Some(generation) {
                    self.maybe_auto_commit(out);
                }
            }
            ConsumerTimer::Heartbeat => self.on_heartbeat_timer(out),
            ConsumerTimer::JoinRetry => self.on_join_retry_timeout(out),
        }
    }

    fn on_disconnect(&mut self, now: Instant, peer: NodeId, out: &mut Effects<ConsumerTimer>) {
        self.now = now;
        if self.is_closed() {
            return;
        }
        let lost: Vec<CorrelationId> = self
            .pending
            .iter()
            .filter(|(_, (_, to))| *to == peer)
            .map(|(c, _)| *c)
            .collect();
        for corr in lost {
            let (pending, to) = self.pending.remove(&corr).expect("present");
            self.on_request_lost(pending, corr, to, RequestLost::Disconnected, out);
        }
    }

    fn on_send_failed(
        &mut self,
        now: Instant,
        _to: NodeId,
        msg: Message,
        out: &mut Effects<ConsumerTimer>,
    ) {
        self.now = now;
        if self.is_closed() {
            return;
        }
        let corr = match &msg {
            Message::Metadata { corr, .. }
            | Message::ListOffsets { corr, .. }
            | Message::OffsetForLeaderEpoch { corr, .. }
            | Message::Fetch { corr, .. }
            | Message::FindCoordinator { corr, .. }
            | Message::OffsetFetch { corr, .. }
            | Message::OffsetCommit { corr, .. }
            | Message::JoinGroup { corr, .. }
            | Message::SyncGroup { corr, .. }
            | Message::Heartbeat { corr, .. }
            | Message::LeaveGroup { corr, .. } => *corr,
            _ => return,
        };
        if let Some((pending, to)) = self.pending.remove(&corr) {
            self.on_request_lost(pending, corr, to, RequestLost::NotSent, out);
        }
    }
}

/// How a request was lost: it matters to a commit, which a lost request may or may not have
/// stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RequestLost {
    /// The connection could not be opened: the request never left (certainly not stored).
    NotSent,
    /// The connection closed with the request unanswered.
    Disconnected,
    /// No answer within the request timeout.
    TimedOut,
}

impl RequestLost {
    fn name(self) -> &'static str {
        match self {
            RequestLost::NotSent => "not-sent",
            RequestLost::Disconnected => "disconnected",
            RequestLost::TimedOut => "request-timeout",
        }
    }
}

impl ConsumerClient {
    fn on_request_lost(
        &mut self,
        pending: Pending,
        corr: CorrelationId,
        to: NodeId,
        how: RequestLost,
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
            Pending::ListOffsets(tp) | Pending::OffsetForLeaderEpoch(tp) => {
                if self.partitions.get(&tp).and_then(|s| s.in_flight) == Some(corr) {
                    self.leader_lost(&tp, out);
                }
            }
            Pending::Fetch(tps) => {
                for tp in tps {
                    if self.partitions.get(&tp).and_then(|s| s.in_flight) == Some(corr) {
                        self.leader_lost(&tp, out);
                    }
                }
            }
            Pending::FindCoordinator => self.on_find_coordinator_lost(corr, how, out),
            Pending::OffsetFetch => self.on_offset_fetch_lost(corr, to, how, out),
            Pending::OffsetCommit { op_id } => {
                self.on_offset_commit_lost(op_id, corr, to, how, out)
            }
            p @ (Pending::JoinGroup
            | Pending::SyncGroup
            | Pending::Heartbeat
            | Pending::LeaveGroup) => self.on_group_request_lost(p, corr, to, how, out),
        }
    }
}
