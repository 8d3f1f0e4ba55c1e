//! Requests waiting in purgatory (Kafka's `DelayedOperationPurgatory`, `DelayedProduce.scala`,
//! `DelayedFetch.scala`): `acks=all` produces wait until the high watermark passes their
//! batch (or time out, or the partition's leadership goes), a multi-partition produce request
//! is answered once when its last partition is done, and fetches park until enough bytes are
//! readable (`fetch.min.bytes`) or `fetch.max.wait.ms` elapses.
//!
//! Both waiting lists are indexed by the partition they wait on ([`Purgatory`], Kafka's
//! watcher list per key), so a change to one partition looks only at the requests waiting on
//! it; those complete in id order (arrival order).

use super::partition::Role;
use super::{Broker, BrokerTimer};
use crate::effects::Effects;
use crate::event::Event;
use crate::log::PartitionLog;
use crate::protocol::*;
use crate::types::*;
use std::collections::{BTreeMap, BTreeSet};

/// Delayed operations by id, indexed by the partition each waits on (Kafka's
/// `DelayedOperationPurgatory` keeps a watcher list per key for the same reason): completing
/// the operations of one partition costs what waits on it, not what waits on the whole broker.
#[derive(Debug, Clone)]
pub(super) struct Purgatory<T> {
    /// Each operation with the partitions it watches (one for a produce, every partition of
    /// the request for a fetch).
    ops: BTreeMap<u64, (Vec<TopicPartition>, T)>,
    by_partition: BTreeMap<TopicPartition, BTreeSet<u64>>,
}

impl<T> Default for Purgatory<T> {
    fn default() -> Self {
        Purgatory {
            ops: BTreeMap::new(),
            by_partition: BTreeMap::new(),
        }
    }
}

impl<T> Purgatory<T> {
    /// Parks `op` under `id`, watching `tp`. Panics if `id` is already parked.
    pub(super) fn insert(&mut self, id: u64, tp: TopicPartition, op: T) {
        self.insert_watching(id, vec![tp], op);
    }

    /// Parks `op` under `id`, watching every partition of `tps` (Kafka's
    /// `tryCompleteElseWatch` with one key per partition of a fetch). Panics if `id` is
    /// already parked.
    pub(super) fn insert_watching(&mut self, id: u64, tps: Vec<TopicPartition>, op: T) {
        for tp in &tps {
            self.by_partition.entry(tp.clone()).or_default().insert(id);
        }
        let prev = self.ops.insert(id, (tps, op));
        assert!(prev.is_none(), "delayed operation {id} parked twice");
    }

    /// Takes the operation `id` out, if it is still parked.
    pub(super) fn remove(&mut self, id: u64) -> Option<T> {
        let (tps, op) = self.ops.remove(&id)?;
        for tp in &tps {
            // A partition listed twice in one request was unwatched already.
            let Some(watchers) = self.by_partition.get_mut(tp) else {
                continue;
            };
            watchers.remove(&id);
            if watchers.is_empty() {
                self.by_partition.remove(tp);
            }
        }
        Some(op)
    }

    /// The ids of the operations waiting on `tp` for which `pick` holds, in id order.
    pub(super) fn select(&self, tp: &TopicPartition, mut pick: impl FnMut(&T) -> bool) -> Vec<u64> {
        self.by_partition
            .get(tp)
            .into_iter()
            .flatten()
            .filter(|id| pick(&self.ops[id].1))
            .copied()
            .collect()
    }

    /// Every parked id, in order.
    #[cfg(test)]
    pub(super) fn ids(&self) -> Vec<u64> {
        self.ops.keys().copied().collect()
    }
}

#[derive(Debug, Clone)]
pub(super) struct PendingProduce {
    /// The request (in `produce_requests`) this partition's answer belongs to.
    pub(super) req: u64,
    pub(super) tp: TopicPartition,
    pub(super) leader_epoch: LeaderEpoch,
    pub(super) base_offset: Offset,
    pub(super) last_offset: Offset,
    /// A transaction marker's append (`txn_markers.rs`): it waits like an `acks=all` batch
    /// but is no producer's record, so no `produce-acked` event is emitted for it (the
    /// checkers of produced records would take it for one; its event is
    /// `txn-marker-written`).
    pub(super) is_marker: bool,
}

/// A produce request whose partitions are not all answered yet (Kafka's DelayedProduce
/// answers a request once, when every partition is done).
#[derive(Debug, Clone)]
pub(super) struct ProduceRequestState {
    pub(super) from: NodeId,
    pub(super) corr: CorrelationId,
    /// Partitions still to answer.
    pub(super) waiting: usize,
    /// Answers so far, each with its position in the request.
    pub(super) responses: Vec<(usize, PartitionProduceResponse)>,
    /// What to do with the answers once all are in.
    pub(super) kind: ProduceRequestKind,
}

/// Who waits for a produce request's answers: a client (a ProduceResponse), or one marker
/// of a WriteTxnMarkers request (`txn_markers.rs`), whose appends wait exactly as an
/// `acks=all` produce does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ProduceRequestKind {
    Produce,
    /// Marker `index` of the WriteTxnMarkers request `parent`.
    TxnMarker {
        parent: u64,
        index: usize,
    },
}

#[derive(Debug, Clone)]
pub(super) struct PendingFetch {
    pub(super) from: NodeId,
    pub(super) msg: Message,
}

impl Broker {
    /// Records one partition's answer; sends the response when it was the last one.
    pub(super) fn produce_partition_done(
        &mut self,
        req: u64,
        resp: PartitionProduceResponse,
        out: &mut Effects<BrokerTimer>,
    ) {
        let Some(state) = self.produce_requests.get_mut(&req) else {
            return;
        };
        let pos = state.responses.len();
        state.responses.push((pos, resp));
        state.waiting -= 1;
        if state.waiting == 0 {
            self.produce_partition_answered(req, out);
        }
    }

    pub(super) fn produce_partition_answered(&mut self, req: u64, out: &mut Effects<BrokerTimer>) {
        let state = self.produce_requests.remove(&req).expect("present");
        debug_assert_eq!(state.waiting, 0);
        if let ProduceRequestKind::TxnMarker { parent, index } = state.kind {
            let responses = state.responses.into_iter().map(|(_, r)| r).collect();
            self.txn_marker_answered(parent, index, responses, out);
            return;
        }
        out.send(
            state.from,
            Message::ProduceResponse {
                corr: state.corr,
                partitions: state.responses.into_iter().map(|(_, r)| r).collect(),
            },
        );
    }

    pub(super) fn complete_produces(
        &mut self,
        tp: &TopicPartition,
        out: &mut Effects<BrokerTimer>,
    ) {
        let Some(p) = self.partitions.get(tp) else {
            return;
        };
        let hw = p.high_watermark;
        let isr_len = match &p.role {
            Role::Leader(l) => l.isr.len() as i32,
            _ => return,
        };
        let min_isr = self.min_isr(&tp.topic);
        let done = self.pending_produces.select(tp, |pp| pp.last_offset < hw);
        let mut answers = Vec::new();
        for id in done {
            let pp = self.pending_produces.remove(id).expect("present");
            // Kafka's DelayedProduce: committed, but if the ISR has shrunk below
            // min.insync.replicas the ack says so.
            let error = if isr_len >= min_isr {
                ErrorCode::None
            } else {
                ErrorCode::NotEnoughReplicasAfterAppend
            };
            if !pp.is_marker {
                out.event(Event::ProduceAcked {
                    tp: pp.tp.clone(),
                    broker: self.id,
                    leader_epoch: pp.leader_epoch,
                    base_offset: pp.base_offset,
                    last_offset: pp.last_offset,
                    acks: "all".into(),
                    error,
                });
            }
            answers.push((
                pp.req,
                PartitionProduceResponse {
                    tp: pp.tp,
                    error,
                    base_offset: pp.base_offset,
                    log_start_offset: p.log.log_start_offset(),
                },
            ));
        }
        for (req, answer) in answers {
            self.produce_partition_done(req, answer, out);
        }
    }

    pub(super) fn fail_pending_produces(
        &mut self,
        tp: &TopicPartition,
        error: ErrorCode,
        out: &mut Effects<BrokerTimer>,
    ) {
        for id in self.pending_produces.select(tp, |_| true) {
            let pp = self.pending_produces.remove(id).expect("present");
            let answer = PartitionProduceResponse {
                tp: pp.tp,
                error,
                base_offset: Offset(-1),
                log_start_offset: Offset(-1),
            };
            self.produce_partition_done(pp.req, answer, out);
        }
    }

    /// An `acks=all` produce was not committed within its request's timeout.
    pub(super) fn on_produce_timeout(&mut self, id: u64, out: &mut Effects<BrokerTimer>) {
        if let Some(pp) = self.pending_produces.remove(id) {
            let answer = PartitionProduceResponse {
                tp: pp.tp,
                error: ErrorCode::RequestTimedOut,
                base_offset: Offset(-1),
                log_start_offset: Offset(-1),
            };
            self.produce_partition_done(pp.req, answer, out);
        }
    }

    /// Answer parked fetches watching `tp` that can complete now (Kafka's
    /// `DelayedFetch.tryComplete`): the bytes readable over all their partitions (new records
    /// for followers, a higher HW for consumers) reach `min_bytes`, or one of their
    /// partitions is no longer led here or its leader epoch moved (Kafka's cases A and H).
    pub(super) fn complete_delayed_fetches(
        &mut self,
        now: Instant,
        tp: &TopicPartition,
        out: &mut Effects<BrokerTimer>,
    ) {
        let partitions = &self.partitions;
        let ready = self
            .pending_fetches
            .select(tp, |pf| delayed_fetch_ready(partitions, &pf.msg, tp));
        for id in ready {
            // Answering one fetch can advance the HW and complete others from a nested call
            // (a follower's fetch moves the HW, which completes consumers' long polls): those
            // are gone already. Kafka's purgatory completes each delayed operation once
            // (DelayedOperation.forceComplete) for the same reason.
            let Some(pf) = self.pending_fetches.remove(id) else {
                continue;
            };
            self.on_fetch(now, pf.from, pf.msg, false, out);
        }
    }

    /// A parked fetch's `max_wait_ms` elapsed: answer it with what there is.
    pub(super) fn on_fetch_wait_expired(
        &mut self,
        now: Instant,
        id: u64,
        out: &mut Effects<BrokerTimer>,
    ) {
        if let Some(pf) = self.pending_fetches.remove(id) {
            self.on_fetch(now, pf.from, pf.msg, false, out);
        }
    }
}

/// Whether a parked fetch can be answered now (Kafka's `DelayedFetch.tryComplete`).
/// `changed` is the partition whose change is being checked: looked at first, so that a
/// fetch of many partitions is usually decided by it alone.
fn delayed_fetch_ready(
    partitions: &crate::touched::TouchedMap<TopicPartition, super::partition::Partition>,
    msg: &Message,
    changed: &TopicPartition,
) -> bool {
    let Message::Fetch {
        replica_id,
        min_bytes,
        isolation_level,
        partitions: wanted,
        ..
    } = msg
    else {
        return false;
    };
    // `None`: the fetch completes now (Kafka's cases A, D, H: the partition is gone, led
    // elsewhere, or its leader epoch moved); else the bytes readable there now.
    let readable = |fp: &FetchPartition| -> Option<usize> {
        let p = partitions.get(&fp.tp)?;
        let Role::Leader(l) = &p.role else {
            return None;
        };
        if fp.current_leader_epoch != LeaderEpoch::UNKNOWN
            && fp.current_leader_epoch != l.leader_epoch
        {
            return None;
        }
        let limit = if replica_id.is_some() {
            p.log.log_end_offset()
        } else if *isolation_level == IsolationLevel::ReadCommitted {
            p.last_stable_offset_now()
        } else {
            p.high_watermark
        };
        Some(if fp.fetch_offset >= limit {
            0
        } else if *min_bytes <= 1 {
            1
        } else {
            fetch_ready_bytes(&p.log, fp.fetch_offset, limit, fp.partition_max_bytes)
        })
    };
    let enough = (*min_bytes as usize).max(1);
    if let Some(fp) = wanted.iter().find(|fp| fp.tp == *changed) {
        match readable(fp) {
            None => return true,
            Some(n) if n >= enough => return true,
            Some(_) => {}
        }
    }
    let mut accumulated = 0usize;
    for fp in wanted {
        match readable(fp) {
            None => return true,
            Some(n) => accumulated += n,
        }
        if accumulated >= enough {
            return true;
        }
    }
    false
}

/// How many bytes a fetch from `from` below `limit` would return now (whole batches, at most
/// `max_bytes` after the first): what a parked fetch's `fetch.min.bytes` is compared with.
fn fetch_ready_bytes(log: &PartitionLog, from: Offset, limit: Offset, max_bytes: u32) -> usize {
    log.read(from, limit, max_bytes)
        .map(|b| b.iter().map(Vec::len).sum())
        .unwrap_or(0)
}
