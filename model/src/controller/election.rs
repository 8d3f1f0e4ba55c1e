//! Leader election and ISR reconciliation: which replica leads each partition, given the
//! live brokers, the ISR and the incarnation each member joined with (KIP-903), including the
//! unclean election and the recovery among the last ISR (KIP-966).
//!
//! Mirrors Kafka's `PartitionStateMachine.electLeaderForPartitions` and
//! `PartitionLeaderElectionAlgorithms.offlinePartitionLeaderElection`.

use super::*;

impl Controller {
    /// The partition's `min.insync.replicas` (the topic's override, else the broker's), capped
    /// at its replication factor `replicas` as Kafka's `Partition.effectiveMinIsr` caps it.
    pub(super) fn effective_min_isr(&self, tp: &TopicPartition, replicas: usize) -> usize {
        let configured = self
            .topics
            .iter()
            .find(|t| t.name == tp.topic)
            .and_then(|t| t.config.min_insync_replicas)
            .unwrap_or(self.config.min_insync_replicas);
        (configured.max(1) as usize).min(replicas.max(1))
    }

    fn unclean_allowed(&self, topic: &str) -> bool {
        self.topics
            .iter()
            .find(|t| t.name == topic)
            .and_then(|t| t.config.unclean_leader_election_enable)
            .unwrap_or(self.config.unclean_leader_election_enable)
    }

    /// Leader election for one partition (`OfflinePartitionLeaderElection`): the first replica
    /// in assignment order that is in `in_sync` (ISR members of their current incarnation);
    /// if there is none and unclean election is allowed, the first replica in `alive`.
    /// Returns the new leader (or `None`: offline), the new ISR, and whether it was unclean.
    pub(super) fn elect(
        &self,
        tp: &TopicPartition,
        replicas: &[BrokerId],
        isr: &[BrokerId],
        in_sync: &BTreeSet<BrokerId>,
        alive: &BTreeSet<BrokerId>,
    ) -> (Option<BrokerId>, Vec<BrokerId>, bool) {
        if let Some(l) = replicas
            .iter()
            .find(|r| in_sync.contains(r) && isr.contains(r))
        {
            let new_isr: Vec<BrokerId> = isr
                .iter()
                .copied()
                .filter(|r| in_sync.contains(r))
                .collect();
            return (Some(*l), new_isr, false);
        }
        if self.unclean_allowed(&tp.topic) {
            if let Some(l) = replicas.iter().find(|r| alive.contains(r)) {
                return (Some(*l), vec![*l], true);
            }
        }
        (None, isr.to_vec(), false)
    }

    /// Bring every partition in line with the live set: initialise new partitions, elect
    /// leaders for partitions whose leader is not eligible, drop dead replicas from ISRs.
    ///
    /// A replica counts as in sync only in the incarnation that joined the ISR (KIP-903): its
    /// registered broker epoch must equal the one stored with the ISR. A broker that restarted
    /// (perhaps after losing power or its disk) is therefore out of the ISR even when no
    /// controller saw it go (for example because the controller changed meanwhile), and must
    /// catch up and be added back by the leader before it can be elected.
    pub(super) fn reconcile(&mut self, eligible: &BTreeSet<BrokerId>, reqs: &mut Reqs) {
        let a = self.active.as_ref().expect("active");
        let epoch = a.epoch;
        let mut writes = Vec::new();
        // Per recovered partition, the ELR members still candidates (the others go).
        let mut discarded: Vec<(TopicPartition, BTreeSet<BrokerId>)> = Vec::new();
        for (tp, state) in &a.states {
            let replicas = a.assignments.get(tp).cloned().unwrap_or_default();
            let stored = a.isr_epochs.get(tp);
            // In sync: eligible now, and the same incarnation that joined the ISR. (A state
            // written before epochs were stored has none: then only liveness counts.)
            // The legacy truncation modes model Kafka before KIP-380 and KIP-903 as well: then
            // ISR membership alone made a replica electable, whatever had happened to it since.
            let legacy = self.config.replication_truncation != TruncationMode::Fenced;
            let in_sync: BTreeSet<BrokerId> = eligible
                .iter()
                .copied()
                .filter(|b| {
                    legacy
                        || match stored.and_then(|m| m.get(b)) {
                            Some(e) => a.live.get(b) == Some(e),
                            None => stored.is_none_or(|m| m.is_empty()),
                        }
                })
                .collect();
            match state {
                None => {
                    let isr: Vec<BrokerId> = replicas
                        .iter()
                        .copied()
                        .filter(|r| eligible.contains(r))
                        .collect();
                    if let Some(l) = isr.first().copied() {
                        writes.push((
                            tp.clone(),
                            PartitionState {
                                tp: tp.clone(),
                                leader: Some(l),
                                leader_epoch: LeaderEpoch(0),
                                isr,
                                replicas: replicas.clone(),
                                partition_epoch: ZkVersion(0),
                                controller_epoch: epoch,
                            },
                            "new-partition",
                        ));
                    }
                }
                Some(s) => {
                    let leader_ok = s.leader.is_some_and(|l| in_sync.contains(&l));
                    if !leader_ok {
                        let (mut leader, mut isr, unclean) =
                            self.elect(tp, &replicas, &s.isr, &in_sync, eligible);
                        let mut recovered = false;
                        // The last ISR and the last-known ELR: every replica that may hold
                        // the committed records.
                        // A provisional member of the ELR stops being one once some replica's
                        // log shows that the leader elected without it took leadership (that
                        // epoch, or a later one, in its leader-epoch checkpoint): that leader
                        // may have committed records it lacks (`clean-leader-election` seed
                        // 10662). Until then it stays (`kip-101-divergence-fixed` seeds 6, 71:
                        // the leader was a dead incarnation and never led).
                        let evidenced = a
                            .live
                            .iter()
                            .filter_map(|(b, e)| {
                                a.reported_logs
                                    .get(&(*b, *e))
                                    .and_then(|m| m.get(&tp.to_string()))
                                    .map(|r| r.2)
                            })
                            .max()
                            .filter(|e| e.0 >= 0);
                        let elr = a.elr.get(tp).cloned().unwrap_or_default();
                        let elr_candidates = elr.candidates(evidenced);
                        let candidates = recovery_candidates(&s.isr, &elr_candidates);
                        if !legacy
                            && leader.is_none()
                            && !s.isr.is_empty()
                            && candidates.iter().all(|r| a.live.contains_key(r))
                        {
                            // No member of the ISR is the incarnation that joined it: each has
                            // restarted since. Once all of them, and every replica the
                            // controller dropped from the ISR when it failed (the last-known
                            // ELR), are back, elect the one whose log is most complete
                            // (KIP-966's balanced unclean recovery): committed records survive
                            // as long as one of them kept its log. (The ISR may have been
                            // narrowed to a member whose dead incarnation was still registered,
                            // and which then came back with nothing: the dropped member that
                            // crashed without losing power still holds the records.)
                            let best = candidates
                                .iter()
                                .map(|r| {
                                    let report = a
                                        .reported_logs
                                        .get(&(*r, a.live[r]))
                                        .and_then(|m| m.get(&tp.to_string()))
                                        .map(|r| (r.0, r.1))
                                        .unwrap_or((LeaderEpoch::UNKNOWN, Offset(0)));
                                    let order =
                                        replicas.iter().position(|x| x == r).unwrap_or(usize::MAX);
                                    (report, std::cmp::Reverse(order), *r)
                                })
                                .max()
                                .map(|(_, _, r)| r);
                            if let Some(b) = best {
                                leader = Some(b);
                                isr = vec![b];
                                recovered = true;
                                if elr_candidates != elr.members {
                                    discarded.push((tp.clone(), elr_candidates));
                                }
                            }
                        }
                        if leader.is_none() && s.leader.is_none() {
                            continue; // still offline
                        }
                        let mut next = s.clone();
                        next.leader = leader;
                        next.isr = isr;
                        next.leader_epoch = s.leader_epoch.next();
                        next.controller_epoch = epoch;
                        let reason = match (leader, unclean, recovered) {
                            (None, _, _) => "offline",
                            (Some(_), true, _) => "unclean-election",
                            (Some(_), false, true) => "last-isr-recovery",
                            (Some(_), false, false) => "leader-election",
                        };
                        writes.push((tp.clone(), next, reason));
                    } else {
                        // Leader fine: drop ISR members that are gone or restarted since.
                        let isr: Vec<BrokerId> = s
                            .isr
                            .iter()
                            .copied()
                            .filter(|r| in_sync.contains(r))
                            .collect();
                        if isr != s.isr {
                            let mut next = s.clone();
                            next.isr = isr;
                            next.leader_epoch = s.leader_epoch.next();
                            next.controller_epoch = epoch;
                            writes.push((tp.clone(), next, "broker-failed"));
                        }
                    }
                }
            }
        }
        if !discarded.is_empty() {
            let a = self.active.as_mut().expect("active");
            for (tp, keep) in discarded {
                if let Some(elr) = a.elr.get_mut(&tp) {
                    elr.members.retain(|m| keep.contains(m));
                    elr.provisional.retain(|m, _| keep.contains(m));
                }
            }
        }
        for (tp, state, reason) in writes {
            self.write_state(&tp, state, reason, reqs);
        }
    }
}
