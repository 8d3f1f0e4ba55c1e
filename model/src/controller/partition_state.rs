//! The partition state znode (`/brokers/topics/T/partitions/P/state`: leader, leader epoch,
//! ISR, and ksim's stored broker epochs and last-known ELR), the controller's fenced writes of
//! it, and the AlterPartition requests (KIP-497) by which leaders change their ISR.
//!
//! Mirrors Kafka's `TopicPartitionStateZNode` (`ZkData.scala`), the state writes of
//! `KafkaZkClient.updateLeaderAndIsr` and `KafkaController.processAlterPartition`.

use super::*;

pub(super) fn state_path(tp: &TopicPartition) -> String {
    format!(
        "/brokers/topics/{}/partitions/{}/state",
        tp.topic, tp.partition
    )
}

/// The broker epoch of each ISR member when it joined (KIP-903).
pub type IsrEpochs = BTreeMap<BrokerId, BrokerEpoch>;

pub(super) fn encode_state(
    s: &PartitionState,
    epochs: &IsrEpochs,
    elr: &LastKnownElr,
    reason: &str,
) -> Vec<u8> {
    let leader = s.leader.map(|b| b.0).unwrap_or(-1);
    let isr: Vec<i32> = s.isr.iter().map(|b| b.0).collect();
    let isr_epochs: serde_json::Map<String, serde_json::Value> = epochs
        .iter()
        .map(|(b, e)| (b.0.to_string(), serde_json::json!(e.0)))
        .collect();
    let mut v = serde_json::json!({
        "controller_epoch": s.controller_epoch.0,
        "leader": leader,
        "version": 1,
        "leader_epoch": s.leader_epoch.0,
        "isr": isr,
        "isr_broker_epochs": isr_epochs,
    });
    if !elr.members.is_empty() {
        v["last_known_elr"] =
            serde_json::json!(elr.members.iter().map(|b| b.0).collect::<Vec<_>>());
    }
    if !elr.provisional.is_empty() {
        let p: serde_json::Map<String, serde_json::Value> = elr
            .provisional
            .iter()
            .map(|(b, e)| (b.0.to_string(), serde_json::json!(e.0)))
            .collect();
        v["provisional_elr"] = serde_json::Value::Object(p);
    }
    v["change_reason"] = serde_json::json!(reason);
    v.to_string().into_bytes()
}

/// What the coordination node observes when a write to a partition's state znode commits:
/// the [`Event::PartitionStateChanged`] of that write, or `None` if `path` is not
/// `/brokers/topics/T/partitions/P/state` or `data` is not a state this controller wrote.
///
/// The event is emitted where the write commits, not where the controller reads its answer:
/// a deposed controller's write can land while the answer is lost, and the cluster then
/// carries that state all the same (default seed 1996: the ISR `[2]` of events-1 in epoch 1
/// committed, no answer came back, and the next controller read it). `version` is the
/// znode's version after the write (the partition epoch); `change_reason` is ksim's own
/// field of the znode (Kafka's has none), the controller's reason for the write.
pub fn observe_state_write(path: &str, data: &[u8], version: ZkVersion) -> Option<Event> {
    let rest = path.strip_prefix("/brokers/topics/")?;
    let (topic, rest) = rest.split_once("/partitions/")?;
    let partition: i32 = rest.strip_suffix("/state")?.parse().ok()?;
    let tp = TopicPartition {
        topic: topic.into(),
        partition,
    };
    let state = decode_state(&tp, &[], data, version)?;
    let v: serde_json::Value = serde_json::from_slice(data).ok()?;
    let reason = v.get("change_reason")?.as_str()?.to_string();
    Some(Event::PartitionStateChanged {
        tp,
        leader: state.leader,
        leader_epoch: state.leader_epoch,
        isr: state.isr,
        controller_epoch: state.controller_epoch,
        partition_epoch: version,
        reason,
        last_known_elr: decode_elr(data).members.into_iter().collect(),
    })
}

/// The last-known eligible leader replicas stored with a partition's state (KIP-966).
pub(super) fn decode_elr(data: &[u8]) -> LastKnownElr {
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(data) else {
        return LastKnownElr::default();
    };
    let members = v
        .get("last_known_elr")
        .and_then(|a| a.as_array())
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_i64())
                .map(|x| BrokerId(x as i32))
                .collect()
        })
        .unwrap_or_default();
    let provisional = v
        .get("provisional_elr")
        .and_then(|p| p.as_object())
        .map(|m| {
            m.iter()
                .filter_map(|(b, e)| {
                    Some((BrokerId(b.parse().ok()?), LeaderEpoch(e.as_i64()? as i32)))
                })
                .collect()
        })
        .unwrap_or_default();
    LastKnownElr {
        members,
        provisional,
    }
}

pub(super) fn decode_epochs(data: &[u8]) -> IsrEpochs {
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(data) else {
        return IsrEpochs::new();
    };
    v.get("isr_broker_epochs")
        .and_then(|m| m.as_object())
        .map(|m| {
            m.iter()
                .filter_map(|(k, e)| Some((BrokerId(k.parse().ok()?), BrokerEpoch(e.as_i64()?))))
                .collect()
        })
        .unwrap_or_default()
}

pub(super) fn decode_state(
    tp: &TopicPartition,
    replicas: &[BrokerId],
    data: &[u8],
    version: ZkVersion,
) -> Option<PartitionState> {
    let v: serde_json::Value = serde_json::from_slice(data).ok()?;
    let leader = v.get("leader")?.as_i64()? as i32;
    let isr = v
        .get("isr")?
        .as_array()?
        .iter()
        .filter_map(|x| x.as_i64())
        .map(|x| BrokerId(x as i32))
        .collect();
    Some(PartitionState {
        tp: tp.clone(),
        leader: if leader < 0 {
            None
        } else {
            Some(BrokerId(leader))
        },
        leader_epoch: LeaderEpoch(v.get("leader_epoch")?.as_i64()? as i32),
        isr,
        replicas: replicas.to_vec(),
        partition_epoch: version,
        controller_epoch: ControllerEpoch(v.get("controller_epoch")?.as_i64()? as i32),
    })
}

impl Controller {
    pub(super) fn write_state(
        &mut self,
        tp: &TopicPartition,
        state: PartitionState,
        reason: &str,
        reqs: &mut Reqs,
    ) {
        let min_isr = self.effective_min_isr(tp, state.replicas.len());
        let a = self.active.as_mut().expect("active");
        let existing = a.states.get(tp).cloned().flatten();
        // KIP-903: remember each ISR member's broker epoch. A member kept from the previous
        // ISR keeps the epoch it joined with; a new member joins with its current epoch (for
        // AlterPartition the leader's view of it was checked against that already). So does a
        // leader that a recovery among the last ISR (KIP-966) or an unclean election made the
        // ISR's only member: it was chosen in the incarnation registered now, with the log that
        // incarnation reported, whatever epoch it had when it last joined. (Keeping that old
        // epoch would make the leader itself count as restarted, and the next controller would
        // drop it from the ISR and elect a stale member in its place.)
        let rejoined = matches!(reason, "last-isr-recovery" | "unclean-election")
            .then_some(state.leader)
            .flatten();
        let stored = a.isr_epochs.get(tp).cloned().unwrap_or_default();
        let old_isr: Vec<BrokerId> = existing.as_ref().map(|s| s.isr.clone()).unwrap_or_default();
        let epochs: IsrEpochs = state
            .isr
            .iter()
            .filter_map(|m| {
                let e = if old_isr.contains(m) && rejoined != Some(*m) {
                    stored.get(m).or(a.live.get(m))
                } else {
                    a.live.get(m)
                };
                e.map(|e| (*m, *e))
            })
            .collect();
        // KIP-966's last-known ELR, kept only by the fenced protocol (the legacy modes model a
        // controller from before it, whose ELR stays empty).
        let mut elr = a.elr.get(tp).cloned().unwrap_or_default();
        if self.config.replication_truncation == TruncationMode::Fenced {
            update_last_known_elr(
                &mut elr,
                reason,
                &old_isr,
                &state.isr,
                min_isr,
                state.leader_epoch,
            );
        }
        let check = ZkOp::Check {
            path: "/controller_epoch".into(),
            version: a.epoch_version,
        };
        let ops = match existing {
            Some(old) => vec![
                check,
                ZkOp::SetData {
                    path: state_path(tp),
                    data: encode_state(&state, &epochs, &elr, reason),
                    expected_version: Some(old.partition_epoch),
                },
            ],
            None => {
                for path in [
                    format!("/brokers/topics/{}/partitions", tp.topic),
                    format!("/brokers/topics/{}/partitions/{}", tp.topic, tp.partition),
                ] {
                    reqs.push((
                        ZkRequest::Create {
                            path,
                            data: vec![],
                            ephemeral: false,
                        },
                        ControllerZkOp::EnsurePath,
                    ));
                }
                vec![
                    check,
                    ZkOp::Create {
                        path: state_path(tp),
                        data: encode_state(&state, &epochs, &elr, reason),
                        ephemeral: false,
                    },
                ]
            }
        };
        a.pending.as_mut().expect("in an event").writes += 1;
        reqs.push((
            ZkRequest::Multi { ops },
            ControllerZkOp::StateWrite {
                tp: tp.clone(),
                state,
                epochs,
                elr,
            },
        ));
    }

    /// The fenced write of a partition's state was answered.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn on_state_written(
        &mut self,
        tp: TopicPartition,
        mut state: PartitionState,
        epochs: IsrEpochs,
        elr: LastKnownElr,
        result: Result<ZkReply, ZkError>,
        reqs: &mut Reqs,
        out: &mut Effects<BrokerTimer>,
    ) {
        let a = self.active.as_mut().expect("active");
        let version = match &result {
            Ok(ZkReply::Multi { results }) => match results.last() {
                Some(ZkReply::Stat { version }) => Some(*version),
                Some(ZkReply::Created { .. }) => Some(ZkVersion(0)),
                _ => None,
            },
            _ => None,
        };
        let Some(version) = version else {
            // Our epoch check or the state's version check failed: another controller
            // has taken over (ControllerMovedException). Step down.
            self.resign("write-fenced", out);
            return;
        };
        // The coordination node recorded `partition-state-changed` when the write
        // committed (see [`observe_state_write`]).
        state.partition_epoch = version;
        a.states.insert(tp.clone(), Some(state));
        a.isr_epochs.insert(tp.clone(), epochs);
        a.elr.insert(tp.clone(), elr);
        if let Some(p) = a.pending.as_mut() {
            p.writes -= 1;
            p.changed.insert(tp);
        }
        self.maybe_finish_event(reqs, out);
    }

    /// An AlterPartition request's turn in the event queue: validate it and write the new ISR.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn handle_alter_partition(
        &mut self,
        from: NodeId,
        corr: CorrelationId,
        broker: BrokerId,
        broker_epoch: BrokerEpoch,
        tp: TopicPartition,
        leader_epoch: LeaderEpoch,
        new_isr: Vec<BrokerId>,
        new_isr_epochs: Vec<BrokerEpoch>,
        partition_epoch: ZkVersion,
        reqs: &mut Reqs,
        out: &mut Effects<BrokerTimer>,
    ) {
        let a = self.active.as_mut().expect("active");
        let reject = |out: &mut Effects<BrokerTimer>, error: ErrorCode| {
            out.send(
                from,
                Message::AlterPartitionResponse {
                    corr,
                    tp: tp.clone(),
                    error,
                    state: None,
                },
            );
        };
        if a.live.get(&broker) != Some(&broker_epoch) {
            reject(out, ErrorCode::StaleBrokerEpoch);
            return;
        }
        let Some(Some(state)) = a.states.get(&tp).cloned() else {
            reject(out, ErrorCode::UnknownTopicOrPartition);
            return;
        };
        if state.leader != Some(broker) || state.leader_epoch != leader_epoch {
            reject(out, ErrorCode::FencedLeaderEpoch);
            return;
        }
        if state.partition_epoch != partition_epoch {
            reject(out, ErrorCode::InvalidUpdateVersion);
            return;
        }
        // The legacy truncation modes model Kafka before KIP-497 as well: the leader
        // wrote the ISR to ZooKeeper itself, with a conditional write on the state
        // znode's version and no check that an added member was registered (KIP-841)
        // or the incarnation the leader had seen (KIP-903).
        let legacy = self.config.replication_truncation != TruncationMode::Fenced;
        let valid = new_isr.contains(&broker)
            && new_isr.iter().all(|r| state.replicas.contains(r))
            && new_isr
                .iter()
                .all(|r| legacy || a.live.contains_key(r) || state.isr.contains(r));
        if !valid {
            reject(out, ErrorCode::InvalidRequest);
            return;
        }
        // KIP-903: a member being added must be the incarnation that is registered
        // now; the leader names the broker epoch it saw in that member's fetches.
        let stale = new_isr
            .iter()
            .zip(
                new_isr_epochs
                    .iter()
                    .chain(std::iter::repeat(&BrokerEpoch(-1))),
            )
            .any(|(r, e)| !state.isr.contains(r) && a.live.get(r) != Some(e));
        if stale && !legacy {
            reject(out, ErrorCode::IneligibleReplica);
            return;
        }
        let mut next = state.clone();
        next.isr = new_isr;
        next.controller_epoch = a.epoch;
        a.pending.as_mut().expect("pending").alter_reply = Some((from, corr, tp.clone()));
        self.write_state(&tp, next, "isr-change", reqs);
    }
}

/// Answers an AlterPartition with the top-level NOT_CONTROLLER error: the request was not
/// looked at, and the leader retries with the controller it finds next.
pub(super) fn answer_not_controller(
    from: NodeId,
    corr: CorrelationId,
    tp: TopicPartition,
    out: &mut Effects<BrokerTimer>,
) {
    out.send(
        from,
        Message::AlterPartitionResponse {
            corr,
            tp,
            error: ErrorCode::NotController,
            state: None,
        },
    );
}
