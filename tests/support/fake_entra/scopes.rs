//! Scope requests and what the fake grants for them, following Entra's rules:
//!
//! * `openid`, `profile`, `email` and `offline_access` are OIDC scopes: they decide whether an
//!   id_token and a refresh token are issued; Entra does not list them in `scope` (except for
//!   Microsoft Graph, which exposes them as permissions).
//! * Every other scope names a resource and a permission (`https://host/perm`, `api://id/perm`,
//!   `{app-guid}/perm`); a bare name (`User.Read`) is a Microsoft Graph permission. One request
//!   may target one resource only (AADSTS28000).
//! * `{resource}/.default` grants itself plus the resource's default delegated permission
//!   (`user_impersonation`, or `User.Read` for Graph), e.g.
//!   `https://management.core.windows.net//.default` →
//!   `https://management.core.windows.net//.default https://management.core.windows.net//user_impersonation`.
//! * No resource scope at all: a Graph token with `User.Read`, as Entra issues.

use super::aad_error::AadError;
use super::ids::is_guid;

const GRAPH: &str = "https://graph.microsoft.com";
const GRAPH_APP_ID: &str = "00000003-0000-0000-c000-000000000000";
const OIDC: [&str; 4] = ["openid", "profile", "email", "offline_access"];

/// A parsed and validated `scope` parameter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScopeRequest {
    /// The OIDC scopes asked for.
    pub oidc: Vec<String>,
    /// The resource scopes, as written by the client.
    pub resource_scopes: Vec<String>,
}

/// What a token grants.
#[derive(Debug, Clone)]
pub struct Granted {
    /// The access token's `aud`.
    pub audience: String,
    /// The response's `scope` field, in order.
    pub scope: Vec<String>,
    /// The access token's `scp` (permission names, space-separated).
    pub scp: String,
    /// Whether an id_token is issued (`openid` asked for).
    pub id_token: bool,
    /// Whether a refresh token is issued (`offline_access` asked for).
    pub refresh_token: bool,
    /// Whether the id_token carries `email` (`email` asked for).
    pub email: bool,
}

/// One resource scope split into resource and permission.
struct Permission<'a> {
    resource: &'a str,
    name: &'a str,
}

impl<'a> Permission<'a> {
    fn parse(scope: &'a str) -> Result<Self, AadError> {
        let invalid = || AadError::invalid_scope(&format!("The scope {scope} isn't valid."));
        if !scope.contains('/') {
            return Ok(Self {
                resource: GRAPH,
                name: scope,
            });
        }
        let (resource, name) = scope.rsplit_once('/').ok_or_else(invalid)?;
        let valid_resource = match resource.split_once("://") {
            Some((scheme, rest)) => !scheme.is_empty() && !rest.is_empty(),
            None => is_guid(resource),
        };
        if !valid_resource || name.is_empty() || name.contains(char::is_whitespace) {
            return Err(invalid());
        }
        Ok(Self { resource, name })
    }

    /// The resource, normalised so `https://x/` and `https://x` (and Graph's app id) compare equal.
    fn resource_key(&self) -> String {
        let r = self.resource.trim_end_matches('/').to_ascii_lowercase();
        if r == GRAPH_APP_ID {
            GRAPH.to_string()
        } else {
            r
        }
    }

    fn is_graph(&self) -> bool {
        self.resource_key() == GRAPH
    }
}

impl ScopeRequest {
    /// Parses a space-separated `scope` parameter.
    pub fn parse(scope: &str) -> Result<Self, AadError> {
        let mut oidc = Vec::new();
        let mut resource_scopes: Vec<String> = Vec::new();
        for s in scope.split_whitespace() {
            if OIDC.iter().any(|o| o.eq_ignore_ascii_case(s)) {
                let lower = s.to_ascii_lowercase();
                if !oidc.contains(&lower) {
                    oidc.push(lower);
                }
            } else if !resource_scopes.iter().any(|r| r == s) {
                resource_scopes.push(s.to_string());
            }
        }
        if oidc.is_empty() && resource_scopes.is_empty() {
            return Err(AadError::missing_parameter("scope"));
        }
        let perms = resource_scopes
            .iter()
            .map(|s| Permission::parse(s))
            .collect::<Result<Vec<_>, _>>()?;
        if let Some(first) = perms.first() {
            if perms
                .iter()
                .any(|p| p.resource_key() != first.resource_key())
            {
                return Err(AadError::multiple_resources(scope));
            }
            let has_default = perms.iter().any(|p| p.name == ".default");
            if has_default && perms.len() > 1 {
                return Err(AadError::invalid_scope(&format!(
                    "The scope {scope} isn't valid. '.default' cannot be combined with other \
                     scopes of the same resource."
                )));
            }
        }
        Ok(Self {
            oidc,
            resource_scopes,
        })
    }

    /// Whether `name` (an OIDC scope) was asked for.
    pub fn has(&self, name: &str) -> bool {
        self.oidc.iter().any(|o| o == name)
    }

    /// What Entra grants for this request.
    pub fn grant(&self) -> Granted {
        let perms: Vec<Permission<'_>> = self
            .resource_scopes
            .iter()
            .filter_map(|s| Permission::parse(s).ok())
            .collect();
        let graph = perms.first().is_none_or(Permission::is_graph);
        let mut scope = Vec::new();
        let mut scp = Vec::new();
        if perms.is_empty() {
            scope.push("User.Read".to_string());
            scp.push("User.Read".to_string());
        }
        for (p, written) in perms.iter().zip(&self.resource_scopes) {
            scope.push(written.clone());
            if p.name == ".default" {
                let default = if graph {
                    "User.Read"
                } else {
                    "user_impersonation"
                };
                let prefix = &written[..written.len() - ".default".len()];
                scope.push(format!("{prefix}{default}"));
                scp.push(default.to_string());
            } else {
                scp.push(p.name.to_string());
            }
        }
        if graph {
            // Graph exposes the OIDC scopes as permissions, so its grants list them.
            for o in ["profile", "openid", "email"]
                .into_iter()
                .filter(|o| self.has(o))
            {
                scope.push(o.to_string());
                scp.push(o.to_string());
            }
        }
        let audience = match perms.first() {
            None => GRAPH.to_string(),
            Some(p) if p.is_graph() => GRAPH.to_string(),
            Some(p) => p.resource.to_string(),
        };
        Granted {
            audience,
            scope,
            scp: scp.join(" "),
            id_token: self.has("openid"),
            refresh_token: self.has("offline_access"),
            email: self.has("email"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_scope_echoes_user_impersonation() {
        let req = ScopeRequest::parse(
            "https://management.core.windows.net//.default offline_access openid profile",
        )
        .unwrap();
        let g = req.grant();
        assert_eq!(
            g.scope.join(" "),
            "https://management.core.windows.net//.default \
             https://management.core.windows.net//user_impersonation"
        );
        assert_eq!(g.audience, "https://management.core.windows.net/");
        assert_eq!(g.scp, "user_impersonation");
        assert!(g.id_token && g.refresh_token);
    }

    #[test]
    fn graph_lists_oidc_scopes() {
        let g = ScopeRequest::parse("User.Read openid profile offline_access")
            .unwrap()
            .grant();
        assert_eq!(g.scope.join(" "), "User.Read profile openid");
        assert_eq!(g.audience, GRAPH);
    }

    #[test]
    fn invalid_scopes_are_refused() {
        assert_eq!(
            ScopeRequest::parse("https://x.example/").unwrap_err().code,
            70011
        );
        assert_eq!(ScopeRequest::parse("a/b").unwrap_err().code, 70011);
        assert_eq!(
            ScopeRequest::parse("https://a.example/x https://b.example/y")
                .unwrap_err()
                .code,
            28000
        );
        assert_eq!(
            ScopeRequest::parse("https://a.example/.default https://a.example/y")
                .unwrap_err()
                .code,
            70011
        );
        assert_eq!(ScopeRequest::parse("  ").unwrap_err().code, 900144);
    }
}
