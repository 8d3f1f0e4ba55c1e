//! *What happened to it*, the end of section 3 of `report.md`: for each partition an anomaly
//! sits in, the story of the offending offset reconstructed from the event log (who appended it
//! as leader in which epoch with which ISR, who acknowledged it, which faults hit, who became
//! leader next and with what log end offset, who truncated it, what every replica holds at the
//! end).

use super::*;

pub(super) fn write_what_happened(out: &mut String, run: &RunResult) {
    let mut by_tp: BTreeMap<TopicPartition, Vec<Focus>> = BTreeMap::new();
    for v in &run.checks.violations {
        for f in focus_points(v) {
            by_tp.entry(f.tp.clone()).or_default().push(f);
        }
    }
    if by_tp.is_empty() {
        return;
    }
    out.push_str("## What happened to it\n\n");
    out.push_str(
        "For each partition an anomaly points at, the story of the first offending offset, \
         rebuilt from the brokers' and controller's event log (`events.jsonl`).\n\n",
    );
    let acks_of = client_acks(&run.scenario);
    let shown = by_tp.len().min(STORY_PARTITIONS_MAX);
    for (tp, foci) in by_tp.iter().take(STORY_PARTITIONS_MAX) {
        let _ = writeln!(out, "### {tp}\n");
        let checks: BTreeSet<&str> = foci.iter().map(|f| f.check.as_str()).collect();
        let offsets: BTreeSet<Offset> = foci.iter().filter_map(|f| f.offset).collect();
        let replicas = run.output.assignment.get(tp);
        let _ = write!(
            out,
            "Anomalies reported here by {}",
            checks
                .iter()
                .map(|c| format!("`{c}`"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        match (offsets.first(), offsets.last()) {
            (Some(lo), Some(hi)) if lo == hi => {
                let _ = write!(out, " at offset {lo}");
            }
            (Some(lo), Some(hi)) => {
                let _ = write!(
                    out,
                    " at {} distinct offsets between {lo} and {hi} (of those listed in the details)",
                    offsets.len()
                );
            }
            _ => {}
        }
        if let Some(r) = replicas {
            let _ = write!(out, "; replicas {}", broker_list(r));
        }
        out.push_str(".\n\n");

        // Narrate the lowest offset, and the highest one too when it belongs to another
        // leader epoch (a second incident).
        let mut narrate: Vec<Offset> = offsets.first().copied().into_iter().collect();
        if let (Some(lo), Some(hi)) = (offsets.first(), offsets.last()) {
            let epoch = |o: Offset| first_append(&run.output.events, tp, o).map(|(_, e)| e);
            if hi != lo && epoch(*hi) != epoch(*lo) {
                narrate.push(*hi);
            }
        }
        for o in &narrate {
            let story = offset_story(
                &run.output.events,
                &run.output.history,
                &run.output.final_logs,
                replicas.map(Vec::as_slice).unwrap_or(&[]),
                &acks_of,
                tp,
                *o,
            );
            let _ = writeln!(out, "**Offset {o} of {tp}:**\n");
            for line in &story.summary {
                let _ = writeln!(out, "- {line}");
            }
            out.push_str("\nThe events around it (the ones the story names in bold):\n\n");
            write_story_events(out, &story.events, story.omitted);
        }
        if narrate.is_empty()
            && checks.iter().all(|c| *c == "at-least-once")
            && write_at_least_once_story(out, run, tp)
        {
            // A group's commit order, not the brokers: told from the clients' side.
        } else if narrate.is_empty() {
            // Internal invariants point at a time, not an offset.
            let t = foci.iter().filter_map(|f| f.time_ms).min().unwrap_or(0);
            let (events, omitted) = window_events(&run.output.events, tp, t);
            let _ = writeln!(out, "Events of {tp} and of the cluster around t={t} ms:\n");
            write_story_events(out, &events, omitted);
        }
    }
    if by_tp.len() > shown {
        let _ = writeln!(
            out,
            "({} more partitions have anomalies; see the verdict above and `summary.json`.)\n",
            by_tp.len() - shown
        );
    }
}

pub(super) fn write_story_events(out: &mut String, events: &[StoryLine], omitted: usize) {
    if events.is_empty() {
        return;
    }
    out.push_str("| t (ms) | node | what happened |\n|---|---|---|\n");
    for e in events {
        let text = if e.key {
            format!("**{}**", cell(&e.text))
        } else {
            cell(&e.text)
        };
        let _ = writeln!(out, "| {} | {} | {text} |", e.time_ms, e.node);
    }
    if omitted > 0 {
        let _ = writeln!(
            out,
            "\n({omitted} more events in this window are left out; `events.jsonl` has them all.)"
        );
    }
    out.push('\n');
}

/// The `acks` each producer client used, by node.
pub(super) fn client_acks(sc: &Scenario) -> BTreeMap<NodeId, Acks> {
    let mut out = BTreeMap::new();
    let mut n = 0;
    for p in &sc.producers {
        for _ in 0..p.count {
            out.insert(NodeId::Producer(n), p.config.acks);
            n += 1;
        }
    }
    out
}

/// One line of a story: when, who, what; `key` lines are the ones the summary names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoryLine {
    pub time_ms: u64,
    pub node: String,
    pub text: String,
    pub key: bool,
}

/// The story of one offset: summary sentences and the events around it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetStory {
    pub summary: Vec<String>,
    pub events: Vec<StoryLine>,
    pub omitted: usize,
}

pub(super) fn covers(base: Offset, last: Offset, o: Offset) -> bool {
    base <= o && o <= last
}

/// The (broker, leader epoch) of the first append covering `o`.
pub(super) fn first_append(
    events: &[EventRecord],
    tp: &TopicPartition,
    o: Offset,
) -> Option<(BrokerId, i32)> {
    events.iter().find_map(|r| match &r.event {
        Event::ProduceAppended {
            tp: t,
            broker,
            leader_epoch,
            base_offset,
            last_offset,
            ..
        } if t == tp && covers(*base_offset, *last_offset, o) => Some((*broker, leader_epoch.0)),
        _ => None,
    })
}

/// Whether an event concerns the whole cluster (shown in every story's window).
pub(super) fn is_cluster_event(e: &Event) -> bool {
    matches!(
        e,
        Event::Fault { .. }
            | Event::ControllerElected { .. }
            | Event::ControllerResigned { .. }
            | Event::ZkSessionExpired { .. }
            | Event::BrokerStarted { .. }
            | Event::Halted { .. }
    )
}

/// The partition an event is about, if any.
pub(super) fn event_tp(e: &Event) -> Option<&TopicPartition> {
    match e {
        Event::PartitionStateChanged { tp, .. }
        | Event::BecameLeader { tp, .. }
        | Event::BecameFollower { tp, .. }
        | Event::IsrChanged { tp, .. }
        | Event::HighWatermarkChanged { tp, .. }
        | Event::Truncated { tp, .. }
        | Event::FollowerAppendFailed { tp, .. }
        | Event::LogRecovered { tp, .. }
        | Event::ProduceAppended { tp, .. }
        | Event::ProduceAcked { tp, .. } => Some(tp),
        _ => None,
    }
}

/// Reconstructs what happened to offset `o` of `tp`: who appended it (leader, epoch, ISR),
/// who acknowledged it and how, whether the high watermark passed it, which faults hit the
/// leader, who led next and with what log end offset, who truncated it, whether the offset
/// was reused, who led the partition last, and what every replica holds there at the end.
/// The summary sentences are in time order; the final state comes last.
pub fn offset_story(
    events: &[EventRecord],
    history: &[HistoryEntry],
    final_logs: &BTreeMap<(NodeId, TopicPartition), Vec<(Offset, u64)>>,
    replicas: &[BrokerId],
    acks_of: &BTreeMap<NodeId, Acks>,
    tp: &TopicPartition,
    o: Offset,
) -> OffsetStory {
    // (time, sentence), sorted by time (stable) at the end.
    let mut facts: Vec<(u64, String)> = Vec::new();
    // Indexes (into `events`) of the lines the summary relies on.
    let mut key: BTreeSet<usize> = BTreeSet::new();
    let select = |f: &dyn Fn(&Event) -> bool| -> Vec<usize> {
        (0..events.len()).filter(|&i| f(&events[i].event)).collect()
    };
    let appends = select(&|e| {
        matches!(e, Event::ProduceAppended { tp: t, base_offset, last_offset, .. }
            if t == tp && covers(*base_offset, *last_offset, o))
    });
    let acked = select(&|e| {
        matches!(e, Event::ProduceAcked { tp: t, base_offset, last_offset, .. }
            if t == tp && covers(*base_offset, *last_offset, o))
    });
    let truncations = select(&|e| {
        matches!(e, Event::Truncated { tp: t, from_offset, to_offset, .. }
            if t == tp && *to_offset <= o && o < *from_offset)
    });
    let leaders = select(&|e| matches!(e, Event::BecameLeader { tp: t, .. } if t == tp));

    // What the clients were told about this offset.
    let mut client_acks: Vec<(u64, NodeId, u64)> = Vec::new();
    let mut first_reads: BTreeMap<u64, (u64, NodeId)> = BTreeMap::new();
    for h in history.iter().filter(|h| h.op.op_type == OpType::Ok) {
        match &h.op.value {
            OpValue::Send {
                tp: t,
                value,
                offset: Some(off),
                ..
            } if t == tp && *off == o => client_acks.push((h.time_ms, h.process, *value)),
            OpValue::Poll { records } => {
                for r in records.iter().filter(|r| &r.tp == tp && r.offset == o) {
                    first_reads.entry(r.value).or_insert((h.time_ms, h.process));
                }
            }
            _ => {}
        }
    }

    let t_first = appends
        .first()
        .map(|&i| events[i].time_ms)
        .or_else(|| client_acks.first().map(|a| a.0))
        .or_else(|| truncations.first().map(|&i| events[i].time_ms))
        .unwrap_or(0);

    // The append(s).
    let mut appender: Option<(BrokerId, i32, u64)> = None;
    for &i in &appends {
        key.insert(i);
        let Event::ProduceAppended {
            broker,
            leader_epoch,
            base_offset,
            last_offset,
            isr,
            ..
        } = &events[i].event
        else {
            continue;
        };
        let t = events[i].time_ms;
        let batch = if base_offset == last_offset {
            String::new()
        } else {
            format!(" (in a batch of offsets {base_offset}..{last_offset})")
        };
        let isr = broker_list(isr);
        let sentence = if appender.is_none() {
            appender = Some((*broker, leader_epoch.0, t));
            format!(
                "t={t} ms: broker-{broker}, leader in epoch {leader_epoch} with ISR {isr}, appended offset {o} of {tp}{batch}."
            )
        } else {
            format!(
                "t={t} ms: broker-{broker}, leader in epoch {leader_epoch} with ISR {isr}, appended a new record at offset {o}{batch}: the offset was reused."
            )
        };
        facts.push((t, sentence));
    }
    if appends.is_empty() {
        facts.push((
            0,
            format!("No leader logged an append of offset {o} of {tp}."),
        ));
    }
    // The BecameLeader that made the appender leader.
    if let Some((b, e, t)) = appender {
        if let Some(&i) = leaders.iter().rev().find(|&&i| {
            events[i].time_ms <= t
                && matches!(&events[i].event, Event::BecameLeader { broker, leader_epoch, .. }
                    if *broker == b && leader_epoch.0 == e)
        }) {
            key.insert(i);
        }
    }

    // The acknowledgements, broker side and client side.
    for &i in &acked {
        key.insert(i);
        if let Event::ProduceAcked {
            broker,
            leader_epoch,
            acks,
            error,
            ..
        } = &events[i].event
        {
            let how = if *error == ErrorCode::None {
                "successfully".to_string()
            } else {
                format!("with error {}", error.kafka_name())
            };
            facts.push((
                events[i].time_ms,
                format!(
                    "t={} ms: broker-{broker} (epoch {leader_epoch}) answered the produce with acks={acks} {how}.",
                    events[i].time_ms
                ),
            ));
        }
    }
    for (t, p, v) in &client_acks {
        let note = match acks_of.get(p) {
            Some(Acks::All) | None => String::new(),
            Some(a) => format!(
                " It used acks={}: the leader answers as soon as the record is in its own log, \
                 before any follower has copied it.",
                acks_name(*a)
            ),
        };
        facts.push((
            *t,
            format!("t={t} ms: {p} was told that its value {v} is at offset {o}.{note}"),
        ));
    }
    if client_acks.is_empty() && !appends.is_empty() {
        facts.push((
            t_first,
            format!(
                "No producer was told that a record is at offset {o}: its answer was lost or \
                 timed out (a producer with retries then sends the record again)."
            ),
        ));
    }
    for (v, (t, c)) in &first_reads {
        facts.push((*t, format!("t={t} ms: {c} read value {v} at offset {o}.")));
    }

    // Did the high watermark pass it while the appender led?
    if let Some((b, e, t)) = appender {
        let passed = events.iter().position(|r| {
            r.time_ms >= t
                && matches!(&r.event, Event::HighWatermarkChanged { tp: x, broker, leader_epoch, high_watermark }
                    if x == tp && *broker == b && leader_epoch.0 == e && *high_watermark > o)
        });
        match passed {
            Some(i) => {
                key.insert(i);
                facts.push((
                    events[i].time_ms,
                    format!(
                        "t={} ms: the high watermark passed offset {o}: every ISR member had the record (it was committed).",
                        events[i].time_ms
                    ),
                ));
            }
            None => {
                let last_hw = events.iter().rev().find_map(|r| match &r.event {
                    Event::HighWatermarkChanged {
                        tp: x,
                        broker,
                        leader_epoch,
                        high_watermark,
                    } if x == tp && *broker == b && leader_epoch.0 == e => Some(*high_watermark),
                    _ => None,
                });
                facts.push((
                    t,
                    format!(
                        "The high watermark of broker-{b} in epoch {e} never passed offset {o}{}: \
                         the leader never learned that a follower had the record, so it was never \
                         committed.",
                        last_hw
                            .map(|h| format!(
                                " (its last value was {h}: offsets below {h} were committed)"
                            ))
                            .unwrap_or_default()
                    ),
                ));
            }
        }
    }

    // Faults that hit the appending leader, then the next leader and the gap between.
    let next_leader = appender.and_then(|(b, e, t)| {
        leaders.iter().copied().find(|&i| {
            events[i].time_ms >= t
                && matches!(&events[i].event, Event::BecameLeader { broker, leader_epoch, .. }
                    if *broker != b || leader_epoch.0 != e)
        })
    });
    if let Some((b, _, t)) = appender {
        let until = next_leader.map_or(u64::MAX, |i| events[i].time_ms);
        let hits = faults_on(events, b, t, until);
        for &i in hits.iter().take(3) {
            key.insert(i);
            facts.push((
                events[i].time_ms,
                format!(
                    "t={} ms: the nemesis {}.",
                    events[i].time_ms,
                    describe_fault_event(&events[i].event)
                ),
            ));
        }
        let crash = hits
            .iter()
            .copied()
            .find(|&i| is_stop_fault(&events[i].event));
        if let (Some(c), Some(n)) = (crash, next_leader) {
            let gap = events[n].time_ms.saturating_sub(events[c].time_ms);
            if gap >= 1_000 {
                facts.push((
                    events[n].time_ms,
                    format!(
                        "For {gap} ms after broker-{b} stopped, {tp} had no working leader: the \
                         controller elects a new one only once it notices the broker is gone."
                    ),
                ));
            }
        }
    }
    if let Some((_, _, t)) = appender {
        let until = next_leader.map_or(u64::MAX, |i| events[i].time_ms);
        for (i, r) in events.iter().enumerate() {
            if r.time_ms < t || r.time_ms > until {
                continue;
            }
            let Event::PartitionStateChanged {
                tp: x,
                leader,
                leader_epoch,
                reason,
                ..
            } = &r.event
            else {
                continue;
            };
            if x != tp || reason == "isr-change" {
                continue;
            }
            // The decision behind the next leader is told with it.
            if next_leader.is_some_and(|n| {
                matches!(&events[n].event, Event::BecameLeader { leader_epoch: le, .. } if le == leader_epoch)
            }) {
                continue;
            }
            key.insert(i);
            let down = match leader {
                Some(l) if broker_down_at(events, *l, r.time_ms) => {
                    format!(", but broker-{l} was down at the time and never took it up")
                }
                _ => String::new(),
            };
            facts.push((
                r.time_ms,
                format!("t={} ms: {}{down}.", r.time_ms, describe_event(&r.event)),
            ));
        }
    }
    if let Some(i) = next_leader {
        key.insert(i);
        if let Event::BecameLeader {
            broker,
            leader_epoch,
            log_end_offset,
            isr,
            ..
        } = &events[i].event
        {
            let decision = events[..i].iter().rposition(|r| {
                matches!(&r.event, Event::PartitionStateChanged { tp: x, leader_epoch: le, .. }
                    if x == tp && le == leader_epoch)
            });
            let why = decision
                .map(|d| match &events[d].event {
                    Event::PartitionStateChanged { reason, .. } => {
                        key.insert(d);
                        format!(
                            " (the controller's `{reason}` at t={} ms)",
                            events[d].time_ms
                        )
                    }
                    _ => String::new(),
                })
                .unwrap_or_default();
            let had = if *log_end_offset <= o {
                format!(
                    ": its log ended before offset {o}, so the new leader did not have the record"
                )
            } else {
                format!("; its log reached past offset {o}")
            };
            facts.push((
                events[i].time_ms,
                format!(
                    "t={} ms: broker-{broker} became leader in epoch {leader_epoch}{why} with log end offset {log_end_offset} and ISR {}{had}.",
                    events[i].time_ms,
                    broker_list(isr)
                ),
            ));
        }
    } else if let Some((b, e, _)) = appender {
        facts.push((
            u64::MAX - 1,
            format!("No broker other than broker-{b} in epoch {e} led {tp} afterwards."),
        ));
    }

    // Truncations that removed it.
    for &i in truncations.iter().take(4) {
        key.insert(i);
        if let Event::Truncated {
            broker,
            from_offset,
            to_offset,
            reason,
            ..
        } = &events[i].event
        {
            facts.push((
                events[i].time_ms,
                format!(
                    "t={} ms: broker-{broker} truncated {tp} from {from_offset} to {to_offset}, removing offset {o} ({}).",
                    events[i].time_ms,
                    truncation_reason(reason)
                ),
            ));
        }
    }
    if truncations.len() > 4 {
        let t = events[truncations[4]].time_ms;
        facts.push((
            t,
            format!(
                "{} more truncations removed it later.",
                truncations.len() - 4
            ),
        ));
    }

    // The last leader, if it stopped and never led again.
    if let Some(&last) = leaders.last() {
        if let Event::BecameLeader {
            broker: b,
            leader_epoch: e,
            ..
        } = &events[last].event
        {
            let t = events[last].time_ms;
            let stops: Vec<usize> = faults_on(events, *b, t, u64::MAX)
                .into_iter()
                .filter(|&i| is_stop_fault(&events[i].event))
                .collect();
            if let Some(&s) = stops.first() {
                facts.push((
                    u64::MAX - 1,
                    format!(
                        "The last broker to become leader of {tp} was broker-{b} (epoch {e}, at t={t} ms). It was stopped at t={} ms, and no broker logged becoming leader after that: as far as the event log shows, the partition had no working leader to the end of the run, so records above its last high watermark could not be read.",
                        events[s].time_ms
                    ),
                ));
            }
        }
    }

    // The end state.
    let mut holds = Vec::new();
    for b in replicas {
        let node = NodeId::Broker(*b);
        let text = match final_logs.get(&(node, tp.clone())) {
            None => format!("{node} has no log for it"),
            Some(log) => match log.binary_search_by_key(&o, |(off, _)| *off) {
                Ok(k) => format!("{node} holds value {}", log[k].1),
                Err(_) => {
                    let end = log.last().map_or(0, |(off, _)| off.0 + 1);
                    format!("{node} has no record there (its log ends at {end})")
                }
            },
        };
        holds.push(text);
    }
    if !holds.is_empty() {
        facts.push((
            u64::MAX,
            format!("At the end, at offset {o}: {}.", holds.join("; ")),
        ));
    }
    facts.sort_by_key(|(t, _)| *t);

    // The events around it: from a little before the append to a little after the last fact.
    let last_fact = key
        .iter()
        .map(|&i| events[i].time_ms)
        .max()
        .unwrap_or(t_first);
    let from = t_first.saturating_sub(1_000);
    let to = last_fact.saturating_add(1_000);
    let mut lines = Vec::new();
    for (i, r) in events.iter().enumerate() {
        let in_window = r.time_ms >= from && r.time_ms <= to;
        let relevant = key.contains(&i)
            || (in_window
                && (is_cluster_event(&r.event)
                    || event_tp(&r.event).is_some_and(|t| {
                        t == tp
                            && !matches!(
                                r.event,
                                Event::HighWatermarkChanged { .. }
                                    | Event::ProduceAppended { .. }
                                    | Event::ProduceAcked { .. }
                            )
                    })));
        if relevant {
            lines.push((i, r));
        }
    }
    let (events_out, omitted) = cap_story(lines, &key);
    OffsetStory {
        summary: facts.into_iter().map(|(_, s)| s).collect(),
        events: events_out,
        omitted,
    }
}

/// Indexes of the fault events in `[from_ms, until_ms]` that touched `broker` (heals aside).
pub(super) fn faults_on(
    events: &[EventRecord],
    broker: BrokerId,
    from_ms: u64,
    until_ms: u64,
) -> Vec<usize> {
    let name = NodeId::Broker(broker).to_string();
    (0..events.len())
        .filter(|&i| {
            let r = &events[i];
            r.time_ms >= from_ms
                && r.time_ms <= until_ms
                && matches!(&r.event, Event::Fault { nodes, action, .. }
                    if action != "heal" && nodes.iter().any(|n| n.split(',').any(|x| x == name)))
        })
        .collect()
}

/// Whether the last fault touching `broker` before `t` stopped it (and no restart followed).
pub(super) fn broker_down_at(events: &[EventRecord], broker: BrokerId, t: u64) -> bool {
    let name = NodeId::Broker(broker).to_string();
    let mut down = false;
    for r in events.iter().filter(|r| r.time_ms <= t) {
        if let Event::Fault { action, nodes, .. } = &r.event {
            if nodes.contains(&name) {
                if is_stop_fault(&r.event) {
                    down = true;
                } else if action == "restart" {
                    down = false;
                }
            }
        }
    }
    down
}

/// A fault that stops a process.
pub(super) fn is_stop_fault(e: &Event) -> bool {
    matches!(e, Event::Fault { action, nodes, .. }
        if !nodes.is_empty()
            && matches!(action.as_str(), "kill" | "power-fail" | "disk-loss" | "shutdown"))
}

/// Keeps every key line and as many others (earliest first) as fit in [`STORY_EVENTS_MAX`].
pub(super) fn cap_story(
    lines: Vec<(usize, &EventRecord)>,
    key: &BTreeSet<usize>,
) -> (Vec<StoryLine>, usize) {
    let keys = lines.iter().filter(|(i, _)| key.contains(i)).count();
    let mut room = STORY_EVENTS_MAX.saturating_sub(keys);
    let mut omitted = 0;
    let mut out = Vec::new();
    for (i, r) in lines {
        let is_key = key.contains(&i);
        if !is_key {
            if room == 0 {
                omitted += 1;
                continue;
            }
            room -= 1;
        }
        out.push(StoryLine {
            time_ms: r.time_ms,
            node: r.node.to_string(),
            text: describe_event(&r.event),
            key: is_key,
        });
    }
    (out, omitted)
}

/// Events of `tp` (no HW or produce events) and cluster events from 3 s before to 1 s after `t`.
pub(super) fn window_events(
    events: &[EventRecord],
    tp: &TopicPartition,
    t: u64,
) -> (Vec<StoryLine>, usize) {
    let from = t.saturating_sub(3_000);
    let to = t.saturating_add(1_000);
    let lines: Vec<(usize, &EventRecord)> = events
        .iter()
        .enumerate()
        .filter(|(_, r)| r.time_ms >= from && r.time_ms <= to)
        .filter(|(_, r)| {
            is_cluster_event(&r.event)
                || (event_tp(&r.event) == Some(tp)
                    && !matches!(
                        r.event,
                        Event::HighWatermarkChanged { .. }
                            | Event::ProduceAppended { .. }
                            | Event::ProduceAcked { .. }
                    ))
        })
        .collect();
    cap_story(lines, &BTreeSet::new())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::test_support::*;
    use ksim_model::types::LeaderEpoch;

    #[test]
    fn offset_story_tells_append_ack_failover_and_truncation() {
        let events = failover_events();
        let history = acked_history(&tp1(), 4242, 17, 5232);
        let mut logs = BTreeMap::new();
        logs.insert(
            (broker(0), tp1()),
            vec![(Offset(15), 9), (Offset(16), 10), (Offset(17), 11)],
        );
        logs.insert((broker(2), tp1()), vec![(Offset(14), 8)]);
        let acks: BTreeMap<NodeId, Acks> = [(NodeId::Producer(0), Acks::Leader)].into();
        let story = offset_story(
            &events,
            &history,
            &logs,
            &[b(2), b(0), b(1)],
            &acks,
            &tp1(),
            Offset(17),
        );
        let text = story.summary.join(" ");
        for want in [
            "t=5230 ms: broker-2, leader in epoch 3 with ISR [broker-2], appended offset 17 of events-1 (in a batch of offsets 15..17).",
            "t=5232 ms: producer-0 was told that its value 4242 is at offset 17. It used acks=1",
            "never passed offset 17 (its last value was 16",
            "t=5400 ms: the nemesis killed broker-2",
            "t=5512 ms: broker-0 became leader in epoch 4 (the controller's `leader-election` at t=5500 ms) with log end offset 15",
            "did not have the record",
            "t=6100 ms: broker-2 truncated events-1 from 18 to 15, removing offset 17 (diverging epoch",
            "broker-2 has no record there (its log ends at 15); broker-0 holds value 11; broker-1 has no log for it",
        ] {
            assert!(text.contains(want), "missing {want:?} in:\n{text}");
        }
        // The key facts are marked; the partition far after the last fact is outside the window.
        assert!(story
            .events
            .iter()
            .any(|l| l.key && l.text.contains("truncated")));
        assert!(story.events.iter().all(|l| l.time_ms != 7000 || !l.key));
        assert!(story.events.iter().all(|l| l.time_ms < 7200));
        assert_eq!(story.omitted, 0);
    }

    #[test]
    fn offset_story_names_an_election_of_a_dead_broker_and_a_last_leader_that_never_came_back() {
        let tp = tp1();
        let mut events = failover_events();
        // broker-1 dies before the controller picks it (at 5450, before broker-0's epoch 4).
        events.insert(3, fault(5300, "kill", &["broker-1"]));
        events.insert(
            5,
            rec(
                5450,
                broker(0),
                Event::PartitionStateChanged {
                    tp: tp.clone(),
                    leader: Some(b(1)),
                    leader_epoch: LeaderEpoch(5),
                    isr: vec![b(1)],
                    controller_epoch: ksim_model::types::ControllerEpoch(1),
                    partition_epoch: ksim_model::types::ZkVersion(6),
                    reason: "leader-election".into(),
                    last_known_elr: vec![],
                },
            ),
        );
        // The last leader, broker-0, is killed and nobody leads afterwards.
        events.push(fault(8000, "kill", &["broker-0"]));
        let story = offset_story(
            &events,
            &[],
            &BTreeMap::new(),
            &[],
            &BTreeMap::new(),
            &tp,
            Offset(17),
        );
        let text = story.summary.join("\n");
        assert!(
            text.contains("controller elected broker-1 leader of events-1 in epoch 5 (ISR [broker-1]), but broker-1 was down at the time"),
            "{text}"
        );
        assert!(
            text.contains("No producer was told that a record is at offset 17"),
            "{text}"
        );
        assert!(
            text.contains("The last broker to become leader of events-1 was broker-0 (epoch 4, at t=5512 ms). It was stopped at t=8000 ms"),
            "{text}"
        );
        // Time order: the election of the dead broker comes before broker-0's leadership.
        let dead = text.find("broker-1 was down").unwrap();
        let next = text.find("broker-0 became leader in epoch 4").unwrap();
        assert!(dead < next);
    }
}
