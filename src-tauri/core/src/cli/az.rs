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
//! It also answers what callers read before asking for a token: `az account show` and
//! `az account list` (`--all`, `--refresh`), `az account set --subscription`, and `--subscription`
//! on `get-access-token`, from tokentray's accounts and the subscriptions ARM lists for them
//! ([`account`], [`crate::subscriptions`]); and `az version` when there is no real az
//! (hashicorp/go-azure-sdk runs `az version -o=json` and `az account show -o=json` first).
//! `--query` takes `a.b` and `[].a.b`, `-o` `json`, `tsv` and `none`.
//!
//! What it does not answer itself goes to the real `az`, the next one on `PATH` after the shim's
//! own directory, with argv, stdin, stdout, stderr and the exit code intact (on Unix the shim
//! `exec`s it): every other command, options and queries it does not know, `version`, and a
//! command tokentray cannot answer (no account, sign-in needed, an unknown subscription). With no
//! real `az` the shim fails as az does where that helps the callers: `ERROR: Please run 'az
//! login' to setup account.` and exit 1 when nothing is signed in (which makes the SDKs'
//! `DefaultAzureCredential` move on to its next credential), `az: command not found` and exit
//! 127 for a command it cannot run.
//!
//! `tokentray az-shim --install` links `DATA/bin/az` to tokentray ([`Paths::az_shim`];
//! `az.cmd` on Windows, which Python's credential looks for first); `tokentray env` then puts
//! that directory first on `PATH`. `--uninstall` removes the link.

use std::ffi::OsString;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::Value;
use zeroize::{Zeroize as _, Zeroizing};

use super::{AzShimArgs, Out, exit};
use crate::authority::Authority;
use crate::paths::Paths;
use crate::serve::TokenBody;
use crate::{Error, ErrorCode, Result};

mod account;

/// What `az account get-access-token` prints (its keys in az's sorted order).
#[derive(Serialize)]
pub(super) struct AzToken<'a> {
    #[serde(rename = "accessToken")]
    access_token: &'a str,
    #[serde(rename = "expiresOn")]
    expires_on_local: String,
    expires_on: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) subscription: Option<String>,
    tenant: &'a str,
    #[serde(rename = "tokenType")]
    token_type: &'a str,
}

impl<'a> AzToken<'a> {
    /// az's answer for `body`.
    pub(super) fn new(body: &'a TokenBody) -> Self {
        Self {
            access_token: body.access_token.expose(),
            expires_on_local: crate::clock::local_time(body.expires_on, "%Y-%m-%d %H:%M:%S%.6f"),
            expires_on: body.expires_on,
            subscription: None,
            tenant: &body.tenant,
            token_type: &body.token_type,
        }
    }
}

/// A command line the shim answers itself.
#[derive(Debug, PartialEq, Eq)]
struct Invocation {
    command: Command,
    /// `--subscription`/`-s` (and `--name`/`-n` for `show` and `set`): an id or a name.
    subscription: Option<String>,
    output: Output,
    query: Option<Query>,
}

/// The commands the shim answers.
#[derive(Debug, PartialEq, Eq)]
enum Command {
    /// `account get-access-token`.
    GetToken(GetToken),
    /// `account show`.
    Show,
    /// `account list` (`--all` includes subscriptions that are not enabled; `--refresh` lists
    /// them from ARM again).
    List { all: bool, refresh: bool },
    /// `account set`.
    Set,
    /// `version`, when no real az is behind the shim.
    Version,
}

/// `account get-access-token`'s own options.
#[derive(Debug, Default, PartialEq, Eq)]
struct GetToken {
    resource: Option<String>,
    scopes: Vec<String>,
    resource_type: Option<String>,
    tenant: Option<String>,
}

/// `-o`/`--output`.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum Output {
    #[default]
    Json,
    Tsv,
    None,
}

/// The `--query` expressions the shim evaluates: `a.b` (a field of the result) and `[].a.b`
/// (that field of each element of a list). Anything else goes to the real az.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Query {
    each: bool,
    path: Vec<String>,
}

impl Query {
    fn parse(text: &str) -> Option<Self> {
        let (each, rest) = match text.strip_prefix("[].") {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        let path: Vec<String> = rest.split('.').map(String::from).collect();
        path.iter()
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
            .then_some(Self { each, path })
    }

    /// The value the query selects (JMESPath's `null` where a field is missing).
    fn apply(&self, value: &Value) -> Value {
        let field = |v: &Value| {
            self.path
                .iter()
                .try_fold(v, |v, name| v.get(name))
                .cloned()
                .unwrap_or(Value::Null)
        };
        match (self.each, value) {
            (true, Value::Array(items)) => Value::Array(items.iter().map(field).collect()),
            (true, _) => Value::Null,
            (false, v) => field(v),
        }
    }
}

/// Reads `args` (after `az`) as a command the shim answers, or `None` for anything to hand to
/// the real az.
fn parse(args: &[String]) -> Option<Invocation> {
    let (command, rest) = match args {
        [version, rest @ ..] if version == "version" => (Command::Version, rest),
        [group, command, rest @ ..] if group == "account" => (
            match command.as_str() {
                "get-access-token" => Command::GetToken(GetToken::default()),
                "show" => Command::Show,
                "list" => Command::List {
                    all: false,
                    refresh: false,
                },
                "set" => Command::Set,
                _ => return None,
            },
            rest,
        ),
        _ => return None,
    };
    let mut invocation = Invocation {
        command,
        subscription: None,
        output: Output::Json,
        query: None,
    };
    let mut i = 0;
    while i < rest.len() {
        let (flag, inline) = match rest[i].split_once('=') {
            Some((flag, value)) if flag.starts_with('-') => (flag, Some(value.to_string())),
            _ => (rest[i].as_str(), None),
        };
        i += 1;
        match (&mut invocation.command, flag) {
            (_, "--only-show-errors") | (Command::List { .. }, "--all" | "--refresh")
                if inline.is_none() =>
            {
                if let Command::List { all, refresh } = &mut invocation.command {
                    *all |= flag == "--all";
                    *refresh |= flag == "--refresh";
                }
                continue;
            }
            _ => {}
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
        match (&mut invocation.command, flag) {
            (_, "--output" | "-o") => {
                invocation.output = match one()?.as_str() {
                    "json" | "jsonc" => Output::Json,
                    "tsv" => Output::Tsv,
                    "none" => Output::None,
                    _ => return None,
                }
            }
            (_, "--query") => invocation.query = Some(Query::parse(&one()?)?),
            (Command::GetToken(_) | Command::Show | Command::Set, "--subscription" | "-s")
            | (Command::Show | Command::Set, "--name" | "-n") => {
                invocation.subscription = Some(one()?);
            }
            (Command::GetToken(t), "--resource") => t.resource = Some(one()?),
            (Command::GetToken(t), "--resource-type") => t.resource_type = Some(one()?),
            (Command::GetToken(t), "--scope") if !values.is_empty() => t.scopes.extend(values),
            (Command::GetToken(t), "--tenant" | "-t") => t.tenant = Some(one()?),
            _ => return None,
        }
    }
    match &invocation.command {
        Command::GetToken(t) if t.tenant.is_some() && invocation.subscription.is_some() => None,
        Command::Set if invocation.subscription.is_none() => None,
        _ => Some(invocation),
    }
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

/// What az's `version` prints with no real az behind the shim: the Azure CLI release whose
/// output the shim reproduces (callers such as Terraform check it is at least 2.30 and below
/// 3.0), and tokentray's own version under its own key.
fn version() -> Value {
    serde_json::json!({
        "azure-cli": AZ_VERSION,
        "azure-cli-core": AZ_VERSION,
        "azure-cli-telemetry": "1.1.0",
        "extensions": {},
        "tokentray": env!("CARGO_PKG_VERSION"),
    })
}

/// The Azure CLI release the shim's output was read against.
const AZ_VERSION: &str = "2.91.0";

/// Runs the shim with `args` (what followed `az`); returns the exit code. Only returns on Unix
/// when the shim answered itself or could not start the real az.
pub fn run(args: Vec<OsString>) -> u8 {
    let text: Option<Vec<String>> = args.iter().map(|a| a.to_str().map(String::from)).collect();
    let Some(invocation) = text.as_deref().and_then(parse) else {
        return hand_over(&args, None);
    };
    if invocation.command == Command::Version && real_az().is_some() {
        return hand_over(&args, None);
    }
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
        tsv: false,
    };
    let answered = runtime.block_on(answer(&invocation, &mut out));
    match answered.and_then(|value| print(&invocation, value, &mut out)) {
        Ok(()) => exit::OK,
        Err(e) => hand_over(&args, Some(&e)),
    }
}

/// The result of `invocation` (`None`: the command prints nothing).
async fn answer(invocation: &Invocation, out: &mut Out<'_>) -> Result<Option<Value>> {
    let subscription = invocation.subscription.as_deref();
    let context = || super::subscriptions::Context::load();
    Ok(Some(match &invocation.command {
        Command::Version => version(),
        Command::GetToken(request) => {
            account::get_token(&context()?, request, subscription, out).await?
        }
        Command::Show => account::show(&context()?, subscription, out).await?,
        Command::List { all, refresh } => account::list(&context()?, *all, *refresh, out).await?,
        Command::Set => {
            account::set(&context()?, subscription.unwrap_or_default(), out).await?;
            return Ok(None);
        }
    }))
}

/// Prints `value` as `-o` and `--query` say, as az does.
fn print(invocation: &Invocation, value: Option<Value>, out: &mut Out<'_>) -> Result<()> {
    let Some(value) = value else {
        return Ok(());
    };
    let mut value = match &invocation.query {
        Some(query) => query.apply(&value),
        None => value,
    };
    let printed = match invocation.output {
        Output::None => Ok(()),
        // az prints nothing for a query that selects nothing.
        _ if value.is_null() => Ok(()),
        Output::Json => serde_json::to_string_pretty(&value)
            .map_err(|e| Error::io("write", "stdout", std::io::Error::other(e)))
            .and_then(|text| out.line(&*Zeroizing::new(text))),
        Output::Tsv => match &value {
            Value::Array(items) => items
                .iter()
                .try_for_each(|item| out.line(&*Zeroizing::new(tsv_row(item)))),
            other => out.line(&*Zeroizing::new(tsv_row(other))),
        },
    };
    scrub(&mut value);
    printed
}

/// Overwrites every string in `value` (it may hold an access token).
fn scrub(value: &mut Value) {
    match value {
        Value::String(s) => s.zeroize(),
        Value::Array(items) => items.iter_mut().for_each(scrub),
        Value::Object(fields) => fields.values_mut().for_each(scrub),
        _ => {}
    }
}

/// One line of az's `-o tsv`: a scalar as is (booleans as Python writes them), an object's
/// scalar fields in key order, tab-separated (nested objects and lists are left out, as az
/// does).
fn tsv_row(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::Null => String::new(),
        Value::Object(fields) => {
            let mut keys: Vec<&String> = fields.keys().collect();
            keys.sort();
            keys.iter()
                .filter(|k| !matches!(fields[k.as_str()], Value::Object(_) | Value::Array(_)))
                .map(|k| tsv_row(&fields[k.as_str()]))
                .collect::<Vec<_>>()
                .join("\t")
        }
        other => other.to_string(),
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
    crate::paths::find_program(names, |dir, real| {
        (shim_dir.is_none() || dir.canonicalize().ok() != shim_dir) && Some(real) != me.as_deref()
    })
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
pub(super) fn ours(shim: &Path) -> bool {
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
