//! Owns the character-level layer: [`Cursor`] (position tracking over the
//! source text), skipping of blanks and comments, and the scanners for keys,
//! include paths and scalar values (quoted strings with escapes, bare strings,
//! booleans, `$variables`, numbers with size suffixes, IP-like strings,
//! ISO8601 date-times and `( ... )` block strings). Structure (maps, arrays,
//! variables, includes) is the parser's business.
//!
//! The token rules mirror nats-server's `conf/lex.go`; the comments name the
//! places where this lexer deliberately differs.

use std::path::Path;
use std::sync::Arc;

use crate::error::ConfError;
use crate::value::{DateTime, Pos};

/// A scalar as scanned; `Var` is resolved by the parser.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Scalar {
    Str(String),
    Bool(bool),
    Int(i64),
    Float(f64),
    DateTime(DateTime),
    Var(String),
}

pub(crate) struct Cursor<'s> {
    src: &'s str,
    pos: usize,
    line: u32,
    col: u32,
    file: Option<Arc<Path>>,
}

/// Characters that end an unquoted string (nats-server's `lexString`).
fn ends_bare(c: Option<char>) -> bool {
    matches!(
        c,
        None | Some('\n' | '\r' | ';' | ',' | ']' | '}' | ' ' | '\t')
    )
}

/// Characters that end a number. nats-server omits `]` here, which makes the
/// last element of `[1, 2]` the *string* "2"; we treat `]` as an ending so it
/// is the integer 2.
fn ends_number(c: Option<char>) -> bool {
    ends_bare(c)
}

fn is_size_suffix(c: char) -> bool {
    matches!(
        c,
        'k' | 'K' | 'm' | 'M' | 'g' | 'G' | 't' | 'T' | 'p' | 'P' | 'e' | 'E'
    )
}

pub(crate) fn describe(c: Option<char>) -> String {
    match c {
        None => "end of file".to_string(),
        Some('\n') => "a newline".to_string(),
        Some('\r') => "a carriage return".to_string(),
        Some('\t') => "a tab".to_string(),
        Some(c) if c.is_control() => format!("character U+{:04X}", u32::from(c)),
        Some(c) => format!("'{c}'"),
    }
}

impl<'s> Cursor<'s> {
    pub(crate) fn new(src: &'s str, file: Option<Arc<Path>>) -> Self {
        // A UTF-8 byte order mark is not part of the text.
        let src = src.strip_prefix('\u{feff}').unwrap_or(src);
        Cursor {
            src,
            pos: 0,
            line: 1,
            col: 1,
            file,
        }
    }

    pub(crate) fn peek(&self) -> Option<char> {
        self.src[self.pos..].chars().next()
    }

    pub(crate) fn peek_second(&self) -> Option<char> {
        let mut it = self.src[self.pos..].chars();
        it.next();
        it.next()
    }

    pub(crate) fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        if c == '\n' {
            self.line = self.line.saturating_add(1);
            self.col = 1;
        } else {
            self.col = self.col.saturating_add(1);
        }
        Some(c)
    }

    pub(crate) fn here(&self) -> Pos {
        Pos {
            file: self.file.clone(),
            line: self.line,
            col: self.col,
        }
    }

    pub(crate) fn err_here(&self, msg: impl Into<String>) -> ConfError {
        ConfError::syntax(self.here(), msg)
    }

    /// Skips spaces and tabs (not newlines).
    pub(crate) fn skip_blanks(&mut self) {
        while matches!(self.peek(), Some(' ' | '\t')) {
            self.bump();
        }
    }

    /// Skips all Unicode white space, newlines included.
    pub(crate) fn skip_space(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.bump();
        }
    }

    /// Whether a `#` or `//` comment starts here.
    pub(crate) fn at_comment(&self) -> bool {
        match self.peek() {
            Some('#') => true,
            Some('/') => self.peek_second() == Some('/'),
            _ => false,
        }
    }

    /// Skips a comment up to (not including) the end of its line.
    pub(crate) fn skip_comment(&mut self) {
        while !matches!(self.peek(), None | Some('\n' | '\r')) {
            self.bump();
        }
    }

    /// Skips white space (newlines included) and comments.
    pub(crate) fn skip_space_and_comments(&mut self) {
        loop {
            self.skip_space();
            if self.at_comment() {
                self.skip_comment();
            } else {
                return;
            }
        }
    }

    /// Scans a key. Quoted keys (`"..."` or `'...'`) take everything up to the
    /// matching quote, with no escapes. Bare keys run up to white space, `=`,
    /// `:` or the end. Returns the key and whether it was bare.
    pub(crate) fn scan_key(&mut self) -> Result<(String, bool), ConfError> {
        let start = self.here();
        match self.peek() {
            Some(q @ ('"' | '\'')) => {
                self.bump();
                let from = self.pos;
                loop {
                    match self.peek() {
                        None => {
                            return Err(ConfError::syntax(
                                start,
                                "unterminated quoted key: no closing quote",
                            ))
                        }
                        Some(c) if c == q => break,
                        Some(_) => {
                            self.bump();
                        }
                    }
                }
                let key = self.src[from..self.pos].to_string();
                self.bump();
                Ok((key, false))
            }
            Some(_) => {
                let from = self.pos;
                // The first character is always part of the key.
                self.bump();
                while !matches!(self.peek(), None | Some('=' | ':'))
                    && !self.peek().is_some_and(char::is_whitespace)
                {
                    self.bump();
                }
                Ok((self.src[from..self.pos].to_string(), true))
            }
            None => Err(self.err_here("expected a key, found end of file")),
        }
    }

    /// Scans the path of an `include` directive, the cursor being just past
    /// the keyword.
    pub(crate) fn scan_include_path(&mut self) -> Result<String, ConfError> {
        self.skip_blanks();
        let start = self.here();
        match self.peek() {
            Some(q @ ('"' | '\'')) => {
                self.bump();
                let from = self.pos;
                loop {
                    match self.peek() {
                        None => {
                            return Err(ConfError::syntax(
                                start,
                                "unterminated include path: no closing quote",
                            ))
                        }
                        Some(c) if c == q => break,
                        Some(_) => {
                            self.bump();
                        }
                    }
                }
                let path = self.src[from..self.pos].to_string();
                self.bump();
                Ok(path)
            }
            c @ (None
            | Some('\n' | '\r' | '[' | '{' | '(' | '\\' | '-' | '0'..='9' | ';' | '}')) => {
                Err(self.err_here(format!(
                    "expected an include path after 'include', found {}",
                    describe(c)
                )))
            }
            Some(_) => {
                let from = self.pos;
                while !matches!(
                    self.peek(),
                    None | Some('\n' | '\r' | ';' | '}' | ' ' | '\t' | '\'')
                ) {
                    self.bump();
                }
                let path = self.src[from..self.pos].to_string();
                if self.peek() == Some('\'') {
                    self.bump();
                }
                Ok(path)
            }
        }
    }

    /// Scans a scalar value starting at the current (non-blank) character,
    /// which must not be `[`, `{`, a newline or the end of input.
    pub(crate) fn scan_scalar(&mut self) -> Result<Scalar, ConfError> {
        match self.peek() {
            Some('"') => self.scan_double_quoted(),
            Some('\'') => self.scan_single_quoted(),
            Some('(') => self.scan_block(),
            Some('-') => self.scan_negative_number(),
            Some('0'..='9') => self.scan_number(),
            Some('.') => Err(self.err_here("floats must start with a digit, not '.'")),
            c => {
                if ends_bare(c) {
                    return Err(self.err_here(format!("expected a value, found {}", describe(c))));
                }
                let from = self.pos;
                self.scan_bare_from(from)
            }
        }
    }

    /// `'...'`: no escapes, may span lines.
    fn scan_single_quoted(&mut self) -> Result<Scalar, ConfError> {
        let start = self.here();
        self.bump();
        let from = self.pos;
        loop {
            match self.peek() {
                None => {
                    return Err(ConfError::syntax(
                        start,
                        "unterminated string: no closing \"'\"",
                    ))
                }
                Some('\'') => break,
                Some(_) => {
                    self.bump();
                }
            }
        }
        let s = self.src[from..self.pos].to_string();
        self.bump();
        Ok(Scalar::Str(s))
    }

    /// `"..."` with the escapes `\t \n \r \" \\ \xHH`; may span lines.
    fn scan_double_quoted(&mut self) -> Result<Scalar, ConfError> {
        let start = self.here();
        self.bump();
        let mut buf: Vec<u8> = Vec::new();
        loop {
            match self.peek() {
                None => {
                    return Err(ConfError::syntax(
                        start,
                        "unterminated string: no closing '\"'",
                    ))
                }
                Some('"') => {
                    self.bump();
                    break;
                }
                Some('\\') => self.scan_escape(&mut buf)?,
                Some(c) => {
                    let mut tmp = [0u8; 4];
                    buf.extend_from_slice(c.encode_utf8(&mut tmp).as_bytes());
                    self.bump();
                }
            }
        }
        self.bytes_to_string(buf, start).map(Scalar::Str)
    }

    fn bytes_to_string(&self, buf: Vec<u8>, start: Pos) -> Result<String, ConfError> {
        String::from_utf8(buf)
            .map_err(|_| ConfError::syntax(start, "string with \\x escapes is not valid UTF-8"))
    }

    /// Handles one backslash escape, the cursor being on the backslash.
    fn scan_escape(&mut self, buf: &mut Vec<u8>) -> Result<(), ConfError> {
        let at = self.here();
        self.bump();
        let c = self.bump();
        let byte = match c {
            Some('t') => b'\t',
            Some('n') => b'\n',
            Some('r') => b'\r',
            Some('"') => b'"',
            Some('\\') => b'\\',
            Some('x') => {
                let hi = self.bump();
                let lo = self.bump();
                match (
                    hi.and_then(|c| c.to_digit(16)),
                    lo.and_then(|c| c.to_digit(16)),
                ) {
                    // Both digits are < 16, so the byte cannot overflow.
                    (Some(h), Some(l)) => (h * 16 + l) as u8,
                    _ => {
                        return Err(ConfError::syntax(
                            at,
                            "expected two hexadecimal digits after '\\x'",
                        ))
                    }
                }
            }
            other => {
                return Err(ConfError::syntax(
                    at,
                    format!(
                        "invalid escape {}: only \\xHH, \\t, \\n, \\r, \\\" and \\\\ are allowed",
                        match other {
                            Some(c) if !c.is_control() => format!("'\\{c}'"),
                            other => format!("'\\' followed by {}", describe(other)),
                        }
                    ),
                ))
            }
        };
        buf.push(byte);
        Ok(())
    }

    /// An unquoted string whose first character is at byte `from` (the
    /// cursor may already be past it, when a number turned out to be text).
    /// Classifies the result as a boolean or `$variable` when it is one and
    /// contains no escapes.
    fn scan_bare_from(&mut self, from: usize) -> Result<Scalar, ConfError> {
        let start = self.here();
        let mut buf: Vec<u8> = self.src.as_bytes()[from..self.pos].to_vec();
        let mut escaped = false;
        loop {
            let c = self.peek();
            if ends_bare(c) {
                break;
            }
            match c {
                // nats-server ends an unquoted string at a single quote and
                // drops the quote.
                Some('\'') => {
                    self.bump();
                    break;
                }
                Some('\\') => {
                    escaped = true;
                    self.scan_escape(&mut buf)?;
                }
                Some(c) => {
                    let mut tmp = [0u8; 4];
                    buf.extend_from_slice(c.encode_utf8(&mut tmp).as_bytes());
                    self.bump();
                }
                None => break,
            }
        }
        let s = self.bytes_to_string(buf, start)?;
        if escaped {
            return Ok(Scalar::Str(s));
        }
        match s.to_ascii_lowercase().as_str() {
            "true" | "yes" | "on" => return Ok(Scalar::Bool(true)),
            "false" | "no" | "off" => return Ok(Scalar::Bool(false)),
            _ => {}
        }
        if let Some(name) = s.strip_prefix('$') {
            return Ok(Scalar::Var(name.to_string()));
        }
        Ok(Scalar::Str(s))
    }

    /// `( ... )`: raw text up to a `)` that stands alone on its line. The
    /// value is everything between the parentheses, so it normally starts and
    /// ends with a newline. (nats-server requires a `\n` or the end right
    /// after the `)`; we also accept `\r`, for CRLF files.)
    fn scan_block(&mut self) -> Result<Scalar, ConfError> {
        let start = self.here();
        self.bump();
        let from = self.pos;
        let mut after_newline = false;
        loop {
            match self.bump() {
                None => {
                    return Err(ConfError::syntax(
                        start,
                        "unterminated block string: no ')' alone on a line closes this '('",
                    ))
                }
                Some(')') if after_newline && matches!(self.peek(), None | Some('\n' | '\r')) => {
                    let end = self.pos - 1;
                    return Ok(Scalar::Str(self.src[from..end].to_string()));
                }
                Some(c) => after_newline = c == '\n',
            }
        }
    }

    fn skip_digits(&mut self) -> usize {
        let mut n = 0;
        while matches!(self.peek(), Some('0'..='9')) {
            self.bump();
            n += 1;
        }
        n
    }

    /// A token that starts with a digit: integer (with optional size suffix),
    /// float, IP-like string (`127.0.0.1:4222`), date-time, or an unquoted
    /// string that merely starts with a digit (`10s`, `4222abc`).
    fn scan_number(&mut self) -> Result<Scalar, ConfError> {
        let from = self.pos;
        let start = self.here();
        let digits = self.skip_digits();
        match self.peek() {
            Some('-') => {
                if digits != 4 {
                    return Err(self.err_here(
                        "dates must be in full ISO8601 Zulu form: YYYY-MM-DDTHH:MM:SSZ",
                    ));
                }
                self.scan_datetime(from, start)
            }
            Some('.') => self.scan_fraction(from, start),
            Some(c) if is_size_suffix(c) => self.scan_suffixed(from, start),
            c if ends_number(c) => self.int_value(from, start),
            _ => self.scan_bare_from(from),
        }
    }

    fn scan_negative_number(&mut self) -> Result<Scalar, ConfError> {
        let from = self.pos;
        let start = self.here();
        self.bump();
        match self.peek() {
            Some('0'..='9') => {}
            Some('.') => return Err(self.err_here("floats must start with a digit, not '.'")),
            c => {
                return Err(
                    self.err_here(format!("expected a digit after '-', found {}", describe(c)))
                )
            }
        }
        self.skip_digits();
        match self.peek() {
            Some('.') => self.scan_fraction(from, start),
            Some(c) if is_size_suffix(c) => self.scan_suffixed(from, start),
            _ => self.int_value(from, start),
        }
    }

    /// After the integer digits, on a `.`: a float, or an IP-like string when
    /// a second `.` follows.
    fn scan_fraction(&mut self, from: usize, start: Pos) -> Result<Scalar, ConfError> {
        self.bump();
        if !matches!(self.peek(), Some('0'..='9')) {
            return Err(self.err_here(format!(
                "floats must have a digit after the '.', found {}",
                describe(self.peek())
            )));
        }
        self.skip_digits();
        if self.peek() == Some('.') {
            while matches!(self.peek(), Some('0'..='9' | '.' | ':' | '-')) {
                self.bump();
            }
            return Ok(Scalar::Str(self.src[from..self.pos].to_string()));
        }
        let text = &self.src[from..self.pos];
        match text.parse::<f64>() {
            Ok(f) if f.is_finite() => Ok(Scalar::Float(f)),
            _ => Err(ConfError::syntax(
                start,
                format!("float '{text}' is out of range"),
            )),
        }
    }

    /// After the digits, on a size-suffix letter. `[bBiI]*` may follow. If
    /// the token then ends, it is an integer; otherwise it is text (`500ms`).
    fn scan_suffixed(&mut self, from: usize, start: Pos) -> Result<Scalar, ConfError> {
        self.bump();
        while matches!(self.peek(), Some('b' | 'B' | 'i' | 'I')) {
            self.bump();
        }
        let c = self.peek();
        if ends_number(c) || matches!(c, Some('0'..='9')) {
            self.int_value(from, start)
        } else {
            self.scan_bare_from(from)
        }
    }

    /// Converts `src[from..pos]` (`-?digits` plus an optional suffix).
    fn int_value(&self, from: usize, start: Pos) -> Result<Scalar, ConfError> {
        let text = &self.src[from..self.pos];
        let split = text
            .find(|c: char| !(c.is_ascii_digit() || c == '-'))
            .unwrap_or(text.len());
        let (num, suffix) = text.split_at(split);
        let out_of_range =
            || ConfError::syntax(start.clone(), format!("integer '{text}' is out of range"));
        let n: i64 = num.parse().map_err(|_| out_of_range())?;
        let (base, power): (i64, u32) = match suffix.to_ascii_lowercase().as_str() {
            "" => (1, 0),
            "k" => (1000, 1),
            "kb" | "ki" | "kib" => (1024, 1),
            "m" => (1000, 2),
            "mb" | "mi" | "mib" => (1024, 2),
            "g" => (1000, 3),
            "gb" | "gi" | "gib" => (1024, 3),
            "t" => (1000, 4),
            "tb" | "ti" | "tib" => (1024, 4),
            "p" => (1000, 5),
            "pb" | "pi" | "pib" => (1024, 5),
            "e" => (1000, 6),
            "eb" | "ei" | "eib" => (1024, 6),
            _ => {
                return Err(ConfError::syntax(
                    start,
                    format!(
                        "invalid size suffix '{suffix}' in '{text}': use k, kb, ki, kib (and m, g, t, p, e likewise)"
                    ),
                ))
            }
        };
        base.checked_pow(power)
            .and_then(|mult| n.checked_mul(mult))
            .map(Scalar::Int)
            .ok_or_else(out_of_range)
    }

    /// `YYYY-MM-DDTHH:MM:SSZ`, the cursor on the first `-`.
    fn scan_datetime(&mut self, from: usize, start: Pos) -> Result<Scalar, ConfError> {
        const FORMAT: &[u8] = b"-00-00T00:00:00Z";
        for &f in FORMAT {
            let c = self.peek();
            let ok = if f == b'0' {
                matches!(c, Some('0'..='9'))
            } else {
                c == Some(char::from(f))
            };
            if !ok {
                let what = if f == b'0' {
                    "a digit".to_string()
                } else {
                    format!("'{}'", char::from(f))
                };
                return Err(self.err_here(format!(
                    "expected {what} in ISO8601 date-time, found {}",
                    describe(c)
                )));
            }
            self.bump();
        }
        let t = &self.src.as_bytes()[from..self.pos];
        let num = |a: usize, b: usize| -> u16 {
            t[a..b]
                .iter()
                .fold(0u16, |acc, d| acc * 10 + u16::from(d - b'0'))
        };
        let year = num(0, 4);
        // Each of these is at most two digits, so at most 99.
        let [month, day, hour, minute, second] =
            [num(5, 7), num(8, 10), num(11, 13), num(14, 16), num(17, 19)].map(|v| v as u8);
        let valid = (1..=12).contains(&month)
            && day >= 1
            && day <= DateTime::days_in_month(year, month)
            && hour < 24
            && minute < 60
            && second < 60;
        if !valid {
            return Err(ConfError::syntax(
                start,
                format!("date-time '{}' is out of range", &self.src[from..self.pos]),
            ));
        }
        Ok(Scalar::DateTime(DateTime {
            year,
            month,
            day,
            hour,
            minute,
            second,
        }))
    }
}
