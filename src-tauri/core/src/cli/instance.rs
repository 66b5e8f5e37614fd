//! `tokentray env` and `tokentray daemon`: pointing tools at the endpoint, and serving it.

use std::io::Write as _;
use std::sync::Arc;

use zeroize::Zeroizing;

use super::{Out, open_tokens};
use crate::Result;
use crate::approval::Approvals;
use crate::env::{Shell, Tools, lines_for};
use crate::instance::{endpoint_url, rotate_secret, shutdown_signal};
use crate::paths::Paths;

/// Prints the environment lines for `tools` in `shell`'s syntax (with `--json`, the variables
/// as an object and the directory put first on `PATH`), after replacing the secret if `rotate`.
/// When nothing holds the endpoint's port it says so on stderr: tools would move on to their next
/// credential until the app or a daemon runs.
pub(super) fn env(shell: Shell, rotate: bool, tools: Tools, out: &mut Out<'_>) -> Result<()> {
    let paths = Paths::from_env()?;
    let tokens = open_tokens()?;
    let secret = if rotate {
        rotate_secret(&paths, &tokens)?
    } else {
        tokens.endpoint_secret()?
    };
    let url = endpoint_url(&paths, tokens.config().port);
    if rotate && crate::session_env::installed() {
        // The session's programs keep the old secret until they start again.
        match crate::session_env::install(tokens.config().port, secret.expose()) {
            Ok(_) => out.tell("the session environment has the new secret (programs started from now on)"),
            Err(e) => out.tell(format_args!(
                "the session environment keeps the old secret: {e}. Run `tokentray env --install` again"
            )),
        }
    }
    let tenant = tokens
        .accounts()?
        .into_iter()
        .find(|a| a.is_default)
        .and_then(|a| a.home_tenant);
    let vars = crate::env::variables(&url, secret.expose(), tools, tenant.as_deref());
    // The az shim's directory goes on PATH with the SDKs' variables only.
    let path_first = crate::env::path_first(&paths).filter(|_| tools == Tools::Sdk);
    if out.json {
        let variables: serde_json::Map<String, serde_json::Value> = vars
            .iter()
            .map(|(name, value)| ((*name).to_string(), value.as_str().into()))
            .collect();
        let text = serde_json::to_string_pretty(
            &serde_json::json!({ "variables": variables, "path_first": path_first }),
        )
        .map(Zeroizing::new)
        .map_err(|e| crate::Error::io("write", "stdout", std::io::Error::other(e)))?;
        out.line(&*text)?;
    } else {
        out.bytes(lines_for(&vars, shell, path_first.as_deref()).as_bytes())?;
    }
    if !listening(&url) {
        out.tell(format_args!(
            "note: nothing listens at {url} yet: tools get tokens once the app (`tokentray`) or \
             `tokentray daemon` runs, and move on to their next credential until then"
        ));
    }
    Ok(())
}

/// `tokentray env --install`: the SDKs' variables for every program started from now on
/// ([`crate::session_env::install`]), then what was done, a line each, and how to check.
pub(super) fn install_env(out: &mut Out<'_>) -> Result<()> {
    let tokens = open_tokens()?;
    let secret = tokens.endpoint_secret()?;
    for line in crate::session_env::install(tokens.config().port, secret.expose())? {
        out.line(line)?;
    }
    out.tell(
        "programs started from now on see IDENTITY_ENDPOINT and IDENTITY_HEADER (those running \
         now do not); check with `systemctl --user show-environment` or in a new terminal of \
         your next login. `tokentray env --uninstall` removes them",
    );
    Ok(())
}

/// `tokentray env --uninstall`: removes what `--install` set ([`crate::session_env::uninstall`]).
pub(super) fn uninstall_env(out: &mut Out<'_>) -> Result<()> {
    let did = crate::session_env::uninstall()?;
    if did.is_empty() {
        out.line("the session environment was not installed: nothing to remove")?;
    }
    for line in did {
        out.line(line)?;
    }
    Ok(())
}

/// Whether something holds the endpoint's port (`url` is `http://HOST:PORT`): the app, a
/// daemon, or the socket that starts one. It binds the port for a moment rather than connecting,
/// so whatever listens there sees nothing.
fn listening(url: &str) -> bool {
    let address = crate::instance::address_of(url);
    matches!(
        std::net::TcpListener::bind(address),
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse
    )
}

/// Serves the endpoint, with background refresh, until SIGINT or SIGTERM.
pub(super) async fn daemon() -> Result<()> {
    let paths = Paths::from_env()?;
    let tokens = Arc::new(open_tokens()?);
    // No window to ask in: programs not approved yet are refused with how to approve them.
    let approvals = Arc::new(Approvals::new(tokens, false));
    crate::instance::run(&paths, approvals, shutdown_signal(), |endpoint| {
        // For the person who started it (a log line at the default level would be a warning).
        let _ = writeln!(
            std::io::stderr(),
            "tokentray daemon: serving tokens on {} (pid {}); point tools at it with: \
             eval \"$(tokentray env)\"",
            endpoint.url,
            endpoint.pid
        );
    })
    .await
}
