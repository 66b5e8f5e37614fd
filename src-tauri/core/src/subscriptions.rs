//! The user's Azure subscriptions, for the `az` shim's `az account show | list | set` and its
//! `--subscription`: listed from Azure Resource Manager with each account's own ARM token
//! (`GET {arm}/subscriptions?api-version=2022-12-01`, following `nextLink`, as Azure CLI's
//! `SubscriptionClient` does) and kept in `DATA/subscriptions.json` ([`Paths::subscriptions`]:
//! ids, names and tenants, no secret; mode 0600), with the default subscription
//! `az account set` chose.
//!
//! A list younger than [`FRESH_FOR`] is used as kept; an older one is listed again, and when ARM
//! cannot be reached the kept one is used however old, so tools keep working while Azure is
//! unreachable. The file survives reboots and is rebuilt from ARM when it is missing or
//! unreadable (it is only ever a copy of what ARM says).
//!
//! With each list the tenants the account can use are kept (`GET {arm}/tenants`, their names
//! and domains), so tenants show by name, not only by GUID. The running app or daemon keeps
//! every account's lists current ([`keep_listed`]): listed after sign-in and again once older
//! than [`FRESH_FOR`].
//!
//! Limit: an account's subscriptions are its home tenant's (the ARM token is for the account's
//! default tenant); Azure CLI also lists each guest tenant's.
//!
//! [`Paths::subscriptions`]: crate::paths::Paths::subscriptions

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::authority::Authority;
use crate::secret::Secret;
use crate::tokens::{Event, TokenRequest, Tokens};
use crate::{Error, Result, files};

/// How long a listed subscription list is used before it is listed again, in seconds.
pub const FRESH_FOR: i64 = 3600;
/// The ARM API version subscriptions are listed with (Azure CLI 2.9x's).
pub const API_VERSION: &str = "2022-12-01";
/// The most pages of subscriptions followed (ARM pages at 100 per page).
const MAX_PAGES: usize = 50;

/// One subscription, as ARM lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Subscription {
    /// The subscription id (a GUID).
    pub subscription_id: String,
    /// Its name.
    pub display_name: String,
    /// `Enabled`, `Disabled`, `Warned`, `PastDue` or `Deleted`.
    pub state: String,
    /// The tenant it belongs to.
    pub tenant_id: String,
    /// Tenants that manage it (Azure Lighthouse).
    #[serde(default)]
    pub managed_by_tenants: Vec<ManagedBy>,
}

/// A tenant that manages a subscription.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManagedBy {
    /// The managing tenant.
    #[serde(rename = "tenantId")]
    pub tenant_id: String,
}

/// A tenant an account can use, as ARM lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Tenant {
    /// The tenant id (a GUID).
    pub tenant_id: String,
    /// Its name (`Contoso`), when ARM gives one.
    #[serde(default)]
    pub display_name: Option<String>,
    /// Its default domain (`contoso.onmicrosoft.com`), when ARM gives one.
    #[serde(default)]
    pub default_domain: Option<String>,
}

/// One account's lists, and when they were listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Listed {
    /// When ARM answered, epoch seconds.
    pub listed_at: i64,
    /// The subscriptions it listed.
    pub subscriptions: Vec<Subscription>,
    /// The tenants it listed (empty if ARM would not list them).
    #[serde(default)]
    pub tenants: Vec<Tenant>,
}

/// Everything kept: each account's list, by username (lower case), and the default.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Known {
    /// Lists by lower-case username.
    #[serde(default)]
    pub accounts: BTreeMap<String, Listed>,
    /// The subscription id `az account set` made the default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<String>,
}

impl Known {
    /// What `path` keeps; nothing if it is missing or unreadable (it is listed again).
    pub fn load(path: &Path) -> Self {
        match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                tracing::warn!("{} is not readable ({e}); listing again", path.display());
                Self::default()
            }),
            Err(_) => Self::default(),
        }
    }

    /// Writes this to `path` (atomic, 0600).
    ///
    /// # Errors
    /// [`Error::Io`].
    pub fn save(&self, path: &Path) -> Result<()> {
        let text = serde_json::to_vec_pretty(self)
            .map_err(|e| Error::io("write", path, std::io::Error::other(e)))?;
        if let Some(dir) = path.parent() {
            files::ensure_private_dir(dir)?;
        }
        files::write_atomic(path, &text)
    }

    /// The list kept for `username`, if any, however old.
    pub fn of(&self, username: &str) -> Option<&Listed> {
        self.accounts.get(&username.to_lowercase())
    }

    /// The list kept for `username` if it was listed less than [`FRESH_FOR`] before `now`.
    pub fn fresh(&self, username: &str, now: i64) -> Option<&Listed> {
        self.of(username)
            .filter(|l| (0..FRESH_FOR).contains(&(now - l.listed_at)))
    }

    /// Keeps `listing` as `username`'s lists, listed at `now`.
    pub fn put(&mut self, username: &str, listing: Listing, now: i64) {
        self.accounts.insert(
            username.to_lowercase(),
            Listed {
                listed_at: now,
                subscriptions: listing.subscriptions,
                tenants: listing.tenants,
            },
        );
    }

    /// The name of the tenant `tenant_id`, from any kept list: its display name, else its
    /// default domain.
    pub fn tenant_name(&self, tenant_id: &str) -> Option<&str> {
        self.accounts
            .values()
            .flat_map(|l| &l.tenants)
            .find(|t| t.tenant_id.eq_ignore_ascii_case(tenant_id))
            .and_then(|t| t.display_name.as_deref().or(t.default_domain.as_deref()))
    }

    /// The subscription `query` names (its id, or its name, case-insensitively) in any kept
    /// list, with the username whose list it is in.
    pub fn find(&self, query: &str) -> Option<(&str, &Subscription)> {
        self.accounts.iter().find_map(|(user, listed)| {
            listed
                .subscriptions
                .iter()
                .find(|s| {
                    s.subscription_id.eq_ignore_ascii_case(query)
                        || s.display_name.eq_ignore_ascii_case(query)
                })
                .map(|s| (user.as_str(), s))
        })
    }

    /// `username`'s default subscription: the one `az account set` chose if it is in that
    /// account's list, else its first enabled one in `tenant`, else its first enabled one.
    pub fn default_for(&self, username: &str, tenant: &str) -> Option<&Subscription> {
        let listed = &self.of(username)?.subscriptions;
        let enabled = || listed.iter().filter(|s| s.state == "Enabled");
        self.default
            .as_deref()
            .and_then(|id| listed.iter().find(|s| s.subscription_id == id))
            .or_else(|| enabled().find(|s| s.tenant_id == tenant))
            .or_else(|| enabled().next())
    }
}

/// What ARM lists for one account.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Listing {
    /// Its subscriptions.
    pub subscriptions: Vec<Subscription>,
    /// Its tenants.
    pub tenants: Vec<Tenant>,
}

/// One page of ARM's answer.
#[derive(Deserialize)]
struct Page<T> {
    #[serde(default = "Vec::new")]
    value: Vec<T>,
    #[serde(rename = "nextLink")]
    next_link: Option<String>,
}

/// Lists the subscriptions and tenants `token` (an ARM access token) can see at `arm` (ARM's
/// endpoint, no trailing slash). Tenants are best effort: when ARM will not list them, the
/// subscriptions come with none.
///
/// # Errors
/// [`Error::ToolFailed`] naming the request when ARM cannot be reached or refuses the
/// subscription list.
pub async fn list(client: &reqwest::Client, arm: &str, token: &Secret) -> Result<Listing> {
    let subscriptions = pages(client, arm, "subscriptions", token).await?;
    let tenants = pages(client, arm, "tenants", token)
        .await
        .unwrap_or_else(|e| {
            tracing::debug!("no tenant names: {e}");
            Vec::new()
        });
    Ok(Listing {
        subscriptions,
        tenants,
    })
}

/// Every page of `GET {arm}/{what}?api-version=...`, following `nextLink` on `arm` only.
async fn pages<T: serde::de::DeserializeOwned>(
    client: &reqwest::Client,
    arm: &str,
    what: &str,
    token: &Secret,
) -> Result<Vec<T>> {
    let mut url = format!("{arm}/{what}?api-version={API_VERSION}");
    let mut all = Vec::new();
    for _ in 0..MAX_PAGES {
        let failed = |detail: String| Error::ToolFailed {
            command: format!("GET {arm}/{what}"),
            detail,
        };
        let response = client
            .get(&url)
            .bearer_auth(token.expose())
            .send()
            .await
            .map_err(|e| failed(format!("failed ({})", crate::flow::describe(arm, &e))))?;
        let status = response.status();
        if !status.is_success() {
            return Err(failed(format!(
                "was refused ({status}); the account may have no access to Azure Resource Manager"
            )));
        }
        let page: Page<T> = response
            .json()
            .await
            .map_err(|e| failed(format!("answered no {what} list: {e}")))?;
        all.extend(page.value);
        match page.next_link {
            Some(next) if next.starts_with(arm) => url = next,
            _ => return Ok(all),
        }
    }
    Ok(all)
}

/// How often the running instance checks for accounts whose lists are missing or stale.
const CHECK_EVERY: Duration = Duration::from_secs(60);
/// How long an account that could not be listed waits before it is tried again, in seconds.
const RETRY_AFTER: i64 = 300;

/// Keeps every signed-in account's lists in `path` current while the app or daemon runs:
/// at the start, after each sign-in or change of accounts (here or by another process) and
/// every [`CHECK_EVERY`], an account with no list, or one
/// older than [`FRESH_FOR`], is listed with its own cached ARM token, and the window is told.
/// It never refreshes a token for this (that is the tools' demand to drive): an account with
/// no valid ARM token cached waits for one. An account that cannot be listed (offline, no ARM
/// access) keeps what was listed before and is tried again after [`RETRY_AFTER`] seconds; one
/// that needs sign-in is not tried.
pub async fn keep_listed(
    tokens: Arc<Tokens>,
    path: PathBuf,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let (client, authority) = match (
        crate::flow::http_client(tokens.config()),
        Authority::from_config(tokens.config()),
    ) {
        (Ok(client), Ok(authority)) => (client, authority),
        (Err(e), _) | (_, Err(e)) => {
            tracing::warn!("subscriptions are not listed: {e}");
            return;
        }
    };
    tokio::pin!(shutdown);
    let mut events = tokens.subscribe();
    let mut retry_at: BTreeMap<String, i64> = BTreeMap::new();
    loop {
        if list_stale(&tokens, &client, &authority, &path, &mut retry_at).await {
            tokens.emit(Event::AccountsChanged);
        }
        let next_check = tokio::time::sleep(CHECK_EVERY);
        tokio::pin!(next_check);
        loop {
            tokio::select! {
                () = &mut next_check => break,
                event = events.recv() => match event {
                    Ok(Event::SignedIn { .. } | Event::AccountsChanged) => break,
                    Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                },
                () = &mut shutdown => return,
            }
        }
    }
}

/// Lists the accounts whose lists are missing or stale and not waiting in `retry_at`;
/// returns whether any list was kept.
async fn list_stale(
    tokens: &Tokens,
    client: &reqwest::Client,
    authority: &Authority,
    path: &Path,
    retry_at: &mut BTreeMap<String, i64>,
) -> bool {
    let Ok(accounts) = tokens.accounts() else {
        return false;
    };
    let now = tokens.now();
    let known = Known::load(path);
    let scope = authority.login_scope();
    let mut kept = false;
    for account in accounts {
        let username = account.username;
        let waiting = retry_at.get(&username).is_some_and(|at| now < *at);
        if waiting || account.needs_sign_in.is_some() || known.fresh(&username, now).is_some() {
            continue;
        }
        let cached = tokens.cached(&TokenRequest {
            account: Some(&username),
            scopes: std::slice::from_ref(&scope),
            tenant: None,
        });
        let Ok(Some(cached)) = cached else {
            continue;
        };
        match list(client, authority.arm_endpoint(), &cached.token.access_token).await {
            Ok(listing) => {
                retry_at.remove(&username);
                // Read again just before writing: the az shim may have changed the default.
                let mut known = Known::load(path);
                known.put(&username, listing, tokens.now());
                match known.save(path) {
                    Ok(()) => kept = true,
                    Err(e) => tracing::warn!("the subscription list was not kept: {e}"),
                }
            }
            Err(e) => {
                tracing::debug!("{username}'s subscriptions not listed: {e}");
                retry_at.insert(username, now + RETRY_AFTER);
            }
        }
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sub(id: &str, name: &str, tenant: &str, state: &str) -> Subscription {
        Subscription {
            subscription_id: id.into(),
            display_name: name.into(),
            state: state.into(),
            tenant_id: tenant.into(),
            managed_by_tenants: Vec::new(),
        }
    }

    fn listing(subscriptions: Vec<Subscription>) -> Listing {
        Listing {
            subscriptions,
            tenants: Vec::new(),
        }
    }

    #[test]
    fn tenants_are_named_from_any_kept_list_by_name_else_domain() {
        let mut known = Known::default();
        let tenant = |id: &str, name: Option<&str>, domain: Option<&str>| Tenant {
            tenant_id: id.into(),
            display_name: name.map(Into::into),
            default_domain: domain.map(Into::into),
        };
        known.put(
            "a",
            Listing {
                subscriptions: Vec::new(),
                tenants: vec![tenant("T1", Some("Contoso"), Some("contoso.example"))],
            },
            0,
        );
        known.put(
            "b",
            Listing {
                subscriptions: Vec::new(),
                tenants: vec![
                    tenant("t2", None, Some("fabrikam.example")),
                    tenant("t3", None, None),
                ],
            },
            0,
        );
        assert_eq!(known.tenant_name("t1"), Some("Contoso"));
        assert_eq!(known.tenant_name("t2"), Some("fabrikam.example"));
        assert_eq!(known.tenant_name("t3"), None);
        assert_eq!(known.tenant_name("t4"), None);
    }

    #[test]
    fn a_kept_list_is_fresh_for_an_hour_and_found_by_id_or_name() {
        let mut known = Known::default();
        known.put(
            "Alice@Contoso.example",
            listing(vec![sub("s1", "Prod", "t1", "Enabled")]),
            1000,
        );
        assert!(
            known
                .fresh("alice@contoso.example", 1000 + FRESH_FOR - 1)
                .is_some()
        );
        assert!(
            known
                .fresh("alice@contoso.example", 1000 + FRESH_FOR)
                .is_none()
        );
        assert!(
            known.fresh("alice@contoso.example", 999).is_none(),
            "clock went back"
        );
        assert!(known.of("alice@contoso.example").is_some());
        assert_eq!(
            known
                .find("prod")
                .map(|(u, s)| (u, s.subscription_id.as_str())),
            Some(("alice@contoso.example", "s1"))
        );
        assert_eq!(
            known.find("S1").map(|(_, s)| s.display_name.as_str()),
            Some("Prod")
        );
        assert!(known.find("dev").is_none());
    }

    #[test]
    fn the_default_is_the_chosen_one_else_the_first_enabled_in_the_tenant() {
        let mut known = Known::default();
        known.put(
            "a",
            listing(vec![
                sub("off", "Old", "t1", "Disabled"),
                sub("guest", "Guest", "t2", "Enabled"),
                sub("home", "Home", "t1", "Enabled"),
            ]),
            0,
        );
        assert_eq!(
            known.default_for("a", "t1").unwrap().subscription_id,
            "home"
        );
        assert_eq!(
            known.default_for("a", "t9").unwrap().subscription_id,
            "guest"
        );
        known.default = Some("off".into());
        assert_eq!(known.default_for("a", "t1").unwrap().subscription_id, "off");
        known.default = Some("someone-else-s".into());
        assert_eq!(
            known.default_for("a", "t1").unwrap().subscription_id,
            "home"
        );
        assert!(known.default_for("b", "t1").is_none());
    }

    #[test]
    fn an_unreadable_file_is_listed_again_and_a_save_is_private() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("subscriptions.json");
        std::fs::write(&path, b"{not json").unwrap();
        assert_eq!(Known::load(&path), Known::default());
        let mut known = Known::default();
        known.put("a", listing(vec![sub("s1", "Prod", "t1", "Enabled")]), 5);
        known.default = Some("s1".into());
        known.save(&path).unwrap();
        assert_eq!(Known::load(&path), known);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
