//! Corruption: flip one byte at random offsets in block files of a closed store; on reopen
//! every other record is still served, the damage is reported (block + offset), nothing
//! corrupt is served, and torn tails are truncated.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rnats_store::*;

const N: u64 = 60;

fn cfg() -> FileStoreConfig {
    FileStoreConfig {
        dir: "/sim/c".into(),
        block_size: 1024,
        sync: SyncPolicy::Always,
        limits: StoreLimits::default(),
    }
}

fn payload(seq: u64) -> Vec<u8> {
    format!("payload-{seq}-{}", "q".repeat((seq * 7 % 23) as usize)).into_bytes()
}

fn build() -> (SimIo, Vec<PathBuf>) {
    let io = SimIo::new();
    let s = FileStore::open_with_io(cfg(), Arc::new(io.clone())).unwrap();
    for seq in 1..=N {
        let h = if seq % 3 == 0 {
            &b"NATS/1.0\r\nA: b\r\n\r\n"[..]
        } else {
            b""
        };
        s.store(
            &format!("k.{}", seq % 4),
            h,
            &payload(seq),
            1000 + seq as i64,
        )
        .unwrap();
        if seq == 30 {
            s.remove(7, false).unwrap();
        }
    }
    s.stop().unwrap();
    drop(s);
    let mut files: Vec<PathBuf> = io
        .list(Path::new("/sim/c"))
        .unwrap()
        .into_iter()
        .filter(|n| n.ends_with(".blk"))
        .map(|n| Path::new("/sim/c").join(n))
        .collect();
    files.sort();
    (io, files)
}

/// A copy of every file of `from`'s store (blocks and the clean-stop index snapshot).
fn copy_store(from: &SimIo) -> SimIo {
    from.deep_copy()
}

struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
}

/// Every message is either served intact or absent; returns how many records' worth of
/// state were lost (an absent message, or the deleted seq 7 back because its tombstone was hit).
fn check_served(s: &FileStore) -> u64 {
    let mut missing = 0;
    for seq in 1..=N {
        match s.load(seq) {
            Ok(m) => {
                if seq == 7 {
                    missing += 1;
                }
                assert_eq!(m.payload, payload(seq), "seq {seq} corrupt");
                assert_eq!(m.subject, format!("k.{}", seq % 4));
                assert_eq!(m.ts, 1000 + seq as i64);
            }
            Err(StoreError::NotFound | StoreError::Deleted) => {
                if seq != 7 {
                    missing += 1
                }
            }
            Err(e) => panic!("seq {seq}: {e}"),
        }
    }
    missing
}

#[test]
fn one_flipped_byte_costs_at_most_one_record() {
    let (pristine, files) = build();
    assert!(files.len() >= 4, "want several blocks, got {files:?}");
    let mut rng = Lcg(42);
    let mut lost_total = 0;
    for _seed in 0..300 {
        // The snapshot is copied too: a damaged block must be found anyway.
        let io = copy_store(&pristine);
        let f = &files[(rng.next() as usize) % files.len()];
        let mut data = io.contents(f).unwrap();
        let off = (rng.next() as usize) % data.len();
        data[off] ^= 1 << (rng.next() % 8);
        io.set_contents(f, data);

        let s = FileStore::open_with_io(cfg(), Arc::new(io.clone())).unwrap();
        let rep = s.recovery_report();
        assert_eq!(rep.damaged.len(), 1, "flip at {f:?}+{off}: {rep:?}");
        let d = &rep.damaged[0];
        assert_eq!(&d.file, f);
        assert!(
            d.offset <= off as u64 && (off as u64) < d.offset + d.len,
            "{d:?} vs {off}"
        );
        let missing = check_served(&s);
        assert!(missing <= 1, "flip at {f:?}+{off} lost {missing}");
        if let Some((a, b)) = d.seqs {
            assert!(a <= b);
        }
        lost_total += missing;
        // The store stays usable: the next append gets last_seq + 1.
        let next = s.state().last_seq + 1;
        let stored = s
            .store(
                &format!("k.{}", next % 4),
                b"",
                &payload(next),
                1000 + next as i64,
            )
            .unwrap();
        assert_eq!(stored.0, next);
        s.stop().unwrap();
        // A second open reports at most the same (kept) damage and serves no less.
        let s2 = FileStore::open_with_io(cfg(), Arc::new(io.clone())).unwrap();
        assert!(s2.recovery_report().damaged.len() <= 1);
        assert!(check_served(&s2) <= missing);
    }
    assert!(
        lost_total > 100,
        "flips should usually hit a message record"
    );
}

#[test]
fn torn_tail_is_truncated() {
    let (io, files) = build();
    let last = files.last().unwrap();
    let data = io.contents(last).unwrap();
    for cut in [1usize, 5, 20] {
        let io2 = copy_store(&io);
        io2.set_contents(last, data[..data.len() - cut].to_vec());
        let s = FileStore::open_with_io(cfg(), Arc::new(io2.clone())).unwrap();
        let rep = s.recovery_report().clone();
        assert!(rep.truncated_bytes > 0 && rep.truncated_bytes < data.len() as u64);
        assert_eq!(check_served(&s), 1);
        assert_eq!(s.state().last_seq, N - 1);
        assert_eq!(
            s.store("k.1", b"", &payload(N), 1000 + N as i64).unwrap().0,
            N
        );
        s.stop().unwrap();
        let s = FileStore::open_with_io(cfg(), Arc::new(io2)).unwrap();
        assert!(
            s.recovery_report().damaged.is_empty(),
            "{:?}",
            s.recovery_report()
        );
        assert_eq!(s.load(N).unwrap().payload, payload(N));
    }
}

#[test]
fn garbage_files_do_not_panic() {
    let mut rng = Lcg(7);
    for _ in 0..50 {
        let io = SimIo::new();
        let len = (rng.next() % 3000) as usize;
        let mut data: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        // Sprinkle magic markers to tempt the resync.
        for _ in 0..5 {
            if len > 8 {
                let at = (rng.next() as usize) % (len - 4);
                data[at..at + 4].copy_from_slice(&[0xD5, 0x4E, 0x53, 0x7A]);
            }
        }
        io.set_contents(Path::new("/sim/c/1.blk"), data);
        let s = FileStore::open_with_io(cfg(), Arc::new(io)).unwrap();
        assert_eq!(s.state().msgs, 0);
    }
}

/// The offline check reports damage without changing the files.
#[test]
fn check_store_reports_without_modifying() {
    use rnats_store::{check_store, FileStore, FileStoreConfig, MsgStore, StoreLimits};
    let dir = tempfile::tempdir().unwrap();
    {
        let mut cfg = FileStoreConfig::new(dir.path(), StoreLimits::default());
        cfg.block_size = 4096;
        let fs = FileStore::open(cfg).unwrap();
        for i in 0..50u32 {
            fs.store("a.b", b"", &i.to_be_bytes().repeat(8), 0).unwrap();
        }
        fs.flush().unwrap();
        fs.stop().unwrap();
    }
    let clean = check_store(dir.path()).unwrap();
    assert!(clean.damaged.is_empty());
    assert_eq!(clean.msgs, 50);
    // Flip one byte in the middle of the first block, and cut its tail.
    let blk = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "blk"))
        .min()
        .unwrap();
    let mut data = std::fs::read(&blk).unwrap();
    let mid = data.len() / 2;
    data[mid] ^= 0xff;
    data.truncate(data.len() - 3);
    std::fs::write(&blk, &data).unwrap();
    let before = std::fs::read(&blk).unwrap();
    let report = check_store(dir.path()).unwrap();
    assert!(!report.damaged.is_empty(), "{report:?}");
    assert!(report.msgs < 50 && report.msgs >= 47, "{report:?}");
    assert_eq!(
        std::fs::read(&blk).unwrap(),
        before,
        "check must not modify the store"
    );
}
