//! MemStore: the in-memory `MsgStore` (nats-server's memstore), a thin shell around `Core`.

use bytes::Bytes;
use parking_lot::Mutex;
use std::collections::BTreeMap;
use tokio::sync::watch;

use crate::core::{Core, Removed};
use crate::error::StoreError;
use crate::types::{mem_msg_size, StoreLimits, StoredMsg, StreamState, SubjectState};
use crate::{now_nanos, MsgStore};

type Data = (Bytes, Bytes);

pub struct MemStore {
    inner: Mutex<Option<Core<Data>>>,
    tx: watch::Sender<u64>,
}

impl MemStore {
    pub fn new(limits: StoreLimits) -> Self {
        let (tx, _) = watch::channel(0);
        MemStore {
            inner: Mutex::new(Some(Core::new(limits))),
            tx,
        }
    }

    fn with<R>(&self, f: impl FnOnce(&mut Core<Data>) -> R) -> Result<R, StoreError> {
        let mut g = self.inner.lock();
        let core = g.as_mut().ok_or(StoreError::Closed)?;
        let r = f(core);
        let last = core.last_seq;
        drop(g);
        self.tx.send_if_modified(|v| {
            let changed = *v != last;
            *v = last;
            changed
        });
        Ok(r)
    }

    fn insert(
        core: &mut Core<Data>,
        seq: u64,
        subject: &str,
        headers: &[u8],
        payload: &[u8],
        ts: i64,
    ) {
        let size = mem_msg_size(subject.len(), headers.len(), payload.len());
        let data = (
            Bytes::copy_from_slice(headers),
            Bytes::copy_from_slice(payload),
        );
        core.insert(seq, subject, ts, size, data);
        let mut removed = Removed::new();
        core.enforce_after_insert(subject, &mut removed);
    }

    fn to_msg(core: &Core<Data>, seq: u64) -> Result<StoredMsg, StoreError> {
        let e = core.msgs.get(&seq).ok_or_else(|| core.missing(seq))?;
        Ok(StoredMsg {
            seq,
            ts: e.ts,
            subject: e.subject.to_string(),
            headers: e.data.0.clone(),
            payload: e.data.1.clone(),
        })
    }
}

impl MsgStore for MemStore {
    fn store(
        &self,
        subject: &str,
        headers: &[u8],
        payload: &[u8],
        ts: i64,
    ) -> Result<(u64, i64), StoreError> {
        self.with(|core| {
            let size = mem_msg_size(subject.len(), headers.len(), payload.len());
            core.check_store(subject, headers.len(), payload.len(), size)?;
            let ts = if ts == 0 { now_nanos() } else { ts };
            let seq = core.last_seq + 1;
            Self::insert(core, seq, subject, headers, payload, ts);
            Ok((seq, ts))
        })?
    }

    fn store_at(
        &self,
        seq: u64,
        subject: &str,
        headers: &[u8],
        payload: &[u8],
        ts: i64,
    ) -> Result<(), StoreError> {
        self.with(|core| {
            if seq <= core.last_seq || seq == 0 {
                return Err(StoreError::SequenceMismatch);
            }
            Self::insert(core, seq, subject, headers, payload, ts);
            Ok(())
        })?
    }

    fn skip(&self) -> Result<u64, StoreError> {
        self.with(|core| {
            let seq = core.last_seq + 1;
            core.skip(seq);
            seq
        })
    }

    fn load(&self, seq: u64) -> Result<StoredMsg, StoreError> {
        self.with(|core| Self::to_msg(core, seq))?
    }

    fn load_next(&self, filter: &str, start: u64) -> Result<StoredMsg, StoreError> {
        self.with(|core| match core.find_next(filter, start) {
            Some(s) => Self::to_msg(core, s),
            None => Err(StoreError::NotFound),
        })?
    }

    fn load_last(&self, filter: &str) -> Result<StoredMsg, StoreError> {
        self.with(|core| match core.find_last(filter) {
            Some(s) => Self::to_msg(core, s),
            None => Err(StoreError::NotFound),
        })?
    }

    fn remove(&self, seq: u64, _secure: bool) -> Result<bool, StoreError> {
        // Secure erase is moot in memory: the bytes are dropped with the entry.
        self.with(|core| core.remove(seq).is_some())
    }

    fn purge(
        &self,
        subject: Option<&str>,
        up_to_seq: Option<u64>,
        keep: Option<u64>,
    ) -> Result<u64, StoreError> {
        self.with(|core| core.purge(subject, up_to_seq, keep, &mut Removed::new()))
    }

    fn expire(&self, now: i64) -> Result<u64, StoreError> {
        self.with(|core| core.expire(now, &mut Removed::new()))
    }

    fn state(&self) -> StreamState {
        self.with(|core| core.state()).unwrap_or_default()
    }

    fn deleted(&self) -> Vec<u64> {
        self.with(|core| core.deleted()).unwrap_or_default()
    }

    fn subjects_state(&self, filter: &str) -> BTreeMap<String, SubjectState> {
        self.with(|core| core.subjects_state(filter))
            .unwrap_or_default()
    }

    fn num_pending(&self, filter: &str, start: u64) -> u64 {
        self.with(|core| core.num_pending(filter, start))
            .unwrap_or_default()
    }

    fn first_seq_since(&self, ts: i64) -> u64 {
        self.with(|core| core.first_seq_since(ts))
            .unwrap_or_default()
    }

    fn update_limits(&self, limits: StoreLimits) -> Result<(), StoreError> {
        self.with(|core| {
            let mut removed = Removed::new();
            core.update_limits(limits, &mut removed);
            core.expire(now_nanos(), &mut removed);
        })
    }

    fn synced_through(&self) -> u64 {
        self.with(|core| core.last_seq).unwrap_or(*self.tx.borrow())
    }

    fn sync_watch(&self) -> watch::Receiver<u64> {
        self.tx.subscribe()
    }

    fn flush(&self) -> Result<(), StoreError> {
        self.with(|_| ())
    }

    fn stop(&self) -> Result<(), StoreError> {
        *self.inner.lock() = None;
        Ok(())
    }

    fn delete(&self) -> Result<(), StoreError> {
        self.stop()
    }
}
