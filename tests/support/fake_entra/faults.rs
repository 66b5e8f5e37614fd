//! Scripted failures: a queue of rules, each answering the next N matching requests with a fault
//! instead of (or, for delays, before) the normal answer.

use std::sync::{Mutex, PoisonError};

use serde::{Deserialize, Serialize};

/// The endpoints a fault (and a log entry) can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Endpoint {
    /// Every endpoint except `/_fake/` (only as a fault target).
    Any,
    /// `/{tenant}/v2.0/.well-known/openid-configuration`
    OpenidConfiguration,
    /// `/common/discovery/instance`
    InstanceDiscovery,
    /// `/{tenant}/discovery/v2.0/keys`
    Keys,
    /// `/{tenant}/oauth2/v2.0/authorize` (GET and the sign-in POST)
    Authorize,
    /// `/{tenant}/oauth2/v2.0/token`
    Token,
    /// `/{tenant}/oauth2/v2.0/devicecode`
    Devicecode,
    /// `/devicelogin`
    Devicelogin,
    /// `/{tenant}/oauth2/v2.0/logout`
    Logout,
    /// Anything else outside `/_fake/` (404s, `/error`).
    Other,
    /// The `/_fake/` control API (never logged, never faulted).
    Control,
}

impl Endpoint {
    /// Which endpoint a path belongs to.
    pub fn classify(path: &str) -> Self {
        if path == "/_fake" || path.starts_with("/_fake/") {
            return Self::Control;
        }
        if path == "/common/discovery/instance" {
            return Self::InstanceDiscovery;
        }
        if path == "/devicelogin" {
            return Self::Devicelogin;
        }
        let tenant_scoped = |suffix: &str| {
            path.strip_suffix(suffix)
                .is_some_and(|t| t.len() > 1 && t.starts_with('/') && !t[1..].contains('/'))
        };
        [
            (
                "/v2.0/.well-known/openid-configuration",
                Self::OpenidConfiguration,
            ),
            ("/discovery/v2.0/keys", Self::Keys),
            ("/oauth2/v2.0/authorize", Self::Authorize),
            ("/oauth2/v2.0/token", Self::Token),
            ("/oauth2/v2.0/devicecode", Self::Devicecode),
            ("/oauth2/v2.0/logout", Self::Logout),
        ]
        .into_iter()
        .find(|(suffix, _)| tenant_scoped(suffix))
        .map_or(Self::Other, |(_, e)| e)
    }
}

/// What goes wrong.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Fault {
    /// An HTTP error status with an Entra-shaped `temporarily_unavailable` body
    /// (e.g. 500, 503, or 429 with `retry_after`).
    Status {
        /// The status code.
        status: u16,
        /// `Retry-After` header, seconds.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        retry_after: Option<u64>,
    },
    /// Wait this long (real time), then answer normally.
    Delay {
        /// Milliseconds.
        ms: u64,
    },
    /// Close the connection without answering.
    Drop,
    /// `invalid_grant` (default AADSTS70000), as for a bad or revoked grant.
    InvalidGrant {
        /// AADSTS number.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        code: Option<u32>,
        /// Description (after `AADSTSnnnn: `).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        description: Option<String>,
        /// `suberror`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        suberror: Option<String>,
    },
    /// `interaction_required` with a claims challenge (default AADSTS50079,
    /// suberror `basic_action`), as Conditional Access / MFA step-up answers a refresh.
    InteractionRequired {
        /// The claims challenge, a JSON string ([`DEFAULT_CLAIMS`] if absent).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        claims: Option<String>,
        /// AADSTS number.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        code: Option<u32>,
        /// Description.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        description: Option<String>,
        /// `suberror`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        suberror: Option<String>,
    },
    /// Any OAuth error in Entra's shape.
    Error {
        /// The `error` value.
        error: String,
        /// AADSTS number.
        code: u32,
        /// Description.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        description: Option<String>,
        /// `suberror`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        suberror: Option<String>,
        /// `claims`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        claims: Option<String>,
        /// HTTP status (400 if absent).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        status: Option<u16>,
    },
}

/// The Conditional Access policy id [`DEFAULT_CLAIMS`] asks for.
pub const CHALLENGE_POLICY: &str = "c0a1b2c3-d4e5-4f60-8a7b-9c0d1e2f3a4b";

/// The claims challenge of an [`Fault::InteractionRequired`] that names none (naming
/// [`CHALLENGE_POLICY`]).
pub const DEFAULT_CLAIMS: &str = r#"{"access_token":{"capolids":{"essential":true,"values":["c0a1b2c3-d4e5-4f60-8a7b-9c0d1e2f3a4b"]}}}"#;

impl Fault {
    /// HTTP `status` with Entra's `temporarily_unavailable` body, and `Retry-After` if given.
    pub fn status(status: u16, retry_after: Option<u64>) -> Self {
        Self::Status {
            status,
            retry_after,
        }
    }

    /// `interaction_required` with the defaults: AADSTS50079, `basic_action`, [`DEFAULT_CLAIMS`].
    pub fn interaction_required() -> Self {
        Self::InteractionRequired {
            claims: None,
            code: None,
            description: None,
            suberror: None,
        }
    }

    /// The OAuth error `error` (e.g. `slow_down`) with AADSTS code 0, status 400 and nothing else.
    pub fn oauth(error: &str) -> Self {
        Self::Error {
            error: error.to_string(),
            code: 0,
            description: None,
            suberror: None,
            claims: None,
            status: None,
        }
    }

    /// The kind's name, as logged.
    pub fn kind(&self) -> &'static str {
        match self {
            Fault::Status { .. } => "status",
            Fault::Delay { .. } => "delay",
            Fault::Drop => "drop",
            Fault::InvalidGrant { .. } => "invalid_grant",
            Fault::InteractionRequired { .. } => "interaction_required",
            Fault::Error { .. } => "error",
        }
    }
}

/// One queued rule: `fault` for the next `count` requests to `endpoint`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultRule {
    /// Which endpoint (`any` for all but `/_fake/`).
    pub endpoint: Endpoint,
    /// Only token requests with this `grant_type` match (e.g. `refresh_token`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grant_type: Option<String>,
    /// How many matching requests it applies to (default 1).
    #[serde(default = "one")]
    pub count: u32,
    /// What happens.
    pub fault: Fault,
}

fn one() -> u32 {
    1
}

impl FaultRule {
    /// `fault` for the next request to `endpoint`.
    pub fn once(endpoint: Endpoint, fault: Fault) -> Self {
        Self {
            endpoint,
            grant_type: None,
            count: 1,
            fault,
        }
    }

    /// Applies to the next `count` matching requests.
    pub fn times(mut self, count: u32) -> Self {
        self.count = count;
        self
    }

    /// Only matches token requests with this grant type.
    pub fn for_grant(mut self, grant_type: &str) -> Self {
        self.grant_type = Some(grant_type.to_string());
        self
    }

    fn matches(&self, endpoint: Endpoint, grant_type: Option<&str>) -> bool {
        (self.endpoint == endpoint
            || (self.endpoint == Endpoint::Any && endpoint != Endpoint::Control))
            && self
                .grant_type
                .as_deref()
                .is_none_or(|g| Some(g) == grant_type)
    }
}

/// Pending rules, first queued first applied.
#[derive(Debug, Default)]
pub struct FaultQueue {
    rules: Mutex<Vec<FaultRule>>,
}

impl FaultQueue {
    /// Appends a rule (a count of 0 is ignored).
    pub fn push(&self, rule: FaultRule) {
        if rule.count > 0 {
            self.lock().push(rule);
        }
    }

    /// Takes one use of the first rule matching this request, if any.
    pub fn take(&self, endpoint: Endpoint, grant_type: Option<&str>) -> Option<Fault> {
        let mut rules = self.lock();
        let i = rules.iter().position(|r| r.matches(endpoint, grant_type))?;
        let fault = rules[i].fault.clone();
        rules[i].count -= 1;
        if rules[i].count == 0 {
            rules.remove(i);
        }
        Some(fault)
    }

    /// The rules still pending.
    pub fn pending(&self) -> Vec<FaultRule> {
        self.lock().clone()
    }

    /// Drops every pending rule.
    pub fn clear(&self) {
        self.lock().clear();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<FaultRule>> {
        self.rules.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_classified() {
        assert_eq!(
            Endpoint::classify("/common/oauth2/v2.0/token"),
            Endpoint::Token
        );
        assert_eq!(
            Endpoint::classify("/contoso.example/oauth2/v2.0/authorize"),
            Endpoint::Authorize
        );
        assert_eq!(
            Endpoint::classify("/organizations/v2.0/.well-known/openid-configuration"),
            Endpoint::OpenidConfiguration
        );
        assert_eq!(
            Endpoint::classify("/common/discovery/instance"),
            Endpoint::InstanceDiscovery
        );
        assert_eq!(Endpoint::classify("/_fake/log"), Endpoint::Control);
        assert_eq!(
            Endpoint::classify("/a/b/oauth2/v2.0/token"),
            Endpoint::Other
        );
    }

    #[test]
    fn rules_apply_count_times_in_order() {
        let q = FaultQueue::default();
        q.push(
            FaultRule::once(Endpoint::Token, Fault::Drop)
                .times(2)
                .for_grant("refresh_token"),
        );
        q.push(FaultRule::once(Endpoint::Any, Fault::Delay { ms: 1 }));
        assert_eq!(
            q.take(Endpoint::Token, Some("authorization_code")),
            Some(Fault::Delay { ms: 1 })
        );
        assert_eq!(
            q.take(Endpoint::Token, Some("refresh_token")),
            Some(Fault::Drop)
        );
        assert_eq!(q.take(Endpoint::Control, None), None);
        assert_eq!(
            q.take(Endpoint::Token, Some("refresh_token")),
            Some(Fault::Drop)
        );
        assert_eq!(q.take(Endpoint::Token, Some("refresh_token")), None);
    }

    #[test]
    fn rules_parse_from_json() {
        let rule: FaultRule = serde_json::from_str(
            r#"{"endpoint":"token","count":2,"fault":{"kind":"status","status":429,"retry_after":3}}"#,
        )
        .unwrap();
        assert_eq!(rule.fault, Fault::status(429, Some(3)));
        assert!(
            serde_json::from_str::<FaultRule>(
                r#"{"endpoint":"token","fault":{"kind":"status","statu":500}}"#
            )
            .is_err()
        );
    }
}
