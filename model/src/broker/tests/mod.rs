//! Unit tests of the broker, driven through its [`Actor`] interface, one file per concept;
//! the helpers here build a leader of `t-0` and the requests sent to it.

mod alter_partition;
mod coordinator;
mod fetch;
mod fetch_session;
mod follower;
mod metadata_cache;
mod produce;
mod txn;
mod txn_coordinator;
mod txn_verification;

use super::fetch::kip101_end_offset;
use super::partition::ALTER_PARTITION_RETRY_BACKOFF_MS;
use super::*;
use crate::effects::{CheckedActor, DiskOp, Effect};
use crate::log::checkpoint;
use crate::record::{read_header, RecordBatch};
use std::collections::VecDeque;

fn tp() -> TopicPartition {
    TopicPartition::new("t", 0)
}

fn leader_of_t0(isr: Vec<BrokerId>) -> (Broker, Effects<BrokerTimer>) {
    let mut out = Effects::new();
    let mut b = Broker::recover(
        BrokerId(0),
        BrokerConfig::default(),
        vec![],
        &BTreeMap::new(),
        &mut out,
    );
    let state = PartitionState {
        tp: tp(),
        leader: Some(BrokerId(0)),
        leader_epoch: LeaderEpoch(0),
        isr: isr.clone(),
        replicas: vec![BrokerId(0), BrokerId(1)],
        partition_epoch: ZkVersion(0),
        controller_epoch: ControllerEpoch(1),
    };
    let msg = Message::LeaderAndIsr {
        controller: BrokerId(0),
        controller_epoch: ControllerEpoch(1),
        broker_epoch: BrokerEpoch(-1),
        partitions: vec![state],
    };
    b.checked_message(Instant(0), NodeId::Broker(BrokerId(1)), msg, &mut out);
    (b, out)
}

fn idempotent_batch(seq: i32) -> Vec<u8> {
    let mut rb = RecordBatch::new(vec![(None, Some(vec![1, 2, 3]))], 0);
    rb.producer_id = ProducerId(7);
    rb.producer_epoch = ProducerEpoch(0);
    rb.base_sequence = Sequence(seq);
    rb.encode()
}

fn produce(corr: u64, batch: Vec<u8>) -> Message {
    Message::Produce {
        corr: CorrelationId(corr),
        acks: Acks::All,
        timeout_ms: 30_000,
        transactional_id: None,
        partitions: vec![(tp(), batch)],
    }
}

fn produce_responses(out: &Effects<BrokerTimer>) -> Vec<(CorrelationId, ErrorCode, Offset)> {
    out.list
        .iter()
        .flat_map(|e| match e {
            Effect::Send {
                msg: Message::ProduceResponse { corr, partitions },
                ..
            } => partitions
                .iter()
                .map(|r| (*corr, r.error, r.base_offset))
                .collect::<Vec<_>>(),
            _ => vec![],
        })
        .collect()
}

fn follower_fetch(fetch_offset: i64) -> Message {
    Message::Fetch {
        corr: CorrelationId(99),
        replica_id: Some(BrokerId(1)),
        broker_epoch: BrokerEpoch(-1),
        max_bytes: 10 << 20,
        min_bytes: 1,
        max_wait_ms: 0,
        isolation_level: IsolationLevel::ReadUncommitted,
        partitions: vec![FetchPartition {
            tp: tp(),
            fetch_offset: Offset(fetch_offset),
            last_fetched_epoch: if fetch_offset > 0 {
                LeaderEpoch(0)
            } else {
                LeaderEpoch::UNKNOWN
            },
            current_leader_epoch: LeaderEpoch(0),
            partition_max_bytes: 1 << 20,
        }],
    }
}
