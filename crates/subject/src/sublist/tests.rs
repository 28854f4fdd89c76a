//! Sublist tests, including a model check against the naive matcher.

use super::*;
use crate::matches;
use proptest::prelude::*;

fn sorted(mut v: Vec<u32>) -> Vec<u32> {
    v.sort_unstable();
    v
}

#[test]
fn literal_and_wildcards() {
    let mut sl = Sublist::new();
    sl.insert(b"foo.bar", None, 1).unwrap();
    sl.insert(b"foo.*", None, 2).unwrap();
    sl.insert(b"foo.>", None, 3).unwrap();
    sl.insert(b">", None, 4).unwrap();
    sl.insert(b"*.bar", None, 5).unwrap();
    assert_eq!(sorted(sl.matches(b"foo.bar").psubs), vec![1, 2, 3, 4, 5]);
    assert_eq!(sorted(sl.matches(b"foo.baz").psubs), vec![2, 3, 4]);
    assert_eq!(sorted(sl.matches(b"foo.bar.baz").psubs), vec![3, 4]);
    assert_eq!(sorted(sl.matches(b"foo").psubs), vec![4]);
    assert_eq!(sl.count(), 5);
}

#[test]
fn invalid_subjects_are_refused() {
    let mut sl = Sublist::new();
    for bad in [&b""[..], b"foo..bar", b"foo.>.bar", b".foo", b"foo."] {
        assert_eq!(sl.insert(bad, None, 1), Err(SublistError::InvalidSubject));
    }
    assert_eq!(sl.count(), 0);
    assert!(sl.matches(b"foo..bar").is_empty());
}

#[test]
fn queue_groups_merge_across_branches() {
    let mut sl = Sublist::new();
    sl.insert(b"foo.bar", Some(b"q"), 1).unwrap();
    sl.insert(b"foo.*", Some(b"q"), 2).unwrap();
    sl.insert(b"foo.*", Some(b"r"), 3).unwrap();
    sl.insert(b"foo.bar", None, 4).unwrap();
    let r = sl.matches(b"foo.bar");
    assert_eq!(r.psubs, vec![4]);
    assert_eq!(r.qsubs.len(), 2);
    let q = r.qsubs.iter().find(|g| &*g.name == b"q").unwrap();
    assert_eq!(sorted(q.members.clone()), vec![1, 2]);
}

#[test]
fn remove_prunes_and_bumps_generation() {
    let mut sl = Sublist::new();
    sl.insert(b"a.b.c", None, 1).unwrap();
    sl.insert(b"a.b.c", Some(b"q"), 2).unwrap();
    let g = sl.generation();
    assert!(!sl.remove(b"a.b.c", None, &2));
    assert!(!sl.remove(b"a.b", None, &1));
    assert!(sl.remove(b"a.b.c", None, &1));
    assert!(sl.generation() > g);
    assert!(sl.remove(b"a.b.c", Some(b"q"), &2));
    assert_eq!(sl.count(), 0);
    assert!(sl.root.is_empty(), "empty branches are pruned");
}

#[test]
fn for_each_reports_subjects() {
    let mut sl = Sublist::new();
    sl.insert(b"a.*.c", None, 1).unwrap();
    sl.insert(b"a.>", Some(b"q"), 2).unwrap();
    let mut seen = Vec::new();
    sl.for_each(|s, q, &i| {
        seen.push((
            String::from_utf8(s.to_vec()).unwrap(),
            q.map(|q| q.to_vec()),
            i,
        ))
    });
    seen.sort();
    assert_eq!(
        seen,
        vec![
            ("a.*.c".into(), None, 1),
            ("a.>".into(), Some(b"q".to_vec()), 2)
        ]
    );
}

fn token() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("a".to_string()),
        Just("b".to_string()),
        Just("c".to_string()),
        Just("dd".to_string())
    ]
}

fn pattern() -> impl Strategy<Value = String> {
    (
        proptest::collection::vec(prop_oneof![4 => token(), 1 => Just("*".to_string())], 1..4),
        any::<bool>(),
    )
        .prop_map(|(mut toks, fwc)| {
            if fwc {
                toks.push(">".into());
            }
            toks.join(".")
        })
}

fn literal() -> impl Strategy<Value = String> {
    proptest::collection::vec(token(), 1..5).prop_map(|t| t.join("."))
}

proptest! {
    /// After random inserts and removals, the sublist agrees with testing
    /// every live subscription by the naive matcher.
    #[test]
    fn agrees_with_naive_matcher(
        subs in proptest::collection::vec((pattern(), proptest::option::of(prop_oneof![Just("q1"), Just("q2")])), 1..40),
        removals in proptest::collection::vec(any::<prop::sample::Index>(), 0..20),
        probes in proptest::collection::vec(literal(), 1..20),
    ) {
        let mut sl = Sublist::new();
        let mut live: Vec<(usize, String, Option<&str>)> = Vec::new();
        for (i, (p, q)) in subs.iter().enumerate() {
            sl.insert(p.as_bytes(), q.map(str::as_bytes), i).unwrap();
            live.push((i, p.clone(), *q));
        }
        for r in removals {
            if live.is_empty() { break; }
            let (i, p, q) = live.remove(r.index(live.len()));
            prop_assert!(sl.remove(p.as_bytes(), q.map(str::as_bytes), &i));
        }
        prop_assert_eq!(sl.count(), live.len());
        for probe in &probes {
            let r = sl.matches(probe.as_bytes());
            let mut want_p: Vec<usize> = live.iter().filter(|(_, p, q)| q.is_none() && matches(p.as_bytes(), probe.as_bytes())).map(|s| s.0).collect();
            let mut got_p = r.psubs.clone();
            want_p.sort_unstable();
            got_p.sort_unstable();
            prop_assert_eq!(got_p, want_p);
            for qname in ["q1", "q2"] {
                let mut want: Vec<usize> = live.iter().filter(|(_, p, q)| *q == Some(qname) && matches(p.as_bytes(), probe.as_bytes())).map(|s| s.0).collect();
                want.sort_unstable();
                let mut got: Vec<usize> = r.qsubs.iter().filter(|g| &*g.name == qname.as_bytes()).flat_map(|g| g.members.clone()).collect();
                got.sort_unstable();
                prop_assert_eq!(got, want);
                prop_assert!(r.qsubs.iter().filter(|g| &*g.name == qname.as_bytes()).count() <= 1);
            }
        }
    }
}
