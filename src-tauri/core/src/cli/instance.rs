//! `tokentray env` and `tokentray daemon`: pointing tools at the endpoint, and serving it.

use std::sync::Arc;

use super::{Out, open_tokens};
use crate::Result;
use crate::approval::Approvals;
use crate::env::{Shell, env_lines};
use crate::instance::{endpoint_url, rotate_secret, shutdown_signal};
use crate::paths::Paths;

/// Prints the environment lines for tools in `shell`'s syntax, after replacing the secret if
/// `rotate`.
pub(super) fn env(shell: Shell, rotate: bool, out: &mut Out<'_>) -> Result<()> {
    let paths = Paths::from_env()?;
    let tokens = open_tokens()?;
    let secret = if rotate {
        rotate_secret(&paths, &tokens)?
    } else {
        tokens.endpoint_secret()?
    };
    let url = endpoint_url(&paths, tokens.config().port);
    let path_first = crate::env::path_first(&paths);
    out.bytes(env_lines(&url, secret.expose(), shell, path_first.as_deref()).as_bytes())
}

/// Serves the endpoint, with background refresh, until SIGINT or SIGTERM.
pub(super) async fn daemon() -> Result<()> {
    let paths = Paths::from_env()?;
    let tokens = Arc::new(open_tokens()?);
    // No window to ask in: programs not approved yet are refused with how to approve them.
    let approvals = Arc::new(Approvals::new(tokens, false));
    crate::instance::run(&paths, approvals, shutdown_signal(), |_| {}).await
}
