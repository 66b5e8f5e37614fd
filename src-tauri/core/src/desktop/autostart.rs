//! Start at login: an XDG autostart entry on Linux desktops (elsewhere not available yet).

use std::path::PathBuf;

use crate::error::Setting;
use crate::{Error, Result};

fn entry() -> Option<PathBuf> {
    let config = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| dirs::home_dir().map(|h| h.join(".config")))?;
    Some(config.join("autostart").join("tokentray.desktop"))
}

pub(super) fn enabled() -> bool {
    cfg!(target_os = "linux") && entry().is_some_and(|p| p.exists())
}

pub(super) fn set(on: bool) -> Result<()> {
    if !cfg!(target_os = "linux") {
        return Err(Error::InvalidSetting {
            field: Setting::StartAtLogin,
            detail: "not available on this system yet; add tokentray to your login items instead"
                .into(),
        });
    }
    let path = entry().ok_or_else(|| Error::InvalidSetting {
        field: Setting::StartAtLogin,
        detail: "cannot find your home directory; set HOME or XDG_CONFIG_HOME".into(),
    })?;
    if !on {
        return match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::io("remove", path, e)),
            _ => Ok(()),
        };
    }
    let exe = std::env::current_exe().map_err(|e| Error::io("find", "tokentray", e))?;
    let text = format!(
        "[Desktop Entry]\nType=Application\nName=tokentray\n\
         Comment=Entra ID sign-in and tokens for developer tools\n\
         Exec=\"{}\"\nIcon=tokentray\nTerminal=false\nX-GNOME-Autostart-enabled=true\n",
        exe.display()
    );
    crate::files::write_atomic(&path, text.as_bytes())
}
