//! workloads/publisher.rs — the flow-controlled publisher: pre-built 64 KiB
//! batches of identical PUB frames, each batch followed by a PING, with at
//! most `WINDOW` PINGs unanswered so the server (not the kernel socket
//! buffer) sets the pace.

use std::io::Write;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use super::Limit;
use crate::proto::{self, Conn, Frame, PING, PONG};

/// Bytes of PUB frames per write (one PING follows each).
const BATCH_BYTES: usize = 64 * 1024;
/// Unanswered PINGs allowed, i.e. about WINDOW * 64 KiB (512 KiB) in flight.
const WINDOW: usize = 8;

/// What the publisher did.
#[derive(Debug, Clone, Copy)]
pub struct Published {
    pub msgs: u64,
    /// From the first write to the PONG for the last batch.
    pub elapsed: Duration,
}

/// A connected publisher for one subject and payload size.
pub struct Publisher {
    conn: Conn,
    frame_len: usize,
    per_batch: usize,
    /// `per_batch` frames followed by PING.
    batch: Vec<u8>,
}

impl Publisher {
    pub fn connect(addr: SocketAddr, subject: &str, size: usize) -> Result<Self> {
        let mut conn = Conn::connect(addr)?;
        conn.round_trip(Duration::from_secs(10))?;
        let frame = proto::pub_frame(subject, None, &proto::payload(size));
        let per_batch = (BATCH_BYTES / frame.len()).max(1);
        let mut batch = Vec::with_capacity(per_batch * frame.len() + PING.len());
        for _ in 0..per_batch {
            batch.extend_from_slice(&frame);
        }
        batch.extend_from_slice(PING);
        Ok(Self {
            conn,
            frame_len: frame.len(),
            per_batch,
            batch,
        })
    }

    /// Publishes until `limit` (or `abort`) and waits for the last PONG.
    pub fn run(&mut self, limit: Limit, abort: &AtomicBool) -> Result<Published> {
        let start = Instant::now();
        let mut sent: u64 = 0;
        let mut outstanding = 0usize;
        loop {
            if abort.load(Ordering::Relaxed) {
                bail!("publisher aborted");
            }
            let k = match limit {
                Limit::Msgs(n) => (n - sent).min(self.per_batch as u64) as usize,
                Limit::Time(d) => {
                    if start.elapsed() >= d {
                        0
                    } else {
                        self.per_batch
                    }
                }
            };
            if k == 0 {
                break;
            }
            if k == self.per_batch {
                self.conn.sock.write_all(&self.batch).context("publish")?;
            } else {
                let frames = &self.batch[..k * self.frame_len];
                self.conn.sock.write_all(frames).context("publish")?;
                self.conn.sock.write_all(PING).context("publish")?;
            }
            sent += k as u64;
            outstanding += 1;
            while outstanding > WINDOW {
                outstanding -= self.read_pongs()?;
            }
        }
        while outstanding > 0 {
            outstanding -= self.read_pongs()?.min(outstanding);
        }
        Ok(Published {
            msgs: sent,
            elapsed: start.elapsed(),
        })
    }

    /// Blocks for one read and returns the number of PONGs it carried.
    fn read_pongs(&mut self) -> Result<usize> {
        self.conn.fill()?;
        let mut pongs = 0;
        let mut ping = false;
        while let Some(f) = self.conn.scan.next_frame()? {
            match f {
                Frame::Pong => pongs += 1,
                Frame::Ping => ping = true,
                Frame::Err(e) => bail!("server error: {}", String::from_utf8_lossy(e)),
                _ => {}
            }
        }
        if ping {
            self.conn.sock.write_all(PONG).context("send PONG")?;
        }
        Ok(pongs)
    }
}
