//! `tokentray status`: the token store, the cache and the configuration.

use serde_json::json;

use super::{Out, open};
use crate::Result;

/// Prints the store (backend, what survives a reboot, file, counts, files kept aside) and the
/// configuration.
pub(super) fn status(out: &mut Out<'_>) -> Result<()> {
    let (config, store) = open()?;
    let status = store.status()?;
    if out.json {
        return out.json(&json!({
            "store": status,
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
    out.line(format_args!(
        "Authority:   {} (tenant {})",
        config.authority, config.tenant
    ))?;
    out.line(format_args!("Client id:   {}", config.client_id))?;
    out.line(format_args!("Config file: {}", config.path.display()))
}
