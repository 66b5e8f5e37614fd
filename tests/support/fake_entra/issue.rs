//! Minting a token response: access token, id_token, refresh token, `client_info`, `foci`.

use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

use super::aad_error::AadError;
use super::app::App;
use super::clock::after;
use super::directory::User;
use super::ids::{digest, random_guid, random_token};
use super::scopes::ScopeRequest;
use super::store::{RefreshGrant, RefreshState};

/// id_tokens live an hour at Entra, whatever the access-token lifetime.
const ID_TOKEN_LIFETIME: i64 = 3600;

/// What a successful grant issues tokens for.
pub struct Issue<'a> {
    /// The application (the id_token's `aud`).
    pub client_id: &'a str,
    /// The signed-in user.
    pub user: &'a User,
    /// The scopes granted.
    pub scopes: &'a ScopeRequest,
    /// Echoed into the id_token (auth-code flow).
    pub nonce: Option<&'a str>,
    /// Put into the id_token as `auth_time` (when `max_age` was asked for).
    pub auth_time: Option<DateTime<Utc>>,
    /// `client_info=1` was sent.
    pub client_info: bool,
    /// The sign-in behind it answered the claims challenge ([`super::app::REQUIRED_CLAIMS`]).
    pub claims_met: bool,
}

fn secs(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX / 2)
}

/// The JSON body of a successful token response; registers the new refresh token, if any.
pub fn token_response(app: &App, issue: &Issue<'_>) -> Result<Value, AadError> {
    let now = app.clock.now();
    let iat = now.timestamp();
    let lifetime = app.config.access_token_lifetime;
    let user = issue.user;
    let granted = issue.scopes.grant();
    let issuer = app.issuer(&user.tenant_id);
    let sign = |claims: &Value| {
        app.signer
            .sign(claims)
            .map_err(|_| AadError::temporarily_unavailable(StatusCode::INTERNAL_SERVER_ERROR))
    };

    let access_claims = json!({
        "aud": granted.audience,
        "iss": issuer,
        "iat": iat,
        "nbf": iat,
        "exp": iat.saturating_add(secs(lifetime)),
        "amr": if issue.claims_met { json!(["pwd", "mfa"]) } else { json!(["pwd"]) },
        "appid": issue.client_id,
        "azp": issue.client_id,
        "azpacr": "0",
        "idtyp": "user",
        "name": user.name,
        "oid": user.oid,
        "preferred_username": user.username,
        "scp": granted.scp,
        "sub": user.subject(issue.client_id),
        "tid": user.tenant_id,
        "upn": user.username,
        "uti": random_token("", 16)?,
        "ver": "2.0",
    });

    let mut body = Map::new();
    body.insert("token_type".into(), json!("Bearer"));
    body.insert("scope".into(), json!(granted.scope.join(" ")));
    body.insert("expires_in".into(), json!(lifetime));
    body.insert("ext_expires_in".into(), json!(lifetime));
    if app.config.refresh_in {
        body.insert("refresh_in".into(), json!(lifetime / 2));
    }
    body.insert("access_token".into(), json!(sign(&access_claims)?));

    if granted.refresh_token {
        let refresh_token = random_token("1.AXkA", 96)?;
        let family = app.is_foci(issue.client_id);
        app.store().refresh_tokens.insert(
            digest(&refresh_token),
            RefreshGrant {
                username: user.username.clone(),
                client_id: issue.client_id.to_string(),
                family,
                scopes: issue.scopes.clone(),
                issued: now,
                expires: after(now, app.config.refresh_token_lifetime),
                state: RefreshState::Active,
                claims_met: issue.claims_met,
            },
        );
        body.insert("refresh_token".into(), json!(refresh_token));
    }

    if granted.id_token {
        let mut claims = Map::new();
        for (k, v) in [
            ("aud", json!(issue.client_id)),
            ("iss", json!(issuer)),
            ("iat", json!(iat)),
            ("nbf", json!(iat)),
            ("exp", json!(iat.saturating_add(ID_TOKEN_LIFETIME))),
            ("name", json!(user.name)),
            ("oid", json!(user.oid)),
            ("preferred_username", json!(user.username)),
            ("sub", json!(user.subject(issue.client_id))),
            ("tid", json!(user.tenant_id)),
            ("uti", json!(random_token("", 16)?)),
            ("ver", json!("2.0")),
        ] {
            claims.insert(k.into(), v);
        }
        if let Some(nonce) = issue.nonce {
            claims.insert("nonce".into(), json!(nonce));
        }
        if let Some(t) = issue.auth_time {
            claims.insert("auth_time".into(), json!(t.timestamp()));
        }
        if granted.email {
            claims.insert("email".into(), json!(user.username));
        }
        claims.insert("aio".into(), json!(random_guid()?));
        body.insert("id_token".into(), json!(sign(&Value::Object(claims))?));
    }

    if issue.client_info {
        body.insert("client_info".into(), json!(user.client_info()));
    }
    if app.is_foci(issue.client_id) {
        body.insert("foci".into(), json!("1"));
    }
    Ok(Value::Object(body))
}
