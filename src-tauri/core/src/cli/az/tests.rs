use super::*;

fn args(line: &str) -> Vec<String> {
    line.split_whitespace().map(String::from).collect()
}

fn get_token(line: &str) -> (GetToken, Invocation) {
    let mut invocation = parse(&args(line)).expect("answered by the shim");
    match std::mem::replace(&mut invocation.command, Command::Version) {
        Command::GetToken(request) => (request, invocation),
        other => unreachable!("{line:?} is {other:?}"),
    }
}

#[test]
fn reads_every_caller_s_get_access_token() {
    // azure-identity Python and JS, azidentity Go (and kubelogin through it).
    let (python, invocation) = get_token(
        "account get-access-token --output json --resource https://management.core.windows.net/ --tenant t1",
    );
    assert_eq!(
        python.resource.as_deref(),
        Some("https://management.core.windows.net/")
    );
    assert_eq!(python.tenant.as_deref(), Some("t1"));
    assert_eq!(invocation.output, Output::Json);
    let (go, _) = get_token(
        "account get-access-token -o json --resource 6dae42f8-4368-4678-94ff-3960e28e3630",
    );
    assert_eq!(
        go.resource.as_deref(),
        Some("6dae42f8-4368-4678-94ff-3960e28e3630")
    );
    // The Rust crate and go-azure-sdk send a scope, the latter with `-o=json` last.
    let (terraform, _) = get_token(
        "account get-access-token --scope https://management.azure.com//.default --tenant=t2 -o=json",
    );
    assert_eq!(terraform.scopes, ["https://management.azure.com//.default"]);
    assert_eq!(terraform.tenant.as_deref(), Some("t2"));
    let (many, invocation) =
        get_token("account get-access-token --scope a/.default b/.default -o tsv");
    assert_eq!(many.scopes, ["a/.default", "b/.default"]);
    assert_eq!(invocation.output, Output::Tsv);
    let (_, query) = get_token("account get-access-token --query accessToken -o tsv");
    assert_eq!(query.query, Query::parse("accessToken"));
    let (_, by_subscription) = get_token("account get-access-token -s s1 --only-show-errors");
    assert_eq!(by_subscription.subscription.as_deref(), Some("s1"));
}

#[test]
fn reads_the_account_commands_terraform_and_scripts_run() {
    // go-azure-sdk: `az version -o=json`, `az account show -o=json`.
    assert_eq!(
        parse(&args("version -o=json")).unwrap().command,
        Command::Version
    );
    let show = parse(&args("account show -o=json")).unwrap();
    assert_eq!((show.command, show.subscription), (Command::Show, None));
    let named = parse(&args("account show --name Prod --query id -o tsv")).unwrap();
    assert_eq!(named.subscription.as_deref(), Some("Prod"));
    assert_eq!(named.query, Query::parse("id"));
    let list = parse(&args("account list --all --query [].id -o tsv")).unwrap();
    assert_eq!(
        list.command,
        Command::List {
            all: true,
            refresh: false
        }
    );
    assert_eq!(list.query, Query::parse("[].id"));
    let set = parse(&args("account set --subscription=s1")).unwrap();
    assert_eq!(
        (set.command, set.subscription.as_deref()),
        (Command::Set, Some("s1"))
    );
}

#[test]
fn everything_else_goes_to_the_real_az() {
    for line in [
        "",
        "login",
        "account",
        "account clear",
        "account set",
        "account show --all",
        "account list --tenant t1",
        "account get-access-token --subscription s1 --tenant t1",
        "account get-access-token --query [accessToken,tenant]",
        "account get-access-token --query accessToken||tenant",
        "account get-access-token -o yaml",
        "account show -o table",
        "account get-access-token --resource",
        "account get-access-token --resource a b",
        "account get-access-token --debug",
        "account get-access-token --claims-challenge x",
        "version --verbose",
        "--version",
    ] {
        assert_eq!(parse(&args(line)), None, "{line:?}");
    }
}

#[test]
fn queries_select_fields_as_jmespath_does() {
    let entry = serde_json::json!({"id": "s1", "user": {"name": "a@b"}, "isDefault": true});
    assert_eq!(Query::parse("id").unwrap().apply(&entry), "s1");
    assert_eq!(Query::parse("user.name").unwrap().apply(&entry), "a@b");
    assert_eq!(Query::parse("missing").unwrap().apply(&entry), Value::Null);
    let list = Value::Array(vec![entry.clone(), serde_json::json!({"id": "s2"})]);
    assert_eq!(
        Query::parse("[].id").unwrap().apply(&list),
        serde_json::json!(["s1", "s2"])
    );
    assert_eq!(Query::parse("[].id").unwrap().apply(&entry), Value::Null);
    assert!(Query::parse("[0].id").is_none() && Query::parse("a..b").is_none());
}

#[test]
fn tsv_rows_are_what_az_prints() {
    assert_eq!(tsv_row(&Value::Bool(true)), "True");
    assert_eq!(tsv_row(&serde_json::json!(42)), "42");
    let entry = serde_json::json!({"name": "Prod", "id": "s1", "user": {"name": "a"}, "tags": []});
    assert_eq!(tsv_row(&entry), "s1\tProd");
}

#[test]
fn resources_become_scopes_as_az_makes_them() {
    let config = crate::config::Config::defaults(std::path::Path::new("config.toml"));
    let authority = Authority::from_config(&config).unwrap();
    let scopes = |line: &str| get_token(line).0.scopes(&authority);
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
