//! `tokentray accounts`, `switch` and `logout`.

use super::{Out, open, open_tokens};
use crate::cache::select_account;
use crate::instance::{self, Endpoint};
use crate::paths::Paths;
use crate::persist::PersistedCache;
use crate::subscriptions::Known;
use crate::tokens::{AccountState, Health};
use crate::{Error, Result};

/// Lists the signed-in accounts with their health, the default marked `*` and tenants by name
/// where ARM named them ([`Known::tenant_name`]); under the table, what to do about those that
/// need it.
pub(super) async fn accounts(out: &mut Out<'_>) -> Result<()> {
    let (_, store) = open()?;
    let paths = Paths::from_env()?;
    let (states, _) = account_states(&paths, &store).await?;
    let known = Known::load(&paths.subscriptions());
    if out.json {
        return out.json(&states);
    }
    if states.is_empty() {
        return out.line(
            "No accounts. Sign in with `tokentray login`, or import a cache with `tokentray cache import FILE`.",
        );
    }
    let rows: Vec<[String; 6]> = states
        .iter()
        .map(|s| {
            let a = &s.account;
            [
                if a.is_default { "*" } else { "" }.to_string(),
                a.username.clone(),
                a.name.clone().unwrap_or_else(|| "-".into()),
                a.home_tenant.as_deref().map_or_else(
                    || "-".into(),
                    |t| known.tenant_name(t).unwrap_or(t).to_string(),
                ),
                a.environment.clone(),
                s.health.line(),
            ]
        })
        .collect();
    out.table(["", "USERNAME", "NAME", "TENANT", "CLOUD", "STATUS"], &rows)?;
    if out.tsv {
        return Ok(());
    }
    for s in &states {
        if has_details(s) {
            out.line(format_args!("{}:", s.account.username))?;
            health_details(s, out)?;
        }
    }
    Ok(())
}

/// Whether [`health_details`] has anything to say about `state`.
fn has_details(state: &AccountState) -> bool {
    matches!(
        state.health,
        Health::NeedsSignIn { .. } | Health::Retrying { .. }
    ) || !state.failing.is_empty()
}

/// The lines under an account's: what Entra said, what fails on its own, what to do.
pub(super) fn health_details(state: &AccountState, out: &mut Out<'_>) -> Result<()> {
    match &state.health {
        Health::NeedsSignIn { details, .. } => {
            out.line(format_args!("    details: {details}"))?;
            out.line(format_args!(
                "    fix: tokentray login --login-hint {}",
                state.account.username
            ))?;
        }
        Health::Retrying { reason, .. } => {
            out.line(format_args!(
                "    last try: {reason}; cached tokens are served until they expire"
            ))?;
        }
        _ => {}
    }
    for f in &state.failing {
        out.line(format_args!(
            "    failing: {}{}: {}",
            f.scopes,
            f.tenant
                .as_deref()
                .map(|t| format!(" (tenant {t})"))
                .unwrap_or_default(),
            f.reason
        ))?;
    }
    Ok(())
}

/// The accounts with their health, and the instance they came from: the running app's or
/// daemon's view when one answers (it knows its refreshes and backoff), else the cache file's
/// (ok or needs sign-in).
pub(super) async fn account_states(
    paths: &Paths,
    store: &PersistedCache,
) -> Result<(Vec<AccountState>, Option<Endpoint>)> {
    if let Some(endpoint) = Endpoint::running(paths) {
        match instance::account_states(&endpoint).await {
            Ok(states) => return Ok((states, Some(endpoint))),
            Err(e @ Error::InstanceUnreachable { .. }) => {
                tracing::debug!("reading the cache file instead: {e}");
            }
            Err(e) => return Err(e),
        }
    }
    let states = store
        .read()?
        .accounts()
        .into_iter()
        .map(AccountState::at_rest)
        .collect();
    Ok((states, None))
}

/// Makes the account `query` names the default.
pub(super) fn switch(query: &str, out: &mut Out<'_>) -> Result<()> {
    let chosen = open_tokens()?.switch(query)?;
    out.line(format_args!("Default account: {}.", chosen.username))
}

/// Signs out the account `query` names (the default if none), or every account.
///
/// With nothing signed in there is nothing to do: it says so and succeeds.
pub(super) fn logout(query: Option<&str>, all: bool, out: &mut Out<'_>) -> Result<()> {
    let tokens = open_tokens()?;
    if tokens.accounts()?.is_empty() {
        return out.line("Nothing to sign out: no account is signed in.");
    }
    let chosen = if all {
        None
    } else {
        let accounts = tokens.accounts()?;
        Some(select_account(&accounts, query)?.home_account_id.clone())
    };
    for gone in tokens.sign_out(chosen.as_deref())? {
        out.line(format_args!("Signed out {}.", gone.username))?;
    }
    Ok(())
}
