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
//! Limit: an account's list is its home tenant's (the ARM token is for the account's default
//! tenant); Azure CLI also walks `GET /tenants` for guest tenants.
//!
//! [`Paths::subscriptions`]: crate::paths::Paths::subscriptions

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::secret::Secret;
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

/// One account's list, and when it was listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Listed {
    /// When ARM answered, epoch seconds.
    pub listed_at: i64,
    /// What it listed.
    pub subscriptions: Vec<Subscription>,
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

    /// Keeps `subscriptions` as `username`'s list, listed at `now`.
    pub fn put(&mut self, username: &str, subscriptions: Vec<Subscription>, now: i64) {
        self.accounts.insert(
            username.to_lowercase(),
            Listed {
                listed_at: now,
                subscriptions,
            },
        );
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

/// One page of ARM's answer.
#[derive(Deserialize)]
struct Page {
    #[serde(default)]
    value: Vec<Subscription>,
    #[serde(rename = "nextLink")]
    next_link: Option<String>,
}

/// Lists the subscriptions `token` (an ARM access token) can see at `arm` (ARM's endpoint,
/// no trailing slash).
///
/// # Errors
/// [`Error::ToolFailed`] naming the request when ARM cannot be reached or refuses.
pub async fn list(
    client: &reqwest::Client,
    arm: &str,
    token: &Secret,
) -> Result<Vec<Subscription>> {
    let mut url = format!("{arm}/subscriptions?api-version={API_VERSION}");
    let mut all = Vec::new();
    for _ in 0..MAX_PAGES {
        let failed = |detail: String| Error::ToolFailed {
            command: format!("GET {arm}/subscriptions"),
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
        let page: Page = response
            .json()
            .await
            .map_err(|e| failed(format!("answered no subscription list: {e}")))?;
        all.extend(page.value);
        match page.next_link {
            Some(next) if next.starts_with(arm) => url = next,
            _ => return Ok(all),
        }
    }
    Ok(all)
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

    #[test]
    fn a_kept_list_is_fresh_for_an_hour_and_found_by_id_or_name() {
        let mut known = Known::default();
        known.put(
            "Alice@Contoso.example",
            vec![sub("s1", "Prod", "t1", "Enabled")],
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
            vec![
                sub("off", "Old", "t1", "Disabled"),
                sub("guest", "Guest", "t2", "Enabled"),
                sub("home", "Home", "t1", "Enabled"),
            ],
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
        known.put("a", vec![sub("s1", "Prod", "t1", "Enabled")], 5);
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
