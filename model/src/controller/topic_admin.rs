//! Topic administration: the topic assignment znode (`/brokers/topics/T`), the scenario's
//! topics created when absent, CreatePartitions and DeleteTopics with the deletion marker
//! (`/admin/delete_topics/T`) and StopReplica with delete, and internal topics created on a
//! broker's request (`__consumer_offsets`).
//!
//! Mirrors Kafka's `TopicZNode` (`ZkData.scala`), `AdminZkClient.addPartitions` and
//! `createTopic`, and `TopicDeletionManager`.

use super::replica_assignment::assign_replicas;
use super::*;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

pub(super) fn encode_assignment(assignment: &[Vec<BrokerId>]) -> Vec<u8> {
    let mut parts = serde_json::Map::new();
    for (p, replicas) in assignment.iter().enumerate() {
        parts.insert(
            p.to_string(),
            serde_json::json!(replicas.iter().map(|b| b.0).collect::<Vec<_>>()),
        );
    }
    serde_json::json!({ "version": 2, "partitions": parts })
        .to_string()
        .into_bytes()
}

pub(super) fn decode_assignment(data: &[u8]) -> Option<Vec<Vec<BrokerId>>> {
    let v: serde_json::Value = serde_json::from_slice(data).ok()?;
    let parts = v.get("partitions")?.as_object()?;
    let mut out: Vec<(i32, Vec<BrokerId>)> = parts
        .iter()
        .filter_map(|(k, v)| {
            let p: i32 = k.parse().ok()?;
            let r = v
                .as_array()?
                .iter()
                .filter_map(|x| x.as_i64())
                .map(|x| BrokerId(x as i32))
                .collect();
            Some((p, r))
        })
        .collect();
    out.sort();
    Some(out.into_iter().map(|(_, r)| r).collect())
}

/// StopReplica with delete to each live broker for its replicas in `per_broker` (Kafka's
/// `TopicDeletionManager`): the broker drops those partitions and deletes their logs.
pub(super) fn send_delete_replicas(
    controller: BrokerId,
    a: &Active,
    per_broker: BTreeMap<BrokerId, Vec<TopicPartition>>,
    out: &mut Effects<BrokerTimer>,
) {
    for (b, partitions) in per_broker {
        out.send(
            NodeId::Broker(b),
            Message::StopReplica {
                controller,
                controller_epoch: a.epoch,
                broker_epoch: a.live[&b],
                partitions,
                delete_partitions: true,
            },
        );
    }
}

impl Controller {
    /// Carries out a topic-administration request (no-op when already done).
    pub(super) fn handle_admin(&mut self, op: AdminOp, reqs: &mut Reqs) {
        let a = self.active.as_mut().expect("active");
        let check = ZkOp::Check {
            path: "/controller_epoch".into(),
            version: a.epoch_version,
        };
        match op {
            AdminOp::CreatePartitions { topic, assignment } => {
                let current: Vec<Vec<BrokerId>> = a
                    .assignments
                    .iter()
                    .filter(|(tp, _)| tp.topic == topic)
                    .map(|(_, r)| r.clone())
                    .collect();
                // Unknown (not created yet, or deleted) or not an increase: nothing to do.
                if current.is_empty() || assignment.len() <= current.len() {
                    return;
                }
                let from_count = current.len();
                let mut full = current;
                full.extend(assignment[from_count..].iter().cloned());
                a.pending.as_mut().expect("in an event").writes += 1;
                reqs.push((
                    ZkRequest::Multi {
                        ops: vec![
                            check,
                            ZkOp::SetData {
                                path: format!("/brokers/topics/{topic}"),
                                data: encode_assignment(&full),
                                expected_version: None,
                            },
                        ],
                    },
                    ControllerZkOp::AssignmentWrite {
                        topic,
                        from_count,
                        assignment: full,
                    },
                ));
            }
            AdminOp::CreateTopic {
                name,
                partitions,
                replication_factor,
            } => {
                let live: Vec<BrokerId> = a.live.keys().copied().collect();
                if a.assignments.keys().any(|tp| tp.topic == name)
                    || (live.len() as i32) < replication_factor
                    || partitions < 1
                    || replication_factor < 1
                {
                    return;
                }
                // Kafka draws the start index and shift at random; here they come from a
                // generator seeded by the topic name and the controller epoch, so the state
                // machine stays deterministic without a random stream of its own.
                let seed = name.bytes().fold(a.epoch.0 as u64, |h, b| {
                    h.wrapping_mul(31).wrapping_add(b as u64)
                });
                let mut rng = ChaCha8Rng::seed_from_u64(seed);
                let by_index =
                    assign_replicas(live.len() as i32, partitions, replication_factor, &mut rng);
                let assignment: Vec<Vec<BrokerId>> = by_index
                    .into_iter()
                    .map(|r| r.into_iter().map(|i| live[i.0 as usize]).collect())
                    .collect();
                a.pending.as_mut().expect("in an event").writes += 1;
                reqs.push((
                    ZkRequest::Create {
                        path: format!("/brokers/topics/{name}"),
                        data: encode_assignment(&assignment),
                        ephemeral: false,
                    },
                    ControllerZkOp::InternalTopicCreate {
                        topic: name,
                        assignment,
                    },
                ));
            }
            AdminOp::DeleteTopic { topic } => {
                let tps: Vec<TopicPartition> = a
                    .assignments
                    .keys()
                    .filter(|tp| tp.topic == topic)
                    .cloned()
                    .collect();
                if tps.is_empty() {
                    return;
                }
                for path in ["/admin", "/admin/delete_topics"] {
                    reqs.push((
                        ZkRequest::Create {
                            path: path.into(),
                            data: vec![],
                            ephemeral: false,
                        },
                        ControllerZkOp::EnsurePath,
                    ));
                }
                let mut ops = vec![check];
                for tp in &tps {
                    if matches!(a.states.get(tp), Some(Some(_))) {
                        ops.push(ZkOp::Delete {
                            path: state_path(tp),
                            expected_version: None,
                        });
                        ops.push(ZkOp::Delete {
                            path: format!(
                                "/brokers/topics/{}/partitions/{}",
                                tp.topic, tp.partition
                            ),
                            expected_version: None,
                        });
                    }
                }
                for path in [
                    format!("/brokers/topics/{topic}/partitions"),
                    format!("/brokers/topics/{topic}"),
                ] {
                    ops.push(ZkOp::Delete {
                        path,
                        expected_version: None,
                    });
                }
                // The marker keeps what a later controller needs to finish the deletion (the
                // assignment) and the epoch of the controller that deleted the topic.
                let assignment: Vec<Vec<BrokerId>> =
                    tps.iter().map(|tp| a.assignments[tp].clone()).collect();
                let mut marker: serde_json::Value =
                    serde_json::from_slice(&encode_assignment(&assignment)).expect("json");
                marker["controller_epoch"] = serde_json::json!(a.epoch.0);
                ops.push(ZkOp::Create {
                    path: format!("/admin/delete_topics/{topic}"),
                    data: marker.to_string().into_bytes(),
                    ephemeral: false,
                });
                a.pending.as_mut().expect("in an event").writes += 1;
                reqs.push((
                    ZkRequest::Multi { ops },
                    ControllerZkOp::TopicDelete { topic },
                ));
            }
        }
    }

    /// The fenced write of a topic's enlarged assignment was answered (`create-partitions`).
    pub(super) fn on_assignment_written(
        &mut self,
        topic: String,
        from_count: usize,
        assignment: Vec<Vec<BrokerId>>,
        result: Result<ZkReply, ZkError>,
        reqs: &mut Reqs,
        out: &mut Effects<BrokerTimer>,
    ) {
        let a = self.active.as_mut().expect("active");
        if !matches!(result, Ok(ZkReply::Multi { .. })) {
            self.resign("write-fenced", out);
            return;
        }
        out.event(Event::PartitionsCreated {
            topic: topic.clone(),
            from_count: from_count as i32,
            to_count: assignment.len() as i32,
            controller_epoch: a.epoch,
        });
        for (p, replicas) in assignment.iter().enumerate().skip(from_count) {
            let tp = TopicPartition::new(&topic, p as i32);
            a.assignments.insert(tp.clone(), replicas.clone());
            a.states.insert(tp, None);
        }
        let live: BTreeSet<BrokerId> = a.live.keys().copied().collect();
        if let Some(p) = a.pending.as_mut() {
            p.writes -= 1;
        }
        // The new partitions get their first leader and ISR like a new topic's.
        self.reconcile(&live, reqs);
        self.maybe_finish_event(reqs, out);
    }

    /// The creation of an internal topic's assignment znode was answered: its partitions get
    /// their first leader and ISR like a new topic's (a `partitions-created` event from 0
    /// records it). If the znode was there already (created under a controller that this one
    /// did not hear of), its assignment is read instead and loaded; its partitions' states
    /// follow at the next reconciliation.
    pub(super) fn on_internal_topic_created(
        &mut self,
        topic: String,
        assignment: Vec<Vec<BrokerId>>,
        result: Result<ZkReply, ZkError>,
        reqs: &mut Reqs,
        out: &mut Effects<BrokerTimer>,
    ) {
        let a = self.active.as_mut().expect("active");
        if let Some(p) = a.pending.as_mut() {
            p.writes -= 1;
        }
        if !matches!(result, Ok(ZkReply::Created { .. })) {
            a.loading += 1;
            reqs.push((
                ZkRequest::GetData {
                    path: format!("/brokers/topics/{topic}"),
                    watch: false,
                },
                ControllerZkOp::InternalTopicData { topic },
            ));
            self.maybe_finish_event(reqs, out);
            return;
        }
        reqs.push((
            ZkRequest::Create {
                path: format!("/brokers/topics/{topic}/partitions"),
                data: vec![],
                ephemeral: false,
            },
            ControllerZkOp::EnsurePath,
        ));
        out.event(Event::PartitionsCreated {
            topic: topic.clone(),
            from_count: 0,
            to_count: assignment.len() as i32,
            controller_epoch: a.epoch,
        });
        for (p, replicas) in assignment.iter().enumerate() {
            let tp = TopicPartition::new(&topic, p as i32);
            a.assignments.insert(tp.clone(), replicas.clone());
            a.states.insert(tp, None);
        }
        let live: BTreeSet<BrokerId> = a.live.keys().copied().collect();
        self.reconcile(&live, reqs);
        self.maybe_finish_event(reqs, out);
    }

    /// The fenced deletion of a topic's znodes was answered.
    pub(super) fn on_topic_deleted(
        &mut self,
        topic: String,
        result: Result<ZkReply, ZkError>,
        reqs: &mut Reqs,
        out: &mut Effects<BrokerTimer>,
    ) {
        let a = self.active.as_mut().expect("active");
        if !matches!(result, Ok(ZkReply::Multi { .. })) {
            self.resign("write-fenced", out);
            return;
        }
        let tps: Vec<TopicPartition> = a
            .assignments
            .keys()
            .filter(|tp| tp.topic == topic)
            .cloned()
            .collect();
        // StopReplica with delete to every live replica (Kafka's TopicDeletionManager;
        // a replica that is down keeps its log, see the scenario notes).
        let mut per_broker: BTreeMap<BrokerId, Vec<TopicPartition>> = BTreeMap::new();
        for tp in &tps {
            for r in a.assignments.get(tp).into_iter().flatten() {
                if a.live.contains_key(r) {
                    per_broker.entry(*r).or_default().push(tp.clone());
                }
            }
            a.assignments.remove(tp);
            a.states.remove(tp);
            a.isr_epochs.remove(tp);
            a.elr.remove(tp);
        }
        send_delete_replicas(self.broker, a, per_broker, out);
        // The deletion is recorded (`topic-deleted`) by the coordination node, where the
        // multi committed: a controller that dies before this answer still deleted it.
        if let Some(p) = a.pending.as_mut() {
            p.writes -= 1;
            p.changed.retain(|tp| tp.topic != topic);
            p.deleted.extend(tps);
        }
        self.maybe_finish_event(reqs, out);
    }
}
