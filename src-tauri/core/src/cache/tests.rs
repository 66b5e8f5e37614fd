use base64::Engine as _;
use serde_json::{Value, json};

use super::*;

const CLIENT: &str = "04b07795-8ddb-461a-bbee-02f9e1bf7b46";
const ENV: &str = "login.microsoftonline.com";
const NOW: i64 = 1_735_689_600;

fn b64(v: &Value) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
}

fn id_token(aud: &str, oid: &str, tid: &str, username: &str) -> String {
    let claims = json!({"aud": aud, "oid": oid, "sub": format!("sub-{oid}"), "tid": tid,
        "preferred_username": username, "name": format!("Name of {username}"), "ver": "2.0"});
    format!("{}.{}.sig", b64(&json!({"alg": "RS256"})), b64(&claims))
}

fn response(oid: &str, tid: &str, username: &str, scope: &str, rt: &str) -> TokenResponse {
    serde_json::from_value(json!({
        "token_type": "Bearer", "scope": scope, "expires_in": 3600, "ext_expires_in": "7200",
        "refresh_in": 1800, "access_token": format!("at-for-{oid}-{scope}"), "refresh_token": rt,
        "id_token": id_token(CLIENT, oid, tid, username),
        "client_info": b64(&json!({"uid": oid, "utid": tid})), "foci": "1",
    }))
    .unwrap()
}

fn event<'a>(scopes: &'a [String], grant: Grant<'a>) -> TokenEvent<'a> {
    TokenEvent {
        client_id: CLIENT,
        environment: ENV,
        realm: "organizations",
        requested_scopes: scopes,
        grant,
    }
}

fn signed_in(oid: &str, user: &str) -> TokenCache {
    let mut cache = TokenCache::new();
    let scopes = vec!["https://management.core.windows.net//.default".to_string()];
    let resp = response(
        oid,
        "tid1",
        user,
        "https://management.core.windows.net//user_impersonation https://management.core.windows.net//.default",
        "rt-1",
    );
    cache
        .ingest(&event(&scopes, Grant::AuthorizationCode), resp, NOW)
        .unwrap();
    cache
}

#[test]
fn ingest_writes_every_section_with_msal_keys_and_fields() {
    let cache = signed_in("oid1", "alice@contoso.example");
    let v: Value = serde_json::from_slice(&cache.to_file_json()).unwrap();
    let target = "https://management.core.windows.net//.default https://management.core.windows.net//user_impersonation";
    let at_key = format!("oid1.tid1-{ENV}-accesstoken-{CLIENT}-organizations-{target}");
    let at = &v["AccessToken"][&at_key];
    assert_eq!(at["credential_type"], "AccessToken");
    assert_eq!(at["target"], target, "granted scopes, sorted");
    assert_eq!(at["cached_at"], NOW.to_string());
    assert_eq!(at["expires_on"], (NOW + 3600).to_string());
    assert_eq!(
        at["extended_expires_on"],
        (NOW + 7200).to_string(),
        "string ext_expires_in is accepted"
    );
    assert_eq!(at["refresh_on"], (NOW + 1800).to_string());
    let rt = &v["RefreshToken"][format!("oid1.tid1-{ENV}-refreshtoken-{CLIENT}--{target}")];
    assert_eq!(rt["family_id"], "1");
    assert_eq!(rt["secret"], "rt-1");
    assert_eq!(rt["last_modification_time"], NOW.to_string());
    let acc = &v["Account"][format!("oid1.tid1-{ENV}-organizations")];
    assert_eq!(acc["username"], "alice@contoso.example");
    assert_eq!(acc["local_account_id"], "oid1");
    assert_eq!(acc["authority_type"], "MSSTS");
    assert_eq!(acc["account_source"], "authorization_code");
    assert!(
        v["IdToken"]
            .get(format!("oid1.tid1-{ENV}-idtoken-{CLIENT}-organizations-"))
            .is_some()
    );
    assert_eq!(
        v["AppMetadata"][format!("appmetadata-{ENV}-{CLIENT}")]["family_id"],
        "1"
    );
}

#[test]
fn refresh_grant_rotates_the_used_refresh_token_in_place_and_creates_no_account() {
    let mut cache = signed_in("oid1", "alice@contoso.example");
    let used = cache
        .refresh_token_candidates("oid1.tid1", ENV, CLIENT)
        .remove(0);
    // a concurrent sign-out removed the Account: a refresh must not bring it back
    cache.accounts.clear();
    let scopes = vec!["https://graph.microsoft.com/.default".to_string()];
    let resp = response(
        "oid1",
        "tid1",
        "alice@contoso.example",
        "https://graph.microsoft.com/.default",
        "rt-2",
    );
    cache
        .ingest(
            &event(&scopes, Grant::RefreshToken { used: &used }),
            resp,
            NOW + 10,
        )
        .unwrap();
    assert_eq!(cache.refresh_tokens.len(), 1, "no second refresh token");
    let rt = &cache.refresh_tokens[&used];
    assert_eq!(rt.secret.as_ref().unwrap().expose(), "rt-2");
    assert_eq!(
        rt.last_modification_time.as_deref(),
        Some(&*(NOW + 10).to_string())
    );
    assert!(cache.accounts.is_empty());
    assert_eq!(cache.access_tokens.len(), 2);
}

#[test]
fn an_id_token_for_another_client_is_refused_and_nothing_is_written() {
    let mut cache = TokenCache::new();
    let scopes = vec!["s".to_string()];
    let mut resp = response("oid1", "tid1", "a@b", "s", "rt");
    resp.id_token = Some(Secret::new(id_token("someone-else", "oid1", "tid1", "a@b")));
    let err = cache
        .ingest(&event(&scopes, Grant::AuthorizationCode), resp, NOW)
        .unwrap_err();
    assert!(err.to_string().contains("audience"), "{err}");
    assert_eq!(cache.counts(), Counts::default());
}

#[test]
fn expiry_times_out_of_range_count_as_expired() {
    let scopes = vec!["https://management.core.windows.net//.default".to_string()];
    let query = AtQuery {
        home_account_id: "oid1.tid1",
        environment: "login.windows.net",
        client_id: CLIENT,
        realm: RealmPreference::Any,
        scopes: &scopes,
    };
    for (expires_on, found) in [
        (i64::MIN.to_string(), false),
        (i64::MAX.to_string(), false),
        ((NOW + MAX_TOKEN_LIFE_SECS + 1).to_string(), false),
        ("soon".to_string(), false),
        ((NOW + 3600).to_string(), true),
    ] {
        let mut cache = signed_in("oid1", "alice@contoso.example");
        for at in cache.access_tokens.values_mut() {
            at.expires_on = Some(expires_on.clone());
        }
        assert_eq!(
            cache
                .find_access_token(&query, NOW, EXPIRY_SKEW_SECS)
                .is_some(),
            found,
            "expires_on {expires_on}"
        );
    }
}

#[test]
fn a_long_lived_cae_token_is_due_for_refresh_and_a_plain_one_is_not() {
    let jwt = |claims: Value| format!("{}.{}.sig", b64(&json!({"alg": "RS256"})), b64(&claims));
    let scopes = vec!["https://management.core.windows.net//.default".to_string()];
    let due = |token: String, lifetime: i64| {
        let mut cache = signed_in("oid1", "alice@contoso.example");
        let mut r = response("oid1", "tid1", "alice@contoso.example", &scopes[0], "rt");
        r.access_token = Some(crate::secret::Secret::from(token));
        r.expires_in = Some(lifetime);
        r.refresh_in = None;
        cache
            .ingest(&event(&scopes, Grant::DeviceCode), r, NOW)
            .unwrap();
        let query = AtQuery {
            home_account_id: "oid1.tid1",
            environment: ENV,
            client_id: CLIENT,
            realm: RealmPreference::Only("organizations"),
            scopes: &scopes,
        };
        cache
            .find_access_token(&query, NOW, EXPIRY_SKEW_SECS)
            .map(|f| f.refresh_due)
    };
    let cae = jwt(json!({"aud": "https://management.core.windows.net/", "xms_cc": ["CP1"]}));
    let plain = jwt(json!({"aud": "https://management.core.windows.net/"}));
    assert_eq!(
        due(cae.clone(), 28 * 3600),
        Some(true),
        "replaced by tokentray's own"
    );
    assert_eq!(
        due(plain.clone(), 28 * 3600),
        Some(false),
        "a long plain token is kept"
    );
    assert_eq!(due(cae, 3600), Some(false), "an hour left: as any token");
    assert_eq!(due(plain, 3600), Some(false));
    assert_eq!(due("opaque".into(), 28 * 3600), Some(false), "not a JWT");
}

#[test]
fn lookup_matches_scope_supersets_and_honours_the_five_minute_skew() {
    let cache = signed_in("oid1", "alice@contoso.example");
    let q = |scopes: &[&str]| -> Vec<String> { scopes.iter().map(|s| s.to_string()).collect() };
    let scopes = q(&[
        "https://management.core.windows.net//.default",
        "offline_access",
    ]);
    let query = AtQuery {
        home_account_id: "oid1.tid1",
        environment: "login.windows.net",
        client_id: CLIENT,
        realm: RealmPreference::Only("organizations"),
        scopes: &scopes,
    };
    let found = cache
        .find_access_token(&query, NOW, EXPIRY_SKEW_SECS)
        .expect("alias environment, reserved scope ignored");
    assert_eq!(found.expires_on, NOW + 3600);
    assert!(!found.refresh_due);
    assert!(
        cache
            .find_access_token(&query, NOW + 1801, EXPIRY_SKEW_SECS)
            .unwrap()
            .refresh_due,
        "past refresh_on"
    );
    assert!(
        cache
            .find_access_token(&query, NOW + 3600 - 299, EXPIRY_SKEW_SECS)
            .is_none(),
        "< 5 minutes left is expired"
    );
    assert!(
        cache
            .find_access_token(&query, NOW + 3600 - 300, EXPIRY_SKEW_SECS)
            .is_some(),
        "MSAL: expires_in < 300 is expired"
    );
    let other = q(&["https://graph.microsoft.com/.default"]);
    assert!(
        cache
            .find_access_token(
                &AtQuery {
                    scopes: &other,
                    ..query
                },
                NOW,
                EXPIRY_SKEW_SECS,
            )
            .is_none()
    );
    let case = q(&["https://MANAGEMENT.core.windows.net//.default"]);
    assert!(
        cache
            .find_access_token(
                &AtQuery {
                    scopes: &case,
                    ..query
                },
                NOW,
                EXPIRY_SKEW_SECS,
            )
            .is_none(),
        "case-sensitive like MSAL"
    );
    assert!(
        cache
            .find_access_token(
                &AtQuery {
                    realm: RealmPreference::Only("tid1"),
                    ..query
                },
                NOW,
                EXPIRY_SKEW_SECS,
            )
            .is_none()
    );
    assert!(
        cache
            .find_access_token(
                &AtQuery {
                    realm: RealmPreference::Any,
                    ..query
                },
                NOW,
                EXPIRY_SKEW_SECS,
            )
            .is_some()
    );
    assert!(
        cache
            .find_access_token(
                &AtQuery {
                    client_id: "other",
                    ..query
                },
                NOW,
                EXPIRY_SKEW_SECS,
            )
            .is_none()
    );
}

#[test]
fn family_refresh_tokens_come_first_newest_first() {
    let mut cache = TokenCache::new();
    for (client, family, t, secret) in [
        (CLIENT, None, 5, "own-old"),
        ("vs", Some("1"), 9, "family-new"),
        (CLIENT, None, 7, "own-new"),
    ] {
        let rt = RefreshToken {
            credential_type: Some("RefreshToken".into()),
            secret: Some(Secret::new(secret.into())),
            home_account_id: Some("oid1.tid1".into()),
            environment: Some(ENV.into()),
            client_id: Some(client.into()),
            target: Some(secret.into()),
            last_modification_time: Some(t.to_string()),
            family_id: family.map(str::to_string),
            ..RefreshToken::default()
        };
        cache.refresh_tokens.insert(refresh_token_key(&rt), rt);
    }
    let order: Vec<String> = cache
        .refresh_token_candidates("oid1.tid1", ENV, CLIENT)
        .iter()
        .map(|k| {
            cache.refresh_tokens[k]
                .secret
                .as_ref()
                .unwrap()
                .expose()
                .to_string()
        })
        .collect();
    assert_eq!(
        order,
        ["family-new", "own-new", "own-old"],
        "no app metadata yet: family first"
    );
    // Known not to be in the family: own tokens only.
    let meta = AppMetadata {
        client_id: Some(CLIENT.into()),
        environment: Some(ENV.into()),
        ..AppMetadata::default()
    };
    cache.app_metadata.insert(app_metadata_key(&meta), meta);
    assert_eq!(
        cache
            .refresh_token_candidates("oid1.tid1", ENV, CLIENT)
            .len(),
        2
    );
}

#[test]
fn remove_account_takes_only_that_account() {
    let mut cache = signed_in("oid1", "alice@contoso.example");
    cache.state.default_account = Some("oid1.tid1".into());
    cache
        .state
        .needs_sign_in
        .insert("oid1.tid1".into(), "revoked".into());
    let scopes = vec!["s".to_string()];
    cache
        .ingest(
            &event(&scopes, Grant::DeviceCode),
            response("oid2", "tid2", "bob@fabrikam.example", "s", "rt-b"),
            NOW,
        )
        .unwrap();
    assert_eq!(cache.accounts().len(), 2);
    let removed = cache.remove_account("oid1.tid1", "login.windows.net", CLIENT);
    assert_eq!(removed, 4, "AT, RT, IdToken, Account");
    let left = cache.accounts();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].username, "bob@fabrikam.example");
    assert_eq!(
        cache.state,
        AppState::default(),
        "the default and needs-sign-in marks went with it"
    );
    assert_eq!(
        left[0].name.as_deref(),
        Some("Name of bob@fabrikam.example")
    );
    assert_eq!(cache.counts().access_tokens, 1);
    assert_eq!(cache.counts().app_metadata, 1, "app metadata is kept");
    let scopes_b = vec!["s".to_string()];
    let q = AtQuery {
        home_account_id: "oid2.tid2",
        environment: ENV,
        client_id: CLIENT,
        realm: RealmPreference::Any,
        scopes: &scopes_b,
    };
    assert!(
        cache.find_access_token(&q, NOW, EXPIRY_SKEW_SECS).is_some(),
        "index still finds the other account"
    );
}

#[test]
fn unknown_sections_fields_and_non_string_values_round_trip_byte_for_byte() {
    let input = r#"{
        "AccessToken": {"foreign-key-shape": {"credential_type": "AccessToken", "secret": "s3cr3t",
            "home_account_id": null, "environment": "login.microsoftonline.com", "client_id": "c",
            "realm": "r", "target": "a b", "cached_at": "1", "expires_on": "2",
            "extended_expires_on": "2", "future_field": {"nested": [1, 2.50, 1e3, "x"], "flag": true},
            "requestedClaimsHash": "abc"}},
        "Account": {},
        "FutureSection": {"k": {"v": [1.0, null, {"deep": "\u00e9"}]}},
        "AppMetadata": {"appmetadata-x-c": {"client_id": "c", "environment": "x", "future": 7}}
    }"#;
    let cache = TokenCache::from_json(input.as_bytes(), "test").unwrap();
    let out = String::from_utf8(cache.to_file_json().to_vec()).unwrap();
    for fragment in [
        r#""future_field":{"nested": [1, 2.50, 1e3, "x"], "flag": true}"#,
        r#""home_account_id":null"#,
        r#""requestedClaimsHash":"abc""#,
        r#""FutureSection":{"k": {"v": [1.0, null, {"deep": "\u00e9"}]}}"#,
        r#""future":7"#,
        r#""foreign-key-shape":{"#,
    ] {
        assert!(out.contains(fragment), "missing {fragment} in {out}");
    }
    // and a second round trip is stable
    let again = TokenCache::from_json(out.as_bytes(), "test").unwrap();
    assert_eq!(
        String::from_utf8(again.to_file_json().to_vec()).unwrap(),
        out
    );
}

#[test]
fn invalid_json_says_where_without_quoting_the_file() {
    for (text, hint) in [
        (
            r#"{"AccessToken": {"k": {"secret": "SUPERSECRET""#,
            "truncated",
        ),
        (r#"{"AccessToken": [1]}"#, "not a JSON object"),
        (r#"SUPERSECRET"#, "syntax"),
    ] {
        let err = TokenCache::from_json(text.as_bytes(), "the file")
            .unwrap_err()
            .to_string();
        assert!(err.contains(hint), "{err}");
        assert!(!err.contains("SUPERSECRET"), "{err}");
    }
    assert_eq!(
        TokenCache::from_json(b"  \n", "empty").unwrap().counts(),
        Counts::default()
    );
}

#[test]
fn merge_rekeys_foreign_entries_and_keeps_the_fresher_token() {
    let mine = signed_in("oid1", "alice@contoso.example");
    let mut theirs: Value = serde_json::from_slice(&mine.to_file_json()).unwrap();
    // Re-key everything the way MSAL JS would, and make their access token fresher.
    for section in ["AccessToken", "RefreshToken", "IdToken", "Account"] {
        let entries = theirs[section].as_object_mut().unwrap();
        let renamed: serde_json::Map<String, Value> = entries
            .iter()
            .map(|(k, v)| (format!("js-{k}"), v.clone()))
            .collect();
        *entries = renamed;
    }
    for at in theirs["AccessToken"].as_object_mut().unwrap().values_mut() {
        at["expires_on"] = json!((NOW + 7000).to_string());
        at["secret"] = json!("fresher");
    }
    let theirs = TokenCache::from_json(theirs.to_string().as_bytes(), "theirs").unwrap();
    let mut merged = mine.clone();
    merged.merge(theirs);
    assert_eq!(
        merged.counts(),
        mine.counts(),
        "same entries, no duplicates under foreign keys"
    );
    let at = merged.access_tokens.values().next().unwrap();
    assert_eq!(at.secret.as_ref().unwrap().expose(), "fresher");
}

#[test]
fn app_state_lives_in_the_file_but_not_in_exports() {
    let mut cache = signed_in("oid1", "alice@contoso.example");
    cache.state.default_account = Some("oid1.tid1".into());
    let file: Value = serde_json::from_slice(&cache.to_file_json()).unwrap();
    assert_eq!(file["tokentray"]["default_account"], "oid1.tid1");
    let again = TokenCache::from_json(&cache.to_file_json(), "file").unwrap();
    assert_eq!(again.state, cache.state);
    assert!(again.accounts()[0].is_default);
    let export: Value = serde_json::from_slice(&cache.to_msal_json()).unwrap();
    assert!(
        export.get("tokentray").is_none(),
        "MSAL tools get pure MSAL JSON"
    );
}

#[test]
fn the_home_tenant_also_takes_a_token_from_organizations_but_no_other_tenant_s() {
    let cache = signed_in("oid1", "alice@contoso.example");
    let scopes = vec!["https://management.core.windows.net//.default".to_string()];
    let query = |realm| AtQuery {
        home_account_id: "oid1.tid1",
        environment: "login.windows.net",
        client_id: CLIENT,
        realm,
        scopes: &scopes,
    };
    assert!(
        cache
            .find_access_token(&query(RealmPreference::Home("tid1")), NOW, EXPIRY_SKEW_SECS)
            .is_some(),
        "the signed-in token's realm is organizations"
    );
    assert!(
        cache
            .find_access_token(&query(RealmPreference::Only("tid1")), NOW, EXPIRY_SKEW_SECS)
            .is_none()
    );
    assert!(
        cache
            .find_access_token(&query(RealmPreference::Only("tid2")), NOW, EXPIRY_SKEW_SECS)
            .is_none()
    );
}

/// The cache as serde_json writes it (what `to_file_json` and `to_msal_json` did before they
/// wrote it themselves): the reference their output must equal byte for byte.
struct SerdeView<'a>(&'a TokenCache, bool);

impl serde::Serialize for SerdeView<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap as _;
        let (c, with_state) = (self.0, self.1);
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("AccessToken", &c.access_tokens)?;
        map.serialize_entry("RefreshToken", &c.refresh_tokens)?;
        map.serialize_entry("IdToken", &c.id_tokens)?;
        map.serialize_entry("Account", &c.accounts)?;
        map.serialize_entry("AppMetadata", &c.app_metadata)?;
        for (name, raw) in &c.unknown_sections {
            map.serialize_entry(name, raw)?;
        }
        if with_state && !c.state.is_empty() {
            map.serialize_entry("tokentray", &c.state)?;
        }
        map.end()
    }
}

#[test]
fn the_cache_is_written_byte_for_byte_as_serde_json_writes_it() {
    let input = r#"{
        "AccessToken": {"k\"ey\\": {"credential_type": "AccessToken", "secret": "s3\ncr\u0001et",
            "home_account_id": null, "environment": "login.microsoftonline.com", "client_id": "c",
            "realm": "caf\u00e9", "target": "a b", "cached_at": "1", "expires_on": "2",
            "future_field": {"nested": [1, 2.50, 1e3, "x"], "flag": true}}},
        "RefreshToken": {},
        "FutureSection": {"k": {"v": [1.0, null, {"deep": "\u00e9"}]}},
        "AppMetadata": {"appmetadata-x-c": {"client_id": "c", "environment": "x", "future": 7}}
    }"#;
    let mut caches = vec![
        TokenCache::new(),
        TokenCache::from_json(input.as_bytes(), "test").unwrap_or_default(),
        signed_in("oid1", "alice@contoso.example"),
    ];
    let mut with_state = signed_in("oid2", "bob@contoso.example");
    with_state.state.default_account = Some("oid2.tid1".into());
    caches.push(with_state);
    // Sized up front: a signed-in cache (no escapes, no state) is written without growing.
    for indented in [false, true] {
        let written = if indented {
            caches[2].to_msal_json()
        } else {
            caches[2].to_file_json()
        };
        let size = json::Writer::size(&caches[2], indented);
        assert!(written.len() <= size, "{} of {size}", written.len());
        assert!(
            written.len() * 10 >= size * 7,
            "{} of {size}",
            written.len()
        );
    }
    for cache in &caches {
        let compact = serde_json::to_vec(&SerdeView(cache, true)).unwrap_or_default();
        assert_eq!(
            String::from_utf8_lossy(&cache.to_file_json()),
            String::from_utf8_lossy(&compact)
        );
        let mut pretty = serde_json::Serializer::with_formatter(
            Vec::new(),
            serde_json::ser::PrettyFormatter::with_indent(b"    "),
        );
        let _ = serde::Serialize::serialize(&SerdeView(cache, false), &mut pretty);
        assert_eq!(
            String::from_utf8_lossy(&cache.to_msal_json()),
            String::from_utf8_lossy(&pretty.into_inner())
        );
    }
}
