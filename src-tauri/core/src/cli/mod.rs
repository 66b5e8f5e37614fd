//! The `tokentray` subcommands. The binary parses [`Cli`]; a subcommand runs here with no
//! display and no GUI toolkit, no subcommand starts the tray app.
//!
//! Without a subcommand, `tokentray` starts the tray app, `tokentray-app`, installed next to it
//! (`app`); with no display it says what to use instead and exits 2.
//!
//! Exit codes ([`exit`]): 0 success; 1 failure; 2 bad usage or input (or no display for the
//! app); 3 sign-in needed (no
//! account, no token, key lost, refresh token revoked); 4 token store unavailable or locked, or a
//! file tokentray trusts owned by another user or writable by others; 5
//! Entra ID unavailable (network, 5xx, 429) and no valid cached token; 6 the program is not
//! approved to get tokens, or denied (`require_approval`); 141, silently, when stdout's reader
//! went away (`tokentray accounts | head`). Warnings go to stderr
//! first; the JSON error, when there is one, is stderr's last line. With `--json`, errors are
//! printed to stderr as `{"code": ..., "message": ...}` with a stable `code`.
//!
//! One function per subcommand, in the module of its area: [`login`](login), `accounts`
//! (`accounts`, `switch`, `logout`), `token`, `cache` (`cache import | export | reset`),
//! `status`, `activity`, `subscriptions`, `instance` (`env`, `daemon`), `clients` (`clients [allow | deny | revoke]`); the
//! helpers other tools run: `kube` (`kube-token`, kubectl's exec plugin), `kubeconfig`
//! (`kubeconfig convert`), `git`
//! (`git-credential`, git's credential helper), `az` (the `az` shim and `az-shim`), `docker`
//! (`docker-credential-tokentray`, docker's credential helper).

mod accounts;
mod activity;
mod app;
mod az;
mod cache;
mod clients;
mod docker;
mod doctor;
mod git;
mod instance;
mod kube;
mod kubeconfig;
mod login;
mod status;
mod subscriptions;
mod token;

use std::io::Write;
use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};
use serde_json::json;

use crate::clock::system_clock;
use crate::config::Config;
use crate::env::{Shell, Tools};
use crate::error::ErrorCode;
use crate::paths::Paths;
use crate::persist::PersistedCache;
use crate::tokens::Tokens;
use crate::{Error, Result};

/// tokentray: Microsoft Entra ID sign-in for developers, and tokens for their tools.
#[derive(Debug, Parser)]
#[command(name = "tokentray", version, about, long_about = None)]
pub struct Cli {
    /// Print results and errors as JSON (errors as {"code", "message"} on stderr); the same as
    /// `--output json`.
    #[arg(long, global = true)]
    pub json: bool,
    /// How lists and results are printed: `table` (for people: aligned, with a header), `tsv`
    /// (tab-separated, no header, for scripts) or `json`.
    #[arg(long, short = 'o', global = true, value_enum, default_value_t = Output::Table)]
    pub output: Output,
    /// What to do; without one, the tray app starts.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Sign in with the system browser (or a device code) and add the account.
    Login(LoginArgs),
    /// Make ACCOUNT the default account.
    Switch {
        /// Username, home account id or object id.
        account: String,
    },
    /// Sign out ACCOUNT (or every account): its tokens leave the cache.
    Logout {
        /// Username, home account id or object id; the default account if omitted.
        account: Option<String>,
        /// Sign out every account.
        #[arg(long, conflicts_with = "account")]
        all: bool,
    },
    /// List the signed-in accounts.
    Accounts,
    /// Print an access token from the cache.
    Token(TokenArgs),
    /// Import, export or reset the token cache.
    #[command(subcommand)]
    Cache(CacheCommand),
    /// Show the token store, the cache and the configuration.
    Status,
    /// List the Azure subscriptions each signed-in account can use (from Azure Resource
    /// Manager, kept for an hour), the default marked `*`.
    Subscriptions {
        /// List them from Azure Resource Manager again, now.
        #[arg(long)]
        refresh: bool,
    },
    /// List the tokens the running app or daemon served lately: when, to which program, for
    /// which account and scopes, by which route (nothing secret).
    Activity {
        /// Only the lines whose program, account, scopes or route contain TEXT (any case).
        #[arg(long, value_name = "TEXT")]
        filter: Option<String>,
    },
    /// Print the environment that points tools (Azure SDKs) at tokentray's endpoint:
    /// `eval "$(tokentray env)"`.
    Env {
        /// Shell syntax.
        #[arg(long, value_enum, default_value_t = Shell::native())]
        shell: Shell,
        /// Replace the endpoint secret first (tools configured with the old one stop working).
        #[arg(long)]
        rotate: bool,
        /// Whose variables: `sdk` (IDENTITY_ENDPOINT, IDENTITY_HEADER: every Azure SDK's managed
        /// identity credential), `azd` (AZD_AUTH_ENDPOINT, AZD_AUTH_KEY: the Azure Developer
        /// CLI's external authentication) or `terraform` (ARM_USE_MSI, ARM_MSI_ENDPOINT,
        /// ARM_TENANT_ID: the azurerm, azuread and azapi providers).
        #[arg(long = "for", value_enum, default_value_t = Tools::Sdk)]
        tools: Tools,
        /// Set the SDKs' variables for every program you start from now on, without a shell
        /// (Linux: ~/.config/environment.d and the running systemd user session; macOS:
        /// launchctl and a LaunchAgent; Windows: HKCU\Environment). Linux requires
        /// tokentray.socket, so tools never meet a closed port.
        #[arg(long, conflicts_with_all = ["uninstall", "rotate", "tools"])]
        install: bool,
        /// Remove exactly what --install set.
        #[arg(long, conflicts_with_all = ["install", "rotate", "tools"])]
        uninstall: bool,
    },
    /// Explain which credential each SDK's DefaultAzureCredential will pick here and why,
    /// whether the endpoint answers, the session environment, and what az, azd, terraform,
    /// kubectl and git would use; each problem with its fix.
    Doctor,
    /// Serve tokens on the loopback endpoint without a window (SSH, WSL, containers' hosts).
    Daemon,
    /// List the programs allowed or denied tokens (`require_approval = true`), or allow, deny
    /// or forget one.
    Clients {
        /// What to do; without one, list them.
        #[command(subcommand)]
        action: Option<ClientsCommand>,
    },
    /// kubectl's exec credential plugin for AKS: prints an ExecCredential with the cluster's
    /// token (the kubeconfig's users[].user.exec runs it).
    KubeToken(KubeTokenArgs),
    /// Rewrite a kubeconfig's AKS users (kubelogin, auth-provider azure) to use `kube-token`.
    #[command(subcommand)]
    Kubeconfig(KubeconfigCommand),
    /// git's credential helper for Azure Repos (git runs it); `--install` makes git use it.
    GitCredential(GitCredentialArgs),
    /// Whether the `az` shim is installed; `--install` puts an `az` first on PATH that answers
    /// `az account get-access-token` from tokentray and hands the rest to the real Azure CLI.
    AzShim(AzShimArgs),
}

/// `tokentray az-shim`.
#[derive(Debug, clap::Args)]
pub struct AzShimArgs {
    /// Install the shim (`tokentray env` then puts it first on PATH).
    #[arg(long, conflicts_with = "uninstall")]
    pub install: bool,
    /// Remove the shim.
    #[arg(long)]
    pub uninstall: bool,
}

/// The arguments of the `az` shim when this process runs as it: started by the name `az` (the
/// link `az-shim --install` makes) or as `tokentray az ARGS` (what the Windows `az.cmd` runs).
pub fn az_shim_args(argv: &[std::ffi::OsString]) -> Option<&[std::ffi::OsString]> {
    let name = std::path::Path::new(argv.first()?).file_stem()?;
    if name == "az" {
        return argv.get(1..);
    }
    (argv.get(1)? == "az").then(|| argv.get(2..)).flatten()
}

/// The arguments of docker's credential helper when this process runs as it (started by the
/// name `docker-credential-tokentray`).
pub fn docker_helper_args(argv: &[std::ffi::OsString]) -> Option<&[std::ffi::OsString]> {
    let name = std::path::Path::new(argv.first()?).file_stem()?;
    (name == docker::HELPER_NAME)
        .then(|| argv.get(1..))
        .flatten()
}

/// Runs docker's credential helper with the arguments [`docker_helper_args`] found; returns
/// the exit code.
pub fn run_docker_helper(args: &[std::ffi::OsString]) -> u8 {
    docker::run(args)
}

/// Runs the `az` shim with the arguments [`az_shim_args`] found; returns the exit code (on Unix
/// it returns only when it answered itself: otherwise the real az replaces the process).
pub fn run_az_shim(args: &[std::ffi::OsString]) -> u8 {
    az::run(args.to_vec())
}

/// `tokentray kube-token`.
#[derive(Debug, clap::Args)]
pub struct KubeTokenArgs {
    /// The cluster's Entra server application (kubelogin's --server-id).
    #[arg(long, default_value = kube::AKS_SERVER_ID)]
    pub server_id: String,
    /// Tenant id or domain of the cluster (default: the account's, or the configured one).
    #[arg(long, short = 't')]
    pub tenant: Option<String>,
    /// Account: username, home account id or object id (default: the default account).
    #[arg(long, short = 'a')]
    pub account: Option<String>,
}

/// `tokentray kubeconfig ...`.
#[derive(Debug, Subcommand)]
pub enum KubeconfigCommand {
    /// Make the AKS users that use kubelogin (or the removed azure auth-provider) run
    /// `tokentray kube-token`; the original is kept beside the file.
    Convert(KubeconfigConvertArgs),
}

/// `tokentray kubeconfig convert`.
#[derive(Debug, clap::Args)]
pub struct KubeconfigConvertArgs {
    /// The kubeconfig (default: the first KUBECONFIG entry, else ~/.kube/config).
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,
    /// Convert only this context's user.
    #[arg(long)]
    pub context: Option<String>,
}

/// `tokentray git-credential`.
#[derive(Debug, clap::Args)]
pub struct GitCredentialArgs {
    /// What git asks: get, store or erase (others are ignored, as git expects).
    #[arg(conflicts_with_all = ["install", "uninstall"])]
    pub action: Option<String>,
    /// Add tokentray as the credential helper of the `[git] hosts` (Azure Repos) in
    /// `git config --global`.
    #[arg(long, conflicts_with = "uninstall")]
    pub install: bool,
    /// Remove what --install added.
    #[arg(long)]
    pub uninstall: bool,
}

/// `tokentray clients ...`.
#[derive(Debug, Subcommand)]
pub enum ClientsCommand {
    /// Always allow the executable PROGRAM (as it is now: its real path and content).
    Allow {
        /// The executable, e.g. /usr/bin/python3 (symlinks are followed).
        program: PathBuf,
    },
    /// Always deny the executable PROGRAM.
    Deny {
        /// The executable.
        program: PathBuf,
    },
    /// Forget the decision about PROGRAM: it is asked about again.
    Revoke {
        /// The executable, as `tokentray clients` lists it.
        program: String,
    },
}

/// `tokentray login`.
#[derive(Debug, clap::Args)]
pub struct LoginArgs {
    /// Use the device code flow (for SSH sessions and machines without a browser).
    #[arg(long)]
    pub device_code: bool,
    /// Tenant id or domain (default: the configured tenant).
    #[arg(long, short = 't')]
    pub tenant: Option<String>,
    /// Scopes to consent to and cache (default: what a failed request is waiting for, with
    /// Entra's claims challenge, if one is; else Azure Resource Manager).
    #[arg(long = "scope", short = 's')]
    pub scopes: Vec<String>,
    /// Suggested username for the sign-in page.
    #[arg(long)]
    pub login_hint: Option<String>,
    /// Seconds to wait for the browser.
    #[arg(long, default_value_t = crate::flow::browser::DEFAULT_TIMEOUT.as_secs())]
    pub timeout: u64,
}

/// `tokentray token`.
#[derive(Debug, clap::Args)]
pub struct TokenArgs {
    /// Scope to request, e.g. https://vault.azure.net/.default (repeatable; default: Azure
    /// Resource Manager, as az).
    #[arg(long = "scope", short = 's')]
    pub scopes: Vec<String>,
    /// Resource, as `az --resource` takes it; means the scope RESOURCE/.default.
    #[arg(long)]
    pub resource: Option<String>,
    /// Account: username, home account id or object id (default: the default account).
    #[arg(long, short = 'a')]
    pub account: Option<String>,
    /// Tenant id or domain the token must be for.
    #[arg(long, short = 't')]
    pub tenant: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Json)]
    pub format: Format,
}

/// How results are printed (`--output`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    /// For people: aligned columns under a header.
    Table,
    /// Tab-separated, no header.
    Tsv,
    /// JSON (errors too, as `{"code", "message"}` on stderr).
    Json,
}

/// Output formats of `tokentray token`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// tokentray's JSON.
    Json,
    /// Exactly what `az account get-access-token` prints.
    Az,
    /// The token alone.
    Raw,
}

/// `tokentray cache ...`.
#[derive(Debug, Subcommand)]
pub enum CacheCommand {
    /// Merge an MSAL JSON cache (e.g. Azure CLI's ~/.azure/msal_token_cache.json) into tokentray's.
    Import {
        /// The MSAL JSON cache file.
        file: PathBuf,
    },
    /// Write the cache as MSAL JSON (tokens in clear text!) to a file or stdout.
    Export {
        /// Output file, created 0600 (an existing file is refused without --force); stdout if
        /// absent.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Replace the --out file if it exists.
        #[arg(long, requires = "out")]
        force: bool,
    },
    /// Move the cache file aside (kept, not deleted) and start a new, empty cache.
    Reset,
}

/// Exit codes of the `tokentray` process.
pub mod exit {
    /// Success.
    pub const OK: u8 = 0;
    /// Any other failure.
    pub const FAILURE: u8 = 1;
    /// Bad usage or input (arguments, files, configuration, account names).
    pub const USAGE: u8 = 2;
    /// Sign-in needed: no account, no token, key lost, refresh token revoked.
    pub const SIGN_IN: u8 = 3;
    /// The token store is unavailable or locked, or a file tokentray trusts is not safely the
    /// user's (owned by another user, or writable by others).
    pub const STORE: u8 = 4;
    /// Entra ID is unavailable and no valid token is cached.
    pub const UNAVAILABLE: u8 = 5;
    /// The program is not approved to get tokens, or was denied (`require_approval`).
    pub const NOT_APPROVED: u8 = 6;
    /// stdout was closed by its reader (`tokentray accounts | head`): nothing is printed, as a
    /// shell reports a process SIGPIPE ended.
    pub const BROKEN_PIPE: u8 = 141;
}

/// Runs a subcommand; returns the process exit code. Errors are printed (as JSON with `--json`
/// or `--output json`).
pub fn run(command: Option<Command>, output: Output) -> u8 {
    let json = output == Output::Json;
    let Some(command) = command else {
        return match app::start() {
            Ok(()) => exit::OK,
            Err(e) => {
                report(&e, json);
                exit_code(e.code())
            }
        };
    };
    let json_errors = json || matches!(&command, Command::Token(t) if t.format == Format::Json);
    let runtime = if matches!(command, Command::Daemon) {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    };
    let runtime = match runtime {
        Ok(rt) => rt,
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "error: cannot start: {e}");
            return exit::FAILURE;
        }
    };
    let mut out = Out {
        stdout: &mut std::io::stdout().lock(),
        stderr: &mut std::io::stderr(),
        json,
        tsv: output == Output::Tsv,
    };
    match runtime.block_on(dispatch(command, &mut out)) {
        Ok(()) => exit::OK,
        // `tokentray accounts | head`: the reader is gone; there is no one to tell.
        Err(Error::Io {
            op: "write",
            source,
            ..
        }) if source.kind() == std::io::ErrorKind::BrokenPipe => exit::BROKEN_PIPE,
        Err(e) => {
            report(&e, json_errors);
            exit_code(e.code())
        }
    }
}

/// Prints `e` on stderr: `error: ...`, or `{"code", "message"}` for `json`.
fn report(e: &Error, json: bool) {
    let mut stderr = std::io::stderr().lock();
    let _ = if json {
        writeln!(
            stderr,
            "{}",
            json!({"code": e.code().as_str(), "message": e.to_string()})
        )
    } else {
        writeln!(stderr, "error: {e}")
    };
}

async fn dispatch(command: Command, out: &mut Out<'_>) -> Result<()> {
    match command {
        Command::Login(args) => login::login(args, out).await,
        Command::Switch { account } => accounts::switch(&account, out),
        Command::Logout { account, all } => accounts::logout(account.as_deref(), all, out),
        Command::Accounts => accounts::accounts(out).await,
        Command::Token(args) => token::token(&args, out).await,
        Command::Cache(CacheCommand::Import { file }) => cache::import(&file, out),
        Command::Cache(CacheCommand::Export { out: target, force }) => {
            cache::export(target.as_deref(), force, out)
        }
        Command::Cache(CacheCommand::Reset) => cache::reset(out),
        Command::Status => status::status(out).await,
        Command::Subscriptions { refresh } => subscriptions::subscriptions(refresh, out).await,
        Command::Activity { filter } => activity::activity(filter.as_deref(), out).await,
        Command::Env { install: true, .. } => instance::install_env(out),
        Command::Env {
            uninstall: true, ..
        } => instance::uninstall_env(out),
        Command::Env {
            shell,
            rotate,
            tools,
            ..
        } => instance::env(shell, rotate, tools, out),
        Command::Daemon => instance::daemon().await,
        Command::Doctor => doctor::doctor(out),
        Command::Clients { action } => clients::clients(action, out),
        Command::KubeToken(args) => kube::kube_token(&args, out).await,
        Command::Kubeconfig(KubeconfigCommand::Convert(args)) => kubeconfig::convert(&args, out),
        Command::GitCredential(args) => git::git_credential(&args, out).await,
        Command::AzShim(args) => az::az_shim(&args, out),
    }
}

/// The exit code for an error code (see the module doc).
pub fn exit_code(code: ErrorCode) -> u8 {
    match code {
        ErrorCode::InvalidInput
        | ErrorCode::Config
        | ErrorCode::FileExists
        | ErrorCode::AccountNotFound
        | ErrorCode::AmbiguousAccount
        | ErrorCode::NoDisplay
        | ErrorCode::PortNotHeld => exit::USAGE,
        ErrorCode::NoAccount
        | ErrorCode::NoCachedToken
        | ErrorCode::KeyLost
        | ErrorCode::InteractionRequired
        | ErrorCode::ConsentRequired => exit::SIGN_IN,
        ErrorCode::NotInTenant | ErrorCode::UnknownTenant => exit::USAGE,
        ErrorCode::ClientNotApproved | ErrorCode::ClientDenied => exit::NOT_APPROVED,
        ErrorCode::AuthorityUnavailable => exit::UNAVAILABLE,
        ErrorCode::StoreUnavailable
        | ErrorCode::KeyStore
        | ErrorCode::BackendMismatch
        | ErrorCode::KeyNotFound
        | ErrorCode::LockTimeout
        | ErrorCode::NotOwner
        | ErrorCode::WritableByOthers => exit::STORE,
        _ => exit::FAILURE,
    }
}

/// Logs to stderr at `warn` (override with `TOKENTRAY_LOG`, e.g. `TOKENTRAY_LOG=debug`), each
/// line with its UTC time (RFC 3339) when `timestamps`: the app and the daemon, which run for
/// days and write the audit; a command's few lines go without. Nothing secret is ever logged.
pub fn init_logging(timestamps: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("TOKENTRAY_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false);
    let _ = if timestamps {
        builder.try_init()
    } else {
        builder.without_time().try_init()
    };
}

/// Where a subcommand writes: results to stdout (JSON with `--json`), messages for people to
/// stderr.
struct Out<'a> {
    stdout: &'a mut dyn Write,
    stderr: &'a mut dyn Write,
    json: bool,
    /// Lists tab-separated without a header (`--output tsv`).
    tsv: bool,
}

impl Out<'_> {
    /// A list's rows: under `header`, each column as wide as its widest cell, two spaces
    /// apart; with `--output tsv`, tab-separated with no header (tabs and line breaks in a cell
    /// become spaces, so a row stays one line of N fields).
    fn table<const N: usize>(&mut self, header: [&str; N], rows: &[[String; N]]) -> Result<()> {
        if self.tsv {
            for row in rows {
                let cells: Vec<String> = row
                    .iter()
                    .map(|c| c.replace(['\t', '\n', '\r'], " "))
                    .collect();
                self.line(cells.join("\t"))?;
            }
            return Ok(());
        }
        let mut widths = header.map(|h| h.chars().count());
        for row in rows {
            for (width, cell) in widths.iter_mut().zip(row) {
                *width = (*width).max(cell.chars().count());
            }
        }
        let header = header.map(String::from);
        for row in std::iter::once(&header).chain(rows) {
            let mut line = String::new();
            for (i, (cell, width)) in row.iter().zip(widths).enumerate() {
                if i + 1 == N {
                    line.push_str(cell);
                } else {
                    line.push_str(&format!("{cell:width$}  "));
                }
            }
            self.line(line.trim_end())?;
        }
        Ok(())
    }

    /// A line of the result.
    fn line(&mut self, text: impl std::fmt::Display) -> Result<()> {
        writeln!(self.stdout, "{text}").map_err(stdout_failed)
    }

    /// `value` as indented JSON, on one result line.
    fn json(&mut self, value: &impl serde::Serialize) -> Result<()> {
        let text = serde_json::to_string_pretty(value)
            .map_err(|e| Error::io("write", "stdout", std::io::Error::other(e)))?;
        self.line(text)
    }

    /// Raw bytes of the result.
    fn bytes(&mut self, bytes: &[u8]) -> Result<()> {
        self.stdout.write_all(bytes).map_err(stdout_failed)
    }

    /// Flushes the result so far (before waiting on the user).
    fn flush(&mut self) -> Result<()> {
        self.stdout.flush().map_err(stdout_failed)
    }

    /// A message for the person at the terminal (never part of the result); best effort.
    fn tell(&mut self, text: impl std::fmt::Display) {
        let _ = writeln!(self.stderr, "{text}").and_then(|()| self.stderr.flush());
    }
}

fn stdout_failed(e: std::io::Error) -> Error {
    Error::io("write", "stdout", e)
}

/// The configuration and the token store.
fn open() -> Result<(Config, PersistedCache)> {
    let paths = Paths::from_env()?;
    let config = Config::load(&paths.config_file())?;
    let store = config.open_store(&paths)?;
    Ok((config, store))
}

/// tokentray as configured, with the system clock.
fn open_tokens() -> Result<Tokens> {
    Tokens::open(&Paths::from_env()?, system_clock())
}
