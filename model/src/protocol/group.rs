//! The group APIs' types (`OffsetCommitRequest.json`, `OffsetCommitResponse.json`,
//! `OffsetFetchRequest.json`, `OffsetFetchResponse.json`): a partition's offset to commit, a
//! partition's answer to a commit, and a partition's committed offset. FindCoordinator carries
//! only scalars and is declared in [`Message`] directly.

use super::*;

/// One partition of an OffsetCommit: commit `committed_offset` (the position of the next
/// record to consume) for `tp`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OffsetCommitPartition {
    /// The consumed partition.
    pub tp: TopicPartition,
    /// The position of the next record to consume.
    pub committed_offset: Offset,
}

/// One partition's answer inside an OffsetCommitResponse: NONE once the commit is in the
/// coordinator's log below its high watermark, else the reason it is not (NOT_COORDINATOR,
/// COORDINATOR_NOT_AVAILABLE, REQUEST_TIMED_OUT, UNKNOWN_MEMBER_ID).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OffsetCommitPartitionResponse {
    /// The consumed partition, as in the request.
    pub tp: TopicPartition,
    /// NONE or the reason above.
    pub error: ErrorCode,
}

/// One partition inside an OffsetFetchResponse: its committed offset, or -1 when the group
/// has none for it (Kafka's `OffsetFetchResponse.INVALID_OFFSET`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OffsetFetchPartition {
    /// The consumed partition, as in the request.
    pub tp: TopicPartition,
    /// The committed position, or -1.
    pub committed_offset: Offset,
}

/// A consumer's subscription as carried in JoinGroup (Kafka's `ConsumerProtocolSubscription`
/// v1+): its topics, the partitions it owns (cooperative rebalancing, KIP-429) and the
/// generation it owned them in (KIP-792).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct GroupSubscription {
    pub topics: Vec<String>,
    pub owned_partitions: Vec<TopicPartition>,
    /// -1 when the member has no generation.
    pub generation: i32,
}

/// One member as the leader sees it in a JoinGroupResponse.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JoinGroupMember {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub subscription: GroupSubscription,
}

/// One member's assignment in the leader's SyncGroup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncGroupAssignment {
    pub member_id: String,
    pub partitions: Vec<TopicPartition>,
}
