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
    // Kafka's words when the class cannot be loaded, then the names ksim has.
    let err = parse_strategy_list("[range, com.example.Fancy]")
        .err()
        .unwrap();
    assert!(
        err.starts_with("com.example.Fancy ClassNotFoundException exception occurred (ksim has: ")
            && err.contains("cooperative-sticky"),
        "{err}"
    );
    // Kafka's words for two entries with one protocol name.
    assert_eq!(
        parse_strategy_list("range, RangeAssignor").err().unwrap(),
        "The assignor name: 'range' is used in more than one assignor: \
         org.apache.kafka.clients.consumer.RangeAssignor, \
         org.apache.kafka.clients.consumer.RangeAssignor"
    );
    for name in ["range", "roundrobin", "sticky", "cooperative-sticky"] {
        let class = class_name(name).unwrap();
        assert_eq!(assignor_by_name(class).unwrap().name(), name);
    }
    assert_eq!(class_name("fancy"), None);
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

// ---- sticky (AbstractStickyAssignorTest, StickyAssignorTest) ----

/// Members with the previous round's assignment as their owned partitions (in `generation`);
/// members new to `assignment` own nothing.
fn next_round(
    subs: &[Subscription],
    assignment: &BTreeMap<String, Vec<TopicPartition>>,
    generation: i32,
) -> Vec<Subscription> {
    subs.iter()
        .map(|s| {
            let owned = assignment.get(&s.member_id).cloned().unwrap_or_default();
            owning(s.clone(), &owned, generation)
        })
        .collect()
}

fn counts(a: &BTreeMap<String, Vec<TopicPartition>>) -> Vec<usize> {
    a.values().map(Vec::len).collect()
}

#[test]
fn sticky_consumer_owning_min_quota_expected_max_quota() {
    // testConsumerOwningMinQuotaExpectedMaxQuota: the unowned t2-0 goes to the first of the
    // least-loaded members.
    let ts = topics(&[("t1", 2), ("t2", 3)]);
    let both = ["t1", "t2"];
    let subs = [
        owning(
            Subscription::new("c1", &both),
            &parts(&[("t1", 0), ("t2", 1)]),
            1,
        ),
        owning(
            Subscription::new("c2", &both),
            &parts(&[("t1", 1), ("t2", 2)]),
            1,
        ),
    ];
    for assignor in [
        &StickyAssignor as &dyn PartitionAssignor,
        &CooperativeStickyAssignor,
    ] {
        let a = assignor.assign(&ts, &subs);
        assert_eq!(a["c1"], parts(&[("t1", 0), ("t2", 0), ("t2", 1)]));
        assert_eq!(a["c2"], parts(&[("t1", 1), ("t2", 2)]));
    }
}

#[test]
fn sticky_max_quota_members_beyond_the_expected_number() {
    // testMaxQuotaConsumerMoreThanNumExpectedMaxCapacityMembers: 4 partitions, 3 members; c1
    // and c2 own 2 each, only one may keep 2, c1 gives up its last partition (by partition,
    // topic) t2-0 to c3; the cooperative assignor withholds it until c1 revoked it.
    let ts = topics(&[("t1", 2), ("t2", 2)]);
    let both = ["t1", "t2"];
    let subs = [
        owning(
            Subscription::new("c1", &both),
            &parts(&[("t1", 0), ("t2", 0)]),
            1,
        ),
        owning(
            Subscription::new("c2", &both),
            &parts(&[("t1", 1), ("t2", 1)]),
            1,
        ),
        owning(Subscription::new("c3", &both), &[], 1),
    ];
    let a = StickyAssignor.assign(&ts, &subs);
    assert_eq!(a["c1"], parts(&[("t1", 0)]));
    assert_eq!(a["c2"], parts(&[("t1", 1), ("t2", 1)]));
    assert_eq!(a["c3"], parts(&[("t2", 0)]));
    let a = CooperativeStickyAssignor.assign(&ts, &subs);
    assert_eq!(a["c1"], parts(&[("t1", 0)]));
    assert_eq!(a["c3"], []);
}

#[test]
fn sticky_all_members_under_min_quota() {
    // testAllConsumersAreUnderMinQuota.
    let ts = topics(&[("t1", 2), ("t2", 3)]);
    let both = ["t1", "t2"];
    let subs = [
        owning(Subscription::new("c1", &both), &parts(&[("t1", 0)]), 1),
        owning(Subscription::new("c2", &both), &parts(&[("t1", 1)]), 1),
        owning(Subscription::new("c3", &both), &[], 1),
    ];
    let a = StickyAssignor.assign(&ts, &subs);
    assert_eq!(a["c1"], parts(&[("t1", 0), ("t2", 1)]));
    assert_eq!(a["c2"], parts(&[("t1", 1), ("t2", 2)]));
    assert_eq!(a["c3"], parts(&[("t2", 0)]));
    assert_eq!(CooperativeStickyAssignor.assign(&ts, &subs), a);
}

#[test]
fn sticky_add_remove_consumer_one_topic() {
    // testAddRemoveConsumerOneTopic, with the cooperative two-rebalance revocation.
    let ts = topics(&[("t", 3)]);
    let one = [Subscription::new("c1", &["t"])];
    let a = StickyAssignor.assign(&ts, &one);
    assert_eq!(a["c1"], parts(&[("t", 0), ("t", 1), ("t", 2)]));

    let two = [
        owning(Subscription::new("c1", &["t"]), &a["c1"], 1),
        owning(Subscription::new("c2", &["t"]), &[], 1),
    ];
    let b = StickyAssignor.assign(&ts, &two);
    assert_eq!(b["c1"], parts(&[("t", 0), ("t", 1)]));
    assert_eq!(b["c2"], parts(&[("t", 2)]));
    // Cooperative: c1 must revoke t-2 before c2 gets it, in a second rebalance.
    let first = CooperativeStickyAssignor.assign(&ts, &two);
    assert_eq!(first["c1"], parts(&[("t", 0), ("t", 1)]));
    assert_eq!(first["c2"], []);
    let second = CooperativeStickyAssignor.assign(&ts, &next_round(&two, &first, 2));
    assert_eq!(second, b);

    // c1 leaves: c2 gets everything, keeping t-2.
    let alone = [owning(Subscription::new("c2", &["t"]), &b["c2"], 2)];
    let c = StickyAssignor.assign(&ts, &alone);
    assert_eq!(c["c2"], parts(&[("t", 0), ("t", 1), ("t", 2)]));
    assert_eq!(CooperativeStickyAssignor.assign(&ts, &alone), c);
}

#[test]
fn sticky_topic_balance_after_reassignment() {
    // testTopicBalanceAfterReassignment: each step keeps every topic evenly spread.
    let ts = topics(&[("t1", 12), ("t2", 12)]);
    let both = ["t1", "t2"];
    let per_topic = |a: &BTreeMap<String, Vec<TopicPartition>>, n: usize| {
        for list in a.values() {
            for t in both {
                assert_eq!(list.iter().filter(|tp| tp.topic == t).count(), n, "{a:?}");
            }
        }
    };
    let mut subs = vec![Subscription::new("c1", &both)];
    let mut a = StickyAssignor.assign(&ts, &subs);
    per_topic(&a, 12);
    subs.push(Subscription::new("c2", &both));
    subs = next_round(&subs, &a, 1);
    a = StickyAssignor.assign(&ts, &subs);
    per_topic(&a, 6);
    subs.push(Subscription::new("c3", &both));
    subs.push(Subscription::new("c4", &both));
    subs = next_round(&subs, &a, 2);
    a = StickyAssignor.assign(&ts, &subs);
    per_topic(&a, 3);
    subs.retain(|s| s.member_id == "c3" || s.member_id == "c4");
    subs = next_round(&subs, &a, 3);
    let b = StickyAssignor.assign(&ts, &subs);
    per_topic(&b, 6);
    // c3 and c4 kept what they had.
    for m in ["c3", "c4"] {
        assert!(a[m].iter().all(|tp| b[m].contains(tp)));
    }
}

#[test]
fn sticky_poor_round_robin_scenario() {
    // testPoorRoundRobinAssignmentScenario: topic1..topic5 with 2,1,2,1,2 partitions; members
    // c2, c3 subscribe to topic1, topic3, topic5 only. Balanced: 2 partitions each.
    let ts = topics(&[
        ("topic1", 2),
        ("topic2", 1),
        ("topic3", 2),
        ("topic4", 1),
        ("topic5", 2),
    ]);
    let all = ["topic1", "topic2", "topic3", "topic4", "topic5"];
    let odd = ["topic1", "topic3", "topic5"];
    let subs = [
        Subscription::new("consumer1", &all),
        Subscription::new("consumer2", &odd),
        Subscription::new("consumer3", &odd),
        Subscription::new("consumer4", &all),
    ];
    let a = StickyAssignor.assign(&ts, &subs);
    assert_eq!(counts(&a), [2, 2, 2, 2]);
    check_valid(&ts, &subs, &a, true);
}

#[test]
fn sticky_highest_generation_wins_conflicts() {
    // testEnsurePartitionsAssignedToHighestGeneration.
    let ts = topics(&[("t", 3), ("t2", 3), ("t3", 3)]);
    let all = ["t", "t2", "t3"];
    let subs = [
        owning(
            Subscription::new("c1", &all),
            &parts(&[("t", 0), ("t2", 0), ("t3", 0)]),
            10,
        ),
        owning(
            Subscription::new("c2", &all),
            &parts(&[("t", 1), ("t2", 1), ("t3", 1)]),
            9,
        ),
        owning(
            Subscription::new("c3", &all),
            &parts(&[("t2", 1), ("t3", 0), ("t3", 2)]),
            8,
        ),
    ];
    for assignor in [
        &StickyAssignor as &dyn PartitionAssignor,
        &CooperativeStickyAssignor,
    ] {
        let a = assignor.assign(&ts, &subs);
        assert_eq!(a["c1"], parts(&[("t", 0), ("t2", 0), ("t3", 0)]));
        assert_eq!(a["c2"], parts(&[("t", 1), ("t2", 1), ("t3", 1)]));
        assert_eq!(a["c3"], parts(&[("t", 2), ("t2", 2), ("t3", 2)]));
    }
}

#[test]
fn sticky_stale_generation_claims_are_ignored() {
    // testOwnedPartitionsAreInvalidatedForConsumerWithStaleGeneration / ...WithNoGeneration.
    let ts = topics(&[("t", 3), ("t2", 3)]);
    let both = ["t", "t2"];
    let claimed = parts(&[("t", 0), ("t", 2), ("t2", 1)]);
    for stale in [9, -1] {
        let subs = [
            owning(Subscription::new("c1", &both), &claimed, 10),
            owning(Subscription::new("c2", &both), &claimed, stale),
        ];
        for assignor in [
            &StickyAssignor as &dyn PartitionAssignor,
            &CooperativeStickyAssignor,
        ] {
            let a = assignor.assign(&ts, &subs);
            assert_eq!(a["c1"], claimed);
            assert_eq!(a["c2"], parts(&[("t", 1), ("t2", 0), ("t2", 2)]));
        }
    }
}

#[test]
fn sticky_partition_claimed_twice_in_the_same_generation() {
    // testPartitionsTransferringOwnershipIncludeThePartitionClaimedByMultipleConsumersInSameGeneration
    // and CooperativeStickyAssignorTest's "...InvalidatedWhenClaimedByMultipleConsumers...".
    let subs = [
        owning(
            Subscription::new("c1", &["t"]),
            &parts(&[("t", 0), ("t", 1)]),
            1,
        ),
        owning(
            Subscription::new("c2", &["t"]),
            &parts(&[("t", 0), ("t", 2)]),
            1,
        ),
        owning(Subscription::new("c3", &["t"]), &[], 1),
    ];
    let ts = topics(&[("t", 3)]);
    let a = StickyAssignor.assign(&ts, &subs);
    assert_eq!(a["c1"], parts(&[("t", 1)]));
    assert_eq!(a["c2"], parts(&[("t", 2)]));
    assert_eq!(a["c3"], parts(&[("t", 0)]));
    let a = CooperativeStickyAssignor.assign(&ts, &subs);
    assert_eq!(a["c1"], parts(&[("t", 1)]));
    assert_eq!(a["c2"], parts(&[("t", 2)]));
    assert_eq!(a["c3"], []);

    // With 4 partitions: t-3 (unowned) goes to c1, t-0 still withheld.
    let ts = topics(&[("t", 4)]);
    let a = CooperativeStickyAssignor.assign(&ts, &subs);
    assert_eq!(a["c1"], parts(&[("t", 1), ("t", 3)]));
    assert_eq!(a["c2"], parts(&[("t", 2)]));
    assert_eq!(a["c3"], []);
}

#[test]
fn sticky_no_reassignment_of_current_members() {
    // testNoReassignmentOnCurrentMembers: the new member gets exactly the unowned partitions.
    let ts = topics(&[("t", 3), ("t1", 3), ("t2", 3), ("t3", 3)]);
    let all = ["t", "t2", "t3", "t1"];
    let subs = [
        owning(Subscription::new("c1", &all), &[], -1),
        owning(
            Subscription::new("c2", &all),
            &parts(&[("t", 0), ("t2", 0), ("t1", 0)]),
            9,
        ),
        owning(
            Subscription::new("c3", &all),
            &parts(&[("t3", 2), ("t2", 2), ("t1", 1)]),
            8,
        ),
        owning(
            Subscription::new("c4", &all),
            &parts(&[("t3", 1), ("t", 1), ("t", 2)]),
            7,
        ),
    ];
    for assignor in [
        &StickyAssignor as &dyn PartitionAssignor,
        &CooperativeStickyAssignor,
    ] {
        let a = assignor.assign(&ts, &subs);
        assert_eq!(a["c1"], parts(&[("t1", 2), ("t2", 1), ("t3", 0)]));
    }
}

#[test]
fn sticky_drops_claims_on_unsubscribed_and_deleted_topics() {
    // testAssignmentUpdatedForDeletedTopic / testAddRemoveTopicTwoConsumers: claims on topics
    // without metadata or no longer subscribed are dropped.
    let ts = topics(&[("t1", 2), ("t3", 2)]);
    let subs = [
        owning(
            Subscription::new("c1", &["t1", "t3"]),
            &parts(&[("t1", 0), ("t2", 0), ("t3", 5)]),
            1,
        ),
        owning(
            Subscription::new("c2", &["t3"]),
            &parts(&[("t1", 1), ("t3", 0)]),
            1,
        ),
    ];
    let a = StickyAssignor.assign(&ts, &subs);
    assert_eq!(a["c1"], parts(&[("t1", 0), ("t1", 1)]));
    assert_eq!(a["c2"], parts(&[("t3", 0), ("t3", 1)]));
    // Cooperative: t1-1 is still listed by c2, so c1 waits for it.
    let a = CooperativeStickyAssignor.assign(&ts, &subs);
    assert_eq!(a["c1"], parts(&[("t1", 0)]));
    assert_eq!(a["c2"], parts(&[("t3", 0), ("t3", 1)]));
}

#[test]
fn sticky_moves_the_minimum_when_a_member_joins() {
    // testStickiness-like: 3 members with 4 partitions each, a 4th joins: exactly 3 partitions
    // move, one from each, and nobody else's partitions change.
    let ts = topics(&[("t", 12)]);
    let members = ["c1", "c2", "c3"];
    let subs: Vec<Subscription> = members
        .iter()
        .map(|m| Subscription::new(*m, &["t"]))
        .collect();
    let a = StickyAssignor.assign(&ts, &subs);
    assert_eq!(counts(&a), [4, 4, 4]);
    let mut subs = next_round(&subs, &a, 1);
    subs.push(Subscription::new("c4", &["t"]));
    let b = StickyAssignor.assign(&ts, &subs);
    assert_eq!(counts(&b), [3, 3, 3, 3]);
    for m in members {
        assert!(
            b[m].iter().all(|tp| a[m].contains(tp)),
            "{m} got a new partition"
        );
    }
}

// ---- properties ----

/// Checks the validity every assignor owes: every member listed, sorted lists without
/// duplicates, only subscribed topics with metadata, each partition at most once; with
/// `complete`, every partition of a subscribed topic exactly once.
fn check_valid(
    ts: &BTreeMap<String, i32>,
    subs: &[Subscription],
    a: &BTreeMap<String, Vec<TopicPartition>>,
    complete: bool,
) {
    let ids: BTreeSet<&str> = subs.iter().map(|s| s.member_id.as_str()).collect();
    let got: BTreeSet<&str> = a.keys().map(String::as_str).collect();
    assert_eq!(ids, got);
    let mut seen: BTreeSet<&TopicPartition> = BTreeSet::new();
    for s in subs {
        let list = &a[&s.member_id];
        assert!(list.windows(2).all(|w| w[0] < w[1]), "{list:?} not sorted");
        for tp in list {
            assert!(
                s.topics.iter().any(|t| *t == tp.topic),
                "{} got {tp}",
                s.member_id
            );
            assert!(tp.partition >= 0 && tp.partition < ts[tp.topic.as_str()]);
            assert!(seen.insert(tp), "{tp} assigned twice");
        }
    }
    if complete {
        let subscribed: BTreeSet<&String> = subs.iter().flat_map(|s| s.topics.iter()).collect();
        let expected: usize = subscribed
            .iter()
            .filter_map(|t| ts.get(*t))
            .map(|&n| n as usize)
            .sum();
        assert_eq!(seen.len(), expected, "not every partition assigned: {a:?}");
    }
}

/// Kafka's `isBalanced`: no partition could move to another subscribed member with at least
/// two partitions fewer.
fn check_balanced(subs: &[Subscription], a: &BTreeMap<String, Vec<TopicPartition>>) {
    for s in subs {
        let load = a[&s.member_id].len();
        for tp in &a[&s.member_id] {
            for other in subs {
                if other.topics.iter().any(|t| *t == tp.topic) {
                    assert!(
                        a[&other.member_id].len() + 1 >= load,
                        "{tp} could move from {} to {}: {a:?}",
                        s.member_id,
                        other.member_id
                    );
                }
            }
        }
    }
}

#[test]
#[should_panic(expected = "could move")]
fn check_balanced_rejects_an_unbalanced_assignment() {
    let subs = [
        Subscription::new("c1", &["t"]),
        Subscription::new("c2", &["t"]),
    ];
    let a: BTreeMap<String, Vec<TopicPartition>> = [
        ("c1".to_string(), parts(&[("t", 0), ("t", 1), ("t", 2)])),
        ("c2".to_string(), parts(&[("t", 3)])),
    ]
    .into();
    check_balanced(&subs, &a);
}

#[test]
#[should_panic(expected = "not every partition assigned")]
fn check_valid_rejects_an_incomplete_assignment() {
    let subs = [Subscription::new("c1", &["t"])];
    let a: BTreeMap<String, Vec<TopicPartition>> = [("c1".to_string(), parts(&[("t", 0)]))].into();
    check_valid(&topics(&[("t", 2)]), &subs, &a, true);
}

mod props {
    use super::*;
    use proptest::prelude::*;

    const TOPICS: [&str; 4] = ["a", "b", "c", "d"];

    /// A group: partition counts of topics a..d (0..=7, a count of 0 means "no metadata"),
    /// members with subscriptions, optional instance ids and random (possibly conflicting,
    /// possibly stale) owned partitions.
    fn group(
        same_topics: bool,
    ) -> impl Strategy<Value = (BTreeMap<String, i32>, Vec<Subscription>)> {
        let counts = proptest::collection::vec(0..=7i32, 4);
        let members = proptest::collection::vec(
            (
                proptest::collection::vec(any::<bool>(), 4),
                proptest::option::of(0..3u8),
                proptest::collection::vec((0..4usize, 0..8i32), 0..6),
                -1..3i32,
            ),
            1..6,
        );
        (counts, members, proptest::collection::vec(any::<bool>(), 4)).prop_map(
            move |(counts, members, common)| {
                let ts: BTreeMap<String, i32> = TOPICS
                    .iter()
                    .zip(&counts)
                    .filter(|(_, &n)| n > 0)
                    .map(|(t, &n)| (t.to_string(), n))
                    .collect();
                let subs = members
                    .into_iter()
                    .enumerate()
                    .map(|(i, (mask, instance, owned, generation))| {
                        let mask = if same_topics { common.clone() } else { mask };
                        Subscription {
                            member_id: format!("m{i}-{}", 7 * i % 5),
                            group_instance_id: instance.map(|n| format!("i{n}")),
                            topics: TOPICS
                                .iter()
                                .zip(&mask)
                                .filter(|(_, &on)| on)
                                .map(|(t, _)| t.to_string())
                                .collect(),
                            owned_partitions: owned
                                .into_iter()
                                .map(|(t, p)| TopicPartition::new(TOPICS[t], p))
                                .collect(),
                            generation,
                        }
                    })
                    .collect();
                (ts, subs)
            },
        )
    }

    fn all() -> Vec<Box<dyn PartitionAssignor>> {
        ["range", "roundrobin", "sticky", "cooperative-sticky"]
            .iter()
            .map(|n| assignor_by_name(n).unwrap())
            .collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]

        /// Validity for every assignor; completeness for all but cooperative-sticky, whose
        /// missing partitions are exactly the withheld ones (listed as owned by a member
        /// other than the one that gets them in the sticky assignment).
        #[test]
        fn valid_and_complete((ts, subs) in group(false)) {
            for assignor in all() {
                let a = assignor.assign(&ts, &subs);
                let cooperative = assignor.name() == "cooperative-sticky";
                check_valid(&ts, &subs, &a, !cooperative);
                if cooperative {
                    let full = StickyAssignor.assign(&ts, &subs);
                    for (member, list) in &full {
                        for tp in list {
                            if !a[member].contains(tp) {
                                prop_assert!(subs.iter().any(|s| s.owned_partitions.contains(tp)));
                            }
                        }
                    }
                }
            }
        }

        /// The input order of the subscriptions does not matter.
        #[test]
        fn order_independent((ts, subs) in group(false)) {
            let mut reversed = subs.clone();
            reversed.reverse();
            for assignor in all() {
                prop_assert_eq!(assignor.assign(&ts, &subs), assignor.assign(&ts, &reversed));
            }
        }

        /// Sticky assignments are balanced (Kafka's isBalanced); with identical
        /// subscriptions counts differ by at most one, as for round robin.
        #[test]
        fn sticky_balanced((ts, subs) in group(false)) {
            check_balanced(&subs, &StickyAssignor.assign(&ts, &subs));
        }

        #[test]
        fn same_topics_counts_within_one((ts, subs) in group(true)) {
            for name in ["roundrobin", "sticky"] {
                let a = assignor_by_name(name).unwrap().assign(&ts, &subs);
                let c = counts(&a);
                prop_assert!(c.iter().max().unwrap() - c.iter().min().unwrap() <= 1, "{}: {:?}", name, a);
            }
        }

        /// A rebalance with the same members, owning what they were given, changes nothing.
        #[test]
        fn sticky_is_stable((ts, subs) in group(false)) {
            let a = StickyAssignor.assign(&ts, &subs);
            let again = StickyAssignor.assign(&ts, &next_round(&subs, &a, 5));
            prop_assert_eq!(again, a);
        }

        /// With identical subscriptions, a member only loses a partition it validly owned
        /// (no other claimant of the same or a higher generation) when it had too many: it
        /// ends at the balanced count (the minimum or one more).
        #[test]
        fn sticky_keeps_owned_unless_over_full((ts, subs) in group(true)) {
            let a = StickyAssignor.assign(&ts, &subs);
            let c = counts(&a);
            let min = *c.iter().min().unwrap();
            for s in &subs {
                let mine = &a[&s.member_id];
                let lost = s.owned_partitions.iter().any(|tp| {
                    ts.get(tp.topic.as_str()).is_some_and(|&n| tp.partition < n)
                        && s.topics.iter().any(|t| *t == tp.topic)
                        && !mine.contains(tp)
                        && !subs.iter().any(|o| o.member_id != s.member_id
                            && o.owned_partitions.contains(tp)
                            && o.generation >= s.generation)
                });
                if lost {
                    prop_assert!(mine.len() <= min + 1 && mine.len() >= min, "{:?}", a);
                }
            }
        }

        /// Cooperative: no partition goes to a member that does not list it while another
        /// member lists it; rounds with the new ownership converge within 4 rebalances to a
        /// complete, balanced assignment, which then stays put.
        #[test]
        fn cooperative_two_rebalances((ts, subs) in group(false)) {
            let mut subs = subs;
            let mut a = CooperativeStickyAssignor.assign(&ts, &subs);
            let mut rounds = 0;
            loop {
                for s in &subs {
                    for tp in &a[&s.member_id] {
                        if !s.owned_partitions.contains(tp) {
                            prop_assert!(
                                !subs.iter().any(|o| o.owned_partitions.contains(tp)),
                                "{} given to {} while owned elsewhere", tp, s.member_id
                            );
                        }
                    }
                }
                let revoking = subs.iter().any(|s| {
                    s.owned_partitions.iter().any(|tp| !a[&s.member_id].contains(tp))
                });
                rounds += 1;
                let next = next_round(&subs, &a, 10 + rounds);
                if !revoking && rounds > 1 {
                    break;
                }
                prop_assert!(rounds <= 4, "no convergence: {:?}", a);
                subs = next;
                a = CooperativeStickyAssignor.assign(&ts, &subs);
            }
            check_valid(&ts, &subs, &a, true);
            check_balanced(&subs, &a);
            let again = CooperativeStickyAssignor.assign(&ts, &next_round(&subs, &a, 99));
            prop_assert_eq!(again, a);
        }
    }
}

#[test]
fn sticky_large_group_is_balanced_quickly() {
    // 60 members, 3 topics of 200 partitions, everything owned by one member: 590 moves
    // (a check that the balancing loop stays cheap at this size).
    let ts = topics(&[("a", 200), ("b", 200), ("c", 200)]);
    let all: Vec<TopicPartition> = ts
        .iter()
        .flat_map(|(t, &n)| (0..n).map(move |p| tp(t, p)))
        .collect();
    let subs: Vec<Subscription> = (0..60)
        .map(|i| {
            let s = Subscription::new(format!("m{i:02}"), &["a", "b", "c"]);
            if i == 0 {
                owning(s, &all, 3)
            } else {
                s
            }
        })
        .collect();
    let a = StickyAssignor.assign(&ts, &subs);
    assert!(counts(&a).iter().all(|&c| c == 10));
    // m00 kept its first 10 owned partitions by (partition, topic).
    let kept = parts(&[
        ("a", 0),
        ("a", 1),
        ("a", 2),
        ("a", 3),
        ("b", 0),
        ("b", 1),
        ("b", 2),
        ("c", 0),
        ("c", 1),
        ("c", 2),
    ]);
    assert_eq!(a["m00"], kept);
    check_valid(&ts, &subs, &a, true);
}
