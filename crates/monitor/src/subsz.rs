//! `/subsz` (and its old name `/subscriptionsz`): sublist statistics and,
//! with `subs=1`, the subscriptions themselves (`offset`, `limit`, `test=`
//! a publish subject to list only the subscriptions it would reach).

use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::response::Response;
use serde::Serialize;

use super::connz::SubDetail;
use super::{bad_request, go_f64, go_time, json_ok, Monitor, Query, Reject};
use rnats_core::account::Account;
use rnats_core::closed::SubSnapshot;
use rnats_core::server::ServerState;
use rnats_core::subscription::SubRef;

/// nats-server's `DefaultSubListSize`.
const DEFAULT_LIMIT: i64 = 1024;

#[derive(Serialize)]
pub struct SublistStats {
    pub num_subscriptions: u64,
    pub num_cache: u64,
    pub num_inserts: u64,
    pub num_removes: u64,
    pub num_matches: u64,
    #[serde(serialize_with = "go_f64")]
    pub cache_hit_rate: f64,
    pub max_fanout: u64,
    #[serde(serialize_with = "go_f64")]
    pub avg_fanout: f64,
}

impl SublistStats {
    /// Counts from the sublist. Its generation moves by one on every insert
    /// and removal, so with the live count it gives both totals. Matches go
    /// through per-connection caches rnats does not count: those stay 0.
    pub fn of(state: &ServerState) -> SublistStats {
        Self::of_accounts(&state.accounts.all())
    }

    /// The same, summed over some accounts.
    pub fn of_accounts(accounts: &[Arc<Account>]) -> SublistStats {
        let (count, generation) = accounts.iter().fold((0u64, 0u64), |(c, g), a| {
            (c + a.num_subscriptions() as u64, g + a.generation())
        });
        SublistStats {
            num_subscriptions: count,
            num_cache: 0,
            num_inserts: (generation + count) / 2,
            num_removes: generation.saturating_sub(count) / 2,
            num_matches: 0,
            cache_hit_rate: 0.0,
            max_fanout: 0,
            avg_fanout: 0.0,
        }
    }
}

#[derive(Serialize)]
pub struct Subsz {
    pub server_id: String,
    pub now: String,
    #[serde(flatten)]
    pub stats: SublistStats,
    pub total: usize,
    pub offset: usize,
    pub limit: usize,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub subscriptions_list: Vec<SubDetail>,
}

pub async fn handle(State(m): State<Arc<Monitor>>, RawQuery(q): RawQuery) -> Response {
    m.count("/subsz");
    let q = Query::parse(q.as_deref());
    let parsed = (|| -> Result<(bool, i64, i64), Reject> {
        Ok((q.bool("subs")?, q.int("offset")?, q.int("limit")?))
    })();
    let (subs, offset, limit) = match parsed {
        Ok(v) => v,
        Err(r) => return *r,
    };
    let test = q.get("test");
    if !test.is_empty() && !rnats_subject::is_valid_literal_subject(test.as_bytes()) {
        return bad_request(format!(
            "invalid test subject, must be valid publish subject: {test}"
        ));
    }
    let acc = q.get("acc");
    json_ok(&build(&m.state, subs, offset, limit, test, acc))
}

pub fn build(
    state: &ServerState,
    subs: bool,
    offset: i64,
    limit: i64,
    test: &str,
    acc: &str,
) -> Subsz {
    // One account when asked (an unknown one matches nothing), else all.
    let accounts: Vec<Arc<Account>> = if acc.is_empty() {
        state.accounts.all()
    } else {
        state.accounts.get(acc).into_iter().collect()
    };
    let offset = offset.max(0) as usize;
    let limit = if limit <= 0 { DEFAULT_LIMIT } else { limit } as usize;
    let mut sz = Subsz {
        server_id: state.server_id.clone(),
        now: go_time(&chrono::Utc::now()),
        stats: SublistStats::of_accounts(&accounts),
        total: 0,
        offset,
        limit,
        subscriptions_list: Vec::new(),
    };
    if !subs {
        return sz;
    }
    let mut all: Vec<SubRef> = Vec::new();
    for a in &accounts {
        // Only clone handles under the read lock; describe them after.
        a.for_each_sub(|subject, _, sub| {
            if test.is_empty() || rnats_subject::matches(subject, test.as_bytes()) {
                all.push(sub.clone());
            }
        });
    }
    let details: Vec<SubDetail> = all
        .iter()
        .map(|s| SubDetail::of(&SubSnapshot::of(s), true))
        .collect();
    let minoff = offset.min(details.len());
    let maxoff = minoff + limit.min(details.len() - minoff);
    sz.total = details.len();
    sz.subscriptions_list = details[minoff..maxoff].to_vec();
    sz
}
