//! Subject transforms as NATS uses them for stream `subject_transform`,
//! `republish` and mappings: a source filter whose wildcards capture tokens,
//! and a destination that places them with `$N`, `{{wildcard(N)}}`, or bare
//! wildcards in the same order as the source's.

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
                let inner = inner.trim();
                let args = inner
                    .strip_prefix("wildcard(")
                    .or_else(|| inner.strip_prefix("Wildcard("))
                    .and_then(|a| a.strip_suffix(')'))
                    .ok_or(TransformError::UnknownFunction)?;
                Part::Wildcard(
                    args.trim()
                        .parse()
                        .map_err(|_| TransformError::UnknownFunction)?,
                )
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
        let out: Vec<&str> = self
            .dest
            .iter()
            .map(|p| match p {
                Part::Literal(s) => s.as_str(),
                Part::Wildcard(n) => captured[n - 1].as_str(),
            })
            .collect();
        Some(out.join("."))
    }
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
            Transform::new("a.*", "b.{{split(1)}}"),
            Err(TransformError::UnknownFunction)
        );
        assert_eq!(
            Transform::new("a.*", "b..c"),
            Err(TransformError::InvalidDestination)
        );
    }
}
