//! One id generator for everything the server names at random (advisory
//! and event ids, reply inboxes, ephemeral consumer names, JWT ids): the
//! NATS `nuid` (22 base-62 characters, unique without coordination).

/// A fresh NUID.
pub fn next() -> String {
    nuid::next().to_string()
}

/// A short (8-character, base-62) name from the same generator: the tail of
/// a NUID, whose sequence part changes on every call (ephemeral consumer
/// names, per-import reply prefixes).
pub fn short() -> String {
    let id = nuid::next().to_string();
    id[id.len() - 8..].to_string()
}

#[cfg(test)]
mod tests {
    #[test]
    fn ids_are_nuids() {
        let (a, b) = (super::next(), super::next());
        assert_eq!(a.len(), 22);
        assert_ne!(a, b);
        let (s, t) = (super::short(), super::short());
        assert_eq!(s.len(), 8);
        assert_ne!(s, t);
        assert!(s.chars().all(|c| c.is_ascii_alphanumeric()));
    }
}
