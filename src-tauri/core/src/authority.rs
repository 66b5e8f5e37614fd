//! The Entra authority: host, tenant, and the v2.0 endpoint URLs (ENTRA-PROTOCOL.md 1.1).
//!
//! Endpoints are built from Entra's fixed paths (`/{tenant}/oauth2/v2.0/...`) rather than
//! discovered, which saves a round trip on every start; sovereign clouds use the same paths.

use url::Url;

use crate::config::Config;
use crate::{Error, Result};

/// A cloud: its sign-in host and the resources tools ask for in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cloud {
    /// The name `authority` takes (`public`, `usgov`, `china`).
    pub name: &'static str,
    /// The sign-in host's base URL.
    pub authority: &'static str,
    /// Azure Resource Manager's token audience (Azure CLI's `active_directory_resource_id`):
    /// what `login` asks for when given no scope.
    pub arm_audience: &'static str,
    /// Microsoft Graph's resource.
    pub graph: &'static str,
    /// Azure Resource Manager's endpoint, where subscriptions are listed (azure-cli
    /// `cloud.py` `resource_manager`).
    pub arm_endpoint: &'static str,
    /// The cloud's name in Azure CLI (`az account show`'s `environmentName`).
    pub az_name: &'static str,
}

/// The clouds, the public one first (azure-cli `cloud.py`, hashicorp/go-azure-sdk
/// `environments`).
pub const CLOUDS: [Cloud; 3] = [
    Cloud {
        name: "public",
        authority: "https://login.microsoftonline.com",
        arm_audience: "https://management.core.windows.net/",
        graph: "https://graph.microsoft.com",
        arm_endpoint: "https://management.azure.com",
        az_name: "AzureCloud",
    },
    Cloud {
        name: "usgov",
        authority: "https://login.microsoftonline.us",
        arm_audience: "https://management.core.usgovcloudapi.net/",
        graph: "https://graph.microsoft.us",
        arm_endpoint: "https://management.usgovcloudapi.net",
        az_name: "AzureUSGovernment",
    },
    Cloud {
        name: "china",
        authority: "https://login.chinacloudapi.cn",
        arm_audience: "https://management.core.chinacloudapi.cn/",
        graph: "https://microsoftgraph.chinacloudapi.cn",
        arm_endpoint: "https://management.chinacloudapi.cn",
        az_name: "AzureChinaCloud",
    },
];

/// Whether `s` is a GUID (`04b07795-8ddb-461a-bbee-02f9e1bf7b46`, any case).
pub fn is_guid(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.iter().map(|g| g.len()).eq([8, 4, 4, 4, 12])
        && groups
            .iter()
            .all(|g| g.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// True for Entra's multi-tenant aliases (`organizations`, `common`, `consumers`, any case):
/// names that stand for whichever tenant signs in, not a tenant of their own. A token cached
/// under one was issued by the account's home tenant.
pub fn is_alias(s: &str) -> bool {
    ["organizations", "common", "consumers"]
        .iter()
        .any(|alias| s.eq_ignore_ascii_case(alias))
}

/// Whether `s` can name a tenant in an authority URL: a tenant id, `organizations`, `common`,
/// `consumers`, or a domain (two or more labels of letters, digits and inner hyphens).
pub fn is_tenant(s: &str) -> bool {
    let label = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    is_alias(s) || is_guid(s) || (s.contains('.') && s.split('.').all(label))
}

/// An authority host and tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authority {
    base: Url,
    tenant: String,
    arm: String,
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
            .find(|c| c.name == config.authority)
            .map_or(config.authority.as_str(), |c| c.authority);
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
        if !is_tenant(&tenant) {
            return Err(bad(format!(
                "tenant {tenant:?} must be a tenant id (a GUID), a domain such as \
                 contoso.onmicrosoft.com, or organizations, common or consumers"
            )));
        }
        let cloud = cloud_of(&base);
        let arm = config
            .arm_endpoint
            .clone()
            .unwrap_or_else(|| cloud.arm_endpoint.to_string());
        Ok(Self { base, tenant, arm })
    }

    /// The same host with another tenant.
    pub fn with_tenant(&self, tenant: &str) -> Self {
        Self {
            base: self.base.clone(),
            tenant: tenant.to_string(),
            arm: self.arm.clone(),
        }
    }

    /// The tenant segment.
    pub fn tenant(&self) -> &str {
        &self.tenant
    }

    /// The cache `environment`: host, lower-case, no port.
    pub fn environment(&self) -> String {
        environment_of(&self.base)
    }

    /// The cloud whose sign-in host this is; any other host (a test server, a proxy) counts
    /// as the public cloud.
    pub fn cloud(&self) -> &'static Cloud {
        cloud_of(&self.base)
    }

    /// Azure Resource Manager's endpoint, no trailing slash: the config's `arm_endpoint`, else
    /// the cloud's.
    pub fn arm_endpoint(&self) -> &str {
        &self.arm
    }

    /// The scope `login` and the window's sign-ins ask for when given none: this cloud's Azure
    /// Resource Manager, spelled as `az login` asks for it (`https://management.core.windows.net//.default`).
    pub fn login_scope(&self) -> String {
        format!("{}/.default", self.cloud().arm_audience)
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

    /// `/{tenant}/v2.0/.well-known/openid-configuration`: the tenant's OpenID configuration,
    /// whose `issuer` names the tenant id.
    pub fn openid_configuration(&self) -> Url {
        self.endpoint("v2.0/.well-known/openid-configuration")
    }
}

/// The tenant id an OpenID configuration's `issuer` names (`https://host/{tid}/v2.0`), if it
/// names one.
pub fn issuer_tenant(issuer: &str) -> Option<&str> {
    let path = issuer.strip_prefix("https://")?.split_once('/')?.1;
    path.split('/').next().filter(|t| is_guid(t))
}

/// `base`'s host, lower-case, no port, no brackets.
fn environment_of(base: &Url) -> String {
    base.host_str()
        .unwrap_or_default()
        .trim_matches(['[', ']'])
        .to_ascii_lowercase()
}

/// The cloud whose sign-in host `base` is; the public cloud for any other host.
fn cloud_of(base: &Url) -> &'static Cloud {
    let host = environment_of(base);
    CLOUDS
        .iter()
        .find(|c| c.authority.strip_prefix("https://") == Some(host.as_str()))
        .unwrap_or(&CLOUDS[0])
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn the_issuer_names_the_tenant_id() {
        let tid = "72f988bf-86f1-41af-91ab-2d7cd011db47";
        assert_eq!(
            issuer_tenant(&format!("https://login.microsoftonline.com/{tid}/v2.0")),
            Some(tid)
        );
        for other in [
            "https://login.microsoftonline.com/{tenantid}/v2.0",
            "https://sts.windows.net/contoso.com/",
            "http://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47/v2.0",
            "",
        ] {
            assert_eq!(issuer_tenant(other), None, "{other}");
        }
    }

    #[test]
    fn tenants_are_ids_domains_or_the_three_names() {
        for good in [
            "organizations",
            "Common",
            "consumers",
            "72f988bf-86f1-41af-91ab-2d7cd011db47",
            "contoso.onmicrosoft.com",
            "sub.contoso-corp.example",
        ] {
            assert!(is_tenant(good), "{good}");
        }
        for bad in [
            "",
            "contoso corp!",
            "contoso",
            "contoso..com",
            "-contoso.com",
            "contoso.com/x",
            "72f988bf-86f1-41af-91ab-2d7cd011db4",
        ] {
            assert!(!is_tenant(bad), "{bad}");
        }
        assert!(is_guid("04B07795-8ddb-461a-bbee-02f9e1bf7b46"));
        assert!(!is_guid("not-a-guid"));
    }

    #[test]
    fn each_cloud_signs_in_for_its_own_resource_manager() {
        let scope = |authority: &str| {
            Authority::from_config(&config(authority, "organizations"))
                .unwrap()
                .login_scope()
        };
        assert_eq!(
            scope("public"),
            "https://management.core.windows.net//.default"
        );
        assert_eq!(
            scope("usgov"),
            "https://management.core.usgovcloudapi.net//.default"
        );
        assert_eq!(
            scope("https://login.chinacloudapi.cn/"),
            "https://management.core.chinacloudapi.cn//.default"
        );
        assert_eq!(
            scope("https://127.0.0.1:8443"),
            "https://management.core.windows.net//.default",
            "a test server is the public cloud"
        );
        let china = Authority::from_config(&config("china", "organizations")).unwrap();
        assert_eq!(
            china.cloud().graph,
            "https://microsoftgraph.chinacloudapi.cn"
        );
    }

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
