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

use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use crate::cache::AccountInfo;
use crate::flow::OAuthError;
use crate::{Denial, Error};

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

/// Blocked by Conditional Access or device policy: no sign-in of this user here can pass.
const POLICY_CODES: &[u64] = &[53003, 530003, 53000, 53001, 53002];
/// No consent for the scopes (65004: the user declined it).
const CONSENT_CODES: &[u64] = &[65001, 65004];
/// The account is not in the tenant asked for.
const NOT_MEMBER_CODES: &[u64] = &[50020, 90072, 50034, 16000, 16003, 51004];
/// The tenant asked for does not exist.
const NO_TENANT_CODES: &[u64] = &[90002, 900023];

/// The [`Denial`] of a request-only failure ([`FailureClass::Request`]), when it is one with
/// its own cure; `None` for the rest (a bad scope, a claims or MFA challenge: interaction).
/// `message_only` is MSAL's "show the message, signing in cannot help" (MSAL.NET
/// `UiRequiredExceptionClassification.PromptNeverFailed`/`BasicAction` read the same field).
pub(crate) fn denial(e: &OAuthError) -> Option<Denial> {
    let has = |codes: &[u64]| e.error_codes.iter().any(|c| codes.contains(c));
    let suberror = e.suberror.as_deref().unwrap_or_default();
    if suberror == "message_only" || has(POLICY_CODES) {
        Some(Denial::BlockedByPolicy)
    } else if suberror == "consent_required" || has(CONSENT_CODES) || e.error == "consent_required"
    {
        Some(Denial::ConsentRequired)
    } else if has(NOT_MEMBER_CODES) {
        Some(Denial::NotInTenant)
    } else if has(NO_TENANT_CODES) {
        Some(Denial::UnknownTenant)
    } else {
        None
    }
}

/// Whether Entra said it throttles (rather than fails): the same request repeated too often
/// (AADSTS50196), or the tenant or app over its limits.
pub(crate) fn throttled(e: &OAuthError) -> bool {
    e.error_codes.iter().any(|c| [50196, 90055].contains(c))
}

/// Why a refresh token stops working, one line per AADSTS code (the rest get a generic line).
const SIGN_IN_REASONS: &[(u64, &str)] = &[
    (
        50173,
        "the refresh token was revoked (a password change or an admin)",
    ),
    (
        700082,
        "the refresh token expired after 90 days without use",
    ),
    (70008, "the refresh token expired"),
    (
        70043,
        "a sign-in frequency policy requires signing in again",
    ),
    (700084, "the refresh token reached its lifetime limit"),
    (
        50132,
        "the session was revoked (a password change or an admin)",
    ),
    (50133, "the session was revoked after a password change"),
    (50055, "the password expired"),
    (50144, "the password expired"),
    (50089, "the sign-in session expired"),
    (50057, "the account is disabled"),
    (50053, "the account is locked"),
    (70000, "Entra ID no longer accepts the refresh token"),
];

/// An account's health, as the process that holds it sees it. A one-shot CLI process knows
/// only [`Health::Ok`] and [`Health::NeedsSignIn`] (persisted); a running app or daemon also
/// knows its refreshes in flight and its backoff.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Health {
    /// Tokens are served from the cache and renewed ahead of expiry.
    Ok,
    /// A refresh token is being redeemed right now.
    Refreshing,
    /// Entra ID could not be reached or is throttling. Cached tokens are still served until
    /// their real expiry; the next try is not before `at`.
    Retrying {
        /// Earliest next try, epoch seconds (now when it is due).
        at: i64,
        /// The number of the next try (failures in a row + 1).
        attempt: u32,
        /// What the last try got.
        reason: String,
    },
    /// The refresh token is dead: only signing in again helps.
    NeedsSignIn {
        /// Why, in a few words.
        summary: String,
        /// Entra's text (the AADSTS code and description).
        details: String,
    },
}

impl Health {
    /// The health of an account as the cache file records it: ok, or needs sign-in.
    pub fn at_rest(account: &AccountInfo) -> Self {
        match &account.needs_sign_in {
            Some(details) => Self::NeedsSignIn {
                summary: sign_in_summary(details),
                details: details.clone(),
            },
            None => Self::Ok,
        }
    }

    /// One line for people: `ok`, `refreshing`, `can't reach Entra ID, retrying at 14:32 (try
    /// 3)`, `needs sign-in: the refresh token was revoked (...)`. Times are local.
    pub fn line(&self) -> String {
        match self {
            Self::Ok => "ok".into(),
            Self::Refreshing => "refreshing".into(),
            Self::Retrying { at, attempt, .. } => {
                format!(
                    "can't reach Entra ID, retrying at {} (try {attempt})",
                    crate::clock::local_time(*at, "%H:%M")
                )
            }
            Self::NeedsSignIn { summary, .. } => format!("needs sign-in: {summary}"),
        }
    }
}

/// The few words of [`SIGN_IN_REASONS`] for a recorded reason (Entra's first line, which
/// starts with its AADSTS code), or a generic line.
fn sign_in_summary(details: &str) -> String {
    let code = details
        .find("AADSTS")
        .map(|i| &details[i + 6..])
        .and_then(|rest| {
            let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
            rest[..digits].parse::<u64>().ok()
        });
    let known = code.and_then(|c| SIGN_IN_REASONS.iter().find(|(k, _)| *k == c));
    match known {
        Some((_, why)) => (*why).to_string(),
        None if code.is_some() => "Entra ID no longer accepts the refresh token".into(),
        None => details.to_string(),
    }
}

/// An account with its health, and the requests of it that fail on their own.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountState {
    /// The account.
    #[serde(flatten)]
    pub account: AccountInfo,
    /// Its health.
    pub health: Health,
    /// Requests that failed for a reason of their own (consent, Conditional Access, a bad
    /// scope or tenant) while the account is otherwise fine; not renewed in the background.
    pub failing: Vec<FailingRequest>,
}

impl AccountState {
    /// The state as the cache file records it (no refreshes, backoff or failures known).
    pub fn at_rest(account: AccountInfo) -> Self {
        Self {
            health: Health::at_rest(&account),
            account,
            failing: Vec::new(),
        }
    }
}

/// A request that failed on its own.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailingRequest {
    /// The scopes asked for, space-separated.
    pub scopes: String,
    /// The tenant asked for, if one was named.
    pub tenant: Option<String>,
    /// What Entra ID said, and what to do.
    pub reason: String,
}

/// One account's run of transient failures.
#[derive(Debug)]
struct Streak {
    until: Instant,
    failures: u32,
    reason: String,
}

/// Per-account backoff after transient failures: how long to leave Entra alone.
#[derive(Debug, Default)]
pub(crate) struct Backoff {
    /// home_account_id -> its streak.
    accounts: HashMap<String, Streak>,
}

impl Backoff {
    /// How much longer `account` waits, if it waits.
    pub(crate) fn waiting(&self, account: &str) -> Option<Duration> {
        let streak = self.accounts.get(account)?;
        streak
            .until
            .checked_duration_since(Instant::now())
            .filter(|d| !d.is_zero())
    }

    /// `account`'s health as its streak says (`now`: epoch seconds), if it has one.
    pub(crate) fn health(&self, account: &str, now: i64) -> Option<Health> {
        let streak = self.accounts.get(account)?;
        let wait = self.waiting(account).unwrap_or_default();
        Some(Health::Retrying {
            at: now.saturating_add(i64::try_from(wait.as_secs()).unwrap_or(i64::MAX)),
            attempt: streak.failures.saturating_add(1),
            reason: streak.reason.clone(),
        })
    }

    /// Records a transient failure `e`; returns the wait and the failure count. The wait is
    /// `Retry-After` when Entra sent one (never less), else exponential from 10 s, at most 5
    /// minutes; each gets up to a tenth more at random, so that tools failing together do not retry together.
    pub(crate) fn failed(&mut self, account: &str, e: &Error) -> (Duration, u32) {
        let failures = self
            .accounts
            .get(account)
            .map_or(0, |s| s.failures)
            .saturating_add(1);
        let base = match e {
            Error::AuthorityUnavailable {
                retry_after: Some(s),
                ..
            } => Duration::from_secs(*s),
            _ => Duration::from_secs(5u64 << failures.min(6)),
        }
        .min(MAX_BACKOFF);
        let wait = base + jitter(base / 10);
        self.accounts.insert(
            account.to_string(),
            Streak {
                until: Instant::now() + wait,
                failures,
                reason: e.to_string(),
            },
        );
        (wait, failures)
    }

    /// Forgets `account`'s failures (a success, a sign-in, a sign-out).
    pub(crate) fn clear(&mut self, account: &str) {
        self.accounts.remove(account);
    }
}

/// A random duration up to `max` (none if the system has no randomness to give).
fn jitter(max: Duration) -> Duration {
    let mut b = [0u8; 2];
    if crate::secret::random_bytes(&mut b).is_err() {
        return Duration::ZERO;
    }
    max.mul_f64(f64::from(u16::from_le_bytes(b)) / f64::from(u16::MAX))
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

    #[test]
    fn refusals_with_a_cure_of_their_own_are_named() {
        let cases = [
            (
                oauth("invalid_grant", Some("message_only"), &[53003], false),
                Some(Denial::BlockedByPolicy),
            ),
            (
                oauth("interaction_required", None, &[53000], false),
                Some(Denial::BlockedByPolicy),
            ),
            (
                oauth("invalid_grant", Some("consent_required"), &[65001], false),
                Some(Denial::ConsentRequired),
            ),
            (
                oauth("invalid_grant", None, &[50020], false),
                Some(Denial::NotInTenant),
            ),
            (
                oauth("invalid_request", None, &[90002], false),
                Some(Denial::UnknownTenant),
            ),
            (
                oauth("invalid_grant", Some("basic_action"), &[50076], true),
                None,
            ),
            (oauth("invalid_scope", None, &[70011], false), None),
        ];
        for (e, want) in cases {
            assert_eq!(denial(&e), want, "{e:?}");
            assert_eq!(classify(&e), FailureClass::Request, "{e:?}");
        }
        assert!(throttled(&oauth("invalid_grant", None, &[50196], false)));
        assert!(!throttled(&oauth("invalid_grant", None, &[50173], false)));
    }

    #[test]
    fn a_dead_refresh_token_says_why_in_a_few_words() {
        let revoked = "AADSTS50173: The provided grant has expired due to it being revoked.";
        assert_eq!(
            sign_in_summary(revoked),
            "the refresh token was revoked (a password change or an admin)"
        );
        assert_eq!(
            sign_in_summary("AADSTS99999: something new"),
            "Entra ID no longer accepts the refresh token"
        );
        assert_eq!(sign_in_summary("no refresh token"), "no refresh token");
        assert_eq!(
            sign_in_summary("AADSTS"),
            "AADSTS",
            "no code: the text as it is"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn backoff_honours_retry_after_and_grows_without_it() {
        let mut b = Backoff::default();
        let limited = Error::AuthorityUnavailable {
            detail: "429".into(),
            retry_after: Some(42),
        };
        let wait = b.failed("a", &limited).0;
        assert!(
            (42.0..=46.2).contains(&wait.as_secs_f64()),
            "Retry-After and at most a tenth more: {wait:?}"
        );
        assert!(b.waiting("a").is_some());
        tokio::time::advance(Duration::from_secs(47)).await;
        assert_eq!(b.waiting("a"), None, "waited out");
        let down = Error::AuthorityUnavailable {
            detail: "503".into(),
            retry_after: None,
        };
        let (second, streak) = b.failed("a", &down);
        assert_eq!(streak, 2);
        assert!(b.failed("a", &down).0 > second, "grows");
        let Some(Health::Retrying { at, attempt, .. }) = b.health("a", 1_000) else {
            unreachable!("a streak is retrying");
        };
        assert_eq!(attempt, 4, "three failures: the next is the fourth try");
        assert!(at > 1_000, "in the future");
        assert_eq!(b.waiting("b"), None, "per account");
        b.clear("a");
        assert_eq!(b.waiting("a"), None);
    }
}
