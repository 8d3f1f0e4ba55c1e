//! `report.html`: the run's report as one self-contained page a person opens from disk.
//!
//! The page holds, in this order: the title and the replay command; the verdict table (each
//! failed check linked to the charts of the partitions its anomalies are in); the
//! counterfactual table when the run was re-run with the settings its lessons propose
//! ([`super::counterfactual`]); per partition, a chart over simulated time of each replica's
//! log end offset and high watermark with leader epochs as bands, the ISR size and the faults
//! as shaded spans ([`charts`]); for runs with consumer groups, per group a chart of which
//! member owned each partition when, with the rebalances as bands ([`groups`]); a space-time
//! diagram of the window around the first violation
//! ([`spacetime`]); Jepsen's timeline of client operations ([`timeline`]); and the whole of
//! `report.md` (verdict, the offset story, timeline, statistics, lessons) rendered as HTML,
//! its partition headings linked to the charts.
//!
//! Self-contained: inline CSS and SVG only, no script, no font, nothing fetched, so it opens
//! from disk with no network. Well-formed XML (void elements closed, text escaped), so a strict
//! parser reads it; the tests do. Deterministic: a pure function of the run (and of the
//! counterfactual re-runs, themselves deterministic), with `report.md`'s one wall-clock line
//! left out, so the same scenario and seed give a byte-identical page.
//!
//! Size is bounded: at most [`PARTITION_CHARTS_MAX`] partition charts (partitions with
//! violations first, then those hit by truncations, then the others in order; the page says
//! how many were left out), each series downsampled to at most [`SERIES_POINTS_MAX`] points
//! (the last point of each time bucket, so final values are exact), the client timeline
//! aggregated into [`timeline::BUCKETS`] time buckets per lane, and the space-time diagram
//! capped at [`spacetime::ARROWS_MAX`] arrows.

mod charts;
mod groups;
mod spacetime;
mod timeline;

use super::counterfactual::Counterfactuals;
use crate::check::checker_named;
use crate::run::RunResult;
use ksim_model::types::TopicPartition;
use std::collections::BTreeSet;
use std::fmt::Write as _;

pub use charts::{partition_series, PartitionSeries};

/// At most this many partitions get a chart.
pub const PARTITION_CHARTS_MAX: usize = 8;
/// At most this many points per chart series (after downsampling).
pub const SERIES_POINTS_MAX: usize = 600;

/// Renders `report.html` for `run`, with the counterfactual table when `counterfactuals` is
/// given.
pub fn render(run: &RunResult, counterfactuals: Option<&Counterfactuals>) -> String {
    render_with_markdown(run, counterfactuals, &super::render(run))
}

/// As [`render`], given `markdown`, what [`super::render`] returns for `run` (so that a caller
/// that writes `report.md` too renders it once).
pub fn render_with_markdown(
    run: &RunResult,
    counterfactuals: Option<&Counterfactuals>,
    markdown: &str,
) -> String {
    let sc = &run.scenario;
    let verdict = super::verdict_words(run.outcome, sc.expect, run.expected, &sc.expect_violations);
    let mut out = String::new();
    out.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\"/>\n");
    out.push_str(
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"/>\n<title>",
    );
    out.push_str(&esc(&format!(
        "{} — seed {}: {}",
        sc.title, run.output.seed, verdict
    )));
    out.push_str("</title>\n<style>\n");
    out.push_str(CSS);
    out.push_str("</style>\n</head>\n<body>\n");
    let _ = writeln!(
        out,
        "<header><h1>{} — seed {}: <span class=\"{}\">{}</span></h1>",
        esc(&sc.title),
        run.output.seed,
        if run.checks.violations.is_empty() {
            "ok"
        } else {
            "fail"
        },
        esc(&verdict)
    );
    let _ = writeln!(
        out,
        "<p>Scenario <code>{}</code> (<code>{}</code>), seed {}. Replay this exact run with:</p>\n<pre>{}</pre></header>",
        esc(&sc.name),
        esc(&sc.file),
        run.output.seed,
        esc(&run.replay_command())
    );
    out.push_str(
        "<nav><a href=\"#verdict\">Verdict</a> · <a href=\"#charts\">Partitions</a> · \
         <a href=\"#spacetime\">Space-time</a> · <a href=\"#clients\">Clients</a>",
    );
    if groups::has_groups(run) {
        out.push_str(" · <a href=\"#groups\">Groups</a>");
    }
    if counterfactuals.is_some() {
        out.push_str(" · <a href=\"#counterfactuals\">Counterfactuals</a>");
    }
    out.push_str(" · <a href=\"#report\">Full report</a></nav>\n");

    let series = partition_series(run);
    let shown = charted_partitions(run, &series);
    let charted: BTreeSet<TopicPartition> = shown.iter().map(|s| s.tp.clone()).collect();

    write_verdict_table(&mut out, run, &charted);
    if let Some(cf) = counterfactuals {
        write_counterfactuals(&mut out, cf);
    }

    out.push_str(
        "<section id=\"charts\">\n<h2>Partitions: log end offsets and high watermarks</h2>\n",
    );
    out.push_str(
        "<p class=\"note\">Per partition, over simulated time: each replica's high watermark \
         (thin, one colour per broker), the leader's high watermark (bold black), each \
         replica's log end offset (pale), leader epochs as bands (labelled <code>eN bX</code>: \
         epoch N led by broker X, as the controller wrote it), the faults as red spans \
         labelled with their kind and nodes, and below, the ISR size the controller wrote. A \
         leader's log end offset is exact (its appends are recorded); a follower's is known at \
         role changes, truncations, recoveries and replication snapshots, and between them \
         drawn as at least its own high watermark (a follower's high watermark never passes \
         its log end offset).</p>\n",
    );
    if shown.len() < series.len() {
        let _ = writeln!(
            out,
            "<p class=\"note\">{} of {} partitions shown (partitions with violations first, then \
             the workload's topics before internal ones, then those with truncations, then in \
             order; at most {PARTITION_CHARTS_MAX}).</p>",
            shown.len(),
            series.len()
        );
    }
    for s in &shown {
        charts::write_chart(&mut out, run, s);
    }
    out.push_str("</section>\n");

    groups::write(&mut out, run);
    spacetime::write(&mut out, run);
    timeline::write(&mut out, run);
    write_markdown(&mut out, markdown, &charted);
    out.push_str("</body>\n</html>\n");
    out
}

/// The partitions that get a chart: with violations first, then with truncations, then the
/// others, each group in partition order, at most [`PARTITION_CHARTS_MAX`].
fn charted_partitions<'a>(
    run: &RunResult,
    series: &'a [PartitionSeries],
) -> Vec<&'a PartitionSeries> {
    let violated: BTreeSet<TopicPartition> = run
        .checks
        .violations
        .iter()
        .flat_map(super::focus_points)
        .map(|f| f.tp)
        .collect();
    // Internal topics (`__consumer_offsets`, 50 partitions by default) come after the
    // workload's own topics unless a violation names them: a learner looks for `events-0`.
    let internal = |s: &PartitionSeries| s.tp.topic.starts_with("__");
    let rank = |s: &PartitionSeries| (!violated.contains(&s.tp), internal(s), s.truncations == 0);
    let mut order: Vec<&PartitionSeries> = series.iter().collect();
    order.sort_by_key(|s| rank(s));
    order.truncate(PARTITION_CHARTS_MAX);
    order.sort_by(|a, b| (internal(a), &a.tp).cmp(&(internal(b), &b.tp)));
    order
}

fn write_verdict_table(out: &mut String, run: &RunResult, charted: &BTreeSet<TopicPartition>) {
    out.push_str("<section id=\"verdict\">\n<h2>Verdict</h2>\n<table>\n<thead><tr><th>check</th><th>result</th><th>anomalies</th><th>partitions</th><th>what it asserts</th></tr></thead>\n<tbody>\n");
    for name in &run.checks.checks_run {
        let violations: Vec<&crate::check::Violation> = run
            .checks
            .violations
            .iter()
            .filter(|v| &v.check == name)
            .collect();
        let anomalies: usize = violations
            .iter()
            .map(|v| {
                v.details
                    .get("anomalies")
                    .and_then(serde_json::Value::as_array)
                    .map_or(1, Vec::len)
            })
            .sum();
        let tps: BTreeSet<TopicPartition> = violations
            .iter()
            .flat_map(|v| super::focus_points(v))
            .map(|f| f.tp)
            .collect();
        let links: Vec<String> = tps
            .iter()
            .map(|tp| {
                if charted.contains(tp) {
                    format!("<a href=\"#{}\">{}</a>", chart_id(tp), esc(&tp.to_string()))
                } else {
                    esc(&tp.to_string())
                }
            })
            .collect();
        let statement = checker_named(name).map_or(String::new(), |c| c.statement().to_string());
        let (class, result) = if violations.is_empty() {
            ("ok", "pass")
        } else {
            ("fail", "FAIL")
        };
        let _ = writeln!(
            out,
            "<tr class=\"{class}\"><td><code>{}</code></td><td>{result}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(name),
            if violations.is_empty() {
                String::new()
            } else {
                anomalies.to_string()
            },
            links.join(", "),
            esc(&statement)
        );
    }
    out.push_str("</tbody>\n</table>\n");
    for v in &run.checks.violations {
        let _ = writeln!(
            out,
            "<p class=\"violation\"><code>{}</code>: {}</p>",
            esc(&v.check),
            esc(&crate::cli::truncate_message(&v.message, 600))
        );
    }
    out.push_str("</section>\n");
}

fn write_counterfactuals(out: &mut String, cf: &Counterfactuals) {
    out.push_str("<section id=\"counterfactuals\">\n<h2>Counterfactual re-runs</h2>\n");
    let _ = writeln!(out, "<p>{}</p>", esc(&cf.intro()));
    if !cf.runs.is_empty() {
        out.push_str("<table>\n<thead><tr><th>setting changed</th><th>outcome</th><th>what changed</th><th>fault schedule</th></tr></thead>\n<tbody>\n");
        for r in &cf.runs {
            let _ = writeln!(
                out,
                "<tr class=\"{}\"><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td></tr>",
                if r.fixed() { "ok" } else { "fail" },
                esc(&r.setting),
                esc(&r.outcome_words()),
                esc(&r.what_changed),
                esc(&r.schedule_words())
            );
        }
        out.push_str("</tbody>\n</table>\n");
    }
    for n in &cf.notes {
        let _ = writeln!(out, "<p class=\"note\">{}</p>", esc(n));
    }
    out.push_str("</section>\n");
}

/// `report.md` (less its wall-clock line and the counterfactual section, shown above) as HTML,
/// with every `### <partition>` heading linked to that partition's chart.
fn write_markdown(out: &mut String, markdown: &str, charted: &BTreeSet<TopicPartition>) {
    let md: String = markdown
        .lines()
        .filter(|l| !l.contains("Wall-clock"))
        .map(|l| format!("{l}\n"))
        .collect();
    let mut options = pulldown_cmark::Options::empty();
    options.insert(pulldown_cmark::Options::ENABLE_TABLES);
    let parser = pulldown_cmark::Parser::new_ext(&md, options);
    let mut html = String::new();
    pulldown_cmark::html::push_html(&mut html, parser);
    for tp in charted {
        let name = esc(&tp.to_string());
        html = html.replace(
            &format!("<h3>{name}</h3>"),
            &format!(
                "<h3 id=\"story-{}\">{name} <a class=\"jump\" href=\"#{}\">(chart)</a></h3>",
                chart_id(tp).trim_start_matches("chart-"),
                chart_id(tp)
            ),
        );
    }
    out.push_str(
        "<section id=\"report\">\n<h2>The full report (report.md)</h2>\n<div class=\"md\">\n",
    );
    out.push_str(&html);
    out.push_str("</div>\n</section>\n");
}

/// The gallery's `index.html`: one row per scenario (name, seed, verdict, title), each linking
/// its `report.html` (`<name>.html`) and `report.md` (`<name>.md`).
pub fn gallery_index(rows: &[(String, u64, &str, String)]) -> String {
    let mut out = String::from(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\"/>\n<title>ksim report gallery</title>\n<style>\n",
    );
    out.push_str(CSS);
    out.push_str(
        "</style>\n</head>\n<body>\n<h1>Report gallery</h1>\n<p>One report per shipped \
         scenario, on its first pinned seed. Regenerate with <code>cargo run --release -- \
         gallery</code>.</p>\n<table>\n<thead><tr><th>scenario</th><th>seed</th><th>verdict</th><th>title</th></tr></thead>\n<tbody>\n",
    );
    for (name, seed, verdict, title) in rows {
        let _ = writeln!(
            out,
            "<tr><td><a href=\"{n}.html\">{n}</a> (<a href=\"{n}.md\">md</a>)</td><td>{seed}</td><td>{}</td><td>{}</td></tr>",
            esc(verdict),
            esc(title),
            n = esc(name)
        );
    }
    out.push_str("</tbody>\n</table>\n</body>\n</html>\n");
    out
}

/// The HTML id of a partition's chart: `chart-events-0` (topic names are `[A-Za-z0-9._-]`).
pub fn chart_id(tp: &TopicPartition) -> String {
    format!("chart-{tp}")
}

/// `s` escaped for HTML text and attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// One colour per broker (by id, cycling), as `#rrggbb`: Tableau's ten.
pub(super) const BROKER_COLOURS: [(u8, u8, u8); 10] = [
    (31, 119, 180),
    (255, 127, 14),
    (44, 160, 44),
    (148, 103, 189),
    (140, 86, 75),
    (227, 119, 194),
    (127, 127, 127),
    (188, 189, 34),
    (23, 190, 207),
    (214, 39, 40),
];

const CSS: &str = r#"body { font-family: system-ui, -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; max-width: 1240px; margin: 0 auto; padding: 0 20px 40px; color: #222; line-height: 1.45; }
h1 { font-size: 1.5em; margin-top: 0.8em; }
h2 { border-bottom: 1px solid #ccc; padding-bottom: 0.2em; margin-top: 1.6em; }
code, pre { font-family: ui-monospace, Menlo, Consolas, monospace; font-size: 0.92em; }
pre { background: #f6f6f6; padding: 8px 10px; overflow-x: auto; }
nav { position: sticky; top: 0; background: #fff; padding: 6px 0; border-bottom: 1px solid #eee; z-index: 1; }
table { border-collapse: collapse; margin: 0.6em 0; font-size: 0.92em; }
th, td { border: 1px solid #ccc; padding: 3px 7px; text-align: left; vertical-align: top; }
th { background: #f2f2f2; }
tr.fail td:nth-child(2), span.fail { color: #b00020; font-weight: bold; }
tr.ok td:nth-child(2), span.ok { color: #1b7a1b; }
p.note { color: #555; font-size: 0.9em; }
p.violation { font-size: 0.92em; }
figure { margin: 1.2em 0; page-break-inside: avoid; break-inside: avoid; }
figure svg { max-width: 100%; height: auto; display: block; }
figcaption { font-size: 0.9em; color: #444; }
a.jump { font-size: 0.75em; font-weight: normal; }
.md table { max-width: 100%; }
@media print {
  nav { display: none; }
  body { max-width: none; padding: 0; font-size: 10pt; }
  a { color: inherit; text-decoration: none; }
  section { page-break-before: auto; }
  h2 { page-break-after: avoid; break-after: avoid; }
  pre { white-space: pre-wrap; }
}
"#;

#[cfg(test)]
mod tests;
