//! Subject transforms as NATS uses them for stream `subject_transform`,
//! `republish` and mappings: a source filter whose wildcards capture tokens,
//! and a destination that places them with `$N`, `{{wildcard(N)}}`, or bare
//! wildcards in the same order as the source's, or reshapes them with the
//! mapping functions of ADR-30 (`partition`, `split`, `splitFromLeft`/`Right`,
//! `sliceFromLeft`/`Right`, `left`, `right`, `random`).

use crate::rules::{is_valid_subject, tokens};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransformError {
    #[error("invalid source subject")]
    InvalidSource,
    #[error("invalid destination subject")]
    InvalidDestination,
    #[error("wildcard index out of range")]
    IndexOutOfRange,
    #[error("unknown mapping function")]
    UnknownFunction,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Literal(String),
    /// The N-th (1-based) source wildcard's token(s).
    Wildcard(usize),
    /// FNV-1a of the given wildcards' tokens (all source tokens when none),
    /// modulo the bucket count.
    Partition(u32, Vec<usize>),
    SplitFromLeft(usize, usize),
    SplitFromRight(usize, usize),
    SliceFromLeft(usize, usize),
    SliceFromRight(usize, usize),
    Split(usize, String),
    Left(usize, usize),
    Right(usize, usize),
    Random(u32),
}

/// Parses `name(args)` inside `{{ }}` into a destination part.
fn function(inner: &str, wildcards: usize) -> Result<Part, TransformError> {
    let inner = inner.trim();
    let open = inner.find('(').ok_or(TransformError::UnknownFunction)?;
    let args = inner[open + 1..]
        .trim_end()
        .strip_suffix(')')
        .ok_or(TransformError::UnknownFunction)?;
    let name = inner[..open].trim().to_ascii_lowercase();
    let args: Vec<&str> = if args.trim().is_empty() {
        Vec::new()
    } else {
        args.split(',').map(str::trim).collect()
    };
    let int = |s: &str| {
        s.parse::<i64>()
            .map_err(|_| TransformError::UnknownFunction)
    };
    let wc = |s: &str| -> Result<usize, TransformError> {
        let n = int(s)?;
        if n < 1 || n as usize > wildcards {
            return Err(TransformError::IndexOutOfRange);
        }
        Ok(n as usize)
    };
    let two = |args: &[&str]| -> Result<(usize, usize), TransformError> {
        match args {
            [w, n] => Ok((wc(w)?, int(n)?.max(0) as usize)),
            _ => Err(TransformError::UnknownFunction),
        }
    };
    Ok(match name.as_str() {
        "wildcard" => match args.as_slice() {
            [w] => Part::Wildcard(wc(w)?),
            _ => return Err(TransformError::UnknownFunction),
        },
        "partition" => {
            let (n, rest) = args.split_first().ok_or(TransformError::UnknownFunction)?;
            let n = u32::try_from(int(n)?).map_err(|_| TransformError::UnknownFunction)?;
            let idx = rest.iter().map(|w| wc(w)).collect::<Result<_, _>>()?;
            Part::Partition(n, idx)
        }
        "splitfromleft" => {
            let (w, n) = two(&args)?;
            Part::SplitFromLeft(w, n)
        }
        "splitfromright" => {
            let (w, n) = two(&args)?;
            Part::SplitFromRight(w, n)
        }
        "slicefromleft" => {
            let (w, n) = two(&args)?;
            Part::SliceFromLeft(w, n)
        }
        "slicefromright" => {
            let (w, n) = two(&args)?;
            Part::SliceFromRight(w, n)
        }
        "left" => {
            let (w, n) = two(&args)?;
            Part::Left(w, n)
        }
        "right" => {
            let (w, n) = two(&args)?;
            Part::Right(w, n)
        }
        "split" => match args.as_slice() {
            [w, d] => {
                let d = d.trim_matches(|c| c == '"' || c == '\'');
                if d.is_empty() {
                    return Err(TransformError::UnknownFunction);
                }
                Part::Split(wc(w)?, d.to_string())
            }
            _ => return Err(TransformError::UnknownFunction),
        },
        "random" => match args.as_slice() {
            [n] => {
                Part::Random(u32::try_from(int(n)?).map_err(|_| TransformError::UnknownFunction)?)
            }
            _ => return Err(TransformError::UnknownFunction),
        },
        _ => return Err(TransformError::UnknownFunction),
    })
}

fn fnv1a32(data: &[u8]) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for b in data {
        h ^= u32::from(*b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h
}

/// Appends `parts` joined by dots (empty parts dropped) to `out`.
fn push_tokens<'a>(out: &mut Vec<String>, parts: impl IntoIterator<Item = &'a str>) {
    out.extend(
        parts
            .into_iter()
            .filter(|p| !p.is_empty())
            .map(str::to_string),
    );
}

/// A compiled source -> destination transform.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transform {
    src: String,
    dest: Vec<Part>,
}

impl Transform {
    /// `src` empty means `>` (every subject).
    pub fn new(src: &str, dest: &str) -> Result<Transform, TransformError> {
        let src = if src.is_empty() { ">" } else { src };
        if !is_valid_subject(src.as_bytes()) {
            return Err(TransformError::InvalidSource);
        }
        let wildcards = tokens(src.as_bytes())
            .filter(|t| *t == b"*" || *t == b">")
            .count();
        let mut next_bare = 0;
        let mut dest_parts = Vec::new();
        for tok in dest.split('.') {
            let part = if tok == "*" || tok == ">" {
                next_bare += 1;
                Part::Wildcard(next_bare)
            } else if let Some(n) = tok.strip_prefix('$').and_then(|n| n.parse::<usize>().ok()) {
                Part::Wildcard(n)
            } else if let Some(inner) = tok.strip_prefix("{{").and_then(|t| t.strip_suffix("}}")) {
                function(inner, wildcards)?
            } else if tok.is_empty() {
                return Err(TransformError::InvalidDestination);
            } else {
                Part::Literal(tok.to_string())
            };
            if let Part::Wildcard(n) = part {
                if n == 0 || n > wildcards {
                    return Err(TransformError::IndexOutOfRange);
                }
            }
            dest_parts.push(part);
        }
        Ok(Transform {
            src: src.to_string(),
            dest: dest_parts,
        })
    }

    /// The transformed subject, or `None` when `subject` does not match the source.
    pub fn apply(&self, subject: &str) -> Option<String> {
        if !crate::matches(self.src.as_bytes(), subject.as_bytes()) {
            return None;
        }
        // Capture the tokens under each source wildcard.
        let subj: Vec<&str> = subject.split('.').collect();
        let mut captured: Vec<String> = Vec::new();
        for (i, t) in self.src.split('.').enumerate() {
            match t {
                "*" => captured.push(subj[i].to_string()),
                ">" => captured.push(subj[i..].join(".")),
                _ => {}
            }
        }
        let mut out: Vec<String> = Vec::with_capacity(self.dest.len());
        for p in &self.dest {
            match p {
                Part::Literal(s) => out.push(s.clone()),
                Part::Wildcard(n) => out.push(captured[n - 1].clone()),
                Part::Partition(buckets, idx) => {
                    let key = if idx.is_empty() {
                        subject.to_string()
                    } else {
                        idx.iter().map(|i| captured[i - 1].as_str()).collect()
                    };
                    let v = if *buckets == 0 {
                        0
                    } else {
                        fnv1a32(key.as_bytes()) % buckets
                    };
                    out.push(v.to_string());
                }
                Part::Random(n) => {
                    let v = if *n == 0 { 0 } else { fastrand_u32() % n };
                    out.push(v.to_string());
                }
                Part::SplitFromLeft(w, pos) => {
                    let t = &captured[w - 1];
                    if *pos > 0 && *pos < t.len() && t.is_char_boundary(*pos) {
                        push_tokens(&mut out, [&t[..*pos], &t[*pos..]]);
                    } else {
                        out.push(t.clone());
                    }
                }
                Part::SplitFromRight(w, pos) => {
                    let t = &captured[w - 1];
                    let at = t.len().wrapping_sub(*pos);
                    if *pos > 0 && *pos < t.len() && t.is_char_boundary(at) {
                        push_tokens(&mut out, [&t[..at], &t[at..]]);
                    } else {
                        out.push(t.clone());
                    }
                }
                Part::SliceFromLeft(w, size) => {
                    let t = captured[w - 1].as_bytes();
                    if *size > 0 && *size < t.len() {
                        let chunks = t
                            .chunks(*size)
                            .map(|c| std::str::from_utf8(c).unwrap_or(""));
                        push_tokens(&mut out, chunks);
                    } else {
                        out.push(captured[w - 1].clone());
                    }
                }
                Part::SliceFromRight(w, size) => {
                    let t = captured[w - 1].as_bytes();
                    if *size > 0 && *size < t.len() {
                        let rem = t.len() % size;
                        let mut pieces: Vec<&[u8]> = Vec::new();
                        if rem > 0 {
                            pieces.push(&t[..rem]);
                        }
                        pieces.extend(t[rem..].chunks(*size));
                        push_tokens(
                            &mut out,
                            pieces
                                .into_iter()
                                .map(|c| std::str::from_utf8(c).unwrap_or("")),
                        );
                    } else {
                        out.push(captured[w - 1].clone());
                    }
                }
                Part::Split(w, delim) => {
                    let t = &captured[w - 1];
                    let before = out.len();
                    push_tokens(&mut out, t.split(delim.as_str()));
                    if out.len() == before {
                        out.push(String::new());
                    }
                }
                Part::Left(w, n) => {
                    let t = &captured[w - 1];
                    if *n > 0 && *n < t.len() && t.is_char_boundary(*n) {
                        out.push(t[..*n].to_string());
                    } else {
                        out.push(t.clone());
                    }
                }
                Part::Right(w, n) => {
                    let t = &captured[w - 1];
                    let at = t.len().wrapping_sub(*n);
                    if *n > 0 && *n < t.len() && t.is_char_boundary(at) {
                        out.push(t[at..].to_string());
                    } else {
                        out.push(t.clone());
                    }
                }
            }
        }
        Some(out.join("."))
    }
}

/// A random number for `{{random(n)}}` (no dependency for one call site).
fn fastrand_u32() -> u32 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0),
    );
    h.finish() as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms() {
        let t = Transform::new("orders.*.*", "shipped.$2.$1").unwrap();
        assert_eq!(t.apply("orders.eu.42").as_deref(), Some("shipped.42.eu"));
        assert_eq!(t.apply("other.eu.42"), None);
        let t = Transform::new("a.>", "b.>").unwrap();
        assert_eq!(t.apply("a.x.y").as_deref(), Some("b.x.y"));
        let t = Transform::new("a.*", "b.{{wildcard(1)}}.c").unwrap();
        assert_eq!(t.apply("a.x").as_deref(), Some("b.x.c"));
        let t = Transform::new("", "all.>").unwrap();
        assert_eq!(t.apply("x.y").as_deref(), Some("all.x.y"));
        let t = Transform::new("a.b", "c").unwrap();
        assert_eq!(t.apply("a.b").as_deref(), Some("c"));
    }

    #[test]
    fn errors() {
        assert_eq!(
            Transform::new("a.*", "b.$2"),
            Err(TransformError::IndexOutOfRange)
        );
        assert_eq!(
            Transform::new("a..b", "c"),
            Err(TransformError::InvalidSource)
        );
        assert_eq!(
            Transform::new("a.*", "b.{{nosuch(1)}}"),
            Err(TransformError::UnknownFunction)
        );
        assert_eq!(
            Transform::new("a.*", "b..c"),
            Err(TransformError::InvalidDestination)
        );
    }

    #[test]
    fn mapping_functions() {
        let apply = |src: &str, dest: &str, subj: &str| {
            Transform::new(src, dest)
                .unwrap_or_else(|e| panic!("{dest}: {e}"))
                .apply(subj)
                .unwrap_or_default()
        };
        assert_eq!(
            apply("a.*", "{{splitFromLeft(1,3)}}", "a.abcdef"),
            "abc.def"
        );
        assert_eq!(
            apply("a.*", "{{splitFromRight(1,2)}}", "a.abcdef"),
            "abcd.ef"
        );
        assert_eq!(apply("a.*", "{{sliceFromLeft(1,2)}}", "a.abcde"), "ab.cd.e");
        assert_eq!(
            apply("a.*", "{{sliceFromRight(1,2)}}", "a.abcde"),
            "a.bc.de"
        );
        assert_eq!(apply("a.*", "x.{{split(1,-)}}", "a.-x--y-"), "x.x.y");
        assert_eq!(
            apply("a.*", "{{left(1,2)}}.{{right(1,2)}}", "a.abcdef"),
            "ab.ef"
        );
        // Too short to reshape: the token is kept whole.
        assert_eq!(apply("a.*", "{{splitFromLeft(1,9)}}", "a.abc"), "abc");
        // Partition: FNV-1a 32 of the wildcards' tokens, as nats-server.
        let p = apply("a.*.*", "p.{{partition(10,1,2)}}", "a.x.y");
        let want = super::fnv1a32(b"xy") % 10;
        assert_eq!(p, format!("p.{want}"));
        let whole = apply("a.*", "{{partition(7)}}", "a.b");
        assert_eq!(whole, (super::fnv1a32(b"a.b") % 7).to_string());
        let r: u32 = apply("a", "{{random(5)}}", "a").parse().unwrap();
        assert!(r < 5);
        assert_eq!(
            Transform::new("a.*", "{{left(2,1)}}"),
            Err(TransformError::IndexOutOfRange)
        );
    }
}
