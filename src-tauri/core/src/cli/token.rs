//! `tokentray token`: a token from the running instance, or from the cache (refreshed if due)
//! when none runs.

use super::{Format, Out, TokenArgs, open_tokens};
use crate::authority::Authority;
use crate::config::Config;
use crate::flow::parse_scopes;
use crate::instance::{Endpoint, native_token};
use crate::paths::Paths;
use crate::serve::TokenBody;
use crate::tokens::TokenRequest;
use crate::{Error, Result};

/// Prints the token `args` asks for, as `args.format` says.
pub(super) async fn token(args: &TokenArgs, out: &mut Out<'_>) -> Result<()> {
    let scopes = requested_scopes(args)?;
    let request = TokenRequest {
        account: args.account.as_deref(),
        scopes: &scopes,
        tenant: args.tenant.as_deref(),
    };
    let body = fetch(&request, out.stderr).await?;
    print_token(out, &body, args.format)
}

/// The token `request` names: from the running instance when one answers (it refreshes, and
/// its backoff and approvals apply), else from the cache, refreshed here if due. What every
/// subcommand that hands a token to another program (`token`, `kube-token`, `git-credential`)
/// goes through.
///
/// A running instance that does not answer is said on `warn` (a subcommand's stderr, or a sink
/// for helpers whose stderr belongs to the tool that runs them).
///
/// # Errors
/// The instance's refusal as it gave it, or those of [`crate::tokens::Tokens::get_token`].
pub(super) async fn fetch(
    request: &TokenRequest<'_>,
    warn: &mut dyn std::io::Write,
) -> Result<TokenBody> {
    let paths = Paths::from_env()?;
    if let Some(endpoint) = Endpoint::running(&paths) {
        match native_token(&endpoint, request).await {
            Err(e @ Error::InstanceUnreachable { .. }) => {
                let _ = writeln!(warn, "{e}; using the cache directly");
            }
            answer => return answer,
        }
    }
    Ok(TokenBody::from(&open_tokens()?.get_token(request).await?))
}

/// The scopes `--scope` and `--resource` name; with neither, the cloud's Azure Resource Manager,
/// as `az account get-access-token` defaults to.
fn requested_scopes(args: &TokenArgs) -> Result<Vec<String>> {
    let mut scopes: Vec<String> = args.scopes.iter().flat_map(|s| parse_scopes(s)).collect();
    if let Some(resource) = &args.resource {
        scopes.push(format!("{resource}/.default"));
    }
    if scopes.is_empty() {
        let config = Config::load(&Paths::from_env()?.config_file())?;
        scopes.push(Authority::from_config(&config)?.login_scope());
    }
    Ok(scopes)
}

/// Prints a token as `format` asks; `az` is exactly what `az account get-access-token` prints.
fn print_token(out: &mut Out<'_>, body: &TokenBody, format: Format) -> Result<()> {
    match format {
        Format::Raw => out.line(body.access_token.expose()),
        Format::Json => out.json(body),
        Format::Az => out.json(&super::az::AzToken::new(body)),
    }
}
