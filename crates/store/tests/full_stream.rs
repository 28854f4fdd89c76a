//! A full stream (discard old) and a KV-shaped stream on the FileStore: the oldest blocks are
//! dropped whole as first_seq passes them (the store never grows past its limit plus a few
//! blocks), every publish under `SyncPolicy::Always` costs exactly one fsync, and both clean
//! restarts (snapshot) and crashes (scan) come back with the same messages.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rnats_store::*;

const DIR: &str = "/sim/full";

fn cfg(limits: StoreLimits) -> FileStoreConfig {
    FileStoreConfig {
        dir: DIR.into(),
        block_size: 1024,
        sync: SyncPolicy::Always,
        limits,
    }
}

fn open(io: &SimIo, limits: StoreLimits) -> FileStore {
    FileStore::open_with_io(cfg(limits), Arc::new(io.clone())).unwrap()
}

fn blocks(io: &SimIo) -> usize {
    io.list(std::path::Path::new(DIR))
        .unwrap()
        .iter()
        .filter(|n| n.ends_with(".blk"))
        .count()
}

fn payload(seq: u64) -> Vec<u8> {
    format!("{seq:060}").into_bytes()
}

fn wait_synced(s: &FileStore, seq: u64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while s.synced_through() < seq {
        assert!(Instant::now() < deadline, "never synced {seq}");
        std::thread::sleep(Duration::from_micros(200));
    }
}

/// Every message from first to last is there with the right payload.
fn check(s: &FileStore, first: u64, last: u64) {
    let st = s.state();
    assert_eq!(
        (st.first_seq, st.last_seq, st.msgs),
        (first, last, last - first + 1)
    );
    for seq in first..=last {
        assert_eq!(s.load(seq).unwrap().payload, payload(seq), "seq {seq}");
    }
    assert!(matches!(s.load(first - 1), Err(StoreError::NotFound)));
}

#[test]
fn discard_old_drops_whole_blocks_and_recovers() {
    let limits = StoreLimits {
        max_msgs: 50,
        ..Default::default()
    };
    let io = SimIo::new();
    let s = open(&io, limits.clone());
    let mut most = 0;
    for seq in 1..=3000u64 {
        s.store("s", b"", &payload(seq), 0).unwrap();
        most = most.max(blocks(&io));
    }
    // 50 live messages of ~100 bytes fit in ~5 blocks of 1 KiB; dead ones go block by block.
    assert!(most <= 9, "store grew to {most} blocks");
    check(&s, 2951, 3000);
    s.flush().unwrap();

    // Crash: no snapshot, every block is scanned.
    io.power_cut();
    drop(s);
    let s = open(&io, limits.clone());
    assert!(!s.recovery_report().from_snapshot);
    check(&s, 2951, 3000);
    for seq in 3001..=3100u64 {
        s.store("s", b"", &payload(seq), 0).unwrap();
    }
    // Clean stop: the snapshot is written and used.
    s.stop().unwrap();
    drop(s);
    let s = open(&io, limits);
    assert!(s.recovery_report().from_snapshot);
    check(&s, 3051, 3100);
}

#[test]
fn kv_updates_keep_one_value_per_key_across_a_crash() {
    let limits = StoreLimits {
        max_msgs_per_subject: 1,
        ..Default::default()
    };
    let io = SimIo::new();
    let s = open(&io, limits.clone());
    for seq in 1..=2000u64 {
        s.store(&format!("k.{}", seq % 7), b"", &payload(seq), 0)
            .unwrap();
    }
    s.flush().unwrap();
    io.power_cut();
    drop(s);
    let s = open(&io, limits);
    let st = s.state();
    assert_eq!((st.msgs, st.num_subjects, st.last_seq), (7, 7, 2000));
    for k in 0..7u64 {
        let m = s.load_last(&format!("k.{k}")).unwrap();
        assert_eq!(m.seq % 7, k);
        assert!(m.seq > 1993);
        assert_eq!(m.payload, payload(m.seq));
    }
    assert!(blocks(&io) <= 4, "{} blocks for 7 live values", blocks(&io));
}

/// One publish at a time, each waited for: the sync thread fsyncs once per publish, for an
/// empty stream, a full one (the discard marker rides with the message) and KV updates (the
/// tombstone too). Block rolls and drops add a few.
#[test]
fn one_fsync_per_synchronous_publish() {
    for (name, limits) in [
        ("plain", StoreLimits::default()),
        (
            "full",
            StoreLimits {
                max_msgs: 20,
                ..Default::default()
            },
        ),
        (
            "kv",
            StoreLimits {
                max_msgs_per_subject: 1,
                ..Default::default()
            },
        ),
    ] {
        let io = SimIo::new();
        let mut c = cfg(limits);
        c.block_size = 1 << 20;
        let s = FileStore::open_with_io(c, Arc::new(io.clone())).unwrap();
        for seq in 1..=40u64 {
            s.store(&format!("k.{}", seq % 5), b"", &payload(seq), 0)
                .unwrap();
            wait_synced(&s, seq);
        }
        let before = io.fsyncs();
        for seq in 41..=240u64 {
            s.store(&format!("k.{}", seq % 5), b"", &payload(seq), 0)
                .unwrap();
            wait_synced(&s, seq);
        }
        let n = io.fsyncs() - before;
        assert_eq!(n, 200, "{name}: {n} fsyncs for 200 publishes");
    }
}
