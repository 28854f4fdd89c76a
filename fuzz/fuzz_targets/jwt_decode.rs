//! Fuzzes JWT decoding (`jwt::decode` for operator, account and user claims,
//! v1 and v2 formats) and what the server does with a decoded token.
//! First byte even: the rest is a token, decoded as each claims type (its
//! signature almost never verifies, but everything before the check runs).
//! First byte odd: the rest is account claims JSON and user claims JSON
//! (split at the first NUL); the harness sets their `iss`/`sub` and signs
//! them with fixed keys so decoding gets past the signature, then runs the
//! whole user authentication against them. Nothing may panic.
#![no_main]

use std::sync::OnceLock;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use libfuzzer_sys::fuzz_target;
use nkeys::{KeyPair, KeyPairType};
use serde_json::Value;

// The code under test (repoint here if the JWT module moves).
use rnats_core::jwt::{
    self, claims,
    resolver::{Resolver, ResolverConfig},
    Trust,
};

struct Keys {
    operator: KeyPair,
    account: KeyPair,
    user: KeyPair,
}

/// Fixed keys, so that a crashing input reproduces.
fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| Keys {
        operator: KeyPair::new_from_raw(KeyPairType::Operator, [1; 32]).unwrap(),
        account: KeyPair::new_from_raw(KeyPairType::Account, [2; 32]).unwrap(),
        user: KeyPair::new_from_raw(KeyPairType::User, [3; 32]).unwrap(),
    })
}

/// Signs `claims` (as given, after setting `iss` and `sub` when it is an object).
fn sign(claims: &[u8], issuer: &KeyPair, subject: &str) -> String {
    let body = match serde_json::from_slice::<Value>(claims) {
        Ok(Value::Object(mut m)) => {
            m.insert("iss".into(), issuer.public_key().into());
            m.insert("sub".into(), subject.into());
            serde_json::to_vec(&m).unwrap()
        }
        _ => claims.to_vec(),
    };
    let header = URL_SAFE_NO_PAD.encode(br#"{"typ":"JWT","alg":"ed25519-nkey"}"#);
    let signed = format!("{header}.{}", URL_SAFE_NO_PAD.encode(body));
    let sig = issuer.sign(signed.as_bytes()).unwrap();
    format!("{signed}.{}", URL_SAFE_NO_PAD.encode(sig))
}

fn decode_all(token: &str) {
    let _ = jwt::decode::<claims::OperatorNats>(token);
    let _ = jwt::decode::<claims::AccountNats>(token);
    if let Ok(u) = jwt::decode::<claims::UserNats>(token) {
        let _ = jwt::to_auth_permissions(&u.nats.permissions);
    }
    let _ = Trust::from_operator_jwts(&[token.to_string()]);
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode & 1 == 0 {
        decode_all(&String::from_utf8_lossy(rest));
        return;
    }
    let k = keys();
    let cut = rest.iter().position(|&b| b == 0).unwrap_or(rest.len());
    let (acc, user) = (&rest[..cut], rest.get(cut + 1..).unwrap_or_default());
    let account_key = k.account.public_key();
    let user_key = k.user.public_key();
    let acc_jwt = sign(acc, &k.operator, &account_key);
    let user_jwt = sign(user, &k.account, &user_key);
    decode_all(&acc_jwt);
    decode_all(&user_jwt);
    let trust = Trust {
        keys: vec![k.operator.public_key()],
        system_account: None,
    };
    let resolver = Resolver::new(&ResolverConfig::Memory, &[(account_key, acc_jwt)]).unwrap();
    let nonce = b"nonce";
    let nonce_sig = URL_SAFE_NO_PAD.encode(k.user.sign(nonce).unwrap());
    let sig = (mode & 2 == 0).then_some(nonce_sig.as_str());
    if let Ok(u) = jwt::authenticate(&trust, &resolver, Some(&user_jwt), nonce, sig) {
        let _ = jwt::to_auth_permissions(&u.permissions);
    }
});
