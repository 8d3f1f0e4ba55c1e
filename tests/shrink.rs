//! `ksim shrink` end to end: a shipped legacy scenario's failing seed shrinks to a scenario
//! with fewer fault actions that loads as it is and fails the same check when run; a second
//! shrink to the same file without `--force` is refused (exit 2, the file untouched); a check
//! the seed does not fail leaves nothing to shrink (exit 1, nothing written).

use std::process::{Command, Output};

/// A legacy scenario and one of its pinned seeds that shrinks in few runs (7 fault actions to
/// 2 in 14 runs: the leader killed and restarted; see the README for a bigger example).
const SCENARIO: &str = "scenarios/acks1-leader-failover.toml";
const SEED: u64 = 2;
/// The check the seed fails first of the scenario's `expect_violations`.
const CHECK: &str = "lost-write";

fn ksim(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ksim"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run ksim")
}

fn text(out: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn a_legacy_seed_shrinks_to_a_scenario_that_fails_the_same_way() {
    let tmp = tempfile::tempdir().unwrap();
    let out_file = tmp.path().join("acks1-shrunk.toml");
    let out_arg = out_file.to_str().unwrap();
    let seed = SEED.to_string();
    let out = ksim(&[
        "shrink", SCENARIO, "--seed", &seed, "--out", out_arg, "--jobs", "2",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        stdout.contains("shrunk ") && stdout.contains(" runs, "),
        "{stdout}"
    );

    // `shrunk N fault actions to M in R runs, ...`
    let counts: Vec<usize> = stdout
        .lines()
        .find(|l| l.starts_with("shrunk "))
        .expect("the result line")
        .split(' ')
        .filter_map(|w| w.parse().ok())
        .collect();
    let (recorded, kept) = (counts[0], counts[1]);
    let check = CHECK.to_string();

    // The written scenario loads as it is, scripted only, and fails the same check.
    let shrunk = ksim::scenario::load(&out_file).unwrap();
    assert_eq!(shrunk.name, "acks1-shrunk");
    assert!(shrunk.faults.kinds.is_empty());
    assert_eq!(shrunk.seeds, vec![SEED]);
    assert_eq!(shrunk.expect_violations, vec![check.clone()]);
    assert!(!shrunk.faults.schedule.is_empty());
    assert_eq!(shrunk.faults.schedule.len(), kept);
    assert!(
        kept < recorded,
        "{kept} scripted actions, {recorded} recorded"
    );
    assert!(shrunk.description.contains("ksim shrink"));
    let after = ksim::run::run(&shrunk, SEED);
    assert!(after.expected, "missed {:?}", after.missed);
    assert!(after.checks.violations.iter().any(|v| v.check == check));

    // Again without --force: refused before any run, the file untouched.
    let written = std::fs::read(&out_file).unwrap();
    let again = ksim(&["shrink", SCENARIO, "--seed", &seed, "--out", out_arg]);
    assert_eq!(again.status.code(), Some(2), "{}", text(&again));
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert!(
        stderr.contains("already exists") && stderr.contains("--force"),
        "{stderr}"
    );
    assert_eq!(std::fs::read(&out_file).unwrap(), written);
}

#[test]
fn a_seed_that_does_not_fail_the_check_has_nothing_to_shrink() {
    let tmp = tempfile::tempdir().unwrap();
    let out_file = tmp.path().join("nothing.toml");
    let seed = SEED.to_string();
    let out = ksim(&[
        "shrink",
        SCENARIO,
        "--seed",
        &seed,
        "--check",
        "idempotent-duplicate",
        "--out",
        out_file.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("nothing to shrink"),
        "{}",
        text(&out)
    );
    assert!(!out_file.exists());
    // Bad input is exit 2, before any run.
    let bad = ksim(&["shrink", SCENARIO, "--seed", &seed, "--out", "x.txt"]);
    assert_eq!(bad.status.code(), Some(2), "{}", text(&bad));
    let unknown = ksim(&["shrink", SCENARIO, "--seed", &seed, "--check", "lost"]);
    assert_eq!(unknown.status.code(), Some(2), "{}", text(&unknown));
}
