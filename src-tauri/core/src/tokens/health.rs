//! What a failed token request means, and who it blocks.
//!
//! Every failure falls in one [`FailureClass`], decided by one table ([`classify`]) from the
//! OAuth `error`, `suberror` and `error_codes` Entra sends (ENTRA-PROTOCOL.md 2.2; MSAL
//! Python's `application.py` and MSAL.NET's `UiRequiredExceptionClassification` classify the
//! same way). Each class has its own scope and cure:
//! - [`FailureClass::Transient`]: Entra is unreachable, failing or throttling. The cached token
//!   is served until its real expiry; the account backs off (with `Retry-After`, bounded).
//! - [`FailureClass::Request`]: this request cannot succeed as asked (bad scope or resource,
//!   unknown tenant, not a member of it, consent or Conditional Access for this resource,
//!   blocked by policy). Only that request fails; the account and other requests are untouched,
//!   and the key is not renewed in the background.
//! - [`FailureClass::Account`]: the refresh token itself is revoked, expired or unknown; the
//!   account needs sign-in (persisted).

use std::collections::HashMap;
use std::time::Duration;

use tokio::time::Instant;

use crate::Error;
use crate::flow::OAuthError;

/// Longest wait after a failing authority before trying again.
const MAX_BACKOFF: Duration = Duration::from_secs(300);

/// Which requests a failure blocks, and what cures it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FailureClass {
    /// Entra is unavailable or throttling: retry later, serve the cache meanwhile.
    Transient,
    /// This request only.
    Request,
    /// The account's refresh token is dead: sign in again.
    Account,
}

/// AADSTS codes that mean Entra is throttling or briefly failing, even inside `invalid_grant`
/// (50196: the same request repeated too often; 90055: the tenant is throttled).
const TRANSIENT_CODES: &[u64] = &[
    50196, 90055, 50088, 50033, 50087, 90006, 90024, 90033, 90090, 90012, 70012, 40010,
];
/// The tenant named is unknown, or the user is not a member of it.
const TENANT_CODES: &[u64] = &[90002, 900023, 50020, 16000, 16003, 50034, 51004];
/// The refresh token is revoked, expired, inactive or the user's credentials changed.
const ACCOUNT_CODES: &[u64] = &[
    50173, 700082, 70008, 70043, 700084, 50132, 50133, 50055, 50144, 50089, 50057, 50053,
];
/// This request only: Conditional Access, consent, scope and resource, app and tenant policy.
const REQUEST_CODES: &[u64] = &[
    53003, 530003, 53000, 53001, 50005, 50076, 50078, 50079, 50158, 65001, 65004, 90094, 70011,
    28000, 28002, 28003, 700022, 700023, 500011, 650057, 50001, 50105, 500021, 500022, 500212,
    500213, 90072, 700016, 7000112, 70000,
];

/// The class of an OAuth error from the token endpoint, first match wins: throttling codes;
/// `message_only` (even with claims); tenant membership (before `bad_token`, which Entra sends
/// with 50034); the suberrors MSAL classifies on; account codes; request codes; then `error`.
/// Sources: MSAL Python `application.py` (`_acquire_token_silent_with_error`), MSAL.NET
/// `MsalServiceExceptionFactory` and `UiRequiredExceptionClassification`, MSAL.js
/// `InteractionRequiredAuthError`, and Entra's error-code reference. 70000 without `bad_token`
/// ("scopes unauthorized or expired") is taken as this request's, as recorded exchanges show.
pub(crate) fn classify(e: &OAuthError) -> FailureClass {
    let has = |codes: &[u64]| e.error_codes.iter().any(|c| codes.contains(c));
    let suberror = e.suberror.as_deref().unwrap_or_default();
    if has(TRANSIENT_CODES) || e.error == "temporarily_unavailable" {
        return FailureClass::Transient;
    }
    if suberror == "message_only" || has(TENANT_CODES) {
        return FailureClass::Request;
    }
    match suberror {
        "basic_action"
        | "additional_action"
        | "consent_required"
        | "client_mismatch"
        | "protection_policy_required"
        | "device_authentication_failed" => {
            return FailureClass::Request;
        }
        "bad_token" | "token_expired" | "user_password_expired" => return FailureClass::Account,
        _ => {}
    }
    if has(ACCOUNT_CODES) {
        return FailureClass::Account;
    }
    if has(REQUEST_CODES) || e.claims.is_some() {
        return FailureClass::Request;
    }
    match e.error.as_str() {
        "invalid_grant" => FailureClass::Account,
        "server_error" => FailureClass::Transient,
        _ => FailureClass::Request,
    }
}

/// Per-account backoff after transient failures: how long to leave Entra alone.
#[derive(Debug, Default)]
pub(crate) struct Backoff {
    /// home_account_id -> (try again at, failures in a row).
    accounts: HashMap<String, (Instant, u32)>,
}

impl Backoff {
    /// How much longer `account` waits, if it waits.
    pub(crate) fn waiting(&self, account: &str) -> Option<Duration> {
        let (until, _) = self.accounts.get(account)?;
        until
            .checked_duration_since(Instant::now())
            .filter(|d| !d.is_zero())
    }

    /// Records a transient failure `e`; returns the wait and the failure count.
    pub(crate) fn failed(&mut self, account: &str, e: &Error) -> (Duration, u32) {
        let streak = self.accounts.get(account).map_or(0, |(_, n)| *n) + 1;
        let exponential = Duration::from_secs(5u64 << streak.min(6));
        let wait = match e {
            Error::AuthorityUnavailable {
                retry_after: Some(s),
                ..
            } => Duration::from_secs(*s),
            _ => exponential,
        }
        .min(MAX_BACKOFF);
        self.accounts
            .insert(account.to_string(), (Instant::now() + wait, streak));
        (wait, streak)
    }

    /// Forgets `account`'s failures (a success, a sign-in, a sign-out).
    pub(crate) fn clear(&mut self, account: &str) {
        self.accounts.remove(account);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn oauth(error: &str, suberror: Option<&str>, codes: &[u64], claims: bool) -> OAuthError {
        OAuthError {
            error: error.into(),
            suberror: suberror.map(str::to_string),
            error_codes: codes.to_vec(),
            claims: claims.then(|| "{}".to_string()),
            ..OAuthError::default()
        }
    }

    #[test]
    fn each_entra_error_has_its_class() {
        use FailureClass::{Account, Request, Transient};
        let cases = [
            (
                "revoked",
                oauth("invalid_grant", None, &[50173], false),
                Account,
            ),
            (
                "inactive",
                oauth("invalid_grant", None, &[700082], false),
                Account,
            ),
            (
                "dead token",
                oauth("invalid_grant", Some("bad_token"), &[70000], false),
                Account,
            ),
            (
                "scopes unauthorized",
                oauth("invalid_grant", None, &[70000], false),
                Request,
            ),
            (
                "not in the directory",
                oauth("invalid_grant", Some("bad_token"), &[50034], false),
                Request,
            ),
            (
                "blocked, with claims",
                oauth("invalid_grant", Some("message_only"), &[53003], true),
                Request,
            ),
            (
                "bare invalid_grant",
                oauth("invalid_grant", None, &[], false),
                Account,
            ),
            (
                "mfa for a resource",
                oauth("invalid_grant", Some("basic_action"), &[50076], true),
                Request,
            ),
            (
                "mfa, interaction_required",
                oauth("interaction_required", Some("basic_action"), &[50076], true),
                Request,
            ),
            (
                "blocked by policy",
                oauth("invalid_grant", Some("message_only"), &[53003], false),
                Request,
            ),
            (
                "consent",
                oauth("invalid_grant", Some("consent_required"), &[65001], false),
                Request,
            ),
            (
                "not a member",
                oauth("invalid_grant", None, &[50020], false),
                Request,
            ),
            (
                "bad scope",
                oauth("invalid_scope", None, &[70011], false),
                Request,
            ),
            (
                "two resources",
                oauth("invalid_request", None, &[28000], false),
                Request,
            ),
            (
                "unknown tenant",
                oauth("invalid_request", None, &[90002], false),
                Request,
            ),
            (
                "claims challenge",
                oauth("interaction_required", None, &[], true),
                Request,
            ),
            (
                "sign-in needed",
                oauth("interaction_required", None, &[], false),
                Request,
            ),
            (
                "throttled",
                oauth("invalid_grant", None, &[50196], false),
                Transient,
            ),
            (
                "unavailable",
                oauth("temporarily_unavailable", None, &[], false),
                Transient,
            ),
        ];
        for (case, e, class) in cases {
            assert_eq!(classify(&e), class, "{case}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn backoff_honours_retry_after_and_grows_without_it() {
        let mut b = Backoff::default();
        let limited = Error::AuthorityUnavailable {
            detail: "429".into(),
            retry_after: Some(42),
        };
        assert_eq!(b.failed("a", &limited).0, Duration::from_secs(42));
        assert!(b.waiting("a").is_some());
        tokio::time::advance(Duration::from_secs(43)).await;
        assert_eq!(b.waiting("a"), None, "waited out");
        let down = Error::AuthorityUnavailable {
            detail: "503".into(),
            retry_after: None,
        };
        let (second, streak) = b.failed("a", &down);
        assert_eq!(streak, 2);
        assert!(b.failed("a", &down).0 > second, "grows");
        assert_eq!(b.waiting("b"), None, "per account");
        b.clear("a");
        assert_eq!(b.waiting("a"), None);
    }
}
