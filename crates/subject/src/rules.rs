//! Subject syntax as nats-server defines it: tokens separated by `.`, none
//! empty, `*` matching one token, `>` matching one or more and only last.
//! A wildcard character inside a longer token (`foo*`) is a literal.

/// Splits a subject into its tokens.
pub fn tokens(subject: &[u8]) -> impl Iterator<Item = &[u8]> {
    subject.split(|&b| b == b'.')
}

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0c)
}

/// A subject usable in `SUB`: non-empty tokens, no whitespace, `>` only last.
pub fn is_valid_subject(subject: &[u8]) -> bool {
    if subject.is_empty() {
        return false;
    }
    let mut saw_fwc = false;
    for t in tokens(subject) {
        if t.is_empty() || saw_fwc {
            return false;
        }
        if t.iter().any(|&b| is_space(b)) {
            return false;
        }
        if t == b">" {
            saw_fwc = true;
        }
    }
    true
}

/// A valid subject with no wildcard tokens: what may be published to.
pub fn is_valid_literal_subject(subject: &[u8]) -> bool {
    is_valid_subject(subject) && is_literal(subject)
}

/// True when no token is a wildcard (`*` or `>` standing alone).
pub fn is_literal(subject: &[u8]) -> bool {
    tokens(subject).all(|t| t != b"*" && t != b">")
}

/// Whether the literal `subject` matches the (possibly wildcard) `pattern`.
/// The straightforward definition, used as the oracle for the sublist.
pub fn matches(pattern: &[u8], subject: &[u8]) -> bool {
    let mut p = tokens(pattern);
    let mut s = tokens(subject);
    loop {
        match (p.next(), s.next()) {
            (Some(b">"), Some(_)) => return true,
            (Some(b"*"), Some(_)) => {}
            (Some(pt), Some(st)) if pt == st => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

/// Whether some literal subject could match both patterns (stream subjects
/// may not overlap each other; consumer filters may not overlap).
pub fn overlaps(a: &[u8], b: &[u8]) -> bool {
    let mut x = tokens(a);
    let mut y = tokens(b);
    loop {
        match (x.next(), y.next()) {
            (None, None) => return true,
            (Some(b">"), Some(_)) | (Some(_), Some(b">")) => return true,
            (Some(b"*"), Some(_)) | (Some(_), Some(b"*")) => {}
            (Some(p), Some(q)) if p == q => {}
            _ => return false,
        }
    }
}

/// Whether every subject matching `sub` also matches `sup` (e.g. `foo.bar`
/// is a subset of `foo.*`, `foo.*` of `foo.>`).
pub fn is_subset(sub: &[u8], sup: &[u8]) -> bool {
    let mut x = tokens(sub);
    let mut y = tokens(sup);
    loop {
        match (x.next(), y.next()) {
            (None, None) => return true,
            (Some(_), Some(b">")) => return true,
            (Some(b">"), Some(_)) => return false,
            (Some(b"*"), Some(b"*")) => {}
            (Some(b"*"), Some(_)) => return false,
            (Some(_), Some(b"*")) => {}
            (Some(p), Some(q)) if p == q => {}
            _ => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validity() {
        for ok in [
            "foo", "foo.bar", "foo.*", "foo.>", ">", "*", "*.*", "foo*.bar", "fö.ü", "a.>",
        ] {
            assert!(is_valid_subject(ok.as_bytes()), "{ok}");
        }
        for bad in [
            "",
            ".",
            "foo.",
            ".foo",
            "foo..bar",
            "foo.>.bar",
            "> .x",
            "foo bar",
            "a\tb",
            ">.>",
        ] {
            assert!(!is_valid_subject(bad.as_bytes()), "{bad}");
        }
        assert!(is_valid_literal_subject(b"foo.bar"));
        assert!(is_valid_literal_subject(b"foo*.b>"));
        assert!(!is_valid_literal_subject(b"foo.*"));
        assert!(!is_valid_literal_subject(b"foo.>"));
    }

    #[test]
    fn overlap_and_subset() {
        assert!(overlaps(b"foo.*", b"foo.bar"));
        assert!(overlaps(b"foo.>", b"*.bar.baz"));
        assert!(overlaps(b">", b"a"));
        assert!(!overlaps(b"foo.*", b"foo.bar.baz"));
        assert!(!overlaps(b"foo.bar", b"foo.baz"));
        assert!(!overlaps(b"foo", b"foo.>"));
        assert!(is_subset(b"foo.bar", b"foo.*"));
        assert!(is_subset(b"foo.*", b"foo.>"));
        assert!(!is_subset(b"foo.>", b"foo.*"));
        assert!(!is_subset(b"foo.*", b"foo.bar"));
        assert!(is_subset(b"a.b.c", b">"));
    }

    #[test]
    fn matching() {
        assert!(matches(b"foo.*", b"foo.bar"));
        assert!(!matches(b"foo.*", b"foo"));
        assert!(!matches(b"foo.*", b"foo.bar.baz"));
        assert!(matches(b"foo.>", b"foo.bar.baz"));
        assert!(!matches(b"foo.>", b"foo"));
        assert!(matches(b">", b"foo"));
        assert!(matches(b"*.bar", b"foo.bar"));
        assert!(!matches(b"foo.bar", b"foo.baz"));
    }
}
