//! Replica snapshots: what every replica of one partition held at one moment, for the
//! replication invariants (`strong-isr`, `weak-isr`, `committed-data-stable`).
//!
//! KafkaReplication.tla states its invariants over every reachable state: each replica's log,
//! its high watermark (HW), who presumes leadership, the leader's local ISR and the ISR in the
//! quorum (ZooKeeper). A simulated run has far too many states to record them all, so the
//! simulator records a snapshot of one partition at the moments its replication state changes
//! shape, and of every partition at the end:
//!
//! - `partition-state-changed`: the controller wrote a new leader or ISR to the coordination
//!   node (every leader election and every ISR shrink or expansion);
//! - `became-leader` / `became-follower`: a broker took a role in a new leader epoch;
//! - `truncated` / `log-recovered`: a replica's log got shorter (the only ways a record a
//!   follower held can leave it);
//! - `final`: after the drain phase, before the nodes stop.
//!
//! A snapshot is taken while the triggering event is recorded: every other process is between
//! two handlers (madsim runs one task at a time), and the emitting process has applied every disk
//! write it made before the event. Logs are read from each broker's disk as its process would
//! read them (the page cache view: what a `kill` keeps); high watermarks and roles are the
//! in-memory values of each broker process, asked at the snapshot moment, when every process
//! is between two handlers ([`ksim_model::effects::Actor::replica_probe`]). Taking snapshots draws no randomness and
//! changes nothing in the run.
//!
//! Invariant checks therefore happen at snapshot moments only: a violation that begins and ends
//! between two snapshots of its partition is not seen. Every way a replica can lose a record
//! (truncation, recovery, a role change after a restart) and every ISR change is a trigger, so a
//! replica that lacks a record the HW covers is seen at the latest when it next changes role or
//! the run ends.

use ksim_model::log::PartitionLog;
use ksim_model::types::{BrokerId, LeaderEpoch, Offset, TopicPartition};
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Arc;

/// One replica of the partition at a snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReplicaState {
    pub broker: BrokerId,
    /// The broker process runs (a paused process counts as running; a killed, powered-off or
    /// halted one does not).
    pub running: bool,
    /// The replica's high watermark as its running process holds it in memory; `None` when the
    /// process is not running or has not reported the partition yet.
    pub high_watermark: Option<Offset>,
    /// `Some(epoch)` when the running process acts as the partition's leader in that epoch.
    pub leader_epoch: Option<LeaderEpoch>,
    /// When it acts as leader: its local ISR (from its `became-leader` and `isr-changed`
    /// events in that epoch).
    pub local_isr: Option<Vec<BrokerId>>,
    /// The first offset of its log.
    pub log_start_offset: Offset,
    /// Every data record of its log on disk: (offset, value, leader epoch of the batch). The
    /// value is the workload's u64 (0 when the record has none). Shared between the snapshots
    /// of a replica whose log did not change in between.
    #[serde(serialize_with = "serialize_records")]
    pub records: Records,
}

/// A replica's records at a snapshot: (offset, value, leader epoch of the batch).
pub type Records = Arc<Vec<(Offset, u64, LeaderEpoch)>>;

fn serialize_records<S: serde::Serializer>(r: &Records, s: S) -> Result<S::Ok, S::Error> {
    r.as_slice().serialize(s)
}

impl ReplicaState {
    /// The record at `offset`, if the log holds one there.
    pub fn record_at(&self, offset: Offset) -> Option<(u64, LeaderEpoch)> {
        // Offsets in a log ascend; control records leave gaps, so search rather than index.
        self.records
            .binary_search_by_key(&offset, |(o, _, _)| *o)
            .ok()
            .map(|i| (self.records[i].1, self.records[i].2))
    }

    /// The offset after the last record on disk (the log end offset for data records).
    pub fn end_offset(&self) -> Offset {
        self.records
            .last()
            .map_or(self.log_start_offset, |(o, _, _)| o.next())
    }
}

/// Every replica of one partition at one moment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReplicaSnapshot {
    /// Simulated milliseconds since the start.
    pub time_ms: u64,
    /// How many events were recorded when the snapshot was taken: the trigger is event
    /// `event_count - 1` of `events.jsonl` (for `final`, every event).
    pub event_count: usize,
    pub tp: TopicPartition,
    /// The kind of the triggering event (`became-leader`, `truncated`, ...) or `final`.
    pub trigger: String,
    /// The ISR the controller last wrote to the coordination node for the partition (its
    /// latest `partition-state-changed`), if any: the "quorum ISR" of KafkaReplication.tla.
    pub controller_isr: Option<Vec<BrokerId>>,
    /// One entry per broker that has a directory for the partition, by broker id.
    pub replicas: Vec<ReplicaState>,
}

impl ReplicaSnapshot {
    /// The replica on `broker`, if it hosts the partition.
    pub fn replica(&self, broker: BrokerId) -> Option<&ReplicaState> {
        self.replicas.iter().find(|r| r.broker == broker)
    }

    /// Replicas that presume leadership: running and acting as leader.
    pub fn presumed_leaders(&self) -> impl Iterator<Item = &ReplicaState> {
        self.replicas
            .iter()
            .filter(|r| r.running && r.leader_epoch.is_some())
    }
}

/// A broker process the snapshotter asks, at a snapshot moment, for one replica's in-memory
/// state: [`ksim_model::effects::Actor::replica_probe`] (HW, leader epoch when leading).
pub trait ReplicaProbe: Send + Sync {
    /// `tp`'s (high watermark, leader epoch if leading), or `None` when not hosted.
    fn probe(&self, tp: &TopicPartition) -> Option<(Offset, Option<LeaderEpoch>)>;
}

impl<A: ksim_model::effects::Actor + Send> ReplicaProbe for std::sync::Mutex<A> {
    fn probe(&self, tp: &TopicPartition) -> Option<(Offset, Option<LeaderEpoch>)> {
        crate::runtime::lock_actor(self).replica_probe(tp)
    }
}

/// The records of `tp`'s log in `files` (one broker's data directory), as the broker would
/// recover them: (log start offset, records).
pub fn read_log(
    tp: &TopicPartition,
    files: &BTreeMap<String, Vec<u8>>,
) -> (Offset, Vec<(Offset, u64, LeaderEpoch)>) {
    let mut scratch = Vec::new();
    let (log, _) = PartitionLog::recover(tp, files, &mut scratch);
    let mut records = Vec::new();
    log.visit_records(|o, _, v, e| records.push((o, decode_value(v), e)));
    (log.log_start_offset(), records)
}

/// The workload's value of a record, as the checks read it whatever the producer's
/// `value.serializer`: an 8-byte body is `LongSerializer`'s big-endian number, a body of
/// decimal digits is `StringSerializer`'s text (the workload's values are at least 2^32, so
/// their text has at least 10 digits and is never 8 bytes long); anything else is 0.
pub fn decode_value(v: Option<&[u8]>) -> u64 {
    match v {
        Some(v) if v.len() == 8 => u64::from_be_bytes(v.try_into().expect("8 bytes")),
        Some(v) if !v.is_empty() && v.iter().all(u8::is_ascii_digit) => std::str::from_utf8(v)
            .ok()
            .and_then(|t| t.parse().ok())
            .unwrap_or(0),
        _ => 0,
    }
}

/// The partition a partition directory name (`events-0`) stands for.
pub fn parse_dir(dir: &str) -> Option<TopicPartition> {
    dir.rsplit_once('-')
        .and_then(|(t, p)| p.parse().ok().map(|p| TopicPartition::new(t, p)))
}

/// Takes the snapshots of one run (owned by the runtime's shared state): it follows the events
/// as they are recorded, asks the broker processes for their in-memory state of the
/// snapshotted partition, and reads the disks. Nothing is done per handler: the cost of a
/// snapshot is that of its partition's replicas, whatever the cluster's size.
#[derive(Default)]
pub struct Snapshotter {
    /// The simulated disk; without it no snapshot is taken.
    pub disk: Option<std::sync::Arc<crate::disk::SimDisk>>,
    /// Every broker of the cluster, in id order.
    pub brokers: Vec<BrokerId>,
    /// Each broker's latest process incarnation (registered once it has started), asked at
    /// snapshot moments.
    probes: BTreeMap<BrokerId, Arc<dyn ReplicaProbe>>,
    /// Each leader's local ISR: (tp, broker) -> (leader epoch, ISR).
    local_isr: BTreeMap<(TopicPartition, BrokerId), (LeaderEpoch, Vec<BrokerId>)>,
    /// The controller's latest written ISR per partition.
    controller_isr: BTreeMap<TopicPartition, Vec<BrokerId>>,
    /// The snapshots taken so far, in time order.
    pub snapshots: Vec<ReplicaSnapshot>,
    /// Per replica, its log as last parsed: (version of its directory on the disk, log start
    /// offset, records). A snapshot re-reads a replica's log only when the directory's version
    /// changed (an append, truncation, rewrite, deletion or power failure since), so bursts of
    /// snapshots around one election parse each log once and share its records.
    parsed: BTreeMap<(BrokerId, TopicPartition), (u64, Offset, Records)>,
}

impl std::fmt::Debug for Snapshotter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Snapshotter")
            .field("brokers", &self.brokers)
            .field("registered", &self.probes.keys().collect::<Vec<_>>())
            .field("snapshots", &self.snapshots.len())
            .finish()
    }
}

impl Snapshotter {
    /// A snapshotter for a cluster of `brokers` (set [`Snapshotter::disk`] to take snapshots).
    pub fn new(brokers: Vec<BrokerId>) -> Snapshotter {
        Snapshotter {
            brokers,
            ..Default::default()
        }
    }

    /// Follows one recorded event (`event_count` events are now recorded, this one last);
    /// takes a snapshot of its partition when it is a trigger (see the module documentation).
    /// `running(b)`: whether broker `b`'s process runs now.
    pub fn observe(
        &mut self,
        time_ms: u64,
        event_count: usize,
        event: &ksim_model::event::Event,
        running: &dyn Fn(BrokerId) -> bool,
    ) {
        use ksim_model::event::Event;
        let (tp, trigger) = match event {
            Event::PartitionStateChanged { tp, isr, .. } => {
                self.controller_isr.insert(tp.clone(), isr.clone());
                (tp, "partition-state-changed")
            }
            Event::BecameLeader {
                tp,
                broker,
                leader_epoch,
                isr,
                ..
            } => {
                self.local_isr
                    .insert((tp.clone(), *broker), (*leader_epoch, isr.clone()));
                (tp, "became-leader")
            }
            Event::IsrChanged {
                tp,
                broker,
                leader_epoch,
                isr,
                ..
            } => {
                if let Some(e) = self.local_isr.get_mut(&(tp.clone(), *broker)) {
                    if e.0 == *leader_epoch {
                        e.1 = isr.clone();
                    }
                }
                return;
            }
            Event::BecameFollower { tp, .. } => (tp, "became-follower"),
            Event::Truncated { tp, .. } => (tp, "truncated"),
            Event::LogRecovered { tp, .. } => (tp, "log-recovered"),
            _ => return,
        };
        let tp = tp.clone();
        self.take(time_ms, event_count, &tp, trigger, running);
    }

    /// Broker `b`'s process has started (recovered, and its `on_start` ran): from now on
    /// snapshots ask `probe` for its replicas' state. It replaces the previous incarnation's.
    pub fn register(&mut self, b: BrokerId, probe: Arc<dyn ReplicaProbe>) {
        self.probes.insert(b, probe);
    }

    /// Takes a snapshot of `tp` now.
    pub fn take(
        &mut self,
        time_ms: u64,
        event_count: usize,
        tp: &TopicPartition,
        trigger: &str,
        running: &dyn Fn(BrokerId) -> bool,
    ) {
        let Some(disk) = &self.disk else { return };
        let dir = format!("{}-{}", tp.topic, tp.partition);
        let mut replicas = Vec::new();
        for &b in &self.brokers {
            let node = ksim_model::types::NodeId::Broker(b).to_string();
            let key = (b, tp.clone());
            let version = disk.dir_version(&node, &dir);
            let cached = self.parsed.get(&key).filter(|(v, _, _)| *v == version);
            let (log_start_offset, records) = match cached {
                Some((_, start, records)) => (*start, records.clone()),
                None => {
                    let (version, files) = disk.read_dir(&node, &dir);
                    if files.is_empty() {
                        self.parsed.remove(&key);
                        continue;
                    }
                    let (start, records) = read_log(tp, &files);
                    let records = Arc::new(records);
                    self.parsed.insert(key, (version, start, records.clone()));
                    (start, records)
                }
            };
            let is_running = running(b);
            let probe = if is_running {
                self.probes.get(&b).and_then(|p| p.probe(tp))
            } else {
                None
            };
            let leader_epoch = probe.and_then(|(_, e)| e);
            let local_isr = leader_epoch.and_then(|e| {
                self.local_isr
                    .get(&(tp.clone(), b))
                    .filter(|(le, _)| *le == e)
                    .map(|(_, isr)| isr.clone())
            });
            replicas.push(ReplicaState {
                broker: b,
                running: is_running,
                high_watermark: probe.map(|(hw, _)| hw),
                leader_epoch,
                local_isr,
                log_start_offset,
                records,
            });
        }
        self.snapshots.push(ReplicaSnapshot {
            time_ms,
            event_count,
            tp: tp.clone(),
            trigger: trigger.to_string(),
            controller_isr: self.controller_isr.get(tp).cloned(),
            replicas,
        });
    }
}
