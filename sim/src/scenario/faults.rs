//! Faults and topic administration: the random nemesis' kinds, the `[[faults.schedule]]`
//! actions and the selectors that name their brokers, partitions and clients, with their
//! validation.
//!
//! # Topic administration in the schedule
//! Besides fault actions, a `[[faults.schedule]]` entry may administer topics (one action per
//! entry, like the faults):
//!
//! ```toml
//! [[faults.schedule]]
//! at_ms = 6000
//! create-partitions = { topic = "events", count = 5 }   # raise the partition count
//! [[faults.schedule]]
//! at_ms = 10000
//! delete-topic = "scratch"                              # delete the topic and its logs
//! ```
//!
//! The request goes to every running broker and the active controller carries it out (a later
//! controller does if none is active). `create-partitions` must increase the count: a decrease
//! or the same count is refused at load time with Kafka's messages ("Topic currently has 3
//! partitions, which is higher than the requested 2." / "Topic already has 3 partitions.").
//! New partitions get replicas as Kafka's `AdminZkClient.addPartitions` assigns them; clients
//! see them on their next metadata refresh (`metadata.max.age.ms`), and keyed records then go
//! to `murmur2(key) % new count`. A deleted topic's records are not judged by the durability
//! checks (the report notes it); its producers' sends fail or time out, as Kafka's do.

use super::*;

/// `[faults]`: the random nemesis and the scripted faults.
#[derive(Debug, Clone, Serialize)]
pub struct FaultsSpec {
    /// `kinds` ([]): the random nemesis' fault kinds; empty turns it off.
    pub kinds: Vec<FaultKind>,
    /// `interval_ms` ([1000, 5000]): gap between faults, uniform in `[min, max]`, min >= 1.
    pub interval_ms: [u64; 2],
    /// `duration_ms` ([500, 4000]): how long a partition/pause lasts, uniform in `[min, max]`.
    pub duration_ms: [u64; 2],
    /// `swarm` (false): draw each kind's weight from the seed.
    pub swarm: bool,
    /// `spare_last_replica` (true): random faults never power-fail, wipe or corrupt a broker
    /// holding the last in-sync copy of a partition, nor crash or shut down one whose log is
    /// corrupt while it holds that copy (it would lose it at its recovery).
    pub spare_last_replica: bool,
    /// `[[faults.schedule]]`, sorted by `at_ms` (stable: entries at the same time keep file order).
    pub schedule: Vec<ScheduledFault>,
    /// Not a key: the client processes the random `client-kill` and `client-pause` draw from,
    /// in node order (`producer-0`.., then `consumer-0`..).
    #[serde(skip)]
    pub clients: Vec<String>,
    /// Not a key: the consumer group members (subscribe mode) `client-leave` draws from.
    #[serde(skip)]
    pub members: Vec<String>,
    /// Not a key: the producer clients that `replace` entries start, in schedule order (see
    /// [`FaultAction::Replace`]).
    #[serde(skip)]
    pub replacements: Vec<Replacement>,
}

/// A replacement producer process that a `replace = "client:producer-N"` entry starts: client
/// `producer-<node>`, numbered after the scenario's own producers in schedule order, running
/// the `[[producers]]` entry of `producer-<replaces>` with its `transactional.id`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Replacement {
    /// Its producer client number (`producer-<node>`).
    pub node: u32,
    /// The producer client it replaces.
    pub replaces: u32,
}

/// A random nemesis fault kind (`faults.kinds`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FaultKind {
    Kill,
    Restart,
    Shutdown,
    Pause,
    Partition,
    Isolate,
    Clog,
    PowerFail,
    DiskLoss,
    DiskFault,
    /// A random client process (consumer or producer) crashes and starts again after a drawn
    /// `duration_ms`: a group member rejoins as a new process and resumes from its group's
    /// committed offsets.
    ClientKill,
    /// A random client process stops (a GC pause) for a drawn `duration_ms`; a group member
    /// paused past `session.timeout.ms` comes back as a zombie that does not know it was
    /// removed.
    ClientPause,
    /// A random consumer group member closes cleanly (its commit on close, then LeaveGroup)
    /// and starts again after a drawn `duration_ms`.
    ClientLeave,
}

impl FaultKind {
    /// Every kind, in SCENARIOS.md order.
    pub const ALL: &'static [FaultKind] = &[
        FaultKind::Kill,
        FaultKind::Restart,
        FaultKind::Shutdown,
        FaultKind::Pause,
        FaultKind::Partition,
        FaultKind::Isolate,
        FaultKind::Clog,
        FaultKind::PowerFail,
        FaultKind::DiskLoss,
        FaultKind::DiskFault,
        FaultKind::ClientKill,
        FaultKind::ClientPause,
        FaultKind::ClientLeave,
    ];

    /// The name used in scenario files (`power-fail`).
    pub fn name(self) -> &'static str {
        match self {
            FaultKind::Kill => "kill",
            FaultKind::Restart => "restart",
            FaultKind::Shutdown => "shutdown",
            FaultKind::Pause => "pause",
            FaultKind::Partition => "partition",
            FaultKind::Isolate => "isolate",
            FaultKind::Clog => "clog",
            FaultKind::PowerFail => "power-fail",
            FaultKind::DiskLoss => "disk-loss",
            FaultKind::DiskFault => "disk-fault",
            FaultKind::ClientKill => "client-kill",
            FaultKind::ClientPause => "client-pause",
            FaultKind::ClientLeave => "client-leave",
        }
    }

    /// Whether this kind acts on client processes rather than on brokers.
    pub fn is_client(self) -> bool {
        matches!(
            self,
            FaultKind::ClientKill | FaultKind::ClientPause | FaultKind::ClientLeave
        )
    }

    /// Whether the simulator implements this kind yet.
    pub fn is_supported(self) -> bool {
        SUPPORTED_FAULT_KINDS.contains(&self)
    }
}

impl fmt::Display for FaultKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One `[[faults.schedule]]` entry.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScheduledFault {
    /// When it fires, in simulated ms from the start (<= `duration_ms`).
    pub at_ms: u64,
    pub action: FaultAction,
}

/// The effect of a disk fault (`disk-fault = { node, kind }`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DiskFaultKind {
    /// The next disk operation(s) fail with EIO.
    Eio,
    /// The next disk operation(s) fail with ENOSPC.
    Full,
    /// The next write is silently corrupted.
    Corrupt,
}

/// A scripted fault action. Selectors are resolved when the fault fires.
/// Serialized externally tagged with the scenario key: `{"kill": "follower:events-0"}`,
/// `"heal"`, `{"clog": {"from": .., "to": ..}}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FaultAction {
    /// Process crash (SIGKILL); the disk survives with its page cache.
    Kill(Selector),
    /// Power loss: unsynced writes lost, the last one may be torn.
    PowerFail(Selector),
    /// Start a stopped node again.
    Restart(Selector),
    /// Power loss and an empty disk on restart.
    DiskLoss(Selector),
    /// Clean shutdown.
    Shutdown(Selector),
    /// Process pause (GC stop-the-world).
    Pause(Selector),
    /// End a pause.
    Resume(Selector),
    /// Groups that can only talk inside themselves; `rest` may appear in one group.
    Partition(Vec<Vec<Selector>>),
    /// Cut one node off from all others.
    Isolate(Selector),
    /// One-way link failure from `from` to `to`.
    Clog { from: Selector, to: Selector },
    /// Undo every partition, isolation and clog.
    Heal,
    /// The next disk operation(s) of `node` fail that way.
    DiskFault { node: Selector, kind: DiskFaultKind },
    /// Topic administration, not a fault: raise `topic`'s partition count to `count`
    /// (`create-partitions = { topic = "events", count = 4 }`, Kafka's
    /// `kafka-topics --alter --partitions`). The loader refuses a count that is not an
    /// increase, with Kafka's message. The new partitions' replicas follow Kafka's
    /// `AdminZkClient.addPartitions` (rack-unaware, continuing from partition 0's first replica).
    CreatePartitions { topic: String, count: i32 },
    /// Topic administration: delete the topic (`delete-topic = "events"`, Kafka's
    /// `kafka-topics --delete`). Its records are no longer judged by the durability checks.
    DeleteTopic(String),
    /// The application closes a client cleanly (`close = "client:NAME"`): a consumer commits
    /// as its commit mode does on close (with `enable.auto.commit`, Kafka's
    /// `ConsumerCoordinator.close` → `maybeAutoCommitOffsetsSync`; with `commit = "sync"` or
    /// `"async"`, its `onPartitionsRevoked` calls `commitSync()`), a group member then sends
    /// LeaveGroup (`AbstractCoordinator.maybeLeaveGroup`, dynamic members only, KIP-345) and
    /// the consumer stops; a producer stops taking records and completes what it buffered
    /// (`KafkaProducer.close()`). A later `restart` starts a new process.
    Close(Selector),
    /// The orchestrator starts a replacement of a producer (`replace = "client:producer-N"`):
    /// a new process on a node of its own, `replacement` (`client:producer-M`, numbered after
    /// the scenario's producers: the first `replace` of a scenario with two producers starts
    /// `producer-2`), with the replaced producer's `[[producers]]` entry and so its
    /// `transactional.id` (`"<transactional.id>-N"`). Its `initTransactions()` fences every
    /// earlier instance of that id. The replaced process is left as it is: the way Kafka users
    /// meet a zombie producer, a pod stopped by a long GC pause (or cut off from the cluster)
    /// that its orchestrator takes for dead and replaces, and that then wakes up and carries
    /// on (KIP-98 "zombie fencing"). The replacement is down until then; faults may name it
    /// afterwards, and the heal phase starts it if no `replace` did.
    Replace {
        client: Selector,
        replacement: Selector,
    },
    /// The random `client-kill`: like [`FaultAction::Kill`] of a client; its fault event is
    /// `client-kill`. Not a schedule key.
    ClientKill(Selector),
    /// The random `client-pause`: like [`FaultAction::Pause`] of a client (its end is a
    /// `resume`); its fault event is `client-pause`. Not a schedule key.
    ClientPause(Selector),
    /// The random `client-leave`: like [`FaultAction::Close`] of a consumer (its end is a
    /// `restart`); its fault event is `client-leave`. Not a schedule key.
    ClientLeave(Selector),
}

impl FaultAction {
    /// The scenario key of this action (`power-fail`).
    pub fn key(&self) -> &'static str {
        match self {
            FaultAction::Kill(_) => "kill",
            FaultAction::PowerFail(_) => "power-fail",
            FaultAction::Restart(_) => "restart",
            FaultAction::DiskLoss(_) => "disk-loss",
            FaultAction::Shutdown(_) => "shutdown",
            FaultAction::Pause(_) => "pause",
            FaultAction::Resume(_) => "resume",
            FaultAction::Partition(_) => "partition",
            FaultAction::Isolate(_) => "isolate",
            FaultAction::Clog { .. } => "clog",
            FaultAction::Heal => "heal",
            FaultAction::DiskFault { .. } => "disk-fault",
            FaultAction::CreatePartitions { .. } => "create-partitions",
            FaultAction::DeleteTopic(_) => "delete-topic",
            FaultAction::Close(_) => "close",
            FaultAction::Replace { .. } => "replace",
            FaultAction::ClientKill(_) => "client-kill",
            FaultAction::ClientPause(_) => "client-pause",
            FaultAction::ClientLeave(_) => "client-leave",
        }
    }
}

/// A node selector (SCENARIOS.md "Node selectors"). `Display` gives the form written in the
/// file, and that is also how it serializes.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Selector {
    /// `broker-N`.
    Broker(i32),
    /// `zk`: the coordination node.
    Zk,
    /// `controller`: the active controller when the fault fires.
    Controller,
    /// `leader:TOPIC-P`: the partition's leader when the fault fires.
    Leader(TopicPartition),
    /// `follower:TOPIC-P`: its first follower by replica order.
    Follower(TopicPartition),
    /// `isr:TOPIC-P`: every member of its ISR.
    Isr(TopicPartition),
    /// `client:NAME`: a client node, `producer-N` or `consumer-N` (numbered across entries).
    Client(String),
    /// `rest`: every node not named elsewhere in the same fault (only in `partition`).
    Rest,
    /// `random-broker`: a broker drawn from the seed.
    RandomBroker,
}

/// The selector forms, for error messages.
pub const SELECTOR_FORMS: &str =
    "broker-N, zk, controller, leader:TOPIC-P, follower:TOPIC-P, isr:TOPIC-P, client:NAME, rest, random-broker";

impl Selector {
    /// Parses the syntax only (no check that the broker/topic/client exists).
    pub fn parse(s: &str) -> Result<Selector, String> {
        let bad = || format!("unknown node selector \"{s}\"; expected one of: {SELECTOR_FORMS}");
        let tp = |rest: &str| -> Result<TopicPartition, String> {
            let (topic, p) = rest.rsplit_once('-').ok_or_else(bad)?;
            let partition: i32 = p.parse().map_err(|_| bad())?;
            if topic.is_empty() || partition < 0 {
                return Err(bad());
            }
            Ok(TopicPartition::new(topic, partition))
        };
        Ok(match s {
            "zk" => Selector::Zk,
            "controller" => Selector::Controller,
            "rest" => Selector::Rest,
            "random-broker" => Selector::RandomBroker,
            _ => {
                if let Some(rest) = s.strip_prefix("leader:") {
                    Selector::Leader(tp(rest)?)
                } else if let Some(rest) = s.strip_prefix("follower:") {
                    Selector::Follower(tp(rest)?)
                } else if let Some(rest) = s.strip_prefix("isr:") {
                    Selector::Isr(tp(rest)?)
                } else if let Some(name) = s.strip_prefix("client:") {
                    if name.is_empty() {
                        return Err(bad());
                    }
                    Selector::Client(name.to_string())
                } else if let Some(n) = s.strip_prefix("broker-") {
                    match n.parse::<i32>() {
                        Ok(id) if id >= 0 && !n.starts_with('+') => Selector::Broker(id),
                        _ => return Err(bad()),
                    }
                } else {
                    return Err(bad());
                }
            }
        })
    }
}

impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Selector::Broker(b) => write!(f, "broker-{b}"),
            Selector::Zk => f.write_str("zk"),
            Selector::Controller => f.write_str("controller"),
            Selector::Leader(tp) => write!(f, "leader:{tp}"),
            Selector::Follower(tp) => write!(f, "follower:{tp}"),
            Selector::Isr(tp) => write!(f, "isr:{tp}"),
            Selector::Client(n) => write!(f, "client:{n}"),
            Selector::Rest => f.write_str("rest"),
            Selector::RandomBroker => f.write_str("random-broker"),
        }
    }
}

impl Serialize for Selector {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

pub(super) fn resolve_faults(
    ctx: &Ctx<'_>,
    sc: &Scenario,
    f: RawFaults,
) -> Result<FaultsSpec, ScenarioError> {
    let mut kinds = Vec::new();
    for k in &f.kinds {
        let kind = *k.get_ref();
        if !kind.is_supported() {
            return Err(ctx.at(
                k,
                "faults.kinds",
                format!("not supported yet: faults.kinds = \"{kind}\""),
            ));
        }
        if kind.is_client()
            && sc.producer_clients() + sc.consumer_clients() + sc.processor_clients() == 0
        {
            return Err(ctx.at(
                k,
                "faults.kinds",
                format!("faults.kinds = \"{kind}\" needs a client: the scenario has no producer, consumer or processor"),
            ));
        }
        if kind == FaultKind::ClientLeave
            && !sc.consumers.iter().any(|c| c.group.is_some())
            && sc.processors.is_empty()
        {
            return Err(ctx.at(
                k,
                "faults.kinds",
                "faults.kinds = \"client-leave\" needs a group member: no [[consumers]] entry has a `group` and there is no [[processors]] entry",
            ));
        }
        if !kinds.contains(&kind) {
            kinds.push(kind);
        }
    }
    let range = |r: &Option<Spanned<[u64; 2]>>, key: &str, default: [u64; 2], min: u64| {
        let Some(r) = r else { return Ok(default) };
        let [lo, hi] = *r.get_ref();
        if lo > hi {
            return Err(ctx.at(
                r,
                key,
                format!("{key} = [{lo}, {hi}]: the minimum is above the maximum"),
            ));
        }
        if lo < min {
            return Err(ctx.at(
                r,
                key,
                format!("{key} = [{lo}, {hi}]: the minimum must be at least {min}"),
            ));
        }
        Ok([lo, hi])
    };
    let mut clients: Vec<String> = (0..sc.producer_clients())
        .map(|i| format!("producer-{i}"))
        .collect();
    let mut members = Vec::new();
    let mut next = 0u32;
    for c in &sc.consumers {
        for _ in 0..c.members {
            let name = format!("consumer-{next}");
            if c.group.is_some() {
                members.push(name.clone());
            }
            clients.push(name);
            next += 1;
        }
    }
    for n in 0..sc.processor_clients() {
        let name = format!("processor-{n}");
        members.push(name.clone());
        clients.push(name);
    }
    let interval_ms = range(&f.interval_ms, "faults.interval_ms", [1_000, 5_000], 1)?;
    let duration_ms = range(&f.duration_ms, "faults.duration_ms", [500, 4_000], 0)?;

    let replacing = f.schedule.iter().filter(|e| e.replace.is_some()).count() as u32;
    let max = crate::world::NODES_PER_KIND_MAX;
    if let Some(e) = f.schedule.iter().find(|e| e.replace.is_some()) {
        if sc.producer_clients() + replacing > max {
            return Err(ctx.at(
                e.replace.as_ref().expect("replace"),
                "faults.schedule.replace",
                format!(
                    "{} producers and {replacing} replacements are more than ksim supports: at \
                     most {max} producer clients (the simulated network gives each kind of node \
                     one /24 of addresses)",
                    sc.producer_clients()
                ),
            ));
        }
    }
    let mut schedule = Vec::new();
    for (i, e) in f.schedule.iter().enumerate() {
        let path = format!("faults.schedule[{i}]");
        let at_ms = *e.at_ms.get_ref();
        if at_ms > sc.duration_ms {
            return Err(ctx.at(
                &e.at_ms,
                format!("{path}.at_ms"),
                format!(
                    "at_ms {at_ms} is after the end of the fault phase (duration_ms = {})",
                    sc.duration_ms
                ),
            ));
        }
        let action = resolve_action(ctx, sc, e, &path, replacing)?;
        schedule.push(ScheduledFault { at_ms, action });
    }
    check_topic_admin(ctx, sc, &f.schedule)?;
    schedule.sort_by_key(|s| s.at_ms);
    // Replacements are numbered after the scenario's producers, in schedule order.
    let mut replacements = Vec::new();
    for s in &mut schedule {
        if let FaultAction::Replace {
            client: Selector::Client(name),
            replacement,
        } = &mut s.action
        {
            let Some(NodeId::Producer(replaces)) = NodeId::parse(name) else {
                unreachable!("resolve_action accepts only producers");
            };
            let node = sc.producer_clients() + replacements.len() as u32;
            *replacement = Selector::Client(NodeId::Producer(node).to_string());
            replacements.push(Replacement { node, replaces });
        }
    }

    Ok(FaultsSpec {
        kinds,
        interval_ms,
        duration_ms,
        swarm: f.swarm.unwrap_or(false),
        spare_last_replica: f.spare_last_replica.unwrap_or(true),
        schedule,
        clients,
        members,
        replacements,
    })
}

pub(super) const ACTION_KEYS: &str = "kill, power-fail, restart, disk-loss, shutdown, pause, resume, partition, isolate, clog, heal, disk-fault, create-partitions, delete-topic, close, replace";

/// Topic administration in the schedule, in time order (file order at equal times): a topic
/// must exist (and not have been deleted), and `create-partitions` must increase its partition
/// count, refused otherwise with Kafka's own messages (`AdminZkClient.addPartitions`:
/// "Topic currently has 3 partitions, which is higher than the requested 2." and
/// "Topic already has 3 partitions.").
pub(super) fn check_topic_admin(
    ctx: &Ctx<'_>,
    sc: &Scenario,
    schedule: &[RawScheduled],
) -> Result<(), ScenarioError> {
    let mut counts: BTreeMap<&str, i32> = sc
        .topics
        .iter()
        .map(|t| (t.name.as_str(), t.partitions))
        .collect();
    let mut deleted: BTreeMap<String, u64> = BTreeMap::new();
    let mut order: Vec<(u64, usize)> = schedule
        .iter()
        .enumerate()
        .map(|(i, e)| (*e.at_ms.get_ref(), i))
        .collect();
    order.sort();
    let known = |topic: &Spanned<String>,
                 key: &str,
                 counts: &BTreeMap<&str, i32>,
                 deleted: &BTreeMap<String, u64>|
     -> Result<i32, ScenarioError> {
        let name = topic.get_ref();
        if let Some(at) = deleted.get(name) {
            return Err(ctx.at(
                topic,
                key,
                format!("topic \"{name}\" is deleted by an earlier entry (at_ms = {at})"),
            ));
        }
        counts.get(name.as_str()).copied().ok_or_else(|| {
            let names: Vec<&str> = counts.keys().copied().collect();
            ctx.at(
                topic,
                key,
                format!(
                    "unknown topic \"{name}\" (the scenario's topics: {})",
                    names.join(", ")
                ),
            )
        })
    };
    for (at_ms, i) in order {
        let e = &schedule[i];
        let path = format!("faults.schedule[{i}]");
        if let Some(cp) = &e.create_partitions {
            let key = format!("{path}.create-partitions");
            let c = cp.get_ref();
            let current = known(&c.topic, &key, &counts, &deleted)?;
            let requested = *c.count.get_ref();
            if requested < current as i64 {
                return Err(ctx.at(
                    &c.count,
                    key,
                    format!(
                        "Topic currently has {current} partitions, which is higher than the requested {requested}."
                    ),
                ));
            }
            if requested == current as i64 {
                return Err(ctx.at(
                    &c.count,
                    key,
                    format!("Topic already has {current} partitions."),
                ));
            }
            if requested > 10_000 {
                return Err(ctx.at(&c.count, key, "count must be at most 10000"));
            }
            let name = sc
                .topics
                .iter()
                .find(|t| &t.name == c.topic.get_ref())
                .map(|t| t.name.as_str())
                .expect("known topic");
            counts.insert(name, requested as i32);
        }
        if let Some(topic) = &e.delete_topic {
            let key = format!("{path}.delete-topic");
            known(topic, &key, &counts, &deleted)?;
            deleted.insert(topic.get_ref().clone(), at_ms);
        }
    }
    Ok(())
}

pub(super) fn resolve_action(
    ctx: &Ctx<'_>,
    sc: &Scenario,
    e: &RawScheduled,
    path: &str,
    replacements: u32,
) -> Result<FaultAction, ScenarioError> {
    let mut present: Vec<(&'static str, Range<usize>)> = Vec::new();
    macro_rules! note {
        ($field:ident, $name:literal) => {
            if let Some(v) = &e.$field {
                present.push(($name, v.span()));
            }
        };
    }
    note!(kill, "kill");
    note!(power_fail, "power-fail");
    note!(restart, "restart");
    note!(disk_loss, "disk-loss");
    note!(shutdown, "shutdown");
    note!(pause, "pause");
    note!(resume, "resume");
    note!(partition, "partition");
    note!(isolate, "isolate");
    note!(clog, "clog");
    note!(heal, "heal");
    note!(disk_fault, "disk-fault");
    note!(create_partitions, "create-partitions");
    note!(delete_topic, "delete-topic");
    note!(close, "close");
    note!(replace, "replace");
    let (name, span) = match present.as_slice() {
        [] => {
            return Err(ctx.at(
                &e.at_ms,
                path,
                format!("a [[faults.schedule]] entry needs one action: {ACTION_KEYS}"),
            ));
        }
        [one] => one.clone(),
        [_, second, ..] => {
            let names: Vec<&str> = present.iter().map(|(n, _)| *n).collect();
            return Err(ctx.err(
                Some(second.1.clone()),
                path,
                format!(
                    "one action per [[faults.schedule]] entry, found {}",
                    names.join(", ")
                ),
            ));
        }
    };
    let key = format!("{path}.{name}");
    if !SUPPORTED_ACTIONS.contains(&name) {
        return Err(ctx.err(
            Some(span),
            key,
            format!("not supported yet: faults.schedule.{name}"),
        ));
    }
    let one = |s: &Spanned<String>| -> Result<Selector, ScenarioError> {
        selector(ctx, sc, s, &key, false, replacements)
    };
    let action = match name {
        "kill" => FaultAction::Kill(one(e.kill.as_ref().unwrap())?),
        "power-fail" => FaultAction::PowerFail(one(e.power_fail.as_ref().unwrap())?),
        "restart" => FaultAction::Restart(one(e.restart.as_ref().unwrap())?),
        "disk-loss" => FaultAction::DiskLoss(one(e.disk_loss.as_ref().unwrap())?),
        "shutdown" => FaultAction::Shutdown(one(e.shutdown.as_ref().unwrap())?),
        "pause" => FaultAction::Pause(one(e.pause.as_ref().unwrap())?),
        "resume" => FaultAction::Resume(one(e.resume.as_ref().unwrap())?),
        "close" => {
            let s = e.close.as_ref().unwrap();
            let sel = one(s)?;
            if !matches!(sel, Selector::Client(_)) {
                return Err(ctx.at(
                    s,
                    key,
                    format!(
                        "close takes a client (client:NAME): \"{sel}\" is not one; a broker is stopped cleanly with `shutdown`"
                    ),
                ));
            }
            FaultAction::Close(sel)
        }
        "replace" => {
            let s = e.replace.as_ref().unwrap();
            let sel = one(s)?;
            let producer = match &sel {
                Selector::Client(name) => match NodeId::parse(name) {
                    Some(NodeId::Producer(n)) => Some(n),
                    _ => None,
                },
                _ => None,
            };
            match producer {
                Some(n) if n < sc.producer_clients() => {}
                Some(_) => {
                    return Err(ctx.at(
                        s,
                        key,
                        format!(
                            "replace takes one of the scenario's producers (producer-0..{}): \
                             \"{sel}\" is itself a replacement",
                            sc.producer_clients() - 1
                        ),
                    ));
                }
                None => {
                    return Err(ctx.at(
                        s,
                        key,
                        format!(
                            "replace takes a producer (client:producer-N): \"{sel}\" is not one"
                        ),
                    ));
                }
            }
            FaultAction::Replace {
                client: sel,
                // Numbered once the schedule is sorted (`resolve_faults`).
                replacement: Selector::Client(String::new()),
            }
        }
        "isolate" => FaultAction::Isolate(one(e.isolate.as_ref().unwrap())?),
        "clog" => {
            let [from, to] = e.clog.as_ref().unwrap().get_ref();
            FaultAction::Clog {
                from: one(from)?,
                to: one(to)?,
            }
        }
        "heal" => {
            let h = e.heal.as_ref().unwrap();
            if !*h.get_ref() {
                return Err(ctx.at(h, key, "heal takes only `true`"));
            }
            FaultAction::Heal
        }
        "disk-fault" => {
            let d = e.disk_fault.as_ref().unwrap().get_ref();
            FaultAction::DiskFault {
                node: one(&d.node)?,
                kind: d.kind,
            }
        }
        // Validated in time order by `check_topic_admin`.
        "create-partitions" => {
            let c = e.create_partitions.as_ref().unwrap().get_ref();
            FaultAction::CreatePartitions {
                topic: c.topic.get_ref().clone(),
                count: (*c.count.get_ref()).clamp(0, i32::MAX as i64) as i32,
            }
        }
        "delete-topic" => {
            FaultAction::DeleteTopic(e.delete_topic.as_ref().unwrap().get_ref().clone())
        }
        "partition" => {
            let groups = e.partition.as_ref().unwrap();
            if groups.get_ref().len() < 2 {
                return Err(ctx.at(
                    groups,
                    key,
                    "partition needs at least two groups: [[SEL, ..], [SEL, ..], ..]",
                ));
            }
            let mut out = Vec::new();
            let mut rests = 0;
            for g in groups.get_ref() {
                if g.is_empty() {
                    return Err(ctx.at(
                        groups,
                        key,
                        "a partition group must name at least one node",
                    ));
                }
                let mut group = Vec::new();
                for s in g {
                    let sel = selector(ctx, sc, s, &key, true, replacements)?;
                    if sel == Selector::Rest {
                        rests += 1;
                        if rests > 1 {
                            return Err(ctx.at(
                                s,
                                key,
                                "`rest` may appear only once in a partition",
                            ));
                        }
                    }
                    group.push(sel);
                }
                out.push(group);
            }
            FaultAction::Partition(out)
        }
        _ => unreachable!("every action key is handled"),
    };
    Ok(action)
}

/// Parses a selector and checks that what it names exists.
/// A role selector on a partition of `__consumer_offsets` (`leader:__consumer_offsets-12`):
/// the internal topic exists once a consumer with a `group.id` asks for its coordinator, with
/// `offsets.topic.num.partitions` partitions of `offsets.topic.replication.factor` replicas.
fn internal_topic_selector(
    sc: &Scenario,
    sel: &Selector,
    tp: &TopicPartition,
) -> Result<Selector, String> {
    let groups: BTreeSet<&str> = sc
        .consumers
        .iter()
        .filter_map(|c| c.config.group_id.as_deref())
        .collect();
    if groups.is_empty() {
        return Err(format!(
            "no consumer has a \"group.id\", so {} is never created and \"{sel}\" names nothing",
            tp.topic
        ));
    }
    let config = &sc.cluster.broker_config;
    let partitions = config.offsets_topic_num_partitions;
    if tp.partition >= partitions {
        let hint = groups
            .iter()
            .map(|g| {
                let p = ksim_model::group_coordinator::partition_for(g, partitions);
                format!("group \"{g}\" is in {p}")
            })
            .collect::<Vec<_>>()
            .join(", ");
        return Err(format!(
            "no partition {tp}: offsets.topic.num.partitions is {partitions} ({hint})"
        ));
    }
    if matches!(sel, Selector::Follower(_)) && config.offsets_topic_replication_factor < 2 {
        return Err(format!(
            "{tp} has no follower (offsets.topic.replication.factor {})",
            config.offsets_topic_replication_factor
        ));
    }
    Ok(sel.clone())
}

/// The `transactional.id` of every transactional client, in client order: producer client i
/// of an entry with a `transactional.id` uses `"<id>-<i>"`, processor i `"<id>-<i>"`.
pub fn transactional_ids(sc: &Scenario) -> Vec<String> {
    let mut out = Vec::new();
    let mut i = 0u32;
    for p in &sc.producers {
        for _ in 0..p.count {
            if let Some(id) = &p.config.transactional_id {
                out.push(format!("{id}-{i}"));
            }
            i += 1;
        }
    }
    let mut i = 0u32;
    for p in &sc.processors {
        for _ in 0..p.members {
            if let Some(id) = &p.producer_config.transactional_id {
                out.push(format!("{id}-{i}"));
            }
            i += 1;
        }
    }
    out
}

/// A role selector on a partition of `__transaction_state` (`leader:__transaction_state-3`):
/// the internal topic exists once a transactional client asks for its coordinator, with
/// `transaction.state.log.num.partitions` partitions of
/// `transaction.state.log.replication.factor` replicas; the `transactional.id` `T` is in
/// partition `abs(javaHashCode(T)) % transaction.state.log.num.partitions`
/// (TransactionStateManager.scala `partitionFor`), which an error names for every id.
fn transaction_state_selector(
    sc: &Scenario,
    sel: &Selector,
    tp: &TopicPartition,
) -> Result<Selector, String> {
    let ids = transactional_ids(sc);
    if ids.is_empty() {
        return Err(format!(
            "no producer or processor has a \"transactional.id\", so {} is never created and \"{sel}\" names nothing",
            tp.topic
        ));
    }
    let config = &sc.cluster.broker_config;
    let partitions = config.transaction_state_log_num_partitions;
    if tp.partition >= partitions {
        let hint = ids
            .iter()
            .map(|id| {
                let p = ksim_model::transaction_coordinator::partition_for(id, partitions);
                format!("transactional.id \"{id}\" is in {p}")
            })
            .collect::<Vec<_>>()
            .join(", ");
        return Err(format!(
            "no partition {tp}: transaction.state.log.num.partitions is {partitions} ({hint})"
        ));
    }
    if matches!(sel, Selector::Follower(_)) && config.transaction_state_log_replication_factor < 2 {
        return Err(format!(
            "{tp} has no follower (transaction.state.log.replication.factor {})",
            config.transaction_state_log_replication_factor
        ));
    }
    Ok(sel.clone())
}

pub(super) fn selector(
    ctx: &Ctx<'_>,
    sc: &Scenario,
    s: &Spanned<String>,
    key: &str,
    rest_allowed: bool,
    replacements: u32,
) -> Result<Selector, ScenarioError> {
    let sel = Selector::parse(s.get_ref()).map_err(|m| ctx.at(s, key, m))?;
    let fail = |m: String| Err(ctx.at(s, key, m));
    match &sel {
        Selector::Broker(b) if *b >= sc.cluster.brokers => {
            return fail(format!(
                "no broker {b}: the cluster has brokers 0..{}",
                sc.cluster.brokers - 1
            ));
        }
        Selector::Leader(tp) | Selector::Follower(tp) | Selector::Isr(tp)
            if tp.topic == ksim_model::group_coordinator::CONSUMER_OFFSETS_TOPIC =>
        {
            return internal_topic_selector(sc, &sel, tp).map_err(|m| ctx.at(s, key, m));
        }
        Selector::Leader(tp) | Selector::Follower(tp) | Selector::Isr(tp)
            if tp.topic == ksim_model::transaction_coordinator::TRANSACTION_STATE_TOPIC =>
        {
            return transaction_state_selector(sc, &sel, tp).map_err(|m| ctx.at(s, key, m));
        }
        Selector::Leader(tp) | Selector::Follower(tp) | Selector::Isr(tp) => {
            let Some(t) = sc.topic(&tp.topic) else {
                let msg = match closest_match(&tp.topic, sc.topics.iter().map(|t| t.name.as_str()))
                {
                    Some(c) => format!(
                        "unknown topic \"{}\" in selector \"{sel}\"; did you mean \"{c}\"?",
                        tp.topic
                    ),
                    None => format!("unknown topic \"{}\" in selector \"{sel}\"", tp.topic),
                };
                return fail(msg);
            };
            if tp.partition >= t.partitions {
                return fail(format!(
                    "no partition {tp}: topic \"{}\" has {} partition(s)",
                    t.name, t.partitions
                ));
            }
            if matches!(sel, Selector::Follower(_)) && t.replication_factor < 2 {
                return fail(format!("{tp} has no follower (replication factor 1)"));
            }
        }
        Selector::Client(name) => {
            let ok = match NodeId::parse(name) {
                Some(NodeId::Producer(n)) => n < sc.producer_clients() + replacements,
                Some(NodeId::Consumer(n)) => n < sc.consumer_clients(),
                Some(NodeId::Processor(n)) => n < sc.processor_clients(),
                _ => false,
            };
            if !ok {
                return fail(format!(
                    "no client \"{name}\": clients are producer-0..{}, consumer-0..{} and processor-0..{}",
                    (sc.producer_clients() + replacements) as i64 - 1,
                    sc.consumer_clients() as i64 - 1,
                    sc.processor_clients() as i64 - 1
                ));
            }
        }
        Selector::Rest if !rest_allowed => {
            return fail("`rest` is only meaningful inside `partition`".to_string());
        }
        _ => {}
    }
    Ok(sel)
}
