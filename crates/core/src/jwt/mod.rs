//! Decentralized (JWT) authentication, nats-server's operator mode.
//!
//! Trust flows down a chain of ed25519 nkeys: the configured operator JWT
//! (or its signing keys) signs account JWTs, an account (or its signing
//! keys) signs user JWTs, and a connecting client proves it holds the user's
//! key by signing the server's nonce. The server keeps no user list: it
//! needs the operator, and a resolver that finds account JWTs by public key.

pub mod claims;
pub mod config;
pub mod resolver;

use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use base64::Engine;
use nkeys::KeyPair;
use serde::de::DeserializeOwned;
use serde::Serialize;

pub use claims::{AccountClaims, OperatorClaims, Permissions, UserClaims};
pub use resolver::Resolver;

/// Why a JWT or a credential was refused (logged; the client only ever
/// sees "Authorization Violation").
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum JwtError {
    #[error("malformed JWT: {0}")]
    Malformed(&'static str),
    #[error("JWT signature does not verify")]
    BadSignature,
    #[error("JWT issuer {0:?} is not a valid {1} key")]
    BadIssuer(String, &'static str),
    #[error("JWT subject {0:?} is not a valid {1} key")]
    BadSubject(String, &'static str),
    #[error("{0} JWT expired or not yet valid")]
    Expired(&'static str),
    #[error("account {0} not found")]
    AccountNotFound(String),
    #[error("account JWT not issued by a trusted operator")]
    UntrustedAccount,
    #[error("user JWT issuer is not the account or one of its signing keys")]
    UntrustedUser,
    #[error("user {0} has been revoked")]
    Revoked(String),
    #[error("client did not send a JWT")]
    NoJwt,
    #[error("nonce signature missing or invalid")]
    BadNonceSignature,
    #[error("bearer tokens are not allowed")]
    BearerNotAllowed,
}

/// Tokens larger than this are refused before any decoding (nats-io/jwt's bound).
const MAX_TOKEN: usize = 1024 * 1024;

fn b64_decode(s: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD
        .decode(s)
        .or_else(|_| URL_SAFE.decode(s))
        .or_else(|_| STANDARD_NO_PAD.decode(s))
        .or_else(|_| STANDARD.decode(s))
        .ok()
}

/// Decodes a JWT and checks its signature against the issuer named in it.
/// What the issuer may sign is the caller's business.
pub fn decode<N: DeserializeOwned + Default>(token: &str) -> Result<claims::Claims<N>, JwtError> {
    let token = token.trim();
    if token.len() > MAX_TOKEN {
        return Err(JwtError::Malformed("too large"));
    }
    let mut parts = token.split('.');
    let (Some(h), Some(c), Some(sig), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(JwtError::Malformed("expected 3 chunks"));
    };
    let header = b64_decode(h).ok_or(JwtError::Malformed("header is not base64"))?;
    let header: serde_json::Value =
        serde_json::from_slice(&header).map_err(|_| JwtError::Malformed("header is not JSON"))?;
    let typ = header["typ"].as_str().unwrap_or_default();
    let alg = header["alg"].as_str().unwrap_or_default();
    if !typ.eq_ignore_ascii_case("jwt") || !alg.eq_ignore_ascii_case("ed25519-nkey") {
        return Err(JwtError::Malformed("unsupported header"));
    }
    let body = b64_decode(c).ok_or(JwtError::Malformed("claims are not base64"))?;
    let claims: claims::Claims<N> =
        serde_json::from_slice(&body).map_err(|_| JwtError::Malformed("claims are not valid"))?;
    let sig = b64_decode(sig).ok_or(JwtError::Malformed("signature is not base64"))?;
    let issuer = KeyPair::from_public_key(&claims.iss)
        .map_err(|_| JwtError::BadIssuer(claims.iss.clone(), "public"))?;
    issuer
        .verify(&token.as_bytes()[..h.len() + 1 + c.len()], &sig)
        .map_err(|_| JwtError::BadSignature)?;
    Ok(claims)
}

/// Encodes and signs claims with `issuer` (tests and tooling; the server
/// only verifies). Sets `iss`, and `iat` when unset.
pub fn encode<N: Serialize>(claims: &mut claims::Claims<N>, issuer: &KeyPair) -> String {
    claims.iss = issuer.public_key();
    if claims.iat == 0 {
        claims.iat = now();
    }
    if claims.jti.is_empty() {
        claims.jti = (0..26).map(|_| fastrand::uppercase()).collect();
    }
    let header = URL_SAFE_NO_PAD.encode(br#"{"typ":"JWT","alg":"ed25519-nkey"}"#);
    let body = URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).unwrap_or_default());
    let signed = format!("{header}.{body}");
    let sig = issuer.sign(signed.as_bytes()).unwrap_or_default();
    format!("{signed}.{}", URL_SAFE_NO_PAD.encode(sig))
}

/// Unix seconds now.
pub fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn is_operator_key(k: &str) -> bool {
    k.starts_with('O') && KeyPair::from_public_key(k).is_ok()
}

fn is_account_key(k: &str) -> bool {
    k.starts_with('A') && KeyPair::from_public_key(k).is_ok()
}

fn is_user_key(k: &str) -> bool {
    k.starts_with('U') && KeyPair::from_public_key(k).is_ok()
}

/// The trusted operators (from `operator:` / `trusted_keys`).
#[derive(Debug, Clone, Default)]
pub struct Trust {
    /// Operator identity keys and their signing keys.
    pub keys: Vec<String>,
    /// The system account the operator names, if any.
    pub system_account: Option<String>,
}

impl Trust {
    /// Trust from operator JWTs (verified: self-signed by an operator key).
    pub fn from_operator_jwts(tokens: &[String]) -> Result<Trust, JwtError> {
        let mut trust = Trust::default();
        for t in tokens {
            let op: OperatorClaims = decode(t)?;
            if !is_operator_key(&op.iss) {
                return Err(JwtError::BadIssuer(op.iss, "operator"));
            }
            if !is_operator_key(&op.sub) {
                return Err(JwtError::BadSubject(op.sub, "operator"));
            }
            if op.expired_at(now()) {
                return Err(JwtError::Expired("operator"));
            }
            trust.keys.push(op.sub.clone());
            trust.keys.extend(op.nats.signing_keys.iter().cloned());
            if !op.nats.system_account.is_empty() && trust.system_account.is_none() {
                trust.system_account = Some(op.nats.system_account.clone());
            }
        }
        Ok(trust)
    }

    /// Decodes an account JWT and checks that a trusted operator issued it.
    pub fn verify_account(&self, token: &str) -> Result<AccountClaims, JwtError> {
        let acc: AccountClaims = decode(token)?;
        if !is_account_key(&acc.sub) {
            return Err(JwtError::BadSubject(acc.sub, "account"));
        }
        if !self.keys.contains(&acc.iss) {
            return Err(JwtError::UntrustedAccount);
        }
        Ok(acc)
    }
}

/// A user that proved its identity: whom it binds to, and the permissions
/// and limits that apply to the connection.
#[derive(Debug, Clone)]
pub struct JwtUser {
    pub user: UserClaims,
    pub account: AccountClaims,
    /// The user's permissions (a scoped signing key's template wins, then
    /// the user's own, then the account's defaults).
    pub permissions: Permissions,
}

/// Checks a connecting client's user JWT and its signature of `nonce`.
pub fn authenticate(
    trust: &Trust,
    resolver: &Resolver,
    user_jwt: Option<&str>,
    nonce: &[u8],
    sig: Option<&str>,
) -> Result<JwtUser, JwtError> {
    let token = user_jwt.ok_or(JwtError::NoJwt)?;
    let user: UserClaims = decode(token)?;
    if !is_user_key(&user.sub) {
        return Err(JwtError::BadSubject(user.sub, "user"));
    }
    let now = now();
    if user.expired_at(now) {
        return Err(JwtError::Expired("user"));
    }
    let account_key = if user.nats.issuer_account.is_empty() {
        user.iss.clone()
    } else {
        user.nats.issuer_account.clone()
    };
    if !is_account_key(&account_key) {
        return Err(JwtError::BadIssuer(account_key, "account"));
    }
    let account_jwt = resolver
        .fetch(&account_key)
        .ok_or_else(|| JwtError::AccountNotFound(account_key.clone()))?;
    let account = trust.verify_account(&account_jwt)?;
    if account.expired_at(now) {
        return Err(JwtError::Expired("account"));
    }
    let scope = if user.iss == account.sub {
        None
    } else {
        let sk = account
            .nats
            .signing_key(&user.iss)
            .ok_or(JwtError::UntrustedUser)?;
        sk.scope.clone()
    };
    if account.nats.revoked(&user.sub, user.iat) {
        return Err(JwtError::Revoked(user.sub.clone()));
    }
    if user.nats.bearer_token {
        if account.nats.limits.disallow_bearer {
            return Err(JwtError::BearerNotAllowed);
        }
    } else {
        let sig = sig
            .and_then(b64_decode)
            .ok_or(JwtError::BadNonceSignature)?;
        let kp = KeyPair::from_public_key(&user.sub)
            .map_err(|_| JwtError::BadSubject(user.sub.clone(), "user"))?;
        kp.verify(nonce, &sig)
            .map_err(|_| JwtError::BadNonceSignature)?;
    }
    let permissions = match scope {
        Some(p) => p,
        None if !user.nats.permissions.is_empty() => user.nats.permissions.clone(),
        None => account.nats.default_permissions.clone(),
    };
    Ok(JwtUser {
        user,
        account,
        permissions,
    })
}

/// JWT permissions in the terms of the config file's (`auth`): an empty
/// allow list allows everything.
pub fn to_auth_permissions(p: &Permissions) -> Option<crate::auth::Permissions> {
    use crate::auth::{ResponsePermission, SubjectPermission};
    if p.is_empty() {
        return None;
    }
    let side = |x: &claims::Permission| {
        (!x.is_empty()).then(|| SubjectPermission {
            allow: (!x.allow.is_empty()).then(|| x.allow.clone()),
            deny: x.deny.clone(),
        })
    };
    Some(crate::auth::Permissions {
        publish: side(&p.publish),
        subscribe: side(&p.subscribe),
        response: p.resp.as_ref().map(|r| ResponsePermission {
            max_msgs: r.max,
            expires: (r.ttl > 0).then(|| std::time::Duration::from_nanos(r.ttl as u64)),
        }),
    })
}

#[cfg(test)]
mod tests;
