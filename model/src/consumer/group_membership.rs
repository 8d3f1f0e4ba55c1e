//! Group membership of a consumer in *subscribe* mode (Kafka's `AbstractCoordinator` join and
//! heartbeat logic with `ConsumerCoordinator`'s rebalance callbacks): join the group, let the
//! leader member run the assignor, sync, heartbeat, and hand partitions over as the protocol
//! says.
//!
//! # The join (`AbstractCoordinator.joinGroupIfNeeded`)
//! A rebalance starts only inside the application's `poll()` (Kafka's `ensureActiveGroup`):
//! first `onJoinPrepare`: with an **eager** protocol every owned partition is revoked (after
//! the commit on revoke: the consumer's synchronous auto commit with `enable.auto.commit`, or
//! the application's `commitSync()` in its `ConsumerRebalanceListener` for `commit = sync` and
//! `async`); a member whose generation was reset has lost its partitions instead
//! (`onPartitionsLost`, no commit). Then JoinGroup: a new dynamic member gets
//! MEMBER_ID_REQUIRED with its id and joins again (KIP-394). The leader member gets every
//! member's subscription and runs the group's assignor (the first of its
//! `partition.assignment.strategy` the group chose, see `assignor/`); SyncGroup hands each
//! member its partitions. The assignment is applied inside `poll()` too (`onJoinComplete`):
//! **cooperative** members (KIP-429) revoke only what they lost (commit first) and, if they
//! revoked anything, rejoin at once so a second rebalance can hand those partitions out;
//! newly assigned partitions start from the group's committed offsets
//! (`onPartitionsAssigned`).
//!
//! The rebalance protocol is the highest one every configured assignor supports (Kafka's
//! `ConsumerCoordinator`): the default `[RangeAssignor, CooperativeStickyAssignor]` is eager.
//!
//! # Heartbeats and the poll timeout (`AbstractCoordinator.HeartbeatThread`)
//! Every `heartbeat.interval.ms` a joined member heartbeats. REBALANCE_IN_PROGRESS asks it to
//! rejoin (at its next `poll()`); ILLEGAL_GENERATION and UNKNOWN_MEMBER_ID mean the group went
//! on without it: its generation is reset, its partitions are lost in the application's next
//! `poll()` (`onPartitionsLost` runs in the application's thread, `onJoinPrepare`; records
//! fetched for them meanwhile are dropped), and it rejoins; FENCED_INSTANCE_ID (another
//! process took its `group.instance.id`) ends its membership. No heartbeat answered for
//! `session.timeout.ms`: the coordinator is marked unknown and looked up again. If the
//! application has not called `poll()` for `max.poll.interval.ms`, the heartbeat thread
//! leaves the group (LeaveGroup; a static member sends none) and the member's partitions are
//! lost (at its next `poll()`).
//!
//! # Commits
//! A commit carries the member's generation and id; it is refused without a request while the
//! member has no stable generation (Kafka's `generationIfStable()`), and ILLEGAL_GENERATION /
//! UNKNOWN_MEMBER_ID answers become `CommitFailedException` and a rejoin.

use super::assignor::{assignor_by_name, parse_strategy_list, RebalanceProtocol, Subscription};
use super::coordinator::CommitKind;
use super::subscription_state::PartitionFetchState;
use super::{ConsumerClient, ConsumerTimer, Pending, RequestLost};
use crate::effects::Effects;
use crate::event::Event;
use crate::protocol::*;
use crate::types::*;
use std::collections::{BTreeMap, BTreeSet};

/// Where the member stands (Kafka's `MemberState`, with the join split in two).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum MemberState {
    /// Not in the group: the next `poll()` joins.
    Unjoined,
    /// Revoking before a JoinGroup (the commit on revoke is under way).
    Preparing,
    /// JoinGroup sent (or waiting for the coordinator).
    Joining,
    /// SyncGroup sent.
    Syncing,
    /// A member of the current generation.
    Stable,
    /// Fenced by a newer instance of its `group.instance.id`, or refused for good
    /// (INVALID_SESSION_TIMEOUT, INCONSISTENT_GROUP_PROTOCOL): no longer tries.
    Failed,
}

/// What follows a revocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum AfterRevoke {
    /// Eager `onJoinPrepare`: send JoinGroup.
    Join,
    /// Cooperative `onJoinComplete`: request a rejoin.
    Rejoin,
}

/// The member's side of the group protocol (see the module documentation).
#[derive(Debug, Clone)]
pub(super) struct GroupMembership {
    pub(super) member_id: String,
    pub(super) generation: i32,
    pub(super) instance_id: Option<String>,
    pub(super) state: MemberState,
    /// The group's next rebalance is wanted (applied at the next `poll()`).
    pub(super) rejoin_needed: bool,
    /// The partitions this member owns.
    pub(super) owned: BTreeSet<TopicPartition>,
    /// `partition.assignment.strategy`, in preference order (protocol names).
    pub(super) strategies: Vec<String>,
    /// The rebalance protocol (highest supported by every configured assignor).
    pub(super) cooperative: bool,
    /// Partition counts of the subscribed topics, from metadata (what the leader assigns).
    pub(super) partition_counts: BTreeMap<String, i32>,
    /// Every subscribed partition's leader and epoch, from metadata.
    pub(super) leaders: BTreeMap<TopicPartition, (Option<BrokerId>, LeaderEpoch)>,
    /// A request of the join in flight (JoinGroup or SyncGroup).
    pub(super) join_in_flight: Option<CorrelationId>,
    pub(super) heartbeat_in_flight: Option<CorrelationId>,
    /// A SyncGroup answer waiting for the application's `poll()`: (generation, partitions).
    pub(super) pending_assignment: Option<(i32, Vec<TopicPartition>)>,
    /// A revocation in progress: its partitions, its commit (if any), and what follows.
    pub(super) revoking: Option<(Vec<TopicPartition>, Option<u64>, AfterRevoke)>,
    /// When the application last called `poll()`, ms.
    pub(super) last_poll_ms: u64,
    /// The JoinGroup retry timer is armed.
    pub(super) join_backoff: bool,
    /// Partitions lost by a generation reset, not yet given up: Kafka's consumer only resets
    /// its generation when the error arrives (`resetStateAndRejoin`, often on the heartbeat
    /// thread); `onPartitionsLost` runs, and the partitions leave the assignment, in the
    /// application's next `poll()` (`ConsumerCoordinator.onJoinPrepare`), or in `close()`
    /// (`onLeavePrepare`). Until then [`GroupMembership::owned`] still holds them.
    pub(super) lost: Option<PendingLoss>,
    /// When the session timer last started, ms (Kafka's `Heartbeat.sessionTimer`): when the
    /// member became stable, when the coordinator was (re)discovered, and at every heartbeat
    /// answered without error (or with
    /// REBALANCE_IN_PROGRESS, which Kafka also counts as received). `session.timeout.ms`
    /// later without another, the heartbeat thread marks the coordinator unknown.
    pub(super) session_started_ms: u64,
}

/// A generation reset whose partitions the next `poll()` gives up (`onPartitionsLost`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct PendingLoss {
    /// The member id and generation the partitions were owned under.
    pub(super) member_id: String,
    pub(super) generation: i32,
    /// Why: the error's Kafka name (UNKNOWN_MEMBER_ID for a leave).
    pub(super) reason: String,
}

impl ConsumerClient {
    pub(super) fn group_id(&self) -> String {
        self.config.group_id.clone().unwrap_or_default()
    }

    /// Creates the membership at start (subscribe mode): a new process has no member id.
    pub(super) fn start_membership(&mut self, out: &mut Effects<ConsumerTimer>) {
        if !self.workload.subscribe || self.config.group_id.is_none() {
            return;
        }
        let assignors = parse_strategy_list(&self.config.partition_assignment_strategy)
            .expect("validated by the scenario");
        let cooperative = assignors.iter().all(|a| {
            a.supported_protocols()
                .contains(&RebalanceProtocol::Cooperative)
        });
        self.membership = Some(GroupMembership {
            member_id: String::new(),
            generation: -1,
            instance_id: self.config.group_instance_id.clone(),
            state: MemberState::Unjoined,
            rejoin_needed: true,
            owned: BTreeSet::new(),
            strategies: assignors.iter().map(|a| a.name().to_string()).collect(),
            cooperative,
            partition_counts: BTreeMap::new(),
            leaders: BTreeMap::new(),
            join_in_flight: None,
            heartbeat_in_flight: None,
            pending_assignment: None,
            revoking: None,
            last_poll_ms: self.now.as_ms(),
            join_backoff: false,
            lost: None,
            session_started_ms: self.now.as_ms(),
        });
        out.timer(
            self.config.heartbeat_interval_ms.max(1),
            ConsumerTimer::Heartbeat,
        );
    }

    /// Metadata for subscribe mode: partition counts and leaders of the subscribed topics;
    /// assigned partitions learn their leaders.
    pub(super) fn membership_metadata(&mut self, pm: &PartitionMetadata) -> bool {
        let Some(m) = self.membership.as_mut() else {
            return false;
        };
        let count = m
            .partition_counts
            .entry(pm.tp.topic.to_string())
            .or_insert(0);
        *count = (*count).max(pm.tp.partition + 1);
        let e = m
            .leaders
            .entry(pm.tp.clone())
            .or_insert((None, LeaderEpoch::UNKNOWN));
        if pm.leader_epoch >= e.1 {
            *e = (pm.leader, pm.leader_epoch);
        }
        true
    }

    /// Whether the membership waits for the coordinator to be found.
    pub(super) fn membership_needs_coordinator(&self) -> bool {
        self.membership.as_ref().is_some_and(|m| {
            (m.state == MemberState::Joining && m.join_in_flight.is_none() && !m.join_backoff)
                || m.state == MemberState::Stable
        })
    }

    /// The coordinator is known: a join waiting for it is sent.
    pub(super) fn membership_coordinator_ready(&mut self, out: &mut Effects<ConsumerTimer>) {
        // Kafka's FindCoordinator handler: `heartbeat.resetSessionTimeout()` on discovery.
        let now_ms = self.now.as_ms();
        if let Some(m) = self.membership.as_mut() {
            m.session_started_ms = now_ms;
        }
        let waiting = self.membership.as_ref().is_some_and(|m| {
            m.state == MemberState::Joining && m.join_in_flight.is_none() && !m.join_backoff
        });
        if waiting {
            self.send_join(out);
        }
    }

    /// What a commit carries (generation, member id) and, when the member has no stable
    /// generation, why it is refused without a request.
    pub(super) fn commit_identity(&self) -> (Option<i32>, Option<String>, Option<String>) {
        let Some(m) = &self.membership else {
            return (None, None, None);
        };
        let refusal = match m.state {
            MemberState::Stable | MemberState::Preparing if m.generation >= 0 => None,
            MemberState::Stable | MemberState::Preparing | MemberState::Unjoined | MemberState::Failed => Some(
                "CommitFailedException: Commit cannot be completed since the group has already rebalanced and assigned the partitions to another member.".to_string(),
            ),
            MemberState::Joining | MemberState::Syncing => Some(
                "RebalanceInProgressException: Offset commit cannot be completed since the consumer is undergoing a rebalance for auto partition assignment.".to_string(),
            ),
        };
        (Some(m.generation), Some(m.member_id.clone()), refusal)
    }

    /// The error name a failed commit records; in subscribe mode ILLEGAL_GENERATION and
    /// UNKNOWN_MEMBER_ID reset the generation (the partitions are lost, the member rejoins)
    /// and become Kafka's `CommitFailedException`; REBALANCE_IN_PROGRESS requests a rejoin.
    pub(super) fn membership_commit_error(
        &mut self,
        error: ErrorCode,
        out: &mut Effects<ConsumerTimer>,
    ) -> String {
        if self.membership.is_none() {
            return error.kafka_name().to_string();
        }
        match error {
            ErrorCode::IllegalGeneration | ErrorCode::UnknownMemberId => {
                self.reset_generation(error, out);
                format!("CommitFailedException ({})", error.kafka_name())
            }
            ErrorCode::FencedInstanceId => {
                self.reset_generation(error, out);
                format!("FencedInstanceIdException ({})", error.kafka_name())
            }
            ErrorCode::RebalanceInProgress => {
                self.request_rejoin(out);
                format!("RebalanceInProgressException ({})", error.kafka_name())
            }
            e => e.kafka_name().to_string(),
        }
    }

    /// A commit ended: a revocation waiting for it goes on.
    pub(super) fn on_commit_completed(&mut self, op_id: u64, out: &mut Effects<ConsumerTimer>) {
        let waits = self
            .membership
            .as_ref()
            .and_then(|m| m.revoking.as_ref())
            .is_some_and(|(_, c, _)| *c == Some(op_id));
        if waits {
            self.finish_revoke(out);
        }
        self.resume_poll_after_revoke(out);
    }

    // ---- the join, driven from poll() ----

    /// Kafka's `ensureActiveGroup`, called when the application enters `poll()`: applies a
    /// received assignment, or starts a rebalance that is needed.
    ///
    /// A revocation it starts runs the application's `onPartitionsRevoked` (and its commit)
    /// inside this `poll()`: the poll returns nothing until it is done (see
    /// [`ConsumerClient::revoking`]); a poll that was blocked waits for it instead.
    pub(super) fn ensure_active_group(&mut self, out: &mut Effects<ConsumerTimer>) {
        self.join_if_needed(out);
        if self.revoking() && self.blocked_poll.take().is_some() {
            self.poll_after_revoke = true;
        }
    }

    /// Whether a revocation is under way (its commit on revoke in flight): Kafka runs
    /// `onPartitionsRevoked` synchronously inside `poll()` (`ConsumerCoordinator.onJoinPrepare`
    /// and `onJoinComplete`), so the application's poll returns no record until it returned,
    /// and none of the revoked partitions afterwards.
    pub(super) fn revoking(&self) -> bool {
        self.membership
            .as_ref()
            .is_some_and(|m| m.revoking.is_some())
    }

    /// The application's `poll()` waited for a revocation: once it is over (done, or dropped
    /// by a generation reset), the poll goes on.
    pub(super) fn resume_poll_after_revoke(&mut self, out: &mut Effects<ConsumerTimer>) {
        if !self.revoking() && std::mem::take(&mut self.poll_after_revoke) {
            self.app_poll(out);
        }
    }

    fn join_if_needed(&mut self, out: &mut Effects<ConsumerTimer>) {
        self.apply_partitions_lost(out);
        let Some(m) = self.membership.as_mut() else {
            return;
        };
        m.last_poll_ms = self.now.as_ms();
        if m.pending_assignment.is_some() {
            self.on_join_complete(out);
            return;
        }
        let m = self.membership.as_ref().expect("present");
        if m.revoking.is_some() || !m.rejoin_needed {
            return;
        }
        if !matches!(m.state, MemberState::Unjoined | MemberState::Stable) {
            return;
        }
        self.on_join_prepare(out);
    }

    /// Kafka's `onJoinPrepare`: eager members revoke everything (commit first); members whose
    /// generation was reset already lost theirs. Then JoinGroup.
    fn on_join_prepare(&mut self, out: &mut Effects<ConsumerTimer>) {
        let m = self.membership.as_mut().expect("subscribe mode");
        m.rejoin_needed = false;
        let revoke: Vec<TopicPartition> = if m.cooperative {
            vec![]
        } else {
            m.owned.iter().cloned().collect()
        };
        m.state = MemberState::Preparing;
        self.start_revoke(revoke, AfterRevoke::Join, out);
    }

    /// Revokes `partitions`: commit on revoke if the workload does, then `onPartitionsRevoked`.
    fn start_revoke(
        &mut self,
        partitions: Vec<TopicPartition>,
        then: AfterRevoke,
        out: &mut Effects<ConsumerTimer>,
    ) {
        let m = self.membership.as_mut().expect("subscribe mode");
        m.revoking = Some((partitions.clone(), None, then));
        if partitions.is_empty() {
            self.finish_revoke(out);
            return;
        }
        let kind = match self.workload.commit {
            super::CommitMode::Sync | super::CommitMode::Async => {
                Some(CommitKind::Revoke { auto: false })
            }
            super::CommitMode::Auto if self.config.enable_auto_commit => {
                Some(CommitKind::Revoke { auto: true })
            }
            _ => None,
        };
        let op = kind.and_then(|k| self.start_commit(k, out));
        match op {
            Some(op_id) => {
                let m = self.membership.as_mut().expect("subscribe mode");
                m.revoking.as_mut().expect("set").1 = Some(op_id);
                out.timer(
                    self.config.default_api_timeout_ms,
                    ConsumerTimer::CommitDeadline { op_id },
                );
            }
            None => self.finish_revoke(out),
        }
    }

    /// `onPartitionsRevoked` returns: the partitions leave the consumer.
    fn finish_revoke(&mut self, out: &mut Effects<ConsumerTimer>) {
        let group = self.group_id();
        let m = self.membership.as_mut().expect("subscribe mode");
        let (partitions, _, then) = m.revoking.take().expect("a revocation");
        if !partitions.is_empty() {
            for tp in &partitions {
                m.owned.remove(tp);
            }
            out.event(Event::PartitionsRevoked {
                group,
                member_id: m.member_id.clone(),
                generation: m.generation,
                partitions: partitions.clone(),
            });
            self.drop_partitions(&partitions);
        }
        match then {
            AfterRevoke::Join => {
                let m = self.membership.as_mut().expect("subscribe mode");
                if m.state == MemberState::Preparing {
                    m.state = MemberState::Joining;
                    self.send_join(out);
                }
            }
            AfterRevoke::Rejoin => self.request_rejoin(out),
        }
    }

    /// `onLeavePrepare` when the consumer closes: a member of a stable generation revokes what
    /// it owns (`onPartitionsRevoked`; its commit on close is already done, see `close.rs`);
    /// otherwise its partitions are lost, which the generation reset of
    /// [`ConsumerClient::leave_group`] records.
    pub(super) fn revoke_on_leave(&mut self, out: &mut Effects<ConsumerTimer>) {
        let group = self.group_id();
        let Some(m) = self.membership.as_mut() else {
            return;
        };
        if m.state != MemberState::Stable || m.generation < 0 || m.owned.is_empty() {
            return;
        }
        let partitions: Vec<TopicPartition> = std::mem::take(&mut m.owned).into_iter().collect();
        out.event(Event::PartitionsRevoked {
            group,
            member_id: m.member_id.clone(),
            generation: m.generation,
            partitions: partitions.clone(),
        });
        self.drop_partitions(&partitions);
    }

    /// Removes partitions from the fetch state and drops their buffered records.
    fn drop_partitions(&mut self, partitions: &[TopicPartition]) {
        for tp in partitions {
            self.partitions.remove(tp);
        }
        self.buffer.retain(|r| !partitions.contains(&r.tp));
    }

    /// Kafka's `requestRejoin`: the next `poll()` rejoins (at once if the application is
    /// blocked in one).
    fn request_rejoin(&mut self, out: &mut Effects<ConsumerTimer>) {
        let Some(m) = self.membership.as_mut() else {
            return;
        };
        if m.state == MemberState::Failed {
            return;
        }
        m.rejoin_needed = true;
        if self.blocked_poll.is_some() {
            self.ensure_active_group(out);
        }
    }

    /// The group went on without this member (or fenced it): it rejoins with no generation
    /// (and, unless only the generation was stale, no member id), and its partitions are lost
    /// (`onPartitionsLost`, no commit) in the application's next `poll()` (see
    /// [`GroupMembership::lost`] and [`ConsumerClient::apply_partitions_lost`]); the records
    /// fetched for them meanwhile are dropped then, never returned.
    fn reset_generation(&mut self, error: ErrorCode, out: &mut Effects<ConsumerTimer>) {
        let m = self.membership.as_mut().expect("subscribe mode");
        if m.lost.is_none() && !m.owned.is_empty() {
            m.lost = Some(PendingLoss {
                member_id: m.member_id.clone(),
                generation: m.generation,
                reason: error.kafka_name().to_string(),
            });
        }
        m.generation = -1;
        if error != ErrorCode::IllegalGeneration {
            m.member_id.clear();
        }
        m.pending_assignment = None;
        m.join_in_flight = None;
        m.revoking = None;
        m.state = if error == ErrorCode::FencedInstanceId {
            MemberState::Failed
        } else {
            MemberState::Unjoined
        };
        self.request_rejoin(out);
    }

    /// Kafka's `onJoinPrepare` (or `onLeavePrepare`) after a generation reset, in the
    /// application's thread: `onPartitionsLost` for what the member owned (no commit, a
    /// `partitions-lost` event), and the partitions leave the consumer with the records
    /// buffered for them. Nothing when no loss is pending.
    pub(super) fn apply_partitions_lost(&mut self, out: &mut Effects<ConsumerTimer>) {
        let group = self.group_id();
        let Some(m) = self.membership.as_mut() else {
            return;
        };
        let Some(loss) = m.lost.take() else {
            return;
        };
        let lost: Vec<TopicPartition> = std::mem::take(&mut m.owned).into_iter().collect();
        if lost.is_empty() {
            return;
        }
        out.event(Event::PartitionsLost {
            group,
            member_id: loss.member_id,
            generation: loss.generation,
            partitions: lost.clone(),
            reason: loss.reason,
        });
        self.drop_partitions(&lost);
    }

    fn send_join(&mut self, out: &mut Effects<ConsumerTimer>) {
        let group_id = self.group_id();
        let m = self.membership.as_ref().expect("subscribe mode");
        let Some(b) = self.coordinator.as_ref().and_then(|c| c.coordinator_id()) else {
            self.ensure_coordinator(out);
            return;
        };
        let subscription = GroupSubscription {
            topics: self.topics.clone(),
            owned_partitions: if m.cooperative {
                m.owned.iter().cloned().collect()
            } else {
                vec![]
            },
            generation: m.generation,
        };
        let (member_id, group_instance_id, protocols) = (
            m.member_id.clone(),
            m.instance_id.clone(),
            m.strategies.clone(),
        );
        let (session_timeout_ms, rebalance_timeout_ms) = (
            self.config.session_timeout_ms,
            self.config.max_poll_interval_ms,
        );
        // Kafka's JoinGroup timeout: the rebalance timeout plus 5 s.
        let timeout_ms = self
            .config
            .request_timeout_ms
            .max(rebalance_timeout_ms + 5_000);
        let corr = self.send_with_timeout(
            b,
            |corr| Message::JoinGroup {
                corr,
                group_id,
                member_id,
                group_instance_id,
                session_timeout_ms,
                rebalance_timeout_ms,
                protocols,
                subscription,
            },
            Pending::JoinGroup,
            timeout_ms,
            out,
        );
        let m = self.membership.as_mut().expect("subscribe mode");
        m.join_in_flight = Some(corr);
    }

    /// A join step failed in a way that is retried: after `retry.backoff.ms`, JoinGroup again.
    fn join_backoff(&mut self, out: &mut Effects<ConsumerTimer>) {
        let m = self.membership.as_mut().expect("subscribe mode");
        m.join_in_flight = None;
        m.state = MemberState::Joining;
        m.join_backoff = true;
        out.timer(
            self.config.retry_backoff_ms.max(1),
            ConsumerTimer::JoinRetry,
        );
    }

    pub(super) fn on_join_retry_timeout(&mut self, out: &mut Effects<ConsumerTimer>) {
        let Some(m) = self.membership.as_mut() else {
            return;
        };
        if !m.join_backoff {
            return;
        }
        m.join_backoff = false;
        if m.state == MemberState::Joining && m.join_in_flight.is_none() {
            self.send_join(out);
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn on_join_group_response(
        &mut self,
        corr: CorrelationId,
        from: NodeId,
        error: ErrorCode,
        generation: i32,
        protocol: Option<String>,
        leader: String,
        member_id: String,
        members: Vec<JoinGroupMember>,
        out: &mut Effects<ConsumerTimer>,
    ) {
        let Some(m) = self.membership.as_mut() else {
            return;
        };
        if m.join_in_flight != Some(corr) {
            return;
        }
        m.join_in_flight = None;
        match error {
            ErrorCode::None => {}
            ErrorCode::MemberIdRequired => {
                m.member_id = member_id;
                self.send_join(out);
                return;
            }
            ErrorCode::UnknownMemberId | ErrorCode::IllegalGeneration => {
                // The join runs inside the application's poll() (`joinGroupIfNeeded`): what
                // the member still owned is lost now, before it joins again.
                self.reset_generation(error, out);
                self.apply_partitions_lost(out);
                let m = self.membership.as_mut().expect("subscribe mode");
                m.rejoin_needed = false;
                m.state = MemberState::Joining;
                self.send_join(out);
                return;
            }
            ErrorCode::FencedInstanceId
            | ErrorCode::InvalidSessionTimeout
            | ErrorCode::InconsistentGroupProtocol => {
                self.membership_failed(error, out);
                return;
            }
            ErrorCode::NotCoordinator | ErrorCode::CoordinatorNotAvailable => {
                self.mark_coordinator_unknown(from, error.kafka_name(), out);
                self.join_backoff(out);
                return;
            }
            _ => {
                self.join_backoff(out);
                return;
            }
        }
        m.member_id = member_id.clone();
        m.generation = generation;
        m.state = MemberState::Syncing;
        let assignments = if leader == member_id && !members.is_empty() {
            self.run_assignor(protocol.as_deref(), &members, out)
        } else {
            vec![]
        };
        let group_id = self.group_id();
        let m = self.membership.as_ref().expect("subscribe mode");
        let instance = m.instance_id.clone();
        let NodeId::Broker(b) = from else {
            unreachable!("requests go to brokers")
        };
        let timeout_ms = self.config.request_timeout_ms;
        let corr = self.send_with_timeout(
            b,
            |corr| Message::SyncGroup {
                corr,
                group_id,
                generation_id: generation,
                member_id,
                group_instance_id: instance,
                assignments,
            },
            Pending::SyncGroup,
            timeout_ms,
            out,
        );
        self.membership
            .as_mut()
            .expect("subscribe mode")
            .join_in_flight = Some(corr);
    }

    /// The leader runs the group's assignor over every member's subscription.
    fn run_assignor(
        &mut self,
        protocol: Option<&str>,
        members: &[JoinGroupMember],
        out: &mut Effects<ConsumerTimer>,
    ) -> Vec<SyncGroupAssignment> {
        let _ = out;
        let m = self.membership.as_ref().expect("subscribe mode");
        let Some(assignor) = protocol.and_then(assignor_by_name) else {
            return vec![];
        };
        let subscriptions: Vec<Subscription> = members
            .iter()
            .map(|j| Subscription {
                member_id: j.member_id.clone(),
                group_instance_id: j.group_instance_id.clone(),
                topics: j.subscription.topics.clone(),
                owned_partitions: j.subscription.owned_partitions.clone(),
                generation: j.subscription.generation,
            })
            .collect();
        assignor
            .assign(&m.partition_counts, &subscriptions)
            .into_iter()
            .map(|(member_id, partitions)| SyncGroupAssignment {
                member_id,
                partitions,
            })
            .collect()
    }

    pub(super) fn on_sync_group_response(
        &mut self,
        corr: CorrelationId,
        from: NodeId,
        error: ErrorCode,
        partitions: Vec<TopicPartition>,
        out: &mut Effects<ConsumerTimer>,
    ) {
        let Some(m) = self.membership.as_mut() else {
            return;
        };
        if m.join_in_flight != Some(corr) {
            return;
        }
        m.join_in_flight = None;
        match error {
            ErrorCode::None => {
                m.state = MemberState::Stable;
                // The heartbeat thread is enabled (`HeartbeatThread.enable`: `resetTimeouts`).
                m.session_started_ms = self.now.as_ms();
                m.pending_assignment = Some((m.generation, partitions));
                if self.blocked_poll.is_some() {
                    self.on_join_complete(out);
                }
            }
            ErrorCode::RebalanceInProgress => {
                m.state = MemberState::Joining;
                self.send_join(out);
            }
            ErrorCode::UnknownMemberId | ErrorCode::IllegalGeneration => {
                // The join runs inside the application's poll() (`joinGroupIfNeeded`): what
                // the member still owned is lost now, before it joins again.
                self.reset_generation(error, out);
                self.apply_partitions_lost(out);
                let m = self.membership.as_mut().expect("subscribe mode");
                m.rejoin_needed = false;
                m.state = MemberState::Joining;
                self.send_join(out);
            }
            ErrorCode::FencedInstanceId => self.membership_failed(error, out),
            ErrorCode::NotCoordinator | ErrorCode::CoordinatorNotAvailable => {
                self.mark_coordinator_unknown(from, error.kafka_name(), out);
                self.join_backoff(out);
            }
            _ => self.join_backoff(out),
        }
    }

    /// Kafka's `onJoinComplete`, inside `poll()`: cooperative members revoke what they lost
    /// (then rejoin); newly assigned partitions are added and start from committed offsets.
    fn on_join_complete(&mut self, out: &mut Effects<ConsumerTimer>) {
        let group = self.group_id();
        let m = self.membership.as_mut().expect("subscribe mode");
        let (generation, assigned) = m.pending_assignment.take().expect("an assignment");
        if generation != m.generation || m.state != MemberState::Stable {
            return; // superseded
        }
        let assigned: BTreeSet<TopicPartition> = assigned.into_iter().collect();
        let added: Vec<TopicPartition> = assigned.difference(&m.owned).cloned().collect();
        let revoked: Vec<TopicPartition> = m.owned.difference(&assigned).cloned().collect();
        let member_id = m.member_id.clone();
        for tp in &added {
            m.owned.insert(tp.clone());
        }
        let leaders: Vec<(TopicPartition, (Option<BrokerId>, LeaderEpoch))> = added
            .iter()
            .map(|tp| {
                (
                    tp.clone(),
                    m.leaders
                        .get(tp)
                        .copied()
                        .unwrap_or((None, LeaderEpoch::UNKNOWN)),
                )
            })
            .collect();
        for (tp, (leader, epoch)) in leaders {
            let mut s = PartitionFetchState::new(true);
            s.leader = leader;
            s.leader_epoch = epoch;
            self.partitions.insert(tp, s);
        }
        out.event(Event::PartitionsAssigned {
            group,
            member_id,
            generation,
            partitions: added,
        });
        self.refresh_committed_offsets(out);
        self.fetch_all(out);
        if !revoked.is_empty() {
            self.start_revoke(revoked, AfterRevoke::Rejoin, out);
        }
    }

    /// The member gives up for good (FENCED_INSTANCE_ID, INVALID_SESSION_TIMEOUT,
    /// INCONSISTENT_GROUP_PROTOCOL are fatal in Kafka's consumer).
    fn membership_failed(&mut self, error: ErrorCode, out: &mut Effects<ConsumerTimer>) {
        let tp = TopicPartition::new(self.topics.first().cloned().unwrap_or_default(), -1);
        self.reset_generation(ErrorCode::FencedInstanceId, out);
        let group = self.group_id();
        out.event(Event::ConsumerError {
            tp,
            exception: match error {
                ErrorCode::FencedInstanceId => "FencedInstanceIdException",
                ErrorCode::InvalidSessionTimeout => "InvalidSessionTimeoutException",
                _ => "InconsistentGroupProtocolException",
            }
            .into(),
            message: match error {
                // Kafka's text for the error code (`Errors.INVALID_SESSION_TIMEOUT`), then
                // the value the coordinator refused.
                ErrorCode::InvalidSessionTimeout => format!(
                    "JoinGroup of group {group} failed with INVALID_SESSION_TIMEOUT: The session \
                     timeout is not within the range allowed by the broker (as configured by \
                     group.min.session.timeout.ms and group.max.session.timeout.ms). This \
                     consumer's session.timeout.ms is {} ms; it stops taking part in the group",
                    self.config.session_timeout_ms
                ),
                _ => format!(
                    "JoinGroup of group {group} failed with {}: the consumer stops taking part in the group",
                    error.kafka_name()
                ),
            },
        });
    }

    // ---- heartbeats ----

    /// The heartbeat thread's tick: leave the group when the application has not polled for
    /// `max.poll.interval.ms`; heartbeat when stable.
    pub(super) fn on_heartbeat_timer(&mut self, out: &mut Effects<ConsumerTimer>) {
        let now_ms = self.now.as_ms();
        out.timer(
            self.config.heartbeat_interval_ms.max(1),
            ConsumerTimer::Heartbeat,
        );
        let Some(m) = self.membership.as_ref() else {
            return;
        };
        // `HeartbeatThread.run`: no heartbeat answered for `session.timeout.ms` (the
        // coordinator may be gone, or the link to it cut): the coordinator is marked unknown
        // (its heartbeat in flight abandoned) and looked up again, before the poll timeout is
        // looked at (Kafka's order).
        if m.state == MemberState::Stable
            && now_ms.saturating_sub(m.session_started_ms) > self.config.session_timeout_ms
        {
            if let Some(b) = self.coordinator.as_ref().and_then(|c| c.coordinator_id()) {
                self.membership
                    .as_mut()
                    .expect("present")
                    .heartbeat_in_flight = None;
                self.mark_coordinator_unknown(
                    NodeId::Broker(b),
                    "session timed out without receiving a heartbeat response",
                    out,
                );
                self.ensure_coordinator(out);
                return;
            }
        }
        let m = self.membership.as_ref().expect("present");
        if m.generation >= 0
            && now_ms.saturating_sub(m.last_poll_ms) > self.config.max_poll_interval_ms
            && self.blocked_poll.is_none()
        {
            self.leave_group("consumer poll timeout has expired", out);
            return;
        }
        if m.state != MemberState::Stable || m.heartbeat_in_flight.is_some() {
            return;
        }
        let Some(b) = self.coordinator.as_ref().and_then(|c| c.coordinator_id()) else {
            self.ensure_coordinator(out);
            return;
        };
        let group_id = self.group_id();
        let (generation_id, member_id, group_instance_id) =
            (m.generation, m.member_id.clone(), m.instance_id.clone());
        let timeout_ms = self.config.request_timeout_ms;
        let corr = self.send_with_timeout(
            b,
            |corr| Message::Heartbeat {
                corr,
                group_id,
                generation_id,
                member_id,
                group_instance_id,
            },
            Pending::Heartbeat,
            timeout_ms,
            out,
        );
        self.membership
            .as_mut()
            .expect("present")
            .heartbeat_in_flight = Some(corr);
    }

    /// Kafka's `maybeLeaveGroup`: LeaveGroup (dynamic members only), the generation reset,
    /// the partitions lost.
    pub(super) fn leave_group(&mut self, reason: &str, out: &mut Effects<ConsumerTimer>) {
        let group_id = self.group_id();
        let m = self.membership.as_ref().expect("subscribe mode");
        if m.instance_id.is_none() && !m.member_id.is_empty() {
            if let Some(b) = self.coordinator.as_ref().and_then(|c| c.coordinator_id()) {
                let member_id = m.member_id.clone();
                let timeout_ms = self.config.request_timeout_ms;
                self.send_with_timeout(
                    b,
                    |corr| Message::LeaveGroup {
                        corr,
                        group_id: group_id.clone(),
                        member_id,
                        group_instance_id: None,
                    },
                    Pending::LeaveGroup,
                    timeout_ms,
                    out,
                );
            }
        }
        let tp = TopicPartition::new(self.topics.first().cloned().unwrap_or_default(), -1);
        out.event(Event::ConsumerError {
            tp,
            exception: "LeaveGroup".into(),
            message: format!("Member sending LeaveGroup request to coordinator due to {reason}"),
        });
        self.reset_generation(ErrorCode::UnknownMemberId, out);
    }

    pub(super) fn on_heartbeat_response(
        &mut self,
        corr: CorrelationId,
        from: NodeId,
        error: ErrorCode,
        out: &mut Effects<ConsumerTimer>,
    ) {
        let Some(m) = self.membership.as_mut() else {
            return;
        };
        if m.heartbeat_in_flight != Some(corr) {
            return;
        }
        m.heartbeat_in_flight = None;
        if matches!(error, ErrorCode::None | ErrorCode::RebalanceInProgress) {
            // Kafka's `Heartbeat.receiveHeartbeat`: the session timer starts again.
            m.session_started_ms = self.now.as_ms();
        }
        match error {
            ErrorCode::None => {}
            ErrorCode::RebalanceInProgress => self.request_rejoin(out),
            ErrorCode::IllegalGeneration | ErrorCode::UnknownMemberId => {
                self.reset_generation(error, out)
            }
            ErrorCode::FencedInstanceId => self.membership_failed(error, out),
            ErrorCode::NotCoordinator | ErrorCode::CoordinatorNotAvailable => {
                self.mark_coordinator_unknown(from, error.kafka_name(), out);
            }
            _ => {}
        }
    }

    /// A group request got no answer.
    pub(super) fn on_group_request_lost(
        &mut self,
        pending: Pending,
        corr: CorrelationId,
        to: NodeId,
        how: RequestLost,
        out: &mut Effects<ConsumerTimer>,
    ) {
        let Some(m) = self.membership.as_mut() else {
            return;
        };
        match pending {
            Pending::JoinGroup | Pending::SyncGroup if m.join_in_flight == Some(corr) => {
                m.join_in_flight = None;
                self.mark_coordinator_unknown(to, how.name(), out);
                self.join_backoff(out);
            }
            Pending::Heartbeat if m.heartbeat_in_flight == Some(corr) => {
                m.heartbeat_in_flight = None;
                self.mark_coordinator_unknown(to, how.name(), out);
            }
            _ => {}
        }
    }

    /// What must hold of the membership between handlers.
    pub(super) fn membership_invariants(&self) {
        let Some(m) = &self.membership else {
            return;
        };
        let i = self.index;
        for tp in self.partitions.keys() {
            assert!(
                m.owned.contains(tp),
                "consumer-{i}: fetch state for {tp}, which it does not own"
            );
        }
        if m.state == MemberState::Joining || m.state == MemberState::Syncing {
            if let Some(corr) = m.join_in_flight {
                assert!(
                    self.pending.contains_key(&corr),
                    "consumer-{i}: join request {corr:?} in flight but not pending"
                );
            }
        }
    }
}
