//! The `/_fake/` control API: JSON in, JSON out, over the same TLS listener. Requests to it are
//! never logged and never faulted.
//!
//! | Method & path | Body | Answer |
//! |---|---|---|
//! | `GET /_fake/log` | | `{"entries":[LogEntry…]}` |
//! | `DELETE /_fake/log` | | 204 |
//! | `POST /_fake/faults` | `FaultRule` | 201 `{"pending":[FaultRule…]}` |
//! | `GET /_fake/faults` | | `{"pending":[FaultRule…]}` |
//! | `DELETE /_fake/faults` | | 204 |
//! | `POST /_fake/revoke` | `{"username":…}` | `{"username","revoked_refresh_tokens","ended_sessions"}`, 404 if unknown |
//! | `GET /_fake/clock` | | `{"now","epoch","offset_secs"}` |
//! | `POST /_fake/clock` | `{"advance_secs":N}` | same as GET, after advancing |
//! | `POST /_fake/policy` | `{"resource":…,"policy":"mfa"\|"block"\|"consent"\|"absent"}` | 201 `{"policies":[{"resource","policy"}…]}`: refreshes for that resource now answer 50076 with a claims challenge (until a sign-in answers it), 53003, 65001 (until an interactive sign-in for it), or 500011 |
//! | `GET /_fake/users` | | `{"users":[{"username","oid","tenant_id","name","home_account_id"}…]}` |

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse as _, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::json;

use super::app::{App, Policy};
use super::faults::FaultRule;

/// The `/_fake` routes (nested under that prefix).
pub fn router() -> Router<Arc<App>> {
    Router::new()
        .route("/log", get(log).delete(clear_log))
        .route(
            "/faults",
            get(faults).post(queue_fault).delete(clear_faults),
        )
        .route("/revoke", post(revoke))
        .route("/clock", get(clock).post(advance_clock))
        .route("/users", get(users))
        .route("/policy", post(set_policy))
}

fn bad_request(message: String) -> Response {
    (StatusCode::BAD_REQUEST, Json(json!({ "error": message }))).into_response()
}

/// The JSON body, or the 400 answer to give instead (boxed: a response is large).
fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, Box<Response>> {
    serde_json::from_slice(body)
        .map_err(|e| Box::new(bad_request(format!("invalid JSON body: {e}"))))
}

async fn log(State(app): State<Arc<App>>) -> Response {
    Json(json!({ "entries": app.log.entries() })).into_response()
}

async fn clear_log(State(app): State<Arc<App>>) -> StatusCode {
    app.log.clear();
    StatusCode::NO_CONTENT
}

async fn faults(State(app): State<Arc<App>>) -> Response {
    Json(json!({ "pending": app.faults.pending() })).into_response()
}

async fn queue_fault(State(app): State<Arc<App>>, body: Bytes) -> Response {
    let rule: FaultRule = match parse(&body) {
        Ok(r) => r,
        Err(response) => return *response,
    };
    app.faults.push(rule);
    (
        StatusCode::CREATED,
        Json(json!({ "pending": app.faults.pending() })),
    )
        .into_response()
}

async fn clear_faults(State(app): State<Arc<App>>) -> StatusCode {
    app.faults.clear();
    StatusCode::NO_CONTENT
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyBody {
    resource: String,
    policy: Policy,
}

async fn set_policy(State(app): State<Arc<App>>, body: Bytes) -> Response {
    let wanted: PolicyBody = match parse(&body) {
        Ok(b) => b,
        Err(response) => return *response,
    };
    app.set_policy(&wanted.resource, wanted.policy);
    let policies: Vec<_> = app
        .policies
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .iter()
        .map(|(resource, policy)| json!({ "resource": resource, "policy": policy }))
        .collect();
    (StatusCode::CREATED, Json(json!({ "policies": policies }))).into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RevokeBody {
    username: String,
}

async fn revoke(State(app): State<Arc<App>>, body: Bytes) -> Response {
    let request: RevokeBody = match parse(&body) {
        Ok(r) => r,
        Err(response) => return *response,
    };
    let Some(user) = app.directory.find(&request.username) else {
        return (
            StatusCode::NOT_FOUND,
            Json(json!({ "error": format!("no user '{}'", request.username) })),
        )
            .into_response();
    };
    let done = app.store().revoke(&user.username, app.clock.now());
    Json(json!({
        "username": user.username,
        "revoked_refresh_tokens": done.revoked_refresh_tokens,
        "ended_sessions": done.ended_sessions,
    }))
    .into_response()
}

fn clock_state(app: &App) -> Response {
    let now = app.clock.now();
    Json(json!({
        "now": now.to_rfc3339(),
        "epoch": now.timestamp(),
        "offset_secs": app.clock.offset_secs(),
    }))
    .into_response()
}

async fn clock(State(app): State<Arc<App>>) -> Response {
    clock_state(&app)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AdvanceBody {
    advance_secs: u64,
}

async fn advance_clock(State(app): State<Arc<App>>, body: Bytes) -> Response {
    match parse::<AdvanceBody>(&body) {
        Ok(b) => {
            app.clock.advance(b.advance_secs);
            clock_state(&app)
        }
        Err(response) => *response,
    }
}

async fn users(State(app): State<Arc<App>>) -> Response {
    let users: Vec<_> = app.directory.users().iter().map(|u| u.info()).collect();
    Json(json!({ "users": users })).into_response()
}
