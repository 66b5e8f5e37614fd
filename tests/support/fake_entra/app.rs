//! The shared state every handler sees, and the router that maps Entra's paths to handlers.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::from_fn_with_state;
use axum::response::{IntoResponse as _, Response};
use axum::routing::{MethodRouter, get, post};
use serde_json::Value;

use super::aad_error::{AadError, Trace};
use super::clock::Clock;
use super::directory::Directory;
use super::faults::{CHALLENGE_POLICY, FaultQueue};
use super::jwt::TokenSigner;
use super::params::Params;
use super::request_log::RequestLog;
use super::store::Store;
use super::{FakeConfig, arm, authorize, control, device, discovery, observe, pages, token};

/// State shared by all requests of one fake.
pub struct App {
    /// `https://127.0.0.1:PORT`, no trailing slash.
    pub base_url: String,
    /// Lifetimes, FOCI clients, …
    pub config: FakeConfig,
    /// Users and tenants.
    pub directory: Directory,
    /// Signs access and id tokens.
    pub signer: Arc<TokenSigner>,
    /// Real time plus the test-controlled offset.
    pub clock: Clock,
    /// Codes, tokens, sessions. A std mutex: never held across an await.
    store: Mutex<Store>,
    /// Scripted failures.
    pub faults: FaultQueue,
    /// Requests seen.
    pub log: RequestLog,
    /// The Conditional Access and consent rules of resources (token audiences), in the order
    /// set; the last one for a resource wins.
    pub policies: Mutex<Vec<(String, Policy)>>,
}

/// What a resource's rule makes of a refresh for it, as Entra answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Policy {
    /// Multi-factor authentication: the claims challenge [`super::faults::DEFAULT_CLAIMS`]
    /// must be answered; a refresh token from a sign-in that did not send it as `claims` gets
    /// AADSTS50076 (`invalid_grant`, `basic_action`, the challenge).
    Mfa,
    /// Blocked by Conditional Access: every refresh gets AADSTS53003 (`invalid_grant`,
    /// `message_only`); signing in again does not help.
    Block,
    /// Not consented: a refresh gets AADSTS65001 (`invalid_grant`, `consent_required`) until an
    /// interactive sign-in for the resource (where the user consents) lifts the rule.
    Consent,
    /// The resource does not exist in the tenant (e.g. another cloud's): AADSTS500011
    /// (`invalid_resource`).
    Absent,
}

/// Whether a sign-in's `claims` parameter answers [`super::faults::DEFAULT_CLAIMS`], the challenge a resource
/// of [`App::claims_required`] sends: it names the challenge's policy id.
pub fn answers_claims(claims: Option<&str>) -> bool {
    claims.is_some_and(|c| c.contains(CHALLENGE_POLICY))
}

impl App {
    /// State for a fake at `base_url`.
    pub fn new(
        base_url: String,
        config: FakeConfig,
        directory: Directory,
        signer: Arc<TokenSigner>,
    ) -> Self {
        Self {
            base_url,
            config,
            directory,
            signer,
            clock: Clock::default(),
            store: Mutex::new(Store::default()),
            faults: FaultQueue::default(),
            log: RequestLog::default(),
            policies: Mutex::new(Vec::new()),
        }
    }

    /// The rule for tokens of `audience`, if any.
    pub fn policy(&self, audience: &str) -> Option<Policy> {
        let audience = audience.trim_end_matches('/');
        self.policies
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .rev()
            .find(|(r, _)| r.trim_end_matches('/').eq_ignore_ascii_case(audience))
            .map(|(_, p)| *p)
    }

    /// Adds a rule for `resource`.
    pub fn set_policy(&self, resource: &str, policy: Policy) {
        self.policies
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push((resource.to_string(), policy));
    }

    /// An interactive sign-in for `audience` was granted: the user consented, so a
    /// [`Policy::Consent`] rule for it is lifted.
    pub fn consented(&self, audience: &str) {
        let audience = audience.trim_end_matches('/');
        self.policies
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|(r, p)| {
                *p != Policy::Consent || !r.trim_end_matches('/').eq_ignore_ascii_case(audience)
            });
    }

    /// The grant store (a poisoned lock is recovered: the data stays consistent per operation).
    pub fn store(&self) -> MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A JSON answer, or Entra's error shape; either way stamped with the request's trace ids.
    pub fn answer(&self, headers: &HeaderMap, result: Result<Value, AadError>) -> Response {
        let trace = self.trace(headers);
        match result {
            Ok(value) => {
                let mut response = axum::Json(value).into_response();
                trace.stamp(response.headers_mut());
                response
            }
            Err(e) => e.respond(&trace, &self.base_url),
        }
    }

    /// Trace ids for a request, at the fake clock's now.
    pub fn trace(&self, headers: &HeaderMap) -> Trace {
        Trace::new(headers, self.clock.now())
    }

    /// The v2 issuer for a tenant id (or Entra's `{tenantid}` placeholder).
    pub fn issuer(&self, tenant: &str) -> String {
        format!("{}/{tenant}/v2.0", self.base_url)
    }

    /// Whether `client_id` is a family-of-client-ids (FOCI) application.
    pub fn is_foci(&self, client_id: &str) -> bool {
        self.config
            .foci_clients
            .iter()
            .any(|c| c.eq_ignore_ascii_case(client_id))
    }

    /// The host part of the base URL (what MSAL calls the environment).
    pub fn host(&self) -> &str {
        self.base_url
            .trim_start_matches("https://")
            .split(':')
            .next()
            .unwrap_or("127.0.0.1")
    }
}

/// Every route, behind the logging/fault middleware.
pub fn router(app: Arc<App>) -> Router {
    Router::new()
        .route(
            "/{tenant}/v2.0/.well-known/openid-configuration",
            get(discovery::openid_configuration),
        )
        .route("/common/discovery/instance", get(discovery::instance))
        .route("/{tenant}/discovery/v2.0/keys", get(discovery::keys))
        .route(
            "/{tenant}/oauth2/v2.0/authorize",
            get(authorize::start).post(authorize::submit),
        )
        .route("/{tenant}/oauth2/v2.0/logout", get(authorize::logout))
        .route(
            "/{tenant}/oauth2/v2.0/token",
            form_post(token::grant).get(token::wrong_method),
        )
        .route(
            "/{tenant}/oauth2/v2.0/devicecode",
            form_post(device::start).get(token::wrong_method),
        )
        .route("/devicelogin", get(device::page).post(device::submit))
        .route("/subscriptions", get(arm::list))
        .route("/tenants", get(arm::tenants))
        .route("/error", get(pages::error_lookup))
        .nest("/_fake", control::router())
        .fallback(not_found)
        .layer(from_fn_with_state(app.clone(), observe::observe))
        .with_state(app)
}

/// A form-posting endpoint under `/{tenant}`: `endpoint` gets the tenant segment, the headers
/// and the decoded body, and its result is answered as JSON or as Entra's error.
fn form_post(
    endpoint: fn(&App, &str, &HeaderMap, &Params) -> Result<Value, AadError>,
) -> MethodRouter<Arc<App>> {
    post(
        move |State(app): State<Arc<App>>,
              Path(tenant): Path<String>,
              headers: HeaderMap,
              body: Bytes| async move {
            app.answer(
                &headers,
                endpoint(&app, &tenant, &headers, &Params::from_urlencoded(&body)),
            )
        },
    )
}

async fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        pages::html(pages::message(
            "Not found",
            "fake-entra has no page at this address.",
        )),
    )
        .into_response()
}
