//! The write side of a connection: waits for the outbound buffer to be
//! signalled, writes everything pending in one go, and runs the keep-alive
//! (PING every `ping_interval`, `Stale Connection` after `ping_max` unanswered)
//! and the authentication deadline. Ends when the connection closes.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::time::{interval_at, sleep, Instant, MissedTickBehavior};

use super::outbound::Take;
use super::{ClientShared, CloseReason};
use rnats_proto::encode;

pub struct WriterConfig {
    pub ping_interval: Duration,
    pub ping_max: u32,
    pub write_deadline: Duration,
    /// Set when authentication is required: CONNECT must arrive in time.
    pub auth_timeout: Option<Duration>,
}

/// Buffers above this size are dropped after use rather than kept around.
const KEEP_CAPACITY: usize = 1 << 20;

/// Runs until the connection closes; returns why it closed.
pub async fn run<W: AsyncWrite + Unpin>(
    client: Arc<ClientShared>,
    mut sock: W,
    cfg: WriterConfig,
) -> CloseReason {
    let mut chunk = BytesMut::new();
    let mut pings = interval_at(Instant::now() + cfg.ping_interval, cfg.ping_interval);
    pings.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let auth_deadline = sleep(cfg.auth_timeout.unwrap_or(Duration::MAX / 4));
    tokio::pin!(auth_deadline);
    let mut auth_pending = cfg.auth_timeout.is_some();

    loop {
        tokio::select! {
            _ = client.out.wait() => {}
            _ = pings.tick() => keep_alive(&client, &cfg),
            _ = &mut auth_deadline, if auth_pending => {
                auth_pending = false;
                if !client.connected.load(Ordering::Acquire) {
                    tracing::debug!("{} - Authentication Timeout", client.log_prefix());
                    client.out.send_now(b"-ERR 'Authentication Timeout'\r\n");
                    client.close(CloseReason::AuthenticationTimeout);
                }
            }
        }
        loop {
            match client.out.take(&mut chunk) {
                Take::Closed(reason) => {
                    let _ = sock.shutdown().await;
                    client.stop_reading.notify_one();
                    return reason;
                }
                Take::Data if chunk.is_empty() => break,
                Take::Data => {}
            }
            let len = chunk.len();
            match tokio::time::timeout(cfg.write_deadline, sock.write_all(&chunk)).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => {
                    client.close(CloseReason::WriteError);
                    return CloseReason::WriteError;
                }
                Err(_) => {
                    tracing::info!(
                        "{} - Slow Consumer Detected: WriteDeadline of {:?} exceeded with {} total bytes.",
                        client.log_prefix(),
                        cfg.write_deadline,
                        len
                    );
                    client.close(CloseReason::SlowConsumerWriteDeadline);
                    return CloseReason::SlowConsumerWriteDeadline;
                }
            }
            client.out.written();
            if chunk.capacity() > KEEP_CAPACITY {
                chunk = BytesMut::new();
            } else {
                chunk.clear();
            }
        }
    }
}

/// One keep-alive tick: skip while the client is active and answering,
/// otherwise PING, and give up after `ping_max` unanswered PINGs.
fn keep_alive(client: &ClientShared, cfg: &WriterConfig) {
    let now_ms = client.started.elapsed().as_millis() as u64;
    let last_in = client.last_in_ms.load(Ordering::Relaxed);
    let out = client.pings_out.load(Ordering::Relaxed);
    let recently_active = now_ms.saturating_sub(last_in) < cfg.ping_interval.as_millis() as u64;
    if recently_active && out == 0 && client.connected.load(Ordering::Relaxed) {
        return;
    }
    if out + 1 > cfg.ping_max {
        tracing::debug!(
            "{} - Stale Client Connection - Closing",
            client.log_prefix()
        );
        client.out.send_now(b"-ERR 'Stale Connection'\r\n");
        client.close(CloseReason::StaleConnection);
        return;
    }
    client.pings_out.fetch_add(1, Ordering::Relaxed);
    client.out.send_now(encode::PING);
}
