//! Configuration reload (SIGHUP, `--signal reload`): re-read the config file,
//! refuse changes that cannot be applied to a running server (listen address,
//! JetStream storage, ...) with nats-server's message, and install the rest:
//! limits, authorization, logging level.

use crate::logging;
use crate::options::Options;
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
    same(
        "Cluster",
        &(&old.cluster_name, &old.cluster_listen, &old.routes),
        &(&new.cluster_name, &new.cluster_listen, &new.routes),
    )?;
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
}
