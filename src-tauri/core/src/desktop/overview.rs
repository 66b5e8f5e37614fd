//! The window's overview: accounts, their tokens with expiry, the endpoint, the settings, the
//! approval of programs and the activity.

use serde::Serialize;

use super::Desktop;
use super::settings::SettingsView;
use crate::Result;
use crate::approval::{self, Client, Question};
use crate::authority;
use crate::cache::{Challenge, RESERVED_SCOPES, TokenCache, epoch};
use crate::env::{Shell, env_lines};
use crate::instance::{Endpoint, endpoint_url};
use crate::subscriptions::{Known, Subscription};
use crate::sync::lock;
use crate::tokens::{AccountState, FailingRequest, Health, Served};

/// Everything the window shows, as of `now`.
#[derive(Debug, Clone, Serialize)]
pub struct Overview {
    /// Epoch seconds by the app's clock (the window counts down from it).
    pub now: i64,
    /// The accounts, the default first.
    pub accounts: Vec<AccountView>,
    /// The loopback endpoint.
    pub endpoint: EndpointView,
    /// The settings.
    pub settings: SettingsView,
    /// Approval of the programs that get tokens.
    pub approvals: ApprovalsView,
    /// The tokens the endpoint served lately, newest first.
    pub activity: Vec<Served>,
    /// Whether to offer "Let every app use tokentray" (after a sign-in, once; answered with
    /// [`Desktop::answer_every_app_offer`]).
    pub offer_every_app: bool,
}

/// Approval of programs (`require_approval`): the questions waiting and the kept decisions.
#[derive(Debug, Clone, Serialize)]
pub struct ApprovalsView {
    /// Whether the running endpoint asks (`require_approval` as in effect now).
    pub required: bool,
    /// Programs waiting for an answer, oldest first.
    pub questions: Vec<Question>,
    /// Kept decisions, by path.
    pub clients: Vec<Client>,
}

/// An account and its cached access tokens.
#[derive(Debug, Clone, Serialize)]
pub struct AccountView {
    /// Stable id (`{oid}.{tenant}`).
    pub home_account_id: String,
    /// Sign-in name.
    pub username: String,
    /// Display name.
    pub name: Option<String>,
    /// Home tenant id.
    pub tenant: Option<String>,
    /// The home tenant's name, when ARM named it ([`Known::tenant_name`]).
    pub tenant_name: Option<String>,
    /// The Azure subscriptions it can use, as last listed (empty until listed).
    pub subscriptions: Vec<Subscription>,
    /// Authority host.
    pub environment: String,
    /// Whether tools get this account when they name none.
    pub is_default: bool,
    /// Its health: ok, refreshing, retrying (when, which try) or needs sign-in (why).
    pub health: Health,
    /// Requests of it that fail on their own, with why.
    pub failing: Vec<FailingRequest>,
    /// The scopes (and tenant) a request is waiting for a sign-in of its own for (Conditional
    /// Access, consent): "Sign in again" then signs in for exactly that.
    pub sign_in_for: Option<String>,
    /// Its access tokens, soonest expiry first.
    pub tokens: Vec<TokenView>,
}

/// A cached access token (never the token itself).
#[derive(Debug, Clone, Serialize)]
pub struct TokenView {
    /// Granted scopes, space-separated.
    pub scopes: String,
    /// The resource the scopes belong to (`https://management.azure.com/`).
    pub resource: String,
    /// Tenant (realm) it was issued for; the home tenant's id for a token cached under
    /// `organizations` or `common`, which that tenant issued.
    pub tenant: String,
    /// That tenant's name, when ARM named it.
    pub tenant_name: Option<String>,
    /// Expiry, epoch seconds.
    pub expires_on: i64,
    /// When tokentray renews it ahead of expiry, epoch seconds.
    pub refresh_on: Option<i64>,
    /// The tool it was last served to by the endpoint, since the app started.
    pub last_served_to: Option<String>,
}

/// The endpoint's state.
#[derive(Debug, Clone, Serialize)]
pub struct EndpointView {
    /// `running`, `starting` or `stopped`.
    pub status: &'static str,
    /// Base URL when running.
    pub url: Option<String>,
    /// Why it stopped.
    pub detail: Option<String>,
    /// Tokens served since the app started.
    pub requests_served: u64,
    /// The environment lines for tools, secret masked, in each shell's syntax (`posix`,
    /// `fish`, `powershell`).
    pub env_preview: std::collections::BTreeMap<Shell, Vec<String>>,
    /// The shell the system's users most likely have ([`Shell::native`]).
    pub native_shell: Shell,
}

impl Desktop {
    /// The window's view of everything.
    ///
    /// # Errors
    /// Token store errors while reloading a changed cache file.
    pub fn overview(&self) -> Result<Overview> {
        let now = self.tokens.now();
        let cache = self.tokens.cache();
        let known = Known::load(&self.paths.subscriptions());
        let mut accounts: Vec<AccountView> = self
            .tokens
            .account_states()?
            .into_iter()
            .map(|a| self.account_view(&cache, &known, a))
            .collect();
        accounts.sort_by_key(|a| !a.is_default);
        Ok(Overview {
            now,
            accounts,
            endpoint: self.endpoint_view(),
            settings: self.settings_view()?,
            approvals: ApprovalsView {
                required: self.tokens.config().require_approval,
                questions: self.approvals().questions(),
                clients: approval::clients(&self.tokens)?,
            },
            activity: self.tokens.activity(),
            offer_every_app: *lock(&self.every_app_offer),
        })
    }

    fn account_view(&self, cache: &TokenCache, known: &Known, state: AccountState) -> AccountView {
        let AccountState {
            account,
            health,
            failing,
        } = state;
        let mut tokens: Vec<TokenView> = cache
            .access_tokens()
            .values()
            .filter(|t| t.home_account_id.as_deref() == Some(account.home_account_id.as_str()))
            .map(|t| {
                let scopes = t.target.clone().unwrap_or_default();
                // A token of `organizations` or `common` is the home tenant's: named as it.
                let tenant = match (t.realm.as_deref(), account.home_tenant.as_deref()) {
                    (Some(realm), Some(home)) if authority::is_alias(realm) => home.to_string(),
                    (realm, _) => realm.unwrap_or_default().to_string(),
                };
                TokenView {
                    resource: resource_of(&scopes),
                    last_served_to: self.tokens.last_served_to(&account.username, &scopes),
                    scopes,
                    tenant_name: known.tenant_name(&tenant).map(str::to_string),
                    tenant,
                    expires_on: epoch(&t.expires_on).unwrap_or(0),
                    refresh_on: epoch(&t.refresh_on),
                }
            })
            .collect();
        tokens.sort_by_key(|t| t.expires_on);
        let subscriptions = known
            .of(&account.username)
            .map(|l| l.subscriptions.clone())
            .unwrap_or_default();
        let sign_in_for = cache
            .state
            .challenges
            .get(&account.home_account_id)
            .map(Challenge::target);
        AccountView {
            sign_in_for,
            subscriptions,
            home_account_id: account.home_account_id,
            username: account.username,
            name: account.name,
            tenant_name: account
                .home_tenant
                .as_deref()
                .and_then(|t| known.tenant_name(t))
                .map(str::to_string),
            tenant: account.home_tenant,
            environment: account.environment,
            is_default: account.is_default,
            health,
            failing,
            tokens,
        }
    }

    fn endpoint_view(&self) -> EndpointView {
        // This app's endpoint, or the daemon's that it follows (`instance::run_or_follow`).
        let running = Endpoint::running(&self.paths);
        let ours = running.as_ref().filter(|e| e.pid == std::process::id());
        let daemon = running.as_ref().filter(|e| e.pid != std::process::id());
        let error = lock(&self.endpoint_error).clone();
        let (status, url) = match (running.as_ref(), &error) {
            (Some(e), _) => ("running", Some(e.url.clone())),
            (None, Some(_)) => ("stopped", None),
            (None, None) => ("starting", None),
        };
        let error = match daemon {
            Some(d) => Some(format!(
                "served by tokentray daemon (pid {}), which keeps its own count",
                d.pid
            )),
            None => error.filter(|_| ours.is_none()),
        };
        let preview_url = url
            .clone()
            .unwrap_or_else(|| endpoint_url(&self.paths, self.tokens.config().port));
        let path_first = crate::env::path_first(&self.paths);
        let env_preview = [Shell::Posix, Shell::Fish, Shell::Powershell]
            .into_iter()
            .map(|shell| {
                let lines = env_lines(&preview_url, "********", shell, path_first.as_deref());
                (shell, lines.lines().map(str::to_string).collect())
            })
            .collect();
        EndpointView {
            status,
            url,
            detail: error,
            requests_served: self.tokens.requests_served(),
            env_preview,
            native_shell: Shell::native(),
        }
    }
}

/// The resource of a scope list: the first scope without its last path segment
/// (`https://management.azure.com//.default` -> `https://management.azure.com/`), or the
/// scope itself for Graph-style short scopes (`User.Read`).
fn resource_of(scopes: &str) -> String {
    let first = scopes
        .split_ascii_whitespace()
        .find(|s| !RESERVED_SCOPES.contains(s))
        .unwrap_or_default();
    match first.rsplit_once('/') {
        Some((resource, _)) if first.contains("://") => {
            let trimmed = resource.trim_end_matches('/');
            format!("{trimmed}/")
        }
        _ => first.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_is_the_scope_without_its_permission() {
        assert_eq!(
            resource_of("https://management.core.windows.net//.default"),
            "https://management.core.windows.net/"
        );
        assert_eq!(
            resource_of("openid https://vault.azure.net/user_impersonation"),
            "https://vault.azure.net/"
        );
        assert_eq!(resource_of("User.Read profile"), "User.Read");
    }
}
