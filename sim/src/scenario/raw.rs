//! The raw TOML shape of a scenario file: serde structs that mirror the v1 schema key for key
//! (`deny_unknown_fields`, values kept `Spanned` so that an error can name its line), before
//! any validation.

use super::*;

pub(super) type RawProps = Spanned<BTreeMap<Spanned<String>, Spanned<PropValue>>>;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFile {
    pub(super) scenario: RawMeta,
    pub(super) cluster: RawCluster,
    #[serde(default)]
    pub(super) topics: Vec<RawTopic>,
    #[serde(default)]
    pub(super) producers: Vec<RawProducer>,
    #[serde(default)]
    pub(super) consumers: Vec<RawConsumer>,
    #[serde(default)]
    pub(super) faults: Option<RawFaults>,
    /// `[[processors]]` (SCENARIOS.md v1.1, consume-transform-produce).
    #[serde(default)]
    pub(super) processors: Vec<Spanned<RawProcessor>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawProcessor {
    pub(super) group: Spanned<String>,
    #[serde(default)]
    pub(super) members: Option<Spanned<u32>>,
    pub(super) input: Spanned<String>,
    pub(super) output: Spanned<String>,
    #[serde(default)]
    pub(super) processing_ms: Option<Spanned<Vec<u64>>>,
    #[serde(default)]
    pub(super) config: Option<RawProps>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawMeta {
    pub(super) name: Spanned<String>,
    #[serde(default)]
    pub(super) title: Option<String>,
    #[serde(default)]
    pub(super) description: Option<String>,
    #[serde(default)]
    pub(super) references: Vec<String>,
    pub(super) duration_ms: Spanned<u64>,
    #[serde(default)]
    pub(super) heal_ms: Option<u64>,
    pub(super) seeds: Spanned<Vec<u64>>,
    #[serde(default)]
    pub(super) expect: Option<Spanned<Expect>>,
    #[serde(default)]
    pub(super) expect_violations: Option<Spanned<Vec<Spanned<String>>>>,
    #[serde(default)]
    pub(super) reach: Vec<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCluster {
    pub(super) brokers: Spanned<i32>,
    #[serde(default)]
    pub(super) controller: Option<Spanned<ControllerMode>>,
    #[serde(default)]
    pub(super) broker_config: Option<RawProps>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTopic {
    pub(super) name: Spanned<String>,
    #[serde(default)]
    pub(super) partitions: Option<Spanned<i32>>,
    #[serde(default)]
    pub(super) replication_factor: Option<Spanned<i32>>,
    #[serde(default)]
    pub(super) replica_assignment: Option<Spanned<Vec<Spanned<Vec<i32>>>>>,
    #[serde(default)]
    pub(super) config: Option<RawProps>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawProducer {
    /// `topic` or `topics`: exactly one of them (checked in `resolve`).
    #[serde(default)]
    pub(super) topic: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) topics: Option<Spanned<Vec<Spanned<String>>>>,
    #[serde(default)]
    pub(super) count: Option<Spanned<u32>>,
    pub(super) rate_per_sec: Spanned<f64>,
    #[serde(default)]
    pub(super) keys: Option<Spanned<u32>>,
    #[serde(default)]
    pub(super) send_style: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) config: Option<RawProps>,
    #[serde(default)]
    pub(super) transaction: Option<Spanned<RawTransaction>>,
}

/// A producer's `transaction = { records = [min, max], abort_percent = P }`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTransaction {
    #[serde(default)]
    pub(super) records: Option<Vec<u32>>,
    #[serde(default)]
    pub(super) abort_percent: Option<u32>,
    #[serde(default)]
    pub(super) id_per_start: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConsumer {
    #[serde(default)]
    pub(super) group: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) members: Option<Spanned<u32>>,
    pub(super) topics: Spanned<Vec<Spanned<String>>>,
    #[serde(default)]
    pub(super) config: Option<RawProps>,
    #[serde(default)]
    pub(super) start_ms: Option<Spanned<u64>>,
    #[serde(default)]
    pub(super) seek_to: Option<Spanned<RawSeek>>,
    #[serde(default)]
    pub(super) commit: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) processing_ms: Option<Spanned<Vec<u64>>>,
    #[serde(default)]
    pub(super) processing_change: Option<Spanned<Vec<Spanned<RawProcessingChange>>>>,
}

/// One `processing_change` entry: `{ at_ms = 8000, processing_ms = [2500, 3000] }`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawProcessingChange {
    pub(super) at_ms: Spanned<u64>,
    pub(super) processing_ms: Spanned<Vec<u64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSeek {
    #[serde(default)]
    pub(super) topic: Option<String>,
    pub(super) partition: i32,
    pub(super) offset: i64,
    pub(super) at_ms: u64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFaults {
    #[serde(default)]
    pub(super) kinds: Vec<Spanned<FaultKind>>,
    #[serde(default)]
    pub(super) interval_ms: Option<Spanned<[u64; 2]>>,
    #[serde(default)]
    pub(super) duration_ms: Option<Spanned<[u64; 2]>>,
    #[serde(default)]
    pub(super) swarm: Option<bool>,
    #[serde(default)]
    pub(super) spare_last_replica: Option<bool>,
    #[serde(default)]
    pub(super) schedule: Vec<RawScheduled>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawScheduled {
    pub(super) at_ms: Spanned<u64>,
    #[serde(default)]
    pub(super) kill: Option<Spanned<String>>,
    #[serde(default, rename = "power-fail")]
    pub(super) power_fail: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) restart: Option<Spanned<String>>,
    #[serde(default, rename = "disk-loss")]
    pub(super) disk_loss: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) shutdown: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) pause: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) resume: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) partition: Option<Spanned<Vec<Vec<Spanned<String>>>>>,
    #[serde(default)]
    pub(super) isolate: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) clog: Option<Spanned<[Spanned<String>; 2]>>,
    #[serde(default)]
    pub(super) heal: Option<Spanned<bool>>,
    #[serde(default, rename = "disk-fault")]
    pub(super) disk_fault: Option<Spanned<RawDiskFault>>,
    #[serde(default, rename = "create-partitions")]
    pub(super) create_partitions: Option<Spanned<RawCreatePartitions>>,
    #[serde(default, rename = "delete-topic")]
    pub(super) delete_topic: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) close: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) replace: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCreatePartitions {
    pub(super) topic: Spanned<String>,
    pub(super) count: Spanned<i64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDiskFault {
    pub(super) node: Spanned<String>,
    pub(super) kind: DiskFaultKind,
}
