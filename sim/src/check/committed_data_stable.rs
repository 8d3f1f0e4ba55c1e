//! `committed-data-stable`: a record below the high watermark never changes, and two replicas
//! agree below the smaller of their high watermarks.
//!
//! **Source.** Raft's `ConsistentCommittedData` / log matching as Kafka's own Raft simulation
//! checks it (apache/kafka `RaftEventSimulationTest`: every node's committed prefix agrees with
//! every other's, and what was committed stays committed), stated for Kafka's ISR replication
//! in KAFKA-SEMANTICS.md. A record below a replica's HW has been exposed to consumers; if
//! another record later sits at that offset, or two replicas hold different records below both
//! their HWs, consumers of different replicas or at different times read different data at one
//! offset. KIP-101's second scenario (two replicas lose different unflushed tails, the shorter
//! one leads and writes, the other keeps its old record), KIP-279 (fast leader changes) and
//! KAFKA-7164 break it.
//!
//! **How it is judged here.** At each replica snapshot ([`crate::snapshot`]) every running
//! replica with in-memory HW `h` contributes the records of its log below `h` (from its log
//! start): `(offset, value, leader epoch of the batch)`. The first record seen below an HW at an
//! offset is that offset's committed record. A later (or simultaneous, on another replica)
//! different record below an HW at the same offset is a violation: the committed record
//! changed, or two replicas disagree below both their HWs. Followers' HWs are their own
//! (learned one fetch late, or read back from `replication-offset-checkpoint` after a
//! restart), exactly as Raft's log matching judges each node's own commit index.
//!
//! **A recovered replica's HW is not a claim until it is back in sync.** Kafka writes
//! `replication-offset-checkpoint` every few seconds without flushing the log first, and a
//! truncation is not fsynced either; after a power failure or a lost/faulty disk a replica can
//! come back with an HW (min of the checkpoint and its recovered log end) that covers records it
//! later truncated away before the failure, or never had. Kafka trusts such a replica's data only
//! once it has truncated against the current leader (OffsetsForLeaderEpoch, KIP-101/279) and
//! caught up: it serves nothing before it leads or rejoins the ISR. So a replica that lost power,
//! its disk or had a disk fault is judged again for a partition from the moment it leads it
//! (`became-leader`) or its leader adds it back to the ISR (`isr-changed` that includes it
//! again); a leader is always judged. Until then its records do not count as committed.
//!
//! **What is allowed.** During the run, a change is excused when every replica seen holding the
//! committed record below its HW has since lost power, its disk or had a disk fault: Kafka keeps
//! committed records by replication, not fsync, and promises nothing once every copy is gone
//! (KAFKA-SEMANTICS.md, `committed-record-lost`; KIP-966). At the end (`final` snapshot, after
//! the heal and drain phases) no excuse applies: replicas that still disagree below both their
//! HWs have diverged for good (KIP-101's second scenario). Each (partition, offset, record) is
//! reported once.

use super::lesson::{self, Lesson, Prevention};
use super::{violation, CheckInput, Checker, OffsetMap, Violation};
use ksim_model::event::Event;
use ksim_model::types::{BrokerId, LeaderEpoch, NodeId, Offset, TopicPartition};
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};

/// See the module documentation.
pub struct CommittedDataStable;

/// The committed record first seen at an offset.
struct Committed {
    value: u64,
    epoch: LeaderEpoch,
    broker: BrokerId,
    time_ms: u64,
    high_watermark: Offset,
    /// Events recorded when it was first seen.
    event_count: usize,
    /// Every replica seen holding it below its HW (a handful: a vector).
    holders: Vec<BrokerId>,
}

impl Checker for CommittedDataStable {
    fn name(&self) -> &'static str {
        "committed-data-stable"
    }

    fn statement(&self) -> &'static str {
        "a record below the high watermark never changes"
    }

    fn lesson(&self) -> Lesson {
        Lesson {
            intro: lesson::OFFSET_REUSED,
            prevention: Prevention::Loss,
        }
    }

    fn check(&self, input: &CheckInput) -> Vec<Violation> {
        // The event indexes of each broker's data losses.
        let mut losses: BTreeMap<BrokerId, Vec<usize>> = BTreeMap::new();
        for (i, r) in input.events.iter().enumerate() {
            if let Event::Fault { action, nodes, .. } = &r.event {
                if action == "power-fail" || action == "disk-loss" || action == "disk-fault" {
                    for n in nodes {
                        if let Some(NodeId::Broker(b)) = NodeId::parse(n) {
                            losses.entry(b).or_default().push(i);
                        }
                    }
                }
            }
        }
        let lost_between = |b: &BrokerId, from: usize, to: usize| {
            losses
                .get(b)
                .is_some_and(|v| v.iter().any(|i| *i >= from && *i < to))
        };
        // Per (partition, broker): event indexes at which the broker led the partition or its
        // leader added it back to the ISR (it had truncated against the leader and caught up).
        let mut resynced: BTreeMap<(TopicPartition, BrokerId), Vec<usize>> = BTreeMap::new();
        let mut last_isr: BTreeMap<TopicPartition, Vec<BrokerId>> = BTreeMap::new();
        for (i, r) in input.events.iter().enumerate() {
            match &r.event {
                Event::BecameLeader {
                    tp, broker, isr, ..
                } => {
                    resynced.entry((tp.clone(), *broker)).or_default().push(i);
                    last_isr.insert(tp.clone(), isr.clone());
                }
                Event::IsrChanged { tp, isr, .. } => {
                    let before = last_isr.get(tp).cloned().unwrap_or_default();
                    for b in isr.iter().filter(|b| !before.contains(b)) {
                        resynced.entry((tp.clone(), *b)).or_default().push(i);
                    }
                    last_isr.insert(tp.clone(), isr.clone());
                }
                _ => {}
            }
        }
        // Whether broker `b`'s copy of `tp` is unverified at event count `now`: it lost power,
        // its disk or had a disk fault before `now` and has not led `tp` or rejoined its ISR
        // since.
        let unverified = |tp: &TopicPartition, b: BrokerId, now: usize| {
            let Some(last_loss) = losses
                .get(&b)
                .and_then(|v| v.iter().rev().find(|i| **i < now))
            else {
                return false;
            };
            !resynced
                .get(&(tp.clone(), b))
                .is_some_and(|v| v.iter().any(|i| *i > *last_loss && *i < now))
        };
        // Per partition (looked up once per snapshot, not per record), per offset.
        let mut committed: BTreeMap<TopicPartition, OffsetMap<Committed>> = BTreeMap::new();
        let mut reported: BTreeSet<(TopicPartition, Offset, u64, i32)> = BTreeSet::new();
        let mut anomalies = Vec::new();
        for s in input.snapshots {
            let is_final = s.trigger == "final";
            let committed = committed.entry(s.tp.clone()).or_default();
            for r in s.replicas.iter().filter(|r| r.running) {
                let Some(hw) = r.high_watermark else { continue };
                if r.leader_epoch.is_none() && unverified(&s.tp, r.broker, s.event_count) {
                    continue;
                }
                for &(offset, value, epoch) in r.records.iter().take_while(|(o, _, _)| *o < hw) {
                    if offset < r.log_start_offset {
                        continue;
                    }
                    let Some(c) = committed.get_mut(offset) else {
                        committed.insert_new(
                            offset,
                            Committed {
                                value,
                                epoch,
                                broker: r.broker,
                                time_ms: s.time_ms,
                                high_watermark: hw,
                                event_count: s.event_count,
                                holders: vec![r.broker],
                            },
                        );
                        continue;
                    };
                    if (c.value, c.epoch) == (value, epoch) {
                        if !c.holders.contains(&r.broker) {
                            c.holders.push(r.broker);
                        }
                        continue;
                    }
                    let excused = !is_final
                        && c.holders
                            .iter()
                            .all(|h| lost_between(h, c.event_count, s.event_count));
                    if excused || !reported.insert((s.tp.clone(), offset, value, epoch.0)) {
                        continue;
                    }
                    let when = if c.time_ms == s.time_ms {
                        "at the same moment".to_string()
                    } else {
                        format!("at t={} ms", c.time_ms)
                    };
                    let sentence = format!(
                        "{} offset {}: broker-{} holds value {value} of epoch {} below its HW {} at t={} ms ({} snapshot), but broker-{} held value {} of epoch {} there below its HW {} {when}",
                        s.tp,
                        offset.0,
                        r.broker.0,
                        epoch.0,
                        hw.0,
                        s.time_ms,
                        s.trigger,
                        c.broker.0,
                        c.value,
                        c.epoch.0,
                        c.high_watermark.0,
                    );
                    anomalies.push((
                        sentence,
                        json!({
                            "tp": s.tp.to_string(),
                            "offset": offset.0,
                            "broker": r.broker.0,
                            "value": value,
                            "epoch": epoch.0,
                            "high_watermark": hw.0,
                            "time_ms": s.time_ms,
                            "trigger": s.trigger,
                            "committed": {
                                "broker": c.broker.0,
                                "value": c.value,
                                "epoch": c.epoch.0,
                                "high_watermark": c.high_watermark.0,
                                "time_ms": c.time_ms,
                            },
                        }),
                    ));
                }
            }
        }
        violation(self.name(), None, anomalies, serde_json::Map::new())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::testkit::*;

    #[test]
    fn a_committed_record_that_changes_is_a_violation() {
        // broker-0 led with HW 2; later broker-1 leads and holds another record at offset 1
        // below its HW.
        let before = SnapshotBuilder::new(0)
            .leader(0, 1, 2, &[0, 1], &[(0, 10, 1), (1, 11, 1)])
            .follower(1, 1, &[(0, 10, 1), (1, 11, 1)])
            .build();
        let after = SnapshotBuilder::new(500)
            .dead(0, &[(0, 10, 1), (1, 11, 1)])
            .leader(1, 2, 2, &[1], &[(0, 10, 1), (1, 21, 2)])
            .build();
        let v = check_snapshots(&CommittedDataStable, &[], &[before, after]);
        assert_eq!(v.len(), 1, "{v:?}");
        assert_eq!(v[0].check, "committed-data-stable");
        assert!(
            v[0].message.starts_with(
                "events-0 offset 1: broker-1 holds value 21 of epoch 2 below its HW 2 at t=500 ms"
            ),
            "{}",
            v[0].message
        );
        assert!(
            v[0].message
                .contains("but broker-0 held value 11 of epoch 1 there below its HW 2 at t=0 ms"),
            "{}",
            v[0].message
        );
    }

    #[test]
    fn two_replicas_disagreeing_below_both_hws_is_a_violation_even_after_power_loss() {
        // KIP-101 #2 at the end: both lost power, they diverged and never repaired it; broker-0
        // leads and broker-1 rejoined its ISR with the diverged record.
        let events = vec![
            (
                NodeId::Zk,
                Event::Fault {
                    action: "power-fail".into(),
                    nodes: vec!["broker-0".into(), "broker-1".into()],
                    source: "random".into(),
                },
            ),
            (NodeId::Broker(b(0)), became_leader(0, 3, &[0])),
            (NodeId::Broker(b(0)), isr_changed(0, 3, &[0, 1])),
        ];
        let mut end = SnapshotBuilder::new(900)
            .leader(0, 3, 2, &[0, 1], &[(0, 10, 1), (1, 31, 3)])
            .follower(1, 2, &[(0, 10, 1), (1, 11, 1)])
            .build();
        end.trigger = "final".into();
        end.event_count = 3;
        let v = check_snapshots(&CommittedDataStable, &events, &[end]);
        assert_eq!(v.len(), 1, "{v:?}");
        assert!(
            v[0].message.contains("at the same moment"),
            "{}",
            v[0].message
        );
    }

    fn b(n: i32) -> BrokerId {
        BrokerId(n)
    }

    fn became_leader(broker: i32, epoch: i32, isr: &[i32]) -> Event {
        Event::BecameLeader {
            tp: tp(0),
            broker: b(broker),
            leader_epoch: LeaderEpoch(epoch),
            isr: isr.iter().map(|i| b(*i)).collect(),
            log_end_offset: Offset(2),
            high_watermark: Offset(0),
        }
    }

    fn isr_changed(leader: i32, epoch: i32, isr: &[i32]) -> Event {
        Event::IsrChanged {
            tp: tp(0),
            broker: b(leader),
            leader_epoch: LeaderEpoch(epoch),
            isr: isr.iter().map(|i| b(*i)).collect(),
            partition_epoch: ksim_model::types::ZkVersion(1),
        }
    }

    #[test]
    fn a_power_failed_follower_is_judged_again_once_it_rejoins_the_isr() {
        // broker-1 had truncated offset 1 away and refetched the leader's record, then lost
        // power: the truncation and the refetch were not flushed, so it comes back with its old
        // record under the HW read back from its checkpoint (all-faults seed 142). It serves
        // nothing until it has truncated against the leader again; then the leader re-adds it.
        let power_fail = (
            NodeId::Zk,
            Event::Fault {
                action: "power-fail".into(),
                nodes: vec!["broker-1".into()],
                source: "random".into(),
            },
        );
        let stale = || {
            let mut s = SnapshotBuilder::new(500)
                .leader(0, 2, 2, &[0, 1], &[(0, 10, 1), (1, 21, 2)])
                .follower(1, 2, &[(0, 10, 1), (1, 11, 1)])
                .build();
            s.event_count = 1;
            s
        };
        assert!(
            check_snapshots(&CommittedDataStable, &[power_fail.clone()], &[stale()]).is_empty()
        );
        // Rejoined the ISR and still holds the old record below its HW: a real divergence.
        let events = vec![
            power_fail,
            (NodeId::Broker(b(0)), isr_changed(0, 2, &[0])),
            (NodeId::Broker(b(0)), isr_changed(0, 2, &[0, 1])),
        ];
        let mut rejoined = stale();
        rejoined.event_count = 3;
        let v = check_snapshots(&CommittedDataStable, &events, &[rejoined]);
        assert_eq!(v.len(), 1, "{v:?}");
        // A leader is always judged, even before anything re-verified it.
        let mut led = SnapshotBuilder::new(500)
            .follower(0, 2, &[(0, 10, 1), (1, 21, 2)])
            .leader(1, 2, 2, &[1], &[(0, 10, 1), (1, 11, 1)])
            .build();
        led.event_count = 1;
        let one_fault = vec![events[0].clone()];
        assert_eq!(
            check_snapshots(&CommittedDataStable, &one_fault, &[led]).len(),
            1
        );
    }

    #[test]
    fn agreeing_replicas_uncommitted_tails_and_lost_copies_pass() {
        // Records above the HWs may differ; below them all agree.
        let a = SnapshotBuilder::new(0)
            .leader(0, 1, 2, &[0, 1], &[(0, 10, 1), (1, 11, 1), (2, 12, 1)])
            .follower(1, 1, &[(0, 10, 1), (1, 11, 1), (2, 99, 0)])
            .build();
        let b = SnapshotBuilder::new(100)
            .leader(0, 1, 3, &[0, 1], &[(0, 10, 1), (1, 11, 1), (2, 12, 1)])
            .follower(1, 3, &[(0, 10, 1), (1, 11, 1), (2, 12, 1)])
            .build();
        assert!(check_snapshots(&CommittedDataStable, &[], &[a.clone(), b]).is_empty());
        // Every holder of offset 1 lost power before broker-1 wrote another record there.
        let events = vec![(
            NodeId::Zk,
            Event::Fault {
                action: "power-fail".into(),
                nodes: vec!["broker-0".into(), "broker-1".into()],
                source: "random".into(),
            },
        )];
        let mut later = SnapshotBuilder::new(500)
            .follower(0, 1, &[(0, 10, 1)])
            .leader(1, 2, 2, &[1], &[(0, 10, 1), (1, 21, 2)])
            .build();
        later.event_count = 1;
        assert!(
            check_snapshots(&CommittedDataStable, &events, &[a.clone(), later.clone()]).is_empty()
        );
        // Without the power loss it is a violation.
        assert_eq!(
            check_snapshots(&CommittedDataStable, &[], &[a, later]).len(),
            1
        );
    }
}
