//! Hosting the transaction coordinator (Kafka's `TransactionCoordinator` /
//! `TransactionStateManager` glue and `KafkaApis.handleInitProducerIdRequest`,
//! `handleAddPartitionsToTxnRequest`, `handleAddOffsetsToTxnRequest`, `handleEndTxnRequest`):
//! loading a `__transaction_state` partition on becoming its leader, unloading it on losing it,
//! the transaction APIs, the state writes through the leader's append path (`acks=all`,
//! answered once committed), the markers (WriteTxnMarkers out, their answers in) and the
//! periodic work (marker retries, timed-out transactions).
//!
//! The decisions are in [`crate::transaction_coordinator`]; this file only reads the state for
//! them and carries out what they return.

use super::{Broker, BrokerTimer};
use crate::effects::Effects;
use crate::event::Event;
use crate::protocol::*;
use crate::record::read_header;
use crate::transaction_coordinator::transaction_manager::{self as tm, Decision};
use crate::transaction_coordinator::{
    error_for_append_error, TransactionMetadata, TxnReply, TxnState, TxnWrite,
    TRANSACTION_STATE_TOPIC,
};
use crate::types::*;

impl Broker {
    /// A fresh producer id: unique across brokers and incarnations because the broker epoch is
    /// a unique session id (Kafka allocates blocks through `/latest_producer_id_block`).
    pub(super) fn allocate_producer_id(&mut self) -> ProducerId {
        let (pid, next) = producer_id_after(self.broker_epoch, self.next_producer_id);
        self.next_producer_id = next;
        pid
    }

    /// make_leader hook for `__transaction_state`: replays the partition's log and announces
    /// every transaction found (`txn-state-changed`, reason `loaded`); those in Prepare* get
    /// their markers sent again (TransactionStateManager.scala 540-560).
    pub(super) fn txn_become_leader(
        &mut self,
        now: Instant,
        tp: &TopicPartition,
        out: &mut Effects<BrokerTimer>,
    ) {
        if tp.topic != TRANSACTION_STATE_TOPIC {
            return;
        }
        self.txn_resign(tp, out);
        let p = &self.partitions[tp];
        let batches: Vec<Vec<u8>> = p.log.batches().map(|b| b.bytes.clone()).collect();
        let leader_epoch = p.leader_epoch;
        let txn = &mut self.coordinators.txn;
        let summary =
            txn.runtime
                .on_become_leader(tp.clone(), leader_epoch, &batches, p.high_watermark);
        out.event(Event::CoordinatorLoaded {
            tp: tp.clone(),
            broker: self.id,
            leader_epoch,
            records: summary.records,
            loaded_to: summary.loaded_to,
        });
        let loaded: Vec<TransactionMetadata> = txn
            .runtime
            .latest(tp)
            .expect("loaded")
            .iter()
            .cloned()
            .collect();
        for m in &loaded {
            out.event(txn_event(self.id, TxnState::Dead, m, "loaded", None, None));
        }
        for m in loaded.into_iter().filter(|m| m.state.is_prepare()) {
            self.txn_start_markers(tp, &m, now, out);
        }
        self.txn_send_markers(now, out);
    }

    /// make_follower / StopReplica hook: drops the partition's transactions and their marker
    /// jobs; writes still waiting for their commit are answered NOT_COORDINATOR.
    pub(super) fn txn_resign(&mut self, tp: &TopicPartition, out: &mut Effects<BrokerTimer>) {
        let txn = &mut self.coordinators.txn;
        if !txn.runtime.hosts(tp) {
            return;
        }
        txn.markers.remove_partition(tp);
        txn.complete_retry.retain(|(t, _)| t != tp);
        let waiting = txn.runtime.on_resign(tp);
        out.event(Event::CoordinatorUnloaded {
            tp: tp.clone(),
            broker: self.id,
            pending_writes: waiting.len() as u64,
        });
        for w in waiting {
            if let Some((to, msg)) = w.reply.message(ErrorCode::NotCoordinator) {
                out.send(to, msg);
            }
        }
        assert!(!self.coordinators.txn.runtime.hosts(tp));
    }

    /// maybe_advance_hw hook for `__transaction_state`: the writes the high watermark passes
    /// are committed.
    pub(super) fn txn_high_watermark(
        &mut self,
        now: Instant,
        tp: &TopicPartition,
        high_watermark: Offset,
        out: &mut Effects<BrokerTimer>,
    ) {
        let done = self
            .coordinators
            .txn
            .runtime
            .on_high_watermark(tp, high_watermark);
        for w in done {
            self.txn_write_committed(now, w, out);
        }
    }

    /// A state write is committed: its answer goes out, the transition is announced, and a
    /// Prepare* state starts its markers (a transaction with no partition completes at once).
    fn txn_write_committed(&mut self, now: Instant, w: TxnWrite, out: &mut Effects<BrokerTimer>) {
        if let Some((to, msg)) = w.reply.message(ErrorCode::None) {
            out.send(to, msg);
        }
        let client = w.reply.client().map(|c| c.to_string());
        let corr = w.reply.corr();
        out.event(txn_event(
            self.id,
            w.from,
            &w.metadata,
            w.reason,
            client,
            corr,
        ));
        if w.metadata.state.is_prepare() && self.coordinators.txn.runtime.hosts(&w.txn_tp) {
            self.txn_start_markers(&w.txn_tp, &w.metadata, now, out);
            self.txn_send_markers(now, out);
        }
    }

    /// Starts the markers of Prepare* state `m`, or writes Complete* at once when it has no
    /// partition.
    fn txn_start_markers(
        &mut self,
        tp: &TopicPartition,
        m: &TransactionMetadata,
        now: Instant,
        out: &mut Effects<BrokerTimer>,
    ) {
        match self.coordinators.txn.marker_job(tp, m) {
            Some(job) => self.coordinators.txn.markers.add(job),
            None => self.txn_complete(now, tp, &m.transactional_id, out),
        }
    }

    /// Writes Complete* for `transactional_id`, whose markers are all written, if it is still
    /// in Prepare* with no write pending.
    fn txn_complete(
        &mut self,
        now: Instant,
        tp: &TopicPartition,
        transactional_id: &str,
        out: &mut Effects<BrokerTimer>,
    ) {
        let Ok((Some(m), pending)) = self.coordinators.txn.lookup(transactional_id) else {
            return;
        };
        if !m.state.is_prepare() {
            return;
        }
        if pending {
            // Another write of this transaction is not committed yet (for instance the
            // Prepare* state a new coordinator loaded above the high watermark, committed once
            // the ISR regrows): try again on the next tick, as Kafka's
            // `TransactionMarkerChannelManager` retries the Complete* append. Returning
            // without that left the transaction in Prepare* for good, and every
            // InitProducerId of its producer answered CONCURRENT_TRANSACTIONS
            // (`eos-pipeline-under-faults` seed 8200259: the processor never polled again, and
            // its group stayed in PreparingRebalance).
            self.coordinators
                .txn
                .complete_retry
                .insert((tp.clone(), transactional_id.to_string()));
            return;
        }
        let n = tm::complete(m, now.0);
        let w = TxnWrite {
            txn_tp: tp.clone(),
            from: m.state,
            metadata: n,
            reason: "markers-written",
            reply: TxnReply::None,
        };
        self.txn_write(now, w, out);
    }

    /// Appends a state write to its partition (`acks=all`) and waits for its commit; a refused
    /// append is answered at once with the mapped error (a refused Complete* is retried on the
    /// next tick).
    fn txn_write(&mut self, now: Instant, w: TxnWrite, out: &mut Effects<BrokerTimer>) {
        let tp = w.txn_tp.clone();
        let records = vec![crate::transaction_coordinator::TxnRecord {
            transactional_id: w.metadata.transactional_id.clone(),
            metadata: Some(w.metadata.clone()),
        }];
        let batch = match self
            .coordinators
            .txn
            .runtime
            .batch_for(&tp, &records, now.0)
        {
            Ok(b) => b,
            Err(_) => return self.txn_write_failed(w, ErrorCode::NotCoordinator, out),
        };
        let header = read_header(&batch).expect("the runtime's own batch");
        let appended = match self.append_to_leader(&tp, batch, &header, Acks::All, out) {
            Ok(a) => a,
            Err(error) => return self.txn_write_failed(w, error, out),
        };
        assert_eq!(appended.base_offset, appended.last_offset, "one record");
        let done =
            self.coordinators
                .txn
                .runtime
                .appended(&tp, appended.base_offset, records, w, u64::MAX);
        for w in done {
            self.txn_write_committed(now, w, out);
        }
        self.maybe_advance_hw(now, &tp, out);
        self.complete_delayed_fetches(now, &tp, out);
    }

    fn txn_write_failed(&mut self, w: TxnWrite, error: ErrorCode, out: &mut Effects<BrokerTimer>) {
        let error = error_for_append_error(error);
        if let Some((to, msg)) = w.reply.message(error) {
            out.send(to, msg);
        } else if w.metadata.state.is_complete() && error != ErrorCode::NotCoordinator {
            self.coordinators
                .txn
                .complete_retry
                .insert((w.txn_tp.clone(), w.metadata.transactional_id.clone()));
        }
    }

    /// Sends the markers due (one WriteTxnMarkers per leader broker, leaders from the metadata
    /// cache).
    fn txn_send_markers(&mut self, now: Instant, out: &mut Effects<BrokerTimer>) {
        let metadata = &self.metadata;
        let next_corr = &mut self.next_corr;
        let sends = self.coordinators.txn.markers.drain(
            now.0,
            |tp| metadata.get(tp).and_then(|s| s.leader),
            || {
                *next_corr += 1;
                CorrelationId(*next_corr)
            },
        );
        for (to, msg) in sends {
            out.send(NodeId::Broker(to), msg);
        }
    }

    /// InitProducerId with a `transactional.id` ([`tm::init_producer_id`]); NOT_COORDINATOR
    /// unless this broker leads the id's `__transaction_state` partition.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn on_txn_init_producer_id(
        &mut self,
        now: Instant,
        from: NodeId,
        corr: CorrelationId,
        transactional_id: String,
        transaction_timeout_ms: u64,
        expected: (ProducerId, ProducerEpoch),
        out: &mut Effects<BrokerTimer>,
    ) {
        let (broker_epoch, mut next) = (self.broker_epoch, self.next_producer_id);
        let mut alloc = || {
            let (pid, n) = producer_id_after(broker_epoch, next);
            next = n;
            pid
        };
        let txn = &self.coordinators.txn;
        let decision = match txn.lookup(&transactional_id) {
            Err(e) => Decision::Reply(tm::ProducerReply::error(e)),
            Ok((current, pending)) => tm::init_producer_id(
                &txn.config,
                current,
                pending,
                &transactional_id,
                transaction_timeout_ms,
                expected,
                now.0,
                &mut alloc,
            ),
        };
        self.next_producer_id = next;
        let reply = |r| TxnReply::InitProducerId {
            to: from,
            corr,
            reply: r,
        };
        self.txn_carry_out(now, &transactional_id, decision, reply, out);
    }

    /// AddPartitionsToTxn ([`tm::add_partitions`], or with `verify_only`
    /// [`tm::verify_partitions`]); NOT_COORDINATOR unless this broker leads the id's partition.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn on_add_partitions_to_txn(
        &mut self,
        now: Instant,
        from: NodeId,
        corr: CorrelationId,
        transactional_id: String,
        (producer_id, producer_epoch): (ProducerId, ProducerEpoch),
        partitions: Vec<TopicPartition>,
        verify_only: bool,
        out: &mut Effects<BrokerTimer>,
    ) {
        let txn = &self.coordinators.txn;
        let all = |e: ErrorCode| partitions.iter().map(|tp| (tp.clone(), e)).collect();
        let (current, pending) = match txn.lookup(&transactional_id) {
            Ok(found) => found,
            Err(e) => {
                let results = all(e);
                out.send(from, Message::AddPartitionsToTxnResponse { corr, results });
                return;
            }
        };
        if verify_only {
            let results = tm::verify_partitions(
                &txn.config,
                current,
                pending,
                producer_id,
                producer_epoch,
                &partitions,
            );
            out.send(from, Message::AddPartitionsToTxnResponse { corr, results });
            return;
        }
        let decision = tm::add_partitions(
            &txn.config,
            current,
            pending,
            producer_id,
            producer_epoch,
            &partitions,
            "add-partitions",
            now.0,
        );
        let reply = |_| TxnReply::AddPartitionsToTxn {
            to: from,
            corr,
            partitions: partitions.clone(),
        };
        let decision = match decision {
            Decision::Reply(e) => {
                let results = all(e);
                out.send(from, Message::AddPartitionsToTxnResponse { corr, results });
                return;
            }
            d => d,
        };
        self.txn_carry_out(now, &transactional_id, decision, reply, out);
    }

    /// AddOffsetsToTxn ([`tm::add_offsets`]).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn on_add_offsets_to_txn(
        &mut self,
        now: Instant,
        from: NodeId,
        corr: CorrelationId,
        transactional_id: String,
        (producer_id, producer_epoch): (ProducerId, ProducerEpoch),
        group_id: String,
        out: &mut Effects<BrokerTimer>,
    ) {
        let txn = &self.coordinators.txn;
        let decision = match txn.lookup(&transactional_id) {
            Err(e) => Decision::Reply(e),
            Ok((current, pending)) => tm::add_offsets(
                &txn.config,
                current,
                pending,
                producer_id,
                producer_epoch,
                &group_id,
                now.0,
            ),
        };
        if let Decision::Reply(error) = decision {
            out.send(from, Message::AddOffsetsToTxnResponse { corr, error });
            return;
        }
        let reply = |_| TxnReply::AddOffsetsToTxn { to: from, corr };
        self.txn_carry_out(now, &transactional_id, decision, reply, out);
    }

    /// EndTxn ([`tm::end_txn`]).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn on_end_txn(
        &mut self,
        now: Instant,
        from: NodeId,
        corr: CorrelationId,
        transactional_id: String,
        (producer_id, producer_epoch): (ProducerId, ProducerEpoch),
        committed: bool,
        out: &mut Effects<BrokerTimer>,
    ) {
        let (broker_epoch, mut next) = (self.broker_epoch, self.next_producer_id);
        let mut alloc = || {
            let (pid, n) = producer_id_after(broker_epoch, next);
            next = n;
            pid
        };
        let txn = &self.coordinators.txn;
        let decision = match txn.lookup(&transactional_id) {
            Err(error) => Decision::Reply(tm::ProducerReply {
                error,
                producer_id,
                producer_epoch,
            }),
            Ok((current, pending)) => tm::end_txn(
                &txn.config,
                current,
                pending,
                producer_id,
                producer_epoch,
                committed,
                now.0,
                &mut alloc,
            ),
        };
        self.next_producer_id = next;
        if let Decision::Reply(r) = &decision {
            // Answered without a state change: recorded, so that a late EndTxn that changed
            // nothing (KAFKA-17754 under KIP-890 part 2) shows in the event log.
            out.event(Event::EndTxnAnswered {
                transactional_id: transactional_id.clone(),
                broker: self.id,
                client: from.to_string(),
                corr,
                producer_id,
                producer_epoch,
                result: if committed { "commit" } else { "abort" }.into(),
                error: r.error.kafka_name().into(),
            });
        }
        let reply = |r| TxnReply::EndTxn {
            to: from,
            corr,
            reply: r,
        };
        self.txn_carry_out(now, &transactional_id, decision, reply, out);
    }

    /// Answers a decision now, or writes its state and answers once committed.
    fn txn_carry_out<R>(
        &mut self,
        now: Instant,
        transactional_id: &str,
        decision: Decision<R>,
        reply: impl FnOnce(R) -> TxnReply,
        out: &mut Effects<BrokerTimer>,
    ) {
        match decision {
            Decision::Reply(r) => {
                if let Some((to, msg)) = reply(r).message(ErrorCode::None) {
                    out.send(to, msg);
                }
            }
            Decision::Write {
                metadata,
                reason,
                on_commit,
            } => {
                let txn = &self.coordinators.txn;
                let from = txn
                    .lookup(transactional_id)
                    .ok()
                    .and_then(|(m, _)| m.map(|m| m.state))
                    .unwrap_or(TxnState::Empty);
                let w = TxnWrite {
                    txn_tp: txn.partition_for(transactional_id),
                    from,
                    metadata,
                    reason,
                    reply: reply(on_commit),
                };
                self.txn_write(now, w, out);
            }
        }
    }

    /// WriteTxnMarkersResponse: partitions answered NONE are done; a transaction with every
    /// partition done writes Complete*; the rest are sent again on the next tick.
    pub(super) fn on_write_txn_markers_response(
        &mut self,
        now: Instant,
        corr: CorrelationId,
        markers: Vec<WritableTxnMarkerResult>,
        out: &mut Effects<BrokerTimer>,
    ) {
        let outcome = self.coordinators.txn.markers.on_response(corr, &markers);
        for id in outcome.completed {
            let tp = self.coordinators.txn.partition_for(&id);
            self.txn_complete(now, &tp, &id, out);
        }
    }

    /// A WriteTxnMarkers could not be sent, or the connection to `broker` dropped.
    pub(super) fn txn_markers_lost(&mut self, corr: Option<CorrelationId>, broker: BrokerId) {
        match corr {
            Some(c) => self.coordinators.txn.markers.send_failed(c),
            None => self.coordinators.txn.markers.broker_lost(broker),
        }
    }

    /// The periodic work (on the coordination-node tick, every 200 ms): forget unanswered
    /// marker requests past their timeout, write again the Complete* states the leader refused,
    /// abort timed-out transactions every
    /// `transaction.abort.timed.out.transaction.cleanup.interval.ms`, and send the markers due.
    pub(super) fn txn_tick(&mut self, now: Instant, out: &mut Effects<BrokerTimer>) {
        self.coordinators.txn.markers.expire(now.0);
        for (tp, id) in std::mem::take(&mut self.coordinators.txn.complete_retry) {
            self.txn_complete(now, &tp, &id, out);
        }
        let txn = &self.coordinators.txn;
        if now.0 >= txn.last_abort_check_ms + txn.config.abort_cleanup_interval_ms {
            self.coordinators.txn.last_abort_check_ms = now.0;
            self.txn_abort_timed_out(now, out);
        }
        self.txn_send_markers(now, out);
    }

    /// Aborts, with an epoch bump, every transaction Ongoing for longer than its timeout
    /// (TC:759-795, KAFKA-6119).
    pub(super) fn txn_abort_timed_out(&mut self, now: Instant, out: &mut Effects<BrokerTimer>) {
        let txn = &self.coordinators.txn;
        let mut writes = Vec::new();
        for tp in txn.runtime.hosted() {
            for m in txn.runtime.latest(tp).expect("hosted").iter() {
                let (_, pending) = txn.lookup(&m.transactional_id).expect("hosted");
                if pending {
                    continue;
                }
                if let Some(n) = tm::timed_out_abort(&txn.config, m, now.0) {
                    writes.push(TxnWrite {
                        txn_tp: tp.clone(),
                        from: m.state,
                        metadata: n,
                        reason: "timeout",
                        reply: TxnReply::None,
                    });
                }
            }
        }
        for w in writes {
            self.txn_write(now, w, out);
        }
    }
}

/// The producer id after counter `next` for a broker in `broker_epoch`, and the new counter.
fn producer_id_after(broker_epoch: BrokerEpoch, next: i64) -> (ProducerId, i64) {
    let next = next + 1;
    (ProducerId(broker_epoch.0.max(0) * 1_000_000 + next), next)
}

/// The `txn-state-changed` event of `m` entered from `from`, caused by `client`'s request
/// `corr` if any.
fn txn_event(
    broker: BrokerId,
    from: TxnState,
    m: &TransactionMetadata,
    reason: &str,
    client: Option<String>,
    corr: Option<CorrelationId>,
) -> Event {
    Event::TxnStateChanged {
        client,
        corr,
        transactional_id: m.transactional_id.clone(),
        broker,
        producer_id: m.producer_id,
        producer_epoch: m.producer_epoch,
        from: from.name().into(),
        to: m.state.name().into(),
        partitions: m.partitions.iter().cloned().collect(),
        reason: reason.into(),
    }
}
