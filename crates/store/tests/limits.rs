//! Limit rules for both stores: max_msgs / max_bytes with discard old and new, per-subject
//! limits, discard_new_per_subject, max_age expiry and max_msg_size.

use std::sync::Arc;
use std::time::Duration;

use rnats_store::*;

fn stores(l: StoreLimits) -> Vec<(Arc<dyn MsgStore>, tempfile::TempDir)> {
    let dir = tempfile::tempdir().unwrap();
    let fs = FileStore::open(FileStoreConfig {
        dir: dir.path().join("fs"),
        block_size: 512,
        sync: SyncPolicy::Always,
        limits: l.clone(),
    })
    .unwrap();
    vec![
        (Arc::new(MemStore::new(l)), tempfile::tempdir().unwrap()),
        (Arc::new(fs), dir),
    ]
}

fn lim(f: impl FnOnce(&mut StoreLimits)) -> StoreLimits {
    let mut l = StoreLimits::default();
    f(&mut l);
    l
}

#[test]
fn max_msgs_discard_old() {
    for (s, _d) in stores(lim(|l| l.max_msgs = 3)) {
        for i in 0..5 {
            s.store("a", b"", format!("{i}").as_bytes(), 0).unwrap();
        }
        let st = s.state();
        assert_eq!((st.msgs, st.first_seq, st.last_seq), (3, 3, 5));
        assert!(matches!(s.load(2), Err(StoreError::NotFound)));
        assert_eq!(&s.load(3).unwrap().payload[..], b"2");
    }
}

#[test]
fn max_msgs_discard_new() {
    for (s, _d) in stores(lim(|l| {
        l.max_msgs = 3;
        l.discard = DiscardPolicy::New
    })) {
        for _ in 0..3 {
            s.store("a", b"", b"x", 0).unwrap();
        }
        let e = s.store("a", b"", b"x", 0).unwrap_err();
        assert!(matches!(e, StoreError::MaxMsgs));
        assert_eq!(e.to_string(), "maximum messages exceeded");
        assert_eq!(s.state().last_seq, 3);
    }
}

#[test]
fn max_bytes_old_and_new() {
    // Each message "a" + 10 bytes: mem size 27, file size 41.
    for (i, (s, _d)) in stores(lim(|l| l.max_bytes = 100)).into_iter().enumerate() {
        let per = if i == 0 { 27 } else { 41 };
        for _ in 0..10 {
            s.store("a", b"", &[1; 10], 0).unwrap();
        }
        let st = s.state();
        assert_eq!(st.msgs, 100 / per);
        assert_eq!(st.bytes, st.msgs * per);
        assert!(st.bytes <= 100);
    }
    for (s, _d) in stores(lim(|l| {
        l.max_bytes = 100;
        l.discard = DiscardPolicy::New
    })) {
        let mut n = 0;
        let err = loop {
            match s.store("a", b"", &[1; 10], 0) {
                Ok(_) => n += 1,
                Err(e) => break e,
            }
        };
        assert!(n >= 2);
        assert!(matches!(err, StoreError::MaxBytes));
        assert_eq!(err.to_string(), "maximum bytes exceeded");
        assert_eq!(s.state().msgs, n);
    }
}

#[test]
fn per_subject_limit() {
    for (s, _d) in stores(lim(|l| l.max_msgs_per_subject = 2)) {
        for i in 0..3 {
            s.store("a", b"", format!("a{i}").as_bytes(), 0).unwrap();
            s.store("b", b"", format!("b{i}").as_bytes(), 0).unwrap();
        }
        let ss = s.subjects_state(">");
        assert_eq!(
            ss["a"],
            SubjectState {
                msgs: 2,
                first: 3,
                last: 5
            }
        );
        assert_eq!(
            ss["b"],
            SubjectState {
                msgs: 2,
                first: 4,
                last: 6
            }
        );
        assert_eq!(&s.load_last("a").unwrap().payload[..], b"a2");
        // Lowering the limit applies immediately.
        s.update_limits(lim(|l| l.max_msgs_per_subject = 1))
            .unwrap();
        assert_eq!(s.state().msgs, 2);
        assert_eq!(s.load_next("a", 0).unwrap().seq, 5);
    }
}

#[test]
fn discard_new_per_subject() {
    for (s, _d) in stores(lim(|l| {
        l.max_msgs_per_subject = 1;
        l.discard = DiscardPolicy::New;
        l.discard_new_per_subject = true;
    })) {
        s.store("a", b"", b"1", 0).unwrap();
        let e = s.store("a", b"", b"2", 0).unwrap_err();
        assert!(matches!(e, StoreError::MaxMsgsPerSubject));
        assert_eq!(e.to_string(), "maximum messages per subject exceeded");
        s.store("b", b"", b"3", 0).unwrap();
        assert_eq!(s.state().msgs, 2);
    }
    // Without discard_new_per_subject the subject's oldest is replaced even at max_msgs.
    for (s, _d) in stores(lim(|l| {
        l.max_msgs_per_subject = 1;
        l.max_msgs = 1;
        l.discard = DiscardPolicy::New;
    })) {
        s.store("a", b"", b"1", 0).unwrap();
        s.store("a", b"", b"2", 0).unwrap();
        assert!(matches!(
            s.store("b", b"", b"3", 0),
            Err(StoreError::MaxMsgs)
        ));
        let st = s.state();
        assert_eq!((st.msgs, st.first_seq, st.last_seq), (1, 2, 2));
    }
}

#[test]
fn max_age_expiry() {
    let sec = 1_000_000_000i64;
    for (s, _d) in stores(lim(|l| l.max_age = Duration::from_secs(10))) {
        for i in 0..5 {
            s.store("a", b"", b"x", 100 * sec + i * sec).unwrap();
        }
        assert_eq!(s.expire(105 * sec).unwrap(), 0);
        // ts <= now - max_age expires: 100, 101, 102.
        assert_eq!(s.expire(112 * sec).unwrap(), 3);
        let st = s.state();
        assert_eq!((st.msgs, st.first_seq, st.first_ts), (2, 4, 103 * sec));
        assert_eq!(s.expire(200 * sec).unwrap(), 2);
        let st = s.state();
        assert_eq!((st.msgs, st.first_seq, st.last_seq), (0, 6, 5));
    }
}

#[test]
fn max_msg_size() {
    for (s, _d) in stores(lim(|l| l.max_msg_size = 10)) {
        s.store("a", b"12345", b"12345", 0).unwrap();
        let e = s.store("a", b"12345", b"123456", 0).unwrap_err();
        assert!(matches!(e, StoreError::MaxMsgSize));
        assert_eq!(e.to_string(), "message size exceeds maximum allowed");
        assert_eq!(s.state().msgs, 1);
    }
}

#[test]
fn purge_variants_and_deleted() {
    for (s, _d) in stores(StoreLimits::default()) {
        for i in 0..10 {
            s.store(if i % 2 == 0 { "e.x" } else { "o.x" }, b"", b"p", 0)
                .unwrap();
        }
        assert_eq!(s.purge(Some("e.*"), None, Some(2)).unwrap(), 3);
        assert_eq!(s.deleted(), vec![3, 5]);
        assert_eq!(s.state().first_seq, 2);
        assert_eq!(s.purge(None, Some(6), None).unwrap(), 2);
        assert_eq!(s.state().first_seq, 6);
        assert_eq!(s.num_pending("o.x", 0), 3);
        assert_eq!(s.purge(None, None, None).unwrap(), 5);
        let st = s.state();
        assert_eq!((st.msgs, st.first_seq, st.last_seq), (0, 11, 10));
        assert_eq!(s.store("a", b"", b"", 0).unwrap().0, 11);
        assert!(matches!(s.load(5), Err(StoreError::NotFound)));
    }
}

/// The start of a time window (dedup rebuild after a restart): the first
/// message of the newest run stored at or after the given time.
#[test]
fn first_seq_since_finds_the_window_start() {
    for (s, _d) in stores(StoreLimits::default()) {
        assert_eq!(s.first_seq_since(0), 1, "empty store");
        for ts in [100, 200, 300, 400] {
            s.store("a", b"", b"x", ts).unwrap();
        }
        assert_eq!(s.first_seq_since(0), 1);
        assert_eq!(s.first_seq_since(250), 3);
        assert_eq!(s.first_seq_since(300), 3);
        assert_eq!(s.first_seq_since(401), 5, "nothing that recent");
        s.remove(3, false).unwrap();
        assert_eq!(s.first_seq_since(250), 4);
    }
}
