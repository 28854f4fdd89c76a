//! `context`: named connection settings stored where the nats CLI keeps them
//! (`$XDG_CONFIG_HOME/nats/context/<name>.json`, the selected name in
//! `$XDG_CONFIG_HOME/nats/context.txt`), so both tools share one set.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{anyhow, bail, Context as _, Result};
use clap::{Args, Subcommand};
use serde::{Deserialize, Serialize};

use crate::conn::ConnOpts;
use crate::output::{print_json, Columns, Table};
use crate::stream::confirm;

#[derive(Subcommand, Debug)]
pub enum ContextCmd {
    /// Update or create a context from the connection flags given
    #[command(visible_aliases = ["save", "create"])]
    Add(AddArgs),
    /// Select the default context
    #[command(visible_aliases = ["switch", "set"])]
    Select(NameArg),
    /// List known contexts
    #[command(visible_aliases = ["list"])]
    Ls(JsonArg),
    /// Display information on the current or named context
    #[command(visible_aliases = ["show"])]
    Info(InfoArgs),
    /// Remove a context
    #[command(visible_aliases = ["delete"])]
    Rm(RmArgs),
}

#[derive(Args, Debug)]
pub struct AddArgs {
    /// The context name
    pub name: String,
    /// Set a friendly description for this context
    #[arg(long)]
    pub description: Option<String>,
    /// Select the saved context as the default one
    #[arg(long)]
    pub select: bool,
}

#[derive(Args, Debug)]
pub struct NameArg {
    /// The context name
    pub name: Option<String>,
}

#[derive(Args, Debug)]
pub struct JsonArg {
    /// Produce JSON output
    #[arg(short = 'j', long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct InfoArgs {
    /// The context name (default: the selected one)
    pub name: Option<String>,
    /// Produce JSON output
    #[arg(short = 'j', long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct RmArgs {
    /// The context name
    pub name: String,
    /// Remove the context without prompting
    #[arg(short = 'f', long)]
    pub force: bool,
}

/// The JSON document of one context, field names as the nats CLI writes
/// them; fields this tool does not use are kept so a rewrite loses nothing.
#[derive(Serialize, Deserialize, Debug, Default, Clone)]
#[serde(default)]
pub struct Settings {
    pub description: String,
    pub url: String,
    pub token: String,
    pub user: String,
    pub password: String,
    pub creds: String,
    pub nkey: String,
    pub cert: String,
    pub key: String,
    pub ca: String,
    pub inbox_prefix: String,
    pub tls_first: bool,
    #[serde(flatten)]
    pub other: BTreeMap<String, serde_json::Value>,
}

/// A named context as loaded from disk.
pub struct Ctx {
    pub name: String,
    pub settings: Settings,
}

/// `$XDG_CONFIG_HOME/nats`, falling back to `~/.config/nats`.
fn config_dir() -> Result<PathBuf> {
    let base = match std::env::var_os("XDG_CONFIG_HOME").filter(|v| !v.is_empty()) {
        Some(x) => PathBuf::from(x),
        None => {
            let home = std::env::var_os("HOME")
                .filter(|v| !v.is_empty())
                .ok_or_else(|| anyhow!("cannot find the config directory: HOME is not set"))?;
            PathBuf::from(home).join(".config")
        }
    };
    Ok(base.join("nats"))
}

/// Names become file names, so refuse anything that could leave the folder.
fn check_name(name: &str) -> Result<()> {
    if name.is_empty()
        || name.starts_with('.')
        || name.contains(['/', '\\', '\0'])
        || name.chars().any(char::is_whitespace)
    {
        bail!("invalid context name {name:?}");
    }
    Ok(())
}

fn context_path(name: &str) -> Result<PathBuf> {
    check_name(name)?;
    Ok(config_dir()?.join("context").join(format!("{name}.json")))
}

/// The selected context's name, if one is selected.
pub fn selected() -> Result<Option<String>> {
    let p = config_dir()?.join("context.txt");
    match std::fs::read_to_string(&p) {
        Ok(s) => Ok(Some(s.trim().to_string()).filter(|s| !s.is_empty())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("could not read {}", p.display())),
    }
}

/// Load a context by name.
pub fn load(name: &str) -> Result<Ctx> {
    let p = context_path(name)?;
    let text = std::fs::read_to_string(&p).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            anyhow!("unknown context {name:?}")
        } else {
            anyhow!("could not read context {}: {e}", p.display())
        }
    })?;
    let settings = serde_json::from_str(&text)
        .with_context(|| format!("invalid context file {}", p.display()))?;
    Ok(Ctx {
        name: name.to_string(),
        settings,
    })
}

fn known() -> Result<Vec<String>> {
    let dir = config_dir()?.join("context");
    let rd = match std::fs::read_dir(&dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("could not list {}", dir.display())),
    };
    let mut names: Vec<String> = rd
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let n = e.file_name().to_string_lossy().into_owned();
            n.strip_suffix(".json").map(str::to_string)
        })
        .filter(|n| check_name(n).is_ok())
        .collect();
    names.sort();
    Ok(names)
}

fn save(name: &str, s: &Settings) -> Result<PathBuf> {
    let p = context_path(name)?;
    if let Some(dir) = p.parent() {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("could not create {}", dir.display()))?;
    }
    let text = serde_json::to_string_pretty(s)?;
    write_private(&p, text.as_bytes())?;
    Ok(p)
}

/// Contexts may hold passwords: write them readable by the owner only.
fn write_private(p: &std::path::Path, data: &[u8]) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(p)
        .with_context(|| format!("could not write {}", p.display()))?;
    f.write_all(data)?;
    Ok(())
}

fn select(name: &str) -> Result<()> {
    load(name)?;
    let dir = config_dir()?;
    std::fs::create_dir_all(&dir)?;
    write_private(&dir.join("context.txt"), name.as_bytes())
}

pub fn run(conn: &ConnOpts, cmd: ContextCmd) -> Result<()> {
    match cmd {
        ContextCmd::Add(a) => {
            // Start from the existing context so `add` also updates one.
            let mut s = load(&a.name).map(|c| c.settings).unwrap_or_default();
            let path_str = |p: &Option<PathBuf>| p.as_ref().map(|p| p.display().to_string());
            if let Some(d) = a.description {
                s.description = d;
            }
            if let Some(u) = &conn.server {
                s.url = u.clone();
            }
            match (&conn.user, &conn.password) {
                (Some(u), Some(p)) => (s.user, s.password) = (u.clone(), p.clone()),
                (Some(t), None) => s.token = t.clone(),
                (None, Some(_)) => bail!("--password requires --user"),
                (None, None) => {}
            }
            for (slot, v) in [
                (&mut s.creds, path_str(&conn.creds)),
                (&mut s.nkey, path_str(&conn.nkey)),
                (&mut s.cert, path_str(&conn.tlscert)),
                (&mut s.key, path_str(&conn.tlskey)),
                (&mut s.ca, path_str(&conn.tlsca)),
                (&mut s.inbox_prefix, conn.inbox_prefix.clone()),
            ] {
                if let Some(v) = v {
                    *slot = v;
                }
            }
            s.tls_first |= conn.tlsfirst;
            save(&a.name, &s)?;
            if a.select || selected()?.is_none() {
                select(&a.name)?;
            }
            show(&load(&a.name)?, false)
        }
        ContextCmd::Select(a) => match a.name {
            Some(n) => {
                select(&n)?;
                println!("Selected context {n:?}");
                Ok(())
            }
            None => match selected()? {
                Some(n) => {
                    println!("{n}");
                    Ok(())
                }
                None => bail!("no context selected; give a name to select"),
            },
        },
        ContextCmd::Ls(a) => {
            let names = known()?;
            let current = selected()?;
            if a.json {
                print_json(&serde_json::json!(names));
                return Ok(());
            }
            if names.is_empty() {
                println!("No contexts defined");
                return Ok(());
            }
            let mut t = Table::new("Known Contexts", &["Name", "Description"]);
            for n in names {
                let desc = load(&n)
                    .map(|c| c.settings.description)
                    .unwrap_or_else(|e| format!("(unreadable: {e})"));
                let mark = if current.as_deref() == Some(n.as_str()) {
                    "*"
                } else {
                    ""
                };
                t.row(vec![format!("{n}{mark}"), desc]);
            }
            println!("{}", t.render());
            Ok(())
        }
        ContextCmd::Info(a) => {
            let name = match a.name.or(conn.context.clone()) {
                Some(n) => n,
                None => selected()?.ok_or_else(|| anyhow!("no context selected"))?,
            };
            show(&load(&name)?, a.json)
        }
        ContextCmd::Rm(a) => {
            let p = context_path(&a.name)?;
            load(&a.name)?;
            if !a.force && !confirm(&format!("Really delete context {:?}", a.name))? {
                return Ok(());
            }
            std::fs::remove_file(&p)
                .with_context(|| format!("could not remove {}", p.display()))?;
            if selected()?.as_deref() == Some(a.name.as_str()) {
                let txt = config_dir()?.join("context.txt");
                std::fs::remove_file(&txt)
                    .with_context(|| format!("could not remove {}", txt.display()))?;
            }
            Ok(())
        }
    }
}

fn show(ctx: &Ctx, json: bool) -> Result<()> {
    let s = &ctx.settings;
    if json {
        print_json(&serde_json::to_value(s)?);
        return Ok(());
    }
    let or_default = |v: &str, d: &str| {
        if v.is_empty() {
            d.to_string()
        } else {
            v.to_string()
        }
    };
    let mut c = Columns::new(format!("NATS Configuration Context {:?}", ctx.name));
    c.row("Description", s.description.clone());
    c.row("Server URLs", or_default(&s.url, crate::conn::DEFAULT_URL));
    c.row_if(!s.user.is_empty(), "Username", s.user.clone());
    c.row_if(!s.password.is_empty(), "Password", "*********");
    c.row_if(!s.token.is_empty(), "Token", "*********");
    c.row_if(!s.creds.is_empty(), "Credentials", s.creds.clone());
    c.row_if(!s.nkey.is_empty(), "NKey", s.nkey.clone());
    c.row_if(!s.cert.is_empty(), "Certificate", s.cert.clone());
    c.row_if(!s.key.is_empty(), "Key", s.key.clone());
    c.row_if(!s.ca.is_empty(), "CA", s.ca.clone());
    c.row_if(s.tls_first, "TLS First", "true");
    c.row_if(
        !s.inbox_prefix.is_empty(),
        "Inbox Prefix",
        s.inbox_prefix.clone(),
    );
    c.row("Path", context_path(&ctx.name)?.display().to_string());
    print!("{}", c.render());
    Ok(())
}
