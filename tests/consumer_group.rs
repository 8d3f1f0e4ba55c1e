//! Consumer groups through the simulated network, end to end
//! (`scenarios/consumer-group-rebalance-under-faults.toml`, on its pinned seeds): three
//! cooperative-sticky members, the coordinator killed, a member killed and restarted.
//!
//! What must hold, beyond the checks the run itself makes:
//! * within every generation the coordinator's assignment gives each of the six partitions to
//!   exactly one member (I1 of GROUPS-AND-TRANSACTIONS.md A4);
//! * the coordinator that took over after the failover loaded the group with the generation it
//!   had (`group-state-changed` from Dead with that generation);
//! * cooperative hand-over (KIP-429): a partition is assigned to a new owner only after the
//!   member that owned it revoked it;
//! * every commit acknowledged in subscribe mode carries a generation and a member id;
//! * every `process` operation that started also ended, except on the crashed process.

use ksim::run::run;
use ksim::scenario::load;
use ksim_model::event::{Event, OpType, OpValue};
use ksim_model::types::{NodeId, TopicPartition};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

const SCENARIO: &str = "scenarios/consumer-group-rebalance-under-faults.toml";

#[test]
fn a_cooperative_group_rebalances_through_a_coordinator_failover_and_a_member_crash() {
    let sc = load(Path::new(SCENARIO)).unwrap_or_else(|e| panic!("{e}"));
    for &seed in &sc.seeds {
        let r = run(&sc, seed);
        assert!(r.checks.is_ok(), "seed {seed}: {:?}", r.checks.violations);
        assert!(r.missed.is_empty(), "seed {seed}: missed {:?}", r.missed);
        let events = &r.output.events;

        // I1: per generation, each partition exactly once.
        let mut generations = 0;
        let mut last_generation = 0;
        let mut last_covered = 0;
        for e in events {
            if let Event::GroupAssignmentCompleted {
                generation,
                members,
                ..
            } = &e.event
            {
                generations += 1;
                last_generation = last_generation.max(*generation);
                let mut seen = BTreeSet::new();
                for m in members {
                    for tp in &m.partitions {
                        assert!(
                            seen.insert(tp.clone()),
                            "seed {seed}: {tp} twice in generation {generation}"
                        );
                    }
                }
                // Cooperative-sticky withholds a partition that moves for one generation
                // (KIP-429), so only the last generation must cover all six.
                last_covered = seen.len();
            }
        }
        assert_eq!(
            last_covered, 6,
            "seed {seed}: the last generation {last_generation} covers all six partitions"
        );
        assert!(
            generations >= 3,
            "seed {seed}: join, crash, rejoin: {generations}"
        );

        // The failover kept the generation.
        let loaded = events.iter().find_map(|e| match &e.event {
            Event::GroupStateChanged {
                from, generation, ..
            } if from == "Dead" => Some(*generation),
            _ => None,
        });
        assert_eq!(
            loaded,
            Some(1),
            "seed {seed}: the new coordinator knew generation 1"
        );

        // Revoke before reassign: track owners from the members' own events.
        let mut owner: BTreeMap<TopicPartition, NodeId> = BTreeMap::new();
        for e in events {
            match &e.event {
                Event::PartitionsAssigned { partitions, .. } => {
                    for tp in partitions {
                        if let Some(prev) = owner.get(tp) {
                            // Only a crashed process (consumer-1, killed at 11 s) or the same
                            // node may still be listed.
                            assert!(
                                *prev == e.node || *prev == NodeId::Consumer(1),
                                "seed {seed}: {tp} assigned to {} at {} while {prev} owns it",
                                e.node,
                                e.time_ms
                            );
                        }
                        owner.insert(tp.clone(), e.node);
                    }
                }
                Event::PartitionsRevoked { partitions, .. }
                | Event::PartitionsLost { partitions, .. } => {
                    for tp in partitions {
                        owner.remove(tp);
                    }
                }
                _ => {}
            }
        }
        assert!(
            events
                .iter()
                .any(|e| matches!(e.event, Event::PartitionsRevoked { .. })),
            "seed {seed}: the cooperative hand-over revoked something"
        );

        // Commits carry the member's generation and id.
        let acked: Vec<_> = r
            .output
            .history
            .iter()
            .filter(|h| h.op.op_type == OpType::Ok)
            .filter_map(|h| match &h.op.value {
                OpValue::Commit {
                    generation,
                    member_id,
                    ..
                } => Some((*generation, member_id.clone())),
                _ => None,
            })
            .collect();
        assert!(!acked.is_empty(), "seed {seed}: commits were acknowledged");
        for (generation, member_id) in acked {
            assert!(generation.is_some_and(|g| g >= 1), "seed {seed}");
            assert!(member_id.is_some_and(|m| !m.is_empty()), "seed {seed}");
        }

        // Process operations pair up, except where the process crashed.
        let mut open: BTreeMap<(NodeId, u64), u64> = BTreeMap::new();
        for h in &r.output.history {
            if let OpValue::Process { .. } = &h.op.value {
                match h.op.op_type {
                    OpType::Invoke => {
                        open.insert((h.process, h.op.op_id), h.time_ms);
                    }
                    _ => {
                        open.remove(&(h.process, h.op.op_id));
                    }
                }
            }
        }
        let end = sc.duration_ms + sc.heal_ms;
        for ((node, _), at) in &open {
            assert!(
                *node == NodeId::Consumer(1) || *at + 1_000 > end,
                "seed {seed}: {node} left a process op open at {at}"
            );
        }
    }
}
