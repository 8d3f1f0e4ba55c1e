//! `strong-isr`: every member of the controller's ISR holds the leader's records below the
//! leader's high watermark.
//!
//! **Source.** KafkaReplication.tla (hachikuji/kafka-specification), `StrongIsr`:
//!
//! ```text
//! StrongIsr == \A r1 \in Replicas :
//!     \/ ~ ReplicaPresumesLeadership(r1)
//!     \/ LET hw == replicaState[r1].hw
//!        IN  \/ hw = 0
//!            \/ \A r2 \in quorumState.isr, offset \in 0 .. (hw - 1) : \E record \in LogRecords :
//!                  /\ ReplicaLog!HasEntry(r1, record, offset)
//!                  /\ ReplicaLog!HasEntry(r2, record, offset)
//! ```
//!
//! In words: whenever a replica presumes leadership (a zombie leader included) and its HW is
//! `h`, every replica in the *quorum* ISR (the ISR the controller last wrote to ZooKeeper, the
//! one leaders are elected from) holds, at every offset below `h`, the very record the leader
//! holds there: same offset, same value, same leader epoch (a TLA+ record is an id and an
//! epoch). This is what makes the HW safe to expose: whichever ISR member is elected next has
//! every record consumers may have read. KAFKA-SEMANTICS.md lists KIP-101's first scenario
//! (a restarted follower truncates to its own, lagging HW while staying in the ISR) and KIP-320's
//! stale-epoch follower as ways to break it.
//!
//! **How it is judged here.** The property is about logs, not about followers' HWs: a follower
//! may learn the HW a fetch late, but the leader moves its HW past an offset only after every
//! member of its (maximal) ISR has fetched beyond it, and a follower joins the ISR only once it
//! has caught up to the HW, so an ISR member holds every record below the leader's HW the moment
//! the leader has it. The check reads the replica snapshots ([`crate::snapshot`]): at each
//! snapshot of a partition, for each running broker acting as leader with in-memory HW `h`, and
//! each member `m` of the controller's latest ISR, `m`'s log (as on its disk, whether or not its
//! process runs: a crash keeps the page cache) must hold the leader's `(value, epoch)` at every
//! offset below `h` where the leader holds a data record and `m`'s log has not been cleaned
//! away (offset >= `m`'s log start). A member with no log for the partition holds nothing. A
//! hole in the member's log (no record at an offset below its last record) is not judged: the
//! log cleaner compacts each replica on its own schedule, and truncation only cuts the tail.
//!
//! A broker that crashed while leading no longer reports an HW, and a restarted one holds no
//! role until the controller tells it; yet its HW was exposed and the controller may still
//! elect from the ISR it wrote. So the controller's current leader, when it does not act as
//! leader in the controller's epoch, is judged with the last HW it reached in that epoch (its
//! `became-leader` and `high-watermark-changed` events) and its log on disk, until the
//! controller writes a new leader epoch. (The TLA+ model has no crashes: its replica state
//! simply persists.) KIP-101's first scenario needs this: the follower truncates while the
//! crashed leader's HW still stands, and is then elected.
//!
//! **What is allowed.** A member that lost power or its disk (or had a disk fault) since it last
//! joined the ISR is not judged: Kafka keeps committed records by replication, not by fsync, and
//! the controller drops such a broker from the ISR when it re-registers (KIP-380/KIP-903); until
//! then the TLA+ model, which has no power failures, says nothing about it. Violations between
//! two snapshots are not seen (see [`crate::snapshot`] for when snapshots are taken). Each
//! (partition, leader, member, offset) is reported once.

use super::lesson::{self, Lesson, Prevention};
use super::{violation, CheckInput, Checker, DataLossTracker, Violation};
use crate::snapshot::{ReplicaSnapshot, ReplicaState};
use ksim_model::event::Event;
use ksim_model::types::{BrokerId, LeaderEpoch, Offset, TopicPartition};
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};

/// See the module documentation.
pub struct StrongIsr;

impl Checker for StrongIsr {
    fn name(&self) -> &'static str {
        "strong-isr"
    }

    fn statement(&self) -> &'static str {
        "every ISR member holds the leader's records below the high watermark"
    }

    fn lesson(&self) -> Lesson {
        Lesson {
            intro: lesson::REPLICAS_DISAGREED,
            prevention: Prevention::Loss,
        }
    }

    fn check(&self, input: &CheckInput) -> Vec<Violation> {
        isr_holds_leader_records(input, self.name(), IsrKind::Controller)
    }
}

/// Which ISR the leader's records are checked against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum IsrKind {
    /// The ISR the controller last wrote (`strong-isr`).
    Controller,
    /// The leader's own local ISR (`weak-isr`).
    LeaderLocal,
}

/// The shared judgement of `strong-isr` and `weak-isr` (see the module documentation).
pub(crate) fn isr_holds_leader_records(
    input: &CheckInput,
    check: &str,
    kind: IsrKind,
) -> Vec<Violation> {
    let mut losses = DataLossTracker::default();
    let mut leaders = LeaderTracker::default();
    let mut reported: BTreeSet<(TopicPartition, BrokerId, BrokerId, Offset)> = BTreeSet::new();
    let mut anomalies = Vec::new();
    // A deleted topic's replicas remove their logs on purpose (StopReplica with delete): from
    // the deletion on, its partitions are not judged (the lost-write/unseen notes say so).
    let deleted = super::deleted_topics(input.events);
    for s in input.snapshots {
        losses.advance(input.events, s.event_count);
        leaders.advance(input.events, s.event_count);
        if deleted
            .get(s.tp.topic.as_str())
            .is_some_and(|&at| at <= s.time_ms)
        {
            continue;
        }
        // Every replica presuming leadership, with its in-memory HW and local ISR.
        let mut judged: Vec<(
            &ReplicaState,
            Offset,
            LeaderEpoch,
            Option<Vec<BrokerId>>,
            bool,
        )> = s
            .presumed_leaders()
            .filter_map(|r| {
                let hw = r.high_watermark?;
                Some((r, hw, r.leader_epoch?, r.local_isr.clone(), false))
            })
            .collect();
        // The controller's designated leader whose process crashed (or restarted and has not
        // taken the role again): its HW stands for the partition until a new epoch begins.
        if let Some((l, e)) = leaders.designated.get(&s.tp) {
            let presumes = judged
                .iter()
                .any(|(r, _, le, _, _)| r.broker == *l && *le == *e);
            if let (false, Some(r), Some((hw, local))) = (
                presumes,
                s.replica(*l),
                leaders.last_hw.get(&(s.tp.clone(), *l, *e)),
            ) {
                judged.push((r, *hw, *e, Some(local.clone()), true));
            }
        }
        for (leader, hw, leader_epoch, local_isr, down) in judged {
            let isr = match kind {
                IsrKind::Controller => s.controller_isr.as_ref(),
                IsrKind::LeaderLocal => local_isr.as_ref(),
            };
            let Some(isr) = isr else { continue };
            for &member in isr {
                if member == leader.broker || losses.excused(&s.tp, member) {
                    continue;
                }
                let held = s.replica(member);
                if let Some((offset, value, epoch, theirs)) = first_missing(leader, held, hw) {
                    if !reported.insert((s.tp.clone(), leader.broker, member, offset)) {
                        continue;
                    }
                    let lead = Lead {
                        broker: leader.broker,
                        epoch: leader_epoch,
                        hw,
                        down,
                    };
                    anomalies.push(describe(
                        s, kind, &lead, member, isr, offset, value, epoch, theirs,
                    ));
                }
            }
        }
    }
    violation(check, None, anomalies, serde_json::Map::new())
}

/// The leader whose HW is judged.
struct Lead {
    broker: BrokerId,
    epoch: LeaderEpoch,
    hw: Offset,
    /// The controller's leader, no longer acting as one (its process crashed or restarted).
    down: bool,
}

/// Follows the event log for what a crashed leader no longer reports: the controller's current
/// leader and epoch per partition, and each leader's last HW and local ISR in each epoch.
#[derive(Debug, Default)]
struct LeaderTracker {
    seen: usize,
    designated: BTreeMap<TopicPartition, (BrokerId, LeaderEpoch)>,
    last_hw: BTreeMap<(TopicPartition, BrokerId, LeaderEpoch), (Offset, Vec<BrokerId>)>,
}

impl LeaderTracker {
    fn advance(&mut self, events: &[crate::history::EventRecord], count: usize) {
        let count = count.min(events.len());
        for r in events.get(self.seen..count).unwrap_or(&[]) {
            match &r.event {
                Event::PartitionStateChanged {
                    tp,
                    leader,
                    leader_epoch,
                    ..
                } => match leader {
                    Some(l) => {
                        self.designated.insert(tp.clone(), (*l, *leader_epoch));
                    }
                    None => {
                        self.designated.remove(tp);
                    }
                },
                Event::BecameLeader {
                    tp,
                    broker,
                    leader_epoch,
                    isr,
                    high_watermark,
                    ..
                } => {
                    self.last_hw.insert(
                        (tp.clone(), *broker, *leader_epoch),
                        (*high_watermark, isr.clone()),
                    );
                }
                Event::IsrChanged {
                    tp,
                    broker,
                    leader_epoch,
                    isr,
                    ..
                } => {
                    if let Some(e) = self.last_hw.get_mut(&(tp.clone(), *broker, *leader_epoch)) {
                        e.1 = isr.clone();
                    }
                }
                Event::HighWatermarkChanged {
                    tp,
                    broker,
                    leader_epoch,
                    high_watermark,
                } => {
                    if let Some(e) = self.last_hw.get_mut(&(tp.clone(), *broker, *leader_epoch)) {
                        e.0 = e.0.max(*high_watermark);
                    }
                }
                _ => {}
            }
        }
        self.seen = self.seen.max(count);
    }
}

/// The first offset below `hw` where `leader` holds a data record that `member` does not hold
/// (with what `member` holds there instead, if anything).
#[allow(clippy::type_complexity)]
fn first_missing(
    leader: &ReplicaState,
    member: Option<&ReplicaState>,
    hw: Offset,
) -> Option<(Offset, u64, LeaderEpoch, Option<(u64, LeaderEpoch)>)> {
    // Both logs ascend by offset: walk the member's along the leader's (what
    // `ReplicaState::record_at` finds, without a search per record).
    let mut next = 0;
    for &(offset, value, epoch) in leader.records.iter().take_while(|(o, _, _)| *o < hw) {
        if member.is_some_and(|m| offset < m.log_start_offset) {
            continue;
        }
        let theirs = member.and_then(|m| {
            let records = &m.records;
            while records.get(next).is_some_and(|(o, _, _)| *o < offset) {
                next += 1;
            }
            records
                .get(next)
                .filter(|(o, _, _)| *o == offset)
                .map(|(_, v, e)| (*v, *e))
        });
        // A hole inside the member's log is a record the log cleaner removed (compaction cleans
        // each replica on its own schedule) or a control batch: truncation and recovery only
        // ever cut a log's tail.
        let hole = theirs.is_none() && member.is_some_and(|m| m.end_offset() > offset);
        if theirs != Some((value, epoch)) && !hole {
            return Some((offset, value, epoch, theirs));
        }
    }
    None
}

#[allow(clippy::too_many_arguments)]
fn describe(
    s: &ReplicaSnapshot,
    kind: IsrKind,
    leader: &Lead,
    member: BrokerId,
    isr: &[BrokerId],
    offset: Offset,
    value: u64,
    epoch: LeaderEpoch,
    theirs: Option<(u64, LeaderEpoch)>,
) -> (String, serde_json::Value) {
    let isr_names: Vec<String> = isr.iter().map(|b| format!("broker-{}", b.0)).collect();
    let which = match kind {
        IsrKind::Controller => "the controller's ISR",
        IsrKind::LeaderLocal => "its local ISR",
    };
    let instead = match theirs {
        Some((v, e)) => format!("holds value {v} of epoch {} there", e.0),
        None => match s.replica(member) {
            None => "has no log for the partition".to_string(),
            Some(m) => format!("has no record there (its log ends at {})", m.end_offset().0),
        },
    };
    let hw = leader.hw;
    let has = if leader.down {
        "no longer acting as leader (process restarted or down), last had"
    } else {
        "has"
    };
    let sentence = format!(
        "at t={} ms ({} snapshot), leader broker-{} of {} (epoch {}) {has} HW {}, but broker-{}, in {} [{}], lacks offset {} (value {value} of epoch {}): it {instead}",
        s.time_ms,
        s.trigger,
        leader.broker.0,
        s.tp,
        leader.epoch.0,
        hw.0,
        member.0,
        which,
        isr_names.join(", "),
        offset.0,
        epoch.0,
    );
    let data = json!({
        "tp": s.tp.to_string(),
        "time_ms": s.time_ms,
        "trigger": s.trigger,
        "leader": leader.broker.0,
        "leader_epoch": leader.epoch.0,
        "leader_down": leader.down,
        "high_watermark": hw.0,
        "member": member.0,
        "isr": isr.iter().map(|b| b.0).collect::<Vec<_>>(),
        "offset": offset.0,
        "value": value,
        "record_epoch": epoch.0,
        "member_holds": theirs.map(|(v, e)| json!({ "value": v, "epoch": e.0 })),
    });
    (sentence, data)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::testkit::*;

    #[test]
    fn a_controller_isr_member_missing_a_record_below_the_hw_is_a_violation() {
        // KIP-101 #1: broker-1 truncated to its own lagging HW (2) while the leader's HW is 4,
        // and the controller still lists it in the ISR.
        let snap = SnapshotBuilder::new(0)
            .controller_isr(&[0, 1])
            .leader(
                0,
                1,
                4,
                &[0, 1],
                &[(0, 10, 1), (1, 11, 1), (2, 12, 1), (3, 13, 1)],
            )
            .follower(1, 2, &[(0, 10, 1), (1, 11, 1)])
            .build();
        let v = check_snapshots(&StrongIsr, &[], std::slice::from_ref(&snap));
        assert_eq!(v.len(), 1, "{v:?}");
        // Once the topic is deleted, its replicas drop their logs on purpose: not judged.
        let deleted = [(
            ksim_model::types::NodeId::Broker(BrokerId(0)),
            Event::TopicDeleted {
                topic: snap.tp.topic.to_string(),
                controller_epoch: ksim_model::types::ControllerEpoch(1),
            },
        )];
        assert!(check_snapshots(&StrongIsr, &deleted, &[snap]).is_empty());
        assert_eq!(v[0].check, "strong-isr");
        assert!(
            v[0].message.contains("broker-1, in the controller's ISR [broker-0, broker-1], lacks offset 2 (value 12 of epoch 1): it has no record there (its log ends at 2)"),
            "{}",
            v[0].message
        );
        // A different record (same offset, another epoch) is as bad as none.
        let snap = SnapshotBuilder::new(0)
            .controller_isr(&[0, 1])
            .leader(0, 2, 2, &[0, 1], &[(0, 10, 1), (1, 11, 1)])
            .follower(1, 1, &[(0, 10, 1), (1, 99, 2)])
            .build();
        let v = check_snapshots(&StrongIsr, &[], &[snap]);
        assert!(v[0].message.contains("holds value 99 of epoch 2"), "{v:?}");
        // A record compacted away on the member (a hole below its last record) is fine.
        let snap = SnapshotBuilder::new(0)
            .controller_isr(&[0, 1])
            .leader(0, 1, 3, &[0, 1], &[(0, 10, 1), (1, 11, 1), (2, 12, 1)])
            .follower(1, 1, &[(0, 10, 1), (2, 12, 1)])
            .build();
        assert!(check_snapshots(&StrongIsr, &[], &[snap]).is_empty());
    }

    #[test]
    fn a_crashed_leaders_hw_still_binds_the_isr_until_a_new_epoch() {
        use ksim_model::event::Event;
        use ksim_model::types::{BrokerId, LeaderEpoch, NodeId, Offset, ZkVersion};
        let b = BrokerId;
        let state = |leader: i32, epoch: i32| Event::PartitionStateChanged {
            tp: tp(0),
            leader: Some(b(leader)),
            leader_epoch: LeaderEpoch(epoch),
            isr: vec![b(0), b(1)],
            controller_epoch: ksim_model::types::ControllerEpoch(1),
            partition_epoch: ZkVersion(0),
            reason: "test".into(),
            last_known_elr: vec![],
        };
        let events = vec![
            (NodeId::Zk, state(0, 1)),
            (
                NodeId::Broker(b(0)),
                Event::BecameLeader {
                    tp: tp(0),
                    broker: b(0),
                    leader_epoch: LeaderEpoch(1),
                    isr: vec![b(0), b(1)],
                    log_end_offset: Offset(0),
                    high_watermark: Offset(0),
                },
            ),
            (
                NodeId::Broker(b(0)),
                Event::HighWatermarkChanged {
                    tp: tp(0),
                    broker: b(0),
                    leader_epoch: LeaderEpoch(1),
                    high_watermark: Offset(2),
                },
            ),
            (NodeId::Zk, state(1, 2)),
        ];
        // broker-0 crashed with HW 2; broker-1, still in the ISR, truncated offset 1 away.
        let mut snap = SnapshotBuilder::new(0)
            .controller_isr(&[0, 1])
            .dead(0, &[(0, 10, 1), (1, 11, 1)])
            .follower(1, 0, &[(0, 10, 1)])
            .build();
        snap.event_count = 3;
        let v = check_snapshots(&StrongIsr, &events, std::slice::from_ref(&snap));
        assert_eq!(v.len(), 1, "{v:?}");
        assert!(
            v[0].message.contains("leader broker-0 of events-0 (epoch 1) no longer acting as leader (process restarted or down), last had HW 2, but broker-1"),
            "{}",
            v[0].message
        );
        assert_eq!(
            check_snapshots(
                &super::super::weak_isr::WeakIsr,
                &events,
                std::slice::from_ref(&snap)
            )
            .len(),
            1
        );
        // Once the controller elected a new leader (epoch 2), the old HW no longer binds.
        snap.event_count = 4;
        assert!(check_snapshots(&StrongIsr, &events, &[snap]).is_empty());
    }

    #[test]
    fn members_holding_the_prefix_out_of_isr_laggards_and_power_losses_pass() {
        // Both members hold everything below the HW; records above it may differ.
        let good = SnapshotBuilder::new(0)
            .controller_isr(&[0, 1, 2])
            .leader(0, 1, 2, &[0, 1, 2], &[(0, 10, 1), (1, 11, 1), (2, 12, 1)])
            .follower(1, 1, &[(0, 10, 1), (1, 11, 1)])
            .follower(2, 0, &[(0, 10, 1), (1, 11, 1), (2, 77, 0)])
            .build();
        // A replica out of the controller's ISR may lag; a dead broker is no leader.
        let lagging = SnapshotBuilder::new(0)
            .controller_isr(&[0])
            .leader(0, 1, 2, &[0, 1], &[(0, 10, 1), (1, 11, 1)])
            .follower(1, 0, &[])
            .build();
        let dead_leader = SnapshotBuilder::new(0)
            .controller_isr(&[0, 1])
            .dead(0, &[(0, 10, 1), (1, 11, 1)])
            .follower(1, 0, &[])
            .build();
        assert!(check_snapshots(&StrongIsr, &[], &[good, lagging, dead_leader]).is_empty());
        // broker-1 lost power: not judged until it rejoins the ISR.
        let events = vec![(
            ksim_model::types::NodeId::Zk,
            ksim_model::event::Event::Fault {
                action: "power-fail".into(),
                nodes: vec!["broker-1".into()],
                source: "random".into(),
            },
        )];
        let mut snap = SnapshotBuilder::new(0)
            .controller_isr(&[0, 1])
            .leader(0, 1, 2, &[0, 1], &[(0, 10, 1), (1, 11, 1)])
            .follower(1, 0, &[(0, 10, 1)])
            .build();
        snap.event_count = 1;
        assert!(check_snapshots(&StrongIsr, &events, &[snap.clone()]).is_empty());
        // Before the power failure it was judged.
        snap.event_count = 0;
        assert_eq!(check_snapshots(&StrongIsr, &events, &[snap]).len(), 1);
    }
}
