//! A broker: the replica manager of every partition it hosts, its coordination-node session,
//! and (when elected) the controller.
//!
//! # Replication, as this broker implements it (Kafka 2.7+ with KIP-320 fencing)
//! Each partition has one **leader** and zero or more **followers**, chosen by the controller
//! and announced with LeaderAndIsr carrying a **leader epoch**. Producers write to the leader,
//! which appends to its log, advancing its **log end offset (LEO)**. Followers pull with
//! `Fetch(fetch_offset = their LEO, last_fetched_epoch, current_leader_epoch)`:
//!
//! * the leader **fences** a fetch whose `current_leader_epoch` is older (FENCED_LEADER_EPOCH)
//!   or newer (UNKNOWN_LEADER_EPOCH) than its own (KIP-320), so a follower still on an old
//!   epoch can never be counted toward the high watermark;
//! * the leader checks that the follower's log agrees with its own at `fetch_offset`: if the
//!   leader's end offset for `last_fetched_epoch` is below `fetch_offset`, or the leader never
//!   had that epoch, it answers with a **diverging epoch** and the follower truncates to
//!   `min(leader's end offset for that epoch, its own end offset for it)` (KIP-101, KIP-279,
//!   KIP-595's fetch-based truncation);
//! * otherwise `fetch_offset` is the follower's LEO as far as the leader knows, and the
//!   **high watermark (HW)** becomes the minimum LEO over the ISR. Records below the HW are
//!   committed: consumers read only below it and `acks=all` produces are answered once the HW
//!   passes them.
//!
//! The leader removes followers that have not caught up for `replica.lag.time.max.ms` from the
//! **ISR** and adds back followers that reached the HW in its epoch, by asking the controller
//! (AlterPartition, KIP-497). Until the controller confirms a change, the HW is computed over
//! the larger of the two ISRs ("maximal ISR"), so an acknowledged record is always on every
//! replica the controller might elect.
//!
//! Durability follows Kafka: a write is in the page cache at once and on disk only after a
//! flush (`log.flush.interval.messages` / `log.flush.interval.ms`; by default never forced).
//! A process crash loses nothing; a power failure loses the unflushed tail.
//!
//! # Size
//! Above the project's 1500-line guide (about 4400 lines with its tests): the split by
//! Kafka concept into a folder of its own is item 1 of the "house" issue (11), planned
//! before coordinators are added; until then the whole concept stays in this one file.

use crate::config::{BrokerCompression, BrokerConfig, TopicConfig, TruncationMode};
use crate::controller::{AdminOp, Controller, ControllerZkOp, NewTopic};
use crate::effects::{Actor, DiskOp, Effects};
use crate::event::Event;
use crate::log::{checkpoint, LogConfig, PartitionLog};
use crate::protocol::*;
use crate::record::{read_header, verify_crc, RecordBatch};
use crate::types::*;
use crate::zk_client::{SessionState, ZkClient};
use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// How many batches of each producer the leader remembers for duplicate detection
/// (Kafka's `ProducerStateEntry.NUM_BATCHES_TO_RETAIN`).
pub const NUM_BATCHES_TO_RETAIN: usize = 5;

/// How long the controller waits before resending to a broker it could not reach.
pub const CONTROLLER_RESEND_BACKOFF_MS: u64 = 1_000;

/// How long a leader waits before it sends an AlterPartition again after a NOT_CONTROLLER
/// answer, a failed send or a broken connection to the controller, in milliseconds: Kafka's
/// `retry.backoff.max.ms` default (1000), the cap of the client retry backoff (KIP-580).
const ALTER_PARTITION_RETRY_BACKOFF_MS: u64 = 1_000;

/// File holding the HW of every partition (Kafka's `replication-offset-checkpoint`).
pub const HW_CHECKPOINT_FILE: &str = "replication-offset-checkpoint";

/// Why a coordination-node request was sent.
#[derive(Debug, Clone, PartialEq)]
pub enum ZkPurpose {
    Connect,
    Ping,
    /// Create a persistent path if missing (NodeExists is fine).
    EnsurePath,
    /// Create our ephemeral `/brokers/ids/N`.
    Register,
    /// Read `/controller` (with a watch).
    ControllerRead,
    /// Try to create `/controller`.
    ControllerCreate,
    /// Read `/controller_epoch` after winning `/controller`.
    EpochRead,
    /// Conditionally write the incremented `/controller_epoch`.
    EpochWrite {
        epoch: ControllerEpoch,
    },
    /// Create `/controller_epoch` (first controller ever).
    EpochCreate,
    /// Work of the active controller.
    Controller(ControllerZkOp),
}

/// Timers of a broker.
#[derive(Debug, Clone, PartialEq)]
pub enum BrokerTimer {
    ZkTick,
    ZkReconnect,
    RegisterRetry,
    ProduceTimeout {
        id: u64,
    },
    FetchWaitExpired {
        id: u64,
    },
    /// Send the next follower fetch for `tp` if generation still matches.
    FollowerFetch {
        tp: TopicPartition,
        generation: u64,
    },
    /// A follower fetch got no answer in time.
    FollowerFetchTimeout {
        tp: TopicPartition,
        corr: CorrelationId,
    },
    IsrCheck,
    HwCheckpoint,
    FlushCheck,
    AlterPartitionRetry {
        tp: TopicPartition,
        generation: u64,
        /// Which send of the pending request this retry follows (`LeaderState::isr_sends`):
        /// a retry armed by an earlier send is stale.
        send: u64,
    },
    /// The controller resends its state to a broker a send to which failed.
    ControllerResend {
        broker: BrokerId,
    },
    /// Retention runs (`log.retention.check.interval.ms`).
    LogRetentionCheck,
    /// The log cleaner's next pass (`log.cleaner.backoff.ms`); armed only when some topic
    /// compacts.
    LogCleanerTick,
    /// Checkpoint every log's recovery point (`log.flush.offset.checkpoint.interval.ms`).
    RecoveryPointCheckpoint,
    /// Checkpoint every log's start offset (`log.flush.start.offset.checkpoint.interval.ms`).
    LogStartOffsetCheckpoint,
}

/// One cached batch of a producer (for duplicate detection).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct CachedBatch {
    first_seq: i32,
    last_seq: i32,
    first_offset: Offset,
}

/// Per-producer state of one partition (`ProducerStateEntry`).
#[derive(Debug, Clone, Default)]
struct ProducerEntry {
    epoch: ProducerEpoch,
    batches: VecDeque<CachedBatch>,
}

impl ProducerEntry {
    fn last_seq(&self) -> Option<i32> {
        self.batches.back().map(|b| b.last_seq)
    }
}

/// What the leader knows of one follower.
#[derive(Debug, Clone)]
struct FollowerProgress {
    /// The follower's LEO as of its last fetch in this epoch (`-1`: not fetched yet).
    log_end_offset: Offset,
    /// Last time the follower was caught up to the leader's LEO.
    last_caught_up: Instant,
    /// The follower's broker epoch from its fetches (KIP-903); `-1` before its first fetch.
    broker_epoch: BrokerEpoch,
}

#[derive(Debug, Clone)]
struct LeaderState {
    leader_epoch: LeaderEpoch,
    /// The ISR the controller committed.
    isr: Vec<BrokerId>,
    partition_epoch: ZkVersion,
    replicas: Vec<BrokerId>,
    followers: BTreeMap<BrokerId, FollowerProgress>,
    /// An AlterPartition pending: the correlation id of its latest send and the ISR asked for.
    pending_isr: Option<(CorrelationId, Vec<BrokerId>)>,
    /// The controller the latest send of `pending_isr` went to while its answer is awaited
    /// (`None`: answered, failed, or its connection broke). At most one copy is in flight,
    /// as Kafka's `AlterPartitionManager` keeps one (see `send_alter_partition`).
    isr_in_flight: Option<BrokerId>,
    /// How many times this leader has sent an AlterPartition (each send arms one retry).
    isr_sends: u64,
    /// Offset at which this leader's epoch starts.
    epoch_start_offset: Offset,
}

impl LeaderState {
    /// The ISR used for the HW: committed ISR plus any member being added (KIP-497 maximal ISR).
    fn maximal_isr(&self) -> Vec<BrokerId> {
        let mut isr: BTreeSet<BrokerId> = self.isr.iter().copied().collect();
        if let Some((_, pending)) = &self.pending_isr {
            isr.extend(pending.iter().copied());
        }
        isr.into_iter().collect()
    }
}

#[derive(Debug, Clone)]
struct FollowerState {
    leader: Option<BrokerId>,
    leader_epoch: LeaderEpoch,
    in_flight: Option<CorrelationId>,
    /// Bumped on every role change so stale timers are ignored.
    generation: u64,
    /// The truncation phase of the legacy modes `kip-101` and `kip-279`: while `Some(epoch)`,
    /// the follower sends OffsetsForLeaderEpoch for `epoch` instead of fetching.
    epoch_lookup: Option<LeaderEpoch>,
    /// The log end offset at which the leader's data last could not be appended (reported
    /// once per offset, see [`Event::FollowerAppendFailed`]).
    append_failed_at: Option<Offset>,
}

#[derive(Debug, Clone)]
enum Role {
    /// Hosted but no LeaderAndIsr received yet in this process.
    None,
    Leader(LeaderState),
    Follower(FollowerState),
}

#[derive(Debug)]
struct Partition {
    log: PartitionLog,
    high_watermark: Offset,
    role: Role,
    /// Latest leader epoch this broker accepted for the partition.
    leader_epoch: LeaderEpoch,
    producers: BTreeMap<ProducerId, ProducerEntry>,
    generation: u64,
}

#[derive(Debug, Clone)]
struct PendingProduce {
    /// The request (in `produce_requests`) this partition's answer belongs to.
    req: u64,
    tp: TopicPartition,
    leader_epoch: LeaderEpoch,
    base_offset: Offset,
    last_offset: Offset,
}

/// A produce request whose partitions are not all answered yet (Kafka's DelayedProduce
/// answers a request once, when every partition is done).
#[derive(Debug, Clone)]
struct ProduceRequestState {
    from: NodeId,
    corr: CorrelationId,
    /// Partitions still to answer.
    waiting: usize,
    /// Answers so far, each with its position in the request.
    responses: Vec<(usize, PartitionProduceResponse)>,
}

#[derive(Debug, Clone)]
struct PendingFetch {
    from: NodeId,
    msg: Message,
}

/// A broker process.
#[derive(Debug)]
pub struct Broker {
    pub id: BrokerId,
    config: BrokerConfig,
    topic_configs: BTreeMap<String, TopicConfig>,
    partitions: BTreeMap<TopicPartition, Partition>,
    zk: ZkClient<ZkPurpose>,
    broker_epoch: BrokerEpoch,
    registered: bool,
    controller: Controller,
    /// Metadata cache from UpdateMetadata.
    metadata: BTreeMap<TopicPartition, PartitionState>,
    live_brokers: Vec<BrokerId>,
    controller_id: Option<BrokerId>,
    highest_controller_epoch: ControllerEpoch,
    next_id: u64,
    pending_produces: BTreeMap<u64, PendingProduce>,
    /// Multi-partition produce requests still collecting their partitions' answers.
    produce_requests: BTreeMap<u64, ProduceRequestState>,
    pending_fetches: BTreeMap<u64, PendingFetch>,
    next_producer_id: i64,
    /// Leader fetches waiting for a reply, to the leader they went to.
    fetch_targets: BTreeMap<CorrelationId, (TopicPartition, BrokerId)>,
    next_corr: u64,
    /// Brokers the controller will resend its state to (one timer each).
    controller_resends: BTreeSet<BrokerId>,
    /// When this broker last heard from the coordination node on its session.
    zk_last_heard: Instant,
}

impl Broker {
    /// A broker recovering from the files on its disk (`files`: every file of its data
    /// directory). `topics` are the scenario's topics: configs for every broker, and the
    /// creation requests the controller carries out if the topic does not exist yet.
    pub fn recover(
        id: BrokerId,
        config: BrokerConfig,
        topics: Vec<NewTopic>,
        files: &BTreeMap<String, Vec<u8>>,
        out: &mut Effects<BrokerTimer>,
    ) -> Broker {
        let mut topic_configs = BTreeMap::new();
        for t in &topics {
            topic_configs.insert(t.name.clone(), t.config.clone());
        }
        let checkpoint = parse_hw_checkpoint(files.get(HW_CHECKPOINT_FILE).map(|v| v.as_slice()));
        // Every partition directory present on disk is hosted.
        let mut dirs: BTreeSet<TopicPartition> = BTreeSet::new();
        for name in files.keys() {
            if let Some((dir, _)) = name.split_once('/') {
                if let Some(tp) = parse_dir(dir) {
                    dirs.insert(tp);
                }
            }
        }
        let mut partitions = BTreeMap::new();
        let mut disk_ops = Vec::new();
        for tp in dirs {
            let log_config = topic_configs
                .get(&tp.topic)
                .cloned()
                .unwrap_or_default()
                .log_config(&config);
            let (log, report) =
                PartitionLog::recover_with_config(&tp, files, log_config, &mut disk_ops);
            if report.discarded_bytes > 0 {
                out.event(Event::LogRecovered {
                    tp: tp.clone(),
                    broker: id,
                    log_end_offset: log.log_end_offset(),
                    discarded_bytes: report.discarded_bytes,
                });
            }
            // Kafka: the HW is at least the log start offset.
            let hw = checkpoint
                .get(&tp)
                .copied()
                .unwrap_or(Offset(0))
                .min(log.log_end_offset())
                .max(log.log_start_offset());
            let mut p = Partition {
                log,
                high_watermark: hw,
                role: Role::None,
                leader_epoch: LeaderEpoch::UNKNOWN,
                producers: BTreeMap::new(),
                generation: 0,
            };
            p.rebuild_producer_state();
            partitions.insert(tp, p);
        }
        for op in disk_ops {
            out.disk(op);
        }
        let zk_timeout = config.zookeeper_session_timeout_ms;
        let controller = Controller::new(id, config.clone(), topics);
        Broker {
            id,
            config,
            topic_configs,
            partitions,
            zk: ZkClient::new(zk_timeout),
            broker_epoch: BrokerEpoch(-1),
            registered: false,
            controller,
            metadata: BTreeMap::new(),
            live_brokers: Vec::new(),
            controller_id: None,
            highest_controller_epoch: ControllerEpoch(0),
            next_id: 1,
            pending_produces: BTreeMap::new(),
            produce_requests: BTreeMap::new(),
            pending_fetches: BTreeMap::new(),
            next_producer_id: 0,
            fetch_targets: BTreeMap::new(),
            next_corr: 1,
            controller_resends: BTreeSet::new(),
            zk_last_heard: Instant(0),
        }
    }

    fn fresh_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    fn fresh_corr(&mut self) -> CorrelationId {
        self.next_corr += 1;
        CorrelationId(self.next_corr)
    }

    fn min_isr(&self, topic: &str) -> i32 {
        self.topic_configs
            .get(topic)
            .and_then(|c| c.min_insync_replicas)
            .unwrap_or(self.config.min_insync_replicas)
    }

    /// The log settings of `topic`'s partitions: its overrides on top of the broker's.
    fn log_config(&self, topic: &str) -> LogConfig {
        self.topic_configs
            .get(topic)
            .cloned()
            .unwrap_or_default()
            .log_config(&self.config)
    }

    /// The topic's `compression.type`, else the broker's.
    fn compression_type(&self, topic: &str) -> BrokerCompression {
        self.topic_configs
            .get(topic)
            .and_then(|c| c.compression_type)
            .unwrap_or(self.config.compression_type)
    }

    fn flush_interval_messages(&self, topic: &str) -> u64 {
        self.topic_configs
            .get(topic)
            .and_then(|c| c.flush_messages)
            .unwrap_or(self.config.log_flush_interval_messages)
    }

    /// Whether this broker is the active controller.
    pub fn is_controller(&self) -> bool {
        self.controller.is_active()
    }

    /// Every hosted partition's log, for end-of-run inspection.
    pub fn logs(&self) -> impl Iterator<Item = (&TopicPartition, &PartitionLog, Offset)> {
        self.partitions
            .iter()
            .map(|(tp, p)| (tp, &p.log, p.high_watermark))
    }

    /// The partitions this broker currently leads, with their leader epochs.
    pub fn led_partitions(&self) -> Vec<(TopicPartition, LeaderEpoch)> {
        self.partitions
            .iter()
            .filter_map(|(tp, p)| match &p.role {
                Role::Leader(l) => Some((tp.clone(), l.leader_epoch)),
                _ => None,
            })
            .collect()
    }

    // ------------------------------------------------------------------
    // Coordination-node session, registration and controller election
    // ------------------------------------------------------------------

    fn zk_send(
        &mut self,
        now: Instant,
        req: ZkRequest,
        purpose: ZkPurpose,
        out: &mut Effects<BrokerTimer>,
    ) {
        let msg = self.zk.request(now, req, purpose);
        out.send(NodeId::Zk, msg);
    }

    fn zk_connect(&mut self, now: Instant, out: &mut Effects<BrokerTimer>) {
        let msg = self.zk.connect(now, ZkPurpose::Connect);
        out.send(NodeId::Zk, msg);
    }

    fn on_session_lost(&mut self, now: Instant, reason: &str, out: &mut Effects<BrokerTimer>) {
        self.zk.expire();
        self.registered = false;
        // Without controller-epoch fencing (the legacy mode), a controller does not step down
        // when its session goes: it resigns only once it sees `/controller` owned by another
        // broker after re-registering (as ZkClient-era controllers resigned from their
        // new-session handler), and until then acts, and sends, on its stale view.
        if self.controller.is_active() && self.config.controller_epoch_fencing {
            self.controller.resign(reason, out);
        }
        self.zk_connect(now, out);
    }

    /// With controller-epoch fencing on, an active controller that has heard nothing from the
    /// coordination node for the whole session timeout gives up its session and the role: the
    /// coordination node has expired the session by now (it counts from the last request it
    /// received, which is no later than the last reply we received), so another broker may
    /// already be controller. This is Curator's `LOST` connection state; it keeps a controller
    /// cut off from the coordination node from acting on (and sending) stale decisions.
    fn check_session_silence(&mut self, now: Instant, out: &mut Effects<BrokerTimer>) {
        if !self.config.controller_epoch_fencing || !self.controller.is_active() {
            return;
        }
        if self.zk.session().is_some()
            && now.since(self.zk_last_heard) >= self.zk.session_timeout_ms
        {
            self.on_session_lost(now, "session-silent", out);
        }
    }

    fn on_connected(&mut self, now: Instant, out: &mut Effects<BrokerTimer>) {
        let session = self.zk.session().expect("connected");
        // KIP-380/KIP-903: the broker epoch identifies this process incarnation. It is taken
        // from the first session of the process (session ids are unique and increase, like the
        // czxid Kafka uses) and kept when a lost session is re-established: the process and its
        // log did not change, so its ISR memberships stay valid (as in KRaft, where a broker
        // registers once per process start).
        if self.broker_epoch.0 < 0 {
            self.broker_epoch = BrokerEpoch(session.0);
        }
        for path in ["/brokers", "/brokers/ids", "/brokers/topics"] {
            self.zk_send(
                now,
                ZkRequest::Create {
                    path: path.into(),
                    data: vec![],
                    ephemeral: false,
                },
                ZkPurpose::EnsurePath,
                out,
            );
        }
        self.register(now, out);
    }

    fn register(&mut self, now: Instant, out: &mut Effects<BrokerTimer>) {
        // The registration also reports each hosted log's end (the epoch of its last record,
        // log end offset), as KIP-966's balanced unclean recovery asks replicas for theirs
        // (GetReplicaLogInfo: LastWrittenLeaderEpoch, LogEndOffset): the controller uses it to
        // pick the most complete member of an offline partition's last ISR. The last
        // *written* epoch, not the latest cached one: a leader assigns its epoch at its log
        // end when it takes over, and a replica that led briefly without writing must not
        // outrank a longer log (topic-admin-under-faults seed 195: broker-1, a zombie leader
        // of epoch 1 at offset 942, was chosen over broker-2 with committed records up to
        // 948, which a restart had left at epoch 0 as Kafka's recovery does). The third
        // figure, the highest epoch the log's epoch cache has held (`highest_epoch_seen`),
        // tells the controller which elected leaders did take leadership.
        let logs: serde_json::Map<String, serde_json::Value> = self
            .partitions
            .iter()
            .map(|(tp, p)| {
                let epoch = p.log.last_written_epoch().unwrap_or(LeaderEpoch::UNKNOWN);
                let seen = p.log.highest_epoch_seen().unwrap_or(LeaderEpoch::UNKNOWN);
                (
                    tp.to_string(),
                    serde_json::json!([epoch.0, p.log.log_end_offset().0, seen.0]),
                )
            })
            .collect();
        let data =
            serde_json::json!({ "version": 5, "broker_epoch": self.broker_epoch.0, "logs": logs })
                .to_string()
                .into_bytes();
        self.zk_send(
            now,
            ZkRequest::Create {
                path: format!("/brokers/ids/{}", self.id.0),
                data,
                ephemeral: true,
            },
            ZkPurpose::Register,
            out,
        );
    }

    fn elect_controller(&mut self, now: Instant, out: &mut Effects<BrokerTimer>) {
        self.zk_send(
            now,
            ZkRequest::GetData {
                path: "/controller".into(),
                watch: true,
            },
            ZkPurpose::ControllerRead,
            out,
        );
    }

    fn on_zk_response(
        &mut self,
        now: Instant,
        corr: CorrelationId,
        result: Result<ZkReply, ZkError>,
        out: &mut Effects<BrokerTimer>,
    ) {
        let Some(purpose) = self.zk.on_response(corr, &result) else {
            return;
        };
        self.zk_last_heard = now;
        if matches!(
            result,
            Err(ZkError::SessionExpired) | Err(ZkError::NoSession)
        ) {
            if self.zk.session().is_some() || matches!(purpose, ZkPurpose::Connect) {
                self.on_session_lost(now, "session-expired", out);
            }
            return;
        }
        match purpose {
            ZkPurpose::Connect => {
                if self.zk.session().is_some() {
                    self.on_connected(now, out);
                }
            }
            ZkPurpose::Ping | ZkPurpose::EnsurePath => {}
            ZkPurpose::Register => match result {
                Ok(_) => {
                    self.registered = true;
                    out.event(Event::BrokerRegistered {
                        broker: self.id,
                        broker_epoch: self.broker_epoch,
                    });
                    self.elect_controller(now, out);
                }
                Err(ZkError::NodeExists) => {
                    // Our previous session's ephemeral is still there; it goes when that
                    // session expires. Kafka retries the same way.
                    out.timer(1000, BrokerTimer::RegisterRetry);
                }
                Err(_) => out.timer(1000, BrokerTimer::RegisterRetry),
            },
            ZkPurpose::ControllerRead => match result {
                Ok(ZkReply::Data { data, .. }) => {
                    self.set_controller(now, parse_controller_id(&data), out);
                    if self.controller_id != Some(self.id) && self.controller.is_active() {
                        self.controller.resign("controller-moved", out);
                    }
                }
                Err(ZkError::NoNode) => {
                    let data = format!("{{\"version\":1,\"brokerid\":{}}}", self.id.0).into_bytes();
                    self.zk_send(
                        now,
                        ZkRequest::Create {
                            path: "/controller".into(),
                            data,
                            ephemeral: true,
                        },
                        ZkPurpose::ControllerCreate,
                        out,
                    );
                }
                _ => {}
            },
            ZkPurpose::ControllerCreate => match result {
                Ok(_) => {
                    self.controller_id = Some(self.id);
                    self.zk_send(
                        now,
                        ZkRequest::GetData {
                            path: "/controller_epoch".into(),
                            watch: false,
                        },
                        ZkPurpose::EpochRead,
                        out,
                    );
                }
                Err(_) => self.elect_controller(now, out),
            },
            ZkPurpose::EpochRead => match result {
                Ok(ZkReply::Data { data, version }) => {
                    let epoch = ControllerEpoch(parse_i32(&data).unwrap_or(0) + 1);
                    self.zk_send(
                        now,
                        ZkRequest::SetData {
                            path: "/controller_epoch".into(),
                            data: epoch.0.to_string().into_bytes(),
                            expected_version: Some(version),
                        },
                        ZkPurpose::EpochWrite { epoch },
                        out,
                    );
                }
                Err(ZkError::NoNode) => {
                    self.zk_send(
                        now,
                        ZkRequest::Create {
                            path: "/controller_epoch".into(),
                            data: b"1".to_vec(),
                            ephemeral: false,
                        },
                        ZkPurpose::EpochCreate,
                        out,
                    );
                }
                _ => self.elect_controller(now, out),
            },
            ZkPurpose::EpochWrite { epoch } => match result {
                Ok(ZkReply::Stat { version }) => self.become_controller(now, epoch, version, out),
                _ => self.elect_controller(now, out),
            },
            ZkPurpose::EpochCreate => match result {
                Ok(_) => self.become_controller(now, ControllerEpoch(1), ZkVersion(0), out),
                _ => self.elect_controller(now, out),
            },
            ZkPurpose::Controller(op) => {
                let mut reqs = Vec::new();
                self.controller.on_zk_reply(now, op, result, &mut reqs, out);
                self.flush_controller_requests(now, reqs, out);
            }
        }
    }

    fn become_controller(
        &mut self,
        now: Instant,
        epoch: ControllerEpoch,
        version: ZkVersion,
        out: &mut Effects<BrokerTimer>,
    ) {
        out.event(Event::ControllerElected {
            broker: self.id,
            controller_epoch: epoch,
        });
        let mut reqs = Vec::new();
        self.controller.on_elected(epoch, version, &mut reqs, out);
        self.flush_controller_requests(now, reqs, out);
    }

    fn flush_controller_requests(
        &mut self,
        now: Instant,
        reqs: Vec<(ZkRequest, ControllerZkOp)>,
        out: &mut Effects<BrokerTimer>,
    ) {
        for (req, op) in reqs {
            self.zk_send(now, req, ZkPurpose::Controller(op), out);
        }
    }

    fn on_zk_watch(
        &mut self,
        now: Instant,
        path: String,
        kind: WatchKind,
        out: &mut Effects<BrokerTimer>,
    ) {
        if path == "/controller" {
            self.elect_controller(now, out);
        } else if self.controller.is_active() {
            let mut reqs = Vec::new();
            self.controller.on_watch(&path, kind, &mut reqs);
            self.flush_controller_requests(now, reqs, out);
        }
    }

    // ------------------------------------------------------------------
    // Controller requests to this broker
    // ------------------------------------------------------------------

    /// Whether a controller request from `controller` in `controller_epoch` is fenced: with
    /// `sim.controller.epoch-fencing` on, a request from an older controller epoch than the
    /// highest this broker accepted comes from a deposed controller and is refused with
    /// STALE_CONTROLLER_EPOCH (Kafka's `ReplicaManager`: "Ignoring ... since its controller epoch
    /// is old"). Records the rejection.
    fn controller_request_fenced(
        &self,
        controller: BrokerId,
        controller_epoch: ControllerEpoch,
        api: &str,
        out: &mut Effects<BrokerTimer>,
    ) -> bool {
        if !self.config.controller_epoch_fencing
            || controller_epoch >= self.highest_controller_epoch
        {
            return false;
        }
        out.event(Event::ControllerRequestRejected {
            broker: self.id,
            controller,
            controller_epoch,
            api: api.into(),
            highest_controller_epoch: self.highest_controller_epoch,
        });
        true
    }

    /// A controller request is applied: remember its epoch (the highest seen, when fenced; in
    /// the legacy unfenced mode the broker simply follows the latest request) and record it.
    fn accept_controller_request(
        &mut self,
        controller: BrokerId,
        controller_epoch: ControllerEpoch,
        api: &str,
        out: &mut Effects<BrokerTimer>,
    ) {
        if self.config.controller_epoch_fencing {
            assert!(controller_epoch >= self.highest_controller_epoch);
        }
        self.highest_controller_epoch = controller_epoch;
        out.event(Event::ControllerRequestAccepted {
            broker: self.id,
            controller,
            controller_epoch,
            api: api.into(),
        });
    }

    #[allow(clippy::too_many_arguments)]
    fn on_leader_and_isr(
        &mut self,
        now: Instant,
        from: NodeId,
        controller: BrokerId,
        controller_epoch: ControllerEpoch,
        broker_epoch: BrokerEpoch,
        states: Vec<PartitionState>,
        out: &mut Effects<BrokerTimer>,
    ) {
        if self.controller_request_fenced(controller, controller_epoch, "LeaderAndIsr", out) {
            out.send(
                from,
                Message::LeaderAndIsrResponse {
                    controller_epoch,
                    error: ErrorCode::StaleControllerEpoch,
                },
            );
            return;
        }
        if broker_epoch != self.broker_epoch {
            // KIP-380: addressed to a previous incarnation of this broker.
            out.send(
                from,
                Message::LeaderAndIsrResponse {
                    controller_epoch,
                    error: ErrorCode::StaleBrokerEpoch,
                },
            );
            return;
        }
        self.accept_controller_request(controller, controller_epoch, "LeaderAndIsr", out);
        for state in states {
            if !state.replicas.contains(&self.id) {
                continue;
            }
            self.apply_partition_state(now, state, out);
        }
        out.send(
            from,
            Message::LeaderAndIsrResponse {
                controller_epoch,
                error: ErrorCode::None,
            },
        );
    }

    fn apply_partition_state(
        &mut self,
        now: Instant,
        state: PartitionState,
        out: &mut Effects<BrokerTimer>,
    ) {
        let tp = state.tp.clone();
        let me = self.id;
        if !self.partitions.contains_key(&tp) {
            let mut log = PartitionLog::new(&tp);
            log.set_config(self.log_config(&tp.topic));
            self.partitions.insert(
                tp.clone(),
                Partition {
                    log,
                    high_watermark: Offset(0),
                    role: Role::None,
                    leader_epoch: LeaderEpoch::UNKNOWN,
                    producers: BTreeMap::new(),
                    generation: 0,
                },
            );
        }
        let p = self.partitions.get_mut(&tp).expect("just inserted");
        if state.leader_epoch < p.leader_epoch {
            return; // stale
        }
        let same_epoch = state.leader_epoch == p.leader_epoch;
        if state.leader == Some(me) {
            if same_epoch {
                if let Role::Leader(l) = &mut p.role {
                    // Same epoch: only the ISR may have changed (controller-side write we
                    // already know through AlterPartition, or a refresh).
                    if state.partition_epoch > l.partition_epoch {
                        l.isr = state.isr.clone();
                        l.partition_epoch = state.partition_epoch;
                        // The committed state supersedes an AlterPartition in flight: that
                        // request names an older partition epoch, so the controller refuses
                        // it if it has not carried it out already.
                        l.pending_isr = None;
                        // The leader's view of the ISR changed: say so, as an AlterPartition
                        // answer does (the weak-isr check reads the local ISR from events).
                        out.event(Event::IsrChanged {
                            tp: tp.clone(),
                            broker: me,
                            leader_epoch: l.leader_epoch,
                            isr: state.isr.clone(),
                            partition_epoch: state.partition_epoch,
                        });
                    }
                    return;
                }
            }
            self.make_leader(now, state, out);
        } else {
            if same_epoch {
                if let Role::Follower(_) = &p.role {
                    return;
                }
            }
            self.make_follower(now, state, out);
        }
    }

    fn make_leader(&mut self, now: Instant, state: PartitionState, out: &mut Effects<BrokerTimer>) {
        let tp = state.tp.clone();
        let me = self.id;
        let mut ops = Vec::new();
        let p = self.partitions.get_mut(&tp).expect("hosted");
        let leo = p.log.log_end_offset();
        p.log.assign_epoch_start(state.leader_epoch, leo, &mut ops);
        p.leader_epoch = state.leader_epoch;
        p.generation += 1;
        let followers = state
            .replicas
            .iter()
            .filter(|r| **r != me)
            .map(|r| {
                (
                    *r,
                    FollowerProgress {
                        log_end_offset: Offset(-1),
                        last_caught_up: now,
                        broker_epoch: BrokerEpoch(-1),
                    },
                )
            })
            .collect();
        p.role = Role::Leader(LeaderState {
            leader_epoch: state.leader_epoch,
            isr: state.isr.clone(),
            partition_epoch: state.partition_epoch,
            replicas: state.replicas.clone(),
            followers,
            pending_isr: None,
            isr_in_flight: None,
            isr_sends: 0,
            epoch_start_offset: leo,
        });
        let hw = p.high_watermark;
        for op in ops {
            out.disk(op);
        }
        out.event(Event::BecameLeader {
            tp: tp.clone(),
            broker: me,
            leader_epoch: state.leader_epoch,
            isr: state.isr.clone(),
            log_end_offset: leo,
            high_watermark: hw,
        });
        // A sole-replica ISR can advance the HW at once.
        self.maybe_advance_hw(now, &tp, out);
    }

    fn make_follower(
        &mut self,
        now: Instant,
        state: PartitionState,
        out: &mut Effects<BrokerTimer>,
    ) {
        let tp = state.tp.clone();
        let me = self.id;
        let mode = self.config.replication_truncation;
        let p = self.partitions.get_mut(&tp).expect("hosted");
        // The leader this replica followed (itself if it led) before this LeaderAndIsr; `None`
        // after a restart, when no LeaderAndIsr has been seen yet.
        let previous_leader = match &p.role {
            Role::None => None,
            Role::Leader(_) => Some(me),
            Role::Follower(f) => f.leader,
        };
        p.leader_epoch = state.leader_epoch;
        p.generation += 1;
        let generation = p.generation;
        // KIP-101 and KIP-279 truncate before fetching, by asking the leader where the epoch of
        // the follower's last record ends (an empty log has nothing to truncate). Kip101.tla
        // truncates on every new epoch; Kafka up to 2.0 (KAFKA-7164) only when the leader
        // changed, which is what `kip-279` keeps.
        let last_epoch = p.log.epoch_of_last_batch();
        let epoch_lookup = match mode {
            TruncationMode::Kip101 => Some(last_epoch),
            TruncationMode::Kip279 if previous_leader != state.leader => Some(last_epoch),
            _ => None,
        }
        .filter(|e| *e != LeaderEpoch::UNKNOWN && state.leader.is_some());
        p.role = Role::Follower(FollowerState {
            leader: state.leader,
            leader_epoch: state.leader_epoch,
            in_flight: None,
            generation,
            epoch_lookup,
            append_failed_at: None,
        });
        let leo = p.log.log_end_offset();
        out.event(Event::BecameFollower {
            tp: tp.clone(),
            broker: me,
            leader: state.leader,
            leader_epoch: state.leader_epoch,
            log_end_offset: leo,
        });
        if self.config.replication_truncation == TruncationMode::HighWatermark
            && p.high_watermark < leo
        {
            // Before KIP-101 a new follower cut its log back to its own high watermark and
            // fetched from there: anything above it was assumed uncommitted. A follower learns
            // the HW one fetch late and checkpoints it every few seconds, so after a restart
            // this can cut records the leader had already committed (KIP-101, scenario 1).
            let hw = p.high_watermark;
            let mut ops = Vec::new();
            // Truncation stops at a batch boundary, possibly below the HW.
            let to = p.log.truncate_to(hw, &mut ops);
            p.high_watermark = p.high_watermark.min(to);
            for op in ops {
                out.disk(op);
            }
            out.event(Event::Truncated {
                tp: tp.clone(),
                broker: me,
                from_offset: leo,
                to_offset: to,
                reason: "high-watermark (pre-KIP-101)".into(),
            });
            self.rebuild_producers(&tp);
        }
        self.fail_pending_produces(&tp, ErrorCode::NotLeaderOrFollower, out);
        if state.leader.is_some() {
            self.send_follower_fetch(now, &tp, out);
        }
    }

    fn on_update_metadata(
        &mut self,
        now: Instant,
        controller: BrokerId,
        controller_epoch: ControllerEpoch,
        live_brokers: Vec<BrokerId>,
        partitions: Vec<PartitionState>,
        out: &mut Effects<BrokerTimer>,
    ) {
        if self.controller_request_fenced(controller, controller_epoch, "UpdateMetadata", out) {
            return;
        }
        self.accept_controller_request(controller, controller_epoch, "UpdateMetadata", out);
        self.set_controller(now, Some(controller), out);
        self.live_brokers = live_brokers;
        // The controller always sends the whole cluster's state: a partition it no longer lists
        // belongs to a deleted topic.
        self.metadata = partitions.into_iter().map(|s| (s.tp.clone(), s)).collect();
    }

    /// The broker learnt which broker is the controller. When it is a new one, every
    /// AlterPartition still waiting for an answer goes to it now, as Kafka's
    /// `BrokerToControllerChannelManager` sends its queued request to the controller it has just
    /// discovered (the one in flight to the old controller fails with the connection). Without
    /// this the request waited for its 5 s retry (`correlated-power-loss-fsync` seed 10829: the
    /// controller lost power 0.8 s before the heal, the next one was elected 5.2 s after it,
    /// and the leader's ISR expansion reached it only 4.8 s later, so `acks=all` produce
    /// waited beyond the heal phase under KIP-966's strict min ISR).
    fn set_controller(
        &mut self,
        now: Instant,
        controller: Option<BrokerId>,
        out: &mut Effects<BrokerTimer>,
    ) {
        if controller == self.controller_id {
            return;
        }
        self.controller_id = controller;
        if controller.is_none() {
            return;
        }
        let pending: Vec<(TopicPartition, Vec<BrokerId>)> = self
            .partitions
            .iter()
            .filter_map(|(tp, p)| match &p.role {
                Role::Leader(l) => l.pending_isr.clone().map(|(_, isr)| (tp.clone(), isr)),
                _ => None,
            })
            .collect();
        for (tp, new_isr) in pending {
            self.send_alter_partition(now, &tp, new_isr, out);
        }
    }

    /// StopReplica: stop serving the partitions and, with `delete_partitions` (topic
    /// deletion), delete their logs, as Kafka's `ReplicaManager.stopReplicas` does. Fenced by
    /// controller epoch and broker epoch like LeaderAndIsr.
    #[allow(clippy::too_many_arguments)]
    fn on_stop_replica(
        &mut self,
        from: NodeId,
        controller: BrokerId,
        controller_epoch: ControllerEpoch,
        broker_epoch: BrokerEpoch,
        partitions: Vec<TopicPartition>,
        delete_partitions: bool,
        out: &mut Effects<BrokerTimer>,
    ) {
        let error =
            if self.controller_request_fenced(controller, controller_epoch, "StopReplica", out) {
                ErrorCode::StaleControllerEpoch
            } else if broker_epoch != self.broker_epoch {
                ErrorCode::StaleBrokerEpoch
            } else {
                ErrorCode::None
            };
        if error == ErrorCode::None {
            self.accept_controller_request(controller, controller_epoch, "StopReplica", out);
            for tp in partitions {
                if !delete_partitions {
                    continue; // only deletion is modelled (replica reassignment is not)
                }
                let Some(p) = self.partitions.remove(&tp) else {
                    continue;
                };
                self.metadata.remove(&tp);
                out.disk(DiskOp::DeleteDir {
                    dir: p.log.dir().to_string(),
                });
                out.event(Event::ReplicaDeleted {
                    tp: tp.clone(),
                    broker: self.id,
                });
                self.fail_pending_produces(&tp, ErrorCode::UnknownTopicOrPartition, out);
            }
        }
        out.send(
            from,
            Message::StopReplicaResponse {
                controller_epoch,
                error,
            },
        );
    }

    // ------------------------------------------------------------------
    // Produce
    // ------------------------------------------------------------------

    /// A ProduceRequest: each partition's batch is handled on its own ([`Self::on_produce`]);
    /// the response goes out once every partition has its answer (at once for acks=1 and
    /// errors, after the HW passes the batch for acks=all). acks=0 gets no response.
    fn on_produce_request(
        &mut self,
        now: Instant,
        from: NodeId,
        corr: CorrelationId,
        acks: Acks,
        timeout_ms: u64,
        partitions: Vec<(TopicPartition, Vec<u8>)>,
        out: &mut Effects<BrokerTimer>,
    ) {
        let req = self.fresh_id();
        if acks != Acks::None {
            self.produce_requests.insert(
                req,
                ProduceRequestState {
                    from,
                    corr,
                    waiting: partitions.len(),
                    responses: Vec::with_capacity(partitions.len()),
                },
            );
        }
        for (tp, batch) in partitions {
            let mut reply = None;
            self.on_produce(now, from, req, tp, acks, timeout_ms, batch, &mut reply, out);
            if let Some(r) = reply {
                self.produce_partition_done(req, r, out);
            }
        }
        if self
            .produce_requests
            .get(&req)
            .is_some_and(|r| r.waiting == 0)
        {
            self.produce_partition_answered(req, out);
        }
    }

    /// Records one partition's answer; sends the response when it was the last one.
    fn produce_partition_done(
        &mut self,
        req: u64,
        resp: PartitionProduceResponse,
        out: &mut Effects<BrokerTimer>,
    ) {
        let Some(state) = self.produce_requests.get_mut(&req) else {
            return;
        };
        let pos = state.responses.len();
        state.responses.push((pos, resp));
        state.waiting -= 1;
        if state.waiting == 0 {
            self.produce_partition_answered(req, out);
        }
    }

    fn produce_partition_answered(&mut self, req: u64, out: &mut Effects<BrokerTimer>) {
        let state = self.produce_requests.remove(&req).expect("present");
        debug_assert_eq!(state.waiting, 0);
        out.send(
            state.from,
            Message::ProduceResponse {
                corr: state.corr,
                partitions: state.responses.into_iter().map(|(_, r)| r).collect(),
            },
        );
    }

    /// One partition's batch of a produce request. An immediate answer goes to `reply`;
    /// an acks=all append waits in `pending_produces` under `req`.
    #[allow(clippy::too_many_arguments)]
    fn on_produce(
        &mut self,
        now: Instant,
        from: NodeId,
        req: u64,
        tp: TopicPartition,
        acks: Acks,
        timeout_ms: u64,
        mut batch: Vec<u8>,
        reply: &mut Option<PartitionProduceResponse>,
        out: &mut Effects<BrokerTimer>,
    ) {
        let me = self.id;
        let min_isr = self.min_isr(&tp.topic);
        let compression_type = self.compression_type(&tp.topic);
        let flush_interval = self.flush_interval_messages(&tp.topic);
        let mut respond =
            |out: &mut Effects<BrokerTimer>, error: ErrorCode, base: Offset, lso: Offset| {
                if acks == Acks::None {
                    // No answer is read with acks=0; on an error Kafka closes the connection
                    // so that the producer notices and refreshes its metadata.
                    if error != ErrorCode::None {
                        out.list
                            .push(crate::effects::Effect::CloseConnection { peer: from });
                    }
                } else {
                    *reply = Some(PartitionProduceResponse {
                        tp: tp.clone(),
                        error,
                        base_offset: base,
                        log_start_offset: lso,
                    });
                }
            };
        if !self.partitions.contains_key(&tp) && !self.metadata.contains_key(&tp) {
            // Kafka's `getPartitionOrError`: a partition missing from the metadata cache (for
            // example of a deleted topic) is unknown, not merely led elsewhere.
            respond(
                out,
                ErrorCode::UnknownTopicOrPartition,
                Offset(-1),
                Offset(-1),
            );
            return;
        }
        let Some(p) = self.partitions.get_mut(&tp) else {
            respond(out, ErrorCode::NotLeaderOrFollower, Offset(-1), Offset(-1));
            return;
        };
        let Role::Leader(leader) = &p.role else {
            respond(out, ErrorCode::NotLeaderOrFollower, Offset(-1), Offset(-1));
            return;
        };
        let leader_epoch = leader.leader_epoch;
        let isr_now = leader.isr.clone();
        let header = match read_header(&batch).and_then(|h| verify_crc(&batch).map(|_| h)) {
            Ok(h) => h,
            Err(_) => {
                respond(
                    out,
                    ErrorCode::CorruptMessage,
                    Offset(-1),
                    p.log.log_start_offset(),
                );
                return;
            }
        };
        // Kafka's LogValidator: a compacted topic needs a key on every record.
        if p.log.config().cleanup_policy.compact && !header.is_control() {
            let keyless = RecordBatch::decode(&batch)
                .map(|(b, _)| b.records.iter().any(|r| r.key.is_none()))
                .unwrap_or(false);
            if keyless {
                out.event(Event::ProduceRejected {
                    tp: tp.clone(),
                    broker: me,
                    error: ErrorCode::CorruptMessage,
                    message: format!(
                        "Compacted topic cannot accept message without key in topic partition {tp}."
                    ),
                });
                respond(
                    out,
                    ErrorCode::CorruptMessage,
                    Offset(-1),
                    p.log.log_start_offset(),
                );
                return;
            }
        }
        // Idempotence (KIP-98): dedupe, order, and fence by epoch.
        let pid = header.producer_id;
        if pid != ProducerId::NONE {
            let first_seq = header.base_sequence.0;
            let last_seq = first_seq.wrapping_add(header.last_offset_delta);
            match check_sequence(
                p.producers.get(&pid),
                header.producer_epoch,
                first_seq,
                last_seq,
            ) {
                SequenceCheck::Append => {}
                SequenceCheck::Reject(error) => {
                    respond(out, error, Offset(-1), p.log.log_start_offset());
                    return;
                }
                SequenceCheck::Duplicate { base, last } => {
                    // A retry of a batch we already have: answer with its original offsets,
                    // but under the same rule as a fresh append. With acks=all the answer waits
                    // until the HW passes the batch (Kafka's DelayedProduce does the same for a
                    // duplicate): a new leader may hold the batch uncommitted, and
                    // acknowledging it now would promise a record the next election can discard.
                    if acks == Acks::All && last >= p.high_watermark {
                        let id = self.fresh_id();
                        let pending = PendingProduce {
                            req,
                            tp: tp.clone(),
                            leader_epoch,
                            base_offset: base,
                            last_offset: last,
                        };
                        self.pending_produces.insert(id, pending);
                        out.timer(timeout_ms, BrokerTimer::ProduceTimeout { id });
                        return;
                    }
                    respond(out, ErrorCode::None, base, p.log.log_start_offset());
                    return;
                }
            }
        }
        // compression.type other than `producer`: the leader stores the batch in the topic's
        // codec, recompressing it (Kafka's LogValidator); the CRC is recomputed.
        if let BrokerCompression::Codec(codec) = compression_type {
            if codec.id() != header.compression() {
                match RecordBatch::decode(&batch) {
                    Ok((rb, _)) => batch = rb.with_compression(codec).encode(),
                    Err(_) => {
                        respond(
                            out,
                            ErrorCode::CorruptMessage,
                            Offset(-1),
                            p.log.log_start_offset(),
                        );
                        return;
                    }
                }
            }
        }
        if acks == Acks::All && (isr_now.len() as i32) < min_isr {
            // Kafka's `Partition.appendRecordsToLeader` refuses before appending, with this text.
            out.event(Event::ProduceRejected {
                tp: tp.clone(),
                broker: me,
                error: ErrorCode::NotEnoughReplicas,
                message: format!(
                    "The size of the current ISR {} is insufficient to satisfy the min.isr requirement of {min_isr} for partition {tp}",
                    isr_set_text(&isr_now)
                ),
            });
            respond(
                out,
                ErrorCode::NotEnoughReplicas,
                Offset(-1),
                p.log.log_start_offset(),
            );
            return;
        }
        let mut ops = Vec::new();
        let active_before = p.log.segments().len();
        let (base, last) = match p.log.append_as_leader(&batch, leader_epoch, &mut ops) {
            Ok(r) => r,
            Err(_) => {
                respond(
                    out,
                    ErrorCode::CorruptMessage,
                    Offset(-1),
                    p.log.log_start_offset(),
                );
                return;
            }
        };
        if pid != ProducerId::NONE {
            let first_seq = header.base_sequence.0;
            p.record_producer_batch(
                pid,
                header.producer_epoch,
                first_seq,
                first_seq.wrapping_add(header.last_offset_delta),
                base,
            );
        }
        p.log.maybe_flush(flush_interval, &mut ops);
        for op in ops {
            out.disk(op);
        }
        if p.log.segments().len() > active_before {
            out.event(Event::LogSegmentRolled {
                tp: tp.clone(),
                broker: me,
                base_offset: base,
            });
        }
        out.event(Event::ProduceAppended {
            tp: tp.clone(),
            broker: me,
            leader_epoch,
            base_offset: base,
            last_offset: last,
            producer_id: pid,
            base_sequence: header.base_sequence,
            isr: isr_now,
        });
        let lso = p.log.log_start_offset();
        match acks {
            Acks::None => {}
            Acks::Leader => respond(out, ErrorCode::None, base, lso),
            Acks::All => {
                let id = self.fresh_id();
                self.pending_produces.insert(
                    id,
                    PendingProduce {
                        req,
                        tp: tp.clone(),
                        leader_epoch,
                        base_offset: base,
                        last_offset: last,
                    },
                );
                out.timer(timeout_ms, BrokerTimer::ProduceTimeout { id });
                // A single-member ISR commits immediately.
                self.maybe_advance_hw(now, &tp, out);
            }
        }
        self.complete_delayed_fetches(now, &tp, out);
    }

    fn complete_produces(&mut self, tp: &TopicPartition, out: &mut Effects<BrokerTimer>) {
        let Some(p) = self.partitions.get(tp) else {
            return;
        };
        let hw = p.high_watermark;
        let isr_len = match &p.role {
            Role::Leader(l) => l.isr.len() as i32,
            _ => return,
        };
        let min_isr = self.min_isr(&tp.topic);
        let done: Vec<u64> = self
            .pending_produces
            .iter()
            .filter(|(_, pp)| &pp.tp == tp && pp.last_offset < hw)
            .map(|(id, _)| *id)
            .collect();
        let mut answers = Vec::new();
        for id in done {
            let pp = self.pending_produces.remove(&id).expect("present");
            // Kafka's DelayedProduce: committed, but if the ISR has shrunk below
            // min.insync.replicas the ack says so.
            let error = if isr_len >= min_isr {
                ErrorCode::None
            } else {
                ErrorCode::NotEnoughReplicasAfterAppend
            };
            out.event(Event::ProduceAcked {
                tp: pp.tp.clone(),
                broker: self.id,
                leader_epoch: pp.leader_epoch,
                base_offset: pp.base_offset,
                last_offset: pp.last_offset,
                acks: "all".into(),
                error,
            });
            answers.push((
                pp.req,
                PartitionProduceResponse {
                    tp: pp.tp,
                    error,
                    base_offset: pp.base_offset,
                    log_start_offset: p.log.log_start_offset(),
                },
            ));
        }
        for (req, answer) in answers {
            self.produce_partition_done(req, answer, out);
        }
    }

    fn fail_pending_produces(
        &mut self,
        tp: &TopicPartition,
        error: ErrorCode,
        out: &mut Effects<BrokerTimer>,
    ) {
        let ids: Vec<u64> = self
            .pending_produces
            .iter()
            .filter(|(_, pp)| &pp.tp == tp)
            .map(|(id, _)| *id)
            .collect();
        for id in ids {
            let pp = self.pending_produces.remove(&id).expect("present");
            let answer = PartitionProduceResponse {
                tp: pp.tp,
                error,
                base_offset: Offset(-1),
                log_start_offset: Offset(-1),
            };
            self.produce_partition_done(pp.req, answer, out);
        }
    }

    // ------------------------------------------------------------------
    // Fetch (leader side)
    // ------------------------------------------------------------------

    fn on_fetch(
        &mut self,
        now: Instant,
        from: NodeId,
        msg: Message,
        may_park: bool,
        out: &mut Effects<BrokerTimer>,
    ) {
        let Message::Fetch {
            corr,
            replica_id,
            broker_epoch: fetch_broker_epoch,
            ref tp,
            fetch_offset,
            last_fetched_epoch,
            current_leader_epoch,
            max_bytes,
            min_bytes,
            max_wait_ms,
            isolation_level: _,
        } = msg
        else {
            unreachable!("on_fetch takes a Fetch")
        };
        let tp = tp.clone();
        let reply = |out: &mut Effects<BrokerTimer>,
                     error: ErrorCode,
                     hw: Offset,
                     lso: Offset,
                     diverging: Option<EpochEndOffset>,
                     epoch: LeaderEpoch,
                     batches: Vec<Vec<u8>>| {
            out.send(
                from,
                Message::FetchResponse {
                    corr,
                    tp: tp.clone(),
                    error,
                    high_watermark: hw,
                    last_stable_offset: hw,
                    log_start_offset: lso,
                    diverging_epoch: diverging,
                    leader_epoch: epoch,
                    batches,
                },
            );
        };
        let Some(p) = self.partitions.get_mut(&tp) else {
            reply(
                out,
                ErrorCode::NotLeaderOrFollower,
                Offset(-1),
                Offset(-1),
                None,
                LeaderEpoch::UNKNOWN,
                vec![],
            );
            return;
        };
        let Role::Leader(leader) = &mut p.role else {
            reply(
                out,
                ErrorCode::NotLeaderOrFollower,
                Offset(-1),
                Offset(-1),
                None,
                p.leader_epoch,
                vec![],
            );
            return;
        };
        let epoch = leader.leader_epoch;
        let lso = p.log.log_start_offset();
        let leo = p.log.log_end_offset();
        // KIP-320 fencing.
        if current_leader_epoch != LeaderEpoch::UNKNOWN {
            if current_leader_epoch < epoch {
                reply(
                    out,
                    ErrorCode::FencedLeaderEpoch,
                    p.high_watermark,
                    lso,
                    None,
                    epoch,
                    vec![],
                );
                return;
            }
            if current_leader_epoch > epoch {
                reply(
                    out,
                    ErrorCode::UnknownLeaderEpoch,
                    p.high_watermark,
                    lso,
                    None,
                    epoch,
                    vec![],
                );
                return;
            }
        }
        // Divergence check (KIP-595 style): does the fetcher's log agree with ours?
        if last_fetched_epoch != LeaderEpoch::UNKNOWN && fetch_offset.0 > 0 {
            let end = p.log.end_offset_for_epoch(last_fetched_epoch);
            if end.leader_epoch == LeaderEpoch::UNKNOWN
                || end.end_offset < fetch_offset
                || end.leader_epoch < last_fetched_epoch
            {
                reply(
                    out,
                    ErrorCode::None,
                    p.high_watermark,
                    lso,
                    Some(end),
                    epoch,
                    vec![],
                );
                return;
            }
        }
        if fetch_offset < lso || fetch_offset > leo {
            reply(
                out,
                ErrorCode::OffsetOutOfRange,
                p.high_watermark,
                lso,
                None,
                epoch,
                vec![],
            );
            return;
        }
        let max_offset = match replica_id {
            Some(r) => {
                // Follower fetch: record its progress.
                if let Some(f) = leader.followers.get_mut(&r) {
                    f.log_end_offset = fetch_offset;
                    f.broker_epoch = fetch_broker_epoch;
                    if fetch_offset >= leo {
                        f.last_caught_up = now;
                    }
                }
                leo
            }
            None => p.high_watermark,
        };
        let batches = if fetch_offset < max_offset {
            p.log
                .read(fetch_offset, max_offset, max_bytes)
                .unwrap_or_default()
        } else {
            vec![]
        };
        if let Some(r) = replica_id {
            self.maybe_expand_isr(now, &tp, r, fetch_offset, out);
            self.maybe_advance_hw(now, &tp, out);
        }
        let p = self.partitions.get(&tp).expect("hosted");
        // Long poll (`fetch.min.bytes`, `fetch.max.wait.ms`; Kafka's DelayedFetch): hold the
        // request until at least `min_bytes` are readable or the wait elapses.
        let readable: usize = batches.iter().map(Vec::len).sum();
        if readable < (min_bytes as usize).max(1) && may_park && max_wait_ms > 0 {
            let id = self.fresh_id();
            self.pending_fetches.insert(id, PendingFetch { from, msg });
            out.timer(max_wait_ms, BrokerTimer::FetchWaitExpired { id });
            return;
        }
        reply(
            out,
            ErrorCode::None,
            p.high_watermark,
            p.log.log_start_offset(),
            None,
            epoch,
            batches,
        );
    }

    /// Answer parked fetches of `tp` that now have data (new records for followers, a higher
    /// HW for consumers).
    fn complete_delayed_fetches(
        &mut self,
        now: Instant,
        tp: &TopicPartition,
        out: &mut Effects<BrokerTimer>,
    ) {
        let Some(p) = self.partitions.get(tp) else {
            return;
        };
        let leo = p.log.log_end_offset();
        let hw = p.high_watermark;
        let ready: Vec<u64> = self
            .pending_fetches
            .iter()
            .filter(|(_, pf)| match &pf.msg {
                Message::Fetch {
                    tp: t,
                    fetch_offset,
                    replica_id,
                    min_bytes,
                    max_bytes,
                    ..
                } if t == tp => {
                    let limit = if replica_id.is_some() { leo } else { hw };
                    *fetch_offset < limit
                        && (*min_bytes <= 1
                            || fetch_ready_bytes(&p.log, *fetch_offset, limit, *max_bytes)
                                >= *min_bytes as usize)
                }
                _ => false,
            })
            .map(|(id, _)| *id)
            .collect();
        for id in ready {
            // Answering one fetch can advance the HW and complete others from a nested call
            // (a follower's fetch moves the HW, which completes consumers' long polls): those
            // are gone already. Kafka's purgatory completes each delayed operation once
            // (DelayedOperation.forceComplete) for the same reason.
            let Some(pf) = self.pending_fetches.remove(&id) else {
                continue;
            };
            self.on_fetch(now, pf.from, pf.msg, false, out);
        }
    }

    fn maybe_expand_isr(
        &mut self,
        now: Instant,
        tp: &TopicPartition,
        r: BrokerId,
        fetch_offset: Offset,
        out: &mut Effects<BrokerTimer>,
    ) {
        let p = self.partitions.get_mut(tp).expect("hosted");
        let hw = p.high_watermark;
        let Role::Leader(l) = &mut p.role else { return };
        if l.isr.contains(&r) || l.pending_isr.is_some() || !l.replicas.contains(&r) {
            return;
        }
        // Caught up to the HW, and within this leader's epoch (KAFKA-7128 / Kip320.tla).
        if fetch_offset >= hw && fetch_offset >= l.epoch_start_offset {
            let mut new_isr = l.isr.clone();
            new_isr.push(r);
            self.send_alter_partition(now, tp, new_isr, out);
        }
    }

    /// Sends an AlterPartition asking for `new_isr` (a first send, or the pending request
    /// again). The request stays pending (and the HW counts the members it adds, KIP-497's
    /// maximal ISR) until the controller answers it or a LeaderAndIsr supersedes it, as
    /// Kafka's `AlterPartitionManager` keeps retrying an unanswered request: the controller
    /// may still carry out a request whose answer is slow, so forgetting it would let the HW
    /// pass a member about to join the ISR.
    ///
    /// One copy at a time, each with a correlation id of its own, as in Kafka: the request
    /// is sent again only once the previous copy is answered with a retriable error, could
    /// not be sent, lost its connection, went to a controller that has since been replaced
    /// (`set_controller`; a deposed controller's state write is fenced by the controller
    /// epoch), or went unanswered for `controller.socket.timeout.ms` (the request timeout of
    /// Kafka's `NodeToControllerChannelManager`; a copy sent again then queues behind the
    /// first on the same connection, so the controller sees them in order). Only the latest
    /// copy's answer counts. Before this, a retry reused the correlation id and went out every
    /// 5 s whatever had become of the first copy: in `controller-split-brain-fenced` seed
    /// 10911 the controller refused an ISR expansion (the new member's registration was not
    /// yet loaded) while the leader was paused; on resume the leader sent the same request
    /// again, then read the refusal as the answer to it and let its HW pass the member, whose
    /// addition the controller carried out 7 ms later from the second copy: an ISR member
    /// 1790 records behind the HW (`strong-isr`).
    fn send_alter_partition(
        &mut self,
        _now: Instant,
        tp: &TopicPartition,
        new_isr: Vec<BrokerId>,
        out: &mut Effects<BrokerTimer>,
    ) {
        let corr = self.fresh_corr();
        let broker = self.id;
        let broker_epoch = self.broker_epoch;
        let controller = self.controller_id;
        let request_timeout = self.config.controller_socket_timeout_ms;
        let p = self.partitions.get_mut(tp).expect("hosted");
        let Role::Leader(l) = &mut p.role else { return };
        l.pending_isr = Some((corr, new_isr.clone()));
        l.isr_in_flight = controller;
        l.isr_sends += 1;
        let send = l.isr_sends;
        let new_isr_epochs = new_isr
            .iter()
            .map(|r| {
                if *r == broker {
                    broker_epoch
                } else {
                    l.followers
                        .get(r)
                        .map(|f| f.broker_epoch)
                        .unwrap_or(BrokerEpoch(-1))
                }
            })
            .collect();
        let msg = Message::AlterPartition {
            corr,
            broker,
            broker_epoch,
            tp: tp.clone(),
            leader_epoch: l.leader_epoch,
            new_isr,
            new_isr_epochs,
            partition_epoch: l.partition_epoch,
        };
        let generation = p.generation;
        if let Some(c) = controller {
            out.send(NodeId::Broker(c), msg)
        }
        // If no answer comes in the request timeout, try again.
        out.timer(
            request_timeout,
            BrokerTimer::AlterPartitionRetry {
                tp: tp.clone(),
                generation,
                send,
            },
        );
    }

    fn on_alter_partition_response(
        &mut self,
        now: Instant,
        corr: CorrelationId,
        tp: TopicPartition,
        error: ErrorCode,
        state: Option<PartitionState>,
        out: &mut Effects<BrokerTimer>,
    ) {
        let me = self.id;
        let Some(p) = self.partitions.get_mut(&tp) else {
            return;
        };
        let Role::Leader(l) = &mut p.role else { return };
        match &l.pending_isr {
            Some((c, _)) if *c == corr => {}
            _ => return,
        }
        l.isr_in_flight = None;
        if error == ErrorCode::NotController {
            // A top-level error: the request was not looked at, but an earlier send of it may
            // have been carried out (a deposed controller's write can land in the coordination
            // node and its answer be lost). Kafka's AlterPartitionManager retries it with the
            // controller it finds next, after `retry.backoff.ms` growing to
            // `retry.backoff.max.ms` (1 s, KIP-580); the request stays pending (its new members
            // hold the HW back) meanwhile. Waiting for the 5 s retry instead left a leader's
            // ISR expansion, refused by a controller still loading, for 5 s
            // (`correlated-power-loss-fsync` seed 10829).
            let generation = p.generation;
            out.timer(
                ALTER_PARTITION_RETRY_BACKOFF_MS,
                BrokerTimer::AlterPartitionRetry {
                    tp: tp.clone(),
                    generation,
                    send: l.isr_sends,
                },
            );
            return;
        }
        if error == ErrorCode::InvalidUpdateVersion {
            // The partition changed since we asked, possibly by this very request (its first
            // answer lost, or a retry answered after it was carried out): whether the ISR now
            // has the members we asked for, only the LeaderAndIsr on its way can tell. Stay
            // pending until it comes (as Kafka does for INVALID_UPDATE_VERSION).
            return;
        }
        l.pending_isr = None;
        if error == ErrorCode::None {
            if let Some(s) = state {
                if s.leader_epoch == l.leader_epoch {
                    // A LeaderAndIsr carrying this very state may have told us first.
                    let changed = l.isr != s.isr || l.partition_epoch != s.partition_epoch;
                    l.isr = s.isr.clone();
                    l.partition_epoch = s.partition_epoch;
                    if changed {
                        out.event(Event::IsrChanged {
                            tp: tp.clone(),
                            broker: me,
                            leader_epoch: l.leader_epoch,
                            isr: s.isr,
                            partition_epoch: s.partition_epoch,
                        });
                    }
                }
            }
        }
        self.maybe_advance_hw(now, &tp, out);
        self.complete_produces(&tp, out);
    }

    /// The latest copy of `tp`'s pending AlterPartition will not be answered (it could not be
    /// sent, or its connection broke): send it again after `retry.backoff.max.ms`.
    fn alter_partition_lost(&mut self, tp: &TopicPartition, out: &mut Effects<BrokerTimer>) {
        let Some(p) = self.partitions.get_mut(tp) else {
            return;
        };
        let generation = p.generation;
        let Role::Leader(l) = &mut p.role else { return };
        if l.pending_isr.is_none() || l.isr_in_flight.is_none() {
            return;
        }
        l.isr_in_flight = None;
        out.timer(
            ALTER_PARTITION_RETRY_BACKOFF_MS,
            BrokerTimer::AlterPartitionRetry {
                tp: tp.clone(),
                generation,
                send: l.isr_sends,
            },
        );
    }

    /// HW = min LEO over the maximal ISR (leader included); never decreases.
    ///
    /// In the fenced protocol the high watermark does not move while the committed ISR is
    /// smaller than the partition's `min.insync.replicas` (capped at its replication factor):
    /// KIP-966's "strict min ISR" rule (Kafka 4.0+, `Partition.maybeIncrementLeaderHW` skips
    /// while `isUnderMinIsr`). It is what makes the replicas the controller keeps in the
    /// last-known ELR hold every committed record (`controller::update_last_known_elr`).
    /// Records written meanwhile with `acks=1` or `acks=0` stay invisible to consumers until
    /// the ISR grows back.
    fn maybe_advance_hw(
        &mut self,
        now: Instant,
        tp: &TopicPartition,
        out: &mut Effects<BrokerTimer>,
    ) {
        let me = self.id;
        let strict_min_isr = self.config.replication_truncation == TruncationMode::Fenced;
        let min_isr = self.min_isr(&tp.topic).max(1) as usize;
        let Some(p) = self.partitions.get_mut(tp) else {
            return;
        };
        let Role::Leader(l) = &p.role else { return };
        if strict_min_isr && l.isr.len() < min_isr.min(l.replicas.len().max(1)) {
            return;
        }
        let leo = p.log.log_end_offset();
        let mut new_hw = leo;
        for r in l.maximal_isr() {
            if r == me {
                continue;
            }
            let f_leo = l
                .followers
                .get(&r)
                .map(|f| f.log_end_offset)
                .unwrap_or(Offset(-1));
            new_hw = new_hw.min(f_leo);
        }
        if new_hw > p.high_watermark {
            p.high_watermark = new_hw;
            out.event(Event::HighWatermarkChanged {
                tp: tp.clone(),
                broker: me,
                leader_epoch: l.leader_epoch,
                high_watermark: new_hw,
            });
            self.complete_produces(tp, out);
            self.complete_delayed_fetches(now, tp, out);
        }
    }

    fn check_isr_shrink(&mut self, now: Instant, out: &mut Effects<BrokerTimer>) {
        let me = self.id;
        let lag_max = self.config.replica_lag_time_max_ms;
        let mut shrinks = Vec::new();
        for (tp, p) in &self.partitions {
            let Role::Leader(l) = &p.role else { continue };
            if l.pending_isr.is_some() {
                continue;
            }
            let leo = p.log.log_end_offset();
            let out_of_sync: Vec<BrokerId> = l
                .isr
                .iter()
                .copied()
                .filter(|r| *r != me)
                .filter(|r| match l.followers.get(r) {
                    Some(f) => f.log_end_offset < leo && now.since(f.last_caught_up) > lag_max,
                    None => true,
                })
                .collect();
            if !out_of_sync.is_empty() {
                let new_isr: Vec<BrokerId> = l
                    .isr
                    .iter()
                    .copied()
                    .filter(|r| !out_of_sync.contains(r))
                    .collect();
                shrinks.push((tp.clone(), new_isr));
            }
        }
        for (tp, isr) in shrinks {
            self.send_alter_partition(now, &tp, isr, out);
        }
    }

    // ------------------------------------------------------------------
    // Fetch (follower side)
    // ------------------------------------------------------------------

    fn send_follower_fetch(
        &mut self,
        _now: Instant,
        tp: &TopicPartition,
        out: &mut Effects<BrokerTimer>,
    ) {
        let corr = self.fresh_corr();
        let me = self.id;
        let broker_epoch = self.broker_epoch;
        let wait = self.config.replica_fetch_wait_max_ms;
        let max_bytes = self.config.replica_fetch_max_bytes;
        let socket_timeout = self.config.controller_socket_timeout_ms;
        let mode = self.config.replication_truncation;
        // Before KIP-320 (high-watermark, kip-101, kip-279) fetches carried no epochs: no
        // divergence check, no fencing. KIP-320's first try added the last fetched epoch
        // (divergence check) but not the current leader epoch (fencing).
        let send_last_fetched_epoch = matches!(
            mode,
            TruncationMode::Fenced | TruncationMode::Kip320FirstTry
        );
        let send_current_leader_epoch = mode == TruncationMode::Fenced;
        let Some(p) = self.partitions.get_mut(tp) else {
            return;
        };
        let Role::Follower(f) = &mut p.role else {
            return;
        };
        let Some(leader) = f.leader else { return };
        if f.in_flight.is_some() {
            return;
        }
        f.in_flight = Some(corr);
        if let Some(epoch) = f.epoch_lookup {
            // The truncation phase of KIP-101 / KIP-279: ask where `epoch` ends on the leader.
            // Unfenced, as before KIP-320: the current leader epoch is not sent.
            let msg = Message::OffsetForLeaderEpoch {
                corr,
                replica_id: Some(me),
                tp: tp.clone(),
                current_leader_epoch: LeaderEpoch::UNKNOWN,
                leader_epoch: epoch,
            };
            self.fetch_targets.insert(corr, (tp.clone(), leader));
            out.send(NodeId::Broker(leader), msg);
            out.timer(
                socket_timeout,
                BrokerTimer::FollowerFetchTimeout {
                    tp: tp.clone(),
                    corr,
                },
            );
            return;
        }
        let msg = Message::Fetch {
            corr,
            replica_id: Some(me),
            broker_epoch,
            tp: tp.clone(),
            fetch_offset: p.log.log_end_offset(),
            last_fetched_epoch: if send_last_fetched_epoch {
                p.log.epoch_of_last_batch()
            } else {
                LeaderEpoch::UNKNOWN
            },
            current_leader_epoch: if send_current_leader_epoch {
                f.leader_epoch
            } else {
                LeaderEpoch::UNKNOWN
            },
            max_bytes,
            min_bytes: 1,
            max_wait_ms: wait,
            isolation_level: IsolationLevel::ReadUncommitted,
        };
        self.fetch_targets.insert(corr, (tp.clone(), leader));
        out.send(NodeId::Broker(leader), msg);
        out.timer(
            wait + socket_timeout,
            BrokerTimer::FollowerFetchTimeout {
                tp: tp.clone(),
                corr,
            },
        );
    }

    fn schedule_follower_fetch(
        &mut self,
        tp: &TopicPartition,
        after_ms: u64,
        out: &mut Effects<BrokerTimer>,
    ) {
        let Some(p) = self.partitions.get_mut(tp) else {
            return;
        };
        let Role::Follower(f) = &mut p.role else {
            return;
        };
        f.in_flight = None;
        out.timer(
            after_ms,
            BrokerTimer::FollowerFetch {
                tp: tp.clone(),
                generation: f.generation,
            },
        );
    }

    #[allow(clippy::too_many_arguments)]
    fn on_fetch_response(
        &mut self,
        _now: Instant,
        corr: CorrelationId,
        tp: TopicPartition,
        error: ErrorCode,
        (high_watermark, leader_log_start_offset): (Offset, Offset),
        diverging: Option<EpochEndOffset>,
        batches: Vec<Vec<u8>>,
        out: &mut Effects<BrokerTimer>,
    ) {
        self.fetch_targets.remove(&corr);
        let me = self.id;
        let backoff = self.config.replica_fetch_backoff_ms;
        let flush_interval = self.flush_interval_messages(&tp.topic);
        let Some(p) = self.partitions.get_mut(&tp) else {
            return;
        };
        let Role::Follower(f) = &mut p.role else {
            return;
        };
        if f.in_flight != Some(corr) {
            return;
        }
        f.in_flight = None;
        if error != ErrorCode::None {
            if error == ErrorCode::OffsetOutOfRange && p.log.log_end_offset() > high_watermark {
                // Our log is longer than the leader's: cut back to what is committed.
                let mut ops = Vec::new();
                let from = p.log.log_end_offset();
                let to = p.log.truncate_to(high_watermark, &mut ops);
                p.high_watermark = p.high_watermark.min(to);
                for op in ops {
                    out.disk(op);
                }
                out.event(Event::Truncated {
                    tp: tp.clone(),
                    broker: me,
                    from_offset: from,
                    to_offset: to,
                    reason: "offset-out-of-range".into(),
                });
                self.rebuild_producers(&tp);
                self.schedule_follower_fetch(&tp, 0, out);
            } else if error == ErrorCode::OffsetOutOfRange
                && p.log.log_end_offset() < leader_log_start_offset
            {
                // Kafka's ReplicaFetcherThread: our fetch offset is below the leader's log
                // start offset (retention deleted what we still need), so nothing we have can
                // be continued: truncate fully and start at the leader's log start offset.
                let mut ops = Vec::new();
                let from = p.log.log_end_offset();
                p.log
                    .truncate_fully_and_start_at(leader_log_start_offset, &mut ops);
                p.high_watermark = leader_log_start_offset;
                for op in ops {
                    out.disk(op);
                }
                out.event(Event::Truncated {
                    tp: tp.clone(),
                    broker: me,
                    from_offset: from,
                    to_offset: leader_log_start_offset,
                    reason: "below-leader-log-start-offset".into(),
                });
                out.event(Event::LogStartOffsetAdvanced {
                    tp: tp.clone(),
                    broker: me,
                    log_start_offset: leader_log_start_offset,
                    reason: "offset-out-of-range".into(),
                });
                self.rebuild_producers(&tp);
                self.schedule_follower_fetch(&tp, 0, out);
            } else {
                self.schedule_follower_fetch(&tp, backoff, out);
            }
            return;
        }
        let mut ops = Vec::new();
        if let Some(end) = diverging {
            // Truncate to the end of the last epoch both logs share (KIP-279).
            let from = p.log.log_end_offset();
            let target = if end.leader_epoch == LeaderEpoch::UNKNOWN || end.end_offset.0 < 0 {
                p.log.log_start_offset()
            } else {
                let mine = p.log.end_offset_for_epoch(end.leader_epoch);
                if mine.leader_epoch == end.leader_epoch {
                    end.end_offset.min(mine.end_offset)
                } else {
                    end.end_offset
                        .min(mine.end_offset.max(p.log.log_start_offset()))
                }
            };
            let to = p.log.truncate_to(target.min(from), &mut ops);
            p.high_watermark = p.high_watermark.min(to);
            for op in ops {
                out.disk(op);
            }
            if to < from {
                out.event(Event::Truncated {
                    tp: tp.clone(),
                    broker: me,
                    from_offset: from,
                    to_offset: to,
                    reason: "diverging-epoch".into(),
                });
            }
            self.rebuild_producers(&tp);
            self.schedule_follower_fetch(&tp, 0, out);
            return;
        }
        let segments_before = p.log.segments().len();
        let mut append_error = None;
        for b in &batches {
            match p.log.append_as_follower(b, &mut ops) {
                Ok((base, _last)) => {
                    if let Ok(h) = read_header(b) {
                        if h.producer_id != ProducerId::NONE {
                            let first = h.base_sequence.0;
                            p.record_producer_batch(
                                h.producer_id,
                                h.producer_epoch,
                                first,
                                first.wrapping_add(h.last_offset_delta),
                                base,
                            );
                        }
                    }
                }
                Err(e) => {
                    append_error = Some(e.to_string());
                    break;
                }
            }
        }
        if let Some(error) = append_error {
            // Kafka's follower raises UnexpectedAppendOffsetException (or a corrupt record
            // error) here and its fetcher marks the partition failed: this replica makes no
            // more progress. Only diverged logs (the legacy modes) get here: a batch the leader
            // wrote from an offset below our log end.
            let leo = p.log.log_end_offset();
            if let Role::Follower(f) = &mut p.role {
                if f.append_failed_at != Some(leo) {
                    f.append_failed_at = Some(leo);
                    out.event(Event::FollowerAppendFailed {
                        tp: tp.clone(),
                        broker: me,
                        leader: f.leader,
                        log_end_offset: leo,
                        error,
                    });
                }
            }
        }
        p.log.maybe_flush(flush_interval, &mut ops);
        let new_hw = high_watermark.min(p.log.log_end_offset());
        if new_hw > p.high_watermark {
            p.high_watermark = new_hw;
        }
        // The follower learns the leader's log start offset (capped at its own HW, as Kafka's
        // maybeIncrementLogStartOffset requires).
        let new_log_start = leader_log_start_offset.min(p.high_watermark);
        let advanced = p
            .log
            .maybe_increment_log_start_offset(new_log_start, &mut ops);
        for op in ops {
            out.disk(op);
        }
        for seg in p.log.segments().iter().skip(segments_before) {
            out.event(Event::LogSegmentRolled {
                tp: tp.clone(),
                broker: me,
                base_offset: seg.base_offset(),
            });
        }
        if advanced {
            out.event(Event::LogStartOffsetAdvanced {
                tp: tp.clone(),
                broker: me,
                log_start_offset: new_log_start,
                reason: "leader-log-start-offset".into(),
            });
        }
        self.schedule_follower_fetch(&tp, 0, out);
    }

    /// OffsetsForLeaderEpoch on the leader: where does `leader_epoch` end in my log? Fenced by
    /// `current_leader_epoch` as a fetch is (KIP-320) unless it is `UNKNOWN`, as the legacy
    /// modes send it. In mode `kip-101` the answer is KIP-101's original lookup
    /// ([`kip101_end_offset`], no epoch in the answer); otherwise KIP-279's
    /// ([`PartitionLog::end_offset_for_epoch`]: the largest epoch `<=` the requested one and
    /// where it ends).
    fn on_offset_for_leader_epoch(
        &self,
        from: NodeId,
        corr: CorrelationId,
        tp: TopicPartition,
        current_leader_epoch: LeaderEpoch,
        leader_epoch: LeaderEpoch,
        out: &mut Effects<BrokerTimer>,
    ) {
        let undefined = EpochEndOffset {
            leader_epoch: LeaderEpoch::UNKNOWN,
            end_offset: crate::log::UNDEFINED_EPOCH_OFFSET,
        };
        let (error, end) = match self.partitions.get(&tp) {
            Some(p) => match &p.role {
                Role::Leader(l)
                    if current_leader_epoch != LeaderEpoch::UNKNOWN
                        && current_leader_epoch < l.leader_epoch =>
                {
                    (ErrorCode::FencedLeaderEpoch, undefined)
                }
                Role::Leader(l)
                    if current_leader_epoch != LeaderEpoch::UNKNOWN
                        && current_leader_epoch > l.leader_epoch =>
                {
                    (ErrorCode::UnknownLeaderEpoch, undefined)
                }
                Role::Leader(_) if self.config.replication_truncation == TruncationMode::Kip101 => {
                    (ErrorCode::None, kip101_end_offset(&p.log, leader_epoch))
                }
                Role::Leader(_) => (ErrorCode::None, p.log.end_offset_for_epoch(leader_epoch)),
                _ => (ErrorCode::NotLeaderOrFollower, undefined),
            },
            None => (ErrorCode::NotLeaderOrFollower, undefined),
        };
        out.send(
            from,
            Message::OffsetForLeaderEpochResponse {
                corr,
                tp,
                error,
                end,
            },
        );
    }

    /// The follower's truncation phase in modes `kip-101` and `kip-279`.
    ///
    /// * `kip-101` (one round, Kip101.tla): truncate to the leader's answer, or to the high
    ///   watermark if the leader had no answer (`UNDEFINED_EPOCH_OFFSET`), as Kafka 0.11 did.
    ///   The answer says nothing about which epoch it belongs to, so a leader that never had
    ///   the follower's epoch answers with an offset past the point where the logs diverge
    ///   (KIP-279's fast leader change).
    /// * `kip-279` (Kip279.tla): the answer is `(E, end)`, the leader's largest epoch `<=` the
    ///   one asked. If the follower has `E` too it truncates to the smaller of the two ends of
    ///   `E`; if it has no epoch `<= E` it truncates to its log start; otherwise it asks again
    ///   for its own largest epoch below `E`, until both agree on an epoch.
    ///
    /// Then the follower starts fetching.
    fn on_offset_for_leader_epoch_response(
        &mut self,
        _now: Instant,
        corr: CorrelationId,
        tp: TopicPartition,
        error: ErrorCode,
        end: EpochEndOffset,
        out: &mut Effects<BrokerTimer>,
    ) {
        self.fetch_targets.remove(&corr);
        let me = self.id;
        let mode = self.config.replication_truncation;
        let backoff = self.config.replica_fetch_backoff_ms;
        let Some(p) = self.partitions.get_mut(&tp) else {
            return;
        };
        let Role::Follower(f) = &mut p.role else {
            return;
        };
        if f.in_flight != Some(corr) || f.epoch_lookup.is_none() {
            return;
        }
        f.in_flight = None;
        if error != ErrorCode::None {
            self.schedule_follower_fetch(&tp, backoff, out);
            return;
        }
        let leo = p.log.log_end_offset();
        let (target, reason) = if mode == TruncationMode::Kip101 {
            if end.end_offset == crate::log::UNDEFINED_EPOCH_OFFSET {
                (
                    p.high_watermark,
                    "offsets-for-leader-epoch (KIP-101, no answer: high watermark)",
                )
            } else {
                (end.end_offset, "offsets-for-leader-epoch (KIP-101)")
            }
        } else if end.leader_epoch == LeaderEpoch::UNKNOWN {
            // The leader has no epoch at or below the one asked: nothing is shared.
            (
                p.log.log_start_offset(),
                "offsets-for-leader-epoch (KIP-279)",
            )
        } else {
            let mine = p.log.end_offset_for_epoch(end.leader_epoch);
            if mine.leader_epoch == end.leader_epoch {
                (
                    end.end_offset.min(mine.end_offset),
                    "offsets-for-leader-epoch (KIP-279)",
                )
            } else if mine.leader_epoch == LeaderEpoch::UNKNOWN {
                (
                    p.log.log_start_offset(),
                    "offsets-for-leader-epoch (KIP-279)",
                )
            } else {
                // Ask again for my largest epoch below the leader's answer.
                assert!(mine.leader_epoch < end.leader_epoch);
                f.epoch_lookup = Some(mine.leader_epoch);
                self.schedule_follower_fetch(&tp, 0, out);
                return;
            }
        };
        f.epoch_lookup = None;
        let mut ops = Vec::new();
        let to = p.log.truncate_to(target.min(leo), &mut ops);
        p.high_watermark = p.high_watermark.min(to);
        for op in ops {
            out.disk(op);
        }
        if to < leo {
            out.event(Event::Truncated {
                tp: tp.clone(),
                broker: me,
                from_offset: leo,
                to_offset: to,
                reason: reason.into(),
            });
            self.rebuild_producers(&tp);
        }
        self.schedule_follower_fetch(&tp, 0, out);
    }

    fn rebuild_producers(&mut self, tp: &TopicPartition) {
        if let Some(p) = self.partitions.get_mut(tp) {
            p.rebuild_producer_state();
        }
    }

    // ------------------------------------------------------------------
    // Metadata, ListOffsets, InitProducerId
    // ------------------------------------------------------------------

    fn on_metadata(
        &self,
        from: NodeId,
        corr: CorrelationId,
        topics: Vec<String>,
        out: &mut Effects<BrokerTimer>,
    ) {
        let partitions = self
            .metadata
            .values()
            .filter(|s| topics.is_empty() || topics.contains(&s.tp.topic))
            .map(|s| PartitionMetadata {
                tp: s.tp.clone(),
                error: if s.leader.is_some() {
                    ErrorCode::None
                } else {
                    ErrorCode::LeaderNotAvailable
                },
                leader: s.leader,
                leader_epoch: s.leader_epoch,
                replicas: s.replicas.clone(),
                isr: s.isr.clone(),
            })
            .collect();
        out.send(
            from,
            Message::MetadataResponse {
                corr,
                brokers: self.live_brokers.clone(),
                controller: self.controller_id,
                partitions,
            },
        );
    }

    fn on_list_offsets(
        &self,
        from: NodeId,
        corr: CorrelationId,
        tp: TopicPartition,
        timestamp: i64,
        out: &mut Effects<BrokerTimer>,
    ) {
        let (error, offset, epoch) = match self.partitions.get(&tp) {
            Some(p) => match &p.role {
                Role::Leader(l) => {
                    let off = match timestamp {
                        -2 => p.log.log_start_offset(),
                        // offsetsForTimes (KIP-79): the first committed offset whose record
                        // timestamp is >= the target, -1 if there is none.
                        t if t >= 0 => p
                            .log
                            .offset_for_timestamp(t)
                            .map(|(o, _)| o)
                            .filter(|&o| o < p.high_watermark)
                            .unwrap_or(Offset(-1)),
                        _ => p.high_watermark,
                    };
                    (ErrorCode::None, off, l.leader_epoch)
                }
                _ => (ErrorCode::NotLeaderOrFollower, Offset(-1), p.leader_epoch),
            },
            None => (
                ErrorCode::NotLeaderOrFollower,
                Offset(-1),
                LeaderEpoch::UNKNOWN,
            ),
        };
        out.send(
            from,
            Message::ListOffsetsResponse {
                corr,
                tp,
                error,
                offset,
                leader_epoch: epoch,
            },
        );
    }

    fn on_init_producer_id(
        &mut self,
        from: NodeId,
        corr: CorrelationId,
        out: &mut Effects<BrokerTimer>,
    ) {
        if self.broker_epoch.0 < 0 {
            out.send(
                from,
                Message::InitProducerIdResponse {
                    corr,
                    error: ErrorCode::LeaderNotAvailable,
                    producer_id: ProducerId::NONE,
                    producer_epoch: ProducerEpoch(-1),
                },
            );
            return;
        }
        // Unique across brokers and incarnations: the broker epoch is a unique session id
        // (Kafka allocates blocks through `/latest_producer_id_block` instead).
        self.next_producer_id += 1;
        let pid = ProducerId(self.broker_epoch.0 * 1_000_000 + self.next_producer_id);
        out.send(
            from,
            Message::InitProducerIdResponse {
                corr,
                error: ErrorCode::None,
                producer_id: pid,
                producer_epoch: ProducerEpoch(0),
            },
        );
    }

    fn write_hw_checkpoint(&self, out: &mut Effects<BrokerTimer>) {
        let mut text = String::from("0\n");
        text.push_str(&format!("{}\n", self.partitions.len()));
        for (tp, p) in &self.partitions {
            text.push_str(&format!(
                "{} {} {}\n",
                tp.topic, tp.partition, p.high_watermark.0
            ));
        }
        out.disk(DiskOp::WriteAtomic {
            file: HW_CHECKPOINT_FILE.into(),
            data: text.into_bytes(),
        });
    }

    /// Writes Kafka's `recovery-point-offset-checkpoint` (every log's recovery point).
    fn write_recovery_point_checkpoint(&self, out: &mut Effects<BrokerTimer>) {
        let entries = self
            .partitions
            .iter()
            .map(|(tp, p)| (tp.clone(), p.log.recovery_point()))
            .collect();
        out.disk(DiskOp::WriteAtomic {
            file: checkpoint::RECOVERY_POINT_CHECKPOINT.into(),
            data: checkpoint::encode(&entries),
        });
    }

    /// Writes Kafka's `log-start-offset-checkpoint` (every log start offset above 0, as Kafka
    /// leaves out logs that start at 0).
    fn write_log_start_offset_checkpoint(&self, out: &mut Effects<BrokerTimer>) {
        let entries = self
            .partitions
            .iter()
            .filter(|(_, p)| p.log.log_start_offset().0 > 0)
            .map(|(tp, p)| (tp.clone(), p.log.log_start_offset()))
            .collect();
        out.disk(DiskOp::WriteAtomic {
            file: checkpoint::LOG_START_OFFSET_CHECKPOINT.into(),
            data: checkpoint::encode(&entries),
        });
    }

    /// One retention pass over every hosted log (Kafka's `LogManager.cleanupLogs`): deletes
    /// segments by `retention.ms` / `retention.bytes` / log start offset, never at or above
    /// the replica's HW, and checkpoints the log start offsets if any moved.
    fn on_log_retention_check(&mut self, now: Instant, out: &mut Effects<BrokerTimer>) {
        let me = self.id;
        let now_ms = now.as_ms() as i64;
        let mut moved = false;
        for (tp, p) in self.partitions.iter_mut() {
            let mut ops = Vec::new();
            let Some(r) = p
                .log
                .delete_old_segments(now_ms, p.high_watermark, &mut ops)
            else {
                continue;
            };
            for op in ops {
                out.disk(op);
            }
            out.event(Event::LogSegmentsDeleted {
                tp: tp.clone(),
                broker: me,
                base_offsets: r.deleted_segments.clone(),
                deleted_bytes: r.deleted_bytes,
                log_start_offset: r.new_log_start_offset,
                reason: r.reason.into(),
            });
            if r.new_log_start_offset > r.old_log_start_offset {
                moved = true;
                out.event(Event::LogStartOffsetAdvanced {
                    tp: tp.clone(),
                    broker: me,
                    log_start_offset: r.new_log_start_offset,
                    reason: "retention".into(),
                });
            }
        }
        if moved {
            self.write_log_start_offset_checkpoint(out);
        }
    }

    /// One cleaner pass over every compacted log (Kafka's `LogCleaner`), below each replica's
    /// HW.
    fn on_log_cleaner_tick(&mut self, now: Instant, out: &mut Effects<BrokerTimer>) {
        let me = self.id;
        let now_ms = now.as_ms() as i64;
        for (tp, p) in self.partitions.iter_mut() {
            let mut ops = Vec::new();
            let Some(r) = p.log.clean(now_ms, p.high_watermark, &mut ops) else {
                continue;
            };
            for op in ops {
                out.disk(op);
            }
            out.event(Event::LogCleaned {
                tp: tp.clone(),
                broker: me,
                cleaned_segments: r.cleaned_segments.len(),
                superseded: r.superseded,
                expired_tombstones: r.expired_tombstones,
            });
        }
    }

    /// Whether any topic this broker knows compacts (the cleaner runs only then).
    fn any_compacted_topic(&self) -> bool {
        self.config.log_cleanup_policy.compact
            || self
                .topic_configs
                .values()
                .any(|c| c.cleanup_policy.is_some_and(|p| p.compact))
    }

    /// Asserts the broker's own invariants (STYLE.md: end handlers with them).
    fn invariants(&self) {
        for (tp, p) in &self.partitions {
            assert!(
                p.high_watermark <= p.log.log_end_offset(),
                "{tp}: HW {} above LEO {} on broker {}",
                p.high_watermark,
                p.log.log_end_offset(),
                self.id
            );
            if let Role::Leader(l) = &p.role {
                assert!(
                    l.isr.contains(&self.id),
                    "{tp}: leader {} not in its own ISR {:?}",
                    self.id,
                    l.isr
                );
                assert_eq!(l.leader_epoch, p.leader_epoch);
            }
        }
    }
}

/// The leader's verdict on an idempotent batch (KIP-98; Kafka's `ProducerAppendInfo`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SequenceCheck {
    /// The next batch in sequence (or the first of a new epoch): append it.
    Append,
    /// One of the last [`NUM_BATCHES_TO_RETAIN`] batches again: answer with its offsets.
    Duplicate { base: Offset, last: Offset },
    /// Refuse it with this error.
    Reject(ErrorCode),
}

/// Judges a batch `[first_seq, last_seq]` of epoch `epoch` against the producer's state.
/// A stale epoch is fenced; within the epoch, a cached batch is a duplicate and anything but
/// the next sequence is out of order; a new epoch, or a producer the leader does not know,
/// must start at sequence 0 (an unknown producer with a later sequence lost its earlier
/// batches, e.g. to truncation).
fn check_sequence(
    entry: Option<&ProducerEntry>,
    epoch: ProducerEpoch,
    first_seq: i32,
    last_seq: i32,
) -> SequenceCheck {
    let Some(entry) = entry else {
        return if first_seq == 0 {
            SequenceCheck::Append
        } else {
            SequenceCheck::Reject(ErrorCode::OutOfOrderSequenceNumber)
        };
    };
    if epoch < entry.epoch {
        return SequenceCheck::Reject(ErrorCode::InvalidProducerEpoch);
    }
    if epoch > entry.epoch {
        return if first_seq == 0 {
            SequenceCheck::Append
        } else {
            SequenceCheck::Reject(ErrorCode::OutOfOrderSequenceNumber)
        };
    }
    if let Some(dup) = entry
        .batches
        .iter()
        .find(|b| b.first_seq == first_seq && b.last_seq == last_seq)
    {
        let last = Offset(dup.first_offset.0 + dup.last_seq.wrapping_sub(dup.first_seq) as i64);
        return SequenceCheck::Duplicate {
            base: dup.first_offset,
            last,
        };
    }
    let expected = entry.last_seq().map(|s| s.wrapping_add(1)).unwrap_or(0);
    if first_seq == expected {
        SequenceCheck::Append
    } else {
        SequenceCheck::Reject(ErrorCode::OutOfOrderSequenceNumber)
    }
}

impl Partition {
    fn record_producer_batch(
        &mut self,
        pid: ProducerId,
        epoch: ProducerEpoch,
        first_seq: i32,
        last_seq: i32,
        first_offset: Offset,
    ) {
        let entry = self.producers.entry(pid).or_default();
        if epoch > entry.epoch {
            entry.epoch = epoch;
            entry.batches.clear();
        }
        entry.batches.push_back(CachedBatch {
            first_seq,
            last_seq,
            first_offset,
        });
        while entry.batches.len() > NUM_BATCHES_TO_RETAIN {
            entry.batches.pop_front();
        }
    }

    /// Rebuild producer state from the log (Kafka rebuilds it from snapshots plus the log tail
    /// on recovery and truncation).
    fn rebuild_producer_state(&mut self) {
        self.producers.clear();
        let batches: Vec<_> = self
            .log
            .batches()
            .filter(|b| b.producer_id != ProducerId::NONE)
            .map(|b| {
                (
                    b.producer_id,
                    b.producer_epoch,
                    b.base_sequence.0,
                    (b.last_offset.0 - b.base_offset.0) as i32,
                    b.base_offset,
                )
            })
            .collect();
        for (pid, epoch, first, delta, base) in batches {
            self.record_producer_batch(pid, epoch, first, first.wrapping_add(delta), base);
        }
    }
}

impl Actor for Broker {
    type Timer = BrokerTimer;

    fn visit_replicas(&self, visit: &mut dyn FnMut(&TopicPartition, Offset, Option<LeaderEpoch>)) {
        for (tp, p) in &self.partitions {
            let leader_epoch = match &p.role {
                Role::Leader(l) => Some(l.leader_epoch),
                _ => None,
            };
            visit(tp, p.high_watermark, leader_epoch);
        }
    }

    fn on_start(&mut self, now: Instant, out: &mut Effects<BrokerTimer>) {
        out.event(Event::BrokerStarted { broker: self.id });
        self.zk_connect(now, out);
        out.timer(200, BrokerTimer::ZkTick);
        out.timer(
            (self.config.replica_lag_time_max_ms / 2).max(1),
            BrokerTimer::IsrCheck,
        );
        out.timer(
            self.config.replica_high_watermark_checkpoint_interval_ms,
            BrokerTimer::HwCheckpoint,
        );
        if let Some(ms) = self.config.log_flush_interval_ms {
            out.timer(ms.max(1), BrokerTimer::FlushCheck);
        }
        out.timer(
            self.config.log_retention_check_interval_ms.max(1),
            BrokerTimer::LogRetentionCheck,
        );
        out.timer(
            self.config.log_flush_offset_checkpoint_interval_ms.max(1),
            BrokerTimer::RecoveryPointCheckpoint,
        );
        out.timer(
            self.config
                .log_flush_start_offset_checkpoint_interval_ms
                .max(1),
            BrokerTimer::LogStartOffsetCheckpoint,
        );
        if self.any_compacted_topic() {
            out.timer(
                self.config.log_cleaner_backoff_ms.max(1),
                BrokerTimer::LogCleanerTick,
            );
        }
    }

    fn on_message(
        &mut self,
        now: Instant,
        from: NodeId,
        msg: Message,
        out: &mut Effects<BrokerTimer>,
    ) {
        match msg {
            Message::ZkResponse { corr, result } => self.on_zk_response(now, corr, result, out),
            Message::ZkWatch {
                session,
                path,
                kind,
                seq,
            } => {
                if Some(session) == self.zk.session() {
                    self.zk_last_heard = now;
                    if self.zk.on_watch(session, seq) {
                        self.on_zk_watch(now, path, kind, out);
                    }
                }
            }
            Message::ZkSessionExpired { session } => {
                if Some(session) == self.zk.session() {
                    self.on_session_lost(now, "session-expired", out);
                }
            }
            Message::Produce {
                corr,
                acks,
                timeout_ms,
                partitions,
            } => self.on_produce_request(now, from, corr, acks, timeout_ms, partitions, out),
            m @ Message::Fetch { .. } => self.on_fetch(now, from, m, true, out),
            Message::FetchResponse {
                corr,
                tp,
                error,
                high_watermark,
                log_start_offset,
                diverging_epoch,
                batches,
                ..
            } => self.on_fetch_response(
                now,
                corr,
                tp,
                error,
                (high_watermark, log_start_offset),
                diverging_epoch,
                batches,
                out,
            ),
            Message::Metadata { corr, topics } => self.on_metadata(from, corr, topics, out),
            Message::ListOffsets {
                corr,
                tp,
                timestamp,
                ..
            } => self.on_list_offsets(from, corr, tp, timestamp, out),
            Message::InitProducerId { corr, .. } => self.on_init_producer_id(from, corr, out),
            Message::OffsetForLeaderEpoch {
                corr,
                replica_id: None,
                tp,
                ..
            } if matches!(
                self.config.replication_truncation,
                TruncationMode::HighWatermark | TruncationMode::Kip101 | TruncationMode::Kip279
            ) =>
            {
                // Brokers before KIP-320 (Kafka 2.1) have no consumer version of the request:
                // the consumer skips validating its position, as Kafka's does.
                out.send(
                    from,
                    Message::OffsetForLeaderEpochResponse {
                        corr,
                        tp,
                        error: ErrorCode::UnsupportedVersion,
                        end: EpochEndOffset {
                            leader_epoch: LeaderEpoch::UNKNOWN,
                            end_offset: Offset(-1),
                        },
                    },
                );
            }
            Message::OffsetForLeaderEpoch {
                corr,
                tp,
                current_leader_epoch,
                leader_epoch,
                ..
            } => self.on_offset_for_leader_epoch(
                from,
                corr,
                tp,
                current_leader_epoch,
                leader_epoch,
                out,
            ),
            Message::OffsetForLeaderEpochResponse {
                corr,
                tp,
                error,
                end,
            } => self.on_offset_for_leader_epoch_response(now, corr, tp, error, end, out),
            Message::LeaderAndIsr {
                controller,
                controller_epoch,
                broker_epoch,
                partitions,
            } => self.on_leader_and_isr(
                now,
                from,
                controller,
                controller_epoch,
                broker_epoch,
                partitions,
                out,
            ),
            Message::UpdateMetadata {
                controller,
                controller_epoch,
                live_brokers,
                partitions,
            } => self.on_update_metadata(
                now,
                controller,
                controller_epoch,
                live_brokers,
                partitions,
                out,
            ),
            Message::AlterPartition {
                corr,
                broker,
                broker_epoch,
                tp,
                leader_epoch,
                new_isr,
                new_isr_epochs,
                partition_epoch,
            } => {
                let mut reqs = Vec::new();
                self.controller.on_alter_partition(
                    from,
                    corr,
                    broker,
                    broker_epoch,
                    tp,
                    leader_epoch,
                    new_isr,
                    new_isr_epochs,
                    partition_epoch,
                    &mut reqs,
                    out,
                );
                self.flush_controller_requests(now, reqs, out);
            }
            Message::AlterPartitionResponse {
                corr,
                tp,
                error,
                state,
            } => self.on_alter_partition_response(now, corr, tp, error, state, out),
            Message::StopReplica {
                controller,
                controller_epoch,
                broker_epoch,
                partitions,
                delete_partitions,
            } => self.on_stop_replica(
                from,
                controller,
                controller_epoch,
                broker_epoch,
                partitions,
                delete_partitions,
                out,
            ),
            Message::CreatePartitions { topic, assignment } => {
                let mut reqs = Vec::new();
                let op = AdminOp::CreatePartitions { topic, assignment };
                self.controller.on_admin(op, &mut reqs, out);
                self.flush_controller_requests(now, reqs, out);
            }
            Message::DeleteTopics { topic } => {
                let mut reqs = Vec::new();
                let op = AdminOp::DeleteTopic { topic };
                self.controller.on_admin(op, &mut reqs, out);
                self.flush_controller_requests(now, reqs, out);
            }
            Message::LeaderAndIsrResponse { .. } | Message::StopReplicaResponse { .. } => {}
            // Not addressed to a broker.
            Message::Zk { .. }
            | Message::MetadataResponse { .. }
            | Message::ProduceResponse { .. }
            | Message::ListOffsetsResponse { .. }
            | Message::InitProducerIdResponse { .. } => {}
        }
        self.invariants();
    }

    fn on_timeout(&mut self, now: Instant, timer: BrokerTimer, out: &mut Effects<BrokerTimer>) {
        match timer {
            BrokerTimer::ZkTick => {
                for msg in self.zk.retransmit_due(now) {
                    out.send(NodeId::Zk, msg);
                }
                if self.zk.ping_due(now) {
                    self.zk_send(now, ZkRequest::Ping, ZkPurpose::Ping, out);
                }
                if self.zk.state == SessionState::Disconnected {
                    self.zk_connect(now, out);
                }
                self.check_session_silence(now, out);
                out.timer(200, BrokerTimer::ZkTick);
            }
            BrokerTimer::ZkReconnect => {
                if self.zk.state == SessionState::Disconnected {
                    self.zk_connect(now, out);
                }
            }
            BrokerTimer::RegisterRetry => {
                if self.zk.session().is_some() && !self.registered {
                    self.register(now, out);
                }
            }
            BrokerTimer::ProduceTimeout { id } => {
                if let Some(pp) = self.pending_produces.remove(&id) {
                    let answer = PartitionProduceResponse {
                        tp: pp.tp,
                        error: ErrorCode::RequestTimedOut,
                        base_offset: Offset(-1),
                        log_start_offset: Offset(-1),
                    };
                    self.produce_partition_done(pp.req, answer, out);
                }
            }
            BrokerTimer::FetchWaitExpired { id } => {
                if let Some(pf) = self.pending_fetches.remove(&id) {
                    self.on_fetch(now, pf.from, pf.msg, false, out);
                }
            }
            BrokerTimer::FollowerFetch { tp, generation } => {
                let current = self.partitions.get(&tp).map(|p| p.generation);
                if current == Some(generation) {
                    self.send_follower_fetch(now, &tp, out);
                }
            }
            BrokerTimer::FollowerFetchTimeout { tp, corr } => {
                let stuck = matches!(
                    self.partitions.get(&tp).map(|p| &p.role),
                    Some(Role::Follower(f)) if f.in_flight == Some(corr)
                );
                if stuck {
                    self.fetch_targets.remove(&corr);
                    self.schedule_follower_fetch(&tp, 0, out);
                }
            }
            BrokerTimer::IsrCheck => {
                self.check_isr_shrink(now, out);
                out.timer(
                    (self.config.replica_lag_time_max_ms / 2).max(1),
                    BrokerTimer::IsrCheck,
                );
            }
            BrokerTimer::HwCheckpoint => {
                self.write_hw_checkpoint(out);
                out.timer(
                    self.config.replica_high_watermark_checkpoint_interval_ms,
                    BrokerTimer::HwCheckpoint,
                );
            }
            BrokerTimer::FlushCheck => {
                let mut ops = Vec::new();
                for p in self.partitions.values_mut() {
                    if p.log.unflushed_messages() > 0 {
                        p.log.flush(&mut ops);
                    }
                }
                for op in ops {
                    out.disk(op);
                }
                if let Some(ms) = self.config.log_flush_interval_ms {
                    out.timer(ms.max(1), BrokerTimer::FlushCheck);
                }
            }
            BrokerTimer::LogRetentionCheck => {
                self.on_log_retention_check(now, out);
                out.timer(
                    self.config.log_retention_check_interval_ms.max(1),
                    BrokerTimer::LogRetentionCheck,
                );
            }
            BrokerTimer::LogCleanerTick => {
                self.on_log_cleaner_tick(now, out);
                out.timer(
                    self.config.log_cleaner_backoff_ms.max(1),
                    BrokerTimer::LogCleanerTick,
                );
            }
            BrokerTimer::RecoveryPointCheckpoint => {
                self.write_recovery_point_checkpoint(out);
                out.timer(
                    self.config.log_flush_offset_checkpoint_interval_ms.max(1),
                    BrokerTimer::RecoveryPointCheckpoint,
                );
            }
            BrokerTimer::LogStartOffsetCheckpoint => {
                self.write_log_start_offset_checkpoint(out);
                out.timer(
                    self.config
                        .log_flush_start_offset_checkpoint_interval_ms
                        .max(1),
                    BrokerTimer::LogStartOffsetCheckpoint,
                );
            }
            BrokerTimer::ControllerResend { broker } => {
                self.controller_resends.remove(&broker);
                for msg in self.controller.messages_for(broker) {
                    out.send(NodeId::Broker(broker), msg);
                }
            }
            BrokerTimer::AlterPartitionRetry {
                tp,
                generation,
                send,
            } => {
                let retry = match self.partitions.get(&tp) {
                    Some(p) if p.generation == generation => match &p.role {
                        Role::Leader(l) if l.isr_sends == send => l.pending_isr.clone(),
                        _ => None,
                    },
                    _ => None,
                };
                if let Some((_, new_isr)) = retry {
                    // Unanswered in the request timeout, refused as NOT_CONTROLLER, or its
                    // copy lost: ask again. The request stays pending meanwhile (see
                    // `send_alter_partition`).
                    self.send_alter_partition(now, &tp, new_isr, out);
                }
            }
        }
        self.invariants();
    }

    fn on_disconnect(&mut self, _now: Instant, peer: NodeId, out: &mut Effects<BrokerTimer>) {
        match peer {
            NodeId::Zk
                // Requests to the coordination node were lost; the session may survive, and
                // the ZkTick sends its unanswered requests again (`retransmit_due`). A lost
                // Connect has no session to survive: try again shortly.
                if self.zk.state == SessionState::Connecting => {
                    self.zk.expire();
                    out.timer(500, BrokerTimer::ZkReconnect);
                }
            NodeId::Broker(b) => {
                // Follower fetches in flight to that broker will not be answered.
                let lost: Vec<(CorrelationId, TopicPartition)> = self
                    .fetch_targets
                    .iter()
                    .filter(|(_, (_, l))| *l == b)
                    .map(|(c, (tp, _))| (*c, tp.clone()))
                    .collect();
                let backoff = self.config.replica_fetch_backoff_ms;
                for (corr, tp) in lost {
                    self.fetch_targets.remove(&corr);
                    let stuck = matches!(
                        self.partitions.get(&tp).map(|p| &p.role),
                        Some(Role::Follower(f)) if f.in_flight == Some(corr)
                    );
                    if stuck {
                        self.schedule_follower_fetch(&tp, backoff, out);
                    }
                }
                // An AlterPartition in flight to that broker (as controller) will not be
                // answered: send it again after the backoff, as Kafka's channel manager does
                // when the connection to the controller drops.
                let unanswered: Vec<TopicPartition> = self
                    .partitions
                    .iter()
                    .filter(|(_, p)| matches!(&p.role, Role::Leader(l) if l.isr_in_flight == Some(b)))
                    .map(|(tp, _)| tp.clone())
                    .collect();
                for tp in unanswered {
                    self.alter_partition_lost(&tp, out);
                }
            }
            _ => {}
        }
    }

    fn on_send_failed(
        &mut self,
        _now: Instant,
        to: NodeId,
        msg: Message,
        out: &mut Effects<BrokerTimer>,
    ) {
        match msg {
            Message::Fetch { corr, tp, .. } | Message::OffsetForLeaderEpoch { corr, tp, .. } => {
                self.fetch_targets.remove(&corr);
                let stuck = matches!(
                    self.partitions.get(&tp).map(|p| &p.role),
                    Some(Role::Follower(f)) if f.in_flight == Some(corr)
                );
                if stuck {
                    let backoff = self.config.replica_fetch_backoff_ms;
                    self.schedule_follower_fetch(&tp, backoff, out);
                }
            }
            Message::Zk { .. } if self.zk.state == SessionState::Connecting => {
                self.zk.expire();
                out.timer(500, BrokerTimer::ZkReconnect);
            }
            Message::AlterPartition { corr, tp, .. } => {
                let latest = matches!(
                    self.partitions.get(&tp).map(|p| &p.role),
                    Some(Role::Leader(l)) if matches!(&l.pending_isr, Some((c, _)) if *c == corr)
                );
                if latest {
                    self.alter_partition_lost(&tp, out);
                }
            }
            Message::LeaderAndIsr { .. } | Message::UpdateMetadata { .. } => {
                // As Kafka's ControllerChannelManager: keep trying while the broker is live.
                if let NodeId::Broker(b) = to {
                    if self.controller.is_active() && self.controller_resends.insert(b) {
                        out.timer(
                            CONTROLLER_RESEND_BACKOFF_MS,
                            BrokerTimer::ControllerResend { broker: b },
                        );
                    }
                }
            }
            _ => {}
        }
    }
}

/// KIP-101's original OffsetsForLeaderEpoch lookup (Kafka 0.11's `LeaderEpochFileCache`,
/// `LookupOffsetForEpoch` in Kip101.tla): the LEO if `epoch` is the latest epoch in the cache;
/// otherwise the start offset of the first cached epoch larger than `epoch`; and
/// `UNDEFINED_EPOCH_OFFSET` if there is none or `epoch` is below the earliest cached epoch.
/// The answer carries no epoch: the follower cannot tell whether the leader ever had `epoch`,
/// which is the hole KIP-279 closed.
fn kip101_end_offset(log: &PartitionLog, epoch: LeaderEpoch) -> EpochEndOffset {
    let undefined = EpochEndOffset {
        leader_epoch: LeaderEpoch::UNKNOWN,
        end_offset: crate::log::UNDEFINED_EPOCH_OFFSET,
    };
    let entries = log.epoch_entries();
    let Some(&(first, _)) = entries.first() else {
        return undefined;
    };
    if log.latest_epoch() == Some(epoch) {
        return EpochEndOffset {
            leader_epoch: LeaderEpoch::UNKNOWN,
            end_offset: log.log_end_offset(),
        };
    }
    if epoch < first {
        return undefined;
    }
    match entries.iter().find(|(e, _)| *e > epoch) {
        Some(&(_, start)) => EpochEndOffset {
            leader_epoch: LeaderEpoch::UNKNOWN,
            end_offset: start,
        },
        None => undefined,
    }
}

/// How many bytes a fetch from `from` below `limit` would return now (whole batches, at most
/// `max_bytes` after the first): what a parked fetch's `fetch.min.bytes` is compared with.
fn fetch_ready_bytes(log: &PartitionLog, from: Offset, limit: Offset, max_bytes: u32) -> usize {
    log.read(from, limit, max_bytes)
        .map(|b| b.iter().map(Vec::len).sum())
        .unwrap_or(0)
}

fn parse_dir(dir: &str) -> Option<TopicPartition> {
    let (topic, p) = dir.rsplit_once('-')?;
    Some(TopicPartition::new(topic, p.parse().ok()?))
}

fn parse_i32(data: &[u8]) -> Option<i32> {
    std::str::from_utf8(data).ok()?.trim().parse().ok()
}

fn parse_controller_id(data: &[u8]) -> Option<BrokerId> {
    let v: serde_json::Value = serde_json::from_slice(data).ok()?;
    Some(BrokerId(v.get("brokerid")?.as_i64()? as i32))
}

/// Parses Kafka's checkpoint text format: version, count, then `topic partition offset` lines.
fn parse_hw_checkpoint(data: Option<&[u8]>) -> BTreeMap<TopicPartition, Offset> {
    let mut map = BTreeMap::new();
    let Some(data) = data else { return map };
    let Ok(text) = std::str::from_utf8(data) else {
        return map;
    };
    for line in text.lines().skip(2) {
        let parts: Vec<&str> = line.split_whitespace().collect();
        if let [topic, p, off] = parts.as_slice() {
            if let (Ok(p), Ok(off)) = (p.parse(), off.parse()) {
                map.insert(TopicPartition::new(*topic, p), Offset(off));
            }
        }
    }
    map
}

/// An ISR as Kafka prints a Scala `Set` of broker ids in error messages: `Set(0, 2)`.
fn isr_set_text(isr: &[BrokerId]) -> String {
    let ids: Vec<String> = isr.iter().map(|b| b.0.to_string()).collect();
    format!("Set({})", ids.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::effects::Effect;
    use crate::record::RecordBatch;

    fn tp() -> TopicPartition {
        TopicPartition::new("t", 0)
    }

    fn leader_of_t0(isr: Vec<BrokerId>) -> (Broker, Effects<BrokerTimer>) {
        let mut out = Effects::new();
        let mut b = Broker::recover(
            BrokerId(0),
            BrokerConfig::default(),
            vec![],
            &BTreeMap::new(),
            &mut out,
        );
        let state = PartitionState {
            tp: tp(),
            leader: Some(BrokerId(0)),
            leader_epoch: LeaderEpoch(0),
            isr: isr.clone(),
            replicas: vec![BrokerId(0), BrokerId(1)],
            partition_epoch: ZkVersion(0),
            controller_epoch: ControllerEpoch(1),
        };
        let msg = Message::LeaderAndIsr {
            controller: BrokerId(0),
            controller_epoch: ControllerEpoch(1),
            broker_epoch: BrokerEpoch(-1),
            partitions: vec![state],
        };
        b.on_message(Instant(0), NodeId::Broker(BrokerId(1)), msg, &mut out);
        (b, out)
    }

    fn idempotent_batch(seq: i32) -> Vec<u8> {
        let mut rb = RecordBatch::new(vec![(None, Some(vec![1, 2, 3]))], 0);
        rb.producer_id = ProducerId(7);
        rb.producer_epoch = ProducerEpoch(0);
        rb.base_sequence = Sequence(seq);
        rb.encode()
    }

    fn produce(corr: u64, batch: Vec<u8>) -> Message {
        Message::Produce {
            corr: CorrelationId(corr),
            acks: Acks::All,
            timeout_ms: 30_000,
            partitions: vec![(tp(), batch)],
        }
    }

    fn produce_responses(out: &Effects<BrokerTimer>) -> Vec<(CorrelationId, ErrorCode, Offset)> {
        out.list
            .iter()
            .flat_map(|e| match e {
                Effect::Send {
                    msg: Message::ProduceResponse { corr, partitions },
                    ..
                } => partitions
                    .iter()
                    .map(|r| (*corr, r.error, r.base_offset))
                    .collect::<Vec<_>>(),
                _ => vec![],
            })
            .collect()
    }

    fn follower_fetch(fetch_offset: i64) -> Message {
        Message::Fetch {
            corr: CorrelationId(99),
            replica_id: Some(BrokerId(1)),
            broker_epoch: BrokerEpoch(-1),
            tp: tp(),
            fetch_offset: Offset(fetch_offset),
            last_fetched_epoch: if fetch_offset > 0 {
                LeaderEpoch(0)
            } else {
                LeaderEpoch::UNKNOWN
            },
            current_leader_epoch: LeaderEpoch(0),
            max_bytes: 1 << 20,
            min_bytes: 1,
            max_wait_ms: 0,
            isolation_level: IsolationLevel::ReadUncommitted,
        }
    }

    /// Regression (found by `default` seed 155): a retried idempotent batch that the leader
    /// already holds but has not committed must not be acknowledged before the HW passes it.
    #[test]
    fn duplicate_batch_under_acks_all_waits_for_the_high_watermark() {
        let (mut b, _) = leader_of_t0(vec![BrokerId(0), BrokerId(1)]);
        let client = NodeId::Producer(0);
        let mut out = Effects::new();
        b.on_message(
            Instant(1),
            client,
            produce(1, idempotent_batch(0)),
            &mut out,
        );
        assert!(
            produce_responses(&out).is_empty(),
            "acks=all must wait for the follower"
        );
        let mut out = Effects::new();
        b.on_message(
            Instant(2),
            client,
            produce(2, idempotent_batch(0)),
            &mut out,
        );
        assert!(
            produce_responses(&out).is_empty(),
            "a duplicate must not be acknowledged before it is committed"
        );
        // The follower fetches past offset 0: the HW moves to 1 and both requests are answered
        // with the original offset.
        let mut out = Effects::new();
        b.on_message(
            Instant(3),
            NodeId::Broker(BrokerId(1)),
            follower_fetch(1),
            &mut out,
        );
        let mut answered = produce_responses(&out);
        answered.sort();
        assert_eq!(
            answered,
            vec![
                (CorrelationId(1), ErrorCode::None, Offset(0)),
                (CorrelationId(2), ErrorCode::None, Offset(0))
            ]
        );
        assert_eq!(
            b.partitions[&tp()].log.log_end_offset(),
            Offset(1),
            "the duplicate was not appended again"
        );
    }

    #[test]
    fn sequence_rules_of_kip_98() {
        let mut entry = ProducerEntry {
            epoch: ProducerEpoch(1),
            batches: VecDeque::new(),
        };
        entry.batches.push_back(CachedBatch {
            first_seq: 0,
            last_seq: 4,
            first_offset: Offset(10),
        });
        let e = ProducerEpoch(1);
        assert_eq!(check_sequence(Some(&entry), e, 5, 7), SequenceCheck::Append);
        assert_eq!(
            check_sequence(Some(&entry), e, 0, 4),
            SequenceCheck::Duplicate {
                base: Offset(10),
                last: Offset(14)
            }
        );
        assert_eq!(
            check_sequence(Some(&entry), e, 6, 7),
            SequenceCheck::Reject(ErrorCode::OutOfOrderSequenceNumber)
        );
        assert_eq!(
            check_sequence(Some(&entry), ProducerEpoch(0), 5, 7),
            SequenceCheck::Reject(ErrorCode::InvalidProducerEpoch)
        );
        assert_eq!(
            check_sequence(Some(&entry), ProducerEpoch(2), 0, 3),
            SequenceCheck::Append
        );
        assert_eq!(
            check_sequence(Some(&entry), ProducerEpoch(2), 5, 7),
            SequenceCheck::Reject(ErrorCode::OutOfOrderSequenceNumber)
        );
        assert_eq!(check_sequence(None, e, 0, 1), SequenceCheck::Append);
        assert_eq!(
            check_sequence(None, e, 3, 4),
            SequenceCheck::Reject(ErrorCode::OutOfOrderSequenceNumber)
        );
    }

    /// The leader decompresses a producer's batch to validate it, keeps the producer's codec
    /// under `compression.type=producer`, and recompresses into the topic's codec otherwise.
    #[test]
    fn compressed_batches_are_validated_and_recompressed_per_topic() {
        use crate::record::Compression;
        let (mut b, _) = leader_of_t0(vec![BrokerId(0)]);
        let gzip = RecordBatch::new(vec![(None, Some(vec![9; 100]))], 0)
            .with_compression(Compression::Gzip)
            .encode();
        let mut out = Effects::new();
        b.on_message(
            Instant(1),
            NodeId::Producer(0),
            produce(1, gzip.clone()),
            &mut out,
        );
        assert_eq!(
            produce_responses(&out),
            vec![(CorrelationId(1), ErrorCode::None, Offset(0))]
        );
        b.topic_configs.insert(
            "t".into(),
            TopicConfig {
                compression_type: Some(BrokerCompression::Codec(Compression::Zstd)),
                ..Default::default()
            },
        );
        let mut out = Effects::new();
        b.on_message(
            Instant(2),
            NodeId::Producer(0),
            produce(2, gzip.clone()),
            &mut out,
        );
        assert_eq!(
            produce_responses(&out),
            vec![(CorrelationId(2), ErrorCode::None, Offset(1))]
        );
        let log = &b.partitions[&tp()].log;
        let codecs: Vec<i16> = log
            .batches()
            .map(|lb| read_header(&lb.bytes).unwrap().compression())
            .collect();
        assert_eq!(codecs, vec![Compression::Gzip.id(), Compression::Zstd.id()]);
        let values: Vec<_> = log.records().into_iter().map(|(o, v, _)| (o, v)).collect();
        assert_eq!(
            values,
            vec![
                (Offset(0), Some(vec![9; 100])),
                (Offset(1), Some(vec![9; 100]))
            ]
        );
        // A gzip attribute over bytes that are not gzip: refused, nothing appended.
        let mut bad = gzip;
        let n = bad.len();
        bad[n - 3] ^= 0xff;
        let crc = crc32c::crc32c(&bad[21..]);
        bad[17..21].copy_from_slice(&crc.to_be_bytes());
        b.topic_configs.clear();
        let mut out = Effects::new();
        b.on_message(Instant(3), NodeId::Producer(0), produce(3, bad), &mut out);
        assert_eq!(
            produce_responses(&out),
            vec![(CorrelationId(3), ErrorCode::CorruptMessage, Offset(-1))]
        );
        assert_eq!(b.partitions[&tp()].log.log_end_offset(), Offset(2));
    }

    #[test]
    fn acks_all_below_min_insync_replicas_is_refused_before_append() {
        let (mut b, _) = leader_of_t0(vec![BrokerId(0)]);
        b.topic_configs.insert(
            "t".into(),
            TopicConfig {
                min_insync_replicas: Some(2),
                ..Default::default()
            },
        );
        let mut out = Effects::new();
        b.on_message(
            Instant(1),
            NodeId::Producer(0),
            produce(1, idempotent_batch(0)),
            &mut out,
        );
        assert_eq!(
            produce_responses(&out),
            vec![(CorrelationId(1), ErrorCode::NotEnoughReplicas, Offset(-1))]
        );
        assert_eq!(b.partitions[&tp()].log.log_end_offset(), Offset(0));
        let rejected: Vec<String> = out
            .list
            .iter()
            .filter_map(|e| match e {
                Effect::Event(Event::ProduceRejected { error, message, .. }) => {
                    assert_eq!(*error, ErrorCode::NotEnoughReplicas);
                    Some(message.clone())
                }
                _ => None,
            })
            .collect();
        assert_eq!(
            rejected,
            vec!["The size of the current ISR Set(0) is insufficient to satisfy the min.isr requirement of 2 for partition t-0".to_string()]
        );
    }

    /// Kafka's LogValidator: a compacted topic refuses a record without a key, with
    /// CORRUPT_MESSAGE and InvalidRecordException's text; nothing is appended.
    #[test]
    fn compacted_topic_refuses_records_without_a_key() {
        let (mut b, _) = leader_of_t0(vec![BrokerId(0)]);
        let compact = crate::log::LogConfig {
            cleanup_policy: crate::log::CleanupPolicy {
                delete: false,
                compact: true,
            },
            ..Default::default()
        };
        b.partitions.get_mut(&tp()).unwrap().log.set_config(compact);
        let mut out = Effects::new();
        b.on_message(
            Instant(1),
            NodeId::Producer(0),
            produce(1, idempotent_batch(0)),
            &mut out,
        );
        assert_eq!(
            produce_responses(&out),
            vec![(CorrelationId(1), ErrorCode::CorruptMessage, Offset(-1))]
        );
        assert!(out.list.iter().any(|e| matches!(
            e,
            Effect::Event(Event::ProduceRejected { message, .. })
                if message == "Compacted topic cannot accept message without key in topic partition t-0."
        )));
        assert_eq!(b.partitions[&tp()].log.log_end_offset(), Offset(0));
        // With a key it is appended.
        let keyed = RecordBatch::new(vec![(Some(b"k".to_vec()), Some(vec![1]))], 0).encode();
        let mut out = Effects::new();
        b.on_message(Instant(2), NodeId::Producer(0), produce(2, keyed), &mut out);
        assert_eq!(b.partitions[&tp()].log.log_end_offset(), Offset(1));
    }

    /// Retention on the leader: old segments below the HW go, the log start offset advances
    /// (event, checkpoint), and a fetch below it gets OFFSET_OUT_OF_RANGE with the new log
    /// start offset, which is what a lagging follower truncates fully to.
    #[test]
    fn retention_advances_the_log_start_offset_and_fetches_below_it_are_out_of_range() {
        let (mut b, _) = leader_of_t0(vec![BrokerId(0)]);
        let config = crate::log::LogConfig {
            segment_bytes: 200,
            retention_ms: 1_000,
            ..Default::default()
        };
        b.partitions.get_mut(&tp()).unwrap().log.set_config(config);
        for i in 0..10 {
            let batch = RecordBatch::new(vec![(None, Some(vec![i]))], 100).encode();
            let mut out = Effects::new();
            b.on_message(
                Instant(1),
                NodeId::Producer(0),
                produce(i as u64, batch),
                &mut out,
            );
        }
        let p = &b.partitions[&tp()];
        assert_eq!(
            p.high_watermark,
            Offset(10),
            "a one-member ISR commits at once"
        );
        assert!(p.log.segments().len() > 2);
        let mut out = Effects::new();
        b.on_timeout(Instant(5_000), BrokerTimer::LogRetentionCheck, &mut out);
        let lso = b.partitions[&tp()].log.log_start_offset();
        assert!(lso > Offset(0));
        assert!(out.list.iter().any(|e| matches!(
            e,
            Effect::Event(Event::LogStartOffsetAdvanced { log_start_offset, reason, .. })
                if *log_start_offset == lso && reason == "retention"
        )));
        assert!(out.list.iter().any(|e| matches!(
            e,
            Effect::Disk(DiskOp::WriteAtomic { file, .. }) if file == checkpoint::LOG_START_OFFSET_CHECKPOINT
        )));
        let mut out = Effects::new();
        b.on_message(
            Instant(5_001),
            NodeId::Broker(BrokerId(1)),
            follower_fetch(0),
            &mut out,
        );
        let answered: Vec<(ErrorCode, Offset)> = out
            .list
            .iter()
            .filter_map(|e| match e {
                Effect::Send {
                    msg:
                        Message::FetchResponse {
                            error,
                            log_start_offset,
                            ..
                        },
                    ..
                } => Some((*error, *log_start_offset)),
                _ => None,
            })
            .collect();
        assert_eq!(answered, vec![(ErrorCode::OffsetOutOfRange, lso)]);
    }

    /// KIP-101's lookup answers an epoch the leader never had with the start of its next
    /// epoch (the fast-leader-change hole), KIP-279's with the largest epoch below it.
    #[test]
    fn kip101_lookup_versus_kip279_lookup() {
        let mut log = PartitionLog::new(&tp());
        let mut ops = Vec::new();
        log.assign_epoch_start(LeaderEpoch(0), Offset(0), &mut ops);
        let batch = RecordBatch::new(vec![(None, Some(vec![1]))], 0).encode();
        log.append_as_leader(&batch, LeaderEpoch(0), &mut ops)
            .unwrap();
        log.append_as_leader(&batch, LeaderEpoch(0), &mut ops)
            .unwrap();
        log.assign_epoch_start(LeaderEpoch(2), Offset(2), &mut ops);
        log.append_as_leader(&batch, LeaderEpoch(2), &mut ops)
            .unwrap();
        let off = |e: i32| kip101_end_offset(&log, LeaderEpoch(e)).end_offset;
        assert_eq!(off(0), Offset(2));
        // Epoch 1 was never on this log: KIP-101 answers where epoch 2 starts ...
        assert_eq!(off(1), Offset(2));
        assert_eq!(off(2), Offset(3), "the latest epoch ends at the LEO");
        assert_eq!(off(3), crate::log::UNDEFINED_EPOCH_OFFSET);
        // ... while KIP-279's answer names the epoch it is about.
        assert_eq!(
            log.end_offset_for_epoch(LeaderEpoch(1)),
            EpochEndOffset {
                leader_epoch: LeaderEpoch(0),
                end_offset: Offset(2)
            }
        );
    }

    #[test]
    fn fetch_from_a_stale_epoch_is_fenced() {
        let (mut b, _) = leader_of_t0(vec![BrokerId(0), BrokerId(1)]);
        let mut fetch = follower_fetch(0);
        if let Message::Fetch {
            current_leader_epoch,
            ..
        } = &mut fetch
        {
            *current_leader_epoch = LeaderEpoch(-2);
        }
        // -2 is older than 0: FENCED_LEADER_EPOCH (UNKNOWN = -1 skips the check).
        let mut out = Effects::new();
        b.on_message(Instant(1), NodeId::Broker(BrokerId(1)), fetch, &mut out);
        let errors: Vec<ErrorCode> = out
            .list
            .iter()
            .filter_map(|e| match e {
                Effect::Send {
                    msg: Message::FetchResponse { error, .. },
                    ..
                } => Some(*error),
                _ => None,
            })
            .collect();
        assert_eq!(errors, vec![ErrorCode::FencedLeaderEpoch]);
    }

    fn consumer_fetch(corr: u64, fetch_offset: i64, min_bytes: u32) -> Message {
        Message::Fetch {
            corr: CorrelationId(corr),
            replica_id: None,
            broker_epoch: BrokerEpoch(-1),
            tp: tp(),
            fetch_offset: Offset(fetch_offset),
            last_fetched_epoch: LeaderEpoch::UNKNOWN,
            current_leader_epoch: LeaderEpoch(0),
            max_bytes: 1 << 20,
            min_bytes,
            max_wait_ms: 500,
            isolation_level: IsolationLevel::ReadUncommitted,
        }
    }

    /// (corr, error, number of batches) of every fetch response sent.
    fn fetch_responses(out: &Effects<BrokerTimer>) -> Vec<(u64, ErrorCode, usize)> {
        out.list
            .iter()
            .filter_map(|e| match e {
                Effect::Send {
                    msg:
                        Message::FetchResponse {
                            corr,
                            error,
                            batches,
                            ..
                        },
                    ..
                } => Some((corr.0, *error, batches.len())),
                _ => None,
            })
            .collect()
    }

    /// `fetch.min.bytes` / `fetch.max.wait.ms`: a consumer fetch with nothing to read is held
    /// (a long poll) and answered as soon as the high watermark makes `min_bytes` readable, or
    /// with what there is when the wait expires.
    #[test]
    fn consumer_fetch_is_a_long_poll_until_min_bytes_or_max_wait() {
        let (mut b, _) = leader_of_t0(vec![BrokerId(0)]);
        let one_batch = RecordBatch::new(vec![(None, Some(vec![0; 8]))], 0).encode();
        let mut out = Effects::new();
        let from = NodeId::Consumer(0);
        b.on_message(Instant(1), from, consumer_fetch(1, 0, 1), &mut out);
        b.on_message(
            Instant(1),
            from,
            consumer_fetch(2, 0, 2 * one_batch.len() as u32),
            &mut out,
        );
        assert!(fetch_responses(&out).is_empty(), "both parked");
        let expiry = out
            .list
            .iter()
            .filter_map(|e| match e {
                Effect::SetTimer {
                    after_ms: 500,
                    timer: t @ BrokerTimer::FetchWaitExpired { .. },
                } => Some(t.clone()),
                _ => None,
            })
            .collect::<Vec<_>>();
        assert_eq!(expiry.len(), 2);
        // One record committed (ISR = {leader}): enough for min_bytes = 1 only.
        let mut out = Effects::new();
        b.on_message(
            Instant(2),
            NodeId::Producer(0),
            produce(10, one_batch.clone()),
            &mut out,
        );
        assert_eq!(fetch_responses(&out), [(1, ErrorCode::None, 1)]);
        // A second record: now the min_bytes = 2 batches fetch has enough.
        let mut out = Effects::new();
        b.on_message(
            Instant(3),
            NodeId::Producer(0),
            produce(11, one_batch),
            &mut out,
        );
        assert_eq!(fetch_responses(&out), [(2, ErrorCode::None, 2)]);
        // A fetch that never gets enough is answered with what there is when the wait expires.
        let mut out = Effects::new();
        b.on_message(Instant(4), from, consumer_fetch(3, 1, 1 << 20), &mut out);
        assert!(fetch_responses(&out).is_empty());
        let timer = out
            .list
            .iter()
            .find_map(|e| match e {
                Effect::SetTimer { timer, .. } => Some(timer.clone()),
                _ => None,
            })
            .unwrap();
        let mut out = Effects::new();
        b.on_timeout(Instant(504), timer, &mut out);
        assert_eq!(fetch_responses(&out), [(3, ErrorCode::None, 1)]);
    }

    /// KIP-320: OffsetForLeaderEpoch carries the requester's current leader epoch and is fenced
    /// like a fetch; a current one gets the end offset of the requested epoch.
    #[test]
    fn offset_for_leader_epoch_is_fenced_by_the_current_leader_epoch() {
        let (mut b, _) = leader_of_t0(vec![BrokerId(0)]);
        let ask = |current: i32| Message::OffsetForLeaderEpoch {
            corr: CorrelationId(5),
            replica_id: None,
            tp: tp(),
            current_leader_epoch: LeaderEpoch(current),
            leader_epoch: LeaderEpoch(0),
        };
        let answer = |out: &Effects<BrokerTimer>| {
            out.list
                .iter()
                .find_map(|e| match e {
                    Effect::Send {
                        msg: Message::OffsetForLeaderEpochResponse { error, end, .. },
                        ..
                    } => Some((*error, *end)),
                    _ => None,
                })
                .unwrap()
        };
        for (current, expected) in [
            (-2, ErrorCode::FencedLeaderEpoch),
            (1, ErrorCode::UnknownLeaderEpoch),
            (0, ErrorCode::None),
            (-1, ErrorCode::None),
        ] {
            let mut out = Effects::new();
            b.on_message(Instant(1), NodeId::Consumer(0), ask(current), &mut out);
            let (error, end) = answer(&out);
            assert_eq!(error, expected, "current epoch {current}");
            if expected != ErrorCode::None {
                assert_eq!(end.end_offset, Offset(-1));
            }
        }
    }

    /// A three-broker cluster driven message by message for the KIP-320 stale-epoch traces:
    /// brokers 0, 1, 2 replicate `t-0`; `links` says which broker-to-broker links carry traffic.
    struct Trio {
        brokers: BTreeMap<i32, Broker>,
        queue: VecDeque<(NodeId, NodeId, Message)>,
        /// Errors of the fetch answers delivered so far: (from, to, error).
        fetch_errors: Vec<(i32, i32, ErrorCode)>,
    }

    impl Trio {
        fn new(mode: TruncationMode) -> Trio {
            let brokers = (0..3)
                .map(|id| {
                    let config = BrokerConfig {
                        replication_truncation: mode,
                        ..BrokerConfig::default()
                    };
                    let b = Broker::recover(
                        BrokerId(id),
                        config,
                        vec![],
                        &BTreeMap::new(),
                        &mut Effects::new(),
                    );
                    (id, b)
                })
                .collect();
            Trio {
                brokers,
                queue: VecDeque::new(),
                fetch_errors: Vec::new(),
            }
        }

        /// The controller (broker 3, outside the replica set) tells `to` a partition state.
        fn leader_and_isr(&mut self, to: i32, leader: i32, epoch: i32, isr: &[i32]) {
            let msg = Message::LeaderAndIsr {
                controller: BrokerId(3),
                controller_epoch: ControllerEpoch(1),
                broker_epoch: BrokerEpoch(-1),
                partitions: vec![PartitionState {
                    tp: tp(),
                    leader: Some(BrokerId(leader)),
                    leader_epoch: LeaderEpoch(epoch),
                    isr: isr.iter().map(|b| BrokerId(*b)).collect(),
                    replicas: vec![BrokerId(0), BrokerId(1), BrokerId(2)],
                    partition_epoch: ZkVersion(epoch),
                    controller_epoch: ControllerEpoch(1),
                }],
            };
            self.deliver(NodeId::Broker(BrokerId(3)), to, msg);
        }

        fn deliver(&mut self, from: NodeId, to: i32, msg: Message) {
            let mut out = Effects::new();
            let b = self.brokers.get_mut(&to).expect("broker");
            b.on_message(Instant(0), from, msg, &mut out);
            self.collect(to, out);
        }

        /// Queue what `id` sends to the other replicas; a follower's fetch backoff
        /// (`FollowerFetch`) elapses at once, other timers never fire.
        fn collect(&mut self, id: i32, out: Effects<BrokerTimer>) {
            for e in out.list {
                match e {
                    Effect::Send {
                        to: to @ NodeId::Broker(BrokerId(0..=2)),
                        msg,
                    } => self
                        .queue
                        .push_back((NodeId::Broker(BrokerId(id)), to, msg)),
                    Effect::SetTimer {
                        timer: t @ BrokerTimer::FollowerFetch { .. },
                        ..
                    } => {
                        let mut out = Effects::new();
                        let b = self.brokers.get_mut(&id).expect("broker");
                        b.on_timeout(Instant(0), t, &mut out);
                        self.collect(id, out);
                    }
                    _ => {}
                }
            }
        }

        /// Deliver queued messages over the links `up` allows (others are dropped), at most
        /// `budget` of them (a fenced follower retries for ever).
        fn run(&mut self, up: impl Fn(i32, i32) -> bool, budget: usize) {
            for _ in 0..budget {
                let Some((from, to, msg)) = self.queue.pop_front() else {
                    return;
                };
                let (NodeId::Broker(BrokerId(f)), NodeId::Broker(BrokerId(t))) = (from, to) else {
                    continue;
                };
                if up(f, t) {
                    if let Message::FetchResponse { error, .. } = &msg {
                        if *error != ErrorCode::None {
                            self.fetch_errors.push((f, t, *error));
                        }
                    }
                    self.deliver(from, t, msg);
                }
            }
        }

        /// `id`'s parked long polls time out (`replica.fetch.wait.max.ms`) and are answered.
        fn expire_long_polls(&mut self, id: i32) {
            let b = self.brokers.get_mut(&id).expect("broker");
            let ids: Vec<u64> = b.pending_fetches.keys().copied().collect();
            let mut out = Effects::new();
            for i in ids {
                b.on_timeout(
                    Instant(0),
                    BrokerTimer::FetchWaitExpired { id: i },
                    &mut out,
                );
            }
            self.collect(id, out);
        }

        fn produce(&mut self, to: i32, corr: u64) {
            let batch = RecordBatch::new(vec![(None, Some(vec![corr as u8]))], 0).encode();
            self.deliver(NodeId::Producer(0), to, produce(corr, batch));
        }

        fn hw(&self, id: i32) -> Offset {
            self.brokers[&id].partitions[&tp()].high_watermark
        }

        fn leo(&self, id: i32) -> Offset {
            self.brokers[&id].partitions[&tp()].log.log_end_offset()
        }
    }

    /// The trace Kip320FirstTry.tla's comment describes ("several fast leader elections and a
    /// leader bumping the high watermark due to a follower on an older epoch"), played on the
    /// real broker state machines. Replicas 0 (L), 1 (X), 2 (F); the controller's requests to F
    /// are held (a clogged link) from epoch 2 on.
    /// 1. Epoch 1: L leads, ISR {L, X, F}; record r0 is committed (HW 1) everywhere.
    /// 2. Epoch 2: X leads (L's session expired); F does not hear of it and keeps fetching
    ///    from L on epoch 1.
    /// 3. Epoch 3: L leads again, ISR {L, F}; X is a zombie that never hears of epoch 3.
    ///    r1 is produced to L with acks=all.
    /// 4. F finally gets epoch 2's LeaderAndIsr (epoch 3's is still queued behind it: Kafka's
    ///    controller sends a broker one request at a time) and fetches from X.
    ///
    /// (In a whole simulated cluster this controller sends its requests without waiting for
    /// answers, so a held epoch-2 request reaches F in the same instant as the epoch-3 one, and F
    /// drops X's answer, as Kafka's fetcher does for a removed partition, unless the controller
    /// sent F nothing for epoch 3: scenario `kip-320-stale-epoch-follower` gets there by letting
    /// F's ZooKeeper session expire while its process keeps fetching.)
    ///
    /// Returns (L's HW after step 3, F's log end offset after step 4, L's HW after step 4, the
    /// errors of L's fetch answers to F at epoch 3).
    fn stale_epoch_follower_trace(
        mode: TruncationMode,
    ) -> (Offset, Offset, Offset, Vec<ErrorCode>) {
        let mut c = Trio::new(mode);
        let all = |_: i32, _: i32| true;
        for b in 0..3 {
            c.leader_and_isr(b, 0, 1, &[0, 1, 2]);
        }
        c.run(all, 100);
        c.produce(0, 1);
        c.run(all, 100);
        assert_eq!(c.hw(0), Offset(1), "r0 committed at epoch 1");
        assert_eq!((c.leo(1), c.leo(2)), (Offset(1), Offset(1)));
        // Epoch 2: X leads; L follows it (and catches up: nothing to fetch).
        c.leader_and_isr(1, 1, 2, &[1, 2]);
        c.leader_and_isr(0, 1, 2, &[1, 2, 0]);
        c.expire_long_polls(0);
        c.run(all, 100);
        // Epoch 3: L leads with ISR {L, F}; X is cut off from everyone (a zombie leader).
        c.leader_and_isr(0, 0, 3, &[0, 2]);
        c.fetch_errors.clear();
        let without_x = |a: i32, b: i32| a != 1 && b != 1;
        c.run(without_x, 100);
        c.produce(0, 2);
        c.run(without_x, 100);
        let hw_at_epoch_3 = c.hw(0);
        let mut fenced: Vec<ErrorCode> = c
            .fetch_errors
            .iter()
            // (NOT_LEADER_OR_FOLLOWER answers from epoch 2, when L followed X, may still be
            // on their way.)
            .filter(|(f, t, e)| (*f, *t) == (0, 2) && *e != ErrorCode::NotLeaderOrFollower)
            .map(|(_, _, e)| *e)
            .collect();
        fenced.dedup();
        // F learns of epoch 2 (leader X); X is reachable from F again, L is not.
        c.leader_and_isr(2, 1, 2, &[1, 2]);
        c.run(|a, b| (a == 2 || b == 2) && a != 0 && b != 0, 100);
        (hw_at_epoch_3, c.leo(2), c.hw(0), fenced)
    }

    /// Kip320FirstTry.tla: the fetch carries no current leader epoch, so L counts F while F is
    /// still on epoch 1 and commits r1 (HW 2); F then truncates r1 on X's diverging answer while
    /// it is in the ISR {L, F}: StrongIsr is violated (were L to fail now, F would be elected
    /// without the committed r1).
    #[test]
    fn kip320_first_try_counts_a_stale_epoch_follower_that_later_truncates_committed_data() {
        let (hw3, f_leo, l_hw, errors) = stale_epoch_follower_trace(TruncationMode::Kip320FirstTry);
        assert_eq!(
            errors,
            vec![],
            "no fencing: the fetch carries no current leader epoch"
        );
        assert_eq!(hw3, Offset(2), "L counted F's epoch-1 fetch toward its HW");
        assert_eq!(
            f_leo,
            Offset(1),
            "F truncated r1 on the zombie's diverging answer"
        );
        assert!(
            f_leo < l_hw,
            "an ISR member lacks a record below the leader's HW"
        );
    }

    /// A follower handed a batch that does not start at its log end (diverged logs: the leader
    /// rewrote offsets from 0 after losing its log, `kip-101-divergence` seed 10) appends
    /// nothing, says so once per log end offset, and keeps fetching the same offset, as
    /// Kafka's fetcher leaves such a partition failed.
    #[test]
    fn a_batch_that_does_not_start_at_the_log_end_is_refused_and_reported_once() {
        let mut t = Trio::new(TruncationMode::HighWatermark);
        for id in 0..3 {
            t.leader_and_isr(id, 0, 1, &[0, 1, 2]);
        }
        t.produce(0, 1);
        t.produce(0, 2);
        t.run(|_, _| true, 50);
        assert_eq!(t.leo(1), Offset(2));
        let stale = RecordBatch::new(vec![(None, Some(vec![9]))], 0).encode();
        let mut reported = Vec::new();
        for _ in 0..2 {
            let corr = t
                .brokers
                .get(&1)
                .and_then(|b| match &b.partitions[&tp()].role {
                    Role::Follower(f) => f.in_flight,
                    _ => None,
                })
                .expect("broker 1 has a fetch in flight");
            let answer = Message::FetchResponse {
                corr,
                tp: tp(),
                error: ErrorCode::None,
                high_watermark: Offset(2),
                last_stable_offset: Offset(2),
                log_start_offset: Offset(0),
                diverging_epoch: None,
                leader_epoch: LeaderEpoch(1),
                batches: vec![stale.clone()],
            };
            let mut out = Effects::new();
            let b = t.brokers.get_mut(&1).expect("broker");
            b.on_message(Instant(0), NodeId::Broker(BrokerId(0)), answer, &mut out);
            reported.extend(out.list.iter().filter_map(|e| match e {
                Effect::Event(Event::FollowerAppendFailed {
                    log_end_offset,
                    error,
                    ..
                }) => Some((*log_end_offset, error.clone())),
                _ => None,
            }));
            t.collect(1, out);
        }
        assert_eq!(t.leo(1), Offset(2), "nothing appended");
        assert_eq!(
            reported,
            vec![(
                Offset(2),
                "batch base offset 0 does not follow the log end offset 2".to_string()
            )],
            "reported once for the same log end offset"
        );
    }

    /// Kip320.tla (the default, `fenced`): F's epoch-1 fetch is refused by L on epoch 3
    /// (FENCED_LEADER_EPOCH), so r1 is not committed while F lags; what X makes F truncate
    /// later was never below any HW.
    #[test]
    fn fenced_fetch_refuses_a_stale_epoch_follower_so_nothing_committed_is_truncated() {
        let (hw3, f_leo, l_hw, errors) = stale_epoch_follower_trace(TruncationMode::Fenced);
        assert_eq!(errors, vec![ErrorCode::FencedLeaderEpoch]);
        assert_eq!(hw3, Offset(1), "L did not count F's epoch-1 fetch");
        assert!(
            f_leo >= l_hw,
            "every ISR member holds the leader's committed records"
        );
    }

    /// The AlterPartition requests among `out`'s effects: (destination, correlation id, ISR
    /// asked for).
    fn alter_partitions_sent(
        out: &Effects<BrokerTimer>,
    ) -> Vec<(NodeId, CorrelationId, Vec<BrokerId>)> {
        out.list
            .iter()
            .filter_map(|e| match e {
                Effect::Send {
                    to,
                    msg: Message::AlterPartition { corr, new_isr, .. },
                } => Some((*to, *corr, new_isr.clone())),
                _ => None,
            })
            .collect()
    }

    /// A leader of `t-0` (ISR [0], replicas [0, 1]) with controller broker-2, after broker-1's
    /// fetch at its log end made it ask the controller to add broker-1: the broker and what
    /// that fetch returned.
    fn leader_asking_controller_2_to_add_broker_1() -> (Broker, Effects<BrokerTimer>) {
        let (mut b, _) = leader_of_t0(vec![BrokerId(0)]);
        b.controller_id = Some(BrokerId(2));
        let mut out = Effects::new();
        b.on_message(
            Instant(2),
            NodeId::Broker(BrokerId(1)),
            follower_fetch(0),
            &mut out,
        );
        (b, out)
    }

    /// Regression (`correlated-power-loss-fsync` seed 10829): a pending AlterPartition goes to
    /// a newly discovered controller at once, as Kafka's `BrokerToControllerChannelManager`
    /// sends its queued request to the controller it has just learnt of, instead of waiting
    /// for the request timeout; a retry armed by the earlier send is then stale.
    #[test]
    fn a_pending_isr_change_goes_to_a_new_controller_at_once() {
        let (mut b, out) = leader_asking_controller_2_to_add_broker_1();
        let asked = |out: &Effects<BrokerTimer>| {
            alter_partitions_sent(out)
                .into_iter()
                .map(|(to, corr, _)| (to, corr))
                .collect::<Vec<_>>()
        };
        let first = asked(&out);
        assert_eq!(first.len(), 1, "{:?}", out.list);
        assert_eq!(first[0].0, NodeId::Broker(BrokerId(2)));
        // Broker 2 died; broker 1 is the new controller and says so.
        let mut out = Effects::new();
        b.on_message(
            Instant(100),
            NodeId::Broker(BrokerId(1)),
            Message::UpdateMetadata {
                controller: BrokerId(1),
                controller_epoch: ControllerEpoch(2),
                live_brokers: vec![BrokerId(0), BrokerId(1)],
                partitions: vec![],
            },
            &mut out,
        );
        let second = asked(&out);
        assert_eq!(second.len(), 1, "{:?}", out.list);
        assert_eq!(
            second[0].0,
            NodeId::Broker(BrokerId(1)),
            "the request, to the new controller"
        );
        assert_ne!(second[0].1, first[0].1, "a copy of its own");
        // The retry the first send armed is stale; the one the resend armed is not.
        let generation = b.partitions[&tp()].generation;
        let retry = |send| BrokerTimer::AlterPartitionRetry {
            tp: tp(),
            generation,
            send,
        };
        let mut out = Effects::new();
        b.on_timeout(Instant(30_002), retry(1), &mut out);
        assert!(asked(&out).is_empty(), "{:?}", out.list);
        let mut out = Effects::new();
        b.on_timeout(Instant(30_100), retry(2), &mut out);
        let third = asked(&out);
        assert_eq!(third.len(), 1, "{:?}", out.list);
        assert_eq!(third[0].0, NodeId::Broker(BrokerId(1)));
    }

    /// Regression (`controller-split-brain-fenced` seed 10911): only the latest copy of a
    /// pending AlterPartition is answered. The leader used to resend the request under the
    /// same correlation id every 5 s; the controller refused the first copy (INVALID_REQUEST:
    /// the new member's registration was not loaded yet) and carried out the second, and the
    /// leader, reading the refusal as the answer, let its HW pass the member being added.
    #[test]
    fn an_answer_to_an_earlier_copy_of_an_alter_partition_is_ignored() {
        let (mut b, _) = leader_of_t0(vec![BrokerId(0)]);
        let client = NodeId::Producer(0);
        let batch = || RecordBatch::new(vec![(None, Some(vec![1]))], 0).encode();
        b.controller_id = Some(BrokerId(2));
        let mut out = Effects::new();
        b.on_message(Instant(1), client, produce(1, batch()), &mut out);
        let mut out = Effects::new();
        b.on_message(
            Instant(2),
            NodeId::Broker(BrokerId(1)),
            follower_fetch(1),
            &mut out,
        );
        let sent = alter_partitions_sent(&out);
        assert_eq!(sent.len(), 1, "{:?}", out.list);
        let first = sent[0].1;
        // One copy in flight: the retry is armed for the request timeout, not sooner.
        let timeout = b.config.controller_socket_timeout_ms;
        assert!(
            out.list.iter().any(|e| matches!(
                e,
                Effect::SetTimer { after_ms, timer: BrokerTimer::AlterPartitionRetry { .. } }
                    if *after_ms == timeout
            )),
            "{:?}",
            out.list
        );
        // No answer in the request timeout: a second copy, with a correlation id of its own.
        let generation = b.partitions[&tp()].generation;
        let mut out = Effects::new();
        b.on_timeout(
            Instant(2 + timeout),
            BrokerTimer::AlterPartitionRetry {
                tp: tp(),
                generation,
                send: 1,
            },
            &mut out,
        );
        let sent = alter_partitions_sent(&out);
        assert_eq!(sent.len(), 1, "{:?}", out.list);
        let second = sent[0].1;
        assert_ne!(second, first);
        // The refusal of the first copy arrives: it says nothing about the second.
        let mut out = Effects::new();
        b.on_message(
            Instant(3 + timeout),
            NodeId::Broker(BrokerId(2)),
            Message::AlterPartitionResponse {
                corr: first,
                tp: tp(),
                error: ErrorCode::InvalidRequest,
                state: None,
            },
            &mut out,
        );
        match &b.partitions[&tp()].role {
            Role::Leader(l) => assert_eq!(
                l.pending_isr.as_ref().map(|(c, _)| *c),
                Some(second),
                "still pending"
            ),
            _ => panic!("still leader"),
        }
        // Records arrive; the member being added has not fetched them: the HW waits for it.
        let mut out = Effects::new();
        b.on_message(Instant(4 + timeout), client, produce(2, batch()), &mut out);
        assert_eq!(b.partitions[&tp()].high_watermark, Offset(1));
    }

    /// A copy of a pending AlterPartition whose connection to the controller broke is sent
    /// again after `retry.backoff.max.ms`, not only after the request timeout.
    #[test]
    fn an_alter_partition_whose_connection_broke_is_sent_again_after_the_backoff() {
        let (mut b, out) = leader_asking_controller_2_to_add_broker_1();
        assert_eq!(alter_partitions_sent(&out).len(), 1);
        // A connection to another broker breaks: nothing to resend.
        let mut out = Effects::new();
        b.on_disconnect(Instant(10), NodeId::Broker(BrokerId(1)), &mut out);
        assert!(!out.list.iter().any(|e| matches!(
            e,
            Effect::SetTimer {
                timer: BrokerTimer::AlterPartitionRetry { .. },
                ..
            }
        )));
        // The controller's connection breaks: a retry after the backoff.
        let mut out = Effects::new();
        b.on_disconnect(Instant(10), NodeId::Broker(BrokerId(2)), &mut out);
        let generation = b.partitions[&tp()].generation;
        let retry = BrokerTimer::AlterPartitionRetry {
            tp: tp(),
            generation,
            send: 1,
        };
        assert!(
            out.list.iter().any(|e| matches!(
                e,
                Effect::SetTimer { after_ms, timer } if *after_ms == ALTER_PARTITION_RETRY_BACKOFF_MS
                    && *timer == retry
            )),
            "{:?}",
            out.list
        );
        let mut out = Effects::new();
        b.on_timeout(Instant(1_010), retry, &mut out);
        assert_eq!(alter_partitions_sent(&out).len(), 1, "{:?}", out.list);
    }

    /// Regression (`controller-split-brain-fenced` seed 72, `clean-leader-election` seed 63):
    /// an AlterPartition adding a caught-up follower stays pending until it is answered. The
    /// leader used to forget it after 5 s without an answer; the HW then moved past the
    /// follower (cut off again meanwhile), and the controller, slowed by a partition from the
    /// coordination node, carried out the old request: the ISR then named a member missing
    /// records below the HW (strong-isr). Kafka keeps the maximal ISR until the answer.
    #[test]
    fn unanswered_isr_expansion_stays_in_the_maximal_isr_until_answered() {
        let (mut b, _) = leader_of_t0(vec![BrokerId(0)]);
        let client = NodeId::Producer(0);
        let batch = || RecordBatch::new(vec![(None, Some(vec![1]))], 0).encode();
        let mut out = Effects::new();
        // Broker 0 is also the controller.
        b.controller_id = Some(BrokerId(0));
        let state = |isr: Vec<BrokerId>, partition_epoch: i32| PartitionState {
            tp: tp(),
            leader: Some(BrokerId(0)),
            leader_epoch: LeaderEpoch(0),
            isr,
            replicas: vec![BrokerId(0), BrokerId(1)],
            partition_epoch: ZkVersion(partition_epoch),
            controller_epoch: ControllerEpoch(1),
        };
        b.on_message(Instant(1), client, produce(1, batch()), &mut out);
        assert_eq!(b.partitions[&tp()].high_watermark, Offset(1));
        // The follower catches up: the leader asks to add it to the ISR.
        let mut out = Effects::new();
        b.on_message(
            Instant(2),
            NodeId::Broker(BrokerId(1)),
            follower_fetch(1),
            &mut out,
        );
        let asked = |out: &Effects<BrokerTimer>| {
            alter_partitions_sent(out)
                .into_iter()
                .map(|(_, corr, new_isr)| (corr, new_isr))
                .collect::<Vec<_>>()
        };
        let first = asked(&out);
        assert_eq!(first.len(), 1, "{:?}", out.list);
        assert_eq!(first[0].1, vec![BrokerId(0), BrokerId(1)]);
        // No answer within the request timeout: the request goes out again.
        let generation = b.partitions[&tp()].generation;
        let mut out = Effects::new();
        b.on_timeout(
            Instant(30_002),
            BrokerTimer::AlterPartitionRetry {
                tp: tp(),
                generation,
                send: 1,
            },
            &mut out,
        );
        let second = asked(&out);
        assert_eq!(second.len(), 1, "{:?}", out.list);
        assert_eq!(second[0].1, first[0].1, "the same ISR asked for");
        // Records arrive; the follower has not fetched them: the HW stays at its log end.
        let mut out = Effects::new();
        b.on_message(Instant(30_003), client, produce(2, batch()), &mut out);
        assert_eq!(
            b.partitions[&tp()].high_watermark,
            Offset(1),
            "the member being added holds the HW back"
        );
        assert!(produce_responses(&out).is_empty());
        // The controller carried the request out: the answer makes the ISR [0, 1].
        let mut out = Effects::new();
        b.on_message(
            Instant(30_004),
            NodeId::Broker(BrokerId(0)),
            Message::AlterPartitionResponse {
                corr: second[0].0,
                tp: tp(),
                error: ErrorCode::None,
                state: Some(state(vec![BrokerId(0), BrokerId(1)], 1)),
            },
            &mut out,
        );
        assert_eq!(b.partitions[&tp()].high_watermark, Offset(1));
        match &b.partitions[&tp()].role {
            Role::Leader(l) => {
                assert_eq!(l.isr, vec![BrokerId(0), BrokerId(1)]);
                assert!(l.pending_isr.is_none());
            }
            _ => panic!("still leader"),
        }
    }
}
