//! What an application that drives the consumer from outside its poll loop needs (a
//! processor, [`crate::processor`]): the group metadata to pass to
//! `sendOffsetsToTransaction` (Kafka's `KafkaConsumer.groupMetadata()`, KIP-447), and the
//! rewind to the committed offsets after an aborted transaction (Kafka Streams resets a task's
//! positions to its committed offsets when a transaction aborts; Jepsen's client does the same,
//! `rollback-consumer!`; without it the aborted inputs are skipped, KAFKA-17582).

use super::subscription_state::FetchState;
use super::{ConsumerClient, ConsumerTimer};
use crate::effects::Effects;
use crate::producer::ConsumerGroupMetadata;

impl ConsumerClient {
    /// `groupMetadata()`: the group id, and the member's generation and member id (-1 and ""
    /// while it has none) and `group.instance.id`. `None` without a `group.id`.
    pub fn group_metadata(&self) -> Option<ConsumerGroupMetadata> {
        let group_id = self.config.group_id.clone()?;
        let (generation_id, member_id) = match &self.membership {
            Some(m) => (m.generation, m.member_id.clone()),
            None => (-1, String::new()),
        };
        Some(ConsumerGroupMetadata {
            group_id,
            generation_id,
            member_id,
            group_instance_id: self.config.group_instance_id.clone(),
        })
    }

    /// Every assigned partition goes back to its group's committed offset: the prefetched
    /// records are dropped, fetches in flight are forgotten, and the partitions read their
    /// committed offsets again with OffsetFetch (`require_stable` under read_committed, so a
    /// transaction still completing is waited for). Without a `group.id`, nothing.
    pub fn rewind_to_committed(&mut self, out: &mut Effects<ConsumerTimer>) {
        if self.coordinator.is_none() {
            return;
        }
        self.buffer.clear();
        for s in self.partitions.values_mut() {
            s.in_flight = None;
            s.state = FetchState::Initializing;
        }
        self.refresh_committed_offsets(out);
    }

    /// The application's `poll()` returns now with nothing, as its timeout would: true when the
    /// application was blocked in `poll()` (it is now outside it, and polls again with
    /// [`ConsumerTimer::Poll`]), false when it was elsewhere in its loop (processing, in
    /// `onPartitionsRevoked`, or about to poll). A processor that keeps a transaction open
    /// across polls (`commit.interval.ms`) leaves the poll this way to commit, as Kafka
    /// Streams' loop returns from `poll()` and then commits once the interval has passed.
    pub fn leave_blocked_poll(&mut self) -> bool {
        self.blocked_poll.take().is_some()
    }
}
