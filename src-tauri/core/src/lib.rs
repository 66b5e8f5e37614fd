//! tokentray-core: everything tokentray does, with no GUI.
//!
//! The Tauri shell (`src-tauri`) and the `tokentray` CLI are thin adapters over this crate.
//!
//! # Layout
//! Modules depend only on those listed before them (no cycles):
//! - [`error`]: the one error type; each variant has a stable [`ErrorCode`] from one table.
//! - [`secret`]: redacted, zeroizing newtypes for tokens and keys; the one source of randomness.
//! - [`clock`]: the program's clock ([`clock::Clock`]); everything else takes `now`.
//! - `sync`: locking that survives a panic elsewhere.
//! - [`heap`]: big buffers and replaced caches given back to the system (glibc).
//! - `json`: JSON strings written fast, byte for byte as serde_json writes them.
//! - [`files`]: private files and directories, atomic writes, moving aside, the cache lock, and
//!   the checks that a file the user chose (home, config, CA) is theirs alone; exports.
//! - [`paths`]: where every file lives (`TOKENTRAY_HOME` relocates all of them).
//! - `peer`: who is behind a loopback connection: the owner of the peer's socket (decided
//!   before a byte is read) and, for the audit, its process.
//! - `loopback`: serving HTTP on loopback to this user's processes only, each connection
//!   bounded by deadlines (the endpoint and the browser sign-in's redirect listener).
//! - [`cache`]: MSAL's unified token cache schema; pure, takes `now`, never reads the clock.
//! - [`persist`]: opaque encrypted bytes at rest (Secret Service, kernel keyring, DPAPI,
//!   Keychain, or explicit plaintext) and [`persist::PersistedCache`], the cross-process locked
//!   cache on disk.
//! - [`config`]: `config.toml` plus environment overrides; opens the configured store.
//! - `authority`: the Entra host, tenant and endpoint URLs.
//! - [`flow`]: the token endpoint client, browser (auth code + PKCE) and device code sign-in.
//! - [`tokens`]: [`tokens::Tokens`], the one owner of the cache in a running instance: silent
//!   acquisition, single-flight refresh, accounts, sign-in and sign-out, events.
//! - [`approval`]: opt-in approval of the programs that get tokens (`require_approval`):
//!   executables by path and content hash, kept decisions, questions waiting for the user.
//! - `serve`: the loopback endpoint (App Service managed-identity protocol + native API).
//! - [`instance`]: running one (endpoint, background refresh, `endpoint.json`), finding the
//!   running one, and the CLI's client of it.
//! - `env`: the environment lines that point tools at the endpoint.
//! - [`desktop`]: what the tray app shows and does (overview, tray menu, notifications,
//!   cancellable sign-ins, settings), as plain data.
//! - [`cli`]: the `tokentray` subcommands, one function each.
//! - `fuzzing` (feature `fuzzing` only): the fuzz targets' entry points (`tests/fuzz/`).
//!
//! Modules the shell and the tests do not use are private to the crate, so the dead-code lint
//! sees all of their API.
#![deny(missing_docs)]

pub mod approval;
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
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
pub mod heap;
pub mod instance;
mod json;
pub(crate) mod loopback;
pub mod paths;
pub(crate) mod peer;
pub mod persist;
#[cfg(windows)]
mod registry;
pub mod secret;
pub(crate) mod serve;
pub mod session_env;
pub mod subscriptions;
mod sync;
pub mod tokens;

pub use error::{Denial, Error, ErrorCode, Result};
