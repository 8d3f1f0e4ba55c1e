//! Hosting the controller: an elected broker runs the
//! [`Controller`](crate::controller::Controller) inside its own process, as a ZooKeeper-era
//! Kafka broker runs `KafkaController`. This is the glue: the controller's coordination-node
//! work goes out on the broker's session (`ZkPurpose::Controller`), AlterPartition and admin
//! requests addressed to the controller are handed to it, and its requests to brokers that
//! could not be sent are sent again (Kafka's `ControllerChannelManager`).

use super::{Broker, BrokerTimer, ZkPurpose};
use crate::controller::{AdminOp, ControllerTimer, ControllerZkOp};
use crate::effects::Effects;
use crate::event::Event;
use crate::protocol::*;
use crate::types::*;

/// How long the controller waits before resending to a broker it could not reach.
pub const CONTROLLER_RESEND_BACKOFF_MS: u64 = 1_000;

impl Broker {
    pub(super) fn become_controller(
        &mut self,
        now: Instant,
        epoch: ControllerEpoch,
        version: ZkVersion,
        out: &mut Effects<BrokerTimer>,
    ) {
        out.event(Event::ControllerElected {
            broker: self.id,
            controller_epoch: epoch,
        });
        let mut reqs = Vec::new();
        // A broker that knows an internal topic exists (it hosts a replica or its metadata
        // names it) makes sure its controller loads it, even if the request to create it went
        // to other brokers only.
        let internal = [
            (
                crate::group_coordinator::CONSUMER_OFFSETS_TOPIC,
                self.config.offsets_topic_num_partitions,
                self.config.offsets_topic_replication_factor,
            ),
            (
                crate::transaction_coordinator::TRANSACTION_STATE_TOPIC,
                self.config.transaction_state_log_num_partitions,
                self.config.transaction_state_log_replication_factor,
            ),
        ];
        for (topic, partitions, replication_factor) in internal {
            if self
                .partitions
                .keys()
                .chain(self.metadata.keys())
                .any(|tp| tp.topic == topic)
            {
                let op = AdminOp::CreateTopic {
                    name: topic.into(),
                    partitions,
                    replication_factor,
                };
                self.controller.on_admin(op, &mut reqs, out);
            }
        }
        self.controller.on_elected(epoch, version, &mut reqs, out);
        self.flush_controller_requests(now, reqs, out);
    }

    pub(super) fn flush_controller_requests(
        &mut self,
        now: Instant,
        reqs: Vec<(ZkRequest, ControllerZkOp)>,
        out: &mut Effects<BrokerTimer>,
    ) {
        for (req, op) in reqs {
            self.zk_send(now, req, ZkPurpose::Controller(op), out);
        }
    }

    /// An AlterPartition from a partition leader, for the controller this broker may host.
    pub(super) fn on_alter_partition(
        &mut self,
        now: Instant,
        from: NodeId,
        msg: Message,
        out: &mut Effects<BrokerTimer>,
    ) {
        let Message::AlterPartition {
            corr,
            broker,
            broker_epoch,
            tp,
            leader_epoch,
            new_isr,
            new_isr_epochs,
            partition_epoch,
        } = msg
        else {
            unreachable!("on_alter_partition takes an AlterPartition")
        };
        let mut reqs = Vec::new();
        self.controller.on_alter_partition(
            from,
            corr,
            broker,
            broker_epoch,
            tp,
            leader_epoch,
            new_isr,
            new_isr_epochs,
            partition_epoch,
            &mut reqs,
            out,
        );
        self.flush_controller_requests(now, reqs, out);
    }

    /// An admin request (CreatePartitions, DeleteTopics, CreateTopics of an internal topic),
    /// for the controller this broker may host.
    pub(super) fn on_admin(&mut self, now: Instant, op: AdminOp, out: &mut Effects<BrokerTimer>) {
        let mut reqs = Vec::new();
        self.controller.on_admin(op, &mut reqs, out);
        self.flush_controller_requests(now, reqs, out);
    }

    /// The controller resends its state to a broker a send to which failed.
    pub(super) fn on_controller_resend(
        &mut self,
        broker: BrokerId,
        out: &mut Effects<BrokerTimer>,
    ) {
        self.controller_resends.remove(&broker);
        for msg in self.controller.messages_for(broker) {
            out.send(NodeId::Broker(broker), msg);
        }
    }

    /// A LeaderAndIsr or UpdateMetadata of the hosted controller could not be sent to `to`.
    pub(super) fn controller_send_failed(&mut self, to: NodeId, out: &mut Effects<BrokerTimer>) {
        // As Kafka's ControllerChannelManager: keep trying while the broker is live.
        if let NodeId::Broker(b) = to {
            if self.controller.is_active() && self.controller_resends.insert(b) {
                out.timer(
                    CONTROLLER_RESEND_BACKOFF_MS,
                    BrokerTimer::Controller(ControllerTimer::Resend { broker: b }),
                );
            }
        }
    }
}
