//! Log lines in nats-server's format, which test harnesses and operators grep:
//! `[pid] 2026/01/02 15:04:05.000000 [INF] message`. Levels map to nats-server's
//! tags: error -> `[ERR]`, warn -> `[WRN]`, info -> `[INF]`, debug -> `[DBG]`,
//! trace -> `[TRC]`; [`fatal`] prints `[FTL]` and exits non-zero.

use std::fmt;
use std::fs::OpenOptions;
use std::path::Path;
use std::sync::{Mutex, OnceLock};

use tracing::{Event, Level, Subscriber};
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::{reload, Registry};

/// Lets a config reload change the level (`debug`, `trace`) of the running logger.
static LEVEL: OnceLock<reload::Handle<LevelFilter, Registry>> = OnceLock::new();

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

struct NatsFormat {
    pid: u32,
    logtime: bool,
}

/// Collects the `message` field and notes a `fatal` marker.
#[derive(Default)]
struct Fields {
    message: String,
    fatal: bool,
}

impl tracing::field::Visit for Fields {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn fmt::Debug) {
        use std::fmt::Write;
        if field.name() == "message" {
            let _ = write!(self.message, "{value:?}");
        }
    }
    fn record_bool(&mut self, field: &tracing::field::Field, value: bool) {
        if field.name() == "fatal" {
            self.fatal = value;
        }
    }
}

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
        write!(w, "[{}] ", self.pid)?;
        if self.logtime {
            write!(
                w,
                "{} ",
                chrono::Local::now().format("%Y/%m/%d %H:%M:%S%.6f")
            )?;
        }
        writeln!(w, "[{tag}] {}", fields.message)
    }
}

/// Installs the global logger. `log_file` appends to a file instead of stderr.
pub fn init(
    debug: bool,
    trace: bool,
    logtime: bool,
    log_file: Option<&Path>,
) -> std::io::Result<()> {
    let (filter, handle) = reload::Layer::new(level_for(debug, trace));
    let format = NatsFormat {
        pid: std::process::id(),
        logtime,
    };
    let layer = tracing_subscriber::fmt::layer().event_format(format);
    // A second init (tests) keeps the first logger: ignoring is right.
    let installed = match log_file {
        Some(path) => {
            let file = OpenOptions::new().create(true).append(true).open(path)?;
            let subscriber = Registry::default()
                .with(filter)
                .with(layer.with_writer(Mutex::new(file)));
            tracing::subscriber::set_global_default(subscriber).is_ok()
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

/// Logs `[FTL] msg` and exits with status 1, as nats-server does on a fatal error.
pub fn fatal(msg: impl fmt::Display) -> ! {
    tracing::error!(fatal = true, "{msg}");
    std::process::exit(1)
}
