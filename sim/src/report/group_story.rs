//! *What happened to it* for an `at-least-once` violation: not the partition's broker events
//! (the brokers did nothing wrong) but the story of the commit that passed records nobody
//! processed: the member's poll that returned them, its commit of their offsets (before it
//! processed them, with `commit = "before-processing"`), what stopped it (a kill, a close, a
//! pause past `max.poll.interval.ms`, a removal), and the next owner that started from the
//! committed offset, after them (GROUPS-AND-TRANSACTIONS.md A4 story 4).

use super::*;

/// Writes the story of `tp`'s `at-least-once` anomaly in `run` (the first one of `tp`), from
/// its details (`passed_by`, `unprocessed`), the history and the events. False when `run`
/// has no such anomaly.
pub(super) fn write_at_least_once_story(
    out: &mut String,
    run: &RunResult,
    tp: &TopicPartition,
) -> bool {
    let tp_name = tp.to_string();
    let Some(a) = run
        .checks
        .violations
        .iter()
        .filter(|v| v.check == "at-least-once")
        .filter_map(|v| v.details.get("anomalies").and_then(Value::as_array))
        .flatten()
        .find(|a| a.get("tp").and_then(Value::as_str) == Some(tp_name.as_str()))
    else {
        return false;
    };
    let by = &a["passed_by"];
    let process = by["process"].as_str().unwrap_or("?").to_string();
    let member = by["member_id"].as_str().unwrap_or("?");
    let generation = by["generation"].as_i64().unwrap_or(-1);
    let committed = by["offset"].as_i64().unwrap_or(0);
    let sent_ms = by["sent"]["time_ms"].as_u64().unwrap_or(0);
    let acked_ms = by["acknowledged"]["time_ms"].as_u64();
    let unprocessed: Vec<i64> = a["unprocessed"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|u| u["offset"].as_i64())
        .collect();
    let count = a["unprocessed_count"]
        .as_u64()
        .unwrap_or(unprocessed.len() as u64);
    let (Some(&lo), Some(&hi)) = (unprocessed.iter().min(), unprocessed.iter().max()) else {
        return false;
    };
    let span = if lo == hi {
        format!("offset {lo}")
    } else {
        format!("offsets {lo}–{hi}")
    };
    let is_process = |e: &HistoryEntry| e.process.to_string() == process;
    let holds = |records: &[ksim_model::event::PolledRecord]| {
        records.iter().any(|r| &r.tp == tp && r.offset.0 == lo)
    };
    let history = &run.output.history;
    let mut lines: Vec<String> = Vec::new();
    // 1. The poll that returned the first unprocessed record.
    let polled = history.iter().find(|e| {
        is_process(e)
            && e.op.op_type == OpType::Ok
            && matches!(&e.op.value, OpValue::Poll { records } if holds(records))
    });
    if let Some(p) = polled {
        lines.push(format!(
            "{process}'s `poll()` at t={} ms returned {tp} from offset {lo} on.",
            p.time_ms
        ));
    }
    // 2. The commit, and where processing stood.
    let processing = history.iter().find(|e| {
        is_process(e)
            && e.op.op_type == OpType::Invoke
            && matches!(&e.op.value, OpValue::Process { records, .. } if holds(records))
    });
    // Its completion is the next entry of the process with its op id (a restarted process
    // numbers its operations from 1 again, so a later `ok` of the same id may be another's).
    let finished = processing.is_some_and(|inv| {
        history
            .iter()
            .find(|e| e.index > inv.index && e.process == inv.process && e.op.op_id == inv.op.op_id)
            .is_some_and(|e| {
                e.op.op_type == OpType::Ok && matches!(e.op.value, OpValue::Process { .. })
            })
    });
    let acked = acked_ms.map_or(String::new(), |t| format!(", acknowledged at t={t} ms"));
    let before = match processing {
        Some(p) if p.time_ms >= sent_ms => format!(
            ": it committed them before processing them (it started processing at t={} ms)",
            p.time_ms
        ),
        Some(p) => format!(": it was still processing them (since t={} ms)", p.time_ms),
        None => ": it had not started processing them".to_string(),
    };
    lines.push(format!(
        "**{process}** (member `{member}`, generation {generation}) **committed offset \
         {committed}** of {tp} (sent at t={sent_ms} ms{acked}), past {count} record{} it had \
         not processed ({span}){before}.",
        if count == 1 { "" } else { "s" }
    ));
    // 3. What stopped it.
    let stop = run.output.events.iter().find(|r| {
        r.time_ms >= sent_ms
            && match &r.event {
                Event::Fault { action, nodes, .. } => {
                    nodes.iter().any(|n| *n == process)
                        && matches!(
                            action.as_str(),
                            "kill"
                                | "client-kill"
                                | "power-fail"
                                | "disk-loss"
                                | "close"
                                | "client-leave"
                                | "shutdown"
                                | "pause"
                                | "client-pause"
                        )
                }
                Event::ConsumerError { exception, .. } => {
                    exception == "LeaveGroup" && r.node.to_string() == process
                }
                Event::GroupMemberRemoved { member_id, .. } => member_id == member,
                Event::PartitionsLost { partitions, .. }
                | Event::PartitionsRevoked { partitions, .. } => {
                    r.node.to_string() == process && partitions.contains(tp)
                }
                _ => false,
            }
    });
    let crashed_processing = !finished && processing.is_some();
    let stop_ms = stop.map_or(sent_ms, |r| r.time_ms);
    if let Some(r) = stop {
        let what = match &r.event {
            Event::Fault { action, .. } => match action.as_str() {
                "kill" | "client-kill" | "power-fail" | "disk-loss" => {
                    format!("**{process} was killed** (`{action}`)")
                }
                "pause" | "client-pause" => format!("{process} was paused (`{action}`)"),
                _ => format!("{process} was closed (`{action}`)"),
            },
            Event::GroupMemberRemoved { reason, .. } => {
                format!("the coordinator removed {process}'s member ({reason})")
            }
            other => format!("{process}: {}", describe_event(other)),
        };
        let during = if crashed_processing {
            "; its processing of those records never finished (the `process` operation stays \
             open: a crash during processing means those records were not processed)"
        } else {
            ""
        };
        lines.push(format!("At t={} ms {what}{during}.", r.time_ms));
    } else if crashed_processing {
        lines.push(format!(
            "{process}'s processing of those records never finished (the `process` operation \
             stays open)."
        ));
    }
    // 4. The next owner, from the committed offset.
    let next = run.output.events.iter().find(|r| {
        r.time_ms >= stop_ms
            && matches!(&r.event, Event::PartitionsAssigned { partitions, .. } if partitions.contains(tp))
    });
    if let Some(r) = next {
        let Event::PartitionsAssigned {
            member_id,
            generation,
            ..
        } = &r.event
        else {
            unreachable!("matched above")
        };
        let first = history.iter().find(|e| {
            e.process == r.node
                && e.time_ms >= r.time_ms
                && e.op.op_type == OpType::Ok
                && matches!(&e.op.value, OpValue::Poll { records } if records.iter().any(|x| &x.tp == tp))
        });
        let from = first
            .and_then(|e| match &e.op.value {
                OpValue::Poll { records } => records
                    .iter()
                    .filter(|x| &x.tp == tp)
                    .map(|x| x.offset.0)
                    .min(),
                _ => None,
            })
            .map_or(String::new(), |o| {
                format!("; its first poll of {tp} started at offset {o}")
            });
        lines.push(format!(
            "At t={} ms **{} (member `{member_id}`, generation {generation}) took {tp}** and \
             started from the group's committed offset{from}.",
            r.time_ms, r.node
        ));
    }
    lines.push(format!(
        "So nobody ever processed {span}: the committed offset was already past them. The \
         commit came before the processing, so a member that stopped in between lost them \
         (at-most-once); commit after processing to make this a re-processing instead."
    ));
    let _ = writeln!(
        out,
        "The story of the commit that passed records nobody processed, from the clients' \
         history and events:\n"
    );
    for l in lines {
        let _ = writeln!(out, "- {l}");
    }
    out.push('\n');
    true
}
