//! WriteTxnMarkers on a partition leader (KIP-98; Kafka's `KafkaApis.handleWriteTxnMarkersRequest`
//! and `ReplicaManager.appendRecords` with `requiredAcks = -1` and origin `COORDINATOR`).
//!
//! The transaction coordinator ends a transaction by sending, to the leader of each partition
//! in it, one marker per producer: a control batch ([`RecordBatch::end_txn_marker`]) whose
//! single record says COMMIT or ABORT and carries the coordinator epoch. The leader judges
//! the marker against the partition's producer state
//! ([`crate::log::producer_state::TxnStateManager::check_marker`]: a lower producer epoch is
//! INVALID_PRODUCER_EPOCH unless `sim.txn.producer-fencing = false`, a lower coordinator epoch
//! TRANSACTION_COORDINATOR_FENCED), appends it through the same leader append as a produce
//! (`min.insync.replicas` checked, NOT_ENOUGH_REPLICAS otherwise), and answers once every
//! marker of the request is committed (the high watermark past it), exactly as an `acks=all`
//! produce waits in the purgatory. The append ends the producer's transaction in the
//! partition, which may move the last stable offset; an ABORT adds an entry to the
//! aborted-transaction index.
//!
//! A marker for a producer with no open transaction in the partition is still appended (Kafka
//! does: the coordinator may resend markers after a failover).
//!
//! A committed marker on a `__consumer_offsets` partition also completes the producer's
//! pending transactional offset commits there (`Coordinators::on_txn_marker` in `coordinators.rs`, Kafka's
//! `GroupCoordinator.onTransactionCompleted`).

use super::partition::Role;
use super::purgatory::{PendingProduce, ProduceRequestKind, ProduceRequestState};
use super::{Broker, BrokerTimer};
use crate::effects::Effects;
use crate::event::Event;
use crate::group_coordinator::CONSUMER_OFFSETS_TOPIC;
use crate::protocol::*;
use crate::record::{read_header, RecordBatch};
use crate::types::*;

/// How long a marker append waits for the high watermark before it is answered
/// REQUEST_TIMED_OUT, in milliseconds: Kafka passes the broker's `request.timeout.ms`
/// (default 30000) as the append timeout of WriteTxnMarkers.
pub(super) const TXN_MARKER_APPEND_TIMEOUT_MS: u64 = 30_000;

/// A WriteTxnMarkers request whose markers are not all answered yet.
#[derive(Debug, Clone)]
pub(super) struct TxnMarkersRequestState {
    pub(super) from: NodeId,
    pub(super) corr: CorrelationId,
    /// The request's markers (their partitions in request order).
    pub(super) markers: Vec<WritableTxnMarker>,
    /// Each marker's answer once all its partitions are done.
    pub(super) results: Vec<Option<WritableTxnMarkerResult>>,
}

impl Broker {
    /// A WriteTxnMarkers request: each marker's control batch is appended to each of its
    /// partitions on its own; each marker waits, as an `acks=all` produce request of its
    /// partitions, until they are all committed or failed, and the response goes out once
    /// every marker is answered.
    pub(super) fn on_write_txn_markers(
        &mut self,
        now: Instant,
        from: NodeId,
        corr: CorrelationId,
        markers: Vec<WritableTxnMarker>,
        out: &mut Effects<BrokerTimer>,
    ) {
        let parent = self.fresh_id();
        self.txn_marker_requests.insert(
            parent,
            TxnMarkersRequestState {
                from,
                corr,
                markers: markers.clone(),
                results: vec![None; markers.len()],
            },
        );
        for (index, marker) in markers.into_iter().enumerate() {
            let req = self.fresh_id();
            self.produce_requests.insert(
                req,
                ProduceRequestState {
                    from,
                    corr,
                    waiting: marker.partitions.len(),
                    responses: Vec::with_capacity(marker.partitions.len()),
                    kind: ProduceRequestKind::TxnMarker { parent, index },
                },
            );
            for tp in marker.partitions.clone() {
                if let Some(error) = self.append_txn_marker(now, req, &marker, &tp, out) {
                    self.produce_partition_done(
                        req,
                        PartitionProduceResponse {
                            tp,
                            error,
                            base_offset: Offset(-1),
                            log_start_offset: Offset(-1),
                        },
                        out,
                    );
                }
            }
            if self
                .produce_requests
                .get(&req)
                .is_some_and(|r| r.waiting == 0)
            {
                self.produce_partition_answered(req, out);
            }
        }
    }

    /// Appends `marker`'s control batch to `tp` and parks the wait for its commit under
    /// `req`; returns the error to answer at once instead.
    fn append_txn_marker(
        &mut self,
        now: Instant,
        req: u64,
        marker: &WritableTxnMarker,
        tp: &TopicPartition,
        out: &mut Effects<BrokerTimer>,
    ) -> Option<ErrorCode> {
        let me = self.id;
        if !self.partitions.contains_key(tp) && !self.metadata.contains_key(tp) {
            return Some(ErrorCode::UnknownTopicOrPartition);
        }
        let producer_fencing = self.config.txn_producer_fencing;
        let Some(p) = self.partitions.get(tp) else {
            return Some(ErrorCode::NotLeaderOrFollower);
        };
        if !matches!(p.role, Role::Leader(_)) {
            return Some(ErrorCode::NotLeaderOrFollower);
        }
        if let Err(error) = p.log.txn_state().check_marker(
            marker.producer_id,
            marker.producer_epoch,
            marker.coordinator_epoch,
            producer_fencing,
        ) {
            return Some(error);
        }
        let batch = RecordBatch::end_txn_marker(
            marker.producer_id,
            marker.producer_epoch,
            marker.result,
            marker.coordinator_epoch,
            now.as_ms() as i64,
        )
        .encode();
        let header = read_header(&batch).expect("a batch just encoded");
        let appended = match self.append_to_leader(tp, batch, &header, Acks::All, out) {
            Ok(a) => a,
            Err(error) => return Some(error),
        };
        out.event(Event::TxnMarkerWritten {
            tp: tp.clone(),
            broker: me,
            producer_id: marker.producer_id,
            producer_epoch: marker.producer_epoch,
            result: match marker.result {
                TransactionResult::Commit => "commit".into(),
                TransactionResult::Abort => "abort".into(),
            },
            offset: appended.base_offset,
            coordinator_epoch: marker.coordinator_epoch,
        });
        let id = self.fresh_id();
        self.pending_produces.insert(
            id,
            tp.clone(),
            PendingProduce {
                req,
                tp: tp.clone(),
                leader_epoch: appended.leader_epoch,
                base_offset: appended.base_offset,
                last_offset: appended.last_offset,
                is_marker: true,
            },
        );
        out.timer(
            TXN_MARKER_APPEND_TIMEOUT_MS,
            BrokerTimer::ProduceTimeout { id },
        );
        // A single-member ISR commits at once; read_committed fetches may now read further.
        self.maybe_advance_hw(now, tp, out);
        self.complete_delayed_fetches(now, tp, out);
        None
    }

    /// Every partition of marker `index` of the WriteTxnMarkers request `parent` is done
    /// (`responses` in completion order): record its answer in request order, complete the
    /// pending offset commits of committed `__consumer_offsets` partitions, and send the
    /// response if it was the last marker.
    pub(super) fn txn_marker_answered(
        &mut self,
        parent: u64,
        index: usize,
        mut responses: Vec<PartitionProduceResponse>,
        out: &mut Effects<BrokerTimer>,
    ) {
        let Some(state) = self.txn_marker_requests.get_mut(&parent) else {
            return;
        };
        let marker = &state.markers[index];
        let mut partitions = Vec::with_capacity(marker.partitions.len());
        let mut marker_offsets = Vec::with_capacity(marker.partitions.len());
        for tp in &marker.partitions {
            let i = responses
                .iter()
                .position(|r| &r.tp == tp)
                .expect("one answer per partition of the marker");
            let r = responses.remove(i);
            partitions.push((tp.clone(), r.error));
            marker_offsets.push(r.base_offset);
        }
        let (producer_id, result) = (marker.producer_id, marker.result);
        state.results[index] = Some(WritableTxnMarkerResult {
            producer_id,
            partitions: partitions.clone(),
        });
        for ((tp, error), offset) in partitions.iter().zip(marker_offsets) {
            if *error == ErrorCode::None && tp.topic == CONSUMER_OFFSETS_TOPIC {
                self.coordinators
                    .on_txn_marker(tp, offset, producer_id, result);
            }
        }
        let state = &self.txn_marker_requests[&parent];
        if state.results.iter().all(Option::is_some) {
            let state = self.txn_marker_requests.remove(&parent).expect("present");
            out.send(
                state.from,
                Message::WriteTxnMarkersResponse {
                    corr: state.corr,
                    markers: state.results.into_iter().flatten().collect(),
                },
            );
        }
    }
}
