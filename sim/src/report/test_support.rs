//! Shared fixtures of the report's unit tests: a small failover event log and the history
//! of one acknowledged send.

use super::*;
use ksim_model::event::ClientOp;
use ksim_model::types::LeaderEpoch;

pub(super) fn tp1() -> TopicPartition {
    TopicPartition::new("events", 1)
}

pub(super) fn b(n: i32) -> BrokerId {
    BrokerId(n)
}

pub(super) fn rec(time_ms: u64, node: NodeId, event: Event) -> EventRecord {
    EventRecord {
        time_ms,
        node,
        event,
    }
}

pub(super) fn broker(n: i32) -> NodeId {
    NodeId::Broker(b(n))
}

pub(super) fn fault(time_ms: u64, action: &str, nodes: &[&str]) -> EventRecord {
    rec(
        time_ms,
        NodeId::Zk,
        Event::Fault {
            action: action.into(),
            nodes: nodes.iter().map(|s| s.to_string()).collect(),
            source: "random".into(),
        },
    )
}

/// broker-2 leads epoch 3 with ISR [2], appends offset 17, acks it with acks=1, is killed;
/// broker-0 becomes leader in epoch 4 with LEO 15; broker-2 restarts and truncates 18 → 15.
pub(super) fn failover_events() -> Vec<EventRecord> {
    let tp = tp1();
    vec![
        rec(
            5000,
            broker(2),
            Event::BecameLeader {
                tp: tp.clone(),
                broker: b(2),
                leader_epoch: LeaderEpoch(3),
                isr: vec![b(2)],
                log_end_offset: Offset(15),
                high_watermark: Offset(15),
            },
        ),
        rec(
            5230,
            broker(2),
            Event::ProduceAppended {
                tp: tp.clone(),
                broker: b(2),
                leader_epoch: LeaderEpoch(3),
                base_offset: Offset(15),
                last_offset: Offset(17),
                producer_id: ksim_model::types::ProducerId(-1),
                base_sequence: ksim_model::types::Sequence(-1),
                isr: vec![b(2)],
            },
        ),
        rec(
            5231,
            broker(2),
            Event::HighWatermarkChanged {
                tp: tp.clone(),
                broker: b(2),
                leader_epoch: LeaderEpoch(3),
                high_watermark: Offset(16),
            },
        ),
        fault(5400, "kill", &["broker-2"]),
        rec(
            5500,
            broker(0),
            Event::PartitionStateChanged {
                tp: tp.clone(),
                leader: Some(b(0)),
                leader_epoch: LeaderEpoch(4),
                isr: vec![b(0)],
                controller_epoch: ksim_model::types::ControllerEpoch(1),
                partition_epoch: ksim_model::types::ZkVersion(7),
                reason: "leader-election".into(),
                last_known_elr: vec![],
            },
        ),
        rec(
            5512,
            broker(0),
            Event::BecameLeader {
                tp: tp.clone(),
                broker: b(0),
                leader_epoch: LeaderEpoch(4),
                isr: vec![b(0)],
                log_end_offset: Offset(15),
                high_watermark: Offset(15),
            },
        ),
        fault(6000, "restart", &["broker-2"]),
        rec(6001, broker(2), Event::BrokerStarted { broker: b(2) }),
        rec(
            6100,
            broker(2),
            Event::Truncated {
                tp: tp.clone(),
                broker: b(2),
                from_offset: Offset(18),
                to_offset: Offset(15),
                reason: "diverging-epoch".into(),
            },
        ),
        fault(7000, "partition", &["zk,broker-0", "broker-1,broker-2"]),
    ]
}

pub(super) fn acked_history(
    tp: &TopicPartition,
    value: u64,
    offset: i64,
    t: u64,
) -> Vec<HistoryEntry> {
    let send = |op_type, offset| ClientOp {
        op_type,
        op_id: 1,
        value: OpValue::Send {
            tp: tp.clone(),
            key: None,
            value,
            offset,
        },
        error: None,
    };
    vec![
        HistoryEntry {
            index: 0,
            time_ms: t - 5,
            process: NodeId::Producer(0),
            op: send(OpType::Invoke, None),
        },
        HistoryEntry {
            index: 1,
            time_ms: t,
            process: NodeId::Producer(0),
            op: send(OpType::Ok, Some(Offset(offset))),
        },
    ]
}
