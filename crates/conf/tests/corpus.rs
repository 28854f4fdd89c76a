//! Corpus test: real-world configuration files (see `corpus/SOURCES.md`)
//! must parse, the few that nats-server itself rejects must fail, and a
//! sample of values is checked.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rnats_conf::{parse_file, ConfError, Map, Spanned};

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus")
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("corpus dir")
        .map(|e| e.expect("dir entry").path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            collect(&p, out);
        } else if matches!(
            p.extension().and_then(|e| e.to_str()),
            Some("conf" | "json")
        ) {
            out.push(p);
        }
    }
}

/// Files that nats-server rejects too, with the reason and the expected
/// error text fragment.
const EXPECTED_FAILURES: &[(&str, &str)] = &[
    // `listen: 10.0.1.22:foo`: the IP-address token ends at 'f'.
    (
        "nats-server/server/configs/malformed_listen_address.conf",
        "2:19: expected a newline, ';', ',' or a comment after the value, found 'f'",
    ),
    (
        "nats-server/server/configs/malformed_cluster_address.conf",
        "3:21: expected a newline, ',', ';' or '}' after the value, found 'f'",
    ),
    // `trace:` with nothing after it.
    (
        "nats-server/server/configs/reload/invalid.conf",
        "2:7: expected a value for key 'trace', found a newline",
    ),
    // Includes platform.conf, which nats-server's reload tests generate.
    (
        "nats-server/server/configs/reload/reload.conf",
        "1:1: cannot read include file",
    ),
    // Deliberately invalid (`"port": : "invalid syntax"`).
    (
        "nats.py/nats-server__invalid.conf",
        "2:13: expected a newline, ';', ',' or a comment after the value, found '\"'",
    ),
    // `operator: ./op.jwt`: nats-server's lexer rejects unquoted values
    // starting with '.' ("Floats must start with a digit").
    (
        "seeds/000_operator.conf",
        "2:11: floats must start with a digit, not '.'",
    ),
    // `routes: [...]`, a placeholder in a tutorial.
    (
        "seeds/000_production.conf",
        "11:10: floats must start with a digit, not '.'",
    ),
];

#[test]
fn every_corpus_file_parses_or_fails_as_nats_server_does() {
    let root = corpus();
    let mut files = Vec::new();
    collect(&root, &mut files);
    assert!(files.len() > 150, "corpus has only {} files", files.len());
    let mut problems = Vec::new();
    for f in &files {
        let rel = f
            .strip_prefix(&root)
            .expect("under root")
            .to_string_lossy()
            .replace('\\', "/");
        let expected = EXPECTED_FAILURES.iter().find(|(name, _)| *name == rel);
        match (parse_file(f), expected) {
            (Ok(m), None) => {
                if m.is_empty() {
                    problems.push(format!("{rel}: parsed to an empty map"));
                }
            }
            (Err(e), None) => problems.push(format!("{rel}: {e}")),
            (Ok(_), Some(_)) => problems.push(format!("{rel}: parsed but should fail")),
            (Err(e), Some((_, want))) => {
                let got = e.to_string();
                if !got.contains(want) || !got.contains(&rel) {
                    problems.push(format!("{rel}: wrong error {got:?}, want {want:?}"));
                }
            }
        }
    }
    for (name, _) in EXPECTED_FAILURES {
        assert!(root.join(name).exists(), "{name} missing from corpus");
    }
    assert!(
        problems.is_empty(),
        "corpus problems:\n{}",
        problems.join("\n")
    );
}

fn load(rel: &str) -> Map {
    match parse_file(corpus().join(rel)) {
        Ok(m) => m,
        Err(e) => panic!("{rel}: {e}"),
    }
}

fn at<'m>(m: &'m Map, path: &str) -> &'m Spanned {
    let mut cur = m;
    let parts: Vec<&str> = path.split('.').collect();
    for (i, part) in parts.iter().enumerate() {
        let v = cur
            .get(part)
            .unwrap_or_else(|| panic!("missing {part} of {path}"));
        if i + 1 == parts.len() {
            return v;
        }
        cur = v.as_map().unwrap_or_else(|e| panic!("{path}: {e}"));
    }
    unreachable!("empty path")
}

#[test]
fn nats_server_simple_conf_with_nested_includes_and_bcrypt_variables() {
    let m = load("nats-server/conf/simple.conf");
    assert_eq!(at(&m, "listen").as_str().unwrap(), "127.0.0.1:4222");
    assert_eq!(at(&m, "authorization.timeout").as_float().unwrap(), 0.5);
    let users = at(&m, "authorization.users").as_array().unwrap();
    assert_eq!(users.len(), 2);
    let bob = users[1].as_map().unwrap();
    assert_eq!(bob.get("user").unwrap().as_str().unwrap(), "bob");
    assert_eq!(
        bob.get("password").unwrap().as_str().unwrap(),
        "$2a$11$dZM98SpGeI7dCFFGSpt.JObQcix8YHml4TBUZoge9R1uxnMIln5ly"
    );
    // Keys from the twice-included passwords file are in the map, and marked
    // as variables since users.conf refers to them.
    let auth = at(&m, "authorization").as_map().unwrap();
    assert!(auth.get_entry("BOB_PASS").unwrap().used_as_variable);
    let pos = &auth.get("ALICE_PASS").unwrap().pos;
    assert!(pos
        .file
        .as_deref()
        .unwrap()
        .ends_with("conf/includes/passwords.conf"));
    assert_eq!(pos.line, 2);
}

#[test]
fn nats_server_test_conf_values() {
    let m = load("nats-server/server/configs/test.conf");
    assert_eq!(at(&m, "server_name").as_str().unwrap(), "testing_server");
    assert_eq!(at(&m, "listen").as_str().unwrap(), "127.0.0.1:4242");
    assert_eq!(at(&m, "http").as_int().unwrap(), 8222);
    assert_eq!(at(&m, "http_base_path").as_str().unwrap(), "/nats");
    assert!(at(&m, "trace").as_bool().unwrap());
    assert!(!at(&m, "feature_flags.feature").as_bool().unwrap());
    assert_eq!(
        at(&m, "ping_interval").as_duration().unwrap(),
        Duration::from_secs(60)
    );
    assert_eq!(
        at(&m, "lame_duck_duration").as_duration().unwrap(),
        Duration::from_secs(240)
    );
    assert_eq!(at(&m, "max_pending").as_int().unwrap(), 10_000_000);
    assert_eq!(
        at(&m, "authorization.password").as_str().unwrap(),
        "porkchop"
    );
}

#[test]
fn nats_server_authorization_with_role_variables_from_include() {
    let m = load("nats-server/test/configs/authorization.conf");
    let users = at(&m, "authorization.users").as_array().unwrap();
    assert_eq!(users.len(), 9);
    let alice = users[0].as_map().unwrap();
    let perms = alice.get("permissions").unwrap().as_map().unwrap();
    assert_eq!(perms.get("publish").unwrap().as_str().unwrap(), ">");
    let ns = users[4]
        .as_map()
        .unwrap()
        .get("permissions")
        .unwrap()
        .as_map()
        .unwrap();
    let deny = ns
        .get("publish")
        .unwrap()
        .as_map()
        .unwrap()
        .get("deny")
        .unwrap();
    assert_eq!(deny.as_array().unwrap().len(), 3);
    // The value carries the position of the `$ADMIN` reference.
    let p = &alice.get("permissions").unwrap().pos;
    assert_eq!(p.line, 12);
    assert!(p
        .file
        .as_deref()
        .unwrap()
        .ends_with("test/configs/authorization.conf"));
}

#[test]
fn async_nats_configs() {
    let m = load("nats.rs/async-nats__jetstream.conf");
    assert!(at(&m, "jetstream.strict").as_bool().unwrap());
    assert_eq!(
        at(&m, "jetstream.max_mem_store").as_size().unwrap(),
        64 << 20
    );
    assert_eq!(
        at(&m, "jetstream.max_file_store").as_int().unwrap(),
        10 << 30
    );

    let m = load("nats.rs/async-nats__jwt.conf");
    assert_eq!(at(&m, "resolver").as_str().unwrap(), "MEMORY");
    let preload = at(&m, "resolver_preload").as_map().unwrap();
    assert_eq!(preload.len(), 2);
    assert!(preload
        .get("ABREJNYASWGS2A5EVXPVXGGCOK2LJXT7KZNYBBZAXUTUBI2VSMAV7DHN")
        .unwrap()
        .as_str()
        .unwrap()
        .starts_with("eyJ0eXAiOiJKV1Qi"));

    let m = load("nats.rs/nats__jetstream-domain-leaf.conf");
    let remotes = at(&m, "leafnodes.remotes").as_array().unwrap();
    let urls = remotes[0]
        .as_map()
        .unwrap()
        .get("urls")
        .unwrap()
        .as_array()
        .unwrap();
    assert_eq!(urls[0].as_str().unwrap(), "nats://127.0.0.1:7422");
    assert_eq!(at(&m, "jetstream.domain").as_str().unwrap(), "leaf");
    assert_eq!(at(&m, "jetstream.max_mem_store").as_int().unwrap(), 8 << 20);
}

#[test]
fn nats_py_configs() {
    let m = load("nats.py/nats__conf_js-limits.conf");
    assert_eq!(at(&m, "no_auth_user").as_str().unwrap(), "foo");
    let js = at(&m, "accounts.A.jetstream").as_map().unwrap();
    assert_eq!(js.get("max_mem").unwrap().as_int().unwrap(), 64 << 20);
    assert!(js.get("max_stream_bytes").unwrap().as_bool().unwrap());
    assert_eq!(js.keys().count(), 8);

    let m = load("nats.py/nats-core__resolver_preload.conf");
    assert_eq!(at(&m, "resolver").as_str().unwrap(), "MEMORY");
    assert_eq!(at(&m, "resolver_preload").as_map().unwrap().len(), 2);
}

#[test]
fn seed_snippets() {
    let m = load("seeds/000_cluster.conf");
    assert_eq!(at(&m, "cluster.port").as_int().unwrap(), 6222);
    assert_eq!(at(&m, "cluster.routes").as_array().unwrap().len(), 3);
    let m = load("seeds/000_leafnodes.conf");
    let remote = at(&m, "leafnodes.remotes").as_array().unwrap()[0]
        .as_map()
        .unwrap();
    assert_eq!(
        remote.get("url").unwrap().as_str().unwrap(),
        "nats://main-cluster:7422"
    );
    let m = load("seeds/004_jetstream.conf");
    assert_eq!(at(&m, "jetstream.store_dir").as_str().unwrap(), "nats");
    let m = load("seeds/004_stream.json");
    assert_eq!(at(&m, "max_age").as_int().unwrap(), 31_536_000_000_000_000);
    assert_eq!(at(&m, "max_consumers").as_int().unwrap(), -1);
    assert_eq!(
        at(&m, "subjects").as_array().unwrap()[0].as_str().unwrap(),
        "ORDERS.*"
    );
}

#[test]
fn include_cycle_free_chain_in_server_configs() {
    // include_conf_check_a -> b -> c: three files, one map.
    let m = load("nats-server/server/configs/include_conf_check_a.conf");
    assert_eq!(at(&m, "port").as_int().unwrap(), 4222);
    assert_eq!(at(&m, "http_port").as_int().unwrap(), 8222);
    assert_eq!(at(&m, "authorization.user").as_str().unwrap(), "foo");
    let e = parse_file(corpus().join("does-not-exist.conf")).unwrap_err();
    assert!(matches!(e, ConfError::Io { .. }));
}
