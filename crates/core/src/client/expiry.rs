//! Operator mode: a connection lives only as long as its credentials. When
//! the user JWT's `exp` passes, or its account JWT's, the client gets
//! nats-server's `-ERR 'User Authentication Expired'` (or `'Account
//! Authentication Expired'`) and is closed, so it can reconnect with fresh
//! credentials instead of being served on stale ones.
//!
//! One sleeping task per connection whose credentials expire (none for the
//! rest); the connection aborts it when it ends.

use std::sync::{Arc, Weak};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::{ClientShared, CloseReason};
use crate::server::ServerState;

/// Which credential runs out first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Which {
    User,
    Account,
}

/// The earlier of two JWT expiry times (unix seconds, 0 = never).
fn first_expiry(user_exp: i64, account_exp: i64) -> Option<(i64, Which)> {
    match (user_exp > 0, account_exp > 0) {
        (false, false) => None,
        (true, false) => Some((user_exp, Which::User)),
        (false, true) => Some((account_exp, Which::Account)),
        (true, true) if account_exp < user_exp => Some((account_exp, Which::Account)),
        (true, true) => Some((user_exp, Which::User)),
    }
}

fn until(unix_secs: i64) -> Duration {
    let at = UNIX_EPOCH + Duration::from_secs(unix_secs.max(0) as u64);
    at.duration_since(SystemTime::now()).unwrap_or_default()
}

/// Starts the expiry timer of a JWT user's connection, if anything expires.
pub fn watch(
    state: &Arc<ServerState>,
    client: &Arc<ClientShared>,
    user_exp: i64,
    account_key: String,
    account_exp: i64,
) -> Option<tokio::task::JoinHandle<()>> {
    first_expiry(user_exp, account_exp)?;
    let state = Arc::downgrade(state);
    let client = Arc::downgrade(client);
    Some(tokio::spawn(run(
        state,
        client,
        user_exp,
        account_key,
        account_exp,
    )))
}

async fn run(
    state: Weak<ServerState>,
    client: Weak<ClientShared>,
    user_exp: i64,
    account_key: String,
    mut account_exp: i64,
) {
    while let Some((at, which)) = first_expiry(user_exp, account_exp) {
        tokio::time::sleep(until(at)).await;
        if which == Which::Account {
            // The account may have been renewed by a pushed JWT meanwhile.
            let renewed = state
                .upgrade()
                .and_then(|s| current_account_exp(&s, &account_key));
            if let Some(exp) = renewed.filter(|&e| e != account_exp) {
                account_exp = exp;
                continue;
            }
        }
        let Some(client) = client.upgrade() else {
            return;
        };
        let text = match which {
            Which::User => "User Authentication Expired",
            Which::Account => "Account Authentication Expired",
        };
        tracing::debug!("{} - {text}", client.log_prefix());
        client.out.send_now(format!("-ERR '{text}'\r\n").as_bytes());
        client.close(CloseReason::AuthenticationExpired);
        return;
    }
}

/// The `exp` of the account's JWT the resolver holds now (0 = never), if
/// it still verifies.
fn current_account_exp(state: &ServerState, account_key: &str) -> Option<i64> {
    let op = state.operator.as_ref()?;
    let jwt = op.resolver.fetch(account_key)?;
    op.trust.verify_account(&jwt).ok().map(|a| a.exp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_earlier_expiry_wins() {
        assert_eq!(first_expiry(0, 0), None);
        assert_eq!(first_expiry(10, 0), Some((10, Which::User)));
        assert_eq!(first_expiry(0, 7), Some((7, Which::Account)));
        assert_eq!(first_expiry(10, 7), Some((7, Which::Account)));
        assert_eq!(first_expiry(7, 10), Some((7, Which::User)));
        assert_eq!(first_expiry(7, 7), Some((7, Which::User)));
        assert_eq!(until(1), Duration::ZERO);
    }
}
