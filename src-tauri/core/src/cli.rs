//! The `tokentray` subcommands. The binary parses [`Cli`]; a subcommand runs here with no
//! display and no GUI toolkit, no subcommand starts the tray app.
//!
//! Exit codes: 0 success; 1 failure; 2 bad usage or input; 3 sign-in needed (no account, no
//! token, key lost); 4 token store unavailable or locked. With `--json`, errors are printed to
//! stderr as `{"code": ..., "message": ...}` with a stable `code`.

use std::io::Write;
use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use clap::{Parser, Subcommand, ValueEnum};
use serde_json::json;

use crate::cache::{AccountInfo, AtQuery, FoundToken, TokenCache};
use crate::config::Config;
use crate::error::ErrorCode;
use crate::paths::Paths;
use crate::persist::{Store, write_atomic};
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
    /// List the signed-in accounts.
    Accounts,
    /// Print an access token from the cache.
    Token(TokenArgs),
    /// Import, export or reset the token cache.
    #[command(subcommand)]
    Cache(CacheCommand),
    /// Show the token store, the cache and the configuration.
    Status,
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
    /// Account: username, home account id or object id (default: the only account).
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
    let mut stdout = std::io::stdout().lock();
    match dispatch(command, json, &mut stdout) {
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
        ErrorCode::NoAccount | ErrorCode::NoCachedToken | ErrorCode::KeyLost => 3,
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
        .with_target(false)
        .without_time()
        .try_init();
}

/// Seconds since the Unix epoch: the one place the CLI reads the clock.
pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

fn open() -> Result<(Config, Store)> {
    let paths = Paths::from_env()?;
    let config = Config::load(&paths.config_file())?;
    let store = Store::open(&paths, &config)?;
    Ok((config, store))
}

fn dispatch(command: Command, json: bool, out: &mut dyn Write) -> Result<()> {
    let write_err = |e: std::io::Error| Error::io("write", "stdout", e);
    match command {
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
                    writeln!(
                        out,
                        "{}\t{}\ttenant {}\t{}\t{}",
                        a.username,
                        a.name.as_deref().unwrap_or("-"),
                        a.home_tenant.as_deref().unwrap_or("-"),
                        a.environment,
                        a.home_account_id
                    )
                    .map_err(write_err)?;
                }
            }
        }
        Command::Token(args) => {
            let (config, store) = open()?;
            let now = now();
            let cache = store.read()?;
            let scopes = requested_scopes(&args)?;
            let accounts = cache.accounts();
            let account = select_account(&accounts, args.account.as_deref())?;
            let found = find_token(
                &cache,
                &config,
                account,
                &scopes,
                args.tenant.as_deref(),
                now,
            )
            .ok_or_else(|| Error::NoCachedToken {
                scopes: scopes.join(" "),
                account: account.username.clone(),
            })?;
            print_token(out, &found, account, args.format).map_err(write_err)?;
        }
        Command::Cache(CacheCommand::Import { file }) => {
            let (_, store) = open()?;
            let what = format!("cache import file {}", file.display());
            let bytes = zeroize::Zeroizing::new(std::fs::read(&file).map_err(|e| {
                Error::invalid(&what, format!("cannot read it ({e}); give the path of an MSAL JSON cache such as ~/.azure/msal_token_cache.json"))
            })?);
            let imported = TokenCache::from_json(&bytes, &what)?;
            let accounts = imported.accounts().len();
            let taken = store.modify(now(), |cache| Ok(cache.merge(imported)))?;
            writeln!(
                out,
                "Imported {taken} entries ({accounts} accounts) from {}.",
                file.display()
            )
            .map_err(write_err)?;
        }
        Command::Cache(CacheCommand::Export { out: target }) => {
            let (_, store) = open()?;
            let exported = store.read()?.to_json(true);
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
        .flat_map(|s| s.split_whitespace())
        .map(str::to_string)
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

/// Picks the account `query` names (username, case-insensitive; home account id; object id),
/// or the only one.
///
/// # Errors
/// [`Error::NoAccount`], [`Error::AccountNotFound`], [`Error::AmbiguousAccount`].
pub fn select_account<'a>(
    accounts: &'a [AccountInfo],
    query: Option<&str>,
) -> Result<&'a AccountInfo> {
    match (accounts, query) {
        ([], _) => Err(Error::NoAccount),
        (_, Some(q)) => accounts
            .iter()
            .find(|a| {
                a.username.eq_ignore_ascii_case(q)
                    || a.home_account_id == q
                    || a.local_account_id.as_deref() == Some(q)
            })
            .ok_or_else(|| Error::AccountNotFound {
                query: q.into(),
                known: accounts.iter().map(|a| a.username.clone()).collect(),
            }),
        ([only], None) => Ok(only),
        (_, None) => Err(Error::AmbiguousAccount {
            candidates: accounts.iter().map(|a| a.username.clone()).collect(),
        }),
    }
}

/// The access token for `account` and `scopes`. With a tenant, only that realm; without, the
/// configured tenant first, then the home tenant, then any realm.
pub fn find_token<'c>(
    cache: &'c TokenCache,
    config: &Config,
    account: &AccountInfo,
    scopes: &[String],
    tenant: Option<&str>,
    now: i64,
) -> Option<FoundToken<'c>> {
    let query = |realm| AtQuery {
        home_account_id: &account.home_account_id,
        environment: &account.environment,
        client_id: &config.client_id,
        realm,
        scopes,
    };
    match tenant {
        Some(t) => cache.find_access_token(&query(Some(t)), now),
        None => [
            Some(config.tenant.as_str()),
            account.home_tenant.as_deref(),
            None,
        ]
        .into_iter()
        .find_map(|realm| cache.find_access_token(&query(realm), now)),
    }
}

fn print_token(
    out: &mut dyn Write,
    found: &FoundToken<'_>,
    account: &AccountInfo,
    format: Format,
) -> std::io::Result<()> {
    let Some(secret) = found.entry.secret.as_ref() else {
        return Ok(());
    };
    let realm = found.entry.realm.as_deref().unwrap_or_default();
    let tenant = if matches!(realm, "organizations" | "common" | "consumers" | "") {
        account
            .home_tenant
            .clone()
            .unwrap_or_else(|| realm.to_string())
    } else {
        realm.to_string()
    };
    let token_type = found.entry.token_type.as_deref().unwrap_or("Bearer");
    match format {
        Format::Raw => writeln!(out, "{}", secret.expose()),
        Format::Json => writeln!(
            out,
            "{}",
            to_json(&json!({
                "access_token": secret.expose(),
                "token_type": token_type,
                "expires_on": found.expires_on,
                "scope": found.entry.target,
                "account": account.username,
                "tenant": tenant,
            }))
        ),
        Format::Az => {
            let expires_local = chrono::DateTime::from_timestamp(found.expires_on, 0)
                .map(|t| {
                    t.with_timezone(&chrono::Local)
                        .format("%Y-%m-%d %H:%M:%S%.6f")
                        .to_string()
                })
                .unwrap_or_default();
            // Field order and 2-space indent as `az account get-access-token` prints them.
            let mut map = serde_json::Map::new();
            map.insert("accessToken".into(), secret.expose().into());
            map.insert("expiresOn".into(), expires_local.into());
            map.insert("expires_on".into(), found.expires_on.into());
            map.insert("tenant".into(), tenant.into());
            map.insert("tokenType".into(), token_type.into());
            writeln!(out, "{}", to_json(&map))
        }
    }
}
