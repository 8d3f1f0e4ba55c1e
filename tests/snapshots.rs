//! Golden files of one pinned run, the default scenario on seed 1: its `summary.json` and its
//! `report.md`. Any change to what the simulator does (a different fault, one message more, a
//! reworded report) shows up here as a reviewable diff of `tests/snapshots/*.snap`.
//!
//! Wall-clock time is the only thing allowed to differ between two runs, so it is taken out:
//! `stats.wall_ms` from the summary, and every line of the report that mentions wall time.
//!
//! After an intended change, regenerate with
//! `INSTA_UPDATE=always cargo test --test snapshots` and commit the `.snap` files. With
//! `CI=true` insta fails on a mismatch instead of writing.

use ksim::run::{run, RunResult};
use ksim::scenario::load;
use serde_json::Value;
use std::path::Path;
use std::sync::OnceLock;

/// The pinned run, shared by the tests of this file (it is deterministic, so running it once
/// is the same as running it per test).
fn pinned_run() -> &'static RunResult {
    static RUN: OnceLock<RunResult> = OnceLock::new();
    RUN.get_or_init(|| {
        // Relative, as a user types it: the summary's replay command contains it.
        let sc = load(Path::new("scenarios/default.toml")).unwrap_or_else(|e| panic!("{e}"));
        run(&sc, 1)
    })
}

/// Whether a report line mentions wall-clock time ("wall time", "wall-clock", `wall_ms`),
/// as opposed to a word that merely contains "wall".
fn mentions_wall_clock(line: &str) -> bool {
    let lower = line.to_ascii_lowercase();
    lower.match_indices("wall").any(|(i, _)| {
        !lower[..i]
            .chars()
            .next_back()
            .is_some_and(|c| c.is_ascii_alphabetic())
    })
}

#[test]
fn default_seed_1_summary() {
    let r = pinned_run();
    let mut summary = serde_json::to_value(r.summary()).expect("summary serializes");
    let removed = summary
        .get_mut("stats")
        .and_then(Value::as_object_mut)
        .and_then(|stats| stats.remove("wall_ms"));
    assert!(removed.is_some(), "summary has no stats.wall_ms: {summary}");
    insta::assert_json_snapshot!("default_seed_1_summary", summary);
}

#[test]
fn default_seed_1_report() {
    let report = ksim::report::render(pinned_run());
    assert!(!report.trim().is_empty(), "empty report");
    let kept: Vec<&str> = report
        .lines()
        .filter(|line| !mentions_wall_clock(line))
        .collect();
    insta::assert_snapshot!("default_seed_1_report", kept.join("\n"));
}

#[test]
fn wall_clock_lines_are_recognised() {
    for line in [
        "Wall time: 812 ms",
        "- wall-clock: 0.8 s",
        "| wall_ms | 812 |",
        "simulated 45 s in 0.8 s (wall)",
    ] {
        assert!(mentions_wall_clock(line), "{line}");
    }
    for line in [
        "a firewall rule",
        "swallowed",
        "Outcome: Ok",
        "45000 ms simulated",
    ] {
        assert!(!mentions_wall_clock(line), "{line}");
    }
}
