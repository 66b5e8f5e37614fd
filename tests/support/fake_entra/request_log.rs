//! The request log tests read to count round trips. It records what identifies a request
//! (method, path without query, endpoint, grant type, client id, status, MSAL's routing and
//! telemetry headers) and never a secret:
//! no query strings, bodies, codes, tokens, passwords or verifiers.

use std::sync::{Mutex, PoisonError};

use serde::Serialize;

use super::faults::Endpoint;

/// One request, as logged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LogEntry {
    /// 1, 2, 3, … in arrival order (not reset by clearing).
    pub seq: u64,
    /// The fake clock at arrival, RFC 3339.
    pub time: String,
    /// HTTP method.
    pub method: String,
    /// Path only (the query string is never logged).
    pub path: String,
    /// Which endpoint.
    pub endpoint: Endpoint,
    /// `grant_type` of a token request.
    pub grant_type: Option<String>,
    /// `client_id` from the query or form.
    pub client_id: Option<String>,
    /// Response status; `None` when the connection was dropped.
    pub status: Option<u16>,
    /// The fault applied, if any (`status`, `delay`, `drop`, …).
    pub fault: Option<String>,
    /// The routing and telemetry headers MSAL sends ([`LOGGED_HEADERS`]), lowercase names;
    /// none of them is a secret.
    pub headers: std::collections::BTreeMap<String, String>,
}

/// Headers worth comparing with MSAL's: correlation, library, capabilities, routing hint.
pub const LOGGED_HEADERS: [&str; 7] = [
    "client-request-id",
    "x-client-sku",
    "x-client-ver",
    "x-client-os",
    "x-ms-lib-capability",
    "x-anchormailbox",
    "x-app-name",
];

/// The log itself.
#[derive(Debug, Default)]
pub struct RequestLog {
    inner: Mutex<LogInner>,
}

#[derive(Debug, Default)]
struct LogInner {
    next_seq: u64,
    entries: Vec<LogEntry>,
}

impl RequestLog {
    /// Appends an entry (its `seq` is assigned here) and returns its `seq`.
    pub fn push(&self, mut entry: LogEntry) -> u64 {
        let mut inner = self.lock();
        inner.next_seq += 1;
        entry.seq = inner.next_seq;
        inner.entries.push(entry);
        inner.next_seq
    }

    /// Records the response status of entry `seq`.
    pub fn set_status(&self, seq: u64, status: u16) {
        if let Some(e) = self.lock().entries.iter_mut().find(|e| e.seq == seq) {
            e.status = Some(status);
        }
    }

    /// Every entry since the last clear.
    pub fn entries(&self) -> Vec<LogEntry> {
        self.lock().entries.clone()
    }

    /// Forgets every entry.
    pub fn clear(&self) {
        self.lock().entries.clear();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, LogInner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
