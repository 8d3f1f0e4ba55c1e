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
//! - `[faults] kinds` other than those in [`SUPPORTED_FAULT_KINDS`] (today: every kind);
//! - `[[faults.schedule]]` actions other than those in [`SUPPORTED_ACTIONS`] (today: every
//!   action);
//! - Kafka settings listed in `ksim_model::config::NOT_SUPPORTED_YET`, except when set to
//!   Kafka's default (today the list is empty: the last rows, transactions, went with
//!   issue 14);
//!
//! Shrink those lists (here and in `config.rs`) as features land.
//!
//! # Input no run could finish
//! A `rate_per_sec` above [`RATE_PER_SEC_MAX`] (more than one Kafka producer offers) is
//! refused like any invalid value. A valid scenario that is merely expensive, or whose
//! consumers cannot keep up with its producers, loads, and [`Scenario::warnings`] says what it
//! will cost and why, for `ksim` to print before running it (see `cost.rs`).

mod cost;
mod error;
mod faults;
#[cfg(test)]
mod group_tests;
mod processors;
mod raw;
mod resolve;
#[cfg(test)]
mod tests;

use ksim_model::config::{
    closest_match, BrokerConfig, ConfigError, ConsumerConfig, ProducerConfig, PropValue,
    Properties, TopicConfig,
};
use ksim_model::consumer::CommitMode;
use ksim_model::producer::SendStyle;
use ksim_model::types::{BrokerId, NodeId, TopicPartition};
use serde::{Deserialize, Serialize, Serializer};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::ops::Range;
use std::path::Path;
use toml::Spanned;

use cost::*;
pub use cost::{
    Cost, FAULTS_PER_DOUBLING, MEMORY_BYTES_PER_RECORD, RATE_PER_SEC_MAX, WALL_US_PER_RECORD,
    WALL_US_PER_REPLICA_SIM_S, WARN_MEMORY_BYTES, WARN_WALL_MS,
};
use error::*;
pub use error::{ScenarioError, ScenarioErrorKind};
use faults::*;
pub use faults::{
    DiskFaultKind, FaultAction, FaultKind, FaultsSpec, Replacement, ScheduledFault, Selector,
    SELECTOR_FORMS,
};
use raw::*;
pub use resolve::validate_topic_name;
use resolve::*;

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
    "exactly-once",
    "liveness",
];

/// The random nemesis kinds implemented so far; any other kind is `not supported yet`.
pub const SUPPORTED_FAULT_KINDS: &[FaultKind] = FaultKind::ALL;

/// The `[[faults.schedule]]` action keys implemented so far; any other is `not supported yet`.
/// Every one is also a [`FaultAction::key`], the `action` of a `fault` event (a scenario's
/// `reach` names them as `fault:ACTION`).
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
    "close",
    "replace",
];

/// The fault actions only the random nemesis carries out (`faults.kinds`), not schedule keys:
/// their fault events are `client-kill`, `client-pause` and `client-leave`, and a scenario's
/// `reach` may name them as `fault:client-kill`, ...
pub const RANDOM_ONLY_ACTIONS: &[&str] = &["client-kill", "client-pause", "client-leave"];

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
    /// `[[processors]]`, in file order (each entry is `members` clients).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub processors: Vec<ProcessorSpec>,
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
    /// `topic` (one) or `topics` (several, SCENARIOS.md "Transactions and exactly-once"):
    /// existing, distinct topics, at least one. Record `n` of a client (from 0) goes to topic
    /// `n % len`, within it to the partition Kafka's partitioner chooses, so a transaction of
    /// at least `len` records writes to every one of them (`ksim_model::producer::ProducerWorkload`).
    pub topics: Vec<String>,
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
    /// `transaction` (with a `transactional.id` only; default records [1, 10], no aborts):
    /// the size of each transaction and the share the application aborts.
    pub transaction: Option<TransactionSettings>,
}

/// One `[[processors]]` entry (SCENARIOS.md "Transactions and exactly-once"): `members`
/// consume-transform-produce clients of one group, `processor-N` (numbered across entries in
/// file order), see `ksim_model::processor`.
#[derive(Debug, Clone, Serialize)]
pub struct ProcessorSpec {
    /// `group`: the group the members' consumers join (`group.id`).
    pub group: String,
    /// `members` (1).
    pub members: u32,
    /// `input`: the topic consumed (an existing topic).
    pub input: String,
    /// `output`: the topic written (an existing topic).
    pub output: String,
    /// `processing_ms = [min, max]` (default [50, 50]): the time spent on each non-empty poll
    /// before its output is written.
    pub processing_ms: Option<(u64, u64)>,
    /// `commit.interval.ms` in `config` (ms, a non-negative integer; default 0): how often an
    /// exactly-once processor commits its transaction, Kafka Streams'
    /// `StreamsConfig.COMMIT_INTERVAL_MS_CONFIG`. 0 commits after every poll (one transaction
    /// per poll, as ksim always did, so older scenarios run unchanged); above 0, one
    /// transaction spans the polls of that long (see `ksim_model::processor`). Kafka Streams'
    /// own default is 30000 ms, and 100 ms under `processing.guarantee = exactly_once_v2`.
    #[serde(skip_serializing_if = "is_zero_u64")]
    pub commit_interval_ms: u64,
    /// The consumer half of `config` (the keys `ConsumerConfig` knows), with the processor's
    /// defaults where the table is silent: `group.id` = `group`, `enable.auto.commit = false`
    /// (the processor commits), `auto.offset.reset = "earliest"` (Kafka Streams' default)
    /// and `isolation.level = "read_committed"` with a `transactional.id`.
    pub consumer_config: ConsumerConfig,
    /// The producer half of `config` (the keys `ProducerConfig` knows). A `transactional.id`
    /// makes the entry exactly-once; processor `processor-N` uses `<value>-N`.
    pub producer_config: ProducerConfig,
    /// `config` as written.
    pub properties: Properties,
}

impl ProducerSpec {
    /// Whether this entry's clients write to `topic`.
    pub fn writes(&self, topic: &str) -> bool {
        self.topics.iter().any(|t| t == topic)
    }

    /// The records per simulated second each client offers to each of its topics
    /// (`rate_per_sec` spread evenly by the round-robin of [`Self::topics`]).
    pub fn rate_per_topic(&self) -> f64 {
        self.rate_per_sec / self.topics.len().max(1) as f64
    }
}

impl ProcessorSpec {
    /// Exactly-once (a `transactional.id`) rather than at-least-once.
    pub fn exactly_once(&self) -> bool {
        self.producer_config.transactional_id.is_some()
    }
}

/// A transactional producer's `transaction` key (SCENARIOS.md "Transactions and
/// exactly-once").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct TransactionSettings {
    /// `records = [min, max]`: records per transaction, uniform, `1 <= min <= max`.
    pub records: [u32; 2],
    /// `abort_percent` (0..=100): the share of transactions the application aborts.
    pub abort_percent: u32,
    /// `id_per_start` (default false): the application derives its `transactional.id` from
    /// something that changes at every start of its process (a container's host name, a
    /// process id drawn at start), so a restarted client no longer fences its predecessor:
    /// start `k >= 1` of client `i` uses `<transactional.id>-<i>.<k>` (the first start keeps
    /// `<transactional.id>-<i>`). Its predecessor's producer id is then never used again, so a
    /// transaction that producer id left open in a partition is ended by no later marker of
    /// the same producer id (KIP-890's hanging transaction).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub id_per_start: bool,
}

impl TransactionSettings {
    /// The model's form.
    pub fn spec(&self) -> ksim_model::producer::TransactionSpec {
        ksim_model::producer::TransactionSpec {
            records_min: self.records[0],
            records_max: self.records[1],
            abort_percent: self.abort_percent,
        }
    }
}

fn ser_send_style<S: Serializer>(v: &SendStyle, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(v.name())
}

/// One `[[consumers]]` entry: `members` consumer clients with the same settings.
#[derive(Debug, Clone, Serialize)]
pub struct ConsumerSpec {
    /// `group`: subscribe within that group (`group.id`; the members join it and consume
    /// what its assignor gives them). `None`: assign mode (each member assigns itself every
    /// partition of `topics`).
    pub group: Option<String>,
    /// `processing_ms = [min, max]` (subscribe mode; default [50, 50]): the time the
    /// application spends on each non-empty poll, uniform in the range.
    pub processing_ms: Option<(u64, u64)>,
    /// `processing_change = [{ at_ms = 8000, processing_ms = [2500, 3000] }, ...]` (none;
    /// subscribe mode): from each `at_ms` (simulated ms since the run started, ascending,
    /// within the run and not before `start_ms`) on, the polls whose processing starts then
    /// take that range instead of `processing_ms`: an application that slows down (or speeds
    /// up) at a given time, for example to outlast `max.poll.interval.ms` on purpose.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub processing_change: Vec<ProcessingChangeSpec>,
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
    /// `commit` ("auto"): how the application commits its positions, with a `group.id` in
    /// `config` (assign mode still: the consumer reads the group's committed offsets on start
    /// and commits with generation -1): "auto" (`enable.auto.commit`), "sync" (`commitSync()`
    /// after processing each poll), "async" (`commitAsync()` after processing),
    /// "before-processing" (`commitSync()` before processing: at-most-once) or "none" (never;
    /// `enable.auto.commit` is then off). Refused without a `group.id`.
    #[serde(serialize_with = "ser_commit_mode")]
    pub commit: CommitMode,
}

fn ser_commit_mode<S: Serializer>(v: &CommitMode, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(v.name())
}

/// One entry of `[[consumers]] processing_change`: from `at_ms` on, processing a non-empty
/// poll takes `processing_ms = (min, max)` ms, uniform in the range.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
pub struct ProcessingChangeSpec {
    pub at_ms: u64,
    pub processing_ms: (u64, u64),
}

/// `[[consumers]] seek_to`: one `KafkaConsumer.seek(tp, offset)` by the application.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct SeekSpec {
    pub tp: TopicPartition,
    pub offset: i64,
    pub at_ms: u64,
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

    /// Processor clients in all entries (node ids `processor-0 ..`, entry order).
    pub fn processor_clients(&self) -> u32 {
        self.processors.iter().map(|p| p.members).sum()
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

/// For `skip_serializing_if`: a setting at 0 (its default) is left out.
fn is_zero_u64(v: &u64) -> bool {
    *v == 0
}
