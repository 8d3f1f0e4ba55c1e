//! The Produce API's types: `acks` and a partition's answer in a produce response
//! (`ProduceRequest.json`, `ProduceResponse.json`).

use super::*;

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

/// A partition's answer inside a [`Message::ProduceResponse`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionProduceResponse {
    pub tp: TopicPartition,
    pub error: ErrorCode,
    /// Offset of the batch's first record when `error` is `None` (or a duplicate), else -1.
    pub base_offset: Offset,
    pub log_start_offset: Offset,
}
