//! KIP-966's last-known eligible leader replicas (ELR): the replicas outside the ISR that a
//! recovery among the last ISR still weighs, because they may hold committed records the ISR
//! lost.
//!
//! Mirrors the ELR handling of Kafka's `PartitionChangeBuilder` (KRaft controller), kept by
//! this ZooKeeper-mode controller in the partition state znode.

use super::*;

/// KIP-966's last-known ELR after a partition-state write with `reason` changed the ISR from
/// `old_isr` to `new_isr` and elected (or kept) a leader of `leader_epoch`, for a partition
/// whose effective `min.insync.replicas` is `min_isr` (the topic's value capped at its
/// replication factor, as Kafka's `effectiveMinIsr`).
///
/// The ELR holds replicas outside the ISR that a recovery among the last ISR still weighs,
/// because they may hold committed records the ISR lost. Two kinds:
/// * *Firm* members, as in Kafka's ELR: a member the controller drops from the ISR because
///   it failed or restarted (`leader-election`, `broker-failed`, `offline`) while the ISR
///   left behind is smaller than `min_isr`. Under KIP-966's "strict min ISR" rule the leader
///   does not advance its high watermark while its ISR is that small (the broker's
///   `maybe_advance_hw`), so such a member holds every committed record.
/// * *Provisional* members (ksim's reading of the issue's rule "no candidate may be discarded
///   until an elected leader has actually taken leadership"): a member dropped while the ISR
///   left behind is at `min_isr` or more, every member when an election leaves the ISR that
///   large, and the members of the last ISR a recovery (`last-isr-recovery`) did not elect.
///   Each stays a candidate while no replica's log shows that a leader of the epoch it was
///   dropped at took leadership ([`LastKnownElr::candidates`], weighed against the
///   `highest_epoch_seen` each registration reports). The controller elects from
///   registrations, and a dead broker's ephemeral znode outlives it by up to
///   `zookeeper.session.timeout.ms` (a KRaft broker likewise stays unfenced until
///   `broker.session.timeout.ms`), so the leader it elects may never lead
///   (`kip-101-divergence-fixed` seeds 6, 71, 5032, 5160, 5468: without the dropped member,
///   the next recovery had only the dead leader's next incarnation, with an empty log, to
///   choose). Once a leader of that epoch has led, it may have committed records the member
///   lacks, and the member may even hold a divergent tail of a later epoch than the
///   committed one (`clean-leader-election` seed 10662: broker-0, dropped when broker-1 was
///   elected with ISR [broker-1] and `min.insync.replicas = 1`, held an uncommitted record of
///   epoch 1 at the offset where broker-1 then committed one of epoch 0; the recovery
///   preferred broker-0's later epoch and broker-1 truncated a committed record).
///
/// The ELR empties when a leader changes the ISR (`isr-change`, so it is leading) to
/// `min_isr` members or more, and on an unclean election (the operator chose availability
/// over the records). Members a leader drops for lagging never enter: they miss committed
/// records. A member leaves when it joins the ISR again.
///
/// The controller applies it to what it writes and stores the result in the state znode
/// (`last_known_elr`, `provisional_elr`); [`Event::PartitionStateChanged`] carries the
/// members, so the simulator's nemesis weighs the same candidates ([`recovery_candidates`]).
pub fn update_last_known_elr(
    elr: &mut LastKnownElr,
    reason: &str,
    old_isr: &[BrokerId],
    new_isr: &[BrokerId],
    min_isr: usize,
    leader_epoch: LeaderEpoch,
) {
    let dropped: Vec<BrokerId> = old_isr
        .iter()
        .copied()
        .filter(|m| !new_isr.contains(m))
        .collect();
    match reason {
        "unclean-election" => elr.clear(),
        "last-isr-recovery" => {
            for d in dropped {
                elr.members.insert(d);
                elr.provisional.entry(d).or_insert(leader_epoch);
            }
        }
        "leader-election" | "broker-failed" | "offline" => {
            let below_min_isr = new_isr.len() < min_isr;
            elr.members.extend(dropped);
            if !below_min_isr {
                // The leader of `leader_epoch` may commit without any of them.
                for m in &elr.members {
                    elr.provisional.entry(*m).or_insert(leader_epoch);
                }
            }
        }
        "isr-change" if new_isr.len() >= min_isr => elr.clear(),
        _ => {}
    }
    elr.members.retain(|m| !new_isr.contains(m));
    elr.provisional.retain(|m, _| !new_isr.contains(m));
}

/// KIP-966's last-known ELR as this controller keeps it (see [`update_last_known_elr`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LastKnownElr {
    /// Every replica outside the ISR that a recovery among the last ISR still weighs.
    pub members: BTreeSet<BrokerId>,
    /// The members that stay candidates only while no leader of the given epoch (or a later
    /// one) has taken leadership: they were dropped, or kept, when a leader was elected that
    /// could commit without them. A subset of `members`.
    pub provisional: BTreeMap<BrokerId, LeaderEpoch>,
}

impl LastKnownElr {
    fn clear(&mut self) {
        self.members.clear();
        self.provisional.clear();
    }

    /// The members that are still candidates when some replica's log shows that a leader of
    /// `evidenced` (and so of every earlier epoch) took leadership: the firm members, and
    /// the provisional ones dropped at a later epoch.
    pub fn candidates(&self, evidenced: Option<LeaderEpoch>) -> BTreeSet<BrokerId> {
        self.members
            .iter()
            .copied()
            .filter(|m| match (self.provisional.get(m), evidenced) {
                (Some(dropped_at), Some(led)) => *dropped_at > led,
                _ => true,
            })
            .collect()
    }
}

/// The replicas a recovery among the last ISR (KIP-966) weighs, and therefore the replicas
/// that may hold the last copy of a partition's committed records: the last ISR, in its order,
/// then the last-known ELR members not in it (ascending broker id). The controller elects among
/// them; the nemesis's `spare_last_replica` spares the last of them that still holds data.
pub fn recovery_candidates(isr: &[BrokerId], elr: &BTreeSet<BrokerId>) -> Vec<BrokerId> {
    isr.iter()
        .chain(elr.iter().filter(|m| !isr.contains(m)))
        .copied()
        .collect()
}
