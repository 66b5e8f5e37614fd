//! The approval gate over a real cache (in memory) and real processes (`sleep`, and copies of
//! it under a temporary directory). Linux: processes are named through `/proc`.
#![cfg(target_os = "linux")]

use std::path::Path;
use std::process::{Child, Command};
use std::sync::Arc;

use super::*;
use crate::config::Config;
use crate::persist::PersistedCache;
use crate::{Error, ErrorCode};

const NOW: i64 = 1_800_000_000;

fn tokens() -> Arc<Tokens> {
    let config = Config::defaults(Path::new("/nonexistent/tokentray-test/config.toml"));
    let tokens = Tokens::new(config, PersistedCache::in_memory(), Arc::new(|| NOW)).unwrap();
    Arc::new(tokens)
}

/// A running program other than this test: `exe` (default `sleep`) sleeping for a minute.
struct Running(Child);

impl Running {
    fn start(exe: &str) -> Self {
        Self(Command::new(exe).arg("60").spawn().unwrap())
    }

    fn process(&self) -> Process {
        crate::peer::process(self.0.id()).unwrap()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn sleep_path() -> String {
    std::fs::canonicalize("/bin/sleep")
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

/// Waits for the next question to be asked.
async fn asked(events: &mut tokio::sync::broadcast::Receiver<Event>) -> (u64, String, u32) {
    loop {
        if let Event::ApprovalRequested { id, program, pid } = events.recv().await.unwrap() {
            return (id, program, pid);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_program_waits_for_the_answer_and_always_allow_is_kept() {
    let tokens = tokens();
    let gate = Arc::new(Approvals::new(tokens.clone(), true));
    let mut events = tokens.subscribe();
    let sleeper = Running::start("sleep");
    let asking = tokio::spawn({
        let (gate, process) = (gate.clone(), sleeper.process());
        async move { gate.admit(Some(process)).await }
    });
    let (id, program, pid) = asked(&mut events).await;
    assert_eq!(
        (program.as_str(), pid),
        (sleep_path().as_str(), sleeper.0.id())
    );
    let questions = gate.questions();
    assert_eq!(questions.len(), 1);
    assert_eq!(questions[0].id, id);
    assert_eq!(questions[0].pids, vec![sleeper.0.id()]);
    assert!(!questions[0].changed);
    assert_eq!(questions[0].expires_at, NOW + 60);
    assert_eq!(
        Some(questions[0].program.sha256.clone()),
        current_sha256(&sleep_path())
    );
    assert!(!asking.is_finished(), "the request waits for the answer");

    gate.answer(id, Answer::AlwaysAllow).unwrap();
    asking.await.unwrap().unwrap();
    assert!(gate.questions().is_empty());
    let kept = clients(&tokens).unwrap();
    assert_eq!(kept.len(), 1);
    assert_eq!(kept[0].path, sleep_path());
    assert_eq!(kept[0].rule.verdict, Verdict::Allow);
    assert_eq!(kept[0].rule.decided, NOW);
    // Kept in the cache, with the tokens.
    let cached = tokens.store().read().unwrap();
    assert_eq!(cached.state.clients[&sleep_path()].verdict, Verdict::Allow);

    // Another run of the same program, and a gate with no window, admit it without asking.
    let again = Running::start("sleep");
    gate.admit(Some(again.process())).await.unwrap();
    Approvals::new(tokens.clone(), false)
        .admit(Some(again.process()))
        .await
        .unwrap();
    // The question is gone: answering it again is a clear error.
    let late = gate.answer(id, Answer::Deny).unwrap_err();
    assert_eq!(late.code(), ErrorCode::InvalidInput);
    assert!(late.to_string().contains("asked again"), "{late}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allow_once_holds_for_the_asking_process_only_and_keeps_nothing() {
    let tokens = tokens();
    let gate = Arc::new(Approvals::new(tokens.clone(), true));
    let mut events = tokens.subscribe();
    let first = Running::start("sleep");
    let asking = tokio::spawn({
        let (gate, process) = (gate.clone(), first.process());
        async move { gate.admit(Some(process)).await }
    });
    let (id, ..) = asked(&mut events).await;
    gate.answer(id, Answer::AllowOnce).unwrap();
    asking.await.unwrap().unwrap();
    assert!(clients(&tokens).unwrap().is_empty(), "nothing kept");
    // The same process again: no question.
    gate.admit(Some(first.process())).await.unwrap();
    // Another process of the same program: asked again.
    let second = Running::start("sleep");
    let headless = Approvals::new(tokens.clone(), false);
    let refused = headless.admit(Some(second.process())).await.unwrap_err();
    assert_eq!(refused.code(), ErrorCode::ClientNotApproved);
    let asking = tokio::spawn({
        let (gate, process) = (gate.clone(), second.process());
        async move { gate.admit(Some(process)).await }
    });
    let (second_id, _, pid) = asked(&mut events).await;
    assert_ne!(second_id, id);
    assert_eq!(pid, second.0.id());
    gate.answer(second_id, Answer::Deny).unwrap();
    assert!(matches!(
        asking.await.unwrap(),
        Err(Error::ClientDenied { .. })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deny_is_kept_and_revoking_it_asks_again() {
    let tokens = tokens();
    let headless = Approvals::new(tokens.clone(), false);
    let sleeper = Running::start("sleep");
    let kept = decide(&tokens, Path::new("/bin/sleep"), Verdict::Deny).unwrap();
    assert_eq!(kept.path, sleep_path(), "kept under the real path");
    let denied = headless.admit(Some(sleeper.process())).await.unwrap_err();
    assert_eq!(denied.code(), ErrorCode::ClientDenied);
    let text = denied.to_string();
    assert!(
        text.contains(&format!("tokentray clients allow {}", sleep_path())),
        "{text}"
    );
    assert!(text.contains("tokentray clients revoke"), "{text}");

    assert_eq!(revoke(&tokens, "/bin/sleep").unwrap(), sleep_path());
    let undecided = headless.admit(Some(sleeper.process())).await.unwrap_err();
    assert_eq!(undecided.code(), ErrorCode::ClientNotApproved);
    let text = undecided.to_string();
    assert!(text.contains("without a window"), "{text}");
    assert!(
        text.contains(&format!("tokentray clients allow {}", sleep_path())),
        "{text}"
    );
    let unknown = revoke(&tokens, "/bin/sleep").unwrap_err();
    assert!(
        unknown.to_string().contains("no decision is kept"),
        "{unknown}"
    );
    let not_a_file = decide(&tokens, Path::new("/nonexistent/tool"), Verdict::Allow).unwrap_err();
    assert_eq!(not_a_file.code(), ErrorCode::InvalidInput);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_executable_replaced_since_it_was_allowed_is_asked_about_again() {
    let tokens = tokens();
    let headless = Approvals::new(tokens.clone(), false);
    let dir = tempfile::tempdir().unwrap();
    let tool = dir.path().join("tool");
    std::fs::copy("/bin/sleep", &tool).unwrap();
    decide(&tokens, &tool, Verdict::Allow).unwrap();
    {
        let running = Running::start(tool.to_str().unwrap());
        headless.admit(Some(running.process())).await.unwrap();
    }
    // Same path, other content (one byte more).
    let mut bytes = std::fs::read(&tool).unwrap();
    bytes.push(0);
    std::fs::remove_file(&tool).unwrap();
    std::fs::write(&tool, bytes).unwrap();
    std::fs::set_permissions(&tool, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let running = Running::start(tool.to_str().unwrap());
    let refused = headless.admit(Some(running.process())).await.unwrap_err();
    assert_eq!(refused.code(), ErrorCode::ClientNotApproved);
    assert!(
        refused.to_string().contains("it changed since"),
        "{refused}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_of_one_program_share_one_question() {
    let tokens = tokens();
    let gate = Arc::new(Approvals::new(tokens.clone(), true));
    let mut events = tokens.subscribe();
    let (a, b) = (Running::start("sleep"), Running::start("sleep"));
    let first = tokio::spawn({
        let (gate, process) = (gate.clone(), a.process());
        async move { gate.admit(Some(process)).await }
    });
    let (id, ..) = asked(&mut events).await;
    let second = tokio::spawn({
        let (gate, process) = (gate.clone(), b.process());
        async move { gate.admit(Some(process)).await }
    });
    while gate.questions().first().is_none_or(|q| q.pids.len() < 2) {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let questions = gate.questions();
    assert_eq!(questions.len(), 1, "one question");
    assert_eq!(questions[0].pids, vec![a.0.id(), b.0.id()]);
    gate.answer(id, Answer::AllowOnce).unwrap();
    first.await.unwrap().unwrap();
    second.await.unwrap().unwrap();
    // Both processes were allowed once.
    let headless_check = gate.admit(Some(b.process())).await;
    assert!(headless_check.is_ok());
}

#[tokio::test(start_paused = true)]
async fn nobody_answering_fails_the_request_after_a_minute_and_withdraws_the_question() {
    let tokens = tokens();
    let gate = Approvals::new(tokens.clone(), true);
    let sleeper = Running::start("sleep");
    let started = tokio::time::Instant::now();
    let refused = gate.admit(Some(sleeper.process())).await.unwrap_err();
    assert_eq!(started.elapsed(), WAIT);
    assert_eq!(refused.code(), ErrorCode::ClientNotApproved);
    assert!(
        refused
            .to_string()
            .contains("nobody answered within 60 seconds"),
        "{refused}"
    );
    assert!(gate.questions().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokentray_itself_is_allowed_and_an_unknown_process_is_not() {
    let gate = Approvals::new(tokens(), false);
    let me = crate::peer::process(std::process::id()).unwrap();
    gate.admit(Some(me)).await.unwrap();
    let unknown = gate.admit(None).await.unwrap_err();
    assert_eq!(unknown.code(), ErrorCode::ClientNotApproved);
    assert!(
        unknown.to_string().contains("could not find which process"),
        "{unknown}"
    );
}
