//! `POST /{tenant}/oauth2/v2.0/token`: the authorization-code, refresh-token and device-code
//! grants, with Entra's errors for everything else.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, Method, header};
use axum::response::Response;
use chrono::TimeDelta;
use serde_json::Value;

use super::aad_error::AadError;
use super::app::{App, Policy, answers_claims};
use super::device;
use super::directory::{Realm, User};
use super::faults::DEFAULT_CLAIMS;
use super::ids::{b64url, digest, is_guid, sha256};
use super::issue::{Issue, token_response};
use super::params::Params;
use super::scopes::ScopeRequest;
use super::store::RefreshState;

/// The device-code grant type (RFC 8628); Entra also accepts the short `device_code`.
pub const DEVICE_CODE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// `GET` (or any non-POST) on a POST-only endpoint: AADSTS900561.
pub async fn wrong_method(
    State(app): State<Arc<App>>,
    method: Method,
    headers: HeaderMap,
) -> Response {
    AadError::post_only(method.as_str()).respond(&app.trace(&headers), &app.base_url)
}

/// `POST /{tenant}/oauth2/v2.0/token`
pub fn grant(
    app: &App,
    tenant: &str,
    headers: &HeaderMap,
    params: &Params,
) -> Result<Value, AadError> {
    let (realm, client_id) = pre_grant(app, tenant, headers, params, &["grant_type"])?;
    match params.require("grant_type")? {
        "authorization_code" => authorization_code(app, &realm, client_id, params),
        "refresh_token" => refresh_token(app, &realm, client_id, params),
        DEVICE_CODE_GRANT | "device_code" => device::redeem(app, &realm, client_id, params),
        "client_credentials" => Err(AadError::client_credential_required()),
        other => Err(AadError::unsupported_grant(other)),
    }
}

/// What the token and devicecode endpoints check first, in this order: the URL's tenant
/// (AADSTS90002), no client secret (AADSTS700025), the parameters in `required` (AADSTS900144),
/// then the client id. Returns the tenant's realm and the client id.
pub fn pre_grant<'p>(
    app: &App,
    tenant: &str,
    headers: &HeaderMap,
    params: &'p Params,
    required: &[&str],
) -> Result<(Realm, &'p str), AadError> {
    let realm = app
        .directory
        .resolve(tenant)
        .ok_or_else(|| AadError::tenant_not_found("invalid_request", tenant))?;
    refuse_client_secrets(params, headers)?;
    for name in required {
        params.require(name)?;
    }
    let client_id = check_client(&realm, params.get("client_id"))?;
    Ok((realm, client_id))
}

/// Every application is a public client: a secret or assertion is AADSTS700025.
fn refuse_client_secrets(params: &Params, headers: &HeaderMap) -> Result<(), AadError> {
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.len() > 6 && v[..6].eq_ignore_ascii_case("basic "));
    if basic || params.has("client_secret") || params.has("client_assertion") {
        return Err(AadError::public_client_with_secret());
    }
    Ok(())
}

/// `client_id` must be present (AADSTS900144) and a GUID (else AADSTS700016: no such app).
pub fn check_client<'a>(realm: &Realm, client_id: Option<&'a str>) -> Result<&'a str, AadError> {
    let client_id = client_id.ok_or_else(|| AadError::missing_parameter("client_id"))?;
    if !is_guid(client_id) {
        return Err(AadError::unknown_client(client_id, realm.segment()));
    }
    Ok(client_id)
}

/// The grant's user, who must still exist and belong to the URL's tenant.
pub fn grant_user<'a>(
    app: &'a App,
    realm: &Realm,
    username: &str,
    parameter: &str,
) -> Result<&'a User, AadError> {
    let user = app
        .directory
        .find(username)
        .ok_or_else(|| AadError::invalid_grant_value(parameter))?;
    if !realm.admits(user) {
        return Err(AadError::user_not_in_tenant(
            &user.username,
            realm.segment(),
        ));
    }
    Ok(user)
}

fn authorization_code(
    app: &App,
    realm: &Realm,
    client_id: &str,
    params: &Params,
) -> Result<Value, AadError> {
    let code = params.require("code")?;
    let redirect_uri = params.require("redirect_uri")?;
    let now = app.clock.now();
    let redeemed = {
        let mut store = app.store();
        let entry = store
            .codes
            .get_mut(&digest(code))
            .ok_or_else(|| AadError::invalid_grant_value("code"))?;
        if entry.redeemed {
            return Err(AadError::code_already_redeemed());
        }
        if now > entry.expires {
            return Err(AadError::code_expired());
        }
        if entry.request.client_id != client_id {
            return Err(AadError::invalid_grant_value("code"));
        }
        if entry.request.redirect_uri != redirect_uri {
            return Err(AadError::redirect_uri_mismatch(
                redirect_uri,
                &entry.request.redirect_uri,
            ));
        }
        let verifier = params.require("code_verifier")?;
        if b64url(&sha256(verifier.as_bytes())) != entry.request.code_challenge {
            return Err(AadError::verifier_mismatch());
        }
        let user = grant_user(app, realm, &entry.username, "code")?;
        entry.redeemed = true;
        (entry.clone(), user)
    };
    let (redeemed, user) = redeemed;
    app.consented(&redeemed.request.scopes.grant().audience);
    token_response(
        app,
        &Issue {
            client_id,
            user,
            scopes: &redeemed.request.scopes,
            nonce: redeemed.request.nonce.as_deref(),
            auth_time: redeemed.request.max_age.then_some(redeemed.auth_time),
            client_info: params.get("client_info") == Some("1"),
            claims_met: answers_claims(redeemed.request.claims.as_deref()),
        },
    )
}

fn refresh_token(
    app: &App,
    realm: &Realm,
    client_id: &str,
    params: &Params,
) -> Result<Value, AadError> {
    let token = params.require("refresh_token")?;
    // Parsed before the token is touched: a bad scope must not burn the refresh token.
    let requested = params.get("scope").map(ScopeRequest::parse).transpose()?;
    let now = app.clock.now();
    let (user, scopes, claims_met) = {
        let mut store = app.store();
        let grant = store
            .refresh_tokens
            .get_mut(&digest(token))
            .ok_or_else(|| AadError::invalid_grant_value("refresh_token"))?;
        match grant.state {
            RefreshState::Active => {}
            RefreshState::Rotated => return Err(AadError::invalid_grant_value("refresh_token")),
            RefreshState::Revoked(at) => return Err(AadError::grant_revoked(grant.issued, at)),
        }
        if now > grant.expires {
            return Err(AadError::refresh_token_expired(
                grant.issued,
                app.config.refresh_token_lifetime,
            ));
        }
        let family_member = grant.family && app.is_foci(client_id);
        if !grant.client_id.eq_ignore_ascii_case(client_id) && !family_member {
            let mut e = AadError::invalid_grant_value("refresh_token");
            e.details
                .additional_info
                .push("client_mismatch".to_string());
            return Err(e);
        }
        let user = grant_user(app, realm, &grant.username, "refresh_token")?;
        let scopes = requested.unwrap_or_else(|| grant.scopes.clone());
        let audience = scopes.grant().audience;
        // As Entra answers a refresh that a rule of the resource stops.
        match app.policy(&audience) {
            Some(Policy::Mfa) if !grant.claims_met => {
                return Err(AadError::new(
                    "invalid_grant",
                    50076,
                    format!(
                        "Due to a configuration change made by your administrator, or because \
                         you moved to a new location, you must use multi-factor authentication \
                         to access '{audience}'."
                    ),
                )
                .with_suberror("basic_action")
                .with_claims(DEFAULT_CLAIMS));
            }
            Some(Policy::Block) => {
                return Err(AadError::new(
                    "invalid_grant",
                    53003,
                    "Access has been blocked by Conditional Access policies. The access policy \
                     does not allow token issuance.",
                )
                .with_suberror("message_only"));
            }
            Some(Policy::Consent) => {
                return Err(AadError::new(
                    "invalid_grant",
                    65001,
                    format!(
                        "The user or administrator has not consented to use the application \
                         with ID '{client_id}'. Send an interactive authorization request for \
                         this user and resource."
                    ),
                )
                .with_suberror("consent_required"));
            }
            Some(Policy::Absent) => {
                return Err(AadError::new(
                    "invalid_resource",
                    500011,
                    format!(
                        "The resource principal named {audience} was not found in the tenant \
                         named {}. This can happen if the application has not been installed by \
                         the administrator of the tenant or consented to by any user in the \
                         tenant. You might have sent your authentication request to the wrong \
                         tenant.",
                        realm.segment()
                    ),
                ));
            }
            Some(Policy::Mfa) | None => {}
        }
        let claims_met = grant.claims_met;
        // A refusal below leaves the refresh token as it was, as Entra does.
        if let Some(limit) = app.config.loop_limit {
            let key = (
                client_id.to_ascii_lowercase(),
                user.username.to_ascii_lowercase(),
                scopes.grant().scope.join(" "),
            );
            let seen = store.recent_refreshes.entry(key).or_default();
            seen.retain(|at| now - *at < TimeDelta::minutes(5));
            if seen.len() >= usize::try_from(limit).unwrap_or(usize::MAX) {
                return Err(AadError::new(
                    "invalid_grant",
                    50196,
                    "The server terminated an operation because it encountered a client request \
                     loop. Please contact your app vendor.",
                ));
            }
            seen.push(now);
        }
        if app.config.strict_rotation
            && let Some(grant) = store.refresh_tokens.get_mut(&digest(token))
        {
            grant.state = RefreshState::Rotated;
        }
        (user, scopes, claims_met)
    };
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
