//! The handlers (each a query in, one core call, JSON out) and the JSON bodies they send.

use std::sync::Arc;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::audit::audit;
use super::guard::Refusal;
use super::{EndpointState, Peer};
use crate::flow::parse_scopes;
use crate::secret::Secret;
use crate::tokens::{ServedToken, TokenRequest};
use crate::{Error, ErrorCode};

/// The native API's token answer (`GET /v1/token`), also what `tokentray token` prints as JSON.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TokenBody {
    /// The access token.
    pub access_token: Secret,
    /// `Bearer`.
    pub token_type: String,
    /// Expiry, epoch seconds.
    pub expires_on: i64,
    /// Granted scopes, space-separated.
    pub scope: String,
    /// The account's username.
    pub account: String,
    /// The tenant the token is for.
    pub tenant: String,
}

impl From<&ServedToken> for TokenBody {
    fn from(served: &ServedToken) -> Self {
        Self {
            access_token: served.access_token.clone(),
            token_type: served.token_type.clone(),
            expires_on: served.expires_on,
            scope: served.scopes.clone(),
            account: served.account.username.clone(),
            tenant: served.tenant.clone(),
        }
    }
}

/// The body of every refusal and error. Both spellings are sent: `{code, message}` for
/// tokentray's clients, and OAuth's `{error, error_description}`, which the Azure SDKs' managed
/// identity credentials put into their error messages.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ErrorBody {
    /// The stable code ([`ErrorCode::as_str`]).
    #[serde(default)]
    pub code: String,
    /// What went wrong and what to do.
    #[serde(default)]
    pub message: String,
    /// The same code, OAuth's name for it.
    #[serde(default)]
    pub error: String,
    /// The same message, OAuth's name for it.
    #[serde(default)]
    pub error_description: String,
    /// Entra's claims challenge (JSON), when a token needs an interactive sign-in that
    /// answers it: a tool that signs in itself passes it on as MSAL's `claims_challenge`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claims: Option<String>,
}

/// A `status` answer with an [`ErrorBody`].
pub(super) fn refuse(status: StatusCode, code: ErrorCode, message: &str) -> Response {
    reply(status, code, message, None)
}

fn reply(status: StatusCode, code: ErrorCode, message: &str, claims: Option<String>) -> Response {
    let body = ErrorBody {
        code: code.as_str().into(),
        message: message.into(),
        error: code.as_str().into(),
        error_description: message.into(),
        claims,
    };
    (status, Json(body)).into_response()
}

/// The answer for a core error: its code, its message, an HTTP status that says whose fault it
/// is, and `Retry-After` when the authority is unavailable.
pub(super) fn error_response(e: &Error) -> Response {
    let status = match e.code() {
        ErrorCode::NoAccount
        | ErrorCode::AccountNotFound
        | ErrorCode::InteractionRequired
        | ErrorCode::ConsentRequired => StatusCode::UNAUTHORIZED,
        ErrorCode::InvalidInput | ErrorCode::AmbiguousAccount => StatusCode::BAD_REQUEST,
        ErrorCode::ClientNotApproved
        | ErrorCode::ClientDenied
        | ErrorCode::BlockedByPolicy
        | ErrorCode::NotInTenant => StatusCode::FORBIDDEN,
        ErrorCode::AuthorityUnavailable => StatusCode::SERVICE_UNAVAILABLE,
        ErrorCode::Authority | ErrorCode::UnknownTenant => StatusCode::BAD_REQUEST,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    let claims = match e {
        Error::InteractionRequired { claims, .. } => claims.clone(),
        _ => None,
    };
    let mut r = reply(status, e.code(), &e.to_string(), claims);
    if let Error::AuthorityUnavailable { retry_after, .. } = e {
        let secs = retry_after.unwrap_or(5).to_string();
        if let Ok(v) = HeaderValue::from_str(&secs) {
            r.headers_mut().insert(header::RETRY_AFTER, v);
        }
    }
    r
}

/// Under `require_approval`, whether the peer's program may be served a token; it may wait for
/// the user's answer ([`crate::approval`]).
async fn approved(state: &EndpointState, peer: Option<&Peer>) -> Result<(), Response> {
    if !state.tokens.config().require_approval {
        return Ok(());
    }
    let process = match peer {
        Some(peer) => peer.process().await,
        None => None,
    };
    state
        .approvals
        .admit(process)
        .await
        .map_err(|e| error_response(&e))
}

fn malformed(code: ErrorCode, message: &'static str) -> Response {
    Refusal::Malformed { code, message }.into_response()
}

#[derive(Deserialize)]
pub(super) struct MsiQuery {
    #[serde(rename = "api-version")]
    api_version: Option<String>,
    resource: Option<String>,
    object_id: Option<String>,
    principal_id: Option<String>,
    client_id: Option<String>,
    mi_res_id: Option<String>,
}

/// `GET /msi/token`: the App Service managed-identity protocol.
pub(super) async fn msi_token(
    State(state): State<Arc<EndpointState>>,
    peer: Option<Extension<Peer>>,
    query: Result<Query<MsiQuery>, QueryRejection>,
) -> Response {
    let bad = |message| malformed(ErrorCode::InvalidRequest, message);
    let Ok(Query(q)) = query else {
        return bad("malformed query string");
    };
    let resource = match required(
        q.api_version.as_deref(),
        q.resource,
        "api-version is required (2019-08-01)",
    ) {
        Ok(resource) => resource,
        Err(message) => return bad(message),
    };
    if q.client_id.is_some() || q.mi_res_id.is_some() {
        return bad(
            "tokentray serves signed-in users, not user-assigned identities; select an account with object_id",
        );
    }
    let account = q.object_id.or(q.principal_id);
    let client_id = &state.tokens.config().client_id;
    serve_resource(
        &state,
        peer,
        "/msi/token",
        &resource,
        account.as_deref(),
        |served| {
            Json(MsiBody {
                access_token: served.access_token.expose(),
                expires_on: served.expires_on.to_string(),
                resource: &resource,
                token_type: &served.token_type,
                client_id,
            })
            .into_response()
        },
    )
    .await
}

/// What both managed-identity protocols require: an `api-version` (`missing_version` says which
/// one the protocol documents) and a resource that is not blank, which this returns; else what
/// to say.
fn required(
    api_version: Option<&str>,
    resource: Option<String>,
    missing_version: &'static str,
) -> Result<String, &'static str> {
    if api_version.is_none() {
        return Err(missing_version);
    }
    resource
        .filter(|r| !r.trim().is_empty())
        .ok_or("resource is required, e.g. https://management.azure.com/")
}

/// Serves `resource`'s token of `account` (`None`: the default account) to `peer` once it is
/// approved, audited as `route`, answered with `body`.
async fn serve_resource(
    state: &EndpointState,
    peer: Option<Extension<Peer>>,
    route: &'static str,
    resource: &str,
    account: Option<&str>,
    body: impl FnOnce(&ServedToken) -> Response,
) -> Response {
    let peer = peer.map(|Extension(p)| p);
    if let Err(refused) = approved(state, peer.as_ref()).await {
        return refused;
    }
    match state.tokens.get_for_resource(resource, account).await {
        Ok(served) => {
            let answer = body(&served);
            audit(state, route, &served, peer).await;
            answer
        }
        Err(e) => error_response(&e),
    }
}

#[derive(Deserialize)]
pub(super) struct ImdsQuery {
    #[serde(rename = "api-version")]
    api_version: Option<String>,
    resource: Option<String>,
    client_id: Option<String>,
    object_id: Option<String>,
    msi_res_id: Option<String>,
}

/// `GET /imds/<secret>/token`: the Instance Metadata Service's managed-identity protocol as
/// hashicorp/go-azure-sdk's `ManagedIdentityAuthorizer` (Terraform's azurerm, azuread and azapi
/// providers) sends it: `api-version`, `resource`, a `client_id` when `ARM_CLIENT_ID` is set,
/// header `Metadata: true`. It reads the expiry from `expires_in` only, so the answer carries
/// it (as IMDS does, a string of seconds), and `expires_on` too. The default account's token;
/// a user-assigned identity (`client_id`, `object_id`, `msi_res_id`) is refused with what to
/// unset.
pub(super) async fn imds_token(
    State(state): State<Arc<EndpointState>>,
    peer: Option<Extension<Peer>>,
    headers: axum::http::HeaderMap,
    query: Result<Query<ImdsQuery>, QueryRejection>,
) -> Response {
    let bad = |message| malformed(ErrorCode::InvalidRequest, message);
    if headers
        .get("metadata")
        .is_none_or(|v| !v.as_bytes().eq_ignore_ascii_case(b"true"))
    {
        return bad(
            "the Metadata: true header is required, as the Instance Metadata Service requires it",
        );
    }
    let Ok(Query(q)) = query else {
        return bad("malformed query string");
    };
    let resource = match required(
        q.api_version.as_deref(),
        q.resource,
        "api-version is required (2018-02-01)",
    ) {
        Ok(resource) => resource,
        Err(message) => return bad(message),
    };
    if q.client_id.is_some() || q.object_id.is_some() || q.msi_res_id.is_some() {
        return bad(
            "tokentray serves the signed-in user, not a user-assigned identity; unset ARM_CLIENT_ID \
             (Terraform sends it as client_id) to use tokentray's default account",
        );
    }
    let client_id = &state.tokens.config().client_id;
    serve_resource(&state, peer, "/imds/token", &resource, None, |served| {
        let now = state.tokens.now();
        Json(ImdsBody {
            access_token: served.access_token.expose(),
            client_id,
            expires_in: (served.expires_on - now).max(0).to_string(),
            expires_on: served.expires_on.to_string(),
            ext_expires_in: (served.expires_on - now).max(0).to_string(),
            not_before: now.to_string(),
            resource: &resource,
            token_type: &served.token_type,
        })
        .into_response()
    })
    .await
}

/// The Instance Metadata Service's answer (every number a string, as IMDS sends them).
#[derive(Serialize)]
struct ImdsBody<'a> {
    access_token: &'a str,
    client_id: &'a str,
    expires_in: String,
    expires_on: String,
    ext_expires_in: String,
    not_before: String,
    resource: &'a str,
    token_type: &'a str,
}

/// The App Service managed-identity answer (`expires_on` as a string of epoch seconds, as App
/// Service sends it), serialized straight from the served token.
#[derive(Serialize)]
struct MsiBody<'a> {
    access_token: &'a str,
    expires_on: String,
    resource: &'a str,
    token_type: &'a str,
    client_id: &'a str,
}

#[derive(Deserialize)]
pub(super) struct V1Query {
    scope: Option<String>,
    account: Option<String>,
    tenant: Option<String>,
}

/// `GET /v1/token`: the native API.
pub(super) async fn v1_token(
    State(state): State<Arc<EndpointState>>,
    peer: Option<Extension<Peer>>,
    query: Result<Query<V1Query>, QueryRejection>,
) -> Response {
    let Ok(Query(q)) = query else {
        return malformed(ErrorCode::InvalidInput, "malformed query string");
    };
    let scopes = parse_scopes(q.scope.as_deref().unwrap_or_default());
    if scopes.is_empty() {
        return malformed(
            ErrorCode::InvalidInput,
            "scope is required, e.g. scope=https://management.azure.com/.default",
        );
    }
    let request = TokenRequest {
        account: q.account.as_deref(),
        scopes: &scopes,
        tenant: q.tenant.as_deref(),
    };
    let peer = peer.map(|Extension(p)| p);
    if let Err(refused) = approved(&state, peer.as_ref()).await {
        return refused;
    }
    match state.tokens.get_token(&request).await {
        Ok(served) => {
            audit(&state, "/v1/token", &served, peer).await;
            Json(TokenBody::from(&served)).into_response()
        }
        Err(e) => error_response(&e),
    }
}

/// `GET /v1/accounts`: the accounts with their health ([`crate::tokens::AccountState`]).
pub(super) async fn v1_accounts(State(state): State<Arc<EndpointState>>) -> Response {
    match state.tokens.account_states() {
        Ok(accounts) => Json(accounts).into_response(),
        Err(e) => error_response(&e),
    }
}

/// The largest body `POST /token` reads (azd sends its scopes and a tenant).
pub(super) const AZD_BODY_LIMIT: usize = 16 * 1024;

/// What azd sends (`pkg/auth/remote_credential.go`): the scopes of its `GetToken` call and, to
/// override the default, a tenant.
#[derive(Deserialize)]
pub(super) struct AzdRequest {
    #[serde(default)]
    scopes: Vec<String>,
    #[serde(default, rename = "tenantId")]
    tenant_id: Option<String>,
}

/// `POST /token?api-version=2023-07-12-preview`: azd's external authentication protocol, so
/// `azd` (and the SDKs' `AzureDeveloperCliCredential`, which runs it) get tokentray's tokens
/// with `AZD_AUTH_ENDPOINT` and `AZD_AUTH_KEY` (the endpoint secret, as `Bearer`) set. azd
/// reads only a 200 answer, so every outcome is one: `{"status": "success", "token",
/// "expiresOn"}` (RFC 3339, UTC) or `{"status": "error", "code", "message"}`, the code
/// `NotSignedInError` when signing in would fix it, else `GetTokenError`; the message is
/// tokentray's, which says what to do.
pub(super) async fn azd_token(
    State(state): State<Arc<EndpointState>>,
    peer: Option<Extension<Peer>>,
    body: Result<Json<AzdRequest>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let failed = |code: &str, message: String| {
        Json(json!({"status": "error", "code": code, "message": message})).into_response()
    };
    let request = match body {
        Ok(Json(request)) => request,
        Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            return refuse(
                StatusCode::PAYLOAD_TOO_LARGE,
                ErrorCode::InvalidInput,
                "the request body is too large",
            );
        }
        Err(e) => {
            return failed(
                "GetTokenError",
                format!("not azd's request ({e}); send {{\"scopes\": [...]}} as JSON"),
            );
        }
    };
    let scopes: Vec<String> = request
        .scopes
        .iter()
        .flat_map(|s| parse_scopes(s))
        .collect();
    if scopes.is_empty() {
        return failed("GetTokenError", "no scopes were asked for".into());
    }
    let peer = peer.map(|Extension(p)| p);
    if let Err(refused) = approved(&state, peer.as_ref()).await {
        return refused;
    }
    let tenant = request.tenant_id.filter(|t| !t.trim().is_empty());
    let asked = TokenRequest {
        account: None,
        scopes: &scopes,
        tenant: tenant.as_deref(),
    };
    match state.tokens.get_token(&asked).await {
        Ok(served) => {
            audit(&state, "/token", &served, peer).await;
            let expires_on = chrono::DateTime::from_timestamp(served.expires_on, 0)
                .unwrap_or_default()
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
            // Serialized straight from the served token: no copy of it is left behind.
            Json(AzdSuccess {
                status: "success",
                token: served.access_token.expose(),
                expires_on,
            })
            .into_response()
        }
        Err(e) => {
            let code = match e.code() {
                ErrorCode::NoAccount
                | ErrorCode::NoCachedToken
                | ErrorCode::KeyLost
                | ErrorCode::InteractionRequired => "NotSignedInError",
                _ => "GetTokenError",
            };
            failed(code, e.to_string())
        }
    }
}

#[derive(Serialize)]
struct AzdSuccess<'a> {
    status: &'static str,
    token: &'a str,
    #[serde(rename = "expiresOn")]
    expires_on: String,
}

/// `GET /v1/activity`: the tokens served lately, newest first ([`crate::tokens::Served`]).
pub(super) async fn v1_activity(State(state): State<Arc<EndpointState>>) -> Response {
    Json(state.tokens.activity()).into_response()
}

/// `GET /v1/status`.
pub(super) async fn v1_status(State(state): State<Arc<EndpointState>>) -> Response {
    let accounts = state.tokens.accounts().map(|a| a.len()).unwrap_or(0);
    Json(json!({
        "version": env!("CARGO_PKG_VERSION"),
        "pid": std::process::id(),
        "uptime_secs": state.started.elapsed().as_secs(),
        "served": state.tokens.requests_served(),
        "accounts": accounts,
        "store": state.tokens.store().backend().as_str(),
    }))
    .into_response()
}
