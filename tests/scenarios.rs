//! Every scenario under `scenarios/` on every one of its pinned seeds must end the way the
//! scenario says it does (`expect`). This is the regression suite of the project: a scenario is
//! a lesson or a fixed bug, and its pinned seeds are the runs that show it.
//!
//! The scenario files are discovered at run time, so a new file is picked up without touching
//! this test. Runs go to a small pool of worker threads (one per core); each run already has
//! its own OS thread and madsim runtime, so they do not interfere.

use ksim::run::{run, RunResult};
use ksim::scenario::{load, Scenario};
use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Instant;

/// `scenarios/*.toml`, sorted, as paths relative to the package root (the working directory
/// cargo gives integration tests), so that replay commands read as a user would type them.
fn scenario_files() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = root.join("scenarios");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .map(|p| Path::new("scenarios").join(p.file_name().expect("file name")))
        .collect();
    files.sort();
    assert!(
        files.iter().any(|f| f.ends_with("default.toml")),
        "scenarios/default.toml not found among {files:?} (cwd {:?})",
        std::env::current_dir()
    );
    files
}

fn load_all() -> Vec<Scenario> {
    scenario_files()
        .iter()
        .map(|f| load(f).unwrap_or_else(|e| panic!("{e}")))
        .collect()
}

/// What a person needs to see when a pinned run does not end as expected.
fn describe_failure(r: &RunResult) -> String {
    let mut s = format!(
        "{} seed {}: outcome {:?}, but the scenario expects {:?}{}\n",
        r.scenario.name,
        r.output.seed,
        r.outcome,
        r.scenario.expect,
        if r.scenario.expect_violations.is_empty() {
            String::new()
        } else {
            format!(" (one of {:?})", r.scenario.expect_violations)
        }
    );
    if !r.missed.is_empty() {
        s.push_str(&format!(
            "  off its expectation: {}\n",
            ksim::reach::describe_missed(&r.missed)
        ));
    }
    if r.checks.violations.is_empty() {
        s.push_str("  no check failed\n");
    }
    for v in &r.checks.violations {
        let message: String = v.message.chars().take(600).collect();
        let cut = if message.len() < v.message.len() {
            " ..."
        } else {
            ""
        };
        s.push_str(&format!("  {}: {message}{cut}\n", v.check));
    }
    let out = r.default_out_dir();
    match r.write_outputs(&out) {
        Ok(()) => s.push_str(&format!("  outputs: {}\n", out.display())),
        Err(e) => s.push_str(&format!(
            "  (could not write outputs to {}: {e})\n",
            out.display()
        )),
    }
    s.push_str(&format!("  replay: {}\n", r.replay_command()));
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

#[test]
fn scenario_files_are_well_formed() {
    for sc in load_all() {
        let stem = Path::new(&sc.file)
            .file_stem()
            .and_then(|s| s.to_str())
            .expect("file stem")
            .to_string();
        assert_eq!(
            sc.name, stem,
            "{}: scenario.name must equal the file stem",
            sc.file
        );
        assert!(
            !sc.description.trim().is_empty(),
            "{}: scenario.description is empty; say why the scenario exists and what to watch",
            sc.file
        );
        assert!(!sc.seeds.is_empty(), "{}: no pinned seeds", sc.file);
        assert!(
            !sc.reach.is_empty(),
            "{}: scenario.reach is empty; say what every run must get to (see sim/src/reach.rs)",
            sc.file
        );
    }
}

#[test]
fn every_scenario_meets_its_expectation_on_its_pinned_seeds() {
    let scenarios = load_all();
    let jobs: VecDeque<(usize, u64)> = scenarios
        .iter()
        .enumerate()
        .flat_map(|(i, sc)| sc.seeds.iter().map(move |&seed| (i, seed)))
        .collect();
    let total = jobs.len();
    assert!(total > 0);
    let jobs = Mutex::new(jobs);
    let failures: Mutex<Vec<(usize, u64, String)>> = Mutex::new(Vec::new());
    let workers = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
        .clamp(1, total);
    let started = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| loop {
                let Some((i, seed)) = jobs.lock().expect("jobs").pop_front() else {
                    break;
                };
                let sc = &scenarios[i];
                let t = Instant::now();
                let outcome = std::panic::catch_unwind(|| run(sc, seed));
                let failure = match outcome {
                    Ok(r) => {
                        eprintln!(
                            "{} seed {seed}: {:?} (expected: {}) in {} ms",
                            sc.name,
                            r.outcome,
                            r.expected,
                            t.elapsed().as_millis()
                        );
                        assert_eq!(r.output.seed, seed);
                        (!r.expected).then(|| describe_failure(&r))
                    }
                    Err(panic) => Some(format!(
                        "{} seed {seed}: the simulation panicked: {}\n  replay: cargo run --release -- run {} --seed {seed}\n",
                        sc.name,
                        panic_message(&*panic),
                        sc.file
                    )),
                };
                if let Some(f) = failure {
                    failures.lock().expect("failures").push((i, seed, f));
                }
            });
        }
    });
    eprintln!(
        "{total} pinned runs of {} scenarios on {workers} threads in {} ms",
        scenarios.len(),
        started.elapsed().as_millis()
    );
    let mut failures = failures.into_inner().expect("failures");
    failures.sort();
    let failures: Vec<String> = failures.into_iter().map(|(_, _, f)| f).collect();
    assert!(
        failures.is_empty(),
        "{} of {total} pinned runs did not meet their scenario's expectation:\n\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Vacuity is closed: the default scenario without its faults still ends `ok` on every check,
/// but it reaches none of the elections, ISR shrinks and truncations its `reach` demands, so
/// the run is off its expectation and says what it missed.
#[test]
fn a_scenario_stripped_of_its_faults_fails_for_vacuity() {
    let mut sc = load(Path::new("scenarios/default.toml")).expect("default loads");
    sc.faults.kinds.clear();
    sc.faults.schedule.clear();
    let r = run(&sc, 1);
    assert_eq!(r.outcome, ksim::run::Outcome::Ok);
    assert!(!r.expected, "a fault-free run met the expectation");
    for item in ["leader-election", "isr-shrink"] {
        assert!(r.missed.contains(&item.to_string()), "{:?}", r.missed);
    }
    assert!(describe_failure(&r).contains("off its expectation: did not reach nemesis-fault"));
}

/// `offset-reset-latest-skips`: the consumer started at t=8000 ms with
/// `auto.offset.reset=latest` never reads the records acknowledged before; the run is ok, and
/// the summary's notes count every one of those records and say it is configuration, not loss.
#[test]
fn a_late_latest_consumer_is_explained_not_reported_as_loss() {
    use ksim_model::event::{OpType, OpValue};
    use std::collections::BTreeSet;
    let sc = load(Path::new("scenarios/offset-reset-latest-skips.toml")).expect("loads");
    let r = run(&sc, sc.seeds[0]);
    assert!(r.expected, "{}", describe_failure(&r));
    let read: BTreeSet<u64> = r
        .output
        .history
        .iter()
        .filter(|e| e.op.op_type == OpType::Ok)
        .filter_map(|e| match &e.op.value {
            OpValue::Poll { records } => Some(records.iter().map(|x| x.value)),
            _ => None,
        })
        .flatten()
        .collect();
    let unread = r
        .output
        .history
        .iter()
        .filter(|e| e.op.op_type == OpType::Ok)
        .filter(|e| matches!(&e.op.value, OpValue::Send { value, .. } if !read.contains(value)))
        .count();
    assert!(unread > 100, "the late consumer skipped records: {unread}");
    let summary = r.summary();
    let unseen_notes: Vec<&String> = summary
        .check_notes
        .iter()
        .filter(|n| n.check == "unseen")
        .map(|n| &n.note)
        .collect();
    assert!(!unseen_notes.is_empty());
    let mut counted = 0;
    for note in &unseen_notes {
        assert!(
            note.contains("not read because of configuration, not loss")
                && note
                    .contains("auto.offset.reset=latest with a consumer that started at t=8000 ms"),
            "{note}"
        );
        counted += note
            .split(' ')
            .next()
            .and_then(|n| n.parse::<usize>().ok())
            .expect("a note starts with its count");
    }
    assert_eq!(counted, unread, "every skipped record is counted once");
    let report = ksim::report::render(&r);
    assert!(
        report.contains(unseen_notes[0].as_str()),
        "the report shows the notes"
    );
}

/// Regression (`kip-320-stale-epoch-follower` seed 365, found by a 500-seed sweep): a produce
/// completed a parked follower fetch, whose answer moved the HW and completed a parked
/// consumer fetch from a nested call; the outer loop then looked for that consumer fetch and
/// the broker panicked. Each parked fetch is now completed once, as Kafka's purgatory does.
#[test]
fn a_fetch_completed_by_a_nested_hw_advance_is_not_completed_twice() {
    let sc = load(Path::new("scenarios/kip-320-stale-epoch-follower.toml"))
        .unwrap_or_else(|e| panic!("{e}"));
    let r = run(&sc, 365);
    assert!(
        r.checks.violations.iter().all(|v| v.check != "liveness"),
        "{:?}",
        r.checks.violations
    );
}

/// Regression (`topic-admin-under-faults` seed 195, found by a 300-seed sweep): the last ISR
/// member of events-0, broker-2, restarted after leading epoch 2 without writing; the recovery
/// (KIP-966's balanced unclean recovery) compared the replicas' latest cached epochs and chose
/// broker-1, a zombie leader of epoch 1 whose log ended at 942, over broker-2's committed
/// records up to 948, which a consumer had read. Replicas now report the epoch of their last
/// record (KIP-966's LastWrittenLeaderEpoch), and nothing committed is lost.
#[test]
fn the_recovery_compares_the_epoch_of_the_last_record_not_the_last_assigned_epoch() {
    let sc = load(Path::new("scenarios/topic-admin-under-faults.toml"))
        .unwrap_or_else(|e| panic!("{e}"));
    let r = run(&sc, 195);
    assert!(r.checks.violations.is_empty(), "{:?}", r.checks.violations);
}

/// Regression (`kip-101-divergence-fixed` seeds 5032, 5160 and 5468, found on fresh seeds): a
/// recovery among the last ISR (KIP-966) elected a replica whose registration outlived its
/// incarnation (seed 5032: broker-2, registered with a report of 374 records, had lost power
/// 182 ms before) and cleared the last-known ELR, so broker-0, which held every committed
/// record, stopped being a candidate; the next recovery elected broker-2's next incarnation
/// with an empty log and broker-0 truncated 372 committed records. A recovery now keeps the
/// candidates it did not elect in the last-known ELR until a leader of its epoch has led.
#[test]
fn a_recovery_keeps_the_candidates_it_did_not_elect() {
    let sc = load(Path::new("scenarios/kip-101-divergence-fixed.toml"))
        .unwrap_or_else(|e| panic!("{e}"));
    for seed in [5032, 5160, 5468] {
        let r = run(&sc, seed);
        assert!(
            r.checks.violations.is_empty(),
            "seed {seed}: {:?}",
            r.checks.violations
        );
    }
}

/// Regression (`clean-leader-election` seed 10662, found on fresh seeds): broker-0, dropped
/// from the ISR when broker-1 was elected with ISR [broker-1] and `min.insync.replicas = 1`,
/// stayed a recovery candidate after broker-1 had led and committed a record of epoch 0 at an
/// offset where broker-0 held an uncommitted one of epoch 1; the recovery preferred the later
/// epoch and broker-1 truncated a committed record (`committed-data-stable`,
/// `nonmonotonic-poll`). A provisional ELR member is no candidate once a leader of the epoch it
/// was dropped at is known to have led (`controller::update_last_known_elr`).
#[test]
fn a_recovery_ignores_a_replica_dropped_by_a_leader_that_then_led() {
    let sc =
        load(Path::new("scenarios/clean-leader-election.toml")).unwrap_or_else(|e| panic!("{e}"));
    let r = run(&sc, 10662);
    assert!(r.checks.violations.is_empty(), "{:?}", r.checks.violations);
}

/// Regression (`all-faults` seed 10725, found on fresh seeds): a silent corruption injected
/// into a halted broker landed in the log it fetched after its restart; the nemesis counted it
/// as a good copy once it rejoined the ISR and took the power of the last good one, and the
/// heal phase then crashed the running broker again as "halted", so its recovery found the
/// corruption: every replica of events-0 lost its log (`committed-record-lost`). The nemesis
/// now waits for a restart after the corruption landed, and a halted broker the nemesis has
/// since stopped is the nemesis's to restart.
#[test]
fn a_pending_corruption_keeps_a_restarted_broker_from_counting_as_a_copy() {
    let sc = load(Path::new("scenarios/all-faults.toml")).unwrap_or_else(|e| panic!("{e}"));
    let r = run(&sc, 10725);
    assert!(r.checks.violations.is_empty(), "{:?}", r.checks.violations);
}

/// Regression (`all-faults` seed 7800067, found on fresh seeds): the leader of events-2 took a
/// silent corruption while both followers held its records; one follower's disk was then
/// destroyed and the other's ZooKeeper session expired, so the controller narrowed the ISR to
/// the corrupt leader and the dead follower, and the leader's clean shutdown lost 317
/// acknowledged records at its recovery (`committed-record-lost`). A corrupt broker loses its
/// copy when it stops, so the nemesis now spares its crash or shutdown while it holds the last
/// in-sync copy. The run must stay clean and the nemesis must have spared that shutdown.
#[test]
fn a_corrupt_broker_holding_the_last_copy_is_not_stopped() {
    let sc = load(Path::new("scenarios/all-faults.toml")).unwrap_or_else(|e| panic!("{e}"));
    let r = run(&sc, 7800067);
    assert!(r.checks.violations.is_empty(), "{:?}", r.checks.violations);
    let spared: Vec<_> = r
        .output
        .faults
        .iter()
        .filter(|f| {
            f.note
                .as_deref()
                .is_some_and(|n| n.contains("its log is corrupt"))
        })
        .collect();
    assert!(
        spared
            .iter()
            .any(|f| f.action == "shutdown" && f.at_ms == 15131),
        "{spared:?}"
    );
}

/// Regression (`controller-split-brain-fenced` seeds 10432 and 10976, found on fresh seeds):
/// after the final heal the controller's connection to a leader sat in TCP retransmission
/// backoff for ten more seconds, and the controller's answers to the leader's AlterPartition
/// waited behind it on that same connection, so the leader learnt neither its new ISR nor the
/// answers before the run ended (`liveness`). Replies now travel back on the request's
/// connection, and the twins' heal phase (20 s) leaves time for a stalled connection (up to
/// 10 s in madsim) and a session timeout (6 s).
#[test]
fn a_stalled_connection_after_the_heal_leaves_time_to_recover() {
    let sc = load(Path::new("scenarios/controller-split-brain-fenced.toml"))
        .unwrap_or_else(|e| panic!("{e}"));
    for seed in [10432, 10976] {
        let r = run(&sc, seed);
        assert!(
            r.checks.violations.is_empty(),
            "seed {seed}: {:?}",
            r.checks.violations
        );
    }
}

/// Regression (`controller-split-brain-fenced` seed 10911, found on fresh seeds): the
/// controller refused a leader's ISR expansion while the leader was paused (the new member's
/// registration was not loaded yet); on resume the leader sent the same request again under
/// the same correlation id, read the refusal as the answer to it and let its HW pass the
/// member, and the controller carried out the second copy 7 ms later: an ISR member 1790
/// records behind the HW (`strong-isr`). The leader now keeps one copy in flight, each with a
/// correlation id of its own, and only the latest copy's answer counts.
#[test]
fn only_the_latest_copy_of_an_alter_partition_is_answered() {
    let sc = load(Path::new("scenarios/controller-split-brain-fenced.toml"))
        .unwrap_or_else(|e| panic!("{e}"));
    let r = run(&sc, 10911);
    assert!(r.checks.violations.is_empty(), "{:?}", r.checks.violations);
}

/// Item 6 of the "house" issue (a false alarm a new user met): `five-brokers-kafka-defaults`
/// seed 18 needs about 16 s after the heal to take writes on every partition again (a killed
/// broker waits for its old session to expire, a restarted ISR member holds back `acks=all`
/// until the leader drops it), longer than its 15 s heal phase. The run waits past the heal
/// phase, within the bound the timeouts explain, and is ok; the `liveness` note says how long
/// recovery took and names the timeouts instead of reporting a bug.
#[test]
fn a_recovery_slower_than_the_heal_phase_is_waited_for_and_explained() {
    use ksim_model::event::Event;
    let sc = load(Path::new("scenarios/five-brokers-kafka-defaults.toml")).expect("loads");
    let r = run(&sc, 18);
    assert_eq!(
        r.outcome,
        ksim::run::Outcome::Ok,
        "{}",
        describe_failure(&r)
    );
    assert!(r.output.events.iter().any(|e| matches!(
        &e.event,
        Event::HealPhaseExtended {
            heal_phase_end_ms: 45_000,
            ..
        }
    )));
    let note = r
        .checks
        .notes
        .iter()
        .find(|n| n.check == "liveness")
        .map(|n| n.note.clone())
        .unwrap_or_default();
    assert!(
        note.contains("the cluster needed longer than the heal phase to recover")
            && note.contains("zookeeper.session.timeout.ms 18000"),
        "{note}"
    );
}
