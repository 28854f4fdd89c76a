//! A large object through async-nats' object store: streamed in from a
//! generator (never a buffer of the object's size), read back and compared
//! byte for byte and by SHA-256 digest, while the server's peak RSS
//! (`VmHWM`) stays bounded — the server must neither buffer the object on
//! the way in nor cache it on the way out.
//!
//! The size is `RNATS_LARGE_OBJECT_MIB` (default 256, so the whole suite
//! stays quick on two cores); run with 1024 for the 1 GiB check.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use async_nats::jetstream::object_store;
use base64::Engine;
use rnats_itest::{js_context, js_server, within};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, AsyncReadExt, ReadBuf};

/// Peak server RSS allowed over the whole put + get, whatever the size.
const MAX_PEAK_RSS_MIB: u64 = 300;

/// Deterministic pseudo-random bytes, `len` of them: byte `i` depends only
/// on `i` (splitmix64 of `i / 8`), so any split into reads gives the same stream.
struct Generated {
    pos: u64,
    len: u64,
    seed: u64,
}

impl Generated {
    fn new(len: u64, seed: u64) -> Generated {
        Generated { pos: 0, len, seed }
    }

    fn word(&self, k: u64) -> [u8; 8] {
        let mut z = k
            .wrapping_add(self.seed)
            .wrapping_mul(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        (z ^ (z >> 31)).to_le_bytes()
    }

    /// Fills as much of `out` as the remaining length allows; returns how much.
    fn fill(&mut self, out: &mut [u8]) -> usize {
        let n = out.len().min((self.len - self.pos) as usize);
        let mut i = 0;
        while i < n {
            let w = self.word(self.pos / 8);
            let from = (self.pos % 8) as usize;
            let take = (8 - from).min(n - i);
            out[i..i + take].copy_from_slice(&w[from..from + take]);
            i += take;
            self.pos += take as u64;
        }
        n
    }
}

impl AsyncRead for Generated {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let n = self.fill(buf.initialize_unfilled());
        buf.advance(n);
        Poll::Ready(Ok(()))
    }
}

/// VmHWM (peak resident set) of a process in MiB.
fn peak_rss_mib(pid: u32) -> u64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read status");
    text.lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse::<u64>().ok())
        .map(|kib| kib / 1024)
        .expect("VmHWM in /proc/<pid>/status")
}

fn size_mib() -> u64 {
    std::env::var("RNATS_LARGE_OBJECT_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256)
}

#[tokio::test]
async fn large_object_round_trip_with_bounded_server_memory() {
    let mib = size_mib();
    let size = mib << 20;
    let (server, _store) = js_server();
    // Generous: about 1 MiB/s would already be far too slow.
    within(Duration::from_secs(60 + mib * 2), "large object", async {
        let js = js_context(&server).await;
        let obs = js
            .create_object_store(object_store::Config {
                bucket: "LARGE".into(),
                ..Default::default()
            })
            .await
            .unwrap();

        let t0 = Instant::now();
        let info = obs
            .put("big", &mut Generated::new(size, 7))
            .await
            .expect("put");
        let put_time = t0.elapsed();
        let peak_after_put = peak_rss_mib(server.pid());
        assert_eq!(info.size as u64, size);

        let mut want = Generated::new(size, 7);
        let mut sha = Sha256::new();
        let mut obj = obs.get("big").await.expect("get");
        let (mut got, mut expect) = (vec![0u8; 1 << 20], vec![0u8; 1 << 20]);
        let mut off = 0u64;
        let t1 = Instant::now();
        loop {
            let n = obj.read(&mut got).await.expect("read");
            if n == 0 {
                break;
            }
            let mut filled = 0;
            while filled < n {
                filled += want.fill(&mut expect[filled..n]);
            }
            assert!(got[..n] == expect[..n], "object differs at offset {off}");
            sha.update(&got[..n]);
            off += n as u64;
        }
        let get_time = t1.elapsed();
        assert_eq!(off, size);
        let digest = format!(
            "SHA-256={}",
            base64::engine::general_purpose::URL_SAFE.encode(sha.finalize())
        );
        assert_eq!(info.digest.as_deref(), Some(digest.as_str()));
        let peak = peak_rss_mib(server.pid());
        eprintln!(
            "{mib} MiB object: put {put_time:?}, get {get_time:?}; server peak RSS \
             {peak_after_put} MiB after put, {peak} MiB after get"
        );
        assert!(
            peak < MAX_PEAK_RSS_MIB,
            "server peak RSS {peak} MiB while moving a {mib} MiB object"
        );
    })
    .await;
}
