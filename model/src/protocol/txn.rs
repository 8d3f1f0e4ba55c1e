//! The transaction APIs' types (KIP-98, KIP-447, KIP-890): `AddPartitionsToTxnRequest.json`,
//! `AddOffsetsToTxnRequest.json`, `EndTxnRequest.json`, `WriteTxnMarkersRequest.json`,
//! `TxnOffsetCommitRequest.json`, and the coordinator kind of `FindCoordinatorRequest.json`.
//! The messages themselves are variants of [`Message`].

use super::*;

/// Which coordinator FindCoordinator looks for (`FindCoordinatorRequest.json`'s `KeyType`:
/// 0 = group, 1 = transaction). The key is the `group.id` or the `transactional.id`; the
/// coordinator is the leader of the key's partition of `__consumer_offsets` or
/// `__transaction_state` (`abs(key.hashCode()) % num.partitions`, Java's `String.hashCode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum CoordinatorType {
    Group,
    Transaction,
}

/// The outcome a transaction marker writes (a control batch's record key type:
/// `ControlRecordType.ABORT` = 0, `COMMIT` = 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum TransactionResult {
    Abort,
    Commit,
}

/// One producer's marker in a WriteTxnMarkers request (`WritableTxnMarker`): write a control
/// batch with `result` for (`producer_id`, `producer_epoch`) to each of `partitions`, which the
/// receiving broker leads. A partition refuses a marker whose `coordinator_epoch` is lower than
/// the last one it saw for that producer (TRANSACTION_COORDINATOR_FENCED) or whose producer
/// epoch is lower than the producer's current one (INVALID_PRODUCER_EPOCH)
/// (ProducerAppendInfo.java:96-110, 189-201).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WritableTxnMarker {
    pub producer_id: ProducerId,
    pub producer_epoch: ProducerEpoch,
    pub result: TransactionResult,
    pub partitions: Vec<TopicPartition>,
    /// The epoch of the coordinator's `__transaction_state` partition (its leader epoch) when
    /// the coordinator wrote the transaction's Prepare* state.
    pub coordinator_epoch: i32,
}

/// One producer's answer inside a WriteTxnMarkersResponse: one error per partition, in the
/// request's order (NONE once the marker is appended and, as for `acks=all`, committed; or
/// NOT_LEADER_OR_FOLLOWER, UNKNOWN_TOPIC_OR_PARTITION, NOT_ENOUGH_REPLICAS,
/// TRANSACTION_COORDINATOR_FENCED, INVALID_PRODUCER_EPOCH).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WritableTxnMarkerResult {
    pub producer_id: ProducerId,
    pub partitions: Vec<(TopicPartition, ErrorCode)>,
}
