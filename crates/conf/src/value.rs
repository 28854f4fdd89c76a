//! Owns the parsed data model: [`Pos`] (file, line, column), [`Spanned`] (a
//! value with its position), [`Value`], the insertion-ordered [`Map`] with its
//! [`Entry`] records, [`DateTime`], and the typed accessors that turn a
//! `Spanned` into a Rust type or a positioned [`ConfError`].

use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use indexmap::IndexMap;

use crate::duration::parse_duration;
use crate::error::ConfError;

/// A position in a configuration source. Lines and columns start at 1;
/// columns count Unicode scalar values, not bytes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Pos {
    /// The file, as the user named it (joined with the including file's
    /// directory for included files); `None` for strings given to
    /// [`crate::parse_str`] and for environment-variable values.
    pub file: Option<Arc<Path>>,
    /// 1-based line.
    pub line: u32,
    /// 1-based column.
    pub col: u32,
}

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.file {
            Some(p) => write!(f, "{}:{}:{}", p.display(), self.line, self.col),
            None => write!(f, "<string>:{}:{}", self.line, self.col),
        }
    }
}

/// A UTC date-time written in the configuration as `YYYY-MM-DDTHH:MM:SSZ`
/// (the only date form nats-server's lexer accepts).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DateTime {
    /// Four-digit year, 0..=9999.
    pub year: u16,
    /// 1..=12.
    pub month: u8,
    /// 1..=31 (checked against the month and leap years).
    pub day: u8,
    /// 0..=23.
    pub hour: u8,
    /// 0..=59.
    pub minute: u8,
    /// 0..=59.
    pub second: u8,
}

impl DateTime {
    /// Seconds since 1970-01-01T00:00:00Z (negative before).
    pub fn unix_seconds(&self) -> i64 {
        // Days from civil, proleptic Gregorian calendar.
        let y = i64::from(self.year) - i64::from(self.month <= 2);
        let era = y.div_euclid(400);
        let yoe = y - era * 400;
        let m = i64::from(self.month);
        let mp = (m + 9) % 12;
        let doy = (153 * mp + 2) / 5 + i64::from(self.day) - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        let days = era * 146_097 + doe - 719_468;
        days * 86_400
            + i64::from(self.hour) * 3600
            + i64::from(self.minute) * 60
            + i64::from(self.second)
    }

    pub(crate) fn days_in_month(year: u16, month: u8) -> u8 {
        match month {
            1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
            4 | 6 | 9 | 11 => 30,
            2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
            2 => 28,
            _ => 0,
        }
    }
}

impl fmt::Display for DateTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
            self.year, self.month, self.day, self.hour, self.minute, self.second
        )
    }
}

/// A configuration value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `true`, `false`, `yes`, `no`, `on`, `off` (unquoted, any case).
    Bool(bool),
    /// An integer, after applying any size suffix (`1k` = 1000, `1kb` = 1024).
    Int(i64),
    /// A decimal number with a fraction (`1.5`); there is no exponent form.
    Float(f64),
    /// Quoted, unquoted, or `(` block `)` text. Durations such as `10s` are
    /// strings too; see [`Spanned::as_duration`].
    String(String),
    /// `YYYY-MM-DDTHH:MM:SSZ`.
    DateTime(DateTime),
    /// `[ ... ]`.
    Array(Vec<Spanned>),
    /// `{ ... }`.
    Map(Map),
}

impl Value {
    /// "a boolean", "an integer", ... for error messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Value::Bool(_) => "a boolean",
            Value::Int(_) => "an integer",
            Value::Float(_) => "a float",
            Value::String(_) => "a string",
            Value::DateTime(_) => "a date-time",
            Value::Array(_) => "an array",
            Value::Map(_) => "a map",
        }
    }
}

/// A value together with where it was written. Equality compares values
/// only; positions are metadata.
#[derive(Debug, Clone)]
pub struct Spanned {
    /// The value.
    pub value: Value,
    /// Where it starts (the opening quote, bracket or first character). For a
    /// value obtained through `$VARIABLE`, the position of the reference.
    pub pos: Pos,
}

impl PartialEq for Spanned {
    fn eq(&self, other: &Self) -> bool {
        self.value == other.value
    }
}

impl Spanned {
    fn type_err(&self, expected: &'static str) -> ConfError {
        ConfError::Type {
            pos: self.pos.clone(),
            expected,
            found: self.value.kind(),
        }
    }

    /// An error at this value's position, for callers validating values.
    pub fn invalid(&self, msg: impl Into<String>) -> ConfError {
        ConfError::Invalid {
            pos: self.pos.clone(),
            msg: msg.into(),
        }
    }

    /// The text of a string value.
    pub fn as_str(&self) -> Result<&str, ConfError> {
        match &self.value {
            Value::String(s) => Ok(s),
            _ => Err(self.type_err("a string")),
        }
    }

    /// An integer value.
    pub fn as_int(&self) -> Result<i64, ConfError> {
        match self.value {
            Value::Int(i) => Ok(i),
            _ => Err(self.type_err("an integer")),
        }
    }

    /// A float, or an integer converted to a float.
    pub fn as_float(&self) -> Result<f64, ConfError> {
        match self.value {
            Value::Float(f) => Ok(f),
            Value::Int(i) => Ok(i as f64),
            _ => Err(self.type_err("a number")),
        }
    }

    /// A boolean value.
    pub fn as_bool(&self) -> Result<bool, ConfError> {
        match self.value {
            Value::Bool(b) => Ok(b),
            _ => Err(self.type_err("a boolean")),
        }
    }

    /// A date-time value.
    pub fn as_datetime(&self) -> Result<DateTime, ConfError> {
        match self.value {
            Value::DateTime(d) => Ok(d),
            _ => Err(self.type_err("a date-time")),
        }
    }

    /// The elements of an array value.
    pub fn as_array(&self) -> Result<&[Spanned], ConfError> {
        match &self.value {
            Value::Array(a) => Ok(a),
            _ => Err(self.type_err("an array")),
        }
    }

    /// A map value.
    pub fn as_map(&self) -> Result<&Map, ConfError> {
        match &self.value {
            Value::Map(m) => Ok(m),
            _ => Err(self.type_err("a map")),
        }
    }

    /// A duration as nats-server reads duration options: a string in Go
    /// duration syntax (`"2m"`, `10s`, `1h30m`, `1.5h`, `500ms`), or a plain
    /// non-negative integer meaning seconds (the legacy form nats-server still
    /// accepts with a warning). Note that an unquoted `2m` is the integer
    /// 2000000 (the `m` is a size suffix), hence 2000000 seconds; write `"2m"`.
    pub fn as_duration(&self) -> Result<Duration, ConfError> {
        match &self.value {
            Value::String(s) => parse_duration(s).map_err(|e| self.invalid(e)),
            Value::Int(i) => u64::try_from(*i)
                .map(Duration::from_secs)
                .map_err(|_| self.invalid(format!("negative duration {i} is not allowed"))),
            _ => Err(self.type_err("a duration (e.g. \"2m\") or a number of seconds")),
        }
    }

    /// A storage size as nats-server's `getStorageSize` reads it (used for
    /// JetStream `max_memory_store` / `max_file_store` and the like): an
    /// integer (size suffixes already applied by the lexer: `1G` =
    /// 1 000 000 000, `1GB`/`1Gi`/`1GiB` = 2^30), or a string made of an
    /// integer followed by exactly one of `K`, `M`, `G`, `T` (upper case,
    /// binary multiples: `"1G"` = 2^30). The empty string is 0.
    pub fn as_size(&self) -> Result<i64, ConfError> {
        match &self.value {
            Value::Int(i) => Ok(*i),
            Value::String(s) => {
                if s.is_empty() {
                    return Ok(0);
                }
                let Some(last) = s.chars().last() else {
                    return Ok(0);
                };
                let prefix = &s[..s.len() - last.len_utf8()];
                let shift = match last {
                    'K' => 10,
                    'M' => 20,
                    'G' => 30,
                    'T' => 40,
                    _ => {
                        return Err(self.invalid(format!(
                            "size \"{s}\": sizes given as strings must end in K, M, G or T"
                        )))
                    }
                };
                let n: i64 = parse_go_int(prefix)
                    .ok_or_else(|| self.invalid(format!("size \"{s}\" is not a number")))?;
                n.checked_mul(1i64 << shift)
                    .ok_or_else(|| self.invalid(format!("size \"{s}\" is out of range")))
            }
            _ => Err(self.type_err("a size (integer or string like \"1G\")")),
        }
    }
}

/// `strconv.ParseInt(s, 10, 64)`: optional sign, ASCII digits only.
fn parse_go_int(s: &str) -> Option<i64> {
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// One key of a [`Map`].
#[derive(Debug, Clone)]
pub struct Entry {
    /// Where the key was written (its last definition, if defined twice).
    pub key_pos: Pos,
    /// The value.
    pub value: Spanned,
    /// Whether the key was referenced as `$key` by a later value. nats-server
    /// skips such keys when it rejects unknown options, since they are
    /// variable definitions rather than settings.
    pub used_as_variable: bool,
}

/// A map from keys to values that keeps insertion order and each key's
/// position. A key defined twice keeps its first slot in the order and takes
/// the later value (as nats-server does: the later definition wins).
/// Equality ignores order and positions.
#[derive(Debug, Clone, Default)]
pub struct Map {
    entries: IndexMap<String, Entry>,
}

impl PartialEq for Map {
    fn eq(&self, other: &Self) -> bool {
        self.entries.len() == other.entries.len()
            && self
                .entries
                .iter()
                .all(|(k, e)| other.get(k).is_some_and(|o| *o == e.value))
    }
}

impl Map {
    /// An empty map.
    pub fn new() -> Self {
        Self::default()
    }

    /// The value of `key` (exact, case-sensitive match).
    pub fn get(&self, key: &str) -> Option<&Spanned> {
        self.entries.get(key).map(|e| &e.value)
    }

    /// The value of `key`, matching ASCII case-insensitively (nats-server
    /// matches option names case-insensitively). When several keys match,
    /// the last defined one wins.
    pub fn get_ignore_case(&self, key: &str) -> Option<&Spanned> {
        self.entries
            .iter()
            .rev()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, e)| &e.value)
    }

    /// The full entry for `key`.
    pub fn get_entry(&self, key: &str) -> Option<&Entry> {
        self.entries.get(key)
    }

    /// Whether `key` is present.
    pub fn contains_key(&self, key: &str) -> bool {
        self.entries.contains_key(key)
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are no keys.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Keys and entries in insertion order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Entry)> {
        self.entries.iter().map(|(k, e)| (k.as_str(), e))
    }

    /// Keys in insertion order.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.entries.keys().map(String::as_str)
    }

    /// Sets `key`; a previous value is replaced (the key keeps its slot).
    pub fn insert(&mut self, key: String, key_pos: Pos, value: Spanned) {
        self.entries.insert(
            key,
            Entry {
                key_pos,
                value,
                used_as_variable: false,
            },
        );
    }

    pub(crate) fn get_entry_mut(&mut self, key: &str) -> Option<&mut Entry> {
        self.entries.get_mut(key)
    }

    pub(crate) fn insert_entry(&mut self, key: String, entry: Entry) {
        self.entries.insert(key, entry);
    }

    pub(crate) fn into_entries(self) -> impl Iterator<Item = (String, Entry)> {
        self.entries.into_iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sp(value: Value) -> Spanned {
        Spanned {
            value,
            pos: Pos {
                file: None,
                line: 2,
                col: 7,
            },
        }
    }

    #[test]
    fn accessors_and_type_errors() {
        assert_eq!(sp(Value::Int(5)).as_int(), Ok(5));
        assert_eq!(sp(Value::Int(5)).as_float(), Ok(5.0));
        let e = sp(Value::String("x".into())).as_int().unwrap_err();
        assert_eq!(
            e.to_string(),
            "<string>:2:7: expected an integer, found a string"
        );
        assert!(sp(Value::Bool(true)).as_str().is_err());
        assert_eq!(sp(Value::Bool(false)).as_bool(), Ok(false));
    }

    #[test]
    fn durations() {
        assert_eq!(
            sp(Value::String("2m".into())).as_duration(),
            Ok(Duration::from_secs(120))
        );
        assert_eq!(
            sp(Value::Int(30)).as_duration(),
            Ok(Duration::from_secs(30))
        );
        assert!(sp(Value::Int(-1)).as_duration().is_err());
        assert!(sp(Value::Float(1.5)).as_duration().is_err());
        let e = sp(Value::String("5 minutes".into()))
            .as_duration()
            .unwrap_err();
        assert!(e.to_string().starts_with("<string>:2:7: "), "{e}");
    }

    #[test]
    fn sizes() {
        assert_eq!(sp(Value::Int(1000)).as_size(), Ok(1000));
        assert_eq!(sp(Value::String("1G".into())).as_size(), Ok(1 << 30));
        assert_eq!(sp(Value::String("2K".into())).as_size(), Ok(2048));
        assert_eq!(sp(Value::String("3T".into())).as_size(), Ok(3 << 40));
        assert_eq!(sp(Value::String("".into())).as_size(), Ok(0));
        assert!(sp(Value::String("1g".into())).as_size().is_err());
        assert!(sp(Value::String("1GB".into())).as_size().is_err());
        assert!(sp(Value::String("xG".into())).as_size().is_err());
        assert!(sp(Value::String("9999999999T".into())).as_size().is_err());
    }

    #[test]
    fn datetime_unix() {
        let d = DateTime {
            year: 2016,
            month: 5,
            day: 4,
            hour: 18,
            minute: 53,
            second: 41,
        };
        assert_eq!(d.unix_seconds(), 1_462_388_021);
        assert_eq!(d.to_string(), "2016-05-04T18:53:41Z");
        let epoch = DateTime {
            year: 1970,
            month: 1,
            day: 1,
            hour: 0,
            minute: 0,
            second: 0,
        };
        assert_eq!(epoch.unix_seconds(), 0);
    }
}
