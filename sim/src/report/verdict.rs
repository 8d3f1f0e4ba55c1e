//! Section 3 of `report.md`, *the verdict*: every check that ran or was skipped with what it
//! asserts, the checks' notes, and for each failed check its concrete anomalies; and
//! [`focus_points`], the (partition, offset) pairs an anomaly names, which the story follows.

use super::*;

// ---------------------------------------------------------------------------------------------
// 3. Verdict
// ---------------------------------------------------------------------------------------------

/// What each check asserts, in one sentence (empty for a name no checker has).
pub(super) fn check_statement(check: &str) -> &'static str {
    checker_named(check).map_or("", |c| c.statement())
}

/// What the scenario says every run must reach (`reach`), whether this run did and how often:
/// a run that missed an item proves nothing about it, however clean its checks.
fn write_reach(out: &mut String, run: &RunResult) {
    if run.scenario.reach.is_empty() {
        return;
    }
    if run.missed.is_empty() {
        out.push_str("The run reached everything the scenario is for:\n\n");
    } else {
        let _ = writeln!(
            out,
            "**The run is off its expectation: it never reached {}.** A run that does not get \
             there says nothing about what the scenario is for, whatever its checks say; try \
             another seed.\n",
            run.missed
                .iter()
                .map(|m| format!("`{m}`"))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    out.push_str("| must reach | times | meaning |\n|---|---|---|\n");
    for item in &run.scenario.reach {
        let times = match run.reached.get(item) {
            Some(n) => n.to_string(),
            None => "**never**".to_string(),
        };
        let _ = writeln!(
            out,
            "| `{item}` | {times} | {} |",
            cell(&crate::reach::meaning(item))
        );
    }
    out.push('\n');
}

pub(super) fn write_verdict(
    out: &mut String,
    run: &RunResult,
    stats: &crate::run::Stats,
    lags: &[crate::check::lag::ConsumerLag],
) {
    out.push_str("## Verdict\n\n");
    let by_check: BTreeMap<&str, Vec<&Violation>> =
        run.checks
            .violations
            .iter()
            .fold(BTreeMap::new(), |mut m, v| {
                m.entry(v.check.as_str()).or_insert_with(Vec::new).push(v);
                m
            });
    out.push_str("| check | result | anomalies | what it asserts |\n|---|---|---|---|\n");
    for check in &run.checks.checks_run {
        let (result, count) = match by_check.get(check.as_str()) {
            Some(vs) => ("**FAIL**", vs.iter().map(|v| anomaly_count(v)).sum::<u64>()),
            None => ("pass", 0),
        };
        let _ = writeln!(
            out,
            "| `{check}` | {result} | {count} | {} |",
            cell(check_statement(check))
        );
    }
    for skipped in &run.checks.checks_skipped {
        let _ = writeln!(
            out,
            "| `{}` | skipped | - | {} |",
            skipped.check,
            cell(&skipped.reason)
        );
    }
    out.push('\n');
    write_reach(out, run);
    if !run.checks.notes.is_empty() {
        out.push_str("What the checks deliberately did not judge, and why:\n\n");
        for note in &run.checks.notes {
            let _ = writeln!(out, "- `{}`: {}", note.check, note.note);
        }
        out.push('\n');
    }
    let not_run: Vec<&String> = run
        .scenario
        .expect_violations
        .iter()
        .filter(|c| {
            !run.checks.checks_run.contains(c)
                && !run.checks.checks_skipped.iter().any(|s| &s.check == *c)
        })
        .collect();
    if !not_run.is_empty() {
        let _ = writeln!(
            out,
            "The scenario expects {} but no such checker exists yet, so {} could not fire in \
             this run.\n",
            not_run
                .iter()
                .map(|c| format!("`{c}`"))
                .collect::<Vec<_>>()
                .join(", "),
            if not_run.len() == 1 { "it" } else { "they" }
        );
    }
    if stats.segments_rolled + stats.segments_deleted + stats.segments_cleaned > 0 {
        let _ = writeln!(
            out,
            "The logs rolled {} segment{}, retention deleted {} and the cleaner rewrote {} \
             (over all replicas). {} acknowledged record{} fell below a log start offset that \
             retention set and {} {} compacted away (superseded by a later record with the same \
             key); the checks that would otherwise report them excuse exactly those and say so \
             in their notes.\n",
            stats.segments_rolled,
            if stats.segments_rolled == 1 { "" } else { "s" },
            stats.segments_deleted,
            stats.segments_cleaned,
            stats.records_deleted_by_retention,
            if stats.records_deleted_by_retention == 1 {
                ""
            } else {
                "s"
            },
            stats.records_removed_by_compaction,
            if stats.records_removed_by_compaction == 1 {
                "was"
            } else {
                "were"
            },
        );
    }
    write_lag(out, lags, stats);
    if run.checks.violations.is_empty() {
        out.push_str("Every check passed.\n\n");
        return;
    }

    for v in &run.checks.violations {
        let _ = writeln!(out, "### `{}` failed\n", v.check);
        let _ = writeln!(out, "{}\n", v.message);
        let anomalies = v
            .details
            .get("anomalies")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let total = anomaly_count(v);
        if anomalies.len() > 1 || total > 1 {
            let shown = anomalies.len().min(ANOMALIES_SHOWN_MAX);
            let _ = writeln!(
                out,
                "{total} anomal{} in all; the first {shown}:\n",
                if total == 1 { "y" } else { "ies" }
            );
            for a in anomalies.iter().take(ANOMALIES_SHOWN_MAX) {
                let sentence = a
                    .get("message")
                    .and_then(Value::as_str)
                    .map(str::to_string)
                    .unwrap_or_else(|| a.to_string());
                let _ = writeln!(out, "- {}", ensure_period(&sentence));
            }
            if total as usize > shown {
                let _ = writeln!(
                    out,
                    "- … and {} more (`summary.json` lists up to {} of them as data).",
                    total as usize - shown,
                    crate::check::MAX_DETAILS
                );
            }
            out.push('\n');
        }
    }

    write_what_happened(out, run);
}

pub(super) fn anomaly_count(v: &Violation) -> u64 {
    v.details
        .get("count")
        .and_then(Value::as_u64)
        .unwrap_or_else(|| {
            v.details
                .get("anomalies")
                .and_then(Value::as_array)
                .map_or(1, |a| a.len() as u64)
        })
}

pub(super) fn ensure_period(s: &str) -> String {
    if s.ends_with('.') {
        s.to_string()
    } else {
        format!("{s}.")
    }
}

/// One place an anomaly points at: a partition and, when known, an offset, a value and a time.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Focus {
    pub tp: TopicPartition,
    pub offset: Option<Offset>,
    pub value: Option<u64>,
    pub time_ms: Option<u64>,
    /// The check that reported it.
    pub check: String,
}

/// `events-1` back into a partition.
pub(super) fn parse_tp(s: &str) -> Option<TopicPartition> {
    let (topic, p) = s.rsplit_once('-')?;
    let partition = p.parse().ok()?;
    (!topic.is_empty()).then(|| TopicPartition::new(topic, partition))
}

/// Every (partition, offset, value, time) a violation's `details` name, in detail order. Reads
/// the shapes the checkers write: `{tp, offset, value, acked|at}` and
/// `{value, positions: [{tp, offset, first_seen}]}`.
pub fn focus_points(v: &Violation) -> Vec<Focus> {
    let mut out = Vec::new();
    let Some(anomalies) = v.details.get("anomalies").and_then(Value::as_array) else {
        return out;
    };
    let time_of = |x: &Value| {
        ["acked", "at", "first_seen"].iter().find_map(|k| {
            x.get(*k)
                .and_then(|t| t.get("time_ms"))
                .and_then(Value::as_u64)
        })
    };
    for a in anomalies {
        let value = a.get("value").and_then(Value::as_u64);
        if let Some(tp) = a.get("tp").and_then(Value::as_str).and_then(parse_tp) {
            out.push(Focus {
                tp,
                offset: a.get("offset").and_then(Value::as_i64).map(Offset),
                value,
                time_ms: time_of(a),
                check: v.check.clone(),
            });
        }
        for p in a
            .get("positions")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(tp) = p.get("tp").and_then(Value::as_str).and_then(parse_tp) {
                out.push(Focus {
                    tp,
                    offset: p.get("offset").and_then(Value::as_i64).map(Offset),
                    value,
                    time_ms: time_of(p),
                    check: v.check.clone(),
                });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn focus_points_read_both_detail_shapes() {
        let v = Violation {
            check: "lost-write".into(),
            message: "m".into(),
            details: serde_json::json!({"count": 2, "anomalies": [
                {"value": 7, "tp": "my-topic-1", "offset": 17, "acked": {"time_ms": 5230}},
                {"value": 8, "positions": [
                    {"tp": "events-0", "offset": 3, "first_seen": {"time_ms": 10}},
                    {"tp": "events-0", "offset": 9, "first_seen": {"time_ms": 20}}
                ]}
            ]}),
        };
        let f = focus_points(&v);
        assert_eq!(f.len(), 3);
        assert_eq!(f[0].tp, TopicPartition::new("my-topic", 1));
        assert_eq!(
            (f[0].offset, f[0].value, f[0].time_ms),
            (Some(Offset(17)), Some(7), Some(5230))
        );
        assert_eq!(
            (f[2].offset, f[2].value, f[2].time_ms),
            (Some(Offset(9)), Some(8), Some(20))
        );
        let empty = Violation {
            details: serde_json::json!({}),
            ..v
        };
        assert!(focus_points(&empty).is_empty());
    }
}
