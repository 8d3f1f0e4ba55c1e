//! What the transaction checks share: the history's transactions (Jepsen `txn` operations,
//! [`OpValue::Txn`]) with their outcome, the records read_committed readers returned, who
//! wrote each value, and the fate the partitions' transaction markers gave each record.
//!
//! A transaction is one history operation: invoke at `beginTransaction`, completion `ok`
//! (committed), `fail` (aborted) or `info` (unknown; also a transaction the run never
//! completed). Its micro-operations are in the completion (`send` with the offset its produce
//! was acknowledged at, `poll` for a processor's input).

use super::CheckInput;
use crate::history::{pairs, EventRecord, HistoryEntry};
use ksim_model::event::{CommitOffset, Event, OpType, OpValue, TxnMop};
use ksim_model::protocol::IsolationLevel;
use ksim_model::types::{BrokerId, NodeId, Offset, ProducerEpoch, ProducerId, TopicPartition};
use std::collections::BTreeMap;

/// One transaction of the history.
#[derive(Debug, Clone)]
pub(crate) struct Txn<'a> {
    pub invoke: &'a HistoryEntry,
    pub completion: Option<&'a HistoryEntry>,
    /// `Ok`, `Fail` or `Info` (also for a transaction never completed).
    pub outcome: OpType,
    pub transactional_id: &'a str,
    pub producer_id: Option<ProducerId>,
    pub producer_epoch: Option<ProducerEpoch>,
    /// The `send` micro-operations: (partition, value, acknowledged offset).
    pub sends: Vec<(&'a TopicPartition, u64, Option<Offset>)>,
    /// The records its `poll` micro-operations returned: (partition, offset, value).
    pub polls: Vec<(&'a TopicPartition, Offset, u64)>,
    /// A processor's group and the input positions it committed (`sendOffsetsToTransaction`).
    pub group: Option<&'a str>,
    pub offsets: &'a [CommitOffset],
}

impl Txn<'_> {
    /// The process that ran it.
    pub fn process(&self) -> NodeId {
        self.invoke.process
    }

    /// When it completed (the end of the run for one never completed: `u64::MAX`).
    pub fn end_ms(&self) -> u64 {
        self.completion.map_or(u64::MAX, |c| c.time_ms)
    }

    /// `producer-0's transaction tx-0 (producer id 7, epoch 2, t=100..180 ms, committed)`.
    pub fn describe(&self) -> String {
        let ids = match (self.producer_id, self.producer_epoch) {
            (Some(p), Some(e)) => format!(", producer id {}, epoch {}", p.0, e.0),
            _ => String::new(),
        };
        let end = match self.completion {
            Some(c) => format!("{} ms", c.time_ms),
            None => "end".to_string(),
        };
        let outcome = match (self.outcome, self.completion) {
            (OpType::Ok, _) => "committed",
            (OpType::Fail, _) => "aborted",
            (_, Some(_)) => "outcome unknown",
            (_, None) => "never completed",
        };
        format!(
            "{}'s transaction {} ({}{ids}, t={}..{end}, {outcome})",
            self.process(),
            self.invoke.op.op_id,
            self.transactional_id,
            self.invoke.time_ms
        )
    }

    /// The transaction as data.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "process": self.process().to_string(),
            "op_id": self.invoke.op.op_id,
            "transactional_id": self.transactional_id,
            "producer_id": self.producer_id.map(|p| p.0),
            "producer_epoch": self.producer_epoch.map(|e| e.0),
            "outcome": format!("{:?}", self.outcome).to_lowercase(),
            "invoke_ms": self.invoke.time_ms,
            "end_ms": self.completion.map(|c| c.time_ms),
        })
    }
}

/// Every transaction of the history, in invoke order.
pub(crate) fn txns(history: &[HistoryEntry]) -> Vec<Txn<'_>> {
    // Most histories have none: do not pair every operation to find that out.
    if !history
        .iter()
        .any(|e| matches!(e.op.value, OpValue::Txn { .. }))
    {
        return Vec::new();
    }
    pairs(history)
        .into_iter()
        .filter_map(|pair| {
            let entry = pair.completion.unwrap_or(pair.invoke);
            let OpValue::Txn {
                transactional_id,
                producer_id,
                producer_epoch,
                mops,
                group,
                offsets,
            } = &entry.op.value
            else {
                return None;
            };
            let mut sends = Vec::new();
            let mut polls = Vec::new();
            for m in mops {
                match m {
                    TxnMop::Send {
                        tp, value, offset, ..
                    } => sends.push((tp, *value, *offset)),
                    TxnMop::Poll { records } => {
                        polls.extend(records.iter().map(|r| (&r.tp, r.offset, r.value)))
                    }
                }
            }
            Some(Txn {
                invoke: pair.invoke,
                completion: pair.completion,
                outcome: pair.outcome(),
                transactional_id,
                producer_id: *producer_id,
                producer_epoch: *producer_epoch,
                sends,
                polls,
                group: group.as_deref(),
                offsets,
            })
        })
        .collect()
}

/// The skip reason of the checks that judge transactions: `Some` when the history holds no
/// transaction (`what` completes the sentence).
pub(crate) fn without_txns(input: &CheckInput, what: &str) -> Option<String> {
    let any = input
        .history
        .iter()
        .any(|e| matches!(e.op.value, OpValue::Txn { .. }));
    (!any).then(|| {
        format!(
            "the run has no transactional producer or processor (no `txn` operation), so {what}"
        )
    })
}

/// The isolation level `process` read with. With a scenario, a consumer's is its
/// `isolation.level`, and so is a processor's (its consumer half's: read_committed by default
/// with a `transactional.id`, SCENARIOS.md; its reads are the `poll` micro-operations of its
/// transactions, or its plain polls without one). Every process in a unit test (no scenario)
/// counts as read_committed.
pub(crate) fn isolation(input: &CheckInput, process: NodeId) -> IsolationLevel {
    match (input.scenario, process) {
        (Some(s), NodeId::Consumer(n)) => {
            if let Some((_, spec)) = crate::workload::consumer::instances(s)
                .into_iter()
                .find(|(i, _)| *i == n)
            {
                return spec.config.isolation_level;
            }
        }
        (Some(s), NodeId::Processor(n)) => {
            if let Some((_, spec)) = crate::workload::processor::instances(s)
                .into_iter()
                .find(|(i, _)| *i == n)
            {
                return spec.consumer_config.isolation_level;
            }
        }
        _ => {}
    }
    IsolationLevel::ReadCommitted
}

/// The skip reason of the checks that judge what read_committed readers saw: `Some` when the
/// scenario's consumers and processors all read_uncommitted.
pub(crate) fn without_read_committed(input: &CheckInput, what: &str) -> Option<String> {
    let scenario = input.scenario?;
    let processors = crate::workload::processor::instances(scenario)
        .iter()
        .any(|(_, p)| p.consumer_config.isolation_level == IsolationLevel::ReadCommitted);
    let committed = crate::workload::consumer::instances(scenario)
        .iter()
        .any(|(_, c)| c.config.isolation_level == IsolationLevel::ReadCommitted);
    (!processors && !committed).then(|| {
        format!("no consumer or processor reads with `isolation.level = read_committed`, so {what}")
    })
}

/// One record a client read: who, when, which history entry, and whether from a consumer's
/// `poll` or a transaction's `poll` micro-operation.
#[derive(Debug, Clone)]
pub(crate) struct Read<'a> {
    pub entry: &'a HistoryEntry,
    pub tp: &'a TopicPartition,
    pub offset: Offset,
    pub value: u64,
}

impl Read<'_> {
    /// `consumer-1 read value 5 at events-0 offset 3 at t=120 ms`.
    pub fn describe(&self) -> String {
        format!(
            "{} read value {} at {} offset {} at t={} ms",
            self.entry.process, self.value, self.tp, self.offset, self.entry.time_ms
        )
    }

    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "process": self.entry.process.to_string(),
            "tp": self.tp.to_string(),
            "offset": self.offset.0,
            "value": self.value,
            "time_ms": self.entry.time_ms,
            "index": self.entry.index,
        })
    }
}

/// Every record read by a read_committed reader (see [`isolation`]), in history order: the
/// records of `ok` polls, and those of the `poll` micro-operations of every completed
/// transaction (whatever its outcome, the read happened). Also returns how many records
/// read_uncommitted consumers read (exempt from the read_committed promises).
pub(crate) fn read_committed_reads<'a>(input: &CheckInput<'a>) -> (Vec<Read<'a>>, usize) {
    let (committed, uncommitted) = reads_by_isolation(input);
    (committed, uncommitted.len())
}

/// Every record a client read (see [`read_committed_reads`]), split by the reader's isolation
/// level: (read_committed, read_uncommitted), each in history order.
pub(crate) fn reads_by_isolation<'a>(input: &CheckInput<'a>) -> (Vec<Read<'a>>, Vec<Read<'a>>) {
    let mut level: BTreeMap<NodeId, IsolationLevel> = BTreeMap::new();
    let (mut committed, mut uncommitted) = (Vec::new(), Vec::new());
    for read in all_reads(input.history) {
        let p = read.entry.process;
        let l = *level.entry(p).or_insert_with(|| isolation(input, p));
        if l == IsolationLevel::ReadCommitted {
            committed.push(read);
        } else {
            uncommitted.push(read);
        }
    }
    (committed, uncommitted)
}

/// Every record any client read, in history order: the records of `ok` polls and of the `poll`
/// micro-operations of every completed transaction.
pub(crate) fn all_reads(history: &[HistoryEntry]) -> Vec<Read<'_>> {
    let mut out = Vec::new();
    for entry in history {
        if entry.op.op_type == OpType::Invoke {
            continue;
        }
        let records: Vec<&ksim_model::event::PolledRecord> = match &entry.op.value {
            OpValue::Poll { records } if entry.op.op_type == OpType::Ok => records.iter().collect(),
            OpValue::Txn { mops, .. } => mops
                .iter()
                .flat_map(|m| match m {
                    TxnMop::Poll { records } => records.iter().collect(),
                    TxnMop::Send { .. } => Vec::new(),
                })
                .collect(),
            _ => continue,
        };
        out.extend(records.into_iter().map(|r| Read {
            entry,
            tp: &r.tp,
            offset: r.offset,
            value: r.value,
        }));
    }
    out
}

/// Why `read` returned a record of an aborted transaction, if it did (`aborted-read`'s rule):
/// its writer (an index into `txns`) and the ABORT marker that ended the writer's transaction
/// in the partition (`None`: the transaction completed `fail`). A record of a transaction of
/// unknown outcome that no ABORT marker ended is not counted.
pub(crate) fn aborted_writer<'m, 'a>(
    txns: &[Txn<'a>],
    writers: &BTreeMap<u64, (usize, &'a TopicPartition, Option<Offset>)>,
    markers: &'m BTreeMap<(TopicPartition, ProducerId), Vec<Marker<'a>>>,
    read: &Read,
) -> Option<(usize, Option<&'m Marker<'a>>)> {
    let &(i, _, _) = writers.get(&read.value)?;
    let t = &txns[i];
    let abort_marker = t
        .producer_id
        .and_then(|pid| ending_marker(markers, read.tp, pid, read.offset))
        .filter(|m| !m.commit);
    match (t.outcome, abort_marker) {
        (_, Some(m)) => Some((i, Some(m))),
        (OpType::Fail, None) => Some((i, None)),
        _ => None,
    }
}

/// How many of `reads` returned a record of an aborted transaction ([`aborted_writer`]).
pub(crate) fn count_aborted_reads(
    history: &[HistoryEntry],
    events: &[EventRecord],
    reads: &[Read],
) -> usize {
    let txns = txns(history);
    if txns.is_empty() {
        return 0; // No writer: no read of an aborted transaction.
    }
    let writers = writers(&txns);
    let markers = markers(events);
    reads
        .iter()
        .filter(|r| aborted_writer(&txns, &writers, &markers, r).is_some())
        .count()
}

/// Which transaction wrote each value: value → (index in `txns`, partition, acknowledged
/// offset). Values are unique in the workload; a value sent twice keeps its first writer.
pub(crate) fn writers<'a>(
    txns: &[Txn<'a>],
) -> BTreeMap<u64, (usize, &'a TopicPartition, Option<Offset>)> {
    let mut out = BTreeMap::new();
    for (i, t) in txns.iter().enumerate() {
        for (tp, value, offset) in &t.sends {
            out.entry(*value).or_insert((i, *tp, *offset));
        }
    }
    out
}

/// One transaction marker written at a partition ([`Event::TxnMarkerWritten`]).
#[derive(Debug, Clone)]
pub(crate) struct Marker<'a> {
    pub record: &'a EventRecord,
    pub offset: Offset,
    pub commit: bool,
}

/// The markers of each (partition, producer id), in offset order (a marker rewritten after a
/// failover at the same offset is kept once, first logged first). A marker its leader later
/// truncated away (`truncated` at or below its offset on the broker that wrote it: a deposed
/// leader's uncommitted append) is not counted (`transactions-under-faults` seed 160273: a
/// stale leader's ABORT marker at events-2 offset 727 was truncated, and the offset later held
/// a committed transaction's record).
pub(crate) fn markers(
    events: &[EventRecord],
) -> BTreeMap<(TopicPartition, ProducerId), Vec<Marker<'_>>> {
    // (partition, writer) → the markers it wrote that still stand, with their producer id.
    // (log order, producer id, marker)
    type Standing<'a> = Vec<(usize, ProducerId, Marker<'a>)>;
    let mut standing: BTreeMap<(&TopicPartition, BrokerId), Standing<'_>> = BTreeMap::new();
    for (i, r) in events.iter().enumerate() {
        match &r.event {
            Event::TxnMarkerWritten {
                tp,
                broker,
                producer_id,
                result,
                offset,
                ..
            } => standing.entry((tp, *broker)).or_default().push((
                i,
                *producer_id,
                Marker {
                    record: r,
                    offset: *offset,
                    commit: result.eq_ignore_ascii_case("commit"),
                },
            )),
            Event::Truncated {
                tp,
                broker,
                to_offset,
                ..
            } => {
                if let Some(list) = standing.get_mut(&(tp, *broker)) {
                    list.retain(|(_, _, m)| m.offset < *to_offset);
                }
            }
            _ => {}
        }
    }
    let mut all: Vec<(usize, &TopicPartition, ProducerId, Marker<'_>)> = standing
        .into_iter()
        .flat_map(|((tp, _), list)| list.into_iter().map(move |(i, p, m)| (i, tp, p, m)))
        .collect();
    // First logged first, whichever broker wrote it.
    all.sort_by_key(|(i, ..)| *i);
    let mut out: BTreeMap<(TopicPartition, ProducerId), Vec<Marker<'_>>> = BTreeMap::new();
    for (_, tp, pid, m) in all {
        let list = out.entry((tp.clone(), pid)).or_default();
        if list.iter().any(|x| x.offset == m.offset) {
            continue;
        }
        list.push(m);
    }
    for list in out.values_mut() {
        list.sort_by_key(|m| m.offset);
    }
    out
}

/// The marker that ended the producer's transaction holding the record at `offset` of `tp`:
/// the producer's first marker in `tp` above `offset` (KIP-98: a control batch ends every
/// batch of that producer before it since the previous marker). `None`: no marker ended it.
pub(crate) fn ending_marker<'m, 'a>(
    markers: &'m BTreeMap<(TopicPartition, ProducerId), Vec<Marker<'a>>>,
    tp: &TopicPartition,
    producer_id: ProducerId,
    offset: Offset,
) -> Option<&'m Marker<'a>> {
    let list = markers.get(&(tp.clone(), producer_id))?;
    list.get(list.partition_point(|m| m.offset <= offset))
}

/// Builders of transaction events for the unit tests.
#[cfg(test)]
pub(crate) mod testkit {
    use super::*;
    use ksim_model::types::BrokerId;

    /// An event of broker-0 at `time_ms`.
    pub fn at(time_ms: u64, event: Event) -> EventRecord {
        EventRecord {
            time_ms,
            node: NodeId::Broker(BrokerId(0)),
            event,
        }
    }

    /// A COMMIT (`commit`) or ABORT marker of producer `pid` at `offset` of `tp`.
    pub fn marker(tp: &TopicPartition, pid: (i64, i16), commit: bool, offset: i64) -> Event {
        Event::TxnMarkerWritten {
            tp: tp.clone(),
            broker: BrokerId(0),
            producer_id: ProducerId(pid.0),
            producer_epoch: ProducerEpoch(pid.1),
            result: if commit { "commit" } else { "abort" }.into(),
            offset: Offset(offset),
            coordinator_epoch: 0,
        }
    }

    /// The coordinator moved `transactional_id` (producer `pid`) from `from` to `to`.
    pub fn txn_state(tid: &str, pid: (i64, i16), from: &str, to: &str, reason: &str) -> Event {
        Event::TxnStateChanged {
            transactional_id: tid.into(),
            broker: BrokerId(0),
            producer_id: ProducerId(pid.0),
            producer_epoch: ProducerEpoch(pid.1),
            from: from.into(),
            to: to.into(),
            partitions: Vec::new(),
            reason: reason.into(),
            client: None,
            corr: None,
        }
    }

    /// [`txn_state`] caused by `client`'s request.
    pub fn txn_state_for(
        tid: &str,
        pid: (i64, i16),
        from: &str,
        to: &str,
        reason: &str,
        client: &str,
    ) -> Event {
        let mut e = txn_state(tid, pid, from, to, reason);
        if let Event::TxnStateChanged { client: c, .. } = &mut e {
            *c = Some(client.into());
        }
        e
    }

    /// `tp`'s last stable offset moved to `lso` (held by `unstable` = (pid, first offset)).
    pub fn lso(tp: &TopicPartition, lso: i64, unstable: Option<(i64, i64)>) -> Event {
        Event::LastStableOffsetChanged {
            tp: tp.clone(),
            broker: BrokerId(0),
            last_stable_offset: Offset(lso),
            first_unstable: unstable.map(|(p, o)| (ProducerId(p), Offset(o))),
        }
    }
}
