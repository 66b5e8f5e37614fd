//! [`Tokens`]: the one owner of the token cache in a running tokentray (app, daemon or CLI
//! process). Everything that needs a token asks it.
//!
//! - Answers from memory; reloads first when another process changed the file (a `stat`).
//! - A miss, or an access token past its `refresh_on`, refreshes with the account's refresh
//!   token (its own, or a FOCI family token), rotating it in the cache. Refreshes are
//!   single-flight per (account, tenant, scopes): 100 concurrent callers cause one request.
//! - `invalid_grant` / `interaction_required` mark the account "needs sign-in" (kept, never
//!   deleted) and surface [`Error::InteractionRequired`] with any claims challenge.
//! - Network errors, 5xx and 429 never touch cached tokens: a still-valid token is served, and
//!   the account backs off (honouring `Retry-After`, bounded) so callers cause no request storm.
//! - [`Tokens::refresh_in_background`] renews tokens in use before they expire.
//! - Time is an input: [`Clock`] for epoch seconds; sleeping and backoff use tokio's clock.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use tokio::sync::broadcast;
use tokio::time::Instant;
use url::Url;

use crate::cache::{
    AccountInfo, AtQuery, EXPIRY_SKEW_SECS, FoundToken, Grant, RealmPreference, TokenCache,
    TokenEvent, TokenResponse, select_account,
};
use crate::clock::Clock;
use crate::config::Config;
use crate::flow::{self, Entra, Failure, scope_param};
use crate::persist::{PersistedCache, Stamp};
use crate::secret::Secret;
use crate::sync::lock;
use crate::{Error, Result};

/// Longest wait after a failing authority before trying again.
const MAX_BACKOFF: Duration = Duration::from_secs(300);
/// How long after a failed interactive-required refresh before trying that account again.
const INTERACTION_BACKOFF: Duration = Duration::from_secs(60);
/// Tokens used within this window are renewed in the background.
const IN_USE_WINDOW: Duration = Duration::from_secs(12 * 3600);
/// Background renewal happens when a token has less than this left.
const RENEW_BEFORE_SECS: i64 = 600;

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
    /// An interactive sign-in completed.
    SignedIn {
        /// Username.
        account: String,
    },
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
    /// `Bearer`.
    pub token_type: String,
    /// Granted scopes.
    pub scopes: String,
    /// Tenant id (the home tenant for `organizations`/`common` tokens).
    pub tenant: String,
    /// The account.
    pub account: AccountInfo,
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

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct FlightKey {
    account: String,
    tenant: Option<String>,
    scopes: Vec<String>,
}

struct Snapshot {
    cache: TokenCache,
    /// `cache.accounts()`, computed once per version: it decodes id tokens.
    accounts: Vec<AccountInfo>,
    stamp: Option<Stamp>,
}

impl Snapshot {
    fn new(cache: TokenCache, stamp: Option<Stamp>) -> Self {
        let accounts = cache.accounts();
        Self {
            cache,
            accounts,
            stamp,
        }
    }
}

/// The owner of the cache. Cheap to share: `Arc<Tokens>`.
pub struct Tokens {
    store: PersistedCache,
    entra: Entra,
    config: Config,
    snapshot: RwLock<Snapshot>,
    flights: Mutex<HashMap<FlightKey, Arc<tokio::sync::Mutex<()>>>>,
    backoff: Mutex<HashMap<String, (Instant, u32)>>,
    in_use: Mutex<HashMap<FlightKey, Instant>>,
    /// (username, scopes) -> the client last served that token, for the window.
    served: Mutex<HashMap<(String, String), String>>,
    served_count: AtomicU64,
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
            store,
            entra,
            config,
            snapshot: RwLock::new(Snapshot::new(cache, stamp)),
            flights: Mutex::new(HashMap::new()),
            backoff: Mutex::new(HashMap::new()),
            in_use: Mutex::new(HashMap::new()),
            served: Mutex::new(HashMap::new()),
            served_count: AtomicU64::new(0),
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

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The store.
    pub fn store(&self) -> &PersistedCache {
        &self.store
    }

    fn emit(&self, event: Event) {
        let _ = self.events.send(event);
    }

    /// Rereads the file if another process changed it.
    fn reload_if_changed(&self) -> Result<()> {
        let current = self.store.stamp();
        let stale = self.snapshot.read().map_or(true, |s| s.stamp != current);
        if stale {
            let (cache, stamp) = self.store.read_stamped()?;
            self.install(cache, stamp);
        }
        Ok(())
    }

    fn install(&self, cache: TokenCache, stamp: Option<Stamp>) {
        let fresh = Snapshot::new(cache, stamp);
        if let Ok(mut s) = self.snapshot.write() {
            *s = fresh;
        }
    }

    fn with_cache<T>(&self, f: impl FnOnce(&TokenCache) -> T) -> T {
        self.with_snapshot(|cache, _| f(cache))
    }

    /// The cache and its accounts, as of the last reload.
    fn with_snapshot<T>(&self, f: impl FnOnce(&TokenCache, &[AccountInfo]) -> T) -> T {
        match self.snapshot.read() {
            Ok(s) => f(&s.cache, &s.accounts),
            Err(poisoned) => {
                let s = poisoned.into_inner();
                f(&s.cache, &s.accounts)
            }
        }
    }

    /// Applies a change to the file under the lock and installs the result in memory.
    fn update<T>(&self, change: impl FnOnce(&mut TokenCache) -> Result<T>) -> Result<T> {
        let (out, cache, stamp) = self.store.update((self.clock)(), change)?;
        self.install(cache, stamp);
        Ok(out)
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
        self.update(|c| match &c.state.endpoint_secret {
            Some(secret) => Ok(secret.clone()),
            None => {
                let secret = Secret::new(crate::secret::random_token(32)?);
                c.state.endpoint_secret = Some(secret.clone());
                Ok(secret)
            }
        })
    }

    /// Replaces the endpoint secret; tools configured with the old one get 401 from now on.
    ///
    /// # Errors
    /// Token store errors.
    pub fn rotate_endpoint_secret(&self) -> Result<Secret> {
        self.update(|c| {
            let secret = Secret::new(crate::secret::random_token(32)?);
            c.state.endpoint_secret = Some(secret.clone());
            Ok(secret)
        })
    }

    /// Counts a token the endpoint served (on the request path: one atomic add).
    pub fn count_served(&self) {
        self.served_count.fetch_add(1, Ordering::Relaxed);
    }

    /// Records that the endpoint served `account`'s token for `scopes` to `client`, and tells
    /// the UI.
    pub fn served_to(&self, account: String, scopes: String, client: String) {
        lock(&self.served).insert((account.clone(), scopes.clone()), client.clone());
        self.emit(Event::TokenServed {
            account,
            scopes,
            client,
        });
    }

    /// The client the endpoint last served `account`'s (username) token for `scopes` (the
    /// entry's target) to, since this instance started.
    pub fn last_served_to(&self, account: &str, scopes: &str) -> Option<String> {
        lock(&self.served)
            .get(&(account.to_string(), scopes.to_string()))
            .cloned()
    }

    /// Tokens the endpoint served since this instance started.
    pub fn requests_served(&self) -> u64 {
        self.served_count.load(Ordering::Relaxed)
    }

    /// The accounts, with default and needs-sign-in state.
    ///
    /// # Errors
    /// Those of [`PersistedCache::read`] when the file changed.
    pub fn accounts(&self) -> Result<Vec<AccountInfo>> {
        self.reload_if_changed()?;
        Ok(self.with_snapshot(|_, accounts| accounts.to_vec()))
    }

    /// The cache as it is in memory (for views such as the window's token list).
    pub fn cache(&self) -> TokenCache {
        self.with_cache(Clone::clone)
    }

    /// The token for a managed-identity style `resource` (`R`, `R/`): Azure SDKs ask for
    /// `R/.default`, Azure CLI caches ARM as `R//.default`, so both forms are looked up. A fresh
    /// cached token under either is served; otherwise the form that is cached (due for refresh),
    /// or the plain one, goes through [`Tokens::get_token`].
    ///
    /// # Errors
    /// Those of [`Tokens::get_token`].
    pub async fn get_for_resource(
        &self,
        resource: &str,
        account: Option<&str>,
    ) -> Result<ServedToken> {
        self.reload_if_changed()?;
        let trimmed = resource.trim_end_matches('/');
        let forms = [
            vec![format!("{trimmed}/.default")],
            vec![format!("{trimmed}//.default")],
        ];
        let mut chosen = &forms[0];
        for scopes in &forms {
            let request = TokenRequest {
                account,
                scopes,
                tenant: None,
            };
            match self.cached_in_snapshot(&request) {
                Ok(Some(Cached {
                    token,
                    refresh_due: false,
                })) => return Ok(token),
                Ok(Some(Cached {
                    refresh_due: true, ..
                })) => {
                    chosen = scopes;
                    break;
                }
                _ => {}
            }
        }
        let request = TokenRequest {
            account,
            scopes: chosen,
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
        self.cached_in_snapshot(request)
    }

    /// [`Tokens::cached`] as of the last reload.
    fn cached_in_snapshot(&self, request: &TokenRequest<'_>) -> Result<Option<Cached>> {
        let now = (self.clock)();
        self.with_snapshot(|cache, accounts| {
            let account = select_account(accounts, request.account)?;
            Ok(self.cached_token(cache, account, request, now, false))
        })
    }

    /// A token: from the cache if it has more than 5 minutes left and is not due for refresh,
    /// else refreshed (single-flight); past `refresh_on` a failed refresh falls back to the
    /// cached token.
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
        let now = (self.clock)();
        let (account, cached) = self.with_snapshot(|cache, accounts| -> Result<_> {
            let account = select_account(accounts, request.account)?.clone();
            let cached = self.cached_token(cache, &account, request, now, false);
            Ok((account, cached))
        })?;
        let key = FlightKey {
            account: account.home_account_id.clone(),
            tenant: request.tenant.map(str::to_string),
            scopes: {
                let mut s = request.scopes.to_vec();
                s.sort();
                s
            },
        };
        lock(&self.in_use).insert(key.clone(), Instant::now());
        if let Some(Cached {
            token,
            refresh_due: false,
        }) = cached
        {
            return Ok(token);
        }
        self.refresh_flight(&key, &account, request).await
    }

    /// The cached token for a request, with whether it is due for refresh.
    fn cached_token(
        &self,
        cache: &TokenCache,
        account: &AccountInfo,
        request: &TokenRequest<'_>,
        now: i64,
        refreshed: bool,
    ) -> Option<Cached> {
        let min_left = if refreshed { 0 } else { EXPIRY_SKEW_SECS };
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
            token: to_served(&found, account, refreshed),
            refresh_due: found.refresh_due,
        })
    }

    async fn refresh_flight(
        &self,
        key: &FlightKey,
        account: &AccountInfo,
        request: &TokenRequest<'_>,
    ) -> Result<ServedToken> {
        let gate = lock(&self.flights).entry(key.clone()).or_default().clone();
        let _turn = gate.lock().await;
        // Whoever held the gate may have refreshed already; another process may have too.
        self.reload_if_changed()?;
        let now = (self.clock)();
        let cached = self.with_cache(|c| self.cached_token(c, account, request, now, false));
        if let Some(Cached {
            token,
            refresh_due: false,
        }) = &cached
        {
            return Ok(token.clone());
        }
        if let Some(wait) = self.backing_off(&account.home_account_id) {
            return cached.map(|c| c.token).ok_or_else(|| {
                let reason = self
                    .with_cache(|c| c.state.needs_sign_in.get(&account.home_account_id).cloned());
                match reason {
                    Some(reason) => Error::InteractionRequired {
                        account: account.username.clone(),
                        reason,
                        claims: None,
                    },
                    None => Error::AuthorityUnavailable {
                        detail: "recent requests to Entra ID failed".into(),
                        retry_after: Some(wait.as_secs().max(1)),
                    },
                }
            });
        }
        match self.refresh(account, request).await {
            Ok(served) => {
                lock(&self.backoff).remove(&account.home_account_id);
                Ok(served)
            }
            Err(e) => {
                let (wait, streak) = {
                    let mut backoff = lock(&self.backoff);
                    let streak = backoff.get(&account.home_account_id).map_or(0, |(_, n)| *n) + 1;
                    let wait = match &e {
                        Error::AuthorityUnavailable {
                            retry_after: Some(s),
                            ..
                        } => Duration::from_secs(*s).min(MAX_BACKOFF),
                        Error::AuthorityUnavailable { .. } => {
                            Duration::from_secs(5u64 << streak.min(6)).min(MAX_BACKOFF)
                        }
                        _ => INTERACTION_BACKOFF,
                    };
                    backoff.insert(
                        account.home_account_id.clone(),
                        (Instant::now() + wait, streak),
                    );
                    (wait, streak)
                };
                tracing::warn!(
                    "refresh for {} failed ({e}); next try in {}s (failure {streak})",
                    account.username,
                    wait.as_secs()
                );
                if e.is_transient() {
                    self.emit(Event::RefreshFailed {
                        account: account.username.clone(),
                        reason: e.to_string(),
                    });
                }
                // Past refresh_on but still valid: the cached token is still good.
                match cached {
                    Some(c) => Ok(c.token),
                    None => Err(e),
                }
            }
        }
    }

    fn backing_off(&self, home_account_id: &str) -> Option<Duration> {
        let backoff = lock(&self.backoff);
        let (until, _) = backoff.get(home_account_id)?;
        until
            .checked_duration_since(Instant::now())
            .filter(|d| !d.is_zero())
    }

    /// Redeems the account's refresh tokens (family first) until one works.
    async fn refresh(
        &self,
        account: &AccountInfo,
        request: &TokenRequest<'_>,
    ) -> Result<ServedToken> {
        let tenant = request.tenant.unwrap_or(&self.config.tenant).to_string();
        let authority = self.entra.authority().with_tenant(&tenant);
        let candidates: Vec<(String, Secret)> = self.with_cache(|c| {
            c.refresh_token_candidates(
                &account.home_account_id,
                &account.environment,
                &self.config.client_id,
            )
            .into_iter()
            .filter_map(|k| {
                c.refresh_tokens()
                    .get(&k)
                    .and_then(|rt| rt.secret.clone())
                    .map(|s| (k, s))
            })
            .collect()
        });
        if candidates.is_empty() {
            return Err(self.needs_sign_in(
                account,
                "no refresh token is cached for this account".into(),
                None,
            ));
        }
        let scope = scope_param(request.scopes);
        let mut last = None;
        for (key, rt) in candidates {
            let form = [
                ("grant_type", "refresh_token"),
                ("refresh_token", rt.expose()),
                ("scope", scope.as_str()),
            ];
            match self.entra.token(&authority, &form).await {
                Ok(response) => {
                    return self.store_refresh(account, request, &tenant, &key, response);
                }
                Err(Failure::OAuth(e)) => {
                    let mismatch = e
                        .error_additional_info
                        .as_ref()
                        .is_some_and(|v| v.to_string().contains("client_mismatch"));
                    last = Some(e);
                    if mismatch {
                        continue;
                    }
                }
                Err(Failure::Other(e)) => return Err(e),
            }
        }
        let e = last.unwrap_or_default();
        if e.needs_interaction() {
            Err(self.needs_sign_in(account, e.summary(), e.claims))
        } else {
            Err(e.into_error(&account.username))
        }
    }

    fn store_refresh(
        &self,
        account: &AccountInfo,
        request: &TokenRequest<'_>,
        tenant: &str,
        used: &str,
        response: TokenResponse,
    ) -> Result<ServedToken> {
        let now = (self.clock)();
        let env = self.entra.authority().environment();
        let scopes = request.scopes.to_vec();
        let hid = account.home_account_id.clone();
        self.update(|c| {
            let event = TokenEvent {
                client_id: &self.config.client_id,
                environment: &env,
                realm: tenant,
                requested_scopes: &scopes,
                grant: Grant::RefreshToken { used },
            };
            c.ingest(&event, response, now)?;
            c.state.needs_sign_in.remove(&hid);
            Ok(())
        })?;
        let served = self
            .with_cache(|c| self.cached_token(c, account, request, now, true))
            .map(|c| c.token)
            .ok_or_else(|| {
                Error::Protocol("the refreshed token does not cover the requested scopes".into())
            })?;
        self.emit(Event::TokenRefreshed {
            account: account.username.clone(),
            scopes: served.scopes.clone(),
            expires_on: served.expires_on,
        });
        Ok(served)
    }

    /// Marks the account "needs sign-in" (persisted; the account and its tokens are kept).
    fn needs_sign_in(
        &self,
        account: &AccountInfo,
        reason: String,
        claims: Option<String>,
    ) -> Error {
        let hid = account.home_account_id.clone();
        let r = reason.clone();
        if let Err(e) = self.update(move |c| {
            c.state.needs_sign_in.insert(hid, r);
            Ok(())
        }) {
            tracing::warn!(
                "could not record that {} needs sign-in: {e}",
                account.username
            );
        }
        self.emit(Event::NeedsSignIn {
            account: account.username.clone(),
            reason: reason.clone(),
        });
        self.emit(Event::AccountsChanged);
        Error::InteractionRequired {
            account: account.username.clone(),
            reason,
            claims,
        }
    }

    /// Ingests a completed interactive sign-in: the account becomes signed in (and the default
    /// if there is none).
    fn sign_in_done(
        &self,
        response: TokenResponse,
        tenant: &str,
        scopes: &[String],
        grant: Grant<'_>,
    ) -> Result<AccountInfo> {
        let now = (self.clock)();
        let env = self.entra.authority().environment();
        let hid = self.update(|c| {
            let event = TokenEvent {
                client_id: &self.config.client_id,
                environment: &env,
                realm: tenant,
                requested_scopes: scopes,
                grant,
            };
            let ingested = c.ingest(&event, response, now)?;
            let hid = ingested.home_account_id.ok_or_else(|| {
                Error::Protocol(
                    "the answer does not identify an account (no client_info or id_token)".into(),
                )
            })?;
            c.state.needs_sign_in.remove(&hid);
            if c.state.default_account.is_none() {
                c.state.default_account = Some(hid.clone());
            }
            Ok(hid)
        })?;
        lock(&self.backoff).remove(&hid);
        let account = self
            .with_snapshot(|_, accounts| {
                accounts.iter().find(|a| a.home_account_id == hid).cloned()
            })
            .ok_or_else(|| Error::Protocol("the signed-in account is not in the cache".into()))?;
        self.emit(Event::AccountsChanged);
        self.emit(Event::SignedIn {
            account: account.username.clone(),
        });
        Ok(account)
    }

    /// Browser sign-in; `open` gets the URL to show or open.
    ///
    /// # Errors
    /// Those of [`flow::browser::sign_in`]; nothing is written on error.
    pub async fn sign_in_browser(
        &self,
        options: flow::browser::Options,
        open: impl FnOnce(&Url) -> Result<()>,
        cancel: impl Future<Output = ()>,
    ) -> Result<AccountInfo> {
        let done = flow::browser::sign_in(&self.entra, options, open, cancel).await?;
        self.sign_in_done(
            done.response,
            &done.tenant,
            &done.scopes,
            Grant::AuthorizationCode,
        )
    }

    /// Starts a device code sign-in; show the result's message, then call
    /// [`Tokens::finish_device_code`].
    ///
    /// # Errors
    /// Those of [`flow::device_code::start`].
    pub async fn start_device_code(
        &self,
        tenant: Option<&str>,
        scopes: &[String],
    ) -> Result<flow::device_code::DeviceCode> {
        let code = flow::device_code::start(&self.entra, tenant, scopes).await?;
        self.emit(Event::DeviceCodeReady {
            user_code: code.user_code.clone(),
            verification_uri: code.verification_uri.clone(),
        });
        Ok(code)
    }

    /// Waits for the device code sign-in to complete.
    ///
    /// # Errors
    /// Those of [`flow::device_code::wait`]; nothing is written on error.
    pub async fn finish_device_code(
        &self,
        code: &flow::device_code::DeviceCode,
        cancel: impl Future<Output = ()>,
    ) -> Result<AccountInfo> {
        let response = flow::device_code::wait(&self.entra, code, cancel).await?;
        self.sign_in_done(response, code.tenant(), code.scopes(), Grant::DeviceCode)
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
            accounts.iter().find(|a| a.home_account_id == hid).cloned()
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
            lock(&self.backoff).remove(&a.home_account_id);
            lock(&self.in_use).retain(|k, _| k.account != a.home_account_id);
        }
        self.emit(Event::AccountsChanged);
        Ok(gone)
    }

    /// Renews tokens in use before they expire, every `period`, until `shutdown` completes.
    pub async fn refresh_in_background(
        self: Arc<Self>,
        period: Duration,
        shutdown: impl Future<Output = ()>,
    ) {
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                () = tokio::time::sleep(period) => {}
                () = &mut shutdown => return,
            }
            let keys: Vec<FlightKey> = {
                let mut in_use = lock(&self.in_use);
                in_use.retain(|_, used| used.elapsed() < IN_USE_WINDOW);
                in_use.keys().cloned().collect()
            };
            for key in keys {
                if let Err(e) = self.renew(&key).await {
                    tracing::debug!("background refresh: {e}");
                }
            }
        }
    }

    async fn renew(&self, key: &FlightKey) -> Result<()> {
        self.reload_if_changed()?;
        let now = (self.clock)();
        let request = TokenRequest {
            account: Some(&key.account),
            scopes: &key.scopes,
            tenant: key.tenant.as_deref(),
        };
        let (account, due) = self
            .with_cache(|c| {
                let account = c
                    .accounts()
                    .into_iter()
                    .find(|a| a.home_account_id == key.account)?;
                let due = match find_token(
                    c,
                    &self.config,
                    &account,
                    &key.scopes,
                    key.tenant.as_deref(),
                    now,
                    EXPIRY_SKEW_SECS,
                ) {
                    Some(t) => t.refresh_due || t.expires_on - now < RENEW_BEFORE_SECS,
                    None => true,
                };
                Some((account, due))
            })
            .ok_or(Error::NoAccount)?;
        if due && account.needs_sign_in.is_none() {
            // Force past the cache check: the flight refreshes because the token is due.
            let gate = lock(&self.flights).entry(key.clone()).or_default().clone();
            let _turn = gate.lock().await;
            if self.backing_off(&account.home_account_id).is_none() {
                self.refresh(&account, &request).await?;
            }
        }
        Ok(())
    }
}

fn to_served(found: &FoundToken<'_>, account: &AccountInfo, refreshed: bool) -> ServedToken {
    let realm = found.entry.realm.as_deref().unwrap_or_default();
    let tenant = if matches!(realm, "organizations" | "common" | "consumers" | "") {
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
        token_type: found
            .entry
            .token_type
            .clone()
            .unwrap_or_else(|| "Bearer".into()),
        scopes: found.entry.target.clone().unwrap_or_default(),
        tenant,
        account: account.clone(),
        refreshed,
    }
}

/// The cached access token for `account` and `scopes` with at least `min_left` seconds left. With
/// a tenant, only that realm; without, the configured tenant first, then the home tenant, then
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
            Some(t) => RealmPreference::Only(t),
            None => RealmPreference::Prefer {
                first: &config.tenant,
                then: account.home_tenant.as_deref(),
            },
        },
        scopes,
    };
    cache.find_access_token(&query, now, min_left)
}
