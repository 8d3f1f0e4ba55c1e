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
use super::{violation, CheckInput, Checker, ObsKey, ObservationKeys, Source, Violation};
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
        let ObservationKeys { tps, mut keys } = ObservationKeys::of(input.history);
        // By position, then value, then history order.
        keys.sort_unstable_by_key(|k| (k.tp, k.offset, k.value, k.seq));
        // Per position holding two values or more: the first observation of each value there,
        // in value order.
        let mut found: Vec<Vec<ObsKey>> = Vec::new();
        for run in keys.chunk_by(|a, b| (a.tp, a.offset) == (b.tp, b.offset)) {
            if run.iter().all(|k| k.value == run[0].value) {
                continue;
            }
            let mut seen: Vec<ObsKey> = Vec::new();
            for k in run {
                if seen.last().is_none_or(|s| s.value != k.value) {
                    seen.push(*k);
                }
            }
            found.push(seen);
        }
        let mut seqs: Vec<usize> = found.iter().flatten().map(|k| k.seq).collect();
        seqs.sort_unstable();
        seqs.dedup();
        let sources = ObservationKeys::sources(input.history, &seqs);
        let source = |k: &ObsKey| {
            sources[seqs
                .binary_search(&k.seq)
                .expect("every source was fetched")]
        };
        let mut anomalies = Vec::new();
        for seen in &found {
            let (tp, offset) = (&tps[seen[0].tp as usize], seen[0].offset);
            let seen: Vec<(u64, Source)> = seen.iter().map(|k| (k.value, source(k))).collect();
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
