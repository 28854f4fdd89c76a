//! Stream types: `StreamConfig` (every field of nats-server's
//! `stream_configuration.json`, with `with_defaults` = nats-server's
//! `checkStreamCfg` defaulting and `validate` = its checks that do not need
//! other streams or server limits), `StreamState`, `StreamInfo`, and the parts
//! they are made of (sources, placement, cluster info).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::{is_false, is_zero_i32, is_zero_i64, is_zero_u64, nullable, time_fmt, zero_time};
use super::{subjects_collide, NANOS_PER_MILLI, NANOS_PER_SEC};
use crate::errors::{JsError, JsErrorKind};

/// How messages are retained.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RetentionPolicy {
    #[default]
    Limits,
    Interest,
    #[serde(rename = "workqueue")]
    WorkQueue,
}

/// What happens when a stream is full. Parsed case-insensitively, as nats-server does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DiscardPolicy {
    #[default]
    Old,
    New,
}

impl<'de> Deserialize<'de> for DiscardPolicy {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        match s.to_ascii_lowercase().as_str() {
            "old" => Ok(DiscardPolicy::Old),
            "new" => Ok(DiscardPolicy::New),
            _ => Err(serde::de::Error::custom(format!(
                "can not unmarshal {:?}",
                format!("{s:?}")
            ))),
        }
    }
}

/// Where a stream keeps its messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StorageType {
    #[default]
    File,
    Memory,
}

/// On-disk compression of a file stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StoreCompression {
    #[default]
    None,
    S2,
}

/// When a write is acknowledged. Sent as `"default"`/`"async"`, omitted when
/// default; `""` reads as default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum PersistMode {
    #[default]
    Default,
    Async,
}

impl PersistMode {
    pub fn is_default(&self) -> bool {
        *self == PersistMode::Default
    }
}

impl Serialize for PersistMode {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(match self {
            PersistMode::Default => "default",
            PersistMode::Async => "async",
        })
    }
}

impl<'de> Deserialize<'de> for PersistMode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match Option::<String>::deserialize(d)?.as_deref() {
            None | Some("") | Some("default") => Ok(PersistMode::Default),
            Some("async") => Ok(PersistMode::Async),
            Some(other) => Err(serde::de::Error::custom(format!(
                "can not unmarshal \"{other:?}\""
            ))),
        }
    }
}

/// `{src, dest}`: a subject transform.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SubjectTransformConfig {
    #[serde(default, deserialize_with = "nullable")]
    pub src: String,
    #[serde(default, deserialize_with = "nullable")]
    pub dest: String,
}

/// Republish stored messages to `dest` (transformed from `src`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct RePublish {
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub src: String,
    #[serde(default, deserialize_with = "nullable")]
    pub dest: String,
    #[serde(default, skip_serializing_if = "is_false")]
    pub headers_only: bool,
}

/// Placement directives for replicas.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Placement {
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub cluster: String,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub tags: Vec<String>,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub preferred: String,
}

impl Placement {
    pub fn is_empty(&self) -> bool {
        self.cluster.is_empty() && self.tags.is_empty() && self.preferred.is_empty()
    }
}

/// A stream in another account or domain, reached through an API prefix.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ExternalStream {
    #[serde(default, deserialize_with = "nullable")]
    pub api: String,
    /// nats-server always sends it, empty or not.
    #[serde(default, deserialize_with = "nullable")]
    pub deliver: String,
}

/// A durable consumer used for sourcing.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct StreamConsumerSource {
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub name: String,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub deliver_subject: String,
}

/// A mirror or a source of a stream.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct StreamSource {
    #[serde(default, deserialize_with = "nullable")]
    pub name: String,
    #[serde(default, skip_serializing_if = "is_zero_u64")]
    pub opt_start_seq: u64,
    #[serde(
        default,
        with = "time_fmt::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub opt_start_time: Option<DateTime<Utc>>,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub filter_subject: String,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub subject_transforms: Vec<SubjectTransformConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external: Option<ExternalStream>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consumer: Option<StreamConsumerSource>,
}

/// Defaults for the consumers of a stream. Both fields are omitted when zero,
/// so the object is often `{}` (nats-server always sends it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct StreamConsumerLimits {
    /// Nanoseconds.
    #[serde(default, skip_serializing_if = "is_zero_i64")]
    pub inactive_threshold: i64,
    #[serde(default, skip_serializing_if = "is_zero_i64")]
    pub max_ack_pending: i64,
}

/// A stream's configuration, as sent and received by the API. `Default` is
/// Go's zero value (what an absent field reads as); call
/// [`StreamConfig::with_defaults`] to get what nats-server stores.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct StreamConfig {
    #[serde(deserialize_with = "nullable")]
    pub name: String,
    #[serde(
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub description: String,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "Vec::is_empty")]
    pub subjects: Vec<String>,
    pub retention: RetentionPolicy,
    pub max_consumers: i64,
    pub max_msgs: i64,
    pub max_bytes: i64,
    /// Nanoseconds; 0 is unlimited.
    pub max_age: i64,
    pub max_msgs_per_subject: i64,
    #[serde(skip_serializing_if = "is_zero_i32")]
    pub max_msg_size: i32,
    pub discard: DiscardPolicy,
    pub storage: StorageType,
    pub num_replicas: i64,
    #[serde(skip_serializing_if = "is_false")]
    pub no_ack: bool,
    /// Nanoseconds.
    #[serde(skip_serializing_if = "is_zero_i64")]
    pub duplicate_window: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub placement: Option<Placement>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mirror: Option<StreamSource>,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<StreamSource>,
    pub compression: StoreCompression,
    #[serde(skip_serializing_if = "is_zero_u64")]
    pub first_seq: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject_transform: Option<SubjectTransformConfig>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub republish: Option<RePublish>,
    pub allow_direct: bool,
    pub mirror_direct: bool,
    #[serde(skip_serializing_if = "is_false")]
    pub discard_new_per_subject: bool,
    pub sealed: bool,
    pub deny_delete: bool,
    pub deny_purge: bool,
    pub allow_rollup_hdrs: bool,
    pub consumer_limits: StreamConsumerLimits,
    pub allow_msg_ttl: bool,
    /// Nanoseconds.
    #[serde(skip_serializing_if = "is_zero_i64")]
    pub subject_delete_marker_ttl: i64,
    #[serde(skip_serializing_if = "is_false")]
    pub allow_msg_counter: bool,
    #[serde(skip_serializing_if = "is_false")]
    pub allow_atomic: bool,
    #[serde(skip_serializing_if = "is_false")]
    pub allow_msg_schedules: bool,
    #[serde(skip_serializing_if = "PersistMode::is_default")]
    pub persist_mode: PersistMode,
    #[serde(skip_serializing_if = "is_false")]
    pub allow_batched: bool,
    #[serde(
        deserialize_with = "nullable",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub metadata: BTreeMap<String, String>,
}

/// nats-server's `StreamDefaultDuplicatesWindow`: 2 minutes.
pub const DEFAULT_DUPLICATE_WINDOW: i64 = 120 * NANOS_PER_SEC;
/// nats-server's `StreamMaxReplicas`.
pub const STREAM_MAX_REPLICAS: i64 = 5;
/// nats-server's `JSMaxNameLen` (streams and consumers).
pub const JS_MAX_NAME_LEN: usize = 255;
/// nats-server's `JSMaxDescriptionLen`.
pub const JS_MAX_DESCRIPTION_LEN: usize = 4 * 1024;
/// nats-server's `JSMaxMetadataLen` (keys plus values, summed).
pub const JS_MAX_METADATA_LEN: usize = 128 * 1024;

/// nats-server's `isValidAssetName`: non-empty, no whitespace, `.`, `*`, `>`, `\` or `/`.
pub fn is_valid_asset_name(name: &str) -> bool {
    !name.is_empty()
        && !name.chars().any(|c| {
            matches!(
                c,
                ' ' | '\t' | '\r' | '\n' | '\x0c' | '.' | '*' | '>' | '\\' | '/'
            )
        })
}

fn is_valid_subject(s: &str) -> bool {
    rnats_subject::is_valid_subject(s.as_bytes())
}

fn is_literal(s: &str) -> bool {
    rnats_subject::is_literal(s.as_bytes())
}

/// Whether every subject matched by `sub` is also matched by `of`
/// (nats-server's `subjectIsSubsetMatch`).
fn subject_is_subset(sub: &str, of: &str) -> bool {
    let ts: Vec<&str> = sub.split('.').collect();
    let to: Vec<&str> = of.split('.').collect();
    for (i, t) in to.iter().enumerate() {
        if *t == ">" {
            return ts.len() > i;
        }
        let Some(s) = ts.get(i) else { return false };
        if *t == "*" {
            if *s == ">" {
                return false;
            }
            continue;
        }
        if s != t {
            return false;
        }
    }
    ts.len() == to.len()
}

fn invalid_config(text: &str) -> JsError {
    JsError::new(JsErrorKind::StreamInvalidConfigF).arg("err", text)
}

impl StreamConfig {
    /// A config with only a name and subjects set, everything else at Go's zero value.
    pub fn new(name: impl Into<String>, subjects: &[&str]) -> StreamConfig {
        StreamConfig {
            name: name.into(),
            subjects: subjects.iter().map(|s| s.to_string()).collect(),
            ..StreamConfig::default()
        }
    }

    /// nats-server's create-time defaulting (`checkStreamCfg`, not pedantic,
    /// no server-wide duplicate-window limit): unset limits become -1, replicas
    /// 1, `duplicate_window` 2 minutes or `max_age` if smaller (not for
    /// mirrors/sources), subjects `[name]` when none and no mirror/sources,
    /// subject delete markers and schedules turn on the TTL/rollup flags they
    /// need, an empty republish source becomes `>`, an empty placement is
    /// dropped. Values that `validate` rejects are left for it to reject.
    pub fn with_defaults(mut self) -> StreamConfig {
        if self.num_replicas == 0 {
            self.num_replicas = 1;
        }
        for v in [
            &mut self.max_msgs,
            &mut self.max_msgs_per_subject,
            &mut self.max_bytes,
            &mut self.max_consumers,
        ] {
            if *v == 0 || *v < -1 {
                *v = -1;
            }
        }
        if self.max_msg_size == 0 || self.max_msg_size < -1 {
            self.max_msg_size = -1;
        }
        if self.duplicate_window == 0 && self.mirror.is_none() && self.sources.is_empty() {
            self.duplicate_window = if self.max_age != 0 && self.max_age < DEFAULT_DUPLICATE_WINDOW
            {
                self.max_age
            } else {
                DEFAULT_DUPLICATE_WINDOW
            };
        }
        // Only when the TTL itself is acceptable (>= 1s), as nats-server checks first.
        if self.subject_delete_marker_ttl >= NANOS_PER_SEC {
            self.allow_msg_ttl = true;
            if !self.allow_rollup_hdrs {
                self.allow_rollup_hdrs = true;
                self.deny_purge = false;
            }
        }
        if self.allow_msg_schedules && self.discard != DiscardPolicy::New && !self.allow_rollup_hdrs
        {
            self.allow_rollup_hdrs = true;
            self.deny_purge = false;
        }
        if self.subjects.is_empty() && self.mirror.is_none() && self.sources.is_empty() {
            self.subjects.push(self.name.clone());
        }
        if let Some(rp) = self.republish.as_mut() {
            if rp.src.is_empty() {
                rp.src = ">".to_string();
            }
            // Implicit republish of the transformed subject.
            if let Some(tr) = &self.subject_transform {
                if rp.dest == ">"
                    && rp.src == ">"
                    && self.subjects.len() == 1
                    && tr.src == self.subjects[0]
                {
                    rp.src = tr.dest.clone();
                    rp.dest = tr.dest.clone();
                }
            }
        }
        if self.placement.as_ref().is_some_and(Placement::is_empty) {
            self.placement = None;
        }
        self
    }

    /// nats-server's `checkStreamCfg` checks that need neither other streams
    /// nor server/account limits, in its order, so the first failure is the
    /// one nats-server reports. Call on the result of
    /// [`StreamConfig::with_defaults`]. Not checked here: subject overlap with
    /// other streams (`StreamSubjectOverlap`), mirror/source origins, account
    /// max-bytes limits, cycles, and subject-mapping destinations beyond
    /// subject syntax.
    pub fn validate(&self) -> Result<(), JsError> {
        if !is_valid_asset_name(&self.name) {
            return Err(invalid_config(
                "stream name is required and can not contain '.', '*', '>', '\\', '/'",
            ));
        }
        if self.name.len() > JS_MAX_NAME_LEN {
            return Err(invalid_config(&format!(
                "stream name is too long, maximum allowed is {JS_MAX_NAME_LEN}"
            )));
        }
        if self.description.len() > JS_MAX_DESCRIPTION_LEN {
            return Err(invalid_config(&format!(
                "stream description is too long, maximum allowed is {JS_MAX_DESCRIPTION_LEN}"
            )));
        }
        let metadata_len: usize = self.metadata.iter().map(|(k, v)| k.len() + v.len()).sum();
        if metadata_len > JS_MAX_METADATA_LEN {
            return Err(invalid_config(&format!(
                "stream metadata exceeds maximum size of {JS_MAX_METADATA_LEN} bytes"
            )));
        }
        if self.num_replicas > STREAM_MAX_REPLICAS {
            return Err(invalid_config(&format!(
                "maximum replicas is {STREAM_MAX_REPLICAS}"
            )));
        }
        if self.num_replicas < 0 {
            return Err(JsError::new(JsErrorKind::ReplicasCountCannotBeNegative));
        }
        if self.max_age < 0 {
            return Err(invalid_config("max age can not be negative"));
        }
        if self.max_age != 0 && self.max_age < 100 * NANOS_PER_MILLI {
            return Err(invalid_config("max age needs to be >= 100ms"));
        }
        if self.duplicate_window < 0 {
            return Err(invalid_config("duplicates window can not be negative"));
        }
        if self.max_age != 0 && self.duplicate_window > self.max_age {
            return Err(invalid_config(
                "duplicates window can not be larger then max age",
            ));
        }
        if self.duplicate_window > 0 && self.duplicate_window < 100 * NANOS_PER_MILLI {
            return Err(invalid_config("duplicates window needs to be >= 100ms"));
        }
        if self.deny_purge && self.allow_rollup_hdrs {
            return Err(invalid_config("roll-ups require the purge permission"));
        }
        if self.allow_msg_counter {
            if self.discard == DiscardPolicy::New {
                return Err(invalid_config("counter stream cannot use discard new"));
            }
            if self.allow_msg_ttl {
                return Err(invalid_config("counter stream cannot use message TTLs"));
            }
            if self.allow_msg_schedules {
                return Err(invalid_config(
                    "counter stream cannot use message schedules",
                ));
            }
            if self.retention != RetentionPolicy::Limits {
                return Err(invalid_config(
                    "counter stream can only use limits retention",
                ));
            }
        }
        if self.discard_new_per_subject {
            if self.discard != DiscardPolicy::New {
                return Err(invalid_config(
                    "discard new per subject requires discard new policy to be set",
                ));
            }
            if self.max_msgs_per_subject <= 0 {
                return Err(invalid_config(
                    "discard new per subject requires max msgs per subject > 0",
                ));
            }
        }
        if self.subject_delete_marker_ttl > 0 && self.subject_delete_marker_ttl < NANOS_PER_SEC {
            return Err(invalid_config(
                "subject delete marker TTL must be at least 1 second",
            ));
        }
        if self.subject_delete_marker_ttl < 0 {
            return Err(invalid_config(
                "subject delete marker TTL must not be negative",
            ));
        }
        if self.allow_msg_schedules && self.discard == DiscardPolicy::New {
            return Err(invalid_config("message scheduling cannot use discard new"));
        }
        if self.persist_mode == PersistMode::Async {
            if self.storage != StorageType::File {
                return Err(invalid_config(
                    "async persist mode is only supported on file storage",
                ));
            }
            if self.num_replicas > 1 {
                return Err(invalid_config(
                    "async persist mode is not supported on replicated streams",
                ));
            }
            if self.allow_atomic {
                return Err(invalid_config(
                    "async persist mode is not supported with atomic batch publish",
                ));
            }
        }
        if let Some(m) = &self.mirror {
            self.validate_mirror(m)?;
        }
        if !self.sources.is_empty() && self.allow_msg_schedules {
            return Err(JsError::new(JsErrorKind::SourceWithMsgSchedules));
        }
        self.validate_sources()?;
        self.validate_external_prefixes()?;
        self.validate_subjects()?;
        if self.subjects.is_empty() && self.sources.is_empty() && self.mirror.is_none() {
            return Err(invalid_config(
                "stream needs at least one configured subject or be a source/mirror",
            ));
        }
        if let Some(tr) = &self.subject_transform {
            if !tr.src.is_empty() && !is_valid_subject(&tr.src) {
                return Err(JsError::new(JsErrorKind::StreamTransformInvalidSource)
                    .arg("err", &format!("invalid subject {}", tr.src)));
            }
            if !is_valid_subject(&tr.dest) {
                return Err(JsError::new(JsErrorKind::StreamTransformInvalidDestination)
                    .arg("err", "invalid subject"));
            }
        }
        if let Some(rp) = &self.republish {
            if self.subjects.iter().any(|s| subjects_collide(&rp.dest, s)) {
                return Err(invalid_config(
                    "stream configuration for republish destination forms a cycle",
                ));
            }
            if !is_valid_subject(&rp.src) || !is_valid_subject(&rp.dest) {
                return Err(invalid_config(&format!(
                    "stream configuration for republish with transform from '{}' to '{}' not valid",
                    rp.src, rp.dest
                )));
            }
        }
        if self
            .placement
            .as_ref()
            .is_some_and(|p| !p.preferred.is_empty())
        {
            return Err(invalid_config(
                "preferred server not permitted in placement",
            ));
        }
        Ok(())
    }

    fn validate_mirror(&self, m: &StreamSource) -> Result<(), JsError> {
        let err = |k: JsErrorKind| Err(JsError::new(k));
        if self.first_seq > 0 {
            return err(JsErrorKind::MirrorWithFirstSeq);
        }
        if !self.subjects.is_empty() {
            return err(JsErrorKind::MirrorWithSubjects);
        }
        if !self.sources.is_empty() {
            return err(JsErrorKind::MirrorWithSources);
        }
        if self.allow_msg_counter {
            return err(JsErrorKind::MirrorWithCounters);
        }
        if self.allow_atomic {
            return err(JsErrorKind::MirrorWithAtomicPublish);
        }
        if self.allow_batched {
            return err(JsErrorKind::MirrorWithBatchPublish);
        }
        if self.allow_msg_schedules {
            return err(JsErrorKind::MirrorWithMsgSchedules);
        }
        if let Some(c) = &m.consumer {
            if !is_valid_asset_name(&c.name)
                || !is_literal(&c.deliver_subject)
                || !is_valid_subject(&c.deliver_subject)
                || m.opt_start_seq != 0
                || m.opt_start_time.is_some()
                || !m.filter_subject.is_empty()
            {
                return err(JsErrorKind::MirrorDurableConsumerCfgInvalid);
            }
        }
        if !m.filter_subject.is_empty() && !m.subject_transforms.is_empty() {
            return err(JsErrorKind::MirrorMultipleFiltersNotAllowed);
        }
        if self.subject_delete_marker_ttl > 0 {
            return Err(invalid_config(
                "subject delete markers forbidden on mirrors",
            ));
        }
        for (i, tr) in m.subject_transforms.iter().enumerate() {
            if !tr.src.is_empty() && !is_valid_subject(&tr.src) {
                return Err(JsError::new(JsErrorKind::MirrorInvalidSubjectFilter)
                    .arg("err", &format!("invalid subject {}", tr.src)));
            }
            if !tr.dest.is_empty() && !is_valid_subject(&tr.dest) {
                return Err(JsError::new(JsErrorKind::MirrorInvalidTransformDestination)
                    .arg("err", "invalid subject"));
            }
            for (j, other) in m.subject_transforms.iter().enumerate() {
                if i != j && subjects_collide(&tr.src, &other.src) {
                    return err(JsErrorKind::MirrorOverlappingSubjectFilters);
                }
            }
        }
        if m.external.is_none() && !is_valid_asset_name(&m.name) {
            return err(JsErrorKind::MirrorInvalidStreamName);
        }
        Ok(())
    }

    fn validate_sources(&self) -> Result<(), JsError> {
        let err = |k: JsErrorKind| Err(JsError::new(k));
        let mut inames = std::collections::HashSet::new();
        let mut cnames = std::collections::HashSet::new();
        for src in &self.sources {
            if !is_valid_asset_name(&src.name) {
                return err(JsErrorKind::SourceInvalidStreamName);
            }
            // nats-server's composeIName: name, external API prefix, consumer,
            // then the filters and their destinations (in the given order).
            let mut iname = src.name.clone();
            if let Some(ext) = &src.external {
                iname.push(':');
                iname.push_str(&ext.api);
            }
            if let Some(c) = &src.consumer {
                iname.push_str(":C=");
                iname.push_str(&c.name);
            }
            let or_all = |s: &str| {
                if s.is_empty() {
                    ">".to_string()
                } else {
                    s.to_string()
                }
            };
            let (from, to) = if src.subject_transforms.is_empty() {
                (or_all(&src.filter_subject), ">".to_string())
            } else {
                let from: Vec<String> = src
                    .subject_transforms
                    .iter()
                    .map(|t| or_all(&t.src))
                    .collect();
                let to: Vec<String> = src
                    .subject_transforms
                    .iter()
                    .map(|t| or_all(&t.dest))
                    .collect();
                (from.join("\x0c"), to.join("\x0c"))
            };
            let iname = format!("{iname} {from} {to}");
            if !inames.insert(iname) {
                return err(JsErrorKind::SourceDuplicateDetected);
            }
            if !src.filter_subject.is_empty() && !src.subject_transforms.is_empty() {
                return err(JsErrorKind::SourceMultipleFiltersNotAllowed);
            }
            for tr in &src.subject_transforms {
                if !tr.src.is_empty() && !is_valid_subject(&tr.src) {
                    return Err(JsError::new(JsErrorKind::SourceInvalidSubjectFilter)
                        .arg("err", &format!("invalid subject {}", tr.src)));
                }
                if !tr.dest.is_empty() && !is_valid_subject(&tr.dest) {
                    return Err(JsError::new(JsErrorKind::SourceInvalidTransformDestination)
                        .arg("err", "invalid subject"));
                }
            }
            for (i, tr) in src.subject_transforms.iter().enumerate() {
                for (j, other) in src.subject_transforms.iter().enumerate() {
                    if i != j && subject_is_subset(&tr.src, &other.src) {
                        return err(JsErrorKind::SourceOverlappingSubjectFilters);
                    }
                }
            }
            if let Some(c) = &src.consumer {
                if !is_valid_asset_name(&c.name)
                    || !is_literal(&c.deliver_subject)
                    || !is_valid_subject(&c.deliver_subject)
                    || src.opt_start_seq != 0
                    || src.opt_start_time.is_some()
                    || !src.filter_subject.is_empty()
                {
                    return err(JsErrorKind::SourceDurableConsumerCfgInvalid);
                }
                let cname = format!(
                    "{}:{} {}",
                    src.name,
                    src.external.as_ref().map(|e| e.api.as_str()).unwrap_or(""),
                    c.name
                );
                if !cnames.insert(cname) {
                    return err(JsErrorKind::SourceDurableConsumerDuplicateDetected);
                }
            }
        }
        Ok(())
    }

    fn validate_external_prefixes(&self) -> Result<(), JsError> {
        let externals = self
            .mirror
            .iter()
            .chain(self.sources.iter())
            .filter_map(|s| s.external.as_ref());
        let mut api = Vec::new();
        for ext in externals.clone() {
            let deliver_ok = is_valid_subject(&ext.deliver) && is_literal(&ext.deliver);
            if !ext.deliver.is_empty() && !deliver_ok {
                return Err(
                    JsError::new(JsErrorKind::StreamInvalidExternalDeliverySubjErrF)
                        .arg("prefix", &ext.deliver),
                );
            }
            if !ext.api.is_empty() {
                api.push(ext.api.as_str());
            }
        }
        for pfx in api {
            if !(is_valid_subject(pfx) && is_literal(pfx)) {
                return Err(invalid_config(&format!(
                    "stream external api prefix {pfx:?} must be a valid subject without wildcards"
                )));
            }
            if subjects_collide(pfx, "$JS.API") {
                return Err(JsError::new(JsErrorKind::StreamExternalApiOverlapErrF)
                    .arg("prefix", pfx)
                    .arg("subject", "$JS.API"));
            }
        }
        Ok(())
    }

    fn validate_subjects(&self) -> Result<(), JsError> {
        if self.subjects.is_empty() {
            return Ok(());
        }
        if self.mirror.is_some() {
            return Err(JsError::new(JsErrorKind::MirrorWithSubjects));
        }
        let mut seen = std::collections::HashSet::new();
        for (i, subj) in self.subjects.iter().enumerate() {
            if !is_valid_subject(subj) {
                return Err(invalid_config("invalid subject"));
            }
            if !seen.insert(subj.as_str()) {
                return Err(invalid_config("duplicate subjects detected"));
            }
            if subj == ">" {
                if !self.no_ack {
                    return Err(invalid_config(
                        "capturing all subjects requires no-ack to be true",
                    ));
                }
                if self.num_replicas != 1 {
                    return Err(invalid_config(
                        "capturing all subjects requires replicas of 1",
                    ));
                }
            }
            if !self.no_ack {
                for ns in ["$JS.>", "$JSC.>", "$NRG.>"] {
                    if subjects_collide(subj, ns) && !subject_is_subset(subj, "$JS.EVENT.>") {
                        return Err(invalid_config(
                            "subjects that overlap with jetstream api require no-ack to be true",
                        ));
                    }
                }
                if subjects_collide(subj, "$SYS.>") && !subject_is_subset(subj, "$SYS.ACCOUNT.>") {
                    return Err(invalid_config(
                        "subjects that overlap with system api require no-ack to be true",
                    ));
                }
            }
            for other in &self.subjects[i + 1..] {
                if subjects_collide(other, subj) {
                    return Err(invalid_config(&format!(
                        "subject {subj:?} overlaps with {other:?}"
                    )));
                }
            }
        }
        Ok(())
    }
}

/// Messages lost to corruption.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct LostStreamData {
    #[serde(default, deserialize_with = "nullable")]
    pub msgs: Vec<u64>,
    #[serde(default)]
    pub bytes: u64,
}

/// A stream's current state. Times are Go's zero time when the stream is empty.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamState {
    pub messages: u64,
    pub bytes: u64,
    pub first_seq: u64,
    #[serde(with = "time_fmt", default = "zero_time")]
    pub first_ts: DateTime<Utc>,
    pub last_seq: u64,
    #[serde(with = "time_fmt", default = "zero_time")]
    pub last_ts: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "is_zero_i64")]
    pub num_subjects: i64,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub subjects: BTreeMap<String, u64>,
    #[serde(default, skip_serializing_if = "is_zero_i64")]
    pub num_deleted: i64,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub deleted: Vec<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lost: Option<LostStreamData>,
    pub consumer_count: i64,
}

impl Default for StreamState {
    fn default() -> Self {
        StreamState {
            messages: 0,
            bytes: 0,
            first_seq: 0,
            first_ts: zero_time(),
            last_seq: 0,
            last_ts: zero_time(),
            num_subjects: 0,
            subjects: BTreeMap::new(),
            num_deleted: 0,
            deleted: Vec::new(),
            lost: None,
            consumer_count: 0,
        }
    }
}

/// A replica of a stream or consumer.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct PeerInfo {
    pub name: String,
    pub current: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub offline: bool,
    /// Nanoseconds since last seen.
    pub active: i64,
    #[serde(default, skip_serializing_if = "is_zero_u64")]
    pub lag: u64,
    #[serde(default)]
    pub peer: String,
}

/// The servers behind a stream or consumer. A standalone nats-server sends
/// `{"leader": <server name>}` in stream info (not in create/update
/// responses, not in consumer info).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ClusterInfo {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub raft_group: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub leader: String,
    #[serde(
        default,
        with = "time_fmt::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub leader_since: Option<DateTime<Utc>>,
    #[serde(default, rename = "system_account", skip_serializing_if = "is_false")]
    pub system_account: bool,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub traffic_account: String,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub replicas: Vec<PeerInfo>,
}

impl ClusterInfo {
    /// What a standalone server reports: only the leader's name.
    pub fn leader(name: impl Into<String>) -> ClusterInfo {
        ClusterInfo {
            leader: name.into(),
            ..ClusterInfo::default()
        }
    }
}

/// The state of a mirror or source.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct StreamSourceInfo {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external: Option<ExternalStream>,
    pub lag: u64,
    /// The last origin sequence copied (sources only; omitted when none).
    #[serde(default, skip_serializing_if = "is_zero_u64")]
    pub seq: u64,
    /// Nanoseconds since last active; -1 when never.
    pub active: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<JsError>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub filter_subject: String,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub subject_transforms: Vec<SubjectTransformConfig>,
}

/// Where else a stream (a mirror of it) can be read.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct StreamAlternate {
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub domain: String,
    pub cluster: String,
}

/// A stream's configuration and state, as in stream create/info/update/list responses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamInfo {
    pub config: StreamConfig,
    #[serde(with = "time_fmt")]
    pub created: DateTime<Utc>,
    pub state: StreamState,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub domain: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<ClusterInfo>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mirror: Option<StreamSourceInfo>,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub sources: Vec<StreamSourceInfo>,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub alternates: Vec<StreamAlternate>,
    /// When the info was gathered.
    #[serde(with = "time_fmt")]
    pub ts: DateTime<Utc>,
}

/// A stored message as `STREAM.MSG.GET` returns it; `hdrs` and `data` are
/// base64 on the wire and omitted when empty.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredMsg {
    pub subject: String,
    pub seq: u64,
    #[serde(default, with = "base64_bytes", skip_serializing_if = "Vec::is_empty")]
    pub hdrs: Vec<u8>,
    #[serde(default, with = "base64_bytes", skip_serializing_if = "Vec::is_empty")]
    pub data: Vec<u8>,
    #[serde(with = "time_fmt")]
    pub time: DateTime<Utc>,
}

/// Go's `[]byte` JSON form: standard base64 with padding.
pub mod base64_bytes {
    use base64::Engine as _;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(v))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        match Option::<String>::deserialize(d)? {
            None => Ok(Vec::new()),
            Some(s) => base64::engine::general_purpose::STANDARD
                .decode(s.as_bytes())
                .map_err(serde::de::Error::custom),
        }
    }
}

impl StreamConfig {
    /// Whether the stream must remove messages over time (`max_age` or per-message TTLs).
    pub fn needs_expiry(&self) -> bool {
        self.max_age > 0 || self.allow_msg_ttl
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(cfg: StreamConfig) -> Result<StreamConfig, JsError> {
        let cfg = cfg.with_defaults();
        cfg.validate().map(|_| cfg)
    }

    fn desc(r: Result<StreamConfig, JsError>) -> (u16, String) {
        let e = r.expect_err("expected an error");
        (e.err_code, e.description)
    }

    #[test]
    fn defaults_match_nats_server() {
        let cfg: StreamConfig =
            serde_json::from_str(r#"{"name":"ORDERS","subjects":["orders.*"]}"#).unwrap();
        let cfg = check(cfg).unwrap();
        // As nats-server 2.15 answered the same request (metadata aside).
        let expected = serde_json::json!({"name": "ORDERS", "subjects": ["orders.*"], "retention": "limits", "max_consumers": -1, "max_msgs": -1, "max_bytes": -1, "max_age": 0, "max_msgs_per_subject": -1, "max_msg_size": -1, "discard": "old", "storage": "file", "num_replicas": 1, "duplicate_window": 120000000000i64, "compression": "none", "allow_direct": false, "mirror_direct": false, "sealed": false, "deny_delete": false, "deny_purge": false, "allow_rollup_hdrs": false, "consumer_limits": {}, "allow_msg_ttl": false});
        assert_eq!(serde_json::to_value(&cfg).unwrap(), expected);

        // Subjects default to the name; duplicate window shrinks to max_age.
        let cfg = check(StreamConfig {
            max_age: NANOS_PER_SEC,
            ..StreamConfig::new("S", &[])
        })
        .unwrap();
        assert_eq!(cfg.subjects, vec!["S".to_string()]);
        assert_eq!(cfg.duplicate_window, NANOS_PER_SEC);

        // Mirrors get no duplicate window and no subjects.
        let cfg = check(StreamConfig {
            mirror: Some(StreamSource {
                name: "ORDERS".into(),
                ..Default::default()
            }),
            ..StreamConfig::new("MIR", &[])
        })
        .unwrap();
        assert_eq!(cfg.duplicate_window, 0);
        assert!(cfg.subjects.is_empty());

        // Subject delete markers switch on TTLs and rollups.
        let cfg = check(StreamConfig {
            subject_delete_marker_ttl: 2 * NANOS_PER_SEC,
            deny_purge: true,
            ..StreamConfig::new("S", &["s"])
        })
        .unwrap();
        assert!(cfg.allow_msg_ttl && cfg.allow_rollup_hdrs && !cfg.deny_purge);

        // Republish with an empty source reads everything; empty placement dropped.
        let cfg = check(StreamConfig {
            republish: Some(RePublish {
                dest: "rp.>".into(),
                ..Default::default()
            }),
            placement: Some(Placement::default()),
            ..StreamConfig::new("S", &["s.>"])
        })
        .unwrap();
        assert_eq!(cfg.republish.unwrap().src, ">");
        assert!(cfg.placement.is_none());
    }

    #[test]
    fn validation_errors_match_nats_server() {
        // Each description below was captured from nats-server 2.15.
        assert_eq!(
            desc(check(StreamConfig::new("A*B", &["ab"]))),
            (
                10052,
                "stream name is required and can not contain '.', '*', '>', '\\', '/'".into()
            )
        );
        assert_eq!(
            desc(check(StreamConfig::new("OV", &["ov.*", "ov.a"]))),
            (10052, "subject \"ov.*\" overlaps with \"ov.a\"".into())
        );
        assert_eq!(
            desc(check(StreamConfig {
                max_age: NANOS_PER_SEC,
                duplicate_window: 2 * NANOS_PER_SEC,
                ..StreamConfig::new("DG", &[])
            })),
            (
                10052,
                "duplicates window can not be larger then max age".into()
            )
        );
        assert_eq!(
            desc(check(StreamConfig {
                max_age: 1000,
                ..StreamConfig::new("T", &[])
            })),
            (10052, "max age needs to be >= 100ms".into())
        );
        assert_eq!(
            desc(check(StreamConfig {
                num_replicas: -1,
                ..StreamConfig::new("T", &[])
            })),
            (10133, "replicas count cannot be negative".into())
        );
        assert_eq!(
            desc(check(StreamConfig {
                num_replicas: 7,
                ..StreamConfig::new("T", &[])
            })),
            (10052, "maximum replicas is 5".into())
        );
        assert_eq!(
            desc(check(StreamConfig {
                mirror: Some(StreamSource {
                    name: "S".into(),
                    ..Default::default()
                }),
                ..StreamConfig::new("T", &["t"])
            })),
            (10034, "stream mirrors can not contain subjects".into())
        );
        assert_eq!(
            desc(check(StreamConfig::new("T", &["a..b"]))),
            (10052, "invalid subject".into())
        );
        // Others from the source.
        assert_eq!(
            desc(check(StreamConfig {
                deny_purge: true,
                allow_rollup_hdrs: true,
                ..StreamConfig::new("T", &[])
            }))
            .1,
            "roll-ups require the purge permission"
        );
        assert_eq!(
            desc(check(StreamConfig::new("T", &[">"]))).1,
            "capturing all subjects requires no-ack to be true"
        );
        assert_eq!(
            desc(check(StreamConfig::new("T", &["$JS.API.>"]))).1,
            "subjects that overlap with jetstream api require no-ack to be true"
        );
        assert!(check(StreamConfig::new("T", &["$JS.EVENT.foo"])).is_ok());
        // nats-server checks overlap with the later subjects before it sees
        // the duplicate, so a literal duplicate reports as an overlap.
        assert_eq!(
            desc(check(StreamConfig::new("T", &["a", "a"]))).1,
            "subject \"a\" overlaps with \"a\""
        );
        assert_eq!(
            desc(check(StreamConfig {
                discard_new_per_subject: true,
                ..StreamConfig::new("T", &[])
            }))
            .1,
            "discard new per subject requires discard new policy to be set"
        );
        assert_eq!(
            desc(check(StreamConfig {
                sources: vec![
                    StreamSource {
                        name: "A".into(),
                        ..Default::default()
                    },
                    StreamSource {
                        name: "A".into(),
                        ..Default::default()
                    }
                ],
                ..StreamConfig::new("T", &[])
            }))
            .0,
            JsErrorKind::SourceDuplicateDetected.err_code()
        );
        assert_eq!(
            desc(check(StreamConfig {
                republish: Some(RePublish {
                    src: ">".into(),
                    dest: "t.>".into(),
                    headers_only: false
                }),
                ..StreamConfig::new("T", &["t.>"])
            }))
            .1,
            "stream configuration for republish destination forms a cycle"
        );
        assert!(check(StreamConfig::new("x".repeat(256), &["x"])).is_err());
    }

    #[test]
    fn enums_on_the_wire() {
        let v: DiscardPolicy = serde_json::from_str(r#""NEW""#).unwrap();
        assert_eq!(v, DiscardPolicy::New);
        let v: PersistMode = serde_json::from_str(r#""""#).unwrap();
        assert_eq!(v, PersistMode::Default);
        assert_eq!(
            serde_json::to_string(&RetentionPolicy::WorkQueue).unwrap(),
            r#""workqueue""#
        );
        assert_eq!(
            serde_json::to_string(&StoreCompression::S2).unwrap(),
            r#""s2""#
        );
        assert!(serde_json::from_str::<RetentionPolicy>(r#""bogus""#).is_err());
        let cfg = StreamConfig {
            persist_mode: PersistMode::Async,
            ..StreamConfig::new("a", &[])
        };
        assert_eq!(serde_json::to_value(&cfg).unwrap()["persist_mode"], "async");
    }

    #[test]
    fn nulls_read_as_zero_values() {
        let cfg: StreamConfig = serde_json::from_str(
            r#"{"name":"X","subjects":null,"sources":null,"metadata":null,"description":null,"mirror":null}"#,
        )
        .unwrap();
        assert!(cfg.subjects.is_empty() && cfg.sources.is_empty() && cfg.metadata.is_empty());
    }
}
