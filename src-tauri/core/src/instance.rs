//! The running instance (tray app or `tokentray daemon`) and how clients find it.
//!
//! A running instance writes `endpoint.json` (`{url, secret, pid}`, mode 0600) in the runtime
//! directory and removes it when it stops. A file left by a killed instance is stale: its pid is
//! gone (or is not a tokentray), and the next instance replaces it.
//!
//! The endpoint secret is 256 random bits kept in the encrypted cache (so it survives restarts and
//! configured IDEs keep working) until `tokentray env --rotate` replaces it.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::paths::{Paths, ensure_private_dir};
use crate::persist::write_atomic;
use crate::secret::Secret;
use crate::{Error, Result};

/// What `endpoint.json` holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Endpoint {
    /// Base URL, e.g. `http://127.0.0.1:42117`.
    pub url: String,
    /// The secret clients present (`X-IDENTITY-HEADER` or `Authorization: Bearer`).
    pub secret: Secret,
    /// The instance's process id.
    pub pid: u32,
}

/// `endpoint.json` in the runtime directory.
pub fn endpoint_file(paths: &Paths) -> PathBuf {
    paths.runtime.join("endpoint.json")
}

impl Endpoint {
    /// The App Service managed-identity URL (`IDENTITY_ENDPOINT`).
    pub fn identity_endpoint(&self) -> String {
        format!("{}/msi/token", self.url)
    }

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

    /// Removes `endpoint.json` if it is this process's.
    pub fn withdraw(paths: &Paths) {
        let path = endpoint_file(paths);
        let mine = std::fs::read(&path)
            .ok()
            .and_then(|b| serde_json::from_slice::<Self>(&b).ok())
            .is_some_and(|e| e.pid == std::process::id());
        if mine {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// The running instance's base URL, else the one an instance on `port` would have.
pub fn endpoint_url(paths: &Paths, port: u16) -> String {
    Endpoint::running(paths).map_or_else(|| format!("http://127.0.0.1:{port}"), |e| e.url)
}

/// Replaces the endpoint secret (tools with the old one get 401 from now on) and, if an
/// instance is running, republishes its `endpoint.json` with the new one. Returns it.
///
/// # Errors
/// Store errors; [`Error::Io`] writing `endpoint.json`.
pub fn rotate_secret(paths: &Paths, tokens: &crate::tokens::Tokens) -> Result<Secret> {
    let secret = tokens.rotate_endpoint_secret()?;
    if let Some(mut endpoint) = Endpoint::running(paths) {
        endpoint.secret = secret.clone();
        endpoint.publish(paths)?;
    }
    Ok(secret)
}

/// Whether `pid` is a live tokentray process.
fn alive(pid: u32) -> bool {
    if pid == std::process::id() {
        return true;
    }
    #[cfg(target_os = "linux")]
    {
        let exe = std::fs::read_link(format!("/proc/{pid}/exe")).ok();
        exe.is_some_and(|e| {
            e.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("tokentray"))
        })
    }
    #[cfg(all(unix, not(target_os = "linux")))]
    {
        rustix::process::Pid::from_raw(pid as i32)
            .is_some_and(|p| rustix::process::test_kill_process(p).is_ok())
    }
    #[cfg(not(unix))]
    {
        let _ = pid;
        false
    }
}

/// Binds the endpoint: `127.0.0.1:port`, plus `[::1]:port` when IPv6 loopback exists.
///
/// # Errors
/// [`Error::Config`]-style message if the port is taken: by a running tokentray (say so) or by
/// another program (say how to pick another port).
pub async fn bind(
    paths: &Paths,
    config_path: &Path,
    port: u16,
) -> Result<Vec<tokio::net::TcpListener>> {
    let v4 = match tokio::net::TcpListener::bind(("127.0.0.1", port)).await {
        Ok(l) => l,
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
            let ours = Endpoint::running(paths).filter(|e| e.url.ends_with(&format!(":{port}")));
            let detail = match ours {
                Some(other) => format!(
                    "tokentray already runs on port {port} (pid {}); use it, or stop it first",
                    other.pid
                ),
                None => format!(
                    "port {port} on 127.0.0.1 is taken by another program; choose another with \
                     TOKENTRAY_PORT or `port = N` in the config file"
                ),
            };
            return Err(Error::Config {
                path: config_path.into(),
                detail,
            });
        }
        Err(e) => return Err(Error::io("listen on", format!("127.0.0.1:{port}"), e)),
    };
    let actual = v4
        .local_addr()
        .map_err(|e| Error::io("listen on", "127.0.0.1", e))?
        .port();
    let mut listeners = vec![v4];
    if let Ok(v6) = tokio::net::TcpListener::bind(("::1", actual)).await {
        listeners.push(v6);
    }
    Ok(listeners)
}
