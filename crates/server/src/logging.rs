//! Log lines in nats-server's format, which test harnesses and operators grep:
//! `[pid] 2026/01/02 15:04:05.000000 [INF] message`. Levels map to nats-server's
//! tags: error -> `[ERR]`, warn -> `[WRN]`, info -> `[INF]`, debug -> `[DBG]`,
//! trace -> `[TRC]`; [`fatal`] prints `[FTL]` and exits non-zero.
//!
//! Options: `logtime` (timestamps), `logtime_utc`, a log file with size
//! rotation (see [`crate::logfile`]) that SIGUSR1 reopens, and rnats's own
//! JSON lines (`log_format: json`, `--log_json`): one object per line with
//! `time`, `level`, `pid`, `msg` and any structured fields of the event.

use std::fmt;
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use tracing::{Event, Level, Subscriber};
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, MakeWriter};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::{reload, Registry};

use crate::logfile::LogFile;

/// Lets a config reload change the level (`debug`, `trace`) of the running logger.
static LEVEL: OnceLock<reload::Handle<LevelFilter, Registry>> = OnceLock::new();
/// The log file, when logging goes to one (for SIGUSR1 reopen).
static FILE: OnceLock<Arc<LogFile>> = OnceLock::new();

/// How to log, from the options.
#[derive(Clone, Debug, Default)]
pub struct LogSettings {
    pub debug: bool,
    pub trace: bool,
    pub logtime: bool,
    pub logtime_utc: bool,
    /// JSON lines instead of nats-server's text lines.
    pub json: bool,
    pub file: Option<PathBuf>,
    /// Rotate the file past this many bytes; 0 = never.
    pub size_limit: u64,
    /// Files kept on rotation, the live one included; 0 = all.
    pub max_num: usize,
}

impl LogSettings {
    pub fn of(opts: &crate::options::Options) -> LogSettings {
        LogSettings {
            debug: opts.debug,
            trace: opts.trace,
            logtime: opts.logtime,
            logtime_utc: opts.logtime_utc,
            json: opts.log_json,
            file: opts.log_file.clone(),
            size_limit: opts.log_size_limit,
            max_num: opts.log_max_num,
        }
    }
}

fn level_for(debug: bool, trace: bool) -> LevelFilter {
    if trace {
        LevelFilter::TRACE
    } else if debug {
        LevelFilter::DEBUG
    } else {
        LevelFilter::INFO
    }
}

/// Changes the log level of the running logger (config reload).
pub fn set_level(debug: bool, trace: bool) {
    if let Some(h) = LEVEL.get() {
        let _ = h.modify(|l| *l = level_for(debug, trace));
    }
}

/// What a line looks like; shared by events and the log file's own notes.
#[derive(Clone, Copy)]
struct LineFormat {
    pid: u32,
    logtime: bool,
    utc: bool,
    json: bool,
}

impl LineFormat {
    fn timestamp(&self, text: bool) -> String {
        let fmt = if text {
            "%Y/%m/%d %H:%M:%S%.6f"
        } else {
            "%Y-%m-%dT%H:%M:%S%.6f%:z"
        };
        if self.utc {
            chrono::Utc::now().format(fmt).to_string()
        } else {
            chrono::Local::now().format(fmt).to_string()
        }
    }

    /// One line for `tag` (`INF`...) and `message`, plus structured fields (JSON only).
    fn line(
        &self,
        tag: &str,
        message: &str,
        fields: serde_json::Map<String, serde_json::Value>,
    ) -> String {
        if self.json {
            // Built by hand to keep `time, level, pid, msg` first, in that order.
            let q = |v: &str| serde_json::Value::from(v).to_string();
            let mut s = String::from("{");
            if self.logtime {
                s.push_str(&format!("\"time\":{},", q(&self.timestamp(false))));
            }
            s.push_str(&format!(
                "\"level\":{},\"pid\":{},\"msg\":{}",
                q(json_level(tag)),
                self.pid,
                q(message)
            ));
            for (k, v) in fields {
                if !matches!(k.as_str(), "time" | "level" | "pid" | "msg") {
                    s.push_str(&format!(",{}:{v}", q(&k)));
                }
            }
            s.push_str("}\n");
            s
        } else if self.logtime {
            format!(
                "[{}] {} [{tag}] {message}\n",
                self.pid,
                self.timestamp(true)
            )
        } else {
            format!("[{}] [{tag}] {message}\n", self.pid)
        }
    }
}

fn json_level(tag: &str) -> &'static str {
    match tag {
        "FTL" => "fatal",
        "ERR" => "error",
        "WRN" => "warn",
        "DBG" => "debug",
        "TRC" => "trace",
        _ => "info",
    }
}

/// Collects the `message`, the other fields (for JSON), and a `fatal` marker.
#[derive(Default)]
struct Fields {
    message: String,
    fatal: bool,
    extra: serde_json::Map<String, serde_json::Value>,
}

impl tracing::field::Visit for Fields {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn fmt::Debug) {
        use std::fmt::Write;
        if field.name() == "message" {
            let _ = write!(self.message, "{value:?}");
        } else {
            self.extra
                .insert(field.name().into(), format!("{value:?}").into());
        }
    }
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        if field.name() == "message" {
            self.message.push_str(value);
        } else {
            self.extra.insert(field.name().into(), value.into());
        }
    }
    fn record_i64(&mut self, field: &tracing::field::Field, value: i64) {
        self.extra.insert(field.name().into(), value.into());
    }
    fn record_u64(&mut self, field: &tracing::field::Field, value: u64) {
        self.extra.insert(field.name().into(), value.into());
    }
    fn record_bool(&mut self, field: &tracing::field::Field, value: bool) {
        if field.name() == "fatal" {
            self.fatal = value;
        } else {
            self.extra.insert(field.name().into(), value.into());
        }
    }
}

struct NatsFormat(LineFormat);

impl<S, N> FormatEvent<S, N> for NatsFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &FmtContext<'_, S, N>,
        mut w: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let mut fields = Fields::default();
        event.record(&mut fields);
        let tag = match *event.metadata().level() {
            _ if fields.fatal => "FTL",
            Level::ERROR => "ERR",
            Level::WARN => "WRN",
            Level::INFO => "INF",
            Level::DEBUG => "DBG",
            Level::TRACE => "TRC",
        };
        w.write_str(&self.0.line(tag, &fields.message, fields.extra))
    }
}

/// Hands the formatted event to the log file in one piece.
#[derive(Clone)]
struct FileWriter(Arc<LogFile>);

impl Write for FileWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.write_line(buf)?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for FileWriter {
    type Writer = FileWriter;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// Installs the global logger.
pub fn init(s: &LogSettings) -> std::io::Result<()> {
    let (filter, handle) = reload::Layer::new(level_for(s.debug, s.trace));
    let format = LineFormat {
        pid: std::process::id(),
        logtime: s.logtime,
        utc: s.logtime_utc,
        json: s.json,
    };
    let layer = tracing_subscriber::fmt::layer().event_format(NatsFormat(format));
    // A second init (tests) keeps the first logger: ignoring is right.
    let installed = match &s.file {
        Some(path) => {
            let note = Box::new(move |error: bool, msg: &str| {
                let tag = if error { "ERR" } else { "INF" };
                format.line(tag, msg, serde_json::Map::new())
            });
            let file = Arc::new(LogFile::open(path, s.size_limit, s.max_num, note)?);
            let subscriber = Registry::default()
                .with(filter)
                .with(layer.with_writer(FileWriter(file.clone())));
            let ok = tracing::subscriber::set_global_default(subscriber).is_ok();
            if ok {
                let _ = FILE.set(file);
            }
            ok
        }
        None => {
            let subscriber = Registry::default()
                .with(filter)
                .with(layer.with_writer(std::io::stderr));
            tracing::subscriber::set_global_default(subscriber).is_ok()
        }
    };
    if installed {
        let _ = LEVEL.set(handle);
    }
    Ok(())
}

/// SIGUSR1: reopens the log file at its path, as nats-server does for
/// external rotation tools.
pub fn reopen() {
    match FILE.get() {
        None => tracing::info!("File log re-open ignored, not a file logger"),
        Some(f) => match f.reopen() {
            Ok(()) => tracing::info!("File log re-opened"),
            Err(e) => tracing::error!("Unable to re-open the log file: {e}"),
        },
    }
}

/// Logs `[FTL] msg` and exits with status 1, as nats-server does on a fatal error.
pub fn fatal(msg: impl fmt::Display) -> ! {
    tracing::error!(fatal = true, "{msg}");
    std::process::exit(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_lines_carry_fields() {
        let f = LineFormat {
            pid: 7,
            logtime: true,
            utc: true,
            json: true,
        };
        let mut extra = serde_json::Map::new();
        extra.insert("stream".into(), "ORDERS".into());
        let line = f.line("WRN", "hello \"x\"", extra);
        assert!(line.ends_with('\n'));
        let v: serde_json::Value = serde_json::from_str(line.trim_end()).unwrap_or_default();
        assert_eq!(v["level"], "warn");
        assert_eq!(v["msg"], "hello \"x\"");
        assert_eq!(v["pid"], 7);
        assert_eq!(v["stream"], "ORDERS");
        assert!(v["time"].as_str().is_some_and(|t| t.ends_with("+00:00")));
    }

    #[test]
    fn text_lines_like_nats_server() {
        let f = LineFormat {
            pid: 9,
            logtime: false,
            utc: false,
            json: false,
        };
        assert_eq!(
            f.line("INF", "ready", Default::default()),
            "[9] [INF] ready\n"
        );
    }
}
