//! A sliver of Azure Resource Manager: `GET /tenants` and `GET /subscriptions`, what `az login`
//! and the `az` shim ask for, answered for the bearer of an ARM access token this fake issued.
//!
//! Each tenant has three subscriptions, derived from its domain (so they are the same across
//! runs): `<label> Production` and `<label> Development`, enabled, and `<label> Retired`,
//! disabled (`label` is the domain's first label). The answer has ARM's shape (api-version
//! 2022-12-01): `{"value": [{"id", "subscriptionId", "tenantId", "displayName", "state",
//! "managedByTenants", ...}], "count"}`. A missing, forged, expired or non-ARM token gets ARM's
//! 401 `InvalidAuthenticationToken`; a missing `api-version` its 400.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse as _, Response};
use serde_json::{Value, json};

use super::app::App;
use super::directory::User;
use super::ids::derived_guid;

/// The audiences ARM accepts (azure-cli asks for the first, the SDKs for the second).
const ARM_AUDIENCES: [&str; 2] = [
    "https://management.core.windows.net/",
    "https://management.azure.com/",
];

/// A tenant's subscriptions: (id, name, state).
pub fn subscriptions_of(user: &User) -> Vec<(String, String, &'static str)> {
    let domain = user.domain();
    let label = domain.split('.').next().unwrap_or("tenant").to_string();
    [
        ("Production", "Enabled"),
        ("Development", "Enabled"),
        ("Retired", "Disabled"),
    ]
    .into_iter()
    .map(|(kind, state)| {
        (
            derived_guid("subscription", &format!("{}/{kind}", user.tenant_id)),
            format!("{label} {kind}"),
            state,
        )
    })
    .collect()
}

/// `GET /subscriptions?api-version=...`.
pub async fn list(
    State(app): State<Arc<App>>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let user = match authorized(&app, &query, &headers) {
        Ok(user) => user,
        Err((status, code, message)) => return arm_error(status, code, message),
    };
    let value: Vec<Value> = subscriptions_of(user)
        .into_iter()
        .map(|(id, name, state)| {
            json!({
                "id": format!("/subscriptions/{id}"),
                "authorizationSource": "RoleBased",
                "managedByTenants": [],
                "subscriptionId": id,
                "tenantId": user.tenant_id,
                "displayName": name,
                "state": state,
                "subscriptionPolicies": {
                    "locationPlacementId": "Public_2014-09-01",
                    "quotaId": "PayAsYouGo_2014-09-01",
                    "spendingLimit": "Off",
                },
            })
        })
        .collect();
    let count = value.len();
    Json(json!({ "value": value, "count": { "type": "Total", "value": count } })).into_response()
}

/// `GET /tenants?api-version=...`: the bearer's home tenant, as `az login` reads it before
/// listing each tenant's subscriptions.
pub async fn tenants(
    State(app): State<Arc<App>>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let user = match authorized(&app, &query, &headers) {
        Ok(user) => user,
        Err((status, code, message)) => return arm_error(status, code, message),
    };
    let domain = user.domain();
    let label = domain.split('.').next().unwrap_or("tenant");
    let mut name = label.to_string();
    if let Some(first) = name.get_mut(..1) {
        first.make_ascii_uppercase();
    }
    Json(json!({ "value": [{
        "id": format!("/tenants/{}", user.tenant_id),
        "tenantId": user.tenant_id,
        "tenantCategory": "Home",
        "displayName": name,
        "defaultDomain": domain,
        "domains": [domain],
        "tenantType": "AAD",
    }]}))
    .into_response()
}

/// The user of a request with an `api-version` and a valid ARM token, or why not.
fn authorized<'a>(
    app: &'a App,
    query: &HashMap<String, String>,
    headers: &HeaderMap,
) -> Result<&'a User, Refusal> {
    if !query.contains_key("api-version") {
        return Err((
            StatusCode::BAD_REQUEST,
            "MissingApiVersionParameter",
            "The api-version query parameter (?api-version=) is required for all requests.",
        ));
    }
    bearer_user(app, headers).ok_or((
        StatusCode::UNAUTHORIZED,
        "InvalidAuthenticationToken",
        "The access token is invalid.",
    ))
}

/// ARM's refusal: status, error code, message.
type Refusal = (StatusCode, &'static str, &'static str);

/// The user a valid ARM access token from this fake was issued to.
fn bearer_user<'a>(app: &'a App, headers: &HeaderMap) -> Option<&'a User> {
    let token = headers
        .get("authorization")?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")?;
    let claims = app.signer.verify(token)?;
    let audience = claims.get("aud")?.as_str()?;
    let exp = claims.get("exp")?.as_i64()?;
    if !ARM_AUDIENCES.contains(&audience) || exp <= app.clock.now().timestamp() {
        return None;
    }
    let oid = claims.get("oid")?.as_str()?;
    app.directory.users().iter().find(|u| u.oid == oid)
}

fn arm_error(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        Json(json!({ "error": { "code": code, "message": message } })),
    )
        .into_response()
}
