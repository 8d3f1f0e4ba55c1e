//! `reach`: what a scenario's runs must get to, so that an `ok` cannot pass vacuously.
//!
//! A scenario exists to put the cluster through something: a leader election, an ISR shrink, a
//! truncation, retention deleting records nobody read yet. A run whose seed never got there
//! proves nothing about it, however clean its checks. Every scenario therefore declares, under
//! `[scenario]`, `reach = ["leader-election", "isr-shrink", ...]`; after a run, each item is
//! counted from the events and the history, and a run that reached none of one item is **off
//! its expectation** even when every check passed: `ksim run` exits 1 and names what was
//! missed, the pinned-seed test fails with the same message, and `ksim explore` counts such
//! seeds apart from violations.
//!
//! An item is one of:
//! * an **event kind** as `events.jsonl` spells it (`truncated`, `log-cleaned`,
//!   `consumer-position-reset`, ...; the list is [`Event::KINDS`]): at least one such event;
//! * a **probe** from [`PROBES`] or [`crate::reach_txn::TXN_READ_PROBES`], a named property
//!   of the run computed from several events
//!   (`leader-election`, `isr-shrink`, `acked-record-removed-by-retention`, ...);
//! * `fault:ACTION` with a fault action of SCENARIOS.md (`fault:kill`, `fault:partition`,
//!   ...): the nemesis or the script carried out at least one such fault.
//!
//! Sources: stateright's `Sometimes` properties (a state that must be reached at least once),
//! FoundationDB's `CODE_PROBE` (a rare path marked so a test can demand it was taken), Iggy's
//! "min commits" gates (see ../shared/STYLE.md).

use crate::check::{Removed, RemovedBy};
use crate::history::{EventRecord, HistoryEntry};
use ksim_model::event::{Event, OpType, OpValue};
use ksim_model::types::{BrokerId, LeaderEpoch, NodeId, TopicPartition};
use std::collections::{BTreeMap, BTreeSet};

/// A named probe: a property of a run that no single event kind states.
pub struct Probe {
    /// The name a scenario's `reach` uses.
    pub name: &'static str,
    /// What reaching it means, one line, for the report and `ksim run`'s message.
    pub meaning: &'static str,
}

/// Every probe a scenario's `reach` may name, in the order reports list them.
pub const PROBES: &[Probe] = &[
    Probe {
        name: "nemesis-fault",
        meaning: "the nemesis or the script injected a fault before the heal phase (not counting heals, resumes and restarts)",
    },
    Probe {
        name: "leader-election",
        meaning: "the controller moved the leadership of an existing partition to a new leader epoch",
    },
    Probe {
        name: "leader-change",
        meaning: "an existing partition got a leader other than the one it had",
    },
    Probe {
        name: "unclean-election",
        meaning: "the controller elected a replica outside the ISR (unclean.leader.election.enable)",
    },
    Probe {
        name: "offline-partition",
        meaning: "a partition was left without a leader",
    },
    Probe {
        name: "isr-shrink",
        meaning: "a partition's ISR, as the controller stored it, lost a member",
    },
    Probe {
        name: "isr-expand",
        meaning: "a partition's ISR, as the controller stored it, gained a member back",
    },
    Probe {
        name: "truncation",
        meaning: "a replica truncated its log, removing at least one record",
    },
    Probe {
        name: "controller-failover",
        meaning: "a second controller was elected",
    },
    Probe {
        name: "acked-record",
        meaning: "a producer had a record acknowledged",
    },
    Probe {
        name: "failed-send",
        meaning: "a producer's send completed with an error (fail)",
    },
    Probe {
        name: "indeterminate-send",
        meaning: "a producer's send ended with an unknown outcome (info: timed out or never answered)",
    },
    Probe {
        name: "consumer-read",
        meaning: "a consumer polled at least one record",
    },
    Probe {
        name: "consumer-seek",
        meaning: "a consumer seeked to an offset",
    },
    Probe {
        name: "produce-refused-not-enough-replicas",
        meaning: "a leader refused a produce with NOT_ENOUGH_REPLICAS (ISR below min.insync.replicas)",
    },
    Probe {
        name: "acked-record-removed-by-retention",
        meaning: "an acknowledged record fell below a log start offset that retention set",
    },
    Probe {
        name: "unread-record-removed-by-retention",
        meaning: "retention deleted an acknowledged record before any consumer read it",
    },
    Probe {
        name: "acked-record-removed-by-compaction",
        meaning: "the cleaner removed an acknowledged record superseded by a later one with the same key",
    },
    Probe {
        name: "offset-commit-acked",
        meaning: "a consumer's offset commit was acknowledged by its group coordinator",
    },
    Probe {
        name: "offset-commit-coordinator-moved",
        meaning: "a group's offset commits were acknowledged by two different coordinators (its `__consumer_offsets` partition changed leader between them)",
    },
    Probe {
        name: "member-left-group",
        meaning: "a group coordinator removed a member on its LeaveGroup (a clean close, or max.poll.interval.ms exceeded)",
    },
    Probe {
        name: "restart-kept-generation",
        meaning: "a consumer process that crashed and started again was assigned partitions in the generation it had before the crash: the coordinator ran no rebalance for it (a static member, KIP-345)",
    },
    Probe {
        name: "offsets-fetched-after-restart",
        meaning: "a consumer process that crashed and started again read its group's committed offset back (an offset fetch that returned one)",
    },
    Probe {
        name: "record-processed-twice",
        meaning: "a consumer group processed a record again (an `ok` `process` operation listed a record an earlier one of the same group had processed): at-least-once's duplicates",
    },
    Probe {
        name: "offset-commit-fenced",
        meaning: "a group coordinator refused a member's offset commit as stale (ILLEGAL_GENERATION, UNKNOWN_MEMBER_ID or FENCED_INSTANCE_ID)",
    },
    Probe {
        name: "member-left-on-poll-timeout",
        meaning: "a member's heartbeat thread left the group because the application had not called poll() within max.poll.interval.ms",
    },
    Probe {
        name: "coordinator-killed-mid-rebalance",
        meaning: "a broker hosting a group's coordinator crashed (kill, power-fail, disk-loss or shutdown) while the group was PreparingRebalance or CompletingRebalance",
    },
    Probe {
        name: "zombie-processing",
        meaning: "a consumer started processing records of a partition that the group's latest assignment gave to another consumer (a removed member that does not know it yet)",
    },
    Probe {
        name: "aborted-record-read",
        meaning: "a client read a record of an aborted transaction (its transaction failed, or an ABORT marker ended it in its partition): by design under `isolation.level = read_uncommitted`, an `aborted-read` under read_committed",
    },
    Probe {
        name: "zombie-producer-resumed",
        meaning: "a transactional client resumed from a pause after an InitProducerId for another client with its `transactional.id` had completed since its own: a zombie instance, which Kafka's epoch fencing must stop",
    },
    Probe {
        name: "producer-fenced",
        meaning: "a transactional client learned that a newer instance of its `transactional.id` fenced it: a `txn` operation ended with ProducerFencedException (PRODUCER_FENCED from the coordinator, INVALID_PRODUCER_EPOCH from a partition)",
    },
    Probe {
        name: "late-end-txn-applied",
        meaning: "a transaction coordinator applied an EndTxn that its client had given up on (request.timeout.ms closed the connection) after the client's retry had already ended the transaction: the late request ended a later transaction of the same producer id and epoch (KAFKA-17754)",
    },
    Probe {
        name: "late-end-txn-refused",
        meaning: "an EndTxn that its client had given up on (request.timeout.ms closed the connection) reached the coordinator after the client's retry had ended the transaction, and changed nothing (PRODUCER_FENCED under KIP-890 part 2, or answered as a retry)",
    },
    Probe {
        name: "txn-coordinator-failover-mid-commit",
        meaning: "a broker coordinating a transaction in PrepareCommit (its commit decided, its markers not all written) crashed, and a coordinator that loaded the transaction log afterwards completed the commit (CompleteCommit)",
    },
    Probe {
        name: "processor-restarted",
        meaning: "a processor process (`[[processors]]`) that crashed was started again: with a `transactional.id` its initTransactions() fences its predecessor, and it rejoins its group",
    },
    Probe {
        name: "txn-committed-across-topics",
        meaning: "a committed transaction (an `ok` `txn` operation) had records acknowledged on partitions of two or more topics, and on each of those partitions the first transaction marker of its producer id after its records was a commit",
    },
];

/// The errors with which a group coordinator fences a stale member's OffsetCommit (Kafka's
/// `ClassicGroup.validateOffsetCommit`); the consumer logs them inside `CommitFailedException`
/// or `FencedInstanceIdException`.
const COMMIT_FENCING_ERRORS: &[&str] = &[
    "ILLEGAL_GENERATION",
    "UNKNOWN_MEMBER_ID",
    "FENCED_INSTANCE_ID",
];

/// Why a `reach` item is not one ksim knows, with the closest known item when one is near.
pub fn unknown_item(item: &str) -> Option<String> {
    if is_known(item) {
        return None;
    }
    let all = known_items();
    let nearest = all
        .iter()
        .map(|k| (strsim::levenshtein(item, k), k))
        .min()
        .filter(|(d, _)| *d <= 3)
        .map(|(_, k)| format!(" (did you mean `{k}`?)"))
        .unwrap_or_default();
    Some(format!(
        "unknown reach item `{item}`{nearest}: expected an event kind ({}), a probe ({}) or `fault:ACTION` with a fault action ({})",
        Event::KINDS.join(", "),
        all_probes().map(|p| p.name).collect::<Vec<_>>().join(", "),
        fault_actions().collect::<Vec<_>>().join(", ")
    ))
}

fn is_known(item: &str) -> bool {
    Event::KINDS.contains(&item)
        || all_probes().any(|p| p.name == item)
        || item
            .strip_prefix("fault:")
            .is_some_and(|a| fault_actions().any(|f| f == a))
}

/// Every probe: [`PROBES`], then those of [`crate::reach_txn`].
pub fn all_probes() -> impl Iterator<Item = &'static Probe> {
    PROBES
        .iter()
        .chain(crate::reach_txn::TXN_READ_PROBES.iter())
}

/// The `action` a fault event may have: the schedule's keys and the random-only client kinds.
fn fault_actions() -> impl Iterator<Item = &'static str> {
    crate::scenario::SUPPORTED_ACTIONS
        .iter()
        .chain(crate::scenario::RANDOM_ONLY_ACTIONS)
        .copied()
}

fn known_items() -> Vec<String> {
    Event::KINDS
        .iter()
        .map(|k| k.to_string())
        .chain(all_probes().map(|p| p.name.to_string()))
        .chain(fault_actions().map(|a| format!("fault:{a}")))
        .collect()
}

/// What `item` means, for messages: the probe's meaning, or a plain sentence for an event kind
/// or a fault.
pub fn meaning(item: &str) -> String {
    if let Some(p) = all_probes().find(|p| p.name == item) {
        return p.meaning.to_string();
    }
    if let Some(action) = item.strip_prefix("fault:") {
        return format!("a `{action}` fault was carried out");
    }
    format!("at least one `{item}` event")
}

/// How many times a run reached each item it reached at all: every event kind, every probe and
/// every `fault:ACTION` with a count above zero, by name.
pub fn reached(events: &[EventRecord], history: &[HistoryEntry]) -> BTreeMap<String, u64> {
    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    // (A name is allocated once, when first reached.)
    let mut bump = |name: &str| match counts.get_mut(name) {
        Some(n) => *n += 1,
        None => {
            counts.insert(name.to_string(), 1);
        }
    };
    // The controller's view of each partition: leader, leader epoch and ISR size.
    let mut partition: BTreeMap<&TopicPartition, (Option<BrokerId>, LeaderEpoch, usize)> =
        BTreeMap::new();
    let mut controllers = 0u64;
    for r in events {
        bump(r.event.kind());
        match &r.event {
            Event::PartitionStateChanged {
                tp,
                leader,
                leader_epoch,
                isr,
                reason,
                ..
            } => {
                if reason == "unclean-election" {
                    bump("unclean-election");
                }
                if let Some((old_leader, old_epoch, old_isr)) =
                    partition.insert(tp, (*leader, *leader_epoch, isr.len()))
                {
                    if leader.is_some() && *leader_epoch > old_epoch {
                        bump("leader-election");
                    }
                    if leader.is_some() && *leader != old_leader {
                        bump("leader-change");
                    }
                    if leader.is_none() && old_leader.is_some() {
                        bump("offline-partition");
                    }
                    if isr.len() < old_isr {
                        bump("isr-shrink");
                    }
                    if isr.len() > old_isr {
                        bump("isr-expand");
                    }
                }
            }
            Event::Truncated {
                from_offset,
                to_offset,
                ..
            } if to_offset < from_offset => bump("truncation"),
            Event::ControllerElected { .. } => {
                controllers += 1;
                if controllers >= 2 {
                    bump("controller-failover");
                }
            }
            Event::ProduceRejected {
                error: ksim_model::protocol::ErrorCode::NotEnoughReplicas,
                ..
            } => bump("produce-refused-not-enough-replicas"),
            Event::GroupMemberRemoved { reason, .. } if reason == "leave-group" => {
                bump("member-left-group")
            }
            Event::Fault {
                action,
                source,
                nodes,
                ..
            } => {
                bump(&format!("fault:{action}"));
                if action == "restart" && nodes.iter().any(|n| n.starts_with("processor-")) {
                    bump("processor-restarted");
                }
                if source != "heal-phase"
                    && !matches!(action.as_str(), "heal" | "resume" | "restart")
                {
                    bump("nemesis-fault");
                }
            }
            _ => {}
        }
    }
    // When each client process crashed (kill, client-kill, power-fail, disk-loss, shutdown).
    let mut crashed: BTreeMap<ksim_model::types::NodeId, u64> = BTreeMap::new();
    for r in events {
        if let Event::Fault { action, nodes, .. } = &r.event {
            if matches!(
                action.as_str(),
                "kill" | "client-kill" | "power-fail" | "disk-loss" | "shutdown"
            ) {
                for n in nodes.iter().filter_map(|n| NodeId::parse(n)) {
                    crashed.entry(n).or_insert(r.time_ms);
                }
            }
        }
    }
    restart_kept_generation(events, &mut bump);
    // Per group, the coordinator that acknowledged its latest commit.
    let mut acked_by: BTreeMap<&str, BrokerId> = BTreeMap::new();
    // Every value polled (sorted below, only if retention may have deleted one unread).
    let mut read: Vec<u64> = Vec::new();
    for e in history {
        match (&e.op.value, e.op.op_type) {
            (
                OpValue::Commit {
                    group,
                    coordinator: Some(b),
                    ..
                },
                OpType::Ok,
            ) => {
                bump("offset-commit-acked");
                if acked_by
                    .insert(group, *b)
                    .is_some_and(|before| before != *b)
                {
                    bump("offset-commit-coordinator-moved");
                }
            }
            (OpValue::OffsetFetch { offsets, .. }, OpType::Ok) => {
                let restarted = crashed.get(&e.process).is_some_and(|t| *t <= e.time_ms);
                if restarted && offsets.iter().any(|o| o.committed.is_some()) {
                    bump("offsets-fetched-after-restart");
                }
            }
            (OpValue::Send { .. }, OpType::Ok) => bump("acked-record"),
            (OpValue::Send { .. }, OpType::Fail) => bump("failed-send"),
            (OpValue::Send { .. }, OpType::Info) => bump("indeterminate-send"),
            (OpValue::Seek { .. }, OpType::Ok) => bump("consumer-seek"),
            (OpValue::Txn { .. }, OpType::Fail | OpType::Info)
                if e.op
                    .error
                    .as_deref()
                    .is_some_and(|m| m.starts_with("ProducerFencedException")) =>
            {
                bump("producer-fenced")
            }
            (OpValue::Poll { records }, OpType::Ok) => {
                if !records.is_empty() {
                    bump("consumer-read");
                }
                read.extend(records.iter().map(|rec| rec.value));
            }
            _ => {}
        }
    }
    group_probes(events, history, &mut bump);
    let reads = crate::check::txn::all_reads(history);
    for _ in 0..crate::check::txn::count_aborted_reads(history, events, &reads) {
        bump("aborted-record-read");
    }
    zombie_producer_resumed(events, &mut bump);
    late_end_txn(events, &mut bump);
    txn_coordinator_failover_mid_commit(events, &mut bump);
    txn_committed_across_topics(events, history, &mut bump);
    crate::reach_txn::txn_read_probes(events, history, &mut bump);
    let removed = Removed::from_events(events);
    // Only retention and the cleaner excuse records: nothing to count without them.
    if !removed.is_empty() {
        read.sort_unstable();
        read.dedup();
        for e in history {
            if let (
                OpType::Ok,
                OpValue::Send {
                    tp,
                    value,
                    offset: Some(o),
                    ..
                },
            ) = (e.op.op_type, &e.op.value)
            {
                match removed.excuses(tp, *o) {
                    Some(RemovedBy::Retention) => {
                        bump("acked-record-removed-by-retention");
                        if read.binary_search(value).is_err() {
                            bump("unread-record-removed-by-retention");
                        }
                    }
                    Some(RemovedBy::Compaction) => bump("acked-record-removed-by-compaction"),
                    None => {}
                }
            }
        }
    }
    counts
}

/// The `zombie-producer-resumed` probe: per client, the `transactional.id` and time of its
/// latest completed InitProducerId (`txn-state-changed`, reason `init-producer-id`, with the
/// client it answered); a `resume` fault naming it counts when another client's InitProducerId
/// for that id completed after its own.
fn zombie_producer_resumed(events: &[EventRecord], bump: &mut impl FnMut(&str)) {
    // Per client: (transactional id, time) of its latest InitProducerId.
    let mut own: BTreeMap<&str, (&str, u64)> = BTreeMap::new();
    // Per transactional id: (client, time) of its latest InitProducerId.
    let mut latest: BTreeMap<&str, (&str, u64)> = BTreeMap::new();
    for r in events {
        match &r.event {
            Event::TxnStateChanged {
                transactional_id,
                reason,
                client: Some(client),
                ..
            } if reason == "init-producer-id" => {
                own.insert(client, (transactional_id, r.time_ms));
                latest.insert(transactional_id, (client, r.time_ms));
            }
            Event::Fault { action, nodes, .. } if action == "resume" => {
                for n in nodes {
                    let Some((tid, at)) = own.get(n.as_str()) else {
                        continue;
                    };
                    if latest.get(tid).is_some_and(|(c, t)| c != n && t > at) {
                        bump("zombie-producer-resumed");
                    }
                }
            }
            _ => {}
        }
    }
}

/// The `late-end-txn-applied` and `late-end-txn-refused` probes. An EndTxn is *abandoned* when
/// its client's `request-timed-out` names it (api `EndTxn`, the client's node, the request's
/// correlation id). It is *late* when it reaches the coordinator after another EndTxn of the
/// same client ended a transaction (`txn-state-changed`, reason `end-txn`, with that client and
/// a different correlation id) since it was abandoned: the retry finished the transaction
/// first. A late EndTxn that moves a transaction (`txn-state-changed` with its correlation id)
/// counts as applied; one the coordinator answers without a transition (`end-txn-answered`)
/// as refused.
fn late_end_txn(events: &[EventRecord], bump: &mut impl FnMut(&str)) {
    // (client, correlation id) of each abandoned EndTxn → when it was abandoned.
    let mut abandoned: BTreeMap<(String, u64), u64> = BTreeMap::new();
    // Per client: (time, correlation id) of the latest transaction its EndTxn ended.
    let mut last_end: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    let late = |abandoned: &BTreeMap<(String, u64), u64>,
                last_end: &BTreeMap<String, (u64, u64)>,
                client: &str,
                corr: u64| {
        abandoned
            .get(&(client.to_string(), corr))
            .is_some_and(|at| {
                last_end
                    .get(client)
                    .is_some_and(|(t, c)| *t >= *at && *c != corr)
            })
    };
    for r in events {
        match &r.event {
            Event::RequestTimedOut { api, corr, .. } if api == "EndTxn" => {
                abandoned.insert((r.node.to_string(), corr.0), r.time_ms);
            }
            Event::TxnStateChanged {
                reason,
                client: Some(client),
                corr: Some(corr),
                ..
            } if reason == "end-txn" => {
                if late(&abandoned, &last_end, client, corr.0) {
                    bump("late-end-txn-applied");
                }
                last_end.insert(client.clone(), (r.time_ms, corr.0));
            }
            Event::EndTxnAnswered { client, corr, .. } => {
                if late(&abandoned, &last_end, client, corr.0) {
                    bump("late-end-txn-refused");
                }
            }
            _ => {}
        }
    }
}

/// The `txn-coordinator-failover-mid-commit` probe: per `transactional.id`, its latest state
/// and the broker that wrote it; a crash (`kill`, `power-fail`, `disk-loss`, `shutdown`) of
/// that broker while the state is PrepareCommit leaves the commit pending; it counts once a
/// coordinator has loaded the id again (`loaded`) and then written CompleteCommit.
fn txn_coordinator_failover_mid_commit(events: &[EventRecord], bump: &mut impl FnMut(&str)) {
    // Per transactional id: (state, broker) of its latest transition.
    let mut state: BTreeMap<&str, (&str, BrokerId)> = BTreeMap::new();
    // Per transactional id whose coordinator crashed in PrepareCommit: whether it was loaded
    // again since.
    let mut pending: BTreeMap<&str, bool> = BTreeMap::new();
    for r in events {
        match &r.event {
            Event::TxnStateChanged {
                transactional_id,
                broker,
                to,
                reason,
                ..
            } => {
                let tid = transactional_id.as_str();
                if let Some(loaded) = pending.get_mut(tid) {
                    if reason == "loaded" {
                        *loaded = true;
                    } else if to == "CompleteCommit" && *loaded {
                        pending.remove(tid);
                        bump("txn-coordinator-failover-mid-commit");
                    }
                }
                state.insert(tid, (to, *broker));
            }
            Event::Fault { action, nodes, .. }
                if matches!(
                    action.as_str(),
                    "kill" | "power-fail" | "disk-loss" | "shutdown"
                ) =>
            {
                for (tid, (s, b)) in &state {
                    if *s == "PrepareCommit"
                        && nodes.iter().any(|n| *n == format!("broker-{}", b.0))
                    {
                        pending.insert(tid, false);
                    }
                }
            }
            _ => {}
        }
    }
}

/// The `restart-kept-generation` probe: per consumer process, the generation of its last
/// `partitions-assigned` before a crash (`kill`, `client-kill`, `power-fail`, `disk-loss`,
/// `shutdown`); once a `restart` names it, its first `partitions-assigned` counts if it names
/// that same generation (generations only grow, so the group ran no rebalance in between).
fn restart_kept_generation(events: &[EventRecord], bump: &mut impl FnMut(&str)) {
    use ksim_model::types::NodeId;
    // Per process: its latest generation, the one it had at its crash, and whether it has
    // restarted since and waits for its first assignment.
    let mut latest: BTreeMap<NodeId, i32> = BTreeMap::new();
    let mut at_crash: BTreeMap<NodeId, i32> = BTreeMap::new();
    let mut restarted: BTreeSet<NodeId> = BTreeSet::new();
    for r in events {
        match &r.event {
            Event::PartitionsAssigned { generation, .. } => {
                if restarted.remove(&r.node) && at_crash.remove(&r.node) == Some(*generation) {
                    bump("restart-kept-generation");
                }
                latest.insert(r.node, *generation);
            }
            Event::Fault { action, nodes, .. } => {
                for n in nodes.iter().filter_map(|n| NodeId::parse(n)) {
                    match action.as_str() {
                        "kill" | "client-kill" | "power-fail" | "disk-loss" | "shutdown" => {
                            restarted.remove(&n);
                            at_crash.remove(&n);
                            if let Some(g) = latest.remove(&n) {
                                at_crash.insert(n, g);
                            }
                        }
                        "restart" if at_crash.contains_key(&n) => {
                            restarted.insert(n);
                        }
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
}

/// The `txn-committed-across-topics` probe (a `[[producers]] topics` entry's transactions,
/// SCENARIOS.md "Transactions and exactly-once"): counts every `ok` `txn` operation with a
/// producer id whose acknowledged sends name two or more topics, and where, on every
/// partition it wrote, the first `txn-marker-written` of that producer id at an offset above
/// the transaction's last record there is a COMMIT: its markers landed on each topic. A marker
/// is matched by producer id and offset only (with `transaction.version = 1` one epoch runs
/// many transactions, so the epoch cannot tell them apart; the first marker after a
/// transaction's records on a partition is the one that ended it there).
fn txn_committed_across_topics(
    events: &[EventRecord],
    history: &[HistoryEntry],
    bump: &mut impl FnMut(&str),
) {
    use ksim_model::event::TxnMop;
    use ksim_model::types::{Offset, ProducerId};
    // Per (partition, producer id): the markers written, (offset, result), in offset order.
    let mut markers: BTreeMap<(&TopicPartition, ProducerId), BTreeMap<Offset, &str>> =
        BTreeMap::new();
    for r in events {
        if let Event::TxnMarkerWritten {
            tp,
            producer_id,
            offset,
            result,
            ..
        } = &r.event
        {
            markers
                .entry((tp, *producer_id))
                .or_default()
                .insert(*offset, result.as_str());
        }
    }
    for e in history {
        let (
            OpType::Ok,
            OpValue::Txn {
                producer_id: Some(pid),
                mops,
                ..
            },
        ) = (e.op.op_type, &e.op.value)
        else {
            continue;
        };
        // Per partition written: the offset of the transaction's last acknowledged record.
        let mut last: BTreeMap<&TopicPartition, Offset> = BTreeMap::new();
        for m in mops {
            if let TxnMop::Send {
                tp,
                offset: Some(o),
                ..
            } = m
            {
                let at = last.entry(tp).or_insert(*o);
                *at = (*at).max(*o);
            }
        }
        let topics: BTreeSet<&str> = last.keys().map(|tp| tp.topic.as_str()).collect();
        let committed_everywhere = last.iter().all(|(tp, o)| {
            markers
                .get(&(*tp, *pid))
                .and_then(|m| m.range(Offset(o.0 + 1)..).next())
                .is_some_and(|(_, result)| *result == "commit")
        });
        if topics.len() >= 2 && committed_everywhere {
            bump("txn-committed-across-topics");
        }
    }
}

/// The consumer-group probes: `record-processed-twice`, `offset-commit-fenced`,
/// `member-left-on-poll-timeout`, `coordinator-killed-mid-rebalance` and `zombie-processing`
/// (see [`PROBES`]). A group's state and coordinator are those of its latest
/// `group-state-changed`; its assignment that of its latest `group-assignment-completed`
/// strictly before a `process` operation started.
fn group_probes(events: &[EventRecord], history: &[HistoryEntry], bump: &mut impl FnMut(&str)) {
    // Per group: (coordinator broker, state) after its latest group-state-changed.
    let mut state: BTreeMap<&str, (BrokerId, &str)> = BTreeMap::new();
    // Per group: (time, partition -> client) of every stored assignment, in event order.
    let mut assignments: BTreeMap<&str, Vec<(u64, BTreeMap<&TopicPartition, &str>)>> =
        BTreeMap::new();
    for r in events {
        match &r.event {
            Event::GroupStateChanged {
                group, broker, to, ..
            } => {
                state.insert(group, (*broker, to));
            }
            Event::GroupAssignmentCompleted { group, members, .. } => {
                let owners = members
                    .iter()
                    .flat_map(|m| m.partitions.iter().map(|tp| (tp, m.client.as_str())))
                    .collect();
                assignments
                    .entry(group)
                    .or_default()
                    .push((r.time_ms, owners));
            }
            Event::Fault { action, nodes, .. }
                if matches!(
                    action.as_str(),
                    "kill" | "power-fail" | "disk-loss" | "shutdown"
                ) =>
            {
                let hit = state.values().any(|(b, s)| {
                    matches!(*s, "PreparingRebalance" | "CompletingRebalance")
                        && nodes.contains(&NodeId::Broker(*b).to_string())
                });
                if hit {
                    bump("coordinator-killed-mid-rebalance");
                }
            }
            Event::OffsetCommitFailed { error, .. }
                if COMMIT_FENCING_ERRORS.iter().any(|e| error.contains(e)) =>
            {
                bump("offset-commit-fenced")
            }
            // AbstractCoordinator's HeartbeatThread: "consumer poll timeout has expired".
            Event::ConsumerError {
                exception, message, ..
            } if exception == "LeaveGroup" && message.contains("poll timeout") => {
                bump("member-left-on-poll-timeout")
            }
            _ => {}
        }
    }
    let mut processed: BTreeMap<&str, BTreeSet<(&TopicPartition, i64)>> = BTreeMap::new();
    for e in history {
        let OpValue::Process {
            group: Some(group),
            records,
        } = &e.op.value
        else {
            continue;
        };
        match e.op.op_type {
            OpType::Invoke => {
                let latest = assignments.get(group.as_str()).and_then(|a| {
                    a.iter()
                        .rev()
                        .find(|(t, _)| *t < e.time_ms)
                        .map(|(_, owners)| owners)
                });
                let me = e.process.to_string();
                let elsewhere = latest.is_some_and(|owners| {
                    records.iter().any(|rec| {
                        owners
                            .get(&rec.tp)
                            .is_some_and(|owner| *owner != me.as_str())
                    })
                });
                if elsewhere {
                    bump("zombie-processing");
                }
            }
            OpType::Ok => {
                let seen = processed.entry(group).or_default();
                let mut again = false;
                for rec in records {
                    again |= !seen.insert((&rec.tp, rec.offset.0));
                }
                if again {
                    bump("record-processed-twice");
                }
            }
            _ => {}
        }
    }
}

/// The items of `reach` that `reached` does not contain, in the scenario's order.
pub fn missed(reach: &[String], reached: &BTreeMap<String, u64>) -> Vec<String> {
    reach
        .iter()
        .filter(|item| !reached.contains_key(item.as_str()))
        .cloned()
        .collect()
}

/// One line naming what a run missed, for `ksim run`, the pinned-seed test and `explore`:
/// `did not reach isr-shrink (a partition's ISR ... lost a member), truncation (...)`.
pub fn describe_missed(missed: &[String]) -> String {
    let parts: Vec<String> = missed
        .iter()
        .map(|m| format!("{m} ({})", meaning(m)))
        .collect();
    format!("did not reach {}", parts.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ksim_model::types::{ControllerEpoch, ZkVersion};

    fn tp() -> TopicPartition {
        TopicPartition::new("events", 0)
    }

    fn state(leader: Option<i32>, epoch: i32, isr: &[i32], reason: &str) -> EventRecord {
        EventRecord {
            time_ms: 0,
            node: NodeId::Broker(BrokerId(0)),
            event: Event::PartitionStateChanged {
                tp: tp(),
                leader: leader.map(BrokerId),
                leader_epoch: LeaderEpoch(epoch),
                isr: isr.iter().map(|&b| BrokerId(b)).collect(),
                controller_epoch: ControllerEpoch(1),
                partition_epoch: ZkVersion(0),
                reason: reason.into(),
                last_known_elr: vec![],
            },
        }
    }

    #[test]
    fn a_run_that_only_created_its_partitions_reaches_no_election_or_isr_change() {
        let events = vec![state(Some(0), 0, &[0, 1, 2], "new-partition")];
        let r = reached(&events, &[]);
        assert_eq!(r.get("partition-state-changed"), Some(&1));
        let reach: Vec<String> = ["leader-election", "isr-shrink", "isr-expand", "truncation"]
            .map(String::from)
            .to_vec();
        assert_eq!(missed(&reach, &r), reach);
        assert!(describe_missed(&missed(&reach, &r)).starts_with("did not reach leader-election ("));
    }

    #[test]
    fn a_shrink_then_an_election_then_an_expand_are_each_counted() {
        let events = vec![
            state(Some(0), 0, &[0, 1, 2], "new-partition"),
            state(Some(0), 0, &[0, 1], "isr-change"),
            state(Some(1), 1, &[1], "leader-election"),
            state(Some(1), 1, &[1, 2], "isr-change"),
            state(None, 2, &[1], "offline"),
            state(Some(2), 3, &[2], "unclean-election"),
        ];
        let r = reached(&events, &[]);
        assert_eq!(r.get("isr-shrink"), Some(&3));
        assert_eq!(r.get("isr-expand"), Some(&1));
        assert_eq!(r.get("leader-election"), Some(&2));
        assert_eq!(r.get("leader-change"), Some(&2));
        assert_eq!(r.get("offline-partition"), Some(&1));
        assert_eq!(r.get("unclean-election"), Some(&1));
        assert!(missed(&["isr-shrink".to_string()], &r).is_empty());
    }

    #[test]
    fn a_truncation_that_removed_nothing_is_not_a_truncation() {
        let mk = |from, to| EventRecord {
            time_ms: 0,
            node: NodeId::Broker(BrokerId(1)),
            event: Event::Truncated {
                tp: tp(),
                broker: BrokerId(1),
                from_offset: ksim_model::types::Offset(from),
                to_offset: ksim_model::types::Offset(to),
                reason: "diverging-epoch".into(),
            },
        };
        assert_eq!(reached(&[mk(5, 5)], &[]).get("truncation"), None);
        assert_eq!(reached(&[mk(7, 5)], &[]).get("truncation"), Some(&1));
    }

    #[test]
    fn every_event_kind_is_the_kind_events_jsonl_writes() {
        let sc = crate::scenario::load(std::path::Path::new("scenarios/default.toml")).unwrap();
        let out = crate::world::simulate(&sc, 1);
        let mut seen = BTreeSet::new();
        for r in &out.events {
            let json = serde_json::to_value(&r.event).expect("serializes");
            assert_eq!(json["kind"], r.event.kind(), "{json}");
            assert!(Event::KINDS.contains(&r.event.kind()));
            seen.insert(r.event.kind());
        }
        assert!(seen.len() >= 10, "only {seen:?}");
    }

    fn ev(time_ms: u64, node: NodeId, event: Event) -> EventRecord {
        EventRecord {
            time_ms,
            node,
            event,
        }
    }

    fn group_state(time_ms: u64, broker: i32, to: &str) -> EventRecord {
        ev(
            time_ms,
            NodeId::Broker(BrokerId(broker)),
            Event::GroupStateChanged {
                group: "g".into(),
                broker: BrokerId(broker),
                from: "Stable".into(),
                to: to.into(),
                generation: 1,
                reason: "test".into(),
            },
        )
    }

    fn kill(time_ms: u64, node: &str) -> EventRecord {
        ev(
            time_ms,
            NodeId::Zk,
            Event::Fault {
                action: "kill".into(),
                nodes: vec![node.into()],
                source: "schedule".into(),
            },
        )
    }

    /// Consumer `c`'s process operation of `offsets` of events-0: its invoke at `time_ms`, its
    /// `ok` 1 ms later.
    fn process(index: u64, time_ms: u64, c: u32, offsets: &[i64]) -> Vec<HistoryEntry> {
        let value = OpValue::Process {
            group: Some("g".into()),
            records: offsets
                .iter()
                .map(|&o| ksim_model::event::PolledRecord {
                    tp: tp(),
                    offset: ksim_model::types::Offset(o),
                    value: o as u64,
                })
                .collect(),
        };
        [OpType::Invoke, OpType::Ok]
            .into_iter()
            .enumerate()
            .map(|(i, op_type)| HistoryEntry {
                index: index + i as u64,
                time_ms: time_ms + i as u64,
                process: NodeId::Consumer(c),
                op: ksim_model::event::ClientOp {
                    op_type,
                    op_id: index,
                    value: value.clone(),
                    error: None,
                },
            })
            .collect()
    }

    #[test]
    fn a_coordinator_killed_while_stable_is_not_killed_mid_rebalance() {
        let stable = vec![group_state(0, 1, "Stable"), kill(10, "broker-1")];
        assert_eq!(
            reached(&stable, &[]).get("coordinator-killed-mid-rebalance"),
            None
        );
        let other = vec![
            group_state(0, 1, "PreparingRebalance"),
            kill(10, "broker-2"),
        ];
        assert_eq!(
            reached(&other, &[]).get("coordinator-killed-mid-rebalance"),
            None
        );
        for s in ["PreparingRebalance", "CompletingRebalance"] {
            let mid = vec![group_state(0, 1, s), kill(10, "broker-1")];
            assert_eq!(
                reached(&mid, &[]).get("coordinator-killed-mid-rebalance"),
                Some(&1),
                "{s}"
            );
        }
    }

    #[test]
    fn only_a_stale_members_refused_commit_is_fenced_and_only_a_poll_timeout_leave_counts() {
        let failed = |error: &str| {
            ev(
                0,
                NodeId::Consumer(0),
                Event::OffsetCommitFailed {
                    group: "g".into(),
                    mode: "sync".into(),
                    error: error.into(),
                    retry: false,
                },
            )
        };
        let r = reached(&[failed("NOT_COORDINATOR"), failed("request-timeout")], &[]);
        assert_eq!(r.get("offset-commit-fenced"), None);
        let r = reached(
            &[
                failed("CommitFailedException (ILLEGAL_GENERATION)"),
                failed("CommitFailedException (UNKNOWN_MEMBER_ID)"),
            ],
            &[],
        );
        assert_eq!(r.get("offset-commit-fenced"), Some(&2));
        let leave = |message: &str| {
            ev(
                0,
                NodeId::Consumer(0),
                Event::ConsumerError {
                    tp: tp(),
                    exception: "LeaveGroup".into(),
                    message: message.into(),
                },
            )
        };
        let r = reached(&[leave("Member sending LeaveGroup request to coordinator due to the consumer is being closed")], &[]);
        assert_eq!(r.get("member-left-on-poll-timeout"), None);
        let r = reached(&[leave("Member sending LeaveGroup request to coordinator due to consumer poll timeout has expired")], &[]);
        assert_eq!(r.get("member-left-on-poll-timeout"), Some(&1));
    }

    #[test]
    fn processing_a_partition_assigned_elsewhere_is_zombie_processing_and_twice_is_counted() {
        let assigned_to = |time_ms: u64, client: &str| {
            ev(
                time_ms,
                NodeId::Broker(BrokerId(1)),
                Event::GroupAssignmentCompleted {
                    group: "g".into(),
                    broker: BrokerId(1),
                    generation: time_ms as i32,
                    protocol: "range".into(),
                    leader: "m".into(),
                    members: vec![ksim_model::event::MemberAssignment {
                        member_id: format!("{client}-m"),
                        group_instance_id: None,
                        client: client.into(),
                        partitions: vec![tp()],
                    }],
                },
            )
        };
        let events = vec![assigned_to(0, "consumer-0"), assigned_to(100, "consumer-1")];
        // consumer-0 processes 0..2 while it owns events-0, consumer-1 then 2..4: no zombie,
        // nothing twice.
        let mut h = process(0, 50, 0, &[0, 1]);
        h.extend(process(2, 150, 1, &[2, 3]));
        let r = reached(&events, &h);
        assert_eq!(r.get("zombie-processing"), None);
        assert_eq!(r.get("record-processed-twice"), None);
        // consumer-0 goes on processing events-0 after it moved to consumer-1, and consumer-1
        // processes offset 1 again.
        h.extend(process(4, 160, 0, &[4]));
        h.extend(process(6, 170, 1, &[1, 4]));
        let r = reached(&events, &h);
        assert_eq!(r.get("zombie-processing"), Some(&1));
        assert_eq!(r.get("record-processed-twice"), Some(&1));
    }

    #[test]
    fn unknown_items_are_refused_with_the_nearest_known_one() {
        assert!(unknown_item("isr-shrink").is_none());
        assert!(unknown_item("truncated").is_none());
        assert!(unknown_item("fault:kill").is_none());
        let e = unknown_item("isr-shrnk").expect("unknown");
        assert!(e.contains("did you mean `isr-shrink`?"), "{e}");
        assert!(unknown_item("fault:explode").is_some());
    }
    fn at(time_ms: u64, node: NodeId, event: Event) -> EventRecord {
        EventRecord {
            time_ms,
            node,
            event,
        }
    }

    fn assigned(generation: i32) -> Event {
        Event::PartitionsAssigned {
            group: "g".into(),
            member_id: "m".into(),
            generation,
            partitions: vec![tp()],
        }
    }

    fn fault(action: &str, node: &str) -> Event {
        Event::Fault {
            action: action.into(),
            nodes: vec![node.into()],
            source: "schedule".into(),
        }
    }

    /// A static member restarted within its session gets the generation it had: reached. A
    /// dynamic member's restart brings a new generation: not reached, and neither is a
    /// generation seen again without a crash and a restart in between.
    #[test]
    fn restart_kept_generation_needs_the_same_generation_after_a_crash_and_a_restart() {
        let c = NodeId::Consumer(1);
        let run = |after: i32, crash: &str| {
            let events = vec![
                at(1_000, c, assigned(3)),
                at(9_000, c, fault(crash, "consumer-1")),
                at(13_000, c, fault("restart", "consumer-1")),
                at(13_500, c, assigned(after)),
            ];
            reached(&events, &[])
                .get("restart-kept-generation")
                .copied()
        };
        assert_eq!(run(3, "kill"), Some(1));
        assert_eq!(run(3, "client-kill"), Some(1));
        assert_eq!(run(4, "kill"), None, "a rebalance ran");
        assert_eq!(run(3, "pause"), None, "no crash");
        let events = vec![at(1_000, c, assigned(3)), at(2_000, c, assigned(3))];
        assert!(!reached(&events, &[]).contains_key("restart-kept-generation"));
    }

    #[test]
    fn a_processor_restart_is_counted_and_a_consumer_restart_is_not() {
        let p = NodeId::Processor(0);
        let events = vec![
            at(1_000, p, fault("kill", "processor-0")),
            at(2_000, p, fault("restart", "processor-0")),
            at(3_000, p, fault("restart", "consumer-0")),
        ];
        assert_eq!(reached(&events, &[]).get("processor-restarted"), Some(&1));
        let events = vec![at(3_000, p, fault("restart", "consumer-0"))];
        assert!(!reached(&events, &[]).contains_key("processor-restarted"));
    }

    #[test]
    fn a_leave_group_removal_and_a_fenced_commit_are_counted_and_other_reasons_are_not() {
        let b = NodeId::Broker(BrokerId(0));
        let removed = |reason: &str| Event::GroupMemberRemoved {
            group: "g".into(),
            broker: BrokerId(0),
            member_id: "m".into(),
            reason: reason.into(),
            generation: 2,
        };
        let failed = |error: &str| Event::OffsetCommitFailed {
            group: "g".into(),
            mode: "sync".into(),
            error: error.into(),
            retry: false,
        };
        let events = vec![
            at(1, b, removed("session-timeout")),
            at(2, NodeId::Consumer(0), failed("NOT_COORDINATOR")),
        ];
        let r = reached(&events, &[]);
        assert!(!r.contains_key("member-left-group") && !r.contains_key("offset-commit-fenced"));
        let events = vec![
            at(1, b, removed("leave-group")),
            at(
                2,
                NodeId::Consumer(0),
                failed("CommitFailedException (ILLEGAL_GENERATION)"),
            ),
        ];
        let r = reached(&events, &[]);
        assert_eq!(r.get("member-left-group"), Some(&1));
        assert_eq!(r.get("offset-commit-fenced"), Some(&1));
    }

    #[test]
    fn a_record_in_two_ok_process_operations_of_a_group_is_reprocessed() {
        use ksim_model::event::{ClientOp, PolledRecord};
        use ksim_model::types::Offset;
        let op = |index: u64, process: u32, op_type: OpType, op_id: u64, value: u64| HistoryEntry {
            index,
            time_ms: index,
            process: NodeId::Consumer(process),
            op: ClientOp {
                op_type,
                op_id,
                value: OpValue::Process {
                    group: Some("g".into()),
                    records: vec![PolledRecord {
                        tp: tp(),
                        offset: Offset(value as i64),
                        value,
                    }],
                },
                error: None,
            },
        };
        // consumer-0 processed 7, then crashed while processing 8 (left open); consumer-1
        // processed 8: nothing twice.
        let mut history = vec![
            op(0, 0, OpType::Invoke, 1, 7),
            op(1, 0, OpType::Ok, 1, 7),
            op(2, 0, OpType::Invoke, 2, 8),
            op(3, 1, OpType::Invoke, 1, 8),
            op(4, 1, OpType::Ok, 1, 8),
        ];
        assert!(!reached(&[], &history).contains_key("record-processed-twice"));
        // consumer-1 processes 7 again.
        history.push(op(5, 1, OpType::Invoke, 2, 7));
        history.push(op(6, 1, OpType::Ok, 2, 7));
        assert_eq!(
            reached(&[], &history).get("record-processed-twice"),
            Some(&1)
        );
    }

    /// A `txn-state-changed` of tx-0 on `broker`, answering `client` if any.
    fn txn(time_ms: u64, broker: i32, to: &str, reason: &str, client: Option<&str>) -> EventRecord {
        ev(
            time_ms,
            NodeId::Broker(BrokerId(broker)),
            Event::TxnStateChanged {
                transactional_id: "tx-0".into(),
                broker: BrokerId(broker),
                producer_id: ksim_model::types::ProducerId(7),
                producer_epoch: ksim_model::types::ProducerEpoch(0),
                from: "Empty".into(),
                to: to.into(),
                partitions: vec![],
                reason: reason.into(),
                client: client.map(str::to_string),
                corr: None,
            },
        )
    }

    /// An `end-txn` transition of tx-0 for producer-0's EndTxn `corr`.
    fn end_txn_applied(time_ms: u64, corr: u64) -> EventRecord {
        let mut r = txn(time_ms, 2, "PrepareAbort", "end-txn", Some("producer-0"));
        if let Event::TxnStateChanged { corr: c, from, .. } = &mut r.event {
            *c = Some(ksim_model::types::CorrelationId(corr));
            *from = "Ongoing".into();
        }
        r
    }

    /// producer-0's EndTxn `corr` timed out: it closed its connection to broker-2.
    fn end_txn_timed_out(time_ms: u64, corr: u64) -> EventRecord {
        ev(
            time_ms,
            NodeId::Producer(0),
            Event::RequestTimedOut {
                broker: BrokerId(2),
                api: "EndTxn".into(),
                corr: ksim_model::types::CorrelationId(corr),
            },
        )
    }

    /// The coordinator answered producer-0's EndTxn `corr` with `error`, changing nothing.
    fn end_txn_answered(time_ms: u64, corr: u64, error: &str) -> EventRecord {
        ev(
            time_ms,
            NodeId::Broker(BrokerId(2)),
            Event::EndTxnAnswered {
                transactional_id: "tx-0".into(),
                broker: BrokerId(2),
                client: "producer-0".into(),
                corr: ksim_model::types::CorrelationId(corr),
                producer_id: ksim_model::types::ProducerId(7),
                producer_epoch: ksim_model::types::ProducerEpoch(0),
                result: "abort".into(),
                error: error.into(),
            },
        )
    }

    #[test]
    fn an_abandoned_end_txn_applied_after_its_retry_is_late() {
        // The first attempt (5) arrives before its retry (6): it simply ended its own
        // transaction, and the retry is answered as a retry. Nothing late.
        let events = vec![
            end_txn_timed_out(1, 5),
            end_txn_applied(2, 5),
            end_txn_answered(3, 6, "NONE"),
        ];
        let r = reached(&events, &[]);
        assert!(!r.contains_key("late-end-txn-applied"), "{r:?}");
        assert!(!r.contains_key("late-end-txn-refused"), "{r:?}");
        // The retry (6) ends the transaction first; the abandoned request (5) then ends the
        // next one (KAFKA-17754).
        let events = vec![
            end_txn_timed_out(1, 5),
            end_txn_applied(2, 6),
            end_txn_applied(3, 5),
        ];
        assert_eq!(reached(&events, &[]).get("late-end-txn-applied"), Some(&1));
        // An end before the request was abandoned does not make it late.
        let events = vec![
            end_txn_applied(1, 4),
            end_txn_timed_out(2, 5),
            end_txn_applied(3, 5),
        ];
        assert!(!reached(&events, &[]).contains_key("late-end-txn-applied"));
    }

    #[test]
    fn an_abandoned_end_txn_refused_after_its_retry_is_late_and_refused() {
        let events = vec![
            end_txn_timed_out(1, 5),
            end_txn_applied(2, 6),
            end_txn_answered(3, 5, "PRODUCER_FENCED"),
        ];
        let r = reached(&events, &[]);
        assert_eq!(r.get("late-end-txn-refused"), Some(&1));
        assert!(!r.contains_key("late-end-txn-applied"));
        // Another client's late request is not producer-0's.
        let mut other = end_txn_answered(3, 5, "PRODUCER_FENCED");
        if let Event::EndTxnAnswered { client, .. } = &mut other.event {
            *client = "producer-1".into();
        }
        let events = vec![end_txn_timed_out(1, 5), end_txn_applied(2, 6), other];
        assert!(!reached(&events, &[]).contains_key("late-end-txn-refused"));
    }

    fn fault_at(time_ms: u64, action: &str, node: &str) -> EventRecord {
        ev(
            time_ms,
            NodeId::Zk,
            Event::Fault {
                action: action.into(),
                nodes: vec![node.into()],
                source: "schedule".into(),
            },
        )
    }

    #[test]
    fn a_client_resumed_after_another_instance_initialised_is_a_zombie() {
        let init = |t, c| txn(t, 0, "Empty", "init-producer-id", Some(c));
        // producer-1 initialised before producer-0: producer-0 is the current instance.
        let events = vec![
            init(1, "producer-1"),
            init(2, "producer-0"),
            fault_at(3, "resume", "producer-0"),
        ];
        assert!(!reached(&events, &[]).contains_key("zombie-producer-resumed"));
        let events = vec![
            init(1, "producer-0"),
            init(2, "producer-1"),
            fault_at(3, "resume", "producer-1"),
            fault_at(4, "resume", "producer-0"),
        ];
        assert_eq!(
            reached(&events, &[]).get("zombie-producer-resumed"),
            Some(&1)
        );
    }

    #[test]
    fn a_commit_completed_by_the_next_coordinator_after_a_crash_in_prepare_commit() {
        let prepare = txn(1, 1, "PrepareCommit", "end-txn", Some("producer-0"));
        let loaded = txn(5, 2, "PrepareCommit", "loaded", None);
        let complete = txn(6, 2, "CompleteCommit", "markers-written", None);
        // The old coordinator completed the commit before it was killed: no window.
        let early = txn(2, 1, "CompleteCommit", "markers-written", None);
        let events = vec![
            prepare.clone(),
            early,
            fault_at(3, "kill", "broker-1"),
            loaded.clone(),
            complete.clone(),
        ];
        assert!(!reached(&events, &[]).contains_key("txn-coordinator-failover-mid-commit"));
        // Another broker was killed: no window either.
        let events = vec![
            prepare.clone(),
            fault_at(3, "kill", "broker-0"),
            loaded.clone(),
            complete.clone(),
        ];
        assert!(!reached(&events, &[]).contains_key("txn-coordinator-failover-mid-commit"));
        let events = vec![prepare, fault_at(3, "kill", "broker-1"), loaded, complete];
        assert_eq!(
            reached(&events, &[]).get("txn-coordinator-failover-mid-commit"),
            Some(&1)
        );
    }

    #[test]
    fn a_poll_of_an_aborted_transactions_record_is_an_aborted_record_read() {
        use crate::check::testkit::{tp as ctp, tsend, HistoryBuilder};
        let mut h = HistoryBuilder::default();
        h.txn(0, OpType::Fail, (7, 0), vec![tsend(&ctp(0), 1, 0)]);
        h.txn(0, OpType::Ok, (7, 0), vec![tsend(&ctp(0), 2, 2)]);
        h.poll(0, &ctp(0), &[(2, 2)]);
        assert!(!reached(&[], &h.entries).contains_key("aborted-record-read"));
        h.poll(0, &ctp(0), &[(0, 1)]);
        assert_eq!(
            reached(&[], &h.entries).get("aborted-record-read"),
            Some(&1)
        );
        // The failed transaction's instance had been fenced.
        assert!(!reached(&[], &h.entries).contains_key("producer-fenced"));
        assert_eq!(h.entries[1].op.op_type, OpType::Fail);
        h.entries[1].op.error =
            Some("ProducerFencedException: PRODUCER_FENCED (a newer instance)".into());
        assert_eq!(reached(&[], &h.entries).get("producer-fenced"), Some(&1));
    }

    #[test]
    fn a_committed_transaction_counts_across_topics_only_with_a_commit_marker_on_each() {
        use ksim_model::event::{ClientOp, TxnMop};
        use ksim_model::types::{Offset, ProducerEpoch, ProducerId};
        let send = |topic: &str, offset: i64| TxnMop::Send {
            tp: TopicPartition::new(topic, 0),
            key: None,
            value: offset as u64,
            offset: Some(Offset(offset)),
        };
        let txn = |op_type: OpType, mops: Vec<TxnMop>| HistoryEntry {
            index: 0,
            time_ms: 0,
            process: NodeId::Producer(0),
            op: ClientOp {
                op_type,
                op_id: 1,
                value: OpValue::Txn {
                    transactional_id: "tx-0".into(),
                    producer_id: Some(ProducerId(7)),
                    producer_epoch: Some(ProducerEpoch(0)),
                    mops,
                    group: None,
                    offsets: vec![],
                },
                error: None,
            },
        };
        let marker = |topic: &str, offset: i64, result: &str| {
            ev(
                10,
                NodeId::Broker(BrokerId(0)),
                Event::TxnMarkerWritten {
                    tp: TopicPartition::new(topic, 0),
                    broker: BrokerId(0),
                    producer_id: ProducerId(7),
                    producer_epoch: ProducerEpoch(0),
                    result: result.into(),
                    offset: Offset(offset),
                    coordinator_epoch: 0,
                },
            )
        };
        let both = vec![txn(OpType::Ok, vec![send("events", 3), send("audit", 5)])];
        let probe = "txn-committed-across-topics";
        let markers = vec![marker("events", 4, "commit"), marker("audit", 6, "commit")];
        assert_eq!(reached(&markers, &both).get(probe), Some(&1));
        // A marker missing on one topic, or the first one after the records an ABORT.
        assert_eq!(reached(&markers[..1], &both).get(probe), None);
        let aborted = vec![
            marker("events", 4, "commit"),
            marker("audit", 6, "abort"),
            marker("audit", 9, "commit"),
        ];
        assert_eq!(reached(&aborted, &both).get(probe), None);
        // One topic only, or a transaction that did not commit.
        let one = vec![txn(OpType::Ok, vec![send("events", 3)])];
        assert_eq!(reached(&markers, &one).get(probe), None);
        let failed = vec![txn(OpType::Fail, vec![send("events", 3), send("audit", 5)])];
        assert_eq!(reached(&markers, &failed).get(probe), None);
    }
}
