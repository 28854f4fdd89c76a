//! A mirror or source whose origin is in another JetStream domain
//! (`external.api` names a prefix this server does not serve): as
//! nats-server does, it asks the origin's API (`<api>.CONSUMER.CREATE.<stream>`)
//! for an ephemeral push consumer (ack none, flow control, 1 s heartbeats)
//! that delivers to an inbox of ours. A mirror stores each message at the
//! origin's sequence (taken from its `$JS.ACK` reply); a source stores it
//! with a new sequence and the `Nats-Stream-Source` header it resumes from.
//! A gap, a silent origin or a failed request starts a new consumer from the
//! next missing sequence.

use std::sync::{Arc, Weak};
use std::time::Duration;

use rnats_core::router::Message;
use rnats_core::subscription::{InternalHandler, SubRef};
use tokio::sync::mpsc;

use super::{Kind, Link, Origin, Stream};

/// How long without a message or heartbeat before the consumer is
/// considered lost (nats-server: a few heartbeats).
const SILENCE: Duration = Duration::from_secs(3);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
const RETRY: Duration = Duration::from_secs(1);

/// A message as the internal subscriptions hand it over.
struct Owned {
    subject: String,
    reply: Option<String>,
    headers: Vec<u8>,
    payload: Vec<u8>,
}

struct Forward(mpsc::UnboundedSender<Owned>);

impl InternalHandler for Forward {
    fn deliver(&self, msg: &Message<'_>) {
        let _ = self.0.send(Owned {
            subject: String::from_utf8_lossy(msg.subject).into_owned(),
            reply: msg.reply.map(|r| String::from_utf8_lossy(r).into_owned()),
            headers: msg.headers.map(<[u8]>::to_vec).unwrap_or_default(),
            payload: msg.payload.to_vec(),
        });
    }
}

/// A random token of letters and digits for inbox and consumer names.
fn token(n: usize) -> String {
    const ALPHA: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    (0..n)
        .map(|_| ALPHA[fastrand::usize(..ALPHA.len())] as char)
        .collect()
}

/// Runs until the stream goes away (the task is aborted on reconfigure).
pub(super) async fn run(target: Weak<Stream>, link: Arc<Link>) {
    loop {
        let ended = once(&target, &link).await;
        if ended.is_none() {
            return;
        }
        tokio::time::sleep(RETRY).await;
    }
}

/// One consumer's life. `None`: the target stream is gone.
async fn once(target: &Weak<Stream>, link: &Link) -> Option<()> {
    let (server, account, start) = {
        let t = target.upgrade()?;
        let start = match link.kind {
            Kind::Mirror => t.store.state().last_seq + 1,
            Kind::Source => {
                if link.state.lock().sseq == 0 {
                    super::recover_position(&t, link);
                }
                match link.state.lock().sseq {
                    0 => link.cfg.opt_start_seq.max(1),
                    copied => copied + 1,
                }
            }
        };
        (t.server()?, t.account.clone(), start)
    };
    let api = link
        .cfg
        .external
        .as_ref()
        .map(|e| e.api.trim_end_matches('.').to_string())?;
    let deliver = format!("$JS.M.{}", token(22));
    let inbox = format!("$JSC.R.{}", token(22));
    let (tx, mut rx) = mpsc::unbounded_channel();
    let (rtx, mut rrx) = mpsc::unbounded_channel();
    let mut subs: Vec<SubRef> = Vec::new();
    let cleanup = |subs: &mut Vec<SubRef>| {
        server.remove_subscriptions(subs);
        subs.clear();
    };
    match server.subscribe_internal_in(&account, &deliver, None, Arc::new(Forward(tx))) {
        Ok(s) => subs.push(s),
        Err(_) => return Some(()),
    }
    match server.subscribe_internal_in(&account, &inbox, None, Arc::new(Forward(rtx))) {
        Ok(s) => subs.push(s),
        Err(_) => {
            cleanup(&mut subs);
            return Some(());
        }
    }
    let mut config = serde_json::json!({
        "name": format!("JS_MIRROR_{}", token(8)),
        "ack_policy": "none",
        "max_deliver": 1,
        "replay_policy": "instant",
        "flow_control": true,
        "deliver_subject": deliver,
        "idle_heartbeat": 1_000_000_000u64,
        "inactive_threshold": 10_000_000_000u64,
        "num_replicas": 0,
        "direct": true,
        "sourcing": true,
    });
    if start > 1 {
        config["deliver_policy"] = "by_start_sequence".into();
        config["opt_start_seq"] = start.into();
    } else {
        config["deliver_policy"] = "all".into();
    }
    if link.scan_filter() != ">" {
        config["filter_subject"] = link.scan_filter().into();
    }
    let body = serde_json::json!({ "stream_name": link.cfg.name, "config": config });
    let subject = format!("{api}.CONSUMER.CREATE.{}", link.cfg.name);
    server.publish_in(
        &account,
        subject.as_bytes(),
        Some(inbox.as_bytes()),
        None,
        body.to_string().as_bytes(),
    );
    let created = match tokio::time::timeout(REQUEST_TIMEOUT, rrx.recv()).await {
        Ok(Some(r)) => serde_json::from_slice::<serde_json::Value>(&r.payload)
            .ok()
            .filter(|v| v.get("error").is_none()),
        _ => None,
    };
    if created.is_none() {
        cleanup(&mut subs);
        return Some(());
    }
    link.touch();
    let mut next = start;
    loop {
        let m = match tokio::time::timeout(SILENCE, rx.recv()).await {
            Ok(Some(m)) => m,
            _ => break,
        };
        link.touch();
        if m.headers.starts_with(b"NATS/1.0 100") {
            // Flow control asks for an answer; a heartbeat does not.
            if let Some(reply) = &m.reply {
                server.publish_in(&account, reply.as_bytes(), None, None, b"");
            }
            continue;
        }
        let Some((sseq, ts, pending)) = m.reply.as_deref().and_then(ack_info) else {
            continue;
        };
        if sseq < next {
            continue;
        }
        let t = target.upgrade()?;
        let Some(subject) = link.map_subject(&m.subject) else {
            next = sseq + 1;
            continue;
        };
        let stored = match link.kind {
            Kind::Mirror => t.apply_sourced(
                &subject,
                &m.headers,
                &m.payload,
                Origin::Mirror { seq: sseq, ts },
            ),
            Kind::Source => {
                let (name, src, dest) = super::split_iname(&link.iname);
                let ident = link.state.lock().ident.clone();
                let mut value = format!("{name} {sseq} {src} {dest} {}", m.subject);
                if !ident.is_empty() {
                    value.push(' ');
                    value.push_str(&ident);
                }
                let hdrs = super::source_headers(&m.headers, &value);
                t.apply_sourced(&subject, &hdrs, &m.payload, Origin::Source)
            }
        };
        if stored.is_err() {
            break;
        }
        next = sseq + 1;
        let mut st = link.state.lock();
        st.sseq = sseq;
        st.lag = pending;
        st.error = None;
    }
    cleanup(&mut subs);
    Some(())
}

/// (stream sequence, timestamp, pending) from a `$JS.ACK` reply, in its
/// old (9 tokens) or new (with domain and account hash) form.
fn ack_info(reply: &str) -> Option<(u64, i64, u64)> {
    let t: Vec<&str> = reply.split('.').collect();
    let (sseq, ts, pending) = match t.len() {
        9 => (t[5], t[7], t[8]),
        n if n >= 11 => (t[7], t[9], t[10]),
        _ => return None,
    };
    Some((sseq.parse().ok()?, ts.parse().ok()?, pending.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::ack_info;

    #[test]
    fn ack_reply_forms() {
        assert_eq!(ack_info("$JS.ACK.S.C.1.7.1.1700.3"), Some((7, 1700, 3)));
        assert_eq!(
            ack_info("$JS.ACK.HUB.ACCHASH.S.C.1.9.2.1800.0.rand"),
            Some((9, 1800, 0))
        );
        assert_eq!(ack_info("$JS.ACK.S"), None);
    }
}
