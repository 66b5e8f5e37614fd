//! `tokentray` with no subcommand: starts the tray app.
//!
//! The app is a second binary, [`APP`], installed next to `tokentray` (the package puts both in
//! one directory; `cargo build --workspace` both in `target/<profile>/`). The CLI links no GUI
//! library, so it cannot be the app itself. On Unix it replaces this process (`exec`), so the
//! app keeps the terminal, its logs and Ctrl-C, as if it had been started directly; on Windows
//! it is started and `tokentray` returns.

use std::path::{Path, PathBuf};

use crate::{Error, Result};

/// The tray app's file name.
pub const APP: &str = if cfg!(windows) {
    "tokentray-app.exe"
} else {
    "tokentray-app"
};

/// Starts the tray app, if there is a display to show it on. On Unix it returns only if the app
/// could not be started; on Windows once it has been.
///
/// # Errors
/// [`Error::NoDisplay`], [`Error::AppNotFound`], or the OS's reason it could not start.
pub(super) fn start() -> Result<()> {
    if !has_display(|name| std::env::var_os(name)) {
        return Err(Error::NoDisplay);
    }
    let exe = std::env::current_exe().map_err(|e| Error::io("find", "tokentray", e))?;
    let path = beside(&exe);
    if !path.is_file() {
        return Err(Error::AppNotFound { path });
    }
    let mut command = std::process::Command::new(&path);
    command.args(std::env::args_os().skip(1));
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt as _;
        Err(Error::io("start", path, command.exec()))
    }
    #[cfg(not(unix))]
    {
        command
            .spawn()
            .map(drop)
            .map_err(|e| Error::io("start", path, e))
    }
}

/// Where the app is: [`APP`] in the directory of the running `tokentray`, `exe`.
fn beside(exe: &Path) -> PathBuf {
    exe.with_file_name(APP)
}

/// Whether a window can be shown: on Linux and the BSDs an X11 (`DISPLAY`) or Wayland
/// (`WAYLAND_DISPLAY`) session, from the environment `var` reads; macOS and Windows always have
/// one for a logged-in user.
fn has_display(var: impl Fn(&str) -> Option<std::ffi::OsString>) -> bool {
    if cfg!(any(windows, target_os = "macos")) {
        return true;
    }
    ["DISPLAY", "WAYLAND_DISPLAY"]
        .into_iter()
        .any(|name| var(name).is_some_and(|v| !v.is_empty()))
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    #[test]
    fn the_app_is_looked_for_next_to_the_cli() {
        assert_eq!(
            beside(Path::new("/usr/bin/tokentray")),
            Path::new("/usr/bin").join(APP)
        );
    }

    #[test]
    #[cfg(not(any(windows, target_os = "macos")))]
    fn a_display_is_an_x11_or_wayland_session() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| std::ffi::OsString::from(v))
            }
        };
        assert!(has_display(env(&[("DISPLAY", ":0")])));
        assert!(has_display(env(&[("WAYLAND_DISPLAY", "wayland-0")])));
        assert!(!has_display(env(&[])), "SSH, containers, servers");
        assert!(!has_display(env(&[("DISPLAY", "")])));
    }
}
