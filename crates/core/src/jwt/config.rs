//! Operator-mode settings from the config file: `operator` (a JWT, a file
//! holding one, or a list), `trusted_keys`, `resolver` (`MEMORY`, or a
//! `{type: full|cache, dir}` block) and `resolver_preload`.

use std::path::{Path, PathBuf};

use rnats_conf::{ConfError, Spanned};

use super::resolver::ResolverConfig;

/// Operator mode as configured.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OperatorConfig {
    /// Operator JWTs (already read from their files).
    pub operators: Vec<String>,
    /// Bare trusted operator keys (`trusted_keys`).
    pub trusted_keys: Vec<String>,
    pub resolver: ResolverConfig,
    /// Account public key -> account JWT.
    pub preload: Vec<(String, String)>,
}

impl OperatorConfig {
    pub fn enabled(&self) -> bool {
        !self.operators.is_empty() || !self.trusted_keys.is_empty()
    }
}

/// The first JWT in `text` (operator files may carry armor lines and comments).
fn first_jwt(text: &str) -> Option<String> {
    text.split(|c: char| c.is_whitespace() || c == '"')
        .find(|t| t.starts_with("eyJ") && t.matches('.').count() == 2)
        .map(str::to_string)
}

/// A JWT given inline or as a path relative to the config file.
fn jwt_or_file(v: &Spanned, base: Option<&Path>) -> Result<String, ConfError> {
    let s = v.as_str()?;
    if let Some(j) = first_jwt(s) {
        return Ok(j);
    }
    let mut path = PathBuf::from(s);
    if path.is_relative() {
        if let Some(b) = base {
            path = b.join(path);
        }
    }
    let text = std::fs::read_to_string(&path)
        .map_err(|e| v.invalid(format!("error parsing operator JWT: {e}")))?;
    first_jwt(&text).ok_or_else(|| v.invalid("error parsing operator JWT: no JWT found"))
}

pub fn parse_operator(
    v: &Spanned,
    base: Option<&Path>,
    cfg: &mut OperatorConfig,
) -> Result<(), ConfError> {
    match v.as_array() {
        Ok(list) => {
            for item in list {
                cfg.operators.push(jwt_or_file(item, base)?);
            }
        }
        Err(_) => cfg.operators.push(jwt_or_file(v, base)?),
    }
    for (tok, item) in cfg.operators.iter().zip(std::iter::repeat(v)) {
        super::Trust::from_operator_jwts(std::slice::from_ref(tok))
            .map_err(|e| item.invalid(format!("invalid operator JWT: {e}")))?;
    }
    Ok(())
}

pub fn parse_trusted_keys(v: &Spanned, cfg: &mut OperatorConfig) -> Result<(), ConfError> {
    let keys: Vec<String> = match v.as_array() {
        Ok(list) => list
            .iter()
            .map(|k| k.as_str().map(str::to_string))
            .collect::<Result<_, _>>()?,
        Err(_) => vec![v.as_str()?.to_string()],
    };
    for k in &keys {
        if !k.starts_with('O') || nkeys::KeyPair::from_public_key(k).is_err() {
            return Err(v.invalid(format!(
                "trusted Keys {k:?} are not valid public operator keys"
            )));
        }
    }
    cfg.trusted_keys.extend(keys);
    Ok(())
}

pub fn parse_resolver(
    v: &Spanned,
    base: Option<&Path>,
    cfg: &mut OperatorConfig,
) -> Result<(), ConfError> {
    if let Ok(s) = v.as_str() {
        // nats-server matches `MEM` or `MEMORY` anywhere in the value.
        if s.to_ascii_uppercase().contains("MEM") {
            cfg.resolver = ResolverConfig::Memory;
            return Ok(());
        }
        return Err(v.invalid(format!(
            "resolver {s:?} is not supported by rnats (use MEMORY or a {{type: full, dir: ...}} block)"
        )));
    }
    let m = v.as_map()?;
    let kind = m
        .get_ignore_case("type")
        .map(|t| t.as_str().map(str::to_ascii_lowercase))
        .transpose()?
        .unwrap_or_else(|| "full".into());
    if kind != "full" && kind != "cache" {
        return Err(v.invalid(format!("unsupported resolver type {kind:?}")));
    }
    let dir = m
        .get_ignore_case("dir")
        .map(|d| d.as_str().map(str::to_string))
        .transpose()?
        .unwrap_or_else(|| ".".into());
    let mut dir = PathBuf::from(dir);
    if dir.is_relative() {
        if let Some(b) = base {
            dir = b.join(dir);
        }
    }
    let allow_delete = m
        .get_ignore_case("allow_delete")
        .map(|b| b.as_bool())
        .transpose()?
        .unwrap_or(false);
    cfg.resolver = ResolverConfig::Dir { dir, allow_delete };
    Ok(())
}

pub fn parse_preload(v: &Spanned, cfg: &mut OperatorConfig) -> Result<(), ConfError> {
    for (key, entry) in v.as_map()?.iter() {
        let jwt = entry.value.as_str()?;
        cfg.preload.push((key.to_string(), jwt.trim().to_string()));
    }
    Ok(())
}
