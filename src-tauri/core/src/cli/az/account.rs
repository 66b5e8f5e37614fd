//! The `az account` commands the shim answers: `get-access-token`, `show`, `list` and `set`,
//! from tokentray's accounts and the subscriptions ARM lists for them ([`crate::subscriptions`]).
//!
//! As in az, the default subscription decides the tenant of a token asked for without
//! `--tenant`, and `--subscription` picks the account and tenant the subscription belongs to;
//! `account set` makes a subscription the default (and its account tokentray's default account).
//! An account with no subscriptions shows as az's tenant-level account (`az login
//! --allow-no-subscriptions`): its tenant id as `id`, `N/A(tenant level account)` as `name`.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::{AzToken, GetToken, Out};
use crate::cli::open_tokens;
use crate::cli::subscriptions::{AccountListing, Context, arm_token, every_account, listed};
use crate::cli::token::fetch;
use crate::serve::TokenBody;
use crate::subscriptions::{Known, Subscription};
use crate::tokens::TokenRequest;
use crate::{Error, Result};

/// `account get-access-token`.
pub(super) async fn get_token(
    context: &Context,
    request: &GetToken,
    subscription: Option<&str>,
    out: &mut Out<'_>,
) -> Result<Value> {
    let scopes = request
        .scopes(&context.authority)
        .ok_or_else(|| Error::invalid("--resource-type", "not one the az shim knows"))?;
    let ask = |account, tenant| TokenRequest {
        account,
        scopes: &scopes,
        tenant,
    };
    let mut known = context.known();
    if let Some(query) = subscription {
        let (user, chosen) = find(context, &mut known, query, out).await?;
        let body = fetch(&ask(Some(&user), Some(&chosen.tenant_id)), out.stderr).await?;
        return answer(&body, Some(chosen.subscription_id));
    }
    let body = fetch(&ask(None, request.tenant.as_deref()), out.stderr).await?;
    if request.tenant.is_some() {
        return answer(&body, None);
    }
    // As az: the default subscription's tenant, when tokentray knows the subscriptions.
    match known.default_for(&body.account, &body.tenant) {
        Some(chosen) if chosen.tenant_id.eq_ignore_ascii_case(&body.tenant) => {
            answer(&body, Some(chosen.subscription_id.clone()))
        }
        Some(chosen) => {
            let (id, tenant) = (chosen.subscription_id.clone(), chosen.tenant_id.clone());
            let body = fetch(&ask(Some(&body.account), Some(&tenant)), out.stderr).await?;
            answer(&body, Some(id))
        }
        None => answer(&body, None),
    }
}

fn answer(body: &TokenBody, subscription: Option<String>) -> Result<Value> {
    let mut token = AzToken::new(body);
    token.subscription = subscription;
    serde_json::to_value(&token).map_err(|e| Error::io("write", "stdout", std::io::Error::other(e)))
}

/// `account show`: the subscription `--subscription` names, else the default account's
/// default one.
pub(super) async fn show(
    context: &Context,
    subscription: Option<&str>,
    out: &mut Out<'_>,
) -> Result<Value> {
    let mut known = context.known();
    if let Some(query) = subscription {
        let (user, chosen) = find(context, &mut known, query, out).await?;
        let is_default = known
            .default_for(&user, &chosen.tenant_id)
            .is_some_and(|d| d.subscription_id == chosen.subscription_id);
        return Ok(entry(
            context,
            &user,
            Some(&chosen),
            &chosen.tenant_id,
            is_default,
        ));
    }
    let body = arm_token(context, None, out).await?;
    listed(context, &mut known, &body, false, out).await;
    let chosen = known.default_for(&body.account, &body.tenant);
    Ok(entry(context, &body.account, chosen, &body.tenant, true))
}

/// `account list`: every signed-in account's subscriptions (only enabled ones unless `all`),
/// listed from ARM again if `refresh`.
pub(super) async fn list(
    context: &Context,
    all: bool,
    refresh: bool,
    out: &mut Out<'_>,
) -> Result<Value> {
    let mut known = context.known();
    let mut entries = Vec::new();
    for listing in every_account(context, &mut known, refresh, out).await? {
        let AccountListing {
            account,
            tenant,
            subscriptions,
            default,
        } = listing;
        let shown: Vec<&Subscription> = subscriptions
            .iter()
            .filter(|s| all || s.state == "Enabled")
            .collect();
        if shown.is_empty() {
            entries.push(entry(
                context,
                &account.username,
                None,
                &tenant,
                account.is_default,
            ));
        }
        for s in shown {
            let is_default = default.as_deref() == Some(s.subscription_id.as_str());
            entries.push(entry(
                context,
                &account.username,
                Some(s),
                &s.tenant_id,
                is_default,
            ));
        }
    }
    Ok(Value::Array(entries))
}

/// `account set`: makes the subscription `query` names the default, and its account
/// tokentray's default account.
pub(super) async fn set(context: &Context, query: &str, out: &mut Out<'_>) -> Result<()> {
    let mut known = context.known();
    let (user, chosen) = find(context, &mut known, query, out).await?;
    known.default = Some(chosen.subscription_id);
    context.keep(&known);
    let tokens = open_tokens()?;
    let is_default = tokens
        .accounts()?
        .iter()
        .any(|a| a.is_default && a.username.eq_ignore_ascii_case(&user));
    if !is_default {
        tokens.switch(&user)?;
    }
    Ok(())
}

/// The subscription `query` names (id or name), with its account's username: from the kept
/// lists, else from every account's list from ARM.
async fn find(
    context: &Context,
    known: &mut Known,
    query: &str,
    out: &mut Out<'_>,
) -> Result<(String, Subscription)> {
    if let Some((user, s)) = known.find(query) {
        return Ok((user.to_string(), s.clone()));
    }
    for account in open_tokens()?.accounts()? {
        if let Ok(body) = arm_token(context, Some(&account.username), out).await {
            listed(context, known, &body, true, out).await;
        }
    }
    known
        .find(query)
        .map(|(user, s)| (user.to_string(), s.clone()))
        .ok_or_else(|| {
            Error::invalid(
                format!("subscription {query:?}"),
                "not found in the subscriptions of the accounts signed in to tokentray; check the \
                 spelling, or sign in with the account that has it (`tokentray login`)",
            )
        })
}

/// One entry of `account show` and `account list`, as az prints it (keys sorted); a
/// tenant-level account for `tenant` when there is no subscription.
fn entry(
    context: &Context,
    username: &str,
    subscription: Option<&Subscription>,
    tenant: &str,
    is_default: bool,
) -> Value {
    let (id, name, state, tenant, managed_by) = match subscription {
        Some(s) => (
            s.subscription_id.as_str(),
            s.display_name.as_str(),
            s.state.as_str(),
            s.tenant_id.as_str(),
            s.managed_by_tenants
                .iter()
                .map(|m| json!({ "tenantId": m.tenant_id }))
                .collect(),
        ),
        None => (
            tenant,
            "N/A(tenant level account)",
            "Enabled",
            tenant,
            Vec::new(),
        ),
    };
    let fields: BTreeMap<&str, Value> = BTreeMap::from([
        ("environmentName", context.authority.cloud().az_name.into()),
        ("homeTenantId", tenant.into()),
        ("id", id.into()),
        ("isDefault", is_default.into()),
        ("managedByTenants", Value::Array(managed_by)),
        ("name", name.into()),
        ("state", state.into()),
        ("tenantId", tenant.into()),
        ("user", json!({ "name": username, "type": "user" })),
    ]);
    Value::Object(
        fields
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
    )
}
