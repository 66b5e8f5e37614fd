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

    /// The current cache, read under the lock. A read never moves, changes or replaces the file.
    ///
    /// # Errors
    /// [`Error::CacheCorrupt`] and [`Error::KeyLost`] (the file is left as it is; the next write
    /// keeps it aside), [`Error::KeyNotFound`], [`Error::KeyStore`], [`Error::LockTimeout`],
    /// [`Error::Io`].
    pub fn read(&self) -> Result<TokenCache> {
        let _guard = self.lock()?;
        self.load()
    }

    fn load(&self) -> Result<TokenCache> {
        let Some(bytes) = self.persistence.load()? else {
            return Ok(TokenCache::new());
        };
        TokenCache::from_json(&bytes, "token cache").map_err(|e| Error::CacheCorrupt {
            reason: match e {
                Error::InvalidInput { detail, .. } => detail,
                other => other.to_string(),
            },
            path: self.location().to_path_buf(),
        })
    }

    /// [`PersistedCache::load`] for a write: a file the next write replaces (its key is lost, or
    /// it is unreadable) is kept aside now, with a warning that says where, and the write starts
    /// from an empty cache. Anything else (a key store that does not answer, a key not found
    /// under the names tried) stops the write with the file untouched.
    fn load_for_write(&self) -> Result<TokenCache> {
        match self.load() {
            Err(e) => {
                let Some((why, reason)) = replaced_by_next_write(&e) else {
                    return Err(e);
                };
                if let Some(kept_at) = self.persistence.move_aside(why)? {
                    tracing::warn!(
                        "the token cache could not be read ({reason}); it was kept at {} and a \
                         new cache is started",
                        kept_at.display()
                    );
                }
                Ok(TokenCache::new())
            }
            ok => ok,
        }
    }

    /// Applies `change` to the freshest cache and saves it, all under the lock. Access tokens
    /// that expired before `now` are dropped, as MSAL does. If `change` fails nothing is saved.
    /// A file whose key is lost or that is unreadable is kept aside (renamed, never deleted) and
    /// `change` starts from an empty cache.
    ///
    /// # Errors
    /// [`Error::KeyNotFound`], [`Error::KeyStore`], [`Error::LockTimeout`], [`Error::Io`], and
    /// `change`'s own.
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
        let mut cache = self.load_for_write()?;
        let out = change(&mut cache)?;
        cache.remove_expired(now);
        self.persistence.save(cache.to_file_json())?;
        Ok((out, cache, self.stamp()))
    }

    /// The cache as read under the lock, with its [`Stamp`]: the read of the cache's owner (a
    /// running instance, or a command that may sign in or refresh). Like
    /// [`PersistedCache::read`] it changes nothing, but a file the next write replaces (its key
    /// is lost, or it is unreadable) reads as an empty cache, with a warning that says why, so
    /// that signing in again is possible.
    ///
    /// # Errors
    /// [`Error::KeyNotFound`], [`Error::KeyStore`], [`Error::LockTimeout`], [`Error::Io`].
    pub fn read_stamped(&self) -> Result<(TokenCache, Option<Stamp>)> {
        let _guard = self.lock()?;
        let cache = match self.load() {
            Err(e) if replaced_by_next_write(&e).is_some() => {
                tracing::warn!("{e}");
                TokenCache::new()
            }
            other => other?,
        };
        Ok((cache, self.stamp()))
    }

    /// Identifies the file's current version (modification time, size, inode; on Windows the
    /// file index): a changed stamp means another process wrote it. `None` if there is no file.
    pub fn stamp(&self) -> Option<Stamp> {
        let meta = std::fs::metadata(self.location()).ok()?;
        #[cfg(unix)]
        let inode = std::os::unix::fs::MetadataExt::ino(&meta);
        #[cfg(windows)]
        let inode = crate::files::file_index(self.location()).unwrap_or(0);
        #[cfg(not(any(unix, windows)))]
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

/// For an error about a file the next write replaces: how it is named when kept aside
/// (`cache.bin.<why>-<time>`) and what is wrong with it; `None` for any other error.
fn replaced_by_next_write(e: &Error) -> Option<(&'static str, String)> {
    match e {
        Error::KeyLost { backend, .. } => {
            Some(("key-lost", format!("the {backend} no longer holds its key")))
        }
        Error::CacheCorrupt { reason, .. } => Some(("corrupt", reason.clone())),
        _ => None,
    }
}
