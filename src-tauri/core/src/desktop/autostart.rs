//! Start at login, for the user only: an XDG autostart entry on Linux desktops
//! (`~/.config/autostart/tokentray.desktop`), a LaunchAgent on macOS
//! (`~/Library/LaunchAgents/dev.tokentray.app.plist`, loaded by launchd at the next login), the
//! `tokentray` value of `HKCU\Software\Microsoft\Windows\CurrentVersion\Run` on Windows. Each
//! starts this executable, as it is now, with no arguments (the tray app).
//!
//! Verified how: Linux by the settings tests; the macOS plist and the Windows command line are
//! unit-tested here; the registry calls are type-checked for `x86_64-pc-windows-gnu` only,
//! never run.

use std::path::{Path, PathBuf};

use crate::error::Setting;
use crate::{Error, Result};

/// The XDG autostart entry (Linux) or LaunchAgent (macOS) file.
#[cfg_attr(windows, allow(dead_code))]
fn entry() -> Option<PathBuf> {
    if cfg!(target_os = "macos") {
        let agents = dirs::home_dir()?.join("Library").join("LaunchAgents");
        return Some(agents.join("dev.tokentray.app.plist"));
    }
    let config = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| dirs::home_dir().map(|h| h.join(".config")))?;
    Some(config.join("autostart").join("tokentray.desktop"))
}

/// The XDG autostart entry that starts `exe`.
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
fn desktop_entry(exe: &Path) -> String {
    format!(
        "[Desktop Entry]\nType=Application\nName=tokentray\n\
         Comment=Entra ID sign-in and tokens for developer tools\n\
         Exec=\"{}\"\nIcon=tokentray-app\nTerminal=false\nX-GNOME-Autostart-enabled=true\n",
        exe.display()
    )
}

/// The LaunchAgent that starts `exe` at login (once: no `KeepAlive`, Quit means quit).
#[cfg_attr(not(target_os = "macos"), allow(dead_code))]
fn launch_agent(exe: &Path) -> String {
    let exe = exe
        .display()
        .to_string()
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;");
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <!DOCTYPE plist PUBLIC \"-//Apple//DTD PLIST 1.0//EN\" \
         \"http://www.apple.com/DTDs/PropertyList-1.0.dtd\">\n\
         <plist version=\"1.0\">\n<dict>\n\
         \t<key>Label</key>\n\t<string>dev.tokentray.app</string>\n\
         \t<key>ProgramArguments</key>\n\t<array>\n\t\t<string>{exe}</string>\n\t</array>\n\
         \t<key>RunAtLoad</key>\n\t<true/>\n\
         \t<key>ProcessType</key>\n\t<string>Interactive</string>\n\
         </dict>\n</plist>\n"
    )
}

/// The `Run` value that starts `exe`: its path in double quotes (it may hold spaces, and
/// Windows paths hold no `"`).
#[cfg_attr(not(windows), allow(dead_code))]
fn run_command(exe: &Path) -> String {
    format!("\"{}\"", exe.display())
}

fn unavailable(detail: &str) -> Error {
    Error::InvalidSetting {
        field: Setting::StartAtLogin,
        detail: detail.into(),
    }
}

/// Whether tokentray starts at login (the entry, or on Windows the `Run` value, exists).
pub(crate) fn enabled() -> bool {
    #[cfg(windows)]
    {
        run_key::get()
    }
    #[cfg(not(windows))]
    {
        (cfg!(target_os = "linux") || cfg!(target_os = "macos"))
            && entry().is_some_and(|p| p.exists())
    }
}

pub(super) fn set(on: bool) -> Result<()> {
    if !(cfg!(target_os = "linux") || cfg!(target_os = "macos") || cfg!(windows)) {
        return Err(unavailable(
            "not available on this system; add tokentray to your login items instead",
        ));
    }
    let exe = std::env::current_exe().map_err(|e| Error::io("find", "tokentray", e))?;
    #[cfg(windows)]
    {
        run_key::set(on.then(|| run_command(&exe)).as_deref())
    }
    #[cfg(not(windows))]
    {
        let path = entry().ok_or_else(|| {
            unavailable("cannot find your home directory; set HOME or XDG_CONFIG_HOME")
        })?;
        if !on {
            return match std::fs::remove_file(&path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    Err(Error::io("remove", path, e))
                }
                _ => Ok(()),
            };
        }
        let text = if cfg!(target_os = "macos") {
            launch_agent(&exe)
        } else {
            desktop_entry(&exe)
        };
        crate::files::write_atomic(&path, text.as_bytes())
    }
}

/// The `tokentray` value under `HKCU\Software\Microsoft\Windows\CurrentVersion\Run`.
#[cfg(windows)]
mod run_key {
    const RUN: &str = r"Software\Microsoft\Windows\CurrentVersion\Run";
    const NAME: &str = "tokentray";

    pub(super) fn get() -> bool {
        crate::registry::get(RUN, NAME)
    }

    pub(super) fn set(command: Option<&str>) -> crate::Result<()> {
        crate::registry::set(RUN, NAME, command)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_system_gets_a_login_item_that_starts_this_executable() {
        let exe = Path::new("/Applications/Tools & <Co>/tokentray.app/Contents/MacOS/tokentray");
        let plist = launch_agent(exe);
        assert!(
            plist.contains(
                "<string>/Applications/Tools &amp; &lt;Co&gt;/tokentray.app/Contents/MacOS/\
                 tokentray</string>"
            ),
            "{plist}"
        );
        assert!(plist.contains("<key>RunAtLoad</key>\n\t<true/>"), "{plist}");
        assert!(!plist.contains("KeepAlive"), "Quit must stay quit");

        let exe = Path::new(r"C:\Program Files\tokentray\tokentray.exe");
        assert_eq!(
            run_command(exe),
            r#""C:\Program Files\tokentray\tokentray.exe""#
        );

        let entry = desktop_entry(Path::new("/opt/token tray/tokentray"));
        assert!(
            entry.contains("Exec=\"/opt/token tray/tokentray\"\n"),
            "{entry}"
        );
    }
}
