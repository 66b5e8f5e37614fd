//! The cache as a plain JSON file (mode 0600), only by explicit opt-in
//! (`TOKENTRAY_STORE=plaintext` or `allow_unencrypted_storage = true`).
//!
//! # Persistence
//! A file on disk: **survives reboots**, readable by anyone who can read the disk as this user
//! (backups included). tokentray warns at every start while it is in use.

use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use super::{Backend, Persistence};
use crate::Result;
use crate::files;

/// The unencrypted cache file.
#[derive(Debug)]
pub struct PlaintextFile {
    path: PathBuf,
}

impl PlaintextFile {
    /// The store at `path`; logs the plaintext warning.
    pub fn new(path: PathBuf) -> Self {
        tracing::warn!(
            "WARNING: tokens are stored UNENCRYPTED in {} (plaintext storage was explicitly \
             allowed). Anyone who can read this file can use your accounts",
            path.display()
        );
        Self { path }
    }
}

impl Persistence for PlaintextFile {
    fn backend(&self) -> Backend {
        Backend::Plaintext
    }

    fn location(&self) -> &Path {
        &self.path
    }

    fn load(&self) -> Result<Option<Zeroizing<Vec<u8>>>> {
        files::read_private(&self.path)
    }

    fn save(&self, bytes: Zeroizing<Vec<u8>>) -> Result<()> {
        files::write_atomic(&self.path, &bytes)
    }

    fn move_aside(&self, why: &str) -> Result<Option<PathBuf>> {
        files::move_aside_if_exists(&self.path, why)
    }
}
