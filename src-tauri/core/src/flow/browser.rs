//! The browser sign-in (RFC 8252 loopback redirect, RFC 7636 PKCE).
//!
//! A listener on `127.0.0.1` (random port) receives the redirect to `http://localhost:PORT`. Any
//! path is accepted; a request is the authorization response only if it carries `code`, `error`
//! or `state` (a stray `/favicon.ico` is answered 404 and ignored). Query and `form_post`
//! delivery both work. The listener serves only this user's processes, with deadlines on every
//! connection. An answer whose `state` is not this sign-in's is refused with a page saying so
//! and the flow keeps waiting; the id_token `nonce` must match too. The flow ends on the first
//! answer with the right `state`, on cancel or on timeout, and the port is released (stuck
//! connections cut) before the code is redeemed.

use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::Request;
use axum::http::{Method, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use url::Url;

use super::open::Opened;
use super::{Entra, Failure, Pkce, scope_param};
use crate::authority::Authority;
use crate::cache::{ClientInfo, IdTokenClaims, TokenResponse};
use crate::config::PortRange;
use crate::error::SignInOutcome;
use crate::secret::random_token;
use crate::{Error, Result};

/// Default time the user has to finish in the browser.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);

/// What to ask for.
#[derive(Debug, Clone)]
pub struct Options {
    /// Tenant for this sign-in (default: the configured one).
    pub tenant: Option<String>,
    /// Resource scopes (the reserved ones are added).
    pub scopes: Vec<String>,
    /// Pre-fills the username.
    pub login_hint: Option<String>,
    /// `select_account`, `login`, `consent`, ...
    pub prompt: Option<String>,
    /// A claims challenge from a previous failure.
    pub claims: Option<String>,
    /// How long to wait for the browser.
    pub timeout: Duration,
}

/// A completed browser sign-in, ready to be ingested.
#[derive(Debug)]
pub struct Completed {
    /// The token response.
    pub response: TokenResponse,
    /// The tenant used (the cache realm).
    pub tenant: String,
    /// The scopes requested.
    pub scopes: Vec<String>,
}

/// Runs the browser flow: binds the listener, calls `open` with the authorize URL (the caller
/// opens a browser and shows the URL; [`super::open::open_url`]), waits for the redirect (or
/// for the browser to fail at once: [`Opened::failed`]), redeems the code.
///
/// # Errors
/// [`Error::SignIn`] (denied, cancelled, timed out), [`Error::Protocol`] (state or nonce
/// mismatch, missing code), [`Error::Authority`] / [`Error::InteractionRequired`] /
/// [`Error::AuthorityUnavailable`] from the token endpoint, [`Error::Io`] if no port is free.
pub async fn sign_in<O: Into<Opened>>(
    entra: &Entra,
    request: Options,
    open: impl FnOnce(&Url) -> Result<O>,
    cancel: impl Future<Output = ()>,
) -> Result<Completed> {
    let authority = request.tenant.as_deref().map_or_else(
        || entra.authority().clone(),
        |t| entra.authority().with_tenant(t),
    );
    let listener = bind_redirect(entra.redirect_ports).await?;
    let port = listener
        .local_addr()
        .map_err(|e| Error::io("listen on", "127.0.0.1", e))?
        .port();
    let redirect_uri = format!("http://localhost:{port}");
    let pkce = Pkce::new()?;
    let state = random_token(16)?;
    let nonce = random_token(16)?;
    let url = authorize_url(
        entra,
        &authority,
        &request,
        &redirect_uri,
        &pkce.challenge,
        &state,
        &nonce,
    );

    let (code, account) =
        await_redirect(listener, state, open, &url, request.timeout, cancel).await?;
    let scope = scope_param(&request.scopes);
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.expose()),
        ("redirect_uri", redirect_uri.as_str()),
        ("code_verifier", pkce.verifier.expose()),
        ("scope", scope.as_str()),
    ];
    let response = entra
        // The routing hint MSAL sends with the code (X-AnchorMailbox from client_info).
        .token(&authority, &form, account.as_deref())
        .await
        .map_err(|f| match f {
            Failure::OAuth(e) => e.into_sign_in_error(),
            Failure::Other(e) => e,
        })?;
    check_nonce(&response, &nonce)?;
    Ok(Completed {
        response,
        tenant: authority.tenant().to_string(),
        scopes: request.scopes,
    })
}

/// The loopback redirect's listener on 127.0.0.1: any free port, or the first free one of
/// `ports` (`redirect_ports` in config.toml).
async fn bind_redirect(ports: Option<PortRange>) -> Result<TcpListener> {
    let Some(range) = ports else {
        return TcpListener::bind(("127.0.0.1", 0))
            .await
            .map_err(|e| Error::io("listen on", "127.0.0.1 (loopback redirect)", e));
    };
    for port in range.first..=range.last {
        if let Ok(listener) = TcpListener::bind(("127.0.0.1", port)).await {
            return Ok(listener);
        }
    }
    Err(Error::invalid(
        "redirect_ports",
        format!(
            "no port of {range} is free for the sign-in's loopback redirect; close what holds them, or widen redirect_ports in config.toml (or Settings)"
        ),
    ))
}

/// Serves the loopback redirect on `listener`, calls `open` with the authorize `url`, and waits
/// for the browser's answer (or `timeout`, or `cancel`); the port is released before this
/// returns. The authorization code, if the answer carried one, and the account's `uid.utid` from
/// its `client_info`.
async fn await_redirect<O: Into<Opened>>(
    listener: TcpListener,
    state: String,
    open: impl FnOnce(&Url) -> Result<O>,
    url: &Url,
    timeout: Duration,
    cancel: impl Future<Output = ()>,
) -> Result<(crate::secret::Secret, Option<String>)> {
    let (tx, mut rx) = mpsc::channel::<Callback>(1);
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let expected_state = state;
    let app = axum::Router::new().fallback(move |req: Request| {
        let tx = tx.clone();
        let expected_state = expected_state.clone();
        async move { callback(req, &expected_state, &tx).await }
    });
    let server = tokio::spawn(listen(listener, app, stop_rx));

    let outcome = async {
        let opened: Opened = open(url)?.into();
        tokio::select! {
            what = opened.failed() => Err(Error::invalid(
                "browser",
                format!("the browser did not start ({what}); set BROWSER to your browser's command, or sign in with a device code (`tokentray login --device-code`)"),
            )),
            got = rx.recv() => got.ok_or_else(|| Error::Protocol("the loopback listener stopped".into())),
            () = tokio::time::sleep(timeout) => Err(Error::SignIn {
                outcome: SignInOutcome::TimedOut,
                detail: format!("no answer from the browser within {} s; run the sign-in again", timeout.as_secs()),
            }),
            () = cancel => Err(Error::SignIn { outcome: SignInOutcome::Cancelled, detail: "the browser sign-in was cancelled".into() }),
        }
    }
    .await;
    // Release the port before anything else happens.
    let _ = stop_tx.send(true);
    let _ = server.await;

    match outcome? {
        Callback::Code(code, account) => Ok((code, account)),
        Callback::Failed(e) => Err(e),
    }
}

/// Time to send a `form_post` body.
const BODY_DEADLINE: Duration = Duration::from_secs(10);
/// Most connections the redirect listener serves at once (a browser opens a few).
const MAX_CONNECTIONS: usize = 16;
/// After the answer, how long the browser's page may take to be written before every
/// connection is cut.
const LINGER: Duration = Duration::from_secs(1);

/// The redirect listener: this user's connections only (others are closed unread), each
/// bounded by [`crate::loopback::serve`]'s deadlines, at most [`MAX_CONNECTIONS`]. On `stop`
/// it stops accepting, lets the connections finish for up to [`LINGER`], then cuts them: a
/// stuck or half-sent request never holds the sign-in.
async fn listen(
    listener: TcpListener,
    app: axum::Router,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut connections = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, peer)) = accepted else { continue };
                if connections.len() >= MAX_CONNECTIONS {
                    continue; // dropped
                }
                let (app, stop) = (app.clone(), stop.clone());
                connections.spawn(async move {
                    if crate::loopback::admit(&stream, peer).await.is_ok() {
                        let app = hyper_util::service::TowerToHyperService::new(app);
                        crate::loopback::serve(stream, app, stop).await;
                    }
                });
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            _ = stop.changed() => break,
        }
    }
    drop(listener);
    let _ = tokio::time::timeout(LINGER, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    connections.abort_all();
}

/// Checks the id_token echoes our nonce.
pub(crate) fn check_nonce(response: &TokenResponse, nonce: &str) -> Result<()> {
    let claims = response.id_token.as_ref().and_then(IdTokenClaims::decode);
    match claims.and_then(|c| c.nonce) {
        Some(n) if n == nonce => Ok(()),
        Some(_) => Err(Error::Protocol(
            "the id_token's nonce does not match this sign-in (replayed or forged answer)".into(),
        )),
        None => Err(Error::Protocol("the answer has no id_token nonce".into())),
    }
}

fn authorize_url(
    entra: &Entra,
    authority: &Authority,
    request: &Options,
    redirect_uri: &str,
    challenge: &str,
    state: &str,
    nonce: &str,
) -> Url {
    let mut url = authority.authorize_endpoint();
    {
        let mut q = url.query_pairs_mut();
        q.append_pair("client_id", entra.client_id())
            .append_pair("response_type", "code")
            .append_pair("redirect_uri", redirect_uri)
            .append_pair("scope", &scope_param(&request.scopes))
            .append_pair("state", state)
            .append_pair("code_challenge", challenge)
            .append_pair("code_challenge_method", "S256")
            .append_pair("nonce", nonce)
            .append_pair("client_info", "1")
            .append_pair("response_mode", "form_post");
        if let Some(p) = &request.prompt {
            q.append_pair("prompt", p);
        }
        if let Some(h) = &request.login_hint {
            q.append_pair("login_hint", h);
        }
        if let Some(c) = &request.claims {
            q.append_pair("claims", c);
        }
    }
    url
}

enum Callback {
    /// The code, and the account's `uid.utid` from the answer's `client_info` when it has one.
    Code(crate::secret::Secret, Option<String>),
    Failed(Error),
}

async fn callback(req: Request, expected_state: &str, tx: &mpsc::Sender<Callback>) -> Response {
    let query = req.uri().query().unwrap_or_default().to_string();
    let mut params: HashMap<String, String> = url::form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    if req.method() == Method::POST {
        let body = axum::body::to_bytes(req.into_body(), 64 * 1024);
        let body: Bytes = match tokio::time::timeout(BODY_DEADLINE, body).await {
            Ok(Ok(body)) => body,
            _ => return (StatusCode::BAD_REQUEST, "incomplete request").into_response(),
        };
        params.extend(url::form_urlencoded::parse(&body).into_owned());
    }
    let is_answer = ["code", "error", "state"]
        .iter()
        .any(|k| params.contains_key(*k));
    if !is_answer {
        return (StatusCode::NOT_FOUND, "not the sign-in answer").into_response();
    }
    if params.get("state").map(String::as_str) != Some(expected_state) {
        // A stale tab, or another program guessing: not ours. Keep waiting for the real one.
        let page = page(
            "Not this sign-in",
            "This is not the sign-in you started in tokentray (an old tab, or a forged request). \
             Finish the sign-in in the tab tokentray opened, or start it again.",
        );
        return (StatusCode::BAD_REQUEST, page).into_response();
    }
    let result = if let Some(error) = params.get("error") {
        let description = params.get("error_description").cloned().unwrap_or_default();
        let first = crate::error::first_line(&description);
        Callback::Failed(Error::SignIn {
            outcome: if error == "access_denied" {
                SignInOutcome::Denied
            } else {
                SignInOutcome::Refused
            },
            detail: format!("{error}{}{first}", if first.is_empty() { "" } else { ": " }),
        })
    } else if let Some(code) = params.remove("code").filter(|c| !c.is_empty()) {
        let account = params
            .get("client_info")
            .and_then(|c| ClientInfo::decode(c))
            .and_then(|c| c.home_account_id());
        Callback::Code(crate::secret::Secret::new(code), account)
    } else {
        Callback::Failed(Error::Protocol(
            "the redirect carried no authorization code".into(),
        ))
    };
    let page = match &result {
        Callback::Code(..) => page(
            "Signed in",
            "You are signed in to tokentray. You can close this tab.",
        ),
        Callback::Failed(e) => page("Sign-in failed", &format!("{e}. You can close this tab.")),
    };
    let _ = tx.try_send(result);
    page.into_response()
}

fn page(title: &str, message: &str) -> Html<String> {
    let esc = |s: &str| {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
    };
    Html(format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>tokentray: {t}</title>\
         <style>body{{font:16px system-ui,sans-serif;margin:15vh auto;max-width:32em;padding:0 1em}}\
         @media (prefers-color-scheme:dark){{body{{background:#111;color:#eee}}}}</style></head>\
         <body><h1>{t}</h1><p>{m}</p></body></html>",
        t = esc(title),
        m = esc(message)
    ))
}
