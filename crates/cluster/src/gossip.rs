//! What servers tell each other and their clients about the cluster: our
//! route INFO and CONNECT, route authorization and permissions, a new peer's
//! INFO forwarded to the others so they dial it (implicit routes, with
//! nats-server's gossip modes), and the client URLs every server hands its
//! clients (`connect_urls`, pushed as an async INFO when they change).

use std::sync::atomic::Ordering;
use std::sync::Arc;

use rnats_core::account::Account;
use rnats_core::options::ClusterOptions;
use rnats_core::server::ServerState;
use rnats_proto::route::{RouteConnect, RouteInfo, SubjectPermission};

use crate::conn::Route;
use crate::Cluster;

/// nats-server's gossip modes (exchanged between servers).
const GOSSIP_DEFAULT: u8 = 0;
const GOSSIP_DISABLED: u8 = 1;
const GOSSIP_OVERRIDE: u8 = 2;

pub fn join_host_port(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// The `host:port`s clients can reach this server on: the advertised one,
/// or every global unicast address when listening on all of them.
pub(crate) fn own_client_urls(state: &ServerState) -> Vec<String> {
    let opts = state.opts();
    let port = state.client_port();
    if let Some(adv) = &opts.client_advertise {
        return vec![with_default_port(adv, port)];
    }
    if opts.host == "0.0.0.0" || opts.host == "::" {
        let ips: Vec<String> = if_addrs::get_if_addrs()
            .unwrap_or_default()
            .into_iter()
            .map(|i| i.ip())
            .filter(|ip| !ip.is_loopback() && !ip.is_unspecified() && !is_link_local(ip))
            .map(|ip| join_host_port(&ip.to_string(), port))
            .collect();
        if !ips.is_empty() {
            return ips;
        }
        tracing::error!("Address {:?} can not be resolved properly", opts.host);
        return Vec::new();
    }
    vec![join_host_port(&opts.host, port)]
}

fn is_link_local(ip: &std::net::IpAddr) -> bool {
    match ip {
        std::net::IpAddr::V4(v4) => v4.is_link_local(),
        std::net::IpAddr::V6(v6) => (v6.segments()[0] & 0xffc0) == 0xfe80,
    }
}

fn with_default_port(hp: &str, port: u16) -> String {
    if hp
        .rsplit_once(':')
        .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
    {
        hp.to_string()
    } else {
        join_host_port(hp, port)
    }
}

fn permission(p: &Option<rnats_core::auth::SubjectPermission>) -> Option<SubjectPermission> {
    p.as_ref().map(|p| SubjectPermission {
        allow: p.allow.clone().unwrap_or_default(),
        deny: p.deny.clone(),
    })
}

/// Our route INFO, without what changes per connection.
pub(crate) fn base_info(
    state: &ServerState,
    opts: &ClusterOptions,
    port: u16,
    pool_size: u32,
) -> RouteInfo {
    let all = state.opts();
    let (host, port, ip) = match &opts.advertise {
        Some(adv) => {
            let hp = with_default_port(adv, port);
            let (h, p) = hp.rsplit_once(':').unwrap_or((hp.as_str(), ""));
            let h = h.trim_start_matches('[').trim_end_matches(']').to_string();
            let p = p.parse().unwrap_or(port);
            let ip = format!("nats-route://{}/", join_host_port(&h, p));
            (h, p, ip)
        }
        None => (opts.host.clone(), port, String::new()),
    };
    RouteInfo {
        id: state.server_id.clone(),
        name: state.server_name.clone(),
        version: rnats_core::NATS_COMPAT_VERSION.into(),
        proto: 1,
        go: format!("rnats {}", rnats_core::RNATS_VERSION),
        host,
        port,
        headers: true,
        auth_required: auth_required(opts),
        tls_required: opts.tls.is_some(),
        tls_verify: opts.tls.is_some(),
        max_payload: all.max_payload as i64,
        jetstream: all.jetstream,
        ip,
        domain: all.jetstream_domain.clone().unwrap_or_default(),
        import: permission(&opts.import),
        export: permission(&opts.export),
        route_pool_size: pool_size,
        ..RouteInfo::default()
    }
}

/// Peers must authenticate on our cluster port.
pub(crate) fn auth_required(opts: &ClusterOptions) -> bool {
    opts.username.as_deref().is_some_and(|u| !u.is_empty())
}

/// nats-server's route authorization: user and password (bcrypt or plain).
pub(crate) fn authorized(opts: &ClusterOptions, connect: &RouteConnect) -> bool {
    let Some(user) = opts.username.as_deref().filter(|u| !u.is_empty()) else {
        return true;
    };
    user == connect.user
        && rnats_core::auth::secret_matches(opts.password.as_deref().unwrap_or(""), &connect.pass)
}

/// The `export` permission: what peers may ask us to send them.
pub(crate) fn may_export(opts: &ClusterOptions, subject: &[u8]) -> bool {
    let Some(p) = &opts.export else {
        return true;
    };
    let allowed = p.allow.as_ref().is_none_or(|a| {
        a.iter()
            .any(|x| rnats_subject::matches(x.as_bytes(), subject))
    });
    allowed
        && !p
            .deny
            .iter()
            .any(|x| rnats_subject::matches(x.as_bytes(), subject))
}

/// Our CONNECT on a route we dialled.
pub(crate) fn connect_line(cluster: &Cluster, route: &Route) -> Vec<u8> {
    let (user, pass) = match &route.origin.url {
        Some(u) if !u.username().is_empty() => (
            percent_decode(u.username()),
            percent_decode(u.password().unwrap_or("")),
        ),
        _ => (String::new(), String::new()),
    };
    RouteConnect {
        echo: true,
        verbose: false,
        pedantic: false,
        user,
        pass,
        tls: cluster.opts.tls.is_some(),
        headers: true,
        name: cluster
            .server()
            .map(|s| s.server_id.clone())
            .unwrap_or_default(),
        cluster: cluster.name(),
        dynamic: cluster.is_dynamic(),
        ..RouteConnect::default()
    }
    .to_line()
}

fn percent_decode(s: &str) -> String {
    url::form_urlencoded::parse(format!("x={s}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| s.to_string())
}

/// An account named by a peer: known here, or (operator mode) resolvable.
pub(crate) fn lookup_account(state: &Arc<ServerState>, name: &str) -> Option<Arc<Account>> {
    if let Some(a) = state.accounts.get(name) {
        return Some(a);
    }
    let op = state.operator.as_ref()?;
    let jwt = op.resolver.fetch(name)?;
    let claims = op.trust.verify_account(&jwt).ok()?;
    Some(rnats_core::account::from_jwt::bind(state, &claims))
}

/// Tells the other peers about a newly registered one, so they dial it.
pub(crate) fn forward_new_route(cluster: &Cluster, info: &RouteInfo, route: &Route) {
    let solicited = route.origin.solicited;
    let from_gossip = solicited && !route.origin.explicit;
    if (from_gossip && route.origin.gossip_mode != GOSSIP_OVERRIDE)
        || info.gossip_mode == GOSSIP_DISABLED
    {
        return;
    }
    let mut fwd = info.clone();
    fwd.nonce.clear();
    let pinned_account = (!info.route_account.is_empty()).then(|| info.route_account.clone());
    let targets: Vec<Arc<Route>> =
        {
            let peers = cluster.peers.lock();
            peers
                .by_id
                .iter()
                .filter(|(id, _)| **id != info.id)
                .filter_map(|(_, p)| match &pinned_account {
                    Some(acc) => p.pinned.get(acc).cloned().or_else(|| {
                        (!p.no_pool).then(|| p.pool.iter().flatten().next().cloned())?
                    }),
                    None => p.pool.iter().flatten().next().cloned(),
                })
                .collect()
        };
    for r in targets {
        let mode = if (!solicited && r.origin.explicit) || (solicited && route.origin.explicit) {
            GOSSIP_OVERRIDE
        } else if !solicited {
            GOSSIP_DISABLED
        } else {
            GOSSIP_DEFAULT
        };
        fwd.gossip_mode = mode;
        r.client.out.send_now(&fwd.to_line());
    }
}

/// A peer told us about another server: dial it unless we have it already
/// or it is one of our configured routes (which we dial anyway).
pub(crate) fn implicit_route(cluster: &Arc<Cluster>, info: &RouteInfo, via_no_pool: bool) {
    let Some(state) = cluster.server() else {
        return;
    };
    if info.id == state.server_id {
        return;
    }
    let account = (!info.route_account.is_empty()).then(|| info.route_account.clone());
    {
        let peers = cluster.peers.lock();
        match &account {
            Some(acc)
                if cluster.pool_size == 0
                    || peers
                        .by_id
                        .get(&info.id)
                        .is_some_and(|p| p.pinned.contains_key(acc)) =>
            {
                return
            }
            Some(_) => {}
            None if peers.connected_to(&info.id) => return,
            None => {}
        }
    }
    if configured(cluster, info) {
        return;
    }
    let Ok(mut url) = url::Url::parse(&info.ip) else {
        tracing::error!("Error parsing URL from INFO: {:?}", info.ip);
        return;
    };
    if info.auth_required {
        if let Some(u) = &cluster.opts.username {
            let _ = url.set_username(u);
            let _ = url.set_password(cluster.opts.password.as_deref());
        }
    }
    crate::dial::spawn_connect(
        cluster,
        url.clone(),
        false,
        account.clone(),
        info.gossip_mode,
    );
    // A peer without pooling does not tell us about pinned routes.
    if via_no_pool && account.is_none() {
        for acc in cluster.pinned.clone() {
            crate::dial::spawn_connect(cluster, url.clone(), false, Some(acc), info.gossip_mode);
        }
    }
}

/// Whether `info`'s server is one of our configured routes.
fn configured(cluster: &Cluster, info: &RouteInfo) -> bool {
    let one = join_host_port(&info.host, info.port).to_lowercase();
    let two = url::Url::parse(&info.ip).ok().and_then(|u| {
        u.host_str()
            .map(|h| join_host_port(h, info.port).to_lowercase())
    });
    cluster.opts.routes.iter().any(|r| {
        url::Url::parse(r)
            .ok()
            .and_then(|u| {
                let h = u.host_str()?.to_string();
                Some(join_host_port(&h, u.port()?).to_lowercase())
            })
            .is_some_and(|hp| hp == one || Some(&hp) == two.as_ref())
    })
}

/// Recomputes the URLs clients may reconnect to (ours and every peer's not
/// in lame-duck mode) and pushes them to clients when they changed.
pub(crate) fn update_client_urls(cluster: &Cluster) {
    let Some(state) = cluster.server() else {
        return;
    };
    let mut urls = if state.lame_duck.load(Ordering::Relaxed) {
        Vec::new()
    } else {
        cluster.own_urls.clone()
    };
    if !cluster.opts.no_advertise {
        let peers = cluster.peers.lock();
        let mut ids: Vec<&String> = peers.by_id.keys().collect();
        ids.sort();
        for id in ids {
            let p = &peers.by_id[id];
            if p.pool.iter().flatten().next().is_none() || p.info.lame_duck_mode {
                continue;
            }
            for u in &p.info.connect_urls {
                if !urls.contains(u) {
                    urls.push(u.clone());
                }
            }
        }
    }
    state.set_cluster_info(&cluster.name(), urls);
}

/// A peer entered lame-duck mode: clients must not be sent there.
pub(crate) fn peer_lame_duck(cluster: &Cluster, route: &Route) {
    let id = route.remote_id();
    if let Some(p) = cluster.peers.lock().by_id.get_mut(&id) {
        p.info.lame_duck_mode = true;
    }
    update_client_urls(cluster);
}

/// We entered lame-duck mode: peers stop sending clients our way.
pub(crate) fn announce_lame_duck(cluster: &Cluster) {
    let mut info = cluster.route_info();
    info.lame_duck_mode = true;
    info.connect_urls.clear();
    let line = info.to_line();
    for r in cluster.peers.lock().one_per_peer() {
        r.client.out.send_now(&line);
    }
}
