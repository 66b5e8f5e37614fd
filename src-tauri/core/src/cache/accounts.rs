//! Accounts as the user sees them, and removing one (MSAL's `remove_account`).

use super::environment::environment_aliases;
use super::{IdTokenClaims, TokenCache};
use crate::{Error, Result};

/// An account as the user sees it (Account entries of one `home_account_id`, grouped).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
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

impl TokenCache {
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
        self.state.challenges.remove(home_account_id);
        if self.state.default_account.as_deref() == Some(home_account_id) {
            self.state.default_account = None;
        }
        (before - after)
            + self.remove_access_tokens(|at| mine(&at.home_account_id, &at.environment))
    }
}

/// Picks the account `query` names (username, case-insensitive; home account id; object id;
/// else the one username that starts with it, as `switch bob` means `bob@fabrikam.com`);
/// without a query, the default account, else the only one.
///
/// # Errors
/// [`Error::NoAccount`], [`Error::AccountNotFound`], [`Error::AmbiguousAccount`] (no query and
/// no default, or a prefix of several usernames).
pub fn select_account<'a, A: AsRef<AccountInfo>>(
    accounts: &'a [A],
    query: Option<&str>,
) -> Result<&'a A> {
    let username = |a: &A| a.as_ref().username.clone();
    match (accounts, query) {
        ([], _) => Err(Error::NoAccount),
        (_, Some(q)) => {
            let exact = accounts.iter().find(|a| {
                let a = a.as_ref();
                a.username.eq_ignore_ascii_case(q)
                    || a.home_account_id == q
                    || a.local_account_id.as_deref() == Some(q)
            });
            if let Some(found) = exact {
                return Ok(found);
            }
            let prefix = q.to_lowercase();
            let starting: Vec<&A> = accounts
                .iter()
                .filter(|a| {
                    !prefix.is_empty() && a.as_ref().username.to_lowercase().starts_with(&prefix)
                })
                .collect();
            match starting.as_slice() {
                [only] => Ok(only),
                [] => Err(Error::AccountNotFound {
                    query: q.into(),
                    known: accounts.iter().map(username).collect(),
                }),
                several => Err(Error::AmbiguousAccount {
                    candidates: several.iter().map(|a| username(a)).collect(),
                }),
            }
        }
        ([only], None) => Ok(only),
        (_, None) => accounts
            .iter()
            .find(|a| a.as_ref().is_default)
            .ok_or_else(|| Error::AmbiguousAccount {
                candidates: accounts.iter().map(username).collect(),
            }),
    }
}

impl AsRef<AccountInfo> for AccountInfo {
    fn as_ref(&self) -> &AccountInfo {
        self
    }
}
