//! Process signals, both directions: trapping them in the running server
//! (SIGTERM/SIGINT shut down, SIGUSR2 lame duck, SIGHUP reload, SIGUSR1 reopen
//! logs), and `--signal <cmd>[=<pid>]` to send one to a running server.

use std::path::Path;
use std::sync::Arc;

use tokio::signal::unix::{signal, Signal, SignalKind};

use crate::reload::{self, Loader};
use crate::server::{self, ServerState};

/// How the server's run ended.
pub enum Stop {
    Shutdown,
    LameDuckDone,
}

/// The signals the server handles, installed before it reports ready so a
/// signal sent right after `Server is ready` is never handled by the default
/// action (which would kill the process).
pub struct Signals {
    term: Signal,
    int: Signal,
    usr2: Signal,
    hup: Signal,
    usr1: Signal,
}

pub fn install() -> std::io::Result<Signals> {
    Ok(Signals {
        term: signal(SignalKind::terminate())?,
        int: signal(SignalKind::interrupt())?,
        usr2: signal(SignalKind::user_defined2())?,
        hup: signal(SignalKind::hangup())?,
        usr1: signal(SignalKind::user_defined1())?,
    })
}

/// Waits for a signal that ends the server, handling the others meanwhile.
pub async fn wait(signals: Signals, state: Arc<ServerState>, loader: Arc<Loader>) -> Stop {
    let Signals {
        mut term,
        mut int,
        mut usr2,
        mut hup,
        mut usr1,
    } = signals;
    loop {
        tokio::select! {
            _ = term.recv() => {
                tracing::info!("Trapped \"terminated\" signal");
                return Stop::Shutdown;
            }
            _ = int.recv() => {
                tracing::info!("Trapped \"interrupt\" signal");
                return Stop::Shutdown;
            }
            _ = usr2.recv() => {
                server::lame_duck(state.clone()).await;
                return Stop::LameDuckDone;
            }
            _ = hup.recv() => {
                tracing::info!("Trapped \"hangup\" signal");
                match reload::reload(&state, &*loader) {
                    Ok(()) => tracing::info!("Reloaded server configuration"),
                    Err(e) => tracing::error!("Failed to reload server configuration: {e}"),
                }
            }
            _ = usr1.recv() => {
                crate::logging::reopen();
            }
        }
    }
}

/// `--signal cmd[=pid|=pidfile]`: sends the matching signal to a running
/// server. Without a pid, the single running `rnats-server` process is used.
pub fn send(spec: &str) -> Result<(), String> {
    let (cmd, target) = match spec.split_once('=') {
        Some((c, t)) => (c, Some(t)),
        None => (spec, None),
    };
    let sig = match cmd.to_ascii_lowercase().as_str() {
        "stop" => libc::SIGKILL,
        "quit" => libc::SIGINT,
        "term" => libc::SIGTERM,
        "reopen" => libc::SIGUSR1,
        "reload" => libc::SIGHUP,
        "ldm" => libc::SIGUSR2,
        other => return Err(format!("unknown signal {other:?}")),
    };
    let pid = match target {
        Some(t) => match t.parse::<i32>() {
            Ok(pid) => pid,
            Err(_) => read_pid_file(Path::new(t))?,
        },
        None => find_single_server()?,
    };
    // SAFETY: kill(2) with a pid and a valid signal number has no memory effects.
    let rc = unsafe { libc::kill(pid, sig) };
    if rc != 0 {
        return Err(format!(
            "unable to signal process {pid}: {}",
            std::io::Error::last_os_error()
        ));
    }
    Ok(())
}

fn read_pid_file(path: &Path) -> Result<i32, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("could not read pid file {}: {e}", path.display()))?;
    text.trim()
        .parse()
        .map_err(|_| format!("invalid pid file {}: {:?}", path.display(), text.trim()))
}

fn find_single_server() -> Result<i32, String> {
    let me = std::process::id() as i32;
    let mut found = Vec::new();
    let dir = std::fs::read_dir("/proc").map_err(|e| e.to_string())?;
    for entry in dir.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        if pid == me {
            continue;
        }
        if let Ok(comm) = std::fs::read_to_string(entry.path().join("comm")) {
            if comm.trim() == "rnats-server" {
                found.push(pid);
            }
        }
    }
    match found.as_slice() {
        [pid] => Ok(*pid),
        [] => Err("no rnats-server process running".into()),
        _ => Err(format!(
            "multiple rnats-server processes running ({found:?}): name one with =<pid>"
        )),
    }
}
