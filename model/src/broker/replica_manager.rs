//! The replica manager (Kafka's `ReplicaManager.scala`): the controller's requests to this
//! broker (LeaderAndIsr, StopReplica) fenced by controller and broker epoch, becoming leader or
//! follower of a partition, and the high-watermark checkpoint
//! (`replication-offset-checkpoint`).
//!
//! # Replication, as this broker implements it (Kafka 2.7+ with KIP-320 fencing)
//! Each partition has one **leader** and zero or more **followers**, chosen by the controller
//! and announced with LeaderAndIsr carrying a **leader epoch**. Producers write to the leader,
//! which appends to its log, advancing its **log end offset (LEO)**. Followers pull with
//! `Fetch(fetch_offset = their LEO, last_fetched_epoch, current_leader_epoch)` for each
//! partition, one Fetch per leader broker carrying all the partitions followed from it
//! (`fetcher_thread.rs`); each partition of it is checked on its own:
//!
//! * the leader **fences** a fetch whose `current_leader_epoch` is older (FENCED_LEADER_EPOCH)
//!   or newer (UNKNOWN_LEADER_EPOCH) than its own (KIP-320), so a follower still on an old
//!   epoch can never be counted toward the high watermark;
//! * the leader checks that the follower's log agrees with its own at `fetch_offset`: if the
//!   leader's end offset for `last_fetched_epoch` is below `fetch_offset`, or the leader never
//!   had that epoch, it answers with a **diverging epoch** and the follower truncates to
//!   `min(leader's end offset for that epoch, its own end offset for it)` (KIP-101, KIP-279,
//!   KIP-595's fetch-based truncation);
//! * otherwise `fetch_offset` is the follower's LEO as far as the leader knows, and the
//!   **high watermark (HW)** becomes the minimum LEO over the ISR. Records below the HW are
//!   committed: consumers read only below it and `acks=all` produces are answered once the HW
//!   passes them.
//!
//! The leader removes followers that have not caught up for `replica.lag.time.max.ms` from the
//! **ISR** and adds back followers that reached the HW in its epoch, by asking the controller
//! (AlterPartition, KIP-497). Until the controller confirms a change, the HW is computed over
//! the larger of the two ISRs ("maximal ISR"), so an acknowledged record is always on every
//! replica the controller might elect.
//!
//! Durability follows Kafka: a write is in the page cache at once and on disk only after a
//! flush (`log.flush.interval.messages` / `log.flush.interval.ms`; by default never forced).
//! A process crash loses nothing; a power failure loses the unflushed tail.

use super::partition::{FollowerProgress, FollowerState, LeaderState, Partition, Role};
use super::{Broker, BrokerTimer};
use crate::config::TruncationMode;
use crate::effects::{DiskOp, Effects};
use crate::event::Event;
use crate::log::PartitionLog;
use crate::protocol::*;
use crate::types::*;
use std::collections::BTreeMap;

/// File holding the HW of every partition (Kafka's `replication-offset-checkpoint`).
pub const HW_CHECKPOINT_FILE: &str = "replication-offset-checkpoint";

impl Broker {
    /// Whether a controller request from `controller` in `controller_epoch` is fenced: with
    /// `sim.controller.epoch-fencing` on, a request from an older controller epoch than the
    /// highest this broker accepted comes from a deposed controller and is refused with
    /// STALE_CONTROLLER_EPOCH (Kafka's `ReplicaManager`: "Ignoring ... since its controller epoch
    /// is old"). Records the rejection.
    pub(super) fn controller_request_fenced(
        &self,
        controller: BrokerId,
        controller_epoch: ControllerEpoch,
        api: &str,
        out: &mut Effects<BrokerTimer>,
    ) -> bool {
        if !self.config.controller_epoch_fencing
            || controller_epoch >= self.highest_controller_epoch
        {
            return false;
        }
        out.event(Event::ControllerRequestRejected {
            broker: self.id,
            controller,
            controller_epoch,
            api: api.into(),
            highest_controller_epoch: self.highest_controller_epoch,
        });
        true
    }

    /// A controller request is applied: remember its epoch (the highest seen, when fenced; in
    /// the legacy unfenced mode the broker simply follows the latest request) and record it.
    pub(super) fn accept_controller_request(
        &mut self,
        controller: BrokerId,
        controller_epoch: ControllerEpoch,
        api: &str,
        out: &mut Effects<BrokerTimer>,
    ) {
        if self.config.controller_epoch_fencing {
            assert!(controller_epoch >= self.highest_controller_epoch);
        }
        self.highest_controller_epoch = controller_epoch;
        out.event(Event::ControllerRequestAccepted {
            broker: self.id,
            controller,
            controller_epoch,
            api: api.into(),
        });
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn on_leader_and_isr(
        &mut self,
        now: Instant,
        from: NodeId,
        controller: BrokerId,
        controller_epoch: ControllerEpoch,
        broker_epoch: BrokerEpoch,
        states: Vec<PartitionState>,
        out: &mut Effects<BrokerTimer>,
    ) {
        if self.controller_request_fenced(controller, controller_epoch, "LeaderAndIsr", out) {
            out.send(
                from,
                Message::LeaderAndIsrResponse {
                    controller_epoch,
                    error: ErrorCode::StaleControllerEpoch,
                },
            );
            return;
        }
        if broker_epoch != self.broker_epoch {
            // KIP-380: addressed to a previous incarnation of this broker.
            out.send(
                from,
                Message::LeaderAndIsrResponse {
                    controller_epoch,
                    error: ErrorCode::StaleBrokerEpoch,
                },
            );
            return;
        }
        self.accept_controller_request(controller, controller_epoch, "LeaderAndIsr", out);
        for state in states {
            if !state.replicas.contains(&self.id) {
                continue;
            }
            self.apply_partition_state(now, state, out);
        }
        // The new followers joined their leaders' sessions; each session fetches all of them
        // in one request (Kafka's `addFetcherForPartitions` for the whole LeaderAndIsr).
        self.fetchers_do_work_all(now, out);
        out.send(
            from,
            Message::LeaderAndIsrResponse {
                controller_epoch,
                error: ErrorCode::None,
            },
        );
    }

    pub(super) fn apply_partition_state(
        &mut self,
        now: Instant,
        state: PartitionState,
        out: &mut Effects<BrokerTimer>,
    ) {
        let tp = state.tp.clone();
        let me = self.id;
        if !self.partitions.contains_key(&tp) {
            self.ensure_internal_topic_config(&tp.topic, out);
            let mut log = PartitionLog::new(&tp);
            log.set_config(self.log_config(&tp.topic));
            self.partitions.insert(
                tp.clone(),
                Partition {
                    log,
                    high_watermark: Offset(0),
                    role: Role::None,
                    leader_epoch: LeaderEpoch::UNKNOWN,
                    producers: BTreeMap::new(),
                    last_stable_offset: None,
                    generation: 0,
                },
            );
        }
        let p = self.partitions.get_mut(&tp).expect("just inserted");
        if state.leader_epoch < p.leader_epoch {
            return; // stale
        }
        let same_epoch = state.leader_epoch == p.leader_epoch;
        if state.leader == Some(me) {
            if same_epoch {
                if let Role::Leader(l) = &mut p.role {
                    // Same epoch: only the ISR may have changed (controller-side write we
                    // already know through AlterPartition, or a refresh).
                    if state.partition_epoch > l.partition_epoch {
                        l.isr = state.isr.clone();
                        l.partition_epoch = state.partition_epoch;
                        // The committed state supersedes an AlterPartition in flight: that
                        // request names an older partition epoch, so the controller refuses
                        // it if it has not carried it out already.
                        l.pending_isr = None;
                        // The leader's view of the ISR changed: say so, as an AlterPartition
                        // answer does (the weak-isr check reads the local ISR from events).
                        out.event(Event::IsrChanged {
                            tp: tp.clone(),
                            broker: me,
                            leader_epoch: l.leader_epoch,
                            isr: state.isr.clone(),
                            partition_epoch: state.partition_epoch,
                        });
                    }
                    return;
                }
            }
            self.make_leader(now, state, out);
        } else {
            if same_epoch {
                if let Role::Follower(_) = &p.role {
                    return;
                }
            }
            self.make_follower(now, state, out);
        }
    }

    pub(super) fn make_leader(
        &mut self,
        now: Instant,
        state: PartitionState,
        out: &mut Effects<BrokerTimer>,
    ) {
        let tp = state.tp.clone();
        let me = self.id;
        let mut ops = Vec::new();
        let p = self.partitions.get_mut(&tp).expect("hosted");
        let leo = p.log.log_end_offset();
        p.log.assign_epoch_start(state.leader_epoch, leo, &mut ops);
        p.leader_epoch = state.leader_epoch;
        p.generation += 1;
        let followers = state
            .replicas
            .iter()
            .filter(|r| **r != me)
            .map(|r| {
                (
                    *r,
                    FollowerProgress {
                        log_end_offset: Offset(-1),
                        last_caught_up: now,
                        broker_epoch: BrokerEpoch(-1),
                    },
                )
            })
            .collect();
        p.role = Role::Leader(LeaderState {
            leader_epoch: state.leader_epoch,
            isr: state.isr.clone(),
            partition_epoch: state.partition_epoch,
            replicas: state.replicas.clone(),
            followers,
            pending_isr: None,
            isr_in_flight: None,
            isr_sends: 0,
            epoch_start_offset: leo,
        });
        let hw = p.high_watermark;
        for op in ops {
            out.disk(op);
        }
        out.event(Event::BecameLeader {
            tp: tp.clone(),
            broker: me,
            leader_epoch: state.leader_epoch,
            isr: state.isr.clone(),
            log_end_offset: leo,
            high_watermark: hw,
        });
        self.coordinator_become_leader(now, &tp, out);
        // A sole-replica ISR can advance the HW at once.
        self.maybe_advance_hw(now, &tp, out);
        // Fetches parked with the previous leader epoch are fenced now (DelayedFetch case H).
        self.complete_delayed_fetches(now, &tp, out);
    }

    pub(super) fn make_follower(
        &mut self,
        now: Instant,
        state: PartitionState,
        out: &mut Effects<BrokerTimer>,
    ) {
        let tp = state.tp.clone();
        let me = self.id;
        let mode = self.config.replication_truncation;
        let p = self.partitions.get_mut(&tp).expect("hosted");
        // The leader this replica followed (itself if it led) before this LeaderAndIsr; `None`
        // after a restart, when no LeaderAndIsr has been seen yet.
        let previous_leader = match &p.role {
            Role::None => None,
            Role::Leader(_) => Some(me),
            Role::Follower(f) => f.leader,
        };
        p.leader_epoch = state.leader_epoch;
        p.generation += 1;
        let generation = p.generation;
        // KIP-101 and KIP-279 truncate before fetching, by asking the leader where the epoch of
        // the follower's last record ends (an empty log has nothing to truncate). Kip101.tla
        // truncates on every new epoch; Kafka up to 2.0 (KAFKA-7164) only when the leader
        // changed, which is what `kip-279` keeps.
        let last_epoch = p.log.epoch_of_last_batch();
        let epoch_lookup = match mode {
            TruncationMode::Kip101 => Some(last_epoch),
            TruncationMode::Kip279 if previous_leader != state.leader => Some(last_epoch),
            _ => None,
        }
        .filter(|e| *e != LeaderEpoch::UNKNOWN && state.leader.is_some());
        p.role = Role::Follower(FollowerState {
            leader: state.leader,
            leader_epoch: state.leader_epoch,
            in_flight: None,
            delayed: false,
            generation,
            epoch_lookup,
            append_failed_at: None,
        });
        let leo = p.log.log_end_offset();
        out.event(Event::BecameFollower {
            tp: tp.clone(),
            broker: me,
            leader: state.leader,
            leader_epoch: state.leader_epoch,
            log_end_offset: leo,
        });
        if self.config.replication_truncation == TruncationMode::HighWatermark
            && p.high_watermark < leo
        {
            // Before KIP-101 a new follower cut its log back to its own high watermark and
            // fetched from there: anything above it was assumed uncommitted. A follower learns
            // the HW one fetch late and checkpoints it every few seconds, so after a restart
            // this can cut records the leader had already committed (KIP-101, scenario 1).
            let hw = p.high_watermark;
            let mut ops = Vec::new();
            // Truncation stops at a batch boundary, possibly below the HW.
            let to = p.log.truncate_to(hw, &mut ops);
            p.high_watermark = p.high_watermark.min(to);
            for op in ops {
                out.disk(op);
            }
            out.event(Event::Truncated {
                tp: tp.clone(),
                broker: me,
                from_offset: leo,
                to_offset: to,
                reason: "high-watermark (pre-KIP-101)".into(),
            });
            self.rebuild_producers(&tp);
        }
        self.fail_pending_produces(&tp, ErrorCode::NotLeaderOrFollower, out);
        // Fetches parked on this partition answer now with NOT_LEADER_OR_FOLLOWER for it
        // (Kafka's `completeDelayedFetchOrProduceRequests` on becoming a follower).
        self.complete_delayed_fetches(now, &tp, out);
        self.coordinator_resign(&tp, out);
        if state.leader.is_some() {
            self.add_fetcher_partition(&tp, out);
        }
    }

    /// StopReplica: stop serving the partitions and, with `delete_partitions` (topic
    /// deletion), delete their logs, as Kafka's `ReplicaManager.stopReplicas` does. Fenced by
    /// controller epoch and broker epoch like LeaderAndIsr.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn on_stop_replica(
        &mut self,
        from: NodeId,
        controller: BrokerId,
        controller_epoch: ControllerEpoch,
        broker_epoch: BrokerEpoch,
        partitions: Vec<TopicPartition>,
        delete_partitions: bool,
        out: &mut Effects<BrokerTimer>,
    ) {
        let error =
            if self.controller_request_fenced(controller, controller_epoch, "StopReplica", out) {
                ErrorCode::StaleControllerEpoch
            } else if broker_epoch != self.broker_epoch {
                ErrorCode::StaleBrokerEpoch
            } else {
                ErrorCode::None
            };
        if error == ErrorCode::None {
            self.accept_controller_request(controller, controller_epoch, "StopReplica", out);
            for tp in partitions {
                if !delete_partitions {
                    continue; // only deletion is modelled (replica reassignment is not)
                }
                let Some(p) = self.partitions.remove(&tp) else {
                    continue;
                };
                self.metadata.remove(&tp);
                out.disk(DiskOp::DeleteDir {
                    dir: p.log.dir().to_string(),
                });
                out.event(Event::ReplicaDeleted {
                    tp: tp.clone(),
                    broker: self.id,
                });
                self.fail_pending_produces(&tp, ErrorCode::UnknownTopicOrPartition, out);
                self.coordinator_resign(&tp, out);
            }
        }
        out.send(
            from,
            Message::StopReplicaResponse {
                controller_epoch,
                error,
            },
        );
    }

    pub(super) fn write_hw_checkpoint(&self, out: &mut Effects<BrokerTimer>) {
        let mut text = String::from("0\n");
        text.push_str(&format!("{}\n", self.partitions.len()));
        for (tp, p) in &self.partitions {
            text.push_str(&format!(
                "{} {} {}\n",
                tp.topic, tp.partition, p.high_watermark.0
            ));
        }
        out.disk(DiskOp::WriteAtomic {
            file: HW_CHECKPOINT_FILE.into(),
            data: text.into_bytes(),
        });
    }
}

/// Parses Kafka's checkpoint text format: version, count, then `topic partition offset` lines.
pub(super) fn parse_hw_checkpoint(data: Option<&[u8]>) -> BTreeMap<TopicPartition, Offset> {
    let mut map = BTreeMap::new();
    let Some(data) = data else { return map };
    let Ok(text) = std::str::from_utf8(data) else {
        return map;
    };
    for line in text.lines().skip(2) {
        let parts: Vec<&str> = line.split_whitespace().collect();
        if let [topic, p, off] = parts.as_slice() {
            if let (Ok(p), Ok(off)) = (p.parse(), off.parse()) {
                map.insert(TopicPartition::new(*topic, p), Offset(off));
            }
        }
    }
    map
}
