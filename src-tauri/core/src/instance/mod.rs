//! The running instance (tray app or `tokentray daemon`) and how clients find it.
//!
//! A running instance writes `endpoint.json` (`{url, secret, pid, socket}`, mode 0600) in the
//! runtime directory and removes it when it stops. Its loopback `url` is for every tool; its
//! Unix `socket` (same directory, same API) is what tokentray's own CLI and helpers try first. A file left by a killed instance is stale: its pid is
//! gone (or is not a tokentray), and the next instance replaces it.
//!
//! The endpoint secret is 256 random bits kept in the encrypted cache (so it survives restarts and
//! configured IDEs keep working) until `tokentray env --rotate` replaces it.

use std::path::PathBuf;

#[cfg(target_os = "linux")]
mod activation;
mod client;
mod run;

use serde::{Deserialize, Serialize};

use crate::Result;
use crate::files::{ensure_private_dir, write_atomic};
use crate::paths::Paths;
use crate::secret::Secret;

pub use client::{account_states, activity, native_token};
pub use run::{ACTIVATION_WAIT, run, run_or_follow, shutdown_signal};

/// What `endpoint.json` holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Endpoint {
    /// Base URL, e.g. `http://127.0.0.1:42117`.
    pub url: String,
    /// The secret clients present (`X-IDENTITY-HEADER` or `Authorization: Bearer`).
    pub secret: Secret,
    /// The instance's process id.
    pub pid: u32,
    /// Its own Unix socket (`endpoint.sock` next to this file, mode 0600), serving the same
    /// API to tokentray's CLI and helpers: the kernel names the peer, so a connection costs
    /// no `/proc` scan. Absent on Windows, from older instances, and where the socket could
    /// not be made (a path too long for a socket address); clients then use `url`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub socket: Option<PathBuf>,
}

/// `endpoint.json` in the runtime directory.
pub fn endpoint_file(paths: &Paths) -> PathBuf {
    paths.runtime.join("endpoint.json")
}

/// The running instance's Unix socket in the runtime directory ([`Endpoint::socket`]).
pub fn socket_file(paths: &Paths) -> PathBuf {
    paths.runtime.join("endpoint.sock")
}

impl Endpoint {
    /// Writes `endpoint.json` (0600, atomically).
    ///
    /// # Errors
    /// [`Error::Io`].
    pub fn publish(&self, paths: &Paths) -> Result<()> {
        ensure_private_dir(&paths.runtime)?;
        let text = zeroize::Zeroizing::new(serde_json::to_vec_pretty(self).unwrap_or_default());
        write_atomic(&endpoint_file(paths), &text)
    }

    /// The running instance's endpoint: `None` if there is no `endpoint.json` or its process is
    /// gone (a stale file from a killed instance).
    pub fn running(paths: &Paths) -> Option<Self> {
        let path = endpoint_file(paths);
        let bytes = zeroize::Zeroizing::new(std::fs::read(&path).ok()?);
        let found: Self = serde_json::from_slice(&bytes).ok()?;
        alive(found.pid).then_some(found)
    }

    /// Removes `endpoint.json` and the Unix socket if they are this process's.
    pub fn withdraw(paths: &Paths) {
        let path = endpoint_file(paths);
        let mine = std::fs::read(&path)
            .ok()
            .and_then(|b| serde_json::from_slice::<Self>(&b).ok())
            .is_some_and(|e| e.pid == std::process::id());
        if mine {
            let _ = std::fs::remove_file(path);
            let _ = std::fs::remove_file(socket_file(paths));
        }
    }
}

/// The running instance's base URL, else the one an instance on `port` would have.
pub fn endpoint_url(paths: &Paths, port: u16) -> String {
    Endpoint::running(paths).map_or_else(|| loopback_url(port), |e| e.url)
}

/// The base URL of an endpoint listening on `port` of the IPv4 loopback.
pub(crate) fn loopback_url(port: u16) -> String {
    format!("http://127.0.0.1:{port}")
}

/// The `HOST:PORT` of an endpoint's base URL (`http://HOST:PORT`, as [`loopback_url`] makes it):
/// what to connect to, and the `Host` a request to it sends.
pub(crate) fn address_of(url: &str) -> &str {
    url.trim_start_matches("http://")
}

/// Replaces the endpoint secret (tools with the old one get 401 from now on) and, if an
/// instance is running, republishes its `endpoint.json` with the new one. Returns it.
///
/// # Errors
/// Token store errors; [`Error::Io`] writing `endpoint.json`.
pub fn rotate_secret(paths: &Paths, tokens: &crate::tokens::Tokens) -> Result<Secret> {
    let secret = tokens.rotate_endpoint_secret()?;
    if let Some(mut endpoint) = Endpoint::running(paths) {
        endpoint.secret = secret.clone();
        endpoint.publish(paths)?;
    }
    Ok(secret)
}

/// Whether `pid` is a live tokentray process: this one, or a running process whose executable
/// the OS names as tokentray's (`/proc/PID/exe`, libproc, `QueryFullProcessImageNameW`), so a
/// pid reused after a crash by another program does not count. On Windows the process must
/// also not have exited: a handle someone still holds keeps an exited process's name readable.
fn alive(pid: u32) -> bool {
    if pid == std::process::id() {
        return true;
    }
    #[cfg(windows)]
    if !crate::peer::running(pid) {
        return false;
    }
    crate::peer::executable(pid).is_some_and(|exe| is_tokentray(&exe))
}

/// Whether `exe` is a tokentray binary (or a test build of one): its file name starts with
/// `tokentray`, ignoring ASCII case as Windows does (`TokenTray.EXE`).
fn is_tokentray(exe: &std::path::Path) -> bool {
    exe.file_name().is_some_and(|n| {
        n.to_string_lossy()
            .get(..9)
            .is_some_and(|head| head.eq_ignore_ascii_case("tokentray"))
    })
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    #[test]
    fn a_live_tokentray_is_recognised_by_its_executable() {
        for exe in [
            "/usr/bin/tokentray",
            "TokenTray.EXE",
            "/Applications/tokentray.app/Contents/MacOS/tokentray",
            "/work/target/debug/deps/tokentray_core-0123abcd",
        ] {
            assert!(is_tokentray(Path::new(exe)), "{exe}");
        }
        for exe in ["/usr/bin/python3", "/usr/bin/token", "/", ""] {
            assert!(!is_tokentray(Path::new(exe)), "{exe}");
        }
        assert!(alive(std::process::id()));
        // A pid that no process has (the kernel's limit is far lower).
        assert!(!alive(u32::MAX - 1));
    }
}
