//! The Fetch and OffsetForLeaderEpoch APIs' types: `isolation.level` and the end offset of a
//! leader epoch (`FetchRequest.json`, `OffsetForLeaderEpochResponse.json`).

use super::*;

/// `isolation.level`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum IsolationLevel {
    ReadUncommitted,
    ReadCommitted,
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

/// One partition of a Fetch request (`FetchRequest.json`'s `FetchPartition`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FetchPartition {
    pub tp: TopicPartition,
    pub fetch_offset: Offset,
    /// Epoch of the last batch the fetcher holds before `fetch_offset` (KIP-595 truncation
    /// check); `UNKNOWN` to skip the check.
    pub last_fetched_epoch: LeaderEpoch,
    /// The fetcher's view of the current leader epoch (KIP-320); `UNKNOWN` to skip fencing.
    pub current_leader_epoch: LeaderEpoch,
    /// At most this many bytes of this partition (`replica.fetch.max.bytes`,
    /// `max.partition.fetch.bytes`); the first batch of the response is returned whole even if
    /// larger, so the fetcher always makes progress.
    pub partition_max_bytes: u32,
}

/// One partition of a Fetch response (`FetchResponse.json`'s `PartitionData`). Errors are per
/// partition: one partition's NOT_LEADER_OR_FOLLOWER, FENCED_LEADER_EPOCH or
/// OFFSET_OUT_OF_RANGE leaves the others of the same response untouched.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FetchPartitionResponse {
    pub tp: TopicPartition,
    pub error: ErrorCode,
    pub high_watermark: Offset,
    pub last_stable_offset: Offset,
    pub log_start_offset: Offset,
    /// Set when the fetcher's log diverges from the leader's: truncate to the end offset
    /// of that epoch and fetch again.
    pub diverging_epoch: Option<EpochEndOffset>,
    /// The leader epoch of the answering leader.
    pub leader_epoch: LeaderEpoch,
    /// Whole record batches, in offset order.
    pub batches: Vec<Vec<u8>>,
    /// For a read_committed consumer fetch, the aborted transactions overlapping the returned
    /// range (`FetchResponse.json`'s `AbortedTransactions`): the consumer drops each one's
    /// batches from `first_offset` on until the producer's ABORT marker. Empty otherwise.
    /// (Always serialised: the simulated transport's codec is not self-describing.)
    #[serde(default)]
    pub aborted_transactions: Vec<AbortedTransaction>,
}

/// An aborted transaction in a fetch response (`FetchResponse.json`'s `AbortedTransaction`):
/// the producer's transaction that began at `first_offset` was aborted (KIP-98).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct AbortedTransaction {
    pub producer_id: ProducerId,
    pub first_offset: Offset,
}
