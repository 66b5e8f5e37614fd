//! The audit log: one line per token served (target `tokentray::audit`), never a secret,
//! written on one thread off the request path.

use std::net::SocketAddr;
use std::sync::Arc;

use super::{EndpointState, Peer};
use crate::tokens::{ServedToken, Tokens};

pub(super) fn audit(
    state: &EndpointState,
    route: &'static str,
    served: &ServedToken,
    peer: Option<Peer>,
) {
    state.tokens.count_served();
    let _ = state.audit.send(AuditEvent::ServedToken(Audit {
        route,
        account: served.account.username.clone(),
        scopes: served.scopes.clone(),
        peer: peer.map(|p| p.0),
    }));
}

/// What the audit thread hears about.
pub(super) enum AuditEvent {
    /// A connection was accepted from this peer.
    Connected(SocketAddr),
    /// A token was served.
    ServedToken(Audit),
}

/// One token served, for the audit thread.
pub(super) struct Audit {
    route: &'static str,
    account: String,
    scopes: String,
    peer: Option<SocketAddr>,
}

/// Writes the audit lines on one thread, off the request path: naming the client process scans
/// `/proc`, so each peer (a connection, reused by keep-alive) is looked up once, when accepted.
pub(super) fn audit_thread(tokens: Arc<Tokens>) -> std::sync::mpsc::Sender<AuditEvent> {
    let (tx, rx) = std::sync::mpsc::channel::<AuditEvent>();
    let spawned = std::thread::Builder::new()
        .name("tokentray-audit".into())
        .spawn(move || {
            let mut known: std::collections::HashMap<SocketAddr, String> =
                std::collections::HashMap::new();
            for event in rx {
                if known.len() > 1024 {
                    known.clear();
                }
                let a = match event {
                    AuditEvent::Connected(peer) => {
                        if let Some(name) = crate::peer::describe(peer) {
                            known.insert(peer, name);
                        } else {
                            known.remove(&peer);
                        }
                        continue;
                    }
                    AuditEvent::ServedToken(a) => a,
                };
                let client = match a.peer {
                    Some(peer) => known
                        .entry(peer)
                        .or_insert_with(|| {
                            crate::peer::describe(peer).unwrap_or_else(|| "unknown".into())
                        })
                        .clone(),
                    None => "unknown".into(),
                };
                tracing::info!(
                    target: "tokentray::audit",
                    "served route={} account={} scope={:?} client={client}",
                    a.route,
                    a.account,
                    a.scopes
                );
                tokens.served_to(a.account, a.scopes, client);
            }
        });
    if let Err(e) = spawned {
        tracing::warn!("no audit thread: {e}");
    }
    tx
}
