//! The ZooKeeper-style client protocol: requests, multi ops, replies, errors and watch events
//! (ZooKeeper's `OpCode`, `KeeperException.Code`, `Watcher.Event.EventType`).

use super::*;

/// ZooKeeper-style requests (see `coordination`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ZkRequest {
    /// Open a session; answered with [`ZkReply::Connected`].
    Connect { session_timeout_ms: u64 },
    /// Keep the session alive; any request also does.
    Ping,
    /// Create `path` (its parent must exist). Ephemeral znodes vanish with the session.
    Create {
        path: String,
        data: Vec<u8>,
        ephemeral: bool,
    },
    /// Replace `path`'s data if its version equals `expected_version` (`None`: any version).
    SetData {
        path: String,
        data: Vec<u8>,
        expected_version: Option<ZkVersion>,
    },
    /// Read `path`; `watch` leaves a one-shot data watch (fires on change or delete).
    GetData { path: String, watch: bool },
    /// List `path`'s children, sorted; `watch` leaves a one-shot child watch.
    GetChildren { path: String, watch: bool },
    /// Delete `path` (it must have no children) if its version matches.
    Delete {
        path: String,
        expected_version: Option<ZkVersion>,
    },
    /// All-or-nothing: every op succeeds or none is applied (ZooKeeper `multi`).
    Multi { ops: Vec<ZkOp> },
    /// Close the session now, deleting its ephemeral znodes (a clean shutdown).
    Close,
}

/// One operation inside [`ZkRequest::Multi`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ZkOp {
    /// Fails the multi unless `path` exists with this version.
    Check { path: String, version: ZkVersion },
    Create {
        path: String,
        data: Vec<u8>,
        ephemeral: bool,
    },
    SetData {
        path: String,
        data: Vec<u8>,
        expected_version: Option<ZkVersion>,
    },
    Delete {
        path: String,
        expected_version: Option<ZkVersion>,
    },
}

/// Successful ZooKeeper-style replies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ZkReply {
    Connected {
        session: SessionId,
        session_timeout_ms: u64,
    },
    Pong,
    Created {
        path: String,
    },
    /// New version after SetData.
    Stat {
        version: ZkVersion,
    },
    Data {
        data: Vec<u8>,
        version: ZkVersion,
    },
    Children {
        children: Vec<String>,
    },
    Deleted,
    /// Per-op results of a successful multi.
    Multi {
        results: Vec<ZkReply>,
    },
    Closed,
}

/// ZooKeeper-style errors (as `KeeperException.Code`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ZkError {
    NoNode,
    NodeExists,
    BadVersion,
    NotEmpty,
    SessionExpired,
    /// A request other than Connect arrived without a live session.
    NoSession,
}

/// What a watch saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum WatchKind {
    NodeCreated,
    NodeDeleted,
    NodeDataChanged,
    NodeChildrenChanged,
}
