//! The nemesis: turns a scenario's random fault kinds and its scripted schedule into one
//! explicit, timed list of fault actions, and carries them out.
//!
//! Random faults are drawn up front from the run's `nemesis` random stream, so the list is
//! plain data: it is written to `summary.json`, and a failing run can be shrunk by removing
//! entries and running again. With `swarm = true` each kind's weight is itself drawn from the
//! seed (swarm testing: some seeds hammer one kind, others mix them), so different seeds
//! explore different fault profiles.
//!
//! Conventions of the random nemesis (scripted faults can do anything):
//! * `kill`, `shutdown`, `power-fail` and `disk-loss` take a running, unpaused broker, never
//!   the last running one; `restart` brings back a stopped one;
//! * `power-fail` and `disk-loss` spare a broker holding the last in-sync copy of a partition
//!   when `spare_last_replica` is true (checked when the fault fires; see `world`);
//! * `pause` stops a broker's process for a duration drawn from `faults.duration_ms`;
//! * `partition` splits the brokers and the coordination node into two non-empty groups,
//!   `isolate` cuts one of them off, `clog` cuts one direction between two of them; one
//!   network fault at a time, healed after a drawn duration; clients stay connected to all;
//! * `disk-fault` makes the next disk write of a random broker fail (EIO, disk full) or land
//!   corrupted;
//! * the client kinds take a client process with no client fault in force: `client-kill`
//!   crashes a random producer or consumer and restarts it after a drawn `duration_ms`,
//!   `client-pause` pauses one for a drawn duration, `client-leave` closes a random consumer
//!   group member cleanly (commit on close, LeaveGroup) and restarts it after a drawn
//!   duration. Several clients may be down at once; a kind draws nothing for a scenario that
//!   does not list it, so adding kinds does not change other scenarios' plans.
//!
//! Role selectors (`leader:t-0`, `controller`, ...) are resolved when the fault fires, from
//! what the simulator has observed of the cluster so far.

use crate::runtime::Observer;
use crate::scenario::{DiskFaultKind, FaultAction, FaultKind, FaultsSpec, Selector};
use ksim_model::types::{BrokerId, NodeId, TopicPartition};
use rand::seq::SliceRandom;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

/// Where a planned fault came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FaultSource {
    /// Drawn from the seed.
    Random,
    /// Written in `[[faults.schedule]]`.
    Schedule,
    /// The heal phase at the end of the fault phase.
    HealPhase,
}

impl FaultSource {
    pub fn name(self) -> &'static str {
        match self {
            FaultSource::Random => "random",
            FaultSource::Schedule => "schedule",
            FaultSource::HealPhase => "heal-phase",
        }
    }
}

/// One planned fault.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlannedFault {
    pub at_ms: u64,
    pub action: FaultAction,
    pub source: FaultSource,
}

/// A fault as it happened: which nodes it touched.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FaultRecord {
    pub at_ms: u64,
    /// The scenario key (`kill`, `partition`, ...).
    pub action: String,
    /// Nodes touched (for `partition`, groups joined by ` | `).
    pub nodes: Vec<String>,
    /// As written in the scenario, or as drawn (`broker-1`).
    pub selector: String,
    pub source: FaultSource,
    /// Why nothing happened, when nothing did (`broker-2 already down`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

fn describe_action(action: &FaultAction) -> String {
    match action {
        FaultAction::Kill(s)
        | FaultAction::PowerFail(s)
        | FaultAction::Restart(s)
        | FaultAction::DiskLoss(s)
        | FaultAction::Shutdown(s)
        | FaultAction::Pause(s)
        | FaultAction::Resume(s)
        | FaultAction::Isolate(s)
        | FaultAction::Close(s)
        | FaultAction::ClientKill(s)
        | FaultAction::ClientPause(s)
        | FaultAction::ClientLeave(s) => s.to_string(),
        FaultAction::Replace {
            client,
            replacement,
        } => format!("{client} by {replacement}"),
        FaultAction::Partition(groups) => groups
            .iter()
            .map(|g| {
                g.iter()
                    .map(|s| s.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .collect::<Vec<_>>()
            .join(" | "),
        FaultAction::Clog { from, to } => format!("{from} -> {to}"),
        FaultAction::Heal => String::new(),
        FaultAction::DiskFault { node, kind } => format!("{node} ({kind:?})"),
        FaultAction::CreatePartitions { topic, count } => format!("{topic} to {count} partitions"),
        FaultAction::DeleteTopic(topic) => topic.clone(),
    }
}

impl FaultRecord {
    pub fn new(
        planned: &PlannedFault,
        at_ms: u64,
        nodes: Vec<String>,
        note: Option<String>,
    ) -> Self {
        FaultRecord {
            at_ms,
            action: planned.action.key().to_string(),
            nodes,
            selector: describe_action(&planned.action),
            source: planned.source,
            note,
        }
    }
}

/// Draws the random faults for `[0, duration_ms)` and merges the scripted ones, ordered by
/// time (scripted before random at the same millisecond).
pub fn plan(
    faults: &FaultsSpec,
    brokers: i32,
    duration_ms: u64,
    rng: &mut ChaCha8Rng,
) -> Vec<PlannedFault> {
    let mut planned: Vec<PlannedFault> = faults
        .schedule
        .iter()
        .map(|f| PlannedFault {
            at_ms: f.at_ms,
            action: f.action.clone(),
            source: FaultSource::Schedule,
        })
        .collect();
    let kinds: Vec<FaultKind> = faults.kinds.clone();
    if !kinds.is_empty() && brokers > 0 {
        let weights: Vec<u32> = if faults.swarm {
            let mut w: Vec<u32> = kinds.iter().map(|_| rng.gen_range(0..=4)).collect();
            // `restart` only undoes a crash: a profile that can draw nothing else injects no
            // fault at all (the run would pass vacuously), so the first kind that starts a
            // fault gets a weight. No extra draw: other seeds keep their profiles.
            let starts_faults = |k: &FaultKind| *k != FaultKind::Restart;
            if !kinds
                .iter()
                .zip(&w)
                .any(|(k, x)| *x > 0 && starts_faults(k))
            {
                match kinds.iter().position(starts_faults) {
                    Some(i) => w[i] = 1,
                    None => w[0] = w[0].max(1),
                }
            }
            w
        } else {
            vec![1; kinds.len()]
        };
        let total: u32 = weights.iter().sum();
        let mut up: BTreeSet<i32> = (0..brokers).collect();
        let mut down: BTreeSet<i32> = BTreeSet::new();
        let mut paused: BTreeSet<i32> = BTreeSet::new();
        let [gap_min, gap_max] = faults.interval_ms;
        let [dur_min, dur_max] = faults.duration_ms;
        let mut t = rng.gen_range(gap_min..=gap_max.max(gap_min));
        // The network fault in force (partition, isolate or clog) and when it heals.
        let mut network_until: Option<u64> = None;
        // Pauses in force: (broker, resume time).
        let mut pauses: Vec<(i32, u64)> = Vec::new();
        // Client faults in force (killed, paused or closed): client, when it ends, and the
        // action that ends it (`restart` or `resume`).
        let mut client_faults: Vec<(String, u64, FaultAction)> = Vec::new();
        let push = |planned: &mut Vec<PlannedFault>, at_ms: u64, action: FaultAction| {
            planned.push(PlannedFault {
                at_ms,
                action,
                source: FaultSource::Random,
            })
        };
        while t < duration_ms {
            if let Some(until) = network_until {
                if until <= t {
                    push(&mut planned, until, FaultAction::Heal);
                    network_until = None;
                }
            }
            pauses.retain(|(b, until)| {
                if *until <= t {
                    push(
                        &mut planned,
                        *until,
                        FaultAction::Resume(Selector::Broker(*b)),
                    );
                    paused.remove(b);
                    false
                } else {
                    true
                }
            });
            client_faults.retain(|(_, until, end)| {
                if *until <= t {
                    push(&mut planned, *until, end.clone());
                    false
                } else {
                    true
                }
            });
            let mut pick = rng.gen_range(0..total);
            let mut kind = kinds[0];
            for (k, w) in kinds.iter().zip(&weights) {
                if pick < *w {
                    kind = *k;
                    break;
                }
                pick -= w;
            }
            // Brokers a process fault may take: running, not paused, never the last running one.
            let takeable: Vec<i32> = up.iter().copied().filter(|b| !paused.contains(b)).collect();
            let may_take = up.len() > 1 && !takeable.is_empty();
            match kind {
                FaultKind::Kill
                | FaultKind::Shutdown
                | FaultKind::PowerFail
                | FaultKind::DiskLoss
                    if may_take =>
                {
                    let b = *takeable.choose(rng).expect("non-empty");
                    up.remove(&b);
                    down.insert(b);
                    let sel = Selector::Broker(b);
                    let action = match kind {
                        FaultKind::Kill => FaultAction::Kill(sel),
                        FaultKind::Shutdown => FaultAction::Shutdown(sel),
                        FaultKind::PowerFail => FaultAction::PowerFail(sel),
                        _ => FaultAction::DiskLoss(sel),
                    };
                    push(&mut planned, t, action);
                }
                FaultKind::Restart if !down.is_empty() => {
                    let v: Vec<i32> = down.iter().copied().collect();
                    let b = *v.choose(rng).expect("non-empty");
                    down.remove(&b);
                    up.insert(b);
                    push(&mut planned, t, FaultAction::Restart(Selector::Broker(b)));
                }
                FaultKind::Pause if !takeable.is_empty() => {
                    let b = *takeable.choose(rng).expect("non-empty");
                    paused.insert(b);
                    pauses.push((b, t + rng.gen_range(dur_min..=dur_max.max(dur_min))));
                    push(&mut planned, t, FaultAction::Pause(Selector::Broker(b)));
                }
                FaultKind::Partition | FaultKind::Isolate | FaultKind::Clog
                    if network_until.is_none() =>
                {
                    // Brokers and the coordination node; clients stay connected to all.
                    let mut nodes: Vec<Selector> = (0..brokers).map(Selector::Broker).collect();
                    nodes.push(Selector::Zk);
                    nodes.shuffle(rng);
                    let action = match kind {
                        FaultKind::Partition => {
                            let cut = rng.gen_range(1..nodes.len());
                            let (a, b) = nodes.split_at(cut);
                            let mut a = a.to_vec();
                            let mut b = b.to_vec();
                            a.sort();
                            b.sort();
                            FaultAction::Partition(vec![a, b])
                        }
                        FaultKind::Isolate => FaultAction::Isolate(nodes[0].clone()),
                        _ => FaultAction::Clog {
                            from: nodes[0].clone(),
                            to: nodes[1].clone(),
                        },
                    };
                    push(&mut planned, t, action);
                    network_until = Some(t + rng.gen_range(dur_min..=dur_max.max(dur_min)));
                }
                FaultKind::ClientKill | FaultKind::ClientPause | FaultKind::ClientLeave => {
                    // A client with no client fault in force: any client process, or a group
                    // member for `client-leave`.
                    let pool = if kind == FaultKind::ClientLeave {
                        &faults.members
                    } else {
                        &faults.clients
                    };
                    let free: Vec<&String> = pool
                        .iter()
                        .filter(|c| !client_faults.iter().any(|(f, _, _)| f == *c))
                        .collect();
                    if let Some(c) = free.choose(rng).map(|c| (*c).clone()) {
                        let sel = Selector::Client(c.clone());
                        let until = t + rng.gen_range(dur_min..=dur_max.max(dur_min));
                        let (start, end) = match kind {
                            FaultKind::ClientKill => (
                                FaultAction::ClientKill(sel.clone()),
                                FaultAction::Restart(sel),
                            ),
                            FaultKind::ClientPause => (
                                FaultAction::ClientPause(sel.clone()),
                                FaultAction::Resume(sel),
                            ),
                            _ => (
                                FaultAction::ClientLeave(sel.clone()),
                                FaultAction::Restart(sel),
                            ),
                        };
                        push(&mut planned, t, start);
                        client_faults.push((c, until, end));
                    }
                }
                FaultKind::DiskFault => {
                    let b = rng.gen_range(0..brokers);
                    let kind = *[
                        DiskFaultKind::Eio,
                        DiskFaultKind::Full,
                        DiskFaultKind::Corrupt,
                    ]
                    .choose(rng)
                    .expect("3");
                    push(
                        &mut planned,
                        t,
                        FaultAction::DiskFault {
                            node: Selector::Broker(b),
                            kind,
                        },
                    );
                }
                _ => {}
            }
            t += rng.gen_range(gap_min..=gap_max.max(gap_min)).max(1);
        }
        if let Some(until) = network_until {
            if until < duration_ms {
                push(&mut planned, until, FaultAction::Heal);
            }
        }
        for (b, until) in pauses {
            if until < duration_ms {
                push(
                    &mut planned,
                    until,
                    FaultAction::Resume(Selector::Broker(b)),
                );
            }
        }
        // Client faults still in force at the end of the fault phase end in the heal phase.
        for (_, until, end) in client_faults {
            if until < duration_ms {
                push(&mut planned, until, end);
            }
        }
    }
    planned.sort_by_key(|f| (f.at_ms, f.source != FaultSource::Schedule));
    planned
}

/// What the nemesis needs to resolve selectors.
pub struct ResolveContext<'a> {
    pub observer: &'a Observer,
    /// Replica assignment per partition, preferred leader first.
    pub assignment: &'a BTreeMap<TopicPartition, Vec<BrokerId>>,
    /// Every node of the world.
    pub all_nodes: &'a [NodeId],
    pub brokers: i32,
}

/// Resolves one selector to nodes. `named` are the nodes named elsewhere in the same fault
/// (for `rest`). Unknown roles resolve to nothing.
pub fn resolve(
    sel: &Selector,
    ctx: &ResolveContext,
    named: &BTreeSet<NodeId>,
    rng: &mut ChaCha8Rng,
) -> Vec<NodeId> {
    let broker = |b: BrokerId| NodeId::Broker(b);
    match sel {
        Selector::Broker(i) => vec![broker(BrokerId(*i))],
        Selector::Zk => vec![NodeId::Zk],
        Selector::Controller => ctx
            .observer
            .controller
            .map(|(_, b)| vec![broker(b)])
            .unwrap_or_default(),
        Selector::Leader(tp) => ctx
            .observer
            .leaders
            .get(tp)
            .map(|(_, b)| vec![broker(*b)])
            .unwrap_or_default(),
        Selector::Follower(tp) => {
            let leader = ctx.observer.leaders.get(tp).map(|(_, b)| *b);
            // An internal topic (`__consumer_offsets`) is created during the run: its replicas
            // are known from the controller's latest ISR.
            ctx.assignment
                .get(tp)
                .or_else(|| ctx.observer.isr.get(tp))
                .and_then(|r| r.iter().find(|b| Some(**b) != leader).copied())
                .map(|b| vec![broker(b)])
                .unwrap_or_default()
        }
        Selector::Isr(tp) => ctx
            .observer
            .isr
            .get(tp)
            .map(|isr| isr.iter().map(|b| broker(*b)).collect())
            .unwrap_or_default(),
        Selector::Client(name) => NodeId::parse(name).into_iter().collect(),
        Selector::Rest => ctx
            .all_nodes
            .iter()
            .filter(|n| !named.contains(n))
            .copied()
            .collect(),
        Selector::RandomBroker => {
            if ctx.brokers == 0 {
                vec![]
            } else {
                vec![broker(BrokerId(rng.gen_range(0..ctx.brokers)))]
            }
        }
    }
}

/// Resolves a partition's groups; `rest` takes every node not named in another group.
pub fn resolve_groups(
    groups: &[Vec<Selector>],
    ctx: &ResolveContext,
    rng: &mut ChaCha8Rng,
) -> Vec<Vec<NodeId>> {
    let mut named = BTreeSet::new();
    let mut out: Vec<Vec<NodeId>> = Vec::new();
    for g in groups {
        let mut nodes = Vec::new();
        for s in g {
            if *s != Selector::Rest {
                nodes.extend(resolve(s, ctx, &named, rng));
            }
        }
        named.extend(nodes.iter().copied());
        out.push(nodes);
    }
    for (g, nodes) in groups.iter().zip(out.iter_mut()) {
        if g.contains(&Selector::Rest) {
            nodes.extend(resolve(&Selector::Rest, ctx, &named, rng));
        }
    }
    for nodes in &mut out {
        nodes.sort();
        nodes.dedup();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Swarm testing draws each kind's weight from the seed; before the rule that a kind which
    /// starts faults always gets a weight, a seed that weighted only `restart` (seed 1002 of
    /// the default scenario) planned no fault at all. A profile may still, by chance, pick only
    /// `restart` while nothing is down: rare, and the scenario's `reach` (`nemesis-fault`) then
    /// flags the run.
    #[test]
    fn a_swarm_profile_always_weights_a_kind_that_starts_faults() {
        let sc = crate::scenario::load(std::path::Path::new("scenarios/default.toml")).unwrap();
        let faultless = |seed: u64| {
            let mut rng = crate::world::stream_rng(seed, crate::world::streams::NEMESIS);
            let plan = plan(&sc.faults, sc.cluster.brokers, sc.duration_ms, &mut rng);
            !plan
                .iter()
                .any(|f| !matches!(f.action, FaultAction::Restart(_)))
        };
        assert!(!faultless(1002), "seed 1002 plans no fault");
        let none: Vec<u64> = (1..=2000).filter(|s| faultless(*s)).collect();
        assert!(
            none.len() < 20,
            "{} of 2000 seeds plan no fault: {none:?}",
            none.len()
        );
    }
    /// The client kinds: each fault takes a client with none in force and is ended by its own
    /// `restart` or `resume` after a drawn duration; `client-leave` takes only group members.
    #[test]
    fn client_faults_take_free_clients_and_end_after_their_duration() {
        let sc = crate::scenario::load(std::path::Path::new(
            "scenarios/consumer-group-under-faults.toml",
        ))
        .unwrap();
        let mut clients_hit = BTreeSet::new();
        for seed in 1..=50u64 {
            let mut rng = crate::world::stream_rng(seed, crate::world::streams::NEMESIS);
            let plan = plan(&sc.faults, sc.cluster.brokers, sc.duration_ms, &mut rng);
            // Per client: the fault in force (its start action's key) and when it started.
            let mut open: BTreeMap<String, (&'static str, u64)> = BTreeMap::new();
            // The scenario's scripted client faults are no part of the random draw.
            for f in plan.iter().filter(|f| f.source == FaultSource::Random) {
                let client = |s: &Selector| match s {
                    Selector::Client(c) => Some(c.clone()),
                    _ => None,
                };
                match &f.action {
                    FaultAction::ClientKill(s)
                    | FaultAction::ClientPause(s)
                    | FaultAction::ClientLeave(s) => {
                        let c = client(s).expect("a client");
                        if matches!(f.action, FaultAction::ClientLeave(_)) {
                            assert!(sc.faults.members.contains(&c), "{c} is no member");
                        }
                        assert!(
                            open.insert(c.clone(), (f.action.key(), f.at_ms)).is_none(),
                            "seed {seed}: {c} taken twice"
                        );
                        clients_hit.insert(c);
                    }
                    FaultAction::Restart(s) | FaultAction::Resume(s) if client(s).is_some() => {
                        let c = client(s).unwrap();
                        let (key, at) = open.remove(&c).expect("a client fault to end");
                        let expected = if key == "client-pause" {
                            "resume"
                        } else {
                            "restart"
                        };
                        assert_eq!(f.action.key(), expected, "seed {seed}: {c}");
                        let [lo, hi] = sc.faults.duration_ms;
                        assert!((lo..=hi).contains(&(f.at_ms - at)), "seed {seed}: {c}");
                    }
                    _ => {}
                }
            }
        }
        assert_eq!(
            clients_hit.into_iter().collect::<Vec<_>>(),
            vec!["consumer-0", "consumer-1", "consumer-2", "producer-0"]
        );
    }
}
