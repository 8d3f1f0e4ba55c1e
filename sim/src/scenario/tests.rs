//! The loader's unit tests: a good file (the SCENARIOS.md example) and its edits, one per rule.

use super::*;

/// The SCENARIOS.md example, with the not-yet-supported parts (sim.replication.truncation =
/// high-watermark, consumer group, pause) replaced.
const GOOD: &str = r#"
[scenario]
name = "good"
title = "A title"
description = """
Why.
"""
references = ["KIP-101", "KAFKA-1211"]
duration_ms = 30000
heal_ms = 10000
seeds = [3, 17]
expect = "violation"
expect_violations = ["committed-record-lost"]

[cluster]
brokers = 3
controller = "zk"

[cluster.broker_config]
"min.insync.replicas" = 1
"unclean.leader.election.enable" = false
"replica.lag.time.max.ms" = 30000
"sim.replication.truncation" = "fenced"

[[topics]]
name = "events"
partitions = 1
replication_factor = 2
replica_assignment = [[0, 1]]
config = { "min.insync.replicas" = 1 }

[[producers]]
topic = "events"
count = 1
rate_per_sec = 200
keys = 8
config = { acks = "all", "enable.idempotence" = false, retries = 2147483647 }

[[consumers]]
members = 2
topics = ["events"]
config = { "enable.auto.commit" = false, "auto.offset.reset" = "earliest" }

[faults]
kinds = ["kill", "restart", "partition"]
interval_ms = [1000, 5000]
duration_ms = [500, 4000]
swarm = true
spare_last_replica = true

[[faults.schedule]]
at_ms = 5000
kill = "follower:events-0"
[[faults.schedule]]
at_ms = 6000
restart = "follower:events-0"
[[faults.schedule]]
at_ms = 9000
partition = [["leader:events-0"], ["rest"]]
[[faults.schedule]]
at_ms = 12000
heal = true
"#;

fn parse_good(edit: impl Fn(&str) -> String) -> Result<Scenario, ScenarioError> {
    parse(&edit(GOOD), "scenarios/good.toml")
}

fn err_with(from: &str, to: &str) -> String {
    assert!(GOOD.contains(from), "test edit: {from:?} not in GOOD");
    parse_good(|g| g.replacen(from, to, 1))
        .unwrap_err()
        .to_string()
}

#[test]
fn scenario_example_parses() {
    let s = parse_good(|g| g.to_string()).unwrap();
    assert_eq!(s.name, "good");
    assert_eq!(s.seeds, vec![3, 17]);
    assert_eq!(s.expect, Expect::Violation);
    assert_eq!(s.cluster.brokers, 3);
    assert_eq!(s.topics[0].partitions, 1);
    assert_eq!(s.topics[0].replication_factor, 2);
    assert_eq!(
        s.topics[0].replica_assignment,
        Some(vec![vec![BrokerId(0), BrokerId(1)]])
    );
    assert_eq!(s.topics[0].config.min_insync_replicas, Some(1));
    assert!(!s.producers[0].config.enable_idempotence);
    assert_eq!(s.producers[0].rate_per_sec, 200.0);
    assert_eq!(s.consumers[0].members, 2);
    assert_eq!(
        s.faults.kinds,
        vec![FaultKind::Kill, FaultKind::Restart, FaultKind::Partition]
    );
    assert!(s.faults.swarm);
    assert_eq!(s.faults.schedule.len(), 4);
    assert_eq!(
        s.faults.schedule[0].action,
        FaultAction::Kill(Selector::Follower(TopicPartition::new("events", 0)))
    );
    assert_eq!(
        s.faults.schedule[2].action,
        FaultAction::Partition(vec![
            vec![Selector::Leader(TopicPartition::new("events", 0))],
            vec![Selector::Rest]
        ])
    );
    assert_eq!(s.faults.schedule[3].action, FaultAction::Heal);
    let json = serde_json::to_value(&s.faults.schedule).unwrap();
    assert_eq!(json[0]["action"]["kill"], "follower:events-0");
    assert_eq!(json[3]["action"], "heal");
}

#[test]
fn scenario_defaults() {
    let text = r#"
[scenario]
name = "min"
duration_ms = 1000
seeds = [1]
[cluster]
brokers = 1
[[topics]]
name = "t"
"#;
    let s = parse(text, "min.toml").unwrap();
    assert_eq!(s.title, "min");
    assert_eq!(s.heal_ms, 10_000);
    assert_eq!(s.expect, Expect::Ok);
    assert_eq!(s.cluster.controller, ControllerMode::Zk);
    assert_eq!(s.topics[0].partitions, 1);
    assert_eq!(s.topics[0].replication_factor, 1);
    assert!(s.faults.kinds.is_empty());
    assert!(s.faults.spare_last_replica);
}

#[test]
fn scenario_missing_file() {
    let e = load(Path::new("scenarios/x.toml")).unwrap_err();
    assert_eq!(e.kind, ScenarioErrorKind::Io);
    assert_eq!(
        e.to_string(),
        "cannot read scenarios/x.toml: No such file or directory"
    );
}

#[test]
fn scenario_syntax_error() {
    let e = parse_good(|g| g.replacen("brokers = 3", "brokers = = 3", 1)).unwrap_err();
    assert_eq!(e.kind, ScenarioErrorKind::Syntax);
    assert!(e.to_string().starts_with("scenarios/good.toml:16:"), "{e}");
}

#[test]
fn scenario_unknown_keys() {
    assert_eq!(
        err_with("replication_factor = 2", "replication_facter = 2"),
        "scenarios/good.toml:28:1: topics[0].replication_facter: unknown key \"replication_facter\" in [[topics]]; \
         did you mean \"replication_factor\"?"
    );
    let e = err_with("heal_ms = 10000", "heal_msec = 10000");
    assert!(
        e.ends_with("unknown key \"heal_msec\" in [scenario]; did you mean \"heal_ms\"?"),
        "{e}"
    );
    let e = err_with("[[producers]]", "[[producer]]");
    assert!(
        e.contains("unknown key \"producer\" in the top level; did you mean \"producers\"?"),
        "{e}"
    );
    let e = err_with("heal = true", "heel = true");
    assert!(e.contains("faults.schedule[3].heel: unknown key \"heel\" in [[faults.schedule]]; did you mean \"heal\"?"), "{e}");
    let e = err_with(
        "\"enable.idempotence\" = false",
        "\"enable.idempotency\" = false",
    );
    assert!(
        e.ends_with(
            "producers[0].config.\"enable.idempotency\": unknown producer config \"enable.idempotency\"; \
             did you mean \"enable.idempotence\"?"
        ),
        "{e}"
    );
    let e = err_with(
        "\"min.insync.replicas\" = 1\n\"unclean",
        "\"min.insync.replica\" = 1\n\"unclean",
    );
    assert!(e.starts_with("scenarios/good.toml:20:1: cluster.broker_config.\"min.insync.replica\": unknown broker"), "{e}");
}

#[test]
fn scenario_kafka_config_errors() {
    let e = err_with("acks = \"all\"", "acks = 2");
    assert_eq!(
        e,
        "scenarios/good.toml:37:19: producers[0].config.acks: \
         Invalid value 2 for configuration acks: String must be one of: all, -1, 0, 1"
    );
    // Every historic mode is implemented; an unknown one lists them.
    let e = err_with(
        "\"sim.replication.truncation\" = \"fenced\"",
        "\"sim.replication.truncation\" = \"kip-102\"",
    );
    assert!(
        e.ends_with(
            "Invalid value kip-102 for configuration sim.replication.truncation: String must \
             be one of: high-watermark, kip-101, kip-279, kip-320-first-try, fenced"
        ),
        "{e}"
    );
    let e = err_with(
        "\"auto.offset.reset\" = \"earliest\"",
        "\"auto.offset.reset\" = \"first\"",
    );
    assert!(
        e.ends_with("String must be one of: latest, earliest, none"),
        "{e}"
    );
}

#[test]
fn scenario_replication_factor_above_brokers() {
    let e = parse_good(|g| {
        g.replacen(
            "replication_factor = 2\nreplica_assignment = [[0, 1]]\n",
            "replication_factor = 4\n",
            1,
        )
    })
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "scenarios/good.toml:28:22: topics[0].replication_factor: Replication factor: 4 larger than available brokers: 3."
    );
}

#[test]
fn scenario_replica_assignment_errors() {
    let e = err_with("[[0, 1]]", "[[0, 1], [1, 2]]");
    assert!(
        e.contains("replica_assignment lists 2 partition(s) but partitions = 1"),
        "{e}"
    );
    let e = err_with("[[0, 1]]", "[[0, 5]]");
    assert!(
        e.ends_with(
            "The manual partition assignment includes broker 5, but no such broker is registered."
        ),
        "{e}"
    );
    let e = err_with("[[0, 1]]", "[[1, 1]]");
    assert!(
        e.ends_with("The manual partition assignment includes the broker 1 more than once."),
        "{e}"
    );
    let e = err_with("[[0, 1]]", "[[0]]");
    assert!(e.contains("replication_factor = 2"), "{e}");
    let e = err_with(
        "partitions = 1\nreplication_factor = 2\n",
        "partitions = 2\n",
    );
    assert!(e.contains("lists 1 partition(s) but partitions = 2"), "{e}");
    let e = err_with(
        "partitions = 1\nreplication_factor = 2\nreplica_assignment = [[0, 1]]",
        "replica_assignment = [[0, 1], [2]]",
    );
    assert!(
        e.ends_with(
            "topics[0].replica_assignment: The manual partition assignment includes a partition with 1 \
             replica(s), but this is not consistent with previous partitions, which have 2 replica(s)."
        ),
        "{e}"
    );
    let s = parse_good(|g| {
        g.replacen(
            "partitions = 1\nreplication_factor = 2\nreplica_assignment = [[0, 1]]",
            "replica_assignment = [[0, 1], [1, 2]]",
            1,
        )
    })
    .unwrap();
    assert_eq!(
        (s.topics[0].partitions, s.topics[0].replication_factor),
        (2, 2)
    );
}

#[test]
fn scenario_missing_table() {
    let e = parse(
        "[scenario]\nname = \"m\"\nduration_ms = 1\nseeds = [1]\n",
        "m.toml",
    )
    .unwrap_err();
    assert!(e.to_string().contains("missing key \"cluster\""), "{e}");
}

#[test]
fn scenario_partitions_below_one() {
    let e = err_with("partitions = 1", "partitions = 0");
    assert!(
        e.ends_with("topics[0].partitions: Number of partitions must be larger than 0."),
        "{e}"
    );
}

#[test]
fn scenario_unknown_topic() {
    let e = err_with("topic = \"events\"", "topic = \"evnts\"");
    assert!(
        e.ends_with("producers[0].topic: unknown topic \"evnts\"; did you mean \"events\"?"),
        "{e}"
    );
    let e = err_with("topics = [\"events\"]", "topics = [\"other\"]");
    assert!(
        e.contains("consumers[0].topics: unknown topic \"other\""),
        "{e}"
    );
}

#[test]
fn scenario_expectations() {
    let e = err_with(
        "expect_violations = [\"committed-record-lost\"]",
        "expect_violations = []",
    );
    assert!(
        e.contains("expect = \"violation\" needs at least one check name"),
        "{e}"
    );
    let e = err_with("[\"committed-record-lost\"]", "[\"committed-record-lots\"]");
    assert!(
        e.ends_with(
            "unknown check \"committed-record-lots\"; did you mean \"committed-record-lost\"?"
        ),
        "{e}"
    );
    let e = err_with("expect = \"violation\"", "expect = \"maybe\"");
    assert!(e.contains("unknown variant"), "{e}");
}

#[test]
fn scenario_name_and_seeds() {
    let e = parse(GOOD, "scenarios/other.toml").unwrap_err().to_string();
    assert_eq!(
        e,
        "scenarios/other.toml:3:8: scenario.name: name \"good\" must equal the file name \"other\" (without .toml)"
    );
    let e = err_with("seeds = [3, 17]", "seeds = []");
    assert!(
        e.contains("scenario.seeds: seeds must list at least one seed"),
        "{e}"
    );
    let e = err_with("seeds = [3, 17]\n", "");
    assert!(e.contains("missing key \"seeds\" in [scenario]"), "{e}");
}

#[test]
fn scenario_at_ms_after_duration() {
    let e = err_with("at_ms = 12000", "at_ms = 40000");
    assert!(e.ends_with("faults.schedule[3].at_ms: at_ms 40000 is after the end of the fault phase (duration_ms = 30000)"), "{e}");
}

#[test]
fn scenario_not_supported_yet() {
    let e =
        parse_good(|g| g.replacen("controller = \"zk\"", "controller = \"kraft\"", 1)).unwrap_err();
    assert_eq!(e.kind, ScenarioErrorKind::NotSupportedYet);
    assert!(
        e.to_string()
            .ends_with("cluster.controller: not supported yet: cluster.controller = \"kraft\""),
        "{e}"
    );
    // Every fault kind and scheduled action is implemented now: they all load.
    for kind in FaultKind::ALL {
        let loaded = parse_good(|g| {
            let g = g.replacen(
                "kinds = [\"kill\", \"restart\", \"partition\"]",
                &format!("kinds = [\"{kind}\"]"),
                1,
            );
            // `client-leave` needs a group member.
            if *kind == FaultKind::ClientLeave {
                g.replacen(
                    "[[consumers]]\n",
                    "[[consumers]]\ngroup = \"g\"\ncommit = \"none\"\n",
                    1,
                )
            } else {
                g
            }
        });
        assert!(loaded.is_ok(), "{kind}: {:?}", loaded.err());
    }
    // Consumer groups load; their bad values are refused with the key.
    let e = err_with(
        "[[consumers]]\n",
        "[[consumers]]\ngroup = \"g1\"\nprocessing_ms = [50, 5]\n",
    );
    assert!(
        e.contains("consumers[0].processing_ms: processing_ms [50, 5] is reversed"),
        "{e}"
    );
    // A producer's `transaction` needs a transactional.id, and its values are checked.
    let e = err_with(
        "retries = 2147483647 }",
        "retries = 2147483647 }\ntransaction = { records = [1, 5] }",
    );
    assert!(
        e.contains("producers[0].transaction: transaction needs a \"transactional.id\""),
        "{e}"
    );
    let e = err_with(
        "\"enable.idempotence\" = false, retries = 2147483647 }",
        "\"transactional.id\" = \"tx\" }\ntransaction = { records = [5, 1] }",
    );
    assert!(
        e.contains("producers[0].transaction.records: records must be [min, max]"),
        "{e}"
    );
    let e = err_with(
        "\"enable.idempotence\" = false, retries = 2147483647 }",
        "\"transactional.id\" = \"tx\" }\ntransaction = { abort_percent = 101 }",
    );
    assert!(
        e.contains("abort_percent must be between 0 and 100, not 101"),
        "{e}"
    );
    // `id_per_start`: off unless asked; a boolean.
    let edit = |id_per_start: &'static str| {
        move |g: &str| {
            g.replacen(
                "\"enable.idempotence\" = false, retries = 2147483647 }",
                &format!(
                    "\"transactional.id\" = \"tx\" }}\ntransaction = {{ records = [1, 5]{id_per_start} }}"
                ),
                1,
            )
        }
    };
    let settings = |sc: Scenario| sc.producers[0].transaction.expect("transactional");
    assert!(!settings(parse_good(edit("")).expect("parses")).id_per_start);
    assert!(settings(parse_good(edit(", id_per_start = true")).expect("parses")).id_per_start);
    let e = parse_good(edit(", id_per_start = \"yes\""))
        .unwrap_err()
        .to_string();
    assert!(e.contains("id_per_start"), "{e}");
    // `[[processors]]` (consume-transform-produce): an unknown topic is refused, Kafka's
    // idempotence rule applies to the producer half, auto commit is refused.
    let e = err_with(
        "[[consumers]]\n",
        "[[processors]]\ngroup = \"etl\"\ninput = \"events\"\noutput = \"results\"\n\n[[consumers]]\n",
    );
    assert!(
        e.contains("processors[0].output: unknown topic \"results\""),
        "{e}"
    );
    let e = err_with(
        "[[consumers]]\n",
        "[[processors]]\ngroup = \"etl\"\ninput = \"events\"\noutput = \"events\"\nconfig = { \"transactional.id\" = \"etl\", \"enable.idempotence\" = false }\n\n[[consumers]]\n",
    );
    assert!(
        e.contains("Cannot set a transactional.id without also enabling idempotence."),
        "{e}"
    );
    let e = err_with(
        "[[consumers]]\n",
        "[[processors]]\ngroup = \"etl\"\ninput = \"events\"\noutput = \"events\"\nconfig = { \"enable.auto.commit\" = true }\n\n[[consumers]]\n",
    );
    assert!(e.contains("enable.auto.commit must be false"), "{e}");
}

/// `[[processors]]`: the config table splits between the consumer and the producer half,
/// with the processor's defaults (read_committed with a transactional.id, earliest, no auto
/// commit); members are `processor-N` clients that `client:` selectors name.
#[test]
fn processors_load_with_their_defaults() {
    let s = parse_good(|g| {
        g.replacen(
            "[[consumers]]\n",
            "[[processors]]\ngroup = \"etl\"\nmembers = 2\ninput = \"events\"\noutput = \"events\"\nprocessing_ms = [5, 50]\nconfig = { \"transactional.id\" = \"etl\", \"session.timeout.ms\" = 10000, acks = \"all\" }\n\n[[consumers]]\n",
            1,
        )
        .replacen("kill = \"follower:events-0\"", "kill = \"client:processor-1\"", 1)
    })
    .unwrap();
    assert_eq!(s.processor_clients(), 2);
    let p = &s.processors[0];
    assert!(p.exactly_once());
    assert_eq!(p.processing_ms, Some((5, 50)));
    assert_eq!(p.consumer_config.group_id.as_deref(), Some("etl"));
    assert_eq!(p.consumer_config.session_timeout_ms, 10_000);
    assert_eq!(
        p.consumer_config.isolation_level,
        ksim_model::protocol::IsolationLevel::ReadCommitted
    );
    assert!(!p.consumer_config.enable_auto_commit);
    assert_eq!(
        p.consumer_config.auto_offset_reset,
        ksim_model::config::AutoOffsetReset::Earliest
    );
    assert_eq!(p.producer_config.transactional_id.as_deref(), Some("etl"));
    assert_eq!(
        s.faults.schedule[0].action,
        FaultAction::Kill(Selector::Client("processor-1".into()))
    );
    let e = parse_good(|g| {
        g.replacen(
            "[[consumers]]\n",
            "[[processors]]\ngroup = \"etl\"\ninput = \"events\"\noutput = \"events\"\n\n[[consumers]]\n",
            1,
        )
        .replacen("kill = \"follower:events-0\"", "kill = \"client:processor-1\"", 1)
    })
    .unwrap_err()
    .to_string();
    assert!(e.contains("no client \"processor-1\""), "{e}");
}

/// `[[consumers]] commit` and a `group.id` in assign mode (SCENARIOS.md "Consumer groups"), and
/// selectors on the group's `__consumer_offsets` partition.
#[test]
fn scenario_consumer_commit_and_group_id() {
    let with = |config: &str, commit: Option<&str>| {
        let commit = commit.map_or(String::new(), |c| format!("commit = \"{c}\"\n"));
        parse_good(|g| {
            g.replacen(
                "config = { \"enable.auto.commit\" = false, \"auto.offset.reset\" = \"earliest\" }",
                &format!("{commit}config = {{ {config} }}"),
                1,
            )
        })
    };
    // Assign mode with a group id: Kafka's default commit is auto, every 5 s.
    let s = with("\"group.id\" = \"orders\"", None).unwrap();
    assert_eq!(s.consumers[0].config.group_id.as_deref(), Some("orders"));
    assert!(s.consumers[0].config.enable_auto_commit);
    assert_eq!(s.consumers[0].commit, CommitMode::Auto);
    let s = with(
        "\"group.id\" = \"orders\", \"enable.auto.commit\" = false",
        Some("sync"),
    )
    .unwrap();
    assert_eq!(s.consumers[0].commit, CommitMode::Sync);
    // `none` turns auto commit off.
    let s = with("\"group.id\" = \"orders\"", Some("none")).unwrap();
    assert!(!s.consumers[0].config.enable_auto_commit);
    let e = with("\"group.id\" = \"orders\"", Some("often"))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("consumers[0].commit: unknown commit \"often\": expected one of \"auto\", \"sync\", \"async\", \"before-processing\", \"none\""),
        "{e}"
    );
    let e = with("\"auto.offset.reset\" = \"earliest\"", Some("sync"))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("consumers[0].commit: commit needs a group"),
        "{e}"
    );
    let e = with(
        "\"group.id\" = \"orders\", \"enable.auto.commit\" = true",
        Some("none"),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("commit = \"none\" never commits"), "{e}");
    let e = with(
        "\"group.id\" = \"orders\", \"enable.auto.commit\" = false",
        Some("auto"),
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("commit = \"auto\" relies on enable.auto.commit"),
        "{e}"
    );
    // The group's coordinator partition can be named once a consumer has a group id:
    // abs("orders".hashCode()) % 50 = 31.
    let kill =
        |config: &str, sel: &str| {
            parse_good(|g| {
                g.replacen(
                "config = { \"enable.auto.commit\" = false, \"auto.offset.reset\" = \"earliest\" }",
                &format!("config = {{ {config} }}"),
                1,
            )
            .replacen("kill = \"follower:events-0\"", &format!("kill = \"{sel}\""), 1)
            })
        };
    let s = kill("\"group.id\" = \"orders\"", "leader:__consumer_offsets-31").unwrap();
    assert_eq!(
        s.faults.schedule[0].action,
        FaultAction::Kill(Selector::Leader(TopicPartition::new(
            "__consumer_offsets",
            31
        )))
    );
    let e = kill("\"group.id\" = \"orders\"", "leader:__consumer_offsets-50")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("no partition __consumer_offsets-50: offsets.topic.num.partitions is 50 (group \"orders\" is in __consumer_offsets-31)"),
        "{e}"
    );
    let e = kill(
        "\"enable.auto.commit\" = false",
        "leader:__consumer_offsets-31",
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("no consumer has a \"group.id\""), "{e}");
}

#[test]
fn scenario_schedule_shape() {
    let e = err_with("heal = true", "heal = true\nkill = \"broker-0\"");
    assert!(
        e.contains("one action per [[faults.schedule]] entry"),
        "{e}"
    );
    let e = err_with("at_ms = 12000\nheal = true", "at_ms = 12000");
    assert!(e.contains("needs one action"), "{e}");
    let e = err_with("heal = true", "heal = false");
    assert!(e.contains("heal takes only `true`"), "{e}");
}

#[test]
fn scenario_selectors() {
    assert_eq!(Selector::parse("broker-2"), Ok(Selector::Broker(2)));
    assert_eq!(Selector::parse("zk"), Ok(Selector::Zk));
    assert_eq!(Selector::parse("controller"), Ok(Selector::Controller));
    assert_eq!(
        Selector::parse("leader:my-topic-3"),
        Ok(Selector::Leader(TopicPartition::new("my-topic", 3)))
    );
    assert_eq!(
        Selector::parse("follower:events-0"),
        Ok(Selector::Follower(TopicPartition::new("events", 0)))
    );
    assert_eq!(
        Selector::parse("isr:a.b-1"),
        Ok(Selector::Isr(TopicPartition::new("a.b", 1)))
    );
    assert_eq!(
        Selector::parse("client:producer-0"),
        Ok(Selector::Client("producer-0".into()))
    );
    assert_eq!(Selector::parse("rest"), Ok(Selector::Rest));
    assert_eq!(Selector::parse("random-broker"), Ok(Selector::RandomBroker));
    for bad in [
        "broker-x",
        "leader:events",
        "kafka-1",
        "leader:events-",
        "broker--1",
        "",
    ] {
        let e = Selector::parse(bad).unwrap_err();
        assert!(
            e.contains("expected one of: broker-N, zk, controller"),
            "{bad}: {e}"
        );
    }
    for s in [
        "broker-2",
        "leader:my-topic-3",
        "client:consumer-1",
        "random-broker",
    ] {
        assert_eq!(Selector::parse(s).unwrap().to_string(), s);
    }
    let e = err_with(
        "kill = \"follower:events-0\"",
        "kill = \"folower:events-0\"",
    );
    assert!(
        e.contains("unknown node selector \"folower:events-0\""),
        "{e}"
    );
    let e = err_with("kill = \"follower:events-0\"", "kill = \"broker-3\"");
    assert!(e.contains("no broker 3"), "{e}");
    let e = err_with("kill = \"follower:events-0\"", "kill = \"leader:events-1\"");
    assert!(e.contains("no partition events-1"), "{e}");
    let e = err_with("kill = \"follower:events-0\"", "kill = \"leader:evnts-0\"");
    assert!(e.contains("did you mean \"events\""), "{e}");
    let e = err_with("kill = \"follower:events-0\"", "kill = \"rest\"");
    assert!(e.contains("only meaningful inside `partition`"), "{e}");
    let e = err_with(
        "kill = \"follower:events-0\"",
        "kill = \"client:producer-1\"",
    );
    assert!(e.contains("no client \"producer-1\""), "{e}");
    let s = parse_good(|g| {
        g.replacen(
            "kill = \"follower:events-0\"",
            "kill = \"client:consumer-1\"",
            1,
        )
    })
    .unwrap();
    assert_eq!(
        s.faults.schedule[0].action,
        FaultAction::Kill(Selector::Client("consumer-1".into()))
    );
    let e = err_with(
        "[[\"leader:events-0\"], [\"rest\"]]",
        "[[\"rest\"], [\"rest\"]]",
    );
    assert!(e.contains("`rest` may appear only once"), "{e}");
}

#[test]
fn scenario_topic_rules() {
    let e = err_with("name = \"events\"", "name = \"ev ents\"");
    assert!(
        e.contains("contains a character other than ASCII alphanumerics"),
        "{e}"
    );
    let e = parse_good(|g| {
        g.replacen(
            "[[producers]]",
            "[[topics]]\nname = \"events\"\n\n[[producers]]",
            1,
        )
    })
    .unwrap_err();
    assert!(
        e.to_string()
            .ends_with("topics[1].name: Topic 'events' already exists."),
        "{e}"
    );
}

#[test]
fn scenario_fault_ranges() {
    let e = err_with("interval_ms = [1000, 5000]", "interval_ms = [5000, 1000]");
    assert!(e.contains("the minimum is above the maximum"), "{e}");
    let e = err_with(
        "kinds = [\"kill\", \"restart\", \"partition\"]",
        "kinds = [\"kil\"]",
    );
    assert!(e.contains("unknown variant `kil`"), "{e}");
}

#[test]
fn check_names_match_the_contract() {
    assert_eq!(CHECK_NAMES.len(), 33);
    let unique: BTreeSet<_> = CHECK_NAMES.iter().collect();
    assert_eq!(unique.len(), CHECK_NAMES.len());
}

/// The client faults (SCENARIOS.md "Client faults (schema v1.1)"): `pause`, `resume`,
/// `isolate` and `partition` take `client:NAME`, `close` takes only a client, and the random
/// client kinds load.
#[test]
fn scenario_client_faults() {
    let with = |to: &str| parse_good(|g| g.replacen("kill = \"follower:events-0\"", to, 1));
    for (entry, action) in [
        (
            "pause = \"client:consumer-1\"",
            FaultAction::Pause(Selector::Client("consumer-1".into())),
        ),
        (
            "resume = \"client:producer-0\"",
            FaultAction::Resume(Selector::Client("producer-0".into())),
        ),
        (
            "isolate = \"client:consumer-0\"",
            FaultAction::Isolate(Selector::Client("consumer-0".into())),
        ),
        (
            "close = \"client:consumer-1\"",
            FaultAction::Close(Selector::Client("consumer-1".into())),
        ),
        (
            "partition = [[\"client:consumer-0\", \"leader:events-0\"], [\"rest\"]]",
            FaultAction::Partition(vec![
                vec![
                    Selector::Client("consumer-0".into()),
                    Selector::Leader(TopicPartition::new("events", 0)),
                ],
                vec![Selector::Rest],
            ]),
        ),
    ] {
        let s = with(entry).unwrap_or_else(|e| panic!("{entry}: {e}"));
        assert_eq!(s.faults.schedule[0].action, action, "{entry}");
    }
    // `close` on a broker or an unknown client: exit 2 with file:line:col.
    let e = err_with("kill = \"follower:events-0\"", "close = \"broker-1\"");
    assert!(
        e.starts_with("scenarios/good.toml:53:")
            && e.contains("faults.schedule[0].close")
            && e.contains("close takes a client (client:NAME)"),
        "{e}"
    );
    let e = err_with(
        "kill = \"follower:events-0\"",
        "close = \"leader:events-0\"",
    );
    assert!(e.contains("is not one"), "{e}");
    let e = err_with(
        "kill = \"follower:events-0\"",
        "close = \"client:consumer-7\"",
    );
    assert!(
        e.starts_with("scenarios/good.toml:53:") && e.contains("no client \"consumer-7\""),
        "{e}"
    );
    let e = err_with(
        "kill = \"follower:events-0\"",
        "pause = \"client:consumer-2\"",
    );
    assert!(e.contains("no client \"consumer-2\""), "{e}");
    let e = err_with(
        "[[\"leader:events-0\"], [\"rest\"]]",
        "[[\"client:producer-3\"], [\"rest\"]]",
    );
    assert!(e.contains("no client \"producer-3\""), "{e}");

    // The random client kinds.
    let kinds = "kinds = [\"kill\", \"restart\", \"partition\"]";
    let s = parse_good(|g| {
        g.replacen(
            kinds,
            "kinds = [\"client-kill\", \"client-pause\", \"kill\"]",
            1,
        )
    })
    .unwrap();
    assert_eq!(
        s.faults.kinds,
        vec![
            FaultKind::ClientKill,
            FaultKind::ClientPause,
            FaultKind::Kill
        ]
    );
    assert_eq!(
        s.faults.clients,
        vec!["producer-0", "consumer-0", "consumer-1"]
    );
    assert!(s.faults.members.is_empty());
    // `client-leave` needs a group member: GOOD's consumers run in assign mode.
    let e = err_with(kinds, "kinds = [\"client-leave\"]");
    assert!(
        e.starts_with("scenarios/good.toml:") && e.contains("client-leave\" needs a group member"),
        "{e}"
    );
    let e = err_with(kinds, "kinds = [\"client-kil\"]");
    assert!(e.contains("unknown variant `client-kil`"), "{e}");
}

/// `replace = "client:producer-N"` (a replacement producer with the replaced one's
/// `transactional.id`, numbered after the scenario's producers) and selectors on a
/// transactional id's `__transaction_state` partition.
#[test]
fn scenario_replace_and_transaction_state_selectors() {
    let txn = |g: &str| {
        g.replacen(
            "config = { acks = \"all\", \"enable.idempotence\" = false, retries = 2147483647 }",
            "config = { \"transactional.id\" = \"tx\" }",
            1,
        )
    };
    let with = |to: &str| parse_good(|g| txn(g).replacen("kill = \"follower:events-0\"", to, 1));
    // The first replacement of a one-producer scenario is producer-1; later entries may name it.
    let s = parse_good(|g| {
        txn(g)
            .replacen(
                "kill = \"follower:events-0\"",
                "replace = \"client:producer-0\"",
                1,
            )
            .replacen(
                "restart = \"follower:events-0\"",
                "pause = \"client:producer-1\"",
                1,
            )
    })
    .unwrap();
    assert_eq!(
        s.faults.schedule[0].action,
        FaultAction::Replace {
            client: Selector::Client("producer-0".into()),
            replacement: Selector::Client("producer-1".into()),
        }
    );
    assert_eq!(
        s.faults.replacements,
        vec![Replacement {
            node: 1,
            replaces: 0
        }]
    );
    // Random client faults never draw a replacement.
    assert_eq!(
        s.faults.clients,
        vec!["producer-0", "consumer-0", "consumer-1"]
    );
    // Without a replace entry there is no producer-1.
    let e = with("pause = \"client:producer-1\"")
        .unwrap_err()
        .to_string();
    assert!(e.contains("no client \"producer-1\""), "{e}");
    // Only producers are replaced, and only the scenario's own.
    let e = with("replace = \"client:consumer-0\"")
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("scenarios/good.toml:53:")
            && e.contains("faults.schedule[0].replace: replace takes a producer (client:producer-N): \"client:consumer-0\" is not one"),
        "{e}"
    );
    let e = parse_good(|g| {
        txn(g)
            .replacen(
                "kill = \"follower:events-0\"",
                "replace = \"client:producer-0\"",
                1,
            )
            .replacen(
                "restart = \"follower:events-0\"",
                "replace = \"client:producer-1\"",
                1,
            )
    })
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("\"client:producer-1\" is itself a replacement"),
        "{e}"
    );

    // abs("tx-0".hashCode()) % 50 = 19.
    let s = with("kill = \"leader:__transaction_state-19\"").unwrap();
    assert_eq!(
        s.faults.schedule[0].action,
        FaultAction::Kill(Selector::Leader(TopicPartition::new(
            "__transaction_state",
            19
        )))
    );
    let e = with("kill = \"leader:__transaction_state-50\"")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("no partition __transaction_state-50: transaction.state.log.num.partitions is 50 (transactional.id \"tx-0\" is in __transaction_state-19)"),
        "{e}"
    );
    let e = err_with(
        "kill = \"follower:events-0\"",
        "kill = \"leader:__transaction_state-19\"",
    );
    assert!(
        e.contains("no producer or processor has a \"transactional.id\""),
        "{e}"
    );
}

/// GOOD with a second topic, `audit`, and its producer line `topic = "events"` replaced by
/// `producer_topic_line`.
fn with_two_topics(producer_topic_line: &str) -> Result<Scenario, ScenarioError> {
    parse_good(|g| {
        g.replacen(
            "[[producers]]\ntopic = \"events\"\n",
            &format!("[[topics]]\nname = \"audit\"\npartitions = 2\nreplication_factor = 2\n\n[[producers]]\n{producer_topic_line}"),
            1,
        )
    })
}

#[test]
fn producer_topics_writes_every_listed_topic() {
    let s = with_two_topics("topics = [\"events\", \"audit\"]\n").unwrap();
    assert_eq!(s.producers[0].topics, ["events", "audit"]);
    assert!(s.producers[0].writes("audit"));
    assert_eq!(s.producers[0].rate_per_topic(), 100.0);
    let s = with_two_topics("topic = \"audit\"\n").unwrap();
    assert_eq!(s.producers[0].topics, ["audit"]);
    assert_eq!(s.producers[0].rate_per_topic(), 200.0);
}

#[test]
fn producer_topics_bad_input() {
    let e = |line: &str| with_two_topics(line).unwrap_err().to_string();
    // Both keys: the error points at `topics`, the line after `topic`.
    let both = e("topic = \"events\"\ntopics = [\"audit\"]\n");
    assert!(
        both.starts_with(
            "scenarios/good.toml:39:10: producers[0].topics: give either topic or topics, not both"
        ),
        "{both}"
    );
    let neither = e("");
    assert!(
        neither.contains(
            "producers[0]: names no topic: give topic = \"NAME\" or topics = [\"A\", \"B\"]"
        ),
        "{neither}"
    );
    let unknown = e("topics = [\"events\", \"audt\"]\n");
    assert!(
        unknown.contains("producers[0].topics: unknown topic \"audt\"; did you mean \"audit\"?"),
        "{unknown}"
    );
    let twice = e("topics = [\"events\", \"events\"]\n");
    assert!(
        twice.contains("producers[0].topics: topic \"events\" is listed twice"),
        "{twice}"
    );
    let empty = e("topics = []\n");
    assert!(
        empty.contains("producers[0].topics: topics must name at least one topic"),
        "{empty}"
    );
    for msg in [both, neither, unknown, twice, empty] {
        assert!(msg.starts_with("scenarios/good.toml:"), "{msg}");
    }
}

/// `commit.interval.ms` in a processor's config (Kafka Streams' `StreamsConfig` key): 0 by
/// default, a non-negative integer of ms otherwise, located at its value when refused.
#[test]
fn a_processors_commit_interval_ms_defaults_to_zero_and_must_be_a_non_negative_integer() {
    let with = |config: &str| {
        parse_good(|g| {
            g.replacen(
                "[[consumers]]\n",
                &format!(
                    "[[processors]]\ngroup = \"etl\"\ninput = \"events\"\noutput = \"events\"\nconfig = {config}\n\n[[consumers]]\n"
                ),
                1,
            )
        })
    };
    let s = with("{ \"transactional.id\" = \"etl\" }").unwrap();
    assert_eq!(s.processors[0].commit_interval_ms, 0);
    for written in ["1000", "\"1000\""] {
        let s = with(&format!(
            "{{ \"transactional.id\" = \"etl\", \"commit.interval.ms\" = {written} }}"
        ))
        .unwrap();
        assert_eq!(s.processors[0].commit_interval_ms, 1000, "{written}");
    }
    let e = with("{ \"commit.interval.ms\" = -1 }")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains(
            "processors[0].config.\"commit.interval.ms\": Invalid value -1 for configuration \
             commit.interval.ms: Value must be at least 0"
        ),
        "{e}"
    );
    assert!(
        e.starts_with("scenarios/good.toml:"),
        "located in the file: {e}"
    );
    let e = with("{ \"commit.interval.ms\" = \"often\" }")
        .unwrap_err()
        .to_string();
    assert!(e.contains("Not a number of type LONG"), "{e}");
}
