//! `inconsistent-offsets`: one offset holds two or more different values.
//!
//! **Definition.** A partition's log is a sequence: offset `o` names one record, forever. This
//! check gathers, for every (partition, offset), the values clients saw there, from `ok` send
//! acknowledgements and from `ok` polls, and reports every position that maps to two or more
//! distinct values. It means clients disagree about the log's contents: the leader that
//! acknowledged (or served) one value was later replaced by a replica whose log diverged at that
//! offset, and the committed prefix was rewritten. Kafka's answer is truncation by leader epoch
//! (KIP-101, KIP-279, KIP-320); the high-watermark truncation it replaced loses exactly here.
//!
//! **Source.** Jepsen's Kafka checker (`jepsen/src/jepsen/tests/kafka.clj`): version orders are
//! built from sends and polls, and an offset with several values is reported as
//! `inconsistent-offsets` ("a single offset in some key's log contained multiple values"). As in
//! Jepsen, only completions that definitely happened (`ok`) contribute offsets.
//!
//! **What is allowed.** A consumer may read data that is later truncated only if it read above
//! the high watermark, which a Kafka consumer never does (it reads up to the HW, or the LSO
//! under `read_committed`); so no disagreement below what clients saw is allowed. Sends that
//! completed `info` or `fail` carry no offset and cannot conflict.

use super::lesson::{self, Lesson, Prevention};
use super::{observations, violation, CheckInput, Checker, Source, Violation};
use serde_json::json;

/// See the module documentation.
pub struct InconsistentOffsets;

impl Checker for InconsistentOffsets {
    fn name(&self) -> &'static str {
        "inconsistent-offsets"
    }

    fn statement(&self) -> &'static str {
        "no offset holds two different values"
    }

    fn lesson(&self) -> Lesson {
        Lesson {
            intro: lesson::OFFSET_REUSED,
            prevention: Prevention::Loss,
        }
    }

    fn check(&self, input: &CheckInput) -> Vec<Violation> {
        let obs = observations(input.history);
        // The partitions in order, so that an observation's key is plain numbers.
        let mut tps: std::collections::BTreeSet<&ksim_model::types::TopicPartition> =
            std::collections::BTreeSet::new();
        let mut last = None;
        for o in &obs {
            if last != Some(&o.tp) {
                tps.insert(&o.tp);
                last = Some(&o.tp);
            }
        }
        let tps: Vec<&ksim_model::types::TopicPartition> = tps.into_iter().collect();
        // (partition, offset, value, observation number): by position, then value, then
        // history order.
        let mut keys: Vec<(usize, i64, u64, usize)> = obs
            .iter()
            .enumerate()
            .map(|(i, o)| {
                let tp = tps
                    .binary_search(&&o.tp)
                    .expect("every partition is listed");
                (tp, o.offset.0, o.value, i)
            })
            .collect();
        keys.sort_unstable();
        let mut anomalies = Vec::new();
        for run in keys.chunk_by(|a, b| (a.0, a.1) == (b.0, b.1)) {
            if run.iter().all(|k| k.2 == run[0].2) {
                continue;
            }
            let same_offset: Vec<&super::Observation> = run.iter().map(|k| &obs[k.3]).collect();
            let (tp, offset) = (&same_offset[0].tp, same_offset[0].offset);
            // Value -> first observation of it there, in value order.
            let mut seen: Vec<(u64, Source)> = Vec::new();
            for o in same_offset {
                if seen.last().is_none_or(|(value, _)| *value != o.value) {
                    seen.push((o.value, o.source));
                }
            }
            let which: Vec<String> = seen
                .iter()
                .map(|(value, source)| format!("{value} ({})", source.describe()))
                .collect();
            let sentence = format!(
                "{tp} offset {offset} holds {} different values: {}",
                seen.len(),
                which.join(", ")
            );
            let data = json!({
                "tp": tp.to_string(),
                "offset": offset.0,
                "values": seen
                    .iter()
                    .map(|(value, source)| json!({ "value": value, "first_seen": source.to_json() }))
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
    fn two_values_at_one_offset_are_inconsistent() {
        let mut h = HistoryBuilder::default();
        h.send(0, OpType::Ok, &tp(0), 10, 3);
        // The old leader served 10 at 3; after a divergent failover 11 was written there.
        h.poll(0, &tp(0), &[(3, 10)]);
        h.send(1, OpType::Ok, &tp(0), 11, 3);
        h.poll(1, &tp(0), &[(3, 11), (4, 12)]);
        h.poll(2, &tp(0), &[(4, 13)]);
        let v = check_history(&InconsistentOffsets, &h.entries);
        assert_eq!(v.len(), 1, "{v:?}");
        assert_eq!(v[0].check, "inconsistent-offsets");
        assert_eq!(v[0].details["count"], 2);
        assert_eq!(
            v[0].message,
            "events-0 offset 3 holds 2 different values: 10 (acknowledged to producer-0 at t=10 ms), \
             11 (acknowledged to producer-1 at t=50 ms) (1 more like this in details)"
        );
        assert_eq!(v[0].details["anomalies"][1]["offset"], 4);
    }

    #[test]
    fn agreeing_acks_and_reads_and_indeterminate_sends_are_consistent() {
        let mut h = HistoryBuilder::default();
        h.send(0, OpType::Ok, &tp(0), 10, 3)
            .send(0, OpType::Info, &tp(0), 11, 3);
        h.poll(0, &tp(0), &[(3, 10)]);
        h.poll(1, &tp(0), &[(3, 10)]);
        // The same offset in another partition is another position.
        h.poll(1, &tp(1), &[(3, 12)]);
        assert!(check_history(&InconsistentOffsets, &h.entries).is_empty());
    }
}
