//! The Entra authority: host, tenant, and the v2.0 endpoint URLs (ENTRA-PROTOCOL.md 1.1).
//!
//! Endpoints are built from Entra's fixed paths (`/{tenant}/oauth2/v2.0/...`) rather than
//! discovered, which saves a round trip on every start; sovereign clouds use the same paths.

use url::Url;

use crate::config::Config;
use crate::{Error, Result};

/// Sovereign clouds selectable by name in `authority`.
pub const CLOUDS: [(&str, &str); 3] = [
    ("public", "https://login.microsoftonline.com"),
    ("usgov", "https://login.microsoftonline.us"),
    ("china", "https://login.chinacloudapi.cn"),
];

/// An authority host and tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authority {
    base: Url,
    tenant: String,
}

impl Authority {
    /// The configured authority (a URL, or a cloud name from [`CLOUDS`]) and tenant.
    ///
    /// # Errors
    /// [`Error::Config`] if the URL is invalid or not https (plain http is accepted only for a
    /// loopback host, for tests).
    pub fn from_config(config: &Config) -> Result<Self> {
        let bad = |detail: String| Error::Config {
            path: config.path.clone(),
            detail,
        };
        let text = CLOUDS
            .iter()
            .find(|(name, _)| *name == config.authority)
            .map_or(config.authority.as_str(), |(_, url)| url);
        let base =
            Url::parse(text).map_err(|e| bad(format!("authority {text:?} is not a URL: {e}")))?;
        let loopback = matches!(base.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"));
        if base.scheme() != "https" && !(base.scheme() == "http" && loopback) {
            return Err(bad(format!("authority {text:?} must be an https URL")));
        }
        if base.host_str().is_none() {
            return Err(bad(format!("authority {text:?} has no host")));
        }
        let tenant = config.tenant.trim_matches('/').to_string();
        if tenant.is_empty() || tenant.contains('/') {
            return Err(bad(format!(
                "tenant {tenant:?} must be a tenant id, domain, organizations or common"
            )));
        }
        Ok(Self { base, tenant })
    }

    /// The same host with another tenant.
    pub fn with_tenant(&self, tenant: &str) -> Self {
        Self {
            base: self.base.clone(),
            tenant: tenant.to_string(),
        }
    }

    /// The tenant segment.
    pub fn tenant(&self) -> &str {
        &self.tenant
    }

    /// The cache `environment`: host, lower-case, no port.
    pub fn environment(&self) -> String {
        self.base
            .host_str()
            .unwrap_or_default()
            .trim_matches(['[', ']'])
            .to_ascii_lowercase()
    }

    /// The host as written in URLs (with port), for messages.
    pub fn origin(&self) -> String {
        self.base.origin().ascii_serialization()
    }

    fn endpoint(&self, path: &str) -> Url {
        let mut url = self.base.clone();
        url.set_path(&format!("/{}/{path}", self.tenant));
        url.set_query(None);
        url
    }

    /// `/{tenant}/oauth2/v2.0/authorize`
    pub fn authorize_endpoint(&self) -> Url {
        self.endpoint("oauth2/v2.0/authorize")
    }

    /// `/{tenant}/oauth2/v2.0/token`
    pub fn token_endpoint(&self) -> Url {
        self.endpoint("oauth2/v2.0/token")
    }

    /// `/{tenant}/oauth2/v2.0/devicecode`
    pub fn device_code_endpoint(&self) -> Url {
        self.endpoint("oauth2/v2.0/devicecode")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn config(authority: &str, tenant: &str) -> Config {
        let mut c = Config::defaults(Path::new("/x/config.toml"));
        c.authority = authority.into();
        c.tenant = tenant.into();
        c
    }

    #[test]
    fn endpoints_follow_entra_paths() {
        let a = Authority::from_config(&config("https://127.0.0.1:8443", "common")).unwrap();
        assert_eq!(
            a.token_endpoint().as_str(),
            "https://127.0.0.1:8443/common/oauth2/v2.0/token"
        );
        assert_eq!(a.environment(), "127.0.0.1");
        let b = a.with_tenant("contoso.onmicrosoft.com");
        assert_eq!(
            b.device_code_endpoint().path(),
            "/contoso.onmicrosoft.com/oauth2/v2.0/devicecode"
        );
        let cn = Authority::from_config(&config("china", "organizations")).unwrap();
        assert_eq!(cn.environment(), "login.chinacloudapi.cn");
    }

    #[test]
    fn http_only_for_loopback() {
        assert!(Authority::from_config(&config("http://127.0.0.1:9", "common")).is_ok());
        let err =
            Authority::from_config(&config("http://login.example.com", "common")).unwrap_err();
        assert!(err.to_string().contains("https"), "{err}");
        assert!(Authority::from_config(&config("https://h", "a/b")).is_err());
    }
}
