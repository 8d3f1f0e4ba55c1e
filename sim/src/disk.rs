//! The simulated disk: a madsim plugin that keeps, per node and file, the bytes that survive a
//! power failure apart from the bytes the process sees.
//!
//! madsim's own `fs` keeps every write forever (its `sync_all` and `power_fail` are empty), so
//! it cannot show lost unflushed data. Here every file has
//! - `current`: what the process reads (durable bytes plus the OS page cache), and
//! - `durable`: what is on the platter, or `None` when the file was never made durable.
//!
//! Operations ([`DiskOp`]):
//! - `Append` / `Truncate` change `current` only (volatile until a `Sync`).
//! - `Sync` copies `current` to `durable` for that file (fsync of the file *and* its directory
//!   entry, so a synced new file survives).
//! - `WriteAtomic` sets both (checkpoint written to a temp file, fsynced, renamed, dir fsynced).
//! - `Delete` removes the file **durably** at once (unlink followed by a directory fsync, as
//!   Kafka does when it deletes segments); a power failure never resurrects a deleted file.
//!
//! Crash kinds:
//! - A madsim `kill`/`restart` is a *process* crash: the OS page cache survives, so nothing
//!   happens to the disk. That is why [`SimDisk`]'s `reset_node` is a no-op (madsim calls it on
//!   every kill) — and also because this plugin keys nodes by name, not by madsim `NodeId`.
//! - [`SimDisk::power_fail`]: every file reverts to its durable bytes, optionally keeping a
//!   random prefix of the unsynced appended tail (the torn last write). Files never synced vanish.
//! - [`SimDisk::wipe`]: the disk is replaced by an empty one (disk loss).
//!
//! Faults: [`SimDisk::inject_fault`] makes the next `ops` writes fail with EIO / ENOSPC, or
//! silently corrupts the next `ops` appends.
//!
//! Latency: [`SimDisk::latency`] returns the configured simulated cost of an operation. The
//! [`Disk`] trait is synchronous, so the node's async shell sleeps for it (madsim time) after
//! `apply`; the disk itself never sleeps. The shell charges log fsyncs (`Sync`, 2 ms by default)
//! and counts them for the run's statistics (`fsyncs`, `fsync_ms`); other operations, including
//! the fsync inside a checkpoint's `WriteAtomic`, are not charged.
//!
//! Determinism: `BTreeMap`s only, and no randomness except the rng handed to `power_fail`.

use ksim_model::disk::Disk;
use ksim_model::effects::DiskOp;
use std::collections::BTreeMap;
use std::io;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// Kinds of injected disk faults.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DiskFaultKind {
    /// `Append` / `Sync` / `WriteAtomic` fail with "Input/output error (os error 5)".
    Eio,
    /// `Append` / `Sync` / `WriteAtomic` fail with "No space left on device (os error 28)".
    Full,
    /// The next append succeeds but its data has its middle byte XORed with 0xFF.
    Corrupt,
}

/// Simulated per-operation latency.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiskConfig {
    /// Cost of a `Sync` (and the fsync part of a `WriteAtomic`), in microseconds.
    pub sync_latency_us: u64,
    /// Cost of an `Append`, `Truncate`, `WriteAtomic` (write part) or `Delete`, in microseconds.
    pub write_latency_us: u64,
}

impl Default for DiskConfig {
    fn default() -> Self {
        DiskConfig {
            sync_latency_us: 2_000,
            write_latency_us: 0,
        }
    }
}

/// One file's two views.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileState {
    /// What the process sees.
    pub current: Vec<u8>,
    /// What survives a power failure; `None` if the file was never made durable.
    pub durable: Option<Vec<u8>>,
}

impl FileState {
    /// Bytes of `current` beyond its longest common prefix with `durable`: what a power
    /// failure (without a torn tail) would lose or revert.
    pub fn unsynced_bytes(&self) -> u64 {
        let durable: &[u8] = self.durable.as_deref().unwrap_or(&[]);
        let common = self
            .current
            .iter()
            .zip(durable.iter())
            .take_while(|(a, b)| a == b)
            .count();
        (self.current.len() - common) as u64
    }
}

/// A pending injected fault on one node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PendingFault {
    pub kind: DiskFaultKind,
    /// Operations still to be affected.
    pub remaining: u32,
}

/// One node's disk.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeState {
    pub files: BTreeMap<String, FileState>,
    pub fault: Option<PendingFault>,
}

impl NodeState {
    fn not_found(file: &str) -> io::Error {
        io::Error::new(
            io::ErrorKind::NotFound,
            format!("{file}: No such file or directory (os error 2)"),
        )
    }

    /// Every file, sorted by name.
    pub fn list(&self) -> Vec<String> {
        self.files.keys().cloned().collect()
    }

    /// The file's current contents.
    pub fn read(&self, file: &str) -> io::Result<Vec<u8>> {
        self.files
            .get(file)
            .map(|f| f.current.clone())
            .ok_or_else(|| Self::not_found(file))
    }

    /// Consume one unit of a pending EIO / ENOSPC fault if `op` is affected by it.
    fn take_failure(&mut self, op: &DiskOp) -> Option<io::Error> {
        let affected = matches!(
            op,
            DiskOp::Append { .. } | DiskOp::Sync { .. } | DiskOp::WriteAtomic { .. }
        );
        let fault = self.fault.as_mut()?;
        if !affected || fault.kind == DiskFaultKind::Corrupt {
            return None;
        }
        let err = match fault.kind {
            DiskFaultKind::Eio => io::Error::other("Input/output error (os error 5)"),
            DiskFaultKind::Full => io::Error::other("No space left on device (os error 28)"),
            DiskFaultKind::Corrupt => unreachable!(),
        };
        fault.remaining -= 1;
        if fault.remaining == 0 {
            self.fault = None;
        }
        Some(err)
    }

    /// Consume one unit of a pending corruption fault (appends with data only).
    fn take_corruption(&mut self, data: &[u8]) -> bool {
        match self.fault.as_mut() {
            Some(f) if f.kind == DiskFaultKind::Corrupt && !data.is_empty() => {
                f.remaining -= 1;
                if f.remaining == 0 {
                    self.fault = None;
                }
                true
            }
            _ => false,
        }
    }

    /// Apply one operation. A failed operation has no effect.
    ///
    /// `Truncate` and `Sync` of a missing file are no-ops (as in `MemDisk`); a `Truncate` to a
    /// length beyond the end leaves the file unchanged (as in `MemDisk`).
    pub fn apply(&mut self, op: &DiskOp) -> io::Result<()> {
        if let Some(err) = self.take_failure(op) {
            return Err(err);
        }
        match op {
            DiskOp::Append { file, data } => {
                if self.take_corruption(data) {
                    let mut data = data.clone();
                    let mid = data.len() / 2;
                    data[mid] ^= 0xFF;
                    self.files
                        .entry(file.clone())
                        .or_default()
                        .current
                        .extend_from_slice(&data);
                } else {
                    self.files
                        .entry(file.clone())
                        .or_default()
                        .current
                        .extend_from_slice(data);
                }
            }
            DiskOp::Truncate { file, len } => {
                if let Some(f) = self.files.get_mut(file) {
                    f.current.truncate(*len as usize);
                }
            }
            DiskOp::Sync { file } => {
                if let Some(f) = self.files.get_mut(file) {
                    f.durable = Some(f.current.clone());
                }
            }
            DiskOp::WriteAtomic { file, data } => {
                self.files.insert(
                    file.clone(),
                    FileState {
                        current: data.clone(),
                        durable: Some(data.clone()),
                    },
                );
            }
            DiskOp::Delete { file } => {
                self.files.remove(file);
            }
            DiskOp::DeleteDir { dir } => {
                let prefix = format!("{dir}/");
                self.files.retain(|f, _| !f.starts_with(&prefix));
            }
        }
        Ok(())
    }

    /// Power failure: see [`SimDisk::power_fail`].
    pub fn power_fail<R: rand::Rng + ?Sized>(&mut self, torn_tail: bool, rng: &mut R) {
        let files = std::mem::take(&mut self.files);
        for (name, f) in files {
            let Some(durable) = f.durable else { continue };
            let mut current = durable.clone();
            if torn_tail && f.current.len() > durable.len() && f.current.starts_with(&durable) {
                let tail = &f.current[durable.len()..];
                let keep = rng.gen_range(0..=tail.len());
                current.extend_from_slice(&tail[..keep]);
            }
            self.files.insert(
                name,
                FileState {
                    current,
                    durable: Some(durable),
                },
            );
        }
    }

    /// Bytes a power failure could lose, summed over files.
    pub fn unsynced_bytes(&self) -> u64 {
        self.files.values().map(FileState::unsynced_bytes).sum()
    }

    /// Per file: current bytes and durable length (0 when never synced).
    pub fn snapshot(&self) -> BTreeMap<String, (Vec<u8>, usize)> {
        self.files
            .iter()
            .map(|(k, f)| {
                (
                    k.clone(),
                    (f.current.clone(), f.durable.as_ref().map_or(0, Vec::len)),
                )
            })
            .collect()
    }
}

impl Disk for NodeState {
    fn list(&self) -> Vec<String> {
        NodeState::list(self)
    }
    fn read(&self, file: &str) -> io::Result<Vec<u8>> {
        NodeState::read(self, file)
    }
    fn apply(&mut self, op: &DiskOp) -> io::Result<()> {
        NodeState::apply(self, op)
    }
}

/// The whole simulated disk state: every node's disk by node name, plus the latency config.
/// A plain struct (no madsim) so its logic is unit-testable; [`SimDisk`] wraps it.
#[derive(Debug, Clone, Default)]
pub struct DiskState {
    pub nodes: BTreeMap<String, NodeState>,
    pub config: DiskConfig,
    /// Per node, per directory (the part of a file name before its first `/`; `""` for top
    /// level files): the version of the directory's contents, a value of [`DiskState::clock`]
    /// set whenever an operation may have changed what a process reads there (an append, a
    /// truncation, an atomic write, a deletion, a power failure; not a sync). A directory whose
    /// version is unchanged holds the same bytes, so a reader may keep what it parsed.
    dir_versions: BTreeMap<String, BTreeMap<String, u64>>,
    /// The last version handed out; versions are never reused, even after a wipe.
    clock: u64,
}

/// The directory part of a file name: `events-0/00000000000000000000.log` -> `events-0`.
fn dir_of(file: &str) -> &str {
    file.split_once('/').map_or("", |(dir, _)| dir)
}

impl DiskState {
    /// The node's disk, created empty on first use.
    pub fn node_mut(&mut self, node: &str) -> &mut NodeState {
        self.nodes.entry(node.to_string()).or_default()
    }

    /// The node's disk, if it was ever used.
    pub fn node(&self, node: &str) -> Option<&NodeState> {
        self.nodes.get(node)
    }

    pub fn list(&self, node: &str) -> Vec<String> {
        self.node(node).map(NodeState::list).unwrap_or_default()
    }

    pub fn read(&self, node: &str, file: &str) -> io::Result<Vec<u8>> {
        match self.node(node) {
            Some(n) => n.read(file),
            None => Err(NodeState::not_found(file)),
        }
    }

    pub fn apply(&mut self, node: &str, op: &DiskOp) -> io::Result<()> {
        self.node_mut(node).apply(op)?;
        let dir = match op {
            DiskOp::Sync { .. } => return Ok(()),
            DiskOp::Append { file, .. }
            | DiskOp::Truncate { file, .. }
            | DiskOp::WriteAtomic { file, .. }
            | DiskOp::Delete { file } => dir_of(file),
            DiskOp::DeleteDir { dir } => dir.as_str(),
        };
        self.bump(node, dir);
        Ok(())
    }

    /// Gives `node`'s directory `dir` a new version.
    fn bump(&mut self, node: &str, dir: &str) {
        self.clock += 1;
        let versions = self.dir_versions.entry(node.to_string()).or_default();
        match versions.get_mut(dir) {
            Some(v) => *v = self.clock,
            None => {
                versions.insert(dir.to_string(), self.clock);
            }
        }
    }

    /// The version of the contents of `node`'s directory `dir` (see `dir_versions`): equal
    /// versions mean equal contents. `0` for a directory nothing was ever written to.
    pub fn dir_version(&self, node: &str, dir: &str) -> u64 {
        self.dir_versions
            .get(node)
            .and_then(|v| v.get(dir))
            .copied()
            .unwrap_or(0)
    }

    pub fn power_fail<R: rand::Rng + ?Sized>(&mut self, node: &str, torn_tail: bool, rng: &mut R) {
        if let Some(n) = self.nodes.get_mut(node) {
            n.power_fail(torn_tail, rng);
            self.bump_all(node);
        }
    }

    /// Gives every directory `node` ever wrote a new version.
    fn bump_all(&mut self, node: &str) {
        let dirs: Vec<String> = self
            .dir_versions
            .get(node)
            .map(|v| v.keys().cloned().collect())
            .unwrap_or_default();
        for dir in dirs {
            self.bump(node, &dir);
        }
    }

    /// Make every file of the node durable (what a clean shutdown's final flush does).
    pub fn sync_all(&mut self, node: &str) {
        if let Some(n) = self.nodes.get_mut(node) {
            for f in n.files.values_mut() {
                f.durable = Some(f.current.clone());
            }
        }
    }

    /// Replace the node's disk by an empty one (pending faults go with the old disk).
    pub fn wipe(&mut self, node: &str) {
        self.nodes.remove(node);
        self.bump_all(node);
    }

    /// Replace any pending fault of the node; `ops == 0` clears it.
    pub fn inject_fault(&mut self, node: &str, kind: DiskFaultKind, ops: u32) {
        self.node_mut(node).fault = (ops > 0).then_some(PendingFault {
            kind,
            remaining: ops,
        });
    }

    pub fn snapshot(&self, node: &str) -> BTreeMap<String, (Vec<u8>, usize)> {
        self.node(node).map(NodeState::snapshot).unwrap_or_default()
    }

    pub fn unsynced_bytes(&self, node: &str) -> u64 {
        self.node(node).map_or(0, NodeState::unsynced_bytes)
    }

    /// Simulated latency of `op` in microseconds.
    pub fn latency_us(&self, op: &DiskOp) -> u64 {
        let c = &self.config;
        match op {
            DiskOp::Sync { .. } => c.sync_latency_us,
            DiskOp::WriteAtomic { .. } => c.write_latency_us + c.sync_latency_us,
            DiskOp::Append { .. }
            | DiskOp::Truncate { .. }
            | DiskOp::Delete { .. }
            | DiskOp::DeleteDir { .. } => c.write_latency_us,
        }
    }
}

fn lock(state: &Mutex<DiskState>) -> MutexGuard<'_, DiskState> {
    state.lock().unwrap_or_else(|e| e.into_inner())
}

/// The simulated disk plugin. Register with `runtime.add_simulator::<SimDisk>()`; inside the
/// simulation fetch it with `madsim::plugin::simulator::<SimDisk>()`.
#[derive(Debug, Clone, Default)]
pub struct SimDisk {
    state: Arc<Mutex<DiskState>>,
}

impl madsim::plugin::Simulator for SimDisk {
    fn new(
        _rand: &madsim::rand::GlobalRng,
        _time: &madsim::time::TimeHandle,
        _config: &madsim::Config,
    ) -> Self {
        SimDisk::default()
    }

    /// No-op. madsim calls this on every `kill`, which is a *process* crash: the OS page cache
    /// (our `current` bytes) survives it. Power failures and disk loss are explicit
    /// ([`SimDisk::power_fail`], [`SimDisk::wipe`]) and keyed by node name, not `NodeId`.
    fn reset_node(&self, _id: madsim::task::NodeId) {}
}

impl SimDisk {
    /// A [`Disk`] for the named node (e.g. `"broker-0"`). Cheap; handles share state.
    pub fn handle(&self, node: &str) -> NodeDisk {
        NodeDisk {
            state: self.state.clone(),
            node: node.to_string(),
        }
    }

    /// Set the per-operation latency.
    pub fn configure(&self, config: DiskConfig) {
        lock(&self.state).config = config;
    }

    pub fn config(&self) -> DiskConfig {
        lock(&self.state).config
    }

    /// Power failure on the node: every file's `current` becomes its durable bytes; files
    /// never synced vanish. With `torn_tail`, each file whose current bytes are an append
    /// extension of its durable bytes keeps a random prefix (0..=len bytes, drawn from `rng`
    /// in file-name order) of the unsynced tail: the torn last write.
    pub fn power_fail<R: rand::Rng + ?Sized>(&self, node: &str, torn_tail: bool, rng: &mut R) {
        lock(&self.state).power_fail(node, torn_tail, rng);
    }

    /// Flush every file of the node (a clean shutdown).
    pub fn sync_all(&self, node: &str) {
        lock(&self.state).sync_all(node);
    }

    /// Disk loss: the node's disk is replaced by an empty one (pending faults are dropped).
    pub fn wipe(&self, node: &str) {
        lock(&self.state).wipe(node);
    }

    /// The next `ops` `Append`/`Sync`/`WriteAtomic` operations on the node fail (`Eio`,
    /// `Full`, with no effect), or for `Corrupt` the next `ops` non-empty appends succeed with
    /// their middle byte XORed with 0xFF. Replaces any pending fault; `ops == 0` clears it.
    pub fn inject_fault(&self, node: &str, kind: DiskFaultKind, ops: u32) {
        lock(&self.state).inject_fault(node, kind, ops);
    }

    /// The node's pending fault, if any.
    pub fn pending_fault(&self, node: &str) -> Option<PendingFault> {
        lock(&self.state).node(node).and_then(|n| n.fault)
    }

    /// Simulated latency of `op` in microseconds.
    pub fn latency_us(&self, op: &DiskOp) -> u64 {
        lock(&self.state).latency_us(op)
    }

    /// Simulated latency of `op` in whole milliseconds, rounded up (so a non-zero latency is
    /// never 0 ms).
    pub fn latency_ms(&self, op: &DiskOp) -> u64 {
        self.latency_us(op).div_ceil(1000)
    }

    /// Simulated latency of `op`, for `madsim::time::sleep`.
    pub fn latency(&self, op: &DiskOp) -> Duration {
        Duration::from_micros(self.latency_us(op))
    }

    /// Per file of the node: (current bytes, durable length; 0 when never synced).
    pub fn snapshot(&self, node: &str) -> BTreeMap<String, (Vec<u8>, usize)> {
        lock(&self.state).snapshot(node)
    }

    /// The version of `node`'s directory `dir` (see [`DiskState::dir_version`]).
    pub fn dir_version(&self, node: &str, dir: &str) -> u64 {
        lock(&self.state).dir_version(node, dir)
    }

    /// Every file of `node`'s directory `dir` (`dir/...`) as a process reads it, with the
    /// directory's version, read under one lock.
    pub fn read_dir(&self, node: &str, dir: &str) -> (u64, BTreeMap<String, Vec<u8>>) {
        let state = lock(&self.state);
        let prefix = format!("{dir}/");
        let files = state
            .node(node)
            .map(|n| {
                n.files
                    .range(prefix.clone()..)
                    .take_while(|(name, _)| name.starts_with(&prefix))
                    .map(|(name, f)| (name.clone(), f.current.clone()))
                    .collect()
            })
            .unwrap_or_default();
        (state.dir_version(node, dir), files)
    }

    /// Bytes a power failure on the node could lose (see [`FileState::unsynced_bytes`]).
    pub fn unsynced_bytes(&self, node: &str) -> u64 {
        lock(&self.state).unsynced_bytes(node)
    }

    /// Names of every node that has a disk, sorted.
    pub fn nodes(&self) -> Vec<String> {
        lock(&self.state).nodes.keys().cloned().collect()
    }

    /// A copy of the whole state (for reports and tests).
    pub fn state(&self) -> DiskState {
        lock(&self.state).clone()
    }
}

/// One node's view of the [`SimDisk`], implementing the model's [`Disk`] trait.
#[derive(Debug, Clone)]
pub struct NodeDisk {
    state: Arc<Mutex<DiskState>>,
    node: String,
}

impl NodeDisk {
    pub fn node(&self) -> &str {
        &self.node
    }
}

impl Disk for NodeDisk {
    fn list(&self) -> Vec<String> {
        lock(&self.state).list(&self.node)
    }
    fn read(&self, file: &str) -> io::Result<Vec<u8>> {
        lock(&self.state).read(&self.node, file)
    }
    fn apply(&mut self, op: &DiskOp) -> io::Result<()> {
        lock(&self.state).apply(&self.node, op)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    fn append(file: &str, data: &[u8]) -> DiskOp {
        DiskOp::Append {
            file: file.into(),
            data: data.to_vec(),
        }
    }
    fn sync(file: &str) -> DiskOp {
        DiskOp::Sync { file: file.into() }
    }
    fn rng(seed: u64) -> ChaCha8Rng {
        ChaCha8Rng::seed_from_u64(seed)
    }

    // ---- plain per-file logic, no madsim ----

    #[test]
    fn disk_state_synced_survives_unsynced_lost() {
        let mut n = NodeState::default();
        n.apply(&append("a.log", b"hello")).unwrap();
        n.apply(&sync("a.log")).unwrap();
        n.apply(&append("a.log", b" world")).unwrap();
        n.apply(&append("b.log", b"never synced")).unwrap();
        assert_eq!(n.read("a.log").unwrap(), b"hello world");
        assert_eq!(n.unsynced_bytes(), 6 + 12);
        n.power_fail(false, &mut rng(1));
        assert_eq!(n.read("a.log").unwrap(), b"hello");
        assert!(n.read("b.log").is_err(), "never-synced file vanishes");
        assert_eq!(n.list(), vec!["a.log".to_string()]);
        assert_eq!(n.unsynced_bytes(), 0);
    }

    #[test]
    fn disk_state_torn_tail_is_prefix_and_varies() {
        let mut kept = std::collections::BTreeSet::new();
        for seed in 0..64 {
            let mut n = NodeState::default();
            n.apply(&append("a", b"base")).unwrap();
            n.apply(&sync("a")).unwrap();
            n.apply(&append("a", b"0123456789")).unwrap();
            n.apply(&append("new", b"xyz")).unwrap();
            n.power_fail(true, &mut rng(seed));
            let got = n.read("a").unwrap();
            assert!(
                b"base0123456789".starts_with(&got) && got.len() >= 4,
                "{got:?}"
            );
            assert_eq!(n.snapshot()["a"].1, 4, "durable length unchanged");
            assert!(n.read("new").is_err());
            kept.insert(got.len());
        }
        assert!(
            kept.len() > 3,
            "torn prefix length should vary with the rng: {kept:?}"
        );
    }

    #[test]
    fn disk_state_torn_tail_only_for_append_extensions() {
        let mut n = NodeState::default();
        n.apply(&append("a", b"abcdef")).unwrap();
        n.apply(&sync("a")).unwrap();
        n.apply(&DiskOp::Truncate {
            file: "a".into(),
            len: 2,
        })
        .unwrap();
        n.apply(&append("a", b"XYZXYZXYZ")).unwrap();
        n.power_fail(true, &mut rng(3));
        assert_eq!(n.read("a").unwrap(), b"abcdef");
    }

    #[test]
    fn disk_state_write_atomic_and_delete_durable() {
        let mut n = NodeState::default();
        n.apply(&DiskOp::WriteAtomic {
            file: "cp".into(),
            data: b"v1".to_vec(),
        })
        .unwrap();
        n.apply(&append("gone", b"x")).unwrap();
        n.apply(&sync("gone")).unwrap();
        n.apply(&DiskOp::Delete {
            file: "gone".into(),
        })
        .unwrap();
        n.power_fail(true, &mut rng(0));
        assert_eq!(n.read("cp").unwrap(), b"v1");
        assert!(n.read("gone").is_err());
    }

    #[test]
    fn disk_state_truncate_missing_and_beyond_end() {
        let mut n = NodeState::default();
        n.apply(&DiskOp::Truncate {
            file: "x".into(),
            len: 0,
        })
        .unwrap();
        n.apply(&sync("x")).unwrap();
        assert!(n.list().is_empty());
        n.apply(&append("x", b"ab")).unwrap();
        n.apply(&DiskOp::Truncate {
            file: "x".into(),
            len: 10,
        })
        .unwrap();
        assert_eq!(n.read("x").unwrap(), b"ab");
    }

    #[test]
    fn disk_state_matches_memdisk_without_faults() {
        use ksim_model::disk::MemDisk;
        let ops = vec![
            append("a", b"123"),
            sync("a"),
            append("a", b"45"),
            DiskOp::Truncate {
                file: "a".into(),
                len: 4,
            },
            DiskOp::WriteAtomic {
                file: "b".into(),
                data: b"cp".to_vec(),
            },
            append("c", b"z"),
            DiskOp::Delete { file: "c".into() },
            sync("missing"),
        ];
        let (mut m, mut n) = (MemDisk::default(), NodeState::default());
        for op in &ops {
            Disk::apply(&mut m, op).unwrap();
            Disk::apply(&mut n, op).unwrap();
        }
        assert_eq!(Disk::list(&m), Disk::list(&n));
        for f in Disk::list(&m) {
            assert_eq!(Disk::read(&m, &f).unwrap(), Disk::read(&n, &f).unwrap());
        }
    }

    #[test]
    fn disk_state_faults() {
        let mut s = DiskState::default();
        s.inject_fault("n", DiskFaultKind::Eio, 2);
        let e = s.apply("n", &append("a", b"x")).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::Other);
        assert_eq!(e.to_string(), "Input/output error (os error 5)");
        // Truncate and Delete are not affected and do not consume the fault.
        s.apply(
            "n",
            &DiskOp::Truncate {
                file: "a".into(),
                len: 0,
            },
        )
        .unwrap();
        assert!(s.apply("n", &sync("a")).is_err());
        s.apply("n", &append("a", b"ok")).unwrap();
        assert_eq!(
            s.read("n", "a").unwrap(),
            b"ok",
            "failed append had no effect"
        );

        s.inject_fault("n", DiskFaultKind::Full, 1);
        let e = s
            .apply(
                "n",
                &DiskOp::WriteAtomic {
                    file: "cp".into(),
                    data: vec![1],
                },
            )
            .unwrap_err();
        assert_eq!(e.to_string(), "No space left on device (os error 28)");
        assert!(s.read("n", "cp").is_err());
        s.apply(
            "n",
            &DiskOp::WriteAtomic {
                file: "cp".into(),
                data: vec![1],
            },
        )
        .unwrap();

        s.inject_fault("n", DiskFaultKind::Corrupt, 1);
        s.apply("n", &sync("a")).unwrap();
        s.apply("n", &append("c", b"")).unwrap();
        s.apply("n", &append("c", b"abcde")).unwrap();
        s.apply("n", &append("c", b"fg")).unwrap();
        assert_eq!(
            s.read("n", "c").unwrap(),
            [b'a', b'b', b'c' ^ 0xFF, b'd', b'e', b'f', b'g']
        );
        assert!(s.node("n").unwrap().fault.is_none());
    }

    #[test]
    fn disk_state_latency() {
        let mut s = DiskState::default();
        assert_eq!(s.latency_us(&sync("a")), 2000);
        assert_eq!(s.latency_us(&append("a", b"x")), 0);
        s.config = DiskConfig {
            sync_latency_us: 500,
            write_latency_us: 10,
        };
        assert_eq!(
            s.latency_us(&DiskOp::WriteAtomic {
                file: "a".into(),
                data: vec![]
            }),
            510
        );
    }

    // ---- inside a madsim runtime ----

    #[test]
    fn dir_versions_change_with_contents_and_never_repeat() {
        let mut d = DiskState::default();
        assert_eq!(d.dir_version("broker-0", "events-0"), 0);
        d.apply("broker-0", &append("events-0/0.log", b"abc"))
            .unwrap();
        let v1 = d.dir_version("broker-0", "events-0");
        assert!(v1 > 0);
        // A sync or another directory's write leaves the version alone.
        d.apply(
            "broker-0",
            &DiskOp::Sync {
                file: "events-0/0.log".into(),
            },
        )
        .unwrap();
        d.apply("broker-0", &append("events-1/0.log", b"x"))
            .unwrap();
        d.apply("broker-1", &append("events-0/0.log", b"x"))
            .unwrap();
        assert_eq!(d.dir_version("broker-0", "events-0"), v1);
        // Appends, truncations, power failures and wipes change it, to fresh values.
        let mut seen = vec![v1];
        let mut check = |d: &DiskState| {
            let v = d.dir_version("broker-0", "events-0");
            assert!(!seen.contains(&v), "{v} repeats {seen:?}");
            seen.push(v);
        };
        d.apply("broker-0", &append("events-0/0.log", b"def"))
            .unwrap();
        check(&d);
        d.apply(
            "broker-0",
            &DiskOp::Truncate {
                file: "events-0/0.log".into(),
                len: 3,
            },
        )
        .unwrap();
        check(&d);
        d.power_fail("broker-0", false, &mut ChaCha8Rng::seed_from_u64(1));
        check(&d);
        d.wipe("broker-0");
        check(&d);
        // A failed operation changes nothing.
        d.inject_fault("broker-0", DiskFaultKind::Eio, 1);
        let before = d.dir_version("broker-0", "events-0");
        assert!(d
            .apply("broker-0", &append("events-0/0.log", b"z"))
            .is_err());
        assert_eq!(d.dir_version("broker-0", "events-0"), before);
    }

    fn in_sim<F: std::future::Future<Output = ()>>(seed: u64, f: impl FnOnce() -> F) {
        let rt = madsim::runtime::Runtime::with_seed_and_config(seed, madsim::Config::default());
        rt.add_simulator::<SimDisk>();
        rt.block_on(f());
    }

    #[test]
    fn sim_disk_power_fail_and_torn_tail() {
        in_sim(1, || async {
            let disk = madsim::plugin::simulator::<SimDisk>();
            let mut d = disk.handle("broker-0");
            d.apply(&append("p/0.log", b"durable")).unwrap();
            d.apply(&sync("p/0.log")).unwrap();
            d.apply(&append("p/0.log", b"-volatile-tail")).unwrap();
            d.apply(&append("p/1.log", b"unsynced")).unwrap();
            let other = disk.handle("broker-1");
            assert!(other.list().is_empty(), "disks are per node name");
            assert_eq!(disk.unsynced_bytes("broker-0"), 14 + 8);
            let snap = disk.snapshot("broker-0");
            assert_eq!(snap["p/0.log"], (b"durable-volatile-tail".to_vec(), 7));
            assert_eq!(snap["p/1.log"].1, 0);

            disk.power_fail("broker-0", true, &mut rng(7));
            let got = d.read("p/0.log").unwrap();
            assert!(
                b"durable-volatile-tail".starts_with(&got) && got.len() >= 7,
                "{got:?}"
            );
            assert!(d.read("p/1.log").is_err());

            d.apply(&append("p/0.log", b"more")).unwrap();
            disk.power_fail("broker-0", false, &mut rng(7));
            assert_eq!(d.read("p/0.log").unwrap(), b"durable");
        });
    }

    #[test]
    fn sim_disk_kill_keeps_page_cache() {
        in_sim(2, || async {
            let handle = madsim::runtime::Handle::current();
            let node = handle
                .create_node()
                .name("broker-0")
                .ip([10, 0, 0, 1].into())
                .build();
            let (tx, rx) = std::sync::mpsc::channel::<()>();
            node.spawn(async move {
                let mut d = madsim::plugin::simulator::<SimDisk>().handle("broker-0");
                d.apply(&append("a", b"unsynced")).unwrap();
                tx.send(()).unwrap();
                std::future::pending::<()>().await;
            });
            madsim::time::sleep(Duration::from_millis(10)).await;
            rx.try_recv().unwrap();
            handle.kill(node.id());
            madsim::time::sleep(Duration::from_millis(10)).await;
            let disk = madsim::plugin::simulator::<SimDisk>();
            assert_eq!(disk.handle("broker-0").read("a").unwrap(), b"unsynced");
            assert_eq!(disk.unsynced_bytes("broker-0"), 8);
        });
    }

    #[test]
    fn sim_disk_wipe_and_write_atomic() {
        in_sim(3, || async {
            let disk = madsim::plugin::simulator::<SimDisk>();
            let mut d = disk.handle("broker-2");
            d.apply(&DiskOp::WriteAtomic {
                file: "recovery-point-offset-checkpoint".into(),
                data: b"0\n1\n".to_vec(),
            })
            .unwrap();
            disk.power_fail("broker-2", false, &mut rng(0));
            assert_eq!(
                d.read("recovery-point-offset-checkpoint").unwrap(),
                b"0\n1\n"
            );
            disk.inject_fault("broker-2", DiskFaultKind::Eio, 5);
            disk.wipe("broker-2");
            assert!(d.list().is_empty());
            assert!(disk.snapshot("broker-2").is_empty());
            assert_eq!(disk.pending_fault("broker-2"), None);
            d.apply(&append("a", b"fresh")).unwrap();
            assert_eq!(d.list(), vec!["a".to_string()]);
        });
    }

    #[test]
    fn sim_disk_fault_injection() {
        in_sim(4, || async {
            let disk = madsim::plugin::simulator::<SimDisk>();
            let mut d = disk.handle("broker-0");
            disk.inject_fault("broker-0", DiskFaultKind::Full, 1);
            let e = d.apply(&append("a", b"x")).unwrap_err();
            assert_eq!(e.to_string(), "No space left on device (os error 28)");
            d.apply(&append("a", b"x")).unwrap();
            disk.inject_fault("broker-0", DiskFaultKind::Eio, 1);
            let e = d.apply(&sync("a")).unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::Other);
            assert_eq!(e.to_string(), "Input/output error (os error 5)");
            assert_eq!(
                disk.snapshot("broker-0")["a"].1,
                0,
                "failed sync made nothing durable"
            );
            disk.inject_fault("broker-0", DiskFaultKind::Corrupt, 1);
            d.apply(&append("a", b"abc")).unwrap();
            assert_eq!(d.read("a").unwrap(), [b'x', b'a', b'b' ^ 0xFF, b'c']);
            disk.configure(DiskConfig {
                sync_latency_us: 1500,
                write_latency_us: 0,
            });
            assert_eq!(disk.latency_ms(&sync("a")), 2);
            assert_eq!(disk.latency(&sync("a")), Duration::from_micros(1500));
            assert_eq!(disk.latency_ms(&append("a", b"")), 0);
        });
    }
}
