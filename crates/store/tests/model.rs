//! Model-based property test: random operations against MemStore and FileStore, checked
//! after every step against a plain BTreeMap model that implements nats-server's rules.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use proptest::prelude::*;
use rnats_store::*;

const SUBJECTS: &[&str] = &["a", "b", "c.x", "c.y", "d.e.f"];
const FILTERS: &[&str] = &["", ">", "a", "b", "c.*", "c.>", "*.x", "d.>", "z", "*"];
/// Far in the future so the real clock never expires anything.
const BASE_TS: i64 = 4_000_000_000_000_000_000;

#[derive(Clone, Debug)]
struct MMsg {
    subject: String,
    ts: i64,
    hdr: Vec<u8>,
    payload: Vec<u8>,
}

struct Model {
    limits: StoreLimits,
    file: bool,
    msgs: BTreeMap<u64, MMsg>,
    first: u64,
    first_ts: i64,
    last: u64,
    last_ts: i64,
}

impl Model {
    fn size(&self, m: &MMsg) -> u64 {
        if self.file {
            file_msg_size(m.subject.len(), m.hdr.len(), m.payload.len())
        } else {
            mem_msg_size(m.subject.len(), m.hdr.len(), m.payload.len())
        }
    }
    fn bytes(&self) -> u64 {
        self.msgs.values().map(|m| self.size(m)).sum()
    }
    fn count(&self, subj: &str) -> u64 {
        self.msgs.values().filter(|m| m.subject == subj).count() as u64
    }
    fn oldest_of(&self, subj: &str) -> Option<u64> {
        self.msgs
            .iter()
            .find(|(_, m)| m.subject == subj)
            .map(|(s, _)| *s)
    }
    fn rm(&mut self, seq: u64) -> bool {
        let ok = self.msgs.remove(&seq).is_some();
        if ok {
            self.fix_first();
        }
        ok
    }
    fn fix_first(&mut self) {
        match self.msgs.iter().next() {
            Some((s, m)) => {
                self.first = *s;
                self.first_ts = m.ts;
            }
            None => {
                self.first = self.last + 1;
                self.first_ts = 0;
            }
        }
    }
    fn store(&mut self, m: MMsg) -> Result<u64, &'static str> {
        let l = self.limits.clone();
        if l.max_msg_size > 0 && m.hdr.len() + m.payload.len() > l.max_msg_size as usize {
            return Err("MaxMsgSize");
        }
        let size = self.size(&m);
        if l.discard == DiscardPolicy::New {
            let asl = l.max_msgs_per_subject > 0
                && self.count(&m.subject) >= l.max_msgs_per_subject as u64;
            if asl && l.discard_new_per_subject {
                return Err("MaxMsgsPerSubject");
            }
            if l.max_msgs > 0 && self.msgs.len() as u64 >= l.max_msgs as u64 && !asl {
                return Err("MaxMsgs");
            }
            if l.max_bytes > 0 && self.bytes() + size > l.max_bytes as u64 {
                if !asl {
                    return Err("MaxBytes");
                }
                let f = self.oldest_of(&m.subject).unwrap();
                if self.size(&self.msgs[&f]) < size {
                    return Err("MaxBytes");
                }
            }
        }
        let seq = self.last + 1;
        self.insert(seq, m);
        Ok(seq)
    }
    fn insert(&mut self, seq: u64, m: MMsg) {
        if self.msgs.is_empty() {
            self.first = seq;
            self.first_ts = m.ts;
        }
        self.last = seq;
        self.last_ts = m.ts;
        let subj = m.subject.clone();
        self.msgs.insert(seq, m);
        let l = self.limits.clone();
        if l.max_msgs_per_subject > 0 {
            while self.count(&subj) > l.max_msgs_per_subject as u64 {
                let f = self.oldest_of(&subj).unwrap();
                self.rm(f);
            }
        }
        self.enforce();
    }
    fn enforce(&mut self) {
        let l = self.limits.clone();
        if l.discard == DiscardPolicy::Old {
            while (l.max_msgs > 0 && self.msgs.len() as u64 > l.max_msgs as u64)
                || (l.max_bytes > 0 && self.bytes() > l.max_bytes as u64)
            {
                let f = *self.msgs.keys().next().unwrap();
                self.rm(f);
            }
        }
    }
    fn skip(&mut self) -> u64 {
        self.last += 1;
        if self.msgs.is_empty() {
            self.first = self.last + 1;
            self.first_ts = 0;
        }
        self.last
    }
    fn purge_all(&mut self) -> u64 {
        let n = self.msgs.len() as u64;
        self.msgs.clear();
        self.fix_first();
        n
    }
    fn compact(&mut self, seq: u64) -> u64 {
        if self.first > seq {
            return 0;
        }
        if seq <= self.last {
            let keep = self.msgs.split_off(&seq);
            let n = self.msgs.len() as u64;
            self.msgs = keep;
            self.fix_first();
            n
        } else {
            let n = self.purge_all();
            self.first = seq;
            self.last = seq - 1;
            n
        }
    }
    fn purge(&mut self, subject: Option<&str>, seq: Option<u64>, keep: Option<u64>) -> u64 {
        let seq = seq.unwrap_or(0);
        let keep = keep.unwrap_or(0);
        if seq == 1 {
            return 0;
        }
        let subj = subject.unwrap_or("");
        let all = subj.is_empty() || subj == ">";
        if all && keep == 0 && seq == 0 {
            return self.purge_all();
        }
        if all && seq > 1 {
            return self.compact(seq);
        }
        let matching: Vec<u64> = self
            .msgs
            .iter()
            .filter(|(_, m)| filter::matches(subj, &m.subject))
            .map(|(s, _)| *s)
            .collect();
        let total = matching.len() as u64;
        if total == 0 || (keep > 0 && keep >= total) {
            return 0;
        }
        let maxp = if keep > 0 { total - keep } else { u64::MAX };
        let mut n = 0;
        for s in matching {
            if seq >= 1 && s > seq - 1 {
                break;
            }
            if n >= maxp {
                break;
            }
            self.rm(s);
            n += 1;
        }
        n
    }
    fn expire(&mut self, now: i64) -> u64 {
        if self.limits.max_age.is_zero() {
            return 0;
        }
        let min = now - self.limits.max_age.as_nanos() as i64;
        let mut n = 0;
        while let Some((s, m)) = self.msgs.iter().next() {
            if m.ts > min {
                break;
            }
            let s = *s;
            self.rm(s);
            n += 1;
        }
        n
    }
    fn update_limits(&mut self, l: StoreLimits) {
        let old = self.limits.max_msgs_per_subject;
        self.limits = l.clone();
        self.enforce();
        let maxp = l.max_msgs_per_subject;
        if maxp > 0 && (old <= 0 || maxp < old) {
            for s in SUBJECTS {
                while self.count(s) > maxp as u64 {
                    let f = self.oldest_of(s).unwrap();
                    self.rm(f);
                }
            }
        }
    }
    fn state(&self) -> StreamState {
        let msgs = self.msgs.len() as u64;
        let mut subs: Vec<&str> = self.msgs.values().map(|m| m.subject.as_str()).collect();
        subs.sort();
        subs.dedup();
        StreamState {
            msgs,
            bytes: self.bytes(),
            first_seq: self.first,
            first_ts: self.first_ts,
            last_seq: self.last,
            last_ts: self.last_ts,
            num_subjects: subs.len() as u64,
            num_deleted: if msgs == 0 {
                0
            } else {
                self.last - self.first + 1 - msgs
            },
            consumer_count: 0,
        }
    }
}

#[derive(Clone, Debug)]
enum Op {
    Store {
        subj: usize,
        len: usize,
        hdr: bool,
    },
    StoreAt {
        gap: u64,
        subj: usize,
    },
    Skip,
    Remove {
        pick: u64,
        secure: bool,
    },
    Purge {
        subj: Option<usize>,
        seq: Option<u64>,
        keep: Option<u64>,
    },
    Expire {
        back: i64,
    },
    Limits(Box<StoreLimits>),
    Reopen,
}

fn limits_strategy() -> impl Strategy<Value = StoreLimits> {
    (
        prop_oneof![Just(-1i64), 3i64..20],
        prop_oneof![Just(-1i64), 300i64..2500],
        prop_oneof![Just(0u64), 3_000u64..30_000],
        prop_oneof![Just(-1i64), 1i64..4],
        prop_oneof![Just(-1i32), 20i32..60],
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(mm, mb, age, maxp, mms, new, dnps)| StoreLimits {
            max_msgs: mm,
            max_bytes: mb,
            max_age: Duration::from_nanos(age),
            max_msgs_per_subject: maxp,
            max_msg_size: mms,
            discard: if new {
                DiscardPolicy::New
            } else {
                DiscardPolicy::Old
            },
            discard_new_per_subject: dnps && new,
        })
}

fn op_strategy(reopen: bool) -> impl Strategy<Value = Op> {
    let w_reopen = if reopen { 3 } else { 0 };
    prop_oneof![
        30 => (0..SUBJECTS.len(), 0usize..50, any::<bool>())
            .prop_map(|(subj, len, hdr)| Op::Store { subj, len, hdr }),
        3 => (1u64..4, 0..SUBJECTS.len()).prop_map(|(gap, subj)| Op::StoreAt { gap, subj }),
        2 => Just(Op::Skip),
        8 => (any::<u64>(), any::<bool>()).prop_map(|(pick, secure)| Op::Remove { pick, secure }),
        4 => (
            proptest::option::of(0..FILTERS.len()),
            proptest::option::of(0u64..30),
            proptest::option::of(0u64..5)
        )
            .prop_map(|(subj, seq, keep)| Op::Purge { subj, seq, keep }),
        3 => (0i64..40_000).prop_map(|back| Op::Expire { back }),
        3 => limits_strategy().prop_map(|l| Op::Limits(Box::new(l))),
        w_reopen => Just(Op::Reopen),
    ]
}

fn err_name(e: &StoreError) -> &'static str {
    match e {
        StoreError::MaxMsgs => "MaxMsgs",
        StoreError::MaxBytes => "MaxBytes",
        StoreError::MaxMsgsPerSubject => "MaxMsgsPerSubject",
        StoreError::MaxMsgSize => "MaxMsgSize",
        _ => "other",
    }
}

fn check(store: &dyn MsgStore, m: &Model) -> Result<(), TestCaseError> {
    let st = store.state();
    prop_assert_eq!(&st, &m.state());
    let deleted: Vec<u64> = if m.msgs.is_empty() {
        vec![]
    } else {
        (m.first..=m.last)
            .filter(|s| !m.msgs.contains_key(s))
            .collect()
    };
    prop_assert_eq!(store.deleted(), deleted);
    for s in m.first.saturating_sub(1)..=m.last + 1 {
        match (store.load(s), m.msgs.get(&s)) {
            (Ok(got), Some(want)) => {
                prop_assert_eq!(&got.subject, &want.subject);
                prop_assert_eq!(&got.payload[..], &want.payload[..]);
                prop_assert_eq!(&got.headers[..], &want.hdr[..]);
                prop_assert_eq!(got.ts, want.ts);
            }
            (Err(StoreError::NotFound | StoreError::Deleted), None) => {}
            (got, want) => prop_assert!(false, "load({}) = {:?}, model {:?}", s, got, want),
        }
    }
    for f in FILTERS {
        let want_last = m
            .msgs
            .iter()
            .rev()
            .find(|(_, x)| filter::matches(f, &x.subject))
            .map(|(s, _)| *s);
        prop_assert_eq!(
            store.load_last(f).ok().map(|x| x.seq),
            want_last,
            "last {}",
            f
        );
        for start in [
            0,
            m.first,
            m.first + 1,
            (m.first + m.last) / 2,
            m.last,
            m.last + 1,
        ] {
            let want = m
                .msgs
                .range(start..)
                .find(|(_, x)| filter::matches(f, &x.subject))
                .map(|(s, _)| *s);
            prop_assert_eq!(
                store.load_next(f, start).ok().map(|x| x.seq),
                want,
                "next {} {}",
                f,
                start
            );
            let np = m
                .msgs
                .range(start..)
                .filter(|(_, x)| filter::matches(f, &x.subject))
                .count() as u64;
            prop_assert_eq!(store.num_pending(f, start), np, "pending {} {}", f, start);
        }
        let mut ss: BTreeMap<String, SubjectState> = BTreeMap::new();
        for (s, x) in &m.msgs {
            if filter::matches(f, &x.subject) {
                let e = ss.entry(x.subject.clone()).or_insert(SubjectState {
                    msgs: 0,
                    first: *s,
                    last: *s,
                });
                e.msgs += 1;
                e.last = *s;
            }
        }
        prop_assert_eq!(store.subjects_state(f), ss, "subjects_state {}", f);
    }
    Ok(())
}

fn run(ops: Vec<Op>, init: StoreLimits, file: bool) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().unwrap();
    let cfg = |l: &StoreLimits| FileStoreConfig {
        dir: dir.path().join("s"),
        block_size: 256,
        sync: SyncPolicy::Always,
        limits: l.clone(),
    };
    let open = |l: &StoreLimits| -> Arc<dyn MsgStore> {
        if file {
            Arc::new(FileStore::open(cfg(l)).unwrap())
        } else {
            Arc::new(MemStore::new(l.clone()))
        }
    };
    let mut store = open(&init);
    let mut m = Model {
        limits: init,
        file,
        msgs: BTreeMap::new(),
        first: 0,
        first_ts: 0,
        last: 0,
        last_ts: 0,
    };
    let mut clock = BASE_TS;
    for op in ops {
        clock += 1000;
        match op {
            Op::Store { subj, len, hdr } => {
                let msg = MMsg {
                    subject: SUBJECTS[subj].into(),
                    ts: clock,
                    hdr: if hdr {
                        b"NATS/1.0\r\nK: v\r\n\r\n".to_vec()
                    } else {
                        vec![]
                    },
                    payload: vec![b'x'.wrapping_add(len as u8); len],
                };
                let got = store
                    .store(&msg.subject, &msg.hdr, &msg.payload, msg.ts)
                    .map(|(s, _)| s)
                    .map_err(|e| err_name(&e));
                let want = m.store(msg);
                prop_assert_eq!(got, want);
            }
            Op::StoreAt { gap, subj } => {
                let seq = m.last + gap;
                let msg = MMsg {
                    subject: SUBJECTS[subj].into(),
                    ts: clock,
                    hdr: vec![],
                    payload: b"at".to_vec(),
                };
                store
                    .store_at(seq, &msg.subject, &msg.hdr, &msg.payload, msg.ts)
                    .unwrap();
                m.insert(seq, msg);
                prop_assert!(matches!(
                    store.store_at(seq, "a", b"", b"", clock),
                    Err(StoreError::SequenceMismatch)
                ));
            }
            Op::Skip => {
                prop_assert_eq!(store.skip().unwrap(), m.skip());
            }
            Op::Remove { pick, secure } => {
                let seq = pick % (m.last + 3);
                let want = m.rm(seq);
                prop_assert_eq!(store.remove(seq, secure).unwrap(), want);
            }
            Op::Purge { subj, seq, keep } => {
                let f = subj.map(|i| FILTERS[i]);
                let want = m.purge(f, seq, keep);
                prop_assert_eq!(store.purge(f, seq, keep).unwrap(), want);
            }
            Op::Expire { back } => {
                let now = clock - back;
                let want = m.expire(now);
                prop_assert_eq!(store.expire(now).unwrap(), want);
            }
            Op::Limits(l) => {
                m.update_limits((*l).clone());
                store.update_limits(*l).unwrap();
            }
            Op::Reopen => {
                store.stop().unwrap();
                drop(store);
                store = open(&m.limits);
            }
        }
        check(store.as_ref(), &m)?;
    }
    if file {
        // A final reopen must reproduce the same state too.
        store.stop().unwrap();
        drop(store);
        let s = open(&m.limits);
        check(s.as_ref(), &m)?;
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn memstore_matches_model(
        init in limits_strategy(),
        ops in proptest::collection::vec(op_strategy(false), 1..60),
    ) {
        run(ops, init, false)?;
    }

    #[test]
    fn filestore_matches_model(
        init in limits_strategy(),
        ops in proptest::collection::vec(op_strategy(true), 1..60),
    ) {
        run(ops, init, true)?;
    }
}
