//! `tokentray login`: the browser (auth code + PKCE) or a device code.

use serde_json::json;

use super::{LoginArgs, Out, open_tokens};
use crate::Result;
use crate::flow::browser;

/// Signs in and adds the account; Ctrl-C cancels.
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

/// Opens the system browser (honouring `$BROWSER`); always shows the URL too, in case no
/// browser opens.
fn open_browser(url: &url::Url, out: &mut Out<'_>) -> Result<()> {
    out.tell(format_args!(
        "Opening your browser to sign in. If it does not open, go to:\n{url}"
    ));
    if let Err(e) = webbrowser::open(url.as_str()) {
        out.tell(format_args!("(could not start a browser: {e})"));
    }
    Ok(())
}
