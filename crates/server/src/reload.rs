//! Configuration reload (SIGHUP, `--signal reload`): re-read the config file,
//! refuse changes that cannot be applied to a running server (listen address,
//! JetStream storage, ...) with nats-server's message, and install the rest:
//! limits, authorization, logging level.

use crate::logging;
use crate::options::{ClusterOptions, Options};
use crate::server::ServerState;

/// Rebuilds the options the way startup did (config file, then flags).
pub type Loader = dyn Fn() -> Result<Options, String> + Send + Sync;

pub fn reload(state: &ServerState, load: &Loader) -> Result<(), String> {
    let new = load()?;
    let old = state.opts();
    check_fixed(&old, &new)?;
    logging::set_level(new.debug, new.trace);
    let auth_changed = old.auth != new.auth || old.no_auth_user != new.no_auth_user;
    state.set_opts(new);
    if auth_changed {
        tracing::info!("Reloaded: authorization users");
        // Connected clients re-authenticate against the new users and have
        // their permissions replaced (see `client::conn`), as in nats-server.
        for c in state.clients.lock().values() {
            c.auth.recheck.notify_one();
        }
    }
    Ok(())
}

/// Options that only take effect at startup.
fn check_fixed(old: &Options, new: &Options) -> Result<(), String> {
    fn same<T: PartialEq + std::fmt::Debug>(name: &str, a: &T, b: &T) -> Result<(), String> {
        if a == b {
            Ok(())
        } else {
            Err(format!(
                "config reload not supported for {name}: old={a:?}, new={b:?}"
            ))
        }
    }
    same("Host", &old.host, &new.host)?;
    same("Port", &old.port, &new.port)?;
    same("ServerName", &old.server_name, &new.server_name)?;
    same("JetStream", &old.jetstream, &new.jetstream)?;
    same("StoreDir", &old.store_dir, &new.store_dir)?;
    same(
        "JetStreamDomain",
        &old.jetstream_domain,
        &new.jetstream_domain,
    )?;
    same(
        "SyncInterval",
        &(old.sync_always, old.sync_interval),
        &(new.sync_always, new.sync_interval),
    )?;
    same("HTTPPort", &old.http_port, &new.http_port)?;
    check_cluster(old.cluster.as_ref(), new.cluster.as_ref())?;
    // nats-server refuses any gateway change on reload.
    if old.gateway != new.gateway {
        return Err(
            "config reload not supported for Gateway: gateway changes need a restart".into(),
        );
    }
    same("LogFile", &old.log_file, &new.log_file)?;
    // Users and permissions inside accounts reload (they live in `auth`);
    // the accounts themselves, their exports, imports, mappings and
    // JetStream settings are built at startup.
    let shape = |o: &Options| {
        let accounts: Vec<_> = o
            .accounts
            .iter()
            .map(|a| (&a.name, &a.exports, &a.imports, &a.jetstream, &a.mappings))
            .collect();
        format!(
            "{accounts:?} {:?} {:?} {:?}",
            o.mappings, o.system_account, o.operator
        )
    };
    if shape(old) != shape(new) {
        return Err(
            "config reload not supported for Accounts: accounts, their exports, imports, mappings and operator settings need a restart"
                .into(),
        );
    }
    same("PidFile", &old.pid_file, &new.pid_file)?;
    Ok(())
}

/// The `cluster {}` block and the cluster flags. nats-server reloads routes
/// (added/removed), permissions, compression, pool size, pinned accounts and
/// advertise settings, and refuses only host and port changes; rnats refuses
/// every cluster change for now (its routes are set up at startup), naming
/// the first setting that differs (never its value when it is a secret).
fn check_cluster(old: Option<&ClusterOptions>, new: Option<&ClusterOptions>) -> Result<(), String> {
    if old == new {
        return Ok(());
    }
    // No cluster, or one without a port, is nats-server's port 0.
    let addr = |c: Option<&ClusterOptions>| match c {
        Some(c) if c.enabled => (c.host.clone(), c.port),
        _ => (String::new(), 0),
    };
    let ((oh, op), (nh, np)) = (addr(old), addr(new));
    if oh != nh {
        return Err(format!(
            "config reload not supported for cluster host: old={oh}, new={nh}"
        ));
    }
    if op != np {
        return Err(format!(
            "config reload not supported for cluster port: old={op}, new={np}"
        ));
    }
    let default = ClusterOptions {
        enabled: false,
        ..Default::default()
    };
    let (o, n) = (old.unwrap_or(&default), new.unwrap_or(&default));
    let field = if o.name != n.name {
        "name"
    } else if o.routes != n.routes {
        "routes"
    } else if (&o.username, &o.password, &o.token, o.auth_timeout)
        != (&n.username, &n.password, &n.token, n.auth_timeout)
    {
        "authorization"
    } else if (&o.import, &o.export) != (&n.import, &n.export) {
        "permissions"
    } else if o.tls != n.tls {
        "tls"
    } else if (&o.advertise, o.no_advertise) != (&n.advertise, n.no_advertise) {
        "advertise"
    } else if (o.pool_size, &o.pinned_accounts) != (n.pool_size, &n.pinned_accounts) {
        "pool_size and accounts"
    } else if o.compression != n.compression {
        "compression"
    } else {
        "connect, ping and write settings"
    };
    Err(format!(
        "config reload not supported for cluster {field}: rnats applies cluster changes at restart only"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_structure_is_fixed_but_users_reload() {
        let base = |extra: &str| {
            let text =
                format!("accounts {{ A {{ users = [{{user: a, password: a}}]\n {extra} }} }}");
            let map = rnats_conf::parse_str(&text).unwrap();
            let mut o = Options::default();
            crate::config::apply(&map, &mut o).unwrap();
            o
        };
        let old = base("");
        let mut new_user = base("");
        new_user.auth.users.clear();
        assert!(check_fixed(&old, &new_user).is_ok());
        let err = check_fixed(&old, &base(r#"exports = [{stream: "x"}]"#)).unwrap_err();
        assert!(err.contains("Accounts"), "{err}");
    }

    #[test]
    fn fixed_options_refuse_changes() {
        let old = Options::default();
        let mut new = old.clone();
        new.max_payload = 2048;
        new.debug = true;
        assert!(check_fixed(&old, &new).is_ok());
        new.port = 4333;
        let err = check_fixed(&old, &new).unwrap_err();
        assert_eq!(
            err,
            "config reload not supported for Port: old=4222, new=4333"
        );
    }

    #[test]
    fn cluster_changes_are_refused() {
        let conf = |text: &str| {
            let map = rnats_conf::parse_str(text).unwrap();
            let mut o = Options::default();
            crate::config::apply(&map, &mut o).unwrap();
            o
        };
        let base =
            "cluster { listen: \"127.0.0.1:6222\", name: c, routes: [\"nats://u:secret@h:1\"] }";
        let old = conf(base);
        assert!(check_fixed(&old, &conf(base)).is_ok());
        let err = check_fixed(&old, &conf("port: 4222")).unwrap_err();
        assert_eq!(
            err,
            "config reload not supported for cluster host: old=127.0.0.1, new="
        );
        let err = check_fixed(&old, &conf(&base.replace("6222", "6333"))).unwrap_err();
        assert_eq!(
            err,
            "config reload not supported for cluster port: old=6222, new=6333"
        );
        let err = check_fixed(&old, &conf(&base.replace("h:1", "h:2"))).unwrap_err();
        assert!(err.contains("cluster routes"), "{err}");
        assert!(!err.contains("secret"), "{err}");
        let err = check_fixed(&old, &conf(&base.replace("name: c", "name: d"))).unwrap_err();
        assert!(err.contains("cluster name"), "{err}");
        // Adding a name-only block (no port) is still a change.
        let err = check_fixed(&conf("port: 4222"), &conf("cluster { name: x }")).unwrap_err();
        assert!(err.contains("cluster name"), "{err}");
    }

    #[test]
    fn gateway_changes_are_refused() {
        let conf = |text: &str| {
            let map = rnats_conf::parse_str(text).unwrap();
            let mut o = Options::default();
            crate::config::apply(&map, &mut o).unwrap();
            o
        };
        let base = "gateway { name: A, port: 7222 }";
        assert!(check_fixed(&conf(base), &conf(base)).is_ok());
        let err = check_fixed(&conf(base), &conf("gateway { name: B, port: 7222 }")).unwrap_err();
        assert!(
            err.starts_with("config reload not supported for Gateway"),
            "{err}"
        );
    }
}
