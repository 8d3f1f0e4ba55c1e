//! Messages exchanged between nodes, modelled on Kafka's APIs and ZooKeeper's client protocol.
//!
//! Every message travels as one length-prefixed frame over simulated TCP (see `sim/transport`).
//! Requests carry a [`CorrelationId`] chosen by the sender; the matching response echoes it.
//! Field names follow Kafka's request schemas (`clients/src/main/resources/common/message/*.json`):
//! `fetch_offset`, `current_leader_epoch`, `last_fetched_epoch`, `high_watermark`, ...

use crate::types::*;
use serde::{Deserialize, Serialize};

/// Kafka error codes used by the model (names as in `org.apache.kafka.common.protocol.Errors`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum ErrorCode {
    None,
    /// Offset is outside the log's `[log_start_offset, log_end_offset]` (or above the HW for
    /// consumers).
    OffsetOutOfRange,
    CorruptMessage,
    UnknownTopicOrPartition,
    LeaderNotAvailable,
    NotLeaderOrFollower,
    RequestTimedOut,
    /// The ISR is smaller than `min.insync.replicas`; nothing was appended.
    NotEnoughReplicas,
    /// Appended, but the ISR shrank below `min.insync.replicas` before the write was
    /// acknowledged by it: the write may or may not survive.
    NotEnoughReplicasAfterAppend,
    StaleControllerEpoch,
    OutOfOrderSequenceNumber,
    DuplicateSequenceNumber,
    InvalidProducerEpoch,
    UnknownProducerId,
    /// The request's leader epoch is older than the receiver's (KIP-320).
    FencedLeaderEpoch,
    /// The request's leader epoch is newer than the receiver's (KIP-320).
    UnknownLeaderEpoch,
    /// The partition's replica is not in the state the request assumes (AlterPartition).
    InvalidUpdateVersion,
    StaleBrokerEpoch,
    /// AlterPartition named a replica that is not eligible to join the ISR, e.g. with a broker
    /// epoch from an earlier incarnation (KIP-903).
    IneligibleReplica,
    KafkaStorageError,
    InvalidRequest,
    NotController,
    /// The broker does not support the request's version, e.g. a consumer's OffsetForLeaderEpoch
    /// (v3+, KIP-320, Kafka 2.1) sent to a broker running an older protocol.
    UnsupportedVersion,
}

impl ErrorCode {
    /// Whether a client may retry the same request (Kafka's `RetriableException` family).
    pub fn is_retriable(self) -> bool {
        matches!(
            self,
            ErrorCode::NotLeaderOrFollower
                | ErrorCode::LeaderNotAvailable
                | ErrorCode::RequestTimedOut
                | ErrorCode::NotEnoughReplicas
                | ErrorCode::NotEnoughReplicasAfterAppend
                | ErrorCode::UnknownTopicOrPartition
                | ErrorCode::FencedLeaderEpoch
                | ErrorCode::UnknownLeaderEpoch
                | ErrorCode::KafkaStorageError
                | ErrorCode::CorruptMessage
        )
    }

    /// Kafka's constant name, e.g. `NOT_LEADER_OR_FOLLOWER`.
    pub fn kafka_name(self) -> &'static str {
        match self {
            ErrorCode::None => "NONE",
            ErrorCode::OffsetOutOfRange => "OFFSET_OUT_OF_RANGE",
            ErrorCode::CorruptMessage => "CORRUPT_MESSAGE",
            ErrorCode::UnknownTopicOrPartition => "UNKNOWN_TOPIC_OR_PARTITION",
            ErrorCode::LeaderNotAvailable => "LEADER_NOT_AVAILABLE",
            ErrorCode::NotLeaderOrFollower => "NOT_LEADER_OR_FOLLOWER",
            ErrorCode::RequestTimedOut => "REQUEST_TIMED_OUT",
            ErrorCode::NotEnoughReplicas => "NOT_ENOUGH_REPLICAS",
            ErrorCode::NotEnoughReplicasAfterAppend => "NOT_ENOUGH_REPLICAS_AFTER_APPEND",
            ErrorCode::StaleControllerEpoch => "STALE_CONTROLLER_EPOCH",
            ErrorCode::OutOfOrderSequenceNumber => "OUT_OF_ORDER_SEQUENCE_NUMBER",
            ErrorCode::DuplicateSequenceNumber => "DUPLICATE_SEQUENCE_NUMBER",
            ErrorCode::InvalidProducerEpoch => "INVALID_PRODUCER_EPOCH",
            ErrorCode::UnknownProducerId => "UNKNOWN_PRODUCER_ID",
            ErrorCode::FencedLeaderEpoch => "FENCED_LEADER_EPOCH",
            ErrorCode::UnknownLeaderEpoch => "UNKNOWN_LEADER_EPOCH",
            ErrorCode::InvalidUpdateVersion => "INVALID_UPDATE_VERSION",
            ErrorCode::StaleBrokerEpoch => "STALE_BROKER_EPOCH",
            ErrorCode::IneligibleReplica => "INELIGIBLE_REPLICA",
            ErrorCode::KafkaStorageError => "KAFKA_STORAGE_ERROR",
            ErrorCode::InvalidRequest => "INVALID_REQUEST",
            ErrorCode::NotController => "NOT_CONTROLLER",
            ErrorCode::UnsupportedVersion => "UNSUPPORTED_VERSION",
        }
    }
}

/// `acks`: how many replicas must have a record before the leader answers a produce.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Acks {
    /// `acks=0`: the producer does not wait for any answer.
    None,
    /// `acks=1`: the leader answers once the record is in its own log.
    Leader,
    /// `acks=all` (`-1`): the leader answers once every ISR member has it (HW passed it).
    All,
}

/// `isolation.level`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum IsolationLevel {
    ReadUncommitted,
    ReadCommitted,
}

/// The replication state of one partition as the controller decided it: the payload of
/// LeaderAndIsr and UpdateMetadata, and (as JSON) of the `/brokers/topics/T/partitions/P/state`
/// znode.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionState {
    pub tp: TopicPartition,
    /// `None` when the partition is offline (no eligible replica).
    pub leader: Option<BrokerId>,
    pub leader_epoch: LeaderEpoch,
    pub isr: Vec<BrokerId>,
    /// Assigned replicas (AR), preferred leader first.
    pub replicas: Vec<BrokerId>,
    /// The zkVersion of the state znode this state was read from or written as; AlterPartition
    /// must name it (Kafka's `partition_epoch`).
    pub partition_epoch: ZkVersion,
    /// The controller epoch that last wrote this state.
    pub controller_epoch: ControllerEpoch,
}

/// One partition in a metadata response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionMetadata {
    pub tp: TopicPartition,
    pub error: ErrorCode,
    pub leader: Option<BrokerId>,
    pub leader_epoch: LeaderEpoch,
    pub replicas: Vec<BrokerId>,
    pub isr: Vec<BrokerId>,
}

/// The answer to OffsetForLeaderEpoch, and the `diverging_epoch` of a fetch response
/// (KIP-101, KIP-279, KIP-595).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct EpochEndOffset {
    /// The largest epoch in the leader's cache that is `<=` the requested epoch.
    pub leader_epoch: LeaderEpoch,
    /// The start offset of the first epoch after `leader_epoch` (or the LEO if there is none).
    pub end_offset: Offset,
}

/// ZooKeeper-style requests (see `coordination`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ZkRequest {
    /// Open a session; answered with [`ZkReply::Connected`].
    Connect { session_timeout_ms: u64 },
    /// Keep the session alive; any request also does.
    Ping,
    /// Create `path` (its parent must exist). Ephemeral znodes vanish with the session.
    Create {
        path: String,
        data: Vec<u8>,
        ephemeral: bool,
    },
    /// Replace `path`'s data if its version equals `expected_version` (`None`: any version).
    SetData {
        path: String,
        data: Vec<u8>,
        expected_version: Option<ZkVersion>,
    },
    /// Read `path`; `watch` leaves a one-shot data watch (fires on change or delete).
    GetData { path: String, watch: bool },
    /// List `path`'s children, sorted; `watch` leaves a one-shot child watch.
    GetChildren { path: String, watch: bool },
    /// Delete `path` (it must have no children) if its version matches.
    Delete {
        path: String,
        expected_version: Option<ZkVersion>,
    },
    /// All-or-nothing: every op succeeds or none is applied (ZooKeeper `multi`).
    Multi { ops: Vec<ZkOp> },
    /// Close the session now, deleting its ephemeral znodes (a clean shutdown).
    Close,
}

/// One operation inside [`ZkRequest::Multi`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ZkOp {
    /// Fails the multi unless `path` exists with this version.
    Check { path: String, version: ZkVersion },
    Create {
        path: String,
        data: Vec<u8>,
        ephemeral: bool,
    },
    SetData {
        path: String,
        data: Vec<u8>,
        expected_version: Option<ZkVersion>,
    },
    Delete {
        path: String,
        expected_version: Option<ZkVersion>,
    },
}

/// Successful ZooKeeper-style replies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ZkReply {
    Connected {
        session: SessionId,
        session_timeout_ms: u64,
    },
    Pong,
    Created {
        path: String,
    },
    /// New version after SetData.
    Stat {
        version: ZkVersion,
    },
    Data {
        data: Vec<u8>,
        version: ZkVersion,
    },
    Children {
        children: Vec<String>,
    },
    Deleted,
    /// Per-op results of a successful multi.
    Multi {
        results: Vec<ZkReply>,
    },
    Closed,
}

/// ZooKeeper-style errors (as `KeeperException.Code`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ZkError {
    NoNode,
    NodeExists,
    BadVersion,
    NotEmpty,
    SessionExpired,
    /// A request other than Connect arrived without a live session.
    NoSession,
}

/// What a watch saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum WatchKind {
    NodeCreated,
    NodeDeleted,
    NodeDataChanged,
    NodeChildrenChanged,
}

/// Every message a node can send.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Message {
    // ---- coordination node ----
    /// A request to the coordination node. `session` is ignored for `Connect`.
    Zk {
        corr: CorrelationId,
        session: SessionId,
        req: ZkRequest,
        /// The highest watch notification `seq` the client has taken, in order, on this
        /// session (0: none). The server resends every later one before it answers.
        watch_ack: u64,
        /// Every request of this client below this correlation id has been answered: the
        /// server may forget those answers, and drops a late copy of such a request.
        answered_below: CorrelationId,
    },
    ZkResponse {
        corr: CorrelationId,
        result: Result<ZkReply, ZkError>,
    },
    /// A one-shot watch fired. `seq` numbers the notifications of one session from 1; the
    /// client takes them strictly in order and acknowledges them in its next request, so a
    /// notification the network dropped is sent again (ZooKeeper delivers a session's watch
    /// events in order over its connection, and re-arms them on reconnect with `setWatches`:
    /// a live session never misses one).
    ZkWatch {
        session: SessionId,
        path: String,
        kind: WatchKind,
        seq: u64,
    },
    /// The session is gone (expired or closed): its ephemerals are deleted and its watches dropped.
    ZkSessionExpired { session: SessionId },

    // ---- clients <-> brokers ----
    Metadata {
        corr: CorrelationId,
        topics: Vec<String>,
    },
    MetadataResponse {
        corr: CorrelationId,
        brokers: Vec<BrokerId>,
        controller: Option<BrokerId>,
        partitions: Vec<PartitionMetadata>,
    },
    /// Kafka's ProduceRequest: one record batch (v2 layout, base offset 0 as sent by the
    /// producer) for each of several partitions led by the receiving broker. With acks=all
    /// the broker answers once every partition is done (Kafka's DelayedProduce).
    Produce {
        corr: CorrelationId,
        acks: Acks,
        timeout_ms: u64,
        /// `(partition, batch bytes)`, at most one batch per partition.
        partitions: Vec<(TopicPartition, Vec<u8>)>,
    },
    /// One answer per partition of the request, in the request's order.
    ProduceResponse {
        corr: CorrelationId,
        partitions: Vec<PartitionProduceResponse>,
    },
    /// A fetch from a consumer (`replica_id = None`) or a follower (`Some`).
    Fetch {
        corr: CorrelationId,
        replica_id: Option<BrokerId>,
        /// The follower's broker epoch (KIP-380), so the leader can ignore a previous incarnation.
        broker_epoch: BrokerEpoch,
        tp: TopicPartition,
        fetch_offset: Offset,
        /// Epoch of the last batch the fetcher holds before `fetch_offset` (KIP-595 truncation
        /// check); `UNKNOWN` to skip the check.
        last_fetched_epoch: LeaderEpoch,
        /// The fetcher's view of the current leader epoch (KIP-320); `UNKNOWN` to skip fencing.
        current_leader_epoch: LeaderEpoch,
        max_bytes: u32,
        min_bytes: u32,
        max_wait_ms: u64,
        isolation_level: IsolationLevel,
    },
    FetchResponse {
        corr: CorrelationId,
        tp: TopicPartition,
        error: ErrorCode,
        high_watermark: Offset,
        last_stable_offset: Offset,
        log_start_offset: Offset,
        /// Set when the fetcher's log diverges from the leader's: truncate to the end offset
        /// of that epoch and fetch again.
        diverging_epoch: Option<EpochEndOffset>,
        /// The leader epoch of the answering leader.
        leader_epoch: LeaderEpoch,
        /// Whole record batches, in offset order.
        batches: Vec<Vec<u8>>,
    },
    OffsetForLeaderEpoch {
        corr: CorrelationId,
        replica_id: Option<BrokerId>,
        tp: TopicPartition,
        current_leader_epoch: LeaderEpoch,
        leader_epoch: LeaderEpoch,
    },
    OffsetForLeaderEpochResponse {
        corr: CorrelationId,
        tp: TopicPartition,
        error: ErrorCode,
        end: EpochEndOffset,
    },
    /// ListOffsets: `timestamp` -2 earliest, -1 latest (Kafka's sentinel values).
    ListOffsets {
        corr: CorrelationId,
        tp: TopicPartition,
        timestamp: i64,
        current_leader_epoch: LeaderEpoch,
        isolation_level: IsolationLevel,
    },
    ListOffsetsResponse {
        corr: CorrelationId,
        tp: TopicPartition,
        error: ErrorCode,
        offset: Offset,
        leader_epoch: LeaderEpoch,
    },
    InitProducerId {
        corr: CorrelationId,
        transactional_id: Option<String>,
    },
    InitProducerIdResponse {
        corr: CorrelationId,
        error: ErrorCode,
        producer_id: ProducerId,
        producer_epoch: ProducerEpoch,
    },

    // ---- controller <-> brokers ----
    LeaderAndIsr {
        controller: BrokerId,
        controller_epoch: ControllerEpoch,
        /// The target broker's epoch as the controller knows it (KIP-380).
        broker_epoch: BrokerEpoch,
        partitions: Vec<PartitionState>,
    },
    LeaderAndIsrResponse {
        controller_epoch: ControllerEpoch,
        error: ErrorCode,
    },
    UpdateMetadata {
        controller: BrokerId,
        controller_epoch: ControllerEpoch,
        live_brokers: Vec<BrokerId>,
        partitions: Vec<PartitionState>,
    },
    /// Stop serving partitions; with `delete_partitions`, also delete their logs (topic
    /// deletion). Kafka's StopReplica (KIP-570 adds leader epochs; not modelled).
    StopReplica {
        controller: BrokerId,
        controller_epoch: ControllerEpoch,
        broker_epoch: BrokerEpoch,
        partitions: Vec<TopicPartition>,
        delete_partitions: bool,
    },
    StopReplicaResponse {
        controller_epoch: ControllerEpoch,
        error: ErrorCode,
    },

    // ---- admin -> controller ----
    /// Increase `topic`'s partition count to `assignment.len()`: `assignment` is the whole new
    /// replica assignment (existing partitions unchanged, new ones appended), as Kafka's
    /// `AdminZkClient.addPartitions` computes it. The testbed's scheduled `create-partitions`
    /// action delivers it to every running broker; the active controller carries it out (and a
    /// later one does if none is active now). A request that does not increase the count is a
    /// no-op (the scenario loader refuses it with Kafka's message).
    CreatePartitions {
        topic: String,
        assignment: Vec<Vec<BrokerId>>,
    },
    /// Delete `topic` (Kafka's DeleteTopics; ZooKeeper mode's `/admin/delete_topics/T`).
    DeleteTopics { topic: String },

    /// The leader asks the controller to change the ISR (KIP-497).
    AlterPartition {
        corr: CorrelationId,
        broker: BrokerId,
        broker_epoch: BrokerEpoch,
        tp: TopicPartition,
        leader_epoch: LeaderEpoch,
        new_isr: Vec<BrokerId>,
        /// The broker epoch of each `new_isr` member as the leader saw it in that member's
        /// fetches (KIP-903), so the controller can refuse a member from an older incarnation.
        new_isr_epochs: Vec<BrokerEpoch>,
        partition_epoch: ZkVersion,
    },
    AlterPartitionResponse {
        corr: CorrelationId,
        tp: TopicPartition,
        error: ErrorCode,
        /// The committed state on success.
        state: Option<PartitionState>,
    },
}

/// A partition's answer inside a [`Message::ProduceResponse`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionProduceResponse {
    pub tp: TopicPartition,
    pub error: ErrorCode,
    /// Offset of the batch's first record when `error` is `None` (or a duplicate), else -1.
    pub base_offset: Offset,
    pub log_start_offset: Offset,
}

impl Message {
    /// Whether this message answers a request, or is pushed by a server to a client on the
    /// client's connection (ZooKeeper's watch notifications and session expiry): it travels
    /// back on the connection the client opened, as in Kafka's and ZooKeeper's protocols.
    pub fn is_reply(&self) -> bool {
        let api = self.api_name();
        api.ends_with("Response") || matches!(api, "ZkWatch" | "ZkSessionExpired")
    }

    /// The API name, for logs and reports (`Produce`, `FetchResponse`, ...).
    pub fn api_name(&self) -> &'static str {
        match self {
            Message::Zk { .. } => "Zk",
            Message::ZkResponse { .. } => "ZkResponse",
            Message::ZkWatch { .. } => "ZkWatch",
            Message::ZkSessionExpired { .. } => "ZkSessionExpired",
            Message::Metadata { .. } => "Metadata",
            Message::MetadataResponse { .. } => "MetadataResponse",
            Message::Produce { .. } => "Produce",
            Message::ProduceResponse { .. } => "ProduceResponse",
            Message::Fetch { .. } => "Fetch",
            Message::FetchResponse { .. } => "FetchResponse",
            Message::OffsetForLeaderEpoch { .. } => "OffsetForLeaderEpoch",
            Message::OffsetForLeaderEpochResponse { .. } => "OffsetForLeaderEpochResponse",
            Message::ListOffsets { .. } => "ListOffsets",
            Message::ListOffsetsResponse { .. } => "ListOffsetsResponse",
            Message::InitProducerId { .. } => "InitProducerId",
            Message::InitProducerIdResponse { .. } => "InitProducerIdResponse",
            Message::LeaderAndIsr { .. } => "LeaderAndIsr",
            Message::LeaderAndIsrResponse { .. } => "LeaderAndIsrResponse",
            Message::UpdateMetadata { .. } => "UpdateMetadata",
            Message::AlterPartition { .. } => "AlterPartition",
            Message::StopReplica { .. } => "StopReplica",
            Message::StopReplicaResponse { .. } => "StopReplicaResponse",
            Message::CreatePartitions { .. } => "CreatePartitions",
            Message::DeleteTopics { .. } => "DeleteTopics",
            Message::AlterPartitionResponse { .. } => "AlterPartitionResponse",
        }
    }
}
