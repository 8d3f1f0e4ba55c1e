//! `ksim assign` end to end: the built binary on cases ported from Kafka's `RangeAssignorTest`
//! and `RoundRobinAssignorTest` (apache/kafka, clients/src/test/java/org/apache/kafka/clients/
//! consumer/; the expected assignments are Kafka's, member for member), sticky and
//! cooperative-sticky cases checked for balance and stickiness with `--owned`, static members
//! ordered by `group.instance.id` with `--instance`, and bad input refused with exit status 2
//! and no panic.
//!
//! Kafka's two cases per assignor that subscribe a member to no topic or to a topic without
//! metadata (`testOneConsumerNoTopic`, `testOneConsumerNonexistentTopic`) are bad input for
//! `ksim assign` by design (a subscription must name a `--topic`): see
//! `a_member_subscribing_to_an_unknown_topic_is_refused`.

use std::collections::{BTreeMap, BTreeSet};
use std::process::{Command, Output, Stdio};

/// Runs `ksim assign ARGS` (stdin null, so nothing can wait for input).
fn assign(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ksim"))
        .arg("assign")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .expect("run ksim")
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

/// Member → its partitions as `ksim assign` printed them, in printing order; also checks
/// that every line is `MEMBER<TAB>TOPIC-PARTITION` and returns the members in printing order.
fn parse_rows(stdout: &str) -> (Vec<String>, BTreeMap<String, Vec<String>>) {
    let mut order = Vec::new();
    let mut rows: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for line in stdout.lines() {
        let (member, tp) = line.split_once('\t').expect("MEMBER<TAB>TOPIC-PARTITION");
        assert!(!tp.contains('\t'), "line {line:?}");
        if order.last().map(String::as_str) != Some(member) {
            assert!(
                !order.iter().any(|m| m == member),
                "{member}'s lines are not together: {stdout}"
            );
            order.push(member.to_string());
        }
        rows.entry(member.to_string())
            .or_default()
            .push(tp.to_string());
    }
    (order, rows)
}

/// Runs the case and compares with Kafka's expectation: `expected[i]` is the i-th `--member`'s
/// assignment as Kafka's tests write it (`"t1-0, t1-1"`; `""` for none).
fn expect_exact(args: &[&str], expected: &[(&str, &str)]) {
    let out = assign(args);
    let stdout = stdout_ok(&out);
    let (order, rows) = parse_rows(&stdout);
    let want: BTreeMap<String, Vec<String>> = expected
        .iter()
        .filter(|(_, list)| !list.is_empty())
        .map(|(m, list)| {
            (
                m.to_string(),
                list.split(", ").map(str::to_string).collect(),
            )
        })
        .collect();
    assert_eq!(rows, want, "ksim assign {args:?}");
    // Printed in --member order.
    let want_order: Vec<String> = expected
        .iter()
        .filter(|(_, list)| !list.is_empty())
        .map(|(m, _)| m.to_string())
        .collect();
    assert_eq!(order, want_order, "ksim assign {args:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    for (m, list) in expected {
        if list.is_empty() {
            assert!(
                stderr.contains(&format!("note: {m} gets no partition")),
                "{stderr}"
            );
        }
    }
}

/// `--topic` and `--member` flags from short lists.
fn flags(topics: &[&str], members: &[(&str, &str)]) -> Vec<String> {
    let mut v = Vec::new();
    for t in topics {
        v.extend(["--topic".to_string(), t.to_string()]);
    }
    for (m, ts) in members {
        v.extend(["--member".to_string(), format!("{m}={ts}")]);
    }
    v
}

fn with(strategy: &str, rest: &[String], extra: &[&str]) -> Vec<String> {
    let mut v = vec!["--strategy".to_string(), strategy.to_string()];
    v.extend(rest.iter().cloned());
    v.extend(extra.iter().map(|s| s.to_string()));
    v
}

fn refs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

// ---- RangeAssignorTest (the rack-less path; rack cases use their "non rack-aware" lists) ----

#[test]
fn range_single_consumer_cases() {
    // testOneConsumerOneTopic
    expect_exact(
        &[
            "--strategy",
            "range",
            "--topic",
            "topic1:3",
            "--member",
            "consumer1=topic1",
        ],
        &[("consumer1", "topic1-0, topic1-1, topic1-2")],
    );
    // testOnlyAssignsPartitionsFromSubscribedTopics
    expect_exact(
        &[
            "--strategy",
            "range",
            "--topic",
            "topic1:3",
            "--topic",
            "other:3",
            "--member",
            "consumer1=topic1",
        ],
        &[("consumer1", "topic1-0, topic1-1, topic1-2")],
    );
    // testOneConsumerMultipleTopics
    expect_exact(
        &[
            "--strategy",
            "range",
            "--topic",
            "topic1:1",
            "--topic",
            "topic2:2",
            "--member",
            "consumer1=topic1,topic2",
        ],
        &[("consumer1", "topic1-0, topic2-0, topic2-1")],
    );
}

#[test]
fn range_two_and_three_consumer_cases() {
    // testTwoConsumersOneTopicOnePartition
    let f = flags(
        &["topic1:1"],
        &[("consumer1", "topic1"), ("consumer2", "topic1")],
    );
    expect_exact(
        &refs(&with("range", &f, &[])),
        &[("consumer1", "topic1-0"), ("consumer2", "")],
    );
    // testTwoConsumersOneTopicTwoPartitions
    let f = flags(
        &["topic1:2"],
        &[("consumer1", "topic1"), ("consumer2", "topic1")],
    );
    expect_exact(
        &refs(&with("range", &f, &[])),
        &[("consumer1", "topic1-0"), ("consumer2", "topic1-1")],
    );
    // testMultipleConsumersMixedTopics
    let f = flags(
        &["topic1:3", "topic2:2"],
        &[
            ("consumer1", "topic1"),
            ("consumer2", "topic1,topic2"),
            ("consumer3", "topic1"),
        ],
    );
    expect_exact(
        &refs(&with("range", &f, &[])),
        &[
            ("consumer1", "topic1-0"),
            ("consumer2", "topic1-1, topic2-0, topic2-1"),
            ("consumer3", "topic1-2"),
        ],
    );
    // testTwoConsumersTwoTopicsSixPartitions
    let f = flags(
        &["topic1:3", "topic2:3"],
        &[
            ("consumer1", "topic1,topic2"),
            ("consumer2", "topic1,topic2"),
        ],
    );
    expect_exact(
        &refs(&with("range", &f, &[])),
        &[
            ("consumer1", "topic1-0, topic1-1, topic2-0, topic2-1"),
            ("consumer2", "topic1-2, topic2-2"),
        ],
    );
}

#[test]
fn range_static_members_are_ordered_by_instance_id() {
    let f = flags(
        &["topic1:3", "topic2:3"],
        &[
            ("consumer-b", "topic1,topic2"),
            ("consumer-a", "topic1,topic2"),
        ],
    );
    // testTwoStaticConsumersTwoTopicsSixPartitions: consumer-a sorts first by member id, but
    // consumer-b's instance1 sorts before instance2.
    expect_exact(
        &refs(&with(
            "range",
            &f,
            &[
                "--instance",
                "consumer-b=instance1",
                "--instance",
                "consumer-a=instance2",
            ],
        )),
        &[
            ("consumer-b", "topic1-0, topic1-1, topic2-0, topic2-1"),
            ("consumer-a", "topic1-2, topic2-2"),
        ],
    );
    // testOneStaticConsumerAndOneDynamicConsumerTwoTopicsSixPartitions: static before dynamic.
    expect_exact(
        &refs(&with("range", &f, &["--instance", "consumer-b=instance1"])),
        &[
            ("consumer-b", "topic1-0, topic1-1, topic2-0, topic2-1"),
            ("consumer-a", "topic1-2, topic2-2"),
        ],
    );
    // Without instance ids the member ids decide: consumer-a first.
    expect_exact(
        &refs(&with("range", &f, &[])),
        &[
            ("consumer-b", "topic1-2, topic2-2"),
            ("consumer-a", "topic1-0, topic1-1, topic2-0, topic2-1"),
        ],
    );
}

#[test]
fn range_static_assignment_persists() {
    // testStaticMemberRangeAssignmentPersistent: three static members and dynamic consumer4,
    // then consumer4 replaced by dynamic consumer5.
    let statics = [
        "--instance",
        "consumer1=instance1",
        "--instance",
        "consumer2=instance2",
        "--instance",
        "consumer3=instance3",
    ];
    for dynamic in ["consumer4", "consumer5"] {
        let f = flags(
            &["topic1:5", "topic2:4"],
            &[
                ("consumer1", "topic1,topic2"),
                ("consumer2", "topic1,topic2"),
                ("consumer3", "topic1,topic2"),
                (dynamic, "topic1,topic2"),
            ],
        );
        expect_exact(
            &refs(&with("range", &f, &statics)),
            &[
                ("consumer1", "topic1-0, topic1-1, topic2-0"),
                ("consumer2", "topic1-2, topic2-1"),
                ("consumer3", "topic1-3, topic2-2"),
                (dynamic, "topic1-4, topic2-3"),
            ],
        );
    }
    // testStaticMemberRangeAssignmentPersistentAfterMemberIdChanges: by instance id, the same
    // before and after consumer3 becomes consumer4 and consumer2 becomes consumer5.
    for (m1, m2, m3) in [
        ("consumer1", "consumer2", "consumer3"),
        ("consumer1", "consumer5", "consumer4"),
    ] {
        let f = flags(
            &["topic1:5", "topic2:5"],
            &[
                (m1, "topic1,topic2"),
                (m2, "topic1,topic2"),
                (m3, "topic1,topic2"),
            ],
        );
        let i1 = format!("{m1}=instance1");
        let i2 = format!("{m2}=instance2");
        let i3 = format!("{m3}=instance3");
        expect_exact(
            &refs(&with(
                "range",
                &f,
                &["--instance", &i1, "--instance", &i2, "--instance", &i3],
            )),
            &[
                (m1, "topic1-0, topic1-1, topic2-0, topic2-1"),
                (m2, "topic1-2, topic1-3, topic2-2, topic2-3"),
                (m3, "topic1-4, topic2-4"),
            ],
        );
    }
}

#[test]
fn range_rack_tests_without_racks() {
    // The "non rack-aware" expectations of the rack tests (consumers consumer0..consumerN).
    let all = "t1,t2,t3";
    // testRackAwareAssignmentWithUniformSubscription
    let f = flags(
        &["t1:6", "t2:7", "t3:2"],
        &[("consumer0", all), ("consumer1", all), ("consumer2", all)],
    );
    expect_exact(
        &refs(&with("range", &f, &[])),
        &[
            ("consumer0", "t1-0, t1-1, t2-0, t2-1, t2-2, t3-0"),
            ("consumer1", "t1-2, t1-3, t2-3, t2-4, t3-1"),
            ("consumer2", "t1-4, t1-5, t2-5, t2-6"),
        ],
    );
    // testRackAwareAssignmentWithNonEqualSubscription
    let f = flags(
        &["t1:6", "t2:7", "t3:2"],
        &[
            ("consumer0", all),
            ("consumer1", all),
            ("consumer2", "t1,t3"),
        ],
    );
    expect_exact(
        &refs(&with("range", &f, &[])),
        &[
            ("consumer0", "t1-0, t1-1, t2-0, t2-1, t2-2, t2-3, t3-0"),
            ("consumer1", "t1-2, t1-3, t2-4, t2-5, t2-6, t3-1"),
            ("consumer2", "t1-4, t1-5"),
        ],
    );
    // testRackAwareAssignmentWithUniformPartitions
    let f = flags(
        &["t1:5", "t2:5", "t3:5"],
        &[("consumer0", all), ("consumer1", all), ("consumer2", all)],
    );
    expect_exact(
        &refs(&with("range", &f, &[])),
        &[
            ("consumer0", "t1-0, t1-1, t2-0, t2-1, t3-0, t3-1"),
            ("consumer1", "t1-2, t1-3, t2-2, t2-3, t3-2, t3-3"),
            ("consumer2", "t1-4, t2-4, t3-4"),
        ],
    );
    // testRackAwareAssignmentWithUniformPartitionsNonEqualSubscription
    let f = flags(
        &["t1:5", "t2:5", "t3:5"],
        &[
            ("consumer0", all),
            ("consumer1", all),
            ("consumer2", "t1,t3"),
        ],
    );
    expect_exact(
        &refs(&with("range", &f, &[])),
        &[
            ("consumer0", "t1-0, t1-1, t2-0, t2-1, t2-2, t3-0, t3-1"),
            ("consumer1", "t1-2, t1-3, t2-3, t2-4, t3-2, t3-3"),
            ("consumer2", "t1-4, t3-4"),
        ],
    );
    // testRackAwareAssignmentWithCoPartitioning, both subscriptions
    let topics = ["t1:6", "t2:6", "t3:2", "t4:2"];
    let f = flags(
        &topics,
        &[
            ("consumer0", "t1,t2"),
            ("consumer1", "t1,t2"),
            ("consumer2", "t3,t4"),
            ("consumer3", "t3,t4"),
        ],
    );
    expect_exact(
        &refs(&with("range", &f, &[])),
        &[
            ("consumer0", "t1-0, t1-1, t1-2, t2-0, t2-1, t2-2"),
            ("consumer1", "t1-3, t1-4, t1-5, t2-3, t2-4, t2-5"),
            ("consumer2", "t3-0, t4-0"),
            ("consumer3", "t3-1, t4-1"),
        ],
    );
    let all4 = "t1,t2,t3,t4";
    let f = flags(
        &topics,
        &[
            ("consumer0", all4),
            ("consumer1", all4),
            ("consumer2", all4),
            ("consumer3", all4),
        ],
    );
    expect_exact(
        &refs(&with("range", &f, &[])),
        &[
            ("consumer0", "t1-0, t1-1, t2-0, t2-1, t3-0, t4-0"),
            ("consumer1", "t1-2, t1-3, t2-2, t2-3, t3-1, t4-1"),
            ("consumer2", "t1-4, t2-4"),
            ("consumer3", "t1-5, t2-5"),
        ],
    );
}

// ---- RoundRobinAssignorTest ----

#[test]
fn round_robin_single_consumer_cases() {
    // testOneConsumerOneTopic
    expect_exact(
        &[
            "--strategy",
            "roundrobin",
            "--topic",
            "topic:3",
            "--member",
            "consumer=topic",
        ],
        &[("consumer", "topic-0, topic-1, topic-2")],
    );
    // testOnlyAssignsPartitionsFromSubscribedTopics
    expect_exact(
        &[
            "--strategy",
            "roundrobin",
            "--topic",
            "topic:3",
            "--topic",
            "other:3",
            "--member",
            "consumer=topic",
        ],
        &[("consumer", "topic-0, topic-1, topic-2")],
    );
    // testOneConsumerMultipleTopics
    expect_exact(
        &[
            "--strategy",
            "roundrobin",
            "--topic",
            "topic1:1",
            "--topic",
            "topic2:2",
            "--member",
            "consumer=topic1,topic2",
        ],
        &[("consumer", "topic1-0, topic2-0, topic2-1")],
    );
}

#[test]
fn round_robin_two_and_three_consumer_cases() {
    // testTwoConsumersOneTopicOnePartition
    let f = flags(
        &["topic:1"],
        &[("consumer1", "topic"), ("consumer2", "topic")],
    );
    expect_exact(
        &refs(&with("roundrobin", &f, &[])),
        &[("consumer1", "topic-0"), ("consumer2", "")],
    );
    // testTwoConsumersOneTopicTwoPartitions
    let f = flags(
        &["topic:2"],
        &[("consumer1", "topic"), ("consumer2", "topic")],
    );
    expect_exact(
        &refs(&with("roundrobin", &f, &[])),
        &[("consumer1", "topic-0"), ("consumer2", "topic-1")],
    );
    // testMultipleConsumersMixedTopics
    let f = flags(
        &["topic1:3", "topic2:2"],
        &[
            ("consumer1", "topic1"),
            ("consumer2", "topic1,topic2"),
            ("consumer3", "topic1"),
        ],
    );
    expect_exact(
        &refs(&with("roundrobin", &f, &[])),
        &[
            ("consumer1", "topic1-0"),
            ("consumer2", "topic1-1, topic2-0, topic2-1"),
            ("consumer3", "topic1-2"),
        ],
    );
    // testTwoDynamicConsumersTwoTopicsSixPartitions, by Kafka's class name
    let f = flags(
        &["topic1:3", "topic2:3"],
        &[
            ("consumer1", "topic1,topic2"),
            ("consumer2", "topic1,topic2"),
        ],
    );
    expect_exact(
        &refs(&with(
            "org.apache.kafka.clients.consumer.RoundRobinAssignor",
            &f,
            &[],
        )),
        &[
            ("consumer1", "topic1-0, topic1-2, topic2-1"),
            ("consumer2", "topic1-1, topic2-0, topic2-2"),
        ],
    );
}

#[test]
fn round_robin_static_members() {
    let f = flags(
        &["topic1:3", "topic2:3"],
        &[
            ("consumer-b", "topic1,topic2"),
            ("consumer-a", "topic1,topic2"),
        ],
    );
    // testTwoStaticConsumersTwoTopicsSixPartitions
    expect_exact(
        &refs(&with(
            "RoundRobinAssignor",
            &f,
            &[
                "--instance",
                "consumer-b=instance1",
                "--instance",
                "consumer-a=instance2",
            ],
        )),
        &[
            ("consumer-b", "topic1-0, topic1-2, topic2-1"),
            ("consumer-a", "topic1-1, topic2-0, topic2-2"),
        ],
    );
    // testOneStaticConsumerAndOneDynamicConsumerTwoTopicsSixPartitions
    expect_exact(
        &refs(&with(
            "roundrobin",
            &f,
            &["--instance", "consumer-b=instance1"],
        )),
        &[
            ("consumer-b", "topic1-0, topic1-2, topic2-1"),
            ("consumer-a", "topic1-1, topic2-0, topic2-2"),
        ],
    );
    // testStaticMemberAssignmentPersistent: three static members and dynamic consumer4, then
    // consumer4 replaced by consumer5.
    for dynamic in ["consumer4", "consumer5"] {
        let f = flags(
            &["topic1:3", "topic2:3"],
            &[
                ("consumer1", "topic1,topic2"),
                ("consumer2", "topic1,topic2"),
                ("consumer3", "topic1,topic2"),
                (dynamic, "topic1,topic2"),
            ],
        );
        expect_exact(
            &refs(&with(
                "roundrobin",
                &f,
                &[
                    "--instance",
                    "consumer1=instance1",
                    "--instance",
                    "consumer2=instance2",
                    "--instance",
                    "consumer3=instance3",
                ],
            )),
            &[
                ("consumer1", "topic1-0, topic2-1"),
                ("consumer2", "topic1-1, topic2-2"),
                ("consumer3", "topic1-2"),
                (dynamic, "topic2-0"),
            ],
        );
    }
    // testStaticMemberAssignmentPersistentAfterMemberIdChanges: instance i gets topic1-i and
    // topic2-i (0-based) whatever the member ids.
    for members in [
        ["consumer1", "consumer2", "consumer3"],
        ["consumer4", "consumer5", "consumer1"],
    ] {
        let f = flags(
            &["topic1:3", "topic2:3"],
            &[
                (members[0], "topic1,topic2"),
                (members[1], "topic1,topic2"),
                (members[2], "topic1,topic2"),
            ],
        );
        let inst: Vec<String> = (0..3)
            .map(|i| format!("{}=instance{}", members[i], i + 1))
            .collect();
        expect_exact(
            &refs(&with(
                "roundrobin",
                &f,
                &[
                    "--instance",
                    &inst[0],
                    "--instance",
                    &inst[1],
                    "--instance",
                    &inst[2],
                ],
            )),
            &[
                (members[0], "topic1-0, topic2-0"),
                (members[1], "topic1-1, topic2-1"),
                (members[2], "topic1-2, topic2-2"),
            ],
        );
    }
}

// ---- sticky and cooperative-sticky: balance and stickiness ----

/// Runs a sticky case where every member subscribes to every topic and returns the
/// assignment; panics unless it is balanced (counts differ by at most one), complete (every
/// partition once) and sticky (no member both gains a partition and loses one it owned, so
/// only the surplus of members above their share moves).
fn sticky_case(
    strategy: &str,
    topics: &[&str],
    members: &[&str],
    owned: &[(&str, &str)],
) -> BTreeMap<String, BTreeSet<String>> {
    let all: Vec<&str> = topics
        .iter()
        .map(|t| t.split(':').next().unwrap())
        .collect();
    let all = all.join(",");
    let member_topics: Vec<(&str, &str)> = members.iter().map(|m| (*m, all.as_str())).collect();
    let mut args = with(strategy, &flags(topics, &member_topics), &[]);
    for (m, list) in owned {
        args.extend(["--owned".to_string(), format!("{m}={list}")]);
    }
    let out = assign(&refs(&args));
    let (_, rows) = parse_rows(&stdout_ok(&out));
    let got: BTreeMap<String, BTreeSet<String>> = members
        .iter()
        .map(|m| {
            let set = rows
                .get(*m)
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .collect();
            (m.to_string(), set)
        })
        .collect();
    let total: usize = topics
        .iter()
        .map(|t| t.split(':').nth(1).unwrap().parse::<usize>().unwrap())
        .sum();
    let assigned: Vec<&String> = got.values().flatten().collect();
    let distinct: BTreeSet<&String> = assigned.iter().copied().collect();
    assert_eq!(assigned.len(), distinct.len(), "a partition twice: {got:?}");
    let owned_of: BTreeMap<&str, BTreeSet<String>> = owned
        .iter()
        .map(|(m, l)| (*m, l.split(',').map(str::to_string).collect()))
        .collect();
    if strategy == "sticky" {
        assert_eq!(assigned.len(), total, "incomplete: {got:?}");
        check_balanced(&got);
    }
    check_sticky(&owned_of, &got);
    got
}

/// Sticky: no member both gains a partition and loses one it owned (so only the surplus of
/// members above their share moves; a swap between two members is never needed).
fn check_sticky(
    owned: &BTreeMap<&str, BTreeSet<String>>,
    got: &BTreeMap<String, BTreeSet<String>>,
) {
    for (m, set) in got {
        let before = owned.get(m.as_str()).cloned().unwrap_or_default();
        let gained = set.difference(&before).count();
        let lost = before.difference(set).count();
        assert!(
            gained == 0 || lost == 0,
            "{m} both gained and lost partitions: owned {before:?}, got {set:?}"
        );
    }
}

#[test]
fn check_sticky_fails_on_a_needless_swap() {
    let set = |l: &[&str]| -> BTreeSet<String> { l.iter().map(|s| s.to_string()).collect() };
    let owned: BTreeMap<&str, BTreeSet<String>> =
        [("a", set(&["t-0"])), ("b", set(&["t-1"]))].into();
    let kept: BTreeMap<String, BTreeSet<String>> =
        [("a".into(), set(&["t-0"])), ("b".into(), set(&["t-1"]))].into();
    check_sticky(&owned, &kept);
    let swapped: BTreeMap<String, BTreeSet<String>> =
        [("a".into(), set(&["t-1"])), ("b".into(), set(&["t-0"]))].into();
    assert!(std::panic::catch_unwind(|| check_sticky(&owned, &swapped)).is_err());
}

/// Balanced when every member subscribes to the same topics: counts differ by at most one.
fn check_balanced(a: &BTreeMap<String, BTreeSet<String>>) {
    let counts: Vec<usize> = a.values().map(BTreeSet::len).collect();
    let (min, max) = (counts.iter().min().unwrap(), counts.iter().max().unwrap());
    assert!(max - min <= 1, "unbalanced: {a:?}");
}

#[test]
fn check_balanced_fails_on_an_unbalanced_assignment() {
    let a: BTreeMap<String, BTreeSet<String>> = [
        ("a".to_string(), ["t-0", "t-1"].map(String::from).into()),
        ("b".to_string(), BTreeSet::new()),
    ]
    .into();
    assert!(std::panic::catch_unwind(|| check_balanced(&a)).is_err());
}

#[test]
fn sticky_add_and_remove_a_consumer() {
    // AbstractStickyAssignorTest.testAddRemoveConsumerOneTopic: consumer1 alone gets all
    // three; consumer2 joins and takes one of them; consumer1 leaves and consumer2 keeps its
    // own and takes the rest.
    let a = sticky_case("sticky", &["topic:3"], &["consumer1"], &[]);
    assert_eq!(a["consumer1"].len(), 3);
    let a = sticky_case(
        "sticky",
        &["topic:3"],
        &["consumer1", "consumer2"],
        &[("consumer1", "topic-0,topic-1,topic-2")],
    );
    assert_eq!(a["consumer1"].len(), 2);
    assert_eq!(a["consumer2"].len(), 1);
    let kept = a["consumer2"].iter().next().unwrap().clone();
    let a = sticky_case(
        "sticky",
        &["topic:3"],
        &["consumer2"],
        &[("consumer2", kept.as_str())],
    );
    assert_eq!(a["consumer2"].len(), 3);
}

#[test]
fn sticky_moves_only_the_surplus_when_members_join_and_leave() {
    // Three members own 4/4/4 of two topics; a fourth joins: each gives up exactly one.
    let owned = [
        ("c1", "t1-0,t1-1,t2-0,t2-1"),
        ("c2", "t1-2,t1-3,t2-2,t2-3"),
        ("c3", "t1-4,t1-5,t2-4,t2-5"),
    ];
    let a = sticky_case(
        "StickyAssignor",
        &["t1:6", "t2:6"],
        &["c1", "c2", "c3", "c4"],
        &owned,
    );
    assert_eq!(a["c4"].len(), 3, "{a:?}");
    for (m, _) in owned {
        assert_eq!(a[m].len(), 3, "{a:?}");
    }
    // c2 leaves: its four go to c1 and c3 (two each), who keep all of theirs.
    let a = sticky_case(
        "sticky",
        &["t1:6", "t2:6"],
        &["c1", "c3"],
        &[owned[0], owned[2]],
    );
    assert_eq!(a["c1"].len(), 6);
    assert_eq!(a["c3"].len(), 6);
}

#[test]
fn cooperative_sticky_withholds_moving_partitions_for_one_rebalance() {
    // CooperativeStickyAssignorTest-style: c1 owns all six, c2 joins. This rebalance gives c2
    // nothing (c1 must revoke first, KIP-429) and c1 keeps its balanced share; the follow-up
    // (c1 owning its share) gives c2 the rest.
    let a = sticky_case(
        "cooperative-sticky",
        &["t:6"],
        &["c1", "c2"],
        &[("c1", "t-0,t-1,t-2,t-3,t-4,t-5")],
    );
    assert_eq!(a["c1"].len(), 3, "{a:?}");
    assert!(a["c2"].is_empty(), "{a:?}");
    let out = assign(&refs(&with(
        "org.apache.kafka.clients.consumer.CooperativeStickyAssignor",
        &flags(&["t:6"], &[("c1", "t"), ("c2", "t")]),
        &["--owned", "c1=t-0,t-1,t-2,t-3,t-4,t-5"],
    )));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let withheld = stderr
        .lines()
        .filter(|l| l.contains("is withheld from this rebalance: c1 must revoke it first (KIP-429); the follow-up rebalance gives it to c2"))
        .count();
    assert_eq!(withheld, 3, "{stderr}");
    // The follow-up rebalance: c1 owns what it kept; c2 gets the other three, c1 loses none.
    let kept: Vec<String> = a["c1"].iter().cloned().collect();
    let b = sticky_case(
        "cooperative-sticky",
        &["t:6"],
        &["c1", "c2"],
        &[("c1", &kept.join(","))],
    );
    assert_eq!(b["c1"], a["c1"]);
    assert_eq!(b["c2"].len(), 3);
    check_balanced(&b);
}

// ---- bad input: a message and exit status 2, never a panic ----

fn refused(args: &[&str], expect: &[&str]) {
    let out = assign(args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "ksim assign {args:?}: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(
        out.stdout.is_empty(),
        "ksim assign {args:?} printed on stdout"
    );
    for e in expect {
        assert!(
            stderr.contains(e),
            "ksim assign {args:?}: {stderr:?} lacks {e:?}"
        );
    }
}

#[test]
fn an_unknown_strategy_is_refused_with_kafkas_words() {
    refused(
        &[
            "--strategy",
            "com.example.Fancy",
            "--topic",
            "t:1",
            "--member",
            "c=t",
        ],
        &[
            "com.example.Fancy ClassNotFoundException exception occurred",
            "ksim has: range, roundrobin, sticky, cooperative-sticky",
        ],
    );
    refused(
        &["--strategy", "Range", "--topic", "t:1", "--member", "c=t"],
        &["Range ClassNotFoundException exception occurred"],
    );
}

#[test]
fn malformed_flags_are_refused() {
    let base = |topic: &str, member: &str| {
        vec![
            "--strategy".to_string(),
            "range".to_string(),
            "--topic".to_string(),
            topic.to_string(),
            "--member".to_string(),
            member.to_string(),
        ]
    };
    for (topic, expect) in [
        ("t", "expected TOPIC:PARTITIONS"),
        ("t:0", "at least one partition"),
        ("t:-1", "at least one partition"),
        ("t:six", "not a whole number"),
        ("t:99999999999", "a Java int"),
        ("bad/name:1", "is illegal"),
    ] {
        refused(&refs(&base(topic, "c=t")), &[expect]);
    }
    for (member, expect) in [
        ("c", "expected MEMBER=TOPIC"),
        ("=t", "member id before '=' is empty"),
        ("c=", "an empty topic name"),
        ("c=t,,t", "an empty topic name"),
    ] {
        refused(&refs(&base("t:2", member)), &[expect]);
    }
    let mut twice = base("t:2", "c=t");
    twice.extend(["--member".to_string(), "c=t".to_string()]);
    refused(&refs(&twice), &["member c is given twice"]);
    // Missing required flags: clap's usage error, also status 2.
    refused(&["--strategy", "range", "--topic", "t:1"], &["--member"]);
}

#[test]
fn a_member_subscribing_to_an_unknown_topic_is_refused() {
    refused(
        &["--strategy", "range", "--topic", "t:2", "--member", "c=t,u"],
        &["c subscribes to topic \"u\", which no --topic gives (topics: t:2)"],
    );
}

#[test]
fn owned_partitions_must_exist() {
    let run = |owned: &str| {
        vec![
            "--strategy",
            "sticky",
            "--topic",
            "t:2",
            "--member",
            "c=t",
            "--owned",
            owned,
        ]
        .into_iter()
        .map(str::to_string)
        .collect::<Vec<_>>()
    };
    refused(
        &refs(&run("c=t-2")),
        &["no partition t-2: topic t has 2 partitions (t-0 to t-1)"],
    );
    refused(&refs(&run("c=u-0")), &["no --topic gives topic \"u\""]);
    refused(&refs(&run("c=t-x")), &["not TOPIC-PARTITION"]);
    refused(&refs(&run("c=t")), &["not TOPIC-PARTITION"]);
    refused(&refs(&run("d=t-0")), &["no --member d"]);
    refused(&refs(&run("c=t-0,t-0")), &["lists t-0 twice"]);
}

#[test]
fn instance_ids_are_checked() {
    let run = |extra: &[&str]| {
        let mut v: Vec<String> = [
            "--strategy",
            "range",
            "--topic",
            "t:2",
            "--member",
            "a=t",
            "--member",
            "b=t",
        ]
        .into_iter()
        .map(str::to_string)
        .collect();
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    };
    refused(
        &refs(&run(&["--instance", "a=i", "--instance", "b=i"])),
        &["group.instance.id i is already a's", "FENCED_INSTANCE_ID"],
    );
    refused(&refs(&run(&["--instance", "x=i"])), &["no --member x"]);
    refused(
        &refs(&run(&["--instance", "a"])),
        &["expected MEMBER=INSTANCE_ID"],
    );
}
