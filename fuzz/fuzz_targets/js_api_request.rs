//! Fuzzes the `$JS.API` request bodies: arbitrary bytes, decoded as the API
//! handlers decode them (`api::parse_json` / `api::request`, then the
//! create-time defaulting and validation of stream and consumer configs),
//! must never panic. What decodes is serialized again, as a response would
//! echo it. The first byte picks the request type; the rest is the body.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde::{de::DeserializeOwned, Serialize};

// The code under test (repoint here if the JetStream modules move).
use rnats_jetstream::{
    api::{parse_json, request},
    types::*,
};

/// A body decoded with `api::request` (empty or `null` is the default).
fn req<T: DeserializeOwned + Serialize + Default>(body: &[u8]) {
    if let Ok(v) = request::<T>(body) {
        let _ = serde_json::to_vec(&v);
    }
}

/// `$JS.API.STREAM.CREATE` / `UPDATE`: the config, defaulted and validated.
fn stream_config(body: &[u8]) -> Option<StreamConfig> {
    let raw = parse_json(body).ok()?;
    let cfg: StreamConfig = serde_json::from_value(raw).ok()?;
    let _ = serde_json::to_vec(&cfg);
    let cfg = cfg.with_defaults();
    let _ = cfg.validate();
    let _ = serde_json::to_vec(&cfg);
    Some(cfg)
}

/// `$JS.API.CONSUMER.CREATE`: the request, its config defaulted against a
/// stream's (a fixed one, or one decoded from the same input).
fn consumer_create(body: &[u8], stream: &StreamConfig) {
    let Ok(raw) = parse_json(body) else { return };
    let Ok(req) = serde_json::from_value::<ConsumerCreateRequest>(raw) else {
        return;
    };
    let _ = serde_json::to_vec(&req);
    let cfg = req.config.with_defaults(stream);
    let _ = (cfg.is_durable(), cfg.is_pull());
    let _ = serde_json::to_vec(&cfg);
}

fuzz_target!(|data: &[u8]| {
    let Some((&sel, body)) = data.split_first() else {
        return;
    };
    match sel % 14 {
        0 => {
            stream_config(body);
        }
        1 => consumer_create(body, &StreamConfig::new("S", &["s.>"]).with_defaults()),
        2 => {
            // A stream config and a consumer request, split at the first NUL.
            let cut = body.iter().position(|&b| b == 0).unwrap_or(body.len());
            if let Some(s) = stream_config(&body[..cut]) {
                consumer_create(body.get(cut + 1..).unwrap_or_default(), &s);
            }
        }
        3 => req::<StreamInfoRequest>(body),
        4 => req::<StreamPurgeRequest>(body),
        5 => req::<StreamNamesRequest>(body),
        6 => req::<StreamListRequest>(body),
        7 => {
            // MSG.GET goes through `request`; DIRECT.GET decodes the body as is.
            req::<MsgGetRequest>(body);
            if let Ok(r) = serde_json::from_slice::<DirectGetRequest>(body) {
                let _ = serde_json::to_vec(&r);
            }
        }
        8 => req::<MsgDeleteRequest>(body),
        9 => req::<ApiPagedRequest>(body),
        10 => req::<ConsumerPauseRequest>(body),
        11 => req::<ConsumerUnpinRequest>(body),
        12 => req::<NextRequest>(body),
        _ => req::<ConsumerConfig>(body),
    }
});
