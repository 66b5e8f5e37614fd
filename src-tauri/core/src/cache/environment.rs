//! Which authority hosts are one environment (instance discovery metadata, ENTRA-PROTOCOL.md
//! 1.2): cache entries written under one alias are found under the others.

/// Host groups that are one environment (instance discovery metadata, ENTRA-PROTOCOL.md 1.2).
const ALIAS_GROUPS: &[&[&str]] = &[
    &[
        "login.microsoftonline.com",
        "login.windows.net",
        "login.microsoft.com",
        "sts.windows.net",
    ],
    &["login.partner.microsoftonline.cn", "login.chinacloudapi.cn"],
    &["login.microsoftonline.us", "login.usgovcloudapi.net"],
    &["login-us.microsoftonline.com"],
];

/// Whether two hosts are the same environment (equal, or aliases of one cloud). Allocation-free:
/// it is on the token-serving path.
pub fn same_environment(a: &str, b: &str) -> bool {
    a.eq_ignore_ascii_case(b)
        || ALIAS_GROUPS.iter().any(|g| {
            g.iter().any(|h| h.eq_ignore_ascii_case(a))
                && g.iter().any(|h| h.eq_ignore_ascii_case(b))
        })
}

/// The hosts that count as the same environment as `environment` (itself first).
pub fn environment_aliases(environment: &str) -> Vec<String> {
    let env = environment.to_ascii_lowercase();
    let mut out = vec![env.clone()];
    if let Some(group) = ALIAS_GROUPS.iter().find(|g| g.contains(&env.as_str())) {
        out.extend(
            group
                .iter()
                .filter(|h| **h != env)
                .map(|h| (*h).to_string()),
        );
    }
    out
}
