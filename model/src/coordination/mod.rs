//! A ZooKeeper-style coordination node: sessions, ephemeral znodes, one-shot watches and
//! versioned conditional writes, as one deterministic state machine ([`ZkServer`]).
//!
//! Kafka in ZooKeeper mode keeps all cluster metadata that must survive a broker (the broker
//! registry, the active controller, every partition's leader and ISR) in ZooKeeper, and it
//! relies on four ZooKeeper features. This module implements exactly those, for a single
//! server (`NodeId::Zk`), following the ZooKeeper Programmer's Guide
//! (<https://zookeeper.apache.org/doc/current/zookeeperProgrammers.html>).
//!
//! # Sessions
//! A client opens a session with `Connect { session_timeout_ms }` and gets a [`SessionId`]
//! back. The timeout is clamped to ZooKeeper's default bounds, `[2 * tickTime, 20 * tickTime]`
//! with `tickTime = 2000 ms`, i.e. `[4000, 40000]` ms ([`SESSION_TIMEOUT_MIN_MS`],
//! [`SESSION_TIMEOUT_MAX_MS`]); Kafka's `zookeeper.session.timeout.ms` (18000) is inside. Every
//! request on a live session, `Ping` included, pushes its deadline to `now + timeout`. The
//! session is dead the moment its deadline passes: a request arriving after that expires it on
//! the spot and is answered `SessionExpired`, and a periodic [`ZkTimer::SessionCheck`] (every
//! [`SESSION_CHECK_INTERVAL_MS`]) expires the rest, so the check interval only bounds how late
//! the expiry becomes visible, never whether it happens. Expiry deletes the session's ephemeral
//! znodes (firing the watches on them), drops its watches, emits
//! [`Event::ZkSessionExpired`] and tells the owner with [`Message::ZkSessionExpired`] (which a
//! partitioned owner will not receive: it finds out on its next request, as in ZooKeeper).
//! A request naming a session that was issued but is gone is answered `SessionExpired`; one
//! naming an id that was never issued, `NoSession`. `Close` ends the session at once.
//! Session ids come from a counter (starting at 1) that is persisted before any id is handed
//! out, so ids are never reused, not even across restarts.
//!
//! # Znodes and ephemerals
//! The data tree is a map from absolute path (`/`, `/brokers`, `/brokers/ids/0`) to a
//! [`Znode`]. The root always exists and cannot be deleted (`Delete("/")` answers `NotEmpty`,
//! as if the root always had ZooKeeper's built-in `/zookeeper` child). `Create` needs the
//! parent to exist (`NoNode`) and the path not to (`NodeExists`). An *ephemeral* znode belongs
//! to the session that created it and disappears when that session ends; ZooKeeper forbids
//! children under an ephemeral (`NoChildrenForEphemerals`). Our [`ZkError`] has no such code,
//! so that case answers `NoNode` ("no node that may have children exists there"). Malformed
//! paths (relative, trailing `/`, empty, `.` or `..` components), which ZooKeeper rejects on
//! the client side, are likewise answered `NoNode`. `Delete` needs the znode to have no
//! children (`NotEmpty`).
//!
//! # Conditional writes
//! Every znode carries a version: 0 on create, +1 per `SetData` (ZooKeeper's `Stat.version`).
//! `SetData` and `Delete` may name an expected version and then fail with `BadVersion` unless
//! it matches: an optimistic compare-and-set. `Multi` applies a list of ops all-or-nothing: they
//! are applied in order to a scratch copy of the tree, and only if every op succeeds does the
//! copy replace the tree; otherwise the answer is the first op's error and nothing changed.
//! `Check { path, version }` is the pure precondition op (its per-op result is
//! `ZkReply::Stat { version }`, standing in for ZooKeeper's `CheckResult`).
//!
//! # Watches
//! Watches are one-shot triggers, set by reads and removed when they fire or when their session
//! dies. `GetData { watch: true }` leaves a data watch on the path; if the znode does not exist
//! the read answers `NoNode` but the watch is still set and acts as ZooKeeper's `exists` watch,
//! firing `NodeCreated`. `GetChildren { watch: true }` leaves a child watch (only on an existing
//! znode, as in ZooKeeper). What fires what (the Programmer's Guide, "Semantics of Watches"):
//!
//! | change       | data/exists watches on the path | child watches on the path | child watches on the parent |
//! |--------------|---------------------------------|---------------------------|-----------------------------|
//! | `Create`     | `NodeCreated`                   | -                         | `NodeChildrenChanged`       |
//! | `SetData`    | `NodeDataChanged`               | -                         | -                           |
//! | `Delete`     | `NodeDeleted`                   | `NodeDeleted`             | `NodeChildrenChanged`       |
//!
//! A session that has both a data and a child watch on a deleted znode is told once. A
//! notification is [`Message::ZkWatch`] sent to the session's owner node. Because a watch is
//! removed when it fires, a `Multi` notifies each watch at most once; all notifications of a
//! request go out after it is durable and before its response (ZooKeeper's ordering guarantee:
//! a client sees the watch event before it sees the data that triggered it). A watch says only
//! *that* something changed; the client must read again (and re-arm the watch) to learn what.
//! Everything is kept in `BTreeMap`s and `BTreeSet`s, so notifications go out in path, then
//! session-id order, deterministically.
//!
//! # Lost connections
//! A ZooKeeper session outlives its TCP connection: when the connection breaks, the client
//! reconnects to the same session, re-arms its watches (`setWatches`, which fires those whose
//! znodes changed meanwhile) and Kafka's `ZooKeeperClient` sends the requests that failed with
//! CONNECTIONLOSS again. The simulated network breaks connections when a peer restarts and
//! refuses new ones across a partition, so both directions are made good here:
//! - Notifications carry a per-session `seq`; each request carries the client's last taken
//!   `seq` (`watch_ack`), and the server sends every later one again, in order, before the
//!   answer. A live session therefore never misses a notification.
//! - The client sends a request unanswered for [`crate::zk_client::RETRANSMIT_AFTER_MS`] again
//!   under its own correlation id. The server keeps its answers per session until the client
//!   says it has them (`answered_below`), answers a copy from that cache without carrying the
//!   request out twice, and drops a late copy of a request already answered.
//!
//! # What the testbed observes here
//! A committed write to a partition's state znode is recorded as `partition-state-changed`
//! by this node, when it commits (see `observe_writes`): the writer may never learn that its
//! write landed (its answer can be lost), but every later reader sees it.
//!
//! # Durability
//! ZooKeeper fsyncs its transaction log before it answers a write. Here every request (or
//! expiry) that changes the tree or the session counter writes a transaction (the persistent
//! znodes it changed and the session counter) with `DiskOp::WriteAtomic`, and now and then a
//! snapshot of every persistent znode (see [`snapshot`]), before any response or watch
//! notification is pushed; effects run in order, so nothing a client can observe precedes the
//! write. [`ZkServer::recover`] rebuilds the tree from the snapshot and the transactions after
//! it. **Simplification:** sessions are not persisted, so after a restart every
//! old session is gone (its clients get `SessionExpired` and reconnect) and all ephemerals are
//! dropped. A real ZooKeeper ensemble keeps sessions across a leader change, so this server is
//! harsher: a restart of `zk` expires every broker's session at once, the way a long ZooKeeper
//! outage does.
//!
//! # How Kafka's controller uses this (ZooKeeper mode)
//! Names from `kafka.zk.KafkaZkClient`, `kafka.zk.ZkData` and `kafka.controller.KafkaController`:
//! - **Broker registry.** Each broker creates the ephemeral `/brokers/ids/<id>` in its session
//!   (`KafkaZkClient.registerBroker`, via `checkedEphemeralCreate`, which treats `NodeExists`
//!   as success when the existing znode is owned by its own session). The znode's creation
//!   zxid becomes the broker epoch (KIP-380). The controller keeps a child watch on
//!   `/brokers/ids` (`BrokerChangeHandler`), so a broker whose session expires is noticed as a
//!   `NodeChildrenChanged` and its partitions get new leaders.
//! - **Controller election.** Every broker tries to create the ephemeral `/controller`; the one
//!   that succeeds is the controller, the others put a data watch on it
//!   (`ControllerChangeHandler`) and try again on `NodeDeleted`
//!   (`KafkaController.elect`).
//! - **Controller epoch.** The winner increments `/controller_epoch` with a conditional write,
//!   in the same multi as the `/controller` create
//!   (`registerControllerAndIncrementControllerEpoch`), and remembers the epoch's zkVersion.
//!   Every later controller write is a multi that starts with `Check(/controller_epoch,
//!   thatVersion)` (KAFKA-6082), so a deposed ("zombie") controller's writes fail with
//!   `BadVersion` instead of overwriting its successor's decisions.
//! - **Partition state.** `/brokers/topics/<t>/partitions/<p>/state` holds leader, ISR, leader
//!   epoch and controller epoch; it is written with `SetData` and the expected zkVersion
//!   (`updateLeaderAndIsr`), and that zkVersion is the partition epoch a leader must name when
//!   it asks to change the ISR.
//!
//! # Where each part lives
//! * `mod.rs`: the server's state ([`ZkServer`], its sessions and znodes) and its [`Actor`]
//!   dispatch;
//! * [`server`]: request handling, watches and the invariants (ZooKeeper's
//!   `FinalRequestProcessor`, `WatchManager`);
//! * [`sessions`]: connecting, pings and expiry (`SessionTrackerImpl`);
//! * [`data_tree`]: the znode tree and its writes (`DataTree`);
//! * [`snapshot`]: durability and recovery (`FileSnap`);
//! * [`observe`]: what the testbed records of committed writes;
//! * [`client`]: the client side of a session (Kafka's `ZooKeeperClient`).

pub mod client;
pub mod data_tree;
pub mod observe;
pub mod server;
pub mod sessions;
pub mod snapshot;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::effects::{Actor, DiskOp, Effects};
use crate::event::Event;
use crate::protocol::{Message, WatchKind, ZkError, ZkOp, ZkReply, ZkRequest};
use crate::types::{CorrelationId, Instant, NodeId, SessionId, ZkVersion};
use data_tree::*;
use observe::*;

/// The file (in the coordination node's data directory) holding the persistent znodes and the
/// session counter as of a transaction, replaced atomically now and then (see [`snapshot`]).
pub const SNAPSHOT_FILE: &str = "zk/snapshot";
/// The prefix of the transaction files: `zk/txn-` and a 20-digit sequence number.
pub const TXN_FILE_PREFIX: &str = "zk/txn-";
/// ZooKeeper's `tickTime` default; the session timeout bounds are multiples of it.
pub const TICK_TIME_MS: u64 = 2_000;
/// ZooKeeper's `minSessionTimeout` default, `2 * tickTime`.
pub const SESSION_TIMEOUT_MIN_MS: u64 = 2 * TICK_TIME_MS;
/// ZooKeeper's `maxSessionTimeout` default, `20 * tickTime`.
pub const SESSION_TIMEOUT_MAX_MS: u64 = 20 * TICK_TIME_MS;
/// How often [`ZkTimer::SessionCheck`] runs, in simulated milliseconds.
pub const SESSION_CHECK_INTERVAL_MS: u64 = 200;

const ROOT: &str = "/";
/// The first session id handed out; 0 is left free for clients to mean "no session yet".
const SESSION_ID_FIRST: i64 = 1;

/// The coordination node's timers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ZkTimer {
    /// Expire every session whose deadline has passed, then schedule the next check.
    SessionCheck,
}

/// One znode of the data tree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Znode {
    pub data: Vec<u8>,
    /// `Stat.version`: 0 on create, +1 per `SetData`.
    pub version: ZkVersion,
    /// `Stat.ephemeralOwner`: the session this znode dies with, if ephemeral.
    pub ephemeral_owner: Option<SessionId>,
    /// `Stat.cversion`: +1 per child created or deleted.
    pub cversion: i32,
}

/// A live session.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Session {
    /// The node that connected it; watch notifications and the expiry notice go there.
    owner: NodeId,
    timeout_ms: u64,
    /// The session is dead from this instant on unless a request arrives before it.
    deadline: Instant,
    /// The `seq` of the last watch notification sent on this session.
    watch_seq: u64,
    /// Notifications sent and not yet acknowledged, by `seq`: resent, in order, before the
    /// answer to each request until the client's `watch_ack` covers them.
    unacked: BTreeMap<u64, (String, WatchKind)>,
    /// Answers to this session's requests at or above `answered_below`, by correlation id: a
    /// copy of one of them (the client sent it again after losing its connection) gets the
    /// same answer and is not carried out twice.
    answers: BTreeMap<CorrelationId, Result<ZkReply, ZkError>>,
    /// The client has had the answer to each of its requests below this one; a late copy of
    /// such a request is dropped.
    answered_below: CorrelationId,
}

/// A change to the tree that may fire watches: the path and what happened to it.
type Trigger = (String, WatchKind);

/// A single ZooKeeper-style server (see the module docs).
#[derive(Debug, Clone)]
pub struct ZkServer {
    tree: BTreeMap<String, Znode>,
    sessions: BTreeMap<SessionId, Session>,
    /// The id the next `Connect` gets; every id below it (from [`SESSION_ID_FIRST`]) was issued.
    next_session_id: i64,
    /// Data and exists watches: path -> sessions. The path need not exist.
    data_watches: BTreeMap<String, BTreeSet<SessionId>>,
    /// Child watches: path -> sessions. The path always exists.
    child_watches: BTreeMap<String, BTreeSet<SessionId>>,
    /// The sequence number of the last transaction written (see [`snapshot`]).
    last_txn: u64,
    /// The last transaction the latest snapshot contains.
    last_snapshotted: u64,
    /// What changed since the invariants last ran (see [`ZkServer::check_changed`]).
    unchecked: std::cell::RefCell<Unchecked>,
}

/// The paths whose znode or watches changed since the invariants last ran, or `all` after a
/// change whose reach is not one path (a session ended: its ephemerals and watches went).
#[derive(Debug, Clone, Default)]
struct Unchecked {
    paths: BTreeSet<String>,
    all: bool,
}

impl Default for ZkServer {
    fn default() -> Self {
        ZkServer::new()
    }
}

impl Actor for ZkServer {
    type Timer = ZkTimer;

    fn on_start(&mut self, _now: Instant, out: &mut Effects<ZkTimer>) {
        out.timer(SESSION_CHECK_INTERVAL_MS, ZkTimer::SessionCheck);
        self.check_invariants();
    }

    fn on_message(&mut self, now: Instant, from: NodeId, msg: Message, out: &mut Effects<ZkTimer>) {
        // Anything but a request (a misrouted message) is not for us; dropping it is what a
        // real server does with a frame it does not understand.
        if let Message::Zk {
            corr,
            session,
            req,
            watch_ack,
            answered_below,
        } = msg
        {
            self.on_zk(
                now,
                from,
                (corr, answered_below),
                session,
                req,
                watch_ack,
                out,
            );
        }
        self.check_changed();
    }

    fn on_timeout(&mut self, now: Instant, timer: ZkTimer, out: &mut Effects<ZkTimer>) {
        match timer {
            ZkTimer::SessionCheck => self.on_session_check_timeout(now, out),
        }
        self.check_changed();
    }
}
