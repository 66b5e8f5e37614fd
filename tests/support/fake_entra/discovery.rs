//! Metadata endpoints: OpenID configuration, instance discovery and the signing keys.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Uri};
use axum::response::{IntoResponse as _, Response};
use serde_json::{Value, json};

use super::aad_error::AadError;
use super::app::App;
use super::directory::Realm;
use super::params::Params;

/// The issuer of a realm as discovery documents write it (`{tenantid}` for multi-tenant ones).
fn realm_issuer(app: &App, realm: &Realm) -> String {
    match realm {
        Realm::Tenant(id) => app.issuer(id),
        _ => app.issuer("{tenantid}"),
    }
}

/// The URL's tenant segment, or AADSTS90002 (`invalid_tenant`, as the discovery endpoints say it).
fn resolve(app: &App, tenant: &str) -> Result<Realm, AadError> {
    app.directory
        .resolve(tenant)
        .ok_or_else(|| AadError::tenant_not_found("invalid_tenant", tenant))
}

/// `GET /{tenant}/v2.0/.well-known/openid-configuration`
pub async fn openid_configuration(
    State(app): State<Arc<App>>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
) -> Response {
    app.answer(&headers, openid_document(&app, &tenant))
}

fn openid_document(app: &App, tenant: &str) -> Result<Value, AadError> {
    let realm = resolve(app, tenant)?;
    let base = format!("{}/{}", app.base_url, realm.segment());
    let region = if matches!(realm, Realm::Tenant(_)) {
        json!("NA")
    } else {
        json!(null)
    };
    Ok(json!({
        "token_endpoint": format!("{base}/oauth2/v2.0/token"),
        "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
        "jwks_uri": format!("{base}/discovery/v2.0/keys"),
        "response_modes_supported": ["query", "fragment", "form_post"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "response_types_supported": ["code"],
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        "issuer": realm_issuer(app, &realm),
        "request_uri_parameter_supported": false,
        "userinfo_endpoint": "https://graph.microsoft.com/oidc/userinfo",
        "authorization_endpoint": format!("{base}/oauth2/v2.0/authorize"),
        "device_authorization_endpoint": format!("{base}/oauth2/v2.0/devicecode"),
        "http_logout_supported": true,
        "frontchannel_logout_supported": true,
        "end_session_endpoint": format!("{base}/oauth2/v2.0/logout"),
        "claims_supported": [
            "sub", "iss", "cloud_instance_name", "cloud_instance_host_name", "cloud_graph_host_name",
            "msgraph_host", "aud", "exp", "iat", "auth_time", "acr", "nonce", "preferred_username",
            "name", "tid", "ver", "at_hash", "c_hash", "email"
        ],
        "kerberos_endpoint": format!("{base}/kerberos"),
        "tenant_region_scope": region,
        "cloud_instance_name": "microsoftonline.com",
        "cloud_graph_host_name": "graph.windows.net",
        "msgraph_host": "graph.microsoft.com",
        "rbac_url": "https://pas.windows.net",
    }))
}

/// `GET /common/discovery/instance?authorization_endpoint=…&api-version=…`: known for this
/// fake's own host (any tenant), `invalid_instance` for any other.
pub async fn instance(State(app): State<Arc<App>>, uri: Uri, headers: HeaderMap) -> Response {
    let trace = app.trace(&headers);
    let params = Params::from_query(&uri);
    let invalid = || {
        AadError::new("invalid_instance", 50049, "Unknown or invalid instance.")
            .respond(&trace, &app.base_url)
    };
    let Some(endpoint) = params.get("authorization_endpoint") else {
        return invalid();
    };
    let Ok(url) = url::Url::parse(endpoint) else {
        return invalid();
    };
    let netloc = app.base_url.trim_start_matches("https://");
    let same_host = url.scheme() == "https"
        && url.host_str() == Some(app.host())
        && url
            .port_or_known_default()
            .map(|p| p.to_string())
            .as_deref()
            == netloc.rsplit(':').next();
    if !same_host {
        return invalid();
    }
    let tenant = url
        .path_segments()
        .and_then(|mut s| s.next())
        .filter(|t| !t.is_empty())
        .unwrap_or("common");
    let body = json!({
        "tenant_discovery_endpoint":
            format!("{}/{tenant}/v2.0/.well-known/openid-configuration", app.base_url),
        "api-version": params.get("api-version").unwrap_or("1.1"),
        "metadata": [{
            "preferred_network": app.host(),
            "preferred_cache": app.host(),
            "aliases": [app.host(), netloc],
        }],
    });
    let mut response = Json(body).into_response();
    trace.stamp(response.headers_mut());
    response
}

/// `GET /{tenant}/discovery/v2.0/keys`
pub async fn keys(
    State(app): State<Arc<App>>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
) -> Response {
    let keys = resolve(&app, &tenant)
        .map(|realm| json!({ "keys": [app.signer.jwk(&realm_issuer(&app, &realm))] }));
    app.answer(&headers, keys)
}
