//! `liveness`: once the faults are healed, every partition takes writes again.
//!
//! **Definition.** A run's fault phase ends with a heal (the nemesis records it as a `fault`
//! event with source `heal-phase`): every network fault is undone, every paused process resumed
//! and every stopped process restarted. From then on producers keep offering records. For every
//! partition that producers offered records to after the heal, at least one of those records
//! must be acknowledged (`ok`) by the end of the run. A partition that accepts no write after
//! every fault is gone has lost its availability for good: no leader was elected, or the leader
//! never learned it leads, or clients never found it.
//!
//! **Source.** TigerBeetle's VOPR and Jepsen both end a run with a liveness phase in which a
//! core of healthy replicas must make progress; STYLE.md's "Eventually" property in stateright
//! terms. Safety checks alone pass vacuously on a cluster that stops answering: this check is
//! what makes such a run fail.
//!
//! **What is allowed.** Records offered before the heal may fail or stay unanswered. A
//! partition with no record offered after the heal is not judged. Recovery takes time Kafka
//! itself needs: a restarted broker registers only after its previous coordination-node session
//! expires (`zookeeper.session.timeout.ms`), so a scenario's `heal_ms` must leave room for that.
//! A run that injected faults but has no heal-phase event fails: without a heal nothing says
//! the cluster ever got the chance to recover, so the check would pass vacuously. A run with
//! neither faults nor a heal (a fault-free history) is not judged.
//!
//! **Consumer groups.** After the heal, every subscribe-mode group whose consumers still run
//! must also recover, by the end of the run (after the final drain, when producers have
//! stopped):
//! 1. the group is `Stable`: its coordinator's last state change (ClassicGroup's
//!    `transitionTo`) entered `Stable`. The coordinator is, of the brokers that still hold the
//!    group (their last change did not enter `Dead`), the one that loaded it last; a `Dead`
//!    written by a broker that no longer coordinates the group, or by a stale one that loaded
//!    and unloaded it meanwhile, does not count. Kafka promises that once every member
//!    heartbeats and rejoins within its timeouts, a rebalance completes (the join phase ends
//!    when every member rejoined or after the rebalance timeout, `max.poll.interval.ms`; the
//!    sync phase when the leader's assignment arrives or members that never sync are removed),
//!    so a group stuck in `PreparingRebalance` or `CompletingRebalance`, or left `Empty` or
//!    `Dead` while its consumers run, is not live;
//! 2. its lag is zero: every partition of the latest generation's assignment is owned, by its
//!    own account (`partitions-assigned`, see `group_view`), by a member of the current
//!    generation, and that member's position (one past the last record its `poll()` returned,
//!    or the committed offset it started from) reached the partition's final high watermark
//!    (Kafka's `records-lag` is 0): with producers stopped, a live group reads everything.
//!
//! A group is not judged when one of its members left it after the heal because its
//! application did not call `poll()` within `max.poll.interval.ms` (the consumer's LeaveGroup,
//! "consumer poll timeout has expired", KIP-62): Kafka's promise of a Stable group holds only
//! while every member polls within that interval, and an application that stays this slow may
//! keep the group rebalancing until the end; the check's notes say so.
//! A group is judged only when one of its consumers (a process that logged a commit, a
//! `process` or an OffsetFetch of the group, or a group event of its own) has a history
//! operation at or after the heal: a member closed for good, or crashed and never restarted,
//! does not make its group fail. **A paused or removed member**: the heal resumes every paused
//! process. A member the coordinator removed (session timeout, rebalance timeout) that has not
//! noticed yet still owns its partitions by its own account and may keep fetching and
//! processing them (Kafka fences a removed member's commits, not its fetches); such a member
//! does not count as the owner of a partition here, and its lag is not judged: the partition
//! must be owned by a member of the current generation. Whether the removed member rejoins is
//! not required either: Kafka lets the group go on without it, and it rejoins at its next
//! heartbeat (UNKNOWN_MEMBER_ID). A removal the coordinator never stored is undone when a
//! coordinator reloads the group from `__consumer_offsets` (see `group_view`): the member keeps
//! its member id, and once a stored generation lists it again it is a current member that owns
//! what it kept (cooperative-sticky's `onPartitionsAssigned` then names only new partitions).

use super::group_view::{GroupWalk, MemberView};
use super::lesson::{Lesson, Prevention};
use super::{violation, CheckInput, Checker, Violation};
use crate::history::{EventRecord, HistoryEntry};
use ksim_model::event::{Event, OpType, OpValue};
use ksim_model::types::{BrokerId, NodeId, Offset, TopicPartition};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};

/// See the module documentation.
pub struct Liveness;

impl Checker for Liveness {
    fn name(&self) -> &'static str {
        "liveness"
    }

    fn statement(&self) -> &'static str {
        "after every fault is healed, every partition serves reads and writes again"
    }

    fn lesson(&self) -> Lesson {
        Lesson {
            intro: "After every fault was healed and every node restarted, the cluster did not \
                     come back to serving every partition within the heal phase: a partition \
                     stayed without a leader, or the clients could not finish.",
            prevention: Prevention::Liveness,
        }
    }

    fn notes(&self, input: &CheckInput) -> Vec<String> {
        let mut notes = super::deleted_topics_notes(input.events, "writes");
        let heal = input.events.iter().find_map(|r| match &r.event {
            Event::Fault { source, .. } if source == "heal-phase" => Some(r.time_ms),
            _ => None,
        });
        if let Some(heal_ms) = heal {
            notes.extend(group_notes(input, heal_ms));
        }
        let extended = input.events.iter().find_map(|r| match &r.event {
            Event::HealPhaseExtended {
                heal_phase_end_ms,
                bound_from,
                ..
            } => Some((*heal_phase_end_ms, bound_from.clone())),
            _ => None,
        });
        if let (Some(heal_ms), Some((end_ms, from))) = (heal, extended) {
            let r = recovery(input.history, input.events, heal_ms);
            if r.unrecovered.is_empty() {
                let recovered_ms = r.recovered_at_ms.unwrap_or(end_ms);
                notes.push(format!(
                    "the cluster needed longer than the heal phase to recover: every partition took a write again only at t={recovered_ms} ms, {} ms after the heal at t={heal_ms} ms and after the heal phase ended at t={end_ms} ms; the run waited for it, within the longest recovery the configured timeouts explain ({from}). That is the timeouts at work, not a fault: raise `heal_ms` past {} ms to keep the wait inside the heal phase, or lower the timeouts",
                    recovered_ms - heal_ms,
                    recovered_ms - heal_ms
                ));
            }
        }
        notes
    }

    fn check(&self, input: &CheckInput) -> Vec<Violation> {
        let Some(heal_ms) = input
            .events
            .iter()
            .find(|r| matches!(&r.event, Event::Fault { source, .. } if source == "heal-phase"))
            .map(|r| r.time_ms)
        else {
            let faults: Vec<(u64, &str)> = input
                .events
                .iter()
                .filter_map(|r| match &r.event {
                    Event::Fault { action, .. } => Some((r.time_ms, action.as_str())),
                    _ => None,
                })
                .collect();
            let Some(&(first_ms, first_action)) = faults.first() else {
                return Vec::new();
            };
            let sentence = format!(
                "the run injected {} fault{} (the first a `{first_action}` at t={first_ms} ms) but never healed them, so nothing shows the cluster recovering; a run with faults needs a heal phase for liveness to be judged",
                faults.len(),
                if faults.len() == 1 { "" } else { "s" }
            );
            let anomaly = json!({ "faults": faults.len(), "first_fault_ms": first_ms });
            return violation(
                self.name(),
                None,
                vec![(sentence, anomaly)],
                serde_json::Map::new(),
            );
        };
        let end_ms = input
            .history
            .iter()
            .map(|e| e.time_ms)
            .chain(input.events.iter().map(|e| e.time_ms))
            .max()
            .unwrap_or(0);
        let extended = input.events.iter().find_map(|r| match &r.event {
            Event::HealPhaseExtended {
                heal_phase_end_ms,
                recovery_bound_ms,
                bound_from,
            } => Some((*heal_phase_end_ms, *recovery_bound_ms, bound_from.clone())),
            _ => None,
        });
        let mut anomalies = Vec::new();
        for u in unrecovered(input.history, input.events, heal_ms) {
            let tp = &u.tp;
            let n = u.offered;
            let last = match u.last_ok_ms {
                Some(t) => format!("its last acknowledged write was at t={t} ms"),
                None => "no write to it was ever acknowledged".to_string(),
            };
            let waited = match &extended {
                Some((_, bound, from)) => format!(
                    "; the run waited past the heal phase up to t={} ms, the longest recovery the configured timeouts explain ({bound} ms after the heal: {from}), so the delay is not explained by them",
                    heal_ms + bound
                ),
                None => String::new(),
            };
            let sentence = format!(
                "{tp} acknowledged none of the {n} records offered after the heal at t={heal_ms} ms (run end t={end_ms} ms); {last}{waited}"
            );
            anomalies.push((sentence, json!({ "tp": tp.to_string(), "offered_after_heal": n, "heal_ms": heal_ms, "last_ok_ms": u.last_ok_ms })));
        }
        anomalies.extend(group_anomalies(input, heal_ms, end_ms));
        violation(self.name(), None, anomalies, serde_json::Map::new())
    }
}

/// What the group part of the check reads off a run (see the module documentation).
struct GroupFacts {
    /// Per group, its last state: (coordinator, state, since ms).
    state: BTreeMap<String, (BrokerId, String, u64)>,
    /// Per group, its consumer processes.
    processes: BTreeMap<String, BTreeSet<NodeId>>,
    /// Processes with a history operation at or after the heal.
    active: BTreeSet<NodeId>,
    /// Per process, its first LeaveGroup at or after the heal sent because `poll()` was not
    /// called within `max.poll.interval.ms` (ms).
    poll_timeouts: BTreeMap<NodeId, u64>,
    /// The members' and coordinators' views at the end of the run.
    walk: GroupWalk,
}

impl GroupFacts {
    fn of(input: &CheckInput, heal_ms: u64) -> GroupFacts {
        let mut f = GroupFacts {
            state: BTreeMap::new(),
            processes: BTreeMap::new(),
            active: BTreeSet::new(),
            poll_timeouts: BTreeMap::new(),
            walk: GroupWalk::default(),
        };
        // Per group and broker: (last state, since ms, when it last loaded the group).
        let mut per_broker: BTreeMap<String, BTreeMap<BrokerId, (String, u64, u64)>> =
            BTreeMap::new();
        for r in input.events {
            f.walk.apply(r);
            match &r.event {
                Event::GroupStateChanged {
                    group,
                    broker,
                    from,
                    to,
                    ..
                } => {
                    let entry = per_broker
                        .entry(group.clone())
                        .or_default()
                        .entry(*broker)
                        .or_insert((String::new(), 0, 0));
                    if from == "Dead" {
                        entry.2 = r.time_ms;
                    }
                    entry.0 = to.clone();
                    entry.1 = r.time_ms;
                }
                Event::PartitionsAssigned { group, .. }
                | Event::PartitionsRevoked { group, .. }
                | Event::PartitionsLost { group, .. } => {
                    f.processes.entry(group.clone()).or_default().insert(r.node);
                }
                // The consumer's own account of a poll-timeout leave (Kafka's
                // AbstractCoordinator: "consumer poll timeout has expired").
                Event::ConsumerError {
                    exception, message, ..
                } if r.time_ms >= heal_ms
                    && exception == "LeaveGroup"
                    && message.contains("poll timeout") =>
                {
                    f.poll_timeouts.entry(r.node).or_insert(r.time_ms);
                }
                _ => {}
            }
        }
        // The group's state is its coordinator's: of the brokers still holding it (not Dead),
        // the one that loaded it last; a Dead written by a broker that no longer coordinates
        // the group, or by a stale one that loaded and unloaded it meanwhile, does not count.
        // When every broker let it go, the latest Dead.
        for (group, brokers) in per_broker {
            let holder = brokers
                .iter()
                .filter(|(_, (to, _, _))| to != "Dead")
                .max_by_key(|(b, (_, since, loaded))| (*loaded, *since, **b))
                .or_else(|| {
                    brokers
                        .iter()
                        .max_by_key(|(b, (_, since, _))| (*since, **b))
                });
            if let Some((b, (to, since, _))) = holder {
                f.state.insert(group, (*b, to.clone(), *since));
            }
        }
        for e in input.history {
            let group = match &e.op.value {
                OpValue::Commit { group, .. } | OpValue::OffsetFetch { group, .. } => Some(group),
                OpValue::Process {
                    group: Some(group), ..
                } => Some(group),
                _ => None,
            };
            if let Some(group) = group {
                f.processes
                    .entry(group.clone())
                    .or_default()
                    .insert(e.process);
            }
            if e.time_ms >= heal_ms {
                f.active.insert(e.process);
            }
        }
        f
    }

    /// The members of `group` that left it on a poll timeout after the heal, as
    /// `consumer-2 at t=31000 ms`.
    fn slow_members(&self, group: &str) -> Vec<String> {
        self.processes
            .get(group)
            .into_iter()
            .flatten()
            .filter_map(|n| {
                self.poll_timeouts
                    .get(n)
                    .map(|t| format!("{n} at t={t} ms"))
            })
            .collect()
    }
}

/// The notes of the groups not judged because a member broke `max.poll.interval.ms` after
/// the heal.
fn group_notes(input: &CheckInput, heal_ms: u64) -> Vec<String> {
    let f = GroupFacts::of(input, heal_ms);
    f.state
        .keys()
        .filter_map(|group| {
            let slow = f.slow_members(group);
            (!slow.is_empty()).then(|| {
                format!(
                    "group {group} was not judged for liveness: after the heal at t={heal_ms} ms \
                     its member {} did not call poll() within max.poll.interval.ms and left the \
                     group (\"consumer poll timeout has expired\"); Kafka promises a Stable \
                     group only while every member polls within max.poll.interval.ms (KIP-62), \
                     so with an application this slow the group may rebalance until the end",
                    slow.join(", ")
                )
            })
        })
        .collect()
}

/// The groups that did not recover after the heal at `heal_ms` (see the module
/// documentation, "Consumer groups"), as (sentence, data).
fn group_anomalies(input: &CheckInput, heal_ms: u64, end_ms: u64) -> Vec<(String, Value)> {
    let GroupFacts {
        state,
        processes,
        active,
        poll_timeouts,
        walk,
    } = GroupFacts::of(input, heal_ms);
    let hws = super::lag::final_high_watermarks(input);
    let positions = super::lag::final_positions(input);
    let deleted = super::deleted_topics(input.events);
    let mut anomalies = Vec::new();
    for (group, (broker, to, since)) in &state {
        let running: Vec<String> = processes
            .get(group)
            .into_iter()
            .flatten()
            .filter(|n| active.contains(n))
            .map(|n| n.to_string())
            .collect();
        let slow = processes
            .get(group)
            .is_some_and(|ns| ns.iter().any(|n| poll_timeouts.contains_key(n)));
        if running.is_empty() || slow {
            continue;
        }
        if to != "Stable" {
            let sentence = format!(
                "group {group} was {to} at the end of the run (t={end_ms} ms), not Stable: its \
                 coordinator broker-{} moved it there at t={since} ms, while {} of its consumers \
                 still ran after the heal at t={heal_ms} ms",
                broker.0,
                running.join(", ")
            );
            anomalies.push((
                sentence,
                json!({ "group": group, "state": to, "since_ms": since, "coordinator": broker.0,
                        "heal_ms": heal_ms, "running": running }),
            ));
            continue;
        }
        let Some(latest) = walk.groups.get(group).and_then(|g| g.latest.as_ref()) else {
            continue;
        };
        let assigned: BTreeSet<&TopicPartition> = latest
            .members
            .iter()
            .flat_map(|m| m.partitions.iter())
            .filter(|tp| !deleted.contains_key(tp.topic.as_str()))
            .collect();
        for tp in assigned {
            let hw = hws.get(tp).copied().unwrap_or(Offset(0));
            let owners: Vec<(NodeId, &MemberView)> = walk
                .owners(group, tp)
                .filter(|(n, _, _)| walk.not_current(*n).is_none())
                .map(|(n, v, _)| (n, v))
                .collect();
            let Some((node, view)) = owners.first() else {
                let zombies: Vec<String> = walk
                    .owners(group, tp)
                    .map(|(n, v, _)| format!("{n} (member {}, removed)", v.member_id))
                    .collect();
                let also = if zombies.is_empty() {
                    String::new()
                } else {
                    format!(
                        "; only {} still claimed it, no longer a member",
                        zombies.join(", ")
                    )
                };
                let to_member = latest
                    .members
                    .iter()
                    .find(|m| m.partitions.contains(tp))
                    .map_or("?".to_string(), |m| {
                        format!("{} (member {})", m.client, m.member_id)
                    });
                let sentence = format!(
                    "{tp} of group {group} had no owner at the end of the run (t={end_ms} ms): \
                     generation {} gave it to {to_member} at t={} ms, whose \
                     onPartitionsAssigned never ran for it{also}; its high watermark is {hw}",
                    latest.generation, latest.time_ms
                );
                anomalies.push((
                    sentence,
                    json!({ "group": group, "tp": tp.to_string(), "generation": latest.generation,
                            "owner": Value::Null, "high_watermark": hw.0 }),
                ));
                continue;
            };
            let NodeId::Consumer(c) = node else {
                continue;
            };
            let position = positions.get(&(*c, tp.clone())).copied();
            let pos = position.unwrap_or(Offset(0));
            if pos.0 >= hw.0 {
                continue;
            }
            let at = match position {
                Some(p) => format!("its position was {p}"),
                None => "it never had a position (no poll returned a record of it)".into(),
            };
            let sentence = format!(
                "{tp} of group {group} ended {} records behind: its owner {node} (member {}, \
                 generation {}) never read up to the high watermark {hw} by the end of the run \
                 (t={end_ms} ms; producers stopped before the final drain): {at}",
                hw.0 - pos.0,
                view.member_id,
                view.generation
            );
            anomalies.push((
                sentence,
                json!({ "group": group, "tp": tp.to_string(), "process": node.to_string(),
                        "member_id": view.member_id, "generation": view.generation,
                        "position": position.map(|p| p.0), "high_watermark": hw.0 }),
            ));
        }
    }
    anomalies
}

/// A partition that took no write after the heal: `offered` records were invoked after it and
/// none was acknowledged; `last_ok_ms` is the time of its last acknowledged write of the run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unrecovered {
    pub tp: TopicPartition,
    pub offered: usize,
    pub last_ok_ms: Option<u64>,
}

/// What the history says about recovery after the heal at `heal_ms`.
struct Recovery {
    /// Partitions offered records after the heal none of which was acknowledged.
    unrecovered: Vec<Unrecovered>,
    /// When the last partition to recover took its first write offered after the heal.
    recovered_at_ms: Option<u64>,
}

/// One pass over the sends: per partition, records offered at or after `heal_ms`, whether
/// one of them was acknowledged (and when first), and the last acknowledgement of the run.
/// Deleted topics are left out.
fn recovery(history: &[HistoryEntry], events: &[EventRecord], heal_ms: u64) -> Recovery {
    let mut offered: BTreeMap<TopicPartition, usize> = BTreeMap::new();
    let mut after_heal: crate::history::OpenOps<()> = crate::history::OpenOps::new(history.len());
    let mut first_ack: BTreeMap<TopicPartition, u64> = BTreeMap::new();
    let mut last_ok: BTreeMap<TopicPartition, u64> = BTreeMap::new();
    for e in history {
        let OpValue::Send { tp, .. } = &e.op.value else {
            continue;
        };
        match e.op.op_type {
            OpType::Invoke if e.time_ms >= heal_ms => {
                match offered.get_mut(tp) {
                    Some(n) => *n += 1,
                    None => {
                        offered.insert(tp.clone(), 1);
                    }
                }
                after_heal.insert(e.process, e.op.op_id, ());
            }
            OpType::Ok => {
                match last_ok.get_mut(tp) {
                    Some(t) => *t = e.time_ms,
                    None => {
                        last_ok.insert(tp.clone(), e.time_ms);
                    }
                }
                if after_heal.get(e.process, e.op.op_id).is_some() && !first_ack.contains_key(tp) {
                    first_ack.insert(tp.clone(), e.time_ms);
                }
            }
            _ => {}
        }
    }
    let deleted = super::deleted_topics(events);
    Recovery {
        recovered_at_ms: first_ack.values().max().copied(),
        unrecovered: offered
            .into_iter()
            .filter(|(tp, _)| {
                !first_ack.contains_key(tp) && !deleted.contains_key(tp.topic.as_str())
            })
            .map(|(tp, offered)| Unrecovered {
                last_ok_ms: last_ok.get(&tp).copied(),
                tp,
                offered,
            })
            .collect(),
    }
}

/// The partitions, in order, that producers offered records to at or after `heal_ms` without
/// any of those records being acknowledged (deleted topics left out): the liveness criterion,
/// shared by the checker and by the world, which waits past the heal phase while it holds.
pub fn unrecovered(
    history: &[HistoryEntry],
    events: &[EventRecord],
    heal_ms: u64,
) -> Vec<Unrecovered> {
    recovery(history, events, heal_ms).unrecovered
}

/// How long madsim's simulated TCP may wait before a client reconnects to a restarted node, in
/// milliseconds (its connection backoff grows to about 10 s).
pub const RECONNECT_BACKOFF_MS: u64 = 10_000;

/// The longest recovery after the heal that the scenario's configured timeouts explain, in
/// milliseconds, with the sentence naming them. A killed broker registers again only once
/// its previous coordination-node session expires (`zookeeper.session.timeout.ms`); an ISR
/// member that restarted without a LeaderAndIsr holds back `acks=all` until the leader drops
/// it (`replica.lag.time.max.ms`); a producer request caught on a dead connection is retried
/// only after `request.timeout.ms`; a reconnect may wait [`RECONNECT_BACKOFF_MS`]. The bound
/// is the slower of the first two plus the last two.
pub fn recovery_bound_ms(scenario: &crate::scenario::Scenario) -> (u64, String) {
    let bc = &scenario.cluster.broker_config;
    let session = bc.zookeeper_session_timeout_ms;
    let lag = bc.replica_lag_time_max_ms;
    let request = scenario
        .producers
        .iter()
        .map(|p| p.config.request_timeout_ms)
        .max()
        .unwrap_or(0);
    let bound = session.max(lag) + request + RECONNECT_BACKOFF_MS;
    let text = format!(
        "max(zookeeper.session.timeout.ms {session}, replica.lag.time.max.ms {lag}) + request.timeout.ms {request} + reconnect backoff {RECONNECT_BACKOFF_MS}"
    );
    (bound, text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{EventRecord, HistoryEntry};
    use ksim_model::event::ClientOp;
    use ksim_model::types::{NodeId, Offset};
    use std::collections::BTreeMap;

    fn send(
        index: u64,
        time_ms: u64,
        op_type: OpType,
        op_id: u64,
        partition: i32,
        offset: Option<i64>,
    ) -> HistoryEntry {
        HistoryEntry {
            index,
            time_ms,
            process: NodeId::Producer(0),
            op: ClientOp {
                op_type,
                op_id,
                value: OpValue::Send {
                    tp: TopicPartition::new("t", partition),
                    key: None,
                    value: op_id,
                    offset: offset.map(Offset),
                },
                error: None,
            },
        }
    }

    fn heal(time_ms: u64) -> EventRecord {
        EventRecord {
            time_ms,
            node: NodeId::Zk,
            event: Event::Fault {
                action: "heal".into(),
                nodes: vec![],
                source: "heal-phase".into(),
            },
        }
    }

    fn check(history: &[HistoryEntry], events: &[EventRecord]) -> Vec<Violation> {
        let logs = BTreeMap::new();
        Liveness.check(&CheckInput {
            history,
            events,
            final_logs: &logs,
            scenario: None,
            snapshots: &[],
        })
    }

    #[test]
    fn a_partition_that_takes_no_write_after_the_heal_is_a_violation() {
        let history = [
            send(0, 100, OpType::Invoke, 1, 0, None),
            send(1, 120, OpType::Ok, 1, 0, Some(0)),
            send(2, 100, OpType::Invoke, 2, 1, None),
            send(3, 120, OpType::Ok, 2, 1, Some(0)),
            // After the heal at 1000: partition 0 recovers, partition 1 does not.
            send(4, 1500, OpType::Invoke, 3, 0, None),
            send(5, 1520, OpType::Ok, 3, 0, Some(1)),
            send(6, 1500, OpType::Invoke, 4, 1, None),
        ];
        let v = check(&history, &[heal(1000)]);
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].check, "liveness");
        assert_eq!(
            v[0].message,
            "t-1 acknowledged none of the 1 records offered after the heal at t=1000 ms (run end t=1520 ms); its last acknowledged write was at t=120 ms"
        );
    }

    #[test]
    fn faults_without_a_heal_are_a_violation() {
        let history = [
            send(0, 100, OpType::Invoke, 1, 0, None),
            send(1, 120, OpType::Ok, 1, 0, Some(0)),
        ];
        let kill = EventRecord {
            time_ms: 500,
            node: NodeId::Zk,
            event: Event::Fault {
                action: "kill".into(),
                nodes: vec!["broker-1".into()],
                source: "nemesis".into(),
            },
        };
        let v = check(&history, &[kill]);
        assert_eq!(v.len(), 1);
        assert!(
            v[0].message.starts_with(
                "the run injected 1 fault (the first a `kill` at t=500 ms) but never healed them"
            ),
            "{}",
            v[0].message
        );
    }

    #[test]
    fn recovered_partitions_and_runs_without_a_heal_pass() {
        let history = [
            send(0, 1500, OpType::Invoke, 1, 0, None),
            send(1, 1520, OpType::Ok, 1, 0, Some(0)),
        ];
        assert!(check(&history, &[heal(1000)]).is_empty());
        // An acknowledgement of a record offered before the heal does not count as recovery,
        // but without a heal-phase event (and without faults) the check does not apply.
        let stuck = [send(0, 1500, OpType::Invoke, 1, 0, None)];
        assert!(!check(&stuck, &[heal(1000)]).is_empty());
        assert!(check(&stuck, &[]).is_empty());
    }

    mod groups {
        use super::super::super::group_view::testkit::Events;
        use super::*;
        use ksim_model::event::PolledRecord;
        use ksim_model::types::{BrokerId, LeaderEpoch};

        fn tp(p: i32) -> TopicPartition {
            TopicPartition::new("events", p)
        }

        /// Consumer `c` polls `events-p` offsets `from..to` at `t`.
        fn poll(h: &mut Vec<HistoryEntry>, t: u64, c: u32, p: i32, from: i64, to: i64) {
            let id = h.len() as u64;
            for (op_type, records) in [
                (OpType::Invoke, vec![]),
                (
                    OpType::Ok,
                    (from..to)
                        .map(|o| PolledRecord {
                            tp: tp(p),
                            offset: Offset(o),
                            value: o as u64,
                        })
                        .collect(),
                ),
            ] {
                h.push(HistoryEntry {
                    index: h.len() as u64,
                    time_ms: t,
                    process: NodeId::Consumer(c),
                    op: ClientOp {
                        op_type,
                        op_id: id,
                        value: OpValue::Poll { records },
                        error: None,
                    },
                });
            }
        }

        fn hw(t: u64, p: i32, hw: i64) -> EventRecord {
            EventRecord {
                time_ms: t,
                node: NodeId::Broker(BrokerId(0)),
                event: Event::HighWatermarkChanged {
                    tp: tp(p),
                    broker: BrokerId(0),
                    leader_epoch: LeaderEpoch(1),
                    high_watermark: Offset(hw),
                },
            }
        }

        /// Generation 1: consumer-0 owns events-0, consumer-1 events-1; high watermarks 10.
        fn stable() -> Events {
            let mut e = Events::default();
            e.state(0, "CompletingRebalance", 1)
                .completed(10, 1, &[(0, &[0]), (1, &[1])])
                .state(10, "Stable", 1)
                .assigned(20, 0, 1, &[0])
                .assigned(20, 1, 1, &[1]);
            e.0.push(hw(30, 0, 10));
            e.0.push(hw(30, 1, 10));
            e.0.push(heal(1000));
            e
        }

        #[test]
        fn a_stable_group_that_read_everything_passes() {
            let e = stable();
            let mut h = Vec::new();
            poll(&mut h, 1500, 0, 0, 0, 10);
            poll(&mut h, 1500, 1, 1, 0, 10);
            assert!(check(&h, &e.0).is_empty(), "{:?}", check(&h, &e.0));
        }

        #[test]
        fn a_member_behind_at_the_end_fails() {
            let e = stable();
            let mut h = Vec::new();
            poll(&mut h, 1500, 0, 0, 0, 10);
            poll(&mut h, 1500, 1, 1, 0, 4);
            let v = check(&h, &e.0);
            assert_eq!(v.len(), 1, "{v:?}");
            assert_eq!(
                v[0].message,
                "events-1 of group g ended 6 records behind: its owner consumer-1 (member m1, \
                 generation 1) never read up to the high watermark 10 by the end of the run \
                 (t=1500 ms; producers stopped before the final drain): its position was 4"
            );
        }

        #[test]
        fn a_group_not_stable_after_the_heal_fails() {
            let mut e = stable();
            e.state(1200, "PreparingRebalance", 1);
            let mut h = Vec::new();
            poll(&mut h, 1500, 0, 0, 0, 10);
            poll(&mut h, 1500, 1, 1, 0, 10);
            let v = check(&h, &e.0);
            assert_eq!(v.len(), 1, "{v:?}");
            assert!(
                v[0].message.starts_with(
                    "group g was PreparingRebalance at the end of the run (t=1500 ms), not \
                     Stable: its coordinator broker-0 moved it there at t=1200 ms, while \
                     consumer-0, consumer-1 of its consumers still ran after the heal"
                ),
                "{}",
                v[0].message
            );
            // Consumers that no longer run after the heal (closed for good) are not judged.
            let h: Vec<HistoryEntry> = h
                .into_iter()
                .map(|mut x| {
                    x.time_ms = 500;
                    x
                })
                .collect();
            assert!(check(&h, &e.0).is_empty());
        }

        /// eos-pipeline-under-faults seed 6300021: broker-1 (a stale leader of the offsets
        /// partition) loaded and unloaded the group after broker-0, the real coordinator,
        /// had loaded it; broker-1's last Dead does not make the group Dead.
        #[test]
        fn a_stale_broker_unloading_after_the_real_coordinator_loaded_does_not_count() {
            let mut e = stable();
            let group_event = |t: u64, b: i32, from: &str, to: &str| EventRecord {
                time_ms: t,
                node: NodeId::Broker(BrokerId(b)),
                event: Event::GroupStateChanged {
                    group: "g".into(),
                    broker: BrokerId(b),
                    from: from.into(),
                    to: to.into(),
                    generation: 1,
                    reason: "test".into(),
                },
            };
            e.0.push(group_event(1100, 0, "Stable", "Dead"));
            e.0.push(group_event(1110, 2, "Dead", "Stable"));
            e.0.push(group_event(1120, 0, "Dead", "Stable"));
            e.0.push(group_event(1130, 0, "Stable", "Dead"));
            let mut h = Vec::new();
            poll(&mut h, 1500, 0, 0, 0, 10);
            poll(&mut h, 1500, 1, 1, 0, 10);
            assert!(check(&h, &e.0).is_empty(), "{:?}", check(&h, &e.0));
            // Had broker-2 let it go as well, the group is Dead.
            e.0.push(group_event(1140, 2, "Stable", "Dead"));
            let v = check(&h, &e.0);
            assert_eq!(v.len(), 1, "{v:?}");
            assert!(
                v[0].message.starts_with("group g was Dead"),
                "{}",
                v[0].message
            );
        }

        #[test]
        fn a_member_that_broke_max_poll_interval_after_the_heal_exempts_its_group() {
            let mut e = stable();
            e.state(1200, "PreparingRebalance", 1);
            let mut h = Vec::new();
            poll(&mut h, 1500, 0, 0, 0, 10);
            poll(&mut h, 1500, 1, 1, 0, 10);
            assert_eq!(check(&h, &e.0).len(), 1);
            // consumer-1's application outlasted max.poll.interval.ms after the heal.
            e.0.push(EventRecord {
                time_ms: 1100,
                node: NodeId::Consumer(1),
                event: Event::ConsumerError {
                    tp: tp(-1),
                    exception: "LeaveGroup".into(),
                    message: "Member sending LeaveGroup request to coordinator due to consumer \
                              poll timeout has expired"
                        .into(),
                },
            });
            assert!(check(&h, &e.0).is_empty());
            let logs = BTreeMap::new();
            let notes = Liveness.notes(&CheckInput {
                history: &h,
                events: &e.0,
                final_logs: &logs,
                scenario: None,
                snapshots: &[],
            });
            assert!(
                notes.iter().any(|n| n.starts_with(
                    "group g was not judged for liveness: after the heal at t=1000 ms its member \
                     consumer-1 at t=1100 ms did not call poll()"
                )),
                "{notes:?}"
            );
        }

        #[test]
        fn a_partition_only_a_removed_member_claims_has_no_owner() {
            // consumer-1 is removed (paused past its session); generation 2 gives events-1 to
            // consumer-0, whose onPartitionsAssigned never ran for it.
            let mut e = stable();
            e.removed(1100, 1, "session-timeout", 1)
                .state(1100, "PreparingRebalance", 1)
                .state(1150, "CompletingRebalance", 2)
                .completed(1160, 2, &[(0, &[0, 1])])
                .state(1160, "Stable", 2);
            let mut h = Vec::new();
            poll(&mut h, 1500, 0, 0, 0, 10);
            // The zombie read everything: its lag does not count.
            poll(&mut h, 1500, 1, 1, 0, 10);
            let v = check(&h, &e.0);
            assert_eq!(v.len(), 1, "{v:?}");
            assert_eq!(
                v[0].message,
                "events-1 of group g had no owner at the end of the run (t=1500 ms): generation \
                 2 gave it to consumer-0 (member m0) at t=1160 ms, whose onPartitionsAssigned \
                 never ran for it; only consumer-1 (member m1, removed) still claimed it, no \
                 longer a member; its high watermark is 10"
            );
            // Once consumer-0 takes it and reads it, the group is live.
            e.assigned(1200, 0, 2, &[1]);
            poll(&mut h, 1600, 0, 1, 0, 10);
            assert!(check(&h, &e.0).is_empty(), "{:?}", check(&h, &e.0));
        }

        #[test]
        fn a_removed_member_a_reloaded_coordinator_readmitted_still_owns_its_partitions() {
            // The coordinator removes consumer-1 but loses the group before storing a
            // generation without it; the coordinator that reloads the group keeps it, and
            // generation 2 lists it with events-1 again: cooperative-sticky's
            // onPartitionsAssigned gets only new partitions (empty), and consumer-1 keeps
            // owning events-1 (seed 70022 of consumer-group-under-faults).
            let mut e = stable();
            e.removed(1100, 1, "session-timeout", 1)
                .state(1100, "PreparingRebalance", 1)
                .state(1120, "Dead", 1)
                .state(1120, "Stable", 1)
                .state(1150, "CompletingRebalance", 2)
                .completed(1160, 2, &[(0, &[0]), (1, &[1])])
                .state(1160, "Stable", 2)
                .assigned(1170, 0, 2, &[])
                .assigned(1170, 1, 2, &[]);
            let mut h = Vec::new();
            poll(&mut h, 1500, 0, 0, 0, 10);
            poll(&mut h, 1500, 1, 1, 0, 10);
            assert!(check(&h, &e.0).is_empty(), "{:?}", check(&h, &e.0));
            // Its lag is judged: behind at the end fails.
            let mut h = Vec::new();
            poll(&mut h, 1500, 0, 0, 0, 10);
            poll(&mut h, 1500, 1, 1, 0, 5);
            let v = check(&h, &e.0);
            assert_eq!(v.len(), 1, "{v:?}");
            assert!(v[0].message.contains("5 records behind"), "{v:?}");
        }
    }
}
