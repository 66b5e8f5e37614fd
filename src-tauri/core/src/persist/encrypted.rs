//! An AES-256-GCM encrypted cache file whose 256-bit data key lives in an OS key store.
//!
//! # Which key
//! The file's header names its key ([`KeyId`]), so the same key is asked for whatever path the
//! file is opened through: a symlink (`/home` -> `/var/home`), a relative `TOKENTRAY_HOME`, a
//! directory that was moved. A new file's key is named after the file's canonical path
//! ([`super::key_id`]), so every cache directory has its own key. A file written before key ids
//! (format version 1) has its key named after the path it was written through: it is opened with
//! the key named after the path as given, else after the canonical path, whichever the key store
//! holds and fits the file; its next save records that id, and from then on any path works.
//!
//! # A read decides nothing
//! [`Persistence::load`] never moves, changes or replaces the file. The key is *lost* only when
//! the key store answers and holds no key under the id the header names (the kernel keyring
//! after a reboot): [`Error::KeyLost`]. A key store that cannot be reached or is locked is
//! [`Error::KeyStore`]. A version 1 file whose key is under none of the names tried is
//! [`Error::KeyNotFound`], never "lost": its id may have come from another spelling of the path.
//! Writes ([`super::PersistedCache::modify`]) keep a file whose key is lost aside before
//! starting a new cache; [`Error::KeyNotFound`] stops them too.

use std::io::Read as _;
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use super::envelope::{self, KeyId, KeyRef, OpenError};
use super::{Backend, Persistence};
use crate::files;
use crate::paths::canonical;
use crate::secret::DataKey;
use crate::{Error, Result};

/// Where the data key of an [`EncryptedFile`] lives; the key's name there is a [`KeyId`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyHolder {
    /// Secret Service over D-Bus.
    #[cfg(target_os = "linux")]
    SecretService,
    /// The kernel keyring (lost at reboot).
    #[cfg(target_os = "linux")]
    Keyutils,
    /// The macOS login Keychain.
    #[cfg(target_os = "macos")]
    Keychain,
}

// Windows has no key holder (DPAPI encrypts the file itself): there the enum is empty.
#[cfg_attr(windows, allow(unused_variables))]
impl KeyHolder {
    /// The key store behind `backend`, if it is one this platform has.
    pub fn for_backend(backend: Backend) -> Option<Self> {
        match backend {
            #[cfg(target_os = "linux")]
            Backend::SecretService => Some(Self::SecretService),
            #[cfg(target_os = "linux")]
            Backend::Keyutils => Some(Self::Keyutils),
            #[cfg(target_os = "macos")]
            Backend::Keychain => Some(Self::Keychain),
            _ => None,
        }
    }

    /// The backend this key store makes.
    pub fn backend(self) -> Backend {
        match self {
            #[cfg(target_os = "linux")]
            Self::SecretService => Backend::SecretService,
            #[cfg(target_os = "linux")]
            Self::Keyutils => Backend::Keyutils,
            #[cfg(target_os = "macos")]
            Self::Keychain => Backend::Keychain,
        }
    }

    /// `Ok` if usable now (looking up the key `id`); otherwise why not.
    pub fn probe(self, id: &str) -> std::result::Result<(), String> {
        match self {
            #[cfg(target_os = "linux")]
            Self::SecretService => super::SecretServiceKey::new(id).probe(),
            #[cfg(target_os = "linux")]
            Self::Keyutils => super::KernelKey::new(id).probe(),
            #[cfg(target_os = "macos")]
            Self::Keychain => super::KeychainKey::new(id).probe(),
        }
    }

    /// The key named `id`; `None` only if the key store answered that it holds none.
    fn get(self, id: KeyId) -> Result<Option<DataKey>> {
        let id = id.to_string();
        match self {
            #[cfg(target_os = "linux")]
            Self::SecretService => super::SecretServiceKey::new(&id).get(),
            #[cfg(target_os = "linux")]
            Self::Keyutils => super::KernelKey::new(&id).get(),
            #[cfg(target_os = "macos")]
            Self::Keychain => super::KeychainKey::new(&id).get(),
        }
    }

    fn put(self, id: KeyId, key: &DataKey) -> Result<()> {
        let id = id.to_string();
        match self {
            #[cfg(target_os = "linux")]
            Self::SecretService => super::SecretServiceKey::new(&id).put(key),
            #[cfg(target_os = "linux")]
            Self::Keyutils => super::KernelKey::new(&id).put(key),
            #[cfg(target_os = "macos")]
            Self::Keychain => super::KeychainKey::new(&id).put(key),
        }
    }
}

/// What the key store says about a file's key.
enum Lookup {
    /// The key, and the id it is under.
    Found(KeyId, DataKey),
    /// The key store holds no key under the id the file names.
    Lost,
    /// A version 1 file: no key that fits it under any of these ids.
    NotFound(Vec<KeyId>),
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

    /// The ids a version 1 file's key may be under: named after the path as given, then after
    /// the canonical path.
    fn ids_from_path(&self) -> Vec<KeyId> {
        let mut ids = vec![KeyId::of_path(&self.path)];
        let canonical = KeyId::of_path(&canonical(&self.path));
        if !ids.contains(&canonical) {
            ids.push(canonical);
        }
        ids
    }

    /// Looks up the key of the file whose first bytes are `sealed`.
    fn lookup(&self, key_ref: KeyRef, sealed: &[u8]) -> Result<Lookup> {
        match key_ref {
            KeyRef::Named(id) => Ok(match self.keys.get(id)? {
                Some(key) => Lookup::Found(id, key),
                None => Lookup::Lost,
            }),
            KeyRef::FromPath => {
                let tried = self.ids_from_path();
                for &id in &tried {
                    if let Some(key) = self.keys.get(id)?
                        && envelope::fits(&key, sealed)
                    {
                        return Ok(Lookup::Found(id, key));
                    }
                }
                Ok(Lookup::NotFound(tried))
            }
        }
    }

    fn key_lost(&self) -> Error {
        Error::KeyLost {
            backend: self.keys.backend().as_str(),
            path: self.path.clone(),
        }
    }

    fn key_not_found(&self, tried: &[KeyId]) -> Error {
        Error::KeyNotFound {
            backend: self.keys.backend().as_str(),
            path: self.path.clone(),
            tried: tried.iter().map(ToString::to_string).collect(),
        }
    }

    fn unreadable(&self, why: &OpenError) -> Error {
        match why {
            OpenError::Unsupported => Error::invalid(
                format!("token cache {}", self.path.display()),
                "written by a newer tokentray; upgrade tokentray to read it",
            ),
            why => Error::CacheCorrupt {
                reason: why.describe().into(),
                path: self.path.clone(),
            },
        }
    }

    /// The start of the file, enough to know its key: `None` if there is no file.
    fn header(&self) -> Result<Option<Vec<u8>>> {
        let file = match std::fs::File::open(&self.path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io("read", &self.path, e)),
        };
        let mut head = Vec::with_capacity(envelope::MIN_LEN);
        file.take(envelope::MIN_LEN as u64)
            .read_to_end(&mut head)
            .map_err(|e| Error::io("read", &self.path, e))?;
        Ok(Some(head))
    }

    /// The key a save seals with: the current file's, so a save never changes which key the file
    /// needs; with no file, the key named after the canonical path (created if the key store has
    /// none). A file that is not a cache or whose key is lost is kept aside, never overwritten;
    /// one written by a newer tokentray, or whose version 1 key is not found, stops the save.
    fn key_for_save(&self) -> Result<(KeyId, DataKey)> {
        if let Some(head) = self.header()? {
            match envelope::key_ref(&head) {
                Ok(key_ref) => match self.lookup(key_ref, &head)? {
                    Lookup::Found(id, key) => return Ok((id, key)),
                    Lookup::NotFound(tried) => return Err(self.key_not_found(&tried)),
                    Lookup::Lost => {
                        let kept_at = files::move_aside(&self.path, "key-lost")?;
                        tracing::warn!(
                            "the {} has no key for the token cache; the old cache was kept at {}",
                            self.keys.backend().as_str(),
                            kept_at.display()
                        );
                    }
                },
                Err(why @ OpenError::Unsupported) => return Err(self.unreadable(&why)),
                Err(_) => {
                    let kept_at = files::move_aside(&self.path, "corrupt")?;
                    tracing::warn!(
                        "the token cache was not readable; it was kept at {}",
                        kept_at.display()
                    );
                }
            }
        }
        let id = KeyId::of_path(&canonical(&self.path));
        let key = match self.keys.get(id)? {
            Some(key) => key,
            None => {
                let key = DataKey::generate()?;
                self.keys.put(id, &key)?;
                key
            }
        };
        Ok((id, key))
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
        let key_ref = envelope::key_ref(&sealed).map_err(|why| self.unreadable(&why))?;
        let key = match self.lookup(key_ref, &sealed)? {
            Lookup::Found(_, key) => key,
            Lookup::Lost => return Err(self.key_lost()),
            Lookup::NotFound(tried) => return Err(self.key_not_found(&tried)),
        };
        envelope::open(&key, sealed)
            .map(Some)
            .map_err(|why| self.unreadable(&why))
    }

    fn save(&self, bytes: Zeroizing<Vec<u8>>) -> Result<()> {
        let (id, key) = self.key_for_save()?;
        let sealed = envelope::seal(&key, self.backend().tag(), id, bytes)?;
        files::write_atomic_parts(&self.path, &sealed.parts())
    }

    fn move_aside(&self, why: &str) -> Result<Option<PathBuf>> {
        files::move_aside_if_exists(&self.path, why)
    }
}
