//! Power cuts during consumer-state saves: the real save path (`write`/`read`) runs on the
//! simulated disk, which is cut (torn: each file keeps a random prefix of its unsynced bytes)
//! before a random write, fsync or rename. A save that returned is a confirmed save: the acks
//! it covers were answered. After recovery no confirmed ack may be missing, and the state
//! must be one that was actually written (the last confirmed one, or the one being saved),
//! never a mix or something newer.

use std::path::Path;
use std::time::Instant;

use chrono::Utc;
use rnats_store::SimIo;

use super::*;
use crate::types::{AckPolicy, ConsumerConfig};

fn config() -> ConsumerConfig {
    ConsumerConfig {
        durable: "D".into(),
        ack_policy: AckPolicy::Explicit,
        ack_wait: 30_000_000_000,
        ..ConsumerConfig::default()
    }
}

/// Small deterministic generator (no dependency on the test order).
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// Stream sequences this persisted state counts as acked.
fn acked(p: &Persisted) -> Vec<u64> {
    let mut st = State::new(config());
    st.restore(p.clone());
    (1..=p.delivered_sseq).filter(|s| st.is_acked(*s)).collect()
}

fn same(a: &Persisted, b: &Persisted) -> bool {
    serde_json::to_value(a).ok() == serde_json::to_value(b).ok()
}

/// One run: deliver and ack in random order, saving after each step, until the armed cut.
fn run(seed: u64) {
    let io = SimIo::new();
    let dir = Path::new("/sim/obs/D");
    let created = Utc::now();
    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    // About seven changes per save: cut somewhere in the first ~40 saves.
    io.crash_after(rng.below(280), seed);
    let mut st = State::new(config());
    let mut confirmed: Option<Persisted> = None;
    let mut in_flight: Option<Persisted> = None;
    for _ in 0..60 {
        for _ in 0..rng.below(6) {
            st.dseq += 1;
            st.delivered_sseq = st.next_sseq;
            st.next_sseq += 1;
            let (sseq, dseq) = (st.delivered_sseq, st.dseq);
            st.pending.insert(
                sseq,
                Pending {
                    dseq,
                    deadline: Instant::now(),
                    sent: Instant::now(),
                },
            );
            st.redelivered.insert(sseq, 1);
        }
        let pending: Vec<u64> = st.pending.keys().copied().collect();
        for s in pending {
            if rng.below(3) == 0 {
                st.pending.remove(&s);
                st.redelivered.remove(&s);
            }
        }
        st.advance_floor();
        let p = st.persisted();
        in_flight = Some(p.clone());
        match write(&io, dir, &created, &st.config, &p, true) {
            Ok(()) => confirmed = in_flight.take(),
            Err(_) => break,
        }
    }
    if io.crash_pending() {
        io.power_cut_torn(seed);
    }
    let loaded = read(&io, dir);
    let Some(confirmed) = confirmed else {
        // Nothing was ever confirmed: any outcome but a made-up state is fine.
        if let Ok(l) = loaded {
            if let (Some(s), Some(f)) = (&l.state, &in_flight) {
                assert!(same(s, f), "seed {seed}: state never written: {s:?}");
            }
        }
        return;
    };
    let l = loaded.unwrap_or_else(|e| panic!("seed {seed}: meta lost after a confirmed save: {e}"));
    assert_eq!(l.meta.config, config(), "seed {seed}");
    let got = l
        .state
        .unwrap_or_else(|| panic!("seed {seed}: confirmed state lost ({:?})", l.damaged));
    let ok = same(&got, &confirmed) || in_flight.as_ref().is_some_and(|f| same(&got, f));
    assert!(
        ok,
        "seed {seed}: recovered {got:?}\n confirmed {confirmed:?}\n in flight {in_flight:?}"
    );
    let have = acked(&got);
    for s in acked(&confirmed) {
        assert!(
            have.binary_search(&s).is_ok(),
            "seed {seed}: confirmed ack of {s} lost"
        );
    }
}

#[test]
fn confirmed_acks_survive_power_cuts_at_random_points() {
    for seed in 1..=400 {
        run(seed);
    }
}

#[test]
fn damaged_state_falls_back_to_previous_save_and_is_reported() {
    let io = SimIo::new();
    let dir = Path::new("/sim/obs/E");
    let created = Utc::now();
    let mut st = State::new(config());
    let mut saves = Vec::new();
    for n in 1..=3u64 {
        st.delivered_sseq = n * 10;
        st.next_sseq = n * 10 + 1;
        st.dseq = n * 10;
        st.advance_floor();
        saves.push(st.persisted());
        write(&io, dir, &created, &st.config, &st.persisted(), true).unwrap();
    }
    let path = dir.join("state.json");
    let good = io.contents(&path).unwrap();
    // A flipped digit still parses as JSON: only the checksum catches it.
    let at = good.iter().position(|b| *b == b'3').unwrap();
    let mut bad = good.clone();
    bad[at] = b'7';
    io.set_contents(&path, bad);
    let l = read(&io, dir).unwrap();
    assert!(
        l.damaged.as_deref().unwrap().contains("checksum"),
        "{:?}",
        l.damaged
    );
    assert!(same(l.state.as_ref().unwrap(), &saves[1]));
    // Both damaged: no state, so the consumer uses its deliver policy.
    io.set_contents(&dir.join("state.prev.json"), b"{\"next".to_vec());
    io.set_contents(&path, b"garbage".to_vec());
    let l = read(&io, dir).unwrap();
    assert!(l.state.is_none() && l.damaged.is_some());
}
