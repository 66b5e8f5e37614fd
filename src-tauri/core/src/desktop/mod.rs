//! What the desktop app shows and does, with no display: the window's overview, the tray's
//! menu and icon state, which events become notifications, cancellable sign-ins, and the
//! settings the window edits. The Tauri shell turns these into a window, a tray and
//! notifications; everything here is plain data (view models, serialized for the window),
//! tested headless.
//!
//! Layout: [`Desktop`] here; `overview` (what the window shows), `settings`, `sign_in`,
//! `tray`, `notices`, `autostart`.

pub(crate) mod autostart;
mod notices;
mod overview;
mod settings;
mod sign_in;
mod tray;

use std::sync::{Arc, Mutex};

pub use crate::env::Shell;
pub use crate::flow::open::open_url;
pub use notices::{Notice, Notices};
pub use overview::{AccountView, ApprovalsView, EndpointView, Overview, TokenView};
pub use settings::{SettingsInput, SettingsView};
pub use sign_in::DeviceCodeView;
use sign_in::PendingSignIn;
pub use tray::{Tray, TrayAccount, TrayAction, TrayState};

use crate::Result;
use crate::approval::{self, Answer, Approvals};
use crate::cache::AccountInfo;
use crate::env::env_lines;
use crate::paths::Paths;
use crate::sync::lock;
use crate::tokens::Tokens;

/// The desktop app's state around [`Tokens`]: the sign-in in progress, the endpoint's fate and
/// the approval questions its endpoint asks.
/// Share it as `Arc<Desktop>`.
#[derive(Debug)]
pub struct Desktop {
    paths: Paths,
    tokens: Arc<Tokens>,
    approvals: Arc<Approvals>,
    sign_in: Mutex<Option<PendingSignIn>>,
    endpoint_error: Mutex<Option<String>>,
    /// Whether the first sign-in switches start at login on ([`Desktop::starting_at_login`]).
    start_at_login_on_first_sign_in: bool,
    /// Whether the window offers to let every app use tokentray (after a sign-in; once).
    every_app_offer: Mutex<bool>,
}

impl Desktop {
    /// The app's state over `tokens`, whose files live under `paths`.
    pub fn new(paths: Paths, tokens: Arc<Tokens>) -> Self {
        Self {
            paths,
            approvals: Arc::new(Approvals::new(tokens.clone(), true)),
            tokens,
            sign_in: Mutex::new(None),
            endpoint_error: Mutex::new(None),
            start_at_login_on_first_sign_in: false,
            every_app_offer: Mutex::new(false),
        }
    }

    /// Makes the app's first successful sign-in switch start at login on (the tray app calls
    /// this; headless uses of `Desktop`, such as tests, leave the user's session alone). It
    /// happens once per cache: turned off in Settings, it stays off.
    #[must_use]
    pub fn starting_at_login(mut self) -> Self {
        self.start_at_login_on_first_sign_in = true;
        self
    }

    /// The token owner.
    pub fn tokens(&self) -> &Arc<Tokens> {
        &self.tokens
    }

    /// The approval gate the app's endpoint asks through (its questions are answered in the
    /// window or a notification).
    pub fn approvals(&self) -> &Arc<Approvals> {
        &self.approvals
    }

    /// Answers the approval question `id`.
    ///
    /// # Errors
    /// Those of [`Approvals::answer`].
    pub fn answer_approval(&self, id: u64, answer: Answer) -> Result<()> {
        self.approvals.answer(id, answer)
    }

    /// Forgets the kept decision about the program at `path`: it is asked about again.
    ///
    /// # Errors
    /// Those of [`approval::revoke`].
    pub fn revoke_client(&self, path: &str) -> Result<String> {
        approval::revoke(&self.tokens, path)
    }

    /// The file locations.
    pub fn paths(&self) -> &Paths {
        &self.paths
    }

    /// Records why the endpoint stopped (shown in the window until the app restarts).
    pub fn endpoint_stopped(&self, why: String) {
        *lock(&self.endpoint_error) = Some(why);
    }

    /// The environment lines for tools (with the real secret) in `shell`'s syntax.
    ///
    /// # Errors
    /// Token store errors.
    pub fn env(&self, shell: Shell) -> Result<zeroize::Zeroizing<String>> {
        let secret = self.tokens.endpoint_secret()?;
        let url = crate::instance::endpoint_url(&self.paths, self.tokens.config().port);
        Ok(env_lines(
            &url,
            secret.expose(),
            shell,
            crate::env::path_first(&self.paths).as_deref(),
        ))
    }

    /// The access token of `account` (home account id or username) for `scopes`
    /// (space-separated) in `tenant`, refreshed first if it is about to expire: for the
    /// window's "Copy token".
    ///
    /// # Errors
    /// Those of [`Tokens::get_token`].
    pub async fn token(
        &self,
        account: &str,
        scopes: &str,
        tenant: &str,
    ) -> Result<crate::secret::Secret> {
        let scopes = crate::flow::parse_scopes(scopes);
        let served = self
            .tokens
            .get_token(&crate::tokens::TokenRequest {
                account: Some(account),
                scopes: &scopes,
                tenant: Some(tenant).filter(|t| !t.is_empty()),
            })
            .await?;
        Ok(served.access_token)
    }

    /// Replaces the endpoint secret and republishes `endpoint.json` if this app serves.
    ///
    /// # Errors
    /// Token store errors.
    pub fn rotate_secret(&self) -> Result<()> {
        crate::instance::rotate_secret(&self.paths, &self.tokens).map(drop)
    }

    /// Makes the account `query` names the default.
    ///
    /// # Errors
    /// Those of [`Tokens::switch`].
    pub fn switch(&self, query: &str) -> Result<AccountInfo> {
        self.tokens.switch(query)
    }

    /// Signs out the account `query` names, or every account.
    ///
    /// # Errors
    /// Those of [`Tokens::sign_out`].
    pub fn sign_out(&self, query: Option<&str>) -> Result<Vec<AccountInfo>> {
        self.tokens.sign_out(query)
    }
}
