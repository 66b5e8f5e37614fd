//! Sign-ins started from the window: one at a time, cancellable, with the device code shown.

use std::sync::Arc;

use serde::Serialize;
use tokio::sync::watch;

use super::Desktop;
use crate::cache::AccountInfo;
use crate::flow::browser;
use crate::flow::device_code::DeviceCode;
use crate::flow::open::Opened;
use crate::sync::lock;
use crate::tokens::Event;
use crate::{Error, Result};

/// The sign-in in progress: dropping or replacing it cancels it.
#[derive(Debug)]
pub(super) struct PendingSignIn {
    id: u64,
    cancel: watch::Sender<bool>,
    device_code: Option<Arc<DeviceCode>>,
}

/// A started device code sign-in, for the window (no device code: only what the user needs).
#[derive(Debug, Clone, Serialize)]
pub struct DeviceCodeView {
    /// The code to enter.
    pub user_code: String,
    /// Where to enter it.
    pub verification_uri: String,
    /// When the code expires, epoch seconds.
    pub expires_on: i64,
    /// The authority's instructions.
    pub message: String,
}

impl Desktop {
    /// Starts a sign-in, cancelling any other in progress; returns its id and cancel signal.
    fn begin_sign_in(&self, device_code: Option<Arc<DeviceCode>>) -> (u64, watch::Receiver<bool>) {
        let (cancel, cancelled) = watch::channel(false);
        let mut slot = lock(&self.sign_in);
        let id = slot.as_ref().map_or(1, |p| p.id + 1);
        if let Some(previous) = slot.replace(PendingSignIn {
            id,
            cancel,
            device_code,
        }) {
            let _ = previous.cancel.send(true);
        }
        (id, cancelled)
    }

    fn end_sign_in(&self, id: u64) {
        let mut slot = lock(&self.sign_in);
        if slot.as_ref().is_some_and(|p| p.id == id) {
            *slot = None;
        }
    }

    /// Signs in with the system browser (auth code + PKCE), hinting `login_hint`; completes
    /// when the user finishes, cancels ([`Desktop::cancel_sign_in`] or another sign-in), or
    /// after 5 minutes.
    ///
    /// # Errors
    /// Those of [`Tokens::sign_in_browser`].
    pub async fn sign_in_browser<O: Into<Opened>>(
        &self,
        login_hint: Option<String>,
        open: impl FnOnce(&url::Url) -> Result<O>,
    ) -> Result<AccountInfo> {
        let (id, cancelled) = self.begin_sign_in(None);
        // Signing in again as an account a request waits for: for exactly that request.
        let challenge = match &login_hint {
            Some(hint) => self
                .tokens
                .pending_challenges()?
                .into_iter()
                .find(|(a, _)| a.username.eq_ignore_ascii_case(hint))
                .map(|(_, ch)| ch),
            None => None,
        };
        let options = match challenge {
            Some(ch) => browser::Options {
                scopes: ch.scope_list(),
                tenant: ch.tenant,
                login_hint,
                prompt: None,
                claims: ch.claims,
                timeout: browser::DEFAULT_TIMEOUT,
            },
            None => browser::Options {
                tenant: None,
                scopes: vec![self.tokens.login_scope()],
                login_hint,
                prompt: Some("select_account".into()),
                claims: None,
                timeout: browser::DEFAULT_TIMEOUT,
            },
        };
        // The window shows the page's address too, to copy when no browser window appears.
        let open = |url: &url::Url| {
            self.tokens.emit(Event::SignInPage {
                url: url.to_string(),
            });
            open(url)
        };
        let result = self
            .tokens
            .sign_in_browser(options, open, wait_cancel(cancelled))
            .await;
        self.end_sign_in(id);
        self.signed_in(result)
    }

    /// Starts a device code sign-in; show the result, then call
    /// [`Desktop::finish_device_code`].
    ///
    /// # Errors
    /// Those of [`Tokens::start_device_code`].
    pub async fn start_device_code(&self) -> Result<DeviceCodeView> {
        let code = self
            .tokens
            .start_device_code(None, &[self.tokens.login_scope()], None)
            .await?;
        let view = DeviceCodeView {
            user_code: code.user_code.clone(),
            verification_uri: code.verification_uri.clone(),
            expires_on: self.tokens.now() + i64::try_from(code.expires_in).unwrap_or(900),
            message: code.message.clone(),
        };
        self.begin_sign_in(Some(Arc::new(code)));
        Ok(view)
    }

    /// Waits for the started device code sign-in.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] if none was started; those of [`Tokens::finish_device_code`].
    pub async fn finish_device_code(&self) -> Result<AccountInfo> {
        let (id, code, cancelled) = {
            let slot = lock(&self.sign_in);
            let pending = slot.as_ref().filter(|p| p.device_code.is_some());
            match pending.and_then(|p| Some((p.id, p.device_code.clone()?, p.cancel.subscribe()))) {
                Some(found) => found,
                None => {
                    return Err(Error::invalid(
                        "device code sign-in",
                        "none is in progress; start one with \"Sign in with device code\"",
                    ));
                }
            }
        };
        let result = self
            .tokens
            .finish_device_code(&code, wait_cancel(cancelled))
            .await;
        self.end_sign_in(id);
        self.signed_in(result)
    }

    /// After the app's first successful sign-in, switches start at login on, once
    /// ([`Desktop::starting_at_login`]): the tray app then starts with the session. Turned off
    /// in Settings, it stays off (the offer is recorded in the cache); a failure to write the
    /// entry is logged, never fails the sign-in. After the first sign-in at which the session
    /// environment could be installed safely, the window offers it, once
    /// ([`super::Overview::offer_every_app`]).
    fn signed_in(&self, result: Result<AccountInfo>) -> Result<AccountInfo> {
        if result.is_ok() && self.start_at_login_on_first_sign_in {
            let first = self.tokens.update_app_state(|state| {
                Ok(!std::mem::replace(&mut state.start_at_login_offered, true))
            });
            if matches!(first, Ok(true)) && !super::autostart::enabled() {
                match super::autostart::set(true) {
                    Ok(()) => tracing::info!("start at login switched on (first sign-in)"),
                    Err(e) => tracing::warn!("could not switch start at login on: {e}"),
                }
            }
            let port = self.tokens.config().port;
            if !crate::session_env::installed() && crate::session_env::held(port).is_ok() {
                let first = self.tokens.update_app_state(|state| {
                    Ok(!std::mem::replace(&mut state.every_app_offered, true))
                });
                if matches!(first, Ok(true)) {
                    *lock(&self.every_app_offer) = true;
                }
            }
        }
        result
    }

    /// The verification page of the device code sign-in in progress.
    pub fn verification_uri(&self) -> Option<String> {
        lock(&self.sign_in)
            .as_ref()
            .and_then(|p| p.device_code.as_ref())
            .map(|c| c.verification_uri.clone())
    }

    /// Cancels the sign-in in progress, if any: it fails with [`Error::SignIn`] (cancelled).
    pub fn cancel_sign_in(&self) {
        if let Some(pending) = lock(&self.sign_in).take() {
            let _ = pending.cancel.send(true);
        }
    }
}

async fn wait_cancel(mut cancelled: watch::Receiver<bool>) {
    // A dropped sender (the sign-in was replaced) also cancels.
    let _ = cancelled.wait_for(|c| *c).await;
}
