//! `ksim shrink SCENARIO --seed N [--out FILE] [--force] [--jobs J] [--check NAME]`: turn a
//! failing seed into a small scripted scenario that fails the same check (issue 15).
//!
//! 1. Run the seed; the check to keep failing is `--check`, else the first of the scenario's
//!    `expect_violations` that failed, else the first check that failed. A seed that fails no
//!    check (or not `--check`) has nothing to shrink: exit 1, nothing written.
//! 2. Turn the fault actions it recorded into a scripted schedule
//!    ([`crate::shrink::schedule`]) and run that with the random nemesis off: it must fail the
//!    same check (it replays the run exactly); if it does not, exit 1.
//! 3. Delta debugging over the fault units ([`crate::shrink::ddmin`]), then shorter durations
//!    and later starts ([`crate::shrink::simplify`]), each candidate a full run of the seed.
//! 4. Write the scenario (the source's text with `name` = the file stem, a description of
//!    where it came from, `seeds = [N]`, `expect_violations = [CHECK]`, `faults.kinds = []`
//!    and the schedule), load it back and run it: it must fail the check (else exit 1).
//!
//! Candidates of one batch run on `--jobs` threads; the result does not depend on `--jobs`
//! (see [`crate::shrink`]). Identical candidates are run once. Unlike the rest of [`super`],
//! this module prints (a progress line on stderr, the result on stdout): it is the command.

use super::{human_duration_ms, io_reason};
use crate::nemesis::FaultSource;
use crate::run::RunResult;
use crate::scenario::{Expect, Scenario, ScheduledFault, CHECK_NAMES};
use crate::shrink::schedule::{self, describe, fault_count, Header, Recorded, Unit};
use crate::shrink::{ddmin, simplify};
use indicatif::{ProgressBar, ProgressStyle};
use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

/// The arguments of `ksim shrink`.
#[derive(clap::Args, Debug, Clone, PartialEq)]
pub struct ShrinkArgs {
    /// The scenario file.
    #[arg(value_name = "SCENARIO")]
    pub scenario: PathBuf,
    /// The failing seed.
    #[arg(long, value_name = "N")]
    pub seed: u64,
    /// Where to write the shrunk scenario (a `.toml` file; its stem becomes `scenario.name`)
    /// [default: target/ksim/shrunk/<scenario>-seed-<N>.toml].
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Replace an existing --out FILE.
    #[arg(long)]
    pub force: bool,
    /// Runs at a time [default: the number of cores].
    #[arg(long, value_name = "J", value_parser = clap::value_parser!(u64).range(1..=1024))]
    pub jobs: Option<u64>,
    /// The check that must keep failing [default: the first of the scenario's
    /// expect_violations that fails, else the first check that fails].
    #[arg(long, value_name = "NAME")]
    pub check: Option<String>,
}

/// The default `--out`: `target/ksim/shrunk/<scenario>-seed-<N>.toml`.
pub fn default_out(scenario: &str, seed: u64) -> PathBuf {
    PathBuf::from("target/ksim/shrunk").join(format!("{scenario}-seed-{seed}.toml"))
}

/// Why `--out FILE` may not be written: not a `.toml` file, or it exists and `force` is off.
pub fn check_out_file(out: &Path, force: bool) -> Result<(), String> {
    if out.extension().and_then(|e| e.to_str()) != Some("toml") || out.file_stem().is_none() {
        return Err(format!(
            "--out {}: a scenario file ends in .toml (its stem becomes scenario.name)",
            out.display()
        ));
    }
    match std::fs::metadata(out) {
        Ok(m) if m.is_dir() => Err(format!("--out {} is a directory", out.display())),
        Ok(_) if !force => Err(format!(
            "--out {} already exists; choose another file, or pass --force to replace it",
            out.display()
        )),
        _ => Ok(()),
    }
}

/// The check to keep failing in `result`: `wanted` if it failed; else the first of the
/// scenario's `expect_violations` that failed; else the first failed check. `None` when that
/// check (or any) did not fail.
pub fn target_check(result: &RunResult, wanted: Option<&str>) -> Option<String> {
    let failed = |c: &str| result.checks.violations.iter().any(|v| v.check == c);
    if let Some(w) = wanted {
        return failed(w).then(|| w.to_string());
    }
    if result.scenario.expect == Expect::Violation {
        if let Some(c) = result.scenario.expect_violations.iter().find(|c| failed(c)) {
            return Some(c.clone());
        }
    }
    result.checks.violations.first().map(|v| v.check.clone())
}

/// Runs candidate schedules of one scenario and seed and says which fail the check.
struct Runner<'a> {
    base: &'a Scenario,
    seed: u64,
    check: &'a str,
    jobs: usize,
    /// Every schedule run so far (by its debug form) and whether it failed the check.
    seen: BTreeMap<String, bool>,
    runs: u64,
    progress: &'a ProgressBar,
    phase: String,
}

impl Runner<'_> {
    /// The scenario with the random nemesis off and `schedule` scripted.
    fn scenario(&self, schedule: &[ScheduledFault]) -> Scenario {
        let mut sc = self.base.clone();
        sc.faults.kinds.clear();
        sc.faults.schedule = schedule.to_vec();
        sc
    }

    /// One run; `None` when the simulation panicked (a bug of ksim: it counts as passing).
    fn run(&self, schedule: &[ScheduledFault]) -> Option<RunResult> {
        let sc = self.scenario(schedule);
        catch_unwind(AssertUnwindSafe(|| crate::run::run(&sc, self.seed))).ok()
    }

    fn fails(&self, r: Option<&RunResult>) -> bool {
        r.is_some_and(|r| r.checks.violations.iter().any(|v| v.check == self.check))
    }

    /// The index of the first schedule that fails the check, running up to `jobs` at a time.
    fn first_failing(&mut self, schedules: &[Vec<ScheduledFault>]) -> Option<usize> {
        for (chunk_no, chunk) in schedules.chunks(self.jobs).enumerate() {
            let keys: Vec<String> = chunk.iter().map(|s| format!("{s:?}")).collect();
            let mut todo: Vec<usize> = (0..chunk.len())
                .filter(|i| !self.seen.contains_key(&keys[*i]))
                .collect();
            todo.dedup_by(|a, b| keys[*a] == keys[*b]);
            let answers: Vec<(usize, bool)> = std::thread::scope(|scope| {
                let handles: Vec<_> = todo
                    .iter()
                    .map(|&i| {
                        let this = &*self;
                        let schedule = &chunk[i];
                        scope.spawn(move || (i, this.fails(this.run(schedule).as_ref())))
                    })
                    .collect();
                handles
                    .into_iter()
                    .map(|h| h.join().expect("a run's panic is caught"))
                    .collect()
            });
            for (i, failed) in answers {
                self.runs += 1;
                self.seen.insert(keys[i].clone(), failed);
            }
            self.progress
                .set_message(format!("{}, {} runs", self.phase, self.runs));
            if let Some(i) = keys.iter().position(|k| self.seen[k]) {
                return Some(chunk_no * self.jobs + i);
            }
        }
        None
    }
}

/// `ksim shrink`. `Err` is bad input (exit 2); a seed that cannot be shrunk is exit 1.
pub fn cmd(args: ShrinkArgs) -> Result<ExitCode, String> {
    let wall = Instant::now();
    let source_text = std::fs::read_to_string(&args.scenario)
        .map_err(|e| format!("cannot read {}: {}", args.scenario.display(), io_reason(&e)))?;
    let base = crate::scenario::parse(&source_text, &args.scenario.display().to_string())
        .map_err(|e| e.to_string())?;
    if let Some(c) = &args.check {
        if !CHECK_NAMES.contains(&c.as_str()) {
            return Err(format!(
                "--check {c}: unknown check (known: {})",
                CHECK_NAMES.join(", ")
            ));
        }
    }
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| default_out(&base.name, args.seed));
    // Refuse a bad --out before spending time on runs.
    check_out_file(&out, args.force)?;
    let name = out
        .file_stem()
        .and_then(|s| s.to_str())
        .ok_or_else(|| format!("--out {}: the file name is not UTF-8", out.display()))?
        .to_string();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let jobs = args.jobs.map_or(cores, |j| j as usize).max(1);
    let seed = args.seed;
    println!(
        "shrinking {} ({}) seed {seed} with {jobs} run{} at a time",
        base.name,
        base.file,
        if jobs == 1 { "" } else { "s" }
    );

    let progress = progress_bar();
    progress.set_message("the seed as it is");
    let original = match catch_unwind(AssertUnwindSafe(|| crate::run::run(&base, seed))) {
        Ok(r) => r,
        Err(_) => {
            progress.finish_and_clear();
            eprintln!("error: seed {seed} of {} panics the simulator: nothing to shrink (replay it with `ksim run {} --seed {seed}`)", base.name, base.file);
            return Ok(ExitCode::from(1));
        }
    };
    let Some(check) = target_check(&original, args.check.as_deref()) else {
        progress.finish_and_clear();
        let failed: Vec<&str> = original
            .checks
            .violations
            .iter()
            .map(|v| v.check.as_str())
            .collect();
        match &args.check {
            Some(c) if !failed.is_empty() => eprintln!(
                "error: seed {seed} of {} does not fail {c} (it fails {}): nothing to shrink",
                base.name,
                failed.join(", ")
            ),
            _ => eprintln!(
                "error: seed {seed} of {} fails no check: nothing to shrink",
                base.name
            ),
        }
        return Ok(ExitCode::from(1));
    };
    let mut rng = crate::world::stream_rng(seed, crate::world::streams::NEMESIS);
    let plan = crate::nemesis::plan(
        &base.faults,
        base.cluster.brokers,
        base.duration_ms,
        &mut rng,
    );
    let recorded = Recorded::from_run(&plan, &original.output.faults).map_err(|e| {
        format!(
            "seed {seed} of {}: cannot read its fault actions: {e}",
            base.name
        )
    })?;
    let random = plan
        .iter()
        .filter(|p| p.source == FaultSource::Random)
        .count();
    println!(
        "  the seed fails {check} with {} fault action{} ({random} random, {} scripted){}",
        recorded.actions,
        plural(recorded.actions),
        recorded.actions - random.min(recorded.actions),
        if recorded.no_effect.is_empty() {
            String::new()
        } else {
            format!("; {} changed nothing", recorded.no_effect.len())
        }
    );

    let mut runner = Runner {
        base: &base,
        seed,
        check: &check,
        jobs,
        seen: BTreeMap::new(),
        runs: 1,
        progress: &progress,
        phase: "replaying the faults as a script".into(),
    };
    let fixed = recorded.fixed.clone();
    let full = schedule::to_schedule(&recorded.units, &fixed);
    if runner.first_failing(std::slice::from_ref(&full)).is_none() {
        progress.finish_and_clear();
        eprintln!(
            "error: the {} recorded fault actions of seed {seed}, replayed as a script, no longer \
             fail {check}: the replay is not faithful (a bug of ksim shrink; please report it \
             with the scenario and seed)",
            fault_count(&full)
        );
        return Ok(ExitCode::from(1));
    }
    println!(
        "  replayed as a script with the random nemesis off, its {} effective action{} fail {check} too",
        fault_count(&full),
        plural(fault_count(&full))
    );

    runner.phase = format!("ddmin over {} faults", recorded.units.len());
    let mut oracle = |candidates: &[Vec<Unit>]| {
        let schedules: Vec<Vec<ScheduledFault>> = candidates
            .iter()
            .map(|c| schedule::to_schedule(c, &fixed))
            .collect();
        runner.first_failing(&schedules)
    };
    let kept = ddmin(&recorded.units, &mut oracle);
    let after_ddmin = fault_count(&schedule::to_schedule(&kept, &fixed));
    let runs_ddmin = runner.runs;
    println!(
        "  delta debugging: {} -> {after_ddmin} action{} ({} runs so far)",
        fault_count(&full),
        plural(after_ddmin),
        runs_ddmin
    );
    runner.phase = format!("shortening and delaying {} faults", kept.len());
    let mut oracle = |candidates: &[Vec<Unit>]| {
        let schedules: Vec<Vec<ScheduledFault>> = candidates
            .iter()
            .map(|c| schedule::to_schedule(c, &fixed))
            .collect();
        runner.first_failing(&schedules)
    };
    let kept = simplify(&kept, base.duration_ms, &mut oracle);
    let minimal = schedule::to_schedule(&kept, &fixed);
    let final_run = runner.run(&minimal);
    let runs = runner.runs + 1;
    progress.finish_and_clear();
    let Some(final_run) = final_run.filter(|r| runner.fails(Some(r))) else {
        eprintln!("error: the shrunk schedule no longer fails {check} (a bug of ksim shrink)");
        return Ok(ExitCode::from(1));
    };

    let (reach, dropped): (Vec<String>, Vec<String>) = base
        .reach
        .iter()
        .cloned()
        .partition(|r| !final_run.missed.contains(r));
    let elapsed_ms = wall.elapsed().as_secs_f64() * 1000.0;
    let header = Header {
        name: name.clone(),
        title: format!(
            "{} (shrunk: seed {seed}, {} fault actions)",
            base.title,
            fault_count(&minimal)
        ),
        description: description(
            &base,
            seed,
            &check,
            recorded.actions,
            &minimal,
            runs,
            &dropped,
        ),
        seed,
        check: check.clone(),
        reach,
    };
    let text = schedule::scenario_text(&source_text, &header, &minimal)?;
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {}", dir.display(), io_reason(&e)))?;
    }
    std::fs::write(&out, text)
        .map_err(|e| format!("cannot write {}: {}", out.display(), io_reason(&e)))?;

    println!(
        "shrunk {} fault action{} to {} in {runs} runs, {}:",
        recorded.actions,
        plural(recorded.actions),
        fault_count(&minimal),
        human_duration_ms(elapsed_ms)
    );
    for s in &minimal {
        println!(
            "  {:>9}  {}",
            format!("{} ms", s.at_ms),
            describe(&s.action)
        );
    }
    // The file as written must load and fail the same way.
    let written = match crate::scenario::load(&out) {
        Ok(sc) => sc,
        Err(e) => {
            eprintln!("error: the written scenario does not load (a bug of ksim shrink): {e}");
            return Ok(ExitCode::from(1));
        }
    };
    let again = crate::run::run(&written, seed);
    if !again.checks.violations.iter().any(|v| v.check == check) || !again.expected {
        eprintln!(
            "error: {} does not fail {check} as expected when run (a bug of ksim shrink)",
            out.display()
        );
        return Ok(ExitCode::from(1));
    }
    println!(
        "wrote {}: `ksim run {}` fails {check}, as seed {seed} of {} did",
        out.display(),
        out.display(),
        base.name
    );
    Ok(ExitCode::SUCCESS)
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

/// The written scenario's description: where it came from and what was kept.
fn description(
    base: &Scenario,
    seed: u64,
    check: &str,
    before: usize,
    minimal: &[ScheduledFault],
    runs: u64,
    dropped_reach: &[String],
) -> String {
    let mut d = format!(
        "Shrunk by `ksim shrink {} --seed {seed}` from scenario `{}`: the {before} fault \
         action{} that seed carried out ({}), replayed as a scripted schedule with the random \
         nemesis off, then cut by delta debugging and moved later or shortened while the run \
         still failed `{check}`; {} action{} remain ({runs} runs).\n\nThe schedule:\n",
        base.file,
        base.name,
        plural(before),
        if base.faults.kinds.is_empty() {
            "all scripted".to_string()
        } else {
            let kinds: Vec<&str> = base.faults.kinds.iter().map(|k| k.name()).collect();
            format!("random kinds {}", kinds.join(", "))
        },
        fault_count(minimal),
        plural(fault_count(minimal)),
    );
    for s in minimal {
        d.push_str(&format!("- at {} ms: {}\n", s.at_ms, describe(&s.action)));
    }
    d.push_str(&format!(
        "\nSee `{}` for the story this scenario tells and the setting that fixes it.",
        base.file
    ));
    if !dropped_reach.is_empty() {
        d.push_str(&format!(
            " Its `reach` items {} are left out: the shrunk run does not reach them.",
            dropped_reach
                .iter()
                .map(|r| format!("`{r}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    d
}

/// A spinner on stderr with the phase and the runs so far, hidden when stderr is not a
/// terminal or under CI.
fn progress_bar() -> ProgressBar {
    if !std::io::stderr().is_terminal() || std::env::var_os("CI").is_some() {
        return ProgressBar::hidden();
    }
    let style = ProgressStyle::with_template("{elapsed_precise} {spinner} {msg}")
        .unwrap_or_else(|_| ProgressStyle::default_spinner());
    let pb = ProgressBar::new_spinner().with_style(style);
    pb.enable_steady_tick(std::time::Duration::from_millis(200));
    pb
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn out_file_must_be_toml_and_new_unless_forced() {
        let tmp = tempfile::tempdir().unwrap();
        let f = tmp.path().join("x.toml");
        assert_eq!(check_out_file(&f, false), Ok(()));
        std::fs::write(&f, "mine").unwrap();
        let e = check_out_file(&f, false).unwrap_err();
        assert!(e.contains("already exists") && e.contains("--force"), "{e}");
        assert_eq!(check_out_file(&f, true), Ok(()));
        assert!(check_out_file(&tmp.path().join("x.txt"), false)
            .unwrap_err()
            .contains(".toml"));
        std::fs::create_dir(tmp.path().join("d.toml")).unwrap();
        assert!(check_out_file(&tmp.path().join("d.toml"), true)
            .unwrap_err()
            .contains("directory"));
        assert_eq!(
            default_out("acks1", 2),
            PathBuf::from("target/ksim/shrunk/acks1-seed-2.toml")
        );
    }
}
