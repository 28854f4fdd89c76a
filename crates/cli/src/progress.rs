//! A small progress bar drawn on stderr, only when stderr is a terminal, so
//! scripts and pipes never see control characters.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use crate::output::ibytes;

/// Progress of a transfer of known size (bytes or messages).
pub struct Progress {
    label: String,
    total: u64,
    done: u64,
    bytes: bool,
    last_draw: Option<Instant>,
    enabled: bool,
}

impl Progress {
    /// A bar over `total` units, drawn only if `wanted` and stderr is a terminal.
    pub fn new(label: impl Into<String>, total: u64, bytes: bool, wanted: bool) -> Progress {
        Progress {
            label: label.into(),
            total,
            done: 0,
            bytes,
            last_draw: None,
            enabled: wanted && total > 0 && std::io::stderr().is_terminal(),
        }
    }

    pub fn add(&mut self, n: u64) {
        self.set(self.done.saturating_add(n));
    }

    pub fn set(&mut self, done: u64) {
        self.done = done.min(self.total);
        if !self.enabled {
            return;
        }
        // Redraw at most ten times a second, and always at the end.
        let due = self
            .last_draw
            .is_none_or(|t| t.elapsed() >= Duration::from_millis(100));
        if due || self.done == self.total {
            self.draw();
            self.last_draw = Some(Instant::now());
        }
    }

    fn draw(&self) {
        const WIDTH: u64 = 40;
        let filled = (self.done * WIDTH / self.total.max(1)) as usize;
        let pct = self.done * 100 / self.total.max(1);
        let amount = if self.bytes {
            format!("{} / {}", ibytes(self.done), ibytes(self.total))
        } else {
            format!("{} / {}", self.done, self.total)
        };
        let mut err = std::io::stderr().lock();
        let _ = write!(
            err,
            "\r{} [{}{}] {pct:>3}% {amount}\x1b[K",
            self.label,
            "█".repeat(filled),
            "░".repeat(WIDTH as usize - filled),
        );
        let _ = err.flush();
    }

    /// End the bar's line so following output starts on a fresh line.
    pub fn finish(&mut self) {
        if self.enabled && self.last_draw.is_some() {
            self.draw();
            eprintln!();
            self.enabled = false;
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.finish();
    }
}
