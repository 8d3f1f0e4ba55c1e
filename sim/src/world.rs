//! One run: a scenario and a seed in, a history, an event log and the fault list out.
//!
//! [`simulate`] starts a fresh OS thread and a fresh madsim runtime seeded with the run's seed
//! (std's `HashMap` seeds and tokio statics are only reproducible that way), registers the
//! simulated disk, creates one madsim node per process (the coordination node, each broker,
//! each client), and supervises the run:
//!
//! 1. **fault phase** (`duration_ms`): producers offer records, consumers poll, the nemesis
//!    executes its planned faults;
//! 2. **heal phase** (`heal_ms`): every network fault healed, every paused process resumed,
//!    every stopped node restarted,
//!    producers stop offering new records, consumers drain; a correct cluster converges;
//! 3. **waiting for recovery**, only when a partition has taken no write since the heal: the
//!    run goes on until it has, or until the longest recovery the configured timeouts explain
//!    ([`crate::check::liveness::recovery_bound_ms`]) has passed since the heal; a
//!    `heal-phase-extended` event marks it;
//! 4. **final drain** ([`DRAIN_MS`]): producers stop, consumers read what was acknowledged.
//!
//! Randomness comes from the seed only, split into named streams (ChaCha8 stream ids) so that
//! changing one subsystem does not move another's draws: madsim's own generator (network
//! latency, scheduling), `nemesis`, `assignment`, `disk`, `partitioner`.

use crate::disk::SimDisk;
use crate::history::{EventRecord, HistoryEntry};
use crate::nemesis::{self, FaultRecord, FaultSource, PlannedFault, ResolveContext};
use crate::runtime::{run_actor, Shared, SharedRef};
use crate::scenario::{FaultAction, Scenario};
use crate::workload;
use ksim_model::broker::Broker;
use ksim_model::controller::NewTopic;
use ksim_model::coordination::ZkServer;
use ksim_model::disk::Disk;
use ksim_model::effects::Effects;
use ksim_model::event::Event;
use ksim_model::log::PartitionLog;
use ksim_model::protocol::Message;
use ksim_model::types::{BrokerId, NodeId, Offset, TopicPartition};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

/// After the heal phase producers stop and consumers get this long to read what was
/// acknowledged (Jepsen's final reads).
pub const DRAIN_MS: u64 = 5_000;

/// While waiting past the heal phase for a partition to take a write, how often the world
/// looks again, in simulated milliseconds.
pub const RECOVERY_POLL_MS: u64 = 1_000;

/// Named random streams (ChaCha8 stream ids), one per subsystem.
pub mod streams {
    pub const NEMESIS: u64 = 1;
    pub const ASSIGNMENT: u64 = 2;
    pub const DISK: u64 = 3;
    /// One seed per producer for its sticky partitioner (KIP-480), drawn in producer order.
    pub const PARTITIONER: u64 = 4;
    /// One seed per consumer for its workload's choices (processing times), in consumer order.
    pub const CONSUMER_WORKLOAD: u64 = 5;
    /// Two seeds per processor (processing times, the output partitioner), in processor order.
    pub const PROCESSOR_WORKLOAD: u64 = 6;
}

/// A fresh generator for one named stream of a seed.
pub fn stream_rng(seed: u64, stream: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(stream);
    rng
}

/// Everything a run produced.
#[derive(Debug, Clone)]
pub struct RunOutput {
    pub seed: u64,
    pub history: Vec<HistoryEntry>,
    pub events: Vec<EventRecord>,
    pub faults: Vec<FaultRecord>,
    /// Each broker's log at the end (what its process would read), as (offset, value).
    pub final_logs: BTreeMap<(NodeId, TopicPartition), Vec<(Offset, u64)>>,
    /// Replica snapshots of one partition at each change of its replication state, and of
    /// every partition at the end (see [`crate::snapshot`]), in time order.
    pub snapshots: Vec<crate::snapshot::ReplicaSnapshot>,
    /// The replica assignment the run used.
    pub assignment: BTreeMap<TopicPartition, Vec<BrokerId>>,
    /// Messages sent between nodes.
    pub messages: u64,
    /// fsyncs the nodes' disks carried out, and the simulated time spent in them (see
    /// [`crate::runtime::Shared::fsyncs`]).
    pub fsyncs: u64,
    pub fsync_us: u64,
    pub simulated_ms: u64,
    pub wall_ms: u64,
    /// CPU time of the simulation's thread (user + system), in microseconds: not simulated,
    /// and unlike `wall_ms` written to no output file (`ksim bench` reports it).
    pub cpu_us: u64,
}

pub use ksim_model::controller::replica_assignment::{add_partitions, assign_replicas};

/// The most nodes of one kind (brokers, producers, consumers) a scenario may have: the
/// simulated network gives each kind one /24 (`10.0.1.0/24` for brokers, `10.0.2.0/24` for
/// producers, `10.0.3.0/24` for consumers), host numbers 1..=255. The scenario loader refuses
/// more (madsim would panic on the duplicate address).
pub const NODES_PER_KIND_MAX: u32 = 255;

/// The simulated IP address of `node` (see [`NODES_PER_KIND_MAX`]).
fn node_ip(node: NodeId) -> IpAddr {
    match node {
        NodeId::Zk => IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
        NodeId::Broker(b) => IpAddr::V4(Ipv4Addr::new(10, 0, 1, b.0 as u8 + 1)),
        NodeId::Producer(i) => IpAddr::V4(Ipv4Addr::new(10, 0, 2, i as u8 + 1)),
        NodeId::Consumer(i) => IpAddr::V4(Ipv4Addr::new(10, 0, 3, i as u8 + 1)),
        NodeId::Processor(i) => IpAddr::V4(Ipv4Addr::new(10, 0, 4, i as u8 + 1)),
    }
}

/// The topics to create, with their assignment.
pub fn new_topics(scenario: &Scenario, seed: u64) -> Vec<NewTopic> {
    let mut rng = stream_rng(seed, streams::ASSIGNMENT);
    scenario
        .topics
        .iter()
        .map(|t| NewTopic {
            name: t.name.clone(),
            assignment: match &t.replica_assignment {
                Some(a) => a.clone(),
                None => assign_replicas(
                    scenario.cluster.brokers,
                    t.partitions,
                    t.replication_factor,
                    &mut rng,
                ),
            },
            config: t.config.clone(),
            deletable: scenario
                .faults
                .schedule
                .iter()
                .any(|s| matches!(&s.action, FaultAction::DeleteTopic(d) if *d == t.name)),
        })
        .collect()
}

/// Runs `scenario` with `seed` on a fresh thread and runtime. Blocks until done.
pub fn simulate(scenario: &Scenario, seed: u64) -> RunOutput {
    let scenario = scenario.clone();
    // A fresh OS thread per run: madsim needs it for reproducible std/tokio statics. This is
    // the simulator's harness, outside any simulated node.
    let handle = std::thread::Builder::new()
        .name(format!("ksim-seed-{seed}"))
        .stack_size(64 << 20)
        .spawn(move || {
            let wall = std::time::Instant::now();
            let cpu_us = crate::bench::thread_cpu_us();
            let rt =
                madsim::runtime::Runtime::with_seed_and_config(seed, madsim::Config::default());
            rt.add_simulator::<SimDisk>();
            let mut out = rt.block_on(world(scenario, seed));
            out.wall_ms = wall.elapsed().as_millis() as u64;
            out.cpu_us = crate::bench::thread_cpu_us().saturating_sub(cpu_us);
            out
        })
        .expect("spawn simulation thread");
    match handle.join() {
        Ok(out) => out,
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

async fn world(scenario: Scenario, seed: u64) -> RunOutput {
    let handle = madsim::runtime::Handle::current();
    let disk = madsim::plugin::simulator::<SimDisk>();
    let topics = new_topics(&scenario, seed);
    let mut assignment = BTreeMap::new();
    for t in &topics {
        for (p, r) in t.assignment.iter().enumerate() {
            assignment.insert(TopicPartition::new(t.name.clone(), p as i32), r.clone());
        }
    }
    // Partitions the schedule adds, assigned up front as Kafka's admin would assign them.
    let mut added_partitions = BTreeMap::new();
    for s in &scenario.faults.schedule {
        if let FaultAction::CreatePartitions { topic, count } = &s.action {
            let existing: Vec<Vec<BrokerId>> = assignment
                .iter()
                .filter(|(tp, _)| &tp.topic == topic)
                .map(|(_, r)| r.clone())
                .collect();
            let all = add_partitions(scenario.cluster.brokers, &existing, *count);
            for (p, r) in all.iter().enumerate().skip(existing.len()) {
                assignment.insert(TopicPartition::new(topic.clone(), p as i32), r.clone());
            }
            added_partitions.insert((topic.clone(), *count), all);
        }
    }

    // Every process, in a fixed order.
    let mut nodes: Vec<NodeId> = vec![NodeId::Zk];
    nodes.extend((0..scenario.cluster.brokers).map(|b| NodeId::Broker(BrokerId(b))));
    let producer_specs = workload::producer::instances(&scenario);
    nodes.extend(producer_specs.iter().map(|(i, _)| NodeId::Producer(*i)));
    let consumer_specs = workload::consumer::instances(&scenario);
    nodes.extend(consumer_specs.iter().map(|(i, _)| NodeId::Consumer(*i)));
    let processor_specs = workload::processor::instances(&scenario);
    nodes.extend(processor_specs.iter().map(|(i, _)| NodeId::Processor(*i)));
    let addrs: BTreeMap<NodeId, SocketAddr> = nodes
        .iter()
        .map(|n| (*n, SocketAddr::new(node_ip(*n), crate::runtime::PORT)))
        .collect();
    let shared: SharedRef = Shared::new(addrs);
    shared.lock().expect("shared").snapshotter.disk = Some(disk.clone());
    let start = shared.lock().expect("shared").start;
    let brokers: Vec<BrokerId> = (0..scenario.cluster.brokers).map(BrokerId).collect();

    let mut handles: BTreeMap<NodeId, madsim::runtime::NodeHandle> = BTreeMap::new();
    // Coordination node.
    {
        let (shared, disk) = (shared.clone(), disk.clone());
        let h = spawn_node(&handle, NodeId::Zk, move || {
            let (shared, disk) = (shared.clone(), disk.clone());
            async move {
                let files = read_files(&disk, NodeId::Zk);
                let server = ZkServer::recover(&files);
                run_actor(NodeId::Zk, server, Effects::new(), shared, disk).await
            }
        });
        handles.insert(NodeId::Zk, h);
    }
    // Let the coordination node bind before anyone connects.
    madsim::time::sleep(Duration::from_millis(1)).await;
    for b in &brokers {
        let id = *b;
        let node = NodeId::Broker(id);
        let (shared, disk) = (shared.clone(), disk.clone());
        let config = scenario.cluster.broker_config.clone();
        let topics = topics.clone();
        let h = spawn_node(&handle, node, move || {
            let (shared, disk, config, topics) =
                (shared.clone(), disk.clone(), config.clone(), topics.clone());
            async move {
                let files = read_files(&disk, node);
                let mut out = Effects::new();
                let broker = Broker::recover(id, config, topics, &files, &mut out);
                run_actor(node, broker, out, shared, disk).await
            }
        });
        handles.insert(node, h);
    }
    workload::producer::spawn(
        &handle,
        &scenario,
        seed,
        &producer_specs,
        &brokers,
        &shared,
        &disk,
        &mut handles,
    );
    workload::consumer::spawn(
        &handle,
        seed,
        &consumer_specs,
        &brokers,
        &shared,
        &disk,
        &mut handles,
    );
    workload::processor::spawn(
        &handle,
        seed,
        &processor_specs,
        &brokers,
        &shared,
        &disk,
        &mut handles,
    );

    // Replacement producers (`replace`) do not run until their entry fires.
    let standby: BTreeSet<NodeId> = scenario
        .faults
        .replacements
        .iter()
        .map(|r| NodeId::Producer(r.node))
        .collect();
    for n in &standby {
        handle.kill(handles[n].id());
    }

    // ---- fault phase ----
    let mut nemesis_rng = stream_rng(seed, streams::NEMESIS);
    let disk_rng = stream_rng(seed, streams::DISK);
    let plan = nemesis::plan(
        &scenario.faults,
        scenario.cluster.brokers,
        scenario.duration_ms,
        &mut nemesis_rng,
    );
    let mut nem = Nemesis {
        state: NemesisState {
            added_partitions,
            down: standby,
            ..NemesisState::default()
        },
        handles: &handles,
        shared: &shared,
        assignment: &assignment,
        all_nodes: &nodes,
        brokers: scenario.cluster.brokers,
        rng: nemesis_rng,
        disk_rng,
        disk: &disk,
        spare_last_replica: scenario.faults.spare_last_replica,
    };
    let mut records = Vec::new();
    for fault in &plan {
        crate::runtime::sleep_exactly_until(start + Duration::from_millis(fault.at_ms)).await;
        let rec = nem.execute(fault);
        records.push(rec);
    }

    // ---- heal phase ----
    crate::runtime::sleep_exactly_until(start + Duration::from_millis(scenario.duration_ms)).await;
    let heal = PlannedFault {
        at_ms: scenario.duration_ms,
        action: FaultAction::Heal,
        source: FaultSource::HealPhase,
    };
    records.push(nem.execute(&heal));
    // Disk faults not yet triggered are healed too.
    for b in &brokers {
        disk.inject_fault(
            &NodeId::Broker(*b).to_string(),
            crate::disk::DiskFaultKind::Eio,
            0,
        );
    }
    let paused: Vec<NodeId> = nem.state.paused.iter().copied().collect();
    for node in paused {
        let resume = PlannedFault {
            at_ms: scenario.duration_ms,
            action: FaultAction::Resume(node_selector(node)),
            source: FaultSource::HealPhase,
        };
        records.push(nem.execute(&resume));
    }
    let halted: Vec<NodeId> = shared.lock().expect("shared").halted.drain(..).collect();
    let stopped: Vec<NodeId> = nem
        .state
        .down
        .iter()
        .copied()
        .chain(halted)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    for node in stopped {
        let restart = PlannedFault {
            at_ms: scenario.duration_ms,
            action: FaultAction::Restart(node_selector(node)),
            source: FaultSource::HealPhase,
        };
        if nem.state.down.contains(&node) {
            records.push(nem.execute(&restart));
        } else {
            // A halted process: its node is still "running" in madsim. Kill it first so its
            // sockets are released (madsim's restart alone does not reset the network), then
            // start it again.
            handle.kill(handles[&node].id());
            shared.lock().expect("shared").reset_connections_to(node);
            handle.restart(handles[&node].id());
            records.push(FaultRecord::new(
                &restart,
                scenario.duration_ms,
                vec![node.to_string()],
                Some("halted process restarted".into()),
            ));
        }
    }
    let mut end_ms = scenario.duration_ms + scenario.heal_ms;
    crate::runtime::sleep_exactly_until(start + Duration::from_millis(end_ms)).await;
    // ---- waiting for recovery ----
    // A partition that took no write since the heal may still be within the time the
    // configured timeouts need (a restarted broker waits for its old session to expire, ...):
    // wait, a second at a time, until every partition took one or the longest recovery those
    // timeouts explain has passed. A run that recovered within `heal_ms` never gets here.
    let (bound_ms, bound_from) = crate::check::liveness::recovery_bound_ms(&scenario);
    let give_up_ms = scenario.duration_ms + bound_ms;
    let mut extended = false;
    while end_ms < give_up_ms {
        let stuck = {
            let s = shared.lock().expect("shared");
            !crate::check::liveness::unrecovered(&s.history, &s.events, scenario.duration_ms)
                .is_empty()
        };
        if !stuck {
            break;
        }
        if !extended {
            extended = true;
            shared.lock().expect("shared").record_event(
                NodeId::Zk,
                Event::HealPhaseExtended {
                    heal_phase_end_ms: end_ms,
                    recovery_bound_ms: bound_ms,
                    bound_from: bound_from.clone(),
                },
            );
        }
        end_ms = (end_ms + RECOVERY_POLL_MS).min(give_up_ms);
        crate::runtime::sleep_exactly_until(start + Duration::from_millis(end_ms)).await;
    }
    // ---- final drain ----
    // Producers stop (sends still unanswered stay open: indeterminate, as Jepsen treats them),
    // then consumers get DRAIN_MS to read everything that was acknowledged.
    for n in &nodes {
        if matches!(n, NodeId::Producer(_)) {
            handle.kill(handles[n].id());
            shared.lock().expect("shared").reset_connections_to(*n);
        }
    }
    crate::runtime::sleep_exactly_until(start + Duration::from_millis(end_ms + DRAIN_MS)).await;

    // ---- collect ----
    {
        let tps: Vec<TopicPartition> = assignment.keys().cloned().collect();
        shared.lock().expect("shared").snapshot_all(&tps, "final");
    }
    let mut final_logs = BTreeMap::new();
    for b in &brokers {
        let node = NodeId::Broker(*b);
        let files = read_files(&disk, node);
        let mut scratch = Vec::new();
        let dirs: BTreeSet<TopicPartition> = files
            .keys()
            .filter_map(|f| f.split_once('/'))
            .filter_map(|(d, _)| {
                d.rsplit_once('-')
                    .and_then(|(t, p)| p.parse().ok().map(|p| TopicPartition::new(t, p)))
            })
            .collect();
        for tp in dirs {
            let (log, _) = PartitionLog::recover(&tp, &files, &mut scratch);
            let mut records: Vec<(Offset, u64)> = Vec::new();
            log.visit_records(|o, _, v, _| records.push((o, crate::snapshot::decode_value(v))));
            final_logs.insert((node, tp), records);
        }
    }
    // Stop every node: madsim does not drop a runtime's pending tasks with it (madsim#242), so
    // without this each run would keep its whole world alive and a long explore would grow
    // without bound.
    for h in handles.values() {
        handle.kill(h.id());
    }
    let mut s = shared.lock().expect("shared");
    let snapshots = std::mem::take(&mut s.snapshotter.snapshots);
    RunOutput {
        seed,
        history: std::mem::take(&mut s.history),
        events: std::mem::take(&mut s.events),
        faults: records,
        final_logs,
        snapshots,
        assignment,
        messages: s.messages,
        fsyncs: s.fsyncs,
        fsync_us: s.fsync_us,
        simulated_ms: s.now_ms(),
        wall_ms: 0,
        cpu_us: 0,
    }
}

/// Creates the madsim node of `node`; `init` runs at its start and at every restart.
pub(crate) fn spawn_node<F, Fut>(
    handle: &madsim::runtime::Handle,
    node: NodeId,
    init: F,
) -> madsim::runtime::NodeHandle
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: std::future::Future + 'static,
{
    handle
        .create_node()
        .name(node.to_string())
        .ip(node_ip(node))
        .init(init)
        .build()
}

fn node_selector(node: NodeId) -> crate::scenario::Selector {
    use crate::scenario::Selector;
    match node {
        NodeId::Zk => Selector::Zk,
        NodeId::Broker(b) => Selector::Broker(b.0),
        other => Selector::Client(other.to_string()),
    }
}

fn read_files(disk: &Arc<SimDisk>, node: NodeId) -> BTreeMap<String, Vec<u8>> {
    let d = disk.handle(&node.to_string());
    d.list()
        .into_iter()
        .filter_map(|f| d.read(&f).ok().map(|data| (f, data)))
        .collect()
}

/// What the nemesis has done so far.
#[derive(Debug, Default)]
struct NemesisState {
    /// Stopped processes (killed, shut down, power-failed, disk lost, closed clients).
    down: BTreeSet<NodeId>,
    /// Clients closed by `close` or `client-leave`: their madsim node still runs (the closed
    /// client only lets its last requests go out), so a restart kills it first.
    closed: BTreeSet<NodeId>,
    paused: BTreeSet<NodeId>,
    clogged: BTreeSet<(NodeId, NodeId)>,
    /// Brokers that lost power or their disk, or whose log took (or will take) a silent
    /// corruption: `None` until a restart after the loss (a corruption still pending at a
    /// restart lands in the next incarnation's log), then that restart's time.
    data_lost: BTreeMap<NodeId, Option<u64>>,
    /// The whole replica assignment of each scheduled `create-partitions`, by (topic, count).
    added_partitions: BTreeMap<(String, i32), Vec<Vec<BrokerId>>>,
}

/// A partition for which `node` is the only in-sync replica still holding its data, if any:
/// taking its power or disk would lose data Kafka never promised to keep (KAFKA-SEMANTICS.md:
/// durability holds while one in-sync replica survives without losing power or disk). Another
/// ISR member counts only if it is running and, if it lost power or disk itself, it joined the
/// ISR again after its restart (its leader added it back once it caught up, or a recovery
/// elected it). An ISR the controller wrote after the restart that merely kept it as a member
/// does not count: the controller may not have seen the restart yet (KIP-380: the dead
/// incarnation's registration outlives it by up to the session timeout).
fn last_in_sync_copy(
    node: NodeId,
    observer: &crate::runtime::Observer,
    state: &NemesisState,
) -> Option<TopicPartition> {
    let NodeId::Broker(b) = node else { return None };
    observer.isr.iter().find_map(|(tp, isr)| {
        let holds_data = |o: &BrokerId| {
            let n = NodeId::Broker(*o);
            let joined = observer.isr_joined_ms.get(&(tp.clone(), *o)).copied();
            !state.down.contains(&n)
                && match state.data_lost.get(&n) {
                    None => true,
                    Some(None) => false,
                    Some(Some(restarted)) => joined.is_some_and(|j| j > *restarted),
                }
        };
        // The replicas the controller's recovery weighs (the last ISR and the last-known ELR,
        // `controller::recovery_candidates`) may each hold the only copy: the controller may
        // have narrowed the ISR to a member whose dead incarnation was still registered, or a
        // recovery may have elected one. A member of the ELR never counts as another copy,
        // though: it lacks what was committed after it was dropped.
        let none = std::collections::BTreeSet::new();
        let candidates =
            ksim_model::controller::recovery_candidates(isr, observer.elr.get(tp).unwrap_or(&none));
        let others = isr.iter().any(|o| *o != b && holds_data(o));
        (candidates.contains(&b) && !others).then(|| tp.clone())
    })
}

/// A partition whose last in-sync copy `node` holds while its log is corrupt, if any. A
/// broker whose log took a silent corruption still serves its records from memory; it loses
/// them when its process stops (recovery finds the bad CRC and truncates the log there), so a
/// crash or a clean shutdown of it takes its copy as a power failure would, and
/// `spare_last_replica` spares it then too. Deciding only when the corruption is injected is
/// not enough: the copies counted then may leave the ISR later (all-faults seed 7800067: the
/// leader of events-2 was corrupted while two followers held the records, one follower's disk
/// was destroyed, the other's ZooKeeper session expired and the controller narrowed the ISR to
/// the corrupt leader and the dead follower; the leader's clean shutdown then lost 317
/// acknowledged records).
fn corrupt_last_copy(
    node: NodeId,
    observer: &crate::runtime::Observer,
    state: &NemesisState,
) -> Option<TopicPartition> {
    let corrupt_and_running =
        !state.down.contains(&node) && state.data_lost.get(&node) == Some(&None);
    if !corrupt_and_running {
        return None;
    }
    last_in_sync_copy(node, observer, state)
}

/// How a fault would take a broker's copy of its partitions (see `spared` in [`execute`]).
#[derive(Clone, Copy)]
enum Loss {
    /// At once: a power failure, a destroyed disk, a silent corruption.
    Now,
    /// When its process stops (a crash or a clean shutdown), if its log is corrupt.
    OnStop,
}

/// The nemesis at work: what it has done so far and what it needs to resolve and carry out
/// the next fault.
struct Nemesis<'a> {
    state: NemesisState,
    handles: &'a BTreeMap<NodeId, madsim::runtime::NodeHandle>,
    shared: &'a SharedRef,
    assignment: &'a BTreeMap<TopicPartition, Vec<BrokerId>>,
    all_nodes: &'a [NodeId],
    brokers: i32,
    /// The `nemesis` random stream (plan, then fire-time choices such as `random-broker`).
    rng: ChaCha8Rng,
    /// The `disk` random stream (torn tails).
    disk_rng: ChaCha8Rng,
    disk: &'a Arc<SimDisk>,
    spare_last_replica: bool,
}

impl Nemesis<'_> {
    /// Carries out one fault now and returns what it did.
    fn execute(&mut self, fault: &PlannedFault) -> FaultRecord {
        execute(
            fault,
            &mut self.state,
            self.handles,
            self.shared,
            self.assignment,
            self.all_nodes,
            self.brokers,
            &mut self.rng,
            &mut self.disk_rng,
            self.disk,
            self.spare_last_replica,
        )
    }
}

#[allow(clippy::too_many_arguments)]
fn execute(
    fault: &PlannedFault,
    state: &mut NemesisState,
    handles: &BTreeMap<NodeId, madsim::runtime::NodeHandle>,
    shared: &SharedRef,
    assignment: &BTreeMap<TopicPartition, Vec<BrokerId>>,
    all_nodes: &[NodeId],
    brokers: i32,
    rng: &mut ChaCha8Rng,
    disk_rng: &mut ChaCha8Rng,
    disk: &Arc<SimDisk>,
    spare_last_replica: bool,
) -> FaultRecord {
    let handle = madsim::runtime::Handle::current();
    let net = madsim::net::NetSim::current();
    let observer = shared.lock().expect("shared").observer.clone();
    let ctx = ResolveContext {
        observer: &observer,
        assignment,
        all_nodes,
        brokers,
    };
    let now_ms = shared.lock().expect("shared").now_ms();
    let none = BTreeSet::new();
    let mut note = None;
    // Stop a running process; returns whether it was running.
    let stop = |n: NodeId, state: &mut NemesisState, note: &mut Option<String>| -> bool {
        match handles.get(&n) {
            Some(h) if !state.down.contains(&n) => {
                state.down.insert(n);
                state.paused.remove(&n);
                handle.kill(h.id());
                let mut s = shared.lock().expect("shared");
                s.reset_connections_to(n);
                // A process that had halted itself is now down by the nemesis's hand: its
                // restart is the nemesis's to make, not the heal phase's (all-faults seed
                // 10725: a broker halted, was power-failed and restarted by the nemesis, and
                // the heal phase then crashed the running process again as "halted").
                s.halted.retain(|h| *h != n);
                true
            }
            Some(_) => {
                *note = Some(format!("{n} already down"));
                false
            }
            None => false,
        }
    };
    // `spare_last_replica`: why a random fault leaves `n` alone, if it does: taking `n`'s data
    // now (power, disk, corruption), or stopping it while its log is corrupt, would lose the
    // last in-sync copy of a partition.
    let spared = |n: NodeId, state: &NemesisState, loss: Loss| -> Option<String> {
        if fault.source != FaultSource::Random || !spare_last_replica {
            return None;
        }
        Some(match loss {
            Loss::Now => {
                let tp = last_in_sync_copy(n, &observer, state)?;
                format!("{n} spared: it holds the last in-sync copy of {tp} (spare_last_replica)")
            }
            Loss::OnStop => {
                let tp = corrupt_last_copy(n, &observer, state)?;
                format!("{n} spared: its log is corrupt, so stopping it would lose the last in-sync copy of {tp} (spare_last_replica)")
            }
        })
    };
    let touched: Vec<NodeId> = match &fault.action {
        FaultAction::Kill(sel) | FaultAction::ClientKill(sel) => {
            let nodes = nemesis::resolve(sel, &ctx, &none, rng);
            let mut hit = Vec::new();
            for n in nodes {
                if let Some(why) = spared(n, state, Loss::OnStop) {
                    note = Some(why);
                    continue;
                }
                if stop(n, state, &mut note) {
                    hit.push(n);
                }
            }
            hit
        }
        FaultAction::Shutdown(sel) => {
            // A clean shutdown: everything written reaches the disk, then the process stops.
            // (Kafka's controlled shutdown also hands leadership over first; not modelled.)
            let nodes = nemesis::resolve(sel, &ctx, &none, rng);
            let mut hit = Vec::new();
            for n in nodes {
                if let Some(why) = spared(n, state, Loss::OnStop) {
                    note = Some(why);
                    continue;
                }
                if !state.down.contains(&n) {
                    disk.sync_all(&n.to_string());
                }
                if stop(n, state, &mut note) {
                    hit.push(n);
                }
            }
            hit
        }
        FaultAction::PowerFail(sel) | FaultAction::DiskLoss(sel) => {
            let wipe = matches!(fault.action, FaultAction::DiskLoss(_));
            let nodes = nemesis::resolve(sel, &ctx, &none, rng);
            let mut hit = Vec::new();
            for n in nodes {
                if let Some(why) = spared(n, state, Loss::Now) {
                    note = Some(why);
                    continue;
                }
                let was_running = !state.down.contains(&n);
                if was_running {
                    stop(n, state, &mut note);
                }
                // Power is lost even if the process had already crashed: the page cache goes.
                if wipe {
                    disk.wipe(&n.to_string());
                } else {
                    disk.power_fail(&n.to_string(), true, disk_rng);
                }
                state.down.insert(n);
                state.data_lost.insert(n, None);
                hit.push(n);
            }
            hit
        }
        FaultAction::Restart(sel) => {
            let nodes = nemesis::resolve(sel, &ctx, &none, rng);
            let mut hit = Vec::new();
            for n in nodes {
                if let Some(h) = handles.get(&n) {
                    if state.down.remove(&n) {
                        if state.closed.remove(&n) {
                            // A closed client's node still runs: stop it so its sockets are
                            // released (madsim's restart alone does not reset the network).
                            handle.kill(h.id());
                            shared.lock().expect("shared").reset_connections_to(n);
                        }
                        handle.restart(h.id());
                        // A silent corruption still waiting for its write will land in the
                        // log this incarnation writes: it holds no trustworthy copy until it
                        // has restarted after the corruption landed (all-faults seed 10725:
                        // corruption injected into a halted broker hit the log it fetched
                        // after its restart, and the nemesis, counting it as a copy, took the
                        // power of the last good one).
                        let corruption_pending = disk
                            .pending_fault(&n.to_string())
                            .is_some_and(|f| f.kind == crate::disk::DiskFaultKind::Corrupt);
                        if let Some(lost) = state.data_lost.get_mut(&n) {
                            *lost = (!corruption_pending).then_some(now_ms);
                        }
                        hit.push(n);
                    } else {
                        note = Some(format!("{n} already running"));
                    }
                }
            }
            hit
        }
        FaultAction::Replace {
            client,
            replacement,
        } => {
            // The orchestrator starts the replacement's process; the replaced one is left as
            // it is (paused, cut off or running).
            let nodes = nemesis::resolve(replacement, &ctx, &none, rng);
            let mut hit = Vec::new();
            for n in nodes {
                if state.down.remove(&n) {
                    handle.restart(handles[&n].id());
                    hit.push(n);
                } else {
                    note = Some(format!("{n} already running"));
                }
            }
            note.get_or_insert_with(|| format!("replaces {client}"));
            hit
        }
        FaultAction::Close(sel) | FaultAction::ClientLeave(sel) => {
            // The application calls close(): the client finishes it on its own (commit,
            // LeaveGroup) and stops; to the nemesis it is down until a restart.
            let nodes = nemesis::resolve(sel, &ctx, &none, rng);
            let mut hit = Vec::new();
            for n in nodes {
                if state.down.contains(&n) {
                    note = Some(format!("{n} already down"));
                } else if state.paused.contains(&n) {
                    note = Some(format!("{n} is paused"));
                } else if shared.lock().expect("shared").deliver(n, n, Message::Close) {
                    state.down.insert(n);
                    state.closed.insert(n);
                    hit.push(n);
                }
            }
            hit
        }
        FaultAction::Pause(sel) | FaultAction::ClientPause(sel) => {
            let nodes = nemesis::resolve(sel, &ctx, &none, rng);
            let mut hit = Vec::new();
            for n in nodes {
                if state.down.contains(&n) {
                    note = Some(format!("{n} is down"));
                } else if state.paused.insert(n) {
                    handle.pause(handles[&n].id());
                    hit.push(n);
                }
            }
            hit
        }
        FaultAction::Resume(sel) => {
            let nodes = nemesis::resolve(sel, &ctx, &none, rng);
            let mut hit = Vec::new();
            for n in nodes {
                if state.paused.remove(&n) {
                    handle.resume(handles[&n].id());
                    hit.push(n);
                }
            }
            hit
        }
        FaultAction::Partition(groups) => {
            let groups = nemesis::resolve_groups(groups, &ctx, rng);
            let mut hit = BTreeSet::new();
            for (i, a) in groups.iter().enumerate() {
                for (j, b) in groups.iter().enumerate() {
                    if i == j {
                        continue;
                    }
                    for x in a {
                        for y in b {
                            if x != y && state.clogged.insert((*x, *y)) {
                                net.clog_link(handles[x].id(), handles[y].id());
                            }
                            hit.insert(*x);
                        }
                    }
                }
            }
            let names: Vec<String> = groups
                .iter()
                .map(|g| {
                    g.iter()
                        .map(|n| n.to_string())
                        .collect::<Vec<_>>()
                        .join(",")
                })
                .collect();
            tracing::info!(action = "partition", groups = ?names, source = fault.source.name(), "fault");
            let mut s = shared.lock().expect("shared");
            s.record_event(
                NodeId::Zk,
                Event::Fault {
                    action: "partition".into(),
                    nodes: names.clone(),
                    source: fault.source.name().into(),
                },
            );
            drop(s);
            return FaultRecord::new(fault, now_ms, names, None);
        }
        FaultAction::Isolate(sel) => {
            let nodes = nemesis::resolve(sel, &ctx, &none, rng);
            for x in &nodes {
                for y in all_nodes {
                    if x != y {
                        for (a, b) in [(*x, *y), (*y, *x)] {
                            if state.clogged.insert((a, b)) {
                                net.clog_link(handles[&a].id(), handles[&b].id());
                            }
                        }
                    }
                }
            }
            nodes
        }
        FaultAction::Clog { from, to } => {
            let from = nemesis::resolve(from, &ctx, &none, rng);
            let to = nemesis::resolve(to, &ctx, &none, rng);
            for x in &from {
                for y in &to {
                    if x != y && state.clogged.insert((*x, *y)) {
                        net.clog_link(handles[x].id(), handles[y].id());
                    }
                }
            }
            from.into_iter().chain(to).collect()
        }
        FaultAction::Heal => {
            for (x, y) in std::mem::take(&mut state.clogged) {
                net.unclog_link(handles[&x].id(), handles[&y].id());
            }
            vec![]
        }
        FaultAction::CreatePartitions { .. } | FaultAction::DeleteTopic(_) => {
            // Topic administration: the request goes to every running broker, as if an admin
            // client had sent it; the active controller carries it out (see `AdminOp`).
            let msg = match &fault.action {
                FaultAction::CreatePartitions { topic, count } => Message::CreatePartitions {
                    topic: topic.clone(),
                    assignment: state
                        .added_partitions
                        .get(&(topic.clone(), *count))
                        .cloned()
                        .expect("assigned at the start"),
                },
                FaultAction::DeleteTopic(topic) => Message::DeleteTopics {
                    topic: topic.clone(),
                },
                _ => unreachable!(),
            };
            let s = shared.lock().expect("shared");
            let mut hit = Vec::new();
            for b in 0..brokers {
                let n = NodeId::Broker(BrokerId(b));
                if !state.down.contains(&n) && s.deliver(n, n, msg.clone()) {
                    hit.push(n);
                }
            }
            hit
        }
        FaultAction::DiskFault { node, kind } => {
            let nodes = nemesis::resolve(node, &ctx, &none, rng);
            let kind = match kind {
                crate::scenario::DiskFaultKind::Eio => crate::disk::DiskFaultKind::Eio,
                crate::scenario::DiskFaultKind::Full => crate::disk::DiskFaultKind::Full,
                crate::scenario::DiskFaultKind::Corrupt => crate::disk::DiskFaultKind::Corrupt,
            };
            let mut hit = Vec::new();
            for n in nodes {
                if kind == crate::disk::DiskFaultKind::Corrupt {
                    // Silent corruption destroys data like a power loss does (it surfaces when
                    // recovery finds the bad CRC), so it spares the last in-sync copy too, and
                    // the broker no longer counts as a copy until it restarts and catches up.
                    if let Some(why) = spared(n, state, Loss::Now) {
                        note = Some(why);
                        continue;
                    }
                    state.data_lost.insert(n, None);
                }
                disk.inject_fault(&n.to_string(), kind, 1);
                hit.push(n);
            }
            hit
        }
    };
    let names: Vec<String> = touched.iter().map(|n| n.to_string()).collect();
    tracing::info!(action = fault.action.key(), nodes = ?names, source = fault.source.name(), "fault");
    let mut s = shared.lock().expect("shared");
    let attributed = touched.first().copied().unwrap_or(NodeId::Zk);
    s.record_event(
        attributed,
        Event::Fault {
            action: fault.action.key().into(),
            nodes: names.clone(),
            source: fault.source.name().into(),
        },
    );
    drop(s);
    FaultRecord::new(fault, now_ms, names, note)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::Observer;
    use ksim_model::event::Event;
    use ksim_model::types::{ControllerEpoch, LeaderEpoch, TopicPartition, ZkVersion};

    /// A state write as the controller makes it, with the last-known ELR it carries.
    fn state_changed(isr: &[i32], leader: Option<i32>, reason: &str, elr: &[i32]) -> Event {
        Event::PartitionStateChanged {
            tp: TopicPartition {
                topic: "events".into(),
                partition: 1,
            },
            leader: leader.map(BrokerId),
            leader_epoch: LeaderEpoch(1),
            isr: isr.iter().copied().map(BrokerId).collect(),
            controller_epoch: ControllerEpoch(1),
            partition_epoch: ZkVersion(1),
            reason: reason.into(),
            last_known_elr: elr.iter().copied().map(BrokerId).collect(),
        }
    }

    /// Regression (`kip-101-divergence-fixed` seeds 43, 50, ...): broker-1 lost power while
    /// broker-0 led events-1 with ISR [0, 1]; broker-0 then crashed, and the controller, still
    /// seeing broker-1's dead incarnation registered, narrowed the ISR to [1]. broker-0, which
    /// crashed without losing power and sits in the controller's last-known ELR (KIP-966),
    /// then holds the only copy of the committed records: the nemesis with
    /// `spare_last_replica` must not take its power, even though the ISR does not name it.
    #[test]
    fn a_replica_dropped_from_the_isr_when_it_failed_may_hold_the_last_copy() {
        let mut observer = Observer::default();
        observer.observe(100, &state_changed(&[0, 1], Some(0), "new-partition", &[]));
        let mut state = NemesisState::default();
        // broker-1 loses power and restarts with a truncated log.
        state
            .data_lost
            .insert(NodeId::Broker(BrokerId(1)), Some(2_000));
        // broker-0 crashes: the controller elects broker-1's dead registration, and keeps
        // broker-0 in the last-known ELR (provisionally: broker-1 has not led yet).
        observer.observe(
            3_000,
            &state_changed(&[1], Some(1), "leader-election", &[0]),
        );
        assert_eq!(
            last_in_sync_copy(NodeId::Broker(BrokerId(0)), &observer, &state),
            Some(TopicPartition {
                topic: "events".into(),
                partition: 1
            }),
            "broker-0 is the only replica still holding the committed records"
        );
        // Once broker-2, which kept its log, caught up and joined the ISR, broker-0 is no
        // longer the last copy.
        observer.observe(5_000, &state_changed(&[1, 2], Some(1), "isr-change", &[]));
        assert_eq!(
            last_in_sync_copy(NodeId::Broker(BrokerId(0)), &observer, &state),
            None
        );
        // An ELR member is no copy of what the ISR committed after it was dropped: with the
        // ISR down to broker-0 (broker-1 dropped when it failed), broker-0 holds the last copy.
        let mut observer = Observer::default();
        observer.observe(100, &state_changed(&[0, 1], Some(0), "new-partition", &[]));
        observer.observe(3_000, &state_changed(&[0], Some(0), "broker-failed", &[1]));
        assert!(last_in_sync_copy(
            NodeId::Broker(BrokerId(0)),
            &observer,
            &NemesisState::default()
        )
        .is_some());
        // A replica its leader dropped for lagging never holds the last copy.
        let mut observer = Observer::default();
        observer.observe(100, &state_changed(&[0, 1], Some(0), "new-partition", &[]));
        observer.observe(3_000, &state_changed(&[1], Some(1), "isr-change", &[]));
        assert_eq!(
            last_in_sync_copy(
                NodeId::Broker(BrokerId(0)),
                &observer,
                &NemesisState::default()
            ),
            None
        );
    }
}
