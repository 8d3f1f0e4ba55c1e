//! `duplicate`: one value appears at two or more offsets.
//!
//! **Definition.** Every value the workload sends is unique, so in a correct run it occupies
//! exactly one position, one (partition, offset). This check gathers every position at which a
//! client saw each value, both from `ok` send acknowledgements (the offset the broker returned)
//! and from `ok` polls (the offset of each returned record), and reports every value seen at
//! two or more distinct positions, in the same partition or in different ones.
//!
//! **Source.** Jepsen's Kafka checker (`jepsen/src/jepsen/tests/kafka.clj`,
//! `duplicate-cases`): a value that appears at more than one offset of a key's version order.
//! In Kafka this is the classic result of a producer retry without idempotence
//! (`enable.idempotence=false`, `retries>0`): the first attempt was appended but its
//! acknowledgement was lost, the retry appended the same record again. With idempotence the
//! broker's producer state (`ProducerStateEntry`, the last five batches per producer) turns the
//! retry into the original offset, so a duplicate there is a bug.
//!
//! **What is allowed.** A consumer reading the same record twice (after a rebalance or a
//! restart from an older committed offset) sees the same value at the same position: that is
//! at-least-once delivery, not a duplicate. Sends that completed `info` or `fail` carry no
//! offset and contribute nothing; only a record that a poll actually returned counts for them.

use super::lesson::{self, Lesson, Prevention};
use super::{violation, CheckInput, Checker, ObsKey, ObservationKeys, Source, Violation};
use ksim_model::types::{Offset, TopicPartition};
use serde_json::json;

/// See the module documentation.
pub struct Duplicate;

impl Checker for Duplicate {
    fn name(&self) -> &'static str {
        "duplicate"
    }

    fn statement(&self) -> &'static str {
        "no value appears at two offsets"
    }

    fn lesson(&self) -> Lesson {
        Lesson {
            intro: lesson::WRITTEN_TWICE,
            prevention: Prevention::Duplicate,
        }
    }

    fn check(&self, input: &CheckInput) -> Vec<Violation> {
        let ObservationKeys { tps, mut keys } = ObservationKeys::of(input.history);
        // By value, then position, then history order.
        keys.sort_unstable_by_key(|k| (k.value, k.tp, k.offset, k.seq));
        // Per value seen at two positions or more: the first observation at each position, in
        // position order.
        let mut found: Vec<(u64, Vec<ObsKey>)> = Vec::new();
        for run in keys.chunk_by(|a, b| a.value == b.value) {
            if run
                .iter()
                .all(|k| (k.tp, k.offset) == (run[0].tp, run[0].offset))
            {
                continue;
            }
            let mut at: Vec<ObsKey> = Vec::new();
            for k in run {
                if at
                    .last()
                    .is_none_or(|a| (a.tp, a.offset) != (k.tp, k.offset))
                {
                    at.push(*k);
                }
            }
            found.push((run[0].value, at));
        }
        let mut seqs: Vec<usize> = found
            .iter()
            .flat_map(|(_, at)| at.iter().map(|k| k.seq))
            .collect();
        seqs.sort_unstable();
        seqs.dedup();
        let sources = ObservationKeys::sources(input.history, &seqs);
        let position = |k: &ObsKey| {
            let i = seqs
                .binary_search(&k.seq)
                .expect("every source was fetched");
            (&tps[k.tp as usize], k.offset, sources[i])
        };
        let mut anomalies = Vec::new();
        for (value, at) in &found {
            let at: Vec<(&TopicPartition, Offset, Source)> = at.iter().map(position).collect();
            let places: Vec<String> = at
                .iter()
                .map(|(tp, offset, source)| format!("{tp} offset {offset} ({})", source.describe()))
                .collect();
            let sentence = format!(
                "value {value} appears at {} offsets: {}",
                at.len(),
                places.join(", ")
            );
            let data = json!({
                "value": value,
                "positions": at
                    .iter()
                    .map(|(tp, offset, source)| json!({
                        "tp": tp.to_string(),
                        "offset": offset.0,
                        "first_seen": source.to_json(),
                    }))
                    .collect::<Vec<_>>(),
            });
            anomalies.push((sentence, data));
        }
        violation(self.name(), None, anomalies, serde_json::Map::new())
    }
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use super::*;
    use ksim_model::event::OpType;

    #[test]
    fn a_retried_send_appended_twice_is_a_duplicate() {
        let mut h = HistoryBuilder::default();
        // The first attempt timed out (info) but was appended at 5; the retry landed at 6.
        h.send(0, OpType::Info, &tp(0), 42, 0)
            .send(0, OpType::Ok, &tp(0), 42, 6);
        h.poll(0, &tp(0), &[(5, 42), (6, 42)]);
        // Another value shows up in two partitions.
        h.send(1, OpType::Ok, &tp(0), 7, 7);
        h.poll(1, &tp(1), &[(0, 7)]);
        let v = check_history(&Duplicate, &h.entries);
        assert_eq!(v.len(), 1, "{v:?}");
        assert_eq!(v[0].check, "duplicate");
        assert_eq!(v[0].details["count"], 2);
        assert_eq!(
            v[0].message,
            "value 7 appears at 2 offsets: events-0 offset 7 (acknowledged to producer-1 at t=70 ms), \
             events-1 offset 0 (read by consumer-1 at t=90 ms) (1 more like this in details)"
        );
        assert_eq!(v[0].details["anomalies"][1]["value"], 42);
        assert_eq!(v[0].details["anomalies"][1]["positions"][0]["offset"], 5);
    }

    #[test]
    fn rereading_the_same_record_is_not_a_duplicate() {
        let mut h = HistoryBuilder::default();
        h.send(0, OpType::Ok, &tp(0), 1, 0)
            .send(0, OpType::Ok, &tp(0), 2, 1);
        h.poll(0, &tp(0), &[(0, 1), (1, 2)]);
        h.poll(1, &tp(0), &[(0, 1), (1, 2)]);
        assert!(check_history(&Duplicate, &h.entries).is_empty());
    }
}
