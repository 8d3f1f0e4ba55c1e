//! `exactly-once`: every input record a processor group committed past has exactly one output
//! in the committed output.
//!
//! **Rule.** A processor (consume-transform-produce) runs transactions whose `poll`
//! micro-operation is its input, whose `send`s are the outputs, and which commit the input
//! positions with the output (`sendOffsetsToTransaction`: the transaction's `group` and
//! `offsets`). For each group and input partition, take the group's *final committed input
//! offset* `c`: the offset committed by the last committed (`ok`) transaction, in completion
//! order, or, when transactions of unknown outcome (`info`, or never completed) that commit the
//! partition complete after it, the lowest of those (any of them may have landed). Every input
//! record below `c` (a record acknowledged to a producer there, or read there by the group)
//! must have been read by exactly one committed transaction of the group: its outputs are in
//! the committed output once. None: the group committed past a record it never processed
//! (lost; KAFKA-17582, a processor that does not rewind after an abort). Two or more: it was
//! processed and committed twice (a zombie whose transaction was not fenced, or offsets
//! committed outside the transaction). Aborted (`fail`) transactions' outputs are never counted:
//! read_committed consumers never see them.
//!
//! **Source.** KIP-98 and KIP-447: a transaction that commits the consumer's offsets together
//! with its output makes consume-transform-produce exactly-once (each input offset's output is
//! committed once, together with that offset); TxnOffsetCommit carries the group generation so
//! a zombie member is fenced (ILLEGAL_GENERATION). GROUPS-AND-TRANSACTIONS.md B4.5.
//!
//! **What is allowed.** Records below the first offset the group ever read in the partition
//! (where `auto.offset.reset` put it), records removed on purpose (see [`super::Removed`]), and
//! records at or above `c` are not judged. A record whose only processing is in a transaction
//! of unknown outcome is not judged (it may have committed).
//!
//! **Processors without a `transactional.id`** (at-least-once mode) are judged by the same
//! rule on their plain `poll`, `send` and `commit` operations: see
//! [`super::exactly_once_plain`]. Their duplicates fail this check, which is the point: that
//! mode promises at-least-once, not exactly-once.

use super::lesson::{Lesson, Prevention};
use super::txn::{txns, Txn};
use super::{acked_sends, violation, CheckInput, Checker, Removed, Violation};
use ksim_model::event::{OpType, OpValue};
use ksim_model::types::{NodeId, Offset, TopicPartition};
use serde_json::json;
use std::collections::BTreeMap;

/// See the module documentation.
pub struct ExactlyOnce;

impl Checker for ExactlyOnce {
    fn name(&self) -> &'static str {
        "exactly-once"
    }

    fn statement(&self) -> &'static str {
        "every input record a processor group committed past has exactly one committed output"
    }

    fn lesson(&self) -> Lesson {
        Lesson {
            intro: "A consume-transform-produce processor did not process an input record \
                    exactly once: its group committed past the record with no committed output \
                    for it, or two committed transactions both produced its output.",
            prevention: Prevention::ExactlyOnce,
        }
    }

    fn skip_reason(&self, input: &CheckInput) -> Option<String> {
        let any = txns(input.history).iter().any(|t| t.group.is_some())
            || input.history.iter().any(|e| {
                matches!(e.process, NodeId::Processor(_))
                    && matches!(e.op.value, OpValue::Commit { .. })
            });
        (!any).then(|| {
            "no processor committed input offsets (in a transaction with \
             `sendOffsetsToTransaction`, or with `commitSync()` after its outputs), so no input \
             can be judged exactly-once"
                .to_string()
        })
    }

    fn check(&self, input: &CheckInput) -> Vec<Violation> {
        let txns = txns(input.history);
        let removed = Removed::from_events(input.events);
        // Per group, its transactions in completion order (never completed: last).
        let mut by_group: BTreeMap<&str, Vec<&Txn>> = BTreeMap::new();
        for t in &txns {
            if let Some(g) = t.group {
                by_group.entry(g).or_default().push(t);
            }
        }
        let acked = acked_sends(input.history);
        let mut anomalies = Vec::new();
        for (group, mut list) in by_group {
            list.sort_by_key(|t| t.completion.map_or(u64::MAX, |c| c.index));
            // Final committed offset per input partition, with the transaction that set it.
            let mut last: BTreeMap<&TopicPartition, (Offset, &Txn)> = BTreeMap::new();
            let mut uncertain: BTreeMap<&TopicPartition, Vec<(Offset, usize)>> = BTreeMap::new();
            for (i, t) in list.iter().enumerate() {
                for o in t.offsets {
                    match t.outcome {
                        OpType::Ok => {
                            last.insert(&o.tp, (o.offset, *t));
                            uncertain.remove(&o.tp);
                        }
                        OpType::Info => uncertain.entry(&o.tp).or_default().push((o.offset, i)),
                        _ => {}
                    }
                }
            }
            for (tp, (mut c, setter)) in last {
                if let Some(u) = uncertain.get(tp) {
                    c = u.iter().map(|(o, _)| *o).fold(c, Offset::min);
                }
                // The input records below `c`: offset -> value.
                let mut inputs: BTreeMap<Offset, u64> = BTreeMap::new();
                let mut first_read: Option<Offset> = None;
                for t in &list {
                    for (ptp, o, v) in &t.polls {
                        if *ptp == tp {
                            inputs.entry(*o).or_insert(*v);
                            first_read = Some(first_read.map_or(*o, |f| f.min(*o)));
                        }
                    }
                }
                for s in acked.iter().filter(|s| &s.tp == tp) {
                    if let Some(o) = s.offset {
                        inputs.entry(o).or_insert(s.value);
                    }
                }
                let Some(first) = first_read else { continue };
                // value -> the group's transactions that read it in `tp`.
                let mut read_by: BTreeMap<u64, Vec<&Txn>> = BTreeMap::new();
                for t in &list {
                    for (ptp, _, v) in &t.polls {
                        if *ptp == tp {
                            let l = read_by.entry(*v).or_default();
                            if !l.iter().any(|x| std::ptr::eq(*x, *t)) {
                                l.push(t);
                            }
                        }
                    }
                }
                for (o, v) in inputs.range(first..c) {
                    if removed.excuses(tp, *o).is_some() {
                        continue;
                    }
                    let readers = |outcome: OpType| -> Vec<&Txn> {
                        read_by
                            .get(v)
                            .map(|l| l.iter().copied().filter(|t| t.outcome == outcome).collect())
                            .unwrap_or_default()
                    };
                    let ok = readers(OpType::Ok);
                    let head = format!(
                        "input value {v} at {tp} offset {o}, below group {group}'s final committed \
                         offset {c} (committed by {})",
                        setter.describe()
                    );
                    let outputs = |t: &Txn| -> String {
                        let values: Vec<String> =
                            t.sends.iter().map(|(_, v, _)| v.to_string()).collect();
                        format!("{} (output values [{}])", t.describe(), values.join(", "))
                    };
                    let sentence = match ok.len() {
                        1 => continue,
                        0 if !readers(OpType::Info).is_empty() => continue,
                        0 => format!("{head}, has no committed output: no committed transaction of the group read it"),
                        n => format!(
                            "{head}, has {n} committed outputs: {}",
                            ok.iter().map(|t| outputs(t)).collect::<Vec<_>>().join("; ")
                        ),
                    };
                    anomalies.push((
                        sentence,
                        json!({
                            "group": group, "tp": tp.to_string(), "offset": o.0, "value": v,
                            "committed_offset": c.0, "outputs": ok.len(),
                            "txns": ok.iter().map(|t| t.to_json()).collect::<Vec<_>>(),
                        }),
                    ));
                }
            }
        }
        anomalies.extend(super::exactly_once_plain::anomalies(
            input.history,
            &removed,
        ));
        violation(self.name(), None, anomalies, serde_json::Map::new())
    }
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use super::*;
    use ksim_model::types::NodeId;

    /// Processor `p` (transactional id `etl-p`) runs one transaction of group `etl`: it read
    /// `input` from events-0, wrote `output` to events-1 and committed input offset `commit`.
    fn process(
        h: &mut HistoryBuilder,
        p: u32,
        outcome: OpType,
        input: &[(i64, u64)],
        output: &[u64],
        commit: i64,
    ) {
        let node = NodeId::Consumer(10 + p);
        let tid = format!("etl-{p}");
        let id = h.txn_begin(node, &tid);
        let mut mops = vec![tpoll(&tp(0), input)];
        mops.extend(output.iter().map(|v| tsend(&tp(1), *v, -1)));
        h.txn_end(
            node,
            id,
            outcome,
            &tid,
            (20 + p as i64, 0),
            mops,
            Some("etl"),
            &[(tp(0), commit)],
        );
    }

    #[test]
    fn a_skipped_or_twice_committed_input_is_not_exactly_once() {
        let mut h = HistoryBuilder::default();
        for (o, v) in [(0, 1), (1, 2), (2, 3), (3, 4)] {
            h.send(0, OpType::Ok, &tp(0), v, o);
        }
        process(&mut h, 0, OpType::Ok, &[(0, 1)], &[101], 1);
        // An aborted transaction read 2; the processor did not rewind (KAFKA-17582).
        process(&mut h, 0, OpType::Fail, &[(1, 2)], &[102], 2);
        process(&mut h, 0, OpType::Ok, &[(2, 3)], &[103], 3);
        // A zombie (processor-1 took over) committed 3 again.
        process(&mut h, 1, OpType::Ok, &[(2, 3), (3, 4)], &[203, 204], 4);
        let v = check_history(&ExactlyOnce, &h.entries);
        assert_eq!(v.len(), 1, "{v:?}");
        assert_eq!(v[0].details["count"], 2);
        assert!(
            v[0].message.starts_with(
                "input value 2 at events-0 offset 1, below group etl's final committed offset 4 \
                 (committed by consumer-11's transaction 7"
            ),
            "{}",
            v[0].message
        );
        assert!(v[0].message.contains("has no committed output"));
        assert_eq!(v[0].details["anomalies"][1]["value"], 3);
        assert_eq!(v[0].details["anomalies"][1]["outputs"], 2);
    }

    #[test]
    fn each_input_committed_once_passes_and_aborts_do_not_count() {
        let mut h = HistoryBuilder::default();
        for (o, v) in [(0, 1), (1, 2), (2, 3)] {
            h.send(0, OpType::Ok, &tp(0), v, o);
        }
        process(&mut h, 0, OpType::Ok, &[(0, 1)], &[101], 1);
        process(&mut h, 0, OpType::Fail, &[(1, 2)], &[102], 2);
        // Rewound after the abort: read 2 again.
        process(&mut h, 0, OpType::Ok, &[(1, 2), (2, 3)], &[102, 103], 3);
        // Input 3 committed past only by a transaction of unknown outcome: not judged.
        process(&mut h, 0, OpType::Info, &[(3, 4)], &[104], 4);
        assert!(check_history(&ExactlyOnce, &h.entries).is_empty());
    }
}
