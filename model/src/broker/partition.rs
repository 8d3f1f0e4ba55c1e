//! A hosted partition (Kafka's `Partition.scala`): its log, high watermark and role, the
//! leader's view of its followers, the ISR (shrinking lagging followers, expanding caught-up
//! ones through AlterPartition to the controller, KIP-497, with one copy of the request in
//! flight as Kafka's `AlterPartitionManager` keeps), and advancing the high watermark over
//! the maximal ISR.

use super::{Broker, BrokerTimer};
use crate::config::TruncationMode;
use crate::effects::Effects;
use crate::event::Event;
use crate::log::producer_state::ProducerEntry;
use crate::log::PartitionLog;
use crate::protocol::*;
use crate::types::*;
use std::collections::BTreeMap;

/// How long a leader waits before it sends an AlterPartition again after a NOT_CONTROLLER
/// answer, a failed send or a broken connection to the controller, in milliseconds: Kafka's
/// `retry.backoff.max.ms` default (1000), the cap of the client retry backoff (KIP-580).
pub(super) const ALTER_PARTITION_RETRY_BACKOFF_MS: u64 = 1_000;

/// What the leader knows of one follower.
#[derive(Debug, Clone)]
pub(super) struct FollowerProgress {
    /// The follower's LEO as of its last fetch in this epoch (`-1`: not fetched yet).
    pub(super) log_end_offset: Offset,
    /// Last time the follower was caught up to the leader's LEO.
    pub(super) last_caught_up: Instant,
    /// The follower's broker epoch from its fetches (KIP-903); `-1` before its first fetch.
    pub(super) broker_epoch: BrokerEpoch,
}

#[derive(Debug, Clone)]
pub(super) struct LeaderState {
    pub(super) leader_epoch: LeaderEpoch,
    /// The ISR the controller committed.
    pub(super) isr: Vec<BrokerId>,
    pub(super) partition_epoch: ZkVersion,
    pub(super) replicas: Vec<BrokerId>,
    pub(super) followers: BTreeMap<BrokerId, FollowerProgress>,
    /// An AlterPartition pending: the correlation id of its latest send and the ISR asked for.
    pub(super) pending_isr: Option<(CorrelationId, Vec<BrokerId>)>,
    /// The controller the latest send of `pending_isr` went to while its answer is awaited
    /// (`None`: answered, failed, or its connection broke). At most one copy is in flight,
    /// as Kafka's `AlterPartitionManager` keeps one (see `send_alter_partition`).
    pub(super) isr_in_flight: Option<BrokerId>,
    /// How many times this leader has sent an AlterPartition (each send arms one retry).
    pub(super) isr_sends: u64,
    /// Offset at which this leader's epoch starts.
    pub(super) epoch_start_offset: Offset,
}

#[derive(Debug, Clone)]
pub(super) struct FollowerState {
    pub(super) leader: Option<BrokerId>,
    pub(super) leader_epoch: LeaderEpoch,
    /// The OffsetsForLeaderEpoch in flight (legacy modes); fetches go out in the leader's
    /// session (`fetcher_thread.rs`).
    pub(super) in_flight: Option<CorrelationId>,
    /// Backing off after an error (`replica.fetch.backoff.ms`): left out of the session's
    /// fetches until the `FollowerFetch` timer fires.
    pub(super) delayed: bool,
    /// Bumped on every role change so stale timers are ignored.
    pub(super) generation: u64,
    /// The truncation phase of the legacy modes `kip-101` and `kip-279`: while `Some(epoch)`,
    /// the follower sends OffsetsForLeaderEpoch for `epoch` instead of fetching.
    pub(super) epoch_lookup: Option<LeaderEpoch>,
    /// The log end offset at which the leader's data last could not be appended (reported
    /// once per offset, see [`Event::FollowerAppendFailed`]).
    pub(super) append_failed_at: Option<Offset>,
}

#[derive(Debug, Clone)]
pub(super) enum Role {
    /// Hosted but no LeaderAndIsr received yet in this process.
    None,
    Leader(LeaderState),
    Follower(FollowerState),
}

#[derive(Debug)]
pub(super) struct Partition {
    pub(super) log: PartitionLog,
    pub(super) high_watermark: Offset,
    pub(super) role: Role,
    /// Latest leader epoch this broker accepted for the partition.
    pub(super) leader_epoch: LeaderEpoch,
    pub(super) producers: BTreeMap<ProducerId, ProducerEntry>,
    pub(super) generation: u64,
    /// The last stable offset this replica last reported as leader while a transaction held
    /// it below the high watermark ([`Event::LastStableOffsetChanged`]); `None` while it
    /// equals the high watermark.
    pub(super) last_stable_offset: Option<Offset>,
}

impl Broker {
    pub(super) fn maybe_expand_isr(
        &mut self,
        now: Instant,
        tp: &TopicPartition,
        r: BrokerId,
        fetch_offset: Offset,
        out: &mut Effects<BrokerTimer>,
    ) {
        // Read-only until an expansion is due: this runs for every partition of every follower
        // fetch, and a mutable borrow would mark the partition for the invariants.
        let p = self.partitions.get(tp).expect("hosted");
        let hw = p.high_watermark;
        let Role::Leader(l) = &p.role else { return };
        if l.isr.contains(&r) || l.pending_isr.is_some() || !l.replicas.contains(&r) {
            return;
        }
        // Caught up to the HW, and within this leader's epoch (KAFKA-7128 / Kip320.tla).
        if fetch_offset >= hw && fetch_offset >= l.epoch_start_offset {
            let mut new_isr = l.isr.clone();
            new_isr.push(r);
            self.send_alter_partition(now, tp, new_isr, out);
        }
    }

    /// Sends an AlterPartition asking for `new_isr` (a first send, or the pending request
    /// again). The request stays pending (and the HW counts the members it adds, KIP-497's
    /// maximal ISR) until the controller answers it or a LeaderAndIsr supersedes it, as
    /// Kafka's `AlterPartitionManager` keeps retrying an unanswered request: the controller
    /// may still carry out a request whose answer is slow, so forgetting it would let the HW
    /// pass a member about to join the ISR.
    ///
    /// One copy at a time, each with a correlation id of its own, as in Kafka: the request
    /// is sent again only once the previous copy is answered with a retriable error, could
    /// not be sent, lost its connection, went to a controller that has since been replaced
    /// (`set_controller`; a deposed controller's state write is fenced by the controller
    /// epoch), or went unanswered for `controller.socket.timeout.ms` (the request timeout of
    /// Kafka's `NodeToControllerChannelManager`; a copy sent again then queues behind the
    /// first on the same connection, so the controller sees them in order). Only the latest
    /// copy's answer counts. Before this, a retry reused the correlation id and went out every
    /// 5 s whatever had become of the first copy: in `controller-split-brain-fenced` seed
    /// 10911 the controller refused an ISR expansion (the new member's registration was not
    /// yet loaded) while the leader was paused; on resume the leader sent the same request
    /// again, then read the refusal as the answer to it and let its HW pass the member, whose
    /// addition the controller carried out 7 ms later from the second copy: an ISR member
    /// 1790 records behind the HW (`strong-isr`).
    pub(super) fn send_alter_partition(
        &mut self,
        _now: Instant,
        tp: &TopicPartition,
        new_isr: Vec<BrokerId>,
        out: &mut Effects<BrokerTimer>,
    ) {
        let corr = self.fresh_corr();
        let broker = self.id;
        let broker_epoch = self.broker_epoch;
        let controller = self.controller_id;
        let request_timeout = self.config.controller_socket_timeout_ms;
        let p = self.partitions.get_mut(tp).expect("hosted");
        let Role::Leader(l) = &mut p.role else { return };
        l.pending_isr = Some((corr, new_isr.clone()));
        l.isr_in_flight = controller;
        l.isr_sends += 1;
        let send = l.isr_sends;
        let new_isr_epochs = new_isr
            .iter()
            .map(|r| {
                if *r == broker {
                    broker_epoch
                } else {
                    l.followers
                        .get(r)
                        .map(|f| f.broker_epoch)
                        .unwrap_or(BrokerEpoch(-1))
                }
            })
            .collect();
        let msg = Message::AlterPartition {
            corr,
            broker,
            broker_epoch,
            tp: tp.clone(),
            leader_epoch: l.leader_epoch,
            new_isr,
            new_isr_epochs,
            partition_epoch: l.partition_epoch,
        };
        let generation = p.generation;
        if let Some(c) = controller {
            out.send(NodeId::Broker(c), msg)
        }
        // If no answer comes in the request timeout, try again.
        out.timer(
            request_timeout,
            BrokerTimer::AlterPartitionRetry {
                tp: tp.clone(),
                generation,
                send,
            },
        );
    }

    pub(super) fn on_alter_partition_response(
        &mut self,
        now: Instant,
        corr: CorrelationId,
        tp: TopicPartition,
        error: ErrorCode,
        state: Option<PartitionState>,
        out: &mut Effects<BrokerTimer>,
    ) {
        let me = self.id;
        let Some(p) = self.partitions.get_mut(&tp) else {
            return;
        };
        let Role::Leader(l) = &mut p.role else { return };
        match &l.pending_isr {
            Some((c, _)) if *c == corr => {}
            _ => return,
        }
        l.isr_in_flight = None;
        if error == ErrorCode::NotController {
            // A top-level error: the request was not looked at, but an earlier send of it may
            // have been carried out (a deposed controller's write can land in the coordination
            // node and its answer be lost). Kafka's AlterPartitionManager retries it with the
            // controller it finds next, after `retry.backoff.ms` growing to
            // `retry.backoff.max.ms` (1 s, KIP-580); the request stays pending (its new members
            // hold the HW back) meanwhile. Waiting for the 5 s retry instead left a leader's
            // ISR expansion, refused by a controller still loading, for 5 s
            // (`correlated-power-loss-fsync` seed 10829).
            let generation = p.generation;
            out.timer(
                ALTER_PARTITION_RETRY_BACKOFF_MS,
                BrokerTimer::AlterPartitionRetry {
                    tp: tp.clone(),
                    generation,
                    send: l.isr_sends,
                },
            );
            return;
        }
        if matches!(
            error,
            ErrorCode::InvalidUpdateVersion
                | ErrorCode::FencedLeaderEpoch
                | ErrorCode::StaleBrokerEpoch
                | ErrorCode::UnknownTopicOrPartition
        ) {
            // The partition changed since we asked, possibly by this very request (its first
            // answer lost, or a retry answered after it was carried out), or the controller
            // no longer takes requests from this leader or this incarnation: whether the ISR
            // now has the members we asked for, only the LeaderAndIsr on its way can tell.
            // Stay pending until it comes, without retrying, as Kafka's
            // `Partition.handleAlterPartitionError` does for every error but
            // OPERATION_NOT_ATTEMPTED and INELIGIBLE_REPLICA: a pending expansion keeps
            // holding the HW back. Dropping it here let a leader whose expansion to [0, 1]
            // had been committed (its answer lost in a partition) advance the HW over [0]
            // alone once its retry was refused, and acknowledge records the newly elected
            // leader never had (`clean-leader-election` seed 7950015).
            return;
        }
        // Only a refusal that says the request was not carried out at the current partition
        // epoch (INELIGIBLE_REPLICA; our INVALID_REQUEST for a member that is not a live
        // replica is the same case) resets to the committed ISR.
        l.pending_isr = None;
        if error == ErrorCode::None {
            if let Some(s) = state {
                if s.leader_epoch == l.leader_epoch {
                    // A LeaderAndIsr carrying this very state may have told us first.
                    let changed = l.isr != s.isr || l.partition_epoch != s.partition_epoch;
                    l.isr = s.isr.clone();
                    l.partition_epoch = s.partition_epoch;
                    if changed {
                        out.event(Event::IsrChanged {
                            tp: tp.clone(),
                            broker: me,
                            leader_epoch: l.leader_epoch,
                            isr: s.isr,
                            partition_epoch: s.partition_epoch,
                        });
                    }
                }
            }
        }
        self.maybe_advance_hw(now, &tp, out);
        self.complete_produces(&tp, out);
    }

    /// The latest copy of `tp`'s pending AlterPartition will not be answered (it could not be
    /// sent, or its connection broke): send it again after `retry.backoff.max.ms`.
    pub(super) fn alter_partition_lost(
        &mut self,
        tp: &TopicPartition,
        out: &mut Effects<BrokerTimer>,
    ) {
        let Some(p) = self.partitions.get_mut(tp) else {
            return;
        };
        let generation = p.generation;
        let Role::Leader(l) = &mut p.role else { return };
        if l.pending_isr.is_none() || l.isr_in_flight.is_none() {
            return;
        }
        l.isr_in_flight = None;
        out.timer(
            ALTER_PARTITION_RETRY_BACKOFF_MS,
            BrokerTimer::AlterPartitionRetry {
                tp: tp.clone(),
                generation,
                send: l.isr_sends,
            },
        );
    }

    /// HW = min LEO over the maximal ISR (leader included); never decreases.
    ///
    /// In the fenced protocol the high watermark does not move while the committed ISR is
    /// smaller than the partition's `min.insync.replicas` (capped at its replication factor):
    /// KIP-966's "strict min ISR" rule (Kafka 4.0+, `Partition.maybeIncrementLeaderHW` skips
    /// while `isUnderMinIsr`). It is what makes the replicas the controller keeps in the
    /// last-known ELR hold every committed record (`controller::update_last_known_elr`).
    /// Records written meanwhile with `acks=1` or `acks=0` stay invisible to consumers until
    /// the ISR grows back.
    pub(super) fn maybe_advance_hw(
        &mut self,
        now: Instant,
        tp: &TopicPartition,
        out: &mut Effects<BrokerTimer>,
    ) {
        let me = self.id;
        let strict_min_isr = self.config.replication_truncation == TruncationMode::Fenced;
        let min_isr = self.min_isr(&tp.topic).max(1) as usize;
        // Read-only until the HW moves (this runs for every partition of every follower fetch).
        let Some(p) = self.partitions.get(tp) else {
            return;
        };
        let Role::Leader(l) = &p.role else { return };
        if strict_min_isr && l.isr.len() < min_isr.min(l.replicas.len().max(1)) {
            return;
        }
        let leo = p.log.log_end_offset();
        let mut new_hw = leo;
        // The minimum over KIP-497's maximal ISR (the committed ISR plus any member being
        // added), without building the set: a member listed twice changes no minimum.
        let adding = l
            .pending_isr
            .as_ref()
            .map_or(&[][..], |(_, isr)| isr.as_slice());
        for &r in l.isr.iter().chain(adding) {
            if r == me {
                continue;
            }
            let f_leo = l
                .followers
                .get(&r)
                .map(|f| f.log_end_offset)
                .unwrap_or(Offset(-1));
            new_hw = new_hw.min(f_leo);
        }
        if new_hw > p.high_watermark {
            let p = self.partitions.get_mut(tp).expect("present");
            let Role::Leader(l) = &p.role else {
                unreachable!("checked above")
            };
            p.high_watermark = new_hw;
            p.log.on_high_watermark(new_hw);
            out.event(Event::HighWatermarkChanged {
                tp: tp.clone(),
                broker: me,
                leader_epoch: l.leader_epoch,
                high_watermark: new_hw,
            });
            self.complete_produces(tp, out);
            self.maybe_report_lso(tp, out);
            self.complete_delayed_fetches(now, tp, out);
            self.coordinator_high_watermark(now, tp, new_hw, out);
        }
    }

    /// Emits [`Event::LastStableOffsetChanged`] if this leader's last stable offset differs
    /// from the one it last reported. Called where it can move: after the high watermark
    /// advances and after every leader append (a transaction opening or a marker ending one).
    ///
    /// Reported while a transaction holds the LSO below the high watermark, and once when it
    /// catches up with it again; an LSO equal to the high watermark moves with it unreported
    /// (`high-watermark-changed` says so already), so runs without transactions emit none.
    pub(super) fn maybe_report_lso(&mut self, tp: &TopicPartition, out: &mut Effects<BrokerTimer>) {
        let me = self.id;
        let Some(p) = self.partitions.get_mut(tp) else {
            return;
        };
        if !matches!(p.role, Role::Leader(_)) {
            return;
        }
        let lso = p.last_stable_offset_now();
        let held = (lso < p.high_watermark).then_some(lso);
        if held == p.last_stable_offset {
            return;
        }
        p.last_stable_offset = held;
        out.event(Event::LastStableOffsetChanged {
            tp: tp.clone(),
            broker: me,
            last_stable_offset: lso,
            first_unstable: p.log.first_unstable_offset(p.high_watermark),
        });
    }

    pub(super) fn check_isr_shrink(&mut self, now: Instant, out: &mut Effects<BrokerTimer>) {
        let me = self.id;
        let lag_max = self.config.replica_lag_time_max_ms;
        let mut shrinks = Vec::new();
        for (tp, p) in &self.partitions {
            let Role::Leader(l) = &p.role else { continue };
            if l.pending_isr.is_some() {
                continue;
            }
            let leo = p.log.log_end_offset();
            let out_of_sync: Vec<BrokerId> = l
                .isr
                .iter()
                .copied()
                .filter(|r| *r != me)
                .filter(|r| match l.followers.get(r) {
                    Some(f) => f.log_end_offset < leo && now.since(f.last_caught_up) > lag_max,
                    None => true,
                })
                .collect();
            if !out_of_sync.is_empty() {
                let new_isr: Vec<BrokerId> = l
                    .isr
                    .iter()
                    .copied()
                    .filter(|r| !out_of_sync.contains(r))
                    .collect();
                shrinks.push((tp.clone(), new_isr));
            }
        }
        for (tp, isr) in shrinks {
            self.send_alter_partition(now, &tp, isr, out);
        }
    }

    /// The retry timer of a pending AlterPartition: valid only for the partition generation
    /// and the send that armed it.
    pub(super) fn on_alter_partition_retry(
        &mut self,
        now: Instant,
        tp: TopicPartition,
        generation: u64,
        send: u64,
        out: &mut Effects<BrokerTimer>,
    ) {
        let retry = match self.partitions.get(&tp) {
            Some(p) if p.generation == generation => match &p.role {
                Role::Leader(l) if l.isr_sends == send => l.pending_isr.clone(),
                _ => None,
            },
            _ => None,
        };
        if let Some((_, new_isr)) = retry {
            // Unanswered in the request timeout, refused as NOT_CONTROLLER, or its
            // copy lost: ask again. The request stays pending meanwhile (see
            // `send_alter_partition`).
            self.send_alter_partition(now, &tp, new_isr, out);
        }
    }

    /// The connection to broker `b` broke.
    pub(super) fn alter_partitions_to_broker_lost(
        &mut self,
        b: BrokerId,
        out: &mut Effects<BrokerTimer>,
    ) {
        // An AlterPartition in flight to that broker (as controller) will not be
        // answered: send it again after the backoff, as Kafka's channel manager does
        // when the connection to the controller drops.
        let unanswered: Vec<TopicPartition> = self
            .partitions
            .iter()
            .filter(|(_, p)| matches!(&p.role, Role::Leader(l) if l.isr_in_flight == Some(b)))
            .map(|(tp, _)| tp.clone())
            .collect();
        for tp in unanswered {
            self.alter_partition_lost(&tp, out);
        }
    }

    /// An AlterPartition could not be sent: if it is the latest copy, send it again later.
    pub(super) fn alter_partition_send_failed(
        &mut self,
        corr: CorrelationId,
        tp: TopicPartition,
        out: &mut Effects<BrokerTimer>,
    ) {
        let latest = matches!(
            self.partitions.get(&tp).map(|p| &p.role),
            Some(Role::Leader(l)) if matches!(&l.pending_isr, Some((c, _)) if *c == corr)
        );
        if latest {
            self.alter_partition_lost(&tp, out);
        }
    }
}

impl Partition {
    /// The last stable offset (KIP-98; Kafka's `UnifiedLog.lastStableOffset`):
    /// `min(first offset of the earliest unstable transaction, high watermark)` (a transaction
    /// is unstable while open and until the high watermark passes its marker), the bound of
    /// read_committed reads. `O(log n)`: the log keeps open transactions by first offset.
    pub(super) fn last_stable_offset_now(&self) -> Offset {
        let lso = match self.log.first_unstable_offset(self.high_watermark) {
            Some((_, first)) => first.min(self.high_watermark),
            None => self.high_watermark,
        };
        // An open transaction whose first records retention deleted: never below the log
        // start offset (Kafka's `UnifiedLog.maybeIncrementFirstUnstableOffset`).
        lso.max(self.log.log_start_offset())
    }

    pub(super) fn record_producer_batch(
        &mut self,
        pid: ProducerId,
        epoch: ProducerEpoch,
        first_seq: i32,
        last_seq: i32,
        first_offset: Offset,
    ) {
        self.producers.entry(pid).or_default().record_batch(
            epoch,
            first_seq,
            last_seq,
            first_offset,
        );
    }

    /// Rebuild producer state from the log (Kafka rebuilds it from snapshots plus the log tail
    /// on recovery and truncation).
    pub(super) fn rebuild_producer_state(&mut self) {
        self.producers.clear();
        let batches: Vec<_> = self
            .log
            .batches()
            // A marker carries no sequence numbers (its base sequence is -1).
            .filter(|b| b.producer_id != ProducerId::NONE && !b.is_control)
            .map(|b| {
                (
                    b.producer_id,
                    b.producer_epoch,
                    b.base_sequence.0,
                    (b.last_offset.0 - b.base_offset.0) as i32,
                    b.base_offset,
                )
            })
            .collect();
        for (pid, epoch, first, delta, base) in batches {
            self.record_producer_batch(pid, epoch, first, first.wrapping_add(delta), base);
        }
    }
}
