//! Controller failover: on election the controller loads the cluster's state from the
//! coordination node (live brokers, each topic's assignment, each partition's state znode),
//! then runs its startup event: resume unfinished topic administration and deletions, and
//! bring every partition in line with the live brokers.
//!
//! Mirrors Kafka's `KafkaController.onControllerFailover` and `initializeControllerContext`.

use super::*;

impl Controller {
    pub(super) fn load_partitions(
        a: &mut Active,
        topic: &str,
        assignment: &[Vec<BrokerId>],
        reqs: &mut Reqs,
    ) {
        for (p, replicas) in assignment.iter().enumerate() {
            let tp = TopicPartition::new(topic, p as i32);
            a.assignments.insert(tp.clone(), replicas.clone());
            a.loading += 1;
            reqs.push((
                ZkRequest::GetData {
                    path: state_path(&tp),
                    watch: false,
                },
                ControllerZkOp::StateRead { tp },
            ));
        }
    }

    /// The startup event, the first once loading is complete.
    pub(super) fn on_startup(&mut self, reqs: &mut Reqs, out: &mut Effects<BrokerTimer>) {
        let live: BTreeSet<BrokerId> = self
            .active
            .as_ref()
            .expect("active")
            .live
            .keys()
            .copied()
            .collect();
        let a = self.active.as_mut().expect("active");
        a.pending.as_mut().expect("pending").full_to = live.clone();
        // Topic administration a previous controller may not have finished.
        for op in &self.admin {
            a.queue.push_back(CtlEvent::Admin(op.clone()));
        }
        // Deletions a previous controller committed but may not have carried out (it
        // can fail between the write and its StopReplica requests): tell every live
        // replica again (Kafka's TopicDeletionManager resumes them after a failover;
        // deleting a partition a broker no longer hosts is a no-op).
        let mut per_broker: BTreeMap<BrokerId, Vec<TopicPartition>> = BTreeMap::new();
        for (topic, assignment) in &a.deleted {
            for (p, replicas) in assignment.iter().enumerate() {
                for r in replicas.iter().filter(|r| a.live.contains_key(r)) {
                    per_broker
                        .entry(*r)
                        .or_default()
                        .push(TopicPartition::new(topic.clone(), p as i32));
                }
            }
        }
        send_delete_replicas(self.broker, a, per_broker, out);
        self.reconcile(&live, reqs);
    }
}
