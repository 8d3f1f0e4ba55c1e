//! `exactly-once` for processors without a `transactional.id` (at-least-once mode): the same
//! promise judged on plain `poll`, `send` and `commit` operations.
//!
//! **Rule.** An at-least-once processor (`[[processors]]` without `transactional.id`) polls its
//! input, writes one output per input record, flushes, then commits the input positions with
//! `commitSync()`. Its output value is derived from the input value alone
//! ([`ksim_model::processor::at_least_once_output`]), so the outputs of an input are the
//! acknowledged sends of that value by the group's processors. For each group and input
//! partition, take the group's *final committed input offset* `c`: the offset of the last
//! commit acknowledged (`ok`) by the coordinator, in completion order, or, when commits of
//! unknown outcome (`info`, or never completed) that name the partition complete after it,
//! the lowest of those. Every input record below `c` (from the first offset the group read)
//! must have exactly one output: none means the group committed past a record it never wrote
//! out (lost), two or more at distinct offsets mean it was processed and written again.
//!
//! **Source.** KIP-98 and KIP-447 explain why this mode is *not* exactly-once: the outputs and
//! the offset commit are two writes, so a crash or a rebalance between them makes the next
//! owner process the inputs again (the consumer's documentation: "at-least-once" delivery
//! when committing after processing). This check is what makes that visible as a failure of
//! the exactly-once promise, as `at-least-once-pipeline` expects.
//!
//! **What is allowed.** An output of unknown outcome (`info` send) stands for a possible
//! output: an input with none acknowledged but one unknown is not judged lost. Records
//! removed on purpose (retention, compaction) and records at or above `c` are not judged.
//! Idempotent retries that the broker deduplicated have one offset and count once.

use super::{acked_sends, Removed};
use crate::history::{pairs, HistoryEntry};
use ksim_model::event::{OpType, OpValue};
use ksim_model::processor::at_least_once_output;
use ksim_model::types::{NodeId, Offset, TopicPartition};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};

/// The anomalies of at-least-once processors, as (sentence, data) pairs in a deterministic
/// order (group, partition, offset).
pub(crate) fn anomalies(history: &[HistoryEntry], removed: &Removed) -> Vec<(String, Value)> {
    let pairs = pairs(history);
    // Each processor process's group, from its OffsetFetch and commit operations; the
    // commits per group (at-least-once only: an exactly-once processor commits inside its
    // transactions and records no `commit` op, so its group has none here).
    let mut commits: BTreeMap<&str, Vec<(u64, OpType, &[ksim_model::event::CommitOffset])>> =
        BTreeMap::new();
    let mut group_of: BTreeMap<NodeId, &str> = BTreeMap::new();
    for p in &pairs {
        if !matches!(p.invoke.process, NodeId::Processor(_)) {
            continue;
        }
        if let OpValue::OffsetFetch { group, .. } = &p.invoke.op.value {
            group_of.insert(p.invoke.process, group.as_str());
        }
        if let OpValue::Commit { group, offsets, .. } = &p.invoke.op.value {
            group_of.insert(p.invoke.process, group.as_str());
            let order = p.completion.map_or(u64::MAX, |c| c.index);
            commits.entry(group.as_str()).or_default().push((
                order,
                p.outcome(),
                offsets.as_slice(),
            ));
        }
    }
    if commits.is_empty() {
        return Vec::new();
    }
    // Per group and input partition: offset -> value, from the group's polls.
    let mut polled: BTreeMap<(&str, &TopicPartition), BTreeMap<Offset, u64>> = BTreeMap::new();
    // Per group: output value -> (acknowledged offsets with where, unknown sends).
    let mut outputs: BTreeMap<(&str, u64), (BTreeSet<(String, Offset)>, usize)> = BTreeMap::new();
    for e in history {
        let Some(group) = group_of.get(&e.process).copied() else {
            continue;
        };
        if let (OpValue::Poll { records }, OpType::Ok) = (&e.op.value, e.op.op_type) {
            for r in records {
                polled
                    .entry((group, &r.tp))
                    .or_default()
                    .entry(r.offset)
                    .or_insert(r.value);
            }
        }
    }
    for p in &pairs {
        let Some(group) = group_of.get(&p.invoke.process).copied() else {
            continue;
        };
        let OpValue::Send { value, .. } = &p.invoke.op.value else {
            continue;
        };
        let slot = outputs.entry((group, *value)).or_default();
        match (p.outcome(), p.completion) {
            (OpType::Ok, Some(c)) => {
                if let OpValue::Send {
                    tp,
                    offset: Some(o),
                    ..
                } = &c.op.value
                {
                    slot.0.insert((tp.to_string(), *o));
                }
            }
            (OpType::Info, _) => slot.1 += 1,
            _ => {}
        }
    }
    // Acknowledged sends into the input partitions (by producers) are inputs too.
    let acked = acked_sends(history);
    let mut out = Vec::new();
    for (group, mut list) in commits {
        list.sort_by_key(|(order, _, _)| *order);
        let mut last: BTreeMap<&TopicPartition, Offset> = BTreeMap::new();
        let mut uncertain: BTreeMap<&TopicPartition, Offset> = BTreeMap::new();
        for (_, outcome, offsets) in &list {
            for o in offsets.iter() {
                match outcome {
                    OpType::Ok => {
                        last.insert(&o.tp, o.offset);
                        uncertain.remove(&o.tp);
                    }
                    OpType::Info => {
                        let u = uncertain.entry(&o.tp).or_insert(o.offset);
                        *u = (*u).min(o.offset);
                    }
                    _ => {}
                }
            }
        }
        for (tp, mut c) in last {
            if let Some(u) = uncertain.get(tp) {
                c = c.min(*u);
            }
            let Some(reads) = polled.get(&(group, tp)) else {
                continue;
            };
            let Some(first) = reads.keys().next().copied() else {
                continue;
            };
            let mut inputs = reads.clone();
            for s in acked.iter().filter(|s| &s.tp == tp) {
                if let Some(o) = s.offset {
                    inputs.entry(o).or_insert(s.value);
                }
            }
            for (o, v) in inputs.range(first..c) {
                if removed.excuses(tp, *o).is_some() {
                    continue;
                }
                let w = at_least_once_output(*v);
                let (written, unknown) = outputs
                    .get(&(group, w))
                    .map(|(w, u)| (w.iter().collect::<Vec<_>>(), *u))
                    .unwrap_or_default();
                let head = format!(
                    "input value {v} at {tp} offset {o}, below group {group}'s final committed \
                     offset {c} (at-least-once processors: no transactional.id)"
                );
                let sentence = match written.len() {
                    1 => continue,
                    0 if unknown > 0 => continue,
                    0 => format!("{head}, has no output: no processor wrote output value {w}"),
                    n => format!(
                        "{head}, was processed {n} times: output value {w} is at {}",
                        written
                            .iter()
                            .map(|(tp, o)| format!("{tp} offset {}", o.0))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                };
                out.push((
                    sentence,
                    json!({
                        "group": group, "tp": tp.to_string(), "offset": o.0, "value": v,
                        "committed_offset": c.0, "outputs": written.len(),
                        "output_value": w,
                        "output_offsets": written.iter()
                            .map(|(tp, o)| json!({"tp": tp, "offset": o.0}))
                            .collect::<Vec<_>>(),
                    }),
                ));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::exactly_once::ExactlyOnce;
    use super::super::testkit::*;
    use crate::history::HistoryEntry;
    use ksim_model::event::{ClientOp, CommitOffset, OpType, OpValue, PolledRecord};
    use ksim_model::processor::at_least_once_output;
    use ksim_model::types::{NodeId, Offset, TopicPartition};

    /// A hand-built at-least-once processor history.
    #[derive(Default)]
    struct Plain {
        entries: Vec<HistoryEntry>,
        next_id: u64,
    }

    impl Plain {
        fn op(&mut self, p: u32, op_type: OpType, op_id: u64, value: OpValue) {
            let index = self.entries.len() as u64;
            self.entries.push(HistoryEntry {
                index,
                time_ms: index * 10,
                process: NodeId::Processor(p),
                op: ClientOp {
                    op_type,
                    op_id,
                    value,
                    error: None,
                },
            });
        }

        fn pair(&mut self, p: u32, outcome: OpType, invoke: OpValue, done: OpValue) {
            self.next_id += 1;
            let id = self.next_id;
            self.op(p, OpType::Invoke, id, invoke);
            self.op(p, outcome, id, done);
        }

        /// The OffsetFetch a member sends after joining (it names the group).
        fn offset_fetch(&mut self, p: u32) {
            let fetch = OpValue::OffsetFetch {
                group: "etl".into(),
                offsets: vec![],
                coordinator: None,
            };
            self.pair(p, OpType::Ok, fetch.clone(), fetch);
        }

        fn poll(&mut self, p: u32, records: &[(i64, u64)]) {
            let records: Vec<PolledRecord> = records
                .iter()
                .map(|(o, v)| PolledRecord {
                    tp: tp(0),
                    offset: Offset(*o),
                    value: *v,
                })
                .collect();
            self.pair(
                p,
                OpType::Ok,
                OpValue::Poll { records: vec![] },
                OpValue::Poll { records },
            );
        }

        fn output(&mut self, p: u32, outcome: OpType, input: u64, offset: Option<i64>) {
            let send = |offset| OpValue::Send {
                tp: TopicPartition::new("results", 0),
                key: None,
                value: at_least_once_output(input),
                offset,
            };
            self.pair(p, outcome, send(None), send(offset.map(Offset)));
        }

        fn commit(&mut self, p: u32, outcome: OpType, offset: i64) {
            let commit = OpValue::Commit {
                group: "etl".into(),
                mode: "sync".into(),
                offsets: vec![CommitOffset {
                    tp: tp(0),
                    offset: Offset(offset),
                }],
                coordinator: None,
                generation: None,
                member_id: None,
            };
            self.pair(p, outcome, commit.clone(), commit);
        }
    }

    #[test]
    fn an_input_written_twice_or_never_is_not_exactly_once() {
        let mut h = Plain::default();
        h.offset_fetch(0);
        h.poll(0, &[(0, 1), (1, 2), (2, 3)]);
        h.output(0, OpType::Ok, 1, Some(0));
        h.output(0, OpType::Ok, 2, Some(1));
        // Crashed before committing: processor-1 takes over from offset 0 and writes 1 and 2
        // again; it never writes 3 but commits past it.
        h.offset_fetch(1);
        h.poll(1, &[(0, 1), (1, 2), (2, 3)]);
        h.output(1, OpType::Ok, 1, Some(2));
        h.output(1, OpType::Ok, 2, Some(3));
        h.commit(1, OpType::Ok, 3);
        let v = check_history(&ExactlyOnce, &h.entries);
        assert_eq!(v.len(), 1, "{v:?}");
        assert_eq!(v[0].details["count"], 3);
        assert!(
            v[0].message.starts_with(
                "input value 1 at events-0 offset 0, below group etl's final committed offset 3 \
                 (at-least-once processors: no transactional.id), was processed 2 times: output \
                 value 4611686018427387905 is at results-0 offset 0, results-0 offset 2"
            ),
            "{}",
            v[0].message
        );
        assert!(v[0].details["anomalies"][2]["message"]
            .as_str()
            .unwrap()
            .contains("has no output"));
    }

    #[test]
    fn one_output_per_input_passes_and_unknowns_are_not_judged() {
        let mut h = Plain::default();
        h.poll(0, &[(0, 1), (1, 2), (2, 3)]);
        h.output(0, OpType::Ok, 1, Some(0));
        // An idempotent retry acknowledged at the same offset counts once.
        h.output(0, OpType::Ok, 1, Some(0));
        h.output(0, OpType::Info, 2, None);
        h.output(0, OpType::Ok, 3, Some(1));
        h.commit(0, OpType::Ok, 3);
        // A commit that failed does not move the final committed offset.
        h.poll(0, &[(3, 4)]);
        h.commit(0, OpType::Fail, 4);
        assert!(check_history(&ExactlyOnce, &h.entries).is_empty());
    }
}
