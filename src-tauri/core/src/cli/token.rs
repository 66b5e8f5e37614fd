//! `tokentray token`: a token from the running instance, or from the cache (refreshed if due)
//! when none runs.

use super::{Format, Out, TokenArgs, open_tokens};
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
    let paths = Paths::from_env()?;
    let from_instance = match Endpoint::running(&paths) {
        Some(endpoint) => match native_token(&endpoint, &request).await {
            Err(e @ Error::InstanceUnreachable { .. }) => {
                out.tell(format_args!("{e}; using the cache directly"));
                None
            }
            answer => Some(answer?),
        },
        None => None,
    };
    let body = match from_instance {
        Some(body) => body,
        None => TokenBody::from(&open_tokens()?.get_token(&request).await?),
    };
    print_token(out, &body, args.format)
}

fn requested_scopes(args: &TokenArgs) -> Result<Vec<String>> {
    let mut scopes: Vec<String> = args.scopes.iter().flat_map(|s| parse_scopes(s)).collect();
    if let Some(resource) = &args.resource {
        scopes.push(format!("{resource}/.default"));
    }
    if scopes.is_empty() {
        return Err(Error::invalid(
            "tokentray token",
            "say which token: --scope https://management.azure.com/.default (or --resource https://management.azure.com/)",
        ));
    }
    Ok(scopes)
}

/// Prints a token as `format` asks; `az` is exactly what `az account get-access-token` prints.
fn print_token(out: &mut Out<'_>, body: &TokenBody, format: Format) -> Result<()> {
    match format {
        Format::Raw => out.line(body.access_token.expose()),
        Format::Json => out.json(body),
        Format::Az => {
            let expires_local = chrono::DateTime::from_timestamp(body.expires_on, 0)
                .map(|t| {
                    t.with_timezone(&chrono::Local)
                        .format("%Y-%m-%d %H:%M:%S%.6f")
                        .to_string()
                })
                .unwrap_or_default();
            let mut map = serde_json::Map::new();
            map.insert("accessToken".into(), body.access_token.expose().into());
            map.insert("expiresOn".into(), expires_local.into());
            map.insert("expires_on".into(), body.expires_on.into());
            map.insert("tenant".into(), body.tenant.clone().into());
            map.insert("tokenType".into(), body.token_type.clone().into());
            out.json(&map)
        }
    }
}
