//! Bad input is an operating error, not a programmer error: the loader returns a
//! `ScenarioError` that names the file, line, key and what is wrong (with the closest spelling
//! for an unknown key), and `ksim run` prints it on stderr and exits with code 2. Nothing
//! panics.
//!
//! Each case is the shipped `scenarios/default.toml` with one edit, written to a temporary
//! directory under a file name that matches its `scenario.name`, so that exactly the edit is
//! wrong. `the_unedited_copy_loads` proves the copy itself is fine.

use ksim::scenario::{load, parse, ScenarioError, ScenarioErrorKind};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// One bad input.
struct Case {
    /// File stem and `scenario.name` of the written file.
    name: &'static str,
    /// `(from, to)`: the one edit of `default.toml`; `None`: the file does not exist.
    edit: Option<(&'static str, &'static str)>,
    /// Substrings the message must contain (`{file}` stands for the path, `{line}` for the
    /// 1-based line of the edit).
    expect: &'static [&'static str],
    kind: ScenarioErrorKind,
}

const CASES: &[Case] = &[
    Case {
        name: "unknown-key",
        edit: Some(("replication_factor = 3", "replication_facter = 3")),
        expect: &[
            "{file}:{line}:",
            "unknown key \"replication_facter\"",
            "did you mean \"replication_factor\"",
        ],
        kind: ScenarioErrorKind::UnknownKey,
    },
    Case {
        name: "acks-2",
        edit: Some(("acks = \"all\"", "acks = 2")),
        expect: &[
            "{file}:{line}:",
            "producers[0].config.acks",
            "Invalid value 2 for configuration acks",
        ],
        kind: ScenarioErrorKind::Invalid,
    },
    Case {
        name: "replication-factor-above-brokers",
        edit: Some(("replication_factor = 3", "replication_factor = 4")),
        expect: &[
            "{file}:{line}:",
            "topics[0].replication_factor",
            "Replication factor: 4 larger than available brokers: 3.",
        ],
        kind: ScenarioErrorKind::Invalid,
    },
    Case {
        name: "syntax-error",
        edit: Some(("brokers = 3", "brokers = = 3")),
        expect: &["{file}:{line}:"],
        kind: ScenarioErrorKind::Syntax,
    },
    Case {
        name: "controller-not-supported",
        edit: Some(("controller = \"zk\"", "controller = \"kraft\"")),
        expect: &[
            "{file}:{line}:",
            "cluster.controller",
            "not supported yet",
            "kraft",
        ],
        kind: ScenarioErrorKind::NotSupportedYet,
    },
    Case {
        name: "unknown-truncation-mode",
        edit: Some((
            "\"zookeeper.session.timeout.ms\" = 6000",
            "\"zookeeper.session.timeout.ms\" = 6000\n\"sim.replication.truncation\" = \"kip-102\"",
        )),
        expect: &[
            "sim.replication.truncation",
            "Invalid value kip-102 for configuration sim.replication.truncation: String must be one of: \
             high-watermark, kip-101, kip-279, kip-320-first-try, fenced",
        ],
        kind: ScenarioErrorKind::Invalid,
    },
    Case {
        name: "negative-retention-ms",
        edit: Some((
            "\"zookeeper.session.timeout.ms\" = 6000",
            "\"zookeeper.session.timeout.ms\" = 6000\n\"log.retention.ms\" = -5",
        )),
        expect: &[
            "{file}:",
            "log.retention.ms",
            "Invalid value -5 for configuration log.retention.ms: Value must be at least -1",
        ],
        kind: ScenarioErrorKind::Invalid,
    },
    Case {
        name: "negative-retention-bytes",
        edit: Some((
            "replication_factor = 3",
            "replication_factor = 3\nconfig = { \"retention.bytes\" = -7 }",
        )),
        expect: &[
            "{file}:",
            "retention.bytes",
            "Invalid value -7 for configuration retention.bytes: Value must be at least -1",
        ],
        kind: ScenarioErrorKind::Invalid,
    },
    Case {
        name: "segment-bytes-below-minimum",
        edit: Some((
            "\"zookeeper.session.timeout.ms\" = 6000",
            "\"zookeeper.session.timeout.ms\" = 6000\n\"log.segment.bytes\" = 13",
        )),
        expect: &[
            "{file}:",
            "log.segment.bytes",
            "Invalid value 13 for configuration log.segment.bytes: Value must be at least 14",
        ],
        kind: ScenarioErrorKind::Invalid,
    },
    Case {
        name: "unknown-cleanup-policy",
        edit: Some((
            "replication_factor = 3",
            "replication_factor = 3\nconfig = { \"cleanup.policy\" = \"compress\" }",
        )),
        expect: &[
            "{file}:",
            "cleanup.policy",
            "Invalid value compress for configuration cleanup.policy: String must be one of: compact, delete",
        ],
        kind: ScenarioErrorKind::Invalid,
    },
    Case {
        name: "compacted-topic-null-keys",
        edit: Some((
            "replication_factor = 3\n\n[[producers]]\ntopic = \"events\"\ncount = 2\nrate_per_sec = 100\nkeys = 16",
            "replication_factor = 3\nconfig = { \"cleanup.policy\" = \"compact\" }\n\n[[producers]]\ntopic = \"events\"\ncount = 2\nrate_per_sec = 100\nkeys = 0",
        )),
        expect: &[
            "{file}:",
            "producers[0].keys",
            "Compacted topic cannot accept message without key in topic partition events-0.",
        ],
        kind: ScenarioErrorKind::Invalid,
    },
    Case {
        name: "unknown-serializer-class",
        edit: Some((
            "acks = \"all\"",
            "acks = \"all\", \"value.serializer\" = \"com.example.AvroSerializer\"",
        )),
        expect: &[
            "{file}:{line}:",
            "producers[0].config.\"value.serializer\"",
            "Invalid value com.example.AvroSerializer for configuration value.serializer: Class \
             com.example.AvroSerializer could not be found. ksim provides: \
             org.apache.kafka.common.serialization.LongSerializer, \
             org.apache.kafka.common.serialization.StringSerializer",
        ],
        kind: ScenarioErrorKind::Invalid,
    },
    Case {
        name: "unknown-interceptor-class",
        edit: Some((
            "acks = \"all\"",
            "acks = \"all\", \"interceptor.classes\" = [\"ksim.interceptors.TracingHeader\", \"com.example.Audit\"]",
        )),
        expect: &[
            "{file}:{line}:",
            "interceptor.classes",
            "Class com.example.Audit could not be found. ksim provides: ksim.interceptors.TracingHeader",
        ],
        kind: ScenarioErrorKind::Invalid,
    },
    // madsim panicked ("IP conflict", exit 101) on a 256th node of one kind.
    Case {
        name: "brokers-300",
        edit: Some(("brokers = 3", "brokers = 300")),
        expect: &[
            "{file}:{line}:",
            "cluster.brokers",
            "brokers = 300 is more than ksim supports: at most 255 brokers",
        ],
        kind: ScenarioErrorKind::Invalid,
    },
    Case {
        name: "consumer-members-300",
        edit: Some(("members = 1", "members = 300")),
        expect: &[
            "{file}:{line}:",
            "consumers[0].members",
            "300 consumers in all is more than ksim supports: at most 255 consumer clients",
        ],
        kind: ScenarioErrorKind::Invalid,
    },
    Case {
        name: "producer-count-300",
        edit: Some(("count = 2", "count = 300")),
        expect: &[
            "{file}:{line}:",
            "producers[0].count",
            "300 producers in all is more than ksim supports: at most 255 producer clients",
        ],
        kind: ScenarioErrorKind::Invalid,
    },
    // Hung: the workload tried to offer 1e12 records per simulated second (7.8 GB and still
    // running after 120 s). The limit is what one Kafka producer can offer.
    Case {
        name: "rate-per-sec-1e12",
        edit: Some(("rate_per_sec = 100", "rate_per_sec = 1e12")),
        expect: &[
            "{file}:{line}:",
            "producers[0].rate_per_sec",
            "rate_per_sec = 1000000000000 is more than one producer can offer: at most 1000000 \
             records per simulated second per client",
        ],
        kind: ScenarioErrorKind::Invalid,
    },
    Case {
        name: "rate-per-sec-just-above-the-limit",
        edit: Some(("rate_per_sec = 100", "rate_per_sec = 1000000.5")),
        expect: &["{file}:{line}:", "producers[0].rate_per_sec", "at most 1000000"],
        kind: ScenarioErrorKind::Invalid,
    },
    Case {
        name: "missing-file",
        edit: None,
        expect: &["cannot read {file}"],
        kind: ScenarioErrorKind::Io,
    },
];

fn default_text() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/default.toml");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// `text` with the only occurrence of `from` replaced by `to`.
fn replace_once(text: &str, from: &str, to: &str) -> String {
    assert_eq!(
        text.matches(from).count(),
        1,
        "scenarios/default.toml must contain {from:?} exactly once for this test's edit"
    );
    text.replacen(from, to, 1)
}

/// The default scenario renamed to `name` (the loader requires name == file stem).
fn renamed_default(name: &str) -> String {
    replace_once(
        &default_text(),
        "name = \"default\"",
        &format!("name = \"{name}\""),
    )
}

/// A written case: its path and text (`None` for the missing file).
struct Written {
    path: PathBuf,
    text: Option<String>,
    /// 1-based line of the edit.
    line: usize,
}

fn write_case(dir: &Path, case: &Case) -> Written {
    let path = dir.join(format!("{}.toml", case.name));
    let Some((from, to)) = case.edit else {
        assert!(!path.exists());
        return Written {
            path,
            text: None,
            line: 0,
        };
    };
    let base = renamed_default(case.name);
    let text = replace_once(&base, from, to);
    let at = text.find(to).expect("the edit is in the text");
    let line = text[..at].matches('\n').count() + 1;
    std::fs::write(&path, &text).expect("write case");
    Written {
        path,
        text: Some(text),
        line,
    }
}

fn expected_substrings(case: &Case, w: &Written) -> Vec<String> {
    let file = w.path.display().to_string();
    case.expect
        .iter()
        .map(|e| {
            e.replace("{file}", &file)
                .replace("{line}", &w.line.to_string())
        })
        .collect()
}

/// The library's verdict on a case: `load` for a missing file, `parse` otherwise.
fn library_error(w: &Written) -> ScenarioError {
    let file = w.path.display().to_string();
    let result = match &w.text {
        Some(text) => parse(text, &file),
        None => load(&w.path),
    };
    match result {
        Ok(_) => panic!("{file}: the loader accepted bad input"),
        Err(e) => e,
    }
}

/// Runs the built `ksim` binary, killing it if it does not finish within a minute (bad input
/// must be refused before any simulation starts).
fn ksim(args: &[&str], cwd: &Path) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ksim"))
        .args(args)
        .current_dir(cwd)
        .env("RUST_BACKTRACE", "0")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn ksim");
    let started = Instant::now();
    while child.try_wait().expect("wait for ksim").is_none() {
        if started.elapsed() > Duration::from_secs(60) {
            child.kill().ok();
            panic!("ksim {args:?} did not finish within 60 s");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    child.wait_with_output().expect("ksim output")
}

#[test]
fn the_unedited_copy_loads() {
    let tmp = tempfile::tempdir().expect("tempdir");
    for case in CASES {
        let path = tmp.path().join(format!("{}.toml", case.name));
        let text = renamed_default(case.name);
        if let Err(e) = parse(&text, &path.display().to_string()) {
            panic!(
                "the copy of default.toml for case {} does not load: {e}",
                case.name
            );
        }
    }
}

#[test]
fn the_loader_returns_an_error_for_each_bad_input() {
    let tmp = tempfile::tempdir().expect("tempdir");
    for case in CASES {
        let w = write_case(tmp.path(), case);
        let e = library_error(&w);
        let shown = e.to_string();
        assert_eq!(e.kind, case.kind, "{}: {shown}", case.name);
        assert_eq!(e.file, w.path.display().to_string(), "{}", case.name);
        for want in expected_substrings(case, &w) {
            assert!(
                shown.contains(&want),
                "{}: the message does not contain {want:?}:\n{shown}",
                case.name
            );
        }
        // `load` on the written file says the same as `parse` on its text.
        assert_eq!(load(&w.path).unwrap_err(), e, "{}", case.name);
    }
}

#[test]
fn ksim_run_refuses_each_bad_input_with_exit_code_2() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let out_dir = tmp.path().join("out");
    let out = out_dir.display().to_string();
    let mut failures = Vec::new();
    for case in CASES {
        let w = write_case(tmp.path(), case);
        let path = w.path.display().to_string();
        let o = ksim(&["run", &path, "--seed", "1", "--out", &out], tmp.path());
        let stderr = String::from_utf8_lossy(&o.stderr);
        let stdout = String::from_utf8_lossy(&o.stdout);
        let mut problems = Vec::new();
        if o.status.code() != Some(2) {
            problems.push(format!("exit status {:?}, expected code 2", o.status));
        }
        if stderr.contains("panicked") || stdout.contains("panicked") {
            problems.push("it panicked".to_string());
        }
        // The message the library gives, in full, and the pieces this case is about.
        let mut wanted = expected_substrings(case, &w);
        wanted.push(library_error(&w).to_string());
        for want in wanted {
            if !stderr.contains(&want) {
                problems.push(format!("stderr does not contain {want:?}"));
            }
        }
        if !problems.is_empty() {
            failures.push(format!(
                "ksim run {path}:\n  {}\n  --- stderr ---\n{stderr}\n  --- stdout ---\n{stdout}",
                problems.join("\n  ")
            ));
        }
    }
    assert!(
        !out_dir.exists(),
        "a run was started and wrote {} despite bad input",
        out_dir.display()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn ksim_run_refuses_a_bad_seed_with_exit_code_2() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let scenario = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/default.toml");
    let scenario = scenario.display().to_string();
    let out = tmp.path().join("out").display().to_string();
    let o = ksim(
        &["run", &scenario, "--seed", "not-a-number", "--out", &out],
        tmp.path(),
    );
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{:?}\n{stderr}", o.status);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(stderr.contains("not-a-number"), "{stderr}");
}

/// The group coordinator's broker keys load under `[cluster.broker_config]` (Kafka's
/// defaults otherwise), and are validated like every key.
#[test]
fn the_loader_accepts_the_offsets_topic_keys() {
    let with = |extra: &str| {
        replace_once(
            &default_text(),
            "[cluster.broker_config]\n",
            &format!("[cluster.broker_config]\n{extra}\n"),
        )
    };
    let text =
        with("\"offsets.topic.num.partitions\" = 7\n\"offsets.topic.replication.factor\" = 2");
    let s = parse(&text, "default.toml").expect("loads");
    assert_eq!(s.cluster.broker_config.offsets_topic_num_partitions, 7);
    assert_eq!(s.cluster.broker_config.offsets_topic_replication_factor, 2);
    let s = parse(&default_text(), "default.toml").expect("loads");
    assert_eq!(s.cluster.broker_config.offsets_topic_num_partitions, 50);
    assert_eq!(s.cluster.broker_config.offsets_topic_replication_factor, 3);
    let bad = with("\"offsets.topic.replication.factor\" = 0");
    let e = parse(&bad, "default.toml").unwrap_err();
    assert!(
        e.to_string().contains("offsets.topic.replication.factor"),
        "{e}"
    );
}

/// The default scenario with `from` replaced by `to`, loaded.
fn edited_default(from: &str, to: &str) -> ksim::scenario::Scenario {
    let text = replace_once(&default_text(), from, to);
    parse(&text, "default.toml").unwrap_or_else(|e| panic!("{e}"))
}

/// The limit itself is accepted (refusing it is the loader's job only above it).
#[test]
fn the_loader_accepts_rate_per_sec_at_the_limit() {
    let s = edited_default("rate_per_sec = 100", "rate_per_sec = 1000000");
    assert_eq!(
        s.producers[0].rate_per_sec,
        ksim::scenario::RATE_PER_SEC_MAX
    );
}

/// Every shipped scenario is cheap enough to run and has consumers that keep up: no warning.
#[test]
fn the_shipped_scenarios_load_without_warnings() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("scenarios/")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    assert!(files.len() > 1, "{files:?}");
    for f in files {
        let s = load(&f).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(s.warnings(), Vec::<String>::new(), "{}", f.display());
    }
}

/// 10 000 records per second per producer: the records offered are named as the cost driver
/// with their number, and the consumer (10 000 records per second at most) as unable to keep
/// up with the 20 000 offered, with how far behind it will end.
#[test]
fn a_scenario_too_big_to_run_quickly_is_warned_about_naming_the_records() {
    let s = edited_default("rate_per_sec = 100", "rate_per_sec = 10000");
    let cost = s.cost();
    assert_eq!(cost.records_offered, 900_000);
    assert_eq!(cost.simulated_ms, 50_000);
    assert!(cost.wall_ms() > ksim::scenario::WARN_WALL_MS, "{cost:?}");
    let w = s.warnings();
    assert_eq!(w.len(), 2, "{w:#?}");
    for want in [
        "one run of this scenario is estimated to take 90.1 s of wall time and 3.1 GB of memory per seed",
        "the cost driver is the records offered, 900000 (producers[0]: 2 x 10000/s) over 45 s",
        "lower `rate_per_sec`, `count` or `duration_ms` + `heal_ms`",
    ] {
        assert!(w[0].contains(want), "{want:?} not in {}", w[0]);
    }
    assert!(!w[0].contains("partition replicas"), "{}", w[0]);
    for want in [
        "no consumer can keep up with topic `events` (20000/s offered to it)",
        "its poll loop returns at most 10000/s (`max.poll.records` = 500 per poll",
        "about 400000 records behind",
    ] {
        assert!(w[1].contains(want), "{want:?} not in {}", w[1]);
    }
    // A larger max.poll.records lets it keep up: only the cost warning is left.
    let mut faster = edited_default("rate_per_sec = 100", "rate_per_sec = 10000");
    faster.consumers[0].config.max_poll_records = 1000;
    assert_eq!(faster.warnings().len(), 1);
}

/// 3000 partitions of 3 replicas (measured: 86 s): the partition replicas are the cost driver.
#[test]
fn a_scenario_with_many_partitions_is_warned_about_naming_the_partition_replicas() {
    let s = edited_default("partitions = 3", "partitions = 3000");
    let cost = s.cost();
    assert_eq!(cost.partition_replicas, 9000);
    assert_eq!(cost.faults_expected, 11); // 10 drawn by the nemesis and the scripted crash
    let w = s.warnings();
    assert_eq!(w.len(), 1, "{w:#?}");
    assert!(
        w[0].contains(
            "the cost driver is the partition replicas, 9000 (events: 3000 partitions x 3 \
             replicas) over 50 s simulated with about 11 faults"
        ),
        "{}",
        w[0]
    );
    assert!(!w[0].contains("records offered"), "{}", w[0]);
    // 1000 partitions (measured: 31 s) are fine.
    assert!(edited_default("partitions = 3", "partitions = 1000")
        .warnings()
        .is_empty());
}

/// `ksim run` prints the warning on stderr before it starts the run (the test stops it there).
#[test]
fn ksim_run_warns_before_running() {
    use std::io::BufRead;
    let tmp = tempfile::tempdir().expect("tempdir");
    let path = tmp.path().join("slow.toml");
    let text = replace_once(
        &renamed_default("slow"),
        "rate_per_sec = 100",
        "rate_per_sec = 10000",
    );
    std::fs::write(&path, text).expect("write");
    let mut child = Command::new(env!("CARGO_BIN_EXE_ksim"))
        .args(["run", &path.display().to_string(), "--seed", "1"])
        .arg("--out")
        .arg(tmp.path().join("out"))
        .current_dir(tmp.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn ksim");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut first = String::new();
        let _ = std::io::BufReader::new(stderr).read_line(&mut first);
        let _ = tx.send(first);
    });
    let first = rx.recv_timeout(Duration::from_secs(60));
    child.kill().ok();
    child.wait().ok();
    let first = first.expect("ksim printed nothing on stderr within 60 s");
    assert!(
        first.starts_with(&format!(
            "warning: {}: one run of this scenario is estimated to take",
            path.display()
        )),
        "{first}"
    );
    assert!(first.contains("the records offered, 900000"), "{first}");
}
