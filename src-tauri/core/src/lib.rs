//! tokentray-core: everything tokentray does, with no GUI.
//!
//! The Tauri shell (`src-tauri`) and the `tokentray` CLI are thin adapters over this crate.
//!
//! # Layout
//! - [`error`]: the one error type, each variant with a stable [`error::ErrorCode`].
//! - [`secret`]: redacted, zeroizing newtypes for tokens and keys.
//! - [`paths`]: where every file lives (`TOKENTRAY_HOME` relocates all of them).
//! - [`config`]: `config.toml` plus environment overrides.
//! - [`cache`]: MSAL's unified token cache schema; pure, takes `now`, never reads the clock.
//! - [`persist`]: opaque encrypted bytes at rest (Secret Service, kernel keyring, DPAPI, Keychain,
//!   or explicit plaintext) and [`persist::PersistedCache`], the cross-process locked cache on disk.
//! - [`authority`]: the Entra host, tenant and endpoint URLs.
//! - [`flow`]: the token endpoint client, browser (auth code + PKCE) and device code sign-in.
//! - [`tokens`]: [`tokens::Tokens`], the one owner of the cache in a running instance: silent
//!   acquisition, single-flight refresh, accounts, sign-in and sign-out, events.
//! - [`serve`]: the loopback endpoint (App Service managed-identity protocol + native API).
//! - [`instance`]: how clients find the running instance (`endpoint.json`).
//! - [`peer`]: which local process is behind a loopback connection (audit log).
//! - [`cli`]: the `tokentray` subcommands.
//! - [`desktop`]: what the tray app shows and does (overview, tray menu, notifications,
//!   cancellable sign-ins, settings), as plain data.
#![deny(missing_docs)]

pub(crate) mod authority;
pub mod cache;
pub mod cli;
pub mod clock;
pub mod config;
pub mod desktop;
pub(crate) mod env;
pub mod error;
pub mod files;
pub mod flow;
pub mod instance;
pub mod paths;
pub(crate) mod peer;
pub mod persist;
pub mod secret;
pub(crate) mod serve;
mod sync;
pub mod tokens;

pub use error::{Error, ErrorCode, Result};
