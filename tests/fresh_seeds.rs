//! `cargo test` hunts: with `KSIM_SEEDS=N` in the environment, every scenario under
//! `scenarios/` also runs `N` fresh seeds beyond its pinned ones (which `tests/scenarios.rs`
//! runs), and each seed whose outcome is not the scenario's expectation fails with the command
//! that replays it. A nightly CI job runs `KSIM_SEEDS=20 cargo test --release --test
//! fresh_seeds`; without the variable this binary has no test and the suite is unchanged.
//!
//! The fresh seeds are `KSIM_SEED_START..KSIM_SEED_START + N`, the same for every scenario.
//! Without `KSIM_SEED_START` the start is derived from the UTC date
//! ([`ksim::cli::explore::dated_seed_start`]: `1_000_000 + 10_000 * days since 1970-01-01`), so
//! each night hunts new seeds and a night's hunt can be run again; the start used is printed
//! and is part of every failure message.
//!
//! Each (scenario, seed) is a test of its own, named `SCENARIO/seed-S` (a harness of
//! `libtest-mimic`, which speaks libtest's command line): a filter picks scenarios
//! (`cargo test --test fresh_seeds -- default/`), and `cargo nextest run --partition
//! hash:I/M` spreads one hunt over `M` machines, each running its share of the tests in
//! parallel. Every machine of such a hunt must be given the same `KSIM_SEED_START`: the list of
//! tests is derived from it, and a default taken on two sides of midnight would differ.

use ksim::cli::explore::{FreshSeeds, MESSAGE_CHARS_MAX};
use ksim::cli::truncate_message;
use ksim::run::{run, Outcome, RunResult};
use ksim::scenario::{load, Scenario};
use libtest_mimic::{Arguments, Failed, Trial};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// `scenarios/*.toml`, sorted, relative to the package root (as `tests/scenarios.rs` lists
/// them), so replay commands read as a user would type them.
fn scenario_files() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .map(|p| Path::new("scenarios").join(p.file_name().expect("file name")))
        .collect();
    files.sort();
    files
}

/// The failure message of a fresh seed that did not meet its scenario's expectation.
fn describe(r: &RunResult, hunt: &FreshSeeds) -> String {
    let sc = &r.scenario;
    let mut s = format!(
        "{} seed {}: {}, but the scenario expects {}\n",
        sc.name,
        r.output.seed,
        match r.outcome {
            Outcome::Ok => "ok",
            Outcome::Violation => "violation",
        },
        if sc.expect_violations.is_empty() {
            "ok".to_string()
        } else {
            format!("a violation of {}", sc.expect_violations.join(" or "))
        }
    );
    if !r.missed.is_empty() {
        s += &format!(
            "  off its expectation: {}\n",
            ksim::reach::describe_missed(&r.missed)
        );
    }
    for v in &r.checks.violations {
        s += &format!(
            "  {}: {}\n",
            v.check,
            truncate_message(&v.message, MESSAGE_CHARS_MAX)
        );
    }
    s += &format!("  replay: {}\n", r.replay_command());
    s += &format!("  (a fresh seed of the hunt {})", hunt.env());
    s
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "(non-string panic payload)".to_string()
    }
}

/// One test per scenario and fresh seed; failures are also collected in `failures` as
/// `(scenario, seed, replay command)`.
fn trials(hunt: FreshSeeds, failures: &Arc<Mutex<Vec<(String, u64, String)>>>) -> Vec<Trial> {
    let mut trials = Vec::new();
    for file in scenario_files() {
        let scenario: Arc<Scenario> = match load(&file) {
            Ok(sc) => Arc::new(sc),
            Err(e) => {
                // A broken scenario is tests/scenarios.rs's to report; here it is one failure.
                let message = e.to_string();
                trials.push(Trial::test(format!("{}/load", file.display()), move || {
                    Err(Failed::from(message))
                }));
                continue;
            }
        };
        for seed in hunt.range() {
            let sc = Arc::clone(&scenario);
            let failures = Arc::clone(failures);
            trials.push(Trial::test(format!("{}/seed-{seed}", sc.name), move || {
                let (message, replay) =
                    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(&sc, seed)))
                    {
                        Ok(r) if r.expected => return Ok(()),
                        Ok(r) => (describe(&r, &hunt), r.replay_command()),
                        Err(panic) => {
                            let replay =
                                format!("cargo run --release -- run {} --seed {seed}", sc.file);
                            (
                                format!(
                                    "{} seed {seed}: the simulation panicked: {}\n  replay: \
                                         {replay}\n  (a fresh seed of the hunt {})",
                                    sc.name,
                                    panic_message(&*panic),
                                    hunt.env()
                                ),
                                replay,
                            )
                        }
                    };
                failures
                    .lock()
                    .expect("failures")
                    .push((sc.name.clone(), seed, replay));
                Err(Failed::from(message))
            }));
        }
    }
    trials
}

fn main() {
    let args = Arguments::from_args();
    let unix_secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let failures = Arc::new(Mutex::new(Vec::new()));
    let trials = match FreshSeeds::from_env_values(
        std::env::var("KSIM_SEEDS").ok().as_deref(),
        std::env::var("KSIM_SEED_START").ok().as_deref(),
        unix_secs,
    ) {
        Ok(None) => Vec::new(),
        Ok(Some(hunt)) => {
            // Once per run, not in every process nextest starts for one test.
            if !args.list && !args.exact {
                eprintln!(
                    "fresh seeds: {}..={} of every scenario (KSIM_SEED_START={}{}); run this \
                     hunt again with {} cargo test --release --test fresh_seeds",
                    hunt.start,
                    hunt.start + hunt.seeds - 1,
                    hunt.start,
                    if hunt.dated {
                        ", from today's UTC date"
                    } else {
                        ""
                    },
                    hunt.env()
                );
            }
            trials(hunt, &failures)
        }
        Err(message) => vec![Trial::test("KSIM_SEEDS", move || {
            Err(Failed::from(message))
        })],
    };
    let conclusion = libtest_mimic::run(&args, trials);
    let mut failures = failures.lock().expect("failures").clone();
    if !failures.is_empty() {
        failures.sort();
        eprintln!(
            "\n{} fresh seed{} off the scenario's expectation; replay:",
            failures.len(),
            if failures.len() == 1 { " is" } else { "s are" }
        );
        for (_, _, replay) in &failures {
            eprintln!("  {replay}");
        }
    }
    conclusion.exit();
}
