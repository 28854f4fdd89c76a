//! Owns the crate's unit tests for the language as a whole: every syntactic
//! form, variables, includes, and malformed inputs with their exact
//! `line:col` error positions.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::{ConfError, DateTime, Map, Parser, Spanned, Value};

fn parser() -> Parser {
    Parser::new().env(|name| match name {
        "ENV_PORT" => Some("4333".into()),
        "ENV_TEXT" => Some("hello world".into()),
        "ENV_MAP" => Some("{ a: 1, b: [x, y] }".into()),
        "ENV_EMPTY" => Some(String::new()),
        "ENV_REF" => Some("$ENV_PORT".into()),
        "ENV_LOOP_A" => Some("$ENV_LOOP_B".into()),
        "ENV_LOOP_B" => Some("$ENV_LOOP_A".into()),
        "ENV_BAD" => Some("{ a: 1".into()),
        _ => None,
    })
}

fn parse(src: &str) -> Map {
    match parser().parse_str(src) {
        Ok(m) => m,
        Err(e) => panic!("parse failed: {e}\n--- input ---\n{src}"),
    }
}

fn err(src: &str) -> String {
    match parser().parse_str(src) {
        Ok(m) => panic!("expected an error, got {m:?}\n--- input ---\n{src}"),
        Err(e) => e.to_string(),
    }
}

fn get<'m>(m: &'m Map, path: &str) -> &'m Spanned {
    let mut cur = m;
    let parts: Vec<&str> = path.split('.').collect();
    for (i, part) in parts.iter().enumerate() {
        let v = cur
            .get(part)
            .unwrap_or_else(|| panic!("missing key {part} in {path}"));
        if i + 1 == parts.len() {
            return v;
        }
        cur = v.as_map().expect("intermediate map");
    }
    unreachable!("empty path")
}

fn int(m: &Map, path: &str) -> i64 {
    get(m, path).as_int().expect("integer")
}

fn text<'m>(m: &'m Map, path: &str) -> &'m str {
    get(m, path).as_str().expect("string")
}

// ---------------------------------------------------------------- basics

#[test]
fn separators_and_comments() {
    let m = parse(
        "# hash comment\n// slash comment\na = 1\nb: 2\nc 3\nd=4;e:5, f 6 # trailing\n g = 7 // trailing\n",
    );
    for (k, v) in [
        ("a", 1),
        ("b", 2),
        ("c", 3),
        ("d", 4),
        ("e", 5),
        ("f", 6),
        ("g", 7),
    ] {
        assert_eq!(int(&m, k), v, "{k}");
    }
    assert_eq!(
        m.keys().collect::<Vec<_>>(),
        ["a", "b", "c", "d", "e", "f", "g"]
    );
}

#[test]
fn quoted_keys() {
    let m = parse("\"a b\" = 1\n'c:d' : 2\nm { \"x=y\": 3, 'include' 4 }\n");
    assert_eq!(int(&m, "a b"), 1);
    assert_eq!(int(&m, "c:d"), 2);
    let inner = get(&m, "m").as_map().unwrap();
    assert_eq!(inner.get("x=y").unwrap().as_int().unwrap(), 3);
    assert_eq!(inner.get("include").unwrap().as_int().unwrap(), 4);
}

#[test]
fn key_without_separator_spans_newlines() {
    let m = parse("foo\n\n  bar\n");
    assert_eq!(text(&m, "foo"), "bar");
}

#[test]
fn positions_of_keys_and_values() {
    let m = parse("\n  port: 4222\nm {\n   x = \"s\"\n}\n");
    let e = m.get_entry("port").unwrap();
    assert_eq!((e.key_pos.line, e.key_pos.col), (2, 3));
    assert_eq!((e.value.pos.line, e.value.pos.col), (2, 9));
    let mm = m.get_entry("m").unwrap();
    assert_eq!((mm.value.pos.line, mm.value.pos.col), (3, 3));
    let x = mm.value.as_map().unwrap().get_entry("x").unwrap();
    assert_eq!((x.key_pos.line, x.key_pos.col), (4, 4));
    assert_eq!((x.value.pos.line, x.value.pos.col), (4, 8));
}

#[test]
fn duplicate_key_later_wins() {
    let m = parse("a = 1\nb = 2\na = 3\n");
    assert_eq!(int(&m, "a"), 3);
    assert_eq!(m.len(), 2);
    assert_eq!(m.get_entry("a").unwrap().key_pos.line, 3);
    // Maps are replaced, not merged.
    let m = parse("c { x = 1 }\nc { y = 2 }\n");
    let c = get(&m, "c").as_map().unwrap();
    assert!(c.get("x").is_none());
    assert_eq!(c.get("y").unwrap().as_int().unwrap(), 2);
}

#[test]
fn get_ignore_case() {
    let m = parse("Port: 1\n");
    assert_eq!(m.get_ignore_case("PORT").unwrap().as_int().unwrap(), 1);
    assert!(m.get("port").is_none());
}

// ---------------------------------------------------------------- strings

#[test]
fn string_forms() {
    let m = parse(concat!(
        "a = \"double \\\"q\\\" \\\\ \\t\\n\\r \\x41\\xe2\\x82\\xac\"\n",
        "b = 'single \\n no escapes'\n",
        "c = bare-string/with:colons\n",
        "d = nats://host:4222\n",
        "e = \"\"\n",
        "f = 'multi\nline'\n",
        "g = bare\\tescaped\n",
    ));
    assert_eq!(text(&m, "a"), "double \"q\" \\ \t\n\r A\u{20ac}");
    assert_eq!(text(&m, "b"), "single \\n no escapes");
    assert_eq!(text(&m, "c"), "bare-string/with:colons");
    assert_eq!(text(&m, "d"), "nats://host:4222");
    assert_eq!(text(&m, "e"), "");
    assert_eq!(text(&m, "f"), "multi\nline");
    assert_eq!(text(&m, "g"), "bare\tescaped");
}

#[test]
fn bare_string_terminators() {
    let m = parse("a = x#y\nb = [p, q]\nc { d = v}\n");
    // '#' does not end an unquoted string (as in nats-server).
    assert_eq!(text(&m, "a"), "x#y");
    let b = get(&m, "b").as_array().unwrap();
    assert_eq!(b[1].as_str().unwrap(), "q");
    assert_eq!(text(&m, "c.d"), "v");
}

#[test]
fn block_strings() {
    let m = parse("numbers (\n1234567890\n)\nnext = 1\n");
    assert_eq!(text(&m, "numbers"), "\n1234567890\n");
    assert_eq!(int(&m, "next"), 1);
    let m = parse("numbers (\n  12(34)56\n  (\n    7890\n  )\n)\n");
    assert_eq!(text(&m, "numbers"), "\n  12(34)56\n  (\n    7890\n  )\n");
    // Closing at the end of input, and with CRLF line ends.
    assert_eq!(text(&parse("k = (\nabc\n)"), "k"), "\nabc\n");
    assert_eq!(text(&parse("k = (\r\nabc\r\n)\r\n"), "k"), "\r\nabc\r\n");
}

// ---------------------------------------------------------------- scalars

#[test]
fn booleans_case_insensitive() {
    let m = parse("a=true\nb=FALSE\nc=Yes\nd=no\ne=ON\nf=off\ng=\"true\"\nh=truely\n");
    let expect = [
        ("a", true),
        ("b", false),
        ("c", true),
        ("d", false),
        ("e", true),
        ("f", false),
    ];
    for (k, v) in expect {
        assert_eq!(get(&m, k).as_bool().unwrap(), v, "{k}");
    }
    assert_eq!(text(&m, "g"), "true");
    assert_eq!(text(&m, "h"), "truely");
}

#[test]
fn integers_and_floats() {
    let m = parse("a = 123\nb = -123\nc = 0\nd = 1.5\ne = -0.25\nf = 9223372036854775807\ng = -9223372036854775808\n");
    assert_eq!(int(&m, "a"), 123);
    assert_eq!(int(&m, "b"), -123);
    assert_eq!(int(&m, "c"), 0);
    assert_eq!(get(&m, "d").as_float().unwrap(), 1.5);
    assert_eq!(get(&m, "e").as_float().unwrap(), -0.25);
    assert_eq!(int(&m, "f"), i64::MAX);
    assert_eq!(int(&m, "g"), i64::MIN);
}

#[test]
fn size_suffixes_match_nats_server() {
    let cases: &[(&str, i64)] = &[
        ("1k", 1000),
        ("1K", 1000),
        ("1kb", 1024),
        ("1KB", 1024),
        ("1Ki", 1024),
        ("1KiB", 1024),
        ("1kib", 1024),
        ("2m", 2_000_000),
        ("2MB", 2 * 1024 * 1024),
        ("1g", 1_000_000_000),
        ("1Gi", 1 << 30),
        ("1t", 1_000_000_000_000),
        ("1TB", 1 << 40),
        ("1p", 1_000_000_000_000_000),
        ("1pib", 1 << 50),
        ("1e", 1_000_000_000_000_000_000),
        ("1EB", 1 << 60),
        ("-1k", -1000),
        ("-2MiB", -2 * 1024 * 1024),
    ];
    for (src, want) in cases {
        let m = parse(&format!("v = {src}\n"));
        assert_eq!(int(&m, "v"), *want, "{src}");
    }
    // Inside maps and arrays, before '}' and ']'.
    let m = parse("m {a: 1k}\nl = [1k, 2]\n");
    assert_eq!(int(&m, "m.a"), 1000);
    let l = get(&m, "l").as_array().unwrap();
    assert_eq!(l[0].as_int().unwrap(), 1000);
    assert_eq!(l[1].as_int().unwrap(), 2);
}

#[test]
fn number_like_strings() {
    let m = parse(concat!(
        "a = 10s\n",
        "b = 500ms\n",
        "c = 1h30m\n",
        "d = 127.0.0.1\n",
        "e = 127.0.0.1:4222\n",
        "f = 0.0.0.0:4222\n",
        "g = 4222abc\n",
        "h = 5minutes\n",
        "i = \"2m\"\n",
    ));
    assert_eq!(text(&m, "a"), "10s");
    assert_eq!(text(&m, "b"), "500ms");
    assert_eq!(text(&m, "c"), "1h30m");
    assert_eq!(text(&m, "d"), "127.0.0.1");
    assert_eq!(text(&m, "e"), "127.0.0.1:4222");
    assert_eq!(text(&m, "f"), "0.0.0.0:4222");
    assert_eq!(text(&m, "g"), "4222abc");
    assert_eq!(text(&m, "h"), "5minutes");
    assert_eq!(text(&m, "i"), "2m");
}

#[test]
fn durations_as_written_by_users() {
    let m =
        parse("a = \"2m\"\nb = 10s\nc = 1h30m\nd = 500ms\ne = 30\nf = '1.5h'\ng = 2m\nh = 1us\n");
    let d = |k: &str| get(&m, k).as_duration().unwrap();
    assert_eq!(d("a"), Duration::from_secs(120));
    assert_eq!(d("b"), Duration::from_secs(10));
    assert_eq!(d("c"), Duration::from_secs(5400));
    assert_eq!(d("d"), Duration::from_millis(500));
    assert_eq!(d("e"), Duration::from_secs(30));
    assert_eq!(d("f"), Duration::from_secs(5400));
    // Unquoted 2m is the integer 2000000, hence seconds, as in nats-server.
    assert_eq!(d("g"), Duration::from_secs(2_000_000));
    assert_eq!(d("h"), Duration::from_micros(1));
    let e = parse("x = \"forever\"")
        .get("x")
        .unwrap()
        .as_duration()
        .unwrap_err();
    assert_eq!(e.to_string(), "<string>:1:5: invalid duration \"forever\"");
}

#[test]
fn datetimes() {
    let m = parse("t = 2016-05-04T18:53:41Z\n");
    assert_eq!(
        get(&m, "t").as_datetime().unwrap(),
        DateTime {
            year: 2016,
            month: 5,
            day: 4,
            hour: 18,
            minute: 53,
            second: 41
        }
    );
    assert_eq!(
        parse("t = 2024-02-29T00:00:00Z")
            .get("t")
            .unwrap()
            .value
            .kind(),
        "a date-time"
    );
    assert_eq!(
        err("t = 2023-02-29T00:00:00Z"),
        "<string>:1:5: date-time '2023-02-29T00:00:00Z' is out of range"
    );
    assert_eq!(
        err("t = 2016-05-04"),
        "<string>:1:15: expected 'T' in ISO8601 date-time, found end of file"
    );
    assert_eq!(
        err("t = 16-05-04T18:53:41Z"),
        "<string>:1:7: dates must be in full ISO8601 Zulu form: YYYY-MM-DDTHH:MM:SSZ"
    );
}

// ---------------------------------------------------------------- structure

#[test]
fn nested_maps_and_arrays() {
    let m = parse(concat!(
        "cluster {\n",
        "  name: c1\n",
        "  routes = [\n",
        "    nats://a:6222 # first\n",
        "    nats://b:6222,\n",
        "    \"nats://c:6222\",\n",
        "  ]\n",
        "  authorization { user: ruser, timeout: 0.5 }\n",
        "}\n",
        "empty_map {}\n",
        "empty_arr []\n",
        "mixed = [1, \"two\", 3.0, true, [4], {five: 5}]\n",
    ));
    let routes = get(&m, "cluster.routes").as_array().unwrap();
    let routes: Vec<&str> = routes.iter().map(|r| r.as_str().unwrap()).collect();
    assert_eq!(routes, ["nats://a:6222", "nats://b:6222", "nats://c:6222"]);
    assert_eq!(text(&m, "cluster.authorization.user"), "ruser");
    assert!(get(&m, "empty_map").as_map().unwrap().is_empty());
    assert!(get(&m, "empty_arr").as_array().unwrap().is_empty());
    let mixed = get(&m, "mixed").as_array().unwrap();
    assert_eq!(mixed.len(), 6);
    assert_eq!(mixed[2].value, Value::Float(3.0));
    assert_eq!(mixed[4].as_array().unwrap()[0].as_int().unwrap(), 4);
    assert_eq!(
        mixed[5]
            .as_map()
            .unwrap()
            .get("five")
            .unwrap()
            .as_int()
            .unwrap(),
        5
    );
}

#[test]
fn map_value_may_follow_on_next_line() {
    let m = parse("m {\n  a =\n    1\n}\n");
    assert_eq!(int(&m, "m.a"), 1);
}

#[test]
fn json_documents() {
    let m = parse(
        r#"{
  "name": "ORDERS",
  "subjects": ["ORDERS.*"],
  "max_consumers": -1,
  "max_age": 31536000000000000,
  "nested": {"a": {"b": true}, "list": [1, 2, 3]},
  "f": 1.25
}"#,
    );
    assert_eq!(text(&m, "name"), "ORDERS");
    assert_eq!(int(&m, "max_consumers"), -1);
    assert_eq!(int(&m, "max_age"), 31_536_000_000_000_000);
    assert!(get(&m, "nested.a.b").as_bool().unwrap());
    let list = get(&m, "nested.list").as_array().unwrap();
    assert_eq!(
        list.iter().map(|v| v.as_int().unwrap()).collect::<Vec<_>>(),
        [1, 2, 3]
    );
    // Compact JSON.
    let m = parse(r#"{"a":1,"b":{"c":"d"},"e":[true,false]}"#);
    assert_eq!(int(&m, "a"), 1);
    assert_eq!(text(&m, "b.c"), "d");
    // Keys after the outer block and nested outer braces.
    let m = parse("{ a: 1 }\nb: 2\n{{ c: 3 }}\n");
    assert_eq!((int(&m, "a"), int(&m, "b"), int(&m, "c")), (1, 2, 3));
}

#[test]
fn stray_closing_brace_at_end_is_tolerated() {
    let m = parse("a = 1\n}\n");
    assert_eq!(int(&m, "a"), 1);
    let m = parse("a = 1 }\nb = 2\n");
    assert_eq!(int(&m, "b"), 2);
    assert_eq!(
        err("a = 1\n}\nb = 2\n"),
        "<string>:2:1: unexpected '}' with no matching '{'"
    );
}

// ---------------------------------------------------------------- variables

#[test]
fn variables_from_enclosing_blocks() {
    let m = parse(concat!(
        "TOP = 100\n",
        "a = $TOP\n",
        "m {\n",
        "  INNER: inner\n",
        "  b = $TOP\n",
        "  c = $INNER\n",
        "  list = [$TOP, {d: $INNER}]\n",
        "}\n",
    ));
    assert_eq!(int(&m, "a"), 100);
    assert_eq!(int(&m, "m.b"), 100);
    assert_eq!(text(&m, "m.c"), "inner");
    let list = get(&m, "m.list").as_array().unwrap();
    assert_eq!(list[0].as_int().unwrap(), 100);
    assert_eq!(
        list[1]
            .as_map()
            .unwrap()
            .get("d")
            .unwrap()
            .as_str()
            .unwrap(),
        "inner"
    );
    assert!(m.get_entry("TOP").unwrap().used_as_variable);
    assert!(!m.get_entry("a").unwrap().used_as_variable);
    // The value takes the position of the reference.
    let a = get(&m, "a");
    assert_eq!((a.pos.line, a.pos.col), (2, 5));
}

#[test]
fn variables_are_copied_maps_too() {
    let m = parse("base { x: 1 }\ncopy: $base\n");
    assert_eq!(int(&m, "copy.x"), 1);
}

#[test]
fn variable_defined_later_or_in_sibling_is_not_visible() {
    assert_eq!(
        err("a = $LATER\nLATER = 1\n"),
        "<string>:1:5: undefined variable '$LATER': not defined earlier in this or an enclosing block, nor in the environment"
    );
    let e = err("m { X = 1 }\nn { y = $X }\n");
    assert!(
        e.starts_with("<string>:2:9: undefined variable '$X'"),
        "{e}"
    );
}

#[test]
fn variables_from_environment() {
    let m = parse("port: $ENV_PORT\nm: $ENV_MAP\ne: $ENV_EMPTY\nr: $ENV_REF\n");
    // The environment value is parsed as a value: "4333" is an integer.
    assert_eq!(int(&m, "port"), 4333);
    assert_eq!(int(&m, "m.a"), 1);
    assert_eq!(get(&m, "m.b").as_array().unwrap().len(), 2);
    assert_eq!(text(&m, "e"), "");
    assert_eq!(int(&m, "r"), 4333);
}

#[test]
fn environment_errors() {
    assert_eq!(
        err("a: $ENV_LOOP_A"),
        "<string>:1:4: in the value of environment variable '$ENV_LOOP_A': <string>:1:4: in the value of environment variable '$ENV_LOOP_B': <string>:1:4: variable reference cycle through environment variable '$ENV_LOOP_A'"
    );
    let e = err("a: $ENV_BAD");
    assert_eq!(
        e,
        "<string>:1:4: in the value of environment variable '$ENV_BAD': <string>:1:4: unterminated map: this '{' is never closed"
    );
}

#[test]
fn env_text_with_space_is_an_error_like_nats_server() {
    let e = err("t: $ENV_TEXT");
    assert!(e.contains("found 'w'"), "{e}");
}

#[test]
fn local_definition_shadows_environment() {
    let m = parse("ENV_PORT = 1\np = $ENV_PORT\n");
    assert_eq!(int(&m, "p"), 1);
}

#[test]
fn braces_dollar_is_not_variable_syntax() {
    let e = err("a = ${ENV_PORT}\n");
    assert!(
        e.starts_with("<string>:1:5: undefined variable '${ENV_PORT'"),
        "{e}"
    );
}

#[test]
fn bcrypt_hashes_are_not_variables() {
    let m = parse("password: $2a$11$3kIDaCxw.Glsl1.u5nKa6eUnNDLV5HV9tIuUp7EHhMt6Nm9myW1aS\n");
    assert_eq!(
        text(&m, "password"),
        "$2a$11$3kIDaCxw.Glsl1.u5nKa6eUnNDLV5HV9tIuUp7EHhMt6Nm9myW1aS"
    );
    // Quoted text starting with '$' is never a variable.
    assert_eq!(text(&parse("a = \"$NOPE\""), "a"), "$NOPE");
}

#[test]
fn process_environment_is_the_default() {
    let e = crate::parse_str("q: $RNATS_CONF_SURELY_UNSET_VARIABLE\n").unwrap_err();
    assert!(matches!(e, ConfError::UndefinedVariable { .. }), "{e}");
    // PATH is set in any test environment; the default parser reads it.
    if let Ok(path) = std::env::var("PATH") {
        if !path.is_empty() && !path.contains(char::is_whitespace) {
            let m = crate::parse_str("q: $PATH\n").unwrap();
            assert_eq!(m.get("q").unwrap().as_str().unwrap(), path);
        }
    }
}

// ---------------------------------------------------------------- includes

struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("rnats-conf-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
    fn write(&self, rel: &str, text: &str) -> PathBuf {
        let p = self.0.join(rel);
        if let Some(parent) = p.parent() {
            fs::create_dir_all(parent).unwrap();
        }
        fs::write(&p, text).unwrap();
        p
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

#[test]
fn include_forms_and_merge() {
    let t = TempDir::new("include");
    t.write(
        "sub/users.conf",
        "users = [ {user: a, password: $PW} ]\nPW: hidden\ninclude ./pw.conf\n",
    );
    t.write("sub/pw.conf", "shared: from_pw;");
    t.write("single.conf", "single: 1");
    let main = t.write(
        "main.conf",
        "PW = top\nport: 1\nauthorization {\n  include 'sub/users.conf' # comment\n  timeout: 2\n}\ninclude \"single.conf\"\nINCLUDE single.conf\nport: 3\n",
    );
    // Included files do not see the includer's variables: $PW there is
    // resolved from the environment (here: absent).
    let e = parser().parse_file(&main).unwrap_err();
    assert!(
        matches!(&e, ConfError::UndefinedVariable { name, pos } if name == "PW" && pos.line == 1),
        "{e}"
    );
    t.write(
        "sub/users.conf",
        "PW: hidden\nusers = [ {user: a, password: $PW} ]\ninclude ./pw.conf\n",
    );
    let m = parser().parse_file(&main).unwrap();
    assert_eq!(int(&m, "port"), 3);
    assert_eq!(int(&m, "single"), 1);
    assert_eq!(int(&m, "authorization.timeout"), 2);
    assert_eq!(text(&m, "authorization.shared"), "from_pw");
    let users = get(&m, "authorization.users").as_array().unwrap();
    assert_eq!(
        users[0]
            .as_map()
            .unwrap()
            .get("password")
            .unwrap()
            .as_str()
            .unwrap(),
        "hidden"
    );
    // Positions inside included files name those files.
    let pos = &get(&m, "authorization.shared").pos;
    let file = pos.file.as_deref().unwrap();
    assert!(file.ends_with("sub/pw.conf"), "{}", file.display());
    assert_eq!((pos.line, pos.col), (1, 9));
}

#[test]
fn included_keys_are_variables_for_the_includer() {
    let t = TempDir::new("include-vars");
    t.write("vars.conf", "HOST = example.com\n");
    let main = t.write("main.conf", "include vars.conf\nurl = $HOST\n");
    let m = parser().parse_file(main).unwrap();
    assert_eq!(text(&m, "url"), "example.com");
}

#[test]
fn include_paths_relative_to_including_file_and_base() {
    let t = TempDir::new("include-rel");
    t.write("a/b/c.conf", "deep = 1\n");
    t.write("a/b.conf", "include b/c.conf\n");
    let main = t.write("main.conf", "include a/b.conf\n");
    assert_eq!(int(&parser().parse_file(main).unwrap(), "deep"), 1);
    // parse_str resolves against include_base.
    let m = parser()
        .include_base(&t.0)
        .parse_str("include a/b.conf")
        .unwrap();
    assert_eq!(int(&m, "deep"), 1);
    // A leading '/' is joined, not absolute (Go filepath.Join semantics).
    let m = parser()
        .include_base(&t.0)
        .parse_str("include /a/b.conf")
        .unwrap();
    assert_eq!(int(&m, "deep"), 1);
}

#[test]
fn include_cycle_is_detected() {
    let t = TempDir::new("include-cycle");
    t.write("b.conf", "y = 2\ninclude a.conf\n");
    let a = t.write("a.conf", "x = 1\ninclude b.conf\n");
    let e = parser().parse_file(&a).unwrap_err();
    match &e {
        ConfError::IncludeCycle { pos, chain } => {
            assert_eq!(pos.line, 2);
            assert!(pos.file.as_deref().unwrap().ends_with("b.conf"));
            let names: Vec<_> = chain
                .iter()
                .map(|p| p.file_name().unwrap().to_str().unwrap().to_string())
                .collect();
            assert_eq!(names, ["a.conf", "b.conf", "a.conf"]);
        }
        other => panic!("unexpected {other}"),
    }
    assert!(e.to_string().contains("include cycle: "), "{e}");
    assert!(e.to_string().ends_with("a.conf"), "{e}");
    // Self-include.
    let s = t.write("self.conf", "include self.conf\n");
    assert!(matches!(
        parser().parse_file(s),
        Err(ConfError::IncludeCycle { .. })
    ));
}

#[test]
fn diamond_include_is_not_a_cycle() {
    let t = TempDir::new("include-diamond");
    t.write("common.conf", "c = 1\n");
    t.write("l.conf", "include common.conf\n");
    t.write("r.conf", "include common.conf\n");
    let main = t.write("main.conf", "include l.conf\ninclude r.conf\n");
    assert_eq!(int(&parser().parse_file(main).unwrap(), "c"), 1);
}

#[test]
fn missing_include_and_missing_file() {
    let t = TempDir::new("include-missing");
    let main = t.write("main.conf", "a = 1\n  include nope.conf\n");
    let e = parser().parse_file(&main).unwrap_err();
    match &e {
        ConfError::Include {
            pos, path, kind, ..
        } => {
            assert_eq!((pos.line, pos.col), (2, 3));
            assert!(path.ends_with("nope.conf"));
            assert_eq!(*kind, std::io::ErrorKind::NotFound);
        }
        other => panic!("unexpected {other}"),
    }
    assert!(
        e.to_string()
            .contains("main.conf:2:3: cannot read include file"),
        "{e}"
    );
    let e = parser().parse_file(t.0.join("absent.conf")).unwrap_err();
    assert!(
        matches!(
            e,
            ConfError::Io {
                kind: std::io::ErrorKind::NotFound,
                ..
            }
        ),
        "{e}"
    );
    assert!(e.pos().is_none());
}

#[test]
fn includes_can_be_disabled() {
    let e = parser()
        .disable_includes()
        .parse_str("a = 1\ninclude x.conf\n")
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "<string>:2:1: include directives are disabled"
    );
}

#[test]
fn include_syntax_errors() {
    assert_eq!(
        err("include\n"),
        "<string>:1:8: expected an include path after 'include', found a newline"
    );
    assert_eq!(
        err("include [a]\n"),
        "<string>:1:9: expected an include path after 'include', found '['"
    );
    assert_eq!(
        err("include 1.conf\n"),
        "<string>:1:9: expected an include path after 'include', found '1'"
    );
    assert_eq!(
        err("include \"a.conf\n"),
        "<string>:1:9: unterminated include path: no closing quote"
    );
}

#[test]
fn parse_file_error_names_file() {
    let t = TempDir::new("file-errors");
    let p = t.write(
        "nats.conf",
        "port = 4222\nhttp = 8222\nauthorization { user = }\n",
    );
    let e = parser().parse_file(&p).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "{}:3:24: expected a value for key 'user', found '}}'",
            p.display()
        )
    );
    let shown = e.pos().unwrap().file.as_deref().unwrap();
    assert_eq!(shown, Path::new(&p));
}

// ---------------------------------------------------------------- errors

#[test]
fn malformed_inputs_report_exact_positions() {
    let cases: &[(&str, &str)] = &[
        ("a = \"abc", "1:5: unterminated string: no closing '\"'"),
        ("a = 'abc\n", "1:5: unterminated string: no closing \"'\""),
        ("a = 1\nm {\n  b = 2\n", "2:3: unterminated map: this '{' is never closed"),
        ("a = [1, 2\n", "1:5: unterminated array: this '[' is never closed"),
        ("x = (\nabc\n", "1:5: unterminated block string: no ')' alone on a line closes this '('"),
        ("x = (\nabc )\n", "1:5: unterminated block string: no ')' alone on a line closes this '('"),
        ("{ a = 1\n", "1:1: unterminated block: this '{' is never closed"),
        ("a =\n1\n", "1:4: expected a value for key 'a', found a newline"),
        ("a = ;\n", "1:5: expected a value for key 'a', found ';'"),
        ("a = 1\nb\n", "3:1: expected a value for key 'b', found end of file"),
        ("m { a = }\n", "1:9: expected a value for key 'a', found '}'"),
        ("m { a }\n", "1:7: expected a value for key 'a', found '}'"),
        ("m { a = 1 ] }\n", "1:11: expected a newline, ',', ';' or '}' after the value, found ']'"),
        ("m { ] }\n", "1:5: unexpected ']' in a map"),
        ("= 1\n", "1:1: expected a key, found '='"),
        ("m { : 1 }\n", "1:5: expected a key, found ':'"),
        ("a = [1,,2]\n", "1:8: unexpected ',' in array: expected a value or ']'"),
        ("a = [,]\n", "1:6: unexpected ',' in array: expected a value or ']'"),
        ("a = [1 2]\n", "1:8: expected a newline, ',' or ']' after the array element, found '2'"),
        ("a = [1; 2]\n", "1:7: expected a newline, ',' or ']' after the array element, found ';'"),
        ("a = 1 2\n", "1:7: expected a newline, ';', ',' or a comment after the value, found '2'"),
        ("a = \"x\"y\n", "1:8: expected a newline, ';', ',' or a comment after the value, found 'y'"),
        ("a = \"\\q\"\n", "1:6: invalid escape '\\q': only \\xHH, \\t, \\n, \\r, \\\" and \\\\ are allowed"),
        ("a = \"\\xZZ\"\n", "1:6: expected two hexadecimal digits after '\\x'"),
        ("a = \"\\x4\n\"\n", "1:6: expected two hexadecimal digits after '\\x'"),
        ("a = \"\\xff\"\n", "1:5: string with \\x escapes is not valid UTF-8"),
        ("a = .5\n", "1:5: floats must start with a digit, not '.'"),
        ("a = 1.x\n", "1:7: floats must have a digit after the '.', found 'x'"),
        ("a = -x\n", "1:6: expected a digit after '-', found 'x'"),
        ("a = 1.5h\n", "1:8: expected a newline, ';', ',' or a comment after the value, found 'h'"),
        ("a = 99999999999999999999\n", "1:5: integer '99999999999999999999' is out of range"),
        ("a = 9999999999999E\n", "1:5: integer '9999999999999E' is out of range"),
        ("a = 1kbi\n", "1:5: invalid size suffix 'kbi' in '1kbi': use k, kb, ki, kib (and m, g, t, p, e likewise)"),
        ("a = 1k5\n", "1:7: expected a newline, ';', ',' or a comment after the value, found '5'"),
        ("\"unterminated = 1\n", "1:1: unterminated quoted key: no closing quote"),
        ("a = $\n", "1:5: undefined variable '$': not defined earlier in this or an enclosing block, nor in the environment"),
    ];
    for (src, want) in cases {
        let got = err(src);
        assert_eq!(got, format!("<string>:{want}"), "input: {src:?}");
    }
}

#[test]
fn error_positions_count_characters_not_bytes() {
    assert_eq!(
        err("é = \"ü\" x\n"),
        "<string>:1:9: expected a newline, ';', ',' or a comment after the value, found 'x'"
    );
}

#[test]
fn deep_nesting_is_an_error_not_a_crash() {
    let src = format!("a = {}", "[".repeat(100_000));
    let e = parser().parse_str(&src).unwrap_err();
    assert!(matches!(e, ConfError::TooDeep { limit: 128, .. }), "{e}");
    let src = format!("a = {}", "{b = ".repeat(100_000));
    assert!(matches!(
        parser().parse_str(&src),
        Err(ConfError::TooDeep { .. })
    ));
    let src = "{".repeat(100_000);
    assert!(matches!(
        parser().parse_str(&src),
        Err(ConfError::TooDeep { .. })
    ));
    assert!(parser()
        .max_depth(3)
        .parse_str("a { b { c { d = 1 } } }")
        .is_ok());
    // Within the limit it works.
    let src = format!("a = {}1{}", "[".repeat(100), "]".repeat(100));
    assert!(parser().parse_str(&src).is_ok());
    assert!(matches!(
        parser().max_depth(2).parse_str("a { b { c { d = 1 } } }"),
        Err(ConfError::TooDeep { limit: 2, .. })
    ));
}

#[test]
fn byte_order_mark_and_empty_inputs() {
    assert!(parse("").is_empty());
    assert!(parse("   \n# only a comment\n// another").is_empty());
    assert!(parse("{}").is_empty());
    assert_eq!(int(&parse("\u{feff}port: 1"), "port"), 1);
}

// ------------------------------------------- behaviours pinned by nats-server

#[test]
fn tokens_that_start_with_digits() {
    let m = parse("a = 3xyz\nb = 1Ghz\nc = 2Pie\nd = 3Mbs,\ne = 4Gb, f = 5G\u{f8}\ng = -1\nh = :-1\ni = nats.io:-1\n");
    assert_eq!(text(&m, "a"), "3xyz");
    assert_eq!(text(&m, "b"), "1Ghz");
    assert_eq!(text(&m, "c"), "2Pie");
    assert_eq!(text(&m, "d"), "3Mbs");
    assert_eq!(int(&m, "e"), 4 * 1024 * 1024 * 1024);
    assert_eq!(text(&m, "f"), "5G\u{f8}");
    assert_eq!(int(&m, "g"), -1);
    assert_eq!(text(&m, "h"), ":-1");
    assert_eq!(text(&m, "i"), "nats.io:-1");
    let m = parse("map {\n  foo = 3xyz}\nother { x = 4wqs; }\n");
    assert_eq!(text(&m, "map.foo"), "3xyz");
    assert_eq!(text(&m, "other.x"), "4wqs");
}

#[test]
fn escapes_in_unquoted_strings() {
    let m =
        parse("a = \\x65\nb = start\\x45\\x71\nc = \\\\true\nd = \\\\$var\ne = \\x3cmiddle\\x3E\n");
    assert_eq!(text(&m, "a"), "e");
    assert_eq!(text(&m, "b"), "startEq");
    // An escape makes the token a plain string: not a boolean, not a variable.
    assert_eq!(text(&m, "c"), "\\true");
    assert_eq!(text(&m, "d"), "\\$var");
    assert_eq!(text(&m, "e"), "<middle>");
    assert_eq!(
        err("foo = \\y"),
        "<string>:1:7: invalid escape '\\y': only \\xHH, \\t, \\n, \\r, \\\" and \\\\ are allowed"
    );
    assert_eq!(
        err("foo = xyz\\x\n"),
        "<string>:1:10: expected two hexadecimal digits after '\\x'"
    );
}

#[test]
fn single_quote_ends_an_unquoted_string() {
    // nats-server's lexer drops the quote and ends the token there.
    assert_eq!(text(&parse("foo = bar' "), "foo"), "bar");
}

#[test]
fn semicolon_chaining_and_crlf() {
    let m = parse("foo='1'; bar=2.2; baz=true;\r\nqux: 4\r\n");
    assert_eq!(text(&m, "foo"), "1");
    assert_eq!(get(&m, "bar").as_float().unwrap(), 2.2);
    assert!(get(&m, "baz").as_bool().unwrap());
    assert_eq!(int(&m, "qux"), 4);
}

#[test]
fn json_with_trailing_commas_and_map_commas() {
    let m = parse(
        "{\n  \"jetstream\": {\n    \"store_dir\": \"/tmp/nats\"\n    \"max_mem\": 1000000,\n  },\n  \"port\": 4222,\n  \"server_name\": \"nats1\"\n}\n",
    );
    assert_eq!(int(&m, "jetstream.max_mem"), 1_000_000);
    assert_eq!(text(&m, "server_name"), "nats1");
    // Missing final brace after a newline-terminated value is still fine
    // when the brace is there on its own line.
    let m = parse("{\"http_port\": 8225,\"port\": 4225\n   }\n");
    assert_eq!(int(&m, "port"), 4225);
}

#[test]
fn include_inside_map_without_spaces_around_braces() {
    let t = TempDir::new("include-map");
    t.write("users.conf", "u = 1\n");
    for src in [
        "foo { include users.conf }",
        "foo {include users.conf}",
        "foo { include 'users.conf' }",
        "foo { include \"users.conf\"}",
    ] {
        let m = parser().include_base(&t.0).parse_str(src).unwrap();
        assert_eq!(int(&m, "foo.u"), 1, "{src}");
    }
}

#[test]
fn exponential_variable_expansion_is_bounded() {
    let mut src = String::from("v0 = [1, 1]\n");
    for i in 1..40 {
        src.push_str(&format!("v{i} = [$v{p}, $v{p}]\n", p = i - 1));
    }
    let e = parser().parse_str(&src).unwrap_err();
    assert!(
        e.to_string()
            .contains("variable expansion exceeds the limit of 1000000 values"),
        "{e}"
    );
    // A realistic reuse is fine.
    let mut src =
        String::from("P = { publish = [a, b, c], subscribe = { allow = [\">\"] } }\nusers = [\n");
    for i in 0..2000 {
        src.push_str(&format!("  {{ user: u{i}, permissions: $P }}\n"));
    }
    src.push_str("]\n");
    let m = parse(&src);
    assert_eq!(get(&m, "users").as_array().unwrap().len(), 2000);
}

#[test]
fn variables_cannot_nest_past_the_depth_limit() {
    let deep = |n: usize, inner: &str| format!("{}{inner}{}", "[".repeat(n), "]".repeat(n));
    let mut src = format!("a0 = {}\n", deep(100, "1"));
    for i in 1..5 {
        src.push_str(&format!("a{i} = {}\n", deep(100, &format!("$a{}", i - 1))));
    }
    let e = parser().parse_str(&src).unwrap_err();
    match e {
        ConfError::TooDeep { pos, limit } => {
            assert_eq!((limit, pos.line, pos.col), (128, 2, 106));
        }
        other => panic!("unexpected {other}"),
    }
    // Up to the limit it works: 28 + 100 = 128.
    let src = format!("a = {}\nb = {}\n", deep(100, "1"), deep(28, "$a"));
    assert!(parser().parse_str(&src).is_ok());
}
