//! The one security layer in front of every route, and the refusals it (and the handlers) send.

use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::http::{HeaderValue, Request, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::routes::{error_response, route};
use super::{EndpointState, Peer, RequestBody};
use crate::ErrorCode;
use crate::loopback::MAX_REQUESTS;

/// Longest query string accepted.
const MAX_QUERY: usize = 2048;
/// Deadline of one request (a refresh included), after any wait for approval.
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
    /// A route asked for with a method it does not answer; `allow` is the one it does.
    MethodNotAllowed {
        /// `GET` or `POST`.
        allow: &'static str,
    },
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
            Self::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
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
            Self::MethodNotAllowed { .. } => ErrorCode::MethodNotAllowed,
            Self::Malformed { code, .. } => code,
        }
    }

    fn message(self) -> &'static str {
        match self {
            Self::Origin => "requests from web pages are refused",
            Self::Host => {
                "send a path (origin-form) and one Host header: 127.0.0.1, [::1] or localhost, \
                 with an optional port"
            }
            Self::QueryTooLong => "the query string is too long",
            Self::Unauthorized => "missing or wrong secret; get it with `tokentray env`",
            Self::Timeout => "the request took too long; retry",
            Self::NotFound => "no such route; see `tokentray env`",
            Self::MethodNotAllowed { allow: "POST" } => "this route answers POST only",
            Self::MethodNotAllowed { .. } => "this route answers GET only",
            Self::Malformed { message, .. } => message,
        }
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let mut r = super::routes::refuse(self.status(), self.code(), self.message());
        match self {
            Self::Unauthorized => {
                r.headers_mut()
                    .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            Self::MethodNotAllowed { allow } => {
                r.headers_mut()
                    .insert(header::ALLOW, HeaderValue::from_static(allow));
            }
            _ => {}
        }
        r
    }
}

/// One request through the security layer (origin, target and host, size, secret, deadline)
/// and then its route; on the way out, the per-connection request cap. `peer` is `None` only
/// when the endpoint is driven without a socket (the fuzz harness).
pub(super) async fn respond<B: RequestBody>(
    state: &EndpointState,
    peer: Option<&Peer>,
    req: Request<B>,
) -> Response {
    let requests = peer.map(|p| p.requests.fetch_add(1, Ordering::Relaxed).saturating_add(1));
    let mut response = match refused(state, &req) {
        Some(refused) => refused,
        None => {
            // A request may wait for the user to approve its program first.
            let deadline = if state.tokens.config().require_approval {
                REQUEST_TIMEOUT + crate::approval::WAIT
            } else {
                REQUEST_TIMEOUT
            };
            match tokio::time::timeout(deadline, route(state, peer, req)).await {
                Ok(response) => response,
                Err(_) => Refusal::Timeout.into_response(),
            }
        }
    };
    if requests.is_some_and(|n| n >= MAX_REQUESTS) {
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

/// The refusal of `req`, if it does not pass the checks.
fn refused<B>(state: &EndpointState, req: &Request<B>) -> Option<Response> {
    let headers = req.headers();
    if headers.contains_key(header::ORIGIN) {
        return Some(Refusal::Origin.into_response());
    }
    let mut hosts = headers.get_all(header::HOST).iter();
    let host = match (hosts.next(), hosts.next()) {
        (Some(host), None) => Some(host),
        _ => None,
    };
    let origin_form = req.uri().scheme().is_none() && req.uri().authority().is_none();
    if !origin_form || !host.is_some_and(loopback_host) {
        return Some(Refusal::Host.into_response());
    }
    if req.uri().query().is_some_and(|q| q.len() > MAX_QUERY) {
        return Some(Refusal::QueryTooLong.into_response());
    }
    let path = req.uri().path();
    let presented = if path.starts_with("/msi/") {
        headers.get("x-identity-header").map(HeaderValue::as_bytes)
    } else if let Some(rest) = path.strip_prefix("/imds/") {
        // IMDS clients (Terraform) send no secret header: the path carries it.
        rest.strip_suffix("/token").map(str::as_bytes)
    } else {
        headers.get(header::AUTHORIZATION).and_then(bearer)
    };
    match state.tokens.endpoint_secret() {
        Ok(secret) if presented.is_some_and(|p| secret.is(p)) => None,
        Ok(_) => Some(Refusal::Unauthorized.into_response()),
        Err(e) => Some(error_response(&e)),
    }
}

/// The credentials of `Authorization: Bearer <token>`; the scheme in any case (RFC 7235).
fn bearer(value: &HeaderValue) -> Option<&[u8]> {
    let bytes = value.as_bytes();
    let (scheme, rest) = bytes.split_at_checked(7)?;
    scheme
        .eq_ignore_ascii_case(b"bearer ")
        .then(|| rest.trim_ascii_start())
}

/// Whether `host` is exactly `127.0.0.1`, `[::1]` or `localhost` (any case), with an optional
/// `:port` of 1 to 5 digits, and nothing else.
fn loopback_host(host: &HeaderValue) -> bool {
    let Ok(host) = host.to_str() else {
        return false;
    };
    let (name, port) = match host.rsplit_once(':') {
        // `[::1]` alone has colons inside its brackets.
        Some((name, port)) if !host.ends_with(']') => (name, Some(port)),
        _ => (host, None),
    };
    let port_ok =
        port.is_none_or(|p| (1..=5).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit()));
    port_ok && (name == "127.0.0.1" || name == "[::1]" || name.eq_ignore_ascii_case("localhost"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_hosts_with_an_optional_port_pass() {
        let ok = [
            "127.0.0.1",
            "127.0.0.1:42117",
            "[::1]",
            "[::1]:42117",
            "localhost",
            "LOCALHOST:1",
        ];
        let refused = [
            "",
            "evil.com",
            "[::1]evil.com",
            "[::1]evil.com:80",
            "127.0.0.1:",
            "127.0.0.1:123456",
            "127.0.0.1:80x",
            "127.0.0.1.evil.com",
            "localhost.evil.com",
            "localhost:80:80",
            "[::1]:",
            "127.0.0.2",
            "::1",
        ];
        for h in ok {
            assert!(loopback_host(&HeaderValue::from_static(h)), "{h}");
        }
        for h in refused {
            assert!(!loopback_host(&HeaderValue::from_static(h)), "{h}");
        }
    }

    #[test]
    fn the_bearer_scheme_is_case_insensitive() {
        for (value, secret) in [
            ("Bearer s3cret", Some(&b"s3cret"[..])),
            ("bearer s3cret", Some(b"s3cret")),
            ("BEARER  s3cret", Some(b"s3cret")),
            ("Basic s3cret", None),
            ("Bearer", None),
        ] {
            assert_eq!(bearer(&HeaderValue::from_static(value)), secret, "{value}");
        }
    }
}
