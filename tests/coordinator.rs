//! The group coordinator through the simulated network, end to end: a consumer with a
//! `group.id` commits with `commitSync()` while the broker leading its group's
//! `__consumer_offsets` partition is killed, then the consumer itself is killed and restarted
//! (`scenarios/offset-commits-survive-coordinator-failover.toml`, on its pinned seeds).
//!
//! What must hold, beyond the checks the run itself makes:
//! * commits were appended to the group's partition both by the leader before the failover and
//!   by the leader after it (its high watermark moved under each), and the new leader loaded
//!   the commits made before (`coordinator-loaded` with records);
//! * every commit the client saw acknowledged was acknowledged by the leader of that moment;
//! * the restarted consumer's first OffsetFetch returned, for each partition, the offset of the
//!   last commit acknowledged before it (or of a commit its crashed predecessor left open).

use ksim::history::{pairs, HistoryEntry};
use ksim::run::run;
use ksim::scenario::load;
use ksim_model::event::{Event, OpType, OpValue};
use ksim_model::group_coordinator::partition_for;
use ksim_model::types::{BrokerId, NodeId, Offset, TopicPartition};
use std::collections::BTreeMap;
use std::path::Path;

const SCENARIO: &str = "scenarios/offset-commits-survive-coordinator-failover.toml";
const GROUP: &str = "orders";

/// The acknowledged commits, in acknowledgement order: (completion entry, coordinator, offsets).
fn acked_commits(
    history: &[HistoryEntry],
) -> Vec<(&HistoryEntry, BrokerId, Vec<(TopicPartition, Offset)>)> {
    history
        .iter()
        .filter(|e| e.op.op_type == OpType::Ok)
        .filter_map(|e| match &e.op.value {
            OpValue::Commit {
                group,
                offsets,
                coordinator: Some(b),
                ..
            } if group == GROUP => Some((
                e,
                *b,
                offsets.iter().map(|o| (o.tp.clone(), o.offset)).collect(),
            )),
            _ => None,
        })
        .collect()
}

#[test]
fn acknowledged_commits_survive_a_coordinator_failover_and_a_consumer_restart() {
    let sc = load(Path::new(SCENARIO)).unwrap_or_else(|e| panic!("{e}"));
    let tp = partition_for(GROUP, sc.cluster.broker_config.offsets_topic_num_partitions);
    assert_eq!(tp, TopicPartition::new("__consumer_offsets", 31));
    for &seed in &sc.seeds {
        let r = run(&sc, seed);
        assert!(r.checks.is_ok(), "seed {seed}: {:?}", r.checks.violations);
        assert!(r.missed.is_empty(), "seed {seed}: missed {:?}", r.missed);
        let events = &r.output.events;
        let history = &r.output.history;

        // The group's partition changed leader once the first leader was killed.
        let leaders: Vec<(u64, BrokerId)> = events
            .iter()
            .filter_map(|e| match &e.event {
                Event::BecameLeader { tp: t, broker, .. } if *t == tp => Some((e.time_ms, *broker)),
                _ => None,
            })
            .collect();
        let (_, first) = leaders[0];
        let (failover_ms, second) = *leaders
            .iter()
            .find(|(_, b)| *b != first)
            .unwrap_or_else(|| panic!("seed {seed}: {tp} never changed leader: {leaders:?}"));
        assert!(
            failover_ms > 8_000,
            "seed {seed}: failover at {failover_ms}"
        );

        // Commits were appended under each leader: its high watermark moved under both.
        let hw_by = |b: BrokerId| {
            events.iter().any(|e| {
                matches!(&e.event, Event::HighWatermarkChanged { tp: t, broker, high_watermark, .. }
                    if *t == tp && *broker == b && high_watermark.0 > 0)
            })
        };
        assert!(
            hw_by(first) && hw_by(second),
            "seed {seed}: commits under {first} and {second}"
        );
        // The new leader loaded the commits acknowledged before the failover.
        let loaded = events
            .iter()
            .find_map(|e| match &e.event {
                Event::CoordinatorLoaded {
                    tp: t,
                    broker,
                    records,
                    ..
                } if *t == tp && *broker == second => Some(*records),
                _ => None,
            })
            .unwrap_or_else(|| panic!("seed {seed}: {second} never loaded {tp}"));
        assert!(loaded > 0, "seed {seed}: {second} loaded no commit");

        // Acknowledged commits, before and after the failover, each by the leader of its time.
        let acked = acked_commits(history);
        let before: Vec<_> = acked.iter().filter(|(e, ..)| e.time_ms < 8_000).collect();
        let after: Vec<_> = acked
            .iter()
            .filter(|(e, ..)| e.time_ms > failover_ms)
            .collect();
        assert!(!before.is_empty() && !after.is_empty(), "seed {seed}");
        assert!(before.iter().all(|(_, b, _)| *b == first), "seed {seed}");
        assert!(after.iter().all(|(_, b, _)| *b == second), "seed {seed}");

        // The restarted consumer read back the last acknowledged commit of each partition.
        let all = pairs(history);
        let fetch = all
            .iter()
            .find(|p| {
                p.invoke.process == NodeId::Consumer(0)
                    && p.invoke.time_ms >= 18_000
                    && matches!(p.invoke.op.value, OpValue::OffsetFetch { .. })
            })
            .unwrap_or_else(|| panic!("seed {seed}: no offset fetch after the restart"));
        let done = fetch.completion.expect("answered");
        assert_eq!(done.op.op_type, OpType::Ok);
        let OpValue::OffsetFetch { offsets, .. } = &done.op.value else {
            unreachable!()
        };
        let mut last: BTreeMap<TopicPartition, Offset> = BTreeMap::new();
        for (e, _, o) in &acked {
            if e.index < fetch.invoke.index {
                last.extend(o.iter().cloned());
            }
        }
        // Commits the crashed process left without an answer may have landed too.
        let open: Vec<(TopicPartition, Offset)> = all
            .iter()
            .filter(|p| p.completion.is_none() && p.invoke.index < fetch.invoke.index)
            .filter_map(|p| match &p.invoke.op.value {
                OpValue::Commit { offsets, .. } => Some(offsets.clone()),
                _ => None,
            })
            .flatten()
            .map(|o| (o.tp, o.offset))
            .collect();
        assert_eq!(offsets.len(), 2, "seed {seed}: {offsets:?}");
        for o in offsets {
            let got = o.committed.expect("a committed offset");
            let want = last[&o.tp];
            assert!(
                got == want || open.contains(&(o.tp.clone(), got)),
                "seed {seed}: {} read back {got}, last acknowledged {want}",
                o.tp
            );
        }
        // The restarted consumer resumed there: its first poll of each partition starts at the
        // offset it read back.
        for o in offsets {
            let first_poll = history
                .iter()
                .filter(|e| e.index > done.index && e.op.op_type == OpType::Ok)
                .find_map(|e| match &e.op.value {
                    OpValue::Poll { records } => records.iter().find(|r| r.tp == o.tp),
                    _ => None,
                });
            if let Some(rec) = first_poll {
                assert_eq!(Some(rec.offset), o.committed, "seed {seed}: {}", o.tp);
            }
        }
    }
}
