//! workloads/mod.rs — the catalogue of workloads (what to run, which metrics
//! each yields) and the dispatch from a workload to its load generator.

pub mod asyncnats;
pub mod jetstream;
pub mod kvwatch;
pub mod latency;
pub mod monitor;
pub mod objstore;
pub mod publisher;
pub mod rss;
pub mod subscriber;
pub mod throughput;

use std::time::Duration;

use anyhow::Result;

use crate::server::{Cluster, Launch, Server};
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
    /// Like `PubOnly` (`subs` 0) or `PubSub` over TLS: the server has a
    /// `tls {}` block and every client upgrades after INFO.
    Tls { subs: usize },
    /// Pub-sub throughput quiet and while `/varz`, `/connz`, `/jsz` are
    /// requested back to back on the monitoring port.
    MonitorFlood,
    /// A JetStream workload (server started with `-js -sd <temp dir>`).
    Js(Js),
    /// Against a 3-node cluster (`server::Cluster`), publisher / requester
    /// on node A.
    Cluster(ClusterLoad),
}

/// Which client drives a workload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Client {
    /// The raw-socket load generators (`publisher.rs`, `subscriber.rs`).
    Raw,
    /// async-nats (`asyncnats.rs`).
    AsyncNats,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClusterLoad {
    /// Publisher on A, one subscriber on B.
    PubSub(Client),
    /// Publisher on A, one queue-group member on each node; the figures
    /// include each node's share of the messages.
    Queue(Client),
    /// Requester on A, responder on B.
    ReqReply,
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
    /// KV put (acked publish to `$KV.b.<key>`); `sync_always` as for `Pub`.
    KvPut { window: usize, sync_always: bool },
    /// Acked publishing (`window` outstanding) into a file stream capped at `max_mib` MiB
    /// with discard old, pre-filled to the cap first: every timed publish discards.
    PubFull { window: usize, max_mib: u64 },
    /// KV get (direct get of a key's last message).
    KvGet { inflight: usize },
    /// KV watch fan-out: put -> watcher latency with `watchers` watchers.
    KvWatch { watchers: usize },
    /// Object store put or get of one object of the spec's size.
    Obj(objstore::Dir),
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
            Kind::PubOnly | Kind::PubSub { .. } | Kind::Tls { .. } => THROUGHPUT,
            Kind::MonitorFlood => FLOOD,
            Kind::ReqReply | Kind::Js(Js::KvWatch { .. }) => LATENCY,
            Kind::Js(Js::Obj(_)) => MBPS,
            Kind::IdleRss => RSS,
            Kind::Js(Js::Pub { .. } | Js::Fetch { .. } | Js::PubFull { .. }) => THROUGHPUT,
            Kind::Js(Js::Restart) => RESTART,
            Kind::Js(Js::DirectGet { .. } | Js::KvPut { .. } | Js::KvGet { .. }) => OPS,
            Kind::Cluster(ClusterLoad::PubSub(_)) => THROUGHPUT,
            Kind::Cluster(ClusterLoad::Queue(_)) => QUEUE_SPREAD,
            Kind::Cluster(ClusterLoad::ReqReply) => LATENCY,
        }
    }

    /// Whether this workload runs against a `Cluster` (`run_cluster`)
    /// rather than one server (`run`).
    pub fn is_cluster(&self) -> bool {
        matches!(self.kind, Kind::Cluster(_))
    }

    /// Runs one measurement against a formed cluster; values are in the
    /// order of `metrics()`.
    pub fn run_cluster(&self, cluster: &mut Cluster, cfg: &Config) -> Result<Vec<f64>> {
        let size = self.size.unwrap_or(128);
        let nodes = cluster.addrs();
        let Kind::Cluster(load) = self.kind else {
            anyhow::bail!("{} is not a cluster workload", self.id());
        };
        let pub_sub = |client, subs: &[std::net::SocketAddr], queue| match client {
            Client::Raw => throughput::pub_sub_on(nodes[0], subs, size, queue, cfg.limit),
            Client::AsyncNats => asyncnats::pub_sub_on(nodes[0], subs, size, queue, cfg.limit),
        };
        match load {
            ClusterLoad::PubSub(client) => Ok(pub_sub(client, &nodes[1..2], false)?.0),
            ClusterLoad::Queue(client) => {
                let (mut v, counts) = pub_sub(client, &nodes, true)?;
                let total = counts.iter().sum::<u64>().max(1) as f64;
                v.extend(counts.iter().map(|&n| 100.0 * n as f64 / total));
                Ok(v)
            }
            ClusterLoad::ReqReply => latency::req_reply_on(nodes[0], nodes[1], size, cfg),
        }
    }

    /// How the server for this workload is started.
    pub fn launch(&self) -> Launch {
        match self.kind {
            Kind::Js(js) => Launch {
                jetstream: true,
                tls: false,
                monitor: false,
                sync_always: matches!(
                    js,
                    Js::Pub {
                        sync_always: true,
                        ..
                    } | Js::KvPut {
                        sync_always: true,
                        ..
                    }
                ),
            },
            Kind::Tls { .. } => Launch {
                tls: true,
                ..Launch::default()
            },
            // JetStream on so /jsz reports a live engine.
            Kind::MonitorFlood => Launch {
                jetstream: true,
                monitor: true,
                ..Launch::default()
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
            Kind::Tls { subs } => {
                crate::tls::require_tls(server.addr)?;
                match subs {
                    0 => throughput::pub_only(server.addr, size, cfg.limit),
                    _ => throughput::pub_sub(server.addr, size, subs, false, cfg.limit),
                }
            }
            Kind::MonitorFlood => monitor::monitor_flood(server, size, cfg.limit),
            Kind::Cluster(_) => anyhow::bail!("{} needs a cluster", self.id()),
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
                    Js::KvPut { window, .. } => jetstream::kv_put(addr, size, window, cfg.limit),
                    Js::PubFull { window, max_mib } => {
                        jetstream::publish_full(addr, size, window, max_mib, cfg.limit)
                    }
                    Js::KvGet { inflight } => jetstream::kv_get(addr, size, inflight, cfg.limit),
                    Js::KvWatch { watchers } => kvwatch::kv_watch(addr, size, watchers, cfg),
                    Js::Obj(dir) => objstore::obj(addr, size, dir),
                }
            }
        }
    }
}

pub fn size_label(s: usize) -> String {
    const MIB: usize = 1024 * 1024;
    if s >= MIB && s % MIB == 0 {
        format!("{}MiB", s / MIB)
    } else if s >= 1024 && s % 1024 == 0 {
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

/// Throughput plus each node's share (A, B, C) of a queue group's messages.
pub const QUEUE_SPREAD: &[MetricDef] = &[
    THROUGHPUT[0],
    THROUGHPUT[1],
    MetricDef {
        key: "share_a_pct",
        unit: "%",
        lower_is_better: false,
    },
    MetricDef {
        key: "share_b_pct",
        unit: "%",
        lower_is_better: false,
    },
    MetricDef {
        key: "share_c_pct",
        unit: "%",
        lower_is_better: false,
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

pub const MBPS: &[MetricDef] = &[MetricDef {
    key: "mb_per_sec",
    unit: "MB/s",
    lower_is_better: false,
}];

/// Monitoring flood: the client-port rate without and with the scraper, their
/// ratio, and how many monitoring requests the server answered.
pub const FLOOD: &[MetricDef] = &[
    MetricDef {
        key: "quiet_msgs_per_sec",
        unit: "msgs/s",
        lower_is_better: false,
    },
    MetricDef {
        key: "flood_msgs_per_sec",
        unit: "msgs/s",
        lower_is_better: false,
    },
    MetricDef {
        key: "flood_over_quiet",
        unit: "x",
        lower_is_better: false,
    },
    MetricDef {
        key: "http_req_per_sec",
        unit: "req/s",
        lower_is_better: false,
    },
];

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
    MetricDef {
        key: "rss_after_restart",
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
    v.push(Spec {
        workload: "tls-pub-sub",
        size: Some(128),
        kind: Kind::Tls { subs: 1 },
    });
    v.push(Spec {
        workload: "tls-pub-only",
        size: Some(1024),
        kind: Kind::Tls { subs: 0 },
    });
    v.push(Spec {
        workload: "monitor-flood",
        size: Some(128),
        kind: Kind::MonitorFlood,
    });
    js_catalogue(&mut v);
    cluster_catalogue(&mut v);
    v
}

/// The 3-node cluster workloads (ids start with `cluster-`, so
/// `--only cluster` picks them).
fn cluster_catalogue(v: &mut Vec<Spec>) {
    let mut cl = |workload: &'static str, size: usize, load: ClusterLoad| {
        v.push(Spec {
            workload,
            size: Some(size),
            kind: Kind::Cluster(load),
        })
    };
    for size in [128, 1024] {
        cl("cluster-pub-sub", size, ClusterLoad::PubSub(Client::Raw));
    }
    for size in [128, 1024] {
        cl(
            "cluster-pub-sub-asyncnats",
            size,
            ClusterLoad::PubSub(Client::AsyncNats),
        );
    }
    cl("cluster-queue-3", 128, ClusterLoad::Queue(Client::Raw));
    cl(
        "cluster-queue-3-asyncnats",
        128,
        ClusterLoad::Queue(Client::AsyncNats),
    );
    cl("cluster-req-reply", 128, ClusterLoad::ReqReply);
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
    js(
        "js-pub-sync-file-fsync",
        128,
        Js::Pub {
            storage: Storage::File,
            window: 1,
            sync_always: true,
        },
    );
    js(
        "js-pub-full-file",
        1024,
        Js::PubFull {
            window: 256,
            max_mib: 256,
        },
    );
    js("js-restart", 128, Js::Restart);
    js("js-direct-get", 128, Js::DirectGet { inflight: 64 });
    for (workload, window, sync_always) in [
        ("js-kv-put-sync", 1, false),
        ("js-kv-put-16", 16, false),
        ("js-kv-put-sync-fsync", 1, true),
    ] {
        js(
            workload,
            128,
            Js::KvPut {
                window,
                sync_always,
            },
        );
    }
    js("js-kv-get-sync", 128, Js::KvGet { inflight: 1 });
    js("js-kv-get-16", 128, Js::KvGet { inflight: 16 });
    js("js-obj-put", OBJECT_SIZE, Js::Obj(objstore::Dir::Put));
    js("js-obj-get", OBJECT_SIZE, Js::Obj(objstore::Dir::Get));
    v.push(Spec {
        workload: "js-kv-watch/16",
        size: None,
        kind: Kind::Js(Js::KvWatch { watchers: 16 }),
    });
}

/// Size of the object in `js-obj-put` / `js-obj-get`.
const OBJECT_SIZE: usize = 100 * 1024 * 1024;

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
            .filter(|s| !matches(s, "js") && s.workload != "monitor-flood")
            .all(|s| !s.launch().jetstream));
        for id in [
            "tls-pub-sub/128B",
            "tls-pub-only/1KiB",
            "js-obj-put/100MiB",
            "js-obj-get/100MiB",
            "js-kv-watch/16",
            "monitor-flood/128B",
        ] {
            assert_eq!(c.iter().filter(|s| matches(s, id)).count(), 1, "{id}");
        }
        assert_eq!(c.iter().filter(|s| matches(s, "tls")).count(), 2);
        assert!(c
            .iter()
            .filter(|s| matches(s, "tls"))
            .all(|s| s.launch().tls && !s.launch().jetstream));
        let flood = c
            .iter()
            .find(|s| matches(s, "monitor-flood"))
            .expect("flood");
        assert!(flood.launch().monitor && flood.launch().jetstream);
        assert_eq!(
            c.iter()
                .filter(|s| s.launch().sync_always)
                .map(Spec::id)
                .collect::<Vec<_>>(),
            [
                "js-pub-async-file-fsync/128B",
                "js-pub-sync-file-fsync/128B",
                "js-kv-put-sync-fsync/128B"
            ]
        );
        assert_eq!(c.iter().filter(|s| matches(s, "js-pub-sync")).count(), 5);
        let cluster: Vec<_> = c.iter().filter(|s| matches(s, "cluster")).collect();
        assert_eq!(cluster.len(), 7);
        assert!(cluster.iter().all(|s| s.is_cluster()));
        assert_eq!(c.iter().filter(|s| s.is_cluster()).count(), 7);
        for id in [
            "cluster-pub-sub/128B",
            "cluster-pub-sub/1KiB",
            "cluster-pub-sub-asyncnats/128B",
            "cluster-queue-3/128B",
            "cluster-queue-3-asyncnats/128B",
            "cluster-req-reply/128B",
        ] {
            assert_eq!(c.iter().filter(|s| matches(s, id)).count(), 1, "{id}");
        }
        // Plain names do not pick the cluster rows.
        assert!(c
            .iter()
            .filter(|s| matches(s, "pub-sub,queue-2,req-reply"))
            .all(|s| !s.is_cluster()));
    }
}
