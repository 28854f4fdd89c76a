//! Rough FileStore throughput: 1M 128-byte appends with SyncPolicy::Always (group commit)
//! and Interval, then the time to recover (reopen and rebuild the index by scanning).
//! Run: cargo run --release -p rnats-store --example store_bench [count]

use std::time::{Duration, Instant};

use rnats_store::*;

fn main() {
    let n: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let payload = vec![b'x'; 128];
    let base = std::env::temp_dir().join(format!("rnats-store-bench-{}", std::process::id()));
    for (name, sync) in [
        ("always", SyncPolicy::Always),
        (
            "interval(2m)",
            SyncPolicy::Interval(Duration::from_secs(120)),
        ),
    ] {
        let dir = base.join(name.replace(['(', ')'], "_"));
        let _ = std::fs::remove_dir_all(&dir);
        let cfg = FileStoreConfig {
            dir: dir.clone(),
            block_size: FileStoreConfig::DEFAULT_BLOCK_SIZE,
            sync,
            limits: StoreLimits::default(),
        };
        let s = FileStore::open(cfg.clone()).expect("open");
        let t = Instant::now();
        for i in 0..n {
            s.store(&format!("bench.{}", i % 100), b"", &payload, 0)
                .expect("store");
        }
        let appended = t.elapsed();
        let rx = s.sync_watch();
        s.flush().expect("flush");
        let all = t.elapsed();
        println!(
            "{name:>13}: {n} appends in {:.2?} = {:.0} msgs/s; durable (synced_through={}) after {:.2?} = {:.0} msgs/s",
            appended,
            n as f64 / appended.as_secs_f64(),
            *rx.borrow(),
            all,
            n as f64 / all.as_secs_f64()
        );
        s.stop().expect("stop");
        drop(s);
        let t = Instant::now();
        let s = FileStore::open(cfg).expect("reopen");
        let rec = t.elapsed();
        let st = s.state();
        println!(
            "{name:>13}: recovered {} msgs from {} blocks in {:.2?}",
            st.msgs,
            s.recovery_report().blocks,
            rec
        );
        assert_eq!(st.msgs, n);
        s.delete().expect("delete");
    }
    let _ = std::fs::remove_dir_all(&base);
}
