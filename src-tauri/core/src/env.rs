//! The environment that points tools at tokentray's endpoint: the `IDENTITY_ENDPOINT` and
//! `IDENTITY_HEADER` variables that every Azure SDK's managed identity credential reads (the App
//! Service protocol), in the syntax of the user's shell; and, while the `az` shim is installed,
//! its directory first on `PATH`.

use std::path::{Path, PathBuf};

use clap::ValueEnum;

use crate::paths::Paths;

/// Shells `tokentray env` writes for (and the window copies for: `posix`, `fish`,
/// `powershell`).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    ValueEnum,
    serde::Deserialize,
    serde::Serialize,
)]
#[serde(rename_all = "lowercase")]
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

/// The directory to put first on `PATH`: the `az` shim's, while it is installed.
pub fn path_first(paths: &Paths) -> Option<PathBuf> {
    let shim = paths.az_shim();
    shim.exists()
        .then(|| shim.parent().map(Path::to_path_buf))?
}

/// Which tools' variables `tokentray env` prints (`--for`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum Tools {
    /// The Azure SDKs' managed identity credential: `IDENTITY_ENDPOINT`, `IDENTITY_HEADER`.
    #[default]
    Sdk,
    /// The Azure Developer CLI's external authentication: `AZD_AUTH_ENDPOINT`, `AZD_AUTH_KEY`.
    Azd,
    /// Terraform's azurerm, azuread and azapi providers' managed identity: `ARM_USE_MSI`,
    /// `ARM_MSI_ENDPOINT` (the IMDS route, its path holding the secret) and `ARM_TENANT_ID`.
    Terraform,
}

/// The variables the Azure SDKs read for a managed identity endpoint (App Service's
/// protocol): the endpoint's URL, then the secret header's value.
pub const SDK_VARIABLES: [&str; 2] = ["IDENTITY_ENDPOINT", "IDENTITY_HEADER"];

/// The variables, name and value, that point `tools` at the endpoint at `url` with `secret`:
/// for the SDKs `IDENTITY_ENDPOINT` (`URL/msi/token`) and `IDENTITY_HEADER`, for azd
/// `AZD_AUTH_ENDPOINT` (`URL`, to which azd adds `/token`) and `AZD_AUTH_KEY`, for Terraform
/// `ARM_USE_MSI`, `ARM_MSI_ENDPOINT` (`URL/imds/SECRET/token`) and, when `tenant` is known (the
/// default account's), `ARM_TENANT_ID`. Zeroized on drop.
pub fn variables(
    url: &str,
    secret: &str,
    tools: Tools,
    tenant: Option<&str>,
) -> Vec<(&'static str, zeroize::Zeroizing<String>)> {
    match tools {
        Tools::Sdk => vec![
            (SDK_VARIABLES[0], format!("{url}/msi/token").into()),
            (SDK_VARIABLES[1], secret.to_string().into()),
        ],
        Tools::Azd => vec![
            ("AZD_AUTH_ENDPOINT", url.to_string().into()),
            ("AZD_AUTH_KEY", secret.to_string().into()),
        ],
        Tools::Terraform => {
            let mut vars = vec![
                ("ARM_USE_MSI", "true".to_string().into()),
                (
                    "ARM_MSI_ENDPOINT",
                    format!("{url}/imds/{secret}/token").into(),
                ),
            ];
            if let Some(tenant) = tenant {
                vars.push(("ARM_TENANT_ID", tenant.to_string().into()));
            }
            vars
        }
    }
}

/// The lines that point the SDKs at the endpoint at `url` with `secret` (the
/// `IDENTITY_ENDPOINT` and `IDENTITY_HEADER` variables azure-identity's managed identity
/// credential reads), and put `path_first` (see [`path_first`]) before the rest of `PATH`, in
/// `shell`'s syntax, one per line. Zeroized on drop: it holds the secret.
pub fn env_lines(
    url: &str,
    secret: &str,
    shell: Shell,
    path_first: Option<&Path>,
) -> zeroize::Zeroizing<String> {
    lines_for(&variables(url, secret, Tools::Sdk, None), shell, path_first)
}

/// The lines that set `vars` ([`variables`]) and put `path_first` first on `PATH`, in
/// `shell`'s syntax. Zeroized on drop.
pub fn lines_for(
    vars: &[(&'static str, zeroize::Zeroizing<String>)],
    shell: Shell,
    path_first: Option<&Path>,
) -> zeroize::Zeroizing<String> {
    use std::fmt::Write as _;
    // Reserved up front so the secret is never left behind in a reallocated buffer.
    let mut text = zeroize::Zeroizing::new(String::with_capacity(
        256 + vars.iter().map(|(_, v)| v.len()).sum::<usize>(),
    ));
    for (name, value) in vars {
        let value = value.as_str();
        let _ = match shell {
            Shell::Posix => writeln!(text, "export {name}='{value}'"),
            Shell::Fish => writeln!(text, "set -gx {name} '{value}';"),
            Shell::Powershell => writeln!(text, "$env:{name} = '{value}'"),
        };
    }
    if let Some(dir) = path_first {
        let dir = dir.display();
        let _ = match shell {
            Shell::Posix => writeln!(text, "export PATH='{dir}':\"$PATH\""),
            Shell::Fish => writeln!(text, "set -gx PATH '{dir}' $PATH;"),
            Shell::Powershell => writeln!(text, "$env:PATH = '{dir};' + $env:PATH"),
        };
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn azd_gets_the_base_url_and_the_secret_as_its_key() {
        let lines = lines_for(
            &variables("http://127.0.0.1:1", "s3", Tools::Azd, None),
            Shell::Posix,
            None,
        );
        assert_eq!(
            lines.as_str(),
            "export AZD_AUTH_ENDPOINT='http://127.0.0.1:1'\nexport AZD_AUTH_KEY='s3'\n"
        );
        let terraform = variables("http://127.0.0.1:1", "s3", Tools::Terraform, Some("t1"));
        let names: Vec<(&str, &str)> = terraform.iter().map(|(n, v)| (*n, v.as_str())).collect();
        assert_eq!(
            names,
            [
                ("ARM_USE_MSI", "true"),
                ("ARM_MSI_ENDPOINT", "http://127.0.0.1:1/imds/s3/token"),
                ("ARM_TENANT_ID", "t1")
            ]
        );
    }

    #[test]
    fn windows_users_get_powershell_and_everyone_else_sh() {
        assert_eq!(Shell::for_os("windows"), Shell::Powershell);
        assert_eq!(Shell::for_os("macos"), Shell::Posix);
        assert_eq!(Shell::for_os("linux"), Shell::Posix);
        assert_eq!(Shell::native(), Shell::for_os(std::env::consts::OS));
        let ps = env_lines("http://127.0.0.1:1", "s3", Shell::Powershell, None);
        assert!(
            ps.starts_with("$env:IDENTITY_ENDPOINT = 'http://127.0.0.1:1/msi/token'\n"),
            "{}",
            *ps
        );
    }

    #[test]
    fn the_shim_directory_goes_first_on_path_in_each_shell() {
        let dir = Path::new("/home/a/.local/share/tokentray/bin");
        let last = |shell| {
            env_lines("http://127.0.0.1:1", "s3", shell, Some(dir))
                .lines()
                .last()
                .map(str::to_string)
        };
        assert_eq!(
            last(Shell::Posix).as_deref(),
            Some(r#"export PATH='/home/a/.local/share/tokentray/bin':"$PATH""#)
        );
        assert_eq!(
            last(Shell::Fish).as_deref(),
            Some("set -gx PATH '/home/a/.local/share/tokentray/bin' $PATH;")
        );
        assert_eq!(
            last(Shell::Powershell).as_deref(),
            Some("$env:PATH = '/home/a/.local/share/tokentray/bin;' + $env:PATH")
        );
        assert_eq!(
            env_lines("http://127.0.0.1:1", "s3", Shell::Posix, None)
                .lines()
                .count(),
            2
        );
    }
}
