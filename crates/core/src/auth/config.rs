//! Reading auth from a config file: the `authorization {}` block, users
//! lists (also callable for users found elsewhere, e.g. in accounts) and
//! permission blocks, with nats-server's key names and error texts.

use std::sync::Arc;
use std::time::Duration;

use rnats_conf::{ConfError, Map, Spanned, Value};

use super::permissions::{split_subject_queue, Permissions, ResponsePermission, SubjectPermission};
use super::{nkey, Credential, User};
use crate::options::Options;

/// `authorization { user, password, token, timeout, users, default_permissions }`.
/// Options nats-server has but rnats does not act on are returned as
/// `file:line:col: ...` notes.
pub fn apply_authorization(block: &Spanned, opts: &mut Options) -> Result<Vec<String>, ConfError> {
    let mut notes = Vec::new();
    let (mut user, mut pass, mut token) = (None, None, None);
    let mut users: Option<Vec<User>> = None;
    let mut defaults: Option<Permissions> = None;
    for (key, entry) in block.as_map()?.iter() {
        let v = &entry.value;
        match key.to_ascii_lowercase().as_str() {
            "user" | "username" => user = Some(v.as_str()?.to_string()),
            "pass" | "password" => pass = Some(v.as_str()?.to_string()),
            "token" => token = Some(v.as_str()?.to_string()),
            "timeout" => {
                opts.auth_timeout = crate::config::seconds(v).map_err(|e| {
                    v.invalid(format!("error parsing authorization config, 'timeout' {e}"))
                })?;
                opts.auth_timeout_set = true;
            }
            "users" => users = Some(parse_users(v)?),
            "default_permission" | "default_permissions" | "permissions" => {
                defaults = Some(parse_permissions(v)?)
            }
            "auth_callout" | "auth_hook" | "proxy_required" => notes.push(format!(
                "{}: authorization option {key:?} is not implemented yet in rnats and is ignored",
                entry.key_pos
            )),
            _ if entry.used_as_variable => {}
            _ => return Err(v.invalid(format!("unknown field {key:?}"))),
        }
    }
    if (user.is_some() || pass.is_some()) && token.is_some() {
        return Err(block.invalid("Cannot have a user/pass and token"));
    }
    if let Some(mut users) = users {
        if user.is_some() {
            return Err(block.invalid("Can not have a single user/pass and a users array"));
        }
        if token.is_some() {
            return Err(block.invalid("Can not have a token and a users array"));
        }
        if let Some(d) = &defaults {
            for u in users.iter_mut().filter(|u| u.permissions.is_none()) {
                u.permissions = Some(d.clone());
            }
        }
        for u in users {
            if opts.auth.users.iter().any(|o| o.name == u.name) {
                return Err(block.invalid(format!("Duplicate user {:?} detected", u.name)));
            }
            opts.auth.users.push(Arc::new(u));
        }
    }
    opts.auth.username = user;
    opts.auth.password = pass;
    opts.auth.token = token;
    Ok(notes)
}

/// A users list: `[ {user, password, permissions}, {nkey, permissions} ]`.
pub fn parse_users(list: &Spanned) -> Result<Vec<User>, ConfError> {
    let Value::Array(items) = &list.value else {
        return Err(list.invalid(format!(
            "Expected users field to be an array, got {}",
            list.value.kind()
        )));
    };
    items.iter().map(parse_user).collect()
}

fn parse_user(item: &Spanned) -> Result<User, ConfError> {
    let Value::Map(m) = &item.value else {
        return Err(item.invalid(format!(
            "Expected user entry to be a map/struct, got {}",
            item.value.kind()
        )));
    };
    let (mut name, mut password, mut nkey_key) = (None, None, None);
    let mut permissions = None;
    for (key, entry) in m.iter() {
        let v = &entry.value;
        match key.to_ascii_lowercase().as_str() {
            "nkey" => nkey_key = Some(v.as_str()?.to_string()),
            "user" | "username" => name = Some(v.as_str()?.to_string()),
            "pass" | "password" => password = Some(v.as_str()?.to_string()),
            "permission" | "permissions" | "authorization" => {
                permissions = Some(parse_permissions(v)?)
            }
            // Accepted for compatibility; every user may use every
            // connection type in rnats, and proxies are not supported.
            "allowed_connection_types" | "connection_types" | "clients" | "proxy_required" => {}
            _ if entry.used_as_variable => {}
            _ => return Err(v.invalid(format!("unknown field {key:?}"))),
        }
    }
    let (name, credential) = match (nkey_key, name) {
        (Some(k), _) => {
            if !nkey::is_valid_public_user_key(&k) {
                return Err(item.invalid("Not a valid public nkey for a user"));
            }
            if m.get_ignore_case("user").is_some()
                || m.get_ignore_case("username").is_some()
                || password.is_some()
            {
                return Err(item.invalid("Nkey users do not take usernames or passwords"));
            }
            (k, Credential::Nkey)
        }
        (None, Some(u)) if !u.is_empty() => (u, Credential::Password(password.unwrap_or_default())),
        _ => return Err(item.invalid("User entry requires a user")),
    };
    Ok(User {
        name,
        credential,
        permissions,
        account: None,
    })
}

/// A `permissions { publish, subscribe, allow_responses }` block.
pub fn parse_permissions(v: &Spanned) -> Result<Permissions, ConfError> {
    let Value::Map(m) = &v.value else {
        return Err(v.invalid(format!(
            "Expected permissions to be a map/struct, got {}",
            v.value.kind()
        )));
    };
    let mut p = Permissions::default();
    for (key, entry) in m.iter() {
        let v = &entry.value;
        match key.to_ascii_lowercase().as_str() {
            "pub" | "publish" | "import" => p.publish = parse_subject_permission(v, false)?,
            "sub" | "subscribe" | "export" => p.subscribe = parse_subject_permission(v, true)?,
            "publish_allow_responses" | "allow_responses" => {
                p.response = match &v.value {
                    Value::Bool(true) => Some(ResponsePermission::default()),
                    Value::Bool(false) => None,
                    Value::Map(m) => Some(parse_responses(m)?),
                    _ => {
                        return Err(v.invalid(
                            "error parsing response permissions, expected a boolean or a map",
                        ))
                    }
                }
            }
            _ if entry.used_as_variable => {}
            _ => return Err(v.invalid(format!("Unknown field {key:?} parsing permissions"))),
        }
    }
    if p.response.is_some() {
        // Responses are all such a user may publish unless it has an
        // explicit allow list (nats-server turns off the blanket allow).
        let publish = p.publish.get_or_insert_with(SubjectPermission::default);
        publish.allow.get_or_insert_with(Vec::new);
    }
    Ok(p)
}

fn parse_responses(m: &Map) -> Result<ResponsePermission, ConfError> {
    let mut r = ResponsePermission::default();
    for (key, entry) in m.iter() {
        let v = &entry.value;
        match key.to_ascii_lowercase().as_str() {
            "max" | "max_msgs" | "max_messages" | "max_responses" => {
                // Zero keeps the default; negative means unlimited.
                match v.as_int()? {
                    0 => {}
                    n => r.max_msgs = n,
                }
            }
            "expires" | "expiration" | "ttl" => {
                let Value::String(s) = &v.value else {
                    return Err(v.invalid("error parsing expires, not a duration string"));
                };
                let negative = s.trim_start().starts_with('-');
                let d = rnats_conf::parse_duration(s.trim_start().trim_start_matches('-'))
                    .map_err(|e| v.invalid(format!("error parsing expires: {e}")))?;
                if negative {
                    r.expires = None;
                } else if d != Duration::ZERO {
                    r.expires = Some(d);
                }
            }
            _ if entry.used_as_variable => {}
            _ => return Err(v.invalid(format!("Unknown field {key:?} parsing permissions"))),
        }
    }
    Ok(r)
}

/// `"a.>"`, `["a", "b"]` (allow only) or `{ allow: ..., deny: ... }`.
fn parse_subject_permission(
    v: &Spanned,
    queues: bool,
) -> Result<Option<SubjectPermission>, ConfError> {
    let Value::Map(m) = &v.value else {
        return Ok(Some(SubjectPermission {
            allow: Some(subjects(v, queues)?),
            deny: Vec::new(),
        }));
    };
    if m.is_empty() {
        return Ok(None);
    }
    let mut p = SubjectPermission::default();
    for (key, entry) in m.iter() {
        let v = &entry.value;
        match key.to_ascii_lowercase().as_str() {
            "allow" => p.allow = Some(subjects(v, queues)?),
            "deny" => p.deny = subjects(v, queues)?,
            _ if entry.used_as_variable => {}
            _ => {
                return Err(v.invalid(format!(
                "Unknown field name {key:?} parsing subject permissions, only 'allow' or 'deny' are permitted"
            )))
            }
        }
    }
    Ok(Some(p))
}

/// A subject or an array of subjects, checked (with optional queue groups).
fn subjects(v: &Spanned, queues: bool) -> Result<Vec<String>, ConfError> {
    let list: Vec<String> = match &v.value {
        Value::String(s) => vec![s.clone()],
        Value::Array(items) => items
            .iter()
            .map(|i| {
                i.as_str()
                    .map(str::to_string)
                    .map_err(|_| i.invalid("Subject in permissions array cannot be cast to string"))
            })
            .collect::<Result<_, _>>()?,
        other => {
            return Err(v.invalid(format!(
                "Expected subject permissions to be a subject, or array of subjects, got {}",
                other.kind()
            )))
        }
    };
    for s in &list {
        if rnats_subject::is_valid_subject(s.as_bytes()) {
            continue;
        }
        let fields: Vec<&str> = s.split_whitespace().collect();
        if !queues || fields.len() != 2 {
            return Err(v.invalid(format!("subject {s:?} is not a valid subject")));
        }
        if split_subject_queue(s).is_none() {
            return Err(if rnats_subject::is_valid_subject(fields[0].as_bytes()) {
                v.invalid(format!("queue {:?} is not a valid queue", fields[1]))
            } else {
                v.invalid(format!("subject {:?} is not a valid subject", fields[0]))
            });
        }
    }
    Ok(list)
}

/// Checks made once the whole file is read: `no_auth_user` must name a
/// configured user or nkey.
pub fn validate(opts: &Options, no_auth_user: Option<&Spanned>) -> Result<(), ConfError> {
    let (Some(name), Some(at)) = (&opts.no_auth_user, no_auth_user) else {
        return Ok(());
    };
    if opts.auth.users.is_empty() {
        return Err(at.invalid(format!(
            "no_auth_user: {name:?} present, but users/nkeys are not defined"
        )));
    }
    if !opts.auth.users.iter().any(|u| &u.name == name) {
        return Err(at.invalid(format!(
            "no_auth_user: {name:?} not present as user or nkey in authorization block or account configuration"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth(text: &str) -> Result<Options, ConfError> {
        let map = rnats_conf::parse_str(text)?;
        let mut o = Options::default();
        crate::config::apply(&map, &mut o)?;
        Ok(o)
    }

    fn err(text: &str) -> String {
        auth(text).unwrap_err().to_string()
    }

    #[test]
    fn users_with_permissions_and_defaults() {
        let kp = nkeys::KeyPair::new_user();
        let o = auth(&format!(
            r#"authorization {{
                default_permissions {{ publish: "d.>" }}
                users = [
                  {{user: a, password: b, permissions: {{ publish: {{ allow: ["a.>"], deny: "a.no" }}, subscribe: ["s.>", "q.> grp"] }} }}
                  {{user: c, password: "$2a$11$abcdefghijklmnopqrstuu" }}
                  {{nkey: {} }}
                ]
            }}
            no_auth_user: c"#,
            kp.public_key()
        ))
        .unwrap();
        let users = &o.auth.users;
        assert_eq!(users.len(), 3);
        let a = users[0].permissions.as_ref().unwrap();
        let publish = a.publish.as_ref().unwrap();
        assert_eq!(publish.allow, Some(vec!["a.>".to_string()]));
        assert_eq!(publish.deny, vec!["a.no".to_string()]);
        assert_eq!(
            a.subscribe.as_ref().unwrap().allow.as_ref().unwrap()[1],
            "q.> grp"
        );
        // Users without permissions get the defaults.
        let d = users[1].permissions.as_ref().unwrap();
        assert_eq!(d.publish.as_ref().unwrap().allow, Some(vec!["d.>".into()]));
        assert!(users[2].is_nkey());
        assert_eq!(users[2].account, None);
        assert!(o.auth.has_nkeys() && o.auth.required());
    }

    #[test]
    fn allow_responses_forms() {
        let o = auth("authorization { users = [ {user: a, password: b, permissions: { allow_responses: true } } ] }").unwrap();
        let p = o.auth.users[0].permissions.clone().unwrap();
        assert_eq!(p.response, Some(ResponsePermission::default()));
        // Responses alone: nothing else may be published.
        assert_eq!(p.publish.unwrap().allow, Some(vec![]));
        let o = auth(r#"authorization { users = [ {user: a, password: b, permissions: { publish: ">", allow_responses: { max: 5, expires: "1m" } } } ] }"#).unwrap();
        let p = o.auth.users[0].permissions.clone().unwrap();
        assert_eq!(
            p.response,
            Some(ResponsePermission {
                max_msgs: 5,
                expires: Some(Duration::from_secs(60))
            })
        );
        assert_eq!(p.publish.unwrap().allow, Some(vec![">".into()]));
    }

    #[test]
    fn bad_sections_fail_like_nats_server() {
        let e = err("authorization { users = [ {user: a, password: b, permissions: { pub: a, bogus: 1 } } ] }");
        assert!(
            e.contains("Unknown field \"bogus\" parsing permissions"),
            "{e}"
        );
        let e = err("authorization { users = [ {nkey: UABC} ] }");
        assert!(e.contains("Not a valid public nkey for a user"), "{e}");
        let e = err("authorization { users = [ {user: a, permissions: { publish: { allow: a, nope: 1 } } } ] }");
        assert!(e.contains("Unknown field name \"nope\" parsing subject permissions, only 'allow' or 'deny' are permitted"), "{e}");
        let e =
            err(r#"authorization { users = [ {user: a, permissions: { publish: "a..b" } } ] }"#);
        assert!(e.contains("subject \"a..b\" is not a valid subject"), "{e}");
        let e =
            err(r#"authorization { users = [ {user: a, permissions: { subscribe: "a b c" } } ] }"#);
        assert!(
            e.contains("subject \"a b c\" is not a valid subject"),
            "{e}"
        );
        let e = err("authorization { user: a, password: b, users = [ {user: c, password: d} ] }");
        assert!(
            e.contains("Can not have a single user/pass and a users array"),
            "{e}"
        );
        let e = err("authorization { token: t, user: a }");
        assert!(e.contains("Cannot have a user/pass and token"), "{e}");
        let e = err("authorization { users = [ {user: a, password: b, foo: 1} ] }");
        assert!(e.contains("unknown field \"foo\""), "{e}");
        let e = err("authorization { users = [ {password: b} ] }");
        assert!(e.contains("User entry requires a user"), "{e}");
        let e = err("authorization { users = [ {user: a}, {user: a} ] }");
        assert!(e.contains("Duplicate user \"a\" detected"), "{e}");
        let e = err("no_auth_user: x\nauthorization { users = [ {user: a, password: b} ] }");
        assert!(e.contains("no_auth_user: \"x\" not present as user or nkey in authorization block or account configuration"), "{e}");
        let e = err("no_auth_user: x");
        assert!(
            e.contains("no_auth_user: \"x\" present, but users/nkeys are not defined"),
            "{e}"
        );
        // A publish deny entry may not carry a queue.
        let e = err(
            r#"authorization { users = [ {user: a, permissions: { publish: { deny: "a q" } } } ] }"#,
        );
        assert!(e.contains("is not a valid subject"), "{e}");
    }
}
