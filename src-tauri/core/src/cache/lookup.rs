//! Finding the access token and refresh tokens for a request.

use super::claims::is_cae;
use super::environment::{environment_aliases, same_environment};
use super::{AccessToken, MAX_TOKEN_LIFE_SECS, RESERVED_SCOPES, RefreshToken, TokenCache, epoch};

/// Access tokens with more left than this are checked for being CAE tokens ([`is_cae`]): Entra's
/// plain tokens live 60-90 minutes, its CAE tokens 20-28 hours, so the check (a base64 and JSON
/// decode) stays off the path of every ordinary token.
const CAE_CHECK_SECS: i64 = 2 * 3600;

/// Whether two scopes name the same permission: equal, or `.default` of the same resource
/// however many slashes precede it (`R/.default`, azure-identity's spelling of a resource, and
/// `R//.default`, Azure CLI's spelling of ARM). Allocation-free: it is on the serving path.
pub fn same_scope(a: &str, b: &str) -> bool {
    a == b
        || match (a.strip_suffix(".default"), b.strip_suffix(".default")) {
            (Some(x), Some(y)) => x.trim_end_matches('/') == y.trim_end_matches('/'),
            _ => false,
        }
}

/// The spelling [`same_scope`] treats as one: `.default` after exactly one slash.
pub fn canonical_scope(scope: &str) -> std::borrow::Cow<'_, str> {
    match scope.strip_suffix(".default") {
        Some(resource) if resource.ends_with("//") => {
            format!("{}/.default", resource.trim_end_matches('/')).into()
        }
        _ => scope.into(),
    }
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
    /// Which tenants are acceptable, and which preferred.
    pub realm: RealmPreference<'a>,
    /// Requested scopes; reserved scopes are ignored. An entry matches if its target is a
    /// superset (exact, case-sensitive strings, as in MSAL).
    pub scopes: &'a [String],
}

/// Which realms (tenants) a lookup accepts, best first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RealmPreference<'a> {
    /// This realm only.
    Only(&'a str),
    /// Any realm: `first`, then `then`, then any other.
    Prefer {
        /// The best realm (the configured tenant).
        first: &'a str,
        /// The next best (the account's home tenant).
        then: Option<&'a str>,
    },
    /// The account's home tenant `0`: its own realm first, then a multi-tenant realm
    /// (`organizations`, `common`), whose tokens Entra issues for the home tenant; no other.
    Home(&'a str),
    /// Any realm, none preferred.
    Any,
}

impl RealmPreference<'_> {
    /// How good `realm` is (lower is better); `None`: not acceptable.
    fn rank(self, realm: Option<&str>) -> Option<u8> {
        match self {
            Self::Only(only) => (realm == Some(only)).then_some(0),
            Self::Prefer { first, .. } if realm == Some(first) => Some(0),
            Self::Prefer { then, .. } if realm.is_some() && realm == then => Some(1),
            Self::Prefer { .. } => Some(2),
            Self::Home(home) if realm == Some(home) => Some(0),
            Self::Home(_) => matches!(realm, Some("organizations" | "common")).then_some(1),
            Self::Any => Some(0),
        }
    }
}

/// An access token found in the cache.
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

impl TokenCache {
    /// The best access token for `query` with at least `min_left` seconds left
    /// ([`super::EXPIRY_SKEW_SECS`] for MSAL's 5 minutes; 0 for merely not expired): field
    /// match, scope superset, an acceptable realm; of several, the best-ranked realm, then the
    /// one that lives longest. One pass over the account's access tokens.
    pub fn find_access_token(
        &self,
        query: &AtQuery<'_>,
        now: i64,
        min_left: i64,
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
            let Some(realm_rank) = query.realm.rank(at.realm.as_deref()) else {
                continue;
            };
            let matches = at.client_id.as_deref() == Some(query.client_id)
                && at
                    .environment
                    .as_deref()
                    .is_some_and(|e| same_environment(e, query.environment))
                && at.key_id.is_none()
                && at
                    .token_type
                    .as_deref()
                    .is_none_or(|t| t.eq_ignore_ascii_case("bearer"))
                && at.secret.is_some()
                && {
                    let target = at.target.as_deref().unwrap_or("");
                    wanted().all(|w| target.split_ascii_whitespace().any(|t| same_scope(t, w)))
                };
            if !matches {
                continue;
            }
            let Some(expires_on) = epoch(&at.expires_on) else {
                continue;
            };
            let left = expires_on.saturating_sub(now);
            if left < min_left || left > MAX_TOKEN_LIFE_SECS {
                continue;
            }
            let better = best.as_ref().is_none_or(|(r, b)| {
                realm_rank < *r || (realm_rank == *r && expires_on > b.expires_on)
            });
            if better {
                // A long-lived CAE token (another client's, such as Azure CLI's) is replaced by
                // tokentray's own at first use (tokentray declares no CP1, so its tokens are
                // plain ones); it is still served while Entra cannot be reached.
                let refresh_due = epoch(&at.refresh_on).is_some_and(|r| r < now)
                    || (left > CAE_CHECK_SECS && at.secret.as_ref().is_some_and(is_cae));
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
}
