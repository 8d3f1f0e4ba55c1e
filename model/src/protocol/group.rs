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
