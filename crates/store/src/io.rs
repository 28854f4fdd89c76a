//! File I/O abstraction for the FileStore: `StoreIo`/`StoreFile`, `RealIo` (std::fs) and
//! `SimIo` (in-memory files that remember what was fsynced, for power-cut tests).

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;

/// An open file. Offsets are absolute; there is no cursor.
pub trait StoreFile: Send + Sync {
    /// Fills `buf` from `off`; errors (UnexpectedEof) if the file is shorter.
    fn read_at(&self, buf: &mut [u8], off: u64) -> io::Result<()>;
    fn write_at(&self, data: &[u8], off: u64) -> io::Result<()>;
    fn len(&self) -> io::Result<u64>;
    fn is_empty(&self) -> io::Result<bool> {
        Ok(self.len()? == 0)
    }
    fn truncate(&self, len: u64) -> io::Result<()>;
    /// fsync.
    fn sync(&self) -> io::Result<()>;
    /// Starts writing dirty data back without waiting, so that `sync` calls on several
    /// files that follow overlap their disk writes instead of queueing them one by one.
    fn start_writeback(&self) {}
    /// A value that changes whenever the file's contents change (its modification time),
    /// so a saved index can tell it no longer describes the file. 0 = unknown.
    fn stamp(&self) -> io::Result<u64> {
        Ok(0)
    }
}

/// Directory-level operations plus opening files.
pub trait StoreIo: Send + Sync {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()>;
    /// Opens (creating if `create`) for read and write.
    fn open(&self, path: &Path, create: bool) -> io::Result<Arc<dyn StoreFile>>;
    /// File names (not paths) in `dir`.
    fn list(&self, dir: &Path) -> io::Result<Vec<String>>;
    fn remove(&self, path: &Path) -> io::Result<()>;
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    /// Makes renames/creations/removals in `dir` durable.
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;
    fn remove_dir_all(&self, dir: &Path) -> io::Result<()>;
}

/// The real file system.
#[derive(Default, Clone, Copy, Debug)]
pub struct RealIo;

struct RealFile(std::fs::File);

impl StoreFile for RealFile {
    fn read_at(&self, buf: &mut [u8], off: u64) -> io::Result<()> {
        #[cfg(unix)]
        {
            use std::os::unix::fs::FileExt;
            self.0.read_exact_at(buf, off)
        }
        #[cfg(windows)]
        {
            use std::os::windows::fs::FileExt;
            let mut done = 0;
            while done < buf.len() {
                let n = self.0.seek_read(&mut buf[done..], off + done as u64)?;
                if n == 0 {
                    return Err(io::ErrorKind::UnexpectedEof.into());
                }
                done += n;
            }
            Ok(())
        }
    }
    fn write_at(&self, data: &[u8], off: u64) -> io::Result<()> {
        #[cfg(unix)]
        {
            use std::os::unix::fs::FileExt;
            self.0.write_all_at(data, off)
        }
        #[cfg(windows)]
        {
            use std::os::windows::fs::FileExt;
            let mut done = 0;
            while done < data.len() {
                done += self.0.seek_write(&data[done..], off + done as u64)?;
            }
            Ok(())
        }
    }
    fn len(&self) -> io::Result<u64> {
        Ok(self.0.metadata()?.len())
    }
    fn truncate(&self, len: u64) -> io::Result<()> {
        self.0.set_len(len)
    }
    fn sync(&self) -> io::Result<()> {
        self.0.sync_data()
    }
    #[cfg(target_os = "linux")]
    fn start_writeback(&self) {
        use std::os::fd::AsRawFd;
        // SAFETY: sync_file_range on a descriptor we own; it only schedules writeback and
        // any error just means the later fsync does all the work.
        unsafe {
            libc::sync_file_range(self.0.as_raw_fd(), 0, 0, libc::SYNC_FILE_RANGE_WRITE);
        }
    }
    fn stamp(&self) -> io::Result<u64> {
        let t = self.0.metadata()?.modified()?;
        let d = t.duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        Ok(d.as_nanos() as u64)
    }
}

impl StoreIo for RealIo {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        std::fs::create_dir_all(dir)
    }
    fn open(&self, path: &Path, create: bool) -> io::Result<Arc<dyn StoreFile>> {
        let f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(create)
            .truncate(false)
            .open(path)?;
        Ok(Arc::new(RealFile(f)))
    }
    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(dir)? {
            let e = e?;
            if let Some(n) = e.file_name().to_str() {
                out.push(n.to_string());
            }
        }
        Ok(out)
    }
    fn remove(&self, path: &Path) -> io::Result<()> {
        std::fs::remove_file(path)
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        std::fs::rename(from, to)
    }
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        #[cfg(unix)]
        {
            std::fs::File::open(dir)?.sync_all()
        }
        #[cfg(not(unix))]
        {
            let _ = dir;
            Ok(())
        }
    }
    fn remove_dir_all(&self, dir: &Path) -> io::Result<()> {
        match std::fs::remove_dir_all(dir) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            r => r,
        }
    }
}

#[derive(Default)]
struct SimData {
    data: Vec<u8>,
    synced: Vec<u8>,
    /// Modification stamp: a fresh value from `SimInner::stamps` on every change.
    stamp: u64,
}

/// In-memory file system. Each file remembers its contents as of its last fsync;
/// [`SimIo::power_cut`] rolls every file back to that and invalidates all open handles.
/// Directory operations (create, rename, remove) are treated as immediately durable.
#[derive(Default, Clone)]
pub struct SimIo {
    inner: Arc<SimInner>,
}

#[derive(Default)]
struct SimInner {
    files: Mutex<HashMap<PathBuf, Arc<Mutex<SimData>>>>,
    epoch: AtomicU64,
    /// Armed by [`SimIo::crash_after`]: (changes left, seed of the torn cut).
    crash: Mutex<Option<(u64, u64)>>,
    /// File fsyncs and directory syncs done so far.
    fsyncs: AtomicU64,
    /// Source of modification stamps.
    stamps: AtomicU64,
}

impl SimInner {
    fn next_stamp(&self) -> u64 {
        self.stamps.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Counts one state-changing operation; when an armed crash is due, the power is cut
    /// (torn) before the operation happens and it fails like every later one on old handles.
    fn change(&self) -> io::Result<()> {
        let due = {
            let mut c = self.crash.lock();
            match c.as_mut() {
                Some((0, seed)) => {
                    let seed = *seed;
                    *c = None;
                    Some(seed)
                }
                Some((n, _)) => {
                    *n -= 1;
                    None
                }
                None => None,
            }
        };
        match due {
            Some(seed) => {
                self.cut(Some(seed));
                Err(io::Error::other("simulated power cut"))
            }
            None => Ok(()),
        }
    }

    /// Rolls files back to their synced contents; with a seed, each file keeps a random
    /// prefix of what was written since (the disk wrote some sectors, in order, then died).
    fn cut(&self, torn: Option<u64>) {
        // A cut disarms a pending crash: the power is already off.
        *self.crash.lock() = None;
        self.epoch.fetch_add(1, Ordering::SeqCst);
        let mut rng = torn.unwrap_or(0) | 1;
        let mut files = self.files.lock();
        let mut names: Vec<PathBuf> = files.keys().cloned().collect();
        names.sort();
        for name in names {
            let Some(v) = files.get_mut(&name) else {
                continue;
            };
            let (data, synced) = {
                let d = v.lock();
                (d.data.clone(), d.synced.clone())
            };
            let kept = match torn {
                None => synced,
                Some(_) => {
                    rng ^= rng << 13;
                    rng ^= rng >> 7;
                    rng ^= rng << 17;
                    let upto = data.len().max(synced.len());
                    let c = (rng % (upto as u64 + 1)) as usize;
                    let mut kept = data[..c.min(data.len())].to_vec();
                    if synced.len() > kept.len() {
                        let from = kept.len();
                        kept.extend_from_slice(&synced[from..]);
                    }
                    kept
                }
            };
            *v = Arc::new(Mutex::new(SimData {
                data: kept.clone(),
                synced: kept,
                stamp: self.next_stamp(),
            }));
        }
    }
}

struct SimFile {
    data: Arc<Mutex<SimData>>,
    epoch: u64,
    io: Arc<SimInner>,
}

impl SimFile {
    fn live(&self) -> io::Result<()> {
        if self.io.epoch.load(Ordering::SeqCst) != self.epoch {
            return Err(io::Error::other("simulated power cut: stale handle"));
        }
        Ok(())
    }
}

impl StoreFile for SimFile {
    fn read_at(&self, buf: &mut [u8], off: u64) -> io::Result<()> {
        self.live()?;
        let d = self.data.lock();
        let off = off as usize;
        let end = off
            .checked_add(buf.len())
            .ok_or(io::ErrorKind::InvalidInput)?;
        if end > d.data.len() {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        buf.copy_from_slice(&d.data[off..end]);
        Ok(())
    }
    fn write_at(&self, data: &[u8], off: u64) -> io::Result<()> {
        self.live()?;
        self.io.change()?;
        let mut d = self.data.lock();
        let off = off as usize;
        let end = off + data.len();
        if d.data.len() < end {
            d.data.resize(end, 0);
        }
        d.data[off..end].copy_from_slice(data);
        d.stamp = self.io.next_stamp();
        Ok(())
    }
    fn len(&self) -> io::Result<u64> {
        self.live()?;
        Ok(self.data.lock().data.len() as u64)
    }
    fn truncate(&self, len: u64) -> io::Result<()> {
        self.live()?;
        self.io.change()?;
        let mut d = self.data.lock();
        d.data.resize(len as usize, 0);
        d.stamp = self.io.next_stamp();
        Ok(())
    }
    fn sync(&self) -> io::Result<()> {
        self.live()?;
        self.io.change()?;
        self.io.fsyncs.fetch_add(1, Ordering::Relaxed);
        let mut d = self.data.lock();
        d.synced = d.data.clone();
        Ok(())
    }
    fn stamp(&self) -> io::Result<u64> {
        self.live()?;
        Ok(self.data.lock().stamp)
    }
}

impl SimIo {
    pub fn new() -> Self {
        Self::default()
    }

    /// Discards everything written after each file's last fsync and invalidates every open
    /// handle (a store still holding them gets errors). Reopen the store on the same `SimIo`.
    pub fn power_cut(&self) {
        self.inner.cut(None);
    }

    /// Like [`SimIo::power_cut`], but each file keeps a random (by `seed`) prefix of the
    /// bytes written since its last fsync, as a disk that lost power mid-flush would.
    pub fn power_cut_torn(&self, seed: u64) {
        self.inner.cut(Some(seed));
    }

    /// Arms a torn power cut (see [`SimIo::power_cut_torn`]) just before the `n`th next
    /// state-changing operation (write, truncate, fsync, rename, remove); that operation
    /// and everything after it on existing handles fail.
    pub fn crash_after(&self, n: u64, seed: u64) {
        *self.inner.crash.lock() = Some((n, seed));
    }

    /// Whether an armed crash has happened yet.
    pub fn crash_pending(&self) -> bool {
        self.inner.crash.lock().is_some()
    }

    /// fsyncs (files and directories) done so far.
    pub fn fsyncs(&self) -> u64 {
        self.inner.fsyncs.load(Ordering::Relaxed)
    }

    /// Test helper: a copy of a file's current contents.
    pub fn contents(&self, path: &Path) -> Option<Vec<u8>> {
        self.inner
            .files
            .lock()
            .get(path)
            .map(|f| f.lock().data.clone())
    }

    /// Test helper: an independent copy of every file as it is now (contents and
    /// modification stamps), like copying a stopped server's store directory.
    pub fn deep_copy(&self) -> SimIo {
        let copy = SimIo::new();
        let stamps = self.inner.stamps.load(Ordering::Relaxed);
        copy.inner.stamps.store(stamps, Ordering::Relaxed);
        let mut to = copy.inner.files.lock();
        for (path, f) in self.inner.files.lock().iter() {
            let d = f.lock();
            let data = SimData {
                data: d.data.clone(),
                synced: d.synced.clone(),
                stamp: d.stamp,
            };
            to.insert(path.clone(), Arc::new(Mutex::new(data)));
        }
        drop(to);
        copy
    }

    /// Test helper: replaces a file's contents (current and synced).
    pub fn set_contents(&self, path: &Path, data: Vec<u8>) {
        self.inner.files.lock().insert(
            path.to_path_buf(),
            Arc::new(Mutex::new(SimData {
                synced: data.clone(),
                data,
                stamp: self.inner.next_stamp(),
            })),
        );
    }
}

impl StoreIo for SimIo {
    fn create_dir_all(&self, _dir: &Path) -> io::Result<()> {
        Ok(())
    }
    fn open(&self, path: &Path, create: bool) -> io::Result<Arc<dyn StoreFile>> {
        let mut files = self.inner.files.lock();
        let data = match files.get(path) {
            Some(d) => d.clone(),
            None if create => {
                let d = Arc::new(Mutex::new(SimData::default()));
                files.insert(path.to_path_buf(), d.clone());
                d
            }
            None => return Err(io::ErrorKind::NotFound.into()),
        };
        Ok(Arc::new(SimFile {
            data,
            epoch: self.inner.epoch.load(Ordering::SeqCst),
            io: self.inner.clone(),
        }))
    }
    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        let files = self.inner.files.lock();
        Ok(files
            .keys()
            .filter(|p| p.parent() == Some(dir))
            .filter_map(|p| p.file_name().and_then(|n| n.to_str()).map(String::from))
            .collect())
    }
    fn remove(&self, path: &Path) -> io::Result<()> {
        self.inner.change()?;
        match self.inner.files.lock().remove(path) {
            Some(_) => Ok(()),
            None => Err(io::ErrorKind::NotFound.into()),
        }
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.inner.change()?;
        let mut files = self.inner.files.lock();
        let d = files.remove(from).ok_or(io::ErrorKind::NotFound)?;
        files.insert(to.to_path_buf(), d);
        Ok(())
    }
    fn sync_dir(&self, _dir: &Path) -> io::Result<()> {
        self.inner.change()?;
        self.inner.fsyncs.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
    fn remove_dir_all(&self, dir: &Path) -> io::Result<()> {
        self.inner.files.lock().retain(|p, _| !p.starts_with(dir));
        Ok(())
    }
}

/// Real files opened read-only: every change is refused, so a scan through it
/// (`check_store`) can never alter a store it inspects.
#[derive(Default, Clone, Copy, Debug)]
pub struct ReadOnlyIo;

struct ReadOnlyFile(std::fs::File);

fn read_only<T>() -> io::Result<T> {
    Err(io::Error::new(
        io::ErrorKind::PermissionDenied,
        "read-only store check",
    ))
}

impl StoreFile for ReadOnlyFile {
    fn read_at(&self, buf: &mut [u8], off: u64) -> io::Result<()> {
        use std::os::unix::fs::FileExt;
        self.0.read_exact_at(buf, off)
    }
    fn write_at(&self, _data: &[u8], _off: u64) -> io::Result<()> {
        read_only()
    }
    fn len(&self) -> io::Result<u64> {
        Ok(self.0.metadata()?.len())
    }
    /// Recovery cuts torn tails; a check only reports them.
    fn truncate(&self, _len: u64) -> io::Result<()> {
        Ok(())
    }
    fn sync(&self) -> io::Result<()> {
        Ok(())
    }
}

impl StoreIo for ReadOnlyIo {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        if dir.is_dir() {
            Ok(())
        } else {
            Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("{} is not a directory", dir.display()),
            ))
        }
    }
    fn open(&self, path: &Path, _create: bool) -> io::Result<Arc<dyn StoreFile>> {
        Ok(Arc::new(ReadOnlyFile(std::fs::File::open(path)?)))
    }
    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        RealIo.list(dir)
    }
    /// Leftover temporary files are what recovery removes; a check leaves them.
    fn remove(&self, _path: &Path) -> io::Result<()> {
        Ok(())
    }
    fn rename(&self, _from: &Path, _to: &Path) -> io::Result<()> {
        read_only()
    }
    fn sync_dir(&self, _dir: &Path) -> io::Result<()> {
        Ok(())
    }
    fn remove_dir_all(&self, _dir: &Path) -> io::Result<()> {
        read_only()
    }
}
