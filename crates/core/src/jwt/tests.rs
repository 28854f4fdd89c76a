//! The trust chain with freshly minted keys: what verifies, and each way a
//! credential is refused.

use nkeys::KeyPair;

use super::claims::*;
use super::resolver::ResolverConfig;
use super::*;

struct Chain {
    trust: Trust,
    resolver: Resolver,
    account: KeyPair,
    user: KeyPair,
}

fn account_claims(acc: &KeyPair, edit: impl FnOnce(&mut AccountClaims)) -> AccountClaims {
    let mut c = AccountClaims {
        sub: acc.public_key(),
        name: "A".into(),
        ..Default::default()
    };
    c.nats.kind = "account".into();
    c.nats.version = 2;
    edit(&mut c);
    c
}

fn chain(edit: impl FnOnce(&mut AccountClaims)) -> Chain {
    let op = KeyPair::new_operator();
    let mut opc = OperatorClaims {
        sub: op.public_key(),
        name: "OP".into(),
        ..Default::default()
    };
    opc.nats.kind = "operator".into();
    opc.nats.version = 2;
    let op_jwt = encode(&mut opc, &op);
    let trust = Trust::from_operator_jwts(&[op_jwt]).expect("operator verifies");
    let account = KeyPair::new_account();
    let mut ac = account_claims(&account, edit);
    let acc_jwt = encode(&mut ac, &op);
    let resolver = Resolver::new(&ResolverConfig::Memory, &[(account.public_key(), acc_jwt)])
        .expect("memory resolver");
    Chain {
        trust,
        resolver,
        account,
        user: KeyPair::new_user(),
    }
}

fn user_jwt(user: &KeyPair, issuer: &KeyPair, edit: impl FnOnce(&mut UserClaims)) -> String {
    let mut c = UserClaims {
        sub: user.public_key(),
        name: "u".into(),
        ..Default::default()
    };
    edit(&mut c);
    encode(&mut c, issuer)
}

fn signed(kp: &KeyPair, nonce: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(kp.sign(nonce).expect("sign"))
}

#[test]
fn a_user_signed_by_its_account_authenticates() {
    let c = chain(|_| {});
    let jwt = user_jwt(&c.user, &c.account, |u| {
        u.nats.permissions.publish.allow = vec!["a.>".into()];
    });
    let nonce = b"abcdef";
    let u = authenticate(
        &c.trust,
        &c.resolver,
        Some(&jwt),
        nonce,
        Some(&signed(&c.user, nonce)),
    )
    .expect("valid user");
    assert_eq!(u.account.sub, c.account.public_key());
    assert_eq!(u.permissions.publish.allow, vec!["a.>".to_string()]);
    // Standard base64 signatures are accepted too (some clients send them).
    let std_sig = STANDARD.encode(c.user.sign(nonce).expect("sign"));
    assert!(authenticate(&c.trust, &c.resolver, Some(&jwt), nonce, Some(&std_sig)).is_ok());
}

#[test]
fn each_broken_link_is_refused() {
    let c = chain(|_| {});
    let nonce = b"n0nce";
    let good = user_jwt(&c.user, &c.account, |_| {});
    let sig = signed(&c.user, nonce);
    let auth =
        |jwt: &str, sig: &str| authenticate(&c.trust, &c.resolver, Some(jwt), nonce, Some(sig));

    assert_eq!(
        authenticate(&c.trust, &c.resolver, None, nonce, Some(&sig)).unwrap_err(),
        JwtError::NoJwt
    );
    // Signature of another nonce, or by another key.
    assert_eq!(
        auth(&good, &signed(&c.user, b"other")).unwrap_err(),
        JwtError::BadNonceSignature
    );
    assert_eq!(
        auth(&good, &signed(&KeyPair::new_user(), nonce)).unwrap_err(),
        JwtError::BadNonceSignature
    );
    // A tampered claim no longer matches its signature.
    let mut parts: Vec<String> = good.split('.').map(str::to_string).collect();
    let mut body: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(&parts[1]).unwrap()).unwrap();
    body["name"] = "mallory".into();
    parts[1] = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&body).unwrap());
    assert_eq!(
        auth(&parts.join("."), &sig).unwrap_err(),
        JwtError::BadSignature
    );
    // Expired user.
    let expired = user_jwt(&c.user, &c.account, |u| u.exp = now() - 10);
    assert_eq!(auth(&expired, &sig).unwrap_err(), JwtError::Expired("user"));
    // Signed by an unrelated account key (not a signing key of the account).
    let stranger = KeyPair::new_account();
    let forged = user_jwt(&c.user, &stranger, |u| {
        u.nats.issuer_account = c.account.public_key()
    });
    assert_eq!(auth(&forged, &sig).unwrap_err(), JwtError::UntrustedUser);
    // Account unknown to the resolver.
    let orphan = user_jwt(&c.user, &stranger, |_| {});
    assert!(matches!(
        auth(&orphan, &sig).unwrap_err(),
        JwtError::AccountNotFound(_)
    ));
    assert!(matches!(
        auth("not.a.jwt", &sig).unwrap_err(),
        JwtError::Malformed(_)
    ));
    assert!(matches!(
        auth("", &sig).unwrap_err(),
        JwtError::Malformed(_)
    ));
}

#[test]
fn accounts_must_come_from_the_operator() {
    let c = chain(|_| {});
    let rogue_op = KeyPair::new_operator();
    let mut ac = account_claims(&c.account, |_| {});
    let rogue = encode(&mut ac, &rogue_op);
    assert_eq!(
        c.trust.verify_account(&rogue).unwrap_err(),
        JwtError::UntrustedAccount
    );
}

#[test]
fn revocations_and_scoped_signing_keys() {
    let signer = KeyPair::new_account();
    let user = KeyPair::new_user();
    let user_pub = user.public_key();
    let scope = Permissions {
        subscribe: Permission {
            allow: vec!["scoped.>".into()],
            deny: vec![],
        },
        ..Default::default()
    };
    let c = chain(|a| {
        a.nats.signing_keys.push(SigningKey {
            key: signer.public_key(),
            scope: Some(scope.clone()),
        });
        a.nats.revocations.insert(user_pub.clone(), now() - 100);
    });
    let nonce = b"xyz";
    let sig = signed(&user, nonce);
    // Issued before the revocation time: refused; issued after: accepted.
    let old = user_jwt(&user, &signer, |u| {
        u.iat = now() - 1000;
        u.nats.issuer_account = c.account.public_key();
    });
    assert!(matches!(
        authenticate(&c.trust, &c.resolver, Some(&old), nonce, Some(&sig)).unwrap_err(),
        JwtError::Revoked(_)
    ));
    let fresh = user_jwt(&user, &signer, |u| {
        u.nats.issuer_account = c.account.public_key();
        u.nats.permissions.publish.allow = vec!["ignored".into()];
    });
    let ok =
        authenticate(&c.trust, &c.resolver, Some(&fresh), nonce, Some(&sig)).expect("scoped user");
    // The scope's template replaces the user's own permissions.
    assert_eq!(ok.permissions, scope);
}

#[test]
fn bearer_tokens_skip_the_nonce_unless_the_account_forbids_them() {
    let c = chain(|_| {});
    let bearer = user_jwt(&c.user, &c.account, |u| u.nats.bearer_token = true);
    assert!(authenticate(&c.trust, &c.resolver, Some(&bearer), b"n", None).is_ok());
    let strict = chain(|a| a.nats.limits.disallow_bearer = true);
    let bearer = user_jwt(&strict.user, &strict.account, |u| {
        u.nats.bearer_token = true
    });
    assert_eq!(
        authenticate(&strict.trust, &strict.resolver, Some(&bearer), b"n", None).unwrap_err(),
        JwtError::BearerNotAllowed
    );
}

#[test]
fn claims_from_other_issuers_parse() {
    // The field layout nats-io/jwt writes (signing keys as strings and scopes,
    // limits, exports with response types) reads back.
    let json = r#"{"jti":"X","iat":1651790970,"iss":"OB5","name":"SYS","sub":"ABR","nats":{
        "exports":[{"name":"m","subject":"$SYS.ACCOUNT.*.>","type":"stream","account_token_position":3},
                   {"subject":"$SYS.REQ.ACCOUNT.*.*","type":"service","response_type":"Stream"}],
        "limits":{"subs":-1,"data":-1,"payload":-1,"imports":-1,"exports":-1,"wildcards":true,"conn":-1,"leaf":-1},
        "signing_keys":["ACPJ",{"kind":"user_scope","key":"AK2","role":"r","template":{"pub":{"allow":["x"]}}}],
        "default_permissions":{"pub":{},"sub":{}},"type":"account","version":2}}"#;
    let a: AccountClaims = serde_json::from_str(json).expect("parses");
    assert_eq!(a.nats.exports[1].response_type, "Stream");
    assert_eq!(a.nats.signing_keys[0].scope, None);
    assert_eq!(
        a.nats.signing_keys[1]
            .scope
            .as_ref()
            .map(|p| p.publish.allow.clone()),
        Some(vec!["x".to_string()])
    );
    assert!(!a.nats.limits.jetstream_enabled());
}

#[test]
fn resolver_spellings() {
    use super::config::{parse_resolver, OperatorConfig};
    for (text, ok) in [
        ("MEM", true),
        ("MEMORY", true),
        ("memory", true),
        ("URL(http://x)", false),
    ] {
        let map = rnats_conf::parse_str(&format!("resolver: {text}")).expect("parses");
        let mut cfg = OperatorConfig::default();
        let r = parse_resolver(map.get("resolver").expect("key"), None, &mut cfg);
        assert_eq!(r.is_ok(), ok, "{text}");
        if ok {
            assert_eq!(cfg.resolver, ResolverConfig::Memory);
        }
    }
}

mod fuzzish {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Arbitrary text never panics the decoder.
        #[test]
        fn garbage_never_panics(s in ".{0,300}") {
            let _ = decode::<UserNats>(&s);
            let _ = decode::<AccountNats>(&s);
        }

        /// Any single-byte change to a valid user JWT is refused (or, when
        /// it only touches base64 padding bits, still yields the same claims).
        #[test]
        fn tampering_is_caught(pos in 0usize..400, byte in any::<u8>()) {
            let c = chain(|_| {});
            let jwt = user_jwt(&c.user, &c.account, |_| {});
            let mut bytes = jwt.clone().into_bytes();
            let i = pos % bytes.len();
            prop_assume!(bytes[i] != byte);
            bytes[i] = byte;
            let Ok(tampered) = String::from_utf8(bytes) else { return Ok(()); };
            if let Ok(claims) = decode::<UserNats>(&tampered) {
                let orig: UserClaims = decode(&jwt).expect("valid");
                prop_assert_eq!(claims.sub, orig.sub);
                prop_assert_eq!(claims.iss, orig.iss);
            }
        }
    }
}

/// A chain of first-format (v1) JWTs, as older tooling issued them:
/// `type` at the top level, JetStream-less account limits, a user issued by
/// an account signing key naming its account in a top-level `issuer_account`.
#[test]
fn v1_jwts_are_accepted_with_the_same_meaning() {
    use serde_json::json;
    let op = KeyPair::new_operator();
    let sys = KeyPair::new_account();
    let op_jwt = encode_v1(
        json!({"jti": "J1", "iat": now(), "sub": op.public_key(), "name": "OP", "type": "operator",
               "nats": {"system_account": sys.public_key()}}),
        &op,
    );
    let trust = Trust::from_operator_jwts(&[op_jwt]).expect("v1 operator verifies");
    assert_eq!(
        trust.system_account.as_deref(),
        Some(sys.public_key().as_str())
    );

    let account = KeyPair::new_account();
    let signer = KeyPair::new_account();
    let acc_jwt = encode_v1(
        json!({"jti": "J2", "iat": now(), "sub": account.public_key(), "name": "A", "type": "account",
               "nats": {"limits": {"subs": 10, "conn": -1, "leaf": -1, "imports": -1, "exports": -1,
                                   "data": -1, "payload": 512, "wildcards": true,
                                   "mem_storage": -1, "disk_storage": -1},
                        "signing_keys": [signer.public_key()],
                        "exports": [{"subject": "news.>", "type": "stream"}]}}),
        &op,
    );
    let acc = trust.verify_account(&acc_jwt).expect("v1 account verifies");
    assert_eq!(acc.nats.kind, "account");
    assert_eq!(acc.nats.version, 1);
    assert_eq!((acc.nats.limits.subs, acc.nats.limits.payload), (10, 512));
    assert!(
        !acc.nats.limits.jetstream_enabled(),
        "v1 accounts have no JetStream"
    );
    assert_eq!(acc.nats.exports.len(), 1);
    let resolver = Resolver::new(
        &ResolverConfig::Memory,
        &[(account.public_key(), acc_jwt.clone())],
    )
    .expect("memory resolver");

    let user = KeyPair::new_user();
    let user_jwt = encode_v1(
        json!({"jti": "J3", "iat": now(), "sub": user.public_key(), "name": "u", "type": "user",
               "issuer_account": account.public_key(),
               "nats": {"pub": {"allow": ["a.>"]}, "sub": {}}}),
        &signer,
    );
    let nonce = b"NONCE123";
    let ok = authenticate(
        &trust,
        &resolver,
        Some(&user_jwt),
        nonce,
        Some(&signed(&user, nonce)),
    )
    .expect("v1 user authenticates");
    assert_eq!(ok.account.sub, account.public_key());
    assert_eq!(ok.user.nats.issuer_account, account.public_key());
    assert_eq!(ok.permissions.publish.allow, vec!["a.>".to_string()]);

    // A v1 token signed the v2 way (header included), or with its claims
    // changed after signing, is refused.
    let mut parts: Vec<String> = user_jwt.split('.').map(str::to_string).collect();
    let v2_style = user
        .sign(format!("{}.{}", parts[0], parts[1]).as_bytes())
        .unwrap();
    use base64::Engine;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let forged = format!("{}.{}.{}", parts[0], parts[1], b64.encode(v2_style));
    assert_eq!(
        decode::<UserNats>(&forged).unwrap_err(),
        JwtError::BadSignature
    );
    let body = String::from_utf8(b64.decode(&parts[1]).unwrap())
        .unwrap()
        .replace("a.>", ">");
    parts[1] = b64.encode(body);
    assert_eq!(
        decode::<UserNats>(&parts.join(".")).unwrap_err(),
        JwtError::BadSignature
    );
    // A claim from a future format version is refused.
    let newer = encode_v1(
        json!({"sub": user.public_key(), "nats": {"version": 3}}),
        &account,
    );
    assert!(matches!(
        decode::<UserNats>(&newer),
        Err(JwtError::Malformed(_))
    ));
}
