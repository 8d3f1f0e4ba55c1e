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
//! expiry) that changes the tree or the session counter writes a snapshot of the persistent
//! (non-ephemeral) znodes and the session counter with `DiskOp::WriteAtomic` to
//! [`SNAPSHOT_FILE`] before any response or watch notification is pushed; effects run in order,
//! so nothing a client can observe precedes the write. [`ZkServer::recover`] rebuilds the tree
//! from that file. **Simplification:** sessions are not persisted, so after a restart every
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
//! # Size
//! Above the project's 1500-line guide (about 2000 lines with its tests): the split by
//! Kafka concept into a folder of its own is item 1 of the "house" issue (11), planned
//! before coordinators are added; until then the whole concept stays in this one file.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::effects::{Actor, DiskOp, Effects};
use crate::event::Event;
use crate::protocol::{Message, WatchKind, ZkError, ZkOp, ZkReply, ZkRequest};
use crate::types::{CorrelationId, Instant, NodeId, SessionId, ZkVersion};

/// The file (in the coordination node's data directory) holding the persistent znodes and the
/// session counter, replaced atomically after every change.
pub const SNAPSHOT_FILE: &str = "zk/snapshot";
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

/// The on-disk form of [`SNAPSHOT_FILE`]. Ephemerals are never in it, by construction.
#[derive(Debug, Serialize, Deserialize)]
struct Snapshot {
    next_session_id: i64,
    znodes: BTreeMap<String, SnapshotZnode>,
}

#[derive(Debug, Serialize, Deserialize)]
struct SnapshotZnode {
    data: Vec<u8>,
    version: ZkVersion,
    cversion: i32,
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
}

impl Default for ZkServer {
    fn default() -> Self {
        ZkServer::new()
    }
}

impl ZkServer {
    /// A fresh server: only the root, no sessions.
    pub fn new() -> ZkServer {
        let mut tree = BTreeMap::new();
        tree.insert(
            ROOT.to_string(),
            Znode {
                data: Vec::new(),
                version: ZkVersion(0),
                ephemeral_owner: None,
                cversion: 0,
            },
        );
        let zk = ZkServer {
            tree,
            sessions: BTreeMap::new(),
            next_session_id: SESSION_ID_FIRST,
            data_watches: BTreeMap::new(),
            child_watches: BTreeMap::new(),
        };
        zk.check_invariants();
        zk
    }

    /// Rebuilds the server from its data directory (`file name -> durable bytes`): the
    /// persistent znodes and the session counter from [`SNAPSHOT_FILE`], or a fresh server if
    /// there is none. No session survives (see the module docs).
    ///
    /// # Panics
    /// If the snapshot exists but cannot be decoded or describes an invalid tree; use
    /// [`ZkServer::try_recover`] to get that as a value.
    pub fn recover(files: &BTreeMap<String, Vec<u8>>) -> ZkServer {
        match ZkServer::try_recover(files) {
            Ok(zk) => zk,
            Err(error) => panic!("zk: cannot recover: {error}"),
        }
    }

    /// [`ZkServer::recover`], with a damaged snapshot reported as an error (ZooKeeper refuses
    /// to start on a snapshot it cannot read rather than serve an empty tree).
    pub fn try_recover(files: &BTreeMap<String, Vec<u8>>) -> Result<ZkServer, String> {
        let Some(bytes) = files.get(SNAPSHOT_FILE) else {
            return Ok(ZkServer::new());
        };
        let snapshot: Snapshot = serde_json::from_slice(bytes)
            .map_err(|e| format!("{SNAPSHOT_FILE}: undecodable snapshot: {e}"))?;
        if snapshot.next_session_id < SESSION_ID_FIRST {
            return Err(format!(
                "{SNAPSHOT_FILE}: next_session_id {} < {SESSION_ID_FIRST}",
                snapshot.next_session_id
            ));
        }
        let mut tree = BTreeMap::new();
        for (path, z) in snapshot.znodes {
            if z.version.0 < 0 || z.cversion < 0 {
                return Err(format!("{SNAPSHOT_FILE}: {path}: negative version"));
            }
            tree.insert(
                path,
                Znode {
                    data: z.data,
                    version: z.version,
                    ephemeral_owner: None,
                    cversion: z.cversion,
                },
            );
        }
        if !tree.contains_key(ROOT) {
            return Err(format!("{SNAPSHOT_FILE}: no root znode"));
        }
        for path in tree.keys() {
            if !is_valid_path(path) {
                return Err(format!("{SNAPSHOT_FILE}: malformed path {path:?}"));
            }
            if let Some(parent) = parent_of(path) {
                if !tree.contains_key(parent) {
                    return Err(format!("{SNAPSHOT_FILE}: {path} has no parent"));
                }
            }
        }
        let zk = ZkServer {
            tree,
            sessions: BTreeMap::new(),
            next_session_id: snapshot.next_session_id,
            data_watches: BTreeMap::new(),
            child_watches: BTreeMap::new(),
        };
        zk.check_invariants();
        Ok(zk)
    }

    // ---- read-only accessors (tests, end-of-run inspection) ----

    /// A znode's data and version.
    pub fn get(&self, path: &str) -> Option<(&[u8], ZkVersion)> {
        self.tree.get(path).map(|z| (z.data.as_slice(), z.version))
    }

    /// The whole znode (ephemeral owner, cversion), if it exists.
    pub fn znode(&self, path: &str) -> Option<&Znode> {
        self.tree.get(path)
    }

    /// A znode's child names (last path component), sorted; empty if it does not exist.
    pub fn children(&self, path: &str) -> Vec<String> {
        if self.tree.contains_key(path) {
            child_names(&self.tree, path)
        } else {
            Vec::new()
        }
    }

    /// Live sessions and their owners, by session id.
    pub fn sessions(&self) -> Vec<(SessionId, NodeId)> {
        self.sessions.iter().map(|(id, s)| (*id, s.owner)).collect()
    }

    // ---- handlers ----

    /// One request. `(corr, answered_below)`: its correlation id, and the id below which the
    /// client has every answer (see [`Session::answers`]).
    fn on_zk(
        &mut self,
        now: Instant,
        from: NodeId,
        (corr, answered_below): (CorrelationId, CorrelationId),
        session: SessionId,
        req: ZkRequest,
        watch_ack: u64,
        out: &mut Effects<ZkTimer>,
    ) {
        if let ZkRequest::Connect { session_timeout_ms } = req {
            self.on_connect(now, from, corr, session_timeout_ms, out);
            return;
        }
        if let Err(error) = self.touch_session(now, session, out) {
            out.send(
                from,
                Message::ZkResponse {
                    corr,
                    result: Err(error),
                },
            );
            return;
        }
        self.resend_watches(session, watch_ack, out);
        if let Some(s) = self.sessions.get_mut(&session) {
            if answered_below > s.answered_below {
                s.answered_below = answered_below;
                s.answers = s.answers.split_off(&answered_below);
            }
            if corr < s.answered_below {
                // A late copy of a request whose answer the client already has.
                return;
            }
            if let Some(result) = s.answers.get(&corr) {
                // A copy of a request already carried out: answer it again, do not redo it.
                out.send(
                    from,
                    Message::ZkResponse {
                        corr,
                        result: result.clone(),
                    },
                );
                return;
            }
        }
        let mut triggers = Vec::new();
        let writes = data_writes(&req);
        let result = match req {
            ZkRequest::Connect { .. } => unreachable!("handled above"),
            ZkRequest::Ping => Ok(ZkReply::Pong),
            ZkRequest::Create {
                path,
                data,
                ephemeral,
            } => apply_op(
                &mut self.tree,
                session,
                ZkOp::Create {
                    path,
                    data,
                    ephemeral,
                },
                &mut triggers,
            ),
            ZkRequest::SetData {
                path,
                data,
                expected_version,
            } => apply_op(
                &mut self.tree,
                session,
                ZkOp::SetData {
                    path,
                    data,
                    expected_version,
                },
                &mut triggers,
            ),
            ZkRequest::Delete {
                path,
                expected_version,
            } => apply_op(
                &mut self.tree,
                session,
                ZkOp::Delete {
                    path,
                    expected_version,
                },
                &mut triggers,
            ),
            ZkRequest::GetData { path, watch } => self.get_data(session, path, watch),
            ZkRequest::GetChildren { path, watch } => self.get_children(session, path, watch),
            ZkRequest::Multi { ops } => self.multi(session, ops, &mut triggers),
            ZkRequest::Close => {
                triggers = self.remove_session(session);
                Ok(ZkReply::Closed)
            }
        };
        assert!(
            result.is_ok() || triggers.is_empty(),
            "a failed request changed the tree"
        );
        self.commit(triggers, out);
        if let Ok(reply) = &result {
            let writer = self.sessions.get(&session).map(|s| s.owner);
            observe_writes(&writes, reply, writer, out);
        }
        if let Some(s) = self.sessions.get_mut(&session) {
            s.answers.insert(corr, result.clone());
        }
        out.send(from, Message::ZkResponse { corr, result });
    }

    fn on_connect(
        &mut self,
        now: Instant,
        from: NodeId,
        corr: CorrelationId,
        session_timeout_ms: u64,
        out: &mut Effects<ZkTimer>,
    ) {
        let session = SessionId(self.next_session_id);
        self.next_session_id = self
            .next_session_id
            .checked_add(1)
            .expect("session ids exhausted");
        let timeout_ms = session_timeout_ms.clamp(SESSION_TIMEOUT_MIN_MS, SESSION_TIMEOUT_MAX_MS);
        let previous = self.sessions.insert(
            session,
            Session {
                owner: from,
                timeout_ms,
                deadline: now.plus_ms(timeout_ms),
                watch_seq: 0,
                unacked: BTreeMap::new(),
                answers: BTreeMap::new(),
                answered_below: CorrelationId(0),
            },
        );
        assert!(previous.is_none(), "session id {session} reused");
        // The counter must be durable before the id is visible, or a restart could reissue it.
        self.persist(out);
        let reply = ZkReply::Connected {
            session,
            session_timeout_ms: timeout_ms,
        };
        out.send(
            from,
            Message::ZkResponse {
                corr,
                result: Ok(reply),
            },
        );
    }

    fn on_session_check_timeout(&mut self, now: Instant, out: &mut Effects<ZkTimer>) {
        let expired: Vec<SessionId> = self
            .sessions
            .iter()
            .filter(|(_, s)| s.deadline <= now)
            .map(|(id, _)| *id)
            .collect();
        for session in expired {
            self.expire_session(session, out);
        }
        assert!(self.sessions.values().all(|s| s.deadline > now));
        out.timer(SESSION_CHECK_INTERVAL_MS, ZkTimer::SessionCheck);
    }

    /// Refreshes a live session's deadline, or says why the session cannot be used (expiring
    /// it first if its deadline has passed but the periodic check has not run yet).
    fn touch_session(
        &mut self,
        now: Instant,
        session: SessionId,
        out: &mut Effects<ZkTimer>,
    ) -> Result<(), ZkError> {
        match self.sessions.get_mut(&session) {
            Some(s) if s.deadline > now => {
                s.deadline = now.plus_ms(s.timeout_ms);
                Ok(())
            }
            Some(_) => {
                self.expire_session(session, out);
                Err(ZkError::SessionExpired)
            }
            None if (SESSION_ID_FIRST..self.next_session_id).contains(&session.0) => {
                Err(ZkError::SessionExpired)
            }
            None => Err(ZkError::NoSession),
        }
    }

    fn expire_session(&mut self, session: SessionId, out: &mut Effects<ZkTimer>) {
        let owner = self
            .sessions
            .get(&session)
            .expect("expiring a live session")
            .owner;
        let triggers = self.remove_session(session);
        self.commit(triggers, out);
        out.event(Event::ZkSessionExpired { session, owner });
        out.send(owner, Message::ZkSessionExpired { session });
    }

    /// Ends a session: forgets it and its watches, deletes its ephemerals. Returns the
    /// triggers of those deletions (the caller commits them).
    fn remove_session(&mut self, session: SessionId) -> Vec<Trigger> {
        let removed = self.sessions.remove(&session);
        assert!(removed.is_some(), "removing unknown session {session}");
        for watches in [&mut self.data_watches, &mut self.child_watches] {
            watches.retain(|_, sessions| {
                sessions.remove(&session);
                !sessions.is_empty()
            });
        }
        let ephemerals: Vec<String> = self
            .tree
            .iter()
            .filter(|(_, z)| z.ephemeral_owner == Some(session))
            .map(|(path, _)| path.clone())
            .collect();
        let mut triggers = Vec::new();
        for path in ephemerals {
            // Ephemerals have no children, so an unconditional delete cannot fail.
            let result = apply_op(
                &mut self.tree,
                session,
                ZkOp::Delete {
                    path,
                    expected_version: None,
                },
                &mut triggers,
            );
            assert_eq!(result, Ok(ZkReply::Deleted));
        }
        assert!(self
            .tree
            .values()
            .all(|z| z.ephemeral_owner != Some(session)));
        triggers
    }

    fn get_data(
        &mut self,
        session: SessionId,
        path: String,
        watch: bool,
    ) -> Result<ZkReply, ZkError> {
        let result = match self.tree.get(&path) {
            Some(z) => Ok(ZkReply::Data {
                data: z.data.clone(),
                version: z.version,
            }),
            None => Err(ZkError::NoNode),
        };
        // On a missing znode this is an exists-watch; a malformed path could never fire.
        if watch && is_valid_path(&path) {
            self.data_watches.entry(path).or_default().insert(session);
        }
        result
    }

    fn get_children(
        &mut self,
        session: SessionId,
        path: String,
        watch: bool,
    ) -> Result<ZkReply, ZkError> {
        if !self.tree.contains_key(&path) {
            return Err(ZkError::NoNode);
        }
        let children = child_names(&self.tree, &path);
        if watch {
            self.child_watches.entry(path).or_default().insert(session);
        }
        Ok(ZkReply::Children { children })
    }

    fn multi(
        &mut self,
        session: SessionId,
        ops: Vec<ZkOp>,
        triggers: &mut Vec<Trigger>,
    ) -> Result<ZkReply, ZkError> {
        let mut scratch = self.tree.clone();
        let mut scratch_triggers = Vec::new();
        let mut results = Vec::with_capacity(ops.len());
        for op in ops {
            results.push(apply_op(&mut scratch, session, op, &mut scratch_triggers)?);
        }
        self.tree = scratch;
        triggers.extend(scratch_triggers);
        Ok(ZkReply::Multi { results })
    }

    /// Makes a change durable, then notifies the watches it fired. Every change to the tree
    /// records at least one trigger, so no triggers means nothing to write.
    fn commit(&mut self, triggers: Vec<Trigger>, out: &mut Effects<ZkTimer>) {
        if triggers.is_empty() {
            return;
        }
        self.persist(out);
        for (path, kind) in triggers {
            let mut sessions = BTreeSet::new();
            if matches!(
                kind,
                WatchKind::NodeCreated | WatchKind::NodeDataChanged | WatchKind::NodeDeleted
            ) {
                sessions.extend(self.data_watches.remove(&path).unwrap_or_default());
            }
            if matches!(
                kind,
                WatchKind::NodeChildrenChanged | WatchKind::NodeDeleted
            ) {
                sessions.extend(self.child_watches.remove(&path).unwrap_or_default());
            }
            for session in sessions {
                let s = self
                    .sessions
                    .get_mut(&session)
                    .expect("watches belong to live sessions");
                s.watch_seq += 1;
                let seq = s.watch_seq;
                s.unacked.insert(seq, (path.clone(), kind));
                out.send(
                    s.owner,
                    Message::ZkWatch {
                        session,
                        path: path.clone(),
                        kind,
                        seq,
                    },
                );
            }
        }
    }

    /// Forgets the notifications of `session` up to `watch_ack` and sends the rest again, in
    /// order, so that they reach the client before the answer to its request does.
    fn resend_watches(&mut self, session: SessionId, watch_ack: u64, out: &mut Effects<ZkTimer>) {
        let Some(s) = self.sessions.get_mut(&session) else {
            return;
        };
        s.unacked = s.unacked.split_off(&(watch_ack + 1));
        for (seq, (path, kind)) in &s.unacked {
            out.send(
                s.owner,
                Message::ZkWatch {
                    session,
                    path: path.clone(),
                    kind: *kind,
                    seq: *seq,
                },
            );
        }
    }

    fn persist(&self, out: &mut Effects<ZkTimer>) {
        out.disk(DiskOp::WriteAtomic {
            file: SNAPSHOT_FILE.to_string(),
            data: self.snapshot_bytes(),
        });
    }

    fn snapshot_bytes(&self) -> Vec<u8> {
        let znodes = self
            .tree
            .iter()
            .filter(|(_, z)| z.ephemeral_owner.is_none())
            .map(|(path, z)| {
                (
                    path.clone(),
                    SnapshotZnode {
                        data: z.data.clone(),
                        version: z.version,
                        cversion: z.cversion,
                    },
                )
            })
            .collect();
        let snapshot = Snapshot {
            next_session_id: self.next_session_id,
            znodes,
        };
        serde_json::to_vec(&snapshot).expect("a snapshot always serializes")
    }

    /// The tree's and the sessions' invariants; checked at the end of every handler.
    fn check_invariants(&self) {
        let root = self.tree.get(ROOT).expect("the root znode exists");
        assert!(root.ephemeral_owner.is_none(), "the root is persistent");
        assert!(self.next_session_id >= SESSION_ID_FIRST);
        for (path, z) in &self.tree {
            assert!(is_valid_path(path), "malformed path {path:?} in the tree");
            assert!(
                z.version.0 >= 0 && z.cversion >= 0,
                "{path}: negative version"
            );
            if let Some(parent) = parent_of(path) {
                let p = self
                    .tree
                    .get(parent)
                    .unwrap_or_else(|| panic!("{path}: parent {parent} missing"));
                assert!(
                    p.ephemeral_owner.is_none(),
                    "ephemeral {parent} has child {path}"
                );
            }
            if let Some(owner) = z.ephemeral_owner {
                assert!(
                    self.sessions.contains_key(&owner),
                    "{path}: owner session {owner} is not live"
                );
            }
        }
        for id in self.sessions.keys() {
            assert!(
                (SESSION_ID_FIRST..self.next_session_id).contains(&id.0),
                "session {id} was never issued"
            );
        }
        for (path, sessions) in &self.data_watches {
            assert!(!sessions.is_empty(), "{path}: empty data watch set");
            assert!(
                sessions.iter().all(|s| self.sessions.contains_key(s)),
                "{path}: data watch of a dead session"
            );
        }
        for (path, sessions) in &self.child_watches {
            assert!(
                self.tree.contains_key(path),
                "{path}: child watch on a missing znode"
            );
            assert!(!sessions.is_empty(), "{path}: empty child watch set");
            assert!(
                sessions.iter().all(|s| self.sessions.contains_key(s)),
                "{path}: child watch of a dead session"
            );
        }
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
        self.check_invariants();
    }

    fn on_timeout(&mut self, now: Instant, timer: ZkTimer, out: &mut Effects<ZkTimer>) {
        match timer {
            ZkTimer::SessionCheck => self.on_session_check_timeout(now, out),
        }
        self.check_invariants();
    }
}

/// Applies one write (or check) to `tree`, validating everything before changing anything,
/// so an error leaves `tree` as it was. Records what changed in `triggers`.
fn apply_op(
    tree: &mut BTreeMap<String, Znode>,
    session: SessionId,
    op: ZkOp,
    triggers: &mut Vec<Trigger>,
) -> Result<ZkReply, ZkError> {
    match op {
        ZkOp::Check { path, version } => {
            let z = tree.get(&path).ok_or(ZkError::NoNode)?;
            if z.version != version {
                return Err(ZkError::BadVersion);
            }
            Ok(ZkReply::Stat { version })
        }
        ZkOp::Create {
            path,
            data,
            ephemeral,
        } => {
            if path == ROOT {
                return Err(ZkError::NodeExists);
            }
            if !is_valid_path(&path) {
                return Err(ZkError::NoNode);
            }
            let parent = parent_of(&path)
                .expect("only the root has no parent")
                .to_string();
            let parent_ephemeral = tree
                .get(&parent)
                .ok_or(ZkError::NoNode)?
                .ephemeral_owner
                .is_some();
            if tree.contains_key(&path) {
                return Err(ZkError::NodeExists);
            }
            if parent_ephemeral {
                // ZooKeeper: NoChildrenForEphemerals (see the module docs).
                return Err(ZkError::NoNode);
            }
            let znode = Znode {
                data,
                version: ZkVersion(0),
                ephemeral_owner: ephemeral.then_some(session),
                cversion: 0,
            };
            tree.insert(path.clone(), znode);
            bump_cversion(tree, &parent);
            triggers.push((path.clone(), WatchKind::NodeCreated));
            triggers.push((parent, WatchKind::NodeChildrenChanged));
            Ok(ZkReply::Created { path })
        }
        ZkOp::SetData {
            path,
            data,
            expected_version,
        } => {
            let z = tree.get_mut(&path).ok_or(ZkError::NoNode)?;
            if expected_version.is_some_and(|v| v != z.version) {
                return Err(ZkError::BadVersion);
            }
            z.data = data;
            z.version = ZkVersion(z.version.0.checked_add(1).expect("znode version overflow"));
            let version = z.version;
            triggers.push((path, WatchKind::NodeDataChanged));
            Ok(ZkReply::Stat { version })
        }
        ZkOp::Delete {
            path,
            expected_version,
        } => {
            if path == ROOT {
                // The root cannot go (see the module docs).
                return Err(ZkError::NotEmpty);
            }
            let z = tree.get(&path).ok_or(ZkError::NoNode)?;
            if expected_version.is_some_and(|v| v != z.version) {
                return Err(ZkError::BadVersion);
            }
            if has_children(tree, &path) {
                return Err(ZkError::NotEmpty);
            }
            tree.remove(&path);
            let parent = parent_of(&path)
                .expect("only the root has no parent")
                .to_string();
            bump_cversion(tree, &parent);
            triggers.push((path, WatchKind::NodeDeleted));
            triggers.push((parent, WatchKind::NodeChildrenChanged));
            Ok(ZkReply::Deleted)
        }
    }
}

fn bump_cversion(tree: &mut BTreeMap<String, Znode>, path: &str) {
    let z = tree
        .get_mut(path)
        .expect("the parent of a changed znode exists");
    z.cversion = z.cversion.checked_add(1).expect("cversion overflow");
}

/// Absolute, no trailing `/` (except the root), no empty, `.` or `..` components.
fn is_valid_path(path: &str) -> bool {
    if path == ROOT {
        return true;
    }
    match path.strip_prefix('/') {
        Some(rest) => rest
            .split('/')
            .all(|c| !c.is_empty() && c != "." && c != ".."),
        None => false,
    }
}

/// The parent of a valid path; `None` for the root.
fn parent_of(path: &str) -> Option<&str> {
    if path == ROOT {
        return None;
    }
    let i = path.rfind('/')?;
    Some(if i == 0 { ROOT } else { &path[..i] })
}

/// The prefix every descendant of `path` starts with.
fn child_prefix(path: &str) -> String {
    if path == ROOT {
        ROOT.to_string()
    } else {
        format!("{path}/")
    }
}

/// Sorted child names of `path`. Descendants are exactly the keys that start with
/// `child_prefix(path)`, which in a `BTreeMap` form one contiguous range.
fn child_names(tree: &BTreeMap<String, Znode>, path: &str) -> Vec<String> {
    let prefix = child_prefix(path);
    tree.range(prefix.clone()..)
        .take_while(|(k, _)| k.starts_with(&prefix))
        .filter_map(|(k, _)| {
            let rest = &k[prefix.len()..];
            (!rest.is_empty() && !rest.contains('/')).then(|| rest.to_string())
        })
        .collect()
}

fn has_children(tree: &BTreeMap<String, Znode>, path: &str) -> bool {
    let prefix = child_prefix(path);
    tree.range(prefix.clone()..)
        .take_while(|(k, _)| k.starts_with(&prefix))
        .any(|(k, _)| k.len() > prefix.len())
}

/// The `(path, data)` of each write (`Create`, `SetData`) in a request, in op order: one entry
/// per op of a `Multi` (`None` for the others), so that it lines up with the multi's results.
fn data_writes(req: &ZkRequest) -> Vec<Option<(String, Vec<u8>)>> {
    fn op(op: &ZkOp) -> Option<(String, Vec<u8>)> {
        match op {
            ZkOp::Create { path, data, .. } | ZkOp::SetData { path, data, .. } => {
                Some((path.clone(), data.clone()))
            }
            ZkOp::Check { .. } | ZkOp::Delete { .. } => None,
        }
    }
    match req {
        ZkRequest::Create { path, data, .. } | ZkRequest::SetData { path, data, .. } => {
            vec![Some((path.clone(), data.clone()))]
        }
        ZkRequest::Multi { ops } => ops.iter().map(op).collect(),
        _ => Vec::new(),
    }
}

/// Records the committed writes the testbed observes on the coordination node: a partition's
/// state znode, as `partition-state-changed` (see [`crate::controller::observe_state_write`]),
/// `/controller_epoch`, as `controller-epoch-incremented` by the session owner `writer`, and a
/// topic's deletion marker `/admin/delete_topics/T`, as `topic-deleted`.
/// Ground truth lives here, where the write commits: a writer whose answer is lost does not
/// know it landed, but every later reader sees it.
fn observe_writes(
    writes: &[Option<(String, Vec<u8>)>],
    reply: &ZkReply,
    writer: Option<NodeId>,
    out: &mut Effects<ZkTimer>,
) {
    let single;
    let replies: &[ZkReply] = match reply {
        ZkReply::Multi { results } => results,
        other => {
            single = [other.clone()];
            &single
        }
    };
    for (write, reply) in writes.iter().zip(replies) {
        let Some((path, data)) = write else {
            continue;
        };
        let version = match reply {
            ZkReply::Stat { version } => *version,
            ZkReply::Created { .. } => ZkVersion(0),
            _ => continue,
        };
        if let Some(topic) = path.strip_prefix("/admin/delete_topics/") {
            // The controller's deletion of a topic committed (the marker is created in the
            // same multi that deletes the topic's znodes).
            let epoch = serde_json::from_slice::<serde_json::Value>(data)
                .ok()
                .and_then(|v| v.get("controller_epoch")?.as_i64());
            if let (Some(epoch), 0) = (epoch, version.0) {
                out.event(Event::TopicDeleted {
                    topic: topic.to_string(),
                    controller_epoch: crate::types::ControllerEpoch(epoch as i32),
                });
            }
        } else if path == "/controller_epoch" {
            let epoch = std::str::from_utf8(data).ok().and_then(|t| t.parse().ok());
            if let (Some(epoch), Some(NodeId::Broker(broker))) = (epoch, writer) {
                out.event(Event::ControllerEpochIncremented {
                    broker,
                    controller_epoch: crate::types::ControllerEpoch(epoch),
                });
            }
        } else if let Some(event) = crate::controller::observe_state_write(path, data, version) {
            out.event(event);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::effects::Effect;
    use crate::types::BrokerId;
    use proptest::prelude::*;

    const B0: NodeId = NodeId::Broker(BrokerId(0));
    const B1: NodeId = NodeId::Broker(BrokerId(1));
    const TIMEOUT_MS: u64 = 6_000;

    /// Drives a [`ZkServer`] by hand: a clock, a correlation counter, and the effects of the
    /// last call.
    struct Harness {
        zk: ZkServer,
        now: Instant,
        corr: u64,
        /// Per session, the last notification `seq` the harness's client took.
        watch_acks: BTreeMap<SessionId, u64>,
    }

    impl Harness {
        fn new() -> Harness {
            Harness::with(ZkServer::new())
        }

        fn with(mut zk: ZkServer) -> Harness {
            let mut out = Effects::new();
            zk.on_start(Instant(0), &mut out);
            assert_eq!(
                out.list,
                vec![Effect::SetTimer {
                    after_ms: SESSION_CHECK_INTERVAL_MS,
                    timer: ZkTimer::SessionCheck
                }]
            );
            Harness {
                zk,
                now: Instant(0),
                corr: 0,
                watch_acks: BTreeMap::new(),
            }
        }

        /// Sends one request; returns the response to `from` and every effect.
        fn call(
            &mut self,
            from: NodeId,
            session: SessionId,
            req: ZkRequest,
        ) -> (Result<ZkReply, ZkError>, Vec<Effect<ZkTimer>>) {
            self.corr += 1;
            let corr = CorrelationId(self.corr);
            let mut out = Effects::new();
            self.zk.on_message(
                self.now,
                from,
                Message::Zk {
                    corr,
                    session,
                    req,
                    watch_ack: self.watch_acks.get(&session).copied().unwrap_or(0),
                    answered_below: corr,
                },
                &mut out,
            );
            // The client takes every notification it is sent (a lossless network).
            for e in &out.list {
                if let Effect::Send {
                    msg: Message::ZkWatch { session, seq, .. },
                    ..
                } = e
                {
                    self.watch_acks.insert(*session, *seq);
                }
            }
            let responses: Vec<_> = out
                .list
                .iter()
                .filter_map(|e| match e {
                    Effect::Send {
                        to,
                        msg: Message::ZkResponse { corr: c, result },
                    } => {
                        assert_eq!(
                            (*to, *c),
                            (from, corr),
                            "response to the requester, with its corr"
                        );
                        Some(result.clone())
                    }
                    _ => None,
                })
                .collect();
            assert_eq!(responses.len(), 1, "exactly one response: {:?}", out.list);
            // The response is always the last effect: durable and notified first.
            assert!(matches!(
                out.list.last(),
                Some(Effect::Send {
                    msg: Message::ZkResponse { .. },
                    ..
                })
            ));
            (responses[0].clone(), out.list)
        }

        fn ok(&mut self, from: NodeId, session: SessionId, req: ZkRequest) -> ZkReply {
            let (result, _) = self.call(from, session, req.clone());
            result.unwrap_or_else(|e| panic!("{req:?} failed: {e:?}"))
        }

        fn err(&mut self, from: NodeId, session: SessionId, req: ZkRequest) -> ZkError {
            let (result, _) = self.call(from, session, req.clone());
            result.expect_err(&format!("{req:?} succeeded"))
        }

        fn connect(&mut self, from: NodeId) -> SessionId {
            match self.ok(
                from,
                SessionId(0),
                ZkRequest::Connect {
                    session_timeout_ms: TIMEOUT_MS,
                },
            ) {
                ZkReply::Connected {
                    session,
                    session_timeout_ms,
                } => {
                    assert_eq!(session_timeout_ms, TIMEOUT_MS);
                    session
                }
                other => panic!("unexpected {other:?}"),
            }
        }

        /// Advances the clock and runs the session check as often as it would have run.
        fn advance(&mut self, ms: u64) -> Vec<Effect<ZkTimer>> {
            let mut all = Vec::new();
            let target = self.now.plus_ms(ms);
            while self.now < target {
                self.now = self
                    .now
                    .plus_ms(SESSION_CHECK_INTERVAL_MS.min(target.since(self.now)));
                let mut out = Effects::new();
                self.zk
                    .on_timeout(self.now, ZkTimer::SessionCheck, &mut out);
                all.extend(out.list);
            }
            all
        }
    }

    fn create(path: &str, data: &[u8], ephemeral: bool) -> ZkRequest {
        ZkRequest::Create {
            path: path.into(),
            data: data.to_vec(),
            ephemeral,
        }
    }
    fn set(path: &str, data: &[u8], expected_version: Option<i32>) -> ZkRequest {
        ZkRequest::SetData {
            path: path.into(),
            data: data.to_vec(),
            expected_version: expected_version.map(ZkVersion),
        }
    }
    fn get(path: &str, watch: bool) -> ZkRequest {
        ZkRequest::GetData {
            path: path.into(),
            watch,
        }
    }
    fn delete(path: &str, expected_version: Option<i32>) -> ZkRequest {
        ZkRequest::Delete {
            path: path.into(),
            expected_version: expected_version.map(ZkVersion),
        }
    }
    fn watches(effects: &[Effect<ZkTimer>]) -> Vec<(NodeId, SessionId, String, WatchKind)> {
        effects
            .iter()
            .filter_map(|e| match e {
                Effect::Send {
                    to,
                    msg:
                        Message::ZkWatch {
                            session,
                            path,
                            kind,
                            ..
                        },
                } => Some((*to, *session, path.clone(), *kind)),
                _ => None,
            })
            .collect()
    }
    fn writes(effects: &[Effect<ZkTimer>]) -> usize {
        effects.iter().filter(|e| matches!(e, Effect::Disk(DiskOp::WriteAtomic { file, .. }) if file == SNAPSHOT_FILE)).count()
    }
    fn disk_files(effects: &[Effect<ZkTimer>]) -> BTreeMap<String, Vec<u8>> {
        let mut files = BTreeMap::new();
        for e in effects {
            if let Effect::Disk(DiskOp::WriteAtomic { file, data }) = e {
                files.insert(file.clone(), data.clone());
            }
        }
        files
    }

    #[test]
    fn create_get_set_with_versions() {
        let mut h = Harness::new();
        let s = h.connect(B0);
        assert_eq!(
            h.ok(B0, s, create("/a", b"x", false)),
            ZkReply::Created { path: "/a".into() }
        );
        assert_eq!(
            h.ok(B0, s, get("/a", false)),
            ZkReply::Data {
                data: b"x".to_vec(),
                version: ZkVersion(0)
            }
        );
        assert_eq!(
            h.ok(B0, s, set("/a", b"y", Some(0))),
            ZkReply::Stat {
                version: ZkVersion(1)
            }
        );
        assert_eq!(h.err(B0, s, set("/a", b"z", Some(0))), ZkError::BadVersion);
        assert_eq!(
            h.zk.get("/a"),
            Some((&b"y"[..], ZkVersion(1))),
            "a failed conditional write changes nothing"
        );
        assert_eq!(
            h.ok(B0, s, set("/a", b"z", None)),
            ZkReply::Stat {
                version: ZkVersion(2)
            }
        );
        assert_eq!(
            h.ok(B0, s, get("/a", false)),
            ZkReply::Data {
                data: b"z".to_vec(),
                version: ZkVersion(2)
            }
        );
        assert_eq!(h.err(B0, s, delete("/a", Some(1))), ZkError::BadVersion);
        assert_eq!(h.ok(B0, s, delete("/a", Some(2))), ZkReply::Deleted);
        assert_eq!(h.zk.get("/a"), None);
    }

    #[test]
    fn structural_errors() {
        let mut h = Harness::new();
        let s = h.connect(B0);
        assert_eq!(
            h.err(B0, s, create("/brokers/ids", b"", false)),
            ZkError::NoNode,
            "parent missing"
        );
        h.ok(B0, s, create("/brokers", b"", false));
        h.ok(B0, s, create("/brokers/ids", b"", false));
        assert_eq!(
            h.err(B0, s, create("/brokers", b"", false)),
            ZkError::NodeExists
        );
        assert_eq!(h.err(B0, s, create("/", b"", false)), ZkError::NodeExists);
        assert_eq!(h.err(B0, s, delete("/brokers", None)), ZkError::NotEmpty);
        assert_eq!(
            h.err(B0, s, delete("/", None)),
            ZkError::NotEmpty,
            "the root cannot be deleted"
        );
        assert_eq!(h.err(B0, s, delete("/nope", None)), ZkError::NoNode);
        assert_eq!(h.err(B0, s, set("/nope", b"", None)), ZkError::NoNode);
        assert_eq!(h.err(B0, s, get("/nope", false)), ZkError::NoNode);
        assert_eq!(
            h.err(
                B0,
                s,
                ZkRequest::GetChildren {
                    path: "/nope".into(),
                    watch: true
                }
            ),
            ZkError::NoNode
        );
        for bad in ["", "a", "/a/", "//a", "/a/./b", "/brokers/../x"] {
            assert_eq!(
                h.err(B0, s, create(bad, b"", false)),
                ZkError::NoNode,
                "{bad:?}"
            );
        }
        // Ephemerals cannot have children.
        h.ok(B0, s, create("/e", b"", true));
        assert_eq!(
            h.err(B0, s, create("/e/child", b"", false)),
            ZkError::NoNode
        );
        // Children are the last path components, sorted; grandchildren and look-alike
        // siblings (`/brokers-x` sorts between `/brokers` and `/brokers/`) are excluded.
        h.ok(B0, s, create("/brokers-x", b"", false));
        for id in ["2", "10", "0"] {
            h.ok(B0, s, create(&format!("/brokers/ids/{id}"), b"", false));
        }
        let children = |v: &[&str]| ZkReply::Children {
            children: v.iter().map(|c| c.to_string()).collect(),
        };
        assert_eq!(
            h.ok(
                B0,
                s,
                ZkRequest::GetChildren {
                    path: "/brokers/ids".into(),
                    watch: false
                }
            ),
            children(&["0", "10", "2"])
        );
        assert_eq!(
            h.ok(
                B0,
                s,
                ZkRequest::GetChildren {
                    path: "/brokers".into(),
                    watch: false
                }
            ),
            children(&["ids"])
        );
        assert_eq!(
            h.ok(
                B0,
                s,
                ZkRequest::GetChildren {
                    path: "/".into(),
                    watch: false
                }
            ),
            children(&["brokers", "brokers-x", "e"])
        );
        assert_eq!(h.zk.children("/brokers/ids"), vec!["0", "10", "2"]);
        assert_eq!(h.zk.znode("/brokers/ids").map(|z| z.cversion), Some(3));
    }

    /// A committed `/controller_epoch` write is recorded where it commits, with the writer's
    /// broker, in the order the node stores them; a refused conditional write is not.
    #[test]
    fn controller_epoch_writes_are_recorded_when_they_commit() {
        let mut h = Harness::new();
        let s0 = h.connect(B0);
        let s1 = h.connect(B1);
        let epochs = |effects: &[Effect<ZkTimer>]| -> Vec<Event> {
            effects
                .iter()
                .filter_map(|e| match e {
                    Effect::Event(ev @ Event::ControllerEpochIncremented { .. }) => {
                        Some(ev.clone())
                    }
                    _ => None,
                })
                .collect()
        };
        let (_, effects) = h.call(B0, s0, create("/controller_epoch", b"1", false));
        assert_eq!(
            epochs(&effects),
            [Event::ControllerEpochIncremented {
                broker: BrokerId(0),
                controller_epoch: crate::types::ControllerEpoch(1),
            }]
        );
        let (_, effects) = h.call(B1, s1, set("/controller_epoch", b"2", Some(0)));
        assert_eq!(
            epochs(&effects),
            [Event::ControllerEpochIncremented {
                broker: BrokerId(1),
                controller_epoch: crate::types::ControllerEpoch(2),
            }]
        );
        // A stale conditional write (version 0 again) fails and records nothing.
        let (result, effects) = h.call(B0, s0, set("/controller_epoch", b"2", Some(0)));
        assert!(result.is_err());
        assert!(epochs(&effects).is_empty());
    }

    #[test]
    fn connect_clamps_timeout_and_issues_increasing_ids() {
        let mut h = Harness::new();
        let mut seen = Vec::new();
        for (asked_ms, granted_ms) in [
            (1, SESSION_TIMEOUT_MIN_MS),
            (18_000, 18_000),
            (u64::MAX, SESSION_TIMEOUT_MAX_MS),
        ] {
            let (result, effects) = h.call(
                B0,
                SessionId(0),
                ZkRequest::Connect {
                    session_timeout_ms: asked_ms,
                },
            );
            assert_eq!(
                writes(&effects),
                1,
                "the counter is durable before the id is visible"
            );
            match result {
                Ok(ZkReply::Connected {
                    session,
                    session_timeout_ms,
                }) => {
                    assert_eq!(session_timeout_ms, granted_ms);
                    seen.push(session);
                }
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(seen, vec![SessionId(1), SessionId(2), SessionId(3)]);
        assert_eq!(
            h.zk.sessions(),
            vec![(SessionId(1), B0), (SessionId(2), B0), (SessionId(3), B0)]
        );
        assert_eq!(
            h.err(B0, SessionId(99), ZkRequest::Ping),
            ZkError::NoSession
        );
        assert_eq!(h.err(B0, SessionId(0), ZkRequest::Ping), ZkError::NoSession);
    }

    #[test]
    fn ephemeral_deleted_on_session_expiry_fires_watch_to_other_owner() {
        let mut h = Harness::new();
        let s0 = h.connect(B0);
        let s1 = h.connect(B1);
        h.ok(B0, s0, create("/controller", b"0", true));
        h.ok(B1, s1, get("/controller", true));
        // B1 keeps its session alive; B0 goes silent.
        let mut effects = Vec::new();
        for _ in 0..4 {
            effects.extend(h.advance(TIMEOUT_MS / 3));
            assert_eq!(h.ok(B1, s1, ZkRequest::Ping), ZkReply::Pong);
        }
        assert_eq!(h.zk.get("/controller"), None);
        assert_eq!(h.zk.sessions(), vec![(s1, B1)]);
        assert_eq!(
            watches(&effects),
            vec![(B1, s1, "/controller".to_string(), WatchKind::NodeDeleted)]
        );
        assert!(effects.contains(&Effect::Event(Event::ZkSessionExpired {
            session: s0,
            owner: B0
        })));
        assert!(effects.contains(&Effect::Send {
            to: B0,
            msg: Message::ZkSessionExpired { session: s0 }
        }));
        assert_eq!(h.err(B0, s0, ZkRequest::Ping), ZkError::SessionExpired);
        // B1 can now win the election.
        h.ok(B1, s1, create("/controller", b"1", true));
        assert_eq!(
            h.zk.znode("/controller").and_then(|z| z.ephemeral_owner),
            Some(s1)
        );
    }

    #[test]
    fn request_after_deadline_expires_before_the_periodic_check() {
        let mut h = Harness::new();
        let s = h.connect(B0);
        h.ok(B0, s, create("/e", b"", true));
        h.now = h.now.plus_ms(TIMEOUT_MS); // no timer ran
        let (result, effects) = h.call(B0, s, ZkRequest::Ping);
        assert_eq!(result, Err(ZkError::SessionExpired));
        assert!(effects.contains(&Effect::Event(Event::ZkSessionExpired {
            session: s,
            owner: B0
        })));
        assert_eq!(h.zk.get("/e"), None);
        assert!(h.zk.sessions().is_empty());
    }

    #[test]
    fn pings_keep_a_session_alive() {
        let mut h = Harness::new();
        let s = h.connect(B0);
        h.ok(B0, s, create("/brokers", b"", false));
        h.ok(B0, s, create("/brokers/0", b"", true));
        for _ in 0..20 {
            let effects = h.advance(TIMEOUT_MS - SESSION_CHECK_INTERVAL_MS);
            assert!(
                !effects.iter().any(|e| matches!(e, Effect::Event(_))),
                "{effects:?}"
            );
            assert_eq!(h.ok(B0, s, ZkRequest::Ping), ZkReply::Pong);
        }
        assert_eq!(h.zk.sessions(), vec![(s, B0)]);
        assert!(h.zk.get("/brokers/0").is_some());
        // And the forbidden case: silence for a whole timeout expires it.
        h.advance(TIMEOUT_MS);
        assert!(h.zk.sessions().is_empty());
        assert_eq!(h.zk.get("/brokers/0"), None);
        assert!(
            h.zk.get("/brokers").is_some(),
            "persistent znodes outlive sessions"
        );
    }

    #[test]
    fn watches_are_one_shot() {
        let mut h = Harness::new();
        let s0 = h.connect(B0);
        let s1 = h.connect(B1);
        h.ok(B0, s0, create("/a", b"", false));
        h.ok(B1, s1, get("/a", true));
        h.ok(B1, s1, get("/a", true)); // setting it twice still fires once
        let (_, effects) = h.call(B0, s0, set("/a", b"1", None));
        assert_eq!(
            watches(&effects),
            vec![(B1, s1, "/a".to_string(), WatchKind::NodeDataChanged)]
        );
        let (_, effects) = h.call(B0, s0, set("/a", b"2", None));
        assert!(watches(&effects).is_empty(), "a fired watch is gone");
        // Re-armed, it fires again; a delete notifies the data watcher once.
        h.ok(B1, s1, get("/a", true));
        h.ok(
            B1,
            s1,
            ZkRequest::GetChildren {
                path: "/a".into(),
                watch: true,
            },
        );
        let (_, effects) = h.call(B0, s0, delete("/a", None));
        assert_eq!(
            watches(&effects),
            vec![(B1, s1, "/a".to_string(), WatchKind::NodeDeleted)]
        );
    }

    /// Regression (`jepsen-2013-isr-shrink-fixed` seed 161): the controller was cut off from
    /// the coordination node for 350 ms while a broker registered; the child-watch
    /// notification on `/brokers/ids` was dropped, the controller never read the broker list
    /// again, and its partitions stayed offline to the end. A notification is now resent
    /// until the client acknowledges it, as ZooKeeper's connection and `setWatches` ensure.
    #[test]
    fn a_lost_watch_notification_is_resent_until_acknowledged() {
        let mut h = Harness::new();
        let s0 = h.connect(B0);
        let s1 = h.connect(B1);
        h.ok(B0, s0, create("/a", b"", false));
        h.ok(B1, s1, get("/a", true));
        let (_, effects) = h.call(B0, s0, set("/a", b"1", None));
        assert_eq!(watches(&effects).len(), 1);
        // The notification (seq 1) is lost: B1's next request still acknowledges 0.
        h.watch_acks.insert(s1, 0);
        let (_, effects) = h.call(B1, s1, ZkRequest::Ping);
        let resent: Vec<_> = effects
            .iter()
            .filter_map(|e| match e {
                Effect::Send {
                    to,
                    msg: Message::ZkWatch { path, seq, .. },
                } => Some((*to, path.clone(), *seq)),
                _ => None,
            })
            .collect();
        assert_eq!(resent, vec![(B1, "/a".to_string(), 1)]);
        // Sent before the answer, so the client sees the change before what follows it.
        let first_response = effects.iter().position(|e| {
            matches!(
                e,
                Effect::Send {
                    msg: Message::ZkResponse { .. },
                    ..
                }
            )
        });
        let first_watch = effects.iter().position(|e| {
            matches!(
                e,
                Effect::Send {
                    msg: Message::ZkWatch { .. },
                    ..
                }
            )
        });
        assert!(first_watch < first_response);
        // Acknowledged (the harness took it), it is not sent again.
        let (_, effects) = h.call(B1, s1, ZkRequest::Ping);
        assert!(watches(&effects).is_empty());
    }

    /// The client side: notifications are taken once each, strictly in order.
    #[test]
    fn the_client_takes_watch_notifications_once_and_in_order() {
        let mut c: crate::zk_client::ZkClient<()> = crate::zk_client::ZkClient::new(18000);
        c.connect(Instant(0), ());
        let connected = Ok(ZkReply::Connected {
            session: SessionId(7),
            session_timeout_ms: 18000,
        });
        c.on_response(CorrelationId(1), &connected);
        assert!(!c.on_watch(SessionId(6), 1), "another session's");
        assert!(!c.on_watch(SessionId(7), 2), "after a gap: seq 1 was lost");
        assert!(c.on_watch(SessionId(7), 1));
        assert!(!c.on_watch(SessionId(7), 1), "a repeat");
        assert!(c.on_watch(SessionId(7), 2));
        let Message::Zk { watch_ack, .. } = c.request(Instant(1), ZkRequest::Ping, ()) else {
            panic!("a request");
        };
        assert_eq!(watch_ack, 2);
    }

    #[test]
    fn exists_and_child_watches() {
        let mut h = Harness::new();
        let s0 = h.connect(B0);
        let s1 = h.connect(B1);
        h.ok(B0, s0, create("/brokers", b"", false));
        assert_eq!(h.err(B1, s1, get("/brokers/0", true)), ZkError::NoNode);
        h.ok(
            B1,
            s1,
            ZkRequest::GetChildren {
                path: "/brokers".into(),
                watch: true,
            },
        );
        let (_, effects) = h.call(B0, s0, create("/brokers/0", b"", true));
        assert_eq!(
            watches(&effects),
            vec![
                (B1, s1, "/brokers/0".to_string(), WatchKind::NodeCreated),
                (
                    B1,
                    s1,
                    "/brokers".to_string(),
                    WatchKind::NodeChildrenChanged
                ),
            ]
        );
        h.ok(
            B1,
            s1,
            ZkRequest::GetChildren {
                path: "/brokers".into(),
                watch: true,
            },
        );
        let (result, effects) = h.call(B0, s0, ZkRequest::Close);
        assert_eq!(result, Ok(ZkReply::Closed));
        assert_eq!(writes(&effects), 1);
        assert_eq!(
            watches(&effects),
            vec![(
                B1,
                s1,
                "/brokers".to_string(),
                WatchKind::NodeChildrenChanged
            )]
        );
        assert_eq!(h.zk.children("/brokers"), Vec::<String>::new());
        assert_eq!(h.err(B0, s0, ZkRequest::Ping), ZkError::SessionExpired);
        // A dead session's watches are dropped with it.
        let s2 = h.connect(B0);
        assert_eq!(h.err(B0, s2, get("/x", true)), ZkError::NoNode);
        h.ok(B0, s2, ZkRequest::Close);
        let (_, effects) = h.call(B1, s1, create("/x", b"", false));
        assert!(watches(&effects).is_empty());
    }

    #[test]
    fn multi_is_all_or_nothing() {
        let mut h = Harness::new();
        let s0 = h.connect(B0);
        let s1 = h.connect(B1);
        h.ok(B0, s0, create("/controller_epoch", b"1", false));
        h.ok(B0, s0, set("/controller_epoch", b"2", Some(0)));
        h.ok(B1, s1, get("/controller_epoch", true));
        assert_eq!(h.err(B1, s1, get("/controller", true)), ZkError::NoNode);
        let before = h.zk.clone();
        // A zombie controller fenced by the epoch's zkVersion (KAFKA-6082).
        let ops = vec![
            ZkOp::Create {
                path: "/controller".into(),
                data: b"0".to_vec(),
                ephemeral: true,
            },
            ZkOp::Check {
                path: "/controller_epoch".into(),
                version: ZkVersion(0),
            },
            ZkOp::SetData {
                path: "/controller_epoch".into(),
                data: b"3".to_vec(),
                expected_version: None,
            },
        ];
        let (result, effects) = h.call(B0, s0, ZkRequest::Multi { ops });
        assert_eq!(result, Err(ZkError::BadVersion));
        assert_eq!(writes(&effects), 0);
        assert!(watches(&effects).is_empty());
        assert_eq!(h.zk.tree, before.tree, "nothing applied");
        assert_eq!(h.zk.data_watches, before.data_watches, "no watch fired");
        // The first error wins.
        let ops = vec![
            ZkOp::Delete {
                path: "/nope".into(),
                expected_version: None,
            },
            ZkOp::Check {
                path: "/controller_epoch".into(),
                version: ZkVersion(0),
            },
        ];
        assert_eq!(h.err(B0, s0, ZkRequest::Multi { ops }), ZkError::NoNode);
        // The right version: everything applies, each watch fires once.
        let ops = vec![
            ZkOp::Create {
                path: "/controller".into(),
                data: b"0".to_vec(),
                ephemeral: true,
            },
            ZkOp::Check {
                path: "/controller_epoch".into(),
                version: ZkVersion(1),
            },
            ZkOp::SetData {
                path: "/controller_epoch".into(),
                data: b"3".to_vec(),
                expected_version: Some(ZkVersion(1)),
            },
            ZkOp::SetData {
                path: "/controller_epoch".into(),
                data: b"4".to_vec(),
                expected_version: Some(ZkVersion(2)),
            },
        ];
        let (result, effects) = h.call(B0, s0, ZkRequest::Multi { ops });
        assert_eq!(
            result,
            Ok(ZkReply::Multi {
                results: vec![
                    ZkReply::Created {
                        path: "/controller".into()
                    },
                    ZkReply::Stat {
                        version: ZkVersion(1)
                    },
                    ZkReply::Stat {
                        version: ZkVersion(2)
                    },
                    ZkReply::Stat {
                        version: ZkVersion(3)
                    },
                ]
            })
        );
        assert_eq!(writes(&effects), 1, "one durable write for the whole multi");
        assert_eq!(
            watches(&effects),
            vec![
                (B1, s1, "/controller".to_string(), WatchKind::NodeCreated),
                (
                    B1,
                    s1,
                    "/controller_epoch".to_string(),
                    WatchKind::NodeDataChanged
                ),
            ]
        );
        assert_eq!(
            h.zk.get("/controller_epoch"),
            Some((&b"4"[..], ZkVersion(3)))
        );
    }

    #[test]
    fn responses_and_watches_follow_the_durable_write() {
        let mut h = Harness::new();
        let s0 = h.connect(B0);
        let s1 = h.connect(B1);
        assert_eq!(h.err(B1, s1, get("/a", true)), ZkError::NoNode);
        let (_, effects) = h.call(B0, s0, create("/a", b"", false));
        let write_at = effects
            .iter()
            .position(|e| matches!(e, Effect::Disk(DiskOp::WriteAtomic { .. })))
            .expect("a write");
        let first_send = effects
            .iter()
            .position(|e| matches!(e, Effect::Send { .. }))
            .expect("a send");
        assert!(write_at < first_send, "{effects:?}");
        assert_eq!(effects.len(), 3, "write, watch, response: {effects:?}");
        // Reads and failed writes write nothing.
        let (_, effects) = h.call(B0, s0, get("/a", false));
        assert_eq!(writes(&effects), 0);
        let (_, effects) = h.call(B0, s0, create("/a", b"", false));
        assert_eq!(writes(&effects), 0);
    }

    #[test]
    fn recover_restores_persistent_znodes_not_sessions_or_ephemerals() {
        let mut h = Harness::new();
        let s0 = h.connect(B0);
        let mut files = BTreeMap::new();
        for req in [
            create("/brokers", b"", false),
            create("/brokers/ids", b"", false),
            create("/brokers/ids/0", b"e", true),
        ] {
            let (result, effects) = h.call(B0, s0, req);
            assert!(result.is_ok());
            files.extend(disk_files(&effects));
        }
        let (_, effects) = h.call(B0, s0, set("/brokers", b"v", None));
        files.extend(disk_files(&effects));
        assert_eq!(files.keys().collect::<Vec<_>>(), vec![SNAPSHOT_FILE]);

        let mut h = Harness::with(ZkServer::recover(&files));
        assert_eq!(h.zk.get("/brokers"), Some((&b"v"[..], ZkVersion(1))));
        assert_eq!(h.zk.children("/brokers"), vec!["ids"]);
        assert_eq!(
            h.zk.get("/brokers/ids/0"),
            None,
            "ephemerals do not survive a restart"
        );
        assert!(h.zk.sessions().is_empty());
        assert_eq!(
            h.err(B0, s0, ZkRequest::Ping),
            ZkError::SessionExpired,
            "an old session is expired, not unknown"
        );
        let s1 = h.connect(B0);
        assert!(s1 > s0, "session ids are never reused");

        assert!(
            ZkServer::recover(&BTreeMap::new()).get("/").is_some(),
            "no snapshot: a fresh server"
        );
        let garbage = BTreeMap::from([(SNAPSHOT_FILE.to_string(), b"{not json".to_vec())]);
        assert!(ZkServer::try_recover(&garbage).is_err());
        let orphan = br#"{"next_session_id":1,"znodes":{"/":{"data":[],"version":0,"cversion":0},"/a/b":{"data":[],"version":0,"cversion":0}}}"#;
        let orphan = BTreeMap::from([(SNAPSHOT_FILE.to_string(), orphan.to_vec())]);
        assert!(ZkServer::try_recover(&orphan)
            .unwrap_err()
            .contains("no parent"));
    }

    #[test]
    fn non_requests_are_ignored() {
        let mut h = Harness::new();
        let mut out = Effects::new();
        h.zk.on_message(
            h.now,
            B0,
            Message::ZkSessionExpired {
                session: SessionId(1),
            },
            &mut out,
        );
        assert!(out.is_empty());
    }

    fn arb_path() -> impl Strategy<Value = String> {
        prop::sample::select(vec!["/a", "/b", "/a/x", "/a/y", "/b/x", "/a/x/z", "/"])
            .prop_map(String::from)
    }

    fn arb_op() -> impl Strategy<Value = ZkOp> {
        let version = prop::option::of((0..3i32).prop_map(ZkVersion));
        prop_oneof![
            (arb_path(), (0..3i32).prop_map(ZkVersion))
                .prop_map(|(path, version)| ZkOp::Check { path, version }),
            (arb_path(), any::<bool>()).prop_map(|(path, ephemeral)| ZkOp::Create {
                path,
                data: vec![1],
                ephemeral
            }),
            (arb_path(), version.clone()).prop_map(|(path, expected_version)| ZkOp::SetData {
                path,
                data: vec![2],
                expected_version
            }),
            (arb_path(), version).prop_map(|(path, expected_version)| ZkOp::Delete {
                path,
                expected_version
            }),
        ]
    }

    #[derive(Debug, Clone)]
    enum Step {
        Request(usize, ZkRequest),
        Advance(u64),
        Restart,
    }

    fn arb_step() -> impl Strategy<Value = Step> {
        let req = prop_oneof![
            Just(ZkRequest::Connect {
                session_timeout_ms: TIMEOUT_MS
            }),
            Just(ZkRequest::Ping),
            Just(ZkRequest::Close),
            arb_op().prop_map(|op| match op {
                ZkOp::Check { path, .. } => ZkRequest::GetData { path, watch: true },
                ZkOp::Create {
                    path,
                    data,
                    ephemeral,
                } => ZkRequest::Create {
                    path,
                    data,
                    ephemeral
                },
                ZkOp::SetData {
                    path,
                    data,
                    expected_version,
                } => ZkRequest::SetData {
                    path,
                    data,
                    expected_version
                },
                ZkOp::Delete {
                    path,
                    expected_version,
                } => ZkRequest::Delete {
                    path,
                    expected_version
                },
            }),
            arb_path().prop_map(|path| ZkRequest::GetChildren { path, watch: true }),
            prop::collection::vec(arb_op(), 0..4).prop_map(|ops| ZkRequest::Multi { ops }),
        ];
        prop_oneof![
            8 => (0..3usize, req).prop_map(|(client, req)| Step::Request(client, req)),
            2 => (0..4_000u64).prop_map(Step::Advance),
            1 => Just(Step::Restart),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

        /// Random traffic from three clients with restarts: the handlers' own invariant checks
        /// must hold, a failed request must change nothing, and recovery must reproduce exactly
        /// the persistent part of the tree.
        #[test]
        fn random_traffic_keeps_invariants(steps in prop::collection::vec(arb_step(), 1..60)) {
            let mut h = Harness::new();
            let mut files = BTreeMap::new();
            let mut session_of = [SessionId(0); 3];
            for (client, session) in session_of.iter_mut().enumerate() {
                let from = NodeId::Broker(BrokerId(client as i32));
                let (result, effects) = h.call(from, SessionId(0), ZkRequest::Connect { session_timeout_ms: TIMEOUT_MS });
                files.extend(disk_files(&effects));
                let Ok(ZkReply::Connected { session: id, .. }) = result else { panic!("{result:?}") };
                *session = id;
            }
            for step in steps {
                match step {
                    Step::Request(client, req) => {
                        let from = NodeId::Broker(BrokerId(client as i32));
                        let before = h.zk.tree.clone();
                        let (result, effects) = h.call(from, session_of[client], req);
                        files.extend(disk_files(&effects));
                        match result {
                            Ok(ZkReply::Connected { session, .. }) => session_of[client] = session,
                            Ok(_) => {}
                            Err(ZkError::SessionExpired) => {}
                            Err(_) => prop_assert_eq!(&h.zk.tree, &before),
                        }
                    }
                    Step::Advance(ms) => files.extend(disk_files(&h.advance(ms))),
                    Step::Restart => {
                        let recovered = ZkServer::recover(&files);
                        let persistent: BTreeMap<_, _> =
                            h.zk.tree.iter().filter(|(_, z)| z.ephemeral_owner.is_none()).map(|(p, z)| (p.clone(), z.clone())).collect();
                        prop_assert_eq!(&recovered.tree, &persistent);
                        prop_assert_eq!(recovered.next_session_id, h.zk.next_session_id);
                        h = Harness::with(recovered);
                    }
                }
            }
        }
    }
}
