//! The broker's metadata cache (Kafka's `MetadataCache`): the cluster state the controller
//! sends with UpdateMetadata (live brokers, every partition's leader and ISR, which broker is
//! the controller), and the Metadata requests clients answer from it.

use super::partition::Role;
use super::{Broker, BrokerTimer};
use crate::effects::Effects;
use crate::protocol::*;
use crate::types::*;

impl Broker {
    pub(super) fn on_update_metadata(
        &mut self,
        now: Instant,
        controller: BrokerId,
        controller_epoch: ControllerEpoch,
        live_brokers: Vec<BrokerId>,
        partitions: Vec<PartitionState>,
        deleted_partitions: Vec<TopicPartition>,
        full: bool,
        out: &mut Effects<BrokerTimer>,
    ) {
        if self.controller_request_fenced(controller, controller_epoch, "UpdateMetadata", out) {
            return;
        }
        self.accept_controller_request(controller, controller_epoch, "UpdateMetadata", out);
        self.set_controller(now, Some(controller), out);
        self.live_brokers = live_brokers;
        // A full request replaces the cache (a partition it no longer lists belongs to a
        // deleted topic); an incremental one updates what it lists and drops what it deletes
        // (Kafka's `MetadataCache.updateMetadata`).
        //
        // An incremental request reaching a process that never had a full one is one the
        // controller addressed to this broker's previous incarnation (restarted, not yet
        // registered: the controller still counts the old one as live). Kafka's broker would
        // not process it (it serves requests only once registered, and refuses a stale broker
        // epoch, KIP-380); applied here it would leave a cache of a few partitions to answer
        // clients from. It is skipped: the full request after the registration fills the cache.
        if full {
            self.metadata = partitions.into_iter().map(|s| (s.tp.clone(), s)).collect();
            self.metadata_complete = true;
        } else if self.metadata_complete {
            for s in partitions {
                self.metadata.insert(s.tp.clone(), s);
            }
            for tp in &deleted_partitions {
                self.metadata.remove(tp);
            }
        }
    }

    /// The broker learnt which broker is the controller. When it is a new one, every
    /// AlterPartition still waiting for an answer goes to it now, as Kafka's
    /// `BrokerToControllerChannelManager` sends its queued request to the controller it has just
    /// discovered (the one in flight to the old controller fails with the connection). Without
    /// this the request waited for its 5 s retry (`correlated-power-loss-fsync` seed 10829: the
    /// controller lost power 0.8 s before the heal, the next one was elected 5.2 s after it,
    /// and the leader's ISR expansion reached it only 4.8 s later, so `acks=all` produce
    /// waited beyond the heal phase under KIP-966's strict min ISR).
    pub(super) fn set_controller(
        &mut self,
        now: Instant,
        controller: Option<BrokerId>,
        out: &mut Effects<BrokerTimer>,
    ) {
        if controller == self.controller_id {
            return;
        }
        self.controller_id = controller;
        if controller.is_none() {
            return;
        }
        let pending: Vec<(TopicPartition, Vec<BrokerId>)> = self
            .partitions
            .iter()
            .filter_map(|(tp, p)| match &p.role {
                Role::Leader(l) => l.pending_isr.clone().map(|(_, isr)| (tp.clone(), isr)),
                _ => None,
            })
            .collect();
        for (tp, new_isr) in pending {
            self.send_alter_partition(now, &tp, new_isr, out);
        }
    }

    pub(super) fn on_metadata(
        &self,
        from: NodeId,
        corr: CorrelationId,
        topics: Vec<String>,
        out: &mut Effects<BrokerTimer>,
    ) {
        let partitions = self
            .metadata
            .values()
            .filter(|s| topics.is_empty() || topics.iter().any(|t| *t == s.tp.topic))
            .map(|s| PartitionMetadata {
                tp: s.tp.clone(),
                error: if s.leader.is_some() {
                    ErrorCode::None
                } else {
                    ErrorCode::LeaderNotAvailable
                },
                leader: s.leader,
                leader_epoch: s.leader_epoch,
                replicas: s.replicas.clone(),
                isr: s.isr.clone(),
            })
            .collect();
        out.send(
            from,
            Message::MetadataResponse {
                corr,
                brokers: self.live_brokers.clone(),
                controller: self.controller_id,
                partitions,
            },
        );
    }
}
