//! The golden fixtures in tests/fixtures/msal_python were written by MSAL Python's
//! `SerializableTokenCache.add` (see make_msal_fixtures.py). tokentray ingests the same token
//! responses and must write the same cache, entry for entry and key for key.

use serde_json::Value;
use tokentray_core::cache::{Grant, TokenCache, TokenEvent, TokenResponse};

fn fixture(name: &str) -> Value {
    let path = tokentray_tests::harness::workspace_root()
        .join("tests/fixtures/msal_python")
        .join(name);
    serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap()
}

#[test]
fn ingest_writes_what_msal_python_writes() {
    let events = fixture("events.json");
    let mut cache = TokenCache::new();
    for e in events["events"].as_array().unwrap() {
        let scopes: Vec<String> = e["scope"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap().to_string())
            .collect();
        let grant = match e["grant_type"].as_str().unwrap() {
            "authorization_code" => Grant::AuthorizationCode,
            "urn:ietf:params:oauth:grant-type:device_code" => Grant::DeviceCode,
            other => panic!("fixture grant {other}"),
        };
        let event = TokenEvent {
            client_id: e["client_id"].as_str().unwrap(),
            environment: e["environment"].as_str().unwrap(),
            realm: e["realm"].as_str().unwrap(),
            requested_scopes: &scopes,
            grant,
        };
        let response: TokenResponse = serde_json::from_value(e["response"].clone()).unwrap();
        cache
            .ingest(&event, response, e["now"].as_i64().unwrap())
            .unwrap();
    }
    let ours: Value = serde_json::from_slice(&cache.to_file_json()).unwrap();
    let theirs = fixture("cache.json");
    for section in [
        "AccessToken",
        "RefreshToken",
        "IdToken",
        "Account",
        "AppMetadata",
    ] {
        let (o, t) = (&ours[section], &theirs[section]);
        let mut ok: Vec<&String> = o.as_object().unwrap().keys().collect();
        let mut tk: Vec<&String> = t.as_object().unwrap().keys().collect();
        ok.sort();
        tk.sort();
        assert_eq!(ok, tk, "{section} keys differ from MSAL Python's");
        for k in tk {
            assert_eq!(o[k], t[k], "{section} entry {k} differs from MSAL Python's");
        }
    }
    assert_eq!(ours, theirs);
}

#[test]
fn msal_python_cache_reads_back_identically() {
    let theirs = fixture("cache.json");
    let text = serde_json::to_vec(&theirs).unwrap();
    let cache = TokenCache::from_json(&text, "fixture").unwrap();
    let again: Value = serde_json::from_slice(&cache.to_msal_json()).unwrap();
    assert_eq!(again, theirs);
    let names: Vec<String> = cache.accounts().into_iter().map(|a| a.username).collect();
    assert_eq!(
        names,
        [
            "alice@contoso.example",
            "bob@fabrikam.example",
            "carol@fabrikam.example"
        ]
    );
}
