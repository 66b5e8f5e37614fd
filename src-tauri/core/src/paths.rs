//! Where tokentray keeps its files.
//!
//! `TOKENTRAY_HOME=DIR` relocates everything (tests and portable setups use it):
//! `DIR/data`, `DIR/config`, `DIR/run`. Otherwise the platform's directories: on Linux
//! `$XDG_DATA_HOME/tokentray`, `$XDG_CONFIG_HOME/tokentray` and `$XDG_RUNTIME_DIR/tokentray`.
//! Directories are created 0700 and files written 0600 (Unix).

use std::path::{Path, PathBuf};

use crate::{Error, Result};

/// The directories tokentray uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paths {
    /// The token cache and its lock.
    pub data: PathBuf,
    /// `config.toml`.
    pub config: PathBuf,
    /// Per-boot state of a running instance (endpoint discovery).
    pub runtime: PathBuf,
}

impl Paths {
    /// Resolves the directories from `TOKENTRAY_HOME` or the platform defaults. Creates nothing.
    ///
    /// # Errors
    /// [`Error::Config`] if no home directory can be determined.
    pub fn from_env() -> Result<Self> {
        if let Some(home) = std::env::var_os("TOKENTRAY_HOME").filter(|h| !h.is_empty()) {
            return Ok(Self::under(Path::new(&home)));
        }
        let missing = || Error::Config {
            path: PathBuf::from("$HOME"),
            detail: "no home directory; set TOKENTRAY_HOME to a private directory".into(),
        };
        let data = dirs::data_local_dir()
            .ok_or_else(missing)?
            .join("tokentray");
        let config = dirs::config_dir().ok_or_else(missing)?.join("tokentray");
        let runtime = dirs::runtime_dir().map_or_else(|| data.join("run"), |r| r.join("tokentray"));
        Ok(Self {
            data,
            config,
            runtime,
        })
    }

    /// All directories under one root.
    pub fn under(root: &Path) -> Self {
        Self {
            data: root.join("data"),
            config: root.join("config"),
            runtime: root.join("run"),
        }
    }

    /// `config.toml`.
    pub fn config_file(&self) -> PathBuf {
        self.config.join("config.toml")
    }

    /// The encrypted cache file.
    pub fn encrypted_cache(&self) -> PathBuf {
        self.data.join("cache.bin")
    }

    /// The plaintext cache file (only with explicit opt-in).
    pub fn plaintext_cache(&self) -> PathBuf {
        self.data.join("cache.json")
    }

    /// The cross-process lock of the cache.
    pub fn lock_file(&self) -> PathBuf {
        self.data.join("cache.lock")
    }
}

/// Creates `dir` (and parents) if missing and makes it private (0700), fixing wider modes.
///
/// # Errors
/// [`Error::Io`] on failure; [`Error::NotOwner`] if another user owns it.
pub fn ensure_private_dir(dir: &Path) -> Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder
        .create(dir)
        .map_err(|e| Error::io("create directory", dir, e))?;
    restrict(dir, 0o700)
}

/// Checks that an existing file is ours and private; fixes a wider mode to 0600 and says so in a
/// warning (the contents may have been readable by others).
///
/// # Errors
/// [`Error::NotOwner`] if another user owns it; [`Error::Io`] if it cannot be fixed.
pub fn ensure_private_file(file: &Path) -> Result<()> {
    restrict(file, 0o600)
}

#[cfg(unix)]
fn restrict(path: &Path, mode: u32) -> Result<()> {
    use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
    let meta = std::fs::metadata(path).map_err(|e| Error::io("inspect", path, e))?;
    let me = rustix::process::geteuid().as_raw();
    if meta.uid() != me {
        return Err(Error::NotOwner {
            path: path.into(),
            owner: meta.uid(),
            me,
        });
    }
    let current = meta.mode() & 0o777;
    if current & !mode != 0 {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
            .map_err(|e| Error::io("restrict permissions of", path, e))?;
        tracing::warn!(
            "fixed permissions of {}: was {current:04o}, now {mode:04o}. Other users may have \
             been able to read it before",
            path.display()
        );
    }
    Ok(())
}

#[cfg(not(unix))]
fn restrict(_path: &Path, _mode: u32) -> Result<()> {
    // Windows: files under the user's profile inherit its owner-only ACL.
    Ok(())
}
