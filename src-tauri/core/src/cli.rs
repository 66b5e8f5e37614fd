//! The `tokentray` subcommands. The binary parses [`Cli`]; a subcommand runs here with no
//! display and no GUI toolkit, no subcommand starts the tray app.
//!
//! Exit codes: 0 success; 1 failure; 2 bad usage or input; 3 sign-in needed (no account, no
//! token, key lost, refresh token revoked); 4 token store unavailable or locked; 5 Entra ID
//! unavailable (network, 5xx, 429) and no valid cached token. Warnings go to stderr first; the
//! JSON error, when there is one, is stderr's last line. With `--json`, errors are printed to
//! stderr as `{"code": ..., "message": ...}` with a stable `code`.

use std::io::Write;
use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};
use serde_json::json;

use crate::cache::TokenCache;
use crate::clock::system_clock;
use crate::config::Config;
use crate::env::{Shell, env_lines};
use crate::error::ErrorCode;
use crate::files::write_atomic;
use crate::instance::{Endpoint, native_token, shutdown_signal};
use crate::paths::Paths;
use crate::persist::PersistedCache;
use crate::serve::TokenBody;
use crate::tokens::{TokenRequest, Tokens, select_account};
use crate::{Error, Result};

/// tokentray: Microsoft Entra ID sign-in for developers, and tokens for their tools.
#[derive(Debug, Parser)]
#[command(name = "tokentray", version, about, long_about = None)]
pub struct Cli {
    /// Print results and errors as JSON (errors as {"code", "message"} on stderr).
    #[arg(long, global = true)]
    pub json: bool,
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
    /// Print the environment that points tools (Azure SDKs) at tokentray's endpoint:
    /// `eval "$(tokentray env)"`.
    Env {
        /// Shell syntax.
        #[arg(long, value_enum, default_value_t = Shell::Posix)]
        shell: Shell,
        /// Replace the endpoint secret first (tools configured with the old one stop working).
        #[arg(long)]
        rotate: bool,
    },
    /// Serve tokens on the loopback endpoint without a window (SSH, WSL, containers' hosts).
    Daemon,
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
    /// Scopes to consent to and cache (default: Azure Resource Manager).
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
    /// Scope to request, e.g. https://management.azure.com/.default (repeatable).
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
        /// Output file (created 0600); stdout if absent.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Move the cache file aside (kept, not deleted) and start a new, empty cache.
    Reset,
}

/// Runs a subcommand; returns the process exit code. Errors are printed (as JSON with `--json`).
pub fn run(command: Command, json: bool) -> u8 {
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
            return 1;
        }
    };
    let mut stdout = std::io::stdout().lock();
    match runtime.block_on(dispatch(command, json, &mut stdout)) {
        Ok(()) => 0,
        Err(e) => {
            let mut stderr = std::io::stderr().lock();
            let _ = if json_errors {
                writeln!(
                    stderr,
                    "{}",
                    json!({"code": e.code().as_str(), "message": e.to_string()})
                )
            } else {
                writeln!(stderr, "error: {e}")
            };
            exit_code(e.code())
        }
    }
}

/// The exit code for an error code (see the module doc).
pub fn exit_code(code: ErrorCode) -> u8 {
    match code {
        ErrorCode::InvalidInput
        | ErrorCode::Config
        | ErrorCode::AccountNotFound
        | ErrorCode::AmbiguousAccount => 2,
        ErrorCode::NoAccount
        | ErrorCode::NoCachedToken
        | ErrorCode::KeyLost
        | ErrorCode::InteractionRequired => 3,
        ErrorCode::AuthorityUnavailable => 5,
        ErrorCode::StoreUnavailable
        | ErrorCode::KeyStore
        | ErrorCode::BackendMismatch
        | ErrorCode::LockTimeout
        | ErrorCode::NotOwner => 4,
        _ => 1,
    }
}

/// Logs to stderr at `warn` (override with `TOKENTRAY_LOG`, e.g. `TOKENTRAY_LOG=debug`).
/// Nothing secret is ever logged.
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("TOKENTRAY_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .without_time()
        .try_init();
}

fn open() -> Result<(Config, PersistedCache)> {
    let paths = Paths::from_env()?;
    let config = Config::load(&paths.config_file())?;
    let store = config.open_store(&paths)?;
    Ok((config, store))
}

fn open_tokens() -> Result<Tokens> {
    Tokens::open(&Paths::from_env()?, system_clock())
}

async fn dispatch(command: Command, json: bool, out: &mut dyn Write) -> Result<()> {
    let write_err = |e: std::io::Error| Error::io("write", "stdout", e);
    match command {
        Command::Login(args) => {
            let tokens = open_tokens()?;
            let scopes = if args.scopes.is_empty() {
                vec![crate::flow::DEFAULT_LOGIN_SCOPE.to_string()]
            } else {
                args.scopes
            };
            let cancel = async {
                let _ = tokio::signal::ctrl_c().await;
            };
            let account = if args.device_code {
                let code = tokens
                    .start_device_code(args.tenant.as_deref(), &scopes)
                    .await?;
                if json {
                    let shown = json!({"user_code": code.user_code, "verification_uri": code.verification_uri,
                        "message": code.message, "expires_in": code.expires_in});
                    writeln!(out, "{shown}")
                        .and_then(|()| out.flush())
                        .map_err(write_err)?;
                }
                let mut stderr = std::io::stderr().lock();
                let _ = writeln!(stderr, "{}", code.message).and_then(|()| stderr.flush());
                drop(stderr);
                tokens.finish_device_code(&code, cancel).await?
            } else {
                let options = crate::flow::browser::Options {
                    tenant: args.tenant,
                    scopes,
                    login_hint: args.login_hint,
                    prompt: Some("select_account".into()),
                    claims: None,
                    timeout: std::time::Duration::from_secs(args.timeout),
                };
                tokens
                    .sign_in_browser(options, open_browser, cancel)
                    .await?
            };
            if json {
                writeln!(out, "{}", to_json(&account)).map_err(write_err)?;
            } else {
                writeln!(
                    out,
                    "Signed in as {}{} (tenant {}).",
                    account.username,
                    account
                        .name
                        .as_deref()
                        .map(|n| format!(" ({n})"))
                        .unwrap_or_default(),
                    account.home_tenant.as_deref().unwrap_or("-")
                )
                .map_err(write_err)?;
            }
        }
        Command::Switch { account } => {
            let chosen = open_tokens()?.switch(&account)?;
            writeln!(out, "Default account: {}.", chosen.username).map_err(write_err)?;
        }
        Command::Logout { account, all } => {
            let tokens = open_tokens()?;
            let query = if all {
                None
            } else {
                let accounts = tokens.accounts()?;
                Some(
                    select_account(&accounts, account.as_deref())?
                        .home_account_id
                        .clone(),
                )
            };
            for gone in tokens.sign_out(query.as_deref())? {
                writeln!(out, "Signed out {}.", gone.username).map_err(write_err)?;
            }
        }
        Command::Accounts => {
            let (_, store) = open()?;
            let accounts = store.read()?.accounts();
            if json {
                writeln!(out, "{}", to_json(&accounts)).map_err(write_err)?;
            } else if accounts.is_empty() {
                writeln!(out, "No accounts. Sign in with `tokentray login`, or import a cache with `tokentray cache import FILE`.")
                    .map_err(write_err)?;
            } else {
                for a in &accounts {
                    let state = match &a.needs_sign_in {
                        Some(reason) => format!("needs sign-in: {reason}"),
                        None => "signed in".into(),
                    };
                    writeln!(
                        out,
                        "{} {}\t{}\ttenant {}\t{}\t{state}",
                        if a.is_default { "*" } else { " " },
                        a.username,
                        a.name.as_deref().unwrap_or("-"),
                        a.home_tenant.as_deref().unwrap_or("-"),
                        a.environment,
                    )
                    .map_err(write_err)?;
                }
            }
        }
        Command::Token(args) => {
            let scopes = requested_scopes(&args)?;
            let request = TokenRequest {
                account: args.account.as_deref(),
                scopes: &scopes,
                tenant: args.tenant.as_deref(),
            };
            let paths = Paths::from_env()?;
            let body = match Endpoint::running(&paths) {
                Some(endpoint) => native_token(&endpoint, &request).await?,
                None => TokenBody::from(&open_tokens()?.get_token(&request).await?),
            };
            print_token(out, &body, args.format).map_err(write_err)?;
        }
        Command::Cache(CacheCommand::Import { file }) => {
            let (_, store) = open()?;
            let what = format!("cache import file {}", file.display());
            let bytes = zeroize::Zeroizing::new(std::fs::read(&file).map_err(|e| {
                Error::invalid(&what, format!("cannot read it ({e}); give the path of an MSAL JSON cache such as ~/.azure/msal_token_cache.json"))
            })?);
            let imported = TokenCache::from_json(&bytes, &what)?;
            let accounts = imported.accounts().len();
            let taken = store.modify(crate::clock::now(), |cache| Ok(cache.merge(imported)))?;
            writeln!(
                out,
                "Imported {taken} entries ({accounts} accounts) from {}.",
                file.display()
            )
            .map_err(write_err)?;
        }
        Command::Cache(CacheCommand::Export { out: target }) => {
            let (_, store) = open()?;
            let exported = store.read()?.to_msal_json();
            let mut stderr = std::io::stderr().lock();
            let _ = writeln!(
                stderr,
                "warning: the exported cache holds your tokens in clear text; anyone who reads it can use your accounts. Delete it when done."
            );
            match target {
                Some(path) => write_atomic(&path, &exported)?,
                None => out.write_all(&exported).map_err(write_err)?,
            }
        }
        Command::Cache(CacheCommand::Reset) => {
            let (_, store) = open()?;
            match store.reset()? {
                Some(kept) => writeln!(
                    out,
                    "The old cache was moved to {}; a new cache starts with the next sign-in.",
                    kept.display()
                ),
                None => writeln!(out, "There was no cache to reset."),
            }
            .map_err(write_err)?;
        }
        Command::Env { shell, rotate } => {
            let paths = Paths::from_env()?;
            let tokens = open_tokens()?;
            let secret = if rotate {
                crate::instance::rotate_secret(&paths, &tokens)?
            } else {
                tokens.endpoint_secret()?
            };
            let url = crate::instance::endpoint_url(&paths, tokens.config().port);
            out.write_all(env_lines(&url, secret.expose(), shell).as_bytes())
                .map_err(write_err)?;
        }
        Command::Daemon => {
            let paths = Paths::from_env()?;
            let tokens = std::sync::Arc::new(open_tokens()?);
            crate::instance::run(&paths, tokens, shutdown_signal(), |_| {}).await?;
        }
        Command::Status => {
            let (config, store) = open()?;
            let status = store.status()?;
            if json {
                let v = json!({
                    "store": status,
                    "authority": config.authority,
                    "tenant": config.tenant,
                    "client_id": config.client_id,
                    "config_file": config.path,
                });
                writeln!(out, "{}", to_json(&v)).map_err(write_err)?;
            } else {
                writeln!(
                    out,
                    "Token store: {} ({})",
                    status.backend.as_str(),
                    status.persistence
                )
                .map_err(write_err)?;
                writeln!(out, "Cache file:  {}", status.location.display()).map_err(write_err)?;
                let c = status.counts;
                writeln!(
                    out,
                    "Cache:       {} accounts, {} access tokens, {} refresh tokens",
                    c.accounts, c.access_tokens, c.refresh_tokens
                )
                .map_err(write_err)?;
                for kept in &status.moved_aside {
                    writeln!(out, "Kept aside:  {}", kept.display()).map_err(write_err)?;
                }
                writeln!(
                    out,
                    "Authority:   {} (tenant {})",
                    config.authority, config.tenant
                )
                .map_err(write_err)?;
                writeln!(out, "Client id:   {}", config.client_id).map_err(write_err)?;
                writeln!(out, "Config file: {}", config.path.display()).map_err(write_err)?;
            }
        }
    }
    Ok(())
}

fn to_json(v: &impl serde::Serialize) -> String {
    serde_json::to_string_pretty(v).unwrap_or_default()
}

fn requested_scopes(args: &TokenArgs) -> Result<Vec<String>> {
    let mut scopes: Vec<String> = args
        .scopes
        .iter()
        .flat_map(|s| crate::flow::parse_scopes(s))
        .collect();
    if let Some(resource) = &args.resource {
        scopes.push(format!("{resource}/.default"));
    }
    if scopes.is_empty() {
        return Err(Error::invalid(
            "tokentray token",
            "say which token: --scope https://management.azure.com/.default (or --resource https://management.azure.com/)",
        ));
    }
    Ok(scopes)
}

/// Opens the system browser (honouring `$BROWSER`); always shows the URL too, in case no
/// browser opens.
fn open_browser(url: &url::Url) -> Result<()> {
    let mut stderr = std::io::stderr().lock();
    let _ = writeln!(
        stderr,
        "Opening your browser to sign in. If it does not open, go to:\n{url}"
    );
    if let Err(e) = webbrowser::open(url.as_str()) {
        let _ = writeln!(stderr, "(could not start a browser: {e})");
    }
    Ok(())
}

/// Prints a token as `format` asks; `az` is exactly what `az account get-access-token` prints.
fn print_token(out: &mut dyn Write, body: &TokenBody, format: Format) -> std::io::Result<()> {
    match format {
        Format::Raw => writeln!(out, "{}", body.access_token.expose()),
        Format::Json => writeln!(out, "{}", to_json(body)),
        Format::Az => {
            let expires_local = chrono::DateTime::from_timestamp(body.expires_on, 0)
                .map(|t| {
                    t.with_timezone(&chrono::Local)
                        .format("%Y-%m-%d %H:%M:%S%.6f")
                        .to_string()
                })
                .unwrap_or_default();
            let mut map = serde_json::Map::new();
            map.insert("accessToken".into(), body.access_token.expose().into());
            map.insert("expiresOn".into(), expires_local.into());
            map.insert("expires_on".into(), body.expires_on.into());
            map.insert("tenant".into(), body.tenant.clone().into());
            map.insert("tokenType".into(), body.token_type.clone().into());
            writeln!(out, "{}", to_json(&map))
        }
    }
}
