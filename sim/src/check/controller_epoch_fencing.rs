//! `controller-epoch-fencing`: no broker applies a controller request from an older controller
//! epoch than one it has already accepted.
//!
//! **Definition.** In ZooKeeper mode the controller is whichever broker holds the ephemeral
//! `/controller` znode; every election increments `/controller_epoch` with a conditional write,
//! and every LeaderAndIsr, UpdateMetadata and StopReplica carries the sender's controller epoch.
//! A controller that was deposed without noticing (a long GC pause, or a partition from the
//! coordination node that outlived its session) still believes it is in charge; the epoch is how
//! brokers tell its requests from the new controller's. The check reads the
//! `controller-request-accepted` events and reports every request a broker applied although the
//! same broker process had already applied one from a higher controller epoch: the broker
//! obeyed a zombie controller, and whatever it changed (leaders, ISRs, metadata, deleted logs)
//! came from a stale view of the cluster.
//!
//! **Source.** Kafka's `ReplicaManager.becomeLeaderOrFollower` / `maybeUpdateMetadataCache` /
//! `stopReplicas` ("Ignoring ... request from controller ... since its controller epoch ... is
//! old. Latest known controller epoch is ...", error STALE_CONTROLLER_EPOCH); the zombie
//! controller (split brain) of ZooKeeper-mode Kafka, and the generation clock pattern.
//!
//! **What is allowed.** Requests from the same or a higher epoch; the same epoch many times. A
//! restarted broker process starts knowing no epoch (as Kafka's does), so after a
//! `broker-started` event it may accept any epoch once more. That two brokers claim one
//! controller epoch is a different rule, checked by `single-leader-per-epoch`.

use super::lesson::{self, Lesson, Prevention};
use super::{at, event_json, violation, CheckInput, Checker, Violation};
use crate::history::EventRecord;
use ksim_model::event::Event;
use ksim_model::types::BrokerId;
use serde_json::json;
use std::collections::BTreeMap;

/// See the module documentation.
pub struct ControllerEpochFencing;

impl Checker for ControllerEpochFencing {
    fn name(&self) -> &'static str {
        "controller-epoch-fencing"
    }

    fn statement(&self) -> &'static str {
        "brokers obey no controller request older than one they already accepted"
    }

    fn lesson(&self) -> Lesson {
        Lesson {
            intro: lesson::INTERNAL_INVARIANT,
            prevention: Prevention::ProtocolInvariant,
        }
    }

    fn check(&self, input: &CheckInput) -> Vec<Violation> {
        // Per broker process: the highest controller epoch accepted and where.
        let mut highest: BTreeMap<BrokerId, (i32, &EventRecord)> = BTreeMap::new();
        let mut anomalies = Vec::new();
        for record in input.events {
            match &record.event {
                Event::BrokerStarted { broker } => {
                    highest.remove(broker);
                }
                Event::ControllerRequestAccepted {
                    broker,
                    controller,
                    controller_epoch,
                    api,
                } => {
                    let epoch = controller_epoch.0;
                    match highest.get(broker) {
                        Some(&(h, h_record)) if epoch < h => {
                            let sentence = format!(
                                "broker-{broker} applied {api} from controller broker-{controller} in controller \
                                 epoch {epoch} ({}) after it had accepted controller epoch {h} ({})",
                                at(record),
                                at(h_record)
                            );
                            let data = json!({
                                "broker": broker.0,
                                "controller": controller.0,
                                "api": api,
                                "controller_epoch": epoch,
                                "at": event_json(record),
                                "highest_controller_epoch": h,
                                "highest_at": event_json(h_record),
                            });
                            anomalies.push((sentence, data));
                        }
                        Some(&(h, _)) if epoch == h => {}
                        _ => {
                            highest.insert(*broker, (epoch, record));
                        }
                    }
                }
                _ => {}
            }
        }
        violation(self.name(), None, anomalies, serde_json::Map::new())
    }
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use super::*;
    use ksim_model::types::{ControllerEpoch, NodeId};

    fn accepted(broker: i32, controller: i32, epoch: i32, api: &str) -> (NodeId, Event) {
        (
            NodeId::Broker(BrokerId(broker)),
            Event::ControllerRequestAccepted {
                broker: BrokerId(broker),
                controller: BrokerId(controller),
                controller_epoch: ControllerEpoch(epoch),
                api: api.into(),
            },
        )
    }

    fn started(broker: i32) -> (NodeId, Event) {
        (
            NodeId::Broker(BrokerId(broker)),
            Event::BrokerStarted {
                broker: BrokerId(broker),
            },
        )
    }

    #[test]
    fn a_broker_obeying_a_deposed_controller_is_a_violation() {
        let events = [
            accepted(1, 0, 1, "LeaderAndIsr"),
            accepted(1, 2, 2, "UpdateMetadata"),
            // broker-0 was deposed (epoch 2 belongs to broker-2) but broker-1 obeys it.
            accepted(1, 0, 1, "LeaderAndIsr"),
            accepted(2, 0, 1, "UpdateMetadata"),
            accepted(2, 2, 2, "UpdateMetadata"),
            accepted(2, 0, 1, "UpdateMetadata"),
        ];
        let v = check_events(&ControllerEpochFencing, &events);
        assert_eq!(v.len(), 1, "{v:?}");
        assert_eq!(v[0].check, "controller-epoch-fencing");
        assert_eq!(v[0].details["count"], 2);
        assert_eq!(
            v[0].message,
            "broker-1 applied LeaderAndIsr from controller broker-0 in controller epoch 1 \
             (broker-1 at t=200 ms) after it had accepted controller epoch 2 (broker-1 at t=100 ms) \
             (1 more like this in details)"
        );
        assert_eq!(v[0].details["anomalies"][1]["broker"], 2);
        assert_eq!(v[0].details["anomalies"][1]["highest_controller_epoch"], 2);
    }

    #[test]
    fn rising_or_repeated_epochs_and_a_restart_pass() {
        let events = [
            accepted(1, 0, 1, "LeaderAndIsr"),
            accepted(1, 0, 1, "UpdateMetadata"),
            accepted(1, 2, 2, "UpdateMetadata"),
            accepted(1, 2, 2, "LeaderAndIsr"),
            accepted(2, 0, 1, "UpdateMetadata"),
            // A restarted broker knows no epoch yet.
            started(1),
            accepted(1, 0, 1, "UpdateMetadata"),
            accepted(1, 2, 3, "StopReplica"),
        ];
        assert!(check_events(&ControllerEpochFencing, &events).is_empty());
    }
}
