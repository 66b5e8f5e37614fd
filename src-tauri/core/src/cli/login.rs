//! `tokentray login`: the browser (auth code + PKCE) or a device code.

use serde_json::json;

use super::{LoginArgs, Out, open_tokens};
use crate::flow::browser;
use crate::flow::open::{Opened, open_url};
use crate::{Error, Result};

/// Signs in and adds the account; Ctrl-C cancels. Without `--device-code` in an SSH session,
/// or when no browser starts, it fails at once saying to use `--device-code`.
pub(super) async fn login(mut args: LoginArgs, out: &mut Out<'_>) -> Result<()> {
    let tokens = open_tokens()?;
    // Nothing named: the sign-in a failed request is waiting for, if one is, exactly as asked.
    let challenge = if args.scopes.is_empty() && args.tenant.is_none() && args.login_hint.is_none()
    {
        tokens.pending_challenges()?.into_iter().next()
    } else {
        None
    };
    let mut claims = None;
    let scopes = if let Some((account, ch)) = challenge {
        out.tell(format_args!(
            "{} needs a sign-in for {}: {}. Signing in for that (name --scope to sign in for \
             something else).",
            account.username,
            ch.target(),
            ch.reason
        ));
        let scopes = ch.scope_list();
        args.tenant = ch.tenant;
        args.login_hint = Some(account.username);
        claims = ch.claims;
        scopes
    } else if args.scopes.is_empty() {
        vec![tokens.login_scope()]
    } else {
        args.scopes
    };
    let cancel = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let account = if args.device_code {
        let code = tokens
            .start_device_code(args.tenant.as_deref(), &scopes, claims.as_deref())
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
            // A challenge names its account: no account picker.
            prompt: claims.is_none().then(|| "select_account".into()),
            login_hint: args.login_hint,
            claims,
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
