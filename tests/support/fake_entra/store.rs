//! The fake's mutable grant state: pending sign-ins, authorization codes, refresh tokens,
//! device codes and browser sessions. Secrets are keyed by their SHA-256 digest only.
//!
//! This module holds data; the rules that move it between states live with the endpoints
//! (`authorize`, `token`, `device`).

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use super::directory::Realm;
use super::ids::Digest;
use super::scopes::ScopeRequest;

/// How the authorization response travels back to the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseMode {
    /// 302 to `redirect_uri?code=…` (the default for `response_type=code`).
    Query,
    /// 302 to `redirect_uri#code=…`.
    Fragment,
    /// An auto-submitting HTML form POSTed to `redirect_uri`.
    FormPost,
}

/// A validated `/authorize` request, waiting for the user on the sign-in page.
#[derive(Debug, Clone)]
pub struct AuthRequest {
    /// The URL's tenant segment, resolved.
    pub realm: Realm,
    /// The application.
    pub client_id: String,
    /// Where the response goes (loopback http).
    pub redirect_uri: String,
    /// How it goes there.
    pub response_mode: ResponseMode,
    /// Echoed back verbatim.
    pub state: Option<String>,
    /// Echoed into the id_token.
    pub nonce: Option<String>,
    /// What was asked for.
    pub scopes: ScopeRequest,
    /// PKCE S256 challenge.
    pub code_challenge: String,
    /// Prefills the username.
    pub login_hint: Option<String>,
    /// `max_age` asked for: the id_token then carries `auth_time`.
    pub max_age: bool,
    /// `client_info=1` asked for.
    pub client_info: bool,
    /// The `claims` parameter (a claims challenge being answered).
    pub claims: Option<String>,
    /// When the sign-in page was shown (pending sign-ins expire after an hour).
    pub created: DateTime<Utc>,
}

/// An issued authorization code.
#[derive(Debug, Clone)]
pub struct AuthCode {
    /// The request it answers.
    pub request: AuthRequest,
    /// Who signed in.
    pub username: String,
    /// When they entered their password.
    pub auth_time: DateTime<Utc>,
    /// Past this, AADSTS70008.
    pub expires: DateTime<Utc>,
    /// Redeemed once already: AADSTS54005.
    pub redeemed: bool,
}

/// Where a refresh token stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefreshState {
    /// Usable.
    Active,
    /// Exchanged for a newer token (rotation): no longer usable.
    Rotated,
    /// Revoked through `/_fake/revoke` at this time.
    Revoked(DateTime<Utc>),
}

/// An issued refresh token.
#[derive(Debug, Clone)]
pub struct RefreshGrant {
    /// Whose.
    pub username: String,
    /// Issued to.
    pub client_id: String,
    /// Issued to a FOCI client: any family client may redeem it.
    pub family: bool,
    /// The scopes it was issued for (used when a refresh names none).
    pub scopes: ScopeRequest,
    /// When it was issued.
    pub issued: DateTime<Utc>,
    /// Past this, AADSTS700082.
    pub expires: DateTime<Utc>,
    /// Usable or not, and why.
    pub state: RefreshState,
    /// The sign-in behind it answered the claims challenge.
    pub claims_met: bool,
}

/// Where a device code stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeviceState {
    /// Waiting for the user at `/devicelogin`.
    Pending,
    /// The user signed in and approved.
    Approved {
        /// Who approved.
        username: String,
        /// When.
        at: DateTime<Utc>,
    },
    /// The user declined.
    Declined,
    /// Tokens were issued for it.
    Redeemed,
}

/// An issued device code.
#[derive(Debug, Clone)]
pub struct DeviceGrant {
    /// The URL's tenant segment when the code was requested.
    pub realm: Realm,
    /// The application polling.
    pub client_id: String,
    /// What was asked for.
    pub scopes: ScopeRequest,
    /// The code the user types (normalised: uppercase, no separators).
    pub user_code: String,
    /// Past this, `expired_token`.
    pub expires: DateTime<Utc>,
    /// Minimum seconds between polls.
    pub interval: u64,
    /// The previous poll, for `slow_down`.
    pub last_poll: Option<DateTime<Utc>>,
    /// Pending, approved, declined or redeemed.
    pub state: DeviceState,
    /// The `claims` parameter (a claims challenge being answered).
    pub claims: Option<String>,
}

/// A browser session (the sign-in cookie), for SSO and `prompt=none`.
#[derive(Debug, Clone)]
pub struct Session {
    /// Who is signed in.
    pub username: String,
    /// Entra's `session_state` value for this session.
    pub session_state: String,
    /// When they signed in.
    pub auth_time: DateTime<Utc>,
}

/// Everything the fake has issued.
#[derive(Debug, Default)]
pub struct Store {
    /// Pending sign-ins, by the `flow` id embedded in the sign-in form.
    pub flows: HashMap<String, AuthRequest>,
    /// Authorization codes.
    pub codes: HashMap<Digest, AuthCode>,
    /// Refresh tokens.
    pub refresh_tokens: HashMap<Digest, RefreshGrant>,
    /// Device codes.
    pub device_codes: HashMap<Digest, DeviceGrant>,
    /// Browser sessions, by cookie.
    pub sessions: HashMap<Digest, Session>,
    /// When each (client id, user, granted scopes) was last refreshed, within the loop window
    /// ([`super::FakeConfig::loop_limit`]).
    pub recent_refreshes: HashMap<(String, String, String), Vec<DateTime<Utc>>>,
}

/// What `/_fake/revoke` did.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct Revocation {
    /// Refresh tokens that were usable and now are not.
    pub revoked_refresh_tokens: usize,
    /// Browser sessions ended.
    pub ended_sessions: usize,
}

impl Store {
    /// Revokes every usable refresh token and every session of `username`.
    pub fn revoke(&mut self, username: &str, now: DateTime<Utc>) -> Revocation {
        let mut done = Revocation::default();
        for grant in self.refresh_tokens.values_mut() {
            if grant.username.eq_ignore_ascii_case(username) && grant.state == RefreshState::Active
            {
                grant.state = RefreshState::Revoked(now);
                if grant.expires >= now {
                    done.revoked_refresh_tokens += 1;
                }
            }
        }
        let before = self.sessions.len();
        self.sessions
            .retain(|_, s| !s.username.eq_ignore_ascii_case(username));
        done.ended_sessions = before - self.sessions.len();
        done
    }

    /// The device code a user typed, if any (case and separators ignored).
    pub fn device_by_user_code(&mut self, typed: &str) -> Option<&mut DeviceGrant> {
        let wanted = normalize_user_code(typed);
        if wanted.is_empty() {
            return None;
        }
        self.device_codes
            .values_mut()
            .find(|d| d.user_code == wanted)
    }
}

/// Uppercase, without spaces or dashes: how user codes are compared.
pub fn normalize_user_code(typed: &str) -> String {
    typed
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_uppercase())
        .collect()
}
