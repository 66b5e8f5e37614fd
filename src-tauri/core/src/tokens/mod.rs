//! [`Tokens`]: the one owner of the token cache in a running tokentray (app, daemon or CLI
//! process). Everything that needs a token asks it.
//!
//! - Answers from memory. A running instance (app or daemon) watches the cache file from a
//!   background task ([`Tokens::watch_for_changes`]) and never touches the file or its lock on
//!   the request path; a one-shot process reloads first when the file changed (a `stat`).
//! - A miss, or an access token past its `refresh_on` or within 5 minutes of expiry, refreshes
//!   with the account's refresh token (its own, or a FOCI family token), rotating it in the
//!   cache. Refreshes are single-flight per (account, tenant, scopes), and one refresh token
//!   is redeemed at a time per account; a refresh token rotated meanwhile by another process is
//!   picked up from the file and tried once more before anything is concluded.
//! - Failures are classified once ([`health`]): Entra unavailable or throttling never touches
//!   the cache, and a still-valid token is served until its real expiry while the account
//!   backs off; an error of this request alone fails only this request; only a dead refresh
//!   token marks the account "needs sign-in" (kept, never deleted).
//! - [`Tokens::refresh_in_background`] renews tokens in use before they expire.
//! - Time is an input: [`Clock`] for epoch seconds; sleeping and backoff use tokio's clock.
//!
//! Layout: the API here; `snapshot` (the cache in memory, reloads, the watcher), `refresh`
//! (flights, redemption, background renewal), `health` (classes and backoff), `sign_in`
//! (ingesting interactive sign-ins), `served_log` (what the endpoint served).

mod health;
mod refresh;
mod served_log;
mod sign_in;
mod snapshot;

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, RwLock};

use indexmap::IndexMap;
use tokio::sync::broadcast;
use tokio::time::Instant;

use crate::cache::{
    AccountInfo, AppState, AtQuery, EXPIRY_SKEW_SECS, FoundToken, RealmPreference, TokenCache,
    select_account,
};
use crate::clock::Clock;
use crate::config::Config;
use crate::flow::Entra;
use crate::persist::PersistedCache;
use crate::secret::Secret;
use crate::sync::lock;
use crate::{Error, Result};
use health::Backoff;
pub use health::{AccountState, FailingRequest, Health};
use served_log::ServedLog;
pub use served_log::{ACTIVITY_KEPT, Served};
use snapshot::Snapshot;

/// Something that changed, for the window and the tray.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Event {
    /// An account was added, removed, switched to, or changed state.
    AccountsChanged,
    /// A token was obtained by refresh.
    TokenRefreshed {
        /// Username.
        account: String,
        /// Granted scopes.
        scopes: String,
        /// Expiry, epoch seconds.
        expires_on: i64,
    },
    /// An account must sign in again.
    NeedsSignIn {
        /// Username.
        account: String,
        /// Why.
        reason: String,
    },
    /// The loopback endpoint served a token.
    TokenServed {
        /// Username.
        account: String,
        /// Granted scopes.
        scopes: String,
        /// The client process, when the OS tells (`pid N (exe)`).
        client: String,
    },
    /// A refresh failed for lack of the authority.
    RefreshFailed {
        /// Username.
        account: String,
        /// What happened.
        reason: String,
    },
    /// A browser sign-in opened its page: the address, for the window to show and copy when
    /// no browser window appears (it carries PKCE's challenge and the state, never a secret).
    SignInPage {
        /// The authorize URL.
        url: String,
    },
    /// An interactive sign-in completed.
    SignedIn {
        /// Username.
        account: String,
    },
    /// The endpoint secret was created or replaced (a running instance republishes
    /// `endpoint.json`).
    EndpointSecretChanged,
    /// A program not yet approved asked for a token and waits for the user's answer
    /// (`require_approval`; [`crate::approval`]).
    ApprovalRequested {
        /// The question's id, for [`crate::approval::Approvals::answer`].
        id: u64,
        /// The program's executable.
        program: String,
        /// The asking process.
        pid: u32,
    },
    /// A question was answered or timed out, or a kept decision changed.
    ApprovalsChanged,
    /// A device code sign-in started: the user enters `user_code` at `verification_uri`.
    DeviceCodeReady {
        /// The code to enter (not a secret on its own: it is useless without the user's sign-in).
        user_code: String,
        /// Where to enter it.
        verification_uri: String,
    },
}

/// A token request.
#[derive(Debug, Clone, Copy, Default)]
pub struct TokenRequest<'a> {
    /// Username, home account id or object id; `None` for the default account.
    pub account: Option<&'a str>,
    /// Scopes (reserved ones are ignored for matching).
    pub scopes: &'a [String],
    /// Tenant the token must be for; `None` for the configured tenant or the home tenant.
    pub tenant: Option<&'a str>,
}

/// A token handed out.
#[derive(Debug, Clone)]
pub struct ServedToken {
    /// The access token.
    pub access_token: Secret,
    /// Expiry, epoch seconds.
    pub expires_on: i64,
    /// Always `Bearer`: only bearer tokens are served (an entry may spell it in any case, or
    /// leave it out, as MSAL reads it).
    pub token_type: &'static str,
    /// Granted scopes (shared with the audit line: not copied again).
    pub scopes: Arc<str>,
    /// Tenant id (the home tenant for `organizations`/`common` tokens).
    pub tenant: String,
    /// The account (shared with the cache's snapshot: not copied per token served).
    pub account: Arc<AccountInfo>,
    /// Whether it came from the cache or a refresh just now.
    pub refreshed: bool,
}

/// A cached token, with whether it is due for a proactive refresh (past `refresh_on`; still good
/// to serve).
#[derive(Debug, Clone)]
pub struct Cached {
    /// The token.
    pub token: ServedToken,
    /// Whether a refresh is due.
    pub refresh_due: bool,
}

/// What single-flight and background renewal key on: an account, a tenant and the scopes
/// (canonical, sorted, space-separated: ARM's two spellings and any order as one). It hashes
/// and compares as its [`FlightQuery`], so a map of keys is searched with a borrowed query.
#[derive(Debug, Clone, PartialEq, Eq)]
struct FlightKey {
    account: String,
    tenant: Option<String>,
    scopes: String,
}

impl FlightKey {
    fn new(account: &AccountInfo, request: &TokenRequest<'_>) -> Self {
        FlightQuery::new(account, request).to_key()
    }

    fn query(&self) -> FlightQuery<'_> {
        FlightQuery {
            account: &self.account,
            tenant: self.tenant.as_deref(),
            scopes: Cow::Borrowed(&self.scopes),
        }
    }

    /// The scopes, one per entry, for a request.
    fn scope_list(&self) -> Vec<String> {
        self.scopes.split(' ').map(str::to_string).collect()
    }
}

impl std::hash::Hash for FlightKey {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.query().hash(state);
    }
}

/// A [`FlightKey`] borrowed from a request: what every request touches the keys in use with,
/// allocating nothing for the usual single scope (three allocations were a thirtieth of a
/// cached-token request).
#[derive(Debug, PartialEq, Eq, Hash)]
struct FlightQuery<'a> {
    account: &'a str,
    tenant: Option<&'a str>,
    scopes: Cow<'a, str>,
}

impl<'a> FlightQuery<'a> {
    fn new(account: &'a AccountInfo, request: &TokenRequest<'a>) -> Self {
        let scopes = match request.scopes {
            [one] => crate::cache::canonical_scope(one),
            many => {
                let mut scopes: Vec<_> = many
                    .iter()
                    .map(|s| crate::cache::canonical_scope(s))
                    .collect();
                scopes.sort();
                scopes.join(" ").into()
            }
        };
        Self {
            account: &account.home_account_id,
            tenant: request.tenant,
            scopes,
        }
    }

    fn to_key(&self) -> FlightKey {
        FlightKey {
            account: self.account.to_string(),
            tenant: self.tenant.map(str::to_string),
            scopes: self.scopes.to_string(),
        }
    }
}

impl indexmap::Equivalent<FlightKey> for FlightQuery<'_> {
    fn equivalent(&self, key: &FlightKey) -> bool {
        *self == key.query()
    }
}

/// A token handed out has at least this many seconds left whenever a refresh can give a
/// fresher one (10 minutes): the SDKs renew theirs 5 minutes before expiry, so a tool given less
/// would be back within minutes. When Entra ID cannot be reached, a token with less left is still
/// served until it really expires.
pub const SERVE_MIN_LEFT_SECS: i64 = 600;

/// The owner of the cache. Cheap to share: `Arc<Tokens>`.
pub struct Tokens {
    store: Arc<PersistedCache>,
    entra: Entra,
    config: Config,
    snapshot: RwLock<Snapshot>,
    /// Set while [`Tokens::watch_for_changes`] runs: requests then never reload themselves.
    watched: AtomicBool,
    /// Single-flight gates per (account, tenant, scopes). The maps a request touches hash with
    /// foldhash (seeded per process), not SipHash: their keys come from this user's own
    /// processes only, and SipHash was a twentieth of a cached-token request.
    flights: Mutex<foldhash::HashMap<FlightKey, Arc<tokio::sync::Mutex<()>>>>,
    /// One refresh-token redemption at a time per account (home_account_id).
    redeeming: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    backoff: Mutex<Backoff>,
    /// Keys asked for recently, renewed in the background; searched with a [`FlightQuery`].
    in_use: Mutex<IndexMap<FlightKey, Instant, foldhash::fast::RandomState>>,
    /// Keys whose last refresh failed for a reason of their own, with the error's text.
    failing: Mutex<foldhash::HashMap<FlightKey, String>>,
    /// Tenant domains this process has asked Entra about ([`Tokens::learn_tenant_id`]): once
    /// each, so an outage costs one failed lookup, not one per request.
    discovered: Mutex<std::collections::HashSet<String>>,
    served: ServedLog,
    events: broadcast::Sender<Event>,
    clock: Clock,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokens")
            .field("store", &self.store)
            .finish_non_exhaustive()
    }
}

impl Tokens {
    /// Opens tokentray as configured under `paths`: `config.toml` and the environment, the
    /// token store, the cache.
    ///
    /// # Errors
    /// Those of [`Config::load`], [`Config::open_store`] and [`Tokens::new`].
    pub fn open(paths: &crate::paths::Paths, clock: Clock) -> Result<Self> {
        let config = Config::load(&paths.config_file())?;
        let store = config.open_store(paths)?;
        Self::new(config, store, clock)
    }

    /// Loads the cache from `store`.
    ///
    /// # Errors
    /// Those of [`PersistedCache::read`] and [`Entra::new`].
    pub fn new(config: Config, store: PersistedCache, clock: Clock) -> Result<Self> {
        let entra = Entra::new(&config)?;
        let (cache, stamp) = store.read_stamped()?;
        let (events, _) = broadcast::channel(256);
        Ok(Self {
            store: Arc::new(store),
            entra,
            config,
            snapshot: RwLock::new(Snapshot::new(cache, stamp)),
            watched: AtomicBool::new(false),
            flights: Mutex::default(),
            redeeming: Mutex::default(),
            backoff: Mutex::default(),
            in_use: Mutex::default(),
            failing: Mutex::default(),
            discovered: Mutex::default(),
            served: ServedLog::default(),
            events,
            clock,
        })
    }

    /// Events for the UI.
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.events.subscribe()
    }

    /// Epoch seconds now, by this instance's clock.
    pub fn now(&self) -> i64 {
        (self.clock)()
    }

    /// The scope a sign-in asks for when given none: the configured cloud's Azure Resource
    /// Manager (`https://management.core.windows.net//.default` in the public cloud).
    pub fn login_scope(&self) -> String {
        self.entra.authority().login_scope()
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The store.
    pub fn store(&self) -> &PersistedCache {
        &self.store
    }

    /// Announces `event` to subscribers (the window, the tray).
    pub(crate) fn emit(&self, event: Event) {
        let _ = self.events.send(event);
    }

    /// Reads tokentray's own state in the cache (the `tokentray` section), current with the
    /// file.
    ///
    /// # Errors
    /// Token store errors.
    pub(crate) fn app_state<T>(&self, read: impl FnOnce(&AppState) -> T) -> Result<T> {
        self.reload_if_changed()?;
        Ok(self.with_cache(|c| read(&c.state)))
    }

    /// Changes tokentray's own state in the file, under its lock.
    ///
    /// # Errors
    /// Token store errors, and those of `change` (then nothing is written).
    pub(crate) fn update_app_state<T>(
        &self,
        change: impl FnOnce(&mut AppState) -> Result<T>,
    ) -> Result<T> {
        self.update(|c| change(&mut c.state))
    }

    /// The loopback endpoint's secret: created on first use (256 random bits) and kept in the
    /// encrypted cache, so it survives restarts. Reads see a rotation by another process.
    ///
    /// # Errors
    /// Token store errors.
    pub fn endpoint_secret(&self) -> Result<Secret> {
        self.reload_if_changed()?;
        if let Some(secret) = self.with_cache(|c| c.state.endpoint_secret.clone()) {
            return Ok(secret);
        }
        let (secret, minted) = self.update(|c| match &c.state.endpoint_secret {
            Some(secret) => Ok((secret.clone(), false)),
            None => {
                let secret = Secret::new(crate::secret::random_token(32)?);
                c.state.endpoint_secret = Some(secret.clone());
                Ok((secret, true))
            }
        })?;
        if minted {
            self.emit(Event::EndpointSecretChanged);
        }
        Ok(secret)
    }

    /// Replaces the endpoint secret; tools configured with the old one get 401 from now on.
    ///
    /// # Errors
    /// Token store errors.
    pub fn rotate_endpoint_secret(&self) -> Result<Secret> {
        let secret = self.update(|c| {
            let secret = Secret::new(crate::secret::random_token(32)?);
            c.state.endpoint_secret = Some(secret.clone());
            Ok(secret)
        })?;
        self.emit(Event::EndpointSecretChanged);
        Ok(secret)
    }

    /// The accounts, with default and needs-sign-in state.
    ///
    /// # Errors
    /// Those of [`PersistedCache::read`] when the file changed.
    pub fn accounts(&self) -> Result<Vec<AccountInfo>> {
        self.reload_if_changed()?;
        Ok(self
            .with_snapshot(|_, accounts| accounts.iter().map(|a| AccountInfo::clone(a)).collect()))
    }

    /// The accounts with their health as this process sees it: needs sign-in (persisted),
    /// refreshing (a redemption in flight here), retrying (this process's backoff), else ok;
    /// and the requests that failed on their own.
    ///
    /// # Errors
    /// Those of [`Tokens::accounts`].
    pub fn account_states(&self) -> Result<Vec<AccountState>> {
        let now = (self.clock)();
        let accounts = self.accounts()?;
        Ok(accounts
            .into_iter()
            .map(|a| {
                let hid = a.home_account_id.clone();
                let mut state = AccountState::at_rest(a);
                if state.health == Health::Ok {
                    if self.is_redeeming(&hid) {
                        state.health = Health::Refreshing;
                    } else if let Some(retrying) = lock(&self.backoff).health(&hid, now) {
                        state.health = retrying;
                    }
                }
                state.failing = lock(&self.failing)
                    .iter()
                    .filter(|(k, _)| k.account == hid)
                    .map(|(k, reason)| FailingRequest {
                        scopes: k.scopes.clone(),
                        tenant: k.tenant.clone(),
                        reason: reason.clone(),
                    })
                    .collect();
                state.failing.sort_by(|a, b| a.scopes.cmp(&b.scopes));
                state
            })
            .collect())
    }

    /// The cache as it is in memory (for views such as the window's token list).
    pub fn cache(&self) -> TokenCache {
        self.with_cache(Clone::clone)
    }

    /// The token for a managed-identity style `resource` (`R`, `R/`): the scope `R/.default`,
    /// which also finds Azure CLI's `R//.default` tokens.
    ///
    /// # Errors
    /// Those of [`Tokens::get_token`].
    pub async fn get_for_resource(
        &self,
        resource: &str,
        account: Option<&str>,
    ) -> Result<ServedToken> {
        // Built by hand: `format!` was a fortieth of a cached-token request.
        let resource = resource.trim_end_matches('/');
        let mut scope = String::with_capacity(resource.len() + "/.default".len());
        scope.push_str(resource);
        scope.push_str("/.default");
        let scopes = [scope];
        let request = TokenRequest {
            account,
            scopes: &scopes,
            tenant: None,
        };
        self.get_token(&request).await
    }

    /// The cached token for `request` if it has more than 5 minutes left; never refreshes.
    /// Reloads first if another process changed the cache file.
    ///
    /// # Errors
    /// Account selection errors; store errors while reloading.
    pub fn cached(&self, request: &TokenRequest<'_>) -> Result<Option<Cached>> {
        self.reload_if_changed()?;
        let now = (self.clock)();
        self.with_snapshot(|cache, accounts| {
            let account = select_account(accounts, request.account)?;
            Ok(self.cached_token(cache, account, request, now, EXPIRY_SKEW_SECS))
        })
    }

    /// A token: from the cache if it has more than 10 minutes left and is not due for refresh,
    /// else refreshed (single-flight). When the refresh fails for lack of Entra, a cached token
    /// is served until its real expiry.
    ///
    /// # Errors
    /// [`Error::NoAccount`] / [`Error::AccountNotFound`] / [`Error::AmbiguousAccount`];
    /// [`Error::InteractionRequired`]; [`Error::AuthorityUnavailable`] when no valid token is
    /// cached and the authority cannot be reached; [`Error::Authority`].
    pub async fn get_token(&self, request: &TokenRequest<'_>) -> Result<ServedToken> {
        if request.scopes.is_empty() {
            return Err(Error::invalid("token request", "name at least one scope"));
        }
        self.reload_if_changed()?;
        if let Some(tenant) = request.tenant {
            self.learn_tenant_id(tenant).await;
        }
        let now = (self.clock)();
        let (account, cached) = self.with_snapshot(|cache, accounts| -> Result<_> {
            let account = select_account(accounts, request.account)?.clone();
            let cached = self.cached_token(cache, &account, request, now, SERVE_MIN_LEFT_SECS);
            Ok((account, cached))
        })?;
        {
            let query = FlightQuery::new(&account, request);
            let mut in_use = lock(&self.in_use);
            // A key asked for again (nearly every request) is only touched: nothing is built.
            if let Some(at) = in_use.get_mut(&query) {
                *at = Instant::now();
            } else {
                if in_use.len() >= refresh::MAX_KEYS {
                    // The least recently asked-for key is no longer renewed in the background.
                    let oldest = in_use.iter().enumerate().min_by_key(|(_, (_, at))| **at);
                    if let Some((oldest, _)) = oldest {
                        in_use.swap_remove_index(oldest);
                    }
                }
                in_use.insert(query.to_key(), Instant::now());
            }
        }
        if let Some(Cached {
            token,
            refresh_due: false,
        }) = cached
        {
            return Ok(token);
        }
        let key = FlightKey::new(&account, request);
        self.refresh_flight(&key, &account, request).await
    }

    /// A tenant asked for by domain (`contoso.com`) that no sign-in has recorded is looked up
    /// once (tenant discovery, as MSAL does) and its id kept in the cache state, so the tokens
    /// recorded under the id (by MSAL, Azure CLI or tokentray) are found for the domain, offline
    /// from then on. Best effort: without an answer the domain is used as given.
    async fn learn_tenant_id(&self, tenant: &str) {
        if !tenant.contains('.') {
            return;
        }
        let domain = tenant.to_ascii_lowercase();
        if self.with_cache(|c| c.state.tenant_ids.contains_key(&domain))
            || !lock(&self.discovered).insert(domain.clone())
        {
            return;
        }
        let Some(tid) = self.entra.tenant_id_of(&domain).await else {
            return;
        };
        let kept = self.update(move |c| {
            c.state.tenant_ids.insert(domain, tid);
            Ok(())
        });
        if let Err(e) = kept {
            tracing::debug!("could not keep the tenant id of {tenant}: {e}");
        }
    }

    /// The cached token for a request with at least `min_left` seconds left, with whether it
    /// is due for refresh.
    fn cached_token(
        &self,
        cache: &TokenCache,
        account: &Arc<AccountInfo>,
        request: &TokenRequest<'_>,
        now: i64,
        min_left: i64,
    ) -> Option<Cached> {
        let found = find_token(
            cache,
            &self.config,
            account,
            request.scopes,
            request.tenant,
            now,
            min_left,
        )?;
        Some(Cached {
            token: to_served(&found, account),
            refresh_due: found.refresh_due,
        })
    }

    /// Makes the account `query` names the default.
    ///
    /// # Errors
    /// [`Error::NoAccount`], [`Error::AccountNotFound`].
    pub fn switch(&self, query: &str) -> Result<AccountInfo> {
        let hid = self.update(|c| {
            let hid = select_account(&c.accounts(), Some(query))?
                .home_account_id
                .clone();
            c.state.default_account = Some(hid.clone());
            Ok(hid)
        })?;
        self.emit(Event::AccountsChanged);
        self.with_snapshot(|_, accounts| {
            accounts
                .iter()
                .find(|a| a.home_account_id == hid)
                .map(|a| AccountInfo::clone(a))
        })
        .ok_or(Error::NoAccount)
    }

    /// Signs out the account `query` names (or all): its refresh, access and id tokens and
    /// Account entries leave the file and memory (MSAL's `remove_account`). Returns who.
    ///
    /// # Errors
    /// [`Error::NoAccount`], [`Error::AccountNotFound`], store errors.
    pub fn sign_out(&self, query: Option<&str>) -> Result<Vec<AccountInfo>> {
        let client_id = self.config.client_id.clone();
        let gone = self.update(|c| {
            let accounts = c.accounts();
            let gone: Vec<AccountInfo> = match query {
                Some(q) => vec![select_account(&accounts, Some(q))?.clone()],
                None if accounts.is_empty() => return Err(Error::NoAccount),
                None => accounts,
            };
            for a in &gone {
                c.remove_account(&a.home_account_id, &a.environment, &client_id);
            }
            Ok(gone)
        })?;
        for a in &gone {
            self.forget_failures(&a.home_account_id);
            lock(&self.in_use).retain(|k, _| k.account != a.home_account_id);
        }
        self.emit(Event::AccountsChanged);
        Ok(gone)
    }

    /// Forgets the backoff and failing requests of `account` (home account id): it signed in
    /// or out.
    fn forget_failures(&self, account: &str) {
        lock(&self.backoff).clear(account);
        lock(&self.failing).retain(|k, _| k.account != account);
    }
}

fn to_served(found: &FoundToken<'_>, account: &Arc<AccountInfo>) -> ServedToken {
    let realm = found.entry.realm.as_deref().unwrap_or_default();
    let tenant = if realm.is_empty() || crate::authority::is_alias(realm) {
        account
            .home_tenant
            .clone()
            .unwrap_or_else(|| realm.to_string())
    } else {
        realm.to_string()
    };
    ServedToken {
        access_token: found
            .entry
            .secret
            .clone()
            .unwrap_or_else(|| Secret::new(String::new())),
        expires_on: found.expires_on,
        token_type: "Bearer",
        scopes: found.entry.target.as_deref().unwrap_or_default().into(),
        tenant,
        account: account.clone(),
        refreshed: false,
    }
}

/// The cached access token for `account` and `scopes` with at least `min_left` seconds left. With
/// a tenant, only that realm (for the home tenant, also a token from `organizations`/`common`,
/// which is the home tenant's); without, the configured tenant first, then the home tenant, then
/// any realm.
pub fn find_token<'c>(
    cache: &'c TokenCache,
    config: &Config,
    account: &AccountInfo,
    scopes: &[String],
    tenant: Option<&str>,
    now: i64,
    min_left: i64,
) -> Option<FoundToken<'c>> {
    let query = AtQuery {
        home_account_id: &account.home_account_id,
        environment: &account.environment,
        client_id: &config.client_id,
        // Without a tenant: the configured tenant first, then the home tenant, then any realm.
        realm: match tenant {
            Some(t) => match cache.tenant_id(t) {
                id if account.home_tenant.as_deref() == Some(id) => RealmPreference::Home(id),
                id => RealmPreference::Only(id),
            },
            None => RealmPreference::Prefer {
                first: cache.tenant_id(&config.tenant),
                then: account.home_tenant.as_deref(),
            },
        },
        scopes,
    };
    cache.find_access_token(&query, now, min_left)
}

#[cfg(test)]
mod tests {
    use std::hash::BuildHasher as _;

    use super::*;

    fn alice() -> AccountInfo {
        AccountInfo {
            home_account_id: "uid.utid".into(),
            environment: "login.microsoftonline.com".into(),
            username: "alice@contoso.example".into(),
            name: None,
            local_account_id: None,
            home_tenant: Some("utid".into()),
            realms: Vec::new(),
            is_default: true,
            needs_sign_in: None,
        }
    }

    #[test]
    fn a_request_finds_its_renewal_key_by_a_borrowed_query() {
        let account = alice();
        let request = |scopes: &[&str], tenant| {
            let scopes: Vec<String> = scopes.iter().map(|s| s.to_string()).collect();
            let request = TokenRequest {
                account: None,
                scopes: &scopes,
                tenant,
            };
            FlightKey::new(&account, &request)
        };
        let arm = request(&["https://management.azure.com/.default"], None);
        let two = request(&["b/.default", "a//.default"], Some("t"));
        assert_eq!(
            arm,
            request(&["https://management.azure.com//.default"], None)
        );
        assert_eq!(two, request(&["a/.default", "b//.default"], Some("t")));
        assert_eq!(two.scopes, "a/.default b/.default");
        assert_eq!(two.scope_list(), ["a/.default", "b/.default"]);
        assert_ne!(two, request(&["a/.default", "b/.default"], None));

        let mut in_use: IndexMap<FlightKey, u8, foldhash::fast::RandomState> = IndexMap::default();
        in_use.insert(arm.clone(), 1);
        in_use.insert(two.clone(), 2);
        for (key, value) in [(&arm, 1), (&two, 2)] {
            let hasher = in_use.hasher();
            assert_eq!(
                hasher.hash_one(key),
                hasher.hash_one(key.query()),
                "a key hashes as its query"
            );
            assert_eq!(in_use.get(&key.query()), Some(&value));
        }
        let scopes = ["https://management.azure.com//.default".to_string()];
        let other = TokenRequest {
            account: None,
            scopes: &scopes,
            tenant: Some("t"),
        };
        assert_eq!(in_use.get(&FlightQuery::new(&account, &other)), None);
    }
}
