//! The scenario loader: TOML files under `scenarios/` (schema v1, `/work/shared/SCENARIOS.md`)
//! into a resolved, validated [`Scenario`].
//!
//! [`load`] reads a file, [`parse`] takes text. Every key of the v1 schema parses; Kafka
//! settings go through `ksim_model::config` (`BrokerConfig::from_properties`, ...), so they are
//! checked against Kafka's own key tables, types, ranges and cross-field rules. Errors are a
//! [`ScenarioError`] shown as `FILE:LINE:COL: KEY: message`.
//!
//! # Accepted but not supported yet
//! These parse (and are validated) but are refused with `not supported yet: ...` until the
//! feature exists, so that a scenario never silently runs without what it asked for:
//! - `cluster.controller = "kraft"`;
//! - `[[consumers]] group` (subscribe mode; consumers run in assign mode only);
//! - `[faults] kinds` other than those in [`SUPPORTED_FAULT_KINDS`] (today: every kind);
//! - `[[faults.schedule]]` actions other than those in [`SUPPORTED_ACTIONS`] (today: every
//!   action);
//! - Kafka settings listed in `ksim_model::config::NOT_SUPPORTED_YET` (transactions,
//!   compaction, retention, time-based rolling, `isolation.level=read_committed`,
//!   `group.id`, `partition.assignment.strategy`, `sim.replication.truncation` other than
//!   `fenced`), except when set to Kafka's default.
//!
//! Shrink those lists (here and in `config.rs`) as features land.
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
//!
//! # Size
//! Above the project's 1500-line guide (about 2500 lines with its tests): the split by
//! Kafka concept into a folder of its own is item 1 of the "house" issue (11), planned
//! before coordinators are added; until then the whole concept stays in this one file.

use ksim_model::config::{
    closest_match, BrokerConfig, ConfigError, ConsumerConfig, ProducerConfig, PropValue,
    Properties, TopicConfig,
};
use ksim_model::producer::SendStyle;
use ksim_model::types::{BrokerId, NodeId, TopicPartition};
use serde::{Deserialize, Serialize, Serializer};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::ops::Range;
use std::path::Path;
use toml::Spanned;

// ---------------------------------------------------------------------------------------------
// Public model
// ---------------------------------------------------------------------------------------------

/// Every check name a scenario may list in `expect_violations` (SCENARIOS.md "Check names"):
/// first Jepsen's client-visible anomalies, then the internal invariants.
pub const CHECK_NAMES: &[&str] = &[
    "lost-write",
    "duplicate",
    "inconsistent-offsets",
    "unseen",
    "poll-skip",
    "nonmonotonic-poll",
    "nonmonotonic-send",
    "int-poll-skip",
    "int-nonmonotonic-poll",
    "aborted-read",
    "precommitted-read",
    "G0",
    "G1c",
    "strong-isr",
    "weak-isr",
    "leader-in-isr",
    "single-leader-per-epoch",
    "monotonic-high-watermark",
    "committed-data-stable",
    "committed-record-lost",
    "controller-epoch-fencing",
    "idempotent-duplicate",
    "zombie-fencing",
    "read-committed-isolation",
    "torn-transaction",
    "hanging-transaction",
    "exclusive-assignment",
    "revoke-before-reassign",
    "commit-validity",
    "committed-offset-regression",
    "at-least-once",
    "liveness",
];

/// The random nemesis kinds implemented so far; any other kind is `not supported yet`.
pub const SUPPORTED_FAULT_KINDS: &[FaultKind] = FaultKind::ALL;

/// The `[[faults.schedule]]` action keys implemented so far; any other is `not supported yet`.
pub const SUPPORTED_ACTIONS: &[&str] = &[
    "kill",
    "power-fail",
    "restart",
    "disk-loss",
    "shutdown",
    "pause",
    "resume",
    "partition",
    "isolate",
    "clog",
    "heal",
    "disk-fault",
    "create-partitions",
    "delete-topic",
];

/// A loaded and validated scenario. Everything in it has been checked: topics named by clients
/// exist, selectors name existing brokers/partitions/clients, configs are typed.
#[derive(Debug, Clone, Serialize)]
pub struct Scenario {
    /// The file it came from, as given to [`load`] / [`parse`].
    pub file: String,
    /// `scenario.name`: equal to the file stem.
    pub name: String,
    /// `scenario.title` (defaults to the name).
    pub title: String,
    /// `scenario.description` ("" when absent).
    pub description: String,
    /// `scenario.references`: KIPs, JIRAs, Jepsen analyses (free text).
    pub references: Vec<String>,
    /// `scenario.duration_ms`: simulated time of the workload + fault phase.
    pub duration_ms: u64,
    /// `scenario.heal_ms` (10000): the liveness phase after all faults are healed.
    pub heal_ms: u64,
    /// `scenario.seeds`: pinned seeds replayed by `cargo test`; never empty.
    pub seeds: Vec<u64>,
    /// `scenario.expect` ("ok").
    pub expect: Expect,
    /// `scenario.expect_violations`: check names from [`CHECK_NAMES`]; non-empty iff
    /// `expect == Violation`. At least one of them must fire.
    pub expect_violations: Vec<String>,
    /// `scenario.reach`: what every run must reach (event kinds, probes, `fault:ACTION`; see
    /// [`crate::reach`]); a run that misses one is off its expectation. Empty when not given.
    pub reach: Vec<String>,
    /// `[cluster]`.
    pub cluster: ClusterSpec,
    /// `[[topics]]`, in file order.
    pub topics: Vec<TopicSpec>,
    /// `[[producers]]`, in file order (each entry is `count` clients).
    pub producers: Vec<ProducerSpec>,
    /// `[[consumers]]`, in file order (each entry is `members` clients).
    pub consumers: Vec<ConsumerSpec>,
    /// `[faults]` and `[[faults.schedule]]`.
    pub faults: FaultsSpec,
}

/// `scenario.expect`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Expect {
    /// No check may fail.
    Ok,
    /// At least one of `expect_violations` must fire.
    Violation,
}

/// `cluster.controller`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ControllerMode {
    /// ZooKeeper-style coordination node plus an elected broker controller.
    Zk,
    /// KRaft (not supported yet: refused by the loader).
    Kraft,
}

/// `[cluster]`.
#[derive(Debug, Clone, Serialize)]
pub struct ClusterSpec {
    /// `brokers`: ids `0..brokers`, node names `broker-0`, `broker-1`, ...
    pub brokers: i32,
    /// `controller` ("zk").
    pub controller: ControllerMode,
    /// `[cluster.broker_config]`, typed; applies to every broker.
    pub broker_config: BrokerConfig,
    /// `[cluster.broker_config]` as written (for reports).
    pub broker_properties: Properties,
}

/// One `[[topics]]` entry, with partitions and replication factor resolved (from the entry,
/// from `replica_assignment`, or from the broker's `num.partitions` /
/// `default.replication.factor`).
#[derive(Debug, Clone, Serialize)]
pub struct TopicSpec {
    pub name: String,
    /// >= 1.
    pub partitions: i32,
    /// 1 ..= brokers.
    pub replication_factor: i32,
    /// `replica_assignment`: one replica list per partition (the first replica is the
    /// preferred leader). `None`: Kafka's rack-unaware assignment drawn from the seed.
    pub replica_assignment: Option<Vec<Vec<BrokerId>>>,
    /// Topic-level overrides, typed (`None` fields inherit the broker's).
    pub config: TopicConfig,
    /// `config` as written.
    pub properties: Properties,
}

/// One `[[producers]]` entry: `count` producer clients with the same settings.
#[derive(Debug, Clone, Serialize)]
pub struct ProducerSpec {
    /// An existing topic.
    pub topic: String,
    /// `count` (1): clients in this entry.
    pub count: u32,
    /// `rate_per_sec`: records offered per simulated second, per client (> 0).
    pub rate_per_sec: f64,
    /// `keys` (0): distinct keys; 0 = null keys.
    pub keys: u32,
    /// `send_style` ("async"): how the workload calls `send` ("async" with a callback,
    /// "sync" waiting for each outcome, or "fire-and-forget").
    #[serde(serialize_with = "ser_send_style")]
    pub send_style: SendStyle,
    pub config: ProducerConfig,
    /// `config` as written.
    pub properties: Properties,
}

fn ser_send_style<S: Serializer>(v: &SendStyle, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(v.name())
}

/// One `[[consumers]]` entry: `members` consumer clients with the same settings.
#[derive(Debug, Clone, Serialize)]
pub struct ConsumerSpec {
    /// `group`: subscribe within that group. Always `None` for now (assign mode: each member
    /// assigns itself every partition of `topics`).
    pub group: Option<String>,
    /// `members` (1).
    pub members: u32,
    /// Existing topics, at least one.
    pub topics: Vec<String>,
    pub config: ConsumerConfig,
    /// `config` as written.
    pub properties: Properties,
    /// `start_ms` (0): when the application creates the consumers and starts polling, in
    /// simulated ms from the start of the run. With `auto.offset.reset = "latest"` a consumer
    /// that starts late begins at the high watermark of that moment and never reads the
    /// records produced before (configuration, not loss: the report says so).
    pub start_ms: u64,
    /// `seek_to = { topic = "events", partition = 0, offset = 0, at_ms = 5000 }` (none): the
    /// application calls `seek(topic-partition, offset)` at `at_ms` (`topic` defaults to the
    /// entry's first topic; `at_ms >= start_ms`).
    pub seek_to: Option<SeekSpec>,
}

/// `[[consumers]] seek_to`: one `KafkaConsumer.seek(tp, offset)` by the application.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct SeekSpec {
    pub tp: TopicPartition,
    pub offset: i64,
    pub at_ms: u64,
}

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
    /// `spare_last_replica` (true): random faults never power-fail or wipe a broker holding the
    /// last in-sync copy of a partition.
    pub spare_last_replica: bool,
    /// `[[faults.schedule]]`, sorted by `at_ms` (stable: entries at the same time keep file order).
    pub schedule: Vec<ScheduledFault>,
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
        }
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
}

/// Every fault action's key, as scenario files and `fault` events spell it
/// (SCENARIOS.md "Fault actions"); [`FaultAction::key`] returns one of these.
pub const FAULT_ACTION_KEYS: &[&str] = &[
    "kill",
    "power-fail",
    "restart",
    "disk-loss",
    "shutdown",
    "pause",
    "resume",
    "partition",
    "isolate",
    "clog",
    "heal",
    "disk-fault",
    "create-partitions",
    "delete-topic",
];

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

impl Scenario {
    /// Broker ids `0..brokers`.
    pub fn broker_ids(&self) -> impl Iterator<Item = BrokerId> {
        (0..self.cluster.brokers).map(BrokerId)
    }

    /// The topic named `name`.
    pub fn topic(&self, name: &str) -> Option<&TopicSpec> {
        self.topics.iter().find(|t| t.name == name)
    }

    /// Producer clients in all entries (node ids `producer-0 .. producer-(n-1)`, entry order).
    pub fn producer_clients(&self) -> u32 {
        self.producers.iter().map(|p| p.count).sum()
    }

    /// Consumer clients in all entries (node ids `consumer-0 ..`, entry order).
    pub fn consumer_clients(&self) -> u32 {
        self.consumers.iter().map(|c| c.members).sum()
    }

    /// The `[[producers]]` entry of producer client `n`.
    pub fn producer_of_client(&self, n: u32) -> Option<&ProducerSpec> {
        let mut first = 0;
        for p in &self.producers {
            if n < first + p.count {
                return Some(p);
            }
            first += p.count;
        }
        None
    }

    /// The `[[consumers]]` entry of consumer client `n`.
    pub fn consumer_of_client(&self, n: u32) -> Option<&ConsumerSpec> {
        let mut first = 0;
        for c in &self.consumers {
            if n < first + c.members {
                return Some(c);
            }
            first += c.members;
        }
        None
    }
}

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

/// What went wrong, for callers that react differently (the CLI, `bad_input` tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum ScenarioErrorKind {
    /// The file could not be read.
    Io,
    /// Not valid TOML.
    Syntax,
    /// A key the schema (or Kafka's config tables) does not know.
    UnknownKey,
    /// A value or combination that is wrong.
    Invalid,
    /// Valid, but the feature is not implemented yet.
    NotSupportedYet,
}

/// A scenario that cannot be loaded. Displays as `FILE:LINE:COL: KEY: message` (parts left
/// out when unknown); an unreadable file as `cannot read FILE: reason`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScenarioError {
    pub kind: ScenarioErrorKind,
    /// The file name as given.
    pub file: String,
    /// 1-based line and column (in chars) of the offending key or value.
    pub line_col: Option<(usize, usize)>,
    /// TOML path of the offending key: `topics[0].replication_factor`,
    /// `producers[1].config.acks`, `cluster.broker_config."min.insync.replicas"`.
    pub key: Option<String>,
    pub message: String,
}

impl fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.kind == ScenarioErrorKind::Io {
            return f.write_str(&self.message);
        }
        f.write_str(&self.file)?;
        if let Some((l, c)) = self.line_col {
            write!(f, ":{l}:{c}")?;
        }
        if let Some(k) = &self.key {
            write!(f, ": {k}")?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for ScenarioError {}

/// Builds errors against one file's text.
struct Ctx<'a> {
    file: &'a str,
    text: &'a str,
}

impl Ctx<'_> {
    fn err(
        &self,
        span: Option<Range<usize>>,
        key: impl Into<String>,
        message: impl Into<String>,
    ) -> ScenarioError {
        let message = message.into();
        let kind = if message.starts_with("not supported yet") {
            ScenarioErrorKind::NotSupportedYet
        } else {
            ScenarioErrorKind::Invalid
        };
        let key = key.into();
        ScenarioError {
            kind,
            file: self.file.to_string(),
            line_col: span.map(|s| line_col(self.text, s.start)),
            key: if key.is_empty() { None } else { Some(key) },
            message,
        }
    }

    fn at<T>(
        &self,
        v: &Spanned<T>,
        key: impl Into<String>,
        message: impl Into<String>,
    ) -> ScenarioError {
        self.err(Some(v.span()), key, message)
    }

    /// A config error, located at the key (unknown key) or its value.
    fn config_err(&self, props: &RawProps, path: &str, e: ConfigError) -> ScenarioError {
        let entry = props.get_ref().iter().find(|(k, _)| k.get_ref() == &e.key);
        let unknown = e.message.starts_with("unknown ");
        let span = match entry {
            Some((k, _)) if unknown => k.span(),
            Some((_, v)) => v.span(),
            None => props.span(),
        };
        let mut err = self.err(
            Some(span),
            format!("{path}.{}", toml_key(&e.key)),
            e.message,
        );
        if unknown {
            err.kind = ScenarioErrorKind::UnknownKey;
        }
        err
    }
}

/// 1-based line and char column of byte `offset`.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
    (line, col)
}

/// A key as written in a TOML path: quoted when it is not a bare key.
fn toml_key(k: &str) -> String {
    if !k.is_empty()
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        k.to_string()
    } else {
        format!("\"{k}\"")
    }
}

/// The table header in force at `offset`: (name, is array of tables, index among headers of
/// that name). `None` at the top level.
fn table_at(text: &str, offset: usize) -> Option<(String, bool, usize)> {
    let mut current = None;
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    let mut pos = 0;
    for line in text.split_inclusive('\n') {
        if pos > offset {
            break;
        }
        pos += line.len();
        let t = line.split('#').next().unwrap_or("").trim();
        let (array, inner) =
            if let Some(i) = t.strip_prefix("[[").and_then(|r| r.strip_suffix("]]")) {
                (true, i)
            } else if let Some(i) = t.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
                (false, i)
            } else {
                continue;
            };
        let name: String = inner.trim().to_string();
        let header_like = name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '"')
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_-.\"".contains(c));
        if !header_like {
            continue;
        }
        let n = counts.entry(name.clone()).or_insert(0);
        *n += 1;
        current = Some((name, array, *n - 1));
    }
    current
}

/// `topics[1]` / `cluster.broker_config` / "" for a table header.
fn table_path(t: &Option<(String, bool, usize)>) -> String {
    match t {
        Some((name, true, i)) => format!("{name}[{i}]"),
        Some((name, false, _)) => name.clone(),
        None => String::new(),
    }
}

/// `[[topics]]` / `[cluster]` / `the top level`.
fn table_display(t: &Option<(String, bool, usize)>) -> String {
    match t {
        Some((name, true, _)) => format!("[[{name}]]"),
        Some((name, false, _)) => format!("[{name}]"),
        None => "the top level".to_string(),
    }
}

fn join_path(a: &str, b: &str) -> String {
    match (a.is_empty(), b.is_empty()) {
        (true, _) => b.to_string(),
        (_, true) => a.to_string(),
        _ => format!("{a}.{b}"),
    }
}

/// The key assigned on the line containing `offset`, before `offset`, with the keys of the
/// inline tables it sits in (`config.acks` in `config = { acks = 2 }` when `offset` points
/// at `2`).
fn line_key_at(text: &str, offset: usize) -> Option<String> {
    let offset = offset.min(text.len());
    let start = text[..offset].rfind('\n').map_or(0, |i| i + 1);
    let before = &text[start..offset];
    let mut keys = Vec::new();
    for part in before.split('{') {
        let segs: Vec<&str> = part.split('=').collect();
        if segs.len() < 2 {
            continue;
        }
        let seg = segs[segs.len() - 2];
        let key = seg.rsplit(',').next().unwrap_or(seg).trim();
        if !key.is_empty() {
            keys.push(key.to_string());
        }
    }
    if keys.is_empty() {
        None
    } else {
        Some(keys.join("."))
    }
}

/// Turns a TOML / serde error into a [`ScenarioError`].
fn from_toml_error(ctx: &Ctx<'_>, e: &toml::de::Error) -> ScenarioError {
    let span = e.span();
    let raw = e.message().trim();
    let table = span.as_ref().and_then(|s| table_at(ctx.text, s.start));
    let mut parent_table = table.clone();
    if let Some(s) = &span {
        // An error on a header line itself (`[[producer]]`) belongs to the parent table.
        let line_start = ctx.text[..s.start.min(ctx.text.len())]
            .rfind('\n')
            .map_or(0, |i| i + 1);
        if ctx.text[line_start..].trim_start().starts_with('[') {
            parent_table = table.clone().and_then(|(name, _, _)| {
                name.rsplit_once('.')
                    .map(|(parent, _)| (parent.to_string(), false, 0))
            });
        }
    }
    let mut err = ScenarioError {
        kind: ScenarioErrorKind::Syntax,
        file: ctx.file.to_string(),
        line_col: span.as_ref().map(|s| line_col(ctx.text, s.start)),
        key: None,
        message: raw
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect::<Vec<_>>()
            .join("; "),
    };
    let ticked: Vec<&str> = raw.split('`').skip(1).step_by(2).collect();
    if raw.starts_with("unknown field") && !ticked.is_empty() {
        let key = ticked[0];
        let expected = &ticked[1..];
        let mut path = table_path(&parent_table);
        let mut display = table_display(&parent_table);
        if expected == ["node", "kind"] {
            path = join_path(&path, "disk-fault");
            display = "disk-fault".to_string();
        }
        err.kind = ScenarioErrorKind::UnknownKey;
        err.key = Some(join_path(&path, &toml_key(key)));
        err.message = match closest_match(key, expected.iter().copied()) {
            Some(s) => format!("unknown key \"{key}\" in {display}; did you mean \"{s}\"?"),
            None => format!(
                "unknown key \"{key}\" in {display}; expected one of: {}",
                expected.join(", ")
            ),
        };
    } else if raw.starts_with("missing field") && !ticked.is_empty() {
        err.kind = ScenarioErrorKind::Invalid;
        err.key = Some(table_path(&table)).filter(|p| !p.is_empty());
        err.message = format!("missing key \"{}\" in {}", ticked[0], table_display(&table));
    } else if raw.starts_with("invalid type")
        || raw.starts_with("invalid value")
        || raw.starts_with("invalid length")
        || raw.starts_with("unknown variant")
        || raw.starts_with("data did not match")
    {
        err.kind = ScenarioErrorKind::Invalid;
        let line_key = span.as_ref().and_then(|s| line_key_at(ctx.text, s.start));
        let path = join_path(&table_path(&table), line_key.as_deref().unwrap_or(""));
        err.key = Some(path).filter(|p| !p.is_empty());
        if raw.starts_with("data did not match") {
            err.message = "expected a string, number, boolean or array".to_string();
        }
    }
    err
}

// ---------------------------------------------------------------------------------------------
// Raw TOML shape
// ---------------------------------------------------------------------------------------------

type RawProps = Spanned<BTreeMap<Spanned<String>, Spanned<PropValue>>>;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    scenario: RawMeta,
    cluster: RawCluster,
    #[serde(default)]
    topics: Vec<RawTopic>,
    #[serde(default)]
    producers: Vec<RawProducer>,
    #[serde(default)]
    consumers: Vec<RawConsumer>,
    #[serde(default)]
    faults: Option<RawFaults>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMeta {
    name: Spanned<String>,
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    references: Vec<String>,
    duration_ms: Spanned<u64>,
    #[serde(default)]
    heal_ms: Option<u64>,
    seeds: Spanned<Vec<u64>>,
    #[serde(default)]
    expect: Option<Spanned<Expect>>,
    #[serde(default)]
    expect_violations: Option<Spanned<Vec<Spanned<String>>>>,
    #[serde(default)]
    reach: Vec<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCluster {
    brokers: Spanned<i32>,
    #[serde(default)]
    controller: Option<Spanned<ControllerMode>>,
    #[serde(default)]
    broker_config: Option<RawProps>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTopic {
    name: Spanned<String>,
    #[serde(default)]
    partitions: Option<Spanned<i32>>,
    #[serde(default)]
    replication_factor: Option<Spanned<i32>>,
    #[serde(default)]
    replica_assignment: Option<Spanned<Vec<Spanned<Vec<i32>>>>>,
    #[serde(default)]
    config: Option<RawProps>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProducer {
    topic: Spanned<String>,
    #[serde(default)]
    count: Option<Spanned<u32>>,
    rate_per_sec: Spanned<f64>,
    #[serde(default)]
    keys: Option<Spanned<u32>>,
    #[serde(default)]
    send_style: Option<Spanned<String>>,
    #[serde(default)]
    config: Option<RawProps>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConsumer {
    #[serde(default)]
    group: Option<Spanned<String>>,
    #[serde(default)]
    members: Option<Spanned<u32>>,
    topics: Spanned<Vec<Spanned<String>>>,
    #[serde(default)]
    config: Option<RawProps>,
    #[serde(default)]
    start_ms: Option<Spanned<u64>>,
    #[serde(default)]
    seek_to: Option<Spanned<RawSeek>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSeek {
    #[serde(default)]
    topic: Option<String>,
    partition: i32,
    offset: i64,
    at_ms: u64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFaults {
    #[serde(default)]
    kinds: Vec<Spanned<FaultKind>>,
    #[serde(default)]
    interval_ms: Option<Spanned<[u64; 2]>>,
    #[serde(default)]
    duration_ms: Option<Spanned<[u64; 2]>>,
    #[serde(default)]
    swarm: Option<bool>,
    #[serde(default)]
    spare_last_replica: Option<bool>,
    #[serde(default)]
    schedule: Vec<RawScheduled>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScheduled {
    at_ms: Spanned<u64>,
    #[serde(default)]
    kill: Option<Spanned<String>>,
    #[serde(default, rename = "power-fail")]
    power_fail: Option<Spanned<String>>,
    #[serde(default)]
    restart: Option<Spanned<String>>,
    #[serde(default, rename = "disk-loss")]
    disk_loss: Option<Spanned<String>>,
    #[serde(default)]
    shutdown: Option<Spanned<String>>,
    #[serde(default)]
    pause: Option<Spanned<String>>,
    #[serde(default)]
    resume: Option<Spanned<String>>,
    #[serde(default)]
    partition: Option<Spanned<Vec<Vec<Spanned<String>>>>>,
    #[serde(default)]
    isolate: Option<Spanned<String>>,
    #[serde(default)]
    clog: Option<Spanned<[Spanned<String>; 2]>>,
    #[serde(default)]
    heal: Option<Spanned<bool>>,
    #[serde(default, rename = "disk-fault")]
    disk_fault: Option<Spanned<RawDiskFault>>,
    #[serde(default, rename = "create-partitions")]
    create_partitions: Option<Spanned<RawCreatePartitions>>,
    #[serde(default, rename = "delete-topic")]
    delete_topic: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCreatePartitions {
    topic: Spanned<String>,
    count: Spanned<i64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDiskFault {
    node: Spanned<String>,
    kind: DiskFaultKind,
}

// ---------------------------------------------------------------------------------------------
// Loading
// ---------------------------------------------------------------------------------------------

/// Reads and validates a scenario file.
pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| {
        let reason = e.to_string();
        let reason = match reason.find(" (os error") {
            Some(i) => reason[..i].to_string(),
            None => reason,
        };
        ScenarioError {
            kind: ScenarioErrorKind::Io,
            file: file.clone(),
            line_col: None,
            key: None,
            message: format!("cannot read {file}: {reason}"),
        }
    })?;
    parse(&text, &file)
}

/// Parses and validates scenario text. `file_name` is used in messages, and its stem must
/// equal `scenario.name`.
pub fn parse(text: &str, file_name: &str) -> Result<Scenario, ScenarioError> {
    let ctx = Ctx {
        file: file_name,
        text,
    };
    let raw: RawFile = toml::from_str(text).map_err(|e| from_toml_error(&ctx, &e))?;
    resolve(&ctx, raw)
}

fn props_of(p: &Option<RawProps>) -> Properties {
    p.as_ref()
        .map(|m| {
            m.get_ref()
                .iter()
                .map(|(k, v)| (k.get_ref().clone(), v.get_ref().clone()))
                .collect()
        })
        .unwrap_or_default()
}

/// Parses one config table with `f`, mapping errors to the table's location.
fn config<T>(
    ctx: &Ctx<'_>,
    raw: &Option<RawProps>,
    path: &str,
    f: fn(&Properties) -> Result<T, ConfigError>,
) -> Result<(T, Properties), ScenarioError> {
    let props = props_of(raw);
    match f(&props) {
        Ok(c) => Ok((c, props)),
        Err(e) => Err(match raw {
            Some(r) => ctx.config_err(r, path, e),
            None => ctx.err(None, format!("{path}.{}", toml_key(&e.key)), e.message),
        }),
    }
}

/// Kafka's `Topic.validate`.
fn validate_topic_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("Topic name is illegal, it can't be empty".into());
    }
    if name == "." || name == ".." {
        return Err("Topic name cannot be \".\" or \"..\"".into());
    }
    if name.len() > 249 {
        return Err(format!(
            "Topic name is illegal, it can't be longer than 249 characters, topic name: {name}"
        ));
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '_' || c == '-')
    {
        return Err(format!(
            "Topic name \"{name}\" is illegal, it contains a character other than ASCII alphanumerics, '.', '_' and '-'"
        ));
    }
    Ok(())
}

fn resolve(ctx: &Ctx<'_>, raw: RawFile) -> Result<Scenario, ScenarioError> {
    // [scenario]
    let m = raw.scenario;
    let stem = Path::new(ctx.file)
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    if m.name.get_ref() != &stem {
        return Err(ctx.at(
            &m.name,
            "scenario.name",
            format!(
                "name \"{}\" must equal the file name \"{stem}\" (without .toml)",
                m.name.get_ref()
            ),
        ));
    }
    if m.seeds.get_ref().is_empty() {
        return Err(ctx.at(
            &m.seeds,
            "scenario.seeds",
            "seeds must list at least one seed (the seeds `cargo test` replays)",
        ));
    }
    if *m.duration_ms.get_ref() == 0 {
        return Err(ctx.at(
            &m.duration_ms,
            "scenario.duration_ms",
            "duration_ms must be at least 1",
        ));
    }
    let expect = m.expect.as_ref().map_or(Expect::Ok, |e| *e.get_ref());
    let mut expect_violations = Vec::new();
    if let Some(list) = &m.expect_violations {
        for name in list.get_ref() {
            if !CHECK_NAMES.contains(&name.get_ref().as_str()) {
                let msg = match closest_match(name.get_ref(), CHECK_NAMES.iter().copied()) {
                    Some(s) => format!(
                        "unknown check \"{}\"; did you mean \"{s}\"?",
                        name.get_ref()
                    ),
                    None => format!(
                        "unknown check \"{}\"; the checks are: {}",
                        name.get_ref(),
                        CHECK_NAMES.join(", ")
                    ),
                };
                return Err(ctx.at(name, "scenario.expect_violations", msg));
            }
            expect_violations.push(name.get_ref().clone());
        }
    }
    match expect {
        Expect::Violation if expect_violations.is_empty() => {
            let span = m.expect.as_ref().map(|e| e.span());
            return Err(ctx.err(
                span,
                "scenario.expect_violations",
                "expect = \"violation\" needs at least one check name in expect_violations",
            ));
        }
        Expect::Ok if !expect_violations.is_empty() => {
            let span = m.expect_violations.as_ref().map(|e| e.span());
            return Err(ctx.err(
                span,
                "scenario.expect_violations",
                "expect_violations needs expect = \"violation\" (with expect = \"ok\" no check may fail)",
            ));
        }
        _ => {}
    }
    let mut reach = Vec::new();
    for item in &m.reach {
        if let Some(msg) = crate::reach::unknown_item(item.get_ref()) {
            return Err(ctx.at(item, "scenario.reach", msg));
        }
        reach.push(item.get_ref().clone());
    }

    // [cluster]
    let c = raw.cluster;
    let brokers = *c.brokers.get_ref();
    if brokers < 1 {
        return Err(ctx.at(&c.brokers, "cluster.brokers", "brokers must be at least 1"));
    }
    let max = crate::world::NODES_PER_KIND_MAX;
    if brokers as u32 > max {
        return Err(ctx.at(
            &c.brokers,
            "cluster.brokers",
            format!(
                "brokers = {brokers} is more than ksim supports: at most {max} brokers (the \
                 simulated network gives each kind of node one /24 of addresses)"
            ),
        ));
    }
    let controller = c
        .controller
        .as_ref()
        .map_or(ControllerMode::Zk, |c| *c.get_ref());
    if controller == ControllerMode::Kraft {
        let span = c.controller.as_ref().map(|c| c.span());
        return Err(ctx.err(
            span,
            "cluster.controller",
            "not supported yet: cluster.controller = \"kraft\"",
        ));
    }
    let (broker_config, broker_properties) = config(
        ctx,
        &c.broker_config,
        "cluster.broker_config",
        BrokerConfig::from_properties,
    )?;
    let cluster = ClusterSpec {
        brokers,
        controller,
        broker_config,
        broker_properties,
    };

    // [[topics]]
    let mut topics: Vec<TopicSpec> = Vec::new();
    for (i, t) in raw.topics.iter().enumerate() {
        let path = format!("topics[{i}]");
        let name = t.name.get_ref().clone();
        validate_topic_name(&name).map_err(|msg| ctx.at(&t.name, format!("{path}.name"), msg))?;
        if topics.iter().any(|o| o.name == name) {
            return Err(ctx.at(
                &t.name,
                format!("{path}.name"),
                format!("Topic '{name}' already exists."),
            ));
        }
        if let Some(p) = &t.partitions {
            if *p.get_ref() < 1 {
                return Err(ctx.at(
                    p,
                    format!("{path}.partitions"),
                    "Number of partitions must be larger than 0.",
                ));
            }
        }
        if let Some(rf) = &t.replication_factor {
            if *rf.get_ref() < 1 {
                return Err(ctx.at(
                    rf,
                    format!("{path}.replication_factor"),
                    "Replication factor must be larger than 0.",
                ));
            }
        }
        let mut replica_assignment = None;
        let (partitions, replication_factor);
        if let Some(ra) = &t.replica_assignment {
            let key = format!("{path}.replica_assignment");
            let lists = ra.get_ref();
            if lists.is_empty() {
                return Err(ctx.at(ra, key, "Number of partitions must be larger than 0."));
            }
            if let Some(p) = &t.partitions {
                if *p.get_ref() as usize != lists.len() {
                    return Err(ctx.at(
                        ra,
                        key,
                        format!(
                            "replica_assignment lists {} partition(s) but partitions = {}",
                            lists.len(),
                            p.get_ref()
                        ),
                    ));
                }
            }
            let mut expected: Option<usize> =
                t.replication_factor.as_ref().map(|r| *r.get_ref() as usize);
            let mut resolved = Vec::new();
            for replicas in lists {
                let mut seen = BTreeSet::new();
                if replicas.get_ref().is_empty() {
                    return Err(ctx.at(
                        replicas,
                        key,
                        "The manual partition assignment includes an empty replica list.",
                    ));
                }
                for &b in replicas.get_ref() {
                    if b < 0 || b >= brokers {
                        return Err(ctx.at(
                            replicas,
                            key,
                            format!("The manual partition assignment includes broker {b}, but no such broker is registered."),
                        ));
                    }
                    if !seen.insert(b) {
                        return Err(ctx.at(
                            replicas,
                            key,
                            format!("The manual partition assignment includes the broker {b} more than once."),
                        ));
                    }
                }
                let n = replicas.get_ref().len();
                match expected {
                    Some(e) if e != n => {
                        let msg = if resolved.is_empty() {
                            format!("replica_assignment has {n} replica(s) per partition but replication_factor = {e}")
                        } else {
                            format!(
                                "The manual partition assignment includes a partition with {n} replica(s), but this is \
                                 not consistent with previous partitions, which have {e} replica(s)."
                            )
                        };
                        return Err(ctx.at(replicas, key, msg));
                    }
                    _ => expected = Some(n),
                }
                resolved.push(
                    replicas
                        .get_ref()
                        .iter()
                        .map(|&b| BrokerId(b))
                        .collect::<Vec<_>>(),
                );
            }
            partitions = lists.len() as i32;
            replication_factor = expected.unwrap_or(1) as i32;
            replica_assignment = Some(resolved);
        } else {
            partitions = t
                .partitions
                .as_ref()
                .map_or(cluster.broker_config.num_partitions, |p| *p.get_ref());
            replication_factor = t
                .replication_factor
                .as_ref()
                .map_or(cluster.broker_config.default_replication_factor, |r| {
                    *r.get_ref()
                });
            if replication_factor > brokers {
                let span = t
                    .replication_factor
                    .as_ref()
                    .map_or(t.name.span(), |r| r.span());
                return Err(ctx.err(
                    Some(span),
                    format!("{path}.replication_factor"),
                    format!("Replication factor: {replication_factor} larger than available brokers: {brokers}."),
                ));
            }
        }
        let (config, properties) = config(
            ctx,
            &t.config,
            &format!("{path}.config"),
            TopicConfig::from_properties,
        )?;
        topics.push(TopicSpec {
            name,
            partitions,
            replication_factor,
            replica_assignment,
            config,
            properties,
        });
    }

    let check_topic = |name: &Spanned<String>, key: String| -> Result<(), ScenarioError> {
        if topics.iter().any(|t| &t.name == name.get_ref()) {
            return Ok(());
        }
        let msg = match closest_match(name.get_ref(), topics.iter().map(|t| t.name.as_str())) {
            Some(s) => format!(
                "unknown topic \"{}\"; did you mean \"{s}\"?",
                name.get_ref()
            ),
            None => format!(
                "unknown topic \"{}\" (declare it in [[topics]])",
                name.get_ref()
            ),
        };
        Err(ctx.at(name, key, msg))
    };

    // More clients of one kind than the simulated network has addresses for.
    let too_many = |span: Option<Range<usize>>, key: String, n: u32, kind: &str| {
        ctx.err(
            span,
            key,
            format!(
                "{n} {kind}s in all is more than ksim supports: at most {max} {kind} clients \
                 (the simulated network gives each kind of node one /24 of addresses)"
            ),
        )
    };
    // [[producers]]
    let mut producers = Vec::new();
    let mut producers_so_far: u32 = 0;
    for (i, p) in raw.producers.iter().enumerate() {
        let path = format!("producers[{i}]");
        check_topic(&p.topic, format!("{path}.topic"))?;
        let count = p.count.as_ref().map_or(1, |c| *c.get_ref());
        if count < 1 {
            let c = p.count.as_ref().expect("count < 1 only when set");
            return Err(ctx.at(c, format!("{path}.count"), "count must be at least 1"));
        }
        producers_so_far = producers_so_far.saturating_add(count);
        if producers_so_far > max {
            let span = p.count.as_ref().map(|c| c.span());
            return Err(too_many(
                span,
                format!("{path}.count"),
                producers_so_far,
                "producer",
            ));
        }
        let rate = *p.rate_per_sec.get_ref();
        if !(rate.is_finite() && rate > 0.0) {
            return Err(ctx.at(
                &p.rate_per_sec,
                format!("{path}.rate_per_sec"),
                "rate_per_sec must be a number above 0",
            ));
        }
        let send_style = match &p.send_style {
            None => SendStyle::default(),
            Some(v) => SendStyle::parse(v.get_ref()).ok_or_else(|| {
                ctx.at(
                    v,
                    format!("{path}.send_style"),
                    format!(
                        "unknown send_style \"{}\"; expected one of: {}",
                        v.get_ref(),
                        SendStyle::NAMES.join(", ")
                    ),
                )
            })?,
        };
        let (config, properties) = config(
            ctx,
            &p.config,
            &format!("{path}.config"),
            ProducerConfig::from_properties,
        )?;
        let keys = p.keys.as_ref().map_or(0, |k| *k.get_ref());
        // Kafka's LogValidator refuses keyless records on a compacted topic
        // (InvalidRecordException, CORRUPT_MESSAGE): every send would fail.
        let compacted = topics
            .iter()
            .find(|t| &t.name == p.topic.get_ref())
            .map(|t| {
                t.config
                    .log_config(&cluster.broker_config)
                    .cleanup_policy
                    .compact
            })
            .unwrap_or(false);
        if compacted && keys == 0 {
            let span = p.keys.as_ref().map_or(p.topic.span(), |k| k.span());
            return Err(ctx.err(
                Some(span),
                format!("{path}.keys"),
                format!(
                    "topic \"{}\" is compacted (cleanup.policy includes compact) and keys = 0 writes null keys, which the broker rejects: \"Compacted topic cannot accept message without key in topic partition {}-0.\" Set keys to 1 or more",
                    p.topic.get_ref(),
                    p.topic.get_ref()
                ),
            ));
        }
        producers.push(ProducerSpec {
            topic: p.topic.get_ref().clone(),
            count,
            rate_per_sec: rate,
            keys,
            send_style,
            config,
            properties,
        });
    }

    // [[consumers]]
    let mut consumers = Vec::new();
    let mut consumers_so_far: u32 = 0;
    for (i, c) in raw.consumers.iter().enumerate() {
        let path = format!("consumers[{i}]");
        if let Some(g) = &c.group {
            return Err(ctx.at(
                g,
                format!("{path}.group"),
                "not supported yet: consumers.group (consumer groups; leave `group` out to assign every partition)",
            ));
        }
        let members = c.members.as_ref().map_or(1, |m| *m.get_ref());
        if members < 1 {
            let m = c.members.as_ref().expect("members < 1 only when set");
            return Err(ctx.at(m, format!("{path}.members"), "members must be at least 1"));
        }
        consumers_so_far = consumers_so_far.saturating_add(members);
        if consumers_so_far > max {
            let span = c.members.as_ref().map(|m| m.span());
            return Err(too_many(
                span,
                format!("{path}.members"),
                consumers_so_far,
                "consumer",
            ));
        }
        if c.topics.get_ref().is_empty() {
            return Err(ctx.at(
                &c.topics,
                format!("{path}.topics"),
                "topics must name at least one topic",
            ));
        }
        for t in c.topics.get_ref() {
            check_topic(t, format!("{path}.topics"))?;
        }
        let (config, properties) = config(
            ctx,
            &c.config,
            &format!("{path}.config"),
            ConsumerConfig::from_properties,
        )?;
        let start_ms = c.start_ms.as_ref().map_or(0, |v| *v.get_ref());
        let run_ms = *m.duration_ms.get_ref() + m.heal_ms.unwrap_or(10_000);
        if let Some(v) = &c.start_ms {
            if start_ms >= run_ms {
                return Err(ctx.at(
                    v,
                    format!("{path}.start_ms"),
                    format!("start_ms {start_ms} is not before the end of the run (duration_ms + heal_ms = {run_ms})"),
                ));
            }
        }
        let seek_to = match &c.seek_to {
            None => None,
            Some(raw) => {
                let r = raw.get_ref();
                let key = format!("{path}.seek_to");
                let topic = r
                    .topic
                    .clone()
                    .unwrap_or_else(|| c.topics.get_ref()[0].get_ref().clone());
                let Some(t) = c
                    .topics
                    .get_ref()
                    .iter()
                    .find(|t| t.get_ref() == &topic)
                    .and_then(|t| topics.iter().find(|x| &x.name == t.get_ref()))
                else {
                    return Err(ctx.at(
                        raw,
                        key,
                        format!("topic \"{topic}\" is not one of this entry's topics"),
                    ));
                };
                if r.partition < 0 || r.partition >= t.partitions {
                    return Err(ctx.at(
                        raw,
                        key,
                        format!(
                            "partition {} does not exist: {topic} has partitions 0..{}",
                            r.partition,
                            t.partitions - 1
                        ),
                    ));
                }
                if r.offset < 0 {
                    return Err(ctx.at(raw, key, "offset must be at least 0"));
                }
                if r.at_ms < start_ms || r.at_ms >= run_ms {
                    return Err(ctx.at(
                        raw,
                        key,
                        format!("at_ms {} must be in [start_ms, duration_ms + heal_ms) = [{start_ms}, {run_ms})", r.at_ms),
                    ));
                }
                Some(SeekSpec {
                    tp: TopicPartition::new(topic.clone(), r.partition),
                    offset: r.offset,
                    at_ms: r.at_ms,
                })
            }
        };
        consumers.push(ConsumerSpec {
            start_ms,
            seek_to,
            group: None,
            members,
            topics: c
                .topics
                .get_ref()
                .iter()
                .map(|t| t.get_ref().clone())
                .collect(),
            config,
            properties,
        });
    }

    let mut scenario = Scenario {
        file: ctx.file.to_string(),
        name: m.name.get_ref().clone(),
        title: m.title.clone().unwrap_or_else(|| m.name.get_ref().clone()),
        description: m.description.clone().unwrap_or_default(),
        references: m.references.clone(),
        duration_ms: *m.duration_ms.get_ref(),
        heal_ms: m.heal_ms.unwrap_or(10_000),
        seeds: m.seeds.get_ref().clone(),
        expect,
        expect_violations,
        reach,
        cluster,
        topics,
        producers,
        consumers,
        faults: FaultsSpec {
            kinds: Vec::new(),
            interval_ms: [1_000, 5_000],
            duration_ms: [500, 4_000],
            swarm: false,
            spare_last_replica: true,
            schedule: Vec::new(),
        },
    };

    // [faults]
    if let Some(f) = raw.faults {
        scenario.faults = resolve_faults(ctx, &scenario, f)?;
    }
    Ok(scenario)
}

fn resolve_faults(ctx: &Ctx<'_>, sc: &Scenario, f: RawFaults) -> Result<FaultsSpec, ScenarioError> {
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
    let interval_ms = range(&f.interval_ms, "faults.interval_ms", [1_000, 5_000], 1)?;
    let duration_ms = range(&f.duration_ms, "faults.duration_ms", [500, 4_000], 0)?;

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
        let action = resolve_action(ctx, sc, e, &path)?;
        schedule.push(ScheduledFault { at_ms, action });
    }
    check_topic_admin(ctx, sc, &f.schedule)?;
    schedule.sort_by_key(|s| s.at_ms);

    Ok(FaultsSpec {
        kinds,
        interval_ms,
        duration_ms,
        swarm: f.swarm.unwrap_or(false),
        spare_last_replica: f.spare_last_replica.unwrap_or(true),
        schedule,
    })
}

const ACTION_KEYS: &str = "kill, power-fail, restart, disk-loss, shutdown, pause, resume, partition, isolate, clog, heal, disk-fault, create-partitions, delete-topic";

/// Topic administration in the schedule, in time order (file order at equal times): a topic
/// must exist (and not have been deleted), and `create-partitions` must increase its partition
/// count, refused otherwise with Kafka's own messages (`AdminZkClient.addPartitions`:
/// "Topic currently has 3 partitions, which is higher than the requested 2." and
/// "Topic already has 3 partitions.").
fn check_topic_admin(
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

fn resolve_action(
    ctx: &Ctx<'_>,
    sc: &Scenario,
    e: &RawScheduled,
    path: &str,
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
        selector(ctx, sc, s, &key, false)
    };
    let action = match name {
        "kill" => FaultAction::Kill(one(e.kill.as_ref().unwrap())?),
        "power-fail" => FaultAction::PowerFail(one(e.power_fail.as_ref().unwrap())?),
        "restart" => FaultAction::Restart(one(e.restart.as_ref().unwrap())?),
        "disk-loss" => FaultAction::DiskLoss(one(e.disk_loss.as_ref().unwrap())?),
        "shutdown" => FaultAction::Shutdown(one(e.shutdown.as_ref().unwrap())?),
        "pause" => FaultAction::Pause(one(e.pause.as_ref().unwrap())?),
        "resume" => FaultAction::Resume(one(e.resume.as_ref().unwrap())?),
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
                    let sel = selector(ctx, sc, s, &key, true)?;
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
fn selector(
    ctx: &Ctx<'_>,
    sc: &Scenario,
    s: &Spanned<String>,
    key: &str,
    rest_allowed: bool,
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
                Some(NodeId::Producer(n)) => n < sc.producer_clients(),
                Some(NodeId::Consumer(n)) => n < sc.consumer_clients(),
                _ => false,
            };
            if !ok {
                return fail(format!(
                    "no client \"{name}\": clients are producer-0..{} and consumer-0..{}",
                    sc.producer_clients() as i64 - 1,
                    sc.consumer_clients() as i64 - 1
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

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;

    /// The SCENARIOS.md example, with the not-yet-supported parts (sim.replication.truncation =
    /// high-watermark, consumer group, pause) replaced.
    const GOOD: &str = r#"
[scenario]
name = "good"
title = "A title"
description = """
Why.
"""
references = ["KIP-101", "KAFKA-1211"]
duration_ms = 30000
heal_ms = 10000
seeds = [3, 17]
expect = "violation"
expect_violations = ["committed-record-lost"]

[cluster]
brokers = 3
controller = "zk"

[cluster.broker_config]
"min.insync.replicas" = 1
"unclean.leader.election.enable" = false
"replica.lag.time.max.ms" = 30000
"sim.replication.truncation" = "fenced"

[[topics]]
name = "events"
partitions = 1
replication_factor = 2
replica_assignment = [[0, 1]]
config = { "min.insync.replicas" = 1 }

[[producers]]
topic = "events"
count = 1
rate_per_sec = 200
keys = 8
config = { acks = "all", "enable.idempotence" = false, retries = 2147483647 }

[[consumers]]
members = 2
topics = ["events"]
config = { "enable.auto.commit" = false, "auto.offset.reset" = "earliest" }

[faults]
kinds = ["kill", "restart", "partition"]
interval_ms = [1000, 5000]
duration_ms = [500, 4000]
swarm = true
spare_last_replica = true

[[faults.schedule]]
at_ms = 5000
kill = "follower:events-0"
[[faults.schedule]]
at_ms = 6000
restart = "follower:events-0"
[[faults.schedule]]
at_ms = 9000
partition = [["leader:events-0"], ["rest"]]
[[faults.schedule]]
at_ms = 12000
heal = true
"#;

    fn parse_good(edit: impl Fn(&str) -> String) -> Result<Scenario, ScenarioError> {
        parse(&edit(GOOD), "scenarios/good.toml")
    }

    fn err_with(from: &str, to: &str) -> String {
        assert!(GOOD.contains(from), "test edit: {from:?} not in GOOD");
        parse_good(|g| g.replacen(from, to, 1))
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn scenario_example_parses() {
        let s = parse_good(|g| g.to_string()).unwrap();
        assert_eq!(s.name, "good");
        assert_eq!(s.seeds, vec![3, 17]);
        assert_eq!(s.expect, Expect::Violation);
        assert_eq!(s.cluster.brokers, 3);
        assert_eq!(s.topics[0].partitions, 1);
        assert_eq!(s.topics[0].replication_factor, 2);
        assert_eq!(
            s.topics[0].replica_assignment,
            Some(vec![vec![BrokerId(0), BrokerId(1)]])
        );
        assert_eq!(s.topics[0].config.min_insync_replicas, Some(1));
        assert!(!s.producers[0].config.enable_idempotence);
        assert_eq!(s.producers[0].rate_per_sec, 200.0);
        assert_eq!(s.consumers[0].members, 2);
        assert_eq!(
            s.faults.kinds,
            vec![FaultKind::Kill, FaultKind::Restart, FaultKind::Partition]
        );
        assert!(s.faults.swarm);
        assert_eq!(s.faults.schedule.len(), 4);
        assert_eq!(
            s.faults.schedule[0].action,
            FaultAction::Kill(Selector::Follower(TopicPartition::new("events", 0)))
        );
        assert_eq!(
            s.faults.schedule[2].action,
            FaultAction::Partition(vec![
                vec![Selector::Leader(TopicPartition::new("events", 0))],
                vec![Selector::Rest]
            ])
        );
        assert_eq!(s.faults.schedule[3].action, FaultAction::Heal);
        let json = serde_json::to_value(&s.faults.schedule).unwrap();
        assert_eq!(json[0]["action"]["kill"], "follower:events-0");
        assert_eq!(json[3]["action"], "heal");
    }

    #[test]
    fn scenario_defaults() {
        let text = r#"
[scenario]
name = "min"
duration_ms = 1000
seeds = [1]
[cluster]
brokers = 1
[[topics]]
name = "t"
"#;
        let s = parse(text, "min.toml").unwrap();
        assert_eq!(s.title, "min");
        assert_eq!(s.heal_ms, 10_000);
        assert_eq!(s.expect, Expect::Ok);
        assert_eq!(s.cluster.controller, ControllerMode::Zk);
        assert_eq!(s.topics[0].partitions, 1);
        assert_eq!(s.topics[0].replication_factor, 1);
        assert!(s.faults.kinds.is_empty());
        assert!(s.faults.spare_last_replica);
    }

    #[test]
    fn scenario_missing_file() {
        let e = load(Path::new("scenarios/x.toml")).unwrap_err();
        assert_eq!(e.kind, ScenarioErrorKind::Io);
        assert_eq!(
            e.to_string(),
            "cannot read scenarios/x.toml: No such file or directory"
        );
    }

    #[test]
    fn scenario_syntax_error() {
        let e = parse_good(|g| g.replacen("brokers = 3", "brokers = = 3", 1)).unwrap_err();
        assert_eq!(e.kind, ScenarioErrorKind::Syntax);
        assert!(e.to_string().starts_with("scenarios/good.toml:16:"), "{e}");
    }

    #[test]
    fn scenario_unknown_keys() {
        assert_eq!(
            err_with("replication_factor = 2", "replication_facter = 2"),
            "scenarios/good.toml:28:1: topics[0].replication_facter: unknown key \"replication_facter\" in [[topics]]; \
             did you mean \"replication_factor\"?"
        );
        let e = err_with("heal_ms = 10000", "heal_msec = 10000");
        assert!(
            e.ends_with("unknown key \"heal_msec\" in [scenario]; did you mean \"heal_ms\"?"),
            "{e}"
        );
        let e = err_with("[[producers]]", "[[producer]]");
        assert!(
            e.contains("unknown key \"producer\" in the top level; did you mean \"producers\"?"),
            "{e}"
        );
        let e = err_with("heal = true", "heel = true");
        assert!(e.contains("faults.schedule[3].heel: unknown key \"heel\" in [[faults.schedule]]; did you mean \"heal\"?"), "{e}");
        let e = err_with(
            "\"enable.idempotence\" = false",
            "\"enable.idempotency\" = false",
        );
        assert!(
            e.ends_with(
                "producers[0].config.\"enable.idempotency\": unknown producer config \"enable.idempotency\"; \
                 did you mean \"enable.idempotence\"?"
            ),
            "{e}"
        );
        let e = err_with(
            "\"min.insync.replicas\" = 1\n\"unclean",
            "\"min.insync.replica\" = 1\n\"unclean",
        );
        assert!(e.starts_with("scenarios/good.toml:20:1: cluster.broker_config.\"min.insync.replica\": unknown broker"), "{e}");
    }

    #[test]
    fn scenario_kafka_config_errors() {
        let e = err_with("acks = \"all\"", "acks = 2");
        assert_eq!(
            e,
            "scenarios/good.toml:37:19: producers[0].config.acks: \
             Invalid value 2 for configuration acks: String must be one of: all, -1, 0, 1"
        );
        // Every historic mode is implemented; an unknown one lists them.
        let e = err_with(
            "\"sim.replication.truncation\" = \"fenced\"",
            "\"sim.replication.truncation\" = \"kip-102\"",
        );
        assert!(
            e.ends_with(
                "Invalid value kip-102 for configuration sim.replication.truncation: String must \
                 be one of: high-watermark, kip-101, kip-279, kip-320-first-try, fenced"
            ),
            "{e}"
        );
        let e = err_with(
            "\"auto.offset.reset\" = \"earliest\"",
            "\"auto.offset.reset\" = \"first\"",
        );
        assert!(
            e.ends_with("String must be one of: latest, earliest, none"),
            "{e}"
        );
    }

    #[test]
    fn scenario_replication_factor_above_brokers() {
        let e = parse_good(|g| {
            g.replacen(
                "replication_factor = 2\nreplica_assignment = [[0, 1]]\n",
                "replication_factor = 4\n",
                1,
            )
        })
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "scenarios/good.toml:28:22: topics[0].replication_factor: Replication factor: 4 larger than available brokers: 3."
        );
    }

    #[test]
    fn scenario_replica_assignment_errors() {
        let e = err_with("[[0, 1]]", "[[0, 1], [1, 2]]");
        assert!(
            e.contains("replica_assignment lists 2 partition(s) but partitions = 1"),
            "{e}"
        );
        let e = err_with("[[0, 1]]", "[[0, 5]]");
        assert!(e.ends_with("The manual partition assignment includes broker 5, but no such broker is registered."), "{e}");
        let e = err_with("[[0, 1]]", "[[1, 1]]");
        assert!(
            e.ends_with("The manual partition assignment includes the broker 1 more than once."),
            "{e}"
        );
        let e = err_with("[[0, 1]]", "[[0]]");
        assert!(e.contains("replication_factor = 2"), "{e}");
        let e = err_with(
            "partitions = 1\nreplication_factor = 2\n",
            "partitions = 2\n",
        );
        assert!(e.contains("lists 1 partition(s) but partitions = 2"), "{e}");
        let e = err_with(
            "partitions = 1\nreplication_factor = 2\nreplica_assignment = [[0, 1]]",
            "replica_assignment = [[0, 1], [2]]",
        );
        assert!(
            e.ends_with(
                "topics[0].replica_assignment: The manual partition assignment includes a partition with 1 \
                 replica(s), but this is not consistent with previous partitions, which have 2 replica(s)."
            ),
            "{e}"
        );
        let s = parse_good(|g| {
            g.replacen(
                "partitions = 1\nreplication_factor = 2\nreplica_assignment = [[0, 1]]",
                "replica_assignment = [[0, 1], [1, 2]]",
                1,
            )
        })
        .unwrap();
        assert_eq!(
            (s.topics[0].partitions, s.topics[0].replication_factor),
            (2, 2)
        );
    }

    #[test]
    fn scenario_missing_table() {
        let e = parse(
            "[scenario]\nname = \"m\"\nduration_ms = 1\nseeds = [1]\n",
            "m.toml",
        )
        .unwrap_err();
        assert!(e.to_string().contains("missing key \"cluster\""), "{e}");
    }

    #[test]
    fn scenario_partitions_below_one() {
        let e = err_with("partitions = 1", "partitions = 0");
        assert!(
            e.ends_with("topics[0].partitions: Number of partitions must be larger than 0."),
            "{e}"
        );
    }

    #[test]
    fn scenario_unknown_topic() {
        let e = err_with("topic = \"events\"", "topic = \"evnts\"");
        assert!(
            e.ends_with("producers[0].topic: unknown topic \"evnts\"; did you mean \"events\"?"),
            "{e}"
        );
        let e = err_with("topics = [\"events\"]", "topics = [\"other\"]");
        assert!(
            e.contains("consumers[0].topics: unknown topic \"other\""),
            "{e}"
        );
    }

    #[test]
    fn scenario_expectations() {
        let e = err_with(
            "expect_violations = [\"committed-record-lost\"]",
            "expect_violations = []",
        );
        assert!(
            e.contains("expect = \"violation\" needs at least one check name"),
            "{e}"
        );
        let e = err_with("[\"committed-record-lost\"]", "[\"committed-record-lots\"]");
        assert!(
            e.ends_with(
                "unknown check \"committed-record-lots\"; did you mean \"committed-record-lost\"?"
            ),
            "{e}"
        );
        let e = err_with("expect = \"violation\"", "expect = \"maybe\"");
        assert!(e.contains("unknown variant"), "{e}");
    }

    #[test]
    fn scenario_name_and_seeds() {
        let e = parse(GOOD, "scenarios/other.toml").unwrap_err().to_string();
        assert_eq!(
            e,
            "scenarios/other.toml:3:8: scenario.name: name \"good\" must equal the file name \"other\" (without .toml)"
        );
        let e = err_with("seeds = [3, 17]", "seeds = []");
        assert!(
            e.contains("scenario.seeds: seeds must list at least one seed"),
            "{e}"
        );
        let e = err_with("seeds = [3, 17]\n", "");
        assert!(e.contains("missing key \"seeds\" in [scenario]"), "{e}");
    }

    #[test]
    fn scenario_at_ms_after_duration() {
        let e = err_with("at_ms = 12000", "at_ms = 40000");
        assert!(e.ends_with("faults.schedule[3].at_ms: at_ms 40000 is after the end of the fault phase (duration_ms = 30000)"), "{e}");
    }

    #[test]
    fn scenario_not_supported_yet() {
        let e = parse_good(|g| g.replacen("controller = \"zk\"", "controller = \"kraft\"", 1))
            .unwrap_err();
        assert_eq!(e.kind, ScenarioErrorKind::NotSupportedYet);
        assert!(
            e.to_string()
                .ends_with("cluster.controller: not supported yet: cluster.controller = \"kraft\""),
            "{e}"
        );
        // Every fault kind and scheduled action is implemented now: they all load.
        for kind in FaultKind::ALL {
            let loaded = parse_good(|g| {
                g.replacen(
                    "kinds = [\"kill\", \"restart\", \"partition\"]",
                    &format!("kinds = [\"{kind}\"]"),
                    1,
                )
            });
            assert!(loaded.is_ok(), "{kind}: {:?}", loaded.err());
        }
        let e = err_with("[[consumers]]\n", "[[consumers]]\ngroup = \"g1\"\n");
        assert!(
            e.contains("consumers[0].group: not supported yet: consumers.group"),
            "{e}"
        );
        let e = err_with("\"enable.auto.commit\" = false", "\"group.id\" = \"g\"");
        assert!(e.contains("not supported yet: group.id"), "{e}");
        let e = err_with("retries = 2147483647", "\"transactional.id\" = \"tx\"");
        assert!(
            e.contains(
                "producers[0].config.\"transactional.id\": not supported yet: transactional.id"
            ),
            "{e}"
        );
    }

    #[test]
    fn scenario_schedule_shape() {
        let e = err_with("heal = true", "heal = true\nkill = \"broker-0\"");
        assert!(
            e.contains("one action per [[faults.schedule]] entry"),
            "{e}"
        );
        let e = err_with("at_ms = 12000\nheal = true", "at_ms = 12000");
        assert!(e.contains("needs one action"), "{e}");
        let e = err_with("heal = true", "heal = false");
        assert!(e.contains("heal takes only `true`"), "{e}");
    }

    #[test]
    fn scenario_selectors() {
        assert_eq!(Selector::parse("broker-2"), Ok(Selector::Broker(2)));
        assert_eq!(Selector::parse("zk"), Ok(Selector::Zk));
        assert_eq!(Selector::parse("controller"), Ok(Selector::Controller));
        assert_eq!(
            Selector::parse("leader:my-topic-3"),
            Ok(Selector::Leader(TopicPartition::new("my-topic", 3)))
        );
        assert_eq!(
            Selector::parse("follower:events-0"),
            Ok(Selector::Follower(TopicPartition::new("events", 0)))
        );
        assert_eq!(
            Selector::parse("isr:a.b-1"),
            Ok(Selector::Isr(TopicPartition::new("a.b", 1)))
        );
        assert_eq!(
            Selector::parse("client:producer-0"),
            Ok(Selector::Client("producer-0".into()))
        );
        assert_eq!(Selector::parse("rest"), Ok(Selector::Rest));
        assert_eq!(Selector::parse("random-broker"), Ok(Selector::RandomBroker));
        for bad in [
            "broker-x",
            "leader:events",
            "kafka-1",
            "leader:events-",
            "broker--1",
            "",
        ] {
            let e = Selector::parse(bad).unwrap_err();
            assert!(
                e.contains("expected one of: broker-N, zk, controller"),
                "{bad}: {e}"
            );
        }
        for s in [
            "broker-2",
            "leader:my-topic-3",
            "client:consumer-1",
            "random-broker",
        ] {
            assert_eq!(Selector::parse(s).unwrap().to_string(), s);
        }
        let e = err_with(
            "kill = \"follower:events-0\"",
            "kill = \"folower:events-0\"",
        );
        assert!(
            e.contains("unknown node selector \"folower:events-0\""),
            "{e}"
        );
        let e = err_with("kill = \"follower:events-0\"", "kill = \"broker-3\"");
        assert!(e.contains("no broker 3"), "{e}");
        let e = err_with("kill = \"follower:events-0\"", "kill = \"leader:events-1\"");
        assert!(e.contains("no partition events-1"), "{e}");
        let e = err_with("kill = \"follower:events-0\"", "kill = \"leader:evnts-0\"");
        assert!(e.contains("did you mean \"events\""), "{e}");
        let e = err_with("kill = \"follower:events-0\"", "kill = \"rest\"");
        assert!(e.contains("only meaningful inside `partition`"), "{e}");
        let e = err_with(
            "kill = \"follower:events-0\"",
            "kill = \"client:producer-1\"",
        );
        assert!(e.contains("no client \"producer-1\""), "{e}");
        let s = parse_good(|g| {
            g.replacen(
                "kill = \"follower:events-0\"",
                "kill = \"client:consumer-1\"",
                1,
            )
        })
        .unwrap();
        assert_eq!(
            s.faults.schedule[0].action,
            FaultAction::Kill(Selector::Client("consumer-1".into()))
        );
        let e = err_with(
            "[[\"leader:events-0\"], [\"rest\"]]",
            "[[\"rest\"], [\"rest\"]]",
        );
        assert!(e.contains("`rest` may appear only once"), "{e}");
    }

    #[test]
    fn scenario_topic_rules() {
        let e = err_with("name = \"events\"", "name = \"ev ents\"");
        assert!(
            e.contains("contains a character other than ASCII alphanumerics"),
            "{e}"
        );
        let e = parse_good(|g| {
            g.replacen(
                "[[producers]]",
                "[[topics]]\nname = \"events\"\n\n[[producers]]",
                1,
            )
        })
        .unwrap_err();
        assert!(
            e.to_string()
                .ends_with("topics[1].name: Topic 'events' already exists."),
            "{e}"
        );
    }

    #[test]
    fn scenario_fault_ranges() {
        let e = err_with("interval_ms = [1000, 5000]", "interval_ms = [5000, 1000]");
        assert!(e.contains("the minimum is above the maximum"), "{e}");
        let e = err_with(
            "kinds = [\"kill\", \"restart\", \"partition\"]",
            "kinds = [\"kil\"]",
        );
        assert!(e.contains("unknown variant `kil`"), "{e}");
    }

    #[test]
    fn check_names_match_the_contract() {
        assert_eq!(CHECK_NAMES.len(), 32);
        let unique: BTreeSet<_> = CHECK_NAMES.iter().collect();
        assert_eq!(unique.len(), CHECK_NAMES.len());
    }
}
