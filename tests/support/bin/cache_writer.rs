//! Test helper process: writes access tokens into a tokentray cache through tokentray-core's
//! `PersistedCache`, one locked read-modify-write per entry, printing `done N` after each completed write.
//! Used to prove concurrent writers lose nothing and a killed writer never corrupts the cache.
//!
//! Usage: cache-writer PREFIX COUNT   (TOKENTRAY_HOME and TOKENTRAY_STORE from the environment)

use std::io::Write as _;
use std::process::ExitCode;

use tokentray_core::config::Config;
use tokentray_core::paths::Paths;
use tokentray_tests::harness::sample_access_token;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let (Some(prefix), Some(Ok(count))) = (args.get(1), args.get(2).map(|c| c.parse::<usize>()))
    else {
        eprintln!("usage: cache-writer PREFIX COUNT");
        return ExitCode::from(2);
    };
    let store = match Paths::from_env()
        .and_then(|p| Config::load(&p.config_file()).map(|c| (p, c)))
        .and_then(|(p, c)| c.open_store(&p))
    {
        Ok(s) => s,
        Err(e) => {
            eprintln!("cache-writer: {e}");
            return ExitCode::FAILURE;
        }
    };
    let now = tokentray_core::clock::now();
    let mut stdout = std::io::stdout().lock();
    for i in 0..count {
        let at = sample_access_token(prefix, i, now);
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
