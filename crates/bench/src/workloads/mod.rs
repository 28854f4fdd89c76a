//! workloads/mod.rs — the catalogue of workloads (what to run, which metrics
//! each yields) and the dispatch from a workload to its load generator.

pub mod latency;
pub mod publisher;
pub mod rss;
pub mod subscriber;
pub mod throughput;

use std::time::Duration;

use anyhow::Result;

use crate::server::Server;

/// How much work one measurement does.
#[derive(Clone, Copy, Debug)]
pub enum Limit {
    /// Publish exactly this many messages (requests for latency).
    Msgs(u64),
    /// Publish for this long.
    Time(Duration),
}

/// Settings shared by all workloads.
#[derive(Clone, Debug)]
pub struct Config {
    pub limit: Limit,
    /// Request count for the latency workload in `Msgs` mode.
    pub requests: u64,
    /// Idle connections opened by the RSS workload.
    pub idle_conns: usize,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// One publisher, no subscribers.
    PubOnly,
    /// One publisher, `subs` subscribers; `queue` puts them in one queue group.
    PubSub { subs: usize, queue: bool },
    /// Sequential request-reply round trips.
    ReqReply,
    /// Server RSS growth per idle client connection.
    IdleRss,
}

/// One row group of the report: a workload at one payload size.
#[derive(Clone, Debug)]
pub struct Spec {
    pub workload: &'static str,
    pub size: Option<usize>,
    pub kind: Kind,
}

impl Spec {
    pub fn id(&self) -> String {
        match self.size {
            Some(s) => format!("{}/{}", self.workload, size_label(s)),
            None => self.workload.to_string(),
        }
    }

    pub fn metrics(&self) -> &'static [MetricDef] {
        match self.kind {
            Kind::PubOnly | Kind::PubSub { .. } => THROUGHPUT,
            Kind::ReqReply => LATENCY,
            Kind::IdleRss => RSS,
        }
    }

    /// Runs one measurement against a started server; values are in the
    /// order of `metrics()`.
    pub fn run(&self, server: &mut Server, cfg: &Config) -> Result<Vec<f64>> {
        let size = self.size.unwrap_or(128);
        match self.kind {
            Kind::PubOnly => throughput::pub_only(server.addr, size, cfg.limit),
            Kind::PubSub { subs, queue } => {
                throughput::pub_sub(server.addr, size, subs, queue, cfg.limit)
            }
            Kind::ReqReply => latency::req_reply(server.addr, size, cfg),
            Kind::IdleRss => rss::idle_rss(server, cfg.idle_conns),
        }
    }
}

pub fn size_label(s: usize) -> String {
    if s >= 1024 && s % 1024 == 0 {
        format!("{}KiB", s / 1024)
    } else {
        format!("{s}B")
    }
}

/// A figure a workload reports.
#[derive(Clone, Copy, Debug)]
pub struct MetricDef {
    pub key: &'static str,
    pub unit: &'static str,
    pub lower_is_better: bool,
}

pub const THROUGHPUT: &[MetricDef] = &[
    MetricDef {
        key: "msgs_per_sec",
        unit: "msgs/s",
        lower_is_better: false,
    },
    MetricDef {
        key: "mb_per_sec",
        unit: "MB/s",
        lower_is_better: false,
    },
];

pub const LATENCY: &[MetricDef] = &[
    MetricDef {
        key: "p50_us",
        unit: "us",
        lower_is_better: true,
    },
    MetricDef {
        key: "p99_us",
        unit: "us",
        lower_is_better: true,
    },
    MetricDef {
        key: "p999_us",
        unit: "us",
        lower_is_better: true,
    },
];

pub const RSS: &[MetricDef] = &[
    MetricDef {
        key: "bytes_per_conn",
        unit: "B/conn",
        lower_is_better: true,
    },
    MetricDef {
        key: "idle_rss_mib",
        unit: "MiB",
        lower_is_better: true,
    },
];

/// Every workload, in report order.
pub fn catalogue() -> Vec<Spec> {
    let mut v = Vec::new();
    for s in [16, 128, 1024] {
        v.push(Spec {
            workload: "pub-only",
            size: Some(s),
            kind: Kind::PubOnly,
        });
    }
    for s in [16, 128, 1024] {
        v.push(Spec {
            workload: "pub-sub",
            size: Some(s),
            kind: Kind::PubSub {
                subs: 1,
                queue: false,
            },
        });
    }
    v.push(Spec {
        workload: "fan-out-5",
        size: Some(128),
        kind: Kind::PubSub {
            subs: 5,
            queue: false,
        },
    });
    v.push(Spec {
        workload: "queue-2",
        size: Some(128),
        kind: Kind::PubSub {
            subs: 2,
            queue: true,
        },
    });
    v.push(Spec {
        workload: "req-reply",
        size: Some(128),
        kind: Kind::ReqReply,
    });
    v.push(Spec {
        workload: "idle-rss",
        size: None,
        kind: Kind::IdleRss,
    });
    v
}

/// `--only` filter: comma-separated workload names, ids or id prefixes.
pub fn matches(spec: &Spec, filter: &str) -> bool {
    let id = spec.id();
    filter
        .split(',')
        .map(str::trim)
        .filter(|f| !f.is_empty())
        .any(|f| f == spec.workload || id.eq_ignore_ascii_case(f) || id.starts_with(f))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_and_ids() {
        let c = catalogue();
        let ids: Vec<String> = c.iter().map(Spec::id).collect();
        assert!(ids.contains(&"pub-only/1KiB".to_string()));
        assert!(ids.contains(&"idle-rss".to_string()));
        let n = c.iter().filter(|s| matches(s, "pub-sub")).count();
        assert_eq!(n, 3);
        let n = c
            .iter()
            .filter(|s| matches(s, "pub-only/16B,req-reply"))
            .count();
        assert_eq!(n, 2);
        assert_eq!(c.iter().filter(|s| matches(s, "nope")).count(), 0);
    }
}
