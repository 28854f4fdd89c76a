//! Property tests: configurations generated from a small grammar and printed
//! in varied styles (separators, quoting, terminators, comments, JSON-style
//! outer braces) parse back to the generated values; arbitrary text never
//! panics.

use proptest::prelude::*;
use rnats_conf::{Map, Parser, Pos, Spanned, Value};

#[derive(Debug, Clone)]
enum G {
    Bool(bool),
    Int(i64),
    /// Integer part and three fraction digits.
    Float(i32, u16),
    Str(String),
    Arr(Vec<(G, u8)>),
    Map(Vec<(String, G, u8)>),
}

fn key() -> impl Strategy<Value = String> {
    "[a-z_][a-z0-9_-]{0,6}".prop_filter("include is a keyword", |k| {
        !k.eq_ignore_ascii_case("include")
    })
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-zA-Z_/][a-zA-Z0-9_./:-]{0,10}",
        "[ -~\t\n\u{e9}\u{20ac}\u{1f600}]{0,12}",
    ]
}

fn tree() -> impl Strategy<Value = G> {
    let leaf = prop_oneof![
        any::<bool>().prop_map(G::Bool),
        any::<i64>().prop_map(G::Int),
        (any::<i32>(), 0u16..1000).prop_map(|(i, f)| G::Float(i, f)),
        text().prop_map(G::Str),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec((inner.clone(), any::<u8>()), 0..5).prop_map(G::Arr),
            prop::collection::vec((key(), inner, any::<u8>()), 0..5).prop_map(G::Map),
        ]
    })
}

fn pos() -> Pos {
    Pos {
        file: None,
        line: 1,
        col: 1,
    }
}

fn float_text(i: i32, f: u16) -> String {
    format!("{i}.{f:03}")
}

fn expected(g: &G) -> Value {
    match g {
        G::Bool(b) => Value::Bool(*b),
        G::Int(i) => Value::Int(*i),
        G::Float(i, f) => Value::Float(float_text(*i, *f).parse().expect("float text")),
        G::Str(s) => Value::String(s.clone()),
        G::Arr(items) => Value::Array(
            items
                .iter()
                .map(|(g, _)| Spanned {
                    value: expected(g),
                    pos: pos(),
                })
                .collect(),
        ),
        G::Map(entries) => Value::Map(expected_map(entries)),
    }
}

fn expected_map(entries: &[(String, G, u8)]) -> Map {
    let mut m = Map::new();
    for (k, g, _) in entries {
        m.insert(
            k.clone(),
            pos(),
            Spanned {
                value: expected(g),
                pos: pos(),
            },
        );
    }
    m
}

/// Whether `s` can be written unquoted and read back as the same string.
fn bare_ok(s: &str) -> bool {
    let mut chars = s.chars();
    let Some(first) = chars.next() else {
        return false;
    };
    // In arrays, `//` at the start of an element begins a comment.
    (first.is_ascii_alphabetic() || first == '_' || first == '/')
        && !s.starts_with("//")
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_./:-".contains(c))
        && !matches!(
            s.to_ascii_lowercase().as_str(),
            "true" | "false" | "yes" | "no" | "on" | "off"
        )
}

fn print_string(s: &str, style: u8, out: &mut String) {
    match style % 3 {
        0 if bare_ok(s) => out.push_str(s),
        1 if !s.contains('\'') => {
            out.push('\'');
            out.push_str(s);
            out.push('\'');
        }
        _ => {
            out.push('"');
            for c in s.chars() {
                match c {
                    '"' => out.push_str("\\\""),
                    '\\' => out.push_str("\\\\"),
                    '\t' => out.push_str("\\t"),
                    '\n' if style & 4 == 0 => out.push_str("\\n"),
                    '\r' => out.push_str("\\r"),
                    c => out.push(c),
                }
            }
            out.push('"');
        }
    }
}

fn print_value(g: &G, style: u8, out: &mut String) {
    match g {
        G::Bool(b) => {
            let words = if *b {
                ["true", "yes", "on", "TRUE", "Yes"]
            } else {
                ["false", "no", "off", "FALSE", "Off"]
            };
            out.push_str(words[usize::from(style) % words.len()]);
        }
        G::Int(i) => out.push_str(&i.to_string()),
        G::Float(i, f) => out.push_str(&float_text(*i, *f)),
        G::Str(s) => print_string(s, style, out),
        G::Arr(items) => {
            out.push('[');
            for (n, (item, st)) in items.iter().enumerate() {
                if n > 0 {
                    out.push_str(if style & 1 == 0 { ", " } else { "\n  " });
                }
                print_value(item, *st, out);
            }
            if style & 2 != 0 && !items.is_empty() {
                out.push(',');
            }
            out.push(']');
        }
        G::Map(entries) => {
            out.push_str("{\n");
            print_entries(entries, out);
            out.push('}');
        }
    }
}

fn print_entries(entries: &[(String, G, u8)], out: &mut String) {
    for (k, g, style) in entries {
        if style & 1 == 0 {
            out.push_str(k);
        } else {
            out.push('"');
            out.push_str(k);
            out.push('"');
        }
        out.push_str(match (style >> 1) % 3 {
            0 => " = ",
            1 => ": ",
            _ => " ",
        });
        print_value(g, style >> 3, out);
        out.push_str(match (style >> 5) % 4 {
            0 => "\n",
            1 => "; ",
            2 => ", ",
            _ => " # comment\n",
        });
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 1024,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn printed_config_parses_back(
        entries in prop::collection::vec((key(), tree(), any::<u8>()), 0..8),
        outer_braces in any::<bool>(),
    ) {
        let mut src = String::new();
        if outer_braces {
            src.push_str("{\n");
        }
        print_entries(&entries, &mut src);
        if outer_braces {
            src.push_str("}\n");
        }
        let parsed = Parser::new().disable_includes().parse_str(&src);
        let parsed = match parsed {
            Ok(m) => m,
            Err(e) => return Err(TestCaseError::fail(format!("{e}\n--- source ---\n{src}"))),
        };
        prop_assert_eq!(parsed, expected_map(&entries), "source:\n{}", src);
    }

    #[test]
    fn arbitrary_text_never_panics(src in "[ -~\t\n{}\\[\\]()$\"'#/\\\\]{0,200}") {
        let _ = Parser::new().disable_includes().env(|_| Some("x".into())).parse_str(&src);
    }
}
