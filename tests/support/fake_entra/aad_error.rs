//! Entra's error responses: the JSON body of the token, device-code and discovery endpoints
//! (`error`, `error_description` with its AADSTS code and trace lines, `error_codes`, …).
//!
//! The AADSTS numbers are the ones in Microsoft's public error-code reference; the description
//! texts are close to Entra's but not guaranteed verbatim (clients must not parse them).

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

use super::clock::{entra_instant, entra_timestamp};
use super::ids;

/// One OAuth error as Entra reports it.
#[derive(Debug, Clone)]
pub struct AadError {
    /// HTTP status (400, except 401 for client authentication).
    pub status: StatusCode,
    /// The OAuth `error` value.
    pub error: String,
    /// The AADSTS number (`error_codes[0]`).
    pub code: u32,
    /// Description after `AADSTSnnnn: `.
    pub message: String,
    /// The optional parts (boxed: errors travel in `Result`s and should stay small).
    pub details: Box<Details>,
}

/// The parts of an Entra error only some errors carry.
#[derive(Debug, Clone, Default)]
pub struct Details {
    /// Entra's `suberror` (`basic_action`, `consent_required`, `bad_token`, …).
    pub suberror: Option<String>,
    /// A claims challenge (a JSON string) for the client to send back on interactive sign-in.
    pub claims: Option<String>,
    /// `error_additional_info` (MSAL reads `client_mismatch` from it during FOCI probing).
    pub additional_info: Vec<String>,
    /// A `Retry-After` header, in seconds.
    pub retry_after: Option<u64>,
}

impl AadError {
    /// An error with status 400.
    pub fn new(error: &str, code: u32, message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            error: error.to_string(),
            code,
            message: message.into(),
            details: Box::default(),
        }
    }

    /// Sets the HTTP status.
    pub fn with_status(mut self, status: StatusCode) -> Self {
        self.status = status;
        self
    }

    /// Sets `suberror`.
    pub fn with_suberror(mut self, suberror: impl Into<String>) -> Self {
        self.details.suberror = Some(suberror.into());
        self
    }

    /// Sets the `claims` challenge.
    pub fn with_claims(mut self, claims: impl Into<String>) -> Self {
        self.details.claims = Some(claims.into());
        self
    }

    /// AADSTS900144: a required parameter is absent.
    pub fn missing_parameter(name: &str) -> Self {
        Self::new(
            "invalid_request",
            900144,
            format!("The request body must contain the following parameter: '{name}'."),
        )
    }

    /// AADSTS9002313: a parameter is present but malformed.
    pub fn malformed(detail: &str) -> Self {
        Self::new(
            "invalid_request",
            9002313,
            format!("Invalid request. Request is malformed or invalid. {detail}"),
        )
    }

    /// AADSTS900561: the endpoint only accepts POST.
    pub fn post_only(method: &str) -> Self {
        Self::new(
            "invalid_request",
            900561,
            format!(
                "The endpoint only accepts POST, OPTIONS requests. Received a {method} request."
            ),
        )
    }

    /// AADSTS90002: the tenant segment names no known tenant.
    pub fn tenant_not_found(error: &str, segment: &str) -> Self {
        Self::new(
            error,
            90002,
            format!(
                "Tenant '{segment}' not found. Check to make sure you have the correct tenant ID \
                 and are signing into the correct cloud."
            ),
        )
    }

    /// AADSTS700016: the client id names no application.
    pub fn unknown_client(client_id: &str, tenant: &str) -> Self {
        Self::new(
            "unauthorized_client",
            700016,
            format!(
                "Application with identifier '{client_id}' was not found in the directory \
                 '{tenant}'. This can happen if the application has not been installed by the \
                 administrator of the tenant or consented to by any user in the tenant."
            ),
        )
    }

    /// AADSTS700025: a public client presented a secret or assertion.
    pub fn public_client_with_secret() -> Self {
        Self::new(
            "invalid_client",
            700025,
            "Client is public so neither 'client_assertion' nor 'client_secret' should be presented.",
        )
        .with_status(StatusCode::UNAUTHORIZED)
    }

    /// AADSTS7000218: a confidential-only grant (client credentials) without a credential.
    pub fn client_credential_required() -> Self {
        Self::new(
            "invalid_client",
            7000218,
            "The request body must contain the following parameter: 'client_assertion' or \
             'client_secret'.",
        )
        .with_status(StatusCode::UNAUTHORIZED)
    }

    /// AADSTS70003: unknown `grant_type`.
    pub fn unsupported_grant(grant_type: &str) -> Self {
        Self::new(
            "unsupported_grant_type",
            70003,
            format!("The app requested an unsupported grant type '{grant_type}'."),
        )
    }

    /// AADSTS70011: a scope that is not valid.
    pub fn invalid_scope(detail: &str) -> Self {
        Self::new(
            "invalid_scope",
            70011,
            format!("The provided value for the input parameter 'scope' isn't valid. {detail}"),
        )
    }

    /// AADSTS28000: scopes of more than one resource in one request.
    pub fn multiple_resources(scope: &str) -> Self {
        Self::new(
            "invalid_scope",
            28000,
            format!(
                "Provided value for the input parameter scope is not valid because it contains \
                 more than one resource. Scope {scope} is not valid."
            ),
        )
    }

    /// AADSTS70000: an unknown, malformed or already-rotated grant.
    pub fn invalid_grant_value(parameter: &str) -> Self {
        Self::new(
            "invalid_grant",
            70000,
            format!("The provided value for the input parameter '{parameter}' is not valid."),
        )
    }

    /// AADSTS54005: an authorization code redeemed a second time.
    pub fn code_already_redeemed() -> Self {
        Self::new(
            "invalid_grant",
            54005,
            "OAuth2 Authorization code was already redeemed, please retry with a new valid code \
             or use an existing refresh token.",
        )
    }

    /// AADSTS70008: an authorization code past its lifetime.
    pub fn code_expired() -> Self {
        Self::new(
            "invalid_grant",
            70008,
            "The provided authorization code or refresh token has expired due to inactivity. \
             Send a new interactive authorization request for this user and resource.",
        )
    }

    /// AADSTS500112: `redirect_uri` differs from the one the code was issued for.
    pub fn redirect_uri_mismatch(given: &str, expected: &str) -> Self {
        Self::new(
            "invalid_grant",
            500112,
            format!(
                "The reply address '{given}' does not match the reply address '{expected}' \
                 provided when requesting Authorization code."
            ),
        )
    }

    /// AADSTS501481: the PKCE verifier does not hash to the challenge.
    pub fn verifier_mismatch() -> Self {
        Self::new(
            "invalid_grant",
            501481,
            "The Code_Verifier does not match the code_challenge supplied in the authorization \
             request.",
        )
    }

    /// AADSTS50173: the refresh token was revoked (password reset, admin revocation).
    pub fn grant_revoked(issued: DateTime<Utc>, valid_from: DateTime<Utc>) -> Self {
        Self::new(
            "invalid_grant",
            50173,
            format!(
                "The provided grant has expired due to it being revoked, a fresh auth token is \
                 needed. The user might have changed or reset their password. The grant was \
                 issued on '{}' and the TokensValidFrom date (before which tokens are not valid) \
                 for this user is '{}'.",
                entra_instant(issued),
                valid_from.format("%Y-%m-%dT%H:%M:%SZ"),
            ),
        )
        .with_suberror("bad_token")
    }

    /// AADSTS700082: the refresh token outlived its inactivity window.
    pub fn refresh_token_expired(issued: DateTime<Utc>, lifetime_secs: u64) -> Self {
        Self::new(
            "invalid_grant",
            700082,
            format!(
                "The refresh token has expired due to inactivity. The token was issued on {} and \
                 was inactive for {}.",
                entra_instant(issued),
                humane_duration(lifetime_secs),
            ),
        )
        .with_suberror("bad_token")
    }

    /// AADSTS70016: device flow, the user has not finished yet.
    pub fn authorization_pending() -> Self {
        Self::new(
            "authorization_pending",
            70016,
            "OAuth 2.0 device flow error. Authorization is pending. Continue polling.",
        )
    }

    /// Device flow, polled faster than `interval` (RFC 8628 `slow_down`).
    pub fn slow_down(interval: u64) -> Self {
        Self::new(
            "slow_down",
            70016,
            format!(
                "OAuth 2.0 device flow error. Polling too frequently: wait at least {interval} \
                 seconds between requests, then add 5 seconds."
            ),
        )
    }

    /// AADSTS70019: the device code expired before the user finished.
    pub fn device_code_expired() -> Self {
        Self::new("expired_token", 70019, "Verification code expired.")
    }

    /// The user declined on the device-login page.
    pub fn authorization_declined() -> Self {
        Self::new(
            "authorization_declined",
            70000,
            "The user declined the authorization request on the device login page.",
        )
    }

    /// AADSTS50020 at the token endpoint: the grant's user is not in the URL's tenant.
    pub fn user_not_in_tenant(username: &str, tenant: &str) -> Self {
        Self::new(
            "invalid_grant",
            50020,
            format!(
                "User account '{username}' from identity provider does not exist in tenant \
                 '{tenant}' and cannot access the application in that tenant."
            ),
        )
    }

    /// A transient failure (faults, or an OS random source that failed).
    pub fn temporarily_unavailable(status: StatusCode) -> Self {
        Self::new(
            "temporarily_unavailable",
            90033,
            "A transient error has occurred. Please try again.",
        )
        .with_status(status)
    }

    /// The JSON body, with the trace lines Entra appends to the description.
    pub fn body(&self, ctx: &Trace, base_url: &str) -> Value {
        let stamp = entra_timestamp(ctx.at);
        let description = format!(
            "AADSTS{}: {}\r\nTrace ID: {}\r\nCorrelation ID: {}\r\nTimestamp: {}",
            self.code, self.message, ctx.trace_id, ctx.correlation_id, stamp
        );
        let mut body = Map::new();
        body.insert("error".into(), json!(self.error));
        body.insert("error_description".into(), json!(description));
        body.insert("error_codes".into(), json!([self.code]));
        body.insert("timestamp".into(), json!(stamp));
        body.insert("trace_id".into(), json!(ctx.trace_id));
        body.insert("correlation_id".into(), json!(ctx.correlation_id));
        body.insert(
            "error_uri".into(),
            json!(format!("{base_url}/error?code={}", self.code)),
        );
        if let Some(s) = &self.details.suberror {
            body.insert("suberror".into(), json!(s));
        }
        if let Some(c) = &self.details.claims {
            body.insert("claims".into(), json!(c));
        }
        if !self.details.additional_info.is_empty() {
            body.insert(
                "error_additional_info".into(),
                json!(self.details.additional_info),
            );
        }
        Value::Object(body)
    }

    /// The complete HTTP response.
    pub fn respond(&self, ctx: &Trace, base_url: &str) -> Response {
        let mut response = (self.status, axum::Json(self.body(ctx, base_url))).into_response();
        ctx.stamp(response.headers_mut());
        if let Some(secs) = self.details.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

impl From<getrandom::Error> for AadError {
    fn from(_: getrandom::Error) -> Self {
        Self::temporarily_unavailable(StatusCode::INTERNAL_SERVER_ERROR)
    }
}

/// Per-request trace identifiers, as Entra reports them in bodies and headers.
#[derive(Debug, Clone)]
pub struct Trace {
    /// `x-ms-request-id` / `trace_id`: new per request.
    pub trace_id: String,
    /// `client-request-id` echoed when the client sent a GUID, else a new one.
    pub correlation_id: String,
    /// The fake clock's time of the request.
    pub at: DateTime<Utc>,
}

impl Trace {
    /// Trace ids for a request with these headers, at `at`.
    pub fn new(headers: &HeaderMap, at: DateTime<Utc>) -> Self {
        let fresh =
            || ids::random_guid().unwrap_or_else(|_| ids::derived_guid("trace", &at.to_rfc3339()));
        let correlation_id = headers
            .get("client-request-id")
            .and_then(|v| v.to_str().ok())
            .filter(|v| ids::is_guid(v))
            .map(str::to_ascii_lowercase)
            .unwrap_or_else(fresh);
        Self {
            trace_id: fresh(),
            correlation_id,
            at,
        }
    }

    /// Adds `x-ms-request-id`, `client-request-id` and no-store caching headers.
    pub fn stamp(&self, headers: &mut HeaderMap) {
        for (name, value) in [
            ("x-ms-request-id", self.trace_id.as_str()),
            ("client-request-id", self.correlation_id.as_str()),
            ("cache-control", "no-store, no-cache"),
            ("pragma", "no-cache"),
        ] {
            if let Ok(v) = HeaderValue::from_str(value) {
                headers.insert(name, v);
            }
        }
    }
}

fn humane_duration(secs: u64) -> String {
    let (d, h, m, s) = (secs / 86400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    format!("{d}.{h:02}:{m:02}:{s:02}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_body_renders_with_entras_fields() {
        let at = Utc::now();
        let trace = Trace::new(&HeaderMap::new(), at);
        for e in [
            AadError::grant_revoked(at, at),
            AadError::refresh_token_expired(at, 90 * 24 * 3600),
            AadError::slow_down(5),
            AadError::public_client_with_secret(),
        ] {
            let body = e.body(&trace, "https://127.0.0.1:1");
            let d = body["error_description"].as_str().unwrap();
            assert!(d.starts_with(&format!("AADSTS{}: ", e.code)));
            assert!(d.contains("\r\nTrace ID: ") && d.contains("\r\nTimestamp: "));
            assert_eq!(body["error_codes"], json!([e.code]));
        }
        assert!(humane_duration(90 * 24 * 3600 + 61).starts_with("90.00:01:01"));
    }
}
