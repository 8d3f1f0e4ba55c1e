//! The producer's view of the cluster (Kafka's `ProducerMetadata`, refreshed through
//! `NetworkClient`'s metadata updater): a Metadata request to the next bootstrap broker, the
//! leader of every partition of the workload's topics, a refresh every
//! `metadata.max.age.ms` and a retry after `retry.backoff.ms` while a leader is unknown.

use super::{ProducerClient, ProducerTimer};
use crate::effects::Effects;
use crate::protocol::*;
use crate::types::*;

impl ProducerClient {
    pub(super) fn request_metadata(&mut self, out: &mut Effects<ProducerTimer>) {
        if self.metadata_in_flight.is_some() || self.bootstrap.is_empty() {
            return;
        }
        let corr = self.corr();
        let b = self.bootstrap[self.next_bootstrap % self.bootstrap.len()];
        self.next_bootstrap += 1;
        self.metadata_in_flight = Some(corr);
        out.send(
            NodeId::Broker(b),
            Message::Metadata {
                corr,
                topics: self.workload.topics.clone(),
            },
        );
        out.timer(
            self.config.request_timeout_ms,
            ProducerTimer::RequestTimeout { corr },
        );
    }

    /// A Metadata answer: the leader of every partition of the workload's topics; a retry
    /// after `retry.backoff.ms` while one is unknown.
    pub(super) fn on_metadata_response(
        &mut self,
        now: Instant,
        corr: CorrelationId,
        partitions: Vec<PartitionMetadata>,
        out: &mut Effects<ProducerTimer>,
    ) {
        if self.metadata_in_flight != Some(corr) {
            return;
        }
        self.metadata_in_flight = None;
        for pm in partitions {
            if let Some(t) = self.workload.topics.iter().position(|t| *t == pm.tp.topic) {
                let slot = self.slot(t, pm.tp.partition);
                self.leaders.insert(slot, pm.leader);
            }
        }
        let missing = !self.metadata_known() || self.leaders.values().any(|l| l.is_none());
        if missing {
            out.timer(
                self.config.retry_backoff_ms.max(1),
                ProducerTimer::MetadataRetry,
            );
        }
        self.drain(now, out);
    }
}
