//! The `Disk` trait: what a node's data directory can do.
//!
//! Semantics follow a POSIX file system with a page cache: writes are visible to the process at
//! once but durable only after `sync`. The simulator's implementation (`sim/src/disk.rs`) keeps
//! durable and volatile bytes apart so that a power failure can lose (and tear) the unsynced
//! tail; [`MemDisk`] here is a plain in-memory implementation for unit tests.

use crate::effects::DiskOp;
use std::collections::BTreeMap;
use std::io;

/// A node's data directory. File names are relative paths with `/` separators.
pub trait Disk {
    /// Every file, sorted by name.
    fn list(&self) -> Vec<String>;
    /// The file's current contents (what the process would read: durable plus page cache).
    fn read(&self, file: &str) -> io::Result<Vec<u8>>;
    /// Apply one operation.
    fn apply(&mut self, op: &DiskOp) -> io::Result<()>;
}

/// In-memory disk with no failure modes, for unit tests of the model.
#[derive(Debug, Default, Clone)]
pub struct MemDisk {
    pub files: BTreeMap<String, Vec<u8>>,
}

impl Disk for MemDisk {
    fn list(&self) -> Vec<String> {
        self.files.keys().cloned().collect()
    }
    fn read(&self, file: &str) -> io::Result<Vec<u8>> {
        self.files
            .get(file)
            .cloned()
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, file.to_string()))
    }
    fn apply(&mut self, op: &DiskOp) -> io::Result<()> {
        match op {
            DiskOp::Append { file, data } => self
                .files
                .entry(file.clone())
                .or_default()
                .extend_from_slice(data),
            DiskOp::Truncate { file, len } => {
                if let Some(f) = self.files.get_mut(file) {
                    f.truncate(*len as usize);
                }
            }
            DiskOp::Sync { .. } => {}
            DiskOp::WriteAtomic { file, data } => {
                self.files.insert(file.clone(), data.clone());
            }
            DiskOp::Delete { file } => {
                self.files.remove(file);
            }
        }
        Ok(())
    }
}
