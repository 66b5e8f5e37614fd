//! The cache file encrypted with Windows DPAPI (user scope), like MSAL's Windows persistence.
//!
//! # Persistence
//! DPAPI derives its key from the user's logon credentials: the file **survives reboots** and
//! can be decrypted only by the same Windows user (on the same machine, unless roaming profiles
//! carry the master key).

use std::path::{Path, PathBuf};

use windows_dpapi::{Scope, decrypt_data, encrypt_data};
use zeroize::Zeroizing;

use super::{Backend, Persistence};
use crate::files;
use crate::{Error, Result};

/// Entropy mixed into every blob so other DPAPI users of this account cannot open it by accident.
const ENTROPY: &[u8] = b"tokentray token cache v1";

/// The DPAPI-protected cache file.
#[derive(Debug)]
pub struct DpapiFile {
    path: PathBuf,
}

impl DpapiFile {
    /// The store at `path`.
    pub fn new(path: PathBuf) -> Self {
        Self { path }
    }
}

impl Persistence for DpapiFile {
    fn backend(&self) -> Backend {
        Backend::Dpapi
    }

    fn location(&self) -> &Path {
        &self.path
    }

    fn load(&self) -> Result<Option<Zeroizing<Vec<u8>>>> {
        let Some(blob) = files::read_private(&self.path)? else {
            return Ok(None);
        };
        match decrypt_data(&blob, Scope::User, Some(ENTROPY)) {
            Ok(plain) => Ok(Some(Zeroizing::new(plain))),
            Err(e) => Err(Error::CacheCorrupt {
                reason: format!("DPAPI could not decrypt it: {e}"),
                path: self.path.clone(),
            }),
        }
    }

    fn save(&self, bytes: &[u8]) -> Result<()> {
        let blob =
            encrypt_data(bytes, Scope::User, Some(ENTROPY)).map_err(|e| Error::KeyStore {
                backend: "dpapi",
                reason: e.to_string(),
            })?;
        files::write_atomic(&self.path, &blob)
    }

    fn move_aside(&self, why: &str) -> Result<Option<PathBuf>> {
        files::move_aside_if_exists(&self.path, why)
    }
}
