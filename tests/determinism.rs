//! The same scenario and seed always give the same run, byte for byte (SCENARIOS.md, "What a
//! run writes"): `history.jsonl`, `events.jsonl` and `summary.json` with its one wall-clock
//! field (`stats.wall_ms`) removed. A replay command is only worth printing if this holds.
//!
//! The two runs of a pair execute at the same time on two threads, so the test also catches
//! state leaking between concurrent runs in one process (statics, shared RNGs).
//! `different_seeds_give_different_histories` keeps the comparison from passing vacuously.

use ksim::history::to_jsonl;
use ksim::run::{run, RunResult};
use ksim::scenario::{load, Scenario};
use serde_json::Value;
use std::path::Path;

fn scenario(file: &str) -> Scenario {
    load(Path::new(file)).unwrap_or_else(|e| panic!("{e}"))
}

/// Runs the pair concurrently.
fn run_pair(sc: &Scenario, seed_a: u64, seed_b: u64) -> (RunResult, RunResult) {
    std::thread::scope(|s| {
        let a = s.spawn(|| run(sc, seed_a));
        let b = run(sc, seed_b);
        (a.join().expect("first run panicked"), b)
    })
}

/// `summary()` as JSON without `stats.wall_ms`, the only field that may differ between runs.
fn summary_without_wall_clock(r: &RunResult) -> Value {
    let mut v = serde_json::to_value(r.summary()).expect("summary serializes");
    let removed = v
        .get_mut("stats")
        .and_then(Value::as_object_mut)
        .and_then(|stats| stats.remove("wall_ms"));
    assert!(removed.is_some(), "summary has no stats.wall_ms: {v}");
    v
}

/// Byte equality, reported as the first differing line rather than two huge strings.
fn assert_same_text(what: &str, a: &str, b: &str) {
    if a == b {
        return;
    }
    let (mut la, mut lb) = (a.lines(), b.lines());
    let mut n = 1;
    loop {
        match (la.next(), lb.next()) {
            (Some(x), Some(y)) if x == y => n += 1,
            (x, y) => panic!(
                "{what} differs between two runs of the same scenario and seed, first at line {n}:\n\
                 first run:  {}\nsecond run: {}",
                x.unwrap_or("(end of file)"),
                y.unwrap_or("(end of file)")
            ),
        }
    }
}

fn assert_deterministic(file: &str, seed: u64) {
    let sc = scenario(file);
    let (a, b) = run_pair(&sc, seed, seed);
    // Not vacuous: the run did something.
    assert!(
        !a.output.history.is_empty(),
        "{file} seed {seed}: empty history"
    );
    assert!(!a.output.events.is_empty(), "{file} seed {seed}: no events");
    assert_same_text(
        "history.jsonl",
        &to_jsonl(&a.output.history),
        &to_jsonl(&b.output.history),
    );
    assert_same_text(
        "events.jsonl",
        &to_jsonl(&a.output.events),
        &to_jsonl(&b.output.events),
    );
    assert_eq!(a.history_hash, b.history_hash);
    let (sa, sb) = (
        summary_without_wall_clock(&a),
        summary_without_wall_clock(&b),
    );
    assert_same_text(
        "summary.json (stats.wall_ms removed)",
        &serde_json::to_string_pretty(&sa).expect("json"),
        &serde_json::to_string_pretty(&sb).expect("json"),
    );
    assert_eq!(sa, sb);
    // The reports too: report.md apart from its marked wall-clock line, report.html whole
    // (it leaves the wall clock out).
    let without_wall_clock = |md: String| -> String {
        md.lines()
            .filter(|l| !l.starts_with("Wall-clock time"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_same_text(
        "report.md (wall-clock line removed)",
        &without_wall_clock(ksim::report::render(&a)),
        &without_wall_clock(ksim::report::render(&b)),
    );
    assert_same_text(
        "report.html",
        &ksim::report::html::render(&a, None),
        &ksim::report::html::render(&b, None),
    );
}

#[test]
fn default_seed_1_is_deterministic() {
    assert_deterministic("scenarios/default.toml", 1);
}

#[test]
fn acks1_leader_failover_seed_2_is_deterministic() {
    assert_deterministic("scenarios/acks1-leader-failover.toml", 2);
}

#[test]
fn consumer_group_seed_1_is_deterministic() {
    assert_deterministic("scenarios/consumer-group-rebalance-under-faults.toml", 1);
}

#[test]
fn different_seeds_give_different_histories() {
    let sc = scenario("scenarios/default.toml");
    let (a, b) = run_pair(&sc, 1, 2);
    assert!(!a.output.history.is_empty() && !b.output.history.is_empty());
    assert_ne!(
        to_jsonl(&a.output.history),
        to_jsonl(&b.output.history),
        "seeds 1 and 2 of the default scenario gave the same history: is the seed used at all?"
    );
    assert_ne!(a.history_hash, b.history_hash);
}

#[test]
fn write_outputs_writes_the_four_files() {
    let sc = scenario("scenarios/default.toml");
    let r = run(&sc, 1);
    let tmp = tempfile::tempdir().expect("tempdir");
    // A directory that does not exist yet: write_outputs creates it.
    let dir = tmp.path().join("default").join("seed-1");
    r.write_outputs(&dir).expect("write_outputs");

    let read = |name: &str| {
        std::fs::read_to_string(dir.join(name))
            .unwrap_or_else(|e| panic!("{name} was not written: {e}"))
    };
    let history = read("history.jsonl");
    let events = read("events.jsonl");
    let summary = read("summary.json");
    let report = read("report.md");

    // The files hold what the run holds, one JSON value per line.
    assert_eq!(history, to_jsonl(&r.output.history));
    assert_eq!(events, to_jsonl(&r.output.events));
    assert!(!history.is_empty() && !events.is_empty());
    for (name, text) in [("history.jsonl", &history), ("events.jsonl", &events)] {
        for (i, line) in text.lines().enumerate() {
            serde_json::from_str::<Value>(line)
                .unwrap_or_else(|e| panic!("{name} line {}: {e}: {line}", i + 1));
        }
    }
    let summary: Value = serde_json::from_str(&summary).expect("summary.json is JSON");
    assert_eq!(summary["scenario"], "default");
    assert_eq!(summary["seed"], 1);
    assert_eq!(summary["history_hash"], r.history_hash.as_str());
    assert_eq!(
        summary,
        serde_json::to_value(r.summary()).expect("summary serializes")
    );
    assert!(!report.trim().is_empty(), "report.md is empty");

    // At least these four (richer report formats may join them).
    let names: Vec<String> = std::fs::read_dir(&dir)
        .expect("list output dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    for name in ["summary.json", "history.jsonl", "events.jsonl", "report.md"] {
        assert!(
            names.iter().any(|n| n == name),
            "{name} missing from {names:?}"
        );
    }
}
