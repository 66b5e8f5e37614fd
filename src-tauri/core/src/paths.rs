//! Where tokentray keeps its files.
//!
//! `TOKENTRAY_HOME=DIR` relocates everything (tests and portable setups use it):
//! `DIR/data`, `DIR/config`, `DIR/run`. Otherwise the platform's directories: on Linux
//! `$XDG_DATA_HOME/tokentray`, `$XDG_CONFIG_HOME/tokentray` and `$XDG_RUNTIME_DIR/tokentray`.
//! The runtime directory (`endpoint.json`, with the endpoint secret) belongs in memory: without
//! `$XDG_RUNTIME_DIR` (su, some SSH and container sessions) it is `/run/user/UID/tokentray`
//! when that directory is the user's, else `/dev/shm/tokentray-UID` (tmpfs) when that is free
//! or already the user's and private, and only then `DATA/run` on disk. `tokentray status` says
//! which. Directories are created 0700 and files written 0600 (Unix) by [`crate::files`].
//!
//! A `TOKENTRAY_HOME` that exists must be the user's and not writable by group or others
//! ([`crate::files::check_trusted`]): whoever can change it decides the config (the authority
//! that gets the sign-in) and the cache. It is never chmodded: the user chose it.

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
    /// [`Error::Config`] if no home directory can be determined; [`Error::NotOwner`] or
    /// [`Error::WritableByOthers`] if `TOKENTRAY_HOME` exists and is another user's or writable by
    /// group or others (Unix only).
    pub fn from_env() -> Result<Self> {
        if let Some(home) = std::env::var_os("TOKENTRAY_HOME").filter(|h| !h.is_empty()) {
            let home = Path::new(&home);
            crate::files::check_trusted(home, crate::files::Owner::User)?;
            return Ok(Self::under(home));
        }
        let missing = || Error::Config {
            path: PathBuf::from("$HOME"),
            detail: "no home directory; set TOKENTRAY_HOME to a private directory".into(),
        };
        let data = dirs::data_local_dir()
            .ok_or_else(missing)?
            .join("tokentray");
        let config = dirs::config_dir().ok_or_else(missing)?.join("tokentray");
        let runtime = dirs::runtime_dir()
            .map(|r| r.join("tokentray"))
            .or_else(memory_runtime)
            .unwrap_or_else(|| data.join("run"));
        Ok(Self {
            data,
            config,
            runtime,
        })
    }

    /// Whether the runtime directory (or the nearest existing parent) is in memory (tmpfs),
    /// so `endpoint.json` is gone at reboot; `None` if the system cannot tell.
    pub fn runtime_in_memory(&self) -> Option<bool> {
        #[cfg(target_os = "linux")]
        {
            const TMPFS_MAGIC: i64 = 0x0102_1994;
            let existing = self.runtime.ancestors().find(|p| p.exists())?;
            let fs = rustix::fs::statfs(existing).ok()?;
            #[allow(clippy::useless_conversion)] // f_type's width differs between targets
            Some(i64::from(fs.f_type) == TMPFS_MAGIC)
        }
        #[cfg(not(target_os = "linux"))]
        {
            None
        }
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

    /// The subscriptions the `az` shim listed from Azure Resource Manager, and the default one
    /// (`DATA/subscriptions.json`; see [`crate::subscriptions`]).
    pub fn subscriptions(&self) -> PathBuf {
        self.data.join("subscriptions.json")
    }

    /// The registry tokens `docker-credential-tokentray` got, kept until they expire
    /// (`DATA/registry-tokens.bin`, in the cache's own store kind).
    pub fn registry_tokens(&self) -> PathBuf {
        self.data.join("registry-tokens.bin")
    }

    /// Where `tokentray az-shim --install` puts the `az` shim (`DATA/bin/az`, a link to
    /// tokentray; `az.cmd` on Windows). `tokentray env` puts its directory first on `PATH` while
    /// it exists.
    pub fn az_shim(&self) -> PathBuf {
        self.data
            .join("bin")
            .join(if cfg!(windows) { "az.cmd" } else { "az" })
    }
}

/// The first of `names` in the directories of `PATH`, in order, that is an executable file
/// and that `accept` takes, given its directory and the program's canonical path (what the az
/// shim's hand-over and `kubeconfig convert` look for).
pub fn find_program(names: &[&str], accept: impl Fn(&Path, &Path) -> bool) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| names.iter().map(move |n| (dir.join(n), dir.clone())))
        .find(|(candidate, dir)| {
            candidate
                .canonicalize()
                .is_ok_and(|real| is_executable(&real) && accept(dir, &real))
        })
        .map(|(candidate, _)| candidate)
}

fn is_executable(path: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    }
    #[cfg(not(unix))]
    {
        path.is_file()
    }
}

/// A runtime directory in memory without `$XDG_RUNTIME_DIR` (Linux): `/run/user/UID` if it is
/// the user's, else `/dev/shm/tokentray-UID` if it does not exist yet or is already the user's
/// and private (another user could have made it first: then it is not used).
fn memory_runtime() -> Option<PathBuf> {
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::fs::MetadataExt as _;
        let uid = rustix::process::getuid().as_raw();
        let mine = |p: &Path| {
            std::fs::symlink_metadata(p)
                .is_ok_and(|m| m.is_dir() && m.uid() == uid && m.mode() & 0o077 == 0)
        };
        let run_user = PathBuf::from(format!("/run/user/{uid}"));
        if mine(&run_user) {
            return Some(run_user.join("tokentray"));
        }
        let shm = PathBuf::from(format!("/dev/shm/tokentray-{uid}"));
        let free = std::fs::symlink_metadata(&shm).is_err() && Path::new("/dev/shm").is_dir();
        (free || mine(&shm)).then_some(shm)
    }
    #[cfg(not(target_os = "linux"))]
    {
        None
    }
}

/// `path` with symlinks and `.`/`..` resolved and made absolute, as far as it exists; the part
/// that does not exist yet is appended as written. Two spellings of one file give one result.
pub fn canonical(path: &Path) -> PathBuf {
    let mut missing = Vec::new();
    let mut at = path;
    loop {
        let existing = if at.as_os_str().is_empty() {
            Path::new(".")
        } else {
            at
        };
        if let Ok(real) = std::fs::canonicalize(existing) {
            return missing.iter().rev().fold(real, |p, name| p.join(name));
        }
        match (at.parent(), at.file_name()) {
            (Some(parent), Some(name)) => {
                missing.push(name.to_os_string());
                at = parent;
            }
            _ => return std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf()),
        }
    }
}

// Symlinks are made with `std::os::unix`.
#[cfg(all(test, unix))]
mod tests {
    use super::*;

    #[test]
    fn canonical_resolves_symlinks_and_relative_spellings_of_one_file() {
        let dir = tempfile::tempdir().unwrap();
        let real = canonical(dir.path()).join("real");
        std::fs::create_dir(&real).unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        let file = real.join("data/cache.bin");
        assert_eq!(canonical(&file), file, "missing parts are appended");
        assert_eq!(canonical(&link.join("data/cache.bin")), file);
        assert_eq!(canonical(&real.join("../real/./data/cache.bin")), file);
        let cwd = std::env::current_dir().unwrap();
        let relative = PathBuf::from("some-missing-dir/cache.bin");
        assert_eq!(canonical(&relative), canonical(&cwd).join(&relative));
    }
}
