//! Checkers: named properties read off a finished run.
//!
//! A checker is a pure function of the run's records: the client history (`history.jsonl`,
//! Jepsen-style ops), the internal event log (`events.jsonl`) and each surviving replica's final
//! log. It returns the violations it found, never panics on a strange record, draws no
//! randomness and orders everything it reports (`BTreeMap`, history order), so the same run
//! always produces the same report.
//!
//! Client-visible anomalies carry the names of Jepsen's Kafka checker
//! (`jepsen/src/jepsen/tests/kafka.clj`): [`lost_write`], [`duplicate`],
//! [`inconsistent_offsets`], [`unseen`]. Internal invariants carry the names of the TLA+ and
//! Raft invariants they come from (see `KAFKA-SEMANTICS.md`): [`leader_in_isr`],
//! [`single_leader_per_epoch`], [`monotonic_high_watermark`]. Each lives in its own file whose
//! module doc states the property, its source and what is allowed, with a unit test that makes
//! it fail.
//!
//! A checker reports at most one [`Violation`]: its message tells the first anomaly in one
//! sentence a person understands (which value, partition, offsets, who, when) and how many
//! more there are; its `details` list every anomaly as data, up to [`MAX_DETAILS`].

use crate::history::{EventRecord, HistoryEntry};
use crate::snapshot::ReplicaSnapshot;
use ksim_model::event::{OpType, OpValue, TxnMop};
use ksim_model::types::{NodeId, Offset, TopicPartition};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::BTreeMap;

pub use lesson::{Lesson, Prevention};

pub mod aborted_read;
pub mod at_least_once;
pub mod commit_validity;
pub mod committed_data_stable;
pub mod committed_offset_regression;
pub mod committed_record_lost;
pub mod controller_epoch_fencing;
pub mod duplicate;
pub mod exactly_once;
pub mod exactly_once_plain;
pub mod exclusive_assignment;
pub(crate) mod group_view;
pub mod hanging_transaction;
pub mod idempotent_duplicate;
pub mod inconsistent_offsets;
pub mod int_nonmonotonic_poll;
pub mod int_poll_skip;
pub mod lag;
pub mod leader_in_isr;
pub mod lesson;
pub mod liveness;
pub mod lost_write;
pub mod monotonic_high_watermark;
pub mod nonmonotonic_poll;
pub mod nonmonotonic_send;
pub mod poll_skip;
pub mod read_committed_isolation;
pub mod revoke_before_reassign;
pub mod single_leader_per_epoch;
pub(crate) mod start_positions;
pub mod strong_isr;
pub mod torn_transaction;
pub(crate) mod txn;
pub mod txn_cycles;
pub mod unseen;
pub mod weak_isr;
pub mod zombie_fencing;

/// Everything a checker may read about a finished run.
#[derive(Debug, Clone, Copy)]
pub struct CheckInput<'a> {
    /// The client history, in log order.
    pub history: &'a [HistoryEntry],
    /// The internal events, in log order.
    pub events: &'a [EventRecord],
    /// Each surviving replica's log at the end, as (offset, value); may be empty.
    pub final_logs: &'a BTreeMap<(NodeId, TopicPartition), Vec<(Offset, u64)>>,
    /// The scenario that produced the run, for [`Checker::skip_reason`] and for checks whose
    /// judgement depends on configuration (`None` in unit tests: every check applies).
    pub scenario: Option<&'a crate::scenario::Scenario>,
    /// Replica snapshots (logs with batch epochs, in-memory HWs, roles, local and controller
    /// ISRs) at every change of a partition's replication state and at the end, in time order;
    /// see [`crate::snapshot`]. May be empty.
    pub snapshots: &'a [ReplicaSnapshot],
}

/// A property that did not hold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Violation {
    /// The check's name, e.g. `lost-write`.
    pub check: String,
    /// One sentence a person understands: which value, partition, offsets, who, when.
    pub message: String,
    /// Every anomaly as data (bounded by [`MAX_DETAILS`]).
    pub details: Value,
}

/// A named property over a finished run.
pub trait Checker {
    /// The check's name, as in `SCENARIOS.md` ("Check names").
    fn name(&self) -> &'static str;
    /// What the check asserts, in one sentence (the report's verdict table).
    fn statement(&self) -> &'static str;
    /// What a failure of the check teaches: the opening paragraph of its lesson and the family
    /// of settings that prevents it (the report's "Which setting would have prevented it").
    fn lesson(&self) -> Lesson;
    /// The violations found; empty when the property holds.
    fn check(&self, input: &CheckInput) -> Vec<Violation>;

    /// Why this check does not apply to the run, in one sentence a person understands (for
    /// example "no consumer reads topic `events`, so no acknowledged record can be judged
    /// unread"); `None` (the default) when it applies. A skipped check is not run and is listed
    /// with its reason in `summary.json` (`checks_skipped`) and in the report, as SCENARIOS.md
    /// asks ("the report says which checks ran and why any was skipped").
    fn skip_reason(&self, _input: &CheckInput) -> Option<String> {
        None
    }

    /// What the check deliberately did not judge in this run and why (records a consumer was
    /// configured not to read, records removed by retention, ...), one plain sentence each.
    /// Shown in the report under the verdict so that an excused record is never silent.
    fn notes(&self, _input: &CheckInput) -> Vec<String> {
        Vec::new()
    }
}

/// A check that did not run, and why (see [`Checker::skip_reason`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SkippedCheck {
    /// The check's name.
    pub check: String,
    /// One sentence: why it does not apply to this run.
    pub reason: String,
}

/// A remark by a check that ran (see [`Checker::notes`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckNote {
    /// The check's name.
    pub check: String,
    /// One sentence: what was not judged and why.
    pub note: String,
}

/// Every checker, in a fixed order: client-visible anomalies first, then internal invariants.
pub fn all_checkers() -> Vec<Box<dyn Checker>> {
    vec![
        Box::new(lost_write::LostWrite),
        Box::new(duplicate::Duplicate),
        Box::new(inconsistent_offsets::InconsistentOffsets),
        Box::new(unseen::Unseen),
        Box::new(leader_in_isr::LeaderInIsr),
        Box::new(single_leader_per_epoch::SingleLeaderPerEpoch),
        Box::new(monotonic_high_watermark::MonotonicHighWatermark),
        Box::new(poll_skip::PollSkip),
        Box::new(nonmonotonic_poll::NonmonotonicPoll),
        Box::new(int_poll_skip::IntPollSkip),
        Box::new(int_nonmonotonic_poll::IntNonmonotonicPoll),
        Box::new(nonmonotonic_send::NonmonotonicSend),
        Box::new(idempotent_duplicate::IdempotentDuplicate),
        Box::new(liveness::Liveness),
        Box::new(committed_record_lost::CommittedRecordLost),
        Box::new(controller_epoch_fencing::ControllerEpochFencing),
        Box::new(strong_isr::StrongIsr),
        Box::new(weak_isr::WeakIsr),
        Box::new(committed_data_stable::CommittedDataStable),
        Box::new(committed_offset_regression::CommittedOffsetRegression),
        Box::new(exclusive_assignment::ExclusiveAssignment),
        Box::new(revoke_before_reassign::RevokeBeforeReassign),
        Box::new(commit_validity::CommitValidity),
        Box::new(at_least_once::AtLeastOnce),
        Box::new(aborted_read::AbortedRead),
        Box::new(read_committed_isolation::ReadCommittedIsolation),
        Box::new(torn_transaction::TornTransaction),
        Box::new(zombie_fencing::ZombieFencing),
        Box::new(hanging_transaction::HangingTransaction),
        Box::new(exactly_once::ExactlyOnce),
        Box::new(txn_cycles::G1c),
        Box::new(txn_cycles::G0),
    ]
}

/// The checker called `name`, if there is one.
pub fn checker_named(name: &str) -> Option<Box<dyn Checker>> {
    all_checkers().into_iter().find(|c| c.name() == name)
}

/// What [`run_all`] found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckReport {
    /// The names of the checks that ran, in order.
    pub checks_run: Vec<String>,
    /// The checks that did not apply to the run, with the reason, in check order.
    pub checks_skipped: Vec<SkippedCheck>,
    /// What the checks that ran deliberately left unjudged, in check order.
    pub notes: Vec<CheckNote>,
    /// Their violations, in check order.
    pub violations: Vec<Violation>,
}

impl CheckReport {
    /// True when no check failed.
    pub fn is_ok(&self) -> bool {
        self.violations.is_empty()
    }
}

/// Runs [`all_checkers`] in order, skipping those whose [`Checker::skip_reason`] says they do
/// not apply.
pub fn run_all(input: &CheckInput) -> CheckReport {
    let mut report = CheckReport {
        checks_run: Vec::new(),
        checks_skipped: Vec::new(),
        notes: Vec::new(),
        violations: Vec::new(),
    };
    for checker in all_checkers() {
        if let Some(reason) = checker.skip_reason(input) {
            report.checks_skipped.push(SkippedCheck {
                check: checker.name().to_string(),
                reason,
            });
            continue;
        }
        report
            .notes
            .extend(checker.notes(input).into_iter().map(|note| CheckNote {
                check: checker.name().to_string(),
                note,
            }));
        let violations = checker.check(input);
        debug_assert!(violations.iter().all(|v| v.check == checker.name()));
        report.checks_run.push(checker.name().to_string());
        report.violations.extend(violations);
    }
    report
}

/// The skip reason shared by the checks that judge what consumers read: `Some` when the
/// scenario has no consumer at all (`what` completes the sentence: what cannot be judged).
pub(crate) fn without_consumers(input: &CheckInput, what: &str) -> Option<String> {
    let scenario = input.scenario?;
    scenario
        .consumers
        .is_empty()
        .then(|| format!("the scenario has no consumer, so {what}"))
}

/// The acknowledged sends no consumer read and no consumer was configured to read (below every
/// consumer's first position, see [`start_positions`]), in history order: what `unseen` and
/// `lost-write` do not judge.
pub(crate) fn excused_unread(input: &CheckInput) -> Vec<AckedSend> {
    let starts = start_positions::StartPositions::from_events(input.events);
    let below_starts: Vec<AckedSend> = acked_sends_iter(input.history)
        .filter(|s| starts.excuses(s))
        .collect();
    if below_starts.is_empty() {
        return below_starts;
    }
    let read = ReadValues::of(input.history);
    let removed = Removed::from_events(input.events);
    below_starts
        .into_iter()
        .filter(|s| !read.contains(s.value))
        .filter(|s| s.offset.is_none_or(|o| removed.excuses(&s.tp, o).is_none()))
        .collect()
}

/// The values some `ok` poll returned (the [`Seen::Polled`] [`observations`]), as a sorted
/// vector: a set that is quick to build and to ask.
pub(crate) struct ReadValues(Vec<u64>);

impl ReadValues {
    /// The values read in `history`.
    pub(crate) fn of(history: &[HistoryEntry]) -> ReadValues {
        let mut values: Vec<u64> = Vec::new();
        for_each_observation(history, |o| {
            if o.source.seen == Seen::Polled {
                values.push(o.value);
            }
        });
        values.sort_unstable();
        values.dedup();
        ReadValues(values)
    }

    /// Whether some poll returned `value`.
    pub(crate) fn contains(&self, value: u64) -> bool {
        self.0.binary_search(&value).is_ok()
    }
}

/// A map keyed by the offsets of one partition: a slot per offset from 0 (offsets are dense,
/// so this is a vector lookup), and an ordinary map for negative offsets and those beyond
/// [`OffsetMap::DENSE`] (which only a strange log has).
#[derive(Debug)]
pub(crate) struct OffsetMap<T> {
    /// Per offset, the index in `items` of its value, or `u32::MAX` for none.
    slots: Vec<u32>,
    items: Vec<T>,
    far: BTreeMap<Offset, T>,
}

impl<T> Default for OffsetMap<T> {
    fn default() -> Self {
        OffsetMap {
            slots: Vec::new(),
            items: Vec::new(),
            far: BTreeMap::new(),
        }
    }
}

impl<T> OffsetMap<T> {
    /// Offsets below this have a slot.
    const DENSE: i64 = 1 << 22;

    /// The value at `offset`, to change.
    pub(crate) fn get_mut(&mut self, offset: Offset) -> Option<&mut T> {
        if (0..Self::DENSE).contains(&offset.0) {
            let i = *self.slots.get(offset.0 as usize)?;
            self.items.get_mut(i as usize)
        } else {
            self.far.get_mut(&offset)
        }
    }

    /// Sets the value at `offset` if it has none; returns whether it was set.
    pub(crate) fn insert_new(&mut self, offset: Offset, value: T) -> bool {
        // (At most one item per slot: `items` never outgrows a u32 index.)
        if !(0..Self::DENSE).contains(&offset.0) {
            if self.far.contains_key(&offset) {
                return false;
            }
            self.far.insert(offset, value);
            return true;
        }
        let o = offset.0 as usize;
        if self.slots.len() <= o {
            self.slots.resize(o + 1, u32::MAX);
        }
        if self.slots[o] != u32::MAX {
            return false;
        }
        self.slots[o] = self.items.len() as u32;
        self.items.push(value);
        true
    }

    /// Every (offset, value), in offset order.
    pub(crate) fn into_sorted(self) -> Vec<(Offset, T)> {
        let mut items: Vec<Option<T>> = self.items.into_iter().map(Some).collect();
        let mut out = Vec::with_capacity(items.len() + self.far.len());
        let mut far = self.far.into_iter().peekable();
        while let Some(negative) = far.next_if(|(o, _)| o.0 < 0) {
            out.push(negative);
        }
        for (o, &i) in self.slots.iter().enumerate() {
            if let Some(value) = items.get_mut(i as usize).and_then(Option::take) {
                out.push((Offset(o as i64), value));
            }
        }
        out.extend(far);
        out
    }
}

/// At most this many anomalies are listed in a violation's `details`.
pub const MAX_DETAILS: usize = 100;

/// Folds a checker's anomalies into at most one [`Violation`].
///
/// `anomalies` are (sentence, data) pairs in a deterministic order. The message is `headline`
/// if given, else the first sentence followed by how many more there are. `details` is
/// `{"count", "anomalies": [..up to MAX_DETAILS], "omitted", ..extra}`.
pub(crate) fn violation(
    check: &str,
    headline: Option<String>,
    anomalies: Vec<(String, Value)>,
    extra: serde_json::Map<String, Value>,
) -> Vec<Violation> {
    let count = anomalies.len();
    violation_of(check, headline, count, anomalies, extra)
}

/// As [`violation`], for `count` anomalies of which `anomalies` yields (at least) the first
/// [`MAX_DETAILS`]: only those are taken, so a checker with many anomalies can build the
/// sentence and data of the listed ones only.
pub(crate) fn violation_of(
    check: &str,
    headline: Option<String>,
    count: usize,
    anomalies: impl IntoIterator<Item = (String, Value)>,
    extra: serde_json::Map<String, Value>,
) -> Vec<Violation> {
    if count == 0 {
        return Vec::new();
    }
    let mut first_sentence = None;
    let listed: Vec<Value> = anomalies
        .into_iter()
        .take(count.min(MAX_DETAILS))
        .map(|(sentence, mut data)| {
            if first_sentence.is_none() {
                first_sentence = Some(sentence.clone());
            }
            if let Value::Object(map) = &mut data {
                map.insert("message".into(), Value::String(sentence));
            }
            data
        })
        .collect();
    let Some(first) = first_sentence else {
        return Vec::new();
    };
    let message = match headline {
        Some(h) => h,
        None if count == 1 => first,
        None => format!("{first} ({} more like this in details)", count - 1),
    };
    let mut details = serde_json::Map::new();
    details.insert("count".into(), json!(count));
    details.insert("omitted".into(), json!(count.saturating_sub(MAX_DETAILS)));
    details.insert("anomalies".into(), Value::Array(listed));
    details.extend(extra);
    vec![Violation {
        check: check.to_string(),
        message,
        details: Value::Object(details),
    }]
}

/// How a client learned that a value sits at an offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Seen {
    /// An `ok` send completion carried the offset.
    Acked,
    /// An `ok` poll returned the record.
    Polled,
}

/// Where an observation came from in the history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Source {
    pub seen: Seen,
    pub process: NodeId,
    pub time_ms: u64,
    /// The history index of the completion.
    pub index: u64,
}

impl Source {
    fn of(entry: &HistoryEntry, seen: Seen) -> Source {
        Source {
            seen,
            process: entry.process,
            time_ms: entry.time_ms,
            index: entry.index,
        }
    }

    /// `acknowledged to producer-0 at t=5230 ms` / `read by consumer-1 at t=7000 ms`.
    pub fn describe(&self) -> String {
        match self.seen {
            Seen::Acked => format!("acknowledged to {} at t={} ms", self.process, self.time_ms),
            Seen::Polled => format!("read by {} at t={} ms", self.process, self.time_ms),
        }
    }

    pub fn to_json(self) -> Value {
        json!({
            "seen": match self.seen { Seen::Acked => "send-ok", Seen::Polled => "poll-ok" },
            "process": self.process.to_string(),
            "time_ms": self.time_ms,
            "index": self.index,
        })
    }
}

/// One client observation that `value` is at `offset` in `tp`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Observation {
    pub tp: TopicPartition,
    pub offset: Offset,
    pub value: u64,
    pub source: Source,
}

/// Every (partition, offset, value) the clients observed, in history order: the offsets of `ok`
/// sends and the records of `ok` polls, the same for the `send` and `poll` micro-operations of
/// `ok` (committed) transactions. `info` and `fail` completions carry no offset, and
/// Jepsen's version orders likewise use only what definitely happened.
pub(crate) fn observations(history: &[HistoryEntry]) -> Vec<Observation> {
    let mut out = Vec::new();
    for_each_observation(history, |o| out.push(o));
    out
}

/// Calls `f` with each of [`observations`] in turn, without collecting them.
pub(crate) fn for_each_observation(history: &[HistoryEntry], mut f: impl FnMut(Observation)) {
    for_each_observation_ref(history, |tp, offset, value, source| {
        f(Observation {
            tp: tp.clone(),
            offset,
            value,
            source,
        })
    });
}

/// [`for_each_observation`] with the partition borrowed: `f(tp, offset, value, source)`.
fn for_each_observation_ref<'a>(
    history: &'a [HistoryEntry],
    mut f: impl FnMut(&'a TopicPartition, Offset, u64, Source),
) {
    for entry in history {
        if entry.op.op_type != OpType::Ok {
            continue;
        }
        match &entry.op.value {
            OpValue::Send {
                tp,
                value,
                offset: Some(offset),
                ..
            } => f(tp, *offset, *value, Source::of(entry, Seen::Acked)),
            OpValue::Send { offset: None, .. }
            | OpValue::Seek { .. }
            | OpValue::Commit { .. }
            | OpValue::Process { .. }
            | OpValue::OffsetFetch { .. } => {}
            // A committed transaction: its acknowledged sends, and the records its poll (a
            // processor's input) returned. An aborted (`fail`) or unknown (`info`) one proves
            // nothing, as for a non-transactional send.
            OpValue::Txn { mops, .. } => {
                for mop in mops {
                    match mop {
                        TxnMop::Send {
                            tp,
                            value,
                            offset: Some(offset),
                            ..
                        } => f(tp, *offset, *value, Source::of(entry, Seen::Acked)),
                        TxnMop::Send { offset: None, .. } => {}
                        TxnMop::Poll { records } => {
                            for r in records {
                                f(&r.tp, r.offset, r.value, Source::of(entry, Seen::Polled));
                            }
                        }
                    }
                }
            }
            OpValue::Poll { records } => {
                for r in records {
                    f(&r.tp, r.offset, r.value, Source::of(entry, Seen::Polled));
                }
            }
        }
    }
}

/// The [`observations`] as plain numbers, for the checks that sort them all (`duplicate`,
/// `inconsistent-offsets`): a fraction of the memory, and quick to sort.
pub(crate) struct ObservationKeys {
    /// The partitions observed, in order.
    pub tps: Vec<TopicPartition>,
    /// One per observation, in history order.
    pub keys: Vec<ObsKey>,
}

/// One observation of [`ObservationKeys`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ObsKey {
    /// The index of its partition in [`ObservationKeys::tps`].
    pub tp: u32,
    pub offset: Offset,
    pub value: u64,
    /// Its position among the observations, in history order.
    pub seq: usize,
}

impl ObservationKeys {
    /// The observations of `history`.
    pub(crate) fn of(history: &[HistoryEntry]) -> ObservationKeys {
        // Partitions numbered as first met (a handful: found by a scan, starting with the last
        // one), renumbered in partition order at the end.
        let mut met: Vec<&TopicPartition> = Vec::new();
        let mut last = 0;
        let mut keys = Vec::new();
        for_each_observation_ref(history, |tp, offset, value, _| {
            if met.get(last).is_none_or(|t| *t != tp) {
                last = match met.iter().position(|t| *t == tp) {
                    Some(i) => i,
                    None => {
                        met.push(tp);
                        met.len() - 1
                    }
                };
            }
            keys.push(ObsKey {
                tp: last as u32,
                offset,
                value,
                seq: keys.len(),
            });
        });
        let mut order: Vec<usize> = (0..met.len()).collect();
        order.sort_by_key(|i| met[*i]);
        let mut rank = vec![0u32; met.len()];
        for (r, i) in order.iter().enumerate() {
            rank[*i] = r as u32;
        }
        for k in &mut keys {
            k.tp = rank[k.tp as usize];
        }
        ObservationKeys {
            tps: order.iter().map(|i| met[*i].clone()).collect(),
            keys,
        }
    }

    /// The sources of the observations numbered `seqs` (ascending, no repeats), in that order.
    pub(crate) fn sources(history: &[HistoryEntry], seqs: &[usize]) -> Vec<Source> {
        let mut out = Vec::with_capacity(seqs.len());
        if seqs.is_empty() {
            return out;
        }
        let mut seq = 0;
        for_each_observation_ref(history, |_, _, _, source| {
            if seqs.get(out.len()) == Some(&seq) {
                out.push(source);
            }
            seq += 1;
        });
        out
    }
}

/// An acknowledged (`ok`) send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AckedSend {
    pub tp: TopicPartition,
    /// The offset the ack carried (always set by a well-behaved client).
    pub offset: Option<Offset>,
    pub value: u64,
    pub source: Source,
}

impl AckedSend {
    /// `events-1 offset 17` or `events-1 (offset unknown)`.
    pub fn position(&self) -> String {
        match self.offset {
            Some(o) => format!("{} offset {}", self.tp, o),
            None => format!("{} (offset unknown)", self.tp),
        }
    }

    pub fn to_json(&self) -> Value {
        json!({
            "value": self.value,
            "tp": self.tp.to_string(),
            "offset": self.offset.map(|o| o.0),
            "acked": self.source.to_json(),
        })
    }
}

/// Every `ok` send, in history order.
/// Topics the controller deleted during the run (`topic-deleted` events), with the time of the
/// deletion. Deleting a topic deletes its records, so the checks that ask whether acknowledged
/// records survived or were read do not judge that topic's records, and say so in a note.
pub(crate) fn deleted_topics(events: &[EventRecord]) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for r in events {
        if let ksim_model::event::Event::TopicDeleted { topic, .. } = &r.event {
            out.entry(topic.clone()).or_insert(r.time_ms);
        }
    }
    out
}

/// The note a check shows for the deleted topics it did not judge.
pub(crate) fn deleted_topics_notes(events: &[EventRecord], what: &str) -> Vec<String> {
    deleted_topics(events)
        .iter()
        .map(|(topic, t)| {
            format!(
                "{what} of topic `{topic}` are not judged: the topic was deleted at t={t} ms \
                 (`delete-topic`), which deletes its records"
            )
        })
        .collect()
}

///
/// A committed (`ok`) transaction's `send` micro-operations count as acknowledged sends, each
/// with the offset its produce was acknowledged at, exactly like non-transactional sends (the
/// transaction's completion is their acknowledgement: only a committed transaction's records
/// are promised to read_committed consumers, KIP-98). The sends of an aborted (`fail`)
/// transaction are not acknowledged, and those of an `info` one are indeterminate, like an
/// `info` send: neither is listed.
pub(crate) fn acked_sends(history: &[HistoryEntry]) -> Vec<AckedSend> {
    acked_sends_iter(history).collect()
}

/// [`acked_sends`] one at a time, without collecting them.
pub(crate) fn acked_sends_iter(history: &[HistoryEntry]) -> impl Iterator<Item = AckedSend> + '_ {
    history
        .iter()
        .filter(|e| e.op.op_type == OpType::Ok)
        .flat_map(|e| {
            let (single, mops): (Option<AckedSend>, &[TxnMop]) = match &e.op.value {
                OpValue::Send {
                    tp, value, offset, ..
                } => (
                    Some(AckedSend {
                        tp: tp.clone(),
                        offset: *offset,
                        value: *value,
                        source: Source::of(e, Seen::Acked),
                    }),
                    &[],
                ),
                OpValue::Txn { mops, .. } => (None, mops),
                OpValue::Poll { .. }
                | OpValue::Seek { .. }
                | OpValue::Commit { .. }
                | OpValue::Process { .. }
                | OpValue::OffsetFetch { .. } => (None, &[]),
            };
            single
                .into_iter()
                .chain(mops.iter().filter_map(move |m| match m {
                    TxnMop::Send {
                        tp, value, offset, ..
                    } => Some(AckedSend {
                        tp: tp.clone(),
                        offset: *offset,
                        value: *value,
                        source: Source::of(e, Seen::Acked),
                    }),
                    TxnMop::Poll { .. } => None,
                }))
        })
}

/// Records the log removed on purpose, by retention or compaction, as the brokers' events
/// tell it: such a record is not lost, so `lost-write`, `unseen`, `committed-record-lost`,
/// `poll-skip` and `int-poll-skip` excuse it, and only it.
///
/// * **Retention**: an offset below the highest log start offset that some broker reached by
///   deleting segments itself (`log-start-offset-advanced` with reason `retention`). Retention
///   never deletes at or above the replica's high watermark, so only committed records go.
///   (Log start offsets a follower copied from its leader are not needed: they never exceed
///   the leader's.)
/// * **Compaction**: an offset some broker's cleaner removed (`log-cleaned`): a record
///   superseded by a later record with the same key, or a tombstone older than
///   `delete.retention.ms`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Removed {
    /// Per partition, the highest log start offset retention set.
    pub retention: BTreeMap<TopicPartition, Offset>,
    /// Per partition, every offset the cleaner removed on some replica.
    pub compaction: BTreeMap<TopicPartition, std::collections::BTreeSet<Offset>>,
}

/// Why a record is excused (see [`Removed`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RemovedBy {
    Retention,
    Compaction,
}

impl Removed {
    /// Reads the retention and cleaner events.
    pub fn from_events(events: &[EventRecord]) -> Removed {
        use ksim_model::event::Event;
        let mut r = Removed::default();
        for e in events {
            match &e.event {
                Event::LogStartOffsetAdvanced {
                    tp,
                    log_start_offset,
                    reason,
                    ..
                } if reason == "retention" => {
                    let o = r.retention.entry(tp.clone()).or_insert(*log_start_offset);
                    *o = (*o).max(*log_start_offset);
                }
                Event::LogCleaned {
                    tp,
                    superseded,
                    expired_tombstones,
                    ..
                } => {
                    let set = r.compaction.entry(tp.clone()).or_default();
                    set.extend(superseded.iter().copied());
                    set.extend(expired_tombstones.iter().copied());
                }
                _ => {}
            }
        }
        r
    }

    /// Whether the record at `offset` of `tp` was removed on purpose, and how.
    pub fn excuses(&self, tp: &TopicPartition, offset: Offset) -> Option<RemovedBy> {
        if self.retention.get(tp).is_some_and(|&start| offset < start) {
            return Some(RemovedBy::Retention);
        }
        if self.compaction.get(tp).is_some_and(|s| s.contains(&offset)) {
            return Some(RemovedBy::Compaction);
        }
        None
    }

    /// Removes the excused offsets from a per-partition map of known offsets.
    pub fn forget<V>(&self, known: &mut BTreeMap<TopicPartition, BTreeMap<Offset, V>>) {
        for (tp, offsets) in known.iter_mut() {
            offsets.retain(|o, _| self.excuses(tp, *o).is_none());
        }
    }

    /// The note a check that excuses removed records adds to the report (none if nothing was
    /// excused).
    pub fn notes(&self, history: &[HistoryEntry]) -> Vec<String> {
        if self.is_empty() {
            return Vec::new();
        }
        let (retention, compaction) = self.excused_counts(history);
        let mut parts = Vec::new();
        if retention > 0 {
            parts.push(format!(
                "{retention} acknowledged record{} below a log start offset that retention set",
                if retention == 1 { "" } else { "s" }
            ));
        }
        if compaction > 0 {
            parts.push(format!(
                "{compaction} acknowledged record{} the cleaner removed because a later record has the same key",
                if compaction == 1 { "" } else { "s" }
            ));
        }
        if parts.is_empty() {
            return Vec::new();
        }
        vec![format!(
            "not judged, because the log removed them on purpose: {}",
            parts.join(" and ")
        )]
    }

    /// Whether nothing was removed on purpose.
    pub fn is_empty(&self) -> bool {
        self.retention.is_empty() && self.compaction.is_empty()
    }

    /// Acknowledged sends excused, as (by retention, by compaction).
    pub fn excused_counts(&self, history: &[HistoryEntry]) -> (u64, u64) {
        let mut counts = (0, 0);
        if self.is_empty() {
            return counts;
        }
        for s in acked_sends_iter(history) {
            match s.offset.and_then(|o| self.excuses(&s.tp, o)) {
                Some(RemovedBy::Retention) => counts.0 += 1,
                Some(RemovedBy::Compaction) => counts.1 += 1,
                None => {}
            }
        }
        counts
    }
}

/// `broker-1 at t=5230 ms`: who logged an event and when.
pub(crate) fn at(record: &EventRecord) -> String {
    format!("{} at t={} ms", record.node, record.time_ms)
}

/// The event's origin as data.
pub(crate) fn event_json(record: &EventRecord) -> Value {
    json!({ "node": record.node.to_string(), "time_ms": record.time_ms })
}

/// Which brokers lost data Kafka does not promise to keep, per partition, as the event log
/// unfolds. A broker hit by a `power-fail` or `disk-loss` fault counts as having lost its
/// unflushed records of every partition until it has restarted and the controller has then
/// written an ISR for the partition that adds it back (it caught up with the leader). A
/// `disk-fault` may silently corrupt a later write, which stays on disk until recovery cuts it
/// away: such a broker counts as having lost data of a partition until a `log-recovered` event
/// of its for that partition, and then a rejoin.
#[derive(Debug, Default)]
pub(crate) struct DataLossTracker {
    /// Events consumed so far.
    seen: usize,
    lost: BTreeMap<ksim_model::types::BrokerId, LossState>,
    /// The controller's latest ISR per partition.
    isr: BTreeMap<TopicPartition, Vec<ksim_model::types::BrokerId>>,
}

/// One broker's data loss (see [`DataLossTracker`]).
#[derive(Debug, Default)]
struct LossState {
    /// A disk fault may have corrupted its log.
    corrupt: bool,
    /// It restarted since its latest power or disk loss.
    restarted: bool,
    /// Partitions whose log recovery ran since the latest fault.
    recovered: std::collections::BTreeSet<TopicPartition>,
    /// Partitions whose ISR it rejoined once it could hold their records again.
    rejoined: std::collections::BTreeSet<TopicPartition>,
}

impl DataLossTracker {
    /// Consumes `events[..count]` (call with growing counts).
    pub fn advance(&mut self, events: &[EventRecord], count: usize) {
        use ksim_model::event::Event;
        let count = count.min(events.len());
        for r in events.get(self.seen..count).unwrap_or(&[]) {
            match &r.event {
                Event::Fault { action, nodes, .. }
                    if action == "power-fail"
                        || action == "disk-loss"
                        || action == "disk-fault" =>
                {
                    for n in nodes {
                        if let Some(NodeId::Broker(b)) = NodeId::parse(n) {
                            let corrupt = action == "disk-fault"
                                || self.lost.get(&b).is_some_and(|l| l.corrupt);
                            self.lost.insert(
                                b,
                                LossState {
                                    corrupt,
                                    ..Default::default()
                                },
                            );
                        }
                    }
                }
                Event::BrokerStarted { broker } => {
                    if let Some(l) = self.lost.get_mut(broker) {
                        l.restarted = true;
                    }
                }
                Event::LogRecovered { tp, broker, .. } => {
                    if let Some(l) = self.lost.get_mut(broker) {
                        l.recovered.insert(tp.clone());
                    }
                }
                Event::PartitionStateChanged { tp, isr, .. } => {
                    let before = self.isr.insert(tp.clone(), isr.clone()).unwrap_or_default();
                    for b in isr.iter().filter(|b| !before.contains(b)) {
                        if let Some(l) = self.lost.get_mut(b) {
                            let ready = if l.corrupt {
                                l.recovered.contains(tp)
                            } else {
                                l.restarted
                            };
                            if ready {
                                l.rejoined.insert(tp.clone());
                            }
                        }
                    }
                }
                _ => {}
            }
        }
        self.seen = self.seen.max(count);
    }

    /// Whether `broker` lost data of `tp` and has not rejoined `tp`'s ISR since.
    pub fn excused(&self, tp: &TopicPartition, broker: ksim_model::types::BrokerId) -> bool {
        self.lost
            .get(&broker)
            .is_some_and(|l| !l.rejoined.contains(tp))
    }
}

/// Builders for hand-written histories and event logs in the checkers' unit tests.
#[cfg(test)]
pub(crate) mod testkit;

#[cfg(test)]
mod tests {
    use super::testkit::*;
    use super::*;

    fn with_events(
        checker: &dyn Checker,
        history: &[HistoryEntry],
        events: &[ksim_model::event::Event],
    ) -> Vec<Violation> {
        let records: Vec<EventRecord> = events
            .iter()
            .map(|e| EventRecord {
                time_ms: 0,
                node: NodeId::Broker(ksim_model::types::BrokerId(0)),
                event: e.clone(),
            })
            .collect();
        let logs = BTreeMap::new();
        checker.check(&CheckInput {
            history,
            events: &records,
            final_logs: &logs,
            scenario: None,
            snapshots: &[],
        })
    }

    /// Records removed by retention (below a retention log start offset) or by the cleaner are
    /// excused by lost-write, unseen and poll-skip; nothing else is, and other reasons for a
    /// log start offset to move excuse nothing.
    #[test]
    fn retention_and_compaction_excuse_exactly_the_removed_records() {
        use ksim_model::event::Event;
        use ksim_model::types::BrokerId;
        let mut h = HistoryBuilder::default();
        for i in 0..6 {
            h.send(0, OpType::Ok, &tp(0), 10 + i, i as i64);
        }
        // The consumer read 0, then (after a gap) 4 and 5: 1, 2, 3 were never read.
        h.poll(0, &tp(0), &[(0, 10)]);
        h.poll(0, &tp(0), &[(4, 14), (5, 15)]);
        let checks: [&dyn Checker; 3] = [
            &lost_write::LostWrite,
            &unseen::Unseen,
            &poll_skip::PollSkip,
        ];
        for c in checks {
            assert_eq!(
                with_events(c, &h.entries, &[]).len(),
                1,
                "{} fails",
                c.name()
            );
        }
        let retention = Event::LogStartOffsetAdvanced {
            tp: tp(0),
            broker: BrokerId(0),
            log_start_offset: Offset(3),
            reason: "retention".into(),
        };
        let cleaned = Event::LogCleaned {
            tp: tp(0),
            broker: BrokerId(1),
            cleaned_segments: 1,
            superseded: vec![Offset(3)],
            expired_tombstones: vec![],
        };
        for c in checks {
            assert!(
                with_events(c, &h.entries, &[retention.clone(), cleaned.clone()]).is_empty(),
                "{} excuses 1, 2 (retention) and 3 (compaction)",
                c.name()
            );
            // Either excuse alone leaves something unexplained.
            assert_eq!(with_events(c, &h.entries, &[retention.clone()]).len(), 1);
            assert_eq!(with_events(c, &h.entries, &[cleaned.clone()]).len(), 1);
            // A follower copying the leader's start offset excuses nothing by itself.
            let copied = Event::LogStartOffsetAdvanced {
                tp: tp(0),
                broker: BrokerId(1),
                log_start_offset: Offset(3),
                reason: "leader-log-start-offset".into(),
            };
            assert_eq!(
                with_events(c, &h.entries, &[copied, cleaned.clone()]).len(),
                1
            );
        }
        let records: Vec<EventRecord> = [retention, cleaned]
            .into_iter()
            .map(|event| EventRecord {
                time_ms: 0,
                node: NodeId::Broker(BrokerId(0)),
                event,
            })
            .collect();
        let removed = Removed::from_events(&records);
        assert_eq!(removed.excused_counts(&h.entries), (3, 1));
        assert_eq!(
            removed.notes(&h.entries),
            vec![
                "not judged, because the log removed them on purpose: 3 acknowledged records \
                  below a log start offset that retention set and 1 acknowledged record the \
                  cleaner removed because a later record has the same key"
                    .to_string()
            ]
        );
        assert!(Removed::default().notes(&h.entries).is_empty());
        assert_eq!(
            removed.excuses(&tp(0), Offset(3)),
            Some(RemovedBy::Compaction)
        );
        assert_eq!(removed.excuses(&tp(1), Offset(0)), None);
    }

    #[test]
    fn clean_run_passes_every_check_in_a_fixed_order() {
        let mut h = HistoryBuilder::default();
        h.send(0, OpType::Ok, &tp(0), 1, 0)
            .send(0, OpType::Ok, &tp(0), 2, 1);
        h.poll(0, &tp(0), &[(0, 1), (1, 2)]);
        let logs = BTreeMap::new();
        let report = run_all(&CheckInput {
            history: &h.entries,
            events: &[],
            final_logs: &logs,
            scenario: None,
            snapshots: &[],
        });
        assert!(report.is_ok(), "{report:?}");
        assert_eq!(
            report.checks_run,
            [
                "lost-write",
                "duplicate",
                "inconsistent-offsets",
                "unseen",
                "leader-in-isr",
                "single-leader-per-epoch",
                "monotonic-high-watermark",
                "poll-skip",
                "nonmonotonic-poll",
                "int-poll-skip",
                "int-nonmonotonic-poll",
                "nonmonotonic-send",
                "idempotent-duplicate",
                "liveness",
                "committed-record-lost",
                "controller-epoch-fencing",
                "strong-isr",
                "weak-isr",
                "committed-data-stable",
                "exclusive-assignment",
                "revoke-before-reassign",
                "commit-validity",
                "at-least-once"
            ]
        );
    }

    #[test]
    fn checks_that_do_not_apply_are_skipped_with_a_reason() {
        let scenario = crate::scenario::parse(
            r#"
            [scenario]
            name = "no-consumers"
            duration_ms = 1000
            seeds = [1]
            [cluster]
            brokers = 1
            [[topics]]
            name = "events"
            replication_factor = 1
            [[producers]]
            topic = "events"
            rate_per_sec = 10
            config = { acks = 1, "enable.idempotence" = false }
            "#,
            "no-consumers.toml",
        )
        .expect("valid scenario");
        // An acked send nobody read: `unseen` would fail if it ran.
        let mut h = HistoryBuilder::default();
        h.send(0, OpType::Ok, &tp(0), 1, 0);
        let logs = BTreeMap::new();
        let input = CheckInput {
            history: &h.entries,
            events: &[],
            final_logs: &logs,
            scenario: Some(&scenario),
            snapshots: &[],
        };
        let report = run_all(&input);
        assert!(report.is_ok(), "{report:?}");
        let skipped: Vec<&str> = report
            .checks_skipped
            .iter()
            .map(|s| s.check.as_str())
            .collect();
        assert_eq!(
            skipped,
            [
                "lost-write",
                "unseen",
                "poll-skip",
                "nonmonotonic-poll",
                "int-poll-skip",
                "int-nonmonotonic-poll",
                "idempotent-duplicate",
                "committed-record-lost",
                "committed-offset-regression",
                "exclusive-assignment",
                "revoke-before-reassign",
                "commit-validity",
                "at-least-once",
                "aborted-read",
                "read-committed-isolation",
                "torn-transaction",
                "zombie-fencing",
                "hanging-transaction",
                "exactly-once",
                "G1c",
                "G0"
            ]
        );
        assert!(report.checks_skipped[1].reason.contains("no consumer"));
        assert!(!report.checks_run.contains(&"unseen".to_string()));
        // Without a scenario (unit tests), the same history fails `unseen`.
        let report = run_all(&CheckInput {
            scenario: None,
            ..input
        });
        assert!(report.violations.iter().any(|v| v.check == "unseen"));
    }

    #[test]
    fn a_broker_that_lost_data_is_excused_until_it_restarts_and_rejoins_the_isr() {
        use ksim_model::event::Event;
        use ksim_model::types::{BrokerId, ControllerEpoch, LeaderEpoch, ZkVersion};
        let b = BrokerId;
        let isr = |members: &[i32]| Event::PartitionStateChanged {
            tp: testkit::tp(0),
            leader: Some(b(0)),
            leader_epoch: LeaderEpoch(1),
            isr: members.iter().map(|m| b(*m)).collect(),
            controller_epoch: ControllerEpoch(1),
            partition_epoch: ZkVersion(0),
            reason: "test".into(),
            last_known_elr: vec![],
        };
        let fault = |action: &str| Event::Fault {
            action: action.into(),
            nodes: vec!["broker-1".into()],
            source: "random".into(),
        };
        let events: Vec<EventRecord> = [
            isr(&[0, 1]),
            fault("power-fail"),
            isr(&[0]),
            isr(&[0, 1]), // not restarted yet: still excused
            Event::BrokerStarted { broker: b(1) },
            isr(&[0]),
            isr(&[0, 1]), // rejoined after its restart
            fault("disk-fault"),
            Event::BrokerStarted { broker: b(1) },
            isr(&[0]),
            isr(&[0, 1]), // restarted, but recovery has not read the partition back
            Event::LogRecovered {
                tp: testkit::tp(0),
                broker: b(1),
                log_end_offset: Offset(0),
                discarded_bytes: 10,
            },
            isr(&[0]),
            isr(&[0, 1]),
        ]
        .into_iter()
        .enumerate()
        .map(|(i, event)| EventRecord {
            time_ms: i as u64,
            node: NodeId::Zk,
            event,
        })
        .collect();
        let excused_after: Vec<bool> = (0..=events.len())
            .map(|n| {
                let mut t = DataLossTracker::default();
                t.advance(&events, n);
                t.excused(&testkit::tp(0), b(1))
            })
            .collect();
        assert_eq!(
            excused_after,
            [
                false, false, true, true, true, true, true, false, true, true, true, true, true,
                true, false
            ]
        );
        let mut t = DataLossTracker::default();
        t.advance(&events, events.len());
        assert!(!t.excused(&testkit::tp(0), b(0)));
    }

    /// A committed transaction's sends are acknowledged sends and its polls are polls of its
    /// process; an aborted one's sends are not acknowledged, an unknown one's indeterminate.
    #[test]
    fn committed_transactions_count_as_sends_and_polls_aborted_ones_do_not() {
        let mut h = HistoryBuilder::default();
        h.txn(
            0,
            OpType::Ok,
            (7, 0),
            vec![tsend(&tp(0), 1, 0), tsend(&tp(0), 2, 1)],
        );
        h.txn(0, OpType::Fail, (7, 0), vec![tsend(&tp(0), 3, 2)]);
        h.txn(0, OpType::Info, (7, 0), vec![tsend(&tp(0), 4, 3)]);
        h.txn(0, OpType::Ok, (7, 0), vec![tsend(&tp(0), 5, 5)]);
        let sends: Vec<u64> = acked_sends(&h.entries).iter().map(|s| s.value).collect();
        assert_eq!(sends, [1, 2, 5]);
        // The consumer reads 1 and 5: 2 is lost, 3 (aborted) and 4 (unknown) are not.
        h.poll(0, &tp(0), &[(0, 1), (5, 5)]);
        let v = check_history(&lost_write::LostWrite, &h.entries);
        assert_eq!(v.len(), 1, "{v:?}");
        assert_eq!(v[0].details["count"], 1);
        assert_eq!(v[0].details["anomalies"][0]["value"], 2);
        // A processor's committed poll that read 5 at another offset is a duplicate, and its
        // reads are polls of its process: from offset 0 to offset 5 it skipped offset 1.
        let p = NodeId::Consumer(9);
        let id = h.txn_begin(p, "etl-0");
        h.txn_end(
            p,
            id,
            OpType::Ok,
            "etl-0",
            (8, 0),
            vec![tpoll(&tp(0), &[(0, 1)]), tpoll(&tp(0), &[(6, 5)])],
            None,
            &[],
        );
        let v = check_history(&duplicate::Duplicate, &h.entries);
        assert_eq!(v[0].details["anomalies"][0]["value"], 5);
        let id = h.txn_begin(p, "etl-0");
        h.txn_end(
            p,
            id,
            OpType::Ok,
            "etl-0",
            (8, 0),
            vec![tpoll(&tp(0), &[(7, 9)])],
            None,
            &[],
        );
        let skips = check_history(&poll_skip::PollSkip, &h.entries);
        assert!(skips.is_empty(), "{skips:?}");
        let internal = check_history(&int_poll_skip::IntPollSkip, &h.entries);
        // consumer-0's poll skipped offset 1 too; consumer-9's transaction is the second.
        assert_eq!(internal[0].details["count"], 2, "{internal:?}");
        assert!(internal[0].details["anomalies"][1]["message"]
            .as_str()
            .is_some_and(|m| m.contains("consumer-9")));
    }

    #[test]
    fn details_are_bounded_and_say_how_many_were_left_out() {
        let anomalies: Vec<(String, Value)> = (0..250)
            .map(|i| (format!("anomaly {i}"), json!({ "i": i })))
            .collect();
        let v = violation("duplicate", None, anomalies, serde_json::Map::new());
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].message, "anomaly 0 (249 more like this in details)");
        assert_eq!(v[0].details["count"], 250);
        assert_eq!(v[0].details["omitted"], 150);
        assert_eq!(
            v[0].details["anomalies"].as_array().unwrap().len(),
            MAX_DETAILS
        );
        assert_eq!(v[0].details["anomalies"][3]["message"], "anomaly 3");
        assert!(violation("duplicate", None, Vec::new(), serde_json::Map::new()).is_empty());
    }
}
