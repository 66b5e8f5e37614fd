//! The token cache at rest: opaque bytes behind one seam, [`Persistence`], and [`PersistedCache`], the
//! cross-process locked cache on top of it.
//!
//! | backend | where the secret is | survives reboot |
//! |---|---|---|
//! | `secret-service` (Linux desktop) | 256-bit key in the login keyring; AES-256-GCM file | yes |
//! | `keyutils` (Linux SSH/WSL/CI) | 256-bit key in the kernel user keyring; AES-256-GCM file | **no**: the key dies, the cache reads "locked: key lost" |
//! | `keychain` (macOS) | 256-bit key in the login Keychain; AES-256-GCM file | yes |
//! | `dpapi` (Windows) | the file itself, DPAPI user scope | yes |
//! | `plaintext` (opt-in only) | nowhere: a 0600 JSON file | yes |
//!
//! `TOKENTRAY_STORE=auto` (the default) uses the key store named in an existing cache file's
//! header; with no file it tries the Secret Service, then the kernel keyring, and fails closed
//! with an error naming both, unless `allow_unencrypted_storage = true`.
//!
//! The header also names the key ([`key_id`]), so a cache opens through any spelling of its path.
//! Reading never moves, changes or replaces a cache file, whatever is wrong with it; writes keep
//! an unreadable one aside (renamed, never deleted) before starting a new cache
//! ([`PersistedCache`]).

mod cache_file;
mod encrypted;
pub(crate) mod envelope;
mod memory;
mod plaintext;

#[cfg(any(windows, test))]
mod dpapi;
#[cfg(any(target_os = "macos", test))]
mod key_memo;
#[cfg(target_os = "macos")]
mod keychain;
#[cfg(target_os = "linux")]
mod keyutils;
#[cfg(target_os = "linux")]
mod secret_service;

use std::path::{Path, PathBuf};
use std::str::FromStr;

use zeroize::Zeroizing;

pub use cache_file::{PersistedCache, Stamp, StoreStatus};
#[cfg(windows)]
pub use dpapi::DpapiFile;
pub use encrypted::{EncryptedFile, KeyHolder};
#[cfg(target_os = "macos")]
pub use keychain::KeychainKey;
#[cfg(target_os = "linux")]
pub use keyutils::KernelKey;
pub use memory::Memory;
pub use plaintext::PlaintextFile;
#[cfg(target_os = "linux")]
pub use secret_service::SecretServiceKey;

use crate::paths::Paths;
use crate::{Error, Result};

/// Opaque bytes at rest. Implementations own *where* and *how* the bytes are protected; they
/// know nothing of their meaning. Callers serialize access with [`Lock`] (see [`PersistedCache`]).
pub trait Persistence: Send + Sync + std::fmt::Debug {
    /// Which backend this is.
    fn backend(&self) -> Backend;
    /// Where the bytes live (for status and messages).
    fn location(&self) -> &Path;
    /// The stored bytes; `None` if nothing was ever saved. Never moves, changes or replaces
    /// the stored bytes, whatever is wrong with them.
    ///
    /// # Errors
    /// [`Error::KeyLost`], [`Error::KeyNotFound`], [`Error::CacheCorrupt`] (the file is left
    /// where it is), [`Error::KeyStore`], [`Error::Io`].
    fn load(&self) -> Result<Option<Zeroizing<Vec<u8>>>>;
    /// Replaces the stored bytes atomically. It takes them: a backend that encrypts does it in
    /// their buffer (at 1,000 accounts 25 MB that then never exist twice).
    ///
    /// # Errors
    /// [`Error::KeyStore`], [`Error::KeyNotFound`], [`Error::Io`].
    fn save(&self, bytes: Zeroizing<Vec<u8>>) -> Result<()>;
    /// Moves the stored bytes aside (never deleting them); where they went, if anywhere.
    ///
    /// # Errors
    /// [`Error::Io`].
    fn move_aside(&self, why: &str) -> Result<Option<PathBuf>>;
}

/// A persistence backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Backend {
    /// Secret Service key + encrypted file.
    SecretService,
    /// Kernel keyring key + encrypted file.
    Keyutils,
    /// macOS Keychain key + encrypted file.
    Keychain,
    /// Windows DPAPI file.
    Dpapi,
    /// Plain JSON file (opt-in).
    Plaintext,
    /// In memory (tests).
    Memory,
}

impl Backend {
    /// The name used in `TOKENTRAY_STORE` and messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SecretService => "secret-service",
            Self::Keyutils => "keyutils",
            Self::Keychain => "keychain",
            Self::Dpapi => "dpapi",
            Self::Plaintext => "plaintext",
            Self::Memory => "memory",
        }
    }

    /// Whether the tokens are encrypted at rest.
    pub fn encrypted(self) -> bool {
        !matches!(self, Self::Plaintext | Self::Memory)
    }

    /// What survives a reboot, in words.
    pub fn persistence(self) -> &'static str {
        match self {
            Self::SecretService => "survives reboot (key in the login keyring)",
            Self::Keyutils => {
                "does NOT survive reboot: the kernel keyring forgets the key, and you sign in again"
            }
            Self::Keychain => "survives reboot (key in the login Keychain)",
            Self::Dpapi => "survives reboot (DPAPI, your Windows user only)",
            Self::Plaintext => "survives reboot, UNENCRYPTED",
            Self::Memory => "nothing survives the process",
        }
    }

    /// The header tag of files whose key this backend holds.
    fn tag(self) -> u8 {
        match self {
            Self::SecretService => 1,
            Self::Keyutils => 2,
            Self::Keychain => 3,
            _ => 0,
        }
    }

    fn from_tag(tag: u8) -> Option<Self> {
        [Self::SecretService, Self::Keyutils, Self::Keychain]
            .into_iter()
            .find(|b| b.tag() == tag)
    }
}

/// The configured store (`TOKENTRAY_STORE` / `store`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreChoice {
    /// The platform's encrypted store, failing closed.
    Auto,
    /// A specific backend.
    Only(Backend),
}

impl FromStr for StoreChoice {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        let valid = [
            "auto",
            "secret-service",
            "keyutils",
            "keychain",
            "dpapi",
            "plaintext",
        ];
        match s {
            "auto" => Ok(Self::Auto),
            "secret-service" => Ok(Self::Only(Backend::SecretService)),
            "keyutils" => Ok(Self::Only(Backend::Keyutils)),
            "keychain" => Ok(Self::Only(Backend::Keychain)),
            "dpapi" => Ok(Self::Only(Backend::Dpapi)),
            "plaintext" => Ok(Self::Only(Backend::Plaintext)),
            other => Err(format!(
                "unknown store {other:?}; use one of: {}",
                valid.join(", ")
            )),
        }
    }
}

/// The id a new cache under `paths` names its key by in the key stores (`cache-key:<id>`): a hash
/// of the cache file's canonical path, so each cache directory has its own key. The id is then
/// recorded in the file's header and read from there: the cache opens with the same key through
/// any spelling of its path (see [`EncryptedFile`]).
pub fn key_id(paths: &Paths) -> String {
    envelope::KeyId::of_path(&crate::paths::canonical(&paths.encrypted_cache())).to_string()
}

/// Opens the backend `choice` names (see the module doc for `auto`); `allow_plaintext` lets
/// `auto` fall back to a plaintext file; `config_file` is named in errors as where to change it.
///
/// # Errors
/// [`Error::StoreUnavailable`] naming every backend tried; [`Error::BackendMismatch`] if the
/// existing cache file's key lives elsewhere than the explicitly chosen backend.
pub fn open(
    paths: &Paths,
    choice: StoreChoice,
    allow_plaintext: bool,
    config_file: &Path,
) -> Result<Box<dyn Persistence>> {
    let probe_id = key_id(paths);
    let encrypted = paths.encrypted_cache();
    // The header alone: the cache may be tens of megabytes, and it is read again to load.
    let file_backend = std::fs::File::open(&encrypted)
        .and_then(|file| {
            use std::io::Read as _;
            let mut head = Vec::with_capacity(envelope::TAG_HEAD);
            file.take(envelope::TAG_HEAD as u64)
                .read_to_end(&mut head)?;
            Ok(head)
        })
        .ok()
        .and_then(|head| envelope::key_store_tag(&head))
        .and_then(Backend::from_tag);
    let unavailable = |tried: Vec<(String, String)>| Error::StoreUnavailable {
        tried,
        config: config_file.to_path_buf(),
    };
    let mut tried = Vec::new();
    let candidates: Vec<Backend> = match (choice, file_backend) {
        (StoreChoice::Only(Backend::Plaintext), _) => {
            return Ok(Box::new(PlaintextFile::new(paths.plaintext_cache())));
        }
        (StoreChoice::Only(chosen), Some(in_file)) if chosen != in_file && chosen.encrypted() => {
            return Err(Error::BackendMismatch {
                path: encrypted,
                file_backend: in_file.as_str(),
                selected: chosen.as_str(),
            });
        }
        (StoreChoice::Only(chosen), _) => vec![chosen],
        (StoreChoice::Auto, Some(in_file)) => vec![in_file],
        (StoreChoice::Auto, None) => platform_order(),
    };
    for backend in candidates {
        match build(backend, &encrypted, &probe_id) {
            Ok(p) => return Ok(p),
            Err(why) => tried.push((backend.as_str().to_string(), why)),
        }
    }
    if choice == StoreChoice::Auto && file_backend.is_none() && allow_plaintext {
        return Ok(Box::new(PlaintextFile::new(paths.plaintext_cache())));
    }
    Err(unavailable(tried))
}

/// The bytes of the cache file at `path` that one of tokentray's encrypted stores wrote (one
/// `cache reset` kept aside, a corrupt one kept aside, another home's), decrypted with the key
/// its header names while the key store still has it; `None` if `bytes` (the file's content)
/// is not such a file.
///
/// # Errors
/// Those of [`Persistence::load`]: [`Error::KeyLost`] when the key is gone,
/// [`Error::CacheCorrupt`] for a damaged file.
pub fn open_sealed(path: &Path, bytes: &[u8]) -> Option<Result<Zeroizing<Vec<u8>>>> {
    #[cfg(windows)]
    if dpapi::is_dpapi_blob(bytes) {
        return Some(
            DpapiFile::new(path.to_path_buf())
                .load()
                .map(Option::unwrap_or_default),
        );
    }
    let backend = envelope::key_store_tag(bytes).and_then(Backend::from_tag)?;
    let keys = KeyHolder::for_backend(backend)?;
    Some(
        EncryptedFile::new(path.to_path_buf(), keys)
            .load()
            .map(Option::unwrap_or_default),
    )
}

/// A store of `backend`'s kind for other bytes at `path`, with a key of its own named after
/// the path (as a new cache's is): where a helper keeps secrets besides the token cache (the
/// registry tokens of `docker-credential-tokentray`) as safely as the cache. `None` for the
/// in-memory store (nothing is kept).
pub fn beside(backend: Backend, path: PathBuf) -> Option<Box<dyn Persistence>> {
    match backend {
        Backend::Plaintext => Some(Box::new(PlaintextFile::new(path))),
        #[cfg(windows)]
        Backend::Dpapi => Some(Box::new(DpapiFile::new(path))),
        other => KeyHolder::for_backend(other)
            .map(|keys| Box::new(EncryptedFile::new(path, keys)) as Box<dyn Persistence>),
    }
}

fn platform_order() -> Vec<Backend> {
    if cfg!(target_os = "linux") {
        vec![Backend::SecretService, Backend::Keyutils]
    } else if cfg!(target_os = "macos") {
        vec![Backend::Keychain]
    } else if cfg!(windows) {
        vec![Backend::Dpapi]
    } else {
        Vec::new()
    }
}

/// Builds and probes one backend (looking up the key `probe_id`); `Err` says why it is not
/// usable here.
fn build(
    backend: Backend,
    path: &Path,
    probe_id: &str,
) -> std::result::Result<Box<dyn Persistence>, String> {
    #[cfg(windows)]
    if backend == Backend::Dpapi {
        let file = DpapiFile::new(path.with_extension("dpapi"));
        file.probe()?;
        return Ok(Box::new(file));
    }
    let keys = KeyHolder::for_backend(backend).ok_or("not available on this platform")?;
    keys.probe(probe_id)?;
    Ok(Box::new(EncryptedFile::new(path.to_path_buf(), keys)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_choice_names_the_valid_values() {
        assert_eq!("keyutils".parse(), Ok(StoreChoice::Only(Backend::Keyutils)));
        let err = "plain".parse::<StoreChoice>().unwrap_err();
        assert!(err.contains("plaintext") && err.contains("auto"), "{err}");
    }
}
