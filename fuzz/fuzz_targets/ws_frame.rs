//! Fuzzes the WebSocket frame decoder (RFC 6455 framing, permessage-deflate):
//! arbitrary client bytes, arriving in arbitrary pieces, are read through a
//! `WsStream` until it ends; nothing may panic. Then the same bytes, written
//! as one message through a `WsStream` (the server's side, deflated when
//! compression was agreed), must read back unchanged. The first two bytes
//! pick the negotiated parameters and the read size.
#![no_main]

use std::cell::RefCell;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use libfuzzer_sys::fuzz_target;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

// The code under test (repoint here if the WebSocket module moves).
use rnats_core::{account::Account, client::ClientShared};
use rnats_websocket::frame::{WsParams, WsStream};

/// The socket: hands out the input `chunk` bytes per read, then EOF; every
/// write (PONG, CLOSE) is accepted and kept.
struct Wire<'a> {
    input: &'a [u8],
    chunk: usize,
    written: &'a RefCell<Vec<u8>>,
}

impl AsyncRead for Wire<'_> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let n = self.chunk.min(self.input.len()).min(buf.remaining());
        buf.put_slice(&self.input[..n]);
        self.input = &self.input[n..];
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for Wire<'_> {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.written.borrow_mut().extend_from_slice(buf);
        Poll::Ready(Ok(buf.len()))
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// Reads `ws` to its end (or error); what it yielded.
fn read_all<S: AsyncRead + AsyncWrite + Unpin>(ws: &mut WsStream<S>) -> io::Result<Vec<u8>> {
    let mut cx = Context::from_waker(Waker::noop());
    let mut out = [0u8; 4096];
    let mut got = Vec::new();
    // Every read makes progress (the wire never blocks), so this ends.
    loop {
        let mut rb = ReadBuf::new(&mut out);
        match Pin::new(&mut *ws).poll_read(&mut cx, &mut rb) {
            Poll::Ready(Ok(())) if rb.filled().is_empty() => return Ok(got),
            Poll::Ready(Ok(())) => got.extend_from_slice(rb.filled()),
            Poll::Ready(Err(e)) => return Err(e),
            Poll::Pending => panic!("read stalled on a wire that never blocks"),
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let [flags, chunk, rest @ ..] = data else {
        return;
    };
    let params = WsParams {
        compress: flags & 1 != 0,
        masked: flags & 2 != 0,
        max_message: if flags & 4 != 0 { 64 } else { 64 * 1024 },
    };
    let addr = "127.0.0.1:4222".parse().unwrap();
    let client = Arc::new(ClientShared::new(
        1,
        addr,
        1 << 20,
        Arc::new(Account::new("A")),
    ));

    // Client bytes: some came with the handshake request, then the socket's.
    let split = ((flags >> 3) as usize).min(rest.len());
    let (leftover, input) = rest.split_at(split);
    let written = RefCell::new(Vec::new());
    let wire = Wire {
        input,
        chunk: (*chunk as usize).max(1),
        written: &written,
    };
    let _ = read_all(&mut WsStream::new(wire, client.clone(), params, leftover));

    // Server to client and back: one write is one message, read back whole.
    if rest.is_empty() {
        return;
    }
    let params = WsParams {
        compress: params.compress,
        masked: false,
        max_message: 1 << 20,
    };
    let frames = RefCell::new(Vec::new());
    let wire = Wire {
        input: &[],
        chunk: 1,
        written: &frames,
    };
    let mut tx = WsStream::new(wire, client.clone(), params, &[]);
    let mut cx = Context::from_waker(Waker::noop());
    match Pin::new(&mut tx).poll_write(&mut cx, rest) {
        Poll::Ready(Ok(n)) => assert_eq!(n, rest.len()),
        other => panic!("write to a wire that never blocks: {other:?}"),
    }
    let frames = frames.take();
    let sink = RefCell::new(Vec::new());
    let wire = Wire {
        input: &frames,
        chunk: (*chunk as usize).max(1),
        written: &sink,
    };
    let back = read_all(&mut WsStream::new(wire, client, params, &[])).expect("own frames decode");
    assert_eq!(back, rest, "message changed on the way through the framing");
});
