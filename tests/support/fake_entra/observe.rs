//! The middleware in front of every endpoint: logs the request (without secrets) and applies
//! the next queued fault for it.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::Response;

use super::aad_error::{AadError, Trace};
use super::app::App;
use super::faults::{DEFAULT_CLAIMS, Endpoint, Fault};
use super::params::Params;
use super::request_log::{LOGGED_HEADERS, LogEntry};
use super::server::DropConnection;

/// Bodies larger than this are refused (Entra's are a few kilobytes).
const BODY_LIMIT: usize = 256 * 1024;

/// Logs the request, then answers with a queued fault or passes it on.
pub async fn observe(State(app): State<Arc<App>>, request: Request, next: Next) -> Response {
    let endpoint = Endpoint::classify(request.uri().path());
    if endpoint == Endpoint::Control {
        return next.run(request).await;
    }
    let (parts, body) = request.into_parts();
    let trace = Trace::new(&parts.headers, app.clock.now());
    let Ok(bytes) = axum::body::to_bytes(body, BODY_LIMIT).await else {
        return AadError::malformed("The request body is too large or unreadable.")
            .respond(&trace, &app.base_url);
    };
    let form = if parts.method == Method::POST {
        Params::from_urlencoded(&bytes)
    } else {
        Params::default()
    };
    let query = Params::from_query(&parts.uri);
    let grant_type = form.get("grant_type").map(str::to_string);
    let client_id = form
        .get("client_id")
        .or_else(|| query.get("client_id"))
        .map(str::to_string);
    let fault = app.faults.take(endpoint, grant_type.as_deref());
    let seq = app.log.push(LogEntry {
        seq: 0,
        time: trace.at.to_rfc3339(),
        method: parts.method.to_string(),
        path: parts.uri.path().to_string(),
        endpoint,
        grant_type,
        client_id,
        status: None,
        fault: fault.as_ref().map(|f| f.kind().to_string()),
        headers: LOGGED_HEADERS
            .iter()
            .filter_map(|name| {
                let value = parts.headers.get(*name)?.to_str().ok()?;
                Some(((*name).to_string(), value.to_string()))
            })
            .collect(),
    });

    let drop_hook = parts.extensions.get::<DropConnection>().cloned();
    let request = Request::from_parts(parts, Body::from(bytes));
    let response = match fault {
        None => next.run(request).await,
        Some(Fault::Delay { ms }) => {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            next.run(request).await
        }
        Some(Fault::Drop) => match drop_hook {
            Some(hook) => {
                hook.fire();
                // The connection task drops this future together with the connection.
                std::future::pending::<()>().await;
                AadError::temporarily_unavailable(StatusCode::INTERNAL_SERVER_ERROR)
                    .respond(&trace, &app.base_url)
            }
            None => AadError::temporarily_unavailable(StatusCode::INTERNAL_SERVER_ERROR)
                .respond(&trace, &app.base_url),
        },
        Some(fault) => fault_error(fault).respond(&trace, &app.base_url),
    };
    app.log.set_status(seq, response.status().as_u16());
    response
}

/// The Entra-shaped error a non-delay, non-drop fault answers with.
fn fault_error(fault: Fault) -> AadError {
    match fault {
        Fault::Status {
            status,
            retry_after,
        } => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let mut e = AadError::temporarily_unavailable(status);
            e.details.retry_after = retry_after;
            e
        }
        Fault::InvalidGrant {
            code,
            description,
            suberror,
        } => {
            let mut e = AadError::new(
                "invalid_grant",
                code.unwrap_or(70000),
                description.unwrap_or_else(|| {
                    "The provided value for the input parameter 'refresh_token' or 'assertion' \
                     is not valid."
                        .to_string()
                }),
            );
            e.details.suberror = suberror;
            e
        }
        Fault::InteractionRequired {
            claims,
            code,
            description,
            suberror,
        } => AadError::new(
            "interaction_required",
            code.unwrap_or(50079),
            description.unwrap_or_else(|| {
                "Due to a configuration change made by your administrator, or because you moved \
                 to a new location, you must enroll in multi-factor authentication to access \
                 this resource."
                    .to_string()
            }),
        )
        .with_suberror(suberror.unwrap_or_else(|| "basic_action".to_string()))
        .with_claims(claims.unwrap_or_else(|| DEFAULT_CLAIMS.to_string())),
        Fault::Error {
            error,
            code,
            description,
            suberror,
            claims,
            status,
        } => {
            let mut e = AadError::new(
                &error,
                code,
                description.unwrap_or_else(|| format!("Injected {error} error.")),
            );
            e.status = status
                .and_then(|s| StatusCode::from_u16(s).ok())
                .unwrap_or(StatusCode::BAD_REQUEST);
            e.details.suberror = suberror;
            e.details.claims = claims;
            e
        }
        Fault::Delay { .. } | Fault::Drop => {
            AadError::temporarily_unavailable(StatusCode::INTERNAL_SERVER_ERROR)
        }
    }
}
