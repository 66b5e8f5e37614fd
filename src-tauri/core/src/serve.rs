//! The loopback token endpoint: unmodified Azure SDKs get tokens from tokentray's cache.
//!
//! Routes (nothing else is served):
//! - `GET /msi/token?api-version=2019-08-01&resource=R[&object_id=|principal_id=]` with header
//!   `X-IDENTITY-HEADER`: the App Service managed-identity protocol, so `DefaultAzureCredential`
//!   / `ManagedIdentityCredential` work with `IDENTITY_ENDPOINT` and `IDENTITY_HEADER` set.
//! - `GET /v1/token?scope=S[&account=A][&tenant=T]`, `GET /v1/accounts`, `GET /v1/status` with
//!   `Authorization: Bearer <secret>`: JSON; errors are `{code, message}`.
//!
//! Security is one layer in front of every route ([`guard`]): any `Origin` header is refused
//! (a web page must never get a token; no CORS), the `Host` must be a loopback literal or
//! `localhost` (DNS rebinding), the secret is compared in constant time, the query is bounded,
//! each request has a deadline; the accept loop caps connections and header sizes. Every token
//! served is logged as one audit line (target `tokentray::audit`) with no secret in it.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Query, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Json, Router};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use serde::Deserialize;
use serde_json::json;
use subtle::ConstantTimeEq as _;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use crate::tokens::{Served, TokenRequest, Tokens};
use crate::{Error, ErrorCode};

/// Most simultaneous connections.
const MAX_CONNECTIONS: usize = 256;
/// Longest query string accepted.
const MAX_QUERY: usize = 2048;
/// Deadline of one request (a refresh included).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// What the edge layer and handlers share.
struct Edge {
    tokens: Arc<Tokens>,
    audit: std::sync::mpsc::Sender<Note>,
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
    let edge = Arc::new(Edge {
        audit: audit_thread(tokens.clone()),
        tokens,
        started: std::time::Instant::now(),
    });
    let notes = edge.audit.clone();
    let app = router(edge);
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
                let _ = notes.send(Note::Connected(peer));
                let service = TowerToHyperService::new(app.clone().layer(Extension(Peer(peer))));
                let mut conn_stop = stop.clone();
                tokio::spawn(async move {
                    let _permit = permit;
                    let conn = hyper::server::conn::http1::Builder::new()
                        .timer(TokioTimer::new())
                        .header_read_timeout(Duration::from_secs(10))
                        .max_buf_size(16 * 1024)
                        .serve_connection(TokioIo::new(stream), service);
                    tokio::pin!(conn);
                    tokio::select! {
                        _ = conn.as_mut() => {}
                        _ = conn_stop.changed() => {
                            conn.as_mut().graceful_shutdown();
                            let _ = conn.await;
                        }
                    }
                });
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

fn router(edge: Arc<Edge>) -> Router {
    Router::new()
        .route("/msi/token", get(msi_token))
        .route("/v1/token", get(v1_token))
        .route("/v1/accounts", get(v1_accounts))
        .route("/v1/status", get(v1_status))
        .fallback(|| async {
            refuse(
                StatusCode::NOT_FOUND,
                "not_found",
                "no such route; see `tokentray env`",
            )
        })
        .layer(middleware::from_fn_with_state(edge.clone(), guard))
        .with_state(edge)
}

fn refuse(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        Json(
            json!({"code": code, "message": message, "error": code, "error_description": message}),
        ),
    )
        .into_response()
}

/// The one security layer: origin, host, size, secret, deadline.
async fn guard(State(edge): State<Arc<Edge>>, req: Request, next: Next) -> Response {
    let headers = req.headers();
    if headers.contains_key(header::ORIGIN) {
        return refuse(
            StatusCode::FORBIDDEN,
            "forbidden_origin",
            "requests from web pages are refused",
        );
    }
    if !loopback_host(headers.get(header::HOST)) {
        return refuse(
            StatusCode::FORBIDDEN,
            "forbidden_host",
            "the Host header must be 127.0.0.1, [::1] or localhost",
        );
    }
    if req.uri().query().is_some_and(|q| q.len() > MAX_QUERY) {
        return refuse(
            StatusCode::URI_TOO_LONG,
            "query_too_long",
            "the query string is too long",
        );
    }
    let presented = if req.uri().path().starts_with("/msi/") {
        headers.get("x-identity-header").map(HeaderValue::as_bytes)
    } else {
        headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.as_bytes().strip_prefix(b"Bearer "))
    };
    let Ok(secret) = edge.tokens.endpoint_secret() else {
        return refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            "store_unavailable",
            "the token store cannot be read; see `tokentray status`",
        );
    };
    let expected = secret.expose().as_bytes();
    let ok = presented.is_some_and(|p| p.len() == expected.len() && bool::from(p.ct_eq(expected)));
    if !ok {
        let mut r = refuse(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "missing or wrong secret; get it with `tokentray env`",
        );
        r.headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        return r;
    }
    match tokio::time::timeout(REQUEST_TIMEOUT, next.run(req)).await {
        Ok(response) => response,
        Err(_) => refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            "timeout",
            "the request took too long; retry",
        ),
    }
}

fn loopback_host(host: Option<&HeaderValue>) -> bool {
    let Some(host) = host.and_then(|h| h.to_str().ok()) else {
        return false;
    };
    let name = if host.starts_with('[') {
        host.split_inclusive(']').next().unwrap_or(host)
    } else {
        host.rsplit_once(':').map_or(host, |(h, port)| {
            if port.chars().all(|c| c.is_ascii_digit()) {
                h
            } else {
                host
            }
        })
    };
    matches!(
        name.to_ascii_lowercase().as_str(),
        "127.0.0.1" | "localhost" | "[::1]"
    )
}

fn error_response(e: &Error) -> Response {
    let status = match e.code() {
        ErrorCode::NoAccount | ErrorCode::AccountNotFound | ErrorCode::InteractionRequired => {
            StatusCode::UNAUTHORIZED
        }
        ErrorCode::InvalidInput | ErrorCode::AmbiguousAccount => StatusCode::BAD_REQUEST,
        ErrorCode::AuthorityUnavailable => StatusCode::SERVICE_UNAVAILABLE,
        ErrorCode::Authority => StatusCode::BAD_REQUEST,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    let mut r = refuse(status, e.code().as_str(), &e.to_string());
    if let Error::AuthorityUnavailable { retry_after, .. } = e {
        let secs = retry_after.unwrap_or(5).to_string();
        if let Ok(v) = HeaderValue::from_str(&secs) {
            r.headers_mut().insert(header::RETRY_AFTER, v);
        }
    }
    r
}

fn audit(edge: &Edge, route: &'static str, served: &Served, peer: Option<Peer>) {
    edge.tokens.count_served();
    let _ = edge.audit.send(Note::Served(Audit {
        route,
        account: served.account.username.clone(),
        scopes: served.scopes.clone(),
        peer: peer.map(|p| p.0),
    }));
}

/// What the audit thread hears about.
enum Note {
    /// A connection was accepted from this peer.
    Connected(SocketAddr),
    /// A token was served.
    Served(Audit),
}

/// One token served, for the audit thread.
struct Audit {
    route: &'static str,
    account: String,
    scopes: String,
    peer: Option<SocketAddr>,
}

/// Writes the audit lines on one thread, off the request path: naming the client process scans
/// `/proc`, so each peer (a connection, reused by keep-alive) is looked up once, when accepted.
fn audit_thread(tokens: Arc<Tokens>) -> std::sync::mpsc::Sender<Note> {
    let (tx, rx) = std::sync::mpsc::channel::<Note>();
    let spawned = std::thread::Builder::new()
        .name("tokentray-audit".into())
        .spawn(move || {
            let mut known: std::collections::HashMap<SocketAddr, String> =
                std::collections::HashMap::new();
            for note in rx {
                if known.len() > 1024 {
                    known.clear();
                }
                let a = match note {
                    Note::Connected(peer) => {
                        if let Some(name) = crate::peer::describe(peer) {
                            known.insert(peer, name);
                        } else {
                            known.remove(&peer);
                        }
                        continue;
                    }
                    Note::Served(a) => a,
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

#[derive(Deserialize)]
struct MsiQuery {
    #[serde(rename = "api-version")]
    api_version: Option<String>,
    resource: Option<String>,
    object_id: Option<String>,
    principal_id: Option<String>,
    client_id: Option<String>,
    mi_res_id: Option<String>,
}

async fn msi_token(
    State(edge): State<Arc<Edge>>,
    peer: Option<Extension<Peer>>,
    query: Result<Query<MsiQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Ok(Query(q)) = query else {
        return refuse(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "malformed query string",
        );
    };
    if q.api_version.is_none() {
        return refuse(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "api-version is required (2019-08-01)",
        );
    }
    let Some(resource) = q.resource.filter(|r| !r.trim().is_empty()) else {
        return refuse(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "resource is required, e.g. https://management.azure.com/",
        );
    };
    if q.client_id.is_some() || q.mi_res_id.is_some() {
        return refuse(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "tokentray serves signed-in users, not user-assigned identities; select an account with object_id",
        );
    }
    let account = q.object_id.or(q.principal_id);
    let trimmed = resource.trim_end_matches('/');
    // Azure CLI caches ARM as `https://management.core.windows.net//.default`: accept both forms.
    // Serve a fresh cached token under either; otherwise go through the refresh path with the
    // form that is cached (due for refresh), or the plain one.
    let forms = [
        vec![format!("{trimmed}/.default")],
        vec![format!("{trimmed}//.default")],
    ];
    let mut chosen = &forms[0];
    let mut fresh = None;
    for scopes in &forms {
        let request = TokenRequest {
            account: account.as_deref(),
            scopes,
            tenant: None,
        };
        match edge.tokens.cached(&request) {
            Ok(Some((served, false))) => {
                fresh = Some(served);
                break;
            }
            Ok(Some((_, true))) => {
                chosen = scopes;
                break;
            }
            _ => {}
        }
    }
    let result = match fresh {
        Some(served) => Ok(served),
        None => {
            let request = TokenRequest {
                account: account.as_deref(),
                scopes: chosen,
                tenant: None,
            };
            edge.tokens.get_token(&request).await
        }
    };
    match result {
        Ok(served) => {
            audit(&edge, "/msi/token", &served, peer.map(|Extension(p)| p));
            Json(json!({
                "access_token": served.secret.expose(),
                "expires_on": served.expires_on.to_string(),
                "resource": resource,
                "token_type": served.token_type,
                "client_id": edge.tokens.config().client_id,
            }))
            .into_response()
        }
        Err(e) => error_response(&e),
    }
}

#[derive(Deserialize)]
struct V1Query {
    scope: Option<String>,
    account: Option<String>,
    tenant: Option<String>,
}

async fn v1_token(
    State(edge): State<Arc<Edge>>,
    peer: Option<Extension<Peer>>,
    query: Result<Query<V1Query>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Ok(Query(q)) = query else {
        return refuse(
            StatusCode::BAD_REQUEST,
            "invalid_input",
            "malformed query string",
        );
    };
    let scopes: Vec<String> = q
        .scope
        .as_deref()
        .unwrap_or_default()
        .split([' ', ','])
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    if scopes.is_empty() {
        return refuse(
            StatusCode::BAD_REQUEST,
            "invalid_input",
            "scope is required, e.g. scope=https://management.azure.com/.default",
        );
    }
    let request = TokenRequest {
        account: q.account.as_deref(),
        scopes: &scopes,
        tenant: q.tenant.as_deref(),
    };
    match edge.tokens.get_token(&request).await {
        Ok(served) => {
            audit(&edge, "/v1/token", &served, peer.map(|Extension(p)| p));
            Json(json!({
                "access_token": served.secret.expose(),
                "expires_on": served.expires_on,
                "token_type": served.token_type,
                "scope": served.scopes,
                "account": served.account.username,
                "tenant": served.tenant,
            }))
            .into_response()
        }
        Err(e) => error_response(&e),
    }
}

async fn v1_accounts(State(edge): State<Arc<Edge>>) -> Response {
    match edge.tokens.accounts() {
        Ok(accounts) => Json(accounts).into_response(),
        Err(e) => error_response(&e),
    }
}

async fn v1_status(State(edge): State<Arc<Edge>>) -> Response {
    let accounts = edge.tokens.accounts().map(|a| a.len()).unwrap_or(0);
    Json(json!({
        "version": env!("CARGO_PKG_VERSION"),
        "pid": std::process::id(),
        "uptime_secs": edge.started.elapsed().as_secs(),
        "served": edge.tokens.requests_served(),
        "accounts": accounts,
        "store": edge.tokens.store().backend().as_str(),
    }))
    .into_response()
}
