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

use super::{ConsumerClient, ConsumerTimer, METADATA_REFRESH_MS};
use crate::effects::Effects;
use crate::event::{ClientOp, Event, OpType, OpValue, PolledRecord};
use crate::types::*;

/// How long the application spends on the records of one poll before it polls again, in
/// simulated ms.
pub const POLL_INTERVAL_MS: u64 = 50;

/// The timeout of the application's `poll(timeout)` calls, in simulated ms.
pub const POLL_TIMEOUT_MS: u64 = 1_000;

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

    /// The application calls `poll(POLL_TIMEOUT_MS)`.
    pub(super) fn app_poll(&mut self, out: &mut Effects<ConsumerTimer>) {
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
            return;
        }
        self.complete_poll(out);
    }

    /// Returns from the current poll with an exception or buffered records; the application
    /// processes them and polls again after [`POLL_INTERVAL_MS`].
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
                value: OpValue::Poll { records },
                error: None,
            });
        }
        out.timer(POLL_INTERVAL_MS, ConsumerTimer::Poll);
    }

    pub(super) fn start(&mut self, now: Instant, out: &mut Effects<ConsumerTimer>) {
        self.started = true;
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
