//! The environment that points tools at tokentray's endpoint: the `IDENTITY_ENDPOINT` and
//! `IDENTITY_HEADER` variables that every Azure SDK's managed identity credential reads (the App
//! Service protocol), in the syntax of the user's shell.

use clap::ValueEnum;

/// Shells `tokentray env` writes for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Shell {
    /// sh, bash, zsh.
    Posix,
    /// fish.
    Fish,
    /// PowerShell.
    Powershell,
}

impl Shell {
    /// The shell a user of this system most likely has: PowerShell on Windows (whose `cmd` has
    /// no one-line syntax worth copying), sh elsewhere.
    pub fn native() -> Self {
        Self::for_os(std::env::consts::OS)
    }

    /// [`Shell::native`] for the system `os` names (`std::env::consts::OS`).
    pub fn for_os(os: &str) -> Self {
        if os == "windows" {
            Self::Powershell
        } else {
            Self::Posix
        }
    }
}

/// The lines that point tools at the endpoint at `url` with `secret` (the `IDENTITY_ENDPOINT`
/// and `IDENTITY_HEADER` variables azure-identity's managed identity credential reads), in
/// `shell`'s syntax, one per line. Zeroized on drop: it holds the secret.
pub fn env_lines(url: &str, secret: &str, shell: Shell) -> zeroize::Zeroizing<String> {
    use std::fmt::Write as _;
    let endpoint = format!("{url}/msi/token");
    let vars = [
        ("IDENTITY_ENDPOINT", endpoint.as_str()),
        ("IDENTITY_HEADER", secret),
    ];
    // Reserved up front so the secret is never left behind in a reallocated buffer.
    let mut text =
        zeroize::Zeroizing::new(String::with_capacity(128 + endpoint.len() + secret.len()));
    for (name, value) in vars {
        let _ = match shell {
            Shell::Posix => writeln!(text, "export {name}='{value}'"),
            Shell::Fish => writeln!(text, "set -gx {name} '{value}';"),
            Shell::Powershell => writeln!(text, "$env:{name} = '{value}'"),
        };
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_users_get_powershell_and_everyone_else_sh() {
        assert_eq!(Shell::for_os("windows"), Shell::Powershell);
        assert_eq!(Shell::for_os("macos"), Shell::Posix);
        assert_eq!(Shell::for_os("linux"), Shell::Posix);
        assert_eq!(Shell::native(), Shell::for_os(std::env::consts::OS));
        let ps = env_lines("http://127.0.0.1:1", "s3", Shell::Powershell);
        assert!(
            ps.starts_with("$env:IDENTITY_ENDPOINT = 'http://127.0.0.1:1/msi/token'\n"),
            "{}",
            *ps
        );
    }
}
