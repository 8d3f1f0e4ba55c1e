//! Durability: each change written as a transaction before any answer, a snapshot of the
//! persistent znodes and the session counter now and then, and the recovery from both after a
//! restart.
//!
//! Mirrors ZooKeeper's `FileTxnSnapLog`: `FileTxnLog` (a transaction per change) and `FileSnap`
//! (a fuzzy-free snapshot here: the server is single-threaded), and `ZKDatabase.loadDataBase`
//! (the latest snapshot, then the transactions after it, in order). ZooKeeper takes a snapshot
//! every `snapCount` transactions; here a snapshot is taken once the transactions since the last
//! one outnumber the znodes (and at least [`MIN_TXNS_PER_SNAPSHOT`]), so the bytes written per
//! change stay proportional to the change, not to the tree: rewriting the whole tree on every
//! write made each ISR change of a 3000-partition cluster cost a 3000-znode snapshot.
//!
//! Each transaction is its own file, [`TXN_FILE_PREFIX`] followed by its zero-padded sequence
//! number, written with `DiskOp::WriteAtomic` (atomic and durable, as the one snapshot file was
//! before; ZooKeeper fsyncs its log before answering). A snapshot records the last transaction
//! it contains; the transaction files it covers are deleted after it is written, and any left
//! behind (a crash between the two) are skipped on recovery.

use super::*;

/// The fewest transactions between two snapshots.
pub const MIN_TXNS_PER_SNAPSHOT: u64 = 64;

/// The on-disk form of [`SNAPSHOT_FILE`]. Ephemerals are never in it, by construction.
#[derive(Debug, Serialize, Deserialize)]
struct Snapshot {
    next_session_id: i64,
    /// The sequence number of the last transaction the snapshot contains (0: none).
    #[serde(default)]
    last_txn: u64,
    znodes: BTreeMap<String, SnapshotZnode>,
}

/// The on-disk form of one transaction file: the session counter after it, and every
/// persistent znode it changed (`None`: deleted, or not persistent).
#[derive(Debug, Serialize, Deserialize)]
struct Txn {
    next_session_id: i64,
    changes: BTreeMap<String, Option<SnapshotZnode>>,
}

/// The name of transaction `seq`'s file: zero-padded so that file order is sequence order.
fn txn_file(seq: u64) -> String {
    format!("{TXN_FILE_PREFIX}{seq:020}")
}

#[derive(Debug, Clone, Serialize, Deserialize)]
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
        let txns: Vec<(&String, &Vec<u8>)> = files
            .range(TXN_FILE_PREFIX.to_string()..)
            .take_while(|(name, _)| name.starts_with(TXN_FILE_PREFIX))
            .collect();
        if !files.contains_key(SNAPSHOT_FILE) && txns.is_empty() {
            return Ok(ZkServer::new());
        }
        let znode = |path: &str, z: SnapshotZnode, file: &str| {
            if z.version.0 < 0 || z.cversion < 0 {
                return Err(format!("{file}: {path}: negative version"));
            }
            Ok(Znode {
                data: z.data,
                version: z.version,
                ephemeral_owner: None,
                cversion: z.cversion,
            })
        };
        let mut tree = BTreeMap::new();
        let (mut next_session_id, last_snapshotted) = match files.get(SNAPSHOT_FILE) {
            Some(bytes) => {
                let snapshot: Snapshot = serde_json::from_slice(bytes)
                    .map_err(|e| format!("{SNAPSHOT_FILE}: undecodable snapshot: {e}"))?;
                for (path, z) in snapshot.znodes {
                    let z = znode(&path, z, SNAPSHOT_FILE)?;
                    tree.insert(path, z);
                }
                (snapshot.next_session_id, snapshot.last_txn)
            }
            None => {
                // No snapshot yet: the transactions apply to a fresh server's tree.
                tree = ZkServer::new().tree;
                (SESSION_ID_FIRST, 0)
            }
        };
        // The transactions after the snapshot, in order and without a gap (ZooKeeper refuses
        // to start on a log it cannot read rather than serve an older tree).
        let mut last_txn = last_snapshotted;
        for (name, bytes) in txns {
            let seq: u64 = name[TXN_FILE_PREFIX.len()..]
                .parse()
                .map_err(|_| format!("{name}: not a transaction file name"))?;
            if seq <= last_snapshotted {
                continue; // covered by the snapshot, left by a crash before its deletion
            }
            if seq != last_txn + 1 {
                return Err(format!(
                    "{name}: transaction {seq} follows {last_txn}: a transaction is missing"
                ));
            }
            let txn: Txn = serde_json::from_slice(bytes)
                .map_err(|e| format!("{name}: undecodable transaction: {e}"))?;
            for (path, z) in txn.changes {
                match z {
                    Some(z) => {
                        let z = znode(&path, z, name)?;
                        tree.insert(path, z);
                    }
                    None => {
                        tree.remove(&path);
                    }
                }
            }
            next_session_id = txn.next_session_id;
            last_txn = seq;
        }
        if next_session_id < SESSION_ID_FIRST {
            return Err(format!(
                "{SNAPSHOT_FILE}: next_session_id {next_session_id} < {SESSION_ID_FIRST}"
            ));
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
            next_session_id,
            data_watches: BTreeMap::new(),
            child_watches: BTreeMap::new(),
            unchecked: Default::default(),
            last_txn,
            last_snapshotted,
        };
        zk.check_invariants();
        Ok(zk)
    }

    /// Makes a change durable before anything depends on it: `changed` are the paths it
    /// wrote (none for a change of the session counter alone). Writes one transaction file,
    /// or, once the transactions since the last snapshot outnumber the znodes, a snapshot
    /// followed by the deletion of the transaction files it covers.
    pub(super) fn persist<'a>(
        &mut self,
        changed: impl IntoIterator<Item = &'a String>,
        out: &mut Effects<ZkTimer>,
    ) {
        self.last_txn += 1;
        let since_snapshot = self.last_txn - self.last_snapshotted;
        if since_snapshot > MIN_TXNS_PER_SNAPSHOT.max(self.tree.len() as u64) {
            out.disk(DiskOp::WriteAtomic {
                file: SNAPSHOT_FILE.to_string(),
                data: self.snapshot_bytes(),
            });
            for seq in self.last_snapshotted + 1..self.last_txn {
                out.disk(DiskOp::Delete {
                    file: txn_file(seq),
                });
            }
            self.last_snapshotted = self.last_txn;
            return;
        }
        let changes = changed
            .into_iter()
            .map(|path| {
                let z = self
                    .tree
                    .get(path)
                    .filter(|z| z.ephemeral_owner.is_none())
                    .map(|z| SnapshotZnode {
                        data: z.data.clone(),
                        version: z.version,
                        cversion: z.cversion,
                    });
                (path.clone(), z)
            })
            .collect();
        let txn = Txn {
            next_session_id: self.next_session_id,
            changes,
        };
        out.disk(DiskOp::WriteAtomic {
            file: txn_file(self.last_txn),
            data: serde_json::to_vec(&txn).expect("a transaction always serializes"),
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
            last_txn: self.last_txn,
            znodes,
        };
        serde_json::to_vec(&snapshot).expect("a snapshot always serializes")
    }
}
