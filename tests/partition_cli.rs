//! `ksim partition` end to end: the built binary, its hash column against Kafka's
//! `UtilsTest.testMurmur2` vectors, the standard-input mode against the argument mode, and a
//! partition count below 1 refused with exit status 2 and no panic.

use std::io::Write;
use std::process::{Command, Output, Stdio};

/// Kafka's `UtilsTest.testMurmur2` vectors (apache/kafka,
/// clients/src/test/java/org/apache/kafka/common/utils/UtilsTest.java), as in
/// `model/src/producer/partitioner.rs`.
const KAFKA_MURMUR2: [(&str, i32); 6] = [
    ("21", -973_932_308),
    ("foobar", -790_332_482),
    ("a-little-bit-long-string", -985_981_536),
    ("a-little-bit-longer-string", -1_486_304_829),
    (
        "lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8",
        -58_897_971,
    ),
    ("abc", 479_470_107),
];

/// Runs `ksim ARGS`, feeding `stdin` (or none: stdin is then null, so a missing-keys bug
/// cannot hang the test).
fn ksim(args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ksim"))
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn ksim");
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().unwrap();
        pipe.write_all(input).expect("write stdin");
        // Dropping the pipe closes it: end of input.
    }
    child.wait_with_output().expect("wait for ksim")
}

fn stdout_ok(out: &Output) -> String {
    assert_eq!(
        out.status.code(),
        Some(0),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).expect("utf-8 output")
}

/// `(key, partition, murmur2)` of each line.
fn rows(stdout: &str) -> Vec<(String, i32, i32)> {
    stdout
        .lines()
        .map(|line| {
            let cols: Vec<&str> = line.split('\t').collect();
            assert_eq!(cols.len(), 3, "line {line:?}");
            (
                cols[0].to_string(),
                cols[1].parse().unwrap(),
                cols[2].parse().unwrap(),
            )
        })
        .collect()
}

#[test]
fn hash_column_is_kafkas_murmur2() {
    for partitions in [1, 3, 12, i32::MAX] {
        let n = partitions.to_string();
        let mut args = vec!["partition", "--partitions", &n, "--murmur2"];
        args.extend(KAFKA_MURMUR2.iter().map(|(key, _)| *key));
        let got = rows(&stdout_ok(&ksim(&args, None)));
        let want: Vec<(String, i32, i32)> = KAFKA_MURMUR2
            .iter()
            .map(|&(key, hash)| (key.to_string(), (hash & 0x7fff_ffff) % partitions, hash))
            .collect();
        assert_eq!(got, want, "--partitions {partitions}");
    }
}

#[test]
fn without_murmur2_there_are_two_columns() {
    let out = stdout_ok(&ksim(&["partition", "--partitions", "1", "foobar"], None));
    assert_eq!(out, "foobar\t0\n");
}

#[test]
fn stdin_mode_matches_argument_mode() {
    // The empty key is a key like any other; it sits in the middle so both modes must keep it.
    let mut keys: Vec<&str> = KAFKA_MURMUR2.iter().map(|(key, _)| *key).collect();
    keys.insert(3, "");
    keys.push("key with spaces");
    for flags in [
        &["--partitions", "7"][..],
        &["--partitions", "7", "--murmur2"],
    ] {
        let mut args = vec!["partition"];
        args.extend_from_slice(flags);
        let from_stdin = stdout_ok(&ksim(
            &args,
            Some(format!("{}\n", keys.join("\n")).as_bytes()),
        ));
        args.push("--");
        args.extend_from_slice(&keys);
        let from_args = stdout_ok(&ksim(&args, None));
        assert_eq!(from_stdin, from_args, "{flags:?}");
        assert_eq!(from_args.lines().count(), keys.len());
    }
    // A last line without a newline is still a key.
    let unterminated = stdout_ok(&ksim(
        &["partition", "--partitions", "7", "--murmur2"],
        Some(b"21\nfoobar"),
    ));
    assert_eq!(
        rows(&unterminated)
            .into_iter()
            .map(|(_, _, hash)| hash)
            .collect::<Vec<_>>(),
        [-973_932_308, -790_332_482]
    );
    // No input, no keys, no output.
    assert_eq!(
        stdout_ok(&ksim(&["partition", "--partitions", "7"], Some(b""))),
        ""
    );
}

#[test]
fn zero_partitions_is_bad_input() {
    for n in ["0", "-3"] {
        let out = ksim(&["partition", "--partitions", n, "foobar"], None);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "--partitions {n}: {stderr}");
        assert!(
            stderr.contains("at least one partition"),
            "--partitions {n}: {stderr}"
        );
        assert!(!stderr.contains("panicked"), "--partitions {n}: {stderr}");
        assert!(out.stdout.is_empty(), "--partitions {n}");
    }
}
