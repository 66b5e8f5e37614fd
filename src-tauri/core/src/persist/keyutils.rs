//! The data key in the Linux kernel keyring (`keyctl`), for hosts without a Secret Service:
//! SSH sessions, WSL, containers, CI.
//!
//! # Persistence
//! **The key lives in kernel memory only and dies at reboot** (and may go when the last process
//! of the user exits). The encrypted cache file stays on disk, but without its key it cannot be
//! read: tokentray then reports the cache as "locked: key lost" and leaves the file as it is; the
//! next sign-in keeps the old file aside (it is never overwritten or deleted) and starts a new
//! cache.
//!
//! The key is a `user` key in the user keyring (`@u`) with permissions for the possessor and the
//! user (view, read, write, search, setattr), so every session of the same uid can read it and
//! no other uid can. Docker's default seccomp profile blocks `keyctl`; `auto` then fails closed.

use linux_keyutils::{KeyError, KeyPermissionsBuilder, KeyRing, KeyRingIdentifier, Permission};

use crate::secret::DataKey;
use crate::{Error, Result};

const BACKEND: &str = "keyutils";

/// One data key in the user keyring.
#[derive(Debug, Clone)]
pub struct KernelKey {
    description: String,
}

impl KernelKey {
    /// The key named `id` (the key id a cache file's header records; see
    /// [`super::key_id`]).
    pub fn new(id: &str) -> Self {
        Self {
            description: format!("tokentray:cache-key:{id}"),
        }
    }

    /// The key's description in the keyring (tests use it to clean up).
    pub fn description(&self) -> &str {
        &self.description
    }

    /// `Ok` if the kernel keyring can be used; otherwise why not.
    pub fn probe(&self) -> std::result::Result<(), String> {
        self.get().map(drop).map_err(|e| e.to_string())
    }

    fn ring() -> Result<KeyRing> {
        KeyRing::from_special_id(KeyRingIdentifier::User, true).map_err(fail)
    }

    /// The key, `None` if there is none (never stored, or lost at reboot).
    ///
    /// # Errors
    /// [`Error::KeyStore`] if the keyring cannot be used or holds a malformed key.
    pub fn get(&self) -> Result<Option<DataKey>> {
        let key = match Self::ring()?.search(&self.description) {
            Ok(key) => key,
            Err(KeyError::KeyDoesNotExist | KeyError::KeyExpired | KeyError::KeyRevoked) => {
                return Ok(None);
            }
            Err(e) => return Err(fail(e)),
        };
        let bytes = zeroize::Zeroizing::new(key.read_to_vec().map_err(fail)?);
        DataKey::from_slice(&bytes)
            .map(Some)
            .ok_or_else(|| Error::KeyStore {
                backend: BACKEND,
                reason: format!(
                    "the key {:?} is not 256 bits; remove it with `keyctl purge user {}`",
                    self.description, self.description
                ),
            })
    }

    /// Stores `key` (replacing any previous one) readable by every process of this uid.
    ///
    /// # Errors
    /// [`Error::KeyStore`].
    pub fn put(&self, key: &DataKey) -> Result<()> {
        let stored = Self::ring()?
            .add_key(&self.description, key.expose())
            .map_err(fail)?;
        let perms = KeyPermissionsBuilder::builder()
            .posessor(Permission::ALL)
            .user(
                Permission::VIEW
                    | Permission::READ
                    | Permission::WRITE
                    | Permission::SEARCH
                    | Permission::SETATTR,
            )
            .build();
        stored.set_perms(perms).map_err(fail)
    }

    /// Removes the key (tests; `cache reset`).
    ///
    /// # Errors
    /// [`Error::KeyStore`] other than "no such key".
    pub fn delete(&self) -> Result<()> {
        match Self::ring()?.search(&self.description) {
            Ok(key) => key.invalidate().map_err(fail),
            Err(KeyError::KeyDoesNotExist) => Ok(()),
            Err(e) => Err(fail(e)),
        }
    }
}

fn fail(e: KeyError) -> Error {
    let hint = match e {
        KeyError::OperationNotSupported | KeyError::PermissionDenied | KeyError::AccessDenied => {
            " (keyctl is blocked here, e.g. by a container's seccomp profile)"
        }
        _ => "",
    };
    Error::KeyStore {
        backend: BACKEND,
        reason: format!("kernel keyring: {e}{hint}"),
    }
}
