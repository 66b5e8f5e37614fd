//! The data key as a generic password item in the macOS login Keychain (security-framework).
//!
//! # Persistence
//! The login Keychain is a file on disk encrypted with the user's login password: the key
//! **survives reboots**. macOS may ask the user to allow access when the binary's signature
//! changes; each item is read at most once per process ([`super::key_memo`]), so a build that
//! is not signed with a stable Developer ID asks once per run, not once per read.
//!
//! Verified how: type-checked for `aarch64-apple-darwin`; the memo is unit-tested on Linux.

use security_framework::passwords::{get_generic_password, set_generic_password};

use super::key_memo::KeyMemo;
use crate::secret::DataKey;
use crate::{Error, Result};

/// The keys this process has read or written.
static READ: KeyMemo = KeyMemo::new();

const SERVICE: &str = "tokentray";
const BACKEND: &str = "keychain";
/// errSecItemNotFound
const NOT_FOUND: i32 = -25300;

/// One data key item in the login Keychain.
#[derive(Debug, Clone)]
pub struct KeychainKey {
    account: String,
}

impl KeychainKey {
    /// The item for the key named `id` (the key id a cache file's header records; see
    /// [`super::key_id`]).
    pub fn new(id: &str) -> Self {
        Self {
            account: format!("cache-key:{id}"),
        }
    }

    /// `Ok` if the Keychain answers; otherwise why not.
    pub fn probe(&self) -> std::result::Result<(), String> {
        self.get().map(drop).map_err(|e| e.to_string())
    }

    /// The key, `None` if there is none.
    ///
    /// # Errors
    /// [`Error::KeyStore`].
    pub fn get(&self) -> Result<Option<DataKey>> {
        READ.get(&self.account, || self.read())
    }

    /// The key as the Keychain holds it now (one read, maybe one prompt).
    fn read(&self) -> Result<Option<DataKey>> {
        match get_generic_password(SERVICE, &self.account) {
            Ok(bytes) => {
                let bytes = zeroize::Zeroizing::new(bytes);
                DataKey::from_slice(&bytes)
                    .map(Some)
                    .ok_or_else(|| Error::KeyStore {
                        backend: BACKEND,
                        reason: "the Keychain item does not hold a 256-bit key; delete it in \
                             Keychain Access and sign in again"
                            .into(),
                    })
            }
            Err(e) if e.code() == NOT_FOUND => Ok(None),
            Err(e) => Err(Error::KeyStore {
                backend: BACKEND,
                reason: e.to_string(),
            }),
        }
    }

    /// Stores `key`, replacing any previous one.
    ///
    /// # Errors
    /// [`Error::KeyStore`].
    pub fn put(&self, key: &DataKey) -> Result<()> {
        READ.put(&self.account, key, || {
            set_generic_password(SERVICE, &self.account, key.expose()).map_err(|e| {
                Error::KeyStore {
                    backend: BACKEND,
                    reason: e.to_string(),
                }
            })
        })
    }
}
