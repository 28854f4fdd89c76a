//! Test support: validates JSON against nats-io's JetStream JSON Schemas
//! (`shared/reference/schemas`, beside the repository). Schemas reference each
//! other by `$id` under `https://nats.io/schemas/`; those are loaded from the
//! same directory tree, never from the network.

use std::path::PathBuf;
use std::sync::OnceLock;

use serde_json::Value;

const ID_PREFIX: &str = "https://nats.io/schemas/";

/// The schema root: `$RNATS_SCHEMA_DIR`, else `shared/reference/schemas`
/// beside the repository clone. `None` (with the reason) when absent.
pub fn schema_dir() -> Result<PathBuf, String> {
    if let Ok(dir) = std::env::var("RNATS_SCHEMA_DIR") {
        let p = PathBuf::from(&dir);
        return if p.is_dir() {
            Ok(p)
        } else {
            Err(format!("RNATS_SCHEMA_DIR={dir} is not a directory"))
        };
    }
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/reference/schemas");
    if p.is_dir() {
        Ok(p)
    } else {
        Err(format!(
            "no JSON Schemas: set RNATS_SCHEMA_DIR or provide {}",
            p.display()
        ))
    }
}

struct DiskRetriever(PathBuf);

impl jsonschema::Retrieve for DiskRetriever {
    fn retrieve(
        &self,
        uri: &jsonschema::Uri<String>,
    ) -> Result<Value, Box<dyn std::error::Error + Send + Sync>> {
        let s = uri.as_str();
        let rel = s
            .strip_prefix(ID_PREFIX)
            .ok_or_else(|| format!("refusing to fetch {s}: not under {ID_PREFIX}"))?;
        let rel = rel.split('#').next().unwrap_or(rel);
        let text = std::fs::read_to_string(self.0.join(rel))?;
        Ok(serde_json::from_str(&text)?)
    }
}

/// Validates `instance` against `jetstream/api/v1/<name>`; `Ok(false)` when
/// the schemas are not available (the reason is printed), `Err` with every
/// violation otherwise.
pub fn validate(name: &str, instance: &Value) -> Result<bool, String> {
    static DIR: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let dir = match DIR.get_or_init(schema_dir) {
        Ok(d) => d.clone(),
        Err(reason) => {
            eprintln!("skipping JSON Schema validation of {name}: {reason}");
            return Ok(false);
        }
    };
    let path = dir.join("jetstream/api/v1").join(name);
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let schema: Value =
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    let validator = jsonschema::options()
        .with_draft(jsonschema::Draft::Draft7)
        .with_retriever(DiskRetriever(dir))
        .should_validate_formats(true)
        .build(&schema)
        .map_err(|e| format!("compiling {name}: {e}"))?;
    let errors: Vec<String> = validator
        .iter_errors(instance)
        .map(|e| format!("{} at {}", e, e.instance_path))
        .collect();
    if errors.is_empty() {
        Ok(true)
    } else {
        Err(format!(
            "{name} rejects {}:\n  {}",
            serde_json::to_string(instance).unwrap_or_default(),
            errors.join("\n  ")
        ))
    }
}

/// Panics with the violations if `instance` does not validate.
pub fn assert_valid(name: &str, instance: &Value) {
    if let Err(e) = validate(name, instance) {
        panic!("{e}");
    }
}
