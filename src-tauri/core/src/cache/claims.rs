//! Decoding of `id_token` claims and `client_info`, as MSAL does: payload only, no signature
//! check (the token came over TLS from the authority), `aud` must name our client.

use base64::Engine as _;
use serde::Deserialize;

use crate::secret::Secret;

/// The id_token claims tokentray uses.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct IdTokenClaims {
    /// Object id of the user in the tenant.
    pub oid: Option<String>,
    /// Subject.
    pub sub: Option<String>,
    /// Tenant id.
    pub tid: Option<String>,
    /// Sign-in name (Entra).
    pub preferred_username: Option<String>,
    /// Sign-in name (ADFS).
    pub upn: Option<String>,
    /// Display name.
    pub name: Option<String>,
    /// Nonce echoed from the authorize request.
    pub nonce: Option<String>,
    /// Expiry, epoch seconds (read from other JWTs too: a registry's refresh token).
    pub exp: Option<i64>,
    /// Audience: a string or a list of strings.
    #[serde(default)]
    pub aud: Audience,
    /// The client capabilities the token was issued to (access tokens: `["CP1"]` marks a
    /// Continuous Access Evaluation token).
    #[serde(default)]
    pub xms_cc: Option<Vec<String>>,
}

/// Whether `access_token` is a Continuous Access Evaluation token: issued to a client that
/// declared the `CP1` capability (Azure CLI does), long-lived (up to 28 hours) and revocable by
/// the resource with a claims challenge, which tools behind the endpoint cannot pass on.
pub fn is_cae(access_token: &Secret) -> bool {
    IdTokenClaims::decode(access_token)
        .and_then(|c| c.xms_cc)
        .is_some_and(|cc| cc.iter().any(|c| c == "CP1"))
}

/// The `aud` claim.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(untagged)]
pub enum Audience {
    /// No audience.
    #[default]
    None,
    /// One audience.
    One(String),
    /// Several.
    Many(Vec<String>),
}

impl Audience {
    /// Whether `client_id` is (one of) the audience(s); case-sensitive, as in MSAL.
    pub fn contains(&self, client_id: &str) -> bool {
        match self {
            Self::None => false,
            Self::One(a) => a == client_id,
            Self::Many(list) => list.iter().any(|a| a == client_id),
        }
    }
}

impl IdTokenClaims {
    /// Decodes the payload of a JWT id_token. `None` if it is not a decodable JWT.
    pub fn decode(id_token: &Secret) -> Option<Self> {
        let payload = id_token.expose().split('.').nth(1)?;
        serde_json::from_slice(&decode_part(payload)?).ok()
    }

    /// The username MSAL records: `preferred_username`, else `upn`.
    pub fn username(&self) -> Option<&str> {
        self.preferred_username.as_deref().or(self.upn.as_deref())
    }
}

/// `client_info`: `{uid, utid}` of the signed-in user.
#[derive(Debug, Clone, Deserialize)]
pub struct ClientInfo {
    /// Object id in the home tenant.
    pub uid: Option<String>,
    /// Home tenant id.
    pub utid: Option<String>,
}

impl ClientInfo {
    /// Decodes base64url (padded or not) JSON, as MSAL does.
    pub fn decode(encoded: &str) -> Option<Self> {
        serde_json::from_slice(&decode_part(encoded)?).ok()
    }

    /// `{uid}.{utid}` if both are present.
    pub fn home_account_id(&self) -> Option<String> {
        Some(format!(
            "{}.{}",
            self.uid.as_deref()?,
            self.utid.as_deref()?
        ))
    }
}

/// Base64url with or without padding (MSAL repairs padding; some writers use standard base64).
pub fn decode_part(part: &str) -> Option<Vec<u8>> {
    let trimmed = part.trim_end_matches('=');
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(trimmed)
        .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(trimmed))
        .ok()
}
