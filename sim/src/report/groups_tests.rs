use super::*;
use crate::check::group_view::testkit::{mid, Events};
use crate::check::{run_all, CheckInput};
use crate::report::events::{describe_event, describe_fault_event};
use ksim_model::event::{ClientOp, CommitOffset};
use ksim_model::types::Offset;
use serde_json::json;
use std::collections::BTreeMap;

fn tp(p: i32) -> TopicPartition {
    TopicPartition::new("events", p)
}

/// A coordinator state change with an explicit reason and broker.
fn state(e: &mut Events, t: u64, broker: i32, from: &str, to: &str, gen: i32, reason: &str) {
    e.0.push(EventRecord {
        time_ms: t,
        node: NodeId::Broker(BrokerId(broker)),
        event: Event::GroupStateChanged {
            group: "g".into(),
            broker: BrokerId(broker),
            from: from.into(),
            to: to.into(),
            generation: gen,
            reason: reason.into(),
        },
    });
}

/// A history with explicit times.
#[derive(Default)]
struct H(Vec<HistoryEntry>);

impl H {
    fn push(&mut self, t: u64, c: u32, op_type: OpType, op_id: u64, value: OpValue, error: &str) {
        let index = self.0.len() as u64;
        self.0.push(HistoryEntry {
            index,
            time_ms: t,
            process: NodeId::Consumer(c),
            op: ClientOp {
                op_type,
                op_id,
                value,
                error: (!error.is_empty()).then(|| error.to_string()),
            },
        });
    }

    /// A commit by consumer `c` sent at `t`, completed at `t + 5`.
    fn commit(&mut self, t: u64, c: u32, generation: i32, offsets: &[(i32, i64)], outcome: OpType) {
        let id = self.0.len() as u64;
        let v = OpValue::Commit {
            group: "g".into(),
            mode: "sync".into(),
            offsets: offsets
                .iter()
                .map(|&(p, o)| CommitOffset {
                    tp: tp(p),
                    offset: Offset(o),
                })
                .collect(),
            coordinator: None,
            generation: Some(generation),
            member_id: Some(mid(c)),
        };
        self.push(t, c, OpType::Invoke, id, v.clone(), "");
        let error = if outcome == OpType::Ok {
            ""
        } else {
            "ILLEGAL_GENERATION"
        };
        self.push(t + 5, c, outcome, id, v, error);
    }
}

/// Two members; consumer-1 crashes at 5 s; the coordinator fails over at 8 s; the session
/// timeout removes consumer-1 at 11 s and consumer-0 takes its partition in generation 2.
fn run_events() -> Events {
    let mut e = Events::default();
    state(
        &mut e,
        0,
        0,
        "Empty",
        "PreparingRebalance",
        0,
        "Adding new member consumer-0-b0-0-1 with group instance id None",
    );
    state(
        &mut e,
        1000,
        0,
        "PreparingRebalance",
        "CompletingRebalance",
        1,
        "Join phase completed with 2 members",
    );
    e.completed(1000, 1, &[(0, &[0, 1]), (1, &[2])]);
    state(&mut e, 1000, 0, "CompletingRebalance", "Stable", 1, "sync");
    e.assigned(1010, 0, 1, &[0, 1]).assigned(1010, 1, 1, &[2]);
    e.killed(5000, 1);
    state(
        &mut e,
        8000,
        0,
        "Stable",
        "Dead",
        1,
        "Unloading group metadata",
    );
    state(
        &mut e,
        8100,
        1,
        "Dead",
        "Stable",
        1,
        "Loaded group metadata from __consumer_offsets-31",
    );
    e.removed(11000, 1, "session-timeout", 1);
    state(
        &mut e,
        11000,
        1,
        "Stable",
        "PreparingRebalance",
        1,
        "Removing member m1 on heartbeat expiration",
    );
    state(
        &mut e,
        11500,
        1,
        "PreparingRebalance",
        "CompletingRebalance",
        2,
        "Join phase completed with 1 members",
    );
    e.completed(11500, 2, &[(0, &[0, 1, 2])]);
    state(&mut e, 11500, 1, "CompletingRebalance", "Stable", 2, "sync");
    e.assigned(11510, 0, 2, &[2]);
    e
}

fn run_history() -> H {
    let mut h = H::default();
    h.commit(2000, 0, 1, &[(0, 5)], OpType::Ok);
    h.commit(3000, 0, 1, &[(0, 9)], OpType::Ok);
    h.commit(4000, 1, 1, &[(2, 4)], OpType::Ok);
    h.commit(12000, 0, 2, &[(2, 7)], OpType::Ok);
    h.commit(12000, 1, 1, &[(2, 8)], OpType::Fail);
    h
}

#[test]
fn ownership_rebalances_and_commits_are_read_off_the_run() {
    let e = run_events();
    let h = run_history();
    let groups = summarize(&h.0, &e.0, 20_000);
    assert_eq!(groups.len(), 1);
    let g = &groups[0];
    assert_eq!(g.group, "g");

    // Ownership: consumer-0 keeps events-0 from generation 1 into generation 2; events-2
    // goes from the crashed consumer-1 to consumer-0 after 6.51 s without an owner.
    let rows: Vec<(String, NodeId, i32, i32, u64, Option<u64>, &str)> = g
        .tenures
        .iter()
        .map(|t| {
            (
                t.tp.to_string(),
                t.node,
                t.generation,
                t.last_generation,
                t.from_ms,
                t.to_ms,
                t.ended.as_str(),
            )
        })
        .collect();
    let c = NodeId::Consumer;
    assert_eq!(
        rows,
        [
            (
                "events-0".into(),
                c(0),
                1,
                2,
                1010,
                None,
                "owned at the end of the run"
            ),
            (
                "events-1".into(),
                c(0),
                1,
                2,
                1010,
                None,
                "owned at the end of the run"
            ),
            (
                "events-2".into(),
                c(1),
                1,
                1,
                1010,
                Some(5000),
                "process crashed (client-kill)"
            ),
            (
                "events-2".into(),
                c(0),
                2,
                2,
                11510,
                None,
                "owned at the end of the run"
            ),
        ]
    );
    assert_eq!(g.unowned[&tp(0)], (0, 0, 0));
    assert_eq!(g.unowned[&tp(2)], (6510, 1, 6510));

    // Rebalances: the first join, then the session timeout after the failover.
    assert_eq!(g.rebalances.len(), 2);
    let first = &g.rebalances[0];
    assert_eq!(
        (first.start_ms, first.stable_ms, first.generation),
        (0, Some(1000), Some(1))
    );
    assert_eq!(first.causes, ["consumer-0 joined"]);
    let second = &g.rebalances[1];
    assert_eq!(second.duration_ms(), Some(500));
    assert_eq!(second.generation, Some(2));
    assert_eq!(second.coordinator, BrokerId(1));
    assert_eq!(
        second.causes,
        [
            "consumer-1 removed: no heartbeat within session.timeout.ms, after the coordinator \
          moved to broker-1 at t=8100 ms"
        ]
    );
    assert_eq!(g.loads, [(8100, BrokerId(1), 1, "Stable".to_string())]);
    assert_eq!(g.last_state, Some((11500, "Stable".to_string())));

    // Commits: consecutive ones of one member and generation merged; the fenced one counted.
    let commits: Vec<(String, NodeId, Option<i32>, u64, u64, i64, i64, usize)> = g
        .commits
        .iter()
        .map(|c| {
            (
                c.tp.to_string(),
                c.node,
                c.generation,
                c.first_ms,
                c.last_ms,
                c.first_offset,
                c.last_offset,
                c.commits,
            )
        })
        .collect();
    assert_eq!(
        commits,
        [
            ("events-0".into(), c(0), Some(1), 2005, 3005, 5, 9, 2),
            ("events-2".into(), c(1), Some(1), 4005, 4005, 4, 4, 1),
            ("events-2".into(), c(0), Some(2), 12005, 12005, 7, 7, 1),
        ]
    );
    assert_eq!(
        g.unacknowledged,
        BTreeMap::from([(("fail".to_string(), "ILLEGAL_GENERATION".to_string()), 1)])
    );
}

#[test]
fn causes_name_leave_group_poll_timeout_and_rejoins() {
    let client = BTreeMap::from([("m1".to_string(), NodeId::Consumer(1))]);
    let mut poll = BTreeMap::new();
    assert_eq!(
        cause_of("Removing member m1 on LeaveGroup", &client, &poll),
        "consumer-1 left (LeaveGroup)"
    );
    poll.insert(NodeId::Consumer(1), true);
    assert_eq!(
        cause_of("Removing member m1 on LeaveGroup", &client, &poll),
        "consumer-1 left: max.poll.interval.ms expired (LeaveGroup)"
    );
    assert_eq!(
        cause_of(
            "Updating metadata for member m1 during Stable",
            &client,
            &poll
        ),
        "consumer-1 rejoined"
    );
    assert_eq!(
        cause_of("Leader m1 re-joining group during Stable", &client, &poll),
        "consumer-1 (the leader) rejoined"
    );
    assert_eq!(
        cause_of(
            "Static member consumer-2-b1-5-9 with instance id i2 re-joining during Stable",
            &client,
            &poll
        ),
        "static member consumer-2 rejoined"
    );
    assert!(cause_of(
        "Removing pending sync members [\"m1\"] after the rebalance timeout",
        &client,
        &poll
    )
    .contains("rebalance timeout (max.poll.interval.ms)"));
    // Unknown texts are kept as they are.
    assert_eq!(cause_of("something else", &client, &poll), "something else");
}

#[test]
fn gaps_count_only_time_after_the_first_owner() {
    assert_eq!(
        gaps(&[(100, 200), (150, 300), (400, 500)], 600),
        (200, 2, 100)
    );
    assert_eq!(gaps(&[], 600), (0, 0, 0));
}

#[test]
fn violations_name_the_member_generation_and_commit() {
    // commit-validity: consumer-0, removed at 100 ms, commits in generation 1 and is accepted.
    let mut e = Events::default();
    e.state(0, "CompletingRebalance", 1)
        .completed(10, 1, &[(0, &[0, 1])])
        .state(10, "Stable", 1)
        .assigned(20, 0, 1, &[0, 1])
        .removed(100, 0, "session-timeout", 1)
        .state(100, "PreparingRebalance", 1)
        .state(110, "CompletingRebalance", 2)
        .completed(120, 2, &[(1, &[0, 1])])
        // revoke-before-reassign: consumer-1 takes events-0 while consumer-2 owns it.
        .assigned(125, 2, 2, &[0])
        .assigned(130, 1, 2, &[0, 1]);
    let mut h = H::default();
    h.commit(50, 0, 1, &[(0, 3)], OpType::Ok);
    h.commit(210, 0, 1, &[(0, 10)], OpType::Ok);
    let logs = BTreeMap::new();
    let checks = run_all(&CheckInput {
        history: &h.0,
        events: &e.0,
        final_logs: &logs,
        scenario: None,
        snapshots: &[],
    });
    let mut violations = checks.violations.clone();
    // at-least-once, shaped as the check writes it (its own test checks the fields).
    violations.push(Violation {
        check: "at-least-once".into(),
        message: "…".into(),
        details: json!({ "count": 1, "anomalies": [{
            "group": "g", "tp": "events-0", "final_committed": 10, "unprocessed_count": 2,
            "passed_by": { "process": "consumer-0", "member_id": "m0", "generation": 1,
                           "offset": 10, "sent": { "index": 2, "time_ms": 210 },
                           "acknowledged": { "index": 3, "time_ms": 215 } },
        }]}),
    });
    let g = &summarize(&h.0, &e.0, 1000)[0];
    let rows = violation_rows(&violations, g);
    let find = |check: &str| {
        rows.iter()
            .find(|r| r.check == check)
            .unwrap_or_else(|| panic!("no {check} row in {rows:#?}"))
    };
    let cv = rows
        .iter()
        .find(|r| r.check == "commit-validity" && r.commit.contains("offset 10"))
        .unwrap_or_else(|| panic!("no zombie commit row in {rows:#?}"));
    assert_eq!(cv.tp, "events-0");
    assert_eq!(cv.members, "consumer-0 (`m0`, generation 1)");
    assert_eq!(
        cv.commit,
        "sync commit of events-0 offset 10, sent t=210 ms, acknowledged t=215 ms"
    );
    let rb = find("revoke-before-reassign");
    assert_eq!(rb.tp, "events-0");
    assert!(rb.members.starts_with("from consumer-"), "{}", rb.members);
    assert!(
        rb.commit.starts_with(
            "last acknowledged commit before: offset 3 by consumer-0 (generation 1) at t=55 ms"
        ),
        "{}",
        rb.commit
    );
    let alo = find("at-least-once");
    assert_eq!(alo.members, "consumer-0 (`m0`, generation 1)");
    assert!(alo
        .commit
        .starts_with("commit of offset 10 (sent t=210 ms, acknowledged t=215 ms)"));
    // The rows appear in the Markdown section of a run.
    let mut out = String::new();
    let run = hand_run(h.0, e.0, violations);
    write_groups(&mut out, &run);
    for want in [
        "## Consumer groups",
        "### Group `g`",
        "**Who owned each partition**",
        "| events-0 | consumer-0 (`m0`) | 1 | 20 | end | owned at the end of the run |",
        "**Rebalances**",
        "**Committed offsets**",
        "| events-0 | 55–215 | consumer-0 (`m0`) | 1 | 3 → 10 | 2 |",
        "**Violations of the group checks**",
        "| `commit-validity` | events-0 | 215 | consumer-0 (`m0`, generation 1) |",
    ] {
        assert!(out.contains(want), "missing {want:?} in:\n{out}");
    }
}

/// A run of the commit-validity scenario's shape around `history` and `events`.
fn hand_run(
    history: Vec<HistoryEntry>,
    events: Vec<EventRecord>,
    violations: Vec<Violation>,
) -> RunResult {
    let scenario = crate::scenario::parse(
        r#"
        [scenario]
        name = "s"
        duration_ms = 1000
        seeds = [1]
        [cluster]
        brokers = 1
        [[topics]]
        name = "events"
        replication_factor = 1
        [[consumers]]
        topics = ["events"]
        "#,
        "s.toml",
    )
    .expect("valid scenario");
    let logs = BTreeMap::new();
    let mut checks = run_all(&CheckInput {
        history: &history,
        events: &events,
        final_logs: &logs,
        scenario: None,
        snapshots: &[],
    });
    checks.violations = violations;
    RunResult {
        scenario,
        output: crate::world::RunOutput {
            seed: 1,
            history,
            events,
            faults: Vec::new(),
            final_logs: logs,
            snapshots: Vec::new(),
            assignment: BTreeMap::new(),
            messages: 0,
            fsyncs: 0,
            fsync_us: 0,
            simulated_ms: 1000,
            wall_ms: 0,
            cpu_us: 0,
        },
        outcome: crate::run::Outcome::Violation,
        expected: false,
        reached: Default::default(),
        missed: Vec::new(),
        checks,
        history_hash: String::new(),
    }
}

#[test]
fn a_run_without_groups_has_no_section_and_the_markdown_and_html_show_one_with_them() {
    let run = hand_run(Vec::new(), Vec::new(), Vec::new());
    let mut out = String::new();
    write_groups(&mut out, &run);
    assert!(out.is_empty());
    assert!(!super::super::render(&run).contains("Consumer groups"));
    assert!(!super::super::html::render(&run, None).contains("id=\"groups\""));

    let e = run_events();
    let h = run_history();
    let mut run = hand_run(h.0, e.0, Vec::new());
    run.output.simulated_ms = 20_000;
    let md = super::super::render(&run);
    for want in [
        "## Consumer groups",
        "| events-2 | consumer-1 (`m1`) | 1 | 1010 | 5000 | process crashed (client-kill) |",
        "| events-0 | consumer-0 (`m0`) | 1–2 | 1010 | end | owned at the end of the run |",
        "| events-2 | 6510 | 1 | 6510 |",
        "| 11000 | 11500 | 500 | 2 | broker-1 | consumer-1 removed: no heartbeat within \
         session.timeout.ms, after the coordinator moved to broker-1 at t=8100 ms | Stable |",
        "| 8100 | 8100 | — | 1 | broker-1 | coordinator failover: broker-1 loaded the group",
        "| events-0 | 2005–3005 | consumer-0 (`m0`) | 1 | 5 → 9 | 2 |",
        "Commits not acknowledged: 1 `fail` (ILLEGAL_GENERATION)",
    ] {
        assert!(md.contains(want), "missing {want:?} in:\n{md}");
    }
    // Before the timeline.
    assert!(md.find("## Consumer groups") < md.find("## Timeline"));
    let html = super::super::html::render(&run, None);
    assert!(html.contains("<a href=\"#groups\">Groups</a>"));
    assert!(html.contains("data-group=\"g\" data-rebalances=\"2\""));
    assert!(html.contains(
        "data-tp=\"events-2\" data-member=\"m1\" data-generation=\"1\" data-from-ms=\"1010\" \
         data-to-ms=\"5000\""
    ));
    roxmltree::Document::parse_with_options(
        &html,
        roxmltree::ParsingOptions {
            allow_dtd: true,
            ..Default::default()
        },
    )
    .expect("well-formed");
}

#[test]
fn long_tables_are_capped() {
    let mut h = H::default();
    // 50 commits alternating between two members: 50 rows, capped.
    for i in 0..50 {
        h.commit(100 * i, (i % 2) as u32, 1, &[(0, i as i64)], OpType::Ok);
    }
    let e = run_events();
    let run = hand_run(h.0, e.0, Vec::new());
    let mut out = String::new();
    write_groups(&mut out, &run);
    assert!(
        out.contains(&format!("... {} more", 50 - COMMIT_ROWS_MAX)),
        "{out}"
    );
}

/// `commit-before-processing-loses`: "What happened to it" tells the commit-before-processing
/// story (the member's commit past records it had not processed, its crash, the successor from
/// the committed offset), not the partition's creation events.
#[test]
fn an_at_least_once_violation_is_told_as_the_commit_before_processing_story() {
    use crate::check::testkit::HistoryBuilder;
    use ksim_model::event::PolledRecord;
    let t0 = tp(0);
    let mut h = HistoryBuilder::default();
    for o in 0..6 {
        h.send(0, OpType::Ok, &t0, 100 + o as u64, o);
    }
    let push = |h: &mut HistoryBuilder, c: u32, op_type: OpType, op_id: u64, value: OpValue| {
        let index = h.entries.len() as u64;
        h.entries.push(HistoryEntry {
            index,
            time_ms: index * 10,
            process: NodeId::Consumer(c),
            op: ClientOp {
                op_type,
                op_id,
                value,
                error: None,
            },
        });
    };
    let process = |records: &[(i64, u64)]| OpValue::Process {
        group: Some("g".into()),
        records: records
            .iter()
            .map(|&(o, v)| PolledRecord {
                tp: tp(0),
                offset: Offset(o),
                value: v,
            })
            .collect(),
    };
    let commit = |c: u32, generation: i32, offset: i64| OpValue::Commit {
        group: "g".into(),
        mode: "before-processing".into(),
        offsets: vec![CommitOffset {
            tp: tp(0),
            offset: Offset(offset),
        }],
        coordinator: None,
        generation: Some(generation),
        member_id: Some(mid(c)),
    };
    h.poll(1, &t0, &[(0, 100), (1, 101), (2, 102)]);
    push(&mut h, 1, OpType::Invoke, 900, commit(1, 1, 3));
    push(&mut h, 1, OpType::Ok, 900, commit(1, 1, 3));
    push(
        &mut h,
        1,
        OpType::Invoke,
        901,
        process(&[(0, 100), (1, 101), (2, 102)]),
    );
    push(
        &mut h,
        1,
        OpType::Ok,
        901,
        process(&[(0, 100), (1, 101), (2, 102)]),
    );
    h.poll(1, &t0, &[(3, 103), (4, 104)]); // ok at t=190
    push(&mut h, 1, OpType::Invoke, 902, commit(1, 1, 5)); // t=200
    push(&mut h, 1, OpType::Ok, 902, commit(1, 1, 5)); // t=210
    push(
        &mut h,
        1,
        OpType::Invoke,
        903,
        process(&[(3, 103), (4, 104)]),
    ); // t=220, never done
    h.poll(0, &t0, &[(5, 105)]); // ok at t=240
    push(&mut h, 0, OpType::Invoke, 904, process(&[(5, 105)]));
    push(&mut h, 0, OpType::Ok, 904, process(&[(5, 105)]));
    let mut e = Events::default();
    e.assigned(5, 1, 1, &[0]);
    e.killed(225, 1);
    e.removed(226, 1, "session-timeout", 1);
    e.assigned(228, 0, 2, &[0]);
    let logs = BTreeMap::new();
    let checks = run_all(&CheckInput {
        history: &h.entries,
        events: &e.0,
        final_logs: &logs,
        scenario: None,
        snapshots: &[],
    });
    let v: Vec<Violation> = checks
        .violations
        .into_iter()
        .filter(|v| v.check == "at-least-once")
        .collect();
    assert_eq!(v.len(), 1, "{v:?}");
    let run = hand_run(h.entries, e.0, v);
    let md = super::super::render(&run);
    let story = &md[md.find("## What happened to it").expect("section")..];
    for want in [
        "consumer-1's `poll()` at t=190 ms returned events-0 from offset 3 on.",
        "**consumer-1** (member `m1`, generation 1) **committed offset 5** of events-0 (sent \
         at t=200 ms, acknowledged at t=210 ms), past 2 records it had not processed (offsets \
         3–4): it committed them before processing them (it started processing at t=220 ms).",
        "At t=225 ms **consumer-1 was killed** (`client-kill`); its processing of those \
         records never finished",
        "At t=228 ms **consumer-0 (member `m0`, generation 2) took events-0** and started from \
         the group's committed offset; its first poll of events-0 started at offset 5.",
        "So nobody ever processed offsets 3–4",
    ] {
        assert!(story.contains(want), "missing {want:?} in:\n{story}");
    }
    assert!(!story.contains("recovered its logs"), "{story}");
}

/// The heartbeat thread's LeaveGroup is no exception of poll(); a partition naming a client
/// cuts only the links between its groups.
#[test]
fn leave_group_and_client_partitions_are_worded_as_what_happened() {
    let leave = |message: &str| {
        describe_event(&Event::ConsumerError {
            tp: tp(-1),
            exception: "LeaveGroup".into(),
            message: message.into(),
        })
    };
    let poll = leave(
        "Member sending LeaveGroup request to coordinator due to consumer poll timeout has expired",
    );
    assert!(
        poll.starts_with(
            "the heartbeat thread left the group because poll() was not called within \
             max.poll.interval.ms"
        ),
        "{poll}"
    );
    assert!(!poll.contains("threw"), "{poll}");
    let close = leave(
        "Member sending LeaveGroup request to coordinator due to the consumer is being closed",
    );
    assert!(
        close.starts_with("consumer left the group as the application closed it"),
        "{close}"
    );
    let cut = describe_fault_event(&Event::Fault {
        action: "partition".into(),
        nodes: vec!["consumer-2".into(), "broker-2".into()],
        source: "schedule".into(),
    });
    assert_eq!(
        cut,
        "cut the links between {consumer-2} and {broker-2} (both ways, and only those: every \
         node keeps its links to nodes outside the other groups; scripted fault)"
    );
    // A partition of cluster nodes keeps its words.
    let brokers = describe_fault_event(&Event::Fault {
        action: "partition".into(),
        nodes: vec!["zk,broker-0".into(), "broker-1,broker-2".into()],
        source: "random".into(),
    });
    assert!(
        brokers.starts_with("partitioned the network into {zk, broker-0} / {broker-1, broker-2}"),
        "{brokers}"
    );
}
