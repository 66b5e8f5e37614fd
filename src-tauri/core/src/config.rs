//! `config.toml` and its environment overrides.
//!
//! Precedence: environment (`TOKENTRAY_*`) over the file over defaults. Unknown keys in the file
//! are an error that names them, so a typo never silently changes behaviour.
//!
//! The file names the authority that receives the sign-in and the refresh tokens, and `ca_file`
//! the certificate trusted for it, so both must be the user's own: the config directory and
//! `config.toml` owned by the user and not writable by group or others, `ca_file` likewise (or
//! owned by root, as system CA bundles are). Anything else is refused with an error naming the
//! path and the fix ([`crate::files::check_trusted`]); nothing is chmodded. On Windows only the
//! owner is checked (the user, or SYSTEM or Administrators where root is accepted).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::files::{self, Owner};
use crate::paths::Paths;
use crate::persist::{PersistedCache, StoreChoice};
use crate::{Error, Result};

/// The public client azure-identity and Azure CLI use ("Azure development tools"): no app
/// registration needed, FOCI family refresh tokens, cache interop with Azure CLI.
pub const DEFAULT_CLIENT_ID: &str = "04b07795-8ddb-461a-bbee-02f9e1bf7b46";
/// Entra's public cloud.
pub const DEFAULT_AUTHORITY: &str = "https://login.microsoftonline.com";
/// The loopback endpoint's default port.
pub const DEFAULT_PORT: u16 = 42117;
/// Work and school accounts of any tenant.
pub const DEFAULT_TENANT: &str = "organizations";
/// The hosts of Azure Repos, which `tokentray git-credential` answers for unless `[git] hosts`
/// says otherwise: `*.` matches any subdomain.
pub const DEFAULT_GIT_HOSTS: [&str; 2] = ["dev.azure.com", "*.visualstudio.com"];
/// The hosts of Azure Container Registry in each cloud, which `docker-credential-tokentray`
/// answers for unless `[docker] hosts` says otherwise.
pub const DEFAULT_DOCKER_HOSTS: [&str; 3] = ["*.azurecr.io", "*.azurecr.us", "*.azurecr.cn"];

/// The file's shape.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(skip_serializing_if = "Option::is_none")]
    store: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    allow_unencrypted_storage: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    authority: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tenant: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ca_file: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    port: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    redirect_ports: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    arm_endpoint: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    require_approval: Option<bool>,
    #[serde(default, skip_serializing_if = "GitFile::is_empty")]
    git: GitFile,
    #[serde(default, skip_serializing_if = "DockerFile::is_empty")]
    docker: DockerFile,
}

/// The file's `[docker]` table.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct DockerFile {
    #[serde(skip_serializing_if = "Option::is_none")]
    hosts: Option<Vec<String>>,
}

impl DockerFile {
    fn is_empty(&self) -> bool {
        self.hosts.is_none()
    }
}

/// The file's `[git]` table.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct GitFile {
    #[serde(skip_serializing_if = "Option::is_none")]
    hosts: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    accounts: BTreeMap<String, String>,
}

impl GitFile {
    fn is_empty(&self) -> bool {
        self.hosts.is_none() && self.accounts.is_empty()
    }
}

impl File {
    /// Its editable settings, defaults where it has none.
    fn settings(&self) -> EditableSettings {
        EditableSettings {
            authority: self
                .authority
                .as_deref()
                .unwrap_or(DEFAULT_AUTHORITY)
                .trim_end_matches('/')
                .to_string(),
            tenant: self.tenant.clone().unwrap_or_else(|| DEFAULT_TENANT.into()),
            client_id: self
                .client_id
                .clone()
                .unwrap_or_else(|| DEFAULT_CLIENT_ID.into()),
            port: self.port.unwrap_or(DEFAULT_PORT),
            redirect_ports: self.redirect_ports.clone().unwrap_or_default(),
            allow_unencrypted_storage: self.allow_unencrypted_storage.unwrap_or(false),
            require_approval: self.require_approval.unwrap_or(false),
        }
    }

    /// The file at `path` (empty if there is none), once its directory and itself are trusted.
    fn read(path: &Path) -> Result<Self> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            files::check_trusted(dir, Owner::User)?;
        }
        let Some(bytes) = files::read_trusted(path, Owner::User)? else {
            return Ok(Self::default());
        };
        let bad = |detail: String| Error::Config {
            path: path.into(),
            detail,
        };
        let text = String::from_utf8(bytes).map_err(|_| bad("not UTF-8 text".into()))?;
        toml::from_str(&text).map_err(|e| bad(e.message().to_string()))
    }
}

/// Whether `host` (with its `:port`, if any) is one of `patterns` (`[git] hosts`,
/// `[docker] hosts`): equal ignoring case, or
/// under a `*.domain` pattern's domain.
pub fn host_matches(patterns: &[String], host: &str) -> bool {
    patterns
        .iter()
        .any(|pattern| match pattern.strip_prefix("*.") {
            Some(domain) => host
                .len()
                .checked_sub(domain.len() + 1)
                .filter(|&dot| dot > 0 && host.as_bytes()[dot] == b'.')
                .is_some_and(|dot| host[dot + 1..].eq_ignore_ascii_case(domain)),
            None => host.eq_ignore_ascii_case(pattern),
        })
}

/// A range of ports, `first..=last` (one port: both the same).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortRange {
    /// The lowest port.
    pub first: u16,
    /// The highest port.
    pub last: u16,
}

impl PortRange {
    /// `53100-53199`, `53100`, or empty/blank (`None`: any port).
    ///
    /// # Errors
    /// What is wrong and what is expected, for a message that names where the text came from.
    pub fn parse(text: &str) -> std::result::Result<Option<Self>, String> {
        let text = text.trim();
        if text.is_empty() {
            return Ok(None);
        }
        let (first, last) = text.split_once('-').unwrap_or((text, text));
        let port = |p: &str| p.trim().parse::<u16>().ok().filter(|p| *p != 0);
        match (port(first), port(last)) {
            (Some(first), Some(last)) if first <= last => Ok(Some(Self { first, last })),
            _ => Err(format!(
                "{text:?} is not a port or a range of ports; use e.g. 53100-53199 (1-65535, low-high), or leave it empty for any free port"
            )),
        }
    }
}

impl std::fmt::Display for PortRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.first == self.last {
            write!(f, "{}", self.first)
        } else {
            write!(f, "{}-{}", self.first, self.last)
        }
    }
}

/// The settings the window edits, as written to `config.toml`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EditableSettings {
    /// Authority base URL or cloud name.
    pub authority: String,
    /// Tenant.
    pub tenant: String,
    /// Client id.
    pub client_id: String,
    /// Loopback endpoint port.
    pub port: u16,
    /// The browser sign-in's redirect ports as written (`53100-53199`, `53100`, or empty: any
    /// free port); checked by [`PortRange::parse`].
    pub redirect_ports: String,
    /// Whether `auto` may fall back to a plaintext file.
    pub allow_unencrypted_storage: bool,
    /// Whether each new program must be approved before it gets tokens.
    pub require_approval: bool,
}

/// Settings fixed by an environment variable, which wins over the file: (setting, variable).
const OVERRIDES: [(&str, &str); 5] = [
    ("authority", "TOKENTRAY_AUTHORITY"),
    ("tenant", "TOKENTRAY_TENANT"),
    ("client_id", "TOKENTRAY_CLIENT_ID"),
    ("port", "TOKENTRAY_PORT"),
    ("store", "TOKENTRAY_STORE"),
];

/// The effective configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Which token store to use (`TOKENTRAY_STORE`, `store`).
    pub store: StoreChoice,
    /// Whether `auto` may fall back to a plaintext file (`allow_unencrypted_storage`).
    pub allow_unencrypted_storage: bool,
    /// Authority base URL, e.g. `https://login.microsoftonline.com` (`TOKENTRAY_AUTHORITY`).
    pub authority: String,
    /// Tenant: `organizations`, `common`, a GUID or a domain (`TOKENTRAY_TENANT`).
    pub tenant: String,
    /// Client id (`TOKENTRAY_CLIENT_ID`).
    pub client_id: String,
    /// Extra trusted root certificate, PEM (`TOKENTRAY_CA_FILE`).
    pub ca_file: Option<PathBuf>,
    /// Port of the loopback endpoint (`TOKENTRAY_PORT`, `port`).
    pub port: u16,
    /// The ports the browser sign-in's loopback redirect may listen on (`redirect_ports`), for
    /// an app registration or a firewall that allows only some; `None`: any free port.
    pub redirect_ports: Option<PortRange>,
    /// Whether each program must be approved before the endpoint serves it a token
    /// (`require_approval`; see `crate::approval`).
    pub require_approval: bool,
    /// The hosts `tokentray git-credential` answers for (`[git] hosts`, default
    /// [`DEFAULT_GIT_HOSTS`]): a host (with `:port` if not 443) or `*.domain`.
    pub git_hosts: Vec<String>,
    /// The account to use for each Azure DevOps organisation (`[git.accounts]`, organisation =
    /// account); other organisations use the default account.
    pub git_accounts: BTreeMap<String, String>,
    /// The registries `docker-credential-tokentray` answers for (`[docker] hosts`, default
    /// [`DEFAULT_DOCKER_HOSTS`]), as `git_hosts`.
    pub docker_hosts: Vec<String>,
    /// Azure Resource Manager's endpoint (`arm_endpoint`, or `TOKENTRAY_ARM_ENDPOINT`), where
    /// the `az` shim lists subscriptions; `None`: the cloud's (`authority::Cloud`).
    pub arm_endpoint: Option<String>,
    /// The file this was read from (it may not exist).
    pub path: PathBuf,
}

impl Config {
    /// The defaults, as if `path` were empty and no environment variable set.
    pub fn defaults(path: &Path) -> Self {
        Self {
            store: StoreChoice::Auto,
            allow_unencrypted_storage: false,
            authority: DEFAULT_AUTHORITY.into(),
            tenant: DEFAULT_TENANT.into(),
            client_id: DEFAULT_CLIENT_ID.into(),
            ca_file: None,
            port: DEFAULT_PORT,
            redirect_ports: None,
            require_approval: false,
            git_hosts: DEFAULT_GIT_HOSTS.map(String::from).to_vec(),
            git_accounts: BTreeMap::new(),
            docker_hosts: DEFAULT_DOCKER_HOSTS.map(String::from).to_vec(),
            arm_endpoint: None,
            path: path.into(),
        }
    }

    /// Reads `path` if it exists and applies the environment overrides.
    ///
    /// # Errors
    /// [`Error::Config`] for unreadable or invalid TOML, unknown keys or bad values;
    /// [`Error::NotOwner`] or [`Error::WritableByOthers`] if `path` or its directory is not
    /// safely the user's (see the module doc).
    pub fn load(path: &Path) -> Result<Self> {
        let file = File::read(path)?;
        let saved = file.settings();
        let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        // A bad value names where it came from: the variable, or the file.
        let store = match env("TOKENTRAY_STORE") {
            Some(text) => text.parse().map_err(|e: String| {
                Error::invalid("TOKENTRAY_STORE", format!("{e}; fix or unset the variable"))
            })?,
            None => file
                .store
                .as_deref()
                .unwrap_or("auto")
                .parse()
                .map_err(|detail: String| Error::Config {
                    path: path.into(),
                    detail,
                })?,
        };
        Ok(Self {
            store,
            allow_unencrypted_storage: saved.allow_unencrypted_storage,
            authority: env("TOKENTRAY_AUTHORITY")
                .map_or(saved.authority, |a| a.trim_end_matches('/').to_string()),
            tenant: env("TOKENTRAY_TENANT").unwrap_or(saved.tenant),
            client_id: env("TOKENTRAY_CLIENT_ID").unwrap_or(saved.client_id),
            ca_file: env("TOKENTRAY_CA_FILE").map(PathBuf::from).or(file.ca_file),
            port: match env("TOKENTRAY_PORT") {
                Some(p) => p.parse().map_err(|_| {
                    Error::invalid(
                        "TOKENTRAY_PORT",
                        format!("{p:?} is not a port number; use 1-65535, or unset the variable"),
                    )
                })?,
                None => saved.port,
            },
            redirect_ports: PortRange::parse(&saved.redirect_ports).map_err(|detail| {
                Error::Config {
                    path: path.into(),
                    detail: format!("redirect_ports: {detail}"),
                }
            })?,
            require_approval: saved.require_approval,
            git_hosts: file
                .git
                .hosts
                .unwrap_or_else(|| DEFAULT_GIT_HOSTS.map(String::from).to_vec()),
            git_accounts: file.git.accounts,
            docker_hosts: file
                .docker
                .hosts
                .unwrap_or_else(|| DEFAULT_DOCKER_HOSTS.map(String::from).to_vec()),
            arm_endpoint: env("TOKENTRAY_ARM_ENDPOINT")
                .or(file.arm_endpoint)
                .map(|e| e.trim_end_matches('/').to_string()),
            path: path.into(),
        })
    }

    /// The settings the file at `path` holds (its values, defaults where it has none), whatever
    /// the environment says: what the window edits, and what the next start uses for the
    /// settings no variable fixes.
    ///
    /// # Errors
    /// Those of reading the file ([`Error::Config`], [`Error::Io`], an untrusted file).
    pub fn saved(path: &Path) -> Result<EditableSettings> {
        Ok(File::read(path)?.settings())
    }

    /// Writes the settings of `settings` that differ from what the file at `path` holds
    /// ([`Config::saved`]), except those in `locked` (fixed by an environment variable,
    /// [`Config::overridden`]: never written from the running value); keeps its other keys
    /// (`store`, `ca_file`, `[git]`). A setting the user left as it was stays as the file had
    /// it, absent included, so defaults are not frozen into the file. Atomic, mode 0600; takes
    /// effect at the next start. Comments in the file are not kept.
    ///
    /// # Errors
    /// [`Error::Config`] if the existing file is invalid (it is left as it is); [`Error::Io`].
    pub fn save(path: &Path, settings: &EditableSettings, locked: &[&str]) -> Result<()> {
        let mut file = File::read(path)?;
        let saved = file.settings();
        let open = |key: &str| !locked.contains(&key);
        if open("authority") && settings.authority != saved.authority {
            file.authority = Some(settings.authority.clone());
        }
        if open("tenant") && settings.tenant != saved.tenant {
            file.tenant = Some(settings.tenant.clone());
        }
        if open("client_id") && settings.client_id != saved.client_id {
            file.client_id = Some(settings.client_id.clone());
        }
        if open("port") && settings.port != saved.port {
            file.port = Some(settings.port);
        }
        if settings.redirect_ports != saved.redirect_ports {
            file.redirect_ports =
                Some(settings.redirect_ports.clone()).filter(|r| !r.trim().is_empty());
        }
        if settings.allow_unencrypted_storage != saved.allow_unencrypted_storage {
            file.allow_unencrypted_storage = Some(settings.allow_unencrypted_storage);
        }
        if settings.require_approval != saved.require_approval {
            file.require_approval = Some(settings.require_approval);
        }
        let text = toml::to_string(&file).map_err(|e| Error::Config {
            path: path.into(),
            detail: format!("cannot write it: {e}"),
        })?;
        if let Some(dir) = path.parent() {
            files::ensure_private_dir(dir)?;
        }
        files::write_atomic(path, text.as_bytes())
    }

    /// Opens the token store this configuration chooses, under `paths`.
    ///
    /// # Errors
    /// Those of [`PersistedCache::open`].
    pub fn open_store(&self, paths: &Paths) -> Result<PersistedCache> {
        PersistedCache::open(
            paths,
            self.store,
            self.allow_unencrypted_storage,
            &self.path,
        )
    }

    /// The settings (`authority`, `tenant`, `client_id`, `port`, `store`) an environment
    /// variable fixes, so editing them in the file has no effect.
    pub fn overridden() -> Vec<&'static str> {
        OVERRIDES
            .iter()
            .filter(|(_, var)| std::env::var_os(var).is_some_and(|v| !v.is_empty()))
            .map(|(setting, _)| *setting)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_save_writes_only_what_changed_and_nothing_locked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(&path, "store = \"keyutils\"\nport = 40000\n").unwrap();
        let mut settings = Config::saved(&path).unwrap();
        assert_eq!(settings.port, 40000);
        assert_eq!(
            settings.tenant, DEFAULT_TENANT,
            "defaults where the file has none"
        );
        // The window sends every field: the authority as the environment has it (locked), the
        // rest as saved but the tenant.
        settings.authority = "https://127.0.0.1:8443".into();
        settings.tenant = "contoso.example".into();
        Config::save(&path, &settings, &["authority"]).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("tenant = \"contoso.example\""), "{text}");
        assert!(
            text.contains("port = 40000") && text.contains("store = \"keyutils\""),
            "{text}"
        );
        for absent in [
            "authority",
            "client_id",
            "require_approval",
            "allow_unencrypted_storage",
        ] {
            assert!(!text.contains(absent), "{absent} was not changed: {text}");
        }
        // A second save with other values leaves the first one's.
        let mut again = Config::saved(&path).unwrap();
        again.require_approval = true;
        Config::save(&path, &again, &[]).unwrap();
        let saved = Config::saved(&path).unwrap();
        assert_eq!(
            (saved.tenant.as_str(), saved.port, saved.require_approval),
            ("contoso.example", 40000, true)
        );
    }

    #[test]
    fn redirect_ports_read_as_a_port_a_range_or_any() {
        assert_eq!(PortRange::parse(" "), Ok(None));
        let range = PortRange::parse("53100-53199").unwrap().unwrap();
        assert_eq!((range.first, range.last), (53100, 53199));
        assert_eq!(range.to_string(), "53100-53199");
        assert_eq!(
            PortRange::parse("53100").unwrap().unwrap().to_string(),
            "53100"
        );
        for bad in ["0", "53199-53100", "53100-", "x", "70000", "1-2-3"] {
            let err = PortRange::parse(bad).unwrap_err();
            assert!(err.contains("53100-53199"), "{bad}: {err}");
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(&path, "redirect_ports = \"9-8\"\n").unwrap();
        let err = Config::load(&path).unwrap_err().to_string();
        assert!(
            err.contains("redirect_ports") && err.contains("config.toml"),
            "{err}"
        );
    }

    #[test]
    fn unknown_keys_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(&path, "allow_unencrypted_storag = true\n").unwrap();
        let err = Config::load(&path).unwrap_err().to_string();
        assert!(err.contains("allow_unencrypted_storag"), "{err}");
        assert!(err.contains("config.toml"), "{err}");
    }
}
