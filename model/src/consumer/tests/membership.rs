//! A consumer in subscribe mode (`group_membership.rs`): the heartbeat thread's session
//! timeout, partitions lost at the next `poll()`, and correlation ids per incarnation.

use super::*;
use crate::consumer::{CommitMode, ProcessingChange};
use crate::effects::CheckedActor;
use crate::protocol::OffsetFetchPartition;

const GROUP: &str = "g";
const COORDINATOR: BrokerId = BrokerId(1);
const SESSION_MS: u64 = 10_000;
const HEARTBEAT_MS: u64 = 3_000;

fn member(incarnation: u64) -> ConsumerClient {
    let config = ConsumerConfig {
        group_id: Some(GROUP.into()),
        enable_auto_commit: false,
        auto_offset_reset: AutoOffsetReset::Earliest,
        session_timeout_ms: SESSION_MS,
        heartbeat_interval_ms: HEARTBEAT_MS,
        ..ConsumerConfig::default()
    };
    ConsumerClient::new(0, config, vec!["events".into()], vec![BrokerId(0)])
        .with_workload(ConsumerWorkload {
            commit: CommitMode::Sync,
            subscribe: true,
            processing_ms: Some((1_000, 1_000)),
            ..ConsumerWorkload::default()
        })
        .with_incarnation(incarnation)
}

fn at(c: &mut ConsumerClient, ms: u64, msg: Message) -> Effects<ConsumerTimer> {
    let mut out = Effects::new();
    c.checked_message(Instant(ms), NodeId::Broker(BrokerId(0)), msg, &mut out);
    out
}

fn fire_at(c: &mut ConsumerClient, ms: u64, timer: ConsumerTimer) -> Effects<ConsumerTimer> {
    let mut out = Effects::new();
    c.checked_timeout(Instant(ms), timer, &mut out);
    out
}

/// The one message `out` sent that `pick` accepts, with its correlation id.
fn sent_one(
    out: &Effects<ConsumerTimer>,
    what: &str,
    pick: impl Fn(&Message) -> Option<CorrelationId>,
) -> CorrelationId {
    let found: Vec<CorrelationId> = out.sent().iter().filter_map(pick).collect();
    assert_eq!(found.len(), 1, "expected one {what} in {:?}", out.sent());
    found[0]
}

fn fetch_of(out: &Effects<ConsumerTimer>) -> CorrelationId {
    sent_one(out, "Fetch", |m| match m {
        Message::Fetch { corr, .. } => Some(*corr),
        _ => None,
    })
}

fn heartbeat_of(out: &Effects<ConsumerTimer>) -> CorrelationId {
    sent_one(out, "Heartbeat", |m| match m {
        Message::Heartbeat { corr, .. } => Some(*corr),
        _ => None,
    })
}

fn lost(out: &Effects<ConsumerTimer>) -> Vec<Event> {
    out.events()
        .into_iter()
        .filter(|e| matches!(e, Event::PartitionsLost { .. }))
        .collect()
}

/// A member of generation 1 that owns `events-0` from offset 0, blocked in `poll()`, at
/// 100 ms; returns the fetch it sent.
fn joined(c: &mut ConsumerClient) -> CorrelationId {
    let mut out = Effects::new();
    c.on_start(Instant(0), &mut out);
    let md = sent_one(&out, "Metadata", |m| match m {
        Message::Metadata { corr, .. } => Some(*corr),
        _ => None,
    });
    at(c, 1, metadata(md, 0, 0));
    // The application's first poll() joins: first the coordinator.
    let out = fire_at(c, 10, ConsumerTimer::Poll);
    let find = sent_one(&out, "FindCoordinator", |m| match m {
        Message::FindCoordinator { corr, .. } => Some(*corr),
        _ => None,
    });
    let out = at(
        c,
        11,
        Message::FindCoordinatorResponse {
            corr: find,
            error: ErrorCode::None,
            coordinator: Some(COORDINATOR),
        },
    );
    let join = sent_one(&out, "JoinGroup", |m| match m {
        Message::JoinGroup { corr, .. } => Some(*corr),
        _ => None,
    });
    // A follower of the leader "m0".
    let out = at(
        c,
        12,
        Message::JoinGroupResponse {
            corr: join,
            error: ErrorCode::None,
            generation_id: 1,
            protocol_name: Some("range".into()),
            leader: "m0".into(),
            member_id: "m1".into(),
            members: vec![],
        },
    );
    let sync = sent_one(&out, "SyncGroup", |m| match m {
        Message::SyncGroup { corr, .. } => Some(*corr),
        _ => None,
    });
    let out = at(
        c,
        13,
        Message::SyncGroupResponse {
            corr: sync,
            error: ErrorCode::None,
            protocol_name: Some("range".into()),
            partitions: vec![tp()],
        },
    );
    assert!(
        out.events()
            .iter()
            .any(|e| matches!(e, Event::PartitionsAssigned { partitions, .. } if partitions == &vec![tp()])),
        "{:?}",
        out.events()
    );
    let of = sent_one(&out, "OffsetFetch", |m| match m {
        Message::OffsetFetch { corr, .. } => Some(*corr),
        _ => None,
    });
    let out = at(
        c,
        14,
        Message::OffsetFetchResponse {
            corr: of,
            error: ErrorCode::None,
            partitions: vec![OffsetFetchPartition {
                tp: tp(),
                committed_offset: Offset(0),
            }],
        },
    );
    fetch_of(&out)
}

/// The heartbeat thread (`AbstractCoordinator.HeartbeatThread`): a heartbeat unanswered for
/// `session.timeout.ms` marks the coordinator unknown with Kafka's reason and looks it up
/// again, well before the request's own timeout (`request.timeout.ms`, 30 s).
#[test]
fn no_heartbeat_answer_for_the_session_timeout_marks_the_coordinator_unknown() {
    let mut c = member(0);
    joined(&mut c);
    let out = fire_at(&mut c, 3_000, ConsumerTimer::Heartbeat);
    let hb = heartbeat_of(&out);
    // Answered: the session timer starts again at 3 000 ms.
    at(
        &mut c,
        3_001,
        Message::HeartbeatResponse {
            corr: hb,
            error: ErrorCode::None,
        },
    );
    let out = fire_at(&mut c, 6_000, ConsumerTimer::Heartbeat);
    heartbeat_of(&out); // never answered (the link to the coordinator is cut)
    for ms in [9_000, 12_000] {
        let out = fire_at(&mut c, ms, ConsumerTimer::Heartbeat);
        assert!(out.events().is_empty(), "at {ms}: {:?}", out.events());
        assert!(
            out.sent().is_empty(),
            "one heartbeat in flight: {:?}",
            out.sent()
        );
    }
    // 13 002 ms: more than session.timeout.ms since the last answer.
    let out = fire_at(&mut c, 13_002, ConsumerTimer::Heartbeat);
    assert_eq!(
        out.events(),
        vec![Event::CoordinatorMarkedUnknown {
            group: GROUP.into(),
            coordinator: COORDINATOR,
            reason: "session timed out without receiving a heartbeat response".into(),
        }]
    );
    let find = sent_one(&out, "FindCoordinator", |m| match m {
        Message::FindCoordinator { corr, .. } => Some(*corr),
        _ => None,
    });
    // Found again: the session timer restarts (`resetSessionTimeout`), the member heartbeats.
    at(
        &mut c,
        13_010,
        Message::FindCoordinatorResponse {
            corr: find,
            error: ErrorCode::None,
            coordinator: Some(COORDINATOR),
        },
    );
    let out = fire_at(&mut c, 16_002, ConsumerTimer::Heartbeat);
    assert!(out.events().is_empty(), "{:?}", out.events());
    heartbeat_of(&out);
}

/// `onPartitionsLost` runs in the application's next `poll()`, not when the heartbeat
/// thread gets the error; records fetched meanwhile for the lost partition are not returned.
#[test]
fn partitions_are_lost_at_the_next_poll_and_their_fetched_records_are_dropped() {
    let mut c = member(0);
    let fetch = joined(&mut c);
    // The blocked poll returns three records; the application processes them for 1 s.
    let out = at(
        &mut c,
        100,
        fetch_response(fetch, ErrorCode::None, vec![batch(0, 3, 0)]),
    );
    let polled: Vec<_> = out
        .ops()
        .into_iter()
        .filter(|o| o.op_type == OpType::Ok && matches!(o.value, OpValue::Poll { .. }))
        .collect();
    assert_eq!(polled.len(), 1, "{:?}", out.ops());
    let fetch = fetch_of(&out);
    // The heartbeat thread learns the group went on without this member.
    let out = fire_at(&mut c, 200, ConsumerTimer::Heartbeat);
    let hb = heartbeat_of(&out);
    let out = at(
        &mut c,
        201,
        Message::HeartbeatResponse {
            corr: hb,
            error: ErrorCode::UnknownMemberId,
        },
    );
    assert!(lost(&out).is_empty(), "not yet: {:?}", out.events());
    // Records keep arriving for the partition meanwhile.
    at(
        &mut c,
        300,
        fetch_response(fetch, ErrorCode::None, vec![batch(3, 2, 0)]),
    );
    // The application's next poll: onPartitionsLost, then nothing of the lost partition.
    let out = fire_at(&mut c, 1_100, ConsumerTimer::Poll);
    assert_eq!(
        lost(&out),
        vec![Event::PartitionsLost {
            group: GROUP.into(),
            member_id: "m1".into(),
            generation: 1,
            partitions: vec![tp()],
            reason: "UNKNOWN_MEMBER_ID".into(),
        }]
    );
    for o in out.ops() {
        if let OpValue::Poll { records } = &o.value {
            assert!(
                records.is_empty(),
                "records of a lost partition returned: {o:?}"
            );
        }
    }
    // It joins again (the coordinator is known: at once), owning nothing.
    let join: Vec<_> = out
        .sent()
        .into_iter()
        .filter(|m| matches!(m, Message::JoinGroup { .. }))
        .collect();
    assert_eq!(join.len(), 1, "{:?}", out.sent());
}

/// A restarted consumer numbers its requests from `incarnation << 32`, so an answer to its
/// predecessor's request (routed to the latest connection) is not taken for its own.
#[test]
fn a_restarted_consumer_ignores_answers_to_its_previous_process() {
    let mut old = member(0);
    let mut out = Effects::new();
    old.on_start(Instant(0), &mut out);
    let old_md = corr_of(&out.sent()[0]);
    let mut new = member(1);
    let mut out = Effects::new();
    new.on_start(Instant(5), &mut out);
    let new_md = corr_of(&out.sent()[0]);
    assert_ne!(old_md, new_md);
    assert_eq!(new_md.0 >> 32, 1, "{new_md:?}");
    // The predecessor's metadata answer reaches the new process: ignored.
    let out = at(&mut new, 6, metadata(old_md, 0, 0));
    assert!(
        out.list.is_empty(),
        "not this process's answer: {:?}",
        out.list
    );
}

/// The poll timers the application set (`after_ms` of each `ConsumerTimer::Poll`).
fn poll_timers(out: &Effects<ConsumerTimer>) -> Vec<u64> {
    out.list
        .iter()
        .filter_map(|e| match e {
            Effect::SetTimer {
                after_ms,
                timer: ConsumerTimer::Poll,
            } => Some(*after_ms),
            _ => None,
        })
        .collect()
}

/// A `ProcessingChange` applies to the polls whose processing starts at or after its
/// `at_ms`: the application slows down from then on (the scenario key `processing_change`).
#[test]
fn a_processing_change_slows_the_polls_processed_after_it() {
    let mut c = member(0);
    // No commit between two polls, so that each poll follows the processing at once.
    c.workload.commit = CommitMode::None;
    c.workload.processing_changes = vec![
        ProcessingChange {
            at_ms: 500,
            processing_ms: (3_000, 3_000),
        },
        ProcessingChange {
            at_ms: 9_000,
            processing_ms: (7, 7),
        },
    ];
    let fetch = joined(&mut c);
    // Processing of the poll that returns at 100 ms starts before the change: 1 000 ms.
    let out = at(
        &mut c,
        100,
        fetch_response(fetch, ErrorCode::None, vec![batch(0, 3, 0)]),
    );
    assert_eq!(poll_timers(&out), vec![1_000]);
    let fetch = fetch_of(&out);
    let out = at(
        &mut c,
        300,
        fetch_response(fetch, ErrorCode::None, vec![batch(3, 2, 0)]),
    );
    let fetch = fetch_of(&out);
    // The next poll, at 1 100 ms, returns the buffered records: processed after the change.
    let out = fire_at(&mut c, 1_100, ConsumerTimer::Poll);
    assert_eq!(poll_timers(&out), vec![3_000]);
    at(
        &mut c,
        1_200,
        fetch_response(fetch, ErrorCode::None, vec![batch(5, 2, 0)]),
    );
    // 9 100 ms: the last change reached applies.
    let out = fire_at(&mut c, 9_100, ConsumerTimer::Poll);
    assert_eq!(poll_timers(&out), vec![7]);
}
