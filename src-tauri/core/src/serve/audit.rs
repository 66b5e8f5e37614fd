//! The audit log: one line per token served (target `tokentray::audit`), never a secret, its
//! fields escaped (`{:?}`: an executable path or a username cannot forge a line), written on
//! one thread off the request path from a bounded queue that drops, and counts, rather than
//! blocks a request.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::{EndpointState, Peer};
use crate::tokens::{ServedToken, Tokens};

/// Audit lines waiting for the audit thread; past this, new ones are dropped and counted.
const QUEUE: usize = 1024;
/// Client names remembered per socket inode (a keep-alive connection is looked up once).
const KNOWN: usize = 1024;

/// Counts a token served and queues its audit line.
pub(super) fn audit(
    state: &EndpointState,
    route: &'static str,
    served: &ServedToken,
    peer: Option<Peer>,
) {
    state.tokens.count_served();
    let line = Audit {
        route,
        account: served.account.username.clone(),
        scopes: served.scopes.clone(),
        inode: peer.and_then(|p| p.inode),
    };
    if state.audit.try_send(line).is_err() {
        state.audit_dropped.fetch_add(1, Ordering::Relaxed);
    }
}

/// One token served, for the audit thread.
pub(super) struct Audit {
    route: &'static str,
    account: String,
    scopes: String,
    /// The client's socket inode, which names its process.
    inode: Option<u64>,
}

/// Writes the audit lines on one thread, off the request path. Naming the client process scans
/// `/proc`, so it happens here, only for connections served a token, once per socket.
pub(super) fn audit_thread(tokens: Arc<Tokens>) -> std::sync::mpsc::SyncSender<Audit> {
    let (tx, rx) = std::sync::mpsc::sync_channel::<Audit>(QUEUE);
    let spawned = std::thread::Builder::new()
        .name("tokentray-audit".into())
        .spawn(move || {
            let mut known: HashMap<u64, String> = HashMap::new();
            for a in rx {
                if known.len() >= KNOWN {
                    known.clear();
                }
                let client = match a.inode {
                    Some(inode) => known
                        .entry(inode)
                        .or_insert_with(|| {
                            crate::peer::process_of(inode).unwrap_or_else(|| "unknown".into())
                        })
                        .clone(),
                    None => "unknown".into(),
                };
                tracing::info!(
                    target: "tokentray::audit",
                    "served route={} account={:?} scope={:?} client={client:?}",
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
