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
//!
//! A sweep bigger than one machine is cut into [`Shard`]s: shard `I/N` (1-based) runs the seeds
//! whose index `k` in the sweep (`seed - start`, from 0) has `k mod N == I - 1`. Every seed is
//! its own deterministic simulation, so which machine runs it changes nothing of its verdict;
//! [`super::shard`] writes a shard's tally to a file and merges the files of a sweep into the
//! tally one unsharded run would have printed.

use super::{human_duration_ms, truncate_message};
use crate::run::{Outcome, RunResult};
use crate::scenario::Scenario;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
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

/// One of `count` equal parts of a sweep, numbered from 1 as `cargo nextest --partition` and a
/// GitHub Actions matrix count (Kubernetes' `JOB_COMPLETION_INDEX` counts from 0: pass
/// `$((JOB_COMPLETION_INDEX + 1))/N`).
///
/// The seed of index `k` in the sweep (`k = seed - start`, from 0) belongs to shard
/// `k mod count + 1`: round robin, so every shard samples the whole seed range, shards differ in
/// size by at most one seed, and a seed's shard depends only on `start` and `count`, never on
/// the machine or the order of completion.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Shard {
    /// 1-based: `1..=count`.
    pub index: u64,
    /// How many shards the sweep is cut into (at least 1).
    pub count: u64,
}

impl Shard {
    /// The whole sweep as one shard: what `ksim explore` runs without `--shard`.
    pub const WHOLE: Shard = Shard { index: 1, count: 1 };

    /// Shard `index` of `count`, or why there is none (`index` outside `1..=count`).
    pub fn new(index: u64, count: u64) -> Result<Shard, String> {
        if count == 0 {
            return Err("a sweep has at least 1 shard (N >= 1)".to_string());
        }
        if index == 0 {
            return Err(format!(
                "shards count from 1, so shard 0 does not exist: use 1/{count} to {count}/{count} \
                 (for Kubernetes' 0-based JOB_COMPLETION_INDEX, pass \
                 $((JOB_COMPLETION_INDEX + 1))/{count})"
            ));
        }
        if index > count {
            return Err(format!(
                "shard {index} of {count} does not exist: I must be between 1 and {count}"
            ));
        }
        Ok(Shard { index, count })
    }

    /// Whether the seed of index `k` in the sweep (`seed - start`) is this shard's.
    pub fn contains_index(&self, k: u64) -> bool {
        k % self.count == self.index - 1
    }

    /// How many of a sweep of `sweep_seeds` seeds are this shard's:
    /// `ceil((sweep_seeds - (index - 1)) / count)`, 0 when the sweep is shorter than `index`.
    pub fn len(&self, sweep_seeds: u64) -> u64 {
        if sweep_seeds < self.index {
            0
        } else {
            (sweep_seeds - self.index) / self.count + 1
        }
    }

    /// Whether this shard of a sweep of `sweep_seeds` seeds has none.
    pub fn is_empty(&self, sweep_seeds: u64) -> bool {
        self.len(sweep_seeds) == 0
    }

    /// The `j`-th seed (from 0) of this shard of the sweep that starts at `start`;
    /// `j` must be below [`Shard::len`], and `start + len` must not overflow.
    pub fn seed(&self, start: u64, j: u64) -> u64 {
        start + (self.index - 1) + j * self.count
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl std::str::FromStr for Shard {
    type Err = String;

    /// `I/N`, both whole numbers, `1 <= I <= N`.
    fn from_str(s: &str) -> Result<Shard, String> {
        let Some((index, count)) = s.split_once('/') else {
            return Err(format!(
                "{s:?} is not I/N (shard I of N, e.g. 2/8, counting from 1)"
            ));
        };
        let number = |part: &str, what: &str| {
            part.trim().parse::<u64>().map_err(|_| {
                format!("{s:?}: {what} {part:?} is not a whole number (I/N, e.g. 2/8)")
            })
        };
        Shard::new(number(index, "I")?, number(count, "N")?)
    }
}

/// The lowest seed of a day's fresh-seed hunt (`KSIM_SEEDS` in `cargo test`), far above the
/// pinned seeds and `scripts/hunt.sh`'s default range (10001..11000).
pub const FRESH_SEED_BASE: u64 = 1_000_000;

/// How far apart the fresh-seed ranges of two consecutive days start: a hunt of up to this many
/// seeds per scenario never repeats the previous day's seeds.
pub const FRESH_SEEDS_PER_DAY: u64 = 10_000;

/// The first fresh seed of the UTC day that contains `unix_secs` (seconds since 1970-01-01
/// UTC): `FRESH_SEED_BASE + FRESH_SEEDS_PER_DAY * days`. The same all day on every machine,
/// so nightly runs differ from each other and a failure can be replayed by day.
pub fn dated_seed_start(unix_secs: u64) -> u64 {
    FRESH_SEED_BASE + FRESH_SEEDS_PER_DAY * (unix_secs / 86_400)
}

/// The fresh-seed hunt of `cargo test` (`tests/fresh_seeds.rs`): `seeds` seeds of every
/// scenario from `start` on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FreshSeeds {
    /// `KSIM_SEEDS`: fresh seeds per scenario (at least 1).
    pub seeds: u64,
    /// `KSIM_SEED_START`, or [`dated_seed_start`] of the day.
    pub start: u64,
    /// Whether `start` came from the date.
    pub dated: bool,
}

impl FreshSeeds {
    /// The hunt the values of `KSIM_SEEDS` and `KSIM_SEED_START` ask for at `unix_secs`:
    /// `None` (no hunt) when `KSIM_SEEDS` is unset, empty or 0; without `KSIM_SEED_START` the
    /// start is the day's ([`dated_seed_start`]). An error for a value that is not a whole
    /// number, or a range that runs past `u64::MAX`.
    pub fn from_env_values(
        seeds: Option<&str>,
        start: Option<&str>,
        unix_secs: u64,
    ) -> Result<Option<FreshSeeds>, String> {
        let number = |name: &str, value: &str| {
            value
                .trim()
                .parse::<u64>()
                .map_err(|_| format!("{name}={value:?} is not a whole number"))
        };
        let seeds = match seeds.map(str::trim) {
            None | Some("") => return Ok(None),
            Some(v) => number("KSIM_SEEDS", v)?,
        };
        if seeds == 0 {
            return Ok(None);
        }
        let (start, dated) = match start.map(str::trim) {
            None | Some("") => (dated_seed_start(unix_secs), true),
            Some(v) => (number("KSIM_SEED_START", v)?, false),
        };
        if start.checked_add(seeds).is_none() {
            return Err(format!(
                "KSIM_SEED_START={start} KSIM_SEEDS={seeds} runs past the largest seed"
            ));
        }
        Ok(Some(FreshSeeds {
            seeds,
            start,
            dated,
        }))
    }

    /// The seeds, `start..start + seeds`.
    pub fn range(&self) -> Range<u64> {
        self.start..self.start + self.seeds
    }

    /// The environment that runs this hunt again: `KSIM_SEEDS=N KSIM_SEED_START=S`.
    pub fn env(&self) -> String {
        format!("KSIM_SEEDS={} KSIM_SEED_START={}", self.seeds, self.start)
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
    on_done: impl FnMut(),
    on_ordered: impl FnMut(&SeedSummary, &Tally),
) -> Tally {
    explore_shard(scenario, seeds, Shard::WHOLE, jobs, on_done, on_ordered)
}

/// [`explore`] of only `shard`'s seeds of the sweep `seeds`: the seeds `s` of the range with
/// `shard.contains_index(s - seeds.start)`, in seed order. The tally counts this shard's seeds
/// alone ([`super::shard::merge`] combines the shards' tallies).
pub fn explore_shard(
    scenario: &Scenario,
    seeds: Range<u64>,
    shard: Shard,
    jobs: usize,
    mut on_done: impl FnMut(),
    mut on_ordered: impl FnMut(&SeedSummary, &Tally),
) -> Tally {
    let count = shard.len(seeds.end.saturating_sub(seeds.start));
    let jobs = (jobs.max(1) as u64).min(count.max(1)) as usize;
    let (first_seed, end) = (seeds.start, seeds.end);
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
                let seed = shard.seed(first_seed, index);
                debug_assert!(seed < end && shard.contains_index(seed - first_seed));
                let summary = run_seed(scenario, seed);
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

/// The lines `ksim explore` prints for a seed whose outcome is not the scenario's
/// expectation (`expect` as people read it: `ok`, `violation of lost-write or duplicate`):
/// what happened, each violation, and the replay command. Empty for an expected seed.
pub fn unexpected_lines(s: &SeedSummary, expect: &str) -> Vec<String> {
    if s.expected {
        return Vec::new();
    }
    let outcome_text = |o: Outcome| match o {
        Outcome::Ok => "ok",
        Outcome::Violation => "violation",
    };
    let mut lines = vec![match (&s.panic, s.outcome) {
        (Some(panic), _) => format!("seed {}: the simulator panicked: {panic}", s.seed),
        (None, Some(outcome)) if !s.missed.is_empty() => format!(
            "seed {}: {}, but {}",
            s.seed,
            outcome_text(outcome),
            crate::reach::describe_missed(&s.missed)
        ),
        (None, Some(outcome)) => format!(
            "seed {}: {}, but expected {expect}",
            s.seed,
            outcome_text(outcome)
        ),
        (None, None) => format!("seed {}: no outcome", s.seed),
    }];
    for (check, message) in &s.violations {
        lines.push(format!("  {check}: {message}"));
    }
    if let Some(replay) = &s.replay {
        lines.push(format!("  replay: {replay}"));
    }
    lines
}

/// What one check's violations cost to find.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Tally {
    /// Seeds run.
    pub seeds: u64,
    /// Seeds whose outcome was the scenario's expectation (and reached all of `reach`).
    pub as_expected: u64,
    /// Seeds whose outcome was not (`seeds = as_expected + unexpected`).
    pub unexpected: u64,
    /// Seeds whose simulation panicked (also counted in `unexpected`).
    pub panicked: u64,
    /// Seeds that missed an item of the scenario's `reach` (also counted in `unexpected`).
    pub missed_reach: u64,
    /// Every check that fired, in the order first found.
    pub checks: Vec<CheckTally>,
    /// Sums of the per-seed wall times (each seed's own simulation, not the elapsed time).
    pub wall_ms_sum: u64,
    /// Simulated milliseconds summed over the seeds (deterministic, as is `messages_sum`).
    pub simulated_ms_sum: u64,
    /// Network messages summed over the seeds.
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
    fn shards_cut_a_sweep_round_robin_and_cover_it_once() {
        for seeds in 0..12u64 {
            for count in 1..6u64 {
                let mut covered = Vec::new();
                for index in 1..=count {
                    let shard = Shard::new(index, count).unwrap();
                    for j in 0..shard.len(seeds) {
                        let seed = shard.seed(100, j);
                        assert!(shard.contains_index(seed - 100));
                        covered.push(seed);
                    }
                    assert!(shard.len(seeds) <= seeds.div_ceil(count));
                }
                covered.sort();
                assert_eq!(covered, (100..100 + seeds).collect::<Vec<_>>());
            }
        }
        let shard: Shard = "2/3".parse().unwrap();
        assert_eq!(
            (shard.index, shard.count, shard.to_string()),
            (2, 3, "2/3".into())
        );
        assert_eq!(
            (0..3).map(|j| shard.seed(1, j)).collect::<Vec<_>>(),
            [2, 5, 8]
        );
        assert_eq!(Shard::WHOLE.len(7), 7);
        assert!("3/2"
            .parse::<Shard>()
            .unwrap_err()
            .contains("between 1 and 2"));
        assert!("0/4"
            .parse::<Shard>()
            .unwrap_err()
            .contains("JOB_COMPLETION_INDEX + 1"));
        assert!("1/0".parse::<Shard>().is_err() && "1-2".parse::<Shard>().is_err());
    }

    #[test]
    fn the_fresh_seed_hunt_reads_its_environment() {
        let day = 20_000 * 86_400 + 3600;
        assert_eq!(FreshSeeds::from_env_values(None, Some("5"), day), Ok(None));
        assert_eq!(FreshSeeds::from_env_values(Some("0"), None, day), Ok(None));
        assert_eq!(FreshSeeds::from_env_values(Some(" "), None, day), Ok(None));
        let dated = FreshSeeds::from_env_values(Some("20"), None, day)
            .unwrap()
            .unwrap();
        assert_eq!(
            dated,
            FreshSeeds {
                seeds: 20,
                start: 201_000_000,
                dated: true
            }
        );
        assert_eq!(dated.env(), "KSIM_SEEDS=20 KSIM_SEED_START=201000000");
        // The same all day, the next range the next day.
        assert_eq!(dated_seed_start(20_001 * 86_400 - 1), 201_000_000);
        assert_eq!(dated_seed_start(20_001 * 86_400), 201_010_000);
        let pinned = FreshSeeds::from_env_values(Some("3"), Some("42"), day)
            .unwrap()
            .unwrap();
        assert_eq!((pinned.range(), pinned.dated), (42..45, false));
        assert!(FreshSeeds::from_env_values(Some("many"), None, day)
            .unwrap_err()
            .contains("KSIM_SEEDS=\"many\" is not a whole number"));
        assert!(FreshSeeds::from_env_values(Some("2"), Some("-1"), day).is_err());
        assert!(FreshSeeds::from_env_values(Some("2"), Some(&u64::MAX.to_string()), day).is_err());
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
