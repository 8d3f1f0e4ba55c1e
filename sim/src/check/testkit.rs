//! Builders for hand-written histories and event logs in the checkers' unit tests.

use super::*;
use crate::snapshot::ReplicaState;
use ksim_model::event::{ClientOp, Event, PolledRecord};
use ksim_model::types::{BrokerId, LeaderEpoch};

/// Appends Jepsen ops with consecutive indexes; time is 10 ms per entry.
#[derive(Default)]
pub struct HistoryBuilder {
    pub entries: Vec<HistoryEntry>,
    next_op_id: u64,
}

impl HistoryBuilder {
    fn push(&mut self, process: NodeId, op_type: OpType, op_id: u64, value: OpValue) {
        let index = self.entries.len() as u64;
        self.entries.push(HistoryEntry {
            index,
            time_ms: index * 10,
            process,
            op: ClientOp {
                op_type,
                op_id,
                value,
                error: None,
            },
        });
    }

    /// An invoke of a send and its completion (`offset` is only logged on `ok`).
    pub fn send(
        &mut self,
        producer: u32,
        op_type: OpType,
        tp: &TopicPartition,
        value: u64,
        offset: i64,
    ) -> &mut Self {
        let p = NodeId::Producer(producer);
        let id = self.next_op_id;
        self.next_op_id += 1;
        let v = |offset| OpValue::Send {
            tp: tp.clone(),
            key: None,
            value,
            offset,
        };
        self.push(p, OpType::Invoke, id, v(None));
        let done = if op_type == OpType::Ok {
            Some(Offset(offset))
        } else {
            None
        };
        self.push(p, op_type, id, v(done));
        self
    }

    /// An invoke of a send that never completes.
    pub fn send_open(&mut self, producer: u32, tp: &TopicPartition, value: u64) -> &mut Self {
        let id = self.next_op_id;
        self.next_op_id += 1;
        let v = OpValue::Send {
            tp: tp.clone(),
            key: None,
            value,
            offset: None,
        };
        self.push(NodeId::Producer(producer), OpType::Invoke, id, v);
        self
    }

    /// An invoke of a poll and its `ok` completion returning `(offset, value)` records.
    pub fn poll(
        &mut self,
        consumer: u32,
        tp: &TopicPartition,
        records: &[(i64, u64)],
    ) -> &mut Self {
        let c = NodeId::Consumer(consumer);
        let id = self.next_op_id;
        self.next_op_id += 1;
        self.push(
            c,
            OpType::Invoke,
            id,
            OpValue::Poll {
                records: Vec::new(),
            },
        );
        let records = records
            .iter()
            .map(|&(o, v)| PolledRecord {
                tp: tp.clone(),
                offset: Offset(o),
                value: v,
            })
            .collect();
        self.push(c, OpType::Ok, id, OpValue::Poll { records });
        self
    }
}

/// A transaction's `send` micro-operation (`offset` < 0: not acknowledged).
pub fn tsend(tp: &TopicPartition, value: u64, offset: i64) -> TxnMop {
    TxnMop::Send {
        tp: tp.clone(),
        key: None,
        value,
        offset: (offset >= 0).then_some(Offset(offset)),
    }
}

/// A transaction's `poll` micro-operation returning `(offset, value)` records of `tp`.
pub fn tpoll(tp: &TopicPartition, records: &[(i64, u64)]) -> TxnMop {
    TxnMop::Poll {
        records: records
            .iter()
            .map(|&(o, v)| PolledRecord {
                tp: tp.clone(),
                offset: Offset(o),
                value: v,
            })
            .collect(),
    }
}

impl HistoryBuilder {
    /// The invoke of a transaction (`beginTransaction`) by `process`; returns its op id for
    /// [`HistoryBuilder::txn_end`].
    pub fn txn_begin(&mut self, process: NodeId, transactional_id: &str) -> u64 {
        let id = self.next_op_id;
        self.next_op_id += 1;
        let v = OpValue::Txn {
            transactional_id: transactional_id.into(),
            producer_id: None,
            producer_epoch: None,
            mops: Vec::new(),
            group: None,
            offsets: Vec::new(),
        };
        self.push(process, OpType::Invoke, id, v);
        id
    }

    /// The completion of transaction `id` under producer id and epoch `pid`, with its
    /// micro-operations and, for a processor, its group and committed input offsets.
    #[allow(clippy::too_many_arguments)]
    pub fn txn_end(
        &mut self,
        process: NodeId,
        id: u64,
        outcome: OpType,
        transactional_id: &str,
        pid: (i64, i16),
        mops: Vec<TxnMop>,
        group: Option<&str>,
        offsets: &[(TopicPartition, i64)],
    ) -> &mut Self {
        let v = OpValue::Txn {
            transactional_id: transactional_id.into(),
            producer_id: Some(ksim_model::types::ProducerId(pid.0)),
            producer_epoch: Some(ksim_model::types::ProducerEpoch(pid.1)),
            mops,
            group: group.map(str::to_string),
            offsets: offsets
                .iter()
                .map(|(tp, o)| ksim_model::event::CommitOffset {
                    tp: tp.clone(),
                    offset: Offset(*o),
                })
                .collect(),
        };
        self.push(process, outcome, id, v);
        self
    }

    /// A whole transaction of producer `producer` (transactional id `tx-<producer>`,
    /// producer id `pid`): its invoke and its completion.
    pub fn txn(
        &mut self,
        producer: u32,
        outcome: OpType,
        pid: (i64, i16),
        mops: Vec<TxnMop>,
    ) -> &mut Self {
        let p = NodeId::Producer(producer);
        let tid = format!("tx-{producer}");
        let id = self.txn_begin(p, &tid);
        self.txn_end(p, id, outcome, &tid, pid, mops, None, &[])
    }

    /// The application's `seek(tp, offset)` by a consumer: an invoke and its `ok`.
    pub fn seek(&mut self, consumer: u32, tp: &TopicPartition, offset: i64) -> &mut Self {
        let c = NodeId::Consumer(consumer);
        let id = self.next_op_id;
        self.next_op_id += 1;
        let v = OpValue::Seek {
            tp: tp.clone(),
            offset: Offset(offset),
        };
        self.push(c, OpType::Invoke, id, v.clone());
        self.push(c, OpType::Ok, id, v);
        self
    }
}

/// Runs one checker over a history and an event log whose records carry their own times
/// and nodes.
pub fn check_history_events(
    checker: &dyn Checker,
    history: &[HistoryEntry],
    events: &[EventRecord],
) -> Vec<Violation> {
    let logs = BTreeMap::new();
    checker.check(&CheckInput {
        history,
        events,
        final_logs: &logs,
        scenario: None,
        snapshots: &[],
    })
}

/// Runs one checker over a history alone.
pub fn check_history(checker: &dyn Checker, history: &[HistoryEntry]) -> Vec<Violation> {
    let logs = BTreeMap::new();
    checker.check(&CheckInput {
        history,
        events: &[],
        final_logs: &logs,
        scenario: None,
        snapshots: &[],
    })
}

/// Runs one checker over an event log alone; events are 100 ms apart.
pub fn check_events(checker: &dyn Checker, events: &[(NodeId, Event)]) -> Vec<Violation> {
    check_snapshots(checker, events, &[])
}

/// A consumer's position reset by `auto.offset.reset` after OFFSET_OUT_OF_RANGE, as the
/// consumer logs it, at `time_ms`.
pub fn out_of_range_reset(consumer: u32, from: i64, to: i64, time_ms: u64) -> EventRecord {
    EventRecord {
        time_ms,
        node: NodeId::Consumer(consumer),
        event: Event::ConsumerPositionReset {
            tp: tp(0),
            from_offset: Some(Offset(from)),
            to_offset: Offset(to),
            strategy: "earliest".into(),
            reason: "offset-out-of-range".into(),
        },
    }
}

pub fn tp(p: i32) -> TopicPartition {
    TopicPartition::new("events", p)
}

/// Builds a replica snapshot of `events-0` (trigger `test`, taken before any event).
pub struct SnapshotBuilder(ReplicaSnapshot);

fn records(r: &[(i64, u64, i32)]) -> Vec<(Offset, u64, LeaderEpoch)> {
    r.iter()
        .map(|&(o, v, e)| (Offset(o), v, LeaderEpoch(e)))
        .collect()
}

impl SnapshotBuilder {
    pub fn new(time_ms: u64) -> Self {
        SnapshotBuilder(ReplicaSnapshot {
            time_ms,
            event_count: 0,
            tp: tp(0),
            trigger: "test".into(),
            controller_isr: None,
            replicas: Vec::new(),
        })
    }

    pub fn controller_isr(mut self, isr: &[i32]) -> Self {
        self.0.controller_isr = Some(isr.iter().map(|b| BrokerId(*b)).collect());
        self
    }

    fn replica(
        mut self,
        broker: i32,
        running: bool,
        hw: Option<i64>,
        leader: Option<(i32, &[i32])>,
        r: &[(i64, u64, i32)],
    ) -> Self {
        self.0.replicas.push(ReplicaState {
            broker: BrokerId(broker),
            running,
            high_watermark: hw.map(Offset),
            leader_epoch: leader.map(|(e, _)| LeaderEpoch(e)),
            local_isr: leader.map(|(_, isr)| isr.iter().map(|b| BrokerId(*b)).collect()),
            log_start_offset: Offset(0),
            records: std::sync::Arc::new(records(r)),
        });
        self
    }

    /// A running leader in `epoch` with HW `hw` and local ISR `isr`; records are
    /// (offset, value, batch epoch).
    pub fn leader(
        self,
        broker: i32,
        epoch: i32,
        hw: i64,
        isr: &[i32],
        r: &[(i64, u64, i32)],
    ) -> Self {
        self.replica(broker, true, Some(hw), Some((epoch, isr)), r)
    }

    /// A running follower with HW `hw`.
    pub fn follower(self, broker: i32, hw: i64, r: &[(i64, u64, i32)]) -> Self {
        self.replica(broker, true, Some(hw), None, r)
    }

    /// A broker whose process is down; its disk holds `r`.
    pub fn dead(self, broker: i32, r: &[(i64, u64, i32)]) -> Self {
        self.replica(broker, false, None, None, r)
    }

    pub fn build(self) -> ReplicaSnapshot {
        self.0
    }
}

/// Runs one checker over events (100 ms apart) and replica snapshots.
pub fn check_snapshots(
    checker: &dyn Checker,
    events: &[(NodeId, Event)],
    snapshots: &[ReplicaSnapshot],
) -> Vec<Violation> {
    let logs = BTreeMap::new();
    let records: Vec<EventRecord> = events
        .iter()
        .enumerate()
        .map(|(i, (node, event))| EventRecord {
            time_ms: i as u64 * 100,
            node: *node,
            event: event.clone(),
        })
        .collect();
    checker.check(&CheckInput {
        history: &[],
        events: &records,
        final_logs: &logs,
        scenario: None,
        snapshots,
    })
}
