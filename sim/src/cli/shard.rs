//! Sweeps bigger than one machine: the file `ksim explore --json FILE` writes, and
//! `ksim explore --merge FILES...`, which combines the files of a sharded sweep into the tally
//! one unsharded run would have printed.
//!
//! ksim does not schedule machines itself. A sweep (`--seeds N --start S`) is cut into shards
//! ([`Shard`]: shard `I/N`, 1-based, takes the seeds whose index `k = seed - S` has
//! `k mod N == I - 1`), and an existing engine runs one shard per machine: a Kubernetes Indexed
//! Job, a GitHub Actions matrix, or `cargo nextest --partition` for the test-suite hunt. Each
//! shard writes a [`SweepFile`]; [`merge`] checks that the files are the shards of one sweep,
//! every shard exactly once, and adds them up.
//!
//! Because each seed is an independent deterministic simulation, a seed's verdict does not
//! depend on the shard or machine that ran it: the merged counts, checks, first seeds and
//! off-expectation seeds equal those of an unsharded run of the same sweep. Only wall-clock
//! times differ (the merged `wall_ms_sum` and `elapsed_ms` are sums over the shards, the
//! machine time the sweep cost).
//!
//! # The file (`format` = [`FORMAT`])
//!
//! ```json
//! {
//!   "format": "ksim-explore/1",
//!   "scenario": "default",                  // scenario.name
//!   "file": "scenarios/default.toml",       // the path the shard was given
//!   "scenario_sha256": "9f2c...",           // SHA-256 of the scenario file's bytes, hex
//!   "expect": "ok",                         // or "violation of lost-write or duplicate"
//!   "start": 1, "seeds": 300,               // the whole sweep: seeds start..start+seeds
//!   "shard": { "index": 2, "count": 3 },    // 1-based; { "index": 1, "count": 1 } unsharded
//!   "shard_seeds": 100,                     // how many of the sweep's seeds this file ran
//!   "elapsed_ms": 4123.5,                   // wall time of this shard's run
//!   "tally": {                              // this shard's counts (explore::Tally)
//!     "seeds": 100, "as_expected": 99, "unexpected": 1, "panicked": 0, "missed_reach": 1,
//!     "checks": [ { "check": "lost-write", "first_seed": 5, "seeds_to_first": 2, "seeds": 1 } ],
//!     "wall_ms_sum": 4000, "simulated_ms_sum": 5000000, "messages_sum": 123456
//!   },
//!   "unexpected_seeds": [                   // every off-expectation seed, in seed order
//!     { "seed": 5, "outcome": "violation",  // "ok", "violation", or null: it panicked
//!       "failed_checks": ["lost-write"],
//!       "violations": [ { "check": "lost-write", "message": "..." } ],  // cut to 240 chars
//!       "missed": [],                       // `reach` items the run never reached
//!       "panic": null,
//!       "replay": "cargo run --release -- run scenarios/default.toml --seed 5" }
//!   ]
//! }
//! ```
//!
//! In a shard's file, `checks[].seeds_to_first` counts that shard's seeds only; the merged
//! tally counts the whole sweep's (`first_seed - start + 1`).

use super::explore::{CheckTally, SeedSummary, Shard, Tally};
use super::io_reason;
use crate::run::Outcome;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::fmt;
use std::io::Write;
use std::path::Path;

/// The `format` of a [`SweepFile`]; `--merge` refuses any other.
pub const FORMAT: &str = "ksim-explore/1";

/// What `ksim explore --json FILE` writes: one shard's (or a whole sweep's) tally and every
/// off-expectation seed with its replay command. The schema is in the module docs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SweepFile {
    /// [`FORMAT`].
    pub format: String,
    /// `scenario.name`.
    pub scenario: String,
    /// The scenario file as the shard was given it (paths may differ between machines; the
    /// merge compares `scenario` and `scenario_sha256` instead).
    pub file: String,
    /// SHA-256 of the scenario file's bytes, lower-case hex: shards of one sweep ran one
    /// scenario text.
    pub scenario_sha256: String,
    /// What the scenario expects, as `ksim explore` prints it (`ok`,
    /// `violation of lost-write or duplicate`).
    pub expect: String,
    /// The first seed of the whole sweep.
    pub start: u64,
    /// How many seeds the whole sweep has (`start..start + seeds`), over all shards.
    pub seeds: u64,
    /// Which shard of the sweep this file holds ([`Shard::WHOLE`] for an unsharded run or a
    /// merge).
    pub shard: Shard,
    /// How many seeds this file ran: `shard.len(seeds)`.
    pub shard_seeds: u64,
    /// Wall milliseconds the run took (for a merge, the sum over the shards).
    pub elapsed_ms: f64,
    /// The counts over this file's seeds.
    pub tally: Tally,
    /// Every seed of this file whose outcome was not the scenario's expectation, in seed order.
    pub unexpected_seeds: Vec<UnexpectedSeed>,
}

/// One off-expectation seed in a [`SweepFile`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnexpectedSeed {
    pub seed: u64,
    /// `ok` or `violation`; `None` when the simulation panicked.
    pub outcome: Option<String>,
    /// The checks that failed, each once, in the checkers' order.
    pub failed_checks: Vec<String>,
    /// Each violation's check and message (cut to
    /// [`super::explore::MESSAGE_CHARS_MAX`] characters).
    pub violations: Vec<ViolationText>,
    /// The scenario's `reach` items the run never reached.
    pub missed: Vec<String>,
    /// The panic message, when the simulation panicked.
    pub panic: Option<String>,
    /// The command that replays this seed.
    pub replay: String,
}

/// A violation as a [`SweepFile`] keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ViolationText {
    pub check: String,
    pub message: String,
}

impl UnexpectedSeed {
    /// The file's record of an unexpected seed's summary.
    pub fn from_summary(s: &SeedSummary) -> UnexpectedSeed {
        debug_assert!(!s.expected, "seed {} was as expected", s.seed);
        UnexpectedSeed {
            seed: s.seed,
            outcome: s.outcome.map(|o| outcome_name(o).to_string()),
            failed_checks: s.failed_checks.clone(),
            violations: s
                .violations
                .iter()
                .map(|(check, message)| ViolationText {
                    check: check.clone(),
                    message: message.clone(),
                })
                .collect(),
            missed: s.missed.clone(),
            panic: s.panic.clone(),
            replay: s.replay.clone().unwrap_or_default(),
        }
    }

    /// Back to a summary, for printing as `ksim explore` does (the wall time, simulated time
    /// and message count of the seed are not kept: 0).
    pub fn to_summary(&self) -> SeedSummary {
        SeedSummary {
            seed: self.seed,
            expected: false,
            outcome: self.outcome.as_deref().and_then(outcome_from_name),
            failed_checks: self.failed_checks.clone(),
            violations: self
                .violations
                .iter()
                .map(|v| (v.check.clone(), v.message.clone()))
                .collect(),
            missed: self.missed.clone(),
            panic: self.panic.clone(),
            replay: Some(self.replay.clone()),
            wall_ms: 0,
            simulated_ms: 0,
            messages: 0,
        }
    }
}

fn outcome_name(o: Outcome) -> &'static str {
    match o {
        Outcome::Ok => "ok",
        Outcome::Violation => "violation",
    }
}

fn outcome_from_name(name: &str) -> Option<Outcome> {
    match name {
        "ok" => Some(Outcome::Ok),
        "violation" => Some(Outcome::Violation),
        _ => None,
    }
}

/// SHA-256 of a file's bytes, lower-case hex.
pub fn file_sha256(path: &Path) -> std::io::Result<String> {
    let bytes = std::fs::read(path)?;
    Ok(Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

/// Checks, before a sweep starts, that `--json FILE` may be written: it does not exist yet,
/// or `force` is given and it is not a directory. A sweep never replaces a user's file
/// without `--force`, as `ksim run --out` never writes into a directory of the user's.
pub fn check_json_path(path: &Path, force: bool) -> Result<(), String> {
    match std::fs::metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(format!(
            "cannot check --json {}: {}",
            path.display(),
            io_reason(&e)
        )),
        Ok(meta) if meta.is_dir() => Err(format!(
            "--json {} is a directory; name the file to write",
            path.display()
        )),
        Ok(_) if force => Ok(()),
        Ok(_) => Err(exists_message(path)),
    }
}

fn exists_message(path: &Path) -> String {
    format!(
        "--json {} already exists; choose a new file, or pass --force to replace it",
        path.display()
    )
}

/// Writes `sweep` to `path` as pretty JSON (creating missing parent directories). Without
/// `force` the file must not exist (checked again at the moment of writing); with `force` an
/// existing file is replaced in one step (written beside it, then renamed over it), so a
/// reader never sees half a file.
pub fn write_json(path: &Path, sweep: &SweepFile, force: bool) -> Result<(), String> {
    let cannot = |e: std::io::Error| format!("cannot write {}: {}", path.display(), io_reason(&e));
    let mut text = serde_json::to_string_pretty(sweep)
        .map_err(|e| format!("cannot encode {}: {e}", path.display()))?;
    text.push('\n');
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(cannot)?;
    }
    if !force {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)
            .map_err(|e| {
                if e.kind() == std::io::ErrorKind::AlreadyExists {
                    exists_message(path)
                } else {
                    cannot(e)
                }
            })?;
        return file.write_all(text.as_bytes()).map_err(cannot);
    }
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "sweep.json".to_string());
    let tmp = path.with_file_name(format!(".{name}.tmp-{}", std::process::id()));
    std::fs::write(&tmp, text.as_bytes()).map_err(cannot)?;
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        cannot(e)
    })
}

/// Why files could not be read or merged: bad input, never a panic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MergeError(pub String);

impl fmt::Display for MergeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for MergeError {}

/// Reads a [`SweepFile`] and checks that it is whole: its format, its shard, and counts that
/// agree with its list of unexpected seeds. `name` is how errors call the file.
pub fn parse(text: &str, name: &str) -> Result<SweepFile, MergeError> {
    let bad = |why: String| MergeError(format!("{name}: {why}"));
    let value: serde_json::Value = serde_json::from_str(text).map_err(|e| {
        bad(format!(
            "not JSON ({e}); expected a `ksim explore --json` file"
        ))
    })?;
    match value.get("format").and_then(|f| f.as_str()) {
        Some(FORMAT) => {}
        Some(other) => {
            return Err(bad(format!(
                "format {other:?}, but this ksim reads {FORMAT:?}; merge files written by one \
                 ksim version"
            )))
        }
        None => {
            return Err(bad(
                "not a `ksim explore --json` file (no \"format\")".into()
            ))
        }
    }
    let sweep: SweepFile = serde_json::from_value(value)
        .map_err(|e| bad(format!("not a whole `ksim explore --json` file: {e}")))?;
    check_whole(&sweep).map_err(bad)?;
    Ok(sweep)
}

/// Reads and checks the file at `path` ([`parse`]).
pub fn read(path: &Path) -> Result<SweepFile, MergeError> {
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path)
        .map_err(|e| MergeError(format!("cannot read {name}: {}", io_reason(&e))))?;
    parse(&text, &name)
}

/// A file's own consistency: the tally and the list of unexpected seeds describe the seeds of
/// its shard.
fn check_whole(f: &SweepFile) -> Result<(), String> {
    let shard = Shard::new(f.shard.index, f.shard.count)?;
    let end = f
        .start
        .checked_add(f.seeds)
        .ok_or_else(|| format!("start {} + seeds {} overflows", f.start, f.seeds))?;
    let in_shard =
        |seed: u64| seed >= f.start && seed < end && shard.contains_index(seed - f.start);
    if f.shard_seeds != shard.len(f.seeds) {
        return Err(format!(
            "shard {shard} of {} seeds has {} seeds, but the file says {}",
            f.seeds,
            shard.len(f.seeds),
            f.shard_seeds
        ));
    }
    let t = &f.tally;
    if t.seeds != f.shard_seeds || t.as_expected + t.unexpected != t.seeds {
        return Err(format!(
            "its tally ({} seeds: {} as expected, {} unexpected) does not add up to the shard's \
             {} seeds; was the run cut short?",
            t.seeds, t.as_expected, t.unexpected, f.shard_seeds
        ));
    }
    if f.unexpected_seeds.len() as u64 != t.unexpected {
        return Err(format!(
            "the tally counts {} unexpected seeds, but {} are listed",
            t.unexpected,
            f.unexpected_seeds.len()
        ));
    }
    let mut previous: Option<u64> = None;
    for u in &f.unexpected_seeds {
        if !in_shard(u.seed) {
            return Err(format!(
                "unexpected seed {} is not of shard {shard}",
                u.seed
            ));
        }
        if previous.is_some_and(|p| p >= u.seed) {
            return Err(format!("unexpected seed {} is listed out of order", u.seed));
        }
        previous = Some(u.seed);
    }
    for c in &t.checks {
        if !in_shard(c.first_seed) || c.seeds == 0 || c.seeds > t.seeds {
            return Err(format!(
                "check {} (first at seed {}, {} seeds) does not fit shard {shard}",
                c.check, c.first_seed, c.seeds
            ));
        }
    }
    Ok(())
}

/// One input of a merge, as [`Merged`] reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct MergedShard {
    pub shard: Shard,
    /// The file's name as given.
    pub name: String,
    /// Seeds the shard ran.
    pub seeds: u64,
    /// Wall milliseconds the shard's run took.
    pub elapsed_ms: f64,
}

/// The result of [`merge`]: the whole sweep as one [`SweepFile`] (shard [`Shard::WHOLE`],
/// wall times summed) and the shards it was made of, in shard order.
#[derive(Debug, Clone, PartialEq)]
pub struct Merged {
    pub sweep: SweepFile,
    pub shards: Vec<MergedShard>,
}

/// Combines the files of one sharded sweep, each `(name, file)`, in any order.
///
/// Refused (bad input): no file; files of different scenarios, scenario texts, seed ranges
/// or shard counts; a shard given twice; a shard missing. The merged tally is what one
/// unsharded run of the sweep would have counted (only wall times differ).
pub fn merge(files: Vec<(String, SweepFile)>) -> Result<Merged, MergeError> {
    let Some((first_name, first)) = files.first().cloned() else {
        return Err(MergeError("--merge needs at least one file".into()));
    };
    let key = |f: &SweepFile| {
        [
            ("scenario", f.scenario.clone()),
            ("scenario file (SHA-256)", f.scenario_sha256.clone()),
            ("--start", f.start.to_string()),
            ("--seeds", f.seeds.to_string()),
            ("shard count N", f.shard.count.to_string()),
        ]
    };
    let mut by_shard: BTreeMap<u64, (String, SweepFile)> = BTreeMap::new();
    for (name, f) in files {
        for ((what, want), (_, got)) in key(&first).into_iter().zip(key(&f)) {
            if want != got {
                return Err(MergeError(format!(
                    "{first_name} and {name} are not shards of one sweep: {what} {want} in \
                     {first_name}, {got} in {name}"
                )));
            }
        }
        if let Some((other, _)) = by_shard.get(&f.shard.index) {
            return Err(MergeError(format!(
                "shard {} is given twice: {other} and {name}",
                f.shard
            )));
        }
        by_shard.insert(f.shard.index, (name, f));
    }
    let count = first.shard.count;
    let missing: Vec<String> = (1..=count)
        .filter(|i| !by_shard.contains_key(i))
        .map(|i| format!("{i}/{count}"))
        .collect();
    if !missing.is_empty() {
        let have: Vec<String> = by_shard
            .values()
            .map(|(name, f)| format!("{} ({name})", f.shard))
            .collect();
        return Err(MergeError(format!(
            "shard{} {} of the sweep (seeds {}..={} of {}) {} missing; given: {}",
            if missing.len() == 1 { "" } else { "s" },
            missing.join(", "),
            first.start,
            first.start + first.seeds.saturating_sub(1),
            first.scenario,
            if missing.len() == 1 { "is" } else { "are" },
            have.join(", ")
        )));
    }
    let parts: Vec<&SweepFile> = by_shard.values().map(|(_, f)| f).collect();
    let tally = merge_tallies(first.start, parts.iter().map(|f| &f.tally));
    let mut unexpected_seeds: Vec<UnexpectedSeed> = parts
        .iter()
        .flat_map(|f| f.unexpected_seeds.iter().cloned())
        .collect();
    unexpected_seeds.sort_by_key(|u| u.seed);
    let elapsed_ms = parts.iter().map(|f| f.elapsed_ms).sum();
    let shards = by_shard
        .values()
        .map(|(name, f)| MergedShard {
            shard: f.shard,
            name: name.clone(),
            seeds: f.shard_seeds,
            elapsed_ms: f.elapsed_ms,
        })
        .collect();
    let sweep = SweepFile {
        shard: Shard::WHOLE,
        shard_seeds: first.seeds,
        elapsed_ms,
        tally,
        unexpected_seeds,
        ..first
    };
    debug_assert!(check_whole(&sweep).is_ok(), "{:?}", check_whole(&sweep));
    Ok(Merged { sweep, shards })
}

/// The tally of a sweep from the tallies of its shards (of the sweep starting at `start`):
/// counts and sums add up; a check's first seed is the lowest over the shards, its
/// `seeds_to_first` that seed's place in the whole sweep, and checks are ordered as one run
/// in seed order finds them (by first seed; checks first found on the same seed keep their
/// order in that seed's shard, the checkers' order).
pub fn merge_tallies<'a>(start: u64, parts: impl IntoIterator<Item = &'a Tally>) -> Tally {
    let mut t = Tally::default();
    // Per check: the merged counts and the rank of the check in the shard of its first seed.
    let mut checks: Vec<(CheckTally, usize)> = Vec::new();
    for part in parts {
        t.seeds += part.seeds;
        t.as_expected += part.as_expected;
        t.unexpected += part.unexpected;
        t.panicked += part.panicked;
        t.missed_reach += part.missed_reach;
        t.wall_ms_sum += part.wall_ms_sum;
        t.simulated_ms_sum += part.simulated_ms_sum;
        t.messages_sum += part.messages_sum;
        for (rank, c) in part.checks.iter().enumerate() {
            match checks.iter_mut().find(|(m, _)| m.check == c.check) {
                Some((m, m_rank)) => {
                    m.seeds += c.seeds;
                    if c.first_seed < m.first_seed {
                        m.first_seed = c.first_seed;
                        *m_rank = rank;
                    }
                }
                None => checks.push((c.clone(), rank)),
            }
        }
    }
    checks.sort_by_key(|(c, rank)| (c.first_seed, *rank));
    t.checks = checks
        .into_iter()
        .map(|(mut c, _)| {
            c.seeds_to_first = c.first_seed - start + 1;
            c
        })
        .collect();
    t
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
            violations: checks
                .iter()
                .map(|c| (c.to_string(), format!("{c} at {seed}")))
                .collect(),
            missed: Vec::new(),
            panic: None,
            replay: (!expected).then(|| format!("replay {seed}")),
            wall_ms: 10,
            simulated_ms: 1000,
            messages: 100,
        }
    }

    /// A sweep of seeds `start..start + verdicts.len()` whose seed `start + k` fails the checks
    /// `verdicts[k]` (unexpectedly when any), cut into `count` shard files.
    fn shard_files(start: u64, verdicts: &[&[&str]], count: u64) -> Vec<SweepFile> {
        (1..=count)
            .map(|index| {
                let shard = Shard::new(index, count).unwrap();
                let seeds = verdicts.len() as u64;
                let mut tally = Tally::default();
                let mut unexpected_seeds = Vec::new();
                for j in 0..shard.len(seeds) {
                    let seed = shard.seed(start, j);
                    let checks = verdicts[(seed - start) as usize];
                    let s = summary(seed, checks.is_empty(), checks);
                    tally.add(&s);
                    if !s.expected {
                        unexpected_seeds.push(UnexpectedSeed::from_summary(&s));
                    }
                }
                SweepFile {
                    format: FORMAT.into(),
                    scenario: "default".into(),
                    file: "scenarios/default.toml".into(),
                    scenario_sha256: "abc".into(),
                    expect: "ok".into(),
                    start,
                    seeds,
                    shard,
                    shard_seeds: shard.len(seeds),
                    elapsed_ms: 100.0,
                    tally,
                    unexpected_seeds,
                }
            })
            .collect()
    }

    fn named(files: Vec<SweepFile>) -> Vec<(String, SweepFile)> {
        files
            .into_iter()
            .map(|f| (format!("s{}.json", f.shard.index), f))
            .collect()
    }

    const VERDICTS: [&[&str]; 8] = [
        &[],
        &["lost-write"],
        &[],
        &["duplicate", "lost-write"],
        &[],
        &["duplicate"],
        &[],
        &["unseen", "aaa"],
    ];

    #[test]
    fn merged_shards_tally_as_one_run() {
        let whole = shard_files(10, &VERDICTS, 1).remove(0);
        for count in [2, 3, 5, 8, 11] {
            let mut files = shard_files(10, &VERDICTS, count);
            files.reverse();
            let merged = merge(named(files)).unwrap();
            assert_eq!(merged.sweep.tally, whole.tally, "N={count}");
            assert_eq!(merged.sweep.unexpected_seeds, whole.unexpected_seeds);
            assert_eq!(merged.shards.len() as u64, count);
            assert_eq!(merged.sweep.elapsed_ms, 100.0 * count as f64);
        }
        assert_eq!(
            whole.tally.line(1000.0),
            "8 seeds: 4 as expected, 4 unexpected; violations found: lost-write x2 (first at \
             seed 11), duplicate x2 (first at seed 13), unseen x1 (first at seed 17), aaa x1 \
             (first at seed 17); wall 1.0 s (125 ms/seed)"
        );
    }

    #[test]
    fn a_file_round_trips_through_json() {
        let f = shard_files(1, &VERDICTS, 3).remove(1);
        let text = serde_json::to_string_pretty(&f).unwrap();
        assert_eq!(parse(&text, "x.json").unwrap(), f);
        assert!(text.contains("\"shard\": {\n    \"index\": 2,\n    \"count\": 3\n  }"));
        let summary = f.unexpected_seeds[0].to_summary();
        assert_eq!(summary.outcome, Some(Outcome::Violation));
        assert_eq!(
            UnexpectedSeed::from_summary(&summary),
            f.unexpected_seeds[0]
        );
    }

    #[test]
    fn missing_overlapping_and_foreign_shards_are_refused() {
        let files = shard_files(1, &VERDICTS, 3);
        let err = merge(named(vec![files[0].clone(), files[2].clone()])).unwrap_err();
        assert_eq!(
            err.0,
            "shard 2/3 of the sweep (seeds 1..=8 of default) is missing; given: 1/3 (s1.json), \
             3/3 (s3.json)"
        );
        let err = merge(named(vec![files[0].clone(), files[0].clone()])).unwrap_err();
        assert_eq!(err.0, "shard 1/3 is given twice: s1.json and s1.json");
        let mut other = files[1].clone();
        other.scenario_sha256 = "def".into();
        let err = merge(named(vec![files[0].clone(), other])).unwrap_err();
        assert!(
            err.0.contains(
                "not shards of one sweep: scenario file (SHA-256) abc in s1.json, def in s2.json"
            ),
            "{err}"
        );
        let four = shard_files(1, &VERDICTS, 4);
        let err = merge(named(vec![files[0].clone(), four[1].clone()])).unwrap_err();
        assert!(
            err.0.contains("shard count N 3 in s1.json, 4 in s2.json"),
            "{err}"
        );
        let longer = shard_files(1, &[&[] as &[&str]; 9], 3);
        let err = merge(named(vec![files[0].clone(), longer[1].clone()])).unwrap_err();
        assert!(
            err.0.contains("--seeds 8 in s1.json, 9 in s2.json"),
            "{err}"
        );
        assert!(merge(Vec::new()).is_err());
    }

    #[test]
    fn broken_files_are_refused_with_their_name() {
        let f = shard_files(1, &VERDICTS, 3).remove(0);
        for (text, why) in [
            ("", "x.json: not JSON"),
            ("[1, 2]", "x.json: not a `ksim explore --json` file"),
            (
                "{\"format\": \"ksim-explore/0\"}",
                "format \"ksim-explore/0\"",
            ),
            (
                "{\"format\": \"ksim-explore/1\"}",
                "x.json: not a whole `ksim explore --json` file",
            ),
        ] {
            let err = parse(text, "x.json").unwrap_err();
            assert!(err.0.contains(why), "{text}: {err}");
        }
        let mut cut = f.clone();
        cut.tally.seeds -= 1;
        cut.tally.as_expected -= 1;
        let text = serde_json::to_string(&cut).unwrap();
        assert!(parse(&text, "x.json")
            .unwrap_err()
            .0
            .contains("was the run cut short?"));
        let mut foreign = f.clone();
        foreign.unexpected_seeds[0].seed = 2;
        let text = serde_json::to_string(&foreign).unwrap();
        assert!(parse(&text, "x.json")
            .unwrap_err()
            .0
            .contains("unexpected seed 2 is not of shard 1/3"));
        let mut zero = f;
        zero.shard.index = 0;
        let text = serde_json::to_string(&zero).unwrap();
        assert!(parse(&text, "x.json")
            .unwrap_err()
            .0
            .contains("shards count from 1"));
    }

    #[test]
    fn the_json_file_is_never_overwritten_without_force() {
        let tmp = tempfile::tempdir().unwrap();
        let f = shard_files(1, &VERDICTS, 1).remove(0);
        let path = tmp.path().join("nested/sweep.json");
        assert_eq!(check_json_path(&path, false), Ok(()));
        write_json(&path, &f, false).unwrap();
        assert_eq!(read(&path).unwrap(), f);
        let err = check_json_path(&path, false).unwrap_err();
        assert!(
            err.contains("already exists") && err.contains("--force"),
            "{err}"
        );
        assert!(write_json(&path, &f, false)
            .unwrap_err()
            .contains("--force"));
        assert_eq!(check_json_path(&path, true), Ok(()));
        let mut g = f.clone();
        g.elapsed_ms = 7.0;
        write_json(&path, &g, true).unwrap();
        assert_eq!(read(&path).unwrap(), g);
        assert_eq!(
            std::fs::read_dir(tmp.path().join("nested"))
                .unwrap()
                .count(),
            1
        );
        assert!(check_json_path(tmp.path(), true)
            .unwrap_err()
            .contains("is a directory"));
    }
}
