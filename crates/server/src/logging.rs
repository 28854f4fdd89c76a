//! Log lines in nats-server's format, which test harnesses and operators grep:
//! `[pid] 2026/01/02 15:04:05.000000 [INF] message`. Levels map to nats-server's
//! tags: error -> `[ERR]`, warn -> `[WRN]`, info -> `[INF]`, debug -> `[DBG]`,
//! trace -> `[TRC]`; [`fatal`] prints `[FTL]` and exits non-zero.

use std::fmt;
use std::fs::OpenOptions;
use std::path::Path;
use std::sync::Mutex;

use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

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
    let level = if trace {
        Level::TRACE
    } else if debug {
        Level::DEBUG
    } else {
        Level::INFO
    };
    let format = NatsFormat {
        pid: std::process::id(),
        logtime,
    };
    let builder = tracing_subscriber::fmt()
        .with_max_level(level)
        .event_format(format);
    // A second init (tests, reload) keeps the first logger: ignoring is right.
    match log_file {
        Some(path) => {
            let file = OpenOptions::new().create(true).append(true).open(path)?;
            let _ = builder.with_writer(Mutex::new(file)).try_init();
        }
        None => {
            let _ = builder.with_writer(std::io::stderr).try_init();
        }
    }
    Ok(())
}

/// Logs `[FTL] msg` and exits with status 1, as nats-server does on a fatal error.
pub fn fatal(msg: impl fmt::Display) -> ! {
    tracing::error!(fatal = true, "{msg}");
    std::process::exit(1)
}
