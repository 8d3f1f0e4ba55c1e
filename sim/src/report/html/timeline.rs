//! Jepsen's timeline of client operations (`jepsen.checker.timeline`): a lane per client
//! process, each operation a bar from its invocation to its completion, coloured by how it
//! completed: `ok` green, `fail` red, `info` (indeterminate, or never completed) amber.
//!
//! A run has thousands of operations per client, far more than a page shows one by one, so
//! each lane is split into [`BUCKETS`] equal time buckets and three rows (ok, fail, info):
//! a bucket of a row is drawn when an operation of that kind was in flight during it, darker
//! the more there were. Hand-built SVG; each lane carries `data-ok`, `data-fail` and
//! `data-info` counts.

use super::esc;
use crate::history::OpenOps;
use crate::run::RunResult;
use ksim_model::event::OpType;
use ksim_model::types::NodeId;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// Time buckets per lane.
pub const BUCKETS: u64 = 400;

const LEFT: u64 = 110;
const PLOT_W: u64 = 1080;
const ROW_H: u64 = 7;
const LANE_H: u64 = ROW_H * 3 + 8;
const TOP: u64 = 24;

/// How an operation ended, in the order a bucket shows them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Ok = 0,
    Fail = 1,
    Info = 2,
}

/// Calls `f(process, invoke ms, completion ms, kind)` for every operation of the run (one
/// never completed is indeterminate until the end).
fn for_each_op(run: &RunResult, mut f: impl FnMut(NodeId, u64, u64, Kind)) {
    let end = run.output.simulated_ms;
    let mut open: OpenOps<u64> = OpenOps::new(run.output.history.len());
    for e in &run.output.history {
        match e.op.op_type {
            OpType::Invoke => {
                open.insert(e.process, e.op.op_id, e.time_ms);
            }
            t => {
                let from = open.remove(e.process, e.op.op_id).unwrap_or(e.time_ms);
                let kind = match t {
                    OpType::Ok => Kind::Ok,
                    OpType::Fail => Kind::Fail,
                    _ => Kind::Info,
                };
                f(e.process, from, e.time_ms, kind);
            }
        }
    }
    for ((p, _), from) in open.into_sorted() {
        f(p, from, end, Kind::Info);
    }
}

/// Writes the client timeline section.
pub(super) fn write(out: &mut String, run: &RunResult) {
    out.push_str("<section id=\"clients\">\n<h2>Client operations (Jepsen timeline)</h2>\n");
    let end = run.output.simulated_ms.max(1);
    // Per lane and row, the operations in flight in each bucket, kept as differences (an
    // operation adds one at its first bucket and takes it off after its last).
    let mut lanes: BTreeMap<NodeId, [Vec<i64>; 3]> = BTreeMap::new();
    let mut counts: BTreeMap<NodeId, [u64; 3]> = BTreeMap::new();
    for_each_op(run, |p, from, to, kind| {
        let lane = lanes
            .entry(p)
            .or_insert_with(|| std::array::from_fn(|_| vec![0; BUCKETS as usize + 1]));
        counts.entry(p).or_default()[kind as usize] += 1;
        let b0 = from * BUCKETS / end;
        let b1 = (to * BUCKETS / end).min(BUCKETS - 1).max(b0);
        let row = &mut lane[kind as usize];
        // An operation at or after the end of the run lands past the last bucket.
        if row.len() < b1 as usize + 2 {
            row.resize(b1 as usize + 2, 0);
        }
        row[b0 as usize] += 1;
        row[b1 as usize + 1] -= 1;
    });
    // Back to counts per bucket: only buckets some operation touched are drawn.
    let lanes: BTreeMap<NodeId, [Vec<(u64, u64)>; 3]> = lanes
        .into_iter()
        .map(|(p, rows)| {
            let rows = rows.map(|diffs| {
                let mut in_flight = 0i64;
                let mut buckets = Vec::new();
                for (b, d) in diffs.iter().enumerate() {
                    in_flight += d;
                    if in_flight > 0 {
                        buckets.push((b as u64, in_flight as u64));
                    }
                }
                buckets
            });
            (p, rows)
        })
        .collect();
    let _ = writeln!(
        out,
        "<p class=\"note\">A lane per client; each operation is in flight from its invocation to \
         its completion. Rows: <span style=\"color:#2e7d32\">ok</span>, \
         <span style=\"color:#c62828\">fail</span>, <span style=\"color:#b8860b\">info</span> \
         (indeterminate or never completed). The run is cut into {BUCKETS} buckets of {} ms; a \
         bucket is darker the more operations of that kind were in flight in it.</p>",
        end.div_ceil(BUCKETS)
    );
    if lanes.is_empty() {
        out.push_str("<p>No client operations.</p>\n</section>\n");
        return;
    }
    let height = TOP + LANE_H * lanes.len() as u64 + 24;
    let width = LEFT + PLOT_W + 20;
    let _ = writeln!(
        out,
        "<figure><svg class=\"timeline\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" viewBox=\"0 0 {width} {height}\" role=\"img\" font-family=\"sans-serif\" font-size=\"11\">"
    );
    // Time axis: ten ticks.
    for i in 0..=10u64 {
        let x = LEFT + PLOT_W * i / 10;
        let _ = writeln!(
            out,
            "<line x1=\"{x}\" y1=\"{}\" x2=\"{x}\" y2=\"{}\" stroke=\"#ddd\"/><text x=\"{x}\" y=\"{}\" text-anchor=\"middle\">{} ms</text>",
            TOP - 4,
            height - 20,
            height - 6,
            end * i / 10
        );
    }
    let colours = ["46,125,50", "198,40,40", "218,165,32"];
    let bw = PLOT_W as f64 / BUCKETS as f64 + 0.3;
    for (i, (p, rows)) in lanes.iter().enumerate() {
        let y = TOP + LANE_H * i as u64;
        let c = counts.get(p).copied().unwrap_or_default();
        let _ = writeln!(
            out,
            "<g class=\"lane\" data-process=\"{p}\" data-ok=\"{}\" data-fail=\"{}\" data-info=\"{}\"><text x=\"4\" y=\"{}\">{p}</text>",
            c[0],
            c[1],
            c[2],
            y + ROW_H * 2
        );
        for (k, row) in rows.iter().enumerate() {
            let peak = row.iter().map(|(_, n)| *n).max().unwrap_or(1).max(1);
            for (b, n) in row {
                // Opacity 0.25..1, by the share of the lane's busiest bucket (integer steps).
                let o = 25 + 75 * n / peak;
                let _ = write!(
                    out,
                    "<rect x=\"{:.1}\" y=\"{}\" width=\"{bw:.1}\" height=\"{}\" fill=\"rgb({})\" fill-opacity=\"0.{:02}\"/>",
                    (LEFT * BUCKETS + PLOT_W * b) as f64 / BUCKETS as f64,
                    y + ROW_H * k as u64,
                    ROW_H - 1,
                    colours[k],
                    o.min(99)
                );
            }
        }
        out.push_str("</g>\n");
    }
    out.push_str("</svg>\n");
    let total: Vec<String> = counts
        .iter()
        .map(|(p, c)| format!("{p}: {} ok, {} fail, {} info", c[0], c[1], c[2]))
        .collect();
    let _ = writeln!(
        out,
        "<figcaption>{}</figcaption></figure>\n</section>",
        esc(&total.join("; "))
    );
}
