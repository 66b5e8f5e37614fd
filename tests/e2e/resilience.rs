//! Resilient token state, in-process against fake-entra over TLS: a still-valid token is served
//! through an outage until it really expires; concurrent refreshes of one account under strict
//! refresh-token rotation never look like a dead account; a failure that belongs to one request
//! (bad scope, foreign tenant, claims challenge) fails that request only; ARM's two spellings are
//! one token; another process's changes reach a running instance within a second.

use std::time::Duration;

use tokentray_core::ErrorCode;
use tokentray_core::tokens::{AccountState, Event, Health, SERVE_MIN_LEFT_SECS, TokenRequest};
use tokentray_tests::fake_entra::{Endpoint, FakeConfig, Fault, FaultRule};

use crate::sign_in::{ALICE, ARM, BOB, GRAPH, Instance, PW, fake, outage, quick, token_requests};

/// Tokens from fake-entra live an hour.
const LIFETIME: i64 = 3600;

fn needs_sign_in(me: &Instance) -> Vec<Option<String>> {
    me.tokens
        .accounts()
        .unwrap()
        .into_iter()
        .map(|a| a.needs_sign_in)
        .collect()
}

/// The one account's state.
fn state(me: &Instance) -> AccountState {
    let mut states = me.tokens.account_states().unwrap();
    assert_eq!(states.len(), 1, "{states:?}");
    states.remove(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_serves_a_token_with_minutes_left_until_it_really_expires() {
    let fake = fake(quick());
    let me = Instance::new(&fake);
    me.device_sign_in(&fake, ALICE).await;
    let original = me.token(ARM).await.unwrap();
    me.advance(LIFETIME - 260); // 4m20s left: inside the 5-minute skew
    outage(&fake, 503, 60);
    let during = me.token(ARM).await.expect("a still-valid token is served");
    assert_eq!(during.access_token.expose(), original.access_token.expose());
    assert_eq!(token_requests(&fake, "refresh_token"), 1, "one try");
    assert_eq!(
        needs_sign_in(&me),
        [None],
        "an outage is not the account's fault"
    );
    let Health::Retrying {
        at,
        attempt,
        reason,
    } = state(&me).health
    else {
        panic!("the health says the refresh failed: {:?}", state(&me));
    };
    assert_eq!(attempt, 2, "the next try is the second");
    assert!(at >= me.tokens.now(), "not before now");
    assert!(reason.contains("unavailable"), "{reason}");
    assert!(
        Health::Retrying {
            at,
            attempt,
            reason
        }
        .line()
        .starts_with("can't reach Entra ID, retrying at ")
    );

    me.advance(261); // really expired now
    let err = me.token(ARM).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::AuthorityUnavailable, "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_with_less_than_ten_minutes_left_is_renewed_before_it_is_served() {
    let fake = fake(quick());
    let me = Instance::new(&fake);
    me.device_sign_in(&fake, ALICE).await;
    let original = me.token(ARM).await.unwrap();
    me.advance(LIFETIME - 480); // 8 minutes left: MSAL would still hand it out
    let renewed = me.token(ARM).await.unwrap();
    assert_ne!(
        renewed.access_token.expose(),
        original.access_token.expose()
    );
    assert!(renewed.expires_on - me.tokens.now() >= SERVE_MIN_LEFT_SECS);
    assert_eq!(token_requests(&fake, "refresh_token"), 1);

    // 8 minutes left again, and Entra ID down: the cached token is still served.
    me.advance(LIFETIME - 480);
    outage(&fake, 503, 60);
    let during = me.token(ARM).await.expect("a still-valid token is served");
    assert_eq!(during.access_token.expose(), renewed.access_token.expose());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_refreshes_of_four_resources_under_rotation_never_need_sign_in() {
    let fake = fake(FakeConfig {
        strict_rotation: true,
        ..quick()
    });
    let me = Instance::new(&fake);
    me.device_sign_in(&fake, ALICE).await;
    let resources = [
        GRAPH,
        "https://storage.azure.com/.default",
        "https://vault.azure.net/.default",
        ARM,
    ];
    for round in 0..20 {
        me.advance(LIFETIME); // every token is due
        let asks = resources.map(|r| {
            let tokens = me.tokens.clone();
            tokio::spawn(async move {
                let scopes = [r.to_string()];
                tokens
                    .get_token(&TokenRequest {
                        scopes: &scopes,
                        ..Default::default()
                    })
                    .await
            })
        });
        for (resource, ask) in resources.iter().zip(asks) {
            let got = ask.await.unwrap();
            assert!(got.is_ok(), "round {round}, {resource}: {:?}", got.err());
        }
        assert_eq!(needs_sign_in(&me), [None], "round {round}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_scope_fails_alone_and_a_good_one_right_after_is_served() {
    let fake = fake(quick());
    let me = Instance::new(&fake);
    me.device_sign_in(&fake, ALICE).await;
    let err = me.token("a/b").await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::Authority, "{err}");
    assert!(
        err.to_string().contains("70011"),
        "says what is wrong: {err}"
    );
    let graph = me.token(GRAPH).await;
    assert!(graph.is_ok(), "another scope, at once: {:?}", graph.err());
    assert_eq!(needs_sign_in(&me), [None]);
    let after = state(&me);
    assert_eq!(after.health, Health::Ok, "the account is fine");
    assert_eq!(after.failing.len(), 1, "{:?}", after.failing);
    assert_eq!(after.failing[0].scopes, "a/b");
    assert!(after.failing[0].reason.contains("70011"), "{after:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_the_user_is_not_a_member_of_fails_that_request_only() {
    let fake = fake(quick());
    let me = Instance::new(&fake);
    me.device_sign_in(&fake, ALICE).await;
    let scopes = [GRAPH.to_string()];
    let err = me
        .tokens
        .get_token(&TokenRequest {
            scopes: &scopes,
            tenant: Some("fabrikam.example"),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::NotInTenant, "{err}");
    let text = err.to_string();
    assert!(text.contains("50020"), "{err}");
    assert!(
        text.contains("is not a member of tenant fabrikam.example"),
        "{err}"
    );
    assert_eq!(needs_sign_in(&me), [None], "signing in again cannot fix it");
    assert!(me.token(GRAPH).await.is_ok(), "the home tenant still works");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claims_challenge_on_one_resource_leaves_the_others_refreshing() {
    let fake = fake(quick());
    let me = Instance::new(&fake);
    me.device_sign_in(&fake, ALICE).await;
    fake.queue_fault(FaultRule::once(
        Endpoint::Token,
        Fault::interaction_required(),
    ));
    let err = me.token(GRAPH).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::InteractionRequired, "{err}");
    assert_eq!(needs_sign_in(&me), [None], "only Graph needs the step-up");
    me.advance(LIFETIME);
    let arm = me.token(ARM).await;
    assert!(arm.is_ok(), "ARM still refreshes: {:?}", arm.err());
    assert!(arm.unwrap().refreshed);
    let after = state(&me);
    assert_eq!(after.health, Health::Ok);
    let failing: Vec<&str> = after.failing.iter().map(|f| f.scopes.as_str()).collect();
    assert_eq!(failing, [GRAPH], "Graph alone is shown failing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_refresh_token_is_not_retried_until_the_user_signs_in() {
    let fake = fake(quick());
    let me = Instance::new(&fake);
    me.device_sign_in(&fake, ALICE).await;
    fake.revoke(ALICE).unwrap();
    me.advance(LIFETIME);
    fake.clear_log();
    for _ in 0..5 {
        let err = me.token(ARM).await.unwrap_err();
        assert_eq!(err.code(), ErrorCode::InteractionRequired, "{err}");
    }
    assert_eq!(
        token_requests(&fake, "refresh_token"),
        1,
        "no request storm"
    );
    let Health::NeedsSignIn { summary, details } = state(&me).health else {
        panic!("{:?}", state(&me));
    };
    assert!(
        summary.starts_with("the refresh token was revoked"),
        "{summary}"
    );
    assert!(details.contains("AADSTS50173"), "{details}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn arms_two_spellings_are_one_token() {
    let fake = fake(quick());
    let me = Instance::new(&fake);
    me.device_sign_in(&fake, ALICE).await; // caches ARM as Azure CLI spells it
    fake.clear_log();
    let sdk = me
        .token("https://management.core.windows.net/.default")
        .await
        .unwrap();
    let cli = me.token(ARM).await.unwrap();
    assert_eq!(sdk.access_token.expose(), cli.access_token.expose());
    assert_eq!(
        token_requests(&fake, "refresh_token"),
        0,
        "served from the cache"
    );
    assert_eq!(me.tokens.cache().access_tokens().len(), 1, "cached once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_instance_sees_another_processs_sign_in_and_sign_out_within_a_second() {
    let fake = fake(quick());
    let me = Instance::new(&fake);
    let mut events = me.tokens.subscribe();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let watcher = tokio::spawn(me.tokens.clone().watch_for_changes(
        Duration::from_millis(250),
        async {
            let _ = stop_rx.await;
        },
    ));
    // "Another process": a second Tokens on the same files.
    let other = me.restart(&fake);
    let code = other
        .start_device_code(None, &[ARM.to_string()], None)
        .await
        .unwrap();
    fake.approve_device_code(&code.user_code, BOB, PW).await;
    other
        .finish_device_code(&code, std::future::pending())
        .await
        .unwrap();
    let seen = tokio::time::timeout(Duration::from_secs(1), async {
        loop {
            if let Ok(Event::AccountsChanged) = events.recv().await {
                return;
            }
        }
    })
    .await;
    assert!(seen.is_ok(), "AccountsChanged within 1 s");
    let names: Vec<String> = me
        .tokens
        .accounts()
        .unwrap()
        .into_iter()
        .map(|a| a.username)
        .collect();
    assert_eq!(names, [BOB]);

    other.sign_out(None).unwrap();
    let gone = tokio::time::timeout(Duration::from_secs(1), async {
        while !me.tokens.accounts().unwrap().is_empty() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    assert!(gone.is_ok(), "the sign-out is seen within 1 s");
    let _ = stop_tx.send(());
    watcher.await.unwrap();
}
