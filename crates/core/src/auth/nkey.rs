//! Nkey challenge-response: the server puts a fresh random `nonce` in each
//! connection's INFO; a client proves it holds a user seed by signing that
//! nonce and sending `nkey` (its public key) and `sig` in CONNECT.

use base64::Engine;
use ring::rand::{SecureRandom, SystemRandom};

use super::Reason;

/// A new nonce: 11 random bytes, base64url without padding (as nats-server).
pub fn new_nonce() -> String {
    let mut raw = [0u8; 11];
    if SystemRandom::new().fill(&mut raw).is_err() {
        // The OS generator failing is not expected; fall back to fastrand so a
        // connection still gets a unique challenge.
        raw.iter_mut().for_each(|b| *b = fastrand::u8(..));
    }
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
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
        let nonce = new_nonce();
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
}
