//! workloads/mod.rs — the catalogue of workloads (what to run, which metrics
//! each yields) and the dispatch from a workload to its load generator.

pub mod jetstream;
pub mod latency;
pub mod publisher;
pub mod rss;
pub mod subscriber;
pub mod throughput;

use std::time::Duration;

use anyhow::Result;

use crate::server::{Launch, Server};
use jetstream::Storage;

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
    /// Messages pre-filled into the stream for fetch, replay, restart and
    /// direct get.
    pub js_msgs: u64,
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
    /// A JetStream workload (server started with `-js -sd <temp dir>`).
    Js(Js),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Js {
    /// Acked publishing, `window` PubAcks outstanding (1 = sync);
    /// `sync_always` adds `jetstream { sync_interval: always }`.
    Pub {
        storage: Storage,
        window: usize,
        sync_always: bool,
    },
    /// Pull consumer fetching the pre-filled stream in batches.
    Fetch { batch: u64, ack: bool },
    /// Restart time of a server holding a pre-filled file stream.
    Restart,
    /// Direct get by random sequence, `inflight` outstanding.
    DirectGet { inflight: usize },
    /// KV put (acked publish to `$KV.b.<key>`).
    KvPut { window: usize },
    /// KV get (direct get of a key's last message).
    KvGet { inflight: usize },
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
            Kind::Js(Js::Pub { .. } | Js::Fetch { .. }) => THROUGHPUT,
            Kind::Js(Js::Restart) => RESTART,
            Kind::Js(Js::DirectGet { .. } | Js::KvPut { .. } | Js::KvGet { .. }) => OPS,
        }
    }

    /// How the server for this workload is started.
    pub fn launch(&self) -> Launch {
        match self.kind {
            Kind::Js(js) => Launch {
                jetstream: true,
                sync_always: matches!(
                    js,
                    Js::Pub {
                        sync_always: true,
                        ..
                    }
                ),
            },
            _ => Launch::default(),
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
            Kind::Js(js) => {
                let (addr, n) = (server.addr, cfg.js_msgs);
                match js {
                    Js::Pub {
                        storage, window, ..
                    } => jetstream::publish(addr, storage, size, window, cfg.limit),
                    Js::Fetch { batch, ack } => jetstream::fetch(addr, n, size, batch, ack),
                    Js::Restart => jetstream::restart(server, n, size),
                    Js::DirectGet { inflight } => {
                        jetstream::direct_get(addr, n, size, inflight, cfg.limit)
                    }
                    Js::KvPut { window } => jetstream::kv_put(addr, size, window, cfg.limit),
                    Js::KvGet { inflight } => jetstream::kv_get(addr, size, inflight, cfg.limit),
                }
            }
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

pub const OPS: &[MetricDef] = &[MetricDef {
    key: "ops_per_sec",
    unit: "ops/s",
    lower_is_better: false,
}];

pub const RESTART: &[MetricDef] = &[
    MetricDef {
        key: "restart_ms",
        unit: "ms",
        lower_is_better: true,
    },
    MetricDef {
        key: "stop_ms",
        unit: "ms",
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
    js_catalogue(&mut v);
    v
}

/// The JetStream workloads (ids start with `js-`, so `--only js` picks them).
fn js_catalogue(v: &mut Vec<Spec>) {
    let mut js = |workload: &'static str, size: usize, kind: Js| {
        v.push(Spec {
            workload,
            size: Some(size),
            kind: Kind::Js(kind),
        })
    };
    for (workload, storage, window) in [
        ("js-pub-sync-file", Storage::File, 1),
        ("js-pub-sync-mem", Storage::Memory, 1),
        ("js-pub-async-file", Storage::File, 256),
        ("js-pub-async-mem", Storage::Memory, 256),
    ] {
        for size in [128, 1024] {
            js(
                workload,
                size,
                Js::Pub {
                    storage,
                    window,
                    sync_always: false,
                },
            );
        }
    }
    js(
        "js-pub-async-file-fsync",
        128,
        Js::Pub {
            storage: Storage::File,
            window: 256,
            sync_always: true,
        },
    );
    js(
        "js-fetch-ack",
        128,
        Js::Fetch {
            batch: 500,
            ack: true,
        },
    );
    js(
        "js-replay-noack",
        128,
        Js::Fetch {
            batch: 1000,
            ack: false,
        },
    );
    js("js-restart", 128, Js::Restart);
    js("js-direct-get", 128, Js::DirectGet { inflight: 64 });
    js("js-kv-put-sync", 128, Js::KvPut { window: 1 });
    js("js-kv-put-16", 128, Js::KvPut { window: 16 });
    js("js-kv-get-sync", 128, Js::KvGet { inflight: 1 });
    js("js-kv-get-16", 128, Js::KvGet { inflight: 16 });
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
        let js: Vec<_> = c.iter().filter(|s| matches(s, "js")).collect();
        assert!(js.len() >= 10);
        assert!(js.iter().all(|s| s.launch().jetstream));
        assert!(c
            .iter()
            .filter(|s| !matches(s, "js"))
            .all(|s| !s.launch().jetstream));
        assert_eq!(
            c.iter()
                .filter(|s| s.launch().sync_always)
                .map(Spec::id)
                .collect::<Vec<_>>(),
            ["js-pub-async-file-fsync/128B"]
        );
        assert_eq!(c.iter().filter(|s| matches(s, "js-pub-sync")).count(), 4);
    }
}
