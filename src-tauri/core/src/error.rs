//! The error type of tokentray-core.
//!
//! Every variant says what went wrong *and what to do next*, never contains a token, key or
//! secret, and maps to a stable [`ErrorCode`] that the CLI (`--json`), the loopback endpoint and
//! the window send as `{code, message}`. Callers branch on the code, never on the text.

use std::path::PathBuf;

/// Result alias for tokentray-core.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// How to get an encrypted store working on the system `os` names (`std::env::consts::OS`).
fn store_advice(os: &str) -> &'static str {
    match os {
        "windows" => {
            "Sign in to Windows interactively so DPAPI has your key (an SSH session or a \
             service may not have it)"
        }
        "macos" => "Unlock your login Keychain (Keychain Access) and allow tokentray to use it",
        _ => "Start a Secret Service (e.g. gnome-keyring) or allow the kernel keyring",
    }
}

/// Everything that can go wrong in tokentray-core.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No usable encrypted store could be opened; `tried` names each backend and why it failed.
    #[error(
        "no encrypted token store is available ({}). {}; to store tokens unencrypted, opt in \
         with TOKENTRAY_STORE=plaintext or `allow_unencrypted_storage = true` in {}",
        tried.iter().map(|(b, why)| format!("{b}: {why}")).collect::<Vec<_>>().join("; "),
        store_advice(std::env::consts::OS),
        config.display()
    )]
    StoreUnavailable {
        /// Each backend tried, with the reason it was not usable.
        tried: Vec<(String, String)>,
        /// The config file where plaintext storage can be allowed.
        config: PathBuf,
    },

    /// A key store failed while tokentray was using it.
    #[error("{backend}: {reason}")]
    KeyStore {
        /// The backend (`secret-service`, `keyutils`, `keychain`, `dpapi`).
        backend: &'static str,
        /// What failed, in words (never the key).
        reason: String,
    },

    /// The cache file exists but its key is gone from the key store: the store answered and
    /// holds no key under the id the file names (the kernel keyring forgets keys at reboot).
    /// The file is left where it is; the next write keeps it aside and starts a new cache.
    #[error(
        "locked: key lost. The {backend} no longer holds the key of the token cache at {} (keys \
         in the kernel keyring do not survive a reboot). The file is left as it is; sign in \
         again with `tokentray login`, which keeps the old file aside (renamed, never deleted) \
         and starts a new cache",
        path.display()
    )]
    KeyLost {
        /// The backend that lost the key.
        backend: &'static str,
        /// The cache file.
        path: PathBuf,
    },

    /// A cache file written before files named their key (format version 1) whose key is under
    /// none of the names its path gives: it may have been written through another spelling of
    /// the path (a symlink, a relative `TOKENTRAY_HOME`), so it is not taken as lost. Nothing
    /// was changed.
    #[error(
        "the {backend} holds no key for the token cache at {} under the names an older \
         tokentray gave it ({}). The file is left as it is. If you used it through another path \
         before (a symlink, or a relative TOKENTRAY_HOME), run tokentray once through that path: \
         the file then records its key and opens through any path. If its key is gone (the \
         kernel keyring forgets keys at a reboot), run `tokentray cache reset` to keep it aside \
         and start a new cache",
        path.display(),
        tried.iter().map(|id| format!("cache-key:{id}")).collect::<Vec<_>>().join(", ")
    )]
    KeyNotFound {
        /// The backend asked.
        backend: &'static str,
        /// The cache file.
        path: PathBuf,
        /// The key ids looked up.
        tried: Vec<String>,
    },

    /// The cache file is encrypted with a key held by a different backend than the one in use.
    #[error(
        "the token cache at {} is encrypted with a key held in the {file_backend}, but the \
         {selected} was selected. Use TOKENTRAY_STORE={file_backend} (or auto), or run \
         `tokentray cache reset` to move it aside and start a new cache",
        path.display()
    )]
    BackendMismatch {
        /// The cache file.
        path: PathBuf,
        /// The backend named in the file header.
        file_backend: &'static str,
        /// The backend selected by configuration.
        selected: &'static str,
    },

    /// The cache file could not be read as a tokentray cache (truncated, tampered, wrong key,
    /// not JSON). It is left where it is; the next write keeps it aside with a timestamp and
    /// starts a new cache. Nothing is ever deleted.
    #[error(
        "the token cache at {} is unreadable ({reason}). It is left as it is; the next sign-in \
         (`tokentray login`) or `tokentray cache import` keeps it aside (renamed, never deleted) \
         and starts a new cache, or run `tokentray cache reset` to do that now",
        path.display()
    )]
    CacheCorrupt {
        /// Why it could not be read.
        reason: String,
        /// The cache file.
        path: PathBuf,
    },

    /// A file or directory operation failed.
    #[error("could not {op} {}: {source}", path.display())]
    Io {
        /// What we were doing (`read`, `write`, `rename`, ...).
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },

    /// A file or directory tokentray keeps or trusts (`TOKENTRAY_HOME`, the config directory,
    /// `config.toml`, `ca_file`, the cache) is owned by another user, who could change what
    /// tokentray uses.
    #[error(
        "{} is owned by uid {owner}, not by you (uid {me}); refusing to use it, since its owner \
         could change what tokentray trusts. Take it over with `sudo chown {me} {}`, or use \
         another path (TOKENTRAY_HOME)",
        path.display(),
        path.display()
    )]
    NotOwner {
        /// The file.
        path: PathBuf,
        /// Its owner.
        owner: u32,
        /// The current uid.
        me: u32,
    },

    /// Windows: as [`Error::NotOwner`], the owner named by its SID.
    #[error(
        "{} is owned by {owner}, not by you; refusing to use it, since its owner could change \
         what tokentray trusts. Take it over (`takeown /f \"{}\"`), or use another path \
         (TOKENTRAY_HOME)",
        path.display(),
        path.display()
    )]
    NotOwnedBy {
        /// The file.
        path: PathBuf,
        /// Its owner's SID (`S-1-5-…`).
        owner: String,
    },

    /// A file or directory tokentray trusts but never rewrites (`TOKENTRAY_HOME`, the config
    /// directory, `config.toml`, `ca_file`) is writable by its group or by others.
    #[error(
        "{} can be changed by other users (mode {mode:04o}); refusing to use it, since they could \
         point tokentray at their own sign-in page or certificate. Fix it with `chmod go-w {}`",
        path.display(),
        path.display()
    )]
    WritableByOthers {
        /// The file or directory.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },

    /// Windows: as [`Error::WritableByOthers`], the writer named by its SID (a DACL entry lets
    /// them write).
    #[error(
        "{} can be changed by {who} (its access list lets them write); refusing to use it, since \
         they could point tokentray at their own sign-in page or certificate. Make it yours \
         alone with `icacls \"{}\" /inheritance:r /grant:r \"%USERNAME%:F\"`, or use another path",
        path.display(),
        path.display()
    )]
    WritableBy {
        /// The file or directory.
        path: PathBuf,
        /// Who may write it: a SID (`S-1-5-…`), or "everyone".
        who: String,
    },

    /// A file the user named for tokentray to create (an export) already exists. Nothing was
    /// written.
    #[error("{} exists; pass --force to replace it, or choose another file", path.display())]
    FileExists {
        /// The file.
        path: PathBuf,
    },

    /// Another process held the cache lock for too long.
    #[error(
        "the token cache is locked by another process ({}); retry, or stop the other tokentray \
         process",
        path.display()
    )]
    LockTimeout {
        /// The lock file.
        path: PathBuf,
    },

    /// Input (a file, an argument) is not what was expected.
    #[error("{what}: {detail}")]
    InvalidInput {
        /// What was being read (`cache import file /x`, `--scope`, ...).
        what: String,
        /// What is wrong with it and how to fix it.
        detail: String,
    },

    /// A setting sent by the window is not valid; `field` names which, so the window can mark
    /// it. Nothing was written.
    #[error("{}: {detail}", field.label())]
    InvalidSetting {
        /// The setting.
        field: Setting,
        /// What is wrong with it and what is expected.
        detail: String,
    },

    /// The configuration file is invalid.
    #[error("invalid configuration in {}: {detail}", path.display())]
    Config {
        /// The config file.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },

    /// No account is signed in.
    #[error(
        "no account is signed in. Sign in with `tokentray login`, or import an Azure CLI or MSAL cache with `tokentray cache import FILE`"
    )]
    NoAccount,

    /// No account matches the given name or id.
    #[error("no account matches {query:?}. Known accounts: {}. See `tokentray accounts`", known.join(", "))]
    AccountNotFound {
        /// What the user asked for.
        query: String,
        /// The usernames that exist.
        known: Vec<String>,
    },

    /// Several accounts match and none is the default.
    #[error(
        "several accounts match ({}): name one in full with --account, or make one the default with `tokentray switch ACCOUNT`",
        candidates.join(", ")
    )]
    AmbiguousAccount {
        /// The usernames that match.
        candidates: Vec<String>,
    },

    /// The authority answered a token request with an OAuth error (ENTRA-PROTOCOL.md 2.2) that
    /// signing in again will not fix (bad scope, client not allowed, ...).
    #[error(
        "Entra ID refused the request: {error}: {}",
        summary_with_ids(description)
    )]
    Authority {
        /// The OAuth `error` (`invalid_scope`, `invalid_client`, ...).
        error: String,
        /// `error_description` (AADSTS code and text; no secrets).
        description: String,
        /// `error_codes` (AADSTS numbers).
        codes: Vec<u64>,
    },

    /// The account must sign in again (refresh token revoked or expired, MFA or consent needed).
    /// The account is kept and marked "needs sign-in".
    #[error(
        "{account} must sign in again: {reason}. Run `tokentray login` (or use the tray's \"Sign in\")"
    )]
    InteractionRequired {
        /// The account's username.
        account: String,
        /// Why, in words (from the authority's description).
        reason: String,
        /// A claims challenge to pass to the next interactive sign-in, if the authority sent one.
        claims: Option<String>,
    },

    /// Entra ID refused one request (an account's token for some scopes, in some tenant) for a
    /// reason of that request, which [`Denial`] names with its cure. The account and its other
    /// tokens are untouched; the message keeps Entra's trace and correlation ids.
    #[error("{}", denial.explain(account, scopes, tenant.as_deref(), reason))]
    Denied {
        /// Why, as a class with its own code and cure.
        denial: Denial,
        /// The account's username.
        account: String,
        /// The scopes asked for, space-separated.
        scopes: String,
        /// The tenant asked for, if one was named.
        tenant: Option<String>,
        /// Entra's first line, with its trace and correlation ids.
        reason: String,
    },

    /// The authority is unreachable or failing (network error, 5xx, 429). Cached tokens still
    /// valid are served meanwhile.
    #[error(
        "Entra ID is unavailable ({detail}){}. Cached tokens are still used; retry later",
        retry_after.map(|s| format!("; retry after {s}s")).unwrap_or_default()
    )]
    AuthorityUnavailable {
        /// What happened (HTTP status or network error).
        detail: String,
        /// Seconds the authority asked to wait (`Retry-After`).
        retry_after: Option<u64>,
    },

    /// The authority's answer was not what the protocol says (not JSON, missing fields, a nonce
    /// or state that does not match, an id_token for another client).
    #[error("sign-in failed: {0}. Nothing was saved; try again")]
    Protocol(String),

    /// The interactive sign-in did not complete: denied, refused, cancelled, timed out, expired
    /// or declined.
    #[error("sign-in {outcome}: {detail}")]
    SignIn {
        /// How it ended.
        outcome: SignInOutcome,
        /// What happened and what to do next.
        detail: String,
    },

    /// The running instance refused a request the CLI forwarded; its `{code, message}`.
    #[error("{message}")]
    Remote {
        /// The instance's stable error code.
        code: String,
        /// Its message.
        message: String,
    },

    /// The running instance (app or daemon) did not answer.
    #[error(
        "the running tokentray at {url} did not answer ({detail}); stop it and start it again \
         (`tokentray daemon` or the tray app)"
    )]
    InstanceUnreachable {
        /// Its base URL.
        url: String,
        /// What happened.
        detail: String,
    },

    /// The operating system had no randomness to give (keys, secrets, PKCE and `state` need it).
    #[error("the operating system's random number generator failed ({reason}); try again")]
    Randomness {
        /// What the OS said.
        reason: String,
    },

    /// `require_approval` is on and the program that asked for a token is not approved: no
    /// window to ask in (the daemon), nobody answered in time, or the program could not be
    /// identified. Nothing was served.
    #[error(
        "{program} is not approved to get tokens from tokentray ({why}). Approve it in the \
         tokentray window when it asks, or run `tokentray clients allow {program}`"
    )]
    ClientNotApproved {
        /// The executable's path, or what is known of the program.
        program: String,
        /// Why it was not asked or not answered.
        why: String,
    },

    /// `require_approval` is on and the user denied this program (in the window, or with
    /// `tokentray clients deny`). Nothing was served.
    #[error(
        "{program} was denied tokens. To let it get tokens, run `tokentray clients allow \
         {program}`; to be asked again, run `tokentray clients revoke {program}`"
    )]
    ClientDenied {
        /// The executable's path.
        program: String,
    },

    /// `tokentray` was run without a subcommand, which starts the tray app, where there is no
    /// graphical session to show it in (an SSH session, a container, a server).
    #[error(
        "no display: the tray app needs a desktop session. Without one, `tokentray daemon` \
         serves tokens to your tools and `tokentray login --device-code` signs in"
    )]
    NoDisplay,

    /// `tokentray` was run without a subcommand, which starts the tray app, and the app is not
    /// installed next to it.
    #[error(
        "the tray app is not installed: {} is missing. Install the tokentray package, which has \
         both, or build it with `make build`; without a window, `tokentray daemon` serves tokens",
        path.display()
    )]
    AppNotFound {
        /// Where it was looked for.
        path: PathBuf,
    },

    /// A program or service tokentray uses for the user (`git config` for `git-credential
    /// --install`, a container registry's token exchange) is missing or failed; nothing of
    /// tokentray's own state was changed by it.
    #[error("`{command}` {detail}")]
    ToolFailed {
        /// The command line or request, e.g. `git config --global --add ...` (never a secret).
        command: String,
        /// What went wrong and what to do (its stderr's first line, or "not found: install it").
        detail: String,
    },

    /// `tokentray env --install` was refused: nothing would answer on the endpoint's port
    /// while tokentray does not run, and tools would be refused there instead of moving on to
    /// their next credential. Nothing was installed.
    #[error("not installed: {detail}")]
    PortNotHeld {
        /// What is missing and how to fix it.
        detail: String,
    },

    /// The cache holds no valid access token for the request.
    #[error(
        "no valid access token for {scopes} is cached for {account}. Run the command again while \
         the tokentray app runs, or sign in with `tokentray login --scope {scopes}`"
    )]
    NoCachedToken {
        /// The requested scopes, space-separated.
        scopes: String,
        /// The account's username.
        account: String,
    },
}

/// A setting the window edits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Setting {
    /// Authority base URL or cloud name.
    Authority,
    /// Tenant.
    Tenant,
    /// Client id.
    ClientId,
    /// Endpoint port.
    Port,
    /// The browser sign-in's redirect ports.
    RedirectPorts,
    /// Start at login.
    StartAtLogin,
    /// Unencrypted storage allowed.
    Plaintext,
    /// The session environment ([`crate::session_env`]): every app sees tokentray.
    EveryApp,
}

impl Setting {
    /// The key the window and `config.toml` use for it.
    pub fn key(self) -> &'static str {
        match self {
            Self::Authority => "authority",
            Self::Tenant => "tenant",
            Self::ClientId => "client_id",
            Self::Port => "port",
            Self::RedirectPorts => "redirect_ports",
            Self::StartAtLogin => "start_at_login",
            Self::Plaintext => "plaintext",
            Self::EveryApp => "every_app",
        }
    }

    /// Its name in messages.
    fn label(self) -> &'static str {
        match self {
            Self::Authority => "authority",
            Self::Tenant => "tenant",
            Self::ClientId => "client id",
            Self::Port => "port",
            Self::RedirectPorts => "redirect ports",
            Self::StartAtLogin => "start at login",
            Self::Plaintext => "unencrypted storage",
            Self::EveryApp => "let every app use tokentray",
        }
    }
}

/// How an interactive sign-in ended without an account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SignInOutcome {
    /// The user declined consent or sign-in (`access_denied`).
    Denied,
    /// Entra refused it with another OAuth error on the redirect.
    Refused,
    /// Cancelled by the user or by another sign-in.
    Cancelled,
    /// The browser did not come back in time.
    TimedOut,
    /// The device code expired before it was used.
    Expired,
    /// The user declined the device code sign-in.
    Declined,
}

impl std::fmt::Display for SignInOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Denied => "denied",
            Self::Refused => "refused",
            Self::Cancelled => "cancelled",
            Self::TimedOut => "timed out",
            Self::Expired => "expired",
            Self::Declined => "declined",
        })
    }
}

/// Why Entra ID refused one request, when signing in again as before will not cure it: each
/// has its own [`ErrorCode`] and advice (MSAL's `UiRequiredExceptionClassification`, Entra's
/// error-code reference; `crate::tokens` decides which from `error`, `suberror` and
/// `error_codes`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Denial {
    /// A Conditional Access or other tenant policy blocks this request (AADSTS53003 and
    /// `suberror: message_only`, 53000-53002): only the tenant's admin can change it.
    BlockedByPolicy,
    /// Nobody consented to these scopes for this app (AADSTS65001, `consent_required`): an
    /// interactive sign-in for them can ask, or an admin can grant it.
    ConsentRequired,
    /// The account is not a member or guest of the tenant asked for (AADSTS50020, 90072, ...).
    NotInTenant,
    /// No tenant of that name exists in this cloud (AADSTS90002, 900023).
    UnknownTenant,
}

impl Denial {
    /// The message: what was refused, Entra's words, what to do next.
    fn explain(self, account: &str, scopes: &str, tenant: Option<&str>, reason: &str) -> String {
        let in_tenant = tenant
            .map(|t| format!(" in tenant {t}"))
            .unwrap_or_default();
        let tenant_flag = tenant.map(|t| format!(" --tenant {t}")).unwrap_or_default();
        match self {
            Self::BlockedByPolicy => format!(
                "a policy of the tenant blocks {account} from {scopes}{in_tenant}: {reason}. \
                 Signing in again will not help: send this message (it has the correlation id) \
                 to your tenant's admin and ask which Conditional Access policy applies"
            ),
            Self::ConsentRequired => format!(
                "{scopes}{in_tenant} needs consent for this app: {reason}. Sign in for it with \
                 `tokentray login --scope {scopes}{tenant_flag}` and accept, or ask your \
                 tenant's admin to grant consent for the app"
            ),
            Self::NotInTenant => format!(
                "{account} is not a member of tenant {}: {reason}. Ask for a token in a tenant \
                 the account belongs to (`tokentray accounts` shows its home tenant), ask the \
                 tenant's admin to invite it, or sign in with an account of that tenant",
                tenant.unwrap_or("asked for")
            ),
            Self::UnknownTenant => format!(
                "there is no tenant {} in this cloud: {reason}. Check the tenant id or domain \
                 (and `authority` in config.toml for a national cloud)",
                tenant.unwrap_or("asked for")
            ),
        }
    }
}

/// Defines [`ErrorCode`], its list and its wire strings from one table.
macro_rules! error_codes {
    ($($(#[$doc:meta])* $code:ident => $wire:literal,)*) => {
        /// Stable, machine-readable error codes: the `code` of every `{code, message}` the CLI
        /// (`--json`), the loopback endpoint and the window send. A wire string never changes
        /// once released.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        #[non_exhaustive]
        pub enum ErrorCode {
            $($(#[$doc])* $code,)*
        }

        impl ErrorCode {
            /// Every code.
            pub const ALL: &'static [ErrorCode] = &[$(Self::$code,)*];

            /// The code as sent on the wire.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$code => $wire,)*
                }
            }
        }
    };
}

error_codes! {
    /// [`Error::StoreUnavailable`]
    StoreUnavailable => "store_unavailable",
    /// [`Error::KeyStore`]
    KeyStore => "key_store",
    /// [`Error::KeyLost`]
    KeyLost => "key_lost",
    /// [`Error::KeyNotFound`]
    KeyNotFound => "key_not_found",
    /// [`Error::BackendMismatch`]
    BackendMismatch => "backend_mismatch",
    /// [`Error::CacheCorrupt`]
    CacheCorrupt => "cache_corrupt",
    /// [`Error::Io`]
    Io => "io",
    /// [`Error::NotOwner`]
    NotOwner => "not_owner",
    /// [`Error::WritableByOthers`]
    WritableByOthers => "writable_by_others",
    /// [`Error::FileExists`]
    FileExists => "file_exists",
    /// [`Error::LockTimeout`]
    LockTimeout => "lock_timeout",
    /// [`Error::InvalidInput`]
    InvalidInput => "invalid_input",
    /// [`Error::Config`]
    Config => "config",
    /// [`Error::NoAccount`]
    NoAccount => "no_account",
    /// [`Error::AccountNotFound`]
    AccountNotFound => "account_not_found",
    /// [`Error::AmbiguousAccount`]
    AmbiguousAccount => "ambiguous_account",
    /// [`Error::NoCachedToken`]
    NoCachedToken => "no_cached_token",
    /// [`Error::NoDisplay`]
    NoDisplay => "no_display",
    /// [`Error::AppNotFound`]
    AppNotFound => "app_not_found",
    /// [`Error::ToolFailed`]
    ToolFailed => "tool_failed",
    /// [`Error::PortNotHeld`]
    PortNotHeld => "port_not_held",
    /// [`Error::ClientNotApproved`]
    ClientNotApproved => "client_not_approved",
    /// [`Error::ClientDenied`]
    ClientDenied => "client_denied",
    /// [`Error::Authority`]
    Authority => "authority_error",
    /// [`Error::InteractionRequired`]
    InteractionRequired => "interaction_required",
    /// [`Error::Denied`] for [`Denial::BlockedByPolicy`]
    BlockedByPolicy => "blocked_by_policy",
    /// [`Error::Denied`] for [`Denial::ConsentRequired`]
    ConsentRequired => "consent_required",
    /// [`Error::Denied`] for [`Denial::NotInTenant`]
    NotInTenant => "not_in_tenant",
    /// [`Error::Denied`] for [`Denial::UnknownTenant`]
    UnknownTenant => "unknown_tenant",
    /// [`Error::AuthorityUnavailable`]
    AuthorityUnavailable => "authority_unavailable",
    /// [`Error::Protocol`]
    Protocol => "protocol_error",
    /// [`Error::SignIn`] denied or refused by the user or the authority, or declined.
    SignInDenied => "sign_in_denied",
    /// [`Error::SignIn`] cancelled.
    SignInCancelled => "sign_in_cancelled",
    /// [`Error::SignIn`] timed out or the device code expired.
    SignInTimeout => "sign_in_timeout",
    /// [`Error::InstanceUnreachable`]
    InstanceUnreachable => "instance_unreachable",
    /// [`Error::Randomness`]
    Randomness => "randomness",
    /// The endpoint refused a request from a web page (an `Origin` header).
    ForbiddenOrigin => "forbidden_origin",
    /// The endpoint refused a `Host` that is not a loopback name.
    ForbiddenHost => "forbidden_host",
    /// The endpoint refused an over-long query string.
    QueryTooLong => "query_too_long",
    /// The endpoint refused a missing or wrong secret.
    Unauthorized => "unauthorized",
    /// The endpoint gave up on a request that took too long.
    Timeout => "timeout",
    /// The endpoint has no such route.
    NotFound => "not_found",
    /// The endpoint has the route, but not for the request's method.
    MethodNotAllowed => "method_not_allowed",
    /// The endpoint refused a malformed managed-identity request (OAuth's `invalid_request`).
    InvalidRequest => "invalid_request",
    /// [`Error::Remote`] with a code this build does not know.
    Other => "other",
}

impl std::str::FromStr for ErrorCode {
    type Err = ();

    /// The code whose wire string is `s`.
    fn from_str(s: &str) -> std::result::Result<Self, ()> {
        Self::ALL
            .iter()
            .copied()
            .find(|c| c.as_str() == s)
            .ok_or(())
    }
}

impl Error {
    /// This error's stable code.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::StoreUnavailable { .. } => ErrorCode::StoreUnavailable,
            Self::KeyStore { .. } => ErrorCode::KeyStore,
            Self::KeyLost { .. } => ErrorCode::KeyLost,
            Self::KeyNotFound { .. } => ErrorCode::KeyNotFound,
            Self::BackendMismatch { .. } => ErrorCode::BackendMismatch,
            Self::CacheCorrupt { .. } => ErrorCode::CacheCorrupt,
            Self::Io { .. } => ErrorCode::Io,
            Self::NotOwner { .. } | Self::NotOwnedBy { .. } => ErrorCode::NotOwner,
            Self::WritableByOthers { .. } | Self::WritableBy { .. } => ErrorCode::WritableByOthers,
            Self::FileExists { .. } => ErrorCode::FileExists,
            Self::LockTimeout { .. } => ErrorCode::LockTimeout,
            Self::InvalidInput { .. } | Self::InvalidSetting { .. } => ErrorCode::InvalidInput,
            Self::Config { .. } => ErrorCode::Config,
            Self::NoAccount => ErrorCode::NoAccount,
            Self::AccountNotFound { .. } => ErrorCode::AccountNotFound,
            Self::AmbiguousAccount { .. } => ErrorCode::AmbiguousAccount,
            Self::NoCachedToken { .. } => ErrorCode::NoCachedToken,
            Self::NoDisplay => ErrorCode::NoDisplay,
            Self::AppNotFound { .. } => ErrorCode::AppNotFound,
            Self::ToolFailed { .. } => ErrorCode::ToolFailed,
            Self::PortNotHeld { .. } => ErrorCode::PortNotHeld,
            Self::ClientNotApproved { .. } => ErrorCode::ClientNotApproved,
            Self::ClientDenied { .. } => ErrorCode::ClientDenied,
            Self::Authority { .. } => ErrorCode::Authority,
            Self::InteractionRequired { .. } => ErrorCode::InteractionRequired,
            Self::Denied { denial, .. } => match denial {
                Denial::BlockedByPolicy => ErrorCode::BlockedByPolicy,
                Denial::ConsentRequired => ErrorCode::ConsentRequired,
                Denial::NotInTenant => ErrorCode::NotInTenant,
                Denial::UnknownTenant => ErrorCode::UnknownTenant,
            },
            Self::AuthorityUnavailable { .. } => ErrorCode::AuthorityUnavailable,
            Self::Protocol(_) => ErrorCode::Protocol,
            Self::SignIn { outcome, .. } => match outcome {
                SignInOutcome::Cancelled => ErrorCode::SignInCancelled,
                SignInOutcome::TimedOut | SignInOutcome::Expired => ErrorCode::SignInTimeout,
                SignInOutcome::Denied | SignInOutcome::Refused | SignInOutcome::Declined => {
                    ErrorCode::SignInDenied
                }
            },
            Self::InstanceUnreachable { .. } => ErrorCode::InstanceUnreachable,
            Self::Randomness { .. } => ErrorCode::Randomness,
            Self::Remote { code, .. } => code.parse().unwrap_or(ErrorCode::Other),
        }
    }

    /// Whether a token request failed for lack of the authority (network, 5xx, 429), as opposed
    /// to an answer: cached tokens are then still served.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::AuthorityUnavailable { .. })
    }

    /// Shorthand for [`Error::Io`].
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            op,
            path: path.into(),
            source,
        }
    }

    /// The setting this error is about, if it is one the window edits.
    pub fn setting(&self) -> Option<Setting> {
        match self {
            Self::InvalidSetting { field, .. } => Some(*field),
            _ => None,
        }
    }

    /// Shorthand for [`Error::InvalidInput`].
    pub fn invalid(what: impl Into<String>, detail: impl Into<String>) -> Self {
        Self::InvalidInput {
            what: what.into(),
            detail: detail.into(),
        }
    }
}

/// The first line of an Entra error description (the rest is trace and correlation ids).
pub(crate) fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or(text).trim()
}

/// The first line of an Entra error description plus the trace and correlation ids of its
/// later lines, which find the failure in the tenant's sign-in logs: `AADSTS50076: ... (trace
/// id T, correlation id C)`.
pub(crate) fn summary_with_ids(text: &str) -> String {
    let first = first_line(text);
    let id = |label: &str| {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(label))
            .map(str::trim)
            .filter(|v| !v.is_empty() && v.len() <= 64)
    };
    let ids: Vec<String> = [
        ("Trace ID:", "trace id"),
        ("Correlation ID:", "correlation id"),
    ]
    .into_iter()
    .filter_map(|(label, name)| id(label).map(|v| format!("{name} {v}")))
    .collect();
    if ids.is_empty() {
        first.to_string()
    } else {
        format!("{first} ({})", ids.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_store_is_explained_in_the_systems_own_terms() {
        assert!(store_advice("windows").contains("DPAPI"));
        assert!(store_advice("macos").contains("Keychain"));
        assert!(store_advice("linux").contains("gnome-keyring"));
        let e = Error::StoreUnavailable {
            tried: vec![("secret-service".into(), "no D-Bus".into())],
            config: PathBuf::from("/c/config.toml"),
        };
        let text = e.to_string();
        assert!(text.contains("secret-service: no D-Bus"), "{text}");
        assert!(text.contains(store_advice(std::env::consts::OS)), "{text}");
    }
}
