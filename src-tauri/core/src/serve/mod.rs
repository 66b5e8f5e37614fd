//! The loopback token endpoint: unmodified Azure SDKs get tokens from tokentray's cache.
//!
//! Routes (nothing else is served):
//! - `GET /msi/token?api-version=2019-08-01&resource=R[&object_id=|principal_id=]` with header
//!   `X-IDENTITY-HEADER`: the App Service managed-identity protocol, so `DefaultAzureCredential`
//!   / `ManagedIdentityCredential` work with `IDENTITY_ENDPOINT` and `IDENTITY_HEADER` set.
//! - `GET /v1/token?scope=S[&account=A][&tenant=T]`, `GET /v1/accounts`, `GET /v1/status` with
//!   `Authorization: Bearer <secret>`: JSON; errors are `{code, message}`.
//!
//! Layout: [`run`] here (accept loop, connection limits, graceful stop) and the router;
//! `guard` (the security layer and its refusals), `routes` (the handlers and their JSON
//! bodies), `audit` (one audit line per token served, written off the request path).
//!
//! Security is one layer in front of every route (`guard`): any `Origin` header is refused
//! (a web page must never get a token; no CORS), the `Host` must be a loopback literal or
//! `localhost` (DNS rebinding), the secret is compared in constant time, the query is bounded,
//! each request has a deadline; the accept loop caps connections and header sizes. Every token
//! served is logged as one audit line (target `tokentray::audit`) with no secret in it.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

mod audit;
mod guard;
mod routes;

use axum::middleware;
use axum::response::IntoResponse as _;
use axum::routing::get;
use axum::{Extension, Router};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use crate::tokens::Tokens;
use audit::{AuditEvent, audit_thread};
use guard::{Refusal, guard};
pub use routes::{ErrorBody, TokenBody};

/// Most simultaneous connections.
const MAX_CONNECTIONS: usize = 256;

/// What the security layer and the handlers share.
struct EndpointState {
    tokens: Arc<Tokens>,
    audit: std::sync::mpsc::Sender<AuditEvent>,
    started: std::time::Instant,
}

/// The peer of a connection.
#[derive(Debug, Clone, Copy)]
struct Peer(SocketAddr);

/// Serves the endpoint on `listeners` until `shutdown` completes, then stops accepting and lets
/// requests in flight finish.
///
/// # Errors
/// Only if no listener can accept at all.
pub async fn run(
    listeners: Vec<TcpListener>,
    tokens: Arc<Tokens>,
    shutdown: impl Future<Output = ()>,
) -> crate::Result<()> {
    let state = Arc::new(EndpointState {
        audit: audit_thread(tokens.clone()),
        tokens,
        started: std::time::Instant::now(),
    });
    let notes = state.audit.clone();
    let app = router(state);
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut accepting = Vec::new();
    for listener in listeners {
        let app = app.clone();
        let slots = slots.clone();
        let mut stop = stop_rx.clone();
        let notes = notes.clone();
        accepting.push(tokio::spawn(async move {
            loop {
                let Ok(permit) = slots.clone().acquire_owned().await else {
                    return;
                };
                let (stream, peer) = tokio::select! {
                    accepted = listener.accept() => match accepted {
                        Ok(a) => a,
                        Err(e) => {
                            tracing::warn!("endpoint: accept failed: {e}");
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            continue;
                        }
                    },
                    _ = stop.changed() => return,
                };
                let _ = stream.set_nodelay(true);
                // Name the client now, while it is connected: a one-shot client may be gone
                // by the time its token is audited.
                let _ = notes.send(AuditEvent::Connected(peer));
                let service = TowerToHyperService::new(app.clone().layer(Extension(Peer(peer))));
                tokio::spawn(serve_connection(stream, service, permit, stop.clone()));
            }
        }));
    }
    shutdown.await;
    let _ = stop_tx.send(true);
    for task in accepting {
        let _ = task.await;
    }
    // Let in-flight connections finish their current request.
    let _ = tokio::time::timeout(
        Duration::from_secs(5),
        slots.acquire_many(MAX_CONNECTIONS as u32),
    )
    .await;
    Ok(())
}

/// Serves one connection (HTTP/1.1, bounded headers) until it closes, or until `stop`, when
/// the request in flight finishes first. Holds its connection slot while it runs.
async fn serve_connection(
    stream: tokio::net::TcpStream,
    service: TowerToHyperService<Router>,
    _slot: tokio::sync::OwnedSemaphorePermit,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(10))
        .max_buf_size(16 * 1024)
        .serve_connection(TokioIo::new(stream), service);
    tokio::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => {}
        _ = stop.changed() => {
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        }
    }
}

/// The router [`run`] serves, over `tokens`, for driving it without a socket (the fuzz
/// harness): requests carry no [`Peer`], so audit lines name the client `unknown`.
#[cfg(feature = "fuzzing")]
pub(crate) fn router_for(tokens: Arc<Tokens>) -> Router {
    router(Arc::new(EndpointState {
        audit: audit_thread(tokens.clone()),
        tokens,
        started: std::time::Instant::now(),
    }))
}

fn router(state: Arc<EndpointState>) -> Router {
    Router::new()
        .route("/msi/token", get(routes::msi_token))
        .route("/v1/token", get(routes::v1_token))
        .route("/v1/accounts", get(routes::v1_accounts))
        .route("/v1/status", get(routes::v1_status))
        .fallback(|| async { Refusal::NotFound.into_response() })
        .layer(middleware::from_fn_with_state(state.clone(), guard))
        .with_state(state)
}
