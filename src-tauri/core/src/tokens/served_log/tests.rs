//! The activity over a real `Tokens` (in-memory cache) with a clock the test moves.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use super::*;
use crate::config::Config;
use crate::persist::PersistedCache;

const START: i64 = 1_800_000_000;

fn tokens(clock: Arc<AtomicI64>) -> Tokens {
    let config = Config::defaults(Path::new("/nonexistent/tokentray-test/config.toml"));
    Tokens::new(
        config,
        PersistedCache::in_memory(),
        Arc::new(move || clock.load(Ordering::Relaxed)),
    )
    .expect("tokens")
}

fn serve(tokens: &Tokens, route: &str, account: &str, client: &str) {
    tokens.served_to(
        route,
        account,
        "https://management.azure.com//.default",
        client,
    );
}

#[test]
fn repeats_are_one_line_with_a_count_and_the_newest_comes_first() {
    let clock = Arc::new(AtomicI64::new(START));
    let tokens = tokens(clock.clone());
    serve(&tokens, "/msi/token", "alice", "pid 1 (/usr/bin/python3)");
    clock.store(START + 5, Ordering::Relaxed);
    serve(&tokens, "/msi/token", "alice", "pid 1 (/usr/bin/python3)");
    serve(&tokens, "/v1/token", "alice", "pid 2 (/usr/bin/tokentray)");
    clock.store(START + 9, Ordering::Relaxed);
    serve(&tokens, "/msi/token", "alice", "pid 1 (/usr/bin/python3)");

    let activity = tokens.activity();
    let lines: Vec<(&str, u64, i64, i64)> = activity
        .iter()
        .map(|s| (s.route.as_str(), s.count, s.since, s.at))
        .collect();
    assert_eq!(
        lines,
        [
            ("/msi/token", 1, START + 9, START + 9),
            ("/v1/token", 1, START + 5, START + 5),
            ("/msi/token", 2, START, START + 5),
        ],
        "only consecutive repeats merge"
    );
}

#[test]
fn it_keeps_the_last_few_hundred_and_filters_on_any_field() {
    let tokens = tokens(Arc::new(AtomicI64::new(START)));
    for n in 0..ACTIVITY_KEPT + 20 {
        serve(
            &tokens,
            "/msi/token",
            "alice@contoso.example",
            &format!("pid {n} (/usr/bin/node)"),
        );
    }
    serve(
        &tokens,
        "/v1/token",
        "Bob@Fabrikam.example",
        "pid 9999 (/usr/bin/python3)",
    );
    let activity = tokens.activity();
    assert_eq!(activity.len(), ACTIVITY_KEPT);
    assert_eq!(activity[0].account, "Bob@Fabrikam.example");
    assert_eq!(
        activity.last().map(|s| s.client.as_str()),
        Some("pid 21 (/usr/bin/node)"),
        "the oldest are forgotten first"
    );
    let matching = |needle: &str| activity.iter().filter(|s| s.matches(needle)).count();
    assert_eq!(matching("bob@fabrikam"), 1, "account, any case");
    assert_eq!(matching("PYTHON3"), 1, "program");
    assert_eq!(matching("/v1/"), 1, "route");
    assert_eq!(matching("management.azure.com"), ACTIVITY_KEPT, "scopes");
    assert_eq!(matching("vault.azure.net"), 0);
}

#[test]
fn the_ui_is_told_of_a_new_client_at_once_and_of_a_repeat_once_a_second() {
    let tokens = tokens(Arc::new(AtomicI64::new(START)));
    let mut events = tokens.subscribe();
    let mut told = || {
        let mut clients = Vec::new();
        while let Ok(event) = events.try_recv() {
            if let Event::TokenServed {
                account, client, ..
            } = event
            {
                clients.push(format!("{account} {client}"));
            }
        }
        clients
    };
    assert_eq!(tokens.last_served_to("alice", "anything"), None);
    serve(&tokens, "/msi/token", "alice", "pid 1 (/usr/bin/node)");
    serve(&tokens, "/msi/token", "alice", "pid 1 (/usr/bin/node)");
    serve(&tokens, "/msi/token", "bob", "pid 1 (/usr/bin/node)");
    serve(&tokens, "/msi/token", "alice", "pid 2 (/usr/bin/python3)");
    assert_eq!(
        told(),
        [
            "alice pid 1 (/usr/bin/node)",
            "bob pid 1 (/usr/bin/node)",
            "alice pid 2 (/usr/bin/python3)"
        ],
        "a repeat within a second is not told again"
    );
    let arm = "https://management.azure.com//.default";
    assert_eq!(
        tokens.last_served_to("alice", arm).as_deref(),
        Some("pid 2 (/usr/bin/python3)")
    );
    assert_eq!(
        tokens.last_served_to("bob", arm).as_deref(),
        Some("pid 1 (/usr/bin/node)")
    );
    assert_eq!(
        tokens.last_served_to("alice", "https://vault.azure.net/.default"),
        None
    );
}
