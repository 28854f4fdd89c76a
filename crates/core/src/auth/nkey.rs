//! Nkey challenge-response: the server puts a fresh random `nonce` in each
//! connection's INFO; a client proves it holds a user seed by signing that
//! nonce and sending `nkey` (its public key) and `sig` in CONNECT.

use base64::Engine;
use ring::rand::{SecureRandom, SystemRandom};

use super::Reason;

/// The OS random source failed: no nonce can be made, so the connection is
/// refused (a predictable nonce would let a recorded signature be replayed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("unable to generate a nonce: the OS random source failed")]
pub struct NonceUnavailable;

/// A new nonce: 11 random bytes from the OS source, base64url without
/// padding (as nats-server). There is deliberately no fallback generator.
pub fn new_nonce() -> Result<String, NonceUnavailable> {
    nonce_from(|buf| SystemRandom::new().fill(buf).map_err(|_| NonceUnavailable))
}

fn nonce_from(
    fill: impl FnOnce(&mut [u8]) -> Result<(), NonceUnavailable>,
) -> Result<String, NonceUnavailable> {
    let mut raw = [0u8; 11];
    fill(&mut raw)?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw))
}

/// Whether `key` is a well-formed public user nkey (`U...`).
pub fn is_valid_public_user_key(key: &str) -> bool {
    key.starts_with('U') && nkeys::KeyPair::from_public_key(key).is_ok()
}

/// Checks `sig` (base64url raw, or standard base64 as nats-server also
/// accepts) over `nonce` with the public key `nkey`.
pub fn verify(nkey: &str, nonce: &str, sig: &str) -> Result<(), Reason> {
    use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
    let sig = URL_SAFE_NO_PAD
        .decode(sig)
        .or_else(|_| STANDARD.decode(sig))
        .map_err(|_| Reason::SignatureNotBase64)?;
    let key = nkeys::KeyPair::from_public_key(nkey).map_err(|_| Reason::BadNkey)?;
    key.verify(nonce.as_bytes(), &sig)
        .map_err(|_| Reason::SignatureNotVerified)
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};

    #[test]
    fn signatures_in_both_encodings() {
        let kp = nkeys::KeyPair::new_user();
        let nonce = new_nonce().unwrap();
        assert_eq!(nonce.len(), 15);
        let sig = kp.sign(nonce.as_bytes()).unwrap();
        let pk = kp.public_key();
        assert!(is_valid_public_user_key(&pk));
        assert!(verify(&pk, &nonce, &URL_SAFE_NO_PAD.encode(&sig)).is_ok());
        assert!(verify(&pk, &nonce, &STANDARD.encode(&sig)).is_ok());
        assert_eq!(
            verify(&pk, "other", &URL_SAFE_NO_PAD.encode(&sig)),
            Err(Reason::SignatureNotVerified)
        );
        assert_eq!(verify(&pk, &nonce, "!!"), Err(Reason::SignatureNotBase64));
        let other = nkeys::KeyPair::new_account().public_key();
        assert!(!is_valid_public_user_key(&other));
        assert!(!is_valid_public_user_key("UABC"));
    }

    #[test]
    fn a_failing_random_source_gives_no_nonce() {
        assert_eq!(nonce_from(|_| Err(NonceUnavailable)), Err(NonceUnavailable));
        let a = new_nonce().unwrap();
        let b = new_nonce().unwrap();
        assert_ne!(a, b);
    }
}
