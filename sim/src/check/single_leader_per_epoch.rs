//! `single-leader-per-epoch`: at most one leader per partition per leader epoch, and at most
//! one controller per controller epoch.
//!
//! **Definition.** Epochs are Kafka's fencing tokens. A leader epoch names one leadership of a
//! partition; followers, consumers and producers use it to reject a stale leader's requests and
//! to truncate divergent logs (KIP-101, KIP-279, KIP-320). That only works if an epoch names one
//! broker. Likewise the controller epoch (`/controller_epoch`) lets brokers ignore a deposed
//! controller. The check reads the event log and reports:
//!
//! * two different brokers logging `became-leader` for the same (partition, leader epoch);
//! * two different brokers logging `controller-elected` for the same controller epoch;
//! * two `partition-state-changed` events (written by the controller) naming two different
//!   leaders for the same (partition, leader epoch).
//!
//! **Source.** Raft's `SingleLeader` / Election Safety ("at most one leader can be elected in a
//! given term"), which Kafka's leader epoch mirrors, and the controller-epoch fencing of Kafka's
//! ZooKeeper controller (`KafkaController`: the epoch is incremented by a conditional write, so
//! two elections cannot both claim one epoch). In `KafkaReplication.tla` the controller bumps
//! the leader epoch on every leadership change for the same reason.
//!
//! **What is allowed.** The same broker may log `became-leader` for the same epoch more than
//! once (a repeated LeaderAndIsr request is idempotent), and the controller may write the same
//! (partition, epoch) several times with the same leader or with no leader. Two brokers may
//! *believe* they lead in different epochs at the same time (a deposed leader that has not yet
//! heard of the new epoch): that is fenced by the epoch and is not a violation here; only one
//! epoch with two leaders is.

use super::lesson::{self, Lesson, Prevention};
use super::{at, event_json, violation, CheckInput, Checker, Violation};
use crate::history::EventRecord;
use ksim_model::event::Event;
use ksim_model::types::{BrokerId, TopicPartition};
use serde_json::json;
use std::collections::BTreeMap;

/// See the module documentation.
pub struct SingleLeaderPerEpoch;

/// For one epoch: the first event per distinct broker that claimed it, in claim order.
type Claims<'a> = Vec<(BrokerId, &'a EventRecord)>;

fn claim<'a, K: Ord>(
    map: &mut BTreeMap<K, Claims<'a>>,
    key: K,
    broker: BrokerId,
    record: &'a EventRecord,
) {
    let claims = map.entry(key).or_default();
    if !claims.iter().any(|(b, _)| *b == broker) {
        claims.push((broker, record));
    }
}

fn claimants(claims: &Claims<'_>) -> String {
    let parts: Vec<String> = claims
        .iter()
        .map(|(b, r)| format!("broker-{b} ({})", at(r)))
        .collect();
    parts.join(" and ")
}

fn claims_json(claims: &Claims<'_>) -> serde_json::Value {
    json!(claims
        .iter()
        .map(|(b, r)| json!({ "broker": b.0, "at": event_json(r) }))
        .collect::<Vec<_>>())
}

impl Checker for SingleLeaderPerEpoch {
    fn name(&self) -> &'static str {
        "single-leader-per-epoch"
    }

    fn statement(&self) -> &'static str {
        "at most one broker leads a partition per leader epoch, and one controller per controller epoch"
    }

    fn lesson(&self) -> Lesson {
        Lesson {
            intro: lesson::INTERNAL_INVARIANT,
            prevention: Prevention::ProtocolInvariant,
        }
    }

    fn check(&self, input: &CheckInput) -> Vec<Violation> {
        let mut became_leader: BTreeMap<(TopicPartition, i32), Claims<'_>> = BTreeMap::new();
        let mut controllers: BTreeMap<i32, Claims<'_>> = BTreeMap::new();
        let mut decided: BTreeMap<(TopicPartition, i32), Claims<'_>> = BTreeMap::new();
        for record in input.events {
            match &record.event {
                Event::BecameLeader {
                    tp,
                    broker,
                    leader_epoch,
                    ..
                } => claim(
                    &mut became_leader,
                    (tp.clone(), leader_epoch.0),
                    *broker,
                    record,
                ),
                Event::ControllerElected {
                    broker,
                    controller_epoch,
                } => claim(&mut controllers, controller_epoch.0, *broker, record),
                Event::PartitionStateChanged {
                    tp,
                    leader: Some(leader),
                    leader_epoch,
                    ..
                } => claim(&mut decided, (tp.clone(), leader_epoch.0), *leader, record),
                _ => {}
            }
        }

        let mut anomalies = Vec::new();
        for ((tp, epoch), claims) in became_leader.iter().filter(|(_, c)| c.len() > 1) {
            let sentence = format!(
                "{} brokers became leader of {tp} in leader epoch {epoch}: {}",
                claims.len(),
                claimants(claims)
            );
            let data = json!({
                "kind": "became-leader",
                "tp": tp.to_string(),
                "leader_epoch": epoch,
                "claims": claims_json(claims),
            });
            anomalies.push((sentence, data));
        }
        for (epoch, claims) in controllers.iter().filter(|(_, c)| c.len() > 1) {
            let sentence = format!(
                "{} brokers were elected controller in controller epoch {epoch}: {}",
                claims.len(),
                claimants(claims)
            );
            let data = json!({
                "kind": "controller-elected",
                "controller_epoch": epoch,
                "claims": claims_json(claims),
            });
            anomalies.push((sentence, data));
        }
        for ((tp, epoch), claims) in decided.iter().filter(|(_, c)| c.len() > 1) {
            let leaders: Vec<String> = claims
                .iter()
                .map(|(b, r)| format!("broker-{b} (written by {})", at(r)))
                .collect();
            let sentence = format!(
                "the controller named {} different leaders of {tp} for leader epoch {epoch}: {}",
                claims.len(),
                leaders.join(" and ")
            );
            let data = json!({
                "kind": "partition-state-changed",
                "tp": tp.to_string(),
                "leader_epoch": epoch,
                "claims": claims_json(claims),
            });
            anomalies.push((sentence, data));
        }
        violation(self.name(), None, anomalies, serde_json::Map::new())
    }
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use super::*;
    use ksim_model::types::{ControllerEpoch, LeaderEpoch, NodeId, Offset, ZkVersion};

    fn became_leader(broker: i32, epoch: i32) -> (NodeId, Event) {
        (
            NodeId::Broker(BrokerId(broker)),
            Event::BecameLeader {
                tp: tp(0),
                broker: BrokerId(broker),
                leader_epoch: LeaderEpoch(epoch),
                isr: vec![BrokerId(0), BrokerId(1)],
                log_end_offset: Offset(0),
                high_watermark: Offset(0),
            },
        )
    }

    fn elected(broker: i32, epoch: i32) -> (NodeId, Event) {
        (
            NodeId::Broker(BrokerId(broker)),
            Event::ControllerElected {
                broker: BrokerId(broker),
                controller_epoch: ControllerEpoch(epoch),
            },
        )
    }

    fn state(controller: i32, leader: Option<i32>, epoch: i32) -> (NodeId, Event) {
        (
            NodeId::Broker(BrokerId(controller)),
            Event::PartitionStateChanged {
                tp: tp(0),
                leader: leader.map(BrokerId),
                leader_epoch: LeaderEpoch(epoch),
                isr: vec![BrokerId(0), BrokerId(1)],
                controller_epoch: ControllerEpoch(1),
                partition_epoch: ZkVersion(epoch),
                reason: "leader-failed".into(),
                last_known_elr: vec![],
            },
        )
    }

    #[test]
    fn two_leaders_or_controllers_in_one_epoch_are_a_violation() {
        let events = [
            elected(0, 1),
            state(0, Some(0), 1),
            became_leader(0, 1),
            elected(2, 1),
            state(2, Some(1), 1),
            became_leader(1, 1),
        ];
        let v = check_events(&SingleLeaderPerEpoch, &events);
        assert_eq!(v.len(), 1, "{v:?}");
        assert_eq!(v[0].check, "single-leader-per-epoch");
        assert_eq!(v[0].details["count"], 3);
        assert_eq!(
            v[0].message,
            "2 brokers became leader of events-0 in leader epoch 1: broker-0 (broker-0 at t=200 ms) \
             and broker-1 (broker-1 at t=500 ms) (2 more like this in details)"
        );
        assert_eq!(v[0].details["anomalies"][1]["kind"], "controller-elected");
        assert_eq!(
            v[0].details["anomalies"][2]["message"],
            "the controller named 2 different leaders of events-0 for leader epoch 1: \
             broker-0 (written by broker-0 at t=100 ms) and broker-1 (written by broker-2 at t=400 ms)"
        );
    }

    #[test]
    fn one_leader_per_epoch_with_repeats_passes() {
        let events = [
            elected(0, 1),
            state(0, Some(0), 1),
            became_leader(0, 1),
            became_leader(0, 1),
            state(0, None, 2),
            elected(1, 2),
            state(1, Some(1), 3),
            state(1, Some(1), 3),
            became_leader(1, 3),
            // A deposed leader still acting in an older epoch is fenced, not a violation here.
            became_leader(0, 1),
        ];
        assert!(check_events(&SingleLeaderPerEpoch, &events).is_empty());
    }
}
