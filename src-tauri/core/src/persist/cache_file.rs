//! [`PersistedCache`]: the token cache on disk, safe against concurrent writers and crashes.

use std::path::{Path, PathBuf};

use super::{Backend, Memory, Persistence};
use crate::cache::{Counts, TokenCache};
use crate::files::{self, ensure_private_dir};
use crate::paths::Paths;
use crate::{Error, Result};

/// The persisted token cache.
///
/// Every operation takes the cross-process lock and reloads from disk first, so the tray app and
/// any number of CLI processes writing at once lose nothing (the failure mode of shared MSAL
/// caches, ENTRA-PROTOCOL.md section 8). Writes are atomic: a crash at any moment leaves the last
/// completed write.
#[derive(Debug)]
pub struct PersistedCache {
    persistence: Box<dyn Persistence>,
    lock: Option<PathBuf>,
}

/// A version of the cache file, cheap to compare (see [`PersistedCache::stamp`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    modified: Option<std::time::SystemTime>,
    len: u64,
    inode: u64,
}

/// What `tokentray status` reports about the store.
#[derive(Debug, Clone, serde::Serialize)]
pub struct StoreStatus {
    /// Backend in use.
    pub backend: Backend,
    /// Whether tokens are encrypted at rest.
    pub encrypted: bool,
    /// What survives a reboot.
    pub persistence: &'static str,
    /// The cache file.
    pub location: PathBuf,
    /// Entries per section.
    pub counts: Counts,
    /// Files moved aside (corrupt, key lost, reset), oldest first.
    pub moved_aside: Vec<PathBuf>,
}

impl PersistedCache {
    /// Opens the backend `choice` names under `paths` (creating the data directory 0700); see
    /// [`super::open`] for `allow_plaintext` and `config_file`.
    ///
    /// # Errors
    /// See [`super::open`]; [`Error::Io`] for the data directory.
    pub fn open(
        paths: &Paths,
        choice: super::StoreChoice,
        allow_plaintext: bool,
        config_file: &Path,
    ) -> Result<Self> {
        ensure_private_dir(&paths.data)?;
        let persistence = super::open(paths, choice, allow_plaintext, config_file)?;
        Ok(Self::new(persistence, Some(paths.lock_file())))
    }

    /// A store over any persistence; `lock` is the lock file (`None`: in-process use only).
    pub fn new(persistence: Box<dyn Persistence>, lock: Option<PathBuf>) -> Self {
        Self { persistence, lock }
    }

    /// An in-memory store (tests).
    pub fn in_memory() -> Self {
        Self::new(Box::new(Memory::default()), None)
    }

    /// The backend in use.
    pub fn backend(&self) -> Backend {
        self.persistence.backend()
    }

    /// The cache file.
    pub fn location(&self) -> &Path {
        self.persistence.location()
    }

    fn lock(&self) -> Result<Option<files::Lock>> {
        self.lock.as_deref().map(files::Lock::acquire).transpose()
    }

    /// The current cache, read under the lock.
    ///
    /// # Errors
    /// [`Error::CacheCorrupt`] (the file went aside; the next call starts empty),
    /// [`Error::KeyLost`], [`Error::KeyStore`], [`Error::LockTimeout`], [`Error::Io`].
    pub fn read(&self) -> Result<TokenCache> {
        let _guard = self.lock()?;
        self.load()
    }

    fn load(&self) -> Result<TokenCache> {
        let Some(bytes) = self.persistence.load()? else {
            return Ok(TokenCache::new());
        };
        TokenCache::from_json(&bytes, "token cache").or_else(|e| {
            let reason = match e {
                Error::InvalidInput { detail, .. } => detail,
                other => other.to_string(),
            };
            match self.persistence.move_aside("corrupt")? {
                Some(kept_at) => Err(Error::CacheCorrupt { reason, kept_at }),
                None => Err(Error::invalid("token cache", reason)),
            }
        })
    }

    /// Applies `change` to the freshest cache and saves it, all under the lock. Access tokens
    /// that expired before `now` are dropped, as MSAL does. If `change` fails nothing is saved.
    ///
    /// # Errors
    /// Those of [`PersistedCache::read`], `change`'s own, and [`Error::KeyStore`] / [`Error::Io`] on save.
    pub fn modify<T>(
        &self,
        now: i64,
        change: impl FnOnce(&mut TokenCache) -> Result<T>,
    ) -> Result<T> {
        self.update(now, change).map(|(out, _, _)| out)
    }

    /// [`PersistedCache::modify`], also returning the cache as saved and its [`Stamp`].
    ///
    /// # Errors
    /// As [`PersistedCache::modify`].
    pub fn update<T>(
        &self,
        now: i64,
        change: impl FnOnce(&mut TokenCache) -> Result<T>,
    ) -> Result<(T, TokenCache, Option<Stamp>)> {
        let _guard = self.lock()?;
        let mut cache = self.load()?;
        let out = change(&mut cache)?;
        cache.remove_expired(now);
        self.persistence.save(&cache.to_file_json())?;
        Ok((out, cache, self.stamp()))
    }

    /// The cache as read under the lock, with its [`Stamp`].
    ///
    /// # Errors
    /// As [`PersistedCache::read`].
    pub fn read_stamped(&self) -> Result<(TokenCache, Option<Stamp>)> {
        let _guard = self.lock()?;
        Ok((self.load()?, self.stamp()))
    }

    /// Identifies the file's current version (modification time, size, inode): a changed stamp
    /// means another process wrote it. `None` if there is no file.
    pub fn stamp(&self) -> Option<Stamp> {
        let meta = std::fs::metadata(self.location()).ok()?;
        #[cfg(unix)]
        let inode = std::os::unix::fs::MetadataExt::ino(&meta);
        #[cfg(not(unix))]
        let inode = 0;
        Some(Stamp {
            modified: meta.modified().ok(),
            len: meta.len(),
            inode,
        })
    }

    /// Moves the cache file aside (kept, not deleted) so the next write starts a new cache.
    ///
    /// # Errors
    /// [`Error::LockTimeout`], [`Error::Io`].
    pub fn reset(&self) -> Result<Option<PathBuf>> {
        let _guard = self.lock()?;
        self.persistence.move_aside("reset")
    }

    /// Backend, location, counts and moved-aside files.
    ///
    /// # Errors
    /// Those of [`PersistedCache::read`].
    pub fn status(&self) -> Result<StoreStatus> {
        let counts = self.read()?.counts();
        let backend = self.backend();
        Ok(StoreStatus {
            backend,
            encrypted: backend.encrypted(),
            persistence: backend.persistence(),
            location: self.location().to_path_buf(),
            counts,
            moved_aside: files::moved_aside(self.location()),
        })
    }
}
