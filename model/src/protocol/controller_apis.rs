//! The controller-to-broker APIs' types (LeaderAndIsr, UpdateMetadata, StopReplica,
//! AlterPartition): a partition's replication state as the controller decided it
//! (`LeaderAndIsrRequest.json`, `UpdateMetadataRequest.json`).

use super::*;

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
