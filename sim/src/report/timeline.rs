//! Section 4 of `report.md`, *the timeline*: faults, controller and leader elections, ISR
//! changes, truncations, log recoveries and halts in time order; high-watermark moves are only
//! counted, per partition, because there are thousands.

use super::*;

// ---------------------------------------------------------------------------------------------
// 4. Timeline
// ---------------------------------------------------------------------------------------------

/// One row of the timeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimelineRow {
    pub time_ms: u64,
    pub node: String,
    pub text: String,
}

/// Whether an event belongs in the timeline, and whether it is one that may be dropped first
/// when the timeline is too long (`Some(false)`: essential, `Some(true)`: minor).
pub(super) fn timeline_class(e: &Event) -> Option<bool> {
    match e {
        Event::Fault { .. }
        | Event::HealPhaseExtended { .. }
        | Event::GroupAssignmentCompleted { .. }
        | Event::GroupMemberRemoved { .. }
        | Event::PartitionsLost { .. }
        | Event::TxnMarkerWritten { .. }
        | Event::ControllerElected { .. }
        | Event::PartitionsCreated { .. }
        | Event::TopicDeleted { .. }
        | Event::BecameLeader { .. }
        | Event::Truncated { .. }
        | Event::LogRecovered { .. }
        | Event::Halted { .. }
        | Event::ConsumerPositionReset { .. }
        | Event::ConsumerLogTruncation { .. }
        | Event::ConsumerError { .. }
        | Event::InterceptorFailed { .. }
        | Event::FollowerAppendFailed { .. } => Some(false),
        Event::PartitionStateChanged { reason, .. } => Some(matches!(
            reason.as_str(),
            "isr-change" | "broker-failed" | "new-partition" | "new-topic"
        )),
        Event::ControllerResigned { .. }
        | Event::ControllerRequestRejected { .. }
        | Event::ReplicaDeleted { .. }
        | Event::CoordinatorLoaded { .. }
        | Event::CoordinatorUnloaded { .. }
        | Event::CoordinatorUnavailable { .. }
        | Event::CoordinatorDiscovered { .. }
        | Event::CoordinatorMarkedUnknown { .. }
        | Event::OffsetCommitFailed { .. }
        | Event::GroupStateChanged { .. }
        | Event::PartitionsAssigned { .. }
        | Event::PartitionsRevoked { .. }
        | Event::IsrChanged { .. }
        | Event::ZkSessionExpired { .. }
        | Event::BrokerStarted { .. } => Some(true),
        Event::BrokerRegistered { .. }
        | Event::ControllerRequestAccepted { .. }
        | Event::BecameFollower { .. }
        | Event::HighWatermarkChanged { .. }
        | Event::ProduceAppended { .. }
        | Event::ProduceAcked { .. }
        | Event::LogSegmentRolled { .. }
        | Event::LogCleaned { .. }
        | Event::ControllerEpochIncremented { .. }
        | Event::ProduceRejected { .. }
        | Event::LastStableOffsetChanged { .. }
        | Event::DelayedFetchIsolationIgnored { .. } => None,
        Event::TxnStateChanged { .. }
        | Event::EndTxnAnswered { .. }
        | Event::RequestTimedOut { .. } => Some(true),
        Event::LogSegmentsDeleted { .. } | Event::LogStartOffsetAdvanced { .. } => Some(true),
    }
}

/// The timeline: faults, controller changes, leader elections and changes, ISR changes,
/// truncations, log recoveries and halts, in time order (stable). When there are more than
/// `cap` rows, minor rows (ISR changes, session expiries, starts) go first, then the latest
/// rows; returns the rows and how many were left out.
///
/// Partitions of `__consumer_offsets` that never stored anything (see
/// [`idle_internal_partitions`]) are left out altogether: a consumer group's first
/// FindCoordinator creates all 50, and their creation and elections would bury the story.
pub fn timeline(events: &[EventRecord], cap: usize) -> (Vec<TimelineRow>, usize) {
    let idle = idle_internal_partitions(events);
    let mut picked: Vec<(&EventRecord, bool)> = events
        .iter()
        .filter(|r| internal_partition_of(&r.event).is_none_or(|tp| !idle.contains(tp)))
        .filter_map(|r| timeline_class(&r.event).map(|minor| (r, minor)))
        .collect();
    picked.sort_by_key(|(r, _)| r.time_ms);
    let total = picked.len();
    if total > cap {
        let essential = picked.iter().filter(|(_, minor)| !minor).count();
        if essential <= cap {
            let mut minor_room = cap - essential;
            picked.retain(|(_, minor)| {
                if !minor {
                    return true;
                }
                if minor_room > 0 {
                    minor_room -= 1;
                    true
                } else {
                    false
                }
            });
        } else {
            picked.retain(|(_, minor)| !minor);
            picked.truncate(cap);
        }
    }
    let rows: Vec<TimelineRow> = picked
        .into_iter()
        .map(|(r, _)| TimelineRow {
            time_ms: r.time_ms,
            node: r.node.to_string(),
            text: describe_event(&r.event),
        })
        .collect();
    let omitted = total - rows.len();
    debug_assert!(rows.len() <= cap);
    (rows, omitted)
}

/// The partition of `__consumer_offsets` an event is about, if it is one.
fn internal_partition_of(e: &Event) -> Option<&TopicPartition> {
    let tp = match e {
        Event::PartitionStateChanged { tp, .. }
        | Event::BecameLeader { tp, .. }
        | Event::BecameFollower { tp, .. }
        | Event::IsrChanged { tp, .. }
        | Event::CoordinatorLoaded { tp, .. }
        | Event::CoordinatorUnloaded { tp, .. } => tp,
        _ => return None,
    };
    (tp.topic == ksim_model::group_coordinator::CONSUMER_OFFSETS_TOPIC).then_some(tp)
}

/// The partitions of `__consumer_offsets` whose high watermark never left 0: no group's offsets
/// were ever committed to them.
pub fn idle_internal_partitions(events: &[EventRecord]) -> BTreeSet<TopicPartition> {
    let mut all = BTreeSet::new();
    let mut used = BTreeSet::new();
    for r in events {
        if let Some(tp) = internal_partition_of(&r.event) {
            all.insert(tp.clone());
        }
        if let Event::HighWatermarkChanged {
            tp, high_watermark, ..
        } = &r.event
        {
            if high_watermark.0 > 0 {
                used.insert(tp.clone());
            }
        }
    }
    all.retain(|tp| !used.contains(tp));
    all
}

/// High-watermark movement of one partition: how many times any leader moved it, and the last
/// value with who set it in which epoch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HwSummary {
    pub changes: u64,
    pub final_high_watermark: Offset,
    pub by: BrokerId,
    pub leader_epoch: i32,
    pub time_ms: u64,
}

/// Per partition, the count of `HighWatermarkChanged` events and the last one.
pub fn hw_summary(events: &[EventRecord]) -> BTreeMap<TopicPartition, HwSummary> {
    let mut out: BTreeMap<TopicPartition, HwSummary> = BTreeMap::new();
    for r in events {
        if let Event::HighWatermarkChanged {
            tp,
            broker,
            leader_epoch,
            high_watermark,
        } = &r.event
        {
            let s = out.entry(tp.clone()).or_insert(HwSummary {
                changes: 0,
                final_high_watermark: *high_watermark,
                by: *broker,
                leader_epoch: leader_epoch.0,
                time_ms: r.time_ms,
            });
            s.changes += 1;
            s.final_high_watermark = *high_watermark;
            s.by = *broker;
            s.leader_epoch = leader_epoch.0;
            s.time_ms = r.time_ms;
        }
    }
    out
}

pub(super) fn write_timeline(out: &mut String, run: &RunResult) {
    out.push_str("## Timeline\n\n");
    let (rows, omitted) = timeline(&run.output.events, TIMELINE_ROWS_MAX);
    out.push_str(
        "Faults, controller elections, leader elections and changes, ISR changes, truncations, \
         log recoveries and halts, by simulated time. Produce requests and high-watermark moves \
         are too many to list; high watermarks are summarised below the table.\n\n",
    );
    if rows.is_empty() {
        out.push_str("Nothing of that kind happened.\n\n");
    } else {
        out.push_str("| t (ms) | node | what happened |\n|---|---|---|\n");
        for r in &rows {
            let _ = writeln!(out, "| {} | {} | {} |", r.time_ms, r.node, cell(&r.text));
        }
        out.push('\n');
    }
    if omitted > 0 {
        let _ = writeln!(
            out,
            "The timeline is capped at {TIMELINE_ROWS_MAX} rows: {omitted} more were left out \
             (minor rows such as ISR changes and broker starts first). `events.jsonl` has \
             every event.\n"
        );
    }
    let idle = idle_internal_partitions(&run.output.events);
    if !idle.is_empty() {
        let _ = writeln!(
            out,
            "Not listed: the creation, elections and loads of the {} partitions of \
             `__consumer_offsets` that never stored a commit (only the group's partition \
             matters to its offsets).\n",
            idle.len()
        );
    }

    let hw = hw_summary(&run.output.events);
    out.push_str("High watermarks and final logs per partition:\n\n");
    out.push_str(
        "| partition | HW moves | last HW (by, epoch, t ms) | final log end offset per replica |\n|---|---|---|---|\n",
    );
    for (tp, replicas) in &run.output.assignment {
        let (moves, last) = match hw.get(tp) {
            Some(s) => (
                s.changes.to_string(),
                format!(
                    "{} (broker-{}, epoch {}, t={})",
                    s.final_high_watermark, s.by, s.leader_epoch, s.time_ms
                ),
            ),
            None => ("0".to_string(), "—".to_string()),
        };
        let ends: Vec<String> = replicas
            .iter()
            .map(|b| {
                let node = NodeId::Broker(*b);
                match run.output.final_logs.get(&(node, tp.clone())) {
                    Some(log) => format!("{node}: {}", log.last().map_or(0, |(o, _)| o.0 + 1)),
                    None => format!("{node}: no log"),
                }
            })
            .collect();
        let _ = writeln!(out, "| {tp} | {moves} | {last} | {} |", ends.join(", "));
    }
    out.push('\n');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::test_support::*;
    use ksim_model::types::LeaderEpoch;

    #[test]
    fn timeline_keeps_faults_and_leadership_and_drops_hw_and_produce() {
        let (rows, omitted) = timeline(&failover_events(), 200);
        assert_eq!(omitted, 0);
        let texts: Vec<&str> = rows.iter().map(|r| r.text.as_str()).collect();
        assert_eq!(rows.len(), 8, "{texts:#?}");
        assert!(texts.iter().all(|t| !t.contains("moved the HW")));
        assert!(texts.iter().all(|t| !t.contains("appended")));
        assert!(texts[1].contains("killed broker-2"), "{}", texts[1]);
        assert!(texts[2].contains("controller elected broker-0 leader of events-1 in epoch 4"));
        assert!(texts[6].contains("truncated events-1 from 18 to 15, removing 3 records"));
        assert!(texts[7].contains("{zk, broker-0} / {broker-1, broker-2}"));
        // Time order, even when the log is not.
        let mut shuffled = failover_events();
        shuffled.swap(0, 9);
        let (rows2, _) = timeline(&shuffled, 200);
        assert!(rows2.windows(2).all(|w| w[0].time_ms <= w[1].time_ms));
    }

    #[test]
    fn timeline_cap_drops_minor_rows_first_and_counts_them() {
        let mut events = Vec::new();
        for i in 0..10 {
            events.push(fault(i * 10, "kill", &["broker-1"]));
            events.push(rec(
                i * 10 + 1,
                broker(1),
                Event::BrokerStarted { broker: b(1) },
            ));
        }
        let (rows, omitted) = timeline(&events, 12);
        assert_eq!(rows.len(), 12);
        assert_eq!(omitted, 8);
        assert_eq!(
            rows.iter().filter(|r| r.text.contains("killed")).count(),
            10
        );
        let (rows, omitted) = timeline(&events, 5);
        assert_eq!((rows.len(), omitted), (5, 15));
        assert!(rows.iter().all(|r| r.text.contains("killed")));
    }

    #[test]
    fn hw_summary_counts_moves_and_keeps_the_last() {
        let mut events = failover_events();
        events.push(rec(
            9000,
            broker(0),
            Event::HighWatermarkChanged {
                tp: tp1(),
                broker: b(0),
                leader_epoch: LeaderEpoch(4),
                high_watermark: Offset(40),
            },
        ));
        let hw = hw_summary(&events);
        let s = &hw[&tp1()];
        assert_eq!(s.changes, 2);
        assert_eq!(s.final_high_watermark, Offset(40));
        assert_eq!((s.by, s.leader_epoch, s.time_ms), (b(0), 4, 9000));
        assert!(hw_summary(&[]).is_empty());
    }
}
