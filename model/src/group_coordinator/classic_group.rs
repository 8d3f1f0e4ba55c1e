//! A classic consumer group as its coordinator holds it (Kafka's `ClassicGroup.java`,
//! `ClassicGroupMember.java`, `ClassicGroupState.java`), and the group metadata record that
//! persists it in `__consumer_offsets` (`GroupMetadataKey.json` / `GroupMetadataValue.json`).
//!
//! # States (ClassicGroupState.java, GROUPS-AND-TRANSACTIONS.md A1)
//! * `Empty`: no member; committed offsets may still be kept. A join moves it to
//!   `PreparingRebalance`.
//! * `PreparingRebalance`: the join phase; members (re)send JoinGroup. It ends when every known
//!   member has rejoined or the rebalance timeout (the largest `max.poll.interval.ms` of the
//!   members) passes; an `Empty` group first waits `group.initial.rebalance.delay.ms`.
//! * `CompletingRebalance`: the new generation is chosen; the group waits for the leader's
//!   SyncGroup with the assignment.
//! * `Stable`: every member has its assignment and heartbeats.
//! * `Dead`: the coordinator unloaded the group (it lost the `__consumer_offsets` partition).
//!
//! The generation increments only when a join phase ends (`initNextGeneration`, CG:1301):
//! during `PreparingRebalance` the previous generation is still current, so its commits are
//! accepted; in `CompletingRebalance` commits get REBALANCE_IN_PROGRESS.

use crate::protocol::GroupSubscription;
use crate::types::{CorrelationId, NodeId, TopicPartition};
use std::collections::{BTreeMap, BTreeSet};

/// Kafka's `ClassicGroupState`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum GroupState {
    Empty,
    PreparingRebalance,
    CompletingRebalance,
    Stable,
    Dead,
}

impl GroupState {
    /// Kafka's spelling (`ClassicGroupState.toString()`).
    pub fn name(self) -> &'static str {
        match self {
            GroupState::Empty => "Empty",
            GroupState::PreparingRebalance => "PreparingRebalance",
            GroupState::CompletingRebalance => "CompletingRebalance",
            GroupState::Stable => "Stable",
            GroupState::Dead => "Dead",
        }
    }
}

/// One member of a classic group (Kafka's `ClassicGroupMember`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// The id the coordinator gave (`<client>-<suffix>`, KIP-394).
    pub member_id: String,
    /// `group.instance.id` of a static member (KIP-345).
    pub group_instance_id: Option<String>,
    /// The client process, to answer it.
    pub client: NodeId,
    /// `session.timeout.ms` of the member.
    pub session_timeout_ms: u64,
    /// `max.poll.interval.ms` of the member: its rebalance timeout.
    pub rebalance_timeout_ms: u64,
    /// The assignors it supports, in its order.
    pub protocols: Vec<String>,
    /// Its subscription as last sent in JoinGroup.
    pub subscription: GroupSubscription,
    /// Its share of the current generation's assignment.
    pub assignment: Vec<TopicPartition>,
    /// The JoinGroup waiting for the join phase to end, if any.
    pub awaiting_join: Option<CorrelationId>,
    /// The SyncGroup waiting for the leader's assignment, if any.
    pub awaiting_sync: Option<CorrelationId>,
    /// When the member expires unless it heartbeats (or joins) again, ms.
    pub heartbeat_deadline_ms: u64,
}

/// A classic group (Kafka's `ClassicGroup`).
#[derive(Debug, Clone)]
pub struct ClassicGroup {
    pub group_id: String,
    pub state: GroupState,
    pub generation: i32,
    /// The assignor chosen for the current generation.
    pub protocol: Option<String>,
    /// The leader member (runs the assignor).
    pub leader: Option<String>,
    /// Members by member id.
    pub members: BTreeMap<String, Member>,
    /// Member ids handed out with MEMBER_ID_REQUIRED whose owner has not joined yet, with their
    /// expiry (KIP-394: a pending member expires after its session timeout).
    pub pending_members: BTreeMap<String, u64>,
    /// Static members: `group.instance.id` → member id.
    pub static_members: BTreeMap<String, String>,
    /// Bumped each time a join phase is scheduled: a join timer of an older phase is stale.
    pub join_epoch: u64,
    /// During the initial delay (`InitialDelayedJoin`): how much of the rebalance timeout is
    /// left to extend it, and whether a member joined during the current delay.
    pub initial_delay: Option<InitialDelay>,
    /// Members of the current generation that have not sent SyncGroup yet.
    pub pending_sync: BTreeSet<String>,
    /// The leader's assignment of the current generation is being written to
    /// `__consumer_offsets`: the group stays CompletingRebalance and the members' SyncGroup
    /// answers wait until the write is committed (Kafka's `doSyncGroup` answers from
    /// `storeGroup`'s callback). Cleared when the write completes or a rebalance starts.
    pub assignment_store_in_flight: bool,
}

/// Kafka's `InitialDelayedJoin` bookkeeping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InitialDelay {
    /// Rebalance timeout not yet spent, ms.
    pub remaining_ms: u64,
    /// A new member joined during the delay now running.
    pub new_member_joined: bool,
}

impl ClassicGroup {
    /// A new, empty group.
    pub fn new(group_id: String) -> Self {
        ClassicGroup {
            group_id,
            state: GroupState::Empty,
            generation: 0,
            protocol: None,
            leader: None,
            members: BTreeMap::new(),
            pending_members: BTreeMap::new(),
            static_members: BTreeMap::new(),
            join_epoch: 0,
            initial_delay: None,
            pending_sync: BTreeSet::new(),
            assignment_store_in_flight: false,
        }
    }

    /// The rebalance timeout: the largest of the members' (Kafka's `rebalanceTimeoutMs()`).
    pub fn rebalance_timeout_ms(&self) -> u64 {
        self.members
            .values()
            .map(|m| m.rebalance_timeout_ms)
            .max()
            .unwrap_or(0)
    }

    /// Whether every member has a JoinGroup waiting and no member id is pending (Kafka's
    /// `hasAllMembersJoined`).
    pub fn all_members_joined(&self) -> bool {
        self.members.values().all(|m| m.awaiting_join.is_some()) && self.pending_members.is_empty()
    }

    /// The protocol every member supports that most members prefer (Kafka's
    /// `selectProtocol`: each member votes for its first candidate; ties go to the candidate
    /// first in the leader's, then in name, order).
    pub fn select_protocol(&self) -> Option<String> {
        let mut candidates: Option<BTreeSet<&String>> = None;
        for m in self.members.values() {
            let theirs: BTreeSet<&String> = m.protocols.iter().collect();
            candidates = Some(match candidates {
                None => theirs,
                Some(c) => c.intersection(&theirs).copied().collect(),
            });
        }
        let candidates = candidates?;
        let mut votes: BTreeMap<&String, usize> = BTreeMap::new();
        for m in self.members.values() {
            if let Some(p) = m.protocols.iter().find(|p| candidates.contains(p)) {
                *votes.entry(p).or_default() += 1;
            }
        }
        let max = votes.values().copied().max()?;
        let leader_order: Vec<&String> = self
            .leader
            .as_ref()
            .and_then(|l| self.members.get(l))
            .or_else(|| self.members.values().next())
            .map(|m| m.protocols.iter().collect())
            .unwrap_or_default();
        leader_order
            .into_iter()
            .find(|p| votes.get(p) == Some(&max))
            .or_else(|| votes.iter().find(|(_, v)| **v == max).map(|(p, _)| *p))
            .cloned()
    }

    /// Whether a member supporting `protocols` could join: an empty group takes anyone, else
    /// one protocol must be supported by every member (Kafka's `supportsProtocols`).
    pub fn supports_protocols(&self, protocols: &[String]) -> bool {
        if self.members.is_empty() {
            return !protocols.is_empty();
        }
        protocols
            .iter()
            .any(|p| self.members.values().all(|m| m.protocols.contains(p)))
    }

    /// The record that persists this group now.
    pub fn to_record(&self, now_ms: u64) -> GroupMetadataRecord {
        GroupMetadataRecord {
            group_id: self.group_id.clone(),
            generation: self.generation,
            protocol: self.protocol.clone(),
            leader: self.leader.clone(),
            current_state_timestamp_ms: now_ms as i64,
            members: self
                .members
                .values()
                .map(|m| StoredMember {
                    member_id: m.member_id.clone(),
                    group_instance_id: m.group_instance_id.clone(),
                    client: m.client.to_string(),
                    session_timeout_ms: m.session_timeout_ms,
                    rebalance_timeout_ms: m.rebalance_timeout_ms,
                    subscription: m.subscription.clone(),
                    assignment: m.assignment.clone(),
                })
                .collect(),
        }
    }

    /// The group a stored record describes, as a new coordinator loads it (Kafka's
    /// `ClassicGroup.fromRecord`): `Stable` with its members (each given a fresh session
    /// deadline from `now_ms`, as Kafka reschedules every member's heartbeat on load), or
    /// `Empty`. The members' other protocols are not stored: each supports the group's.
    pub fn from_record(r: &GroupMetadataRecord, now_ms: u64) -> Self {
        let mut g = ClassicGroup::new(r.group_id.clone());
        g.generation = r.generation;
        g.protocol = r.protocol.clone();
        g.leader = r.leader.clone();
        g.state = if r.members.is_empty() {
            GroupState::Empty
        } else {
            GroupState::Stable
        };
        for m in &r.members {
            if let Some(i) = &m.group_instance_id {
                g.static_members.insert(i.clone(), m.member_id.clone());
            }
            g.members.insert(
                m.member_id.clone(),
                Member {
                    member_id: m.member_id.clone(),
                    group_instance_id: m.group_instance_id.clone(),
                    client: NodeId::parse(&m.client).unwrap_or(NodeId::Zk),
                    session_timeout_ms: m.session_timeout_ms,
                    rebalance_timeout_ms: m.rebalance_timeout_ms,
                    protocols: r.protocol.clone().into_iter().collect(),
                    subscription: m.subscription.clone(),
                    assignment: m.assignment.clone(),
                    awaiting_join: None,
                    awaiting_sync: None,
                    heartbeat_deadline_ms: now_ms + m.session_timeout_ms,
                },
            );
        }
        g
    }
}

/// A group's state as stored in `__consumer_offsets` (Kafka's `GroupMetadataValue`), written
/// when a generation's assignment is stored and when the group becomes empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupMetadataRecord {
    pub group_id: String,
    pub generation: i32,
    pub protocol: Option<String>,
    pub leader: Option<String>,
    pub current_state_timestamp_ms: i64,
    pub members: Vec<StoredMember>,
}

/// One member inside a [`GroupMetadataRecord`] (Kafka's `MemberMetadata`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMember {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    /// The client's node name (Kafka stores `client.id` and the host).
    pub client: String,
    pub session_timeout_ms: u64,
    pub rebalance_timeout_ms: u64,
    pub subscription: GroupSubscription,
    pub assignment: Vec<TopicPartition>,
}

// ---- encoding (Kafka's GroupMetadataValue v3 layout, with ConsumerProtocol subscription and
// assignment bytes) ----

fn put_str(buf: &mut Vec<u8>, s: &str) {
    let len = i16::try_from(s.len()).expect("a string longer than i16::MAX bytes");
    buf.extend_from_slice(&len.to_be_bytes());
    buf.extend_from_slice(s.as_bytes());
}

fn put_opt_str(buf: &mut Vec<u8>, s: Option<&str>) {
    match s {
        Some(s) => put_str(buf, s),
        None => buf.extend_from_slice(&(-1i16).to_be_bytes()),
    }
}

fn put_partitions(buf: &mut Vec<u8>, partitions: &[TopicPartition]) {
    let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for tp in partitions {
        by_topic.entry(&tp.topic).or_default().push(tp.partition);
    }
    buf.extend_from_slice(&(by_topic.len() as i32).to_be_bytes());
    for (topic, ps) in by_topic {
        put_str(buf, topic);
        buf.extend_from_slice(&(ps.len() as i32).to_be_bytes());
        for p in ps {
            buf.extend_from_slice(&p.to_be_bytes());
        }
    }
}

fn put_bytes(buf: &mut Vec<u8>, bytes: &[u8]) {
    buf.extend_from_slice(&(bytes.len() as i32).to_be_bytes());
    buf.extend_from_slice(bytes);
}

/// Key version of a group metadata record (`GroupMetadataKey`).
pub const GROUP_METADATA_KEY_VERSION: i16 = 2;
const GROUP_METADATA_VALUE_VERSION: i16 = 3;

/// The record's key: `version = 2`, then the group id.
pub fn encode_group_key(group_id: &str) -> Vec<u8> {
    let mut key = Vec::new();
    key.extend_from_slice(&GROUP_METADATA_KEY_VERSION.to_be_bytes());
    put_str(&mut key, group_id);
    key
}

/// The record's value bytes.
pub fn encode_group_value(r: &GroupMetadataRecord) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(&GROUP_METADATA_VALUE_VERSION.to_be_bytes());
    put_str(&mut v, "consumer");
    v.extend_from_slice(&r.generation.to_be_bytes());
    put_opt_str(&mut v, r.protocol.as_deref());
    put_opt_str(&mut v, r.leader.as_deref());
    v.extend_from_slice(&r.current_state_timestamp_ms.to_be_bytes());
    v.extend_from_slice(&(r.members.len() as i32).to_be_bytes());
    for m in &r.members {
        put_str(&mut v, &m.member_id);
        put_opt_str(&mut v, m.group_instance_id.as_deref());
        put_str(&mut v, &m.client);
        put_str(&mut v, "/sim");
        v.extend_from_slice(&(m.rebalance_timeout_ms as i32).to_be_bytes());
        v.extend_from_slice(&(m.session_timeout_ms as i32).to_be_bytes());
        // ConsumerProtocolSubscription v1+: topics, user data (null), owned partitions,
        // generation.
        let mut sub = Vec::new();
        sub.extend_from_slice(&2i16.to_be_bytes());
        sub.extend_from_slice(&(m.subscription.topics.len() as i32).to_be_bytes());
        for t in &m.subscription.topics {
            put_str(&mut sub, t);
        }
        sub.extend_from_slice(&(-1i32).to_be_bytes());
        put_partitions(&mut sub, &m.subscription.owned_partitions);
        sub.extend_from_slice(&m.subscription.generation.to_be_bytes());
        put_bytes(&mut v, &sub);
        // ConsumerProtocolAssignment: partitions, user data (null).
        let mut asg = Vec::new();
        asg.extend_from_slice(&1i16.to_be_bytes());
        put_partitions(&mut asg, &m.assignment);
        asg.extend_from_slice(&(-1i32).to_be_bytes());
        put_bytes(&mut v, &asg);
    }
    v
}

/// A cursor over bytes; every read fails cleanly on short input.
pub(super) struct Reader<'a> {
    pub(super) buf: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(super) fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        if self.buf.len() < n {
            return Err(format!("{} bytes left, {n} needed", self.buf.len()));
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }
    pub(super) fn i16(&mut self) -> Result<i16, String> {
        Ok(i16::from_be_bytes(self.take(2)?.try_into().expect("2")))
    }
    pub(super) fn i32(&mut self) -> Result<i32, String> {
        Ok(i32::from_be_bytes(self.take(4)?.try_into().expect("4")))
    }
    pub(super) fn i64(&mut self) -> Result<i64, String> {
        Ok(i64::from_be_bytes(self.take(8)?.try_into().expect("8")))
    }
    pub(super) fn opt_string(&mut self) -> Result<Option<String>, String> {
        let len = self.i16()?;
        if len < 0 {
            return Ok(None);
        }
        String::from_utf8(self.take(len as usize)?.to_vec())
            .map(Some)
            .map_err(|e| e.to_string())
    }
    pub(super) fn string(&mut self) -> Result<String, String> {
        self.opt_string()?
            .ok_or_else(|| "a null string".to_string())
    }
    fn count(&mut self) -> Result<usize, String> {
        let n = self.i32()?;
        if n < 0 || n as usize > self.buf.len() {
            return Err(format!("array length {n}"));
        }
        Ok(n as usize)
    }
    fn partitions(&mut self) -> Result<Vec<TopicPartition>, String> {
        let mut out = Vec::new();
        for _ in 0..self.count()? {
            let topic = self.string()?;
            for _ in 0..self.count()? {
                out.push(TopicPartition::new(topic.clone(), self.i32()?));
            }
        }
        Ok(out)
    }
    fn bytes(&mut self) -> Result<&'a [u8], String> {
        let n = self.count()?;
        self.take(n)
    }
}

/// Reads a group metadata value written by [`encode_group_value`].
pub fn decode_group_value(group_id: String, value: &[u8]) -> Result<GroupMetadataRecord, String> {
    let mut v = Reader { buf: value };
    let version = v.i16()?;
    if version != GROUP_METADATA_VALUE_VERSION {
        return Err(format!("unknown group metadata value version {version}"));
    }
    let _protocol_type = v.string()?;
    let generation = v.i32()?;
    let protocol = v.opt_string()?;
    let leader = v.opt_string()?;
    let current_state_timestamp_ms = v.i64()?;
    let mut members = Vec::new();
    for _ in 0..v.count()? {
        let member_id = v.string()?;
        let group_instance_id = v.opt_string()?;
        let client = v.string()?;
        let _host = v.string()?;
        let rebalance_timeout_ms = v.i32()?.max(0) as u64;
        let session_timeout_ms = v.i32()?.max(0) as u64;
        let mut sub = Reader { buf: v.bytes()? };
        sub.i16()?;
        let mut topics = Vec::new();
        for _ in 0..sub.count()? {
            topics.push(sub.string()?);
        }
        let user_data = sub.i32()?;
        if user_data > 0 {
            sub.take(user_data as usize)?;
        }
        let owned_partitions = sub.partitions()?;
        let sub_generation = sub.i32()?;
        let mut asg = Reader { buf: v.bytes()? };
        asg.i16()?;
        let assignment = asg.partitions()?;
        members.push(StoredMember {
            member_id,
            group_instance_id,
            client,
            session_timeout_ms,
            rebalance_timeout_ms,
            subscription: GroupSubscription {
                topics,
                owned_partitions,
                generation: sub_generation,
            },
            assignment,
        });
    }
    Ok(GroupMetadataRecord {
        group_id,
        generation,
        protocol,
        leader,
        current_state_timestamp_ms,
        members,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> GroupMetadataRecord {
        GroupMetadataRecord {
            group_id: "g".into(),
            generation: 4,
            protocol: Some("range".into()),
            leader: Some("consumer-0-1".into()),
            current_state_timestamp_ms: 77,
            members: vec![StoredMember {
                member_id: "consumer-0-1".into(),
                group_instance_id: Some("i-0".into()),
                client: "consumer-0".into(),
                session_timeout_ms: 10_000,
                rebalance_timeout_ms: 30_000,
                subscription: GroupSubscription {
                    topics: vec!["t".into()],
                    owned_partitions: vec![TopicPartition::new("t", 1)],
                    generation: 3,
                },
                assignment: vec![TopicPartition::new("t", 0), TopicPartition::new("t", 1)],
            }],
        }
    }

    #[test]
    fn group_metadata_survives_encode_and_decode() {
        let r = record();
        let v = encode_group_value(&r);
        assert_eq!(decode_group_value("g".into(), &v), Ok(r));
        assert!(decode_group_value("g".into(), &v[..v.len() - 3]).is_err());
    }

    #[test]
    fn a_loaded_group_is_stable_with_fresh_session_deadlines() {
        let g = ClassicGroup::from_record(&record(), 1_000);
        assert_eq!(g.state, GroupState::Stable);
        assert_eq!(g.generation, 4);
        let m = &g.members["consumer-0-1"];
        assert_eq!(m.heartbeat_deadline_ms, 11_000);
        assert_eq!(m.client, NodeId::Consumer(0));
        assert_eq!(g.static_members["i-0"], "consumer-0-1");
        let mut empty = record();
        empty.members.clear();
        assert_eq!(
            ClassicGroup::from_record(&empty, 0).state,
            GroupState::Empty
        );
    }

    #[test]
    fn the_protocol_is_the_first_every_member_supports() {
        let mut g = ClassicGroup::from_record(&record(), 0);
        let mut second = g.members["consumer-0-1"].clone();
        second.member_id = "b".into();
        g.members.get_mut("consumer-0-1").unwrap().protocols =
            vec!["range".into(), "cooperative-sticky".into()];
        second.protocols = vec!["cooperative-sticky".into(), "range".into()];
        g.members.insert("b".into(), second);
        // One vote each: the leader's order decides.
        assert_eq!(g.select_protocol().as_deref(), Some("range"));
        assert!(g.supports_protocols(&["cooperative-sticky".into()]));
        assert!(!g.supports_protocols(&["roundrobin".into()]));
    }
}
