//! The device code sign-in (RFC 8628, ENTRA-PROTOCOL.md 3).
//!
//! [`start`] returns the user code, verification URI, message and expiry at once so the caller
//! can show them; [`wait`] then polls at the server's interval, adding 5 s on `slow_down`, and
//! ends on success, expiry, decline or cancel with distinct errors. Sleeping and deadlines use
//! tokio's clock, so tests can pause and advance time.

use std::future::Future;
use std::time::Duration;

use serde::Deserialize;
use tokio::time::Instant;

use super::{Entra, Failure, scope_param};
use crate::cache::TokenResponse;
use crate::error::SignInOutcome;
use crate::secret::Secret;
use crate::{Error, Result};

/// The grant type of device code token requests.
pub const GRANT: &str = crate::cache::DEVICE_CODE_GRANT;

/// The longest a device code is taken to live, whatever the answer says (Entra's live 15
/// minutes): the deadline is a time of the clock, which a lifetime of centuries would overflow.
const MAX_LIFETIME_SECS: u64 = 24 * 3600;

/// The device code endpoint's answer (ENTRA-PROTOCOL.md 3).
#[derive(Deserialize)]
pub(crate) struct Answer {
    user_code: String,
    device_code: Secret,
    verification_uri: String,
    #[serde(default)]
    message: Option<String>,
    #[serde(default, deserialize_with = "lenient_u64")]
    expires_in: Option<u64>,
    #[serde(default, deserialize_with = "lenient_u64")]
    interval: Option<u64>,
}

fn lenient_u64<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> std::result::Result<Option<u64>, D::Error> {
    Ok(match serde_json::Value::deserialize(d)? {
        serde_json::Value::Number(n) => n.as_u64(),
        serde_json::Value::String(s) => s.trim().parse().ok(),
        _ => None,
    })
}

/// A started device code sign-in: what to show the user.
#[derive(Debug)]
pub struct DeviceCode {
    /// The code the user types.
    pub user_code: String,
    /// Where to type it.
    pub verification_uri: String,
    /// The authority's sentence telling the user both.
    pub message: String,
    /// Seconds the code stays valid, counted from [`start`].
    pub expires_in: u64,
    /// Seconds between polls.
    pub interval: u64,
    device_code: Secret,
    deadline: Instant,
    tenant: String,
    scopes: Vec<String>,
}

impl DeviceCode {
    /// The tenant this sign-in is for (the cache realm).
    pub fn tenant(&self) -> &str {
        &self.tenant
    }

    /// The scopes requested.
    pub fn scopes(&self) -> &[String] {
        &self.scopes
    }
}

/// Asks the authority for a device code.
///
/// # Errors
/// [`Error::Authority`] (e.g. the client may not use the device flow), [`Error::AuthorityUnavailable`],
/// [`Error::Protocol`].
pub async fn start(
    entra: &Entra,
    tenant: Option<&str>,
    scopes: &[String],
    claims: Option<&str>,
) -> Result<DeviceCode> {
    let authority = tenant.map_or_else(
        || entra.authority().clone(),
        |t| entra.authority().with_tenant(t),
    );
    let scope = scope_param(scopes);
    let mut form = vec![("scope", scope.as_str())];
    if let Some(claims) = claims {
        form.push(("claims", claims)); // as MSAL's initiate_device_flow(claims_challenge=)
    }
    let answer: Answer = entra
        .post(authority.device_code_endpoint(), &authority, &form, None)
        .await
        .map_err(|f| match f {
            Failure::OAuth(e) => e.into_sign_in_error(),
            Failure::Other(e) => e,
        })?;
    https_page(&answer.verification_uri)?;
    Ok(DeviceCode::from_answer(answer, authority.tenant(), scopes))
}

impl DeviceCode {
    /// The sign-in the authority's `answer` describes, for `tenant` and `scopes`, timed from now.
    pub(crate) fn from_answer(answer: Answer, tenant: &str, scopes: &[String]) -> Self {
        // Bounded, so that the deadline and each poll's time are times the clock can hold.
        let expires_in = answer.expires_in.unwrap_or(900).min(MAX_LIFETIME_SECS);
        let interval = answer.interval.unwrap_or(5).clamp(1, expires_in.max(1));
        let message = answer.message.unwrap_or_else(|| {
            format!(
                "To sign in, open {} and enter the code {}.",
                answer.verification_uri, answer.user_code
            )
        });
        Self {
            user_code: answer.user_code,
            verification_uri: answer.verification_uri,
            message,
            expires_in,
            interval,
            device_code: answer.device_code,
            deadline: Instant::now() + Duration::from_secs(expires_in),
            tenant: tenant.to_string(),
            scopes: scopes.to_vec(),
        }
    }
}

/// Polls until the user approves, declines, the code expires, or `cancel` completes.
///
/// # Errors
/// [`Error::SignIn`] with outcome `expired`, `declined` or `cancelled`; token endpoint errors.
pub async fn wait(
    entra: &Entra,
    code: &DeviceCode,
    cancel: impl Future<Output = ()>,
) -> Result<TokenResponse> {
    let authority = entra.authority().with_tenant(&code.tenant);
    let expired = || Error::SignIn {
        outcome: SignInOutcome::Expired,
        detail: format!(
            "the code {} expired before it was used; start the sign-in again",
            code.user_code
        ),
    };
    let mut interval = Duration::from_secs(code.interval);
    // How long Entra asked to be left alone (`Retry-After` on a 429 or 5xx), for the next poll.
    let mut hold = Duration::ZERO;
    tokio::pin!(cancel);
    loop {
        let next = Instant::now() + interval.max(std::mem::take(&mut hold));
        if next >= code.deadline {
            return Err(expired());
        }
        tokio::select! {
            () = tokio::time::sleep_until(next) => {}
            () = &mut cancel => return Err(Error::SignIn {
                outcome: SignInOutcome::Cancelled,
                detail: "the device code sign-in was cancelled".into(),
            }),
        }
        let form = [
            ("grant_type", GRANT),
            // No scope: the grant is for what the device code was asked for (RFC 8628 3.4;
            // MSAL sends none either).
            ("device_code", code.device_code.expose()),
        ];
        match entra.token(&authority, &form, None).await {
            Ok(response) => return Ok(response),
            Err(Failure::OAuth(e)) => match e.error.as_str() {
                "authorization_pending" => {}
                "slow_down" => interval += Duration::from_secs(5),
                "expired_token" | "code_expired" => return Err(expired()),
                "authorization_declined" | "access_denied" => {
                    return Err(Error::SignIn {
                        outcome: SignInOutcome::Declined,
                        detail: "the sign-in was declined on the verification page".into(),
                    });
                }
                _ => return Err(e.into_sign_in_error()),
            },
            // The authority hiccupped or throttles: keep polling until the code expires, no
            // sooner than it asked.
            Err(Failure::Other(e)) if e.is_transient() => {
                tracing::debug!("device code poll: {e}");
                if let Error::AuthorityUnavailable {
                    retry_after: Some(secs),
                    ..
                } = e
                {
                    hold = Duration::from_secs(secs.min(MAX_HOLD_SECS));
                }
            }
            Err(Failure::Other(e)) => return Err(e),
        }
    }
}

/// The longest `Retry-After` honoured between two polls (a code lives 15 minutes).
const MAX_HOLD_SECS: u64 = 300;

/// The page the user is sent to (and the window opens) must be an https URL: nothing else is
/// ever opened.
fn https_page(uri: &str) -> Result<()> {
    match url::Url::parse(uri) {
        Ok(u) if u.scheme() == "https" && u.host().is_some() => Ok(()),
        _ => Err(Error::Protocol(format!(
            "the authority sent a verification page that is not an https URL ({uri:?}); check \
             the authority in the config file"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_https_verification_pages_are_accepted() {
        assert!(https_page("https://microsoft.com/devicelogin").is_ok());
        for bad in [
            "http://microsoft.com/devicelogin",
            "file:///etc/passwd",
            "javascript:alert(1)",
            "x",
        ] {
            assert!(https_page(bad).is_err(), "{bad}");
        }
    }

    fn answer(expires_in: &str, interval: &str) -> Answer {
        serde_json::from_str(&format!(
            r#"{{"user_code":"U","device_code":"D","verification_uri":"https://v",
                "expires_in":{expires_in},"interval":{interval}}}"#
        ))
        .unwrap()
    }

    #[test]
    fn lifetimes_and_intervals_the_clock_cannot_hold_are_bounded() {
        // tests/fuzz/artifacts/entra_response/: these overflowed the deadline's Instant.
        let code = DeviceCode::from_answer(
            answer("18446744073709551615", r#""9223372036854775807""#),
            "organizations",
            &[],
        );
        assert_eq!(code.expires_in, MAX_LIFETIME_SECS);
        assert_eq!(code.interval, MAX_LIFETIME_SECS);
        let code = DeviceCode::from_answer(answer("900", "18446744073709551615"), "common", &[]);
        assert_eq!((code.expires_in, code.interval), (900, 900));
        let code = DeviceCode::from_answer(answer("0", "0"), "common", &[]);
        assert_eq!((code.expires_in, code.interval), (0, 1));
        let code = DeviceCode::from_answer(answer("900", "5"), "common", &[]);
        assert_eq!((code.expires_in, code.interval), (900, 5));
    }
}
