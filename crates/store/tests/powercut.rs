//! Power cut: FileStore on SimIo with group commit. Every message whose seq was covered by
//! synced_through (i.e. would have been acked) survives, intact, in order, exactly once.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rnats_store::*;

fn payload(seq: u64) -> Vec<u8> {
    format!("msg-{seq}-{}", "z".repeat((seq % 37) as usize)).into_bytes()
}

fn cfg() -> FileStoreConfig {
    FileStoreConfig {
        dir: "/sim/stream".into(),
        block_size: 2048,
        sync: SyncPolicy::Always,
        limits: StoreLimits::default(),
    }
}

fn wait_synced(s: &FileStore, seq: u64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    let rx = s.sync_watch();
    while *rx.borrow() < seq {
        assert!(
            Instant::now() < deadline,
            "synced_through never reached {seq}"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    assert!(s.synced_through() >= seq);
}

fn verify(s: &FileStore, acked: u64) {
    let st = s.state();
    assert!(
        st.last_seq >= acked,
        "lost acked messages: {st:?} acked {acked}"
    );
    assert_eq!(st.num_deleted, 0);
    let mut next = 1;
    let mut seq = 0;
    while let Ok(m) = s.load_next("", seq + 1) {
        assert_eq!(m.seq, next, "gap or duplicate");
        assert_eq!(m.payload, payload(m.seq), "content of {}", m.seq);
        assert_eq!(m.subject, format!("s.{}", m.seq % 5));
        seq = m.seq;
        next += 1;
    }
    assert_eq!(seq, st.last_seq);
    assert_eq!(st.msgs, st.last_seq);
}

#[test]
fn acked_messages_survive_power_cut() {
    let io = SimIo::new();
    let mut acked = 0;
    for round in 0..8u64 {
        let s = FileStore::open_with_io(cfg(), Arc::new(io.clone())).unwrap();
        verify(&s, acked);
        let start = s.state().last_seq;
        let n = 150 + round * 40;
        for i in 1..=n {
            let (seq, _) = s
                .store(
                    &format!("s.{}", (start + i) % 5),
                    b"",
                    &payload(start + i),
                    0,
                )
                .unwrap();
            assert_eq!(seq, start + i);
            if i == n / 2 {
                wait_synced(&s, seq);
            }
        }
        // What a publisher has been acked for right now (the syncer may be mid-flight).
        acked = s.synced_through();
        if round % 2 == 0 {
            wait_synced(&s, start + n);
            acked = start + n;
        }
        io.power_cut();
        drop(s);
    }
    let s = FileStore::open_with_io(cfg(), Arc::new(io.clone())).unwrap();
    verify(&s, acked);
    assert!(s.recovery_report().damaged.is_empty());
}

#[test]
fn interval_sync_advances_on_flush() {
    let io = SimIo::new();
    let mut c = cfg();
    c.sync = SyncPolicy::Interval(Duration::from_secs(3600));
    let s = FileStore::open_with_io(c.clone(), Arc::new(io.clone())).unwrap();
    for i in 1..=10u64 {
        s.store(&format!("s.{}", i % 5), b"", &payload(i), 0)
            .unwrap();
    }
    assert_eq!(s.synced_through(), 0);
    s.flush().unwrap();
    assert_eq!(s.synced_through(), 10);
    for i in 11..=20u64 {
        s.store(&format!("s.{}", i % 5), b"", &payload(i), 0)
            .unwrap();
    }
    io.power_cut();
    drop(s);
    let s = FileStore::open_with_io(c, Arc::new(io.clone())).unwrap();
    assert_eq!(s.state().last_seq, 10);
    verify(&s, 10);
}

/// The power fails before a random write/fsync/rename, and each file keeps a random prefix
/// of its unsynced bytes (a torn flush). Every message covered by synced_through survives.
#[test]
fn acked_messages_survive_torn_power_cuts_at_random_points() {
    for seed in 1..=40u64 {
        let io = SimIo::new();
        let s = FileStore::open_with_io(cfg(), Arc::new(io.clone())).unwrap();
        io.crash_after(50 + (seed * 7919) % 400, seed);
        let mut acked = 0;
        for i in 1..=400u64 {
            if s.store(&format!("s.{}", i % 5), b"", &payload(i), 0)
                .is_err()
            {
                break;
            }
            if i % 25 == 0 {
                acked = s.synced_through();
            }
        }
        if io.crash_pending() {
            io.power_cut_torn(seed);
        }
        drop(s);
        let s = FileStore::open_with_io(cfg(), Arc::new(io.clone())).unwrap();
        let st = s.state();
        assert!(st.last_seq >= acked, "seed {seed}: {st:?}, acked {acked}");
        let mut seq = 0;
        while let Ok(m) = s.load_next("", seq + 1) {
            assert_eq!(
                m.payload,
                payload(m.seq),
                "seed {seed}: content of {}",
                m.seq
            );
            assert!(m.seq > seq);
            seq = m.seq;
        }
        for want in 1..=acked {
            assert!(s.load(want).is_ok(), "seed {seed}: acked {want} lost");
        }
    }
}
