//! The `$JS.API.CONSUMER.*` handlers: create (current and legacy subjects),
//! info, names, list, delete, pause, unpin. (`MSG.NEXT` and `RESET` are
//! subscribed per consumer: see `consumer/`.)

use std::sync::Arc;

use chrono::Utc;

use super::api::{parse_json, request_strict, Answer, Gate, PAGED_FIELDS};
use super::consumer::{priority, state, Consumer};
use super::errors::{JsError, JsErrorKind};
use super::stream::Stream;
use super::types::*;
use super::JsAccount;

pub fn dispatch(js: &Arc<JsAccount>, op: &str, body: &[u8], gate: &Gate) -> Answer {
    let t: Vec<&str> = op.split('.').collect();
    match t.as_slice() {
        ["CREATE", stream] => gate.answer(|| create(js, stream, None, None, body, false)),
        ["CREATE", stream, name] => {
            gate.answer(|| create(js, stream, Some(name), None, body, false))
        }
        ["CREATE", stream, name, filter @ ..] => {
            let filter = filter.join(".");
            gate.answer(|| create(js, stream, Some(name), Some(&filter), body, false))
        }
        ["DURABLE", "CREATE", stream, name] => {
            gate.answer(|| create(js, stream, Some(name), None, body, true))
        }
        ["INFO", stream, name] => gate.answer(|| info(js, stream, name)),
        ["DELETE", stream, name] => gate.answer(|| delete(js, stream, name)),
        ["NAMES", stream] => gate.answer(|| names(js, stream, body)),
        ["LIST", stream] => gate.answer(|| list(js, stream, body)),
        ["PAUSE", stream, name] => gate.answer(|| pause(js, stream, name, body)),
        ["LEADER", "STEPDOWN", _, _] => {
            gate.answer(|| Err::<ConsumerLeaderStepDownResponse, _>(super::api::not_clustered()))
        }
        ["UNPIN", stream, name] => gate.answer(|| unpin(js, stream, name, body)),
        _ => None,
    }
}

fn stream_of(js: &JsAccount, name: &str) -> Result<Arc<Stream>, JsError> {
    js.stream(name)
        .ok_or_else(|| JsError::new(JsErrorKind::StreamNotFound))
}

fn consumer_of(
    js: &JsAccount,
    stream: &str,
    name: &str,
) -> Result<(Arc<Stream>, Arc<Consumer>), JsError> {
    let s = stream_of(js, stream)?;
    let c = s
        .consumer(name)
        .ok_or_else(|| JsError::new(JsErrorKind::ConsumerNotFound))?;
    Ok((s, c))
}

fn bad_name(name: &str) -> bool {
    name.is_empty() || name.contains(['.', '*', '>', ' ', '\t', '/', '\\'])
}

/// A random 8-character name for an ephemeral consumer.
fn ephemeral_name() -> String {
    rnats_core::ids::short()
}

fn create(
    js: &Arc<JsAccount>,
    stream_name: &str,
    subject_name: Option<&str>,
    subject_filter: Option<&str>,
    body: &[u8],
    legacy_durable: bool,
) -> Result<ConsumerCreateResponse, JsError> {
    // An empty body is an empty request, whose (empty) stream name cannot match.
    let raw = if body.iter().all(u8::is_ascii_whitespace) {
        serde_json::Value::Object(Default::default())
    } else {
        parse_json(body)?
    };
    if let Some(action) = raw.get("action").and_then(|a| a.as_str()) {
        if !matches!(action, "" | "create" | "update") {
            return Err(JsError::new(JsErrorKind::InvalidJSON)
                .arg("err", &format!("unknown consumer action: {action:?}")));
        }
    }
    let req: ConsumerCreateRequest = serde_json::from_value(raw)
        .map_err(|e| JsError::new(JsErrorKind::InvalidJSON).arg("err", &e.to_string()))?;
    if req.stream_name != stream_name {
        return Err(JsError::new(JsErrorKind::StreamMismatch));
    }
    let stream = stream_of(js, stream_name)?;
    let scfg = stream.config();
    let mut cfg = req.config;

    // Names: from the subject, `durable_name` and `name`, which must agree.
    if !cfg.durable.is_empty() && !cfg.name.is_empty() && cfg.durable != cfg.name {
        return Err(JsError::new(
            JsErrorKind::ConsumerCreateDurableAndNameMismatch,
        ));
    }
    if legacy_durable {
        let n = subject_name.unwrap_or_default();
        if cfg.durable.is_empty() {
            return Err(JsError::new(JsErrorKind::ConsumerDurableNameNotSet));
        }
        if cfg.durable != n {
            return Err(JsError::new(
                JsErrorKind::ConsumerDurableNameNotMatchSubject,
            ));
        }
    }
    let name = match subject_name {
        Some(n) => {
            let given = if cfg.name.is_empty() {
                &cfg.durable
            } else {
                &cfg.name
            };
            if !given.is_empty() && given != n {
                return Err(JsError::new(
                    JsErrorKind::ConsumerDurableNameNotMatchSubject,
                ));
            }
            n.to_string()
        }
        None => {
            if !cfg.durable.is_empty() {
                return Err(JsError::new(JsErrorKind::ConsumerEphemeralWithDurableName));
            }
            if cfg.name.is_empty() {
                ephemeral_name()
            } else {
                cfg.name.clone()
            }
        }
    };
    if bad_name(&name) {
        return Err(JsError::new(JsErrorKind::StreamInvalidConfigF).arg(
            "err",
            "consumer name can not contain '.', '*', '>', '\\', '/'",
        ));
    }
    if cfg.name.is_empty() && cfg.durable.is_empty() && subject_name.is_some() && !legacy_durable {
        // `CONSUMER.CREATE.<stream>.<name>` names the consumer; it is durable
        // only if the request says `durable_name`.
        cfg.name = name.clone();
    } else if cfg.name.is_empty() {
        cfg.name = name.clone();
    }
    if let Some(f) = subject_filter {
        if !cfg.filter_subjects.is_empty() {
            return Err(JsError::new(JsErrorKind::ConsumerMultipleFiltersNotAllowed));
        }
        if cfg.filter_subject != f {
            return Err(JsError::new(
                JsErrorKind::ConsumerCreateFilterSubjectMismatch,
            ));
        }
    }
    // The `_nats.*` keys are the server's to set, not stored from requests.
    cfg.metadata.retain(|k, _| !k.starts_with("_nats."));
    if req.pedantic {
        // Pedantic: refuse what the defaults would silently change.
        if let Some(why) = cfg.pedantic_violation(&scfg) {
            return Err(JsError::new(JsErrorKind::PedanticErrF).arg("err", why));
        }
    }
    let cfg = cfg.with_defaults(&scfg);
    validate(&cfg, &scfg, &stream)?;

    if let Some(existing) = stream.consumer(&name) {
        let old = existing.config();
        if old == cfg {
            return Ok(ConsumerCreateResponse(Some(existing.info_full())));
        }
        if req.action == ConsumerAction::Create {
            return Err(JsError::new(JsErrorKind::ConsumerAlreadyExists));
        }
        check_update(&old, &cfg)?;
        existing.set_config(cfg);
        return Ok(ConsumerCreateResponse(Some(existing.info_full())));
    }
    if req.action == ConsumerAction::Update {
        return Err(JsError::new(JsErrorKind::ConsumerDoesNotExist));
    }
    let stream_full =
        scfg.max_consumers > 0 && stream.consumers().len() as i64 >= scfg.max_consumers;
    if stream_full || js.consumer_limit_reached() {
        return Err(JsError::new(JsErrorKind::MaximumConsumersLimit));
    }
    let until = cfg.pause_until;
    let consumer = js.add_consumer(&stream, name, cfg, Utc::now(), None)?;
    consumer.advise_action(super::advisories::Action::Create);
    // A consumer created paused says so (nats-server checks the time is ahead).
    if until.is_some_and(|t| t > Utc::now()) {
        consumer.advise_pause(until);
    }
    Ok(ConsumerCreateResponse(Some(consumer.info_full())))
}

/// The configuration checks nats-server makes on create.
fn validate(cfg: &ConsumerConfig, scfg: &StreamConfig, stream: &Stream) -> Result<(), JsError> {
    let policy = |text: &str| JsError::new(JsErrorKind::ConsumerInvalidPolicyErrF).arg("err", text);
    match cfg.deliver_policy {
        DeliverPolicy::ByStartSequence if cfg.opt_start_seq == 0 => {
            return Err(policy("consumer delivery policy is deliver by start sequence, but optional start sequence is not set"))
        }
        DeliverPolicy::ByStartTime if cfg.opt_start_time.is_none() => {
            return Err(policy("consumer delivery policy is deliver by start time, but optional start time is not set"))
        }
        DeliverPolicy::ByStartTime if cfg.opt_start_seq > 0 => {
            return Err(policy(
                "consumer delivery policy is deliver by start time, but optional start start sequence is also set",
            ))
        }
        DeliverPolicy::LastPerSubject if cfg.filter_subject.is_empty() && cfg.filter_subjects.is_empty() => {
            return Err(policy(
                "consumer delivery policy is deliver last per subject, but optional filter subject is not set",
            ))
        }
        DeliverPolicy::All | DeliverPolicy::Last | DeliverPolicy::New | DeliverPolicy::LastPerSubject
            if cfg.opt_start_seq > 0 || cfg.opt_start_time.is_some() =>
        {
            let name = match cfg.deliver_policy {
                DeliverPolicy::All => "deliver all",
                DeliverPolicy::Last => "deliver last",
                DeliverPolicy::New => "deliver new",
                _ => "deliver last per subject",
            };
            let what = if cfg.opt_start_seq > 0 { "start sequence" } else { "start time" };
            return Err(policy(&format!("consumer delivery policy is {name}, but optional {what} is also set")));
        }
        _ => {}
    }
    if cfg.num_replicas > 1 {
        return Err(JsError::new(JsErrorKind::StreamReplicasNotSupported));
    }
    if cfg.ack_wait < 0 {
        return Err(JsError::new(JsErrorKind::ConsumerAckWaitNegative));
    }
    if !cfg.sample_frequency.is_empty() {
        let digits = cfg.sample_frequency.trim_end_matches('%');
        if digits.parse::<i64>().is_err() {
            return Err(JsError::new(JsErrorKind::ConsumerInvalidSamplingErrF).arg(
                "err",
                &format!("strconv.Atoi: parsing {digits:?}: invalid syntax"),
            ));
        }
    }
    let push = !cfg.deliver_subject.is_empty();
    if push {
        if cfg.max_waiting > 0 {
            return Err(JsError::new(JsErrorKind::ConsumerPushMaxWaiting));
        }
        if !rnats_subject::is_valid_subject(cfg.deliver_subject.as_bytes()) {
            return Err(JsError::new(JsErrorKind::ConsumerInvalidDeliverSubject));
        }
        if !rnats_subject::is_literal(cfg.deliver_subject.as_bytes()) {
            return Err(JsError::new(JsErrorKind::ConsumerDeliverToWildcards));
        }
        if scfg
            .subjects
            .iter()
            .any(|s| rnats_subject::matches(s.as_bytes(), cfg.deliver_subject.as_bytes()))
        {
            return Err(JsError::new(JsErrorKind::ConsumerDeliverCycle));
        }
        if cfg.flow_control && cfg.heartbeat <= 0 {
            return Err(JsError::new(
                JsErrorKind::ConsumerWithFlowControlNeedsHeartbeats,
            ));
        }
    } else {
        if cfg.rate_limit > 0 {
            return Err(JsError::new(JsErrorKind::ConsumerPullWithRateLimit));
        }
        if cfg.heartbeat > 0 {
            return Err(JsError::new(JsErrorKind::ConsumerHBRequiresPush));
        }
        if cfg.flow_control {
            return Err(JsError::new(JsErrorKind::ConsumerFCRequiresPush));
        }
        if cfg.max_waiting < 0 {
            return Err(JsError::new(JsErrorKind::ConsumerMaxWaitingNegative));
        }
    }
    if cfg.heartbeat > 0 && cfg.heartbeat < 100_000_000 {
        return Err(JsError::new(JsErrorKind::ConsumerSmallHeartbeat));
    }
    // The stream's `consumer_limits` are ceilings for every consumer.
    let limits = &scfg.consumer_limits;
    if limits.max_ack_pending > 0 && cfg.max_ack_pending > limits.max_ack_pending {
        return Err(JsError::new(JsErrorKind::ConsumerMaxPendingAckExcessErrF)
            .arg("limit", &limits.max_ack_pending.to_string()));
    }
    if limits.inactive_threshold > 0 && cfg.inactive_threshold > limits.inactive_threshold {
        return Err(
            JsError::new(JsErrorKind::ConsumerInactiveThresholdExcess).arg(
                "limit",
                &super::consumer::deliver::go_duration(limits.inactive_threshold),
            ),
        );
    }
    if !cfg.backoff.is_empty() && cfg.max_deliver > 0 && cfg.max_deliver <= cfg.backoff.len() as i64
    {
        return Err(JsError::new(JsErrorKind::ConsumerMaxDeliverBackoff));
    }
    if !cfg.filter_subject.is_empty() && !cfg.filter_subjects.is_empty() {
        return Err(JsError::new(JsErrorKind::ConsumerDuplicateFilterSubjects));
    }
    let filters: Vec<&String> = cfg
        .filter_subjects
        .iter()
        .chain(std::iter::once(&cfg.filter_subject))
        .filter(|f| !f.is_empty())
        .collect();
    if cfg.filter_subjects.iter().any(String::is_empty) {
        return Err(JsError::new(JsErrorKind::ConsumerEmptyFilter));
    }
    for (i, a) in filters.iter().enumerate() {
        // nats-server accepts filters outside the stream's subjects.
        if !rnats_subject::is_valid_subject(a.as_bytes()) {
            return Err(
                JsError::new(JsErrorKind::StreamInvalidConfigF).arg("err", "invalid subject")
            );
        }
        for b in &filters[i + 1..] {
            if rnats_subject::overlaps(a.as_bytes(), b.as_bytes()) {
                return Err(JsError::new(JsErrorKind::ConsumerOverlappingSubjectFilters));
            }
        }
    }
    check_priority(cfg)?;
    if scfg.retention == RetentionPolicy::WorkQueue {
        if cfg.ack_policy != AckPolicy::Explicit {
            return Err(JsError::new(if push {
                JsErrorKind::ConsumerWQRequiresExplicitAck
            } else {
                JsErrorKind::ConsumerPullRequiresAck
            }));
        }
        if cfg.deliver_policy != DeliverPolicy::All {
            return Err(JsError::new(JsErrorKind::ConsumerWQConsumerNotDeliverAll));
        }
        for other in stream.consumers() {
            if other.name == cfg.name || other.name == cfg.durable {
                continue;
            }
            let ocfg = other.config();
            let ofilters: Vec<&String> = ocfg
                .filter_subjects
                .iter()
                .chain(std::iter::once(&ocfg.filter_subject))
                .filter(|f| !f.is_empty())
                .collect();
            if filters.is_empty() || ofilters.is_empty() {
                return Err(JsError::new(JsErrorKind::ConsumerWQMultipleUnfiltered));
            }
            if filters.iter().any(|a| {
                ofilters
                    .iter()
                    .any(|b| rnats_subject::overlaps(a.as_bytes(), b.as_bytes()))
            }) {
                return Err(JsError::new(JsErrorKind::ConsumerWQConsumerNotUnique));
            }
        }
    }
    Ok(())
}

/// nats-server's priority group rules: groups only with a policy, on pull
/// consumers, with valid names; `priority_timeout` only with a policy.
fn check_priority(cfg: &ConsumerConfig) -> Result<(), JsError> {
    if cfg.priority_policy == PriorityPolicy::None {
        if !cfg.priority_groups.is_empty() {
            return Err(JsError::new(
                JsErrorKind::ConsumerPriorityGroupWithPolicyNone,
            ));
        }
        if cfg.pinned_ttl > 0 {
            return Err(JsError::new(
                JsErrorKind::ConsumerPinnedTTLWithoutPriorityPolicyNone,
            ));
        }
        return Ok(());
    }
    if !cfg.is_pull() {
        return Err(JsError::new(JsErrorKind::ConsumerPushWithPriorityGroup));
    }
    if cfg.priority_groups.is_empty() {
        return Err(JsError::new(
            JsErrorKind::ConsumerPriorityPolicyWithoutGroup,
        ));
    }
    for g in &cfg.priority_groups {
        if g.is_empty() {
            return Err(JsError::new(JsErrorKind::ConsumerEmptyGroupName));
        }
        if !priority::valid_group_name(g) {
            return Err(JsError::new(JsErrorKind::ConsumerInvalidGroupName));
        }
    }
    Ok(())
}

/// `$JS.API.CONSUMER.UNPIN.<stream>.<consumer>` `{"group": ".."}`: the body is
/// checked before the stream and consumer are looked up, as nats-server does.
fn unpin(
    js: &Arc<JsAccount>,
    stream: &str,
    name: &str,
    body: &[u8],
) -> Result<ConsumerUnpinResponse, JsError> {
    let invalid = |e: String| JsError::new(JsErrorKind::InvalidJSON).arg("err", &e);
    let raw: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| invalid(super::api::go_json_error(&e, body)))?;
    let req: ConsumerUnpinRequest = if raw.is_null() {
        ConsumerUnpinRequest::default()
    } else {
        serde_json::from_value(raw).map_err(|e| invalid(e.to_string()))?
    };
    if req.group.is_empty() {
        return Err(invalid("consumer group not specified".into()));
    }
    if !priority::valid_group_name(&req.group) {
        return Err(JsError::new(JsErrorKind::ConsumerInvalidGroupName));
    }
    let (_, c) = consumer_of(js, stream, name)?;
    if !c.config().priority_groups.contains(&req.group) {
        return Err(JsError::new(JsErrorKind::ConsumerInvalidPriorityGroup));
    }
    c.unpin(&req.group);
    Ok(ConsumerUnpinResponse {})
}

/// What an update may not change (nats-server's `checkConsumerCfg` on update).
fn check_update(old: &ConsumerConfig, new: &ConsumerConfig) -> Result<(), JsError> {
    let invalid = |what: &str| JsError::new(JsErrorKind::ConsumerCreateErrF).arg("err", what);
    if old.deliver_policy != new.deliver_policy {
        return Err(invalid("deliver policy can not be updated"));
    }
    if old.opt_start_seq != new.opt_start_seq {
        return Err(invalid("start sequence can not be updated"));
    }
    if old.opt_start_time != new.opt_start_time {
        return Err(invalid("start time can not be updated"));
    }
    if old.ack_policy != new.ack_policy {
        return Err(invalid("ack policy can not be updated"));
    }
    if old.replay_policy != new.replay_policy {
        return Err(invalid("replay policy can not be updated"));
    }
    match (
        old.deliver_subject.is_empty(),
        new.deliver_subject.is_empty(),
    ) {
        (true, false) => return Err(invalid("can not update pull consumer to push based")),
        (false, true) => return Err(invalid("can not update push consumer to pull based")),
        _ => {}
    }
    if old.max_waiting != new.max_waiting {
        return Err(invalid("max waiting can not be updated"));
    }
    if old.heartbeat != new.heartbeat {
        return Err(invalid("heart beats can not be updated"));
    }
    if old.flow_control != new.flow_control {
        return Err(invalid("flow control can not be updated"));
    }
    Ok(())
}

fn info(js: &Arc<JsAccount>, stream: &str, name: &str) -> Result<ConsumerInfoResponse, JsError> {
    let (_, c) = consumer_of(js, stream, name)?;
    Ok(ConsumerInfoResponse(Some(c.info_full())))
}

fn delete(
    js: &Arc<JsAccount>,
    stream: &str,
    name: &str,
) -> Result<ConsumerDeleteResponse, JsError> {
    let (s, c) = consumer_of(js, stream, name)?;
    s.remove_consumer(name);
    c.delete();
    Ok(ConsumerDeleteResponse::SUCCESS)
}

fn names(js: &Arc<JsAccount>, stream: &str, body: &[u8]) -> Result<ConsumerNamesResponse, JsError> {
    let req: ApiPagedRequest = request_strict(body, PAGED_FIELDS)?;
    let s = stream_of(js, stream)?;
    let all = s.consumers();
    let offset = req.offset.max(0) as usize;
    Ok(ConsumerNamesResponse {
        paged: ApiPaged {
            total: all.len() as i64,
            offset: offset as i64,
            limit: API_NAMES_LIMIT,
        },
        consumers: all
            .iter()
            .skip(offset)
            .take(API_NAMES_LIMIT as usize)
            .map(|c| c.name.clone())
            .collect(),
    })
}

fn list(js: &Arc<JsAccount>, stream: &str, body: &[u8]) -> Result<ConsumerListResponse, JsError> {
    let req: ApiPagedRequest = request_strict(body, PAGED_FIELDS)?;
    let s = stream_of(js, stream)?;
    let all = s.consumers();
    let offset = req.offset.max(0) as usize;
    Ok(ConsumerListResponse {
        paged: ApiPaged {
            total: all.len() as i64,
            offset: offset as i64,
            limit: API_LIST_LIMIT,
        },
        consumers: all
            .iter()
            .skip(offset)
            .take(API_LIST_LIMIT as usize)
            .map(|c| c.info())
            .collect(),
        ..ConsumerListResponse::default()
    })
}

fn pause(
    js: &Arc<JsAccount>,
    stream: &str,
    name: &str,
    body: &[u8],
) -> Result<ConsumerPauseResponse, JsError> {
    let req: ConsumerPauseRequest = request_strict(body, &["pause_until"])?;
    let (_, c) = consumer_of(js, stream, name)?;
    let mut cfg = c.config();
    let now = Utc::now();
    let before = cfg.pause_until;
    cfg.pause_until = req.pause_until.filter(|t| *t > now);
    c.set_config(cfg.clone());
    let until = cfg.pause_until;
    // Announced when it changes, as nats-server's config update does.
    if until != before {
        c.advise_pause(until);
    }
    Ok(ConsumerPauseResponse {
        paused: until.is_some(),
        pause_until: until.unwrap_or_else(zero_time),
        pause_remaining: until
            .map(|t| (t - now).num_nanoseconds().unwrap_or(0))
            .unwrap_or(0),
    })
}

/// Reads the durables of a recovered file stream from `<stream dir>/obs`.
pub fn recover(js: &Arc<JsAccount>, stream: &Arc<Stream>) {
    let Some(dir) = &stream.dir else { return };
    let Ok(entries) = std::fs::read_dir(dir.join("obs")) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        match state::read(&rnats_store::RealIo, &path) {
            Ok(loaded) => {
                let name = entry.file_name().to_string_lossy().into_owned();
                if loaded.damaged.is_some() {
                    js.count_consumer_state_damage(&stream.name);
                }
                if let Err(e) = js.add_consumer(
                    stream,
                    name.clone(),
                    loaded.meta.config,
                    loaded.meta.created,
                    loaded.state,
                ) {
                    tracing::error!(
                        "Could not restore consumer '{} > {name}': {}",
                        stream.name,
                        e.description
                    );
                }
            }
            Err(e) => tracing::warn!("Skipping consumer in {}: {e}", path.display()),
        }
    }
}
