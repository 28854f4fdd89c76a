//! Accounts in operator mode: created on first use from their JWT (found by
//! the resolver and verified against the operator), named by public key,
//! with the exports, imports and JetStream limits the JWT carries.

use std::sync::Arc;
use std::time::Duration;

use super::config::{AccountJetStream, ExportConfig, ImportConfig, ResponseType, ServiceExport};
use super::Account;
use crate::jwt::claims::{AccountClaims, JwtExport, JwtImport};
use crate::server::ServerState;

/// Operator mode's trust and account source.
pub struct OperatorMode {
    pub trust: crate::jwt::Trust,
    pub resolver: crate::jwt::Resolver,
}

impl OperatorMode {
    pub fn from_options(opts: &crate::options::Options) -> std::io::Result<Option<OperatorMode>> {
        let cfg = &opts.operator;
        if !cfg.enabled() {
            return Ok(None);
        }
        let mut trust = crate::jwt::Trust::from_operator_jwts(&cfg.operators)
            .map_err(|e| std::io::Error::other(format!("operator JWT: {e}")))?;
        trust.keys.extend(cfg.trusted_keys.iter().cloned());
        let resolver = crate::jwt::Resolver::new(&cfg.resolver, &cfg.preload)?;
        Ok(Some(OperatorMode { trust, resolver }))
    }

    /// The system account's public key: configured, else the operator's.
    pub fn system_account(&self, opts: &crate::options::Options) -> Option<String> {
        opts.system_account
            .clone()
            .or_else(|| self.trust.system_account.clone())
    }
}

fn export_of(e: &JwtExport) -> ExportConfig {
    let service = (e.kind == "service").then(|| ServiceExport {
        response: match e.response_type.to_ascii_lowercase().as_str() {
            "stream" => ResponseType::Stream,
            "chunked" => ResponseType::Chunked,
            _ => ResponseType::Singleton,
        },
        threshold: if e.response_threshold > 0 {
            Duration::from_nanos(e.response_threshold as u64)
        } else {
            Duration::from_secs(120)
        },
    });
    ExportConfig {
        subject: e.subject.clone(),
        service,
        accounts: Vec::new(),
    }
}

/// A JWT import in the terms of the config file's imports.
fn import_of(i: &JwtImport) -> ImportConfig {
    if i.kind == "service" {
        let (local, remote) = if !i.local_subject.is_empty() {
            (i.local_subject.clone(), i.subject.clone())
        } else if !i.to.is_empty() {
            (i.subject.clone(), i.to.clone())
        } else {
            (i.subject.clone(), i.subject.clone())
        };
        ImportConfig {
            account: i.account.clone(),
            subject: remote,
            service: true,
            to: Some(local),
            prefix: None,
        }
    } else {
        ImportConfig {
            account: i.account.clone(),
            subject: i.subject.clone(),
            service: false,
            to: (!i.local_subject.is_empty()).then(|| i.local_subject.clone()),
            prefix: (i.local_subject.is_empty() && !i.to.is_empty())
                .then(|| i.to.trim_end_matches('.').to_string()),
        }
    }
}

fn jetstream_of(claims: &AccountClaims) -> Option<AccountJetStream> {
    let l = &claims.nats.limits;
    l.jetstream_enabled().then_some(AccountJetStream {
        max_memory: l.mem_storage,
        max_file: l.disk_storage,
        max_streams: if l.streams == 0 { -1 } else { l.streams },
        max_consumers: if l.consumer == 0 { -1 } else { l.consumer },
    })
}

/// The account for verified `claims`, registering it (and installing its
/// imports) the first time it is seen.
pub fn bind(state: &Arc<ServerState>, claims: &AccountClaims) -> Arc<Account> {
    if let Some(a) = state.accounts.get(&claims.sub) {
        return a;
    }
    let mut acc = Account::new(claims.sub.clone());
    acc.exports = claims.nats.exports.iter().map(export_of).collect();
    acc.jetstream = jetstream_of(claims);
    let l = &claims.nats.limits;
    acc.limits = super::AccountLimits {
        max_connections: l.conn,
        max_subscriptions: l.subs,
        max_payload: l.payload,
    };
    acc.imports = claims.nats.imports.iter().map(import_of).collect();
    let (acc, fresh) = state.accounts.insert_if_absent(Arc::new(acc));
    if fresh {
        let imports: Vec<ImportConfig> = claims
            .nats
            .imports
            .iter()
            .map(import_of)
            .filter(|imp| authorized(state, imp, &claims.sub))
            .collect();
        super::imports::install(state, &acc, &imports);
        // `$SYS` services for the account; JetStream, if its JWT enables it.
        state.raise(|h| h.account_added(state, &acc));
    }
    acc
}

/// Loads the exporter of an import (registering it) and checks it exports
/// the subject; unauthorized imports are logged and skipped, as nats-server does.
fn authorized(state: &Arc<ServerState>, imp: &ImportConfig, importer: &str) -> bool {
    let exporter = match state.accounts.get(&imp.account) {
        Some(a) => a,
        None => {
            let Some(op) = state.operator.as_ref() else {
                return false;
            };
            let claims = op
                .resolver
                .fetch(&imp.account)
                .and_then(|j| op.trust.verify_account(&j).ok());
            match claims {
                Some(c) => bind(state, &c),
                None => {
                    tracing::error!(
                        "Can't locate account [{}] for import of [{}]",
                        imp.account,
                        imp.subject
                    );
                    return false;
                }
            }
        }
    };
    let ok = exporter.exports_to(&imp.subject, imp.service, importer);
    if !ok {
        tracing::warn!(
            "import of {:?} from {} into {importer} is not authorized by an export",
            imp.subject,
            imp.account
        );
    }
    ok
}
