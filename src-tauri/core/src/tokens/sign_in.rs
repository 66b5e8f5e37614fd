//! Interactive sign-ins (browser, device code), ingested into the cache.

use std::future::Future;

use url::Url;

use super::{Event, Tokens};
use crate::cache::{AccountInfo, Challenge, Grant, TokenEvent, TokenResponse};
use crate::flow;
use crate::{Error, Result};

impl Tokens {
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
            if c.state
                .challenges
                .get(&hid)
                .is_some_and(|ch| ch.answered_by(scopes, tenant, &self.config.tenant))
            {
                c.state.challenges.remove(&hid);
            }
            if c.state.default_account.is_none() {
                c.state.default_account = Some(hid.clone());
            }
            Ok(hid)
        })?;
        self.forget_failures(&hid);
        let account = self
            .with_snapshot(|_, accounts| {
                accounts
                    .iter()
                    .find(|a| a.home_account_id == hid)
                    .map(|a| AccountInfo::clone(a))
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
    pub async fn sign_in_browser<O: Into<flow::open::Opened>>(
        &self,
        options: flow::browser::Options,
        open: impl FnOnce(&Url) -> Result<O>,
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
        claims: Option<&str>,
    ) -> Result<flow::device_code::DeviceCode> {
        let code = flow::device_code::start(&self.entra, tenant, scopes, claims).await?;
        self.emit(Event::DeviceCodeReady {
            user_code: code.user_code.clone(),
            verification_uri: code.verification_uri.clone(),
        });
        Ok(code)
    }

    /// The sign-ins requests are waiting for: each account's [`Challenge`], the default
    /// account's first.
    ///
    /// # Errors
    /// Those of reading the cache.
    pub fn pending_challenges(&self) -> Result<Vec<(AccountInfo, Challenge)>> {
        self.reload_if_changed()?;
        Ok(self.with_snapshot(|c, accounts| {
            let mut pending: Vec<(AccountInfo, Challenge)> = accounts
                .iter()
                .filter_map(|a| {
                    let ch = c.state.challenges.get(&a.home_account_id)?;
                    Some((AccountInfo::clone(a), ch.clone()))
                })
                .collect();
            pending.sort_by_key(|(a, _)| !a.is_default);
            pending
        }))
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
}
