//! report.rs — collected measurements, medians, ratios, and the two output
//! forms: a plain-text table and JSON with every run's raw values.

use serde::Serialize;

use crate::server::Side;
use crate::workloads::{MetricDef, Spec};

/// All runs of one workload on one server.
#[derive(Debug, Default, Clone)]
pub struct SideRuns {
    /// One entry per successful run, values in `Spec::metrics()` order.
    pub runs: Vec<Vec<f64>>,
    pub errors: Vec<String>,
}

impl SideRuns {
    fn values(&self, metric: usize) -> Vec<f64> {
        self.runs
            .iter()
            .filter_map(|r| r.get(metric).copied())
            .collect()
    }
}

/// Everything measured for one workload.
#[derive(Debug, Clone)]
pub struct SpecResult {
    pub spec: Spec,
    /// `None` when that server was not benchmarked at all.
    pub reference: Option<SideRuns>,
    pub rnats: Option<SideRuns>,
}

impl SpecResult {
    pub fn side_mut(&mut self, side: Side) -> &mut SideRuns {
        match side {
            Side::Reference => self.reference.get_or_insert_with(Default::default),
            Side::Rnats => self.rnats.get_or_insert_with(Default::default),
        }
    }
}

pub fn median(v: &[f64]) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let m = s.len() / 2;
    Some(if s.len() % 2 == 1 {
        s[m]
    } else {
        (s[m - 1] + s[m]) / 2.0
    })
}

fn ratio(rnats: Option<f64>, reference: Option<f64>) -> Option<f64> {
    match (rnats, reference) {
        (Some(a), Some(b)) if b != 0.0 => Some(a / b),
        _ => None,
    }
}

#[derive(Serialize)]
pub struct JsonSide {
    pub median: Option<f64>,
    pub runs: Vec<f64>,
    pub errors: Vec<String>,
}

#[derive(Serialize)]
pub struct JsonRow {
    pub id: String,
    pub workload: &'static str,
    pub payload_bytes: Option<usize>,
    pub metric: &'static str,
    pub unit: &'static str,
    pub lower_is_better: bool,
    pub reference: Option<JsonSide>,
    pub rnats: Option<JsonSide>,
    /// rnats / reference medians.
    pub ratio: Option<f64>,
}

#[derive(Serialize)]
pub struct JsonReport {
    pub reference_bin: String,
    pub reference_version: Option<String>,
    pub rnats_bin: String,
    pub rnats_version: Option<String>,
    pub runs: usize,
    pub limit: String,
    pub results: Vec<JsonRow>,
}

fn json_side(s: &Option<SideRuns>, i: usize) -> Option<JsonSide> {
    s.as_ref().map(|s| {
        let runs = s.values(i);
        JsonSide {
            median: median(&runs),
            runs,
            errors: s.errors.clone(),
        }
    })
}

pub fn json_rows(results: &[SpecResult]) -> Vec<JsonRow> {
    let mut rows = Vec::new();
    for r in results {
        for (i, m) in r.spec.metrics().iter().enumerate() {
            let reference = json_side(&r.reference, i);
            let rnats = json_side(&r.rnats, i);
            let ratio = ratio(
                rnats.as_ref().and_then(|s| s.median),
                reference.as_ref().and_then(|s| s.median),
            );
            rows.push(JsonRow {
                id: r.spec.id(),
                workload: r.spec.workload,
                payload_bytes: r.spec.size,
                metric: m.key,
                unit: m.unit,
                lower_is_better: m.lower_is_better,
                reference,
                rnats,
                ratio,
            });
        }
    }
    rows
}

/// Human form of a value in a metric's unit.
fn fmt_value(m: &MetricDef, v: f64) -> String {
    match m.key {
        "msgs_per_sec" => {
            if v >= 1e6 {
                format!("{:.2}M msg/s", v / 1e6)
            } else {
                format!("{:.1}k msg/s", v / 1e3)
            }
        }
        "mb_per_sec" => format!("{v:.1} MB/s"),
        "ops_per_sec" => {
            if v >= 1e6 {
                format!("{:.2}M ops/s", v / 1e6)
            } else {
                format!("{:.1}k ops/s", v / 1e3)
            }
        }
        "bytes_per_conn" => format!("{v:.0} B/conn"),
        _ => format!("{v:.1} {}", m.unit),
    }
}

/// The cell for one side: median (plus MB/s for throughput), or why not.
fn cell(r: &SpecResult, side: &Option<SideRuns>, i: usize) -> (String, Option<f64>) {
    let Some(s) = side else {
        return ("-".into(), None);
    };
    let metrics = r.spec.metrics();
    let Some(med) = median(&s.values(i)) else {
        return ("FAILED".into(), None);
    };
    let mut text = fmt_value(&metrics[i], med);
    if metrics[i].key == "msgs_per_sec" {
        if let Some(mb) = median(&s.values(i + 1)) {
            text = format!("{text} ({mb:.1} MB/s)");
        }
    }
    if !s.errors.is_empty() {
        text = format!("{text} [{} failed]", s.errors.len());
    }
    (text, Some(med))
}

/// Index of a spec's first per-node share metric.
fn first_share(r: &SpecResult) -> usize {
    r.spec
        .metrics()
        .iter()
        .position(|m| m.key.starts_with("share_"))
        .unwrap_or(usize::MAX)
}

/// One row for all per-node shares from metric `first` on: medians joined
/// as `a/b/c %`, no ratio.
fn spread_row(r: &SpecResult, first: usize) -> [String; 5] {
    let n = r.spec.metrics()[first..]
        .iter()
        .take_while(|m| m.key.starts_with("share_"))
        .count();
    let text = |side: &Option<SideRuns>| match side {
        None => "-".to_string(),
        Some(s) => {
            let meds: Option<Vec<String>> = (first..first + n)
                .map(|i| median(&s.values(i)).map(|m| format!("{m:.0}")))
                .collect();
            meds.map(|m| format!("{} %", m.join("/")))
                .unwrap_or_else(|| "FAILED".into())
        }
    };
    let names: Vec<String> = (0..n)
        .map(|i| crate::server::node_name(i).to_string())
        .collect();
    [
        format!("{} spread {}", r.spec.id(), names.join("/")),
        text(&r.reference),
        text(&r.rnats),
        "-".into(),
        "share of messages per node".into(),
    ]
}

/// The plain-text table: one row per workload/size (and per latency or
/// memory figure), ratio = rnats / reference.
pub fn table(results: &[SpecResult]) -> String {
    let mut rows: Vec<[String; 5]> = vec![[
        "workload".into(),
        "reference".into(),
        "rnats".into(),
        "ratio".into(),
        "".into(),
    ]];
    for r in results {
        for (i, m) in r.spec.metrics().iter().enumerate() {
            if m.key == "mb_per_sec" {
                continue; // shown next to msgs/s; same ratio
            }
            if m.key.starts_with("share_") {
                if i == first_share(r) {
                    rows.push(spread_row(r, i));
                }
                continue;
            }
            let name = match (m.key, r.spec.metrics().len()) {
                ("msgs_per_sec" | "ops_per_sec", _) => r.spec.id(),
                _ => format!("{} {}", r.spec.id(), m.key),
            };
            let (ref_text, ref_med) = cell(r, &r.reference, i);
            let (rn_text, rn_med) = cell(r, &r.rnats, i);
            let ratio = ratio(rn_med, ref_med)
                .map(|x| format!("{x:.2}x"))
                .unwrap_or_else(|| "-".into());
            let note = if m.lower_is_better {
                "lower is better"
            } else {
                "higher is better"
            };
            rows.push([name, ref_text, rn_text, ratio, note.into()]);
        }
    }
    let mut widths = [0usize; 5];
    for row in &rows {
        for (w, c) in widths.iter_mut().zip(row.iter()) {
            *w = (*w).max(c.len());
        }
    }
    let mut out = String::new();
    for (n, row) in rows.iter().enumerate() {
        let line = format!(
            "{:<w0$}  {:>w1$}  {:>w2$}  {:>w3$}  {}",
            row[0],
            row[1],
            row[2],
            row[3],
            row[4],
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2],
            w3 = widths[3],
        );
        out.push_str(line.trim_end());
        out.push('\n');
        if n == 0 {
            let total = widths.iter().sum::<usize>() + 8;
            out.push_str(&"-".repeat(total));
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workloads::catalogue;

    #[test]
    fn medians() {
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), Some(2.5));
    }

    #[test]
    fn table_and_json_shapes() {
        let spec = catalogue()
            .into_iter()
            .find(|s| s.id() == "pub-only/16B")
            .expect("spec");
        let r = SpecResult {
            spec,
            reference: Some(SideRuns {
                runs: vec![vec![2e6, 32.0], vec![1e6, 16.0], vec![3e6, 48.0]],
                errors: vec![],
            }),
            rnats: Some(SideRuns {
                runs: vec![vec![4e6, 64.0]],
                errors: vec!["boom".into()],
            }),
        };
        let t = table(std::slice::from_ref(&r));
        assert!(t.contains("2.00M msg/s (32.0 MB/s)"), "{t}");
        assert!(t.contains("2.00x"), "{t}");
        assert!(t.contains("[1 failed]"), "{t}");
        let rows = json_rows(&[r]);
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].ratio, Some(2.0));
        assert_eq!(rows[1].reference.as_ref().map(|s| s.runs.len()), Some(3));
    }

    #[test]
    fn queue_spread_row() {
        let spec = catalogue()
            .into_iter()
            .find(|s| s.id() == "cluster-queue-3/128B")
            .expect("spec");
        let r = SpecResult {
            spec,
            reference: Some(SideRuns {
                runs: vec![vec![1e6, 128.0, 100.0, 0.0, 0.0]],
                errors: vec![],
            }),
            rnats: Some(SideRuns {
                runs: vec![vec![2e6, 256.0, 34.0, 33.0, 33.0]],
                errors: vec![],
            }),
        };
        let t = table(std::slice::from_ref(&r));
        assert!(t.contains("cluster-queue-3/128B spread a/b/c"), "{t}");
        assert!(t.contains("100/0/0 %"), "{t}");
        assert!(t.contains("34/33/33 %"), "{t}");
        assert_eq!(t.lines().count(), 4, "{t}");
        assert_eq!(json_rows(&[r]).len(), 5);
    }
}
