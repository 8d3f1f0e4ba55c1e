//! The classic group protocol on the coordinator side (Kafka's `GroupMetadataManager.java`,
//! classic-group half): JoinGroup, SyncGroup, Heartbeat, LeaveGroup, the join-phase, sync-phase
//! and session timers, static membership (KIP-345) and the generation check of OffsetCommit.
//!
//! The manager is a plain state machine like the rest of the model: the broker passes it each
//! request with the time and carries out what it returns in a [`GroupOut`] (answers, events,
//! timers to arm, group metadata records to append to `__consumer_offsets`). It never reads a
//! log; the broker hands it the groups a newly led `__consumer_offsets` partition stored
//! ([`GroupManager::load`]) and tells it when the partition is lost ([`GroupManager::unload`]).
//!
//! # Timers
//! Every timer carries what makes it stale: a join-phase timer its group's `join_epoch`, a
//! session timer the member's deadline, a sync-phase timer the generation. A timer whose mark
//! no longer matches is ignored, so no timer is ever cancelled.
//!
//! # Where this differs from Kafka
//! * The leader's assignment is appended as a group metadata record and the members are
//!   answered at once, without waiting for the record to commit (Kafka answers SyncGroup once
//!   the append completes). A coordinator that fails before the record commits leaves its
//!   successor with the previous generation; the members' heartbeats then get
//!   ILLEGAL_GENERATION and they rejoin.
//! * LeaveGroup carries one member (v0-v2 style); static members do not send it.

use super::classic_group::{ClassicGroup, GroupMetadataRecord, GroupState, InitialDelay, Member};
use crate::event::{Event, MemberAssignment};
use crate::protocol::*;
use crate::types::*;
use std::collections::BTreeMap;

/// The broker settings of the group coordinator (Kafka's `GroupCoordinatorConfig`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupConfig {
    /// `group.initial.rebalance.delay.ms` (3000).
    pub initial_rebalance_delay_ms: u64,
    /// `group.min.session.timeout.ms` (6000).
    pub min_session_timeout_ms: u64,
    /// `group.max.session.timeout.ms` (1800000).
    pub max_session_timeout_ms: u64,
    /// `sim.group.offset-commit-fencing` (true): OffsetCommit is checked against the member
    /// and generation; false accepts any commit (the zombie-commit legacy switch).
    pub offset_commit_fencing: bool,
    /// `sim.txn.offset-commit-fencing` (true): TxnOffsetCommit is checked against the member
    /// and generation (KIP-447); false accepts any transactional commit.
    pub txn_offset_commit_fencing: bool,
}

impl Default for GroupConfig {
    fn default() -> Self {
        GroupConfig {
            initial_rebalance_delay_ms: 3_000,
            min_session_timeout_ms: 6_000,
            max_session_timeout_ms: 1_800_000,
            offset_commit_fencing: true,
            txn_offset_commit_fencing: true,
        }
    }
}

/// A timer of the group coordinator (see the module documentation on staleness).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupTimer {
    /// The join phase (or the initial delay) of `group` ends, if its `join_epoch` is `epoch`.
    JoinPhase { group: String, epoch: u64 },
    /// `member_id` expires unless it heartbeat since (its deadline moved).
    MemberExpiry {
        group: String,
        member_id: String,
        deadline_ms: u64,
    },
    /// A member id given with MEMBER_ID_REQUIRED expires unless its owner joined (KIP-394).
    PendingMemberExpiry { group: String, member_id: String },
    /// Members of `generation` that did not send SyncGroup within the rebalance timeout are
    /// removed.
    SyncPhase { group: String, generation: i32 },
}

/// What a call asks the broker to do.
#[derive(Debug, Default)]
pub struct GroupOut {
    pub sends: Vec<(NodeId, Message)>,
    pub events: Vec<Event>,
    /// (after ms, timer)
    pub timers: Vec<(u64, GroupTimer)>,
    /// Group metadata to append to each group's `__consumer_offsets` partition.
    pub store: Vec<GroupMetadataRecord>,
    /// The leader's assignment of a generation, to append likewise; the host reports the
    /// write's outcome back through [`GroupManager::on_assignment_stored`], and only then are
    /// the members' SyncGroup requests answered.
    pub store_assignment: Vec<GroupMetadataRecord>,
}

/// One JoinGroup request.
#[derive(Debug, Clone)]
pub struct JoinRequest {
    pub from: NodeId,
    pub corr: CorrelationId,
    pub group_id: String,
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub session_timeout_ms: u64,
    pub rebalance_timeout_ms: u64,
    pub protocols: Vec<String>,
    pub subscription: GroupSubscription,
}

/// The classic groups one broker coordinates, with the `__consumer_offsets` partition of each.
#[derive(Debug, Default)]
pub struct GroupManager {
    broker: BrokerId,
    config: GroupConfig,
    groups: BTreeMap<String, (TopicPartition, ClassicGroup)>,
    next_member_seq: u64,
}

fn join_error(corr: CorrelationId, member_id: String, error: ErrorCode) -> Message {
    Message::JoinGroupResponse {
        corr,
        error,
        generation_id: -1,
        protocol_name: None,
        leader: String::new(),
        member_id,
        members: vec![],
    }
}

fn sync_error(corr: CorrelationId, error: ErrorCode) -> Message {
    Message::SyncGroupResponse {
        corr,
        error,
        protocol_name: None,
        partitions: vec![],
    }
}

impl GroupManager {
    /// A manager for `broker` with `config`, holding no group.
    pub fn new(broker: BrokerId, config: GroupConfig) -> Self {
        GroupManager {
            broker,
            config,
            groups: BTreeMap::new(),
            next_member_seq: 0,
        }
    }

    /// The group `group_id`, if this broker holds it.
    pub fn group(&self, group_id: &str) -> Option<&ClassicGroup> {
        self.groups.get(group_id).map(|(_, g)| g)
    }

    /// Whether the legacy switch turned commit fencing off.
    pub fn offset_commit_fencing(&self) -> bool {
        self.config.offset_commit_fencing
    }

    /// Takes the groups a newly loaded `__consumer_offsets` partition `tp` stored: each starts
    /// `Stable` (or `Empty`) with its generation, members and assignment, every member's
    /// session timer started afresh (Kafka reschedules every member's heartbeat on load).
    pub fn load(
        &mut self,
        tp: &TopicPartition,
        stored: &BTreeMap<String, GroupMetadataRecord>,
        now: Instant,
        out: &mut GroupOut,
    ) {
        for (group_id, r) in stored {
            let g = ClassicGroup::from_record(r, now.0);
            for m in g.members.values() {
                out.timers.push((
                    m.session_timeout_ms,
                    GroupTimer::MemberExpiry {
                        group: group_id.clone(),
                        member_id: m.member_id.clone(),
                        deadline_ms: m.heartbeat_deadline_ms,
                    },
                ));
            }
            out.events.push(Event::GroupStateChanged {
                group: group_id.clone(),
                broker: self.broker,
                from: GroupState::Dead.name().into(),
                to: g.state.name().into(),
                generation: g.generation,
                reason: format!("Loaded group metadata from {tp}"),
            });
            self.groups.insert(group_id.clone(), (tp.clone(), g));
        }
    }

    /// The broker lost `tp`: its groups become `Dead`; requests waiting in them are answered
    /// NOT_COORDINATOR (the members find the new coordinator and rejoin there).
    pub fn unload(&mut self, tp: &TopicPartition, out: &mut GroupOut) {
        let ids: Vec<String> = self
            .groups
            .iter()
            .filter(|(_, (t, _))| t == tp)
            .map(|(id, _)| id.clone())
            .collect();
        for id in ids {
            let (_, g) = self.groups.remove(&id).expect("listed");
            for m in g.members.values() {
                if let Some(corr) = m.awaiting_join {
                    out.sends.push((
                        m.client,
                        join_error(corr, m.member_id.clone(), ErrorCode::NotCoordinator),
                    ));
                }
                if let Some(corr) = m.awaiting_sync {
                    out.sends
                        .push((m.client, sync_error(corr, ErrorCode::NotCoordinator)));
                }
            }
            out.events.push(Event::GroupStateChanged {
                group: id,
                broker: self.broker,
                from: g.state.name().into(),
                to: GroupState::Dead.name().into(),
                generation: g.generation,
                reason: format!("Unloading group metadata: no longer the leader of {tp}"),
            });
        }
    }

    fn transition(&self, g: &mut ClassicGroup, to: GroupState, reason: String, out: &mut GroupOut) {
        let from = g.state;
        g.state = to;
        out.events.push(Event::GroupStateChanged {
            group: g.group_id.clone(),
            broker: self.broker,
            from: from.name().into(),
            to: to.name().into(),
            generation: g.generation,
            reason,
        });
    }

    fn new_member_id(&mut self, client: NodeId, now: Instant) -> String {
        self.next_member_seq += 1;
        // Kafka: `clientId + "-" + Uuid.randomUuid()`; here unique and deterministic.
        format!(
            "{client}-b{}-{}-{}",
            self.broker.0, now.0, self.next_member_seq
        )
    }

    // ---- JoinGroup ----

    /// JoinGroup (Kafka's `classicGroupJoin`), for a group whose partition `tp` this broker
    /// leads.
    pub fn join(
        &mut self,
        now: Instant,
        tp: &TopicPartition,
        req: JoinRequest,
        out: &mut GroupOut,
    ) {
        let JoinRequest {
            from,
            corr,
            ref group_id,
            ..
        } = req;
        if req.session_timeout_ms < self.config.min_session_timeout_ms
            || req.session_timeout_ms > self.config.max_session_timeout_ms
        {
            out.sends.push((
                from,
                join_error(
                    corr,
                    req.member_id.clone(),
                    ErrorCode::InvalidSessionTimeout,
                ),
            ));
            return;
        }
        if !self.groups.contains_key(group_id) {
            if !req.member_id.is_empty() {
                out.sends.push((
                    from,
                    join_error(corr, req.member_id.clone(), ErrorCode::UnknownMemberId),
                ));
                return;
            }
            self.groups.insert(
                group_id.clone(),
                (tp.clone(), ClassicGroup::new(group_id.clone())),
            );
        }
        let (gtp, mut g) = self.groups.remove(group_id).expect("present");
        self.join_group(now, &mut g, req, out);
        self.groups.insert(g.group_id.clone(), (gtp, g));
    }

    fn join_group(
        &mut self,
        now: Instant,
        g: &mut ClassicGroup,
        req: JoinRequest,
        out: &mut GroupOut,
    ) {
        let (from, corr) = (req.from, req.corr);
        if g.state == GroupState::Dead {
            out.sends.push((
                from,
                join_error(
                    corr,
                    req.member_id.clone(),
                    ErrorCode::CoordinatorNotAvailable,
                ),
            ));
            return;
        }
        let known = g.members.contains_key(&req.member_id);
        if !known && !g.supports_protocols(&req.protocols) {
            out.sends.push((
                from,
                join_error(
                    corr,
                    req.member_id.clone(),
                    ErrorCode::InconsistentGroupProtocol,
                ),
            ));
            return;
        }
        if req.member_id.is_empty() {
            if let Some(instance) = req.group_instance_id.clone() {
                if let Some(old) = g.static_members.get(&instance).cloned() {
                    self.static_rejoin(now, g, old, req, out);
                } else {
                    let id = self.new_member_id(from, now);
                    self.add_member_and_rebalance(now, g, id, req, out);
                }
                return;
            }
            // KIP-394: hand out an id; the member joins again with it.
            let id = self.new_member_id(from, now);
            g.pending_members
                .insert(id.clone(), now.0 + req.session_timeout_ms);
            out.timers.push((
                req.session_timeout_ms,
                GroupTimer::PendingMemberExpiry {
                    group: g.group_id.clone(),
                    member_id: id.clone(),
                },
            ));
            out.sends
                .push((from, join_error(corr, id, ErrorCode::MemberIdRequired)));
            return;
        }
        if g.pending_members.remove(&req.member_id).is_some() {
            let id = req.member_id.clone();
            self.add_member_and_rebalance(now, g, id, req, out);
            return;
        }
        if let Some(instance) = &req.group_instance_id {
            if g.static_members
                .get(instance)
                .is_some_and(|m| *m != req.member_id)
            {
                out.sends.push((
                    from,
                    join_error(corr, req.member_id.clone(), ErrorCode::FencedInstanceId),
                ));
                return;
            }
        }
        if !known || g.state == GroupState::Empty {
            out.sends.push((
                from,
                join_error(corr, req.member_id.clone(), ErrorCode::UnknownMemberId),
            ));
            return;
        }
        // A known member rejoins.
        let m = g.members.get_mut(&req.member_id).expect("known");
        let unchanged = m.protocols == req.protocols && m.subscription == req.subscription;
        m.client = from;
        m.protocols = req.protocols.clone();
        m.subscription = req.subscription.clone();
        m.session_timeout_ms = req.session_timeout_ms;
        m.rebalance_timeout_ms = req.rebalance_timeout_ms;
        let is_leader = g.leader.as_deref() == Some(req.member_id.as_str());
        match g.state {
            GroupState::PreparingRebalance => {
                self.await_join(now, g, &req.member_id, corr, out);
                self.maybe_complete_join(now, g, out);
            }
            GroupState::CompletingRebalance | GroupState::Stable
                if unchanged && !(g.state == GroupState::Stable && is_leader) =>
            {
                // The member missed the answer: send the current generation again.
                let msg = self.join_response(g, &req.member_id, corr);
                out.sends.push((from, msg));
            }
            GroupState::CompletingRebalance | GroupState::Stable => {
                let reason = if is_leader {
                    format!(
                        "Leader {} re-joining group during {}",
                        req.member_id,
                        g.state.name()
                    )
                } else {
                    format!(
                        "Updating metadata for member {} during {}",
                        req.member_id,
                        g.state.name()
                    )
                };
                self.await_join(now, g, &req.member_id, corr, out);
                self.prepare_rebalance(now, g, reason, out);
            }
            GroupState::Empty | GroupState::Dead => unreachable!("answered above"),
        }
    }

    /// The member now waits in JoinGroup: its session deadline becomes the rebalance timeout.
    fn await_join(
        &self,
        now: Instant,
        g: &mut ClassicGroup,
        member_id: &str,
        corr: CorrelationId,
        out: &mut GroupOut,
    ) {
        let m = g.members.get_mut(member_id).expect("member");
        if let Some(old) = m.awaiting_join.replace(corr) {
            // A newer join replaces one still waiting (Kafka answers the old one
            // UNKNOWN_MEMBER_ID... here the client only waits for the newest).
            let _ = old;
        }
        m.heartbeat_deadline_ms = now.0 + m.rebalance_timeout_ms.max(m.session_timeout_ms);
        out.timers.push((
            m.heartbeat_deadline_ms - now.0,
            GroupTimer::MemberExpiry {
                group: g.group_id.clone(),
                member_id: member_id.to_string(),
                deadline_ms: m.heartbeat_deadline_ms,
            },
        ));
    }

    fn add_member_and_rebalance(
        &mut self,
        now: Instant,
        g: &mut ClassicGroup,
        member_id: String,
        req: JoinRequest,
        out: &mut GroupOut,
    ) {
        if let Some(i) = &req.group_instance_id {
            g.static_members.insert(i.clone(), member_id.clone());
        }
        g.members.insert(
            member_id.clone(),
            Member {
                member_id: member_id.clone(),
                group_instance_id: req.group_instance_id.clone(),
                client: req.from,
                session_timeout_ms: req.session_timeout_ms,
                rebalance_timeout_ms: req.rebalance_timeout_ms,
                protocols: req.protocols.clone(),
                subscription: req.subscription.clone(),
                assignment: vec![],
                awaiting_join: None,
                awaiting_sync: None,
                heartbeat_deadline_ms: 0,
            },
        );
        if g.leader.is_none() {
            g.leader = Some(member_id.clone());
        }
        self.await_join(now, g, &member_id, req.corr, out);
        let reason = format!(
            "Adding new member {member_id} with group instance id {}",
            req.group_instance_id.as_deref().unwrap_or("None")
        );
        match g.state {
            GroupState::PreparingRebalance => {
                if let Some(d) = g.initial_delay.as_mut() {
                    d.new_member_joined = true;
                }
                self.maybe_complete_join(now, g, out);
            }
            _ => self.prepare_rebalance(now, g, reason, out),
        }
    }

    /// KIP-345: a static member restarted (JoinGroup with its instance id and no member id).
    /// It gets a new member id; the old one is fenced. A `Stable` group hands it its previous
    /// assignment without a rebalance; otherwise it joins the rebalance under way.
    fn static_rejoin(
        &mut self,
        now: Instant,
        g: &mut ClassicGroup,
        old_id: String,
        req: JoinRequest,
        out: &mut GroupOut,
    ) {
        let new_id = self.new_member_id(req.from, now);
        let mut m = g
            .members
            .remove(&old_id)
            .expect("static members are members");
        if let Some(corr) = m.awaiting_join.take() {
            out.sends.push((
                m.client,
                join_error(corr, old_id.clone(), ErrorCode::FencedInstanceId),
            ));
        }
        if let Some(corr) = m.awaiting_sync.take() {
            out.sends
                .push((m.client, sync_error(corr, ErrorCode::FencedInstanceId)));
        }
        out.events.push(Event::GroupMemberRemoved {
            group: g.group_id.clone(),
            broker: self.broker,
            member_id: old_id.clone(),
            reason: "fenced".into(),
            generation: g.generation,
        });
        let protocols_unchanged = m.protocols == req.protocols;
        m.member_id = new_id.clone();
        m.client = req.from;
        m.protocols = req.protocols.clone();
        m.subscription = req.subscription.clone();
        m.session_timeout_ms = req.session_timeout_ms;
        m.rebalance_timeout_ms = req.rebalance_timeout_ms;
        g.members.insert(new_id.clone(), m);
        let instance = req.group_instance_id.clone().expect("static");
        g.static_members.insert(instance, new_id.clone());
        if g.leader.as_deref() == Some(old_id.as_str()) {
            g.leader = Some(new_id.clone());
        }
        if g.pending_sync.remove(&old_id) {
            g.pending_sync.insert(new_id.clone());
        }
        match g.state {
            GroupState::Stable if protocols_unchanged => {
                // No rebalance: the current generation, with no member list (KIP-814's
                // skipAssignment: the member's assignment is already stored).
                let mm = g.members.get_mut(&new_id).expect("inserted");
                mm.heartbeat_deadline_ms = now.0 + mm.session_timeout_ms;
                out.timers.push((
                    mm.session_timeout_ms,
                    GroupTimer::MemberExpiry {
                        group: g.group_id.clone(),
                        member_id: new_id.clone(),
                        deadline_ms: mm.heartbeat_deadline_ms,
                    },
                ));
                out.sends.push((
                    req.from,
                    Message::JoinGroupResponse {
                        corr: req.corr,
                        error: ErrorCode::None,
                        generation_id: g.generation,
                        protocol_name: g.protocol.clone(),
                        leader: g.leader.clone().unwrap_or_default(),
                        member_id: new_id,
                        members: vec![],
                    },
                ));
                out.store.push(g.to_record(now.0));
            }
            GroupState::PreparingRebalance => {
                self.await_join(now, g, &new_id, req.corr, out);
                self.maybe_complete_join(now, g, out);
            }
            _ => {
                self.await_join(now, g, &new_id, req.corr, out);
                let reason = format!(
                    "Static member {new_id} with instance id {} re-joining during {}",
                    req.group_instance_id.as_deref().unwrap_or(""),
                    g.state.name()
                );
                self.prepare_rebalance(now, g, reason, out);
            }
        }
    }

    /// Kafka's `prepareRebalance`: pending syncs are answered REBALANCE_IN_PROGRESS, the join
    /// phase starts (after `group.initial.rebalance.delay.ms` for an `Empty` group).
    fn prepare_rebalance(
        &self,
        now: Instant,
        g: &mut ClassicGroup,
        reason: String,
        out: &mut GroupOut,
    ) {
        if g.state == GroupState::CompletingRebalance {
            for m in g.members.values_mut() {
                m.assignment.clear();
                if let Some(corr) = m.awaiting_sync.take() {
                    out.sends
                        .push((m.client, sync_error(corr, ErrorCode::RebalanceInProgress)));
                }
            }
        }
        g.pending_sync.clear();
        g.assignment_store_in_flight = false;
        let rebalance_timeout = g.rebalance_timeout_ms();
        let delay = if g.state == GroupState::Empty {
            let initial = self
                .config
                .initial_rebalance_delay_ms
                .min(rebalance_timeout);
            g.initial_delay = Some(InitialDelay {
                remaining_ms: rebalance_timeout.saturating_sub(initial),
                new_member_joined: false,
            });
            initial
        } else {
            g.initial_delay = None;
            rebalance_timeout
        };
        g.join_epoch += 1;
        out.timers.push((
            delay,
            GroupTimer::JoinPhase {
                group: g.group_id.clone(),
                epoch: g.join_epoch,
            },
        ));
        self.transition(g, GroupState::PreparingRebalance, reason, out);
        self.maybe_complete_join(now, g, out);
    }

    fn maybe_complete_join(&self, now: Instant, g: &mut ClassicGroup, out: &mut GroupOut) {
        if g.state == GroupState::PreparingRebalance
            && g.initial_delay.is_none()
            && g.all_members_joined()
        {
            self.complete_join(now, g, out);
        }
    }

    /// The join response of `member_id` in the current generation (the leader gets every
    /// member's subscription).
    fn join_response(&self, g: &ClassicGroup, member_id: &str, corr: CorrelationId) -> Message {
        let is_leader = g.leader.as_deref() == Some(member_id);
        Message::JoinGroupResponse {
            corr,
            error: ErrorCode::None,
            generation_id: g.generation,
            protocol_name: g.protocol.clone(),
            leader: g.leader.clone().unwrap_or_default(),
            member_id: member_id.to_string(),
            members: if is_leader {
                g.members
                    .values()
                    .map(|m| JoinGroupMember {
                        member_id: m.member_id.clone(),
                        group_instance_id: m.group_instance_id.clone(),
                        subscription: m.subscription.clone(),
                    })
                    .collect()
            } else {
                vec![]
            },
        }
    }

    /// Kafka's `completeClassicGroupJoin`: dynamic members that did not rejoin are removed;
    /// the next generation starts (`initNextGeneration`) and every waiting JoinGroup is
    /// answered.
    fn complete_join(&self, now: Instant, g: &mut ClassicGroup, out: &mut GroupOut) {
        let gone: Vec<String> = g
            .members
            .values()
            .filter(|m| m.awaiting_join.is_none() && m.group_instance_id.is_none())
            .map(|m| m.member_id.clone())
            .collect();
        for id in gone {
            self.remove_member(g, &id, "rebalance-timeout", out);
        }
        g.generation += 1;
        g.initial_delay = None;
        if g.members.is_empty() {
            g.protocol = None;
            g.leader = None;
            self.transition(
                g,
                GroupState::Empty,
                "no members left after the join phase".into(),
                out,
            );
            out.store.push(g.to_record(now.0));
            return;
        }
        if !g
            .leader
            .as_ref()
            .is_some_and(|l| g.members.get(l).is_some_and(|m| m.awaiting_join.is_some()))
        {
            g.leader = g
                .members
                .values()
                .find(|m| m.awaiting_join.is_some())
                .map(|m| m.member_id.clone());
        }
        g.protocol = g.select_protocol();
        g.pending_sync = g.members.keys().cloned().collect();
        self.transition(
            g,
            GroupState::CompletingRebalance,
            format!("Join phase completed with {} members", g.members.len()),
            out,
        );
        let waiting: Vec<(String, CorrelationId, NodeId)> = g
            .members
            .values()
            .filter_map(|m| m.awaiting_join.map(|c| (m.member_id.clone(), c, m.client)))
            .collect();
        for (id, corr, client) in waiting {
            let msg = self.join_response(g, &id, corr);
            out.sends.push((client, msg));
            let m = g.members.get_mut(&id).expect("member");
            m.awaiting_join = None;
            m.heartbeat_deadline_ms = now.0 + m.session_timeout_ms;
            out.timers.push((
                m.session_timeout_ms,
                GroupTimer::MemberExpiry {
                    group: g.group_id.clone(),
                    member_id: id,
                    deadline_ms: m.heartbeat_deadline_ms,
                },
            ));
        }
        out.timers.push((
            g.rebalance_timeout_ms(),
            GroupTimer::SyncPhase {
                group: g.group_id.clone(),
                generation: g.generation,
            },
        ));
    }

    /// Removes a member (its waiting JoinGroup is answered UNKNOWN_MEMBER_ID), electing a new
    /// leader if it led.
    fn remove_member(
        &self,
        g: &mut ClassicGroup,
        member_id: &str,
        reason: &str,
        out: &mut GroupOut,
    ) {
        let Some(m) = g.members.remove(member_id) else {
            return;
        };
        if let Some(corr) = m.awaiting_join {
            out.sends.push((
                m.client,
                join_error(corr, member_id.to_string(), ErrorCode::UnknownMemberId),
            ));
        }
        if let Some(corr) = m.awaiting_sync {
            out.sends
                .push((m.client, sync_error(corr, ErrorCode::UnknownMemberId)));
        }
        if let Some(i) = &m.group_instance_id {
            if g.static_members.get(i).map(String::as_str) == Some(member_id) {
                g.static_members.remove(i);
            }
        }
        g.pending_sync.remove(member_id);
        if g.leader.as_deref() == Some(member_id) {
            g.leader = g.members.keys().next().cloned();
        }
        out.events.push(Event::GroupMemberRemoved {
            group: g.group_id.clone(),
            broker: self.broker,
            member_id: member_id.to_string(),
            reason: reason.to_string(),
            generation: g.generation,
        });
    }

    /// After a member left or expired: a stable or completing group rebalances, a preparing
    /// one may now complete its join phase.
    fn after_removal(
        &self,
        now: Instant,
        g: &mut ClassicGroup,
        reason: String,
        out: &mut GroupOut,
    ) {
        match g.state {
            GroupState::Stable | GroupState::CompletingRebalance => {
                self.prepare_rebalance(now, g, reason, out)
            }
            GroupState::PreparingRebalance => self.maybe_complete_join(now, g, out),
            GroupState::Empty | GroupState::Dead => {}
        }
    }

    // ---- SyncGroup, Heartbeat, LeaveGroup ----

    /// The error a member-scoped request (SyncGroup, Heartbeat) gets before state checks:
    /// unknown group or member, a fenced static instance, or a stale generation.
    fn member_error(
        g: Option<&ClassicGroup>,
        member_id: &str,
        instance: Option<&String>,
        generation: i32,
    ) -> Option<ErrorCode> {
        let Some(g) = g else {
            return Some(ErrorCode::UnknownMemberId);
        };
        if g.state == GroupState::Dead {
            return Some(ErrorCode::CoordinatorNotAvailable);
        }
        if let Some(i) = instance {
            if g.static_members.get(i).is_some_and(|m| m != member_id) {
                return Some(ErrorCode::FencedInstanceId);
            }
        }
        if !g.members.contains_key(member_id) {
            return Some(ErrorCode::UnknownMemberId);
        }
        if generation != g.generation {
            return Some(ErrorCode::IllegalGeneration);
        }
        None
    }

    /// SyncGroup (Kafka's `classicGroupSync`). The leader's assignment is stored (a group
    /// metadata record) and handed to every member; a follower waits for it.
    #[allow(clippy::too_many_arguments)]
    pub fn sync(
        &mut self,
        now: Instant,
        from: NodeId,
        corr: CorrelationId,
        group_id: &str,
        generation: i32,
        member_id: &str,
        instance: Option<String>,
        assignments: Vec<SyncGroupAssignment>,
        out: &mut GroupOut,
    ) {
        if let Some(e) = Self::member_error(
            self.group(group_id),
            member_id,
            instance.as_ref(),
            generation,
        ) {
            out.sends.push((from, sync_error(corr, e)));
            return;
        }
        let (tp, mut g) = self.groups.remove(group_id).expect("checked");
        self.touch(now, &mut g, member_id, out);
        match g.state {
            GroupState::PreparingRebalance => {
                out.sends
                    .push((from, sync_error(corr, ErrorCode::RebalanceInProgress)));
            }
            GroupState::Empty | GroupState::Dead => {
                out.sends
                    .push((from, sync_error(corr, ErrorCode::UnknownMemberId)));
            }
            GroupState::Stable => {
                g.pending_sync.remove(member_id);
                let m = &g.members[member_id];
                out.sends.push((
                    from,
                    Message::SyncGroupResponse {
                        corr,
                        error: ErrorCode::None,
                        protocol_name: g.protocol.clone(),
                        partitions: m.assignment.clone(),
                    },
                ));
            }
            GroupState::CompletingRebalance => {
                g.pending_sync.remove(member_id);
                let m = g.members.get_mut(member_id).expect("checked");
                m.client = from;
                m.awaiting_sync = Some(corr);
                if g.leader.as_deref() == Some(member_id) && !g.assignment_store_in_flight {
                    let mut given: BTreeMap<String, Vec<TopicPartition>> = assignments
                        .into_iter()
                        .map(|a| (a.member_id, a.partitions))
                        .collect();
                    for m in g.members.values_mut() {
                        let mut ps = given.remove(&m.member_id).unwrap_or_default();
                        ps.sort();
                        m.assignment = ps;
                    }
                    // Nobody learns the assignment before it is committed: a coordinator that
                    // loses its partition before then must not have handed out a generation
                    // its successor does not know (it would issue the same generation number
                    // with another assignment).
                    g.assignment_store_in_flight = true;
                    out.store_assignment.push(g.to_record(now.0));
                }
            }
        }
        self.groups.insert(group_id.to_string(), (tp, g));
    }

    /// The outcome of the write of `group_id`'s generation-`generation` assignment (from
    /// [`GroupOut::store_assignment`]): `ErrorCode::None` once the group's
    /// `__consumer_offsets` partition committed it, else the append's or the wait's error.
    /// On success the group becomes Stable and every member waiting in SyncGroup gets its
    /// share; on failure the assignment is dropped, the waiting members get the error Kafka's
    /// `GroupMetadataManager.storeGroup` maps it to (NOT_COORDINATOR when the partition moved,
    /// REBALANCE_IN_PROGRESS for a timeout, else COORDINATOR_NOT_AVAILABLE) and a new
    /// rebalance starts. Ignored if the group moved on (another generation or state) or this
    /// broker no longer coordinates it.
    pub fn on_assignment_stored(
        &mut self,
        now: Instant,
        group_id: &str,
        generation: i32,
        error: ErrorCode,
        out: &mut GroupOut,
    ) {
        let Some((tp, mut g)) = self.groups.remove(group_id) else {
            return;
        };
        if g.generation == generation
            && g.state == GroupState::CompletingRebalance
            && g.assignment_store_in_flight
        {
            g.assignment_store_in_flight = false;
            if error == ErrorCode::None {
                out.events.push(Event::GroupAssignmentCompleted {
                    group: g.group_id.clone(),
                    broker: self.broker,
                    generation: g.generation,
                    protocol: g.protocol.clone().unwrap_or_default(),
                    leader: g.leader.clone().unwrap_or_default(),
                    members: g
                        .members
                        .values()
                        .map(|m| MemberAssignment {
                            member_id: m.member_id.clone(),
                            group_instance_id: m.group_instance_id.clone(),
                            client: m.client.to_string(),
                            partitions: m.assignment.clone(),
                        })
                        .collect(),
                });
                let leader = g.leader.clone().unwrap_or_default();
                self.transition(
                    &mut g,
                    GroupState::Stable,
                    format!("Assignment received from leader {leader} and stored"),
                    out,
                );
                for m in g.members.values_mut() {
                    if let Some(corr) = m.awaiting_sync.take() {
                        out.sends.push((
                            m.client,
                            Message::SyncGroupResponse {
                                corr,
                                error: ErrorCode::None,
                                protocol_name: g.protocol.clone(),
                                partitions: m.assignment.clone(),
                            },
                        ));
                    }
                }
            } else {
                let answer = match error {
                    ErrorCode::NotCoordinator | ErrorCode::NotLeaderOrFollower => {
                        ErrorCode::NotCoordinator
                    }
                    ErrorCode::RequestTimedOut => ErrorCode::RebalanceInProgress,
                    _ => ErrorCode::CoordinatorNotAvailable,
                };
                for m in g.members.values_mut() {
                    m.assignment.clear();
                    if let Some(corr) = m.awaiting_sync.take() {
                        out.sends.push((m.client, sync_error(corr, answer)));
                    }
                }
                self.prepare_rebalance(
                    now,
                    &mut g,
                    format!(
                        "storing the generation-{generation} assignment failed with {}",
                        error.kafka_name()
                    ),
                    out,
                );
            }
        }
        self.groups.insert(group_id.to_string(), (tp, g));
    }

    /// A sign of life from a member: its session deadline moves to now + `session.timeout.ms`.
    fn touch(&self, now: Instant, g: &mut ClassicGroup, member_id: &str, out: &mut GroupOut) {
        let Some(m) = g.members.get_mut(member_id) else {
            return;
        };
        if m.awaiting_join.is_some() {
            return;
        }
        m.heartbeat_deadline_ms = now.0 + m.session_timeout_ms;
        out.timers.push((
            m.session_timeout_ms,
            GroupTimer::MemberExpiry {
                group: g.group_id.clone(),
                member_id: member_id.to_string(),
                deadline_ms: m.heartbeat_deadline_ms,
            },
        ));
    }

    /// Heartbeat (Kafka's `classicGroupHeartbeat`): NONE in `CompletingRebalance` and
    /// `Stable`, REBALANCE_IN_PROGRESS in `PreparingRebalance` (the member must rejoin),
    /// UNKNOWN_MEMBER_ID in `Empty`, and the member errors of [`Self::member_error`].
    #[allow(clippy::too_many_arguments)]
    pub fn heartbeat(
        &mut self,
        now: Instant,
        from: NodeId,
        corr: CorrelationId,
        group_id: &str,
        generation: i32,
        member_id: &str,
        instance: Option<String>,
        out: &mut GroupOut,
    ) {
        let error = match Self::member_error(
            self.group(group_id),
            member_id,
            instance.as_ref(),
            generation,
        ) {
            Some(e) => e,
            None => {
                let (tp, mut g) = self.groups.remove(group_id).expect("checked");
                let e = match g.state {
                    GroupState::Empty => ErrorCode::UnknownMemberId,
                    GroupState::Dead => ErrorCode::CoordinatorNotAvailable,
                    GroupState::PreparingRebalance => {
                        self.touch(now, &mut g, member_id, out);
                        ErrorCode::RebalanceInProgress
                    }
                    GroupState::CompletingRebalance | GroupState::Stable => {
                        self.touch(now, &mut g, member_id, out);
                        ErrorCode::None
                    }
                };
                self.groups.insert(group_id.to_string(), (tp, g));
                e
            }
        };
        out.sends
            .push((from, Message::HeartbeatResponse { corr, error }));
    }

    /// LeaveGroup (Kafka's `classicGroupLeave`): the member is removed and the group
    /// rebalances.
    pub fn leave(
        &mut self,
        now: Instant,
        from: NodeId,
        corr: CorrelationId,
        group_id: &str,
        member_id: &str,
        instance: Option<String>,
        out: &mut GroupOut,
    ) {
        let error = match self.groups.remove(group_id) {
            None => ErrorCode::UnknownMemberId,
            Some((tp, mut g)) => {
                let fenced = instance
                    .as_ref()
                    .is_some_and(|i| g.static_members.get(i).is_some_and(|m| m != member_id));
                let e = if fenced {
                    ErrorCode::FencedInstanceId
                } else if !g.members.contains_key(member_id) {
                    ErrorCode::UnknownMemberId
                } else {
                    self.remove_member(&mut g, member_id, "leave-group", out);
                    self.after_removal(
                        now,
                        &mut g,
                        format!("Removing member {member_id} on LeaveGroup"),
                        out,
                    );
                    ErrorCode::None
                };
                self.groups.insert(group_id.to_string(), (tp, g));
                e
            }
        };
        out.sends
            .push((from, Message::LeaveGroupResponse { corr, error }));
    }

    // ---- timers ----

    /// A timer of this manager fired.
    pub fn on_timer(&mut self, now: Instant, timer: GroupTimer, out: &mut GroupOut) {
        let group_id = match &timer {
            GroupTimer::JoinPhase { group, .. }
            | GroupTimer::MemberExpiry { group, .. }
            | GroupTimer::PendingMemberExpiry { group, .. }
            | GroupTimer::SyncPhase { group, .. } => group.clone(),
        };
        let Some((tp, mut g)) = self.groups.remove(&group_id) else {
            return;
        };
        match timer {
            GroupTimer::JoinPhase { epoch, .. } => {
                if epoch == g.join_epoch && g.state == GroupState::PreparingRebalance {
                    self.on_join_phase_end(now, &mut g, out);
                }
            }
            GroupTimer::MemberExpiry {
                member_id,
                deadline_ms,
                ..
            } => {
                let expired = g.members.get(&member_id).is_some_and(|m| {
                    m.heartbeat_deadline_ms == deadline_ms && deadline_ms <= now.0
                });
                if expired {
                    self.remove_member(&mut g, &member_id, "session-timeout", out);
                    self.after_removal(
                        now,
                        &mut g,
                        format!("Removing member {member_id} on heartbeat expiration"),
                        out,
                    );
                }
            }
            GroupTimer::PendingMemberExpiry { member_id, .. } => {
                if g.pending_members
                    .get(&member_id)
                    .is_some_and(|d| *d <= now.0)
                {
                    g.pending_members.remove(&member_id);
                    self.maybe_complete_join(now, &mut g, out);
                }
            }
            GroupTimer::SyncPhase { generation, .. } => {
                if generation == g.generation
                    && g.state == GroupState::CompletingRebalance
                    && !g.pending_sync.is_empty()
                {
                    let late: Vec<String> = g.pending_sync.iter().cloned().collect();
                    for id in &late {
                        self.remove_member(&mut g, id, "rebalance-timeout", out);
                    }
                    let reason = format!(
                        "Removing pending sync members {late:?} after the rebalance timeout"
                    );
                    self.after_removal(now, &mut g, reason, out);
                }
            }
        }
        if g.state == GroupState::Empty
            && g.members.is_empty()
            && g.generation == 0
            && g.pending_members.is_empty()
        {
            // A group that never got a generation and has nobody left is forgotten.
            return;
        }
        self.groups.insert(group_id, (tp, g));
    }

    /// The join phase's timer: the initial delay extends while members keep arriving (capped
    /// by the rebalance timeout, Kafka's `InitialDelayedJoin`); otherwise the phase ends.
    fn on_join_phase_end(&self, now: Instant, g: &mut ClassicGroup, out: &mut GroupOut) {
        if let Some(d) = g.initial_delay {
            if d.new_member_joined && d.remaining_ms > 0 {
                let delay = self.config.initial_rebalance_delay_ms.min(d.remaining_ms);
                g.initial_delay = Some(InitialDelay {
                    remaining_ms: d.remaining_ms - delay,
                    new_member_joined: false,
                });
                g.join_epoch += 1;
                out.timers.push((
                    delay,
                    GroupTimer::JoinPhase {
                        group: g.group_id.clone(),
                        epoch: g.join_epoch,
                    },
                ));
                return;
            }
        }
        self.complete_join(now, g, out);
    }

    // ---- OffsetCommit ----

    /// The error an OffsetCommit of `group_id` with `generation` and `member_id` gets
    /// (ClassicGroup.java:823-864): none for a simple consumer's commit (generation -1) to a
    /// group without members; COORDINATOR_NOT_AVAILABLE for a dead group; FENCED_INSTANCE_ID,
    /// UNKNOWN_MEMBER_ID or ILLEGAL_GENERATION for a member that is not the group's current
    /// one; REBALANCE_IN_PROGRESS in `CompletingRebalance`. With
    /// `sim.group.offset-commit-fencing = false`, always none.
    pub fn validate_offset_commit(
        &self,
        group_id: &str,
        generation: i32,
        member_id: &str,
        instance: Option<&String>,
    ) -> ErrorCode {
        if !self.config.offset_commit_fencing {
            return ErrorCode::None;
        }
        let Some(g) = self.group(group_id) else {
            return if generation < 0 {
                ErrorCode::None
            } else {
                ErrorCode::UnknownMemberId
            };
        };
        if g.state == GroupState::Dead {
            return ErrorCode::CoordinatorNotAvailable;
        }
        if generation < 0 && member_id.is_empty() && g.state == GroupState::Empty {
            return ErrorCode::None;
        }
        if let Some(e) = Self::member_error(Some(g), member_id, instance, generation) {
            return e;
        }
        if g.state == GroupState::CompletingRebalance {
            return ErrorCode::RebalanceInProgress;
        }
        ErrorCode::None
    }

    /// The error a TxnOffsetCommit of `group_id` with `generation`, `member_id` and `instance`
    /// gets (KIP-447; Kafka's `OffsetMetadataManager.validateTransactionalOffsetCommit` and
    /// `ClassicGroup.validateOffsetCommit` with `isTransactional`): an unknown group accepts
    /// only generation -1 (a pre-KIP-447 producer that sends the group id alone), else
    /// ILLEGAL_GENERATION; a dead group COORDINATOR_NOT_AVAILABLE; generation -1 with no member
    /// id is accepted (pre-KIP-447); otherwise the member must be known (UNKNOWN_MEMBER_ID,
    /// FENCED_INSTANCE_ID) and the generation current (ILLEGAL_GENERATION). Unlike OffsetCommit,
    /// CompletingRebalance does not refuse it. With `sim.txn.offset-commit-fencing = false`,
    /// always none (the zombie processor's commit lands).
    pub fn validate_txn_offset_commit(
        &self,
        group_id: &str,
        generation: i32,
        member_id: &str,
        instance: Option<&String>,
    ) -> ErrorCode {
        if !self.config.txn_offset_commit_fencing {
            return ErrorCode::None;
        }
        let Some(g) = self.group(group_id) else {
            return if generation < 0 {
                ErrorCode::None
            } else {
                ErrorCode::IllegalGeneration
            };
        };
        if g.state == GroupState::Dead {
            return ErrorCode::CoordinatorNotAvailable;
        }
        if generation < 0 && (g.state == GroupState::Empty || member_id.is_empty()) {
            return ErrorCode::None;
        }
        Self::member_error(Some(g), member_id, instance, generation).unwrap_or(ErrorCode::None)
    }
}

#[cfg(test)]
#[path = "group_manager_tests.rs"]
mod tests;
