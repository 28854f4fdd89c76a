//! The file operations our Raft storage needs, behind a trait so that the same storage code runs
//! on the real file system (`FsDisk`) and on a simulated disk (`SimDisk`) where a crash drops every
//! byte that was not fsynced — and may tear the last unsynced write — which is how the simulation
//! proves that an acknowledged entry was really on disk.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;

/// Append-only files plus whole-file atomic replacement: all the storage layer uses.
pub trait Disk: Send + Sync + 'static {
    /// The whole content of `path`, or `None` when it does not exist.
    fn read(&self, path: &Path) -> io::Result<Option<Vec<u8>>>;
    /// Appends to `path` (created if missing). Not durable until [`Disk::sync`].
    fn append(&self, path: &Path, data: &[u8]) -> io::Result<()>;
    /// Makes everything appended to `path` so far durable (fdatasync).
    fn sync(&self, path: &Path) -> io::Result<()>;
    /// Cuts `path` to `len` bytes, durably.
    fn truncate(&self, path: &Path, len: u64) -> io::Result<()>;
    /// Replaces `path` with `data` atomically and durably: tmp file, fsync, rename, dir fsync.
    fn write_atomic(&self, path: &Path, data: &[u8]) -> io::Result<()>;
    /// Removes `path` (no error when missing).
    fn remove(&self, path: &Path) -> io::Result<()>;
    /// Creates a directory and its parents.
    fn create_dir_all(&self, path: &Path) -> io::Result<()>;
    /// Whether `sync` should run on a blocking thread (real disks) or inline (simulation, where
    /// a blocking pool would make the schedule non-deterministic).
    fn sync_is_blocking(&self) -> bool;
    /// How many `sync` calls were made (monitoring and the group-commit figure in the README).
    fn syncs(&self) -> u64;
}

/// The real file system. Open append handles are cached per path.
#[derive(Default)]
pub struct FsDisk {
    files: Mutex<HashMap<PathBuf, Arc<File>>>,
    syncs: AtomicU64,
}

impl FsDisk {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    fn handle(&self, path: &Path) -> io::Result<Arc<File>> {
        let mut files = self.files.lock();
        if let Some(f) = files.get(path) {
            return Ok(f.clone());
        }
        let f = Arc::new(OpenOptions::new().create(true).append(true).open(path)?);
        files.insert(path.to_path_buf(), f.clone());
        Ok(f)
    }
}

fn sync_dir(path: &Path) -> io::Result<()> {
    if let Some(dir) = path.parent() {
        File::open(dir)?.sync_all()?;
    }
    Ok(())
}

impl Disk for FsDisk {
    fn read(&self, path: &Path) -> io::Result<Option<Vec<u8>>> {
        match File::open(path) {
            Ok(mut f) => {
                let mut buf = Vec::new();
                f.read_to_end(&mut buf)?;
                Ok(Some(buf))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn append(&self, path: &Path, data: &[u8]) -> io::Result<()> {
        let f = self.handle(path)?;
        (&*f).write_all(data)
    }

    fn sync(&self, path: &Path) -> io::Result<()> {
        self.syncs.fetch_add(1, Ordering::Relaxed);
        self.handle(path)?.sync_data()
    }

    fn truncate(&self, path: &Path, len: u64) -> io::Result<()> {
        let f = self.handle(path)?;
        f.set_len(len)?;
        f.sync_all()
    }

    fn write_atomic(&self, path: &Path, data: &[u8]) -> io::Result<()> {
        let tmp = path.with_extension("tmp");
        {
            let mut f = File::create(&tmp)?;
            f.write_all(data)?;
            f.sync_all()?;
        }
        std::fs::rename(&tmp, path)?;
        self.files.lock().remove(path);
        sync_dir(path)
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        self.files.lock().remove(path);
        match std::fs::remove_file(path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        std::fs::create_dir_all(path)?;
        sync_dir(path)
    }

    fn sync_is_blocking(&self) -> bool {
        true
    }

    fn syncs(&self) -> u64 {
        self.syncs.load(Ordering::Relaxed)
    }
}

#[derive(Default, Clone)]
struct SimFile {
    durable: Vec<u8>,
    pending: Vec<u8>,
}

/// An in-memory disk with crash semantics: [`SimDisk::crash`] keeps only fsynced bytes, plus
/// (when `tear` is set) a prefix of the unsynced tail, as a power cut can leave.
#[derive(Default)]
pub struct SimDisk {
    files: Mutex<HashMap<PathBuf, SimFile>>,
    syncs: AtomicU64,
}

impl SimDisk {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Drops unsynced data. `tear(len)` picks how many of `len` unsynced bytes survive.
    pub fn crash(&self, mut tear: impl FnMut(usize) -> usize) {
        for f in self.files.lock().values_mut() {
            let keep = tear(f.pending.len()).min(f.pending.len());
            let kept: Vec<u8> = f.pending[..keep].to_vec();
            f.durable.extend_from_slice(&kept);
            f.pending.clear();
        }
    }

    /// Overwrites durable bytes (bit rot / a bad sector, for corruption tests).
    pub fn corrupt(&self, path: &Path, offset: usize, bytes: &[u8]) -> bool {
        let mut files = self.files.lock();
        let Some(f) = files.get_mut(path) else {
            return false;
        };
        if offset + bytes.len() > f.durable.len() {
            return false;
        }
        f.durable[offset..offset + bytes.len()].copy_from_slice(bytes);
        true
    }
}

impl Disk for SimDisk {
    fn read(&self, path: &Path) -> io::Result<Option<Vec<u8>>> {
        Ok(self.files.lock().get(path).map(|f| {
            let mut all = f.durable.clone();
            all.extend_from_slice(&f.pending);
            all
        }))
    }

    fn append(&self, path: &Path, data: &[u8]) -> io::Result<()> {
        let mut files = self.files.lock();
        files
            .entry(path.to_path_buf())
            .or_default()
            .pending
            .extend_from_slice(data);
        Ok(())
    }

    fn sync(&self, path: &Path) -> io::Result<()> {
        self.syncs.fetch_add(1, Ordering::Relaxed);
        if let Some(f) = self.files.lock().get_mut(path) {
            let pending = std::mem::take(&mut f.pending);
            f.durable.extend_from_slice(&pending);
        }
        Ok(())
    }

    fn truncate(&self, path: &Path, len: u64) -> io::Result<()> {
        let mut files = self.files.lock();
        let f = files.entry(path.to_path_buf()).or_default();
        let mut all = std::mem::take(&mut f.durable);
        all.append(&mut f.pending);
        all.truncate(len as usize);
        f.durable = all;
        Ok(())
    }

    fn write_atomic(&self, path: &Path, data: &[u8]) -> io::Result<()> {
        self.files.lock().insert(
            path.to_path_buf(),
            SimFile {
                durable: data.to_vec(),
                pending: Vec::new(),
            },
        );
        Ok(())
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        self.files.lock().remove(path);
        Ok(())
    }

    fn create_dir_all(&self, _path: &Path) -> io::Result<()> {
        Ok(())
    }

    fn sync_is_blocking(&self) -> bool {
        false
    }

    fn syncs(&self) -> u64 {
        self.syncs.load(Ordering::Relaxed)
    }
}
