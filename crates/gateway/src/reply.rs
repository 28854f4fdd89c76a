//! Reply routing across clusters, as nats-server: a request whose reply
//! subject has a *recent* subscription (made in the last 2 s, which the
//! remote cluster may not know of yet) leaves with the reply mapped to
//! `_GR_.<our cluster hash>.<our server hash>.<reply>`; a message on such a
//! subject goes straight to the gateway of that cluster, which strips the
//! prefix and delivers it.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

/// nats-server's `defaultGatewayRecentSubExpiration`.
const RECENT: Duration = Duration::from_secs(2);

/// `_GR_.` + 6 + `.` + 6 + `.`
pub const SUBJECT_OFFSET: usize = 19;

/// A subscription's account, subject and when it was made.
type RecentSub = (String, Box<[u8]>, Instant);

/// Subscriptions made in the last two seconds, per account.
#[derive(Default)]
pub struct Recent {
    len: AtomicUsize,
    subs: Mutex<Vec<RecentSub>>,
}

impl Recent {
    pub fn add(&self, account: &str, subject: &[u8]) {
        let mut s = self.subs.lock();
        let now = Instant::now();
        s.retain(|(_, _, t)| now.duration_since(*t) < RECENT);
        s.push((account.to_string(), subject.into(), now));
        self.len.store(s.len(), Ordering::Relaxed);
    }

    /// Whether `reply` matches a recent subscription in `account`.
    pub fn matches(&self, account: &str, reply: &[u8]) -> bool {
        if self.len.load(Ordering::Relaxed) == 0 {
            return false;
        }
        let mut s = self.subs.lock();
        let now = Instant::now();
        s.retain(|(_, _, t)| now.duration_since(*t) < RECENT);
        self.len.store(s.len(), Ordering::Relaxed);
        s.iter()
            .any(|(a, subj, _)| a == account && rnats_subject::matches(subj, reply))
    }
}

/// A `_GR_.<cluster>.<server>.<subject>` subject: (cluster hash, server
/// hash, subject).
pub fn split(subject: &[u8]) -> Option<(&[u8], &[u8], &[u8])> {
    if subject.len() <= SUBJECT_OFFSET || !subject.starts_with(b"_GR_.") {
        return None;
    }
    Some((
        &subject[5..11],
        &subject[12..18],
        &subject[SUBJECT_OFFSET..],
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_routed_reply() {
        let (c, s, subj) = split(b"_GR_.abcdef.123456._INBOX.x").unwrap();
        assert_eq!(
            (c, s, subj),
            (&b"abcdef"[..], &b"123456"[..], &b"_INBOX.x"[..])
        );
        assert!(split(b"_GR_.abc").is_none());
        assert!(split(b"_INBOX.abcdefghijklmnopqrs").is_none());
    }

    #[test]
    fn recent_subscriptions_match_replies() {
        let r = Recent::default();
        assert!(!r.matches("$G", b"_INBOX.a.b"));
        r.add("$G", b"_INBOX.a.*");
        assert!(r.matches("$G", b"_INBOX.a.b"));
        assert!(!r.matches("B", b"_INBOX.a.b"));
    }
}
