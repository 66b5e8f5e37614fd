//! `tokentray status`: the token store, the cache and the configuration.

use serde_json::json;

use super::accounts::{account_states, health_details};
use super::{Out, open};
use crate::Result;
use crate::paths::Paths;

/// Prints the store (backend, what survives a reboot, file, counts, files kept aside), the
/// running instance, each account's health and the configuration.
pub(super) async fn status(out: &mut Out<'_>) -> Result<()> {
    let (config, store) = open()?;
    let status = store.status()?;
    let paths = Paths::from_env()?;
    let (states, instance) = account_states(&paths, &store).await?;
    if out.json {
        let accounts: Vec<_> = states
            .iter()
            .map(|s| json!({"username": s.account.username, "health": s.health, "failing": s.failing}))
            .collect();
        return out.json(&json!({
            "store": status,
            "instance": instance.as_ref().map(|e| json!({"url": e.url, "pid": e.pid, "socket": e.socket})),
            "runtime_dir": paths.runtime,
            "accounts": accounts,
            "authority": config.authority,
            "tenant": config.tenant,
            "client_id": config.client_id,
            "config_file": config.path,
        }));
    }
    out.line(format_args!(
        "Token store: {} ({})",
        status.backend.as_str(),
        status.persistence
    ))?;
    out.line(format_args!("Cache file:  {}", status.location.display()))?;
    let c = status.counts;
    out.line(format_args!(
        "Cache:       {} accounts, {} access tokens, {} refresh tokens",
        c.accounts, c.access_tokens, c.refresh_tokens
    ))?;
    for kept in &status.moved_aside {
        out.line(format_args!("Kept aside:  {}", kept.display()))?;
    }
    let where_ = match paths.runtime_in_memory() {
        Some(true) => "in memory: gone at reboot",
        Some(false) => "on disk: endpoint.json outlives a reboot until the next start",
        None => "unknown file system",
    };
    out.line(format_args!(
        "Runtime dir: {} ({where_})",
        paths.runtime.display()
    ))?;
    match &instance {
        Some(e) => {
            out.line(format_args!("Running:     {} (pid {})", e.url, e.pid))?;
            if let Some(socket) = &e.socket {
                out.line(format_args!(
                    "             and {} (tokentray's own commands and helpers)",
                    socket.display()
                ))?;
            }
        }
        None => out.line(
            "Running:     no (start the app, or `tokentray daemon`; tools then get tokens from it)",
        )?,
    }
    for s in &states {
        out.line(format_args!(
            "Account:     {}{}: {}",
            s.account.username,
            if s.account.is_default {
                " (default)"
            } else {
                ""
            },
            s.health.line()
        ))?;
        health_details(s, out)?;
    }
    out.line(format_args!(
        "Authority:   {} (tenant {})",
        config.authority, config.tenant
    ))?;
    out.line(format_args!("Client id:   {}", config.client_id))?;
    out.line(format_args!("Config file: {}", config.path.display()))
}
