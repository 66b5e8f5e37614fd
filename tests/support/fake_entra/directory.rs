//! The fake's directory: users with stable identities, tenants, and the tenant segment of a URL.
//!
//! Identities are derived from the username alone (see [`User::new`]), so a user keeps the same
//! `oid`, home tenant and display name across runs and across processes.

use std::collections::BTreeMap;

use serde::Serialize;

use super::ids::{b64url, derived_guid};

/// A signed-up user.
#[derive(Clone)]
pub struct User {
    /// The sign-in name (`preferred_username`), as configured.
    pub username: String,
    /// Kept private: never logged, never serialized.
    password: String,
    /// Object id: `derived_guid("oid", lowercase username)`.
    pub oid: String,
    /// Home tenant: the configured tenant, else `derived_guid("tenant", lowercase domain)`.
    pub tenant_id: String,
    /// Display name: the local part, split on `.`, `_`, `-` and capitalised (`jane.doe` → `Jane Doe`).
    pub name: String,
}

/// What `/_fake/users` shows about a user (no password).
#[derive(Debug, Clone, Serialize)]
pub struct UserInfo {
    /// Sign-in name.
    pub username: String,
    /// Object id (`oid`, `client_info.uid`).
    pub oid: String,
    /// Home tenant id (`tid`, `client_info.utid`).
    pub tenant_id: String,
    /// Display name (`name`).
    pub name: String,
    /// MSAL's `home_account_id`: `{oid}.{tenant_id}`.
    pub home_account_id: String,
}

impl User {
    /// A user whose identity is derived from `username`; `tenant` overrides the derived home tenant.
    pub fn new(username: &str, password: &str, tenant: Option<&str>) -> Self {
        let lower = username.to_ascii_lowercase();
        let (local, domain) = lower.split_once('@').unwrap_or((lower.as_str(), ""));
        let tenant_id = match tenant {
            Some(t) => t.to_ascii_lowercase(),
            None => derived_guid("tenant", domain),
        };
        Self {
            username: username.to_string(),
            password: password.to_string(),
            oid: derived_guid("oid", &lower),
            tenant_id,
            name: display_name(local),
        }
    }

    /// The domain part of the username, lowercased ("" without `@`).
    pub fn domain(&self) -> String {
        self.username
            .split_once('@')
            .map(|(_, d)| d.to_ascii_lowercase())
            .unwrap_or_default()
    }

    /// `{oid}.{tenant_id}`, MSAL's `home_account_id`.
    pub fn home_account_id(&self) -> String {
        format!("{}.{}", self.oid, self.tenant_id)
    }

    /// The `client_info` value: unpadded base64url of `{"uid":…,"utid":…}`.
    pub fn client_info(&self) -> String {
        let json = serde_json::json!({ "uid": self.oid, "utid": self.tenant_id });
        b64url(json.to_string().as_bytes())
    }

    /// The pairwise `sub` Entra gives this user in tokens for `client_id`.
    pub fn subject(&self, client_id: &str) -> String {
        let digest = super::ids::sha256(format!("{}|{client_id}", self.oid).as_bytes());
        b64url(&digest)
    }

    /// The public view of this user.
    pub fn info(&self) -> UserInfo {
        UserInfo {
            username: self.username.clone(),
            oid: self.oid.clone(),
            tenant_id: self.tenant_id.clone(),
            name: self.name.clone(),
            home_account_id: self.home_account_id(),
        }
    }
}

fn display_name(local: &str) -> String {
    let words: Vec<String> = local
        .split(['.', '_', '-', '+'])
        .filter(|w| !w.is_empty())
        .map(|w| {
            let mut chars = w.chars();
            match chars.next() {
                Some(first) => first.to_uppercase().chain(chars).collect(),
                None => String::new(),
            }
        })
        .collect();
    if words.is_empty() {
        "Fake User".to_string()
    } else {
        words.join(" ")
    }
}

/// The tenant segment of a request path, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Realm {
    /// `common`: any tenant (and, at Entra, personal accounts).
    Common,
    /// `organizations`: any work or school tenant.
    Organizations,
    /// `consumers`: treated like `common` by the fake (it has no personal accounts).
    Consumers,
    /// One tenant, by id (a domain segment resolves to its tenant id).
    Tenant(String),
}

impl Realm {
    /// The segment Entra writes into discovery endpoints: multi-tenant names stay, tenants are ids.
    pub fn segment(&self) -> &str {
        match self {
            Realm::Common => "common",
            Realm::Organizations => "organizations",
            Realm::Consumers => "consumers",
            Realm::Tenant(id) => id,
        }
    }

    /// Whether `user` may sign in through this segment.
    pub fn admits(&self, user: &User) -> bool {
        match self {
            Realm::Tenant(id) => *id == user.tenant_id,
            _ => true,
        }
    }
}

/// Why a username/password pair was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignInRefusal {
    /// AADSTS50034: no such user.
    UnknownUser,
    /// AADSTS50126: wrong password.
    BadPassword,
    /// AADSTS50020: the user's home tenant is not the one in the URL.
    WrongTenant,
}

/// All users and the tenants they make known.
pub struct Directory {
    users: Vec<User>,
    /// Known tenant ids (lowercase) and domains (lowercase) mapped to tenant ids.
    tenants: BTreeMap<String, String>,
}

impl Directory {
    /// A directory of `users`; `tenant` (if any) is known even without users.
    pub fn new(users: Vec<User>, tenant: Option<&str>) -> Self {
        let mut tenants = BTreeMap::new();
        if let Some(t) = tenant {
            tenants.insert(t.to_ascii_lowercase(), t.to_ascii_lowercase());
        }
        for u in &users {
            tenants.insert(u.tenant_id.clone(), u.tenant_id.clone());
            let domain = u.domain();
            if !domain.is_empty() {
                tenants.entry(domain).or_insert_with(|| u.tenant_id.clone());
            }
        }
        Self { users, tenants }
    }

    /// Resolves a tenant path segment; `None` means Entra's AADSTS90002 "tenant not found".
    pub fn resolve(&self, segment: &str) -> Option<Realm> {
        let lower = segment.to_ascii_lowercase();
        match lower.as_str() {
            "common" => Some(Realm::Common),
            "organizations" => Some(Realm::Organizations),
            "consumers" => Some(Realm::Consumers),
            _ => self.tenants.get(&lower).map(|id| Realm::Tenant(id.clone())),
        }
    }

    /// The user with this sign-in name (case-insensitive).
    pub fn find(&self, username: &str) -> Option<&User> {
        self.users
            .iter()
            .find(|u| u.username.eq_ignore_ascii_case(username.trim()))
    }

    /// Checks a username/password pair for sign-in through `realm`.
    pub fn authenticate(
        &self,
        realm: &Realm,
        username: &str,
        password: &str,
    ) -> Result<&User, SignInRefusal> {
        let user = self.find(username).ok_or(SignInRefusal::UnknownUser)?;
        if !constant_time_eq(user.password.as_bytes(), password.as_bytes()) {
            return Err(SignInRefusal::BadPassword);
        }
        if !realm.admits(user) {
            return Err(SignInRefusal::WrongTenant);
        }
        Ok(user)
    }

    /// Every user, in configuration order.
    pub fn users(&self) -> &[User] {
        &self.users
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identities_are_derived_from_the_username() {
        let a = User::new("Jane.Doe@Contoso.example", "pw", None);
        let b = User::new("jane.doe@contoso.example", "other", None);
        assert_eq!(a.oid, b.oid);
        assert_eq!(a.tenant_id, b.tenant_id);
        assert_eq!(a.name, "Jane Doe");
        let c = User::new("bob@contoso.example", "pw", None);
        assert_eq!(a.tenant_id, c.tenant_id, "same domain, same tenant");
        assert_ne!(a.oid, c.oid);
    }

    #[test]
    fn domains_and_ids_resolve_to_the_tenant() {
        let u = User::new("alice@contoso.example", "pw", None);
        let dir = Directory::new(vec![u.clone()], None);
        assert_eq!(
            dir.resolve("Contoso.Example"),
            Some(Realm::Tenant(u.tenant_id.clone()))
        );
        assert_eq!(
            dir.resolve(&u.tenant_id),
            Some(Realm::Tenant(u.tenant_id.clone()))
        );
        assert_eq!(dir.resolve("organizations"), Some(Realm::Organizations));
        assert_eq!(dir.resolve("fabrikam.example"), None);
    }
}
