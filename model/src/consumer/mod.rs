//! A consumer client in *assign* mode (no group): it owns every partition of its topics and
//! polls them, as `KafkaConsumer.assign()` + a `poll(timeout)` loop does.
//!
//! # Where each part lives
//! This file holds the client, its timers, its requests in flight and its dispatch (the
//! [`Actor`] impl). The assigned partitions and their fetch positions (Kafka's
//! `SubscriptionState`) are in `subscription_state.rs`; fetching (Kafka's `Fetcher`) in
//! `fetcher.rs`; resetting positions with ListOffsets and validating them with
//! OffsetForLeaderEpoch (Kafka's `OffsetFetcher`) in `offset_fetcher.rs`; the application's
//! `poll()` loop in `poll.rs`; metadata in `metadata.rs`; `value.deserializer` in
//! `deserializers.rs`.

use crate::config::ConsumerConfig;
use crate::effects::{Actor, Effects};
use crate::event::PolledRecord;
use crate::protocol::*;
use crate::types::*;
use std::collections::{BTreeMap, VecDeque};

mod deserializers;
mod fetcher;
mod metadata;
mod offset_fetcher;
mod poll;
mod subscription_state;
#[cfg(test)]
mod tests;

pub use deserializers::deserialize_value;
pub use metadata::METADATA_REFRESH_MS;
pub use poll::{ConsumerWorkload, SeekAt, POLL_INTERVAL_MS, POLL_TIMEOUT_MS};
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
}

#[derive(Debug, Clone)]
enum Pending {
    Metadata,
    ListOffsets(TopicPartition),
    Fetch(TopicPartition),
    OffsetForLeaderEpoch(TopicPartition),
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
}

impl Actor for ConsumerClient {
    type Timer = ConsumerTimer;

    /// A partition's fetch in flight is one the consumer still waits for, and a fetch
    /// position is a real offset (Kafka's `SubscriptionState`).
    fn invariants(&self) {
        for (tp, p) in &self.partitions {
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
        }
    }

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
