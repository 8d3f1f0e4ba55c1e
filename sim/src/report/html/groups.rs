//! The consumer groups' ownership chart: per group, a lane per partition over simulated time,
//! each member's ownership a bar in that member's colour (labelled with its process and
//! generation), the time without an owner left blank, and each rebalance a grey band across
//! every lane (from `PreparingRebalance` to `Stable`), coordinator failovers as dashed lines.
//! The data is [`crate::report::groups::summarize`]'s, the same the report's "Consumer
//! groups" tables show. Hand-built SVG; each bar carries `data-tp`, `data-member`,
//! `data-generation`, `data-from-ms` and `data-to-ms`, and a `<title>` a browser shows on
//! hover. Nothing is written for a run without a group.

use super::{esc, BROKER_COLOURS};
use crate::report::groups::{summarize, GroupSummary};
use crate::run::RunResult;
use ksim_model::types::{NodeId, TopicPartition};
use std::collections::BTreeSet;
use std::fmt::Write as _;

const LEFT: u64 = 110;
const PLOT_W: u64 = 1080;
const LANE_H: u64 = 18;
const TOP: u64 = 22;
const AXIS_H: u64 = 26;

/// Whether the run has a group (and so a chart section).
pub fn has_groups(run: &RunResult) -> bool {
    crate::report::groups::has_groups(&run.output.events)
}

/// Writes the `#groups` section.
pub fn write(out: &mut String, run: &RunResult) {
    let end = run.output.simulated_ms.max(1);
    let groups = summarize(&run.output.history, &run.output.events, end);
    if groups.is_empty() {
        return;
    }
    out.push_str("<section id=\"groups\">\n<h2>Consumer groups: who owned each partition</h2>\n");
    out.push_str(
        "<p class=\"note\">Per group and partition, over simulated time: each member's \
         ownership (from its <code>onPartitionsAssigned</code> to its \
         <code>onPartitionsRevoked</code> / <code>onPartitionsLost</code> or its crash) as a \
         bar in the member's colour, labelled with its process and generation; blank where no \
         member owned the partition; rebalances (<code>PreparingRebalance</code> to \
         <code>Stable</code>) as grey bands; coordinator failovers as dashed red lines. The \
         tables are in the full report's \"Consumer groups\" section.</p>\n",
    );
    for g in &groups {
        write_group(out, g, end);
    }
    out.push_str("</section>\n");
}

fn x(t: u64, end: u64) -> u64 {
    LEFT + t.min(end) * PLOT_W / end
}

fn colour(node: NodeId) -> String {
    let i = match node {
        NodeId::Consumer(n) => n as usize,
        _ => 0,
    };
    let (r, g, b) = BROKER_COLOURS[i % BROKER_COLOURS.len()];
    format!("#{r:02x}{g:02x}{b:02x}")
}

fn write_group(out: &mut String, g: &GroupSummary, end: u64) {
    let tps: Vec<&TopicPartition> = g
        .tenures
        .iter()
        .map(|t| &t.tp)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let lanes = tps.len().max(1) as u64;
    let h = TOP + lanes * LANE_H + AXIS_H;
    let w = LEFT + PLOT_W + 20;
    let _ = writeln!(
        out,
        "<figure class=\"group\" data-group=\"{}\" data-rebalances=\"{}\">\n<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" font-size=\"11\">",
        esc(&g.group),
        g.rebalances.len()
    );
    let bottom = TOP + lanes * LANE_H;
    for rb in &g.rebalances {
        let x0 = x(rb.start_ms, end);
        let x1 = x(rb.stable_ms.unwrap_or(end), end).max(x0 + 1);
        let _ = writeln!(
            out,
            "<rect x=\"{x0}\" y=\"{TOP}\" width=\"{}\" height=\"{}\" fill=\"#dddddd\"><title>{}</title></rect>",
            x1 - x0,
            lanes * LANE_H,
            esc(&format!(
                "rebalance from t={} ms{}: {}",
                rb.start_ms,
                rb.stable_ms
                    .map_or(" (not Stable by the end)".to_string(), |t| format!(
                        " to t={t} ms"
                    )),
                rb.causes.join("; then ")
            ))
        );
    }
    for (t, b, _, _) in &g.loads {
        let xt = x(*t, end);
        let _ = writeln!(
            out,
            "<line x1=\"{xt}\" y1=\"{}\" x2=\"{xt}\" y2=\"{bottom}\" stroke=\"#b00020\" stroke-dasharray=\"4,3\"><title>{}</title></line>",
            TOP - 6,
            esc(&format!(
                "t={t} ms: {} loaded the group (coordinator failover)",
                NodeId::Broker(*b)
            ))
        );
    }
    for (i, tp) in tps.iter().enumerate() {
        let y = TOP + i as u64 * LANE_H;
        let _ = writeln!(
            out,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>",
            LEFT - 6,
            y + LANE_H - 5,
            esc(&tp.to_string())
        );
        for t in g.tenures.iter().filter(|t| &t.tp == *tp) {
            let x0 = x(t.from_ms, end);
            let x1 = x(t.to_ms.unwrap_or(end), end).max(x0 + 1);
            let generation = if t.last_generation > t.generation {
                format!("{}–{}", t.generation, t.last_generation)
            } else {
                t.generation.to_string()
            };
            let _ = writeln!(
                out,
                "<rect x=\"{x0}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"{}\" fill-opacity=\"0.85\" data-tp=\"{}\" data-member=\"{}\" data-generation=\"{}\" data-from-ms=\"{}\" data-to-ms=\"{}\"><title>{}</title></rect>",
                y + 2,
                x1 - x0,
                LANE_H - 4,
                colour(t.node),
                esc(&tp.to_string()),
                esc(&t.member_id),
                t.generation,
                t.from_ms,
                t.to_ms.unwrap_or(end),
                esc(&format!(
                    "{} {} ({}), generation {generation}, t={}–{} ms, {}",
                    tp,
                    t.node,
                    t.member_id,
                    t.from_ms,
                    t.to_ms.map_or("end".to_string(), |x| x.to_string()),
                    t.ended
                ))
            );
            if x1 - x0 > 70 {
                let _ = writeln!(
                    out,
                    "<text x=\"{}\" y=\"{}\" fill=\"#fff\">{} g{generation}</text>",
                    x0 + 3,
                    y + LANE_H - 6,
                    esc(&t.node.to_string())
                );
            }
        }
    }
    // Time axis: a tick every 5 s (10 s past 100 s).
    let step = if end > 100_000 { 10_000 } else { 5_000 };
    let _ = writeln!(
        out,
        "<line x1=\"{LEFT}\" y1=\"{bottom}\" x2=\"{}\" y2=\"{bottom}\" stroke=\"#999\"/>",
        LEFT + PLOT_W
    );
    let mut t = 0;
    while t <= end {
        let xt = x(t, end);
        let _ = writeln!(
            out,
            "<line x1=\"{xt}\" y1=\"{bottom}\" x2=\"{xt}\" y2=\"{}\" stroke=\"#999\"/><text x=\"{xt}\" y=\"{}\" text-anchor=\"middle\">{} s</text>",
            bottom + 4,
            bottom + 16,
            t / 1000
        );
        t += step;
    }
    out.push_str("</svg>\n");
    let unowned: Vec<String> = g
        .unowned
        .iter()
        .map(|(tp, (total, _, _))| format!("{tp} {total} ms"))
        .collect();
    let _ = writeln!(
        out,
        "<figcaption>Group <code>{}</code>: {} rebalance{}; time without an owner: {}.</figcaption>\n</figure>",
        esc(&g.group),
        g.rebalances.len(),
        if g.rebalances.len() == 1 { "" } else { "s" },
        esc(&unowned.join(", "))
    );
}
