//! Human output helpers: tables, aligned key/value columns, sizes, durations,
//! numbers, and the duration/size parsers used by flags.

use std::time::Duration;

/// Parse a duration the way the nats CLI does: `1y`, `2m`, `1h30m`, `500ms`,
/// `10s`, `1d`, `2w`, `1M` (30 days); a bare number is seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    parse_signed_duration(s).and_then(|(neg, d)| {
        if neg {
            Err(format!("negative duration {s:?}"))
        } else {
            Ok(d)
        }
    })
}

/// Like [`parse_duration`] but also accepts a leading `-` (e.g. `-1`, `-1s`),
/// returning whether the value was negative.
pub fn parse_signed_duration(s: &str) -> Result<(bool, Duration), String> {
    let t = s.trim();
    let (neg, t) = match t.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, t),
    };
    if t.is_empty() {
        return Err(format!("invalid duration {s:?}"));
    }
    if let Ok(n) = t.parse::<f64>() {
        return Ok((neg, Duration::from_secs_f64(n)));
    }
    let mut total = 0f64;
    let mut rest = t;
    while !rest.is_empty() {
        let num_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if num_end == 0 {
            return Err(format!("invalid duration {s:?}"));
        }
        let n: f64 = rest[..num_end]
            .parse()
            .map_err(|_| format!("invalid duration {s:?}"))?;
        rest = &rest[num_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = &rest[..unit_end];
        rest = &rest[unit_end..];
        let secs = match unit {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" | "" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            "d" => 86400.0,
            "w" => 7.0 * 86400.0,
            "M" => 30.0 * 86400.0,
            "y" => 365.0 * 86400.0,
            _ => return Err(format!("invalid duration {s:?}: unknown unit {unit:?}")),
        };
        total += n * secs;
    }
    Ok((neg, Duration::from_secs_f64(total)))
}

/// Parse a size like `1024`, `1K`, `256MB`, `1GiB`, `-1` into bytes.
pub fn parse_bytes(s: &str) -> Result<i64, String> {
    let t = s.trim();
    if let Ok(n) = t.parse::<i64>() {
        return Ok(n);
    }
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .ok_or_else(|| format!("invalid size {s:?}"))?;
    let n: f64 = t[..split]
        .parse()
        .map_err(|_| format!("invalid size {s:?}"))?;
    let mult: f64 = match t[split..].trim().to_ascii_uppercase().as_str() {
        "B" => 1.0,
        "K" | "KB" | "KIB" => 1024.0,
        "M" | "MB" | "MIB" => 1024f64.powi(2),
        "G" | "GB" | "GIB" => 1024f64.powi(3),
        "T" | "TB" | "TIB" => 1024f64.powi(4),
        "P" | "PB" | "PIB" => 1024f64.powi(5),
        u => return Err(format!("invalid size {s:?}: unknown unit {u:?}")),
    };
    Ok((n * mult) as i64)
}

/// Sizes in IEC units like the nats CLI (`humanize.IBytes`): `0 B`, `512 B`,
/// `1.2 KiB`, `15 MiB`.
pub fn ibytes(n: u64) -> String {
    if n < 1024 {
        return format!("{n} B");
    }
    const UNITS: [&str; 6] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    let mut v = n as f64 / 1024.0;
    let mut i = 0;
    while v >= 1024.0 && i < UNITS.len() - 1 {
        v /= 1024.0;
        i += 1;
    }
    if v < 10.0 {
        format!("{v:.1} {}", UNITS[i])
    } else {
        format!("{v:.0} {}", UNITS[i])
    }
}

/// Durations like the nats CLI: `2m0s`, `1y0d0h0m0s`, `1.50s`, `20ms`.
pub fn human_duration(d: Duration) -> String {
    if d.is_zero() {
        return "0s".into();
    }
    let secs = d.as_secs();
    let (mins, hrs, days) = (secs / 60, secs / 3600, secs / 86400);
    let yrs = days / 365;
    if yrs > 0 {
        format!(
            "{}y{}d{}h{}m{}s",
            yrs,
            days % 365,
            hrs % 24,
            mins % 60,
            secs % 60
        )
    } else if days > 0 {
        format!("{}d{}h{}m{}s", days, hrs % 24, mins % 60, secs % 60)
    } else if hrs > 0 {
        format!("{}h{}m{}s", hrs, mins % 60, secs % 60)
    } else if mins > 0 {
        format!("{}m{}s", mins, secs % 60)
    } else if secs > 0 {
        format!("{:.2}s", d.as_secs_f64())
    } else if d.as_millis() > 0 {
        format!("{}ms", d.as_millis())
    } else {
        format!("{}µs", d.as_micros())
    }
}

/// A nanosecond count from the JetStream API as a human duration.
pub fn nanos(n: i64) -> String {
    human_duration(Duration::from_nanos(n.max(0) as u64))
}

/// Integers with thousands separators: `1,234,567`.
pub fn num<T: std::fmt::Display>(n: T) -> String {
    let s = n.to_string();
    let (sign, digits) = match s.strip_prefix('-') {
        Some(d) => ("-", d),
        None => ("", s.as_str()),
    };
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    format!("{sign}{out}")
}

/// Print JSON the way the nats CLI does (two-space indented).
pub fn print_json(v: &serde_json::Value) {
    println!(
        "{}",
        serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string())
    );
}

/// A log line on stderr prefixed with the local time, like Go's `log`.
pub fn log(msg: impl AsRef<str>) {
    eprintln!(
        "{} {}",
        chrono::Local::now().format("%H:%M:%S"),
        msg.as_ref()
    );
}

fn width(s: &str) -> usize {
    s.chars().count()
}

/// A boxed table with an optional title, like the nats CLI's tables.
pub struct Table {
    title: String,
    headers: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(title: impl Into<String>, headers: &[&str]) -> Table {
        Table {
            title: title.into(),
            headers: headers.iter().map(|s| s.to_string()).collect(),
            rows: Vec::new(),
        }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    pub fn render(&self) -> String {
        let n = self.headers.len();
        let mut w: Vec<usize> = self.headers.iter().map(|h| width(h)).collect();
        for r in &self.rows {
            for (i, c) in r.iter().enumerate().take(n) {
                w[i] = w[i].max(width(c));
            }
        }
        // Inner width of the whole table (cells plus " │ " separators).
        let inner: usize = w.iter().sum::<usize>() + 3 * (n - 1) + 2;
        let tw = width(&self.title);
        if tw + 2 > inner {
            let extra = tw + 2 - inner;
            w[n - 1] += extra;
        }
        let inner: usize = w.iter().sum::<usize>() + 3 * (n - 1) + 2;
        let line = |l: &str, m: &str, r: &str| {
            let mut s = String::from(l);
            for (i, cw) in w.iter().enumerate() {
                s.push_str(&"─".repeat(cw + 2));
                s.push_str(if i + 1 == n { r } else { m });
            }
            s
        };
        let cells = |cs: &[String]| {
            let mut s = String::from("│");
            for (i, cw) in w.iter().enumerate() {
                let c = cs.get(i).map(String::as_str).unwrap_or("");
                s.push(' ');
                s.push_str(c);
                s.push_str(&" ".repeat(cw - width(c)));
                s.push_str(" │");
            }
            s
        };
        let mut out = Vec::new();
        if self.title.is_empty() {
            out.push(line("╭", "┬", "╮"));
        } else {
            out.push(format!("╭{}╮", "─".repeat(inner)));
            let pad = inner - tw;
            out.push(format!(
                "│{}{}{}│",
                " ".repeat(pad / 2),
                self.title,
                " ".repeat(pad - pad / 2)
            ));
            out.push(line("├", "┬", "┤"));
        }
        out.push(cells(&self.headers));
        out.push(line("├", "┼", "┤"));
        for r in &self.rows {
            out.push(cells(r));
        }
        out.push(line("╰", "┴", "╯"));
        out.join("\n")
    }
}

/// Right-aligned `Key: value` columns with section titles, like the nats
/// CLI's info views.
#[derive(Default)]
pub struct Columns {
    heading: String,
    /// (section title, rows)
    sections: Vec<(String, Vec<(String, String)>)>,
}

impl Columns {
    pub fn new(heading: impl Into<String>) -> Columns {
        Columns {
            heading: heading.into(),
            sections: vec![(String::new(), Vec::new())],
        }
    }

    pub fn section(&mut self, title: &str) {
        self.sections.push((title.to_string(), Vec::new()));
    }

    pub fn row(&mut self, k: &str, v: impl Into<String>) {
        self.sections
            .last_mut()
            .expect("a section")
            .1
            .push((k.to_string(), v.into()));
    }

    pub fn row_if(&mut self, cond: bool, k: &str, v: impl Into<String>) {
        if cond {
            self.row(k, v);
        }
    }

    pub fn render(&self) -> String {
        let kw = self
            .sections
            .iter()
            .flat_map(|s| s.1.iter())
            .map(|(k, _)| width(k))
            .max()
            .unwrap_or(0);
        let mut out = String::new();
        if !self.heading.is_empty() {
            out.push_str(&self.heading);
            out.push_str("\n\n");
        }
        for (title, rows) in &self.sections {
            if title.is_empty() && rows.is_empty() {
                continue;
            }
            if !title.is_empty() {
                out.push_str(title);
                out.push_str(":\n\n");
            }
            for (k, v) in rows {
                if k.is_empty() {
                    out.push_str(&format!("{}  {}\n", " ".repeat(kw), v));
                } else {
                    out.push_str(&format!("{}{}: {}\n", " ".repeat(kw - width(k)), k, v));
                }
            }
            out.push('\n');
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(
            parse_duration("1y").unwrap(),
            Duration::from_secs(365 * 86400)
        );
        assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert!(parse_duration("5x").is_err());
        assert_eq!(human_duration(Duration::from_secs(120)), "2m0s");
        assert_eq!(
            human_duration(Duration::from_secs(365 * 86400)),
            "1y0d0h0m0s"
        );
        assert_eq!(human_duration(Duration::from_millis(1500)), "1.50s");
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_bytes("-1").unwrap(), -1);
        assert_eq!(parse_bytes("1K").unwrap(), 1024);
        assert_eq!(parse_bytes("256MB").unwrap(), 256 * 1024 * 1024);
        assert_eq!(ibytes(0), "0 B");
        assert_eq!(ibytes(1229), "1.2 KiB");
        assert_eq!(ibytes(15 * 1024 * 1024), "15 MiB");
        assert_eq!(num(1234567), "1,234,567");
        assert_eq!(num(12), "12");
    }

    #[test]
    fn table_aligns() {
        let mut t = Table::new("Streams", &["Name", "Messages"]);
        t.row(vec!["ORDERS".into(), "3".into()]);
        let r = t.render();
        let widths: Vec<usize> = r.lines().map(width).collect();
        assert!(widths.iter().all(|w| *w == widths[0]), "{r}");
    }
}
