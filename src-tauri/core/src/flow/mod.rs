//! Talking to Entra: the HTTP client for the token endpoints, PKCE, and the two interactive
//! flows ([`browser`]: auth code + PKCE with a loopback redirect, the page opened by [`open`];
//! [`device_code`]).
//!
//! Every answer is classified once, here: a token, an OAuth error the caller branches on, the
//! authority being unavailable (network, 5xx, 429 with `Retry-After`), or a protocol violation.

pub mod browser;
pub mod device_code;
pub mod open;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use sha2::{Digest as _, Sha256};
use url::Url;

use crate::authority::Authority;
use crate::cache::{RESERVED_SCOPES, TokenResponse};
use crate::config::Config;
use crate::secret::random_token;
use crate::{Error, Result};

/// An OAuth error answer from Entra (ENTRA-PROTOCOL.md 2.2). Carries no secrets.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct OAuthError {
    /// `invalid_grant`, `authorization_pending`, ...
    pub error: String,
    /// AADSTS code and text, then trace and correlation ids.
    #[serde(default)]
    pub error_description: String,
    /// AADSTS numbers.
    #[serde(default)]
    pub error_codes: Vec<u64>,
    /// `basic_action`, `consent_required`, ...
    #[serde(default)]
    pub suberror: Option<String>,
    /// A claims challenge (JSON) for the next interactive sign-in.
    #[serde(default)]
    pub claims: Option<String>,
    /// Extra info; `client_mismatch` ends FOCI probing.
    #[serde(default)]
    pub error_additional_info: Option<serde_json::Value>,
}

impl OAuthError {
    /// Whether only an interactive sign-in can fix it.
    pub fn needs_interaction(&self) -> bool {
        matches!(
            self.error.as_str(),
            "invalid_grant" | "interaction_required" | "consent_required" | "login_required"
        )
    }

    /// The first line of the description, with Entra's trace and correlation ids, for people.
    pub fn summary(&self) -> String {
        let line = crate::error::summary_with_ids(&self.error_description);
        if line.is_empty() {
            self.error.clone()
        } else {
            line.to_string()
        }
    }

    /// The typed error for an account, if this is not a retryable device-code state.
    pub fn into_error(self, account: &str) -> Error {
        if self.needs_interaction() {
            Error::InteractionRequired {
                account: account.into(),
                reason: self.summary(),
                claims: self.claims,
            }
        } else {
            Error::Authority {
                error: self.error,
                description: self.error_description,
                codes: self.error_codes,
            }
        }
    }

    /// The typed error for an interactive sign-in that Entra refused: it is the sign-in that
    /// failed, not an account that must sign in again.
    pub fn into_sign_in_error(self) -> Error {
        Error::SignIn {
            outcome: crate::error::SignInOutcome::Refused,
            detail: format!(
                "Entra ID answered {}: {}. Check the tenant (--tenant) and the scopes \
                 (--scope), then sign in again",
                self.error,
                self.summary()
            ),
        }
    }
}

/// How a token request failed.
#[derive(Debug)]
pub enum Failure {
    /// The authority answered with an OAuth error.
    OAuth(OAuthError),
    /// Anything else (unavailable, protocol).
    Other(Error),
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        Self::Other(e)
    }
}

/// The HTTP client tokentray reaches Entra (and the services it hands Entra tokens to, such as
/// a container registry's token exchange) with: the system roots plus every certificate of
/// `ca_file`, no redirects, 10 s to connect and 30 s per request.
///
/// # Errors
/// [`Error::Config`] for an unreadable CA file; [`Error::NotOwner`] or
/// [`Error::WritableByOthers`] for a CA file another user could change (Unix).
pub(crate) fn http_client(config: &Config) -> Result<reqwest::Client> {
    build_client(&config.path, &extra_roots(config)?)
}

/// The certificates of the configured `ca_file` (none without one), read and checked.
///
/// # Errors
/// As [`http_client`], for the CA file.
fn extra_roots(config: &Config) -> Result<Vec<reqwest::Certificate>> {
    let Some(path) = &config.ca_file else {
        return Ok(Vec::new());
    };
    // The user's own (or root's, as system bundles are): a CA another user can change
    // would let them stand in for Entra ID.
    let unreadable = |why: String| Error::Config {
        path: config.path.clone(),
        detail: format!("ca_file {}: {why}", path.display()),
    };
    let pem = crate::files::read_trusted(path, crate::files::Owner::UserOrRoot)
        .map_err(|e| match e {
            Error::Io { source, .. } => unreadable(source.to_string()),
            other => other,
        })?
        .ok_or_else(|| unreadable("no such file".into()))?;
    let not_pem = |why: String| Error::Config {
        path: config.path.clone(),
        detail: format!("ca_file {} is not a PEM certificate: {why}", path.display()),
    };
    let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| not_pem(e.to_string()))?;
    if certs.is_empty() {
        return Err(not_pem("it holds no certificate".into()));
    }
    Ok(certs)
}

/// The HTTP client, trusting the system's roots (read from disk here: a few milliseconds) and
/// `extra`; `config_path` names the config in its error.
fn build_client(config_path: &Path, extra: &[reqwest::Certificate]) -> Result<reqwest::Client> {
    let mut builder = reqwest::Client::builder()
        .user_agent(concat!("tokentray/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(30))
        .redirect(reqwest::redirect::Policy::none());
    for cert in extra {
        builder = builder.add_root_certificate(cert.clone());
    }
    builder.build().map_err(|e| Error::Config {
        path: config_path.to_path_buf(),
        detail: format!("HTTP client: {e}"),
    })
}

/// The client tokentray uses to reach Entra: one connection pool, the configured client id.
#[derive(Debug, Clone)]
pub struct Entra {
    /// Built on first use ([`Entra::http`]): a process that serves from the cache never loads
    /// the system's root certificates.
    http: Arc<std::sync::OnceLock<reqwest::Client>>,
    /// `ca_file`'s certificates, checked when this is made, so a bad one is reported at once.
    extra_roots: Arc<[reqwest::Certificate]>,
    config_path: PathBuf,
    authority: Authority,
    client_id: String,
    redirect_ports: Option<crate::config::PortRange>,
}

impl Entra {
    /// A client for the configured authority; trusts the system roots plus `ca_file`.
    ///
    /// # Errors
    /// [`Error::Config`] for a bad authority or an unreadable CA file; [`Error::NotOwner`] or
    /// [`Error::WritableByOthers`] for a CA file another user could change (Unix).
    pub fn new(config: &Config) -> Result<Self> {
        Ok(Self {
            http: Arc::default(),
            extra_roots: extra_roots(config)?.into(),
            config_path: config.path.clone(),
            authority: Authority::from_config(config)?,
            client_id: config.client_id.clone(),
            redirect_ports: config.redirect_ports,
        })
    }

    /// The HTTP client, built on a blocking thread the first time (it reads the system's root
    /// certificates from disk).
    ///
    /// # Errors
    /// [`Error::Config`] if it cannot be built.
    async fn http(&self) -> Result<reqwest::Client> {
        if let Some(client) = self.http.get() {
            return Ok(client.clone());
        }
        let (path, extra) = (self.config_path.clone(), self.extra_roots.clone());
        let built = tokio::task::spawn_blocking(move || build_client(&path, &extra))
            .await
            .map_err(|e| Error::Config {
                path: self.config_path.clone(),
                detail: format!("HTTP client: {e}"),
            })??;
        Ok(self.http.get_or_init(|| built).clone())
    }

    /// The configured authority.
    pub fn authority(&self) -> &Authority {
        &self.authority
    }

    /// The client id.
    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// The tenant id of `domain` (e.g. `contoso.com`), from its OpenID configuration's `issuer`,
    /// as MSAL's tenant discovery finds it. `None` when Entra cannot be reached, refuses (e.g.
    /// AADSTS90002, no such tenant) or names no tenant id; why is logged at debug level.
    pub(crate) async fn tenant_id_of(&self, domain: &str) -> Option<String> {
        #[derive(serde::Deserialize)]
        struct Configuration {
            issuer: String,
        }
        let authority = self.authority.with_tenant(domain);
        let origin = authority.origin();
        let answer = async {
            let response = self
                .http()
                .await
                .ok()?
                .get(authority.openid_configuration())
                .header("client-request-id", request_id().ok()?)
                .send()
                .await
                .map_err(|e| {
                    tracing::debug!("tenant discovery for {domain}: {}", describe(&origin, &e))
                })
                .ok()?;
            let status = response.status().as_u16();
            let bytes = response.bytes().await.ok()?;
            let why = match read_answer::<Configuration>(&origin, status, None, &bytes) {
                Ok(found) => return Some(found.issuer),
                Err(Failure::OAuth(e)) => e.summary(),
                Err(Failure::Other(e)) => e.to_string(),
            };
            tracing::debug!("tenant discovery for {domain}: {why}");
            None
        };
        let issuer = answer.await?;
        let tid = crate::authority::issuer_tenant(&issuer).map(str::to_ascii_lowercase);
        if tid.is_none() {
            tracing::debug!(
                "tenant discovery for {domain}: the issuer {issuer:?} names no tenant id"
            );
        }
        tid
    }

    /// POSTs a token request to `authority`'s token endpoint; `anchor` is the home account id
    /// of the account it is for, when known (a refresh).
    pub(crate) async fn token(
        &self,
        authority: &Authority,
        form: &[(&str, &str)],
        anchor: Option<&str>,
    ) -> std::result::Result<TokenResponse, Failure> {
        // client_info=1: Entra adds the account's uid.utid to the answer (MSAL sends it with token
        // and authorize requests, not the device-code one).
        let mut body = vec![("client_info", "1")];
        body.extend_from_slice(form);
        self.post(authority.token_endpoint(), authority, &body, anchor)
            .await
    }

    /// POSTs a form and reads a JSON answer, classifying failures. Sends the headers MSAL
    /// sends: a new `client-request-id` (Entra echoes it as the correlation id), the library's
    /// name, version and OS, `x-ms-lib-capability: retry-after, h429`, and for an account's
    /// request (`anchor`: `uid.utid`) the routing hint `X-AnchorMailbox: Oid:uid@utid`.
    pub(crate) async fn post<T: DeserializeOwned>(
        &self,
        url: Url,
        authority: &Authority,
        form: &[(&str, &str)],
        anchor: Option<&str>,
    ) -> std::result::Result<T, Failure> {
        let origin = authority.origin();
        let mut body: Vec<(&str, &str)> = vec![("client_id", &self.client_id)];
        body.extend_from_slice(form);
        let mut request = self
            .http()
            .await?
            .post(url)
            .header("Accept", "application/json")
            .header("client-request-id", request_id()?)
            .header("x-client-SKU", CLIENT_SKU)
            .header("x-client-VER", env!("CARGO_PKG_VERSION"))
            .header("x-client-OS", std::env::consts::OS)
            .header("x-ms-lib-capability", "retry-after, h429");
        if let Some((uid, utid)) = anchor.and_then(|hid| hid.split_once('.')) {
            // The routing hint MSAL sends for an account's refresh: it lets Entra's backup
            // authentication service answer during an outage.
            request = request.header("X-AnchorMailbox", format!("Oid:{uid}@{utid}"));
        }
        let response = request
            .form(&body)
            .send()
            .await
            .map_err(|e| unavailable(&origin, &e))?;
        let status = response.status();
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        let bytes = response
            .bytes()
            .await
            .map_err(|e| unavailable(&origin, &e))?;
        read_answer(&origin, status.as_u16(), retry_after, &bytes)
    }
}

/// `x-client-SKU`: the library Entra sees (MSAL Python sends `MSAL.Python`).
const CLIENT_SKU: &str = "tokentray";

/// A random (version 4) UUID, as `client-request-id` takes it.
fn request_id() -> Result<String> {
    let mut b = [0u8; 16];
    crate::secret::random_bytes(&mut b)?;
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex = crate::secret::hex(&b);
    Ok(format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    ))
}

/// Classifies an answer of `origin` (HTTP `status`, `Retry-After` seconds, body): 429 and 5xx
/// are the authority being unavailable, a 2xx body is the `T` asked for, anything else must be
/// an OAuth error.
#[allow(clippy::result_large_err)] // the answer `Entra::post` returns, as it is
pub(crate) fn read_answer<T: DeserializeOwned>(
    origin: &str,
    status: u16,
    retry_after: Option<u64>,
    body: &[u8],
) -> std::result::Result<T, Failure> {
    if status == 429 || (500..600).contains(&status) {
        return Err(Failure::Other(Error::AuthorityUnavailable {
            detail: format!("HTTP {status} from {origin}"),
            retry_after,
        }));
    }
    if (200..300).contains(&status) {
        return serde_json::from_slice(body).map_err(|_| {
            Failure::Other(Error::Protocol(format!(
                "{origin} answered with something that is not a token response"
            )))
        });
    }
    match serde_json::from_slice::<OAuthError>(body) {
        Ok(e) if !e.error.is_empty() => Err(Failure::OAuth(e)),
        _ => Err(Failure::Other(Error::Protocol(format!(
            "{origin} answered HTTP {status} without an OAuth error"
        )))),
    }
}

fn unavailable(origin: &str, e: &reqwest::Error) -> Failure {
    Failure::Other(Error::AuthorityUnavailable {
        detail: describe(origin, e),
        retry_after: None,
    })
}

/// What went wrong with a request to `origin`, with every cause (`cannot connect: ORIGIN: ...:
/// invalid peer certificate: ...`); never a secret (reqwest's errors carry the URL, not the body).
pub(crate) fn describe(origin: &str, e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "cannot connect"
    } else {
        "request failed"
    };
    let mut detail = format!("{kind}: {origin}");
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        detail = format!("{detail}: {s}");
        source = s.source();
    }
    detail
}

/// A PKCE pair (RFC 7636): a 43-character verifier and its S256 challenge.
pub(crate) struct Pkce {
    pub verifier: crate::secret::Secret,
    pub challenge: String,
}

impl Pkce {
    pub(crate) fn new() -> Result<Self> {
        Ok(Self::from_verifier(random_token(32)?))
    }

    /// The pair for a given verifier.
    fn from_verifier(verifier: String) -> Self {
        let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(Sha256::digest(verifier.as_bytes()));
        Self {
            verifier: crate::secret::Secret::new(verifier),
            challenge,
        }
    }
}

/// The scopes in `text`, split on ASCII whitespace and commas (how the CLI's `--scope` and the
/// native API's `scope=` take several).
pub fn parse_scopes(text: &str) -> Vec<String> {
    text.split(|c: char| c.is_ascii_whitespace() || c == ',')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// Requested scopes plus the reserved ones, sorted and space-joined (as MSAL sends them).
pub fn scope_param(scopes: &[String]) -> String {
    let mut all: Vec<&str> = scopes.iter().map(String::as_str).collect();
    for r in RESERVED_SCOPES {
        if !all.contains(&r) {
            all.push(r);
        }
    }
    all.sort_unstable();
    all.dedup();
    all.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_sign_in_says_so_with_entras_ids() {
        let refused = OAuthError {
            error: "invalid_scope".into(),
            error_description: "AADSTS70011: The provided value for scope is not valid.\r\n\
                Trace ID: 0f3c\r\nCorrelation ID: 9a1b\r\nTimestamp: 2026-12-01 10:00:00Z"
                .into(),
            error_codes: vec![70011],
            ..OAuthError::default()
        };
        let e = refused.into_sign_in_error();
        assert_eq!(e.code(), crate::ErrorCode::SignInDenied);
        let text = e.to_string();
        assert!(!text.contains("must sign in again"), "{text}");
        assert!(
            text.contains(
                "AADSTS70011: The provided value for scope is not valid. (trace id 0f3c, \
                 correlation id 9a1b)"
            ),
            "{text}"
        );
        assert!(text.contains("--tenant"), "{text}");
    }

    #[test]
    fn pkce_challenge_is_rfc_7636_s256() {
        // RFC 7636, Appendix B.
        let p = Pkce::from_verifier("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk".into());
        assert_eq!(p.challenge, "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
    }

    #[test]
    fn pkce_verifiers_are_fresh_43_character_tokens() {
        let p = Pkce::new().unwrap();
        assert_eq!(p.verifier.expose().len(), 43);
        assert_ne!(Pkce::new().unwrap().verifier, p.verifier);
    }

    #[test]
    fn scope_param_adds_reserved_scopes_sorted() {
        let s = scope_param(&["https://x/.default".into(), "openid".into()]);
        assert_eq!(s, "https://x/.default offline_access openid profile");
    }
}
