//! FileStore specifics: block rolling, compaction of sparse blocks, dropping blocks on purge,
//! secure erase, skip/store_at persistence and index equality across reopen.

use std::path::Path;
use std::sync::Arc;

use rnats_store::*;

fn cfg() -> FileStoreConfig {
    FileStoreConfig {
        dir: "/sim/f".into(),
        block_size: 512,
        sync: SyncPolicy::Always,
        limits: StoreLimits::default(),
    }
}

fn disk(io: &SimIo) -> (usize, usize) {
    let names = io.list(Path::new("/sim/f")).unwrap();
    let bytes = names
        .iter()
        .map(|n| io.contents(&Path::new("/sim/f").join(n)).unwrap().len())
        .sum();
    (names.len(), bytes)
}

#[test]
fn compaction_and_purge_reclaim_space() {
    let io = SimIo::new();
    let s = FileStore::open_with_io(cfg(), Arc::new(io.clone())).unwrap();
    for i in 1..=200u64 {
        s.store(&format!("s.{}", i % 3), b"", &[i as u8; 40], 0)
            .unwrap();
    }
    let (blocks, bytes) = disk(&io);
    assert!(blocks > 10);
    // Remove 3 of every 4 messages in the first half: those blocks must shrink.
    for i in 1..=100u64 {
        if i % 4 != 0 {
            assert!(s.remove(i, false).unwrap());
        }
    }
    let (_, bytes2) = disk(&io);
    assert!(
        bytes2 < bytes - 40 * 60,
        "no compaction: {bytes} -> {bytes2}"
    );
    let before = s.state();
    let deleted = s.deleted();
    s.stop().unwrap();
    drop(s);
    let s = FileStore::open_with_io(cfg(), Arc::new(io.clone())).unwrap();
    assert_eq!(s.state(), before);
    assert_eq!(s.deleted(), deleted);
    for i in (4..=100u64).step_by(4) {
        assert_eq!(&s.load(i).unwrap().payload[..], &[i as u8; 40][..]);
    }
    // Full purge drops every old block.
    assert_eq!(s.purge(None, None, None).unwrap(), 125);
    let (blocks, bytes3) = disk(&io);
    assert_eq!(blocks, 1, "{:?}", io.list(Path::new("/sim/f")));
    assert!(bytes3 <= 512 + 64, "{bytes3}");
    let st = s.state();
    assert_eq!((st.first_seq, st.last_seq, st.msgs), (201, 200, 0));
    s.stop().unwrap();
    drop(s);
    let s = FileStore::open_with_io(cfg(), Arc::new(io.clone())).unwrap();
    assert_eq!(s.state(), st);
    assert_eq!(s.store("x", b"", b"", 0).unwrap().0, 201);
}

#[test]
fn secure_erase_removes_bytes() {
    let io = SimIo::new();
    let s = FileStore::open_with_io(cfg(), Arc::new(io.clone())).unwrap();
    s.store("a", b"", b"SECRET-PAYLOAD", 0).unwrap();
    s.store("a", b"", b"other", 0).unwrap();
    assert!(s.remove(1, true).unwrap());
    let f = io.contents(Path::new("/sim/f/1.blk")).unwrap();
    assert!(!f.windows(6).any(|w| w == b"SECRET"));
    s.stop().unwrap();
    drop(s);
    let s = FileStore::open_with_io(cfg(), Arc::new(io)).unwrap();
    assert!(s.recovery_report().damaged.is_empty());
    assert!(matches!(s.load(1), Err(StoreError::NotFound)));
    assert_eq!(s.state().first_seq, 2);
}

#[test]
fn skip_and_store_at_survive_reopen() {
    let io = SimIo::new();
    let s = FileStore::open_with_io(cfg(), Arc::new(io.clone())).unwrap();
    assert_eq!(s.skip().unwrap(), 1);
    assert_eq!(s.state().first_seq, 2);
    s.store_at(10, "m", b"", b"ten", 5).unwrap();
    s.store("m", b"", b"eleven", 6).unwrap();
    s.remove(11, false).unwrap();
    assert_eq!(s.skip().unwrap(), 12);
    let st = s.state();
    assert_eq!(
        (st.first_seq, st.last_seq, st.msgs, st.num_deleted),
        (10, 12, 1, 2)
    );
    s.stop().unwrap();
    drop(s);
    let s = FileStore::open_with_io(cfg(), Arc::new(io)).unwrap();
    assert_eq!(s.state(), st);
    assert_eq!(s.deleted(), vec![11, 12]);
}

/// A sequential replay is served by read-ahead (few file reads), random reads still work,
/// a secure erase and a compaction are never hidden by cached bytes, and the cache stays
/// within its bound.
#[test]
fn read_cache_serves_replays_and_never_serves_stale_bytes() {
    let io = SimIo::new();
    let mut c = cfg();
    c.block_size = 256 * 1024;
    let s = FileStore::open_with_io(c, Arc::new(io.clone())).unwrap();
    let n = 5000u64;
    for i in 1..=n {
        s.store("r.x", b"", format!("payload-{i:06}").as_bytes(), 0)
            .unwrap();
    }
    let mut seq = 0;
    while let Ok(m) = s.load_next(">", seq + 1) {
        assert_eq!(m.payload, format!("payload-{:06}", m.seq).as_bytes());
        seq = m.seq;
    }
    assert_eq!(seq, n);
    let st = s.cache_stats();
    assert!(st.reads * 50 < n, "replay of {n} took {st:?}");
    assert!(st.bytes <= 8 * 1024 * 1024, "{st:?}");
    // Erase one message and rewrite a block under the cache: reads see the change.
    assert!(s.remove(10, true).unwrap());
    assert!(s.load(10).is_err());
    for i in 2..3000 {
        if i % 2 == 0 {
            s.remove(i, false).unwrap();
        }
    }
    for i in (1..=n).filter(|i| *i != 10 && (*i >= 3000 || i % 2 == 1)) {
        let m = s.load(i).unwrap();
        assert_eq!(m.payload, format!("payload-{i:06}").as_bytes(), "seq {i}");
    }
}
