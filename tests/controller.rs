//! The controller's failover duties, end to end: a broker whose coordination-node session
//! expires loses its leaderships, and a deposed controller's requests are refused by epoch.

use ksim::run::run;
use ksim::scenario::{load, parse};
use ksim_model::event::Event;
use ksim_model::types::{BrokerId, NodeId};
use std::path::Path;

/// One partition on brokers 0, 1, 2 (broker-0 leads); the leader is cut off from the
/// coordination node from 3 s to 12 s, nothing else fails.
const LEADER_CUT_FROM_ZK: &str = r#"
[scenario]
name = "leader-session-expiry"
title = "The leader's session expires"
description = "The leader of events-0 is partitioned from the coordination node."
references = []
duration_ms = 15000
heal_ms = 8000
seeds = [1]
expect = "ok"

[cluster]
brokers = 3
controller = "zk"

[cluster.broker_config]
"zookeeper.session.timeout.ms" = 6000
"min.insync.replicas" = 2

[[topics]]
name = "events"
partitions = 1
replication_factor = 3
replica_assignment = [[0, 1, 2]]

[[producers]]
topic = "events"
count = 1
rate_per_sec = 100
keys = 4
config = { acks = "all" }

[[consumers]]
members = 1
topics = ["events"]
config = { "auto.offset.reset" = "earliest", "enable.auto.commit" = false }

[faults]
kinds = []

[[faults.schedule]]
at_ms = 3000
partition = [["leader:events-0"], ["zk"]]
[[faults.schedule]]
at_ms = 12000
heal = true
"#;

/// Kafka's failover in ZooKeeper mode: the ephemeral `/brokers/ids/0` vanishes with the leader's
/// session, the controller sees the broker change, and elects another ISR member with a higher
/// leader epoch; that broker becomes leader and the run loses nothing.
#[test]
fn broker_session_expiry_makes_its_partitions_elect_new_leaders() {
    let sc =
        parse(LEADER_CUT_FROM_ZK, "leader-session-expiry.toml").unwrap_or_else(|e| panic!("{e}"));
    let r = run(&sc, 1);
    assert!(r.checks.is_ok(), "{:?}", r.checks.violations);
    let events = &r.output.events;
    let expired = events
        .iter()
        .find(|e| {
            matches!(&e.event, Event::ZkSessionExpired { owner, .. } if *owner == NodeId::Broker(BrokerId(0)))
        })
        .expect("broker-0's session expires");
    assert!(
        expired.time_ms >= 3000 && expired.time_ms < 12000,
        "{expired:?}"
    );
    let elected = events
        .iter()
        .filter(|e| e.time_ms >= expired.time_ms)
        .find_map(|e| match &e.event {
            Event::PartitionStateChanged {
                leader: Some(l),
                leader_epoch,
                isr,
                reason,
                ..
            } if *l != BrokerId(0) => {
                Some((e.time_ms, *l, *leader_epoch, isr.clone(), reason.clone()))
            }
            _ => None,
        })
        .expect("the controller elects a new leader after the session expired");
    assert_eq!(elected.4, "leader-election");
    assert!(elected.2 .0 >= 1, "the leader epoch is bumped: {elected:?}");
    assert!(
        !elected.3.contains(&BrokerId(0)),
        "broker-0 left the ISR: {elected:?}"
    );
    assert!(
        elected.0 < expired.time_ms + 1000,
        "the election follows the expiry promptly: {elected:?} after {expired:?}"
    );
    let became = events.iter().any(|e| {
        e.time_ms >= elected.0
            && matches!(&e.event, Event::BecameLeader { broker, leader_epoch, .. }
                if *broker == elected.1 && *leader_epoch == elected.2)
    });
    assert!(became, "the new leader takes over in the new epoch");
}

/// On the fenced twin of `controller-split-brain` (seed 31, whose legacy run applies three of
/// the zombie's requests; the fenced run refuses two at 25.7 s), the deposed controller resigns on
/// its own once the coordination node has been silent for the session timeout, and a broker
/// refuses its late requests with STALE_CONTROLLER_EPOCH.
#[test]
fn a_deposed_controller_resigns_and_its_late_requests_are_refused() {
    let sc = load(Path::new("scenarios/controller-split-brain-fenced.toml"))
        .unwrap_or_else(|e| panic!("{e}"));
    let r = run(&sc, 31);
    assert!(r.checks.is_ok(), "{:?}", r.checks.violations);
    let events = &r.output.events;
    let resigned = events.iter().any(|e| {
        matches!(&e.event, Event::ControllerResigned { reason, .. } if reason == "session-silent")
    });
    assert!(resigned, "the cut-off controller resigns (session-silent)");
    let refused = events.iter().filter(|e| {
        matches!(&e.event, Event::ControllerRequestRejected { controller_epoch, highest_controller_epoch, .. }
            if controller_epoch < highest_controller_epoch)
    });
    assert!(
        refused.count() > 0,
        "a late request of the deposed controller is refused"
    );
}

/// `topic-admin-under-faults` on its pinned seeds: the controller raises `events` from 3 to 5
/// partitions and deletes `scratch`; producers write to the new partitions, replicas of
/// `scratch` delete their logs, and no check fails.
#[test]
fn topic_admin_creates_partitions_and_deletes_a_topic_on_pinned_seeds() {
    let sc = load(Path::new("scenarios/topic-admin-under-faults.toml"))
        .unwrap_or_else(|e| panic!("{e}"));
    for &seed in &sc.seeds {
        let r = run(&sc, seed);
        assert!(r.checks.is_ok(), "seed {seed}: {:?}", r.checks.violations);
        let events = &r.output.events;
        let created = events.iter().any(|e| {
            matches!(&e.event, Event::PartitionsCreated { topic, from_count: 3, to_count: 5, .. } if topic == "events")
        });
        assert!(created, "seed {seed}: events raised to 5 partitions");
        for p in [3, 4] {
            let started = events.iter().any(|e| {
                matches!(&e.event, Event::PartitionStateChanged { tp, reason, leader: Some(_), .. }
                    if tp.topic == "events" && tp.partition == p && reason == "new-partition")
            });
            assert!(started, "seed {seed}: events-{p} gets a leader");
        }
        let deleted = events
            .iter()
            .any(|e| matches!(&e.event, Event::TopicDeleted { topic, .. } if topic == "scratch"));
        assert!(deleted, "seed {seed}: scratch deleted");
        let replica_deleted = events
            .iter()
            .any(|e| matches!(&e.event, Event::ReplicaDeleted { tp, .. } if tp.topic == "scratch"));
        assert!(
            replica_deleted,
            "seed {seed}: a replica of scratch deleted its log"
        );
        let new_partition_acked = r.output.history.iter().any(|h| {
            h.op.op_type == ksim_model::event::OpType::Ok
                && matches!(&h.op.value, ksim_model::event::OpValue::Send { tp, .. }
                    if tp.topic == "events" && tp.partition >= 3)
        });
        assert!(
            new_partition_acked,
            "seed {seed}: producers write to the new partitions"
        );
    }
}

/// A `create-partitions` that is not an increase is refused at load time with Kafka's message.
#[test]
fn create_partitions_must_increase_the_count() {
    let base = std::fs::read_to_string("scenarios/topic-admin-under-faults.toml").expect("read");
    let with = |count: i64| base.replace("count = 5 }", &format!("count = {count} }}"));
    let err = parse(&with(2), "topic-admin-under-faults.toml")
        .expect_err("a decrease is refused")
        .to_string();
    assert!(
        err.contains("Topic currently has 3 partitions, which is higher than the requested 2."),
        "{err}"
    );
    let err = parse(&with(3), "topic-admin-under-faults.toml")
        .expect_err("an equal count is refused")
        .to_string();
    assert!(err.contains("Topic already has 3 partitions."), "{err}");
    let unknown = base.replace("delete-topic = \"scratch\"", "delete-topic = \"nope\"");
    let err = parse(&unknown, "topic-admin-under-faults.toml")
        .expect_err("an unknown topic is refused")
        .to_string();
    assert!(err.contains("unknown topic \"nope\""), "{err}");
}

/// Regression (`topic-admin-under-faults` seed 141, found by a 300-seed sweep): the controller
/// that deleted `scratch` was killed before it heard that the deletion committed, so it never
/// sent StopReplica; the next controller found the topic gone and did nothing, and `scratch-0`
/// stayed on its brokers, taking no writes to the end (`liveness`). The deletion is now recorded
/// where it commits, and a new controller tells the replicas of a deleted topic again (Kafka's
/// TopicDeletionManager resumes deletions after a failover).
#[test]
fn a_new_controller_finishes_a_deletion_its_predecessor_committed() {
    let sc = load(Path::new("scenarios/topic-admin-under-faults.toml"))
        .unwrap_or_else(|e| panic!("{e}"));
    let r = run(&sc, 141);
    assert!(r.checks.is_ok(), "{:?}", r.checks.violations);
    let events = &r.output.events;
    let deleted_at = events
        .iter()
        .find(|e| matches!(&e.event, Event::TopicDeleted { topic, controller_epoch } if topic == "scratch" && controller_epoch.0 == 1))
        .map(|e| e.time_ms)
        .expect("scratch deleted by the epoch-1 controller");
    let later_controller = events
        .iter()
        .find(|e| e.time_ms > deleted_at && matches!(&e.event, Event::ControllerElected { controller_epoch, .. } if controller_epoch.0 == 2))
        .map(|e| e.time_ms)
        .expect("a controller of epoch 2 after the deletion");
    let replica_deleted_later = events.iter().any(|e| {
        e.time_ms >= later_controller
            && matches!(&e.event, Event::ReplicaDeleted { tp, .. } if tp.topic == "scratch")
    });
    assert!(
        replica_deleted_later,
        "the epoch-2 controller had the replicas of scratch deleted"
    );
}
