//! `tokentray cache import | export | reset`.

use std::path::Path;

use super::{Out, open};
use crate::cache::TokenCache;
use crate::files::create_private;
use crate::{Error, Result};

/// Merges an MSAL JSON cache (e.g. Azure CLI's), or a cache file tokentray's own encrypted
/// store wrote (the one `cache reset` kept aside), into tokentray's. A file with no account in
/// it is refused: it is not a token cache, and nothing is changed.
pub(super) fn import(file: &Path, out: &mut Out<'_>) -> Result<()> {
    let (_, store) = open()?;
    let what = format!("cache import file {}", file.display());
    let bytes = zeroize::Zeroizing::new(std::fs::read(file).map_err(|e| {
        Error::invalid(
            &what,
            format!(
                "cannot read it ({e}); give the path of an MSAL JSON cache such as \
                 ~/.azure/msal_token_cache.json"
            ),
        )
    })?);
    let json = match crate::persist::open_sealed(file, &bytes) {
        Some(opened) => opened?,
        None => bytes,
    };
    let imported = TokenCache::from_json(&json, &what)?;
    let accounts = imported.accounts().len();
    if accounts == 0 {
        return Err(Error::invalid(
            &what,
            "holds no account, so there is nothing to import; give an MSAL token cache such as \
             ~/.azure/msal_token_cache.json, or a cache file `tokentray cache reset` kept aside",
        ));
    }
    let taken = store.modify(crate::clock::now(), |cache| Ok(cache.merge(imported)))?;
    out.line(format_args!(
        "Imported {taken} {} ({accounts} {}) from {}.",
        plural(taken, "entry", "entries"),
        plural(accounts, "account", "accounts"),
        file.display()
    ))?;
    let now_known = store.read()?.accounts();
    if now_known.len() > 1 && !now_known.iter().any(|a| a.is_default) {
        out.tell(
            "No default account yet: tools that name none get an error until you choose one with \
             `tokentray switch ACCOUNT` (see `tokentray accounts`).",
        );
    }
    Ok(())
}

fn plural<'a>(n: usize, one: &'a str, many: &'a str) -> &'a str {
    if n == 1 { one } else { many }
}

/// Writes the cache as MSAL JSON to `target` or stdout, with a warning: it holds the tokens in
/// clear text. The file is created 0600 and an existing one is refused unless `force`; the
/// directory it goes in is the user's and is left exactly as it is.
pub(super) fn export(target: Option<&Path>, force: bool, out: &mut Out<'_>) -> Result<()> {
    let (_, store) = open()?;
    let exported = store.read()?.to_msal_json();
    out.tell(
        "warning: the exported cache holds your tokens in clear text; anyone who reads it can \
         use your accounts. Delete it when done.",
    );
    match target {
        Some(path) => create_private(path, &exported, force),
        None => out.bytes(&exported),
    }
}

/// Moves the cache file aside (kept) so the next sign-in starts a new cache.
pub(super) fn reset(out: &mut Out<'_>) -> Result<()> {
    let (_, store) = open()?;
    match store.reset()? {
        Some(kept) => out.line(format_args!(
            "The old cache was moved to {}; a new cache starts with the next sign-in.",
            kept.display()
        )),
        None => out.line("There was no cache to reset."),
    }
}
