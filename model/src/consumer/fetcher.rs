//! Kafka's `Fetcher` (with `AbstractFetch` and `CompletedFetch`): the next request each
//! partition needs, the Fetch to its leader, and the records of a fetch response turned into
//! buffered records for `poll()`, stopping at a record the application cannot read.
//!
//! # Fetching
//! One Fetch per broker at a time, covering every partition led by that broker whose position
//! is ready to fetch (Kafka's `AbstractFetch.prepareFetchRequests`: partitions of a node with a
//! fetch in flight wait for it), with `fetch.min.bytes` summed over its partitions and
//! `fetch.max.wait.ms` (the broker holds the request until enough bytes are readable or the
//! wait elapses: a long poll), at most `max.partition.fetch.bytes` per partition and
//! `fetch.max.bytes` for the whole response (the broker still returns a first batch larger
//! than that, as Kafka does, so the consumer always makes progress). Errors in the response are
//! per partition: one partition's OFFSET_OUT_OF_RANGE or NOT_LEADER_OR_FOLLOWER leaves the
//! others' records to be buffered. The consumer reads below the leader's high watermark
//! (`read_uncommitted`, the default) or, with `isolation.level = read_committed`, below its last
//! stable offset, dropping the batches of aborted transactions with the aborted list the leader
//! returns ([`AbortedTransactions`], KIP-98). Control batches (transaction markers) are never
//! returned to the application; the position moves past them. Partitions go into a request in assignment order; Kafka's consumer
//! moves a partition whose records the application took to the end of that order, which
//! matters only when `fetch.max.bytes` is smaller than what the partitions have to return.

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
            FetchState::Fetching(_) => {
                self.fetch_from(leader, out);
                return;
            }
        };
        self.partitions.get_mut(tp).expect("assigned").in_flight = Some(corr);
    }

    /// Sends one Fetch to `leader` for every partition it leads whose position is ready to
    /// fetch, unless a Fetch to it is in flight or the application has a backlog to poll.
    fn fetch_from(&mut self, leader: BrokerId, out: &mut Effects<ConsumerTimer>) {
        // Do not fetch more while the application has a backlog to poll.
        if self.buffer.len() >= 4 * self.config.max_poll_records as usize {
            return;
        }
        let node = NodeId::Broker(leader);
        if self
            .pending
            .values()
            .any(|(what, to)| *to == node && matches!(what, Pending::Fetch(_)))
        {
            return;
        }
        let cfg = &self.config;
        let partition_max_bytes = cfg.max_partition_fetch_bytes;
        let wanted: Vec<FetchPartition> = self
            .partitions
            .iter()
            .filter(|(_, s)| s.leader == Some(leader) && s.in_flight.is_none())
            .filter_map(|(tp, s)| match s.state {
                FetchState::Fetching(position) => Some(FetchPartition {
                    tp: tp.clone(),
                    fetch_offset: position.offset,
                    last_fetched_epoch: LeaderEpoch::UNKNOWN,
                    current_leader_epoch: s.leader_epoch,
                    partition_max_bytes,
                }),
                _ => None,
            })
            .collect();
        if wanted.is_empty() {
            return;
        }
        let (max_bytes, min_bytes, max_wait_ms, isolation_level) = (
            cfg.fetch_max_bytes,
            cfg.fetch_min_bytes,
            cfg.fetch_max_wait_ms,
            cfg.isolation_level,
        );
        let tps: Vec<TopicPartition> = wanted.iter().map(|fp| fp.tp.clone()).collect();
        let corr = self.send(
            leader,
            |corr| Message::Fetch {
                corr,
                replica_id: None,
                broker_epoch: BrokerEpoch(-1),
                max_bytes,
                min_bytes,
                max_wait_ms,
                isolation_level,
                partitions: wanted,
            },
            Pending::Fetch(tps.clone()),
            out,
        );
        for tp in &tps {
            self.partitions.get_mut(tp).expect("assigned").in_flight = Some(corr);
        }
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

    /// The answer to a Fetch for `tps`: each partition's records or error on its own (a
    /// partition superseded since, by a seek or a new position to validate, is skipped), then
    /// the next requests go out (Kafka's `AbstractFetch.handleFetchSuccess` and
    /// `FetchCollector`).
    pub(super) fn on_fetch_response(
        &mut self,
        tps: Vec<TopicPartition>,
        corr: CorrelationId,
        responses: Vec<FetchPartitionResponse>,
        out: &mut Effects<ConsumerTimer>,
    ) {
        // Every partition of the request is free to fetch again once its answer is read.
        let mut mine = std::collections::BTreeSet::new();
        for tp in &tps {
            if let Some(s) = self.partitions.get_mut(tp) {
                if s.in_flight == Some(corr) {
                    s.in_flight = None;
                    mine.insert(tp.clone());
                }
            }
        }
        let mut added = false;
        for r in responses {
            if mine.contains(&r.tp) {
                added |= self.on_fetched_partition(r, out);
            }
        }
        if added && self.blocked_poll.is_some() {
            self.complete_poll(out);
        }
        // Every partition of the request, answered or superseded (a seek's new position
        // waited for this request to return), may fetch again.
        for tp in &tps {
            self.fetch_one(tp, out);
        }
    }

    /// One partition of a fetch response; returns whether records were buffered. Sends
    /// nothing: the caller fetches again.
    fn on_fetched_partition(
        &mut self,
        r: FetchPartitionResponse,
        out: &mut Effects<ConsumerTimer>,
    ) -> bool {
        let FetchPartitionResponse {
            tp,
            error,
            batches,
            aborted_transactions,
            ..
        } = r;
        let read_committed = self.config.isolation_level == IsolationLevel::ReadCommitted;
        let mut aborted = AbortedTransactions::new(aborted_transactions);
        let Some(s) = self.partitions.get_mut(&tp) else {
            return false;
        };
        let FetchState::Fetching(mut position) = s.state else {
            // The position awaits validation (or a reset) since: the answer is stale.
            return false;
        };
        match error {
            ErrorCode::None => {}
            ErrorCode::OffsetOutOfRange => {
                s.state = FetchState::AwaitReset {
                    reason: ResetReason::OffsetOutOfRange,
                    from: Some(position),
                };
                return false;
            }
            _ => {
                // FENCED_LEADER_EPOCH, UNKNOWN_LEADER_EPOCH, NOT_LEADER_OR_FOLLOWER, ...
                self.leader_lost(&tp, out);
                return false;
            }
        }
        let mut added = false;
        'batches: for bytes in batches {
            let Ok((batch, _)) = RecordBatch::decode(&bytes) else {
                break;
            };
            // Transactions (KIP-98): control batches never reach the application, and under
            // read_committed neither do the batches of aborted transactions; the position
            // moves past both.
            // (The aborted list sees every batch, markers included: an ABORT marker ends its
            // producer's aborted run.)
            let dropped = read_committed && aborted.is_aborted(&batch);
            let skip = dropped || batch.is_control();
            if skip {
                let next = Offset(batch.base_offset.0 + batch.last_offset_delta as i64 + 1);
                if next > position.offset {
                    position = FetchPosition {
                        offset: next,
                        offset_epoch: batch.partition_leader_epoch,
                    };
                }
                continue;
            }
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
            return added;
        };
        if !matches!(s.state, FetchState::Blocked(_)) {
            s.state = FetchState::Fetching(position);
        }
        added
    }
}

/// The aborted transactions of one fetch response and the producers whose batches are being
/// dropped (Kafka's `CompletedFetch.abortedProducerIds` / `abortedTransactions`,
/// `CompletedFetch.java:208-234, 355-389`): walking the batches in offset order, an aborted
/// transaction becomes active once a batch of the partition reaches its first offset; from
/// then on that producer's transactional batches are aborted until its ABORT marker.
#[derive(Debug, Default)]
pub(super) struct AbortedTransactions {
    /// Not yet reached, by first offset (ties by producer).
    pending: std::collections::BTreeSet<(Offset, ProducerId)>,
    /// Producers whose transactional batches are dropped now.
    active: std::collections::BTreeSet<ProducerId>,
}

impl AbortedTransactions {
    /// The aborted list of a read_committed fetch response (empty for read_uncommitted).
    pub(super) fn new(list: Vec<AbortedTransaction>) -> Self {
        AbortedTransactions {
            pending: list
                .into_iter()
                .map(|a| (a.first_offset, a.producer_id))
                .collect(),
            active: Default::default(),
        }
    }

    /// Whether `batch` (the next batch of the response, in offset order) belongs to an
    /// aborted transaction. Batches without a producer id take no part; an ABORT marker ends
    /// its producer's aborted run (the marker itself is a control batch, never returned).
    pub(super) fn is_aborted(&mut self, batch: &RecordBatch) -> bool {
        if batch.producer_id == ProducerId::NONE {
            return false;
        }
        let last = Offset(batch.base_offset.0 + batch.last_offset_delta as i64);
        while let Some(&(first, pid)) = self.pending.first() {
            if first > last {
                break;
            }
            self.pending.pop_first();
            self.active.insert(pid);
        }
        if let Some((TransactionResult::Abort, _)) = batch.txn_marker() {
            self.active.remove(&batch.producer_id);
            return false;
        }
        batch.is_transactional() && self.active.contains(&batch.producer_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ConsumerConfig;
    use crate::effects::Actor;

    fn tp(p: i32) -> TopicPartition {
        TopicPartition::new("events", p)
    }

    fn deliver(c: &mut ConsumerClient, msg: Message) -> Vec<Message> {
        let mut out = Effects::new();
        c.on_message(Instant(0), NodeId::Broker(BrokerId(0)), msg, &mut out);
        out.sent()
    }

    fn corr(m: &Message) -> CorrelationId {
        match m {
            Message::Metadata { corr, .. }
            | Message::ListOffsets { corr, .. }
            | Message::Fetch { corr, .. } => *corr,
            other => panic!("unexpected {other:?}"),
        }
    }

    fn fetched(m: &Message) -> Vec<(i32, i64)> {
        match m {
            Message::Fetch { partitions, .. } => partitions
                .iter()
                .map(|p| (p.tp.partition, p.fetch_offset.0))
                .collect(),
            other => panic!("expected a Fetch, got {other:?}"),
        }
    }

    fn answer(tp: TopicPartition, error: ErrorCode, records: i64) -> FetchPartitionResponse {
        let batches = if records > 0 {
            let values = (0..records)
                .map(|i| (None, Some((i as u64).to_be_bytes().to_vec())))
                .collect();
            vec![RecordBatch::new(values, 0).encode()]
        } else {
            vec![]
        };
        FetchPartitionResponse {
            tp,
            error,
            high_watermark: Offset(100),
            last_stable_offset: Offset(100),
            log_start_offset: Offset(0),
            diverging_epoch: None,
            leader_epoch: LeaderEpoch(0),
            batches,
            aborted_transactions: vec![],
        }
    }

    /// Kafka's consumer sends one Fetch per broker for all the partitions it leads (a
    /// partition ready while one is in flight waits for it), and handles each partition of
    /// the response on its own: OFFSET_OUT_OF_RANGE on one resets it while the other's
    /// records are buffered.
    #[test]
    fn one_fetch_per_broker_and_errors_per_partition() {
        let mut c = ConsumerClient::new(
            0,
            ConsumerConfig::default(),
            vec!["events".into()],
            vec![BrokerId(0)],
        );
        let mut out = Effects::new();
        c.on_start(Instant(0), &mut out);
        let md = out.sent().remove(0);
        let pm = |p| PartitionMetadata {
            tp: tp(p),
            error: ErrorCode::None,
            leader: Some(BrokerId(0)),
            leader_epoch: LeaderEpoch(0),
            replicas: vec![BrokerId(0)],
            isr: vec![BrokerId(0)],
        };
        let sent = deliver(
            &mut c,
            Message::MetadataResponse {
                corr: corr(&md),
                brokers: vec![BrokerId(0)],
                controller: Some(BrokerId(0)),
                partitions: vec![pm(0), pm(1)],
            },
        );
        assert_eq!(sent.len(), 2, "one ListOffsets per partition: {sent:?}");
        let position = |m: &Message, p: i32| Message::ListOffsetsResponse {
            corr: corr(m),
            tp: tp(p),
            error: ErrorCode::None,
            offset: Offset(0),
            leader_epoch: LeaderEpoch(0),
        };
        let first = deliver(&mut c, position(&sent[0], 0));
        assert_eq!(fetched(&first[0]), [(0, 0)]);
        assert!(
            deliver(&mut c, position(&sent[1], 1)).is_empty(),
            "a fetch to broker 0 is in flight: partition 1 waits for it"
        );
        let next = deliver(
            &mut c,
            Message::FetchResponse {
                corr: corr(&first[0]),
                partitions: vec![answer(tp(0), ErrorCode::None, 2)],
            },
        );
        assert_eq!(next.len(), 1);
        assert_eq!(fetched(&next[0]), [(0, 2), (1, 0)]);
        let after = deliver(
            &mut c,
            Message::FetchResponse {
                corr: corr(&next[0]),
                partitions: vec![
                    answer(tp(0), ErrorCode::OffsetOutOfRange, 0),
                    answer(tp(1), ErrorCode::None, 3),
                ],
            },
        );
        assert_eq!(c.buffer.len(), 5, "partition 1's records buffered");
        assert!(matches!(&after[0], Message::ListOffsets { tp: t, .. } if *t == tp(0)));
        assert_eq!(fetched(&after[1]), [(1, 3)]);
    }

    /// A consumer of `events-0` at offset 0 with `isolation`, and its first Fetch.
    fn fetching(isolation: IsolationLevel) -> (ConsumerClient, Message) {
        let config = ConsumerConfig {
            isolation_level: isolation,
            ..ConsumerConfig::default()
        };
        let mut c = ConsumerClient::new(0, config, vec!["events".into()], vec![BrokerId(0)]);
        let mut out = Effects::new();
        c.on_start(Instant(0), &mut out);
        let md = out.sent().remove(0);
        let sent = deliver(
            &mut c,
            Message::MetadataResponse {
                corr: corr(&md),
                brokers: vec![BrokerId(0)],
                controller: Some(BrokerId(0)),
                partitions: vec![PartitionMetadata {
                    tp: tp(0),
                    error: ErrorCode::None,
                    leader: Some(BrokerId(0)),
                    leader_epoch: LeaderEpoch(0),
                    replicas: vec![BrokerId(0)],
                    isr: vec![BrokerId(0)],
                }],
            },
        );
        let fetch = deliver(
            &mut c,
            Message::ListOffsetsResponse {
                corr: corr(&sent[0]),
                tp: tp(0),
                error: ErrorCode::None,
                offset: Offset(0),
                leader_epoch: LeaderEpoch(0),
            },
        )
        .remove(0);
        assert!(
            matches!(&fetch, Message::Fetch { isolation_level, .. } if *isolation_level == isolation),
            "the isolation level goes out with the fetch: {fetch:?}"
        );
        (c, fetch)
    }

    /// A transactional batch of producer `pid` at `base` with `n` records.
    fn txn_at(pid: i64, base: i64, n: u64) -> Vec<u8> {
        let values = (0..n)
            .map(|i| (None, Some((base as u64 + i).to_be_bytes().to_vec())))
            .collect();
        let mut b = RecordBatch::new(values, 0)
            .with_producer(ProducerId(pid), ProducerEpoch(0), Sequence(0))
            .with_transactional(true);
        b.base_offset = Offset(base);
        b.encode()
    }

    fn marker_at(pid: i64, base: i64, result: TransactionResult) -> Vec<u8> {
        let mut b = RecordBatch::end_txn_marker(ProducerId(pid), ProducerEpoch(0), result, 0, 0);
        b.base_offset = Offset(base);
        b.encode()
    }

    /// Producer 1 writes 0..=1 and aborts at 4; a plain record at 2; producer 2 writes 3 and
    /// commits at 5; producer 1 starts a new transaction at 6.
    fn transactional_response(corr: CorrelationId, aborted: bool) -> Message {
        let mut plain = RecordBatch::new(vec![(None, Some(2u64.to_be_bytes().to_vec()))], 0);
        plain.base_offset = Offset(2);
        let mut r = answer(tp(0), ErrorCode::None, 0);
        r.batches = vec![
            txn_at(1, 0, 2),
            plain.encode(),
            txn_at(2, 3, 1),
            marker_at(1, 4, TransactionResult::Abort),
            marker_at(2, 5, TransactionResult::Commit),
            txn_at(1, 6, 1),
        ];
        if aborted {
            r.aborted_transactions = vec![AbortedTransaction {
                producer_id: ProducerId(1),
                first_offset: Offset(0),
            }];
        }
        Message::FetchResponse {
            corr,
            partitions: vec![r],
        }
    }

    fn buffered_offsets(c: &ConsumerClient) -> Vec<i64> {
        c.buffer.iter().map(|r| r.offset.0).collect()
    }

    /// CompletedFetch.java's rules: under read_committed an aborted producer's batches are
    /// dropped from its first offset until its ABORT marker (its next transaction is read);
    /// control records never reach the application; the position moves past both.
    #[test]
    fn read_committed_drops_aborted_transactions_and_markers() {
        let (mut c, fetch) = fetching(IsolationLevel::ReadCommitted);
        let next = deliver(&mut c, transactional_response(corr(&fetch), true));
        assert_eq!(buffered_offsets(&c), vec![2, 3, 6]);
        assert_eq!(
            fetched(&next[0]),
            [(0, 7)],
            "the position moved past the marker"
        );
    }

    /// read_uncommitted returns the aborted records too, but never the markers.
    #[test]
    fn read_uncommitted_returns_aborted_records_but_no_markers() {
        let (mut c, fetch) = fetching(IsolationLevel::ReadUncommitted);
        let next = deliver(&mut c, transactional_response(corr(&fetch), false));
        assert_eq!(buffered_offsets(&c), vec![0, 1, 2, 3, 6]);
        assert_eq!(fetched(&next[0]), [(0, 7)]);
        // A response ending in a marker still moves the position past it.
        let mut r = answer(tp(0), ErrorCode::None, 0);
        r.batches = vec![marker_at(2, 7, TransactionResult::Commit)];
        let corr = corr(&next[0]);
        c.buffer.clear();
        let after = deliver(
            &mut c,
            Message::FetchResponse {
                corr,
                partitions: vec![r],
            },
        );
        assert!(c.buffer.is_empty());
        assert_eq!(fetched(&after[0]), [(0, 8)]);
    }
}
