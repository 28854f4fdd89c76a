//! `rnats-server --check-store <dir>`: an offline scan of a JetStream store
//! that changes nothing. Every directory holding message blocks is read the
//! way recovery reads it (checksums, record framing) and every consumer state
//! file is parsed; damage is printed and the exit status says whether any
//! was found.

use std::path::{Path, PathBuf};

/// Scans `dir` (a `-sd` store dir, its `jetstream` dir, or one stream's);
/// returns `Ok(true)` when nothing is damaged.
pub fn run(dir: &Path) -> Result<bool, String> {
    if !dir.is_dir() {
        return Err(format!("{} is not a directory", dir.display()));
    }
    let mut stores = Vec::new();
    let mut consumers = Vec::new();
    walk(dir, &mut stores, &mut consumers)
        .map_err(|e| format!("reading {}: {e}", dir.display()))?;
    if stores.is_empty() && consumers.is_empty() {
        return Err(format!("no JetStream data found under {}", dir.display()));
    }
    let mut clean = true;
    for store in stores {
        match rnats_store::check_store(&store) {
            Ok(report) => {
                let status = if report.damaged.is_empty() {
                    "ok"
                } else {
                    "DAMAGED"
                };
                println!(
                    "{}: {} messages in {} blocks: {status}",
                    store.display(),
                    report.msgs,
                    report.blocks
                );
                for d in &report.damaged {
                    clean = false;
                    let seqs = d
                        .seqs
                        .map(|(a, b)| format!(", sequences {a}-{b}"))
                        .unwrap_or_default();
                    println!(
                        "  damaged: {} at offset {} ({} bytes{seqs}): {}",
                        d.file.display(),
                        d.offset,
                        d.len,
                        d.cause
                    );
                }
            }
            Err(e) => {
                clean = false;
                println!("{}: could not be read: {e}", store.display());
            }
        }
    }
    for state in consumers {
        let ok = std::fs::read(&state)
            .map_err(|e| e.to_string())
            .and_then(|b| super::consumer::state::decode_state(&b));
        match ok {
            Ok(_) => println!("{}: ok", state.display()),
            Err(e) => {
                clean = false;
                println!("{}: DAMAGED: {e}", state.display());
            }
        }
    }
    Ok(clean)
}

/// Finds directories with `.blk` files and consumer `state.json` files.
fn walk(
    dir: &Path,
    stores: &mut Vec<PathBuf>,
    consumers: &mut Vec<PathBuf>,
) -> std::io::Result<()> {
    let mut has_blocks = false;
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            walk(&path, stores, consumers)?;
        } else if path.extension().is_some_and(|e| e == "blk") {
            has_blocks = true;
        } else if path.file_name().is_some_and(|n| n == "state.json") {
            consumers.push(path);
        }
    }
    if has_blocks {
        stores.push(dir.to_path_buf());
    }
    Ok(())
}
