//! Owns the structural layer: the [`Parser`] configuration (environment
//! lookup, include policy, depth limit) and the recursive-descent parse of a
//! document into a [`Map`]: top level (with optional JSON-style outer
//! braces), key/value entries, maps, arrays, value terminators, `$variable`
//! resolution, and `include` directives with cycle detection.
//!
//! Grammar and semantics follow nats-server's `conf/lex.go` and
//! `conf/parse.go`; deliberate differences are noted where they occur.

use std::fmt;
use std::fs;
use std::io;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use crate::error::ConfError;
use crate::lexer::{describe, Cursor, Scalar};
use crate::value::{Map, Pos, Spanned, Value};

type EnvFn = dyn Fn(&str) -> Option<String> + Send + Sync;

/// How many values `$variable` references may copy, in total, into one
/// parse. Without a limit, `a = [1,1]`, `b = [$a,$a]`, `c = [$b,$b]`, ...
/// grows exponentially with the number of lines.
pub(crate) const EXPANSION_LIMIT: usize = 1_000_000;

/// Parser settings. [`crate::parse_str`] and [`crate::parse_file`] use
/// `Parser::new()`.
///
/// ```
/// use rnats_conf::Parser;
/// let p = Parser::new().env(|name| (name == "PORT").then(|| "4333".to_string()));
/// let m = p.parse_str("port: $PORT").unwrap();
/// assert_eq!(m.get("port").unwrap().as_int().unwrap(), 4333);
/// ```
#[derive(Clone)]
pub struct Parser {
    env: Arc<EnvFn>,
    includes: bool,
    include_base: Option<PathBuf>,
    max_depth: u32,
}

impl fmt::Debug for Parser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Parser")
            .field("includes", &self.includes)
            .field("include_base", &self.include_base)
            .field("max_depth", &self.max_depth)
            .finish_non_exhaustive()
    }
}

impl Default for Parser {
    fn default() -> Self {
        Self::new()
    }
}

fn process_env(name: &str) -> Option<String> {
    // std::env::var_os panics on such names; no variable can have them.
    if name.is_empty() || name.contains(['=', '\0']) {
        return None;
    }
    std::env::var_os(name).map(|v| v.to_string_lossy().into_owned())
}

impl Parser {
    /// Variables fall back to the process environment, includes are enabled
    /// (relative to the current directory for [`Parser::parse_str`]), and
    /// nesting is limited to 128 levels.
    pub fn new() -> Self {
        Parser {
            env: Arc::new(process_env),
            includes: true,
            include_base: None,
            max_depth: 128,
        }
    }

    /// Replaces the environment lookup used for `$NAME` when no enclosing map
    /// defines `NAME`. Return `None` for "not set".
    pub fn env<F>(mut self, lookup: F) -> Self
    where
        F: Fn(&str) -> Option<String> + Send + Sync + 'static,
    {
        self.env = Arc::new(lookup);
        self
    }

    /// The directory that `include` paths in [`Parser::parse_str`] input are
    /// relative to (default: the current directory). Files parsed with
    /// [`Parser::parse_file`] always resolve includes against their own
    /// directory.
    pub fn include_base(mut self, dir: impl Into<PathBuf>) -> Self {
        self.include_base = Some(dir.into());
        self
    }

    /// Makes every `include` directive an error ([`ConfError::IncludesDisabled`]).
    pub fn disable_includes(mut self) -> Self {
        self.includes = false;
        self
    }

    /// Sets the nesting limit for maps, arrays, includes and
    /// environment-variable values together (default 128).
    pub fn max_depth(mut self, levels: u32) -> Self {
        self.max_depth = levels;
        self
    }

    /// Parses configuration text.
    pub fn parse_str(&self, src: &str) -> Result<Map, ConfError> {
        let mut sh = Shared::new(self);
        let base = self.string_base();
        parse_document(&mut sh, src, None, base)
    }

    /// Reads and parses a configuration file; includes are relative to its
    /// directory. Bytes that are not UTF-8 are replaced by U+FFFD, which is
    /// what nats-server's lexer ends up doing too.
    pub fn parse_file(&self, path: impl AsRef<Path>) -> Result<Map, ConfError> {
        let path = path.as_ref();
        let io_err = |e: io::Error| ConfError::Io {
            path: path.to_path_buf(),
            kind: e.kind(),
            message: e.to_string(),
        };
        let bytes = fs::read(path).map_err(io_err)?;
        let canonical = fs::canonicalize(path).map_err(io_err)?;
        let text = String::from_utf8_lossy(&bytes);
        let mut sh = Shared::new(self);
        sh.include_stack.push((canonical, path.to_path_buf()));
        parse_document(&mut sh, &text, Some(Arc::from(path)), go_dir(path))
    }

    fn string_base(&self) -> PathBuf {
        self.include_base
            .clone()
            .unwrap_or_else(|| PathBuf::from("."))
    }
}

/// State shared by a document and everything it includes.
struct Shared<'p> {
    cfg: &'p Parser,
    /// (canonical path, path as displayed) of the files being parsed.
    include_stack: Vec<(PathBuf, PathBuf)>,
    /// Environment variables whose values are being parsed.
    env_active: Vec<String>,
    depth: u32,
    /// Values that variable references may still copy.
    expansion_budget: usize,
}

impl<'p> Shared<'p> {
    fn new(cfg: &'p Parser) -> Self {
        Shared {
            cfg,
            include_stack: Vec::new(),
            env_active: Vec::new(),
            depth: 0,
            expansion_budget: EXPANSION_LIMIT,
        }
    }

    fn enter(&mut self, pos: &Pos) -> Result<(), ConfError> {
        self.depth += 1;
        if self.depth > self.cfg.max_depth {
            return Err(ConfError::TooDeep {
                pos: pos.clone(),
                limit: self.cfg.max_depth,
            });
        }
        Ok(())
    }

    fn leave(&mut self) {
        self.depth = self.depth.saturating_sub(1);
    }

    /// Parses the file an `include` at `pos` names.
    fn parse_included(&mut self, path: &Path, pos: &Pos) -> Result<Map, ConfError> {
        let io_err = |e: io::Error| ConfError::Include {
            pos: pos.clone(),
            path: path.to_path_buf(),
            kind: e.kind(),
            message: e.to_string(),
        };
        let canonical = fs::canonicalize(path).map_err(io_err)?;
        if let Some(i) = self.include_stack.iter().position(|(c, _)| *c == canonical) {
            let mut chain: Vec<PathBuf> = self.include_stack[i..]
                .iter()
                .map(|(_, shown)| shown.clone())
                .collect();
            chain.push(path.to_path_buf());
            return Err(ConfError::IncludeCycle {
                pos: pos.clone(),
                chain,
            });
        }
        let bytes = fs::read(path).map_err(io_err)?;
        let text = String::from_utf8_lossy(&bytes);
        self.enter(pos)?;
        self.include_stack.push((canonical, path.to_path_buf()));
        let result = parse_document(self, &text, Some(Arc::from(path)), go_dir(path));
        self.include_stack.pop();
        self.leave();
        result
    }
}

/// Go's `filepath.Dir`: the parent, or `.` for a bare file name.
fn go_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if p.as_os_str().is_empty() => PathBuf::from("."),
        Some(p) => p.to_path_buf(),
        None => path.to_path_buf(),
    }
}

/// Go's `filepath.Join(base, rel)`, which nats-server uses to resolve
/// includes: `rel` is appended to `base` even when it starts with `/`, and
/// the result is cleaned lexically (`.` dropped, `dir/..` folded).
fn go_join(base: &Path, rel: &str) -> PathBuf {
    let joined = base.join(rel.trim_start_matches('/'));
    let mut out: Vec<Component<'_>> = Vec::new();
    for c in joined.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => match out.last() {
                Some(Component::Normal(_)) => {
                    out.pop();
                }
                Some(Component::RootDir | Component::Prefix(_)) => {}
                _ => out.push(c),
            },
            _ => out.push(c),
        }
    }
    if out.is_empty() {
        return PathBuf::from(".");
    }
    out.iter().collect()
}

fn parse_document(
    sh: &mut Shared<'_>,
    src: &str,
    file: Option<Arc<Path>>,
    base_dir: PathBuf,
) -> Result<Map, ConfError> {
    let mut doc = Doc {
        cur: Cursor::new(src, file),
        sh,
        scopes: vec![Map::new()],
        base_dir,
    };
    doc.parse_top()?;
    Ok(doc.scopes.pop().unwrap_or_default())
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Ctx {
    Top,
    Map,
    Array,
}

enum End {
    /// Another entry or element may follow.
    Next,
    /// A closing `}` or `]` was consumed.
    Close,
}

/// One document (a file, a string, or an environment variable's value).
struct Doc<'a, 'p, 's> {
    cur: Cursor<'s>,
    sh: &'a mut Shared<'p>,
    /// The maps being built, outermost first; variables are looked up from
    /// the innermost outwards.
    scopes: Vec<Map>,
    base_dir: PathBuf,
}

impl Doc<'_, '_, '_> {
    fn scope(&mut self) -> &mut Map {
        if self.scopes.is_empty() {
            self.scopes.push(Map::new());
        }
        let last = self.scopes.len() - 1;
        &mut self.scopes[last]
    }

    /// The top level: entries separated by newlines, `;` or `,`, optionally
    /// wrapped in `{ }` (possibly several times) as JSON files are. Such
    /// outer braces do not create a map: their keys land at the top.
    fn parse_top(&mut self) -> Result<(), ConfError> {
        let mut blocks: Vec<Pos> = Vec::new();
        loop {
            self.cur.skip_space_and_comments();
            let pos = self.cur.here();
            match self.cur.peek() {
                None => {
                    // nats-server accepts a missing final '}' here; we don't.
                    return match blocks.pop() {
                        Some(open) => Err(ConfError::syntax(
                            open,
                            "unterminated block: this '{' is never closed",
                        )),
                        None => Ok(()),
                    };
                }
                Some('{') => {
                    self.cur.bump();
                    self.sh.enter(&pos)?;
                    blocks.push(pos);
                }
                Some('}') => {
                    self.cur.bump();
                    if blocks.is_empty() {
                        // nats-server tolerates a stray '}' at the very end.
                        self.cur.skip_space_and_comments();
                        if self.cur.peek().is_some() {
                            return Err(ConfError::syntax(
                                pos,
                                "unexpected '}' with no matching '{'",
                            ));
                        }
                        return Ok(());
                    }
                    self.close_top_block(&mut blocks);
                }
                Some(_) => {
                    self.parse_entry(Ctx::Top)?;
                    if let End::Close = self.value_end(Ctx::Top)? {
                        // Without an open block nats-server ignores the '}'.
                        if !blocks.is_empty() {
                            self.close_top_block(&mut blocks);
                        }
                    }
                }
            }
        }
    }

    fn close_top_block(&mut self, blocks: &mut Vec<Pos>) {
        blocks.pop();
        self.sh.leave();
        self.cur.skip_blanks();
        if matches!(self.cur.peek(), Some(',' | ';')) {
            self.cur.bump();
        }
    }

    /// `key [=|:] value`, or `include path`, the cursor on the key.
    fn parse_entry(&mut self, ctx: Ctx) -> Result<(), ConfError> {
        let key_pos = self.cur.here();
        match self.cur.peek() {
            c @ Some('=' | ':') => {
                return Err(self
                    .cur
                    .err_here(format!("expected a key, found {}", describe(c))))
            }
            Some(']') if ctx == Ctx::Map => {
                return Err(self.cur.err_here("unexpected ']' in a map"));
            }
            _ => {}
        }
        let (key, bare) = self.cur.scan_key()?;
        if bare
            && key.eq_ignore_ascii_case("include")
            && self.cur.peek().is_some_and(char::is_whitespace)
        {
            return self.parse_include(key_pos);
        }
        self.cur.skip_space();
        let has_sep = matches!(self.cur.peek(), Some('=' | ':'));
        if has_sep {
            self.cur.bump();
            // At the top level the value must be on the same line as the
            // separator; inside a map it may follow on later lines.
            if ctx == Ctx::Map {
                self.cur.skip_space();
            } else {
                self.cur.skip_blanks();
            }
        }
        let value = self.parse_value(Some(&key))?;
        self.scope().insert(key, key_pos, value);
        Ok(())
    }

    fn parse_include(&mut self, pos: Pos) -> Result<(), ConfError> {
        let raw = self.cur.scan_include_path()?;
        if !self.sh.cfg.includes {
            return Err(ConfError::IncludesDisabled { pos });
        }
        let path = go_join(&self.base_dir, &raw);
        let included = self.sh.parse_included(&path, &pos)?;
        let scope = self.scope();
        for (key, entry) in included.into_entries() {
            scope.insert_entry(key, entry);
        }
        Ok(())
    }

    /// A value, the cursor on its first character (blanks skipped).
    fn parse_value(&mut self, key: Option<&str>) -> Result<Spanned, ConfError> {
        let pos = self.cur.here();
        let c = self.cur.peek();
        match c {
            Some('[') => return self.parse_array(),
            Some('{') => return self.parse_map(),
            None | Some('\n' | '\r' | ';' | ',' | ']' | '}') => {
                let msg = match key {
                    Some(k) => format!("expected a value for key '{k}', found {}", describe(c)),
                    None => format!("expected a value, found {}", describe(c)),
                };
                return Err(ConfError::syntax(pos, msg));
            }
            _ => {}
        }
        let value = match self.cur.scan_scalar()? {
            Scalar::Str(s) => Value::String(s),
            Scalar::Bool(b) => Value::Bool(b),
            Scalar::Int(i) => Value::Int(i),
            Scalar::Float(f) => Value::Float(f),
            Scalar::DateTime(d) => Value::DateTime(d),
            Scalar::Var(name) => return self.resolve(name, pos),
        };
        Ok(Spanned { value, pos })
    }

    /// What may follow a value: blanks, a comment, then a separator or the
    /// closing bracket of the enclosing construct.
    fn value_end(&mut self, ctx: Ctx) -> Result<End, ConfError> {
        loop {
            self.cur.skip_blanks();
            if self.cur.at_comment() {
                self.cur.skip_comment();
                continue;
            }
            let c = self.cur.peek();
            let end = match (ctx, c) {
                // The enclosing loop reports unterminated maps and arrays.
                (_, None) => return Ok(End::Next),
                (_, Some('\n' | '\r' | ',')) | (Ctx::Top | Ctx::Map, Some(';')) => End::Next,
                (Ctx::Top | Ctx::Map, Some('}')) | (Ctx::Array, Some(']')) => End::Close,
                (Ctx::Top, _) => {
                    return Err(self.cur.err_here(format!(
                        "expected a newline, ';', ',' or a comment after the value, found {}",
                        describe(c)
                    )))
                }
                (Ctx::Map, _) => {
                    return Err(self.cur.err_here(format!(
                        "expected a newline, ',', ';' or '}}' after the value, found {}",
                        describe(c)
                    )))
                }
                (Ctx::Array, _) => {
                    return Err(self.cur.err_here(format!(
                        "expected a newline, ',' or ']' after the array element, found {}",
                        describe(c)
                    )))
                }
            };
            self.cur.bump();
            return Ok(end);
        }
    }

    fn parse_map(&mut self) -> Result<Spanned, ConfError> {
        let open = self.cur.here();
        self.cur.bump();
        self.sh.enter(&open)?;
        self.scopes.push(Map::new());
        loop {
            self.cur.skip_space_and_comments();
            match self.cur.peek() {
                None => {
                    return Err(ConfError::syntax(
                        open,
                        "unterminated map: this '{' is never closed",
                    ))
                }
                Some('}') => {
                    self.cur.bump();
                    break;
                }
                Some(_) => {
                    self.parse_entry(Ctx::Map)?;
                    if let End::Close = self.value_end(Ctx::Map)? {
                        break;
                    }
                }
            }
        }
        self.sh.leave();
        let map = self.scopes.pop().unwrap_or_default();
        Ok(Spanned {
            value: Value::Map(map),
            pos: open,
        })
    }

    fn parse_array(&mut self) -> Result<Spanned, ConfError> {
        let open = self.cur.here();
        self.cur.bump();
        self.sh.enter(&open)?;
        let mut items = Vec::new();
        loop {
            self.cur.skip_space_and_comments();
            match self.cur.peek() {
                None => {
                    return Err(ConfError::syntax(
                        open,
                        "unterminated array: this '[' is never closed",
                    ))
                }
                Some(']') => {
                    self.cur.bump();
                    break;
                }
                Some(',') => {
                    return Err(self
                        .cur
                        .err_here("unexpected ',' in array: expected a value or ']'"))
                }
                Some(_) => {
                    items.push(self.parse_value(None)?);
                    if let End::Close = self.value_end(Ctx::Array)? {
                        break;
                    }
                }
            }
        }
        self.sh.leave();
        Ok(Spanned {
            value: Value::Array(items),
            pos: open,
        })
    }

    /// `$name`: a key defined earlier in this or an enclosing map (arrays do
    /// not count), else the environment, whose value is parsed as a value of
    /// this language. `$2a$...` is not a variable but a bcrypt hash, kept as
    /// text (nats-server special-cases exactly the `2a$` prefix).
    fn resolve(&mut self, name: String, pos: Pos) -> Result<Spanned, ConfError> {
        if name.starts_with("2a$") {
            return Ok(Spanned {
                value: Value::String(format!("${name}")),
                pos,
            });
        }
        for scope in self.scopes.iter_mut().rev() {
            if let Some(entry) = scope.get_entry_mut(&name) {
                entry.used_as_variable = true;
                // Copies count against the expansion budget, and must not
                // nest deeper than a literal value could.
                let depth = measure(&entry.value.value, &mut self.sh.expansion_budget).ok_or_else(
                    || {
                        ConfError::syntax(
                            pos.clone(),
                            format!(
                                "variable expansion exceeds the limit of {EXPANSION_LIMIT} values"
                            ),
                        )
                    },
                )?;
                if self.sh.depth.saturating_add(depth) > self.sh.cfg.max_depth {
                    return Err(ConfError::TooDeep {
                        pos,
                        limit: self.sh.cfg.max_depth,
                    });
                }
                return Ok(Spanned {
                    value: entry.value.value.clone(),
                    pos,
                });
            }
        }
        if self.sh.env_active.contains(&name) {
            return Err(ConfError::VariableCycle { pos, name });
        }
        let Some(raw) = (self.sh.cfg.env)(&name) else {
            return Err(ConfError::UndefinedVariable { pos, name });
        };
        if raw.is_empty() {
            return Ok(Spanned {
                value: Value::String(String::new()),
                pos,
            });
        }
        let src = format!("pk={raw}");
        self.sh.enter(&pos)?;
        self.sh.env_active.push(name.clone());
        let base = self.sh.cfg.string_base();
        let result = parse_document(self.sh, &src, None, base);
        self.sh.env_active.pop();
        self.sh.leave();
        match result {
            Ok(map) => match map.get("pk") {
                Some(v) => Ok(Spanned {
                    value: v.value.clone(),
                    pos,
                }),
                None => Err(ConfError::UndefinedVariable { pos, name }),
            },
            Err(e) => Err(ConfError::EnvVariable {
                pos,
                name,
                source: Box::new(e),
            }),
        }
    }
}

/// Counts `v`'s nodes against `budget` and returns its nesting depth, or
/// `None` once the budget is exhausted.
fn measure(v: &Value, budget: &mut usize) -> Option<u32> {
    *budget = budget.checked_sub(1)?;
    let children: Box<dyn Iterator<Item = &Spanned>> = match v {
        Value::Array(items) => Box::new(items.iter()),
        Value::Map(m) => Box::new(m.iter().map(|(_, e)| &e.value)),
        _ => return Some(0),
    };
    let mut depth = 0;
    for child in children {
        depth = depth.max(measure(&child.value, budget)?);
    }
    Some(depth + 1)
}
