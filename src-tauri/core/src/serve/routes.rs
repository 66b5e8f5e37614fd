//! The routes ([`route`] picks one by method and path), their handlers (each a query in, one
//! core call, JSON out) and the JSON bodies they send.

use std::borrow::Cow;

use axum::Json;
use axum::http::{HeaderMap, HeaderValue, Method, Request, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use http_body_util::{BodyExt as _, LengthLimitError, Limited};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::audit::audit;
use super::guard::Refusal;
use super::{EndpointState, Peer, RequestBody};
use crate::flow::parse_scopes;
use crate::json::write_str;
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
            token_type: served.token_type.to_string(),
            expires_on: served.expires_on,
            scope: served.scopes.to_string(),
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

/// The answer of the route `req` asks for (it has passed the security layer): by path, then
/// method (`GET` routes answer `HEAD` too, without the body). A path that is no route is
/// [`Refusal::NotFound`]; a route asked for with another method, [`Refusal::MethodNotAllowed`].
pub(super) async fn route<B: RequestBody>(
    state: &EndpointState,
    peer: Option<&Peer>,
    req: Request<B>,
) -> Response {
    let Some(route) = Route::of(req.uri().path()) else {
        return Refusal::NotFound.into_response();
    };
    let allow = route.method();
    let method = req.method();
    if method.as_str() != allow && !(allow == "GET" && method == Method::HEAD) {
        return Refusal::MethodNotAllowed { allow }.into_response();
    }
    let uri = req.uri();
    match route {
        Route::Msi => msi_token(state, peer, uri).await,
        Route::Imds => imds_token(state, peer, req.headers(), uri).await,
        Route::Token => v1_token(state, peer, uri).await,
        Route::Accounts => v1_accounts(state),
        Route::Status => v1_status(state),
        Route::Activity => v1_activity(state),
        Route::Azd => azd_token(state, peer, req.into_body()).await,
    }
}

/// The endpoint's routes, each named by its path once (see the module doc of `serve`).
#[derive(Clone, Copy)]
enum Route {
    /// `/msi/token`
    Msi,
    /// `/imds/<secret>/token`
    Imds,
    /// `/v1/token`
    Token,
    /// `/v1/accounts`
    Accounts,
    /// `/v1/status`
    Status,
    /// `/v1/activity`
    Activity,
    /// `/token` (azd)
    Azd,
}

impl Route {
    /// The route at `path`, if any.
    fn of(path: &str) -> Option<Self> {
        Some(match path {
            "/msi/token" => Self::Msi,
            "/v1/token" => Self::Token,
            "/v1/accounts" => Self::Accounts,
            "/v1/status" => Self::Status,
            "/v1/activity" => Self::Activity,
            "/token" => Self::Azd,
            path if imds_route(path) => Self::Imds,
            _ => return None,
        })
    }

    /// The one method it answers (a `GET` route answers `HEAD` too).
    fn method(self) -> &'static str {
        match self {
            Self::Azd => "POST",
            _ => "GET",
        }
    }
}

/// Whether `path` is `/imds/<secret>/token`, the secret one non-empty segment.
fn imds_route(path: &str) -> bool {
    path.strip_prefix("/imds/")
        .and_then(|rest| rest.strip_suffix("/token"))
        .is_some_and(|secret| !secret.is_empty() && !secret.contains('/'))
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

/// The values of the query parameters `names` in `uri`, in their order, decoded
/// (`application/x-www-form-urlencoded`: `+` is a space, `%XX` a byte, invalid UTF-8 replaced),
/// borrowed from the URI when nothing needed decoding. Other parameters are ignored; a name
/// given twice makes the query malformed (`None`).
fn query<'u, const N: usize>(uri: &'u Uri, names: [&str; N]) -> Option<[Option<Cow<'u, str>>; N]> {
    let mut values = [const { None }; N];
    // Whether `name` was new (or not asked for).
    let mut put = |name: &str, value: Cow<'u, str>| match names.iter().position(|n| *n == name) {
        Some(i) => values[i].replace(value).is_none(),
        None => true,
    };
    let query = uri.query().unwrap_or_default();
    let fresh = if query.bytes().any(|b| b == b'%' || b == b'+') {
        url::form_urlencoded::parse(query.as_bytes()).all(|(name, value)| put(&name, value))
    } else {
        // What SDKs send needs no decoding: split in place (a URI's query is ASCII).
        query
            .split('&')
            .filter(|pair| !pair.is_empty())
            .all(|pair| {
                let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
                put(name, Cow::Borrowed(value))
            })
    };
    fresh.then_some(values)
}

/// `GET /msi/token`: the App Service managed-identity protocol.
async fn msi_token(state: &EndpointState, peer: Option<&Peer>, uri: &Uri) -> Response {
    let bad = |message| malformed(ErrorCode::InvalidRequest, message);
    let Some(
        [
            api_version,
            resource,
            object_id,
            principal_id,
            client_id,
            mi_res_id,
        ],
    ) = query(
        uri,
        [
            "api-version",
            "resource",
            "object_id",
            "principal_id",
            "client_id",
            "mi_res_id",
        ],
    )
    else {
        return bad("malformed query string");
    };
    let resource = match required(
        api_version.as_deref(),
        resource,
        "api-version is required (2019-08-01)",
    ) {
        Ok(resource) => resource,
        Err(message) => return bad(message),
    };
    if client_id.is_some() || mi_res_id.is_some() {
        return bad(
            "tokentray serves signed-in users, not user-assigned identities; select an account with object_id",
        );
    }
    let account = object_id.or(principal_id);
    let client_id = &state.tokens.config().client_id;
    serve_resource(
        state,
        peer,
        "/msi/token",
        &resource,
        account.as_deref(),
        |served| {
            // App Service's answer (`expires_on` a string of epoch seconds, as it sends it),
            // written straight from the served token.
            let mut body = JsonObject::new(served.access_token.expose().len() + 256);
            body.str("access_token", served.access_token.expose());
            body.str("expires_on", itoa::Buffer::new().format(served.expires_on));
            body.str("resource", &resource);
            body.str("token_type", served.token_type);
            body.str("client_id", client_id);
            body.into_response()
        },
    )
    .await
}

/// A JSON object written field by field, for the token answers: the same bytes serde_json
/// writes, but a string that needs no escaping (a token: base64url and dots) is copied whole
/// instead of escaped byte by byte, which was a fifth of a cached-token request. The buffer is
/// the answer's body, zeroed once hyper has sent it: an answer leaves no copy of its token.
struct JsonObject(Vec<u8>);

impl JsonObject {
    /// An empty object with room for about `capacity` bytes.
    fn new(capacity: usize) -> Self {
        let mut bytes = Vec::with_capacity(capacity);
        bytes.push(b'{');
        Self(bytes)
    }

    /// Adds `"key": value`, value a string.
    fn str(&mut self, key: &'static str, value: &str) {
        self.key(key);
        write_str(&mut self.0, value);
    }

    /// Adds `"key": value`, value a number.
    fn int(&mut self, key: &'static str, value: i64) {
        self.key(key);
        self.0
            .extend_from_slice(itoa::Buffer::new().format(value).as_bytes());
    }

    /// Starts the member `key`: the comma before it, the key, the colon.
    fn key(&mut self, key: &'static str) {
        if self.0.len() > 1 {
            self.0.push(b',');
        }
        write_str(&mut self.0, key);
        self.0.push(b':');
    }

    /// The object as a `200 OK` `application/json` answer whose body is zeroed when dropped.
    fn into_response(mut self) -> Response {
        self.0.push(b'}');
        let body = hyper::body::Bytes::from_owner(crate::secret::SecretBytes::new(self.0));
        (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            axum::body::Body::from(body),
        )
            .into_response()
    }
}

/// What both managed-identity protocols require: an `api-version` (`missing_version` says which
/// one the protocol documents) and a resource that is not blank, which this returns; else what
/// to say.
fn required<'q>(
    api_version: Option<&str>,
    resource: Option<Cow<'q, str>>,
    missing_version: &'static str,
) -> Result<Cow<'q, str>, &'static str> {
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
    peer: Option<&Peer>,
    route: &'static str,
    resource: &str,
    account: Option<&str>,
    body: impl FnOnce(&ServedToken) -> Response,
) -> Response {
    if let Err(refused) = approved(state, peer).await {
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

/// `GET /imds/<secret>/token`: the Instance Metadata Service's managed-identity protocol as
/// hashicorp/go-azure-sdk's `ManagedIdentityAuthorizer` (Terraform's azurerm, azuread and azapi
/// providers) sends it: `api-version`, `resource`, a `client_id` when `ARM_CLIENT_ID` is set,
/// header `Metadata: true`. It reads the expiry from `expires_in` only, so the answer carries
/// it (as IMDS does, a string of seconds), and `expires_on` too. The default account's token;
/// a user-assigned identity (`client_id`, `object_id`, `msi_res_id`) is refused with what to
/// unset.
async fn imds_token(
    state: &EndpointState,
    peer: Option<&Peer>,
    headers: &HeaderMap,
    uri: &Uri,
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
    let Some([api_version, resource, client_id, object_id, msi_res_id]) = query(
        uri,
        [
            "api-version",
            "resource",
            "client_id",
            "object_id",
            "msi_res_id",
        ],
    ) else {
        return bad("malformed query string");
    };
    let resource = match required(
        api_version.as_deref(),
        resource,
        "api-version is required (2018-02-01)",
    ) {
        Ok(resource) => resource,
        Err(message) => return bad(message),
    };
    if client_id.is_some() || object_id.is_some() || msi_res_id.is_some() {
        return bad(
            "tokentray serves the signed-in user, not a user-assigned identity; unset ARM_CLIENT_ID \
             (Terraform sends it as client_id) to use tokentray's default account",
        );
    }
    let client_id = &state.tokens.config().client_id;
    serve_resource(state, peer, "/imds/token", &resource, None, |served| {
        // The Instance Metadata Service's answer (every number a string, as IMDS sends them).
        let now = state.tokens.now();
        let mut seconds_left = itoa::Buffer::new();
        let mut expiry = itoa::Buffer::new();
        let mut issued = itoa::Buffer::new();
        let left = seconds_left.format((served.expires_on - now).max(0));
        let mut body = JsonObject::new(served.access_token.expose().len() + 320);
        body.str("access_token", served.access_token.expose());
        body.str("client_id", client_id);
        body.str("expires_in", left);
        body.str("expires_on", expiry.format(served.expires_on));
        body.str("ext_expires_in", left);
        body.str("not_before", issued.format(now));
        body.str("resource", &resource);
        body.str("token_type", served.token_type);
        body.into_response()
    })
    .await
}

/// `GET /v1/token`: the native API.
async fn v1_token(state: &EndpointState, peer: Option<&Peer>, uri: &Uri) -> Response {
    let Some([scope, account, tenant]) = query(uri, ["scope", "account", "tenant"]) else {
        return malformed(ErrorCode::InvalidInput, "malformed query string");
    };
    let scopes = parse_scopes(scope.as_deref().unwrap_or_default());
    if scopes.is_empty() {
        return malformed(
            ErrorCode::InvalidInput,
            "scope is required, e.g. scope=https://management.azure.com/.default",
        );
    }
    let request = TokenRequest {
        account: account.as_deref(),
        scopes: &scopes,
        tenant: tenant.as_deref(),
    };
    if let Err(refused) = approved(state, peer).await {
        return refused;
    }
    match state.tokens.get_token(&request).await {
        Ok(served) => {
            audit(state, "/v1/token", &served, peer).await;
            token_body(&served).into_response()
        }
        Err(e) => error_response(&e),
    }
}

/// [`TokenBody`] of `served`, the bytes serde writes, from the served token itself.
fn token_body(served: &ServedToken) -> JsonObject {
    let mut body = JsonObject::new(served.access_token.expose().len() + 512);
    body.str("access_token", served.access_token.expose());
    body.str("token_type", served.token_type);
    body.int("expires_on", served.expires_on);
    body.str("scope", &served.scopes);
    body.str("account", &served.account.username);
    body.str("tenant", &served.tenant);
    body
}

/// `GET /v1/accounts`: the accounts with their health ([`crate::tokens::AccountState`]).
fn v1_accounts(state: &EndpointState) -> Response {
    match state.tokens.account_states() {
        Ok(accounts) => Json(accounts).into_response(),
        Err(e) => error_response(&e),
    }
}

/// The largest body `POST /token` reads (azd sends its scopes and a tenant).
const AZD_BODY_LIMIT: usize = 16 * 1024;

/// What azd sends (`pkg/auth/remote_credential.go`): the scopes of its `GetToken` call and, to
/// override the default, a tenant.
#[derive(Deserialize)]
struct AzdRequest {
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
/// tokentray's, which says what to do. A body over [`AZD_BODY_LIMIT`] is refused (413).
async fn azd_token<B: RequestBody>(
    state: &EndpointState,
    peer: Option<&Peer>,
    body: B,
) -> Response {
    let failed = |code: &str, message: String| {
        Json(json!({"status": "error", "code": code, "message": message})).into_response()
    };
    let body = match Limited::new(body, AZD_BODY_LIMIT).collect().await {
        Ok(body) => body.to_bytes(),
        Err(e) if e.is::<LengthLimitError>() => {
            return refuse(
                StatusCode::PAYLOAD_TOO_LARGE,
                ErrorCode::InvalidInput,
                "the request body is too large",
            );
        }
        Err(e) => {
            return failed(
                "GetTokenError",
                format!("the request body could not be read ({e}); send it again"),
            );
        }
    };
    let request: AzdRequest = match serde_json::from_slice(&body) {
        Ok(request) => request,
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
    if let Err(refused) = approved(state, peer).await {
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
            audit(state, "/token", &served, peer).await;
            let expires_on = chrono::DateTime::from_timestamp(served.expires_on, 0)
                .unwrap_or_default()
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
            // Written straight from the served token: no copy of it is left behind.
            let mut body = JsonObject::new(served.access_token.expose().len() + 96);
            body.str("status", "success");
            body.str("token", served.access_token.expose());
            body.str("expiresOn", &expires_on);
            body.into_response()
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

/// `GET /v1/activity`: the tokens served lately, newest first ([`crate::tokens::Served`]).
fn v1_activity(state: &EndpointState) -> Response {
    Json(state.tokens.activity()).into_response()
}

/// `GET /v1/status`.
fn v1_status(state: &EndpointState) -> Response {
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

#[cfg(test)]
mod tests;
