//! The `accounts { ... }` block and `system_account`, in nats-server's
//! format: each account's users, exports, imports and JetStream limits.
//! Imports are checked against the exporting account once every account is
//! known, with nats-server's messages ("stream import not authorized").

use std::time::Duration;

use rnats_conf::{ConfError, Map, Pos, Spanned};

/// How a service export answers: one reply, or a stream of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ResponseType {
    #[default]
    Singleton,
    Stream,
    Chunked,
}

/// One `exports` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportConfig {
    pub subject: String,
    /// `Some` for a service export.
    pub service: Option<ServiceExport>,
    /// Accounts allowed to import it; empty = public.
    pub accounts: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceExport {
    pub response: ResponseType,
    /// How long a reply route stays open (`response_threshold`).
    pub threshold: Duration,
}

impl ExportConfig {
    pub fn is_service(&self) -> bool {
        self.service.is_some()
    }
}

/// One `imports` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportConfig {
    /// The exporting account.
    pub account: String,
    /// The subject in the exporting account.
    pub subject: String,
    pub service: bool,
    /// Local subject: a service import's `to` (default: `subject`), or a
    /// stream import's mapping (`to`) or prefix (`prefix` + "." + subject).
    pub to: Option<String>,
    pub prefix: Option<String>,
}

impl ImportConfig {
    /// The subject in the importing account.
    pub fn local_subject(&self) -> String {
        match (&self.prefix, &self.to) {
            (Some(p), _) => format!("{p}.{}", self.subject),
            (None, Some(to)) => to.clone(),
            (None, None) => self.subject.clone(),
        }
    }
}

/// JetStream enabled for an account, with its limits (-1 = unlimited).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountJetStream {
    pub max_memory: i64,
    pub max_file: i64,
    pub max_streams: i64,
    pub max_consumers: i64,
}

impl Default for AccountJetStream {
    fn default() -> Self {
        AccountJetStream {
            max_memory: -1,
            max_file: -1,
            max_streams: -1,
            max_consumers: -1,
        }
    }
}

/// One account as configured.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AccountConfig {
    pub name: String,
    /// The users bound to this account (with `account` set to it).
    pub users: Vec<crate::auth::User>,
    pub exports: Vec<ExportConfig>,
    pub imports: Vec<ImportConfig>,
    pub jetstream: Option<AccountJetStream>,
    pub mappings: Vec<super::mappings::Mapping>,
    pub limits: super::AccountLimits,
}

fn reserved(name: &str) -> bool {
    name == super::GLOBAL || name == super::DEFAULT_SYSTEM
}

/// Parses `accounts`: a list of names or a map of account blocks.
pub fn parse_accounts(v: &Spanned) -> Result<Vec<AccountConfig>, ConfError> {
    let mut out: Vec<AccountConfig> = Vec::new();
    if let Ok(list) = v.as_array() {
        for n in list {
            let name = n.as_str()?;
            if reserved(name) {
                return Err(n.invalid(format!("{name:?} is a Reserved Account")));
            }
            if out.iter().any(|a| a.name == name) {
                return Err(n.invalid(format!("Duplicate Account Entry: {name}")));
            }
            out.push(AccountConfig {
                name: name.to_string(),
                ..AccountConfig::default()
            });
        }
        return Ok(out);
    }
    let map = v.as_map()?;
    for (name, entry) in map.iter() {
        if entry.used_as_variable {
            continue;
        }
        let body = entry
            .value
            .as_map()
            .map_err(|_| entry.value.invalid("Expected map entries for accounts"))?;
        if reserved(name) {
            return Err(entry
                .value
                .invalid(format!("{name:?} is a Reserved Account")));
        }
        out.push(parse_account(name, body)?);
    }
    check_users_unique(&out, &v.pos)?;
    check_imports(&out, &v.pos)?;
    Ok(out)
}

fn parse_account(name: &str, body: &Map) -> Result<AccountConfig, ConfError> {
    let mut acc = AccountConfig {
        name: name.to_string(),
        ..AccountConfig::default()
    };
    let mut defaults = None;
    for (key, entry) in body.iter() {
        let v = &entry.value;
        match key.to_ascii_lowercase().as_str() {
            "users" => {
                for mut u in crate::auth::config::parse_users(v)? {
                    u.account = Some(name.to_string());
                    acc.users.push(u);
                }
            }
            "default_permissions" => defaults = Some(crate::auth::config::parse_permissions(v)?),
            "exports" => {
                let list = v
                    .as_array()
                    .map_err(|_| v.invalid("Exports should be an array"))?;
                for e in list {
                    acc.exports.push(parse_export(e)?);
                }
            }
            "imports" => {
                let list = v
                    .as_array()
                    .map_err(|_| v.invalid("Imports should be an array"))?;
                for i in list {
                    let imp = parse_import(i)?;
                    if imp.service
                        && acc.imports.iter().any(|o| {
                            o.service
                                && o.account == imp.account
                                && o.local_subject() == imp.local_subject()
                        })
                    {
                        return Err(i.invalid(format!(
                            "Duplicate service import subject {:?}, previously used in import for account {:?}, subject {:?}",
                            imp.local_subject(),
                            imp.account,
                            imp.subject
                        )));
                    }
                    acc.imports.push(imp);
                }
            }
            "jetstream" => acc.jetstream = parse_jetstream(v)?,
            "mappings" | "maps" => acc.mappings = super::mappings::parse(v)?,
            "limits" => acc.limits = parse_limits(v)?,
            "nkey" | "msg_trace" | "trace_dest" => {}
            _ if entry.used_as_variable => {}
            _ => return Err(v.invalid(format!("unknown field {key:?}"))),
        }
    }
    if let Some(d) = defaults {
        for u in acc.users.iter_mut().filter(|u| u.permissions.is_none()) {
            u.permissions = Some(d.clone());
        }
    }
    Ok(acc)
}

fn subject_of(v: &Spanned, what: &str) -> Result<String, ConfError> {
    let s = v
        .as_str()
        .map_err(|_| v.invalid(format!("Expected {what} name to be string")))?;
    if !rnats_subject::is_valid_subject(s.as_bytes()) {
        return Err(v.invalid(format!("invalid {what} subject {s:?}")));
    }
    Ok(s.to_string())
}

fn parse_export(v: &Spanned) -> Result<ExportConfig, ConfError> {
    let m = v
        .as_map()
        .map_err(|_| v.invalid("Export Items should be a map with type entry"))?;
    let stream = m.get_ignore_case("stream");
    let service = m.get_ignore_case("service");
    let (subject, is_service) = match (stream, service) {
        (Some(s), None) => (subject_of(s, "stream")?, false),
        (None, Some(s)) => (subject_of(s, "service")?, true),
        (Some(_), Some(s)) => {
            return Err(s.invalid("Detected service but already saw a stream"));
        }
        (None, None) => return Err(v.invalid("Export Items need a stream or a service")),
    };
    let mut accounts = Vec::new();
    if let Some(a) = m.get_ignore_case("accounts") {
        for n in a.as_array()? {
            accounts.push(n.as_str()?.to_string());
        }
    }
    let mut response = ResponseType::Singleton;
    if let Some(r) = m
        .get_ignore_case("response")
        .or_else(|| m.get_ignore_case("response_type"))
    {
        if !is_service {
            return Err(r.invalid("Detected response directive on non-service"));
        }
        response = match r.as_str()?.to_ascii_lowercase().as_str() {
            "single" | "singleton" => ResponseType::Singleton,
            "stream" => ResponseType::Stream,
            "chunk" | "chunked" => ResponseType::Chunked,
            other => return Err(r.invalid(format!("Unknown response type: {other:?}"))),
        };
    }
    let mut threshold = Duration::from_secs(120);
    if let Some(t) = m
        .get_ignore_case("response_threshold")
        .or_else(|| m.get_ignore_case("threshold"))
    {
        threshold = t.as_duration()?;
    }
    Ok(ExportConfig {
        subject,
        service: is_service.then_some(ServiceExport {
            response,
            threshold,
        }),
        accounts,
    })
}

fn parse_import(v: &Spanned) -> Result<ImportConfig, ConfError> {
    let m = v
        .as_map()
        .map_err(|_| v.invalid("Import Items should be a map with type entry"))?;
    let stream = m.get_ignore_case("stream");
    let service = m.get_ignore_case("service");
    let (src, is_service) = match (stream, service) {
        (Some(s), None) => (s, false),
        (None, Some(s)) => (s, true),
        (Some(_), Some(s)) => return Err(s.invalid("Detected service but already saw a stream")),
        (None, None) => return Err(v.invalid("Import Items need a stream or a service")),
    };
    let what = if is_service { "Service" } else { "Stream" };
    let am = src
        .as_map()
        .map_err(|_| src.invalid(format!("{what} entry should be an account map")))?;
    let account = am
        .get_ignore_case("account")
        .map(|a| a.as_str())
        .transpose()?;
    let subject = am
        .get_ignore_case("subject")
        .map(|a| a.as_str())
        .transpose()?;
    let (Some(account), Some(subject)) = (account, subject) else {
        return Err(src.invalid("Expect an account name and a subject"));
    };
    if !rnats_subject::is_valid_subject(subject.as_bytes()) {
        return Err(src.invalid(format!("invalid import subject {subject:?}")));
    }
    let to = m
        .get_ignore_case("to")
        .map(|t| subject_of(t, "to"))
        .transpose()?;
    let prefix = m
        .get_ignore_case("prefix")
        .map(|p| p.as_str().map(str::to_string))
        .transpose()?;
    if let (Some(p), Some(_)) = (m.get_ignore_case("prefix"), &to) {
        if !is_service {
            return Err(p.invalid("Stream import can not have a 'prefix' and a 'to' property"));
        }
    }
    Ok(ImportConfig {
        account: account.to_string(),
        subject: subject.to_string(),
        service: is_service,
        to,
        prefix: if is_service { None } else { prefix },
    })
}

fn parse_limits(v: &Spanned) -> Result<super::AccountLimits, ConfError> {
    let m = v
        .as_map()
        .map_err(|_| v.invalid("Expected account limits to be a map/struct"))?;
    let mut l = super::AccountLimits::default();
    for (key, entry) in m.iter() {
        let val = &entry.value;
        match key.to_ascii_lowercase().as_str() {
            "max_connections" | "max_conn" => l.max_connections = val.as_int()?,
            "max_subscriptions" | "max_subs" => l.max_subscriptions = val.as_int()?,
            "max_payload" | "max_pay" => l.max_payload = val.as_size()?,
            "max_leafnodes" | "max_leafs" => {}
            _ if entry.used_as_variable => {}
            _ => return Err(val.invalid(format!("Unknown field {key:?} parsing account limits"))),
        }
    }
    Ok(l)
}

fn parse_jetstream(v: &Spanned) -> Result<Option<AccountJetStream>, ConfError> {
    if let Ok(b) = v.as_bool() {
        return Ok(b.then(AccountJetStream::default));
    }
    if let Ok(s) = v.as_str() {
        return match s.to_ascii_lowercase().as_str() {
            "enabled" | "enable" | "true" => Ok(Some(AccountJetStream::default())),
            "disabled" | "disable" | "false" => Ok(None),
            _ => Err(v.invalid(format!(
                "Expected 'enabled' or 'disabled' for string value, got {s:?}"
            ))),
        };
    }
    let m = v.as_map()?;
    let mut js = AccountJetStream::default();
    for (key, entry) in m.iter() {
        let val = &entry.value;
        match key.to_ascii_lowercase().as_str() {
            "max_memory"
            | "max_mem"
            | "mem"
            | "memory"
            | "max_memory_store"
            | "mem_max_stream_bytes" => js.max_memory = val.as_size()?,
            "max_file" | "max_store" | "file" | "store" | "max_file_store" | "disk"
            | "max_disk" => js.max_file = val.as_size()?,
            "max_streams" | "streams" => js.max_streams = val.as_int()?,
            "max_consumers" | "consumers" => js.max_consumers = val.as_int()?,
            _ => {}
        }
    }
    Ok(Some(js))
}

fn check_users_unique(accounts: &[AccountConfig], pos: &Pos) -> Result<(), ConfError> {
    let mut seen = std::collections::HashSet::new();
    for a in accounts {
        for u in &a.users {
            if !seen.insert(u.name.as_str()) {
                return Err(ConfError::Invalid {
                    pos: pos.clone(),
                    msg: format!("Duplicate user {:?} detected", u.name),
                });
            }
        }
    }
    Ok(())
}

/// Every import names a defined account that exports the subject to it.
fn check_imports(accounts: &[AccountConfig], pos: &Pos) -> Result<(), ConfError> {
    let err = |msg: String| ConfError::Invalid {
        pos: pos.clone(),
        msg,
    };
    for acc in accounts {
        for imp in &acc.imports {
            let kind = if imp.service { "service" } else { "stream" };
            let Some(exporter) = accounts.iter().find(|a| a.name == imp.account) else {
                return Err(err(format!(
                    "{:?} account not defined for {kind} import",
                    imp.account
                )));
            };
            let allowed = exporter.exports.iter().any(|e| {
                e.is_service() == imp.service
                    && rnats_subject::is_subset(imp.subject.as_bytes(), e.subject.as_bytes())
                    && (e.accounts.is_empty() || e.accounts.contains(&acc.name))
            });
            if !allowed {
                return Err(err(format!(
                    "Error adding {kind} import {:?}: {kind} import not authorized",
                    imp.subject
                )));
            }
            let local = imp.local_subject();
            if rnats_subject::Transform::new(&imp_source(imp), &imp_dest(imp)).is_err() {
                return Err(err(format!(
                    "Error adding {kind} import {:?}: invalid mapping to {local:?}",
                    imp.subject
                )));
            }
        }
    }
    Ok(())
}

/// The subject pattern an import's forwarder matches on (the exporter's
/// side for streams, the importer's for services).
pub fn imp_source(imp: &ImportConfig) -> String {
    if imp.service {
        imp.local_subject()
    } else {
        imp.subject.clone()
    }
}

/// Where an import's forwarder maps matched subjects to.
pub fn imp_dest(imp: &ImportConfig) -> String {
    if imp.service {
        imp.subject.clone()
    } else {
        imp.local_subject()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accounts(text: &str) -> Result<Vec<AccountConfig>, ConfError> {
        let map = rnats_conf::parse_str(text).expect("parses");
        parse_accounts(map.get("accounts").expect("accounts"))
    }

    #[test]
    fn exports_imports_and_users() {
        let accs = accounts(
            r#"accounts {
                A { users = [{user: a, password: pa}]
                    exports = [{stream: "x.>"}, {service: "svc.*", response: stream, accounts: [B]}] }
                B { users = [{user: b, password: pb}]
                    imports = [{stream: {account: A, subject: "x.>"}, prefix: "fromA"},
                               {service: {account: A, subject: "svc.*"}, to: "a.svc.*"}]
                    jetstream: {max_mem: 1M, max_streams: 3} }
            }"#,
        )
        .expect("valid");
        assert_eq!(accs.len(), 2);
        let a = &accs[0];
        assert_eq!(a.users[0].name, "a");
        assert_eq!(a.users[0].account.as_deref(), Some("A"));
        assert_eq!(
            a.exports[1].service.as_ref().map(|s| s.response),
            Some(ResponseType::Stream)
        );
        let b = &accs[1];
        assert_eq!(b.imports[0].local_subject(), "fromA.x.>");
        assert_eq!(b.imports[1].local_subject(), "a.svc.*");
        let js = b.jetstream.as_ref().expect("js");
        assert_eq!(
            (js.max_memory, js.max_streams, js.max_file),
            (1_000_000, 3, -1)
        );
    }

    #[test]
    fn nats_server_errors() {
        let e = accounts(
            r#"accounts { A { imports = [{stream: {account: B, subject: "x.>"}}] }, B {} }"#,
        )
        .expect_err("unauthorized");
        assert!(
            e.to_string()
                .contains("Error adding stream import \"x.>\": stream import not authorized"),
            "{e}"
        );
        let e = accounts(r#"accounts { A { imports = [{stream: {account: C, subject: "x"}}] } }"#)
            .expect_err("undefined");
        assert!(
            e.to_string()
                .contains("\"C\" account not defined for stream import"),
            "{e}"
        );
        let e = accounts(r#"accounts { "$G" {} }"#).expect_err("reserved");
        assert!(e.to_string().contains("Reserved Account"), "{e}");
        let e = accounts(
            r#"accounts { A { exports = [{service: "s"}] }
                          B { imports = [{service: {account: A, subject: "s"}}] }
                          C { exports = [{service: "s", accounts: [A]}] }
                          D { imports = [{service: {account: C, subject: "s"}}] } }"#,
        )
        .expect_err("restricted");
        assert!(
            e.to_string().contains("service import not authorized"),
            "{e}"
        );
        let e = accounts(r#"accounts { A { users = [{user: u, password: p}] }, B { users = [{user: u, password: q}] } }"#)
            .expect_err("dup");
        assert!(e.to_string().contains("Duplicate user \"u\""), "{e}");
    }
}
