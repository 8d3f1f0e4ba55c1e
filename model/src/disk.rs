//! The `Disk` trait: what a node's data directory can do.
//!
//! Semantics follow a POSIX file system with a page cache: writes are visible to the process at
//! once but durable only after `sync`. The simulator's implementation (`sim/src/disk.rs`) keeps
//! durable and volatile bytes apart so that a power failure can lose (and tear) the unsynced
//! tail; [`MemDisk`] here is a plain in-memory implementation for unit tests, and [`FsDisk`] the
//! real file system, so that the same broker can run outside the simulator.

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
            DiskOp::DeleteDir { dir } => {
                let prefix = format!("{dir}/");
                self.files.retain(|f, _| !f.starts_with(&prefix));
            }
        }
        Ok(())
    }
}

/// The real file system: a node's data directory on the host, with the same semantics the
/// simulated disk models (a write is in the page cache until `Sync` fsyncs it; `WriteAtomic`
/// writes a temporary file, fsyncs it and renames it over the target, as Kafka writes its
/// checkpoints). Lets the same broker run outside the simulator.
#[derive(Debug, Clone)]
pub struct FsDisk {
    root: std::path::PathBuf,
}

impl FsDisk {
    /// A disk rooted at `root` (created if missing).
    pub fn open(root: impl Into<std::path::PathBuf>) -> io::Result<FsDisk> {
        let root = root.into();
        std::fs::create_dir_all(&root)?;
        Ok(FsDisk { root })
    }

    fn path(&self, file: &str) -> io::Result<std::path::PathBuf> {
        if file.is_empty()
            || file.starts_with('/')
            || file.split('/').any(|c| c == ".." || c.is_empty())
        {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("not a relative file name: {file:?}"),
            ));
        }
        Ok(self.root.join(file))
    }

    fn walk(&self, dir: &std::path::Path, prefix: &str, out: &mut Vec<String>) -> io::Result<()> {
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let rel = if prefix.is_empty() {
                name
            } else {
                format!("{prefix}/{name}")
            };
            if entry.file_type()?.is_dir() {
                self.walk(&entry.path(), &rel, out)?;
            } else if !rel.ends_with(".tmp") {
                out.push(rel);
            }
        }
        Ok(())
    }
}

impl Disk for FsDisk {
    fn list(&self) -> Vec<String> {
        let mut out = Vec::new();
        // An unreadable directory lists as empty; reads then report the error.
        let _ = self.walk(&self.root, "", &mut out);
        out.sort();
        out
    }

    fn read(&self, file: &str) -> io::Result<Vec<u8>> {
        std::fs::read(self.path(file)?)
    }

    fn apply(&mut self, op: &DiskOp) -> io::Result<()> {
        use std::io::Write;
        match op {
            DiskOp::Append { file, data } => {
                let path = self.path(file)?;
                if let Some(parent) = path.parent() {
                    std::fs::create_dir_all(parent)?;
                }
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)?
                    .write_all(data)
            }
            DiskOp::Truncate { file, len } => match std::fs::OpenOptions::new()
                .write(true)
                .open(self.path(file)?)
            {
                Ok(f) if f.metadata()?.len() > *len => f.set_len(*len),
                Ok(_) => Ok(()),
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
                Err(e) => Err(e),
            },
            DiskOp::Sync { file } => match std::fs::File::open(self.path(file)?) {
                Ok(f) => f.sync_all(),
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
                Err(e) => Err(e),
            },
            DiskOp::WriteAtomic { file, data } => {
                let path = self.path(file)?;
                if let Some(parent) = path.parent() {
                    std::fs::create_dir_all(parent)?;
                }
                let tmp = path.with_extension("tmp");
                let mut f = std::fs::File::create(&tmp)?;
                f.write_all(data)?;
                f.sync_all()?;
                std::fs::rename(&tmp, &path)
            }
            DiskOp::Delete { file } => match std::fs::remove_file(self.path(file)?) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
                _ => Ok(()),
            },
            DiskOp::DeleteDir { dir } => match std::fs::remove_dir_all(self.path(dir)?) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
                _ => Ok(()),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The real file system behaves like `MemDisk` for the same operations.
    #[test]
    fn fs_disk_matches_mem_disk() {
        let root = std::env::temp_dir().join(format!("ksim-fsdisk-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let mut fs = FsDisk::open(&root).unwrap();
        let mut mem = MemDisk::default();
        let ops = [
            DiskOp::Append {
                file: "t-0/00000000000000000000.log".into(),
                data: b"hello world".to_vec(),
            },
            DiskOp::Sync {
                file: "t-0/00000000000000000000.log".into(),
            },
            DiskOp::Truncate {
                file: "t-0/00000000000000000000.log".into(),
                len: 5,
            },
            DiskOp::Append {
                file: "t-0/00000000000000000000.log".into(),
                data: b"!".to_vec(),
            },
            DiskOp::WriteAtomic {
                file: "replication-offset-checkpoint".into(),
                data: b"0\n0\n".to_vec(),
            },
            DiskOp::WriteAtomic {
                file: "replication-offset-checkpoint".into(),
                data: b"0\n1\nt 0 5\n".to_vec(),
            },
            DiskOp::Append {
                file: "gone".into(),
                data: b"x".to_vec(),
            },
            DiskOp::Delete {
                file: "gone".into(),
            },
            DiskOp::Delete {
                file: "never-existed".into(),
            },
        ];
        for op in &ops {
            fs.apply(op).unwrap();
            mem.apply(op).unwrap();
        }
        assert_eq!(fs.list(), mem.list());
        for f in mem.list() {
            assert_eq!(fs.read(&f).unwrap(), mem.read(&f).unwrap(), "{f}");
        }
        assert!(fs.read("../etc/passwd").is_err());
        std::fs::remove_dir_all(&root).unwrap();
    }
}
