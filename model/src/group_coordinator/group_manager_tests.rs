//! The classic group state machine on hand-driven requests: join with MEMBER_ID_REQUIRED and
//! the initial delay, sync, heartbeat expiry, static fencing, offset-commit fencing.

use super::*;

const GROUP: &str = "g";

fn tp() -> TopicPartition {
    TopicPartition::new("__consumer_offsets", 0)
}

fn manager() -> GroupManager {
    GroupManager::new(
        BrokerId(0),
        GroupConfig {
            initial_rebalance_delay_ms: 100,
            ..GroupConfig::default()
        },
    )
}

fn join_req(client: u32, corr: u64, member_id: &str, instance: Option<&str>) -> JoinRequest {
    JoinRequest {
        from: NodeId::Consumer(client),
        corr: CorrelationId(corr),
        group_id: GROUP.into(),
        member_id: member_id.into(),
        group_instance_id: instance.map(str::to_string),
        session_timeout_ms: 10_000,
        rebalance_timeout_ms: 30_000,
        protocols: vec!["range".into()],
        subscription: GroupSubscription {
            topics: vec!["t".into()],
            owned_partitions: vec![],
            generation: -1,
        },
    }
}

/// The single JoinGroupResponse among `out`'s answers to `corr`.
fn join_answer(out: &GroupOut, corr: u64) -> (ErrorCode, i32, String, String, usize) {
    out.sends
        .iter()
        .find_map(|(_, m)| match m {
            Message::JoinGroupResponse {
                corr: c,
                error,
                generation_id,
                leader,
                member_id,
                members,
                ..
            } if c.0 == corr => Some((
                *error,
                *generation_id,
                leader.clone(),
                member_id.clone(),
                members.len(),
            )),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no JoinGroupResponse to {corr}: {:?}", out.sends))
}

fn fire(m: &mut GroupManager, now: u64, out: &GroupOut) -> GroupOut {
    let mut next = GroupOut::default();
    for (_, t) in out.timers.clone() {
        m.on_timer(Instant(now), t, &mut next);
    }
    next
}

/// Two dynamic members join (MEMBER_ID_REQUIRED, then with their ids); the initial delay ends
/// the join phase: generation 1, CompletingRebalance. Returns the manager and both ids.
fn two_members() -> (GroupManager, String, String) {
    let mut m = manager();
    let mut ids = vec![];
    for c in 0..2u32 {
        let mut out = GroupOut::default();
        m.join(Instant(0), &tp(), join_req(c, 1, "", None), &mut out);
        let (e, _, _, id, _) = join_answer(&out, 1);
        assert_eq!(e, ErrorCode::MemberIdRequired);
        assert!(id.starts_with(&format!("consumer-{c}-")));
        ids.push(id);
    }
    let mut out = GroupOut::default();
    m.join(Instant(1), &tp(), join_req(0, 2, &ids[0], None), &mut out);
    assert_eq!(
        m.group(GROUP).unwrap().state,
        GroupState::PreparingRebalance
    );
    let first_timers = out;
    let mut out = GroupOut::default();
    m.join(Instant(2), &tp(), join_req(1, 2, &ids[1], None), &mut out);
    // The initial delay (100 ms) runs; a member joined during it, so it is extended once.
    let ext = fire(&mut m, 101, &first_timers);
    assert_eq!(
        m.group(GROUP).unwrap().state,
        GroupState::PreparingRebalance
    );
    let done = fire(&mut m, 201, &ext);
    let g = m.group(GROUP).unwrap();
    assert_eq!(g.state, GroupState::CompletingRebalance);
    assert_eq!(g.generation, 1);
    let (e0, gen0, leader, _, n0) = join_answer(&done, 2);
    assert_eq!((e0, gen0), (ErrorCode::None, 1));
    assert_eq!(leader, ids[0], "the first member to join leads");
    let leaders = done
        .sends
        .iter()
        .filter(|(_, msg)| matches!(msg, Message::JoinGroupResponse { members, .. } if !members.is_empty()))
        .count();
    assert_eq!(leaders, 1, "only the leader gets the member list");
    assert!(n0 == 2 || n0 == 0);
    (m, ids[0].clone(), ids[1].clone())
}

/// A SyncGroup request of member `id` (the leader's carries an assignment when `assign`).
fn sync_only(
    m: &mut GroupManager,
    now: u64,
    client: u32,
    id: &str,
    generation: i32,
    assign: bool,
) -> GroupOut {
    let mut out = GroupOut::default();
    let assignments = if assign {
        vec![SyncGroupAssignment {
            member_id: id.into(),
            partitions: vec![TopicPartition::new("t", 0)],
        }]
    } else {
        vec![]
    };
    m.sync(
        Instant(now),
        NodeId::Consumer(client),
        CorrelationId(now),
        GROUP,
        generation,
        id,
        None,
        assignments,
        &mut out,
    );
    out
}

/// As [`sync_only`], and the leader's assignment write (if any) then commits at once.
fn sync(
    m: &mut GroupManager,
    now: u64,
    client: u32,
    id: &str,
    generation: i32,
    assign: bool,
) -> GroupOut {
    let mut out = sync_only(m, now, client, id, generation, assign);
    for r in out.store_assignment.clone() {
        m.on_assignment_stored(
            Instant(now),
            &r.group_id,
            r.generation,
            ErrorCode::None,
            &mut out,
        );
    }
    out
}

fn heartbeat(m: &mut GroupManager, now: u64, id: &str, generation: i32) -> (ErrorCode, GroupOut) {
    let mut out = GroupOut::default();
    m.heartbeat(
        Instant(now),
        NodeId::Consumer(0),
        CorrelationId(now),
        GROUP,
        generation,
        id,
        None,
        &mut out,
    );
    let e = out
        .sends
        .iter()
        .find_map(|(_, msg)| match msg {
            Message::HeartbeatResponse { error, .. } => Some(*error),
            _ => None,
        })
        .expect("answered");
    (e, out)
}

#[test]
fn join_then_sync_makes_the_group_stable_and_stores_the_assignment() {
    let (mut m, leader, follower) = two_members();
    // The follower's SyncGroup waits for the leader's.
    let out = sync(&mut m, 300, 1, &follower, 1, false);
    assert!(out.sends.is_empty());
    // The leader's assignment is written first; nobody hears of it before it is committed.
    let out = sync_only(&mut m, 301, 0, &leader, 1, true);
    assert_eq!(out.store_assignment.len(), 1, "the assignment is persisted");
    assert_eq!(out.store_assignment[0].generation, 1);
    assert!(out.sends.is_empty(), "no answer before the write commits");
    assert!(!out
        .events
        .iter()
        .any(|e| matches!(e, Event::GroupAssignmentCompleted { .. })));
    assert_eq!(
        m.group(GROUP).unwrap().state,
        GroupState::CompletingRebalance
    );
    // A retried leader SyncGroup does not write it again.
    let again = sync_only(&mut m, 302, 0, &leader, 1, true);
    assert!(again.store_assignment.is_empty() && again.sends.is_empty());
    let mut out = GroupOut::default();
    m.on_assignment_stored(Instant(310), GROUP, 1, ErrorCode::None, &mut out);
    assert_eq!(m.group(GROUP).unwrap().state, GroupState::Stable);
    assert_eq!(out.sends.len(), 2, "both syncs answered");
    assert!(out
        .events
        .iter()
        .any(|e| matches!(e, Event::GroupAssignmentCompleted { generation: 1, .. })));
    // A stale generation is refused, the current one accepted.
    assert_eq!(
        heartbeat(&mut m, 400, &follower, 0).0,
        ErrorCode::IllegalGeneration
    );
    assert_eq!(
        heartbeat(&mut m, 400, "nobody", 1).0,
        ErrorCode::UnknownMemberId
    );
    assert_eq!(heartbeat(&mut m, 400, &follower, 1).0, ErrorCode::None);
}

#[test]
fn a_member_without_heartbeats_expires_and_the_group_rebalances() {
    let (mut m, leader, follower) = two_members();
    sync(&mut m, 300, 1, &follower, 1, false);
    sync(&mut m, 301, 0, &leader, 1, true);
    // The leader heartbeats at 5 s and 12 s; the follower never does.
    let (_, hb5) = heartbeat(&mut m, 5_000, &leader, 1);
    let (_, _) = heartbeat(&mut m, 9_000, &leader, 1);
    let mut fired = GroupOut::default();
    // The follower's session (from its SyncGroup at 300 ms) ends at 10 300 ms.
    m.on_timer(
        Instant(10_300),
        GroupTimer::MemberExpiry {
            group: GROUP.into(),
            member_id: follower.clone(),
            deadline_ms: 10_300,
        },
        &mut fired,
    );
    let g = m.group(GROUP).unwrap();
    assert!(!g.members.contains_key(&follower));
    assert_eq!(g.state, GroupState::PreparingRebalance);
    assert!(fired.events.iter().any(|e| matches!(
        e,
        Event::GroupMemberRemoved { reason, .. } if reason == "session-timeout"
    )));
    // A stale timer of the leader (its deadline moved) does nothing.
    let t = hb5.timers[0].1.clone();
    let mut none = GroupOut::default();
    m.on_timer(Instant(15_000), t, &mut none);
    assert!(m.group(GROUP).unwrap().members.contains_key(&leader));
    // The leader learns of the rebalance from its heartbeat.
    assert_eq!(
        heartbeat(&mut m, 10_400, &leader, 1).0,
        ErrorCode::RebalanceInProgress
    );
}

#[test]
fn offset_commits_are_fenced_by_generation_and_member() {
    let (mut m, leader, follower) = two_members();
    // CompletingRebalance: REBALANCE_IN_PROGRESS even for the current generation.
    assert_eq!(
        m.validate_offset_commit(GROUP, 1, &leader, None),
        ErrorCode::RebalanceInProgress
    );
    sync(&mut m, 300, 1, &follower, 1, false);
    sync(&mut m, 301, 0, &leader, 1, true);
    assert_eq!(
        m.validate_offset_commit(GROUP, 1, &leader, None),
        ErrorCode::None
    );
    assert_eq!(
        m.validate_offset_commit(GROUP, 0, &leader, None),
        ErrorCode::IllegalGeneration
    );
    assert_eq!(
        m.validate_offset_commit(GROUP, 1, "zombie", None),
        ErrorCode::UnknownMemberId
    );
    assert_eq!(
        m.validate_offset_commit(GROUP, -1, "", None),
        ErrorCode::UnknownMemberId,
        "a group with members refuses a simple consumer's commit"
    );
    // No group at all: generation -1 is a simple consumer's commit.
    assert_eq!(
        m.validate_offset_commit("other", -1, "", None),
        ErrorCode::None
    );
    // The legacy switch accepts the zombie's commit.
    let mut legacy = GroupManager::new(
        BrokerId(0),
        GroupConfig {
            offset_commit_fencing: false,
            ..GroupConfig::default()
        },
    );
    std::mem::swap(&mut legacy.groups, &mut m.groups);
    assert_eq!(
        legacy.validate_offset_commit(GROUP, 0, "zombie", None),
        ErrorCode::None
    );
}

/// KIP-447: TxnOffsetCommit is fenced like OffsetCommit (member, generation), but accepted in
/// CompletingRebalance; an unknown group takes generation -1 only; the legacy switch
/// `sim.txn.offset-commit-fencing = false` accepts the zombie's.
#[test]
fn txn_offset_commits_are_fenced_by_generation_and_member() {
    let (mut m, leader, follower) = two_members();
    assert_eq!(
        m.validate_txn_offset_commit(GROUP, 1, &leader, None),
        ErrorCode::None,
        "CompletingRebalance does not refuse a transactional commit"
    );
    sync(&mut m, 300, 1, &follower, 1, false);
    sync(&mut m, 301, 0, &leader, 1, true);
    assert_eq!(
        m.validate_txn_offset_commit(GROUP, 1, &follower, None),
        ErrorCode::None
    );
    assert_eq!(
        m.validate_txn_offset_commit(GROUP, 0, &leader, None),
        ErrorCode::IllegalGeneration,
        "a zombie of an older generation"
    );
    assert_eq!(
        m.validate_txn_offset_commit(GROUP, 1, "zombie", None),
        ErrorCode::UnknownMemberId
    );
    assert_eq!(
        m.validate_txn_offset_commit(GROUP, -1, "", None),
        ErrorCode::None,
        "a pre-KIP-447 producer sends the group id alone"
    );
    assert_eq!(
        m.validate_txn_offset_commit("other", 3, "m", None),
        ErrorCode::IllegalGeneration
    );
    assert_eq!(
        m.validate_txn_offset_commit("other", -1, "", None),
        ErrorCode::None
    );
    let mut legacy = GroupManager::new(
        BrokerId(0),
        GroupConfig {
            txn_offset_commit_fencing: false,
            ..GroupConfig::default()
        },
    );
    std::mem::swap(&mut legacy.groups, &mut m.groups);
    assert_eq!(
        legacy.validate_txn_offset_commit(GROUP, 0, "zombie", None),
        ErrorCode::None
    );
    assert_eq!(
        legacy.validate_offset_commit(GROUP, 0, "zombie", None),
        ErrorCode::UnknownMemberId,
        "the switch is about transactional commits only"
    );
}

#[test]
fn a_restarted_static_member_gets_its_assignment_back_without_a_rebalance() {
    let mut m = manager();
    let mut out = GroupOut::default();
    // A static member joins directly (no MEMBER_ID_REQUIRED).
    m.join(Instant(0), &tp(), join_req(0, 1, "", Some("i-0")), &mut out);
    let first = fire(&mut m, 100, &out);
    let (e, generation, _, old_id, _) = join_answer(&first, 1);
    assert_eq!((e, generation), (ErrorCode::None, 1));
    sync(&mut m, 150, 0, &old_id, 1, true);
    assert_eq!(m.group(GROUP).unwrap().state, GroupState::Stable);
    // The process restarts: same instance id, no member id.
    let mut out = GroupOut::default();
    m.join(
        Instant(5_000),
        &tp(),
        join_req(0, 7, "", Some("i-0")),
        &mut out,
    );
    let (e, generation, leader, new_id, n) = join_answer(&out, 7);
    assert_eq!((e, generation, n), (ErrorCode::None, 1, 0));
    assert_ne!(new_id, old_id);
    assert_eq!(leader, new_id, "the leader id follows the instance");
    let g = m.group(GROUP).unwrap();
    assert_eq!(g.state, GroupState::Stable, "no rebalance");
    assert!(!out
        .events
        .iter()
        .any(|e| matches!(e, Event::GroupStateChanged { .. })));
    // Its SyncGroup in Stable returns the stored assignment.
    let out = sync(&mut m, 5_001, 0, &new_id, 1, false);
    assert!(out.sends.iter().any(|(_, msg)| matches!(
        msg,
        Message::SyncGroupResponse { error: ErrorCode::None, partitions, .. }
            if partitions == &vec![TopicPartition::new("t", 0)]
    )));
    // The old instance is fenced.
    let mut out = GroupOut::default();
    m.heartbeat(
        Instant(5_002),
        NodeId::Consumer(0),
        CorrelationId(9),
        GROUP,
        1,
        &old_id,
        Some("i-0".into()),
        &mut out,
    );
    assert!(matches!(
        out.sends[0].1,
        Message::HeartbeatResponse {
            error: ErrorCode::FencedInstanceId,
            ..
        }
    ));
}

#[test]
fn leave_group_rebalances_and_session_timeouts_outside_the_bounds_are_refused() {
    let (mut m, leader, follower) = two_members();
    sync(&mut m, 300, 1, &follower, 1, false);
    sync(&mut m, 301, 0, &leader, 1, true);
    let mut out = GroupOut::default();
    m.leave(
        Instant(400),
        NodeId::Consumer(1),
        CorrelationId(5),
        GROUP,
        &follower,
        None,
        &mut out,
    );
    assert_eq!(
        m.group(GROUP).unwrap().state,
        GroupState::PreparingRebalance
    );
    assert!(out.events.iter().any(|e| matches!(
        e,
        Event::GroupMemberRemoved { reason, .. } if reason == "leave-group"
    )));
    let mut out = GroupOut::default();
    let mut req = join_req(3, 1, "", None);
    req.session_timeout_ms = 1_000;
    m.join(Instant(500), &tp(), req, &mut out);
    assert_eq!(join_answer(&out, 1).0, ErrorCode::InvalidSessionTimeout);
}

#[test]
fn a_new_coordinator_loads_the_stored_group_with_its_generation() {
    let (mut m, leader, follower) = two_members();
    sync(&mut m, 300, 1, &follower, 1, false);
    let out = sync(&mut m, 301, 0, &leader, 1, true);
    let record = out.store_assignment[0].clone();
    let mut stored = BTreeMap::new();
    stored.insert(GROUP.to_string(), record);
    let mut next = GroupManager::new(BrokerId(1), GroupConfig::default());
    let mut out = GroupOut::default();
    next.load(&tp(), &stored, Instant(9_000), &mut out);
    let g = next.group(GROUP).unwrap();
    assert_eq!((g.state, g.generation), (GroupState::Stable, 1));
    assert_eq!(out.timers.len(), 2, "every member's session timer restarts");
    let mut out = GroupOut::default();
    next.heartbeat(
        Instant(9_001),
        NodeId::Consumer(0),
        CorrelationId(1),
        GROUP,
        1,
        &leader,
        None,
        &mut out,
    );
    assert!(matches!(
        out.sends[0].1,
        Message::HeartbeatResponse {
            error: ErrorCode::None,
            ..
        }
    ));
    // Unloading answers nothing pending and marks the group dead (gone).
    let mut out = GroupOut::default();
    next.unload(&tp(), &mut out);
    assert!(next.group(GROUP).is_none());
}

/// INVALID_SESSION_TIMEOUT (`GroupCoordinator.handleJoinGroup`): a session timeout outside
/// [`group.min.session.timeout.ms`, `group.max.session.timeout.ms`] (both ends allowed) is
/// refused before anything else, with no member id handed out and no group created.
#[test]
fn session_timeouts_outside_the_brokers_bounds_are_refused_at_both_ends() {
    let config = GroupConfig::default();
    let (min, max) = (config.min_session_timeout_ms, config.max_session_timeout_ms);
    assert_eq!((min, max), (6_000, 1_800_000), "Kafka's defaults");
    for (timeout, refused) in [(min - 1, true), (min, false), (max, false), (max + 1, true)] {
        let mut m = manager();
        let mut out = GroupOut::default();
        let mut req = join_req(0, 1, "", None);
        req.session_timeout_ms = timeout;
        m.join(Instant(0), &tp(), req, &mut out);
        let (error, generation, _, member_id, _) = join_answer(&out, 1);
        if refused {
            assert_eq!(error, ErrorCode::InvalidSessionTimeout, "{timeout}");
            assert_eq!((generation, member_id.as_str()), (-1, ""), "{timeout}");
            assert!(
                m.group(GROUP).is_none(),
                "{timeout}: no group for a refused join"
            );
        } else {
            assert_eq!(error, ErrorCode::MemberIdRequired, "{timeout}");
        }
    }
}

/// Kafka's doSyncGroup answers from storeGroup's callback: a coordinator that loses its
/// `__consumer_offsets` partition before the assignment commits hands it to nobody, so its
/// successor cannot issue the same generation with another assignment (found by ksim on
/// consumer-group-under-faults seed 70039: two coordinators each handed out a generation 1).
#[test]
fn an_assignment_whose_write_fails_reaches_no_member_and_the_group_rebalances() {
    let (mut m, leader, follower) = two_members();
    sync(&mut m, 300, 1, &follower, 1, false);
    let out = sync_only(&mut m, 301, 0, &leader, 1, true);
    assert!(out.sends.is_empty());
    let mut out = GroupOut::default();
    m.on_assignment_stored(Instant(320), GROUP, 1, ErrorCode::NotCoordinator, &mut out);
    let answers: Vec<ErrorCode> = out
        .sends
        .iter()
        .filter_map(|(_, msg)| match msg {
            Message::SyncGroupResponse {
                error, partitions, ..
            } => {
                assert!(partitions.is_empty());
                Some(*error)
            }
            _ => None,
        })
        .collect();
    assert_eq!(
        answers,
        [ErrorCode::NotCoordinator, ErrorCode::NotCoordinator]
    );
    assert!(!out
        .events
        .iter()
        .any(|e| matches!(e, Event::GroupAssignmentCompleted { .. })));
    let g = m.group(GROUP).unwrap();
    assert_eq!(g.state, GroupState::PreparingRebalance);
    assert!(g.members.values().all(|m| m.assignment.is_empty()));
    // A late outcome of the same write changes nothing.
    let mut late = GroupOut::default();
    m.on_assignment_stored(Instant(330), GROUP, 1, ErrorCode::None, &mut late);
    assert!(late.sends.is_empty());
    assert_eq!(
        m.group(GROUP).unwrap().state,
        GroupState::PreparingRebalance
    );
}

#[test]
fn a_timed_out_assignment_write_answers_rebalance_in_progress() {
    let (mut m, leader, follower) = two_members();
    sync(&mut m, 300, 1, &follower, 1, false);
    sync_only(&mut m, 301, 0, &leader, 1, true);
    let mut out = GroupOut::default();
    m.on_assignment_stored(
        Instant(5301),
        GROUP,
        1,
        ErrorCode::RequestTimedOut,
        &mut out,
    );
    assert!(out.sends.iter().all(|(_, msg)| matches!(
        msg,
        Message::SyncGroupResponse {
            error: ErrorCode::RebalanceInProgress,
            ..
        }
    )));
    assert_eq!(out.sends.len(), 2);
}
