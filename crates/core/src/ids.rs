//! One id generator for everything the server names at random (advisory
//! and event ids, reply inboxes, ephemeral consumer names, JWT ids): the
//! NATS `nuid` (22 base-62 characters, unique without coordination).

/// A fresh NUID.
pub fn next() -> String {
    nuid::next().to_string()
}
