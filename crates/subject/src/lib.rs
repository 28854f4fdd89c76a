//! NATS subjects: the validity rules, wildcard matching, and the subscription
//! index ([`Sublist`]) that answers "who is interested in this subject?".
//!
//! Subjects are handled as bytes: clients may send any UTF-8 (or other bytes)
//! between the dots, and nats-server does not re-encode them.

#![forbid(unsafe_code)]

mod rules;
mod sublist;
mod transform;

pub use rules::{
    is_literal, is_subset, is_valid_literal_subject, is_valid_subject, matches, overlaps, tokens,
};
pub use sublist::{MatchResult, QueueGroup, Sublist, SublistError};
pub use transform::{Transform, TransformError};
