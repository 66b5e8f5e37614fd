//! `tokentray subscriptions`: the Azure subscriptions (and tenants) each signed-in account can
//! use, from Azure Resource Manager ([`crate::subscriptions`]); and what the `az` shim's
//! `az account` commands share with it: the context they read and the listing.

use super::token::fetch;
use super::{Out, open_tokens};
use crate::Result;
use crate::authority::Authority;
use crate::cache::AccountInfo;
use crate::config::Config;
use crate::paths::Paths;
use crate::serve::TokenBody;
use crate::subscriptions::{self, Known, Subscription};
use crate::tokens::TokenRequest;

/// Lists every signed-in account's subscriptions: its kept list while fresh (unless
/// `refresh`), else ARM's; an account whose ARM token cannot be had shows what was listed
/// before, if anything, and why on stderr. The default subscription (`az account set`, else the
/// default account's first enabled one in its tenant) is marked `*`; tenants show by name.
pub(super) async fn subscriptions(refresh: bool, out: &mut Out<'_>) -> Result<()> {
    let context = Context::load()?;
    let mut known = context.known();
    let mut rows: Vec<(String, Subscription, bool)> = Vec::new();
    for listing in every_account(&context, &mut known, refresh, out).await? {
        for s in listing.subscriptions {
            let is_default = listing.default.as_deref() == Some(s.subscription_id.as_str());
            rows.push((listing.account.username.clone(), s, is_default));
        }
    }
    if out.json {
        let entries: Vec<serde_json::Value> = rows
            .iter()
            .map(|(user, s, is_default)| {
                serde_json::json!({
                    "account": user,
                    "subscription_id": s.subscription_id,
                    "name": s.display_name,
                    "state": s.state,
                    "tenant_id": s.tenant_id,
                    "tenant_name": known.tenant_name(&s.tenant_id),
                    "is_default": is_default,
                })
            })
            .collect();
        return out.json(&entries);
    }
    if rows.is_empty() && !out.tsv {
        return out.line(if open_tokens()?.accounts()?.is_empty() {
            "No accounts. Sign in with `tokentray login`."
        } else {
            "No subscriptions: the accounts signed in have none in their tenants."
        });
    }
    let table: Vec<[String; 6]> = rows
        .iter()
        .map(|(user, s, is_default)| {
            [
                if *is_default { "*" } else { "" }.to_string(),
                s.display_name.clone(),
                s.subscription_id.clone(),
                s.state.clone(),
                known
                    .tenant_name(&s.tenant_id)
                    .unwrap_or(&s.tenant_id)
                    .to_string(),
                user.clone(),
            ]
        })
        .collect();
    out.table(["", "NAME", "ID", "STATE", "TENANT", "ACCOUNT"], &table)
}

/// One signed-in account's subscriptions, as [`every_account`] lists them.
pub(super) struct AccountListing {
    /// The account.
    pub(super) account: AccountInfo,
    /// The tenant its ARM token is for (its home tenant when no token could be had).
    pub(super) tenant: String,
    /// Its subscriptions, as listed.
    pub(super) subscriptions: Vec<Subscription>,
    /// Its default subscription's id, if it is the default account and has one.
    pub(super) default: Option<String>,
}

/// Every signed-in account's subscriptions: the kept list while fresh (unless `refresh`),
/// else ARM's; an account whose ARM token cannot be had gets what was listed before, and is
/// left out when nothing was, either way with why on stderr.
pub(super) async fn every_account(
    context: &Context,
    known: &mut Known,
    refresh: bool,
    out: &mut Out<'_>,
) -> Result<Vec<AccountListing>> {
    let mut listings = Vec::new();
    for account in open_tokens()?.accounts()? {
        let (tenant, subscriptions) = match arm_token(context, Some(&account.username), out).await {
            Ok(body) => {
                let subscriptions = listed(context, known, &body, refresh, out).await;
                (body.tenant, subscriptions)
            }
            Err(e) => match known.of(&account.username) {
                Some(kept) => {
                    out.tell(format_args!(
                        "{}: {e}; showing the subscriptions listed before",
                        account.username
                    ));
                    (
                        account.home_tenant.clone().unwrap_or_default(),
                        kept.subscriptions.clone(),
                    )
                }
                None => {
                    out.tell(format_args!("{}: {e}", account.username));
                    continue;
                }
            },
        };
        let default = known
            .default_for(&account.username, &tenant)
            .filter(|_| account.is_default)
            .map(|d| d.subscription_id.clone());
        listings.push(AccountListing {
            account,
            tenant,
            subscriptions,
            default,
        });
    }
    Ok(listings)
}

/// What every command reads first.
pub(super) struct Context {
    pub(super) config: Config,
    pub(super) authority: Authority,
    pub(super) paths: Paths,
    pub(super) now: i64,
}

impl Context {
    /// The configuration, at the system clock's now.
    pub(super) fn load() -> Result<Self> {
        let paths = Paths::from_env()?;
        let config = Config::load(&paths.config_file())?;
        let authority = Authority::from_config(&config)?;
        Ok(Self {
            config,
            authority,
            paths,
            now: crate::clock::now(),
        })
    }

    pub(super) fn known(&self) -> Known {
        Known::load(&self.paths.subscriptions())
    }

    /// Keeps `known`; a failure only costs a listing next time.
    pub(super) fn keep(&self, known: &Known) {
        if let Err(e) = known.save(&self.paths.subscriptions()) {
            tracing::warn!("the subscription list was not kept: {e}");
        }
    }
}

/// An ARM token for `account` (the default account if `None`), in its default tenant.
pub(super) async fn arm_token(
    context: &Context,
    account: Option<&str>,
    out: &mut Out<'_>,
) -> Result<TokenBody> {
    let scope = context.authority.login_scope();
    fetch(
        &TokenRequest {
            account,
            scopes: std::slice::from_ref(&scope),
            tenant: None,
        },
        out.stderr,
    )
    .await
}

/// The subscriptions of the account `body` is for: the kept list while fresh (unless
/// `refresh`), else ARM's, kept; the kept one however old when ARM cannot be reached.
pub(super) async fn listed(
    context: &Context,
    known: &mut Known,
    body: &TokenBody,
    refresh: bool,
    out: &mut Out<'_>,
) -> Vec<Subscription> {
    if !refresh && let Some(kept) = known.fresh(&body.account, context.now) {
        return kept.subscriptions.clone();
    }
    let listing = async {
        let client = crate::flow::http_client(&context.config)?;
        subscriptions::list(
            &client,
            context.authority.arm_endpoint(),
            &body.access_token,
        )
        .await
    };
    match listing.await {
        Ok(listing) => {
            let subscriptions = listing.subscriptions.clone();
            known.put(&body.account, listing, context.now);
            context.keep(known);
            subscriptions
        }
        Err(e) => {
            out.tell(format_args!("{e}; using the subscriptions listed before"));
            known
                .of(&body.account)
                .map(|kept| kept.subscriptions.clone())
                .unwrap_or_default()
        }
    }
}
