//! What the desktop app shows and does, with no display: the window's overview, the tray's
//! menu and icon state, which events become notifications, cancellable sign-ins, and the
//! settings the window edits. The Tauri shell turns these into a window, a tray and
//! notifications; everything here is plain data, tested headless.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::cache::AccountInfo;
use crate::config::{Config, EditableSettings};
use crate::env::{Shell, env_lines};
use crate::flow::device_code::DeviceCode;
use crate::flow::{DEFAULT_LOGIN_SCOPE, browser};
use crate::instance::Endpoint;
use crate::paths::Paths;
use crate::sync::lock;
use crate::tokens::{Event, Tokens};
use crate::{Error, Result};

/// The desktop app's state around [`Tokens`]: the sign-in in progress and the endpoint's fate.
/// Share it as `Arc<Desktop>`.
#[derive(Debug)]
pub struct Desktop {
    paths: Paths,
    tokens: Arc<Tokens>,
    sign_in: Mutex<Option<Pending>>,
    endpoint_error: Mutex<Option<String>>,
}

/// The sign-in in progress: dropping or replacing it cancels it.
#[derive(Debug)]
struct Pending {
    id: u64,
    cancel: watch::Sender<bool>,
    device_code: Option<Arc<DeviceCode>>,
}

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
    /// Authority host.
    pub environment: String,
    /// Whether tools get this account when they name none.
    pub is_default: bool,
    /// Why the account must sign in again, if it must.
    pub needs_sign_in: Option<String>,
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
    /// Tenant (realm) it was issued for.
    pub tenant: String,
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
    /// The environment lines for tools, secret masked.
    pub env_preview: Vec<String>,
}

/// The settings, as in effect now.
#[derive(Debug, Clone, Serialize)]
pub struct SettingsView {
    /// Authority base URL or cloud name.
    pub authority: String,
    /// Tenant.
    pub tenant: String,
    /// Client id.
    pub client_id: String,
    /// Endpoint port.
    pub port: u16,
    /// Whether tokentray starts when the user logs in.
    pub start_at_login: bool,
    /// The store in use (`secret-service`, `keyutils`, `plaintext`, ...).
    pub store: &'static str,
    /// What survives a reboot, in words.
    pub store_persistence: &'static str,
    /// Whether tokens are encrypted at rest.
    pub encrypted: bool,
    /// Whether unencrypted storage is allowed or chosen.
    pub plaintext: bool,
    /// The config file.
    pub config_file: PathBuf,
    /// Settings fixed by `TOKENTRAY_*` environment variables (see [`Config::overridden`]).
    pub overridden: Vec<&'static str>,
    /// What a save did, for the window to show.
    pub notice: Option<String>,
}

/// The settings the window sends.
#[derive(Debug, Clone, Deserialize)]
pub struct SettingsInput {
    /// Authority base URL or cloud name.
    pub authority: String,
    /// Tenant.
    pub tenant: String,
    /// Client id (a GUID).
    pub client_id: String,
    /// Endpoint port, 1-65535.
    pub port: u32,
    /// Start when the user logs in.
    pub start_at_login: bool,
    /// Allow storing tokens unencrypted when no encrypted store is available.
    pub plaintext: bool,
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
    /// The app's state over `tokens`, whose files live under `paths`.
    pub fn new(paths: Paths, tokens: Arc<Tokens>) -> Self {
        Self {
            paths,
            tokens,
            sign_in: Mutex::new(None),
            endpoint_error: Mutex::new(None),
        }
    }

    /// The token owner.
    pub fn tokens(&self) -> &Arc<Tokens> {
        &self.tokens
    }

    /// The file locations.
    pub fn paths(&self) -> &Paths {
        &self.paths
    }

    /// Records why the endpoint stopped (shown in the window until the app restarts).
    pub fn endpoint_stopped(&self, why: String) {
        *lock(&self.endpoint_error) = Some(why);
    }

    /// The window's view of everything.
    ///
    /// # Errors
    /// PersistedCache errors while reloading a changed cache file.
    pub fn overview(&self) -> Result<Overview> {
        let now = self.tokens.now();
        let cache = self.tokens.cache();
        let mut accounts: Vec<AccountView> = self
            .tokens
            .accounts()?
            .into_iter()
            .map(|a| self.account_view(&cache, a))
            .collect();
        accounts.sort_by_key(|a| !a.is_default);
        Ok(Overview {
            now,
            accounts,
            endpoint: self.endpoint_view(),
            settings: self.settings_view()?,
        })
    }

    fn account_view(&self, cache: &crate::cache::TokenCache, account: AccountInfo) -> AccountView {
        let mut tokens: Vec<TokenView> = cache
            .access_tokens()
            .values()
            .filter(|t| t.home_account_id.as_deref() == Some(account.home_account_id.as_str()))
            .map(|t| {
                let scopes = t.target.clone().unwrap_or_default();
                TokenView {
                    resource: resource_of(&scopes),
                    last_served_to: self.tokens.last_served_to(&account.username, &scopes),
                    scopes,
                    tenant: t.realm.clone().unwrap_or_default(),
                    expires_on: epoch(t.expires_on.as_deref()).unwrap_or(0),
                    refresh_on: epoch(t.refresh_on.as_deref()),
                }
            })
            .collect();
        tokens.sort_by_key(|t| t.expires_on);
        AccountView {
            home_account_id: account.home_account_id,
            username: account.username,
            name: account.name,
            tenant: account.home_tenant,
            environment: account.environment,
            is_default: account.is_default,
            needs_sign_in: account.needs_sign_in,
            tokens,
        }
    }

    fn endpoint_view(&self) -> EndpointView {
        let ours = Endpoint::running(&self.paths).filter(|e| e.pid == std::process::id());
        let error = lock(&self.endpoint_error).clone();
        let (status, url) = match (&ours, &error) {
            (Some(e), _) => ("running", Some(e.url.clone())),
            (None, Some(_)) => ("stopped", None),
            (None, None) => ("starting", None),
        };
        let preview_url = url.clone().unwrap_or_else(|| {
            crate::instance::endpoint_url(&self.paths, self.tokens.config().port)
        });
        let env_preview = env_lines(&preview_url, "********", Shell::Posix)
            .lines()
            .map(str::to_string)
            .collect();
        EndpointView {
            status,
            url,
            detail: error.filter(|_| ours.is_none()),
            requests_served: self.tokens.requests_served(),
            env_preview,
        }
    }

    /// The environment lines for tools (with the real secret) in POSIX shell syntax.
    ///
    /// # Errors
    /// PersistedCache errors.
    pub fn env(&self) -> Result<zeroize::Zeroizing<String>> {
        let secret = self.tokens.endpoint_secret()?;
        let url = crate::instance::endpoint_url(&self.paths, self.tokens.config().port);
        Ok(env_lines(&url, secret.expose(), Shell::Posix))
    }

    /// Replaces the endpoint secret and republishes `endpoint.json` if this app serves.
    ///
    /// # Errors
    /// PersistedCache errors.
    pub fn rotate_secret(&self) -> Result<()> {
        crate::instance::rotate_secret(&self.paths, &self.tokens).map(drop)
    }

    /// The settings in effect (the config file can differ until the next start).
    ///
    /// # Errors
    /// PersistedCache errors.
    pub fn settings_view(&self) -> Result<SettingsView> {
        let config = self.tokens.config();
        let backend = self.tokens.store().backend();
        Ok(SettingsView {
            authority: config.authority.clone(),
            tenant: config.tenant.clone(),
            client_id: config.client_id.clone(),
            port: config.port,
            start_at_login: autostart::enabled(),
            store: backend.as_str(),
            store_persistence: backend.persistence(),
            encrypted: backend.encrypted(),
            plaintext: config.allow_unencrypted_storage || !backend.encrypted(),
            config_file: config.path.clone(),
            overridden: Config::overridden(),
            notice: None,
        })
    }

    /// Validates `input`, writes it to the config file and sets up (or removes) start at login.
    /// Authority, tenant, client id, port and storage take effect at the next start.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] saying which value is wrong and what is expected; nothing is
    /// written then. [`Error::Io`].
    pub fn save_settings(&self, input: SettingsInput) -> Result<SettingsView> {
        let config = self.tokens.config();
        let port = u16::try_from(input.port)
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| {
                Error::invalid("port", "use a port number from 1 to 65535 (default 42117)")
            })?;
        let settings = EditableSettings {
            authority: input.authority.trim().trim_end_matches('/').to_string(),
            tenant: input.tenant.trim().to_string(),
            client_id: input.client_id.trim().to_ascii_lowercase(),
            port,
            allow_unencrypted_storage: input.plaintext,
        };
        if !is_guid(&settings.client_id) {
            return Err(Error::invalid(
                "client id",
                "use the application (client) id of an app registration, a GUID such as 04b07795-8ddb-461a-bbee-02f9e1bf7b46",
            ));
        }
        let mut candidate = config.clone();
        candidate.authority.clone_from(&settings.authority);
        candidate.tenant.clone_from(&settings.tenant);
        crate::authority::Authority::from_config(&candidate).map_err(|e| match e {
            Error::Config { detail, .. } => Error::invalid("authority", detail),
            other => other,
        })?;
        let backend = self.tokens.store().backend();
        if backend == crate::persist::Backend::Plaintext && !input.plaintext {
            return Err(Error::invalid(
                "unencrypted storage",
                "tokentray is storing tokens unencrypted now because no encrypted store was available. \
                 Start a Secret Service (e.g. gnome-keyring) or allow the kernel keyring first; then \
                 `tokentray cache export FILE`, `tokentray cache reset` with TOKENTRAY_STORE=auto, and \
                 `tokentray cache import FILE` move your tokens",
            ));
        }
        Config::save(&config.path, &settings)?;
        if input.start_at_login != autostart::enabled() {
            autostart::set(input.start_at_login)?;
        }
        let changed = settings.authority != config.authority
            || settings.tenant != config.tenant
            || settings.client_id != config.client_id
            || settings.port != config.port
            || settings.allow_unencrypted_storage != config.allow_unencrypted_storage;
        let mut view = self.settings_view()?;
        view.notice = Some(if changed {
            format!(
                "Saved to {}. Quit and start tokentray again to use the new settings.",
                config.path.display()
            )
        } else {
            format!("Saved to {}.", config.path.display())
        });
        Ok(view)
    }

    /// Starts a sign-in, cancelling any other in progress; returns its id and cancel signal.
    fn begin(&self, device_code: Option<Arc<DeviceCode>>) -> (u64, watch::Receiver<bool>) {
        let (cancel, cancelled) = watch::channel(false);
        let mut slot = lock(&self.sign_in);
        let id = slot.as_ref().map_or(1, |p| p.id + 1);
        if let Some(previous) = slot.replace(Pending {
            id,
            cancel,
            device_code,
        }) {
            let _ = previous.cancel.send(true);
        }
        (id, cancelled)
    }

    fn end(&self, id: u64) {
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
    pub async fn sign_in_browser(
        &self,
        login_hint: Option<String>,
        open: impl FnOnce(&url::Url) -> Result<()>,
    ) -> Result<AccountInfo> {
        let (id, cancelled) = self.begin(None);
        let options = browser::Options {
            tenant: None,
            scopes: vec![DEFAULT_LOGIN_SCOPE.to_string()],
            login_hint,
            prompt: Some("select_account".into()),
            claims: None,
            timeout: browser::DEFAULT_TIMEOUT,
        };
        let result = self
            .tokens
            .sign_in_browser(options, open, wait_cancel(cancelled))
            .await;
        self.end(id);
        result
    }

    /// Starts a device code sign-in; show the result, then call
    /// [`Desktop::finish_device_code`].
    ///
    /// # Errors
    /// Those of [`Tokens::start_device_code`].
    pub async fn start_device_code(&self) -> Result<DeviceCodeView> {
        let code = self
            .tokens
            .start_device_code(None, &[DEFAULT_LOGIN_SCOPE.to_string()])
            .await?;
        let view = DeviceCodeView {
            user_code: code.user_code.clone(),
            verification_uri: code.verification_uri.clone(),
            expires_on: self.tokens.now() + i64::try_from(code.expires_in).unwrap_or(900),
            message: code.message.clone(),
        };
        self.begin(Some(Arc::new(code)));
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
        self.end(id);
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

/// Opens `url` in the system browser (`$BROWSER` first).
///
/// # Errors
/// [`Error::InvalidInput`] when no browser could be started, saying what to do instead.
pub fn open_url(url: &url::Url) -> Result<()> {
    webbrowser::open(url.as_str()).map_err(|e| {
        Error::invalid(
            "browser",
            format!("could not start a browser ({e}); set BROWSER to your browser's command, or sign in with a device code"),
        )
    })
}

async fn wait_cancel(mut cancelled: watch::Receiver<bool>) {
    // A dropped sender (the sign-in was replaced) also cancels.
    let _ = cancelled.wait_for(|c| *c).await;
}

fn epoch(text: Option<&str>) -> Option<i64> {
    text.and_then(|t| t.trim().parse().ok())
}

/// The resource of a scope list: the first scope without its last path segment
/// (`https://management.azure.com//.default` -> `https://management.azure.com/`), or the
/// scope itself for Graph-style short scopes (`User.Read`).
fn resource_of(scopes: &str) -> String {
    let first = scopes
        .split_ascii_whitespace()
        .find(|s| !crate::cache::RESERVED_SCOPES.contains(s))
        .unwrap_or_default();
    match first.rsplit_once('/') {
        Some((resource, _)) if first.contains("://") => {
            let trimmed = resource.trim_end_matches('/');
            format!("{trimmed}/")
        }
        _ => first.to_string(),
    }
}

fn is_guid(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.iter().map(|g| g.len()).eq([8, 4, 4, 4, 12])
        && groups
            .iter()
            .all(|g| g.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// The tray's icon and menu.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tray {
    /// Which icon.
    pub state: TrayState,
    /// Hover text.
    pub tooltip: String,
    /// The accounts, the default first.
    pub accounts: Vec<TrayAccount>,
}

/// The tray icon's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrayState {
    /// No account.
    NoAccount,
    /// Signed in, nothing needs the user.
    SignedIn,
    /// An account needs sign-in.
    Attention,
}

/// An account in the tray menu.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrayAccount {
    /// Home account id.
    pub id: String,
    /// Menu label.
    pub label: String,
    /// Check mark.
    pub is_default: bool,
}

/// What a tray menu item does. Menu item ids are [`TrayAction::id`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrayAction {
    /// Make this account (home account id) the default.
    Switch(String),
    /// Open the window and start a browser sign-in.
    SignInBrowser,
    /// Open the window and start a device code sign-in.
    SignInDevice,
    /// Open the window and confirm signing out this account.
    SignOut(String),
    /// Show the window.
    Open,
    /// Put the environment lines on the clipboard.
    CopyEnv,
    /// Stop the endpoint and exit.
    Quit,
}

impl TrayAction {
    /// The menu item id.
    pub fn id(&self) -> String {
        match self {
            Self::Switch(a) => format!("switch:{a}"),
            Self::SignInBrowser => "sign-in-browser".into(),
            Self::SignInDevice => "sign-in-device".into(),
            Self::SignOut(a) => format!("sign-out:{a}"),
            Self::Open => "open".into(),
            Self::CopyEnv => "copy-env".into(),
            Self::Quit => "quit".into(),
        }
    }

    /// The action of a menu item id.
    pub fn from_id(id: &str) -> Option<Self> {
        if let Some(a) = id.strip_prefix("switch:") {
            return Some(Self::Switch(a.into()));
        }
        if let Some(a) = id.strip_prefix("sign-out:") {
            return Some(Self::SignOut(a.into()));
        }
        Some(match id {
            "sign-in-browser" => Self::SignInBrowser,
            "sign-in-device" => Self::SignInDevice,
            "open" => Self::Open,
            "copy-env" => Self::CopyEnv,
            "quit" => Self::Quit,
            _ => return None,
        })
    }
}

/// The tray for `accounts`.
pub fn tray(accounts: &[AccountInfo]) -> Tray {
    let attention: Vec<&str> = accounts
        .iter()
        .filter(|a| a.needs_sign_in.is_some())
        .map(|a| a.username.as_str())
        .collect();
    let (state, tooltip) = match (accounts.iter().find(|a| a.is_default), attention.first()) {
        _ if accounts.is_empty() => (TrayState::NoAccount, "tokentray: not signed in".into()),
        (_, Some(who)) => (
            TrayState::Attention,
            format!("tokentray: {who} needs sign-in"),
        ),
        (Some(default), None) => (
            TrayState::SignedIn,
            format!("tokentray: {}", default.username),
        ),
        (None, None) => (TrayState::SignedIn, "tokentray: signed in".into()),
    };
    let mut listed: Vec<TrayAccount> = accounts
        .iter()
        .map(|a| TrayAccount {
            id: a.home_account_id.clone(),
            label: match &a.needs_sign_in {
                Some(_) => format!("{} (needs sign-in)", a.username),
                None => a.username.clone(),
            },
            is_default: a.is_default,
        })
        .collect();
    listed.sort_by_key(|a| !a.is_default);
    Tray {
        state,
        tooltip,
        accounts: listed,
    }
}

/// A desktop notification (never a token: events carry none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    /// Title.
    pub summary: String,
    /// Text.
    pub body: String,
}

/// Which events become notifications; repeats of "needs sign-in" and "refresh failed" for one
/// account are held back for [`Notices::QUIET_SECS`].
#[derive(Debug, Default)]
pub struct Notices {
    last: HashMap<(&'static str, String), i64>,
}

impl Notices {
    /// Seconds between two notifications of the same kind for the same account.
    pub const QUIET_SECS: i64 = 15 * 60;

    /// The notification for `event` at `now`, if any.
    pub fn notice(&mut self, event: &Event, now: i64) -> Option<Notice> {
        let (kind, account, summary, body) = match event {
            Event::DeviceCodeReady {
                user_code,
                verification_uri,
            } => {
                return Some(Notice {
                    summary: format!("Device code: {user_code}"),
                    body: format!("Enter it at {verification_uri} to sign in to tokentray."),
                });
            }
            Event::SignedIn { account } => {
                return Some(Notice {
                    summary: "Signed in".into(),
                    body: format!("{account} is signed in; tools can get its tokens now."),
                });
            }
            Event::NeedsSignIn { account, reason } => (
                "needs_sign_in",
                account,
                format!("{account} needs to sign in again"),
                format!("{reason}. Open tokentray and choose \"Sign in again\"."),
            ),
            Event::RefreshFailed { account, reason } => (
                "refresh_failed",
                account,
                format!("Could not refresh tokens for {account}"),
                format!("{reason}. Cached tokens are still served until they expire."),
            ),
            _ => return None,
        };
        let key = (kind, account.clone());
        if self
            .last
            .get(&key)
            .is_some_and(|t| now - t < Self::QUIET_SECS)
        {
            return None;
        }
        self.last.insert(key, now);
        Some(Notice { summary, body })
    }
}

/// Start at login: an XDG autostart entry on Linux desktops.
mod autostart {
    use std::path::PathBuf;

    use crate::{Error, Result};

    fn entry() -> Option<PathBuf> {
        let config = std::env::var_os("XDG_CONFIG_HOME")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .or_else(|| dirs::home_dir().map(|h| h.join(".config")))?;
        Some(config.join("autostart").join("tokentray.desktop"))
    }

    pub(super) fn enabled() -> bool {
        cfg!(target_os = "linux") && entry().is_some_and(|p| p.exists())
    }

    pub(super) fn set(on: bool) -> Result<()> {
        if !cfg!(target_os = "linux") {
            return Err(Error::invalid(
                "start at login",
                "not available on this system yet; add tokentray to your login items instead",
            ));
        }
        let path = entry().ok_or_else(|| {
            Error::invalid(
                "start at login",
                "cannot find your home directory; set HOME or XDG_CONFIG_HOME",
            )
        })?;
        if !on {
            return match std::fs::remove_file(&path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    Err(Error::io("remove", path, e))
                }
                _ => Ok(()),
            };
        }
        let exe = std::env::current_exe().map_err(|e| Error::io("find", "tokentray", e))?;
        let text = format!(
            "[Desktop Entry]\nType=Application\nName=tokentray\n\
             Comment=Entra ID sign-in and tokens for developer tools\n\
             Exec=\"{}\"\nIcon=tokentray\nTerminal=false\nX-GNOME-Autostart-enabled=true\n",
            exe.display()
        );
        crate::files::write_atomic(&path, text.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account(user: &str, default: bool, needs: Option<&str>) -> AccountInfo {
        AccountInfo {
            home_account_id: format!("{user}.tid"),
            environment: "login.microsoftonline.com".into(),
            username: user.into(),
            name: None,
            local_account_id: None,
            home_tenant: Some("tid".into()),
            realms: vec![],
            is_default: default,
            needs_sign_in: needs.map(str::to_string),
        }
    }

    #[test]
    fn tray_state_follows_accounts() {
        let none = tray(&[]);
        assert_eq!(none.state, TrayState::NoAccount);
        assert!(none.accounts.is_empty());

        let two = tray(&[account("a@x", false, None), account("b@x", true, None)]);
        assert_eq!(two.state, TrayState::SignedIn);
        assert_eq!(two.tooltip, "tokentray: b@x");
        assert_eq!(two.accounts[0].id, "b@x.tid", "the default comes first");
        assert!(two.accounts[0].is_default && !two.accounts[1].is_default);

        let attention = tray(&[account("a@x", true, Some("expired"))]);
        assert_eq!(attention.state, TrayState::Attention);
        assert_eq!(attention.accounts[0].label, "a@x (needs sign-in)");
    }

    #[test]
    fn tray_action_ids_round_trip() {
        for action in [
            TrayAction::Switch("oid.tid".into()),
            TrayAction::SignInBrowser,
            TrayAction::SignInDevice,
            TrayAction::SignOut("oid.tid".into()),
            TrayAction::Open,
            TrayAction::CopyEnv,
            TrayAction::Quit,
        ] {
            assert_eq!(TrayAction::from_id(&action.id()), Some(action));
        }
        assert_eq!(TrayAction::from_id("nonsense"), None);
    }

    #[test]
    fn repeated_failures_notify_once_per_quiet_period() {
        let mut notices = Notices::default();
        let failed = Event::RefreshFailed {
            account: "a@x".into(),
            reason: "the authority did not answer".into(),
        };
        assert!(notices.notice(&failed, 1000).is_some());
        assert_eq!(notices.notice(&failed, 1001), None);
        assert!(
            notices
                .notice(&failed, 1000 + Notices::QUIET_SECS)
                .is_some()
        );
        let served = Event::TokenServed {
            account: "a@x".into(),
            scopes: "s".into(),
            client: "pid 1".into(),
        };
        assert_eq!(notices.notice(&served, 5000), None);
        let code = Event::DeviceCodeReady {
            user_code: "ABCD-EFGH".into(),
            verification_uri: "https://microsoft.com/devicelogin".into(),
        };
        let shown = notices.notice(&code, 5000).map(|n| n.summary);
        assert_eq!(shown.as_deref(), Some("Device code: ABCD-EFGH"));
    }

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

    #[test]
    fn client_ids_are_guids() {
        assert!(is_guid("04b07795-8ddb-461a-bbee-02f9e1bf7b46"));
        assert!(!is_guid("04b07795-8ddb-461a-bbee-02f9e1bf7b4"));
        assert!(!is_guid("not-a-guid"));
    }
}
