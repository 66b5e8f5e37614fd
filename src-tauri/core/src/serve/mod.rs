//! The loopback token endpoint: unmodified Azure SDKs get tokens from tokentray's cache.
//!
//! Routes (nothing else is served):
//! - `GET /msi/token?api-version=2019-08-01&resource=R[&object_id=|principal_id=]` with header
//!   `X-IDENTITY-HEADER`: the App Service managed-identity protocol, so `DefaultAzureCredential`
//!   / `ManagedIdentityCredential` work with `IDENTITY_ENDPOINT` and `IDENTITY_HEADER` set.
//! - `GET /imds/<secret>/token?api-version=2018-02-01&resource=R` with header `Metadata: true`:
//!   the Instance Metadata Service's protocol, as Terraform's providers (hashicorp/go-azure-sdk,
//!   `ARM_USE_MSI` with `ARM_MSI_ENDPOINT`) speak it; they send no secret header, so the path
//!   carries the secret.
//! - `GET /v1/token?scope=S[&account=A][&tenant=T]`, `GET /v1/accounts`, `GET /v1/status`,
//!   `GET /v1/activity` (the tokens served lately, [`crate::tokens::Served`]), and
//!   `POST /token?api-version=2023-07-12-preview` (azd's external authentication,
//!   `AZD_AUTH_ENDPOINT` / `AZD_AUTH_KEY`) with
//!   `Authorization: Bearer <secret>`: JSON; errors are `{code, message}`.
//!
//! Layout: [`run`] here (accept loop, admission, graceful stop; connections are admitted and
//! bounded by `loopback`), `guard` (the security layer every request passes first, and its
//! refusals), `routes` (the routes by method and path, the handlers and their JSON bodies),
//! `audit` (one audit line per token served, written off the request path). Each connection is
//! a plain hyper service: no router or middleware stack, so that a cached token costs little
//! more than the bare server's answer.
//!
//! Trust at the edge, in order:
//! 1. At accept, before a byte is read: the peer's socket must belong to this user
//!    ([`crate::peer`]; on the instance's Unix socket, the kernel's peer credentials say whose
//!    it is); another user's process gets its connection closed, even with the
//!    right secret (a secret harvested by squatting the port while tokentray was down is
//!    useless).
//! 2. Per connection: a deadline for headers, for write progress (a client that stops reading
//!    is dropped) and for idleness, a cap on requests per connection, bounded buffers.
//! 3. Per request (`guard`): any `Origin` is refused (no web page, no CORS); the target must be
//!    a path (origin-form) and there must be exactly one `Host`, a loopback literal or
//!    `localhost` with an optional port (DNS rebinding); the secret is compared in constant
//!    time (`Bearer`, any case); the query is bounded; the request has a deadline.
//!
//! Every token served is logged as one audit line (target `tokentray::audit`), with no secret
//! and with its fields escaped, from a bounded queue that drops (and counts) rather than
//! blocks.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

mod audit;
mod guard;
mod routes;

use tokio::net::TcpListener;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::approval::Approvals;
use crate::peer::{Admission, Process};
use crate::tokens::Tokens;
use audit::{Audit, audit_thread};
pub use routes::{ErrorBody, TokenBody};

/// Most simultaneous connections (other users' are closed at once and barely count).
const MAX_CONNECTIONS: usize = 1024;

/// What the security layer and the handlers share.
pub(crate) struct EndpointState {
    tokens: Arc<Tokens>,
    /// The approval gate, consulted before a token is served when `require_approval` is on.
    approvals: Arc<Approvals>,
    audit: std::sync::mpsc::SyncSender<Audit>,
    /// Audit lines dropped because the audit thread was behind.
    audit_dropped: AtomicU64,
    /// Connections refused because another user's process (or an unknown one) made them.
    refused_peers: AtomicU64,
    started: std::time::Instant,
}

/// A request body the endpoint reads: hyper's from a connection, or the fuzz harness's.
pub(crate) trait RequestBody:
    hyper::body::Body<Data = hyper::body::Bytes, Error: std::error::Error + Send + Sync + 'static>
{
}

impl<B> RequestBody for B where
    B: hyper::body::Body<
            Data = hyper::body::Bytes,
            Error: std::error::Error + Send + Sync + 'static,
        >
{
}

/// The peer of a connection: what names its process (its TCP socket's inode, or the pid its
/// Unix socket's credentials give), that process once named (for the audit and approval) and
/// that name as the audit writes it, and how many requests it has sent (capped per connection).
#[derive(Debug, Default)]
struct Peer {
    inode: Option<u64>,
    pid: Option<u32>,
    process: tokio::sync::OnceCell<Option<Process>>,
    client: std::sync::OnceLock<Arc<str>>,
    requests: AtomicU32,
}

impl Peer {
    /// The process on the other end: looked up once per connection, on a blocking thread (for
    /// a TCP peer, a `/proc` scan), and only when asked (a token is about to be served).
    async fn process(&self) -> Option<Process> {
        let (inode, pid) = (self.inode, self.pid);
        if inode.is_none() && pid.is_none() {
            return None;
        }
        self.process
            .get_or_init(|| async move {
                tokio::task::spawn_blocking(move || match (pid, inode) {
                    #[cfg(unix)]
                    (Some(pid), _) => crate::peer::process(pid),
                    (_, Some(inode)) => crate::peer::process_of(inode),
                    _ => None,
                })
                .await
                .ok()
                .flatten()
            })
            .await
            .clone()
    }
}

/// Serves the endpoint on the loopback `listeners`, and on `local` (the instance's own Unix
/// socket, which tokentray's CLI and helpers use), until `shutdown` completes; then stops
/// accepting and lets requests in flight finish.
///
/// Each connection is admitted before a byte is read: only this user's processes
/// (`loopback::admit`, `loopback::admit_local`); others are closed at once. Then
/// `loopback::serve` bounds it.
///
/// # Errors
/// Only if no listener can accept at all.
pub async fn run(
    listeners: Vec<TcpListener>,
    local: Option<Local>,
    approvals: Arc<Approvals>,
    shutdown: impl Future<Output = ()>,
) -> crate::Result<()> {
    let state = EndpointState::new(approvals);
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut accepting = Vec::new();
    for listener in listeners {
        let (slots, mut stop, state) = (slots.clone(), stop_rx.clone(), state.clone());
        accepting.push(tokio::spawn(async move {
            while let Some((slot, (stream, addr))) =
                next_connection(&slots, &mut stop, || listener.accept()).await
            {
                let (stop, state) = (stop.clone(), state.clone());
                tokio::spawn(async move {
                    let inode = match crate::loopback::admit(&stream, addr).await {
                        Ok(inode) => inode,
                        // Closed without reading a byte.
                        Err(refused) => return refusal(refused, &state),
                    };
                    let _ = stream.set_nodelay(true);
                    let peer = Peer {
                        inode,
                        ..Peer::default()
                    };
                    connection(stream, peer, state, stop, slot).await;
                });
            }
        }));
    }
    #[cfg(unix)]
    if let Some(local) = local {
        let (slots, mut stop, state) = (slots.clone(), stop_rx.clone(), state.clone());
        accepting.push(tokio::spawn(async move {
            while let Some((slot, (stream, _))) =
                next_connection(&slots, &mut stop, || local.accept()).await
            {
                let pid = match crate::loopback::admit_local(&stream) {
                    Ok(pid) => pid,
                    Err(refused) => {
                        refusal(refused, &state);
                        continue;
                    }
                };
                let peer = Peer {
                    pid,
                    ..Peer::default()
                };
                tokio::spawn(connection(stream, peer, state.clone(), stop.clone(), slot));
            }
        }));
    }
    #[cfg(not(unix))]
    let _: Option<Local> = local;
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

/// The listener of the instance's own Unix socket (`instance::socket_file`); on Windows, which
/// the endpoint serves over TCP only, nothing.
#[cfg(unix)]
pub type Local = tokio::net::UnixListener;
/// The listener of the instance's own Unix socket; on Windows, which the endpoint serves over
/// TCP only, nothing.
#[cfg(not(unix))]
pub type Local = std::convert::Infallible;

/// The next connection `accept` takes, with its connection slot (waiting for one while all
/// [`MAX_CONNECTIONS`] are taken); `None` once `stop` changes. An accept that fails is logged
/// and tried again after a pause.
async fn next_connection<T, A>(
    slots: &Arc<Semaphore>,
    stop: &mut tokio::sync::watch::Receiver<bool>,
    mut accept: impl FnMut() -> A,
) -> Option<(OwnedSemaphorePermit, T)>
where
    A: Future<Output = std::io::Result<T>>,
{
    loop {
        let slot = slots.clone().acquire_owned().await.ok()?;
        tokio::select! {
            accepted = accept() => match accepted {
                Ok(connection) => return Some((slot, connection)),
                Err(e) => {
                    tracing::warn!("endpoint: accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            _ = stop.changed() => return None,
        }
    }
}

/// Serves one admitted connection from `peer`, holding its `slot` until it closes.
async fn connection<IO>(
    stream: IO,
    peer: Peer,
    state: Arc<EndpointState>,
    stop: tokio::sync::watch::Receiver<bool>,
    slot: OwnedSemaphorePermit,
) where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let _slot = slot;
    let peer = Arc::new(peer);
    let answer = hyper::service::service_fn(move |req| {
        let (state, peer) = (state.clone(), peer.clone());
        async move { Ok::<_, Infallible>(guard::respond(&state, Some(&peer), req).await) }
    });
    crate::loopback::serve(stream, answer, stop).await;
}

/// Counts and logs a refused connection: the first, then one line per thousand, so that a
/// flood does not flood the log.
fn refusal(admission: Admission, state: &EndpointState) {
    let n = state.refused_peers.fetch_add(1, Ordering::Relaxed);
    if !n.is_multiple_of(1000) {
        return;
    }
    match admission {
        Admission::OtherUser(uid) => tracing::warn!(
            "endpoint: refused a connection from another user's process (uid {uid}); {} so far",
            n + 1
        ),
        _ => tracing::warn!(
            "endpoint: refused a connection whose process could not be identified; {} so far",
            n + 1
        ),
    }
}

/// The endpoint's state over `tokens`, for driving it without a socket (the fuzz harness) with
/// [`respond_to`].
#[cfg(feature = "fuzzing")]
pub(crate) fn state_for(tokens: Arc<Tokens>) -> Arc<EndpointState> {
    EndpointState::new(Arc::new(Approvals::new(tokens, false)))
}

/// The answer to `req`, through the security layer and the routes as [`run`] serves them, but
/// from no connection: audit lines name the client `unknown` and there is no request cap.
#[cfg(feature = "fuzzing")]
pub(crate) async fn respond_to<B: RequestBody>(
    state: &EndpointState,
    req: axum::http::Request<B>,
) -> axum::response::Response {
    guard::respond(state, None, req).await
}

impl EndpointState {
    fn new(approvals: Arc<Approvals>) -> Arc<Self> {
        let tokens = approvals.tokens().clone();
        Arc::new(Self {
            audit: audit_thread(tokens.clone()),
            audit_dropped: AtomicU64::new(0),
            refused_peers: AtomicU64::new(0),
            tokens,
            approvals,
            started: std::time::Instant::now(),
        })
    }
}
