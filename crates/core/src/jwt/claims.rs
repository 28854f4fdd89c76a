//! The NATS JWT v2 claims rnats reads: operator, account and user, with the
//! field names of nats-io/jwt. Unknown fields are ignored so newer issuers
//! keep working; absent limits mean "unlimited" (-1), as in nats-server.

use std::collections::HashMap;

use serde::{Deserialize, Deserializer, Serialize};

/// The fields every claim has, around its type-specific `nats` section.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Claims<N> {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub jti: String,
    #[serde(default)]
    pub iat: i64,
    #[serde(default)]
    pub iss: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(default)]
    pub sub: String,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub exp: i64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub nbf: i64,
    #[serde(default)]
    pub nats: N,
}

fn is_zero(v: &i64) -> bool {
    *v == 0
}

impl<N> Claims<N> {
    /// Whether the claim is outside its validity window at `now` (unix seconds).
    pub fn expired_at(&self, now: i64) -> bool {
        (self.exp > 0 && now >= self.exp) || (self.nbf > 0 && now < self.nbf)
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct OperatorNats {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub signing_keys: Vec<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub system_account: String,
    #[serde(default, rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub version: u32,
}

/// A subject list: allow and deny.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Permission {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allow: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deny: Vec<String>,
}

impl Permission {
    pub fn is_empty(&self) -> bool {
        self.allow.is_empty() && self.deny.is_empty()
    }
}

/// Responses allowed to requests received (`max` messages within `ttl` ns).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResponsePermission {
    #[serde(default)]
    pub max: i64,
    #[serde(default)]
    pub ttl: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Permissions {
    #[serde(default, rename = "pub", skip_serializing_if = "Permission::is_empty")]
    pub publish: Permission,
    #[serde(default, rename = "sub", skip_serializing_if = "Permission::is_empty")]
    pub subscribe: Permission,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resp: Option<ResponsePermission>,
}

impl Permissions {
    pub fn is_empty(&self) -> bool {
        self.publish.is_empty() && self.subscribe.is_empty() && self.resp.is_none()
    }
}

fn unlimited() -> i64 {
    -1
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UserNats {
    #[serde(flatten)]
    pub permissions: Permissions,
    #[serde(default = "unlimited")]
    pub subs: i64,
    #[serde(default = "unlimited")]
    pub data: i64,
    #[serde(default = "unlimited")]
    pub payload: i64,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub bearer_token: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_connection_types: Vec<String>,
    /// Set when a signing key of this account issued the user.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub issuer_account: String,
    #[serde(default, rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub version: u32,
}

impl Default for UserNats {
    fn default() -> Self {
        UserNats {
            permissions: Permissions::default(),
            subs: -1,
            data: -1,
            payload: -1,
            bearer_token: false,
            allowed_connection_types: Vec::new(),
            issuer_account: String::new(),
            kind: "user".into(),
            version: 2,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AccountLimits {
    #[serde(default = "unlimited")]
    pub subs: i64,
    #[serde(default = "unlimited")]
    pub data: i64,
    #[serde(default = "unlimited")]
    pub payload: i64,
    #[serde(default = "unlimited")]
    pub imports: i64,
    #[serde(default = "unlimited")]
    pub exports: i64,
    #[serde(default = "unlimited")]
    pub conn: i64,
    #[serde(default = "unlimited")]
    pub leaf: i64,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub disallow_bearer: bool,
    /// JetStream: 0 (or absent) for both storages means disabled.
    #[serde(default)]
    pub mem_storage: i64,
    #[serde(default)]
    pub disk_storage: i64,
    #[serde(default)]
    pub streams: i64,
    #[serde(default)]
    pub consumer: i64,
}

impl Default for AccountLimits {
    fn default() -> Self {
        AccountLimits {
            subs: -1,
            data: -1,
            payload: -1,
            imports: -1,
            exports: -1,
            conn: -1,
            leaf: -1,
            disallow_bearer: false,
            mem_storage: 0,
            disk_storage: 0,
            streams: 0,
            consumer: 0,
        }
    }
}

impl AccountLimits {
    pub fn jetstream_enabled(&self) -> bool {
        self.mem_storage != 0 || self.disk_storage != 0
    }
}

/// An export in an account JWT.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct JwtExport {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    pub subject: String,
    /// `stream` or `service`.
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub token_req: bool,
    /// `Singleton` (default), `Stream` or `Chunked`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub response_type: String,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub response_threshold: i64,
}

/// An import in an account JWT.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct JwtImport {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    pub subject: String,
    pub account: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub to: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub local_subject: String,
    #[serde(rename = "type")]
    pub kind: String,
}

/// An account signing key: a plain key, or a scope whose template replaces
/// the permissions of the users it signs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SigningKey {
    pub key: String,
    pub scope: Option<Permissions>,
}

impl Serialize for SigningKey {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match &self.scope {
            None => s.serialize_str(&self.key),
            Some(p) => ScopeJson {
                kind: "user_scope".into(),
                key: self.key.clone(),
                template: p.clone(),
            }
            .serialize(s),
        }
    }
}

#[derive(Serialize, Deserialize)]
struct ScopeJson {
    kind: String,
    key: String,
    #[serde(default)]
    template: Permissions,
}

impl<'de> Deserialize<'de> for SigningKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Key(String),
            Scope(ScopeJson),
        }
        match Raw::deserialize(d)? {
            Raw::Key(key) => Ok(SigningKey { key, scope: None }),
            Raw::Scope(s) if s.kind == "user_scope" => Ok(SigningKey {
                key: s.key,
                scope: Some(s.template),
            }),
            Raw::Scope(s) => Err(serde::de::Error::custom(format!(
                "unknown signing key scope {:?}",
                s.kind
            ))),
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct AccountNats {
    #[serde(default)]
    pub limits: AccountLimits,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub signing_keys: Vec<SigningKey>,
    /// User public key (or `*`) -> revoke users issued at or before this time.
    #[serde(default, skip_serializing_if = "HashMap::is_empty")]
    pub revocations: HashMap<String, i64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exports: Vec<JwtExport>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub imports: Vec<JwtImport>,
    #[serde(default, skip_serializing_if = "Permissions::is_empty")]
    pub default_permissions: Permissions,
    #[serde(default, rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub version: u32,
}

impl AccountNats {
    /// Whether a user issued at `issued_at` has been revoked.
    pub fn revoked(&self, user: &str, issued_at: i64) -> bool {
        [user, "*"]
            .iter()
            .filter_map(|k| self.revocations.get(*k))
            .any(|&t| issued_at <= t)
    }

    pub fn signing_key(&self, key: &str) -> Option<&SigningKey> {
        self.signing_keys.iter().find(|k| k.key == key)
    }
}

pub type OperatorClaims = Claims<OperatorNats>;
pub type AccountClaims = Claims<AccountNats>;
pub type UserClaims = Claims<UserNats>;
