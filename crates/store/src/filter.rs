//! Subject filter matching: `*` matches one token, `>` (last token) one or more; tokens split on '.'.

/// True if `filter` selects every subject ("" or ">").
pub fn is_all(filter: &str) -> bool {
    filter.is_empty() || filter == ">"
}

/// True if `filter` has no wildcard tokens.
pub fn is_literal(filter: &str) -> bool {
    !filter.split('.').any(|t| t == "*" || t == ">")
}

/// Does `subject` match the wildcard `filter`? "" matches everything.
pub fn matches(filter: &str, subject: &str) -> bool {
    if is_all(filter) {
        return true;
    }
    let mut ft = filter.split('.');
    let mut st = subject.split('.');
    loop {
        match (ft.next(), st.next()) {
            (None, None) => return true,
            (Some(">"), Some(_)) => return true,
            (Some("*"), Some(_)) => {}
            (Some(f), Some(s)) if f == s => {}
            _ => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcard_rules() {
        assert!(matches("", "a.b"));
        assert!(matches(">", "a"));
        assert!(matches("a.*", "a.b"));
        assert!(!matches("a.*", "a.b.c"));
        assert!(!matches("a.*", "a"));
        assert!(matches("a.>", "a.b.c"));
        assert!(!matches("a.>", "a"));
        assert!(matches("*.b", "a.b"));
        assert!(!matches("a.b", "a.c"));
        assert!(!matches("a.b", "a.b.c"));
        assert!(matches("a.b", "a.b"));
        assert!(is_literal("a.b"));
        assert!(!is_literal("a.*"));
        assert!(!is_literal("a.>"));
    }
}
