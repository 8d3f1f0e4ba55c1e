//! The metadata cache: full UpdateMetadata replaces it, incremental ones are merged into it
//! (Kafka's `MetadataCache.updateMetadata`), and a process that never had a full one applies
//! no incremental one.

use super::*;

/// The state of `topic-p` led by broker `leader` in `leader_epoch`.
fn state(topic: &str, p: i32, leader: i32, leader_epoch: i32) -> PartitionState {
    PartitionState {
        tp: TopicPartition::new(topic, p),
        leader: Some(BrokerId(leader)),
        leader_epoch: LeaderEpoch(leader_epoch),
        isr: vec![BrokerId(leader)],
        replicas: vec![BrokerId(0), BrokerId(1)],
        partition_epoch: ZkVersion(0),
        controller_epoch: ControllerEpoch(1),
    }
}

/// UpdateMetadata from controller broker 1.
fn update(partitions: Vec<PartitionState>, deleted: Vec<TopicPartition>, full: bool) -> Message {
    Message::UpdateMetadata {
        controller: BrokerId(1),
        controller_epoch: ControllerEpoch(1),
        live_brokers: vec![BrokerId(0), BrokerId(1)],
        partitions,
        deleted_partitions: deleted,
        full,
    }
}

/// The cache: (partition, leader, leader epoch) in partition order.
fn cached(b: &Broker) -> Vec<(String, i32, i32)> {
    b.metadata
        .values()
        .map(|s| {
            (
                s.tp.to_string(),
                s.leader.map_or(-1, |l| l.0),
                s.leader_epoch.0,
            )
        })
        .collect()
}

#[test]
fn incremental_updates_merge_into_the_cache_a_full_one_filled() {
    let (mut b, _) = leader_of_t0(vec![BrokerId(0)]);
    let from = NodeId::Broker(BrokerId(1));
    let mut out = Effects::new();
    // Before any full update, an incremental one (addressed to an earlier incarnation) is
    // not applied: it would leave a cache of one partition.
    b.checked_message(
        Instant(1),
        from,
        update(vec![state("a", 0, 0, 0)], vec![], false),
        &mut out,
    );
    assert_eq!(cached(&b), vec![]);
    let full = vec![
        state("a", 0, 0, 0),
        state("a", 1, 1, 0),
        state("b", 0, 1, 0),
    ];
    b.checked_message(Instant(2), from, update(full, vec![], true), &mut out);
    assert_eq!(cached(&b).len(), 3);
    // A leader election of a-1 changes a-1 only.
    b.checked_message(
        Instant(3),
        from,
        update(vec![state("a", 1, 0, 1)], vec![], false),
        &mut out,
    );
    assert_eq!(
        cached(&b),
        vec![
            ("a-0".into(), 0, 0),
            ("a-1".into(), 0, 1),
            ("b-0".into(), 1, 0)
        ]
    );
    // Deleting topic b drops its partitions.
    let deleted = vec![TopicPartition::new("b", 0)];
    b.checked_message(Instant(4), from, update(vec![], deleted, false), &mut out);
    assert_eq!(cached(&b), vec![("a-0".into(), 0, 0), ("a-1".into(), 0, 1)]);
    // A full update replaces everything, including what it no longer lists.
    b.checked_message(
        Instant(5),
        from,
        update(vec![state("a", 0, 1, 2)], vec![], true),
        &mut out,
    );
    assert_eq!(cached(&b), vec![("a-0".into(), 1, 2)]);
}
