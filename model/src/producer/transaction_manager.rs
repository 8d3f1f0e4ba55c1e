//! The idempotent-producer part of Kafka's `TransactionManager` (KIP-98, KIP-360): the
//! producer id and epoch from InitProducerId, and the sequence rules that keep a partition's
//! batches in order across retries (step 6 of the pipeline in [`super`]). Sequences are
//! assigned when a batch is first drained (see `take_sendable` in the accumulator).

use super::{ProducerClient, ProducerTimer};
use crate::effects::Effects;
use crate::protocol::*;
use crate::types::*;

/// Batches at most this many per partition may be in flight with idempotence: the broker
/// caches the last 5 per producer (`ProducerStateEntry.NUM_BATCHES_TO_RETAIN`).
pub const MAX_IN_FLIGHT_PER_PARTITION_IDEMPOTENT: usize = 5;

impl ProducerClient {
    pub(super) fn init_producer_id(&mut self, out: &mut Effects<ProducerTimer>) {
        if self.init_pid_in_flight.is_some() || self.bootstrap.is_empty() {
            return;
        }
        let corr = self.corr();
        let b = self.bootstrap[self.next_bootstrap % self.bootstrap.len()];
        self.next_bootstrap += 1;
        self.init_pid_in_flight = Some(corr);
        out.send(
            NodeId::Broker(b),
            Message::InitProducerId {
                corr,
                transactional_id: None,
                transaction_timeout_ms: self.config.transaction_timeout_ms,
                producer_id: ProducerId::NONE,
                producer_epoch: ProducerEpoch(-1),
            },
        );
        out.timer(
            self.config.request_timeout_ms,
            ProducerTimer::RequestTimeout { corr },
        );
    }

    /// Whether a batch of `partition` under the current producer id with a lower sequence
    /// than `seq` is still unresolved (in flight or queued for a retry).
    pub(super) fn earlier_unresolved(&self, partition: i32, seq: i32) -> bool {
        let current = self.producer;
        self.in_flight_of(partition)
            .iter()
            .any(|(p, s)| *p == current && *s < seq)
            || self.batches.get(&partition).is_some_and(|q| {
                q.iter()
                    .any(|b| b.producer == current && b.base_sequence.is_some_and(|s| s < seq))
            })
    }

    /// An InitProducerId answer: the producer id and epoch to sequence batches under; on an
    /// error, try again after `retry.backoff.ms`.
    pub(super) fn on_init_producer_id_response(
        &mut self,
        now: Instant,
        corr: CorrelationId,
        error: ErrorCode,
        producer_id: ProducerId,
        producer_epoch: ProducerEpoch,
        out: &mut Effects<ProducerTimer>,
    ) {
        if self.init_pid_in_flight != Some(corr) {
            return;
        }
        self.init_pid_in_flight = None;
        if error == ErrorCode::None {
            self.producer = Some((producer_id, producer_epoch));
            self.drain(now, out);
        } else {
            let at = now.plus_ms(self.config.retry_backoff_ms.max(1));
            self.wake_at(now, at, out);
        }
    }
}
