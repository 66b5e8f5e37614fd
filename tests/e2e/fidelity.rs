//! What real Entra ID answers, and what tokentray makes of it: a resource whose Conditional
//! Access policy sends a claims challenge (answered by the next `tokentray login`, which sends
//! the claims and signs in for exactly that resource), and the refusals that each have their own
//! code, message and cure (blocked by policy, consent, not a member, throttled).

use std::io::BufRead as _;
use std::process::Stdio;

use serde_json::Value;
use tokentray_core::ErrorCode;
use tokentray_core::tokens::Health;
use tokentray_tests::fake_entra::{
    DEFAULT_CLAIMS, Endpoint, FakeConfig, FakeEntra, Fault, FaultRule, Policy,
};
use tokentray_tests::harness::Home;

use crate::serve::{self, Daemon, signed_in};
use crate::sign_in::{ALICE, GRAPH, Instance, PW, fake, options, play_browser, quick};

const VAULT: &str = "https://vault.azure.net/.default";

/// `tokentray --json login --device-code` in `home` (signed in by [`signed_in`]), approved as
/// Alice: its stderr.
async fn cli_device_login(home: &Home, fake: &FakeEntra) -> String {
    let mut child = home
        .cmd(&["--json", "login", "--device-code"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    let shown: Value = serde_json::from_str(&first).unwrap_or_else(|e| panic!("{e}: {first:?}"));
    fake.approve_device_code(shown["user_code"].as_str().unwrap(), ALICE, serve::PW)
        .await;
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{stderr}");
    stderr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claims_challenge_reaches_the_tool_and_the_next_login_answers_it() {
    // Tokens of under 10 minutes: every request for one is a refresh, which Entra grants only to a
    // sign-in that answered the challenge.
    let fake = FakeEntra::start(
        FakeConfig {
            access_token_lifetime: 599,
            ..quick()
        }
        .user(ALICE, serve::PW),
    )
    .unwrap();
    let home = signed_in(&fake, 0).await;
    fake.require_claims("https://vault.azure.net");

    // A tool asks the endpoint: refused with Entra's challenge, which it could pass on.
    {
        let d = Daemon::start(&home).await;
        let bearer = format!("Bearer {}", d.secret);
        let (status, _, body) = d.get(
            &format!("/v1/token?scope={VAULT}"),
            &[("Host", "localhost"), ("Authorization", &bearer)],
        );
        assert_eq!(status, 401, "{body}");
        let body: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(body["code"], "interaction_required", "{body}");
        assert_eq!(
            body["claims"], DEFAULT_CLAIMS,
            "the challenge, as Entra sent it"
        );
        let message = body["message"].as_str().unwrap();
        assert!(message.contains("AADSTS50076"), "{message}");
        assert!(message.contains(VAULT), "names the resource: {message}");
        assert!(message.contains("tokentray login"), "{message}");
        let (status, _, body) = d.get(
            "/v1/token?scope=https://management.core.windows.net//.default",
            &[("Host", "localhost"), ("Authorization", &bearer)],
        );
        assert_eq!(
            status, 200,
            "the account's other tokens are untouched: {body}"
        );
    }

    // A plain `tokentray login` signs in for exactly that, with the claims.
    let told = cli_device_login(&home, &fake).await;
    assert!(
        told.contains(&format!("{ALICE} needs a sign-in for {VAULT}")),
        "{told}"
    );
    // A refresh for Key Vault now works: the claims went with the sign-in.
    let vault = home.run(&["token", "--scope", VAULT]);
    assert!(
        vault.status.success(),
        "{}",
        String::from_utf8_lossy(&vault.stderr)
    );
    // Answered: the next plain login is an ordinary one.
    let again = cli_device_login(&home, &fake).await;
    assert!(!again.contains("needs a sign-in"), "{again}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sign_in_without_the_claims_does_not_satisfy_the_resource() {
    // The fake's rule itself: what makes the test above fail if tokentray dropped the claims.
    let fake = fake(quick());
    let me = Instance::new(&fake);
    me.device_sign_in(&fake, ALICE).await;
    fake.require_claims("https://vault.azure.net");
    let err = me.token(VAULT).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::InteractionRequired, "{err}");
    let (account, challenge) = me.tokens.pending_challenges().unwrap().remove(0);
    assert_eq!(account.username, ALICE);
    assert_eq!(challenge.scopes, VAULT);
    assert_eq!(challenge.claims.as_deref(), Some(DEFAULT_CLAIMS));
    me.device_sign_in_for(&fake, ALICE, VAULT).await;
    assert!(
        me.tokens.pending_challenges().unwrap().is_empty(),
        "a sign-in for the resource clears it"
    );
    me.advance(3600);
    fake.advance_clock(3600);
    let err = me.token(VAULT).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::InteractionRequired, "{err}");
}

/// Entra's answer to a refresh, as a fault on the next token request.
fn refusal(error: &str, code: u32, suberror: Option<&str>, description: &str) -> FaultRule {
    FaultRule::once(
        Endpoint::Token,
        Fault::Error {
            error: error.into(),
            code,
            description: Some(description.into()),
            suberror: suberror.map(str::to_string),
            claims: None,
            status: None,
        },
    )
}

/// 53003 and 65001 come from the fake's rules for a resource, in Entra's shapes; 50196 as a
/// fault in Entra's shape (tokentray itself does not loop:
/// [`ten_tools_at_once_make_one_refresh_under_loop_detection`]).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_refusal_has_its_own_code_and_says_what_helps() {
    const STORAGE: &str = "https://storage.azure.com/.default";
    let fake = fake(quick());
    let me = Instance::new(&fake);
    me.device_sign_in(&fake, ALICE).await;
    fake.set_policy("https://graph.microsoft.com", Policy::Block);
    fake.set_policy("https://vault.azure.net", Policy::Consent);
    // Another cloud's resource, asked of this one.
    fake.set_policy("https://management.chinacloudapi.cn", Policy::Absent);
    let cases = [
        (
            GRAPH,
            None,
            ErrorCode::BlockedByPolicy,
            ["will not help", "admin"],
        ),
        (
            VAULT,
            None,
            ErrorCode::ConsentRequired,
            ["tokentray login --scope", "grant consent"],
        ),
        (
            "https://management.chinacloudapi.cn/.default",
            None,
            ErrorCode::Authority,
            ["500011", "was not found in the tenant"],
        ),
        (
            STORAGE,
            Some(refusal(
                "invalid_grant",
                50196,
                None,
                "The server terminated an operation because it encountered a client request \
                 loop.",
            )),
            ErrorCode::AuthorityUnavailable,
            ["throttled", "Cached tokens are still used"],
        ),
    ];
    for (scope, fault, code, words) in cases {
        if let Some(rule) = fault {
            fake.queue_fault(rule);
        }
        let err = me.token(scope).await.unwrap_err();
        assert_eq!(err.code(), code, "{err}");
        let text = err.to_string();
        for w in words {
            assert!(text.contains(w), "{code:?}: {w:?} in {text}");
        }
        assert!(
            text.contains("correlation id"),
            "the id to look up in the sign-in logs: {text}"
        );
        let account = &me.tokens.accounts().unwrap()[0];
        assert_eq!(account.needs_sign_in, None, "{code:?}: the account is fine");
    }
    // Consent is cured by a sign-in for that scope: the next login offers it.
    let (_, challenge) = me.tokens.pending_challenges().unwrap().remove(0);
    assert_eq!(challenge.scopes, VAULT);
    // Throttled: the account waits, it is not signed out.
    let state = me.tokens.account_states().unwrap().remove(0);
    assert!(
        matches!(state.health, Health::Retrying { .. }),
        "{:?}",
        state.health
    );
    // The sign-in for the scope is where the user consents: refreshes work from then on.
    me.device_sign_in_for(&fake, ALICE, VAULT).await;
    me.advance(3600);
    fake.advance_clock(3600);
    let served = me.token(VAULT).await.unwrap();
    assert!(served.refreshed, "a refresh, consented");
    assert_eq!(
        me.token(GRAPH).await.unwrap_err().code(),
        ErrorCode::BlockedByPolicy,
        "still blocked"
    );
}

/// With Entra's loop detection at its strictest (a second identical refresh within 5 minutes is
/// refused with AADSTS50196), ten tools asking for the same token at once get it from one
/// refresh, and asking again gets the cached token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_tools_at_once_make_one_refresh_under_loop_detection() {
    let fake = fake(FakeConfig {
        loop_limit: Some(1),
        ..quick()
    });
    let me = std::sync::Arc::new(Instance::new(&fake));
    me.device_sign_in(&fake, ALICE).await;
    fake.clear_log();
    let asks: Vec<_> = (0..10)
        .map(|_| {
            let me = me.clone();
            tokio::spawn(async move { me.token(GRAPH).await.map(|t| t.refreshed) })
        })
        .collect();
    for ask in asks {
        ask.await.unwrap().unwrap();
    }
    assert!(me.token(GRAPH).await.is_ok());
    assert_eq!(crate::sign_in::token_requests(&fake, "refresh_token"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_own_app_registration_signs_in_and_refreshes_with_its_own_client_id() {
    const OWN: &str = "6b7e2f0a-3c1d-4e5f-8a9b-0c1d2e3f4a5b";
    // A non-FOCI app; the Azure CLI's id is in the family, so a mix-up would show.
    let fake = fake(FakeConfig {
        foci_clients: vec!["04b07795-8ddb-461a-bbee-02f9e1bf7b46".into()],
        ..quick()
    });
    let home = tempfile::tempdir().unwrap();
    let paths = tokentray_core::paths::Paths::under(home.path());
    let mut config = tokentray_tests::harness::config_against(&fake, home.path());
    config.client_id = OWN.into();
    let store = config.open_store(&paths).unwrap();
    let clock: tokentray_core::clock::Clock = std::sync::Arc::new(tokentray_core::clock::now);
    let tokens = tokentray_core::tokens::Tokens::new(config, store, clock).unwrap();
    let arm = ["https://management.core.windows.net//.default".to_string()];
    let code = tokens.start_device_code(None, &arm, None).await.unwrap();
    fake.approve_device_code(&code.user_code, ALICE, PW).await;
    tokens
        .finish_device_code(&code, std::future::pending())
        .await
        .unwrap();
    let graph = [GRAPH.to_string()];
    let served = tokens
        .get_token(&tokentray_core::tokens::TokenRequest {
            scopes: &graph,
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(
        served.refreshed,
        "a refresh with the app's own refresh token"
    );
    let log = fake.request_log();
    assert!(!log.is_empty());
    for entry in log.iter().filter(|e| e.endpoint != Endpoint::Devicelogin) {
        assert_eq!(entry.client_id.as_deref(), Some(OWN), "{entry:?}");
    }
    let cache = tokens.cache();
    assert!(
        cache
            .refresh_tokens()
            .values()
            .all(|rt| rt.client_id.as_deref() == Some(OWN) && rt.family_id.is_none()),
        "the app's own, not a family token"
    );
}

/// Two adjacent free loopback ports, the first held: (the listener holding it, its port).
fn held_then_free() -> (std::net::TcpListener, u16) {
    loop {
        let held = std::net::TcpListener::bind(("127.0.0.1", 0)).unwrap();
        let port = held.local_addr().unwrap().port();
        if port < u16::MAX && std::net::TcpListener::bind(("127.0.0.1", port + 1)).is_ok() {
            return (held, port);
        }
    }
}

/// `redirect_ports` (an app registration or firewall that allows only some ports): the browser
/// sign-in listens on the first free one of the range; with none free it says which setting to
/// change, and writes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_browser_sign_in_listens_only_on_the_configured_redirect_ports() {
    let fake = fake(quick());
    let (_held, port) = held_then_free();
    let home = tempfile::tempdir().unwrap();
    let paths = tokentray_core::paths::Paths::under(home.path());
    let mut config = tokentray_tests::harness::config_against(&fake, home.path());
    config.redirect_ports =
        tokentray_core::config::PortRange::parse(&format!("{port}-{}", port + 1)).unwrap();
    let clock: tokentray_core::clock::Clock = std::sync::Arc::new(tokentray_core::clock::now);
    let tokens = tokentray_core::tokens::Tokens::new(
        config.clone(),
        config.open_store(&paths).unwrap(),
        clock.clone(),
    )
    .unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<String>();
    let open = move |u: &url::Url| {
        let _ = tx.send(u.to_string());
        Ok(())
    };
    let signing = tokens.sign_in_browser(options(), open, std::future::pending());
    let browser = async {
        let authorize = rx.await.unwrap();
        assert!(
            authorize.contains(&format!("localhost%3A{}", port + 1)),
            "the free port of the range: {authorize}"
        );
        play_browser(&fake, authorize, ALICE, |u| u).await;
    };
    let (account, ()) = tokio::join!(signing, browser);
    assert_eq!(account.unwrap().username, ALICE);

    let busy = std::net::TcpListener::bind(("127.0.0.1", port + 1)).ok();
    config.redirect_ports = tokentray_core::config::PortRange::parse(&format!("{port}")).unwrap();
    let other = tempfile::tempdir().unwrap();
    let paths = tokentray_core::paths::Paths::under(other.path());
    let tokens = tokentray_core::tokens::Tokens::new(
        config.clone(),
        config.open_store(&paths).unwrap(),
        clock,
    )
    .unwrap();
    let err = tokens
        .sign_in_browser(options(), |_: &url::Url| Ok(()), std::future::pending())
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::InvalidInput, "{err}");
    let text = err.to_string();
    assert!(
        text.contains("redirect_ports") && text.contains(&port.to_string()),
        "{text}"
    );
    assert!(tokens.cache().accounts().is_empty(), "nothing written");
    drop(busy);
}

/// A tenant asked for by a domain tokentray never signed in to: its id is looked up once
/// (tenant discovery, as MSAL does), and the token recorded under the id (as MSAL and Azure CLI
/// record them) is served without a token request; a later process needs no lookup at all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_domain_never_signed_in_to_finds_the_tokens_under_its_id() {
    const ARM: &str = "https://management.core.windows.net//.default";
    let fake = fake(quick());
    let me = Instance::new(&fake);
    let tid = fake.user(ALICE).unwrap().tenant_id;
    let code = me
        .tokens
        .start_device_code(Some(&tid), &[ARM.to_string()], None)
        .await
        .unwrap();
    fake.approve_device_code(&code.user_code, ALICE, PW).await;
    me.tokens
        .finish_device_code(&code, std::future::pending())
        .await
        .unwrap();
    let arm = [ARM.to_string()];
    let by_domain = tokentray_core::tokens::TokenRequest {
        scopes: &arm,
        tenant: Some("Contoso.Example"),
        ..Default::default()
    };
    for lookups in [1, 0] {
        fake.clear_log();
        let served = me.restart(&fake).get_token(&by_domain).await.unwrap();
        assert!(!served.refreshed, "the token recorded under {tid}");
        let log = fake.request_log();
        assert_eq!(log.len(), lookups, "{log:?}");
        assert!(
            log.iter()
                .all(|e| e.endpoint == Endpoint::OpenidConfiguration),
            "{log:?}"
        );
    }
}
