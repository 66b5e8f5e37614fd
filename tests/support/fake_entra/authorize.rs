//! `/{tenant}/oauth2/v2.0/authorize` (sign-in page, sign-in POST, code delivery) and `/logout`.
//!
//! A request is validated in Entra's order: what makes the redirect untrustworthy (tenant,
//! client, redirect URI) is answered with an error page; anything after that is answered by
//! redirecting an `error` to the client, with its `state`.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse as _, Response};
use url::{Host, Url};

use super::aad_error::{AadError, Trace};
use super::app::App;
use super::clock::after;
use super::directory::{Realm, SignInRefusal, User};
use super::ids::{digest, random_guid, random_token};
use super::pages::{self, SignInPage};
use super::params::Params;
use super::scopes::ScopeRequest;
use super::store::{AuthCode, AuthRequest, ResponseMode, Session};
use super::token::check_client;

/// The browser-session cookie.
const SESSION_COOKIE: &str = "fake_entra_session";
/// A sign-in page left open longer than this must be restarted.
const FLOW_LIFETIME_SECS: u64 = 3600;

/// Where and how the authorization response is delivered.
struct Target {
    redirect_uri: String,
    mode: ResponseMode,
    state: Option<String>,
}

/// Why an authorize request is not shown a sign-in page.
enum Refusal {
    /// The redirect cannot be trusted: an error page.
    Page(AadError),
    /// An error redirected to the client.
    Redirect(Target, AadError),
}

/// Whether Entra would accept this redirect URI for a public client on loopback:
/// `http://localhost` or `http://127.0.0.1` (or `[::1]`), any port and path, no fragment.
pub fn is_loopback_redirect(uri: &str) -> bool {
    let Ok(url) = Url::parse(uri) else {
        return false;
    };
    let loopback = match url.host() {
        Some(Host::Domain(d)) => d == "localhost",
        Some(Host::Ipv4(ip)) => ip.is_loopback(),
        Some(Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    };
    url.scheme() == "http"
        && loopback
        && url.fragment().is_none()
        && url.username().is_empty()
        && url.password().is_none()
}

/// The Azure CLI's application id: its registration lists `http://localhost` as its only
/// redirect URI (any port, as Entra allows for loopback), so `127.0.0.1` is refused for it.
const AZURE_CLI: &str = "04b07795-8ddb-461a-bbee-02f9e1bf7b46";

/// Whether `client_id`'s app registration has a redirect URI that `uri` (a loopback URI)
/// matches: the Azure CLI's only `http://localhost`; any other client any loopback host.
fn registered_redirect(client_id: &str, uri: &str) -> bool {
    !client_id.eq_ignore_ascii_case(AZURE_CLI)
        || Url::parse(uri).is_ok_and(|u| u.host_str() == Some("localhost"))
}

fn validate(
    app: &App,
    tenant: &str,
    params: &Params,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<(AuthRequest, Option<String>), Refusal> {
    let realm = app
        .directory
        .resolve(tenant)
        .ok_or_else(|| Refusal::Page(AadError::tenant_not_found("invalid_request", tenant)))?;
    let client_id = check_client(&realm, params.get("client_id")).map_err(Refusal::Page)?;
    let redirect_uri = params
        .get("redirect_uri")
        .ok_or_else(|| Refusal::Page(AadError::missing_parameter("redirect_uri")))?;
    if !is_loopback_redirect(redirect_uri) || !registered_redirect(client_id, redirect_uri) {
        return Err(Refusal::Page(AadError::new(
            "invalid_request",
            50011,
            format!(
                "The redirect URI '{redirect_uri}' specified in the request does not match the \
                 redirect URIs configured for the application '{client_id}'. Make sure the \
                 redirect URI sent in the request matches one added to your application."
            ),
        )));
    }
    let mode = match params.get("response_mode") {
        None | Some("query") => ResponseMode::Query,
        Some("fragment") => ResponseMode::Fragment,
        Some("form_post") => ResponseMode::FormPost,
        Some(other) => {
            return Err(Refusal::Page(AadError::malformed(&format!(
                "The response_mode '{other}' is not supported."
            ))));
        }
    };
    let target = || Target {
        redirect_uri: redirect_uri.to_string(),
        mode,
        state: params.get("state").map(str::to_string),
    };
    let refuse = |e: AadError| Refusal::Redirect(target(), e);

    match params.get("response_type") {
        None => return Err(refuse(AadError::missing_parameter("response_type"))),
        Some("code") => {}
        Some(other) => {
            return Err(refuse(AadError::new(
                "unsupported_response_type",
                700054,
                format!("response_type '{other}' is not enabled for the application."),
            )));
        }
    }
    let scopes = params
        .get("scope")
        .ok_or_else(|| refuse(AadError::missing_parameter("scope")))
        .and_then(|s| ScopeRequest::parse(s).map_err(refuse))?;
    let code_challenge = params.get("code_challenge").ok_or_else(|| {
        refuse(AadError::new(
            "invalid_request",
            9002325,
            "Proof Key for Code Exchange is required for cross-origin authorization code \
             redemption.",
        ))
    })?;
    if params.get("code_challenge_method") != Some("S256") {
        return Err(refuse(AadError::malformed(
            "The code_challenge_method must be 'S256'.",
        )));
    }
    let b64url_char = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
    if code_challenge.len() != 43 || !code_challenge.chars().all(b64url_char) {
        return Err(refuse(AadError::malformed(
            "The code_challenge must be the base64url SHA-256 of the code_verifier (43 characters).",
        )));
    }
    let prompt = params.get("prompt").map(str::to_string);
    if let Some(p) = &prompt
        && !["none", "login", "consent", "select_account", "create"].contains(&p.as_str())
    {
        return Err(refuse(AadError::malformed(&format!(
            "The prompt value '{p}' is not valid."
        ))));
    }
    if let Some(max_age) = params.get("max_age")
        && max_age.parse::<u64>().is_err()
    {
        return Err(refuse(AadError::malformed(
            "max_age must be a number of seconds.",
        )));
    }
    let request = AuthRequest {
        realm,
        client_id: client_id.to_string(),
        redirect_uri: redirect_uri.to_string(),
        response_mode: mode,
        state: params.get("state").map(str::to_string),
        nonce: params.get("nonce").map(str::to_string),
        scopes,
        code_challenge: code_challenge.to_string(),
        login_hint: params.get("login_hint").map(str::to_string),
        max_age: params.get("max_age").is_some(),
        client_info: params.get("client_info") == Some("1"),
        claims: params.get("claims").map(str::to_string),
        created: now,
    };
    Ok((request, prompt))
}

/// `GET /{tenant}/oauth2/v2.0/authorize`: validates, then signs in silently from the session
/// cookie, or shows the sign-in page, or redirects an error.
pub async fn start(
    State(app): State<Arc<App>>,
    Path(tenant): Path<String>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let trace = app.trace(&headers);
    let now = trace.at;
    let (request, prompt) = match validate(&app, &tenant, &Params::from_query(&uri), now) {
        Ok(v) => v,
        Err(refusal) => return answer_refusal(&app, &trace, refusal),
    };
    let session = session_of(&app, &headers);
    let hint_matches = |s: &Session| {
        request
            .login_hint
            .as_deref()
            .is_none_or(|h| h.eq_ignore_ascii_case(&s.username))
    };
    let silent_user = session.as_ref().filter(|s| hint_matches(s)).and_then(|s| {
        app.directory
            .find(&s.username)
            .filter(|u| request.realm.admits(u))
            .map(|u| (u.clone(), s.clone()))
    });
    match (prompt.as_deref(), silent_user) {
        (None | Some("none"), Some((user, session))) => {
            match issue_code(
                &app,
                request,
                &user,
                session.auth_time,
                &session.session_state,
            ) {
                Ok(r) => r,
                Err(e) => error_page(&app, &trace, &e),
            }
        }
        (Some("none"), None) => {
            let error = if session.is_some() {
                AadError::new(
                    "interaction_required",
                    16000,
                    "Either multiple user identities are available for the current request or \
                     selected account is not the one requested. The user must pick an account.",
                )
            } else {
                AadError::new(
                    "login_required",
                    50058,
                    "A silent sign-in request was sent but no user is signed in.",
                )
            };
            redirect_error(&app, &trace, &target_of(&request), &error)
        }
        _ => show_sign_in(&app, &trace, uri.path(), request),
    }
}

fn show_sign_in(app: &App, trace: &Trace, path: &str, request: AuthRequest) -> Response {
    let flow = match random_token("", 24) {
        Ok(f) => f,
        Err(e) => return error_page(app, trace, &e.into()),
    };
    let page = SignInPage {
        action: path,
        flow: &flow,
        client_id: &request.client_id,
        username: request.login_hint.as_deref().unwrap_or(""),
        error: None,
    }
    .render();
    app.store().flows.insert(flow, request);
    pages::html(page)
}

/// `POST /{tenant}/oauth2/v2.0/authorize`: the sign-in form (`flow`, `username`, `password`,
/// `action` = `signin` | `cancel`).
pub async fn submit(
    State(app): State<Arc<App>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let trace = app.trace(&headers);
    let form = Params::from_urlencoded(&body);
    let flow_id = form.get("flow").unwrap_or("").to_string();
    let request = {
        let store = app.store();
        store.flows.get(&flow_id).cloned()
    };
    let Some(request) = request.filter(|r| after(r.created, FLOW_LIFETIME_SECS) > trace.at) else {
        return error_page(
            &app,
            &trace,
            &AadError::new(
                "invalid_request",
                90014,
                "The sign-in session is unknown or has expired. Start the sign-in again from \
                 the application.",
            ),
        );
    };
    match form.get("action").unwrap_or("signin") {
        "cancel" => {
            app.store().flows.remove(&flow_id);
            let error = AadError::new(
                "access_denied",
                65004,
                "User declined to consent to access the app.",
            );
            redirect_error(&app, &trace, &target_of(&request), &error)
        }
        "signin" => {
            let username = form.get("username").unwrap_or("");
            let password = form.get("password").unwrap_or("");
            match app
                .directory
                .authenticate(&request.realm, username, password)
            {
                Ok(user) => {
                    app.store().flows.remove(&flow_id);
                    sign_in(&app, &trace, request, user)
                }
                Err(refusal) => {
                    let page = SignInPage {
                        action: uri.path(),
                        flow: &flow_id,
                        client_id: &request.client_id,
                        username,
                        error: Some(&refusal_text(refusal, username, &request.realm)),
                    };
                    pages::html(page.render())
                }
            }
        }
        other => error_page(
            &app,
            &trace,
            &AadError::malformed(&format!("Unknown action '{other}'.")),
        ),
    }
}

/// The text a sign-in page shows for a refused username/password pair.
pub fn refusal_text(refusal: SignInRefusal, username: &str, realm: &Realm) -> String {
    match refusal {
        SignInRefusal::UnknownUser => format!(
            "AADSTS50034: The user account {username} does not exist in the directory. This \
             username may be incorrect."
        ),
        SignInRefusal::BadPassword => "AADSTS50126: Error validating credentials due to invalid \
                                       username or password. Your account or password is incorrect."
            .to_string(),
        SignInRefusal::WrongTenant => format!(
            "AADSTS50020: User account '{username}' from identity provider does not exist in \
             tenant '{}' and cannot access the application in that tenant.",
            realm.segment()
        ),
    }
}

/// Starts a browser session for `user`, then issues and delivers a code.
fn sign_in(app: &App, trace: &Trace, request: AuthRequest, user: &User) -> Response {
    let started = (|| -> Result<(String, Session), AadError> {
        let cookie = random_token("", 32)?;
        let session = Session {
            username: user.username.clone(),
            session_state: random_guid()?,
            auth_time: trace.at,
        };
        Ok((cookie, session))
    })();
    let (cookie, session) = match started {
        Ok(s) => s,
        Err(e) => return error_page(app, trace, &e),
    };
    app.store()
        .sessions
        .insert(digest(&cookie), session.clone());
    let mut response = match issue_code(
        app,
        request,
        user,
        session.auth_time,
        &session.session_state,
    ) {
        Ok(r) => r,
        Err(e) => return error_page(app, trace, &e),
    };
    let set_cookie = format!("{SESSION_COOKIE}={cookie}; Path=/; Secure; HttpOnly; SameSite=None");
    if let Ok(v) = HeaderValue::from_str(&set_cookie) {
        response.headers_mut().append(header::SET_COOKIE, v);
    }
    response
}

fn issue_code(
    app: &App,
    request: AuthRequest,
    user: &User,
    auth_time: chrono::DateTime<chrono::Utc>,
    session_state: &str,
) -> Result<Response, AadError> {
    let code = random_token("1.AXkA", 96)?;
    let target = target_of(&request);
    let mut fields = vec![("code", code.clone())];
    if request.client_info {
        fields.push(("client_info", user.client_info()));
    }
    fields.push(("session_state", session_state.to_string()));
    let expires = after(app.clock.now(), app.config.code_lifetime);
    app.store().codes.insert(
        digest(&code),
        AuthCode {
            request,
            username: user.username.clone(),
            auth_time,
            expires,
            redeemed: false,
        },
    );
    Ok(deliver(&target, fields))
}

fn target_of(request: &AuthRequest) -> Target {
    Target {
        redirect_uri: request.redirect_uri.clone(),
        mode: request.response_mode,
        state: request.state.clone(),
    }
}

/// Sends `fields` (plus `state`) to the client the way its `response_mode` asks.
fn deliver(target: &Target, mut fields: Vec<(&str, String)>) -> Response {
    if let Some(state) = &target.state {
        fields.push(("state", state.clone()));
    }
    let pairs: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    if target.mode == ResponseMode::FormPost {
        return pages::html(pages::form_post(&target.redirect_uri, &pairs));
    }
    let Ok(mut url) = Url::parse(&target.redirect_uri) else {
        return (StatusCode::BAD_REQUEST, "invalid redirect_uri").into_response();
    };
    if pairs.is_empty() {
        // Nothing to add (logout without state).
    } else if target.mode == ResponseMode::Fragment {
        let encoded = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(&pairs)
            .finish();
        url.set_fragment(Some(&encoded));
    } else {
        url.query_pairs_mut().extend_pairs(&pairs);
    }
    match HeaderValue::from_str(url.as_str()) {
        Ok(location) => {
            let mut response = StatusCode::FOUND.into_response();
            response.headers_mut().insert(header::LOCATION, location);
            response.headers_mut().insert(
                header::CACHE_CONTROL,
                HeaderValue::from_static("no-store, no-cache"),
            );
            response
        }
        Err(_) => (StatusCode::BAD_REQUEST, "invalid redirect_uri").into_response(),
    }
}

fn redirect_error(app: &App, trace: &Trace, target: &Target, error: &AadError) -> Response {
    let body = error.body(trace, &app.base_url);
    let text = |k: &str| {
        body.get(k)
            .and_then(|v| v.as_str())
            .unwrap_or("")
            .to_string()
    };
    deliver(
        target,
        vec![
            ("error", error.error.clone()),
            ("error_description", text("error_description")),
            ("error_uri", text("error_uri")),
        ],
    )
}

fn answer_refusal(app: &App, trace: &Trace, refusal: Refusal) -> Response {
    match refusal {
        Refusal::Page(e) => error_page(app, trace, &e),
        Refusal::Redirect(target, e) => redirect_error(app, trace, &target, &e),
    }
}

/// An error Entra shows in the browser instead of redirecting (status 400).
fn error_page(app: &App, trace: &Trace, error: &AadError) -> Response {
    let body = error.body(trace, &app.base_url);
    let description = body
        .get("error_description")
        .and_then(|v| v.as_str())
        .unwrap_or("");
    let mut response = pages::html(pages::message("Sign in failed", description));
    *response.status_mut() = StatusCode::BAD_REQUEST;
    trace.stamp(response.headers_mut());
    response
}

fn session_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value.to_string())
}

fn session_of(app: &App, headers: &HeaderMap) -> Option<Session> {
    let cookie = session_cookie(headers)?;
    app.store().sessions.get(&digest(&cookie)).cloned()
}

/// `GET /{tenant}/oauth2/v2.0/logout`: ends the browser session, then redirects to a loopback
/// `post_logout_redirect_uri` (with `state`) or shows a signed-out page.
pub async fn logout(State(app): State<Arc<App>>, uri: Uri, headers: HeaderMap) -> Response {
    if let Some(cookie) = session_cookie(&headers) {
        app.store().sessions.remove(&digest(&cookie));
    }
    let params = Params::from_query(&uri);
    let mut response = match params
        .get("post_logout_redirect_uri")
        .filter(|u| is_loopback_redirect(u))
    {
        Some(target) => deliver(
            &Target {
                redirect_uri: target.to_string(),
                mode: ResponseMode::Query,
                state: params.get("state").map(str::to_string),
            },
            Vec::new(),
        ),
        None => pages::html(pages::message(
            "You signed out of your account",
            "It's a good idea to close all browser windows.",
        )),
    };
    let expired = format!("{SESSION_COOKIE}=; Path=/; Secure; HttpOnly; SameSite=None; Max-Age=0");
    if let Ok(v) = HeaderValue::from_str(&expired) {
        response.headers_mut().append(header::SET_COOKIE, v);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::is_loopback_redirect;

    #[test]
    fn only_loopback_http_redirects_are_accepted() {
        assert!(is_loopback_redirect("http://localhost:8400"));
        assert!(is_loopback_redirect("http://127.0.0.1:51234/callback"));
        assert!(is_loopback_redirect("http://localhost"));
        assert!(!is_loopback_redirect("https://localhost:8400"));
        assert!(!is_loopback_redirect("http://example.com/"));
        assert!(!is_loopback_redirect("http://localhost:8400/#x"));
        assert!(!is_loopback_redirect("http://user@localhost/"));
    }
}
