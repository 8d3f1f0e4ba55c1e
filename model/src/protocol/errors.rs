//! Kafka's error codes as the model uses them (`org.apache.kafka.common.protocol.Errors`).

use super::*;

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
    /// The broker is not the coordinator of the group (it does not lead the group's
    /// `__consumer_offsets` partition, or lost it before the write committed): find the
    /// coordinator again and retry (`CoordinatorRuntime.java`, GroupMetadataManager.scala).
    NotCoordinator,
    /// No coordinator can serve the group now: the internal topic does not exist yet, its
    /// partition has no leader, or a commit's append was refused for lack of in-sync replicas.
    CoordinatorNotAvailable,
    /// The coordinator is still loading the group's partition (`CoordinatorRuntime.java:2048`;
    /// the model loads at once, so it is never answered yet).
    CoordinatorLoadInProgress,
    /// The commit names a member the group does not have (ClassicGroup.java:823-864; the model
    /// has no members yet, so any commit with a generation other than -1 gets it).
    UnknownMemberId,
    /// The member's generation is not the group's (a JoinGroup phase ended without it, or it
    /// commits from an older generation): it must rejoin (ClassicGroup.java).
    IllegalGeneration,
    /// The group is rebalancing: the member must rejoin (JoinGroup) before it heartbeats,
    /// syncs or commits again.
    RebalanceInProgress,
    /// JoinGroup v4+ from a member without an id: the coordinator gives it one in the answer
    /// and it joins again with it (KIP-394).
    MemberIdRequired,
    /// Another member now holds this member's `group.instance.id` (KIP-345).
    FencedInstanceId,
    /// The member supports none of the group's assignment protocols.
    InconsistentGroupProtocol,
    /// `session.timeout.ms` outside the brokers' `group.min.session.timeout.ms` ..
    /// `group.max.session.timeout.ms`.
    InvalidSessionTimeout,
    /// A newer instance of the transactional producer exists: the old one is fenced for good
    /// (fatal in the client; KIP-588 split it from INVALID_PRODUCER_EPOCH for the coordinator).
    ProducerFenced,
    /// The coordinator is completing the previous transaction (Prepare*, or an epoch fence in
    /// progress): retry shortly.
    ConcurrentTransactions,
    /// The request does not fit the transaction's state (EndTxn ABORT after CompleteCommit; a
    /// non-transactional produce during an open transaction; an unverified transactional
    /// produce, KIP-890).
    InvalidTxnState,
    /// The producer id does not belong to the `transactional.id`.
    InvalidProducerIdMapping,
    /// `transaction.timeout.ms` above the broker's `transaction.max.timeout.ms`.
    InvalidTransactionTimeout,
    /// A marker from a coordinator older than the last one the partition saw for the producer.
    TransactionCoordinatorFenced,
    /// The transaction must be aborted but the producer may go on (KIP-890: a partition not in
    /// the transaction at verification).
    TransactionAbortable,
    /// OffsetFetch with `require_stable`: a transactional offset commit for the partition is
    /// still pending (KIP-447); retry.
    UnstableOffsetCommit,
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
                | ErrorCode::NotCoordinator
                | ErrorCode::CoordinatorNotAvailable
                | ErrorCode::CoordinatorLoadInProgress
                | ErrorCode::ConcurrentTransactions
                | ErrorCode::UnstableOffsetCommit
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
            ErrorCode::NotCoordinator => "NOT_COORDINATOR",
            ErrorCode::CoordinatorNotAvailable => "COORDINATOR_NOT_AVAILABLE",
            ErrorCode::CoordinatorLoadInProgress => "COORDINATOR_LOAD_IN_PROGRESS",
            ErrorCode::UnknownMemberId => "UNKNOWN_MEMBER_ID",
            ErrorCode::IllegalGeneration => "ILLEGAL_GENERATION",
            ErrorCode::RebalanceInProgress => "REBALANCE_IN_PROGRESS",
            ErrorCode::MemberIdRequired => "MEMBER_ID_REQUIRED",
            ErrorCode::FencedInstanceId => "FENCED_INSTANCE_ID",
            ErrorCode::InconsistentGroupProtocol => "INCONSISTENT_GROUP_PROTOCOL",
            ErrorCode::InvalidSessionTimeout => "INVALID_SESSION_TIMEOUT",
            ErrorCode::ProducerFenced => "PRODUCER_FENCED",
            ErrorCode::ConcurrentTransactions => "CONCURRENT_TRANSACTIONS",
            ErrorCode::InvalidTxnState => "INVALID_TXN_STATE",
            ErrorCode::InvalidProducerIdMapping => "INVALID_PRODUCER_ID_MAPPING",
            ErrorCode::InvalidTransactionTimeout => "INVALID_TRANSACTION_TIMEOUT",
            ErrorCode::TransactionCoordinatorFenced => "TRANSACTION_COORDINATOR_FENCED",
            ErrorCode::TransactionAbortable => "TRANSACTION_ABORTABLE",
            ErrorCode::UnstableOffsetCommit => "UNSTABLE_OFFSET_COMMIT",
        }
    }
}
