//! Consumer lag at the end of a run: for each consumer and each partition it reads, how many
//! records it is behind the partition's high watermark, and the most records it read in one
//! simulated second. Not a check: it explains one. A consumer that reads more slowly than the
//! producers write ends the run behind, and every acknowledged record above its position is
//! `unseen` although the log still holds it; the lag tells that apart from loss.
//!
//! **Definition.** Kafka's consumer metric `records-lag` (`FetchManagerMetrics`, per partition,
//! with `records-lag-max` over partitions): the partition's high watermark minus the consumer's
//! position, the offset of the next record `poll()` returns. (`kafka-consumer-groups.sh
//! --describe` shows the same difference against the group's committed offset as `LAG`.) Here:
//! - the **partitions** of a consumer are those of the topics it reads; for a member of a
//!   group (subscribe mode), those it owns at the end of the run by its own
//!   `partitions-assigned` / `-revoked` / `-lost` events (see `group_view`): the others are
//!   its fellow members' to read;
//! - the **position** is what the application saw: one past the last record a `poll()` returned
//!   for the partition, or where a later `seek` or a position reset (`auto.offset.reset`, a
//!   truncation) put it, whichever came last; offset 0 when the consumer never had one. Records
//!   fetched into the consumer's buffer but not yet returned by `poll()` count as behind: the
//!   application has not read them;
//! - the **high watermark** is that of the partition's latest leader: the last
//!   `high-watermark-changed` event of the highest leader epoch (0 when there is none);
//! - the **most read in one simulated second** counts the records the consumer's `ok` polls
//!   returned in each whole simulated second (`[k s, k+1 s)`) and takes the largest count;
//! - the **read capacity** is the most the workload's poll loop can return per simulated
//!   second: `max.poll.records` per poll, one poll per
//!   [`ksim_model::consumer::POLL_INTERVAL_MS`] of processing (known only with the scenario).
//!
//! Partitions of deleted topics are left out (their records are gone on purpose).

use super::{deleted_topics, CheckInput};
use ksim_model::event::{Event, OpType, OpValue};
use ksim_model::types::{LeaderEpoch, NodeId, Offset, TopicPartition};
use serde::{Serialize, Serializer};
use std::collections::{BTreeMap, BTreeSet};

/// One consumer at the end of the run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConsumerLag {
    /// The consumer's process name: `consumer-N`.
    pub consumer: String,
    /// Records behind, summed over `partitions`.
    pub records_behind: u64,
    /// The most records its polls returned within one whole simulated second (records per
    /// simulated second; 0 when it read nothing).
    pub max_read_per_sim_s: u64,
    /// The most its poll loop can return per simulated second: `max.poll.records` times
    /// `1000 / POLL_INTERVAL_MS` polls (records per simulated second). `None` without the
    /// scenario.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub read_capacity_per_sim_s: Option<u64>,
    /// Every partition it reads, in partition order, including those it is not behind on.
    pub partitions: Vec<PartitionLag>,
}

/// One partition of one consumer at the end of the run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PartitionLag {
    /// `TOPIC-P`.
    #[serde(serialize_with = "ser_tp")]
    pub tp: TopicPartition,
    /// The consumer's position: the offset of the next record its `poll()` would return.
    pub position: Offset,
    /// The high watermark of the partition's latest leader.
    pub high_watermark: Offset,
    /// `high_watermark - position`, 0 when the position is at or past it.
    pub records_behind: u64,
}

fn ser_tp<S: Serializer>(tp: &TopicPartition, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&tp.to_string())
}

impl ConsumerLag {
    /// Whether the consumer ended behind on any partition.
    pub fn is_behind(&self) -> bool {
        self.records_behind > 0
    }

    /// The partitions it ended behind on, as `events-0: 97444, events-2: 94765`.
    pub fn partitions_behind_text(&self) -> String {
        self.partitions
            .iter()
            .filter(|p| p.records_behind > 0)
            .map(|p| format!("{}: {}", p.tp, p.records_behind))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// The high watermark of each partition's latest leader at the end of the run (see the module
/// documentation), partitions of deleted topics left out.
pub fn final_high_watermarks(input: &CheckInput) -> BTreeMap<TopicPartition, Offset> {
    let deleted = deleted_topics(input.events);
    let mut latest: BTreeMap<TopicPartition, (LeaderEpoch, Offset)> = BTreeMap::new();
    for r in input.events {
        if let Event::HighWatermarkChanged {
            tp,
            leader_epoch,
            high_watermark,
            ..
        } = &r.event
        {
            if deleted.contains_key(tp.topic.as_str()) {
                continue;
            }
            let entry = latest
                .entry(tp.clone())
                .or_insert((*leader_epoch, *high_watermark));
            if *leader_epoch >= entry.0 {
                *entry = (*leader_epoch, *high_watermark);
            }
        }
    }
    latest.into_iter().map(|(tp, (_, hw))| (tp, hw)).collect()
}

/// Every consumer's lag at the end of the run, in consumer order: each consumer that ran (has a
/// history entry or an event) or that the scenario declares, with the partitions of the topics
/// it reads (with the scenario) or that it read or was positioned in (without).
pub fn consumer_lag(input: &CheckInput) -> Vec<ConsumerLag> {
    let hws = final_high_watermarks(input);
    let deleted = deleted_topics(input.events);
    let Marks {
        marks,
        mut consumers,
        read_per_s,
    } = marks(input, false);
    if let Some(sc) = input.scenario {
        consumers.extend(0..sc.consumer_clients());
    }
    // Subscribe mode: a member reads only the partitions it owns at the end of the run.
    let owned_at_end = input
        .scenario
        .is_some_and(|sc| sc.consumers.iter().any(|c| c.group.is_some()))
        .then(|| {
            let mut walk = super::group_view::GroupWalk::default();
            for r in input.events {
                walk.apply(r);
            }
            walk.members
        });
    consumers
        .into_iter()
        .map(|c| {
            let spec = input.scenario.and_then(|sc| sc.consumer_of_client(c));
            let tps: BTreeSet<TopicPartition> = match spec {
                Some(spec) if spec.group.is_some() => hws
                    .keys()
                    .filter(|tp| spec.topics.iter().any(|t| *t == tp.topic))
                    .filter(|tp| {
                        owned_at_end
                            .as_ref()
                            .and_then(|m| m.get(&NodeId::Consumer(c)))
                            .is_some_and(|v| v.owned.contains_key(*tp))
                    })
                    .cloned()
                    .collect(),
                Some(spec) => hws
                    .keys()
                    .filter(|tp| spec.topics.iter().any(|t| *t == tp.topic))
                    .cloned()
                    .collect(),
                None => marks
                    .keys()
                    .filter(|(m, _)| *m == c)
                    .map(|(_, tp)| tp.clone())
                    .collect(),
            };
            let partitions: Vec<PartitionLag> = tps
                .into_iter()
                .filter(|tp| !deleted.contains_key(tp.topic.as_str()))
                .map(|tp| {
                    let position = marks.get(&(c, tp.clone())).map_or(Offset(0), |m| m.3);
                    let high_watermark = hws.get(&tp).copied().unwrap_or(Offset(0));
                    let records_behind = high_watermark.0.saturating_sub(position.0).max(0) as u64;
                    PartitionLag {
                        tp,
                        position,
                        high_watermark,
                        records_behind,
                    }
                })
                .collect();
            ConsumerLag {
                consumer: NodeId::Consumer(c).to_string(),
                records_behind: partitions.iter().map(|p| p.records_behind).sum(),
                max_read_per_sim_s: read_per_s
                    .range((c, 0)..=(c, u64::MAX))
                    .map(|(_, n)| *n)
                    .max()
                    .unwrap_or(0),
                read_capacity_per_sim_s: spec.map(|s| read_capacity_per_sim_s(&s.config)),
                partitions,
            }
        })
        .collect()
}

/// (time_ms, 0 for an event / 1 for a history entry, sequence, offset): the latest wins, a
/// poll over an event of the same millisecond.
type Mark = (u64, u8, u64, Offset);

/// Every consumer's latest position mark per partition, the consumers that ran, and the
/// records returned per (consumer, whole simulated second).
struct Marks {
    marks: BTreeMap<(u32, TopicPartition), Mark>,
    consumers: BTreeSet<u32>,
    read_per_s: BTreeMap<(u32, u64), u64>,
}

/// The position marks of the module documentation; with `offset_fetch`, an `ok` OffsetFetch
/// that found a committed offset also sets the position (a subscribe-mode member that takes a
/// partition starts from the group's committed offset, Kafka's
/// `ConsumerCoordinator.refreshCommittedOffsetsIfNeeded`).
fn marks(input: &CheckInput, offset_fetch: bool) -> Marks {
    let mut marks: BTreeMap<(u32, TopicPartition), Mark> = BTreeMap::new();
    let mut consumers: BTreeSet<u32> = BTreeSet::new();
    let mut set = |c: u32, tp: &TopicPartition, mark: Mark| {
        let e = marks.entry((c, tp.clone())).or_insert(mark);
        if mark >= *e {
            *e = mark;
        }
    };
    for (i, r) in input.events.iter().enumerate() {
        if let (NodeId::Consumer(c), Event::ConsumerPositionReset { tp, to_offset, .. }) =
            (r.node, &r.event)
        {
            consumers.insert(c);
            set(c, tp, (r.time_ms, 0, i as u64, *to_offset));
        }
    }
    let mut read_per_s: BTreeMap<(u32, u64), u64> = BTreeMap::new();
    for e in input.history {
        let NodeId::Consumer(c) = e.process else {
            continue;
        };
        consumers.insert(c);
        match (&e.op.value, e.op.op_type) {
            (OpValue::Poll { records }, OpType::Ok) => {
                *read_per_s.entry((c, e.time_ms / 1000)).or_default() += records.len() as u64;
                for r in records {
                    set(c, &r.tp, (e.time_ms, 1, e.index, Offset(r.offset.0 + 1)));
                }
            }
            (OpValue::Seek { tp, offset }, OpType::Ok) => {
                set(c, tp, (e.time_ms, 1, e.index, *offset));
            }
            (OpValue::OffsetFetch { offsets, .. }, OpType::Ok) if offset_fetch => {
                for o in offsets {
                    if let Some(committed) = o.committed {
                        set(c, &o.tp, (e.time_ms, 1, e.index, committed));
                    }
                }
            }
            _ => {}
        }
    }
    Marks {
        marks,
        consumers,
        read_per_s,
    }
}

/// Each consumer's position per partition at the end of the run (see the module
/// documentation), counting also the committed offsets its OffsetFetch calls returned: the
/// position of a group member that took a partition and has not polled it since.
pub fn final_positions(input: &CheckInput) -> BTreeMap<(u32, TopicPartition), Offset> {
    marks(input, true)
        .marks
        .into_iter()
        .map(|(k, m)| (k, m.3))
        .collect()
}

/// The most records the workload's poll loop returns per simulated second with `config`:
/// `max.poll.records` per poll, one poll per [`ksim_model::consumer::POLL_INTERVAL_MS`] of
/// processing (records per simulated second).
pub fn read_capacity_per_sim_s(config: &ksim_model::config::ConsumerConfig) -> u64 {
    config.max_poll_records as u64 * 1000 / ksim_model::consumer::POLL_INTERVAL_MS.max(1)
}

/// The consumers of `lags` that ended behind, as one clause:
/// `consumer-0 ended 397393 records behind (events-0: 97444, ...), reading at most 10000 records
/// in one simulated second (its poll loop returns at most 10000)`.
pub fn behind_text(lags: &[ConsumerLag]) -> String {
    lags.iter()
        .filter(|l| l.is_behind())
        .map(|l| {
            let capacity = l
                .read_capacity_per_sim_s
                .map(|c| format!(" (its poll loop returns at most {c})"))
                .unwrap_or_default();
            format!(
                "{} ended {} record{} behind ({}), reading at most {} record{} in one \
                 simulated second{capacity}",
                l.consumer,
                l.records_behind,
                if l.records_behind == 1 { "" } else { "s" },
                l.partitions_behind_text(),
                l.max_read_per_sim_s,
                if l.max_read_per_sim_s == 1 { "" } else { "s" },
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// The smallest position any consumer of `lags` ended at in each partition (where the
/// earliest unread record can be).
pub fn lowest_positions(lags: &[ConsumerLag]) -> BTreeMap<TopicPartition, Offset> {
    let mut out: BTreeMap<TopicPartition, Offset> = BTreeMap::new();
    for l in lags {
        for p in &l.partitions {
            let e = out.entry(p.tp.clone()).or_insert(p.position);
            if p.position < *e {
                *e = p.position;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use super::*;
    use crate::history::EventRecord;
    use ksim_model::types::BrokerId;

    fn hw(time_ms: u64, p: i32, epoch: i32, high_watermark: i64) -> EventRecord {
        EventRecord {
            time_ms,
            node: NodeId::Broker(BrokerId(0)),
            event: Event::HighWatermarkChanged {
                tp: tp(p),
                broker: BrokerId(0),
                leader_epoch: LeaderEpoch(epoch),
                high_watermark: Offset(high_watermark),
            },
        }
    }

    fn lag_of(h: &HistoryBuilder, events: &[EventRecord]) -> Vec<ConsumerLag> {
        let logs = BTreeMap::new();
        consumer_lag(&CheckInput {
            history: &h.entries,
            events,
            final_logs: &logs,
            scenario: None,
            snapshots: &[],
        })
    }

    /// Position one past the last record read, high watermark of the latest epoch (an older
    /// leader's higher one logged later does not count), records read per whole second.
    #[test]
    fn lag_is_the_latest_leaders_high_watermark_minus_the_position() {
        let mut h = HistoryBuilder::default();
        h.poll(0, &tp(0), &[(0, 1), (1, 2), (2, 3)]) // t=10 ms
            .poll(0, &tp(1), &[(0, 4)]); // t=30 ms
        let events = vec![hw(5, 0, 2, 10), hw(6, 0, 1, 50), hw(7, 1, 1, 1)];
        let lags = lag_of(&h, &events);
        assert_eq!(lags.len(), 1, "{lags:?}");
        let l = &lags[0];
        assert_eq!(l.consumer, "consumer-0");
        assert_eq!(l.records_behind, 7);
        assert_eq!(l.max_read_per_sim_s, 4);
        assert_eq!(l.read_capacity_per_sim_s, None);
        assert_eq!(l.partitions.len(), 2);
        assert_eq!(l.partitions[0].position, Offset(3));
        assert_eq!(l.partitions[0].high_watermark, Offset(10));
        assert_eq!(l.partitions[0].records_behind, 7);
        assert_eq!(l.partitions[1].records_behind, 0);
        assert!(l.is_behind());
        assert_eq!(l.partitions_behind_text(), "events-0: 7");
        assert_eq!(
            behind_text(&lags),
            "consumer-0 ended 7 records behind (events-0: 7), reading at most 4 records in \
             one simulated second"
        );
        let json = serde_json::to_value(l).expect("serializes");
        assert_eq!(json["partitions"][0]["tp"], "events-0");
        assert_eq!(json["partitions"][0]["records_behind"], 7);
        assert!(json.get("read_capacity_per_sim_s").is_none());
    }

    /// A later seek or position reset moves the position; a poll after them moves it again.
    #[test]
    fn the_last_of_poll_seek_and_reset_sets_the_position() {
        let mut h = HistoryBuilder::default();
        h.poll(0, &tp(0), &[(0, 1), (1, 2)]).seek(0, &tp(0), 0); // poll t=10, seek t=30
        let events = vec![hw(1, 0, 1, 9)];
        assert_eq!(lag_of(&h, &events)[0].partitions[0].position, Offset(0));
        // A reset to 5 at t=100 ms, after the seek.
        let reset = out_of_range_reset(0, 0, 5, 100);
        let lags = lag_of(&h, &[events[0].clone(), reset.clone()]);
        assert_eq!(lags[0].partitions[0].position, Offset(5));
        assert_eq!(lags[0].records_behind, 4);
        // A poll after the reset wins.
        h.poll(0, &tp(0), &[(5, 6), (6, 7), (7, 8), (8, 9)]);
        for e in h.entries.iter_mut().skip(4) {
            e.time_ms += 1000;
        }
        let lags = lag_of(&h, &[events[0].clone(), reset]);
        assert_eq!(lags[0].partitions[0].position, Offset(9));
        assert!(!lags[0].is_behind());
        assert_eq!(behind_text(&lags), "");
    }

    /// A member of a group is behind only on the partitions it owns at the end; the others
    /// are its fellow members' to read.
    #[test]
    fn a_group_member_lags_only_on_the_partitions_it_owns_at_the_end() {
        use super::super::group_view::testkit::Events;
        let mut scenario = crate::scenario::parse(
            r#"
            [scenario]
            name = "g"
            duration_ms = 1000
            seeds = [1]
            [cluster]
            brokers = 1
            [[topics]]
            name = "events"
            partitions = 2
            replication_factor = 1
            [[consumers]]
            members = 2
            topics = ["events"]
            "#,
            "g.toml",
        )
        .expect("valid scenario");
        let mut h = HistoryBuilder::default();
        h.poll(0, &tp(0), &[(0, 1), (1, 2)])
            .poll(1, &tp(1), &[(0, 3)]);
        let mut events = Events::default();
        events
            .assigned(1, 0, 1, &[0, 1])
            .revoked(2, 0, 1, &[1])
            .assigned(3, 1, 2, &[1]);
        events.0.extend([hw(5, 0, 1, 4), hw(5, 1, 1, 3)]);
        let lag = |sc: &crate::scenario::Scenario| {
            let logs = BTreeMap::new();
            consumer_lag(&CheckInput {
                history: &h.entries,
                events: &events.0,
                final_logs: &logs,
                scenario: Some(sc),
                snapshots: &[],
            })
        };
        // Assign mode: each consumer reads both partitions.
        let l = lag(&scenario);
        assert_eq!((l[0].records_behind, l[1].records_behind), (2 + 3, 4 + 2));
        scenario.consumers[0].group = Some("g".into());
        let l = lag(&scenario);
        assert_eq!(l[0].partitions.len(), 1);
        assert_eq!((l[0].records_behind, l[1].records_behind), (2, 2));
    }

    #[test]
    fn capacity_is_max_poll_records_per_poll_interval() {
        let mut c = ksim_model::config::ConsumerConfig::default();
        c.max_poll_records = 500;
        assert_eq!(
            read_capacity_per_sim_s(&c),
            500 * 1000 / ksim_model::consumer::POLL_INTERVAL_MS
        );
    }
}
