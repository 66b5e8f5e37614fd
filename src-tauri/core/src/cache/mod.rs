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

mod claims;
mod schema;

use std::collections::HashMap;

use indexmap::IndexMap;
use serde::Deserialize;
use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::value::RawValue;
use zeroize::Zeroizing;

pub use claims::{Audience, ClientInfo, IdTokenClaims, decode_part};
pub use schema::{
    AccessToken, Account, AppMetadata, IdToken, RawObject, RefreshToken, access_token_key,
    account_key, app_metadata_key, epoch, id_token_key, refresh_token_key,
};

use crate::secret::Secret;
use crate::{Error, Result};

/// An access token with less than this many seconds left is treated as expired (MSAL: 5 minutes).
pub const EXPIRY_SKEW_SECS: i64 = 300;

/// The device code grant type (RFC 8628), also the `account_source` of accounts it signs in.
pub const DEVICE_CODE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// Scopes MSAL adds to every request and leaves out of access-token lookups.
pub const RESERVED_SCOPES: [&str; 3] = ["openid", "profile", "offline_access"];

/// Host groups that are one environment (instance discovery metadata, ENTRA-PROTOCOL.md 1.2).
const ALIAS_GROUPS: &[&[&str]] = &[
    &[
        "login.microsoftonline.com",
        "login.windows.net",
        "login.microsoft.com",
        "sts.windows.net",
    ],
    &["login.partner.microsoftonline.cn", "login.chinacloudapi.cn"],
    &["login.microsoftonline.us", "login.usgovcloudapi.net"],
    &["login-us.microsoftonline.com"],
];

/// Whether two hosts are the same environment (equal, or aliases of one cloud). Allocation-free:
/// it is on the token-serving path.
pub fn same_environment(a: &str, b: &str) -> bool {
    a.eq_ignore_ascii_case(b)
        || ALIAS_GROUPS.iter().any(|g| {
            g.iter().any(|h| h.eq_ignore_ascii_case(a))
                && g.iter().any(|h| h.eq_ignore_ascii_case(b))
        })
}

/// The hosts that count as the same environment as `environment` (itself first).
pub fn environment_aliases(environment: &str) -> Vec<String> {
    let env = environment.to_ascii_lowercase();
    let mut out = vec![env.clone()];
    if let Some(group) = ALIAS_GROUPS.iter().find(|g| g.contains(&env.as_str())) {
        out.extend(
            group
                .iter()
                .filter(|h| **h != env)
                .map(|h| (*h).to_string()),
        );
    }
    out
}

/// The section names of the unified schema, in the order tokentray writes them.
const SECTIONS: [&str; 5] = [
    "AccessToken",
    "RefreshToken",
    "IdToken",
    "Account",
    "AppMetadata",
];

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
}

impl AppState {
    fn is_empty(&self) -> bool {
        self.default_account.is_none()
            && self.needs_sign_in.is_empty()
            && self.endpoint_secret.is_none()
    }
}

/// The section name of [`AppState`].
const STATE_SECTION: &str = "tokentray";

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
    at_index: HashMap<String, Vec<usize>>,
}

/// How a token response was obtained; decides `account_source` and refresh-token handling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grant<'a> {
    /// Authorization code (browser) flow.
    AuthorizationCode,
    /// Device code flow.
    DeviceCode,
    /// A refresh; the new refresh token replaces the secret of the entry with this key
    /// (which may be a family sibling's), and no account is created.
    RefreshToken {
        /// Key of the refresh-token entry that was redeemed.
        used: &'a str,
    },
}

impl Grant<'_> {
    fn account_source(&self) -> Option<&'static str> {
        match self {
            Self::AuthorizationCode => Some("authorization_code"),
            Self::DeviceCode => Some(DEVICE_CODE_GRANT),
            Self::RefreshToken { .. } => None,
        }
    }
}

/// The context of a token response: who asked, where, for what.
#[derive(Debug, Clone, Copy)]
pub struct TokenEvent<'a> {
    /// Client id that made the request.
    pub client_id: &'a str,
    /// Authority host (lower-case, no port): the cache `environment`.
    pub environment: &'a str,
    /// Tenant segment of the token endpoint path: the cache `realm`.
    pub realm: &'a str,
    /// Scopes requested (used as the target when the response has no `scope`).
    pub requested_scopes: &'a [String],
    /// Which grant produced it.
    pub grant: Grant<'a>,
}

/// A successful token endpoint response (ENTRA-PROTOCOL.md 2.1).
#[derive(Debug, Default, Deserialize)]
pub struct TokenResponse {
    /// Usually `Bearer`.
    pub token_type: Option<String>,
    /// Granted scopes, space-separated.
    pub scope: Option<String>,
    /// Seconds until the access token expires (integer or, from v1-like endpoints, a string).
    #[serde(default, deserialize_with = "int_or_string")]
    pub expires_in: Option<i64>,
    /// Seconds of extended lifetime.
    #[serde(default, deserialize_with = "int_or_string")]
    pub ext_expires_in: Option<i64>,
    /// Seconds after which to refresh proactively.
    #[serde(default, deserialize_with = "int_or_string")]
    pub refresh_in: Option<i64>,
    /// Absolute expiry (managed-identity style responses).
    #[serde(default, deserialize_with = "int_or_string")]
    pub expires_on: Option<i64>,
    /// The access token.
    pub access_token: Option<Secret>,
    /// The refresh token.
    pub refresh_token: Option<Secret>,
    /// The id token.
    pub id_token: Option<Secret>,
    /// base64url `{uid, utid}`.
    pub client_info: Option<String>,
    /// `"1"` if the client is in the Microsoft family.
    pub foci: Option<String>,
}

fn int_or_string<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> std::result::Result<Option<i64>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum IntOrString {
        Int(i64),
        Float(f64),
        Str(String),
    }
    Ok(match Option::<IntOrString>::deserialize(d)? {
        None => None,
        Some(IntOrString::Int(i)) => Some(i),
        #[allow(clippy::cast_possible_truncation)]
        Some(IntOrString::Float(f)) => Some(f as i64),
        Some(IntOrString::Str(s)) => s.trim().parse().ok(),
    })
}

/// What an ingested response established.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ingested {
    /// `{uid}.{utid}` of the account, if the response identified one.
    pub home_account_id: Option<String>,
    /// Its username, if the id_token named one.
    pub username: Option<String>,
}

/// A lookup for an access token.
#[derive(Debug, Clone, Copy)]
pub struct AtQuery<'a> {
    /// The account.
    pub home_account_id: &'a str,
    /// Authority host; its aliases match too.
    pub environment: &'a str,
    /// The client id.
    pub client_id: &'a str,
    /// Tenant; `None` accepts any realm.
    pub realm: Option<&'a str>,
    /// Requested scopes; reserved scopes are ignored. An entry matches if its target is a
    /// superset (exact, case-sensitive strings, as in MSAL).
    pub scopes: &'a [String],
}

/// An access token found in the cache with at least [`EXPIRY_SKEW_SECS`] left.
#[derive(Debug, Clone, Copy)]
pub struct FoundToken<'a> {
    /// Its cache key.
    pub key: &'a str,
    /// The entry.
    pub entry: &'a AccessToken,
    /// Expiry, epoch seconds.
    pub expires_on: i64,
    /// `refresh_on` has passed: refresh proactively, but the token is still good to serve.
    pub refresh_due: bool,
}

/// An account as the user sees it (Account entries of one `home_account_id`, grouped).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AccountInfo {
    /// `{uid}.{utid}`: the stable id.
    pub home_account_id: String,
    /// Authority host.
    pub environment: String,
    /// Sign-in name.
    pub username: String,
    /// Display name, from the id token, if known.
    pub name: Option<String>,
    /// Object id in the home tenant.
    pub local_account_id: Option<String>,
    /// Home tenant id (the `utid` of `home_account_id`).
    pub home_tenant: Option<String>,
    /// Every realm the account has entries for.
    pub realms: Vec<String>,
    /// Whether this is the default account.
    pub is_default: bool,
    /// Why the account must sign in again, if it must.
    pub needs_sign_in: Option<String>,
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

    /// Reads MSAL JSON. Empty or whitespace-only input is an empty cache, as in MSAL.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] if the text is not a JSON object of objects; the message says
    /// where (line and column), never what the file holds.
    pub fn from_json(bytes: &[u8], what: &str) -> Result<Self> {
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Self::new());
        }
        let bad = |e: serde_json::Error| {
            Error::invalid(
                what,
                format!(
                    "not an MSAL token cache (invalid JSON at line {}, column {}: {})",
                    e.line(),
                    e.column(),
                    classify(&e)
                ),
            )
        };
        let mut cache: TokenCache = serde_json::from_slice(bytes).map_err(bad)?;
        cache.rebuild_index();
        Ok(cache)
    }

    /// The cache file's JSON: compact, with tokentray's state section. Zeroed when dropped.
    pub fn to_file_json(&self) -> Zeroizing<Vec<u8>> {
        let mut serializer = serde_json::Serializer::new(self.buffer());
        self.write(&mut serializer, true);
        Zeroizing::new(serializer.into_inner())
    }

    /// Pure MSAL JSON for other tools, indented by 4 like MSAL Python's `serialize()`, without
    /// tokentray's state. Zeroed when dropped.
    pub fn to_msal_json(&self) -> Zeroizing<Vec<u8>> {
        let fmt = serde_json::ser::PrettyFormatter::with_indent(b"    ");
        let mut serializer = serde_json::Serializer::with_formatter(self.buffer(), fmt);
        self.write(&mut serializer, false);
        Zeroizing::new(serializer.into_inner())
    }

    fn write<F: serde_json::ser::Formatter>(
        &self,
        serializer: &mut serde_json::Serializer<Vec<u8>, F>,
        with_state: bool,
    ) {
        let view = View {
            cache: self,
            with_state,
        };
        // Serializing strings and raw JSON into a Vec cannot fail.
        let written = view.serialize(serializer);
        debug_assert!(written.is_ok());
    }

    /// An output buffer big enough for the whole cache, so it is not reallocated (and no
    /// unzeroed copy of the tokens is left behind) while writing.
    fn buffer(&self) -> Vec<u8> {
        Vec::with_capacity(self.estimated_size())
    }

    fn estimated_size(&self) -> usize {
        self.access_tokens.len() * 1800 + self.refresh_tokens.len() * 1200 + 1024
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

    /// All Account entries, by key.
    pub fn account_entries(&self) -> &IndexMap<String, Account> {
        &self.accounts
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

    /// Ingests a successful token response the way MSAL Python's `TokenCache.add` does
    /// (ENTRA-PROTOCOL.md 5.4): access token, account, id token, refresh token (rotated in place
    /// for a refresh grant), app metadata.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] if the id_token cannot be decoded or is not for `client_id`;
    /// nothing is written then.
    pub fn ingest(
        &mut self,
        event: &TokenEvent<'_>,
        response: TokenResponse,
        now: i64,
    ) -> Result<Ingested> {
        let claims = match &response.id_token {
            Some(idt) => {
                let claims = IdTokenClaims::decode(idt).ok_or_else(|| {
                    Error::invalid("id_token from the authority", "not a decodable JWT")
                })?;
                if !claims.aud.contains(event.client_id) {
                    return Err(Error::invalid(
                        "id_token from the authority",
                        format!(
                            "its audience is not this client ({}); refusing the sign-in",
                            event.client_id
                        ),
                    ));
                }
                Some(claims)
            }
            None => None,
        };
        let (client_info_known, home_account_id) =
            match response.client_info.as_deref().and_then(ClientInfo::decode) {
                Some(ci) if ci.home_account_id().is_some() => (true, ci.home_account_id()),
                _ => match claims.as_ref().and_then(|c| c.sub.clone()) {
                    Some(sub) => (true, Some(sub)),
                    None => (false, None),
                },
            };
        let target = {
            let granted: Vec<&str> = response
                .scope
                .as_deref()
                .map(|s| s.split_whitespace().collect())
                .unwrap_or_default();
            let mut scopes: Vec<&str> = if granted.is_empty() {
                event.requested_scopes.iter().map(String::as_str).collect()
            } else {
                granted
            };
            scopes.sort_unstable();
            scopes.join(" ")
        };
        let s = |v: &str| Some(v.to_string());
        let env = s(event.environment);
        let realm = s(event.realm);
        let client = s(event.client_id);

        if let Some(access_token) = response.access_token {
            let default_expires_in = response.expires_on.map_or(600, |on| on - now);
            let expires_in = response.expires_in.unwrap_or(default_expires_in);
            let ext_expires_in = response.ext_expires_in.unwrap_or(expires_in);
            let mut at = AccessToken {
                credential_type: s("AccessToken"),
                secret: Some(access_token),
                home_account_id: home_account_id.clone(),
                environment: env.clone(),
                client_id: client.clone(),
                target: Some(target.clone()),
                realm: realm.clone(),
                token_type: Some(
                    response
                        .token_type
                        .clone()
                        .unwrap_or_else(|| "Bearer".into()),
                ),
                cached_at: Some(now.to_string()),
                expires_on: Some((now + expires_in).to_string()),
                extended_expires_on: Some((now + ext_expires_in).to_string()),
                refresh_on: response.refresh_in.map(|r| (now + r).to_string()),
                ..AccessToken::default()
            };
            if home_account_id.is_none() {
                at.extra.insert("home_account_id".into(), null_raw());
            }
            self.put_access_token(at);
        }

        let creates_account = !matches!(event.grant, Grant::RefreshToken { .. });
        if client_info_known && creates_account {
            let claims = claims.clone().unwrap_or_default();
            let account = Account {
                home_account_id: home_account_id.clone(),
                environment: env.clone(),
                realm: realm.clone(),
                local_account_id: claims.oid.clone().or_else(|| claims.sub.clone()),
                username: Some(claims.username().unwrap_or_default().to_string()),
                authority_type: s(if event.realm == "adfs" {
                    "ADFS"
                } else {
                    "MSSTS"
                }),
                account_source: event.grant.account_source().map(str::to_string),
                ..Account::default()
            };
            self.accounts.insert(account_key(&account), account);
        }

        if let Some(id_token) = response.id_token {
            let idt = IdToken {
                credential_type: s("IdToken"),
                secret: Some(id_token),
                home_account_id: home_account_id.clone(),
                environment: env.clone(),
                realm: realm.clone(),
                client_id: client.clone(),
                ..IdToken::default()
            };
            self.id_tokens.insert(id_token_key(&idt), idt);
        }

        if let Some(refresh_token) = response.refresh_token {
            match event.grant {
                Grant::RefreshToken { used } if self.refresh_tokens.contains_key(used) => {
                    if let Some(rt) = self.refresh_tokens.get_mut(used) {
                        rt.secret = Some(refresh_token);
                        rt.last_modification_time = Some(now.to_string());
                    }
                }
                _ => {
                    let rt = RefreshToken {
                        credential_type: s("RefreshToken"),
                        secret: Some(refresh_token),
                        home_account_id: home_account_id.clone(),
                        environment: env.clone(),
                        client_id: client.clone(),
                        target: Some(target),
                        last_modification_time: Some(now.to_string()),
                        family_id: response.foci.clone(),
                        ..RefreshToken::default()
                    };
                    self.refresh_tokens.insert(refresh_token_key(&rt), rt);
                }
            }
        }

        let meta = AppMetadata {
            client_id: client,
            environment: env,
            family_id: response.foci,
            ..AppMetadata::default()
        };
        self.app_metadata.insert(app_metadata_key(&meta), meta);

        Ok(Ingested {
            home_account_id,
            username: claims.and_then(|c| c.username().map(str::to_string)),
        })
    }

    /// The best access token for `query`: field match, scope superset, at least
    /// [`EXPIRY_SKEW_SECS`] left; of several, the one that lives longest.
    pub fn find_access_token(&self, query: &AtQuery<'_>, now: i64) -> Option<FoundToken<'_>> {
        self.find_access_token_lasting(query, now, EXPIRY_SKEW_SECS)
    }

    /// [`TokenCache::find_access_token`] with at least `min_left` seconds left instead of the
    /// 5-minute skew (0: merely not expired, for a token just obtained).
    pub fn find_access_token_lasting(
        &self,
        query: &AtQuery<'_>,
        now: i64,
        min_left: i64,
    ) -> Option<FoundToken<'_>> {
        let rank = |realm: Option<&str>| query.realm.is_none_or(|r| realm == Some(r)).then_some(0);
        self.find_access_token_ranked(
            &AtQuery {
                realm: None,
                ..*query
            },
            now,
            min_left,
            rank,
        )
    }

    /// One pass over the account's access tokens: among those matching `query` (its `realm`
    /// included, if any) with at least `min_left` seconds left, the one whose realm `rank`s
    /// lowest (`None`: not acceptable), then the one that lives longest.
    pub fn find_access_token_ranked(
        &self,
        query: &AtQuery<'_>,
        now: i64,
        min_left: i64,
        rank: impl Fn(Option<&str>) -> Option<u8>,
    ) -> Option<FoundToken<'_>> {
        let wanted = || {
            query
                .scopes
                .iter()
                .map(String::as_str)
                .filter(|s| !RESERVED_SCOPES.contains(s))
        };
        let positions = self.at_index.get(query.home_account_id)?;
        let mut best: Option<(u8, FoundToken<'_>)> = None;
        for &position in positions {
            let Some((key, at)) = self.access_tokens.get_index(position) else {
                continue;
            };
            let Some(realm_rank) = rank(at.realm.as_deref()) else {
                continue;
            };
            let matches = at.client_id.as_deref() == Some(query.client_id)
                && at
                    .environment
                    .as_deref()
                    .is_some_and(|e| same_environment(e, query.environment))
                && query.realm.is_none_or(|r| at.realm.as_deref() == Some(r))
                && at.key_id.is_none()
                && at
                    .token_type
                    .as_deref()
                    .is_none_or(|t| t.eq_ignore_ascii_case("bearer"))
                && at.secret.is_some()
                && {
                    let target = at.target.as_deref().unwrap_or("");
                    wanted().all(|w| target.split_ascii_whitespace().any(|t| t == w))
                };
            if !matches {
                continue;
            }
            let Some(expires_on) = epoch(&at.expires_on) else {
                continue;
            };
            if expires_on - now < min_left {
                continue;
            }
            let better = best.as_ref().is_none_or(|(r, b)| {
                realm_rank < *r || (realm_rank == *r && expires_on > b.expires_on)
            });
            if better {
                let refresh_due = epoch(&at.refresh_on).is_some_and(|r| r < now);
                let found = FoundToken {
                    key,
                    entry: at,
                    expires_on,
                    refresh_due,
                };
                best = Some((realm_rank, found));
            }
        }
        best.map(|(_, found)| found)
    }

    /// Refresh tokens usable for `client_id` on this account, in the order to try them
    /// (ENTRA-PROTOCOL.md 5.6-5.7): family (FOCI) tokens first unless the app is known not to
    /// be in the family, then the app's own; each group newest first. Returns keys.
    pub fn refresh_token_candidates(
        &self,
        home_account_id: &str,
        environment: &str,
        client_id: &str,
    ) -> Vec<String> {
        let envs = environment_aliases(environment);
        let in_env = |e: &Option<String>| e.as_deref().is_some_and(|e| envs.iter().any(|a| a == e));
        let meta = self
            .app_metadata
            .values()
            .find(|m| m.client_id.as_deref() == Some(client_id) && in_env(&m.environment));
        let try_family = meta.is_none_or(|m| m.family_id.is_some());
        let mut mine: Vec<(&String, &RefreshToken)> = self
            .refresh_tokens
            .iter()
            .filter(|(_, rt)| {
                rt.home_account_id.as_deref() == Some(home_account_id)
                    && in_env(&rt.environment)
                    && rt.secret.is_some()
            })
            .collect();
        mine.sort_by_key(|(_, rt)| std::cmp::Reverse(epoch(&rt.last_modification_time)));
        let family = mine
            .iter()
            .filter(|(_, rt)| try_family && rt.family_id.as_deref() == Some("1"));
        let own = mine
            .iter()
            .filter(|(_, rt)| rt.client_id.as_deref() == Some(client_id));
        let mut out: Vec<String> = Vec::new();
        for (key, _) in family.chain(own) {
            if !out.contains(key) {
                out.push((*key).clone());
            }
        }
        out
    }

    /// The accounts, one per `home_account_id` (and environment), in first-seen order.
    pub fn accounts(&self) -> Vec<AccountInfo> {
        let mut out: Vec<AccountInfo> = Vec::new();
        for acc in self.accounts.values() {
            let (Some(hid), Some(env)) = (&acc.home_account_id, &acc.environment) else {
                continue;
            };
            if acc
                .authority_type
                .as_deref()
                .is_some_and(|t| t != "MSSTS" && t != "ADFS")
            {
                continue;
            }
            let realm = acc.realm.clone().unwrap_or_default();
            if let Some(existing) = out.iter_mut().find(|a| {
                &a.home_account_id == hid && environment_aliases(env).contains(&a.environment)
            }) {
                if !existing.realms.contains(&realm) {
                    existing.realms.push(realm);
                }
                if existing.username.is_empty() {
                    existing.username = acc.username.clone().unwrap_or_default();
                }
                continue;
            }
            let name = acc.name.clone().or_else(|| self.display_name(hid));
            out.push(AccountInfo {
                home_account_id: hid.clone(),
                environment: env.clone(),
                username: acc.username.clone().unwrap_or_default(),
                name,
                local_account_id: acc.local_account_id.clone(),
                home_tenant: hid.split_once('.').map(|(_, utid)| utid.to_string()),
                realms: vec![realm],
                is_default: self.state.default_account.as_deref() == Some(hid.as_str()),
                needs_sign_in: self.state.needs_sign_in.get(hid).cloned(),
            });
        }
        out
    }

    fn display_name(&self, home_account_id: &str) -> Option<String> {
        self.id_tokens
            .values()
            .filter(|t| t.home_account_id.as_deref() == Some(home_account_id))
            .filter_map(|t| t.secret.as_ref().and_then(IdTokenClaims::decode))
            .find_map(|c| c.name)
    }

    /// MSAL's `remove_account` (ENTRA-PROTOCOL.md 5.8): in every realm of the account's
    /// environment, removes the app's refresh tokens and its family's, all access tokens, id
    /// tokens and Account entries. App metadata is kept. Returns how many entries went.
    pub fn remove_account(
        &mut self,
        home_account_id: &str,
        environment: &str,
        client_id: &str,
    ) -> usize {
        let envs = environment_aliases(environment);
        let in_env = |e: &Option<String>| e.as_deref().is_some_and(|e| envs.iter().any(|a| a == e));
        let mine = |hid: &Option<String>, env: &Option<String>| {
            hid.as_deref() == Some(home_account_id) && in_env(env)
        };
        let family = self
            .app_metadata
            .values()
            .find(|m| m.client_id.as_deref() == Some(client_id) && in_env(&m.environment))
            .and_then(|m| m.family_id.clone());
        let before = self.refresh_tokens.len() + self.id_tokens.len() + self.accounts.len();
        self.refresh_tokens.retain(|_, rt| {
            !(mine(&rt.home_account_id, &rt.environment)
                && (rt.client_id.as_deref() == Some(client_id)
                    || (family.is_some() && rt.family_id == family)))
        });
        self.id_tokens
            .retain(|_, t| !mine(&t.home_account_id, &t.environment));
        self.accounts
            .retain(|_, a| !mine(&a.home_account_id, &a.environment));
        let after = self.refresh_tokens.len() + self.id_tokens.len() + self.accounts.len();
        self.state.needs_sign_in.remove(home_account_id);
        if self.state.default_account.as_deref() == Some(home_account_id) {
            self.state.default_account = None;
        }
        (before - after)
            + self.remove_access_tokens(|at| mine(&at.home_account_id, &at.environment))
    }

    /// Removes access tokens that expired before `now` (MSAL's search does the same).
    pub fn remove_expired(&mut self, now: i64) -> usize {
        self.remove_access_tokens(|at| epoch(&at.expires_on).is_none_or(|e| e < now))
    }

    /// Merges another cache (e.g. Azure CLI's) into this one. Its entries are re-keyed by their
    /// fields with MSAL Python's key makers; on a clash the fresher entry wins (later
    /// `expires_on` for access tokens, later `last_modification_time` for refresh tokens, the
    /// incoming one otherwise). Unknown sections are added if absent. Returns entries taken.
    pub fn merge(&mut self, other: TokenCache) -> usize {
        let mut taken = 0;
        for (_, at) in other.access_tokens {
            let key = access_token_key(&at);
            let fresher = self
                .access_tokens
                .get(&key)
                .is_none_or(|old| epoch(&at.expires_on) > epoch(&old.expires_on));
            if fresher {
                self.put_access_token(at);
                taken += 1;
            }
        }
        for (_, rt) in other.refresh_tokens {
            let key = refresh_token_key(&rt);
            let fresher = self.refresh_tokens.get(&key).is_none_or(|old| {
                epoch(&rt.last_modification_time) >= epoch(&old.last_modification_time)
            });
            if fresher {
                self.refresh_tokens.insert(key, rt);
                taken += 1;
            }
        }
        for (_, t) in other.id_tokens {
            self.id_tokens.insert(id_token_key(&t), t);
            taken += 1;
        }
        for (_, a) in other.accounts {
            self.accounts.insert(account_key(&a), a);
            taken += 1;
        }
        for (_, m) in other.app_metadata {
            let key = app_metadata_key(&m);
            let keep_family = self
                .app_metadata
                .get(&key)
                .and_then(|old| old.family_id.clone());
            let mut m = m;
            if m.family_id.is_none() {
                m.family_id = keep_family;
            }
            self.app_metadata.insert(key, m);
            taken += 1;
        }
        for (name, raw) in other.unknown_sections {
            self.unknown_sections.entry(name).or_insert(raw);
        }
        taken
    }
}

struct View<'a> {
    cache: &'a TokenCache,
    with_state: bool,
}

impl Serialize for View<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        let c = self.cache;
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry(SECTIONS[0], &c.access_tokens)?;
        map.serialize_entry(SECTIONS[1], &c.refresh_tokens)?;
        map.serialize_entry(SECTIONS[2], &c.id_tokens)?;
        map.serialize_entry(SECTIONS[3], &c.accounts)?;
        map.serialize_entry(SECTIONS[4], &c.app_metadata)?;
        for (name, raw) in &c.unknown_sections {
            map.serialize_entry(name, raw)?;
        }
        if self.with_state && !c.state.is_empty() {
            map.serialize_entry(STATE_SECTION, &c.state)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for TokenCache {
    /// One pass over the text: known sections into typed entries, others kept raw.
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct Sections;
        impl<'de> serde::de::Visitor<'de> for Sections {
            type Value = TokenCache;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an MSAL token cache (a JSON object of sections)")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> std::result::Result<TokenCache, A::Error> {
                let mut cache = TokenCache::new();
                while let Some(name) = map.next_key::<String>()? {
                    match name.as_str() {
                        "AccessToken" => cache.access_tokens = map.next_value()?,
                        "RefreshToken" => cache.refresh_tokens = map.next_value()?,
                        "IdToken" => cache.id_tokens = map.next_value()?,
                        "Account" => cache.accounts = map.next_value()?,
                        "AppMetadata" => cache.app_metadata = map.next_value()?,
                        STATE_SECTION => cache.state = map.next_value()?,
                        _ => {
                            let raw: &'de RawValue = map.next_value()?;
                            cache.unknown_sections.insert(name, raw.to_owned());
                        }
                    }
                }
                Ok(cache)
            }
        }
        d.deserialize_map(Sections)
    }
}

fn null_raw() -> Box<RawValue> {
    // `Box<RawValue>::default()` is JSON `null`.
    Box::default()
}

/// Describes a JSON error without quoting the input (it may hold tokens).
fn classify(e: &serde_json::Error) -> &'static str {
    use serde_json::error::Category;
    match e.classify() {
        Category::Eof => "the file ends early: truncated?",
        Category::Syntax => "syntax error",
        Category::Data => "a section or entry is not a JSON object",
        Category::Io => "read error",
    }
}

#[cfg(test)]
mod tests;
