//! Token responses into cache entries, the way MSAL Python's `TokenCache.add` does
//! (ENTRA-PROTOCOL.md 5.4).

use serde::Deserialize;

use super::json::null_raw;
use super::{
    AccessToken, Account, AppMetadata, ClientInfo, DEVICE_CODE_GRANT, IdToken, IdTokenClaims,
    RefreshToken, TokenCache, account_key, app_metadata_key, id_token_key, refresh_token_key,
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
        response: TokenResponse,
        now: i64,
    ) -> Result<Ingested> {
        let claims = match &response.id_token {
            Some(idt) => {
                let claims = IdTokenClaims::decode(idt).ok_or_else(|| {
                    Error::invalid("id_token from the authority", "not a decodable JWT")
                })?;
                if !claims.aud.contains(event.client_id) {
                    return Err(Error::invalid(
                        "id_token from the authority",
                        format!(
                            "its audience is not this client ({}); refusing the sign-in",
                            event.client_id
                        ),
                    ));
                }
                Some(claims)
            }
            None => None,
        };
        let (client_info_known, home_account_id) =
            match response.client_info.as_deref().and_then(ClientInfo::decode) {
                Some(ci) if ci.home_account_id().is_some() => (true, ci.home_account_id()),
                _ => match claims.as_ref().and_then(|c| c.sub.clone()) {
                    Some(sub) => (true, Some(sub)),
                    None => (false, None),
                },
            };
        let target = {
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
        };
        let s = |v: &str| Some(v.to_string());
        let env = s(event.environment);
        let realm = s(event.realm);
        let client = s(event.client_id);

        if let Some(access_token) = response.access_token {
            let default_expires_in = response.expires_on.map_or(600, |on| on - now);
            let expires_in = response.expires_in.unwrap_or(default_expires_in);
            let ext_expires_in = response.ext_expires_in.unwrap_or(expires_in);
            let mut at = AccessToken {
                credential_type: s("AccessToken"),
                secret: Some(access_token),
                home_account_id: home_account_id.clone(),
                environment: env.clone(),
                client_id: client.clone(),
                target: Some(target.clone()),
                realm: realm.clone(),
                token_type: Some(
                    response
                        .token_type
                        .clone()
                        .unwrap_or_else(|| "Bearer".into()),
                ),
                cached_at: Some(now.to_string()),
                expires_on: Some((now + expires_in).to_string()),
                extended_expires_on: Some((now + ext_expires_in).to_string()),
                refresh_on: response.refresh_in.map(|r| (now + r).to_string()),
                ..AccessToken::default()
            };
            if home_account_id.is_none() {
                at.extra.insert("home_account_id".into(), null_raw());
            }
            self.put_access_token(at);
        }

        let creates_account = !matches!(event.grant, Grant::RefreshToken { .. });
        if client_info_known && creates_account {
            let claims = claims.clone().unwrap_or_default();
            let account = Account {
                home_account_id: home_account_id.clone(),
                environment: env.clone(),
                realm: realm.clone(),
                local_account_id: claims.oid.clone().or_else(|| claims.sub.clone()),
                username: Some(claims.username().unwrap_or_default().to_string()),
                authority_type: s(if event.realm == "adfs" {
                    "ADFS"
                } else {
                    "MSSTS"
                }),
                account_source: event.grant.account_source().map(str::to_string),
                ..Account::default()
            };
            self.accounts.insert(account_key(&account), account);
        }

        if let Some(id_token) = response.id_token {
            let idt = IdToken {
                credential_type: s("IdToken"),
                secret: Some(id_token),
                home_account_id: home_account_id.clone(),
                environment: env.clone(),
                realm: realm.clone(),
                client_id: client.clone(),
                ..IdToken::default()
            };
            self.id_tokens.insert(id_token_key(&idt), idt);
        }

        if let Some(refresh_token) = response.refresh_token {
            match event.grant {
                Grant::RefreshToken { used } if self.refresh_tokens.contains_key(used) => {
                    if let Some(rt) = self.refresh_tokens.get_mut(used) {
                        rt.secret = Some(refresh_token);
                        rt.last_modification_time = Some(now.to_string());
                    }
                }
                _ => {
                    let rt = RefreshToken {
                        credential_type: s("RefreshToken"),
                        secret: Some(refresh_token),
                        home_account_id: home_account_id.clone(),
                        environment: env.clone(),
                        client_id: client.clone(),
                        target: Some(target),
                        last_modification_time: Some(now.to_string()),
                        family_id: response.foci.clone(),
                        ..RefreshToken::default()
                    };
                    self.refresh_tokens.insert(refresh_token_key(&rt), rt);
                }
            }
        }

        let meta = AppMetadata {
            client_id: client,
            environment: env,
            family_id: response.foci,
            ..AppMetadata::default()
        };
        self.app_metadata.insert(app_metadata_key(&meta), meta);

        Ok(Ingested { home_account_id })
    }
}
