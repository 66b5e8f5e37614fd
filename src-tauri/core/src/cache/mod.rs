//! MSAL's unified token cache (ENTRA-PROTOCOL.md section 5), in memory.
//!
//! Guarantees:
//! - the JSON it writes is read by MSAL Python, MSAL .NET/JS and Azure CLI (`msal_token_cache.json`);
//! - it reads theirs, matching entries by their fields, never by their keys;
//! - unknown sections and fields, and known fields holding non-strings, are written back
//!   byte-for-byte; known string fields keep their exact text;
//! - it never reads the clock: every time-dependent call takes `now` (epoch seconds).
//!
//! It knows nothing of files, keys or HTTP: see [`crate::persist`] for the bytes at rest.
//!
//! Layout: the entry types and their keys (`schema`), id_token and client_info decoding
//! (`claims`), host aliases (`environment`), JSON (`json`), ingesting token responses
//! (`ingest`), lookup (`lookup`), accounts (`accounts`), merge (`merge`).

mod accounts;
mod claims;
mod environment;
mod ingest;
mod json;
mod lookup;
mod merge;
mod schema;

use indexmap::IndexMap;
use serde::Deserialize;

pub use accounts::{AccountInfo, select_account};
pub use claims::{Audience, ClientInfo, IdTokenClaims, decode_part};
pub use environment::{environment_aliases, same_environment};
pub use ingest::{Grant, Ingested, TokenEvent, TokenResponse};
pub use lookup::{AtQuery, FoundToken, RealmPreference, canonical_scope, same_scope};
pub use schema::{
    AccessToken, Account, AppMetadata, IdToken, RawObject, RefreshToken, access_token_key,
    account_key, app_metadata_key, epoch, id_token_key, refresh_token_key,
};

use crate::secret::Secret;

/// An access token with less than this many seconds left is treated as expired (MSAL: 5 minutes).
pub const EXPIRY_SKEW_SECS: i64 = 300;

/// The longest an access token may have left (Entra's longest-lived, CAE tokens, live up to 28
/// hours). A cached token claiming more, from a damaged or hostile file or a broken server,
/// counts as expired; so does one whose time is not a number.
pub const MAX_TOKEN_LIFE_SECS: i64 = 48 * 3600;

/// The device code grant type (RFC 8628), also the `account_source` of accounts it signs in.
pub const DEVICE_CODE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// Scopes MSAL adds to every request and leaves out of access-token lookups.
pub const RESERVED_SCOPES: [&str; 3] = ["openid", "profile", "offline_access"];

/// tokentray's own state, kept in the cache file (so it changes atomically with the tokens)
/// under the `tokentray` section, and left out of exports.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, Deserialize)]
pub struct AppState {
    /// `home_account_id` of the default account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_account: Option<String>,
    /// Accounts that must sign in again: `home_account_id` -> reason.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub needs_sign_in: std::collections::BTreeMap<String, String>,
    /// The loopback endpoint's secret (256 random bits, base64url), stable until rotated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint_secret: Option<Secret>,
    /// Until when (epoch seconds) Entra asked every tokentray process to leave it alone: a
    /// `Retry-After` it sent with a 429 or 5xx, kept here so that other processes (each
    /// `tokentray token`, the helpers) honour it too instead of repeating the request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authority_retry_at: Option<i64>,
    /// Tenant domains signed in to (`login --tenant contoso.com`), lowercase -> the tenant id
    /// Entra answered for them: tokens are recorded under the id, as MSAL records them.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub tenant_ids: std::collections::BTreeMap<String, String>,
    /// Programs allowed or denied tokens under `require_approval` (`crate::approval`):
    /// executable path -> decision.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub clients: std::collections::BTreeMap<String, ClientRule>,
    /// Whether the tray app has switched start at login on after its first sign-in (it does
    /// that once; the user may turn it off).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub start_at_login_offered: bool,
    /// Requests that need an interactive sign-in of their own (a Conditional Access step-up,
    /// consent, a claims challenge): `home_account_id` -> the latest, which `tokentray login`
    /// and the window's "Sign in again" sign in for. A sign-in that covers it clears it.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub challenges: std::collections::BTreeMap<String, Challenge>,
    /// Whether the tray app has offered to let every app use tokentray (the session
    /// environment, `crate::session_env`) after a sign-in: it offers once.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub every_app_offered: bool,
}

impl AppState {
    fn is_empty(&self) -> bool {
        self.default_account.is_none()
            && self.needs_sign_in.is_empty()
            && self.endpoint_secret.is_none()
            && self.authority_retry_at.is_none()
            && self.tenant_ids.is_empty()
            && self.clients.is_empty()
            && !self.start_at_login_offered
            && !self.every_app_offered
            && self.challenges.is_empty()
    }
}

/// A request of one account that only an interactive sign-in for exactly it can cure.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, Deserialize)]
pub struct Challenge {
    /// The scopes asked for, space-separated.
    pub scopes: String,
    /// The tenant asked for, if one was named (else the configured one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    /// Entra's claims challenge (JSON), sent back as the sign-in's `claims` parameter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claims: Option<String>,
    /// What Entra said (first line, trace and correlation ids).
    pub reason: String,
}

impl Challenge {
    /// What it waits for, for people: `SCOPES` or `SCOPES in tenant T`.
    pub fn target(&self) -> String {
        match &self.tenant {
            Some(t) => format!("{} in tenant {t}", self.scopes),
            None => self.scopes.clone(),
        }
    }

    /// Its scopes, one per item, as a sign-in asks for them.
    pub fn scope_list(&self) -> Vec<String> {
        self.scopes.split_whitespace().map(str::to_string).collect()
    }

    /// Whether a sign-in for `scopes` in `tenant` answers it: every scope it names was asked
    /// for, in its tenant (a challenge naming none is the configured tenant's, `default_tenant`).
    pub fn answered_by(&self, scopes: &[String], tenant: &str, default_tenant: &str) -> bool {
        let wanted = self.tenant.as_deref().unwrap_or(default_tenant);
        wanted.eq_ignore_ascii_case(tenant)
            && self
                .scopes
                .split_whitespace()
                .all(|s| scopes.iter().any(|g| same_scope(g, s)))
    }
}

/// A kept decision about one executable: it holds for the content whose SHA-256 it names, so
/// an executable replaced or updated since is asked about again.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, Deserialize)]
pub struct ClientRule {
    /// Allowed or denied.
    pub verdict: Verdict,
    /// SHA-256 of the executable's content, lowercase hex.
    pub sha256: String,
    /// When it was decided, epoch seconds.
    pub decided: i64,
}

/// A kept decision's outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Always allowed.
    Allow,
    /// Always denied.
    Deny,
}

/// The token cache: five sections of entries plus any sections a newer writer added.
#[derive(Debug, Clone, Default)]
pub struct TokenCache {
    /// tokentray's state (default account, accounts that need sign-in).
    pub state: AppState,
    access_tokens: IndexMap<String, AccessToken>,
    refresh_tokens: IndexMap<String, RefreshToken>,
    id_tokens: IndexMap<String, IdToken>,
    accounts: IndexMap<String, Account>,
    app_metadata: IndexMap<String, AppMetadata>,
    unknown_sections: RawObject,
    /// home_account_id -> positions of its access tokens in `access_tokens`; kept in step
    /// (appends keep positions; removals rebuild it).
    at_index: foldhash::HashMap<String, Vec<usize>>,
}

/// Entry counts per section.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Counts {
    /// Access tokens.
    pub access_tokens: usize,
    /// Refresh tokens.
    pub refresh_tokens: usize,
    /// Id tokens.
    pub id_tokens: usize,
    /// Accounts.
    pub accounts: usize,
    /// App metadata.
    pub app_metadata: usize,
}

impl TokenCache {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// The realm tokens for `tenant` are recorded under: the tenant id for a domain signed in
    /// to before, else `tenant` as given.
    pub fn tenant_id<'t>(&'t self, tenant: &'t str) -> &'t str {
        if !tenant.contains('.') {
            return tenant;
        }
        self.state
            .tenant_ids
            .get(&tenant.to_ascii_lowercase())
            .map_or(tenant, String::as_str)
    }

    /// Entry counts per section.
    pub fn counts(&self) -> Counts {
        Counts {
            access_tokens: self.access_tokens.len(),
            refresh_tokens: self.refresh_tokens.len(),
            id_tokens: self.id_tokens.len(),
            accounts: self.accounts.len(),
            app_metadata: self.app_metadata.len(),
        }
    }

    /// All access tokens, by key.
    pub fn access_tokens(&self) -> &IndexMap<String, AccessToken> {
        &self.access_tokens
    }

    /// All refresh tokens, by key.
    pub fn refresh_tokens(&self) -> &IndexMap<String, RefreshToken> {
        &self.refresh_tokens
    }

    /// Stores an access token under MSAL Python's key, replacing any entry with that key.
    pub fn put_access_token(&mut self, at: AccessToken) {
        let key = access_token_key(&at);
        let hid = at.home_account_id.clone().unwrap_or_default();
        let (position, replaced) = self.access_tokens.insert_full(key, at);
        if replaced.is_none() {
            self.at_index.entry(hid).or_default().push(position);
        }
    }

    fn remove_access_tokens(&mut self, mut doomed: impl FnMut(&AccessToken) -> bool) -> usize {
        let before = self.access_tokens.len();
        self.access_tokens.retain(|_, at| !doomed(at));
        let removed = before - self.access_tokens.len();
        if removed > 0 {
            self.rebuild_index();
        }
        removed
    }

    fn rebuild_index(&mut self) {
        self.at_index.clear();
        for (position, at) in self.access_tokens.values().enumerate() {
            let hid = at.home_account_id.clone().unwrap_or_default();
            self.at_index.entry(hid).or_default().push(position);
        }
    }
}

#[cfg(test)]
mod tests;
