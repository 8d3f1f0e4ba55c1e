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
