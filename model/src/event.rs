//! Internal events (for `events.jsonl` and the invariant checkers) and client operations (for
//! the Jepsen-style `history.jsonl`).
//!
//! State machines emit these as effects; the shell stamps them with the simulated time and the
//! emitting node. They are plain data: adding a field never changes what a run does.

use crate::protocol::ErrorCode;
use crate::types::*;
use serde::{Deserialize, Serialize};

/// Something that happened inside a node, in Kafka's vocabulary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Event {
    /// A broker process started and recovered its logs.
    BrokerStarted { broker: BrokerId },
    /// A broker registered under `/brokers/ids` with this broker epoch (KIP-380).
    BrokerRegistered {
        broker: BrokerId,
        broker_epoch: BrokerEpoch,
    },
    /// A broker won the `/controller` election.
    ControllerElected {
        broker: BrokerId,
        controller_epoch: ControllerEpoch,
    },
    /// The coordination node committed a write of `/controller_epoch`: the epoch a controller
    /// election claimed, in the order the coordination node granted them (recorded there, so a
    /// broker that learns late that it won, or never learns it, does not reorder them; the
    /// broker's own view is [`Event::ControllerElected`]).
    ControllerEpochIncremented {
        /// The broker whose session wrote it.
        broker: BrokerId,
        controller_epoch: ControllerEpoch,
    },
    /// A controller gave up the role (lost its session or saw a newer controller).
    ControllerResigned {
        broker: BrokerId,
        controller_epoch: ControllerEpoch,
        /// `session-expired` (the coordination node said so), `session-silent` (nothing heard
        /// from it for `zookeeper.session.timeout.ms`: the session is gone by now),
        /// `controller-moved` (`/controller` names another broker), `write-fenced` (a
        /// conditional write failed: another controller has taken over).
        reason: String,
    },
    /// A broker applied a request from the controller (`LeaderAndIsr`, `UpdateMetadata`,
    /// `StopReplica`), carrying `controller_epoch`; the checker `controller-epoch-fencing`
    /// reads these.
    ControllerRequestAccepted {
        broker: BrokerId,
        /// The sending controller's broker id.
        controller: BrokerId,
        controller_epoch: ControllerEpoch,
        /// The API name, e.g. `LeaderAndIsr`.
        api: String,
    },
    /// A broker refused a controller request from an older controller epoch than the highest
    /// it had accepted (STALE_CONTROLLER_EPOCH).
    ControllerRequestRejected {
        broker: BrokerId,
        controller: BrokerId,
        controller_epoch: ControllerEpoch,
        api: String,
        /// The highest controller epoch the broker had accepted.
        highest_controller_epoch: ControllerEpoch,
    },
    /// The controller wrote a partition's state to the coordination node.
    PartitionStateChanged {
        tp: TopicPartition,
        leader: Option<BrokerId>,
        leader_epoch: LeaderEpoch,
        isr: Vec<BrokerId>,
        controller_epoch: ControllerEpoch,
        partition_epoch: ZkVersion,
        /// Why: `new-topic`, `leader-failed`, `broker-failed`, `isr-change`, `unclean`, ...
        reason: String,
        /// KIP-966's last-known eligible leader replicas written with this state: replicas
        /// outside the ISR that still hold every committed record (ascending broker id; absent
        /// from the JSON when empty). See `controller::update_last_known_elr`.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        last_known_elr: Vec<BrokerId>,
    },
    /// The controller raised a topic's partition count (`create-partitions`); the new
    /// partitions follow as `partition-state-changed` with reason `new-partition`.
    PartitionsCreated {
        topic: String,
        /// The partition count before and after.
        from_count: i32,
        to_count: i32,
        controller_epoch: ControllerEpoch,
    },
    /// The controller deleted a topic: its znodes are gone and its replicas are told to delete
    /// their logs (StopReplica). Recorded by the coordination node when the deletion commits
    /// (the marker `/admin/delete_topics/T` is created in the same multi), so a controller that
    /// fails before hearing the answer does not hide it; the next controller tells the
    /// replicas again.
    TopicDeleted {
        topic: String,
        controller_epoch: ControllerEpoch,
    },
    /// A broker deleted its replica's log after StopReplica with delete.
    ReplicaDeleted {
        tp: TopicPartition,
        broker: BrokerId,
    },
    /// A broker started acting as leader of a partition in an epoch.
    BecameLeader {
        tp: TopicPartition,
        broker: BrokerId,
        leader_epoch: LeaderEpoch,
        isr: Vec<BrokerId>,
        log_end_offset: Offset,
        high_watermark: Offset,
    },
    /// A follower could not append what the leader sent for a partition at its log end (Kafka's
    /// UnexpectedAppendOffsetException: the batch does not start at the follower's log end, as
    /// happens when logs diverged). Kafka's fetcher then marks the partition failed; here the
    /// follower fetches the same offset again and makes no progress. Emitted once per log end
    /// offset.
    FollowerAppendFailed {
        tp: TopicPartition,
        broker: BrokerId,
        leader: Option<BrokerId>,
        log_end_offset: Offset,
        /// The log's error, e.g. "batch base offset 0 does not follow the log end offset 397".
        error: String,
    },
    /// A broker loaded a partition of an internal topic into its coordinator runtime on
    /// becoming its leader: it replayed the partition's log from its start
    /// (`CoordinatorRuntime.java`'s load; immediate here).
    CoordinatorLoaded {
        tp: TopicPartition,
        broker: BrokerId,
        leader_epoch: LeaderEpoch,
        /// Records replayed.
        records: u64,
        /// The log end offset the load stopped at (exclusive).
        loaded_to: Offset,
    },
    /// A broker unloaded a partition of an internal topic (it became follower, or the replica
    /// was deleted); the writes still waiting for their commit were answered NOT_COORDINATOR.
    CoordinatorUnloaded {
        tp: TopicPartition,
        broker: BrokerId,
        pending_writes: u64,
    },
    /// A broker answered FindCoordinator COORDINATOR_NOT_AVAILABLE for a reason other than
    /// "being created" (emitted once per distinct reason and broker), e.g. Kafka's "Number of
    /// alive brokers '2' does not meet the required replication factor '3' for the offsets
    /// topic ...".
    CoordinatorUnavailable { broker: BrokerId, reason: String },
    /// A broker started following a leader in an epoch.
    BecameFollower {
        tp: TopicPartition,
        broker: BrokerId,
        leader: Option<BrokerId>,
        leader_epoch: LeaderEpoch,
        log_end_offset: Offset,
    },
    /// The leader's view of the ISR changed (after the controller committed it).
    IsrChanged {
        tp: TopicPartition,
        broker: BrokerId,
        leader_epoch: LeaderEpoch,
        isr: Vec<BrokerId>,
        partition_epoch: ZkVersion,
    },
    /// A leader's high watermark moved.
    HighWatermarkChanged {
        tp: TopicPartition,
        broker: BrokerId,
        leader_epoch: LeaderEpoch,
        high_watermark: Offset,
    },
    /// A replica cut its log. `records` are the (offset, value) pairs removed, when known.
    Truncated {
        tp: TopicPartition,
        broker: BrokerId,
        from_offset: Offset,
        to_offset: Offset,
        /// `diverging-epoch`, `high-watermark`, `recovery` (torn/corrupt tail), ...
        reason: String,
    },
    /// Log recovery on start found and discarded a torn or corrupt tail.
    LogRecovered {
        tp: TopicPartition,
        broker: BrokerId,
        log_end_offset: Offset,
        discarded_bytes: u64,
    },
    /// A replica rolled a new active log segment at `base_offset` (its log end offset).
    LogSegmentRolled {
        tp: TopicPartition,
        broker: BrokerId,
        base_offset: Offset,
    },
    /// Retention deleted whole segments of a replica's log (Kafka's `deleteOldSegments`).
    /// `reason`: `retention-ms`, `retention-bytes` or `log-start-offset` (segments wholly
    /// below a log start offset learned from the leader).
    LogSegmentsDeleted {
        tp: TopicPartition,
        broker: BrokerId,
        base_offsets: Vec<Offset>,
        deleted_bytes: u64,
        log_start_offset: Offset,
        reason: String,
    },
    /// A replica's log start offset moved up: records below it are no longer served.
    /// `reason`: `retention` (this replica deleted segments by `retention.ms` /
    /// `retention.bytes`), `leader-log-start-offset` (a follower learned the leader's from a
    /// fetch response) or `offset-out-of-range` (a follower below the leader's log start
    /// offset truncated fully and restarted there). Checkers excuse records below a
    /// `retention` log start offset.
    LogStartOffsetAdvanced {
        tp: TopicPartition,
        broker: BrokerId,
        log_start_offset: Offset,
        reason: String,
    },
    /// The log cleaner compacted a replica's log: `superseded` records had a later record with
    /// the same key, `expired_tombstones` were tombstones older than `delete.retention.ms`.
    LogCleaned {
        tp: TopicPartition,
        broker: BrokerId,
        cleaned_segments: usize,
        superseded: Vec<Offset>,
        expired_tombstones: Vec<Offset>,
    },
    /// The leader refused a produce for a reason a client would see as an error message
    /// (e.g. a record without a key on a compacted topic).
    ProduceRejected {
        tp: TopicPartition,
        broker: BrokerId,
        error: ErrorCode,
        message: String,
    },
    /// A produce request was answered (leader side), for the idempotence and durability checks.
    ProduceAppended {
        tp: TopicPartition,
        broker: BrokerId,
        leader_epoch: LeaderEpoch,
        base_offset: Offset,
        last_offset: Offset,
        producer_id: ProducerId,
        base_sequence: Sequence,
        /// The ISR at the time of the append.
        isr: Vec<BrokerId>,
    },
    /// The leader answered a produce with acks=all successfully: these offsets were committed.
    ProduceAcked {
        tp: TopicPartition,
        broker: BrokerId,
        leader_epoch: LeaderEpoch,
        base_offset: Offset,
        last_offset: Offset,
        acks: String,
        error: ErrorCode,
    },
    /// A consumer set its position in a partition other than by reading: a reset by
    /// `auto.offset.reset` (no position yet, OFFSET_OUT_OF_RANGE, or an undefined epoch in
    /// OffsetForLeaderEpoch), an application `seek`, or the move back to the first offset known
    /// to diverge after log truncation (KIP-320). The consumer is the event's node. Records of
    /// `[from_offset, to_offset)` (from the log start when `from_offset` is `None`) were skipped
    /// by this consumer when `to_offset` is higher, read again when lower.
    ConsumerPositionReset {
        tp: TopicPartition,
        /// The position before, if the consumer had one.
        from_offset: Option<Offset>,
        to_offset: Offset,
        /// `earliest` or `latest` (`auto.offset.reset`), `seek`, `divergent-offset`, or
        /// `committed` (the group's committed offset, read with OffsetFetch by a consumer with a
        /// `group.id`).
        strategy: String,
        /// `no-position`, `offset-out-of-range`, `undefined-epoch`, `seek`, `log-truncation` or
        /// `committed-offset`.
        reason: String,
    },
    /// A consumer validating its position after a leader change (KIP-320) found that the
    /// leader's log ends its epoch `offset_epoch` at `divergent_offset`, below the consumer's
    /// position `fetch_offset`: records it had read are no longer in the log (Kafka's log
    /// truncation, e.g. after an unclean election).
    ConsumerLogTruncation {
        tp: TopicPartition,
        fetch_offset: Offset,
        offset_epoch: LeaderEpoch,
        divergent_offset: Offset,
        divergent_epoch: LeaderEpoch,
    },
    /// A consumer with a `group.id` learned which broker coordinates its group
    /// (FindCoordinator answered; Kafka's `AbstractCoordinator` logs "Discovered group
    /// coordinator"). The consumer is the event's node. A lookup that names the same broker as
    /// the last one announced is not logged again.
    CoordinatorDiscovered {
        /// The consumer's `group.id`.
        group: String,
        /// The leader of the group's `__consumer_offsets` partition, as the answering broker
        /// knew it.
        coordinator: BrokerId,
    },
    /// A consumer forgot its group coordinator and will look for it again (Kafka's
    /// `markCoordinatorUnknown`: "Group coordinator ... is unavailable or invalid due to cause:
    /// ... Rediscovery will be attempted"). Logged once per announced discovery.
    CoordinatorMarkedUnknown {
        group: String,
        coordinator: BrokerId,
        /// Why: an error name (`NOT_COORDINATOR`, `COORDINATOR_NOT_AVAILABLE`,
        /// `REQUEST_TIMED_OUT`), `disconnected` or `request-timeout` (no answer within
        /// `request.timeout.ms`).
        reason: String,
    },
    /// An attempt of an offset commit did not succeed: the coordinator answered an error, or
    /// the request got no answer. The commit's outcome is in the history (`commit`); this
    /// event tells why an attempt failed and whether the client retries it (`commitSync` does,
    /// until `default.api.timeout.ms`; `commitAsync` and auto commit do not). A retried commit
    /// logs it when the error changes, not for every attempt.
    OffsetCommitFailed {
        group: String,
        /// `sync`, `async` or `auto` (see [`OpValue::Commit`]).
        mode: String,
        /// An error name (`NOT_COORDINATOR`, ...), `disconnected`, `request-timeout`,
        /// `coordinator-not-found` or `timeout` (`default.api.timeout.ms` expired).
        error: String,
        /// Whether the client tries again.
        retry: bool,
    },
    /// A consumer's `poll()` threw: the exception's class (`NoOffsetForPartitionException`,
    /// `OffsetOutOfRangeException`, `LogTruncationException`) and Kafka's message.
    ConsumerError {
        tp: TopicPartition,
        exception: String,
        message: String,
    },
    /// A group coordinator moved a classic group from one state to another (Kafka's
    /// `ClassicGroupState`: `Empty`, `PreparingRebalance`, `CompletingRebalance`, `Stable`,
    /// `Dead`; ClassicGroup.java's `transitionTo`). `generation` is the group's generation id
    /// after the move (a JoinGroup phase that completes increments it on entering
    /// `CompletingRebalance`). `reason` says why, in Kafka's words where it has them (for
    /// example "Adding new member consumer-1-3 with group instance id None", "removing member
    /// ... on heartbeat expiration", "Leader consumer-0-1 re-joining group during Stable").
    GroupStateChanged {
        group: String,
        broker: BrokerId,
        from: String,
        to: String,
        generation: i32,
        reason: String,
    },
    /// The leader member's SyncGroup gave the group coordinator a generation's assignment,
    /// which it stored (as group metadata in `__consumer_offsets`) and handed to every member
    /// (ClassicGroup's `CompletingRebalance` → `Stable`). `protocol` is the assignor the group
    /// chose (`range`, `roundrobin`, `sticky`, `cooperative-sticky`). `exclusive-assignment`
    /// checks that no partition appears twice in one generation.
    GroupAssignmentCompleted {
        group: String,
        broker: BrokerId,
        generation: i32,
        protocol: String,
        /// The leader member's id.
        leader: String,
        /// One entry per member, in member-id order.
        members: Vec<MemberAssignment>,
    },
    /// A group coordinator removed a member from a group: `reason` is `session-timeout` (no
    /// heartbeat within `session.timeout.ms`), `rebalance-timeout` (it did not rejoin within
    /// the rebalance timeout, `max.poll.interval.ms`), `leave-group` (LeaveGroup), or `fenced`
    /// (a static member replaced by a newer instance with the same `group.instance.id`,
    /// KIP-345).
    GroupMemberRemoved {
        group: String,
        broker: BrokerId,
        member_id: String,
        reason: String,
        generation: i32,
    },
    /// A consumer in subscribe mode took ownership of `partitions` for generation
    /// `generation` (its `ConsumerRebalanceListener.onPartitionsAssigned` ran). The consumer is
    /// the event's node. With cooperative rebalancing only the newly added partitions are
    /// listed (KIP-429).
    PartitionsAssigned {
        group: String,
        member_id: String,
        generation: i32,
        partitions: Vec<TopicPartition>,
    },
    /// A consumer in subscribe mode gave up `partitions` cleanly
    /// (`onPartitionsRevoked` ran: with the workload's commit-on-revoke done before it returns).
    /// Eager assignors revoke everything before rejoining; cooperative ones only what moves.
    PartitionsRevoked {
        group: String,
        member_id: String,
        generation: i32,
        partitions: Vec<TopicPartition>,
    },
    /// A consumer in subscribe mode lost `partitions` without a chance to commit
    /// (`onPartitionsLost`: its session expired, it was fenced, or the coordinator answered
    /// UNKNOWN_MEMBER_ID / ILLEGAL_GENERATION / FENCED_INSTANCE_ID).
    PartitionsLost {
        group: String,
        member_id: String,
        generation: i32,
        partitions: Vec<TopicPartition>,
        reason: String,
    },
    /// A transaction coordinator moved a `transactional.id` to a new state
    /// (TransactionMetadata.scala's transitions: `Empty`, `Ongoing`, `PrepareCommit`,
    /// `PrepareAbort`, `CompleteCommit`, `CompleteAbort`, `PrepareEpochFence`, `Dead`), once
    /// the state is committed in `__transaction_state` (or, `reason` = `loaded`, when a new
    /// coordinator replays it). `partitions` are the transaction's partitions in the new state.
    /// `reason`: `init-producer-id`, `add-partitions`, `add-offsets`, `end-txn`,
    /// `markers-written`, `timeout` (aborted by `transaction.timeout.ms`), `fence` (an
    /// InitProducerId aborted the previous epoch's transaction), `loaded`. `client`: the
    /// client whose request the new state answers (InitProducerId, AddPartitionsToTxn,
    /// AddOffsetsToTxn, EndTxn; for `fence`, the new instance whose InitProducerId caused
    /// it), as its node name (`producer-1`); absent for the coordinator's own transitions
    /// (markers written, timeouts, loads). The `zombie-fencing` check tells instances of one
    /// `transactional.id` apart by it when epochs do not (`sim.txn.producer-fencing = false`).
    TxnStateChanged {
        transactional_id: String,
        broker: BrokerId,
        producer_id: ProducerId,
        producer_epoch: ProducerEpoch,
        from: String,
        to: String,
        partitions: Vec<TopicPartition>,
        reason: String,
        #[serde(skip_serializing_if = "Option::is_none", default)]
        client: Option<String>,
        /// The correlation id of `client`'s request that caused the transition (absent when
        /// `client` is): tells a late EndTxn from its retry (KAFKA-17754).
        #[serde(skip_serializing_if = "Option::is_none", default)]
        corr: Option<CorrelationId>,
    },
    /// A transaction coordinator answered an EndTxn without changing the transaction's state:
    /// `error` is the answer's Kafka error name (`NONE` for a retry of an ended transaction,
    /// `PRODUCER_FENCED`, `INVALID_TXN_STATE`, `CONCURRENT_TRANSACTIONS`, ...; Kafka:
    /// `TransactionCoordinator.handleEndTransaction`). `client` and `corr` name the request, as
    /// in [`Event::TxnStateChanged`]; `result` is `commit` or `abort`, what it asked for. With
    /// [`Event::RequestTimedOut`] this shows a late EndTxn refused (the `late-end-txn-refused`
    /// probe).
    EndTxnAnswered {
        transactional_id: String,
        broker: BrokerId,
        client: String,
        corr: CorrelationId,
        producer_id: ProducerId,
        producer_epoch: ProducerEpoch,
        result: String,
        error: String,
    },
    /// A client's request to `broker` (`api`, `corr`) got no answer within
    /// `request.timeout.ms`. As Kafka's `NetworkClient.handleTimedOutRequests` does
    /// ("Disconnecting from node N due to request timeout"), the client closed its connection to
    /// the broker and failed every request in flight on it; the next request opens a new
    /// connection. Bytes the closed connection had already sent may still reach the broker
    /// (TCP delivers what was written before the close), after requests sent on the new one:
    /// the way a stale EndTxn overtakes its retry in KAFKA-17754. Recorded by the client.
    RequestTimedOut {
        broker: BrokerId,
        api: String,
        corr: CorrelationId,
    },
    /// A partition leader appended a transaction marker (a control batch, `result` `commit` or
    /// `abort`) at `offset` for the producer's transaction, ending it in that partition.
    TxnMarkerWritten {
        tp: TopicPartition,
        broker: BrokerId,
        producer_id: ProducerId,
        producer_epoch: ProducerEpoch,
        result: String,
        offset: Offset,
        coordinator_epoch: i32,
    },
    /// A partition leader's last stable offset moved (KIP-98: `min(first offset of an open
    /// transaction, high watermark)`; read_committed fetches stop below it). `first_unstable`
    /// names the open transaction that holds it, if any.
    LastStableOffsetChanged {
        tp: TopicPartition,
        broker: BrokerId,
        last_stable_offset: Offset,
        #[serde(skip_serializing_if = "Option::is_none", default)]
        first_unstable: Option<(ProducerId, Offset)>,
    },
    /// Legacy (`sim.fetch.delayed-isolation = false`, KAFKA-5355): a partition leader
    /// completed a read_committed fetch that had waited in purgatory with a read_uncommitted
    /// read, returning records from `fetch_offset` up to `end_offset` (exclusive), at or above
    /// its `last_stable_offset` (below the `high_watermark`), without the aborted-transaction
    /// list.
    DelayedFetchIsolationIgnored {
        tp: TopicPartition,
        broker: BrokerId,
        fetch_offset: Offset,
        end_offset: Offset,
        last_stable_offset: Offset,
        high_watermark: Offset,
    },
    /// A coordination-node session expired (its ephemeral znodes were deleted).
    ZkSessionExpired { session: SessionId, owner: NodeId },
    /// A node halted itself (fatal disk error).
    Halted { reason: String },
    /// A client's interceptor threw (or panicked); the client logged it and went on (Kafka's
    /// `ProducerInterceptors` catches and logs interceptor exceptions, never propagates them).
    /// Recorded for the 1st, 10th, 100th, ... failure of each interceptor and hook.
    InterceptorFailed {
        /// The interceptor's name (its class name for `interceptor.classes` entries).
        interceptor: String,
        /// `onSend` or `onAcknowledgement`.
        method: String,
        /// The exception or panic message.
        error: String,
        /// Failures of this interceptor and hook so far, this one included.
        failures: u64,
    },
    /// The nemesis injected a fault (recorded by the simulator, attributed to the node it hit).
    Fault {
        /// The scenario key of the action (`kill`, `partition`, `heal`, ...).
        action: String,
        /// Every node it touched, by name.
        nodes: Vec<String>,
        /// `random` (drawn from the seed), `schedule` (scripted) or `heal-phase`.
        source: String,
    },
    /// The heal phase ended at `heal_phase_end_ms` with a partition that had taken no write
    /// since the heal, so the run went on waiting (producers no longer offering new records,
    /// those in flight still retried) until it recovered or `recovery_bound_ms` after the heal
    /// passed: the longest recovery the configured timeouts explain, `bound_from` naming them.
    HealPhaseExtended {
        heal_phase_end_ms: u64,
        recovery_bound_ms: u64,
        bound_from: String,
    },
}

impl Event {
    /// Every event kind, as `events.jsonl` spells it in its `kind` field (the variant's name in
    /// kebab case), in declaration order. A scenario's `reach` names kinds from this list.
    pub const KINDS: &'static [&'static str] = &[
        "broker-started",
        "broker-registered",
        "controller-elected",
        "controller-epoch-incremented",
        "controller-resigned",
        "controller-request-accepted",
        "controller-request-rejected",
        "partition-state-changed",
        "partitions-created",
        "topic-deleted",
        "replica-deleted",
        "became-leader",
        "follower-append-failed",
        "coordinator-loaded",
        "coordinator-unloaded",
        "coordinator-unavailable",
        "became-follower",
        "isr-changed",
        "high-watermark-changed",
        "truncated",
        "log-recovered",
        "log-segment-rolled",
        "log-segments-deleted",
        "log-start-offset-advanced",
        "log-cleaned",
        "produce-rejected",
        "produce-appended",
        "produce-acked",
        "consumer-position-reset",
        "consumer-log-truncation",
        "coordinator-discovered",
        "coordinator-marked-unknown",
        "offset-commit-failed",
        "consumer-error",
        "group-state-changed",
        "group-assignment-completed",
        "group-member-removed",
        "partitions-assigned",
        "partitions-revoked",
        "partitions-lost",
        "txn-state-changed",
        "end-txn-answered",
        "request-timed-out",
        "txn-marker-written",
        "last-stable-offset-changed",
        "delayed-fetch-isolation-ignored",
        "zk-session-expired",
        "halted",
        "interceptor-failed",
        "fault",
        "heal-phase-extended",
    ];

    /// This event's kind, exactly the `kind` field serde writes for it (one of [`Event::KINDS`]);
    /// no allocation, so the checkers can group events without serialising them.
    pub fn kind(&self) -> &'static str {
        match self {
            Event::BrokerStarted { .. } => "broker-started",
            Event::BrokerRegistered { .. } => "broker-registered",
            Event::ControllerElected { .. } => "controller-elected",
            Event::ControllerEpochIncremented { .. } => "controller-epoch-incremented",
            Event::ControllerResigned { .. } => "controller-resigned",
            Event::ControllerRequestAccepted { .. } => "controller-request-accepted",
            Event::ControllerRequestRejected { .. } => "controller-request-rejected",
            Event::PartitionStateChanged { .. } => "partition-state-changed",
            Event::PartitionsCreated { .. } => "partitions-created",
            Event::TopicDeleted { .. } => "topic-deleted",
            Event::ReplicaDeleted { .. } => "replica-deleted",
            Event::BecameLeader { .. } => "became-leader",
            Event::FollowerAppendFailed { .. } => "follower-append-failed",
            Event::CoordinatorLoaded { .. } => "coordinator-loaded",
            Event::CoordinatorUnloaded { .. } => "coordinator-unloaded",
            Event::CoordinatorUnavailable { .. } => "coordinator-unavailable",
            Event::BecameFollower { .. } => "became-follower",
            Event::IsrChanged { .. } => "isr-changed",
            Event::HighWatermarkChanged { .. } => "high-watermark-changed",
            Event::Truncated { .. } => "truncated",
            Event::LogRecovered { .. } => "log-recovered",
            Event::LogSegmentRolled { .. } => "log-segment-rolled",
            Event::LogSegmentsDeleted { .. } => "log-segments-deleted",
            Event::LogStartOffsetAdvanced { .. } => "log-start-offset-advanced",
            Event::LogCleaned { .. } => "log-cleaned",
            Event::ProduceRejected { .. } => "produce-rejected",
            Event::ProduceAppended { .. } => "produce-appended",
            Event::ProduceAcked { .. } => "produce-acked",
            Event::ConsumerPositionReset { .. } => "consumer-position-reset",
            Event::ConsumerLogTruncation { .. } => "consumer-log-truncation",
            Event::CoordinatorDiscovered { .. } => "coordinator-discovered",
            Event::CoordinatorMarkedUnknown { .. } => "coordinator-marked-unknown",
            Event::OffsetCommitFailed { .. } => "offset-commit-failed",
            Event::ConsumerError { .. } => "consumer-error",
            Event::GroupStateChanged { .. } => "group-state-changed",
            Event::GroupAssignmentCompleted { .. } => "group-assignment-completed",
            Event::GroupMemberRemoved { .. } => "group-member-removed",
            Event::PartitionsAssigned { .. } => "partitions-assigned",
            Event::PartitionsRevoked { .. } => "partitions-revoked",
            Event::PartitionsLost { .. } => "partitions-lost",
            Event::TxnStateChanged { .. } => "txn-state-changed",
            Event::TxnMarkerWritten { .. } => "txn-marker-written",
            Event::EndTxnAnswered { .. } => "end-txn-answered",
            Event::RequestTimedOut { .. } => "request-timed-out",
            Event::LastStableOffsetChanged { .. } => "last-stable-offset-changed",
            Event::DelayedFetchIsolationIgnored { .. } => "delayed-fetch-isolation-ignored",
            Event::ZkSessionExpired { .. } => "zk-session-expired",
            Event::Halted { .. } => "halted",
            Event::InterceptorFailed { .. } => "interceptor-failed",
            Event::Fault { .. } => "fault",
            Event::HealPhaseExtended { .. } => "heal-phase-extended",
        }
    }
}

/// Jepsen's operation types: an `invoke` is later completed by exactly one of `ok` (it
/// happened), `fail` (it certainly did not happen) or `info` (unknown: a timeout).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OpType {
    Invoke,
    Ok,
    Fail,
    Info,
}

/// One record a consumer returned from `poll`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolledRecord {
    pub tp: TopicPartition,
    pub offset: Offset,
    /// The unique value the workload wrote (decoded from the record value).
    pub value: u64,
}

/// What an operation did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "f", rename_all = "kebab-case")]
pub enum OpValue {
    /// Produce one record. `tp` is the partition the partitioner chose; `offset` is set on `ok`.
    Send {
        tp: TopicPartition,
        key: Option<String>,
        value: u64,
        offset: Option<Offset>,
    },
    /// One `poll()`; on `ok`, the records returned in order.
    Poll { records: Vec<PolledRecord> },
    /// The application's `KafkaConsumer.seek(tp, offset)`: the next record `poll()` returns
    /// for `tp` is the one at `offset` (or, if the log has no such offset, wherever
    /// `auto.offset.reset` then puts the position). A local call: `invoke` and `ok` at the same
    /// instant. The poll checkers take it as the consumer's new expected position in `tp`, as
    /// Jepsen's Kafka checker forgets a process's last read of a key when it assigns anew.
    Seek { tp: TopicPartition, offset: Offset },
    /// An offset commit of a consumer with a `group.id` (Kafka's OffsetCommit with generation
    /// -1, as a consumer in assign mode sends it): store `offsets` as `group`'s committed
    /// positions. One `commitSync()` call (retried inside until it succeeds, fails for good or
    /// `default.api.timeout.ms` expires), one `commitAsync()` call (one attempt), or one auto
    /// commit. `ok`: the coordinator acknowledged it, so the records are committed in
    /// `__consumer_offsets`; `fail`: it certainly was not stored (never sent, or refused before
    /// any append); `info`: it may or may not have been stored (no answer, or an answer such as
    /// NOT_COORDINATOR that a coordinator also gives after appending).
    Commit {
        /// The consumer's `group.id`.
        group: String,
        /// `sync` (`commitSync()`), `async` (`commitAsync()`) or `auto` (`enable.auto.commit`).
        mode: String,
        /// The positions committed, one per partition, in partition order.
        offsets: Vec<CommitOffset>,
        /// On `ok`, the broker that acknowledged it (the group's coordinator then).
        #[serde(skip_serializing_if = "Option::is_none", default)]
        coordinator: Option<BrokerId>,
        /// The generation the commit was sent with: absent for a consumer in assign mode
        /// (Kafka sends -1), the member's generation in subscribe mode (fenced by the
        /// coordinator with ILLEGAL_GENERATION when stale).
        #[serde(skip_serializing_if = "Option::is_none", default)]
        generation: Option<i32>,
        /// The member id the commit was sent with (subscribe mode only).
        #[serde(skip_serializing_if = "Option::is_none", default)]
        member_id: Option<String>,
    },
    /// The application finished processing the records of one non-empty poll (SCENARIOS.md:
    /// "a member records a `process` operation when its processing of a poll ends"). The
    /// `invoke` is logged when processing starts (with the records), the `ok` when it ends;
    /// a client that crashes meanwhile leaves the invoke open: those records were not
    /// processed. `at-least-once` counts only `ok` process operations.
    Process {
        /// The consumer's `group.id`, if it has one.
        #[serde(skip_serializing_if = "Option::is_none", default)]
        group: Option<String>,
        records: Vec<PolledRecord>,
    },
    /// A consumer with a `group.id` reads its group's committed offsets with OffsetFetch to
    /// initialise its positions (Kafka's `ConsumerCoordinator.fetchCommittedOffsets`, retried
    /// inside until an answer). The invoke lists the partitions asked (no offsets); `ok` lists
    /// each partition's committed offset, or none.
    OffsetFetch {
        group: String,
        offsets: Vec<FetchedOffset>,
        /// On `ok`, the broker that answered.
        #[serde(skip_serializing_if = "Option::is_none", default)]
        coordinator: Option<BrokerId>,
    },
    /// One transaction of a transactional producer or processor (Jepsen's `txn` operation,
    /// SCENARIOS.md): the invoke is logged at `beginTransaction`, the completion at the end with
    /// every micro-operation: `ok` (commitTransaction returned), `fail` (aborted by the
    /// application, or by an abortable or fatal error before any commit was sent: none of its
    /// writes may become visible to read_committed consumers), `info` (the outcome is unknown
    /// to the client: commitTransaction timed out, or the producer was fenced after sending
    /// EndTxn). A `send` mop's `offset` is set when its produce was acknowledged.
    Txn {
        transactional_id: String,
        /// The producer id and epoch the transaction ran under (set on completion).
        #[serde(skip_serializing_if = "Option::is_none", default)]
        producer_id: Option<ProducerId>,
        #[serde(skip_serializing_if = "Option::is_none", default)]
        producer_epoch: Option<ProducerEpoch>,
        mops: Vec<TxnMop>,
        /// A processor's `sendOffsetsToTransaction`: the group and the input positions the
        /// transaction commits (KIP-447).
        #[serde(skip_serializing_if = "Option::is_none", default)]
        group: Option<String>,
        #[serde(skip_serializing_if = "Vec::is_empty", default)]
        offsets: Vec<CommitOffset>,
    },
}

/// A micro-operation of an [`OpValue::Txn`] (Jepsen's `[:send k v]` / `[:poll]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "f", rename_all = "kebab-case")]
pub enum TxnMop {
    /// One `send` inside the transaction; `offset` on acknowledgement.
    Send {
        tp: TopicPartition,
        key: Option<String>,
        value: u64,
        offset: Option<Offset>,
    },
    /// The poll whose records fed the transaction (processors).
    Poll { records: Vec<PolledRecord> },
}

/// One member's share of a generation's assignment ([`Event::GroupAssignmentCompleted`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberAssignment {
    /// The member id the coordinator gave (`<client.id>-<uuid-like suffix>`, KIP-394).
    pub member_id: String,
    /// `group.instance.id` of a static member (KIP-345).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub group_instance_id: Option<String>,
    /// The client process behind the member, by node name (`consumer-2`).
    pub client: String,
    /// The partitions assigned, in topic then partition order.
    pub partitions: Vec<TopicPartition>,
}

/// One partition of a [`OpValue::Commit`]: `offset` is the position committed (the offset of
/// the next record to consume).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitOffset {
    pub tp: TopicPartition,
    pub offset: Offset,
}

/// One partition of an [`OpValue::OffsetFetch`]: its committed offset, `None` when the group has
/// none (or, in the invoke, not known yet).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FetchedOffset {
    pub tp: TopicPartition,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub committed: Option<Offset>,
}

/// A client operation as a state machine emits it; the shell adds time, process and index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientOp {
    #[serde(rename = "type")]
    pub op_type: OpType,
    /// Pairs an invoke with its completion within one process.
    pub op_id: u64,
    #[serde(flatten)]
    pub value: OpValue,
    /// The error that completed a `fail` / `info`.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub error: Option<String>,
}
