//! Propagation of the controller's decisions: LeaderAndIsr to the replicas of every partition
//! an event changed and UpdateMetadata to every live broker, once the event's writes are done;
//! and the full resend to a broker after a failed send.
//!
//! Mirrors Kafka's `ControllerBrokerRequestBatch` and `ControllerChannelManager`.

use super::*;

impl Controller {
    /// Everything `broker` should know from the controller now: a LeaderAndIsr for every
    /// partition it hosts and an UpdateMetadata. Empty unless active and `broker` is live.
    /// Used to resend after a failed send: Kafka's `ControllerChannelManager` keeps retrying
    /// requests to a live broker until they go through.
    pub fn messages_for(&self, broker: BrokerId) -> Vec<Message> {
        let Some(a) = &self.active else { return vec![] };
        let Some(broker_epoch) = a.live.get(&broker).copied() else {
            return vec![];
        };
        if !a.loaded {
            return vec![];
        }
        let all: Vec<PartitionState> = a.states.values().flatten().cloned().collect();
        let mine: Vec<PartitionState> = all
            .iter()
            .filter(|s| s.replicas.contains(&broker))
            .cloned()
            .collect();
        let mut out = Vec::new();
        if !mine.is_empty() {
            out.push(Message::LeaderAndIsr {
                controller: self.broker,
                controller_epoch: a.epoch,
                broker_epoch,
                partitions: mine,
            });
        }
        out.push(Message::UpdateMetadata {
            controller: self.broker,
            controller_epoch: a.epoch,
            live_brokers: a.live.keys().copied().collect(),
            partitions: all,
            deleted_partitions: vec![],
            full: true,
        });
        out
    }

    pub(super) fn maybe_finish_event(&mut self, reqs: &mut Reqs, out: &mut Effects<BrokerTimer>) {
        let Some(a) = self.active.as_mut() else {
            return;
        };
        let done = matches!(&a.pending, Some(p) if p.writes == 0);
        if !done {
            return;
        }
        let p = a.pending.take().expect("pending");
        let epoch = a.epoch;
        // LeaderAndIsr: changed partitions to their live replicas, everything to new brokers.
        // (Without new brokers only the changed partitions are visited: an ISR change costs
        // the same whatever the cluster's size.)
        let mut per_broker: BTreeMap<BrokerId, Vec<PartitionState>> = BTreeMap::new();
        let mut add = |tp: &TopicPartition, state: &Option<PartitionState>| {
            let Some(state) = state else { return };
            for r in &state.replicas {
                if !a.live.contains_key(r) {
                    continue;
                }
                if p.changed.contains(tp) || p.full_to.contains(r) {
                    per_broker.entry(*r).or_default().push(state.clone());
                }
            }
        };
        if p.full_to.is_empty() {
            for tp in &p.changed {
                if let Some(state) = a.states.get(tp) {
                    add(tp, state);
                }
            }
        } else {
            for (tp, state) in &a.states {
                add(tp, state);
            }
        }
        for (b, partitions) in per_broker {
            let broker_epoch = a.live[&b];
            out.send(
                NodeId::Broker(b),
                Message::LeaderAndIsr {
                    controller: self.broker,
                    controller_epoch: epoch,
                    broker_epoch,
                    partitions,
                },
            );
        }
        if let Some((from, corr, tp)) = p.alter_reply {
            let state = a.states.get(&tp).cloned().flatten();
            out.send(
                from,
                Message::AlterPartitionResponse {
                    corr,
                    tp,
                    error: ErrorCode::None,
                    state,
                },
            );
        }
        // UpdateMetadata to every live broker: the whole cluster after a broker registered
        // or a failover (as Kafka's `onBrokerStartup` and `onControllerFailover`), otherwise
        // the partitions this event changed or deleted.
        let full = !p.full_to.is_empty();
        let partitions: Vec<PartitionState> = if full {
            a.states.values().flatten().cloned().collect()
        } else {
            p.changed
                .iter()
                .filter_map(|tp| a.states.get(tp).cloned().flatten())
                .collect()
        };
        let deleted_partitions: Vec<TopicPartition> = if full {
            vec![]
        } else {
            p.deleted.iter().cloned().collect()
        };
        let live: Vec<BrokerId> = a.live.keys().copied().collect();
        for b in &live {
            out.send(
                NodeId::Broker(*b),
                Message::UpdateMetadata {
                    controller: self.broker,
                    controller_epoch: epoch,
                    live_brokers: live.clone(),
                    partitions: partitions.clone(),
                    deleted_partitions: deleted_partitions.clone(),
                    full,
                },
            );
        }
        self.invariants();
        self.process_queue(reqs, out);
    }
}
