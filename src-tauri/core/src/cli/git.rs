//! `tokentray git-credential`: a git credential helper for Azure Repos.
//!
//! git runs `HELPER get` with the request on stdin (`key=value` lines up to a blank line or the
//! end: `protocol`, `host` with `:port` when not the default, `path` when
//! `credential.<url>.useHttpPath` is set) and reads `username`, `password` and
//! `password_expiry_utc` back (gitcredentials(7), git-credential(1)). For an `https` host in
//! `[git] hosts` (Azure Repos' hosts by default) the answer is the user's Entra access token for
//! Azure DevOps as the password, which Azure DevOps accepts over basic authentication, with the
//! account's username; the account is the one `[git.accounts]` names for the URL's organisation
//! (the first path segment on `dev.azure.com`, the subdomain on `*.visualstudio.com`), else the
//! default account. For any other host, or plain `http`, it prints nothing, so git asks its next
//! helper. `store` and `erase` change nothing: tokentray's tokens come from the sign-in, and a
//! rejected one is refreshed by the next `get`. Unknown actions are ignored, as git asks.
//!
//! `--install` adds the helper to `git config --global` for those hosts only
//! (`credential.https://HOST.helper`, and `useHttpPath` so the organisation reaches it);
//! `--uninstall` removes exactly those entries again.

use std::path::Path;

use std::io::Read as _;
use zeroize::Zeroizing;

use super::token::fetch;
use super::{GitCredentialArgs, Out};
use crate::config::{Config, host_matches};
use crate::paths::Paths;
use crate::tokens::TokenRequest;
use crate::{Error, Result};

/// The Entra application of Azure DevOps.
pub const AZURE_DEVOPS_RESOURCE: &str = "499b84ac-1321-427f-aa17-267ca6975798";
/// The largest request git sends is a few hundred bytes; more is not git.
const MAX_REQUEST: u64 = 64 * 1024;

/// Runs the helper action, or installs or uninstalls the helper.
pub(super) async fn git_credential(args: &GitCredentialArgs, out: &mut Out<'_>) -> Result<()> {
    let config = Config::load(&Paths::from_env()?.config_file())?;
    if args.install {
        return install(&config, out).await;
    }
    if args.uninstall {
        return uninstall(&config, out).await;
    }
    match args.action.as_deref() {
        Some("get") => get(&config, out).await,
        Some(_) => Ok(()),
        None => Err(Error::invalid(
            "tokentray git-credential",
            "git runs it with get, store or erase; to make git use it, run `tokentray git-credential --install`",
        )),
    }
}

async fn get(config: &Config, out: &mut Out<'_>) -> Result<()> {
    let text = tokio::task::spawn_blocking(|| {
        let mut text = String::new();
        std::io::Read::take(std::io::stdin(), MAX_REQUEST)
            .read_to_string(&mut text)
            .map(|_| text)
    })
    .await
    .map_err(|e| Error::io("read", "stdin", std::io::Error::other(e)))?
    .map_err(|e| Error::io("read", "stdin", e))?;
    let request = Request::parse(&text);
    let Some(host) = request.host.filter(|h| host_matches(&config.git_hosts, h)) else {
        return Ok(());
    };
    if request.protocol != Some("https") {
        out.tell(format_args!(
            "tokentray: not sending a token to {host} over {}; use an https:// remote",
            request.protocol.unwrap_or("an unknown protocol")
        ));
        return Ok(());
    }
    let account = organisation(host, request.path)
        .and_then(|org| {
            config
                .git_accounts
                .iter()
                .find(|(o, _)| o.eq_ignore_ascii_case(org))
        })
        .map(|(_, account)| account.as_str());
    let scope = format!("{AZURE_DEVOPS_RESOURCE}/.default");
    let token_request = TokenRequest {
        account,
        scopes: std::slice::from_ref(&scope),
        tenant: None,
    };
    let body = match fetch(&token_request, out.stderr).await {
        Ok(body) => body,
        // git shows a helper's stderr and asks the next helper (or the user) when it prints
        // nothing: the reason, and no credential.
        Err(e) => {
            out.tell(format_args!("tokentray: no token for {host}: {e}"));
            return Ok(());
        }
    };
    let answer = Zeroizing::new(format!(
        "username={}\npassword={}\npassword_expiry_utc={}\n",
        body.account,
        body.access_token.expose(),
        body.expires_on
    ));
    out.bytes(answer.as_bytes())
}

/// The attributes of git's request that matter here.
#[derive(Debug, Default, PartialEq, Eq)]
struct Request<'a> {
    protocol: Option<&'a str>,
    host: Option<&'a str>,
    path: Option<&'a str>,
}

impl<'a> Request<'a> {
    /// Reads `key=value` lines up to the first empty line; unknown keys (and git's `key[]=`
    /// lists) are skipped.
    fn parse(text: &'a str) -> Self {
        let mut request = Self::default();
        for line in text.lines().take_while(|l| !l.is_empty()) {
            let Some((key, value)) = line.split_once('=') else {
                continue;
            };
            match key {
                "protocol" => request.protocol = Some(value),
                "host" => request.host = Some(value),
                "path" => request.path = Some(value),
                _ => {}
            }
        }
        request
    }
}

/// The Azure DevOps organisation of a URL: the subdomain of `ORG.visualstudio.com`, else the
/// first path segment (`dev.azure.com/ORG/...`), when git sends the path.
fn organisation<'a>(host: &'a str, path: Option<&'a str>) -> Option<&'a str> {
    let name = host.split(':').next().unwrap_or(host);
    if let Some(org) = name
        .len()
        .checked_sub(".visualstudio.com".len())
        .filter(|&at| at > 0 && name[at..].eq_ignore_ascii_case(".visualstudio.com"))
        .map(|at| &name[..at])
    {
        return Some(org);
    }
    path?.split('/').find(|s| !s.is_empty())
}

/// The helper as git's config holds it: run through the shell with the action appended, so a
/// path with characters the shell would split is quoted behind git's `!`.
fn helper_command(exe: &Path) -> String {
    let exe = exe.to_string_lossy();
    let plain = exe
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "/._-+".contains(c));
    if plain {
        format!("{exe} git-credential")
    } else {
        format!("!'{}' git-credential", exe.replace('\'', r"'\''"))
    }
}

/// The git config keys for one host pattern: its helper list and its `useHttpPath`.
pub(super) fn keys(host: &str) -> (String, String) {
    (
        format!("credential.https://{host}.helper"),
        format!("credential.https://{host}.useHttpPath"),
    )
}

async fn install(config: &Config, out: &mut Out<'_>) -> Result<()> {
    let exe = std::env::current_exe().map_err(|e| Error::io("find", "tokentray itself", e))?;
    let helper = helper_command(&exe);
    for host in &config.git_hosts {
        let (helper_key, path_key) = keys(host);
        let present = git(&["config", "--global", "--get-all", &helper_key])
            .await?
            .is_some_and(|values| values.lines().any(|v| v == helper));
        if !present {
            git(&["config", "--global", "--add", &helper_key, &helper]).await?;
        }
        git(&["config", "--global", &path_key, "true"]).await?;
        out.line(format_args!(
            "git: https://{host} gets its credentials from tokentray"
        ))?;
    }
    Ok(())
}

async fn uninstall(config: &Config, out: &mut Out<'_>) -> Result<()> {
    for host in &config.git_hosts {
        let (helper_key, path_key) = keys(host);
        let Some(values) = git(&["config", "--global", "--get-all", &helper_key]).await? else {
            continue;
        };
        let ours: Vec<&str> = values
            .lines()
            .filter(|v| v.ends_with(" git-credential") && v.contains("tokentray"))
            .collect();
        for value in &ours {
            git(&[
                "config",
                "--global",
                "--fixed-value",
                "--unset-all",
                &helper_key,
                value,
            ])
            .await?;
        }
        // useHttpPath was set for the helper: it goes with the last of it.
        if !ours.is_empty() && ours.len() == values.lines().count() {
            git(&["config", "--global", "--unset", &path_key]).await?;
        }
        if !ours.is_empty() {
            out.line(format_args!("git: https://{host} no longer asks tokentray"))?;
        }
    }
    Ok(())
}

/// Runs `git ARGS`: its stdout, or `None` when git exits 1 with no output (`--get-all` of a key
/// that is not set, `--unset` of one that is gone).
///
/// # Errors
/// [`Error::ToolFailed`] if git is missing or fails otherwise.
async fn git(args: &[&str]) -> Result<Option<String>> {
    let failed = |detail: String| Error::ToolFailed {
        command: format!("git {}", args.join(" ")),
        detail,
    };
    let output = tokio::process::Command::new("git")
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                failed("failed: git is not installed (or not on PATH); install git first".into())
            } else {
                failed(format!("could not start: {e}"))
            }
        })?;
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    match output.status.code() {
        Some(0) => Ok(Some(stdout)),
        Some(1 | 5) if output.stderr.is_empty() && stdout.is_empty() => Ok(None),
        _ => {
            let stderr = String::from_utf8_lossy(&output.stderr);
            Err(failed(format!(
                "failed ({}): {}",
                output.status,
                stderr.lines().next().unwrap_or("no message")
            )))
        }
    }
}

#[cfg(test)]
mod tests;
