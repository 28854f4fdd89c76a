//! Test certificates for server-to-server TLS (routes, gateways): a CA and a
//! node certificate for 127.0.0.1/localhost with server and client use,
//! written as PEM files.

use std::path::PathBuf;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};

fn make_ca(name: &str) -> (rcgen::Certificate, KeyPair) {
    let mut p = CertificateParams::new(Vec::<String>::new()).expect("params");
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.distinguished_name.push(DnType::CommonName, name);
    p.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let key = KeyPair::generate().expect("key");
    (p.self_signed(&key).expect("self-signed"), key)
}

/// A CA and, signed by it, a node certificate for 127.0.0.1 usable on both
/// ends of a route; written to `dir` as `<tag>-{ca,cert,key}.pem`.
pub fn node_certs(dir: &std::path::Path, tag: &str) -> (PathBuf, PathBuf, PathBuf) {
    let ca = make_ca(&format!("{tag} CA"));
    let mut p = CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
        .expect("params");
    p.distinguished_name.push(DnType::CommonName, "node");
    p.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    let key = KeyPair::generate().expect("key");
    let cert = p.signed_by(&key, &ca.0, &ca.1).expect("sign");
    let write = |name: &str, text: &str| {
        let path = dir.join(format!("{tag}-{name}.pem"));
        std::fs::write(&path, text).expect("write pem");
        path
    };
    (
        write("cert", &cert.pem()),
        write("key", &key.serialize_pem()),
        write("ca", &ca.0.pem()),
    )
}
