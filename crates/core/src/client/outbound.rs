//! A connection's outbound buffer: publishers append frames under a short
//! lock, the connection's writer task swaps the buffer out and writes it with
//! one syscall per batch. Appending never blocks on the socket: a subscriber
//! whose pending bytes pass `max_pending` is cut off as a slow consumer instead
//! of slowing the publisher down.

use bytes::BytesMut;
use parking_lot::Mutex;
use tokio::sync::Notify;

use super::CloseReason;

struct State {
    buf: BytesMut,
    /// Bytes taken by the writer and not yet written.
    inflight: usize,
    closed: Option<CloseReason>,
    /// A wake-up for the writer is already owed; see [`Push::NeedsFlush`].
    flush_scheduled: bool,
    out_msgs: u64,
    out_bytes: u64,
}

/// Pending bytes past which the writer is woken at once instead of at the
/// end of the publisher's batch.
const EAGER_FLUSH: usize = 32 * 1024;

pub struct Outbound {
    state: Mutex<State>,
    wake: Notify,
    max_pending: usize,
    /// Pending bytes past which publishers are briefly held back (nats-server's
    /// stall gate at 3/4 of `max_pending`), so a fast producer slows down
    /// before its consumer is cut off — and a route, never cut for pending
    /// bytes, is not flooded.
    stall_at: usize,
    stalled: std::sync::atomic::AtomicBool,
    /// Signalled when the writer brought the pending bytes back under the gate.
    drained: Notify,
}

/// The result of appending a frame.
#[derive(Debug, PartialEq, Eq)]
pub enum Push {
    /// Queued; a flush was already scheduled.
    Queued,
    /// Queued; the caller must wake the writer (now or at the end of its batch).
    NeedsFlush,
    /// The connection is closed (or has just been closed as a slow consumer).
    Closed,
    /// This append pushed the connection over `max_pending`: it is now closed.
    SlowConsumer,
}

/// What the writer found when it came for data.
pub enum Take {
    Data,
    Closed(CloseReason),
}

impl Outbound {
    pub fn new(max_pending: usize) -> Self {
        Self::with_limits(max_pending, max_pending / 4 * 3)
    }

    /// A peer server's connection: never cut for pending bytes (a slow route
    /// is cut by the write deadline, as in nats-server), but publishers are
    /// held back past 3/4 of `pending_gate`.
    pub fn new_route(pending_gate: usize) -> Self {
        Self::with_limits(usize::MAX, pending_gate / 4 * 3)
    }

    fn with_limits(max_pending: usize, stall_at: usize) -> Self {
        Outbound {
            state: Mutex::new(State {
                buf: BytesMut::new(),
                inflight: 0,
                closed: None,
                flush_scheduled: false,
                out_msgs: 0,
                out_bytes: 0,
            }),
            wake: Notify::new(),
            max_pending,
            stall_at,
            stalled: std::sync::atomic::AtomicBool::new(false),
            drained: Notify::new(),
        }
    }

    /// Appends protocol bytes (not a message: not counted in out stats).
    pub fn push_proto(&self, bytes: &[u8]) -> Push {
        self.push(None, |b| b.extend_from_slice(bytes))
    }

    /// Appends whatever `write` puts in the buffer. `msg_size` counts one
    /// delivered message of that many payload bytes.
    #[inline]
    pub fn push(&self, msg_size: Option<usize>, write: impl FnOnce(&mut BytesMut)) -> Push {
        let mut st = self.state.lock();
        if st.closed.is_some() {
            return Push::Closed;
        }
        let before = st.buf.len();
        write(&mut st.buf);
        if st.buf.len() + st.inflight > self.max_pending {
            st.closed = Some(CloseReason::SlowConsumerPendingBytes);
            st.buf.clear();
            drop(st);
            self.wake.notify_one();
            return Push::SlowConsumer;
        }
        if let Some(size) = msg_size {
            st.out_msgs += 1;
            st.out_bytes += size as u64;
        }
        if st.buf.len() + st.inflight > self.stall_at {
            self.stalled
                .store(true, std::sync::atomic::Ordering::Relaxed);
        }
        if st.flush_scheduled {
            // A long batch (one read of many messages, a big fan-out) should
            // not wait for its end: let the writer start draining now.
            if before < EAGER_FLUSH && st.buf.len() >= EAGER_FLUSH {
                drop(st);
                self.wake.notify_one();
            }
            Push::Queued
        } else {
            st.flush_scheduled = true;
            Push::NeedsFlush
        }
    }

    /// Wakes the writer.
    pub fn flush(&self) {
        self.wake.notify_one();
    }

    /// Appends and wakes the writer at once (for replies to the connection's
    /// own operations: `PONG`, `+OK`, `-ERR`).
    pub fn send_now(&self, bytes: &[u8]) {
        if self.push_proto(bytes) == Push::NeedsFlush {
            self.flush();
        }
    }

    /// Closes the connection for `reason`; what is already queued is still
    /// written unless the reason says the peer is not reading.
    pub fn close(&self, reason: CloseReason) {
        let mut st = self.state.lock();
        if st.closed.is_none() {
            st.closed = Some(reason);
        }
        drop(st);
        self.wake.notify_one();
    }

    pub fn close_reason(&self) -> Option<CloseReason> {
        self.state.lock().closed
    }

    pub fn is_closed(&self) -> bool {
        self.state.lock().closed.is_some()
    }

    /// Waits until there may be something to write.
    pub async fn wait(&self) {
        self.wake.notified().await
    }

    /// Swaps the pending bytes into `into` (which must be empty).
    pub fn take(&self, into: &mut BytesMut) -> Take {
        let mut st = self.state.lock();
        st.flush_scheduled = false;
        match st.closed {
            Some(reason) if !reason.flushes() => return Take::Closed(reason),
            Some(reason) if st.buf.is_empty() => return Take::Closed(reason),
            _ => {}
        }
        std::mem::swap(&mut st.buf, into);
        st.inflight = into.len();
        Take::Data
    }

    /// Called by the writer after a chunk has been written.
    pub fn written(&self) {
        let mut st = self.state.lock();
        st.inflight = 0;
        if st.buf.len() <= self.stall_at
            && self
                .stalled
                .swap(false, std::sync::atomic::Ordering::Relaxed)
        {
            drop(st);
            self.drained.notify_waiters();
        }
    }

    /// Past the stall gate: a publisher should wait a moment (see [`Self::drained`]).
    pub fn is_stalled(&self) -> bool {
        self.stalled.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Resolves when the writer brings the pending bytes under the stall gate.
    pub async fn drained(&self) {
        let notified = self.drained.notified();
        if !self.is_stalled() {
            return;
        }
        notified.await
    }

    /// Total bytes waiting to be written.
    pub fn pending(&self) -> usize {
        let st = self.state.lock();
        st.buf.len() + st.inflight
    }

    /// Messages and payload bytes delivered to this connection.
    pub fn out_counts(&self) -> (u64, u64) {
        let st = self.state.lock();
        (st.out_msgs, st.out_bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slow_consumer_closes_without_blocking() {
        let out = Outbound::new(100);
        assert_eq!(
            out.push(Some(10), |b| b.extend_from_slice(&[0; 60])),
            Push::NeedsFlush
        );
        assert_eq!(
            out.push(Some(10), |b| b.extend_from_slice(&[0; 30])),
            Push::Queued
        );
        assert_eq!(
            out.push(Some(10), |b| b.extend_from_slice(&[0; 30])),
            Push::SlowConsumer
        );
        assert_eq!(
            out.push(Some(10), |b| b.extend_from_slice(&[0; 1])),
            Push::Closed
        );
        assert_eq!(
            out.close_reason(),
            Some(CloseReason::SlowConsumerPendingBytes)
        );
        let mut into = BytesMut::new();
        assert!(matches!(
            out.take(&mut into),
            Take::Closed(CloseReason::SlowConsumerPendingBytes)
        ));
    }

    #[test]
    fn inflight_counts_towards_pending() {
        let out = Outbound::new(100);
        out.push(Some(1), |b| b.extend_from_slice(&[0; 80]));
        let mut into = BytesMut::new();
        assert!(matches!(out.take(&mut into), Take::Data));
        assert_eq!(into.len(), 80);
        assert_eq!(
            out.push(Some(1), |b| b.extend_from_slice(&[0; 30])),
            Push::SlowConsumer
        );
    }

    #[test]
    fn close_flushes_queued_error_first() {
        let out = Outbound::new(1000);
        out.send_now(b"-ERR 'x'\r\n");
        out.close(CloseReason::ProtocolViolation);
        let mut into = BytesMut::new();
        assert!(matches!(out.take(&mut into), Take::Data));
        assert_eq!(&into[..], b"-ERR 'x'\r\n");
        out.written();
        into.clear();
        assert!(matches!(
            out.take(&mut into),
            Take::Closed(CloseReason::ProtocolViolation)
        ));
    }
}
