//! Subject mappings (`mappings {}` at the top level for `$G`, or inside an
//! account): a client's publish to a matching subject is delivered under
//! the mapped subject instead. A mapping may split traffic between several
//! destinations by weight (canary and A/B rollouts); weights short of 100%
//! leave the rest on the original subject, as in nats-server.

use rnats_conf::{ConfError, Spanned};
use rnats_subject::Transform;

/// One mapping: a source pattern and its weighted destinations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mapping {
    pub source: String,
    pub destinations: Vec<Destination>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destination {
    pub subject: String,
    /// Percent, 1..=100.
    pub weight: u8,
    transform: Transform,
}

impl Mapping {
    /// The subject a publish to `subject` goes to, or `None` when this
    /// mapping does not apply (or the draw fell on the unmapped remainder).
    pub fn apply(&self, subject: &str) -> Option<String> {
        if !rnats_subject::matches(self.source.as_bytes(), subject.as_bytes()) {
            return None;
        }
        let dest = match self.destinations.as_slice() {
            [only] if only.weight == 100 => only,
            many => {
                let draw = fastrand::u8(1..=100);
                let mut total = 0u16;
                many.iter().find(|d| {
                    total += u16::from(d.weight);
                    u16::from(draw) <= total
                })?
            }
        };
        dest.transform.apply(subject)
    }
}

/// The first mapping that applies to `subject`.
pub fn map(mappings: &[Mapping], subject: &[u8]) -> Option<String> {
    let subject = std::str::from_utf8(subject).ok()?;
    mappings.iter().find_map(|m| m.apply(subject))
}

fn weight_of(v: &Spanned) -> Result<u8, ConfError> {
    let n = match v.as_int() {
        Ok(n) => n,
        Err(_) => {
            let s = v.as_str()?;
            s.trim()
                .trim_end_matches('%')
                .parse::<i64>()
                .map_err(|_| v.invalid(format!("invalid weight {s:?}")))?
        }
    };
    if !(1..=100).contains(&n) {
        return Err(v.invalid(format!("invalid weight {n}, must be between 1 and 100")));
    }
    Ok(n as u8)
}

fn destination(
    source: &str,
    subject: &str,
    weight: u8,
    at: &Spanned,
) -> Result<Destination, ConfError> {
    let transform = Transform::new(source, subject)
        .map_err(|e| at.invalid(format!("Error adding mapping for {source:?}: {e}")))?;
    Ok(Destination {
        subject: subject.to_string(),
        weight,
        transform,
    })
}

/// Parses a `mappings` block.
pub fn parse(v: &Spanned) -> Result<Vec<Mapping>, ConfError> {
    let mut out = Vec::new();
    for (source, entry) in v.as_map()?.iter() {
        if entry.used_as_variable {
            continue;
        }
        if !rnats_subject::is_valid_subject(source.as_bytes()) {
            return Err(entry.value.invalid(format!(
                "Error adding mapping for {source:?}: invalid subject"
            )));
        }
        let items: Vec<&Spanned> = match entry.value.as_array() {
            Ok(list) => list.iter().collect(),
            Err(_) => vec![&entry.value],
        };
        let mut destinations = Vec::new();
        for item in items {
            if let Ok(subject) = item.as_str() {
                destinations.push(destination(source, subject, 100, item)?);
                continue;
            }
            let m = item.as_map()?;
            let subject = m
                .get_ignore_case("destination")
                .or_else(|| m.get_ignore_case("dest"))
                .ok_or_else(|| item.invalid("mapping entry needs a destination"))?
                .as_str()?;
            let weight = match m.get_ignore_case("weight") {
                Some(w) => weight_of(w)?,
                None => 100,
            };
            destinations.push(destination(source, subject, weight, item)?);
        }
        let total: u32 = destinations.iter().map(|d| u32::from(d.weight)).sum();
        if total > 100 {
            return Err(entry.value.invalid(format!(
                "Error adding mapping for {source:?}: total weight of {total} exceeds 100"
            )));
        }
        out.push(Mapping {
            source: source.to_string(),
            destinations,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_str(text: &str) -> Result<Vec<Mapping>, ConfError> {
        let map = rnats_conf::parse_str(text).expect("parses");
        parse(map.get("mappings").expect("mappings"))
    }

    #[test]
    fn plain_wildcard_and_weighted() {
        let m = parse_str(
            r#"mappings {
                "foo": "bar"
                "orders.*.*": "orders.$2.$1"
                "canary": [{destination: "v1", weight: "100%"}]
                "split": [{destination: "a", weight: 50}, {destination: "b", weight: 50}]
                "some": [{destination: "s", weight: 10}]
            }"#,
        )
        .expect("valid");
        assert_eq!(map(&m, b"foo").as_deref(), Some("bar"));
        assert_eq!(map(&m, b"orders.eu.7").as_deref(), Some("orders.7.eu"));
        assert_eq!(map(&m, b"canary").as_deref(), Some("v1"));
        assert_eq!(map(&m, b"other"), None);
        let (mut a, mut b) = (0, 0);
        for _ in 0..1000 {
            match map(&m, b"split").as_deref() {
                Some("a") => a += 1,
                Some("b") => b += 1,
                other => panic!("{other:?}"),
            }
        }
        assert!(a > 350 && b > 350, "a={a} b={b}");
        // 10% mapped, the rest keeps its subject.
        let mapped = (0..1000).filter(|_| map(&m, b"some").is_some()).count();
        assert!((30..250).contains(&mapped), "{mapped}");
    }

    #[test]
    fn bad_mappings() {
        for text in [
            r#"mappings { "a": [{destination: "x", weight: 80}, {destination: "y", weight: 30}] }"#,
            r#"mappings { "a.*": "b.$2" }"#,
            r#"mappings { "a": [{destination: "x", weight: 0}] }"#,
            r#"mappings { "a..b": "c" }"#,
        ] {
            assert!(parse_str(text).is_err(), "{text}");
        }
    }
}
