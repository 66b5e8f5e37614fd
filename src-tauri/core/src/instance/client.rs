//! The client of a running instance's native API (`GET /v1/token`, `/v1/accounts`,
//! `/v1/activity`), for the CLI and helpers: plain HTTP/1.1 over the instance's Unix socket (or
//! its loopback port), one request per connection, no proxy, no TLS.

use serde::de::DeserializeOwned;

use super::Endpoint;
use crate::serve::{ErrorBody, TokenBody};
use crate::tokens::{AccountState, Served, TokenRequest};
use crate::{Error, Result};

/// Asks the running instance at `endpoint` for the token `request` names.
///
/// # Errors
/// Those of [`get`].
pub async fn native_token(endpoint: &Endpoint, request: &TokenRequest<'_>) -> Result<TokenBody> {
    let mut query = vec![("scope", request.scopes.join(" "))];
    if let Some(account) = request.account {
        query.push(("account", account.to_string()));
    }
    if let Some(tenant) = request.tenant {
        query.push(("tenant", tenant.to_string()));
    }
    get(endpoint, "/v1/token", &query).await
}

/// The running instance's accounts with their health (it knows its refreshes and backoff).
///
/// # Errors
/// Those of [`get`].
pub async fn account_states(endpoint: &Endpoint) -> Result<Vec<AccountState>> {
    get(endpoint, "/v1/accounts", &[]).await
}

/// The tokens the running instance served lately, newest first.
///
/// # Errors
/// Those of [`get`].
pub async fn activity(endpoint: &Endpoint) -> Result<Vec<Served>> {
    get(endpoint, "/v1/activity", &[]).await
}

/// Longest wait for a running instance to take the connection.
const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);
/// Longest wait for its answer (a refresh included); past it the instance counts as wedged.
const ANSWER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Longest answer read from the instance (a thousand accounts' states fit many times over).
const MAX_ANSWER: usize = 16 << 20;

/// `GET path?query` of the instance at `endpoint`, with its secret, within the timeouts above:
/// over its Unix socket when it has one that takes the connection, else over its loopback URL.
///
/// # Errors
/// [`Error::InstanceUnreachable`] if the instance does not answer in time; [`Error::Remote`] with the
/// instance's `{code, message}` if it refuses; [`Error::Protocol`] if the answer is not the
/// JSON expected.
async fn get<T: DeserializeOwned>(
    endpoint: &Endpoint,
    path: &str,
    query: &[(&str, String)],
) -> Result<T> {
    use hyper::header::{AUTHORIZATION, CONNECTION, HOST, HeaderValue};
    let unreachable = |detail: String| Error::InstanceUnreachable {
        url: endpoint.url.clone(),
        detail,
    };
    let mut target = path.to_string();
    if !query.is_empty() {
        target.push('?');
        target.push_str(
            &url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs(query)
                .finish(),
        );
    }
    let address = super::address_of(&endpoint.url);
    let bearer = zeroize::Zeroizing::new(format!("Bearer {}", endpoint.secret.expose()));
    let mut authorization = HeaderValue::from_str(&bearer)
        .map_err(|_| unreachable("its secret is malformed".into()))?;
    authorization.set_sensitive(true);
    let request = hyper::Request::get(target)
        .header(HOST, address)
        .header(AUTHORIZATION, authorization)
        .header(CONNECTION, "close")
        .body(http_body_util::Empty::<hyper::body::Bytes>::new())
        .map_err(|e| unreachable(e.to_string()))?;
    let exchange = async {
        #[cfg(unix)]
        if let Some(socket) = &endpoint.socket
            && let Ok(Ok(io)) =
                tokio::time::timeout(CONNECT_TIMEOUT, tokio::net::UnixStream::connect(socket)).await
        {
            return send(io, request).await;
        }
        let io = tokio::time::timeout(CONNECT_TIMEOUT, tokio::net::TcpStream::connect(address))
            .await
            .map_err(|_| "no connection within 2 s".to_string())?
            .map_err(|e| e.to_string())?;
        let _ = io.set_nodelay(true);
        send(io, request).await
    };
    let (status, bytes) = tokio::time::timeout(ANSWER_TIMEOUT, exchange)
        .await
        .map_err(|_| unreachable("no answer within 10 s".into()))?
        .map_err(unreachable)?;
    let not_json =
        || Error::Protocol("the running tokentray answered with something that is not JSON".into());
    if status.is_success() {
        serde_json::from_slice(&bytes).map_err(|_| not_json())
    } else {
        let refused: ErrorBody = serde_json::from_slice(&bytes).map_err(|_| not_json())?;
        Err(Error::Remote {
            code: refused.code,
            message: refused.message,
        })
    }
}

/// Sends `request` over the connection `io` (HTTP/1.1) and reads the whole answer, at most
/// [`MAX_ANSWER`] bytes: its status and body, or what went wrong.
async fn send<IO>(
    io: IO,
    request: hyper::Request<http_body_util::Empty<hyper::body::Bytes>>,
) -> std::result::Result<(hyper::StatusCode, hyper::body::Bytes), String>
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    use http_body_util::BodyExt as _;
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(io))
            .await
            .map_err(|e| e.to_string())?;
    tokio::spawn(connection);
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| e.to_string())?;
    let status = response.status();
    let body = http_body_util::Limited::new(response.into_body(), MAX_ANSWER)
        .collect()
        .await
        .map_err(|e| e.to_string())?;
    Ok((status, body.to_bytes()))
}
