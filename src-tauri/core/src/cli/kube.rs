//! `tokentray kube-token`: a client-go exec credential plugin, so kubectl and every Kubernetes
//! client built on client-go (or following its exec protocol, as the Python client does) get
//! AKS tokens from tokentray instead of from kubelogin.
//!
//! client-go runs the `users[].user.exec` command of the kubeconfig and passes
//! `KUBERNETES_EXEC_INFO`, an `ExecCredential` whose `apiVersion` is the one the kubeconfig names
//! (`client.authentication.k8s.io/v1` or `v1beta1`). The plugin answers on stdout with an
//! `ExecCredential` of that same version carrying `status.token` and
//! `status.expirationTimestamp` (RFC 3339, UTC); client-go reuses the token until then. Errors go
//! to stderr, which kubectl shows, with a non-zero exit.

use serde::Serialize;

use super::token::fetch;
use super::{KubeTokenArgs, Out};
use crate::tokens::TokenRequest;
use crate::{Error, Result};

/// The Entra server application of every AKS cluster with Entra ID integration (what kubelogin's
/// `--server-id` is for AKS).
pub const AKS_SERVER_ID: &str = "6dae42f8-4368-4678-94ff-3960e28e3630";

/// The versions of the exec credential API this plugin speaks.
const API_VERSIONS: [&str; 2] = [
    "client.authentication.k8s.io/v1",
    "client.authentication.k8s.io/v1beta1",
];
/// The version answered when client-go names none (it always does since Kubernetes 1.20).
const DEFAULT_API_VERSION: &str = "client.authentication.k8s.io/v1beta1";

/// Prints the `ExecCredential` for the cluster's server application.
pub(super) async fn kube_token(args: &KubeTokenArgs, out: &mut Out<'_>) -> Result<()> {
    let api_version = api_version(std::env::var("KUBERNETES_EXEC_INFO").ok().as_deref())?;
    let server_id = args.server_id.trim_end_matches('/');
    let scope = if server_id.ends_with("/.default") {
        server_id.to_string()
    } else {
        format!("{server_id}/.default")
    };
    let request = TokenRequest {
        account: args.account.as_deref(),
        scopes: std::slice::from_ref(&scope),
        tenant: args.tenant.as_deref(),
    };
    let body = fetch(&request, out.stderr).await?;
    let expiration = chrono::DateTime::from_timestamp(body.expires_on, 0)
        .ok_or_else(|| Error::invalid("kube-token", "the token's expiry is out of range"))?
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let credential = ExecCredential {
        kind: "ExecCredential",
        api_version,
        spec: Spec { interactive: false },
        status: Status {
            token: body.access_token.expose(),
            expiration_timestamp: &expiration,
        },
    };
    out.json(&credential)
}

/// The `apiVersion` to answer with: the one `KUBERNETES_EXEC_INFO` asks for.
///
/// # Errors
/// [`Error::InvalidInput`] if it is not JSON or asks for a version this plugin does not speak
/// (with the version to put in the kubeconfig).
fn api_version(exec_info: Option<&str>) -> Result<&'static str> {
    let Some(text) = exec_info.filter(|t| !t.trim().is_empty()) else {
        return Ok(DEFAULT_API_VERSION);
    };
    let bad = |detail: String| Error::invalid("KUBERNETES_EXEC_INFO", detail);
    let info: serde_json::Value =
        serde_json::from_str(text).map_err(|e| bad(format!("not JSON: {e}")))?;
    let asked = info
        .get("apiVersion")
        .and_then(serde_json::Value::as_str)
        .unwrap_or(DEFAULT_API_VERSION);
    API_VERSIONS
        .into_iter()
        .find(|v| *v == asked)
        .ok_or_else(|| {
            bad(format!(
                "asks for {asked}; tokentray speaks {}: set that as users[].user.exec.apiVersion in the kubeconfig",
                API_VERSIONS.join(" and ")
            ))
        })
}

/// client-go's `ExecCredential`, as the plugin prints it.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ExecCredential<'a> {
    kind: &'static str,
    api_version: &'static str,
    spec: Spec,
    status: Status<'a>,
}

#[derive(Serialize)]
struct Spec {
    interactive: bool,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Status<'a> {
    token: &'a str,
    expiration_timestamp: &'a str,
}

#[cfg(test)]
mod tests;
