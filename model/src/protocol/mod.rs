//! Messages exchanged between nodes, modelled on Kafka's APIs and ZooKeeper's client protocol.
//!
//! Every message travels as one length-prefixed frame over simulated TCP (see `sim/transport`).
//! Requests carry a [`CorrelationId`] chosen by the sender; the matching response echoes it.
//! Field names follow Kafka's request schemas (`clients/src/main/resources/common/message/*.json`):
//! `fetch_offset`, `current_leader_epoch`, `last_fetched_epoch`, `high_watermark`, ...
//!
//! The message enum ([`Message`]) lives here; the types its variants carry live in one file per
//! API family, all re-exported here: `errors` (Kafka's error codes), `produce`, `fetch` (with
//! OffsetForLeaderEpoch), `metadata`, `controller_apis` (LeaderAndIsr, UpdateMetadata,
//! StopReplica, AlterPartition), `group` (FindCoordinator, OffsetCommit, OffsetFetch) and
//! `coordination` (the ZooKeeper-style client protocol). The
//! files are private modules, so that `use crate::protocol::*` brings in the types and not
//! module names that could clash with the importer's own.

mod controller_apis;
mod coordination;
mod errors;
mod fetch;
mod group;
mod metadata;
mod produce;
mod txn;

pub use controller_apis::*;
pub use coordination::*;
pub use errors::*;
pub use fetch::*;
pub use group::*;
pub use metadata::*;
pub use produce::*;
pub use txn::*;

use crate::types::*;
use serde::{Deserialize, Serialize};

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
        /// `ProduceRequest.json`'s `TransactionalId` (KIP-98): the producer's
        /// `transactional.id`, `None` without one. A leader verifies a transactional batch
        /// with the coordinator of this id (KIP-890 part 1).
        transactional_id: Option<String>,
        /// `(partition, batch bytes)`, at most one batch per partition.
        partitions: Vec<(TopicPartition, Vec<u8>)>,
    },
    /// One answer per partition of the request, in the request's order.
    ProduceResponse {
        corr: CorrelationId,
        partitions: Vec<PartitionProduceResponse>,
    },
    /// A fetch from a consumer (`replica_id = None`) or a follower (`Some`), for every
    /// partition the fetcher reads from the receiving broker (Kafka's replica fetcher thread
    /// sends one per leader broker; the consumer one per node). The broker answers once the
    /// partitions together have `min_bytes` readable, `max_wait_ms` elapsed, or one of them
    /// has an error (Kafka's DelayedFetch).
    Fetch {
        corr: CorrelationId,
        replica_id: Option<BrokerId>,
        /// The follower's broker epoch (KIP-380), so the leader can ignore a previous incarnation.
        broker_epoch: BrokerEpoch,
        /// The bytes the whole response may carry (`fetch.max.bytes`,
        /// `replica.fetch.response.max.bytes`); the first batch is returned whole even if
        /// larger.
        max_bytes: u32,
        /// The bytes, summed over the partitions, the broker waits for (`fetch.min.bytes`,
        /// `replica.fetch.min.bytes`).
        min_bytes: u32,
        max_wait_ms: u64,
        isolation_level: IsolationLevel,
        /// The partitions, in the fetcher's order (the response budget goes to the first).
        partitions: Vec<FetchPartition>,
    },
    /// One answer per partition of the request, in the request's order.
    FetchResponse {
        corr: CorrelationId,
        partitions: Vec<FetchPartitionResponse>,
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
    /// Kafka's InitProducerId: a new producer id (idempotent producer, `transactional_id`
    /// `None`, answered by any broker) or, with a `transactional_id`, the id and a bumped epoch
    /// from the transaction coordinator (aborting or completing the previous epoch's open
    /// transaction; CONCURRENT_TRANSACTIONS while it completes). `producer_id` /
    /// `producer_epoch` are the caller's current ones (-1 / -1 for none; KIP-360).
    InitProducerId {
        corr: CorrelationId,
        transactional_id: Option<String>,
        /// `transaction.timeout.ms` (ignored without a `transactional_id`).
        transaction_timeout_ms: u64,
        producer_id: ProducerId,
        producer_epoch: ProducerEpoch,
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
    /// The controller's view of the cluster for the broker's metadata cache.
    UpdateMetadata {
        controller: BrokerId,
        controller_epoch: ControllerEpoch,
        live_brokers: Vec<BrokerId>,
        /// With `full`, every partition the controller knows; otherwise only those whose state
        /// the controller event behind this request changed (Kafka's
        /// `addUpdateMetadataRequestForBrokers(brokers, partitions)`).
        partitions: Vec<PartitionState>,
        /// Partitions of topics deleted by that event, to drop from the cache (Kafka marks
        /// them with leader -2, `LeaderAndIsr.LeaderDuringDelete`). Empty when `full`.
        deleted_partitions: Vec<TopicPartition>,
        /// The request lists the whole cluster and replaces the cache: sent to every live
        /// broker after a broker registered or a controller took over (Kafka's
        /// `onBrokerStartup` and `onControllerFailover` send all partitions too), and on a
        /// resend after a failed send. Otherwise it is merged into the cache.
        full: bool,
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

    // ---- application -> its own client ----
    /// The application calls `close()` on its client (the testbed's `close` and `client-leave`
    /// faults deliver it to the client's own node): a consumer commits as its commit mode does
    /// on close, leaves its group and stops; a producer stops taking records and completes
    /// what it buffered.
    Close,

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

    // ---- clients <-> group coordinator (see `group.rs`) ----
    /// Kafka's FindCoordinator for a group (key type GROUP): which broker coordinates
    /// `key`? Any broker answers; one that finds `__consumer_offsets` missing asks the
    /// controller to create it (`KafkaApis.handleFindCoordinatorRequest`).
    /// Find the coordinator of `key` (a `group.id` or a `transactional.id`).
    FindCoordinator {
        corr: CorrelationId,
        key: String,
        key_type: CoordinatorType,
    },
    /// `coordinator` is the leader of the group's `__consumer_offsets` partition when `error`
    /// is NONE; otherwise COORDINATOR_NOT_AVAILABLE and `None`.
    FindCoordinatorResponse {
        corr: CorrelationId,
        error: ErrorCode,
        coordinator: Option<BrokerId>,
    },
    /// Kafka's OffsetCommit (v8 fields that matter here): store `offsets` for `group_id`.
    /// Answered only once the records are committed in `__consumer_offsets`.
    OffsetCommit {
        corr: CorrelationId,
        group_id: String,
        /// -1 for a simple consumer (no group membership), as `KafkaConsumer.assign()` sends.
        generation_id: i32,
        member_id: String,
        offsets: Vec<OffsetCommitPartition>,
    },
    /// One answer per partition of the request, in its order.
    OffsetCommitResponse {
        corr: CorrelationId,
        partitions: Vec<OffsetCommitPartitionResponse>,
    },
    /// Kafka's OffsetFetch for one group: the committed offsets of `partitions`. With
    /// `require_stable` (KIP-447; the consumer sets it under `isolation.level =
    /// read_committed`) the coordinator answers UNSTABLE_OFFSET_COMMIT while a transaction
    /// holds a pending offset for one of them.
    OffsetFetch {
        corr: CorrelationId,
        group_id: String,
        partitions: Vec<TopicPartition>,
        require_stable: bool,
    },
    /// `error` is a group-level error (NOT_COORDINATOR, ...); with NONE, one entry per asked
    /// partition, in the request's order.
    OffsetFetchResponse {
        corr: CorrelationId,
        error: ErrorCode,
        partitions: Vec<OffsetFetchPartition>,
    },

    /// Kafka's JoinGroup (v5+, protocol type `consumer`): join or rejoin `group_id`. An empty
    /// `member_id` from a dynamic member is answered MEMBER_ID_REQUIRED with an id (KIP-394).
    JoinGroup {
        corr: CorrelationId,
        group_id: String,
        member_id: String,
        group_instance_id: Option<String>,
        session_timeout_ms: u64,
        /// `max.poll.interval.ms`.
        rebalance_timeout_ms: u64,
        /// The assignors the member supports, in its order of preference.
        protocols: Vec<String>,
        /// The member's subscription (the same for every protocol here).
        subscription: GroupSubscription,
    },
    /// The generation's outcome for one member; the leader gets every member's subscription.
    JoinGroupResponse {
        corr: CorrelationId,
        error: ErrorCode,
        generation_id: i32,
        protocol_name: Option<String>,
        leader: String,
        member_id: String,
        /// Empty unless the receiver is the leader.
        members: Vec<JoinGroupMember>,
    },
    /// Kafka's SyncGroup: the leader sends the assignment, every member gets its share.
    SyncGroup {
        corr: CorrelationId,
        group_id: String,
        generation_id: i32,
        member_id: String,
        group_instance_id: Option<String>,
        assignments: Vec<SyncGroupAssignment>,
    },
    SyncGroupResponse {
        corr: CorrelationId,
        error: ErrorCode,
        protocol_name: Option<String>,
        /// The member's partitions.
        partitions: Vec<TopicPartition>,
    },
    /// Kafka's Heartbeat.
    Heartbeat {
        corr: CorrelationId,
        group_id: String,
        generation_id: i32,
        member_id: String,
        group_instance_id: Option<String>,
    },
    HeartbeatResponse {
        corr: CorrelationId,
        error: ErrorCode,
    },
    /// Kafka's LeaveGroup for one member.
    LeaveGroup {
        corr: CorrelationId,
        group_id: String,
        member_id: String,
        group_instance_id: Option<String>,
    },
    LeaveGroupResponse {
        corr: CorrelationId,
        error: ErrorCode,
    },

    // ---- transactions (KIP-98, KIP-447, KIP-890) ----
    /// Add `partitions` to the producer's ongoing transaction (opening one from Empty or
    /// Complete*). With `verify_only` (KIP-890 part 1, sent by a partition leader on the first
    /// transactional produce of a producer to that partition) the coordinator only answers
    /// whether the partitions are already in the ongoing transaction, changing nothing.
    AddPartitionsToTxn {
        corr: CorrelationId,
        transactional_id: String,
        producer_id: ProducerId,
        producer_epoch: ProducerEpoch,
        partitions: Vec<TopicPartition>,
        verify_only: bool,
    },
    /// One error per partition, in the request's order (NONE, CONCURRENT_TRANSACTIONS,
    /// PRODUCER_FENCED, INVALID_PRODUCER_ID_MAPPING, INVALID_TXN_STATE, NOT_COORDINATOR,
    /// COORDINATOR_LOAD_IN_PROGRESS, TRANSACTION_ABORTABLE for a verification that fails).
    AddPartitionsToTxnResponse {
        corr: CorrelationId,
        results: Vec<(TopicPartition, ErrorCode)>,
    },
    /// Add the group's `__consumer_offsets` partition to the transaction, before
    /// TxnOffsetCommit (`sendOffsetsToTransaction`).
    AddOffsetsToTxn {
        corr: CorrelationId,
        transactional_id: String,
        producer_id: ProducerId,
        producer_epoch: ProducerEpoch,
        group_id: String,
    },
    AddOffsetsToTxnResponse {
        corr: CorrelationId,
        error: ErrorCode,
    },
    /// Commit (`committed`) or abort the producer's transaction. Answered once the Prepare*
    /// state is committed in `__transaction_state`; the markers follow asynchronously.
    EndTxn {
        corr: CorrelationId,
        transactional_id: String,
        producer_id: ProducerId,
        producer_epoch: ProducerEpoch,
        committed: bool,
    },
    /// With `transaction.version = 2` (KIP-890 part 2) the coordinator bumps the epoch at every
    /// EndTxn and returns the new one here; otherwise `producer_id` / `producer_epoch` echo the
    /// request's.
    EndTxnResponse {
        corr: CorrelationId,
        error: ErrorCode,
        producer_id: ProducerId,
        producer_epoch: ProducerEpoch,
    },
    /// From a transaction coordinator to a partition leader: append these markers.
    WriteTxnMarkers {
        corr: CorrelationId,
        markers: Vec<WritableTxnMarker>,
    },
    /// One entry per marker of the request, in its order.
    WriteTxnMarkersResponse {
        corr: CorrelationId,
        markers: Vec<WritableTxnMarkerResult>,
    },
    /// Offsets committed as part of a transaction, sent to the group coordinator: pending until
    /// the transaction's marker reaches the group's `__consumer_offsets` partition (applied on
    /// COMMIT, dropped on ABORT). KIP-447: fenced by `generation_id` / `member_id` /
    /// `group_instance_id` like OffsetCommit (unless `sim.txn.offset-commit-fencing = false`).
    TxnOffsetCommit {
        corr: CorrelationId,
        transactional_id: String,
        group_id: String,
        producer_id: ProducerId,
        producer_epoch: ProducerEpoch,
        generation_id: i32,
        member_id: String,
        group_instance_id: Option<String>,
        offsets: Vec<OffsetCommitPartition>,
    },
    /// One answer per partition, in the request's order.
    TxnOffsetCommitResponse {
        corr: CorrelationId,
        partitions: Vec<OffsetCommitPartitionResponse>,
    },

    // ---- broker -> controller ----
    /// Create `topic` (an internal topic the broker needs: ZooKeeper-mode Kafka's
    /// `AutoTopicCreationManager` writes `/brokers/topics/T` for it). Sent by a broker to
    /// every live broker, as the testbed delivers admin requests, so that whichever is or
    /// becomes the controller carries it out. Idempotent.
    CreateTopics {
        topic: String,
        partitions: i32,
        replication_factor: i32,
    },
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
            Message::Close => "Close",
            Message::AlterPartitionResponse { .. } => "AlterPartitionResponse",
            Message::FindCoordinator { .. } => "FindCoordinator",
            Message::FindCoordinatorResponse { .. } => "FindCoordinatorResponse",
            Message::OffsetCommit { .. } => "OffsetCommit",
            Message::OffsetCommitResponse { .. } => "OffsetCommitResponse",
            Message::OffsetFetch { .. } => "OffsetFetch",
            Message::OffsetFetchResponse { .. } => "OffsetFetchResponse",
            Message::CreateTopics { .. } => "CreateTopics",
            Message::JoinGroup { .. } => "JoinGroup",
            Message::JoinGroupResponse { .. } => "JoinGroupResponse",
            Message::SyncGroup { .. } => "SyncGroup",
            Message::SyncGroupResponse { .. } => "SyncGroupResponse",
            Message::Heartbeat { .. } => "Heartbeat",
            Message::HeartbeatResponse { .. } => "HeartbeatResponse",
            Message::LeaveGroup { .. } => "LeaveGroup",
            Message::LeaveGroupResponse { .. } => "LeaveGroupResponse",
            Message::AddPartitionsToTxn { .. } => "AddPartitionsToTxn",
            Message::AddPartitionsToTxnResponse { .. } => "AddPartitionsToTxnResponse",
            Message::AddOffsetsToTxn { .. } => "AddOffsetsToTxn",
            Message::AddOffsetsToTxnResponse { .. } => "AddOffsetsToTxnResponse",
            Message::EndTxn { .. } => "EndTxn",
            Message::EndTxnResponse { .. } => "EndTxnResponse",
            Message::WriteTxnMarkers { .. } => "WriteTxnMarkers",
            Message::WriteTxnMarkersResponse { .. } => "WriteTxnMarkersResponse",
            Message::TxnOffsetCommit { .. } => "TxnOffsetCommit",
            Message::TxnOffsetCommitResponse { .. } => "TxnOffsetCommitResponse",
        }
    }
}
