//! `tokentray login`: the browser (auth code + PKCE) or a device code.

use serde_json::json;

use super::{LoginArgs, Out, open_tokens};
use crate::flow::browser;
use crate::flow::open::{Opened, open_url};
use crate::{Error, Result};

/// Signs in and adds the account; Ctrl-C cancels. Without `--device-code` in an SSH session,
/// or when no browser starts, it fails at once saying to use `--device-code`.
pub(super) async fn login(args: LoginArgs, out: &mut Out<'_>) -> Result<()> {
    let tokens = open_tokens()?;
    let scopes = if args.scopes.is_empty() {
        vec![tokens.login_scope()]
    } else {
        args.scopes
    };
    let cancel = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let account = if args.device_code {
        let code = tokens
            .start_device_code(args.tenant.as_deref(), &scopes)
            .await?;
        if out.json {
            out.line(
                json!({"user_code": code.user_code, "verification_uri": code.verification_uri,
                "message": code.message, "expires_in": code.expires_in}),
            )?;
            out.flush()?;
        }
        out.tell(&code.message);
        tokens.finish_device_code(&code, cancel).await?
    } else {
        if let Some(variable) = ssh_session() {
            return Err(Error::invalid(
                "sign-in",
                format!(
                    "this is an SSH session ({variable} is set): the sign-in page would send \
                     your browser back to localhost on this machine, which a browser on your \
                     own computer cannot reach; sign in with `tokentray login --device-code`"
                ),
            ));
        }
        let options = browser::Options {
            tenant: args.tenant,
            scopes,
            login_hint: args.login_hint,
            prompt: Some("select_account".into()),
            claims: None,
            timeout: std::time::Duration::from_secs(args.timeout),
        };
        tokens
            .sign_in_browser(options, |url| open_browser(url, out), cancel)
            .await?
    };
    if out.json {
        out.json(&account)
    } else {
        out.line(format_args!(
            "Signed in as {}{} (tenant {}).",
            account.username,
            account
                .name
                .as_deref()
                .map(|n| format!(" ({n})"))
                .unwrap_or_default(),
            account.home_tenant.as_deref().unwrap_or("-")
        ))
    }
}

/// The variable that says this process runs in an SSH session, if one does.
fn ssh_session() -> Option<&'static str> {
    ["SSH_CONNECTION", "SSH_CLIENT", "SSH_TTY"]
        .into_iter()
        .find(|v| std::env::var_os(v).is_some_and(|value| !value.is_empty()))
}

/// Opens the system browser ([`open_url`]: `$BROWSER` first); always shows the URL too, in
/// case no browser window appears. A browser that cannot start fails the sign-in at once.
fn open_browser(url: &url::Url, out: &mut Out<'_>) -> Result<Opened> {
    out.tell(format_args!(
        "Opening your browser to sign in. If it does not open, go to:\n{url}"
    ));
    open_url(url)
}
