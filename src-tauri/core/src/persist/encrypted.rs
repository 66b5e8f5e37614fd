//! An AES-256-GCM encrypted cache file whose 256-bit data key lives in an OS key store.

use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use super::{Backend, Persistence, envelope};
use crate::files;
use crate::secret::DataKey;
use crate::{Error, Result};

/// Where the data key of an [`EncryptedFile`] lives.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum KeyHolder {
    /// Secret Service over D-Bus.
    #[cfg(target_os = "linux")]
    SecretService(super::secret_service::SecretServiceKey),
    /// The kernel keyring (lost at reboot).
    #[cfg(target_os = "linux")]
    Keyutils(super::keyutils::KernelKey),
    /// The macOS login Keychain.
    #[cfg(target_os = "macos")]
    Keychain(super::keychain::KeychainKey),
}

impl KeyHolder {
    /// The backend this key store makes.
    pub fn backend(&self) -> Backend {
        match self {
            #[cfg(target_os = "linux")]
            Self::SecretService(_) => Backend::SecretService,
            #[cfg(target_os = "linux")]
            Self::Keyutils(_) => Backend::Keyutils,
            #[cfg(target_os = "macos")]
            Self::Keychain(_) => Backend::Keychain,
        }
    }

    /// `Ok` if usable now; otherwise why not.
    pub fn probe(&self) -> std::result::Result<(), String> {
        match self {
            #[cfg(target_os = "linux")]
            Self::SecretService(k) => k.probe(),
            #[cfg(target_os = "linux")]
            Self::Keyutils(k) => k.probe(),
            #[cfg(target_os = "macos")]
            Self::Keychain(k) => k.probe(),
        }
    }

    fn get(&self) -> Result<Option<DataKey>> {
        match self {
            #[cfg(target_os = "linux")]
            Self::SecretService(k) => k.get(),
            #[cfg(target_os = "linux")]
            Self::Keyutils(k) => k.get(),
            #[cfg(target_os = "macos")]
            Self::Keychain(k) => k.get(),
        }
    }

    fn put(&self, key: &DataKey) -> Result<()> {
        match self {
            #[cfg(target_os = "linux")]
            Self::SecretService(k) => k.put(key),
            #[cfg(target_os = "linux")]
            Self::Keyutils(k) => k.put(key),
            #[cfg(target_os = "macos")]
            Self::Keychain(k) => k.put(key),
        }
    }
}

/// The encrypted cache file (format: [`envelope`]).
#[derive(Debug)]
pub struct EncryptedFile {
    path: PathBuf,
    keys: KeyHolder,
}

impl EncryptedFile {
    /// The store at `path` with its key in `keys`.
    pub fn new(path: PathBuf, keys: KeyHolder) -> Self {
        Self { path, keys }
    }

    fn key_lost(&self) -> Result<Error> {
        let kept_at = files::move_aside(&self.path, "key-lost")?;
        tracing::warn!(
            "the {} has no key for the token cache; the old cache was kept at {}",
            self.keys.backend().as_str(),
            kept_at.display()
        );
        Ok(Error::KeyLost {
            backend: self.keys.backend().as_str(),
            kept_at,
        })
    }
}

impl Persistence for EncryptedFile {
    fn backend(&self) -> Backend {
        self.keys.backend()
    }

    fn location(&self) -> &Path {
        &self.path
    }

    fn load(&self) -> Result<Option<Zeroizing<Vec<u8>>>> {
        let Some(sealed) = files::read_private(&self.path)? else {
            return Ok(None);
        };
        let Some(key) = self.keys.get()? else {
            return Err(self.key_lost()?);
        };
        match envelope::open(&key, &sealed) {
            Ok(plain) => Ok(Some(plain)),
            Err(envelope::OpenError::Unsupported) => Err(Error::invalid(
                format!("token cache {}", self.path.display()),
                "written by a newer tokentray; upgrade tokentray to read it",
            )),
            Err(why) => {
                let kept_at = files::move_aside(&self.path, "corrupt")?;
                Err(Error::CacheCorrupt {
                    reason: why.describe().into(),
                    kept_at,
                })
            }
        }
    }

    fn save(&self, bytes: &[u8]) -> Result<()> {
        let key = match self.keys.get()? {
            Some(key) => key,
            None => {
                // A file without its key is never overwritten: it goes aside first.
                if self.path.exists() {
                    let _ = self.key_lost()?;
                }
                let key = DataKey::generate()?;
                self.keys.put(&key)?;
                key
            }
        };
        files::write_atomic(
            &self.path,
            &envelope::seal(&key, self.backend().tag(), bytes)?,
        )
    }

    fn move_aside(&self, why: &str) -> Result<Option<PathBuf>> {
        files::move_aside_if_exists(&self.path, why)
    }
}
