//! `docker-credential-tokentray`: docker's credential helper for Azure Container Registry.
//!
//! docker runs `docker-credential-SUFFIX ACTION` for the registries `credHelpers` (or
//! `credsStore`) in `~/.docker/config.json` names (docker/docker-credential-helpers): `get` reads
//! the registry's host on stdin and expects `{"ServerURL", "Username", "Secret"}` on stdout; an
//! error is its message on stdout with exit 1, and the message `credentials not found in native
//! keychain` means "no credentials here", after which docker goes on without. For a registry in
//! `[docker] hosts` (`*.azurecr.io` and the other clouds' by default) the helper does what
//! `az acr login` does: it exchanges the user's Azure Resource Manager token for the registry's
//! own refresh token (`POST https://REGISTRY/oauth2/exchange`, `grant_type=access_token`,
//! `service`, `tenant`, `access_token`) and answers with it under the user name
//! `00000000-0000-0000-0000-000000000000`, which tells the registry the secret is such a token.
//! `store` and `erase` change nothing (tokentray's sign-in is the credential), `list` lists
//! nothing, `version` prints tokentray's version.
//!
//! The registry's token is kept until 10 minutes before it expires (its JWT `exp`; ACR's last
//! three hours), for the registry and the account it was exchanged for, in
//! `DATA/registry-tokens.bin`: the same kind of store as the token cache, with a key of its own
//! ([`crate::persist::beside`]; encrypted unless the cache is plaintext), so a `docker pull`
//! costs no request while it lasts. Another default account, or an unreadable or lost store,
//! means one exchange again. The ARM token itself comes from the running instance or the cache.
//!
//! `tokentray` runs as this helper when started by that name: the package links it in
//! `/usr/bin`; from a build, `ln -s "$(command -v tokentray)" ~/.local/bin/docker-credential-tokentray`. Then add
//! `"credHelpers": {"myregistry.azurecr.io": "tokentray"}` to `~/.docker/config.json`.

use std::ffi::OsString;
use std::io::{Read as _, Write as _};

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::token::fetch;
use crate::authority::Authority;
use crate::cache::IdTokenClaims;
use crate::config::{Config, host_matches};
use crate::paths::Paths;
use crate::persist::Persistence;
use crate::secret::Secret;
use crate::tokens::TokenRequest;
use crate::{Error, Result};

/// The name tokentray answers to as the helper.
pub const HELPER_NAME: &str = "docker-credential-tokentray";
/// The user name ACR expects with one of its refresh tokens (`az acr login`'s).
const TOKEN_USER: &str = "00000000-0000-0000-0000-000000000000";
/// docker's "no credentials here" (docker-credential-helpers `credentials.errCredentialsNotFound`).
const NOT_FOUND: &str = "credentials not found in native keychain";
/// A registry host is a few dozen bytes; more is not docker.
const MAX_REQUEST: u64 = 4096;

/// Runs the helper with `args` (what followed its name); returns the exit code.
pub fn run(args: &[OsString]) -> u8 {
    let action = args.first().and_then(|a| a.to_str()).unwrap_or_default();
    let result = match action {
        "get" => get(),
        "store" | "erase" => read_stdin().map(|_| ()),
        "list" => print("{}"),
        "version" => print(&format!("tokentray {}", env!("CARGO_PKG_VERSION"))),
        _ => Err(Error::invalid(
            HELPER_NAME,
            "docker runs it with get, store, erase, list or version",
        )),
    };
    match result {
        Ok(()) => 0,
        Err(e) => {
            // docker reads a helper's error from stdout.
            let message = match &e {
                Error::InvalidInput { what, .. } if what == NOT_FOUND => NOT_FOUND.to_string(),
                other => format!("tokentray: {other}"),
            };
            let _ = writeln!(std::io::stdout(), "{message}");
            1
        }
    }
}

fn print(text: &str) -> Result<()> {
    writeln!(std::io::stdout(), "{text}").map_err(|e| Error::io("write", "stdout", e))
}

fn read_stdin() -> Result<String> {
    let mut text = String::new();
    std::io::stdin()
        .take(MAX_REQUEST)
        .read_to_string(&mut text)
        .map_err(|e| Error::io("read", "stdin", e))?;
    Ok(text)
}

fn not_found() -> Error {
    Error::invalid(NOT_FOUND, "")
}

/// The registry host of what docker sends: `myregistry.azurecr.io`, or a URL of it.
fn registry_host(server_url: &str) -> Option<&str> {
    let rest = server_url.trim();
    let rest = rest
        .strip_prefix("https://")
        .or_else(|| rest.strip_prefix("http://"))
        .unwrap_or(rest);
    let host = rest.split('/').next()?;
    (!host.is_empty() && !host.contains(char::is_whitespace)).then_some(host)
}

fn get() -> Result<()> {
    let server_url = read_stdin()?;
    let paths = Paths::from_env()?;
    let config = Config::load(&paths.config_file())?;
    let host = registry_host(&server_url)
        .filter(|h| host_matches(&config.docker_hosts, h))
        .ok_or_else(not_found)?;
    let store = config.open_store(&paths)?;
    let account = store
        .read()?
        .accounts()
        .into_iter()
        .find(|a| a.is_default)
        .map(|a| a.username.to_lowercase());
    let kept = crate::persist::beside(store.backend(), paths.registry_tokens());
    let mut tokens = kept
        .as_deref()
        .map(RegistryTokens::load)
        .unwrap_or_default();
    let now = crate::clock::now();
    let secret = match account.as_deref().and_then(|a| tokens.valid(host, a, now)) {
        Some(secret) => secret,
        None => {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| Error::io("start", "the async runtime", e))?;
            let (secret, account) = runtime.block_on(exchange(&config, host))?;
            if let Some(kept) = kept.as_deref() {
                tokens.keep(host, &account, &secret, now);
                tokens.save(kept);
            }
            secret
        }
    };
    let answer = Answer {
        server_url: server_url.trim(),
        username: TOKEN_USER,
        secret: secret.expose(),
    };
    let text = Zeroizing::new(
        serde_json::to_string(&answer)
            .map_err(|e| Error::io("write", "stdout", std::io::Error::other(e)))?,
    );
    print(&text)
}

/// The registry's refresh token for the default account's ARM token, and that account's
/// username.
async fn exchange(config: &Config, host: &str) -> Result<(Secret, String)> {
    let authority = Authority::from_config(config)?;
    let scope = format!("{}/.default", authority.cloud().arm_audience);
    let token = fetch(
        &TokenRequest {
            account: None,
            scopes: std::slice::from_ref(&scope),
            tenant: None,
        },
        &mut std::io::sink(),
    )
    .await?;
    let url = format!("https://{host}/oauth2/exchange");
    let failed = |detail: String| Error::ToolFailed {
        command: format!("POST {url}"),
        detail,
    };
    let form = [
        ("grant_type", "access_token"),
        ("service", host),
        ("tenant", token.tenant.as_str()),
        ("access_token", token.access_token.expose()),
    ];
    let response = crate::flow::http_client(config)?
        .post(&url)
        .form(&form)
        .send()
        .await
        .map_err(|e| {
            failed(format!(
                "failed ({}); is the registry's name right and reachable?",
                crate::flow::describe(host, &e)
            ))
        })?;
    let status = response.status();
    if !status.is_success() {
        return Err(failed(format!(
            "was refused ({status}): make sure {} may pull from it (the AcrPull role) and signs in to its tenant",
            token.account
        )));
    }
    let body: Exchanged = response
        .json()
        .await
        .map_err(|e| failed(format!("answered no refresh token: {e}")))?;
    Ok((body.refresh_token, token.account))
}

/// A kept registry token must have this long left, in seconds, to be handed out.
const KEEP_MARGIN: i64 = 600;

/// The registry tokens kept, by registry host.
#[derive(Default, Serialize, Deserialize)]
struct RegistryTokens(BTreeMap<String, Kept>);

/// One registry's token, and whose it is.
#[derive(Serialize, Deserialize)]
struct Kept {
    /// The account's username, lower case.
    account: String,
    token: Secret,
    /// Epoch seconds.
    expires_on: i64,
}

impl RegistryTokens {
    /// What `store` keeps; nothing when it is empty, unreadable or its key is lost (the next
    /// exchange replaces it).
    fn load(store: &dyn Persistence) -> Self {
        match store.load() {
            Ok(Some(bytes)) => serde_json::from_slice(&bytes).unwrap_or_default(),
            Ok(None) => Self::default(),
            Err(e) => {
                tracing::debug!("registry tokens not read: {e}");
                Self::default()
            }
        }
    }

    /// `host`'s token for `account` if it has [`KEEP_MARGIN`] left at `now`.
    fn valid(&self, host: &str, account: &str, now: i64) -> Option<Secret> {
        self.0
            .get(&host.to_ascii_lowercase())
            .filter(|k| k.account == account && k.expires_on - now >= KEEP_MARGIN)
            .map(|k| k.token.clone())
    }

    /// Keeps `token` as `host`'s for `account` (when it says when it expires), and drops the
    /// expired ones.
    fn keep(&mut self, host: &str, account: &str, token: &Secret, now: i64) {
        self.0.retain(|_, k| k.expires_on > now);
        if let Some(expires_on) = IdTokenClaims::decode(token).and_then(|c| c.exp) {
            self.0.insert(
                host.to_ascii_lowercase(),
                Kept {
                    account: account.to_lowercase(),
                    token: token.clone(),
                    expires_on,
                },
            );
        }
    }

    /// Writes them to `store`; a failure only costs an exchange next time.
    fn save(&self, store: &dyn Persistence) {
        let written = serde_json::to_vec(self)
            .map_err(|e| Error::io("write", store.location(), std::io::Error::other(e)))
            .and_then(|bytes| store.save(Zeroizing::new(bytes)));
        if let Err(e) = written {
            tracing::warn!("registry token not kept: {e}");
        }
    }
}

/// ACR's answer to an exchange.
#[derive(Deserialize)]
struct Exchanged {
    refresh_token: Secret,
}

/// docker's credentials.
#[derive(Serialize)]
struct Answer<'a> {
    #[serde(rename = "ServerURL")]
    server_url: &'a str,
    #[serde(rename = "Username")]
    username: &'a str,
    #[serde(rename = "Secret")]
    secret: &'a str,
}

#[cfg(test)]
mod tests;
