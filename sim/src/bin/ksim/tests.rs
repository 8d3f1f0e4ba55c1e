//! Tests of the `ksim` command line: argument parsing, bad input, verdict texts.

use super::*;
use clap::error::ErrorKind;

fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
    Cli::try_parse_from(std::iter::once("ksim").chain(args.iter().copied()))
}

fn default_run() -> RunArgs {
    RunArgs {
        scenario: PathBuf::from(DEFAULT_SCENARIO),
        seed: None,
        output: OutputArgs {
            out: None,
            force: false,
            no_counterfactual: false,
        },
        log: LogArgs::default(),
    }
}

#[test]
fn no_command_is_run_of_the_default_scenario() {
    let cli = parse(&[]).unwrap();
    assert!(cli.command.is_none());
    assert_eq!(cli.run, default_run());
}

#[test]
fn no_command_takes_run_arguments() {
    let cli = parse(&["--seed", "7", "scenarios/x.toml"]).unwrap();
    assert!(cli.command.is_none());
    assert_eq!(cli.run.seed, Some(7));
    assert_eq!(cli.run.scenario, PathBuf::from("scenarios/x.toml"));
}

#[test]
fn run_parses_every_option() {
    let cli = parse(&[
        "run", "s.toml", "--seed", "3", "--out", "o", "--force", "--log", "debug",
    ])
    .unwrap();
    let Some(Command::Run(args)) = cli.command else {
        panic!("not run: {:?}", cli.command)
    };
    assert_eq!(
        args,
        RunArgs {
            scenario: "s.toml".into(),
            seed: Some(3),
            output: OutputArgs {
                out: Some("o".into()),
                force: true,
                no_counterfactual: false,
            },
            log: LogArgs {
                log: Some("debug".into())
            },
        }
    );
    let Some(Command::Run(args)) = parse(&["run"]).unwrap().command else {
        panic!()
    };
    assert_eq!(args, default_run());
}

#[test]
fn replay_requires_scenario_and_seed() {
    let Some(Command::Replay(args)) = parse(&["replay", "s.toml", "--seed", "9"]).unwrap().command
    else {
        panic!()
    };
    assert_eq!((args.scenario, args.seed), (PathBuf::from("s.toml"), 9));
    assert_eq!(
        parse(&["replay", "s.toml"]).unwrap_err().kind(),
        ErrorKind::MissingRequiredArgument
    );
    assert_eq!(
        parse(&["replay", "--seed", "9"]).unwrap_err().kind(),
        ErrorKind::MissingRequiredArgument
    );
}

#[test]
fn explore_defaults_and_limits() {
    let Some(Command::Explore(args)) = parse(&["explore", "s.toml", "--seeds", "300"])
        .unwrap()
        .command
    else {
        panic!()
    };
    assert_eq!((args.seeds, args.start, args.jobs), (Some(300), 1, None));
    assert_eq!((args.shard, &args.json, args.force), (None, &None, false));
    let Some(Command::Explore(args)) = parse(&[
        "explore", "s.toml", "--seeds", "5", "--start", "0", "--jobs", "4",
    ])
    .unwrap()
    .command
    else {
        panic!()
    };
    assert_eq!((args.seeds, args.start, args.jobs), (Some(5), 0, Some(4)));
    for bad in [
        &["explore", "s.toml"][..],
        &["explore", "--seeds", "5"],
        &["explore", "s.toml", "--seeds", "0"],
        &["explore", "s.toml", "--seeds", "-1"],
        &["explore", "s.toml", "--seeds", "5", "--jobs", "0"],
        &["explore", "s.toml", "--seeds", "many"],
    ] {
        assert!(parse(bad).is_err(), "{bad:?} parsed");
    }
}

#[test]
fn explore_shard_json_and_merge_flags() {
    let Some(Command::Explore(args)) = parse(&[
        "explore", "s.toml", "--seeds", "8", "--shard", "2/3", "--json", "o.json", "--force",
    ])
    .unwrap()
    .command
    else {
        panic!()
    };
    assert_eq!(args.shard, Some(Shard { index: 2, count: 3 }));
    assert_eq!(args.json, Some(PathBuf::from("o.json")));
    assert!(args.force && args.merge.is_empty());
    let Some(Command::Explore(args)) = parse(&["explore", "--merge", "a.json", "b.json"])
        .unwrap()
        .command
    else {
        panic!()
    };
    assert_eq!(args.merge, vec![PathBuf::from("a.json"), "b.json".into()]);
    assert_eq!((&args.scenario, args.seeds), (&None, None));
    assert!(parse(&["explore", "--merge", "a.json", "--json", "all.json"]).is_ok());
    for (bad, why) in [
        (
            &["explore", "s.toml", "--seeds", "8", "--shard", "0/3"][..],
            "shards count from 1",
        ),
        (
            &["explore", "s.toml", "--seeds", "8", "--shard", "4/3"],
            "between 1 and 3",
        ),
        (
            &["explore", "s.toml", "--seeds", "8", "--shard", "1/0"],
            "at least 1 shard",
        ),
        (
            &["explore", "s.toml", "--seeds", "8", "--shard", "2"],
            "is not I/N",
        ),
        (
            &["explore", "s.toml", "--seeds", "8", "--shard", "a/3"],
            "not a whole number",
        ),
        (&["explore", "s.toml", "--seeds", "8", "--force"], "--json"),
        (
            &["explore", "s.toml", "--merge", "a.json"],
            "cannot be used with",
        ),
        (
            &["explore", "--merge", "a.json", "--seeds", "3"],
            "cannot be used with",
        ),
        (
            &["explore", "--merge", "a.json", "--shard", "1/2"],
            "cannot be used with",
        ),
        (&["explore", "--merge"], "--merge"),
        (&["explore"], "required"),
    ] {
        let err = parse(bad).unwrap_err();
        assert_eq!(err.exit_code(), 2, "{bad:?}: {err}");
        assert!(err.to_string().contains(why), "{bad:?}: {err}");
    }
}

#[test]
fn bench_defaults() {
    let Some(Command::Bench(args)) = parse(&["bench"]).unwrap().command else {
        panic!()
    };
    assert_eq!((args.seeds, args.messages), (20, 200_000));
    assert_eq!(
        (args.producer_ms, args.repeat, args.compression.as_str()),
        (6_000, 3, "lz4")
    );
    assert_eq!(args.scale_ms, 10_000);
    assert!(parse(&["bench", "--compression", "brotli"]).is_err());
    assert!(parse(&["bench", "--repeat", "0"]).is_err());
    assert!(parse(&["bench", "--messages", "0"]).is_err());
}

#[test]
fn partition_parses_keys_and_flags() {
    let Some(Command::Partition(args)) = parse(&["partition", "--partitions", "6", "a", "", "b"])
        .unwrap()
        .command
    else {
        panic!()
    };
    assert_eq!(
        args,
        PartitionArgs {
            partitions: 6,
            murmur2: false,
            key_serializer: KeySerializerArg::String,
            keys: vec!["a".into(), "".into(), "b".into()],
        }
    );
    // No key: read standard input. A key starting with `-` goes after `--`.
    let Some(Command::Partition(args)) = parse(&["partition", "--murmur2", "--partitions", "1"])
        .unwrap()
        .command
    else {
        panic!()
    };
    assert!(args.murmur2 && args.keys.is_empty() && args.partitions == 1);
    let Some(Command::Partition(args)) =
        parse(&["partition", "--partitions", "3", "--", "-k", "--murmur2"])
            .unwrap()
            .command
    else {
        panic!()
    };
    assert!(!args.murmur2);
    assert_eq!(args.keys, vec![OsString::from("-k"), "--murmur2".into()]);
    let Some(Command::Partition(args)) = parse(&["partition", "--partitions", "2147483647"])
        .unwrap()
        .command
    else {
        panic!()
    };
    assert_eq!(args.partitions, i32::MAX);
}

#[test]
fn partition_count_is_checked() {
    for (bad, why) in [
        (&["partition", "k"][..], "--partitions"),
        (
            &["partition", "--partitions", "0", "k"],
            "at least one partition",
        ),
        (
            &["partition", "--partitions", "-1", "k"],
            "at least one partition",
        ),
        (
            &["partition", "--partitions", "2147483648"],
            "at most 2147483647",
        ),
        (&["partition", "--partitions", "six"], "not a whole number"),
        (&["partition", "--partitions", "1.5"], "not a whole number"),
    ] {
        let err = parse(bad).unwrap_err();
        assert_eq!(err.exit_code(), 2, "{bad:?}: {err}");
        assert!(err.to_string().contains(why), "{bad:?}: {err}");
    }
}

#[test]
fn partition_lines() {
    // Kafka's UtilsTest.testMurmur2: murmur2("foobar") = -790332482.
    let want = format!(
        "foobar\t{}\t-790332482\n",
        (-790_332_482i32 & 0x7fff_ffff) % 7
    );
    assert_eq!(
        partition_line(b"foobar", b"foobar", 7, true),
        want.as_bytes()
    );
    assert_eq!(
        partition_line(b"foobar", b"foobar", 1, false),
        b"foobar\t0\n"
    );
    // IntegerSerializer's bytes for 258, not the text "258", decide the partition.
    let int = KeySerializerArg::Integer.serialize(b"258").unwrap();
    assert_eq!(int, [0, 0, 1, 2]);
    let want = format!("258\t{}\n", partition_for_key(&[0, 0, 1, 2], 6));
    assert_eq!(partition_line(b"258", &int, 6, false), want.as_bytes());
    assert_eq!(
        KeySerializerArg::Long.serialize(b"258").unwrap(),
        [0, 0, 0, 0, 0, 0, 1, 2]
    );
    assert!(KeySerializerArg::Integer
        .serialize(b"k1")
        .unwrap_err()
        .contains("not a 32-bit integer"));
    let mut keys = Vec::new();
    let input: &[u8] = b"a\n\nb\r\n\xff c";
    for_each_line(input, |k| {
        keys.push(k.to_vec());
        Ok(())
    })
    .unwrap();
    assert_eq!(keys, [&b"a"[..], b"", b"b\r", b"\xff c"]);
    keys.clear();
    for_each_line(&b"x\n"[..], |k| {
        keys.push(k.to_vec());
        Ok(())
    })
    .unwrap();
    assert_eq!(
        keys,
        [b"x"],
        "the final newline ends a line; it adds no empty key"
    );
}

#[test]
fn bad_flags_are_usage_errors() {
    for bad in [
        &["--seed", "x"][..],
        &["run", "--seed", "-3"],
        &["run", "--bogus"],
        &["frobnicate", "--seed", "1", "extra"],
        &["run", "a.toml", "b.toml"],
    ] {
        let err = parse(bad).unwrap_err();
        // Clap exits 2 for all of these (0 is reserved for --help / --version).
        assert_eq!(err.exit_code(), 2, "{bad:?}: {err}");
    }
    assert_eq!(parse(&["--help"]).unwrap_err().exit_code(), 0);
}

#[test]
fn log_levels_are_checked() {
    let log = |s: &str| LogArgs {
        log: Some(s.to_string()),
    };
    assert!(init_logging(&LogArgs::default()).is_ok());
    let err = init_logging(&log("verbose")).err().unwrap().0;
    assert!(err.contains("not a level"), "{err}");
    assert!(init_logging(&log("ksim=[")).is_err());
}

#[test]
fn clap_definition_is_consistent() {
    use clap::CommandFactory;
    Cli::command().debug_assert();
}
