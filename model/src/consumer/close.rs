//! `KafkaConsumer.close()`: the application closes its consumer cleanly (the testbed's `close`
//! and `client-leave` faults, [`crate::protocol::Message::Close`]).
//!
//! # When
//! The application's own thread calls `close()`, so it does so between two `poll()` calls: a
//! consumer blocked in `poll(timeout)` is woken (`wakeup()`, then `close()`), one processing a
//! poll's records finishes them first (and its commit after processing, `commit = "sync"` or
//! `"async"`), and then closes instead of polling again.
//!
//! # What (Kafka's `ConsumerCoordinator.close` and `AbstractCoordinator.maybeLeaveGroup`)
//! 1. The commit on close: with `enable.auto.commit` (`commit = "auto"`) the consumer commits
//!    every consumed position synchronously (`maybeAutoCommitOffsetsSync`); with
//!    `commit = "sync"` or `"async"` the application's `onPartitionsRevoked`, which
//!    `onLeavePrepare` calls, does `commitSync()`. Both retry like `commitSync()` until
//!    `default.api.timeout.ms`. `before-processing` and `none` commit nothing more.
//! 2. `onLeavePrepare`: a member of a stable generation revokes its partitions
//!    (`partitions-revoked`); one whose generation was reset or is rebalancing has lost them
//!    (`partitions-lost`).
//! 3. LeaveGroup, for a dynamic member only: a static member (`group.instance.id`, KIP-345)
//!    leaves no group on close, so its restart within `session.timeout.ms` gets its
//!    partitions back without a rebalance.
//! 4. The consumer stops: it sends nothing more and ignores every answer and timer (its last
//!    requests still go out, as the socket of a closing `KafkaConsumer` flushes them).

use super::coordinator::CommitKind;
use super::{CommitMode, ConsumerClient, ConsumerTimer};
use crate::effects::Effects;

/// Where a `close()` stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum CloseState {
    /// The application will call `close()` when it next would poll.
    Requested,
    /// `close()` waits for its commit (operation id).
    Committing(u64),
    /// Closed: the process does nothing more.
    Closed,
}

impl ConsumerClient {
    /// Whether the consumer is closed (every input is then ignored).
    pub(super) fn is_closed(&self) -> bool {
        self.close == Some(CloseState::Closed)
    }

    /// The application decides to close the consumer.
    pub(super) fn on_close_requested(&mut self, out: &mut Effects<ConsumerTimer>) {
        if self.close.is_some() {
            return;
        }
        if !self.started {
            // Closed before it was created: nothing to commit or leave.
            self.close = Some(CloseState::Closed);
            return;
        }
        self.close = Some(CloseState::Requested);
        if self.blocked_poll.take().is_some() {
            // `wakeup()` ends the blocked poll; the application closes.
            self.begin_close(out);
        }
        // Otherwise the application is processing (or in `commitSync()`): `app_poll` closes.
    }

    /// Called where the application would call `poll()`: true when it closes instead.
    pub(super) fn close_instead_of_poll(&mut self, out: &mut Effects<ConsumerTimer>) -> bool {
        match self.close {
            None => false,
            Some(CloseState::Requested) => {
                self.begin_close(out);
                true
            }
            Some(_) => true,
        }
    }

    /// `close()`: the commit on close, if the commit mode makes one, then the leave.
    fn begin_close(&mut self, out: &mut Effects<ConsumerTimer>) {
        let kind = match self.workload.commit {
            CommitMode::Sync | CommitMode::Async if self.membership.is_some() => {
                Some(CommitKind::Revoke { auto: false })
            }
            CommitMode::Auto if self.config.enable_auto_commit => {
                Some(CommitKind::Revoke { auto: true })
            }
            _ => None,
        };
        match kind.and_then(|k| self.start_commit(k, out)) {
            Some(op_id) => {
                self.close = Some(CloseState::Committing(op_id));
                out.timer(
                    self.config.default_api_timeout_ms,
                    ConsumerTimer::CommitDeadline { op_id },
                );
            }
            None => self.finish_close(out),
        }
    }

    /// A commit completed: the one `close()` waited for lets it go on.
    pub(super) fn on_close_commit_completed(
        &mut self,
        op_id: u64,
        out: &mut Effects<ConsumerTimer>,
    ) {
        if self.close == Some(CloseState::Committing(op_id)) {
            self.finish_close(out);
        }
    }

    /// `onLeavePrepare`, LeaveGroup (dynamic members), and the consumer stops.
    fn finish_close(&mut self, out: &mut Effects<ConsumerTimer>) {
        if self.membership.is_some() {
            self.revoke_on_leave(out);
            self.leave_group("the consumer is being closed", out);
            // `onLeavePrepare`: partitions lost by a generation reset are given up now.
            self.apply_partitions_lost(out);
        }
        self.close = Some(CloseState::Closed);
    }
}
