//! The group coordinator's client side for a consumer with a `group.id` that assigns its own
//! partitions (Kafka's `ConsumerCoordinator` with `AbstractCoordinator`, in the manual-assignment
//! case): find the coordinator, read the group's committed offsets to start from, and commit
//! positions. There is no group membership here (no JoinGroup, no heartbeats): every commit
//! carries generation -1 and an empty member id, which a group without members accepts
//! (ClassicGroup.java:823-864, GROUPS-AND-TRANSACTIONS.md A1).
//!
//! # Finding the coordinator (`AbstractCoordinator.lookupCoordinator`)
//! The coordinator is looked up only when something needs it (a manually assigned consumer
//! does not look for it proactively): FindCoordinator(group) to a bootstrap broker, which
//! answers with the leader of the group's `__consumer_offsets` partition. A failed lookup
//! (COORDINATOR_NOT_AVAILABLE while the topic is being created or the partition has no leader,
//! a lost request) is tried again after `retry.backoff.ms`. The consumer forgets the
//! coordinator (`markCoordinatorUnknown`) when it answers NOT_COORDINATOR or
//! COORDINATOR_NOT_AVAILABLE, when a commit is answered REQUEST_TIMED_OUT, and when a request
//! to it is lost (disconnect or `request.timeout.ms`); the next request looks it up again.
//! COORDINATOR_LOAD_IN_PROGRESS keeps the coordinator and retries after the backoff.
//!
//! # Committed offsets (`refreshCommittedOffsetsIfNeeded`, `fetchCommittedOffsets`)
//! Newly assigned partitions start *initializing*: one OffsetFetch asks the coordinator for
//! their committed offsets, retried after `retry.backoff.ms` until it is answered. A committed
//! offset becomes the position (an event [`Event::ConsumerPositionReset`] with strategy
//! `committed`); a partition without one goes to `auto.offset.reset`. The fetch is one history
//! operation `offset-fetch` (invoke when first asked, `ok` with each partition's offset), so the
//! checker `committed-offset-regression` can compare what was read back with what was
//! acknowledged before.
//!
//! # Commits (`commitOffsetsSync`, `commitOffsetsAsync`, `maybeAutoCommitOffsetsAsync`)
//! A commit sends the position of every partition that has a valid one (Kafka's
//! `SubscriptionState.allConsumed`). Each commit is one history operation `commit`:
//! * `sync` (`commitSync()`): retried after `retry.backoff.ms` on a retriable error (after a
//!   new lookup when the coordinator was forgotten) until it succeeds, a non-retriable error
//!   ends it, or `default.api.timeout.ms` passes (`TimeoutException`).
//! * `async` (`commitAsync()`): one attempt; if the coordinator is unknown, after one lookup.
//! * `auto` (`enable.auto.commit`): an async commit from inside `poll()` every
//!   `auto.commit.interval.ms`; a retriable failure brings the next one forward to
//!   `retry.backoff.ms` later (Kafka's `nextAutoCommitTimer.updateAndReset(retryBackoffMs)`).
//!
//! The outcome follows Jepsen: `ok` once the coordinator acknowledged (the records are below
//! the high watermark of `__consumer_offsets`), `fail` only when the commit certainly was not
//! stored (never sent, or refused before any append: COORDINATOR_LOAD_IN_PROGRESS,
//! UNKNOWN_MEMBER_ID, ...), otherwise `info`: NOT_COORDINATOR and COORDINATOR_NOT_AVAILABLE are
//! also what a coordinator answers after appending (it lost the leadership, or the ISR shrank
//! below `min.insync.replicas`), and REQUEST_TIMED_OUT leaves the records in the log.

use super::subscription_state::{FetchPosition, FetchState, ResetReason};
use super::{AfterCommit, CommitMode, ConsumerClient, ConsumerTimer, Pending, RequestLost};
use crate::effects::Effects;
use crate::event::{ClientOp, CommitOffset, Event, FetchedOffset, OpType, OpValue};
use crate::protocol::*;
use crate::types::*;
use std::collections::BTreeMap;

/// Where the coordinator lookup stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lookup {
    /// No lookup under way.
    Idle,
    /// A FindCoordinator is in flight.
    InFlight(CorrelationId),
    /// The last lookup failed; the next may start after `retry.backoff.ms`.
    Backoff,
}

/// The OffsetFetch of the initializing partitions, from its first attempt to its answer.
#[derive(Debug, Clone)]
struct CommittedFetch {
    /// The history operation.
    op_id: u64,
    /// The partitions asked, in order.
    partitions: Vec<TopicPartition>,
    /// The request in flight, if any.
    in_flight: Option<CorrelationId>,
    /// Waiting `retry.backoff.ms` before the next attempt.
    backoff: bool,
}

/// How a commit was called.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum CommitKind {
    Sync,
    Async,
    Auto,
    /// The commit before partitions are revoked in a rebalance (subscribe mode): the
    /// application's `onPartitionsRevoked` calling `commitSync()` (`auto: false`), or the
    /// consumer's own synchronous auto commit in `onJoinPrepare` (`auto: true`). Retried like
    /// `commitSync()`.
    Revoke {
        auto: bool,
    },
}

impl CommitKind {
    fn name(self) -> &'static str {
        match self {
            CommitKind::Sync | CommitKind::Revoke { auto: false } => "sync",
            CommitKind::Async => "async",
            CommitKind::Auto | CommitKind::Revoke { auto: true } => "auto",
        }
    }

    /// Whether a retriable failure is retried (`commitSync()` semantics).
    fn retries(self) -> bool {
        matches!(self, CommitKind::Sync | CommitKind::Revoke { .. })
    }
}

/// A commit from its call to its outcome.
#[derive(Debug, Clone)]
struct Commit {
    kind: CommitKind,
    offsets: Vec<CommitOffset>,
    /// The request in flight, if any.
    in_flight: Option<CorrelationId>,
    /// Waiting `retry.backoff.ms` before the next attempt (`sync`).
    backoff: bool,
    /// Some attempt may have been stored (it was sent and got no answer, or an answer a
    /// coordinator also gives after appending).
    maybe_stored: bool,
    /// The error of the last failed attempt (an `offset-commit-failed` event is emitted when
    /// it changes, not for every retry).
    last_error: Option<String>,
    /// The member's generation and id the commit carries (subscribe mode), else -1 and "".
    generation: Option<i32>,
    member_id: Option<String>,
}

/// The client side of the group coordinator (see the module documentation).
#[derive(Debug, Clone)]
pub(super) struct ConsumerCoordinator {
    /// `group.id`.
    group_id: String,
    /// The coordinator as last discovered.
    coordinator: Option<BrokerId>,
    lookup: Lookup,
    fetch: Option<CommittedFetch>,
    /// Commits not yet completed, by operation id.
    commits: BTreeMap<u64, Commit>,
    /// When the next auto commit is due (ms), with `enable.auto.commit`.
    next_auto_commit_ms: Option<u64>,
    /// The coordinator last announced in a `coordinator-discovered` event, and whether its
    /// loss was announced since: a lookup that finds the same broker again (FindCoordinator
    /// still naming a dead leader) is not announced again.
    announced: Option<(BrokerId, bool)>,
}

impl ConsumerCoordinator {
    /// The coordinator as last discovered, if known.
    pub(super) fn coordinator_id(&self) -> Option<BrokerId> {
        self.coordinator
    }
}

impl ConsumerClient {
    /// Creates the group's client side when the config has a `group.id` (at start: a
    /// restarted process begins with no coordinator and no committed offsets).
    pub(super) fn start_coordinator(&mut self) {
        let Some(group_id) = self.config.group_id.clone() else {
            return;
        };
        let now_ms = self.now.as_ms();
        self.coordinator = Some(ConsumerCoordinator {
            group_id,
            coordinator: None,
            lookup: Lookup::Idle,
            fetch: None,
            commits: BTreeMap::new(),
            // Kafka's `nextAutoCommitTimer` starts with the consumer.
            next_auto_commit_ms: self
                .config
                .enable_auto_commit
                .then_some(now_ms + self.config.auto_commit_interval_ms),
            announced: None,
        });
    }

    /// What must hold of the coordinator's state between handlers.
    pub(super) fn coordinator_invariants(&self) {
        let i = self.index;
        let Some(c) = &self.coordinator else {
            assert!(
                self.sync_commit.is_none() && !self.commit_after_processing,
                "consumer-{i}: commits without a group.id"
            );
            return;
        };
        assert!(
            self.config.group_id.as_deref() == Some(c.group_id.as_str()),
            "consumer-{i}: coordinator for group {} but group.id {:?}",
            c.group_id,
            self.config.group_id
        );
        assert!(
            self.workload.commit != CommitMode::None || !self.config.enable_auto_commit,
            "consumer-{i}: commit = none with enable.auto.commit"
        );
        if let Lookup::InFlight(corr) = c.lookup {
            assert!(
                matches!(self.pending.get(&corr), Some((Pending::FindCoordinator, _))),
                "consumer-{i}: FindCoordinator {corr:?} in flight but not pending"
            );
        }
        if let Some(f) = &c.fetch {
            assert!(
                !f.partitions.is_empty(),
                "consumer-{i}: an empty OffsetFetch"
            );
            assert!(
                !(f.backoff && f.in_flight.is_some()),
                "consumer-{i}: OffsetFetch in flight while backing off"
            );
            if let Some(corr) = f.in_flight {
                assert!(
                    matches!(self.pending.get(&corr), Some((Pending::OffsetFetch, _))),
                    "consumer-{i}: OffsetFetch {corr:?} in flight but not pending"
                );
            }
        }
        for (op_id, commit) in &c.commits {
            assert!(
                !commit.offsets.is_empty(),
                "consumer-{i}: empty commit {op_id}"
            );
            assert!(
                commit.offsets.iter().all(|o| o.offset.0 >= 0),
                "consumer-{i}: commit {op_id} of a negative offset: {:?}",
                commit.offsets
            );
            assert!(
                !(commit.backoff && commit.in_flight.is_some()),
                "consumer-{i}: commit {op_id} in flight while backing off"
            );
            if let Some(corr) = commit.in_flight {
                assert!(
                    matches!(self.pending.get(&corr), Some((Pending::OffsetCommit { op_id: o }, _)) if o == op_id),
                    "consumer-{i}: commit {op_id} in flight as {corr:?} but not pending"
                );
            }
        }
        let sync: Vec<u64> = c
            .commits
            .iter()
            .filter(|(_, k)| k.kind == CommitKind::Sync)
            .map(|(id, _)| *id)
            .collect();
        assert_eq!(
            sync,
            self.sync_commit
                .map(|(id, _)| id)
                .into_iter()
                .collect::<Vec<_>>(),
            "consumer-{i}: the application waits for one commitSync() at most, the one open"
        );
        if self.sync_commit.is_some() {
            assert!(
                self.blocked_poll.is_none(),
                "consumer-{i}: blocked in poll() and in commitSync() at once"
            );
        }
    }

    /// Looks the coordinator up unless it is known, being looked up, or the last lookup failed
    /// less than `retry.backoff.ms` ago.
    pub(super) fn ensure_coordinator(&mut self, out: &mut Effects<ConsumerTimer>) {
        let Some(c) = &self.coordinator else { return };
        if c.coordinator.is_some() || c.lookup != Lookup::Idle || self.bootstrap.is_empty() {
            return;
        }
        let key = c.group_id.clone();
        let b = self.bootstrap[self.next_bootstrap % self.bootstrap.len()];
        self.next_bootstrap += 1;
        let timeout_ms = self.config.request_timeout_ms;
        let corr = self.send_with_timeout(
            b,
            |corr| Message::FindCoordinator {
                corr,
                key,
                key_type: CoordinatorType::Group,
            },
            Pending::FindCoordinator,
            timeout_ms,
            out,
        );
        self.coordinator.as_mut().expect("grouped").lookup = Lookup::InFlight(corr);
    }

    pub(super) fn on_find_coordinator_response(
        &mut self,
        corr: CorrelationId,
        error: ErrorCode,
        coordinator: Option<BrokerId>,
        out: &mut Effects<ConsumerTimer>,
    ) {
        let Some(c) = self.coordinator.as_mut() else {
            return;
        };
        if c.lookup != Lookup::InFlight(corr) {
            return;
        }
        match (error, coordinator) {
            (ErrorCode::None, Some(b)) => {
                c.lookup = Lookup::Idle;
                c.coordinator = Some(b);
                if c.announced.map(|(a, _)| a) != Some(b) {
                    c.announced = Some((b, false));
                    out.event(Event::CoordinatorDiscovered {
                        group: c.group_id.clone(),
                        coordinator: b,
                    });
                }
                self.coordinator_ready(out);
            }
            (error, _) => self.lookup_failed(error.kafka_name(), out),
        }
    }

    pub(super) fn on_find_coordinator_lost(
        &mut self,
        corr: CorrelationId,
        how: RequestLost,
        out: &mut Effects<ConsumerTimer>,
    ) {
        if self.coordinator.as_ref().map(|c| c.lookup) == Some(Lookup::InFlight(corr)) {
            self.lookup_failed(how.name(), out);
        }
    }

    /// A lookup failed: the commits that waited for it without retrying (`async`, `auto`)
    /// fail, never having been sent; the rest waits for the next lookup, after the backoff.
    fn lookup_failed(&mut self, why: &str, out: &mut Effects<ConsumerTimer>) {
        let c = self.coordinator.as_mut().expect("grouped");
        c.lookup = Lookup::Backoff;
        let waiting: Vec<u64> = c
            .commits
            .iter()
            .filter(|(_, k)| !k.kind.retries() && k.in_flight.is_none())
            .map(|(id, _)| *id)
            .collect();
        for op_id in waiting {
            self.complete_commit(
                op_id,
                OpType::Fail,
                Some(format!("coordinator-not-found ({why})")),
                None,
                out,
            );
        }
        out.timer(
            self.config.retry_backoff_ms.max(1),
            ConsumerTimer::CoordinatorLookup,
        );
    }

    pub(super) fn on_coordinator_lookup_timeout(&mut self, out: &mut Effects<ConsumerTimer>) {
        let Some(c) = self.coordinator.as_mut() else {
            return;
        };
        if c.lookup != Lookup::Backoff {
            return;
        }
        c.lookup = Lookup::Idle;
        let needed = c
            .fetch
            .as_ref()
            .is_some_and(|f| !f.backoff && f.in_flight.is_none())
            || c.commits
                .values()
                .any(|k| !k.backoff && k.in_flight.is_none())
            || self.membership_needs_coordinator();
        if needed {
            self.ensure_coordinator(out);
        }
    }

    /// The coordinator is known: send what waited for it.
    fn coordinator_ready(&mut self, out: &mut Effects<ConsumerTimer>) {
        let c = self.coordinator.as_ref().expect("grouped");
        let fetch_waits = c
            .fetch
            .as_ref()
            .is_some_and(|f| !f.backoff && f.in_flight.is_none());
        let commits: Vec<u64> = c
            .commits
            .iter()
            .filter(|(_, k)| !k.backoff && k.in_flight.is_none())
            .map(|(id, _)| *id)
            .collect();
        if fetch_waits {
            self.send_offset_fetch(out);
        }
        for op_id in commits {
            self.send_commit(op_id, out);
        }
        self.membership_coordinator_ready(out);
    }

    /// Kafka's `markCoordinatorUnknown`: forget the coordinator (once per discovery).
    pub(super) fn mark_coordinator_unknown(
        &mut self,
        from: NodeId,
        reason: &str,
        out: &mut Effects<ConsumerTimer>,
    ) {
        let c = self.coordinator.as_mut().expect("grouped");
        let Some(b) = c.coordinator else { return };
        if from != NodeId::Broker(b) {
            return; // an answer from a coordinator already forgotten
        }
        c.coordinator = None;
        if c.announced == Some((b, false)) {
            c.announced = Some((b, true));
            out.event(Event::CoordinatorMarkedUnknown {
                group: c.group_id.clone(),
                coordinator: b,
                reason: reason.to_string(),
            });
        }
    }

    // ---- committed offsets ----

    /// Starts reading the committed offsets of every initializing partition, unless a read
    /// is under way (it is started again for partitions still initializing when it ends).
    pub(super) fn refresh_committed_offsets(&mut self, out: &mut Effects<ConsumerTimer>) {
        let Some(c) = &self.coordinator else { return };
        if c.fetch.is_some() {
            return;
        }
        let partitions: Vec<TopicPartition> = self
            .partitions
            .iter()
            .filter(|(_, s)| s.state == FetchState::Initializing)
            .map(|(tp, _)| tp.clone())
            .collect();
        if partitions.is_empty() {
            return;
        }
        self.next_op += 1;
        let op_id = self.next_op;
        let group = c.group_id.clone();
        out.op(ClientOp {
            op_type: OpType::Invoke,
            op_id,
            value: OpValue::OffsetFetch {
                group,
                offsets: partitions
                    .iter()
                    .map(|tp| FetchedOffset {
                        tp: tp.clone(),
                        committed: None,
                    })
                    .collect(),
                coordinator: None,
            },
            error: None,
        });
        self.coordinator.as_mut().expect("grouped").fetch = Some(CommittedFetch {
            op_id,
            partitions,
            in_flight: None,
            backoff: false,
        });
        self.send_offset_fetch(out);
    }

    fn send_offset_fetch(&mut self, out: &mut Effects<ConsumerTimer>) {
        let c = self.coordinator.as_ref().expect("grouped");
        let f = c.fetch.as_ref().expect("a fetch to send");
        debug_assert!(f.in_flight.is_none() && !f.backoff);
        let Some(b) = c.coordinator else {
            self.ensure_coordinator(out);
            return;
        };
        let (group_id, partitions) = (c.group_id.clone(), f.partitions.clone());
        let timeout_ms = self.config.request_timeout_ms;
        // KIP-447: a read_committed consumer asks for stable offsets only (Kafka's
        // `ConsumerCoordinator` sets `requireStable` from `isolation.level`).
        let require_stable = self.config.isolation_level == IsolationLevel::ReadCommitted;
        let corr = self.send_with_timeout(
            b,
            |corr| Message::OffsetFetch {
                corr,
                group_id,
                partitions,
                require_stable,
            },
            Pending::OffsetFetch,
            timeout_ms,
            out,
        );
        let c = self.coordinator.as_mut().expect("grouped");
        c.fetch.as_mut().expect("a fetch").in_flight = Some(corr);
    }

    pub(super) fn on_offset_fetch_response(
        &mut self,
        corr: CorrelationId,
        from: NodeId,
        error: ErrorCode,
        answered: Vec<OffsetFetchPartition>,
        out: &mut Effects<ConsumerTimer>,
    ) {
        let Some(c) = self.coordinator.as_mut() else {
            return;
        };
        let Some(f) = c.fetch.as_mut().filter(|f| f.in_flight == Some(corr)) else {
            return;
        };
        f.in_flight = None;
        if error != ErrorCode::None {
            // Kafka's OffsetFetchResponseHandler: NOT_COORDINATOR and COORDINATOR_NOT_AVAILABLE
            // forget the coordinator; those, COORDINATOR_LOAD_IN_PROGRESS and
            // UNSTABLE_OFFSET_COMMIT (a transaction still holds a pending offset, KIP-447) are
            // retried.
            if matches!(
                error,
                ErrorCode::NotCoordinator | ErrorCode::CoordinatorNotAvailable
            ) {
                self.mark_coordinator_unknown(from, error.kafka_name(), out);
            }
            self.offset_fetch_backoff(out);
            return;
        }
        let f = c.fetch.take().expect("present");
        let group = c.group_id.clone();
        let NodeId::Broker(coordinator) = from else {
            unreachable!("requests go to brokers")
        };
        let committed: BTreeMap<TopicPartition, Offset> = answered
            .into_iter()
            .filter(|p| p.committed_offset.0 >= 0)
            .map(|p| (p.tp, p.committed_offset))
            .collect();
        out.op(ClientOp {
            op_type: OpType::Ok,
            op_id: f.op_id,
            value: OpValue::OffsetFetch {
                group,
                offsets: f
                    .partitions
                    .iter()
                    .map(|tp| FetchedOffset {
                        tp: tp.clone(),
                        committed: committed.get(tp).copied(),
                    })
                    .collect(),
                coordinator: Some(coordinator),
            },
            error: None,
        });
        for tp in &f.partitions {
            // A partition seeked meanwhile keeps the application's position.
            let Some(s) = self.partitions.get_mut(tp) else {
                continue;
            };
            if s.state != FetchState::Initializing {
                continue;
            }
            match committed.get(tp) {
                Some(&offset) => {
                    // The committed leader epoch is not stored (-1), so the position is not
                    // validated against the log, as Kafka does for such a commit.
                    s.state = FetchState::Fetching(FetchPosition {
                        offset,
                        offset_epoch: LeaderEpoch::UNKNOWN,
                    });
                    out.event(Event::ConsumerPositionReset {
                        tp: tp.clone(),
                        from_offset: None,
                        to_offset: offset,
                        strategy: "committed".into(),
                        reason: "committed-offset".into(),
                    });
                }
                None => {
                    s.state = FetchState::AwaitReset {
                        reason: ResetReason::NoPosition,
                        from: None,
                    }
                }
            }
        }
        // Partitions assigned since, if any, start their own fetch here.
        self.fetch_all(out);
    }

    pub(super) fn on_offset_fetch_lost(
        &mut self,
        corr: CorrelationId,
        to: NodeId,
        how: RequestLost,
        out: &mut Effects<ConsumerTimer>,
    ) {
        let Some(c) = self.coordinator.as_mut() else {
            return;
        };
        let Some(f) = c.fetch.as_mut().filter(|f| f.in_flight == Some(corr)) else {
            return;
        };
        f.in_flight = None;
        self.mark_coordinator_unknown(to, how.name(), out);
        self.offset_fetch_backoff(out);
    }

    fn offset_fetch_backoff(&mut self, out: &mut Effects<ConsumerTimer>) {
        let c = self.coordinator.as_mut().expect("grouped");
        c.fetch.as_mut().expect("a fetch").backoff = true;
        out.timer(
            self.config.retry_backoff_ms.max(1),
            ConsumerTimer::OffsetFetchRetry,
        );
    }

    pub(super) fn on_offset_fetch_retry_timeout(&mut self, out: &mut Effects<ConsumerTimer>) {
        let Some(f) = self.coordinator.as_mut().and_then(|c| c.fetch.as_mut()) else {
            return;
        };
        if !f.backoff {
            return;
        }
        f.backoff = false;
        self.send_offset_fetch(out);
    }

    // ---- commits ----

    /// The positions a commit sends: every partition with a valid position (Kafka's
    /// `allConsumed`), in partition order.
    fn committable(&self) -> Vec<CommitOffset> {
        self.partitions
            .iter()
            .filter(|(_, s)| {
                matches!(
                    s.state,
                    FetchState::Fetching(_) | FetchState::Blocked(Some(_))
                )
            })
            .filter_map(|(tp, _)| {
                self.position(tp).map(|offset| CommitOffset {
                    tp: tp.clone(),
                    offset,
                })
            })
            .collect()
    }

    /// Starts a commit of the current positions; `None` when there is nothing to commit
    /// (Kafka returns at once for empty offsets).
    pub(super) fn start_commit(
        &mut self,
        kind: CommitKind,
        out: &mut Effects<ConsumerTimer>,
    ) -> Option<u64> {
        let offsets = self.committable();
        let c = self.coordinator.as_ref()?;
        if offsets.is_empty() {
            return None;
        }
        let (generation, member_id, refusal) = self.commit_identity();
        self.next_op += 1;
        let op_id = self.next_op;
        let value = OpValue::Commit {
            group: c.group_id.clone(),
            mode: kind.name().into(),
            offsets: offsets.clone(),
            coordinator: None,
            generation,
            member_id: member_id.clone(),
        };
        out.op(ClientOp {
            op_type: OpType::Invoke,
            op_id,
            value: value.clone(),
            error: None,
        });
        if let Some(why) = refusal {
            // Kafka's commitSync()/commitAsync() throw without a request when the member has
            // no stable generation (`generationIfStable()` is null).
            out.op(ClientOp {
                op_type: OpType::Fail,
                op_id,
                value,
                error: Some(why),
            });
            return None;
        }
        self.coordinator.as_mut().expect("grouped").commits.insert(
            op_id,
            Commit {
                kind,
                offsets,
                in_flight: None,
                backoff: false,
                maybe_stored: false,
                last_error: None,
                generation,
                member_id,
            },
        );
        self.send_commit(op_id, out);
        Some(op_id)
    }

    /// `commitSync()`: true when the application now waits for it (then `after` follows its
    /// outcome), false when there was nothing to commit.
    pub(super) fn commit_sync(
        &mut self,
        after: AfterCommit,
        out: &mut Effects<ConsumerTimer>,
    ) -> bool {
        assert!(
            self.sync_commit.is_none(),
            "commitSync() while in commitSync()"
        );
        let Some(op_id) = self.start_commit(CommitKind::Sync, out) else {
            return false;
        };
        // Starting a commit only sends (or waits for the coordinator): its outcome comes later.
        assert!(self
            .coordinator
            .as_ref()
            .is_some_and(|c| c.commits.contains_key(&op_id)));
        self.sync_commit = Some((op_id, after));
        out.timer(
            self.config.default_api_timeout_ms,
            ConsumerTimer::CommitDeadline { op_id },
        );
        true
    }

    /// `commitAsync()`.
    pub(super) fn commit_async(&mut self, out: &mut Effects<ConsumerTimer>) {
        self.start_commit(CommitKind::Async, out);
    }

    /// When the next auto commit is due, with `enable.auto.commit` and a group.
    pub(super) fn auto_commit_due_ms(&self) -> Option<u64> {
        self.coordinator.as_ref()?.next_auto_commit_ms
    }

    /// Kafka's `maybeAutoCommitOffsetsAsync`, called inside `poll()`.
    pub(super) fn maybe_auto_commit(&mut self, out: &mut Effects<ConsumerTimer>) {
        let now_ms = self.now.as_ms();
        let interval_ms = self.config.auto_commit_interval_ms;
        let Some(c) = self.coordinator.as_mut() else {
            return;
        };
        let Some(due_ms) = c.next_auto_commit_ms else {
            return;
        };
        if now_ms < due_ms {
            return;
        }
        c.next_auto_commit_ms = Some(now_ms + interval_ms);
        self.start_commit(CommitKind::Auto, out);
    }

    fn send_commit(&mut self, op_id: u64, out: &mut Effects<ConsumerTimer>) {
        let c = self.coordinator.as_ref().expect("grouped");
        let commit = &c.commits[&op_id];
        debug_assert!(commit.in_flight.is_none() && !commit.backoff);
        let Some(b) = c.coordinator else {
            self.ensure_coordinator(out);
            return;
        };
        let group_id = c.group_id.clone();
        let generation_id = commit.generation.unwrap_or(-1);
        let member_id = commit.member_id.clone().unwrap_or_default();
        let offsets = commit
            .offsets
            .iter()
            .map(|o| OffsetCommitPartition {
                tp: o.tp.clone(),
                committed_offset: o.offset,
            })
            .collect();
        let timeout_ms = self.config.request_timeout_ms;
        let corr = self.send_with_timeout(
            b,
            |corr| Message::OffsetCommit {
                corr,
                group_id,
                generation_id,
                member_id,
                offsets,
            },
            Pending::OffsetCommit { op_id },
            timeout_ms,
            out,
        );
        let c = self.coordinator.as_mut().expect("grouped");
        c.commits.get_mut(&op_id).expect("open").in_flight = Some(corr);
    }

    pub(super) fn on_offset_commit_response(
        &mut self,
        op_id: u64,
        corr: CorrelationId,
        from: NodeId,
        partitions: Vec<OffsetCommitPartitionResponse>,
        out: &mut Effects<ConsumerTimer>,
    ) {
        let Some(commit) = self
            .coordinator
            .as_mut()
            .and_then(|c| c.commits.get_mut(&op_id))
            .filter(|k| k.in_flight == Some(corr))
        else {
            return; // given up (default.api.timeout.ms) before the answer came
        };
        commit.in_flight = None;
        let error = partitions
            .iter()
            .map(|p| p.error)
            .find(|e| *e != ErrorCode::None)
            .unwrap_or(ErrorCode::None);
        if error == ErrorCode::None {
            let NodeId::Broker(b) = from else {
                unreachable!("requests go to brokers")
            };
            self.complete_commit(op_id, OpType::Ok, None, Some(b), out);
            return;
        }
        // Kafka's OffsetCommitResponseHandler.
        let (retriable, maybe_stored) = match error {
            ErrorCode::NotCoordinator
            | ErrorCode::CoordinatorNotAvailable
            | ErrorCode::RequestTimedOut => {
                self.mark_coordinator_unknown(from, error.kafka_name(), out);
                (true, true)
            }
            ErrorCode::CoordinatorLoadInProgress | ErrorCode::UnknownTopicOrPartition => {
                (true, false)
            }
            _ => (false, false),
        };
        let name = self.membership_commit_error(error, out);
        self.commit_attempt_failed(op_id, &name, retriable, maybe_stored, out);
    }

    pub(super) fn on_offset_commit_lost(
        &mut self,
        op_id: u64,
        corr: CorrelationId,
        to: NodeId,
        how: RequestLost,
        out: &mut Effects<ConsumerTimer>,
    ) {
        let Some(c) = self.coordinator.as_mut() else {
            return;
        };
        let Some(commit) = c
            .commits
            .get_mut(&op_id)
            .filter(|k| k.in_flight == Some(corr))
        else {
            return;
        };
        commit.in_flight = None;
        self.mark_coordinator_unknown(to, how.name(), out);
        let maybe_stored = how != RequestLost::NotSent;
        self.commit_attempt_failed(op_id, how.name(), true, maybe_stored, out);
    }

    /// One attempt of commit `op_id` failed with `error`: `commitSync()` tries again after the
    /// backoff if it may; everything else ends here.
    fn commit_attempt_failed(
        &mut self,
        op_id: u64,
        error: &str,
        retriable: bool,
        maybe_stored: bool,
        out: &mut Effects<ConsumerTimer>,
    ) {
        let c = self.coordinator.as_mut().expect("grouped");
        let group = c.group_id.clone();
        let commit = c.commits.get_mut(&op_id).expect("open");
        commit.maybe_stored |= maybe_stored;
        let retry = retriable && commit.kind.retries();
        // One event per change of error (a commitSync() retrying through a failover would
        // otherwise log every attempt), and one for the attempt that ends the commit.
        if !retry || commit.last_error.as_deref() != Some(error) {
            out.event(Event::OffsetCommitFailed {
                group,
                mode: commit.kind.name().into(),
                error: error.to_string(),
                retry,
            });
        }
        commit.last_error = Some(error.to_string());
        if retry {
            commit.backoff = true;
            out.timer(
                self.config.retry_backoff_ms.max(1),
                ConsumerTimer::CommitRetry { op_id },
            );
            return;
        }
        let outcome = if commit.maybe_stored {
            OpType::Info
        } else {
            OpType::Fail
        };
        let kind = commit.kind;
        self.complete_commit(op_id, outcome, Some(error.to_string()), None, out);
        if kind == CommitKind::Auto && retriable {
            // Kafka retries a failed auto commit sooner: `nextAutoCommitTimer.updateAndReset(retryBackoffMs)`.
            let due_ms = self.now.as_ms() + self.config.retry_backoff_ms;
            let c = self.coordinator.as_mut().expect("grouped");
            c.next_auto_commit_ms = c.next_auto_commit_ms.map(|d| d.min(due_ms));
        }
    }

    pub(super) fn on_commit_retry_timeout(&mut self, op_id: u64, out: &mut Effects<ConsumerTimer>) {
        let Some(commit) = self
            .coordinator
            .as_mut()
            .and_then(|c| c.commits.get_mut(&op_id))
        else {
            return;
        };
        if !commit.backoff {
            return;
        }
        commit.backoff = false;
        self.send_commit(op_id, out);
    }

    /// `default.api.timeout.ms` passed since `commitSync()` started commit `op_id`: Kafka's
    /// `TimeoutException`. A request still in flight is abandoned (its answer is ignored).
    pub(super) fn on_commit_deadline_timeout(
        &mut self,
        op_id: u64,
        out: &mut Effects<ConsumerTimer>,
    ) {
        let Some(commit) = self
            .coordinator
            .as_ref()
            .and_then(|c| c.commits.get(&op_id))
        else {
            return;
        };
        let outcome = if commit.maybe_stored || commit.in_flight.is_some() {
            OpType::Info
        } else {
            OpType::Fail
        };
        let offsets = commit
            .offsets
            .iter()
            .map(|o| format!("{}={}", o.tp, o.offset))
            .collect::<Vec<_>>()
            .join(", ");
        let error = format!(
            "TimeoutException: Timeout of {}ms expired before successfully committing offsets {{{offsets}}}",
            self.config.default_api_timeout_ms
        );
        let group = self.coordinator.as_ref().expect("grouped").group_id.clone();
        out.event(Event::OffsetCommitFailed {
            group,
            mode: CommitKind::Sync.name().into(),
            error: "timeout".into(),
            retry: false,
        });
        self.complete_commit(op_id, outcome, Some(error), None, out);
    }

    /// Records commit `op_id`'s outcome and, for a `commitSync()`, lets the application go on.
    fn complete_commit(
        &mut self,
        op_id: u64,
        outcome: OpType,
        error: Option<String>,
        coordinator: Option<BrokerId>,
        out: &mut Effects<ConsumerTimer>,
    ) {
        debug_assert!(outcome != OpType::Invoke);
        debug_assert_eq!(outcome == OpType::Ok, coordinator.is_some());
        let c = self.coordinator.as_mut().expect("grouped");
        let commit = c.commits.remove(&op_id).expect("open");
        out.op(ClientOp {
            op_type: outcome,
            op_id,
            value: OpValue::Commit {
                group: c.group_id.clone(),
                mode: commit.kind.name().into(),
                offsets: commit.offsets,
                coordinator,
                generation: commit.generation,
                member_id: commit.member_id,
            },
            error,
        });
        self.on_commit_completed(op_id, out);
        self.on_close_commit_completed(op_id, out);
        if let Some((waiting, after)) = self.sync_commit {
            if waiting == op_id {
                self.sync_commit = None;
                match after {
                    AfterCommit::Poll => self.app_poll(out),
                    AfterCommit::Process => self.start_processing(out),
                }
            }
        }
    }
}
