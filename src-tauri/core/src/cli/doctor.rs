//! `tokentray doctor`: which credential each SDK's `DefaultAzureCredential` will pick in this
//! shell and in the session environment, and why; whether the endpoint answers and with which
//! account; which of az, azd, terraform, kubectl, kubelogin and git are on `PATH` and what they
//! would use. Every problem comes with its fix.
//!
//! The rules are the SDKs' own, read from their source: azure-identity (Python 1.27, JS 4.14)
//! tries `EnvironmentCredential` (`AZURE_TENANT_ID`, `AZURE_CLIENT_ID` and a secret, certificate
//! or username) and `WorkloadIdentityCredential` (`AZURE_FEDERATED_TOKEN_FILE`) before managed
//! identity; passes `AZURE_CLIENT_ID` to managed identity as a user-assigned identity (which
//! tokentray refuses: it serves the signed-in user); honours `AZURE_TOKEN_CREDENTIALS` (`dev`
//! drops managed identity, `prod` and `ManagedIdentityCredential` keep it); and MSAL's managed
//! identity picks Service Fabric over App Service when `IDENTITY_SERVER_THUMBPRINT` is set and
//! Azure Arc when `IMDS_ENDPOINT` is.

use std::path::Path;

use serde::Serialize;

use super::Out;
use crate::Result;
use crate::clock::system_clock;
use crate::config::Config;
use crate::instance::{Endpoint, loopback_url};
use crate::paths::{Paths, find_program};
use crate::tokens::Tokens;

/// How a finding reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
enum State {
    /// As it should be.
    Ok,
    /// Worth knowing; tokentray still works.
    Note,
    /// Keeps tools from tokentray's tokens.
    Problem,
}

/// One thing checked.
#[derive(Debug, Serialize)]
struct Finding {
    /// What was checked (`endpoint`, `this shell`, `session`, a tool's name).
    check: &'static str,
    state: State,
    /// What was found (never a secret).
    detail: String,
    /// What to do, for a note or a problem.
    #[serde(skip_serializing_if = "Option::is_none")]
    fix: Option<String>,
}

fn found(
    check: &'static str,
    state: State,
    detail: impl Into<String>,
    fix: Option<String>,
) -> Finding {
    Finding {
        check,
        state,
        detail: detail.into(),
        fix,
    }
}

/// Prints the findings, a line each with its fix under it (with `--json`, `{findings,
/// problems}`). Always exits 0: a problem is a finding, not a failure of the command.
pub(super) fn doctor(out: &mut Out<'_>) -> Result<()> {
    let paths = Paths::from_env()?;
    let config = Config::load(&paths.config_file())?;
    let port = config.port;
    let running = Endpoint::running(&paths);
    let url = running
        .as_ref()
        .map_or_else(|| loopback_url(port), |e| e.url.clone());
    // A store that cannot be opened (a locked keyring, say) is one finding, not the end: the
    // rest does not need it. The running endpoint's secret is what tools must present.
    let store = config
        .open_store(&paths)
        .and_then(|store| Tokens::new(config, store, system_clock()))
        .and_then(|tokens| {
            let secret = match &running {
                Some(e) => e.secret.clone(),
                None => tokens.endpoint_secret()?,
            };
            Ok((secret, tokens.accounts()?))
        });

    let mut findings = Vec::new();
    let answers = |url: &str| {
        crate::instance::address_of(url)
            .parse::<std::net::SocketAddr>()
            .is_ok_and(|a| {
                std::net::TcpStream::connect_timeout(&a, std::time::Duration::from_secs(1)).is_ok()
            })
    };
    findings.push(match &running {
        Some(e) if answers(&e.url) => found(
            "endpoint",
            State::Ok,
            format!("{} (pid {}) answers", e.url, e.pid),
            None,
        ),
        Some(e) => found(
            "endpoint",
            State::Problem,
            format!(
                "{} (pid {}) runs but does not accept connections",
                e.url, e.pid
            ),
            Some("restart the app or `tokentray daemon`; its log says why".into()),
        ),
        None => found(
            "endpoint",
            State::Problem,
            format!("nothing serves tokens on {url}"),
            Some("start the app (`tokentray`) or `tokentray daemon`".into()),
        ),
    });
    let (secret, default) = match store {
        Ok((secret, accounts)) => (
            Some(secret),
            Ok(accounts.into_iter().find(|a| a.is_default)),
        ),
        Err(e) => (running.as_ref().map(|e| e.secret.clone()), Err(e)),
    };
    findings.push(match &default {
        Ok(Some(a)) => found(
            "account",
            State::Ok,
            format!("tools get {}'s tokens (the default account)", a.username),
            None,
        ),
        Err(e) => found(
            "account",
            State::Problem,
            format!("the token store cannot be opened: {e}"),
            Some("fix the store as the message says, then run `tokentray doctor` again".into()),
        ),
        Ok(None) => found(
            "account",
            State::Problem,
            "no default account: nothing is signed in, or no account was chosen",
            Some("`tokentray login` (`--device-code` without a browser), or `tokentray switch ACCOUNT`".into()),
        ),
    });

    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let expected = format!("{url}/msi/token");
    let set_it = || {
        Some(
            "eval \"$(tokentray env)\" (or `tokentray env --install` for every program)"
                .to_string(),
        )
    };
    findings.push(match (var("IDENTITY_ENDPOINT"), var("IDENTITY_HEADER")) {
        (None, _) => found(
            "this shell",
            State::Problem,
            "IDENTITY_ENDPOINT is not set: the SDKs look for managed identity elsewhere",
            set_it(),
        ),
        (Some(at), _) if at != expected => found(
            "this shell",
            State::Problem,
            format!("IDENTITY_ENDPOINT is {at}, but tokentray serves {expected}"),
            set_it(),
        ),
        (Some(_), Some(_)) if secret.is_none() => found(
            "this shell",
            State::Problem,
            format!(
                "IDENTITY_ENDPOINT points at tokentray ({expected}); IDENTITY_HEADER could not \
                 be checked: the token store cannot be opened and nothing serves"
            ),
            Some("fix the store (see account above), then run `tokentray doctor` again".into()),
        ),
        (Some(_), Some(header)) if secret.as_ref().is_some_and(|s| s.is(header.as_bytes())) => found(
            "this shell",
            State::Ok,
            format!("IDENTITY_ENDPOINT and IDENTITY_HEADER point at tokentray ({expected})"),
            None,
        ),
        (Some(_), _) => found(
            "this shell",
            State::Problem,
            "IDENTITY_HEADER is not tokentray's secret (it was rotated, or it is another endpoint's): \
             requests are refused",
            set_it(),
        ),
    });
    findings.extend(precedence(&var));
    findings.push(session(port));
    findings.extend(tools(&paths, &var));

    let problems = findings
        .iter()
        .filter(|f| f.state == State::Problem)
        .count();
    if out.json {
        return out.json(&serde_json::json!({ "findings": findings, "problems": problems }));
    }
    for f in &findings {
        let state = match f.state {
            State::Ok => "ok",
            State::Note => "note",
            State::Problem => "PROBLEM",
        };
        out.line(format_args!("{state:<8} {:<11} {}", f.check, f.detail))?;
        if let Some(fix) = &f.fix {
            out.line(format_args!("{:<8} {:<11} fix: {fix}", "", ""))?;
        }
    }
    out.line(match problems {
        0 => "No problems found.".to_string(),
        1 => "1 problem found.".to_string(),
        n => format!("{n} problems found."),
    })
}

/// What in this shell's environment makes `DefaultAzureCredential` pass tokentray over.
fn precedence(var: &dyn Fn(&str) -> Option<String>) -> Vec<Finding> {
    let mut findings = Vec::new();
    let set: Vec<&str> = [
        "AZURE_CLIENT_SECRET",
        "AZURE_CLIENT_CERTIFICATE_PATH",
        "AZURE_USERNAME",
    ]
    .into_iter()
    .filter(|n| var(n).is_some())
    .collect();
    let unset = |names: &[&str]| Some(format!("unset {} in this shell", names.join(" ")));
    if !set.is_empty() && var("AZURE_TENANT_ID").is_some() && var("AZURE_CLIENT_ID").is_some() {
        let mut names = vec!["AZURE_TENANT_ID", "AZURE_CLIENT_ID"];
        names.extend(&set);
        findings.push(found(
            "this shell",
            State::Problem,
            format!(
                "{} make DefaultAzureCredential use EnvironmentCredential (a service principal) \
                 before managed identity",
                names.join(", ")
            ),
            unset(&names),
        ));
    } else if var("AZURE_FEDERATED_TOKEN_FILE").is_some() {
        findings.push(found(
            "this shell",
            State::Problem,
            "AZURE_FEDERATED_TOKEN_FILE makes DefaultAzureCredential use WorkloadIdentityCredential \
             before managed identity",
            unset(&["AZURE_FEDERATED_TOKEN_FILE"]),
        ));
    } else if let Some(id) = var("AZURE_CLIENT_ID") {
        findings.push(found(
            "this shell",
            State::Problem,
            format!(
                "AZURE_CLIENT_ID ({id}) makes DefaultAzureCredential ask managed identity for that \
                 user-assigned identity, which tokentray refuses (it serves your own account)"
            ),
            Some(
                "unset AZURE_CLIENT_ID in this shell, or pass managed_identity_client_id=None"
                    .into(),
            ),
        ));
    }
    if let Some(value) = var("AZURE_TOKEN_CREDENTIALS") {
        let keeps =
            ["prod", "managedidentitycredential"].contains(&value.trim().to_lowercase().as_str());
        if !keeps {
            findings.push(found(
                "this shell",
                State::Problem,
                format!(
                    "AZURE_TOKEN_CREDENTIALS={value} leaves managed identity out of \
                     DefaultAzureCredential, and with it tokentray"
                ),
                Some(
                    "unset it, or set it to ManagedIdentityCredential (or prod); tokentray \
                     answers at once, so the slow IMDS probe `dev` avoids does not happen"
                        .into(),
                ),
            ));
        }
    }
    for (name, source) in [
        ("IDENTITY_SERVER_THUMBPRINT", "Service Fabric's"),
        ("IMDS_ENDPOINT", "Azure Arc's"),
        (
            "MSI_ENDPOINT",
            "the older App Service, Cloud Shell or Azure ML protocol",
        ),
    ] {
        if var(name).is_some() {
            findings.push(found(
                "this shell",
                State::Problem,
                format!("{name} makes managed identity speak {source} instead of tokentray's"),
                unset(&[name]),
            ));
        }
    }
    findings
}

/// The session environment ([`crate::session_env`]): installed, and safe.
fn session(port: u16) -> Finding {
    let installed = crate::session_env::installed();
    match (installed, crate::session_env::held(port)) {
        (true, Ok(())) => found(
            "session",
            State::Ok,
            format!(
                "installed ({}): programs started from the desktop get the variables",
                crate::session_env::file()
                    .map_or("the registry".into(), |f| f.display().to_string())
            ),
            None,
        ),
        (true, Err(why)) => found(
            "session",
            State::Problem,
            format!("installed, but {why}"),
            Some("fix that, or `tokentray env --uninstall`".into()),
        ),
        (false, _) => found(
            "session",
            State::Note,
            "not installed: programs started from the desktop menu (IDEs) do not see tokentray",
            Some("`tokentray env --install`".into()),
        ),
    }
}

/// The tools on `PATH` and what each would use.
fn tools(paths: &Paths, var: &dyn Fn(&str) -> Option<String>) -> Vec<Finding> {
    let on_path = |name: &str| find_program(&[name], |_, _| true);
    let mut findings = Vec::new();
    let shim = paths.az_shim();
    match (on_path("az"), super::az::ours(&shim)) {
        (Some(az), true) if az.parent() == shim.parent() => findings.push(found(
            "az",
            State::Ok,
            "the az shim answers `az account get-access-token` from tokentray",
            None,
        )),
        (_, true) => findings.push(found(
            "az",
            State::Note,
            "the az shim is installed but not first on PATH in this shell",
            Some("eval \"$(tokentray env)\"".into()),
        )),
        (Some(az), false) => findings.push(found(
            "az",
            State::Note,
            format!(
                "{}: AzureCliCredential and tools that run az take 0.3-15 s per token from it",
                az.display()
            ),
            Some("`tokentray az-shim --install`".into()),
        )),
        (None, false) => {}
    }
    if let Some(azd) = on_path("azd") {
        findings.push(if var("AZD_AUTH_ENDPOINT").is_some() {
            found("azd", State::Ok, "AZD_AUTH_ENDPOINT is set", None)
        } else {
            found(
                "azd",
                State::Note,
                format!("{}: uses its own sign-in", azd.display()),
                Some("eval \"$(tokentray env --for azd)\"".into()),
            )
        });
    }
    if let Some(terraform) = on_path("terraform") {
        let msi = var("ARM_USE_MSI").is_some_and(|v| v == "true")
            && var("ARM_MSI_ENDPOINT").is_some_and(|v| v.contains("/imds/"));
        findings.push(if msi {
            found(
                "terraform",
                State::Ok,
                "ARM_USE_MSI and ARM_MSI_ENDPOINT point at tokentray",
                None,
            )
        } else {
            found(
                "terraform",
                State::Note,
                format!(
                    "{}: the providers use az or their own variables",
                    terraform.display()
                ),
                Some("eval \"$(tokentray env --for terraform)\"".into()),
            )
        });
    }
    if on_path("kubectl").is_some() || on_path("kubelogin").is_some() {
        let kubeconfig = super::kubeconfig::default_kubeconfig().ok();
        let uses_kubelogin = kubeconfig
            .as_deref()
            .and_then(|k| std::fs::read_to_string(k).ok())
            .is_some_and(|text| text.contains("kubelogin"));
        findings.push(if uses_kubelogin {
            found(
                "kubectl",
                State::Note,
                format!(
                    "{} runs kubelogin for AKS",
                    kubeconfig
                        .as_deref()
                        .map_or(Path::new("the kubeconfig"), |k| k)
                        .display()
                ),
                Some("`tokentray kubeconfig convert`".into()),
            )
        } else {
            found(
                "kubectl",
                State::Ok,
                "no kubeconfig user runs kubelogin",
                None,
            )
        });
    }
    if on_path("git").is_some() {
        let (helper, _) = super::git::keys("dev.azure.com");
        let configured = std::process::Command::new("git")
            .args(["config", "--global", "--get-all", &helper])
            .stdin(std::process::Stdio::null())
            .output()
            .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("tokentray"));
        findings.push(if configured {
            found(
                "git",
                State::Ok,
                "tokentray answers git for Azure Repos",
                None,
            )
        } else {
            found(
                "git",
                State::Note,
                "Azure Repos (dev.azure.com) credentials do not come from tokentray",
                Some("`tokentray git-credential --install`".into()),
            )
        });
    }
    findings
}
