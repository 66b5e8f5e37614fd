//! `tokentray kubeconfig convert`: rewrites the AKS users of a kubeconfig to get their tokens
//! from `tokentray kube-token`.
//!
//! A user is converted when its `exec.command` is kubelogin (what `az aks get-credentials` writes
//! for clusters with Entra ID integration, and what `kubelogin convert-kubeconfig` leaves) or it
//! has the removed `auth-provider: azure`; with `--context`, only that context's user. The
//! cluster's server application and tenant are kept (kubelogin's `--server-id` and
//! `--tenant-id`, or the auth-provider's `apiserver-id` and `tenant-id`); kubelogin's login mode
//! and client id are dropped, since tokentray signs in its own way. The file is read from
//! `--kubeconfig`, else the first `KUBECONFIG` entry, else `~/.kube/config`; the original is kept
//! beside it (`NAME.tokentray-backup-TIMESTAMP`, 0600) before the new one replaces it whole
//! (0600, written next to it and renamed; the directory is left as it is). YAML comments are not
//! kept (kubeconfigs written by az and kubectl have none); the backup has them.

use std::path::{Path, PathBuf};

use serde_norway::{Mapping, Value};

use super::kube::AKS_SERVER_ID;
use super::{KubeconfigConvertArgs, Out};
use crate::{Error, Result};

/// The exec credential API version the converted users name (the one kubelogin writes, which
/// every kubectl since 1.11 speaks).
const API_VERSION: &str = "client.authentication.k8s.io/v1beta1";

/// Converts the file `args` names and prints each user changed.
pub(super) fn convert(args: &KubeconfigConvertArgs, out: &mut Out<'_>) -> Result<()> {
    let path = match &args.kubeconfig {
        Some(path) => path.clone(),
        None => default_kubeconfig()?,
    };
    let text = std::fs::read_to_string(&path).map_err(|e| Error::io("read", &path, e))?;
    let bad = |detail: String| Error::invalid(format!("kubeconfig {}", path.display()), detail);
    let mut config: Value =
        serde_norway::from_str(&text).map_err(|e| bad(format!("not YAML: {e}")))?;
    let command = command_name();
    let changed = rewrite(&mut config, args.context.as_deref(), &command).map_err(bad)?;
    if changed.is_empty() {
        out.tell(format_args!(
            "{}: no user uses kubelogin or the azure auth-provider; nothing changed",
            path.display()
        ));
        return Ok(());
    }
    let new_text =
        serde_norway::to_string(&config).map_err(|e| bad(format!("cannot write it back: {e}")))?;
    let backup = backup_path(&path);
    crate::files::create_private(&backup, text.as_bytes(), false)?;
    crate::files::create_private(&path, new_text.as_bytes(), true)?;
    for (user, was, now) in &changed {
        out.line(format_args!("user {user}: {was} -> {now}"))?;
    }
    out.line(format_args!(
        "wrote {}; the original is {}",
        path.display(),
        backup.display()
    ))
}

/// kubectl's default: the first file of `KUBECONFIG`, else `~/.kube/config`.
pub(super) fn default_kubeconfig() -> Result<PathBuf> {
    if let Some(first) = std::env::var_os("KUBECONFIG")
        .and_then(|v| std::env::split_paths(&v).find(|p| !p.as_os_str().is_empty()))
    {
        return Ok(first);
    }
    dirs::home_dir()
        .map(|home| home.join(".kube").join("config"))
        .ok_or_else(|| Error::invalid("kubeconfig", "no home directory: pass --kubeconfig FILE"))
}

/// `tokentray` when that name on `PATH` is this program (so the kubeconfig works wherever
/// tokentray is installed), else this program's full path.
fn command_name() -> String {
    let me = std::env::current_exe().ok();
    let found = crate::paths::find_program(&["tokentray"], |_, _| true);
    let same = |a: &Path, b: &Path| a.canonicalize().ok() == b.canonicalize().ok();
    match (me, found) {
        (Some(me), Some(found)) if same(&me, &found) => "tokentray".into(),
        (Some(me), _) => me.display().to_string(),
        (None, _) => "tokentray".into(),
    }
}

fn backup_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "kubeconfig".into());
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%SZ");
    path.with_file_name(format!("{name}.tokentray-backup-{stamp}"))
}

/// A converted user: (name, what it used, what it uses now).
type Change = (String, String, String);

/// Rewrites the AKS users of `config` (only `context`'s user, if given) to run `command
/// kube-token`; returns what changed.
///
/// # Errors
/// What is wrong with the kubeconfig's shape, or an unknown `context`.
fn rewrite(
    config: &mut Value,
    context: Option<&str>,
    command: &str,
) -> std::result::Result<Vec<Change>, String> {
    let only_user = match context {
        Some(name) => Some(context_user(config, name)?),
        None => None,
    };
    let Some(users) = config.get_mut("users").and_then(Value::as_sequence_mut) else {
        return Ok(Vec::new());
    };
    let mut changed = Vec::new();
    for entry in users {
        let name = entry
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        if only_user.as_ref().is_some_and(|u| *u != name) {
            continue;
        }
        let Some(user) = entry.get_mut("user").and_then(Value::as_mapping_mut) else {
            continue;
        };
        let Some((was, server_id, tenant)) = aks_login(user) else {
            continue;
        };
        let mut args = vec!["kube-token".to_string(), "--server-id".into(), server_id];
        if let Some(tenant) = tenant {
            args.extend(["--tenant".into(), tenant]);
        }
        let now = format!("{command} {}", args.join(" "));
        let mut exec = Mapping::new();
        exec.insert("apiVersion".into(), API_VERSION.into());
        exec.insert("command".into(), command.into());
        exec.insert(
            "args".into(),
            Value::Sequence(args.into_iter().map(Value::from).collect()),
        );
        exec.insert("env".into(), Value::Null);
        exec.insert(
            "installHint".into(),
            "tokentray kube-token needs tokentray (https://github.com/tokentray/tokentray); the \
             original kubeconfig is kept next to this one as *.tokentray-backup-*"
                .into(),
        );
        exec.insert("provideClusterInfo".into(), false.into());
        user.remove("auth-provider");
        user.insert("exec".into(), Value::Mapping(exec));
        changed.push((name, was, now));
    }
    Ok(changed)
}

/// The user of context `name`.
fn context_user(config: &Value, name: &str) -> std::result::Result<String, String> {
    let contexts = config
        .get("contexts")
        .and_then(Value::as_sequence)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let known: Vec<&str> = contexts
        .iter()
        .filter_map(|c| c.get("name").and_then(Value::as_str))
        .collect();
    contexts
        .iter()
        .find(|c| c.get("name").and_then(Value::as_str) == Some(name))
        .and_then(|c| c.get("context")?.get("user")?.as_str())
        .map(String::from)
        .ok_or_else(|| {
            format!(
                "no context {name:?} with a user (contexts: {})",
                known.join(", ")
            )
        })
}

/// If `user` signs in to AKS through kubelogin or the azure auth-provider: (what it used, the
/// server application id, the tenant).
fn aks_login(user: &Mapping) -> Option<(String, String, Option<String>)> {
    if let Some(exec) = user.get("exec") {
        let command = exec.get("command")?.as_str()?;
        let program = Path::new(command).file_stem()?.to_string_lossy();
        if program != "kubelogin" {
            return None;
        }
        let args: Vec<&str> = exec
            .get("args")
            .and_then(Value::as_sequence)
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let value = |flag: &str| {
            args.iter().enumerate().find_map(|(i, a)| {
                a.strip_prefix(flag)
                    .and_then(|rest| rest.strip_prefix('='))
                    .map(String::from)
                    .or_else(|| (*a == flag).then(|| args.get(i + 1).map(|v| v.to_string()))?)
            })
        };
        let mode = value("--login").or_else(|| value("-l"));
        let was = match mode {
            Some(mode) => format!("kubelogin ({mode})"),
            None => "kubelogin".into(),
        };
        let server_id = value("--server-id").unwrap_or_else(|| AKS_SERVER_ID.into());
        return Some((was, server_id, value("--tenant-id").or_else(|| value("-t"))));
    }
    let provider = user.get("auth-provider")?;
    if provider.get("name")?.as_str()? != "azure" {
        return None;
    }
    let config = provider.get("config");
    let field = |key: &str| {
        config
            .and_then(|c| c.get(key))
            .and_then(Value::as_str)
            .map(String::from)
    };
    Some((
        "auth-provider azure".into(),
        field("apiserver-id").unwrap_or_else(|| AKS_SERVER_ID.into()),
        field("tenant-id"),
    ))
}

#[cfg(test)]
mod tests;
