//! A processor: the consume-transform-produce loop of a Kafka Streams application (or of
//! Kafka's `TransactionalMessageCopier`, Jepsen's transactional client), made of one consumer
//! in subscribe mode and one producer, in one process (SCENARIOS.md `[[processors]]`).
//!
//! # The loop
//! The consumer polls its group's partitions of the `input` topic. For each non-empty poll the
//! application transforms every input record into one output record sent to the `output` topic
//! at once (`send` is asynchronous; key: the input partition number, so an input partition's
//! outputs keep to one output partition; value: see below), and spends `processing_ms` on the
//! poll meanwhile, as a Kafka Streams task sends its outputs while it processes and commits
//! after. What follows depends on the mode:
//!
//! * **Exactly-once** (a `transactional.id`; KIP-98, KIP-447): the producer ran
//!   `initTransactions()` at start. Per poll: `beginTransaction()`, the sends,
//!   `sendOffsetsToTransaction(offsets, groupMetadata)` with the position after the last record
//!   of each input partition and the group metadata of the member that read them (taken when
//!   the poll returned, so a coordinator that moved the partitions since fences the commit),
//!   `commitTransaction()`; a poll read while the member had no generation (its partitions
//!   lost) is aborted instead, as Kafka Streams closes lost tasks dirty. When the transaction commits
//!   the consumer polls again. When it aborts (an abortable error, a fenced generation) or its
//!   outcome is unknown, the consumer first rewinds every partition to the group's committed
//!   offset (Kafka Streams resets its tasks; without it the aborted inputs would be skipped,
//!   KAFKA-17582). A fenced producer (PRODUCER_FENCED) is closed and a new instance runs
//!   `initTransactions()` with the same `transactional.id` (the producer does this itself, see
//!   `producer/transactions.rs`). The consumer reads with `isolation.level = read_committed`
//!   unless the scenario says otherwise, and its OffsetFetch asks for stable offsets, so a new
//!   owner of a partition waits for the previous owner's transaction (UNSTABLE_OFFSET_COMMIT).
//!
//!   With `commit.interval.ms` above 0 (see [`ProcessorClient::with_commit_interval_ms`]) one
//!   transaction spans several polls, as a Kafka Streams task's does: after a poll's outputs
//!   are sent and its processing is over, the consumer polls again inside the same
//!   transaction, and the transaction commits (with the positions after the last record of
//!   every poll it holds) once the interval has passed since `beginTransaction()`: at the end
//!   of the first poll processed after that, or, when no records come, by leaving the blocked
//!   `poll()` when the interval is up. A poll that returns under another generation or member
//!   id than the transaction's first (a rebalance in between) dooms the transaction: it is
//!   aborted at its end and the consumer rewinds, as Kafka Streams closes a migrated task
//!   dirty. A transaction the producer ends early (fenced) while the consumer polls is
//!   finished the same way once the poll is left.
//! * **At-least-once** (no `transactional.id`): the sends, a flush (wait for every send's
//!   outcome), then `commitSync()` of the consumer's positions (the consumer's `sync` commit
//!   mode). A crash or a rebalance between the sends and the commit makes the next owner
//!   process those inputs again: their outputs are written twice.
//!
//! # Output values
//! The checkers tie an output to its input through the transaction that carries both (the
//! `poll` and `send` micro-operations of one `txn` operation, `check/exactly_once.rs`), and
//! they need every value a transaction writes to be unique (`aborted-read` looks a read value's
//! writer up by value). So in exactly-once mode an output value is unique per send:
//! `1 << 63 | (processor + 1) << 48 | (incarnation & 0xff) << 40 | n`. In at-least-once mode
//! there are no transactions, and an output is derived from its input alone,
//! `1 << 62 | input value` (input values stay below 2^62), so an input processed twice writes
//! the same output value twice: Jepsen's `duplicate`.
//!
//! # The history
//! Exactly-once: one `txn` operation per transaction (from the producer), whose micro-operations
//! start with the `poll` that fed it, with the `group` and input `offsets` it commits; the
//! consumer's own `poll` and `process` operations are not recorded (the `txn` holds them), its
//! OffsetFetch and other operations are. At-least-once: the consumer's `poll` and `commit`
//! operations and the producer's `send` operations, as plain clients record them. Op ids are
//! made unique within the process: the consumer's are doubled, the producer's doubled plus one.
//!
//! # How the two clients share the process
//! Each keeps its own state machine; this actor routes messages to the one that sent the
//! request (answers by type, and FindCoordinator and Metadata answers by correlation id: the
//! producer's ids start at `(incarnation | 0x8000) << 32`), wraps their timers, and edits their
//! effects: it holds back the consumer's "processing done, poll again" timer until the output is
//! written (and committed).

use crate::consumer::{ConsumerClient, ConsumerTimer};
use crate::effects::{Actor, Effect, Effects};
use crate::event::{CommitOffset, OpType, OpValue, PolledRecord, TxnMop};
use crate::producer::{ConsumerGroupMetadata, ProducerClient, ProducerTimer};
use crate::protocol::*;
use crate::types::*;
use std::collections::{BTreeMap, BTreeSet};

#[cfg(test)]
mod tests;

/// The bit set in the correlation ids of the producer half (see the module documentation).
const PRODUCER_CORR_BIT: u64 = 0x8000;

/// How long the application waits before trying again to start writing a poll's output when
/// its producer cannot take it yet (metadata unknown, `initTransactions()` still running), ms.
pub const OUTPUT_RETRY_MS: u64 = 10;

/// Kafka Streams' `commit.interval.ms` (`StreamsConfig.COMMIT_INTERVAL_MS_CONFIG`): how often,
/// in ms, a processor commits. ksim's default, 0, commits after every poll (a transaction per
/// poll, as processors always did here); Kafka Streams' own default is 30000 ms, and 100 ms
/// under `processing.guarantee = exactly_once_v2`.
pub const COMMIT_INTERVAL_MS_DEFAULT: u64 = 0;

/// Timers of a processor.
#[derive(Debug, Clone, PartialEq)]
pub enum ProcessorTimer {
    Consumer(ConsumerTimer),
    Producer(ProducerTimer),
    /// The application finished processing poll number `poll`.
    ProcessingDone {
        poll: u64,
    },
    /// The application tries again to send poll `poll`'s outputs (its producer could not take
    /// them yet).
    OutputRetry {
        poll: u64,
    },
    /// `commit.interval.ms` has passed since the transaction `op_id` (the producer's) began:
    /// commit it if the consumer is polling (or end it, if the producer already did).
    CommitDue {
        op_id: u64,
    },
}

/// Where the application stands.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Stage {
    /// Polling (inside the consumer's loop).
    Polling,
    /// Processing the records of poll number `poll`: its outputs are sent (`started`) or wait
    /// for the producer; its processing time is over (`processed`) or not.
    Processing {
        poll: u64,
        started: bool,
        processed: bool,
    },
    /// Exactly-once: the transaction `op_id` (the producer's) carries the poll's output.
    InTransaction { op_id: u64 },
    /// At-least-once: waiting for the poll's sends to complete (flush).
    Flushing,
}

/// A processor client process (see the module documentation).
#[derive(Debug)]
pub struct ProcessorClient {
    pub index: u32,
    consumer: ConsumerClient,
    producer: ProducerClient,
    /// Exactly-once (the producer has a `transactional.id`).
    exactly_once: bool,
    incarnation: u64,
    stage: Stage,
    /// The records of the poll being processed.
    records: Vec<PolledRecord>,
    /// Exactly-once: the transaction (the producer's op id) holding the poll's outputs.
    txn_op: Option<u64>,
    /// The consumer's group metadata when the poll returned: the member that read the
    /// records, which `sendOffsetsToTransaction` names (KIP-447).
    poll_group: Option<ConsumerGroupMetadata>,
    /// At-least-once: the poll's sends (the producer's op ids) not yet completed.
    pending_sends: BTreeSet<u64>,
    /// `commit.interval.ms` (see [`COMMIT_INTERVAL_MS_DEFAULT`]).
    commit_interval_ms: u64,
    /// Exactly-once: the polls the open transaction holds, in order, each with the number of
    /// sends the transaction had before it (where its `poll` micro-operation goes).
    txn_polls: Vec<(usize, Vec<PolledRecord>)>,
    /// Exactly-once: the sends of the open transaction so far.
    txn_sends: usize,
    /// When the open transaction began (`beginTransaction()`).
    txn_began: Instant,
    /// The open transaction must abort: a later poll of it ran under another generation or
    /// member than its first.
    txn_doomed: bool,
    /// The producer ended the open transaction (this outcome) while the consumer was polling
    /// (`commit.interval.ms` above 0); the processor finishes it once the poll is left.
    txn_ended: Option<OpType>,
    polls: u64,
    next_output: u64,
    now: Instant,
}

impl ProcessorClient {
    /// Processor `index`, process number `incarnation` of it (0 first, one more per restart),
    /// made of `consumer` (subscribe mode, committing as the mode says: `none` for
    /// exactly-once, `sync` for at-least-once) and `producer` (on the output topic; a
    /// `transactional.id` makes the processor exactly-once). The two are set up here: their
    /// correlation ids apart, the producer driven.
    pub fn new(
        index: u32,
        incarnation: u64,
        consumer: ConsumerClient,
        producer: ProducerClient,
        exactly_once: bool,
    ) -> Self {
        ProcessorClient {
            index,
            consumer: consumer.with_incarnation(incarnation),
            producer: producer
                .with_incarnation(incarnation | PRODUCER_CORR_BIT)
                .driven(),
            exactly_once,
            incarnation,
            stage: Stage::Polling,
            records: Vec::new(),
            txn_op: None,
            poll_group: None,
            pending_sends: BTreeSet::new(),
            commit_interval_ms: COMMIT_INTERVAL_MS_DEFAULT,
            txn_polls: Vec::new(),
            txn_sends: 0,
            txn_began: Instant(0),
            txn_doomed: false,
            txn_ended: None,
            polls: 0,
            next_output: 0,
            now: Instant(0),
        }
    }

    /// Sets `commit.interval.ms`, in ms (Kafka Streams' `StreamsConfig.COMMIT_INTERVAL_MS_CONFIG`;
    /// see [`COMMIT_INTERVAL_MS_DEFAULT`]): above 0, an exactly-once processor keeps one
    /// transaction open across polls until this long after it began (module documentation).
    /// An at-least-once processor commits after every poll whatever the value.
    pub fn with_commit_interval_ms(mut self, commit_interval_ms: u64) -> Self {
        self.commit_interval_ms = commit_interval_ms;
        self
    }

    /// The output value for `input` (see the module documentation).
    fn output_value(&mut self, input: u64) -> u64 {
        if self.exactly_once {
            self.next_output += 1;
            (1 << 63)
                | ((self.index as u64 + 1) << 48)
                | ((self.incarnation & 0xff) << 40)
                | (self.next_output & ((1 << 40) - 1))
        } else {
            debug_assert!(input < (1 << 62), "input value {input} above 2^62");
            at_least_once_output(input)
        }
    }

    /// Runs a consumer handler and carries out its effects.
    fn with_consumer(
        &mut self,
        out: &mut Effects<ProcessorTimer>,
        f: impl FnOnce(&mut ConsumerClient, &mut Effects<ConsumerTimer>),
    ) {
        let mut c = Effects::new();
        f(&mut self.consumer, &mut c);
        self.consumer_effects(c, out);
    }

    /// Runs a producer handler and carries out its effects.
    fn with_producer(
        &mut self,
        out: &mut Effects<ProcessorTimer>,
        f: impl FnOnce(&mut ProducerClient, &mut Effects<ProducerTimer>),
    ) {
        let mut p = Effects::new();
        f(&mut self.producer, &mut p);
        self.producer_effects(p, out);
    }

    /// The consumer's effects: a non-empty poll starts processing (its "poll again" timer is
    /// held back), its poll and process operations are left out in exactly-once mode (and the
    /// process operations in both: the outputs say what was processed).
    fn consumer_effects(&mut self, c: Effects<ConsumerTimer>, out: &mut Effects<ProcessorTimer>) {
        let mut started = false;
        for e in c.list {
            match e {
                Effect::Op(mut op) => {
                    if let (OpValue::Poll { records }, OpType::Ok) = (&op.value, op.op_type) {
                        if !records.is_empty() {
                            assert_eq!(self.stage, Stage::Polling, "processor-{}", self.index);
                            self.records = records.clone();
                            let group = self.consumer.group_metadata();
                            if self.txn_op.is_none() {
                                self.poll_group = group;
                            } else if !same_member(&self.poll_group, &group) {
                                // A rebalance between two polls of one transaction.
                                self.txn_doomed = true;
                            }
                            self.polls += 1;
                            self.stage = Stage::Processing {
                                poll: self.polls,
                                started: false,
                                processed: false,
                            };
                            started = true;
                        }
                    }
                    let skip = match op.value {
                        OpValue::Process { .. } => true,
                        OpValue::Poll { .. } => self.exactly_once,
                        _ => false,
                    };
                    if !skip {
                        op.op_id *= 2;
                        out.op(op);
                    }
                }
                Effect::SetTimer {
                    after_ms,
                    timer: ConsumerTimer::Poll,
                } if started => {
                    // The processing time the consumer drew; the poll itself waits for us.
                    started = false;
                    out.timer(
                        after_ms,
                        ProcessorTimer::ProcessingDone { poll: self.polls },
                    );
                }
                Effect::SetTimer { after_ms, timer } => {
                    out.timer(after_ms, ProcessorTimer::Consumer(timer))
                }
                Effect::Send { to, msg } => out.send(to, msg),
                Effect::SendTracked { to, msg } => out.send_tracked(to, msg),
                Effect::Disk(d) => out.disk(d),
                Effect::Event(ev) => out.event(ev),
                Effect::Halt { reason } => out.halt(reason),
                Effect::CloseConnection { peer } => out.list.push(Effect::CloseConnection { peer }),
            }
        }
        assert!(
            !started,
            "processor-{}: a poll without its processing timer",
            self.index
        );
        if let Stage::Processing {
            poll,
            started: false,
            ..
        } = self.stage
        {
            self.start_output(poll, out);
        }
    }

    /// The producer's effects: its `txn` operations get the poll, group and offsets of the
    /// transaction; a completed transaction or flush lets the consumer poll again.
    fn producer_effects(&mut self, p: Effects<ProducerTimer>, out: &mut Effects<ProcessorTimer>) {
        let mut finished: Option<OpType> = None;
        for e in p.list {
            match e {
                Effect::Op(mut op) => {
                    match (&mut op.value, &self.stage) {
                        (
                            OpValue::Txn {
                                mops,
                                group,
                                offsets,
                                ..
                            },
                            stage,
                        ) => {
                            if self.txn_polls.is_empty() {
                                mops.insert(
                                    0,
                                    TxnMop::Poll {
                                        records: self.records.clone(),
                                    },
                                );
                                *offsets = input_offsets(&self.records);
                            } else {
                                insert_polls(mops, &self.txn_polls);
                                *offsets = input_offsets(&self.txn_records());
                            }
                            *group = self.consumer.group_metadata().map(|g| g.group_id);
                            // The transaction ended: committed or aborted as asked, or ended
                            // early by a fatal error while the poll was still processed (or,
                            // with `commit.interval.ms`, while the consumer polled).
                            if op.op_type != OpType::Invoke && self.txn_op == Some(op.op_id) {
                                if *stage != Stage::Polling {
                                    finished = Some(op.op_type);
                                } else {
                                    self.txn_ended = Some(op.op_type);
                                }
                            }
                        }
                        (OpValue::Send { .. }, _) if op.op_type != OpType::Invoke => {
                            self.pending_sends.remove(&op.op_id);
                            if self.stage == Stage::Flushing && self.pending_sends.is_empty() {
                                finished = Some(OpType::Ok);
                            }
                        }
                        _ => {}
                    }
                    op.op_id = op.op_id * 2 + 1;
                    out.op(op);
                }
                Effect::SetTimer { after_ms, timer } => {
                    out.timer(after_ms, ProcessorTimer::Producer(timer))
                }
                Effect::Send { to, msg } => out.send(to, msg),
                Effect::SendTracked { to, msg } => out.send_tracked(to, msg),
                Effect::Disk(d) => out.disk(d),
                Effect::Event(ev) => out.event(ev),
                Effect::Halt { reason } => out.halt(reason),
                Effect::CloseConnection { peer } => out.list.push(Effect::CloseConnection { peer }),
            }
        }
        if let Some(outcome) = finished {
            self.output_done(outcome, out);
        } else if self.txn_ended.is_some() && self.stage == Stage::Polling {
            self.end_between_polls(out);
        }
    }

    /// Sends poll `poll`'s outputs (beginning its transaction first, exactly-once), or tries
    /// again after [`OUTPUT_RETRY_MS`] while the producer cannot take them.
    fn start_output(&mut self, poll: u64, out: &mut Effects<ProcessorTimer>) {
        let Stage::Processing {
            poll: p,
            started: false,
            processed,
        } = self.stage
        else {
            return;
        };
        if p != poll {
            return;
        }
        // With `commit.interval.ms`, a transaction may already be open (a later poll of it).
        let continuing = self.exactly_once && self.txn_op.is_some();
        if continuing && self.txn_ended.is_some() {
            // The producer ended the transaction already: these outputs are not sent; the
            // transaction is finished (and the consumer rewound) once processing is over.
            self.stage = Stage::Processing {
                poll,
                started: true,
                processed,
            };
            if processed {
                self.finish_output(poll, out);
            }
            return;
        }
        let ready = self.producer.can_send()
            && (!self.exactly_once || continuing || self.producer.transaction_ready());
        if !ready {
            out.timer(OUTPUT_RETRY_MS, ProcessorTimer::OutputRetry { poll });
            return;
        }
        self.stage = Stage::Processing {
            poll,
            started: true,
            processed,
        };
        let now = self.now;
        let inputs: Vec<(i32, u64)> = self
            .records
            .iter()
            .map(|r| (r.tp.partition, r.value))
            .collect();
        let outputs: Vec<(Option<String>, u64)> = inputs
            .into_iter()
            .map(|(partition, value)| (Some(format!("k{partition}")), self.output_value(value)))
            .collect();
        let mut p = Effects::new();
        if self.exactly_once && self.commit_interval_ms > 0 {
            self.txn_polls.push((self.txn_sends, self.records.clone()));
            self.txn_sends += outputs.len();
        }
        if self.exactly_once && !continuing {
            let op_id = self.producer.begin_transaction(&mut p);
            self.txn_op = Some(op_id);
            self.txn_began = now;
            if self.commit_interval_ms > 0 {
                out.timer(self.commit_interval_ms, ProcessorTimer::CommitDue { op_id });
            }
        }
        for (key, value) in outputs {
            let id = self.producer.send_record(now, key, value, &mut p);
            if !self.exactly_once {
                self.pending_sends.insert(id);
            }
        }
        self.producer_effects(p, out);
        if processed && self.stage != Stage::Polling {
            self.finish_output(poll, out);
        }
    }

    /// The poll's processing time is over: its output is committed once sent.
    fn on_processing_done(&mut self, poll: u64, out: &mut Effects<ProcessorTimer>) {
        let Stage::Processing {
            poll: p, started, ..
        } = self.stage
        else {
            return;
        };
        if p != poll {
            return;
        }
        self.stage = Stage::Processing {
            poll,
            started,
            processed: true,
        };
        if started {
            self.finish_output(poll, out);
        }
    }

    /// Processed and sent: exactly-once, `sendOffsetsToTransaction` and
    /// `commitTransaction()`; at-least-once, wait for the sends (flush), then the consumer's
    /// `commitSync()`.
    fn finish_output(&mut self, poll: u64, out: &mut Effects<ProcessorTimer>) {
        debug_assert!(matches!(
            self.stage,
            Stage::Processing { poll: p, started: true, processed: true } if p == poll
        ));
        if self.exactly_once {
            if let Some(outcome) = self.txn_ended {
                self.output_done(outcome, out);
                return;
            }
            let group = self.poll_group.as_ref().expect("a processor has a group");
            let keep_open = self.commit_interval_ms > 0
                && !self.txn_doomed
                && group.generation_id >= 0
                && self.now.as_ms() < self.txn_began.as_ms() + self.commit_interval_ms;
            if keep_open {
                // Poll again inside the same transaction (`commit.interval.ms`).
                self.stage = Stage::Polling;
                self.records.clear();
                let now = self.now;
                self.with_consumer(out, |c, o| c.on_timeout(now, ConsumerTimer::Poll, o));
                return;
            }
            self.commit_open_transaction(out);
        } else if self.pending_sends.is_empty() {
            self.output_done(OpType::Ok, out);
        } else {
            self.stage = Stage::Flushing;
        }
    }

    /// Every record the polls of the open transaction read, in poll order
    /// (`commit.interval.ms` above 0).
    fn txn_records(&self) -> Vec<PolledRecord> {
        self.txn_polls
            .iter()
            .flat_map(|(_, r)| r.iter().cloned())
            .collect()
    }

    /// Exactly-once: `sendOffsetsToTransaction` with the positions after every poll the
    /// transaction holds, and `commitTransaction()`; or `abortTransaction()` when the records
    /// were read without a generation or across a rebalance.
    fn commit_open_transaction(&mut self, out: &mut Effects<ProcessorTimer>) {
        let op_id = self.txn_op.expect("a transaction holds the outputs");
        if self.commit_interval_ms > 0 {
            // Every record the transaction read (the invariant of `InTransaction`).
            self.records = self.txn_records();
        }
        self.stage = Stage::InTransaction { op_id };
        let now = self.now;
        let group = self.poll_group.clone().expect("a processor has a group");
        if group.generation_id < 0 || self.txn_doomed {
            // The records were read without a membership (a generation reset: the
            // partitions are lost), or, with `commit.interval.ms`, under two generations.
            // Kafka Streams closes such tasks dirty, aborting their transaction; committing
            // would send a TxnOffsetCommit with generation -1 (which the coordinator accepts
            // as a pre-KIP-447 client's) or with a generation some records were not read in.
            let mut p = Effects::new();
            self.producer.abort_transaction(now, &mut p);
            self.producer_effects(p, out);
            return;
        }
        let offsets = input_offsets(&self.records)
            .into_iter()
            .map(|o| OffsetCommitPartition {
                tp: o.tp,
                committed_offset: o.offset,
            })
            .collect();
        let mut p = Effects::new();
        self.producer
            .send_offsets_to_transaction(now, offsets, group, &mut p);
        self.producer.commit_transaction(now, &mut p);
        self.producer_effects(p, out);
    }

    /// `commit.interval.ms`: the open transaction is due (its interval is up, or the producer
    /// ended it) while the consumer polls. When the application is blocked in `poll()`, the
    /// poll returns empty and the transaction commits (or is finished as the producer ended
    /// it); elsewhere in the consumer's loop, it tries again after [`OUTPUT_RETRY_MS`]. While
    /// records are being processed, the end of their processing decides instead.
    fn end_between_polls(&mut self, out: &mut Effects<ProcessorTimer>) {
        let Some(op_id) = self.txn_op else { return };
        if self.stage != Stage::Polling {
            return;
        }
        let due = self.txn_ended.is_some()
            || self.now.as_ms() >= self.txn_began.as_ms() + self.commit_interval_ms;
        if !due {
            return;
        }
        if !self.consumer.leave_blocked_poll() {
            out.timer(OUTPUT_RETRY_MS, ProcessorTimer::CommitDue { op_id });
            return;
        }
        match self.txn_ended {
            Some(outcome) => self.output_done(outcome, out),
            None => self.commit_open_transaction(out),
        }
    }

    /// The poll's output is written: committed (`Ok`), or, exactly-once, aborted or unknown
    /// (the consumer rewinds to the committed offsets first). The consumer then goes on (with
    /// at-least-once, its `commitSync()` first).
    fn output_done(&mut self, outcome: OpType, out: &mut Effects<ProcessorTimer>) {
        self.stage = Stage::Polling;
        self.records.clear();
        self.txn_op = None;
        self.poll_group = None;
        self.pending_sends.clear();
        self.txn_polls.clear();
        self.txn_sends = 0;
        self.txn_doomed = false;
        self.txn_ended = None;
        let now = self.now;
        self.with_consumer(out, |c, o| {
            if outcome != OpType::Ok {
                c.rewind_to_committed(o);
            }
            c.on_timeout(now, ConsumerTimer::Poll, o);
        });
    }

    /// Which half sent the request `corr` answers.
    fn is_producers(corr: CorrelationId) -> bool {
        (corr.0 >> 32) & PRODUCER_CORR_BIT != 0
    }
}

/// The input positions a poll's records take the group to: per partition, the offset after
/// its last record.
/// The output value an at-least-once processor writes for the input value `input`:
/// `1 << 62 | input` (input values stay below 2^62; see "Output values" in the module
/// documentation). The `exactly-once` checker uses it to find an input's outputs.
pub fn at_least_once_output(input: u64) -> u64 {
    (1 << 62) | input
}

/// Puts each poll of a transaction (with the number of sends the transaction had before it)
/// into the transaction's `send` micro-operations, before the sends it fed.
fn insert_polls(mops: &mut Vec<TxnMop>, polls: &[(usize, Vec<PolledRecord>)]) {
    for (k, (before, records)) in polls.iter().enumerate() {
        let at = (before + k).min(mops.len());
        mops.insert(
            at,
            TxnMop::Poll {
                records: records.clone(),
            },
        );
    }
}

/// Whether two group metadata name the same member of the same generation.
fn same_member(a: &Option<ConsumerGroupMetadata>, b: &Option<ConsumerGroupMetadata>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => a.generation_id == b.generation_id && a.member_id == b.member_id,
        (None, None) => true,
        _ => false,
    }
}

fn input_offsets(records: &[PolledRecord]) -> Vec<CommitOffset> {
    let mut next: BTreeMap<TopicPartition, Offset> = BTreeMap::new();
    for r in records {
        let n = next.entry(r.tp.clone()).or_insert(r.offset.next());
        *n = (*n).max(r.offset.next());
    }
    next.into_iter()
        .map(|(tp, offset)| CommitOffset { tp, offset })
        .collect()
}

impl Actor for ProcessorClient {
    type Timer = ProcessorTimer;

    fn invariants(&self) {
        self.consumer.invariants();
        self.producer.invariants();
        // The state of a transaction spanning polls lives only while it is open.
        if self.txn_op.is_none() {
            assert!(
                self.txn_polls.is_empty() && self.txn_ended.is_none() && !self.txn_doomed,
                "processor-{}: transaction state without a transaction",
                self.index
            );
        }
        assert!(
            self.commit_interval_ms > 0 || self.txn_polls.is_empty(),
            "processor-{}: polls kept for a transaction with commit.interval.ms = 0",
            self.index
        );
        match &self.stage {
            Stage::Polling => assert!(self.records.is_empty(), "processor-{}", self.index),
            _ => assert!(
                !self.records.is_empty(),
                "processor-{}: {:?} without records",
                self.index,
                self.stage
            ),
        }
    }

    fn on_start(&mut self, now: Instant, out: &mut Effects<ProcessorTimer>) {
        self.now = now;
        self.with_consumer(out, |c, o| c.on_start(now, o));
        self.with_producer(out, |p, o| p.on_start(now, o));
    }

    fn on_message(
        &mut self,
        now: Instant,
        from: NodeId,
        msg: Message,
        out: &mut Effects<ProcessorTimer>,
    ) {
        self.now = now;
        let producers = match &msg {
            Message::Close => {
                self.with_consumer(out, |c, o| c.on_message(now, from, Message::Close, o));
                self.with_producer(out, |p, o| p.on_message(now, from, Message::Close, o));
                return;
            }
            Message::MetadataResponse { corr, .. }
            | Message::FindCoordinatorResponse { corr, .. } => Self::is_producers(*corr),
            Message::InitProducerIdResponse { .. }
            | Message::ProduceResponse { .. }
            | Message::AddPartitionsToTxnResponse { .. }
            | Message::AddOffsetsToTxnResponse { .. }
            | Message::EndTxnResponse { .. }
            | Message::TxnOffsetCommitResponse { .. } => true,
            _ => false,
        };
        if producers {
            self.with_producer(out, |p, o| p.on_message(now, from, msg, o));
        } else {
            self.with_consumer(out, |c, o| c.on_message(now, from, msg, o));
        }
    }

    fn on_timeout(
        &mut self,
        now: Instant,
        timer: ProcessorTimer,
        out: &mut Effects<ProcessorTimer>,
    ) {
        self.now = now;
        match timer {
            ProcessorTimer::Consumer(t) => self.with_consumer(out, |c, o| c.on_timeout(now, t, o)),
            ProcessorTimer::Producer(t) => self.with_producer(out, |p, o| p.on_timeout(now, t, o)),
            ProcessorTimer::ProcessingDone { poll } => self.on_processing_done(poll, out),
            ProcessorTimer::OutputRetry { poll } => self.start_output(poll, out),
            ProcessorTimer::CommitDue { op_id } => {
                if self.txn_op == Some(op_id) {
                    self.end_between_polls(out);
                }
            }
        }
    }

    fn on_disconnect(&mut self, now: Instant, peer: NodeId, out: &mut Effects<ProcessorTimer>) {
        self.now = now;
        self.with_consumer(out, |c, o| c.on_disconnect(now, peer, o));
        self.with_producer(out, |p, o| p.on_disconnect(now, peer, o));
    }

    fn on_sent(
        &mut self,
        now: Instant,
        to: NodeId,
        msg: Message,
        out: &mut Effects<ProcessorTimer>,
    ) {
        self.now = now;
        self.with_producer(out, |p, o| p.on_sent(now, to, msg, o));
    }

    fn on_send_failed(
        &mut self,
        now: Instant,
        to: NodeId,
        msg: Message,
        out: &mut Effects<ProcessorTimer>,
    ) {
        self.now = now;
        let producers = match &msg {
            Message::Metadata { corr, .. } | Message::FindCoordinator { corr, .. } => {
                Self::is_producers(*corr)
            }
            Message::InitProducerId { .. }
            | Message::Produce { .. }
            | Message::AddPartitionsToTxn { .. }
            | Message::AddOffsetsToTxn { .. }
            | Message::EndTxn { .. }
            | Message::TxnOffsetCommit { .. } => true,
            _ => false,
        };
        if producers {
            self.with_producer(out, |p, o| p.on_send_failed(now, to, msg, o));
        } else {
            self.with_consumer(out, |c, o| c.on_send_failed(now, to, msg, o));
        }
    }
}
