//! The first (v1) JWT format, still issued by older tooling and found in
//! many deployments: nats-server accepts it and reads it as a v2 claim, so
//! rnats does the same here, once, before the claim is typed.
//!
//! A v1 claim names its kind in a top-level `type` (v2 moved `type`, `tags`
//! and a user's `issuer_account` into the `nats` section), its signature
//! covers the encoded claims only, and a v1 account has no JetStream limits
//! (JetStream did not exist), so JetStream stays disabled for it.

use serde::de::DeserializeOwned;
use serde_json::Value;

use super::{claims::Claims, JwtError};

/// 1 for the v1 format, else the `nats.version` (2 when absent).
pub(super) fn version(body: &Value) -> u64 {
    if body
        .get("type")
        .and_then(Value::as_str)
        .is_some_and(|t| !t.is_empty())
    {
        return 1;
    }
    body.pointer("/nats/version")
        .and_then(Value::as_u64)
        .unwrap_or(2)
        .max(2)
}

/// Moves the v1 top-level fields into `nats` and drops what v2 does not
/// carry over, then types the claim.
pub(super) fn upgrade<N: DeserializeOwned + Default>(
    mut body: Value,
) -> Result<Claims<N>, JwtError> {
    let invalid = || JwtError::Malformed("claims are not valid");
    let obj = body.as_object_mut().ok_or_else(invalid)?;
    let kind = obj.remove("type");
    let tags = obj.remove("tags");
    let issuer_account = obj.remove("issuer_account");
    let nats = obj
        .entry("nats")
        .or_insert_with(|| Value::Object(Default::default()));
    if nats.is_null() {
        *nats = Value::Object(Default::default());
    }
    let nats = nats.as_object_mut().ok_or_else(invalid)?;
    let is_account = kind.as_ref().and_then(Value::as_str) == Some("account");
    if let Some(k) = kind {
        nats.insert("type".into(), k);
    }
    if let Some(t) = tags {
        nats.insert("tags".into(), t);
    }
    if let Some(i) = issuer_account {
        nats.insert("issuer_account".into(), i);
    }
    nats.insert("version".into(), Value::from(1));
    if is_account {
        if let Some(limits) = nats.get_mut("limits").and_then(Value::as_object_mut) {
            for k in ["mem_storage", "disk_storage", "streams", "consumer"] {
                limits.remove(k);
            }
        }
    }
    serde_json::from_value(body).map_err(|_| invalid())
}

/// Mints a v1 token from raw claims (tests and tooling; the server only
/// verifies): `{"typ":"jwt","alg":"ed25519"}`, the signature over the
/// encoded claims alone. Sets `iss`.
pub fn encode_v1(mut claims: Value, issuer: &nkeys::KeyPair) -> String {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    if let Some(obj) = claims.as_object_mut() {
        obj.insert("iss".into(), Value::from(issuer.public_key()));
    }
    let header = URL_SAFE_NO_PAD.encode(br#"{"typ":"jwt","alg":"ed25519"}"#);
    let body = URL_SAFE_NO_PAD.encode(claims.to_string());
    let sig = issuer.sign(body.as_bytes()).unwrap_or_default();
    format!("{header}.{body}.{}", URL_SAFE_NO_PAD.encode(sig))
}
