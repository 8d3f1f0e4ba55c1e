//! The consumer's view of the cluster (Kafka's `ConsumerMetadata`): a Metadata request to the
//! next bootstrap broker, the leader and leader epoch of every partition of its topics, a
//! refresh every [`METADATA_REFRESH_MS`] and a retry after `retry.backoff.ms` while a leader
//! is unknown. A new leader epoch sends a position with an epoch to validation (KIP-320,
//! Kafka's `SubscriptionState.maybeValidatePositionForCurrentLeader`).

use super::subscription_state::{FetchState, PartitionFetchState};
use super::{ConsumerClient, ConsumerTimer, Pending};
use crate::effects::Effects;
use crate::protocol::*;
use crate::types::*;

/// How often metadata is refreshed without a reason, in simulated ms.
pub const METADATA_REFRESH_MS: u64 = 5_000;

impl ConsumerClient {
    pub(super) fn request_metadata(&mut self, out: &mut Effects<ConsumerTimer>) {
        if self.metadata_in_flight || self.bootstrap.is_empty() {
            return;
        }
        let b = self.bootstrap[self.next_bootstrap % self.bootstrap.len()];
        self.next_bootstrap += 1;
        self.metadata_in_flight = true;
        let topics = self.topics.clone();
        self.send(
            b,
            |corr| Message::Metadata { corr, topics },
            Pending::Metadata,
            out,
        );
    }

    pub(super) fn on_metadata_response(
        &mut self,
        partitions: Vec<PartitionMetadata>,
        out: &mut Effects<ConsumerTimer>,
    ) {
        self.metadata_in_flight = false;
        let mut missing = false;
        let grouped = self.coordinator.is_some();
        for pm in partitions {
            if !self.topics.iter().any(|t| *t == pm.tp.topic) {
                continue;
            }
            missing |= pm.leader.is_none();
            if self.membership_metadata(&pm) && !self.partitions.contains_key(&pm.tp) {
                continue; // subscribe mode: not assigned to this member
            }
            let s = self
                .partitions
                .entry(pm.tp.clone())
                .or_insert_with(|| PartitionFetchState::new(grouped));
            if pm.leader_epoch < s.leader_epoch {
                continue; // stale metadata
            }
            let new_epoch = pm.leader_epoch > s.leader_epoch && s.leader_epoch.0 >= 0;
            s.leader = pm.leader;
            s.leader_epoch = pm.leader_epoch;
            // KIP-320: after a leader change, validate a position that has an epoch.
            if new_epoch {
                if let FetchState::Fetching(p) = s.state {
                    if p.offset_epoch != LeaderEpoch::UNKNOWN {
                        s.state = FetchState::AwaitValidation(p);
                    }
                }
            }
        }
        let nothing_known = match &self.membership {
            Some(m) => m.partition_counts.is_empty(),
            None => self.partitions.is_empty(),
        };
        if missing || nothing_known {
            out.timer(
                self.config.retry_backoff_ms.max(1),
                ConsumerTimer::MetadataRetry,
            );
        }
        self.fetch_all(out);
    }
}
