//! Running an instance: the loopback endpoint, background refresh and `endpoint.json`, from
//! start to a clean stop. The tray app and `tokentray daemon` both call [`run`].

use std::path::Path;
use std::sync::Arc;

use super::{Endpoint, loopback_url};

/// How often a running instance looks for changes other processes made to the cache.
const WATCH_PERIOD: std::time::Duration = std::time::Duration::from_millis(250);
use crate::approval::Approvals;
use crate::paths::Paths;
use crate::tokens::{Event, Tokens};
use crate::{Error, Result};

/// Runs an instance over the tokens `approvals` guards: binds the endpoint, publishes
/// `endpoint.json`, serves, follows other processes' changes to the cache and refreshes in the
/// background until `shutdown`, then withdraws `endpoint.json`. The tray app (whose window
/// answers approval questions) and `tokentray daemon` (which has none) both run this. `ready`
/// is called once `endpoint.json` is published.
///
/// # Errors
/// The port is taken; store errors.
pub async fn run(
    paths: &Paths,
    approvals: Arc<Approvals>,
    shutdown: impl std::future::Future<Output = ()>,
    ready: impl FnOnce(&Endpoint),
) -> Result<()> {
    let tokens = approvals.tokens().clone();
    let listeners = bind(paths, &tokens.config().path, tokens.config().port).await?;
    let port = listeners
        .first()
        .and_then(|l| l.local_addr().ok())
        .map_or(tokens.config().port, |a| a.port());
    // The port is ours, so no other instance serves: a socket file left is a killed one's.
    let local = bind_local(paths);
    let endpoint = Endpoint {
        url: loopback_url(port),
        secret: tokens.endpoint_secret()?,
        pid: std::process::id(),
        socket: local.as_ref().map(|_| super::socket_file(paths)),
    };
    endpoint.publish(paths)?;
    ready(&endpoint);
    tracing::info!("serving tokens on {} (pid {})", endpoint.url, endpoint.pid);
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|stop| *stop).await;
    };
    let background = tokio::spawn(
        tokens
            .clone()
            .refresh_in_background(std::time::Duration::from_secs(60), stopped(stop_rx.clone())),
    );
    let watching = tokio::spawn(
        tokens
            .clone()
            .watch_for_changes(WATCH_PERIOD, stopped(stop_rx.clone())),
    );
    let listing = tokio::spawn(crate::subscriptions::keep_listed(
        tokens.clone(),
        paths.subscriptions(),
        stopped(stop_rx.clone()),
    ));
    let republishing = tokio::spawn(republish(
        paths.clone(),
        tokens.clone(),
        endpoint.clone(),
        stopped(stop_rx.clone()),
    ));
    let serving = crate::serve::run(listeners, local, approvals, stopped(stop_rx));
    let signal = async {
        shutdown.await;
        let _ = stop_tx.send(true);
    };
    let (served, ()) = tokio::join!(serving, signal);
    let _ = background.await;
    let _ = watching.await;
    let _ = listing.await;
    let _ = republishing.await;
    Endpoint::withdraw(paths);
    tracing::info!("stopped; endpoint withdrawn");
    served
}

/// Like [`run`], but when another tokentray instance already serves (`tokentray daemon`, perhaps
/// started by its systemd socket), follows it instead of starting a second endpoint: watches
/// the cache for the changes it makes, so the window shows them, and leaves refreshing and
/// serving to it. If that instance stops, this one takes over and serves. `ready` is called
/// with the endpoint that serves, each time that changes. The tray app calls this.
///
/// A port held by a socket unit whose daemon has not started yet is found by connecting to it
/// once (which starts the daemon), then waiting up to [`ACTIVATION_WAIT`] for its
/// `endpoint.json`.
///
/// # Errors
/// Those of [`run`].
pub async fn run_or_follow(
    paths: &Paths,
    approvals: Arc<Approvals>,
    shutdown: impl std::future::Future<Output = ()>,
    mut ready: impl FnMut(&Endpoint),
) -> Result<()> {
    tokio::pin!(shutdown);
    let tokens = approvals.tokens().clone();
    loop {
        let Some(other) = serving_elsewhere(paths, tokens.config().port).await else {
            return run(paths, approvals, shutdown, ready).await;
        };
        tracing::warn!(
            "tokentray (pid {}) already serves tokens on {}; this instance follows it",
            other.pid,
            other.url
        );
        ready(&other);
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let watching = tokio::spawn(tokens.clone().watch_for_changes(WATCH_PERIOD, async move {
            let mut rx = stop_rx;
            let _ = rx.wait_for(|stop| *stop).await;
        }));
        let gone = async {
            let pid = other.pid;
            // A /proc (or OS) query: on a blocking thread, not a worker.
            while tokio::task::spawn_blocking(move || super::alive(pid))
                .await
                .unwrap_or(false)
            {
                tokio::time::sleep(FOLLOW_CHECK).await;
            }
        };
        let shut_down = tokio::select! {
            () = &mut shutdown => true,
            () = gone => false,
        };
        let _ = stop_tx.send(true);
        let _ = watching.await;
        if shut_down {
            return Ok(());
        }
        tracing::warn!("tokentray (pid {}) stopped; serving here", other.pid);
    }
}

/// How long a socket-activated daemon has to publish `endpoint.json` after the first connection.
pub const ACTIVATION_WAIT: std::time::Duration = std::time::Duration::from_secs(3);
/// How often a following instance checks that the one it follows still runs.
const FOLLOW_CHECK: std::time::Duration = std::time::Duration::from_secs(2);

/// The other running instance, if one serves: the one `endpoint.json` names, or the daemon that
/// a connection to `port` starts (a systemd socket), once it has published `endpoint.json`.
async fn serving_elsewhere(paths: &Paths, port: u16) -> Option<Endpoint> {
    // Reads endpoint.json and asks the OS about its pid: on a blocking thread, not a worker.
    let other = || {
        let paths = paths.clone();
        async move {
            tokio::task::spawn_blocking(move || {
                Endpoint::running(&paths).filter(|e| e.pid != std::process::id())
            })
            .await
            .ok()
            .flatten()
        }
    };
    if let Some(found) = other().await {
        return Some(found);
    }
    // Something listens on the port (a closed port answers at once): perhaps a socket unit.
    let probe = tokio::net::TcpStream::connect(("127.0.0.1", port));
    if !matches!(
        tokio::time::timeout(std::time::Duration::from_millis(500), probe).await,
        Ok(Ok(_))
    ) {
        return None;
    }
    let deadline = tokio::time::Instant::now() + ACTIVATION_WAIT;
    while tokio::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        if let Some(found) = other().await {
            return Some(found);
        }
    }
    None
}

/// Republishes `endpoint.json` whenever this instance's endpoint secret changes (rotated, or
/// created anew after the cache was reset or quarantined), until `stop`, so that tools and the
/// CLI never hold a secret the endpoint no longer takes.
async fn republish(
    paths: Paths,
    tokens: Arc<Tokens>,
    mut endpoint: Endpoint,
    stop: impl std::future::Future<Output = ()>,
) {
    use tokio::sync::broadcast::error::RecvError;
    let mut events = tokens.subscribe();
    tokio::pin!(stop);
    loop {
        let event = tokio::select! {
            event = events.recv() => event,
            () = &mut stop => return,
        };
        match event {
            Ok(Event::EndpointSecretChanged) | Err(RecvError::Lagged(_)) => {}
            Ok(_) => continue,
            Err(RecvError::Closed) => return,
        }
        let Ok(secret) = tokens.endpoint_secret() else {
            continue;
        };
        if secret == endpoint.secret {
            continue;
        }
        endpoint.secret = secret;
        let (paths, published) = (paths.clone(), endpoint.clone());
        match tokio::task::spawn_blocking(move || published.publish(&paths)).await {
            Ok(Ok(())) => tracing::info!("endpoint secret changed; endpoint.json republished"),
            Ok(Err(e)) => tracing::warn!("could not republish endpoint.json: {e}"),
            Err(e) => tracing::warn!("could not republish endpoint.json: {e}"),
        }
    }
}

/// Completes on SIGINT or SIGTERM; on Windows on Ctrl-C, Ctrl-Break or the console window being
/// closed, and logoff or shutdown where Windows sends those to consoles (`tokio::signal::windows`;
/// type-checked only, not run here). On Unix the handlers are installed when this is called,
/// not when the future is first polled: call it before announcing the instance
/// (`endpoint.json`), so that a stop signal sent as soon as it is seen is never the default
/// (fatal) one. Needs a tokio runtime.
// Elsewhere nothing is installed before the first poll, so it could be an `async fn` there.
#[cfg_attr(not(unix), allow(clippy::manual_async_fn))]
pub fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    let installed = {
        use tokio::signal::unix::{SignalKind, signal};
        (
            signal(SignalKind::terminate()).ok(),
            signal(SignalKind::interrupt()).ok(),
        )
    };
    async move {
        #[cfg(unix)]
        {
            match installed {
                (Some(mut term), Some(mut int)) => {
                    tokio::select! {
                        _ = term.recv() => {}
                        _ = int.recv() => {}
                    }
                }
                _ => {
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
        }
        #[cfg(windows)]
        {
            use tokio::signal::windows::{ctrl_break, ctrl_close, ctrl_logoff, ctrl_shutdown};
            let (Ok(mut brk), Ok(mut close), Ok(mut logoff), Ok(mut shutdown)) =
                (ctrl_break(), ctrl_close(), ctrl_logoff(), ctrl_shutdown())
            else {
                let _ = tokio::signal::ctrl_c().await;
                return;
            };
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = brk.recv() => {}
                _ = close.recv() => {}
                _ = logoff.recv() => {}
                _ = shutdown.recv() => {}
            }
        }
        #[cfg(not(any(unix, windows)))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// Binds the instance's Unix socket ([`super::socket_file`], mode 0600 in the private runtime
/// directory), replacing a file a killed instance left; `None` (with a warning: the CLI then
/// uses the loopback port) when it cannot be made, e.g. a path too long for a socket address.
#[cfg(unix)]
fn bind_local(paths: &Paths) -> Option<crate::serve::Local> {
    use std::os::unix::fs::PermissionsExt as _;
    let path = super::socket_file(paths);
    let bound = crate::files::ensure_private_dir(&paths.runtime)
        .map_err(|e| e.to_string())
        .and_then(|()| match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.to_string()),
            _ => tokio::net::UnixListener::bind(&path).map_err(|e| e.to_string()),
        })
        .and_then(|listener| {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
                .map(|()| listener)
                .map_err(|e| e.to_string())
        });
    match bound {
        Ok(listener) => Some(listener),
        Err(e) => {
            tracing::warn!(
                "not serving on {}: {e}; tokentray's CLI uses the loopback port instead",
                path.display()
            );
            None
        }
    }
}

/// Windows: the endpoint is served over TCP only.
#[cfg(not(unix))]
fn bind_local(_: &Paths) -> Option<crate::serve::Local> {
    None
}

/// Binds the endpoint: `127.0.0.1:port`, plus `[::1]:port` when IPv6 loopback exists; or, when
/// socket-activated (Linux, [`super::activation`]), takes the listeners passed in, IPv4 first.
///
/// # Errors
/// [`Error::Config`]-style message if the port is taken: by a running tokentray (say so) or by
/// another program (say how to pick another port). [`Error::InvalidInput`] for a passed socket
/// tokentray must not serve on.
pub(crate) async fn bind(
    paths: &Paths,
    config_path: &Path,
    port: u16,
) -> Result<Vec<tokio::net::TcpListener>> {
    #[cfg(target_os = "linux")]
    if let Some(mut passed) = super::activation::listeners()? {
        passed.sort_by_key(|l| l.local_addr().map(|a| a.is_ipv6()).unwrap_or(true));
        let activated = passed.first().and_then(|l| l.local_addr().ok());
        if let Some(addr) = activated.filter(|a| a.port() != port) {
            tracing::warn!(
                "serving on {addr}, passed by socket activation, not on the configured port \
                 {port}: tools started before this instance get the configured one from \
                 `tokentray env`; make them agree (`port = {}` in {})",
                addr.port(),
                config_path.display()
            );
        }
        return passed
            .into_iter()
            .map(|l| {
                tokio::net::TcpListener::from_std(l)
                    .map_err(|e| Error::io("listen on", "a passed socket", e))
            })
            .collect();
    }
    let v4 = match tokio::net::TcpListener::bind(("127.0.0.1", port)).await {
        Ok(l) => l,
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
            let ours = Endpoint::running(paths).filter(|e| e.url.ends_with(&format!(":{port}")));
            // Say where the port came from: the variable, or the file (or its default).
            let from = if std::env::var_os("TOKENTRAY_PORT").is_some_and(|v| !v.is_empty()) {
                "TOKENTRAY_PORT".to_string()
            } else {
                format!("`port` in {}", config_path.display())
            };
            let detail = match ours {
                Some(other) => format!(
                    "tokentray already runs on it (pid {}): use that one, or stop it first",
                    other.pid
                ),
                None => format!(
                    "another program holds it on 127.0.0.1; choose another port with {from}"
                ),
            };
            return Err(Error::invalid(format!("port {port} (from {from})"), detail));
        }
        Err(e) => return Err(Error::io("listen on", format!("127.0.0.1:{port}"), e)),
    };
    let actual = v4
        .local_addr()
        .map_err(|e| Error::io("listen on", "127.0.0.1", e))?
        .port();
    let mut listeners = vec![v4];
    match tokio::net::TcpListener::bind(("::1", actual)).await {
        Ok(v6) => listeners.push(v6),
        Err(e) if e.kind() != std::io::ErrorKind::AddrInUse => {} // no IPv6 loopback here
        Err(e) => tracing::warn!(
            "[::1]:{actual} is not served ({e}): another program holds it. Tools must use \
             http://127.0.0.1:{actual} (what `tokentray env` prints), never localhost"
        ),
    }
    Ok(listeners)
}
