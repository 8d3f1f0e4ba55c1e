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

use ksim_model::event::{ClientOp, Event, OpType, OpValue};
use ksim_model::types::{NodeId, TopicPartition};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::{self, Write as _};

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

/// Writes what [`to_jsonl`] returns into `out`, one line at a time through a buffer, without
/// holding the whole text in memory.
pub fn write_jsonl<T: Serialize, W: io::Write>(out: W, items: &[T]) -> io::Result<()> {
    let mut out = io::BufWriter::with_capacity(1 << 16, out);
    for item in items {
        serde_json::to_writer(&mut out, item).map_err(io::Error::other)?;
        out.write_all(b"\n")?;
    }
    out.flush()
}

/// Writes `history.jsonl` into `out`: byte for byte what [`to_jsonl`] returns for `entries`,
/// several times faster. The `send` and `poll` operations that make up most of a history are
/// written directly; every other operation goes through serde.
pub fn write_history_jsonl<W: io::Write>(mut out: W, entries: &[HistoryEntry]) -> io::Result<()> {
    let mut buf: Vec<u8> = Vec::with_capacity(1 << 16);
    let mut tps = TpCache::default();
    for entry in entries {
        push_history_line(&mut buf, &mut tps, entry);
        if buf.len() >= 1 << 16 {
            out.write_all(&buf)?;
            buf.clear();
        }
    }
    out.write_all(&buf)?;
    out.flush()
}

/// Appends one line of `history.jsonl` (with its newline) to `buf`, as serde_json writes the
/// derived `Serialize` of [`HistoryEntry`]: `index`, `time_ms`, `process`, then the flattened
/// [`ClientOp`] (`type`, `op_id`, the operation's tag `f` and fields, `error` when set).
fn push_history_line(buf: &mut Vec<u8>, tps: &mut TpCache, entry: &HistoryEntry) {
    let op = &entry.op;
    let f: &[u8] = match &op.value {
        OpValue::Send { .. } => b"send",
        OpValue::Poll { .. } => b"poll",
        _ => {
            serde_json::to_writer(&mut *buf, entry).expect("history records serialize");
            buf.push(b'\n');
            return;
        }
    };
    buf.extend_from_slice(b"{\"index\":");
    push_u64(buf, entry.index);
    buf.extend_from_slice(b",\"time_ms\":");
    push_u64(buf, entry.time_ms);
    buf.extend_from_slice(b",\"process\":\"");
    push_node(buf, entry.process);
    buf.extend_from_slice(match op.op_type {
        OpType::Invoke => b"\",\"type\":\"invoke\",\"op_id\":",
        OpType::Ok => b"\",\"type\":\"ok\",\"op_id\":",
        OpType::Fail => b"\",\"type\":\"fail\",\"op_id\":",
        OpType::Info => b"\",\"type\":\"info\",\"op_id\":",
    });
    push_u64(buf, op.op_id);
    buf.extend_from_slice(b",\"f\":\"");
    buf.extend_from_slice(f);
    buf.push(b'"');
    match &op.value {
        OpValue::Send {
            tp,
            key,
            value,
            offset,
        } => {
            buf.extend_from_slice(b",\"tp\":");
            tps.push(buf, tp);
            buf.extend_from_slice(b",\"key\":");
            match key {
                Some(k) => push_str(buf, k),
                None => buf.extend_from_slice(b"null"),
            }
            buf.extend_from_slice(b",\"value\":");
            push_u64(buf, *value);
            buf.extend_from_slice(b",\"offset\":");
            match offset {
                Some(o) => push_i64(buf, o.0),
                None => buf.extend_from_slice(b"null"),
            }
        }
        OpValue::Poll { records } => {
            buf.extend_from_slice(b",\"records\":[");
            for (i, r) in records.iter().enumerate() {
                if i > 0 {
                    buf.push(b',');
                }
                buf.extend_from_slice(b"{\"tp\":");
                tps.push(buf, &r.tp);
                buf.extend_from_slice(b",\"offset\":");
                push_i64(buf, r.offset.0);
                buf.extend_from_slice(b",\"value\":");
                push_u64(buf, r.value);
                buf.push(b'}');
            }
            buf.push(b']');
        }
        _ => unreachable!("only send and poll are written directly"),
    }
    if let Some(error) = &op.error {
        buf.extend_from_slice(b",\"error\":");
        push_str(buf, error);
    }
    buf.extend_from_slice(b"}\n");
}

/// A JSON string, escaped as serde_json escapes it.
fn push_str(buf: &mut Vec<u8>, s: &str) {
    // serde_json escapes `"`, `\\` and the control characters only.
    if s.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        buf.push(b'"');
        buf.extend_from_slice(s.as_bytes());
        buf.push(b'"');
    } else {
        serde_json::to_writer(&mut *buf, s).expect("a string serializes");
    }
}

fn push_u64(buf: &mut Vec<u8>, n: u64) {
    serde_json::to_writer(&mut *buf, &n).expect("a number serializes");
}

fn push_i64(buf: &mut Vec<u8>, n: i64) {
    serde_json::to_writer(&mut *buf, &n).expect("a number serializes");
}

/// The JSON of the partitions written so far (a run has a handful), to copy rather than
/// write again.
#[derive(Default)]
struct TpCache {
    tps: Vec<(TopicPartition, Vec<u8>)>,
    /// The index in `tps` of the partition written last.
    last: usize,
}

impl TpCache {
    /// At most this many partitions are kept.
    const MAX: usize = 256;

    /// Appends `tp` as [`push_tp`] writes it.
    fn push(&mut self, buf: &mut Vec<u8>, tp: &TopicPartition) {
        if self.tps.get(self.last).is_none_or(|(t, _)| t != tp) {
            match self.tps.iter().position(|(t, _)| t == tp) {
                Some(i) => self.last = i,
                None if self.tps.len() < Self::MAX => {
                    let mut json = Vec::new();
                    push_tp(&mut json, tp);
                    self.tps.push((tp.clone(), json));
                    self.last = self.tps.len() - 1;
                }
                None => return push_tp(buf, tp),
            }
        }
        buf.extend_from_slice(&self.tps[self.last].1);
    }
}

/// `{"topic":"events","partition":1}`.
fn push_tp(buf: &mut Vec<u8>, tp: &TopicPartition) {
    buf.extend_from_slice(b"{\"topic\":");
    push_str(buf, tp.topic.as_str());
    buf.extend_from_slice(b",\"partition\":");
    push_i64(buf, tp.partition.into());
    buf.push(b'}');
}

/// A node's `Display` name (`producer-1`), without quotes: names need no escaping.
fn push_node(buf: &mut Vec<u8>, node: NodeId) {
    let (prefix, n): (&[u8], i64) = match node {
        NodeId::Zk => {
            buf.extend_from_slice(b"zk");
            return;
        }
        NodeId::Broker(b) => (b"broker-", b.0.into()),
        NodeId::Producer(n) => (b"producer-", n.into()),
        NodeId::Consumer(n) => (b"consumer-", n.into()),
        NodeId::Processor(n) => (b"processor-", n.into()),
    };
    buf.extend_from_slice(prefix);
    push_i64(buf, n);
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
    let mut open: OpenOps<usize> = OpenOps::new(ops.len());
    for entry in ops {
        match entry.op.op_type {
            OpType::Invoke => {
                open.insert(entry.process, entry.op.op_id, result.len());
                result.push(OpPair {
                    invoke: entry,
                    completion: None,
                });
            }
            OpType::Ok | OpType::Fail | OpType::Info => {
                if let Some(i) = open.remove(entry.process, entry.op.op_id) {
                    debug_assert!(result[i].completion.is_none());
                    result[i].completion = Some(entry);
                }
            }
        }
    }
    result
}

/// A map keyed by (process, `op_id`), for the open operations of a history: a slot per op id
/// in one vector per process (clients number their operations upwards from 0 or 1, so the
/// slots are dense), and an ordinary map for an op id too far beyond the history's length to
/// keep a slot for (only a malformed history read back from a file has one).
#[derive(Debug)]
pub(crate) struct OpenOps<V> {
    /// Per process seen so far, its slots indexed by op id.
    procs: Vec<(NodeId, Vec<Option<V>>)>,
    /// The index in `procs` of the process looked up last.
    last: usize,
    /// Op ids at or above `limit`.
    far: BTreeMap<(NodeId, u64), V>,
    limit: u64,
}

impl<V> OpenOps<V> {
    /// An empty map for a history of `len` entries.
    pub(crate) fn new(len: usize) -> OpenOps<V> {
        OpenOps {
            procs: Vec::new(),
            last: 0,
            far: BTreeMap::new(),
            limit: (len as u64).saturating_mul(4).saturating_add(1024),
        }
    }

    fn slots(&mut self, process: NodeId) -> &mut Vec<Option<V>> {
        if self.procs.get(self.last).is_none_or(|(p, _)| *p != process) {
            self.last = match self.procs.iter().position(|(p, _)| *p == process) {
                Some(i) => i,
                None => {
                    self.procs.push((process, Vec::new()));
                    self.procs.len() - 1
                }
            };
        }
        &mut self.procs[self.last].1
    }

    /// Sets the value of (`process`, `op_id`), returning the one it replaces.
    pub(crate) fn insert(&mut self, process: NodeId, op_id: u64, value: V) -> Option<V> {
        if op_id >= self.limit {
            return self.far.insert((process, op_id), value);
        }
        let slots = self.slots(process);
        let i = op_id as usize;
        if slots.len() <= i {
            slots.resize_with(i + 1, || None);
        }
        slots[i].replace(value)
    }

    /// Takes the value of (`process`, `op_id`) out, if set.
    pub(crate) fn remove(&mut self, process: NodeId, op_id: u64) -> Option<V> {
        if op_id >= self.limit {
            return self.far.remove(&(process, op_id));
        }
        self.slots(process)
            .get_mut(op_id as usize)
            .and_then(Option::take)
    }

    /// The value of (`process`, `op_id`), if set.
    pub(crate) fn get(&mut self, process: NodeId, op_id: u64) -> Option<&V> {
        if op_id >= self.limit {
            return self.far.get(&(process, op_id));
        }
        self.slots(process)
            .get(op_id as usize)
            .and_then(Option::as_ref)
    }

    /// What is left, in (process, op id) order.
    pub(crate) fn into_sorted(self) -> Vec<((NodeId, u64), V)> {
        let mut left: Vec<((NodeId, u64), V)> = self.far.into_iter().collect();
        for (process, slots) in self.procs {
            left.extend(
                slots
                    .into_iter()
                    .enumerate()
                    .filter_map(|(id, v)| Some(((process, id as u64), v?))),
            );
        }
        left.sort_by_key(|(key, _)| *key);
        left
    }
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

    /// The direct writer of `history.jsonl` writes exactly what serde writes, for every kind
    /// of line it writes itself (and for the others, which it hands to serde).
    #[test]
    fn history_lines_are_written_as_serde_writes_them() {
        use ksim_model::event::CommitOffset;
        let mut entries = vec![
            send(0, NodeId::Producer(0), OpType::Invoke, 7, None),
            send(1, NodeId::Producer(12), OpType::Ok, 7, Some(-1)),
            send(
                2,
                NodeId::Processor(3),
                OpType::Fail,
                u64::MAX,
                Some(i64::MAX),
            ),
        ];
        let mut odd = send(3, NodeId::Broker(BrokerId(-2)), OpType::Info, 0, None);
        odd.op.error = Some("tab\there \"quoted\" \\ \u{1} é".into());
        if let OpValue::Send { tp, key, .. } = &mut odd.op.value {
            *tp = TopicPartition::new("we\"ird\ntopic", -3);
            *key = None;
        }
        entries.push(odd);
        for (i, records) in [vec![], vec![(0, 1), (i64::MIN, u64::MAX)]]
            .into_iter()
            .enumerate()
        {
            entries.push(HistoryEntry {
                index: 4 + i as u64,
                time_ms: 0,
                process: NodeId::Consumer(1),
                op: ClientOp {
                    op_type: if i == 0 { OpType::Invoke } else { OpType::Ok },
                    op_id: 2,
                    value: OpValue::Poll {
                        records: records
                            .into_iter()
                            .map(|(o, v)| PolledRecord {
                                tp: TopicPartition::new("events", 1),
                                offset: Offset(o),
                                value: v,
                            })
                            .collect(),
                    },
                    error: (i == 1).then(|| "x".to_string()),
                },
            });
        }
        entries.push(HistoryEntry {
            index: 6,
            time_ms: 9,
            process: NodeId::Zk,
            op: ClientOp {
                op_type: OpType::Ok,
                op_id: 3,
                value: OpValue::Commit {
                    group: "g".into(),
                    mode: "sync".into(),
                    offsets: vec![CommitOffset {
                        tp: TopicPartition::new("events", 0),
                        offset: Offset(4),
                    }],
                    coordinator: Some(BrokerId(1)),
                    generation: None,
                    member_id: None,
                },
                error: None,
            },
        });
        let mut direct = Vec::new();
        write_history_jsonl(&mut direct, &entries).unwrap();
        assert_eq!(String::from_utf8(direct).unwrap(), to_jsonl(&entries));
        let mut generic = Vec::new();
        write_jsonl(&mut generic, &entries).unwrap();
        assert_eq!(String::from_utf8(generic).unwrap(), to_jsonl(&entries));
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
