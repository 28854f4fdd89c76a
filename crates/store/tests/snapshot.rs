//! The clean-stop index snapshot (`index.snap`): used when valid, ignored (full scan, same
//! state) when stale, torn or corrupt, and never able to hide writes made after it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rnats_store::{
    FileStore, FileStoreConfig, MsgStore, SimIo, StoreError, StoreIo, StoreLimits, StreamState,
    SubjectState,
};

const DIR: &str = "/sim/s";

fn cfg() -> FileStoreConfig {
    let mut c = FileStoreConfig::new(DIR, StoreLimits::default());
    c.block_size = 700;
    c
}

fn snap_path() -> PathBuf {
    Path::new(DIR).join("index.snap")
}

fn open(io: &SimIo) -> FileStore {
    FileStore::open_with_io(cfg(), Arc::new(io.clone())).unwrap()
}

/// Everything a reader can observe about a store.
#[derive(Debug, PartialEq)]
struct View {
    state: StreamState,
    deleted: Vec<u64>,
    subjects: BTreeMap<String, SubjectState>,
    msgs: Vec<(u64, String, i64, Vec<u8>)>,
    last_by_subject: Vec<Option<u64>>,
}

fn view(s: &FileStore) -> View {
    let state = s.state();
    let mut msgs = Vec::new();
    for seq in 1..=state.last_seq {
        match s.load(seq) {
            Ok(m) => msgs.push((seq, m.subject, m.ts, m.payload.to_vec())),
            Err(StoreError::NotFound | StoreError::Deleted) => {}
            Err(e) => panic!("seq {seq}: {e}"),
        }
    }
    let last_by_subject = (0..5)
        .map(|k| s.load_last(&format!("k.{k}")).ok().map(|m| m.seq))
        .collect();
    View {
        state,
        deleted: s.deleted(),
        subjects: s.subjects_state(">"),
        msgs,
        last_by_subject,
    }
}

/// A stopped store with several blocks, removals, a subject purge, skips and compactions.
fn build() -> SimIo {
    let io = SimIo::new();
    let s = open(&io);
    for i in 1..=120u64 {
        let payload = format!("p{i}-{}", "x".repeat((i % 17) as usize));
        s.store(
            &format!("k.{}", i % 4),
            b"",
            payload.as_bytes(),
            1000 + i as i64,
        )
        .unwrap();
        if i % 11 == 0 {
            s.remove(i - 3, false).unwrap();
        }
        if i == 60 {
            s.purge(Some("k.2"), None, None).unwrap();
        }
        if i % 40 == 0 {
            s.skip().unwrap();
        }
    }
    s.remove(5, true).unwrap();
    s.purge(None, Some(9), None).unwrap();
    s.stop().unwrap();
    io
}

/// The view of a copy of `io` opened after deleting its snapshot (a full scan).
fn scanned(io: &SimIo) -> View {
    let copy = io.deep_copy();
    copy.remove(&snap_path()).unwrap();
    let s = open(&copy);
    assert!(!s.recovery_report().from_snapshot);
    view(&s)
}

#[test]
fn valid_snapshot_is_used_and_matches_a_full_scan() {
    let io = build();
    assert!(
        io.contents(&snap_path()).is_some(),
        "stop writes the snapshot"
    );
    let expected = scanned(&io);
    assert!(expected.msgs.len() > 50 && !expected.deleted.is_empty());
    let s = open(&io);
    let rep = s.recovery_report();
    assert!(rep.from_snapshot, "{rep:?}");
    assert!(rep.snapshot_rejected.is_none());
    assert!(rep.blocks >= 4, "want several blocks: {rep:?}");
    assert_eq!(view(&s), expected);
    // Consumed on open: a crash from here on can't find a snapshot of older files.
    assert!(io.contents(&snap_path()).is_none());
    // The store keeps working: appends, removals and a reopen through a new snapshot.
    let (seq, _) = s.store("k.1", b"", b"after", 5000).unwrap();
    assert_eq!(seq, expected.state.last_seq + 1);
    s.remove(seq - 1, false).unwrap();
    s.stop().unwrap();
    let after = scanned(&io);
    let s = open(&io);
    assert!(s.recovery_report().from_snapshot);
    assert_eq!(view(&s), after);
    assert_eq!(s.load(seq).unwrap().payload.as_ref(), b"after");
}

/// Each way a snapshot can be wrong: ignored, and the full scan gives the same state.
#[test]
fn stale_or_damaged_snapshot_is_ignored() {
    let base = build();
    let expected = scanned(&base);
    let snap = base.contents(&snap_path()).unwrap();
    let blocks: Vec<PathBuf> = {
        let mut v: Vec<PathBuf> = base
            .list(Path::new(DIR))
            .unwrap()
            .into_iter()
            .filter(|n| n.ends_with(".blk"))
            .map(|n| Path::new(DIR).join(n))
            .collect();
        v.sort();
        v
    };
    type Damage = Box<dyn Fn(&SimIo)>;
    let snap2 = snap.clone();
    let first = blocks[0].clone();
    let cases: Vec<(&str, Damage, &str)> = vec![
        (
            "torn",
            Box::new(move |io: &SimIo| {
                io.set_contents(&snap_path(), snap2[..snap2.len() / 2].to_vec())
            }),
            "corrupt",
        ),
        (
            "flipped",
            Box::new({
                let snap = snap.clone();
                move |io: &SimIo| {
                    let mut d = snap.clone();
                    let at = d.len() / 3;
                    d[at] ^= 0x10;
                    io.set_contents(&snap_path(), d);
                }
            }),
            "corrupt",
        ),
        (
            "empty",
            Box::new(|io: &SimIo| io.set_contents(&snap_path(), Vec::new())),
            "corrupt",
        ),
        (
            "block rewritten, same length",
            Box::new({
                let first = first.clone();
                move |io: &SimIo| io.set_contents(&first, io.contents(&first).unwrap())
            }),
            "stale",
        ),
        (
            "block removed",
            Box::new({
                let first = first.clone();
                move |io: &SimIo| io.remove(&first).unwrap()
            }),
            "stale",
        ),
        (
            "block added",
            Box::new(|io: &SimIo| io.set_contents(&Path::new(DIR).join("999.blk"), Vec::new())),
            "stale",
        ),
    ];
    for (name, damage, why) in cases {
        let io = base.deep_copy();
        damage(&io);
        let s = open(&io);
        let rep = s.recovery_report();
        assert!(!rep.from_snapshot, "{name}: {rep:?}");
        let rejected = rep.snapshot_rejected.clone().unwrap_or_default();
        assert!(rejected.contains(why), "{name}: {rejected}");
        if !name.starts_with("block removed") {
            assert_eq!(view(&s), expected, "{name}");
        }
        assert!(io.contents(&snap_path()).is_none(), "{name}");
    }
}

/// A block that grew or shrank after the snapshot (a write it does not know about) is
/// scanned, and a torn tail there is still found and truncated.
#[test]
fn changed_block_length_forces_a_scan_that_finds_damage() {
    let base = build();
    let last = {
        let mut v: Vec<String> = base
            .list(Path::new(DIR))
            .unwrap()
            .into_iter()
            .filter(|n| n.ends_with(".blk"))
            .collect();
        v.sort_by_key(|n| n.trim_end_matches(".blk").parse::<u32>().unwrap_or(0));
        Path::new(DIR).join(v.last().unwrap())
    };
    let data = base.contents(&last).unwrap();
    for grown in [true, false] {
        let io = base.deep_copy();
        let mut d = data.clone();
        if grown {
            d.extend_from_slice(&[0xD5, 0x4E, 0x53, 0x7A, 9, 9]);
        } else {
            d.truncate(d.len() - 3);
        }
        io.set_contents(&last, d);
        let s = open(&io);
        let rep = s.recovery_report();
        assert!(!rep.from_snapshot, "{rep:?}");
        assert!(rep.truncated_bytes > 0, "grown={grown}: {rep:?}");
        assert_eq!(rep.damaged.len(), 1, "grown={grown}: {rep:?}");
    }
}

/// Messages written after an open that used the snapshot, then a power cut: no snapshot
/// survives, so the scan recovers everything that was synced.
#[test]
fn writes_after_the_snapshot_survive_a_crash() {
    let io = build();
    let before = {
        let s = open(&io);
        assert!(s.recovery_report().from_snapshot);
        let last = s.state().last_seq;
        for i in 0..30u64 {
            s.store("k.3", b"", format!("late-{i}").as_bytes(), 9000 + i as i64)
                .unwrap();
        }
        s.remove(last + 2, false).unwrap();
        s.flush().unwrap();
        let v = view(&s);
        io.power_cut();
        v
    };
    let s = open(&io);
    let rep = s.recovery_report();
    assert!(
        !rep.from_snapshot && rep.snapshot_rejected.is_none(),
        "{rep:?}"
    );
    assert_eq!(view(&s), before);
    assert_eq!(
        s.load_last("k.3").unwrap().payload.as_ref(),
        b"late-29".as_slice()
    );
}

/// Real files: a block edited in place (same length, same tail) after a clean stop has a new
/// modification time, so the snapshot is ignored and the scan reports the damage.
#[test]
fn real_files_edited_in_place_are_scanned() {
    let dir = tempfile::tempdir().unwrap();
    let c = || {
        let mut c = FileStoreConfig::new(dir.path(), StoreLimits::default());
        c.block_size = 64 * 1024;
        c
    };
    let s = FileStore::open(c()).unwrap();
    for i in 0..500u64 {
        s.store("a.b", b"", &[b'z'; 100], 1 + i as i64).unwrap();
    }
    s.stop().unwrap();
    drop(s);
    let s = FileStore::open(c()).unwrap();
    assert!(s.recovery_report().from_snapshot);
    assert_eq!(s.state().msgs, 500);
    s.stop().unwrap();
    drop(s);
    std::thread::sleep(std::time::Duration::from_millis(30));
    let blk = dir.path().join("1.blk");
    let mut data = std::fs::read(&blk).unwrap();
    data[200] ^= 0x01;
    std::fs::write(&blk, &data).unwrap();
    let s = FileStore::open(c()).unwrap();
    let rep = s.recovery_report();
    assert!(!rep.from_snapshot, "{rep:?}");
    assert_eq!(rep.damaged.len(), 1, "{rep:?}");
}

/// `check_store` never trusts the snapshot: a flip that keeps the block's length, tail and
/// modification time (silent bit rot) is still found by the offline check, which leaves the
/// snapshot in place.
#[test]
fn check_store_scans_blocks_even_with_a_valid_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = FileStoreConfig::new(dir.path(), StoreLimits::default());
    c.block_size = 64 * 1024;
    let s = FileStore::open(c).unwrap();
    for i in 0..300u64 {
        s.store("a.b", b"", &[b'z'; 100], 1 + i as i64).unwrap();
    }
    s.stop().unwrap();
    drop(s);
    let blk = dir.path().join("1.blk");
    let mtime = std::fs::metadata(&blk).unwrap().modified().unwrap();
    let mut data = std::fs::read(&blk).unwrap();
    data[500] ^= 0x01;
    std::fs::write(&blk, &data).unwrap();
    let f = std::fs::OpenOptions::new().write(true).open(&blk).unwrap();
    f.set_modified(mtime).unwrap();
    drop(f);
    let rep = rnats_store::check_store(dir.path()).unwrap();
    assert_eq!(rep.damaged.len(), 1, "{rep:?}");
    assert!(!rep.from_snapshot);
    assert!(dir.path().join("index.snap").exists());
}
