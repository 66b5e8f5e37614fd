//! Token responses into cache entries, the way MSAL Python's `TokenCache.add` does
//! (ENTRA-PROTOCOL.md 5.4).

use serde::Deserialize;

use super::json::null_raw;
use super::{
    AccessToken, Account, AppMetadata, ClientInfo, DEVICE_CODE_GRANT, IdToken, IdTokenClaims,
    MAX_TOKEN_LIFE_SECS, RefreshToken, TokenCache, account_key, app_metadata_key, id_token_key,
    refresh_token_key,
};
use crate::secret::Secret;
use crate::{Error, Result};

/// How a token response was obtained; decides `account_source` and refresh-token handling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grant<'a> {
    /// Authorization code (browser) flow.
    AuthorizationCode,
    /// Device code flow.
    DeviceCode,
    /// A refresh; the new refresh token replaces the secret of the entry with this key
    /// (which may be a family sibling's), and no account is created.
    RefreshToken {
        /// Key of the refresh-token entry that was redeemed.
        used: &'a str,
    },
}

impl Grant<'_> {
    fn account_source(&self) -> Option<&'static str> {
        match self {
            Self::AuthorizationCode => Some("authorization_code"),
            Self::DeviceCode => Some(DEVICE_CODE_GRANT),
            Self::RefreshToken { .. } => None,
        }
    }
}

/// The context of a token response: who asked, where, for what.
#[derive(Debug, Clone, Copy)]
pub struct TokenEvent<'a> {
    /// Client id that made the request.
    pub client_id: &'a str,
    /// Authority host (lower-case, no port): the cache `environment`.
    pub environment: &'a str,
    /// Tenant segment of the token endpoint path: the cache `realm`.
    pub realm: &'a str,
    /// Scopes requested (used as the target when the response has no `scope`).
    pub requested_scopes: &'a [String],
    /// Which grant produced it.
    pub grant: Grant<'a>,
}

/// A successful token endpoint response (ENTRA-PROTOCOL.md 2.1).
#[derive(Debug, Default, Deserialize)]
pub struct TokenResponse {
    /// Usually `Bearer`.
    pub token_type: Option<String>,
    /// Granted scopes, space-separated.
    pub scope: Option<String>,
    /// Seconds until the access token expires (integer or, from v1-like endpoints, a string).
    #[serde(default, deserialize_with = "int_or_string")]
    pub expires_in: Option<i64>,
    /// Seconds of extended lifetime.
    #[serde(default, deserialize_with = "int_or_string")]
    pub ext_expires_in: Option<i64>,
    /// Seconds after which to refresh proactively.
    #[serde(default, deserialize_with = "int_or_string")]
    pub refresh_in: Option<i64>,
    /// Absolute expiry (managed-identity style responses).
    #[serde(default, deserialize_with = "int_or_string")]
    pub expires_on: Option<i64>,
    /// The access token.
    pub access_token: Option<Secret>,
    /// The refresh token.
    pub refresh_token: Option<Secret>,
    /// The id token.
    pub id_token: Option<Secret>,
    /// base64url `{uid, utid}`.
    pub client_info: Option<String>,
    /// `"1"` if the client is in the Microsoft family.
    pub foci: Option<String>,
}

fn int_or_string<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> std::result::Result<Option<i64>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum IntOrString {
        Int(i64),
        Float(f64),
        Str(String),
    }
    Ok(match Option::<IntOrString>::deserialize(d)? {
        None => None,
        Some(IntOrString::Int(i)) => Some(i),
        #[allow(clippy::cast_possible_truncation)]
        Some(IntOrString::Float(f)) => Some(f as i64),
        Some(IntOrString::Str(s)) => s.trim().parse().ok(),
    })
}

/// What an ingested response established.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ingested {
    /// `{uid}.{utid}` of the account, if the response identified one.
    pub home_account_id: Option<String>,
}

impl TokenCache {
    /// Ingests a successful token response the way MSAL Python's `TokenCache.add` does
    /// (ENTRA-PROTOCOL.md 5.4): access token, account, id token, refresh token (rotated in place
    /// for a refresh grant), app metadata.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] if the id_token cannot be decoded or is not for `client_id`;
    /// nothing is written then.
    pub fn ingest(
        &mut self,
        event: &TokenEvent<'_>,
        mut response: TokenResponse,
        now: i64,
    ) -> Result<Ingested> {
        let claims = checked_claims(&response, event.client_id)?;
        let (client_info_known, home_account_id) = account_id(&response, claims.as_ref());
        // A tenant given as a domain is recorded as the tenant id Entra answered (MSAL's
        // discovery does the same), so MSAL, Azure CLI and tokentray find each other's tokens.
        let tid = claims.as_ref().and_then(|c| c.tid.clone());
        let realm = match tid {
            Some(tid) if event.realm.contains('.') => {
                self.state
                    .tenant_ids
                    .insert(event.realm.to_ascii_lowercase(), tid.clone());
                tid
            }
            _ => self.tenant_id(event.realm).to_string(),
        };
        let entry = Common {
            home_account_id: home_account_id.clone(),
            environment: Some(event.environment.to_string()),
            realm: Some(realm),
            client_id: Some(event.client_id.to_string()),
            target: target(&response, event),
        };
        if let Some(access_token) = response.access_token.take() {
            self.put_access_token_from(&entry, access_token, &response, now);
        }
        let creates_account = !matches!(event.grant, Grant::RefreshToken { .. });
        if client_info_known && creates_account {
            self.put_account_from(&entry, event, claims.unwrap_or_default());
        }
        if let Some(id_token) = response.id_token.take() {
            let idt = IdToken {
                credential_type: Some("IdToken".into()),
                secret: Some(id_token),
                home_account_id: entry.home_account_id.clone(),
                environment: entry.environment.clone(),
                realm: entry.realm.clone(),
                client_id: entry.client_id.clone(),
                ..IdToken::default()
            };
            self.id_tokens.insert(id_token_key(&idt), idt);
        }
        if let Some(refresh_token) = response.refresh_token.take() {
            self.put_refresh_token_from(&entry, event.grant, refresh_token, &response, now);
        }
        let meta = AppMetadata {
            client_id: entry.client_id,
            environment: entry.environment,
            family_id: response.foci,
            ..AppMetadata::default()
        };
        self.app_metadata.insert(app_metadata_key(&meta), meta);
        Ok(Ingested { home_account_id })
    }

    fn put_access_token_from(
        &mut self,
        entry: &Common,
        access_token: Secret,
        response: &TokenResponse,
        now: i64,
    ) {
        let default_expires_in = response.expires_on.map_or(600, |on| on.saturating_sub(now));
        // A lifetime out of range (negative, or longer than any token lives) counts as expired.
        let in_range = |secs: i64| Some(secs).filter(|s| (0..=MAX_TOKEN_LIFE_SECS).contains(s));
        let expires_in = in_range(response.expires_in.unwrap_or(default_expires_in)).unwrap_or(0);
        let ext_expires_in = response
            .ext_expires_in
            .and_then(in_range)
            .unwrap_or(expires_in);
        let mut at = AccessToken {
            credential_type: Some("AccessToken".into()),
            secret: Some(access_token),
            home_account_id: entry.home_account_id.clone(),
            environment: entry.environment.clone(),
            client_id: entry.client_id.clone(),
            target: Some(entry.target.clone()),
            realm: entry.realm.clone(),
            token_type: Some(
                response
                    .token_type
                    .clone()
                    .unwrap_or_else(|| "Bearer".into()),
            ),
            cached_at: Some(now.to_string()),
            expires_on: Some(now.saturating_add(expires_in).to_string()),
            extended_expires_on: Some(now.saturating_add(ext_expires_in).to_string()),
            refresh_on: response
                .refresh_in
                .map(|r| now.saturating_add(r).to_string()),
            ..AccessToken::default()
        };
        if entry.home_account_id.is_none() {
            at.extra.insert("home_account_id".into(), null_raw());
        }
        self.put_access_token(at);
    }

    fn put_account_from(&mut self, entry: &Common, event: &TokenEvent<'_>, claims: IdTokenClaims) {
        let account = Account {
            home_account_id: entry.home_account_id.clone(),
            environment: entry.environment.clone(),
            realm: entry.realm.clone(),
            local_account_id: claims.oid.clone().or_else(|| claims.sub.clone()),
            username: Some(claims.username().unwrap_or_default().to_string()),
            authority_type: Some(
                if event.realm == "adfs" {
                    "ADFS"
                } else {
                    "MSSTS"
                }
                .into(),
            ),
            account_source: event.grant.account_source().map(str::to_string),
            ..Account::default()
        };
        self.accounts.insert(account_key(&account), account);
    }

    /// A refresh grant's new refresh token replaces the redeemed entry's secret in place;
    /// otherwise a new entry is written.
    fn put_refresh_token_from(
        &mut self,
        entry: &Common,
        grant: Grant<'_>,
        refresh_token: Secret,
        response: &TokenResponse,
        now: i64,
    ) {
        if let Grant::RefreshToken { used } = grant
            && let Some(rt) = self.refresh_tokens.get_mut(used)
        {
            rt.secret = Some(refresh_token);
            rt.last_modification_time = Some(now.to_string());
            return;
        }
        let rt = RefreshToken {
            credential_type: Some("RefreshToken".into()),
            secret: Some(refresh_token),
            home_account_id: entry.home_account_id.clone(),
            environment: entry.environment.clone(),
            client_id: entry.client_id.clone(),
            target: Some(entry.target.clone()),
            last_modification_time: Some(now.to_string()),
            family_id: response.foci.clone(),
            ..RefreshToken::default()
        };
        self.refresh_tokens.insert(refresh_token_key(&rt), rt);
    }
}

/// What every entry written for one response shares.
struct Common {
    home_account_id: Option<String>,
    environment: Option<String>,
    realm: Option<String>,
    client_id: Option<String>,
    /// The granted scopes (the requested ones if the answer names none), sorted.
    target: String,
}

/// The id_token's claims, checked to be for `client_id`.
fn checked_claims(response: &TokenResponse, client_id: &str) -> Result<Option<IdTokenClaims>> {
    let Some(idt) = &response.id_token else {
        return Ok(None);
    };
    let claims = IdTokenClaims::decode(idt)
        .ok_or_else(|| Error::invalid("id_token from the authority", "not a decodable JWT"))?;
    if !claims.aud.contains(client_id) {
        return Err(Error::invalid(
            "id_token from the authority",
            format!("its audience is not this client ({client_id}); refusing the sign-in"),
        ));
    }
    Ok(Some(claims))
}

/// The account the response identifies (`client_info`, else the id_token's `sub`), and whether
/// it identifies one at all.
fn account_id(response: &TokenResponse, claims: Option<&IdTokenClaims>) -> (bool, Option<String>) {
    match response.client_info.as_deref().and_then(ClientInfo::decode) {
        Some(ci) if ci.home_account_id().is_some() => (true, ci.home_account_id()),
        _ => match claims.and_then(|c| c.sub.clone()) {
            Some(sub) => (true, Some(sub)),
            None => (false, None),
        },
    }
}

fn target(response: &TokenResponse, event: &TokenEvent<'_>) -> String {
    let granted: Vec<&str> = response
        .scope
        .as_deref()
        .map(|s| s.split_whitespace().collect())
        .unwrap_or_default();
    let mut scopes: Vec<&str> = if granted.is_empty() {
        event.requested_scopes.iter().map(String::as_str).collect()
    } else {
        granted
    };
    scopes.sort_unstable();
    scopes.join(" ")
}
