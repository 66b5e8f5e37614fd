//! The `az` shim: an `az` first on `PATH` that answers `az account get-access-token` from
//! tokentray in milliseconds and hands every other command to the real Azure CLI.
//!
//! Every Azure SDK's `AzureCliCredential` (Python, JS, Go, Rust, .NET), Terraform's `use_cli`
//! (hashicorp/go-azure-sdk) and kubelogin's `azurecli` mode run
//! `az account get-access-token -o json` with `--resource R` or `--scope S`, and `--tenant T` or
//! `--subscription S`, in any order and in the `--flag value` and `--flag=value` forms, and parse
//! `accessToken`, `expires_on` (an integer, epoch seconds: Go and Rust require it), `expiresOn`
//! (local time, `YYYY-MM-DD HH:MM:SS.ffffff`), `tokenType` and `tenant` from az's JSON (keys
//! sorted, two-space indent). The shim prints exactly that, with stderr empty on success (the JS
//! credential fails on any `az login` text in stderr). `--query FIELD` and `-o tsv|none` work
//! for the fields above, so `az account get-access-token --query accessToken -o tsv` does too.
//!
//! What it does not answer itself goes to the real `az`, the next one on `PATH` after the shim's
//! own directory, with argv, stdin, stdout, stderr and the exit code intact (on Unix the shim
//! `exec`s it): every other command, options it does not know, `--subscription` (mapping a
//! subscription to its tenant needs ARM's subscription list, which tokentray does not keep yet),
//! and a token tokentray cannot give (no account, sign-in needed). With no real `az` the shim
//! fails as az does where that helps the callers: `ERROR: Please run 'az login' to setup
//! account.` and exit 1 when nothing is signed in (which makes the SDKs' `DefaultAzureCredential`
//! move on to its next credential), `az: command not found` and exit 127 for a command it
//! cannot run.
//!
//! `tokentray az-shim --install` links `DATA/bin/az` to tokentray ([`Paths::az_shim`];
//! `az.cmd` on Windows, which Python's credential looks for first); `tokentray env` then puts
//! that directory first on `PATH`. `--uninstall` removes the link.

use std::ffi::OsString;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::token::fetch;
use super::{AzShimArgs, Out, exit};
use crate::authority::Authority;
use crate::config::Config;
use crate::paths::Paths;
use crate::serve::TokenBody;
use crate::tokens::TokenRequest;
use crate::{Error, ErrorCode, Result};

/// What `az account get-access-token` prints (its keys in az's sorted order).
#[derive(Serialize)]
pub(super) struct AzToken<'a> {
    #[serde(rename = "accessToken")]
    access_token: &'a str,
    #[serde(rename = "expiresOn")]
    expires_on_local: String,
    expires_on: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    subscription: Option<&'a str>,
    tenant: &'a str,
    #[serde(rename = "tokenType")]
    token_type: &'a str,
}

impl<'a> AzToken<'a> {
    /// az's answer for `body`.
    pub(super) fn new(body: &'a TokenBody) -> Self {
        Self {
            access_token: body.access_token.expose(),
            expires_on_local: chrono::DateTime::from_timestamp(body.expires_on, 0)
                .map(|t| {
                    t.with_timezone(&chrono::Local)
                        .format("%Y-%m-%d %H:%M:%S%.6f")
                        .to_string()
                })
                .unwrap_or_default(),
            expires_on: body.expires_on,
            subscription: None,
            tenant: &body.tenant,
            token_type: &body.token_type,
        }
    }

    /// The value of one field, as `--query FIELD` names it.
    fn field(&self, name: &str) -> Option<serde_json::Value> {
        Some(match name {
            "accessToken" => self.access_token.into(),
            "expiresOn" => self.expires_on_local.as_str().into(),
            "expires_on" => self.expires_on.into(),
            "tenant" => self.tenant.into(),
            "tokenType" => self.token_type.into(),
            _ => return None,
        })
    }
}

/// The request of an `az account get-access-token` the shim answers itself.
#[derive(Debug, Default, PartialEq, Eq)]
struct GetToken {
    resource: Option<String>,
    scopes: Vec<String>,
    resource_type: Option<String>,
    tenant: Option<String>,
    output: Output,
    query: Option<String>,
}

/// `-o`/`--output`.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum Output {
    #[default]
    Json,
    Tsv,
    None,
}

/// The fields `--query` may name.
const FIELDS: [&str; 5] = [
    "accessToken",
    "expiresOn",
    "expires_on",
    "tenant",
    "tokenType",
];

/// Reads `args` (after `az`) as a `get-access-token` the shim answers, or `None` for anything
/// to hand to the real az.
fn parse(args: &[String]) -> Option<GetToken> {
    let [group, command, rest @ ..] = args else {
        return None;
    };
    if group != "account" || command != "get-access-token" {
        return None;
    }
    let mut request = GetToken::default();
    let mut i = 0;
    while i < rest.len() {
        let (flag, inline) = match rest[i].split_once('=') {
            Some((flag, value)) if flag.starts_with('-') => (flag, Some(value.to_string())),
            _ => (rest[i].as_str(), None),
        };
        i += 1;
        if flag == "--only-show-errors" && inline.is_none() {
            continue;
        }
        let takes_many = flag == "--scope";
        let mut values: Vec<String> = inline.into_iter().collect();
        while i < rest.len() && !rest[i].starts_with('-') && (values.is_empty() || takes_many) {
            values.push(rest[i].clone());
            i += 1;
        }
        let one = || match values.as_slice() {
            [value] => Some(value.clone()),
            _ => None,
        };
        match flag {
            "--resource" => request.resource = Some(one()?),
            "--resource-type" => request.resource_type = Some(one()?),
            "--scope" if !values.is_empty() => request.scopes.extend(values),
            "--tenant" | "-t" => request.tenant = Some(one()?),
            "--output" | "-o" => {
                request.output = match one()?.as_str() {
                    "json" | "jsonc" => Output::Json,
                    "tsv" => Output::Tsv,
                    "none" => Output::None,
                    _ => return None,
                }
            }
            "--query" => request.query = Some(one()?).filter(|q| FIELDS.contains(&q.as_str())),
            _ => return None,
        }
        if flag == "--query" && request.query.is_none() {
            return None;
        }
    }
    Some(request)
}

impl GetToken {
    /// The scopes to ask for, as az turns `--resource` and `--resource-type` into scopes
    /// (`RESOURCE/.default`, keeping a trailing slash); ARM's without either; `None` for a
    /// resource type the shim does not know.
    fn scopes(&self, authority: &Authority) -> Option<Vec<String>> {
        if !self.scopes.is_empty() {
            return Some(self.scopes.clone());
        }
        let cloud = authority.cloud();
        let resource = match (&self.resource, self.resource_type.as_deref()) {
            (Some(resource), _) => resource.clone(),
            (None, None | Some("arm")) => cloud.arm_audience.to_string(),
            (None, Some("ms-graph")) => format!("{}/", cloud.graph),
            (None, Some(_)) => return None,
        };
        Some(vec![format!("{resource}/.default")])
    }
}

/// Runs the shim with `args` (what followed `az`); returns the exit code. Only returns on Unix
/// when the shim answered itself or could not start the real az.
pub fn run(args: Vec<OsString>) -> u8 {
    let text: Option<Vec<String>> = args.iter().map(|a| a.to_str().map(String::from)).collect();
    let Some(request) = text.as_deref().and_then(parse) else {
        return hand_over(&args, None);
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return fail(&format!("cannot start: {e}")),
    };
    let mut stdout = std::io::stdout().lock();
    // Whatever tokentray would say goes nowhere: az's callers read stderr as az's.
    let mut quiet = std::io::sink();
    let mut out = Out {
        stdout: &mut stdout,
        stderr: &mut quiet,
        json: false,
    };
    match runtime.block_on(answer(&request, &mut out)) {
        Ok(()) => exit::OK,
        Err(e) => hand_over(&args, Some(&e)),
    }
}

async fn answer(request: &GetToken, out: &mut Out<'_>) -> Result<()> {
    let config = Config::load(&Paths::from_env()?.config_file())?;
    let authority = Authority::from_config(&config)?;
    let scopes = request
        .scopes(&authority)
        .ok_or_else(|| Error::invalid("--resource-type", "not one the az shim knows"))?;
    let body = fetch(
        &TokenRequest {
            account: None,
            scopes: &scopes,
            tenant: request.tenant.as_deref(),
        },
        out,
    )
    .await?;
    let token = AzToken::new(&body);
    let value = match &request.query {
        Some(field) => token.field(field),
        None => None,
    };
    match (request.output, value) {
        (Output::None, _) => Ok(()),
        (Output::Json, None) => out.json(&token),
        (Output::Json, Some(value)) => out.json(&value),
        (Output::Tsv, Some(serde_json::Value::String(s))) => out.line(s),
        (Output::Tsv, Some(value)) => out.line(value),
        (Output::Tsv, None) => out.line(format_args!(
            "{}\t{}\t{}\t{}\t{}",
            token.access_token,
            token.expires_on_local,
            token.expires_on,
            token.tenant,
            token.token_type
        )),
    }
}

/// Hands the command to the real az; without one, fails as az's callers expect (`why` is what
/// kept the shim from answering itself, if it tried).
fn hand_over(args: &[OsString], why: Option<&Error>) -> u8 {
    let Some(az) = real_az() else {
        return match why {
            Some(e) if signed_out(e) => fail(&format!(
                "Please run 'az login' to setup account. (tokentray's az shim: {e}; or sign in with `tokentray login`)"
            )),
            Some(e) => fail(&format!("tokentray's az shim: {e}")),
            None => {
                let _ = writeln!(
                    std::io::stderr(),
                    "az: command not found (tokentray's az shim answers `az account get-access-token`; \
                     install the Azure CLI for everything else)"
                );
                127
            }
        };
    };
    let mut command = std::process::Command::new(&az);
    command.args(args);
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt as _;
        let e = command.exec();
        fail(&format!(
            "tokentray's az shim could not run {}: {e}",
            az.display()
        ))
    }
    #[cfg(not(unix))]
    match command.status() {
        Ok(status) => status
            .code()
            .and_then(|c| u8::try_from(c).ok())
            .unwrap_or(exit::FAILURE),
        Err(e) => fail(&format!(
            "tokentray's az shim could not run {}: {e}",
            az.display()
        )),
    }
}

/// Whether signing in (to tokentray, or to az behind it) is what would help.
fn signed_out(e: &Error) -> bool {
    matches!(
        e.code(),
        ErrorCode::NoAccount
            | ErrorCode::AccountNotFound
            | ErrorCode::AmbiguousAccount
            | ErrorCode::NoCachedToken
            | ErrorCode::KeyLost
            | ErrorCode::InteractionRequired
    )
}

/// Prints `ERROR: message` as az does; returns az's exit code for errors.
fn fail(message: &str) -> u8 {
    let _ = writeln!(std::io::stderr(), "ERROR: {message}");
    exit::FAILURE
}

/// The real az: the first `az` on `PATH` that is not the shim (not in the shim's directory and
/// not tokentray itself).
fn real_az() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    let me = std::env::current_exe()
        .ok()
        .and_then(|p| p.canonicalize().ok());
    let shim_dir = Paths::from_env()
        .ok()
        .and_then(|p| p.az_shim().parent().map(Path::to_path_buf))
        .and_then(|d| d.canonicalize().ok());
    let names: &[&str] = if cfg!(windows) {
        &["az.cmd", "az.exe", "az.bat"]
    } else {
        &["az"]
    };
    std::env::split_paths(&path)
        .filter(|dir| dir.canonicalize().ok() != shim_dir || shim_dir.is_none())
        .flat_map(|dir| names.iter().map(move |n| dir.join(n)))
        .find(|candidate| {
            let real = candidate.canonicalize().ok();
            real.is_some() && real != me && is_executable(candidate)
        })
}

fn is_executable(path: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    }
    #[cfg(not(unix))]
    {
        path.is_file()
    }
}

/// `tokentray az-shim`: installs, removes or reports the shim.
pub(super) fn az_shim(args: &AzShimArgs, out: &mut Out<'_>) -> Result<()> {
    let shim = Paths::from_env()?.az_shim();
    let dir = shim
        .parent()
        .ok_or_else(|| Error::invalid("az shim", "its path has no directory"))?;
    if args.uninstall {
        if ours(&shim) {
            std::fs::remove_file(&shim).map_err(|e| Error::io("remove", &shim, e))?;
            let _ = std::fs::remove_dir(dir);
            out.line(format_args!("removed the az shim {}", shim.display()))?;
        } else {
            out.line("the az shim is not installed")?;
        }
        return Ok(());
    }
    if args.install {
        let exe = std::env::current_exe().map_err(|e| Error::io("find", "tokentray itself", e))?;
        crate::files::ensure_private_dir(dir)?;
        if shim.symlink_metadata().is_ok() {
            if !ours(&shim) {
                return Err(Error::FileExists { path: shim });
            }
            std::fs::remove_file(&shim).map_err(|e| Error::io("replace", &shim, e))?;
        }
        link(&exe, &shim)?;
        out.line(format_args!(
            "installed the az shim {}; new shells that run `eval \"$(tokentray env)\"` put it first on PATH",
            shim.display()
        ))?;
        return Ok(());
    }
    if ours(&shim) {
        out.line(format_args!(
            "installed: {} (real az behind it: {})",
            shim.display(),
            real_az().map_or("none".into(), |p| p.display().to_string())
        ))
    } else {
        out.line("not installed: `tokentray az-shim --install` installs it")
    }
}

/// Whether the file at `shim` is a shim tokentray wrote (a link to a `tokentray` binary, or
/// the `az.cmd` that runs one).
fn ours(shim: &Path) -> bool {
    #[cfg(unix)]
    {
        std::fs::read_link(shim).is_ok_and(|target| {
            target
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("tokentray"))
        })
    }
    #[cfg(not(unix))]
    {
        std::fs::read_to_string(shim).is_ok_and(|text| text.contains(CMD_MARK))
    }
}

/// The first line of the `az.cmd` tokentray writes (Windows).
#[cfg(not(unix))]
const CMD_MARK: &str = "@rem tokentray az shim";

#[cfg(unix)]
fn link(exe: &Path, shim: &Path) -> Result<()> {
    std::os::unix::fs::symlink(exe, shim).map_err(|e| Error::io("link", shim, e))
}

#[cfg(not(unix))]
fn link(exe: &Path, shim: &Path) -> Result<()> {
    let text = format!("{CMD_MARK}\r\n@\"{}\" az %*\r\n", exe.display());
    crate::files::write_atomic(shim, text.as_bytes())
}

#[cfg(test)]
mod tests;
