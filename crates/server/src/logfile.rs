//! The log file: appends whole log lines, rotates by size like nats-server
//! (`logfile_size_limit`: the full file is renamed to
//! `<name>.YYYY.MM.DD.hh.mm.ss.nnnnnnnnn` and a fresh one started;
//! `logfile_max_num` keeps that many files counting the live one), and
//! reopens on request (SIGUSR1, for external log rotation tools).

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use parking_lot::Mutex;

/// Formats a line the log file writes on its own behalf (rotation notes),
/// in whatever format the logger uses; `error` picks the level.
pub type NoteFormat = Box<dyn Fn(bool, &str) -> String + Send + Sync>;

pub struct LogFile {
    path: PathBuf,
    /// Rotate once the file grows past this many bytes; 0 = never.
    limit: u64,
    /// Files to keep, the live one included; 0 = keep all.
    max_num: usize,
    note: NoteFormat,
    inner: Mutex<Inner>,
}

struct Inner {
    file: File,
    size: u64,
}

fn open_append(path: &Path) -> std::io::Result<(File, u64)> {
    let file = OpenOptions::new().create(true).append(true).open(path)?;
    let size = file.metadata()?.len();
    Ok((file, size))
}

impl LogFile {
    pub fn open(
        path: &Path,
        limit: u64,
        max_num: usize,
        note: NoteFormat,
    ) -> std::io::Result<LogFile> {
        let (file, size) = open_append(path)?;
        Ok(LogFile {
            path: path.to_path_buf(),
            limit,
            max_num,
            note,
            inner: Mutex::new(Inner { file, size }),
        })
    }

    /// Appends one formatted line (or several), rotating afterwards if the
    /// file is now over the limit.
    pub fn write_line(&self, buf: &[u8]) -> std::io::Result<()> {
        let mut inner = self.inner.lock();
        inner.file.write_all(buf)?;
        inner.size += buf.len() as u64;
        if self.limit > 0 && inner.size > self.limit {
            self.rotate(&mut inner);
        }
        Ok(())
    }

    /// Closes and reopens the file at its path (after an external tool moved it).
    pub fn reopen(&self) -> std::io::Result<()> {
        let (file, size) = open_append(&self.path)?;
        let mut inner = self.inner.lock();
        inner.file = file;
        inner.size = size;
        Ok(())
    }

    fn rotate(&self, inner: &mut Inner) {
        let now = chrono::Local::now();
        let backup = PathBuf::from(format!(
            "{}.{}",
            self.path.display(),
            now.format("%Y.%m.%d.%H.%M.%S.%9f")
        ));
        if let Err(e) = std::fs::rename(&self.path, &backup) {
            let line = (self.note)(true, &format!("Unable to rotate logfile: {e}"));
            let _ = inner.file.write_all(line.as_bytes());
            inner.size += line.len() as u64;
            return;
        }
        match open_append(&self.path) {
            Ok((file, size)) => {
                inner.file = file;
                inner.size = size;
            }
            Err(e) => {
                // Keep writing to the renamed file rather than losing lines.
                let line = (self.note)(true, &format!("Unable to re-open the logfile: {e}"));
                let _ = inner.file.write_all(line.as_bytes());
                return;
            }
        }
        let note = format!(
            "Rotated log, backup saved as {:?}",
            backup.display().to_string()
        );
        self.note_line(inner, false, &note);
        if self.max_num > 0 {
            self.purge(inner);
        }
    }

    fn note_line(&self, inner: &mut Inner, error: bool, msg: &str) {
        let line = (self.note)(error, msg);
        if inner.file.write_all(line.as_bytes()).is_ok() {
            inner.size += line.len() as u64;
        }
    }

    /// Removes the oldest backups beyond `max_num - 1`.
    fn purge(&self, inner: &mut Inner) {
        let dir = match self.path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let Some(base) = self
            .path
            .file_name()
            .map(|b| b.to_string_lossy().into_owned())
        else {
            return;
        };
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) => {
                let msg = format!(
                    "Unable to read directory {:?} for log purge ({e}), will attempt next rotation",
                    dir.display().to_string()
                );
                self.note_line(inner, true, &msg);
                return;
            }
        };
        let prefix = format!("{base}.");
        let mut backups: Vec<String> = entries
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.strip_prefix(&prefix).is_some_and(is_backup_stamp))
            .collect();
        // The stamps sort oldest first.
        backups.sort();
        let keep = self.max_num.saturating_sub(1);
        let excess = backups.len().saturating_sub(keep);
        for name in backups.into_iter().take(excess) {
            let msg = match std::fs::remove_file(dir.join(&name)) {
                Ok(()) => format!("Purged log file {name:?}"),
                Err(e) => {
                    let msg = format!("Unable to remove backup log file {name:?} ({e}), will attempt next rotation");
                    self.note_line(inner, true, &msg);
                    return;
                }
            };
            self.note_line(inner, false, &msg);
        }
    }
}

/// `YYYY.MM.DD.hh.mm.ss.n...`: seven dot-separated runs of digits.
fn is_backup_stamp(s: &str) -> bool {
    let parts: Vec<&str> = s.split('.').collect();
    let widths = [4, 2, 2, 2, 2, 2];
    parts.len() == 7
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
        && parts.iter().zip(widths).all(|(p, w)| p.len() == w)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn note() -> NoteFormat {
        Box::new(|_, m| format!("NOTE {m}\n"))
    }

    #[test]
    fn stamps() {
        assert!(is_backup_stamp("2026.01.02.03.04.05.123456789"));
        assert!(!is_backup_stamp("2026.01.02.03.04.05"));
        assert!(!is_backup_stamp("old"));
    }

    #[test]
    fn rotates_and_keeps_max_num_files() -> std::io::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("s.log");
        let f = LogFile::open(&path, 100, 3, note())?;
        for i in 0..40 {
            f.write_line(format!("line {i:04} padding padding\n").as_bytes())?;
        }
        let names: Vec<String> = std::fs::read_dir(dir.path())?
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        // The live file and two backups.
        assert_eq!(names.len(), 3, "{names:?}");
        let live = std::fs::read_to_string(&path)?;
        assert!(live.len() < 200, "{live}");
        assert!(
            live.contains("line 0039") || live.contains("Rotated log"),
            "{live}"
        );
        Ok(())
    }
}
