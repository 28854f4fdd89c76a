//! Client authentication and authorization without JWTs: who may connect
//! (token, user/password with optional bcrypt hashes, nkeys signing a nonce,
//! `no_auth_user`) and what each user may publish and subscribe to.
//!
//! - [`config`] parses `authorization {}` and users lists into [`User`]s.
//! - [`authenticate`] decides a CONNECT, as nats-server's
//!   `processClientOrLeafAuthentication` does.
//! - [`session`] is the connection side: the permissions a connection
//!   checks on PUB/SUB ([`session::ConnAuth`]) and the part other tasks reach
//!   ([`session::SharedAuth`]: the nonce, response grants, reload rechecks).

pub mod config;
pub mod nkey;
pub mod permissions;
pub mod session;

use std::sync::Arc;

use rnats_proto::ConnectOptions;

use crate::options::SimpleAuth;
pub use permissions::{CompiledPerms, Permissions, ResponsePermission, SubjectPermission};
pub use session::DenyFilter;

/// A configured user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// The username, or the public key of an nkey user.
    pub name: String,
    pub credential: Credential,
    pub permissions: Option<Permissions>,
    /// The account the user belongs to; `None` is the global account `$G`.
    pub account: Option<String>,
}

/// How a user proves who it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    /// A password, in plain text or as a bcrypt hash (`$2a$...`); empty
    /// when none was configured.
    Password(String),
    /// A signature over the connection's nonce with the user's nkey seed.
    Nkey,
}

impl User {
    pub fn is_nkey(&self) -> bool {
        self.credential == Credential::Nkey
    }

    /// `user:a` / `nkey:U...`, as nats-server labels a client in its logs.
    pub fn label(&self) -> String {
        match self.credential {
            Credential::Nkey => format!("nkey:{}", self.name),
            Credential::Password(_) => format!("user:{}", self.name),
        }
    }
}

/// Why a CONNECT was refused (logged at debug level; the client only ever
/// sees `Authorization Violation`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Reason {
    #[error("unknown user")]
    UnknownUser,
    #[error("unknown nkey")]
    UnknownNkey,
    #[error("password mismatch")]
    BadPassword,
    #[error("token mismatch")]
    BadToken,
    #[error("Signature missing")]
    SignatureMissing,
    #[error("Signature not valid base64")]
    SignatureNotBase64,
    #[error("Signature not verified")]
    SignatureNotVerified,
    #[error("User nkey not valid")]
    BadNkey,
    #[error("no credentials")]
    NoCredentials,
    #[error("JWT not accepted")]
    JwtRejected,
    #[error("no nonce: the OS random source failed")]
    NonceUnavailable,
}

/// A refused CONNECT: why, and how to name the client in the error log.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("authentication error{}", who.as_ref().map(|w| format!(" - {w}")).unwrap_or_default())]
pub struct AuthError {
    /// `User "a"`, `Nkey "U..."` or `Token "[REDACTED]"` when the client
    /// sent any credential (nats-server's `getAuthUser`).
    pub who: Option<String>,
    pub reason: Reason,
}

/// An accepted CONNECT.
#[derive(Debug, Clone)]
pub struct Authenticated {
    /// The configured user it matched (`None` for token or single-user auth).
    pub user: Option<Arc<User>>,
}

impl Authenticated {
    pub fn permissions(&self) -> Option<&Permissions> {
        self.user.as_ref().and_then(|u| u.permissions.as_ref())
    }
}

fn non_empty(s: &Option<String>) -> Option<&str> {
    s.as_deref().filter(|s| !s.is_empty())
}

/// nats-server's `getAuthUser`: how a client's credentials read in logs.
pub fn who(c: &ConnectOptions) -> Option<String> {
    if let Some(k) = non_empty(&c.nkey) {
        Some(format!("Nkey {k:?}"))
    } else if let Some(u) = non_empty(&c.user) {
        Some(format!("User {u:?}"))
    } else {
        non_empty(&c.auth_token).map(|_| "Token \"[REDACTED]\"".to_string())
    }
}

/// Whether a configured secret (password or token) matches what the client
/// sent: a bcrypt check for hashed secrets, otherwise a constant-time compare.
pub fn secret_matches(configured: &str, given: &str) -> bool {
    if is_bcrypt(configured) {
        return bcrypt::verify(given, configured).unwrap_or(false);
    }
    constant_time_eq(configured.as_bytes(), given.as_bytes())
}

/// Equality whose time depends only on the lengths (like Go's
/// `subtle.ConstantTimeCompare`, which also returns early on a length mismatch).
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// `$2a$10$...`, `$2b$`, `$2x$`, `$2y$`: a bcrypt hash (nats-server's test).
pub fn is_bcrypt(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() > 7
        && b.starts_with(b"$2")
        && matches!(b[2], b'a' | b'b' | b'x' | b'y')
        && b[3] == b'$'
        && b[4].is_ascii_digit()
        && b[5].is_ascii_digit()
        && b[6] == b'$'
}

/// nats-server warns at startup when a password is not a bcrypt hash
/// (tokens are not considered).
pub fn has_plaintext_passwords(auth: &SimpleAuth) -> bool {
    auth.password
        .as_deref()
        .is_some_and(|p| !p.is_empty() && !is_bcrypt(p))
        || auth
            .users
            .iter()
            .any(|u| matches!(&u.credential, Credential::Password(p) if !is_bcrypt(p)))
}

/// Decides a CONNECT against the configured authentication. `nonce` is the
/// one sent in this connection's INFO (present when nkey users exist).
pub fn authenticate(
    auth: &SimpleAuth,
    no_auth_user: Option<&str>,
    c: &ConnectOptions,
    nonce: Option<&str>,
) -> Result<Authenticated, AuthError> {
    let fail = |reason| AuthError {
        who: who(c),
        reason,
    };
    let (user, pass, token, nkey) = (
        non_empty(&c.user),
        non_empty(&c.pass),
        non_empty(&c.auth_token),
        non_empty(&c.nkey),
    );
    let no_creds = user.is_none() && pass.is_none() && token.is_none() && nkey.is_none();
    let find = |name: &str, nkey_user: bool| {
        auth.users
            .iter()
            .find(|u| u.is_nkey() == nkey_user && u.name == name)
            .cloned()
    };
    let has_nkeys = auth.users.iter().any(|u| u.is_nkey());
    let has_users = auth.users.iter().any(|u| !u.is_nkey());

    if has_nkeys {
        // A client without credentials may be the nkey `no_auth_user`; it
        // needs no signature.
        if no_creds {
            if let Some(u) = no_auth_user.and_then(|n| find(n, true)) {
                return Ok(Authenticated { user: Some(u) });
            }
        }
        if let Some(key) = nkey {
            let u = find(key, true).ok_or_else(|| fail(Reason::UnknownNkey))?;
            let sig = non_empty(&c.sig).ok_or_else(|| fail(Reason::SignatureMissing))?;
            nkey::verify(key, nonce.unwrap_or_default(), sig).map_err(fail)?;
            return Ok(Authenticated { user: Some(u) });
        }
    }
    if has_users {
        if user.is_none() && pass.is_none() && token.is_none() {
            if let Some(u) = no_auth_user.and_then(|n| find(n, false)) {
                return Ok(Authenticated { user: Some(u) });
            }
        }
        if let Some(name) = user {
            let u = find(name, false).ok_or_else(|| fail(Reason::UnknownUser))?;
            let Credential::Password(configured) = &u.credential else {
                return Err(fail(Reason::UnknownUser));
            };
            if !secret_matches(configured, pass.unwrap_or_default()) {
                return Err(fail(Reason::BadPassword));
            }
            return Ok(Authenticated { user: Some(u) });
        }
    }
    if let Some(t) = non_empty(&auth.token) {
        return if secret_matches(t, token.unwrap_or_default()) {
            Ok(Authenticated { user: None })
        } else {
            Err(fail(Reason::BadToken))
        };
    }
    if let Some(u) = non_empty(&auth.username) {
        if user != Some(u) {
            return Err(fail(Reason::UnknownUser));
        }
        let configured = auth.password.as_deref().unwrap_or_default();
        return if secret_matches(configured, pass.unwrap_or_default()) {
            Ok(Authenticated { user: None })
        } else {
            Err(fail(Reason::BadPassword))
        };
    }
    Err(fail(Reason::NoCredentials))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn connect(json: &str) -> ConnectOptions {
        ConnectOptions::from_json(json.as_bytes()).unwrap()
    }

    fn pw_user(name: &str, pass: &str) -> Arc<User> {
        Arc::new(User {
            name: name.into(),
            credential: Credential::Password(pass.into()),
            permissions: None,
            account: None,
        })
    }

    #[test]
    fn bcrypt_and_plain_secrets() {
        let hash = bcrypt::hash("s3cret", 4).unwrap();
        assert!(is_bcrypt(&hash));
        assert!(secret_matches(&hash, "s3cret"));
        assert!(!secret_matches(&hash, "s3cre"));
        assert!(!is_bcrypt("$2a$1"));
        assert!(!is_bcrypt("plain"));
        assert!(secret_matches("plain", "plain"));
        assert!(!secret_matches("plain", "plaiN"));
    }

    #[test]
    fn users_and_no_auth_user() {
        let auth = SimpleAuth {
            users: vec![pw_user("a", "b"), pw_user("guest", "")],
            ..Default::default()
        };
        assert!(authenticate(&auth, None, &connect(r#"{"user":"a","pass":"b"}"#), None).is_ok());
        let err =
            authenticate(&auth, None, &connect(r#"{"user":"a","pass":"x"}"#), None).unwrap_err();
        assert_eq!(err.reason, Reason::BadPassword);
        assert_eq!(err.to_string(), "authentication error - User \"a\"");
        let err = authenticate(&auth, None, &connect("{}"), None).unwrap_err();
        assert_eq!(err.to_string(), "authentication error");
        let ok = authenticate(&auth, Some("guest"), &connect("{}"), None).unwrap();
        assert_eq!(ok.user.unwrap().name, "guest");
        let err = authenticate(&auth, None, &connect(r#"{"auth_token":"t"}"#), None).unwrap_err();
        assert_eq!(err.who.as_deref(), Some("Token \"[REDACTED]\""));
    }

    #[test]
    fn nkey_users_sign_the_nonce() {
        let kp = nkeys::KeyPair::new_user();
        let auth = SimpleAuth {
            users: vec![Arc::new(User {
                name: kp.public_key(),
                credential: Credential::Nkey,
                permissions: None,
                account: None,
            })],
            ..Default::default()
        };
        let nonce = nkey::new_nonce().unwrap();
        let sig = {
            use base64::Engine;
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .encode(kp.sign(nonce.as_bytes()).unwrap())
        };
        let c = connect(&format!(
            r#"{{"nkey":"{}","sig":"{sig}"}}"#,
            kp.public_key()
        ));
        assert!(authenticate(&auth, None, &c, Some(&nonce)).is_ok());
        let err = authenticate(&auth, None, &c, Some("another")).unwrap_err();
        assert_eq!(err.reason, Reason::SignatureNotVerified);
        let c = connect(&format!(r#"{{"nkey":"{}"}}"#, kp.public_key()));
        let err = authenticate(&auth, None, &c, Some(&nonce)).unwrap_err();
        assert_eq!(err.reason, Reason::SignatureMissing);
        assert!(err.to_string().contains("Nkey \"U"));
    }
}
