//! A space-time diagram (Lamport's: a vertical lane per node, time going down) of the window
//! around the first violation, for the partition it is in: produce requests and their
//! acknowledgements, the controller's LeaderAndIsr decisions reaching the brokers, the
//! leader's ISR writes (AlterPartition), elections, followers learning the high watermark from
//! fetch responses, truncations, faults, and consumers reading the offending offset. The
//! offending offset is drawn in red wherever it appears.
//!
//! The simulator does not record messages, and recording them would change nothing the checks
//! need, so the arrows join recorded events at both ends: a send's invocation in `history.jsonl`
//! to the leader's `produce-appended` covering its offset, `produce-acked` to the send's
//! completion, `partition-state-changed` (the controller's write) to the `became-leader` /
//! `became-follower` it causes. What has no recorded sender (a follower's fetch) is a marker
//! on the receiver's lane. Hand-built SVG.

use super::esc;
use crate::run::RunResult;
use ksim_model::event::{Event, OpType, OpValue};
use ksim_model::types::{NodeId, Offset, TopicPartition};
use std::collections::BTreeSet;
use std::fmt::Write as _;

/// At most this many arrows.
pub const ARROWS_MAX: usize = 60;
/// At most this many markers.
pub const MARKERS_MAX: usize = 80;
/// Half the window, in simulated ms.
pub const HALF_WINDOW_MS: u64 = 3000;
/// At most this many sends (the nearest to the offending offset) get their produce arrows.
const SENDS_MAX: usize = 12;

const TOP: f64 = 50.0;
/// Height of one row of the logical time axis, in px.
const ROW_H: f64 = 15.0;
const LEFT: f64 = 70.0;
const WIDTH: f64 = 1180.0;

struct Arrow {
    from: (NodeId, u64),
    to: (NodeId, u64),
    label: String,
    hot: bool,
}

struct Marker {
    at: (NodeId, u64),
    label: String,
    hot: bool,
}

/// Writes the space-time section (or a sentence saying why there is none).
pub(super) fn write(out: &mut String, run: &RunResult) {
    out.push_str(
        "<section id=\"spacetime\">\n<h2>Space-time diagram around the first violation</h2>\n",
    );
    let focus = run
        .checks
        .violations
        .iter()
        .flat_map(super::super::focus_points)
        .next();
    let Some(focus) = focus else {
        out.push_str("<p>No violation: no diagram.</p>\n</section>\n");
        return;
    };
    let tp = focus.tp.clone();
    let hot = focus.offset;
    let t0 = focus.time_ms.unwrap_or_else(|| {
        // No time in the anomaly: the first truncation of the partition, else mid-run.
        run.output
            .events
            .iter()
            .find(|r| matches!(&r.event, Event::Truncated { tp: t, .. } if *t == tp))
            .map_or(run.output.simulated_ms / 2, |r| r.time_ms)
    });
    let from = t0.saturating_sub(HALF_WINDOW_MS);
    let to = t0 + HALF_WINDOW_MS;
    let (arrows, markers) = collect(run, &tp, hot, from, to);
    let _ = writeln!(
        out,
        "<p class=\"note\">Check <code>{}</code>, partition <b>{}</b>{}, window {from}–{to} ms \
         (simulated; one row per distinct time, so the vertical axis is ordered but not to scale). Arrows join recorded events (a send's invocation to the leader's append, \
         the acknowledgement to the send's completion, the controller's state write to the \
         brokers' LeaderAndIsr handling, the leader's ISR write to the coordination node); \
         markers are events with no recorded sender (a follower's HW from a fetch response, \
         truncations, faults, consumer reads). {} arrows and {} markers (at most {ARROWS_MAX} \
         and {MARKERS_MAX}; sends nearest the offending offset first).</p>",
        esc(&focus.check),
        esc(&tp.to_string()),
        hot.map_or(String::new(), |o| format!(
            ", offending offset <b class=\"hot\">{}</b>",
            o.0
        )),
        arrows.len(),
        markers.len()
    );
    // Lanes: zk, brokers, then the clients that appear.
    let mut lanes: BTreeSet<NodeId> = BTreeSet::new();
    lanes.insert(NodeId::Zk);
    for b in run.output.assignment.get(&tp).into_iter().flatten() {
        lanes.insert(NodeId::Broker(*b));
    }
    for a in &arrows {
        lanes.insert(a.from.0);
        lanes.insert(a.to.0);
    }
    for m in &markers {
        lanes.insert(m.at.0);
    }
    let lanes: Vec<NodeId> = lanes.into_iter().collect();
    let lane_w = WIDTH / lanes.len().max(1) as f64;
    let x_of = |n: NodeId| {
        let i = lanes.iter().position(|l| *l == n).unwrap_or(0);
        LEFT + lane_w * (i as f64 + 0.5)
    };
    // Logical layout (Lamport's): each distinct time the diagram shows gets its own row, in
    // time order, labelled with the simulated time, so bursts a few ms apart stay readable.
    let times: Vec<u64> = arrows
        .iter()
        .flat_map(|a| [a.from.1, a.to.1])
        .chain(markers.iter().map(|m| m.at.1))
        .collect::<BTreeSet<u64>>()
        .into_iter()
        .collect();
    let y_of = |t: u64| {
        let i = times.partition_point(|x| *x < t);
        TOP + ROW_H * i as f64 + ROW_H / 2.0
    };
    let height = ROW_H * times.len().max(1) as f64;
    let w = LEFT + WIDTH + 10.0;
    let h = TOP + height + 20.0;
    let _ = writeln!(
        out,
        "<figure><svg class=\"spacetime\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" role=\"img\" font-family=\"sans-serif\" font-size=\"10\" data-tp=\"{}\" data-offset=\"{}\" data-arrows=\"{}\" data-markers=\"{}\">",
        esc(&tp.to_string()),
        hot.map_or(-1, |o| o.0),
        arrows.len(),
        markers.len()
    );
    out.push_str("<defs><marker id=\"arrow\" viewBox=\"0 0 10 10\" refX=\"9\" refY=\"5\" markerWidth=\"6\" markerHeight=\"6\" orient=\"auto-start-reverse\"><path d=\"M 0 0 L 10 5 L 0 10 z\" fill=\"#555\"/></marker><marker id=\"arrow-hot\" viewBox=\"0 0 10 10\" refX=\"9\" refY=\"5\" markerWidth=\"6\" markerHeight=\"6\" orient=\"auto-start-reverse\"><path d=\"M 0 0 L 10 5 L 0 10 z\" fill=\"#c62828\"/></marker></defs>\n");
    for t in &times {
        let y = y_of(*t);
        let _ = writeln!(
            out,
            "<line x1=\"{LEFT}\" y1=\"{y:.1}\" x2=\"{:.1}\" y2=\"{y:.1}\" stroke=\"#f0f0f0\"/><text x=\"4\" y=\"{:.1}\" fill=\"#777\">{t} ms</text>",
            LEFT + WIDTH,
            y + 3.0
        );
    }
    for n in &lanes {
        let x = x_of(*n);
        let _ = writeln!(
            out,
            "<line x1=\"{x:.1}\" y1=\"{TOP}\" x2=\"{x:.1}\" y2=\"{:.1}\" stroke=\"#999\"/><text x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\" font-size=\"12\" font-weight=\"bold\">{n}</text>",
            TOP + height,
            TOP - 10.0
        );
    }
    for a in &arrows {
        let (x1, y1, x2, y2) = (x_of(a.from.0), y_of(a.from.1), x_of(a.to.0), y_of(a.to.1));
        let (colour, marker) = if a.hot {
            ("#c62828", "arrow-hot")
        } else {
            ("#555", "arrow")
        };
        let _ = writeln!(
            out,
            "<g class=\"arrow\"><line x1=\"{x1:.1}\" y1=\"{y1:.1}\" x2=\"{x2:.1}\" y2=\"{y2:.1}\" stroke=\"{colour}\" stroke-width=\"{}\" marker-end=\"url(#{marker})\"/><text x=\"{:.1}\" y=\"{:.1}\" fill=\"{colour}\">{}</text></g>",
            if a.hot { 2 } else { 1 },
            (x1 + x2) / 2.0 + 3.0,
            (y1 + y2) / 2.0 - 2.0,
            esc(&a.label)
        );
    }
    for m in &markers {
        let (x, y) = (x_of(m.at.0), y_of(m.at.1));
        let colour = if m.hot { "#c62828" } else { "#1f4e9a" };
        // The last lane's labels go to the left of it, inside the picture.
        let (dx, anchor) = if lanes.last() == Some(&m.at.0) && lanes.len() > 1 {
            (-6.0, "end")
        } else {
            (6.0, "start")
        };
        let _ = writeln!(
            out,
            "<g class=\"marker\"><circle cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"3.5\" fill=\"{colour}\"/><text x=\"{:.1}\" y=\"{:.1}\" fill=\"{colour}\" text-anchor=\"{anchor}\">{}</text></g>",
            x + dx,
            y + 3.0,
            esc(&m.label)
        );
    }
    out.push_str("</svg></figure>\n</section>\n");
}

fn collect(
    run: &RunResult,
    tp: &TopicPartition,
    hot: Option<Offset>,
    from: u64,
    to: u64,
) -> (Vec<Arrow>, Vec<Marker>) {
    let inside = |t: u64| from <= t && t <= to;
    let covers = |b: Offset, l: Offset| hot.is_some_and(|o| b <= o && o <= l);
    let mut arrows = Vec::new();
    let mut markers = Vec::new();
    let events = &run.output.events;

    // Sends of the partition: invoke time, completion (time, ok), offset.
    let mut invoked: crate::history::OpenOps<u64> =
        crate::history::OpenOps::new(run.output.history.len());
    let mut sends: Vec<(NodeId, u64, u64, Offset)> = Vec::new();
    for e in &run.output.history {
        match (&e.op.value, e.op.op_type) {
            (OpValue::Send { tp: t, .. }, OpType::Invoke) if t == tp => {
                invoked.insert(e.process, e.op.op_id, e.time_ms);
            }
            (OpValue::Send { tp: t, offset, .. }, OpType::Ok) if t == tp => {
                if let (Some(inv), Some(o)) = (invoked.get(e.process, e.op.op_id), offset) {
                    if inside(*inv) || inside(e.time_ms) {
                        sends.push((e.process, *inv, e.time_ms, *o));
                    }
                }
            }
            (OpValue::Poll { records }, OpType::Ok) if inside(e.time_ms) => {
                for r in records {
                    if &r.tp == tp && Some(r.offset) == hot {
                        markers.push(Marker {
                            at: (e.process, e.time_ms),
                            label: format!("poll read offset {} = {}", r.offset.0, r.value),
                            hot: true,
                        });
                    }
                }
            }
            _ => {}
        }
    }
    // The sends nearest the offending offset (or the earliest, with none).
    sends.sort_by_key(|(p, inv, _, o)| (hot.map_or(0, |h| (o.0 - h.0).unsigned_abs()), *inv, *p));
    sends.truncate(SENDS_MAX);
    let mut drawn: BTreeSet<(NodeId, usize)> = BTreeSet::new();
    for (p, inv, done, o) in &sends {
        let append = events.iter().enumerate().find(|(_, r)| {
            r.time_ms >= *inv
                && matches!(&r.event, Event::ProduceAppended { tp: t, base_offset, last_offset, .. }
                    if t == tp && *base_offset <= *o && *o <= *last_offset)
        });
        let hot_send = Some(*o) == hot;
        if let Some((i, r)) = append {
            if drawn.insert((*p, i)) {
                if let Event::ProduceAppended {
                    leader_epoch,
                    base_offset,
                    last_offset,
                    ..
                } = &r.event
                {
                    arrows.push(Arrow {
                        from: (*p, *inv),
                        to: (r.node, r.time_ms),
                        label: format!(
                            "Produce → appended {}..{} e{}",
                            base_offset.0, last_offset.0, leader_epoch.0
                        ),
                        hot: hot_send || covers(*base_offset, *last_offset),
                    });
                }
            }
        }
        let ack = events.iter().find(|r| {
            r.time_ms >= *inv
                && r.time_ms <= *done
                && matches!(&r.event, Event::ProduceAcked { tp: t, base_offset, last_offset, .. }
                    if t == tp && *base_offset <= *o && *o <= *last_offset)
        });
        if let Some(r) = ack {
            if let Event::ProduceAcked { acks, .. } = &r.event {
                arrows.push(Arrow {
                    from: (r.node, r.time_ms),
                    to: (*p, *done),
                    label: format!("ack offset {} (acks={acks})", o.0),
                    hot: hot_send,
                });
            }
        }
    }
    // Partition-level events in the window.
    for (i, r) in events.iter().enumerate() {
        if !inside(r.time_ms) {
            continue;
        }
        match &r.event {
            Event::PartitionStateChanged {
                tp: t,
                leader,
                leader_epoch,
                isr,
                reason,
                ..
            } if t == tp => {
                let isr: Vec<String> = isr.iter().map(|b| b.0.to_string()).collect();
                markers.push(Marker {
                    at: (r.node, r.time_ms),
                    label: format!(
                        "{reason}: e{} leader {} ISR [{}]",
                        leader_epoch.0,
                        leader.map_or("none".to_string(), |b| format!("b{}", b.0)),
                        isr.join(",")
                    ),
                    hot: reason.contains("unclean"),
                });
                // LeaderAndIsr: the brokers taking the roles of this epoch.
                for q in events[i + 1..].iter().filter(|q| q.time_ms <= to) {
                    match &q.event {
                        Event::BecameLeader {
                            tp: t2,
                            leader_epoch: e2,
                            log_end_offset,
                            ..
                        }
                        | Event::BecameFollower {
                            tp: t2,
                            leader_epoch: e2,
                            log_end_offset,
                            ..
                        } if t2 == tp && e2 == leader_epoch => {
                            let role = if matches!(q.event, Event::BecameLeader { .. }) {
                                "leader"
                            } else {
                                "follower"
                            };
                            arrows.push(Arrow {
                                from: (r.node, r.time_ms),
                                to: (q.node, q.time_ms),
                                label: format!(
                                    "LeaderAndIsr e{}: {role}, LEO {}",
                                    leader_epoch.0, log_end_offset.0
                                ),
                                hot: false,
                            });
                        }
                        _ => {}
                    }
                }
            }
            Event::IsrChanged {
                tp: t,
                isr,
                leader_epoch,
                ..
            } if t == tp => {
                let isr: Vec<String> = isr.iter().map(|b| b.0.to_string()).collect();
                arrows.push(Arrow {
                    from: (r.node, r.time_ms),
                    to: (NodeId::Zk, r.time_ms),
                    label: format!(
                        "AlterPartition e{}: ISR [{}]",
                        leader_epoch.0,
                        isr.join(",")
                    ),
                    hot: false,
                });
            }
            Event::Truncated {
                tp: t,
                from_offset,
                to_offset,
                reason,
                ..
            } if t == tp => markers.push(Marker {
                at: (r.node, r.time_ms),
                label: format!("truncated {} → {} ({reason})", from_offset.0, to_offset.0),
                hot: hot.is_some_and(|o| *to_offset <= o && o < *from_offset),
            }),
            Event::HighWatermarkChanged {
                tp: t,
                high_watermark,
                ..
            } if t == tp && hot.is_some_and(|o| high_watermark.0 == o.0 + 1) => {
                markers.push(Marker {
                    at: (r.node, r.time_ms),
                    label: format!("HW {} (covers the offset)", high_watermark.0),
                    hot: true,
                })
            }
            Event::BecameLeader { tp: t, .. } | Event::BecameFollower { tp: t, .. } if t == tp => {}
            Event::ProduceRejected { tp: t, error, .. } if t == tp => markers.push(Marker {
                at: (r.node, r.time_ms),
                label: format!("produce refused: {error:?}"),
                hot: false,
            }),
            Event::Fault { action, nodes, .. } => {
                for n in nodes {
                    if let Some(node) = NodeId::parse(n) {
                        markers.push(Marker {
                            at: (node, r.time_ms),
                            label: format!("fault: {action}"),
                            hot: false,
                        });
                    }
                }
            }
            _ => {}
        }
    }
    arrows.sort_by_key(|a| (!a.hot, a.from.1));
    arrows.truncate(ARROWS_MAX);
    arrows.sort_by_key(|a| a.from.1);
    markers.sort_by_key(|m| (!m.hot, m.at.1));
    markers.truncate(MARKERS_MAX);
    markers.sort_by_key(|m| m.at.1);
    (arrows, markers)
}
