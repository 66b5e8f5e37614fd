//! Sign-in, silent refresh, accounts and sign-out against fake-entra over TLS: the core's
//! `Tokens` in-process for the protocol edge cases, and the `tokentray` binary with real
//! headless Chromium for the browser flow.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use serde_json::Value;
use tokentray_core::clock::Clock;
use tokentray_core::flow::browser::Options;
use tokentray_core::paths::Paths;
use tokentray_core::tokens::{TokenRequest, Tokens};
use tokentray_core::{Error, ErrorCode};
use tokentray_tests::fake_entra::{
    DEFAULT_CLAIMS, Endpoint, FakeConfig, FakeEntra, Fault, FaultRule,
};
use tokentray_tests::harness::{
    Home, KeyCleanup, config_against, fetch_text, form, workspace_root,
};

pub(crate) const ALICE: &str = "alice@contoso.example";
pub(crate) const BOB: &str = "bob@fabrikam.example";
pub(crate) const PW: &str = "correct horse";
pub(crate) const ARM: &str = "https://management.core.windows.net//.default";
pub(crate) const GRAPH: &str = "https://graph.microsoft.com/.default";

pub(crate) fn fake(config: FakeConfig) -> FakeEntra {
    FakeEntra::start(config.user(ALICE, PW).user(BOB, PW)).unwrap()
}

pub(crate) fn quick() -> FakeConfig {
    FakeConfig {
        device_code_interval: 1,
        ..FakeConfig::default()
    }
}

/// A tokentray instance on its own home, pointed at `fake`, with a clock the test moves.
pub(crate) struct Instance {
    pub(crate) home: tempfile::TempDir,
    pub(crate) tokens: Arc<Tokens>,
    offset: Arc<AtomicI64>,
}

impl Instance {
    pub(crate) fn new(fake: &FakeEntra) -> Self {
        let home = tempfile::tempdir().unwrap();
        let offset = Arc::new(AtomicI64::new(0));
        let tokens = Arc::new(open(home.path(), fake, offset.clone()));
        Self {
            home,
            tokens,
            offset,
        }
    }

    /// The same home opened again: a restart.
    pub(crate) fn restart(&self, fake: &FakeEntra) -> Arc<Tokens> {
        Arc::new(open(self.home.path(), fake, self.offset.clone()))
    }

    /// The default account's token for one scope.
    pub(crate) async fn token(
        &self,
        scope: &str,
    ) -> Result<tokentray_core::tokens::ServedToken, Error> {
        let scopes = [scope.to_string()];
        self.tokens
            .get_token(&TokenRequest {
                scopes: &scopes,
                ..Default::default()
            })
            .await
    }

    pub(crate) fn advance(&self, secs: i64) {
        self.offset.fetch_add(secs, Ordering::SeqCst);
    }

    /// Asserts that the sign-in `case` failed with `code` and `text` in its message, and wrote
    /// nothing.
    fn assert_failed(
        &self,
        case: &str,
        outcome: Result<tokentray_core::cache::AccountInfo, Error>,
        code: ErrorCode,
        text: &str,
    ) {
        let err = match outcome {
            Ok(account) => panic!("{case}: signed in as {}", account.username),
            Err(err) => err,
        };
        assert_eq!(err.code(), code, "{case}: {err}");
        assert!(err.to_string().contains(text), "{case}: {err}");
        self.assert_wrote_nothing(case);
    }

    /// Asserts that no account and no token was written (after the failed sign-in `case`).
    fn assert_wrote_nothing(&self, case: &str) {
        assert!(
            self.tokens.accounts().unwrap().is_empty(),
            "{case}: no account was written"
        );
        assert_eq!(
            self.tokens.cache().counts(),
            Default::default(),
            "{case}: no token was written"
        );
    }

    pub(crate) async fn device_sign_in(
        &self,
        fake: &FakeEntra,
        user: &str,
    ) -> tokentray_core::cache::AccountInfo {
        self.device_sign_in_for(fake, user, ARM).await
    }

    /// A device-code sign-in of `user` for `scope`, approved at `fake`.
    pub(crate) async fn device_sign_in_for(
        &self,
        fake: &FakeEntra,
        user: &str,
        scope: &str,
    ) -> tokentray_core::cache::AccountInfo {
        let code = self
            .tokens
            .start_device_code(None, &[scope.to_string()], None)
            .await
            .unwrap();
        assert!(code.message.contains(&code.user_code), "{}", code.message);
        fake.approve_device_code(&code.user_code, user, PW).await;
        self.tokens
            .finish_device_code(&code, std::future::pending())
            .await
            .unwrap()
    }
}

fn open(home: &std::path::Path, fake: &FakeEntra, offset: Arc<AtomicI64>) -> Tokens {
    let paths = Paths::under(home);
    let config = config_against(fake, home);
    let store = config.open_store(&paths).unwrap();
    let clock: Clock =
        Arc::new(move || tokentray_core::clock::now() + offset.load(Ordering::SeqCst));
    Tokens::new(config, store, clock).unwrap()
}

fn scopes(s: &str) -> Vec<String> {
    vec![s.to_string()]
}

pub(crate) fn token_requests(fake: &FakeEntra, grant: &str) -> usize {
    fake.request_log()
        .iter()
        .filter(|e| e.endpoint == Endpoint::Token && e.grant_type.as_deref() == Some(grant))
        .count()
}

fn rt_secret(tokens: &Tokens) -> String {
    let cache = tokens.cache();
    let rt = cache.refresh_tokens().values().next().unwrap();
    rt.secret.as_ref().unwrap().expose().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_code_sign_in_then_silent_refresh_rotates_the_refresh_token() {
    let fake = fake(FakeConfig {
        strict_rotation: true,
        ..quick()
    });
    let me = Instance::new(&fake);
    let account = me.device_sign_in(&fake, ALICE).await;
    assert_eq!(account.username, ALICE);
    assert!(account.is_default, "the first account becomes the default");
    assert!(account.needs_sign_in.is_none());

    let arm = scopes(ARM);
    let served = me.token(ARM).await.unwrap();
    assert!(!served.refreshed, "straight from the sign-in");
    assert_eq!(served.account.username, ALICE);

    // A second resource: one refresh-token request, no interaction.
    fake.clear_log();
    let g = me.token(GRAPH).await.unwrap();
    assert!(g.refreshed);
    assert!(g.scopes.contains("graph.microsoft.com"), "{}", g.scopes);
    assert_eq!(token_requests(&fake, "refresh_token"), 1);

    // The ARM token expires: refreshed, and the refresh token rotates; the old one is dead.
    let old_rt = rt_secret(&me.tokens);
    me.advance(3600);
    fake.advance_clock(3600);
    let again = me.token(ARM).await.unwrap();
    assert!(again.refreshed);
    assert_ne!(again.access_token.expose(), served.access_token.expose());
    let new_rt = rt_secret(&me.tokens);
    assert_ne!(new_rt, old_rt, "rotated in place");
    assert_eq!(
        me.tokens.cache().refresh_tokens().len(),
        1,
        "one refresh token, replaced"
    );
    let replay = fake
        .client()
        .post(format!("{}/organizations/oauth2/v2.0/token", fake.url()))
        .form(&[
            ("client_id", me.tokens.config().client_id.as_str()),
            ("grant_type", "refresh_token"),
            ("refresh_token", old_rt.as_str()),
            ("scope", ARM),
        ])
        .send()
        .await
        .unwrap();
    let body: Value = replay.json().await.unwrap();
    assert_eq!(
        body["error"], "invalid_grant",
        "the fake rejects the old refresh token: {body}"
    );

    // A restart reads it all back from disk.
    let restarted = me.restart(&fake);
    let after = restarted
        .get_token(&TokenRequest {
            scopes: &arm,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(after.access_token.expose(), again.access_token.expose());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn declined_and_expired_device_codes_are_distinct_errors_and_write_nothing() {
    let fake = fake(FakeConfig {
        device_code_lifetime: 4,
        ..quick()
    });
    // The case, whether the user declines (else nobody answers until the code expires), and
    // the error code and text tokentray must give.
    for (case, decline, code, text) in [
        ("declined", true, ErrorCode::SignInDenied, "declined"),
        ("expired", false, ErrorCode::SignInTimeout, "expired"),
    ] {
        let me = Instance::new(&fake);
        let device = me
            .tokens
            .start_device_code(None, &scopes(ARM), None)
            .await
            .unwrap();
        if decline {
            fake.decline_device_code(&device.user_code).await;
        }
        let outcome = me
            .tokens
            .finish_device_code(&device, std::future::pending())
            .await;
        me.assert_failed(case, outcome, code, text);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_down_makes_the_device_flow_wait_five_seconds_more() {
    let fake = fake(quick());
    let me = Instance::new(&fake);
    let code = me
        .tokens
        .start_device_code(None, &scopes(ARM), None)
        .await
        .unwrap();
    fake.queue_fault(
        FaultRule::once(Endpoint::Token, Fault::oauth("slow_down"))
            .for_grant(tokentray_core::flow::device_code::GRANT),
    );
    fake.approve_device_code(&code.user_code, ALICE, PW).await;
    let start = std::time::Instant::now();
    me.tokens
        .finish_device_code(&code, std::future::pending())
        .await
        .unwrap();
    assert!(
        start.elapsed() >= Duration::from_secs(6),
        "polled again only after interval + 5 s"
    );
    assert_eq!(
        token_requests(&fake, tokentray_core::flow::device_code::GRANT),
        2
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_concurrent_callers_cause_one_refresh() {
    let fake = fake(quick());
    let me = Instance::new(&fake);
    me.device_sign_in(&fake, ALICE).await;
    me.advance(3500); // under 5 minutes left: expired for tokentray
    fake.clear_log();
    let arm = Arc::new(scopes(ARM));
    let calls: Vec<_> = (0..100)
        .map(|_| {
            let tokens = me.tokens.clone();
            let arm = arm.clone();
            tokio::spawn(async move {
                tokens
                    .get_token(&TokenRequest {
                        scopes: &arm,
                        ..Default::default()
                    })
                    .await
                    .map(|s| s.access_token.expose().to_string())
            })
        })
        .collect();
    let mut secrets = std::collections::HashSet::new();
    for call in calls {
        secrets.insert(call.await.unwrap().unwrap());
    }
    assert_eq!(secrets.len(), 1, "everyone got the same new token");
    assert_eq!(
        token_requests(&fake, "refresh_token"),
        1,
        "{:#?}",
        fake.request_log()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_refresh_token_marks_the_account_and_keeps_it() {
    let fake = fake(quick());
    let me = Instance::new(&fake);
    me.device_sign_in(&fake, ALICE).await;
    fake.revoke(ALICE).unwrap();
    me.advance(3500);
    let err = me.token(ARM).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::InteractionRequired, "{err}");
    assert!(err.to_string().contains("must sign in again"), "{err}");
    let accounts = me.restart(&fake).accounts().unwrap();
    assert_eq!(accounts.len(), 1, "kept, not deleted");
    assert!(
        accounts[0].needs_sign_in.is_some(),
        "marked, and the mark survives a restart"
    );
    assert_eq!(
        me.tokens.cache().refresh_tokens().len(),
        1,
        "its refresh token is kept too"
    );

    // Signing in again clears the mark.
    let account = me.device_sign_in(&fake, ALICE).await;
    assert!(account.needs_sign_in.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claims_challenges_reach_the_caller() {
    let fake = fake(quick());
    let me = Instance::new(&fake);
    me.device_sign_in(&fake, ALICE).await;
    fake.queue_fault(FaultRule::once(
        Endpoint::Token,
        Fault::interaction_required(),
    ));
    let err = me.token(GRAPH).await.unwrap_err();
    let Error::InteractionRequired {
        claims: Some(claims),
        ..
    } = &err
    else {
        panic!("{err:?}")
    };
    assert_eq!(
        serde_json::from_str::<Value>(claims).unwrap(),
        serde_json::from_str::<Value>(DEFAULT_CLAIMS).unwrap(),
        "the challenge the fake sent: {claims}"
    );
}

/// The token endpoint answers `status` with `Retry-After: retry_after` from now on; the log
/// is cleared.
pub(crate) fn outage(fake: &FakeEntra, status: u16, retry_after: u64) {
    fake.queue_fault(
        FaultRule::once(Endpoint::Token, Fault::status(status, Some(retry_after))).times(100),
    );
    fake.clear_log();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_authority_outage_serves_cached_tokens_without_a_request_storm() {
    let fake = fake(FakeConfig {
        refresh_in: true,
        ..quick()
    });
    let me = Instance::new(&fake);
    me.device_sign_in(&fake, ALICE).await;
    let original = me.token(ARM).await.unwrap();
    me.advance(2400); // past refresh_on, still valid
    outage(&fake, 503, 120);
    for _ in 0..20 {
        let s = me.token(ARM).await.unwrap();
        assert_eq!(
            s.access_token.expose(),
            original.access_token.expose(),
            "the cached token is served"
        );
    }
    assert_eq!(
        token_requests(&fake, "refresh_token"),
        1,
        "Retry-After honoured: one request, no storm"
    );

    // Expired too: a clear error with Retry-After, still no request.
    me.advance(2000);
    let err = me.token(ARM).await.unwrap_err();
    let Error::AuthorityUnavailable {
        retry_after: Some(secs),
        ..
    } = &err
    else {
        panic!("{err:?}")
    };
    assert!(
        *secs > 0 && *secs <= 132,
        "Retry-After's 120 s, and at most a tenth more: {secs}"
    );
    assert_eq!(token_requests(&fake, "refresh_token"), 1);
    assert_eq!(
        me.tokens.cache().access_tokens().len(),
        1,
        "nothing was destroyed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttling_without_a_valid_token_is_authority_unavailable_without_a_request_storm() {
    let fake = fake(quick());
    let me = Instance::new(&fake);
    me.device_sign_in(&fake, ALICE).await;
    me.advance(4000);
    outage(&fake, 429, 30);
    for _ in 0..5 {
        let err = me.token(ARM).await.unwrap_err();
        assert_eq!(err.code(), ErrorCode::AuthorityUnavailable);
    }
    assert_eq!(token_requests(&fake, "refresh_token"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_accounts_switch_and_sign_out_one_which_survives_restart() {
    let fake = fake(quick());
    let me = Instance::new(&fake);
    me.device_sign_in(&fake, ALICE).await;
    me.device_sign_in(&fake, BOB).await;
    let arm = scopes(ARM);
    let default = TokenRequest {
        scopes: &arm,
        ..Default::default()
    };
    assert_eq!(
        me.tokens
            .get_token(&default)
            .await
            .unwrap()
            .account
            .username,
        ALICE
    );
    me.tokens.switch(BOB).unwrap();
    assert_eq!(
        me.tokens
            .get_token(&default)
            .await
            .unwrap()
            .account
            .username,
        BOB
    );
    let alice_token = me
        .tokens
        .get_token(&TokenRequest {
            account: Some(ALICE),
            scopes: &arm,
            tenant: None,
        })
        .await
        .unwrap();

    let gone = me.tokens.sign_out(Some(BOB)).unwrap();
    assert_eq!(gone[0].username, BOB);
    let restarted = me.restart(&fake);
    let names: Vec<String> = restarted
        .accounts()
        .unwrap()
        .into_iter()
        .map(|a| a.username)
        .collect();
    assert_eq!(names, [ALICE]);
    let still = restarted.get_token(&default).await.unwrap();
    assert_eq!(
        still.access_token.expose(),
        alice_token.access_token.expose(),
        "the other account is untouched"
    );
    let err = restarted
        .get_token(&TokenRequest {
            account: Some(BOB),
            scopes: &arm,
            tenant: None,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::AccountNotFound);
    let cache = restarted.cache();
    assert!(
        cache
            .refresh_tokens()
            .values()
            .all(|rt| rt.home_account_id != Some(gone[0].home_account_id.clone()))
    );
    assert!(
        cache
            .access_tokens()
            .values()
            .all(|at| at.home_account_id != Some(gone[0].home_account_id.clone()))
    );
}

/// A form's `action` as a full URL on fake-entra.
fn absolute(fake: &FakeEntra, action: String) -> String {
    if action.is_empty() || action.starts_with('/') {
        format!("{}{action}", fake.url())
    } else {
        action
    }
}

/// Plays the browser: opens the authorize URL on fake-entra, signs in, delivers the answer
/// (form_post) to tokentray's loopback listener. `tamper` may rewrite the URL first.
pub(crate) async fn play_browser(
    fake: &FakeEntra,
    authorize: String,
    user: &str,
    tamper: impl Fn(String) -> String,
) {
    let http = fake.client();
    let page = fetch_text(http.get(tamper(authorize))).await;
    let (action, mut fields) = form(&page);
    let action = absolute(fake, action);
    for (k, v) in fields.iter_mut() {
        match k.as_str() {
            "username" => *v = user.into(),
            "password" => *v = PW.into(),
            _ => {}
        }
    }
    fields.push(("action".into(), "signin".into()));
    let html = fetch_text(http.post(action).form(&fields)).await;
    let (loopback, fields) = form(&html);
    assert!(
        loopback.starts_with("http://localhost:"),
        "a form_post to the loopback: {html}"
    );
    let done = reqwest::Client::new()
        .post(loopback)
        .form(&fields)
        .send()
        .await
        .unwrap();
    assert_eq!(done.status(), 200);
}

pub(crate) fn options() -> Options {
    Options {
        tenant: None,
        scopes: scopes(ARM),
        login_hint: None,
        prompt: None,
        claims: None,
        timeout: Duration::from_secs(30),
    }
}

fn loopback(url: &url::Url) -> (String, String) {
    let redirect = url
        .query_pairs()
        .find(|(k, _)| k == "redirect_uri")
        .unwrap()
        .1
        .into_owned();
    let state = url
        .query_pairs()
        .find(|(k, _)| k == "state")
        .unwrap()
        .1
        .into_owned();
    (redirect, state)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_flow_ignores_stray_requests_and_releases_its_port() {
    let fake = fake(quick());
    let me = Instance::new(&fake);
    let seen = Arc::new(std::sync::Mutex::new(String::new()));
    let (fake_ref, seen2) = (&fake, seen.clone());
    let url_rx = {
        let (tx, rx) = tokio::sync::oneshot::channel::<String>();
        let open = move |u: &url::Url| {
            *seen2.lock().unwrap() = u.to_string();
            let _ = tx.send(u.to_string());
            Ok(())
        };
        let signing = me
            .tokens
            .sign_in_browser(options(), open, std::future::pending());
        let browser = async move {
            let authorize = rx.await.unwrap();
            let (redirect, _) = loopback(&url::Url::parse(&authorize).unwrap());
            let stray = reqwest::get(format!("{redirect}/favicon.ico"))
                .await
                .unwrap();
            assert_eq!(stray.status(), 404, "a stray request is not the answer");
            play_browser(fake_ref, authorize, ALICE, |u| u).await;
        };
        let (account, ()) = tokio::join!(signing, browser);
        assert_eq!(account.unwrap().username, ALICE);
        seen.lock().unwrap().clone()
    };
    let (redirect, _) = loopback(&url::Url::parse(&url_rx).unwrap());
    assert!(
        reqwest::get(redirect).await.is_err(),
        "the port is released after the sign-in"
    );
    assert!(me.token(ARM).await.is_ok());
}

/// Runs a browser sign-in whose "browser" is `act(authorize_url)`; returns the outcome.
async fn browser_attempt<F, Fut>(
    me: &Instance,
    options: Options,
    act: F,
) -> Result<tokentray_core::cache::AccountInfo, Error>
where
    F: FnOnce(String) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let (tx, rx) = tokio::sync::oneshot::channel::<String>();
    let open = move |u: &url::Url| {
        let _ = tx.send(u.to_string());
        Ok(())
    };
    let signing = me
        .tokens
        .sign_in_browser(options, open, std::future::pending());
    let browser = async move { act(rx.await.unwrap()).await };
    tokio::join!(signing, browser).0
}

/// Sends a GET to tokentray's loopback listener as a forged or broken browser would.
async fn send(url: String) {
    let _ = reqwest::get(url).await;
}

/// Answers a forged or broken "browser" sends to the loopback listener: the case, the query
/// (`{state}` stands for the request's state), and the error code and text tokentray must give.
const BAD_ANSWERS: [(&str, &str, ErrorCode, &str); 2] = [
    (
        "no code",
        "state={state}",
        ErrorCode::Protocol,
        "no authorization code",
    ),
    (
        "an error",
        "error=access_denied&error_description=AADSTS65004%3A+User+declined&state={state}",
        ErrorCode::SignInDenied,
        "access_denied",
    ),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_and_error_answers_are_typed_errors_and_write_nothing() {
    let fake = fake(quick());
    for (case, query, code, text) in BAD_ANSWERS {
        let me = Instance::new(&fake);
        let outcome = browser_attempt(&me, options(), |u| {
            let (redirect, state) = loopback(&url::Url::parse(&u).unwrap());
            send(format!("{redirect}/?{}", query.replace("{state}", &state)))
        })
        .await;
        me.assert_failed(case, outcome, code, text);
    }
}

/// Another program sees the listener's port: a forged `state` is refused with a page saying so
/// and the sign-in keeps waiting; a half-sent request holds neither the sign-in nor its end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_state_and_a_half_sent_request_neither_end_nor_hang_a_browser_sign_in() {
    use tokio::io::AsyncWriteExt as _;
    let fake = fake(quick());
    let me = Instance::new(&fake);
    let fake_ref = &fake;
    let started = std::time::Instant::now();
    let (held_tx, held_rx) = tokio::sync::oneshot::channel();
    let outcome = browser_attempt(&me, options(), |u| async move {
        let (redirect, _) = loopback(&url::Url::parse(&u).unwrap());
        let forged = reqwest::get(format!("{redirect}/?code=forged&state=forged"))
            .await
            .unwrap();
        assert_eq!(forged.status(), 400);
        assert!(
            forged
                .text()
                .await
                .unwrap()
                .contains("not the sign-in you started")
        );
        let port = url::Url::parse(&redirect).unwrap().port().unwrap();
        let mut half = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .unwrap();
        half.write_all(b"GET /?code=x&state=y HTTP/1.1\r\nHost: loc")
            .await
            .unwrap();
        play_browser(fake_ref, u, ALICE, |u| u).await;
        let _ = held_tx.send(half); // still open when the sign-in ends
    })
    .await;
    assert_eq!(
        outcome.unwrap().username,
        ALICE,
        "the real answer still signs in"
    );
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "the half-sent request did not hold the end: {:?}",
        started.elapsed()
    );
    drop(held_rx);
}

/// The user cancels on fake-entra's page: Entra redirects with access_denied.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_on_the_sign_in_page_is_sign_in_denied_and_writes_nothing() {
    let fake = fake(quick());
    let me = Instance::new(&fake);
    let fake_ref = &fake;
    let err = browser_attempt(&me, options(), |u| async move {
        let http = fake_ref.client();
        let page = fetch_text(http.get(u)).await;
        let (action, mut fields) = form(&page);
        let action = absolute(fake_ref, action);
        fields.push(("action".into(), "cancel".into()));
        let html = fetch_text(http.post(action).form(&fields)).await;
        let (loopback, fields) = form(&html);
        let _ = reqwest::Client::new()
            .post(loopback)
            .form(&fields)
            .send()
            .await;
    })
    .await
    .unwrap_err();
    assert_eq!(err.code(), ErrorCode::SignInDenied, "{err}");
    me.assert_wrote_nothing("cancelled on the page");
}

/// A replayed or forged answer with another nonce: the id_token's nonce does not match.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_id_token_with_another_nonce_is_a_protocol_error_and_writes_nothing() {
    let fake = fake(quick());
    let me = Instance::new(&fake);
    let err = browser_attempt(&me, options(), |u| {
        play_browser(&fake, u, ALICE, |url| {
            let parsed = url::Url::parse(&url).unwrap();
            let pairs: Vec<(String, String)> = parsed
                .query_pairs()
                .map(|(k, v)| {
                    let v = if k == "nonce" {
                        "attacker-nonce".into()
                    } else {
                        v.into_owned()
                    };
                    (k.into_owned(), v)
                })
                .collect();
            let mut tampered = parsed.clone();
            tampered.query_pairs_mut().clear().extend_pairs(pairs);
            tampered.to_string()
        })
    })
    .await
    .unwrap_err();
    assert_eq!(err.code(), ErrorCode::Protocol, "{err}");
    assert!(err.to_string().contains("nonce"), "{err}");
    me.assert_wrote_nothing("another nonce");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_answer_within_the_timeout_is_sign_in_timeout_and_writes_nothing() {
    let fake = fake(quick());
    let me = Instance::new(&fake);
    let err = browser_attempt(
        &me,
        Options {
            timeout: Duration::from_secs(1),
            ..options()
        },
        |_| async {},
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), ErrorCode::SignInTimeout, "{err}");
    me.assert_wrote_nothing("timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_browser_sign_in_is_sign_in_cancelled_and_writes_nothing() {
    let fake = fake(quick());
    let me = Instance::new(&fake);
    let cancel = tokio::time::sleep(Duration::from_millis(200));
    let err = me
        .tokens
        .sign_in_browser(options(), |_| Ok(()), cancel)
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::SignInCancelled, "{err}");
    me.assert_wrote_nothing("cancelled");
}

/// The whole product path: `tokentray login` opens "the system browser" ($BROWSER: headless
/// Chromium driven by Playwright), which signs in on fake-entra's page; the account and tokens
/// land in the encrypted cache and a new process serves them. Before the browser answers,
/// another program sends a forged answer and a half-sent request (held open past the sign-in):
/// neither ends nor holds the sign-in.
#[test]
#[ignore = "needs Chromium, the venv and the kernel keyring (make test)"]
fn cli_browser_sign_in_with_headless_chromium_survives_interference_and_a_restart() {
    let fake = fake(quick());
    let mut home = Home::new("keyutils");
    let _key = KeyCleanup::for_home(home.path());
    let ca = home.path().join("ca.pem");
    std::fs::write(&ca, fake.ca_pem()).unwrap();
    let log = home.path().join("browser.log");
    for (k, v) in [
        ("TOKENTRAY_AUTHORITY", fake.url().to_string()),
        ("TOKENTRAY_CA_FILE", ca.display().to_string()),
        (
            "BROWSER",
            workspace_root()
                .join("tests/peers/browser_sign_in.sh")
                .display()
                .to_string(),
        ),
        ("SIGNIN_USER", ALICE.into()),
        ("SIGNIN_PASSWORD", PW.into()),
        ("SIGNIN_LOG", log.display().to_string()),
        ("SIGNIN_INTERFERE", "1".into()),
    ] {
        home.set_env(k, &v);
    }
    let started = std::time::Instant::now();
    let out = home.run(&["login", "--timeout", "90"]);
    let browser_log = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        out.status.success(),
        "login failed: {}\nbrowser: {browser_log}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "the half-sent request (held 120 s) did not hold the sign-in: {:?}",
        started.elapsed()
    );
    assert!(
        browser_log.contains("forged answer: refused with 400")
            && browser_log.contains("half-sent request: held open"),
        "{browser_log}"
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains(&format!("Signed in as {ALICE}")));
    // The script logs its landing after tokentray has already taken the answer.
    let landed = (0..100).any(|_| {
        std::thread::sleep(Duration::from_millis(100));
        std::fs::read_to_string(&log).is_ok_and(|l| l.contains("landed on http://localhost:"))
    });
    assert!(
        landed,
        "{}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );

    let sealed = std::fs::read(home.data().join("cache.bin")).unwrap();
    let token = home.ok(&["token", "--scope", ARM, "--format", "raw"]);
    assert!(token.trim().len() > 100, "a JWT from a new process");
    assert!(
        !sealed.windows(40).any(|w| token.as_bytes().starts_with(w)),
        "encrypted at rest"
    );
    let accounts: Value = serde_json::from_str(&home.ok(&["accounts", "--json"])).unwrap();
    assert_eq!(accounts[0]["username"], ALICE);
    assert_eq!(accounts[0]["is_default"], true);
}

#[test]
#[ignore = "needs the kernel keyring (make test)"]
fn cli_device_code_login_prints_the_code_and_waits() {
    use std::io::BufRead as _;
    let fake = fake(quick());
    let mut home = Home::new("keyutils");
    let _key = KeyCleanup::for_home(home.path());
    let ca = home.path().join("ca.pem");
    std::fs::write(&ca, fake.ca_pem()).unwrap();
    home.set_env("TOKENTRAY_AUTHORITY", fake.url());
    home.set_env("TOKENTRAY_CA_FILE", ca.to_str().unwrap());
    let mut child = home
        .cmd(&["--json", "login", "--device-code"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    let shown: Value = serde_json::from_str(&first).unwrap();
    let code = shown["user_code"].as_str().unwrap().to_string();
    assert!(shown["message"].as_str().unwrap().contains(&code));
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(fake.approve_device_code(&code, BOB, PW));
    let status = child.wait().unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut rest).unwrap();
    assert!(status.success(), "{rest}");
    let account: Value = serde_json::from_str(&rest).unwrap();
    assert_eq!(account["username"], BOB);
    assert!(home.ok(&["accounts"]).contains(BOB));
    home.ok(&["switch", BOB]);
    assert!(home.ok(&["logout"]).contains(&format!("Signed out {BOB}")));
    assert!(home.ok(&["accounts"]).contains("No accounts"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_in_use_are_renewed_in_the_background_before_they_expire() {
    let fake = fake(quick());
    let me = Instance::new(&fake);
    me.device_sign_in(&fake, ALICE).await;
    let arm = scopes(ARM);
    let first = me.token(ARM).await.unwrap();
    me.advance(3100); // under 10 minutes left: due for renewal
    fake.clear_log();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let background = tokio::spawn(me.tokens.clone().refresh_in_background(
        Duration::from_millis(100),
        async {
            let _ = stop_rx.await;
        },
    ));
    let mut renewed = false;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if token_requests(&fake, "refresh_token") == 1 {
            renewed = true;
            break;
        }
    }
    let _ = stop_tx.send(());
    background.await.unwrap();
    assert!(
        renewed,
        "renewed with no caller asking: {:#?}",
        fake.request_log()
    );
    let now = me
        .tokens
        .cached(&TokenRequest {
            scopes: &arm,
            ..Default::default()
        })
        .unwrap()
        .unwrap()
        .token;
    assert_ne!(now.access_token.expose(), first.access_token.expose());
    assert_eq!(
        token_requests(&fake, "refresh_token"),
        1,
        "renewed once, not on every tick"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_carry_msals_headers_and_refusals_keep_entras_ids() {
    let fake = fake(quick());
    let me = Instance::new(&fake);
    let account = me.device_sign_in(&fake, ALICE).await;
    fake.clear_log();
    me.token(GRAPH).await.unwrap();
    let log = fake.request_log();
    let refresh = log
        .iter()
        .find(|e| e.grant_type.as_deref() == Some("refresh_token"))
        .expect("one refresh");
    let header = |name: &str| refresh.headers.get(name).map(String::as_str);
    assert_eq!(header("x-client-sku"), Some("tokentray"));
    assert_eq!(header("x-client-ver"), Some(env!("CARGO_PKG_VERSION")));
    assert_eq!(header("x-client-os"), Some(std::env::consts::OS));
    assert_eq!(header("x-ms-lib-capability"), Some("retry-after, h429"));
    // MSAL's routing hint for Entra's backup authentication service: Oid:uid@utid.
    let anchor = format!("Oid:{}", account.home_account_id.replacen('.', "@", 1));
    assert_eq!(header("x-anchormailbox"), Some(anchor.as_str()));
    let first = header("client-request-id")
        .expect("a correlation id")
        .to_string();
    assert_eq!(first.len(), 36, "{first}");
    assert_eq!(&first[14..15], "4", "a version 4 UUID: {first}");

    // A refused request names Entra's trace id and the correlation id it was sent with, so
    // it can be found in the tenant's sign-in logs.
    fake.clear_log();
    fake.queue_fault(FaultRule::once(
        Endpoint::Token,
        Fault::oauth("invalid_scope"),
    ));
    let err = me
        .token("https://vault.azure.net/.default")
        .await
        .unwrap_err();
    let sent = fake.request_log()[0].headers["client-request-id"].clone();
    assert_ne!(sent, first, "a new id per request");
    let text = err.to_string();
    assert!(text.contains(&format!("correlation id {sent}")), "{text}");
    assert!(text.contains("trace id "), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_given_as_a_domain_is_recorded_as_its_id_and_found_by_either() {
    let fake = fake(quick());
    let me = Instance::new(&fake);
    let code = me
        .tokens
        .start_device_code(Some("contoso.example"), &[ARM.to_string()], None)
        .await
        .unwrap();
    fake.approve_device_code(&code.user_code, ALICE, PW).await;
    let account = me
        .tokens
        .finish_device_code(&code, std::future::pending())
        .await
        .unwrap();
    let tid = account.home_tenant.clone().expect("a home tenant");
    assert!(!tid.contains('.'), "a tenant id, not a domain: {tid}");
    let cache = me.tokens.cache();
    let realms: Vec<_> = cache
        .access_tokens()
        .values()
        .map(|t| t.realm.clone().unwrap_or_default())
        .collect();
    assert_eq!(
        realms,
        vec![tid.clone()],
        "recorded under the id, as MSAL does"
    );

    // Asked by domain or by id (any case), the cached token is served without a request.
    fake.clear_log();
    let arm = scopes(ARM);
    for tenant in ["contoso.example", "Contoso.Example", tid.as_str()] {
        let served = me
            .tokens
            .get_token(&TokenRequest {
                scopes: &arm,
                tenant: Some(tenant),
                ..Default::default()
            })
            .await
            .unwrap();
        assert!(!served.refreshed, "{tenant}");
        assert_eq!(served.tenant, tid, "{tenant}");
    }
    assert_eq!(token_requests(&fake, "refresh_token"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_processes_under_a_429_with_retry_after_make_one_request() {
    let fake = fake(quick());
    let me = Instance::new(&fake);
    me.device_sign_in(&fake, ALICE).await;
    me.advance(4000); // the token expired: each process would have to refresh
    outage(&fake, 429, 60);
    let arm = scopes(ARM);
    // Three processes (each its own Tokens: its own memory, the same cache file).
    for n in 0..3 {
        let process = me.restart(&fake);
        let err = process
            .get_token(&TokenRequest {
                scopes: &arm,
                ..Default::default()
            })
            .await
            .unwrap_err();
        let Error::AuthorityUnavailable { retry_after, .. } = &err else {
            panic!("process {n}: {err:?}")
        };
        let wait = retry_after.unwrap_or(0);
        assert!(
            (55..=60).contains(&wait),
            "process {n} waits what Entra asked: {wait}"
        );
    }
    assert_eq!(
        token_requests(&fake, "refresh_token"),
        1,
        "as Azure CLI does"
    );

    // Once the minute is over, the next process asks again.
    me.advance(61);
    fake.clear_faults();
    let later = me.restart(&fake);
    let served = later
        .get_token(&TokenRequest {
            scopes: &arm,
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(served.refreshed);
    assert_eq!(token_requests(&fake, "refresh_token"), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_code_polling_waits_as_long_as_a_429_asks() {
    let fake = fake(quick());
    let me = Instance::new(&fake);
    let code = me
        .tokens
        .start_device_code(None, &[ARM.to_string()], None)
        .await
        .unwrap();
    fake.clear_log();
    fake.queue_fault(
        FaultRule::once(Endpoint::Token, Fault::status(429, Some(3)))
            .for_grant("urn:ietf:params:oauth:grant-type:device_code"),
    );
    let approve = async {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        fake.approve_device_code(&code.user_code, ALICE, PW).await;
    };
    let (signed_in, ()) = tokio::join!(
        me.tokens.finish_device_code(&code, std::future::pending()),
        approve
    );
    signed_in.unwrap();
    let polls: Vec<_> = fake
        .request_log()
        .into_iter()
        .filter(|e| e.endpoint == Endpoint::Token)
        .collect();
    assert_eq!(polls[0].status, Some(429), "{polls:?}");
    let at = |i: usize| chrono::DateTime::parse_from_rfc3339(&polls[i].time).unwrap();
    let gap = (at(1) - at(0)).num_milliseconds();
    assert!(
        gap >= 2900,
        "the next poll came {gap} ms after the 429 (Retry-After: 3)"
    );
}
