//! Dialling a hub's WebSocket port (`ws://` / `wss://` remotes).

use std::sync::Arc;

use rnats_core::server::ServerState;

use crate::conn::LeafConn;
use crate::dial::DialError;
use crate::Leafs;

pub(crate) async fn connect(
    _leafs: &Arc<Leafs>,
    _state: &Arc<ServerState>,
    _idx: usize,
    _url: &url::Url,
    _host: &str,
) -> Result<Arc<LeafConn>, DialError> {
    Err(DialError::Other(
        "websocket remotes are not supported yet in rnats".into(),
    ))
}
