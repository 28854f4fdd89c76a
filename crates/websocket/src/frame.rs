//! WebSocket framing (RFC 6455) with permessage-deflate (RFC 7692), shown to
//! the connection code as a plain byte stream: reads return the payload of
//! the client's data frames (unmasked, inflated), each write goes out as one
//! binary frame (deflated above a small size when compression was agreed).
//! Control frames are answered here: PING gets PONG, CLOSE gets CLOSE and
//! ends the stream. When the server closes, a CLOSE frame with nats-server's
//! status for the reason goes out first.
//!
//! Both halves of the connection (reader and writer tasks) share one
//! `WsStream` through `tokio::io::split`; the reader may have control frames
//! to send, so writes to the socket use a waker that wakes whichever of the
//! two tasks was waiting on them.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll, Wake, Waker};
use std::time::Duration;

use bytes::{Buf, BytesMut};
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};
use parking_lot::Mutex;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use rnats_core::client::{ClientShared, CloseReason};

const OP_CONTINUATION: u8 = 0;
const OP_TEXT: u8 = 1;
const OP_BINARY: u8 = 2;
const OP_CLOSE: u8 = 8;
const OP_PING: u8 = 9;
const OP_PONG: u8 = 10;

const FINAL_BIT: u8 = 0x80;
const RSV1_BIT: u8 = 0x40;
const RSV23_BITS: u8 = 0x30;
const MASK_BIT: u8 = 0x80;
const MAX_CONTROL_PAYLOAD: u64 = 125;
/// Writes this small are not worth compressing (nats-server's threshold).
const COMPRESS_THRESHOLD: usize = 64;
/// What a deflate stream flushed with SYNC ends with, plus an empty final
/// block, appended to each compressed message before inflating.
const LAST_BLOCK: [u8; 9] = [0x00, 0x00, 0xff, 0xff, 0x01, 0x00, 0x00, 0xff, 0xff];
/// Stop decoding ahead once this much is waiting for the reader.
const DECODED_HIGH_WATER: usize = 256 * 1024;
/// How long closing may wait for the CLOSE frame to go out.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

pub const CLOSE_NORMAL: u16 = 1000;
pub const CLOSE_GOING_AWAY: u16 = 1001;
pub const CLOSE_PROTOCOL_ERROR: u16 = 1002;
pub const CLOSE_NO_STATUS: u16 = 1005;
pub const CLOSE_INVALID_PAYLOAD: u16 = 1007;
pub const CLOSE_POLICY_VIOLATION: u16 = 1008;
pub const CLOSE_MESSAGE_TOO_BIG: u16 = 1009;
pub const CLOSE_INTERNAL_ERROR: u16 = 1011;

/// The CLOSE status nats-server sends when it closes a client for `reason`.
pub fn close_status(reason: CloseReason) -> u16 {
    match reason {
        CloseReason::ClientClosed => CLOSE_NORMAL,
        CloseReason::AuthenticationTimeout
        | CloseReason::AuthenticationViolation
        | CloseReason::SlowConsumerPendingBytes
        | CloseReason::SlowConsumerWriteDeadline
        | CloseReason::MaxConnectionsExceeded
        | CloseReason::MaxAccountConnectionsExceeded
        | CloseReason::MaxControlLineExceeded
        | CloseReason::Revocation
        | CloseReason::DuplicateRoute
        | CloseReason::ClusterNameConflict
        | CloseReason::DuplicateServerName
        | CloseReason::WrongPort
        | CloseReason::WrongGateway
        | CloseReason::MissingAccount
        | CloseReason::AuthenticationExpired => CLOSE_POLICY_VIOLATION,
        CloseReason::ParseError
        | CloseReason::ProtocolViolation
        | CloseReason::BadClientProtocolVersion => CLOSE_PROTOCOL_ERROR,
        CloseReason::MaxPayloadExceeded => CLOSE_MESSAGE_TOO_BIG,
        CloseReason::WriteError
        | CloseReason::ReadError
        | CloseReason::StaleConnection
        | CloseReason::ServerShutdown
        | CloseReason::LameDuckMode => CLOSE_GOING_AWAY,
        CloseReason::NoRespondersRequiresHeaders => CLOSE_INTERNAL_ERROR,
    }
}

fn valid_close_status(code: u16) -> bool {
    !matches!(code, 1004..=1006 | 1015)
        && (1000..5000).contains(&code)
        && !(1016..=2999).contains(&code)
}

/// Appends one unmasked frame header.
pub fn put_header(out: &mut BytesMut, opcode: u8, compressed: bool, len: usize) {
    let mut b0 = FINAL_BIT | opcode;
    if compressed {
        b0 |= RSV1_BIT;
    }
    out.extend_from_slice(&[b0]);
    if len <= 125 {
        out.extend_from_slice(&[len as u8]);
    } else if len < 65536 {
        out.extend_from_slice(&[126]);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.extend_from_slice(&[127]);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
}

/// A CLOSE payload: status, then the text cut to fit a control frame.
fn close_payload(status: u16, text: &str) -> Vec<u8> {
    let mut body = text.to_string();
    if body.len() > MAX_CONTROL_PAYLOAD as usize - 2 {
        let mut cut = MAX_CONTROL_PAYLOAD as usize - 5;
        while !body.is_char_boundary(cut) {
            cut -= 1;
        }
        body.truncate(cut);
        body.push_str("...");
    }
    let mut p = status.to_be_bytes().to_vec();
    p.extend_from_slice(body.as_bytes());
    p
}

/// Wakes both tasks that may wait on socket writes (see the module docs).
#[derive(Default)]
struct WriteWakers {
    slots: Mutex<[Option<Waker>; 2]>,
}

impl WriteWakers {
    fn register(&self, who: usize, waker: &Waker) {
        let mut slots = self.slots.lock();
        match &slots[who] {
            Some(w) if w.will_wake(waker) => {}
            _ => slots[who] = Some(waker.clone()),
        }
    }
}

impl Wake for WriteWakers {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref()
    }
    fn wake_by_ref(self: &Arc<Self>) {
        let wakers: Vec<Waker> = self
            .slots
            .lock()
            .iter_mut()
            .filter_map(Option::take)
            .collect();
        for w in wakers {
            w.wake();
        }
    }
}

const READER: usize = 0;
const WRITER: usize = 1;

/// What the handshake agreed.
#[derive(Debug, Clone, Copy)]
pub struct WsParams {
    /// permessage-deflate was negotiated.
    pub compress: bool,
    /// The client masks its frames (always, unless it asked for `Nats-No-Masking`).
    pub masked: bool,
    /// Largest message (compressed or not) accepted from the client.
    pub max_message: usize,
}

/// A WebSocket connection as a byte stream.
pub struct WsStream<S> {
    io: S,
    client: Arc<ClientShared>,
    params: WsParams,
    // Reading.
    rbuf: BytesMut,
    in_frame: bool,
    rem: u64,
    frame_final: bool,
    mkey: [u8; 4],
    mpos: usize,
    masked: bool,
    /// A data message was started and its final frame has not come yet.
    msg_open: bool,
    msg_compressed: bool,
    cbuf: Vec<u8>,
    decoded: BytesMut,
    eof: bool,
    inflater: Option<Decompress>,
    // Writing.
    out: BytesMut,
    accepted: Option<usize>,
    close_sent: bool,
    deflater: Option<Compress>,
    wakers: Arc<WriteWakers>,
    write_waker: Waker,
    shutdown_deadline: Option<Pin<Box<tokio::time::Sleep>>>,
}

fn protocol_error(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

impl<S> WsStream<S> {
    /// `leftover`: bytes read past the handshake request.
    pub fn new(io: S, client: Arc<ClientShared>, params: WsParams, leftover: &[u8]) -> Self {
        let wakers = Arc::new(WriteWakers::default());
        WsStream {
            io,
            client,
            params,
            rbuf: BytesMut::from(leftover),
            in_frame: false,
            rem: 0,
            frame_final: false,
            mkey: [0; 4],
            mpos: 0,
            masked: false,
            msg_open: false,
            msg_compressed: false,
            cbuf: Vec::new(),
            decoded: BytesMut::new(),
            eof: false,
            inflater: None,
            out: BytesMut::new(),
            accepted: None,
            close_sent: false,
            deflater: None,
            write_waker: Waker::from(wakers.clone()),
            wakers,
            shutdown_deadline: None,
        }
    }

    fn queue_control(&mut self, opcode: u8, payload: &[u8]) {
        if self.close_sent {
            return;
        }
        put_header(&mut self.out, opcode, false, payload.len());
        self.out.extend_from_slice(payload);
        if opcode == OP_CLOSE {
            self.close_sent = true;
        }
    }

    /// Queues a protocol-error CLOSE and returns the error that ends reading.
    fn fail(&mut self, msg: &str) -> io::Error {
        let payload = close_payload(CLOSE_PROTOCOL_ERROR, msg);
        self.queue_control(OP_CLOSE, &payload);
        self.eof = true;
        protocol_error(msg)
    }

    fn unmask(&mut self, buf: &mut [u8]) {
        if !self.masked {
            return;
        }
        let mut p = self.mpos;
        for b in buf.iter_mut() {
            *b ^= self.mkey[p & 3];
            p += 1;
        }
        self.mpos = p & 3;
    }

    /// Decodes whatever complete pieces `rbuf` holds.
    fn decode(&mut self) -> io::Result<()> {
        while !self.eof && !self.rbuf.is_empty() && self.decoded.len() < DECODED_HIGH_WATER {
            if self.in_frame {
                let n = (self.rem.min(self.rbuf.len() as u64)) as usize;
                let mut chunk = self.rbuf.split_to(n);
                self.unmask(&mut chunk);
                self.rem -= n as u64;
                if self.msg_compressed {
                    if self.cbuf.len() + n > self.params.max_message {
                        return Err(self.fail("maximum message size exceeded"));
                    }
                    self.cbuf.extend_from_slice(&chunk);
                } else {
                    self.decoded.extend_from_slice(&chunk);
                }
                if self.rem == 0 {
                    self.end_frame()?;
                }
                continue;
            }
            if !self.header()? {
                break;
            }
        }
        Ok(())
    }

    fn end_frame(&mut self) -> io::Result<()> {
        self.in_frame = false;
        if self.frame_final && self.msg_compressed {
            self.inflate()?;
            self.msg_compressed = false;
        }
        Ok(())
    }

    /// Parses one frame header (and a whole control frame); false when more
    /// bytes are needed.
    fn header(&mut self) -> io::Result<bool> {
        if self.rbuf.len() < 2 {
            return Ok(false);
        }
        let b0 = self.rbuf[0];
        let b1 = self.rbuf[1];
        let opcode = b0 & 0x0f;
        let is_final = b0 & FINAL_BIT != 0;
        let compressed = b0 & RSV1_BIT != 0;
        if b0 & RSV23_BITS != 0 {
            return Err(self.fail("RSV2 and RSV3 must be clear"));
        }
        if compressed && !self.params.compress {
            return Err(
                self.fail("compressed frame received without negotiated permessage-deflate")
            );
        }
        let masked = b1 & MASK_BIT != 0;
        if self.params.masked && !masked {
            return Err(self.fail("mask bit missing"));
        }
        let len7 = (b1 & 0x7f) as u64;
        let ext = match len7 {
            126 => 2,
            127 => 8,
            _ => 0,
        };
        let hdr = 2 + ext + if masked { 4 } else { 0 };
        match opcode {
            OP_CLOSE | OP_PING | OP_PONG => {
                if len7 > MAX_CONTROL_PAYLOAD {
                    return Err(self.fail(&format!(
                        "control frame length bigger than maximum allowed of {MAX_CONTROL_PAYLOAD} bytes"
                    )));
                }
                if !is_final {
                    return Err(self.fail("control frame does not have final bit set"));
                }
                if compressed {
                    return Err(self.fail("control frame must not be compressed"));
                }
            }
            OP_TEXT | OP_BINARY => {
                if self.msg_open {
                    return Err(self.fail(
                        "new message started before final frame for previous message was received",
                    ));
                }
            }
            OP_CONTINUATION => {
                if !self.msg_open || compressed {
                    return Err(self.fail("invalid continuation frame"));
                }
            }
            op => return Err(self.fail(&format!("unknown opcode {op}"))),
        }
        if self.rbuf.len() < hdr {
            return Ok(false);
        }
        let len = match ext {
            2 => u16::from_be_bytes([self.rbuf[2], self.rbuf[3]]) as u64,
            8 => {
                let mut b = [0u8; 8];
                b.copy_from_slice(&self.rbuf[2..10]);
                let l = u64::from_be_bytes(b);
                if l & (1 << 63) != 0 {
                    return Err(self.fail("invalid 64-bit payload length"));
                }
                l
            }
            _ => len7,
        };
        let mut mkey = [0u8; 4];
        if masked {
            mkey.copy_from_slice(&self.rbuf[2 + ext..hdr]);
        }
        if opcode >= OP_CLOSE {
            let total = hdr + len as usize;
            if self.rbuf.len() < total {
                return Ok(false);
            }
            self.rbuf.advance(hdr);
            let mut payload = self.rbuf.split_to(len as usize);
            self.masked = masked;
            self.mkey = mkey;
            self.mpos = 0;
            self.unmask(&mut payload);
            self.control(opcode, &payload)?;
            return Ok(true);
        }
        self.rbuf.advance(hdr);
        if opcode != OP_CONTINUATION {
            self.msg_compressed = compressed;
        }
        self.msg_open = !is_final;
        self.frame_final = is_final;
        self.masked = masked;
        self.mkey = mkey;
        self.mpos = 0;
        self.rem = len;
        self.in_frame = true;
        if len == 0 {
            self.end_frame()?;
        }
        Ok(true)
    }

    fn control(&mut self, opcode: u8, payload: &[u8]) -> io::Result<()> {
        match opcode {
            OP_CLOSE => {
                if payload.len() == 1 {
                    return Err(self.fail("close frame payload cannot be 1 byte"));
                }
                let mut reply = Vec::new();
                if payload.len() >= 2 {
                    let mut status = u16::from_be_bytes([payload[0], payload[1]]);
                    if !valid_close_status(status) {
                        return Err(self.fail(&format!("invalid close status code {status}")));
                    }
                    let mut body = &payload[2..];
                    if std::str::from_utf8(body).is_err() {
                        status = CLOSE_INVALID_PAYLOAD;
                        body = b"invalid utf8 body in close frame";
                    }
                    if status != CLOSE_NO_STATUS {
                        reply = status.to_be_bytes().to_vec();
                        reply.extend_from_slice(body);
                    }
                }
                self.queue_control(OP_CLOSE, &reply);
                self.eof = true;
            }
            OP_PING => self.queue_control(OP_PONG, payload),
            _ => {}
        }
        Ok(())
    }

    /// Inflates the compressed message in `cbuf` into `decoded`.
    fn inflate(&mut self) -> io::Result<()> {
        self.cbuf.extend_from_slice(&LAST_BLOCK);
        let limit = self.params.max_message;
        let d = self.inflater.get_or_insert_with(|| Decompress::new(false));
        d.reset(false);
        let mut out: Vec<u8> = Vec::with_capacity((self.cbuf.len() * 4).min(limit + 1));
        let mut failed = None;
        loop {
            out.reserve(32 * 1024);
            let (in0, out0) = (d.total_in(), d.total_out());
            let status = match d.decompress_vec(
                &self.cbuf[d.total_in() as usize..],
                &mut out,
                FlushDecompress::Sync,
            ) {
                Ok(s) => s,
                Err(e) => {
                    failed = Some(format!("decompression error: {e}"));
                    break;
                }
            };
            if out.len() > limit {
                failed = Some("maximum message size exceeded".into());
                break;
            }
            let progressed = d.total_in() != in0 || d.total_out() != out0;
            let all_in = d.total_in() as usize >= self.cbuf.len();
            if status == Status::StreamEnd || !progressed || (all_in && out.len() < out.capacity())
            {
                break;
            }
        }
        self.cbuf.clear();
        if let Some(msg) = failed {
            return Err(self.fail(&msg));
        }
        self.decoded.extend_from_slice(&out);
        Ok(())
    }

    /// Frames `buf` as one binary message into `out`.
    fn encode(&mut self, buf: &[u8]) {
        if self.params.compress && buf.len() > COMPRESS_THRESHOLD {
            let c = self
                .deflater
                .get_or_insert_with(|| Compress::new(Compression::fast(), false));
            // No context takeover: every message starts a fresh stream.
            c.reset();
            let mut z: Vec<u8> = Vec::with_capacity(buf.len() / 2 + 64);
            loop {
                z.reserve(16 * 1024);
                let consumed = c.total_in() as usize;
                if c.compress_vec(&buf[consumed..], &mut z, FlushCompress::Sync)
                    .is_err()
                {
                    break;
                }
                if c.total_in() as usize >= buf.len() && z.len() < z.capacity() {
                    if z.ends_with(&[0x00, 0x00, 0xff, 0xff]) {
                        z.truncate(z.len() - 4);
                        put_header(&mut self.out, OP_BINARY, true, z.len());
                        self.out.extend_from_slice(&z);
                        return;
                    }
                    break;
                }
            }
            // Compression failed (it should not): send it plain.
        }
        put_header(&mut self.out, OP_BINARY, false, buf.len());
        self.out.extend_from_slice(buf);
    }
}

impl<S: AsyncWrite + Unpin> WsStream<S> {
    /// Writes out `out` and flushes the socket; `who` is the task asking.
    fn poll_drain(&mut self, cx: &mut Context<'_>, who: usize) -> Poll<io::Result<()>> {
        self.wakers.register(who, cx.waker());
        let mut wcx = Context::from_waker(&self.write_waker);
        while !self.out.is_empty() {
            let n = ready!(Pin::new(&mut self.io).poll_write(&mut wcx, &self.out))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.out.advance(n);
        }
        Pin::new(&mut self.io).poll_flush(&mut wcx)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for WsStream<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        loop {
            if !this.out.is_empty() {
                // PONG or CLOSE to send: try now; if the socket is full,
                // the writer (or our next poll) finishes it.
                if let Poll::Ready(Err(e)) = this.poll_drain(cx, READER) {
                    return Poll::Ready(Err(e));
                }
            }
            if !this.decoded.is_empty() {
                let n = this.decoded.len().min(buf.remaining());
                buf.put_slice(&this.decoded[..n]);
                this.decoded.advance(n);
                return Poll::Ready(Ok(()));
            }
            if this.eof {
                return Poll::Ready(Ok(()));
            }
            let before = this.decoded.len();
            let had_eof = this.eof;
            let out_before = this.out.len();
            this.decode()?;
            if this.decoded.len() != before || this.eof != had_eof || this.out.len() != out_before {
                continue;
            }
            // Need more bytes from the socket.
            this.rbuf.reserve(16 * 1024);
            let n = ready!(tokio_util::io::poll_read_buf(
                Pin::new(&mut this.io),
                cx,
                &mut this.rbuf
            ))?;
            if n == 0 {
                this.eof = true;
                return Poll::Ready(Ok(()));
            }
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for WsStream<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        // A write that returned Pending is retried with the same buffer
        // (`write_all`): it was framed already, finish sending it.
        let n = match this.accepted {
            Some(n) => n,
            None => {
                this.encode(buf);
                this.accepted = Some(buf.len());
                buf.len()
            }
        };
        ready!(this.poll_drain(cx, WRITER))?;
        this.accepted = None;
        Poll::Ready(Ok(n))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.poll_drain(cx, WRITER)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if !this.close_sent {
            let reason = this
                .client
                .out
                .close_reason()
                .unwrap_or(CloseReason::ServerShutdown);
            let payload = close_payload(
                close_status(reason),
                rnats_core::closed::reason_text(reason),
            );
            this.queue_control(OP_CLOSE, &payload);
        }
        let deadline = this
            .shutdown_deadline
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(SHUTDOWN_GRACE)));
        if deadline.as_mut().poll(cx).is_ready() {
            // The peer is not reading: give up on a clean close.
            return Poll::Ready(Ok(()));
        }
        match this.poll_drain(cx, WRITER) {
            Poll::Ready(Ok(())) => {}
            Poll::Ready(Err(_)) => return Poll::Ready(Ok(())),
            Poll::Pending => return Poll::Pending,
        }
        Pin::new(&mut this.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_statuses() {
        assert!(valid_close_status(1000));
        assert!(!valid_close_status(1005));
        assert!(!valid_close_status(1015));
        assert!(!valid_close_status(2000));
        assert!(valid_close_status(3000));
        assert_eq!(close_status(CloseReason::StaleConnection), 1001);
        let p = close_payload(1002, &"x".repeat(200));
        assert_eq!(p.len(), 125);
        assert!(p.ends_with(b"..."));
    }
}
