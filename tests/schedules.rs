//! The default configuration (`acks=all`, idempotence, `min.insync.replicas=2`, no unclean
//! election) must survive any schedule of the faults the simulator implements: broker crashes
//! and restarts, network partitions and heals. Proptest draws the schedules; the random nemesis
//! is off, so the schedule is the whole fault plan and a failing case shrinks (fewer faults,
//! earlier, lower broker ids) to a small schedule that still breaks a check.
//!
//! A failure prints the shrunk schedule as `[[faults.schedule]]` entries: paste them into a
//! copy of `scenarios/default.toml` with `kinds = []` to get a scenario that replays it.
//!
//! The cases are drawn from a fixed proptest seed so that `cargo test` is reproducible like
//! everything else here; set `PROPTEST_RNG_SEED=N` (and `PROPTEST_CASES=N`) to explore other
//! schedules.

use ksim::nemesis::FaultSource;
use ksim::run::{run, Outcome, RunResult};
use ksim::scenario::{load, FaultAction, Scenario, ScheduledFault, Selector};
use proptest::prelude::*;
use proptest::test_runner::{Config as ProptestConfig, RngSeed, TestRunner};
use std::fmt;
use std::path::Path;
use std::sync::{Mutex, OnceLock};

/// Shortened phases: each case is a whole simulation.
const DURATION_MS: u64 = 15_000;
const HEAL_MS: u64 = 10_000;
/// The proptest seed used unless `PROPTEST_RNG_SEED` is set.
const PROPTEST_SEED: u64 = 20_240_601;

/// One scripted fault, as plain data so that proptest can shrink it.
#[derive(Debug, Clone, PartialEq)]
enum Fault {
    /// `kill = "broker-N"`.
    Kill(i32),
    /// `restart = "broker-N"`.
    Restart(i32),
    /// `partition = [[brokers in the mask (and zk)], ["rest"]]`; the mask is never empty.
    Partition { brokers_mask: u8, with_zk: bool },
    /// `heal = true`.
    Heal,
}

#[derive(Debug, Clone, PartialEq)]
struct Timed {
    at_ms: u64,
    fault: Fault,
}

/// A drawn case: the seed of the run and the schedule.
#[derive(Clone)]
struct Case {
    seed: u64,
    schedule: Vec<Timed>,
}

fn default_scenario() -> &'static Scenario {
    static SC: OnceLock<Scenario> = OnceLock::new();
    SC.get_or_init(|| load(Path::new("scenarios/default.toml")).unwrap_or_else(|e| panic!("{e}")))
}

fn brokers() -> i32 {
    default_scenario().cluster.brokers
}

fn fault_strategy() -> impl Strategy<Value = Fault> {
    let n = brokers();
    assert!((1..=8).contains(&n), "the partition mask is a u8");
    let all = (1u16 << n) - 1;
    prop_oneof![
        (0..n).prop_map(Fault::Kill),
        (0..n).prop_map(Fault::Restart),
        (1..=all as u8, any::<bool>()).prop_map(|(brokers_mask, with_zk)| Fault::Partition {
            brokers_mask,
            with_zk
        }),
        Just(Fault::Heal),
    ]
}

fn case_strategy() -> impl Strategy<Value = Case> {
    (
        1u64..10_000,
        prop::collection::vec(
            (0..=DURATION_MS, fault_strategy()).prop_map(|(at_ms, fault)| Timed { at_ms, fault }),
            0..8,
        ),
    )
        .prop_map(|(seed, schedule)| Case { seed, schedule })
}

fn action(fault: &Fault) -> FaultAction {
    match *fault {
        Fault::Kill(b) => FaultAction::Kill(Selector::Broker(b)),
        Fault::Restart(b) => FaultAction::Restart(Selector::Broker(b)),
        Fault::Partition {
            brokers_mask,
            with_zk,
        } => {
            let mut group: Vec<Selector> = (0..brokers())
                .filter(|b| brokers_mask & (1 << b) != 0)
                .map(Selector::Broker)
                .collect();
            assert!(!group.is_empty());
            if with_zk {
                group.push(Selector::Zk);
            }
            FaultAction::Partition(vec![group, vec![Selector::Rest]])
        }
        Fault::Heal => FaultAction::Heal,
    }
}

/// The default scenario, shortened, with the random nemesis off and `schedule` as its plan.
fn scenario_with(schedule: &[Timed]) -> Scenario {
    let mut sc = default_scenario().clone();
    sc.duration_ms = DURATION_MS;
    sc.heal_ms = HEAL_MS;
    sc.faults.kinds = vec![];
    let mut faults: Vec<ScheduledFault> = schedule
        .iter()
        .map(|t| ScheduledFault {
            at_ms: t.at_ms,
            action: action(&t.fault),
        })
        .collect();
    // As the loader leaves it: by time, entries at the same time in list order.
    faults.sort_by_key(|f| f.at_ms);
    sc.faults.schedule = faults;
    sc
}

/// The schedule as scenario-file entries.
fn schedule_toml(schedule: &[ScheduledFault]) -> String {
    let mut s = String::new();
    for f in schedule {
        let value = match &f.action {
            FaultAction::Kill(sel) | FaultAction::Restart(sel) => format!("\"{sel}\""),
            FaultAction::Partition(groups) => {
                let groups: Vec<String> = groups
                    .iter()
                    .map(|g| {
                        let sels: Vec<String> = g.iter().map(|s| format!("\"{s}\"")).collect();
                        format!("[{}]", sels.join(", "))
                    })
                    .collect();
                format!("[{}]", groups.join(", "))
            }
            FaultAction::Heal => "true".to_string(),
            other => unreachable!("not generated: {other:?}"),
        };
        s.push_str(&format!(
            "[[faults.schedule]]\nat_ms = {}\n{} = {value}\n",
            f.at_ms,
            f.action.key()
        ));
    }
    s
}

impl fmt::Debug for Case {
    /// What proptest prints for the shrunk case: something a person can replay.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sc = scenario_with(&self.schedule);
        write!(
            f,
            "seed {} of scenarios/default.toml with duration_ms = {DURATION_MS}, heal_ms = {HEAL_MS}, \
             [faults] kinds = [] and\n{}",
            self.seed,
            schedule_toml(&sc.faults.schedule)
        )
    }
}

fn check(r: &RunResult) -> Result<(), TestCaseError> {
    if r.outcome == Outcome::Ok {
        return Ok(());
    }
    let violations: Vec<String> = r
        .checks
        .violations
        .iter()
        .map(|v| {
            let message: String = v.message.chars().take(400).collect();
            format!("  {}: {message}", v.check)
        })
        .collect();
    Err(TestCaseError::fail(format!(
        "the default configuration failed a check under this schedule:\n{}",
        violations.join("\n")
    )))
}

fn config() -> ProptestConfig {
    let mut config = ProptestConfig {
        cases: 12,
        // Each shrink step is a simulation: bound them.
        max_shrink_iters: 200,
        // The failing schedule is printed in full; no regression file outside tests/.
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    // `PROPTEST_CASES=N` runs more (exploration); the suite runs 12.
    if std::env::var_os("PROPTEST_CASES").is_some() {
        config.cases = ProptestConfig::default().cases;
    }
    if std::env::var_os("PROPTEST_RNG_SEED").is_none() {
        config.rng_seed = RngSeed::Fixed(PROPTEST_SEED);
    }
    config
}

/// One case: run the schedule and judge it.
fn run_case(case: &Case) -> Result<RunResult, TestCaseError> {
    let sc = scenario_with(&case.schedule);
    let r = run(&sc, case.seed);
    // Every scripted fault fired (a no-op, such as restarting a running broker, is recorded
    // with a note), and nothing random did.
    let fired = r
        .output
        .faults
        .iter()
        .filter(|f| f.source == FaultSource::Schedule)
        .count();
    prop_assert_eq!(fired, case.schedule.len(), "scripted faults that fired");
    prop_assert!(r
        .output
        .faults
        .iter()
        .all(|f| f.source != FaultSource::Random));
    check(&r)?;
    Ok(r)
}

#[test]
fn default_configuration_survives_any_schedule_of_crashes_and_partitions() {
    // (faults in the schedule, records acknowledged) per case that passed.
    let passed: Mutex<Vec<(usize, u64)>> = Mutex::new(Vec::new());
    let mut runner = TestRunner::new(config());
    let result = runner.run(&case_strategy(), |case| {
        let r = run_case(&case)?;
        passed
            .lock()
            .expect("passed")
            .push((case.schedule.len(), r.stats().records_acked));
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    // Not vacuous. A single case may legitimately acknowledge nothing (every broker cut off
    // for the whole fault phase), but most must, and some must have injected faults.
    let passed = passed.into_inner().expect("passed");
    let cases = passed.len();
    assert_eq!(cases as u32, runner.config().cases);
    let acked = passed.iter().filter(|(_, a)| *a > 0).count();
    let faulted = passed.iter().filter(|(n, a)| *n > 0 && *a > 0).count();
    eprintln!("{cases} schedules: {acked} acknowledged records, {faulted} of those with faults");
    assert!(
        acked * 2 >= cases,
        "only {acked} of {cases} cases acknowledged any record: the property is nearly vacuous"
    );
    assert!(faulted > 0, "no case with faults acknowledged any record");
}

#[test]
fn schedules_are_turned_into_the_scenario_faithfully() {
    let schedule = vec![
        Timed {
            at_ms: 9_000,
            fault: Fault::Heal,
        },
        Timed {
            at_ms: 2_000,
            fault: Fault::Partition {
                brokers_mask: 0b101,
                with_zk: true,
            },
        },
        Timed {
            at_ms: 1_000,
            fault: Fault::Kill(1),
        },
        Timed {
            at_ms: 5_000,
            fault: Fault::Restart(1),
        },
    ];
    let sc = scenario_with(&schedule);
    assert!(sc.faults.kinds.is_empty());
    assert_eq!((sc.duration_ms, sc.heal_ms), (DURATION_MS, HEAL_MS));
    let text = schedule_toml(&sc.faults.schedule);
    assert_eq!(
        text,
        "[[faults.schedule]]\nat_ms = 1000\nkill = \"broker-1\"\n\
         [[faults.schedule]]\nat_ms = 2000\npartition = [[\"broker-0\", \"broker-2\", \"zk\"], [\"rest\"]]\n\
         [[faults.schedule]]\nat_ms = 5000\nrestart = \"broker-1\"\n\
         [[faults.schedule]]\nat_ms = 9000\nheal = true\n"
    );
    // The printed entries are a valid schedule for the default scenario: what a failure prints
    // can be pasted into a scenario file.
    let toml = default_scenario_text_with(&text);
    let parsed =
        ksim::scenario::parse(&toml, "default.toml").unwrap_or_else(|e| panic!("{e}\n{toml}"));
    assert_eq!(parsed.faults.schedule, sc.faults.schedule);
}

/// `scenarios/default.toml` with the nemesis off, its own scripted faults (the last section of
/// the file) removed and `schedule` appended.
fn default_scenario_text_with(schedule: &str) -> String {
    let text = std::fs::read_to_string("scenarios/default.toml").expect("read default.toml");
    let text = match text.find("[[faults.schedule]]") {
        Some(at) => text[..at].to_string(),
        None => text,
    };
    let kinds = text
        .lines()
        .find(|l| l.starts_with("kinds = "))
        .expect("default.toml has faults.kinds")
        .to_string();
    format!("{}\n{schedule}", text.replacen(&kinds, "kinds = []", 1))
}
