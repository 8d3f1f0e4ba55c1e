//! A sharded sweep is the unsharded sweep, cut up: shards `1..N` of `ksim explore --shard I/N`
//! together run every seed exactly once, each with the verdict one unsharded run gives it, and
//! `ksim explore --merge` of their `--json` files prints and writes the unsharded tally. Bad
//! input to `--merge` and `--json` is refused with exit status 2, never a panic.

use ksim::cli::explore::{explore, explore_shard, SeedSummary, Shard, Tally};
use ksim::cli::shard::{merge, merge_tallies, SweepFile, UnexpectedSeed, FORMAT};
use ksim::scenario::{load, Scenario};
use std::path::Path;
use std::process::{Command, Output};

/// `duplicates-without-idempotence`, cut to 6 s of workload and 5 s of heal so that a sweep
/// is cheap: with fewer faults some seeds duplicate records (as expected) and some do not or
/// miss their `reach` (unexpected), so the seeds' verdicts differ.
fn short_scenario() -> Scenario {
    let mut sc = load(Path::new("scenarios/duplicates-without-idempotence.toml"))
        .unwrap_or_else(|e| panic!("{e}"));
    sc.duration_ms = 6_000;
    sc.heal_ms = 5_000;
    sc
}

/// A seed's verdict: everything of its summary but the wall time.
fn verdict(s: &SeedSummary) -> SeedSummary {
    SeedSummary {
        wall_ms: 0,
        ..s.clone()
    }
}

fn without_wall(t: &Tally) -> Tally {
    Tally {
        wall_ms_sum: 0,
        ..t.clone()
    }
}

fn sweep_file(
    sc: &Scenario,
    start: u64,
    seeds: u64,
    shard: Shard,
    run: &[SeedSummary],
    tally: &Tally,
) -> SweepFile {
    SweepFile {
        format: FORMAT.to_string(),
        scenario: sc.name.clone(),
        file: sc.file.clone(),
        scenario_sha256: "same".to_string(),
        expect: "violation of duplicate".to_string(),
        start,
        seeds,
        shard,
        shard_seeds: shard.len(seeds),
        elapsed_ms: 1.0,
        tally: tally.clone(),
        unexpected_seeds: run
            .iter()
            .filter(|s| !s.expected)
            .map(UnexpectedSeed::from_summary)
            .collect(),
    }
}

#[test]
fn shards_cover_each_seed_once_with_the_unsharded_verdicts() {
    let sc = short_scenario();
    let (start, seeds, count) = (21u64, 8u64, 3u64);
    let mut whole: Vec<SeedSummary> = Vec::new();
    let whole_tally = explore(
        &sc,
        start..start + seeds,
        2,
        || {},
        |s, _| whole.push(s.clone()),
    );
    assert_eq!(
        whole.iter().map(|s| s.seed).collect::<Vec<_>>(),
        (start..start + seeds).collect::<Vec<_>>()
    );

    let mut by_seed: Vec<SeedSummary> = Vec::new();
    let mut files = Vec::new();
    for index in 1..=count {
        let shard = Shard::new(index, count).unwrap();
        let mut part: Vec<SeedSummary> = Vec::new();
        let tally = explore_shard(
            &sc,
            start..start + seeds,
            shard,
            2,
            || {},
            |s, _| part.push(s.clone()),
        );
        assert_eq!(tally.seeds, shard.len(seeds));
        for s in &part {
            assert_eq!(
                (s.seed - start) % count,
                index - 1,
                "seed {} in shard {shard}",
                s.seed
            );
        }
        files.push((
            format!("shard-{index}.json"),
            sweep_file(&sc, start, seeds, shard, &part, &tally),
        ));
        by_seed.extend(part);
    }
    by_seed.sort_by_key(|s| s.seed);
    // Every seed exactly once ...
    assert_eq!(
        by_seed.iter().map(|s| s.seed).collect::<Vec<_>>(),
        (start..start + seeds).collect::<Vec<_>>()
    );
    // ... with the verdict the unsharded run gave it.
    assert_eq!(
        by_seed.iter().map(verdict).collect::<Vec<_>>(),
        whole.iter().map(verdict).collect::<Vec<_>>()
    );
    let merged_tally = merge_tallies(start, files.iter().map(|(_, f)| &f.tally));
    assert_eq!(without_wall(&merged_tally), without_wall(&whole_tally));
    files.rotate_left(1);
    let merged = merge(files).unwrap();
    assert_eq!(
        without_wall(&merged.sweep.tally),
        without_wall(&whole_tally)
    );
    let whole_file = sweep_file(&sc, start, seeds, Shard::WHOLE, &whole, &whole_tally);
    assert_eq!(merged.sweep.unexpected_seeds, whole_file.unexpected_seeds);
    eprintln!("unsharded: {}", whole_tally.line(1.0));
}

/// Runs the built `ksim` in the package root.
fn ksim(args: &[String]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ksim"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("CI")
        .output()
        .expect("run ksim")
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn read_file(path: &Path) -> SweepFile {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The lines a person compares: seeds and tally, without the wall-clock part of the tally.
fn verdict_lines(stdout: &str) -> Vec<String> {
    stdout
        .lines()
        .filter(|l| {
            !l.starts_with("exploring ")
                && !l.starts_with("merging ")
                && !l.starts_with("shards: ")
                && !l.starts_with("wrote ")
        })
        .map(|l| match l.rsplit_once(", ") {
            Some((kept, wall)) if wall.ends_with("wall per violating seed") => kept.to_string(),
            _ => l.split("; wall ").next().unwrap_or(l).to_string(),
        })
        .collect()
}

#[test]
fn the_binary_shards_writes_json_and_merges_to_the_unsharded_tally() {
    const SCENARIO: &str = "scenarios/deserializer-mismatch-poison-pill.toml";
    let tmp = tempfile::tempdir().unwrap();
    let path = |name: &str| tmp.path().join(name).display().to_string();
    let (whole_json, merged_json, junk, absent) = (
        path("whole.json"),
        path("merged.json"),
        path("junk.json"),
        path("absent.json"),
    );
    let shards: Vec<String> = (1..=3).map(|i| path(&format!("s{i}.json"))).collect();
    let (s1, s2, s3) = (shards[0].as_str(), shards[1].as_str(), shards[2].as_str());
    let explore_args = |extra: &[&str]| -> Vec<String> {
        let mut args: Vec<&str> = vec!["explore", SCENARIO, "--seeds", "6", "--start", "40"];
        args.extend(["--jobs", "1"]);
        args.extend(extra);
        args.into_iter().map(String::from).collect()
    };

    let whole = ksim(&explore_args(&["--json", &whole_json]));
    let (whole_out, whole_err) = text(&whole);
    assert_eq!(whole.status.code(), Some(0), "{whole_out}{whole_err}");
    for (i, file) in shards.iter().enumerate() {
        let i = i as u64 + 1;
        let out = ksim(&explore_args(&[
            "--shard",
            &format!("{i}/3"),
            "--json",
            file,
        ]));
        let (stdout, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
        let header = format!(
            "seeds 40..=45, shard {i}/3: 2 seeds ({}, {})",
            39 + i,
            42 + i
        );
        assert!(stdout.contains(&header), "{stdout}");
    }
    let merged = ksim(&owned(&[
        "explore",
        "--merge",
        s3,
        s1,
        s2,
        "--json",
        &merged_json,
    ]));
    let (merged_out, merged_err) = text(&merged);
    assert_eq!(merged.status.code(), Some(0), "{merged_out}{merged_err}");
    assert!(
        merged_out.starts_with(&format!(
            "merging 3 shards of deserializer-mismatch-poison-pill ({SCENARIO}): seeds 40..=45"
        )),
        "{merged_out}"
    );
    assert_eq!(
        verdict_lines(&merged_out),
        verdict_lines(&whole_out),
        "merge:\n{merged_out}\nunsharded:\n{whole_out}"
    );

    let (w, m) = (
        read_file(Path::new(&whole_json)),
        read_file(Path::new(&merged_json)),
    );
    assert_eq!(without_wall(&m.tally), without_wall(&w.tally));
    assert_eq!(m.unexpected_seeds, w.unexpected_seeds);
    assert_eq!(
        (
            &m.scenario,
            &m.scenario_sha256,
            m.start,
            m.seeds,
            m.shard,
            m.shard_seeds
        ),
        (
            &w.scenario,
            &w.scenario_sha256,
            w.start,
            w.seeds,
            Shard::WHOLE,
            6
        )
    );
    assert_eq!(w.scenario_sha256.len(), 64);

    // Bad input: exit status 2 with a message, no panic, and no file overwritten.
    let before = std::fs::read(&whole_json).unwrap();
    std::fs::write(&junk, "{\"not\": \"a sweep\"}").unwrap();
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            owned(&["explore", "--merge", s1, s2]),
            "shard 3/3 of the sweep (seeds 40..=45 of deserializer-mismatch-poison-pill) is missing",
        ),
        (owned(&["explore", "--merge", s1, s2, s3, s1]), "shard 1/3 is given twice"),
        (
            owned(&["explore", "--merge", s1, &whole_json]),
            "not shards of one sweep: shard count N 3",
        ),
        (
            owned(&["explore", "--merge", &junk]),
            "junk.json: not a `ksim explore --json` file",
        ),
        (owned(&["explore", "--merge", &absent]), "cannot read"),
        (
            explore_args(&["--json", &whole_json]),
            "already exists; choose a new file, or pass --force",
        ),
        (
            owned(&["explore", "--merge", s1, s2, s3, "--json", &whole_json]),
            "already exists",
        ),
        (
            explore_args(&["--shard", "0/3"]),
            "$((JOB_COMPLETION_INDEX + 1))/3",
        ),
    ];
    for (args, why) in cases {
        let out = ksim(&args);
        let (stdout, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stdout}{stderr}");
        assert!(stderr.contains(why), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
    assert_eq!(std::fs::read(&whole_json).unwrap(), before);
    // --force replaces it.
    let out = ksim(&owned(&[
        "explore",
        "--merge",
        s1,
        s2,
        s3,
        "--json",
        &whole_json,
        "--force",
    ]));
    assert_eq!(out.status.code(), Some(0), "{:?}", text(&out));
    assert_eq!(read_file(Path::new(&whole_json)).shard_seeds, 6);
}

fn owned(args: &[&str]) -> Vec<String> {
    args.iter().map(|a| a.to_string()).collect()
}
