//! JetStream API levels (ADR-44): the `_nats.*` metadata a server adds to
//! stream and consumer configs, so that a client or an older server can tell
//! which features an asset needs before it tries to use or restore it.
//!
//! `_nats.req.level` is the lowest API level that understands every feature
//! the config uses; `_nats.level` and `_nats.ver` describe this server.

use std::collections::BTreeMap;

use crate::types::consumer::{AckPolicy, ConsumerConfig, PriorityPolicy};
use crate::types::stream::{PersistMode, StreamConfig};

/// The API level this server implements (nats-server 2.15's).
pub const API_LEVEL: i64 = 5;

pub const REQUIRED_LEVEL_KEY: &str = "_nats.req.level";
pub const SERVER_LEVEL_KEY: &str = "_nats.level";
pub const SERVER_VERSION_KEY: &str = "_nats.ver";

/// The lowest API level a stream with this config needs.
pub fn stream_required_level(cfg: &StreamConfig) -> i64 {
    let mut level = 0;
    // Per-message TTLs and delete markers: 2.11.
    if cfg.allow_msg_ttl || cfg.subject_delete_marker_ttl > 0 {
        level = level.max(1);
    }
    // Counters, atomic batches, schedules, async persistence: 2.12.
    if cfg.allow_msg_counter
        || cfg.allow_atomic
        || cfg.allow_msg_schedules
        || cfg.persist_mode == PersistMode::Async
    {
        level = level.max(2);
    }
    // Fast batch publishing: 2.14.
    if cfg.allow_batched {
        level = level.max(4);
    }
    level
}

/// The lowest API level a consumer with this config needs.
pub fn consumer_required_level(cfg: &ConsumerConfig) -> i64 {
    let mut level = 0;
    // Pausing and priority groups: 2.11 (a pause time is only recorded when set).
    if cfg.pause_until.is_some()
        || cfg.priority_policy != PriorityPolicy::None
        || cfg.pinned_ttl != 0
        || !cfg.priority_groups.is_empty()
    {
        level = level.max(1);
    }
    // Flow-control acks: 2.14.
    if cfg.ack_policy == AckPolicy::FlowControl {
        level = level.max(4);
    }
    level
}

/// Sets the static `_nats.req.level` and, with `full`, this server's level
/// and version (create/update/info responses; lists carry only the former).
pub fn set_metadata(metadata: &mut BTreeMap<String, String>, required: i64, full: bool) {
    metadata.insert(REQUIRED_LEVEL_KEY.into(), required.to_string());
    if full {
        metadata.insert(SERVER_LEVEL_KEY.into(), API_LEVEL.to_string());
        metadata.insert(
            SERVER_VERSION_KEY.into(),
            rnats_core::NATS_COMPAT_VERSION.to_string(),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_levels_follow_the_features_used() {
        let mut cfg = StreamConfig::default();
        assert_eq!(stream_required_level(&cfg), 0);
        cfg.allow_msg_ttl = true;
        assert_eq!(stream_required_level(&cfg), 1);
        cfg.allow_msg_counter = true;
        assert_eq!(stream_required_level(&cfg), 2);
        cfg.allow_batched = true;
        assert_eq!(stream_required_level(&cfg), 4);
        let cfg = StreamConfig {
            persist_mode: PersistMode::Async,
            ..StreamConfig::default()
        };
        assert_eq!(stream_required_level(&cfg), 2);
    }

    #[test]
    fn consumer_levels_follow_the_features_used() {
        let mut cfg = ConsumerConfig::default();
        assert_eq!(consumer_required_level(&cfg), 0);
        cfg.priority_policy = PriorityPolicy::PinnedClient;
        assert_eq!(consumer_required_level(&cfg), 1);
        cfg.ack_policy = AckPolicy::FlowControl;
        assert_eq!(consumer_required_level(&cfg), 4);
    }
}
