//! The two logs a run writes, as Jepsen and the checkers read them.
//!
//! `history.jsonl` is the *client* view: one line per operation event, Jepsen-style. A client
//! first logs an `invoke`; later the same process logs exactly one completion with the same
//! `op_id`: `ok` (it happened, with its result), `fail` (it certainly did not happen) or `info`
//! (indeterminate, typically a timeout: it may or may not have happened). A run may end while an
//! operation is still open; such an invoke has no completion and is treated like `info`.
//!
//! `events.jsonl` is the *internal* view: what brokers, the controller and the coordination node
//! did (leaders elected, ISR changes, high-watermark moves, truncations), stamped with the
//! simulated time and the emitting node.
//!
//! Both are JSON Lines: one compact object per line, fields in a fixed order, so the same run
//! always writes byte-identical files. Nodes are written by their names (`broker-0`,
//! `producer-1`), as in scenarios and reports.

use ksim_model::event::{ClientOp, Event, OpType};
use ksim_model::types::NodeId;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One line of `history.jsonl` (a Jepsen op): `index` (0, 1, ...), `time_ms` (simulated),
/// `process` (the client's node name, e.g. `"producer-0"`), then the [`ClientOp`] fields
/// flattened (`type`, `op_id`, `f`, the value fields, `error`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryEntry {
    pub index: u64,
    pub time_ms: u64,
    #[serde(with = "node_name")]
    pub process: NodeId,
    #[serde(flatten)]
    pub op: ClientOp,
}

/// One line of `events.jsonl`: the simulated time, the emitting node's name, then the
/// [`Event`] fields flattened (`kind`, ...).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventRecord {
    pub time_ms: u64,
    #[serde(with = "node_name")]
    pub node: NodeId,
    #[serde(flatten)]
    pub event: Event,
}

/// Serializes a [`NodeId`] as its `Display` name (`"broker-0"`) and parses it back.
mod node_name {
    use ksim_model::types::NodeId;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(node: &NodeId, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(node)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<NodeId, D::Error> {
        let name = String::deserialize(deserializer)?;
        NodeId::parse(&name).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "unknown node name {name:?} (expected zk, broker-N, producer-N or consumer-N)"
            ))
        })
    }
}

/// Writes one compact JSON object per item, each followed by a newline.
pub fn to_jsonl<T: Serialize>(items: &[T]) -> String {
    let mut out = String::new();
    for item in items {
        // The logged types have string keys only and no custom serializers that can fail, so
        // an error here is a programmer error.
        let line = serde_json::to_string(item).expect("history and event records serialize");
        debug_assert!(!line.contains('\n'));
        out.push_str(&line);
        out.push('\n');
    }
    out
}

/// Parses JSON Lines; blank lines are skipped. The error names the 1-based line number.
pub fn from_jsonl<T: DeserializeOwned>(text: &str) -> Result<Vec<T>, String> {
    let mut items = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let item = serde_json::from_str(line).map_err(|e| format!("line {}: {e}", i + 1))?;
        items.push(item);
    }
    Ok(items)
}

/// An invoke and the completion that answered it (`None`: the run ended first, which the
/// checkers treat like `info`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpPair<'a> {
    pub invoke: &'a HistoryEntry,
    pub completion: Option<&'a HistoryEntry>,
}

impl OpPair<'_> {
    /// The outcome: `Ok`, `Fail` or `Info` (also for an op the run never completed).
    pub fn outcome(&self) -> OpType {
        match self.completion {
            Some(c) => c.op.op_type,
            None => OpType::Info,
        }
    }
}

/// A client history, in log order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct History {
    pub ops: Vec<HistoryEntry>,
}

impl History {
    pub fn new(ops: Vec<HistoryEntry>) -> History {
        History { ops }
    }

    /// Every invoke paired with its completion, in invoke order.
    pub fn pairs(&self) -> Vec<OpPair<'_>> {
        pairs(&self.ops)
    }
}

/// Pairs each invoke with the next completion logged by the same process with the same
/// `op_id`, in invoke order. A completion with no open invoke (a malformed history) is ignored:
/// checkers must not panic on a history read back from a file.
pub fn pairs(ops: &[HistoryEntry]) -> Vec<OpPair<'_>> {
    let mut result: Vec<OpPair<'_>> = Vec::new();
    // (process, op_id) -> position in `result` of the open invoke.
    let mut open: BTreeMap<(NodeId, u64), usize> = BTreeMap::new();
    for entry in ops {
        let key = (entry.process, entry.op.op_id);
        match entry.op.op_type {
            OpType::Invoke => {
                open.insert(key, result.len());
                result.push(OpPair {
                    invoke: entry,
                    completion: None,
                });
            }
            OpType::Ok | OpType::Fail | OpType::Info => {
                if let Some(i) = open.remove(&key) {
                    debug_assert!(result[i].completion.is_none());
                    result[i].completion = Some(entry);
                }
            }
        }
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use ksim_model::event::{OpValue, PolledRecord};
    use ksim_model::types::{BrokerId, LeaderEpoch, Offset, TopicPartition};

    fn send(
        index: u64,
        process: NodeId,
        op_type: OpType,
        op_id: u64,
        offset: Option<i64>,
    ) -> HistoryEntry {
        HistoryEntry {
            index,
            time_ms: index * 10,
            process,
            op: ClientOp {
                op_type,
                op_id,
                value: OpValue::Send {
                    tp: TopicPartition::new("events", 1),
                    key: Some("k3".into()),
                    value: 4294967302,
                    offset: offset.map(Offset),
                },
                error: None,
            },
        }
    }

    #[test]
    fn history_entry_round_trips_with_flat_fields() {
        let mut entries = vec![
            send(0, NodeId::Producer(0), OpType::Invoke, 7, None),
            send(1, NodeId::Producer(0), OpType::Ok, 7, Some(17)),
            HistoryEntry {
                index: 2,
                time_ms: 30,
                process: NodeId::Consumer(1),
                op: ClientOp {
                    op_type: OpType::Ok,
                    op_id: 0,
                    value: OpValue::Poll {
                        records: vec![PolledRecord {
                            tp: TopicPartition::new("events", 1),
                            offset: Offset(17),
                            value: u64::MAX,
                        }],
                    },
                    error: None,
                },
            },
        ];
        let mut timed_out = send(3, NodeId::Producer(0), OpType::Info, 8, None);
        timed_out.op.error = Some("request-timed-out".into());
        entries.push(timed_out);

        let text = to_jsonl(&entries);
        assert_eq!(text.lines().count(), 4);
        assert!(text.ends_with('\n'));
        let first = text.lines().nth(1).unwrap();
        assert!(first.starts_with(
            r#"{"index":1,"time_ms":10,"process":"producer-0","type":"ok","op_id":7,"f":"send","#
        ));
        assert!(first.contains(r#""offset":17"#));
        assert!(!first.contains("error"));
        assert!(text.contains(r#""error":"request-timed-out""#));

        let back: Vec<HistoryEntry> = from_jsonl(&text).unwrap();
        assert_eq!(back, entries);
    }

    #[test]
    fn event_record_round_trips_and_bad_lines_are_named() {
        let records = vec![EventRecord {
            time_ms: 5230,
            node: NodeId::Broker(BrokerId(2)),
            event: Event::HighWatermarkChanged {
                tp: TopicPartition::new("events", 0),
                broker: BrokerId(2),
                leader_epoch: LeaderEpoch(3),
                high_watermark: Offset(40),
            },
        }];
        let text = to_jsonl(&records);
        assert!(text
            .starts_with(r#"{"time_ms":5230,"node":"broker-2","kind":"high-watermark-changed","#));
        assert_eq!(
            from_jsonl::<EventRecord>(&format!("\n{text}\n")).unwrap(),
            records
        );

        let bad = text.replace("broker-2", "kafka-2");
        let err = from_jsonl::<EventRecord>(&bad).unwrap_err();
        assert!(err.starts_with("line 1:"), "{err}");
    }

    #[test]
    fn pairs_match_invokes_to_completions_by_process_and_op_id() {
        let p0 = NodeId::Producer(0);
        let p1 = NodeId::Producer(1);
        let history = History::new(vec![
            send(0, p0, OpType::Invoke, 1, None),
            send(1, p1, OpType::Invoke, 1, None),
            send(2, p1, OpType::Fail, 1, None),
            send(3, p0, OpType::Ok, 1, Some(0)),
            send(4, p0, OpType::Invoke, 2, None),
            // A stray completion with no invoke is ignored.
            send(5, p1, OpType::Ok, 9, Some(1)),
        ]);
        let pairs = history.pairs();
        assert_eq!(pairs.len(), 3);
        assert_eq!(pairs[0].invoke.index, 0);
        assert_eq!(pairs[0].completion.map(|c| c.index), Some(3));
        assert_eq!(pairs[0].outcome(), OpType::Ok);
        assert_eq!(pairs[1].completion.map(|c| c.index), Some(2));
        assert_eq!(pairs[1].outcome(), OpType::Fail);
        assert_eq!(pairs[2].completion, None);
        assert_eq!(pairs[2].outcome(), OpType::Info);
    }
}
