use super::*;

#[test]
fn the_hand_written_json_is_what_serde_json_writes() {
    // Strings themselves are checked in `crate::json`; here, the object around them.
    let awkward = ["eyJ0eXAiOiJKV1QifQ.c2ln-_", "quote \" and backslash \\"];
    for (value, number) in awkward.into_iter().zip([i64::MIN, i64::MAX]) {
        let mut body = JsonObject::new(0);
        body.str("a", value);
        body.str("b\"", value);
        body.int("c", number);
        body.0.push(b'}');
        let expected =
            serde_json::to_vec(&json!({"a": value, "b\"": value, "c": number})).unwrap_or_default();
        assert_eq!(
            String::from_utf8_lossy(&body.0),
            String::from_utf8_lossy(&expected),
            "{value:?}"
        );
    }
    let mut empty = JsonObject::new(0);
    empty.0.push(b'}');
    assert_eq!(empty.0, b"{}");
}

#[test]
fn the_native_token_answer_is_what_serde_writes_for_token_body() {
    let served = ServedToken {
        access_token: Secret::new("eyJ0eXAiOiJKV1QifQ.e30.c2ln".into()),
        expires_on: 1_790_000_000,
        token_type: "Bearer",
        scopes: "https://management.core.windows.net//.default openid".into(),
        tenant: "tenant-\"quoted\"".into(),
        account: std::sync::Arc::new(crate::cache::AccountInfo {
            home_account_id: "uid.utid".into(),
            environment: "login.microsoftonline.com".into(),
            username: "alice@contoso.example".into(),
            name: None,
            local_account_id: None,
            home_tenant: None,
            realms: Vec::new(),
            is_default: true,
            needs_sign_in: None,
        }),
        refreshed: false,
    };
    let mut body = token_body(&served);
    body.0.push(b'}');
    let expected = serde_json::to_vec(&TokenBody::from(&served)).unwrap_or_default();
    assert_eq!(
        String::from_utf8_lossy(&body.0),
        String::from_utf8_lossy(&expected)
    );
}

#[test]
fn query_parameters_are_decoded_and_a_repeated_one_is_malformed() {
    let uri: Uri =
        "/msi/token?resource=https%3A%2F%2Fvault.azure.net&api-version=2019-08-01&x=1&scope=a+b"
            .parse()
            .unwrap_or_default();
    let values = query(&uri, ["api-version", "resource", "scope", "object_id"]);
    let values = values.map(|v| v.map(|v| v.map(Cow::into_owned)));
    assert_eq!(
        values,
        Some([
            Some("2019-08-01".to_string()),
            Some("https://vault.azure.net".to_string()),
            Some("a b".to_string()),
            None,
        ])
    );
    // Undecoded, split in place: the same answers as form_urlencoded's.
    let plain: Uri =
        "/msi/token?&api-version=2019-08-01&resource=https://vault.azure.net&flag&=x&object_id="
            .parse()
            .unwrap_or_default();
    let split = query(&plain, ["api-version", "resource", "flag", "object_id", ""]);
    let split = split.map(|v| v.map(|v| v.map(Cow::into_owned)));
    let parsed: Vec<(String, String)> =
        url::form_urlencoded::parse(plain.query().unwrap_or_default().as_bytes())
            .into_owned()
            .collect();
    let expected = ["api-version", "resource", "flag", "object_id", ""].map(|name| {
        parsed
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, value)| value.clone())
    });
    assert_eq!(split, Some(expected));
    let twice: Uri = "/v1/token?scope=a&scope=b".parse().unwrap_or_default();
    assert_eq!(query(&twice, ["scope"]), None);
    let bare: Uri = "/v1/token".parse().unwrap_or_default();
    assert_eq!(query(&bare, ["scope"]), Some([None]));
}
