//! Leaf nodes: binding accounts (leaf users on the hub, operator-mode
//! credentials), `deny_imports` / `deny_exports`, loop detection and
//! reconnecting after the hub restarts — each with the reference
//! nats-server on the other side where it matters (skipped with a printed
//! reason when the reference is missing).

use std::io::Write;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use nkeys::KeyPair;
use rnats_itest::cluster::reference_or_skip;
use rnats_itest::leaf::{crosses, Impl, Node};
use rnats_itest::{free_port, next_msg, sync};
use rnats_server::jwt::claims::{AccountClaims, OperatorClaims, UserClaims};
use rnats_server::jwt::encode;

const LIMIT: Duration = Duration::from_secs(20);

fn reference_for(kinds: &[Impl], test: &str) -> Option<Option<std::path::PathBuf>> {
    if kinds.contains(&Impl::Reference) {
        Some(Some(reference_or_skip(test)?))
    } else {
        Some(None)
    }
}

/// A leaf user on the hub binds the connection to account A: the leaf's
/// `$G` reaches A's clients, never B's; a wrong password gets no link.
async fn users_bind_account(hub: Impl, leaf: Impl, test: &str) {
    let Some(reference) = reference_for(&[hub, leaf], test) else {
        return;
    };
    let lp = free_port();
    let hub_conf = format!(
        "accounts {{ A: {{ users: [{{user: a, password: a}}] }}, B: {{ users: [{{user: b, password: b}}] }} }}\n\
         leafnodes {{ port: {lp}, authorization {{ users: [ {{user: leaf, password: s3cr3t, account: A}} ] }} }}\n"
    );
    let h = Node::start(hub, reference.as_ref(), &hub_conf);
    let l = Node::start(
        leaf,
        reference.as_ref(),
        &format!(
            "leafnodes {{ remotes = [ {{ url: \"nats://leaf:s3cr3t@127.0.0.1:{lp}\" }} ] }}\n"
        ),
    );
    let ha = async_nats::ConnectOptions::with_user_and_password("a".into(), "a".into())
        .connect(h.url())
        .await
        .unwrap();
    let hb = async_nats::ConnectOptions::with_user_and_password("b".into(), "b".into())
        .connect(h.url())
        .await
        .unwrap();
    let lc = l.client().await;
    assert!(
        crosses(&lc, &ha, LIMIT).await,
        "leaf $G -> hub A\n{}",
        h.server.log()
    );
    assert!(crosses(&ha, &lc, LIMIT).await, "hub A -> leaf $G");
    let mut in_b = hb.subscribe("acct.>").await.unwrap();
    let mut in_a = ha.subscribe("acct.>").await.unwrap();
    sync(&hb).await;
    assert!(crosses(&lc, &ha, LIMIT).await);
    lc.publish("acct.x", Bytes::from_static(b"1"))
        .await
        .unwrap();
    lc.flush().await.unwrap();
    assert_eq!(&next_msg(&mut in_a).await.payload[..], b"1");
    let leaked = tokio::time::timeout(Duration::from_millis(300), in_b.next()).await;
    assert!(
        leaked.is_err(),
        "account B must not see the leaf's messages"
    );

    // A wrong password: the hub refuses the leaf.
    let bad = Node::start(
        leaf,
        reference.as_ref(),
        &format!("leafnodes {{ remotes = [ {{ url: \"nats://leaf:wrong@127.0.0.1:{lp}\" }} ] }}\n"),
    );
    let bc = bad.client().await;
    assert!(
        !crosses(&bc, &ha, Duration::from_secs(2)).await,
        "a leaf with a wrong password was accepted"
    );
}

#[tokio::test]
async fn users_bind_account_rnats_hub_reference_leaf() {
    users_bind_account(
        Impl::Rnats,
        Impl::Reference,
        "users_bind_account_rnats_hub_reference_leaf",
    )
    .await;
}

#[tokio::test]
async fn users_bind_account_reference_hub_rnats_leaf() {
    users_bind_account(
        Impl::Reference,
        Impl::Rnats,
        "users_bind_account_reference_hub_rnats_leaf",
    )
    .await;
}

/// Operator mode: the spoke signs the hub's nonce with a `.creds` file and
/// is bound to that user's account.
async fn credentials_bind_account(hub: Impl, leaf: Impl, test: &str) {
    let Some(reference) = reference_for(&[hub, leaf], test) else {
        return;
    };
    let op = KeyPair::new_operator();
    let sys = KeyPair::new_account();
    let acc = KeyPair::new_account();
    let mut opc = OperatorClaims {
        sub: op.public_key(),
        name: "OP".into(),
        ..Default::default()
    };
    opc.nats.system_account = sys.public_key();
    opc.nats.kind = "operator".into();
    opc.nats.version = 2;
    let op_jwt = encode(&mut opc, &op);
    let account = |kp: &KeyPair, name: &str| {
        let mut c = AccountClaims {
            sub: kp.public_key(),
            name: name.into(),
            ..Default::default()
        };
        c.nats.kind = "account".into();
        c.nats.version = 2;
        encode(&mut c, &op)
    };
    let (sys_jwt, acc_jwt) = (account(&sys, "SYS"), account(&acc, "A"));
    let creds = |user: &KeyPair| {
        let mut c = UserClaims {
            sub: user.public_key(),
            name: "u".into(),
            ..Default::default()
        };
        c.nats.kind = "user".into();
        c.nats.version = 2;
        c.nats.issuer_account = String::new();
        let jwt = encode(&mut c, &acc);
        format!(
            "-----BEGIN NATS USER JWT-----\n{jwt}\n------END NATS USER JWT------\n\n\
             -----BEGIN USER NKEY SEED-----\n{}\n------END USER NKEY SEED------\n",
            user.seed().expect("seed")
        )
    };
    let (leaf_user, client_user) = (KeyPair::new_user(), KeyPair::new_user());
    let mut creds_file = tempfile::NamedTempFile::new().unwrap();
    creds_file.write_all(creds(&leaf_user).as_bytes()).unwrap();
    let lp = free_port();
    let hub_conf = format!(
        "operator: {op_jwt}\nsystem_account: {s}\nresolver: MEMORY\nresolver_preload: {{\n  {s}: {sys_jwt}\n  {a}: {acc_jwt}\n}}\nleafnodes {{ port: {lp} }}\n",
        s = sys.public_key(),
        a = acc.public_key(),
    );
    let h = Node::start(hub, reference.as_ref(), &hub_conf);
    let l = Node::start(
        leaf,
        reference.as_ref(),
        &format!(
            "leafnodes {{ remotes = [ {{ url: \"nats://127.0.0.1:{lp}\", credentials: \"{}\" }} ] }}\n",
            creds_file.path().display()
        ),
    );
    let hc = async_nats::ConnectOptions::with_credentials(&creds(&client_user))
        .unwrap()
        .connect(h.url())
        .await
        .unwrap();
    let lc = l.client().await;
    assert!(
        crosses(&lc, &hc, LIMIT).await,
        "leaf -> hub account\nhub:\n{}\nleaf:\n{}",
        h.server.log(),
        l.server.log()
    );
    assert!(crosses(&hc, &lc, LIMIT).await, "hub account -> leaf");
}

#[tokio::test]
async fn credentials_rnats_leaf_on_reference_hub() {
    credentials_bind_account(
        Impl::Reference,
        Impl::Rnats,
        "credentials_rnats_leaf_on_reference_hub",
    )
    .await;
}

#[tokio::test]
async fn credentials_reference_leaf_on_rnats_hub() {
    credentials_bind_account(
        Impl::Rnats,
        Impl::Reference,
        "credentials_reference_leaf_on_rnats_hub",
    )
    .await;
}

/// `deny_exports` keeps the leaf's `secret.>` from the hub (even for the
/// hub's wildcard subscriber); `deny_imports` keeps the hub's `private.>`
/// from the leaf. Messages travel in order, so a denied message would
/// arrive before the allowed one published after it.
async fn deny_rules(hub: Impl, leaf: Impl, test: &str) {
    let Some(reference) = reference_for(&[hub, leaf], test) else {
        return;
    };
    let lp = free_port();
    let h = Node::start(
        hub,
        reference.as_ref(),
        &format!("leafnodes {{ port: {lp} }}\n"),
    );
    let l = Node::start(
        leaf,
        reference.as_ref(),
        &format!(
            "leafnodes {{ remotes = [ {{ url: \"nats://127.0.0.1:{lp}\", deny_exports: [\"secret.>\"], deny_imports: [\"private.>\"] }} ] }}\n"
        ),
    );
    let (hc, lc) = (h.client().await, l.client().await);
    let mut at_hub = hc.subscribe("*.x").await.unwrap();
    let mut at_leaf = lc.subscribe("*.y").await.unwrap();
    sync(&hc).await;
    sync(&lc).await;
    assert!(crosses(&lc, &hc, LIMIT).await);
    assert!(crosses(&hc, &lc, LIMIT).await);
    lc.publish("secret.x", Bytes::from_static(b"no"))
        .await
        .unwrap();
    lc.publish("public.x", Bytes::from_static(b"yes"))
        .await
        .unwrap();
    lc.flush().await.unwrap();
    assert_eq!(next_msg(&mut at_hub).await.subject.as_str(), "public.x");
    hc.publish("private.y", Bytes::from_static(b"no"))
        .await
        .unwrap();
    hc.publish("public.y", Bytes::from_static(b"yes"))
        .await
        .unwrap();
    hc.flush().await.unwrap();
    assert_eq!(next_msg(&mut at_leaf).await.subject.as_str(), "public.y");
}

#[tokio::test]
async fn deny_rules_rnats_leaf_on_reference_hub() {
    deny_rules(
        Impl::Reference,
        Impl::Rnats,
        "deny_rules_rnats_leaf_on_reference_hub",
    )
    .await;
}

#[tokio::test]
async fn deny_rules_reference_leaf_on_rnats_hub() {
    deny_rules(
        Impl::Rnats,
        Impl::Reference,
        "deny_rules_reference_leaf_on_rnats_hub",
    )
    .await;
}

/// Two servers that are each other's hub and leaf form a loop: the
/// loop-detection subject comes back and the connection is refused with
/// nats-server's error.
async fn loop_detected(a: Impl, b: Impl, test: &str) {
    let Some(reference) = reference_for(&[a, b], test) else {
        return;
    };
    let (pa, pb) = (free_port(), free_port());
    let conf = |own: u16, other: u16| {
        format!(
            "leafnodes {{ port: {own}, remotes = [ {{ url: \"nats://127.0.0.1:{other}\" }} ] }}\n"
        )
    };
    let na = Node::start(a, reference.as_ref(), &conf(pa, pb));
    let nb = Node::start(b, reference.as_ref(), &conf(pb, pa));
    let needle = "Loop detected for leafnode account=\"$G\"";
    let seen = na.server.wait_for_log(needle, LIMIT) || nb.server.log().contains(needle);
    assert!(
        seen,
        "no loop detected\nA:\n{}\nB:\n{}",
        na.server.log(),
        nb.server.log()
    );
}

#[tokio::test]
async fn loop_detected_rnats_both() {
    loop_detected(Impl::Rnats, Impl::Rnats, "loop_detected_rnats_both").await;
}

#[tokio::test]
async fn loop_detected_with_reference() {
    loop_detected(Impl::Rnats, Impl::Reference, "loop_detected_with_reference").await;
}

/// The leaf redials its hub after the hub restarts, and interest and
/// messages flow again.
async fn reconnect_after_hub_restart(hub: Impl, test: &str) {
    let Some(reference) = reference_for(&[hub], test) else {
        return;
    };
    let lp = free_port();
    let mut h = Node::start(
        hub,
        reference.as_ref(),
        &format!("leafnodes {{ port: {lp} }}\n"),
    );
    let l = Node::start(
        Impl::Rnats,
        None,
        &format!("leafnodes {{ remotes = [ {{ url: \"nats://127.0.0.1:{lp}\" }} ], reconnect: \"200ms\" }}\n"),
    );
    let lc = l.client().await;
    {
        let hc = h.client().await;
        assert!(crosses(&hc, &lc, LIMIT).await);
    }
    h.restart(reference.as_ref());
    let hc = h.client().await;
    assert!(
        crosses(&hc, &lc, LIMIT).await && crosses(&lc, &hc, LIMIT).await,
        "no traffic after the hub restarted\nleaf:\n{}",
        l.server.log()
    );
}

#[tokio::test]
async fn reconnect_after_rnats_hub_restart() {
    reconnect_after_hub_restart(Impl::Rnats, "reconnect_after_rnats_hub_restart").await;
}

#[tokio::test]
async fn reconnect_after_reference_hub_restart() {
    reconnect_after_hub_restart(Impl::Reference, "reconnect_after_reference_hub_restart").await;
}

/// A CA and a certificate for 127.0.0.1 signed by it, as PEM files in `dir`:
/// (cert, key, ca).
fn certs(dir: &std::path::Path) -> (String, String, String) {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyUsagePurpose};
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "leaf test CA");
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let mut p =
        CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()]).unwrap();
    p.distinguished_name.push(DnType::CommonName, "hub");
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = p.signed_by(&key, &ca, &ca_key).unwrap();
    let write = |name: &str, text: String| {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    };
    (
        write("cert.pem", cert.pem()),
        write("key.pem", key.serialize_pem()),
        write("ca.pem", ca.pem()),
    )
}

/// TLS on the leaf node port: the hub's INFO (in the clear) asks for TLS,
/// the spoke verifies the hub's certificate and the link carries messages.
async fn over_tls(hub: Impl, leaf: Impl, test: &str) {
    let Some(reference) = reference_for(&[hub, leaf], test) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (cert, key, ca) = certs(dir.path());
    let lp = free_port();
    let h = Node::start(
        hub,
        reference.as_ref(),
        &format!(
            "leafnodes {{ port: {lp}, tls {{ cert_file: \"{cert}\", key_file: \"{key}\" }} }}\n"
        ),
    );
    let l = Node::start(
        leaf,
        reference.as_ref(),
        &format!(
            "leafnodes {{ remotes = [ {{ url: \"tls://127.0.0.1:{lp}\", tls {{ ca_file: \"{ca}\" }} }} ] }}\n"
        ),
    );
    let (hc, lc) = (h.client().await, l.client().await);
    assert!(
        crosses(&hc, &lc, LIMIT).await && crosses(&lc, &hc, LIMIT).await,
        "no traffic over TLS\nhub:\n{}\nleaf:\n{}",
        h.server.log(),
        l.server.log()
    );
}

#[tokio::test]
async fn tls_reference_leaf_on_rnats_hub() {
    over_tls(
        Impl::Rnats,
        Impl::Reference,
        "tls_reference_leaf_on_rnats_hub",
    )
    .await;
}

#[tokio::test]
async fn tls_rnats_leaf_on_reference_hub() {
    over_tls(
        Impl::Reference,
        Impl::Rnats,
        "tls_rnats_leaf_on_reference_hub",
    )
    .await;
}

#[tokio::test]
async fn tls_rnats_both() {
    over_tls(Impl::Rnats, Impl::Rnats, "tls_rnats_both").await;
}
