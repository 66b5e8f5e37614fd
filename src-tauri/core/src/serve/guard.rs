//! The one security layer in front of every route, and the refusals it (and the handlers) send.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq as _;

use super::EndpointState;
use super::routes::error_response;
use crate::ErrorCode;

/// Longest query string accepted.
const MAX_QUERY: usize = 2048;
/// Deadline of one request (a refresh included).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Why the endpoint refused a request before (or instead of) asking for a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Refusal {
    /// An `Origin` header: a web page.
    Origin,
    /// A `Host` that is not a loopback name (DNS rebinding).
    Host,
    /// The query string is too long.
    QueryTooLong,
    /// Missing or wrong secret.
    Unauthorized,
    /// The request took longer than its deadline.
    Timeout,
    /// No such route.
    NotFound,
    /// A malformed request: `code` is [`ErrorCode::InvalidRequest`] on the managed-identity
    /// route (the SDKs' OAuth-style parsers expect it) and [`ErrorCode::InvalidInput`] on the
    /// native API.
    Malformed {
        /// The code to send.
        code: ErrorCode,
        /// What is wrong and how to fix it.
        message: &'static str,
    },
}

impl Refusal {
    fn status(self) -> StatusCode {
        match self {
            Self::Origin | Self::Host => StatusCode::FORBIDDEN,
            Self::QueryTooLong => StatusCode::URI_TOO_LONG,
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::Timeout => StatusCode::SERVICE_UNAVAILABLE,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::Malformed { .. } => StatusCode::BAD_REQUEST,
        }
    }

    fn code(self) -> ErrorCode {
        match self {
            Self::Origin => ErrorCode::ForbiddenOrigin,
            Self::Host => ErrorCode::ForbiddenHost,
            Self::QueryTooLong => ErrorCode::QueryTooLong,
            Self::Unauthorized => ErrorCode::Unauthorized,
            Self::Timeout => ErrorCode::Timeout,
            Self::NotFound => ErrorCode::NotFound,
            Self::Malformed { code, .. } => code,
        }
    }

    fn message(self) -> &'static str {
        match self {
            Self::Origin => "requests from web pages are refused",
            Self::Host => "the Host header must be 127.0.0.1, [::1] or localhost",
            Self::QueryTooLong => "the query string is too long",
            Self::Unauthorized => "missing or wrong secret; get it with `tokentray env`",
            Self::Timeout => "the request took too long; retry",
            Self::NotFound => "no such route; see `tokentray env`",
            Self::Malformed { message, .. } => message,
        }
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let mut r = super::routes::refuse(self.status(), self.code(), self.message());
        if self == Self::Unauthorized {
            r.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        r
    }
}

/// The one security layer: origin, host, size, secret, deadline.
pub(super) async fn guard(
    State(state): State<Arc<EndpointState>>,
    req: Request,
    next: Next,
) -> Response {
    let headers = req.headers();
    if headers.contains_key(header::ORIGIN) {
        return Refusal::Origin.into_response();
    }
    if !loopback_host(headers.get(header::HOST)) {
        return Refusal::Host.into_response();
    }
    if req.uri().query().is_some_and(|q| q.len() > MAX_QUERY) {
        return Refusal::QueryTooLong.into_response();
    }
    let presented = if req.uri().path().starts_with("/msi/") {
        headers.get("x-identity-header").map(HeaderValue::as_bytes)
    } else {
        headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.as_bytes().strip_prefix(b"Bearer "))
    };
    let secret = match state.tokens.endpoint_secret() {
        Ok(secret) => secret,
        Err(e) => return error_response(&e),
    };
    let expected = secret.expose().as_bytes();
    let ok = presented.is_some_and(|p| p.len() == expected.len() && bool::from(p.ct_eq(expected)));
    if !ok {
        return Refusal::Unauthorized.into_response();
    }
    match tokio::time::timeout(REQUEST_TIMEOUT, next.run(req)).await {
        Ok(response) => response,
        Err(_) => Refusal::Timeout.into_response(),
    }
}

fn loopback_host(host: Option<&HeaderValue>) -> bool {
    let Some(host) = host.and_then(|h| h.to_str().ok()) else {
        return false;
    };
    let name = if host.starts_with('[') {
        host.split_inclusive(']').next().unwrap_or(host)
    } else {
        host.rsplit_once(':').map_or(host, |(h, port)| {
            if port.chars().all(|c| c.is_ascii_digit()) {
                h
            } else {
                host
            }
        })
    };
    matches!(
        name.to_ascii_lowercase().as_str(),
        "127.0.0.1" | "localhost" | "[::1]"
    )
}
