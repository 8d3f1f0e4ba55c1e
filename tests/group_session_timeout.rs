//! A session timeout outside the brokers' `group.min.session.timeout.ms` /
//! `group.max.session.timeout.ms` is not bad input for the loader: it is Kafka's run-time
//! INVALID_SESSION_TIMEOUT (`GroupCoordinator.handleJoinGroup`). The member that asks for it
//! fails to join (its `poll()` throws `InvalidSessionTimeoutException`, fatal in Kafka's
//! consumer), the rest of the group forms without it, and the report says why.

use ksim::run::run;
use ksim::scenario::parse;
use ksim_model::event::Event;
use ksim_model::types::NodeId;

/// Two entries of group `orders`: consumer-0 asks for `session.timeout.ms` = TIMEOUT (the
/// brokers allow 6000 to 30000), consumer-1 for 10000.
const SCENARIO: &str = r#"[scenario]
name = "session-timeout"
duration_ms = 15000
heal_ms = 5000
seeds = [1]

[cluster]
brokers = 3
controller = "zk"

[cluster.broker_config]
"group.initial.rebalance.delay.ms" = 500
"group.max.session.timeout.ms" = 30000

[[topics]]
name = "events"
partitions = 3
replication_factor = 3

[[producers]]
topic = "events"
rate_per_sec = 20
config = { acks = "all" }

[[consumers]]
group = "orders"
topics = ["events"]
commit = "sync"
config = { "enable.auto.commit" = false, "auto.offset.reset" = "earliest", "session.timeout.ms" = TIMEOUT, "heartbeat.interval.ms" = 1000 }

[[consumers]]
group = "orders"
topics = ["events"]
commit = "sync"
config = { "enable.auto.commit" = false, "auto.offset.reset" = "earliest", "session.timeout.ms" = 10000, "heartbeat.interval.ms" = 1000 }
"#;

fn check(timeout: &str) {
    let text = SCENARIO.replace("TIMEOUT", timeout);
    let sc = parse(&text, "scenarios/session-timeout.toml").unwrap_or_else(|e| panic!("{e}"));
    let r = run(&sc, 1);
    let events = &r.output.events;

    // consumer-0 is refused with Kafka's error and says so.
    let refused: Vec<&String> = events
        .iter()
        .filter_map(|e| match (&e.node, &e.event) {
            (
                NodeId::Consumer(0),
                Event::ConsumerError {
                    exception, message, ..
                },
            ) if exception == "InvalidSessionTimeoutException" => Some(message),
            _ => None,
        })
        .collect();
    assert_eq!(
        refused.len(),
        1,
        "session.timeout.ms {timeout}: {refused:?}"
    );
    assert!(
        refused[0].contains("INVALID_SESSION_TIMEOUT: The session timeout is not within the range allowed by the broker")
            && refused[0].contains(&format!("session.timeout.ms is {timeout} ms")),
        "{}",
        refused[0]
    );

    // The group forms without it: every assignment gives all three partitions to consumer-1.
    let mut assignments = 0;
    for e in events {
        if let Event::GroupAssignmentCompleted { members, .. } = &e.event {
            assignments += 1;
            assert_eq!(members.len(), 1, "{members:?}");
            assert_eq!(members[0].partitions.len(), 3, "{members:?}");
        }
    }
    assert!(
        assignments >= 1,
        "session.timeout.ms {timeout}: the group never formed"
    );

    // The report tells the reader why consumer-0 never joined.
    let report = ksim::report::render(&r);
    assert!(
        report.contains("InvalidSessionTimeoutException")
            && report.contains("group.min.session.timeout.ms and group.max.session.timeout.ms"),
        "the report does not explain the refused join"
    );
}

#[test]
fn a_session_timeout_below_the_brokers_minimum_fails_the_join() {
    check("5000");
}

#[test]
fn a_session_timeout_above_the_brokers_maximum_fails_the_join() {
    check("40000");
}
