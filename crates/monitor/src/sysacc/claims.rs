//! The account-JWT services of a `full`/`cache` directory resolver in
//! operator mode, what `nsc push` / `nats auth account push` talk to:
//!
//! - `$SYS.REQ.CLAIMS.UPDATE` and `$SYS.REQ.ACCOUNT.<acc>.CLAIMS.UPDATE`
//!   (and the old `$SYS.ACCOUNT.<acc>.CLAIMS.UPDATE`): a new or updated
//!   account JWT, checked against the operator, stored in the directory;
//!   live connections of users it revokes are closed.
//! - `$SYS.REQ.ACCOUNT.<acc>.CLAIMS.LOOKUP`: the stored JWT, bare (an empty
//!   reply when there is none).
//! - `$SYS.REQ.CLAIMS.LIST`: every stored account's public key.
//! - `$SYS.REQ.CLAIMS.DELETE`: only with `allow_delete`, a JWT self-signed by
//!   an operator key listing the accounts to delete.
//!
//! Answers use nats-server's `ServerAPIClaimUpdateResponse` shape.

use serde::{Deserialize, Serialize};

use super::Sys;
use crate::go_json;
use rnats_core::client::CloseReason;
use rnats_core::jwt::claims::AccountNats;
use rnats_core::server::ServerState;

/// Which claims service a subscription serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClaimsRoute {
    /// `$SYS.REQ.CLAIMS.UPDATE`: the account is the JWT's subject.
    Update,
    /// The per-account subjects: the account token must match the JWT.
    UpdateFor,
    Lookup,
    List,
    Delete,
}

/// The subjects served, with their routes.
pub const SUBJECTS: [(&str, ClaimsRoute); 6] = [
    ("$SYS.REQ.CLAIMS.UPDATE", ClaimsRoute::Update),
    ("$SYS.REQ.ACCOUNT.*.CLAIMS.UPDATE", ClaimsRoute::UpdateFor),
    ("$SYS.ACCOUNT.*.CLAIMS.UPDATE", ClaimsRoute::UpdateFor),
    ("$SYS.REQ.ACCOUNT.*.CLAIMS.LOOKUP", ClaimsRoute::Lookup),
    ("$SYS.REQ.CLAIMS.LIST", ClaimsRoute::List),
    ("$SYS.REQ.CLAIMS.DELETE", ClaimsRoute::Delete),
];

/// Whether this server answers the claims services (operator mode with a
/// directory resolver, as nats-server's `full` resolver).
pub fn enabled(state: &ServerState) -> bool {
    state
        .operator
        .as_ref()
        .is_some_and(|op| op.resolver.is_dir())
}

#[derive(Serialize)]
struct Status<'a> {
    #[serde(skip_serializing_if = "str::is_empty")]
    account: &'a str,
    code: u16,
    #[serde(skip_serializing_if = "str::is_empty")]
    message: &'a str,
}

#[derive(Serialize)]
struct Failure<'a> {
    #[serde(skip_serializing_if = "str::is_empty")]
    account: &'a str,
    code: u16,
    #[serde(skip_serializing_if = "String::is_empty")]
    description: String,
}

#[derive(Serialize)]
struct Response<'a> {
    server: super::envelope::SysServerInfo,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<Status<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<Failure<'a>>,
}

/// What an update or delete ended with: (account, message) or
/// (account, message, error).
type Outcome = Result<(String, String), (String, String, String)>;

fn ok(account: &str, message: impl Into<String>) -> Outcome {
    Ok((account.to_string(), message.into()))
}

fn fail(account: &str, message: &str, err: impl std::fmt::Display) -> Outcome {
    Err((account.to_string(), message.to_string(), err.to_string()))
}

impl Sys {
    fn answer_claims(&self, state: &ServerState, reply: &str, result: Outcome) {
        let response = match &result {
            Ok((account, message)) => {
                let (account, message) = (account.as_str(), message.as_str());
                tracing::debug!("{message} - {account}");
                Response {
                    server: self.server_info(state),
                    data: Some(Status {
                        account,
                        code: 200,
                        message,
                    }),
                    error: None,
                }
            }
            Err((account, message, err)) => {
                let account = account.as_str();
                tracing::error!("{message} - {account} - {err}");
                Response {
                    server: self.server_info(state),
                    data: None,
                    error: Some(Failure {
                        account,
                        code: 500,
                        description: format!("{message} - {err}"),
                    }),
                }
            }
        };
        self.publish(state, reply, None, go_json(&response).as_bytes());
    }

    pub(super) fn handle_claims(
        &self,
        state: &ServerState,
        route: ClaimsRoute,
        subject: &str,
        reply: Option<&str>,
        body: &[u8],
    ) {
        // `$SYS.REQ.ACCOUNT.<acc>.CLAIMS.*` / `$SYS.ACCOUNT.<acc>.CLAIMS.UPDATE`.
        let tokens: Vec<&str> = subject.split('.').collect();
        let named = match tokens.as_slice() {
            [_, "REQ", "ACCOUNT", acc, _, _] | [_, "ACCOUNT", acc, _, _] => Some(*acc),
            _ => None,
        };
        let body = String::from_utf8_lossy(body);
        let body = body.trim();
        match route {
            ClaimsRoute::Update | ClaimsRoute::UpdateFor => {
                let result = update(
                    state,
                    named.filter(|_| route == ClaimsRoute::UpdateFor),
                    body,
                );
                if let Some(r) = reply {
                    self.answer_claims(state, r, result);
                }
            }
            ClaimsRoute::Lookup => {
                let (Some(r), Some(acc)) = (reply, named) else {
                    return;
                };
                let jwt = resolver_of(state).and_then(|res| res.fetch(acc));
                self.publish(state, r, None, jwt.unwrap_or_default().as_bytes());
            }
            ClaimsRoute::List => {
                let Some(r) = reply else { return };
                #[derive(Serialize)]
                struct List {
                    server: super::envelope::SysServerInfo,
                    data: Vec<String>,
                }
                let data = resolver_of(state)
                    .map(|res| res.accounts())
                    .unwrap_or_default();
                let list = List {
                    server: self.server_info(state),
                    data,
                };
                self.publish(state, r, None, go_json(&list).as_bytes());
            }
            ClaimsRoute::Delete => {
                let result = delete(state, body);
                if let Some(r) = reply {
                    self.answer_claims(state, r, result);
                }
            }
        }
    }
}

fn resolver_of(state: &ServerState) -> Option<&rnats_core::jwt::Resolver> {
    state.operator.as_ref().map(|op| &op.resolver)
}

/// Checks, stores and applies an account JWT.
fn update(state: &ServerState, named: Option<&str>, jwt: &str) -> Outcome {
    let Some(op) = state.operator.as_ref() else {
        return fail(
            "n/a",
            "jwt update resulted in error",
            "not in operator mode",
        );
    };
    let claims = match rnats_core::jwt::decode::<AccountNats>(jwt) {
        Ok(c) => c,
        Err(e) => return fail(named.unwrap_or("n/a"), "jwt update resulted in error", e),
    };
    let account = named.unwrap_or(&claims.sub);
    if let Some(n) = named {
        if n != claims.sub {
            return fail(
                account,
                "jwt update resulted in error",
                "subject does not match jwt content",
            );
        }
    }
    let claims = match op.trust.verify_account(jwt) {
        Ok(c) => c,
        Err(e) => return fail(account, "jwt validation failed", e),
    };
    if let Err(e) = op.resolver.store(&claims.sub, jwt) {
        return fail(account, "jwt update resulted in error", e);
    }
    apply_revocations(state, &claims);
    ok(account, "jwt updated")
}

/// Closes the live connections of users the new account JWT revokes.
fn apply_revocations(state: &ServerState, claims: &rnats_core::jwt::claims::AccountClaims) {
    let Some(account) = state.accounts.get(&claims.sub) else {
        return;
    };
    if claims.nats.revocations.is_empty() {
        return;
    }
    for c in crate::misc::account_clients(state, &account) {
        let revoked = c
            .meta
            .lock()
            .jwt_user
            .as_ref()
            .is_some_and(|(key, iat)| claims.nats.revoked(key, *iat));
        if revoked {
            tracing::debug!("{} - User Authentication Revoked", c.log_prefix());
            c.out.send_now(b"-ERR 'User Authentication Revoked'\r\n");
            c.close(CloseReason::Revocation);
        }
    }
}

/// The body of a delete request: a generic JWT whose `data.accounts` lists
/// the accounts.
#[derive(Deserialize, Default)]
struct DeleteData {
    #[serde(default)]
    accounts: Option<serde_json::Value>,
}

fn delete(state: &ServerState, jwt: &str) -> Outcome {
    let Some(op) = state.operator.as_ref() else {
        return fail("", "delete accounts request failed", "not in operator mode");
    };
    let generic = match rnats_core::jwt::decode::<serde_json::Value>(jwt) {
        Ok(c) => c,
        Err(e) => return fail("", "delete accounts request by  failed", e),
    };
    let by = format!("delete accounts request by {} failed", generic.sub);
    // nats-server's generic claims keep their data under `nats`.
    let data: DeleteData = serde_json::from_value(generic.nats.clone()).unwrap_or_default();
    let system = state.accounts.system().name.clone();
    let accounts: std::result::Result<Vec<String>, &str> = if !op.resolver.allow_delete {
        Err("delete must be enabled in server config")
    } else if generic.sub != generic.iss {
        Err("not self signed")
    } else if !op.trust.keys.contains(&generic.iss) {
        Err("not trusted")
    } else {
        match data.accounts {
            Some(serde_json::Value::Array(list)) => list
                .iter()
                .map(|v| match v.as_str() {
                    Some(a) if a == system => Err("not allowed to delete system account"),
                    Some(a) if a.starts_with('A') && nkeys::KeyPair::from_public_key(a).is_ok() => {
                        Ok(a.to_string())
                    }
                    _ => Err("malformed request"),
                })
                .collect(),
            _ => Err("malformed request"),
        }
    };
    let accounts = match accounts {
        Ok(a) => a,
        Err(e) => return fail("", &by, e),
    };
    let mut errors = Vec::new();
    for a in &accounts {
        if let Err(e) = op.resolver.delete(a) {
            errors.push(e.to_string());
        }
    }
    let passed = accounts.len() - errors.len();
    if errors.is_empty() {
        ok("", format!("deleted {passed} accounts"))
    } else {
        fail(
            "",
            &format!("deleted {passed} accounts, failed for {}", errors.len()),
            errors.join("\n"),
        )
    }
}
