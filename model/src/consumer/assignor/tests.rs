//! Tests of the assignors: examples from Kafka's `RangeAssignorTest`, `RoundRobinAssignorTest`,
//! `AbstractStickyAssignorTest` and `CooperativeStickyAssignorTest` (expected values
//! re-derived from the rules), and properties over random groups.

use super::*;

fn tp(topic: &str, p: i32) -> TopicPartition {
    TopicPartition::new(topic, p)
}

fn topics(list: &[(&str, i32)]) -> BTreeMap<String, i32> {
    list.iter().map(|(t, n)| (t.to_string(), *n)).collect()
}

fn static_member(member: &str, instance: &str, ts: &[&str]) -> Subscription {
    Subscription {
        group_instance_id: Some(instance.to_string()),
        ..Subscription::new(member, ts)
    }
}

fn owning(mut s: Subscription, owned: &[TopicPartition], generation: i32) -> Subscription {
    s.owned_partitions = owned.to_vec();
    s.generation = generation;
    s
}

fn parts(list: &[(&str, i32)]) -> Vec<TopicPartition> {
    list.iter().map(|(t, p)| tp(t, *p)).collect()
}

#[test]
fn names_and_strategy_lists() {
    for (name, short) in [
        ("range", "range"),
        ("RangeAssignor", "range"),
        ("org.apache.kafka.clients.consumer.RangeAssignor", "range"),
        ("roundrobin", "roundrobin"),
        ("RoundRobinAssignor", "roundrobin"),
        ("sticky", "sticky"),
        ("org.apache.kafka.clients.consumer.StickyAssignor", "sticky"),
        ("cooperative-sticky", "cooperative-sticky"),
        ("CooperativeStickyAssignor", "cooperative-sticky"),
    ] {
        assert_eq!(assignor_by_name(name).unwrap().name(), short, "{name}");
    }
    assert!(assignor_by_name("Range").is_none());
    assert!(assignor_by_name("org.apache.kafka.clients.consumer.range").is_some());

    let names = |v: &str| -> Vec<&'static str> {
        parse_strategy_list(v)
            .unwrap()
            .iter()
            .map(|a| a.name())
            .collect()
    };
    assert_eq!(names(DEFAULT_STRATEGY), ["range", "cooperative-sticky"]);
    assert_eq!(names("range"), ["range"]);
    assert_eq!(
        names("range,cooperative-sticky"),
        ["range", "cooperative-sticky"]
    );
    assert_eq!(names(" [ roundrobin ] "), ["roundrobin"]);
    let err = parse_strategy_list("[range, fancy]").err().unwrap();
    assert!(
        err.contains("\"fancy\"") && err.contains("cooperative-sticky"),
        "{err}"
    );
    assert!(parse_strategy_list("").is_err());
    assert!(parse_strategy_list("[]").is_err());
    assert!(parse_strategy_list("range,").is_err());
    assert!(parse_strategy_list("[range").is_err());
    assert!(parse_strategy_list("range, RangeAssignor").is_err());
}

#[test]
fn protocols() {
    use RebalanceProtocol::*;
    assert_eq!(RangeAssignor.supported_protocols(), [Eager]);
    assert_eq!(RoundRobinAssignor.supported_protocols(), [Eager]);
    assert_eq!(StickyAssignor.supported_protocols(), [Eager]);
    assert_eq!(
        CooperativeStickyAssignor.supported_protocols(),
        [Cooperative, Eager]
    );
}

// ---- range (RangeAssignorTest) ----

#[test]
fn range_one_consumer_no_topic_or_no_partitions() {
    let subs = [Subscription::new("c", &[])];
    let a = RangeAssignor.assign(&topics(&[]), &subs);
    assert_eq!(a["c"], []);
    // A subscribed topic without metadata is skipped.
    let subs = [Subscription::new("c", &["t"])];
    let a = RangeAssignor.assign(&topics(&[]), &subs);
    assert_eq!(a["c"], []);
}

#[test]
fn range_two_consumers_two_topics_three_partitions() {
    // The javadoc example: C0 [t0p0, t0p1, t1p0, t1p1], C1 [t0p2, t1p2].
    let subs = [
        Subscription::new("c0", &["t0", "t1"]),
        Subscription::new("c1", &["t0", "t1"]),
    ];
    let a = RangeAssignor.assign(&topics(&[("t0", 3), ("t1", 3)]), &subs);
    assert_eq!(
        a["c0"],
        parts(&[("t0", 0), ("t0", 1), ("t1", 0), ("t1", 1)])
    );
    assert_eq!(a["c1"], parts(&[("t0", 2), ("t1", 2)]));
}

#[test]
fn range_only_assigns_partitions_from_subscribed_topics() {
    let subs = [Subscription::new("c", &["t"])];
    let a = RangeAssignor.assign(&topics(&[("t", 3), ("other", 3)]), &subs);
    assert_eq!(a["c"], parts(&[("t", 0), ("t", 1), ("t", 2)]));
}

#[test]
fn range_two_consumers_one_topic_one_partition_and_more_consumers_than_partitions() {
    let subs = [
        Subscription::new("c1", &["t"]),
        Subscription::new("c2", &["t"]),
    ];
    let a = RangeAssignor.assign(&topics(&[("t", 1)]), &subs);
    assert_eq!(a["c1"], parts(&[("t", 0)]));
    assert_eq!(a["c2"], []);
}

#[test]
fn range_multiple_consumers_mixed_topics() {
    // RangeAssignorTest.testMultipleConsumersMixedTopics: t1 (3 partitions) subscribed by
    // c1 and c3, t2 (2 partitions) by c2 and c3... re-derived: per topic, ranges in order.
    let subs = [
        Subscription::new("c1", &["t1"]),
        Subscription::new("c2", &["t1", "t2"]),
        Subscription::new("c3", &["t1"]),
    ];
    let a = RangeAssignor.assign(&topics(&[("t1", 3), ("t2", 2)]), &subs);
    assert_eq!(a["c1"], parts(&[("t1", 0)]));
    assert_eq!(a["c2"], parts(&[("t1", 1), ("t2", 0), ("t2", 1)]));
    assert_eq!(a["c3"], parts(&[("t1", 2)]));
}

#[test]
fn range_static_members_ordered_by_instance_id_before_dynamic() {
    // Static members first by group.instance.id (whatever their member ids), then dynamic
    // members by member id (AbstractPartitionAssignor.MemberInfo.compareTo).
    let subs = [
        Subscription::new("a-dynamic", &["t"]),
        static_member("z-member", "instance-1", &["t"]),
        static_member("b-member", "instance-2", &["t"]),
    ];
    let a = RangeAssignor.assign(&topics(&[("t", 4)]), &subs);
    assert_eq!(a["z-member"], parts(&[("t", 0), ("t", 1)]));
    assert_eq!(a["b-member"], parts(&[("t", 2)]));
    assert_eq!(a["a-dynamic"], parts(&[("t", 3)]));
}

#[test]
fn range_static_member_assignment_survives_member_id_change() {
    // RangeAssignorTest.testStaticMemberRangeAssignmentPersistent: after a rolling bounce the
    // member ids change, the instance ids do not, so the assignment does not.
    let ts = topics(&[("t1", 5), ("t2", 4)]);
    let before = [
        static_member("m1", "i1", &["t1", "t2"]),
        static_member("m2", "i2", &["t1", "t2"]),
        Subscription::new("m3", &["t1", "t2"]),
    ];
    let after = [
        static_member("m9", "i1", &["t1", "t2"]),
        static_member("m0", "i2", &["t1", "t2"]),
        Subscription::new("m3", &["t1", "t2"]),
    ];
    let a = RangeAssignor.assign(&ts, &before);
    let b = RangeAssignor.assign(&ts, &after);
    assert_eq!(a["m1"], b["m9"]);
    assert_eq!(a["m2"], b["m0"]);
    assert_eq!(a["m3"], b["m3"]);
    assert_eq!(
        a["m1"],
        parts(&[("t1", 0), ("t1", 1), ("t2", 0), ("t2", 1)])
    );
}

// ---- round robin (RoundRobinAssignorTest) ----

#[test]
fn round_robin_two_consumers_two_topics() {
    // The javadoc example: C0 [t0p0, t0p2, t1p1], C1 [t0p1, t1p0, t1p2].
    let subs = [
        Subscription::new("c0", &["t0", "t1"]),
        Subscription::new("c1", &["t0", "t1"]),
    ];
    let a = RoundRobinAssignor.assign(&topics(&[("t0", 3), ("t1", 3)]), &subs);
    assert_eq!(a["c0"], parts(&[("t0", 0), ("t0", 2), ("t1", 1)]));
    assert_eq!(a["c1"], parts(&[("t0", 1), ("t1", 0), ("t1", 2)]));
}

#[test]
fn round_robin_skips_unsubscribed_members() {
    // The javadoc example: C0 ⊂ {t0}, C1 ⊂ {t0, t1}, C2 ⊂ {t0, t1, t2}, with 1, 2, 3 partitions:
    // C0 [t0p0], C1 [t1p0], C2 [t1p1, t2p0, t2p1, t2p2].
    let subs = [
        Subscription::new("c0", &["t0"]),
        Subscription::new("c1", &["t0", "t1"]),
        Subscription::new("c2", &["t0", "t1", "t2"]),
    ];
    let a = RoundRobinAssignor.assign(&topics(&[("t0", 1), ("t1", 2), ("t2", 3)]), &subs);
    assert_eq!(a["c0"], parts(&[("t0", 0)]));
    assert_eq!(a["c1"], parts(&[("t1", 0)]));
    assert_eq!(
        a["c2"],
        parts(&[("t1", 1), ("t2", 0), ("t2", 1), ("t2", 2)])
    );
}

#[test]
fn round_robin_static_members() {
    // RoundRobinAssignorTest.testTwoStaticConsumersTwoTopicsSixPartitions: instance ids order.
    let subs = [
        static_member("consumer-b", "instance-1", &["t0", "t1"]),
        static_member("consumer-a", "instance-2", &["t0", "t1"]),
    ];
    let a = RoundRobinAssignor.assign(&topics(&[("t0", 3), ("t1", 3)]), &subs);
    assert_eq!(a["consumer-b"], parts(&[("t0", 0), ("t0", 2), ("t1", 1)]));
    assert_eq!(a["consumer-a"], parts(&[("t0", 1), ("t1", 0), ("t1", 2)]));
}

#[test]
fn round_robin_mixed_static_and_dynamic() {
    // RoundRobinAssignorTest.testOneStaticConsumerAndOneDynamicConsumerTwoTopicsSixPartitions:
    // the static member comes first although its member id sorts last.
    let subs = [
        static_member("consumer-b", "instance-1", &["t0", "t1"]),
        Subscription::new("consumer-a", &["t0", "t1"]),
    ];
    let a = RoundRobinAssignor.assign(&topics(&[("t0", 3), ("t1", 3)]), &subs);
    assert_eq!(a["consumer-b"], parts(&[("t0", 0), ("t0", 2), ("t1", 1)]));
    assert_eq!(a["consumer-a"], parts(&[("t0", 1), ("t1", 0), ("t1", 2)]));
}
