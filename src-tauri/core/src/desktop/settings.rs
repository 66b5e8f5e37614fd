//! The settings the window shows and edits, validated here (the window does not validate):
//! written to `config.toml`, applied at the next start.
//!
//! The window shows what is saved (what the next start uses), not what runs: a saved value
//! that differs from the running one is listed in [`SettingsView::pending`] ("applies after
//! restart"). A setting an environment variable fixes shows the variable's value, cannot be
//! edited, and is never written to the file.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::{Desktop, autostart};
use crate::authority::{Authority, is_guid};
use crate::config::{Config, EditableSettings, PortRange};
use crate::error::Setting;
use crate::session_env;
use crate::{Error, Result};

/// The settings as saved (those an environment variable fixes: as the variable has them).
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
    /// The browser sign-in's redirect ports (`53100-53199`; empty: any free port).
    pub redirect_ports: String,
    /// Whether tokentray starts when the user logs in.
    pub start_at_login: bool,
    /// Whether every program the user starts sees tokentray (the session environment,
    /// [`crate::session_env`]).
    pub every_app: bool,
    /// Why it cannot be turned on yet, while it is off (on Linux: no `tokentray.socket` on the
    /// port).
    pub every_app_blocked: Option<String>,
    /// The store in use (`secret-service`, `keyutils`, `plaintext`, ...).
    pub store: &'static str,
    /// What survives a reboot, in words.
    pub store_persistence: &'static str,
    /// Whether tokens are encrypted at rest.
    pub encrypted: bool,
    /// Whether unencrypted storage is allowed or chosen.
    pub plaintext: bool,
    /// Whether each new program must be approved before it gets tokens.
    pub require_approval: bool,
    /// The config file.
    pub config_file: PathBuf,
    /// Settings fixed by `TOKENTRAY_*` environment variables (see [`Config::overridden`]).
    pub overridden: Vec<&'static str>,
    /// Settings saved with a value the running app does not use yet: they apply after a
    /// restart.
    pub pending: Vec<&'static str>,
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
    /// Endpoint port, 1-65535, as the window has it (a number, or the text typed).
    #[serde(deserialize_with = "number_or_text")]
    pub port: String,
    /// The browser sign-in's redirect ports: a port, a range `low-high`, or empty for any
    /// (absent: empty).
    #[serde(default)]
    pub redirect_ports: String,
    /// Start when the user logs in.
    pub start_at_login: bool,
    /// Allow storing tokens unencrypted when no encrypted store is available.
    pub plaintext: bool,
    /// Ask before a new program gets tokens (absent: off).
    #[serde(default)]
    pub require_approval: bool,
    /// Let every app use tokentray: install or remove the session environment (absent: leave
    /// it as it is).
    #[serde(default)]
    pub every_app: Option<bool>,
}

impl Desktop {
    /// The settings as saved, those the environment fixes as it has them, and which saved
    /// ones wait for a restart.
    ///
    /// # Errors
    /// Those of reading the config file ([`Config::saved`]).
    pub fn settings_view(&self) -> Result<SettingsView> {
        let config = self.tokens.config();
        let backend = self.tokens.store().backend();
        let overridden = Config::overridden();
        let locked = |key| overridden.contains(&key);
        let saved = Config::saved(&config.path)?;
        let pick = |key, saved: String, running: &String| {
            if locked(key) { running.clone() } else { saved }
        };
        let pending = [
            ("authority", saved.authority != config.authority),
            ("tenant", saved.tenant != config.tenant),
            ("client_id", saved.client_id != config.client_id),
            ("port", saved.port != config.port),
            (
                "redirect_ports",
                PortRange::parse(&saved.redirect_ports).ok().flatten() != config.redirect_ports,
            ),
            (
                "plaintext",
                saved.allow_unencrypted_storage != config.allow_unencrypted_storage,
            ),
            (
                "require_approval",
                saved.require_approval != config.require_approval,
            ),
        ]
        .into_iter()
        .filter(|(key, differs)| *differs && !locked(key))
        .map(|(key, _)| key)
        .collect();
        let every_app = session_env::installed();
        Ok(SettingsView {
            authority: pick("authority", saved.authority, &config.authority),
            tenant: pick("tenant", saved.tenant, &config.tenant),
            client_id: pick("client_id", saved.client_id, &config.client_id),
            port: if locked("port") {
                config.port
            } else {
                saved.port
            },
            redirect_ports: saved.redirect_ports,
            start_at_login: autostart::enabled(),
            every_app,
            every_app_blocked: if every_app {
                None
            } else {
                session_env::held(config.port).err()
            },
            store: backend.as_str(),
            store_persistence: backend.persistence(),
            encrypted: backend.encrypted(),
            plaintext: saved.allow_unencrypted_storage || !backend.encrypted(),
            require_approval: saved.require_approval,
            config_file: config.path.clone(),
            overridden,
            pending,
            notice: None,
        })
    }

    /// Validates `input`, writes it to the config file and sets up (or removes) start at login.
    /// Authority, tenant, client id, port and storage take effect at the next start.
    ///
    /// # Errors
    /// [`Error::InvalidSetting`] naming the setting that is wrong and what is expected; nothing
    /// is written then. [`Error::Io`].
    pub fn save_settings(&self, input: SettingsInput) -> Result<SettingsView> {
        let config = self.tokens.config();
        let settings = self.validated(&input)?;
        Config::save(&config.path, &settings, &Config::overridden())?;
        if input.start_at_login != autostart::enabled() {
            autostart::set(input.start_at_login)?;
        }
        if let Some(on) = input.every_app
            && on != session_env::installed()
        {
            self.set_every_app(on)?;
        }
        let mut view = self.settings_view()?;
        view.notice = Some(if view.pending.is_empty() {
            format!("Saved to {}.", config.path.display())
        } else {
            format!(
                "Saved to {}. Quit and start tokentray again to use the new settings.",
                config.path.display()
            )
        });
        Ok(view)
    }

    /// Answers the window's offer to let every app use tokentray: installs the session
    /// environment when `accept`ed. Declined, or installed, the offer is gone; a failed
    /// install leaves it in place with its error.
    ///
    /// # Errors
    /// As [`Desktop::save_settings`] for the switch ([`Error::InvalidSetting`] naming it).
    pub fn answer_every_app_offer(&self, accept: bool) -> Result<SettingsView> {
        if accept && !session_env::installed() {
            self.set_every_app(true)?;
        }
        *crate::sync::lock(&self.every_app_offer) = false;
        self.settings_view()
    }

    /// Installs or removes the session environment ([`session_env`]), its errors naming the
    /// switch.
    fn set_every_app(&self, on: bool) -> Result<()> {
        let field = Setting::EveryApp;
        let done = if on {
            let secret = self.tokens.endpoint_secret()?;
            session_env::install(self.tokens.config().port, secret.expose())
        } else {
            session_env::uninstall()
        };
        done.map(|_| ()).map_err(|e| match e {
            Error::PortNotHeld { detail } => Error::InvalidSetting { field, detail },
            Error::ToolFailed { command, detail } => Error::InvalidSetting {
                field,
                detail: format!("`{command}` {detail}"),
            },
            other => other,
        })
    }

    /// The settings `input` asks for, each checked (those an environment variable fixes are
    /// not: they are never written).
    fn validated(&self, input: &SettingsInput) -> Result<EditableSettings> {
        let config = self.tokens.config();
        let locked = Config::overridden();
        let invalid = |field, detail: &str| Error::InvalidSetting {
            field,
            detail: detail.into(),
        };
        let port = if locked.contains(&"port") {
            config.port
        } else {
            input
                .port
                .trim()
                .parse::<u16>()
                .ok()
                .filter(|p| *p != 0)
                .ok_or_else(|| {
                    invalid(
                        Setting::Port,
                        "use a port number from 1 to 65535 (default 42117)",
                    )
                })?
        };
        let redirect_ports = PortRange::parse(&input.redirect_ports)
            .map_err(|detail| Error::InvalidSetting {
                field: Setting::RedirectPorts,
                detail,
            })?
            .map(|r| r.to_string())
            .unwrap_or_default();
        let settings = EditableSettings {
            authority: input.authority.trim().trim_end_matches('/').to_string(),
            tenant: input.tenant.trim().to_string(),
            client_id: input.client_id.trim().to_ascii_lowercase(),
            port,
            redirect_ports,
            allow_unencrypted_storage: input.plaintext,
            require_approval: input.require_approval,
        };
        if !locked.contains(&"client_id") && !is_guid(&settings.client_id) {
            return Err(invalid(
                Setting::ClientId,
                "use the application (client) id of an app registration, a GUID such as 04b07795-8ddb-461a-bbee-02f9e1bf7b46",
            ));
        }
        // The one authority check, first with a tenant known to be good, then with the new one,
        // so the error names the setting that is wrong.
        let check = |candidate: &Config, field| {
            Authority::from_config(candidate).map_err(|e| match e {
                Error::Config { detail, .. } => Error::InvalidSetting { field, detail },
                other => other,
            })
        };
        let mut candidate = config.clone();
        if !locked.contains(&"authority") {
            candidate.authority.clone_from(&settings.authority);
        }
        candidate.tenant = crate::config::DEFAULT_TENANT.into();
        check(&candidate, Setting::Authority)?;
        if !locked.contains(&"tenant") {
            candidate.tenant.clone_from(&settings.tenant);
            check(&candidate, Setting::Tenant)?;
        }
        let backend = self.tokens.store().backend();
        if backend == crate::persist::Backend::Plaintext && !input.plaintext {
            return Err(invalid(
                Setting::Plaintext,
                "tokentray is storing tokens unencrypted now because no encrypted store was available. \
                 Start a Secret Service (e.g. gnome-keyring) or allow the kernel keyring first; then \
                 `tokentray cache export FILE`, `tokentray cache reset` with TOKENTRAY_STORE=auto, and \
                 `tokentray cache import FILE` move your tokens",
            ));
        }
        Ok(settings)
    }
}

/// A JSON number or string, as text: the window sends what was typed, and core validates it.
fn number_or_text<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<String, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum NumberOrText {
        Number(serde_json::Number),
        Text(String),
    }
    Ok(match NumberOrText::deserialize(d)? {
        NumberOrText::Number(n) => n.to_string(),
        NumberOrText::Text(t) => t,
    })
}
