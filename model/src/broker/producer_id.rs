//! InitProducerId for idempotent producers (Kafka's `ProducerIdManager`; here ids are drawn
//! from the broker epoch instead of blocks allocated through `/latest_producer_id_block`, see
//! `Broker::allocate_producer_id`). With a `transactional.id` the request goes to the
//! transaction coordinator (`txn_coordinator.rs`).

use super::{Broker, BrokerTimer};
use crate::effects::Effects;
use crate::protocol::*;
use crate::types::*;

impl Broker {
    pub(super) fn on_init_producer_id(
        &mut self,
        from: NodeId,
        corr: CorrelationId,
        out: &mut Effects<BrokerTimer>,
    ) {
        if self.broker_epoch.0 < 0 {
            out.send(
                from,
                Message::InitProducerIdResponse {
                    corr,
                    error: ErrorCode::LeaderNotAvailable,
                    producer_id: ProducerId::NONE,
                    producer_epoch: ProducerEpoch(-1),
                },
            );
            return;
        }
        let pid = self.allocate_producer_id();
        out.send(
            from,
            Message::InitProducerIdResponse {
                corr,
                error: ErrorCode::None,
                producer_id: pid,
                producer_epoch: ProducerEpoch(0),
            },
        );
    }
}
