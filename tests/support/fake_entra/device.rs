//! The device-code flow: `POST /{tenant}/oauth2/v2.0/devicecode`, the `/devicelogin` page where
//! the user approves or declines, and the device-code grant's state machine
//! (pending → slow_down → approved/declined/expired).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Uri};
use axum::response::Response;
use chrono::TimeDelta;
use serde_json::{Value, json};

use super::aad_error::AadError;
use super::app::{App, answers_claims};
use super::authorize::refusal_text;
use super::clock::after;
use super::directory::Realm;
use super::ids::{digest, random_bytes, random_token};
use super::issue::{Issue, token_response};
use super::pages::{self, DeviceLoginPage};
use super::params::Params;
use super::scopes::ScopeRequest;
use super::store::{DeviceGrant, DeviceState};
use super::token::{grant_user, pre_grant};

/// Letters and digits that cannot be mistaken for one another.
const USER_CODE_ALPHABET: &[u8; 32] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";

fn new_user_code() -> Result<String, getrandom::Error> {
    Ok(random_bytes(9)?
        .into_iter()
        .map(|b| char::from(USER_CODE_ALPHABET[usize::from(b % 32)]))
        .collect())
}

/// `POST /{tenant}/oauth2/v2.0/devicecode`
pub fn start(
    app: &App,
    tenant: &str,
    headers: &HeaderMap,
    params: &Params,
) -> Result<Value, AadError> {
    let (realm, client_id) = pre_grant(app, tenant, headers, params, &[])?;
    let scopes = ScopeRequest::parse(params.require("scope")?)?;
    let device_code = random_token("DAQABAAEAAAD", 96)?;
    let now = app.clock.now();
    let lifetime = app.config.device_code_lifetime;
    let interval = app.config.device_code_interval;
    let user_code = {
        let mut store = app.store();
        let mut code = new_user_code()?;
        while store.device_codes.values().any(|d| d.user_code == code) {
            code = new_user_code()?;
        }
        store.device_codes.insert(
            digest(&device_code),
            DeviceGrant {
                realm,
                client_id: client_id.to_string(),
                scopes,
                user_code: code.clone(),
                expires: after(now, lifetime),
                interval,
                last_poll: None,
                state: DeviceState::Pending,
                claims: params.get("claims").map(str::to_string),
            },
        );
        code
    };
    let verification_uri = format!("{}/devicelogin", app.base_url);
    Ok(json!({
        "user_code": user_code,
        "device_code": device_code,
        "verification_uri": verification_uri,
        "expires_in": lifetime,
        "interval": interval,
        "message": format!(
            "To sign in, use a web browser to open the page {verification_uri} and enter the \
             code {user_code} to authenticate."
        ),
    }))
}

/// The device-code grant at the token endpoint.
pub fn redeem(
    app: &App,
    realm: &Realm,
    client_id: &str,
    params: &Params,
) -> Result<Value, AadError> {
    let device_code = params.require("device_code")?;
    let now = app.clock.now();
    let (user, scopes, claims_met) = {
        let mut store = app.store();
        let grant = store
            .device_codes
            .get_mut(&digest(device_code))
            .filter(|g| g.client_id.eq_ignore_ascii_case(client_id))
            .ok_or_else(|| AadError::invalid_grant_value("device_code"))?;
        if grant.state == DeviceState::Redeemed {
            return Err(AadError::invalid_grant_value("device_code"));
        }
        if now > grant.expires {
            return Err(AadError::device_code_expired());
        }
        let previous = grant.last_poll.replace(now);
        match &grant.state {
            DeviceState::Pending => {
                let interval = TimeDelta::seconds(i64::try_from(grant.interval).unwrap_or(5));
                let too_soon = previous.is_some_and(|p| now - p < interval);
                return Err(if too_soon {
                    AadError::slow_down(grant.interval)
                } else {
                    AadError::authorization_pending()
                });
            }
            DeviceState::Declined => return Err(AadError::authorization_declined()),
            DeviceState::Redeemed => return Err(AadError::invalid_grant_value("device_code")),
            DeviceState::Approved { username, .. } => {
                let user = grant_user(app, realm, username, "device_code")?;
                grant.state = DeviceState::Redeemed;
                (
                    user,
                    grant.scopes.clone(),
                    answers_claims(grant.claims.as_deref()),
                )
            }
        }
    };
    app.consented(&scopes.grant().audience);
    token_response(
        app,
        &Issue {
            client_id,
            user,
            scopes: &scopes,
            nonce: None,
            auth_time: None,
            client_info: params.get("client_info") == Some("1"),
            claims_met,
        },
    )
}

/// `GET /devicelogin[?otc=CODE]`
pub async fn page(uri: Uri) -> Response {
    let params = Params::from_query(&uri);
    pages::html(
        DeviceLoginPage {
            user_code: params.get("otc").unwrap_or(""),
            username: "",
            error: None,
        }
        .render(),
    )
}

/// `POST /devicelogin`: `user_code`, `username`, `password`, `action` = `approve` | `decline`.
pub async fn submit(State(app): State<Arc<App>>, body: Bytes) -> Response {
    let form = Params::from_urlencoded(&body);
    let typed = form.get("user_code").unwrap_or("");
    let username = form.get("username").unwrap_or("");
    let retry = |error: &str| {
        pages::html(
            DeviceLoginPage {
                user_code: typed,
                username,
                error: Some(error),
            }
            .render(),
        )
    };
    let now = app.clock.now();
    let mut store = app.store();
    let Some(grant) = store.device_by_user_code(typed) else {
        drop(store);
        return retry("AADSTS70018: That code didn't work. Check the code and try again.");
    };
    if now > grant.expires {
        drop(store);
        return retry(
            "AADSTS70019: That code has expired. Request a new code on your device and try again.",
        );
    }
    if grant.state != DeviceState::Pending {
        drop(store);
        return retry(
            "AADSTS70018: That code was already used. Request a new code on your device.",
        );
    }
    match form.get("action").unwrap_or("approve") {
        "decline" => {
            grant.state = DeviceState::Declined;
            drop(store);
            pages::html(pages::message(
                "Sign-in declined",
                "You declined to sign in to the application on your device. You can close this \
                 window.",
            ))
        }
        "approve" => {
            let password = form.get("password").unwrap_or("");
            match app.directory.authenticate(&grant.realm, username, password) {
                Ok(user) => {
                    grant.state = DeviceState::Approved {
                        username: user.username.clone(),
                        at: now,
                    };
                    drop(store);
                    pages::html(pages::message(
                        "You're signed in",
                        "You have signed in to the application on your device. You may now close \
                         this window.",
                    ))
                }
                Err(refusal) => {
                    let text = refusal_text(refusal, username, &grant.realm);
                    drop(store);
                    retry(&text)
                }
            }
        }
        other => {
            drop(store);
            retry(&format!("Unknown action '{other}'."))
        }
    }
}
