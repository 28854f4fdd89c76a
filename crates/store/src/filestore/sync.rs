//! Group commit: the background sync thread, the set of files with unsynced writes, and the
//! `synced_through` watch channel.

use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};
use tokio::sync::watch;

use crate::io::StoreFile;

/// When the FileStore fsyncs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SyncPolicy {
    /// fsync every interval (nats-server's default is 2 minutes); synced_through advances then.
    Interval(Duration),
    /// Group commit: a background thread fsyncs as soon as there is unsynced data.
    Always,
}

#[derive(Default)]
struct SyncState {
    /// Highest seq whose record has been written (not necessarily synced).
    written: u64,
    dirty: bool,
    stop: bool,
    active: Option<Arc<dyn StoreFile>>,
    /// Rolled blocks with possibly unsynced data.
    pending: Vec<Arc<dyn StoreFile>>,
    last_error: Option<String>,
}

pub(crate) struct SyncShared {
    st: Mutex<SyncState>,
    cv: Condvar,
    /// Serialises whole sync passes so a publish never overtakes a slower pass.
    pass: Mutex<()>,
    tx: watch::Sender<u64>,
    policy: SyncPolicy,
}

impl SyncShared {
    pub fn new(policy: SyncPolicy, synced: u64) -> Arc<Self> {
        let (tx, _) = watch::channel(synced);
        Arc::new(SyncShared {
            st: Mutex::new(SyncState {
                written: synced,
                ..Default::default()
            }),
            cv: Condvar::new(),
            pass: Mutex::new(()),
            tx,
            policy,
        })
    }

    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.tx.subscribe()
    }

    pub fn synced(&self) -> u64 {
        *self.tx.borrow()
    }

    /// Called after a record up to `seq` has been written to a file.
    pub fn note_written(&self, seq: u64) {
        let mut st = self.st.lock();
        st.written = st.written.max(seq);
        st.dirty = true;
        drop(st);
        if self.policy == SyncPolicy::Always {
            self.cv.notify_one();
        }
    }

    /// A non-message write (marker, rewrite) that should be synced at the next pass.
    pub fn note_dirty(&self) {
        self.st.lock().dirty = true;
        if self.policy == SyncPolicy::Always {
            self.cv.notify_one();
        }
    }

    /// Installs a new active block; the old one stays pending until the next pass.
    pub fn set_active(&self, file: Arc<dyn StoreFile>) {
        let mut st = self.st.lock();
        if let Some(old) = st.active.replace(file) {
            // No writeback is started here: in a full stream (discard old) a block often
            // dies before the kernel writes it, and then its bytes never reach the disk.
            st.pending.push(old);
        }
        st.dirty = true;
    }

    /// fsyncs everything written so far and publishes the covered seq.
    pub fn sync_now(&self) -> io::Result<()> {
        let _pass = self.pass.lock();
        let (target, files) = {
            let mut st = self.st.lock();
            st.dirty = false;
            let mut files = std::mem::take(&mut st.pending);
            files.extend(st.active.clone());
            (st.written, files)
        };
        if files.len() > 1 {
            for f in &files {
                f.start_writeback();
            }
        }
        for (i, f) in files.iter().enumerate() {
            if let Err(e) = f.sync() {
                let mut st = self.st.lock();
                st.dirty = true;
                st.last_error = Some(e.to_string());
                let active = st.active.clone();
                for f in &files[i..] {
                    if active.as_ref().is_none_or(|a| !Arc::ptr_eq(a, f)) {
                        st.pending.push(f.clone());
                    }
                }
                return Err(e);
            }
        }
        self.tx.send_if_modified(|v| {
            if target > *v {
                *v = target;
                true
            } else {
                false
            }
        });
        Ok(())
    }

    pub fn request_stop(&self) {
        self.st.lock().stop = true;
        self.cv.notify_all();
    }

    /// Body of the background sync thread.
    pub fn run(self: Arc<Self>) {
        let interval = match self.policy {
            SyncPolicy::Always => None,
            SyncPolicy::Interval(d) => Some(d.max(Duration::from_millis(1))),
        };
        let mut next = interval.map(|d| Instant::now() + d);
        loop {
            {
                let mut st = self.st.lock();
                match next {
                    None => {
                        while !st.dirty && !st.stop {
                            self.cv.wait(&mut st);
                        }
                    }
                    Some(deadline) => {
                        while !st.stop && Instant::now() < deadline {
                            self.cv.wait_until(&mut st, deadline);
                        }
                    }
                }
                if st.stop {
                    return;
                }
                if !st.dirty {
                    next = interval.map(|d| Instant::now() + d);
                    continue;
                }
            }
            if self.sync_now().is_err() {
                // Back off; a stale handle (e.g. after a simulated power cut) keeps failing.
                std::thread::sleep(Duration::from_millis(20));
            }
            next = interval.map(|d| Instant::now() + d);
        }
    }
}
