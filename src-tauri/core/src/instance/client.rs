//! The client of a running instance's native API (`GET /v1/token`, `/v1/accounts`,
//! `/v1/activity`), for the CLI: plain HTTP/1.1 over loopback, no proxy, no TLS (so no root certificates are loaded).

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

/// `GET path?query` of the instance at `endpoint`, with its secret, within the timeouts above.
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
    let unreachable = |e: reqwest::Error| Error::InstanceUnreachable {
        url: endpoint.url.clone(),
        detail: e.to_string(),
    };
    let client = reqwest::Client::builder()
        .no_proxy()
        .http1_only()
        .tls_built_in_root_certs(false)
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(ANSWER_TIMEOUT)
        .build()
        .map_err(unreachable)?;
    let response = client
        .get(format!("{}{path}", endpoint.url))
        .query(query)
        .bearer_auth(endpoint.secret.expose())
        .send()
        .await
        .map_err(unreachable)?;
    let ok = response.status().is_success();
    let bytes = response.bytes().await.map_err(unreachable)?;
    let not_json =
        || Error::Protocol("the running tokentray answered with something that is not JSON".into());
    if ok {
        serde_json::from_slice(&bytes).map_err(|_| not_json())
    } else {
        let refused: ErrorBody = serde_json::from_slice(&bytes).map_err(|_| not_json())?;
        Err(Error::Remote {
            code: refused.code,
            message: refused.message,
        })
    }
}
