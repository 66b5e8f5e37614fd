//! Refreshing: single-flight per key, one redemption per account, classified failures, and
//! background renewal of the tokens in use.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use super::health::{FailureClass, classify, denial, throttled};
use super::{Cached, Event, FlightKey, ServedToken, TokenRequest, Tokens, find_token};
use crate::cache::{AccountInfo, Challenge, EXPIRY_SKEW_SECS, Grant, TokenEvent, TokenResponse};
use crate::flow::{Failure, OAuthError, scope_param};
use crate::secret::Secret;
use crate::sync::lock;
use crate::{Denial, Error, Result};

/// Tokens used within this window are renewed in the background.
const IN_USE_WINDOW: Duration = Duration::from_secs(12 * 3600);
/// Background renewal happens when a token has less than this left: 5 minutes before a request
/// would have to wait for one ([`super::SERVE_MIN_LEFT_SECS`]).
const RENEW_BEFORE_SECS: i64 = super::SERVE_MIN_LEFT_SECS + 300;
/// A token that is still valid is served during an outage while it has at least this left.
const VALID_SECS: i64 = 1;
/// Most keys remembered per map (flights, keys in use, failing keys): distinct scope strings
/// are the caller's to choose, memory is not.
pub(super) const MAX_KEYS: usize = 256;

/// The longest shared `Retry-After` honoured (a broken or hostile answer cannot stop
/// tokentray for longer).
const MAX_SHARED_WAIT: u64 = 300;

impl Tokens {
    /// The gate of `key`'s flight: one refresh at a time per (account, tenant, scopes).
    fn flight(&self, key: &FlightKey) -> Arc<tokio::sync::Mutex<()>> {
        let mut flights = lock(&self.flights);
        if flights.len() >= MAX_KEYS {
            // Gates nobody holds or waits on are only memory.
            flights.retain(|_, gate| Arc::strong_count(gate) > 1);
        }
        flights.entry(key.clone()).or_default().clone()
    }

    /// Refreshes `request`'s token (single-flight). A failure for lack of Entra serves a cached
    /// token that is still valid; only a dead refresh token touches the account.
    pub(super) async fn refresh_flight(
        &self,
        key: &FlightKey,
        account: &Arc<AccountInfo>,
        request: &TokenRequest<'_>,
    ) -> Result<ServedToken> {
        let gate = self.flight(key);
        let _turn = gate.lock().await;
        // Whoever held the gate may have refreshed already; another process may have too.
        self.reload_if_changed()?;
        let now = (self.clock)();
        let (fresh, valid) = self.with_cache(|c| {
            (
                self.cached_token(c, account, request, now, super::SERVE_MIN_LEFT_SECS),
                self.cached_token(c, account, request, now, VALID_SECS),
            )
        });
        if let Some(Cached {
            token,
            refresh_due: false,
        }) = fresh
        {
            return Ok(token);
        }
        if let Some(reason) = &account.needs_sign_in {
            // A dead refresh token stays dead until the user signs in: no request to Entra.
            return valid
                .map(|c| c.token)
                .ok_or_else(|| Error::InteractionRequired {
                    account: account.username.clone(),
                    reason: reason.clone(),
                    claims: None,
                });
        }
        if let Some(wait) = lock(&self.backoff).waiting(&account.home_account_id) {
            return valid.map(|c| c.token).ok_or(Error::AuthorityUnavailable {
                detail: "recent requests to Entra ID failed".into(),
                retry_after: Some(wait.as_secs().max(1)),
            });
        }
        if let Some(wait) = self.shared_retry_after()? {
            // Another process was told to wait: this one waits too, and shows it.
            let e = Error::AuthorityUnavailable {
                detail: "Entra ID asked tokentray to wait (Retry-After)".into(),
                retry_after: Some(wait),
            };
            lock(&self.backoff).failed(&account.home_account_id, &e);
            return valid.map(|c| c.token).ok_or(e);
        }
        match self.refresh(account, request).await {
            Ok(served) => {
                lock(&self.backoff).clear(&account.home_account_id);
                Ok(served)
            }
            Err(e) if e.is_transient() => {
                self.share_retry_after(&e);
                let (wait, streak) = lock(&self.backoff).failed(&account.home_account_id, &e);
                tracing::info!(
                    "refresh for {} failed ({e}); next try in {}s (failure {streak})",
                    account.username,
                    wait.as_secs()
                );
                self.emit(Event::RefreshFailed {
                    account: account.username.clone(),
                    reason: e.to_string(),
                });
                // Still valid: the cached token is still good, until its real expiry.
                valid.map(|c| c.token).ok_or(e)
            }
            Err(e) => {
                // This request (or this account) cannot be renewed: stop renewing it.
                lock(&self.in_use).swap_remove(key);
                Err(e)
            }
        }
    }

    /// Seconds left of a `Retry-After` any tokentray process was given, if one still runs.
    fn shared_retry_after(&self) -> Result<Option<u64>> {
        self.reload_if_changed()?;
        let now = (self.clock)();
        let until = self.with_cache(|c| c.state.authority_retry_at);
        Ok(until
            .filter(|u| *u > now)
            .map(|u| u64::try_from(u - now).unwrap_or(1).min(MAX_SHARED_WAIT)))
    }

    /// Keeps the `Retry-After` of `e`, if it has one, for every tokentray process (best
    /// effort: this process backs off either way).
    fn share_retry_after(&self, e: &Error) {
        let Error::AuthorityUnavailable {
            retry_after: Some(secs),
            ..
        } = e
        else {
            return;
        };
        let until =
            (self.clock)().saturating_add(i64::try_from((*secs).min(MAX_SHARED_WAIT)).unwrap_or(0));
        let kept = self.update(|c| {
            if c.state.authority_retry_at.is_none_or(|u| u < until) {
                c.state.authority_retry_at = Some(until);
            }
            Ok(())
        });
        if let Err(e) = kept {
            tracing::debug!("could not share Retry-After with other processes: {e}");
        }
    }

    /// Redeems the account's refresh tokens (family first) until one works, one redemption at
    /// a time per account. A refresh token that another process rotated meanwhile is reread
    /// from the file and tried once more before the failure is classified.
    async fn refresh(
        &self,
        account: &Arc<AccountInfo>,
        request: &TokenRequest<'_>,
    ) -> Result<ServedToken> {
        let gate = lock(&self.redeeming)
            .entry(account.home_account_id.clone())
            .or_default()
            .clone();
        let _turn = gate.lock().await;
        // The newest refresh token, whoever rotated it (this process or another).
        self.reload()?;
        let tenant = request.tenant.unwrap_or(&self.config.tenant).to_string();
        let candidates = self.refresh_token_candidates(account);
        if candidates.is_empty() {
            return Err(self.needs_sign_in(
                account,
                "no refresh token is cached for this account".into(),
                None,
            ));
        }
        let mut last = None;
        for (key, rt) in candidates {
            let failure = match self.redeem(account, &tenant, &rt, request).await {
                Ok(response) => {
                    return self.store_refresh(account, request, &tenant, &key, response);
                }
                Err(Failure::Other(e)) => return Err(e),
                Err(Failure::OAuth(e)) => e,
            };
            let failure = if failure.error == "invalid_grant" {
                match self.rotated_meanwhile(&key, &rt)? {
                    Some(newer) => match self.redeem(account, &tenant, &newer, request).await {
                        Ok(response) => {
                            return self.store_refresh(account, request, &tenant, &key, response);
                        }
                        Err(Failure::Other(e)) => return Err(e),
                        Err(Failure::OAuth(e)) => e,
                    },
                    None => failure,
                }
            } else {
                failure
            };
            let mismatch = failure
                .error_additional_info
                .as_ref()
                .is_some_and(|v| v.to_string().contains("client_mismatch"));
            last = Some(failure);
            if !mismatch {
                break;
            }
        }
        let e = last.unwrap_or_default();
        Err(match classify(&e) {
            FailureClass::Account => self.needs_sign_in(account, e.summary(), e.claims),
            FailureClass::Transient => Error::AuthorityUnavailable {
                detail: if throttled(&e) {
                    format!("throttled: {}", e.summary())
                } else {
                    e.summary()
                },
                retry_after: None,
            },
            FailureClass::Request => {
                let challenge = Challenge {
                    scopes: request.scopes.join(" "),
                    tenant: request.tenant.map(str::to_string),
                    claims: e.claims.clone(),
                    reason: e.summary(),
                };
                let denial = denial(&e);
                if interactive(&e) || denial == Some(Denial::ConsentRequired) {
                    self.remember_challenge(account, &challenge);
                }
                let failure = match denial {
                    Some(denial) => Error::Denied {
                        denial,
                        account: account.username.clone(),
                        scopes: challenge.scopes,
                        tenant: challenge.tenant,
                        reason: challenge.reason,
                    },
                    None if interactive(&e) => Error::InteractionRequired {
                        account: account.username.clone(),
                        reason: format!("{} (for {})", challenge.reason, challenge.target()),
                        claims: challenge.claims,
                    },
                    None => Error::Authority {
                        error: e.error,
                        description: e.error_description,
                        codes: e.error_codes,
                    },
                };
                let mut failing = lock(&self.failing);
                if failing.len() >= MAX_KEYS {
                    failing.clear(); // a flood of distinct bad requests: forget, do not grow
                }
                failing.insert(FlightKey::new(account, request), failure.to_string());
                failure
            }
        })
    }

    /// Whether a refresh token of `account` (home account id) is being redeemed now.
    pub(super) fn is_redeeming(&self, account: &str) -> bool {
        lock(&self.redeeming)
            .get(account)
            .is_some_and(|gate| gate.try_lock().is_err())
    }

    /// The account's refresh tokens in the order to try them: (cache key, secret).
    fn refresh_token_candidates(&self, account: &AccountInfo) -> Vec<(String, Secret)> {
        self.with_cache(|c| {
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
        })
    }

    /// The refresh token now under `key` in the file, if another process replaced `used`.
    fn rotated_meanwhile(&self, key: &str, used: &Secret) -> Result<Option<Secret>> {
        self.reload()?;
        Ok(self.with_cache(|c| {
            c.refresh_tokens()
                .get(key)
                .and_then(|rt| rt.secret.clone())
                .filter(|now| now != used)
        }))
    }

    /// The refresh-token grant of `account` for `request` in `tenant`.
    async fn redeem(
        &self,
        account: &AccountInfo,
        tenant: &str,
        refresh_token: &Secret,
        request: &TokenRequest<'_>,
    ) -> std::result::Result<TokenResponse, Failure> {
        let authority = self.entra.authority().with_tenant(tenant);
        let scope = scope_param(request.scopes);
        let form = [
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token.expose()),
            ("scope", scope.as_str()),
        ];
        self.entra
            .token(&authority, &form, Some(&account.home_account_id))
            .await
    }

    fn store_refresh(
        &self,
        account: &Arc<AccountInfo>,
        request: &TokenRequest<'_>,
        tenant: &str,
        used: &str,
        response: TokenResponse,
    ) -> Result<ServedToken> {
        let now = (self.clock)();
        lock(&self.failing).remove(&FlightKey::new(account, request));
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
            .with_cache(|c| self.cached_token(c, account, request, now, 0))
            .map(|c| c.token)
            .ok_or_else(|| {
                Error::Protocol("the refreshed token does not cover the requested scopes".into())
            })?;
        let mut served = served;
        served.refreshed = true;
        self.emit(Event::TokenRefreshed {
            account: account.username.clone(),
            scopes: served.scopes.to_string(),
            expires_on: served.expires_on,
        });
        Ok(served)
    }

    /// Keeps `challenge` as the account's (persisted): the next `tokentray login` or "Sign in
    /// again" signs in for exactly it, with Entra's claims (best effort: the failure is
    /// reported either way). A tool retrying the same request writes nothing more.
    fn remember_challenge(&self, account: &AccountInfo, challenge: &Challenge) {
        let hid = account.home_account_id.clone();
        if self.with_cache(|c| c.state.challenges.get(&hid) == Some(challenge)) {
            return;
        }
        let challenge = challenge.clone();
        let kept = self.update(move |c| {
            c.state.challenges.insert(hid, challenge);
            Ok(())
        });
        if let Err(e) = kept {
            tracing::warn!("could not keep the sign-in {} needs: {e}", account.username);
        }
        self.emit(Event::AccountsChanged);
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
        let scopes = key.scope_list();
        let request = TokenRequest {
            account: Some(&key.account),
            scopes: &scopes,
            tenant: key.tenant.as_deref(),
        };
        let (account, due) = self
            .with_snapshot(|c, accounts| {
                let account = accounts
                    .iter()
                    .find(|a| a.home_account_id == key.account)?
                    .clone();
                let due = match find_token(
                    c,
                    &self.config,
                    &account,
                    &scopes,
                    key.tenant.as_deref(),
                    now,
                    EXPIRY_SKEW_SECS,
                ) {
                    Some(t) => {
                        t.refresh_due || t.expires_on.saturating_sub(now) < RENEW_BEFORE_SECS
                    }
                    None => true,
                };
                Some((account, due))
            })
            .ok_or(Error::NoAccount)?;
        if due && account.needs_sign_in.is_none() {
            // Force past the cache check: the flight refreshes because the token is due.
            let gate = self.flight(key);
            let _turn = gate.lock().await;
            let waiting = lock(&self.backoff).waiting(&account.home_account_id);
            if waiting.is_none()
                && let Err(e) = self.refresh(&account, &request).await
            {
                if !e.is_transient() {
                    lock(&self.in_use).swap_remove(key);
                }
                return Err(e);
            }
        }
        Ok(())
    }
}

/// Whether a request-only failure is cured by an interactive sign-in for that request
/// (Conditional Access, consent, a claims challenge), rather than by asking differently.
fn interactive(e: &OAuthError) -> bool {
    e.claims.is_some()
        || matches!(
            e.error.as_str(),
            "interaction_required" | "consent_required" | "login_required"
        )
        || matches!(
            e.suberror.as_deref(),
            Some("basic_action" | "additional_action" | "consent_required")
        )
}
