//! A consumer with a `group.id`: FindCoordinator, OffsetFetch to start from the committed
//! offset, and commits (`coordinator.rs`).

use super::*;
use crate::consumer::CommitMode;
use crate::effects::CheckedActor;
use crate::event::{CommitOffset, FetchedOffset};

const GROUP: &str = "g";

fn grouped(commit: CommitMode, enable_auto_commit: bool) -> ConsumerClient {
    let config = ConsumerConfig {
        group_id: Some(GROUP.into()),
        enable_auto_commit,
        auto_offset_reset: AutoOffsetReset::Earliest,
        ..ConsumerConfig::default()
    };
    ConsumerClient::new(0, config, vec!["events".into()], vec![BrokerId(0)]).with_workload(
        ConsumerWorkload {
            commit,
            ..ConsumerWorkload::default()
        },
    )
}

fn deliver_at(c: &mut ConsumerClient, ms: u64, msg: Message) -> Effects<ConsumerTimer> {
    let mut out = Effects::new();
    c.checked_message(Instant(ms), NodeId::Broker(BrokerId(0)), msg, &mut out);
    out
}

fn fire_at(c: &mut ConsumerClient, ms: u64, timer: ConsumerTimer) -> Effects<ConsumerTimer> {
    let mut out = Effects::new();
    c.checked_timeout(Instant(ms), timer, &mut out);
    out
}

/// The messages sent, with their destinations.
fn sent_to(out: &Effects<ConsumerTimer>) -> Vec<(NodeId, Message)> {
    out.list
        .iter()
        .filter_map(|e| match e {
            Effect::Send { to, msg } => Some((*to, msg.clone())),
            _ => None,
        })
        .collect()
}

fn corr(m: &Message) -> CorrelationId {
    match m {
        Message::FindCoordinator { corr, .. }
        | Message::OffsetFetch { corr, .. }
        | Message::OffsetCommit { corr, .. } => *corr,
        other => corr_of(other),
    }
}

fn timers(out: &Effects<ConsumerTimer>) -> Vec<(u64, ConsumerTimer)> {
    out.list
        .iter()
        .filter_map(|e| match e {
            Effect::SetTimer { after_ms, timer } => Some((*after_ms, timer.clone())),
            _ => None,
        })
        .collect()
}

/// Starts `c`, answers its metadata and its lookup (coordinator `coordinator`), and returns
/// the OffsetFetch it then sent.
fn started(c: &mut ConsumerClient, coordinator: i32) -> Message {
    let mut out = Effects::new();
    c.on_start(Instant(0), &mut out);
    let md = out.sent().remove(0);
    let out = deliver_at(c, 1, metadata(corr_of(&md), 0, 0));
    // No ListOffsets: the partition waits for its committed offset.
    let sent = out.sent();
    assert_eq!(sent.len(), 1, "{sent:?}");
    let Message::FindCoordinator { key, .. } = &sent[0] else {
        panic!("expected FindCoordinator, got {sent:?}");
    };
    assert_eq!(key, GROUP);
    let o = out.ops();
    assert_eq!(o[0].op_type, OpType::Invoke);
    assert_eq!(
        o[0].value,
        OpValue::OffsetFetch {
            group: GROUP.into(),
            offsets: vec![FetchedOffset {
                tp: tp(),
                committed: None
            }],
            coordinator: None,
        }
    );
    let out = deliver_at(
        c,
        2,
        Message::FindCoordinatorResponse {
            corr: corr(&sent[0]),
            error: ErrorCode::None,
            coordinator: Some(BrokerId(coordinator)),
        },
    );
    assert!(out.events().contains(&Event::CoordinatorDiscovered {
        group: GROUP.into(),
        coordinator: BrokerId(coordinator),
    }));
    let sent = sent_to(&out);
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0].0, NodeId::Broker(BrokerId(coordinator)));
    let Message::OffsetFetch {
        group_id,
        partitions,
        ..
    } = &sent[0].1
    else {
        panic!("expected OffsetFetch, got {sent:?}");
    };
    assert_eq!((group_id.as_str(), partitions.clone()), (GROUP, vec![tp()]));
    sent[0].1.clone()
}

fn offset_fetch_response(corr: CorrelationId, committed: i64) -> Message {
    Message::OffsetFetchResponse {
        corr,
        error: ErrorCode::None,
        partitions: vec![OffsetFetchPartition {
            tp: tp(),
            committed_offset: Offset(committed),
        }],
    }
}

/// A grouped consumer positioned at its committed offset `committed` (coordinator broker-1),
/// with the fetch it sent.
fn resumed(commit: CommitMode, auto: bool, committed: i64) -> (ConsumerClient, Message) {
    let mut c = grouped(commit, auto);
    let fetch = started(&mut c, 1);
    let out = deliver_at(&mut c, 3, offset_fetch_response(corr(&fetch), committed));
    let o = out.ops();
    assert_eq!(o[0].op_type, OpType::Ok);
    assert_eq!(
        o[0].value,
        OpValue::OffsetFetch {
            group: GROUP.into(),
            offsets: vec![FetchedOffset {
                tp: tp(),
                committed: Some(Offset(committed))
            }],
            coordinator: Some(BrokerId(1)),
        }
    );
    assert!(out.events().contains(&Event::ConsumerPositionReset {
        tp: tp(),
        from_offset: None,
        to_offset: Offset(committed),
        strategy: "committed".into(),
        reason: "committed-offset".into(),
    }));
    let f = out.sent().remove(0);
    assert!(
        matches!(f, Message::Fetch { ref partitions, .. } if partitions[0].fetch_offset == Offset(committed)),
        "{f:?}"
    );
    (c, f)
}

#[test]
fn a_grouped_consumer_starts_from_its_groups_committed_offset() {
    let (c, _) = resumed(CommitMode::Sync, false, 42);
    assert_eq!(c.position(&tp()), Some(Offset(42)));
}

#[test]
fn without_a_committed_offset_the_position_comes_from_auto_offset_reset() {
    let mut c = grouped(CommitMode::Auto, true);
    let fetch = started(&mut c, 1);
    let out = deliver_at(&mut c, 3, offset_fetch_response(corr(&fetch), -1));
    let o = out.ops();
    let OpValue::OffsetFetch { offsets, .. } = &o[0].value else {
        unreachable!()
    };
    assert_eq!(offsets[0].committed, None);
    assert!(matches!(
        out.sent()[0],
        Message::ListOffsets { timestamp: -2, .. }
    ));
}

#[test]
fn not_coordinator_forgets_the_coordinator_and_the_fetch_is_retried_after_the_backoff() {
    let mut c = grouped(CommitMode::Auto, true);
    let fetch = started(&mut c, 1);
    let out = deliver_at(
        &mut c,
        3,
        Message::OffsetFetchResponse {
            corr: corr(&fetch),
            error: ErrorCode::NotCoordinator,
            partitions: vec![],
        },
    );
    assert!(out.ops().is_empty(), "the read goes on");
    assert!(out.events().contains(&Event::CoordinatorMarkedUnknown {
        group: GROUP.into(),
        coordinator: BrokerId(1),
        reason: "NOT_COORDINATOR".into(),
    }));
    assert_eq!(timers(&out), vec![(100, ConsumerTimer::OffsetFetchRetry)]);
    let out = fire_at(&mut c, 103, ConsumerTimer::OffsetFetchRetry);
    assert!(matches!(out.sent()[0], Message::FindCoordinator { .. }));
}

/// The application's poll returns records of `events-0` at `from..from+n`.
fn poll_records(
    c: &mut ConsumerClient,
    fetch: &Message,
    ms: u64,
    from: i64,
    n: i64,
) -> Effects<ConsumerTimer> {
    let out = fire_at(c, ms, ConsumerTimer::Poll);
    assert!(c.blocked_poll.is_some(), "{:?}", out.list);
    let out = deliver_at(
        c,
        ms + 1,
        fetch_response(corr_of(fetch), ErrorCode::None, vec![batch(from, n, 0)]),
    );
    assert!(matches!(out.ops()[1].value, OpValue::Poll { .. }));
    out
}

fn commit_value(offset: i64, mode: &str, coordinator: Option<i32>) -> OpValue {
    OpValue::Commit {
        group: GROUP.into(),
        mode: mode.into(),
        offsets: vec![CommitOffset {
            tp: tp(),
            offset: Offset(offset),
        }],
        coordinator: coordinator.map(BrokerId),
        generation: None,
        member_id: None,
    }
}

#[test]
fn commit_sync_after_processing_is_retried_through_a_coordinator_change() {
    let (mut c, fetch) = resumed(CommitMode::Sync, false, 42);
    poll_records(&mut c, &fetch, 10, 42, 3);
    // Processing done: commitSync() of the position after the poll, generation -1.
    let out = fire_at(&mut c, 60, ConsumerTimer::Poll);
    let o = out.ops();
    assert_eq!(o.len(), 1);
    assert_eq!(o[0].op_type, OpType::Invoke);
    assert_eq!(o[0].value, commit_value(45, "sync", None));
    let sent = sent_to(&out);
    let (to, commit) = sent
        .iter()
        .find(|(_, m)| matches!(m, Message::OffsetCommit { .. }))
        .expect("an OffsetCommit");
    assert_eq!(*to, NodeId::Broker(BrokerId(1)));
    let Message::OffsetCommit {
        generation_id,
        offsets,
        ..
    } = commit
    else {
        unreachable!()
    };
    assert_eq!(*generation_id, -1);
    assert_eq!(offsets[0].committed_offset, Offset(45));
    assert!(
        c.blocked_poll.is_none() && c.sync_commit.is_some(),
        "waits in commitSync()"
    );
    assert!(timers(&out).contains(&(60_000, ConsumerTimer::CommitDeadline { op_id: o[0].op_id })));
    // The coordinator moved: NOT_COORDINATOR, retried after the backoff at the new one.
    let out = deliver_at(
        &mut c,
        70,
        Message::OffsetCommitResponse {
            corr: corr(commit),
            partitions: vec![OffsetCommitPartitionResponse {
                tp: tp(),
                error: ErrorCode::NotCoordinator,
            }],
        },
    );
    assert!(out.ops().is_empty());
    assert!(out.events().contains(&Event::OffsetCommitFailed {
        group: GROUP.into(),
        mode: "sync".into(),
        error: "NOT_COORDINATOR".into(),
        retry: true,
    }));
    let op_id = o[0].op_id;
    assert!(timers(&out).contains(&(100, ConsumerTimer::CommitRetry { op_id })));
    let out = fire_at(&mut c, 170, ConsumerTimer::CommitRetry { op_id });
    let lookup = out.sent().remove(0);
    let out = deliver_at(
        &mut c,
        171,
        Message::FindCoordinatorResponse {
            corr: corr(&lookup),
            error: ErrorCode::None,
            coordinator: Some(BrokerId(2)),
        },
    );
    let sent = sent_to(&out);
    assert_eq!(sent[0].0, NodeId::Broker(BrokerId(2)));
    let out = deliver_at(
        &mut c,
        180,
        Message::OffsetCommitResponse {
            corr: corr(&sent[0].1),
            partitions: vec![OffsetCommitPartitionResponse {
                tp: tp(),
                error: ErrorCode::None,
            }],
        },
    );
    let o = out.ops();
    assert_eq!(o[0].op_type, OpType::Ok);
    assert_eq!(o[0].value, commit_value(45, "sync", Some(2)));
    // commitSync() returned: the application polls again.
    assert!(c.blocked_poll.is_some() && c.sync_commit.is_none());
}

#[test]
fn commit_sync_gives_up_after_default_api_timeout_ms_with_an_unknown_outcome() {
    let (mut c, fetch) = resumed(CommitMode::Sync, false, 0);
    poll_records(&mut c, &fetch, 10, 0, 2);
    let out = fire_at(&mut c, 60, ConsumerTimer::Poll);
    let op_id = out.ops()[0].op_id;
    // No answer: the request is still in flight when the deadline passes.
    let out = fire_at(&mut c, 60_060, ConsumerTimer::CommitDeadline { op_id });
    let o = out.ops();
    assert_eq!(o[0].op_type, OpType::Info);
    assert_eq!(
        o[0].error.as_deref(),
        Some("TimeoutException: Timeout of 60000ms expired before successfully committing offsets {events-0=2}")
    );
    assert!(c.blocked_poll.is_some(), "the application goes on polling");
}

#[test]
fn commit_before_processing_commits_the_polled_records_first() {
    let (mut c, fetch) = resumed(CommitMode::BeforeProcessing, false, 5);
    let out = poll_records(&mut c, &fetch, 10, 5, 4);
    let o = out.ops();
    assert_eq!(o[2].value, commit_value(9, "sync", None));
    assert!(
        !timers(&out).iter().any(|(_, t)| *t == ConsumerTimer::Poll),
        "processing waits for commitSync()"
    );
    let commit = sent_to(&out)
        .into_iter()
        .find(|(_, m)| matches!(m, Message::OffsetCommit { .. }))
        .expect("committed")
        .1;
    let out = deliver_at(
        &mut c,
        20,
        Message::OffsetCommitResponse {
            corr: corr(&commit),
            partitions: vec![OffsetCommitPartitionResponse {
                tp: tp(),
                error: ErrorCode::None,
            }],
        },
    );
    assert_eq!(out.ops()[0].op_type, OpType::Ok);
    assert_eq!(timers(&out), vec![(POLL_INTERVAL_MS, ConsumerTimer::Poll)]);
}

#[test]
fn commit_async_is_not_retried_and_fails_when_no_coordinator_is_found() {
    let (mut c, fetch) = resumed(CommitMode::Async, false, 0);
    poll_records(&mut c, &fetch, 10, 0, 2);
    let out = fire_at(&mut c, 60, ConsumerTimer::Poll);
    assert!(c.blocked_poll.is_some(), "commitAsync() does not wait");
    let commit = sent_to(&out)
        .into_iter()
        .find(|(_, m)| matches!(m, Message::OffsetCommit { .. }))
        .expect("committed")
        .1;
    // COORDINATOR_NOT_AVAILABLE may follow an append: the outcome is unknown; no retry.
    let out = deliver_at(
        &mut c,
        70,
        Message::OffsetCommitResponse {
            corr: corr(&commit),
            partitions: vec![OffsetCommitPartitionResponse {
                tp: tp(),
                error: ErrorCode::CoordinatorNotAvailable,
            }],
        },
    );
    let o = out.ops();
    assert_eq!(o[0].op_type, OpType::Info);
    assert!(
        sent_to(&out).is_empty() && timers(&out).is_empty(),
        "{:?}",
        out.list
    );
    // The next commit needs a lookup; when it fails, the commit was never sent: fail.
    let fetch = c
        .pending
        .iter()
        .find(|(_, (p, _))| matches!(p, Pending::Fetch(_)))
        .map(|(corr, _)| *corr)
        .expect("a fetch in flight");
    let out = deliver_at(
        &mut c,
        80,
        fetch_response(fetch, ErrorCode::None, vec![batch(2, 1, 0)]),
    );
    assert!(out
        .ops()
        .iter()
        .any(|o| matches!(o.value, OpValue::Poll { .. })));
    let out = fire_at(&mut c, 130, ConsumerTimer::Poll);
    let lookup = out
        .sent()
        .into_iter()
        .find(|m| matches!(m, Message::FindCoordinator { .. }))
        .expect("a lookup");
    let out = deliver_at(
        &mut c,
        131,
        Message::FindCoordinatorResponse {
            corr: corr(&lookup),
            error: ErrorCode::CoordinatorNotAvailable,
            coordinator: None,
        },
    );
    let o = out.ops();
    assert_eq!(o[0].op_type, OpType::Fail);
    assert_eq!(
        o[0].error.as_deref(),
        Some("coordinator-not-found (COORDINATOR_NOT_AVAILABLE)")
    );
}

#[test]
fn auto_commit_fires_inside_poll_once_the_interval_passed_even_while_blocked() {
    let (mut c, fetch) = resumed(CommitMode::Auto, true, 7);
    // Before the interval: a blocked poll wakes at the auto-commit deadline.
    let out = fire_at(&mut c, 4_500, ConsumerTimer::Poll);
    assert!(out.ops().is_empty());
    let generation = c.blocked_poll.expect("blocked");
    assert!(timers(&out).contains(&(500, ConsumerTimer::AutoCommitDue { generation })));
    let out = fire_at(&mut c, 5_000, ConsumerTimer::AutoCommitDue { generation });
    assert_eq!(out.ops()[0].value, commit_value(7, "auto", None));
    // The next one is due an interval later.
    assert_eq!(c.auto_commit_due_ms(), Some(10_000));
    let _ = fetch;
}

#[test]
fn a_consumer_without_a_group_never_looks_for_a_coordinator() {
    let (mut c, fetch) = positioned(AutoOffsetReset::Earliest, 0, 0);
    assert!(c.coordinator.is_none());
    let out = deliver(
        &mut c,
        fetch_response(corr_of(&fetch), ErrorCode::None, vec![batch(0, 2, 0)]),
    );
    let _ = out;
    let out = fire(&mut c, ConsumerTimer::Poll);
    assert!(out.sent().iter().all(|m| !matches!(
        m,
        Message::FindCoordinator { .. } | Message::OffsetCommit { .. }
    )));
}

/// `close()` while the application processes a poll's records (auto commit): it finishes the
/// records, then commits every consumed position synchronously (Kafka's
/// `ConsumerCoordinator.close` → `maybeAutoCommitOffsetsSync`), even though the auto-commit
/// interval has not passed, and then stops: nothing more is sent, polled or committed.
#[test]
fn close_commits_the_processed_positions_with_auto_commit_and_then_stops() {
    let (mut c, fetch) = resumed(CommitMode::Auto, true, 7);
    poll_records(&mut c, &fetch, 10, 7, 3);
    // The application is processing: close() waits for it.
    let out = deliver_at(&mut c, 20, Message::Close);
    assert!(
        out.ops().is_empty() && out.sent().is_empty(),
        "{:?}",
        out.list
    );
    // Processing done: the commit on close, of the position after the poll (10).
    let out = fire_at(&mut c, 60, ConsumerTimer::Poll);
    let o = out.ops();
    assert_eq!(o.len(), 1, "{o:?}");
    assert_eq!(o[0].op_type, OpType::Invoke);
    assert_eq!(o[0].value, commit_value(10, "auto", None));
    assert!(c.blocked_poll.is_none(), "close() does not poll again");
    let commit = out
        .sent()
        .into_iter()
        .find(|m| matches!(m, Message::OffsetCommit { .. }))
        .expect("an OffsetCommit");
    let out = deliver_at(
        &mut c,
        70,
        Message::OffsetCommitResponse {
            corr: corr(&commit),
            partitions: vec![OffsetCommitPartitionResponse {
                tp: tp(),
                error: ErrorCode::None,
            }],
        },
    );
    let o = out.ops();
    assert_eq!(o[0].op_type, OpType::Ok);
    assert_eq!(o[0].value, commit_value(10, "auto", Some(1)));
    assert!(out.sent().is_empty(), "{:?}", out.list);
    // Closed: timers and answers do nothing any more.
    for timer in [
        ConsumerTimer::Poll,
        ConsumerTimer::MetadataRefresh,
        ConsumerTimer::AutoCommitDue { generation: 1 },
    ] {
        let out = fire_at(&mut c, 10_000, timer);
        assert!(out.list.is_empty(), "{:?}", out.list);
    }
}

/// `close()` of a consumer blocked in `poll(timeout)` happens at once (`wakeup()`); with
/// `commit = "none"` (no auto commit) it commits nothing.
#[test]
fn close_of_a_blocked_consumer_is_immediate_and_commits_only_as_its_mode_does() {
    let (mut c, _fetch) = resumed(CommitMode::Auto, true, 7);
    let _ = fire_at(&mut c, 10, ConsumerTimer::Poll);
    assert!(c.blocked_poll.is_some());
    let out = deliver_at(&mut c, 20, Message::Close);
    assert_eq!(out.ops()[0].value, commit_value(7, "auto", None));

    let (mut c, _fetch) = resumed(CommitMode::None, false, 7);
    let _ = fire_at(&mut c, 10, ConsumerTimer::Poll);
    let out = deliver_at(&mut c, 20, Message::Close);
    assert!(
        out.ops().is_empty() && out.sent().is_empty(),
        "{:?}",
        out.list
    );
    assert!(c.is_closed());
}
