//! `tokentray accounts`, `switch` and `logout`.

use super::{Out, open, open_tokens};
use crate::Result;
use crate::cache::select_account;

/// Lists the signed-in accounts, the default marked `*`.
pub(super) fn accounts(out: &mut Out<'_>) -> Result<()> {
    let (_, store) = open()?;
    let accounts = store.read()?.accounts();
    if out.json {
        return out.json(&accounts);
    }
    if accounts.is_empty() {
        return out.line(
            "No accounts. Sign in with `tokentray login`, or import a cache with `tokentray cache import FILE`.",
        );
    }
    for a in &accounts {
        let state = match &a.needs_sign_in {
            Some(reason) => format!("needs sign-in: {reason}"),
            None => "signed in".into(),
        };
        out.line(format_args!(
            "{} {}\t{}\ttenant {}\t{}\t{state}",
            if a.is_default { "*" } else { " " },
            a.username,
            a.name.as_deref().unwrap_or("-"),
            a.home_tenant.as_deref().unwrap_or("-"),
            a.environment,
        ))?;
    }
    Ok(())
}

/// Makes the account `query` names the default.
pub(super) fn switch(query: &str, out: &mut Out<'_>) -> Result<()> {
    let chosen = open_tokens()?.switch(query)?;
    out.line(format_args!("Default account: {}.", chosen.username))
}

/// Signs out the account `query` names (the default if none), or every account.
pub(super) fn logout(query: Option<&str>, all: bool, out: &mut Out<'_>) -> Result<()> {
    let tokens = open_tokens()?;
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
