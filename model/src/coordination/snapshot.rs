//! Durability: the snapshot of the persistent znodes and the session counter written before
//! any answer, and the recovery from it after a restart.
//!
//! Mirrors ZooKeeper's `FileSnap` and `ZKDatabase.loadDataBase` (with no transaction log).

use super::*;

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

impl ZkServer {
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

    pub(super) fn persist(&self, out: &mut Effects<ZkTimer>) {
        out.disk(DiskOp::WriteAtomic {
            file: SNAPSHOT_FILE.to_string(),
            data: self.snapshot_bytes(),
        });
    }

    pub(super) fn snapshot_bytes(&self) -> Vec<u8> {
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
}
