//! The session-wide environment (`tokentray env --install` / `--uninstall`): the SDKs'
//! `IDENTITY_ENDPOINT` and `IDENTITY_HEADER` for every program the user starts from now on, not
//! only for shells that ran `eval "$(tokentray env)"`, so an IDE started from the desktop menu,
//! and every program it debugs, finds tokentray.
//!
//! **Linux.** `$XDG_CONFIG_HOME/environment.d/60-tokentray.conf` (0600; its directory is created
//! 0700 when missing and never chmodded), which systemd's user manager reads at each login
//! (environment.d(5)) and hands to what it starts: the desktop sessions it starts (GNOME, KDE
//! Plasma), their launchers, and the programs those start. The running session gets the
//! variables too when a user manager runs: `systemctl --user import-environment` and
//! `dbus-update-activation-environment --systemd`, each handed the values in its own environment,
//! never on its command line (which other users can read in `/proc`). Survives a reboot: the
//! file. Not seen: programs already running (start them again), logins that systemd's user
//! manager does not start (SSH, a text console), shells started before.
//! `--uninstall` removes the file and unsets both names in the user manager; dbus-daemon's
//! activation environment cannot drop a name, so there they are set empty until logout (every
//! SDK treats an empty `IDENTITY_ENDPOINT` as unset).
//!
//! **Safety.** Installed variables point every SDK at the endpoint even while tokentray does
//! not run, and a refused connection makes azure-identity stop at managed identity instead of
//! trying its next credential. So Linux installs only while `tokentray.socket` (the package
//! enables it for every session) holds the endpoint's port: a connection then waits for the
//! daemon the socket starts instead of being refused. macOS and Windows have no such socket:
//! there the install requires start at login, and the README states what is left.
//!
//! **macOS** (written against launchctl(1) and launchd.plist(5), type-checked here, never
//! run): `launchctl setenv NAME VALUE` for the running session, and the LaunchAgent
//! `~/Library/LaunchAgents/dev.tokentray.env.plist` (0600), which runs the same at each login.
//! Limit: launchctl takes the secret on its command line, which other users can see while it
//! runs (`ps`).
//!
//! **Windows** (written against the registry and `WM_SETTINGCHANGE` documentation,
//! type-checked here, never run): the two values under `HKCU\Environment` (the user's own key,
//! which survives a reboot), then a broadcast `WM_SETTINGCHANGE` "Environment", after which
//! Explorer starts programs with them; programs that were running keep their old environment.

use std::path::PathBuf;

use crate::env::{Tools, variables};
use crate::{Error, Result};

/// The variables the session gets: the SDKs' ([`Tools::Sdk`]), name and value.
fn session_variables(url: &str, secret: &str) -> Vec<(&'static str, zeroize::Zeroizing<String>)> {
    variables(url, secret, Tools::Sdk, None)
}

/// The names [`install`] sets, which [`uninstall`] removes.
const NAMES: [&str; 2] = crate::env::SDK_VARIABLES;

/// Where the variables are kept for later logins: the environment.d file (Linux), the
/// LaunchAgent (macOS); `None` on Windows, where they live in the registry, and where the
/// system has no home directory.
pub fn file() -> Option<PathBuf> {
    if cfg!(target_os = "macos") {
        let agents = dirs::home_dir()?.join("Library").join("LaunchAgents");
        return Some(agents.join("dev.tokentray.env.plist"));
    }
    if cfg!(windows) {
        return None;
    }
    Some(
        dirs::config_dir()?
            .join("environment.d")
            .join("60-tokentray.conf"),
    )
}

/// Whether the variables are installed for the session (the file, or on Windows the registry
/// value, exists).
pub fn installed() -> bool {
    #[cfg(windows)]
    {
        crate::registry::get(os::KEY, NAMES[0])
    }
    #[cfg(not(windows))]
    {
        file().is_some_and(|f| f.exists())
    }
}

/// Installs the variables that point the SDKs at the endpoint on the loopback `port` with
/// `secret`, for programs started from now on, and returns what it did, a line each. Only
/// while something answers on the port when tokentray does not run ([`held`]).
///
/// # Errors
/// [`Error::PortNotHeld`] (nothing is written); [`Error::Io`] writing the file;
/// [`Error::ToolFailed`] when the running session could not be told (the file is written, later
/// logins get it).
pub fn install(port: u16, secret: &str) -> Result<Vec<String>> {
    held(port).map_err(|detail| Error::PortNotHeld { detail })?;
    let vars = session_variables(&crate::instance::loopback_url(port), secret);
    os::install(&vars)
}

/// Whether something answers on the loopback `port` while tokentray does not run: on Linux
/// `tokentray.socket` ([`socket_holds`]); elsewhere the tray app started at login, the nearest
/// there is. `Err` says what is missing and how to fix it.
pub fn held(port: u16) -> std::result::Result<(), String> {
    if cfg!(target_os = "linux") {
        return socket_holds(port);
    }
    if crate::desktop::autostart::enabled() {
        Ok(())
    } else {
        Err(
            "tokentray does not start at login, so after a restart tools would be refused on \
             its port instead of moving on to their next credential: turn on \"Start at login\" \
             in the window's Settings first"
                .into(),
        )
    }
}

/// Removes exactly what [`install`] wrote and returns what it did, a line each (nothing when
/// nothing was installed).
///
/// # Errors
/// [`Error::Io`]; [`Error::ToolFailed`].
pub fn uninstall() -> Result<Vec<String>> {
    os::uninstall()
}

/// Whether `tokentray.socket` is enabled for the user's sessions and holds `port` on the
/// loopback: `Err` says what is missing and how to fix it. Read from the unit files (the
/// package's `/usr/lib/systemd/user`, the administrator's `/etc/systemd/user`, the user's
/// `$XDG_CONFIG_HOME/systemd/user`, with their `tokentray.socket.d/*.conf` drop-ins), so it
/// also holds where no user manager runs yet.
pub fn socket_holds(port: u16) -> std::result::Result<(), String> {
    let mut dirs = vec![
        PathBuf::from("/usr/lib/systemd/user"),
        PathBuf::from("/etc/systemd/user"),
    ];
    if let Some(config) = dirs::config_dir() {
        dirs.push(config.join("systemd").join("user"));
    }
    socket_holds_in(&dirs, port)
}

/// [`socket_holds`] over the unit directories `dirs`, lowest precedence first.
fn socket_holds_in(dirs: &[PathBuf], port: u16) -> std::result::Result<(), String> {
    const UNIT: &str = "tokentray.socket";
    let enabled = dirs
        .iter()
        .any(|d| d.join("sockets.target.wants").join(UNIT).exists());
    let fix = "install the tokentray package (it enables tokentray.socket for every session), \
               or copy src-tauri/packaging/tokentray.socket and tokentray.service to \
               ~/.config/systemd/user/ and run `systemctl --user enable --now tokentray.socket`";
    if !enabled {
        return Err(format!(
            "tokentray.socket is not enabled, so while tokentray does not run, tools would be \
             refused on the port instead of moving on to their next credential: {fix}"
        ));
    }
    // The unit of highest precedence, then every drop-in by file name (systemd.unit(5)).
    let unit = dirs.iter().rev().map(|d| d.join(UNIT)).find(|u| u.exists());
    let mut texts: Vec<String> = unit
        .and_then(|u| std::fs::read_to_string(u).ok())
        .into_iter()
        .collect();
    let mut dropins: Vec<PathBuf> = dirs
        .iter()
        .filter_map(|d| std::fs::read_dir(d.join(format!("{UNIT}.d"))).ok())
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "conf"))
        .collect();
    dropins.sort_by_key(|p| p.file_name().map(ToOwned::to_owned));
    texts.extend(
        dropins
            .iter()
            .filter_map(|p| std::fs::read_to_string(p).ok()),
    );
    let listens = listen_streams(&texts);
    let loopback = |value: &str| {
        ["127.0.0.1:", "[::1]:", "localhost:"]
            .iter()
            .any(|host| value.strip_prefix(host) == Some(&port.to_string()))
    };
    if listens.iter().any(|l| loopback(l)) {
        Ok(())
    } else {
        Err(format!(
            "tokentray.socket listens on {} but tokentray's port is {port}: make them the same \
             (`systemctl --user edit tokentray.socket`, or `port` in config.toml)",
            if listens.is_empty() {
                "nothing".to_string()
            } else {
                listens.join(", ")
            }
        ))
    }
}

/// The `ListenStream=` values of a socket unit and its drop-ins, in order; an empty one clears
/// those before it, as systemd does.
fn listen_streams(texts: &[String]) -> Vec<String> {
    let mut listens = Vec::new();
    for line in texts.iter().flat_map(|t| t.lines()) {
        if let Some((key, value)) = line.split_once('=')
            && key.trim() == "ListenStream"
        {
            let value = value.trim();
            if value.is_empty() {
                listens.clear();
            } else {
                listens.push(value.to_string());
            }
        }
    }
    listens
}

/// [`file`], or the error that says how to get one.
#[cfg_attr(windows, allow(dead_code))]
fn required_file() -> Result<PathBuf> {
    file().ok_or_else(|| Error::Config {
        path: "$HOME".into(),
        detail: "no home directory; set HOME (and XDG_CONFIG_HOME on Linux)".into(),
    })
}

/// Removes [`file`] and returns it; `None` when there was none (nothing installed).
#[cfg_attr(windows, allow(dead_code))]
fn remove_file() -> Result<Option<PathBuf>> {
    let Some(path) = file() else {
        return Ok(None);
    };
    match std::fs::remove_file(&path) {
        Ok(()) => Ok(Some(path)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io("remove", path, e)),
    }
}

/// Runs `program args` with `vars` in its environment (never on its command line); `Ok(false)`
/// when the program is not installed.
#[cfg_attr(windows, allow(dead_code))]
fn run(program: &str, args: &[&str], vars: &[(&str, &str)]) -> Result<bool> {
    let shown = format!("{program} {}", args.join(" "));
    let output = std::process::Command::new(program)
        .args(args)
        .envs(vars.iter().copied())
        .stdin(std::process::Stdio::null())
        .output();
    match output {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(Error::ToolFailed {
            command: shown,
            detail: e.to_string(),
        }),
        Ok(o) if o.status.success() => Ok(true),
        Ok(o) => Err(Error::ToolFailed {
            command: shown,
            detail: String::from_utf8_lossy(&o.stderr)
                .lines()
                .next()
                .unwrap_or("failed")
                .to_string(),
        }),
    }
}

#[cfg(all(unix, not(target_os = "macos")))]
mod os {
    use super::{NAMES, remove_file, required_file, run};
    use crate::{Error, Result};

    /// Whether a user manager answers (`systemctl --user` reaches it).
    fn user_manager() -> bool {
        matches!(
            run("systemctl", &["--user", "show-environment"], &[]),
            Ok(true)
        )
    }

    pub(super) fn install(
        vars: &[(&'static str, zeroize::Zeroizing<String>)],
    ) -> Result<Vec<String>> {
        let path = required_file()?;
        let mut text = zeroize::Zeroizing::new(String::from(
            "# Written by `tokentray env --install`; `tokentray env --uninstall` removes it.\n",
        ));
        for (name, value) in vars {
            text.push_str(name);
            text.push('=');
            text.push_str(value);
            text.push('\n');
        }
        if let Some(dir) = path.parent().filter(|d| !d.exists()) {
            let mut builder = std::fs::DirBuilder::new();
            std::os::unix::fs::DirBuilderExt::mode(builder.recursive(true), 0o700);
            builder
                .create(dir)
                .map_err(|e| Error::io("create directory", dir, e))?;
        }
        crate::files::create_private(&path, text.as_bytes(), true)?;
        let mut did = vec![format!(
            "wrote {} (programs of your next login see it)",
            path.display()
        )];
        let pairs: Vec<(&str, &str)> = vars.iter().map(|(n, v)| (*n, v.as_str())).collect();
        if user_manager() {
            let mut args = vec!["--user", "import-environment"];
            args.extend(NAMES);
            if run("systemctl", &args, &pairs)? {
                did.push(
                    "set them in systemd's user manager (programs it starts from now on)".into(),
                );
            }
        }
        if std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_some() {
            let mut args = vec!["--systemd"];
            args.extend(NAMES);
            if run("dbus-update-activation-environment", &args, &pairs)? {
                did.push("set them for programs D-Bus starts from now on".into());
            }
        }
        Ok(did)
    }

    pub(super) fn uninstall() -> Result<Vec<String>> {
        // Not installed: the session's variables are not ours to touch.
        let Some(path) = remove_file()? else {
            return Ok(Vec::new());
        };
        let mut did = vec![format!("removed {}", path.display())];
        // The directory --install may have created goes too, when nothing else is in it.
        if let Some(dir) = path.parent() {
            let _ = std::fs::remove_dir(dir);
        }
        if user_manager() {
            let mut args = vec!["--user", "unset-environment"];
            args.extend(NAMES);
            if run("systemctl", &args, &[])? {
                did.push("unset them in systemd's user manager".into());
            }
        }
        if std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_some() {
            let empty: Vec<String> = NAMES.iter().map(|n| format!("{n}=")).collect();
            let args: Vec<&str> = empty.iter().map(String::as_str).collect();
            if run("dbus-update-activation-environment", &args, &[])? {
                did.push("set them empty for programs D-Bus starts (until logout)".into());
            }
        }
        Ok(did)
    }
}

#[cfg(target_os = "macos")]
mod os {
    use super::{NAMES, remove_file, required_file, run};
    use crate::Result;

    /// The LaunchAgent that runs `launchctl setenv` for `vars` at each login.
    fn launch_agent(
        vars: &[(&'static str, zeroize::Zeroizing<String>)],
    ) -> zeroize::Zeroizing<String> {
        let escape = |s: &str| {
            s.replace('&', "&amp;")
                .replace('<', "&lt;")
                .replace('>', "&gt;")
        };
        let mut args =
            String::from("\t\t<string>/bin/launchctl</string>\n\t\t<string>setenv</string>\n");
        for (name, value) in vars {
            args.push_str(&format!(
                "\t\t<string>{name}</string>\n\t\t<string>{}</string>\n",
                escape(value)
            ));
        }
        zeroize::Zeroizing::new(format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
             <!DOCTYPE plist PUBLIC \"-//Apple//DTD PLIST 1.0//EN\" \
             \"http://www.apple.com/DTDs/PropertyList-1.0.dtd\">\n\
             <plist version=\"1.0\">\n<dict>\n\
             \t<key>Label</key>\n\t<string>dev.tokentray.env</string>\n\
             \t<key>ProgramArguments</key>\n\t<array>\n{args}\t</array>\n\
             \t<key>RunAtLoad</key>\n\t<true/>\n\
             </dict>\n</plist>\n"
        ))
    }

    pub(super) fn install(
        vars: &[(&'static str, zeroize::Zeroizing<String>)],
    ) -> Result<Vec<String>> {
        let path = required_file()?;
        crate::files::create_private(&path, launch_agent(vars).as_bytes(), true)?;
        let mut did = vec![format!("wrote {} (runs at each login)", path.display())];
        for (name, value) in vars {
            run("launchctl", &["setenv", name, value], &[])?;
        }
        did.push("set them with launchctl setenv (programs started from now on)".into());
        Ok(did)
    }

    pub(super) fn uninstall() -> Result<Vec<String>> {
        let Some(path) = remove_file()? else {
            return Ok(Vec::new());
        };
        let mut did = vec![format!("removed {}", path.display())];
        for name in NAMES {
            run("launchctl", &["unsetenv", name], &[])?;
        }
        did.push("unset them with launchctl unsetenv".into());
        Ok(did)
    }
}

#[cfg(windows)]
mod os {
    use super::NAMES;
    use crate::Result;
    use crate::registry;

    /// The user's environment, under `HKEY_CURRENT_USER`.
    pub(super) const KEY: &str = "Environment";

    pub(super) fn install(
        vars: &[(&'static str, zeroize::Zeroizing<String>)],
    ) -> Result<Vec<String>> {
        for (name, value) in vars {
            registry::set(KEY, name, Some(value))?;
        }
        registry::announce_environment();
        Ok(vec![
            r"set them under HKEY_CURRENT_USER\Environment (programs started from now on)".into(),
        ])
    }

    pub(super) fn uninstall() -> Result<Vec<String>> {
        let was = registry::get(KEY, NAMES[0]);
        for name in NAMES {
            registry::set(KEY, name, None)?;
        }
        registry::announce_environment();
        Ok(if was {
            vec![r"removed them from HKEY_CURRENT_USER\Environment".into()]
        } else {
            Vec::new()
        })
    }
}

#[cfg(test)]
mod tests;
