//! Per-user publish/subscribe permissions: the configured form
//! ([`Permissions`]) and the compiled form a connection checks against
//! ([`CompiledPerms`], sublists of allowed and denied subjects), plus the
//! per-connection publish cache ([`PubCache`]) that keeps repeated checks off
//! the sublists, as nats-server's perm cache does.

use std::time::Duration;

use ahash::AHashMap;
use rnats_subject::Sublist;

/// `allow`/`deny` lists for one direction. `allow: None` means everything is
/// allowed (unless denied); `Some(vec![])` allows nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SubjectPermission {
    pub allow: Option<Vec<String>>,
    pub deny: Vec<String>,
}

/// `allow_responses`: a client may publish to the reply subject of a request
/// it received, `max_msgs` times within `expires` (negative/zero durations
/// and counts mean unlimited, as in nats-server).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResponsePermission {
    pub max_msgs: i64,
    pub expires: Option<Duration>,
}

impl Default for ResponsePermission {
    /// nats-server's defaults: one response within two minutes.
    fn default() -> Self {
        ResponsePermission {
            max_msgs: 1,
            expires: Some(Duration::from_secs(120)),
        }
    }
}

/// A user's `permissions { publish, subscribe, allow_responses }`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Permissions {
    pub publish: Option<SubjectPermission>,
    /// Entries may carry a queue group: `"foo.> workers"`.
    pub subscribe: Option<SubjectPermission>,
    pub response: Option<ResponsePermission>,
}

/// Splits `"subject queue"` (a subscribe permission entry) in two.
pub fn split_subject_queue(entry: &str) -> Option<(&str, Option<&str>)> {
    let mut parts = entry.split_whitespace();
    let subject = parts.next()?;
    let queue = parts.next();
    if parts.next().is_some() {
        return None;
    }
    let valid = |s: &str| rnats_subject::is_valid_subject(s.as_bytes());
    (valid(subject) && queue.is_none_or(valid)).then_some((subject, queue))
}

/// Subject sets compiled from [`Permissions`] for fast matching.
pub struct CompiledPerms {
    pub_allow: Option<Sublist<()>>,
    pub_deny: Option<Sublist<()>>,
    sub_allow: Option<Sublist<()>>,
    sub_deny: Option<Sublist<()>>,
    /// The raw subscribe deny entries, to decide whether a wildcard or queue
    /// subscription needs filtering at delivery time.
    sub_deny_entries: Vec<Box<[u8]>>,
    pub response: Option<ResponsePermission>,
}

fn sublist<'a>(entries: impl IntoIterator<Item = &'a str>, queues: bool) -> Sublist<()> {
    let mut sl = Sublist::new();
    for e in entries {
        let (subject, queue) = if queues {
            match split_subject_queue(e) {
                Some(sq) => sq,
                None => continue,
            }
        } else {
            (e, None)
        };
        // Entries were validated when the config was parsed.
        let _ = sl.insert(subject.as_bytes(), queue.map(str::as_bytes), ());
    }
    sl
}

impl CompiledPerms {
    pub fn new(p: &Permissions) -> Self {
        let publish = p.publish.as_ref();
        let subscribe = p.subscribe.as_ref();
        let deny = |sp: Option<&SubjectPermission>, queues| {
            sp.filter(|sp| !sp.deny.is_empty())
                .map(|sp| sublist(sp.deny.iter().map(String::as_str), queues))
        };
        CompiledPerms {
            pub_allow: publish
                .and_then(|sp| sp.allow.as_ref())
                .map(|a| sublist(a.iter().map(String::as_str), false)),
            pub_deny: deny(publish, false),
            sub_allow: subscribe
                .and_then(|sp| sp.allow.as_ref())
                .filter(|a| !a.is_empty())
                .map(|a| sublist(a.iter().map(String::as_str), true)),
            sub_deny: deny(subscribe, true),
            sub_deny_entries: subscribe
                .map(|sp| {
                    sp.deny
                        .iter()
                        .filter_map(|e| split_subject_queue(e))
                        .map(|(s, _)| s.as_bytes().into())
                        .collect()
                })
                .unwrap_or_default(),
            response: p.response,
        }
    }

    /// Whether publish permissions restrict anything at all.
    pub fn restricts_publish(&self) -> bool {
        self.pub_allow.is_some() || self.pub_deny.is_some()
    }

    /// The static publish check (allow, then deny), without response grants.
    pub fn publish_allowed(&self, subject: &[u8]) -> bool {
        let allowed = self
            .pub_allow
            .as_ref()
            .is_none_or(|a| !a.matches(subject).psubs.is_empty());
        allowed
            && self
                .pub_deny
                .as_ref()
                .is_none_or(|d| d.matches(subject).psubs.is_empty())
    }

    /// nats-server's `canSubscribe`: a plain allow entry admits any queue; a
    /// queue-qualified entry admits only that queue (wildcards allowed in the
    /// queue name); deny entries work the same way in reverse.
    pub fn subscribe_allowed(&self, subject: &[u8], queue: Option<&[u8]>) -> bool {
        let mut allowed = true;
        if let Some(allow) = &self.sub_allow {
            let r = allow.matches(subject);
            allowed = !r.psubs.is_empty();
            if let Some(q) = queue.filter(|_| !r.qsubs.is_empty()) {
                allowed = queue_matches(q, &r.qsubs);
            }
        }
        if allowed {
            if let Some(deny) = &self.sub_deny {
                let r = deny.matches(subject);
                allowed = r.psubs.is_empty();
                if let Some(q) = queue.filter(|_| allowed && !r.qsubs.is_empty()) {
                    allowed = !queue_matches(q, &r.qsubs);
                }
            }
        }
        allowed
    }

    /// Whether a subscription on `subject` can receive messages a deny entry
    /// forbids (a wildcard or queue subscription overlapping the deny list),
    /// so deliveries to it must be filtered.
    pub fn needs_delivery_filter(&self, subject: &[u8], queue: bool) -> bool {
        (queue || !rnats_subject::is_literal(subject))
            && self
                .sub_deny_entries
                .iter()
                .any(|d| rnats_subject::overlaps(d, subject))
    }

    /// The delivery-time check for a filtered subscription.
    pub fn delivery_denied(&self, subject: &[u8], queue: Option<&[u8]>) -> bool {
        let Some(deny) = &self.sub_deny else {
            return false;
        };
        let r = deny.matches(subject);
        if !r.psubs.is_empty() {
            return true;
        }
        queue.is_some_and(|q| !r.qsubs.is_empty() && queue_matches(q, &r.qsubs))
    }
}

fn queue_matches(queue: &[u8], groups: &[rnats_subject::QueueGroup<()>]) -> bool {
    groups.iter().any(|g| {
        *g.name == *queue
            || (!rnats_subject::is_literal(&g.name) && rnats_subject::is_subset(queue, &g.name))
    })
}

/// Bound on cached publish decisions per connection (nats-server: 128, pruned
/// by 32 at a time; here the cache simply restarts).
const PUB_CACHE_MAX: usize = 128;

/// A connection's remembered publish decisions.
#[derive(Default)]
pub struct PubCache(AHashMap<Box<[u8]>, bool>);

impl PubCache {
    pub fn check(&mut self, perms: &CompiledPerms, subject: &[u8]) -> bool {
        if let Some(&ok) = self.0.get(subject) {
            return ok;
        }
        let ok = perms.publish_allowed(subject);
        if self.0.len() >= PUB_CACHE_MAX {
            self.0.clear();
        }
        self.0.insert(subject.into(), ok);
        ok
    }

    pub fn clear(&mut self) {
        self.0.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sp(allow: Option<&[&str]>, deny: &[&str]) -> Option<SubjectPermission> {
        Some(SubjectPermission {
            allow: allow.map(|a| a.iter().map(|s| s.to_string()).collect()),
            deny: deny.iter().map(|s| s.to_string()).collect(),
        })
    }

    #[test]
    fn publish_allow_then_deny() {
        let p = CompiledPerms::new(&Permissions {
            publish: sp(Some(&["a.>"]), &["a.no", "a.*.x"]),
            ..Default::default()
        });
        assert!(p.publish_allowed(b"a.b"));
        assert!(p.publish_allowed(b"a.b.c"));
        assert!(!p.publish_allowed(b"a.no"));
        assert!(!p.publish_allowed(b"a.q.x"));
        assert!(!p.publish_allowed(b"b"));
        let deny_only = CompiledPerms::new(&Permissions {
            publish: sp(None, &["secret.>"]),
            ..Default::default()
        });
        assert!(deny_only.publish_allowed(b"anything"));
        assert!(!deny_only.publish_allowed(b"secret.x"));
        let mut cache = PubCache::default();
        assert!(!cache.check(&deny_only, b"secret.x"));
        assert!(!cache.check(&deny_only, b"secret.x"));
        assert!(cache.check(&deny_only, b"ok"));
    }

    #[test]
    fn subscribe_with_queues() {
        let p = CompiledPerms::new(&Permissions {
            subscribe: sp(
                Some(&["a.>", "q.> grp", "w.> v1.*"]),
                &["a.secret", "a.x bad"],
            ),
            ..Default::default()
        });
        assert!(p.subscribe_allowed(b"a.b", None));
        assert!(p.subscribe_allowed(b"a.b", Some(b"any")));
        assert!(!p.subscribe_allowed(b"a.secret", None));
        assert!(!p.subscribe_allowed(b"a.secret", Some(b"grp")));
        assert!(p.subscribe_allowed(b"a.x", None));
        assert!(!p.subscribe_allowed(b"a.x", Some(b"bad")));
        assert!(p.subscribe_allowed(b"a.x", Some(b"good")));
        assert!(!p.subscribe_allowed(b"q.x", None));
        assert!(p.subscribe_allowed(b"q.x", Some(b"grp")));
        assert!(!p.subscribe_allowed(b"q.x", Some(b"other")));
        assert!(p.subscribe_allowed(b"w.x", Some(b"v1.blue")));
        assert!(!p.subscribe_allowed(b"w.x", Some(b"v2.blue")));
        assert!(!p.subscribe_allowed(b"b", None));
        assert!(p.needs_delivery_filter(b"a.*", false));
        assert!(!p.needs_delivery_filter(b"a.b", false));
        assert!(p.delivery_denied(b"a.secret", None));
        assert!(!p.delivery_denied(b"a.other", None));
        assert!(p.delivery_denied(b"a.x", Some(b"bad")));
        assert!(!p.delivery_denied(b"a.x", None));
    }

    #[test]
    fn split_entries() {
        assert_eq!(split_subject_queue("foo.> q"), Some(("foo.>", Some("q"))));
        assert_eq!(split_subject_queue("  foo  "), Some(("foo", None)));
        assert_eq!(split_subject_queue("a b c"), None);
        assert_eq!(split_subject_queue("a..b"), None);
        assert_eq!(split_subject_queue(""), None);
    }
}
