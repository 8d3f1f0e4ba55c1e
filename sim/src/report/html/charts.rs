//! Per partition, a chart over simulated time of each replica's log end offset (LEO) and high
//! watermark (HW), the leader's HW bold, leader epochs as bands, the faults as shaded spans, and
//! below it the ISR size the controller wrote. Drawn with `plotters`' SVG backend.
//!
//! The series come from `events.jsonl` and the replica snapshots:
//! - HW of a replica: its `high-watermark-changed` events (exactly, and only those);
//! - the leader's HW: the HW of the replica that last became leader (`became-leader`);
//! - LEO: a leader's appends (`produce-appended`, `last_offset + 1`), `became-leader` /
//!   `became-follower` / `log-recovered` / `follower-append-failed` (their `log_end_offset`),
//!   `truncated` (`to_offset`), and each replica's end offset at every replication snapshot;
//!   a follower's fetches are not events, so between those points its LEO is drawn as at
//!   least its own HW (which a follower never advances past its LEO);
//! - epochs and ISR: `partition-state-changed` (the controller's writes).
//!
//! The chart's figure carries its data as attributes for tests and tools:
//! `data-tp`, `data-hw-final-broker-N` (the last HW event of broker N), `data-leader-hw-final`,
//! `data-epochs`, `data-faults`.

use super::{chart_id, esc, BROKER_COLOURS, SERIES_POINTS_MAX};
use crate::nemesis::FaultRecord;
use crate::run::RunResult;
use ksim_model::event::Event;
use ksim_model::types::{BrokerId, TopicPartition};
use plotters::prelude::*;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// The chart data of one partition. Points are `(simulated ms, value)`, in time order, one
/// per change (a step series).
#[derive(Debug, Clone, PartialEq)]
pub struct PartitionSeries {
    pub tp: TopicPartition,
    /// Per replica, its HW at each `high-watermark-changed`.
    pub hw: BTreeMap<BrokerId, Vec<(u64, i64)>>,
    /// Per replica, its LEO where known (see the module docs).
    pub leo: BTreeMap<BrokerId, Vec<(u64, i64)>>,
    /// The HW of the current leader (the broker of the latest `became-leader`).
    pub leader_hw: Vec<(u64, i64)>,
    /// Leader epochs as the controller wrote them: (from ms, epoch, leader).
    pub epochs: Vec<(u64, i32, Option<BrokerId>)>,
    /// ISR size as the controller wrote it.
    pub isr: Vec<(u64, i64)>,
    /// `truncated` events of the partition.
    pub truncations: usize,
}

impl PartitionSeries {
    /// An empty series of `tp`.
    pub fn new(tp: TopicPartition) -> Self {
        PartitionSeries {
            tp,
            hw: BTreeMap::new(),
            leo: BTreeMap::new(),
            leader_hw: Vec::new(),
            epochs: Vec::new(),
            isr: Vec::new(),
            truncations: 0,
        }
    }
}

/// Every partition's chart data, in partition order.
pub fn partition_series(run: &RunResult) -> Vec<PartitionSeries> {
    let mut by_tp: BTreeMap<TopicPartition, PartitionSeries> = BTreeMap::new();
    let mut leader: BTreeMap<TopicPartition, (i32, BrokerId)> = BTreeMap::new();
    let mut hw_now: BTreeMap<(TopicPartition, BrokerId), i64> = BTreeMap::new();
    for tp in run.output.assignment.keys() {
        by_tp.insert(tp.clone(), PartitionSeries::new(tp.clone()));
    }
    fn push(v: &mut Vec<(u64, i64)>, t: u64, x: i64) {
        match v.last_mut() {
            Some(last) if last.0 == t => last.1 = x,
            Some(last) if last.1 == x => {}
            _ => v.push((t, x)),
        }
    }
    let mut snapshots = run.output.snapshots.iter().peekable();
    for (i, r) in run.output.events.iter().enumerate() {
        // Snapshots taken before this event was recorded.
        while let Some(s) = snapshots.next_if(|s| s.event_count <= i) {
            let series = by_tp
                .entry(s.tp.clone())
                .or_insert_with(|| PartitionSeries::new(s.tp.clone()));
            for rep in &s.replicas {
                let leo = rep.end_offset().0;
                let hw = hw_now
                    .get(&(s.tp.clone(), rep.broker))
                    .copied()
                    .unwrap_or(0);
                push(
                    series.leo.entry(rep.broker).or_default(),
                    s.time_ms,
                    leo.max(hw),
                );
            }
        }
        let t = r.time_ms;
        let tp = match event_tp(&r.event) {
            Some(tp) => tp.clone(),
            None => continue,
        };
        let series = by_tp
            .entry(tp.clone())
            .or_insert_with(|| PartitionSeries::new(tp.clone()));
        match &r.event {
            Event::HighWatermarkChanged {
                broker,
                high_watermark,
                ..
            } => {
                let hw = high_watermark.0;
                hw_now.insert((tp.clone(), *broker), hw);
                push(series.hw.entry(*broker).or_default(), t, hw);
                let leo = series.leo.entry(*broker).or_default();
                if leo.last().is_none_or(|l| l.1 < hw) {
                    push(leo, t, hw);
                }
                if leader.get(&tp).is_some_and(|(_, b)| b == broker) {
                    push(&mut series.leader_hw, t, hw);
                }
            }
            Event::BecameLeader {
                broker,
                leader_epoch,
                log_end_offset,
                ..
            } => {
                let cur = leader.get(&tp).map(|(e, _)| *e);
                if cur.is_none_or(|e| leader_epoch.0 >= e) {
                    leader.insert(tp.clone(), (leader_epoch.0, *broker));
                    if let Some(hw) = hw_now.get(&(tp.clone(), *broker)) {
                        push(&mut series.leader_hw, t, *hw);
                    }
                }
                push(series.leo.entry(*broker).or_default(), t, log_end_offset.0);
            }
            Event::BecameFollower {
                broker,
                log_end_offset,
                ..
            }
            | Event::LogRecovered {
                broker,
                log_end_offset,
                ..
            }
            | Event::FollowerAppendFailed {
                broker,
                log_end_offset,
                ..
            } => push(series.leo.entry(*broker).or_default(), t, log_end_offset.0),
            Event::Truncated {
                broker, to_offset, ..
            } => {
                series.truncations += 1;
                push(series.leo.entry(*broker).or_default(), t, to_offset.0);
            }
            Event::ProduceAppended {
                broker,
                last_offset,
                ..
            } => push(series.leo.entry(*broker).or_default(), t, last_offset.0 + 1),
            Event::PartitionStateChanged {
                leader: l,
                leader_epoch,
                isr,
                ..
            } => {
                if series
                    .epochs
                    .last()
                    .is_none_or(|e| e.1 != leader_epoch.0 || e.2 != *l)
                {
                    series.epochs.push((t, leader_epoch.0, *l));
                }
                push(&mut series.isr, t, isr.len() as i64);
            }
            _ => {}
        }
    }
    for s in snapshots {
        let series = by_tp
            .entry(s.tp.clone())
            .or_insert_with(|| PartitionSeries::new(s.tp.clone()));
        for rep in &s.replicas {
            let hw = hw_now
                .get(&(s.tp.clone(), rep.broker))
                .copied()
                .unwrap_or(0);
            push(
                series.leo.entry(rep.broker).or_default(),
                s.time_ms,
                rep.end_offset().0.max(hw),
            );
        }
    }
    by_tp.into_values().collect()
}

/// The partition an event is about, for the events the charts use.
fn event_tp(e: &Event) -> Option<&TopicPartition> {
    match e {
        Event::HighWatermarkChanged { tp, .. }
        | Event::BecameLeader { tp, .. }
        | Event::BecameFollower { tp, .. }
        | Event::LogRecovered { tp, .. }
        | Event::FollowerAppendFailed { tp, .. }
        | Event::Truncated { tp, .. }
        | Event::ProduceAppended { tp, .. }
        | Event::PartitionStateChanged { tp, .. } => Some(tp),
        _ => None,
    }
}

/// At most `max` points of a step series: the last point of each of `max - 1` equal time
/// buckets, after the first point. Deterministic, and the first and last points are kept, so
/// final values stay exact.
pub fn downsample(points: &[(u64, i64)], max: usize) -> Vec<(u64, i64)> {
    if points.len() <= max || max < 3 {
        return points.to_vec();
    }
    let first = points[0].0;
    let last = points[points.len() - 1].0;
    let buckets = (max - 1) as u64;
    let width = ((last - first) / buckets).max(1);
    let mut out = vec![points[0]];
    let mut current: Option<(u64, (u64, i64))> = None;
    for p in &points[1..] {
        let b = ((p.0 - first) / width).min(buckets);
        match current {
            Some((cb, _)) if cb == b => current = Some((b, *p)),
            Some((_, q)) => {
                out.push(q);
                current = Some((b, *p));
            }
            None => current = Some((b, *p)),
        }
    }
    if let Some((_, q)) = current {
        out.push(q);
    }
    out
}

/// A step series as a polyline: hold each value until the next point, and the last until `end`.
fn steps(points: &[(u64, i64)], end: u64) -> Vec<(u64, i64)> {
    let mut out = Vec::with_capacity(points.len() * 2 + 1);
    for (i, p) in points.iter().enumerate() {
        if i > 0 {
            out.push((p.0, points[i - 1].1));
        }
        out.push(*p);
    }
    if let Some(last) = points.last() {
        if last.0 < end {
            out.push((end, last.1));
        }
    }
    out
}

/// A fault as a span on the time axis: (from ms, to ms, label).
pub(super) fn fault_spans(faults: &[FaultRecord], end: u64) -> Vec<(u64, u64, String)> {
    let mut spans = Vec::new();
    for (i, f) in faults.iter().enumerate() {
        if f.note.is_some() || matches!(f.action.as_str(), "heal" | "restart" | "resume") {
            continue;
        }
        let closes = |g: &FaultRecord| -> bool {
            match f.action.as_str() {
                "kill" | "power-fail" | "shutdown" | "disk-loss" => {
                    g.action == "restart" && g.nodes.iter().any(|n| f.nodes.contains(n))
                }
                "pause" => g.action == "resume" && g.nodes.iter().any(|n| f.nodes.contains(n)),
                "partition" | "isolate" | "clog" => g.action == "heal",
                _ => false,
            }
        };
        let until = match f.action.as_str() {
            "kill" | "power-fail" | "shutdown" | "disk-loss" | "pause" | "partition"
            | "isolate" | "clog" => faults[i + 1..]
                .iter()
                .find(|g| closes(g))
                .map_or(end, |g| g.at_ms),
            // Instant faults get a visible sliver.
            _ => f.at_ms + (end / 400).max(1),
        };
        spans.push((
            f.at_ms,
            until.max(f.at_ms + 1),
            format!("{} {}", f.action, f.nodes.join(",")),
        ));
    }
    spans
}

const WIDTH: u32 = 1200;
const HEIGHT: u32 = 380;
const ISR_HEIGHT: u32 = 120;

fn colour(b: BrokerId) -> RGBColor {
    let (r, g, bl) = BROKER_COLOURS[(b.0.unsigned_abs() as usize) % BROKER_COLOURS.len()];
    RGBColor(r, g, bl)
}

/// Writes the `<figure>` of one partition: the LEO/HW chart and the ISR-size chart.
pub(super) fn write_chart(out: &mut String, run: &RunResult, s: &PartitionSeries) {
    let end = run.output.simulated_ms.max(1);
    let spans = fault_spans(&run.output.faults, end);
    let hw: BTreeMap<BrokerId, Vec<(u64, i64)>> =
        s.hw.iter()
            .map(|(b, v)| (*b, downsample(v, SERIES_POINTS_MAX)))
            .collect();
    let leo: BTreeMap<BrokerId, Vec<(u64, i64)>> = s
        .leo
        .iter()
        .map(|(b, v)| (*b, downsample(v, SERIES_POINTS_MAX)))
        .collect();
    let leader_hw = downsample(&s.leader_hw, SERIES_POINTS_MAX);
    let isr = downsample(&s.isr, SERIES_POINTS_MAX);
    let ymax = hw
        .values()
        .chain(leo.values())
        .flat_map(|v| v.iter().map(|p| p.1))
        .max()
        .unwrap_or(0)
        .max(1)
        + 1;
    let ymax = ymax + ymax / 12 + 1;

    let mut attrs = format!("data-tp=\"{}\"", esc(&s.tp.to_string()));
    for (b, v) in &s.hw {
        if let Some(last) = v.last() {
            let _ = write!(attrs, " data-hw-final-broker-{}=\"{}\"", b.0, last.1);
        }
    }
    if let Some(last) = s.leader_hw.last() {
        let _ = write!(attrs, " data-leader-hw-final=\"{}\"", last.1);
    }
    let epochs: Vec<String> = s
        .epochs
        .iter()
        .map(|(t, e, l)| format!("{t}:{e}:{}", l.map_or(-1, |b| b.0)))
        .collect();
    let _ = write!(
        attrs,
        " data-epochs=\"{}\" data-faults=\"{}\"",
        epochs.join(" "),
        spans.len()
    );
    let _ = writeln!(
        out,
        "<figure class=\"chart\" id=\"{}\" {attrs}>",
        chart_id(&s.tp)
    );

    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
        let _ = draw_main(&root, s, &hw, &leo, &leader_hw, &spans, end, ymax);
        let _ = root.present();
    }
    out.push_str(&clean_svg(&svg, "leo-hw"));
    out.push('\n');
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, ISR_HEIGHT)).into_drawing_area();
        let rf = run
            .output
            .assignment
            .get(&s.tp)
            .map_or(3, |r| r.len() as i64)
            .max(isr.iter().map(|p| p.1).max().unwrap_or(0));
        let _ = draw_isr(&root, &isr, &spans, end, rf);
        let _ = root.present();
    }
    out.push_str(&clean_svg(&svg, "isr"));
    out.push('\n');
    let _ = writeln!(
        out,
        "<figcaption><b>{}</b>: {} epoch changes, {} HW changes on the leader, {} truncations, \
         {} fault spans. <a href=\"#story-{}\">Its story in the report</a>.</figcaption>\n</figure>",
        esc(&s.tp.to_string()),
        s.epochs.len(),
        s.leader_hw.len(),
        s.truncations,
        spans.len(),
        esc(&s.tp.to_string())
    );
}

/// Plotters' SVG with a class for CSS and the `xmlns` kept (inline SVG in HTML ignores it, a
/// strict XML parser needs it).
fn clean_svg(svg: &str, class: &str) -> String {
    let svg = svg.trim();
    let svg = match svg.find("<svg") {
        Some(i) => &svg[i..],
        None => svg,
    };
    svg.replacen("<svg ", &format!("<svg class=\"{class}\" role=\"img\" "), 1)
}

type Area<'a> = DrawingArea<SVGBackend<'a>, plotters::coord::Shift>;
type DrawResult = Result<(), Box<dyn std::error::Error>>;

#[allow(clippy::too_many_arguments)]
fn draw_main(
    root: &Area<'_>,
    s: &PartitionSeries,
    hw: &BTreeMap<BrokerId, Vec<(u64, i64)>>,
    leo: &BTreeMap<BrokerId, Vec<(u64, i64)>>,
    leader_hw: &[(u64, i64)],
    spans: &[(u64, u64, String)],
    end: u64,
    ymax: i64,
) -> DrawResult {
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(root)
        .caption(
            format!("{}: log end offset and high watermark per replica", s.tp),
            ("sans-serif", 18),
        )
        .margin(8)
        .x_label_area_size(32)
        .y_label_area_size(60)
        .build_cartesian_2d(0u64..end, 0i64..ymax)?;
    // Epoch bands, alternating shades, labelled at the top.
    for (i, (from, epoch, l)) in s.epochs.iter().enumerate() {
        let to = s.epochs.get(i + 1).map_or(end, |e| e.0);
        let shade = if i % 2 == 0 {
            RGBColor(236, 242, 250)
        } else {
            RGBColor(250, 246, 232)
        };
        chart.draw_series(std::iter::once(Rectangle::new(
            [(*from, 0), (to.max(*from + 1), ymax)],
            shade.filled(),
        )))?;
        let label = match l {
            Some(b) => format!("e{epoch} b{}", b.0),
            None => format!("e{epoch} none"),
        };
        chart.draw_series(std::iter::once(Text::new(
            label,
            (*from, ymax - ymax / 40),
            ("sans-serif", 11).into_font().color(&RGBColor(60, 60, 60)),
        )))?;
    }
    // Fault spans, labelled with kind and nodes (staggered so labels do not overlap).
    for (i, (from, to, label)) in spans.iter().enumerate() {
        chart.draw_series(std::iter::once(Rectangle::new(
            [(*from, 0), (*to, ymax)],
            RGBColor(214, 39, 40).mix(0.10).filled(),
        )))?;
        let y = ymax - ymax / 10 - (i as i64 % 6) * (ymax / 16).max(1);
        chart.draw_series(std::iter::once(Text::new(
            label.clone(),
            (*from, y),
            ("sans-serif", 11).into_font().color(&RGBColor(160, 20, 20)),
        )))?;
    }
    chart
        .configure_mesh()
        .disable_x_mesh()
        .y_labels(8)
        .light_line_style(WHITE.mix(0.0))
        .x_desc("simulated time (ms)")
        .y_desc("offset")
        .label_style(("sans-serif", 12))
        .draw()?;
    for (b, v) in leo {
        let c = colour(*b);
        chart
            .draw_series(LineSeries::new(steps(v, end), c.mix(0.35).stroke_width(1)))?
            .label(format!("broker-{} LEO", b.0))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], c.mix(0.35)));
    }
    for (b, v) in hw {
        let c = colour(*b);
        chart
            .draw_series(LineSeries::new(steps(v, end), c.stroke_width(2)))?
            .label(format!("broker-{} HW", b.0))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], c.stroke_width(2)));
    }
    chart
        .draw_series(LineSeries::new(
            steps(leader_hw, end),
            BLACK.stroke_width(4),
        ))?
        .label("leader HW")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], BLACK.stroke_width(4)));
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(RGBColor(180, 180, 180))
        .label_font(("sans-serif", 11))
        .draw()?;
    Ok(())
}

fn draw_isr(
    root: &Area<'_>,
    isr: &[(u64, i64)],
    spans: &[(u64, u64, String)],
    end: u64,
    rf: i64,
) -> DrawResult {
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(root)
        .margin(8)
        .x_label_area_size(24)
        .y_label_area_size(60)
        .build_cartesian_2d(0u64..end, 0i64..rf + 1)?;
    for (from, to, _) in spans {
        chart.draw_series(std::iter::once(Rectangle::new(
            [(*from, 0), (*to, rf + 1)],
            RGBColor(214, 39, 40).mix(0.10).filled(),
        )))?;
    }
    chart
        .configure_mesh()
        .disable_x_mesh()
        .y_labels((rf + 2) as usize)
        .y_desc("ISR size")
        .label_style(("sans-serif", 11))
        .draw()?;
    chart.draw_series(LineSeries::new(
        steps(isr, end),
        RGBColor(44, 120, 44).stroke_width(2),
    ))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn downsampling_keeps_ends_and_bounds_the_count() {
        let points: Vec<(u64, i64)> = (0..10_000).map(|i| (i * 3, i as i64)).collect();
        let d = downsample(&points, 100);
        assert!(d.len() <= 101, "{}", d.len());
        assert_eq!(d.first(), points.first());
        assert_eq!(d.last(), points.last());
        assert!(d.windows(2).all(|w| w[0].0 < w[1].0));
        assert_eq!(downsample(&points[..50], 100), points[..50].to_vec());
        assert_eq!(d, downsample(&points, 100));
    }

    #[test]
    fn steps_hold_values_until_the_next_point() {
        assert_eq!(
            steps(&[(0, 1), (10, 5)], 20),
            vec![(0, 1), (10, 1), (10, 5), (20, 5)]
        );
    }
}
