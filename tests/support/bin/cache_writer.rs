//! Test helper process: writes access tokens into a tokentray cache through tokentray-core's
//! `Store`, one locked read-modify-write per entry, printing `done N` after each completed write.
//! Used to prove concurrent writers lose nothing and a killed writer never corrupts the cache.
//!
//! Usage: cache-writer PREFIX COUNT   (TOKENTRAY_HOME and TOKENTRAY_STORE from the environment)

use std::io::Write as _;
use std::process::ExitCode;

use tokentray_core::cache::AccessToken;
use tokentray_core::config::Config;
use tokentray_core::paths::Paths;
use tokentray_core::persist::Store;
use tokentray_core::secret::Secret;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let (Some(prefix), Some(Ok(count))) = (args.get(1), args.get(2).map(|c| c.parse::<usize>()))
    else {
        eprintln!("usage: cache-writer PREFIX COUNT");
        return ExitCode::from(2);
    };
    let store = match Paths::from_env()
        .and_then(|p| Config::load(&p.config_file()).map(|c| (p, c)))
        .and_then(|(p, c)| Store::open(&p, &c))
    {
        Ok(s) => s,
        Err(e) => {
            eprintln!("cache-writer: {e}");
            return ExitCode::FAILURE;
        }
    };
    let now = tokentray_core::cli::now();
    let mut stdout = std::io::stdout().lock();
    for i in 0..count {
        let at = entry(prefix, i, now);
        if let Err(e) = store.modify(now, |cache| {
            cache.put_access_token(at);
            Ok(())
        }) {
            eprintln!("cache-writer: write {i}: {e}");
            return ExitCode::FAILURE;
        }
        let _ = writeln!(stdout, "done {i}");
        let _ = stdout.flush();
    }
    ExitCode::SUCCESS
}

/// The entry a writer stores for index `i`; tests rebuild the expected key from the target.
fn entry(prefix: &str, i: usize, now: i64) -> AccessToken {
    let s = |v: &str| Some(v.to_string());
    AccessToken {
        credential_type: s("AccessToken"),
        secret: Some(Secret::new(format!("at-{prefix}-{i}"))),
        home_account_id: s(&format!("{prefix}.tenant")),
        environment: s("login.microsoftonline.com"),
        client_id: s("04b07795-8ddb-461a-bbee-02f9e1bf7b46"),
        realm: s("organizations"),
        target: s(&format!("https://example.invalid/{prefix}/{i}/.default")),
        token_type: s("Bearer"),
        cached_at: Some(now.to_string()),
        expires_on: Some((now + 3600).to_string()),
        extended_expires_on: Some((now + 3600).to_string()),
        ..AccessToken::default()
    }
}
