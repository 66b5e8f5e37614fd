//! Running the `tokentray` binary in an isolated `TOKENTRAY_HOME`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The workspace root.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// The target directory cargo builds into.
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"))
}

/// The `tokentray` binary under test: `$TOKENTRAY_BIN`, else `target/debug/tokentray`.
///
/// The Tauri shell is not a default member (it needs webkit to build), so `make test` builds it
/// first; run `cargo build -p tokentray` if this fails.
pub fn tokentray_bin() -> PathBuf {
    let bin = std::env::var_os("TOKENTRAY_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| target_dir().join("debug").join("tokentray"));
    assert!(
        bin.exists(),
        "{} is missing: build it with `cargo build -p tokentray` (or run `make test`)",
        bin.display()
    );
    bin
}

/// A private tokentray home for one test, and commands that run in it.
pub struct Home {
    /// Keeps the directory alive.
    pub dir: tempfile::TempDir,
    /// Extra environment for every command.
    pub env: Vec<(String, String)>,
}

impl Home {
    /// A fresh home with the given store (`keyutils`, `secret-service`, `plaintext`, `auto`).
    pub fn new(store: &str) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("tokentray-test-")
            .tempdir()
            .unwrap();
        Self {
            dir,
            env: vec![("TOKENTRAY_STORE".into(), store.into())],
        }
    }

    /// `TOKENTRAY_HOME`.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The data directory.
    pub fn data(&self) -> PathBuf {
        self.path().join("data")
    }

    /// A `tokentray` command in this home.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(tokentray_bin());
        cmd.args(args)
            .env("TOKENTRAY_HOME", self.path())
            .env_remove("TOKENTRAY_LOG");
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        cmd
    }

    /// Runs `tokentray ARGS` and returns its output.
    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().unwrap()
    }

    /// Runs `tokentray ARGS`, asserts success, returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "tokentray {args:?} failed ({}):\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }
}
