//! The audit log: one line per token served (target `tokentray::audit`), never a secret, its
//! fields escaped (`{:?}`: an executable path or a username cannot forge a line), written on
//! one thread from a bounded queue that drops, and counts, rather than blocks a request.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::{EndpointState, Peer};
use crate::cache::AccountInfo;
use crate::tokens::{ServedToken, Tokens};

/// Audit lines waiting for the audit thread; past this, new ones are dropped and counted.
const QUEUE: usize = 1024;
/// Longest a response waits for its client's process to be named.
const NAMING: Duration = Duration::from_millis(200);

/// Counts a token served and queues its audit line. The client's process is named first, once
/// per connection, on a blocking thread (a `/proc` scan), before the response goes out: a
/// one-shot client is still connected then, and would be gone after. The name is formatted
/// once per connection too.
pub(super) async fn audit(
    state: &EndpointState,
    route: &'static str,
    served: &ServedToken,
    peer: Option<&Peer>,
) {
    state.tokens.count_served();
    let client = match peer {
        Some(peer) => match peer.client.get() {
            Some(client) => client.clone(),
            None => match tokio::time::timeout(NAMING, peer.process()).await {
                Ok(process) => {
                    let client = process.map_or_else(|| "unknown".into(), |p| p.to_string().into());
                    peer.client.get_or_init(|| client).clone()
                }
                // Not named in time: a later request on this connection may be.
                Err(_) => "unknown".into(),
            },
        },
        None => "unknown".into(),
    };
    // Shared, not copied: the line costs the request no allocation.
    let line = Audit {
        route,
        account: served.account.clone(),
        scopes: served.scopes.clone(),
        client,
    };
    if state.audit.try_send(line).is_err() {
        state.audit_dropped.fetch_add(1, Ordering::Relaxed);
    }
}

/// One token served, for the audit thread.
pub(super) struct Audit {
    route: &'static str,
    account: Arc<AccountInfo>,
    scopes: Arc<str>,
    /// `pid N (exe)` or `unknown`.
    client: Arc<str>,
}

/// Writes the audit lines on one thread, off the request path.
pub(super) fn audit_thread(tokens: Arc<Tokens>) -> std::sync::mpsc::SyncSender<Audit> {
    let (tx, rx) = std::sync::mpsc::sync_channel::<Audit>(QUEUE);
    let spawned = std::thread::Builder::new()
        .name("tokentray-audit".into())
        .spawn(move || {
            for a in rx {
                tracing::info!(
                    target: "tokentray::audit",
                    "served route={} account={:?} scope={:?} client={:?}",
                    a.route,
                    a.account.username,
                    a.scopes,
                    a.client
                );
                tokens.served_to(a.route, &a.account.username, &a.scopes, &a.client);
            }
        });
    if let Err(e) = spawned {
        tracing::warn!("no audit thread: {e}");
    }
    tx
}
