//! Build script for rnats-server: generates the JetStream API error table
//! (`JsErrorKind` and its lookups) from `src/jetstream-errors.json`,
//! nats-server's `server/errors.json`, into `$OUT_DIR/jetstream_errors.rs`,
//! which `src/errors.rs` includes.

use std::env;
use std::fmt::Write as _;
use std::fs;
use std::path::PathBuf;

const ERRORS_JSON: &str = "src/jetstream-errors.json";

fn main() {
    println!("cargo:rerun-if-changed={ERRORS_JSON}");
    println!("cargo:rerun-if-changed=build.rs");

    let manifest = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let text = fs::read_to_string(manifest.join(ERRORS_JSON))
        .unwrap_or_else(|e| panic!("reading {ERRORS_JSON}: {e}"));
    let entries: Vec<serde_json::Value> =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("parsing {ERRORS_JSON}: {e}"));

    struct Entry {
        constant: String,
        variant: String,
        code: u64,
        err_code: u64,
        description: String,
        comment: String,
        deprecates: String,
    }

    let str_field = |e: &serde_json::Value, k: &str| -> String {
        e.get(k)
            .and_then(|v| v.as_str())
            .unwrap_or_default()
            .to_string()
    };

    let mut list = Vec::with_capacity(entries.len());
    for e in &entries {
        let constant = str_field(e, "constant");
        assert!(!constant.is_empty(), "error entry without a constant: {e}");
        let trimmed = constant.strip_prefix("JS").unwrap_or(&constant);
        let variant = trimmed.strip_suffix("Err").unwrap_or(trimmed).to_string();
        assert!(
            variant
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_uppercase())
                && variant.chars().all(|c| c.is_ascii_alphanumeric()),
            "constant {constant} does not give a Rust identifier"
        );
        let code = e.get("code").and_then(|v| v.as_u64()).expect("code");
        let err_code = e
            .get("error_code")
            .and_then(|v| v.as_u64())
            .expect("error_code");
        assert!(code <= u16::MAX as u64 && err_code <= u16::MAX as u64);
        list.push(Entry {
            constant,
            variant,
            code,
            err_code,
            description: str_field(e, "description"),
            comment: str_field(e, "comment"),
            deprecates: str_field(e, "deprecates"),
        });
    }
    // Stable order: by the numeric error code, like nats-server's table.
    list.sort_by_key(|e| e.err_code);
    let mut seen = std::collections::HashSet::new();
    for e in &list {
        assert!(
            seen.insert(e.variant.clone()),
            "duplicate variant {}",
            e.variant
        );
    }

    let mut out = String::new();
    out.push_str("/// One variant per JetStream API error in nats-server's `errors.json`\n");
    out.push_str("/// (the constant without its `JS` prefix and `Err` suffix).\n");
    out.push_str("#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]\n");
    out.push_str("#[non_exhaustive]\npub enum JsErrorKind {\n");
    for e in &list {
        let _ = writeln!(
            out,
            "    /// `{}` ({}/{}): {:?}",
            e.constant, e.code, e.err_code, e.description
        );
        if !e.comment.is_empty() {
            let _ = writeln!(out, "    ///\n    /// {}", e.comment.replace('\n', " "));
        }
        if !e.deprecates.is_empty() {
            let _ = writeln!(
                out,
                "    ///\n    /// Replaces nats-server's older `{}`.",
                e.deprecates
            );
        }
        let _ = writeln!(out, "    {},", e.variant);
    }
    out.push_str("}\n\n");

    out.push_str("impl JsErrorKind {\n");
    out.push_str("    /// Every kind, in `err_code` order.\n");
    let _ = writeln!(out, "    pub const ALL: [JsErrorKind; {}] = [", list.len());
    for e in &list {
        let _ = writeln!(out, "        JsErrorKind::{},", e.variant);
    }
    out.push_str("    ];\n\n");

    let table =
        |out: &mut String, name: &str, ty: &str, doc: &str, f: &dyn Fn(&Entry) -> String| {
            let _ = writeln!(out, "    /// {doc}");
            let _ = writeln!(out, "    pub const fn {name}(self) -> {ty} {{");
            out.push_str("        match self {\n");
            for e in &list {
                let _ = writeln!(out, "            JsErrorKind::{} => {},", e.variant, f(e));
            }
            out.push_str("        }\n    }\n\n");
        };
    table(
        &mut out,
        "code",
        "u16",
        "The HTTP-like status code (`code` in the API error object).",
        &|e| e.code.to_string(),
    );
    table(
        &mut out,
        "err_code",
        "u16",
        "The JetStream error code clients match on (`err_code`).",
        &|e| e.err_code.to_string(),
    );
    table(
        &mut out,
        "description_template",
        "&'static str",
        "The description with its `{placeholders}` unreplaced.",
        &|e| format!("{:?}", e.description),
    );
    table(
        &mut out,
        "constant",
        "&'static str",
        "nats-server's name for it, e.g. `JSStreamNotFoundErr`.",
        &|e| format!("{:?}", e.constant),
    );
    out.push_str("}\n");

    let dest = PathBuf::from(env::var("OUT_DIR").expect("OUT_DIR")).join("jetstream_errors.rs");
    fs::write(&dest, out).unwrap_or_else(|e| panic!("writing {}: {e}", dest.display()));
}
