//! Opt-in approval of the programs that get tokens (`require_approval = true` in
//! `config.toml`), on top of the endpoint's other checks (same user, secret, loopback).
//!
//! With it on, a token request is served only to a program the user approved:
//! - A program is its executable: the path the OS gives for the process and the SHA-256 of
//!   the file it runs (on Linux read through `/proc/PID/exe`, the very file mapped). A kept
//!   decision holds for that path *and* content, so an executable that was replaced or updated
//!   is asked about again.
//! - tokentray's own executable (`tokentray token` through the endpoint) is always allowed.
//! - Kept decisions ("Always allow", "Deny") live in the encrypted cache (`tokentray` section,
//!   [`crate::cache::ClientRule`]), so they survive restarts exactly as the tokens do and
//!   other tokentray processes see them; list, set and forget them with [`clients`],
//!   [`decide`], [`revoke`] (`tokentray clients`, the window).
//! - "Allow once" holds for the asking process (pid and start time) until it exits, in memory
//!   only: one run of a CLI makes several requests and is asked once.
//! - Where there is a window ([`Approvals::new`] with `asks`), the first request of a program
//!   not yet decided waits up to [`WAIT`] for the answer ([`Approvals::answer`]); requests of
//!   the same program meanwhile wait for the same answer. Without a window (the daemon), or
//!   when nobody answers in time, the request fails at once with
//!   [`Error::ClientNotApproved`], which says how to approve it.
//!
//! What it does not do: tell scripts of one interpreter apart (approving `/usr/bin/python3.12`
//! approves every Python program the user runs), or stop a program of this user from reading
//! the cache's key itself; it narrows which of the user's programs the endpoint serves, as
//! 1Password's CLI approval does, and is not a sandbox.

use std::collections::{HashMap, HashSet};
use std::io::Read as _;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use tokio::sync::watch;

use crate::cache::{ClientRule, Verdict};
use crate::peer::Process;
use crate::sync::lock;
use crate::tokens::{Event, Tokens};
use crate::{Error, Result};

/// How long a request waits for the user's answer.
pub const WAIT: Duration = Duration::from_secs(60);

/// Most programs waiting for an answer at once; past this, new ones are refused at once.
const MAX_WAITING: usize = 16;
/// Most "Allow once" grants and remembered hashes kept; past this the oldest are forgotten
/// (those programs are asked again, hashed again).
const MAX_REMEMBERED: usize = 1024;

/// An executable: its path and the SHA-256 of its content.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Program {
    /// The path, as the OS names the process's executable.
    pub path: String,
    /// SHA-256 of the content, lowercase hex.
    pub sha256: String,
}

/// The user's answer to "may this program get tokens?".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Answer {
    /// This process, until it exits; nothing is kept.
    AllowOnce,
    /// This executable (path and content), kept.
    AlwaysAllow,
    /// This executable, kept: its requests fail with [`Error::ClientDenied`].
    Deny,
}

impl Answer {
    /// Every answer, in the order a prompt offers them.
    pub const ALL: [Self; 3] = [Self::AllowOnce, Self::AlwaysAllow, Self::Deny];

    /// Its id in notifications and the window (`allow_once`, `always_allow`, `deny`).
    pub fn id(self) -> &'static str {
        match self {
            Self::AllowOnce => "allow_once",
            Self::AlwaysAllow => "always_allow",
            Self::Deny => "deny",
        }
    }

    /// Its label on a button.
    pub fn label(self) -> &'static str {
        match self {
            Self::AllowOnce => "Allow once",
            Self::AlwaysAllow => "Always allow",
            Self::Deny => "Deny",
        }
    }

    /// The answer whose [`Answer::id`] is `id`.
    pub fn from_id(id: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.id() == id)
    }

    /// The decision kept for it, if any.
    fn verdict(self) -> Option<Verdict> {
        match self {
            Self::AllowOnce => None,
            Self::AlwaysAllow => Some(Verdict::Allow),
            Self::Deny => Some(Verdict::Deny),
        }
    }
}

/// A question waiting for the user, as the window shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Question {
    /// Its id, for [`Approvals::answer`].
    pub id: u64,
    /// The program asking.
    pub program: Program,
    /// The processes waiting (one program may run several times).
    pub pids: Vec<u32>,
    /// Whether this path was decided before for other content (it was replaced or updated).
    pub changed: bool,
    /// When the waiting requests give up, epoch seconds.
    pub expires_at: i64,
}

/// A kept decision, as `tokentray clients` and the window list it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Client {
    /// The executable's path.
    pub path: String,
    /// The decision.
    #[serde(flatten)]
    pub rule: ClientRule,
}

struct Waiting {
    id: u64,
    pids: Vec<u32>,
    changed: bool,
    expires_at: i64,
    deadline: tokio::time::Instant,
    answer: watch::Sender<Option<Answer>>,
}

/// A process allowed once: it, while it runs, and what it runs.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Grant {
    pid: u32,
    started: Option<u64>,
    program: Program,
}

/// What identifies a file's content without reading it again: device, inode, size, mtime.
type FileStamp = (u64, u64, u64, i64, i64);

/// The approval gate of a running instance: the questions waiting, the "Allow once" grants,
/// and the hashes already computed. Share it as `Arc<Approvals>`.
pub struct Approvals {
    tokens: Arc<Tokens>,
    asks: bool,
    own: OnceLock<Option<Program>>,
    waiting: Mutex<HashMap<Program, Waiting>>,
    once: Mutex<HashSet<Grant>>,
    hashes: Mutex<HashMap<FileStamp, String>>,
    next_id: AtomicU64,
}

impl std::fmt::Debug for Approvals {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Approvals")
            .field("asks", &self.asks)
            .finish_non_exhaustive()
    }
}

impl Approvals {
    /// The gate over `tokens`' kept decisions. `asks`: whether there is a window to ask in (the
    /// app); without one (the daemon) undecided programs are refused at once.
    pub fn new(tokens: Arc<Tokens>, asks: bool) -> Self {
        Self {
            tokens,
            asks,
            own: OnceLock::new(),
            waiting: Mutex::default(),
            once: Mutex::default(),
            hashes: Mutex::default(),
            next_id: AtomicU64::new(1),
        }
    }

    /// The token owner whose cache keeps the decisions.
    pub fn tokens(&self) -> &Arc<Tokens> {
        &self.tokens
    }

    /// Whether `process` may be served a token now; waits for the user's answer if it must
    /// (see the module doc). Only called when `require_approval` is on.
    ///
    /// # Errors
    /// [`Error::ClientNotApproved`] (unidentified, no window, no answer in time, too many
    /// waiting), [`Error::ClientDenied`]; token store errors.
    pub(crate) async fn admit(&self, process: Option<Process>) -> Result<()> {
        let Some(process) = process else {
            return Err(Error::ClientNotApproved {
                program: "the connecting program".into(),
                why: "tokentray could not find which process made the connection".into(),
            });
        };
        let program = self.identify(&process).await?;
        if self.is_own(&program).await {
            return Ok(());
        }
        let rule = self
            .tokens
            .app_state(|s| s.clients.get(&program.path).cloned())?;
        let changed = match rule {
            Some(rule) if rule.sha256 == program.sha256 => {
                return match rule.verdict {
                    Verdict::Allow => Ok(()),
                    Verdict::Deny => Err(denied(&program)),
                };
            }
            Some(_) => true,
            None => false,
        };
        let grant = Grant {
            pid: process.pid,
            started: process.started,
            program: program.clone(),
        };
        if lock(&self.once).contains(&grant) {
            return Ok(());
        }
        if !self.asks {
            return Err(not_approved(
                &program,
                changed,
                "this tokentray runs without a window to ask in",
            ));
        }
        let (id, deadline, mut answer) = self.ask(&program, process.pid, changed)?;
        let answered = tokio::time::timeout_at(deadline, answer.wait_for(Option::is_some))
            .await
            .map(|seen| seen.map(|a| *a));
        match answered {
            Ok(Ok(Some(Answer::AllowOnce))) => {
                let mut once = lock(&self.once);
                if once.len() >= MAX_REMEMBERED {
                    once.clear();
                }
                once.insert(grant);
                Ok(())
            }
            Ok(Ok(Some(Answer::AlwaysAllow))) => Ok(()),
            Ok(Ok(Some(Answer::Deny))) => Err(denied(&program)),
            Ok(Ok(None) | Err(_)) => Err(not_approved(
                &program,
                changed,
                "the question was withdrawn",
            )),
            Err(_) => {
                self.expire(&program, id);
                Err(not_approved(
                    &program,
                    changed,
                    &format!("nobody answered within {} seconds", WAIT.as_secs()),
                ))
            }
        }
    }

    /// The questions waiting for the user, oldest first.
    pub fn questions(&self) -> Vec<Question> {
        let mut questions: Vec<Question> = lock(&self.waiting)
            .iter()
            .map(|(program, w)| Question {
                id: w.id,
                program: program.clone(),
                pids: w.pids.clone(),
                changed: w.changed,
                expires_at: w.expires_at,
            })
            .collect();
        questions.sort_by_key(|q| q.id);
        questions
    }

    /// Answers the question `id`: every request waiting on it goes on (or fails, for
    /// [`Answer::Deny`]); "Always allow" and "Deny" are kept first.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] if no question `id` is waiting (answered or timed out); token
    /// store errors (then nothing was kept and the question still waits).
    pub fn answer(&self, id: u64, answer: Answer) -> Result<()> {
        let program = lock(&self.waiting)
            .iter()
            .find(|(_, w)| w.id == id)
            .map(|(program, _)| program.clone())
            .ok_or_else(|| {
                Error::invalid(
                    format!("approval {id}"),
                    "no program waits for this answer any more (it was answered or timed out); \
                     the program is asked again on its next request",
                )
            })?;
        if let Some(verdict) = answer.verdict() {
            keep(&self.tokens, &program, verdict)?;
        }
        if let Some(waiting) = lock(&self.waiting).remove(&program) {
            let _ = waiting.answer.send(Some(answer));
        }
        self.tokens.emit(Event::ApprovalsChanged);
        Ok(())
    }

    /// Joins the question about `program`, or asks it: (id, deadline, answer).
    fn ask(
        &self,
        program: &Program,
        pid: u32,
        changed: bool,
    ) -> Result<(u64, tokio::time::Instant, watch::Receiver<Option<Answer>>)> {
        let mut waiting = lock(&self.waiting);
        if let Some(w) = waiting.get_mut(program) {
            if !w.pids.contains(&pid) {
                w.pids.push(pid);
            }
            return Ok((w.id, w.deadline, w.answer.subscribe()));
        }
        if waiting.len() >= MAX_WAITING {
            return Err(not_approved(
                program,
                changed,
                &format!("{MAX_WAITING} other programs are waiting for an answer already"),
            ));
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = watch::channel(None);
        let deadline = tokio::time::Instant::now() + WAIT;
        let expires_at = self
            .tokens
            .now()
            .saturating_add(i64::try_from(WAIT.as_secs()).unwrap_or(i64::MAX));
        waiting.insert(
            program.clone(),
            Waiting {
                id,
                pids: vec![pid],
                changed,
                expires_at,
                deadline,
                answer: tx,
            },
        );
        drop(waiting);
        self.tokens.emit(Event::ApprovalRequested {
            id,
            program: program.path.clone(),
            pid,
        });
        Ok((id, deadline, rx))
    }

    /// Withdraws the question `id` about `program` after its deadline.
    fn expire(&self, program: &Program, id: u64) {
        let mut waiting = lock(&self.waiting);
        if waiting.get(program).is_some_and(|w| w.id == id) {
            waiting.remove(program);
            drop(waiting);
            self.tokens.emit(Event::ApprovalsChanged);
        }
    }

    /// The program `process` runs, hashed on a blocking thread (once per file content).
    async fn identify(&self, process: &Process) -> Result<Program> {
        let unreadable = |why: String| Error::ClientNotApproved {
            program: process.to_string(),
            why,
        };
        let Some(path) = process
            .exe
            .as_ref()
            .map(|p| p.to_string_lossy().into_owned())
        else {
            return Err(unreadable(
                "its executable cannot be read (it may belong to another user, or be gone)".into(),
            ));
        };
        let opened = process.open_image();
        let stamp_and_file = opened.and_then(|file| Ok((stamp(&file.metadata()?), file)));
        let (stamp, file) = stamp_and_file
            .map_err(|e| unreadable(format!("its executable cannot be read: {e}")))?;
        if let Some(sha256) = lock(&self.hashes).get(&stamp).cloned() {
            return Ok(Program { path, sha256 });
        }
        let sha256 = tokio::task::spawn_blocking(move || sha256_of(file))
            .await
            .map_err(|e| unreadable(format!("its executable could not be hashed: {e}")))?
            .map_err(|e| unreadable(format!("its executable cannot be read: {e}")))?;
        let mut hashes = lock(&self.hashes);
        if hashes.len() >= MAX_REMEMBERED {
            hashes.clear();
        }
        hashes.insert(stamp, sha256.clone());
        Ok(Program { path, sha256 })
    }

    /// Whether `program` is this tokentray's own executable.
    async fn is_own(&self, program: &Program) -> bool {
        if let Some(own) = self.own.get() {
            return own.as_ref() == Some(program);
        }
        let own = tokio::task::spawn_blocking(|| {
            let path = std::env::current_exe().ok()?.to_string_lossy().into_owned();
            let sha256 = current_sha256(&path)?;
            Some(Program { path, sha256 })
        })
        .await
        .ok()
        .flatten();
        self.own.get_or_init(|| own).as_ref() == Some(program)
    }
}

/// The kept decisions, by path.
///
/// # Errors
/// Token store errors.
pub fn clients(tokens: &Tokens) -> Result<Vec<Client>> {
    tokens.app_state(|s| {
        s.clients
            .iter()
            .map(|(path, rule)| Client {
                path: path.clone(),
                rule: rule.clone(),
            })
            .collect()
    })
}

/// Keeps `verdict` for the executable at `path` as it is now (its real path, its content's
/// hash): `tokentray clients allow|deny PATH`.
///
/// # Errors
/// [`Error::InvalidInput`] if `path` is not a readable file; token store errors.
pub fn decide(tokens: &Tokens, path: &Path, verdict: Verdict) -> Result<Client> {
    let bad = |detail: String| Error::invalid(format!("program {}", path.display()), detail);
    let real = std::fs::canonicalize(path)
        .map_err(|e| bad(format!("{e}; give the path of an executable file")))?;
    if !real.is_file() {
        return Err(bad("not a file; give the path of an executable file".into()));
    }
    let file = std::fs::File::open(&real).map_err(|e| bad(format!("cannot read it: {e}")))?;
    let sha256 = sha256_of(file).map_err(|e| bad(format!("cannot read it: {e}")))?;
    let program = Program {
        path: real.to_string_lossy().into_owned(),
        sha256,
    };
    let rule = keep(tokens, &program, verdict)?;
    tokens.emit(Event::ApprovalsChanged);
    Ok(Client {
        path: program.path,
        rule,
    })
}

/// Forgets the decision about `path` (as listed, or any spelling of it): the program is asked
/// again. Returns the path forgotten.
///
/// # Errors
/// [`Error::InvalidInput`] if no decision is kept for it (naming those that are); token store
/// errors.
pub fn revoke(tokens: &Tokens, path: &str) -> Result<String> {
    let real = std::fs::canonicalize(path)
        .ok()
        .map(|p| p.to_string_lossy().into_owned());
    let removed = tokens.update_app_state(|s| {
        let key = [Some(path.to_string()), real]
            .into_iter()
            .flatten()
            .find(|k| s.clients.contains_key(k));
        Ok(key.inspect(|k| {
            s.clients.remove(k);
        }))
    })?;
    match removed {
        Some(key) => {
            tokens.emit(Event::ApprovalsChanged);
            Ok(key)
        }
        None => {
            let known: Vec<String> = clients(tokens)?.into_iter().map(|c| c.path).collect();
            Err(Error::invalid(
                format!("program {path}"),
                if known.is_empty() {
                    "no decision is kept for any program".to_string()
                } else {
                    format!(
                        "no decision is kept for it; kept: {}. See `tokentray clients`",
                        known.join(", ")
                    )
                },
            ))
        }
    }
}

/// SHA-256 of the executable at `path` now, if it can be read: whether a kept decision still
/// matches the file on disk.
pub fn current_sha256(path: &str) -> Option<String> {
    sha256_of(std::fs::File::open(path).ok()?).ok()
}

fn keep(tokens: &Tokens, program: &Program, verdict: Verdict) -> Result<ClientRule> {
    let rule = ClientRule {
        verdict,
        sha256: program.sha256.clone(),
        decided: tokens.now(),
    };
    tokens.update_app_state(|s| {
        s.clients.insert(program.path.clone(), rule.clone());
        Ok(())
    })?;
    Ok(rule)
}

fn not_approved(program: &Program, changed: bool, why: &str) -> Error {
    Error::ClientNotApproved {
        program: program.path.clone(),
        why: if changed {
            format!("it changed since it was decided on, and {why}")
        } else {
            why.to_string()
        },
    }
}

fn denied(program: &Program) -> Error {
    Error::ClientDenied {
        program: program.path.clone(),
    }
}

fn sha256_of(mut file: std::fs::File) -> std::io::Result<String> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(buf.get(..n).unwrap_or_default());
    }
    Ok(crate::secret::hex(&hasher.finalize()))
}

fn stamp(meta: &std::fs::Metadata) -> FileStamp {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt as _;
        (
            meta.dev(),
            meta.ino(),
            meta.size(),
            meta.mtime(),
            meta.mtime_nsec(),
        )
    }
    #[cfg(not(unix))]
    {
        let modified = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .unwrap_or_default();
        (
            0,
            0,
            meta.len(),
            i64::try_from(modified.as_secs()).unwrap_or(i64::MAX),
            i64::from(modified.subsec_nanos()),
        )
    }
}

#[cfg(test)]
mod tests;
