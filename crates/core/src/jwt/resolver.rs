//! Where account JWTs come from: `resolver: MEMORY` with `resolver_preload`,
//! or a directory of `<account public key>.jwt` files (nats-server's `full`
//! and `cache` resolvers keep the same layout), which pushed updates
//! (`$SYS.REQ.CLAIMS.UPDATE`) write to.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use parking_lot::RwLock;

/// The resolver as configured.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum ResolverConfig {
    #[default]
    None,
    Memory,
    /// `full` or `cache`: account JWTs kept in `dir`.
    Dir {
        dir: PathBuf,
        allow_delete: bool,
    },
}

/// Account JWTs by account public key.
#[derive(Debug, Default)]
pub struct Resolver {
    jwts: RwLock<HashMap<String, String>>,
    dir: Option<PathBuf>,
    pub allow_delete: bool,
}

impl Resolver {
    /// A resolver holding `preload`, and backed by a directory for `Dir`.
    pub fn new(cfg: &ResolverConfig, preload: &[(String, String)]) -> std::io::Result<Resolver> {
        let mut jwts: HashMap<String, String> = preload.iter().cloned().collect();
        let (dir, allow_delete) = match cfg {
            ResolverConfig::Dir { dir, allow_delete } => {
                std::fs::create_dir_all(dir)?;
                for entry in std::fs::read_dir(dir)? {
                    let path = entry?.path();
                    if path.extension().and_then(|e| e.to_str()) != Some("jwt") {
                        continue;
                    }
                    let Some(key) = path.file_stem().and_then(|s| s.to_str()) else {
                        continue;
                    };
                    match std::fs::read_to_string(&path) {
                        Ok(text) => {
                            jwts.insert(key.to_string(), text.trim().to_string());
                        }
                        Err(e) => tracing::warn!("account JWT {} unreadable: {e}", path.display()),
                    }
                }
                (Some(dir.clone()), *allow_delete)
            }
            _ => (None, false),
        };
        Ok(Resolver {
            jwts: RwLock::new(jwts),
            dir,
            allow_delete,
        })
    }

    pub fn fetch(&self, account: &str) -> Option<String> {
        self.jwts.read().get(account).cloned()
    }

    /// Stores an account JWT (already verified by the caller); persisted
    /// for directory resolvers.
    pub fn store(&self, account: &str, jwt: &str) -> std::io::Result<()> {
        if let Some(dir) = &self.dir {
            write_atomic(&dir.join(format!("{account}.jwt")), jwt.as_bytes())?;
        }
        self.jwts
            .write()
            .insert(account.to_string(), jwt.to_string());
        Ok(())
    }

    /// Forgets an account JWT (`$SYS.REQ.CLAIMS.DELETE`); a directory
    /// resolver removes its file.
    pub fn delete(&self, account: &str) -> std::io::Result<()> {
        if let Some(dir) = &self.dir {
            match std::fs::remove_file(dir.join(format!("{account}.jwt"))) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
        self.jwts.write().remove(account);
        Ok(())
    }

    /// The public keys of every known account.
    pub fn accounts(&self) -> Vec<String> {
        let mut v: Vec<_> = self.jwts.read().keys().cloned().collect();
        v.sort();
        v
    }

    pub fn is_dir(&self) -> bool {
        self.dir.is_some()
    }
}

fn write_atomic(path: &Path, data: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("jwt.tmp");
    std::fs::write(&tmp, data)?;
    std::fs::rename(&tmp, path)
}
