//! `report.md`: the story of one run, written for a person who knows Kafka but not this code.
//!
//! A report answers, in this order:
//! 1. **what ran and how it ended**: the scenario's title, the seed, the verdict in words and
//!    the one command that replays the run;
//! 2. **what was tested**: the scenario's own description, the cluster, every Kafka setting
//!    the user wrote (beside Kafka's default), the topics with their replica assignment, the
//!    clients and the faults;
//! 3. **the verdict**: every check that ran, and for each failed check its concrete anomalies,
//!    followed by *what happened to it*: for each partition an anomaly sits in, the story of
//!    the offending offset reconstructed from the event log (who appended it as leader in
//!    which epoch with which ISR, who acknowledged it, which faults hit, who became leader next
//!    and with what log end offset, who truncated it, what every replica holds at the end);
//! 4. **the consumer groups**, for runs with subscribe-mode consumers ([`groups`]): who owned
//!    each partition when, the rebalances with their causes and durations, the committed
//!    offsets, and the members and commits behind any violation of a group check;
//! 5. **the timeline**: faults, controller and leader elections, ISR changes, truncations,
//!    log recoveries and halts in time order (high-watermark moves are only counted, per
//!    partition, because there are thousands);
//! 6. **statistics**;
//! 7. **which setting would have prevented it**: the standard lesson for each failed check
//!    (KAFKA-SEMANTICS.md, "Historical failures"), chosen from the settings the scenario
//!    actually used, or a plain statement that the settings were safe and the failure is a bug.
//!
//! The report is a pure function of the run. It reads no clock and orders everything it shows
//! (event-log order, `BTreeMap`s), so the same scenario and seed give the same report, except
//! for one line that is marked as wall-clock time.

pub mod counterfactual;
mod events;
mod group_story;
pub mod groups;
pub mod html;
mod lag;
mod lessons;
mod stats;
mod story;
#[cfg(test)]
mod test_support;
mod tested;
mod timeline;
mod verdict;

use crate::check::{checker_named, Lesson, Prevention, Violation};
use crate::history::{EventRecord, HistoryEntry};
use crate::run::{Outcome, RunResult};
use crate::scenario::{Expect, FaultAction, Scenario, ScheduledFault};
use ksim_model::config::{PropValue, Properties, SerdeClass, TruncationMode};
use ksim_model::event::{Event, OpType, OpValue};
use ksim_model::protocol::{Acks, ErrorCode};
use ksim_model::types::{BrokerId, NodeId, Offset, TopicPartition};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

pub use events::describe_event;
use events::*;
use group_story::*;
use lag::*;
use lessons::*;
use stats::*;
use story::*;
pub use story::{offset_story, OffsetStory, StoryLine};
pub use tested::acks_name;
use tested::*;
use timeline::*;
pub use timeline::{hw_summary, timeline, HwSummary, TimelineRow};
use verdict::*;
pub use verdict::{focus_points, Focus};

/// At most this many rows in the timeline table.
pub const TIMELINE_ROWS_MAX: usize = 200;
/// At most this many anomalies are spelled out per violated check.
pub const ANOMALIES_SHOWN_MAX: usize = 10;
/// At most this many events are listed in the story of one offset.
pub const STORY_EVENTS_MAX: usize = 40;
/// At most this many partitions get a "what happened to it" story.
pub const STORY_PARTITIONS_MAX: usize = 4;

/// Renders the report of a run as Markdown.
pub fn render(run: &RunResult) -> String {
    render_with(run, &run.stats(), &run.consumer_lag())
}

/// As [`render`], given `stats` and `lags`, what [`RunResult::stats`] and
/// [`RunResult::consumer_lag`] return for `run` (so that a caller that needs them too computes
/// them once).
pub fn render_with(
    run: &RunResult,
    stats: &crate::run::Stats,
    lags: &[crate::check::lag::ConsumerLag],
) -> String {
    let mut out = String::new();
    let safety = Safety::of(&run.scenario);
    write_title(&mut out, run);
    write_what_was_tested(&mut out, run, &safety);
    write_verdict(&mut out, run, stats, lags);
    groups::write_groups(&mut out, run);
    write_timeline(&mut out, run);
    write_statistics(&mut out, run, stats);
    write_prevention(&mut out, run, &safety);
    debug_assert!(out.ends_with('\n'));
    out
}

// ---------------------------------------------------------------------------------------------
// 1. Title
// ---------------------------------------------------------------------------------------------

/// The verdict in words: `OK`, `VIOLATION (expected)`,
/// `VIOLATION — unexpected: this scenario expects ok`, ...
pub fn verdict_words(
    outcome: Outcome,
    expect: Expect,
    expected: bool,
    expect_violations: &[String],
) -> String {
    let wanted = || {
        expect_violations
            .iter()
            .map(|c| format!("`{c}`"))
            .collect::<Vec<_>>()
            .join(" or ")
    };
    match (outcome, expect, expected) {
        (Outcome::Ok, Expect::Ok, _) => "OK".to_string(),
        (Outcome::Violation, Expect::Violation, true) => "VIOLATION (expected)".to_string(),
        (Outcome::Violation, Expect::Ok, _) => {
            "VIOLATION — unexpected: this scenario expects ok".to_string()
        }
        (Outcome::Violation, Expect::Violation, false) => format!(
            "VIOLATION — unexpected: this scenario expects {}, which did not fire",
            wanted()
        ),
        (Outcome::Ok, Expect::Violation, _) => format!(
            "OK — unexpected: this scenario expects a violation ({})",
            wanted()
        ),
    }
}

fn write_title(out: &mut String, run: &RunResult) {
    let sc = &run.scenario;
    let verdict = verdict_words(run.outcome, sc.expect, run.expected, &sc.expect_violations);
    let _ = writeln!(
        out,
        "# {} — seed {}: {}\n",
        sc.title, run.output.seed, verdict
    );
    let _ = writeln!(
        out,
        "Scenario `{}` (`{}`), seed {}. Replay this exact run with:\n",
        sc.name, sc.file, run.output.seed
    );
    let _ = writeln!(out, "```sh\n{}\n```\n", run.replay_command());
    let expectation = match sc.expect {
        Expect::Ok => "every check passes".to_string(),
        Expect::Violation => format!(
            "{} fails (it demonstrates a known failure)",
            sc.expect_violations
                .iter()
                .map(|c| format!("`{c}`"))
                .collect::<Vec<_>>()
                .join(" or ")
        ),
    };
    let mut failed: Vec<&str> = Vec::new();
    for v in &run.checks.violations {
        if !failed.contains(&v.check.as_str()) {
            failed.push(v.check.as_str());
        }
    }
    let result = if failed.is_empty() {
        "every check passed".to_string()
    } else {
        format!(
            "{} failed",
            failed
                .iter()
                .map(|c| format!("`{c}`"))
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    let _ = writeln!(
        out,
        "The scenario expects that {expectation}; in this run {result}.\n"
    );
}

// ---------------------------------------------------------------------------------------------
// Markdown
// ---------------------------------------------------------------------------------------------

/// Text safe inside a Markdown table cell: no `|`, no line breaks.
pub fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace(['\n', '\r'], " ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::{run_all, CheckInput};
    use crate::report::test_support::*;
    use crate::world::RunOutput;
    use ksim_model::event::ClientOp;

    #[test]
    fn verdict_words_and_cells() {
        let ev = vec!["lost-write".to_string()];
        assert_eq!(verdict_words(Outcome::Ok, Expect::Ok, true, &[]), "OK");
        assert_eq!(
            verdict_words(Outcome::Violation, Expect::Violation, true, &ev),
            "VIOLATION (expected)"
        );
        assert_eq!(
            verdict_words(Outcome::Violation, Expect::Ok, false, &[]),
            "VIOLATION — unexpected: this scenario expects ok"
        );
        assert!(verdict_words(Outcome::Ok, Expect::Violation, false, &ev)
            .starts_with("OK — unexpected"));
        assert_eq!(cell("a|b\nc"), "a\\|b c");
    }

    #[test]
    fn a_hand_built_failing_run_renders_every_section() {
        let scenario = crate::scenario::parse(SCENARIO, "scenarios/tiny.toml").expect("parses");
        let mut history = acked_history(&tp1(), 4242, 17, 5232);
        // A consumer read offset 18 (a later record) but never value 4242.
        history.push(HistoryEntry {
            index: 2,
            time_ms: 8000,
            process: NodeId::Consumer(0),
            op: ClientOp {
                op_type: OpType::Ok,
                op_id: 1,
                value: OpValue::Poll {
                    records: vec![ksim_model::event::PolledRecord {
                        tp: tp1(),
                        offset: Offset(18),
                        value: 5000,
                    }],
                },
                error: None,
            },
        });
        let events = failover_events();
        let final_logs = BTreeMap::new();
        let checks = run_all(&CheckInput {
            history: &history,
            events: &events,
            final_logs: &final_logs,
            scenario: None,
            snapshots: &[],
        });
        let mut assignment = BTreeMap::new();
        assignment.insert(TopicPartition::new("events", 0), vec![b(0), b(1), b(2)]);
        assignment.insert(tp1(), vec![b(2), b(0), b(1)]);
        let run = RunResult {
            scenario,
            output: RunOutput {
                seed: 7,
                history,
                events,
                faults: Vec::new(),
                final_logs,
                snapshots: Vec::new(),
                assignment,
                messages: 123,
                fsyncs: 0,
                fsync_us: 0,
                simulated_ms: 15000,
                wall_ms: 42,
                cpu_us: 0,
            },
            outcome: Outcome::Violation,
            expected: true,
            reached: Default::default(),
            missed: Vec::new(),
            checks,
            history_hash: "abc".into(),
        };
        let md = render(&run);
        for want in [
            "# A tiny failover — seed 7: VIOLATION (expected)",
            "```sh\ncargo run --release -- run scenarios/tiny.toml --seed 7\n```",
            "## What was tested",
            "| `min.insync.replicas` | `1` | 1 |",
            "| events-1 | [broker-2, broker-0, broker-1] |",
            "`acks=1`, `enable.idempotence=false`",
            "| `lost-write` | **FAIL** | 1 |",
            "## What happened to it",
            "### events-1",
            "- t=5230 ms: broker-2, leader in epoch 3 with ISR [broker-2], appended offset 17",
            "## Timeline",
            "| 5400 | zk | nemesis killed broker-2",
            "## Statistics",
            "Wall-clock time (varies between runs and machines; not part of the deterministic output): 42 ms.",
            "## Which setting would have prevented it",
            "Use `acks=all`",
        ] {
            assert!(md.contains(want), "missing {want:?} in:\n{md}");
        }
        // Deterministic apart from the marked wall-clock line.
        assert_eq!(md, render(&run));
        assert_eq!(md.matches("Wall-clock").count(), 1);
    }

    const SCENARIO: &str = r#"
[scenario]
name = "tiny"
title = "A tiny failover"
description = "Broker-2 dies with an acks=1 record."
duration_ms = 10000
seeds = [1]
expect = "violation"
expect_violations = ["lost-write"]

[cluster]
brokers = 3
controller = "zk"

[cluster.broker_config]
"min.insync.replicas" = 1

[[topics]]
name = "events"
partitions = 2
replication_factor = 3
replica_assignment = [[0, 1, 2], [2, 0, 1]]

[[producers]]
topic = "events"
rate_per_sec = 10
config = { acks = 1, "enable.idempotence" = false }

[[consumers]]
topics = ["events"]
config = { "auto.offset.reset" = "earliest" }
"#;
}
