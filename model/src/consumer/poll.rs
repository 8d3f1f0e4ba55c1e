//! The application's side of `KafkaConsumer`: its `poll(timeout)` loop, which returns up to
//! `max.poll.records` buffered records (Kafka's `FetchCollector`) or throws the exception
//! raised for a partition, and its late start and seeks.
//!
//! # The application
//! The workload calls `poll(POLL_TIMEOUT_MS)` in a loop: a poll returns at once with up to
//! `max.poll.records` buffered records, or blocks until a fetch brings records or the timeout
//! elapses; after a poll that returned records the application spends [`POLL_INTERVAL_MS`]
//! processing them. It may start late (`start_ms`) and `seek` at given times
//! ([`ConsumerWorkload`]).
//!
//! Each non-empty poll is one Jepsen operation (`invoke`, then `ok` with the records in the
//! order returned), both stamped when the poll returns. A poll that throws is `invoke` then
//! `fail` with the exception's class and Kafka's message. Empty polls are not recorded.
//!
//! # Committing (a consumer with a `group.id`, [`CommitMode`])
//! * `auto`: the application calls no commit; with `enable.auto.commit` the consumer commits
//!   every position asynchronously from inside `poll()` once `auto.commit.interval.ms` has
//!   passed since the last auto commit (Kafka's `maybeAutoCommitOffsetsAsync`, also while a
//!   `poll(timeout)` is blocked: its wait ends at the auto-commit deadline).
//! * `sync`: after processing a poll's records the application calls `commitSync()` and waits
//!   for it (no polling meanwhile), then polls again.
//! * `async`: after processing, `commitAsync()`, then it polls at once.
//! * `before-processing`: `commitSync()` right after `poll()` returns, then it processes
//!   (at-most-once: a crash while processing loses those records for the group).
//! * `none`: the application never commits (and the scenario turns auto commit off).
//!
//! `commitSync()` throwing (a non-retriable error, or `default.api.timeout.ms` expired) is
//! logged by the application, which goes on polling.

use super::{ConsumerClient, ConsumerTimer, METADATA_REFRESH_MS};
use crate::effects::Effects;
use crate::event::{ClientOp, Event, OpType, OpValue, PolledRecord};
use crate::types::*;
use rand::RngCore;

/// How long the application spends on the records of one poll before it polls again, in
/// simulated ms.
pub const POLL_INTERVAL_MS: u64 = 50;

/// The timeout of the application's `poll(timeout)` calls, in simulated ms.
pub const POLL_TIMEOUT_MS: u64 = 1_000;

/// How the application commits its consumed positions (the scenario's `[[consumers]] commit`,
/// SCENARIOS.md "Consumer groups"); see the module documentation. Only meaningful with a
/// `group.id`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub enum CommitMode {
    /// No commit call; `enable.auto.commit` decides (Kafka's default, true).
    #[default]
    Auto,
    /// `commitSync()` after processing each poll.
    Sync,
    /// `commitAsync()` after processing each poll.
    Async,
    /// `commitSync()` of the poll's positions before processing its records.
    BeforeProcessing,
    /// Never commit (`enable.auto.commit` must be false).
    None,
}

impl CommitMode {
    /// Every mode, in the order [`CommitMode::NAMES`] spells them.
    pub const ALL: [CommitMode; 5] = [
        CommitMode::Auto,
        CommitMode::Sync,
        CommitMode::Async,
        CommitMode::BeforeProcessing,
        CommitMode::None,
    ];
    /// The scenario's spellings: `auto`, `sync`, `async`, `before-processing`, `none`.
    pub const NAMES: [&'static str; 5] = ["auto", "sync", "async", "before-processing", "none"];

    /// The scenario's spelling of this mode.
    pub fn name(self) -> &'static str {
        let i = Self::ALL.iter().position(|m| *m == self).expect("listed");
        Self::NAMES[i]
    }

    /// The mode a scenario spells `name`, if any.
    pub fn parse(name: &str) -> Option<CommitMode> {
        Self::NAMES
            .iter()
            .position(|n| *n == name)
            .map(|i| Self::ALL[i])
    }
}

/// What the application does once a `commitSync()` returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum AfterCommit {
    /// `sync`: the records were processed; poll again.
    Poll,
    /// `before-processing`: process the records, then poll.
    Process,
}

/// What the application does besides polling.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConsumerWorkload {
    /// Simulated time (ms since the run started) at which the application creates the
    /// consumer and starts polling; 0 starts at once. A process restarted after this time
    /// starts at once.
    pub start_ms: u64,
    /// `seek(tp, offset)` calls at given times (ms since the run started), applied by the
    /// process that is running at that time (a process started later does not repeat them).
    pub seeks: Vec<SeekAt>,
    /// How the application commits (with a `group.id`).
    pub commit: CommitMode,
    /// Subscribe mode: the consumer joins its `group.id` and consumes what the group assigns
    /// it (`KafkaConsumer.subscribe(topics)`), see `group_membership.rs`.
    pub subscribe: bool,
    /// Subscribe mode: the time spent processing each non-empty poll, uniform in
    /// `[min, max]` ms from [`ConsumerWorkload::seed`]; `None`: [`POLL_INTERVAL_MS`].
    pub processing_ms: Option<(u64, u64)>,
    /// Subscribe mode: later ranges for the processing time, in ascending `at_ms`; a poll
    /// whose processing starts at or after a change's `at_ms` (simulated ms since the run
    /// started) takes that change's range, the last one reached, instead of `processing_ms`.
    /// An application that slows down (a slow downstream) from a given time.
    pub processing_changes: Vec<ProcessingChange>,
    /// Seeds the workload's random choices (the simulation derives it from the run's seed).
    pub seed: u64,
}

/// From `at_ms` (simulated ms since the run started) on, each non-empty poll takes
/// `processing_ms = (min, max)` ms to process, uniform in the range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcessingChange {
    pub at_ms: u64,
    pub processing_ms: (u64, u64),
}

/// One `seek(tp, offset)` of the application.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeekAt {
    pub at_ms: u64,
    pub tp: TopicPartition,
    pub offset: Offset,
}

impl ConsumerClient {
    /// Queues an exception for the next `poll()` and logs it as an internal event.
    pub(super) fn raise(
        &mut self,
        tp: &TopicPartition,
        exception: &str,
        message: String,
        out: &mut Effects<ConsumerTimer>,
    ) {
        out.event(Event::ConsumerError {
            tp: tp.clone(),
            exception: exception.to_string(),
            message: message.clone(),
        });
        self.errors.push_back((exception.to_string(), message));
        if self.blocked_poll.is_some() {
            self.complete_poll(out);
        }
    }

    /// The application's loop after processing a poll's records: `commitSync()` or
    /// `commitAsync()` as its [`CommitMode`] says (with a `group.id`), then `poll()`.
    pub(super) fn app_processed(&mut self, out: &mut Effects<ConsumerTimer>) {
        if let Some((op_id, records)) = self.processing.take() {
            out.op(ClientOp {
                op_type: OpType::Ok,
                op_id,
                value: OpValue::Process {
                    group: self.config.group_id.clone(),
                    records,
                },
                error: None,
            });
        }
        if std::mem::take(&mut self.commit_after_processing) {
            match self.workload.commit {
                CommitMode::Sync => {
                    if self.commit_sync(AfterCommit::Poll, out) {
                        return; // the application waits in commitSync()
                    }
                }
                CommitMode::Async => self.commit_async(out),
                CommitMode::Auto | CommitMode::BeforeProcessing | CommitMode::None => {}
            }
        }
        self.app_poll(out);
    }

    /// The application calls `poll(POLL_TIMEOUT_MS)`. With `enable.auto.commit`, the poll
    /// first commits asynchronously if the auto-commit interval has passed.
    pub(super) fn app_poll(&mut self, out: &mut Effects<ConsumerTimer>) {
        if self.close_instead_of_poll(out) {
            return;
        }
        self.maybe_auto_commit(out);
        self.ensure_active_group(out);
        if self.revoking() {
            // Inside `onPartitionsRevoked` (its commit on revoke): the poll returns once the
            // revocation is over (`resume_poll_after_revoke`).
            self.poll_after_revoke = true;
            return;
        }
        self.fetch_all(out);
        if self.errors.is_empty() && self.buffer.is_empty() {
            self.poll_generation += 1;
            self.blocked_poll = Some(self.poll_generation);
            out.timer(
                POLL_TIMEOUT_MS,
                ConsumerTimer::PollTimeout {
                    generation: self.poll_generation,
                },
            );
            // A blocked poll wakes for the auto commit (Kafka's `timeToNextPoll`).
            if let Some(due_ms) = self.auto_commit_due_ms() {
                let after_ms = due_ms.saturating_sub(self.now.as_ms());
                if after_ms < POLL_TIMEOUT_MS {
                    out.timer(
                        after_ms,
                        ConsumerTimer::AutoCommitDue {
                            generation: self.poll_generation,
                        },
                    );
                }
            }
            return;
        }
        self.complete_poll(out);
    }

    /// Returns from the current poll with an exception or buffered records; the application
    /// processes them and polls again after [`POLL_INTERVAL_MS`] (committing first or after as
    /// its [`CommitMode`] says).
    pub(super) fn complete_poll(&mut self, out: &mut Effects<ConsumerTimer>) {
        self.blocked_poll = None;
        self.next_op += 1;
        let op_id = self.next_op;
        out.op(ClientOp {
            op_type: OpType::Invoke,
            op_id,
            value: OpValue::Poll { records: vec![] },
            error: None,
        });
        if let Some((exception, message)) = self.errors.pop_front() {
            out.op(ClientOp {
                op_type: OpType::Fail,
                op_id,
                value: OpValue::Poll { records: vec![] },
                error: Some(format!("{exception}: {message}")),
            });
        } else {
            let n = (self.config.max_poll_records as usize).min(self.buffer.len());
            let records: Vec<PolledRecord> = self.buffer.drain(..n).collect();
            out.op(ClientOp {
                op_type: OpType::Ok,
                op_id,
                value: OpValue::Poll {
                    records: records.clone(),
                },
                error: None,
            });
            if self.workload.subscribe {
                self.processing = Some((0, records));
            }
            if self.coordinator.is_some() {
                match self.workload.commit {
                    CommitMode::BeforeProcessing => {
                        if self.commit_sync(AfterCommit::Process, out) {
                            return; // processing starts once commitSync() returns
                        }
                    }
                    CommitMode::Sync | CommitMode::Async => self.commit_after_processing = true,
                    CommitMode::Auto | CommitMode::None => {}
                }
            }
        }
        self.start_processing(out);
    }

    /// The application processes what the last poll returned, then polls again: subscribe
    /// mode records the processing as a `process` operation and takes `processing_ms` (or the
    /// range of the last [`ProcessingChange`] reached).
    pub(super) fn start_processing(&mut self, out: &mut Effects<ConsumerTimer>) {
        let mut after_ms = POLL_INTERVAL_MS;
        if let Some((_, records)) = self.processing.take() {
            self.next_op += 1;
            let op_id = self.next_op;
            out.op(ClientOp {
                op_type: OpType::Invoke,
                op_id,
                value: OpValue::Process {
                    group: self.config.group_id.clone(),
                    records: records.clone(),
                },
                error: None,
            });
            self.processing = Some((op_id, records));
            let now_ms = self.now.as_ms();
            let range = self
                .workload
                .processing_changes
                .iter()
                .rev()
                .find(|c| c.at_ms <= now_ms)
                .map(|c| c.processing_ms)
                .or(self.workload.processing_ms);
            if let Some((lo, hi)) = range {
                after_ms = if hi > lo {
                    lo + self.rng.next_u64() % (hi - lo + 1)
                } else {
                    lo
                };
            }
        }
        out.timer(after_ms, ConsumerTimer::Poll);
    }

    pub(super) fn start(&mut self, now: Instant, out: &mut Effects<ConsumerTimer>) {
        self.started = true;
        self.start_coordinator();
        self.start_membership(out);
        self.request_metadata(out);
        out.timer(POLL_INTERVAL_MS, ConsumerTimer::Poll);
        out.timer(METADATA_REFRESH_MS, ConsumerTimer::MetadataRefresh);
        for s in self.workload.seeks.clone() {
            if s.at_ms >= now.as_ms() {
                out.timer(
                    s.at_ms - now.as_ms(),
                    ConsumerTimer::Seek {
                        tp: s.tp,
                        offset: s.offset,
                    },
                );
            }
        }
    }
}
