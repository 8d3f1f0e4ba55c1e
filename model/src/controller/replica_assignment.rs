//! Replica assignment: which brokers hold each partition's replicas, preferred leader first,
//! for a new topic and for partitions added to an existing one.
//!
//! Mirrors Kafka's `AdminUtils.assignReplicasToBrokers` (rack-unaware:
//! `assignReplicasToBrokersRackUnaware`) and `AdminZkClient.addPartitions`. The random choices
//! come from a generator the caller seeds (the simulator's `assignment` stream).

use crate::types::BrokerId;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// Kafka's rack-unaware replica assignment (`AdminUtils.assignReplicasToBrokersRackUnaware`):
/// a random start index and a random shift, so that leaders and followers spread evenly.
pub fn assign_replicas(
    brokers: i32,
    partitions: i32,
    replication_factor: i32,
    rng: &mut ChaCha8Rng,
) -> Vec<Vec<BrokerId>> {
    let n = brokers;
    let start_index = rng.gen_range(0..n);
    let mut next_replica_shift = rng.gen_range(0..n);
    let mut out = Vec::new();
    for p in 0..partitions {
        if p > 0 && p % n == 0 {
            next_replica_shift += 1;
        }
        let first = (p + start_index) % n;
        let mut replicas = vec![BrokerId(first)];
        for j in 0..replication_factor - 1 {
            let shift = 1 + (next_replica_shift + j) % (n - 1).max(1);
            replicas.push(BrokerId((first + shift) % n));
        }
        out.push(replicas);
    }
    out
}

/// The replica assignment Kafka gives partitions added to a topic (`AdminZkClient.addPartitions`
/// with `assignReplicasToBrokersRackUnaware`): no randomness, the start index is partition 0's
/// first replica, and partition numbering continues from the existing count. Returns the whole
/// assignment (existing partitions unchanged, `count` in all).
pub fn add_partitions(brokers: i32, existing: &[Vec<BrokerId>], count: i32) -> Vec<Vec<BrokerId>> {
    let n = brokers.max(1);
    let rf = existing.first().map_or(1, |r| r.len() as i32);
    let start_index = existing
        .first()
        .and_then(|r| r.first())
        .map_or(0, |b| b.0.clamp(0, n - 1));
    let mut next_replica_shift = start_index;
    let mut out = existing.to_vec();
    for p in existing.len() as i32..count {
        if p > 0 && p % n == 0 {
            next_replica_shift += 1;
        }
        let first = (p + start_index) % n;
        let mut replicas = vec![BrokerId(first)];
        for j in 0..rf - 1 {
            let shift = 1 + (next_replica_shift + j) % (n - 1).max(1);
            replicas.push(BrokerId((first + shift) % n));
        }
        out.push(replicas);
    }
    out
}
