//! fake-entra itself, over real TLS: discovery, both sign-in flows, refresh rotation,
//! revocation, Entra's error shapes, the fault/control API, the clock, and a request log that
//! never holds a secret. (MSAL Python and azure-identity prove it from the client side in
//! tests/peers/test_fake_entra_*.py.)

use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::StatusCode;
use rsa::pkcs1v15::{Signature, VerifyingKey};
use rsa::signature::Verifier as _;
use rsa::{BigUint, RsaPublicKey};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};
use tokentray_tests::fake_entra::client_trusting;
use tokentray_tests::fake_entra::{Endpoint, FakeConfig, FakeEntra, Fault, FaultRule};
use tokentray_tests::harness::{fetch_text, form};

const CLIENT: &str = "04b07795-8ddb-461a-bbee-02f9e1bf7b46";
const OTHER_CLIENT: &str = "1950a258-227b-4e31-a9cf-717495945fc2";
const ARM: &str = "https://management.core.windows.net//.default";
const ALICE: &str = "alice@contoso.example";
const ALICE_PW: &str = "Correct-Horse-7";
const REDIRECT: &str = "http://localhost:8400/";
const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";
const AUTHORIZE: &str = "/organizations/oauth2/v2.0/authorize";

/// A fake and an HTTP client that trusts only its CA and never follows redirects.
struct Fake {
    fake: FakeEntra,
    http: reqwest::Client,
}

fn start(config: FakeConfig) -> Fake {
    let fake = FakeEntra::start(
        config
            .user(ALICE, ALICE_PW)
            .user("bob@fabrikam.example", "pw-bob"),
    )
    .unwrap();
    let http = client_trusting(fake.ca_pem().as_bytes());
    Fake { fake, http }
}

impl Fake {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.fake.url())
    }

    async fn get(&self, path: &str) -> reqwest::Response {
        self.http.get(self.url(path)).send().await.unwrap()
    }

    async fn get_json(&self, path: &str) -> Value {
        self.get(path).await.json().await.unwrap()
    }

    async fn post_form(&self, path: &str, form: &[(&str, &str)]) -> reqwest::Response {
        self.http
            .post(self.url(path))
            .form(form)
            .send()
            .await
            .unwrap()
    }

    /// A token request; returns status and JSON body.
    async fn token(&self, form: &[(&str, &str)]) -> (StatusCode, Value) {
        let r = self
            .post_form("/organizations/oauth2/v2.0/token", form)
            .await;
        (r.status(), r.json().await.unwrap())
    }

    /// Runs authorize + sign-in; returns the redirect's query pairs and the PKCE verifier.
    async fn sign_in(&self, extra: &[(&str, &str)]) -> (Vec<(String, String)>, String) {
        let (verifier, challenge) = pkce();
        let mut query = vec![
            ("client_id", CLIENT),
            ("response_type", "code"),
            ("redirect_uri", REDIRECT),
            (
                "scope",
                "https://management.core.windows.net//.default offline_access openid profile",
            ),
            ("state", "st-123"),
            ("nonce", "nonce-abc"),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
            ("client_info", "1"),
        ];
        query.extend_from_slice(extra);
        let page = self
            .http
            .get(self.url(AUTHORIZE))
            .query(&query)
            .send()
            .await
            .unwrap();
        assert_eq!(page.status(), 200);
        let html = page.text().await.unwrap();
        let flow = field(&html, "flow");
        let r = self
            .post_form(
                AUTHORIZE,
                &[
                    ("flow", &flow),
                    ("username", ALICE),
                    ("password", ALICE_PW),
                    ("action", "signin"),
                ],
            )
            .await;
        assert_eq!(r.status(), 302, "{}", r.text().await.unwrap());
        (redirect_query(&r), verifier)
    }

    /// A new device code (the devicecode endpoint's answer), still pending.
    async fn device_code(&self) -> Value {
        let r = self
            .post_form(
                "/organizations/oauth2/v2.0/devicecode",
                &[
                    ("client_id", CLIENT),
                    ("scope", &format!("{ARM} offline_access openid profile")),
                ],
            )
            .await;
        assert_eq!(r.status(), 200);
        r.json().await.unwrap()
    }

    /// A new device code, approved by Alice on /devicelogin.
    async fn approved_device_code(&self) -> Value {
        let flow = self.device_code().await;
        let user_code = flow["user_code"].as_str().unwrap();
        self.fake
            .approve_device_code(user_code, ALICE, ALICE_PW)
            .await;
        flow
    }

    /// Polls the token endpoint with a device code (`client_info=1`).
    async fn poll_device(&self, device_code: &str) -> (StatusCode, Value) {
        self.token(&[
            ("client_id", CLIENT),
            ("grant_type", DEVICE_GRANT),
            ("device_code", device_code),
            ("client_info", "1"),
        ])
        .await
    }

    /// Redeems the approved device code of `flow`: the token response.
    async fn redeem_device_code(&self, flow: &Value) -> Value {
        let (status, tokens) = self
            .poll_device(flow["device_code"].as_str().unwrap())
            .await;
        assert_eq!(status, 200, "{tokens}");
        tokens
    }

    /// Redeems an authorization code.
    async fn redeem_code(
        &self,
        code: &str,
        verifier: &str,
        redirect_uri: &str,
    ) -> (StatusCode, Value) {
        self.token(&[
            ("client_id", CLIENT),
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", redirect_uri),
            ("code_verifier", verifier),
        ])
        .await
    }

    /// A refresh-token grant by `client_id`, for the grant's own scopes.
    async fn refresh(&self, client_id: &str, refresh_token: &str) -> (StatusCode, Value) {
        self.token(&[
            ("client_id", client_id),
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
        ])
        .await
    }

    /// A refresh-token grant by [`CLIENT`] for Microsoft Graph (`client_info=1`).
    async fn refresh_for_graph(&self, refresh_token: &str) -> (StatusCode, Value) {
        self.token(&[
            ("client_id", CLIENT),
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
            (
                "scope",
                "https://graph.microsoft.com/User.Read offline_access openid profile",
            ),
            ("client_info", "1"),
        ])
        .await
    }

    async fn control(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut r = self.http.request(method, self.url(path));
        if let Some(b) = body {
            r = r.json(&b);
        }
        let r = r.send().await.unwrap();
        let status = r.status();
        let text = r.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }
}

fn pkce() -> (String, String) {
    let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk-fake-entra".to_string();
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    (verifier, challenge)
}

/// The value of the input `name` in the page's form.
fn field(html: &str, name: &str) -> String {
    let (_, fields) = form(html);
    param(&fields, name)
        .unwrap_or_else(|| panic!("no {name} in {html}"))
        .to_string()
}

fn redirect_query(r: &reqwest::Response) -> Vec<(String, String)> {
    let location = r.headers()["location"].to_str().unwrap();
    let url = url::Url::parse(location).unwrap();
    assert_eq!(url.host_str(), Some("localhost"));
    url.query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn param<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

fn claims(jwt: &str) -> Value {
    let payload = jwt.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

/// Checks the RS256 signature against the published JWKS.
fn verify(jwt: &str, jwks: &Value) {
    let header: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(jwt.split('.').next().unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(header["alg"], "RS256");
    let key = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == header["kid"])
        .unwrap();
    let n = BigUint::from_bytes_be(&URL_SAFE_NO_PAD.decode(key["n"].as_str().unwrap()).unwrap());
    let e = BigUint::from_bytes_be(&URL_SAFE_NO_PAD.decode(key["e"].as_str().unwrap()).unwrap());
    let verifier = VerifyingKey::<Sha256>::new(RsaPublicKey::new(n, e).unwrap());
    let (input, sig) = jwt.rsplit_once('.').unwrap();
    let sig = Signature::try_from(URL_SAFE_NO_PAD.decode(sig).unwrap().as_slice()).unwrap();
    verifier
        .verify(input.as_bytes(), &sig)
        .expect("signature verifies");
}

/// Entra's error body: error, AADSTS code, trace lines, ids, timestamp, error_uri.
fn assert_entra_error(body: &Value, error: &str, code: u64) {
    assert_eq!(body["error"], error, "{body}");
    assert_eq!(body["error_codes"], json!([code]), "{body}");
    let d = body["error_description"].as_str().unwrap();
    assert!(d.starts_with(&format!("AADSTS{code}: ")), "{d}");
    for line in ["\r\nTrace ID: ", "\r\nCorrelation ID: ", "\r\nTimestamp: "] {
        assert!(d.contains(line), "{d}");
    }
    let ts = body["timestamp"].as_str().unwrap();
    assert!(
        chrono::NaiveDateTime::parse_from_str(ts, "%Y-%m-%d %H:%M:%SZ").is_ok(),
        "{ts}"
    );
    assert_eq!(body["trace_id"].as_str().unwrap().len(), 36);
    assert_eq!(body["correlation_id"].as_str().unwrap().len(), 36);
    assert!(
        body["error_uri"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/error?code={code}"))
    );
}

#[tokio::test]
async fn discovery_documents_have_entras_shape() {
    let f = start(FakeConfig::default());
    let doc: Value = f
        .get_json("/organizations/v2.0/.well-known/openid-configuration")
        .await;
    assert_eq!(
        doc["token_endpoint"],
        f.url("/organizations/oauth2/v2.0/token")
    );
    assert_eq!(
        doc["authorization_endpoint"],
        f.url("/organizations/oauth2/v2.0/authorize")
    );
    assert_eq!(
        doc["device_authorization_endpoint"],
        f.url("/organizations/oauth2/v2.0/devicecode")
    );
    assert_eq!(
        doc["end_session_endpoint"],
        f.url("/organizations/oauth2/v2.0/logout")
    );
    assert_eq!(doc["issuer"], f.url("/{tenantid}/v2.0"));
    assert_eq!(
        doc["response_modes_supported"],
        json!(["query", "fragment", "form_post"])
    );

    // A domain resolves to the tenant id, as Entra does.
    let tid = f.fake.user(ALICE).unwrap().tenant_id;
    let doc: Value = f
        .get_json("/contoso.example/v2.0/.well-known/openid-configuration")
        .await;
    assert_eq!(
        doc["token_endpoint"],
        f.url(&format!("/{tid}/oauth2/v2.0/token"))
    );
    assert_eq!(doc["issuer"], f.url(&format!("/{tid}/v2.0")));

    let r = f
        .get("/nowhere.example/v2.0/.well-known/openid-configuration")
        .await;
    assert_eq!(r.status(), 400);
    assert_entra_error(&r.json().await.unwrap(), "invalid_tenant", 90002);

    let keys: Value = f.get_json(&format!("/{tid}/discovery/v2.0/keys")).await;
    assert_eq!(keys["keys"][0]["kty"], "RSA");
    assert_eq!(keys["keys"][0]["e"], "AQAB");

    let own = format!("{}/common/oauth2/v2.0/authorize", f.fake.url());
    let r = f
        .http
        .get(f.url("/common/discovery/instance"))
        .query(&[
            ("api-version", "1.1"),
            ("authorization_endpoint", own.as_str()),
        ])
        .send()
        .await
        .unwrap();
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        body["tenant_discovery_endpoint"],
        f.url("/common/v2.0/.well-known/openid-configuration")
    );
    assert_eq!(body["metadata"][0]["aliases"][0], "127.0.0.1");
    let r = f
        .http
        .get(f.url("/common/discovery/instance"))
        .query(&[(
            "authorization_endpoint",
            "https://login.example.org/common/oauth2/v2.0/authorize",
        )])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_entra_error(&r.json().await.unwrap(), "invalid_instance", 50049);
}

#[tokio::test]
async fn auth_code_flow_issues_signed_entra_tokens_once() {
    let f = start(FakeConfig {
        access_token_lifetime: 1234,
        refresh_in: true,
        ..FakeConfig::default()
    });
    let alice = f.fake.user(ALICE).unwrap();
    let (pairs, verifier) = f.sign_in(&[]).await;
    assert_eq!(param(&pairs, "state"), Some("st-123"));
    assert!(param(&pairs, "session_state").is_some());
    let code = param(&pairs, "code").unwrap().to_string();
    let client_info: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(param(&pairs, "client_info").unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        client_info,
        json!({"uid": alice.oid, "utid": alice.tenant_id})
    );

    let redeem = [
        ("client_id", CLIENT),
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", REDIRECT),
        ("code_verifier", verifier.as_str()),
        ("client_info", "1"),
        (
            "scope",
            "https://management.core.windows.net//.default offline_access openid profile",
        ),
    ];
    let (status, body) = f.token(&redeem).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(
        body["scope"],
        "https://management.core.windows.net//.default https://management.core.windows.net//user_impersonation"
    );
    assert_eq!(body["expires_in"], 1234);
    assert_eq!(body["ext_expires_in"], 1234);
    assert_eq!(body["refresh_in"], 617);
    assert!(body.get("foci").is_none());
    // Unpadded base64url, as Entra sends.
    let ci = body["client_info"].as_str().unwrap();
    assert!(!ci.contains('='));
    assert_eq!(ci, param(&pairs, "client_info").unwrap());

    let jwks: Value = f.get_json("/organizations/discovery/v2.0/keys").await;
    let at = body["access_token"].as_str().unwrap();
    verify(at, &jwks);
    let c = claims(at);
    assert_eq!(c["aud"], "https://management.core.windows.net/");
    assert_eq!(c["scp"], "user_impersonation");
    assert_eq!(c["oid"], alice.oid);
    assert_eq!(c["tid"], alice.tenant_id);
    assert_eq!(
        c["exp"].as_i64().unwrap() - c["iat"].as_i64().unwrap(),
        1234
    );
    assert_eq!(c["nbf"], c["iat"]);

    let id = body["id_token"].as_str().unwrap();
    verify(id, &jwks);
    let c = claims(id);
    assert_eq!(c["aud"], CLIENT);
    assert_eq!(c["nonce"], "nonce-abc");
    assert_eq!(c["oid"], alice.oid);
    assert_eq!(c["tid"], alice.tenant_id);
    assert_eq!(c["preferred_username"], ALICE);
    assert_eq!(c["name"], "Alice");
    assert_eq!(c["ver"], "2.0");
    assert_eq!(c["iss"], f.url(&format!("/{}/v2.0", alice.tenant_id)));
    assert!(c["sub"].as_str().unwrap().len() >= 43);
    for k in ["iat", "nbf", "exp"] {
        assert!(c[k].is_i64(), "{k}");
    }

    // Single use.
    let (status, body) = f.token(&redeem).await;
    assert_eq!(status, 400);
    assert_entra_error(&body, "invalid_grant", 54005);
}

#[tokio::test]
async fn code_redemption_checks_verifier_redirect_and_lifetime() {
    let f = start(FakeConfig::default());
    let (pairs, verifier) = f.sign_in(&[]).await;
    let code = param(&pairs, "code").unwrap();
    let (s, b) = f
        .redeem_code(
            code,
            "wrong-verifier-wrong-verifier-wrong-verifier",
            REDIRECT,
        )
        .await;
    assert_eq!(s, 400);
    assert_entra_error(&b, "invalid_grant", 501481);
    let (s, b) = f
        .redeem_code(code, &verifier, "http://localhost:9999/")
        .await;
    assert_eq!(s, 400);
    assert_entra_error(&b, "invalid_grant", 500112);
    let (s, b) = f
        .token(&[
            ("client_id", CLIENT),
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT),
        ])
        .await;
    assert_eq!(s, 400);
    assert_entra_error(&b, "invalid_request", 900144);
    // Failed attempts do not use the code up; it is still fresh.
    let (s, b) = f.redeem_code(code, &verifier, REDIRECT).await;
    assert_eq!(s, 200, "{b}");

    // The fake clock drives code expiry.
    let (pairs, verifier) = f.sign_in(&[]).await;
    f.fake.advance_clock(601);
    let code = param(&pairs, "code").unwrap();
    let (s, b) = f.redeem_code(code, &verifier, REDIRECT).await;
    assert_eq!(s, 400);
    assert_entra_error(&b, "invalid_grant", 70008);

    let (s, b) = f.redeem_code("not-a-code", &verifier, REDIRECT).await;
    assert_eq!(s, 400);
    assert_entra_error(&b, "invalid_grant", 70000);
}

#[tokio::test]
async fn as_entra_a_redeemed_refresh_token_stays_valid_and_refresh_in_comes_only_when_asked() {
    let f = start(FakeConfig::default());
    let flow = f.approved_device_code().await;
    let first = f.redeem_device_code(&flow).await;
    assert!(first.get("refresh_in").is_none(), "{first}");
    let rt1 = first["refresh_token"].as_str().unwrap();
    let (s, second) = f.refresh_for_graph(rt1).await;
    assert_eq!(s, 200, "{second}");
    assert_ne!(
        second["refresh_token"], first["refresh_token"],
        "a new one is issued"
    );
    let (s, again) = f.refresh_for_graph(rt1).await;
    assert_eq!(s, 200, "the redeemed one still works: {again}");
}

/// A resource's rules over the control API, in Entra's shapes: Conditional Access blocking
/// (53003, `message_only`) whatever the sign-in, and missing consent (65001,
/// `consent_required`) until an interactive sign-in for the resource, a resource the tenant does
/// not have (500011, `invalid_resource`); an unknown rule refused.
#[tokio::test]
async fn resource_rules_answer_refreshes_as_entra_does() {
    let f = start(FakeConfig::default());
    let flow = f.approved_device_code().await;
    let first = f.redeem_device_code(&flow).await;
    let rt = first["refresh_token"].as_str().unwrap();
    for (policy, code, suberror) in [
        ("consent", 65001, "consent_required"),
        ("block", 53003, "message_only"),
        ("absent", 500011, ""),
    ] {
        let (s, b) = f
            .control(
                reqwest::Method::POST,
                "/_fake/policy",
                Some(json!({"resource": "https://graph.microsoft.com", "policy": policy})),
            )
            .await;
        assert_eq!(s, 201, "{b}");
        let (s, b) = f.refresh_for_graph(rt).await;
        assert_eq!(s, 400);
        if suberror.is_empty() {
            assert_entra_error(&b, "invalid_resource", code);
        } else {
            assert_entra_error(&b, "invalid_grant", code);
            assert_eq!(b["suberror"], suberror, "{b}");
        }
    }
    let (s, b) = f
        .control(
            reqwest::Method::POST,
            "/_fake/policy",
            Some(json!({"resource": "x", "policy": "maybe"})),
        )
        .await;
    assert_eq!(s, 400, "{b}");
}

/// Entra's client-request-loop detection (`loop_limit`): identical refreshes beyond the limit
/// within 5 minutes get AADSTS50196; another scope, or the window's end, is served.
#[tokio::test]
async fn loop_detection_refuses_the_same_refresh_repeated() {
    let f = start(FakeConfig {
        loop_limit: Some(2),
        ..FakeConfig::default()
    });
    let flow = f.approved_device_code().await;
    let rt = f.redeem_device_code(&flow).await["refresh_token"]
        .as_str()
        .unwrap()
        .to_string();
    for _ in 0..2 {
        assert_eq!(f.refresh_for_graph(&rt).await.0, 200);
    }
    let (s, b) = f.refresh_for_graph(&rt).await;
    assert_eq!(s, 400);
    assert_entra_error(&b, "invalid_grant", 50196);
    f.fake.advance_clock(301);
    assert_eq!(f.refresh_for_graph(&rt).await.0, 200, "a new window");
}

#[tokio::test]
async fn refresh_tokens_rotate_expire_and_revoke() {
    let f = start(FakeConfig {
        refresh_token_lifetime: 3600,
        strict_rotation: true,
        ..FakeConfig::default()
    });
    let flow = f.approved_device_code().await;
    let first = f.redeem_device_code(&flow).await;
    let rt1 = first["refresh_token"].as_str().unwrap();
    let (s, second) = f.refresh_for_graph(rt1).await;
    assert_eq!(s, 200, "{second}");
    let rt2 = second["refresh_token"].as_str().unwrap().to_string();
    assert_ne!(rt1, rt2);
    assert_eq!(
        claims(second["access_token"].as_str().unwrap())["aud"],
        "https://graph.microsoft.com"
    );
    assert_eq!(
        second["scope"],
        "https://graph.microsoft.com/User.Read profile openid"
    );

    // Rotation: the old token is dead.
    let (s, b) = f.refresh_for_graph(rt1).await;
    assert_eq!(s, 400);
    assert_entra_error(&b, "invalid_grant", 70000);

    // Lifetime follows the fake clock.
    let (s, third) = f.refresh_for_graph(&rt2).await;
    assert_eq!(s, 200);
    let rt3 = third["refresh_token"].as_str().unwrap().to_string();
    f.fake.advance_clock(3601);
    let (s, b) = f.refresh_for_graph(&rt3).await;
    assert_eq!(s, 400);
    assert_entra_error(&b, "invalid_grant", 700082);

    // Revocation.
    let fresh = f.redeem_device_code(&f.approved_device_code().await).await;
    let (s, done) = f
        .control(
            reqwest::Method::POST,
            "/_fake/revoke",
            Some(json!({"username": "ALICE@contoso.example"})),
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(done["revoked_refresh_tokens"], 1);
    let (s, b) = f
        .refresh_for_graph(fresh["refresh_token"].as_str().unwrap())
        .await;
    assert_eq!(s, 400);
    assert_entra_error(&b, "invalid_grant", 50173);
    assert_eq!(b["suberror"], "bad_token");
    let (s, _) = f
        .control(
            reqwest::Method::POST,
            "/_fake/revoke",
            Some(json!({"username": "nobody@x"})),
        )
        .await;
    assert_eq!(s, 404);
}

#[tokio::test]
async fn device_code_flow_walks_entras_state_machine() {
    let f = start(FakeConfig {
        device_code_interval: 5,
        device_code_lifetime: 900,
        ..FakeConfig::default()
    });
    let flow = f.device_code().await;
    assert_eq!(flow["verification_uri"], f.url("/devicelogin"));
    assert_eq!(flow["expires_in"], 900);
    assert_eq!(flow["interval"], 5);
    let user_code = flow["user_code"].as_str().unwrap();
    assert!(flow["message"].as_str().unwrap().contains(user_code));
    let device_code = flow["device_code"].as_str().unwrap();
    let poll = || f.poll_device(device_code);
    let (s, b) = poll().await;
    assert_eq!(s, 400);
    assert_entra_error(&b, "authorization_pending", 70016);
    let (_, b) = poll().await;
    assert_eq!(b["error"], "slow_down");
    f.fake.advance_clock(5);
    let (_, b) = poll().await;
    assert_eq!(b["error"], "authorization_pending");

    // The page: the fields and buttons the issue asks for; a wrong password keeps it pending.
    let page = fetch_text(f.http.get(f.url(&format!("/devicelogin?otc={user_code}")))).await;
    for needle in [
        "name=\"user_code\"",
        "name=\"username\"",
        "name=\"password\"",
        "name=\"action\" value=\"approve\"",
        "name=\"action\" value=\"decline\"",
        &format!("value=\"{user_code}\""),
    ] {
        assert!(page.contains(needle), "{needle}");
    }
    let bad = f
        .post_form(
            "/devicelogin",
            &[
                ("user_code", user_code),
                ("username", ALICE),
                ("password", "nope"),
                ("action", "approve"),
            ],
        )
        .await
        .text()
        .await
        .unwrap();
    assert!(bad.contains("AADSTS50126"), "{bad}");
    let lower = user_code.to_ascii_lowercase();
    let ok = f.fake.approve_device_code(&lower, ALICE, ALICE_PW).await;
    assert!(ok.contains("You have signed in"), "{ok}");
    let (s, tokens) = poll().await;
    assert_eq!(s, 200, "{tokens}");
    assert!(!tokens["client_info"].as_str().unwrap().contains('='));
    let (s, b) = poll().await;
    assert_eq!(s, 400);
    assert_entra_error(&b, "invalid_grant", 70000);

    let declined = f.device_code().await;
    f.fake
        .decline_device_code(declined["user_code"].as_str().unwrap())
        .await;
    let (_, b) = f
        .poll_device(declined["device_code"].as_str().unwrap())
        .await;
    assert_entra_error(&b, "authorization_declined", 70000);

    let late = f.device_code().await;
    f.fake.advance_clock(901);
    let (_, b) = f.poll_device(late["device_code"].as_str().unwrap()).await;
    assert_entra_error(&b, "expired_token", 70019);
    let page = f
        .post_form(
            "/devicelogin",
            &[
                ("user_code", late["user_code"].as_str().unwrap()),
                ("username", ALICE),
                ("password", ALICE_PW),
            ],
        )
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains("AADSTS70019"), "{page}");
}

/// A token request form and the status, `error` and AADSTS code it must get.
type ErrorCase = (
    &'static [(&'static str, &'static str)],
    StatusCode,
    &'static str,
    u64,
);

#[tokio::test]
async fn malformed_requests_get_entras_errors() {
    let f = start(FakeConfig::default());
    let correlation = "3f0b8a43-5bd3-4c6a-9d0e-2c7b1d9e8f70";
    let r = f
        .http
        .post(f.url("/organizations/oauth2/v2.0/token"))
        .header("client-request-id", correlation)
        .form(&[("client_id", CLIENT)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(r.headers()["client-request-id"], correlation);
    let b: Value = r.json().await.unwrap();
    assert_entra_error(&b, "invalid_request", 900144);
    assert_eq!(b["correlation_id"], correlation);
    assert!(
        b["error_description"]
            .as_str()
            .unwrap()
            .contains(&format!("Correlation ID: {correlation}"))
    );

    let cases: &[ErrorCase] = &[
        (
            &[("client_id", CLIENT), ("grant_type", "password")],
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            70003,
        ),
        (
            &[
                ("client_id", CLIENT),
                ("grant_type", "client_credentials"),
                ("scope", ARM),
            ],
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            7000218,
        ),
        (
            &[
                ("client_id", CLIENT),
                ("grant_type", "refresh_token"),
                ("refresh_token", "x"),
                ("client_secret", "s"),
            ],
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            700025,
        ),
        (
            &[
                ("client_id", "my-app"),
                ("grant_type", "refresh_token"),
                ("refresh_token", "x"),
            ],
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            700016,
        ),
        (
            &[
                ("client_id", CLIENT),
                ("grant_type", "refresh_token"),
                ("refresh_token", "x"),
                ("scope", "https://x.example/"),
            ],
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            70011,
        ),
        (
            &[
                ("client_id", CLIENT),
                ("grant_type", "refresh_token"),
                ("refresh_token", "x"),
                ("scope", "https://a.example/r https://b.example/r"),
            ],
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            28000,
        ),
        (
            &[
                ("client_id", CLIENT),
                ("grant_type", "refresh_token"),
                ("refresh_token", "x"),
            ],
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            70000,
        ),
        (
            &[("client_id", CLIENT), ("grant_type", "refresh_token")],
            StatusCode::BAD_REQUEST,
            "invalid_request",
            900144,
        ),
    ];
    for (form, status, error, code) in cases {
        let (s, b) = f.token(form).await;
        assert_eq!(s, *status, "{form:?}: {b}");
        assert_entra_error(&b, error, *code);
    }
    let r = f.get("/organizations/oauth2/v2.0/token").await;
    assert_eq!(r.status(), 400);
    assert_entra_error(&r.json().await.unwrap(), "invalid_request", 900561);
    let r = f
        .post_form(
            "/11111111-2222-4333-8444-555555555555/oauth2/v2.0/token",
            &[("grant_type", "refresh_token")],
        )
        .await;
    assert_entra_error(&r.json().await.unwrap(), "invalid_request", 90002);
    let r = f
        .post_form(
            "/organizations/oauth2/v2.0/devicecode",
            &[("client_id", CLIENT)],
        )
        .await;
    assert_entra_error(&r.json().await.unwrap(), "invalid_request", 900144);
}

/// The authorize query of the authorize tests, `extra` replacing parameters (an empty value
/// removes one).
fn authorize_query(extra: &[(&'static str, &str)]) -> Vec<(&'static str, String)> {
    let (_, challenge) = pkce();
    let mut q: Vec<(&'static str, String)> = vec![
        ("client_id", CLIENT.into()),
        ("response_type", "code".into()),
        ("redirect_uri", "http://localhost:5555/cb".into()),
        ("scope", format!("{ARM} openid offline_access")),
        ("state", "s1".into()),
        ("code_challenge", challenge),
        ("code_challenge_method", "S256".into()),
    ];
    for (k, v) in extra {
        q.retain(|(qk, _)| qk != k);
        if !v.is_empty() {
            q.push((k, v.to_string()));
        }
    }
    q
}

impl Fake {
    /// `GET` authorize with [`authorize_query`]`(extra)`, in a browser holding `cookie`, if any.
    async fn authorize(
        &self,
        extra: &[(&'static str, &str)],
        cookie: Option<&str>,
    ) -> reqwest::Response {
        let mut request = self
            .http
            .get(self.url(AUTHORIZE))
            .query(&authorize_query(extra));
        if let Some(cookie) = cookie {
            request = request.header("cookie", cookie);
        }
        request.send().await.unwrap()
    }

    /// The sign-in page of [`authorize`](Self::authorize)`(extra, None)`.
    async fn sign_in_page(&self, extra: &[(&'static str, &str)]) -> String {
        self.authorize(extra, None).await.text().await.unwrap()
    }

    /// Alice signs in on the sign-in page with `response_mode=form_post`: the answer that relays
    /// the code to the client, and sets the browser session.
    async fn form_post_sign_in(&self) -> reqwest::Response {
        let page = self.sign_in_page(&[("response_mode", "form_post")]).await;
        self.post_form(
            AUTHORIZE,
            &[
                ("flow", &field(&page, "flow")),
                ("username", ALICE),
                ("password", ALICE_PW),
            ],
        )
        .await
    }
}

/// The browser session (`name=value`) a sign-in answer sets.
fn session_cookie(r: &reqwest::Response) -> String {
    r.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn authorize_shows_an_error_page_for_an_untrusted_redirect() {
    let f = start(FakeConfig::default());
    let r = f
        .authorize(&[("redirect_uri", "https://evil.example/cb")], None)
        .await;
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("AADSTS50011"));
    // The Azure CLI's registration has only http://localhost; another app may use 127.0.0.1.
    let r = f
        .authorize(&[("redirect_uri", "http://127.0.0.1:5555/cb")], None)
        .await;
    assert_eq!(r.status(), 400, "127.0.0.1 for the Azure CLI's client id");
    assert!(r.text().await.unwrap().contains("AADSTS50011"));
    let r = f
        .authorize(
            &[
                ("redirect_uri", "http://127.0.0.1:5555/cb"),
                ("client_id", OTHER_CLIENT),
            ],
            None,
        )
        .await;
    assert_eq!(r.status(), 200, "another app's loopback redirect");
}

#[tokio::test]
async fn authorize_redirects_bad_requests_to_the_client_with_state() {
    let f = start(FakeConfig::default());
    for (case, extra, error) in [
        ("no PKCE", ("code_challenge", ""), "invalid_request"),
        (
            "plain PKCE",
            ("code_challenge_method", "plain"),
            "invalid_request",
        ),
        (
            "implicit grant",
            ("response_type", "token"),
            "unsupported_response_type",
        ),
        (
            "two resources",
            ("scope", "https://a.example/x https://b.example/y"),
            "invalid_scope",
        ),
        (
            "prompt=none without a session",
            ("prompt", "none"),
            "login_required",
        ),
    ] {
        let r = f.authorize(&[extra], None).await;
        assert_eq!(r.status(), 302, "{case}");
        let url = url::Url::parse(r.headers()["location"].to_str().unwrap()).unwrap();
        assert_eq!(url.host_str(), Some("localhost"), "{case}");
        let q: Vec<(String, String)> = url.query_pairs().into_owned().collect();
        assert_eq!(param(&q, "error"), Some(error), "{case}");
        assert_eq!(param(&q, "state"), Some("s1"), "{case}");
        assert!(
            param(&q, "error_description").is_some_and(|d| d.contains("Trace ID")),
            "{case}: {q:?}"
        );
    }
}

#[tokio::test]
async fn the_sign_in_page_prefills_login_hint_and_rerenders_bad_credentials() {
    let f = start(FakeConfig::default());
    let page = f.sign_in_page(&[("login_hint", ALICE)]).await;
    assert!(page.contains(&format!("name=\"username\" value=\"{ALICE}\"")));
    assert_eq!(page.matches("<form").count(), 1);
    assert!(page.contains("method=\"post\""));
    let flow = field(&page, "flow");
    let again = f
        .post_form(
            AUTHORIZE,
            &[("flow", &flow), ("username", ALICE), ("password", "bad")],
        )
        .await;
    assert_eq!(again.status(), 200);
    assert!(again.text().await.unwrap().contains("AADSTS50126"));
    let unknown = f
        .post_form(
            AUTHORIZE,
            &[
                ("flow", &flow),
                ("username", "zed@contoso.example"),
                ("password", "bad"),
            ],
        )
        .await;
    assert!(unknown.text().await.unwrap().contains("AADSTS50034"));
}

#[tokio::test]
async fn cancel_on_the_sign_in_page_redirects_access_denied_with_state() {
    let f = start(FakeConfig::default());
    let flow = field(&f.sign_in_page(&[]).await, "flow");
    let r = f
        .post_form(AUTHORIZE, &[("flow", &flow), ("action", "cancel")])
        .await;
    assert_eq!(r.status(), 302);
    let q = redirect_query_any(&r);
    assert_eq!(param(&q, "error"), Some("access_denied"));
    assert_eq!(param(&q, "state"), Some("s1"));
}

#[tokio::test]
async fn form_post_delivers_code_and_state_in_an_auto_submitting_form() {
    let f = start(FakeConfig::default());
    let r = f.form_post_sign_in().await;
    assert_eq!(r.status(), 200);
    let relay = r.text().await.unwrap();
    assert!(
        relay.contains("action=\"http://localhost:5555/cb\""),
        "{relay}"
    );
    assert!(relay.contains("document.forms[0].submit()"));
    assert!(!field(&relay, "code").is_empty());
    assert_eq!(field(&relay, "state"), "s1");
}

#[tokio::test]
async fn a_session_signs_in_silently_but_prompt_login_still_shows_the_page() {
    let f = start(FakeConfig::default());
    let cookie = session_cookie(&f.form_post_sign_in().await);
    let silent = f.authorize(&[("prompt", "none")], Some(&cookie)).await;
    assert_eq!(silent.status(), 302);
    assert!(param(&redirect_query_any(&silent), "code").is_some());
    let login = f.authorize(&[("prompt", "login")], Some(&cookie)).await;
    assert_eq!(login.status(), 200);
}

#[tokio::test]
async fn fragment_mode_delivers_the_code_in_the_fragment() {
    let f = start(FakeConfig::default());
    let cookie = session_cookie(&f.form_post_sign_in().await);
    let r = f
        .authorize(&[("response_mode", "fragment")], Some(&cookie))
        .await;
    let location = r.headers()["location"].to_str().unwrap();
    assert!(
        location.starts_with("http://localhost:5555/cb#code="),
        "{location}"
    );
}

#[tokio::test]
async fn logout_ends_the_browser_session() {
    let f = start(FakeConfig::default());
    let cookie = session_cookie(&f.form_post_sign_in().await);
    let r = f
        .http
        .get(f.url("/organizations/oauth2/v2.0/logout"))
        .query(&[("post_logout_redirect_uri", "http://localhost:5555/")])
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["location"], "http://localhost:5555/");
    let r = f.authorize(&[("prompt", "none")], Some(&cookie)).await;
    assert_eq!(
        param(&redirect_query_any(&r), "error"),
        Some("login_required")
    );
}

fn redirect_query_any(r: &reqwest::Response) -> Vec<(String, String)> {
    let url = url::Url::parse(r.headers()["location"].to_str().unwrap()).unwrap();
    url.query_pairs().into_owned().collect()
}

/// A refresh-token request the fake refuses (400 `invalid_grant`) when no fault answers it.
const UNKNOWN_REFRESH: [(&str, &str); 3] = [
    ("client_id", CLIENT),
    ("grant_type", "refresh_token"),
    ("refresh_token", "x"),
];

/// Asserts the request log shows a request answered by a fault of `kind`.
fn assert_fault_logged(f: &Fake, kind: &str) {
    let faults: Vec<Option<String>> = f.fake.request_log().into_iter().map(|e| e.fault).collect();
    assert!(
        faults.contains(&Some(kind.to_string())),
        "{kind}: {faults:?}"
    );
}

#[tokio::test]
async fn a_fault_answers_the_next_count_requests_then_stops() {
    let f = start(FakeConfig::default());
    f.fake
        .queue_fault(FaultRule::once(Endpoint::Token, Fault::status(503, None)).times(2));
    for _ in 0..2 {
        let (s, b) = f.token(&UNKNOWN_REFRESH).await;
        assert_eq!(s, 503);
        assert_eq!(b["error"], "temporarily_unavailable");
    }
    let (s, _) = f.token(&UNKNOWN_REFRESH).await;
    assert_eq!(s, 400, "back to normal after count uses");
    assert_fault_logged(&f, "status");
}

#[tokio::test]
async fn faults_queued_over_http_match_their_grant_type_and_send_retry_after() {
    let f = start(FakeConfig::default());
    // As other-language tests do it; 429 carries Retry-After.
    let (s, _) = f
        .control(
            reqwest::Method::POST,
            "/_fake/faults",
            Some(json!({"endpoint": "token", "grant_type": "refresh_token", "fault": {"kind": "status", "status": 429, "retry_after": 7}})),
        )
        .await;
    assert_eq!(s, 201);
    let (s, _) = f
        .token(&[("client_id", CLIENT), ("grant_type", "authorization_code")])
        .await;
    assert_eq!(s, 400, "grant_type filter: other grants pass");
    let r = f
        .post_form("/organizations/oauth2/v2.0/token", &UNKNOWN_REFRESH)
        .await;
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers()["retry-after"], "7");
    assert_fault_logged(&f, "status");
}

#[tokio::test]
async fn a_drop_fault_closes_the_connection_without_an_answer() {
    let f = start(FakeConfig::default());
    f.fake
        .queue_fault(FaultRule::once(Endpoint::Token, Fault::Drop));
    let err = f
        .http
        .post(f.url("/organizations/oauth2/v2.0/token"))
        .form(&UNKNOWN_REFRESH)
        .send()
        .await
        .unwrap_err();
    assert!(err.is_request() || err.is_connect(), "{err:?}");
    assert_fault_logged(&f, "drop");
    let dropped = f
        .fake
        .request_log()
        .into_iter()
        .find(|e| e.fault.as_deref() == Some("drop"))
        .unwrap();
    assert_eq!(dropped.status, None);
}

#[tokio::test]
async fn a_delay_fault_answers_normally_but_late() {
    let f = start(FakeConfig::default());
    f.fake.queue_fault(FaultRule::once(
        Endpoint::OpenidConfiguration,
        Fault::Delay { ms: 400 },
    ));
    let t = Instant::now();
    let r = f
        .get("/organizations/v2.0/.well-known/openid-configuration")
        .await;
    assert_eq!(r.status(), 200);
    assert!(t.elapsed() >= Duration::from_millis(400));
    assert_fault_logged(&f, "delay");
}

#[tokio::test]
async fn an_interaction_required_fault_carries_entras_claims_challenge() {
    let f = start(FakeConfig::default());
    f.fake.queue_fault(FaultRule::once(
        Endpoint::Any,
        Fault::interaction_required(),
    ));
    let (s, b) = f.token(&UNKNOWN_REFRESH).await;
    assert_eq!(s, 400);
    assert_entra_error(&b, "interaction_required", 50079);
    assert_eq!(b["suberror"], "basic_action");
    let challenge: Value = serde_json::from_str(b["claims"].as_str().unwrap()).unwrap();
    assert!(
        challenge["access_token"]["capolids"]["essential"]
            .as_bool()
            .unwrap()
    );
    assert_fault_logged(&f, "interaction_required");
}

#[tokio::test]
async fn an_invalid_grant_fault_has_entras_shape() {
    let f = start(FakeConfig::default());
    f.fake.queue_fault(FaultRule::once(
        Endpoint::Token,
        Fault::InvalidGrant {
            code: Some(50173),
            description: None,
            suberror: Some("bad_token".into()),
        },
    ));
    let (_, b) = f.token(&UNKNOWN_REFRESH).await;
    assert_entra_error(&b, "invalid_grant", 50173);
    assert_fault_logged(&f, "invalid_grant");
}

#[tokio::test]
async fn used_faults_leave_the_queue_and_unknown_kinds_are_refused() {
    let f = start(FakeConfig::default());
    f.fake
        .queue_fault(FaultRule::once(Endpoint::Token, Fault::status(503, None)));
    let (s, pending) = f.control(reqwest::Method::GET, "/_fake/faults", None).await;
    assert_eq!(s, 200);
    assert_eq!(
        pending["pending"].as_array().map(Vec::len),
        Some(1),
        "{pending}"
    );
    let (s, _) = f.token(&UNKNOWN_REFRESH).await;
    assert_eq!(s, 503);
    let (s, pending) = f.control(reqwest::Method::GET, "/_fake/faults", None).await;
    assert_eq!(s, 200);
    assert_eq!(pending["pending"], json!([]));
    let (s, b) = f
        .control(
            reqwest::Method::POST,
            "/_fake/faults",
            Some(json!({"endpoint": "token", "fault": {"kind": "explode"}})),
        )
        .await;
    assert_eq!(s, 400, "{b}");
}

#[tokio::test]
async fn request_log_counts_round_trips_and_never_holds_secrets() {
    let f = start(FakeConfig::default());
    let (pairs, verifier) = f.sign_in(&[("login_hint", ALICE)]).await;
    let code = param(&pairs, "code").unwrap().to_string();
    let (_, tokens) = f.redeem_code(&code, &verifier, REDIRECT).await;
    let rt = tokens["refresh_token"].as_str().unwrap().to_string();
    let (_, refreshed) = f.refresh(CLIENT, &rt).await;
    let flow = f.approved_device_code().await;
    let device_code = flow["device_code"].as_str().unwrap();
    let device_tokens = f.redeem_device_code(&flow).await;

    let (_, over_http) = f.control(reqwest::Method::GET, "/_fake/log", None).await;
    let logged = format!("{} {:?}", over_http, f.fake.request_log());
    let mut secrets = vec![
        ALICE_PW.to_string(),
        code,
        verifier,
        rt,
        device_code.to_string(),
        flow["user_code"].as_str().unwrap().to_string(),
        "nonce-abc".to_string(),
    ];
    for body in [&tokens, &refreshed, &device_tokens] {
        for k in ["access_token", "refresh_token", "id_token"] {
            secrets.push(body[k].as_str().unwrap().to_string());
        }
    }
    for s in &secrets {
        assert!(!logged.contains(s.as_str()), "log leaks a secret: {s}");
    }

    let entries = over_http["entries"].as_array().unwrap();
    let grants: Vec<&str> = entries
        .iter()
        .filter_map(|e| e["grant_type"].as_str())
        .collect();
    assert_eq!(
        grants,
        ["authorization_code", "refresh_token", DEVICE_GRANT]
    );
    let first = &entries[0];
    assert_eq!(first["method"], "GET");
    assert_eq!(first["path"], "/organizations/oauth2/v2.0/authorize");
    assert_eq!(first["endpoint"], "authorize");
    assert_eq!(first["client_id"], CLIENT);
    assert_eq!(first["status"], 200);
    assert!(
        entries
            .iter()
            .all(|e| !e["path"].as_str().unwrap().contains('?'))
    );

    let (s, _) = f.control(reqwest::Method::DELETE, "/_fake/log", None).await;
    assert_eq!(s, 204);
    assert!(f.fake.request_log().is_empty());
}

#[tokio::test]
async fn control_api_moves_the_clock_and_lists_users() {
    let f = start(FakeConfig::default());
    let (_, before) = f.control(reqwest::Method::GET, "/_fake/clock", None).await;
    let (s, after) = f
        .control(
            reqwest::Method::POST,
            "/_fake/clock",
            Some(json!({"advance_secs": 86400})),
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(after["offset_secs"], 86400);
    assert!(after["epoch"].as_i64().unwrap() - before["epoch"].as_i64().unwrap() >= 86400);
    // The clock shows in issued tokens too.
    let t = f.redeem_device_code(&f.approved_device_code().await).await;
    let iat = claims(t["access_token"].as_str().unwrap())["iat"]
        .as_i64()
        .unwrap();
    assert!(iat >= chrono::Utc::now().timestamp() + 86400 - 5);

    let (_, users) = f.control(reqwest::Method::GET, "/_fake/users", None).await;
    let alice = &users["users"][0];
    assert_eq!(alice["username"], ALICE);
    assert_eq!(
        alice["home_account_id"],
        format!(
            "{}.{}",
            alice["oid"].as_str().unwrap(),
            alice["tenant_id"].as_str().unwrap()
        )
    );
    assert!(alice.get("password").is_none());
    let bob = &users["users"][1];
    assert_ne!(
        bob["tenant_id"], alice["tenant_id"],
        "one tenant per domain"
    );

    // Stable across instances (and so across runs).
    let g = start(FakeConfig::default());
    assert_eq!(
        g.fake.user(ALICE).unwrap().oid,
        alice["oid"].as_str().unwrap()
    );
    // --tenant puts everyone in one tenant.
    let tenant = "72f988bf-86f1-41af-91ab-2d7cd011db47";
    let h = start(FakeConfig {
        tenant: Some(tenant.into()),
        ..FakeConfig::default()
    });
    assert_eq!(
        h.fake.user("bob@fabrikam.example").unwrap().tenant_id,
        tenant
    );
    let (s, _) = h
        .control(
            reqwest::Method::POST,
            "/_fake/clock",
            Some(json!({"advance": 1})),
        )
        .await;
    assert_eq!(s, 400);
}

#[tokio::test]
async fn foci_clients_share_refresh_tokens() {
    let f = start(
        FakeConfig::default()
            .foci_client(CLIENT)
            .foci_client(OTHER_CLIENT),
    );
    let t = f.redeem_device_code(&f.approved_device_code().await).await;
    assert_eq!(t["foci"], "1");
    let (s, sibling) = f
        .refresh(OTHER_CLIENT, t["refresh_token"].as_str().unwrap())
        .await;
    assert_eq!(s, 200, "{sibling}");
    assert_eq!(
        claims(sibling["id_token"].as_str().unwrap())["aud"],
        OTHER_CLIENT
    );

    let g = start(FakeConfig::default());
    let t = g.redeem_device_code(&g.approved_device_code().await).await;
    assert!(t.get("foci").is_none());
    let (s, b) = g
        .refresh(OTHER_CLIENT, t["refresh_token"].as_str().unwrap())
        .await;
    assert_eq!(s, 400);
    assert_eq!(b["error_additional_info"], json!(["client_mismatch"]));
}

#[cfg(unix)]
#[tokio::test]
async fn binary_prints_its_url_and_writes_its_ca() {
    use std::io::BufRead as _;
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_fake-entra"))
        .args([
            "--port",
            "0",
            "--ca-out",
            ca.to_str().unwrap(),
            "--user",
            "carol@contoso.example:pa:ss",
        ])
        .args([
            "--access-token-lifetime",
            "120",
            "--device-code-interval",
            "1",
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line.trim().to_string();
    assert!(url.starts_with("https://127.0.0.1:"), "{url}");
    let http = client_trusting(&std::fs::read(&ca).unwrap());
    let r = http
        .post(format!("{url}/organizations/oauth2/v2.0/devicecode"))
        .form(&[("client_id", CLIENT), ("scope", ARM)])
        .send()
        .await
        .unwrap();
    let flow: Value = r.json().await.unwrap();
    assert_eq!(flow["interval"], 1);
    let ok = fetch_text(http.post(format!("{url}/devicelogin")).form(&[
        ("user_code", flow["user_code"].as_str().unwrap()),
        ("username", "carol@contoso.example"),
        ("password", "pa:ss"),
        ("action", "approve"),
    ]))
    .await;
    assert!(ok.contains("You have signed in"), "{ok}");
    let r = http
        .post(format!("{url}/organizations/oauth2/v2.0/token"))
        .form(&[
            ("client_id", CLIENT),
            ("grant_type", DEVICE_GRANT),
            ("device_code", flow["device_code"].as_str().unwrap()),
        ])
        .send()
        .await
        .unwrap();
    let t: Value = r.json().await.unwrap();
    assert_eq!(t["expires_in"], 120);
    rustix::process::kill_process(
        rustix::process::Pid::from_child(&child),
        rustix::process::Signal::TERM,
    )
    .unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}");
}
