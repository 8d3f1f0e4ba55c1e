//! What a state machine asks the world to do.
//!
//! Handlers never perform I/O. They push [`Effect`]s into an [`Effects`] buffer; the node's
//! shell executes them **in order** after the handler returns. Disk effects come before the
//! sends that depend on them, and the shell completes a `Sync` before executing any later
//! `Send` (etcd raft: "persisted messages should be sent after all corresponding writes are
//! persisted"). That ordering is what makes `acks=all` and flush policies testable.

use crate::event::{ClientOp, Event};
use crate::protocol::Message;
use crate::types::{Instant, LeaderEpoch, NodeId, Offset, TopicPartition};

/// A disk operation on one file of the node's own disk (paths are relative to the node's
/// data directory, e.g. `events-0/00000000000000000000.log`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DiskOp {
    /// Append bytes at the end of the file (creating it). Volatile until a `Sync`.
    Append { file: String, data: Vec<u8> },
    /// Cut the file to `len` bytes. Volatile until a `Sync`.
    Truncate { file: String, len: u64 },
    /// Make every earlier write to the file durable (fsync).
    Sync { file: String },
    /// Replace the whole file atomically and durably (write temp, fsync, rename), as Kafka
    /// writes its checkpoint files.
    WriteAtomic { file: String, data: Vec<u8> },
    /// Delete the file.
    Delete { file: String },
    /// Delete every file under the directory `dir` (names starting with `dir/`), as Kafka
    /// removes a deleted partition's log directory.
    DeleteDir { dir: String },
}

/// One effect.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect<T> {
    /// Send a message to another node (fire and forget; loss is the receiver's timeout's job).
    Send { to: NodeId, msg: Message },
    /// Like `Send`, and the shell calls `on_sent` once the message's bytes are written to the
    /// connection (or `on_send_failed` if they never are): what an `acks=0` producer waits for.
    SendTracked { to: NodeId, msg: Message },
    /// Call `on_timeout(timer)` after `after_ms` simulated milliseconds. Timers cannot be
    /// cancelled; a handler ignores a timer that no longer applies (carry a generation in it).
    SetTimer { after_ms: u64, timer: T },
    /// Change the node's disk.
    Disk(DiskOp),
    /// An internal event for the event log and the invariant checkers.
    Event(Event),
    /// A client operation for the Jepsen-style history.
    Op(ClientOp),
    /// The process stops itself (Kafka halts on a fatal log-directory error).
    Halt { reason: String },
    /// Close the connection with `peer`: it sees a disconnect (`on_disconnect`). Kafka does this
    /// when an `acks=0` produce fails, so that the producer, which reads no answer, notices.
    CloseConnection { peer: NodeId },
}

/// The buffer handlers write their effects into.
#[derive(Debug)]
pub struct Effects<T> {
    pub list: Vec<Effect<T>>,
}

impl<T> Default for Effects<T> {
    fn default() -> Self {
        Effects { list: Vec::new() }
    }
}

impl<T> Effects<T> {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn send(&mut self, to: NodeId, msg: Message) {
        self.list.push(Effect::Send { to, msg });
    }
    pub fn send_tracked(&mut self, to: NodeId, msg: Message) {
        self.list.push(Effect::SendTracked { to, msg });
    }
    pub fn timer(&mut self, after_ms: u64, timer: T) {
        self.list.push(Effect::SetTimer { after_ms, timer });
    }
    pub fn disk(&mut self, op: DiskOp) {
        self.list.push(Effect::Disk(op));
    }
    pub fn event(&mut self, e: Event) {
        self.list.push(Effect::Event(e));
    }
    pub fn op(&mut self, op: ClientOp) {
        self.list.push(Effect::Op(op));
    }
    pub fn halt(&mut self, reason: impl Into<String>) {
        self.list.push(Effect::Halt {
            reason: reason.into(),
        });
    }
    pub fn drain(&mut self) -> std::vec::Drain<'_, Effect<T>> {
        self.list.drain(..)
    }
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// The messages of the `Send` effects (not `SendTracked`), in order, cloned; for tests
    /// that inspect what a handler sent.
    pub fn sent(&self) -> Vec<Message> {
        self.list
            .iter()
            .filter_map(|e| match e {
                Effect::Send { msg, .. } => Some(msg.clone()),
                _ => None,
            })
            .collect()
    }

    /// The internal events, in order, cloned.
    pub fn events(&self) -> Vec<Event> {
        self.list
            .iter()
            .filter_map(|e| match e {
                Effect::Event(ev) => Some(ev.clone()),
                _ => None,
            })
            .collect()
    }

    /// The client operations, in order, cloned.
    pub fn ops(&self) -> Vec<ClientOp> {
        self.list
            .iter()
            .filter_map(|e| match e {
                Effect::Op(op) => Some(op.clone()),
                _ => None,
            })
            .collect()
    }
}

/// A deterministic state machine driven by messages and timers.
///
/// The shell calls `on_start` once per process start (after recovery), then `on_message` and
/// `on_timeout` as messages and timers arrive, passing the simulated time. After every handler
/// (all six `on_*` methods) the shell calls [`Actor::invariants`], so no state change escapes
/// the actor's own assertions (TigerBeetle's `defer self.invariants()`, STYLE.md).
pub trait Actor {
    type Timer: Clone + std::fmt::Debug + Send + 'static;
    fn on_start(&mut self, now: Instant, out: &mut Effects<Self::Timer>);
    fn on_message(
        &mut self,
        now: Instant,
        from: NodeId,
        msg: Message,
        out: &mut Effects<Self::Timer>,
    );
    fn on_timeout(&mut self, now: Instant, timer: Self::Timer, out: &mut Effects<Self::Timer>);
    /// The connection to or from `peer` closed (the peer's process died or reset the
    /// connection), as Kafka's `NetworkClient` sees a disconnect: requests in flight to `peer`
    /// will get no answer. Default: nothing.
    fn on_disconnect(&mut self, _now: Instant, _peer: NodeId, _out: &mut Effects<Self::Timer>) {}
    /// A message sent with [`Effect::SendTracked`] was written to the connection to `to`.
    /// Default: nothing.
    fn on_sent(
        &mut self,
        _now: Instant,
        _to: NodeId,
        _msg: Message,
        _out: &mut Effects<Self::Timer>,
    ) {
    }
    /// `msg` could not be sent to `to` at all (connection refused): it certainly was not
    /// delivered. Default: nothing (the request's timeout handles it).
    fn on_send_failed(
        &mut self,
        _now: Instant,
        _to: NodeId,
        _msg: Message,
        _out: &mut Effects<Self::Timer>,
    ) {
    }
    /// Asserts what must hold between any two handlers; panics with the broken rule and the
    /// state that broke it. Called by the shell after every handler; reads state only and draws
    /// no randomness. Default: nothing to assert.
    fn invariants(&self) {}
    /// For the simulator's replica snapshots (read-only, never changes behaviour): `tp`'s
    /// high watermark and, when this process acts as the partition's leader (it "presumes
    /// leadership", in KafkaReplication.tla's words), its leader epoch; `None` when the process
    /// hosts no replica of `tp`. The simulator asks only at snapshot moments, between handlers,
    /// so the answer is what the process held after its latest handler. Default: hosts no
    /// replica.
    fn replica_probe(&self, _tp: &TopicPartition) -> Option<(Offset, Option<LeaderEpoch>)> {
        None
    }
}

/// For unit tests that drive an actor's handlers directly: each handler followed by
/// [`Actor::invariants`], as the shell runs them.
#[cfg(test)]
pub(crate) trait CheckedActor: Actor {
    fn checked_message(
        &mut self,
        now: Instant,
        from: NodeId,
        msg: Message,
        out: &mut Effects<Self::Timer>,
    ) {
        self.on_message(now, from, msg, out);
        self.invariants();
    }

    fn checked_timeout(
        &mut self,
        now: Instant,
        timer: Self::Timer,
        out: &mut Effects<Self::Timer>,
    ) {
        self.on_timeout(now, timer, out);
        self.invariants();
    }
}

#[cfg(test)]
impl<A: Actor> CheckedActor for A {}
