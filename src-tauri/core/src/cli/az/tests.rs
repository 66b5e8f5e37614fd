use super::*;

fn args(line: &str) -> Vec<String> {
    line.split_whitespace().map(String::from).collect()
}

#[test]
fn reads_every_caller_s_get_access_token() {
    // azure-identity Python and JS, azidentity Go (and kubelogin through it).
    let python = parse(&args(
        "account get-access-token --output json --resource https://management.core.windows.net/ --tenant t1",
    ))
    .unwrap();
    assert_eq!(
        python.resource.as_deref(),
        Some("https://management.core.windows.net/")
    );
    assert_eq!(python.tenant.as_deref(), Some("t1"));
    assert_eq!(python.output, Output::Json);
    let go = parse(&args(
        "account get-access-token -o json --resource 6dae42f8-4368-4678-94ff-3960e28e3630",
    ))
    .unwrap();
    assert_eq!(
        go.resource.as_deref(),
        Some("6dae42f8-4368-4678-94ff-3960e28e3630")
    );
    // The Rust crate and go-azure-sdk send a scope, the latter with `-o=json` last.
    let terraform = parse(&args(
        "account get-access-token --scope https://management.azure.com//.default --tenant=t2 -o=json",
    ))
    .unwrap();
    assert_eq!(terraform.scopes, ["https://management.azure.com//.default"]);
    assert_eq!(terraform.tenant.as_deref(), Some("t2"));
    let many = parse(&args(
        "account get-access-token --scope a/.default b/.default -o tsv",
    ))
    .unwrap();
    assert_eq!(many.scopes, ["a/.default", "b/.default"]);
    assert_eq!(many.output, Output::Tsv);
    let query = parse(&args("account get-access-token --query accessToken -o tsv")).unwrap();
    assert_eq!(query.query.as_deref(), Some("accessToken"));
}

#[test]
fn everything_else_goes_to_the_real_az() {
    for line in [
        "",
        "login",
        "account show",
        "account get-access-token --subscription s1",
        "account get-access-token -s s1",
        "account get-access-token --query [accessToken,tenant]",
        "account get-access-token -o yaml",
        "account get-access-token --resource",
        "account get-access-token --resource a b",
        "account get-access-token --debug",
        "account get-access-token --claims-challenge x",
    ] {
        assert_eq!(parse(&args(line)), None, "{line:?}");
    }
}

#[test]
fn resources_become_scopes_as_az_makes_them() {
    let config = crate::config::Config::defaults(std::path::Path::new("config.toml"));
    let authority = Authority::from_config(&config).unwrap();
    let scopes = |line: &str| parse(&args(line)).unwrap().scopes(&authority);
    assert_eq!(
        scopes("account get-access-token").unwrap(),
        ["https://management.core.windows.net//.default"]
    );
    assert_eq!(
        scopes("account get-access-token --resource https://vault.azure.net").unwrap(),
        ["https://vault.azure.net/.default"]
    );
    assert_eq!(
        scopes("account get-access-token --resource-type ms-graph").unwrap(),
        ["https://graph.microsoft.com//.default"]
    );
    assert_eq!(
        scopes("account get-access-token --resource-type batch"),
        None
    );
}
