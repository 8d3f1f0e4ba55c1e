//! `ksim explore`: run one scenario over a range of seeds on several threads and tally what
//! was found.
//!
//! Each seed is an independent simulation (its own OS thread and madsim runtime, see
//! [`crate::run::run`]), so the explorer is a plain work queue: `jobs` worker threads take the
//! next seed from an atomic counter, run it, shrink the [`RunResult`] to a [`SeedSummary`] of
//! a few hundred bytes and send that to the calling thread. The caller sees every completion at
//! once (for a progress bar) and every summary again **in seed order** (for the report and the
//! [`Tally`]), whatever order the workers finish in. Nothing else is kept, so memory stays flat
//! however many seeds are explored: at most `jobs` full results exist at a time, plus the
//! summaries of seeds that finished ahead of a slower, earlier one.
//!
//! A seed whose simulation panics is a bug in ksim, not a reason to lose the other seeds: the
//! panic is caught and reported as an unexpected seed with its replay command.

use super::{human_duration_ms, truncate_message};
use crate::run::{Outcome, RunResult};
use crate::scenario::Scenario;
use std::collections::BTreeMap;
use std::ops::Range;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;

/// Violation messages kept per unexpected seed are cut to this many characters.
pub const MESSAGE_CHARS_MAX: usize = 240;

/// What the explorer keeps of one seed's run.
#[derive(Debug, Clone, PartialEq)]
pub struct SeedSummary {
    pub seed: u64,
    /// Whether the outcome matched the scenario's `expect` (a panic never does).
    pub expected: bool,
    /// `None` when the simulation panicked.
    pub outcome: Option<Outcome>,
    /// The names of the checks that failed, each once, in the checkers' order.
    pub failed_checks: Vec<String>,
    /// For an unexpected seed only: each violation's check and (truncated) message.
    pub violations: Vec<(String, String)>,
    /// The scenario's `reach` items the run never reached (a seed that missed one is
    /// unexpected even with the expected outcome).
    pub missed: Vec<String>,
    /// The panic message, when the simulation panicked.
    pub panic: Option<String>,
    /// For an unexpected seed only: the command that replays it.
    pub replay: Option<String>,
    pub wall_ms: u64,
    pub simulated_ms: u64,
    pub messages: u64,
}

impl SeedSummary {
    /// Shrinks a full result; the messages are kept only when the seed is unexpected.
    pub fn from_result(r: &RunResult) -> SeedSummary {
        let mut failed_checks: Vec<String> = Vec::new();
        for v in &r.checks.violations {
            if !failed_checks.contains(&v.check) {
                failed_checks.push(v.check.clone());
            }
        }
        let (violations, replay) = if r.expected {
            (Vec::new(), None)
        } else {
            let violations = r
                .checks
                .violations
                .iter()
                .map(|v| {
                    (
                        v.check.clone(),
                        truncate_message(&v.message, MESSAGE_CHARS_MAX),
                    )
                })
                .collect();
            (violations, Some(r.replay_command()))
        };
        SeedSummary {
            seed: r.output.seed,
            expected: r.expected,
            outcome: Some(r.outcome),
            failed_checks,
            violations,
            missed: r.missed.clone(),
            panic: None,
            replay,
            wall_ms: r.output.wall_ms,
            simulated_ms: r.output.simulated_ms,
            messages: r.output.messages,
        }
    }

    /// A seed whose simulation panicked with `message`.
    pub fn from_panic(scenario: &Scenario, seed: u64, message: String, wall_ms: u64) -> Self {
        SeedSummary {
            seed,
            expected: false,
            outcome: None,
            failed_checks: Vec::new(),
            violations: Vec::new(),
            missed: Vec::new(),
            panic: Some(truncate_message(&message, MESSAGE_CHARS_MAX)),
            // The same command `RunResult::replay_command` prints; there is no result here.
            replay: Some(format!(
                "cargo run --release -- run {} --seed {}",
                scenario.file, seed
            )),
            wall_ms,
            simulated_ms: 0,
            messages: 0,
        }
    }
}

/// Runs `scenario` once with `seed`, catching a panic of the simulator.
pub fn run_seed(scenario: &Scenario, seed: u64) -> SeedSummary {
    let wall = std::time::Instant::now();
    match catch_unwind(AssertUnwindSafe(|| crate::run::run(scenario, seed))) {
        Ok(result) => SeedSummary::from_result(&result),
        Err(payload) => {
            let message = if let Some(s) = payload.downcast_ref::<&str>() {
                (*s).to_string()
            } else if let Some(s) = payload.downcast_ref::<String>() {
                s.clone()
            } else {
                "(a panic without a message)".to_string()
            };
            let wall_ms = wall.elapsed().as_millis() as u64;
            SeedSummary::from_panic(scenario, seed, message, wall_ms)
        }
    }
}

/// Runs every seed in `seeds` on `jobs` threads (at least one). `on_done` is called on the
/// calling thread as each seed finishes, in completion order; `on_ordered` with each summary
/// and the tally so far, in seed order. Returns the final tally.
pub fn explore(
    scenario: &Scenario,
    seeds: Range<u64>,
    jobs: usize,
    mut on_done: impl FnMut(),
    mut on_ordered: impl FnMut(&SeedSummary, &Tally),
) -> Tally {
    let count = seeds.end.saturating_sub(seeds.start);
    let jobs = (jobs.max(1) as u64).min(count.max(1)) as usize;
    let first_seed = seeds.start;
    let next_index = AtomicU64::new(0);
    let mut tally = Tally::default();
    std::thread::scope(|scope| {
        let (tx, rx) = mpsc::channel::<(u64, SeedSummary)>();
        for _ in 0..jobs {
            let tx = tx.clone();
            let next_index = &next_index;
            scope.spawn(move || loop {
                let index = next_index.fetch_add(1, Ordering::Relaxed);
                if index >= count {
                    return;
                }
                let summary = run_seed(scenario, first_seed + index);
                if tx.send((index, summary)).is_err() {
                    return;
                }
            });
        }
        drop(tx);
        // Summaries that finished before an earlier seed, waiting for their turn.
        let mut waiting: BTreeMap<u64, SeedSummary> = BTreeMap::new();
        let mut next_in_order = 0u64;
        for (index, summary) in rx {
            on_done();
            waiting.insert(index, summary);
            while let Some(summary) = waiting.remove(&next_in_order) {
                tally.add(&summary);
                on_ordered(&summary, &tally);
                next_in_order += 1;
            }
        }
        debug_assert!(waiting.is_empty() && next_in_order == count);
    });
    tally
}

/// What one check's violations cost to find.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckTally {
    pub check: String,
    /// The first seed (in seed order) on which it fired.
    pub first_seed: u64,
    /// How many seeds were run up to and including that one.
    pub seeds_to_first: u64,
    /// How many seeds it fired on.
    pub seeds: u64,
}

/// Counts over the seeds explored so far, fed in seed order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Tally {
    pub seeds: u64,
    pub as_expected: u64,
    pub unexpected: u64,
    /// Seeds whose simulation panicked (also counted in `unexpected`).
    pub panicked: u64,
    /// Seeds that missed an item of the scenario's `reach` (also counted in `unexpected`).
    pub missed_reach: u64,
    /// Every check that fired, in the order first found.
    pub checks: Vec<CheckTally>,
    /// Sums of the per-seed wall times (each seed's own simulation, not the elapsed time).
    pub wall_ms_sum: u64,
    pub simulated_ms_sum: u64,
    pub messages_sum: u64,
}

impl Tally {
    /// Adds the next seed; call in seed order, so "first" means the lowest seed.
    pub fn add(&mut self, s: &SeedSummary) {
        self.seeds += 1;
        if s.expected {
            self.as_expected += 1;
        } else {
            self.unexpected += 1;
        }
        if s.panic.is_some() {
            self.panicked += 1;
        }
        if !s.missed.is_empty() {
            self.missed_reach += 1;
        }
        for check in &s.failed_checks {
            match self.checks.iter_mut().find(|c| &c.check == check) {
                Some(c) => c.seeds += 1,
                None => self.checks.push(CheckTally {
                    check: check.clone(),
                    first_seed: s.seed,
                    seeds_to_first: self.seeds,
                    seeds: 1,
                }),
            }
        }
        self.wall_ms_sum += s.wall_ms;
        self.simulated_ms_sum += s.simulated_ms;
        self.messages_sum += s.messages;
    }

    /// The one-line tally, given the elapsed wall time of the whole exploration:
    /// `300 seeds: 300 as expected, 0 unexpected; violations found: lost-write x12 (first at
    /// seed 4); wall 12.3 s (41 ms/seed)`.
    pub fn line(&self, elapsed_ms: f64) -> String {
        let mut line = format!(
            "{} seed{}: {} as expected, {} unexpected",
            self.seeds,
            if self.seeds == 1 { "" } else { "s" },
            self.as_expected,
            self.unexpected
        );
        let mut why = Vec::new();
        if self.panicked > 0 {
            why.push(format!("{} panicked", self.panicked));
        }
        if self.missed_reach > 0 {
            why.push(format!("{} missed reach", self.missed_reach));
        }
        if !why.is_empty() {
            line += &format!(" ({})", why.join(", "));
        }
        line += "; violations found: ";
        if self.checks.is_empty() {
            line += "none";
        } else {
            let found: Vec<String> = self
                .checks
                .iter()
                .map(|c| format!("{} x{} (first at seed {})", c.check, c.seeds, c.first_seed))
                .collect();
            line += &found.join(", ");
        }
        line += &format!(
            "; wall {} ({:.0} ms/seed)",
            human_duration_ms(elapsed_ms),
            elapsed_ms / self.seeds.max(1) as f64
        );
        line
    }

    /// One line per check that fired: how many seeds it took to find it and what each find
    /// cost in elapsed wall time, e.g. `lost-write: first at seed 4 (4 seeds), 12 seeds in
    /// all, 1.0 s wall per violating seed`.
    pub fn check_lines(&self, elapsed_ms: f64) -> Vec<String> {
        self.checks
            .iter()
            .map(|c| {
                format!(
                    "{}: first at seed {} ({} seed{}), {} seed{} in all, {} wall per violating seed",
                    c.check,
                    c.first_seed,
                    c.seeds_to_first,
                    if c.seeds_to_first == 1 { "" } else { "s" },
                    c.seeds,
                    if c.seeds == 1 { "" } else { "s" },
                    human_duration_ms(elapsed_ms / c.seeds as f64),
                )
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(seed: u64, expected: bool, checks: &[&str]) -> SeedSummary {
        SeedSummary {
            seed,
            expected,
            outcome: Some(if checks.is_empty() {
                Outcome::Ok
            } else {
                Outcome::Violation
            }),
            failed_checks: checks.iter().map(|c| c.to_string()).collect(),
            violations: Vec::new(),
            missed: Vec::new(),
            panic: None,
            replay: None,
            wall_ms: 40,
            simulated_ms: 50_000,
            messages: 1000,
        }
    }

    #[test]
    fn tally_of_clean_seeds() {
        let mut t = Tally::default();
        for seed in 1..=300 {
            t.add(&summary(seed, true, &[]));
        }
        assert_eq!(
            t.line(12_300.0),
            "300 seeds: 300 as expected, 0 unexpected; violations found: none; \
             wall 12.3 s (41 ms/seed)"
        );
        assert!(t.check_lines(12_300.0).is_empty());
    }

    #[test]
    fn tally_counts_checks_from_the_first_seed_they_fire_on() {
        let mut t = Tally::default();
        t.add(&summary(1, true, &[]));
        t.add(&summary(2, true, &[]));
        t.add(&summary(3, false, &["lost-write"]));
        t.add(&summary(4, false, &["lost-write", "duplicate"]));
        assert_eq!((t.seeds, t.as_expected, t.unexpected), (4, 2, 2));
        assert_eq!(
            t.line(2000.0),
            "4 seeds: 2 as expected, 2 unexpected; violations found: lost-write x2 \
             (first at seed 3), duplicate x1 (first at seed 4); wall 2.0 s (500 ms/seed)"
        );
        assert_eq!(
            t.check_lines(2000.0),
            vec![
                "lost-write: first at seed 3 (3 seeds), 2 seeds in all, 1.0 s wall per \
                 violating seed",
                "duplicate: first at seed 4 (4 seeds), 1 seed in all, 2.0 s wall per \
                 violating seed",
            ]
        );
    }

    #[test]
    fn seeds_that_missed_their_reach_are_unexpected_and_counted_apart() {
        let mut t = Tally::default();
        t.add(&summary(1, true, &[]));
        let mut missed = summary(2, false, &[]);
        missed.missed = vec!["isr-shrink".into()];
        t.add(&missed);
        assert_eq!((t.as_expected, t.unexpected, t.missed_reach), (1, 1, 1));
        assert!(
            t.line(2.0)
                .contains("1 unexpected (1 missed reach); violations found: none"),
            "{}",
            t.line(2.0)
        );
    }

    #[test]
    fn panics_are_unexpected() {
        let sc = crate::scenario::load(std::path::Path::new("scenarios/default.toml")).unwrap();
        let s = SeedSummary::from_panic(&sc, 9, "boom".into(), 3);
        assert!(!s.expected && s.outcome.is_none());
        assert_eq!(
            s.replay.as_deref(),
            Some("cargo run --release -- run scenarios/default.toml --seed 9")
        );
        let mut t = Tally::default();
        t.add(&s);
        assert!(
            t.line(3.0).contains("1 unexpected (1 panicked)"),
            "{}",
            t.line(3.0)
        );
    }

    #[test]
    fn explore_reports_in_seed_order_whatever_the_completion_order() {
        let sc = crate::scenario::load(std::path::Path::new("scenarios/default.toml")).unwrap();
        let mut done = 0;
        let mut order = Vec::new();
        let tally = explore(
            &sc,
            5..9,
            3,
            || done += 1,
            |s, t| {
                assert_eq!(t.seeds, order.len() as u64 + 1);
                order.push(s.seed);
            },
        );
        assert_eq!(done, 4);
        assert_eq!(order, vec![5, 6, 7, 8]);
        assert_eq!(tally.seeds, 4);
        assert!(tally.messages_sum > 0 && tally.simulated_ms_sum > 0);
    }
}
