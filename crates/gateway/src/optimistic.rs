//! The sending side's view of a remote cluster's interest per account when
//! the remote did not promise interest-only mode (`gateway_iom` absent, as
//! servers before nats-server 2.9): *optimistic* — send everything except
//! the subjects the remote answered `RS-` for (or nothing of an account it
//! sent `A-` for) — until the remote switches the account with `INFO`
//! `gateway_cmd` 2 (start: its `RS+`/`RS-` now build the interest) and 3
//! (complete: only explicit interest from then on). nats-server's `outsie`.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};

use parking_lot::Mutex;

/// An account's mode on one outbound connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Optimistic,
    Transitioning,
    InterestOnly,
}

impl Mode {
    /// nats-server's `GatewayInterestMode.String()`.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Optimistic => "Optimistic",
            Mode::Transitioning => "Transitioning",
            Mode::InterestOnly => "Interest-Only",
        }
    }
}

#[derive(Debug)]
struct Account {
    mode: Mode,
    /// Subjects the remote has no interest in (`RS-` while optimistic).
    ni: HashSet<Box<[u8]>>,
    /// `A-`: no interest in the whole account.
    none: bool,
}

impl Default for Account {
    fn default() -> Self {
        Account {
            mode: Mode::Optimistic,
            ni: HashSet::new(),
            none: false,
        }
    }
}

/// Per-account modes of one outbound connection.
#[derive(Default)]
pub struct Modes {
    /// The remote did not promise interest-only mode.
    pub enabled: AtomicBool,
    accounts: Mutex<HashMap<String, Account>>,
}

impl Modes {
    pub fn mode(&self, account: &str) -> Mode {
        if !self.enabled.load(Ordering::Relaxed) {
            return Mode::InterestOnly;
        }
        self.accounts
            .lock()
            .get(account)
            .map_or(Mode::Optimistic, |a| a.mode)
    }

    /// Whether a plain (no queue) message may go: optimistic sends unless
    /// told otherwise; interest-only relies on the subscriptions.
    pub fn wants(&self, account: &str, subject: &[u8]) -> bool {
        if !self.enabled.load(Ordering::Relaxed) {
            return true;
        }
        match self.accounts.lock().get(account) {
            Some(a) if a.mode != Mode::InterestOnly => !a.none && !a.ni.contains(subject),
            _ => true,
        }
    }

    /// `RS-` for a plain subject while optimistic: remember it. False if the
    /// account is not optimistic (the subscription is removed instead).
    pub fn no_interest(&self, account: &str, subject: &[u8]) -> bool {
        if !self.enabled.load(Ordering::Relaxed) {
            return false;
        }
        let mut accs = self.accounts.lock();
        let a = accs.entry(account.to_string()).or_default();
        if a.mode != Mode::Optimistic {
            return false;
        }
        a.ni.insert(subject.into());
        true
    }

    /// `RS+` for a plain subject while optimistic: forget the no-interest
    /// (for a wildcard, every subject it covers). False if not optimistic.
    pub fn interest(&self, account: &str, subject: &[u8]) -> bool {
        if !self.enabled.load(Ordering::Relaxed) {
            return false;
        }
        let mut accs = self.accounts.lock();
        let Some(a) = accs.get_mut(account) else {
            return true;
        };
        if a.mode != Mode::Optimistic {
            return false;
        }
        a.ni.retain(|s| !rnats_subject::matches(subject, s));
        true
    }

    /// `A-` / `A+`.
    pub fn account_interest(&self, account: &str, interested: bool) {
        if !self.enabled.load(Ordering::Relaxed) {
            return;
        }
        let mut accs = self.accounts.lock();
        if interested {
            if accs
                .get(account)
                .is_some_and(|a| a.mode == Mode::Optimistic)
            {
                accs.remove(account);
            }
        } else {
            let a = accs.entry(account.to_string()).or_default();
            if a.mode == Mode::Optimistic {
                a.none = true;
            }
        }
    }

    /// `gateway_cmd` 2: the remote starts sending all its interest.
    pub fn start_switch(&self, account: &str) {
        if self.enabled.load(Ordering::Relaxed) {
            self.accounts
                .lock()
                .entry(account.to_string())
                .or_default()
                .mode = Mode::Transitioning;
        }
    }

    /// `gateway_cmd` 3: explicit interest only from now on.
    pub fn complete_switch(&self, account: &str) {
        let mut accs = self.accounts.lock();
        let a = accs.entry(account.to_string()).or_default();
        a.mode = Mode::InterestOnly;
        a.ni.clear();
        a.none = false;
    }

    /// `(account, mode, no-interest count)` for `/gatewayz`.
    pub fn snapshot(&self) -> Vec<(String, Mode, usize)> {
        let mut v: Vec<(String, Mode, usize)> = self
            .accounts
            .lock()
            .iter()
            .map(|(n, a)| (n.clone(), a.mode, a.ni.len()))
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn optimistic_then_interest_only() {
        let m = Modes::default();
        m.enabled.store(true, Ordering::Relaxed);
        assert!(m.wants("$G", b"foo"));
        assert!(m.no_interest("$G", b"foo"));
        assert!(!m.wants("$G", b"foo"));
        assert!(m.wants("$G", b"bar"));
        assert!(m.interest("$G", b"*"));
        assert!(m.wants("$G", b"foo"));
        m.account_interest("$G", false);
        assert!(!m.wants("$G", b"bar"));
        m.account_interest("$G", true);
        assert!(m.wants("$G", b"bar"));
        m.start_switch("$G");
        assert_eq!(m.mode("$G"), Mode::Transitioning);
        assert!(!m.no_interest("$G", b"foo"));
        m.complete_switch("$G");
        assert_eq!(m.mode("$G"), Mode::InterestOnly);
        assert!(m.wants("$G", b"foo"));
    }
}
