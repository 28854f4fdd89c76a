//! The one reader of `/proc/self/stat` (CPU time and resident memory, as
//! nats-server's `pse` reads them), shared by `/varz`, statsz and `/metrics`.
//! The only unsafe code of this crate: `sysconf` for two system constants.

#![allow(unsafe_code)]

/// (utime + stime in clock ticks, rss in pages) from `/proc/self/stat`.
pub fn read() -> Option<(u64, i64)> {
    let s = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name may hold spaces: count fields after its closing ')'.
    let rest = &s[s.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3 (state); utime is 14, stime 15, rss 24.
    let utime: u64 = f.get(11)?.parse().ok()?;
    let stime: u64 = f.get(12)?.parse().ok()?;
    let rss: i64 = f.get(21)?.parse().ok()?;
    Some((utime + stime, rss))
}

/// Clock ticks per second (`_SC_CLK_TCK`, 100 if unknown).
pub fn clock_ticks() -> f64 {
    sysconf(libc::_SC_CLK_TCK, 100) as f64
}

/// The page size in bytes (`_SC_PAGESIZE`, 4096 if unknown).
pub fn page_size() -> i64 {
    sysconf(libc::_SC_PAGESIZE, 4096)
}

fn sysconf(name: libc::c_int, default: i64) -> i64 {
    // SAFETY: sysconf only reads a system constant.
    let v = unsafe { libc::sysconf(name) };
    if v > 0 {
        v as i64
    } else {
        default
    }
}
