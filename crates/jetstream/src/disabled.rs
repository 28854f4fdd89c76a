//! `$JS.API` in an account without JetStream on a server with JetStream:
//! nats-server answers each known request with its usual response type
//! carrying `503 JetStream not enabled for account` (10039). Pulls
//! (`CONSUMER.MSG.NEXT`) and direct gets find no responders, and unknown
//! requests get no answer, as there.

use std::sync::{Arc, Weak};

use super::api::{answer, Answer};
use super::errors::{JsError, JsErrorKind};
use super::types::*;
use rnats_core::account::Account;
use rnats_core::router::Message;
use rnats_core::server::ServerState;
use rnats_core::subscription::InternalHandler;

/// Subscribes the "not enabled" answers in `account`.
pub fn subscribe(
    server: &Arc<ServerState>,
    account: &Arc<Account>,
) -> Result<(), rnats_subject::SublistError> {
    let handler = Arc::new(NotEnabled {
        server: Arc::downgrade(server),
        account: Arc::downgrade(account),
    });
    // `$JS.API.*` and `ACCOUNT.>` swallow unknown requests (they time out
    // with nats-server rather than finding no responders).
    server.subscribe_internal_in(account, "$JS.API.*", None, handler.clone())?;
    server.subscribe_internal_in(account, "$JS.API.ACCOUNT.>", None, handler.clone())?;
    server.subscribe_internal_in(account, "$JS.API.STREAM.>", None, handler.clone())?;
    for verb in [
        "CREATE", "DURABLE", "INFO", "DELETE", "NAMES", "LIST", "PAUSE", "UNPIN",
    ] {
        let subject = format!("$JS.API.CONSUMER.{verb}.>");
        server.subscribe_internal_in(account, &subject, None, handler.clone())?;
    }
    Ok(())
}

/// Answers in one account (weak: the account's sublist holds this handler).
struct NotEnabled {
    server: Weak<ServerState>,
    account: Weak<Account>,
}

impl InternalHandler for NotEnabled {
    fn deliver(&self, msg: &Message<'_>) {
        let (Some(server), Some(account), Some(reply)) =
            (self.server.upgrade(), self.account.upgrade(), msg.reply)
        else {
            return;
        };
        let subject = String::from_utf8_lossy(msg.subject);
        let Some(op) = subject.strip_prefix("$JS.API.") else {
            return;
        };
        if let Some((body, _)) = not_enabled(op) {
            server.publish_in(&account, reply, None, None, &body);
        }
    }
}

/// The answer nats-server sends for `op` (what follows `$JS.API.`).
pub fn not_enabled(op: &str) -> Answer {
    fn err<T: ApiResponseBody + serde::Serialize + Default>() -> Answer {
        answer::<T>(Err(JsError::new(JsErrorKind::NotEnabledForAccount)))
    }
    let t: Vec<&str> = op.split('.').collect();
    match t.as_slice() {
        ["INFO"] => err::<AccountInfoResponse>(),
        ["STREAM", "CREATE", _] => err::<StreamCreateResponse>(),
        ["STREAM", "UPDATE", _] => err::<StreamUpdateResponse>(),
        ["STREAM", "INFO", _] => err::<StreamInfoResponse>(),
        ["STREAM", "DELETE", _] => err::<StreamDeleteResponse>(),
        ["STREAM", "PURGE", _] => err::<StreamPurgeResponse>(),
        ["STREAM", "NAMES"] => err::<StreamNamesResponse>(),
        ["STREAM", "LIST"] => err::<StreamListResponse>(),
        ["STREAM", "MSG", "GET", _] => err::<MsgGetResponse>(),
        ["STREAM", "MSG", "DELETE", _] => err::<MsgDeleteResponse>(),
        ["STREAM", "SNAPSHOT", _] => err::<StreamSnapshotResponse>(),
        ["STREAM", "RESTORE", _] => err::<StreamRestoreResponse>(),
        ["CONSUMER", "CREATE", ..] | ["CONSUMER", "DURABLE", "CREATE", _, _] => {
            err::<ConsumerCreateResponse>()
        }
        ["CONSUMER", "INFO", _, _] => err::<ConsumerInfoResponse>(),
        ["CONSUMER", "DELETE", _, _] => err::<ConsumerDeleteResponse>(),
        ["CONSUMER", "NAMES", _] => err::<ConsumerNamesResponse>(),
        ["CONSUMER", "LIST", _] => err::<ConsumerListResponse>(),
        ["CONSUMER", "PAUSE", _, _] => err::<ConsumerPauseResponse>(),
        ["CONSUMER", "UNPIN", _, _] => err::<ConsumerUnpinResponse>(),
        _ => None,
    }
}
